//! The `/` filter: free text plus `user:`, `ns:`, `risk:`, `cluster:`,
//! `role:` terms, all of which must match (AND); `!` before a term keeps
//! what it does not match (k9s' inverse filter: `!alice`, `!ns:kube-system`).
//! Free text matches
//! case-insensitively anywhere in the name, requester, groups, role,
//! namespaces, cluster, reason and ticket. `risk:high` means high or worse.
//! A term the filter cannot understand (`risk:bogus`, `colour:red`) is an
//! error that names the valid ones, never a term that silently matches
//! nothing: it is left out of the matching until it is fixed.

use crate::domain::{AccessRequest, Severity};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    terms: Vec<Term>,
    error: Option<String>,
}

fn is_key(word: &str) -> bool {
    matches!(
        word,
        "user" | "u" | "ns" | "namespace" | "cluster" | "ctx" | "role" | "risk"
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Free(String),
    User(String),
    Namespace(String),
    Risk(Severity),
    Cluster(String),
    Role(String),
    /// `!TERM`: what the term does not match.
    Not(Box<Term>),
}

/// The keys a term may start with, as the error and the help name them.
pub const KEYS: &str = "user:, ns:, risk:, cluster:, role:";
/// The risk levels `risk:` takes (unique prefixes work too).
pub const LEVELS: &str = "info, medium, high or critical";

/// A risk level from a word: a known name or alias, or a unique prefix of
/// one (`cr`, `hi`), so a level being typed is not an error on its way.
fn level(word: &str) -> Option<Severity> {
    Severity::parse(word).or_else(|| {
        let all = [
            ("info", Severity::Info),
            ("medium", Severity::Medium),
            ("high", Severity::High),
            ("critical", Severity::Critical),
        ];
        let mut fits = all.iter().filter(|(n, _)| n.starts_with(word));
        match (fits.next(), fits.next()) {
            (Some((_, s)), None) if !word.is_empty() => Some(*s),
            _ => None,
        }
    })
}

impl Filter {
    pub fn parse(text: &str) -> Self {
        let mut error = None;
        let mut terms = Vec::new();
        for word in text.split_whitespace() {
            let (negated, word) = match word.strip_prefix('!') {
                // A lone `!` is a term being typed: it filters nothing yet.
                Some("") => continue,
                Some(rest) => (true, rest),
                None => (false, word),
            };
            let lower = word.to_lowercase();
            let term = match lower.split_once(':') {
                // A key being typed (`user:`) filters nothing yet.
                Some((_, "")) if is_key(&lower[..lower.len() - 1]) => continue,
                Some(("user" | "u", v)) => Term::User(v.into()),
                Some(("ns" | "namespace", v)) => Term::Namespace(v.into()),
                Some(("cluster" | "ctx", v)) => Term::Cluster(v.into()),
                Some(("role", v)) => Term::Role(v.into()),
                Some(("risk", v)) => match level(v) {
                    Some(s) => Term::Risk(s),
                    None => {
                        error.get_or_insert_with(|| {
                            format!(
                                "unknown risk level '{}': use {LEVELS} (at least)",
                                crate::domain::sanitize::inert(v, 24)
                            )
                        });
                        continue;
                    }
                },
                Some((key, _))
                    if key.chars().all(|c| c.is_ascii_alphabetic()) && !key.is_empty() =>
                {
                    error.get_or_insert_with(|| {
                        format!(
                            "unknown filter '{}:': use {KEYS} or free text",
                            crate::domain::sanitize::inert(key, 24)
                        )
                    });
                    continue;
                }
                _ => Term::Free(lower),
            };
            terms.push(if negated {
                Term::Not(Box::new(term))
            } else {
                term
            });
        }
        Self {
            text: text.to_string(),
            terms,
            error,
        }
    }

    /// Why part of the filter is not understood (that part is left out).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty() && self.error.is_none()
    }

    /// Whether a request passes every understood term.
    /// The same terms on an audit event: user: is the actor or the
    /// requester, risk: the diff's worst when the event knows it.
    pub fn matches_event(&self, e: &crate::audit::Event) -> bool {
        self.terms.iter().all(|t| t.matches_event(e))
    }

    pub fn matches(&self, req: &AccessRequest, worst: Option<Severity>) -> bool {
        self.matches_named(req, worst, &req.cluster)
    }

    /// As [`Self::matches`]; `cluster:` (and free text) also match
    /// `cluster_name`, what the console shows for the cluster.
    pub fn matches_named(
        &self,
        req: &AccessRequest,
        worst: Option<Severity>,
        cluster_name: &str,
    ) -> bool {
        if self.terms.is_empty() {
            return true;
        }
        self.matches_fields(&Fields {
            name: &req.name,
            cluster: &req.cluster,
            cluster_name,
            user: &req.requester.user,
            groups: req.requester.groups.iter().map(String::as_str).collect(),
            role: &req.role.name,
            namespaces: req.namespaces.iter().map(String::as_str).collect(),
            reason: &req.reason,
            ticket: req.ticket.as_deref(),
            worst,
        })
    }

    /// Whether every request this filter passes, `old` passed too (the
    /// text was only extended, as typing does): then the rows `old` shows
    /// can be filtered instead of every request. Each term of `old` must
    /// be implied by a term of this one: the same kind with a needle that
    /// contains the old one, or a risk at least as high.
    pub fn narrows(&self, old: &Filter) -> bool {
        old.terms.iter().all(|t| {
            self.terms.iter().any(|u| match (t, u) {
                (Term::Free(a), Term::Free(b))
                | (Term::User(a), Term::User(b))
                | (Term::Namespace(a), Term::Namespace(b))
                | (Term::Cluster(a), Term::Cluster(b))
                | (Term::Role(a), Term::Role(b)) => b.contains(a.as_str()),
                (Term::Risk(a), Term::Risk(b)) => b >= a,
                (Term::Not(a), Term::Not(b)) => a == b,
                _ => false,
            })
        })
    }

    /// Whether what a filter reads of a request passes every term.
    pub fn matches_fields(&self, f: &Fields<'_>) -> bool {
        self.terms.iter().all(|t| t.matches_fields(f))
    }
}

