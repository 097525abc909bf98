//! What a decider saw of a request, so a decision cannot land on
//! something else (a request changed, or deleted and asked again).

use super::AccessRequest;

/// A decision named a request that is no longer what was read: what it is
/// now, in one line (the backends answer it as a Conflict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Stale(pub String);

/// What a decider was shown of a request, which their decision names: the
/// stored object's uid (a request deleted and asked again under the same
/// name has another) and [`AccessRequest::seen`]. A decision on a request
/// that is no longer that is refused (Conflict) and says what it is now.
/// Empty: the decider names nothing (a verb that reads the request just
/// before deciding fills it from that read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub uid: Option<String>,
    pub digest: Option<String>,
}

impl Seen {
    pub fn of(req: &AccessRequest) -> Self {
        Self {
            uid: req.uid.clone(),
            digest: Some(req.seen()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.uid.is_none() && self.digest.is_none()
    }

    /// `Err(Conflict)` when `now` is not the request that was seen.
    pub fn check(&self, now: &AccessRequest) -> Result<(), Stale> {
        let what = || {
            let inert = |s: &str| super::sanitize::inert(s, 64).into_owned();
            format!(
                "it now asks for {} {} {} for {} by {}",
                now.role.kind,
                inert(&now.role.name),
                if now.namespaces.is_empty() {
                    "cluster-wide".to_string()
                } else {
                    format!("in {}", inert(&now.namespaces.join(",")))
                },
                super::duration::format(now.duration),
                inert(&now.requester.user),
            )
        };
        if let Some(uid) = &self.uid {
            if now.uid.as_ref() != Some(uid) {
                return Err(Stale(format!(
                    "{} is not the request you read: it was deleted and asked again ({}); nothing was changed: read it again",
                    now.name,
                    what()
                )));
            }
        }
        if let Some(digest) = &self.digest {
            if *digest != now.seen() {
                return Err(Stale(format!(
                    "{} changed since you read it ({}); nothing was changed: read it again",
                    now.name,
                    what()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Credentials, NewRequest, RoleRef, Subject};
    use chrono::DateTime;
    use std::time::Duration;

    fn req(role: &str, uid: &str) -> AccessRequest {
        let mut r = NewRequest {
            cluster: "prod".into(),
            requester: Subject::new("alice", &["dev"]),
            role: RoleRef::cluster_role(role),
            namespaces: vec!["payments".into()],
            duration: Duration::from_secs(1800),
            reason: "INC-1".into(),
            ticket: None,
            credentials: Credentials::Identity,
            extends: None,
        }
        .into_request(
            "alice-payments-x".into(),
            DateTime::from_timestamp(0, 0).unwrap(),
        );
        r.uid = Some(uid.into());
        r
    }

    #[test]
    fn a_decision_holds_only_on_what_was_seen() {
        let read = req("view", "u1");
        let seen = Seen::of(&read);
        assert_eq!(seen.check(&read), Ok(()));
        // Deleted and asked again under the same name, for more.
        let swapped = req("edit", "u2");
        let e = seen.check(&swapped).unwrap_err().to_string();
        assert!(
            e.contains("not the request you read") && e.contains("edit"),
            "{e}"
        );
        // The same uid with other content (a status write cannot do this;
        // a spec edit without the webhook could).
        let edited = req("edit", "u1");
        let e = seen.check(&edited).unwrap_err().to_string();
        assert!(e.contains("changed since you read it"), "{e}");
        // Naming nothing checks nothing; naming the uid alone checks it.
        assert_eq!(Seen::default().check(&swapped), Ok(()));
        let uid_only = Seen {
            uid: Some("u1".into()),
            digest: None,
        };
        assert_eq!(uid_only.check(&edited), Ok(()));
        assert!(uid_only.check(&swapped).is_err());
    }

    #[test]
    fn the_digest_covers_every_field_a_decider_reads() {
        let base = req("view", "u1");
        let d = base.seen();
        let mut variants: Vec<AccessRequest> = Vec::new();
        let mut v = base.clone();
        v.requester.groups.push("oncall".into());
        variants.push(v);
        let mut v = base.clone();
        v.namespaces.push("orders".into());
        variants.push(v);
        let mut v = base.clone();
        v.duration = Duration::from_secs(3600);
        variants.push(v);
        let mut v = base.clone();
        v.reason = "INC-2".into();
        variants.push(v);
        let mut v = base.clone();
        v.ticket = Some("T".into());
        variants.push(v);
        let mut v = base.clone();
        v.credentials = Credentials::Token;
        variants.push(v);
        let mut v = base.clone();
        v.extends = Some("g".into());
        variants.push(v);
        let mut v = base.clone();
        v.cluster = "dev".into();
        variants.push(v);
        for v in variants {
            assert_ne!(v.seen(), d, "{v:?}");
        }
        // The status is not what was decided on: a verdict note, a review
        // by someone else leave it.
        let mut v = base.clone();
        v.status.message = Some("note".into());
        assert_eq!(v.seen(), d);
    }
}
