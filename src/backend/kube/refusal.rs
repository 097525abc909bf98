//! The apiserver's refusals, read for what the caller needs to hear.
//!
//! Kubernetes' escalation check refuses a binding whose role holds
//! permissions the creator does not: `user "bob" (groups=[…]) is
//! attempting to grant RBAC permissions not currently held:` followed by
//! one line per missing rule, `{APIGroups:["apps"], Resources:["deployments"],
//! Verbs:["get" "list"]}` (for a big role, dozens of lines). That list is
//! summarised in one line — how many permissions, one example — and kept
//! whole for `-v`.

use std::sync::OnceLock;

use regex::Regex;

/// The marker of the escalation check's message.
const ESCALATION: &str = "is attempting to grant RBAC permissions not currently held:";

/// One missing rule, as the apiserver wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct MissingRule {
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
    pub verbs: Vec<String>,
}

impl MissingRule {
    /// The (verb, target) pairs this rule stands for.
    pub(crate) fn permissions(&self) -> usize {
        let groups = self.api_groups.len().max(1);
        self.verbs.len() * (self.resources.len() * groups + self.non_resource_urls.len())
    }

    /// The first permission, as a person would say it: `get pods`,
    /// `list deployments.apps`, `get configmaps/settings`, `get /healthz`.
    pub(crate) fn example(&self) -> Option<String> {
        let verb = self.verbs.first()?;
        if let Some(url) = self.non_resource_urls.first() {
            return Some(format!("{verb} {url}"));
        }
        let resource = self.resources.first()?;
        let group = self.api_groups.first().map(String::as_str).unwrap_or("");
        let mut target = if group.is_empty() {
            resource.clone()
        } else {
            format!("{resource}.{group}")
        };
        if let Some(name) = self.resource_names.first() {
            target = format!("{target}/{name}");
        }
        Some(format!("{verb} {target}"))
    }
}

/// An escalation refusal, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Escalation {
    /// The refused user, as the apiserver named them.
    pub user: String,
    pub rules: Vec<MissingRule>,
    /// The rule lines as written (for `-v`).
    pub lines: Vec<String>,
}

impl Escalation {
    pub(crate) fn permissions(&self) -> usize {
        self.rules.iter().map(MissingRule::permissions).sum()
    }

    pub(crate) fn example(&self) -> Option<String> {
        self.rules.iter().find_map(MissingRule::example)
    }
}

fn rule_field() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"(\w+):\[([^\]]*)\]").expect("a valid regex"))
}

fn quoted() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r#""((?:[^"\\]|\\.)*)""#).expect("a valid regex"))
}

fn user_name() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r#"user "((?:[^"\\]|\\.)*)""#).expect("a valid regex"))
}

/// Reads an escalation refusal out of an apiserver message; `None` for
/// any other message.
pub(crate) fn escalation(message: &str) -> Option<Escalation> {
    let at = message.find(ESCALATION)?;
    let user = user_name()
        .captures(&message[..at])
        .map(|c| c[1].to_string())
        .unwrap_or_default();
    let rest = &message[at + ESCALATION.len()..];
    // Newer apiservers append "; resolution errors: …" after the rules.
    let rest = rest.split("; resolution errors").next().unwrap_or(rest);
    let mut rules = Vec::new();
    let mut lines = Vec::new();
    for line in rest.lines().map(str::trim).filter(|l| l.starts_with('{')) {
        let mut rule = MissingRule::default();
        for field in rule_field().captures_iter(line) {
            let items: Vec<String> = quoted()
                .captures_iter(&field[2])
                .map(|c| c[1].replace("\\\"", "\"").replace("\\\\", "\\"))
                .collect();
            match &field[1] {
                "APIGroups" => rule.api_groups = items,
                "Resources" => rule.resources = items,
                "ResourceNames" => rule.resource_names = items,
                "NonResourceURLs" => rule.non_resource_urls = items,
                "Verbs" => rule.verbs = items,
                _ => {}
            }
        }
        lines.push(line.to_string());
        rules.push(rule);
    }
    Some(Escalation { user, rules, lines })
}

/// The part of an RBAC denial after "is forbidden: ", which says who may
/// not do what where (`User "alice" cannot patch resource …`).
pub(crate) fn denial(message: &str) -> &str {
    message
        .split_once("is forbidden: ")
        .map(|(_, why)| why)
        .unwrap_or(message)
        .trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As kube-apiserver 1.20 writes it (pkg/registry/rbac/validation).
    const REFUSAL: &str = "rolebindings.rbac.authorization.k8s.io \"portcullis-alice-payments-x\" is forbidden: user \"bob\" (groups=[\"oncall\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"configmaps\" \"endpoints\" \"pods\"], Verbs:[\"get\" \"list\" \"watch\"]}\n{APIGroups:[\"apps\"], Resources:[\"deployments\"], Verbs:[\"get\"]}\n{APIGroups:[\"\"], Resources:[\"configmaps\"], ResourceNames:[\"settings\"], Verbs:[\"update\"]}\n{NonResourceURLs:[\"/healthz\"], Verbs:[\"get\"]}";

    #[test]
    fn reads_the_escalation_check() {
        let e = escalation(REFUSAL).expect("an escalation");
        assert_eq!(e.user, "bob");
        assert_eq!(e.rules.len(), 4);
        assert_eq!(e.lines.len(), 4);
        assert_eq!(e.permissions(), 9 + 1 + 1 + 1);
        assert_eq!(e.example().as_deref(), Some("get configmaps"));
        assert_eq!(
            e.rules[1].example().as_deref(),
            Some("get deployments.apps")
        );
        assert_eq!(
            e.rules[2].example().as_deref(),
            Some("update configmaps/settings")
        );
        assert_eq!(e.rules[3].example().as_deref(), Some("get /healthz"));
    }

    #[test]
    fn resolution_errors_are_not_rules() {
        let text = format!("{REFUSAL}; resolution errors: [clusterroles.rbac.authorization.k8s.io \"x\" not found]");
        assert_eq!(escalation(&text).unwrap().rules.len(), 4);
    }

    #[test]
    fn other_refusals_are_not_escalations() {
        let m = "accessrequests.portcullis.dev is forbidden: User \"bob\" cannot create resource \"accessrequests\" in API group \"portcullis.dev\" at the cluster scope";
        assert!(escalation(m).is_none());
        assert!(denial(m).starts_with("User \"bob\" cannot create"));
    }
}
