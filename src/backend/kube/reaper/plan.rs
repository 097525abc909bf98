//! What the reaper does with one request, decided without IO.
//!
//! [`decide`] takes what a reconcile saw of one AccessRequest (the request
//! as read, its finalizer and deletion mark, the cluster's limits when they
//! could be read), the reaper's [`Rules`] and `now` (a time the apiserver
//! has surely reached), and returns an [`Intent`]: the one step to take now
//! and when to look again. The reconcile carries it out. Like
//! kube-runtime's `Action`, an intent says what, never how: every read and
//! write of a cluster, every count and every notice stays in the reconcile.
//!
//! One fact costs a read and matters only for a live grant that is not due
//! and not being undone: whether its requester released it (deleted its
//! recorded release binding). [`decide`] asks for it with
//! [`Intent::CheckRelease`]; the reconcile reads it, fills in
//! [`Observed::released`] and decides again.
//!
//! What a step finds out still shapes what follows it, and that stays with
//! the step: whether an end was this reaper's doing (counted) or found
//! nothing to end yet (a grant's expiry is tried again in a second), and
//! whether every object of an ended grant could be deleted (only then does
//! its finalizer go).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::backend::kube::{grant, release};
use crate::domain::{AccessRequest, Credentials, Phase, ValidationLimits};

/// After an end was tried: look again in a minute (the watch brings any
/// change sooner).
pub(crate) const AFTER_END: Duration = Duration::from_secs(60);

/// A due grant's end found nothing to end on its fresh read: again soon.
pub(crate) const EXPIRY_NOT_YET: Duration = Duration::from_secs(1);

/// A pending request while the cluster's limits cannot be read: its
/// approval timeout is unknown, so it is looked at again in a while.
pub(crate) const LIMITS_UNKNOWN: Duration = Duration::from_secs(30);

/// What the reaper saw of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed<'a> {
    pub req: &'a AccessRequest,
    /// The stored object carries the `portcullis.dev/grant` finalizer.
    pub has_finalizer: bool,
    /// The stored object has a deletion timestamp.
    pub deleting: bool,
    /// The cluster's limits; None when they could not be read (the
    /// defaults apply when they were never installed: that is Some).
    pub limits: Option<&'a ValidationLimits>,
    /// Whether its requester released the live grant (its recorded release
    /// binding is gone); None until looked at, after
    /// [`Intent::CheckRelease`].
    pub released: Option<bool>,
}

/// How this reaper runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// How long a claimed approval may lack its bindings' uids.
    pub incomplete_grace: Duration,
    /// Makes Token-mode accounts and release bindings, and says when it
    /// cannot delete them.
    pub provision_tokens: bool,
    /// Direct mode: the requests and their bindings on one cluster.
    pub direct: bool,
}

/// When to look at the request again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recheck {
    /// At this time (a deadline).
    At(DateTime<Utc>),
    /// After this long.
    After(Duration),
    /// Only when it (or its release binding) changes.
    OnChange,
}

/// Why a live grant is ended as Failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Fail closed: a live grant must say when it ends.
    NoExpiry,
    /// The approval died half-way: its bindings' uids are still missing
    /// after the grace.
    Incomplete,
}

impl Failure {
    /// What the request's `status.message` says.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Failure::NoExpiry => "a live grant without status.expiresAt is ended",
            Failure::Incomplete => {
                "the approval did not complete (its process stopped half-way); what it made was removed"
            }
        }
    }
}

