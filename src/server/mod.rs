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
pub mod metrics;
pub mod openapi;
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
use crate::backend::{ApproveSpec, NewRequest, RequestKey};
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
                let batch = crate::runtime::drain(first, &mut events);
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
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .route("/v1/openapi.json", get(openapi::document))
            .route("/v1/whoami", get(whoami))
            .route("/v1/requests", get(list).post(create))
            .route("/v1/requests/{cluster}/{name}", get(one))
            .route("/v1/requests/{cluster}/{name}/diff", get(diff))
            .route("/v1/requests/{cluster}/{name}/{action}", post(act))
            .route("/v1/clusters/{cluster}/inventory", get(inventory))
            .route("/v1/events", get(events))
            .route("/v1/audit", get(audit_list))
            .route("/validate", post(webhook::validate))
            .with_state(self.clone())
    }
}

/// An API error as a response.
pub struct Failure(ApiError);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, Json(self.0.body())).into_response()
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e)
    }
}

type ApiResult<T> = Result<T, Failure>;

/// Who is calling: the bearer token, as the authority resolves it.
async fn caller(s: &Server, headers: &HeaderMap) -> ApiResult<Subject> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        s.metrics.refused("no-token");
        let e = ApiError::unauthorized();
        s.record_refusal(None, "authenticate: no bearer token", None, &e);
        return Err(e.into());
    };
    match s.authority.authenticate(token).await {
        Ok(who) => Ok(who),
        Err(AuthError::Rejected) => {
            s.metrics.refused("bad-token");
            let e = ApiError::unauthorized();
            s.record_refusal(None, "authenticate: token rejected", None, &e);
            Err(e.into())
        }
        Err(AuthError::Unavailable(why)) => {
            Err(ApiError::new(503, "Unavailable", format!("cannot check the token: {why}")).into())
        }
    }
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
    caller(&s, &headers).await?;
    let body = s.hub.list_json(|r| {
        q.phase
            .as_deref()
            .is_none_or(|p| r.phase().as_str().eq_ignore_ascii_case(p))
            && q.cluster.as_deref().is_none_or(|c| r.cluster == c)
            && q.requester.as_deref().is_none_or(|u| r.requester.user == u)
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

fn key(cluster: String, name: String) -> RequestKey {
    RequestKey { cluster, name }
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
            .map_err(|e| ApiError::from_backend(&e)),
    }
}

async fn one(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path((cluster, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller(&s, &headers).await?;
    let k = key(cluster, name);
    Ok(Json(api::request_json(&current(&s, &k).await?)))
}

async fn inventory(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Value>> {
    caller(&s, &headers).await?;
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
    caller(&s, &headers).await?;
    let k = key(cluster, name);
    let r = s
        .hub
        .request(&k)
        .ok_or_else(|| ApiError::new(404, "NotFound", format!("{k} not found")))?;
    let inv: Inventory = s
        .hub
        .inventory(&k.cluster)
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| {
            ApiError::new(503, "Unavailable", "no RBAC inventory for this cluster yet")
        })?;
    let a = analyze(
        &inv,
        GrantRequest {
            subject: &r.requester,
            role: &r.role,
            namespaces: r.granted_namespaces(),
        },
    )
    .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
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
    match create_as(&s, &who, &raw).await {
        Ok(made) => {
            s.record_action(&who, None, &made);
            Ok((StatusCode::CREATED, Json(api::request_json(&made))))
        }
        Err(e) => {
            s.record_refusal(Some(&who), "create", None, &e);
            Err(e.into())
        }
    }
}

/// A new request in the caller's name; approved at once when the policy
/// says it approves itself.
async fn create_as(s: &Server, who: &Subject, raw: &[u8]) -> Result<AccessRequest, ApiError> {
    let b: CreateBody = body(raw)?;
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
        .map_err(|e| ApiError::from_backend(&e))?;
    // An extension names the caller's own live grant and asks for no more.
    if let Some(of) = &b.extends {
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
            422,
            "Invalid",
            format!("refused by policy: {}", d.deny.join("; ")),
        ));
    }
    let made = s.authority.create(who, new).await;
    s.metrics.decided("create", made.is_ok());
    let mut made = made.map_err(|e| ApiError::from_backend(&e))?;
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
            .approve(&by, &RequestKey::of(&made), spec, 1)
            .await;
        s.metrics.decided("auto-approve", granted.is_ok());
        made = granted.map_err(|e| ApiError::from_backend(&e))?;
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
    let k = key(cluster, name);
    let before = current(&s, &k).await.ok();
    match act_as(&s, &who, &k, &action, &raw).await {
        Ok(r) => {
            if let Some(before) = &before {
                s.record_action(&who, Some(before), &r);
            }
            Ok(Json(api::request_json(&r)))
        }
        Err(e) => {
            s.record_refusal(Some(&who), &action, Some(&k), &e);
            Err(e.into())
        }
    }
}

/// One action on one request, as the verified caller.
async fn act_as(
    s: &Server,
    who: &Subject,
    k: &RequestKey,
    action: &str,
    raw: &[u8],
) -> Result<AccessRequest, ApiError> {
    let a = &s.authority;
    if matches!(action, "approve" | "deny" | "shorten" | "revoke") {
        s.access
            .require_approver(who, action)
            .map_err(|e| ApiError::from_backend(&e))?;
    }
    let result = match action {
        "approve" => {
            let b: ApproveBody = body(raw)?;
            // What was asked fills what the body leaves out.
            let (duration, namespaces) = match (b.duration, b.namespaces) {
                (Some(d), Some(ns)) => (parse_duration("duration", &d)?, ns),
                (d, ns) => {
                    let asked = current(s, k).await?;
                    (
                        match d {
                            Some(d) => parse_duration("duration", &d)?,
                            None => asked.duration,
                        },
                        ns.unwrap_or(asked.namespaces),
                    )
                }
            };
            // The policy decides who may approve, how many must, and how
            // long a grant may last.
            let asked = current(s, k).await?;
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
            let decision = s.decide(&asked)?.unwrap_or_default();
            if !decision.allowed() {
                s.metrics.refused("policy");
                return Err(ApiError::new(
                    422,
                    "Invalid",
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
            a.approve(who, k, spec, decision.approvals_required).await
        }
        "deny" => {
            let b: ReasonBody = body(raw)?;
            a.deny(who, k, &b.reason).await
        }
        "revoke" => {
            let b: ReasonBody = body(raw)?;
            a.revoke(who, k, &b.reason).await
        }
        "shorten" => {
            let b: ShortenBody = body(raw)?;
            let end = match (b.expires_at, b.to) {
                (Some(t), None) => t,
                (None, Some(to)) => {
                    a.now()
                        + TimeDelta::from_std(parse_duration("to", &to)?).unwrap_or(TimeDelta::MAX)
                }
                _ => {
                    return Err(ApiError::field(
                        "to",
                        "give exactly one of to (10m) or expiresAt",
                    ))
                }
            };
            a.shorten(who, k, end).await
        }
        "withdraw" => a.withdraw(who, k).await,
        "release" => a.release(who, k).await,
        other => {
            return Err(ApiError::new(
                404,
                "NotFound",
                format!("no action '{other}' (approve, deny, shorten, revoke, withdraw, release)"),
            ))
        }
    };
    s.metrics.decided(action, result.is_ok());
    if let Err(e) = &result {
        if matches!(e, crate::backend::BackendError::Forbidden { .. }) {
            s.metrics.refused("forbidden");
        }
        tracing::info!(user = %who.user, %k, %action, error = %e, "refused");
    }
    result.map_err(|e| ApiError::from_backend(&e))
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
    if !s.access.may_approve(&who) {
        let e = ApiError::new(
            403,
            "Forbidden",
            format!(
                "you ({}) may not read the audit trail: approvers may",
                who.user
            ),
        );
        s.record_refusal(Some(&who), "read audit", None, &e);
        return Err(e.into());
    }
    let since = match q.since.as_deref() {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| ApiError::field("since", format!("not RFC 3339: {e}")))?
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

/// `GET /v1/events`: the live stream (server-sent events).
async fn events(
    State(s): State<Shared>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let who = caller(&s, &headers).await?;
    // Audit records are for approvers: they hold everyone's reasons.
    let audited = s.access.may_approve(&who);
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut start = s.hub.start(last.as_deref());
    if audited && last.is_none() {
        // A fresh console gets the recent trail with its snapshot.
        let id = start.after;
        let recent = s.audit.recent(|_| true);
        let from = recent.len().saturating_sub(AUDIT_IN_SNAPSHOT);
        start.frames.extend(recent[from..].iter().map(|r| {
            Arc::new(stream::Frame {
                id,
                event: api::events::AUDIT,
                data: crate::audit::chain::line(r).into(),
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
    // Events are made as the connection takes them, not all up front: a
    // snapshot of 10,000 requests to 100 consoles would otherwise be a
    // gigabyte at once.
    let to_event_first = to_event.clone();
    let shown = move |f: &stream::Frame| audited || f.event != api::events::AUDIT;
    let first = futures::stream::iter(start.frames)
        .filter(move |f| std::future::ready(shown(f)))
        .map(move |f| to_event_first(&f));
    let after = start.after;
    let live = tokio_stream_from(start.rx)
        .filter(move |f| std::future::ready(f.id > after && shown(f)))
        .map(move |f| {
            let _keep = &guard;
            to_event(&f)
        });
    let mut stopping = s.stopping.subscribe();
    let stop = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    let stream = first.chain(live).take_until(stop);
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
            axum::serve(listener, app)
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
                .serve(app.into_make_service())
                .await?;
        }
    }
    Ok(())
}
