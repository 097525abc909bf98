//! The reaper: ends grants at `expiresAt`, expires pending requests at the
//! approval timeout, undoes approvals that died half-way, provisions
//! Token-mode credentials, and sweeps away any binding Portcullis made
//! whose request is no longer live. Runs as `portcullis reaper` and inside
//! every approver's console; several at once are safe because every step
//! is idempotent and every write has a resourceVersion precondition.
//!
//! Built on kube-runtime's `Controller`: a reflector store of requests,
//! one reconcile per request requeued at its next deadline (no polling),
//! and error backoff — 403s back off to minutes and are reported once,
//! an unreachable apiserver is retried every second so a grant that came
//! due while it was down ends within moments of its return.

pub(crate) mod audit_trail;
pub(crate) mod metrics;
pub(crate) mod plan;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, reflector, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc;

use crate::backend::kube::cluster::KubeCluster;
use crate::backend::kube::grant::{self, Ended, Ending};
use crate::backend::kube::release;
use crate::backend::kube::settings::{ClusterSettings, SettingsError};
use crate::backend::kube::topology::Topology;
use crate::backend::kube::{objects, request_resource, REQUEST_LABEL, SYSTEM_NAMESPACE};
use crate::backend::BackendEvent;
use crate::crd::wire;
use crate::domain::ValidationLimits;
use crate::domain::{AccessRequest, Phase};
use metrics::{EndedHow, ReaperMetrics};

#[derive(Debug, Clone)]
pub struct ReaperConfig {
    /// How long a claimed approval may lack its bindings' uids before it
    /// counts as died half-way and is undone.
    pub incomplete_grace: Duration,
    /// Make Token-mode ServiceAccounts and minting rights (needs the
    /// `portcullis-reaper-tokens` role in portcullis-system).
    pub provision_tokens: bool,
    /// How often bindings are swept for ones no live grant accounts for.
    pub sweep_every: Duration,
    /// Counts what the reaper does (`portcullis reaper` serves them).
    pub metrics: Option<Arc<ReaperMetrics>>,
}

impl Default for ReaperConfig {
    fn default() -> Self {
        Self {
            incomplete_grace: grant::INCOMPLETE_GRACE,
            provision_tokens: true,
            sweep_every: Duration::from_secs(10),
            metrics: None,
        }
    }
}

/// Says each distinct problem once: in the log, and in the console's
/// message line when a console runs this reaper.
pub struct Notices {
    cluster: String,
    tx: Option<mpsc::UnboundedSender<BackendEvent>>,
    said: Mutex<HashSet<String>>,
}

impl Notices {
    pub fn new(cluster: &str, tx: Option<mpsc::UnboundedSender<BackendEvent>>) -> Self {
        Self {
            cluster: cluster.into(),
            tx,
            said: Mutex::new(HashSet::new()),
        }
    }

    pub fn once(&self, text: String) {
        let first = self
            .said
            .lock()
            .map(|mut s| s.insert(text.clone()))
            .unwrap_or(true);
        if !first {
            return;
        }
        tracing::warn!(cluster = %self.cluster, "{text}");
        if let Some(tx) = &self.tx {
            let _ = tx.send(BackendEvent::Notice {
                cluster: self.cluster.clone(),
                error: true,
                text,
            });
        }
    }
}

