//! The RBAC engine against the apiserver's own answers: many generated
//! Roles, ClusterRoles (with aggregation) and bindings (users, groups,
//! ServiceAccounts, system:authenticated), then random request attributes
//! asked both of `engine::allows` and of a SubjectAccessReview.

mod common;

use std::time::Duration;

use common::cluster::{install, wait_for, ControlPlane};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams};
use portcullis::backend::kube::verify;
use portcullis::domain::rbac::engine::{allows, effective_rules};
use portcullis::domain::rbac::{Permission, Scope, Target};
use portcullis::domain::Subject;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const NAMESPACES: &[&str] = &["payments", "orders", "kube-system"];
const VERBS: &[&str] = &["get", "list", "watch", "create", "update", "delete", "*"];
const GROUPS: &[&str] = &["", "apps", "*", "example.com"];
const RESOURCES: &[&str] = &[
    "pods",
    "pods/log",
    "pods/exec",
    "deployments",
    "deployments/scale",
    "*/scale",
    "secrets",
    "configmaps",
    "*",
    "widgets",
];
const NAMES: &[&str] = &["x", "y"];
const URLS: &[&str] = &["/healthz", "/metrics", "/api/*", "*", "/version"];

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str], max: usize) -> Vec<&'a str> {
    let n = rng.random_range(1..=max);
    let mut out: Vec<&str> = (0..n)
        .map(|_| items[rng.random_range(0..items.len())])
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn rule(rng: &mut ChaCha8Rng, non_resource: bool) -> Value {
    if non_resource {
        return json!({"verbs": pick(rng, &["get", "post", "*"], 2), "nonResourceURLs": pick(rng, URLS, 2)});
    }
    let mut r = json!({"verbs": pick(rng, VERBS, 3), "apiGroups": pick(rng, GROUPS, 2), "resources": pick(rng, RESOURCES, 3)});
    if rng.random_range(0..4) == 0 {
        r["resourceNames"] = json!(pick(rng, NAMES, 2));
    }
    r
}

