//! Direct mode against a hostile requester and a careless approver, on a
//! real control plane. Every attack uses the attacker's own bearer token
//! and only the rights the shipped roles give them, over raw HTTP (curl)
//! as an attacker would — never our own well-behaved client — and every
//! outcome is measured by asking the apiserver (SubjectAccessReview) what
//! the attacker can do.

mod common;
use common::asking::{ask, key, spec};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::cluster::{apply, can_i, crb, install, reaper, wait_for, ControlPlane};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DynamicObject};
use portcullis::backend::kube::{request_resource, Fault, KubeBackend, KubeCluster};
use portcullis::backend::{AccessBackend, BackendEvent};
use portcullis::domain::{AccessRequest, Phase};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

fn path(name: &str) -> String {
    format!("/apis/portcullis.dev/v1alpha1/accessrequests/{name}")
}

async fn stored(admin: &KubeCluster, name: &str) -> Option<AccessRequest> {
    Api::<DynamicObject>::all_with(admin.client.clone(), &request_resource())
        .get_opt(name)
        .await
        .unwrap()
        .map(|o| {
            portcullis::backend::kube::grant::read(
                &portcullis::backend::kube::grant::Site::direct(admin),
                o,
            )
            .req
        })
}

async fn binding(admin: &KubeCluster, ns: &str, request: &str) -> Option<RoleBinding> {
    Api::<RoleBinding>::namespaced(admin.client.clone(), ns)
        .get_opt(&format!("portcullis-{request}"))
        .await
        .unwrap()
}

/// Waits for the request to reach `phase` (generous deadline: the
/// machine may be loaded; nothing here is a timing assertion).
async fn until_phase(admin: &KubeCluster, name: &str, phase: Phase) -> AccessRequest {
    let mut last = None;
    for _ in 0..300 {
        last = stored(admin, name).await;
        if last.as_ref().is_some_and(|r| r.phase() == phase) {
            return last.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never became {phase}: {last:?}");
}

/// Who acts: the admin, alice asking, and bob approving (his cluster
/// client, which takes injected faults, and his console on it).
struct Lab {
    admin: Arc<KubeCluster>,
    alice: KubeBackend,
    bob_c: Arc<KubeCluster>,
    bob: KubeBackend,
}

/// Status writes, spec writes, deletes and binding edits by requesters:
/// refused, or without effect on access. Measured after expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_cannot_keep_widen_or_cut_short_a_grant() {
    let cp = ControlPlane::start();
    let admin = install(&cp).await;
    let _reaper = reaper(&cp).await;
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]);
    let bob_c = cp.cluster("bob").await;
    let bob = KubeBackend::from_clusters(vec![bob_c.clone()]).reaping(false);
    let lab = Lab {
        admin,
        alice,
        bob_c,
        bob,
    };
    let (asked, other, end) = alice_holds_admin_in_payments(&lab).await;
    no_status_write_by_a_requester(&cp, &lab, &asked, &other).await;
    she_strips_her_own_binding(&cp, &lab, &asked).await;
    deleting_the_request_keeps_the_grant(&cp, &lab, &asked).await;
    after_its_end_nothing_is_left(&lab, &asked, end).await;
}

/// alice asks for admin in payments (and for view in orders); bob grants
/// the first for 20 s. Returns both requests and the grant's end.
async fn alice_holds_admin_in_payments(lab: &Lab) -> (AccessRequest, AccessRequest, DateTime<Utc>) {
    let asked = lab
        .alice
        .create(ask("alice", "admin", &["payments"], 30))
        .await
        .unwrap();
    let other = lab
        .alice
        .create(ask("alice", "view", &["orders"], 30))
        .await
        .unwrap();
    let granted = lab
        .bob
        .approve(&key(&asked.name), spec(20, &["payments"]))
        .await
        .expect("bob approves admin in payments for 20 s");
    let end = granted.status.expires_at.unwrap();
    assert!(can_i(&lab.admin, "alice", "list", "", "pods", Some("payments")).await);
    (asked, other, end)
}

