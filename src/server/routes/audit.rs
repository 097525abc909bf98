//! `GET /v1/audit`: the recent audit records, for approvers.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::approvers_only;
use crate::server::error::{ApiResult, Error, Refusal};
use crate::server::extract::Caller;
use crate::server::Shared;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
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
pub(crate) async fn audit_list(
    State(s): State<Shared>,
    Caller(who): Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    approvers_only(&s, &who, "the audit trail").by(&who, "read audit", None)?;
    let since = match q.since.as_deref() {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| Error::field("since", format!("not RFC 3339: {e}")))
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
