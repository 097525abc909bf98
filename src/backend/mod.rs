//! The one trait every source of access requests implements, and the events
//! it streams. The console only ever talks to a backend through this trait:
//! the embedded demo now, direct-on-cluster (`kube`) and a broker (`http`)
//! later. Requester context (standing access, live grants, past requests)
//! is derived from the RBAC inventory and the request stream, so the trait
//! needs no extra call for it.

pub mod batch;
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
use crate::domain::{AccessRequest, PhaseError, Subject, ValidationLimits};
pub use crate::domain::{NewRequest, RequestKey, Seen, Stale};

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

/// One operation on one request: the one value the console's effects, the
/// verbs, the server's routes and every backend carry. The approver's four
/// are decisions (they name what was seen); the requester's own two
/// (withdraw, release) carry nothing.
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
    /// The requester takes back their pending request.
    Withdraw,
    /// The requester ends their own live grant now ("I'm done"): recorded
    /// as revoked by them, ended and verified like a revoke.
    Release,
}

impl Op {
    /// Which operation this is.
    pub fn kind(&self) -> OpKind {
        match self {
            Op::Approve(_) => OpKind::Approve,
            Op::Deny { .. } => OpKind::Deny,
            Op::Shorten { .. } => OpKind::Shorten,
            Op::Revoke { .. } => OpKind::Revoke,
            Op::Withdraw => OpKind::Withdraw,
            Op::Release => OpKind::Release,
        }
    }

    /// The verb, as the API's paths and the audit trail spell it.
    pub fn verb(&self) -> &'static str {
        self.kind().verb()
    }
}

/// Which operation on one request, without its particulars: what the
/// API's paths, the metrics, the audit trail and the console's outcomes
/// name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    Approve,
    Deny,
    Shorten,
    Revoke,
    Withdraw,
    Release,
}

impl OpKind {
    pub const ALL: [OpKind; 6] = [
        OpKind::Approve,
        OpKind::Deny,
        OpKind::Shorten,
        OpKind::Revoke,
        OpKind::Withdraw,
        OpKind::Release,
    ];

    /// As the API's paths and the audit trail spell it.
    pub fn verb(self) -> &'static str {
        match self {
            OpKind::Approve => "approve",
            OpKind::Deny => "deny",
            OpKind::Shorten => "shorten",
            OpKind::Revoke => "revoke",
            OpKind::Withdraw => "withdraw",
            OpKind::Release => "release",
        }
    }

    /// Approver's decisions (the rest are the requester's own).
    pub fn is_decision(self) -> bool {
        matches!(
            self,
            OpKind::Approve | OpKind::Deny | OpKind::Shorten | OpKind::Revoke
        )
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

impl From<Stale> for BackendError {
    fn from(e: Stale) -> Self {
        BackendError::Conflict(e.0)
    }
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
    /// Whether the one at the console may approve: false for a requester
    /// (the console says "requester" and offers only what they may do);
    /// None when the backend could not tell.
    pub may_approve: Option<bool>,
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
    /// `op` on `key`. A decision is refused (Conflict) unless the request
    /// is still what `seen` says the decider was shown; the requester's own
    /// two (withdraw, release) name nothing seen.
    async fn apply(
        &self,
        key: &RequestKey,
        seen: &Seen,
        op: Op,
    ) -> Result<AccessRequest, BackendError>;

    /// [`Self::apply`] naming nothing that was seen.
    async fn approve(
        &self,
        key: &RequestKey,
        spec: ApproveSpec,
    ) -> Result<AccessRequest, BackendError> {
        self.apply(key, &Seen::default(), Op::Approve(spec)).await
    }
    async fn deny(&self, key: &RequestKey, reason: &str) -> Result<AccessRequest, BackendError> {
        let op = Op::Deny {
            reason: reason.into(),
        };
        self.apply(key, &Seen::default(), op).await
    }
    async fn shorten(
        &self,
        key: &RequestKey,
        new_end: DateTime<Utc>,
    ) -> Result<AccessRequest, BackendError> {
        self.apply(key, &Seen::default(), Op::Shorten { new_end })
            .await
    }
    async fn revoke(&self, key: &RequestKey, reason: &str) -> Result<AccessRequest, BackendError> {
        let op = Op::Revoke {
            reason: reason.into(),
        };
        self.apply(key, &Seen::default(), op).await
    }
    /// The requester takes back their pending request.
    async fn withdraw(&self, key: &RequestKey) -> Result<AccessRequest, BackendError> {
        self.apply(key, &Seen::default(), Op::Withdraw).await
    }
    /// The requester ends their own live grant now.
    async fn release(&self, key: &RequestKey) -> Result<AccessRequest, BackendError> {
        self.apply(key, &Seen::default(), Op::Release).await
    }
}
