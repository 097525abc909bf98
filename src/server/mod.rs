//! `portcullis serve`: one authority for identity, decisions and expiry.
//!
//! Every `/v1` call carries a bearer token the hub's apiserver resolves
//! (TokenReview; the demo's people by name); that user and those groups are
//! used for everything — the requester of a new request, self-approval,
//! `decision.by`. The server alone holds the Kubernetes rights to grant.
//! See README "The server" for the API, one example per call.

pub mod audit;
pub mod authority;
pub mod config;
pub mod error;
pub mod install;
pub mod metrics;
pub mod openapi;
pub mod refusals;
pub mod stream;
pub mod webhook;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::TimeDelta;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{self, ApiError, ApproveBody, CreateBody, ReasonBody, ShortenBody, WhoAmI};
use crate::backend::{ApproveSpec, NewRequest, Op, RequestKey, Seen};
use crate::domain::rbac::engine::{analyze, GrantRequest};
use crate::domain::rbac::Inventory;
use crate::domain::{duration, AccessRequest, Credentials, RoleRef, Subject};
use crate::policy::{Decision, PolicyStore};
use authority::{Access, AuthError, Authority};
use std::collections::BTreeMap;
use stream::Hub;

pub struct Server {
    pub authority: Arc<dyn Authority>,
    pub access: Access,
    /// The policy in force (None: none configured).
    pub policy: Option<Arc<PolicyStore>>,
    /// Each cluster's labels, as the policy sees them.
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
    pub hub: Hub,
    pub metrics: metrics::Metrics,
    pub webhook: Option<webhook::Webhook>,
    /// The audit trail (README "Audit trail").
    pub audit: Arc<crate::audit::log::AuditLog>,
    /// Refusals recorded one by one up to a rate, the rest counted.
    pub refusals: refusals::Refusals,
    /// Set when the server stops: live streams end so it can.
    stopping: tokio::sync::watch::Sender<bool>,
}

type Shared = Arc<Server>;

/// How many recent audit records a fresh approver's stream starts with.
pub const AUDIT_IN_SNAPSHOT: usize = 500;

/// How often the audit head is signed when records came in.
pub const SIGN_EVERY: Duration = Duration::from_secs(10);

impl Server {
    /// Starts following the authority's changes into the stream hub.
    pub fn start(
        authority: Arc<dyn Authority>,
        access: Access,
        webhook: Option<webhook::Webhook>,
    ) -> Shared {
        Self::start_with_policy(authority, access, webhook, None, BTreeMap::new())
    }

    pub fn start_with_policy(
        authority: Arc<dyn Authority>,
        access: Access,
        webhook: Option<webhook::Webhook>,
        policy: Option<Arc<PolicyStore>>,
        labels: BTreeMap<String, BTreeMap<String, String>>,
    ) -> Shared {
        let memory = crate::audit::log::AuditLog::open(crate::audit::log::LogConfig::memory())
            .expect("a memory-only audit log does no IO");
        Self::start_with_audit(authority, access, webhook, policy, labels, memory)
    }