/// Step 1: Every status write a requester might try, with her own token.
async fn no_status_write_by_a_requester(
    cp: &ControlPlane,
    lab: &Lab,
    asked: &AccessRequest,
    other: &AccessRequest,
) {
    let status = format!("{}/status", path(&asked.name));
    for body in [
        json!({"status": {"phase": "Withdrawn"}}),
        json!({"status": {"expiresAt": "2099-01-01T00:00:00Z"}}),
        json!({"status": {"bindings": []}}),
        json!({"status": {"phase": "Pending", "decision": null}}),
    ] {
        let (code, text) = cp.raw("alice", "PATCH", &status, Some(&body.to_string()));
        assert_eq!(code, 403, "alice PATCH status {body}: {text}");
    }
    let whole = Api::<DynamicObject>::all_with(lab.admin.client.clone(), &request_resource())
        .get(&asked.name)
        .await
        .unwrap();
    let mut replaced = serde_json::to_value(&whole).unwrap();
    replaced["status"]["expiresAt"] = json!("2099-01-01T00:00:00Z");
    let (code, _) = cp.raw("alice", "PUT", &status, Some(&replaced.to_string()));
    assert_eq!(code, 403, "alice PUT status");
    // ... nor the spec, nor other people's requests.
    let (code, _) = cp.raw(
        "alice",
        "PATCH",
        &path(&asked.name),
        Some(r#"{"spec":{"duration":"8h"}}"#),
    );
    assert_eq!(code, 403, "alice PATCH spec");
    for body in [
        json!({"status": {"phase": "Denied", "decision": {"by": "bob", "verdict": "Denied"}}}),
        json!({"status": {"phase": "Expired"}}),
    ] {
        let (code, _) = cp.raw(
            "mallory",
            "PATCH",
            &format!("{}/status", path(&other.name)),
            Some(&body.to_string()),
        );
        assert_eq!(code, 403, "mallory deciding alice's request: {body}");
    }
    // A status sent on create is dropped by the apiserver.
    let forged = json!({"apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
        "metadata": {"name": "forged-active"},
        "spec": {"requester": {"user": "alice"}, "role": {"kind": "ClusterRole", "name": "admin"},
                 "namespaces": ["payments"], "duration": "8h", "reason": "x"},
        "status": {"phase": "Active", "expiresAt": "2099-01-01T00:00:00Z",
                   "decision": {"by": "bob", "verdict": "Approved"}}});
    let (code, _) = cp.raw(
        "alice",
        "POST",
        "/apis/portcullis.dev/v1alpha1/accessrequests",
        Some(&forged.to_string()),
    );
    assert_eq!(code, 201);
    assert_eq!(
        stored(&lab.admin, "forged-active").await.unwrap().phase(),
        Phase::Pending
    );
}

/// Step 2: Her admin grant lets her edit RoleBindings in payments: she strips
/// every label, annotation and the ownerReference of her own binding.
async fn she_strips_her_own_binding(cp: &ControlPlane, lab: &Lab, asked: &AccessRequest) {
    let rb = format!(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings/portcullis-{}",
        asked.name
    );
    let (code, text) = cp.raw(
        "alice",
        "PATCH",
        &rb,
        Some(r#"{"metadata":{"labels":null,"annotations":null,"ownerReferences":null}}"#),
    );
    assert_eq!(code, 200, "the grantee may edit it: {text}");
    let stripped = binding(&lab.admin, "payments", &asked.name).await.unwrap();
    assert!(stripped.metadata.labels.unwrap_or_default().is_empty());
    assert!(stripped
        .metadata
        .owner_references
        .unwrap_or_default()
        .is_empty());
}

/// Step 3: Deleting the request (mallory may delete any request: RBAC cannot
/// say "your own") neither ends nor extends the grant — not even with
/// foreground propagation, which has the garbage collector delete
/// whatever names the request as its owner.
async fn deleting_the_request_keeps_the_grant(cp: &ControlPlane, lab: &Lab, asked: &AccessRequest) {
    let (code, text) = cp.raw(
        "mallory",
        "DELETE",
        &path(&asked.name),
        Some(r#"{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"}"#),
    );
    assert_eq!(code, 200, "{text}");
    tokio::time::sleep(Duration::from_secs(2)).await; // the garbage collector's chance
    assert!(
        binding(&lab.admin, "payments", &asked.name).await.is_some(),
        "the grant's binding survives"
    );
    let held = stored(&lab.admin, &asked.name)
        .await
        .expect("kept by the finalizer");
    assert_eq!(held.phase(), Phase::Active);
    assert!(
        can_i(&lab.admin, "alice", "list", "", "pods", Some("payments")).await,
        "deleting the request does not cut the grant short"
    );
}

/// After its end: no access, the stripped binding gone, the request
/// released (and so deleted, as mallory asked).
async fn after_its_end_nothing_is_left(lab: &Lab, asked: &AccessRequest, end: DateTime<Utc>) {
    wait_for("alice's access to end after expiry", 30, || async {
        !can_i(&lab.admin, "alice", "list", "", "pods", Some("payments")).await
    })
    .await;
    assert!(Utc::now() >= end, "never before its end");
    assert!(binding(&lab.admin, "payments", &asked.name).await.is_none());
    wait_for("the request to be released", 30, || async {
        stored(&lab.admin, &asked.name).await.is_none()
    })
    .await;
    for verb in ["get", "list", "delete", "create"] {
        assert!(
            !can_i(&lab.admin, "alice", verb, "", "pods", Some("payments")).await,
            "{verb}"
        );
    }
}

/// An approval that races a revoke or an expiry, dies half-way, or loses
/// its apiserver half-way leaves no binding that no live grant accounts for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_approval_leaves_an_orphan_binding() {
    let mut cp = ControlPlane::start();
    let admin = install(&cp).await;
    let _reaper = reaper(&cp).await;
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]);
    let bob_c = cp.cluster("bob").await;
    let bob = KubeBackend::from_clusters(vec![bob_c.clone()]).reaping(false);
    let carol = KubeBackend::from_clusters(vec![cp.cluster("carol").await]).reaping(false);
    let lab = Lab {
        admin,
        alice,
        bob_c,
        bob,
    };
    let r1 = approve_racing_revoke(&lab, &carol).await;
    approve_racing_expiry(&lab).await;
    dies_before_recording_its_bindings(&lab).await;
    dies_right_after_its_claim(&lab).await;
    the_apiserver_stops_mid_approval(&mut cp, &lab).await;
    the_sweep_removes_a_leftover_binding(&lab, &r1).await;
    a_revoke_retries_after_a_409(&lab).await;
}

