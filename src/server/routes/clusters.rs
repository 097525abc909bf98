//! `/v1/clusters/{cluster}/inventory`: a cluster's RBAC, for approvers.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

use super::approvers_only;
use crate::server::error::{ApiResult, Error, Refusal};
use crate::server::extract::Caller;
use crate::server::Shared;

pub(crate) async fn inventory(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path(cluster): Path<String>,
) -> ApiResult<Json<Value>> {
    approvers_only(&s, &who, "a cluster's RBAC inventory").by(&who, "read inventory", None)?;
    s.hub.inventory(&cluster).map(Json).ok_or_else(|| {
        Error::NotFound(format!("no RBAC inventory for cluster {cluster} (yet)")).into()
    })
}
