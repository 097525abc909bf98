//! Raw HTTP, as a script or an attacker sends it: any method, the path as
//! written (`..`, `%00` are not tidied away), a bearer token, a body; plain
//! HTTP, or TLS without checking the certificate (the test's own CA). In
//! Rust, in the test's process (no curl), and never Portcullis's own
//! client: what the server and the apiserver answer to anyone.

#![allow(dead_code)]

use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use ureq::http::Request;
use ureq::RequestExt;

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            // A 4xx or 5xx is an answer to look at, not an error.
            .http_status_as_error(false)
            // A fresh connection per call, as curl and a script make: a
            // pooled one the server closed after a refusal (it need not
            // read a refused request's body) would read as "no answer".
            .max_idle_connections(0)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            )
            .build()
            .into()
    })
}

/// One call: its status and body (status 0: no answer at all).
pub(crate) fn send(
    method: &str,
    url: &str,
    token: Option<&str>,
    content_type: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header("Content-Type", content_type);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let Ok(req) = req.body(body.unwrap_or_default().as_bytes().to_vec()) else {
        return (0, String::new());
    };
    match req.with_agent(agent()).run() {
        Ok(mut r) => {
            let status = r.status().as_u16();
            (status, r.body_mut().read_to_string().unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// A JSON call: its status and the JSON it answered (`Null` if none).
pub(crate) fn json(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let (code, text) = send(method, url, token, "application/json", body);
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A GET within `limit`: its status and body (0: no answer in time).
pub(crate) fn get(url: &str, limit: Duration) -> (u16, String) {
    let Ok(req) = Request::get(url).body(()) else {
        return (0, String::new());
    };
    match req
        .with_agent(agent())
        .configure()
        .timeout_global(Some(limit))
        .build()
        .run()
    {
        Ok(mut r) => {
            let status = r.status().as_u16();
            (status, r.body_mut().read_to_string().unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// A GET's status within `limit` (0: no answer in time).
pub(crate) fn status(url: &str, limit: Duration) -> u16 {
    get(url, limit).0
}

/// A streamed GET (server-sent events), read until the server ends it or
/// `limit` passes: what came, as text.
pub(crate) fn stream(url: &str, token: &str, limit: Duration) -> String {
    stream_from(url, token, None, limit)
}

/// As [`stream`], resuming after the event `last` (`Last-Event-ID`).
pub(crate) fn stream_from(url: &str, token: &str, last: Option<&str>, limit: Duration) -> String {
    let mut req = Request::get(url).header("Authorization", format!("Bearer {token}"));
    if let Some(id) = last {
        req = req.header("Last-Event-ID", id);
    }
    let Ok(req) = req.body(()) else {
        return String::new();
    };
    let Ok(mut r) = req
        .with_agent(agent())
        .configure()
        .timeout_global(Some(limit))
        .build()
        .run()
    else {
        return String::new();
    };
    let mut got = Vec::new();
    let mut reader = r.body_mut().as_reader();
    let mut chunk = [0u8; 4096];
    // Read what comes until the end or the time limit (an error then).
    while let Ok(n) = reader.read(&mut chunk) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}