/// Approve racing revoke: carol revokes while bob's approval stalls
/// between its claim and its bindings. Returns the request.
async fn approve_racing_revoke(lab: &Lab, carol: &KubeBackend) -> AccessRequest {
    let r1 = lab
        .alice
        .create(ask("alice", "edit", &["payments"], 30))
        .await
        .unwrap();
    lab.bob_c
        .inject_fault(Some(Fault::PauseAfterClaim(Duration::from_secs(2))));
    let approving = tokio::spawn({
        let bob = KubeBackend::from_clusters(vec![lab.bob_c.clone()]).reaping(false);
        let k = key(&r1.name);
        async move { bob.approve(&k, spec(600, &["payments"])).await }
    });
    until_phase(&lab.admin, &r1.name, Phase::Active).await;
    let revoked = carol
        .revoke(&key(&r1.name), "wrong person")
        .await
        .expect("revoke the claim");
    assert_eq!(revoked.phase(), Phase::Revoked);
    let err = approving.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("became Revoked"), "{err}");
    assert!(binding(&lab.admin, "payments", &r1.name).await.is_none());
    assert!(!can_i(&lab.admin, "alice", "list", "", "pods", Some("payments")).await);
    r1
}

/// Approve racing the expiry of a short grant.
async fn approve_racing_expiry(lab: &Lab) {
    let r2 = lab
        .alice
        .create(ask("alice", "edit", &["payments"], 30))
        .await
        .unwrap();
    lab.bob_c
        .inject_fault(Some(Fault::PauseAfterClaim(Duration::from_secs(4))));
    let err = lab
        .bob
        .approve(&key(&r2.name), spec(1, &["payments"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("became Expired"), "{err}");
    assert!(binding(&lab.admin, "payments", &r2.name).await.is_none());
}

/// The approving process dies after creating its bindings, before
/// recording them: the reaper undoes it after the grace period.
async fn dies_before_recording_its_bindings(lab: &Lab) {
    let r3 = lab
        .alice
        .create(ask("alice", "edit", &["payments", "orders"], 30))
        .await
        .unwrap();
    lab.bob_c.inject_fault(Some(Fault::CrashBeforeRecord));
    assert!(lab
        .bob
        .approve(&key(&r3.name), spec(600, &["payments", "orders"]))
        .await
        .is_err());
    assert!(
        binding(&lab.admin, "orders", &r3.name).await.is_some(),
        "left behind by the crash"
    );
    let failed = until_phase(&lab.admin, &r3.name, Phase::Failed).await;
    assert!(failed
        .status
        .message
        .unwrap_or_default()
        .contains("did not complete"));
    assert!(binding(&lab.admin, "payments", &r3.name).await.is_none());
    assert!(binding(&lab.admin, "orders", &r3.name).await.is_none());
}

/// ... or dies right after its claim.
async fn dies_right_after_its_claim(lab: &Lab) {
    let r4 = lab
        .alice
        .create(ask("alice", "view", &["orders"], 30))
        .await
        .unwrap();
    lab.bob_c.inject_fault(Some(Fault::CrashAfterClaim));
    assert!(lab
        .bob
        .approve(&key(&r4.name), spec(600, &["orders"]))
        .await
        .is_err());
    until_phase(&lab.admin, &r4.name, Phase::Failed).await;
}

/// The apiserver stops in the middle of an approval (its clean-up fails
/// too) and comes back.
async fn the_apiserver_stops_mid_approval(cp: &mut ControlPlane, lab: &Lab) {
    let r5 = lab
        .alice
        .create(ask("alice", "edit", &["orders"], 30))
        .await
        .unwrap();
    lab.bob_c
        .inject_fault(Some(Fault::PauseAfterClaim(Duration::from_secs(2))));
    let approving = tokio::spawn({
        let bob = KubeBackend::from_clusters(vec![lab.bob_c.clone()]).reaping(false);
        let k = key(&r5.name);
        async move { bob.approve(&k, spec(600, &["orders"])).await }
    });
    until_phase(&lab.admin, &r5.name, Phase::Active).await;
    cp.stop_apiserver();
    assert!(approving.await.unwrap().is_err(), "no apiserver, no grant");
    tokio::time::sleep(Duration::from_secs(1)).await;
    cp.start_apiserver();
    until_phase(&lab.admin, &r5.name, Phase::Failed).await;
    assert!(binding(&lab.admin, "orders", &r5.name).await.is_none());
    assert!(!can_i(&lab.admin, "alice", "list", "", "pods", Some("orders")).await);
}

/// A clean-up that failed leaves a binding for an ended grant: the sweep
/// removes it (here made by hand, as the failed clean-up left it).
async fn the_sweep_removes_a_leftover_binding(lab: &Lab, r1: &AccessRequest) {
    let uid = Api::<DynamicObject>::all_with(lab.admin.client.clone(), &request_resource())
        .get(&r1.name)
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    apply(
        &lab.admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("portcullis-{}", r1.name), "namespace": "payments",
                "labels": {"app.kubernetes.io/managed-by": "portcullis", "portcullis.dev/request": r1.name},
                "annotations": {"portcullis.dev/request-uid": uid}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}),
    )
    .await;
    wait_for("the sweep to remove the leftover binding", 30, || async {
        binding(&lab.admin, "payments", &r1.name).await.is_none()
    })
    .await;
    // The apiserver's RBAC cache follows the deletion within moments (a
    // SubjectAccessReview right after it may still see the binding).
    wait_for("the access to be gone", 10, || async {
        !can_i(&lab.admin, "alice", "list", "", "pods", Some("payments")).await
    })
    .await;
}

