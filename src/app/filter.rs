//! The `/` filter: free text plus `user:`, `ns:`, `risk:`, `cluster:`,
//! `role:` terms, all of which must match (AND). Free text matches
//! case-insensitively anywhere in the name, requester, groups, role,
//! namespaces, cluster, reason and ticket. `risk:high` means high or worse.

use crate::domain::{AccessRequest, Severity};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Free(String),
    User(String),
    Namespace(String),
    Risk(Severity),
    Cluster(String),
    Role(String),
}

impl Filter {
    pub fn parse(text: &str) -> Self {
        let terms = text
            .split_whitespace()
            .map(|word| {
                let lower = word.to_lowercase();
                match lower.split_once(':') {
                    Some(("user" | "u", v)) => Term::User(v.into()),
                    Some(("ns" | "namespace", v)) => Term::Namespace(v.into()),
                    Some(("cluster" | "ctx", v)) => Term::Cluster(v.into()),
                    Some(("role", v)) => Term::Role(v.into()),
                    Some(("risk", v)) => match Severity::parse(v) {
                        Some(s) => Term::Risk(s),
                        None => Term::Free(lower.clone()),
                    },
                    _ => Term::Free(lower),
                }
            })
            .collect();
        Self {
            text: text.to_string(),
            terms,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the filter has a term it could not understand as a key (a
    /// `risk:` with an unknown level is kept as free text).
    pub fn matches(&self, req: &AccessRequest, worst: Option<Severity>) -> bool {
        let has = |hay: &str, needle: &str| hay.to_lowercase().contains(needle);
        self.terms.iter().all(|t| match t {
            Term::User(u) => has(&req.requester.user, u),
            Term::Namespace(n) => {
                if req.namespaces.is_empty() {
                    "cluster-wide".contains(n.as_str())
                } else {
                    req.namespaces.iter().any(|ns| has(ns, n))
                }
            }
            Term::Cluster(c) => has(&req.cluster, c),
            Term::Role(r) => has(&req.role.name, r),
            Term::Risk(s) => worst.is_some_and(|w| w >= *s),
            Term::Free(f) => {
                has(&req.name, f)
                    || has(&req.requester.user, f)
                    || req.requester.groups.iter().any(|g| has(g, f))
                    || has(&req.role.name, f)
                    || req.namespaces.iter().any(|ns| has(ns, f))
                    || has(&req.cluster, f)
                    || has(&req.reason, f)
                    || req.ticket.as_deref().is_some_and(|t| has(t, f))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::request::Status;
    use crate::domain::{Credentials, RoleRef, Subject};

    fn req() -> AccessRequest {
        AccessRequest {
            name: "alice-payments-1".into(),
            cluster: "prod-eu-west".into(),
            created_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            requester: Subject::new("alice", &["payments-team"]),
            role: RoleRef::cluster_role("edit"),
            namespaces: vec!["payments".into()],
            duration: std::time::Duration::from_secs(60),
            reason: "INC-4411 stuck".into(),
            ticket: Some("INC-4411".into()),
            credentials: Credentials::Identity,
            extends: None,
            status: Status::default(),
            malformed: None,
        }
    }

    #[test]
    fn terms_and_free_text() {
        let r = req();
        assert!(Filter::parse("").matches(&r, None));
        assert!(Filter::parse("user:ali").matches(&r, None));
        assert!(!Filter::parse("user:bob").matches(&r, None));
        assert!(Filter::parse("ns:pay").matches(&r, None));
        assert!(!Filter::parse("ns:orders").matches(&r, None));
        assert!(Filter::parse("4411").matches(&r, None));
        assert!(Filter::parse("STUCK user:alice").matches(&r, None));
        assert!(!Filter::parse("stuck user:bob").matches(&r, None));
        assert!(Filter::parse("cluster:prod role:edit").matches(&r, None));
        assert!(Filter::parse("payments-team").matches(&r, None));
    }

    #[test]
    fn risk_is_at_least() {
        let r = req();
        assert!(Filter::parse("risk:high").matches(&r, Some(Severity::Critical)));
        assert!(Filter::parse("risk:high").matches(&r, Some(Severity::High)));
        assert!(!Filter::parse("risk:high").matches(&r, Some(Severity::Medium)));
        assert!(!Filter::parse("risk:high").matches(&r, None));
        // Unknown level is free text, which does not match here.
        assert!(!Filter::parse("risk:bogus").matches(&r, Some(Severity::Critical)));
    }
}
