//! Risk of one permission tuple: a flag, a severity and one line of why.
//!
//! Severity scale, as approvers read it:
//! - critical: can take over the scope or the cluster (read secrets, bind /
//!   escalate / impersonate, nodes/proxy, webhook configurations, full `*`),
//!   or make access outlive the grant (write role bindings, approve
//!   certificates, change CRDs or APIServices, hostPath volumes, ephemeral
//!   containers);
//! - high: runs code or mints credentials (exec / attach / portforward,
//!   create or change pods and pod controllers, serviceaccounts/token,
//!   partial wildcards, anything in kube-system);
//! - medium: other writes, and anything cluster-scoped;
//! - info: reads, and tuples no real request can use (a name on create or
//!   deletecollection).

use std::fmt;

use super::rbac::model::{split_subresource, NameReach, Permission, Scope, Target};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
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
    /// Writes RoleBindings / ClusterRoleBindings: the grant can outlive itself.
    BindingWrite,
    /// Approves CertificateSigningRequests: mints credentials for anyone.
    CertificateApproval,
    /// Writes CRDs or APIServices: owns whole API types or groups.
    ApiExtension,
    /// Creates PersistentVolumes: a hostPath volume is the node's disk.
    HostPathVolume,
    /// Writes pods/ephemeralcontainers: adds a container to a running pod.
    EphemeralContainers,
    /// A name on create or deletecollection: no real request matches it.
    NoRequest,
    /// Cluster-wide writes to ConfigMaps or ServiceAccounts reach
    /// portcullis-system: the cluster's Portcullis limits and other grants'
    /// credentials.
    PortcullisSystem,
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

impl Risk {
    /// What the permission lets its holder do, as the end of "can …"
    /// ("read Secrets", "exec into pods"): the detail pane's first line
    /// says a grant in these words.
    pub fn plain(&self) -> &'static str {
        match self.flag {
            RiskFlag::SecretsRead => "read Secrets",
            RiskFlag::PodExec => "exec into pods",
            RiskFlag::WorkloadWrite => "run pods with any image",
            RiskFlag::Escalation if self.why.starts_with("impersonate") => "act as other users",
            RiskFlag::Escalation => "grant itself any role",
            RiskFlag::FullWildcard => "do anything",
            RiskFlag::Wildcard => "use wildcard rules",
            RiskFlag::NodeProxy => "reach nodes' kubelets",
            RiskFlag::TokenCreate => "mint ServiceAccount tokens",
            RiskFlag::Webhooks => "change admission webhooks",
            RiskFlag::BindingWrite => "write role bindings",
            RiskFlag::CertificateApproval => "approve certificates",
            RiskFlag::ApiExtension => "change CRDs or APIServices",
            RiskFlag::HostPathVolume => "create volumes on nodes' disks",
            RiskFlag::EphemeralContainers => "add containers to running pods",
            RiskFlag::NoRequest => "do nothing (a name no request carries)",
            RiskFlag::PortcullisSystem => "change portcullis-system",
            RiskFlag::KubeSystem => "act in kube-system",
            RiskFlag::ClusterScoped => "act cluster-wide",
            RiskFlag::Write => "change or delete resources",
            RiskFlag::Read => "read resources",
        }
    }
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

/// A nonResourceURL pattern that covers every path a client can send: `*`,
/// `/*`, and the same with more trailing `*` (the authorizer strips them all).
fn url_is_everything(url: &str) -> bool {
    url.ends_with('*') && matches!(url.trim_end_matches('*'), "" | "/")
}

