//! The seeded organisation of the demo: people, clusters, namespaces, custom
//! roles and standing bindings. The built-in ClusterRoles are the real ones a
//! 1.20.2 control plane serves (`assets/k8s-1.20.2/`).

use std::collections::BTreeMap;

use crate::domain::rbac::model::{
    BindingRoleRef, ClusterRole, ClusterRoleBinding, Inventory, ObjectMeta, PolicyRule, Role,
    RoleBinding, SubjectRef,
};
use crate::domain::Subject;

pub const BUILTIN_CLUSTER_ROLES: &str =
    include_str!("../../../assets/k8s-1.20.2/clusterroles.yaml");
pub const BUILTIN_CLUSTER_ROLE_BINDINGS: &str =
    include_str!("../../../assets/k8s-1.20.2/clusterrolebindings.yaml");

/// The approver at the demo console.
pub const APPROVER: &str = "dana";

pub struct Person {
    pub user: &'static str,
    pub groups: &'static [&'static str],
    /// Namespaces this person usually works in.
    pub home: &'static [&'static str],
}

impl Person {
    pub fn subject(&self) -> Subject {
        Subject::new(self.user, self.groups)
    }
}

pub const PEOPLE: &[Person] = &[
    Person {
        user: "dana",
        groups: &["sre", "oncall"],
        home: &["monitoring", "ingress-nginx", "kube-system"],
    },
    Person {
        user: "alice",
        groups: &["dev", "payments-team"],
        home: &["payments", "checkout"],
    },
    Person {
        user: "bob",
        groups: &["dev", "orders-team"],
        home: &["orders", "inventory"],
    },
    Person {
        user: "carol",
        groups: &["data", "data-team"],
        home: &["data-pipeline", "search"],
    },
    Person {
        user: "erin",
        groups: &["sre", "oncall"],
        home: &["ingress-nginx", "monitoring", "kube-system"],
    },
    Person {
        user: "frank",
        groups: &["vendor-acme"],
        home: &["notifications"],
    },
    Person {
        user: "grace",
        groups: &["security"],
        home: &["identity", "payments", "kube-system"],
    },
    Person {
        user: "heidi",
        groups: &["dev", "search-team"],
        home: &["search", "inventory"],
    },
    Person {
        user: "ivan",
        groups: &["dev", "interns"],
        home: &["checkout", "orders"],
    },
    Person {
        user: "judy",
        groups: &["dev", "identity-team"],
        home: &["identity", "notifications"],
    },
];

pub const CLUSTERS: &[&str] = &["prod-eu-west", "staging-eu-west", "dev-sandbox"];

pub const NAMESPACES: &[&str] = &[
    "payments",
    "checkout",
    "orders",
    "inventory",
    "search",
    "identity",
    "notifications",
    "data-pipeline",
    "monitoring",
    "ingress-nginx",
    "kube-system",
    "default",
];

fn meta(name: &str, ns: Option<&str>, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: name.into(),
        namespace: ns.map(Into::into),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn group(name: &str) -> SubjectRef {
    SubjectRef {
        kind: "Group".into(),
        name: name.into(),
        namespace: None,
    }
}

fn user(name: &str) -> SubjectRef {
    SubjectRef {
        kind: "User".into(),
        name: name.into(),
        namespace: None,
    }
}

fn crb(name: &str, role: &str, subjects: Vec<SubjectRef>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(name, None, &[]),
        subjects,
        role_ref: BindingRoleRef {
            kind: "ClusterRole".into(),
            name: role.into(),
        },
    }
}

fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: Vec<SubjectRef>) -> RoleBinding {
    RoleBinding {
        metadata: meta(name, Some(ns), &[]),
        subjects,
        role_ref: BindingRoleRef {
            kind: kind.into(),
            name: role.into(),
        },
    }
}

/// Custom ClusterRoles an organisation adds beside the built-in ones.
fn custom_cluster_roles() -> Vec<ClusterRole> {
    let r = PolicyRule::resource;
    vec![
        ClusterRole {
            metadata: meta("debugger", None, &[]),
            rules: vec![
                r(
                    &["get", "list", "watch"],
                    &[""],
                    &["pods", "pods/log", "events"],
                ),
                r(
                    &["create", "get"],
                    &[""],
                    &["pods/exec", "pods/portforward", "pods/attach"],
                ),
            ],
            aggregation_rule: None,
        },
        ClusterRole {
            metadata: meta("secret-reader", None, &[]),
            rules: vec![r(&["get", "list", "watch"], &[""], &["secrets"])],
            aggregation_rule: None,
        },
        ClusterRole {
            metadata: meta("node-inspector", None, &[]),
            rules: vec![
                r(&["get", "list", "watch"], &[""], &["nodes", "nodes/status"]),
                r(&["get"], &[""], &["nodes/proxy", "nodes/stats"]),
            ],
            aggregation_rule: None,
        },
        ClusterRole {
            metadata: meta("webhook-admin", None, &[]),
            rules: vec![r(
                &["*"],
                &["admissionregistration.k8s.io"],
                &[
                    "mutatingwebhookconfigurations",
                    "validatingwebhookconfigurations",
                ],
            )],
            aggregation_rule: None,
        },
        // Aggregated like the built-ins: grows when a CRD installs a part.
        ClusterRole {
            metadata: meta("platform-operator", None, &[]),
            rules: Vec::new(),
            aggregation_rule: Some(crate::domain::rbac::model::AggregationRule {
                cluster_role_selectors: vec![crate::domain::rbac::model::LabelSelector {
                    match_labels: [(
                        "portcullis.dev/aggregate-to-platform-operator".to_string(),
                        "true".to_string(),
                    )]
                    .into_iter()
                    .collect(),
                    match_expressions: Vec::new(),
                }],
            }),
        },
        ClusterRole {
            metadata: meta(
                "platform-operator-certs",
                None,
                &[("portcullis.dev/aggregate-to-platform-operator", "true")],
            ),
            rules: vec![r(
                &[
                    "get", "list", "watch", "create", "update", "patch", "delete",
                ],
                &["cert-manager.io"],
                &["certificates", "issuers"],
            )],
            aggregation_rule: None,
        },
        ClusterRole {
            metadata: meta(
                "platform-operator-workloads",
                None,
                &[("portcullis.dev/aggregate-to-platform-operator", "true")],
            ),
            rules: vec![
                r(
                    &["get", "list", "watch", "update", "patch"],
                    &["apps"],
                    &["deployments", "statefulsets", "daemonsets"],
                ),
                r(
                    &["update"],
                    &["apps"],
                    &["deployments/scale", "statefulsets/scale"],
                ),
                r(&["create"], &[""], &["serviceaccounts/token"]),
            ],
            aggregation_rule: None,
        },
    ]
}

