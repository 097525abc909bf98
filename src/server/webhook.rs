//! The admission webhook for direct mode (optional): the apiserver asks it
//! about every write to `accessrequests` and `accessrequests/status`, with
//! the writer's own `userInfo`, so what RBAC cannot say is enforced here:
//!
//! - a new request names its creator as requester, and only groups the
//!   creator has;
//! - a request's spec never changes;
//! - the requester never writes a status, and a decision is recorded under
//!   the name of whoever writes it, never the requester's;
//! - terminal phases never change (but for the verification note);
//! - `expiresAt` only moves earlier, and never past the decision's time
//!   plus its duration, with the decision's time the server's now;
//! - only the requester deletes a pending request.
//!
//! The server's and the reaper's identities (`webhook.privileged`) carry
//! out the lifecycle and are let through.
//!
//! Reviews are appended one at a time, each in its writer's name, so no
//! approver forges a second approval. When the server has a policy, the
//! webhook enforces it on direct-mode writes too ([`policy_rules`]): a
//! request the policy refuses is never created, an extension names the
//! requester's own live grant, only the policy's approvers review, a grant
//! starts only with the policy's number of approvals and never longer than
//! its maximum. The cluster a review is about is the last segment of the
//! webhook URL's path, `/validate/CLUSTER` (default: the server's first
//! cluster): the apiserver refuses query parameters in a webhook URL.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use super::Shared;
use crate::backend::RequestKey;
use crate::crd::wire;
use crate::domain::{AccessRequest, Phase, Subject, Verdict};
use crate::policy::Decision;

/// How far a decision's time may be from the server's clock.
pub const CLOCK_TOLERANCE: TimeDelta = TimeDelta::seconds(120);

#[derive(Debug, Clone)]
pub struct Webhook {
    pub privileged: Vec<String>,
}

/// The apiserver's question, reduced to what the rules read.
#[derive(Debug, Clone)]
pub struct Review {
    pub operation: String,
    pub subresource: String,
    pub user: String,
    pub groups: Vec<String>,
    pub object: Option<Value>,
    pub old: Option<Value>,
}

impl Review {
    /// What an AdmissionReview (v1, as JSON) asks, as the rules read it;
    /// anything missing or of the wrong type reads as empty.
    pub fn from_admission(review: &Value) -> Self {
        let req = &review["request"];
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        Review {
            operation: req["operation"].as_str().unwrap_or_default().into(),
            subresource: req["subResource"].as_str().unwrap_or_default().into(),
            user: req["userInfo"]["username"]
                .as_str()
                .unwrap_or_default()
                .into(),
            groups: strings(&req["userInfo"]["groups"]),
            object: Some(req["object"].clone()).filter(|v| !v.is_null()),
            old: Some(req["oldObject"].clone()).filter(|v| !v.is_null()),
        }
    }
}

fn read(v: &Option<Value>) -> Option<AccessRequest> {
    v.as_ref().map(|o| wire::request_from_json("webhook", o))
}