/// The one step to take for a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Nothing to do now.
    Wait { recheck: Recheck },
    /// A pending request being deleted before its approval timeout: take
    /// the finalizer off, look again at the timeout.
    DropFinalizer { recheck_at: DateTime<Utc> },
    /// A pending request past its approval timeout: end it as Expired
    /// (counted as a timeout), look again after [`AFTER_END`].
    ExpirePending,
    /// A live grant at or past its end: end it as Expired now, verify
    /// apart; counted with its lag behind `end`.
    ExpireGrant { end: DateTime<Utc> },
    /// End a live grant as Failed (deleting what it made).
    Fail(Failure),
    /// Read whether the requester released the grant, then decide again
    /// with [`Observed::released`] filled in.
    CheckRelease,
    /// Its requester released it: end it in their name.
    EndReleased,
    /// A live grant that goes on: repair and provision what it lacks, look
    /// again at its end (or at the end of an approval's grace).
    Keep {
        add_finalizer: bool,
        provision_tokens: bool,
        provision_release: bool,
        recheck_at: DateTime<Utc>,
    },
    /// An ended request still holding the finalizer: delete what its status
    /// records, and let it go once nothing is left; `report_left` says what
    /// could not be deleted.
    Clean { report_left: bool },
}

/// The step for one request, at `now`.
pub(crate) fn decide(seen: &Observed<'_>, rules: &Rules, now: DateTime<Utc>) -> Intent {
    match seen.req.phase() {
        Phase::Pending => pending(seen, now),
        Phase::Active => active(seen, rules, now),
        _ if seen.has_finalizer => Intent::Clean {
            report_left: rules.provision_tokens,
        },
        _ => Intent::Wait {
            recheck: Recheck::OnChange,
        },
    }
}

fn pending(seen: &Observed<'_>, now: DateTime<Utc>) -> Intent {
    let Some(limits) = seen.limits else {
        return Intent::Wait {
            recheck: Recheck::After(LIMITS_UNKNOWN),
        };
    };
    let due = seen.req.created_at
        + TimeDelta::from_std(limits.approval_timeout).unwrap_or(TimeDelta::MAX);
    if due <= now {
        Intent::ExpirePending
    } else if seen.deleting && seen.has_finalizer {
        Intent::DropFinalizer { recheck_at: due }
    } else {
        Intent::Wait {
            recheck: Recheck::At(due),
        }
    }
}

