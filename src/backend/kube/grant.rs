//! The grant engine: approve, deny, shorten, revoke, withdraw, expire and
//! undo, each once, for the console, the verbs and the reaper alike.
//!
//! Every decision is a status write with a resourceVersion precondition on
//! the request as just read, so of two racing writers exactly one wins and
//! the other is told what happened. `decision.by` and `revokedBy` are the
//! actor's identity as the apiserver verified it; times are the apiserver's
//! clock. Approval order, chosen so a crash at any point leaves nothing the
//! reaper does not finish or undo:
//!
//! 1. dry-run create every binding (a missing right fails before any write);
//! 2. claim: status Active with the bindings it is about to create, by name;
//! 3. add the `portcullis.dev/grant` finalizer, so deleting the request
//!    cannot end (or, through garbage collection, strip) a live grant early;
//! 4. create the bindings;
//! 5. record their uids in the status.
//!
//! A claim whose uids are still missing after a grace period is an
//! approval that died half-way: the reaper deletes what exists and marks
//! the request Failed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{json, Value};

use super::cluster::{Fault, FaultPoint, KubeCluster};
use super::identity::Identity;
use super::objects::{self, CreateError};
use super::settings::ClusterSettings;
use super::verify;
use crate::backend::{ApproveSpec, BackendError, Op, RequestKey, Seen};
use crate::crd::wire;
use crate::domain::request::{Approval, BindingRef};
use crate::domain::{AccessRequest, NewRequest, Phase, PhaseError, ValidationLimits};

/// Where a grant's record lives and where its bindings go: one cluster in
/// direct mode; the hub (every request, one clock) and the request's target
/// cluster under the server.
#[derive(Clone, Copy)]
pub struct Site<'a> {
    /// Holds the AccessRequest (status, finalizer) and keeps the time.
    pub store: &'a KubeCluster,
    /// Gets the bindings; its name is the request's cluster.
    pub target: &'a KubeCluster,
    /// The limits that apply; None reads the target's own ConfigMap.
    pub settings: Option<&'a ClusterSettings>,
}

impl<'a> Site<'a> {
    /// Direct mode: the request and its bindings on the same cluster.
    pub fn direct(cluster: &'a KubeCluster) -> Self {
        Self {
            store: cluster,
            target: cluster,
            settings: None,
        }
    }
}

/// Keeps a live grant's request in place until its bindings are gone.
pub const FINALIZER: &str = "portcullis.dev/grant";

/// How often a write that lost a race is retried on a fresh read.
const RETRIES: usize = 5;

/// A request as just read, with what its next write needs.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub req: AccessRequest,
    pub obj: DynamicObject,
}

impl Fetched {
    pub fn uid(&self) -> &str {
        self.obj.metadata.uid.as_deref().unwrap_or_default()
    }
    pub fn resource_version(&self) -> &str {
        self.obj
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or_default()
    }
    pub fn has_finalizer(&self) -> bool {
        has_finalizer(&self.obj)
    }
}

pub fn has_finalizer(obj: &DynamicObject) -> bool {
    obj.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

pub fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

pub use crate::backend::Caller;

/// What a caller refused by RBAC needs, by the role they acted in.
fn needs(caller: Caller) -> &'static str {
    match caller {
        Caller::Requester => "ask for the portcullis-requester role",
        Caller::Approver => "ask for the portcullis-approver role",
        Caller::Viewer => {
            "ask for the portcullis-requester role (to ask for access) or portcullis-approver (to decide)"
        }
    }
}

pub fn map_err(site: &Site<'_>, caller: Caller, action: &str, e: kube::Error) -> BackendError {
    match e {
        kube::Error::Api(s) if s.code == 403 => BackendError::Forbidden {
            user: site.target.identity.user.clone(),
            action: action.into(),
            hint: format!(
                "{} (the apiserver: {})",
                needs(caller),
                super::refusal::denial(&s.message)
            ),
        },
        kube::Error::Api(s) if s.code == 404 => {
            BackendError::Invalid(format!("{action}: not found ({})", s.message))
        }
        // Only an object that predates the CRD's schema is refused as
        // invalid on a status or finalizer write (the apiserver validates
        // the whole object).
        kube::Error::Api(s) if s.code == 422 => BackendError::Invalid(format!(
            "{action}: the apiserver refuses any change to this request because it does not fit the AccessRequest schema (it predates it): a cluster admin deletes it with kubectl delete accessrequest ({})",
            s.message
        )),
        e => BackendError::Unavailable {
            cluster: site.target.context.clone(),
            message: format!("{action}: {e}"),
        },
    }
}

