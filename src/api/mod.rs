//! The Portcullis server's HTTP API, as both sides speak it: the JSON shape
//! of a request, the request bodies, errors and the live-stream events.
//! The server (`src/server/`) and the `http` backend (`src/backend/http/`)
//! share this file, so they cannot drift apart. Pure: no IO.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::crd::wire;
use crate::domain::{AccessRequest, RoleKind};

/// A request as the API and `portcullis get -o json` show it.
pub fn request_json(r: &AccessRequest) -> Value {
    let spec = wire::spec_json(r.into());
    json!({
        "name": r.name,
        "uid": r.uid,
        // What a decision on this request names (`seen`): refused with 409
        // once the request is no longer what was read.
        "seen": r.seen(),
        "cluster": r.cluster,
        "createdAt": r.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "spec": spec,
        "status": wire::status_json(r),
        "invalid": r.validate(&Default::default()).err().map(|e| e.to_string()),
    })
}

/// The reason as someone who may not read it is shown it: said plainly,
/// and a valid reason (a console judging the request does not call it
/// invalid for want of one).
pub const REDACTED_REASON: &str = "(hidden: only approvers and the requester read the reason)";

/// What a caller who neither asked for a request nor may approve sees of
/// it (README "API", need to know): that it exists, for whom, what and
/// where, and its state — never why (reason, ticket, the decision's and
/// revocation's reasons, reviews' reasons, messages, the policy's
/// verdict) nor the digest a decision names. Marked `"redacted": true`.
pub fn redact(v: &mut Value) {
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("reason".into(), json!(REDACTED_REASON));
        spec.remove("ticket");
    }
    if let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
        for k in ["revokeReason", "message"] {
            status.remove(k);
        }
        if let Some(d) = status.get_mut("decision").and_then(Value::as_object_mut) {
            d.remove("reason");
        }
        if let Some(reviews) = status.get_mut("reviews").and_then(Value::as_array_mut) {
            for r in reviews.iter_mut().filter_map(Value::as_object_mut) {
                r.remove("reason");
            }
        }
    }
    if let Some(o) = v.as_object_mut() {
        for k in ["seen", "policy", "invalid"] {
            o.remove(k);
        }
        o.insert("redacted".into(), json!(true));
    }
}

/// Reads [`request_json`]'s shape back, as leniently as a stored object:
/// what the server sends is untrusted text all the same.
pub fn request_from_json(v: &Value) -> AccessRequest {
    let cluster = v["cluster"].as_str().unwrap_or_default();
    let object = json!({
        "metadata": {"name": v["name"], "uid": v["uid"], "creationTimestamp": v["createdAt"]},
        "spec": v["spec"],
        "status": v["status"],
    });
    wire::request_from_json(cluster, &object)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RoleBody {
    pub kind: String,
    pub name: String,
}

/// `POST /v1/requests`: the requester is whoever the token belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    pub cluster: String,
    pub role: RoleBody,
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// `30m`, `2h`.
    pub duration: String,
    pub reason: String,
    #[serde(default)]
    pub ticket: Option<String>,
    /// `Identity` (default) or `Token`.
    #[serde(default)]
    pub credentials: Option<String>,
    /// The caller's live grant this asks to extend (same cluster, role,
    /// and no more namespaces).
    #[serde(default)]
    pub extends: Option<String>,
}

impl CreateBody {
    pub fn role_kind(&self) -> Result<RoleKind, ApiError> {
        match self.role.kind.as_str() {
            "ClusterRole" => Ok(RoleKind::ClusterRole),
            "Role" => Ok(RoleKind::Role),
            other => Err(ApiError::field(
                "role.kind",
                format!("'{other}' is neither Role nor ClusterRole"),
            )),
        }
    }
}

/// `POST /v1/requests/{cluster}/{name}/approve`: at most what was asked;
/// omitted fields grant as asked.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    #[serde(default)]
    pub reason: Option<String>,
    /// What the decision names (see [`Named`]).
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub seen: Option<String>,
}

/// What a decision names of the request it decides on, as the API gave it
/// (`uid` and `seen` of [`request_json`]): the server refuses with 409 when
/// the request is no longer that. `uid` is required on approve and deny.
pub trait Named {
    fn named(&self) -> crate::domain::Seen;
}

