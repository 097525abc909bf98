//! The RBAC engine on the real built-in roles of a 1.20.2 control plane.

use std::collections::{BTreeMap, BTreeSet};

use portcullis::domain::rbac::engine::{allows, analyze, effective_rules, GrantRequest};
use portcullis::domain::rbac::model::{
    BindingRoleRef, ClusterRoleBinding, Inventory, NameReach, ObjectMeta, Permission, PolicyRule,
    Role, RoleBinding, Scope, SubjectRef, Target,
};
use portcullis::domain::rbac::Analysis;
use portcullis::domain::risk::{RiskFlag, Severity};
use portcullis::domain::{RoleRef, Subject};

fn fixtures() -> Inventory {
    Inventory::from_yaml_lists(
        include_str!("../assets/k8s-1.20.2/clusterroles.yaml"),
        include_str!("../assets/k8s-1.20.2/clusterrolebindings.yaml"),
    )
    .expect("fixtures parse")
}

fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: name.into(),
        namespace: ns.map(Into::into),
        labels: BTreeMap::new(),
    }
}

fn subj(kind: &str, name: &str, ns: Option<&str>) -> SubjectRef {
    SubjectRef {
        kind: kind.into(),
        name: name.into(),
        namespace: ns.map(Into::into),
    }
}

fn rb(ns: &str, name: &str, role_kind: &str, role: &str, subjects: Vec<SubjectRef>) -> RoleBinding {
    RoleBinding {
        metadata: meta(name, Some(ns)),
        subjects,
        role_ref: BindingRoleRef {
            kind: role_kind.into(),
            name: role.into(),
        },
    }
}

fn crb(name: &str, role: &str, subjects: Vec<SubjectRef>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(name, None),
        subjects,
        role_ref: BindingRoleRef {
            kind: "ClusterRole".into(),
            name: role.into(),
        },
    }
}

fn ns_perm(ns: &str, group: &str, res: &str, verb: &str) -> Permission {
    Permission::resource(Scope::Namespace(ns.into()), group, res, verb)
}

fn named(ns: &str, res: &str, name: &str, verb: &str) -> Permission {
    Permission {
        scope: Scope::Namespace(ns.into()),
        target: Target::Resource {
            api_group: "".into(),
            resource: res.into(),
            name: Some(name.into()),
        },
        verb: verb.into(),
    }
}

fn alice() -> Subject {
    Subject::new("alice", &["dev"])
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn aggregation_evaluated_here_matches_what_the_controller_stored() {
    let inv = fixtures();
    for name in ["admin", "edit", "view"] {
        let stored: BTreeSet<PolicyRule> = inv
            .cluster_role(name)
            .unwrap()
            .rules
            .iter()
            .cloned()
            .collect();
        let (computed, aggregated) = inv.cluster_role_rules(name).unwrap();
        assert!(aggregated, "{name} is aggregated");
        assert_eq!(
            computed.into_iter().collect::<BTreeSet<_>>(),
            stored,
            "{name}"
        );
    }
    let (_, agg) = inv.cluster_role_rules("cluster-admin").unwrap();
    assert!(!agg);
}

#[test]
fn aggregation_picks_up_a_new_crd_role() {
    let mut inv = fixtures();
    let mut labels = BTreeMap::new();
    labels.insert(
        "rbac.authorization.k8s.io/aggregate-to-edit".to_string(),
        "true".to_string(),
    );
    inv.cluster_roles
        .push(portcullis::domain::rbac::ClusterRole {
            metadata: ObjectMeta {
                name: "widgets-edit".into(),
                namespace: None,
                labels,
            },
            rules: vec![PolicyRule::resource(
                &["create"],
                &["example.com"],
                &["widgets"],
            )],
            aggregation_rule: None,
        });
    let ns = strings(&["payments"]);
    let a = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::cluster_role("admin"),
            namespaces: &ns,
        },
    )
    .unwrap();
    assert!(a.aggregated);
    // admin aggregates edit-labelled roles through edit's own aggregate-to-admin label.
    assert!(a
        .granted
        .contains(&ns_perm("payments", "example.com", "widgets", "create")));
}

