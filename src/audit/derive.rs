//! Audit events from what changed in an AccessRequest. Pure.
//!
//! The server, the reaper and the console all see requests change; each
//! turns a change (before → after) into the same events with the same ids,
//! so the call site that knows the caller and the watch that sees every
//! change (including the reaper's) write each event once between them.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::record::{Actor, Event, Kind, Outcome};
use crate::domain::{AccessRequest, Phase, Verdict};

/// What the observer knows beyond the objects.
#[derive(Debug, Clone)]
pub struct Context {
    /// The verified caller, when this change is the caller's own action.
    pub actor: Option<Actor>,
    /// How names written in the object were verified: `TokenReview` when
    /// only the server writes requests, `apiserver` under the webhook,
    /// `kubeconfig` in direct mode without it.
    pub recorded_by: String,
    /// The diff's worst severity, when the observer has the RBAC.
    pub risk: Option<String>,
    /// The observer's clock: when a change without its own time (a
    /// shorten, an end without `endedAt`) was seen.
    pub now: DateTime<Utc>,
}

/// Fills in which request an event is about. Names too can be a
/// requester's text (a malformed object, a path): inert and bounded like
/// every other field.
pub fn about(e: &mut Event, r: &AccessRequest) {
    e.cluster = name(&r.cluster);
    e.request = name(&r.name);
    e.requester = name(&r.requester.user);
    e.role = name(&match r.role.kind {
        crate::domain::RoleKind::ClusterRole => format!("ClusterRole/{}", r.role.name),
        crate::domain::RoleKind::Role => format!("Role/{}", r.role.name),
    });
    e.namespaces = r
        .granted_namespaces()
        .iter()
        .take(64)
        .map(|n| name(n))
        .collect();
}

/// The policy's verdict on `r`, said in `summary`; one event per distinct
/// verdict (the summary is part of the id).
pub fn verdict(
    r: &AccessRequest,
    summary: &str,
    allowed: bool,
    detail: Value,
    ctx: &Context,
) -> Event {
    let mut e = base(r, Kind::Verdict, ctx.now, summary, ctx);
    e.actor = Some(Actor::new("policy", "policy"));
    e.message = clean(summary);
    e.detail = detail;
    if !allowed {
        e.outcome = Outcome::Failure;
    }
    e
}

