//! Cluster benchmarks against a real control plane (`cargo bench --bench cluster`):
//! - AccessRequest created on the apiserver → visible in the backend's event stream;
//! - grant expiry → binding deleted by the reaper;
//! - approve → binding exists, beside `kubectl create rolebinding` for the same binding;
//! - a grant that came due while the apiserver was down → binding deleted,
//!   counted from the apiserver answering again.

#[path = "../tests/common/cluster.rs"]
mod cluster;
#[path = "../tests/common/http.rs"]
mod http;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::watcher;
use portcullis::backend::kube::{request_resource, KubeBackend, KubeCluster};
use portcullis::backend::{AccessBackend, ApproveSpec, BackendEvent, NewRequest, RequestKey};
use portcullis::domain::{Credentials, RoleRef, Subject};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{name} ({} samples): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        v.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
}

fn ask(ns: &str, secs: u64) -> NewRequest {
    NewRequest {
        cluster: "test".into(),
        requester: Subject::new("alice", &["dev"]),
        role: RoleRef::cluster_role("view"),
        namespaces: vec![ns.into()],
        duration: Duration::from_secs(secs.max(60)),
        reason: "bench".into(),
        ticket: None,
        credentials: Credentials::Identity,
        extends: None,
    }
}

/// The control plane with Portcullis installed, its admin, and alice's
/// and bob's backends.
struct Setup {
    bob: KubeBackend,
    alice: KubeBackend,
    admin: Arc<KubeCluster>,
    cp: cluster::ControlPlane,
}

impl Setup {
    async fn start() -> Self {
        let cp = cluster::ControlPlane::start();
        let admin = cluster::install(&cp).await;
        let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]);
        let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await]);
        Setup {
            bob,
            alice,
            admin,
            cp,
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--test") {
        return; // `cargo test --benches` only checks that it builds
    }
    let mut s = Setup::start().await;
    let mut events = s.bob.watch();
    tokio::time::sleep(Duration::from_secs(1)).await;
    while events.try_recv().is_ok() {}
    created_to_visible(&s, &mut events).await;
    let names = approve_in_process(&s).await;
    let approve_p50 = approve_process(&s).await;
    kubectl_create_rolebinding(&s, approve_p50);
    expiry_to_deleted(&s, &names).await;
    drop(events);
    overdue_after_an_outage(&mut s).await;
}

/// Step 1: Created on the apiserver → in the console's event stream.
async fn created_to_visible(s: &Setup, events: &mut UnboundedReceiver<BackendEvent>) {
    let api: Api<DynamicObject> = Api::all_with(s.admin.client.clone(), &request_resource());
    let mut seen = Vec::new();
    for i in 0..100 {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest", "metadata": {"name": format!("bench-{i}")},
            "spec": {"requester": {"user": "alice"}, "role": {"kind": "ClusterRole", "name": "view"}, "namespaces": ["orders"], "duration": "30m", "reason": "bench"}
        }))
        .unwrap();
        let t = Instant::now();
        api.create(&PostParams::default(), &obj).await.unwrap();
        loop {
            if let Some(BackendEvent::Upsert(r)) = events.recv().await {
                if r.name == format!("bench-{i}") {
                    break;
                }
            }
        }
        seen.push(t.elapsed());
    }
    stats("request created → visible in the console state", seen);
}

/// Step 3: Approve → binding exists, in-process; returns the approved names.
async fn approve_in_process(s: &Setup) -> Vec<String> {
    let mut approve = Vec::new();
    let mut names = Vec::new();
    for _ in 0..30 {
        let r = s.alice.create(ask("payments", 3600)).await.unwrap();
        let key = RequestKey {
            cluster: "test".into(),
            name: r.name.clone(),
        };
        let t = Instant::now();
        s.bob
            .approve(
                &key,
                ApproveSpec {
                    duration: Duration::from_secs(3600),
                    namespaces: vec!["payments".into()],
                    reason: None,
                },
            )
            .await
            .unwrap();
        approve.push(t.elapsed());
        names.push(r.name);
    }
    stats(
        "approve (dry run, claim, server-side apply) → binding exists, in-process",
        approve,
    );
    names
}

