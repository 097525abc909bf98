//! Whether the server is alive and ready, its metrics, and who a token is.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::WhoAmI;
use crate::server::error::ApiResult;
use crate::server::extract::Caller;
use crate::server::Shared;

pub(crate) async fn readyz(State(s): State<Shared>) -> Response {
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

pub(crate) async fn metrics_text(State(s): State<Shared>) -> Response {
    let body = s.metrics.render(&s.hub.phases());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::server::metrics::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}

pub(crate) async fn whoami(
    State(s): State<Shared>,
    Caller(who): Caller,
) -> ApiResult<Json<WhoAmI>> {
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