struct Ctx {
    topology: Topology,
    config: ReaperConfig,
    notices: Notices,
    /// Consecutive failures per request, for backoff.
    failures: Mutex<HashMap<String, u32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReapError {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    End(#[from] grant::EndError),
}

impl ReapError {
    fn kube(&self) -> Option<&kube::Error> {
        match self {
            ReapError::Kube(e) | ReapError::End(grant::EndError::Kube(e)) => Some(e),
            ReapError::End(grant::EndError::Refused(_)) => None,
        }
    }
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    // A little late rather than early: waking before the deadline only
    // finds it not due yet and requeues.
    (at - now).to_std().unwrap_or_default() + Duration::from_millis(50)
}

/// What happens to one request now, and when to look again.
async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, ReapError> {
    let Some(site) = ctx.topology.site(&obj) else {
        ctx.notices.once(format!(
            "request {} names a cluster this server does not serve ({:?}): left alone",
            obj.name_any(),
            ctx.topology.cluster_of(&obj).unwrap_or("none")
        ));
        return Ok(Action::await_change());
    };
    let c = site.store;
    // Nothing is judged due on this machine's clock alone.
    if !c.clock.is_synced() {
        c.clock.sync(&c.client).await?;
    }
    let f = grant::read(&site, (*obj).clone());
    let name = f.req.name.clone();
    let settings = cluster_settings(&site, &ctx).await;
    let limits = settings
        .as_ref()
        .map(|s| s.limits.clone())
        .unwrap_or_default();
    let now = c.clock.now_at_least();
    let rules = plan::Rules {
        incomplete_grace: ctx.config.incomplete_grace,
        provision_tokens: ctx.config.provision_tokens,
        direct: ctx.topology.targets.is_none(),
    };
    let mut seen = plan::Observed {
        req: &f.req,
        has_finalizer: f.has_finalizer(),
        deleting: obj.metadata.deletion_timestamp.is_some(),
        limits: settings.as_ref().map(|s| &s.limits),
        released: None,
    };
    // Decided without IO (`plan`), carried out here. Round twice at most:
    // whether a live grant was released is read only when it matters.
    let intent = loop {
        match plan::decide(&seen, &rules, now) {
            plan::Intent::CheckRelease => {
                seen.released = Some(release::released(&site, &f.req).await?);
            }
            intent => break intent,
        }
    };
    let action = carry_out(intent, &site, &f, &obj, &ctx, now, &limits).await?;
    if let Ok(mut failures) = ctx.failures.lock() {
        failures.remove(&name);
    }
    if let Some(m) = &ctx.config.metrics {
        m.reached_apiserver();
    }
    Ok(action)
}

/// The cluster's limits: grants end by their own status, but the approval
/// timeout needs them (the defaults only when they were never installed).
async fn cluster_settings(site: &grant::Site<'_>, ctx: &Ctx) -> Option<ClusterSettings> {
    match site.settings {
        Some(s) => Some(s.clone()),
        None => match site.target.settings().await {
            Ok(s) => Some(s),
            Err(SettingsError::Missing) => Some(ClusterSettings::default()),
            Err(e) => {
                ctx.notices.once(format!(
                    "{e}; pending requests do not expire until it is fixed"
                ));
                None
            }
        },
    }
}

/// Does what `plan` decided for one request.
async fn carry_out(
    intent: plan::Intent,
    site: &grant::Site<'_>,
    f: &grant::Fetched,
    obj: &Arc<DynamicObject>,
    ctx: &Arc<Ctx>,
    now: DateTime<Utc>,
    limits: &ValidationLimits,
) -> Result<Action, ReapError> {
    let name = &f.req.name;
    Ok(match intent {
        plan::Intent::CheckRelease => unreachable!("decided again before carrying out"),
        plan::Intent::Wait { recheck } => match recheck {
            plan::Recheck::At(at) => Action::requeue(until(now, at)),
            plan::Recheck::After(wait) => Action::requeue(wait),
            plan::Recheck::OnChange => Action::await_change(),
        },
        plan::Intent::DropFinalizer { recheck_at } => {
            grant::remove_finalizer(site, name).await?;
            Action::requeue(until(now, recheck_at))
        }
        plan::Intent::ExpirePending => {
            if let Ended::Done(_) = grant::end(site, name, Ending::Expire, limits).await? {
                ctx.count(EndedHow::Timeout, None);
            }
            Action::requeue(plan::AFTER_END)
        }
        plan::Intent::ExpireGrant { end } => expire_grant(site, obj, ctx, end, limits).await?,
        plan::Intent::Fail(why) => {
            if let Ended::Done(_) = grant::end(
                site,
                name,
                Ending::Fail {
                    message: why.message().into(),
                },
                limits,
            )
            .await?
            {
                ctx.count(EndedHow::Failed, None);
            }
            Action::requeue(plan::AFTER_END)
        }
        plan::Intent::EndReleased => {
            // Its requester deleted the grant's release binding:
            // they are done with it, so it ends now, in their name.
            if let Ended::Done(_) = release::end_released(site, &f.req, limits).await? {
                ctx.count(EndedHow::Released, None);
            }
            Action::requeue(plan::AFTER_END)
        }
        plan::Intent::Keep {
            add_finalizer,
            provision_tokens,
            provision_release,
            recheck_at,
        } => {
            if add_finalizer {
                grant::ensure_finalizer(site, name).await?;
            }
            if provision_tokens {
                grant::provision_tokens(site, name).await?;
            }
            if provision_release {
                release::provision(site, name).await?;
            }
            Action::requeue(until(now, recheck_at))
        }
        plan::Intent::Clean { report_left } => clean(site, f, ctx, report_left).await?,
    })
}

/// A live grant at its end: ended now, counted with how late, verified
/// apart.
async fn expire_grant(
    site: &grant::Site<'_>,
    obj: &Arc<DynamicObject>,
    ctx: &Arc<Ctx>,
    end: DateTime<Utc>,
    limits: &ValidationLimits,
) -> Result<Action, ReapError> {
    let name = obj.name_any();
    let c = site.store;
    Ok(
        match grant::end_now(site, &name, Ending::Expire, limits).await? {
            (Ended::Nothing, _) => Action::requeue(plan::EXPIRY_NOT_YET),
            (Ended::Done(mut req), Some(after)) => {
                let late = (c.clock.now() - end).num_milliseconds().max(0) as f64 / 1000.0;
                ctx.count(EndedHow::Expired, Some(late));
                // Verification apart: the next grants due are not
                // held up by this one's SubjectAccessReviews.
                let (topology, obj) = (ctx.topology.clone(), obj.clone());
                tokio::spawn(async move {
                    if let Some(site) = topology.site(&obj) {
                        if let Err(e) = grant::finish(&site, &mut req, after).await {
                            tracing::warn!(request = %req.name, error = %e, "could not finish an ended grant; the next reconcile will");
                        }
                    }
                });
                Action::requeue(plan::AFTER_END)
            }
            _ => Action::requeue(plan::AFTER_END),
        },
    )
}

/// An ended request: what its status records is deleted; the finalizer
/// goes once nothing is left.
async fn clean(
    site: &grant::Site<'_>,
    f: &grant::Fetched,
    ctx: &Ctx,
    report_left: bool,
) -> Result<Action, ReapError> {
    let deletion = objects::delete_recorded(&site.target.client, &f.req, f.uid()).await?;
    if deletion.left.is_empty() {
        grant::remove_finalizer(site, &f.req.name).await?;
    } else if report_left {
        // Only the reaper that makes Token-mode objects must be
        // able to remove them; a console's reaper leaves them.
        ctx.notices.once(format!(
            "the reaper ({}) may not delete the Token-mode objects of ended grants in {SYSTEM_NAMESPACE}: bind the portcullis-reaper-tokens role there",
            site.target.user()
        ));
    }
    Ok(Action::await_change())
}

impl Ctx {
    fn count(&self, how: EndedHow, lag: Option<f64>) {
        if let Some(m) = &self.config.metrics {
            m.ended(how, lag);
        }
    }
}

fn error_policy(obj: Arc<DynamicObject>, err: &ReapError, ctx: Arc<Ctx>) -> Action {
    let name = obj.name_any();
    if let Some(m) = &ctx.config.metrics {
        m.failed();
    }
    let n = ctx
        .failures
        .lock()
        .map(|mut f| {
            let n = f.entry(name.clone()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        })
        .unwrap_or(1);
    let doubling = |base_ms: u64, cap: Duration| {
        Duration::from_millis(base_ms.saturating_mul(1 << n.min(16))).min(cap)
    };
    let wait = match err.kube() {
        Some(kube::Error::Api(s)) if s.code == 403 => {
            // A restarted apiserver refuses for a moment until its RBAC
            // cache has synced: speak up only when it persists.
            if n >= 3 {
                ctx.notices
                    .once(refused(ctx.topology.store.user(), &s.message));
            }
            doubling(500, Duration::from_secs(300))
        }
        Some(kube::Error::Api(s)) if s.code == 422 => {
            // The stored object does not fit the CRD's schema (it predates
            // it): the apiserver refuses every change to it until it is
            // deleted. Say so once; look again rarely.
            ctx.notices.once(format!(
                "request {name} predates the AccessRequest schema and the apiserver refuses any change to it ({}): a cluster admin deletes it (kubectl delete accessrequest {name})",
                s.message
            ));
            doubling(5_000, Duration::from_secs(600))
        }
        Some(kube::Error::Api(s)) if s.code < 500 && s.code != 429 => {
            tracing::warn!(request = %name, error = %err, "reap failed; retrying");
            doubling(500, Duration::from_secs(30))
        }
        // The apiserver is down or overloaded: look again soon (cheap when
        // it refuses connections), so a grant due meanwhile ends within a
        // second or two of its return.
        _ => {
            if n == 1 {
                tracing::warn!(request = %name, error = %err, "apiserver unreachable; retrying every second");
            }
            doubling(250, Duration::from_secs(1))
        }
    };
    Action::requeue(wait)
}

/// One line per kind of refusal, not per object: the apiserver's message
/// without the object's name (`User "x" cannot patch resource …`).
fn refused(user: &str, message: &str) -> String {
    let what = message
        .split_once("is forbidden: ")
        .map(|(_, rest)| rest)
        .unwrap_or(message);
    format!(
        "the reaper ({user}) is refused by the apiserver: {what} — bind the portcullis-reaper role"
    )
}

/// Asks the apiserver whether this identity may do what reaping needs.
pub async fn missing_rights(cluster: &KubeCluster) -> Vec<String> {
    let checks = [
        ("list", "portcullis.dev", "accessrequests", "", None),
        ("watch", "portcullis.dev", "accessrequests", "", None),
        ("patch", "portcullis.dev", "accessrequests", "", None),
        ("patch", "portcullis.dev", "accessrequests", "status", None),
        (
            "list",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            None,
        ),
        (
            "watch",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            None,
        ),
        (
            "delete",
            "rbac.authorization.k8s.io",
            "rolebindings",
            "",
            None,
        ),
        (
            "list",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            None,
        ),
        (
            "watch",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            None,
        ),
        (
            "delete",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            None,
        ),
    ];
    // Asked at once: the console waits for the answer before it lists.
    let answers = futures::future::join_all(checks.into_iter().map(
        |(verb, group, resource, sub, ns)| async move {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(verb.into()),
                        group: Some(group.into()),
                        resource: Some(resource.into()),
                        subresource: (!sub.is_empty()).then(|| sub.to_string()),
                        namespace: ns,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let allowed = Api::<SelfSubjectAccessReview>::all(cluster.client.clone())
                .create(&PostParams::default(), &review)
                .await
                .ok()
                .and_then(|r| r.status)
                .is_some_and(|s| s.allowed);
            let what = if sub.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}/{sub}")
            };
            (!allowed).then(|| format!("{verb} {what}"))
        },
    ))
    .await;
    answers.into_iter().flatten().collect()
}

/// Whether this identity may make Token-mode credentials.
pub async fn may_provision_tokens(cluster: &KubeCluster) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some("create".into()),
                resource: Some("serviceaccounts".into()),
                subresource: Some("token".into()),
                namespace: Some(SYSTEM_NAMESPACE.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<SelfSubjectAccessReview>::all(cluster.client.clone())
        .create(&PostParams::default(), &review)
        .await
        .ok()
        .and_then(|r| r.status)
        .is_some_and(|s| s.allowed)
}

/// Runs until the task is dropped.
pub async fn run(
    cluster: Arc<KubeCluster>,
    config: ReaperConfig,
    tx: Option<mpsc::UnboundedSender<BackendEvent>>,
) {
    run_topology(Topology::direct(cluster), config, tx, None).await
}

/// What else reads the reaper's watch of requests: a console running this
/// reaper takes its requests from the same watch (one list, one stream,
/// one copy of each object for both), seeing every event and error before
/// the reaper stores it.
pub type Tap = Box<dyn FnMut(&Result<watcher::Event<DynamicObject>, watcher::Error>) + Send>;

/// The reaper over a hub and its targets (the server), or one cluster.
pub async fn run_topology(
    topology: Topology,
    config: ReaperConfig,
    tx: Option<mpsc::UnboundedSender<BackendEvent>>,
    tap: Option<Tap>,
) {
    let store = topology.store.clone();
    let _running = config.metrics.as_ref().map(|m| m.running());
    let (requests, trigger, feed) = watch_requests(&store, tap).await;
    let mut controller = Controller::for_stream_with(trigger, requests.clone(), request_resource())
        .with_config(ControllerConfig::default().concurrency(64));
    if topology.targets.is_none() {
        // A deleted release binding is a release: reconcile its request.
        let bindings: Api<DynamicObject> = Api::namespaced_with(
            store.client.clone(),
            SYSTEM_NAMESPACE,
            &objects::resource("RoleBinding").expect("a known kind"),
        );
        controller = controller.watches_with(
            bindings,
            objects::resource("RoleBinding").expect("a known kind"),
            watcher::Config::default().labels(REQUEST_LABEL),
            |b: DynamicObject| {
                b.labels()
                    .get(REQUEST_LABEL)
                    .map(|r| reflector::ObjectRef::new_with(r, request_resource()))
            },
        );
    }
    let ctx = Arc::new(Ctx {
        notices: Notices::new(&store.context, tx),
        topology: topology.clone(),
        config: config.clone(),
        failures: Mutex::new(HashMap::new()),
    });
    let sweepers: Vec<_> = topology
        .target_clusters()
        .into_iter()
        .map(|target| {
            tokio::spawn(sweep_loop(
                target,
                requests.clone(),
                config.sweep_every,
                ctx.clone(),
            ))
        })
        .collect();
    let clock = tokio::spawn(resync_clock(store.clone()));
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reaper controller");
            }
        })
        .await;
    for s in sweepers {
        s.abort();
    }
    clock.abort();
    feed.abort();
}