/// Every flag that applies to `perm`; the first is the worst.
pub fn flags(perm: &Permission) -> Vec<Risk> {
    let mut out = Vec::new();
    let verb = perm.verb.as_str();
    let reach = perm.name_reach();
    if reach == NameReach::NoRequest {
        add(
            &mut out,
            RiskFlag::NoRequest,
            Severity::Info,
            "allows nothing: create/deletecollection requests carry no name",
        );
        return out;
    }
    match &perm.target {
        Target::Resource {
            api_group,
            resource,
            ..
        } => {
            let (base, sub) = split_subresource(resource);
            let r = Rule {
                verb,
                reach,
                api_group,
                resource,
                base,
                sub,
            };
            wildcard_flags(&r, &mut out);
            takeover_flags(&r, &mut out);
            control_flags(&r, &mut out);
            workload_flags(&r, &mut out);
        }
        Target::NonResource { url } => {
            if url_is_everything(url) || verb == "*" {
                add(
                    &mut out,
                    RiskFlag::Wildcard,
                    Severity::High,
                    "wildcard: covers verbs and resources added later",
                );
            }
        }
    }
    scope_flags(perm, &mut out);
    if verb_in(verb, READ) && verb != "*" {
        add(&mut out, RiskFlag::Read, Severity::Info, "read-only");
    } else {
        add(
            &mut out,
            RiskFlag::Write,
            Severity::Medium,
            "changes or deletes resources",
        );
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.severity));
    out
}

fn add(out: &mut Vec<Risk>, flag: RiskFlag, severity: Severity, why: &'static str) {
    out.push(Risk {
        flag,
        severity,
        why,
    });
}

/// A resource permission as the rules read it.
struct Rule<'a> {
    verb: &'a str,
    reach: NameReach<'a>,
    api_group: &'a str,
    resource: &'a str,
    /// The resource without its subresource.
    base: &'a str,
    sub: Option<&'a str>,
}

impl Rule<'_> {
    fn in_group(&self, group: &str) -> bool {
        self.api_group == group || self.api_group == "*"
    }

    fn res_is(&self, name: &str) -> bool {
        self.base == name || self.base == "*"
    }

    fn core(&self) -> bool {
        self.api_group.is_empty() || self.api_group == "*"
    }

    fn write(&self) -> bool {
        verb_in(self.verb, WRITE)
    }

    fn verb_in(&self, set: &[&str]) -> bool {
        verb_in(self.verb, set)
    }
}

/// `*` anywhere: covers what is added later.
fn wildcard_flags(r: &Rule, out: &mut Vec<Risk>) {
    if r.verb == "*" && r.resource == "*" && r.api_group == "*" {
        add(
            out,
            RiskFlag::FullWildcard,
            Severity::Critical,
            "full control: every verb on every resource",
        );
    } else if r.verb == "*" || r.resource == "*" || r.api_group == "*" || r.base == "*" {
        add(
            out,
            RiskFlag::Wildcard,
            Severity::High,
            "wildcard: covers verbs and resources added later",
        );
    }
}

/// What reads every secret, makes the grant permanent, mints logins,
/// replaces APIs or opens a node's disk.
fn takeover_flags(r: &Rule, out: &mut Vec<Risk>) {
    if r.core() && r.res_is("secrets") && r.sub.is_none() && r.verb_in(READ) {
        add(
            out,
            RiskFlag::SecretsRead,
            Severity::Critical,
            if r.reach == NameReach::EveryObject {
                "reads every Secret: the name \"\" is every list/watch"
            } else {
                "reads Secret values: passwords, keys, tokens"
            },
        );
    }
    if r.in_group("rbac.authorization.k8s.io")
        && (r.res_is("rolebindings") || r.res_is("clusterrolebindings"))
        && r.sub.is_none()
        && r.write()
    {
        add(
            out,
            RiskFlag::BindingWrite,
            Severity::Critical,
            "writes role bindings: can make this grant permanent",
        );
    }
    if r.in_group("certificates.k8s.io")
        && ((r.res_is("certificatesigningrequests")
            && (matches!(r.sub, Some("approval" | "*")) || r.resource == "*")
            && r.write())
            || (r.res_is("signers") && r.sub.is_none() && r.verb_in(&["approve"])))
    {
        add(
            out,
            RiskFlag::CertificateApproval,
            Severity::Critical,
            "approves certificates: can mint a login for any user",
        );
    }
    if ((r.in_group("apiextensions.k8s.io") && r.res_is("customresourcedefinitions"))
        || (r.in_group("apiregistration.k8s.io") && r.res_is("apiservices")))
        && r.sub.is_none()
        && r.write()
    {
        add(
            out,
            RiskFlag::ApiExtension,
            Severity::Critical,
            "CRDs/APIServices: can route or replace whole APIs",
        );
    }
    if r.core() && r.res_is("persistentvolumes") && r.sub.is_none() && r.verb_in(&["create"]) {
        add(
            out,
            RiskFlag::HostPathVolume,
            Severity::Critical,
            "creates volumes: a hostPath volume opens a node's disk",
        );
    }
}

