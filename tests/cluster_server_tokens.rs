//! Short-lived credentials from the server: a Token-mode grant's requester
//! gets a kubeconfig whose token the server minted for the grant's own
//! ServiceAccount (`portcullis --backend URL login NAME`, `request
//! --credentials token --wait`), so they need no identity on the target at
//! all; only they get it; it stops working at revoke, at a shorten to now
//! and at expiry (how fast is printed: the closing note's numbers); every
//! issue is on the record, never the token. Runs on both versions.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use common::cluster::{wait_for, ControlPlane};
use common::server::{config, curl, decision, install_server, serve, Served};
use portcullis::backend::kube::KubeCluster;
use serde_json::{json, Value};

fn token_ask(duration: &str) -> Value {
    json!({"cluster": "c1", "role": {"kind": "ClusterRole", "name": "view"}, "namespaces": ["payments"],
           "duration": duration, "reason": "INC-19 a token please", "credentials": "Token"})
}

/// alice asks (raw HTTP), bob approves `duration`: the grant's path.
fn granted(s: &Served, duration: &str) -> String {
    let (code, made) = curl(
        &s.url,
        Some("alice"),
        "POST",
        "/v1/requests",
        Some(&token_ask("1h")),
    );
    assert_eq!(code, 201, "{made}");
    let path = format!("/v1/requests/c1/{}", made["name"].as_str().unwrap());
    bob_approves(s, &path, duration);
    path
}

/// bob approves the request at `path` for `duration` (raw HTTP, naming
/// what he read): the granted request.
fn bob_approves(s: &Served, path: &str, duration: &str) -> Value {
    let body = decision(&s.url, "bob", path, json!({"duration": duration}));
    let (code, g) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("{path}/approve"),
        Some(&body),
    );
    assert_eq!(code, 200, "{g}");
    g
}

/// `portcullis --backend URL ARGS` as `user` (their own token).
fn portcullis_as(s: &Served, cp: &ControlPlane, user: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["--backend", &s.url])
        .args(args)
        .env("PORTCULLIS_TOKEN", common::cluster::token(user))
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .env("XDG_CONFIG_HOME", cp.dir.join("config"))
        .env_remove("KUBECONFIG");
    cmd
}

/// As [`portcullis_as`], run to its end.
fn portcullis(s: &Served, cp: &ControlPlane, user: &str, args: &[&str]) -> std::process::Output {
    portcullis_as(s, cp, user, args).output().unwrap()
}

fn token_in(kubeconfig: &str) -> String {
    let v: Value = serde_yaml_ng::from_str(kubeconfig).expect("a kubeconfig");
    v["users"][0]["user"]["token"]
        .as_str()
        .expect("a token")
        .to_string()
}

/// What the apiserver answers the minted token (raw HTTP, as its holder
/// would use it): listing pods in the granted namespace.
fn with_token(cp: &ControlPlane, token: &str, ns: &str) -> u16 {
    let url = format!("{}/api/v1/namespaces/{ns}/pods", cp.url());
    common::http::send("GET", &url, Some(token), "application/json", None).0
}