    /// As [`Self::start_with_policy`], writing the audit trail to `audit`
    /// (its head signed every 10 s when it has a key).
    pub fn start_with_audit(
        authority: Arc<dyn Authority>,
        access: Access,
        webhook: Option<webhook::Webhook>,
        policy: Option<Arc<PolicyStore>>,
        labels: BTreeMap<String, BTreeMap<String, String>>,
        audit: crate::audit::log::AuditLog,
    ) -> Shared {
        // Unique per process start: another replica's (or an earlier
        // run's) ids never resume here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let epoch = format!("{:x}", nanos ^ ((std::process::id() as u64) << 32));
        let server = Arc::new(Server {
            authority: authority.clone(),
            access,
            policy,
            labels,
            hub: Hub::new(epoch),
            metrics: metrics::Metrics::default(),
            webhook,
            audit: Arc::new(audit),
            refusals: refusals::Refusals::default(),
            stopping: tokio::sync::watch::channel(false).0,
        });
        {
            let me = Arc::downgrade(&server);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SIGN_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(server) = me.upgrade() else { break };
                    server.record_dropped_refusals();
                    server.refusals.prune();
                    if let Err(e) = server.audit.sign(server.authority.now()) {
                        tracing::error!(error = %e, "cannot sign the audit head");
                    }
                }
            });
        }
        let mut events = authority.watch();
        let me = Arc::downgrade(&server);
        tokio::spawn(async move {
            while let Some(first) = events.recv().await {
                let batch = crate::backend::batch::drain(first, &mut events);
                let Some(server) = me.upgrade() else { break };
                server.take(batch);
            }
        });
        // A new policy in force: every pending request is judged again.
        if let Some(mut changes) = server.policy.as_ref().map(|p| p.changes()) {
            let me = Arc::downgrade(&server);
            tokio::spawn(async move {
                while changes.changed().await.is_ok() {
                    let Some(server) = me.upgrade() else { break };
                    let pending = server.hub.pending_in(None);
                    server.take(pending);
                }
            });
        }
        server
    }

    /// Takes a batch of the authority's events into the stream, each
    /// pending request with its verdict. Verdicts judge the diff, so a
    /// cluster's RBAC goes in first, and when it changes its pending
    /// requests are judged again (once per change, never per frame).
    fn take(&self, batch: Vec<crate::backend::BackendEvent>) {
        use crate::backend::BackendEvent;
        let now = self.authority.now();
        let (rbac, mut rest): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|e| matches!(e, BackendEvent::Inventory { .. }));
        if !rbac.is_empty() {
            let clusters: std::collections::BTreeSet<String> = rbac
                .iter()
                .filter_map(|e| match e {
                    BackendEvent::Inventory { cluster, .. } => Some(cluster.clone()),
                    _ => None,
                })
                .collect();
            let observed = self.hub.ingest(rbac, now);
            self.metrics.observe(&observed);
            if self.policy.is_some() {
                let coming: std::collections::HashSet<RequestKey> = rest
                    .iter()
                    .filter_map(|e| match e {
                        BackendEvent::Upsert(r) => Some(RequestKey::of(r)),
                        _ => None,
                    })
                    .collect();
                rest.extend(
                    self.hub
                        .pending_in(Some(&clusters))
                        .into_iter()
                        .filter(|e| match e {
                            BackendEvent::Upsert(r) => !coming.contains(&RequestKey::of(r)),
                            _ => true,
                        }),
                );
            }
        }
        self.observe(&rest);
        let observed = self.hub.ingest_with(rest, now, |r| {
            // Decided once per change, and only while it matters.
            let d = (r.phase() == crate::domain::Phase::Pending)
                .then(|| self.decide(r).ok().flatten())
                .flatten()?;
            self.record_verdict(r, &d);
            serde_json::to_value(d).ok()
        });
        self.metrics.observe(&observed);
    }

    /// The policy's decision on `req` (None: no policy configured).
    pub fn decide(&self, req: &AccessRequest) -> Result<Option<Decision>, ApiError> {
        let Some(policy) = self.policy.as_ref().and_then(|p| p.current()) else {
            return Ok(None);
        };
        let inventory = self.hub.inventory_of(&req.cluster);
        let analysis = inventory.as_ref().and_then(|inv| {
            analyze(
                inv,
                GrantRequest {
                    subject: &req.requester,
                    role: &req.role,
                    namespaces: req.granted_namespaces(),
                },
            )
            .ok()
        });
        let now = self.authority.now();
        let extension = req.extends.as_ref().and_then(|of| {
            let live = self.hub.request(&RequestKey {
                cluster: req.cluster.clone(),
                name: of.clone(),
            })?;
            let used = (now - live.status.granted_at?).num_seconds().max(0) as u64;
            Some((of.clone(), used))
        });
        let labels = self.labels.get(&req.cluster).cloned().unwrap_or_default();
        let input = crate::policy::policy_input(
            req,
            analysis.as_ref(),
            &labels,
            now,
            extension.as_ref().map(|(of, used)| (of.as_str(), *used)),
        );
        policy
            .evaluate(&input)
            .map(Some)
            .map_err(|e| ApiError::new(503, "Unavailable", e.to_string()))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        let me = Arc::downgrade(self);
        let panicked = move |panic: Box<dyn std::any::Any + Send + 'static>| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            tracing::error!(panic = %what, "a handler panicked");
            if let Some(s) = me.upgrade() {
                s.metrics.refused("panic");
            }
            Failure::from(ApiError::new(
                500,
                "InternalError",
                "the server failed on this call (a defect: it is recorded); nothing was changed by it",
            ))
            .into_response()
        };
        let per_address = tower_governor::governor::GovernorConfigBuilder::default()
            .per_millisecond((1000 / refusals::CALLS_PER_SECOND).max(1))
            .burst_size(refusals::CALL_BURST)
            .key_extractor(PeerAddress)
            .finish()
            .map(Arc::new);
        let router = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .route("/v1/openapi.json", get(openapi::document))
            .route("/v1/whoami", get(whoami))
            .route("/v1/requests", get(list).post(create))
            .route("/v1/requests/{cluster}/{name}", get(one))
            .route("/v1/requests/{cluster}/{name}/diff", get(diff))
            .route(
                "/v1/requests/{cluster}/{name}/credentials",
                post(credentials),
            )
            .route("/v1/requests/{cluster}/{name}/{action}", post(act))
            .route("/v1/clusters/{cluster}/inventory", get(inventory))
            .route("/v1/events", get(events))
            .route("/v1/audit", get(audit_list))
            .route("/validate", post(webhook::validate))
            .route("/validate/{cluster}", post(webhook::validate))
            .fallback(|| async {
                Failure::from(ApiError::new(
                    404,
                    "NotFound",
                    "no such call: README \"API\" lists them",
                ))
            })
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked));
        if let (Some(config), Ok(rt)) = (&per_address, tokio::runtime::Handle::try_current()) {
            // Forget addresses not seen lately: the map of keys stays as
            // small as the callers of the last minute.
            let limiter = config.limiter().clone();
            rt.spawn(async move {
                let mut tick = tokio::time::interval(SIGN_EVERY);
                loop {
                    tick.tick().await;
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
            });
        }
        let router = match per_address {
            Some(config) => router.layer(tower_governor::GovernorLayer::new(config).error_handler(
                |e| {
                    let (code, message) = match e {
                        tower_governor::GovernorError::TooManyRequests { wait_time, .. } => (
                            429,
                            format!("too many calls from this address: try again in {wait_time} s"),
                        ),
                        other => (500, other.to_string()),
                    };
                    Failure::from(ApiError::new(code, "TooManyRequests", message)).into_response()
                },
            )),
            None => router,
        };
        router
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                record_refusals,
            ))
            .with_state(self.clone())
    }
}

