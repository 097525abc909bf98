//! Direct mode's audit trail against a real control plane: `portcullis
//! reaper --audit-log` records a request's whole life (created, approved
//! narrower, started, shortened, revoked and verified) in the names the
//! request object holds, posts each as a Kubernetes Event on the request,
//! signs its head, and `portcullis audit verify` passes; a restarted
//! reaper adds nothing twice.

mod common;
use common::cli::{ok, portcullis};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::cluster::{install, ControlPlane};
use portcullis::backend::kube::KubeCluster;
use serde_json::Value;

fn reaper(cp: &ControlPlane) -> Child {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "--context",
            "reaper",
            "reaper",
            "--listen",
            "127.0.0.1:0",
            "--audit-log",
        ])
        .arg(cp.dir.join("audit/audit.jsonl"))
        .arg("--audit-key")
        .arg(cp.dir.join("keys/audit.key"))
        .env("KUBECONFIG", cp.kubeconfig())
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(cp.dir.join("reaper.log"))
                .unwrap(),
        )
        .spawn()
        .expect("start the reaper")
}

fn stop(mut child: Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
}

fn records(cp: &ControlPlane) -> Vec<Value> {
    std::fs::read_to_string(cp.dir.join("audit/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The control plane with Portcullis installed.
struct Ctx {
    _admin: Arc<KubeCluster>,
    cp: ControlPlane,
}

impl Ctx {
    async fn start() -> Self {
        let cp = ControlPlane::start();
        let _admin = install(&cp).await;
        Ctx { _admin, cp }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_records_a_grants_life_and_posts_kubernetes_events() {
    let ctx = Ctx::start().await;
    let keys = audit_keys(&ctx);
    let r = reaper(&ctx.cp);
    let name = a_grants_life(&ctx);
    each_event_recorded_once(&ctx, &name).await;
    the_same_events_as_kubernetes_events(&ctx, &name).await;
    restarted_nothing_is_repeated(&ctx, r, &keys).await;
}

/// The reaper's signing keys (`audit keygen`); returns their directory.
fn audit_keys(ctx: &Ctx) -> PathBuf {
    let keys = ctx.cp.dir.join("keys");
    ok(&Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["audit", "keygen", "--out"])
        .arg(&keys)
        .output()
        .unwrap());
    keys
}

/// alice asks, bob approves narrower, shortens, revokes; returns the name.
fn a_grants_life(ctx: &Ctx) -> String {
    let cp = &ctx.cp;
    let name = ok(&portcullis(
        cp,
        "alice",
        &[
            "request",
            "--role",
            "edit",
            "--cluster-role",
            "-n",
            "payments",
            "-n",
            "orders",
            "--for",
            "30m",
            "--reason",
            "INC-9 \u{1b}[2J stuck",
            "--group",
            "dev",
        ],
    ))
    .trim()
    .to_string();
    ok(&portcullis(
        cp,
        "bob",
        &["approve", &name, "--for", "10m", "-n", "payments"],
    ));
    ok(&portcullis(cp, "bob", &["shorten", &name, "--to", "5m"]));
    ok(&portcullis(
        cp,
        "bob",
        &["revoke", &name, "--reason", "done early"],
    ));
    name
}

/// Each event recorded once, in the names the request object holds.
async fn each_event_recorded_once(ctx: &Ctx, name: &str) {
    let cp = &ctx.cp;
    let mine = |kind: &str| {
        records(cp)
            .into_iter()
            .filter(|r| r["request"] == name && r["kind"] == kind)
            .collect::<Vec<_>>()
    };
    until("the revocation record", || {
        !mine("grant.revoked").is_empty()
    })
    .await;
    until("the verification record", || {
        !mine("grant.verified").is_empty()
    })
    .await;
    for kind in [
        "request.created",
        "review.approved",
        "grant.started",
        "grant.shortened",
        "grant.revoked",
    ] {
        assert_eq!(mine(kind).len(), 1, "{kind} once: {:?}", records(cp));
    }
    let created = &mine("request.created")[0];
    assert_eq!(created["actor"]["user"], "alice");
    assert_eq!(created["actor"]["verifiedBy"], "request-object");
    assert!(!created["message"].as_str().unwrap().contains('\u{1b}'));
    let approved = &mine("review.approved")[0];
    assert_eq!(approved["actor"]["user"], "bob");
    assert_eq!(approved["detail"]["approved"]["duration"], "10m");
    assert_eq!(
        approved["detail"]["approved"]["namespaces"],
        serde_json::json!(["payments"])
    );
    assert_eq!(
        approved["detail"]["asked"]["namespaces"],
        serde_json::json!(["payments", "orders"])
    );
    assert_eq!(mine("grant.revoked")[0]["actor"]["user"], "bob");
    assert_eq!(mine("grant.revoked")[0]["message"], "done early");
    assert!(mine("grant.verified")[0]["message"]
        .as_str()
        .unwrap()
        .contains("verified"));
}

/// The same events as Kubernetes Events on the request.
async fn the_same_events_as_kubernetes_events(ctx: &Ctx, name: &str) {
    let cp = &ctx.cp;
    let selector = format!("involvedObject.name={name}");
    let mut reasons = Vec::new();
    until("the Kubernetes Events", || {
        let out = ok(&portcullis(cp, "admin", &["get", "requests"]));
        let _ = out;
        let o = Command::new("kubectl")
            .args(["--kubeconfig"])
            .arg(cp.kubeconfig())
            .args([
                "--context",
                "admin",
                "get",
                "events",
                "-n",
                "default",
                "--field-selector",
                &selector,
                "-o",
                "json",
            ])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        reasons = v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["reason"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        reasons.iter().any(|r| r == "GrantVerified")
    })
    .await;
    for want in [
        "RequestCreated",
        "ReviewApproved",
        "GrantStarted",
        "GrantShortened",
        "GrantRevoked",
    ] {
        assert!(reasons.iter().any(|r| r == want), "{want} in {reasons:?}");
    }
}

/// Stopped and started again: the chain goes on, nothing is repeated.
async fn restarted_nothing_is_repeated(ctx: &Ctx, r: Child, keys: &Path) {
    let cp = &ctx.cp;
    stop(r);
    let before = records(cp).len();
    let r = reaper(cp);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop(r);
    assert_eq!(records(cp).len(), before, "a restart re-recorded events");
    let o = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["audit", "verify"])
        .arg(cp.dir.join("audit/audit.jsonl"))
        .arg("--key")
        .arg(keys.join("audit.pub"))
        .output()
        .unwrap();
    let out = ok(&o);
    assert!(
        out.contains("intact") && out.contains("key pinned"),
        "{out}"
    );
}
