//! Mismatches an approver would otherwise have to spot by reading closely,
//! said in plain words above the diff (pending requests only):
//!
//! - the reason names another cluster or environment than the request's;
//! - the role does not give what the reason asks for, or is much broader
//!   than that: a narrower role on the cluster covers it (suggested);
//! - the same person asked and was denied within the last day.
//!
//! The task a reason states is read from a few plain keywords (roll back,
//! restart, scale, logs, port-forward, exec, inspect, configmap, rotate);
//! a reason without one raises no role flag.

use chrono::TimeDelta;

use super::app::AppState;
use super::when;
use crate::domain::rbac::engine::{
    allows, analyze, effective_rules, granted_rules, Analysis, EffectiveRule, GrantRequest,
};
use crate::domain::rbac::{Inventory, Permission, Scope};
use crate::domain::risk::RiskFlag;
use crate::domain::sanitize::inert;
use crate::domain::{AccessRequest, Phase, RoleRef, Severity};

/// How far back a denial of the same person is worth saying.
const DENIED_WITHIN: TimeDelta = TimeDelta::hours(24);

/// The flags about a pending request itself, with its diff (a recent
/// denial of the same person, [`denied_recently`], comes with the
/// requester context: it changes with their other requests).
pub(crate) fn flags(state: &AppState, req: &AccessRequest, a: &Analysis) -> Vec<String> {
    if req.phase() != Phase::Pending {
        return Vec::new();
    }
    let mut out = elsewhere(state, req);
    out.extend(other_namespace(state, req));
    if let Some(inv) = state.inventories.get(&req.cluster) {
        out.extend(role_fit(inv, req, &state.subject_for(req), a));
    }
    out
}

/// The flags that need no diff (the role is unknown, no inventory yet).
pub(crate) fn flags_without_diff(state: &AppState, req: &AccessRequest) -> Vec<String> {
    if req.phase() != Phase::Pending {
        return Vec::new();
    }
    let mut out = elsewhere(state, req);
    out.extend(other_namespace(state, req));
    out
}

/// The reason names a namespace of the cluster that the request does not
/// ask for, and none it does ("payments is down" asking for orders).
fn other_namespace(state: &AppState, req: &AccessRequest) -> Option<String> {
    if req.namespaces.is_empty() {
        return None;
    }
    let known = state.inventories.get(&req.cluster)?.namespaces.as_ref()?;
    let words = words(&req.reason);
    if words.iter().any(|w| req.namespaces.iter().any(|n| n == w)) {
        return None;
    }
    let other = words
        .iter()
        .find(|w| known.contains(w.as_str()) && w.as_str() != "default")?;
    Some(format!(
        "the reason names namespace {}; this request is for {}",
        inert(other, 64),
        inert(&req.namespaces.join(", "), 120)
    ))
}

/// The environment a cluster name or a word of a reason points at.
fn environment(word: &str) -> Option<&'static str> {
    let w = word.to_lowercase();
    let has = |parts: &[&str]| {
        w.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|p| parts.contains(&p))
    };
    if has(&["prod", "production", "prd", "live"]) {
        Some("production")
    } else if has(&["staging", "stage", "stg", "preprod"]) {
        Some("staging")
    } else if has(&["dev", "sandbox", "development"]) {
        Some("development")
    } else {
        None
    }
}

/// The words of a reason, lower-case, split where a name cannot go on.
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('.').to_string())
        .collect()
}

/// The reason names another cluster, or another environment, and not the
/// request's own.
fn elsewhere(state: &AppState, req: &AccessRequest) -> Vec<String> {
    let words = words(&req.reason);
    let own_env = environment(&req.cluster);
    let names_own = words.iter().any(|w| *w == req.cluster.to_lowercase())
        || (own_env.is_some()
            && words
                .iter()
                .any(|w| environment(w) == own_env && !is_generic_dev(w)));
    if names_own {
        return Vec::new();
    }
    let cluster = inert(&req.cluster, 64);
    if let Some(other) = state
        .clusters
        .keys()
        .filter(|c| **c != req.cluster)
        .find(|c| words.iter().any(|w| *w == c.to_lowercase()))
    {
        return vec![format!(
            "the reason names {}; this request is for {cluster}",
            inert(other, 64)
        )];
    }
    let Some(own) = own_env else {
        return Vec::new();
    };
    words
        .iter()
        .filter(|w| !is_generic_dev(w))
        .find_map(|w| environment(w).filter(|e| *e != own).map(|e| (w, e)))
        .map(|(w, e)| {
            let what = if w.as_str() == e {
                e.to_string()
            } else {
                format!("{} ({e})", inert(w, 32))
            };
            vec![format!(
                "the reason says {what}; this request is for {cluster} ({own})"
            )]
        })
        .unwrap_or_default()
}

/// "dev" alone is as often a team as an environment: never a flag by itself.
fn is_generic_dev(word: &str) -> bool {
    word == "dev"
}