/// The reaper's watch of requests, on its own task so reconciles never
/// throttle it (what a console sees arrives at the apiserver's pace): each
/// item goes to the `tap`, then the unsettled ones into the returned store,
/// and each object stored to the returned trigger for the controller.
async fn watch_requests(
    store: &KubeCluster,
    mut tap: Option<Tap>,
) -> (
    Store<DynamicObject>,
    futures::channel::mpsc::UnboundedReceiver<Result<DynamicObject, watcher::Error>>,
    tokio::task::JoinHandle<()>,
) {
    let (objects, trigger) = futures::channel::mpsc::unbounded();
    let mut writer = reflector::store::Writer::new(request_resource());
    let requests = writer.as_reader();
    let mut watch = watcher(store.requests(), store.watch_config().await)
        .modify(crate::backend::kube::lean::lean)
        .backoff(crate::backend::kube::backoff::quick())
        .boxed();
    let feed = tokio::spawn(async move {
        while let Some(item) = watch.next().await {
            if let Some(tap) = &mut tap {
                tap(&item);
            }
            let trigger = match unsettled(item) {
                None => continue,
                Some(Ok(event)) => {
                    writer.apply_watcher_event(&event);
                    match event {
                        watcher::Event::Apply(o) | watcher::Event::InitApply(o) => Ok(o),
                        _ => continue,
                    }
                }
                Some(Err(e)) => Err(e),
            };
            if objects.unbounded_send(trigger).is_err() {
                return;
            }
        }
    });
    (requests, trigger, feed)
}

