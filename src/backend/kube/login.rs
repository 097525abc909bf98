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

/// Where the grant's cluster is, as a kubeconfig names it: what a minted
/// token's kubeconfig points at.
#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoint {
    pub server: String,
    /// Base64 PEM, as `certificate-authority-data`.
    pub ca_data: Option<String>,
    pub insecure: bool,
}

impl Endpoint {
    /// The endpoint of a client's config (its URL and the CAs it trusts).
    pub(crate) fn of(config: &kube::Config) -> Self {
        use base64::Engine;
        let pem: String = config
            .root_cert
            .iter()
            .flatten()
            .map(|der| {
                let b64 = base64::engine::general_purpose::STANDARD.encode(der);
                let lines: Vec<&str> = b64
                    .as_bytes()
                    .chunks(64)
                    .map(|c| std::str::from_utf8(c).unwrap_or_default())
                    .collect();
                format!(
                    "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                    lines.join("\n")
                )
            })
            .collect();
        Endpoint {
            server: config
                .cluster_url
                .to_string()
                .trim_end_matches('/')
                .to_string(),
            ca_data: (!pem.is_empty())
                .then(|| base64::engine::general_purpose::STANDARD.encode(pem)),
            insecure: config.accept_invalid_certs,
        }
    }
}

/// A token minted for a grant's ServiceAccount, and until when it works.
pub(crate) struct Minted {
    pub token: String,
    /// The grant's end: the ServiceAccount is deleted then, which
    /// invalidates the token whatever its own expiry (at least the
    /// apiserver's 10-minute minimum) says.
    pub until: chrono::DateTime<chrono::Utc>,
    pub account: String,
}

/// Mints a token for `req`'s ServiceAccount as `cluster`'s identity (the
/// requester in direct mode, the server in server mode): no longer than
/// the grant has left, but at least the apiserver's 10-minute minimum.
pub(crate) async fn mint(
    cluster: &KubeCluster,
    req: &AccessRequest,
) -> Result<Minted, BackendError> {
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
    let now = cluster.clock.now();
    // Past its end but not yet ended by a reaper: no token (it would live
    // until the reaper deletes the ServiceAccount).
    if req.status.expires_at.is_some_and(|end| end <= now) {
        return Err(BackendError::Invalid(format!(
            "{} has ended: its end passed and it is being closed",
            req.name
        )));
    }
    let left = req.remaining(now).as_secs().max(600) as i64;
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(left),
            ..Default::default()
        },
        ..Default::default()
    };
    let account = token_account(&req.name);
    let api: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), SYSTEM_NAMESPACE);
    let minted: TokenRequest = api
        .create_subresource("token", &account, &PostParams::default(), &tr)
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
    let until = req.status.expires_at.unwrap_or(now);
    Ok(Minted {
        token,
        until,
        account: format!("{SYSTEM_NAMESPACE}/{account}"),
    })
}

/// A kubeconfig with one context: `endpoint`, as the grant's token.
pub(crate) fn kubeconfig(
    req: &AccessRequest,
    endpoint: &Endpoint,
    token: &str,
) -> Result<String, BackendError> {
    let context = format!("portcullis-{}", req.name);
    let mut cluster_entry = json!({"server": endpoint.server});
    if let Some(ca) = &endpoint.ca_data {
        cluster_entry["certificate-authority-data"] = json!(ca);
    }
    if endpoint.insecure {
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

/// Direct mode: mints as the requester and returns a kubeconfig with one
/// context for it.
pub async fn login(
    cluster: &KubeCluster,
    req: &AccessRequest,
    server: &str,
    ca_data: Option<&str>,
    insecure: bool,
) -> Result<String, BackendError> {
    let minted = mint(cluster, req).await?;
    let endpoint = Endpoint {
        server: server.to_string(),
        ca_data: ca_data.map(str::to_string),
        insecure,
    };
    kubeconfig(req, &endpoint, &minted.token)
}