fn key(site: &Site<'_>, name: &str) -> RequestKey {
    RequestKey {
        cluster: site.target.context.clone(),
        name: name.into(),
    }
}

pub fn read(site: &Site<'_>, obj: DynamicObject) -> Fetched {
    let value = serde_json::to_value(&obj).unwrap_or(Value::Null);
    Fetched {
        req: wire::request_from_json(&site.target.context, &value),
        obj,
    }
}

/// The request as stored now; `None` when it does not exist.
pub async fn fetch_opt(site: &Site<'_>, name: &str) -> Result<Option<Fetched>, kube::Error> {
    Ok(site
        .store
        .requests()
        .get_opt(name)
        .await?
        .map(|obj| read(site, obj)))
}

pub async fn fetch(site: &Site<'_>, caller: Caller, name: &str) -> Result<Fetched, BackendError> {
    match fetch_opt(site, name).await {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(BackendError::NotFound(key(site, name))),
        Err(e) => Err(map_err(site, caller, "read the request", e)),
    }
}

/// A status write lost a race (409) or failed.
#[derive(Debug)]
pub enum WriteError {
    Conflict,
    Gone,
    Failed(kube::Error),
}

/// Writes the whole status with a resourceVersion precondition.
pub async fn write_status(
    site: &Site<'_>,
    req: &AccessRequest,
    resource_version: &str,
) -> Result<Fetched, WriteError> {
    let patch = json!({"metadata": {"resourceVersion": resource_version}, "status": wire::status_json(req)});
    match site
        .store
        .requests()
        .patch_status(&req.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(obj) => Ok(read(site, obj)),
        Err(e) if status_code(&e) == Some(409) => Err(WriteError::Conflict),
        Err(e) if status_code(&e) == Some(404) => Err(WriteError::Gone),
        Err(e) => Err(WriteError::Failed(e)),
    }
}

/// What a loser of a race is told: who decided, and that nothing changed.
async fn lost_race(site: &Site<'_>, name: &str) -> BackendError {
    let who = match fetch_opt(site, name).await {
        Ok(Some(now)) => match (&now.req.status.decision, now.req.phase()) {
            (Some(d), _) => format!("{} already decided it ({:?})", d.by, d.verdict),
            (None, phase) if phase != Phase::Pending => format!("it is already {phase}"),
            _ => "someone else changed it first".into(),
        },
        Ok(None) => "it was deleted".into(),
        Err(_) => "someone else changed it first".into(),
    };
    BackendError::Conflict(format!("{name}: {who}; nothing was changed"))
}

fn write_err(site: &Site<'_>, caller: Caller, e: WriteError) -> BackendError {
    match e {
        WriteError::Conflict => BackendError::Invalid("the request changed while writing".into()),
        WriteError::Gone => BackendError::Invalid("the request was deleted".into()),
        WriteError::Failed(e) => map_err(site, caller, "update the request status", e),
    }
}

/// A binding of an approval could not be made. Kubernetes' escalation
/// check (the binder lacks `bind` on the role and does not hold all of
/// it) is said in one line: how many permissions, one example, and who
/// needs `bind` on which role — the approver in direct mode, the server's
/// identity when the server binds.
fn create_err(
    site: &Site<'_>,
    actor: &Identity,
    req: &AccessRequest,
    e: CreateError,
) -> BackendError {
    let r = &e.reference;
    let where_ = r
        .namespace
        .as_deref()
        .map(|n| format!(" in {n}"))
        .unwrap_or_default();
    match e.error {
        kube::Error::Api(s) if s.code == 409 => BackendError::Invalid(format!(
            "a {} named {}{where_} already exists and was not made for this grant: nothing was granted",
            r.kind, r.name
        )),
        kube::Error::Api(s) if s.code == 403 => match super::refusal::escalation(&s.message) {
            Some(esc) => {
                let binder = &site.target.identity.user;
                let (who, holds, whom) = if *binder == actor.user {
                    ("you".to_string(), "you do not hold", "approvers".to_string())
                } else {
                    (
                        format!("the Portcullis server ({binder})"),
                        "it does not hold",
                        format!("the server's identity ({binder})"),
                    )
                };
                let n = esc.permissions();
                let scope = r
                    .namespace
                    .as_deref()
                    .map(|ns| format!(" in {ns}"))
                    .unwrap_or_else(|| " cluster-wide".into());
                let example = esc
                    .example()
                    .map(|e| format!(", e.g. {e}{scope}"))
                    .unwrap_or_default();
                let role = match req.role.kind {
                    crate::domain::RoleKind::ClusterRole => {
                        format!("clusterrole {}", req.role.name)
                    }
                    crate::domain::RoleKind::Role => format!(
                        "role {} in {}",
                        req.role.name,
                        r.namespace.as_deref().unwrap_or_default()
                    ),
                };
                BackendError::Escalation {
                    user: actor.user.clone(),
                    action: format!("approve {}", req.name),
                    summary: format!(
                        "{who} would grant {n} permission{} {holds}{example}: give {whom} `bind` on {role} (-v lists them)",
                        if n == 1 { "" } else { "s" }
                    ),
                    details: esc.lines,
                }
            }
            None => map_err(
                site,
                Caller::Approver,
                &format!("create a {}{where_}", r.kind),
                kube::Error::Api(s),
            ),
        },
        other => map_err(
            site,
            Caller::Approver,
            &format!("create a {}{where_}", r.kind),
            other,
        ),
    }
}