/// What runs code in running pods or on nodes, grants itself more, acts
/// as others or intercepts every write.
fn control_flags(r: &Rule, out: &mut Vec<Risk>) {
    if r.core()
        && r.res_is("pods")
        && (matches!(r.sub, Some("ephemeralcontainers" | "*")) || r.resource == "*")
        && r.write()
    {
        add(
            out,
            RiskFlag::EphemeralContainers,
            Severity::Critical,
            "adds containers to running pods: runs code as them",
        );
    }
    if (r.api_group == "rbac.authorization.k8s.io" || r.api_group == "*")
        && (r.res_is("roles") || r.res_is("clusterroles"))
        && (r.verb == "bind" || r.verb == "escalate" || r.verb == "*")
    {
        add(
            out,
            RiskFlag::Escalation,
            Severity::Critical,
            "bind/escalate: can grant itself any permission",
        );
    }
    if r.verb == "impersonate"
        || (r.verb == "*"
            && ["users", "groups", "serviceaccounts", "userextras"]
                .iter()
                .any(|name| r.res_is(name))
            && r.core())
    {
        add(
            out,
            RiskFlag::Escalation,
            Severity::Critical,
            "impersonate: acts as other users or accounts",
        );
    }
    if r.core()
        && r.res_is("nodes")
        && (r.sub == Some("proxy") || r.sub == Some("*") || r.resource == "*")
        && r.verb_in(&["get", "create"])
    {
        add(
            out,
            RiskFlag::NodeProxy,
            Severity::Critical,
            "nodes/proxy: kubelet API, exec into any pod",
        );
    }
    if (r.api_group == "admissionregistration.k8s.io" || r.api_group == "*")
        && (r.res_is("mutatingwebhookconfigurations")
            || r.res_is("validatingwebhookconfigurations"))
        && r.verb_in(WRITE)
    {
        add(
            out,
            RiskFlag::Webhooks,
            Severity::Critical,
            "webhooks: can intercept or block every API write",
        );
    }
}

/// What runs commands, workloads or service-account tokens.
fn workload_flags(r: &Rule, out: &mut Vec<Risk>) {
    if r.core()
        && r.res_is("pods")
        && matches!(r.sub, Some("exec" | "attach" | "portforward" | "*"))
        && r.verb_in(&["create", "get"])
    {
        add(
            out,
            RiskFlag::PodExec,
            Severity::High,
            "exec/attach/port-forward: runs commands in pods",
        );
    }
    if r.sub.is_none()
        && WORKLOADS.iter().any(|w| r.res_is(w))
        && r.verb_in(&["create", "update", "patch"])
        && (r.core() || ["apps", "batch", "extensions"].contains(&r.api_group))
    {
        add(
            out,
            RiskFlag::WorkloadWrite,
            Severity::High,
            "runs any image with the namespace's secrets",
        );
    }
    if r.core() && r.res_is("serviceaccounts") && r.sub == Some("token") && r.verb_in(&["create"]) {
        add(
            out,
            RiskFlag::TokenCreate,
            Severity::High,
            "mints tokens that act as a service account",
        );
    }
}

