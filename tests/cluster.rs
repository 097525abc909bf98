//! The `kube` backend against a real etcd + kube-apiserver +
//! kube-controller-manager: the whole lifecycle, proved by what the
//! apiserver lets the requester do.

mod common;
use common::asking::{key, spec};

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::cluster::{install, wait_for, ControlPlane};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DynamicObject, PostParams};
use portcullis::backend::kube::{request_resource, KubeBackend, KubeCluster};
use portcullis::backend::{AccessBackend, BackendError, BackendEvent, NewRequest};
use portcullis::domain::{AccessRequest, Phase, Subject};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

async fn can_list_pods(cluster: &KubeCluster, ns: &str) -> bool {
    match Api::<Pod>::namespaced(cluster.client.clone(), ns)
        .list(&Default::default())
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(s)) if s.code == 403 => false,
        Err(e) => panic!("unexpected error listing pods: {e}"),
    }
}

async fn next_upsert(
    rx: &mut UnboundedReceiver<BackendEvent>,
    name: &str,
    phase: Phase,
) -> AccessRequest {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let e = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no {phase} event for {name}"))
            .expect("stream open");
        if let BackendEvent::Upsert(r) = e {
            if r.name == name && r.phase() == phase {
                return *r;
            }
        }
    }
}

async fn granted_uid(admin: &KubeCluster, name: &str) -> Option<String> {
    Api::<DynamicObject>::all_with(admin.client.clone(), &request_resource())
        .get(name)
        .await
        .ok()
        .and_then(|o| o.metadata.uid)
}

/// The control plane, its admin, and the consoles of alice (a requester)
/// and of bob and carol (approvers).
struct Lab {
    admin: Arc<KubeCluster>,
    alice_c: Arc<KubeCluster>,
    alice: KubeBackend,
    bob: KubeBackend,
    carol: KubeBackend,
    cp: ControlPlane,
}

/// Starts the control plane, installs Portcullis, connects everyone.
async fn lab() -> Lab {
    let cp = ControlPlane::start();
    let admin = install(&cp).await;
    let alice_c = cp.cluster("alice").await;
    let alice = KubeBackend::from_clusters(vec![alice_c.clone()]);
    let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await]);
    let carol = KubeBackend::from_clusters(vec![cp.cluster("carol").await]);
    Lab {
        admin,
        alice_c,
        alice,
        bob,
        carol,
        cp,
    }
}