fn refuse_unverified(actor: &Identity, action: &str) -> Result<(), BackendError> {
    if actor.is_verified() {
        return Ok(());
    }
    Err(BackendError::Forbidden {
        user: actor.user.clone(),
        action: action.into(),
        hint: format!(
            "your identity could not be verified by the apiserver ({}), so Portcullis will not record you as the approver",
            actor.note.as_deref().unwrap_or("no way to verify it")
        ),
    })
}

/// The cluster's limits for decisions; unreadable or invalid settings
/// refuse (fail closed).
async fn limits(site: &Site<'_>) -> Result<ClusterSettings, BackendError> {
    match site.settings {
        Some(s) => Ok(s.clone()),
        None => site
            .target
            .settings()
            .await
            .map_err(|e| BackendError::Config(e.to_string())),
    }
}

/// Approves `name` as `actor`, at most what was asked.
pub async fn approve(
    site: &Site<'_>,
    actor: &Identity,
    name: &str,
    spec: ApproveSpec,
) -> Result<AccessRequest, BackendError> {
    review(site, actor, name, &Seen::default(), spec, 1).await
}

/// One decision as `actor` (an approval counting as one of `required`),
/// refused unless the request it changes is what `seen` says the actor
/// was shown: checked on the very read whose resourceVersion the write
/// is conditional on, so a request deleted and asked again in between
/// is never the one decided.
pub async fn decide(
    site: &Site<'_>,
    actor: &Identity,
    name: &str,
    seen: &Seen,
    op: Op,
    required: usize,
) -> Result<AccessRequest, BackendError> {
    match op {
        Op::Approve(spec) => review(site, actor, name, seen, spec, required).await,
        Op::Deny { reason } => deny(site, actor, name, seen, &reason).await,
        Op::Shorten { new_end } => shorten(site, actor, name, seen, new_end).await,
        Op::Revoke { reason } => revoke(site, actor, name, seen, &reason).await,
        Op::Withdraw => withdraw(site, actor, name).await,
        // Who ends a released grant differs: direct, the reaper (after the
        // requester deletes the release binding); the server, itself. Each
        // carries it out before it gets here.
        Op::Release => Err(BackendError::Invalid(
            "a release is carried out by the backend, not decided".into(),
        )),
    }
}

/// Stores a new request on the site's store (`Caller`: in which role a
/// refusal names the one who stores it); `on_hub`: the server's store,
/// which names the request's cluster.
pub(crate) async fn create(
    site: &Site<'_>,
    new: &NewRequest,
    on_hub: bool,
    caller: Caller,
    what: &str,
) -> Result<AccessRequest, BackendError> {
    let obj: DynamicObject = serde_json::from_value(wire::new_object(new, on_hub))
        .map_err(|e| BackendError::Invalid(e.to_string()))?;
    let created = site
        .store
        .requests()
        .create(&PostParams::default(), &obj)
        .await
        .map_err(|e| map_err(site, caller, what, e))?;
    Ok(read(site, created).req)
}

