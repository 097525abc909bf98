//! Credentials mode Token: the requester mints a short-lived token for
//! their grant's ServiceAccount — only they may (the minting Role the
//! reaper made names that one ServiceAccount and binds only them).

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use serde_json::json;

use super::grant::{self, Caller};
use super::{token_account, KubeCluster, SYSTEM_NAMESPACE};
use crate::backend::BackendError;
use crate::domain::{AccessRequest, Credentials, Phase};

/// Mints a token (no longer than the grant has left, but at least the
/// apiserver's 10-minute minimum: the ServiceAccount is deleted at the
/// grant's end, which invalidates it) and returns a kubeconfig with one
/// context for it.
pub async fn login(
    cluster: &KubeCluster,
    req: &AccessRequest,
    server: &str,
    ca_data: Option<&str>,
    insecure: bool,
) -> Result<String, BackendError> {
    if req.credentials != Credentials::Token {
        return Err(BackendError::Invalid(format!(
            "{} uses your own identity: no login needed",
            req.name
        )));
    }
    if req.phase() != Phase::Active {
        return Err(BackendError::Invalid(format!(
            "{} is {}: only a live grant can log in",
            req.name,
            req.phase()
        )));
    }
    if !grant::token_objects_recorded(req) {
        return Err(BackendError::Invalid(format!(
            "{}: its credentials are not set up yet — the reaper makes them within seconds of approval (is `portcullis reaper` running?)",
            req.name
        )));
    }
    let left = req.remaining(cluster.clock.now()).as_secs().max(600) as i64;
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(left),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), SYSTEM_NAMESPACE);
    let minted: TokenRequest = api
        .create_subresource(
            "token",
            &token_account(&req.name),
            &PostParams::default(),
            &tr,
        )
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 403 => BackendError::Forbidden {
                user: cluster.user().to_string(),
                action: "mint a token for this grant".into(),
                hint: format!("only its requester may ({})", s.message),
            },
            e => grant::map_err(
                &grant::Site::direct(cluster),
                Caller::Requester,
                "mint a token",
                e,
            ),
        })?;
    let token = minted.status.map(|s| s.token).unwrap_or_default();
    let context = format!("portcullis-{}", req.name);
    let mut cluster_entry = json!({"server": server});
    if let Some(ca) = ca_data {
        cluster_entry["certificate-authority-data"] = json!(ca);
    }
    if insecure {
        cluster_entry["insecure-skip-tls-verify"] = json!(true);
    }
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster_entry}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    });
    serde_yaml_ng::to_string(&config).map_err(|e| BackendError::Invalid(e.to_string()))
}
