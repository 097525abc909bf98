//! Direct mode guarded by the apiserver itself: `portcullis crds
//! --admission-policy` (a ValidatingAdmissionPolicy, Kubernetes 1.30+) on a
//! real control plane, with no server and no webhook. Every attack the
//! webhook's tests make (`cluster_server.rs`), made the same way: the
//! attacker's own token, only the shipped roles' rights, raw HTTP (curl).
//! And the lifecycle still works through it: requesters ask and withdraw,
//! approvers approve, revoke and shorten, the reaper ends grants.

mod common;
use common::asking::key;

use std::process::Command;

use common::cluster::{apply, crb, install, reaper, wait_for, ControlPlane, Reaper};
use portcullis::backend::kube::KubeBackend;
use portcullis::backend::{AccessBackend, ApproveSpec, NewRequest};
use portcullis::domain::request::BindingRef;
use portcullis::domain::Phase;
use serde_json::{json, Value};

const AR: &str = "/apis/portcullis.dev/v1alpha1/accessrequests";

fn request(requester: &str, groups: &[&str]) -> String {
    json!({"apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
           "metadata": {"generateName": "direct-"},
           "spec": {"requester": {"user": requester, "groups": groups}, "role": {"kind": "ClusterRole", "name": "view"},
                    "namespaces": ["orders"], "duration": "1h", "reason": "direct"}})
    .to_string()
}