#[test]
fn edit_in_one_namespace_is_confined_to_it() {
    let inv = fixtures();
    let ns = strings(&["payments"]);
    let a = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::cluster_role("edit"),
            namespaces: &ns,
        },
    )
    .unwrap();
    assert!(a
        .granted
        .iter()
        .all(|p| p.scope == Scope::Namespace("payments".into())));
    assert!(a
        .granted
        .iter()
        .all(|p| matches!(p.target, Target::Resource { .. })));
    assert!(a
        .granted
        .contains(&ns_perm("payments", "", "secrets", "get")));
    assert!(a
        .granted
        .contains(&ns_perm("payments", "", "pods/exec", "create")));
    assert!(a
        .granted
        .contains(&ns_perm("payments", "apps", "deployments", "patch")));
    assert!(!a.granted.contains(&ns_perm(
        "payments",
        "rbac.authorization.k8s.io",
        "roles",
        "create"
    )));
    assert_eq!(a.worst, Severity::Critical);
    let flags: BTreeSet<_> = a.new.iter().map(|n| format!("{:?}", n.risk.flag)).collect();
    for f in ["SecretsRead", "PodExec", "WorkloadWrite"] {
        assert!(flags.contains(f), "{f} in {flags:?}");
    }
}

#[test]
fn view_never_reads_secrets() {
    let inv = fixtures();
    let ns = strings(&["payments"]);
    let a = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::cluster_role("view"),
            namespaces: &ns,
        },
    )
    .unwrap();
    assert!(!a.new.iter().any(|n| n.risk.flag == RiskFlag::SecretsRead));
    assert!(
        a.new.iter().all(|n| n.risk.severity <= Severity::Info),
        "view adds only reads"
    );
}

#[test]
fn cluster_admin_cluster_wide_keeps_wildcards_and_urls() {
    let inv = fixtures();
    let a = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::cluster_role("cluster-admin"),
            namespaces: &[],
        },
    )
    .unwrap();
    assert_eq!(a.granted.len(), 2, "{:?}", a.granted);
    assert!(a
        .granted
        .contains(&Permission::resource(Scope::Cluster, "*", "*", "*")));
    assert!(a.granted.contains(&Permission {
        scope: Scope::Cluster,
        target: Target::NonResource { url: "*".into() },
        verb: "*".into()
    }));
    assert_eq!(a.new[0].risk.flag, RiskFlag::FullWildcard);
    assert_eq!(a.granted.len() - a.new.len(), a.already.len());
}

#[test]
fn cluster_admin_in_a_namespace_drops_non_resource_urls() {
    let inv = fixtures();
    let ns = strings(&["orders"]);
    let a = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::cluster_role("cluster-admin"),
            namespaces: &ns,
        },
    )
    .unwrap();
    assert_eq!(a.granted, vec![ns_perm("orders", "*", "*", "*")]);
}

#[test]
fn system_authenticated_gives_discovery_to_everyone() {
    let inv = fixtures();
    let rules = effective_rules(&inv, &Subject::new("nobody", &[]));
    let ssar = Permission::resource(
        Scope::Cluster,
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "create",
    );
    assert!(allows(&rules, &ssar));
    let version = Permission {
        scope: Scope::Cluster,
        target: Target::NonResource {
            url: "/version".into(),
        },
        verb: "get".into(),
    };
    assert!(allows(&rules, &version));
    let apis = Permission {
        scope: Scope::Cluster,
        target: Target::NonResource {
            url: "/apis/apps/v1".into(),
        },
        verb: "get".into(),
    };
    assert!(allows(&rules, &apis), "/apis/* is a prefix match");
    assert!(!allows(&rules, &ns_perm("default", "", "pods", "get")));
}

