//! `portcullis serve` as a process against a real control plane: the hub
//! and two target "clusters" (two contexts of one control plane), callers
//! known only by their bearer tokens (TokenReview), every call made the way
//! an attacker would (curl with their own token) or through our console's
//! `http` backend; the server killed and restarted, two replicas, the live
//! stream resumed, and the admission webhook refusing direct-mode attacks.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cluster::{apply, can_i, docs_of, token, wait_for, ControlPlane};
use common::server::{ask, config, curl, decision, install_server, serve, token_or, Served};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::Api;
use portcullis::backend::http::HttpBackend;
use portcullis::backend::kube::KubeCluster;
use portcullis::backend::{AccessBackend, BackendEvent};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

/// `who` posts `body` to `/v1/requests` with their own token.
fn asks(s: &Served, who: &str, body: &Value) -> (u16, Value) {
    curl(&s.url, Some(who), "POST", "/v1/requests", Some(body))
}

/// `who` approves the request at `path` with `body`, naming what they
/// read of it first.
fn approve_as(s: &Served, who: &str, path: &str, body: Value) -> (u16, Value) {
    curl(
        &s.url,
        Some(who),
        "POST",
        &format!("{path}/approve"),
        Some(&decision(&s.url, who, path, body)),
    )
}

/// The message of an error answer.
fn message(e: &Value) -> &str {
    e["error"]["message"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_is_the_one_authority() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cp = ControlPlane::start();
    let admin = install_server(&cp).await;
    let cfg = config(&cp, "");
    let s = serve(&cp, &cfg, "http");
    who_is_calling(&s);
    what_can_never_be_granted_is_refused_when_asked(&s).await;
    let (name, path) = alice_asks_as_herself(&s);
    alice_cannot_approve(&cp, &s, &name, &path);
    bob_approves_narrower_and_shorter(&admin, &s, &path).await;
    bob_cannot_approve_his_own(&s);
    let _console = the_console_sees_a_new_request_live(&s).await;
    carol_revokes(&admin, &s, &path).await;
    only_the_requester_releases(&admin, &s).await;
    let s = kill_the_server_mid_grant(&cp, &admin, &cfg, s).await;
    let _twin = two_replicas_one_killed(&cp, &cfg, s).await;
    nothing_is_left_on_the_targets(&admin).await;
}

/// Who is calling: the hub's apiserver says; nobody else is anyone.
fn who_is_calling(s: &Served) {
    let (code, who) = curl(&s.url, Some("alice"), "GET", "/v1/whoami", None);
    assert_eq!(code, 200);
    assert_eq!(who["user"], "alice");
    assert_eq!(who["approver"], false);
    assert_eq!(
        curl(&s.url, Some("forged-token"), "GET", "/v1/whoami", None).0,
        401
    );
    assert_eq!(curl(&s.url, None, "GET", "/v1/requests", None).0, 401);
    assert_eq!(curl(&s.url, None, "GET", "/healthz", None).0, 200);
}

/// alice asks; the requester is her token's user whatever she claims.
/// Returns the request's name and its path.
/// Issue 21, item 11: a role c1 does not let approvers hand out, or a
/// namespace it does not have, is refused when asked (422 naming why),
/// not accepted to be refused at approval.
async fn what_can_never_be_granted_is_refused_when_asked(s: &Served) {
    let (code, e) = asks(s, "alice", &ask("c1", "admin", &["payments"], "30m"));
    assert_eq!(code, 422, "{e}");
    assert!(
        message(&e).contains("ClusterRole admin is not a grantable role"),
        "{e}"
    );
    // The namespaces are known once the server has c1's RBAC.
    wait_for("c1's inventory on the server", 30, || async {
        curl(
            &s.url,
            Some("bob"),
            "GET",
            "/v1/clusters/c1/inventory",
            None,
        )
        .0 == 200
    })
    .await;
    let (code, e) = asks(
        s,
        "alice",
        &ask("c1", "view", &["no-such-namespace"], "30m"),
    );
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["error"]["field"], "namespaces", "{e}");
    assert!(
        message(&e).contains("namespace 'no-such-namespace' does not exist on c1"),
        "{e}"
    );
}

fn alice_asks_as_herself(s: &Served) -> (String, String) {
    let mut body = ask("c1", "edit", &["payments", "orders"], "1h");
    body["requester"] = json!({"user": "bob"});
    assert_eq!(asks(s, "alice", &body).0, 422, "unknown fields refused");
    let (code, made) = asks(
        s,
        "alice",
        &ask("c1", "edit", &["payments", "orders"], "1h"),
    );
    assert_eq!(code, 201, "{made}");
    assert_eq!(made["spec"]["requester"]["user"], "alice");
    let name = made["name"].as_str().unwrap().to_string();
    let path = format!("/v1/requests/c1/{name}");
    // ... over the limit, an unknown cluster, a bad duration: 422 naming why.
    let (code, e) = asks(s, "alice", &ask("c1", "view", &["orders"], "3h"));
    assert_eq!(code, 422);
    assert!(message(&e).contains("maximum of 2h"), "{e}");
    assert_eq!(
        asks(s, "alice", &ask("nowhere", "view", &["orders"], "1h")).0,
        422
    );
    let (code, e) = asks(s, "alice", &ask("c1", "view", &["orders"], "soon"));
    assert_eq!(
        (code, e["error"]["field"].as_str()),
        (422, Some("duration")),
        "{e}"
    );
    (name, path)
}