/// Whether the reaper is done with a request for good: ended, its clean-up
/// verified (the finalizer is removed only after that) and not being
/// deleted. Nothing can change that but its deletion, so the reaper keeps
/// no copy of it: with thousands of ended requests, they were most of what
/// it held.
fn settled(o: &DynamicObject) -> bool {
    // A phase this version does not know is not taken for an end.
    let terminal = serde_json::from_value::<Phase>(o.data["status"]["phase"].clone())
        .is_ok_and(Phase::is_terminal);
    terminal
        && o.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty())
        && o.metadata.deletion_timestamp.is_none()
}

/// The watch as the reaper stores it: a request that settled (see
/// [`settled`]) leaves its store, and one that arrives settled never
/// enters it.
fn unsettled(
    item: Result<watcher::Event<DynamicObject>, watcher::Error>,
) -> Option<Result<watcher::Event<DynamicObject>, watcher::Error>> {
    match item {
        Ok(watcher::Event::InitApply(o)) if settled(&o) => None,
        Ok(watcher::Event::Apply(o)) if settled(&o) => Some(Ok(watcher::Event::Delete(o))),
        other => Some(other),
    }
}

/// Keeps the skew to the apiserver's clock current.
async fn resync_clock(cluster: Arc<KubeCluster>) {
    // A few measurements early, at different points of a second, narrow
    // the bounds of the apiserver's time (each reads whole seconds).
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(370)).await;
        let _ = cluster.clock.sync(&cluster.client).await;
    }
    loop {
        tokio::time::sleep(crate::backend::kube::clock::RESYNC_AFTER).await;
        cluster.clock.ensure_fresh(&cluster.client).await;
    }
}

