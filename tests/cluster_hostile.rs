//! `portcullis serve` under hostile callers, on a real control plane (the
//! hub, and targets c1 and c2 as contexts of it). Every attack is made as
//! the attacker would: their own bearer token, only the rights the shipped
//! roles give them, raw HTTP (curl) to the server or to the apiserver —
//! never our own client. Each would have succeeded before the fix it
//! proves (issue 18).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::{apply, can_i, wait_for, ControlPlane};
use common::server::{ask, config, curl, decision, install_server, serve, Served};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::Api;
use portcullis::backend::kube::KubeCluster;
use serde_json::{json, Value};

/// `user` asks the server for `body` (raw HTTP); the new request's name.
fn asks(url: &str, user: &str, body: &Value) -> String {
    let (code, made) = curl(url, Some(user), "POST", "/v1/requests", Some(body));
    assert_eq!(code, 201, "{made}");
    made["name"].as_str().unwrap().to_string()
}

fn accessrequest(name: &str) -> String {
    format!("/apis/portcullis.dev/v1alpha1/accessrequests/{name}")
}

/// Step 1: A status naming a standing binding's uid (written by an approver who
/// has hub rights, none on the target) makes neither the server's reaper
/// nor its sweep delete that binding; the webhook refuses such a status
/// write from anyone but the privileged identities (unit-tested in
/// `server::webhook`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_naming_a_standing_binding_deletes_nothing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cp = ControlPlane::start();
    let admin = install_server(&cp).await;
    // A standing binding: the team's own access, older than any request.
    apply(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "team-admins", "namespace": "payments"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "erin"}]}),
    )
    .await;
    let standing = Api::<RoleBinding>::namespaced(admin.client.clone(), "payments")
        .get("team-admins")
        .await
        .unwrap();
    let standing_uid = standing.metadata.uid.clone().unwrap();
    assert!(can_i(&admin, "erin", "list", "", "pods", Some("payments")).await);

    let cfg = config(&cp, "");
    let s = serve(&cp, &cfg, "http");
    let name = asks(&s.url, "alice", &ask("c1", "view", &["payments"], "1h"));

    // bob (an approver: hub rights only) writes the attack with curl: a
    // finalizer, phase Failed, and the standing binding as the grant's,
    // once under its own name and once under the name Portcullis would
    // give this request's binding.
    let (code, body) = cp.raw(
        "bob",
        "PATCH",
        &accessrequest(&name),
        Some(r#"{"metadata":{"finalizers":["portcullis.dev/grant"]}}"#),
    );
    assert!(code < 300, "bob adds a finalizer: {code} {body}");
    let status = json!({"status": {"phase": "Failed", "message": "x",
    "bindings": [
        {"kind": "RoleBinding", "namespace": "payments", "name": "team-admins", "uid": standing_uid},
        {"kind": "RoleBinding", "namespace": "payments", "name": format!("portcullis-{name}"), "uid": standing_uid},
    ]}});
    let (code, body) = cp.raw(
        "bob",
        "PATCH",
        &format!("{}/status", accessrequest(&name)),
        Some(&status.to_string()),
    );
    assert!(code < 300, "bob writes the status: {code} {body}");
    // The server's reaper handles the ended request (its finalizer goes)
    // and its sweep runs several times: the standing binding stays.
    wait_for("the reaper to let go of the ended request", 30, || async {
        let (_, body) = cp.raw("admin", "GET", &accessrequest(&name), None);
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        v["metadata"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.iter().all(|x| x != "portcullis.dev/grant"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = Api::<RoleBinding>::namespaced(admin.client.clone(), "payments")
        .get_opt("team-admins")
        .await
        .unwrap();
    assert_eq!(
        after.and_then(|b| b.metadata.uid),
        Some(standing_uid),
        "the standing binding is untouched"
    );
    assert!(can_i(&admin, "erin", "list", "", "pods", Some("payments")).await);
}

/// The control plane, Portcullis and its server's rights installed, and
/// `portcullis serve` over plain HTTP.
struct Ctx {
    s: Served,
    admin: Arc<KubeCluster>,
    cp: ControlPlane,
}

impl Ctx {
    async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cp = ControlPlane::start();
        let admin = install_server(&cp).await;
        let cfg = config(&cp, "");
        let s = serve(&cp, &cfg, "http");
        Ctx { s, admin, cp }
    }
}

/// Step 2: The requester deletes her pending request after the approver read it
/// and asks again under the same name for more (view → edit): the
/// approval naming what was read is refused with 409 saying what it is
/// now, and nothing is granted; an approval naming nothing is 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_lands_only_on_the_request_the_approver_read() {
    let ctx = Ctx::start().await;
    let name = asks(&ctx.s.url, "alice", &ask("c1", "view", &["payments"], "1h"));
    let path = format!("/v1/requests/c1/{name}");
    let read = bob_reads_it(&ctx, &path);
    alice_swaps_it(&ctx, &name, &path).await;
    the_deletion_is_on_the_record(&ctx, &name).await;
    approvals_naming_anything_else_are_refused(&ctx, &path, &read);
    nothing_was_granted(&ctx, &path).await;
    read_again_approved(&ctx, &path).await;
}

/// bob reads it: view.
fn bob_reads_it(ctx: &Ctx, path: &str) -> Value {
    let read = decision(&ctx.s.url, "bob", path, json!({}));
    assert!(
        read["uid"].is_string() && read["seen"].is_string(),
        "{read}"
    );
    read
}

/// alice swaps it with kubectl's calls on the hub: delete, and create
/// the same name asking for edit.
async fn alice_swaps_it(ctx: &Ctx, name: &str, path: &str) {
    let (s, cp) = (&ctx.s, &ctx.cp);
    let (_, stored) = cp.raw("alice", "GET", &accessrequest(name), None);
    let mut swapped: Value = serde_json::from_str(&stored).unwrap();
    let (code, body) = cp.raw("alice", "DELETE", &accessrequest(name), None);
    assert!(
        code < 300,
        "alice deletes her pending request: {code} {body}"
    );
    swapped["spec"]["role"]["name"] = json!("edit");
    swapped["metadata"] = json!({"name": name});
    swapped.as_object_mut().unwrap().remove("status");
    let (code, body) = cp.raw(
        "alice",
        "POST",
        "/apis/portcullis.dev/v1alpha1/accessrequests",
        Some(&swapped.to_string()),
    );
    assert_eq!(code, 201, "alice asks again under the same name: {body}");
    wait_for("the server to see the new request", 20, || async {
        let (_, r) = curl(&s.url, Some("bob"), "GET", path, None);
        r["spec"]["role"]["name"] == "edit"
    })
    .await;
}

/// The deletion behind the server's back is on the record.
async fn the_deletion_is_on_the_record(ctx: &Ctx, name: &str) {
    let s = &ctx.s;
    wait_for("the deletion to be recorded", 20, || async {
        let (_, audit) = curl(
            &s.url,
            Some("bob"),
            "GET",
            &format!("/v1/audit?request={name}"),
            None,
        );
        audit.to_string().contains("deleted while pending")
    })
    .await;
}

/// bob's approval names what he read: refused, and says what it is now;
/// naming nothing, or a seen digest of something else, is refused too.
fn approvals_naming_anything_else_are_refused(ctx: &Ctx, path: &str, read: &Value) {
    let s = &ctx.s;
    let (code, e) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("{path}/approve"),
        Some(read),
    );
    assert_eq!(code, 409, "{e}");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not the request you read") && message.contains("edit"),
        "{e}"
    );
    // Naming nothing is refused too, naming the field.
    let (code, e) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("{path}/approve"),
        Some(&json!({})),
    );
    assert_eq!(
        (code, e["error"]["field"].as_str()),
        (422, Some("uid")),
        "{e}"
    );
    // So is a seen digest of something else (the same uid, other content).
    let mut wrong = decision(&s.url, "bob", path, json!({}));
    wrong["seen"] = json!("0123456789abcdef01234567");
    let (code, e) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("{path}/approve"),
        Some(&wrong),
    );
    assert_eq!(code, 409, "{e}");
}

