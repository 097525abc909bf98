//! The server's request bodies and routes: the real axum router of
//! `portcullis serve --demo` (with the admission webhook on), in process,
//! on arbitrary method, path, bearer token and body. The input is text:
//! `METHOD PATH` on the first line, the token on the second, the body
//! after. Properties: no panic; no 5xx (the demo's authority is always
//! there, so a 5xx is the server's own failure); a JSON response is JSON.
#![no_main]

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use http::{header, Method, Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use portcullis::backend::demo::{DemoBackend, DemoConfig};
use portcullis::server::authority::DemoAuthority;
use portcullis::server::webhook::Webhook;
use portcullis::server::Server;
use tower::ServiceExt;

/// A fresh server every this many inputs, so what earlier inputs created
/// does not pile up.
const FRESH_EVERY: u32 = 5_000;

struct Serving {
    rt: tokio::runtime::Runtime,
    router: Router,
    used: u32,
}

fn start() -> Serving {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let router = rt.block_on(async {
        let world = Arc::new(DemoBackend::live(DemoConfig {
            rate: Duration::ZERO,
            ..Default::default()
        }));
        let authority = DemoAuthority::new(world);
        let access = authority.access().clone();
        let server = Server::builder(Arc::new(authority), access)
            .webhook(Some(Webhook {
                privileged: vec!["system:serviceaccount:portcullis:portcullis".into()],
            }))
            .start();
        let router = server.router();
        // Ready: the hub has its first snapshot.
        for _ in 0..500 {
            let ready = Request::get("/readyz").body(Body::empty()).unwrap();
            let r = router.clone().oneshot(ready).await.unwrap();
            if r.status() == StatusCode::OK {
                return router;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the demo server never became ready");
    });
    Serving {
        rt,
        router,
        used: 0,
    }
}

thread_local! {
    static SERVING: RefCell<Option<Serving>> = const { RefCell::new(None) };
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let (first, rest) = split_line(data);
    let (token, body) = split_line(rest);
    let Ok(first) = std::str::from_utf8(first) else {
        return;
    };
    let (method, path) = first.split_once(' ').unwrap_or(("GET", first));
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if !token.is_empty() {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(token);
        request = request.header(header::AUTHORIZATION, value);
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return;
    };
    SERVING.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_none_or(|s| s.used >= FRESH_EVERY) {
            *cell = None;
            *cell = Some(start());
        }
        let s = cell.as_mut().expect("started");
        s.used += 1;
        let router = s.router.clone();
        s.rt.block_on(async move {
            let response = router.oneshot(request).await.expect("infallible");
            let status = response.status();
            assert!(
                !status.is_server_error(),
                "{status} for {first:?} as {:?}",
                String::from_utf8_lossy(token)
            );
            let kind = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if kind.starts_with("text/event-stream") {
                return; // a live stream: it never ends
            }
            let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
                .await
                .expect("a response body");
            if kind.starts_with("application/json") {
                assert!(
                    serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
                    "{status} for {first:?}: not JSON: {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        });
    });
});