fn mirror<K>(api: Api<K>) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let task = tokio::spawn(async move {
        reflector(writer, watcher(api, watcher::Config::default()))
            .modify(what_the_sweep_reads)
            .default_backoff()
            .applied_objects()
            .for_each(|_| async {})
            .await
    });
    (store, task)
}

/// What the sweep keeps of a binding: what [`orphan`] reads (name,
/// namespace, uid, creation time, owners, the request label and uid
/// annotation), nothing else; with thousands of grants the rest of each
/// binding's metadata was most of what the sweep held.
fn what_the_sweep_reads<K: Resource>(o: &mut K) {
    crate::backend::kube::lean::lean(o);
    let meta = o.meta_mut();
    if let Some(labels) = &mut meta.labels {
        labels.retain(|k, _| k == REQUEST_LABEL);
    }
    if let Some(annotations) = &mut meta.annotations {
        annotations.retain(|k, _| k == objects::REQUEST_UID_ANNOTATION);
    }
}

/// Every few seconds: deletes each binding Portcullis made (it names an
/// AccessRequest as owner or by label, or a request lists it by uid) whose
/// request is gone, ended, or past its end. Catches whatever the happy path
/// missed: an approval racing a revoke, a failed clean-up, a crash.
async fn sweep_loop(
    cluster: Arc<KubeCluster>,
    requests: Store<DynamicObject>,
    every: Duration,
    ctx: Arc<Ctx>,
) {
    let notices = &ctx.notices;
    let mut pause = every;
    // The sweep reads only the bindings' metadata: all it lists and keeps.
    let (role_bindings, rb_task) = mirror(Api::<PartialObjectMeta<RoleBinding>>::all(
        cluster.client.clone(),
    ));
    let (cluster_bindings, crb_task) = mirror(Api::<PartialObjectMeta<ClusterRoleBinding>>::all(
        cluster.client.clone(),
    ));
    let ready = async {
        ready(&requests).await && ready(&role_bindings).await && ready(&cluster_bindings).await
    };
    if ready.await {
        tracing::debug!(cluster = %cluster.context, "sweeping every {every:?}");
        loop {
            let now = ctx.topology.store.clock.now_at_least();
            let site = grant::Site {
                store: &ctx.topology.store,
                target: &cluster,
                settings: None,
            };
            let live: HashMap<String, (AccessRequest, String)> = requests
                .state()
                .into_iter()
                // Every request, not only this target's: two names for one
                // cluster must not make sweeps delete each other's grants.
                .map(|o| {
                    let f = grant::read(&site, (*o).clone());
                    let uid = f.uid().to_string();
                    (f.req.name.clone(), (f.req, uid))
                })
                .collect();
            let mut doomed: Vec<(&'static str, Option<String>, String, Option<String>)> =
                Vec::new();
            tracing::trace!(
                requests = live.len(),
                bindings = role_bindings.state().len(),
                "sweep"
            );
            for b in role_bindings.state() {
                if let Some(why) = orphan(b.meta(), "RoleBinding", &live, now) {
                    tracing::info!(binding = %b.name_any(), namespace = ?b.namespace(), why, "sweeping");
                    doomed.push(("RoleBinding", b.namespace(), b.name_any(), b.uid()));
                }
            }
            for b in cluster_bindings.state() {
                if let Some(why) = orphan(b.meta(), "ClusterRoleBinding", &live, now) {
                    tracing::info!(binding = %b.name_any(), why, "sweeping");
                    doomed.push(("ClusterRoleBinding", None, b.name_any(), b.uid()));
                }
            }
            let mut refused_now = false;
            for (kind, ns, name, uid) in doomed {
                let Some(ar) = objects::resource(kind) else {
                    continue;
                };
                let api: Api<DynamicObject> = match &ns {
                    Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, &ar),
                    None => Api::all_with(cluster.client.clone(), &ar),
                };
                match objects::delete_uid(&api, &name, uid).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 403 => {
                        notices.once(refused(cluster.user(), &s.message));
                        refused_now = true;
                    }
                    Err(e) => tracing::warn!(binding = %name, error = %e, "sweep could not delete"),
                }
            }
            // Refused: look again less and less often (up to 5 minutes).
            pause = if refused_now {
                (pause * 2).min(Duration::from_secs(300))
            } else {
                every
            };
            tokio::time::sleep(pause).await;
        }
    }
    rb_task.abort();
    crb_task.abort();
}

