//! `/v1/requests`: list, read, diff and create requests.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{approvers_only, body, current, key, may_read, parse_duration};
use crate::api::{self, CreateBody};
use crate::backend::{ApproveSpec, NewRequest, Op, RequestKey, Seen};
use crate::domain::rbac::engine::{analyze, GrantRequest};
use crate::domain::rbac::Inventory;
use crate::domain::{duration, AccessRequest, Credentials, RoleRef, Subject};
use crate::policy::Decision;
use crate::server::error::{ApiResult, Error, Refusal};
use crate::server::extract::Caller;
use crate::server::{Server, Shared};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    phase: Option<String>,
    cluster: Option<String>,
    requester: Option<String>,
}
pub(crate) async fn list(
    State(s): State<Shared>,
    Caller(who): Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    // Need to know: approvers read everything; anyone else their own
    // requests in full and that others' exist, without why.
    let redact_for = (!s.access.may_approve(&who)).then_some(who.user.as_str());
    let body = s.hub.list_json(
        |r| {
            q.phase
                .as_deref()
                .is_none_or(|p| r.phase().as_str().eq_ignore_ascii_case(p))
                && q.cluster.as_deref().is_none_or(|c| r.cluster == c)
                && q.requester.as_deref().is_none_or(|u| r.requester.user == u)
        },
        redact_for,
    );
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
pub(crate) async fn one(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path((cluster, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let k = key(&s, cluster, name).by(&who, "read", None)?;
    let r = current(&s, &k).await.by(&who, "read", Some(&k))?;
    let mut v = api::request_json(&r);
    if !may_read(&s, &who, &r) {
        api::redact(&mut v);
    }
    Ok(Json(v))
}
/// The permission diff a grant would add, as the console shows it.
pub(crate) async fn diff(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path((cluster, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let k = key(&s, cluster, name).by(&who, "read diff", None)?;
    let r = s
        .hub
        .request(&k)
        .ok_or_else(|| Error::NotFound(format!("{k} not found")))
        .by(&who, "read diff", Some(&k))?;
    if !may_read(&s, &who, &r) {
        approvers_only(&s, &who, "the diff of someone else's request").by(
            &who,
            "read diff",
            Some(&k),
        )?;
    }
    let inv: Inventory = s
        .hub
        .inventory(&k.cluster)
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| Error::Unavailable("no RBAC inventory for this cluster yet".into()))
        .by(&who, "read diff", Some(&k))?;
    let a = analyze(&inv, GrantRequest::of(&r, &r.requester))
        .map_err(|e| Error::Invalid(e.to_string()))
        .by(&who, "read diff", Some(&k))?;
    let new: Vec<Value> = a
        .new
        .iter()
        .map(|p| {
            json!({"scope": p.permission.scope.to_string(), "resource": p.permission.resource_label(),
                   "verb": p.permission.verb, "severity": p.risk.severity.label(), "why": p.risk.why})
        })
        .collect();
    Ok(Json(json!({
        "request": api::request_json(&r),
        "worst": (!a.new.is_empty()).then(|| a.worst.label()),
        "new": new,
        "alreadyHeld": a.already.len(),
        "aggregated": a.aggregated,
    })))
}
pub(crate) async fn create(
    State(s): State<Shared>,
    Caller(who): Caller,
    raw: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let _acting = s.acting(None);
    let made = create_as(&s, &who, &raw).await.by(&who, "create", None)?;
    s.record_action(&who, None, &made);
    Ok((StatusCode::CREATED, Json(api::request_json(&made))))
}
/// A new request in the caller's name; approved at once when the policy
/// says it approves itself.
pub(crate) async fn create_as(
    s: &Server,
    who: &Subject,
    raw: &[u8],
) -> Result<AccessRequest, Error> {
    let b: CreateBody = body(raw)?;
    let new = new_request(s, who, &b)?;
    s.access.require_requester(who).map_err(Error::from)?;
    // A namespace the cluster does not have can never be granted.
    if let Some(known) = s
        .hub
        .inventory_of(&new.cluster)
        .and_then(|inv| inv.namespaces.clone())
    {
        if let Some(missing) = new.namespaces.iter().find(|n| !known.contains(*n)) {
            return Err(Error::field(
                "namespaces",
                format!(
                    "namespace '{}' does not exist on {}",
                    crate::domain::sanitize::inert(missing, 64),
                    crate::domain::sanitize::inert(&new.cluster, 64)
                ),
            ));
        }
    }
    // An extension names the caller's own live grant and asks for no more.
    if let Some(of) = &b.extends {
        check_extension(s, &new, of).await?;
    }
    let decision = policy_decision(s, who, &new)?;
    let made = s.authority.create(who, new).await;
    s.metrics.decided("create", made.is_ok());
    let mut made = made.map_err(Error::from)?;
    // Approved by the policy itself: granted at once, as asked, recorded
    // as approved by `policy:RULE`.
    if let Some(rule) = decision.and_then(|d| d.auto_approve) {
        made = auto_approve(s, &made, &rule).await?;
    }
    Ok(made)
}

/// The request `b` asks for, in `who`'s name, on a cluster this server
/// grants access to.
fn new_request(s: &Server, who: &Subject, b: &CreateBody) -> Result<NewRequest, Error> {
    if !s.authority.clusters().contains(&b.cluster) {
        return Err(Error::field(
            "cluster",
            format!(
                "'{}' is not a cluster this server grants access to ({})",
                crate::domain::sanitize::inert(&b.cluster, 64),
                s.authority.clusters().join(", ")
            ),
        ));
    }
    Ok(NewRequest {
        cluster: b.cluster.clone(),
        requester: who.clone(),
        role: RoleRef {
            kind: b.role_kind()?,
            name: b.role.name.clone(),
        },
        namespaces: b.namespaces.clone(),
        duration: parse_duration("duration", &b.duration)?,
        reason: b.reason.clone(),
        ticket: b.ticket.clone(),
        credentials: match b.credentials.as_deref() {
            None | Some("Identity") => Credentials::Identity,
            Some("Token") => Credentials::Token,
            Some(other) => {
                return Err(Error::field(
                    "credentials",
                    format!("'{other}' is neither Identity nor Token"),
                ))
            }
        },
        extends: b.extends.clone(),
    })
}

/// Refused (on `extends`) unless `of` is a live grant that `new` may
/// extend.
async fn check_extension(s: &Server, new: &NewRequest, of: &str) -> Result<(), Error> {
    crate::domain::names::object_name(of).map_err(|why| Error::field("extends", why))?;
    let key = RequestKey {
        cluster: new.cluster.clone(),
        name: of.to_string(),
    };
    let live = match s.hub.request(&key) {
        Some(live) => live,
        None => s.authority.get(&key).await.map_err(|_| {
            Error::field(
                "extends",
                crate::domain::ExtensionError::Unknown(of.to_string()).to_string(),
            )
        })?,
    };
    new.clone()
        .into_request("new".into(), s.authority.now())
        .check_extends(&live)
        .map_err(|e| Error::field("extends", e.to_string()))?;
    Ok(())
}

/// The policy's decision on `new` (none without a policy); refused when
/// the policy refuses it or it is longer than the policy allows.
fn policy_decision(s: &Server, who: &Subject, new: &NewRequest) -> Result<Option<Decision>, Error> {
    // The policy first: a refused request is never stored.
    let probe = NewRequest {
        requester: who.declared(),
        ..new.clone()
    }
    .into_request("new".into(), s.authority.now());
    let decision = s.decide(&probe)?;
    if let Some(d) = decision.as_ref().filter(|d| !d.allowed()) {
        s.metrics.refused("policy");
        return Err(Error::Forbidden(format!(
            "refused by policy: {}",
            d.deny.join("; ")
        )));
    }
    // Longer than the policy's maximum: refused at the door, in its words
    // (an approval could only grant less than was asked).
    if let Some(max) = decision.as_ref().and_then(|d| d.max_duration) {
        if new.duration > max {
            s.metrics.refused("policy");
            return Err(Error::field(
                "duration",
                format!(
                    "{} is longer than the policy allows on {} (max_duration_seconds: at most {}): ask for {} or less",
                    duration::format(new.duration),
                    crate::domain::sanitize::inert(&new.cluster, 64),
                    duration::format(max),
                    duration::format(max)
                ),
            ));
        }
    }
    Ok(decision)
}

/// `made` approved by the policy's rule `rule`, as asked.
async fn auto_approve(
    s: &Server,
    made: &AccessRequest,
    rule: &str,
) -> Result<AccessRequest, Error> {
    let by = Subject::new(format!("policy:{rule}"), &[]);
    let spec = ApproveSpec {
        duration: made.duration,
        namespaces: made.namespaces.clone(),
        reason: Some(format!("approved by policy rule {rule}")),
    };
    let granted = s
        .authority
        .apply(
            &by,
            &RequestKey::of(made),
            &Seen::of(made),
            Op::Approve(spec),
            1,
        )
        .await;
    s.metrics.decided("auto-approve", granted.is_ok());
    granted.map_err(Error::from)
}