/// A revoke whose status write meets a 409 after the bindings are gone
/// retries on a fresh read and records the revoke.
async fn a_revoke_retries_after_a_409(lab: &Lab) {
    let r6 = lab
        .alice
        .create(ask("alice", "view", &["orders"], 30))
        .await
        .unwrap();
    lab.bob
        .approve(&key(&r6.name), spec(600, &["orders"]))
        .await
        .expect("approve");
    lab.bob_c.inject_fault(Some(Fault::ConflictBeforeEndWrite));
    let revoked = lab
        .bob
        .revoke(&key(&r6.name), "done")
        .await
        .expect("revoke despite the 409");
    assert_eq!(revoked.phase(), Phase::Revoked);
    assert_eq!(
        stored(&lab.admin, &r6.name)
            .await
            .unwrap()
            .status
            .revoked_by
            .as_deref(),
        Some("bob")
    );
}

/// Who approves is who the apiserver says, whatever the kubeconfig says;
/// claimed groups are claims; one clock and one set of limits per cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_groups_clock_and_limits_come_from_the_cluster() {
    let cp = ControlPlane::start();
    let admin = install(&cp).await;
    // bob may ask for access too (on-call engineers do).
    apply(
        &admin,
        crb("oncall-requesters", "portcullis-requester", "oncall"),
    )
    .await;
    let bob_c = bob_verified_the_versions_way(&cp).await;
    let bob = KubeBackend::from_clusters(vec![bob_c.clone()]).reaping(false);
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]).reaping(false);
    let lab = Lab {
        admin,
        alice,
        bob_c,
        bob,
    };
    let own = an_entry_named_like_another_approver(&cp, &lab).await;
    let with_cert = a_self_made_certificate_names_nobody(&cp, &lab, &own).await;
    dave_is_verified_as_himself(&cp).await;
    two_credentials_in_one_entry(&cp, &lab, &with_cert).await;
    let _events = claimed_groups_are_claims(&lab).await;
    let (skewed, g) = one_clock(&cp, &lab).await;
    a_fast_reaper_ends_nothing_early(&cp, &lab, &skewed, &g).await;
    one_set_of_limits_in_the_cluster(&lab).await;
    the_approval_timeout_comes_from_the_cluster(&cp, &lab).await;
}