/// A stable id: the same transition of the same request, whoever sees it.
pub fn event_id(r: &AccessRequest, kind: Kind, discriminator: &str) -> String {
    let mut h = Sha256::new();
    h.update(r.cluster.as_bytes());
    h.update([0]);
    h.update(r.name.as_bytes());
    h.update([0]);
    // Seconds: the wire (JSON, Kubernetes) keeps no finer time, and every
    // observer must compute the same id.
    h.update(r.created_at.timestamp().to_be_bytes());
    h.update(kind.as_str().as_bytes());
    h.update([0]);
    h.update(discriminator.as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn base(r: &AccessRequest, kind: Kind, time: DateTime<Utc>, disc: &str, ctx: &Context) -> Event {
    let mut e = Event::new(kind, time, event_id(r, kind, disc));
    about(&mut e, r);
    e.risk = ctx.risk.clone();
    e
}

/// A token handed to a grant's requester (server mode: the server minted
/// it): who got it, for which grant and ServiceAccount, until when. Never
/// the token. Each issue is its own event.
pub fn credentials_issued(
    r: &AccessRequest,
    actor: Actor,
    at: DateTime<Utc>,
    until: DateTime<Utc>,
    account: &str,
) -> Event {
    let disc = at.timestamp_nanos_opt().unwrap_or_default().to_string();
    let mut e = Event::new(
        Kind::CredentialsIssued,
        at,
        event_id(r, Kind::CredentialsIssued, &disc),
    );
    about(&mut e, r);
    e.message = format!(
        "a token for ServiceAccount {} until {}",
        name(account),
        ts(until)
    );
    e.detail = json!({"serviceAccount": name(account), "until": ts(until)});
    e.actor = Some(actor);
    e
}

fn named(user: &str, ctx: &Context) -> Actor {
    // The caller's verified identity wins over a name read from the object
    // when they are the same person (it carries groups and how).
    match &ctx.actor {
        Some(a) if a.user == user => a.clone(),
        _ if user.starts_with("policy:") => Actor::new(name(user), "policy"),
        _ => Actor::new(name(user), ctx.recorded_by.clone()),
    }
}

/// Text from a requester or the cluster, bounded and inert: the log is
/// read with `cat` and `less` too. The request object keeps the original.
fn clean(text: &str) -> String {
    crate::domain::sanitize::inert(text, 2000).into_owned()
}

/// A name (cluster, request, user, role, namespace): inert, at most 253
/// characters (Kubernetes' longest name).
fn name(text: &str) -> String {
    crate::domain::sanitize::inert(text, 253).into_owned()
}

fn secs(d: std::time::Duration) -> String {
    humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string()
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The events between `old` (None: never seen) and `new`, oldest first.
pub fn changes(old: Option<&AccessRequest>, new: &AccessRequest, ctx: &Context) -> Vec<Event> {
    if new.malformed.is_some() && old.is_none() {
        let mut e = base(new, Kind::Created, new.created_at, "", ctx);
        e.actor = Some(named(&new.requester.user, ctx));
        e.message = "malformed request (shown as INVAL; can only be denied)".into();
        e.outcome = Outcome::Failure;
        return vec![e];
    }
    let mut out = Vec::new();
    if old.is_none() {
        out.push(created(new, ctx));
    }
    reviewed(old, new, ctx, &mut out);
    let was = old.map(AccessRequest::phase);
    let now = new.phase();
    let ended_at = new.status.ended_at.unwrap_or(ctx.now);
    if now != Phase::Pending
        && was.is_none_or(|p| p == Phase::Pending)
        && new.status.granted_at.is_some()
    {
        out.push(started(new, ctx));
    }
    out.extend(shortened(old, new, ctx));
    if now.is_terminal() && was != Some(now) {
        out.extend(ended(new, ended_at, ctx));
    }
    out.extend(verified(old, new, ended_at, ctx));
    out
}

/// A request asked for.
fn created(new: &AccessRequest, ctx: &Context) -> Event {
    let mut e = base(new, Kind::Created, new.created_at, "", ctx);
    let mut actor = named(&new.requester.user, ctx);
    if actor.groups.is_empty() {
        actor.groups = new.requester.groups.clone();
    }
    e.actor = Some(actor);
    e.namespaces = new.namespaces.iter().take(64).map(|n| name(n)).collect();
    e.message = clean(&new.reason);
    e.detail = json!({
        "duration": secs(new.duration),
        "ticket": new.ticket.as_deref().map(name),
        "extends": new.extends.as_deref().map(name),
        "credentials": format!("{:?}", new.credentials),
    });
    e
}

/// Reviews (and a decision written without one) not seen before.
fn reviewed(old: Option<&AccessRequest>, new: &AccessRequest, ctx: &Context, out: &mut Vec<Event>) {
    let before = old.map(|o| &o.status);
    let seen = |by: &str, at: DateTime<Utc>| {
        before.is_some_and(|s| {
            s.reviews.iter().any(|r| r.by == by && r.at == at)
                || s.decision
                    .as_ref()
                    .is_some_and(|d| d.by == by && d.at == at)
        })
    };
    let mut reviews: Vec<crate::domain::request::Review> = new.status.reviews.clone();
    if let Some(d) = &new.status.decision {
        if !reviews.iter().any(|r| r.by == d.by && r.at == d.at) {
            reviews.push(crate::domain::request::Review {
                by: d.by.clone(),
                at: d.at,
                verdict: d.verdict,
                duration: d.duration,
                namespaces: d.namespaces.clone(),
                reason: d.reason.clone(),
            });
        }
    }
    for crate::domain::request::Review {
        by,
        at,
        verdict,
        duration,
        namespaces,
        reason,
    } in reviews
    {
        if seen(&by, at) {
            continue;
        }
        let kind = match verdict {
            Verdict::Approved => Kind::Approved,
            Verdict::Denied => Kind::Denied,
        };
        let disc = format!("{by}\u{0}{}", at.timestamp());
        let mut e = base(new, kind, at, &disc, ctx);
        e.actor = Some(named(&by, ctx));
        e.message = reason.as_deref().map(clean).unwrap_or_default();
        if kind == Kind::Approved {
            let ns = if namespaces.is_empty() {
                new.namespaces.clone()
            } else {
                namespaces
            };
            e.namespaces = ns.clone();
            e.detail = json!({
                "approved": {"duration": duration.map(secs), "namespaces": ns},
                "asked": {"duration": secs(new.duration), "namespaces": new.namespaces},
                "narrower": duration.is_some_and(|d| d < new.duration) || e.namespaces.len() < new.namespaces.len(),
            });
        }
        out.push(e);
    }
}

/// The grant began.
fn started(new: &AccessRequest, ctx: &Context) -> Event {
    let at = new.status.granted_at.unwrap_or(new.created_at);
    let mut e = base(new, Kind::Started, at, "", ctx);
    e.actor = new.status.decision.as_ref().map(|d| named(&d.by, ctx));
    e.detail = json!({
        "grantedAt": ts(at),
        "expiresAt": new.status.expires_at.map(ts),
        "bindings": new.status.bindings.iter().map(|b| match &b.namespace {
            Some(ns) => format!("{}/{ns}/{}", b.kind, b.name),
            None => format!("{}/{}", b.kind, b.name),
        }).collect::<Vec<_>>(),
    });
    e.message = match new.status.expires_at {
        Some(end) => format!("granted until {}", ts(end)),
        None => "granted".into(),
    };
    e
}

/// The end moved earlier while the grant was live.
fn shortened(old: Option<&AccessRequest>, new: &AccessRequest, ctx: &Context) -> Option<Event> {
    let (o, to) = (old?, new.status.expires_at?);
    let from = o.status.expires_at.filter(|from| to < *from)?;
    if new.phase() != Phase::Active || o.phase() != Phase::Active {
        return None;
    }
    let mut e = base(new, Kind::Shortened, ctx.now, &ts(to), ctx);
    e.actor = ctx.actor.clone();
    e.message = format!("ends {} instead of {}", ts(to), ts(from));
    e.detail = json!({"from": ts(from), "to": ts(to)});
    Some(e)
}

/// How it ended (denials are reviews).
fn ended(new: &AccessRequest, ended_at: DateTime<Utc>, ctx: &Context) -> Option<Event> {
    let end = |kind: Kind| base(new, kind, ended_at, "", ctx);
    let released = || {
        let mut e = end(Kind::Released);
        e.actor = Some(named(&new.requester.user, ctx));
        e
    };
    let e = match new.phase() {
        // A release stored before `Released` existed reads as one too.
        Phase::Released | Phase::Revoked if new.released() => released(),
        Phase::Released | Phase::Revoked => {
            let mut e = end(Kind::Revoked);
            e.actor = new
                .status
                .revoked_by
                .as_deref()
                .map(|u| named(u, ctx))
                .or(ctx.actor.clone());
            e.message = new
                .status
                .revoke_reason
                .as_deref()
                .map(clean)
                .unwrap_or_default();
            e
        }
        Phase::Expired if new.status.granted_at.is_none() => {
            let mut e = end(Kind::TimedOut);
            e.actor = Some(Actor::reaper());
            e.message = "nobody decided before the approval timeout".into();
            e
        }
        Phase::Expired => {
            let mut e = end(Kind::Expired);
            e.actor = Some(Actor::reaper());
            e.message = new
                .status
                .expires_at
                .map(|t| format!("ended at {}", ts(t)))
                .unwrap_or_default();
            e
        }
        Phase::Withdrawn => {
            let mut e = end(Kind::Withdrawn);
            e.actor = Some(named(&new.requester.user, ctx));
            e
        }
        Phase::Failed => {
            let mut e = end(Kind::Failed);
            e.actor = ctx.actor.clone();
            e.message = new.status.message.as_deref().map(clean).unwrap_or_default();
            e
        }
        // Denials are the reviews above.
        Phase::Denied | Phase::Pending | Phase::Active => return None,
    };
    Some(e)
}

/// The apiserver's word after the end: verified, or still granted.
fn verified(
    old: Option<&AccessRequest>,
    new: &AccessRequest,
    ended_at: DateTime<Utc>,
    ctx: &Context,
) -> Option<Event> {
    let msg = new
        .status
        .message
        .as_deref()
        .filter(|m| m.contains("verified"))?;
    let changed = old.and_then(|o| o.status.message.as_deref()) != Some(msg);
    if !changed
        || !matches!(
            new.phase(),
            Phase::Revoked | Phase::Released | Phase::Expired
        )
    {
        return None;
    }
    let mut e = base(new, Kind::Verified, ended_at, msg, ctx);
    e.actor = Some(Actor::new("portcullis:verifier", "apiserver"));
    e.message = clean(msg);
    if msg.contains("still granted") {
        e.outcome = Outcome::Failure;
    }
    Some(e)
}

/// A request's whole story as far as its object tells it (the console's
/// timeline for a request seen for the first time).
pub fn timeline(r: &AccessRequest, ctx: &Context) -> Vec<Event> {
    let mut events = changes(None, r, ctx);
    events.sort_by_key(|e| e.time);
    events
}

/// A refused attempt, at the call site that refused it.
pub fn refused(
    actor: Option<Actor>,
    time: DateTime<Utc>,
    action: &str,
    target: Option<(&str, &str)>,
    status: u16,
    why: &str,
) -> Event {
    let mut h = Sha256::new();
    h.update(time.timestamp_nanos_opt().unwrap_or(0).to_be_bytes());
    h.update(action.as_bytes());
    h.update(why.as_bytes());
    if let Some(a) = &actor {
        h.update(a.user.as_bytes());
    }
    let id: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut e = Event::new(Kind::Refused, time, id);
    e.actor = actor;
    // Cluster, name and action come from the caller's URL: anything.
    if let Some((cluster, request)) = target {
        e.cluster = name(cluster);
        e.request = name(request);
    }
    e.message = clean(why);
    e.detail = json!({"action": crate::domain::sanitize::inert(action, 64), "status": status});
    e
}

/// Whatever the JSON, a value for `detail`.
pub fn detail_of(e: &Event, key: &str) -> Option<Value> {
    e.detail.get(key).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::request::{Decision, Review, Status};
    use crate::domain::{Credentials, RoleRef, Subject};
    use chrono::TimeDelta;
    use std::time::Duration;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + min * 60, 0).unwrap()
    }

    fn pending() -> AccessRequest {
        AccessRequest {
            name: "alice-payments-1".into(),
            uid: None,
            cluster: "prod".into(),
            created_at: t(0),
            requester: Subject::new("alice", &["dev"]),
            role: RoleRef::cluster_role("edit"),
            namespaces: vec!["payments".into(), "orders".into()],
            duration: Duration::from_secs(7200),
            reason: "INC-1 \u{1b}[2Jstuck".into(),
            ticket: Some("INC-1".into()),
            credentials: Credentials::Identity,
            extends: None,
            status: Status::default(),
            malformed: None,
        }
    }

    fn approved(by: &str, at: DateTime<Utc>) -> AccessRequest {
        let mut r = pending();
        let review = Review {
            by: by.into(),
            at,
            verdict: Verdict::Approved,
            duration: Some(Duration::from_secs(1800)),
            namespaces: vec!["payments".into()],
            reason: Some("one is enough".into()),
        };
        r.status.reviews = vec![review.clone()];
        r.status.decision = Some(Decision {
            by: by.into(),
            at,
            verdict: Verdict::Approved,
            reason: review.reason.clone(),
            duration: review.duration,
            namespaces: review.namespaces.clone(),
        });
        r.status.granted_at = Some(at);
        r.status.expires_at = Some(at + TimeDelta::minutes(30));
        r.status.phase = Some(Phase::Active);
        r
    }

    fn ctx(actor: Option<&str>) -> Context {
        Context {
            actor: actor.map(|u| Actor::new(u, "TokenReview")),
            recorded_by: "TokenReview".into(),
            risk: None,
            now: t(20),
        }
    }

    fn kinds(events: &[Event]) -> Vec<Kind> {
        events.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn a_new_request_is_created_once_and_nothing_else() {
        let r = pending();
        let e = changes(None, &r, &ctx(None));
        assert_eq!(kinds(&e), vec![Kind::Created]);
        assert_eq!(e[0].actor.as_ref().unwrap().user, "alice");
        assert_eq!(e[0].actor.as_ref().unwrap().groups, vec!["dev".to_string()]);
        assert!(!e[0].message.contains('\u{1b}'), "{:?}", e[0].message);
        assert!(
            changes(Some(&r), &r, &ctx(None)).is_empty(),
            "no change, no event"
        );
    }

    #[test]
    fn an_approval_says_what_was_granted_against_what_was_asked() {
        let before = pending();
        let after = approved("dana", t(5));
        let e = changes(Some(&before), &after, &ctx(None));
        assert_eq!(kinds(&e), vec![Kind::Approved, Kind::Started]);
        let a = &e[0];
        assert_eq!(a.actor.as_ref().unwrap().user, "dana");
        assert_eq!(a.detail["approved"]["duration"], "30m");
        assert_eq!(a.detail["asked"]["duration"], "2h");
        assert_eq!(a.detail["narrower"], true);
        assert_eq!(a.namespaces, vec!["payments".to_string()]);
        assert_eq!(e[1].actor.as_ref().unwrap().user, "dana");
        // Seen by another observer, or again: the same ids.
        let again = changes(Some(&before), &after, &ctx(Some("dana")));
        assert_eq!(
            e.iter().map(|x| &x.id).collect::<Vec<_>>(),
            again.iter().map(|x| &x.id).collect::<Vec<_>>()
        );
        // The caller's verified identity carries its groups.
        assert_eq!(again[0].actor.as_ref().unwrap().verified_by, "TokenReview");
    }

    #[test]
    fn reviews_before_the_threshold_are_events_without_a_grant() {
        let before = pending();
        let mut one = pending();
        one.status.reviews = vec![Review {
            by: "bob".into(),
            at: t(3),
            verdict: Verdict::Approved,
            duration: None,
            namespaces: vec![],
            reason: None,
        }];
        assert_eq!(
            kinds(&changes(Some(&before), &one, &ctx(None))),
            vec![Kind::Approved]
        );
        assert!(changes(Some(&one), &one, &ctx(None)).is_empty());
    }

    #[test]
    fn shorten_revoke_and_verification() {
        let live = approved("dana", t(5));
        let mut shorter = live.clone();
        shorter.status.expires_at = Some(t(10));
        let e = changes(Some(&live), &shorter, &ctx(Some("erin")));
        assert_eq!(kinds(&e), vec![Kind::Shortened]);
        assert_eq!(e[0].actor.as_ref().unwrap().user, "erin");
        assert_eq!(e[0].time, t(20), "when it was seen");
        let mut revoked = shorter.clone();
        revoked.status.phase = Some(Phase::Revoked);
        revoked.status.ended_at = Some(t(8));
        revoked.status.revoked_by = Some("erin".into());
        revoked.status.revoke_reason = Some("done".into());
        let e = changes(Some(&shorter), &revoked, &ctx(None));
        assert_eq!(kinds(&e), vec![Kind::Revoked]);
        assert_eq!((e[0].message.as_str(), e[0].time), ("done", t(8)));
        let mut verified = revoked.clone();
        verified.status.message = Some("verified: 2 of 8 sampled permissions denied; still granted by other bindings (left in place): x".into());
        let e = changes(Some(&revoked), &verified, &ctx(None));
        assert_eq!(kinds(&e), vec![Kind::Verified]);
        assert_eq!(e[0].outcome, Outcome::Failure, "still granted is a failure");
        assert!(changes(Some(&verified), &verified, &ctx(None)).is_empty());
    }

    #[test]
    fn a_release_is_recorded_as_released_by_its_requester() {
        let live = approved("dana", t(5));
        let mut released = live.clone();
        released.release("alice", t(9)).unwrap();
        let e = changes(Some(&live), &released, &ctx(None));
        assert_eq!(kinds(&e), vec![Kind::Released]);
        assert_eq!(e[0].kind.as_str(), "grant.released");
        assert_eq!(e[0].actor.as_ref().unwrap().user, "alice");
        // As stored before `Released` existed: revoked by the requester.
        let mut legacy = released.clone();
        legacy.status.phase = Some(Phase::Revoked);
        assert_eq!(
            kinds(&changes(Some(&live), &legacy, &ctx(None))),
            vec![Kind::Released]
        );
    }

    #[test]
    fn every_end_has_its_kind_and_actor() {
        let live = approved("dana", t(5));
        let end = |phase: Phase, from: &AccessRequest| {
            let mut r = from.clone();
            r.status.phase = Some(phase);
            r.status.ended_at = Some(t(35));
            changes(Some(from), &r, &ctx(None))
        };
        let e = end(Phase::Expired, &live);
        assert_eq!(kinds(&e), vec![Kind::Expired]);
        assert_eq!(e[0].actor, Some(Actor::reaper()));
        let p = pending();
        assert_eq!(kinds(&end(Phase::Expired, &p)), vec![Kind::TimedOut]);
        let w = end(Phase::Withdrawn, &p);
        assert_eq!(kinds(&w), vec![Kind::Withdrawn]);
        assert_eq!(w[0].actor.as_ref().unwrap().user, "alice");
        let f = end(Phase::Failed, &p);
        assert_eq!(
            (kinds(&f), f[0].outcome),
            (vec![Kind::Failed], Outcome::Failure)
        );
        let mut denied = p.clone();
        denied.status.phase = Some(Phase::Denied);
        denied.status.decision = Some(Decision {
            by: "erin".into(),
            at: t(4),
            verdict: Verdict::Denied,
            reason: Some("no ticket".into()),
            duration: None,
            namespaces: vec![],
        });
        let d = changes(Some(&p), &denied, &ctx(None));
        assert_eq!(kinds(&d), vec![Kind::Denied]);
        assert_eq!(
            (d[0].message.as_str(), d[0].outcome),
            ("no ticket", Outcome::Failure)
        );
    }

    #[test]
    fn a_request_first_seen_decided_tells_its_whole_story_in_order() {
        let r = approved("dana", t(5));
        let e = timeline(&r, &ctx(None));
        assert_eq!(
            kinds(&e),
            vec![Kind::Created, Kind::Approved, Kind::Started]
        );
    }

    #[test]
    fn refusals_bound_what_the_caller_typed() {
        let long = "A".repeat(100_000);
        let e = refused(
            None,
            t(1),
            &long,
            Some(("c\u{9b}1", &long)),
            404,
            "no such action",
        );
        assert!(e.request.chars().count() <= 253);
        assert!(e.detail["action"].as_str().unwrap().chars().count() <= 64);
        assert!(!e.cluster.contains('\u{9b}'));
    }
}