#[test]
fn standing_cluster_view_is_counted_as_already_held() {
    let mut inv = fixtures();
    inv.cluster_role_bindings
        .push(crb("dev-view", "view", vec![subj("Group", "dev", None)]));
    let ns = strings(&["payments"]);
    let a = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::cluster_role("edit"),
            namespaces: &ns,
        },
    )
    .unwrap();
    assert!(a
        .already
        .iter()
        .any(|(p, via)| *p == ns_perm("payments", "", "pods", "get") && via.contains("dev-view")));
    assert!(!a
        .new
        .iter()
        .any(|n| n.permission == ns_perm("payments", "", "pods", "get")));
    assert!(a
        .new
        .iter()
        .any(|n| n.permission == ns_perm("payments", "", "pods", "create")));
    assert!(a
        .standing
        .iter()
        .any(|s| s.binding == "dev-view" && s.through == "group dev" && !s.system));
    assert!(a
        .standing
        .iter()
        .any(|s| s.system && s.through == "group system:authenticated"));
}

#[test]
fn role_binding_to_cluster_role_does_not_leak_to_other_namespaces() {
    let mut inv = fixtures();
    inv.role_bindings.push(rb(
        "orders",
        "alice-edit",
        "ClusterRole",
        "edit",
        vec![subj("User", "alice", None)],
    ));
    let rules = effective_rules(&inv, &alice());
    assert!(allows(&rules, &ns_perm("orders", "", "pods", "create")));
    assert!(!allows(&rules, &ns_perm("payments", "", "pods", "create")));
    assert!(!allows(
        &rules,
        &Permission::resource(Scope::Cluster, "", "pods", "create")
    ));
}

#[test]
fn subresources_and_star_subresource() {
    let mut inv = Inventory::default();
    inv.roles.push(Role {
        metadata: meta("r", Some("a")),
        rules: vec![
            PolicyRule::resource(&["get"], &[""], &["pods"]),
            PolicyRule::resource(&["update"], &["apps"], &["*/scale"]),
        ],
    });
    inv.role_bindings
        .push(rb("a", "b", "Role", "r", vec![subj("User", "alice", None)]));
    let rules = effective_rules(&inv, &alice());
    assert!(allows(&rules, &ns_perm("a", "", "pods", "get")));
    assert!(
        !allows(&rules, &ns_perm("a", "", "pods/log", "get")),
        "pods does not cover pods/log"
    );
    assert!(allows(
        &rules,
        &ns_perm("a", "apps", "deployments/scale", "update")
    ));
    assert!(allows(&rules, &ns_perm("a", "apps", "*/scale", "update")));
    assert!(!allows(
        &rules,
        &ns_perm("a", "apps", "deployments", "update")
    ));
    assert!(!allows(&rules, &ns_perm("a", "", "pods", "list")));
}

#[test]
fn resource_names_only_cover_named_objects() {
    let mut inv = Inventory::default();
    inv.roles.push(Role {
        metadata: meta("cm", Some("a")),
        rules: vec![
            PolicyRule::resource(&["get", "update"], &[""], &["configmaps"])
                .with_names(&["app-config"]),
        ],
    });
    inv.role_bindings.push(rb(
        "a",
        "b",
        "Role",
        "cm",
        vec![subj("User", "alice", None)],
    ));
    let rules = effective_rules(&inv, &alice());
    assert!(allows(
        &rules,
        &named("a", "configmaps", "app-config", "get")
    ));
    assert!(!allows(&rules, &named("a", "configmaps", "other", "get")));
    assert!(
        !allows(&rules, &ns_perm("a", "", "configmaps", "get")),
        "names never cover 'any name'"
    );

    // A request for the whole resource is new even though one name is held.
    inv.roles.push(Role {
        metadata: meta("all-cm", Some("a")),
        rules: vec![PolicyRule::resource(&["get"], &[""], &["configmaps"])],
    });
    let ns = strings(&["a"]);
    let an = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::role("all-cm"),
            namespaces: &ns,
        },
    )
    .unwrap();
    assert_eq!(an.new.len(), 1);
    assert!(an.already.is_empty());
}