/// One approval of the `required` distinct approvals (never the
/// requester's): recorded in the status; the last one grants, with the
/// narrowest scope and the shortest duration any approver gave.
pub async fn review(
    site: &Site<'_>,
    actor: &Identity,
    name: &str,
    seen: &Seen,
    spec: ApproveSpec,
    required: usize,
) -> Result<AccessRequest, BackendError> {
    refuse_unverified(actor, "approve")?;
    // Two reads that do not depend on each other: one round trip.
    let (settings, asked) = tokio::join!(limits(site), fetch(site, Caller::Approver, name));
    let (settings, asked) = (settings?, asked?);
    seen.check(&asked.req)?;
    settings
        .limits
        .check_grantable(&asked.req.role, &spec.namespaces)
        .map_err(BackendError::Invalid)?;
    site.store.clock.ensure_fresh(&site.target.client).await;
    let mut req = asked.req.clone();
    let granted = req.review(
        Approval {
            by: actor.user.clone(),
            at: site.store.clock.now(),
            duration: spec.duration,
            namespaces: spec.namespaces,
            reason: spec.reason,
        },
        required,
        &settings.limits,
    )?;
    if !granted {
        // Not enough approvals yet: record this one, nothing is bound.
        return match write_status(site, &req, asked.resource_version()).await {
            Ok(done) => Ok(done.req),
            Err(WriteError::Conflict | WriteError::Gone) => Err(lost_race(site, name).await),
            Err(e) => Err(write_err(site, Caller::Approver, e)),
        };
    }
    let uid = asked.uid().to_string();
    let plan = objects::grant_plan(&req, &uid, &actor.user);
    objects::create_all(&site.target.client, &plan, &uid, true, &mut Vec::new())
        .await
        .map_err(|e| create_err(site, actor, &req, e))?;

    req.status.bindings = plan.iter().map(|p| p.reference.clone()).collect();
    let claimed = match write_status(site, &req, asked.resource_version()).await {
        Ok(c) => c,
        Err(WriteError::Conflict | WriteError::Gone) => return Err(lost_race(site, name).await),
        Err(e) => return Err(write_err(site, Caller::Approver, e)),
    };
    match site.store.take_fault(FaultPoint::AfterClaim) {
        Some(Fault::PauseAfterClaim(d)) => tokio::time::sleep(d).await,
        Some(f) => return Err(crashed(site, f)),
        None => {}
    }
    // The finalizer and the bindings at once (one round trip, not two):
    // the claim already says an approval is under way, so a binding made
    // a moment before the finalizer is never one nobody accounts for —
    // whichever fails, what was made is deleted before the approver hears
    // anything, and a crash in between is the reaper's to finish or undo
    // (as after any step).
    let mut made = Vec::new();
    let (protected, created) = tokio::join!(
        protect(site, name, &claimed),
        objects::create_all(&site.target.client, &plan, &uid, false, &mut made)
    );
    if let Some(f) = site.store.take_fault(FaultPoint::BeforeRecord) {
        return Err(crashed(site, f));
    }
    let failed = match (protected, created) {
        (Ok(protected), Ok(())) => {
            return record_made(site, name, &claimed, &made, protected).await
        }
        (Err(err), _) => err,
        (Ok(_), Err(e)) => create_err(site, actor, &req, e),
    };
    undo(site, name, &made, &failed.to_string()).await;
    Err(failed)
}

/// Step 3: the finalizer, on the grant this approval claimed — unless it
/// ended meanwhile (revoked, expired, failed), which stops the approval.
async fn protect(site: &Site<'_>, name: &str, claimed: &Fetched) -> Result<Fetched, BackendError> {
    // First on the claim as written (one request when nothing raced it).
    let mut now = claimed.clone();
    for _ in 0..RETRIES {
        if now.req.phase() != Phase::Active
            || now.req.status.decision != claimed.req.status.decision
        {
            return Err(BackendError::Conflict(format!(
                "{name} became {} while it was being approved; nothing was granted",
                now.req.phase()
            )));
        }
        match add_finalizer(site, &now).await {
            Ok(protected) => return Ok(protected),
            Err(e) if status_code(&e) == Some(409) => {
                now = fetch(site, Caller::Approver, name).await?;
            }
            Err(e) => {
                return Err(map_err(
                    site,
                    Caller::Approver,
                    "protect the request with a finalizer",
                    e,
                ))
            }
        }
    }
    Err(lost_race(site, name).await)
}

/// An injected crash: the approval stops without cleaning up.
fn crashed(site: &Site<'_>, f: Fault) -> BackendError {
    BackendError::Unavailable {
        cluster: site.target.context.clone(),
        message: format!("injected fault {f:?}: the approval stopped here"),
    }
}