/// A task a reason states, and what it needs.
struct Task {
    keywords: &'static [&'static str],
    what: &'static str,
    /// (apiGroup, resource, verb) in the requested namespaces.
    needs: &'static [(&'static str, &'static str, &'static str)],
}

/// Keywords are whole words (`logs`), or word beginnings when they end in
/// `*` (`restart*` is also "restarting").
const TASKS: &[Task] = &[
    Task {
        keywords: &[
            "roll back",
            "rollback*",
            "roll-back",
            "rollout*",
            "restart*",
            "redeploy*",
        ],
        what: "roll back/restart",
        needs: &[("apps", "deployments", "patch")],
    },
    Task {
        keywords: &["scale", "scale up", "scaling"],
        what: "scaling",
        needs: &[("apps", "deployments/scale", "update")],
    },
    Task {
        keywords: &["logs", "log"],
        what: "read logs",
        needs: &[("", "pods/log", "get")],
    },
    Task {
        keywords: &["port-forward*", "portforward*", "port forward*"],
        what: "port-forward",
        needs: &[("", "pods/portforward", "create")],
    },
    Task {
        keywords: &["exec", "shell"],
        what: "exec",
        needs: &[("", "pods/exec", "create")],
    },
    Task {
        keywords: &["configmap*", "config map*"],
        what: "change a ConfigMap",
        needs: &[("", "configmaps", "patch")],
    },
    Task {
        keywords: &["rotat*"],
        what: "rotate a Secret",
        needs: &[("", "secrets", "update")],
    },
    Task {
        keywords: &["inspect*", "investigat*", "look at"],
        what: "look at pods",
        needs: &[("", "pods", "get"), ("", "pods", "list")],
    },
];

/// The tasks a reason states.
fn tasks(reason: &str) -> Vec<&'static Task> {
    let mut text = String::from(" ");
    for c in reason.to_lowercase().chars() {
        text.push(if c.is_alphanumeric() || c == '-' {
            c
        } else {
            ' '
        });
    }
    text.push(' ');
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = format!(" {text} ");
    let says = |k: &str| match k.strip_suffix('*') {
        Some(prefix) => text.contains(&format!(" {prefix}")),
        None => text.contains(&format!(" {k} ")),
    };
    TASKS
        .iter()
        .filter(|t| t.keywords.iter().any(|k| says(k)))
        .collect()
}

/// The permissions the tasks need, in the request's namespaces (a
/// cluster-wide request: in one ordinary namespace).
fn needs(req: &AccessRequest, tasks: &[&Task]) -> Vec<Permission> {
    let scopes: Vec<Scope> = if req.namespaces.is_empty() {
        vec![Scope::Namespace("default".into())]
    } else {
        req.namespaces
            .iter()
            .map(|n| Scope::Namespace(n.clone()))
            .collect()
    };
    let mut out = Vec::new();
    for scope in &scopes {
        for t in tasks {
            for (group, resource, verb) in t.needs {
                out.push(Permission::resource(scope.clone(), group, resource, verb));
            }
        }
    }
    out
}

fn covers(before: &[EffectiveRule], granted: &[EffectiveRule], need: &[Permission]) -> bool {
    need.iter().all(|p| allows(before, p) || allows(granted, p))
}

