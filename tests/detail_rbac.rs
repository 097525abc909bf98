//! The detail pane says what the RBAC diff cannot show by itself: a name
//! that does not restrict what it seems to, a requester in system:masters,
//! other live grants left out of "already held", and RBAC objects the
//! inventory could not read.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::Harness;
use portcullis::backend::{AccessBackend, NewRequest};
use portcullis::domain::rbac::model::{BindingRoleRef, ObjectMeta};
use portcullis::domain::rbac::{ClusterRole, PolicyRule, RoleBinding, SubjectRef};
use portcullis::domain::{Credentials, RoleRef, Subject};

fn request(cluster: &str, requester: Subject, role: &str, namespaces: &[&str]) -> NewRequest {
    NewRequest {
        cluster: cluster.into(),
        requester,
        role: RoleRef::cluster_role(role),
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        duration: Duration::from_secs(900),
        reason: "INC-1 checking the diff".into(),
        ticket: None,
        credentials: Credentials::Identity,
        extends: None,
    }
}

/// The demo with one cluster's inventory changed by `edit`; returns the
/// harness and that cluster's name.
fn harness(edit: impl FnOnce(&mut portcullis::domain::rbac::Inventory)) -> (Harness, String) {
    let mut h = Harness::new(1);
    let cluster = h
        .state
        .inventories
        .keys()
        .next()
        .expect("a demo cluster")
        .clone();
    let mut inv = (*h.state.inventories[&cluster]).clone();
    edit(&mut inv);
    h.state.set_inventory(cluster.clone(), Arc::new(inv));
    (h, cluster)
}

async fn detail_of(h: &mut Harness, req: NewRequest) -> String {
    let created = h.backend.create(req).await.expect("create");
    h.pump();
    h.select(|r| r.name == created.name);
    h.screen(200, 60)
}

fn tricky_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: "tricky".into(),
            ..Default::default()
        },
        rules: vec![
            PolicyRule::resource(&["list"], &[""], &["secrets"]).with_names(&[""]),
            PolicyRule::resource(&["create"], &[""], &["pods"]).with_names(&["web"]),
            PolicyRule::resource(&["list"], &[""], &["configmaps"]).with_names(&["app"]),
        ],
        aggregation_rule: None,
    }
}

#[tokio::test]
async fn names_are_shown_for_what_they_restrict() {
    let (mut h, cluster) = harness(|inv| inv.cluster_roles.push(tricky_role()));
    // Every read as a row (`x`): the named ConfigMap list is one.
    h.press("x").await;
    let screen = detail_of(
        &mut h,
        request(&cluster, Subject::new("zed", &[]), "tricky", &["payments"]),
    )
    .await;
    for expected in [
        "secrets (every object)",
        "pods \"web\" (no effect)",
        "configmaps \"app\"",
        "note: resourceNames [\"\"] matches every request without a name",
        "note: create and deletecollection cannot be restricted by name",
        "note: a named list/watch works only with the field selector",
    ] {
        assert!(screen.contains(expected), "{expected:?} missing:\n{screen}");
    }
    // The nameless Secret list is the worst row; the create that allows
    // nothing is not flagged as a workload write.
    let secrets = screen
        .lines()
        .find(|l| l.contains("secrets (every object)"))
        .unwrap();
    assert!(secrets.contains("CRIT"), "{secrets}");
    let pods = screen.lines().find(|l| l.contains("pods \"web\"")).unwrap();
    assert!(pods.contains("INFO"), "{pods}");
}

#[tokio::test]
async fn a_system_masters_requester_already_holds_everything() {
    let (mut h, cluster) = harness(|_| {});
    let screen = detail_of(
        &mut h,
        request(
            &cluster,
            Subject::new("root", &["system:masters"]),
            "cluster-admin",
            &[],
        ),
    )
    .await;
    assert!(
        screen.contains("in system:masters: the apiserver already allows them everything"),
        "{screen}"
    );
    assert!(screen.contains("nothing new"), "{screen}");
}

#[tokio::test]
async fn other_live_grants_and_skipped_objects_are_said() {
    let (mut h, cluster) = harness(|inv| {
        let mut labels = BTreeMap::new();
        labels.insert(
            "app.kubernetes.io/managed-by".to_string(),
            "portcullis".to_string(),
        );
        inv.role_bindings.push(RoleBinding {
            metadata: ObjectMeta {
                name: "portcullis-zed-1".into(),
                namespace: Some("payments".into()),
                labels,
            },
            subjects: vec![SubjectRef {
                kind: "User".into(),
                name: "zed".into(),
                namespace: None,
            }],
            role_ref: BindingRoleRef {
                kind: "ClusterRole".into(),
                name: "edit".into(),
            },
        });
        inv.skipped
            .push("RoleBinding payments/broken: missing field `roleRef`".into());
        inv.skipped
            .push("ClusterRole odd: invalid type: integer `7`".into());
    });
    let screen = detail_of(
        &mut h,
        request(&cluster, Subject::new("zed", &[]), "view", &["payments"]),
    )
    .await;
    assert!(
        screen.contains("their other live grants are not counted as already held"),
        "{screen}"
    );
    assert!(
        screen.contains("2 RBAC objects could not be read and are not counted"),
        "{screen}"
    );
    assert!(screen.contains("payments/broken"), "{screen}");
    // Without them, neither line.
    let (mut h, cluster) = harness(|_| {});
    let plain = detail_of(
        &mut h,
        request(&cluster, Subject::new("zed", &[]), "view", &["payments"]),
    )
    .await;
    assert!(!plain.contains("other live grants are not counted"));
    assert!(!plain.contains("could not be read"));
    assert!(!plain.contains("system:masters"));
}