/// Nothing was granted, and it is still pending.
async fn nothing_was_granted(ctx: &Ctx, path: &str) {
    let admin = &ctx.admin;
    assert!(!can_i(admin, "alice", "list", "", "pods", Some("payments")).await);
    assert!(
        !can_i(
            admin,
            "alice",
            "create",
            "apps",
            "deployments",
            Some("payments")
        )
        .await
    );
    let (_, now) = curl(&ctx.s.url, Some("bob"), "GET", path, None);
    assert_eq!(
        now["status"]["phase"].as_str().unwrap_or("Pending"),
        "Pending"
    );
}

/// Read again, approved: what bob now saw is what is granted.
async fn read_again_approved(ctx: &Ctx, path: &str) {
    let s = &ctx.s;
    let (code, g) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("{path}/approve"),
        Some(&decision(&s.url, "bob", path, json!({}))),
    );
    assert_eq!(code, 200, "{g}");
    assert!(
        can_i(
            &ctx.admin,
            "alice",
            "create",
            "apps",
            "deployments",
            Some("payments")
        )
        .await
    );
}

/// The lines of an SSE stream read until it ends (or `limit`), and how
/// long that took.
fn stream_until_end(url: &str, token: &str, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let text = common::http::stream(&format!("{url}/v1/events"), token, limit);
    (text, started.elapsed())
}

