//! Choosing and printing records: `audit show` and the console's `:audit`.
//! Pure.

use chrono::{DateTime, Utc};

use super::chain::Sealed;
use super::record::Event;
use crate::domain::sanitize::inert;

/// `--request`, `--user`, `--since`: all must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// A request name, or `CLUSTER/NAME`.
    pub request: Option<String>,
    /// The actor or the requester.
    pub user: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    pub fn matches(&self, e: &Event) -> bool {
        let request_ok = self
            .request
            .as_deref()
            .is_none_or(|want| match want.split_once('/') {
                Some((cluster, name)) => e.cluster == cluster && e.request == name,
                None => e.request == want,
            });
        let user_ok = self
            .user
            .as_deref()
            .is_none_or(|u| e.user() == u || e.requester == u);
        let since_ok = self.since.is_none_or(|t| e.time >= t);
        request_ok && user_ok && since_ok
    }
}

/// One line per record: time, kind, who, what, why — inert and bounded.
pub fn table(records: &[Sealed]) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "SEQ".into(),
        "TIME (UTC)".into(),
        "EVENT".into(),
        "ACTOR".into(),
        "REQUEST".into(),
        "DETAIL".into(),
    ]];
    for s in records {
        let e = &s.event;
        let actor = match &e.actor {
            Some(a) => format!("{} ({})", a.user, a.verified_by),
            None => "-".into(),
        };
        let request = if e.request.is_empty() {
            "-".to_string()
        } else {
            format!("{}/{}", e.cluster, e.request)
        };
        let mut detail = e.message.clone();
        if let Some(risk) = &e.risk {
            detail = format!("[{risk}] {detail}");
        }
        rows.push([
            s.seq.to_string(),
            e.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.kind.as_str().to_string(),
            inert(&actor, 60).into_owned(),
            inert(&request, 80).into_owned(),
            inert(&detail, 120).into_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| unicode_width::UnicodeWidthStr::width(r[i].as_str()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i < 5 {
                let pad = widths[i] - unicode_width::UnicodeWidthStr::width(cell.as_str());
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            } else {
                out.push_str(cell);
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Actor, Kind};

    fn rec(kind: Kind, user: &str, request: &str, secs: i64) -> Sealed {
        let mut e = Event::new(kind, DateTime::from_timestamp(secs, 0).unwrap(), "x".into());
        e.actor = Some(Actor::new(user, "TokenReview"));
        e.cluster = "prod".into();
        e.request = request.into();
        e.requester = "alice".into();
        e.message = "why \u{1b}[2J".into();
        Sealed {
            seq: 1,
            prev: String::new(),
            hash: String::new(),
            event: e,
        }
    }

    #[test]
    fn filters_by_request_user_and_time() {
        let r = rec(Kind::Approved, "bob", "alice-x", 100);
        let f = |request: Option<&str>, user: Option<&str>, since: Option<i64>| Filter {
            request: request.map(String::from),
            user: user.map(String::from),
            since: since.and_then(|s| DateTime::from_timestamp(s, 0)),
        };
        assert!(f(Some("alice-x"), None, None).matches(&r.event));
        assert!(f(Some("prod/alice-x"), None, None).matches(&r.event));
        assert!(!f(Some("dev/alice-x"), None, None).matches(&r.event));
        assert!(f(None, Some("bob"), None).matches(&r.event));
        // The requester is "about" every event of her request.
        assert!(f(None, Some("alice"), None).matches(&r.event));
        assert!(!f(None, Some("carol"), None).matches(&r.event));
        assert!(f(None, None, Some(100)).matches(&r.event));
        assert!(!f(None, None, Some(101)).matches(&r.event));
    }

    #[test]
    fn the_table_is_inert() {
        let t = table(&[rec(Kind::Refused, "mallory", "alice-x", 0)]);
        assert!(!t.contains('\u{1b}'), "{t:?}");
        assert!(t.contains("attempt.refused"));
        assert!(t.contains("mallory (TokenReview)"));
    }
}