/// Step 5: the uids, on a fresh read; if the grant ended meanwhile
/// (revoked, expired, failed), or the request was deleted (and perhaps
/// asked again under its name), what was just made is deleted again
/// before the approver hears anything: no binding outlives a failed
/// approval until the reaper's sweep.
async fn record_made(
    site: &Site<'_>,
    name: &str,
    claimed: &Fetched,
    made: &[BindingRef],
    last_seen: Fetched,
) -> Result<AccessRequest, BackendError> {
    let removed = |why: String| async move {
        match objects::delete_refs(&site.target.client, made).await {
            Ok(()) => BackendError::Conflict(format!(
                "{name} {why} while it was being approved; the bindings just made were removed again"
            )),
            Err(e) => BackendError::Conflict(format!(
                "{name} {why} while it was being approved; the bindings just made could not be removed now ({e}): the reaper removes them"
            )),
        }
    };
    let mut now = last_seen;
    for attempt in 0..RETRIES {
        if attempt > 0 {
            now = match fetch_opt(site, name).await {
                Ok(Some(f)) => f,
                Ok(None) => return Err(removed("was deleted".into()).await),
                Err(e) => {
                    let err = map_err(site, Caller::Approver, "read the request", e);
                    return Err(removed(format!("could not be read ({err})")).await);
                }
            };
        }
        let same_grant = now.uid() == claimed.uid()
            && now.req.phase() == Phase::Active
            && now.req.status.decision == claimed.req.status.decision;
        if !same_grant {
            let why = if now.uid() != claimed.uid() {
                "was deleted and asked again".to_string()
            } else {
                format!("became {}", now.req.phase())
            };
            return Err(removed(why).await);
        }
        let mut req = now.req.clone();
        for b in &mut req.status.bindings {
            if let Some(m) = made
                .iter()
                .find(|m| m.kind == b.kind && m.namespace == b.namespace && m.name == b.name)
            {
                b.uid = m.uid.clone();
            }
        }
        match write_status(site, &req, now.resource_version()).await {
            Ok(done) => return Ok(done.req),
            Err(WriteError::Conflict) => continue,
            Err(WriteError::Gone) => return Err(removed("was deleted".into()).await),
            Err(WriteError::Failed(e)) => {
                let err = map_err(site, Caller::Approver, "update the request status", e);
                return Err(removed(format!("could not be recorded ({err})")).await);
            }
        }
    }
    Err(BackendError::Unavailable {
        cluster: site.target.context.clone(),
        message: format!("{name}: the status kept changing while recording the bindings; the reaper will finish or undo it"),
    })
}

/// An approval that failed after its claim: delete what was made, mark the
/// request Failed with why. Best effort: whatever this cannot do, the
/// reaper does after the grace period.
pub async fn undo(site: &Site<'_>, name: &str, made: &[BindingRef], why: &str) {
    if let Err(e) = objects::delete_refs(&site.target.client, made).await {
        tracing::warn!(request = %name, error = %e, "could not remove the bindings of a failed approval; the reaper will");
    }
    if let Err(e) = end(
        site,
        name,
        Ending::Fail {
            message: why.into(),
        },
        &ValidationLimits::default(),
    )
    .await
    {
        tracing::warn!(request = %name, error = %e, "could not mark the failed approval");
    }
}

async fn add_finalizer(site: &Site<'_>, f: &Fetched) -> Result<Fetched, kube::Error> {
    if f.has_finalizer() {
        return Ok(f.clone());
    }
    let mut list = f.obj.metadata.finalizers.clone().unwrap_or_default();
    list.push(FINALIZER.into());
    let patch = json!({"metadata": {"finalizers": list, "resourceVersion": f.resource_version()}});
    site.store
        .requests()
        .patch(&f.req.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|obj| read(site, obj))
}

/// Adds the finalizer to a live grant that lacks it (the reaper's repair).
pub async fn ensure_finalizer(site: &Site<'_>, name: &str) -> Result<(), kube::Error> {
    for _ in 0..RETRIES {
        let Some(f) = fetch_opt(site, name).await? else {
            return Ok(());
        };
        if f.req.phase() != Phase::Active || f.obj.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        match add_finalizer(site, &f).await {
            Err(e) if status_code(&e) == Some(409) => continue,
            other => return other.map(|_| ()),
        }
    }
    Ok(())
}