/// Step 3: A stream opened with a ServiceAccount's token ends, with a last
/// event saying why, within the token cache's lifetime after the
/// ServiceAccount is deleted; 4. need to know: that bare ServiceAccount
/// (no rights at all) and a requester read only what they may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_die_with_their_token_and_reads_are_need_to_know() {
    let ctx = Ctx::start().await;
    let name = asks(
        &ctx.s.url,
        "alice",
        &json!({"cluster": "c1", "role": {"kind": "ClusterRole", "name": "view"},
            "namespaces": ["payments"], "duration": "1h", "reason": "INC-77 secret plans", "ticket": "INC-77"}),
    );
    let path = format!("/v1/requests/c1/{name}");
    let sa_token = a_bare_service_account(&ctx);
    need_to_know(&ctx, &sa_token, &name, &path);
    requester_and_approvers_read_in_full(&ctx, &path);
    the_strangers_stream_ends(&ctx, &sa_token);
}

/// A bare ServiceAccount, no rights: its token is accepted (TokenReview).
/// Returns the token.
fn a_bare_service_account(ctx: &Ctx) -> String {
    let (s, cp) = (&ctx.s, &ctx.cp);
    let (code, body) = cp.raw(
        "admin",
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        Some(r#"{"metadata":{"name":"stranger"}}"#),
    );
    assert!(code < 300, "{body}");
    let (code, body) = cp.raw(
        "admin",
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/stranger/token",
        Some(r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":3600}}"#),
    );
    assert!(code < 300, "{body}");
    let sa_token = serde_json::from_str::<Value>(&body).unwrap()["status"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, who) = curl(&s.url, Some(&sa_token), "GET", "/v1/whoami", None);
    assert_eq!(code, 200, "{who}");
    sa_token
}

/// Need to know, for the stranger and for mallory (a requester).
fn need_to_know(ctx: &Ctx, sa_token: &str, name: &str, path: &str) {
    let s = &ctx.s;
    for reader in [sa_token, "mallory"] {
        let (code, list) = curl(&s.url, Some(reader), "GET", "/v1/requests", None);
        assert_eq!(code, 200);
        let text = list.to_string();
        assert!(text.contains(name), "others' requests exist for them");
        assert!(
            !text.contains("secret plans") && !text.contains("INC-77"),
            "{text}"
        );
        let (code, one) = curl(&s.url, Some(reader), "GET", path, None);
        assert_eq!((code, &one["redacted"]), (200, &json!(true)), "{one}");
        assert!(!one.to_string().contains("secret plans"));
        for denied in [
            format!("{path}/diff"),
            "/v1/clusters/c1/inventory".to_string(),
            "/v1/audit".to_string(),
        ] {
            let (code, e) = curl(&s.url, Some(reader), "GET", &denied, None);
            assert_eq!(code, 403, "{denied}: {e}");
        }
    }
}

/// The requester reads her own in full; approvers read everything.
fn requester_and_approvers_read_in_full(ctx: &Ctx, path: &str) {
    let s = &ctx.s;
    for reader in ["alice", "bob"] {
        let (_, one) = curl(&s.url, Some(reader), "GET", path, None);
        assert_eq!(one["spec"]["reason"], "INC-77 secret plans", "{reader}");
        assert_eq!(
            curl(&s.url, Some(reader), "GET", &format!("{path}/diff"), None).0,
            200
        );
    }
    assert_eq!(
        curl(
            &s.url,
            Some("alice"),
            "GET",
            "/v1/clusters/c1/inventory",
            None
        )
        .0,
        403
    );
}

/// The stranger's stream: no inventory and no reasons; it ends once the
/// ServiceAccount is deleted, with a last event saying why.
fn the_strangers_stream_ends(ctx: &Ctx, sa_token: &str) {
    let (s, cp) = (&ctx.s, &ctx.cp);
    let url = s.url.clone();
    let token = sa_token.to_string();
    let reader =
        std::thread::spawn(move || stream_until_end(&url, &token, Duration::from_secs(60)));
    std::thread::sleep(Duration::from_secs(2));
    let (code, body) = cp.raw(
        "admin",
        "DELETE",
        "/api/v1/namespaces/default/serviceaccounts/stranger",
        None,
    );
    assert!(code < 300, "{body}");
    let deleted = Instant::now();
    // A request made after the deletion must not reach the stream.
    std::thread::sleep(Duration::from_secs(1));
    let (_, later) = curl(
        &s.url,
        Some("alice"),
        "POST",
        "/v1/requests",
        Some(&ask("c2", "view", &["orders"], "1h")),
    );
    let (text, _) = reader.join().unwrap();
    let ended_after = deleted.elapsed();
    assert!(text.contains("event: snapshot"), "{text}");
    assert!(
        !text.contains("event: inventory"),
        "no inventory for a stranger"
    );
    assert!(!text.contains("secret plans"), "no reasons for a stranger");
    assert!(
        text.contains("event: end"),
        "the stream ends with a word: {text}"
    );
    assert!(text.contains("no longer accepted"), "{text}");
    assert!(
        ended_after < Duration::from_secs(30),
        "ended {ended_after:?} after the deletion"
    );
    // Calls with the dead token are 401 like any other.
    assert_eq!(
        curl(&s.url, Some(sa_token), "GET", "/v1/requests", None).0,
        401
    );
    let _ = later;
}

/// Step 6: Bad names and bodies get 4xx naming the field, never a 5xx or a
/// dropped connection; 7. every refusal is on the record, and 100 refused
/// calls of one identity make a bounded number of records and hub Events
/// plus one count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_plainly_and_refusals_cannot_flood_the_record() {
    let ctx = Ctx::start().await;
    let name = a_granted_request(&ctx);
    bad_names_are_422_naming_the_field(&ctx);
    bad_bodies_are_4xx_and_the_grant_is_untouched(&ctx, &name).await;
    mallory_tries_100_approvals(&ctx, &name);
    refusals_are_on_the_record_bounded(&ctx).await;
    the_hubs_events_are_bounded_too(&ctx);
}

/// alice asks, bob approves; returns the request's name.
fn a_granted_request(ctx: &Ctx) -> String {
    let s = &ctx.s;
    let name = asks(&s.url, "alice", &ask("c1", "view", &["payments"], "1h"));
    let (code, g) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("/v1/requests/c1/{name}/approve"),
        Some(&decision(
            &s.url,
            "bob",
            &format!("/v1/requests/c1/{name}"),
            json!({}),
        )),
    );
    assert_eq!(code, 200, "{g}");
    name
}