/// Where it applies: cluster-wide (and so into portcullis-system), or in
/// kube-system.
fn scope_flags(perm: &Permission, out: &mut Vec<Risk>) {
    let verb = perm.verb.as_str();
    if let (
        Scope::Cluster,
        Target::Resource {
            api_group,
            resource,
            ..
        },
    ) = (&perm.scope, &perm.target)
    {
        let (base, sub) = split_subresource(resource);
        let core = api_group.is_empty() || api_group == "*";
        let touches = |name: &str| base == name || base == "*";
        if core
            && sub.is_none()
            && (touches("configmaps") || touches("serviceaccounts"))
            && verb_in(verb, WRITE)
        {
            add(
                out,
                RiskFlag::PortcullisSystem,
                Severity::Critical,
                "reaches portcullis-system: can change the cluster's Portcullis limits or other grants' credentials",
            );
        }
    }
    if perm.scope == Scope::Namespace("kube-system".into()) {
        add(
            out,
            RiskFlag::KubeSystem,
            Severity::High,
            "in kube-system: control-plane workloads and keys",
        );
    }
    if perm.scope == Scope::Cluster {
        add(
            out,
            RiskFlag::ClusterScoped,
            Severity::Medium,
            "cluster-wide: every namespace and cluster objects",
        );
    }
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
        // Cluster-wide writes reach portcullis-system; namespaced ones do not.
        for (res, verb) in [
            ("configmaps", "update"),
            ("serviceaccounts", "create"),
            ("*", "delete"),
        ] {
            let p = Permission::resource(Scope::Cluster, "", res, verb);
            assert_eq!(classify(&p).severity, Severity::Critical, "{res} {verb}");
            assert!(flags(&p)
                .iter()
                .any(|f| f.flag == RiskFlag::PortcullisSystem));
        }
        let ns = Permission::resource(
            Scope::Namespace("payments".into()),
            "",
            "configmaps",
            "update",
        );
        assert!(!flags(&ns)
            .iter()
            .any(|f| f.flag == RiskFlag::PortcullisSystem));
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

    fn cluster(group: &str, res: &str, verb: &str) -> Permission {
        Permission::resource(Scope::Cluster, group, res, verb)
    }

    /// `flag` is the worst flag, critical, with a why, for each verb in
    /// `yes`, and absent for each verb in `no`.
    fn critical_for(perm: impl Fn(&str) -> Permission, flag: RiskFlag, yes: &[&str], no: &[&str]) {
        for v in yes {
            let r = classify(&perm(v));
            assert_eq!((r.flag, r.severity), (flag, Severity::Critical), "{v}");
            assert!(!r.why.is_empty());
        }
        for v in no {
            assert!(!has(&perm(v), flag), "{flag:?} for {v}");
        }
    }

    #[test]
    fn binding_writes_are_critical() {
        let rbac = "rbac.authorization.k8s.io";
        let writes = [
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
            "*",
        ];
        critical_for(
            |v| ns(rbac, "rolebindings", v),
            RiskFlag::BindingWrite,
            &writes,
            &["get", "list", "watch"],
        );
        critical_for(
            |v| cluster(rbac, "clusterrolebindings", v),
            RiskFlag::BindingWrite,
            &writes,
            &["get"],
        );
        assert!(has(&ns("*", "*", "create"), RiskFlag::BindingWrite));
        assert!(!has(
            &ns("", "rolebindings", "create"),
            RiskFlag::BindingWrite
        ));
        assert!(!has(&ns(rbac, "roles", "create"), RiskFlag::BindingWrite));
    }

    #[test]
    fn certificate_approval_is_critical() {
        let certs = "certificates.k8s.io";
        critical_for(
            |v| cluster(certs, "certificatesigningrequests/approval", v),
            RiskFlag::CertificateApproval,
            &["update", "patch", "*"],
            &["get"],
        );
        critical_for(
            |v| cluster(certs, "signers", v),
            RiskFlag::CertificateApproval,
            &["approve", "*"],
            &["sign", "get"],
        );
        assert!(!has(
            &cluster(certs, "certificatesigningrequests", "create"),
            RiskFlag::CertificateApproval
        ));
        assert!(!has(
            &cluster(certs, "certificatesigningrequests/status", "update"),
            RiskFlag::CertificateApproval
        ));
        assert!(has(
            &cluster(certs, "*", "update"),
            RiskFlag::CertificateApproval
        ));
    }

    #[test]
    fn crd_and_apiservice_writes_are_critical() {
        critical_for(
            |v| cluster("apiextensions.k8s.io", "customresourcedefinitions", v),
            RiskFlag::ApiExtension,
            &["create", "update", "patch", "delete", "*"],
            &["get", "list"],
        );
        critical_for(
            |v| cluster("apiregistration.k8s.io", "apiservices", v),
            RiskFlag::ApiExtension,
            &["create", "patch", "delete"],
            &["watch"],
        );
        assert!(!has(
            &cluster("example.com", "customresourcedefinitions", "create"),
            RiskFlag::ApiExtension
        ));
    }

    #[test]
    fn webhook_configuration_writes_are_critical() {
        let adm = "admissionregistration.k8s.io";
        for res in [
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
        ] {
            critical_for(
                |v| cluster(adm, res, v),
                RiskFlag::Webhooks,
                &["create", "update", "patch", "delete", "*"],
                &["get", "list"],
            );
        }
    }

    #[test]
    fn persistent_volume_create_is_critical() {
        critical_for(
            |v| cluster("", "persistentvolumes", v),
            RiskFlag::HostPathVolume,
            &["create", "*"],
            &["get", "delete", "update"],
        );
        assert!(!has(
            &ns("", "persistentvolumeclaims", "create"),
            RiskFlag::HostPathVolume
        ));
    }

    #[test]
    fn ephemeral_containers_are_critical() {
        critical_for(
            |v| ns("", "pods/ephemeralcontainers", v),
            RiskFlag::EphemeralContainers,
            &["update", "patch", "create", "*"],
            &["get"],
        );
        assert!(!has(
            &ns("", "pods", "update"),
            RiskFlag::EphemeralContainers
        ));
        assert!(has(
            &ns("", "pods/*", "patch"),
            RiskFlag::EphemeralContainers
        ));
    }

    #[test]
    fn every_trailing_star_url_that_covers_all_paths_is_the_wildcard() {
        for url in ["*", "**", "/*", "/**", "/***"] {
            let r = flags(&Permission::non_resource(url, "get"));
            assert!(r.iter().any(|r| r.flag == RiskFlag::Wildcard), "{url}");
        }
        for url in ["/healthz", "/api/*", "/foo**"] {
            assert!(
                !has(&Permission::non_resource(url, "get"), RiskFlag::Wildcard),
                "{url}"
            );
        }
    }

    #[test]
    fn empty_name_on_secrets_reads_everything() {
        let every = |verb: &str| {
            Permission::named(Scope::Namespace("payments".into()), "", "secrets", "", verb)
        };
        for verb in ["list", "watch", "*"] {
            let r = classify(&every(verb));
            assert_eq!(
                (r.flag, r.severity),
                (RiskFlag::SecretsRead, Severity::Critical)
            );
            assert!(r.why.contains("every Secret"), "{verb}: {}", r.why);
        }
        // A real name is still a Secret read, but not of every Secret.
        let one = Permission::named(Scope::Namespace("a".into()), "", "secrets", "db", "get");
        let r = classify(&one);
        assert_eq!(r.flag, RiskFlag::SecretsRead);
        assert!(!r.why.contains("every Secret"));
    }

    #[test]
    fn a_name_on_create_or_deletecollection_allows_nothing() {
        let s = || Scope::Namespace("payments".into());
        for (res, verb) in [("pods", "create"), ("secrets", "deletecollection")] {
            let r = classify(&Permission::named(s(), "", res, "x", verb));
            assert_eq!((r.flag, r.severity), (RiskFlag::NoRequest, Severity::Info));
        }
        // With the empty name the same verbs reach every object.
        let all = classify(&Permission::named(s(), "", "pods", "", "create"));
        assert_eq!(all.flag, RiskFlag::WorkloadWrite);
        // A subresource create names its parent: that is a real restriction.
        let exec = classify(&Permission::named(s(), "", "pods/exec", "x", "create"));
        assert_eq!(exec.flag, RiskFlag::PodExec);
    }

    #[test]
    fn severity_parse_and_order() {
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
        assert_eq!(Severity::parse("crit"), Some(Severity::Critical));
        assert_eq!(Severity::parse("nope"), None);
        assert!(Severity::Critical > Severity::High && Severity::High > Severity::Medium);
    }
}
