//! The one trait every source of access requests implements, and the events
//! it streams. The console only ever talks to a backend through this trait:
//! the embedded demo now, direct-on-cluster (`kube`) and a broker (`http`)
//! later. Requester context (standing access, live grants, past requests)
//! is derived from the RBAC inventory and the request stream, so the trait
//! needs no extra call for it.

pub mod demo;
pub mod http;
pub mod kube;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::mpsc;

use crate::domain::rbac::Inventory;
use crate::domain::{AccessRequest, Credentials, PhaseError, RoleRef, Subject, ValidationLimits};

/// A request is named by its cluster (kubeconfig context) and object name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestKey {
    pub cluster: String,
    pub name: String,
}

impl RequestKey {
    pub fn of(req: &AccessRequest) -> Self {
        Self {
            cluster: req.cluster.clone(),
            name: req.name.clone(),
        }
    }
}

impl std::fmt::Display for RequestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.cluster, self.name)
    }
}

/// What changed on the backend. A new subscriber first receives the whole
/// current state as `Inventory` and `Upsert` events, then live changes.
#[derive(Debug, Clone)]
pub enum BackendEvent {
    Upsert(Box<AccessRequest>),
    /// An audit record from the server's trail (approvers' streams only).
    Audit(Box<crate::audit::Sealed>),
    Removed(RequestKey),
    Inventory {
        cluster: String,
        inventory: Arc<Inventory>,
    },
    /// A cluster became reachable (`None`) or failed (`Some(message)`).
    ClusterStatus {
        cluster: String,
        error: Option<String>,
    },
    /// The limits this cluster applies (they live in the cluster, not in
    /// each user's config).
    Limits {
        cluster: String,
        limits: ValidationLimits,
    },
    /// Something the approver should read once (e.g. a reaper refused by
    /// the apiserver, saying which right it lacks).
    Notice {
        cluster: String,
        error: bool,
        text: String,
    },
    /// The backend itself (the Portcullis server) became reachable (`None`)
    /// or not (`Some(why)`): the console keeps what it has and says so.
    Connection {
        error: Option<String>,
    },
    /// Every request there is has been reported (a full list completed).
    Synced,
    /// What the server's policy decided about a request (enforced).
    Verdict {
        key: RequestKey,
        decision: Box<crate::policy::Decision>,
    },
}

/// What an approver grants: at most what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproveSpec {
    pub duration: Duration,
    pub namespaces: Vec<String>,
    pub reason: Option<String>,
}

/// A decision on one request. One value for what the console's effects,
/// the verbs and the server carry to a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Approve(ApproveSpec),
    Deny {
        reason: String,
    },
    /// Only ever sooner.
    Shorten {
        new_end: DateTime<Utc>,
    },
    Revoke {
        reason: String,
    },
}

impl Op {
    /// The verb, as the API's paths and the audit trail spell it.
    pub fn verb(&self) -> &'static str {
        match self {
            Op::Approve(_) => "approve",
            Op::Deny { .. } => "deny",
            Op::Shorten { .. } => "shorten",
            Op::Revoke { .. } => "revoke",
        }
    }
}

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
    pub fn check(&self, now: &AccessRequest) -> Result<(), BackendError> {
        let what = || {
            let inert = |s: &str| crate::domain::sanitize::inert(s, 64).into_owned();
            format!(
                "it now asks for {} {} {} for {} by {}",
                now.role.kind,
                inert(&now.role.name),
                if now.namespaces.is_empty() {
                    "cluster-wide".to_string()
                } else {
                    format!("in {}", inert(&now.namespaces.join(",")))
                },
                crate::domain::duration::format(now.duration),
                inert(&now.requester.user),
            )
        };
        if let Some(uid) = &self.uid {
            if now.uid.as_ref() != Some(uid) {
                return Err(BackendError::Conflict(format!(
                    "{} is not the request you read: it was deleted and asked again ({}); nothing was changed: read it again",
                    now.name,
                    what()
                )));
            }
        }
        if let Some(digest) = &self.digest {
            if *digest != now.seen() {
                return Err(BackendError::Conflict(format!(
                    "{} changed since you read it ({}); nothing was changed: read it again",
                    now.name,
                    what()
                )));
            }
        }
        Ok(())
    }
}

/// A new request, as a requester creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub cluster: String,
    pub requester: Subject,
    pub role: RoleRef,
    pub namespaces: Vec<String>,
    pub duration: Duration,
    pub reason: String,
    pub ticket: Option<String>,
    pub credentials: Credentials,
    /// Asks to extend this live grant (same cluster): approved, it is a
    /// grant of its own that starts when approved.
    pub extends: Option<String>,
}