/// The largest request body a call may send (a request with a long reason
/// is a few KiB); beyond, 413, recorded.
pub const MAX_BODY: usize = 64 * 1024;

/// Calls are limited per peer address; in-process calls (tests through
/// `oneshot`) share the loopback's budget.
#[derive(Clone, Copy, Debug)]
struct PeerAddress;

impl tower_governor::key_extractor::KeyExtractor for PeerAddress {
    type Key = std::net::IpAddr;
    fn extract<T>(
        &self,
        req: &axum::http::Request<T>,
    ) -> Result<Self::Key, tower_governor::GovernorError> {
        Ok(peer(req.extensions()))
    }
}

/// The caller's address as limits count it: IPv4 whole, IPv6 by its /64
/// (one host usually holds a whole /64).
pub(crate) fn peer(ext: &axum::http::Extensions) -> std::net::IpAddr {
    use std::net::IpAddr;
    match ext
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !0u128 << 64).into()),
        },
        Some(v4) => v4,
        None => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// What a handler knew about a call it refused, for the record.
#[derive(Clone)]
struct Refused {
    who: Option<Subject>,
    action: Option<String>,
    target: Option<RequestKey>,
    error: ApiError,
}

/// Every answer of 400 or more is a refusal on the record (README "API"),
/// whoever gave it — a handler, the body limit, the router, the panic net,
/// the rate limit — at a bounded rate per caller and per address
/// ([`refusals`]).
async fn record_refusals(
    State(s): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let address = peer(req.extensions());
    let token = bearer(req.headers()).map(str::to_string);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    if status.as_u16() < 400 {
        return response;
    }
    // An error that is not ours (axum's rejection of a path or query,
    // the body limit, a wrong method) is said in our shape all the same.
    let (response, known) = match response.extensions().get::<Refused>().cloned() {
        Some(r) => (response, r),
        None => {
            let (parts, body) = response.into_parts();
            let text = axum::body::to_bytes(body, MAX_BODY)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let message = match parts.status {
                StatusCode::PAYLOAD_TOO_LARGE => {
                    format!("the body is larger than {MAX_BODY} bytes")
                }
                _ if text.trim().is_empty() => parts.status.to_string(),
                _ => crate::domain::sanitize::inert(text.trim(), 300).into_owned(),
            };
            // axum's 400 (a path or query it could not read) is a field
            // that is wrong: 422, as README's table says.
            let status = match parts.status {
                StatusCode::BAD_REQUEST => StatusCode::UNPROCESSABLE_ENTITY,
                other => other,
            };
            let error = ApiError::new(
                status.as_u16(),
                status.canonical_reason().unwrap_or("Error"),
                message,
            );
            let refused = Refused {
                who: None,
                action: None,
                target: None,
                error: error.clone(),
            };
            (Failure::from(error).into_response(), refused)
        }
    };
    // Who: as the handler verified them, else only what the token cache
    // already knows. Never a TokenReview here: a flood of refused calls
    // must not become a flood of calls to the hub.
    let who = match (&known, &token) {
        (Refused { who: Some(w), .. }, _) => Some(w.clone()),
        _ if status == StatusCode::UNAUTHORIZED => None,
        (_, Some(t)) => s.authority.known(t),
        (_, None) => None,
    };
    let caller_key = match (&who, &token) {
        (Some(w), _) => format!("user:{}", w.user),
        (None, Some(t)) => {
            use sha2::Digest;
            let d = sha2::Sha256::digest(t.as_bytes());
            format!(
                "token:{}",
                d[..6]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        }
        (None, None) => "anonymous".into(),
    };
    if !s
        .refusals
        .admit(&caller_key, &format!("address:{address}"), who.is_some())
    {
        return response;
    }
    let inert = |t: &str| crate::domain::sanitize::inert(t, 120).into_owned();
    let action = known
        .action
        .unwrap_or_else(|| format!("{method} {}", inert(&path)));
    let (target, error) = (known.target, known.error);
    s.record_refusal(who.as_ref(), &action, target.as_ref(), &error);
    response
}

/// An API error as a response, with what the handler knew of the call
/// (who, doing what, on which request) for the record.
pub struct Failure(ApiError, Option<Box<Refused>>);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let refused = self.1.map(|b| *b).unwrap_or(Refused {
            who: None,
            action: None,
            target: None,
            error: self.0.clone(),
        });
        let mut r = (code, Json(self.0.body())).into_response();
        r.extensions_mut().insert(refused);
        r
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e, None)
    }
}