macro_rules! named {
    ($($t:ty),*) => {$(
        impl Named for $t {
            fn named(&self) -> crate::domain::Seen {
                crate::domain::Seen {
                    uid: self.uid.clone(),
                    digest: self.seen.clone(),
                }
            }
        }
    )*};
}
named!(ApproveBody, ReasonBody, ShortenBody);

/// Deny and revoke: the reason is required.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub seen: Option<String>,
}

/// `POST …/shorten`: the new end, as an RFC 3339 time or as time left
/// from the server's now (`10m`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShortenBody {
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub seen: Option<String>,
}

/// `GET /v1/whoami`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WhoAmI {
    pub user: String,
    pub groups: Vec<String>,
    /// How the server knows: `TokenReview`, `demo`.
    pub verified_by: String,
    /// The clusters this server grants access to.
    pub clusters: Vec<String>,
    /// Whether this caller may approve (by the server's configuration).
    pub approver: bool,
    /// The server's build (`portcullis version`); absent from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
}

/// An error as the API sends it: `{"error": {"code", "reason", "message", "field"}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The full text behind a one-line message (an escalation refusal's
    /// rules), for clients that show it on request (`-v`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
            field: None,
            details: Vec::new(),
        }
    }

    /// 422, naming the field that is wrong.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(422, "Invalid", format!("{field}: {}", message.into()))
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "Unauthorized",
            "no valid bearer token: pass --token-file, set PORTCULLIS_TOKEN, or use a kubeconfig context whose token (or sign-in plugin's token) the server's cluster accepts",
        )
    }

    pub fn body(&self) -> Value {
        json!({"error": self})
    }
}

/// The live stream's event names (`event:` lines of the SSE stream).
pub mod events {
    /// A request appeared or changed; data: [`super::request_json`].
    pub const UPSERT: &str = "upsert";
    /// A request is gone; data: `{"cluster", "name"}`.
    pub const REMOVED: &str = "removed";
    /// A cluster's RBAC inventory; data: `{"cluster", "inventory"}`.
    pub const INVENTORY: &str = "inventory";
    /// A cluster is reachable or failing; data: `{"cluster", "error"}`.
    pub const CLUSTER: &str = "cluster";
    /// A cluster's limits; data: `{"cluster", "limits": {...}}`.
    pub const LIMITS: &str = "limits";
    /// Something to tell the console once; data: `{"cluster", "error", "text"}`.
    pub const NOTICE: &str = "notice";
    /// A full snapshot follows (after a reconnect the server cannot resume):
    /// whatever is not in it is gone.
    pub const SNAPSHOT: &str = "snapshot";
    /// The snapshot is complete.
    pub const SNAPSHOT_DONE: &str = "snapshot-done";
    /// The server ends this stream (the last event): its token is no
    /// longer accepted, or the server stops; data: `{"reason"}`.
    pub const END: &str = "end";
    /// An audit record (approvers' streams only); data: one sealed record
    /// as in the audit log.
    pub const AUDIT: &str = "audit";
}

/// The limits a `limits` event carries.
pub fn limits_from_json(v: &Value) -> Option<crate::domain::ValidationLimits> {
    let d = |k: &str| crate::domain::duration::parse(v[k].as_str()?).ok();
    Some(crate::domain::ValidationLimits {
        max_duration: d("maxDuration")?,
        approval_timeout: d("approvalTimeout")?,
        max_reason_chars: v["maxReasonChars"].as_u64()? as usize,
        // Absent from older servers: any role.
        grantable: match v["grantable"].as_array() {
            Some(list) => Some(
                list.iter()
                    .map(|g| crate::domain::grantable::Grantable::parse(g.as_str()?).ok())
                    .collect::<Option<Vec<_>>>()?,
            ),
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Credentials, RoleRef, Subject};
    use std::time::Duration;

    #[test]
    fn a_request_survives_the_trip() {
        let r = crate::domain::NewRequest {
            cluster: "prod".into(),
            requester: Subject::new("alice", &["dev"]),
            role: RoleRef::cluster_role("edit"),
            namespaces: vec!["payments".into()],
            duration: Duration::from_secs(1800),
            reason: "INC-1".into(),
            ticket: Some("INC-1".into()),
            credentials: Credentials::Token,
            extends: None,
        }
        .into_request(
            "alice-payments-x".into(),
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        );
        let mut r = r;
        r.status.phase = Some(crate::domain::Phase::Pending);
        let back = request_from_json(&request_json(&r));
        assert_eq!(back, r);
    }
}