/// bob's identity, verified the way of the version: SelfSubjectReview from
/// 1.28, the apiserver's refusal plus TokenReview before.
async fn bob_verified_the_versions_way(cp: &ControlPlane) -> Arc<KubeCluster> {
    let bob_c = cp.cluster("bob").await;
    assert_eq!(bob_c.identity.user, "bob");
    // The identity path of the version: SelfSubjectReview from 1.28, the
    // apiserver's refusal plus TokenReview before.
    let path = if cp.version >= (1, 28) {
        "SelfSubjectReview"
    } else {
        "TokenReview"
    };
    assert_eq!(bob_c.identity.verified_by.to_string(), path);
    assert!(bob_c.identity.groups.contains(&"oncall".to_string()));
    bob_c
}

/// A kubeconfig whose user entry is named like another approver (carol)
/// but holds bob's token: bob's own request is still his own. Returns it.
async fn an_entry_named_like_another_approver(cp: &ControlPlane, lab: &Lab) -> AccessRequest {
    let own = lab
        .bob
        .create(ask("bob", "view", &["orders"], 30))
        .await
        .unwrap();
    let forged = cp.dir.join("forged-kubeconfig");
    std::fs::write(
        &forged,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"{}\", insecure-skip-tls-verify: true}}\nusers:\n- name: carol\n  user: {{token: bob-token}}\ncontexts:\n- name: carol\n  context: {{cluster: test, user: carol}}\ncurrent-context: carol\n",
            cp.url()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["approve", &own.name])
        .env("KUBECONFIG", &forged)
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("you (bob) asked for this: someone else must approve it"),
        "{err}"
    );
    let after = stored(&lab.admin, &own.name).await.unwrap();
    assert_eq!(after.phase(), Phase::Pending);
    assert!(after.status.decision.is_none(), "never recorded as carol");
    own
}