fn active(seen: &Observed<'_>, rules: &Rules, now: DateTime<Utc>) -> Intent {
    let req = seen.req;
    let end = match req.status.expires_at {
        None => return Intent::Fail(Failure::NoExpiry),
        Some(end) if end <= now => return Intent::ExpireGrant { end },
        Some(end) => end,
    };
    // Without a recorded claim time the grace starts at each look.
    let claimed_at = req.status.decision.as_ref().map(|d| d.at).unwrap_or(now);
    let give_up =
        claimed_at + TimeDelta::from_std(rules.incomplete_grace).unwrap_or(TimeDelta::MAX);
    let incomplete = grant::incomplete(req);
    if incomplete && give_up <= now {
        return Intent::Fail(Failure::Incomplete);
    }
    // Only a recorded release binding can have been deleted.
    if release::recorded(req).is_some() {
        match seen.released {
            None => return Intent::CheckRelease,
            Some(true) => return Intent::EndReleased,
            Some(false) => {}
        }
    }
    Intent::Keep {
        add_finalizer: !seen.has_finalizer && !seen.deleting,
        provision_tokens: rules.provision_tokens
            && req.credentials == Credentials::Token
            && !grant::token_objects_recorded(req),
        // Direct mode: the requester's right to release it (under the
        // server they release through its API).
        provision_release: rules.provision_tokens
            && rules.direct
            && release::recorded(req).is_none()
            && !incomplete,
        recheck_at: if incomplete { end.min(give_up) } else { end },
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::backend::kube::{objects, SYSTEM_NAMESPACE};
    use crate::domain::request::BindingRef;
    use crate::domain::{Decision, NewRequest, RoleRef, Subject, Verdict};

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn rules() -> Rules {
        Rules {
            incomplete_grace: Duration::from_secs(30),
            provision_tokens: true,
            direct: true,
        }
    }

    /// An approval timeout of an hour.
    fn limits() -> ValidationLimits {
        ValidationLimits {
            approval_timeout: Duration::from_secs(3600),
            ..Default::default()
        }
    }

    /// Alice's request "g", created at t(0).
    fn request(phase: Option<Phase>) -> AccessRequest {
        let mut r = alices_request(t(0));
        r.status.phase = phase;
        r
    }

    /// Alice's request "g" for admin in payments, 10 minutes, created at
    /// `created` (the reaper's other tests start from it too).
    pub(in crate::backend::kube::reaper) fn alices_request(
        created: DateTime<Utc>,
    ) -> AccessRequest {
        NewRequest {
            cluster: "c".into(),
            requester: Subject::new("alice", &[]),
            role: RoleRef::cluster_role("admin"),
            namespaces: vec!["payments".into()],
            duration: Duration::from_secs(600),
            reason: "x".into(),
            ticket: None,
            credentials: Credentials::Identity,
            extends: None,
        }
        .into_request("g".into(), created)
    }

    fn binding(kind: &str, namespace: &str, name: &str, uid: Option<&str>) -> BindingRef {
        BindingRef {
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
            uid: uid.map(str::to_string),
        }
    }

    /// "g" approved by bob at t(0) until t(600), its binding's uid recorded.
    fn grant() -> AccessRequest {
        let mut r = request(Some(Phase::Active));
        r.status.decision = Some(Decision {
            by: "bob".into(),
            at: t(0),
            verdict: Verdict::Approved,
            reason: None,
            duration: Some(Duration::from_secs(600)),
            namespaces: vec!["payments".into()],
        });
        r.status.granted_at = Some(t(0));
        r.status.expires_at = Some(t(600));
        r.status.bindings = vec![binding(
            "RoleBinding",
            "payments",
            "portcullis-g",
            Some("b-uid"),
        )];
        r
    }

    /// Its approval died before recording the binding's uid.
    fn half_done() -> AccessRequest {
        let mut r = grant();
        r.status.bindings[0].uid = None;
        r
    }

    /// The reaper has made and recorded its release binding.
    fn with_release(mut r: AccessRequest) -> AccessRequest {
        let name = objects::release_name(&r.name);
        r.status.bindings.push(binding(
            "RoleBinding",
            SYSTEM_NAMESPACE,
            &name,
            Some("rel-uid"),
        ));
        r
    }

    /// Seen with its finalizer, not being deleted, limits unreadable.
    fn observed(req: &AccessRequest) -> Observed<'_> {
        Observed {
            req,
            has_finalizer: true,
            deleting: false,
            limits: None,
            released: None,
        }
    }

    fn keep(recheck_at: DateTime<Utc>) -> Intent {
        Intent::Keep {
            add_finalizer: false,
            provision_tokens: false,
            provision_release: true,
            recheck_at,
        }
    }

    #[test]
    fn a_pending_request_expires_at_the_approval_timeout() {
        let limits = limits();
        for phase in [None, Some(Phase::Pending)] {
            let r = request(phase);
            let seen = Observed {
                limits: Some(&limits),
                has_finalizer: false,
                ..observed(&r)
            };
            assert_eq!(
                decide(&seen, &rules(), t(3599)),
                Intent::Wait {
                    recheck: Recheck::At(t(3600))
                }
            );
            assert_eq!(decide(&seen, &rules(), t(3600)), Intent::ExpirePending);
            assert_eq!(decide(&seen, &rules(), t(90_000)), Intent::ExpirePending);
        }
    }

    #[test]
    fn pending_requests_wait_while_the_limits_are_unreadable() {
        let r = request(None);
        let seen = Observed {
            deleting: true,
            ..observed(&r)
        };
        assert_eq!(
            decide(&seen, &rules(), t(90_000)),
            Intent::Wait {
                recheck: Recheck::After(LIMITS_UNKNOWN)
            }
        );
    }

    #[test]
    fn a_pending_request_being_deleted_lets_go_of_its_finalizer() {
        let limits = limits();
        let r = request(Some(Phase::Pending));
        let seen = Observed {
            limits: Some(&limits),
            deleting: true,
            ..observed(&r)
        };
        assert_eq!(
            decide(&seen, &rules(), t(10)),
            Intent::DropFinalizer {
                recheck_at: t(3600)
            }
        );
        // Past its timeout it is expired instead (which lets it go too).
        assert_eq!(decide(&seen, &rules(), t(3600)), Intent::ExpirePending);
        // Without the finalizer, or not being deleted: nothing to drop.
        let wait = Intent::Wait {
            recheck: Recheck::At(t(3600)),
        };
        let bare = Observed {
            has_finalizer: false,
            ..seen
        };
        assert_eq!(decide(&bare, &rules(), t(10)), wait);
        let kept = Observed {
            deleting: false,
            ..seen
        };
        assert_eq!(decide(&kept, &rules(), t(10)), wait);
    }

    #[test]
    fn a_live_grant_without_an_end_fails_closed() {
        let mut r = grant();
        r.status.expires_at = None;
        let seen = observed(&r);
        assert_eq!(
            decide(&seen, &rules(), t(10)),
            Intent::Fail(Failure::NoExpiry)
        );
        assert_eq!(
            Failure::NoExpiry.message(),
            "a live grant without status.expiresAt is ended"
        );
    }

    #[test]
    fn a_grant_ends_at_its_end_whatever_else_holds() {
        let r = grant();
        let end = Intent::ExpireGrant { end: t(600) };
        assert_eq!(decide(&observed(&r), &rules(), t(599)), keep(t(600)));
        assert_eq!(decide(&observed(&r), &rules(), t(600)), end);
        assert_eq!(
            decide(&observed(&r), &rules(), t(700)),
            Intent::ExpireGrant { end: t(600) }
        );
        // Half-done, released, being deleted: still simply expired.
        let r = with_release(half_done());
        let seen = Observed {
            deleting: true,
            released: Some(true),
            ..observed(&r)
        };
        assert_eq!(decide(&seen, &rules(), t(600)), end);
    }

    #[test]
    fn a_half_done_approval_is_undone_after_the_grace() {
        let r = half_done();
        // Within the grace: kept, looked at again when it runs out (and
        // given no release binding yet).
        assert_eq!(
            decide(&observed(&r), &rules(), t(29)),
            Intent::Keep {
                add_finalizer: false,
                provision_tokens: false,
                provision_release: false,
                recheck_at: t(30),
            }
        );
        assert_eq!(
            decide(&observed(&r), &rules(), t(30)),
            Intent::Fail(Failure::Incomplete)
        );
        assert_eq!(
            Failure::Incomplete.message(),
            "the approval did not complete (its process stopped half-way); what it made was removed"
        );
        // Undone before any look at a release.
        let released = with_release(half_done());
        let seen = Observed {
            released: Some(true),
            ..observed(&released)
        };
        assert_eq!(
            decide(&seen, &rules(), t(30)),
            Intent::Fail(Failure::Incomplete)
        );
        // A grace that outlasts the grant: looked at again at its end.
        let mut late = half_done();
        late.status.decision.as_mut().unwrap().at = t(590);
        assert_eq!(
            decide(&observed(&late), &rules(), t(595)),
            Intent::Keep {
                add_finalizer: false,
                provision_tokens: false,
                provision_release: false,
                recheck_at: t(600),
            }
        );
    }

    #[test]
    fn without_a_claim_time_the_grace_starts_at_each_look() {
        let mut r = half_done();
        r.status.decision = None;
        assert_eq!(
            decide(&observed(&r), &rules(), t(100)),
            Intent::Keep {
                add_finalizer: false,
                provision_tokens: false,
                provision_release: false,
                recheck_at: t(130),
            }
        );
        let no_grace = Rules {
            incomplete_grace: Duration::ZERO,
            ..rules()
        };
        assert_eq!(
            decide(&observed(&r), &no_grace, t(100)),
            Intent::Fail(Failure::Incomplete)
        );
    }

    #[test]
    fn a_recorded_release_binding_is_looked_at_before_upkeep() {
        let r = with_release(grant());
        assert_eq!(decide(&observed(&r), &rules(), t(10)), Intent::CheckRelease);
        let released = Observed {
            released: Some(true),
            ..observed(&r)
        };
        assert_eq!(decide(&released, &rules(), t(10)), Intent::EndReleased);
        let kept = Observed {
            released: Some(false),
            ..observed(&r)
        };
        assert_eq!(
            decide(&kept, &rules(), t(10)),
            Intent::Keep {
                add_finalizer: false,
                provision_tokens: false,
                provision_release: false,
                recheck_at: t(600),
            }
        );
        // Nothing recorded (or no uid yet): nothing to look at.
        assert_eq!(decide(&observed(&grant()), &rules(), t(10)), keep(t(600)));
        let mut unrecorded = with_release(grant());
        unrecorded.status.bindings[1].uid = None;
        assert_eq!(
            decide(&observed(&unrecorded), &rules(), t(10)),
            keep(t(600))
        );
    }

    #[test]
    fn a_live_grant_gets_its_finalizer_back_unless_deleted() {
        let r = grant();
        let bare = Observed {
            has_finalizer: false,
            ..observed(&r)
        };
        assert_eq!(
            decide(&bare, &rules(), t(10)),
            Intent::Keep {
                add_finalizer: true,
                provision_tokens: false,
                provision_release: true,
                recheck_at: t(600),
            }
        );
        let deleting = Observed {
            deleting: true,
            ..bare
        };
        assert_eq!(decide(&deleting, &rules(), t(10)), keep(t(600)));
    }

    #[test]
    fn token_accounts_are_made_until_recorded() {
        let mut r = grant();
        r.credentials = Credentials::Token;
        let make = Intent::Keep {
            add_finalizer: false,
            provision_tokens: true,
            provision_release: true,
            recheck_at: t(600),
        };
        assert_eq!(decide(&observed(&r), &rules(), t(10)), make);
        // A ServiceAccount without its uid is not recorded yet.
        r.status.bindings.push(binding(
            "ServiceAccount",
            SYSTEM_NAMESPACE,
            "portcullis-g",
            None,
        ));
        assert_eq!(decide(&observed(&r), &rules(), t(10)), make);
        r.status.bindings[1].uid = Some("sa-uid".into());
        assert_eq!(decide(&observed(&r), &rules(), t(10)), keep(t(600)));
        // Even half-done (the release binding waits for completion).
        let mut r = half_done();
        r.credentials = Credentials::Token;
        assert_eq!(
            decide(&observed(&r), &rules(), t(10)),
            Intent::Keep {
                add_finalizer: false,
                provision_tokens: true,
                provision_release: false,
                recheck_at: t(30),
            }
        );
    }

    #[test]
    fn only_a_provisioning_direct_reaper_makes_accounts_and_release_bindings() {
        let mut r = grant();
        r.credentials = Credentials::Token;
        let nothing = Intent::Keep {
            add_finalizer: false,
            provision_tokens: false,
            provision_release: false,
            recheck_at: t(600),
        };
        let console = Rules {
            provision_tokens: false,
            ..rules()
        };
        assert_eq!(decide(&observed(&r), &console, t(10)), nothing);
        let server = Rules {
            direct: false,
            ..rules()
        };
        assert_eq!(
            decide(&observed(&r), &server, t(10)),
            Intent::Keep {
                add_finalizer: false,
                provision_tokens: true,
                provision_release: false,
                recheck_at: t(600),
            }
        );
    }

    #[test]
    fn an_ended_request_is_cleaned_while_it_holds_the_finalizer() {
        let console = Rules {
            provision_tokens: false,
            ..rules()
        };
        for phase in [
            Phase::Denied,
            Phase::Expired,
            Phase::Revoked,
            Phase::Released,
            Phase::Withdrawn,
            Phase::Failed,
        ] {
            let mut r = grant();
            r.status.phase = Some(phase);
            let seen = Observed {
                deleting: true,
                ..observed(&r)
            };
            assert_eq!(
                decide(&seen, &rules(), t(10)),
                Intent::Clean { report_left: true }
            );
            assert_eq!(
                decide(&seen, &console, t(10)),
                Intent::Clean { report_left: false }
            );
            let bare = Observed {
                has_finalizer: false,
                ..seen
            };
            assert_eq!(
                decide(&bare, &rules(), t(10)),
                Intent::Wait {
                    recheck: Recheck::OnChange
                }
            );
        }
    }
}