#[test]
fn service_account_subjects_match_their_user_name() {
    let mut inv = fixtures();
    inv.role_bindings.push(rb(
        "ci",
        "deployer",
        "ClusterRole",
        "edit",
        vec![subj("ServiceAccount", "builder", None)],
    ));
    inv.cluster_role_bindings.push(crb(
        "all-sa",
        "view",
        vec![subj("Group", "system:serviceaccounts:ci", None)],
    ));
    let sa = Subject::new("system:serviceaccount:ci:builder", &[]);
    let rules = effective_rules(&inv, &sa);
    assert!(
        allows(&rules, &ns_perm("ci", "apps", "deployments", "create")),
        "SA subject defaults to binding namespace"
    );
    assert!(
        allows(&rules, &ns_perm("other", "", "pods", "list")),
        "implicit system:serviceaccounts:ci group"
    );
    let other_sa = Subject::new("system:serviceaccount:prod:builder", &[]);
    assert!(!allows(
        &effective_rules(&inv, &other_sa),
        &ns_perm("ci", "apps", "deployments", "create")
    ));
}

#[test]
fn wildcard_verbs_groups_resources() {
    let mut inv = Inventory::default();
    inv.roles.push(Role {
        metadata: meta("w", Some("a")),
        rules: vec![
            PolicyRule::resource(&["*"], &["apps"], &["deployments"]),
            PolicyRule::resource(&["get"], &["*"], &["*"]),
        ],
    });
    inv.role_bindings
        .push(rb("a", "b", "Role", "w", vec![subj("Group", "dev", None)]));
    let rules = effective_rules(&inv, &alice());
    assert!(allows(
        &rules,
        &ns_perm("a", "apps", "deployments", "delete")
    ));
    assert!(allows(&rules, &ns_perm("a", "apps", "deployments", "*")));
    assert!(!allows(&rules, &ns_perm("a", "", "deployments", "delete")));
    assert!(allows(
        &rules,
        &ns_perm("a", "example.com", "widgets/status", "get")
    ));
    assert!(!allows(
        &rules,
        &ns_perm("a", "example.com", "widgets", "*")
    ));
}

#[test]
fn unknown_roles_are_errors() {
    let inv = fixtures();
    let ns = strings(&["a"]);
    let e = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::cluster_role("nope"),
            namespaces: &ns,
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ClusterRole 'nope' does not exist on this cluster"
    );
    let e = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::role("nope"),
            namespaces: &ns,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("namespace 'a'"));
}

#[test]
fn kube_system_grants_are_flagged() {
    let inv = fixtures();
    let ns = strings(&["kube-system"]);
    let a = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::cluster_role("view"),
            namespaces: &ns,
        },
    )
    .unwrap();
    assert!(a.new.iter().all(|n| n.risk.flag == RiskFlag::KubeSystem));
    assert_eq!(a.worst, Severity::High);
}

#[test]
fn another_live_grant_is_not_counted_as_already_held() {
    let mut inv = fixtures();
    let mut grant = rb(
        "payments",
        "portcullis-alice-payments-1",
        "ClusterRole",
        "edit",
        vec![subj("User", "alice", None)],
    );
    grant
        .metadata
        .labels
        .insert("app.kubernetes.io/managed-by".into(), "portcullis".into());
    inv.role_bindings.push(grant);
    let ns = strings(&["payments"]);
    let a = analyze(
        &inv,
        GrantRequest {
            subject: &alice(),
            role: &RoleRef::cluster_role("view"),
            namespaces: &ns,
        },
    )
    .unwrap();
    assert!(
        a.already.is_empty(),
        "a grant that will end is not standing access"
    );
    assert!(!a.new.is_empty());
    assert!(a
        .standing
        .iter()
        .any(|s| s.live_grant && s.binding == "portcullis-alice-payments-1"));
}

#[test]
fn resource_labels_read_like_kubectl() {
    assert_eq!(
        ns_perm("a", "apps", "deployments/scale", "update").resource_label(),
        "deployments.apps/scale"
    );
    assert_eq!(
        ns_perm("a", "", "pods/exec", "create").resource_label(),
        "pods/exec"
    );
    assert_eq!(
        ns_perm("a", "batch", "cronjobs", "get").resource_label(),
        "cronjobs.batch"
    );
}

fn analysis(inv: &Inventory, who: &Subject, role: RoleRef, ns: &[&str]) -> Analysis {
    let ns = strings(ns);
    analyze(
        inv,
        GrantRequest {
            subject: who,
            role: &role,
            namespaces: &ns,
        },
    )
    .unwrap()
}

