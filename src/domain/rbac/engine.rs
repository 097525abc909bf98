//! Effective permissions, the permissions a grant would add, and the diff.

use std::collections::{BTreeSet, HashSet};

use thiserror::Error;

use super::model::{
    split_subresource, Inventory, Permission, PolicyRule, Scope, SubjectRef, Target,
};
use crate::domain::request::{RoleKind, RoleRef, Subject};
use crate::domain::risk::{self, Risk, Severity};

/// Label every binding Portcullis creates carries.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    #[error("ClusterRole '{0}' does not exist on this cluster")]
    UnknownClusterRole(String),
    #[error("Role '{1}' does not exist in namespace '{0}'")]
    UnknownRole(String, String),
    #[error("a Role can only be granted in exactly one namespace")]
    RoleNeedsOneNamespace,
}

/// A rule a subject holds, where it holds it, and through which binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveRule {
    pub scope: Scope,
    pub rule: PolicyRule,
    pub via: String,
}

/// A binding that applies to the subject, summarised for the detail pane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingAccess {
    pub role: String,
    pub scope: Scope,
    /// `user alice`, `group oncall`, `group system:authenticated`.
    pub through: String,
    pub binding: String,
    /// Built-in `system:` bindings every user has (discovery and the like).
    pub system: bool,
    /// A binding Portcullis made for a live grant.
    pub live_grant: bool,
}

/// What a requester asks for, as the engine needs it.
#[derive(Debug, Clone, Copy)]
pub struct GrantRequest<'a> {
    pub subject: &'a Subject,
    pub role: &'a RoleRef,
    /// Empty = cluster-wide (ClusterRoleBinding).
    pub namespaces: &'a [String],
}