impl Term {
    fn matches_event(&self, e: &crate::audit::Event) -> bool {
        let has = |hay: &str, needle: &str| hay.to_lowercase().contains(needle);
        match self {
            Term::User(u) => has(e.user(), u) || has(&e.requester, u),
            Term::Namespace(n) => e.namespaces.iter().any(|ns| has(ns, n)),
            Term::Cluster(c) => has(&e.cluster, c),
            Term::Role(r) => has(&e.role, r),
            Term::Risk(s) => e
                .risk
                .as_deref()
                .and_then(Severity::parse)
                .is_some_and(|w| w >= *s),
            Term::Free(f) => {
                has(&e.request, f)
                    || has(e.user(), f)
                    || has(&e.requester, f)
                    || has(e.kind.as_str(), f)
                    || has(&e.message, f)
                    || has(&e.cluster, f)
            }
            Term::Not(t) => !t.matches_event(e),
        }
    }

    fn matches_fields(&self, f: &Fields<'_>) -> bool {
        let has = contains_folded;
        match self {
            Term::User(u) => has(f.user, u),
            Term::Namespace(n) => {
                if f.namespaces.is_empty() {
                    "cluster-wide".contains(n.as_str())
                } else {
                    f.namespaces.iter().any(|ns| has(ns, n))
                }
            }
            Term::Cluster(c) => has(f.cluster, c) || has(f.cluster_name, c),
            Term::Role(r) => has(f.role, r),
            Term::Risk(s) => f.worst.is_some_and(|w| w >= *s),
            Term::Free(x) => {
                has(f.name, x)
                    || has(f.user, x)
                    || f.groups.iter().any(|g| has(g, x))
                    || has(f.role, x)
                    || f.namespaces.iter().any(|ns| has(ns, x))
                    || has(f.cluster, x)
                    || has(f.cluster_name, x)
                    || has(f.reason, x)
                    || f.ticket.is_some_and(|t| has(t, x))
            }
            Term::Not(t) => !t.matches_fields(f),
        }
    }
}

