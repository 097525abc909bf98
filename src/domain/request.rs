//! Access requests, decisions and grants, with the phase state machine.
//!
//! A request is the whole lifecycle object (as the `AccessRequest` CRD in
//! DESIGN.md): asked for by a requester, decided by an approver, live while
//! `Active`, and ended in a terminal phase that never changes again.
//! Transitions are methods that check their preconditions and return a
//! [`PhaseError`] instead of changing anything when one fails.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use thiserror::Error;

/// Times as seconds and nanoseconds when a request is encoded (the
/// console keeps ended requests compact): RFC 3339 text would be a third
/// of an ended request's bytes. Lossless for every time chrono holds.
pub(crate) mod compact_time {
    use chrono::{DateTime, Utc};
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        (t.timestamp(), t.timestamp_subsec_nanos()).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let (secs, nanos) = <(i64, u32)>::deserialize(d)?;
        DateTime::from_timestamp(secs, nanos).ok_or_else(|| D::Error::custom("time out of range"))
    }

    pub(crate) mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            t.map(|t| (t.timestamp(), t.timestamp_subsec_nanos()))
                .serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            use serde::de::Error;
            Option::<(i64, u32)>::deserialize(d)?
                .map(|(secs, nanos)| {
                    DateTime::from_timestamp(secs, nanos)
                        .ok_or_else(|| D::Error::custom("time out of range"))
                })
                .transpose()
        }
    }
}

/// Who is asking: a user name and the groups the requester says they have.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    pub user: String,
    pub groups: Vec<String>,
}

impl Subject {
    pub fn new(user: impl Into<String>, groups: &[&str]) -> Self {
        Self {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// Without the groups the apiserver's authenticators give everyone of
    /// their kind (`system:authenticated`, `system:serviceaccounts…`): they
    /// say nothing to an approver, and the RBAC engine adds them again
    /// ([`super::rbac::engine::effective_groups`]).
    pub fn declared(&self) -> Subject {
        Subject {
            user: self.user.clone(),
            groups: self.declared_groups().map(str::to_string).collect(),
        }
    }

    /// The groups of [`Self::declared`], borrowed (for a screen drawn every
    /// frame).
    pub fn declared_groups(&self) -> impl Iterator<Item = &str> {
        self.groups
            .iter()
            .map(String::as_str)
            .filter(|g| !super::rbac::engine::implied_group(g))
    }
}

/// Where a request applies: `cluster-wide`, or its namespaces joined with
/// commas (as `get`, `diff` and the verbs print it).
pub fn scope_text(namespaces: &[String]) -> String {
    if namespaces.is_empty() {
        "cluster-wide".into()
    } else {
        namespaces.join(",")
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum RoleKind {
    Role,
    ClusterRole,
}

impl fmt::Display for RoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoleKind::Role => "Role",
            RoleKind::ClusterRole => "ClusterRole",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RoleRef {
    pub kind: RoleKind,
    pub name: String,
}

impl RoleRef {
    pub fn cluster_role(name: &str) -> Self {
        Self {
            kind: RoleKind::ClusterRole,
            name: name.into(),
        }
    }
    pub fn role(name: &str) -> Self {
        Self {
            kind: RoleKind::Role,
            name: name.into(),
        }
    }
}

/// How the grant reaches the requester: bind the user directly, or a
/// per-grant ServiceAccount the requester mints short tokens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Credentials {
    #[default]
    Identity,
    Token,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Phase {
    Pending,
    Active,
    Denied,
    Expired,
    Revoked,
    /// Ended early by its own requester ("I'm done"); before 0.9 such an
    /// end was stored as `Revoked` by the requester ([`AccessRequest::released`]).
    Released,
    Withdrawn,
    Failed,
}

impl Phase {
    /// Terminal phases never change again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Phase::Pending | Phase::Active)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Active => "Active",
            Phase::Denied => "Denied",
            Phase::Expired => "Expired",
            Phase::Revoked => "Revoked",
            Phase::Released => "Released",
            Phase::Withdrawn => "Withdrawn",
            Phase::Failed => "Failed",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Verdict {
    Approved,
    Denied,
}

/// An approver's decision, with who, when and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    pub by: String,
    #[serde(with = "compact_time")]
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    pub reason: Option<String>,
    /// What was granted (approvals only): may be shorter than asked.
    pub duration: Option<Duration>,
    /// What was granted (approvals only): may be fewer than asked.
    pub namespaces: Vec<String>,
}

/// What an approver grants: at most what was asked, possibly less.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub by: String,
    #[serde(with = "compact_time")]
    pub at: DateTime<Utc>,
    pub duration: Duration,
    pub namespaces: Vec<String>,
    pub reason: Option<String>,
}

/// One approver's word on a request (a request may need several).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Review {
    pub by: String,
    #[serde(with = "compact_time")]
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    /// What this approver would grant: at most what was asked.
    pub duration: Option<Duration>,
    pub namespaces: Vec<String>,
    pub reason: Option<String>,
}

/// A binding a grant created (kept in the status so revocation deletes
/// exactly those and nothing else).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BindingRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// The uid the apiserver gave the object when the grant created it
    /// (None until recorded): deletion goes by uid, not by labels a
    /// grantee may edit.
    pub uid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub phase: Option<Phase>,
    pub decision: Option<Decision>,
    #[serde(with = "compact_time::option")]
    pub granted_at: Option<DateTime<Utc>>,
    #[serde(with = "compact_time::option")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the grant or request ended (revoked, expired, withdrawn).
    #[serde(with = "compact_time::option")]
    pub ended_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
    pub message: Option<String>,
    pub bindings: Vec<BindingRef>,
    /// Approvals so far, while more are needed (kept after the grant).
    pub reviews: Vec<Review>,
}

/// Not serde: the wire formats are the CRD and the API's own types; the
/// console's compact store encodes its parts (`app::store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// Object name, unique per cluster.
    pub name: String,
    /// The stored object's uid: a request deleted and asked again under
    /// the same name is another request, with another uid. A decision
    /// names it ([`AccessRequest::seen`]). None where nothing stores it yet.
    pub uid: Option<String>,
    /// The kubeconfig context (cluster) the request is for.
    pub cluster: String,
    pub created_at: DateTime<Utc>,
    pub requester: Subject,
    pub role: RoleRef,
    /// Empty = cluster-wide (ClusterRoleBinding; ClusterRole only).
    pub namespaces: Vec<String>,
    /// How long once granted; the clock starts at approval.
    pub duration: Duration,
    pub reason: String,
    pub ticket: Option<String>,
    pub credentials: Credentials,
    /// The live grant this request asks to extend, if any.
    pub extends: Option<String>,
    pub status: Status,
    /// Why the stored object could not be read as a request (wrong types,
    /// missing fields): such a request is invalid and can only be denied.
    pub malformed: Option<String>,
}