/// alice cannot approve; her kubectl cannot write status either.
fn alice_cannot_approve(cp: &ControlPlane, s: &Served, name: &str, path: &str) {
    let (code, e) = approve_as(s, "alice", path, json!({}));
    assert_eq!(code, 403, "{e}");
    assert!(message(&e).contains("approvers list"), "{e}");
    let (code, _) = cp.raw(
        "alice",
        "PATCH",
        &format!("/apis/portcullis.dev/v1alpha1/accessrequests/{name}/status"),
        Some(r#"{"status":{"phase":"Active","expiresAt":"2099-01-01T00:00:00Z"}}"#),
    );
    assert_eq!(code, 403);
}

/// bob approves narrower and shorter: the server binds on the target.
async fn bob_approves_narrower_and_shorter(admin: &KubeCluster, s: &Served, path: &str) {
    let (code, g) = approve_as(
        s,
        "bob",
        path,
        json!({"duration": "20m", "namespaces": ["payments"]}),
    );
    assert_eq!(code, 200, "{g}");
    assert_eq!(g["status"]["phase"], "Active");
    assert_eq!(g["status"]["decision"]["by"], "bob");
    assert!(can_i(admin, "alice", "list", "", "pods", Some("payments")).await);
    assert!(!can_i(admin, "alice", "list", "", "pods", Some("orders")).await);
    // A second approval: 409, saying who decided.
    let (code, e) = approve_as(s, "carol", path, json!({}));
    assert_eq!(code, 409, "{e}");
}

/// bob cannot approve his own request, whatever his kubeconfig says.
fn bob_cannot_approve_his_own(s: &Served) {
    let (_, own) = asks(s, "bob", &ask("c1", "view", &["orders"], "1h"));
    let own_path = format!("/v1/requests/c1/{}", own["name"].as_str().unwrap());
    let (code, e) = approve_as(s, "bob", &own_path, json!({}));
    assert_eq!(code, 403, "{e}");
    assert!(message(&e).contains("someone else must approve"), "{e}");
}

/// The console on --backend sees a new request live. Returns the console
/// and its stream (kept open, as before the split).
async fn the_console_sees_a_new_request_live(
    s: &Served,
) -> (HttpBackend, UnboundedReceiver<BackendEvent>) {
    let console = HttpBackend::connect(&s.url, token("carol").into(), None)
        .await
        .expect("connect");
    assert_eq!(console.info().approver.user, "carol");
    let mut events = console.watch();
    let (_, fresh) = asks(s, "alice", &ask("c2", "view", &["orders"], "1h"));
    let fresh_name = fresh["name"].as_str().unwrap().to_string();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = events.recv().await {
            if matches!(&e, BackendEvent::Upsert(r) if r.name == fresh_name && r.cluster == "c2") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(seen, "the new request reached the console's stream");
    (console, events)
}

/// carol revokes; access ends; the record says who and why.
async fn carol_revokes(admin: &KubeCluster, s: &Served, path: &str) {
    let (code, r) = curl(
        &s.url,
        Some("carol"),
        "POST",
        &format!("{path}/revoke"),
        Some(&json!({"reason": "done"})),
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"]["revokedBy"], "carol");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("revoked and verified"),
        "{r}"
    );
    assert!(!can_i(admin, "alice", "list", "", "pods", Some("payments")).await);
}

/// "I'm done": only the requester releases her own grant, with her own
/// token; an approver's token (carol) or another user's (bob) is refused
/// and the grant stays; hers ends it, verified like a revoke.
async fn only_the_requester_releases(admin: &KubeCluster, s: &Served) {
    let (_, mine) = asks(s, "alice", &ask("c1", "view", &["payments"], "1h"));
    let mine_path = format!("/v1/requests/c1/{}", mine["name"].as_str().unwrap());
    let (code, g) = approve_as(s, "bob", &mine_path, json!({}));
    assert_eq!(code, 200, "{g}");
    assert!(can_i(admin, "alice", "list", "", "pods", Some("payments")).await);
    for other in ["bob", "carol"] {
        let (code, e) = curl(
            &s.url,
            Some(other),
            "POST",
            &format!("{mine_path}/release"),
            Some(&json!({})),
        );
        assert!((400..500).contains(&code), "{other}: {code} {e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("alice"),
            "{other}: {e}"
        );
    }
    assert!(
        can_i(admin, "alice", "list", "", "pods", Some("payments")).await,
        "a refused release changes nothing"
    );
    let (code, r) = curl(
        &s.url,
        Some("alice"),
        "POST",
        &format!("{mine_path}/release"),
        Some(&json!({})),
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["status"]["revokedBy"], "alice");
    assert_eq!(r["status"]["phase"], "Released", "a release is no revoke");
    assert!(!can_i(admin, "alice", "list", "", "pods", Some("payments")).await);
}

/// Kill the server mid-grant: nothing lost; the grant still ends on time
/// (the restarted server's reaper); the request list is the same.
/// Returns the restarted server.
async fn kill_the_server_mid_grant(
    cp: &ControlPlane,
    admin: &KubeCluster,
    cfg: &Path,
    s: Served,
) -> Served {
    let (_, short) = asks(&s, "alice", &ask("c1", "view", &["orders"], "1h"));
    let short_path = format!("/v1/requests/c1/{}", short["name"].as_str().unwrap());
    assert_eq!(
        approve_as(&s, "bob", &short_path, json!({"duration": "6s"})).0,
        200
    );
    let before = curl(&s.url, Some("bob"), "GET", "/v1/requests", None).1["items"]
        .as_array()
        .unwrap()
        .len();
    drop(s);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = serve(cp, cfg, "http");
    let after = curl(&s.url, Some("bob"), "GET", "/v1/requests", None).1["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "nothing lost across a restart");
    wait_for("the grant to end on time after the restart", 30, || async {
        curl(&s.url, Some("bob"), "GET", &short_path, None).1["status"]["phase"] == "Expired"
    })
    .await;
    assert!(!can_i(admin, "alice", "list", "", "pods", Some("orders")).await);
    s
}

/// Two replicas; one killed: the other keeps serving and reaping.
/// Returns the survivor.
async fn two_replicas_one_killed(cp: &ControlPlane, cfg: &Path, s: Served) -> Served {
    let twin = serve(cp, cfg, "http");
    let (_, r2) = asks(&twin, "alice", &ask("c2", "view", &["orders"], "1h"));
    let r2_path = format!("/v1/requests/c2/{}", r2["name"].as_str().unwrap());
    assert_eq!(
        approve_as(&s, "bob", &r2_path, json!({"duration": "5s"})).0,
        200
    );
    drop(s);
    wait_for("the surviving replica to end the grant", 30, || async {
        curl(&twin.url, Some("bob"), "GET", &r2_path, None).1["status"]["phase"] == "Expired"
    })
    .await;
    let (code, metrics) =
        common::http::get(&format!("{}/metrics", twin.url), Duration::from_secs(10));
    assert_eq!(code, 200);
    for line in [
        "portcullis_requests{phase=\"Expired\"}",
        "portcullis_reaper_lag_seconds_count",
        "portcullis_sse_clients",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    twin
}

/// Nothing of the ended grants is left on the targets.
async fn nothing_is_left_on_the_targets(admin: &KubeCluster) {
    let left = Api::<RoleBinding>::all(admin.client.clone())
        .list(&Default::default())
        .await
        .unwrap();
    let grants: Vec<String> = left
        .items
        .iter()
        .filter(|b| {
            b.metadata
                .labels
                .clone()
                .unwrap_or_default()
                .contains_key("portcullis.dev/request")
        })
        .filter_map(|b| b.metadata.name.clone())
        .collect();
    assert!(
        grants.is_empty(),
        "no grant's binding outlives it: {grants:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_resumes_without_a_gap_or_a_duplicate() {
    let cp = ControlPlane::start();
    install_server(&cp).await;
    let cfg = config(&cp, "");
    let s = serve(&cp, &cfg, "http");
    let stream = |last: Option<&str>| {
        common::http::stream_from(
            &format!("{}/v1/events", s.url),
            token("bob"),
            last,
            Duration::from_secs(3),
        )
    };
    let first = stream(None);
    assert!(
        first.contains("event: snapshot") && first.contains("event: snapshot-done"),
        "{first}"
    );
    let last_id = first
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .next_back()
        .expect("ids")
        .to_string();
    // Two requests while nobody listens...
    let mut names = Vec::new();
    for _ in 0..2 {
        let (_, r) = curl(
            &s.url,
            Some("alice"),
            "POST",
            "/v1/requests",
            Some(&ask("c1", "view", &["orders"], "1h")),
        );
        names.push(r["name"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ... arrive exactly once each on resuming, with no snapshot.
    let resumed = stream(Some(&last_id));
    assert!(!resumed.contains("event: snapshot"), "{resumed}");
    for n in &names {
        let times = resumed
            .lines()
            .filter(|l| l.starts_with("data: ") && l.contains(&format!("\"name\":\"{n}\"")))
            .count();
        assert_eq!(times, 1, "{n} in {resumed}");
    }
    // An id from another process gets a fresh, bracketed snapshot.
    let other = stream(Some("0-1"));
    assert!(other.contains("event: snapshot-done"));
}

const AR: &str = "/apis/portcullis.dev/v1alpha1/accessrequests";

/// An AccessRequest made directly (kubectl's way), by `user` in
/// `requester`'s name.
fn direct_request(user: &str, requester: &str) -> String {
    json!({"apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
           "metadata": {"generateName": format!("{user}-")},
           "spec": {"requester": {"user": requester, "groups": ["dev"]}, "role": {"kind": "ClusterRole", "name": "view"},
                    "namespaces": ["orders"], "duration": "1h", "reason": "direct"}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_refuses_direct_mode_attacks() {
    let cp = ControlPlane::start();
    let admin = install_server(&cp).await;
    make_a_test_ca_and_certificate(&cp);
    let s = serve_with_the_webhook(&cp, &admin).await;
    let name = the_webhook_holds_requesters_to_their_name(&cp).await;
    an_approver_cannot_forge_a_decision(&cp, &name);
    every_denial_is_on_the_record(&s);
    the_policy_on_direct_writes(&cp);
    the_server_carries_the_lifecycle_through(&cp, &s, &name);
}

/// A test CA and a serving certificate for 127.0.0.1.
fn make_a_test_ca_and_certificate(cp: &ControlPlane) {
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(&cp.dir)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=portcullis-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "tls.key",
        "-out",
        "tls.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::File::create(cp.dir.join("san.ext"))
        .unwrap()
        .write_all(b"subjectAltName=IP:127.0.0.1\n")
        .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tls.crt",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
}

/// The shipped policies: the webhook enforces them on direct writes. The
/// server over TLS, its webhook registered with the apiserver.
async fn serve_with_the_webhook(cp: &ControlPlane, admin: &KubeCluster) -> Served {
    let policies = cp.dir.join("webhook-policies");
    std::fs::create_dir_all(&policies).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for f in ["portcullis.rego", "data.json"] {
        std::fs::copy(shipped.join(f), policies.join(f)).unwrap();
    }
    let cfg = config(
        cp,
        &format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\npolicy = \"{}\"\n[webhook]\nenabled = true\nprivileged = [\"server\", \"reaper\"]\n",
            cp.dir.join("tls.crt").display(),
            cp.dir.join("tls.key").display(),
            policies.display()
        ),
    );
    let s = serve(cp, &cfg, "https");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "crds",
            "--webhook",
            // The cluster in the path: the apiserver takes this form (it
            // refuses a query in a webhook URL).
            &format!("{}/validate/c1", s.url),
            "--ca-file",
        ])
        .arg(cp.dir.join("ca.crt"))
        .output()
        .unwrap();
    assert!(out.status.success());
    for doc in docs_of(&String::from_utf8_lossy(&out.stdout)) {
        if doc["kind"] == "ValidatingWebhookConfiguration" {
            let path = cp.dir.join("webhook.yaml");
            std::fs::write(&path, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
            let ok = Command::new("kubectl")
                .args(["--context", "admin", "apply", "-f"])
                .arg(&path)
                .env("KUBECONFIG", cp.kubeconfig())
                .status();
            if !ok.is_ok_and(|s| s.success()) {
                // No kubectl: apply it with our client.
                let api: Api<
                    k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
                > = Api::all(admin.client.clone());
                api.create(&Default::default(), &serde_json::from_value(doc).unwrap())
                    .await
                    .unwrap();
            }
        }
    }
    s
}

/// The webhook is called: nobody asks in another's name, and another
/// requester cannot withdraw alice's request. Returns its name.
async fn the_webhook_holds_requesters_to_their_name(cp: &ControlPlane) -> String {
    // The webhook is called (the apiserver may take a moment to use it).
    wait_for("the webhook to be in force", 30, || async {
        cp.raw(
            "mallory",
            "POST",
            AR,
            Some(&direct_request("mallory", "alice")),
        )
        .0 == 403
    })
    .await;
    let (code, text) = cp.raw(
        "mallory",
        "POST",
        AR,
        Some(&direct_request("mallory", "alice")),
    );
    assert_eq!(code, 403);
    assert!(
        text.contains("spec.requester.user must be you (mallory)"),
        "{text}"
    );
    let (code, text) = cp.raw("alice", "POST", AR, Some(&direct_request("alice", "alice")));
    assert_eq!(code, 201, "{text}");
    let name = serde_json::from_str::<Value>(&text).unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    // Another requester cannot withdraw it; only alice can.
    let (code, text) = cp.raw("mallory", "DELETE", &format!("{AR}/{name}"), None);
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("only its requester"), "{text}");
    name
}

/// An approver cannot record a decision under another name, nor a grant
/// longer than its decision, nor change the spec, nor point a status at a
/// standing binding.
fn an_approver_cannot_forge_a_decision(cp: &ControlPlane, name: &str) {
    let forged = json!({"status": {"phase": "Active", "decision": {"by": "carol", "at": chrono::Utc::now().to_rfc3339(), "verdict": "Approved", "duration": "10m", "namespaces": ["orders"]}, "expiresAt": "2099-01-01T00:00:00Z"}});
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &format!("{AR}/{name}/status"),
        Some(&forged.to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("decision.by must be you (bob)"), "{text}");
    let now = chrono::Utc::now();
    let longer = json!({"status": {"phase": "Active", "decision": {"by": "bob", "at": now.to_rfc3339(), "verdict": "Approved", "duration": "10m", "namespaces": ["orders"]}, "grantedAt": now.to_rfc3339(), "expiresAt": "2099-01-01T00:00:00Z"}});
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &format!("{AR}/{name}/status"),
        Some(&longer.to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("past the decision's time plus its duration"),
        "{text}"
    );
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &format!("{AR}/{name}"),
        Some(r#"{"spec":{"role":{"kind":"ClusterRole","name":"cluster-admin"}}}"#),
    );
    assert_eq!(code, 403, "{text}");
    // An approver cannot point a status at a standing binding (what an
    // end deletes): neither by its own name nor under the name of this
    // request's binding with another object's uid.
    for binding in [
        json!({"kind": "RoleBinding", "namespace": "orders", "name": "team-admins", "uid": "u-1"}),
        json!({"kind": "ClusterRoleBinding", "name": "portcullis-server", "uid": "u-2"}),
    ] {
        let (code, text) = cp.raw(
            "bob",
            "PATCH",
            &format!("{AR}/{name}/status"),
            Some(&json!({"status": {"bindings": [binding]}}).to_string()),
        );
        assert_eq!(code, 403, "{text}");
        assert!(text.contains("not an object Portcullis makes"), "{text}");
    }
}

/// Every denial is on the server's record, in the writer's name.
fn every_denial_is_on_the_record(s: &Served) {
    let (code, audit) = curl(&s.url, Some("bob"), "GET", "/v1/audit?user=bob", None);
    assert_eq!(code, 200, "{audit}");
    assert!(
        audit
            .to_string()
            .contains("admission: update accessrequests/status"),
        "{audit}"
    );
}

/// The policy, enforced on direct writes: longer than it allows is never
/// created; a critical diff needs two approvers, each writing only their
/// own review.
fn the_policy_on_direct_writes(cp: &ControlPlane) {
    let mut long: Value = serde_json::from_str(&direct_request("alice", "alice")).unwrap();
    long["spec"]["duration"] = json!("9h");
    let (code, text) = cp.raw("alice", "POST", AR, Some(&long.to_string()));
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("refused by policy"), "{text}");
    // edit reads Secrets: critical, two approvers.
    let mut crit: Value = serde_json::from_str(&direct_request("alice", "alice")).unwrap();
    crit["spec"]["role"]["name"] = json!("edit");
    crit["spec"]["namespaces"] = json!(["payments"]);
    let (code, text) = cp.raw("alice", "POST", AR, Some(&crit.to_string()));
    assert_eq!(code, 201, "{text}");
    let crit_name = serde_json::from_str::<Value>(&text).unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let now = chrono::Utc::now().to_rfc3339();
    let review = |by: &str| json!({"by": by, "at": now, "verdict": "Approved", "duration": "30m", "namespaces": ["payments"]});
    // bob (on-call) grants it alone: one approval of two.
    let alone = json!({"status": {"phase": "Active", "decision": {"by": "bob", "at": now, "verdict": "Approved", "duration": "30m", "namespaces": ["payments"]},
        "grantedAt": now, "expiresAt": (chrono::Utc::now() + chrono::TimeDelta::minutes(30)).to_rfc3339(), "reviews": [review("bob")]}});
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &format!("{AR}/{crit_name}/status"),
        Some(&alone.to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("1 of 2 approvals"), "{text}");
    // bob writes carol's approval next to his: forged.
    let forged = json!({"status": {"reviews": [review("carol")]}});
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &format!("{AR}/{crit_name}/status"),
        Some(&forged.to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("a review is by you (bob), not carol"),
        "{text}"
    );
    // His own review alone is what he may write.
    let own = json!({"status": {"reviews": [review("bob")]}});
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &format!("{AR}/{crit_name}/status"),
        Some(&own.to_string()),
    );
    assert_eq!(code, 200, "{text}");
}

/// The server itself (privileged) carries the lifecycle through.
fn the_server_carries_the_lifecycle_through(cp: &ControlPlane, s: &Served, name: &str) {
    let (code, g) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("/v1/requests/c1/{name}/approve"),
        None,
    );
    // The request was made directly (no spec.cluster): the server does not
    // own it and says so; its own requests go through.
    assert_eq!(code, 404, "{g}");
    let (code, mine) = asks(s, "alice", &ask("c1", "view", &["orders"], "1h"));
    assert_eq!(code, 201, "{mine}");
    let mine_path = format!("/v1/requests/c1/{}", mine["name"].as_str().unwrap());
    let (code, g) = approve_as(s, "bob", &mine_path, json!({}));
    assert_eq!(code, 200, "the server's own writes pass the webhook: {g}");
    let (code, text) = cp.raw(
        "alice",
        "DELETE",
        &format!("{AR}/{}", mine["name"].as_str().unwrap()),
        None,
    );
    assert_eq!(code, 403, "a live grant is not deleted by hand: {text}");
}

/// The shipped example policies (with this cluster's data) as the
/// server's policy: refused requests, two approvers for critical diffs,
/// on-call self-service, approvers by team, a broken policy kept out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_enforces_the_policy() {
    let cp = ControlPlane::start();
    let admin = install_server(&cp).await;
    let (dir, s) = serve_the_shipped_policies(&cp);
    a_ticketless_request_on_prod(&s);
    let crit = a_critical_diff_needs_two_approvers(&admin, &s).await;
    let live_name = crit["name"].as_str().unwrap().to_string();
    let ext_name = alice_extends_with_the_cli(&cp, &s, &live_name);
    an_extension_is_critical_again(&s, &ext_name, &live_name);
    nobody_else_extends_nor_widens(&s, &live_name);
    on_call_reads_approve_themselves(&admin, &s).await;
    the_verdict_travels_with_the_request(&s).await;
    a_broken_policy_is_kept_out(&s, &dir).await;
}

/// The shipped policies with this cluster's data, served with dev in the
/// approvers list (the policy narrows it to the owning team and on-call).
/// Returns the policy folder and the server.
fn serve_the_shipped_policies(cp: &ControlPlane) -> (PathBuf, Served) {
    let dir = cp.dir.join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for f in ["portcullis.rego", "portcullis_test.rego"] {
        std::fs::copy(shipped.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(
        dir.join("data.json"),
        r#"{"limits": {"c1": 3600}, "teams": {"payments": "payments-team"}}"#,
    )
    .unwrap();
    // dev may approve as far as the server's config goes; the policy
    // narrows it to the owning team and on-call.
    let extra = format!(
        "policy = \"{}\"\napprovers = [\"group:oncall\", \"group:dev\"]\n",
        dir.display()
    );
    let path = cp.dir.join("policy-server.toml");
    std::fs::write(
        &path,
        format!(
            r#"hub = "server"
{extra}
[clusters.c1]
context = "c1"
labels = {{ env = "prod" }}
[clusters.c2]
context = "c2"
labels = {{ env = "staging" }}
"#
        ),
    )
    .unwrap();
    let s = serve(cp, &path, "http");
    (dir, s)
}

/// A ticketless request on prod: refused, with the policy's reason.
fn a_ticketless_request_on_prod(s: &Served) {
    let mut ticketless = ask("c1", "view", &["orders"], "30m");
    let (code, e) = asks(s, "alice", &ticketless);
    assert_eq!(code, 403, "{e}");
    assert!(
        message(&e).contains("a ticket is required on production clusters"),
        "{e}"
    );
    ticketless["ticket"] = json!("INC-7");
    assert_eq!(asks(s, "alice", &ticketless).0, 201);
    // Longer than the cluster allows (data.limits.c1 = 1h): refused.
    let mut long = ask("c1", "view", &["orders"], "2h");
    long["ticket"] = json!("INC-7");
    let (code, e) = asks(s, "alice", &long);
    assert_eq!(code, 403, "{e}");
}

/// A critical diff (edit reads Secrets) needs two distinct approvers; the
/// requester never counts; the same approver twice counts once. Returns
/// the request, live.
async fn a_critical_diff_needs_two_approvers(admin: &KubeCluster, s: &Served) -> Value {
    let (_, crit) = asks(s, "alice", &ask("c2", "edit", &["payments"], "30m"));
    let crit_path = format!("/v1/requests/c2/{}", crit["name"].as_str().unwrap());
    let (code, one) = approve_as(s, "bob", &crit_path, json!({}));
    assert_eq!(code, 200, "{one}");
    assert_eq!(
        one["status"]["phase"], "Pending",
        "one approval is not enough: {one} (created: {crit})"
    );
    assert_eq!(one["status"]["reviews"][0]["by"], "bob");
    assert!(!can_i(admin, "alice", "list", "", "pods", Some("payments")).await);
    let (code, again) = approve_as(s, "bob", &crit_path, json!({}));
    assert!(code >= 400, "bob twice: {again}");
    assert!(message(&again).contains("already approved"), "{again}");
    let (code, own) = approve_as(s, "alice", &crit_path, json!({}));
    assert!(code == 403, "{own}");
    // mallory (dev) passes the server's list, not the policy's.
    let (code, e) = approve_as(s, "mallory", &crit_path, json!({}));
    assert_eq!(code, 403, "{e}");
    let why = message(&e);
    assert!(
        why.contains("team-owns-namespace") && why.contains("oncall-approves-anything"),
        "{e}"
    );
    let (code, two) = approve_as(s, "carol", &crit_path, json!({}));
    assert_eq!(code, 200, "{two}");
    assert_eq!(two["status"]["phase"], "Active");
    assert!(can_i(admin, "alice", "list", "", "pods", Some("payments")).await);
    crit
}

/// Extensions: alice asks for more time on her live grant with the CLI.
/// Returns the extension's name.
fn alice_extends_with_the_cli(cp: &ControlPlane, s: &Served, live_name: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "--backend",
            &s.url,
            "--context",
            "c2",
            "request",
            "--extend",
        ])
        .arg(live_name)
        .args(["--for", "30m", "--reason", "INC-7 still digging"])
        .env("PORTCULLIS_TOKEN", token_or("alice"))
        .env("KUBECONFIG", cp.dir.join("no-kubeconfig"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ext_name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (_, ext) = curl(
        &s.url,
        Some("bob"),
        "GET",
        &format!("/v1/requests/c2/{ext_name}"),
        None,
    );
    assert_eq!(ext["spec"]["extends"], live_name, "{ext}");
    assert_eq!(ext["status"]["phase"], "Pending", "{ext}");
    ext_name
}

/// It goes through the same policy and reviews: critical again, two
/// approvals; the policy says it is an extension.
fn an_extension_is_critical_again(s: &Served, ext_name: &str, live_name: &str) {
    // The extension was just made: the server's list has it (with its
    // verdict) once the hub's watch has brought it in.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let verdict = loop {
        let (_, listed) = curl(
            &s.url,
            Some("bob"),
            "GET",
            "/v1/requests?phase=Pending",
            None,
        );
        let verdict = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == ext_name)
            .map(|i| i["policy"].clone())
            .unwrap_or_default();
        if !verdict.is_null() || std::time::Instant::now() > deadline {
            break verdict;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(verdict["approvalsRequired"], 2, "{verdict}");
    assert!(
        verdict["messages"]
            .to_string()
            .contains(&format!("extension of {live_name}")),
        "{verdict}"
    );
}

/// mallory cannot extend alice's grant, nor anyone a grant that is not
/// live; nor ask for more than the live grant holds.
fn nobody_else_extends_nor_widens(s: &Served, live_name: &str) {
    let mut theirs = ask("c2", "edit", &["payments"], "30m");
    theirs["extends"] = json!(live_name);
    let (code, e) = asks(s, "mallory", &theirs);
    assert_eq!(code, 422, "{e}");
    assert!(message(&e).contains("alice's grant"), "{e}");
    // Nor ask for more than the live grant holds.
    let mut wider = ask("c2", "admin", &["payments"], "30m");
    wider["extends"] = json!(live_name);
    let (code, e) = asks(s, "alice", &wider);
    assert_eq!(code, 422, "{e}");
}

/// On-call reads for a short while approve themselves, end on time.
async fn on_call_reads_approve_themselves(admin: &KubeCluster, s: &Served) {
    let (code, selfserve) = asks(s, "bob", &ask("c2", "view", &["orders"], "20s"));
    assert_eq!(code, 201, "{selfserve}");
    assert_eq!(selfserve["status"]["phase"], "Active");
    assert_eq!(
        selfserve["status"]["decision"]["by"],
        "policy:oncall-read-self-service"
    );
    assert!(can_i(admin, "bob", "list", "", "pods", Some("orders")).await);
    let sp = format!("/v1/requests/c2/{}", selfserve["name"].as_str().unwrap());
    wait_for("the self-served grant to end on time", 60, || async {
        curl(&s.url, Some("bob"), "GET", &sp, None).1["status"]["phase"] == "Expired"
    })
    .await;
    assert!(!can_i(admin, "bob", "list", "", "pods", Some("orders")).await);
}

/// The verdict travels with the request: the console reads it.
async fn the_verdict_travels_with_the_request(s: &Served) {
    let (_, pending) = asks(s, "alice", &ask("c2", "edit", &["payments"], "30m"));
    // The list is the server's view of the clusters: the new request is
    // in it once the watch brings it (milliseconds after the POST).
    let listed = || {
        let (_, shown) = curl(
            &s.url,
            Some("bob"),
            "GET",
            "/v1/requests?phase=Pending",
            None,
        );
        shown["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == pending["name"])
            .cloned()
            .unwrap_or_default()
    };
    wait_for("the new request in the list", 10, || async {
        !listed().is_null()
    })
    .await;
    let mine = listed();
    assert_eq!(mine["policy"]["approvalsRequired"], 2, "{mine}");
}

/// A broken policy file is refused; the previous policy stays in force.
async fn a_broken_policy_is_kept_out(s: &Served, dir: &Path) {
    std::fs::write(
        dir.join("broken.rego"),
        "package portcullis\n\ndeny contains x if {\n",
    )
    .unwrap();
    wait_for("the failed reload to be reported", 30, || async {
        common::http::get(&format!("{}/readyz", s.url), Duration::from_secs(10))
            .1
            .contains("did not load")
    })
    .await;
    let mut again = ask("c1", "view", &["orders"], "30m");
    let (code, e) = asks(s, "alice", &again);
    assert_eq!(code, 403, "the old policy still refuses: {e}");
    again["ticket"] = json!("INC-8");
    assert_eq!(asks(s, "alice", &again).0, 201);
}

/// The server binds as its own identity: when Kubernetes' escalation check
/// refuses it, the approver's CLI says so in one line naming what the
/// server needs (`bind` on the role), the rules only under `-v`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_refusal_through_the_server_is_one_line() {
    let cp = ControlPlane::start();
    let admin = install_server(&cp).await;
    apply(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "payments-reader"},
               "rules": [{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list"]}]}),
    )
    .await;
    let cfg = config(&cp, "");
    let s = serve(&cp, &cfg, "http");
    let (code, asked) = curl(
        &s.url,
        Some("alice"),
        "POST",
        "/v1/requests",
        Some(&ask("c2", "payments-reader", &["payments"], "30m")),
    );
    assert_eq!(code, 201, "{asked}");
    let name = asked["name"].as_str().unwrap().to_string();
    let approve = |verbose: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        c.args(["approve", &format!("c2/{name}"), "--backend", &s.url])
            .env("PORTCULLIS_TOKEN", token_or("bob"))
            .env("KUBECONFIG", cp.dir.join("no-kubeconfig"))
            .env_remove("PORTCULLIS_LOG");
        if verbose {
            c.arg("-v");
        }
        c.output().unwrap()
    };
    let out = approve(false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("the Portcullis server (server) would grant 4 permissions it does not hold, e.g. get configmaps in payments")
            && err.contains("give the server's identity (server) `bind` on clusterrole payments-reader"),
        "{err}"
    );
    let out = approve(true);
    let full = String::from_utf8_lossy(&out.stderr);
    assert!(
        full.lines().filter(|l| l.contains("APIGroups")).count() >= 1
            && full
                .lines()
                .next()
                .unwrap()
                .contains("would grant 4 permissions"),
        "-v lists the rules: {full}"
    );
    let (_, now) = curl(
        &s.url,
        Some("bob"),
        "GET",
        &format!("/v1/requests/c2/{name}"),
        None,
    );
    assert_eq!(now["status"]["phase"], "Pending", "nothing granted");
}

/// Issue 21, item 1: a hub that is also a target ("local", the same
/// context). What was decided there in direct mode before the server
/// started is shown under that cluster, and recorded as the request
/// object's word (`request-object`), never as a caller the server
/// verified; what goes through the server afterwards is recorded with the
/// verified caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_the_server_only_read_is_on_the_record_as_the_objects_word() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cp = ControlPlane::start();
    let _admin = install_server(&cp).await;
    let (name, pending) = decided_in_direct_mode_before_the_server(&cp);
    let log = cp.dir.join("audit-local.jsonl");
    let s = serve_with_the_hub_as_local(&cp, &log);
    the_history_is_the_objects_word(&s, &log, &name).await;
    what_it_never_checked_it_does_not_grant(&s, &pending);
    carol_revokes_on_the_record(&s, &log, &name).await;
    audit_show_finds_it_by_cluster(&log, &name);
}

/// alice asks and bob approves, in direct mode on the hub; alice asks
/// again and that one stays pending. Returns both names.
fn decided_in_direct_mode_before_the_server(cp: &ControlPlane) -> (String, String) {
    use common::cli::{ok, portcullis};
    let ask = |role: &str, ns: &str, reason: &str| {
        ok(&portcullis(
            cp,
            "alice",
            &[
                "request",
                "--role",
                role,
                "--cluster-role",
                "-n",
                ns,
                "--for",
                "30m",
                "--reason",
                reason,
                "--group",
                "dev",
            ],
        ))
        .trim()
        .to_string()
    };
    let name = ask("edit", "payments", "INC-21 before the server");
    ok(&portcullis(cp, "bob", &["approve", &name, "--for", "10m"]));
    let pending = ask("view", "orders", "INC-21 still pending");
    (name, pending)
}

/// The server, its hub also its target `local`, with an audit log.
fn serve_with_the_hub_as_local(cp: &ControlPlane, log: &Path) -> Served {
    let cfg = cp.dir.join("server-local.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"hub = "server"
approvers = ["group:oncall"]
[audit]
log = "{}"
[clusters.local]
context = "server"
grantable = ["ClusterRole/edit", "ClusterRole/view"]
"#,
            log.display()
        ),
    )
    .unwrap();
    serve(cp, &cfg, "http")
}

/// The records of request `name` in `log`.
fn records_of(log: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &Value| r["request"] == name)
        .collect()
}

/// Listed under the cluster it is on; its history recorded as the
/// object's word, every record naming the cluster.
async fn the_history_is_the_objects_word(s: &Served, log: &Path, name: &str) {
    let (code, r) = curl(
        &s.url,
        Some("bob"),
        "GET",
        &format!("/v1/requests/local/{name}"),
        None,
    );
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["cluster"], "local");
    assert_eq!(r["status"]["phase"], "Active");
    wait_for("the history's records", 30, || async {
        records_of(log, name)
            .iter()
            .any(|r| r["kind"] == "grant.started")
    })
    .await;
    for r in records_of(log, name) {
        assert_eq!(r["cluster"], "local", "every record names its cluster: {r}");
        if let Some(by) = r["actor"]["verifiedBy"].as_str() {
            assert!(
                ["request-object", "policy", "reaper"].contains(&by),
                "the server verified nobody here: {r}"
            );
        }
    }
    let approved: Vec<Value> = records_of(log, name)
        .into_iter()
        .filter(|r| r["kind"] == "review.approved")
        .collect();
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(approved[0]["actor"]["user"], "bob");
    assert_eq!(approved[0]["actor"]["verifiedBy"], "request-object");
}

/// What the server never checked when it was asked, it does not grant
/// (it may only take access away).
fn what_it_never_checked_it_does_not_grant(s: &Served, pending: &str) {
    let path = format!("/v1/requests/local/{pending}");
    let (code, e) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("{path}/approve"),
        Some(&decision(&s.url, "bob", &path, json!({}))),
    );
    assert_eq!(code, 422, "{e}");
    assert!(
        message(&e).contains("asked in direct mode on the hub"),
        "{e}"
    );
}

/// Through the server: carol's revoke is hers, verified.
async fn carol_revokes_on_the_record(s: &Served, log: &Path, name: &str) {
    let (code, r) = curl(
        &s.url,
        Some("carol"),
        "POST",
        &format!("/v1/requests/local/{name}/revoke"),
        Some(&json!({"reason": "INC-21 over"})),
    );
    assert_eq!(code, 200, "{r}");
    wait_for("the revoke's record", 30, || async {
        records_of(log, name)
            .iter()
            .any(|r| r["kind"] == "grant.revoked")
    })
    .await;
    let revoked = records_of(log, name)
        .into_iter()
        .find(|r| r["kind"] == "grant.revoked")
        .unwrap();
    assert_eq!(revoked["actor"]["user"], "carol");
    assert_eq!(revoked["actor"]["verifiedBy"], "TokenReview");
}

/// `audit show --request local/NAME` finds it, each actor with how it is
/// known.
fn audit_show_finds_it_by_cluster(log: &Path, name: &str) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["audit", "show", "--file"])
        .arg(log)
        .args(["--request", &format!("local/{name}")])
        .output()
        .unwrap();
    let shown = common::cli::ok(&o);
    let line = |kind: &str| {
        shown
            .lines()
            .find(|l| l.contains(kind))
            .unwrap_or_else(|| panic!("{kind} in {shown}"))
            .to_string()
    };
    assert!(
        line("request.created").contains(&format!("local/{name}")),
        "{shown}"
    );
    assert!(
        line("request.created").contains("alice (request-object)"),
        "{shown}"
    );
    assert!(
        line("review.approved").contains("bob (request-object)"),
        "{shown}"
    );
    assert!(
        line("grant.revoked").contains("carol (TokenReview)"),
        "{shown}"
    );
}