/// A kubeconfig entry carrying a self-made certificate with CN=carol next
/// to bob's token: the apiserver authenticates the token, and so does
/// Portcullis — the certificate names nobody. Returns that kubeconfig.
async fn a_self_made_certificate_names_nobody(
    cp: &ControlPlane,
    lab: &Lab,
    own: &AccessRequest,
) -> PathBuf {
    let run = |args: &[&str]| {
        let ok = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&cp.dir)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "fake.key",
        "-out",
        "fake.crt",
        "-days",
        "1",
        "-subj",
        "/O=oncall/CN=carol",
    ]);
    use base64::Engine;
    let b64 = |f: &str| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(cp.dir.join(f)).unwrap())
    };
    let with_cert = cp.dir.join("cert-kubeconfig");
    std::fs::write(
        &with_cert,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"{}\", insecure-skip-tls-verify: true}}\nusers:\n- name: carol\n  user: {{token: bob-token, client-certificate-data: {}, client-key-data: {}}}\ncontexts:\n- name: carol\n  context: {{cluster: test, user: carol}}\ncurrent-context: carol\n",
            cp.url(),
            b64("fake.crt"),
            b64("fake.key")
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["approve", &own.name])
        .env("KUBECONFIG", &with_cert)
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("you (bob) asked for this"), "{err}");
    assert!(stored(&lab.admin, &own.name)
        .await
        .unwrap()
        .status
        .decision
        .is_none());
    with_cert
}

/// dave may not create TokenReviews, yet the apiserver names him in its
/// refusal of a probe: verified, as himself.
async fn dave_is_verified_as_himself(cp: &ControlPlane) {
    let dave = cp.cluster("dave").await;
    assert_eq!(dave.identity.user, "dave");
    assert!(dave.identity.is_verified(), "{:?}", dave.identity);
}

/// An approver the apiserver will not name (nothing is refused to a
/// system:masters user) with two credentials in one entry: which one the
/// apiserver used is unknowable before 1.28, so the identity is
/// unverified and approvals are refused.
async fn two_credentials_in_one_entry(cp: &ControlPlane, lab: &Lab, with_cert: &Path) {
    let theirs = lab
        .alice
        .create(ask("alice", "view", &["orders"], 30))
        .await
        .unwrap();
    let two = std::fs::read_to_string(with_cert)
        .unwrap()
        .replace("bob-token", "admin-token");
    let two_path = cp.dir.join("two-credentials");
    std::fs::write(&two_path, two).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["approve", &theirs.name])
        .env("KUBECONFIG", &two_path)
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let decision = stored(&lab.admin, &theirs.name)
        .await
        .unwrap()
        .status
        .decision;
    if cp.version >= (1, 28) {
        // SelfSubjectReview: the apiserver says whom it authenticated (the
        // token: the certificate is not one it trusts), and that is who
        // approved, whatever the entry is called.
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert_eq!(decision.expect("approved").by, "admin");
    } else {
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("could not be verified"), "{err}");
        assert!(decision.is_none());
    }
}

