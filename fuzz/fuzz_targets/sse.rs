//! The http backend's live stream: arbitrary bytes from a server, cut
//! into chunks as a network would, through `eventsource_stream` as the
//! client reads them, each event translated into backend events
//! (`backend::http::translate_all`), then what the console does with
//! them: a request checked against the cluster's limits and its RBAC diff
//! analysed against the cluster's inventory. Properties: no panic; the
//! events do not depend on where the network cut the bytes.
#![no_main]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use eventsource_stream::{Event, Eventsource};
use futures::{FutureExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use portcullis::backend::http::translate_all;
use portcullis::backend::BackendEvent;
use portcullis::domain::rbac::engine::{analyze, GrantRequest};

/// The events a client reads from `chunks`, up to the first error (where
/// the client drops the connection).
fn read(chunks: Vec<Bytes>) -> Vec<Event> {
    let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>)).eventsource();
    let all = stream
        .collect::<Vec<_>>()
        .now_or_never()
        .expect("an in-memory stream is always ready");
    all.into_iter().map_while(Result::ok).collect()
}

fn key(e: &Event) -> (String, String, String, Option<std::time::Duration>) {
    (e.event.clone(), e.data.clone(), e.id.clone(), e.retry)
}

fuzz_target!(|data: &[u8]| {
    let Some((&size, body)) = data.split_first() else {
        return;
    };
    let size = (size as usize % 16) + 1;
    let whole = read(vec![Bytes::copy_from_slice(body)]);
    let cut = read(body.chunks(size).map(Bytes::copy_from_slice).collect());
    assert_eq!(
        whole.iter().map(key).collect::<Vec<_>>(),
        cut.iter().map(key).collect::<Vec<_>>(),
        "the events depend on chunks of {size} bytes"
    );

    let events = translate_all(whole.iter().map(|e| (e.event.as_str(), e.data.as_str())));
    let mut inventories = BTreeMap::new();
    let mut limits = BTreeMap::new();
    for e in &events {
        match e {
            BackendEvent::Inventory { cluster, inventory } => {
                inventories.insert(cluster.clone(), Arc::clone(inventory));
            }
            BackendEvent::Limits { cluster, limits: l } => {
                limits.insert(cluster.clone(), l.clone());
            }
            BackendEvent::Upsert(r) => {
                let _ = r.validate(limits.get(&r.cluster).unwrap_or(&Default::default()));
                if let Some(inv) = inventories.get(&r.cluster) {
                    let _ = analyze(
                        inv,
                        GrantRequest {
                            subject: &r.requester,
                            role: &r.role,
                            namespaces: r.granted_namespaces(),
                        },
                    );
                }
            }
            _ => {}
        }
    }
});