fn time(v: &Option<Value>, path: &[&str]) -> Option<DateTime<Utc>> {
    let mut x = v.as_ref()?;
    for p in path {
        x = x.get(p)?;
    }
    DateTime::parse_from_rfc3339(x.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Status writes by anyone but the privileged identities may name only
/// the objects Portcullis makes for this request, and never change a
/// uid already recorded.
fn check_bindings(old: &AccessRequest, new: &AccessRequest) -> Result<(), String> {
    use crate::backend::kube::objects::makes_for;
    for b in &new.status.bindings {
        if !makes_for(new, &b.kind, b.namespace.as_deref(), &b.name) {
            return Err(format!(
                "status.bindings: {} {}{} is not an object Portcullis makes for {}",
                crate::domain::sanitize::inert(&b.kind, 40),
                b.namespace
                    .as_deref()
                    .map(|ns| format!("{}/", crate::domain::sanitize::inert(ns, 63)))
                    .unwrap_or_default(),
                crate::domain::sanitize::inert(&b.name, 80),
                old.name
            ));
        }
    }
    // A recorded uid never changes, and a recorded object is never
    // dropped from the list (only what an end deletes is in it).
    for o in old.status.bindings.iter().filter(|o| o.uid.is_some()) {
        let now = new
            .status
            .bindings
            .iter()
            .find(|b| b.kind == o.kind && b.namespace == o.namespace && b.name == o.name);
        match now {
            Some(b) if b.uid == o.uid => {}
            Some(_) => {
                return Err(format!(
                    "status.bindings: the uid recorded for {} never changes",
                    crate::domain::sanitize::inert(&o.name, 80)
                ))
            }
            None => {
                return Err(format!(
                    "status.bindings: {} is recorded and stays listed until its grant is ended by Portcullis",
                    crate::domain::sanitize::inert(&o.name, 80)
                ))
            }
        }
    }
    Ok(())
}

/// The verdict on one write: `Err(why)` refuses it.
pub fn decide(hook: &Webhook, r: &Review, now: DateTime<Utc>) -> Result<(), String> {
    if hook.privileged.contains(&r.user) {
        return Ok(());
    }
    let new = read(&r.object);
    let old = read(&r.old);
    match (r.operation.as_str(), r.subresource.as_str()) {
        ("CREATE", "") => decide_create(r, new),
        ("UPDATE", "") => decide_spec_update(r),
        ("UPDATE", "status") => decide_status_update(r, new, old, now),
        ("DELETE", _) => decide_delete(r, old),
        _ => Ok(()),
    }
}

/// A new request: its creator is its requester, with only groups they have.
fn decide_create(r: &Review, new: Option<AccessRequest>) -> Result<(), String> {
    let new = new.ok_or("no object")?;
    if new.requester.user != r.user {
        return Err(format!(
            "spec.requester.user must be you ({}), not {}",
            r.user, new.requester.user
        ));
    }
    if let Some(g) = new.requester.groups.iter().find(|g| !r.groups.contains(g)) {
        return Err(format!("spec.requester.groups: you are not in {g}"));
    }
    Ok(())
}

/// A write to the request itself: its spec never changes.
fn decide_spec_update(r: &Review) -> Result<(), String> {
    let spec = |v: &Option<Value>| v.as_ref().and_then(|o| o.get("spec")).cloned();
    if spec(&r.object) != spec(&r.old) {
        return Err("spec is immutable: withdraw and ask again".into());
    }
    Ok(())
}

/// A status write: never by the requester, never on a terminal phase, and
/// each part of the status only as the rules below let it change.
fn decide_status_update(
    r: &Review,
    new: Option<AccessRequest>,
    old: Option<AccessRequest>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let (new, old) = (new.ok_or("no object")?, old.ok_or("no old object")?);
    if r.user == old.requester.user {
        return Err("the requester never writes a request's status".into());
    }
    if old.phase().is_terminal() {
        return terminal_unchanged(&old, &new);
    }
    phase_moves_forward(&old, &new)?;
    // The objects a status names are the ones ending the grant
    // deletes: only names Portcullis gives this request's objects,
    // and a recorded uid never changes (no status can point the
    // server or the reaper at a standing binding).
    check_bindings(&old, &new)?;
    check_reviews(r, &old, &new, now)?;
    check_decision(r, &old, &new, now)?;
    if new.status.revoked_by.is_some()
        && new.status.revoked_by != old.status.revoked_by
        && new.status.revoked_by.as_deref() != Some(r.user.as_str())
    {
        return Err(format!("status.revokedBy must be you ({})", r.user));
    }
    if new.phase() == Phase::Active {
        check_expiry(r, &old, &new)?;
    }
    Ok(())
}

/// A terminal phase never changes, nor its status but for the message
/// (the verification note).
fn terminal_unchanged(old: &AccessRequest, new: &AccessRequest) -> Result<(), String> {
    let mut a = new.status.clone();
    let mut b = old.status.clone();
    a.message = None;
    b.message = None;
    if a != b || new.phase() != old.phase() {
        return Err(format!(
            "{} is {}: terminal phases never change",
            old.name,
            old.phase()
        ));
    }
    Ok(())
}

/// Phases move only forward: a live grant never goes back to Pending,
/// where nothing ends it and its bindings stay.
fn phase_moves_forward(old: &AccessRequest, new: &AccessRequest) -> Result<(), String> {
    // `Released` is written in the requester's name by the reaper or the
    // server only (both exempt): an approver writing it would put their
    // end of a grant on the requester's record.
    let forward = match old.phase() {
        Phase::Pending => new.phase() != Phase::Released,
        Phase::Active => matches!(
            new.phase(),
            Phase::Active | Phase::Expired | Phase::Revoked | Phase::Failed
        ),
        _ => false,
    };
    if !forward {
        return Err(format!(
            "status.phase: {} never becomes {}",
            old.phase(),
            new.phase()
        ));
    }
    Ok(())
}

/// Reviews only grow, one at a time, in the writer's name, at the
/// server's now.
fn check_reviews(
    r: &Review,
    old: &AccessRequest,
    new: &AccessRequest,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let (before, after) = (&old.status.reviews, &new.status.reviews);
    if after.len() < before.len() || after[..before.len()] != before[..] {
        return Err("status.reviews only grow: earlier reviews never change".into());
    }
    if after.len() > before.len() + 1 {
        return Err("status.reviews: one review at a time".into());
    }
    if let Some(added) = after.get(before.len()) {
        if added.by != r.user {
            return Err(format!(
                "status.reviews: a review is by you ({}), not {}",
                r.user, added.by
            ));
        }
        if (added.at - now).abs() > CLOCK_TOLERANCE {
            return Err(format!(
                "status.reviews: {} is not now by the server's clock ({})",
                added.at, now
            ));
        }
    }
    Ok(())
}

/// A changed decision is never removed, and is the writer's, made now.
fn check_decision(
    r: &Review,
    old: &AccessRequest,
    new: &AccessRequest,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if new.status.decision != old.status.decision {
        let d = new
            .status
            .decision
            .as_ref()
            .ok_or("a decision is never removed")?;
        if d.by != r.user {
            return Err(format!(
                "status.decision.by must be you ({}), not {}",
                r.user, d.by
            ));
        }
        if (d.at - now).abs() > CLOCK_TOLERANCE {
            return Err(format!(
                "status.decision.at {} is not now by the server's clock ({})",
                d.at, now
            ));
        }
    }
    Ok(())
}

/// A live grant's end: set, only ever earlier, and never past its
/// decision's time plus its duration.
fn check_expiry(r: &Review, old: &AccessRequest, new: &AccessRequest) -> Result<(), String> {
    let end =
        time(&r.object, &["status", "expiresAt"]).ok_or("a live grant needs status.expiresAt")?;
    if old.phase() == Phase::Active {
        if let Some(before) = old.status.expires_at {
            if end > before {
                return Err("status.expiresAt only moves earlier".into());
            }
        }
    }
    let d = new
        .status
        .decision
        .as_ref()
        .ok_or("a live grant needs a decision")?;
    // Checked: a duration no clock can add refuses the write.
    let limit = TimeDelta::from_std(d.duration.unwrap_or_default())
        .ok()
        .and_then(|span| d.at.checked_add_signed(span))
        .and_then(|t| t.checked_add_signed(TimeDelta::seconds(1)))
        .ok_or("status.decision.duration is longer than any grant can be")?;
    if end > limit {
        return Err(format!(
            "status.expiresAt {end} is past the decision's time plus its duration ({limit})"
        ));
    }
    Ok(())
}

/// A delete: a pending request only by its requester, a live grant's
/// only by Portcullis.
fn decide_delete(r: &Review, old: Option<AccessRequest>) -> Result<(), String> {
    let old = old.ok_or("no old object")?;
    match old.phase() {
        Phase::Pending if old.requester.user == r.user => Ok(()),
        Phase::Pending => Err(format!(
            "only its requester ({}) withdraws a pending request",
            old.requester.user
        )),
        Phase::Active => Err("a live grant's request is deleted by Portcullis when it ends".into()),
        _ => Ok(()),
    }
}

/// The policy's rules on one write, given the policy's `decision` on the
/// request as it stood before the write (on a create: as asked), and the
/// live grant an extension names (`live`: looked up by the caller).
pub fn policy_rules(
    decision: &Decision,
    r: &Review,
    cluster: &str,
    live: Option<Option<&AccessRequest>>,
) -> Result<(), String> {
    let on = |mut req: AccessRequest| {
        req.cluster = cluster.to_string();
        req
    };
    let new = read(&r.object).map(on);
    let old = read(&r.old).map(on);
    match (r.operation.as_str(), r.subresource.as_str()) {
        ("CREATE", "") => {
            let new = new.ok_or("no object")?;
            if !decision.allowed() {
                return Err(format!("refused by policy: {}", decision.deny.join("; ")));
            }
            if let (Some(of), Some(live)) = (&new.extends, live) {
                let live = live.ok_or_else(|| format!("spec.extends: no grant named {of}"))?;
                new.check_extends(live)
                    .map_err(|e| format!("spec.extends: {e}"))?;
            }
            Ok(())
        }
        ("UPDATE", "status") => {
            let (new, old) = (new.ok_or("no object")?, old.ok_or("no old object")?);
            if old.phase() != Phase::Pending {
                return Ok(());
            }
            let writer = Subject {
                user: r.user.clone(),
                groups: r.groups.clone(),
            };
            let reviewed = new.status.reviews.len() > old.status.reviews.len();
            let approved = new.phase() == Phase::Active;
            if reviewed || approved {
                decision.may_approve(&writer)?;
            }
            if approved {
                let mut by: Vec<&str> = new
                    .status
                    .reviews
                    .iter()
                    .filter(|v| v.verdict == Verdict::Approved && v.by != new.requester.user)
                    .map(|v| v.by.as_str())
                    .collect();
                if let Some(d) = &new.status.decision {
                    by.push(&d.by);
                }
                by.sort_unstable();
                by.dedup();
                if by.len() < decision.approvals_required.max(1) {
                    return Err(format!(
                        "policy: {} of {} approvals so far; it needs {} distinct approvers",
                        by.len(),
                        decision.approvals_required,
                        decision.approvals_required
                    ));
                }
                let granted = new
                    .status
                    .decision
                    .as_ref()
                    .and_then(|d| d.duration)
                    .unwrap_or_default();
                if let Some(max) = decision.max_duration {
                    if granted > max {
                        return Err(format!(
                            "policy: at most {} may be granted",
                            crate::domain::duration::format(max)
                        ));
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `POST /validate/{cluster}` (or `/validate`, the server's first
/// cluster): an AdmissionReview (v1) in, its response out.
pub async fn validate(
    State(s): State<Shared>,
    cluster: Option<axum::extract::Path<String>>,
    parts: axum::http::request::Parts,
    Json(review): Json<Value>,
) -> Result<Json<Value>, super::error::Failure> {
    // The cluster is in the path (`/validate/NAME`): the apiserver refuses
    // query parameters in a webhook URL. `/validate` alone judges the
    // server's first cluster.
    let cluster = match cluster {
        Some(axum::extract::Path(c)) if s.authority.clusters().contains(&c) => Some(c),
        Some(axum::extract::Path(c)) => {
            return Err(crate::api::ApiError::new(
                404,
                "NotFound",
                format!(
                    "no cluster '{}' on this server: the webhook URL ends /validate/CLUSTER with one of {}",
                    crate::domain::sanitize::inert(&c, 64),
                    s.authority.clusters().join(", ")
                ),
            )
            .into())
        }
        None => None,
    };
    let req = &review["request"];
    let uid = req["uid"].clone();
    let Some(hook) = &s.webhook else {
        return Ok(Json(answer(
            uid,
            Err("this server does not serve the webhook".into()),
        )));
    };
    let r = Review::from_admission(&review);
    let mut verdict = decide(hook, &r, s.authority.now());
    if verdict.is_ok() && !hook.privileged.contains(&r.user) && s.policy.is_some() {
        verdict = policy_verdict(&s, &r, cluster.clone());
    }
    if let Err(why) = &verdict {
        s.metrics.refused("webhook");
        tracing::info!(user = %r.user, operation = %r.operation, subresource = %r.subresource, %why, "webhook refused");
        // On the record like every refusal, in the apiserver's word for
        // who wrote (the apiserver authenticated them).
        let name = req["name"].as_str().unwrap_or_default();
        let key = RequestKey {
            cluster: cluster
                .clone()
                .or_else(|| s.authority.clusters().into_iter().next())
                .unwrap_or_default(),
            name: name.to_string(),
        };
        let who = Subject {
            user: r.user.clone(),
            groups: r.groups.clone(),
        };
        let action = format!(
            "admission: {} accessrequests{}",
            r.operation.to_lowercase(),
            if r.subresource.is_empty() {
                String::new()
            } else {
                format!("/{}", r.subresource)
            }
        );
        // Nothing authenticates the webhook's caller (the apiserver, or
        // anyone who reaches the port), so the record says whose name the
        // call gave, not that it was verified, and it is rate-limited by
        // address like any unverified refusal.
        let address = super::extract::peer(&parts.extensions);
        if s.refusals.admit(
            &format!("webhook:{}", crate::domain::sanitize::inert(&who.user, 64)),
            &format!("address:{address}"),
            false,
        ) {
            let e = crate::api::ApiError::new(403, "Forbidden", why.clone());
            s.record_refusal_as(
                Some(&who),
                "the webhook call's userInfo (the caller is not authenticated)",
                &action,
                (!name.is_empty()).then_some(&key),
                &e,
            );
        }
    }
    Ok(Json(answer(uid, verdict)))
}

/// [`policy_rules`] with the server's decision and its view of live grants.
fn policy_verdict(s: &Shared, r: &Review, cluster: Option<String>) -> Result<(), String> {
    let cluster = cluster
        .or_else(|| s.authority.clusters().into_iter().next())
        .unwrap_or_default();
    let subject = match (r.operation.as_str(), r.subresource.as_str()) {
        ("CREATE", "") => &r.object,
        ("UPDATE", "status") => &r.old,
        _ => return Ok(()),
    };
    let Some(mut req) = read(subject) else {
        return Ok(());
    };
    req.cluster = cluster.clone();
    let decision = match s.decide(&req) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(()),
        // Fail closed: the policy could not be evaluated.
        Err(e) => return Err(format!("policy: {e}")),
    };
    let live = req.extends.as_ref().map(|of| {
        s.hub.request(&RequestKey {
            cluster: cluster.clone(),
            name: of.clone(),
        })
    });
    policy_rules(&decision, r, &cluster, live.as_ref().map(Option::as_ref))
}

fn answer(uid: Value, verdict: Result<(), String>) -> Value {
    let response = match verdict {
        Ok(()) => json!({"uid": uid, "allowed": true}),
        Err(why) => json!({"uid": uid, "allowed": false,
            "status": {"code": 403, "reason": "Forbidden", "message": format!("portcullis: {why}")}}),
    };
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// What `portcullis crds --webhook URL --ca-file F` prints.
pub fn configuration(url: &str, ca_pem: &[u8]) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: portcullis
  labels:
    app.kubernetes.io/managed-by: portcullis
webhooks:
- name: accessrequests.portcullis.dev
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 5
  clientConfig:
    url: "{url}"
    caBundle: {ca}
  rules:
  - apiGroups: [portcullis.dev]
    apiVersions: ["*"]
    operations: [CREATE, UPDATE, DELETE]
    resources: [accessrequests, accessrequests/status]
    scope: Cluster
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(requester: &str, status: Value) -> Value {
        json!({"metadata": {"name": "r", "creationTimestamp": "2026-11-27T00:00:00Z"},
               "spec": {"requester": {"user": requester, "groups": ["dev"]},
                        "role": {"kind": "ClusterRole", "name": "edit"}, "namespaces": ["payments"],
                        "duration": "1h", "reason": "x"},
               "status": status})
    }

    fn review(
        op: &str,
        sub: &str,
        user: &str,
        object: Option<Value>,
        old: Option<Value>,
    ) -> Review {
        Review {
            operation: op.into(),
            subresource: sub.into(),
            user: user.into(),
            groups: vec!["dev".into()],
            object,
            old,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn active(by: &str, at: &str, expires: &str) -> Value {
        json!({"phase": "Active", "decision": {"by": by, "at": at, "verdict": "Approved", "duration": "1h", "namespaces": ["payments"]},
               "grantedAt": at, "expiresAt": expires})
    }

    const HOOK: fn() -> Webhook = || Webhook {
        privileged: vec!["system:serviceaccount:portcullis-system:portcullis-server".into()],
    };

    #[test]
    fn a_status_names_only_what_portcullis_makes_for_the_request() {
        let pending = obj("alice", json!({}));
        let with = |bindings: Value| obj("alice", json!({"bindings": bindings}));
        let write = |new: Value, old: Value, user: &str| {
            decide(
                &HOOK(),
                &review("UPDATE", "status", user, Some(new), Some(old)),
                now(),
            )
        };
        // A standing binding, by its own name or a name of another
        // request's objects: refused.
        for b in [
            json!([{"kind": "RoleBinding", "namespace": "payments", "name": "team-admins", "uid": "u1"}]),
            json!([{"kind": "ClusterRoleBinding", "name": "portcullis-server", "uid": "u1"}]),
            json!([{"kind": "RoleBinding", "namespace": "payments", "name": "portcullis-other", "uid": "u1"}]),
            json!([{"kind": "Secret", "namespace": "payments", "name": "portcullis-r"}]),
        ] {
            let e = write(with(b.clone()), pending.clone(), "bob").unwrap_err();
            assert!(e.contains("not an object Portcullis makes"), "{b}: {e}");
        }
        // The request's own binding: its claim, then its uid once.
        let claim =
            json!([{"kind": "RoleBinding", "namespace": "payments", "name": "portcullis-r"}]);
        assert_eq!(write(with(claim.clone()), pending.clone(), "bob"), Ok(()));
        let recorded = json!([{"kind": "RoleBinding", "namespace": "payments", "name": "portcullis-r", "uid": "u1"}]);
        assert_eq!(write(with(recorded.clone()), with(claim), "bob"), Ok(()));
        // A recorded uid never changes (to point at another object).
        let swapped = json!([{"kind": "RoleBinding", "namespace": "payments", "name": "portcullis-r", "uid": "u2"}]);
        let e = write(with(swapped.clone()), with(recorded), "bob").unwrap_err();
        assert!(e.contains("never changes"), "{e}");
        // The privileged identities carry out the lifecycle.
        let server = "system:serviceaccount:portcullis-system:portcullis-server";
        assert_eq!(write(with(swapped), pending, server), Ok(()));
    }

    fn reviewed(by: &[&str]) -> Value {
        json!({"reviews": by.iter().map(|b| json!({"by": b, "at": "2026-11-27T01:00:00Z",
            "verdict": "Approved", "duration": "1h", "namespaces": ["payments"]})).collect::<Vec<_>>()})
    }

    #[test]
    fn reviews_grow_one_at_a_time_in_the_writers_name() {
        let pending = obj("alice", Value::Null);
        let ok = review(
            "UPDATE",
            "status",
            "bob",
            Some(obj("alice", reviewed(&["bob"]))),
            Some(pending.clone()),
        );
        assert_eq!(decide(&HOOK(), &ok, now()), Ok(()));
        // bob writes carol's approval: refused.
        let forged = review(
            "UPDATE",
            "status",
            "bob",
            Some(obj("alice", reviewed(&["carol"]))),
            Some(pending.clone()),
        );
        let e = decide(&HOOK(), &forged, now()).unwrap_err();
        assert!(e.contains("by you (bob), not carol"), "{e}");
        // Two at once, even with one of them his own: refused.
        let two = review(
            "UPDATE",
            "status",
            "bob",
            Some(obj("alice", reviewed(&["carol", "bob"]))),
            Some(pending),
        );
        assert!(decide(&HOOK(), &two, now())
            .unwrap_err()
            .contains("one review at a time"));
        // Rewriting an earlier review: refused.
        let rewrite = review(
            "UPDATE",
            "status",
            "dave",
            Some(obj("alice", reviewed(&["carol", "dave"]))),
            Some(obj("alice", reviewed(&["bob"]))),
        );
        assert!(decide(&HOOK(), &rewrite, now())
            .unwrap_err()
            .contains("earlier reviews never change"));
    }

    fn policy(required: usize, approvers: &[(&str, &str)]) -> Decision {
        Decision {
            approvals_required: required,
            max_duration: Some(std::time::Duration::from_secs(3600)),
            approvers: approvers
                .iter()
                .map(|(g, rule)| crate::policy::ApproverRule {
                    user: None,
                    group: Some(g.to_string()),
                    rule: rule.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_webhook_enforces_the_policy_in_direct_mode() {
        let pending = obj("alice", Value::Null);
        // A request the policy refuses is never created.
        let refused = Decision {
            deny: vec!["a ticket is required on prod".into()],
            ..Default::default()
        };
        let create = review("CREATE", "", "alice", Some(pending.clone()), None);
        let e = policy_rules(&refused, &create, "prod", None).unwrap_err();
        assert!(e.contains("a ticket is required on prod"), "{e}");
        assert_eq!(policy_rules(&policy(1, &[]), &create, "prod", None), Ok(()));
        // Only the listed approvers review (bob is in group dev).
        let listed = policy(2, &[("sre", "critical-needs-sre")]);
        let by_bob = review(
            "UPDATE",
            "status",
            "bob",
            Some(obj("alice", reviewed(&["bob"]))),
            Some(pending.clone()),
        );
        let e = policy_rules(&listed, &by_bob, "prod", None).unwrap_err();
        assert!(e.contains("critical-needs-sre"), "{e}");
        // Active with one approval where two are required: refused.
        let mut by_sre = by_bob.clone();
        by_sre.groups = vec!["sre".into()];
        let mut one = obj(
            "alice",
            active("bob", "2026-11-27T01:00:00Z", "2026-11-27T02:00:00Z"),
        );
        one["status"]["reviews"] = reviewed(&["bob"])["reviews"].clone();
        by_sre.object = Some(one.clone());
        let e = policy_rules(&listed, &by_sre, "prod", None).unwrap_err();
        assert!(e.contains("1 of 2 approvals"), "{e}");
        // The requester's own review never counts.
        let mut two = one.clone();
        two["status"]["reviews"] = reviewed(&["alice", "bob"])["reviews"].clone();
        by_sre.object = Some(two);
        by_sre.old = Some(obj("alice", reviewed(&["alice"])));
        assert!(policy_rules(&listed, &by_sre, "prod", None).is_err());
        // With carol's earlier review, bob's makes two.
        let mut enough = one;
        enough["status"]["reviews"] = reviewed(&["carol", "bob"])["reviews"].clone();
        by_sre.object = Some(enough.clone());
        by_sre.old = Some(obj("alice", reviewed(&["carol"])));
        assert_eq!(policy_rules(&listed, &by_sre, "prod", None), Ok(()));
        // Longer than the policy's maximum: refused.
        enough["status"]["decision"]["duration"] = json!("2h");
        by_sre.object = Some(enough);
        assert!(policy_rules(&listed, &by_sre, "prod", None)
            .unwrap_err()
            .contains("at most 1h"));
    }

    #[test]
    fn an_extension_names_the_requesters_own_live_grant() {
        let mut ext = obj("alice", Value::Null);
        ext["spec"]["extends"] = json!("alice-1");
        let create = review("CREATE", "", "alice", Some(ext), None);
        let allow = policy(1, &[]);
        let e = policy_rules(&allow, &create, "prod", Some(None)).unwrap_err();
        assert!(e.contains("no grant named alice-1"), "{e}");
        let mut live = read(&Some(obj(
            "alice",
            active("bob", "2026-11-27T01:00:00Z", "2026-11-27T02:00:00Z"),
        )))
        .unwrap();
        live.cluster = "prod".into();
        live.name = "alice-1".into();
        assert_eq!(
            policy_rules(&allow, &create, "prod", Some(Some(&live))),
            Ok(())
        );
        live.requester.user = "mallory".into();
        assert!(policy_rules(&allow, &create, "prod", Some(Some(&live)))
            .unwrap_err()
            .contains("mallory's grant"));
    }

    #[test]
    fn a_request_names_its_creator() {
        assert!(decide(
            &HOOK(),
            &review("CREATE", "", "alice", Some(obj("alice", Value::Null)), None),
            now()
        )
        .is_ok());
        let e = decide(
            &HOOK(),
            &review(
                "CREATE",
                "",
                "mallory",
                Some(obj("alice", Value::Null)),
                None,
            ),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("must be you (mallory)"), "{e}");
        let mut r = review("CREATE", "", "alice", Some(obj("alice", Value::Null)), None);
        r.groups = vec![];
        assert!(decide(&HOOK(), &r, now())
            .unwrap_err()
            .contains("not in dev"));
    }

    #[test]
    fn the_requester_never_writes_status_and_decisions_carry_the_writer() {
        let pending = obj("alice", Value::Null);
        let approved = obj(
            "alice",
            active("bob", "2026-11-27T01:00:00Z", "2026-11-27T02:00:00Z"),
        );
        let e = decide(
            &HOOK(),
            &review(
                "UPDATE",
                "status",
                "alice",
                Some(approved.clone()),
                Some(pending.clone()),
            ),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("requester never writes"), "{e}");
        assert!(decide(
            &HOOK(),
            &review(
                "UPDATE",
                "status",
                "bob",
                Some(approved.clone()),
                Some(pending.clone())
            ),
            now()
        )
        .is_ok());
        let e = decide(
            &HOOK(),
            &review(
                "UPDATE",
                "status",
                "carol",
                Some(approved),
                Some(pending.clone()),
            ),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("decision.by must be you (carol)"), "{e}");
        let stale = obj(
            "alice",
            active("bob", "2026-11-26T01:00:00Z", "2026-11-26T02:00:00Z"),
        );
        assert!(decide(
            &HOOK(),
            &review("UPDATE", "status", "bob", Some(stale), Some(pending)),
            now()
        )
        .unwrap_err()
        .contains("server's clock"));
    }

    #[test]
    fn a_live_grant_never_goes_back_to_pending() {
        let hook = HOOK();
        let live = obj(
            "alice",
            active("bob", "2026-11-27T00:00:00Z", "2026-11-27T01:00:00Z"),
        );
        let mut back = live.clone();
        back["status"]["phase"] = json!("Pending");
        let r = review("UPDATE", "status", "carol", Some(back), Some(live.clone()));
        let why = decide(&hook, &r, now()).unwrap_err();
        assert!(why.contains("Active never becomes Pending"), "{why}");
        let mut unknown = live.clone();
        unknown["status"]["phase"] = json!("Paused");
        let r = review("UPDATE", "status", "carol", Some(unknown), Some(live));
        assert!(decide(&hook, &r, now()).is_err());
    }

    #[test]
    fn grants_only_get_shorter_and_terminal_phases_stay() {
        let live = obj(
            "alice",
            active("bob", "2026-11-27T01:00:00Z", "2026-11-27T02:00:00Z"),
        );
        let longer = obj(
            "alice",
            active("bob", "2026-11-27T01:00:00Z", "2099-01-01T00:00:00Z"),
        );
        let e = decide(
            &HOOK(),
            &review("UPDATE", "status", "bob", Some(longer), Some(live.clone())),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("only moves earlier"), "{e}");
        let shorter = obj(
            "alice",
            active("bob", "2026-11-27T01:00:00Z", "2026-11-27T01:30:00Z"),
        );
        assert!(decide(
            &HOOK(),
            &review("UPDATE", "status", "bob", Some(shorter), Some(live.clone())),
            now()
        )
        .is_ok());
        // An approver cannot end a grant in the requester's name: only the
        // reaper or the server (exempt) writes `Released`.
        let mut released = live.clone();
        released["status"]["phase"] = json!("Released");
        released["status"]["revokedBy"] = json!("bob");
        let e = decide(
            &HOOK(),
            &review("UPDATE", "status", "bob", Some(released), Some(live)),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("never becomes Released"), "{e}");
        let ended = obj("alice", json!({"phase": "Revoked"}));
        let revived = obj("alice", json!({"phase": "Active"}));
        let e = decide(
            &HOOK(),
            &review(
                "UPDATE",
                "status",
                "bob",
                Some(revived),
                Some(ended.clone()),
            ),
            now(),
        )
        .unwrap_err();
        assert!(e.contains("terminal phases never change"), "{e}");
        let noted = obj(
            "alice",
            json!({"phase": "Revoked", "message": "revoked and verified"}),
        );
        assert!(decide(
            &HOOK(),
            &review("UPDATE", "status", "bob", Some(noted), Some(ended)),
            now()
        )
        .is_ok());
    }

    #[test]
    fn specs_are_immutable_and_only_the_requester_withdraws() {
        let a = obj("alice", Value::Null);
        let mut b = a.clone();
        b["spec"]["role"]["name"] = json!("cluster-admin");
        assert!(decide(
            &HOOK(),
            &review("UPDATE", "", "bob", Some(b), Some(a.clone())),
            now()
        )
        .unwrap_err()
        .contains("immutable"));
        assert!(decide(
            &HOOK(),
            &review("DELETE", "", "alice", None, Some(a.clone())),
            now()
        )
        .is_ok());
        assert!(decide(
            &HOOK(),
            &review("DELETE", "", "mallory", None, Some(a)),
            now()
        )
        .unwrap_err()
        .contains("only its requester"));
        let server = review(
            "UPDATE",
            "status",
            "system:serviceaccount:portcullis-system:portcullis-server",
            None,
            None,
        );
        assert!(
            decide(&HOOK(), &server, now()).is_ok(),
            "the lifecycle's own writer"
        );
    }
}