/// What a filter reads of a request: borrowed, so a request kept compact
/// is filtered without decoding it whole (`app::store`).
#[derive(Debug)]
pub struct Fields<'a> {
    pub name: &'a str,
    pub cluster: &'a str,
    /// What the console shows for the cluster.
    pub cluster_name: &'a str,
    pub user: &'a str,
    pub groups: Vec<&'a str>,
    pub role: &'a str,
    pub namespaces: Vec<&'a str>,
    pub reason: &'a str,
    pub ticket: Option<&'a str>,
    pub worst: Option<Severity>,
}

/// Whether `hay`, lower-cased, contains `needle` (already lower-case):
/// without a copy when `hay` is ASCII (most names are).
fn contains_folded(hay: &str, needle: &str) -> bool {
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        hay.to_lowercase().contains(needle)
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
            uid: None,
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

    /// Issue 21, item 18: `!` keeps what a term does not match (k9s'
    /// inverse filter), never the text "!alice" taken literally.
    #[test]
    fn a_bang_inverts_a_term() {
        let r = req();
        assert!(!Filter::parse("!alice").matches(&r, None));
        assert!(Filter::parse("!bob").matches(&r, None));
        assert!(!Filter::parse("!ns:pay").matches(&r, None));
        assert!(Filter::parse("!user:bob stuck").matches(&r, None));
        assert!(!Filter::parse("!risk:high").matches(&r, Some(Severity::Critical)));
        assert!(Filter::parse("!risk:high").matches(&r, Some(Severity::Medium)));
        // A lone `!` being typed filters nothing yet.
        assert!(Filter::parse("!").is_empty());
    }

    #[test]
    fn cluster_matches_the_context_or_the_name_shown() {
        let r = req();
        let f = Filter::parse("cluster:eu-prod");
        assert!(!f.matches(&r, None));
        assert!(f.matches_named(&r, None, "eu-prod (gke)"));
        assert!(Filter::parse("cluster:prod-eu").matches_named(&r, None, "x"));
        assert!(Filter::parse("gke").matches_named(&r, None, "eu-prod (gke)"));
        assert!(!Filter::parse("cluster:staging").matches_named(&r, None, "eu-prod"));
    }

    #[test]
    fn risk_is_at_least() {
        let r = req();
        assert!(Filter::parse("risk:high").matches(&r, Some(Severity::Critical)));
        assert!(Filter::parse("risk:high").matches(&r, Some(Severity::High)));
        assert!(!Filter::parse("risk:high").matches(&r, Some(Severity::Medium)));
        assert!(!Filter::parse("risk:high").matches(&r, None));
        assert!(Filter::parse("risk:cr").matches(&r, Some(Severity::Critical)));
        assert!(!Filter::parse("risk:cr").matches(&r, Some(Severity::High)));
    }

    #[test]
    fn unknown_terms_are_errors_that_name_the_valid_ones() {
        let r = req();
        for (text, says) in [
            ("risk:bogus", "use info, medium, high or critical"),
            ("risk:none", "use info, medium, high or critical"),
            ("colour:red", "use user:, ns:, risk:, cluster:, role:"),
        ] {
            let f = Filter::parse(text);
            assert!(f.error().unwrap().contains(says), "{text}: {:?}", f.error());
            assert!(f.matches(&r, None), "{text}: the bad term is left out");
            assert!(!f.is_empty());
        }
        // Still being typed: a bare key, free text with a colon in it.
        assert_eq!(Filter::parse("user:").error(), None);
        assert_eq!(Filter::parse("INC-4411: stuck").error(), None);
        assert!(Filter::parse("user:").matches(&r, None));
    }
}