/// `user` in `groups` asks, with a ticket.
fn ask(user: &str, groups: &[&str], role: &str, ns: &[&str], minutes: u64) -> NewRequest {
    NewRequest {
        requester: Subject::new(user, groups),
        reason: "INC-1 payments stuck".into(),
        ticket: Some("INC-1".into()),
        ..common::asking::ask(user, role, ns, minutes)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_against_a_real_apiserver() {
    let lab = lab().await;
    // Who may decide, as the apiserver answers (issue 21, item 9): the
    // console says "requester" for alice and offers her no decisions.
    assert_eq!(lab.alice.info().may_approve, Some(false));
    assert_eq!(lab.bob.info().may_approve, Some(true));
    // bob's console reaps (an approver's console may).
    let mut live = lab.bob.watch();
    let asked = request_then_approve_narrower_and_shorter(&lab, &mut live).await;
    the_binding_names_request_and_approver(&lab, &asked).await;
    shorten_then_expiry_by_the_reaper(&lab, &mut live, &asked).await;
    deny_with_a_reason_and_withdraw(&lab).await;
    let raced = two_approvers_race(&lab).await;
    revoke_ends_it_now(&lab, &raced).await;
    revoke_beside_standing_rbac(&lab).await;
    a_role_the_approver_may_not_bind(&lab).await;
    hand_made_objects(&lab, &mut live).await;
}

/// Request → visible live → approve narrower and shorter → works.
async fn request_then_approve_narrower_and_shorter(
    lab: &Lab,
    live: &mut UnboundedReceiver<BackendEvent>,
) -> AccessRequest {
    assert!(
        !can_list_pods(&lab.alice_c, "payments").await,
        "locked by default"
    );
    let asked = lab
        .alice
        .create(ask("alice", &["dev"], "edit", &["payments", "orders"], 60))
        .await
        .expect("alice may ask");
    let seen = next_upsert(live, &asked.name, Phase::Pending).await;
    assert_eq!(seen.requester.user, "alice");
    let err = lab
        .alice
        .approve(&key(&asked.name), spec(60, &["payments"]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("someone else must approve"),
        "{err}"
    );
    let granted = lab
        .bob
        .approve(&key(&asked.name), spec(600, &["payments"]))
        .await
        .expect("bob approves");
    assert_eq!(granted.phase(), Phase::Active);
    wait_for("alice's access in payments", 10, || {
        can_list_pods(&lab.alice_c, "payments")
    })
    .await;
    assert!(
        !can_list_pods(&lab.alice_c, "orders").await,
        "narrower than asked"
    );
    asked
}

/// The grant's binding names the request and its approver; nothing owns it.
async fn the_binding_names_request_and_approver(lab: &Lab, asked: &AccessRequest) {
    let rb = Api::<RoleBinding>::namespaced(lab.admin.client.clone(), "payments")
        .get(&format!("portcullis-{}", asked.name))
        .await
        .expect("binding");
    let labels = rb.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("portcullis")
    );
    assert_eq!(labels.get("portcullis.dev/request"), Some(&asked.name));
    let ann = rb.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get("portcullis.dev/approved-by").map(String::as_str),
        Some("bob")
    );
    assert!(ann.contains_key("portcullis.dev/expires-at"));
    // The request's uid in an annotation, no ownerReference: a foreground
    // delete of the request must not have the garbage collector take it.
    assert_eq!(
        ann.get("portcullis.dev/request-uid"),
        granted_uid(&lab.admin, &asked.name).await.as_ref()
    );
    assert!(rb.metadata.owner_references.unwrap_or_default().is_empty());
}

/// Shorten → expiry by the reaper → access gone.
async fn shorten_then_expiry_by_the_reaper(
    lab: &Lab,
    live: &mut UnboundedReceiver<BackendEvent>,
    asked: &AccessRequest,
) {
    let end = Utc::now() + TimeDelta::seconds(3);
    let short = lab
        .bob
        .shorten(&key(&asked.name), end)
        .await
        .expect("shorten");
    assert_eq!(
        short.status.expires_at.map(|t| t.timestamp()),
        Some(end.timestamp())
    );
    assert!(
        lab.bob
            .shorten(&key(&asked.name), end + TimeDelta::minutes(5))
            .await
            .is_err(),
        "never later"
    );
    // Waits on the condition (the lag is measured by `cargo bench --bench cluster`).
    let expired = next_upsert(live, &asked.name, Phase::Expired).await;
    assert_eq!(expired.phase(), Phase::Expired);
    let stored_end = short.status.expires_at.unwrap();
    assert!(Utc::now() >= stored_end, "never before its end");
    wait_for("alice's access to end", 10, || async {
        !can_list_pods(&lab.alice_c, "payments").await
    })
    .await;
    // What the apiserver said after the end, in the words of how it
    // ended: an expiry is no revoke.
    let stored_message = || async {
        Api::<DynamicObject>::all_with(lab.admin.client.clone(), &request_resource())
            .get(&asked.name)
            .await
            .ok()
            .and_then(|o| o.data["status"]["message"].as_str().map(str::to_string))
            .filter(|m| m.contains("verified"))
    };
    wait_for("the expiry's verification", 30, || async {
        stored_message().await.is_some()
    })
    .await;
    let verified = stored_message().await.unwrap();
    assert!(verified.starts_with("expired and verified:"), "{verified}");
    assert!(
        Api::<RoleBinding>::namespaced(lab.admin.client.clone(), "payments")
            .get_opt(&format!("portcullis-{}", asked.name))
            .await
            .unwrap()
            .is_none()
    );
}

/// Deny with a reason; withdraw by the requester.
async fn deny_with_a_reason_and_withdraw(lab: &Lab) {
    let second = lab
        .alice
        .create(ask("alice", &["dev"], "view", &["orders"], 30))
        .await
        .unwrap();
    let denied = lab
        .bob
        .deny(&key(&second.name), "use staging")
        .await
        .expect("deny");
    assert_eq!(denied.phase(), Phase::Denied);
    assert_eq!(
        denied.status.decision.unwrap().reason.as_deref(),
        Some("use staging")
    );
    let third = lab
        .alice
        .create(ask("alice", &["dev"], "view", &["orders"], 30))
        .await
        .unwrap();
    // An approver's raw DELETE is refused by the apiserver (not by our
    // client): approvers decide, they do not withdraw.
    let path = format!(
        "/apis/portcullis.dev/v1alpha1/accessrequests/{}",
        third.name
    );
    assert_eq!(lab.cp.raw("bob", "DELETE", &path, None).0, 403);
    assert_eq!(
        lab.alice
            .withdraw(&key(&third.name))
            .await
            .expect("withdraw")
            .phase(),
        Phase::Withdrawn
    );
    assert!(
        Api::<DynamicObject>::all_with(lab.admin.client.clone(), &request_resource())
            .get_opt(&third.name)
            .await
            .unwrap()
            .is_none(),
        "withdrawn = deleted"
    );
}

/// Two approvers race: exactly one grant, the other told who won.
async fn two_approvers_race(lab: &Lab) -> AccessRequest {
    let raced = lab
        .alice
        .create(ask("alice", &["dev"], "view", &["orders"], 30))
        .await
        .unwrap();
    let spec = spec(600, &["orders"]);
    let raced_key = key(&raced.name);
    let (a, b) = tokio::join!(
        lab.bob.approve(&raced_key, spec.clone()),
        lab.carol.approve(&raced_key, spec.clone())
    );
    let wins = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
    assert_eq!(wins, 1, "{a:?} {b:?}");
    let winner = if a.is_ok() { "bob" } else { "carol" };
    let loser = a.err().or(b.err()).unwrap().to_string();
    assert!(
        loser.contains(&format!("{winner} already decided"))
            || loser.contains("only a Pending request"),
        "{loser}"
    );
    // The record and the binding name the winner; the loser wrote nothing.
    let stored = lab
        .bob
        .get(&raced_key, portcullis::backend::Caller::Approver)
        .await
        .unwrap()
        .0;
    assert_eq!(stored.status.decision.as_ref().unwrap().by, winner);
    let rb = Api::<RoleBinding>::namespaced(lab.admin.client.clone(), "orders")
        .get(&format!("portcullis-{}", raced.name))
        .await
        .unwrap();
    assert_eq!(
        rb.metadata.annotations.unwrap_or_default()["portcullis.dev/approved-by"],
        winner
    );
    let managers: Vec<String> = rb
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["portcullis"], "one writer");
    assert_eq!(
        stored
            .status
            .bindings
            .iter()
            .filter(|b| b.uid == rb.metadata.uid)
            .count(),
        1,
        "recorded by uid"
    );
    raced
}