/// Waits for the end a grant's JSON states (`status.expiresAt`), then
/// measures from it until the apiserver rejects `token`.
async fn until_rejected_after_end(
    cp: &ControlPlane,
    token: &str,
    grant: &Value,
    what: &str,
) -> f64 {
    let end: chrono::DateTime<chrono::Utc> = grant["status"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let left = (end - chrono::Utc::now()).to_std().unwrap_or_default();
    let at_end = Instant::now() + left;
    tokio::time::sleep(left).await;
    until_rejected(cp, token, at_end, what).await
}

/// Seconds from `since` until the apiserver rejects `token` (401).
async fn until_rejected(cp: &ControlPlane, token: &str, since: Instant, what: &str) -> f64 {
    wait_for(&format!("the token to die at {what}"), 90, || async {
        with_token(cp, token, "payments") == 401
    })
    .await;
    let secs = since.elapsed().as_secs_f64();
    eprintln!(
        "kube-apiserver {:?}: minted token rejected {secs:.1} s after {what}",
        cp.version
    );
    secs
}

/// The control plane, Portcullis and its server's rights installed, and
/// `portcullis serve` over plain HTTP.
struct Ctx {
    s: Served,
    _admin: Arc<KubeCluster>,
    cp: ControlPlane,
}

impl Ctx {
    async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cp = ControlPlane::start();
        let _admin = install_server(&cp).await;
        let cfg = config(&cp, "");
        let s = serve(&cp, &cfg, "http");
        Ctx { s, _admin, cp }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_mints_tokens_that_die_with_the_grant() {
    let ctx = Ctx::start().await;
    let path = granted(&ctx.s, "30m");
    let name = path.rsplit('/').next().unwrap().to_string();
    only_the_requester_gets_it(&ctx, &path);
    an_identity_grant_has_none(&ctx);
    readme_api_example_verbatim(&ctx, &name);
    let token = alice_logs_in(&ctx, &name);
    on_the_record_never_the_token(&ctx, &name, &token);
    revoke_kills_the_token(&ctx, &path, &token).await;
    shortened_to_now(&ctx).await;
    its_own_expiry(&ctx).await;
}

/// Only the requester gets it: not the approver, not another
/// requester, not someone without a token.
fn only_the_requester_gets_it(ctx: &Ctx, path: &str) {
    let s = &ctx.s;
    for who in ["bob", "mallory"] {
        let (code, body) = curl(
            &s.url,
            Some(who),
            "POST",
            &format!("{path}/credentials"),
            None,
        );
        assert_eq!(code, 403, "{who}: {body}");
        assert!(
            body.to_string().contains("only its requester (alice)"),
            "{body}"
        );
    }
    assert_eq!(
        curl(&s.url, None, "POST", &format!("{path}/credentials"), None).0,
        401
    );
}

/// An Identity-mode grant has none to give.
fn an_identity_grant_has_none(ctx: &Ctx) {
    let s = &ctx.s;
    let (code, made) = curl(
        &s.url,
        Some("alice"),
        "POST",
        "/v1/requests",
        Some(&common::server::ask("c1", "view", &["orders"], "1h")),
    );
    assert_eq!(code, 201, "{made}");
    let identity = format!("/v1/requests/c1/{}", made["name"].as_str().unwrap());
    let (code, body) = curl(
        &s.url,
        Some("alice"),
        "POST",
        &format!("{identity}/credentials"),
        None,
    );
    assert_eq!(code, 422, "{body}");
}

/// README's API example, verbatim (its $T, $URL and NAME filled in).
fn readme_api_example_verbatim(ctx: &Ctx, name: &str) {
    let readme = include_str!("../README.md");
    let row = readme
        .lines()
        .find(|l| l.starts_with("| credentials"))
        .expect("README's API table has the credentials call");
    let example = row
        .split('`')
        .find(|c| c.starts_with("curl "))
        .expect("an example");
    let example = example.replace("/prod/", "/c1/").replace("NAME", name);
    let out = Command::new("sh")
        .arg("-c")
        .arg(&example)
        .env("T", common::cluster::token("alice"))
        .env("URL", &ctx.s.url)
        .output()
        .unwrap();
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        answer["serviceAccount"],
        format!("portcullis-system/pc-{name}"),
        "{answer}"
    );
    assert!(answer["kubeconfig"].as_str().unwrap().contains("token:"));
}

/// alice's own: README's command, through the server. Returns the token.
fn alice_logs_in(ctx: &Ctx, name: &str) -> String {
    let (s, cp) = (&ctx.s, &ctx.cp);
    let out = portcullis(s, cp, "alice", &["login", name]);
    assert!(out.status.success(), "{out:?}");
    let kubeconfig = String::from_utf8_lossy(&out.stdout).into_owned();
    let token = token_in(&kubeconfig);
    // It is the grant's ServiceAccount's, not alice's: the grant works
    // with it, and nothing else does.
    assert_eq!(with_token(cp, &token, "payments"), 200);
    assert_eq!(with_token(cp, &token, "orders"), 403);
    let file = cp.dir.join("grant.yaml");
    std::fs::write(&file, &kubeconfig).unwrap();
    let kubectl = Command::new("kubectl")
        .args(["--kubeconfig"])
        .arg(&file)
        .args(["get", "pods", "-n", "payments"])
        .output()
        .unwrap();
    assert!(kubectl.status.success(), "{kubectl:?}");
    token
}

/// On the record: who, which grant, until when; never the token.
fn on_the_record_never_the_token(ctx: &Ctx, name: &str, token: &str) {
    let (code, audit) = curl(
        &ctx.s.url,
        Some("bob"),
        "GET",
        &format!("/v1/audit?request={name}"),
        None,
    );
    assert_eq!(code, 200, "{audit}");
    let issued: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event"]["kind"] == "credentials.issued" || r["kind"] == "credentials.issued")
        .collect();
    // Two issues (README's curl, then `login`), each its own record.
    assert_eq!(issued.len(), 2, "{audit}");
    let text = issued[0].to_string();
    assert!(text.contains("\"alice\""), "{text}");
    assert!(text.contains(&format!("pc-{name}")), "{text}");
    assert!(text.contains("until"), "{text}");
    assert!(
        !audit.to_string().contains(token),
        "the token is never recorded"
    );
}

/// Revoke: the token dies within seconds.
async fn revoke_kills_the_token(ctx: &Ctx, path: &str, token: &str) {
    let s = &ctx.s;
    let body = decision(&s.url, "bob", path, json!({"reason": "done"}));
    let revoked = Instant::now();
    let (code, r) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("{path}/revoke"),
        Some(&body),
    );
    assert_eq!(code, 200, "{r}");
    until_rejected(&ctx.cp, token, revoked, "revoke").await;
    // And no more are issued for it.
    let (code, body) = curl(
        &s.url,
        Some("alice"),
        "POST",
        &format!("{path}/credentials"),
        None,
    );
    assert_eq!(code, 422, "{body}");
}