/// Claimed groups: alice says she is in system:masters; the diff still
/// shows everything cluster-admin adds, critical. Returns bob's watch
/// (kept open, as before the split).
async fn claimed_groups_are_claims(lab: &Lab) -> UnboundedReceiver<BackendEvent> {
    let mut claim = ask("alice", "cluster-admin", &["payments"], 30);
    claim.requester.groups = vec!["system:masters".into()];
    let claimed = lab.alice.create(claim).await.unwrap();
    let info = lab.bob.info();
    assert!(!info.requester_groups_verified);
    let mut state = portcullis::console::state::AppState::new(
        Default::default(),
        info.approver.clone(),
        info.kind,
        lab.bob.now(),
    )
    .trust(&info);
    let mut events = lab.bob.watch();
    let k = key(&claimed.name);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !(state.entries.contains_key(&k) && state.inventories.contains_key("test")) {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("events")
            .expect("open");
        portcullis::console::update::update(
            &mut state,
            portcullis::console::update::Action::Backend(portcullis::backend::batch::drain(
                e,
                &mut events,
            )),
        );
    }
    let entry = state.entries.get(&k).unwrap().into_owned();
    let summary = state.summary_for(&entry.req);
    assert_eq!(
        summary.worst,
        Some(portcullis::domain::Severity::Critical),
        "{summary:?}"
    );
    assert!(summary.new_permissions > 0, "{summary:?}");
    events
}

/// One clock: bob's laptop is an hour fast; the grant still lasts 10 min
/// from the apiserver's now. Returns bob's skewed console and the grant.
async fn one_clock(cp: &ControlPlane, lab: &Lab) -> (KubeBackend, AccessRequest) {
    let fast = cp
        .cluster_with_clock(
            "bob",
            portcullis::backend::kube::clock::ClusterClock::with_local_error(TimeDelta::hours(1)),
        )
        .await;
    let skewed = KubeBackend::from_clusters(vec![fast]).reaping(false);
    let r = lab
        .alice
        .create(ask("alice", "view", &["orders"], 30))
        .await
        .unwrap();
    let g = skewed
        .approve(&key(&r.name), spec(600, &["orders"]))
        .await
        .expect("approve");
    let off = (g.status.expires_at.unwrap() - (Utc::now() + TimeDelta::minutes(10)))
        .num_seconds()
        .abs();
    assert!(off <= 5, "expiresAt off by {off} s");
    (skewed, g)
}

/// ... and a reaper on a laptop an hour fast ends nothing early.
async fn a_fast_reaper_ends_nothing_early(
    cp: &ControlPlane,
    lab: &Lab,
    skewed: &KubeBackend,
    g: &AccessRequest,
) {
    let fast_reaper = cp
        .cluster_with_clock(
            "reaper",
            portcullis::backend::kube::clock::ClusterClock::with_local_error(TimeDelta::hours(1)),
        )
        .await;
    let task = tokio::spawn(portcullis::backend::kube::reaper::run(
        fast_reaper,
        Default::default(),
        None,
    ));
    let short = lab
        .alice
        .create(ask("alice", "view", &["orders"], 30))
        .await
        .unwrap();
    let s = skewed
        .approve(&key(&short.name), spec(4, &["orders"]))
        .await
        .expect("approve");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stored(&lab.admin, &g.name).await.unwrap().phase(),
        Phase::Active,
        "a 10-minute grant untouched"
    );
    assert_eq!(
        stored(&lab.admin, &s.name).await.unwrap().phase(),
        Phase::Active,
        "not before its end"
    );
    until_phase(&lab.admin, &s.name, Phase::Expired).await;
    assert!(Utc::now() >= s.status.expires_at.unwrap());
    task.abort();
}