fn with_role(inv: &mut Inventory, name: &str, rules: Vec<PolicyRule>) {
    inv.cluster_roles
        .push(portcullis::domain::rbac::ClusterRole {
            metadata: meta(name, None),
            rules,
            aggregation_rule: None,
        });
}

#[test]
fn anonymous_gets_public_info_but_not_what_authenticated_users_get() {
    let inv = fixtures();
    let anonymous = effective_rules(&inv, &Subject::new("system:anonymous", &[]));
    let get = |url: &str| Permission::non_resource(url, "get");
    assert!(allows(&anonymous, &get("/healthz")), "public-info-viewer");
    assert!(
        !allows(&anonymous, &get("/apis")),
        "system:discovery is for system:authenticated only"
    );
    let ssar = Permission::resource(
        Scope::Cluster,
        "authorization.k8s.io",
        "selfsubjectaccessreviews",
        "create",
    );
    assert!(!allows(&anonymous, &ssar));
    // A user who carries system:unauthenticated is not authenticated either.
    let unauth = effective_rules(&inv, &Subject::new("bob", &["system:unauthenticated"]));
    assert!(!allows(&unauth, &ssar) && allows(&unauth, &get("/version")));
    assert!(allows(&effective_rules(&inv, &alice()), &ssar));
}

#[test]
fn malformed_service_account_names_are_plain_users() {
    let mut inv = fixtures();
    inv.cluster_role_bindings.push(crb(
        "ci-view",
        "view",
        vec![subj("Group", "system:serviceaccounts:ci", None)],
    ));
    let list = ns_perm("ci", "", "pods", "list");
    let real = Subject::new("system:serviceaccount:ci:builder", &[]);
    assert!(allows(&effective_rules(&inv, &real), &list));
    for fake in [
        "system:serviceaccount:ci:builder:extra",
        "system:serviceaccount:CI:builder",
    ] {
        let rules = effective_rules(&inv, &Subject::new(fake, &[]));
        assert!(
            !allows(&rules, &list),
            "{fake} gets no service-account groups"
        );
        assert!(
            allows(&rules, &Permission::non_resource("/apis", "get")),
            "{fake} is still an authenticated user"
        );
    }
}

#[test]
fn system_masters_already_holds_everything_without_any_binding() {
    let mut inv = fixtures();
    inv.cluster_role_bindings
        .retain(|b| b.metadata.name != "cluster-admin");
    let root = Subject::new("root", &["system:masters"]);
    let a = analysis(&inv, &root, RoleRef::cluster_role("cluster-admin"), &[]);
    assert!(a.privileged);
    assert!(a.new.is_empty(), "{:?}", a.new);
    assert_eq!(a.already.len(), a.granted.len());
    assert_eq!(a.worst, Severity::Info);
    assert!(a
        .already
        .iter()
        .all(|(_, via)| via.contains("system:masters")));
    let plain = analysis(&inv, &alice(), RoleRef::cluster_role("cluster-admin"), &[]);
    assert!(!plain.privileged && !plain.new.is_empty());
}

#[test]
fn empty_resource_name_grant_is_every_secret_listed() {
    let mut inv = fixtures();
    with_role(
        &mut inv,
        "list-nameless-secrets",
        vec![PolicyRule::resource(&["list", "watch"], &[""], &["secrets"]).with_names(&[""])],
    );
    let a = analysis(
        &inv,
        &alice(),
        RoleRef::cluster_role("list-nameless-secrets"),
        &["payments"],
    );
    assert_eq!(a.new.len(), 2);
    for n in &a.new {
        assert_eq!(n.permission.name_reach(), NameReach::EveryObject);
        assert_eq!(n.risk.flag, RiskFlag::SecretsRead);
        assert_eq!(n.risk.severity, Severity::Critical);
    }
    let plain_list = named("payments", "secrets", "", "list");
    assert!(!allows(&effective_rules(&inv, &alice()), &plain_list));
    // Held as "list every secret": the nameless grant is already held.
    inv.role_bindings.push(rb(
        "payments",
        "alice-edit",
        "ClusterRole",
        "edit",
        vec![subj("User", "alice", None)],
    ));
    let a = analysis(
        &inv,
        &alice(),
        RoleRef::cluster_role("list-nameless-secrets"),
        &["payments"],
    );
    assert!(a.new.is_empty() && a.already.len() == 2);
    assert!(allows(&effective_rules(&inv, &alice()), &plain_list));
}