/// Bounds an organisation sets on what may be asked and granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationLimits {
    pub max_duration: Duration,
    pub max_reason_chars: usize,
    pub approval_timeout: Duration,
    /// The roles approvers may hand out; None: any they may bind.
    pub grantable: Option<Vec<super::grantable::Grantable>>,
}

impl ValidationLimits {
    /// Refuses a role the cluster does not let approvers hand out.
    pub fn check_grantable(&self, role: &RoleRef, namespaces: &[String]) -> Result<(), String> {
        match &self.grantable {
            None => Ok(()),
            Some(list) if list.iter().any(|g| g.allows(role, namespaces)) => Ok(()),
            Some(list) => Err(format!(
                "{} {} is not a grantable role on this cluster (grantable: {})",
                role.kind,
                crate::domain::sanitize::inert(&role.name, 64),
                list.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

impl Default for ValidationLimits {
    fn default() -> Self {
        Self {
            max_duration: Duration::from_secs(8 * 3600),
            max_reason_chars: MAX_REASON_CHARS,
            approval_timeout: Duration::from_secs(24 * 3600),
            grantable: None,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ValidationError {
    #[error("a reason is required")]
    ReasonRequired,
    #[error("the reason is {0} characters; at most {1} are allowed")]
    ReasonTooLong(usize, usize),
    #[error("a Role is namespaced: name exactly one namespace (got {0})")]
    RoleNeedsOneNamespace(usize),
    #[error("cluster-wide access (no namespace) is only possible with a ClusterRole")]
    ClusterWideNeedsClusterRole,
    #[error("the duration must be longer than zero")]
    ZeroDuration,
    #[error("{asked} is longer than the allowed maximum of {max}")]
    DurationTooLong { asked: String, max: String },
    #[error("the requester has no user name")]
    NoRequester,
    #[error("malformed object: {0}")]
    Malformed(String),
    #[error("the role has no name")]
    NoRole,
    #[error("'{0}' is not a valid name (lowercase letters, digits and '-', at most 63)")]
    BadName(String),
    #[error("namespace '{0}' is listed twice")]
    DuplicateNamespace(String),
    #[error("'{0}' holds Portcullis' own objects: access there is never granted")]
    SystemNamespace(String),
    #[error("the requester '{0}' is a system identity (anonymous, a ServiceAccount, a node…): grants go to people")]
    SystemRequester(String),
    #[error("{0} namespaces are asked for; at most {MAX_NAMESPACES} are allowed (ask cluster-wide instead)")]
    TooManyNamespaces(usize),
    #[error("the ticket is {0} characters; at most {MAX_TICKET_CHARS} are allowed")]
    TicketTooLong(usize),
}

/// What a release records as the revoke reason.
pub const RELEASE_REASON: &str = "released by the requester";

/// Most namespaces one request may name (also the CRD schema's bound).
pub const MAX_NAMESPACES: usize = 32;
/// Longest ticket reference (also the CRD schema's bound).
pub const MAX_TICKET_CHARS: usize = 128;
/// Longest reason (the default limit, and the CRD schema's bound).
pub const MAX_REASON_CHARS: usize = 1024;

/// Where credentials-mode Token keeps per-grant ServiceAccounts and their
/// minting rights: a grant there could mint tokens for other grants.
pub const SYSTEM_NAMESPACE: &str = "portcullis-system";

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PhaseError {
    #[error("{name} is {phase}: only a Pending request can be {action}")]
    NotPending {
        name: String,
        phase: Phase,
        action: &'static str,
    },
    #[error("{name} is {phase}: only a live grant can be {action}")]
    NotActive {
        name: String,
        phase: Phase,
        action: &'static str,
    },
    #[error("you ({0}) asked for this: someone else must approve it")]
    SelfApproval(String),
    #[error("you ({0}) asked for this: withdraw it (`portcullis withdraw`) rather than deny it")]
    SelfDenial(String),
    #[error("only the requester ({0}) can withdraw this request")]
    NotRequester(String),
    #[error("only its requester ({0}) can release this grant; approvers revoke")]
    NotGrantee(String),
    #[error("a reason is required")]
    ReasonRequired,
    #[error("{0} is longer than asked ({1}): a grant can only be shorter")]
    LongerThanAsked(String, String),
    #[error("namespace '{0}' was not asked for: a grant can only be narrower")]
    NamespaceNotAsked(String),
    #[error("choose at least one namespace")]
    NoNamespace,
    #[error("the grant already ends in {0}: shorten can only move the end earlier")]
    NotShorter(String),
    #[error("the new end must be in the future; revoke ends a grant now")]
    EndInPast,
    #[error("the request is invalid and can never be approved: {0}")]
    Invalid(ValidationError),
    #[error("{0} has waited longer than the approval timeout ({1}): it expires, ask again")]
    TimedOut(String, String),
    #[error("you ({0}) already approved this: it needs someone else's approval too")]
    AlreadyReviewed(String),
    #[error("the approvals so far share no namespace with yours: grant at least one they granted")]
    NoCommonNamespace,
}

pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_role_name(s: &str) -> bool {
    // Role names are path segments: RBAC allows ':' (system:aggregate-to-edit).
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_'))
}

impl AccessRequest {
    /// A digest of what a decider is shown of this request and decides on:
    /// where, who (and their groups), which role, where and how long, how
    /// credentials are given, what it extends, the reason and ticket. A
    /// decision that names it is refused if the request no longer has it.
    pub fn seen(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        // Each field length-prefixed: no two requests share an encoding.
        let mut field = |s: &str| {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        };
        field(&self.cluster);
        field(&self.name);
        field(self.uid.as_deref().unwrap_or_default());
        field(&self.requester.user);
        for g in &self.requester.groups {
            field(g);
        }
        field("");
        field(&self.role.kind.to_string());
        field(&self.role.name);
        for ns in &self.namespaces {
            field(ns);
        }
        field("");
        field(&self.duration.as_secs().to_string());
        field(&format!("{:?}", self.credentials));
        field(self.extends.as_deref().unwrap_or_default());
        field(&self.reason);
        field(self.ticket.as_deref().unwrap_or_default());
        let digest = h.finalize();
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn phase(&self) -> Phase {
        self.status.phase.unwrap_or(Phase::Pending)
    }

    pub fn is_cluster_wide(&self) -> bool {
        self.namespaces.is_empty()
    }

    /// Checks the request itself, independent of its phase.
    pub fn validate(&self, limits: &ValidationLimits) -> Result<(), ValidationError> {
        if let Some(why) = &self.malformed {
            return Err(ValidationError::Malformed(why.clone()));
        }
        if self.requester.user.trim().is_empty() {
            return Err(ValidationError::NoRequester);
        }
        // `system:anonymous` would grant every unauthenticated client; a
        // ServiceAccount an approver controls would let them approve for
        // themselves under another name.
        if self.requester.user.starts_with("system:") {
            return Err(ValidationError::SystemRequester(
                crate::domain::sanitize::inert(&self.requester.user, 64).into(),
            ));
        }
        if self.role.name.is_empty() {
            return Err(ValidationError::NoRole);
        }
        if !is_role_name(&self.role.name) {
            return Err(ValidationError::BadName(
                crate::domain::sanitize::inert(&self.role.name, 64).into(),
            ));
        }
        let reason_chars = self.reason.chars().count();
        if self.reason.trim().is_empty() {
            return Err(ValidationError::ReasonRequired);
        }
        if reason_chars > limits.max_reason_chars {
            return Err(ValidationError::ReasonTooLong(
                reason_chars,
                limits.max_reason_chars,
            ));
        }
        if let Some(t) = &self.ticket {
            let n = t.chars().count();
            if n > MAX_TICKET_CHARS {
                return Err(ValidationError::TicketTooLong(n));
            }
        }
        if self.namespaces.len() > MAX_NAMESPACES {
            return Err(ValidationError::TooManyNamespaces(self.namespaces.len()));
        }
        match (self.role.kind, self.namespaces.len()) {
            (RoleKind::Role, 1) => {}
            (RoleKind::Role, n) => return Err(ValidationError::RoleNeedsOneNamespace(n)),
            (RoleKind::ClusterRole, _) => {}
        }
        let mut seen = BTreeSet::new();
        for ns in &self.namespaces {
            if !is_dns_label(ns) {
                return Err(ValidationError::BadName(
                    crate::domain::sanitize::inert(ns, 64).into(),
                ));
            }
            if !seen.insert(ns) {
                return Err(ValidationError::DuplicateNamespace(ns.clone()));
            }
            if ns == SYSTEM_NAMESPACE {
                return Err(ValidationError::SystemNamespace(ns.clone()));
            }
        }
        if self.duration.is_zero() {
            return Err(ValidationError::ZeroDuration);
        }
        if self.duration > limits.max_duration {
            return Err(ValidationError::DurationTooLong {
                asked: crate::domain::duration::format(self.duration),
                max: crate::domain::duration::format(limits.max_duration),
            });
        }
        Ok(())
    }

    /// Remaining time of a live grant (zero when over or not live).
    pub fn remaining(&self, now: DateTime<Utc>) -> Duration {
        match (self.phase(), self.status.expires_at) {
            (Phase::Active, Some(end)) => (end - now).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        }
    }

    fn require_pending(&self, action: &'static str) -> Result<(), PhaseError> {
        match self.phase() {
            Phase::Pending => Ok(()),
            phase => Err(PhaseError::NotPending {
                name: self.name.clone(),
                phase,
                action,
            }),
        }
    }

    fn require_active(&self, action: &'static str) -> Result<(), PhaseError> {
        match self.phase() {
            Phase::Active => Ok(()),
            phase => Err(PhaseError::NotActive {
                name: self.name.clone(),
                phase,
                action,
            }),
        }
    }

    /// Checks an approval without applying it.
    pub fn check_approval(
        &self,
        approval: &Approval,
        limits: &ValidationLimits,
    ) -> Result<(), PhaseError> {
        self.require_pending("approved")?;
        self.validate(limits).map_err(PhaseError::Invalid)?;
        if approval.by == self.requester.user {
            return Err(PhaseError::SelfApproval(approval.by.clone()));
        }
        let timeout = TimeDelta::from_std(limits.approval_timeout).unwrap_or(TimeDelta::MAX);
        if approval.at - self.created_at >= timeout {
            return Err(PhaseError::TimedOut(
                self.name.clone(),
                crate::domain::duration::format(limits.approval_timeout),
            ));
        }
        if approval.duration.is_zero() {
            return Err(PhaseError::Invalid(ValidationError::ZeroDuration));
        }
        if approval.duration > self.duration {
            return Err(PhaseError::LongerThanAsked(
                crate::domain::duration::format(approval.duration),
                crate::domain::duration::format(self.duration),
            ));
        }
        if let Some(ns) = approval
            .namespaces
            .iter()
            .find(|ns| !self.namespaces.contains(ns))
        {
            return Err(PhaseError::NamespaceNotAsked(ns.clone()));
        }
        if !self.namespaces.is_empty() && approval.namespaces.is_empty() {
            return Err(PhaseError::NoNamespace);
        }
        Ok(())
    }

    /// Pending → Active. The clock starts now, at approval.
    pub fn approve(
        &mut self,
        approval: Approval,
        limits: &ValidationLimits,
    ) -> Result<(), PhaseError> {
        self.check_approval(&approval, limits)?;
        let expires =
            approval.at + TimeDelta::from_std(approval.duration).unwrap_or(TimeDelta::MAX);
        self.status.phase = Some(Phase::Active);
        self.status.granted_at = Some(approval.at);
        self.status.expires_at = Some(expires);
        self.status.decision = Some(Decision {
            by: approval.by,
            at: approval.at,
            verdict: Verdict::Approved,
            reason: approval.reason,
            duration: Some(approval.duration),
            namespaces: approval.namespaces,
        });
        Ok(())
    }

    /// Records one approver's approval. When `required` distinct approvers
    /// (never the requester; the same approver twice counts once) have
    /// approved, the request is granted — with the narrowest namespaces
    /// and the shortest duration any of them gave — and this returns true.
    pub fn review(
        &mut self,
        approval: Approval,
        required: usize,
        limits: &ValidationLimits,
    ) -> Result<bool, PhaseError> {
        self.check_approval(&approval, limits)?;
        if self
            .status
            .reviews
            .iter()
            .any(|r| r.by == approval.by && r.verdict == Verdict::Approved)
        {
            return Err(PhaseError::AlreadyReviewed(approval.by));
        }
        let mut reviews = self.status.reviews.clone();
        reviews.push(Review {
            by: approval.by.clone(),
            at: approval.at,
            verdict: Verdict::Approved,
            duration: Some(approval.duration),
            namespaces: approval.namespaces.clone(),
            reason: approval.reason.clone(),
        });
        let approvals: Vec<&Review> = reviews
            .iter()
            .filter(|r| r.verdict == Verdict::Approved && r.by != self.requester.user)
            .collect();
        if approvals.len() < required.max(1) {
            self.status.reviews = reviews;
            return Ok(false);
        }
        let duration = approvals
            .iter()
            .filter_map(|r| r.duration)
            .min()
            .unwrap_or(approval.duration);
        let namespaces: Vec<String> = self
            .namespaces
            .iter()
            .filter(|ns| approvals.iter().all(|r| r.namespaces.contains(ns)))
            .cloned()
            .collect();
        if namespaces.is_empty() && !self.namespaces.is_empty() {
            return Err(PhaseError::NoCommonNamespace);
        }
        self.approve(
            Approval {
                duration,
                namespaces,
                ..approval
            },
            limits,
        )?;
        self.status.reviews = reviews;
        Ok(true)
    }

    /// Distinct approvers so far.
    pub fn approvals(&self) -> Vec<&str> {
        self.status
            .reviews
            .iter()
            .filter(|r| r.verdict == Verdict::Approved)
            .map(|r| r.by.as_str())
            .collect()
    }

    /// Pending → Denied, with a required reason. Invalid requests can be denied.
    pub fn deny(&mut self, by: &str, at: DateTime<Utc>, reason: &str) -> Result<(), PhaseError> {
        self.require_pending("denied")?;
        // A denial is a decision on someone else's ask; one's own is
        // withdrawn, and recorded as that.
        if by == self.requester.user {
            return Err(PhaseError::SelfDenial(by.into()));
        }
        if reason.trim().is_empty() {
            return Err(PhaseError::ReasonRequired);
        }
        self.status.phase = Some(Phase::Denied);
        self.status.ended_at = Some(at);
        self.status.decision = Some(Decision {
            by: by.into(),
            at,
            verdict: Verdict::Denied,
            reason: Some(reason.trim().into()),
            duration: None,
            namespaces: Vec::new(),
        });
        Ok(())
    }

    /// Pending → Withdrawn, by the requester only.
    pub fn withdraw(&mut self, by: &str, at: DateTime<Utc>) -> Result<(), PhaseError> {
        self.require_pending("withdrawn")?;
        if by != self.requester.user {
            return Err(PhaseError::NotRequester(self.requester.user.clone()));
        }
        self.status.phase = Some(Phase::Withdrawn);
        self.status.ended_at = Some(at);
        Ok(())
    }

    /// Moves a live grant's end earlier, never later, never into the past.
    pub fn shorten(
        &mut self,
        new_end: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), PhaseError> {
        self.require_active("shortened")?;
        let current = self.status.expires_at.unwrap_or(now);
        if new_end >= current {
            return Err(PhaseError::NotShorter(
                crate::domain::duration::format_chrono(current - now),
            ));
        }
        if new_end <= now {
            return Err(PhaseError::EndInPast);
        }
        self.status.expires_at = Some(new_end);
        Ok(())
    }

    /// Active → Revoked now, with a required reason.
    pub fn revoke(&mut self, by: &str, at: DateTime<Utc>, reason: &str) -> Result<(), PhaseError> {
        self.require_active("revoked")?;
        if reason.trim().is_empty() {
            return Err(PhaseError::ReasonRequired);
        }
        self.status.phase = Some(Phase::Revoked);
        self.status.ended_at = Some(at);
        self.status.revoked_by = Some(by.into());
        self.status.revoke_reason = Some(reason.trim().into());
        Ok(())
    }

    /// Active → Released now by its own requester, who is done with it:
    /// `revokedBy` names them, with [`RELEASE_REASON`], and it ends
    /// (bindings deleted, the end verified) like any revoke. Nobody else
    /// can release a grant.
    pub fn release(&mut self, by: &str, at: DateTime<Utc>) -> Result<(), PhaseError> {
        self.require_active("released")?;
        if by != self.requester.user {
            return Err(PhaseError::NotGrantee(self.requester.user.clone()));
        }
        self.status.phase = Some(Phase::Released);
        self.status.ended_at = Some(at);
        self.status.revoked_by = Some(by.into());
        self.status.revoke_reason = Some(RELEASE_REASON.into());
        Ok(())
    }

    /// Whether the grant was ended early by its own requester: `Released`
    /// (or, as stored before it existed, `Revoked`) in the requester's
    /// name with [`RELEASE_REASON`]. A `Released` naming anyone else is
    /// no release: it is read as that person's revoke.
    pub fn released(&self) -> bool {
        matches!(self.phase(), Phase::Released | Phase::Revoked)
            && self.status.revoked_by.as_deref() == Some(self.requester.user.as_str())
            && self.status.revoke_reason.as_deref() == Some(RELEASE_REASON)
    }

    /// Ends a live grant past its expiry, or a pending request past the
    /// approval timeout. Returns whether anything changed.
    pub fn expire_if_due(&mut self, now: DateTime<Utc>, limits: &ValidationLimits) -> bool {
        match self.phase() {
            Phase::Active => match self.status.expires_at {
                Some(end) if end <= now => {
                    self.status.phase = Some(Phase::Expired);
                    self.status.ended_at = Some(end);
                    true
                }
                _ => false,
            },
            Phase::Pending => {
                let timeout =
                    TimeDelta::from_std(limits.approval_timeout).unwrap_or(TimeDelta::MAX);
                if now - self.created_at >= timeout {
                    self.status.phase = Some(Phase::Expired);
                    self.status.ended_at = Some(now);
                    self.status.message = Some("not decided within the approval timeout".into());
                    true
                } else {
                    false
                }
            }
            _ => false,
        }
    }

    /// When this request may leave the store: `retention` after it ended,
    /// its audit records being what remains of it. None while it has not
    /// ended, or when `retention` is zero (kept for good).
    pub fn forgettable_at(&self, retention: Duration) -> Option<DateTime<Utc>> {
        if !self.phase().is_terminal() || retention.is_zero() {
            return None;
        }
        let ended = self
            .status
            .ended_at
            .or(self.status.decision.as_ref().map(|d| d.at))
            .unwrap_or(self.created_at);
        Some(ended + TimeDelta::from_std(retention).unwrap_or(TimeDelta::MAX))
    }

    /// How long a grant runs: the approval's duration (never longer than
    /// asked), else the asked one.
    pub fn granted_duration(&self) -> std::time::Duration {
        match &self.status.decision {
            Some(d) if d.verdict == Verdict::Approved => d.duration.unwrap_or(self.duration),
            _ => self.duration,
        }
    }

    /// Whether it was approved for less than asked (shorter or in fewer
    /// namespaces).
    pub fn approved_narrower(&self) -> bool {
        matches!(&self.status.decision, Some(d) if d.verdict == Verdict::Approved)
            && (self.granted_duration() < self.duration
                || self.granted_namespaces() != self.namespaces.as_slice())
    }

    /// The namespaces a grant covers: the decision's, else the asked ones.
    pub fn granted_namespaces(&self) -> &[String] {
        match &self.status.decision {
            Some(d) if d.verdict == Verdict::Approved => &d.namespaces,
            _ => &self.namespaces,
        }
    }

    /// Whether this request may extend `live`: the same person on the same
    /// cluster asking for the same role over no more than `live` grants,
    /// while `live` is still a live grant.
    ///
    /// An approved extension is a grant of its own: its clock starts at its
    /// approval and runs for its own duration, so an approver sees exactly
    /// until when they grant; `live` still ends when it was due to (the
    /// two overlap, they do not add up). Nothing about `live` changes, so a
    /// grant is never kept open by editing it.
    pub fn check_extends(&self, live: &AccessRequest) -> Result<(), ExtensionError> {
        if live.cluster != self.cluster {
            return Err(ExtensionError::OtherCluster(live.name.clone()));
        }
        if live.phase() != Phase::Active {
            return Err(ExtensionError::NotLive(live.name.clone(), live.phase()));
        }
        if live.requester.user != self.requester.user {
            return Err(ExtensionError::OtherRequester(
                live.name.clone(),
                live.requester.user.clone(),
            ));
        }
        if live.role != self.role {
            return Err(ExtensionError::OtherRole(live.name.clone()));
        }
        let granted = live.granted_namespaces();
        if !granted.is_empty() {
            if self.namespaces.is_empty() {
                return Err(ExtensionError::Wider(
                    live.name.clone(),
                    "cluster-wide".into(),
                ));
            }
            if let Some(ns) = self.namespaces.iter().find(|n| !granted.contains(n)) {
                return Err(ExtensionError::Wider(live.name.clone(), ns.clone()));
            }
        }
        Ok(())
    }
}

/// Why a request cannot extend the grant it names.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ExtensionError {
    #[error("{0} is {1}: only a live grant can be extended")]
    NotLive(String, Phase),
    #[error("{0} is {1}'s grant: only its requester can ask to extend it")]
    OtherRequester(String, String),
    #[error("{0} is a grant on another cluster")]
    OtherCluster(String),
    #[error("an extension asks for the same role as {0}")]
    OtherRole(String),
    #[error("an extension asks for no more than {0} grants ({1} is not in it)")]
    Wider(String, String),
    #[error("no grant named {0}")]
    Unknown(String),
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
    /// The name the apiserver completes with a random suffix: who asks and
    /// where (`alice-payments-`), so a list reads without opening each.
    pub fn name_prefix(&self) -> String {
        format!(
            "{}-{}-",
            self.requester
                .user
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(40)
                .collect::<String>()
                .to_ascii_lowercase(),
            self.namespaces
                .first()
                .map(String::as_str)
                .unwrap_or("cluster")
        )
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn req() -> AccessRequest {
        AccessRequest {
            name: "alice-payments-1".into(),
            uid: None,
            cluster: "prod-eu".into(),
            created_at: t(0),
            requester: Subject::new("alice", &["dev"]),
            role: RoleRef::cluster_role("edit"),
            namespaces: vec!["payments".into(), "orders".into()],
            duration: Duration::from_secs(1800),
            reason: "INC-1 payments stuck".into(),
            ticket: Some("INC-1".into()),
            credentials: Credentials::Identity,
            extends: None,
            status: Status::default(),
            malformed: None,
        }
    }

    fn approval(by: &str, mins: u64, ns: &[&str]) -> Approval {
        Approval {
            by: by.into(),
            at: t(60),
            duration: Duration::from_secs(mins * 60),
            namespaces: ns.iter().map(|s| s.to_string()).collect(),
            reason: None,
        }
    }

    #[test]
    fn an_extension_asks_for_no_more_than_the_live_grant() {
        let mut live = req();
        live.approve(approval("bob", 30, &["payments"]), &Default::default())
            .unwrap();
        let mut ext = req();
        ext.name = "alice-payments-2".into();
        ext.extends = Some(live.name.clone());
        ext.namespaces = vec!["payments".into()];
        assert_eq!(ext.check_extends(&live), Ok(()));
        // "orders" was asked for but not granted: not in the live grant.
        ext.namespaces = vec!["payments".into(), "orders".into()];
        assert_eq!(
            ext.check_extends(&live),
            Err(ExtensionError::Wider(live.name.clone(), "orders".into()))
        );
        ext.namespaces = vec![];
        assert!(matches!(
            ext.check_extends(&live),
            Err(ExtensionError::Wider(..))
        ));
        ext.namespaces = vec!["payments".into()];
        ext.role = RoleRef::cluster_role("admin");
        assert!(matches!(
            ext.check_extends(&live),
            Err(ExtensionError::OtherRole(_))
        ));
        ext.role = live.role.clone();
        ext.requester = Subject::new("mallory", &["dev"]);
        assert!(matches!(
            ext.check_extends(&live),
            Err(ExtensionError::OtherRequester(_, u)) if u == "alice"
        ));
        ext.requester = live.requester.clone();
        ext.cluster = "staging".into();
        assert!(matches!(
            ext.check_extends(&live),
            Err(ExtensionError::OtherCluster(_))
        ));
        ext.cluster = live.cluster.clone();
        live.revoke("bob", t(120), "done").unwrap();
        assert!(matches!(
            ext.check_extends(&live),
            Err(ExtensionError::NotLive(_, Phase::Revoked))
        ));
        // A pending request is not a grant either.
        assert!(matches!(
            ext.check_extends(&req()),
            Err(ExtensionError::NotLive(_, Phase::Pending))
        ));
    }

    #[test]
    fn only_the_requester_releases_a_live_grant() {
        let mut r = req();
        assert!(matches!(
            r.release("alice", t(10)),
            Err(PhaseError::NotActive { .. })
        ));
        r.approve(approval("bob", 30, &["payments"]), &Default::default())
            .unwrap();
        let before = r.clone();
        assert_eq!(
            r.release("mallory", t(120)),
            Err(PhaseError::NotGrantee("alice".into()))
        );
        assert_eq!(r, before, "a refused release changes nothing");
        r.release("alice", t(120)).unwrap();
        assert_eq!(
            r.phase(),
            Phase::Released,
            "stored as released, not revoked"
        );
        assert!(r.released());
        assert_eq!(r.status.ended_at, Some(t(120)));
        assert_eq!(r.status.revoke_reason.as_deref(), Some(RELEASE_REASON));
        // Once ended, never again.
        assert!(r.release("alice", t(130)).is_err());
        // A release as stored before `Released` existed still reads as one.
        r.status.phase = Some(Phase::Revoked);
        assert!(r.released());
        r.status.revoke_reason = Some("incident over".into());
        assert!(
            !r.released(),
            "the requester's own revoke with a reason is a revoke"
        );
        // `Released` in anyone else's name is no release.
        r.status.phase = Some(Phase::Released);
        r.status.revoke_reason = Some(RELEASE_REASON.into());
        r.status.revoked_by = Some("mallory".into());
        assert!(!r.released());
    }

    #[test]
    fn approve_starts_clock_at_approval() {
        let mut r = req();
        r.approve(approval("bob", 15, &["payments"]), &Default::default())
            .unwrap();
        assert_eq!(r.phase(), Phase::Active);
        assert_eq!(r.status.granted_at, Some(t(60)));
        assert_eq!(r.status.expires_at, Some(t(60 + 900)));
        assert_eq!(r.granted_namespaces(), ["payments".to_string()]);
        assert_eq!(r.remaining(t(60)), Duration::from_secs(900));
    }

    #[test]
    fn self_approval_is_refused() {
        let mut r = req();
        let err = r.approve(approval("alice", 15, &["payments"]), &Default::default());
        assert_eq!(err, Err(PhaseError::SelfApproval("alice".into())));
        assert_eq!(r.phase(), Phase::Pending);
        assert!(err.unwrap_err().to_string().contains("someone else"));
    }

    #[test]
    fn approve_cannot_widen_or_lengthen() {
        let mut r = req();
        let l = ValidationLimits::default();
        assert!(matches!(
            r.approve(approval("bob", 31, &["payments"]), &l),
            Err(PhaseError::LongerThanAsked(..))
        ));
        assert_eq!(
            r.approve(approval("bob", 10, &["kube-system"]), &l),
            Err(PhaseError::NamespaceNotAsked("kube-system".into()))
        );
        assert_eq!(
            r.approve(approval("bob", 10, &[]), &l),
            Err(PhaseError::NoNamespace)
        );
        assert_eq!(r.phase(), Phase::Pending);
    }

    #[test]
    fn terminal_phases_never_change() {
        let l = ValidationLimits::default();
        let mut r = req();
        r.deny("bob", t(5), "no ticket").unwrap();
        assert!(r.phase().is_terminal());
        assert!(r.approve(approval("bob", 10, &["payments"]), &l).is_err());
        assert!(r.withdraw("alice", t(6)).is_err());
        assert!(r.revoke("bob", t(6), "x").is_err());
        assert!(r.shorten(t(100), t(6)).is_err());
        assert!(!r.expire_if_due(t(1_000_000), &l));
        assert_eq!(r.phase(), Phase::Denied);
    }

    #[test]
    fn an_ended_request_may_leave_the_store_only_after_its_retention() {
        let day = Duration::from_secs(86_400);
        let mut r = req();
        assert_eq!(r.forgettable_at(day), None, "pending: kept");
        r.approve(
            approval("bob", 10, &["payments"]),
            &ValidationLimits::default(),
        )
        .unwrap();
        assert_eq!(r.forgettable_at(day), None, "live: kept");
        r.revoke("carol", t(120), "done").unwrap();
        let ended = r.status.ended_at.expect("an end");
        assert_eq!(
            r.forgettable_at(day),
            Some(ended + TimeDelta::days(1)),
            "a day after it ended"
        );
        assert_eq!(r.forgettable_at(Duration::ZERO), None, "zero: for good");
    }

    #[test]
    fn nobody_denies_their_own_request() {
        let mut r = req();
        let before = r.clone();
        assert_eq!(
            r.deny("alice", t(1), "changed my mind"),
            Err(PhaseError::SelfDenial("alice".into()))
        );
        assert_eq!(r, before);
        r.withdraw("alice", t(1)).unwrap();
        assert_eq!(r.phase(), Phase::Withdrawn);
    }

    #[test]
    fn deny_and_revoke_need_reasons() {
        let mut r = req();
        assert_eq!(r.deny("bob", t(1), "   "), Err(PhaseError::ReasonRequired));
        r.approve(approval("bob", 10, &["payments"]), &Default::default())
            .unwrap();
        assert_eq!(r.revoke("bob", t(100), ""), Err(PhaseError::ReasonRequired));
        r.revoke("bob", t(100), " done ").unwrap();
        assert_eq!(r.phase(), Phase::Revoked);
        assert!(!r.released(), "a revoke by an approver is no release");
        assert_eq!(r.status.revoke_reason.as_deref(), Some("done"));
        assert_eq!(r.status.ended_at, Some(t(100)));
    }

    #[test]
    fn shorten_only_moves_expiry_earlier_and_not_into_the_past() {
        let mut r = req();
        r.approve(approval("bob", 30, &["payments"]), &Default::default())
            .unwrap();
        let end = r.status.expires_at.unwrap();
        assert!(matches!(
            r.shorten(end + TimeDelta::seconds(1), t(100)),
            Err(PhaseError::NotShorter(_))
        ));
        assert!(matches!(
            r.shorten(end, t(100)),
            Err(PhaseError::NotShorter(_))
        ));
        assert_eq!(r.shorten(t(99), t(100)), Err(PhaseError::EndInPast));
        r.shorten(t(700), t(100)).unwrap();
        assert_eq!(r.status.expires_at, Some(t(700)));
        assert_eq!(r.remaining(t(100)), Duration::from_secs(600));
    }

    #[test]
    fn withdraw_only_by_requester() {
        let mut r = req();
        assert_eq!(
            r.withdraw("bob", t(1)),
            Err(PhaseError::NotRequester("alice".into()))
        );
        r.withdraw("alice", t(1)).unwrap();
        assert_eq!(r.phase(), Phase::Withdrawn);
    }

    #[test]
    fn grants_and_pending_requests_expire() {
        let l = ValidationLimits::default();
        let mut r = req();
        assert!(!r.expire_if_due(t(3600), &l));
        assert!(r.expire_if_due(t(24 * 3600), &l));
        assert_eq!(r.phase(), Phase::Expired);

        let mut g = req();
        g.approve(approval("bob", 10, &["orders"]), &l).unwrap();
        assert!(!g.expire_if_due(t(60 + 599), &l));
        assert!(g.expire_if_due(t(60 + 600), &l));
        assert_eq!(g.status.ended_at, Some(t(660)));
    }

    #[test]
    fn validation_messages() {
        let l = ValidationLimits::default();
        let mut r = req();
        r.reason = " ".into();
        assert_eq!(r.validate(&l), Err(ValidationError::ReasonRequired));
        r.reason = "x".repeat(2000);
        assert_eq!(
            r.validate(&l),
            Err(ValidationError::ReasonTooLong(2000, 1024))
        );
        r.reason = "ok".into();
        r.role = RoleRef::role("deployer");
        assert_eq!(
            r.validate(&l),
            Err(ValidationError::RoleNeedsOneNamespace(2))
        );
        r.namespaces = vec!["payments".into()];
        assert_eq!(r.validate(&l), Ok(()));
        r.namespaces.clear();
        assert_eq!(
            r.validate(&l),
            Err(ValidationError::RoleNeedsOneNamespace(0))
        );
        r.role = RoleRef::cluster_role("view");
        assert_eq!(r.validate(&l), Ok(()));
        r.duration = Duration::from_secs(9 * 3600);
        assert_eq!(
            r.validate(&l).unwrap_err().to_string(),
            "9h is longer than the allowed maximum of 8h"
        );
        r.duration = Duration::ZERO;
        assert_eq!(r.validate(&l), Err(ValidationError::ZeroDuration));
        r.duration = Duration::from_secs(60);
        r.namespaces = vec!["a".into(), "a".into()];
        assert_eq!(
            r.validate(&l),
            Err(ValidationError::DuplicateNamespace("a".into()))
        );
        r.namespaces = vec!["portcullis-system".into()];
        assert_eq!(
            r.validate(&l),
            Err(ValidationError::SystemNamespace("portcullis-system".into()))
        );
        r.namespaces = vec!["Bad_NS\x1b".into()];
        assert!(matches!(r.validate(&l), Err(ValidationError::BadName(n)) if !n.contains('\x1b')));
    }

    #[test]
    fn two_approvers_grant_the_narrowest_and_shortest() {
        let l = ValidationLimits::default();
        let mut r = req();
        assert_eq!(
            r.review(approval("bob", 20, &["payments", "orders"]), 2, &l),
            Ok(false)
        );
        assert_eq!(r.phase(), Phase::Pending);
        assert_eq!(
            r.review(approval("bob", 20, &["payments"]), 2, &l),
            Err(PhaseError::AlreadyReviewed("bob".into())),
            "the same approver twice counts once"
        );
        assert_eq!(
            r.review(approval("alice", 20, &["payments"]), 2, &l),
            Err(PhaseError::SelfApproval("alice".into())),
            "the requester never counts"
        );
        assert_eq!(
            r.review(approval("carol", 10, &["payments"]), 2, &l),
            Ok(true)
        );
        assert_eq!(r.phase(), Phase::Active);
        assert_eq!(r.granted_namespaces(), ["payments".to_string()]);
        assert_eq!(r.status.expires_at, Some(t(60 + 600)), "the shortest: 10m");
        assert_eq!(r.approvals(), ["bob", "carol"]);
    }

    #[test]
    fn approvals_with_nothing_in_common_grant_nothing() {
        let l = ValidationLimits::default();
        let mut r = req();
        r.review(approval("bob", 20, &["orders"]), 2, &l).unwrap();
        assert_eq!(
            r.review(approval("carol", 20, &["payments"]), 2, &l),
            Err(PhaseError::NoCommonNamespace)
        );
        assert_eq!(r.phase(), Phase::Pending);
        assert_eq!(r.approvals(), ["bob"]);
    }

    #[test]
    fn system_identities_never_request() {
        let l = ValidationLimits::default();
        for user in [
            "system:anonymous",
            "system:serviceaccount:ci:bot",
            "system:node:n1",
        ] {
            let mut r = req();
            r.requester.user = user.into();
            assert!(
                matches!(r.validate(&l), Err(ValidationError::SystemRequester(_))),
                "{user}"
            );
        }
    }

    #[test]
    fn a_request_past_the_approval_timeout_is_not_approved() {
        let l = ValidationLimits {
            approval_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        let mut r = req();
        assert!(matches!(
            r.approve(approval("bob", 10, &["payments"]), &l),
            Err(PhaseError::TimedOut(..))
        ));
        assert_eq!(r.phase(), Phase::Pending);
    }

    #[test]
    fn invalid_request_is_never_approved_but_can_be_denied() {
        let mut r = req();
        r.reason = String::new();
        assert!(matches!(
            r.approve(approval("bob", 10, &["payments"]), &Default::default()),
            Err(PhaseError::Invalid(ValidationError::ReasonRequired))
        ));
        r.deny("bob", t(2), "invalid").unwrap();
        assert_eq!(r.phase(), Phase::Denied);
    }
}