/// One set of limits, in the cluster.
async fn one_set_of_limits_in_the_cluster(lab: &Lab) {
    apply(
        &lab.admin,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "portcullis-settings", "namespace": "portcullis-system"},
            "data": {"maxDuration": "1h", "grantableRoles": "view", "approvalTimeout": "3s"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(11)).await; // the settings cache
    let long = lab
        .alice
        .create(ask("alice", "view", &["orders"], 120))
        .await
        .unwrap();
    let err = lab
        .bob
        .approve(&key(&long.name), spec(7200, &["orders"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("longer than the allowed maximum of 1h"),
        "{err}"
    );
    let edit = lab
        .alice
        .create(ask("alice", "edit", &["orders"], 30))
        .await
        .unwrap();
    let err = lab
        .bob
        .approve(&key(&edit.name), spec(600, &["orders"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a grantable role"), "{err}");
    let system = lab
        .alice
        .create(ask("alice", "view", &["portcullis-system"], 30))
        .await
        .unwrap();
    let err = lab
        .bob
        .approve(&key(&system.name), spec(600, &["portcullis-system"]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("never granted"), "{err}");
}

/// A requester's console does not reap (it may not), so it never expires
/// anyone's request; the approval timeout comes from the cluster and an
/// approver's console (or the reaper) applies it.
async fn the_approval_timeout_comes_from_the_cluster(cp: &ControlPlane, lab: &Lab) {
    let pending = lab
        .alice
        .create(ask("alice", "view", &["orders"], 30))
        .await
        .unwrap();
    let alice_console = KubeBackend::from_clusters(vec![cp.cluster("alice").await]);
    let _alice_events = alice_console.watch();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        stored(&lab.admin, &pending.name).await.unwrap().phase(),
        Phase::Pending
    );
    let bob_console = KubeBackend::from_clusters(vec![lab.bob_c.clone()]);
    let _bob_events = bob_console.watch();
    let expired = until_phase(&lab.admin, &pending.name, Phase::Expired).await;
    assert_eq!(
        expired.status.message.as_deref(),
        Some("not decided within the approval timeout")
    );
}

/// Direct mode signed in as users are: an exec credential plugin (here a
/// real script printing an ExecCredential, as kubelogin or `aws eks
/// get-token` do) under an entry named like another approver. Who acts is
/// who the apiserver authenticated: SelfSubjectReview on 1.28+, its
/// refusal of a probe before; never the entry's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_plugin_signs_in_as_whom_the_apiserver_says() {
    let cp = ControlPlane::start();
    let admin = install(&cp).await;
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]).reaping(false);
    let theirs = alice
        .create(ask("alice", "view", &["orders"], 30))
        .await
        .unwrap();
    let calls = cp.dir.join("plugin-calls");
    let plugin = cp.dir.join("get-token");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho call >> {}\nprintf '%s' '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"bob-token\"}}}}'\n",
            calls.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kubeconfig = cp.dir.join("exec-kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"{}\", insecure-skip-tls-verify: true}}\nusers:\n- name: carol\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\ncontexts:\n- name: carol\n  context: {{cluster: test, user: carol}}\ncurrent-context: carol\n",
            cp.url(),
            plugin.display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["approve", &theirs.name])
        .env("KUBECONFIG", &kubeconfig)
        .env("XDG_STATE_HOME", cp.dir.join("state"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let decided = stored(&admin, &theirs.name).await.unwrap();
    assert_eq!(decided.status.decision.expect("approved").by, "bob");
    assert!(std::fs::read_to_string(&calls).unwrap().lines().count() >= 1);
    // The identity path this version takes, as the console shows it.
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let auth = config.auth_info.clone();
    let client = kube::Client::try_from(config).unwrap();
    let who = KubeCluster::connect("test", client, &auth, "carol").await;
    assert_eq!(who.identity.user, "bob");
    let path = if cp.version >= (1, 28) {
        "SelfSubjectReview"
    } else {
        "the apiserver's refusal"
    };
    assert_eq!(who.identity.verified_by.to_string(), path);
}