/// Names the verified caller (and what they tried) on a refusal.
trait Refusal<T> {
    fn by(self, who: &Subject, action: &str, target: Option<&RequestKey>) -> ApiResult<T>;
}

impl<T> Refusal<T> for Result<T, ApiError> {
    fn by(self, who: &Subject, action: &str, target: Option<&RequestKey>) -> ApiResult<T> {
        self.map_err(|e| {
            Failure(
                e.clone(),
                Some(Box::new(Refused {
                    who: Some(who.clone()),
                    action: Some(action.to_string()),
                    target: target.cloned(),
                    error: e,
                })),
            )
        })
    }
}

type ApiResult<T> = Result<T, Failure>;

/// Who is calling: the bearer token, as the authority resolves it. (The
/// refusal is recorded by [`record_refusals`].)
async fn caller(s: &Server, headers: &HeaderMap) -> ApiResult<Subject> {
    let Some(token) = bearer(headers) else {
        s.metrics.refused("no-token");
        return Err(ApiError::unauthorized().into());
    };
    match s.authority.authenticate(token).await {
        Ok(who) => Ok(who),
        Err(AuthError::Rejected) => {
            s.metrics.refused("bad-token");
            Err(ApiError::unauthorized().into())
        }
        Err(AuthError::Unavailable(why)) => {
            Err(ApiError::new(503, "Unavailable", format!("cannot check the token: {why}")).into())
        }
    }
}

/// A request named by the path: a cluster this server serves (else 404)
/// and a name a Kubernetes object can have (else 422 naming `name`) —
/// checked before anything reaches a cluster.
fn key(s: &Server, cluster: String, name: String) -> Result<RequestKey, ApiError> {
    if !s.authority.clusters().contains(&cluster) {
        return Err(ApiError::new(
            404,
            "NotFound",
            format!(
                "no cluster '{}' on this server ({})",
                crate::domain::sanitize::inert(&cluster, 64),
                s.authority.clusters().join(", ")
            ),
        ));
    }
    if let Err(why) = crate::domain::names::object_name(&name) {
        return Err(ApiError::field("name", why));
    }
    Ok(RequestKey { cluster, name })
}

/// Whether `who` may see all of `r` (need to know): its requester, and
/// approvers.
fn may_read(s: &Server, who: &Subject, r: &AccessRequest) -> bool {
    r.requester.user == who.user || s.access.may_approve(who)
}

async fn readyz(State(s): State<Shared>) -> Response {
    if let Some(why) = s.authority.not_ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    }
    if !s.hub.primed() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no snapshot of the requests yet",
        )
            .into_response();
    }
    // With a policy, approvals wait for each cluster's RBAC (the diff).
    if s.policy.is_some() {
        if let Some(c) = s
            .authority
            .clusters()
            .into_iter()
            .find(|c| s.hub.inventory_of(c).is_none())
        {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{c}'s RBAC is not read yet"),
            )
                .into_response();
        }
    }
    // A policy that failed to reload keeps the previous one in force: ready,
    // and says so.
    match s.policy.as_ref().and_then(|p| p.last_error()) {
        Some(why) => (StatusCode::OK, format!("ok; {why}")).into_response(),
        None => (StatusCode::OK, "ok").into_response(),
    }
}