/// Waits until a store has its first full list. Polled again every second:
/// a store's readiness wakes only its latest waiter, and the controller
/// waits on the same store.
async fn ready<K>(store: &Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(1), store.wait_until_ready()).await {
            Ok(result) => return result.is_ok(),
            Err(_) => continue,
        }
    }
}

/// Why a binding is an orphan of Portcullis, if it is one.
pub fn orphan(
    meta: &kube::core::ObjectMeta,
    kind: &str,
    live: &HashMap<String, (AccessRequest, String)>,
    now: DateTime<Utc>,
) -> Option<&'static str> {
    // Which request it says it was made for: the uid annotation (or, on
    // objects made by older versions, an ownerReference).
    let owner_uid = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(objects::REQUEST_UID_ANNOTATION).cloned())
        .or_else(|| {
            meta.owner_references.as_ref().and_then(|refs| {
                refs.iter()
                    .find(|r| r.kind == wire::KIND && r.api_version.starts_with(wire::GROUP))
                    .map(|r| r.uid.clone())
            })
        });
    let label = meta.labels.as_ref().and_then(|l| l.get(REQUEST_LABEL));
    let name = meta.name.as_deref().unwrap_or_default();
    let namespace = meta.namespace.as_deref();
    // A request that lists this very object by uid claims it whatever its
    // labels say now (a grantee may have stripped them), but only an
    // object Portcullis provably made for it: a status that names a
    // standing binding's uid claims nothing.
    let by_uid = live.values().find(|(req, request_uid)| {
        req.status.bindings.iter().any(|b| {
            b.kind == kind
                && b.name == name
                && b.namespace.as_deref() == namespace
                && b.uid.is_some()
                && b.uid == meta.uid
                && objects::provably_ours(meta, kind, req, request_uid, b.uid.as_deref())
        })
    });
    let req = match (by_uid, label, owner_uid) {
        (Some((req, _)), _, _) => req,
        (None, Some(l), Some(owner)) => match live.get(l) {
            Some((req, uid)) if *uid == owner => req,
            // The request is gone (or a new request took its name).
            _ => return Some("its request is gone"),
        },
        (None, Some(l), None) => match live.get(l) {
            Some((req, _)) => req,
            None => return Some("its request is gone"),
        },
        (None, None, Some(owner)) => match live.values().find(|(_, uid)| *uid == owner) {
            Some((req, _)) => req,
            None => return Some("its request is gone"),
        },
        (None, None, None) => return None,
    };
    match req.phase() {
        Phase::Active if req.status.expires_at.is_some_and(|e| e > now) => None,
        Phase::Active => Some("its grant is past its end"),
        // A pending request has no bindings yet: one naming it was not
        // made by an approval (or belongs to a claim that will record it).
        Phase::Pending => None,
        _ => Some("its grant has ended"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(phase: Option<&str>, finalizer: bool, deleting: bool) -> DynamicObject {
        let mut o: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest",
            "metadata": {"name": "r"},
            "spec": {"reason": "INC-1"},
            "status": phase.map(|p| serde_json::json!({"phase": p})).unwrap_or_default(),
        }))
        .unwrap();
        if finalizer {
            o.metadata.finalizers = Some(vec!["portcullis.dev/grant".into()]);
        }
        if deleting {
            o.metadata.deletion_timestamp = Some(time(Utc::now()));
        }
        o
    }

    #[test]
    fn the_sweep_keeps_of_a_binding_what_it_judges_by() {
        let mut b: PartialObjectMeta<RoleBinding> = serde_json::from_value(serde_json::json!({
            "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": {"name": "portcullis-r", "namespace": "payments", "uid": "b-uid",
                "labels": {REQUEST_LABEL: "r", "app.kubernetes.io/managed-by": "portcullis"},
                "annotations": {objects::REQUEST_UID_ANNOTATION: "r-uid", "note": "x"},
                "ownerReferences": [{"apiVersion": "portcullis.dev/v1alpha1", "kind": "AccessRequest", "name": "r", "uid": "r-uid"}],
                "managedFields": [{"manager": "portcullis"}]}
        }))
        .unwrap();
        what_the_sweep_reads(&mut b);
        let m = &b.metadata;
        assert_eq!(
            m.labels.as_ref().unwrap().keys().collect::<Vec<_>>(),
            [REQUEST_LABEL]
        );
        assert_eq!(
            m.annotations.as_ref().unwrap().keys().collect::<Vec<_>>(),
            [objects::REQUEST_UID_ANNOTATION]
        );
        assert_eq!(m.owner_references.as_ref().map(Vec::len), Some(1));
        assert_eq!(m.managed_fields, None);
        assert_eq!(
            (m.name.as_deref(), m.namespace.as_deref(), m.uid.as_deref()),
            (Some("portcullis-r"), Some("payments"), Some("b-uid"))
        );
    }

    #[test]
    fn the_reaper_keeps_no_copy_of_a_request_it_is_done_with() {
        for ended in [
            "Denied",
            "Expired",
            "Revoked",
            "Released",
            "Withdrawn",
            "Failed",
        ] {
            assert!(settled(&stored(Some(ended), false, false)), "{ended}");
            // Its clean-up not yet verified, or being deleted: still the reaper's.
            assert!(!settled(&stored(Some(ended), true, false)), "{ended}");
            assert!(!settled(&stored(Some(ended), false, true)), "{ended}");
        }
        for open in [None, Some("Pending"), Some("Active"), Some("Paused")] {
            assert!(!settled(&stored(open, false, false)), "{open:?}");
        }
        let ended = stored(Some("Denied"), false, false);
        let live = stored(Some("Active"), true, false);
        // Listed settled: never stored. Settled by a change: leaves the store.
        assert!(unsettled(Ok(watcher::Event::InitApply(ended.clone()))).is_none());
        assert!(matches!(
            unsettled(Ok(watcher::Event::Apply(ended))),
            Some(Ok(watcher::Event::Delete(_)))
        ));
        assert!(matches!(
            unsettled(Ok(watcher::Event::Apply(live.clone()))),
            Some(Ok(watcher::Event::Apply(_)))
        ));
        assert!(matches!(
            unsettled(Ok(watcher::Event::InitApply(live))),
            Some(Ok(watcher::Event::InitApply(_)))
        ));
    }
    use crate::domain::request::BindingRef;

    fn req(phase: Phase, ends_in: i64) -> AccessRequest {
        let mut r = super::plan::tests::alices_request(Utc::now());
        r.status.phase = Some(phase);
        r.status.expires_at = Some(Utc::now() + chrono::TimeDelta::seconds(ends_in));
        r.status.bindings = vec![BindingRef {
            kind: "RoleBinding".into(),
            namespace: Some("payments".into()),
            name: "portcullis-g".into(),
            uid: Some("b-uid".into()),
        }];
        r
    }

    fn live(r: AccessRequest) -> HashMap<String, (AccessRequest, String)> {
        HashMap::from([(r.name.clone(), (r, "r-uid".to_string()))])
    }

    fn time(t: DateTime<Utc>) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::from_second(t.timestamp()).unwrap(),
        )
    }

    fn meta(uid: &str, owner: Option<&str>, label: Option<&str>) -> kube::core::ObjectMeta {
        kube::core::ObjectMeta {
            name: Some("portcullis-g".into()),
            namespace: Some("payments".into()),
            uid: Some(uid.into()),
            annotations: owner
                .map(|o| [(objects::REQUEST_UID_ANNOTATION.to_string(), o.to_string())].into()),
            labels: label.map(|l| [(REQUEST_LABEL.to_string(), l.to_string())].into()),
            creation_timestamp: Some(time(Utc::now())),
            ..Default::default()
        }
    }

    #[test]
    fn a_status_naming_a_standing_binding_claims_nothing() {
        let now = Utc::now();
        // A standing binding, older than the request, that a status writer
        // named by uid (with the planned name, or its own): never swept.
        let mut standing = meta("b-uid", None, None);
        standing.creation_timestamp = Some(time(now - chrono::TimeDelta::days(30)));
        let failed = live(req(Phase::Failed, 60));
        assert_eq!(orphan(&standing, "RoleBinding", &failed, now), None);
        let mut other_name = meta("b-uid", None, None);
        other_name.name = Some("team-admins".into());
        let mut named = req(Phase::Failed, 60);
        named.status.bindings[0].name = "team-admins".into();
        assert_eq!(orphan(&other_name, "RoleBinding", &live(named), now), None);
        // The same object made for the request (its uid annotation) is ours.
        let mut annotated = standing.clone();
        annotated.annotations = Some(
            [(
                objects::REQUEST_UID_ANNOTATION.to_string(),
                "r-uid".to_string(),
            )]
            .into(),
        );
        assert_eq!(
            orphan(&annotated, "RoleBinding", &failed, now),
            Some("its grant has ended")
        );
    }

    #[test]
    fn a_stripped_binding_is_still_found_by_its_recorded_uid() {
        let now = Utc::now();
        // Labels and ownerReference stripped by the grantee: the uid decides.
        let stripped = meta("b-uid", None, None);
        assert_eq!(
            orphan(&stripped, "RoleBinding", &live(req(Phase::Active, 60)), now),
            None
        );
        assert_eq!(
            orphan(&stripped, "RoleBinding", &live(req(Phase::Active, -1)), now),
            Some("its grant is past its end")
        );
        assert_eq!(
            orphan(
                &stripped,
                "RoleBinding",
                &live(req(Phase::Revoked, 60)),
                now
            ),
            Some("its grant has ended")
        );
        // Someone else's binding with no link to any request is left alone.
        assert_eq!(
            orphan(
                &meta("other", None, None),
                "RoleBinding",
                &live(req(Phase::Revoked, 60)),
                now
            ),
            None
        );
    }

    #[test]
    fn a_binding_whose_request_is_gone_or_replaced_is_an_orphan() {
        let now = Utc::now();
        let empty = HashMap::new();
        assert_eq!(
            orphan(&meta("x", Some("r-uid"), None), "RoleBinding", &empty, now),
            Some("its request is gone")
        );
        assert_eq!(
            orphan(&meta("x", None, Some("g")), "RoleBinding", &empty, now),
            Some("its request is gone")
        );
        assert_eq!(
            orphan(
                &meta("x", Some("r-uid"), Some("g")),
                "RoleBinding",
                &live(req(Phase::Active, 60)),
                now
            ),
            None
        );
        // Same name, new request (different uid): the old grant's binding goes.
        assert_eq!(
            orphan(
                &meta("x", Some("old-uid"), None),
                "RoleBinding",
                &live(req(Phase::Active, 60)),
                now
            ),
            Some("its request is gone")
        );
        assert_eq!(
            orphan(
                &meta("x", Some("r-uid"), None),
                "RoleBinding",
                &live(req(Phase::Active, 60)),
                now
            ),
            None
        );
    }
}
