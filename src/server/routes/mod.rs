//! The server's routes, one module per resource, and what every call
//! goes through: the body limit, the per-address rate limit, the panic net
//! and the record of every refusal.

pub(crate) mod actions;
pub(crate) mod audit;
pub(crate) mod clusters;
pub(crate) mod credentials;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod requests;

use std::sync::{Arc, Weak};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use super::error::{Error, Failure, Refused};
use super::extract::{bearer, peer, PeerAddress};
use super::{openapi, refusals, webhook, Server, Shared, MAX_BODY, SIGN_EVERY};
use crate::api::ApiError;
use crate::domain::{duration, AccessRequest, RequestKey, Subject};

/// The server's routes, behind every layer a call goes through.
pub(crate) fn router(server: &Shared) -> Router {
    let me = Arc::downgrade(server);
    let panicked = move |panic: Box<dyn std::any::Any + Send + 'static>| panic_response(&me, panic);
    let router = routes()
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked));
    limit_per_address(router)
        .layer(axum::middleware::from_fn_with_state(
            server.clone(),
            record_refusals,
        ))
        .with_state(server.clone())
}

/// Every call the server answers, and the 404 for any other.
fn routes() -> Router<Shared> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics_text))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/v1/whoami", get(health::whoami))
        .route("/v1/requests", get(requests::list).post(requests::create))
        .route("/v1/requests/{cluster}/{name}", get(requests::one))
        .route("/v1/requests/{cluster}/{name}/diff", get(requests::diff))
        .route(
            "/v1/requests/{cluster}/{name}/credentials",
            post(credentials::credentials),
        )
        .merge(actions::routes())
        .route(
            "/v1/requests/{cluster}/{name}/{action}",
            post(actions::unknown),
        )
        .route("/v1/clusters/{cluster}/inventory", get(clusters::inventory))
        .route("/v1/events", get(events::events))
        .route("/v1/audit", get(audit::audit_list))
        .route("/validate", post(webhook::validate))
        .route("/validate/{cluster}", post(webhook::validate))
        .fallback(|| async {
            Failure::from(ApiError::new(
                404,
                "NotFound",
                "no such call: README \"API\" lists them",
            ))
        })
}

/// The panic net's answer: the panic logged and counted, and a 500 that
/// says nothing was changed.
fn panic_response(me: &Weak<Server>, panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
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
}

/// `router` with the per-address rate limit (none if its quota cannot be
/// built), and the task that forgets addresses not seen lately.
fn limit_per_address(router: Router<Shared>) -> Router<Shared> {
    let per_address = tower_governor::governor::GovernorConfigBuilder::default()
        .per_millisecond((1000 / refusals::CALLS_PER_SECOND).max(1))
        .burst_size(refusals::CALL_BURST)
        .key_extractor(PeerAddress)
        .finish()
        .map(Arc::new);
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
    match per_address {
        Some(config) => {
            router.layer(tower_governor::GovernorLayer::new(config).error_handler(too_many_calls))
        }
        None => router,
    }
}

/// The rate limit's refusal, in our shape: 429 and when to try again.
fn too_many_calls(e: tower_governor::GovernorError) -> Response {
    let (code, message) = match e {
        tower_governor::GovernorError::TooManyRequests { wait_time, .. } => (
            429,
            format!("too many calls from this address: try again in {wait_time} s"),
        ),
        other => (500, other.to_string()),
    };
    Failure::from(ApiError::new(code, "TooManyRequests", message)).into_response()
}

/// Every answer of 400 or more is a refusal on the record (README "API"),
/// whoever gave it — a handler, the body limit, the router, the panic net,
/// the rate limit — at a bounded rate per caller and per address
/// ([`refusals`]).
pub(crate) async fn record_refusals(
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

/// A request named by the path: a cluster this server serves (else 404)
/// and a name a Kubernetes object can have (else 422 naming `name`) —
/// checked before anything reaches a cluster.
pub(crate) fn key(s: &Server, cluster: String, name: String) -> Result<RequestKey, Error> {
    if !s.authority.clusters().contains(&cluster) {
        return Err(Error::NotFound(format!(
            "no cluster '{}' on this server ({})",
            crate::domain::sanitize::inert(&cluster, 64),
            s.authority.clusters().join(", ")
        )));
    }
    if let Err(why) = crate::domain::names::object_name(&name) {
        return Err(Error::field("name", why));
    }
    Ok(RequestKey { cluster, name })
}
/// Whether `who` may see all of `r` (need to know): its requester, and
/// approvers.
pub(crate) fn may_read(s: &Server, who: &Subject, r: &AccessRequest) -> bool {
    r.requester.user == who.user || s.access.may_approve(who)
}
/// A request: the stream's copy when it has one, else the authority's (a
/// request made a moment ago may not have reached the stream yet).
pub(crate) async fn current(s: &Server, k: &RequestKey) -> Result<AccessRequest, Error> {
    match s.hub.request(k) {
        Some(r) => Ok(r),
        None => s.authority.get(k).await.map_err(Error::from),
    }
}
/// Refused unless `who` may approve: RBAC inventories, others' diffs and
/// the audit trail are for approvers.
pub(crate) fn approvers_only(s: &Server, who: &Subject, what: &str) -> Result<(), Error> {
    if s.access.may_approve(who) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
            "you ({}) may not read {what}: approvers may (the server's approvers list does not name you or your groups)",
            who.user
        )))
}
pub(crate) fn parse_duration(field: &str, text: &str) -> Result<std::time::Duration, Error> {
    duration::parse(text).map_err(|e| Error::field(field, e.to_string()))
}
pub(crate) fn body<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, Error> {
    if raw.is_empty() {
        return serde_json::from_value(json!({}))
            .map_err(|e| Error::Invalid(format!("a JSON body is required: {e}")));
    }
    serde_json::from_slice(raw).map_err(|e| Error::Invalid(format!("body: {e}")))
}