async fn metrics_text(State(s): State<Shared>) -> Response {
    let body = s.metrics.render(&s.hub.phases());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

async fn whoami(State(s): State<Shared>, headers: HeaderMap) -> ApiResult<Json<WhoAmI>> {
    let who = caller(&s, &headers).await?;
    Ok(Json(WhoAmI {
        approver: s.access.may_approve(&who),
        verified_by: if s.authority.kind() == "demo" {
            "demo".into()
        } else {
            "TokenReview".into()
        },
        clusters: s.authority.clusters(),
        user: who.user,
        groups: who.groups,
        server_version: Some(crate::version::LINE.to_string()),
    }))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    phase: Option<String>,
    cluster: Option<String>,
    requester: Option<String>,
}

async fn list(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let who = caller(&s, &headers).await?;
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

/// A request: the stream's copy when it has one, else the authority's (a
/// request made a moment ago may not have reached the stream yet).
async fn current(s: &Server, k: &RequestKey) -> Result<crate::domain::AccessRequest, ApiError> {
    match s.hub.request(k) {
        Some(r) => Ok(r),
        None => s
            .authority
            .get(k)
            .await
            .map_err(|e| error::from_backend(&e)),
    }
}

async fn one(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((cluster, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let who = caller(&s, &headers).await?;
    let k = key(&s, cluster, name).by(&who, "read", None)?;
    let r = current(&s, &k).await.by(&who, "read", Some(&k))?;
    let mut v = api::request_json(&r);
    if !may_read(&s, &who, &r) {
        api::redact(&mut v);
    }
    Ok(Json(v))
}

/// Refused unless `who` may approve: RBAC inventories, others' diffs and
/// the audit trail are for approvers.
fn approvers_only(s: &Server, who: &Subject, what: &str) -> Result<(), ApiError> {
    if s.access.may_approve(who) {
        return Ok(());
    }
    Err(ApiError::new(
        403,
        "Forbidden",
        format!(
            "you ({}) may not read {what}: approvers may (the server's approvers list does not name you or your groups)",
            who.user
        ),
    ))
}

async fn inventory(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Value>> {
    let who = caller(&s, &headers).await?;
    approvers_only(&s, &who, "a cluster's RBAC inventory").by(&who, "read inventory", None)?;
    s.hub.inventory(&cluster).map(Json).ok_or_else(|| {
        ApiError::new(
            404,
            "NotFound",
            format!("no RBAC inventory for cluster {cluster} (yet)"),
        )
        .into()
    })
}

/// The permission diff a grant would add, as the console shows it.
async fn diff(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((cluster, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let who = caller(&s, &headers).await?;
    let k = key(&s, cluster, name).by(&who, "read diff", None)?;
    let r = s
        .hub
        .request(&k)
        .ok_or_else(|| ApiError::new(404, "NotFound", format!("{k} not found")))
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
        .ok_or_else(|| ApiError::new(503, "Unavailable", "no RBAC inventory for this cluster yet"))
        .by(&who, "read diff", Some(&k))?;
    let a = analyze(
        &inv,
        GrantRequest {
            subject: &r.requester,
            role: &r.role,
            namespaces: r.granted_namespaces(),
        },
    )
    .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))
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

fn parse_duration(field: &str, text: &str) -> Result<std::time::Duration, ApiError> {
    duration::parse(text).map_err(|e| ApiError::field(field, e.to_string()))
}

fn body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    if raw.is_empty() {
        return serde_json::from_value(json!({}))
            .map_err(|e| ApiError::new(422, "Invalid", format!("a JSON body is required: {e}")));
    }
    serde_json::from_slice(raw).map_err(|e| ApiError::new(422, "Invalid", format!("body: {e}")))
}

async fn create(
    State(s): State<Shared>,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let who = caller(&s, &headers).await?;
    let made = create_as(&s, &who, &raw).await.by(&who, "create", None)?;
    s.record_action(&who, None, &made);
    Ok((StatusCode::CREATED, Json(api::request_json(&made))))
}

/// A new request in the caller's name; approved at once when the policy
/// says it approves itself.
async fn create_as(s: &Server, who: &Subject, raw: &[u8]) -> Result<AccessRequest, ApiError> {
    let b: CreateBody = body(raw)?;
    if !s.authority.clusters().contains(&b.cluster) {
        return Err(ApiError::field(
            "cluster",
            format!(
                "'{}' is not a cluster this server grants access to ({})",
                crate::domain::sanitize::inert(&b.cluster, 64),
                s.authority.clusters().join(", ")
            ),
        ));
    }
    let new = NewRequest {
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
                return Err(ApiError::field(
                    "credentials",
                    format!("'{other}' is neither Identity nor Token"),
                ))
            }
        },
        extends: b.extends.clone(),
    };
    s.access
        .require_requester(who)
        .map_err(|e| error::from_backend(&e))?;
    // An extension names the caller's own live grant and asks for no more.
    if let Some(of) = &b.extends {
        crate::domain::names::object_name(of).map_err(|why| ApiError::field("extends", why))?;
        let key = RequestKey {
            cluster: new.cluster.clone(),
            name: of.clone(),
        };
        let live = match s.hub.request(&key) {
            Some(live) => live,
            None => s.authority.get(&key).await.map_err(|_| {
                ApiError::field(
                    "extends",
                    crate::domain::ExtensionError::Unknown(of.clone()).to_string(),
                )
            })?,
        };
        new.clone()
            .into_request("new".into(), s.authority.now())
            .check_extends(&live)
            .map_err(|e| ApiError::field("extends", e.to_string()))?;
    }
    // The policy first: a refused request is never stored.
    let probe = NewRequest {
        requester: Subject {
            user: who.user.clone(),
            groups: who
                .groups
                .iter()
                .filter(|g| *g != "system:authenticated")
                .cloned()
                .collect(),
        },
        ..new.clone()
    }
    .into_request("new".into(), s.authority.now());
    let decision = s.decide(&probe)?;
    if let Some(d) = decision.as_ref().filter(|d| !d.allowed()) {
        s.metrics.refused("policy");
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!("refused by policy: {}", d.deny.join("; ")),
        ));
    }
    // Longer than the policy's maximum: refused at the door, in its words
    // (an approval could only grant less than was asked).
    if let Some(max) = decision.as_ref().and_then(|d| d.max_duration) {
        if new.duration > max {
            s.metrics.refused("policy");
            return Err(ApiError::field(
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
    let made = s.authority.create(who, new).await;
    s.metrics.decided("create", made.is_ok());
    let mut made = made.map_err(|e| error::from_backend(&e))?;
    // Approved by the policy itself: granted at once, as asked, recorded
    // as approved by `policy:RULE`.
    if let Some(rule) = decision.and_then(|d| d.auto_approve) {
        let by = Subject::new(format!("policy:{rule}"), &[]);
        let spec = ApproveSpec {
            duration: made.duration,
            namespaces: made.namespaces.clone(),
            reason: Some(format!("approved by policy rule {rule}")),
        };
        let granted = s
            .authority
            .decide(
                &by,
                &RequestKey::of(&made),
                &Seen::of(&made),
                Op::Approve(spec),
                1,
            )
            .await;
        s.metrics.decided("auto-approve", granted.is_ok());
        made = granted.map_err(|e| error::from_backend(&e))?;
    }
    Ok(made)
}

async fn act(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((cluster, name, action)): Path<(String, String, String)>,
    raw: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    let who = caller(&s, &headers).await?;
    let action = match ACTIONS.iter().find(|a| **a == action) {
        Some(a) => *a,
        None => {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!(
                    "no action '{}' ({})",
                    crate::domain::sanitize::inert(&action, 40),
                    ACTIONS.join(", ")
                ),
            ))
            .by(&who, "act", None)
        }
    };
    let k = key(&s, cluster, name).by(&who, action, None)?;
    let before = current(&s, &k).await.ok();
    let r = act_as(&s, &who, &k, action, &raw)
        .await
        .by(&who, action, Some(&k))?;
    if let Some(before) = &before {
        s.record_action(&who, Some(before), &r);
    }
    Ok(Json(api::request_json(&r)))
}

/// A token for the caller's own live Token-mode grant, minted by the
/// server for the grant's ServiceAccount, as a kubeconfig; on the record
/// (never the token), and never cached by anyone on the way.
async fn credentials(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((cluster, name)): Path<(String, String)>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let who = caller(&s, &headers).await?;
    let k = key(&s, cluster, name).by(&who, "credentials", None)?;
    let issued = s
        .authority
        .credentials(&who, &k)
        .await
        .map_err(|e| error::from_backend(&e))
        .by(&who, "credentials", Some(&k))?;
    let event = crate::audit::derive::credentials_issued(
        &issued.request,
        s.actor(&who),
        s.authority.now(),
        issued.until,
        &issued.account,
    );
    s.record(vec![event], Some(&issued.request));
    let mut h = HeaderMap::new();
    h.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok((
        h,
        Json(json!({
            "cluster": k.cluster,
            "name": k.name,
            "serviceAccount": issued.account,
            "expiresAt": issued.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "kubeconfig": issued.kubeconfig,
        })),
    ))
}

/// The actions on one request, as the paths spell them.
const ACTIONS: [&str; 6] = [
    "approve", "deny", "shorten", "revoke", "withdraw", "release",
];

/// What a decision names, from its body: `uid` is required on approve and
/// deny (what is decided must be what was read), optional on shorten and
/// revoke (they only ever take access away).
fn named(action: &str, seen: Seen) -> Result<Seen, ApiError> {
    if seen.uid.is_none() && matches!(action, "approve" | "deny") {
        return Err(ApiError::field(
            "uid",
            format!("name the request you {action}: its uid (and seen) as GET /v1/requests/CLUSTER/NAME gives them"),
        ));
    }
    Ok(seen)
}

/// One action on one request, as the verified caller.
async fn act_as(
    s: &Server,
    who: &Subject,
    k: &RequestKey,
    action: &str,
    raw: &[u8],
) -> Result<AccessRequest, ApiError> {
    use api::Named;
    let a = &s.authority;
    if matches!(action, "approve" | "deny" | "shorten" | "revoke") {
        s.access
            .require_approver(who, action)
            .map_err(|e| error::from_backend(&e))?;
    }
    let (op, seen, required) = match action {
        "approve" => {
            let b: ApproveBody = body(raw)?;
            let asked = a.get(k).await.map_err(|e| error::from_backend(&e))?;
            let seen = named(action, b.named())?;
            // What was read is what is decided: 409, saying what it is now.
            seen.check(&asked)
                .map_err(|e| error::from_backend(&e.into()))?;
            // What was asked fills what the body leaves out.
            let duration = match b.duration {
                Some(d) => parse_duration("duration", &d)?,
                None => asked.duration,
            };
            let namespaces = b.namespaces.unwrap_or_else(|| asked.namespaces.clone());
            // A policy judges the diff: never approve before it can be
            // computed (right after a start, before the RBAC is read).
            if s.policy.is_some() && s.hub.inventory_of(&k.cluster).is_none() {
                return Err(ApiError::new(
                    503,
                    "Unavailable",
                    format!(
                        "{}'s RBAC is not read yet, so the policy cannot judge {k}: try again in a moment",
                        k.cluster
                    ),
                ));
            }
            // The policy decides who may approve, how many must, and how
            // long a grant may last.
            let decision = s.decide(&asked)?.unwrap_or_default();
            if !decision.allowed() {
                s.metrics.refused("policy");
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!("refused by policy: {}", decision.deny.join("; ")),
                ));
            }
            if let Err(why) = decision.may_approve(who) {
                s.metrics.refused("policy");
                return Err(ApiError::new(
                    403,
                    "Forbidden",
                    format!("you ({}) may not approve {k}: {why}", who.user),
                ));
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
            (Op::Approve(spec), seen, decision.approvals_required)
        }
        "deny" => {
            let b: ReasonBody = body(raw)?;
            let seen = named(action, b.named())?;
            (Op::Deny { reason: b.reason }, seen, 1)
        }
        "revoke" => {
            let b: ReasonBody = body(raw)?;
            let seen = named(action, b.named())?;
            (Op::Revoke { reason: b.reason }, seen, 1)
        }
        "shorten" => {
            let b: ShortenBody = body(raw)?;
            let seen = named(action, b.named())?;
            let end = match (b.expires_at, b.to) {
                (Some(t), None) => t,
                (None, Some(to)) => {
                    let left = TimeDelta::from_std(parse_duration("to", &to)?)
                        .map_err(|_| ApiError::field("to", "too long"))?;
                    a.now()
                        .checked_add_signed(left)
                        .ok_or_else(|| ApiError::field("to", "too far in the future"))?
                }
                _ => {
                    return Err(ApiError::field(
                        "to",
                        "give exactly one of to (10m) or expiresAt",
                    ))
                }
            };
            (Op::Shorten { new_end: end }, seen, 1)
        }
        _ => {
            let result = match action {
                "withdraw" => a.withdraw(who, k).await,
                _ => a.release(who, k).await,
            };
            s.metrics.decided(action, result.is_ok());
            return result.map_err(|e| error::from_backend(&e));
        }
    };
    let result = a.decide(who, k, &seen, op, required).await;
    s.metrics.decided(action, result.is_ok());
    if let Err(e) = &result {
        if matches!(e, crate::backend::BackendError::Forbidden { .. }) {
            s.metrics.refused("forbidden");
        }
        tracing::info!(user = %who.user, %k, %action, error = %e, "refused");
    }
    result.map_err(|e| error::from_backend(&e))
}

#[derive(Debug, Default, Deserialize)]
struct AuditQuery {
    /// A request name, or CLUSTER/NAME.
    request: Option<String>,
    user: Option<String>,
    /// RFC 3339.
    since: Option<String>,
    /// At most this many (the newest); default 1000.
    limit: Option<usize>,
}

/// `GET /v1/audit`: the recent audit records (approvers only: they hold
/// everyone's reasons and refused attempts).
async fn audit_list(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    let who = caller(&s, &headers).await?;
    approvers_only(&s, &who, "the audit trail").by(&who, "read audit", None)?;
    let since = match q.since.as_deref() {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| ApiError::field("since", format!("not RFC 3339: {e}")))
                .by(&who, "read audit", None)?
                .with_timezone(&chrono::Utc),
        ),
        None => None,
    };
    let filter = crate::audit::query::Filter {
        request: q.request,
        user: q.user,
        since,
    };
    let mut items = s.audit.recent(|r| filter.matches(&r.event));
    let limit = q.limit.unwrap_or(1000);
    if items.len() > limit {
        items.drain(..items.len() - limit);
    }
    Ok(Json(json!({ "items": items })))
}