/// Issue 22: an ended request leaves the hub once its cluster's
/// retention has passed, its history staying in the audit log; a pending
/// or live one stays whatever its age.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_request_leaves_the_hub_after_its_retention_and_its_history_stays() {
    let cp = ControlPlane::start();
    install_server(&cp).await;
    let log = cp.dir.join("audit-retention.jsonl");
    let cfg = cp.dir.join("server-retention.toml");
    std::fs::write(
        &cfg,
        format!(
            "hub = \"server\"\napprovers = [\"group:oncall\"]\n[audit]\nlog = \"{}\"\n[clusters.c1]\ncontext = \"c1\"\nretention = \"1s\"\n",
            log.display()
        ),
    )
    .unwrap();
    let s = serve(&cp, &cfg, "http");
    let (_, denied) = asks(&s, "alice", &ask("c1", "view", &["orders"], "1h"));
    let denied = denied["name"].as_str().unwrap().to_string();
    let (_, pending) = asks(&s, "alice", &ask("c1", "view", &["payments"], "1h"));
    let pending = pending["name"].as_str().unwrap().to_string();
    let path = format!("/v1/requests/c1/{denied}");
    let body = decision(
        &s.url,
        "bob",
        &path,
        json!({"reason": "not during the freeze"}),
    );
    let (code, d) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("{path}/deny"),
        Some(&body),
    );
    assert_eq!(code, 200, "{d}");
    // Deleted from the hub on the server's next round (every 10 s).
    wait_for("the denied request deleted from the hub", 40, || async {
        cp.raw("admin", "GET", &format!("{AR}/{denied}"), None).0 == 404
    })
    .await;
    let (code, _) = curl(&s.url, Some("bob"), "GET", &path, None);
    assert_eq!(code, 404, "gone from the API too");
    let kinds: Vec<Value> = records_of(&log, &denied)
        .iter()
        .map(|r| r["kind"].clone())
        .collect();
    assert!(
        kinds.contains(&json!("request.created")) && kinds.contains(&json!("review.denied")),
        "its history stays in the audit log: {kinds:?}"
    );
    let (_, metrics) = common::http::get(&format!("{}/metrics", s.url), Duration::from_secs(10));
    assert!(
        metrics.contains("portcullis_requests_forgotten_total 1"),
        "{metrics}"
    );
    // A pending request is never deleted for its age.
    assert_eq!(
        cp.raw("admin", "GET", &format!("{AR}/{pending}"), None).0,
        200
    );
}