/// Revoke ends it now.
async fn revoke_ends_it_now(lab: &Lab, raced: &AccessRequest) {
    wait_for("alice's access in orders", 10, || {
        can_list_pods(&lab.alice_c, "orders")
    })
    .await;
    let revoked = lab
        .bob
        .revoke(&key(&raced.name), "done")
        .await
        .expect("revoke");
    assert_eq!(revoked.phase(), Phase::Revoked);
    assert_eq!(revoked.status.revoked_by.as_deref(), Some("bob"));
    let verified = revoked.status.message.clone().unwrap_or_default();
    assert!(verified.starts_with("revoked and verified:"), "{verified}");
    wait_for("revocation", 10, || async {
        !can_list_pods(&lab.alice_c, "orders").await
    })
    .await;
}

/// Verified revocation when standing RBAC grants the same: shown, left in place.
async fn revoke_beside_standing_rbac(lab: &Lab) {
    let standing = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "alice-standing-edit", "namespace": "orders"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]});
    Api::<RoleBinding>::namespaced(lab.admin.client.clone(), "orders")
        .create(
            &PostParams::default(),
            &serde_json::from_value(standing).unwrap(),
        )
        .await
        .expect("standing binding");
    let overlap = lab
        .alice
        .create(ask("alice", &["dev"], "edit", &["orders"], 30))
        .await
        .unwrap();
    lab.bob
        .approve(&key(&overlap.name), spec(600, &["orders"]))
        .await
        .expect("approve");
    let ended = lab
        .bob
        .revoke(&key(&overlap.name), "done")
        .await
        .expect("revoke");
    let message = ended.status.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("verified: 0 of 8 sampled permissions denied; still granted"),
        "{message}"
    );
    assert!(
        message.contains("RoleBinding orders/alice-standing-edit"),
        "{message}"
    );
    assert!(
        Api::<RoleBinding>::namespaced(lab.admin.client.clone(), "orders")
            .get_opt("alice-standing-edit")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        can_list_pods(&lab.alice_c, "orders").await,
        "standing access is never removed"
    );
}