impl<'a> GrantRequest<'a> {
    /// What `req` would grant `subject` (its requester, or the requester
    /// with only the groups the console trusts): a pending request as
    /// asked, a decided one as granted.
    pub fn of(req: &'a crate::domain::AccessRequest, subject: &'a Subject) -> Self {
        GrantRequest {
            subject,
            role: &req.role,
            namespaces: req.granted_namespaces(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPermission {
    pub permission: Permission,
    pub risk: Risk,
}

/// Before, granted, and the difference, with risk for each new tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// Every rule the subject holds today.
    pub before: Vec<EffectiveRule>,
    /// Every tuple the grant would give (the "after" adds these to before).
    pub granted: Vec<Permission>,
    /// Granted tuples not already covered by `before`, sorted by scope,
    /// resource, verb.
    pub new: Vec<NewPermission>,
    /// Granted tuples the subject already holds, with the binding that gives each.
    pub already: Vec<(Permission, String)>,
    /// The role is aggregated: it can grow when new CRDs install.
    pub aggregated: bool,
    pub standing: Vec<StandingAccess>,
    /// The requester is in `system:masters`: the apiserver allows them
    /// everything whatever the bindings say, so the grant adds nothing.
    pub privileged: bool,
    /// How many bindings of other live Portcullis grants apply to the requester.
    /// Deliberately not "already held": those end on their own, and the
    /// approver must see everything this grant adds by itself.
    pub other_live_grants: usize,
    pub worst: Severity,
}

impl Analysis {
    pub fn count_at_least(&self, severity: Severity) -> usize {
        self.new
            .iter()
            .filter(|p| p.risk.severity >= severity)
            .count()
    }
}

pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";
/// The apiserver allows this group everything before RBAC is asked
/// (`authorizerfactory.NewPrivilegedGroups(user.SystemPrivilegedGroup)`
/// first in the authorizer union).
pub const MASTERS: &str = "system:masters";

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`: apimachinery's DNS-1123 label pattern.
fn is_dns_label_pattern(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// A namespace name (`ValidateNamespaceName`: DNS-1123 label, at most 63).
fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_dns_label_pattern(s)
}

/// A ServiceAccount name (`ValidateServiceAccountName`: DNS-1123
/// subdomain, at most 253).
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label_pattern)
}

/// `(namespace, name)` when `user` is a ServiceAccount user name, with the
/// apiserver's own test (`serviceaccount.SplitUsername`): exactly
/// `system:serviceaccount:NS:NAME` with a valid namespace and name. Anything
/// else (`…:ns:name:extra`, an upper-case namespace) is a plain user name.
pub fn service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!name.contains(':') && is_dns_label(ns) && is_dns_subdomain(name)).then_some((ns, name))
}

/// A group [`effective_groups`] gives by itself: `system:authenticated`,
/// `system:serviceaccounts` and `system:serviceaccounts:NS`.
pub fn implied_group(group: &str) -> bool {
    group == AUTHENTICATED
        || group == "system:serviceaccounts"
        || group.starts_with("system:serviceaccounts:")
}

/// The groups the apiserver's authenticators give this subject: the
/// declared ones; `system:serviceaccounts` and `system:serviceaccounts:NS`
/// for a ServiceAccount user (`serviceaccount.MakeGroupNames`); then, as
/// `AuthenticatedGroupAdder` does, `system:authenticated` unless the user is
/// `system:anonymous` or a group already is `system:authenticated` or
/// `system:unauthenticated`. The anonymous user always carries
/// `system:unauthenticated` (the anonymous authenticator gives it).
pub fn effective_groups(subject: &Subject) -> Vec<String> {
    let mut groups: Vec<String> = subject.groups.clone();
    if let Some((ns, _)) = service_account(&subject.user) {
        groups.push("system:serviceaccounts".into());
        groups.push(format!("system:serviceaccounts:{ns}"));
    }
    let has = |groups: &[String], g: &str| groups.iter().any(|x| x == g);
    if subject.user == ANONYMOUS {
        if !has(&groups, UNAUTHENTICATED) {
            groups.push(UNAUTHENTICATED.into());
        }
    } else if !has(&groups, AUTHENTICATED) && !has(&groups, UNAUTHENTICATED) {
        groups.push(AUTHENTICATED.into());
    }
    groups.sort();
    groups.dedup();
    groups
}

/// The user names bindings in `inv` name (User subjects): with
/// [`user_matters`], which analyses can share a result whatever the user.
pub fn users_named(inv: &Inventory) -> HashSet<String> {
    let rb = inv.role_bindings.iter().flat_map(|b| &b.subjects);
    let crb = inv.cluster_role_bindings.iter().flat_map(|b| &b.subjects);
    rb.chain(crb)
        .filter(|s| s.kind == "User")
        .map(|s| s.name.clone())
        .collect()
}

/// Whether an analysis can depend on the user name, not only the groups:
/// the analysis reads the user only where a binding names it (User and
/// ServiceAccount subjects) and for the apiserver's own users
/// (`system:anonymous`, ServiceAccounts). For any other user the result is
/// the same as for any other such user with the same groups.
pub fn user_matters(named: &HashSet<String>, user: &str) -> bool {
    user.starts_with("system:") || named.contains(user)
}

/// Whether the apiserver allows this subject everything regardless of RBAC.
pub fn is_privileged(subject: &Subject) -> bool {
    effective_groups(subject).iter().any(|g| g == MASTERS)
}

/// How a binding subject matches the requester, if it does.
fn subject_match(
    subject: &Subject,
    groups: &[String],
    s: &SubjectRef,
    binding_ns: Option<&str>,
) -> Option<String> {
    match s.kind.as_str() {
        "User" if s.name == subject.user => Some(format!("user {}", s.name)),
        "Group" if groups.contains(&s.name) => Some(format!("group {}", s.name)),
        "ServiceAccount" => {
            // A ServiceAccount subject in a RoleBinding defaults to the
            // binding's namespace; an empty namespace counts as unset. The
            // comparison is the authorizer's plain string match
            // (`serviceaccount.MatchesUsername`), not a parse of the user name.
            let non_empty = |n: &&str| !n.is_empty();
            let ns = s
                .namespace
                .as_deref()
                .filter(non_empty)
                .or(binding_ns.filter(non_empty))?;
            (subject.user == format!("system:serviceaccount:{ns}:{}", s.name))
                .then(|| format!("serviceaccount {ns}/{}", s.name))
        }
        _ => None,
    }
}

fn role_rules(
    inv: &Inventory,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
) -> Option<(Vec<PolicyRule>, bool)> {
    match (kind, namespace) {
        ("ClusterRole", _) => inv.cluster_role_rules(name),
        ("Role", Some(ns)) => inv.role(ns, name).map(|r| (r.rules.clone(), false)),
        _ => None,
    }
}

/// What `system:masters` holds: everything, with no binding at all.
fn privileged_rules() -> Vec<EffectiveRule> {
    let via = format!("group {MASTERS} (the apiserver allows it everything)");
    vec![
        EffectiveRule {
            scope: Scope::Cluster,
            rule: PolicyRule::resource(&["*"], &["*"], &["*"]),
            via: via.clone(),
        },
        EffectiveRule {
            scope: Scope::Cluster,
            rule: PolicyRule::non_resource(&["*"], &["*"]),
            via,
        },
    ]
}

/// Every binding that applies to `subject`, and the rules it brings.
fn collect(inv: &Inventory, subject: &Subject) -> (Vec<EffectiveRule>, Vec<StandingAccess>) {
    let groups = effective_groups(subject);
    let mut rules = Vec::new();
    let mut standing = Vec::new();
    if groups.iter().any(|g| g == MASTERS) {
        rules.extend(privileged_rules());
    }
    for b in &inv.cluster_role_bindings {
        let Some(through) = b
            .subjects
            .iter()
            .find_map(|s| subject_match(subject, &groups, s, None))
        else {
            continue;
        };
        if b.role_ref.kind != "ClusterRole" {
            continue;
        }
        let via = format!("ClusterRoleBinding {}", b.metadata.name);
        let live_grant = is_managed(&b.metadata.labels);
        // Another Portcullis grant will end: its rules are not "already held".
        if let Some((rs, _)) = inv
            .cluster_role_rules(&b.role_ref.name)
            .filter(|_| !live_grant)
        {
            rules.extend(rs.into_iter().map(|rule| EffectiveRule {
                scope: Scope::Cluster,
                rule,
                via: via.clone(),
            }));
        }
        standing.push(StandingAccess {
            role: b.role_ref.name.clone(),
            scope: Scope::Cluster,
            through,
            binding: b.metadata.name.clone(),
            system: b.metadata.name.starts_with("system:"),
            live_grant,
        });
    }
    for b in &inv.role_bindings {
        let Some(ns) = b.metadata.namespace.as_deref() else {
            continue;
        };
        let Some(through) = b
            .subjects
            .iter()
            .find_map(|s| subject_match(subject, &groups, s, Some(ns)))
        else {
            continue;
        };
        let via = format!("RoleBinding {ns}/{}", b.metadata.name);
        let live_grant = is_managed(&b.metadata.labels);
        if let Some((rs, _)) =
            role_rules(inv, &b.role_ref.kind, &b.role_ref.name, Some(ns)).filter(|_| !live_grant)
        {
            // A RoleBinding never grants nonResourceURLs.
            rules.extend(
                rs.into_iter()
                    .filter(|r| !r.resources.is_empty())
                    .map(|rule| EffectiveRule {
                        scope: Scope::Namespace(ns.to_string()),
                        rule,
                        via: via.clone(),
                    }),
            );
        }
        standing.push(StandingAccess {
            role: b.role_ref.name.clone(),
            scope: Scope::Namespace(ns.to_string()),
            through,
            binding: b.metadata.name.clone(),
            system: b.metadata.name.starts_with("system:"),
            live_grant,
        });
    }
    (rules, standing)
}

fn is_managed(labels: &std::collections::BTreeMap<String, String>) -> bool {
    labels
        .get(MANAGED_BY_LABEL)
        .is_some_and(|v| v == "portcullis")
}

/// Every rule `subject` holds through standing bindings (Portcullis's own
/// grant bindings excluded: they end by themselves).
pub fn effective_rules(inv: &Inventory, subject: &Subject) -> Vec<EffectiveRule> {
    collect(inv, subject).0
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

fn resource_matches(rule: &PolicyRule, resource: &str) -> bool {
    let (_, sub) = split_subresource(resource);
    rule.resources
        .iter()
        .any(|r| r == "*" || r == resource || sub.is_some_and(|s| r.strip_prefix("*/") == Some(s)))
}

/// `NonResourceURLMatches`: `*`, the exact path, or — for a URL ending in
/// `*` — a prefix match after stripping *every* trailing `*` (`/foo**` is
/// `/foo*`, and `**` is `*`).
fn url_matches(rule: &PolicyRule, url: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| {
        u == "*" || u == url || (u.ends_with('*') && url.starts_with(u.trim_end_matches('*')))
    })
}

/// A nonResourceURL as the authorizer reads it: trailing `*`s collapse to
/// one (`/foo**` → `/foo*`, `/**` → `/*`, `**` → `*`).
pub fn normalize_url(url: &str) -> String {
    if url.ends_with('*') {
        format!("{}*", url.trim_end_matches('*'))
    } else {
        url.to_string()
    }
}

/// Whether a rule held at `scope` covers every request the tuple `perm`
/// stands for. With concrete values in `perm` this is exactly the RBAC
/// authorizer's decision; with wildcards in `perm` it is "covers all of it".
pub fn rule_covers(scope: &Scope, rule: &PolicyRule, perm: &Permission) -> bool {
    let scope_ok = match (scope, &perm.scope) {
        (Scope::Cluster, _) => true,
        (Scope::Namespace(a), Scope::Namespace(b)) => a == b,
        (Scope::Namespace(_), Scope::Cluster) => false,
    };
    if !scope_ok || !verb_matches(rule, &perm.verb) {
        return false;
    }
    match &perm.target {
        Target::Resource {
            api_group,
            resource,
            name,
        } => {
            rule.api_groups.iter().any(|g| g == "*" || g == api_group)
                && resource_matches(rule, resource)
                && (rule.resource_names.is_empty()
                    || name
                        .as_ref()
                        .is_some_and(|n| rule.resource_names.contains(n)))
        }
        Target::NonResource { url } => *scope == Scope::Cluster && url_matches(rule, url),
    }
}

/// Whether any of `rules` allows `perm` (a concrete request: what a
/// SubjectAccessReview would answer).
pub fn allows(rules: &[EffectiveRule], perm: &Permission) -> bool {
    rules.iter().any(|r| rule_covers(&r.scope, &r.rule, perm))
}

/// Whether the tuple `tuple` (wildcards and all) stands for the request
/// `request`: e.g. whether a line of the diff covers a SubjectAccessReview.
pub fn tuple_covers(tuple: &Permission, request: &Permission) -> bool {
    let rule = match &tuple.target {
        Target::Resource {
            api_group,
            resource,
            name,
        } => PolicyRule {
            verbs: vec![tuple.verb.clone()],
            api_groups: vec![api_group.clone()],
            resources: vec![resource.clone()],
            resource_names: name.iter().cloned().collect(),
            non_resource_urls: Vec::new(),
        },
        Target::NonResource { url } => PolicyRule::non_resource(&[&tuple.verb], &[url]),
    };
    rule_covers(&tuple.scope, &rule, request)
}

/// The tuples one rule stands for at `scope`.
pub fn expand(scope: &Scope, rule: &PolicyRule, out: &mut BTreeSet<Permission>) {
    let names: Vec<Option<String>> = if rule.resource_names.is_empty() {
        vec![None]
    } else {
        rule.resource_names.iter().cloned().map(Some).collect()
    };
    for verb in &rule.verbs {
        for group in &rule.api_groups {
            for resource in &rule.resources {
                for name in &names {
                    out.insert(Permission {
                        scope: scope.clone(),
                        target: Target::Resource {
                            api_group: group.clone(),
                            resource: resource.clone(),
                            name: name.clone(),
                        },
                        verb: verb.clone(),
                    });
                }
            }
        }
        if *scope == Scope::Cluster {
            for url in &rule.non_resource_urls {
                // `/**` is shown as what it is, `/*`: every path.
                out.insert(Permission {
                    scope: Scope::Cluster,
                    target: Target::NonResource {
                        url: normalize_url(url),
                    },
                    verb: verb.clone(),
                });
            }
        }
    }
}

/// The rules a grant would bind, at their scopes, and whether the role is aggregated.
pub fn granted_rules(
    inv: &Inventory,
    req: GrantRequest<'_>,
) -> Result<(Vec<EffectiveRule>, bool), EngineError> {
    let scopes: Vec<Scope> = if req.namespaces.is_empty() {
        vec![Scope::Cluster]
    } else {
        req.namespaces
            .iter()
            .map(|ns| Scope::Namespace(ns.clone()))
            .collect()
    };
    let mut out = Vec::new();
    let mut aggregated = false;
    for scope in scopes {
        let (rules, agg) = match (req.role.kind, &scope) {
            (RoleKind::ClusterRole, _) => inv
                .cluster_role_rules(&req.role.name)
                .ok_or_else(|| EngineError::UnknownClusterRole(req.role.name.clone()))?,
            (RoleKind::Role, Scope::Namespace(ns)) => inv
                .role(ns, &req.role.name)
                .map(|r| (r.rules.clone(), false))
                .ok_or_else(|| EngineError::UnknownRole(ns.clone(), req.role.name.clone()))?,
            (RoleKind::Role, Scope::Cluster) => return Err(EngineError::RoleNeedsOneNamespace),
        };
        aggregated |= agg;
        let via = match &scope {
            Scope::Cluster => "requested ClusterRoleBinding".to_string(),
            Scope::Namespace(ns) => format!("requested RoleBinding {ns}"),
        };
        out.extend(rules.into_iter().map(|rule| EffectiveRule {
            scope: scope.clone(),
            rule,
            via: via.clone(),
        }));
    }
    Ok((out, aggregated))
}

/// The whole analysis of one request against one cluster's RBAC.
pub fn analyze(inv: &Inventory, req: GrantRequest<'_>) -> Result<Analysis, EngineError> {
    let (before, standing) = collect(inv, req.subject);
    let (granted_rules, aggregated) = granted_rules(inv, req)?;
    let mut granted = BTreeSet::new();
    for r in &granted_rules {
        expand(&r.scope, &r.rule, &mut granted);
    }
    let mut new = Vec::new();
    let mut already = Vec::new();
    for perm in &granted {
        match before.iter().find(|r| rule_covers(&r.scope, &r.rule, perm)) {
            Some(r) => already.push((perm.clone(), r.via.clone())),
            None => new.push(NewPermission {
                risk: risk::classify(perm),
                permission: perm.clone(),
            }),
        }
    }
    let worst = new
        .iter()
        .map(|p| p.risk.severity)
        .max()
        .unwrap_or(Severity::Info);
    Ok(Analysis {
        privileged: is_privileged(req.subject),
        other_live_grants: standing.iter().filter(|s| s.live_grant).count(),
        before,
        granted: granted.into_iter().collect(),
        new,
        already,
        aggregated,
        standing,
        worst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(user: &str, declared: &[&str]) -> Vec<String> {
        effective_groups(&Subject::new(user, declared))
    }

    #[test]
    fn authenticated_is_added_as_the_group_adder_does() {
        assert_eq!(groups("alice", &["dev"]), ["dev", "system:authenticated"]);
        // Declared explicitly: not duplicated.
        assert_eq!(
            groups("alice", &["system:authenticated"]),
            ["system:authenticated"]
        );
        // A user carrying system:unauthenticated is not also authenticated.
        assert_eq!(
            groups("alice", &["system:unauthenticated"]),
            ["system:unauthenticated"]
        );
    }

    #[test]
    fn anonymous_is_unauthenticated_only() {
        assert_eq!(groups(ANONYMOUS, &[]), ["system:unauthenticated"]);
        assert_eq!(
            groups(ANONYMOUS, &["system:unauthenticated", "x"]),
            ["system:unauthenticated", "x"]
        );
    }

    #[test]
    fn service_account_user_names_follow_split_username() {
        assert_eq!(
            service_account("system:serviceaccount:payments:builder"),
            Some(("payments", "builder"))
        );
        assert_eq!(
            service_account("system:serviceaccount:ci:my.bot-1"),
            Some(("ci", "my.bot-1"))
        );
        for bad in [
            "system:serviceaccount:payments:builder:extra",
            "system:serviceaccount:Payments:builder",
            "system:serviceaccount:payments:Builder",
            "system:serviceaccount:payments",
            "system:serviceaccount::builder",
            "system:serviceaccount:payments:",
            "system:serviceaccount:-ns:builder",
            "system:serviceaccount:ns-:builder",
            "system:serviceaccount:payments:a..b",
            "system:serviceaccount:a.b:builder",
            "system:serviceaccounts:payments:builder",
            "alice",
        ] {
            assert_eq!(service_account(bad), None, "{bad}");
        }
        let long_ns = format!("system:serviceaccount:{}:x", "a".repeat(64));
        assert_eq!(service_account(&long_ns), None);
        let ok_ns = format!("system:serviceaccount:{}:x", "a".repeat(63));
        assert!(service_account(&ok_ns).is_some());
        let long_name = format!("system:serviceaccount:ns:{}", "a".repeat(254));
        assert_eq!(service_account(&long_name), None);
    }

    #[test]
    fn only_valid_service_accounts_get_service_account_groups() {
        assert_eq!(
            groups("system:serviceaccount:payments:sa1", &[]),
            [
                "system:authenticated",
                "system:serviceaccounts",
                "system:serviceaccounts:payments"
            ]
        );
        assert_eq!(
            groups("system:serviceaccount:payments:sa1:extra", &[]),
            ["system:authenticated"]
        );
        assert_eq!(
            groups("system:serviceaccount:Payments:sa1", &[]),
            ["system:authenticated"]
        );
    }

    fn sa_binding_subject(ns: Option<&str>, name: &str) -> SubjectRef {
        SubjectRef {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: ns.map(Into::into),
        }
    }

    #[test]
    fn service_account_subjects_are_a_plain_string_match() {
        let s = |user: &str| Subject::new(user, &[]);
        let g = |user: &str| effective_groups(&s(user));
        let m = |user: &str, r: &SubjectRef, ns: Option<&str>| {
            subject_match(&s(user), &g(user), r, ns).is_some()
        };
        let sa = sa_binding_subject(Some("payments"), "sa1");
        assert!(m("system:serviceaccount:payments:sa1", &sa, None));
        assert!(!m("system:serviceaccount:payments:sa1:extra", &sa, None));
        // The authorizer compares strings: a namespace that is not a valid
        // name still matches the user name built from it.
        let upper = sa_binding_subject(Some("Payments"), "sa1");
        assert!(m("system:serviceaccount:Payments:sa1", &upper, None));
        let colon = sa_binding_subject(Some("payments:sa1"), "extra");
        assert!(m("system:serviceaccount:payments:sa1:extra", &colon, None));
        // Namespace defaults to the RoleBinding's; empty counts as unset.
        let bare = sa_binding_subject(None, "sa1");
        assert!(m(
            "system:serviceaccount:payments:sa1",
            &bare,
            Some("payments")
        ));
        assert!(!m("system:serviceaccount:payments:sa1", &bare, None));
        let empty = sa_binding_subject(Some(""), "sa1");
        assert!(m(
            "system:serviceaccount:payments:sa1",
            &empty,
            Some("payments")
        ));
        assert!(!m("system:serviceaccount:payments:sa1", &empty, None));
        assert!(!m(":sa1", &empty, None));
    }

    fn held(rules: &[PolicyRule], perm: &Permission) -> bool {
        rules.iter().any(|r| rule_covers(&Scope::Cluster, r, perm))
    }

    #[test]
    fn every_trailing_star_is_stripped_before_the_prefix_match() {
        let get = |url: &str| Permission::non_resource(url, "get");
        let rule = |url: &str| vec![PolicyRule::non_resource(&["get"], &[url])];
        for everything in ["*", "**", "***"] {
            for path in ["/", "/healthz", "/api/v1", "x", "*"] {
                assert!(held(&rule(everything), &get(path)), "{everything} {path}");
            }
        }
        assert!(held(&rule("/**"), &get("/anything/at/all")));
        assert!(!held(&rule("/**"), &get("x")), "a path without a slash");
        assert!(held(&rule("/foo**"), &get("/foo")));
        assert!(held(&rule("/foo**"), &get("/foobar")));
        assert!(!held(&rule("/foo**"), &get("/fo")));
        assert!(!held(&rule("/foo"), &get("/foo/")), "exact without a star");
        assert!(!held(&rule("/fo*o"), &get("/foo")), "only a trailing star");
        assert!(held(&rule("/fo*o"), &get("/fo*o")));
    }

    #[test]
    fn url_tuples_show_one_trailing_star() {
        assert_eq!(normalize_url("/foo**"), "/foo*");
        assert_eq!(normalize_url("/**"), "/*");
        assert_eq!(normalize_url("**"), "*");
        assert_eq!(normalize_url("/healthz"), "/healthz");
        let mut out = BTreeSet::new();
        expand(
            &Scope::Cluster,
            &PolicyRule::non_resource(&["get"], &["/**", "/foo***"]),
            &mut out,
        );
        let urls: Vec<String> = out.iter().map(|p| p.resource_label()).collect();
        assert_eq!(urls, ["/*", "/foo*"]);
        // A normalised tuple still stands for what the rule allows.
        let star = Permission::non_resource("/*", "get");
        assert!(tuple_covers(
            &star,
            &Permission::non_resource("/x/y", "get")
        ));
        assert!(!tuple_covers(&star, &Permission::non_resource("x", "get")));
    }

    #[test]
    fn empty_resource_name_is_the_request_without_a_name() {
        let rules = [PolicyRule::resource(&["list", "get"], &[""], &["secrets"]).with_names(&[""])];
        let ns = || Scope::Namespace("a".into());
        let req = |name: &str, verb: &str| Permission::named(ns(), "", "secrets", name, verb);
        assert!(held(&rules, &req("", "list")), "plain list");
        assert!(!held(&rules, &req("db", "get")));
        assert!(!held(&rules, &req("db", "list")), "field-selected list");
        // "Any name" is more than the nameless request.
        let any = Permission::resource(ns(), "", "secrets", "list");
        assert!(!held(&rules, &any));
        // And a rule without names covers both.
        let all = [PolicyRule::resource(&["list"], &[""], &["secrets"])];
        assert!(held(&all, &req("", "list")) && held(&all, &any));
    }

    #[test]
    fn tuples_cover_what_they_stand_for() {
        let ns = || Scope::Namespace("a".into());
        let any = Permission::resource(ns(), "", "pods", "get");
        assert!(tuple_covers(
            &any,
            &Permission::named(ns(), "", "pods", "x", "get")
        ));
        assert!(tuple_covers(
            &any,
            &Permission::named(ns(), "", "pods", "", "get")
        ));
        assert!(!tuple_covers(
            &any,
            &Permission::named(ns(), "", "pods/log", "x", "get")
        ));
        let x = Permission::named(ns(), "", "pods", "x", "get");
        assert!(tuple_covers(&x, &x));
        assert!(!tuple_covers(
            &x,
            &Permission::named(ns(), "", "pods", "y", "get")
        ));
        assert!(!tuple_covers(&x, &any));
        let cluster = Permission::resource(Scope::Cluster, "*", "*", "*");
        assert!(tuple_covers(&cluster, &x));
        assert!(!tuple_covers(&x, &cluster));
        let sub = Permission::resource(ns(), "apps", "*/scale", "update");
        assert!(tuple_covers(
            &sub,
            &Permission::named(ns(), "apps", "deployments/scale", "d", "update")
        ));
        assert!(!tuple_covers(
            &sub,
            &Permission::named(ns(), "apps", "deployments", "d", "update")
        ));
    }

    #[test]
    fn system_masters_holds_everything_without_a_binding() {
        let inv = Inventory::default();
        let root = Subject::new("root", &[MASTERS]);
        assert!(is_privileged(&root));
        let rules = effective_rules(&inv, &root);
        assert!(allows(
            &rules,
            &Permission::resource(Scope::Cluster, "*", "*", "*")
        ));
        assert!(allows(
            &rules,
            &Permission::non_resource("/anything", "post")
        ));
        assert!(allows(
            &rules,
            &Permission::named(
                Scope::Namespace("kube-system".into()),
                "",
                "secrets",
                "x",
                "get"
            )
        ));
        let alice = Subject::new("alice", &[]);
        assert!(!is_privileged(&alice));
        assert!(effective_rules(&inv, &alice).is_empty());
    }
}
