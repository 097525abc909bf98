//! `POST /v1/requests/{cluster}/{name}/{action}`: one route per action on
//! one request. The approver's four name what they read (`uid`, `seen`);
//! the requester's two (withdraw, release) carry nothing.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use chrono::TimeDelta;
use serde_json::Value;

use super::{body, key, parse_duration};
use crate::api::{self, ApproveBody, Named, ReasonBody, ShortenBody};
use crate::backend::{ApproveSpec, BackendError, Op, OpKind};
use crate::domain::{AccessRequest, RequestKey, Seen, Subject};
use crate::server::error::{ApiResult, Error, Refusal};
use crate::server::extract::Caller;
use crate::server::{Server, Shared};

type Target = Path<(String, String)>;

/// Every action's route: `POST /v1/requests/{cluster}/{name}/VERB`, one
/// per [`OpKind`], each handled by [`act`] for its kind.
pub(crate) fn routes() -> Router<Shared> {
    OpKind::ALL.into_iter().fold(Router::new(), |router, kind| {
        router.route(
            &format!("/v1/requests/{{cluster}}/{{name}}/{}", kind.verb()),
            post(move |s: State<Shared>, c: Caller, p: Target, raw: Bytes| act(s, c, p, kind, raw)),
        )
    })
}

/// Any other action: 404, listing the ones there are.
pub(crate) async fn unknown(
    Caller(who): Caller,
    Path((_, _, action)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let verbs: Vec<&str> = OpKind::ALL.iter().map(|k| k.verb()).collect();
    Err(Error::NotFound(format!(
        "no action '{}' ({})",
        crate::domain::sanitize::inert(&action, 40),
        verbs.join(", ")
    )))
    .by(&who, "act", None)
}

/// One action on one request, as the verified caller, on the record.
async fn act(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path((cluster, name)): Target,
    kind: OpKind,
    raw: Bytes,
) -> ApiResult<Json<Value>> {
    let action = kind.verb();
    let k = key(&s, cluster, name).by(&who, action, None)?;
    // Decisions are for approvers: refused before anything is read.
    if kind.is_decision() {
        s.access
            .require_approver(&who, action)
            .map_err(Error::from)
            .by(&who, action, Some(&k))?;
    }
    // What the action changed, for the record: read from the authority,
    // not the stream's copy, which may not have caught up with the last
    // action yet (a shorten right after an approval would read as no
    // shorten at all); the stream's copy only when that read fails.
    let _acting = s.acting(Some(&k));
    let before = match s.authority.get(&k).await {
        Ok(r) => Some(r),
        Err(_) => s.hub.request(&k),
    };
    let r = act_as(&s, &who, &k, kind, &raw)
        .await
        .by(&who, action, Some(&k))?;
    if let Some(before) = &before {
        s.record_action(&who, Some(before), &r);
    }
    Ok(Json(api::request_json(&r)))
}

/// What a decision names, from its body: `uid` is required on approve and
/// deny (what is decided must be what was read), optional on shorten and
/// revoke (they only ever take access away).
fn named(kind: OpKind, seen: Seen) -> Result<Seen, Error> {
    if seen.uid.is_none() && matches!(kind, OpKind::Approve | OpKind::Deny) {
        return Err(Error::field(
            "uid",
            format!(
                "name the request you {}: its uid (and seen) as GET /v1/requests/CLUSTER/NAME gives them",
                kind.verb()
            ),
        ));
    }
    Ok(seen)
}

/// Carries out one action: a decision once its body is read and checked,
/// the requester's own at once.
async fn act_as(
    s: &Server,
    who: &Subject,
    k: &RequestKey,
    kind: OpKind,
    raw: &[u8],
) -> Result<AccessRequest, Error> {
    let a = &s.authority;
    let action = kind.verb();
    let (op, seen, required) = match kind {
        // The requester's own: nothing to read from the body or to name.
        OpKind::Withdraw => (Op::Withdraw, Seen::default(), 1),
        OpKind::Release => (Op::Release, Seen::default(), 1),
        // Decisions: the caller's approver right is checked by `act`,
        // before anything is read.
        OpKind::Approve => approval(s, who, k, raw).await?,
        OpKind::Deny | OpKind::Revoke => {
            let b: ReasonBody = body(raw)?;
            let seen = named(kind, b.named())?;
            let op = match kind {
                OpKind::Deny => Op::Deny { reason: b.reason },
                _ => Op::Revoke { reason: b.reason },
            };
            (op, seen, 1)
        }
        OpKind::Shorten => {
            let b: ShortenBody = body(raw)?;
            let seen = named(kind, b.named())?;
            let end = match (b.expires_at, b.to) {
                (Some(t), None) => t,
                (None, Some(to)) => {
                    let left = TimeDelta::from_std(parse_duration("to", &to)?)
                        .map_err(|_| Error::field("to", "too long"))?;
                    a.now()
                        .checked_add_signed(left)
                        .ok_or_else(|| Error::field("to", "too far in the future"))?
                }
                _ => {
                    return Err(Error::field(
                        "to",
                        "give exactly one of to (10m) or expiresAt",
                    ))
                }
            };
            (Op::Shorten { new_end: end }, seen, 1)
        }
    };
    let result = a.apply(who, k, &seen, op, required).await;
    s.metrics.decided(action, result.is_ok());
    if let Err(e) = &result {
        if matches!(e, BackendError::Forbidden { .. }) {
            s.metrics.refused("forbidden");
        }
        tracing::info!(user = %who.user, %k, %action, error = %e, "refused");
    }
    result.map_err(Error::from)
}

/// An approval: what was read is what is decided (409, saying what it is
/// now, otherwise); what was asked fills what the body leaves out; the
/// policy decides who may approve, how many must, and how long a grant
/// may last.
async fn approval(
    s: &Server,
    who: &Subject,
    k: &RequestKey,
    raw: &[u8],
) -> Result<(Op, Seen, usize), Error> {
    let b: ApproveBody = body(raw)?;
    let asked = s.authority.get(k).await?;
    let seen = named(OpKind::Approve, b.named())?;
    seen.check(&asked).map_err(BackendError::from)?;
    let duration = match b.duration {
        Some(d) => parse_duration("duration", &d)?,
        None => asked.duration,
    };
    let namespaces = b.namespaces.unwrap_or_else(|| asked.namespaces.clone());
    // A policy judges the diff: never approve before it can be
    // computed (right after a start, before the RBAC is read).
    if s.policy.is_some() && s.hub.inventory_of(&k.cluster).is_none() {
        return Err(Error::Unavailable(format!(
            "{}'s RBAC is not read yet, so the policy cannot judge {k}: try again in a moment",
            k.cluster
        )));
    }
    let decision = s.decide(&asked)?.unwrap_or_default();
    if !decision.allowed() {
        s.metrics.refused("policy");
        return Err(Error::Forbidden(format!(
            "refused by policy: {}",
            decision.deny.join("; ")
        )));
    }
    if let Err(why) = decision.may_approve(who) {
        s.metrics.refused("policy");
        return Err(Error::Forbidden(format!(
            "you ({}) may not approve {k}: {why}",
            who.user
        )));
    }
    let duration = match decision.max_duration {
        Some(max) => duration.min(max),
        None => duration,
    };
    let spec = ApproveSpec {
        duration,
        namespaces,
        reason: b.reason,
    };
    Ok((Op::Approve(spec), seen, decision.approvals_required))
}