fn name_of(text: &str) -> String {
    serde_json::from_str::<Value>(text).unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

const README: &str = include_str!("../README.md");

/// README's install of the policy, verbatim: the `sh` block of "Guarded by
/// the apiserver itself", run as the cluster admin with this build's
/// `portcullis` first on the PATH.
fn install_as_readme_says(cp: &ControlPlane) {
    let section = README
        .split("### Guarded by the apiserver itself")
        .nth(1)
        .expect("README says how to install the admission policy");
    let start = section.find("```sh\n").expect("an sh block") + 6;
    let block = &section[start..start + section[start..].find("```").expect("closed")];
    assert!(block.contains("--admission-policy"), "{block}");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_portcullis"))
        .parent()
        .unwrap()
        .to_path_buf();
    let out = Command::new("sh")
        .arg("-ec")
        .arg(block)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("KUBECONFIG", cp.kubeconfig())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// The policy again, letting through this test's reaper and server
/// identities (README: `--privileged USER,USER`).
fn let_through(cp: &ControlPlane, users: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["crds", "--admission-policy", "--privileged", users])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let file = cp.dir.join("policy.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let applied = Command::new("kubectl")
        .args(["--context", "admin", "apply", "-f"])
        .arg(&file)
        .env("KUBECONFIG", cp.kubeconfig())
        .output()
        .unwrap();
    assert!(applied.status.success(), "{applied:?}");
}

fn ask(requester: &str, minutes: u64) -> NewRequest {
    NewRequest {
        reason: "INC-7 under the admission policy".into(),
        ..common::asking::ask(requester, "view", &["orders"], minutes)
    }
}

fn spec(secs: u64) -> ApproveSpec {
    common::asking::spec(secs, &["orders"])
}

/// An approval of the request by `by` at `now`, for the status' reviews.
fn review(by: &str, now: &str) -> Value {
    json!({"by": by, "at": now, "verdict": "Approved", "duration": "30m", "namespaces": ["orders"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admission_policy_refuses_direct_mode_attacks() {
    let cp = ControlPlane::start();
    if !cp.is_current() {
        // ValidatingAdmissionPolicy is GA from 1.30; README says so.
        eprintln!(
            "skipped: kube-apiserver {:?} has no ValidatingAdmissionPolicy",
            cp.version
        );
        return;
    }
    let admin = install(&cp).await;
    // On-call engineers may ask too (carol, below).
    apply(
        &admin,
        crb("oncall-requesters", "portcullis-requester", "oncall"),
    )
    .await;
    install_as_readme_says(&cp);
    let name = in_force_a_request_only_in_ones_own_name(&cp).await;
    let status = format!("{AR}/{name}/status");
    nobody_else_withdraws_nor_changes_the_spec(&cp, &name);
    let now = chrono::Utc::now().to_rfc3339();
    no_decision_or_review_in_another_name(&cp, &status, &now);
    let rev = earlier_reviews_keep_their_places(&cp, &now);
    a_live_grant_needs_a_readable_record(&cp, &rev, &now);
    no_status_points_at_a_standing_binding(&cp, &status, &name);
    the_requester_never_writes_a_status(&cp, &now);
    // The lifecycle goes through the policy: bob approves (our client
    // writes the decision, the bindings and their uids in his name).
    let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await]).reaping(false);
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]).reaping(false);
    let bindings = bob_approves_through_it(&bob, &name).await;
    a_live_grant_keeps_its_record(&cp, &status, &name, &bindings);
    bob_shortens_and_revokes_through_it(&bob, &name).await;
    terminal_phases_never_change(&cp, &status);
    a_requester_withdraws_her_pending_request(&cp, &alice).await;
    let _reaper = the_reaper_ends_a_grant_at_its_expiry(&cp, &alice, &bob).await;
    drop(admin);
}

/// In force once mallory cannot ask in alice's name (the apiserver takes
/// a moment to load a new policy); only groups the creator has; a request
/// in her own name goes in. Returns its name.
async fn in_force_a_request_only_in_ones_own_name(cp: &ControlPlane) -> String {
    wait_for("the policy to be in force", 30, || async {
        cp.raw("mallory", "POST", AR, Some(&request("alice", &["dev"])))
            .0
            == 403
    })
    .await;
    let (code, text) = cp.raw("mallory", "POST", AR, Some(&request("alice", &["dev"])));
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("spec.requester.user must be you (mallory), not alice"),
        "{text}"
    );
    // Only groups the creator has.
    let (code, text) = cp.raw(
        "alice",
        "POST",
        AR,
        Some(&request("alice", &["system:masters"])),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("spec.requester.groups"), "{text}");
    // A request in her own name goes in.
    let (code, text) = cp.raw("alice", "POST", AR, Some(&request("alice", &["dev"])));
    assert_eq!(code, 201, "{text}");
    name_of(&text)
}

/// Another requester cannot withdraw it; nobody changes the spec (an
/// approver with update on the resource).
fn nobody_else_withdraws_nor_changes_the_spec(cp: &ControlPlane, name: &str) {
    let (code, text) = cp.raw("mallory", "DELETE", &format!("{AR}/{name}"), None);
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("only its requester (alice)"), "{text}");
    // Nobody changes the spec (an approver with update on the resource).
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &format!("{AR}/{name}"),
        Some(r#"{"spec":{"role":{"kind":"ClusterRole","name":"cluster-admin"}}}"#),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("spec is immutable"), "{text}");
}

/// A decision under another approver's name; another approver's review
/// next to one's own; two at once, even with one's own.
fn no_decision_or_review_in_another_name(cp: &ControlPlane, status: &str, now: &str) {
    let forged = json!({"status": {"phase": "Active", "decision": {"by": "carol", "at": now, "verdict": "Approved", "duration": "10m", "namespaces": ["orders"]},
        "grantedAt": now, "expiresAt": (chrono::Utc::now() + chrono::TimeDelta::minutes(10)).to_rfc3339()}});
    let (code, text) = cp.raw("bob", "PATCH", status, Some(&forged.to_string()));
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("status.decision.by must be you (bob)"),
        "{text}"
    );
    // Another approver's review next to one's own.
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        status,
        Some(&json!({"status": {"reviews": [review("carol", now)]}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("a review is by you (bob)"), "{text}");
    // Two at once, even with one's own.
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        status,
        Some(&json!({"status": {"reviews": [review("bob", now), review("bob", now)]}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
}

/// Another request for the review attacks (its reviews are written): a
/// forged review slipped in before one's own, or swapped for another in
/// place. Returns its status path.
fn earlier_reviews_keep_their_places(cp: &ControlPlane, now: &str) -> String {
    let (code, text) = cp.raw("alice", "POST", AR, Some(&request("alice", &["dev"])));
    assert_eq!(code, 201, "{text}");
    let rev = format!("{AR}/{}/status", name_of(&text));
    // A forged review slipped in before one's own (the list one longer,
    // the last still the writer's): earlier reviews keep their places.
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &rev,
        Some(&json!({"status": {"reviews": [review("bob", now)]}}).to_string()),
    );
    assert_eq!(code, 200, "his own review: {text}");
    let (code, text) = cp.raw_json_patch(
        "bob",
        &rev,
        &json!([{"op": "add", "path": "/status/reviews/0", "value": review("carol", now)}])
            .to_string(),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("status.reviews only grow"), "{text}");
    // Swapped for another in place (same length).
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &rev,
        Some(&json!({"status": {"reviews": [review("carol", now)]}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    rev
}

/// A live grant with no approver named, or an end CEL cannot read (which
/// would refuse every later write but the reaper's); a phase Portcullis
/// does not know.
fn a_live_grant_needs_a_readable_record(cp: &ControlPlane, rev: &str, now: &str) {
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        rev,
        Some(&json!({"status": {"phase": "Active", "grantedAt": now, "expiresAt": (chrono::Utc::now() + chrono::TimeDelta::minutes(10)).to_rfc3339()}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("a live grant needs status.decision.by"),
        "{text}"
    );
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        rev,
        Some(&json!({"status": {"phase": "Active", "decision": {"by": "bob", "at": now, "verdict": "Approved", "duration": "10m", "namespaces": ["orders"]},
            "grantedAt": now, "expiresAt": "2030-01-01t00:00:00z"}}).to_string()),
    );
    // Refused (the apiserver answers an expression it cannot evaluate
    // with its own code; failurePolicy Fail).
    assert!(!(200..300).contains(&code), "{code} {text}");
    assert!(text.contains("denied request"), "{text}");
    // A phase Portcullis does not know (the schema lists them).
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        rev,
        Some(&json!({"status": {"phase": "Paused"}}).to_string()),
    );
    assert_eq!(code, 422, "{text}");
}

/// A status pointing at a standing binding (what an end deletes).
fn no_status_points_at_a_standing_binding(cp: &ControlPlane, status: &str, name: &str) {
    for binding in [
        json!({"kind": "RoleBinding", "namespace": "orders", "name": "team-admins", "uid": "u-1"}),
        json!({"kind": "ClusterRoleBinding", "name": "portcullis-server", "uid": "u-2"}),
        json!({"kind": "Secret", "namespace": "orders", "name": format!("portcullis-{name}"), "uid": "u-3"}),
    ] {
        let (code, text) = cp.raw(
            "bob",
            "PATCH",
            status,
            Some(&json!({"status": {"bindings": [binding]}}).to_string()),
        );
        assert_eq!(code, 403, "{binding}: {text}");
        assert!(text.contains("not an object Portcullis makes"), "{text}");
    }
}

/// The requester never writes a status (alice has no RBAC right on it
/// either: the policy holds even for a requester who is also an
/// approver, carol asking as herself).
fn the_requester_never_writes_a_status(cp: &ControlPlane, now: &str) {
    let (code, text) = cp.raw("carol", "POST", AR, Some(&request("carol", &["oncall"])));
    assert_eq!(code, 201, "{text}");
    let carols = name_of(&text);
    let own = json!({"status": {"phase": "Active", "decision": {"by": "carol", "at": now, "verdict": "Approved", "duration": "1h", "namespaces": ["orders"]},
        "grantedAt": now, "expiresAt": (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339()}});
    let (code, text) = cp.raw(
        "carol",
        "PATCH",
        &format!("{AR}/{carols}/status"),
        Some(&own.to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("the requester never writes"), "{text}");
}

/// The lifecycle goes through the policy: bob approves. Returns the
/// grant's bindings.
async fn bob_approves_through_it(bob: &KubeBackend, name: &str) -> Vec<BindingRef> {
    let granted = bob
        .approve(&key(name), spec(1800))
        .await
        .expect("an approval passes the policy");
    assert_eq!(granted.phase(), Phase::Active);
    let bindings = granted.status.bindings.clone();
    assert!(!bindings.is_empty());
    bindings
}

/// A live grant never goes back to Pending (where nothing ends it); its
/// expiresAt only moves earlier; its record stays; nobody deletes its
/// request by hand, its requester neither.
fn a_live_grant_keeps_its_record(
    cp: &ControlPlane,
    status: &str,
    name: &str,
    bindings: &[BindingRef],
) {
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        status,
        Some(&json!({"status": {"phase": "Pending"}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("Active never becomes Pending"), "{text}");
    // A live grant: expiresAt only moves earlier; its record stays.
    let later = json!({"status": {"expiresAt": "2099-01-01T00:00:00Z"}});
    let (code, text) = cp.raw("bob", "PATCH", status, Some(&later.to_string()));
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("expiresAt only moves earlier"), "{text}");
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        status,
        Some(&json!({"status": {"bindings": []}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("stays listed with its uid"), "{text}");
    let mut swapped = serde_json::to_value(bindings).unwrap();
    swapped[0]["uid"] = json!("00000000-0000-0000-0000-000000000000");
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        status,
        Some(&json!({"status": {"bindings": swapped}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("stays listed with its uid"), "{text}");
    // Nobody deletes a live grant's request by hand, its requester neither.
    let (code, text) = cp.raw("alice", "DELETE", &format!("{AR}/{name}"), None);
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("deleted by Portcullis when it ends"),
        "{text}"
    );
}

/// bob shortens and revokes through it.
async fn bob_shortens_and_revokes_through_it(bob: &KubeBackend, name: &str) {
    bob.shorten(
        &key(name),
        chrono::Utc::now() + chrono::TimeDelta::minutes(10),
    )
    .await
    .expect("shorten passes the policy");
    let revoked = bob
        .revoke(&key(name), "done")
        .await
        .expect("revoke passes the policy");
    assert_eq!(revoked.phase(), Phase::Revoked);
}

/// Terminal: nothing changes any more (but the note).
fn terminal_phases_never_change(cp: &ControlPlane, status: &str) {
    let reopen = json!({"status": {"phase": "Active"}});
    let (code, text) = cp.raw("bob", "PATCH", status, Some(&reopen.to_string()));
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("terminal phases never change"), "{text}");
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        status,
        Some(&json!({"status": {"message": "checked"}}).to_string()),
    );
    assert_eq!(code, 200, "the note may change: {text}");
}

/// A requester withdraws their own pending request.
async fn a_requester_withdraws_her_pending_request(cp: &ControlPlane, alice: &KubeBackend) {
    let pending = alice.create(ask("alice", 30)).await.unwrap();
    let (code, text) = cp.raw("alice", "DELETE", &format!("{AR}/{}", pending.name), None);
    assert_eq!(code, 200, "{text}");
}

/// The reaper (privileged) ends a grant at its expiry through it.
/// Returns the reaper (running to the test's end, as before the split).
async fn the_reaper_ends_a_grant_at_its_expiry(
    cp: &ControlPlane,
    alice: &KubeBackend,
    bob: &KubeBackend,
) -> Reaper {
    let_through(cp, "reaper,server");
    let running = reaper(cp).await;
    let short = alice.create(ask("alice", 30)).await.unwrap();
    bob.approve(&key(&short.name), spec(2))
        .await
        .expect("approve");
    wait_for("the reaper to end the grant", 30, || async {
        alice
            .list()
            .await
            .unwrap()
            .iter()
            .find(|r| r.name == short.name)
            .is_none_or(|r| r.phase() == Phase::Expired)
    })
    .await;
    running
}
