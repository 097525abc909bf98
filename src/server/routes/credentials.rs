//! `POST /v1/requests/{cluster}/{name}/credentials`: a short-lived token
//! for the caller's own live Token-mode grant.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::key;
use crate::server::error::{ApiResult, Error, Refusal};
use crate::server::extract::Caller;
use crate::server::Shared;

/// A token for the caller's own live Token-mode grant, minted by the
/// server for the grant's ServiceAccount, as a kubeconfig; on the record
/// (never the token), and never cached by anyone on the way.
pub(crate) async fn credentials(
    State(s): State<Shared>,
    Caller(who): Caller,
    Path((cluster, name)): Path<(String, String)>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let k = key(&s, cluster, name).by(&who, "credentials", None)?;
    let issued = s
        .authority
        .credentials(&who, &k)
        .await
        .map_err(Error::from)
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