/// Bad names: a 422 naming the field, whatever the call.
fn bad_names_are_422_naming_the_field(ctx: &Ctx) {
    for (bad, field) in [
        ("..", "name"),
        ("a%00b", "name"),
        ("a%0D%0Ab", "name"),
        ("UPPER", "name"),
    ] {
        for (method, tail) in [("GET", ""), ("POST", "/deny"), ("GET", "/diff")] {
            let (code, e) = curl(
                &ctx.s.url,
                Some("bob"),
                method,
                &format!("/v1/requests/c1/{bad}{tail}"),
                Some(&json!({"reason": "x", "uid": "u"})),
            );
            assert_eq!(
                (code, e["error"]["field"].as_str()),
                (422, Some(field)),
                "{method} {bad}{tail}: {e}"
            );
        }
    }
}

/// An unknown cluster, a shorten to 300000 years, a body over the limit:
/// 4xx, and the grant is untouched by all of it.
async fn bad_bodies_are_4xx_and_the_grant_is_untouched(ctx: &Ctx, name: &str) {
    let s = &ctx.s;
    let (code, e) = curl(&s.url, Some("bob"), "GET", "/v1/requests/nowhere/x", None);
    assert_eq!(code, 404, "{e}");
    // shorten to 300000 years: a 422 naming `to`, not a dropped connection.
    let (code, e) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("/v1/requests/c1/{name}/shorten"),
        Some(&json!({"to": "300000y"})),
    );
    assert_eq!(
        (code, e["error"]["field"].as_str()),
        (422, Some("to")),
        "{e}"
    );
    // A body over the limit: 413, on the record.
    let big = json!({"reason": "x".repeat(100_000)});
    let (code, _) = curl(
        &s.url,
        Some("bob"),
        "POST",
        &format!("/v1/requests/c1/{name}/revoke"),
        Some(&big),
    );
    assert_eq!(code, 413);
    // The grant is untouched by all of it.
    assert!(can_i(&ctx.admin, "alice", "list", "", "pods", Some("payments")).await);
}