/// A role the approver may not bind: clear error, nothing written.
async fn a_role_the_approver_may_not_bind(lab: &Lab) {
    let big = lab
        .alice
        .create(ask("alice", &["dev"], "cluster-admin", &["payments"], 30))
        .await
        .unwrap();
    let err = lab
        .bob
        .approve(&key(&big.name), spec(60, &["payments"]))
        .await
        .unwrap_err();
    // Kubernetes' escalation check, said in one line with what is needed.
    assert!(matches!(err, BackendError::Escalation { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "you (bob) may not approve {}: you would grant ",
            big.name
        )) && text.contains("give approvers `bind` on clusterrole cluster-admin")
            && !text.contains('\n'),
        "{err}"
    );
    let after = Api::<DynamicObject>::all_with(lab.admin.client.clone(), &request_resource())
        .get(&big.name)
        .await
        .unwrap();
    assert!(
        after.data.get("status").is_none_or(|s| s.is_null()),
        "still pending, nothing written"
    );
    assert!(
        Api::<RoleBinding>::namespaced(lab.admin.client.clone(), "payments")
            .get_opt(&format!("portcullis-{}", big.name))
            .await
            .unwrap()
            .is_none()
    );
}

/// A hand-made object that can never be valid is refused by the apiserver
/// (the CRD's schema), naming the fields; what the schema cannot say is
/// listed as invalid and can be denied.
async fn hand_made_objects(lab: &Lab, live: &mut UnboundedReceiver<BackendEvent>) {
    let never: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
        "metadata": {"name": "never-valid"},
        "spec": {"requester": {"user": 42}, "role": {"kind": "ClusterRole", "name": "edit"}, "namespaces": "payments", "duration": "forever", "reason": "x"}
    }))
    .unwrap();
    let refused = Api::<DynamicObject>::all_with(lab.admin.client.clone(), &request_resource())
        .create(&PostParams::default(), &never)
        .await
        .expect_err("the schema refuses it")
        .to_string();
    for field in ["spec.requester.user", "spec.namespaces", "spec.duration"] {
        assert!(refused.contains(field), "{field} in {refused}");
    }
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
        "metadata": {"name": "hand-made"},
        "spec": {"requester": {"user": "alice"}, "role": {"kind": "Role", "name": "edit"}, "namespaces": ["payments", "orders"], "duration": "30m", "reason": "\u{1b}[2J"}
    }))
    .unwrap();
    Api::<DynamicObject>::all_with(lab.admin.client.clone(), &request_resource())
        .create(&PostParams::default(), &bad)
        .await
        .expect("hand-made object");
    let listed = next_upsert(live, "hand-made", Phase::Pending).await;
    let why = listed
        .validate(&Default::default())
        .expect_err("invalid")
        .to_string();
    assert!(why.contains("2"), "{why}");
    // Stored as written; what the CLI prints of hostile text is attacked in
    // cluster_cli.rs, what the console draws in screens.rs.
    assert_eq!(listed.reason, "\u{1b}[2J");
    let err = lab
        .bob
        .approve(&key("hand-made"), spec(60, &["payments"]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid"), "{err}");
    assert_eq!(
        lab.bob
            .deny(&key("hand-made"), "malformed")
            .await
            .expect("deny")
            .phase(),
        Phase::Denied
    );
}