/// Lets a request go once nothing of its grant is left.
pub async fn remove_finalizer(site: &Site<'_>, name: &str) -> Result<(), kube::Error> {
    for _ in 0..RETRIES {
        let Some(f) = fetch_opt(site, name).await? else {
            return Ok(());
        };
        if !f.has_finalizer() {
            return Ok(());
        }
        let list: Vec<String> = f
            .obj
            .metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|x| x != FINALIZER)
            .collect();
        let patch =
            json!({"metadata": {"finalizers": list, "resourceVersion": f.resource_version()}});
        match site
            .store
            .requests()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if status_code(&e) == Some(409) => continue,
            Err(e) if status_code(&e) == Some(404) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Pending → Denied, with the reason.
pub async fn deny(
    site: &Site<'_>,
    actor: &Identity,
    name: &str,
    seen: &Seen,
    reason: &str,
) -> Result<AccessRequest, BackendError> {
    refuse_unverified(actor, "deny")?;
    let f = fetch(site, Caller::Approver, name).await?;
    seen.check(&f.req)?;
    let mut req = f.req.clone();
    req.deny(&actor.user, site.store.clock.now(), reason)?;
    match write_status(site, &req, f.resource_version()).await {
        Ok(done) => Ok(done.req),
        Err(WriteError::Conflict | WriteError::Gone) => Err(lost_race(site, name).await),
        Err(e) => Err(write_err(site, Caller::Approver, e)),
    }
}

/// Moves a live grant's end earlier (the apiserver's clock decides "now").
pub async fn shorten(
    site: &Site<'_>,
    actor: &Identity,
    name: &str,
    seen: &Seen,
    new_end: DateTime<Utc>,
) -> Result<AccessRequest, BackendError> {
    refuse_unverified(actor, "shorten")?;
    for _ in 0..RETRIES {
        let f = fetch(site, Caller::Approver, name).await?;
        seen.check(&f.req)?;
        let mut req = f.req.clone();
        req.shorten(new_end, site.store.clock.now())?;
        match write_status(site, &req, f.resource_version()).await {
            Ok(done) => {
                objects::annotate_expiry(&site.target.client, &done.req).await;
                return Ok(done.req);
            }
            // A verification note or a uid record landed first: try again
            // on what is there now (the phase check above re-runs).
            Err(WriteError::Conflict) => continue,
            Err(e) => return Err(write_err(site, Caller::Approver, e)),
        }
    }
    Err(lost_race(site, name).await)
}

/// Ends a live grant now. Never reports "nothing changed" when access was
/// removed: a lost race is retried on a fresh read.
pub async fn revoke(
    site: &Site<'_>,
    actor: &Identity,
    name: &str,
    seen: &Seen,
    reason: &str,
) -> Result<AccessRequest, BackendError> {
    refuse_unverified(actor, "revoke")?;
    // Checked before ending (not on the ending write): a revoke only
    // takes access away, so a swap in between costs nothing.
    if !seen.is_empty() {
        seen.check(&fetch(site, Caller::Approver, name).await?.req)?;
    }
    match end(
        site,
        name,
        Ending::Revoke {
            by: actor.user.clone(),
            reason: reason.into(),
        },
        &ValidationLimits::default(),
    )
    .await
    {
        Ok(Ended::Done(req)) => Ok(*req),
        Ok(Ended::Already(req)) => Err(BackendError::Conflict(format!(
            "{name} had already ended ({}{}): its access is removed",
            req.phase(),
            req.status
                .revoked_by
                .as_ref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default()
        ))),
        Ok(Ended::Nothing) => Err(BackendError::NotFound(key(site, name))),
        Err(EndError::Refused(e)) => Err(e.into()),
        Err(EndError::Kube(e)) => Err(map_err(site, Caller::Approver, "revoke the grant", e)),
    }
}

/// The requester takes back their pending request: it is deleted, with
/// uid and resourceVersion preconditions, so a request approved a moment
/// earlier is never withdrawn from under its grant.
pub async fn withdraw(
    site: &Site<'_>,
    me: &Identity,
    name: &str,
) -> Result<AccessRequest, BackendError> {
    let f = fetch(site, Caller::Requester, name).await?;
    let mut req = f.req.clone();
    req.withdraw(&me.user, site.store.clock.now())?;
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(f.uid().into()),
            resource_version: Some(f.resource_version().into()),
        }),
        ..Default::default()
    };
    match site.store.requests().delete(name, &dp).await {
        Ok(_) => Ok(req),
        Err(e) if status_code(&e) == Some(409) => Err(lost_race(site, name).await),
        Err(e) => Err(map_err(
            site,
            Caller::Requester,
            "withdraw (delete) the request",
            e,
        )),
    }
}

/// How a grant (or a pending request) ends.
#[derive(Debug, Clone)]
pub enum Ending {
    Revoke {
        by: String,
        reason: String,
    },
    /// At `expiresAt`, or a pending request at the approval timeout.
    Expire,
    /// An approval that did not complete.
    Fail {
        message: String,
    },
    /// Its requester released it (see [`super::release`]): revoked in
    /// their name.
    Release,
}

#[derive(Debug)]
pub enum Ended {
    /// This call ended it.
    Done(Box<AccessRequest>),
    /// Someone else ended it first (its bindings are gone all the same).
    Already(Box<AccessRequest>),
    /// Not due, not live, or not there.
    Nothing,
}