/// The role does not give what the reason asks for; or a role with far
/// fewer new permissions, or none as risky, would do.
fn role_fit(
    inv: &Inventory,
    req: &AccessRequest,
    subject: &crate::domain::Subject,
    a: &Analysis,
) -> Vec<String> {
    let tasks = tasks(&req.reason);
    if tasks.is_empty() {
        return Vec::new();
    }
    let what = tasks.iter().map(|t| t.what).collect::<Vec<_>>().join(", ");
    let need = needs(req, &tasks);
    let before = effective_rules(inv, subject);
    let namespaces = req.namespaces.as_slice();
    fn grant<'a>(
        subject: &'a crate::domain::Subject,
        role: &'a RoleRef,
        namespaces: &'a [String],
    ) -> GrantRequest<'a> {
        GrantRequest {
            subject,
            role,
            namespaces,
        }
    }
    let role = inert(&req.role.name, 64);
    let Ok((asked, _)) = granted_rules(inv, grant(subject, &req.role, namespaces)) else {
        return Vec::new();
    };
    if !covers(&before, &asked, &need) {
        let missing: Vec<String> = need
            .iter()
            .filter(|p| !allows(&before, p) && !allows(&asked, p))
            .map(|p| format!("{} {}", p.verb, p.resource_label()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        return vec![format!(
            "the reason needs {what}; {role} lacks {}",
            missing.join(", ")
        )];
    }
    if a.new.is_empty() {
        return Vec::new();
    }
    if need.iter().all(|p| allows(&before, p)) {
        return vec![format!(
            "{} can already {what} with what they hold; {role} adds {} new ({})",
            inert(&subject.user, 64),
            a.new.len(),
            worst(a).map_or("none", |s| s.badge())
        )];
    }
    let mut candidates: Vec<RoleRef> = inv
        .cluster_roles
        .iter()
        .map(|r| r.metadata.name.as_str())
        .filter(|n| !n.starts_with("system:") && *n != req.role.name)
        .map(RoleRef::cluster_role)
        .collect();
    if let [ns] = req.namespaces.as_slice() {
        candidates.extend(
            inv.roles
                .iter()
                .filter(|r| r.metadata.namespace.as_deref() == Some(ns.as_str()))
                .map(|r| RoleRef::role(&r.metadata.name))
                .filter(|r| *r != req.role),
        );
    }
    let best = candidates
        .iter()
        .filter(|r| {
            granted_rules(inv, grant(subject, r, namespaces))
                .is_ok_and(|(rules, _)| covers(&before, &rules, &need))
        })
        .filter_map(|r| {
            analyze(inv, grant(subject, r, namespaces))
                .ok()
                .map(|x| (r, x))
        })
        // A wildcard is one tuple and covers everything: never "narrower".
        .filter(|(_, x)| {
            !x.new
                .iter()
                .any(|p| matches!(p.risk.flag, RiskFlag::Wildcard | RiskFlag::FullWildcard))
        })
        .min_by_key(|(r, x)| (breadth(x), r.name.clone()));
    let Some((r, x)) = best else {
        return Vec::new();
    };
    let (asked, cand) = (breadth(a), breadth(&x));
    let narrower =
        cand.0 < asked.0 || (cand.0 == asked.0 && cand.1 * 2 <= asked.1 && cand.2 * 2 <= asked.2);
    if !narrower {
        return Vec::new();
    }
    vec![format!(
        "{} {} would cover {what}: {} new ({}) {}",
        r.kind,
        inert(&r.name, 64),
        x.new.len(),
        worst(&x).map_or("none", |s| s.badge()),
        instead_of(&role, a),
    )]
}

/// What the asked role gives, in terms a person can compare with a count
/// of permissions: a wildcard rule is one entry that covers everything.
fn instead_of(role: &str, a: &Analysis) -> String {
    let badge = worst(a).map_or("none", |s| s.badge());
    let wildcards = a
        .new
        .iter()
        .filter(|p| matches!(p.risk.flag, RiskFlag::Wildcard | RiskFlag::FullWildcard))
        .count();
    match wildcards {
        0 => format!("instead of {} new ({badge})", a.new.len()),
        1 => format!("instead of {role}'s wildcard rule (any verb or resource: {badge})"),
        n => format!("instead of {role}'s {n} wildcard rules (any verb or resource: {badge})"),
    }
}

/// How broad a grant is, for comparing roles: its worst new permission,
/// how many are high or worse, how many are new.
fn breadth(a: &Analysis) -> (Option<Severity>, usize, usize) {
    (worst(a), a.count_at_least(Severity::High), a.new.len())
}

fn worst(a: &Analysis) -> Option<Severity> {
    a.new.iter().map(|p| p.risk.severity).max()
}

/// The same person was denied within the last day.
pub(crate) fn denied_recently(state: &AppState, req: &AccessRequest) -> Vec<String> {
    let (n, last) = state.denials_of(
        &req.requester.user,
        &crate::backend::RequestKey::of(req),
        state.now - DENIED_WITHIN,
    );
    let Some(last) = last else {
        return Vec::new();
    };
    let Some(d) = last.status.decision.as_ref() else {
        return Vec::new();
    };
    let more = match n {
        1 => String::new(),
        n => format!(" ({n} times in a day)"),
    };
    vec![format!(
        "{} was denied {} on {} {}{more} by {}: \"{}\"",
        inert(&req.requester.user, 64),
        inert(&last.role.name, 64),
        inert(&last.cluster, 64),
        when::ago(state.now, d.at),
        inert(&d.by, 64),
        inert(d.reason.as_deref().unwrap_or(""), 120),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_from_names_and_words() {
        assert_eq!(environment("prod-eu-west"), Some("production"));
        assert_eq!(environment("staging-eu-west"), Some("staging"));
        assert_eq!(environment("dev-sandbox"), Some("development"));
        assert_eq!(environment("payments"), None);
        assert_eq!(environment("production"), Some("production"));
    }

    #[test]
    fn tasks_from_reasons() {
        let t = tasks("INC-1: roll back the bad deploy from this morning");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].what, "roll back/restart");
        let t = tasks("debug 502s from the ingress, need logs and port-forward");
        assert_eq!(t.len(), 2);
        assert!(tasks("customer data export for a GDPR request").is_empty());
        assert!(
            tasks("the catalog service").is_empty(),
            "no 'log' inside words"
        );
    }
}