/// Shortened to now.
async fn shortened_to_now(ctx: &Ctx) {
    let (s, cp) = (&ctx.s, &ctx.cp);
    let path = granted(s, "30m");
    let name = path.rsplit('/').next().unwrap().to_string();
    let out = portcullis(s, cp, "alice", &["login", &name]);
    assert!(out.status.success(), "{out:?}");
    let token = token_in(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(with_token(cp, &token, "payments"), 200);
    // As near to now as a shorten goes (an end now is a revoke).
    let body = decision(&s.url, "bob", &path, json!({"to": "1s"}));
    let (code, r) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("{path}/shorten"),
        Some(&body),
    );
    assert_eq!(code, 200, "{r}");
    until_rejected_after_end(cp, &token, &r, "its shortened end (1 s after the shorten)").await;
}

/// Its own expiry: `request --credentials token --wait` prints the
/// kubeconfig once bob approves 15 seconds.
async fn its_own_expiry(ctx: &Ctx) {
    let (s, cp) = (&ctx.s, &ctx.cp);
    let waiting = portcullis_as(
        s,
        cp,
        "alice",
        &[
            "--context",
            "c1",
            "request",
            "--role",
            "view",
            "--cluster-role",
            "-n",
            "payments",
            "--for",
            "1h",
            "--reason",
            "INC-19 wait for a token",
            "--credentials",
            "token",
            "--wait",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pending = waiting_request(s).await;
    let path = format!("/v1/requests/c1/{pending}");
    let g = bob_approves(s, &path, "15s");
    let out = waiting.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = token_in(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(with_token(cp, &token, "payments"), 200);
    until_rejected_after_end(cp, &token, &g, "expiry").await;
}

/// The name of alice's waiting request, once it has arrived.
async fn waiting_request(s: &Served) -> String {
    let mut pending = String::new();
    wait_for("alice's request to arrive", 30, || {
        let (_, list) = curl(&s.url, Some("bob"), "GET", "/v1/requests", None);
        pending = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["spec"]["reason"] == "INC-19 wait for a token"
                    && !r["status"]["decision"].is_object()
            })
            .and_then(|r| r["name"].as_str())
            .unwrap_or_default()
            .to_string();
        let found = !pending.is_empty();
        async move { found }
    })
    .await;
    pending
}
