//! Choosing and printing records: `audit show` and the console's `:audit`.
//! Pure.

use chrono::{DateTime, Utc};

use super::record::Event;
use crate::domain::sanitize::inert;

/// `--request`, `--user`, `--since`: all must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    /// A request name, or `CLUSTER/NAME`.
    pub request: Option<String>,
    /// The actor or the requester.
    pub user: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

impl Filter {
    pub(crate) fn matches(&self, e: &Event) -> bool {
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

/// An event in a few words, times in UTC as the record has them:
/// "approved by dana for 30m in payments (asked 2h in payments, orders)".
pub fn describe(e: &Event) -> String {
    describe_in(e, |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// [`describe`], with the times in it said by `clock` (the console says
/// them in the zone of the rest of its timeline, not in UTC beside local).
pub fn describe_in(e: &Event, clock: impl Fn(DateTime<Utc>) -> String) -> String {
    use super::record::Kind;
    let time = |v: &serde_json::Value| {
        v.as_str().map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| clock(t.with_timezone(&Utc)))
                .unwrap_or_else(|_| inert(s, 40).into_owned())
        })
    };
    let who = e
        .actor
        .as_ref()
        .map(|a| a.user.as_str())
        .unwrap_or("someone");
    let why = |prefix: &str| {
        if e.message.is_empty() {
            String::new()
        } else {
            format!("{prefix}\"{}\"", inert(&e.message, 200))
        }
    };
    let text = match e.kind {
        Kind::Created => {
            let scope = if e.namespaces.is_empty() {
                "cluster-wide".to_string()
            } else {
                format!("in {}", e.namespaces.join(", "))
            };
            let mut t = format!("asked by {who} for {} {scope}", e.role.replace('/', " "));
            if let Some(d) = e.detail["duration"].as_str() {
                t.push_str(&format!(" for {d}"));
            }
            if let Some(ticket) = e.detail["ticket"].as_str() {
                t.push_str(&format!(" (ticket {ticket})"));
            }
            t
        }
        Kind::Verdict => format!("policy: {}", inert(&e.message, 200)),
        Kind::Approved => {
            // How long and where, both sides: a grant narrowed to fewer
            // namespaces says so even when its duration is as asked.
            let side = |which: &str| {
                let d = &e.detail[which];
                let mut s = d["duration"].as_str().unwrap_or("?").to_string();
                let ns: Vec<&str> = d["namespaces"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|n| n.as_str()).collect())
                    .unwrap_or_default();
                if !ns.is_empty() {
                    s.push_str(&format!(" in {}", inert(&ns.join(", "), 200)));
                }
                s
            };
            let (got, asked) = (side("approved"), side("asked"));
            let mut t = format!("approved by {who} for {got}");
            if got != asked {
                t.push_str(&format!(" (asked {asked})"));
            }
            t + &why(": ")
        }
        Kind::Denied => format!("denied by {who}{}", why(": ")),
        Kind::Started => match time(&e.detail["expiresAt"]) {
            Some(end) => format!("grant started, ends {end}"),
            None => "grant started".to_string(),
        },
        Kind::CredentialsIssued => format!("credentials issued to {who}"),
        Kind::Shortened => format!(
            "shortened by {who} to end {}",
            time(&e.detail["to"]).unwrap_or_else(|| "?".into())
        ),
        Kind::Revoked => format!("revoked by {who}{}", why(": ")),
        Kind::Released => format!("released by {who} (done with it)"),
        Kind::Expired => "expired (ended by the reaper)".to_string(),
        Kind::Verified => inert(&e.message, 200).into_owned(),
        Kind::Withdrawn => format!("withdrawn by {who}"),
        Kind::TimedOut => "timed out: nobody decided".to_string(),
        Kind::Failed => format!("failed{}", why(": ")),
        Kind::Refused => format!(
            "refused {} by {who}{}",
            e.detail["action"].as_str().unwrap_or("an attempt"),
            why(": ")
        ),
        Kind::Rotated => format!("log rotated: {}", e.message),
    };
    inert(&text, 400).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{Actor, Kind};
    use crate::audit::Sealed;

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

    /// Issue 21, item 3: an approval narrowed to fewer namespaces says so,
    /// even with the duration as asked.
    #[test]
    fn an_approval_says_where_as_well_as_how_long() {
        let mut r = rec(Kind::Approved, "dana", "alice-x", 100).event;
        r.message = String::new();
        let detail = |got: &str, ns: &[&str]| {
            serde_json::json!({
                "approved": {"duration": got, "namespaces": ns},
                "asked": {"duration": "2h", "namespaces": ["payments", "orders"]},
            })
        };
        r.detail = detail("30m", &["payments"]);
        assert_eq!(
            describe(&r),
            "approved by dana for 30m in payments (asked 2h in payments, orders)"
        );
        r.detail = detail("2h", &["payments"]);
        assert_eq!(
            describe(&r),
            "approved by dana for 2h in payments (asked 2h in payments, orders)"
        );
        r.detail = detail("2h", &["payments", "orders"]);
        assert_eq!(describe(&r), "approved by dana for 2h in payments, orders");
    }
}