#[derive(Debug, thiserror::Error)]
pub enum EndError {
    #[error("{0}")]
    Refused(PhaseError),
    #[error("{0}")]
    Kube(kube::Error),
}

/// Ends a request: deletes the grant's bindings first (access goes before
/// the record says so), then writes the terminal status with a
/// resourceVersion precondition, retrying on a fresh read when it loses a
/// race; then asks the apiserver to verify and lets the request go.
pub async fn end(
    site: &Site<'_>,
    name: &str,
    ending: Ending,
    limits: &ValidationLimits,
) -> Result<Ended, EndError> {
    let (mut ended, after) = end_now(site, name, ending, limits).await?;
    if let (Ended::Done(req), Some(after)) = (&mut ended, after) {
        finish(site, req, after).await.map_err(EndError::Kube)?;
    }
    Ok(ended)
}

/// What is left to do after a grant's end is recorded: verify, release.
#[derive(Debug, Clone, Copy)]
pub struct AfterEnd {
    was_active: bool,
    /// Objects this identity could not delete keep the finalizer for the
    /// reaper that may.
    left_for_reaper: bool,
}

/// Verifies an ended grant with the apiserver (recorded in
/// `status.message`), then lets its request go. The reaper runs this apart
/// from the end itself, so a burst of grants ending together is not queued
/// behind each other's verification.
pub async fn finish(
    site: &Site<'_>,
    req: &mut AccessRequest,
    after: AfterEnd,
) -> Result<(), kube::Error> {
    if after.was_active {
        if let Some(message) = record_verification(site, req).await {
            req.status.message = Some(message);
        }
    }
    if !after.left_for_reaper {
        remove_finalizer(site, &req.name).await?;
    }
    Ok(())
}

/// Ends a request now: the bindings go, the terminal status is written.
/// Returns what [`finish`] still has to do when this call ended it.
pub async fn end_now(
    site: &Site<'_>,
    name: &str,
    ending: Ending,
    limits: &ValidationLimits,
) -> Result<(Ended, Option<AfterEnd>), EndError> {
    let mut ended = None;
    for attempt in 0..RETRIES {
        let Some(f) = fetch_opt(site, name).await.map_err(EndError::Kube)? else {
            return Ok((Ended::Nothing, None));
        };
        let was_active = f.req.phase() == Phase::Active;
        // Due-ness is judged on a time the apiserver has surely reached:
        // never early by the cluster's clock.
        let now = match ending {
            Ending::Expire => site.store.clock.now_at_least(),
            _ => site.store.clock.now(),
        };
        let mut req = f.req.clone();
        let changed = match &ending {
            Ending::Revoke { by, reason } => match req.revoke(by, now, reason) {
                Ok(()) => true,
                Err(_) if attempt > 0 && f.req.phase().is_terminal() => {
                    return Ok((Ended::Already(Box::new(f.req)), None))
                }
                Err(e) => return Err(EndError::Refused(e)),
            },
            Ending::Release => {
                let by = req.requester.user.clone();
                match req.release(&by, now) {
                    Ok(()) => true,
                    Err(_) if attempt > 0 && f.req.phase().is_terminal() => {
                        return Ok((Ended::Already(Box::new(f.req)), None))
                    }
                    Err(e) => return Err(EndError::Refused(e)),
                }
            }
            Ending::Expire => req.expire_if_due(now, limits),
            Ending::Fail { message } => {
                if was_active {
                    req.status.phase = Some(Phase::Failed);
                    req.status.ended_at = Some(now);
                    req.status.message = Some(message.clone());
                }
                was_active
            }
        };
        if !changed {
            let ended = if attempt > 0 && f.req.phase().is_terminal() {
                Ended::Already(Box::new(f.req))
            } else {
                Ended::Nothing
            };
            return Ok((ended, None));
        }
        let mut left_for_reaper = false;
        if was_active {
            let deletion = objects::delete_recorded(&site.target.client, &f.req, f.uid())
                .await
                .map_err(EndError::Kube)?;
            left_for_reaper = !deletion.left.is_empty();
        }
        if site.store.take_fault(FaultPoint::BeforeEndWrite).is_some() {
            let bump = json!({"status": {"message": "written by someone else meanwhile"}});
            let _ = site
                .store
                .requests()
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&bump))
                .await;
        }
        match write_status(site, &req, f.resource_version()).await {
            Ok(done) => {
                ended = Some((done.req, was_active, left_for_reaper));
                break;
            }
            Err(WriteError::Conflict) => continue,
            Err(WriteError::Gone) => return Ok((Ended::Nothing, None)),
            Err(WriteError::Failed(e)) => return Err(EndError::Kube(e)),
        }
    }
    let Some((req, was_active, left_for_reaper)) = ended else {
        return Err(EndError::Kube(kube::Error::Service(
            "the request kept changing; will retry".into(),
        )));
    };
    Ok((
        Ended::Done(Box::new(req)),
        Some(AfterEnd {
            was_active,
            left_for_reaper,
        }),
    ))
}

