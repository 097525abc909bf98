//! Direct mode guarded by the apiserver itself: `portcullis crds
//! --admission-policy` (a ValidatingAdmissionPolicy, Kubernetes 1.30+) on a
//! real control plane, with no server and no webhook. Every attack the
//! webhook's tests make (`cluster_server.rs`), made the same way: the
//! attacker's own token, only the shipped roles' rights, raw HTTP (curl).
//! And the lifecycle still works through it: requesters ask and withdraw,
//! approvers approve, revoke and shorten, the reaper ends grants.

mod common;

use std::process::Command;
use std::time::Duration;

use common::cluster::{apply, crb, install, reaper, wait_for, ControlPlane};
use portcullis::backend::kube::KubeBackend;
use portcullis::backend::{AccessBackend, ApproveSpec, NewRequest, RequestKey};
use portcullis::domain::{Credentials, Phase, RoleRef, Subject};
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
        cluster: "test".into(),
        requester: Subject::new(requester, &["dev"]),
        role: RoleRef::cluster_role("view"),
        namespaces: vec!["orders".into()],
        duration: Duration::from_secs(minutes * 60),
        reason: "INC-7 under the admission policy".into(),
        ticket: None,
        credentials: Credentials::Identity,
        extends: None,
    }
}

fn key(name: &str) -> RequestKey {
    RequestKey {
        cluster: "test".into(),
        name: name.into(),
    }
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

    // In force once mallory cannot ask in alice's name (the apiserver
    // takes a moment to load a new policy).
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
    let name = name_of(&text);
    let status = format!("{AR}/{name}/status");

    // Another requester cannot withdraw it.
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
    // A decision under another approver's name.
    let now = chrono::Utc::now().to_rfc3339();
    let forged = json!({"status": {"phase": "Active", "decision": {"by": "carol", "at": now, "verdict": "Approved", "duration": "10m", "namespaces": ["orders"]},
        "grantedAt": now, "expiresAt": (chrono::Utc::now() + chrono::TimeDelta::minutes(10)).to_rfc3339()}});
    let (code, text) = cp.raw("bob", "PATCH", &status, Some(&forged.to_string()));
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("status.decision.by must be you (bob)"),
        "{text}"
    );
    // Another approver's review next to one's own.
    let review = |by: &str| json!({"by": by, "at": now, "verdict": "Approved", "duration": "30m", "namespaces": ["orders"]});
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &status,
        Some(&json!({"status": {"reviews": [review("carol")]}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("a review is by you (bob)"), "{text}");
    // Two at once, even with one's own.
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &status,
        Some(&json!({"status": {"reviews": [review("bob"), review("bob")]}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    // Another request for the review attacks (its reviews are written).
    let (code, text) = cp.raw("alice", "POST", AR, Some(&request("alice", &["dev"])));
    assert_eq!(code, 201, "{text}");
    let rev = format!("{AR}/{}/status", name_of(&text));
    // A forged review slipped in before one's own (the list one longer,
    // the last still the writer's): earlier reviews keep their places.
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &rev,
        Some(&json!({"status": {"reviews": [review("bob")]}}).to_string()),
    );
    assert_eq!(code, 200, "his own review: {text}");
    let (code, text) = cp.raw_json_patch(
        "bob",
        &rev,
        &json!([{"op": "add", "path": "/status/reviews/0", "value": review("carol")}]).to_string(),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("status.reviews only grow"), "{text}");
    // Swapped for another in place (same length).
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &rev,
        Some(&json!({"status": {"reviews": [review("carol")]}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    // A live grant with no approver named, or an end CEL cannot read
    // (which would refuse every later write but the reaper's).
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &rev,
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
        &rev,
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
        &rev,
        Some(&json!({"status": {"phase": "Paused"}}).to_string()),
    );
    assert_eq!(code, 422, "{text}");
    // A status pointing at a standing binding (what an end deletes).
    for binding in [
        json!({"kind": "RoleBinding", "namespace": "orders", "name": "team-admins", "uid": "u-1"}),
        json!({"kind": "ClusterRoleBinding", "name": "portcullis-server", "uid": "u-2"}),
        json!({"kind": "Secret", "namespace": "orders", "name": format!("portcullis-{name}"), "uid": "u-3"}),
    ] {
        let (code, text) = cp.raw(
            "bob",
            "PATCH",
            &status,
            Some(&json!({"status": {"bindings": [binding]}}).to_string()),
        );
        assert_eq!(code, 403, "{binding}: {text}");
        assert!(text.contains("not an object Portcullis makes"), "{text}");
    }
    // The requester never writes a status (alice has no RBAC right on
    // it either: the policy holds even for a requester who is also an
    // approver, carol asking as herself).
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

    // The lifecycle goes through the policy: bob approves (our client
    // writes the decision, the bindings and their uids in his name).
    let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await]).reaping(false);
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]).reaping(false);
    let granted = bob
        .approve(
            &key(&name),
            ApproveSpec {
                duration: Duration::from_secs(1800),
                namespaces: vec!["orders".into()],
                reason: None,
            },
        )
        .await
        .expect("an approval passes the policy");
    assert_eq!(granted.phase(), Phase::Active);
    let bindings = granted.status.bindings.clone();
    assert!(!bindings.is_empty());
    // A live grant never goes back to Pending (where nothing ends it).
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &status,
        Some(&json!({"status": {"phase": "Pending"}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("Active never becomes Pending"), "{text}");
    // A live grant: expiresAt only moves earlier; its record stays.
    let later = json!({"status": {"expiresAt": "2099-01-01T00:00:00Z"}});
    let (code, text) = cp.raw("bob", "PATCH", &status, Some(&later.to_string()));
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("expiresAt only moves earlier"), "{text}");
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &status,
        Some(&json!({"status": {"bindings": []}}).to_string()),
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("stays listed with its uid"), "{text}");
    let mut swapped = serde_json::to_value(&bindings).unwrap();
    swapped[0]["uid"] = json!("00000000-0000-0000-0000-000000000000");
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &status,
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
    // bob shortens and revokes through it.
    bob.shorten(
        &key(&name),
        chrono::Utc::now() + chrono::TimeDelta::minutes(10),
    )
    .await
    .expect("shorten passes the policy");
    let revoked = bob
        .revoke(&key(&name), "done")
        .await
        .expect("revoke passes the policy");
    assert_eq!(revoked.phase(), Phase::Revoked);
    // Terminal: nothing changes any more (but the note).
    let reopen = json!({"status": {"phase": "Active"}});
    let (code, text) = cp.raw("bob", "PATCH", &status, Some(&reopen.to_string()));
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("terminal phases never change"), "{text}");
    let (code, text) = cp.raw(
        "bob",
        "PATCH",
        &status,
        Some(&json!({"status": {"message": "checked"}}).to_string()),
    );
    assert_eq!(code, 200, "the note may change: {text}");

    // A requester withdraws their own pending request.
    let pending = alice.create(ask("alice", 30)).await.unwrap();
    let (code, text) = cp.raw("alice", "DELETE", &format!("{AR}/{}", pending.name), None);
    assert_eq!(code, 200, "{text}");

    // The reaper (privileged) ends a grant at its expiry through it.
    let_through(&cp, "reaper,server");
    let _reaper = reaper(&cp).await;
    let short = alice.create(ask("alice", 30)).await.unwrap();
    bob.approve(
        &key(&short.name),
        ApproveSpec {
            duration: Duration::from_secs(2),
            namespaces: vec!["orders".into()],
            reason: None,
        },
    )
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
    drop(admin);
}