/// How often a live stream's token is checked again: as often as any
/// call's (the TokenReview cache's lifetime).
pub const STREAM_RECHECK: Duration = authority::TOKEN_TTL;

/// `GET /v1/events`: the live stream (server-sent events). Approvers get
/// everything; anyone else what they may read (their own requests in full,
/// others' redacted; no inventories, notices or audit records). The
/// token is checked again every [`STREAM_RECHECK`]: a stream ends, with a
/// last `end` event saying why, once it is no longer accepted (or names
/// someone else), so no stream outlives its token.
async fn events(
    State(s): State<Shared>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let who = caller(&s, &headers).await?;
    let token = bearer(&headers).unwrap_or_default().to_string();
    // Audit records are for approvers: they hold everyone's reasons.
    let approver = s.access.may_approve(&who);
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut start = s.hub.start(last.as_deref());
    if approver && last.is_none() {
        // A fresh console gets the recent trail with its snapshot.
        let id = start.after;
        let recent = s.audit.recent(|_| true);
        let from = recent.len().saturating_sub(AUDIT_IN_SNAPSHOT);
        start.frames.extend(recent[from..].iter().map(|r| {
            Arc::new(stream::Frame {
                id,
                event: api::events::AUDIT,
                data: crate::audit::chain::line(r).into(),
                redacted: None,
            })
        }));
    }
    let guard = s.metrics.sse_client();
    let epoch = s.hub.epoch.clone();
    let to_event = move |f: &stream::Frame| {
        Ok::<_, Infallible>(
            Event::default()
                .id(format!("{epoch}-{}", f.id))
                .event(f.event)
                .data(&*f.data),
        )
    };
    let me = who.user.clone();
    let shown = move |f: Arc<stream::Frame>| {
        if approver {
            Some(f)
        } else {
            Hub::for_requester(&me, f)
        }
    };
    let shown_live = shown.clone();
    // Events are made as the connection takes them, not all up front: a
    // snapshot of 10,000 requests to 100 consoles would otherwise be a
    // gigabyte at once.
    let to_event_first = to_event.clone();
    let first = futures::stream::iter(start.frames)
        .filter_map(move |f| std::future::ready(shown(f)))
        .map(move |f| to_event_first(&f));
    let after = start.after;
    let live = tokio_stream_from(start.rx)
        .filter_map(move |f| std::future::ready((f.id > after).then(|| shown_live(f)).flatten()))
        .map(move |f| {
            let _keep = &guard;
            to_event(&f)
        });
    // Why the stream ends, said in its last event.
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<String>();
    let mut stopping = s.stopping.subscribe();
    let weak = Arc::downgrade(&s);
    let stop = async move {
        let stopped = async move {
            let _ = stopping.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        let mut tick = tokio::time::interval(STREAM_RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let why = loop {
            tokio::select! {
                _ = &mut stopped => break "the server is stopping".to_string(),
                _ = tick.tick() => {
                    let Some(s) = weak.upgrade() else {
                        break "the server is stopping".to_string();
                    };
                    match s.authority.authenticate(&token).await {
                        Ok(now) if now == who => {}
                        Ok(_) => break "the token now belongs to someone else: connect again".to_string(),
                        Err(AuthError::Rejected) => {
                            s.metrics.refused("stream-token-expired");
                            break "the token is no longer accepted (expired, revoked or deleted): sign in again".to_string();
                        }
                        // The hub cannot say now: keep the stream, ask again.
                        Err(AuthError::Unavailable(_)) => {}
                    }
                }
            }
        };
        let _ = ended_tx.send(why);
    };
    let last_word = futures::stream::once(ended_rx).filter_map(|why| {
        std::future::ready(why.ok().map(|why| {
            Ok::<_, Infallible>(
                Event::default()
                    .event(api::events::END)
                    .data(json!({ "reason": why }).to_string()),
            )
        }))
    });
    let stream = first.chain(live).take_until(stop).chain(last_word);
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("keep-alive"),
    ))
}

/// A broadcast receiver as a stream; a console too slow to keep up is cut
/// off (it reconnects and resumes from its last id).
fn tokio_stream_from(
    rx: tokio::sync::broadcast::Receiver<Arc<stream::Frame>>,
) -> impl Stream<Item = Arc<stream::Frame>> {
    futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(f) => Some((f, rx)),
            Err(_) => None,
        }
    })
}

/// Serves until `shutdown` resolves: TLS when configured, else plain HTTP
/// (the config allows that only on loopback, or behind a TLS proxy).
pub async fn serve(
    server: Shared,
    listen: SocketAddr,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = server.router();
    let stopping = server.stopping.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    match tls {
        None => {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            ready(listener.local_addr()?);
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await?;
        }
        Some((cert, key)) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key).await?;
            let listener = std::net::TcpListener::bind(listen)?;
            listener.set_nonblocking(true)?;
            ready(listener.local_addr()?);
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                h.graceful_shutdown(Some(Duration::from_secs(5)));
            });
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                .await?;
        }
    }
    Ok(())
}