fn subject(rng: &mut ChaCha8Rng) -> Value {
    match rng.random_range(0..10) {
        0..=3 => {
            json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": format!("u{}", rng.random_range(1..=4))})
        }
        4..=6 => {
            json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": format!("g{}", rng.random_range(1..=3))})
        }
        7 => {
            json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"})
        }
        _ => json!({"kind": "ServiceAccount", "name": "sa1", "namespace": "payments"}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_agrees_with_subject_access_review() {
    let cp = ControlPlane::start();
    let admin = install(&cp).await;
    let c = admin.client.clone();
    let pp = PatchParams::apply("portcullis-test").force();
    let mut rng = ChaCha8Rng::seed_from_u64(20261126);

    // Aggregated parent and its labelled parts, plus plain cluster roles.
    let parent = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "agg-parent"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"test.portcullis.dev/agg": "true"}}]}, "rules": []});
    Api::<ClusterRole>::all(c.clone())
        .patch("agg-parent", &pp, &Patch::Apply(&parent))
        .await
        .unwrap();
    for i in 0..24 {
        let name = format!("cr{i}");
        let rules: Vec<Value> = (0..rng.random_range(1..=3))
            .map(|_| {
                let nr = rng.random_range(0..6) == 0;
                rule(&mut rng, nr)
            })
            .collect();
        let mut obj = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name}, "rules": rules});
        if i % 4 == 0 {
            obj["metadata"]["labels"] = json!({"test.portcullis.dev/agg": "true"});
        }
        Api::<ClusterRole>::all(c.clone())
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .unwrap();
    }
    for i in 0..12 {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let name = format!("role{i}");
        let rules: Vec<Value> = (0..rng.random_range(1..=3))
            .map(|_| rule(&mut rng, false))
            .collect();
        let obj = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules});
        Api::<Role>::namespaced(c.clone(), ns)
            .patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .unwrap();
    }
    for i in 0..30 {
        let subjects: Vec<Value> = (0..rng.random_range(1..=2))
            .map(|_| subject(&mut rng))
            .collect();
        let name = format!("b{i}");
        if i % 3 == 0 {
            let role = if i % 2 == 0 {
                "agg-parent".to_string()
            } else {
                format!("cr{}", rng.random_range(0..24))
            };
            let obj = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}, "subjects": subjects});
            Api::<ClusterRoleBinding>::all(c.clone())
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .unwrap();
        } else {
            let ns = NAMESPACES[rng.random_range(0..NAMESPACES.len())];
            let (kind, role) = if i % 3 == 1 {
                ("ClusterRole", format!("cr{}", rng.random_range(0..24)))
            } else {
                let j =
                    rng.random_range(0..4) * 3 + NAMESPACES.iter().position(|n| *n == ns).unwrap();
                ("Role", format!("role{j}"))
            };
            let obj = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}, "subjects": subjects});
            Api::<RoleBinding>::namespaced(c.clone(), ns)
                .patch(&name, &pp, &Patch::Apply(&obj))
                .await
                .unwrap();
        }
    }
    // The controller fills agg-parent; wait until it settles.
    let roles: Api<ClusterRole> = Api::all(c.clone());
    wait_for("aggregation of agg-parent", 60, || async {
        roles
            .get("agg-parent")
            .await
            .ok()
            .and_then(|r| r.rules)
            .is_some_and(|r| !r.is_empty())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut inv = verify::inventory(&c).await.expect("inventory");
    // Prove aggregation is evaluated by the engine, not read from storage.
    if let Some(p) = inv
        .cluster_roles
        .iter_mut()
        .find(|r| r.metadata.name == "agg-parent")
    {
        p.rules.clear();
    }

    let subjects = [
        (
            Subject::new("u1", &["g1"]),
            vec!["g1", "system:authenticated"],
        ),
        (
            Subject::new("u2", &["g2", "g3"]),
            vec!["g2", "g3", "system:authenticated"],
        ),
        (Subject::new("u3", &[]), vec!["system:authenticated"]),
        (
            Subject::new("u4", &["g1", "g3"]),
            vec!["g1", "g3", "system:authenticated"],
        ),
        (
            Subject::new("system:serviceaccount:payments:sa1", &[]),
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:payments",
                "system:authenticated",
            ],
        ),
    ];
    let (mut asked, mut allowed, mut disagreements) = (0, 0, Vec::new());
    for (who, groups) in &subjects {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let rules = effective_rules(&inv, who);
        for _ in 0..140 {
            let perm = if rng.random_range(0..8) == 0 {
                let url = [
                    "/healthz",
                    "/metrics",
                    "/api/v1/pods",
                    "/apis",
                    "/version",
                    "/logs",
                ][rng.random_range(0..6)];
                Permission {
                    scope: Scope::Cluster,
                    target: Target::NonResource { url: url.into() },
                    verb: ["get", "post"][rng.random_range(0..2)].into(),
                }
            } else {
                let resource = [
                    "pods",
                    "pods/log",
                    "pods/exec",
                    "deployments",
                    "deployments/scale",
                    "secrets",
                    "configmaps",
                    "widgets",
                    "statefulsets/scale",
                ][rng.random_range(0..9)];
                let scope = match rng.random_range(0..4) {
                    3 => Scope::Cluster,
                    i => Scope::Namespace(NAMESPACES[i].into()),
                };
                Permission {
                    scope,
                    target: Target::Resource {
                        api_group: ["", "apps", "example.com", "batch"][rng.random_range(0..4)]
                            .into(),
                        resource: resource.into(),
                        name: [None, Some("x".to_string()), Some("z".to_string())]
                            [rng.random_range(0..3)]
                        .clone(),
                    },
                    verb: [
                        "get", "list", "watch", "create", "update", "delete", "patch",
                    ][rng.random_range(0..7)]
                    .into(),
                }
            };
            let engine = allows(&rules, &perm);
            let apiserver =
                verify::allowed(&c, &verify::review_for(&who.user, groups.clone(), &perm))
                    .await
                    .expect("SubjectAccessReview");
            asked += 1;
            allowed += usize::from(apiserver);
            if engine != apiserver {
                disagreements.push(format!(
                    "{} {:?}: engine {engine}, apiserver {apiserver}",
                    who.user, perm
                ));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {asked} disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    assert!(
        allowed > asked / 10 && allowed < asked * 9 / 10,
        "a meaningful mix: {allowed} of {asked} allowed"
    );
    eprintln!("engine and SubjectAccessReview agree on {asked} requests ({allowed} allowed)");
}
