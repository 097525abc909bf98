//! `portcullis serve --demo`'s router in-process, called over loopback
//! HTTP with curl as hostile callers would (a demo person's name is their
//! token): the webhook judges each cluster by its own path, the policy's
//! maximum is refused at the door, and no input — bad names, absurd
//! durations, huge or broken bodies, unknown calls — gets a 5xx or a
//! dropped connection. The same promises against a real control plane are
//! in `cluster_hostile.rs`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use portcullis::backend::demo::{DemoBackend, DemoConfig};
use portcullis::server::authority::DemoAuthority;
use portcullis::server::webhook::Webhook;
use portcullis::server::Server;
use serde_json::{json, Value};

const PROD: &str = "prod-eu-west";
const DEV: &str = "dev-sandbox";

/// A demo server with a policy (edit refused on env=prod; at most 1h) and
/// the webhook on; returns its URL.
async fn start() -> String {
    let dir = common::scratch_dir("server-hostile-policy");
    std::fs::write(
        dir.join("rules.rego"),
        r#"package portcullis
import rego.v1
deny contains "edit is not granted on prod" if {
    input.request.cluster_labels.env == "prod"
    input.request.role.name == "edit"
}
max_duration_seconds := 3600
"#,
    )
    .unwrap();
    let policy = portcullis::policy::PolicyStore::open(&dir).expect("the policy loads");
    let world = Arc::new(DemoBackend::live(DemoConfig {
        seed: 11,
        rate: std::time::Duration::ZERO,
        ..Default::default()
    }));
    let authority = DemoAuthority::new(world);
    let access = authority.access().clone();
    let labels = BTreeMap::from([
        (
            PROD.to_string(),
            BTreeMap::from([("env".to_string(), "prod".to_string())]),
        ),
        (
            DEV.to_string(),
            BTreeMap::from([("env".to_string(), "dev".to_string())]),
        ),
    ]);
    let server = Server::builder(Arc::new(authority), access)
        .webhook(Some(Webhook {
            privileged: vec!["portcullis-server".into()],
        }))
        .policy(Some(policy))
        .labels(labels)
        .start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            server
                .router()
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    // Ready once the demo's RBAC is read (the policy judges the diff).
    for _ in 0..100 {
        if call(&url, None, "GET", "/readyz", None).0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    url
}

/// curl with `token` (a demo person's name): (status, body as JSON).
/// Status 0 means the connection dropped.
fn call(
    url: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    common::http::json(method, &format!("{url}{path}"), token, body)
}

fn review(role: &str) -> String {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "r1", "operation": "CREATE", "name": "alice-x",
        "userInfo": {"username": "alice", "groups": ["dev"]},
        "object": {"apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
            "metadata": {"name": "alice-x", "creationTimestamp": "2026-12-01T00:00:00Z"},
            "spec": {"requester": {"user": "alice", "groups": ["dev"]},
                     "role": {"kind": "ClusterRole", "name": role}, "namespaces": ["payments"],
                     "duration": "30m", "reason": "INC-1"}}}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_judges_each_cluster_by_its_own_path() {
    let url = start().await;
    let allowed = |path: &str, role: &str| -> (u16, Option<bool>) {
        let (code, v) = call(&url, None, "POST", path, Some(&review(role)));
        (code, v["response"]["allowed"].as_bool())
    };
    assert_eq!(
        allowed(&format!("/validate/{PROD}"), "view"),
        (200, Some(true))
    );
    assert_eq!(
        allowed(&format!("/validate/{PROD}"), "edit"),
        (200, Some(false))
    );
    assert_eq!(
        allowed(&format!("/validate/{DEV}"), "edit"),
        (200, Some(true))
    );
    assert_eq!(allowed("/validate/nowhere", "edit").0, 404);
    // The denial is on the record, in the writer's name as the apiserver
    // said it.
    let (code, audit) = call(&url, Some("dana"), "GET", "/v1/audit?user=alice", None);
    assert_eq!(code, 200);
    assert!(
        audit
            .to_string()
            .contains("admission: create accessrequests"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_maximum_is_refused_at_the_door() {
    let url = start().await;
    let ask = |d: &str| {
        json!({"cluster": DEV, "role": {"kind": "ClusterRole", "name": "view"},
               "namespaces": ["payments"], "duration": d, "reason": "INC-5"})
        .to_string()
    };
    let (code, e) = call(
        &url,
        Some("alice"),
        "POST",
        "/v1/requests",
        Some(&ask("2h")),
    );
    assert_eq!(
        (code, e["error"]["field"].as_str()),
        (422, Some("duration")),
        "{e}"
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("max_duration_seconds") && message.contains("1h"),
        "{e}"
    );
    let (code, _) = call(
        &url,
        Some("alice"),
        "POST",
        "/v1/requests",
        Some(&ask("1h")),
    );
    assert_eq!(code, 201);
    // Refused by the policy: 403, in its words.
    let edit = ask("30m")
        .replace(DEV, PROD)
        .replace("\"view\"", "\"edit\"");
    let (code, e) = call(&url, Some("alice"), "POST", "/v1/requests", Some(&edit));
    assert_eq!(code, 403, "{e}");
    assert!(e["error"]["message"]
        .as_str()
        .unwrap()
        .contains("edit is not granted on prod"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_input_gets_a_server_error() {
    let url = start().await;
    let (_, made) = call(
        &url,
        Some("alice"),
        "POST",
        "/v1/requests",
        Some(
            &json!({"cluster": DEV, "role": {"kind": "ClusterRole", "name": "view"},
            "namespaces": ["payments"], "duration": "30m", "reason": "INC-6"})
            .to_string(),
        ),
    );
    let name = made["name"].as_str().unwrap().to_string();
    let names = [
        "..",
        ".",
        "%2E%2E",
        "a%00b",
        "a%0D%0Ab",
        "A",
        "-x",
        &"a".repeat(300),
        "%FF",
    ];
    let bodies = [
        None,
        Some("{}"),
        Some("null"),
        Some("[]"),
        Some("{\"to\":\"300000y\"}"),
        Some("{\"to\":\"18446744073709551615s\"}"),
        Some("{\"expiresAt\":\"+275760-09-13T00:00:00Z\"}"),
        Some("{\"duration\":\"9999999999999h\",\"uid\":\"x\"}"),
        Some("{\"reason\":\"\\u0000\\r\\n\",\"uid\":\"x\"}"),
        Some("{\"namespaces\":[\"..\"],\"uid\":\"x\"}"),
        Some("not json"),
    ];
    let mut tried = 0;
    for who in [Some("dana"), Some("alice"), Some("nobody"), None] {
        for n in names.iter().map(|s| s.to_string()).chain([name.clone()]) {
            for action in [
                "approve", "deny", "shorten", "revoke", "withdraw", "release", "diff", "nope",
            ] {
                for body in bodies {
                    let method = if action == "diff" { "GET" } else { "POST" };
                    let (code, v) = call(
                        &url,
                        who,
                        method,
                        &format!("/v1/requests/{DEV}/{n}/{action}"),
                        body,
                    );
                    tried += 1;
                    // Under the per-address limit (200 calls a second):
                    // this test is about what each input gets, and the
                    // limit is tested apart.
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    assert!(
                        (200..500).contains(&code),
                        "{who:?} {method} {n}/{action} {body:?}: {code} {v}"
                    );
                    if code >= 400 {
                        assert!(
                            v["error"]["message"].is_string(),
                            "a JSON error: {who:?} {method} {n}/{action} {body:?}: {code} {v}"
                        );
                    }
                }
            }
        }
    }
    assert!(tried > 1000);
    // Bad names are 422 naming `name`; an unknown cluster is 404.
    let (code, e) = call(
        &url,
        Some("dana"),
        "GET",
        &format!("/v1/requests/{DEV}/a%0D%0Ab"),
        None,
    );
    assert_eq!(
        (code, e["error"]["field"].as_str()),
        (422, Some("name")),
        "{e}"
    );
    let (code, _) = call(&url, Some("dana"), "GET", "/v1/requests/nowhere/x", None);
    assert_eq!(code, 404);
    // A body over 64 KiB: 413. Unknown calls: 404, JSON.
    let big = format!("{{\"reason\":\"{}\"}}", "x".repeat(70_000));
    let (code, _) = call(
        &url,
        Some("dana"),
        "POST",
        &format!("/v1/requests/{DEV}/{name}/deny"),
        Some(&big),
    );
    assert_eq!(code, 413);
    let (code, e) = call(&url, Some("dana"), "GET", "/v2/anything", None);
    assert_eq!(code, 404, "{e}");
    // Still serving.
    assert_eq!(call(&url, Some("dana"), "GET", "/v1/whoami", None).0, 200);
}
