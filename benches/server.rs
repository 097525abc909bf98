//! Server benchmarks (`cargo bench --bench server`): `portcullis serve
//! --demo` as a process with 10,000 requests stored; from this process:
//! - API p50/p99 for the full list, a filtered list, and approve;
//! - live-stream fan-out: 100 connected consoles, one new request → all
//!   100 received it (p50/p99);
//! - the server's resident memory.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::Barrier;
#[path = "common/mod.rs"]
mod common;

const PEOPLE: &[&str] = &[
    "alice", "bob", "carol", "heidi", "ivan", "judy", "frank", "grace",
];

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{name} ({} samples): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        v.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
}

fn rss_kib(pid: u32) -> u64 {
    common::rss_kib_of(&pid.to_string())
}

/// `portcullis serve --demo` as a process, ready, and a client of it.
struct Setup {
    url: String,
    client: reqwest::Client,
    server: Served,
}

impl Setup {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
            .env(
                "XDG_STATE_HOME",
                std::env::temp_dir().join("portcullis-bench"),
            )
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let server = Served(child);
        let client = reqwest::Client::new();
        while client.get(format!("{url}/readyz")).send().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Setup {
            url,
            client,
            server,
        }
    }
}

/// What a console received: (which console, the request's reason, when).
type Received = (usize, String, Instant);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--test") {
        return; // `cargo test --benches` only checks that it builds
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = Setup::start().await;
    let idle = rss_kib(s.server.0.id());
    let names = store_10_000_requests(&s, idle).await;
    full_list(&s).await;
    filtered_list(&s).await;
    approve_200(&s, &names).await;
    let consoles = 100;
    let (_tx, rx) = consoles_on_the_live_stream(&s, consoles).await;
    fan_out(&s, rx, consoles).await;
}

/// 10,000 requests, from eight people, eight at a time; the server's
/// memory before and after. Returns their names.
async fn store_10_000_requests(s: &Setup, idle: u64) -> Vec<String> {
    let (client, url) = (&s.client, &s.url);
    let t = Instant::now();
    let body = |i: usize| {
        let ns = ["payments", "orders", "search", "checkout"][i % 4];
        json!({"cluster": "staging-eu-west", "role": {"kind": "ClusterRole", "name": "view"},
               "namespaces": [ns],
               "duration": "1h", "reason": format!("bench {i}")})
    };
    let mut names = Vec::new();
    for chunk in (0..10_000).collect::<Vec<_>>().chunks(8) {
        let posts = chunk.iter().map(|&i| {
            client
                .post(format!("{url}/v1/requests"))
                .bearer_auth(PEOPLE[i % PEOPLE.len()])
                .json(&body(i))
                .send()
        });
        for r in futures::future::join_all(posts).await {
            let v: Value = r.expect("posted").json().await.expect("json");
            names.push(v["name"].as_str().unwrap_or_default().to_string());
        }
    }
    println!(
        "stored 10,000 requests in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    println!(
        "server resident memory: {:.1} MiB idle, {:.1} MiB with 10,000 requests",
        idle as f64 / 1024.0,
        rss_kib(s.server.0.id()) as f64 / 1024.0
    );
    names
}

/// The full list.
async fn full_list(s: &Setup) {
    let (client, url) = (&s.client, &s.url);
    let mut full = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let r = client
            .get(format!("{url}/v1/requests"))
            .bearer_auth("dana")
            .send()
            .await
            .unwrap();
        let _ = r.bytes().await.unwrap();
        full.push(t.elapsed());
    }
    stats("GET /v1/requests (all ~10,000)", full);
}

/// A filtered list: one requester's pending requests.
async fn filtered_list(s: &Setup) {
    let (client, url) = (&s.client, &s.url);
    let mut filtered = Vec::new();
    for i in 0..200 {
        let t = Instant::now();
        let r = client
            .get(format!(
                "{url}/v1/requests?phase=Pending&requester={}",
                PEOPLE[i % PEOPLE.len()]
            ))
            .bearer_auth("dana")
            .send()
            .await
            .unwrap();
        let _ = r.bytes().await.unwrap();
        filtered.push(t.elapsed());
    }
    stats("GET /v1/requests?phase=Pending&requester=U", filtered);
}

/// Approve, 200 of them.
async fn approve_200(s: &Setup, names: &[String]) {
    let (client, url) = (&s.client, &s.url);
    let mut approve = Vec::new();
    for name in names.iter().take(200) {
        let t = Instant::now();
        let r = client
            .post(format!("{url}/v1/requests/staging-eu-west/{name}/approve"))
            .bearer_auth("dana")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{}",
            r.text().await.unwrap_or_default()
        );
        approve.push(t.elapsed());
    }
    stats("POST …/approve", approve);
}

/// `consoles` consoles on the live stream, each past its snapshot; the
/// server's memory with them. Returns where they report what they receive.
async fn consoles_on_the_live_stream(
    s: &Setup,
    consoles: usize,
) -> (UnboundedSender<Received>, UnboundedReceiver<Received>) {
    let (client, url) = (&s.client, &s.url);
    let ready = Arc::new(Barrier::new(consoles + 1));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    for c in 0..consoles {
        let (client, url, ready, tx) = (client.clone(), url.clone(), ready.clone(), tx.clone());
        tokio::spawn(async move {
            let r = client
                .get(format!("{url}/v1/events"))
                .bearer_auth("erin")
                .send()
                .await
                .unwrap();
            let mut s = r.bytes_stream().eventsource();
            let mut synced = false;
            while let Some(Ok(e)) = s.next().await {
                if e.event == "snapshot-done" && !synced {
                    synced = true;
                    ready.wait().await;
                    continue;
                }
                if synced && e.event == "upsert" && e.data.contains("fanout-") {
                    let v: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
                    let reason = v["spec"]["reason"].as_str().unwrap_or_default().to_string();
                    let _ = tx.send((c, reason, Instant::now()));
                }
            }
        });
    }
    ready.wait().await;
    println!(
        "server resident memory with 100 consoles streaming: {:.1} MiB",
        rss_kib(s.server.0.id()) as f64 / 1024.0
    );
    (tx, rx)
}

/// One new request → all the consoles received it.
async fn fan_out(s: &Setup, mut rx: UnboundedReceiver<Received>, consoles: usize) {
    let (client, url) = (&s.client, &s.url);
    let mut fanout = Vec::new();
    for i in 0..50 {
        let reason = format!("fanout-{i}");
        let sent = Instant::now();
        let r = client
            .post(format!("{url}/v1/requests"))
            .bearer_auth("alice")
            .json(&json!({"cluster": "staging-eu-west", "role": {"kind": "ClusterRole", "name": "view"},
                          "namespaces": ["orders"], "duration": "1h", "reason": reason}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let mut got = std::collections::HashSet::new();
        let mut last = sent;
        while got.len() < consoles {
            let (c, why, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("every console receives it")
                .expect("open");
            if why == reason {
                got.insert(c);
                last = last.max(at);
            }
        }
        fanout.push(last - sent);
    }
    stats("new request → received by all 100 consoles", fanout);
}
