//! What each shipped role can do, exactly as README's "Direct mode" states
//! it, asked of the apiserver (`kubectl auth can-i --as`); and the watches
//! and the reaper across an apiserver that goes away and comes back.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    apply, can_i, can_i_named, install, reaper, reaper_as, wait_for, ControlPlane,
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::Api;
use portcullis::backend::kube::{KubeBackend, SYSTEM_NAMESPACE};
use portcullis::backend::{AccessBackend, ApproveSpec, BackendEvent, NewRequest, RequestKey};
use portcullis::domain::rbac::Inventory;
use serde_json::json;

const AR: &str = "portcullis.dev";
const RBAC: &str = "rbac.authorization.k8s.io";

/// (user, verb, group, resource, namespace, name, allowed)
type Claim = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    bool,
);

fn ask(role: &str, ns: &str) -> NewRequest {
    NewRequest {
        reason: "INC-3 rights".into(),
        ..common::asking::ask("alice", role, &[ns], 30)
    }
}

/// portcullis-requester (alice).
const REQUESTER: &[Claim] = &[
    ("alice", "create", AR, "accessrequests", None, None, true),
    ("alice", "list", AR, "accessrequests", None, None, true),
    ("alice", "watch", AR, "accessrequests", None, None, true),
    ("alice", "delete", AR, "accessrequests", None, None, true),
    ("alice", "patch", AR, "accessrequests", None, None, false),
    ("alice", "update", AR, "accessrequests", None, None, false),
    (
        "alice",
        "patch",
        AR,
        "accessrequests/status",
        None,
        None,
        false,
    ),
    (
        "alice",
        "update",
        AR,
        "accessrequests/status",
        None,
        None,
        false,
    ),
    (
        "alice",
        "create",
        RBAC,
        "rolebindings",
        Some("payments"),
        None,
        false,
    ),
    (
        "alice",
        "create",
        "authentication.k8s.io",
        "tokenreviews",
        None,
        None,
        true,
    ),
    (
        "alice",
        "get",
        "",
        "configmaps",
        Some(SYSTEM_NAMESPACE),
        Some("portcullis-settings"),
        true,
    ),
    (
        "alice",
        "get",
        "",
        "configmaps",
        Some(SYSTEM_NAMESPACE),
        Some("other"),
        false,
    ),
];

/// The cluster's policy: approvers read it; nobody shipped writes it
/// (then a requester's token request, refused).
const POLICY: &[Claim] = &[
    (
        "bob",
        "get",
        "",
        "configmaps",
        Some(SYSTEM_NAMESPACE),
        Some("portcullis-policy"),
        true,
    ),
    (
        "bob",
        "update",
        "",
        "configmaps",
        Some(SYSTEM_NAMESPACE),
        Some("portcullis-policy"),
        false,
    ),
    (
        "alice",
        "create",
        "",
        "serviceaccounts/token",
        Some(SYSTEM_NAMESPACE),
        None,
        false,
    ),
];

/// portcullis-approver (bob).
const APPROVER: &[Claim] = &[
    ("bob", "list", AR, "accessrequests", None, None, true),
    ("bob", "patch", AR, "accessrequests", None, None, true),
    (
        "bob",
        "patch",
        AR,
        "accessrequests/status",
        None,
        None,
        true,
    ),
    ("bob", "create", AR, "accessrequests", None, None, false),
    ("bob", "delete", AR, "accessrequests", None, None, false),
    (
        "bob",
        "create",
        RBAC,
        "rolebindings",
        Some("payments"),
        None,
        true,
    ),
    (
        "bob",
        "delete",
        RBAC,
        "clusterrolebindings",
        None,
        None,
        true,
    ),
    ("bob", "escalate", RBAC, "clusterroles", None, None, false),
    (
        "bob",
        "create",
        "",
        "serviceaccounts/token",
        Some(SYSTEM_NAMESPACE),
        None,
        false,
    ),
    (
        "bob",
        "create",
        "",
        "serviceaccounts",
        Some(SYSTEM_NAMESPACE),
        None,
        false,
    ),
    ("bob", "get", "", "secrets", Some("payments"), None, false),
    (
        "bob",
        "create",
        "authorization.k8s.io",
        "subjectaccessreviews",
        None,
        None,
        true,
    ),
];