#[test]
fn nameless_grant_does_not_hold_every_name() {
    // Holding list with resourceNames [""] (every plain list) does not cover
    // a grant of list on any name: the field-selected list is new.
    let mut inv = fixtures();
    with_role(
        &mut inv,
        "nameless",
        vec![PolicyRule::resource(&["list"], &[""], &["configmaps"]).with_names(&[""])],
    );
    with_role(
        &mut inv,
        "any",
        vec![PolicyRule::resource(&["list"], &[""], &["configmaps"])],
    );
    inv.role_bindings.push(rb(
        "a",
        "b",
        "ClusterRole",
        "nameless",
        vec![subj("User", "alice", None)],
    ));
    let rules = effective_rules(&inv, &alice());
    assert!(allows(&rules, &named("a", "configmaps", "", "list")));
    assert!(!allows(&rules, &named("a", "configmaps", "cm1", "list")));
    let a = analysis(&inv, &alice(), RoleRef::cluster_role("any"), &["a"]);
    assert_eq!(a.new.len(), 1);
}

#[test]
fn name_on_create_or_deletecollection_allows_nothing() {
    let mut inv = fixtures();
    with_role(
        &mut inv,
        "named-create",
        vec![
            PolicyRule::resource(&["create", "deletecollection"], &[""], &["pods"])
                .with_names(&["web"]),
            PolicyRule::resource(&["create"], &[""], &["pods/exec"]).with_names(&["web"]),
        ],
    );
    let a = analysis(
        &inv,
        &alice(),
        RoleRef::cluster_role("named-create"),
        &["payments"],
    );
    let find = |res: &str, verb: &str| {
        a.new
            .iter()
            .find(|n| n.permission.resource_label() == res && n.permission.verb == verb)
            .unwrap()
    };
    for verb in ["create", "deletecollection"] {
        let n = find("pods", verb);
        assert_eq!(n.permission.name_reach(), NameReach::NoRequest);
        assert_eq!(n.risk.flag, RiskFlag::NoRequest);
        assert_eq!(n.risk.severity, Severity::Info);
    }
    // exec names the pod in the URL: a real, dangerous restriction.
    let exec = find("pods/exec", "create");
    assert_eq!(exec.permission.name_reach(), NameReach::Object("web"));
    assert_eq!(exec.risk.flag, RiskFlag::PodExec);
    assert_eq!(a.worst, Severity::High);
}

#[test]
fn multi_star_urls_are_shown_and_flagged_as_what_they_allow() {
    let mut inv = fixtures();
    with_role(
        &mut inv,
        "all-paths",
        vec![PolicyRule::non_resource(&["get"], &["/**", "/logs**"])],
    );
    let a = analysis(&inv, &alice(), RoleRef::cluster_role("all-paths"), &[]);
    let urls: Vec<String> = a.granted.iter().map(|p| p.resource_label()).collect();
    assert_eq!(urls, ["/*", "/logs*"]);
    let all = a
        .new
        .iter()
        .find(|n| n.permission.resource_label() == "/*")
        .unwrap();
    assert_eq!(all.risk.flag, RiskFlag::Wildcard);
    // /logs* is new (not public), and covers what the apiserver would allow.
    assert!(a
        .new
        .iter()
        .any(|n| n.permission.resource_label() == "/logs*"));
    let rules = effective_rules(&inv, &alice());
    // /version is public: that part of "/*" is held, the rest is not.
    assert!(allows(&rules, &Permission::non_resource("/version", "get")));
    assert!(!allows(&rules, &Permission::non_resource("/logs/x", "get")));
}

#[test]
fn the_real_fixtures_read_without_skipping_any_object() {
    assert!(
        fixtures().skipped.is_empty(),
        "the real 1.20.2 objects all read"
    );
}
