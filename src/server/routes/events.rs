//! `GET /v1/events`: the live stream (server-sent events).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde_json::json;

use crate::api;
use crate::server::authority::AuthError;
use crate::server::error::ApiResult;
use crate::server::extract::{bearer, Caller};
use crate::server::stream::{self, Hub};
use crate::server::{Shared, AUDIT_IN_SNAPSHOT, STREAM_RECHECK};

/// `GET /v1/events`: the live stream (server-sent events). Approvers get
/// everything; anyone else what they may read (their own requests in full,
/// others' redacted; no inventories, notices or audit records). The
/// token is checked again every [`STREAM_RECHECK`]: a stream ends, with a
/// last `end` event saying why, once it is no longer accepted (or names
/// someone else), so no stream outlives its token.
pub(crate) async fn events(
    State(s): State<Shared>,
    Caller(who): Caller,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let token = bearer(&headers).unwrap_or_default().to_string();
    // Audit records are for approvers: they hold everyone's reasons.
    let approver = s.access.may_approve(&who);
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut start = s.hub.start(last.as_deref());
    if approver && last.is_none() {
        // A fresh console gets the recent trail with its snapshot.
        let id = start.after;
        let recent = s.audit.recent(|_| true);
        let from = recent.len().saturating_sub(AUDIT_IN_SNAPSHOT);
        start.frames.extend(recent[from..].iter().map(|r| {
            Arc::new(stream::Frame {
                id,
                event: api::events::AUDIT,
                data: crate::audit::chain::line(r).into(),
                redacted: None,
            })
        }));
    }
    let guard = s.metrics.sse_client();
    let epoch = s.hub.epoch.clone();
    let to_event = move |f: &stream::Frame| {
        Ok::<_, Infallible>(
            Event::default()
                .id(format!("{epoch}-{}", f.id))
                .event(f.event)
                .data(&*f.data),
        )
    };
    let me = who.user.clone();
    let shown = move |f: Arc<stream::Frame>| {
        if approver {
            Some(f)
        } else {
            Hub::for_requester(&me, f)
        }
    };
    let shown_live = shown.clone();
    // Events are made as the connection takes them, not all up front: a
    // snapshot of 10,000 requests to 100 consoles would otherwise be a
    // gigabyte at once.
    let to_event_first = to_event.clone();
    let first = futures::stream::iter(start.frames)
        .filter_map(move |f| std::future::ready(shown(f)))
        .map(move |f| to_event_first(&f));
    let after = start.after;
    let live = tokio_stream_from(start.rx)
        .filter_map(move |f| std::future::ready((f.id > after).then(|| shown_live(f)).flatten()))
        .map(move |f| {
            let _keep = &guard;
            to_event(&f)
        });
    // Why the stream ends, said in its last event.
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<String>();
    let mut stopping = s.stopping.subscribe();
    let weak = Arc::downgrade(&s);
    let stop = async move {
        let stopped = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        let mut tick = tokio::time::interval(STREAM_RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let why = loop {
            tokio::select! {
                _ = &mut stopped => break "the server is stopping".to_string(),
                _ = tick.tick() => {
                    let Some(s) = weak.upgrade() else {
                        break "the server is stopping".to_string();
                    };
                    match s.authority.authenticate(&token).await {
                        Ok(now) if now == who => {}
                        Ok(_) => break "the token now belongs to someone else: connect again".to_string(),
                        Err(AuthError::Rejected) => {
                            s.metrics.refused("stream-token-expired");
                            break "the token is no longer accepted (expired, revoked or deleted): sign in again".to_string();
                        }
                        // The hub cannot say now: keep the stream, ask again.
                        Err(AuthError::Unavailable(_)) => {}
                    }
                }
            }
        };
        let _ = ended_tx.send(why);
    };
    let last_word = futures::stream::once(ended_rx).filter_map(|why| {
        std::future::ready(why.ok().map(|why| {
            Ok::<_, Infallible>(
                Event::default()
                    .event(api::events::END)
                    .data(json!({ "reason": why }).to_string()),
            )
        }))
    });
    let stream = first.chain(live).take_until(stop).chain(last_word);
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}

/// A broadcast receiver as a stream; a console too slow to keep up is cut
/// off (it reconnects and resumes from its last id).
fn tokio_stream_from(
    rx: tokio::sync::broadcast::Receiver<Arc<stream::Frame>>,
) -> impl Stream<Item = Arc<stream::Frame>> {
    futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(f) => Some((f, rx)),
            Err(_) => None,
        }
    })
}