/// portcullis-reaper (+ portcullis-reaper-tokens in portcullis-system).
const REAPER: &[Claim] = &[
    (
        "reaper",
        "patch",
        AR,
        "accessrequests/status",
        None,
        None,
        true,
    ),
    ("reaper", "patch", AR, "accessrequests", None, None, true),
    ("reaper", "create", AR, "accessrequests", None, None, false),
    ("reaper", "delete", AR, "accessrequests", None, None, false),
    (
        "reaper",
        "delete",
        RBAC,
        "rolebindings",
        Some("payments"),
        None,
        true,
    ),
    (
        "reaper",
        "delete",
        RBAC,
        "clusterrolebindings",
        None,
        None,
        true,
    ),
    (
        "reaper",
        "create",
        RBAC,
        "rolebindings",
        Some("payments"),
        None,
        false,
    ),
    (
        "reaper",
        "create",
        RBAC,
        "clusterrolebindings",
        None,
        None,
        false,
    ),
    (
        "reaper",
        "create",
        RBAC,
        "rolebindings",
        Some(SYSTEM_NAMESPACE),
        None,
        true,
    ),
    (
        "reaper",
        "create",
        "",
        "serviceaccounts/token",
        Some(SYSTEM_NAMESPACE),
        None,
        true,
    ),
    (
        "reaper",
        "create",
        "",
        "serviceaccounts/token",
        Some("payments"),
        None,
        false,
    ),
    (
        "reaper",
        "get",
        "",
        "secrets",
        Some("payments"),
        None,
        false,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_can_do_what_readme_says_and_nothing_more() {
    let cp = ControlPlane::start();
    let admin = install(&cp).await;
    let table: &[Claim] = &[REQUESTER, POLICY, APPROVER, REAPER].concat();
    let mut wrong = Vec::new();
    for (user, verb, group, resource, ns, name, expected) in table {
        let got = can_i_named(&admin, user, verb, group, resource, *ns, *name).await;
        if got != *expected {
            wrong.push(format!(
                "{user} {verb} {resource} {ns:?} {name:?}: {got}, README says {expected}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The latest inventory of `cluster` among the events received so far.
fn latest(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<BackendEvent>,
    last: &mut Option<std::sync::Arc<Inventory>>,
) {
    while let Ok(e) = events.try_recv() {
        if let BackendEvent::Inventory { inventory, .. } = e {
            *last = Some(inventory);
        }
    }
}

fn holds(inv: &Option<std::sync::Arc<Inventory>>, name: &str) -> bool {
    inv.as_ref()
        .is_some_and(|i| i.role_bindings.iter().any(|b| b.metadata.name == name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_relist_and_the_reaper_outlasts_an_apiserver_outage() {
    let mut cp = ControlPlane::start();
    let admin = install(&cp).await;

    // A binding deleted while the console's watch is down stops counting
    // as held after the re-list.
    let bob = KubeBackend::from_clusters(vec![cp.cluster("bob").await]).reaping(false);
    let mut events = bob.watch();
    apply(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "alice-standing", "namespace": "orders"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}),
    )
    .await;
    let mut inv = None;
    for _ in 0..200 {
        latest(&mut events, &mut inv);
        if holds(&inv, "alice-standing") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(holds(&inv, "alice-standing"), "seen before the outage");
    let second = cp.start_second_apiserver();
    cp.stop_apiserver();
    let (code, _) = cp.raw_at(
        &second,
        "admin",
        "DELETE",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/orders/rolebindings/alice-standing",
        None,
    );
    assert_eq!(code, 200, "deleted through the other apiserver");
    cp.start_apiserver();
    let mut relisted = false;
    for _ in 0..600 {
        latest(&mut events, &mut inv);
        if !holds(&inv, "alice-standing") {
            relisted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        relisted,
        "the deleted binding still counts as held after the re-list"
    );

    // A grant comes due while the apiserver is down: it ends as soon as the
    // apiserver is back (measured; the bound is generous, the number is
    // printed and benchmarked).
    let _reaper = reaper(&cp).await;
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]);
    let asked = alice.create(ask("edit", "payments")).await.unwrap();
    let key = RequestKey {
        cluster: "test".into(),
        name: asked.name.clone(),
    };
    let granted = bob
        .approve(
            &key,
            ApproveSpec {
                duration: Duration::from_secs(6),
                namespaces: vec!["payments".into()],
                reason: None,
            },
        )
        .await
        .expect("approve");
    let name = format!("portcullis-{}", asked.name);
    let bindings = Api::<RoleBinding>::namespaced(admin.client.clone(), "payments");
    assert!(bindings.get_opt(&name).await.unwrap().is_some());
    cp.stop_apiserver();
    let end = granted.status.expires_at.unwrap();
    let wait = (end - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(3);
    tokio::time::sleep(wait).await;
    cp.start_apiserver();
    let back = Instant::now();
    wait_for("the overdue grant to end after the outage", 30, || async {
        bindings.get_opt(&name).await.ok().flatten().is_none()
    })
    .await;
    eprintln!(
        "overdue grant ended {:.2} s after the apiserver answered again",
        back.elapsed().as_secs_f64()
    );
    wait_for("alice's access to be gone", 30, || async {
        !can_i(&admin, "alice", "list", "", "pods", Some("payments")).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaper_without_rights_says_so_once_and_backs_off() {
    let cp = ControlPlane::start();
    let admin = install(&cp).await;
    apply(
        &admin,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "portcullis-settings", "namespace": "portcullis-system"},
            "data": {"approvalTimeout": "1s"}}),
    )
    .await;
    let alice = KubeBackend::from_clusters(vec![cp.cluster("alice").await]).reaping(false);
    let stale = alice.create(ask("view", "orders")).await.unwrap();
    // A second request: the same refusal for it is not said again.
    alice.create(ask("view", "payments")).await.unwrap();
    // alice (a requester) runs a reaper anyway: every write is refused.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _wrong = reaper_as(&cp, "alice", Some(tx)).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut notices = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let BackendEvent::Notice { text, .. } = e {
            notices.push(text);
        }
    }
    assert_eq!(notices.len(), 1, "said once: {notices:?}");
    assert!(
        notices[0].contains("the reaper (alice) is refused")
            && notices[0].contains("accessrequests"),
        "{}",
        notices[0]
    );
    let (r, _) = alice
        .get(
            &RequestKey {
                cluster: "test".into(),
                name: stale.name.clone(),
            },
            portcullis::backend::Caller::Requester,
        )
        .await
        .unwrap();
    assert_eq!(
        r.phase(),
        portcullis::domain::Phase::Pending,
        "a requester expires nothing"
    );
}