/// Checks with the apiserver that an ended grant's permissions are gone and
/// records the outcome in `status.message` for auditors. Failure to verify
/// is logged, never fatal: the bindings are already deleted.
pub async fn record_verification(site: &Site<'_>, req: &AccessRequest) -> Option<String> {
    let message = match verify::verify(site.target, req).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(request = %req.name, error = %e, "could not verify the revocation");
            return None;
        }
    };
    let message = match &req.status.message {
        // Keep why an approval failed; add the verification after it.
        Some(prior) if req.phase() == Phase::Failed => format!("{prior}; {message}"),
        _ => message,
    };
    let patch = json!({"status": {"message": message}});
    if let Err(e) = site
        .store
        .requests()
        .patch_status(&req.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(request = %req.name, error = %e, "could not record the verification");
    }
    Some(message)
}

/// Token mode: the reaper makes the grant's ServiceAccount and minting
/// Role/RoleBinding and records them, once the grant is live.
pub async fn provision_tokens(site: &Site<'_>, name: &str) -> Result<(), kube::Error> {
    // Server mode (the request on a hub, the grant on a target): only the
    // ServiceAccount. The server mints its tokens itself, on the record;
    // a minting RoleBinding for the requester's hub name would let anyone
    // the target knows by that name mint off the record.
    let plan = if std::ptr::eq(site.store, site.target) {
        objects::token_plan
    } else {
        objects::token_account_plan
    };
    provision(site, name, plan, token_objects_recorded).await
}

/// Makes what `plan` lists for a live grant and records it in the status
/// (first, so an end deletes it first), unless `recorded` says it is there.
pub async fn provision(
    site: &Site<'_>,
    name: &str,
    plan: fn(&AccessRequest, &str) -> Vec<objects::Planned>,
    recorded: fn(&AccessRequest) -> bool,
) -> Result<(), kube::Error> {
    let Some(f) = fetch_opt(site, name).await? else {
        return Ok(());
    };
    if f.req.phase() != Phase::Active || recorded(&f.req) {
        return Ok(());
    }
    let plan = plan(&f.req, f.uid());
    let mut made = Vec::new();
    if let Err(e) = objects::create_all(&site.target.client, &plan, f.uid(), false, &mut made).await
    {
        let _ = objects::delete_refs(&site.target.client, &made).await;
        return Err(e.error);
    }
    for _ in 0..RETRIES {
        let Some(now) = fetch_opt(site, name).await? else {
            break;
        };
        if now.req.phase() != Phase::Active {
            break;
        }
        let mut req = now.req.clone();
        // The ServiceAccount first: revocation deletes in order, and
        // deleting it is what stops its tokens.
        let mut bindings = made.clone();
        bindings.extend(
            req.status
                .bindings
                .iter()
                .filter(|b| {
                    !made
                        .iter()
                        .any(|m| m.kind == b.kind && m.namespace == b.namespace && m.name == b.name)
                })
                .cloned(),
        );
        req.status.bindings = bindings;
        match write_status(site, &req, now.resource_version()).await {
            Ok(_) => return Ok(()),
            Err(WriteError::Conflict) => continue,
            Err(WriteError::Gone) => break,
            Err(WriteError::Failed(e)) => return Err(e),
        }
    }
    // The grant ended meanwhile (or vanished): take the objects back.
    objects::delete_refs(&site.target.client, &made).await
}

pub fn token_objects_recorded(req: &AccessRequest) -> bool {
    req.status
        .bindings
        .iter()
        .any(|b| b.kind == "ServiceAccount" && b.uid.is_some())
}

/// An approval still missing the uids of what it created.
pub fn incomplete(req: &AccessRequest) -> bool {
    req.phase() == Phase::Active
        && req.status.bindings.iter().any(|b| {
            b.kind.ends_with("Binding")
                && b.namespace.as_deref() != Some(super::SYSTEM_NAMESPACE)
                && b.uid.is_none()
        })
}

/// How long after its claim an approval may still be missing its uids
/// before the reaper undoes it.
pub const INCOMPLETE_GRACE: Duration = Duration::from_secs(30);
