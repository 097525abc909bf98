//! Risk of one permission tuple: a flag, a severity and one line of why.
//!
//! Severity scale, as approvers read it:
//! - critical: can take over the scope or the cluster (read secrets, bind /
//!   escalate / impersonate, nodes/proxy, webhook configurations, full `*`);
//! - high: runs code or mints credentials (exec / attach / portforward,
//!   create or change pods and pod controllers, serviceaccounts/token,
//!   partial wildcards, anything in kube-system);
//! - medium: other writes, and anything cluster-scoped;
//! - info: reads.

use std::fmt;

use super::rbac::model::{split_subresource, Permission, Scope, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    pub fn badge(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Medium => "MED",
            Severity::High => "HIGH",
            Severity::Critical => "CRIT",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "info" | "i" | "low" => Some(Severity::Info),
            "medium" | "med" | "m" => Some(Severity::Medium),
            "high" | "h" => Some(Severity::High),
            "critical" | "crit" | "c" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RiskFlag {
    SecretsRead,
    PodExec,
    WorkloadWrite,
    Escalation,
    FullWildcard,
    Wildcard,
    NodeProxy,
    TokenCreate,
    Webhooks,
    KubeSystem,
    ClusterScoped,
    Write,
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Risk {
    pub flag: RiskFlag,
    pub severity: Severity,
    pub why: &'static str,
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const WORKLOADS: &[&str] = &[
    "pods",
    "deployments",
    "replicasets",
    "statefulsets",
    "daemonsets",
    "jobs",
    "cronjobs",
    "replicationcontrollers",
];

fn verb_in(verb: &str, set: &[&str]) -> bool {
    verb == "*" || set.contains(&verb)
}

/// Every flag that applies to `perm`; the first is the worst.
pub fn flags(perm: &Permission) -> Vec<Risk> {
    let mut out = Vec::new();
    let mut add = |flag, severity, why| {
        out.push(Risk {
            flag,
            severity,
            why,
        })
    };
    let verb = perm.verb.as_str();
    match &perm.target {
        Target::Resource {
            api_group,
            resource,
            ..
        } => {
            let (base, sub) = split_subresource(resource);
            let res_is = |name: &str| base == name || base == "*";
            let core = api_group.is_empty() || api_group == "*";
            let all_wild = verb == "*" && resource == "*" && api_group == "*";
            if all_wild {
                add(
                    RiskFlag::FullWildcard,
                    Severity::Critical,
                    "full control: every verb on every resource",
                );
            } else if verb == "*" || resource == "*" || api_group == "*" || base == "*" {
                add(
                    RiskFlag::Wildcard,
                    Severity::High,
                    "wildcard: covers verbs and resources added later",
                );
            }
            if core && res_is("secrets") && sub.is_none() && verb_in(verb, READ) {
                add(
                    RiskFlag::SecretsRead,
                    Severity::Critical,
                    "reads Secret values: passwords, keys, tokens",
                );
            }
            if (api_group == "rbac.authorization.k8s.io" || api_group == "*")
                && (res_is("roles") || res_is("clusterroles"))
                && (verb == "bind" || verb == "escalate" || verb == "*")
            {
                add(
                    RiskFlag::Escalation,
                    Severity::Critical,
                    "bind/escalate: can grant itself any permission",
                );
            }
            if verb == "impersonate"
                || (verb == "*"
                    && ["users", "groups", "serviceaccounts", "userextras"]
                        .iter()
                        .any(|r| res_is(r))
                    && core)
            {
                add(
                    RiskFlag::Escalation,
                    Severity::Critical,
                    "impersonate: acts as other users or accounts",
                );
            }
            if core
                && res_is("nodes")
                && (sub == Some("proxy") || sub == Some("*") || resource == "*")
                && verb_in(verb, &["get", "create"])
            {
                add(
                    RiskFlag::NodeProxy,
                    Severity::Critical,
                    "nodes/proxy: kubelet API, exec into any pod",
                );
            }
            if (api_group == "admissionregistration.k8s.io" || api_group == "*")
                && (res_is("mutatingwebhookconfigurations")
                    || res_is("validatingwebhookconfigurations"))
                && verb_in(verb, WRITE)
            {
                add(
                    RiskFlag::Webhooks,
                    Severity::Critical,
                    "webhooks: can intercept or block every API write",
                );
            }
            if core
                && res_is("pods")
                && matches!(sub, Some("exec" | "attach" | "portforward" | "*"))
                && verb_in(verb, &["create", "get"])
            {
                add(
                    RiskFlag::PodExec,
                    Severity::High,
                    "exec/attach/port-forward: runs commands in pods",
                );
            }
            if sub.is_none()
                && WORKLOADS.iter().any(|w| res_is(w))
                && verb_in(verb, &["create", "update", "patch"])
                && (core || ["apps", "batch", "extensions"].contains(&api_group.as_str()))
            {
                add(
                    RiskFlag::WorkloadWrite,
                    Severity::High,
                    "runs any image with the namespace's secrets",
                );
            }
            if core
                && res_is("serviceaccounts")
                && sub == Some("token")
                && verb_in(verb, &["create"])
            {
                add(
                    RiskFlag::TokenCreate,
                    Severity::High,
                    "mints tokens that act as a service account",
                );
            }
        }
        Target::NonResource { url } => {
            if url == "*" || verb == "*" {
                add(
                    RiskFlag::Wildcard,
                    Severity::High,
                    "wildcard: covers verbs and resources added later",
                );
            }
        }
    }
    if perm.scope == Scope::Namespace("kube-system".into()) {
        add(
            RiskFlag::KubeSystem,
            Severity::High,
            "in kube-system: control-plane workloads and keys",
        );
    }
    if perm.scope == Scope::Cluster {
        add(
            RiskFlag::ClusterScoped,
            Severity::Medium,
            "cluster-wide: every namespace and cluster objects",
        );
    }
    if verb_in(verb, READ) && verb != "*" {
        add(RiskFlag::Read, Severity::Info, "read-only");
    } else {
        add(
            RiskFlag::Write,
            Severity::Medium,
            "changes or deletes resources",
        );
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.severity));
    out
}

/// The worst flag of a permission: the one an approver must see.
pub fn classify(perm: &Permission) -> Risk {
    flags(perm).into_iter().next().unwrap_or(Risk {
        flag: RiskFlag::Read,
        severity: Severity::Info,
        why: "read-only",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(group: &str, res: &str, verb: &str) -> Permission {
        Permission::resource(Scope::Namespace("payments".into()), group, res, verb)
    }

    fn has(perm: &Permission, flag: RiskFlag) -> bool {
        flags(perm).iter().any(|r| r.flag == flag)
    }

    #[test]
    fn secrets_read_is_critical_but_secret_create_is_not_read() {
        for v in ["get", "list", "watch", "*"] {
            assert!(has(&ns("", "secrets", v), RiskFlag::SecretsRead), "{v}");
        }
        assert!(!has(&ns("", "secrets", "create"), RiskFlag::SecretsRead));
        assert_eq!(
            classify(&ns("", "secrets", "get")).severity,
            Severity::Critical
        );
        assert!(has(&ns("", "*", "get"), RiskFlag::SecretsRead));
    }

    #[test]
    fn exec_attach_portforward() {
        for sub in ["exec", "attach", "portforward"] {
            let p = ns("", &format!("pods/{sub}"), "create");
            assert!(has(&p, RiskFlag::PodExec));
            assert_eq!(classify(&p).severity, Severity::High);
        }
        assert!(!has(&ns("", "pods/log", "get"), RiskFlag::PodExec));
    }

    #[test]
    fn workload_writes() {
        assert!(has(&ns("", "pods", "create"), RiskFlag::WorkloadWrite));
        assert!(has(
            &ns("apps", "deployments", "patch"),
            RiskFlag::WorkloadWrite
        ));
        assert!(has(
            &ns("batch", "cronjobs", "update"),
            RiskFlag::WorkloadWrite
        ));
        assert!(!has(
            &ns("apps", "deployments", "get"),
            RiskFlag::WorkloadWrite
        ));
        assert!(!has(
            &ns("", "configmaps", "create"),
            RiskFlag::WorkloadWrite
        ));
    }

    #[test]
    fn bind_escalate_impersonate() {
        let rbac = "rbac.authorization.k8s.io";
        assert!(has(&ns(rbac, "clusterroles", "bind"), RiskFlag::Escalation));
        assert!(has(&ns(rbac, "roles", "escalate"), RiskFlag::Escalation));
        assert!(has(&ns("", "users", "impersonate"), RiskFlag::Escalation));
        assert!(has(
            &ns("", "serviceaccounts", "impersonate"),
            RiskFlag::Escalation
        ));
        assert!(!has(&ns(rbac, "roles", "get"), RiskFlag::Escalation));
        assert_eq!(
            classify(&ns(rbac, "roles", "bind")).severity,
            Severity::Critical
        );
    }

    #[test]
    fn wildcards() {
        assert_eq!(classify(&ns("*", "*", "*")).flag, RiskFlag::FullWildcard);
        assert!(has(&ns("", "configmaps", "*"), RiskFlag::Wildcard));
        assert!(has(&ns("apps", "*", "get"), RiskFlag::Wildcard));
        assert!(has(&ns("*", "configmaps", "get"), RiskFlag::Wildcard));
        assert!(!has(&ns("", "configmaps", "get"), RiskFlag::Wildcard));
        let url = Permission {
            scope: Scope::Cluster,
            target: Target::NonResource { url: "*".into() },
            verb: "get".into(),
        };
        assert!(has(&url, RiskFlag::Wildcard));
    }

    #[test]
    fn node_proxy_token_webhooks() {
        let c = |g: &str, r: &str, v: &str| Permission::resource(Scope::Cluster, g, r, v);
        assert_eq!(
            classify(&c("", "nodes/proxy", "get")).flag,
            RiskFlag::NodeProxy
        );
        assert!(!has(&c("", "nodes", "get"), RiskFlag::NodeProxy));
        assert!(has(
            &ns("", "serviceaccounts/token", "create"),
            RiskFlag::TokenCreate
        ));
        assert!(!has(
            &ns("", "serviceaccounts", "create"),
            RiskFlag::TokenCreate
        ));
        let adm = "admissionregistration.k8s.io";
        assert_eq!(
            classify(&c(adm, "mutatingwebhookconfigurations", "create")).flag,
            RiskFlag::Webhooks
        );
        assert!(has(
            &c(adm, "validatingwebhookconfigurations", "patch"),
            RiskFlag::Webhooks
        ));
        assert!(!has(
            &c(adm, "validatingwebhookconfigurations", "list"),
            RiskFlag::Webhooks
        ));
    }

    #[test]
    fn kube_system_and_cluster_scope() {
        let ks = Permission::resource(
            Scope::Namespace("kube-system".into()),
            "",
            "configmaps",
            "get",
        );
        assert_eq!(classify(&ks).flag, RiskFlag::KubeSystem);
        assert_eq!(classify(&ks).severity, Severity::High);
        let cl = Permission::resource(Scope::Cluster, "", "configmaps", "get");
        assert_eq!(classify(&cl).flag, RiskFlag::ClusterScoped);
        assert_eq!(classify(&cl).severity, Severity::Medium);
    }

    #[test]
    fn plain_reads_are_info_and_writes_medium() {
        let r = classify(&ns("", "configmaps", "get"));
        assert_eq!((r.flag, r.severity), (RiskFlag::Read, Severity::Info));
        let w = classify(&ns("", "configmaps", "delete"));
        assert_eq!((w.flag, w.severity), (RiskFlag::Write, Severity::Medium));
        assert!(!w.why.is_empty());
    }

    #[test]
    fn severity_parse_and_order() {
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
        assert_eq!(Severity::parse("crit"), Some(Severity::Critical));
        assert_eq!(Severity::parse("nope"), None);
        assert!(Severity::Critical > Severity::High && Severity::High > Severity::Medium);
    }
}