/// mallory (a requester) tries 100 approvals: each 403.
fn mallory_tries_100_approvals(ctx: &Ctx, name: &str) {
    for _ in 0..100 {
        let (code, _) = curl(
            &ctx.s.url,
            Some("mallory"),
            "POST",
            &format!("/v1/requests/c1/{name}/revoke"),
            Some(&json!({"reason": "mine now"})),
        );
        assert_eq!(code, 403);
    }
}

/// Every refusal is on the record: a bounded number of mallory's one by
/// one, the dropped ones counted within a signing period (10 s).
async fn refusals_are_on_the_record_bounded(ctx: &Ctx) {
    tokio::time::sleep(Duration::from_secs(12)).await;
    let (code, audit) = curl(&ctx.s.url, Some("bob"), "GET", "/v1/audit?limit=5000", None);
    assert_eq!(code, 200);
    let items = audit["items"].as_array().unwrap();
    let text = |v: &Value| v.to_string();
    let by_mallory = items
        .iter()
        .filter(|r| text(r).contains("mallory") && text(r).contains("revoke"))
        .count();
    assert!(
        (1..=20).contains(&by_mallory),
        "{by_mallory} of mallory's refusals recorded one by one"
    );
    let counted = items
        .iter()
        .find(|r| text(r).contains("user:mallory") && text(r).contains("not recorded one by one"))
        .unwrap_or_else(|| panic!("the rest counted: {audit}"));
    assert!(text(counted).contains("80 more refused calls"), "{counted}");
    assert!(
        items
            .iter()
            .any(|r| text(r).contains("413") || text(r).contains("larger than")),
        "the 413 is on the record"
    );
    assert!(
        items.iter().any(|r| text(r).contains("300000y")
            || (text(r).contains("shorten") && text(r).contains("366d"))),
        "the bad shorten is on the record"
    );
}

/// The hub's Events: bounded too.
fn the_hubs_events_are_bounded_too(ctx: &Ctx) {
    let (_, events) = ctx
        .cp
        .raw("admin", "GET", "/api/v1/namespaces/default/events", None);
    let mallory_events = events.matches("mallory").count();
    assert!(
        mallory_events <= 2 * 21,
        "{mallory_events} mentions of mallory in the hub's Events"
    );
}
