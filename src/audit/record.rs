//! One audit event: what happened to whose access, who did it and how we
//! know who they are. Pure data; the layout maps onto OCSF and Teleport
//! (README "Audit trail").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happened. The names are the `kind` field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "request.created")]
    Created,
    /// The policy's decision on a pending request (when it changes).
    #[serde(rename = "request.verdict")]
    Verdict,
    #[serde(rename = "review.approved")]
    Approved,
    #[serde(rename = "review.denied")]
    Denied,
    /// The approvals reached the threshold: the grant's clock starts.
    #[serde(rename = "grant.started")]
    Started,
    /// Credentials handed out for a grant (`portcullis login`).
    #[serde(rename = "credentials.issued")]
    CredentialsIssued,
    #[serde(rename = "grant.shortened")]
    Shortened,
    #[serde(rename = "grant.revoked")]
    Revoked,
    /// Ended early by its own requester ("I'm done").
    #[serde(rename = "grant.released")]
    Released,
    #[serde(rename = "grant.expired")]
    Expired,
    /// What the apiserver said after the grant ended: verified, or still
    /// granted by another binding.
    #[serde(rename = "grant.verified")]
    Verified,
    #[serde(rename = "request.withdrawn")]
    Withdrawn,
    /// A pending request that nobody decided in time.
    #[serde(rename = "request.timed_out")]
    TimedOut,
    #[serde(rename = "request.failed")]
    Failed,
    /// Any attempt the server turned away: bad token, 403, self-approval,
    /// policy refusal, conflict.
    #[serde(rename = "attempt.refused")]
    Refused,
    /// The log moved on to a new file (first record of the new one).
    #[serde(rename = "log.rotated")]
    Rotated,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Created,
        Kind::Verdict,
        Kind::Approved,
        Kind::Denied,
        Kind::Started,
        Kind::CredentialsIssued,
        Kind::Shortened,
        Kind::Revoked,
        Kind::Released,
        Kind::Expired,
        Kind::Verified,
        Kind::Withdrawn,
        Kind::TimedOut,
        Kind::Failed,
        Kind::Refused,
        Kind::Rotated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Created => "request.created",
            Kind::Verdict => "request.verdict",
            Kind::Approved => "review.approved",
            Kind::Denied => "review.denied",
            Kind::Started => "grant.started",
            Kind::CredentialsIssued => "credentials.issued",
            Kind::Shortened => "grant.shortened",
            Kind::Revoked => "grant.revoked",
            Kind::Released => "grant.released",
            Kind::Expired => "grant.expired",
            Kind::Verified => "grant.verified",
            Kind::Withdrawn => "request.withdrawn",
            Kind::TimedOut => "request.timed_out",
            Kind::Failed => "request.failed",
            Kind::Refused => "attempt.refused",
            Kind::Rotated => "log.rotated",
        }
    }

    /// A refusal or failure: shown in red, counted by auditors.
    pub fn is_refusal(self) -> bool {
        matches!(self, Kind::Refused | Kind::Failed | Kind::Denied)
    }
}

/// Who did it, and how we know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// `TokenReview` (server), `demo` (static demo token), `apiserver`
    /// (the request object's field, written under the apiserver's
    /// authorization), `kubeconfig` (direct mode without the webhook: the
    /// client's word), `reaper`, `policy`, `unverified` (a token nobody
    /// vouched for).
    pub verified_by: String,
}

impl Actor {
    pub fn new(user: impl Into<String>, verified_by: impl Into<String>) -> Self {
        Actor {
            user: user.into(),
            groups: Vec::new(),
            verified_by: verified_by.into(),
        }
    }

    /// The reaper (the grant engine's clock), not a person.
    pub fn reaper() -> Self {
        Actor::new("portcullis:reaper", "reaper")
    }
}

/// One event, before it is sealed into the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Stable across observers: the same transition seen by the server's
    /// call site and by its watch (or by two reapers) is one event.
    pub id: String,
    pub time: DateTime<Utc>,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub requester: String,
    /// `ClusterRole/edit` or `Role/ns/name`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// Where the access applies; empty: cluster-wide.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// The diff's worst severity when it was known (`CRIT`, `HIGH`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<String>,
    /// `success` or `failure` (OCSF's status).
    pub outcome: Outcome,
    /// One line a person reads: why, what changed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Kind-specific fields (asked vs approved, old and new end, HTTP
    /// status of a refusal…).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Event {
    /// A bare event of `kind` at `time`; the builders below fill the rest.
    pub fn new(kind: Kind, time: DateTime<Utc>, id: String) -> Self {
        Event {
            id,
            time,
            kind,
            actor: None,
            cluster: String::new(),
            request: String::new(),
            requester: String::new(),
            role: String::new(),
            namespaces: Vec::new(),
            risk: None,
            outcome: if kind.is_refusal() {
                Outcome::Failure
            } else {
                Outcome::Success
            },
            message: String::new(),
            detail: Value::Null,
        }
    }

    /// Who the event is about, as one word for filters.
    pub fn user(&self) -> &str {
        self.actor.as_ref().map(|a| a.user.as_str()).unwrap_or("")
    }
}