impl NewRequest {
    /// The stored request this becomes, before anyone decides on it.
    pub fn into_request(self, name: String, created_at: DateTime<Utc>) -> AccessRequest {
        AccessRequest {
            name,
            uid: None,
            cluster: self.cluster,
            created_at,
            requester: self.requester,
            role: self.role,
            namespaces: self.namespaces,
            duration: self.duration,
            reason: self.reason,
            ticket: self.ticket,
            credentials: self.credentials,
            extends: self.extends,
            status: Default::default(),
            malformed: None,
        }
    }
}

/// In which role a caller acted when refused: the hint says what *they*
/// need (a requester is told about the requester role, an approver about
/// the approver role or `bind` on the role at hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Asking, withdrawing, extending, logging in.
    Requester,
    /// Approving, denying, shortening, revoking.
    Approver,
    /// Listing and reading (either role may).
    Viewer,
}

/// "you (bob) may not approve x: …", or the text alone when the refusal
/// was phrased elsewhere (the server's answer already says it).
fn refusal(user: &str, action: &str, text: &str) -> String {
    if user.is_empty() && action.is_empty() {
        text.to_string()
    } else {
        format!("you ({user}) may not {action}: {text}")
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BackendError {
    #[error("{0} not found (it may have been removed)")]
    NotFound(RequestKey),
    #[error("{0}")]
    Refused(#[from] PhaseError),
    #[error("{}", refusal(user, action, hint))]
    Forbidden {
        user: String,
        action: String,
        hint: String,
    },
    /// Kubernetes' escalation check refused a binding: `summary` says it
    /// in one line (how many permissions, one example, who needs `bind`
    /// on which role); `details` are the apiserver's rule lines, shown
    /// only when asked for (`-v`).
    #[error("{}", refusal(user, action, summary))]
    Escalation {
        user: String,
        action: String,
        summary: String,
        details: Vec<String>,
    },
    #[error("cluster {cluster} is unreachable: {message}")]
    Unavailable { cluster: String, message: String },
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Someone else changed it first (a racing approver, a revoke).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Config(String),
}

/// Who is at the console, as the backend authenticates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// `demo`, `kube`, `http`.
    pub kind: &'static str,
    /// Who is at the console, as the backend verified them.
    pub approver: Subject,
    pub clusters: Vec<String>,
    /// What the console calls a cluster, where it is not its context name
    /// (direct mode: the kubeconfig cluster's name or a configured one).
    pub cluster_names: std::collections::BTreeMap<String, String>,
    /// Set when the approver's identity could not be verified (shown in
    /// the header; approvals are refused).
    pub identity_note: Option<String>,
    /// Whether the groups in a request's `requester` were verified (by the
    /// server or the demo); in direct mode they are the requester's claim
    /// and never count as access already held.
    pub requester_groups_verified: bool,
}

#[async_trait]
pub trait AccessBackend: Send + Sync {
    fn info(&self) -> BackendInfo;

    /// The backend's notion of now (the demo can run on a manual clock).
    fn now(&self) -> DateTime<Utc>;

    /// Subscribes to live changes; starts with a full snapshot.
    fn watch(&self) -> mpsc::UnboundedReceiver<BackendEvent>;

    async fn create(&self, request: NewRequest) -> Result<AccessRequest, BackendError>;
    /// `op` on `key`, refused (Conflict) unless the request is still what
    /// `seen` says the decider was shown.
    async fn decide(
        &self,
        key: &RequestKey,
        seen: &Seen,
        op: Op,
    ) -> Result<AccessRequest, BackendError>;

    /// [`Self::decide`] naming nothing that was seen.
    async fn approve(
        &self,
        key: &RequestKey,
        spec: ApproveSpec,
    ) -> Result<AccessRequest, BackendError> {
        self.decide(key, &Seen::default(), Op::Approve(spec)).await
    }
    async fn deny(&self, key: &RequestKey, reason: &str) -> Result<AccessRequest, BackendError> {
        let op = Op::Deny {
            reason: reason.into(),
        };
        self.decide(key, &Seen::default(), op).await
    }
    async fn shorten(
        &self,
        key: &RequestKey,
        new_end: DateTime<Utc>,
    ) -> Result<AccessRequest, BackendError> {
        self.decide(key, &Seen::default(), Op::Shorten { new_end })
            .await
    }
    async fn revoke(&self, key: &RequestKey, reason: &str) -> Result<AccessRequest, BackendError> {
        let op = Op::Revoke {
            reason: reason.into(),
        };
        self.decide(key, &Seen::default(), op).await
    }
    async fn withdraw(&self, key: &RequestKey) -> Result<AccessRequest, BackendError>;
    /// The requester ends their own live grant now ("I'm done"): recorded
    /// as revoked by them, ended and verified like a revoke.
    async fn release(&self, key: &RequestKey) -> Result<AccessRequest, BackendError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{RoleRef, Subject};

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