fn custom_roles() -> Vec<Role> {
    let r = PolicyRule::resource;
    vec![
        Role {
            metadata: meta("deployer", Some("payments"), &[]),
            rules: vec![
                r(
                    &["get", "list", "watch", "update", "patch"],
                    &["apps"],
                    &["deployments", "replicasets"],
                ),
                r(&["update"], &["apps"], &["deployments/scale"]),
            ],
        },
        Role {
            metadata: meta("config-editor", Some("checkout"), &[]),
            rules: vec![r(&["get", "update", "patch"], &[""], &["configmaps"])
                .with_names(&["checkout-flags", "checkout-limits"])],
        },
        Role {
            metadata: meta("log-reader", Some("orders"), &[]),
            rules: vec![r(&["get", "list"], &[""], &["pods", "pods/log"])],
        },
    ]
}

/// The RBAC of one demo cluster: built-ins, custom roles, standing bindings.
pub fn inventory(cluster: &str) -> Inventory {
    // The embedded YAML is part of the binary and covered by tests; an
    // empty inventory is the fail-safe (every grant then shows as an error).
    let mut inv = Inventory::from_yaml_lists(BUILTIN_CLUSTER_ROLES, BUILTIN_CLUSTER_ROLE_BINDINGS)
        .unwrap_or_default();
    inv.cluster_roles.extend(custom_cluster_roles());
    inv.roles.extend(custom_roles());
    // The demo's namespaces are known, as a watched cluster's are.
    inv.namespaces = Some(NAMESPACES.iter().map(|n| n.to_string()).collect());
    inv.cluster_role_bindings.extend([
        crb("oncall-view", "view", vec![group("oncall")]),
        crb("security-view", "view", vec![group("security")]),
        crb("sre-node-inspector", "node-inspector", vec![group("sre")]),
    ]);
    inv.role_bindings.extend([
        rb(
            "payments",
            "payments-team-view",
            "ClusterRole",
            "view",
            vec![group("payments-team")],
        ),
        rb(
            "checkout",
            "payments-team-view",
            "ClusterRole",
            "view",
            vec![group("payments-team")],
        ),
        rb(
            "orders",
            "orders-team-view",
            "ClusterRole",
            "view",
            vec![group("orders-team")],
        ),
        rb(
            "orders",
            "orders-logs",
            "Role",
            "log-reader",
            vec![group("orders-team"), user("ivan")],
        ),
        rb(
            "inventory",
            "orders-team-view",
            "ClusterRole",
            "view",
            vec![group("orders-team")],
        ),
        rb(
            "data-pipeline",
            "data-team-view",
            "ClusterRole",
            "view",
            vec![group("data-team")],
        ),
        rb(
            "search",
            "search-team-view",
            "ClusterRole",
            "view",
            vec![group("search-team")],
        ),
        rb(
            "identity",
            "identity-team-view",
            "ClusterRole",
            "view",
            vec![group("identity-team")],
        ),
        rb(
            "notifications",
            "acme-view",
            "ClusterRole",
            "view",
            vec![group("vendor-acme")],
        ),
    ]);
    if !cluster.starts_with("prod") {
        inv.cluster_role_bindings
            .push(crb("dev-view", "view", vec![group("dev"), group("data")]));
        inv.role_bindings.push(rb(
            "data-pipeline",
            "data-team-edit",
            "ClusterRole",
            "edit",
            vec![group("data-team")],
        ));
    }
    if cluster.starts_with("dev") {
        inv.cluster_role_bindings
            .push(crb("dev-edit", "edit", vec![group("dev")]));
    }
    inv
}

/// Reasons requesters give, with a ticket number slot.
pub const REASONS: &[&str] = &[
    "{t}: payments stuck in PENDING, need to inspect the worker pods",
    "{t}: roll back the bad deploy from this morning",
    "{t}: rotate the leaked API key and restart the consumers",
    "{t}: debug 502s from the ingress, need logs and port-forward",
    "{t}: scale up before the marketing campaign",
    "{t}: database migration stuck, need exec into the job pod",
    "{t}: customer data export for a GDPR request",
    "{t}: certificate expired, renew and restart",
    "{t}: investigate OOMKilled pods after the release",
    "{t}: patch the feature flag configmap for the hotfix",
    "{t}: on-call handover, checking the alert noise",
    "{t}: vendor integration test against staging",
];