/// `portcullis approve` as a process → binding exists; returns its p50.
async fn approve_process(s: &Setup) -> Duration {
    let cp = &s.cp;
    let cli = |args: &[&str]| {
        let t = Instant::now();
        let ok = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(args)
            .env("KUBECONFIG", cp.kubeconfig())
            .env("XDG_STATE_HOME", cp.dir.join("state"))
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        t.elapsed()
    };
    let mut approve_cli = Vec::new();
    for _ in 0..15 {
        let r = s.alice.create(ask("orders", 3600)).await.unwrap();
        approve_cli.push(cli(&["--context", "bob", "approve", &r.name]));
    }
    let approve_p50 = {
        let mut v = approve_cli.clone();
        v.sort();
        v[v.len() / 2]
    };
    stats("`portcullis approve` process → binding exists", approve_cli);
    approve_p50
}

/// `kubectl create rolebinding` for the same binding, and the ratio of
/// the two processes' p50s (when kubectl is installed).
fn kubectl_create_rolebinding(s: &Setup, approve_p50: Duration) {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok()
    {
        let mut kubectl = Vec::new();
        for i in 0..15 {
            let t = Instant::now();
            let ok = Command::new("kubectl")
                .args([
                    "--context",
                    "admin",
                    "create",
                    "rolebinding",
                    &format!("kubectl-{i}"),
                    "--clusterrole",
                    "view",
                    "--user",
                    "alice",
                    "-n",
                    "orders",
                ])
                .env("KUBECONFIG", s.cp.kubeconfig())
                .output()
                .unwrap();
            assert!(
                ok.status.success(),
                "{}",
                String::from_utf8_lossy(&ok.stderr)
            );
            kubectl.push(t.elapsed());
        }
        let kubectl_p50 = {
            let mut v = kubectl.clone();
            v.sort();
            v[v.len() / 2]
        };
        stats(
            "`kubectl create rolebinding` process → binding exists",
            kubectl,
        );
        println!(
            "approve / kubectl wall-time ratio (p50): {:.2}",
            approve_p50.as_secs_f64() / kubectl_p50.as_secs_f64()
        );
    } else {
        println!("kubectl not found: skipped the comparison (apt-get install kubernetes-client)");
    }
}

/// Step 2: Expiry → binding deleted by the reaper (bob's console runs one).
async fn expiry_to_deleted(s: &Setup, names: &[String]) {
    let rbs: Api<RoleBinding> = Api::namespaced(s.admin.client.clone(), "payments");
    let mut deletions = watcher(
        rbs,
        watcher::Config::default().labels("app.kubernetes.io/managed-by=portcullis"),
    )
    .boxed();
    let mut ends = std::collections::HashMap::new();
    for name in names {
        let end = Utc::now() + chrono::TimeDelta::seconds(2);
        let key = RequestKey {
            cluster: "test".into(),
            name: name.clone(),
        };
        let r = s.bob.shorten(&key, end).await.unwrap();
        ends.insert(format!("portcullis-{name}"), r.status.expires_at.unwrap());
    }
    let mut lags = Vec::new();
    while lags.len() < ends.len() {
        if let Some(Ok(watcher::Event::Delete(rb))) = deletions.next().await {
            if let Some(end) = rb.metadata.name.as_ref().and_then(|n| ends.get(n)) {
                lags.push((Utc::now() - *end).to_std().unwrap_or_default());
            }
        }
    }
    stats("grant expiry (status expiresAt) → binding deleted", lags);
}

/// Step 3: A grant comes due while the apiserver is down: binding deleted,
///    counted from the moment the apiserver is ready again.
async fn overdue_after_an_outage(s: &mut Setup) {
    let reaper = cluster::reaper(&s.cp).await;
    let rbs: Api<RoleBinding> = Api::namespaced(s.admin.client.clone(), "payments");
    let mut recoveries = Vec::new();
    for _ in 0..5 {
        let r = s.alice.create(ask("payments", 60)).await.unwrap();
        let key = RequestKey {
            cluster: "test".into(),
            name: r.name.clone(),
        };
        let g = s
            .bob
            .approve(
                &key,
                ApproveSpec {
                    duration: Duration::from_secs(3),
                    namespaces: vec!["payments".into()],
                    reason: None,
                },
            )
            .await
            .unwrap();
        s.cp.stop_apiserver();
        let end = g.status.expires_at.unwrap();
        tokio::time::sleep(
            (end - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(2),
        )
        .await;
        s.cp.start_apiserver();
        let back = Instant::now();
        let binding = format!("portcullis-{}", r.name);
        while rbs.get_opt(&binding).await.ok().flatten().is_some() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        recoveries.push(back.elapsed());
    }
    stats(
        "overdue grant after an apiserver outage → binding deleted (from ready)",
        recoveries,
    );
    drop(reaper);
}
