//! Who is at the console, as the apiserver knows them — never the name of a
//! kubeconfig entry, which anyone can rename.
//!
//! In order: SelfSubjectReview (served from Kubernetes 1.28; alpha/beta
//! from 1.26), else a TokenReview of the caller's own bearer token (the
//! shipped requester and approver roles may create TokenReviews), else the
//! subject of the client certificate the apiserver accepted (CN is the
//! user, O the groups), else the kubeconfig user name, marked unverified:
//! shown as "identity unverified" and refused for approvals.

use std::fmt;

use kube::config::AuthInfo;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifiedBy {
    SelfSubjectReview,
    TokenReview,
    ClientCertificate,
    /// Nothing the apiserver confirmed: the kubeconfig entry's name.
    Unverified,
}

impl fmt::Display for VerifiedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifiedBy::SelfSubjectReview => "SelfSubjectReview",
            VerifiedBy::TokenReview => "TokenReview",
            VerifiedBy::ClientCertificate => "client certificate",
            VerifiedBy::Unverified => "unverified",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// As the apiserver reports them (empty when unverified).
    pub groups: Vec<String>,
    pub verified_by: VerifiedBy,
    /// Why verification failed, when it did.
    pub note: Option<String>,
}

impl Identity {
    pub fn is_verified(&self) -> bool {
        self.verified_by != VerifiedBy::Unverified
    }

    pub fn unverified(user: &str, note: String) -> Self {
        Self {
            user: user.into(),
            groups: Vec::new(),
            verified_by: VerifiedBy::Unverified,
            note: Some(note),
        }
    }
}

/// `status.userInfo` of a SelfSubjectReview, or `status.user` of a TokenReview.
fn user_info(v: &Value) -> Option<(String, Vec<String>)> {
    let user = v.get("username")?.as_str()?.to_string();
    if user.is_empty() {
        return None;
    }
    let groups = v
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some((user, groups))
}

async fn post(client: &kube::Client, path: &str, body: &Value) -> Result<Value, kube::Error> {
    let request = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(body).map_err(kube::Error::SerdeError)?)
        .map_err(kube::Error::HttpError)?;
    client.request::<Value>(request).await
}

async fn self_subject_review(client: &kube::Client) -> Option<(String, Vec<String>)> {
    for version in ["v1", "v1beta1", "v1alpha1"] {
        let body = json!({"apiVersion": format!("authentication.k8s.io/{version}"), "kind": "SelfSubjectReview"});
        match post(
            client,
            &format!("/apis/authentication.k8s.io/{version}/selfsubjectreviews"),
            &body,
        )
        .await
        {
            Ok(v) => return user_info(v.get("status")?.get("userInfo")?),
            Err(kube::Error::Api(s)) if s.code == 404 => continue,
            Err(e) => {
                tracing::debug!(error = %e, "SelfSubjectReview failed");
                return None;
            }
        }
    }
    None
}

fn bearer_token(auth: &AuthInfo) -> Option<String> {
    if let Some(t) = &auth.token {
        return Some(t.expose_secret().to_string());
    }
    let file = auth.token_file.as_ref()?;
    std::fs::read_to_string(file)
        .ok()
        .map(|t| t.trim().to_string())
}

async fn token_review(client: &kube::Client, token: &str) -> Result<(String, Vec<String>), String> {
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}});
    match post(client, "/apis/authentication.k8s.io/v1/tokenreviews", &body).await {
        Ok(v) => {
            let status = v.get("status").cloned().unwrap_or(Value::Null);
            if status.get("authenticated").and_then(Value::as_bool) != Some(true) {
                return Err("the apiserver did not authenticate the token".into());
            }
            status
                .get("user")
                .and_then(user_info)
                .ok_or_else(|| "the TokenReview named no user".into())
        }
        Err(kube::Error::Api(s)) if s.code == 403 => Err(format!(
            "may not create TokenReviews (bind the portcullis-requester or portcullis-approver role): {}",
            s.message
        )),
        Err(e) => Err(format!("TokenReview failed: {e}")),
    }
}

/// The user (CN) and groups (O) of a PEM client certificate.
pub fn certificate_subject(pem: &[u8]) -> Option<(String, Vec<String>)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .map(str::to_string)
        .collect();
    Some((user, groups))
}

fn client_certificate(auth: &AuthInfo) -> Option<Vec<u8>> {
    if let Some(data) = &auth.client_certificate_data {
        use base64::Engine;
        return base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok();
    }
    std::fs::read(auth.client_certificate.as_ref()?).ok()
}

/// Asks the apiserver who this client is. `kubeconfig_user` is only the
/// fallback, and is then marked unverified.
pub async fn whoami(client: &kube::Client, auth: &AuthInfo, kubeconfig_user: &str) -> Identity {
    if let Some((user, groups)) = self_subject_review(client).await {
        return Identity {
            user,
            groups,
            verified_by: VerifiedBy::SelfSubjectReview,
            note: None,
        };
    }
    let mut why = Vec::new();
    if let Some(token) = bearer_token(auth) {
        match token_review(client, &token).await {
            Ok((user, groups)) => {
                return Identity {
                    user,
                    groups,
                    verified_by: VerifiedBy::TokenReview,
                    note: None,
                }
            }
            Err(e) => why.push(e),
        }
    }
    if let Some(pem) = client_certificate(auth) {
        // The apiserver accepted this certificate on the TLS handshake of
        // every call above; its subject is the identity it authenticates.
        match certificate_subject(&pem) {
            Some((user, groups)) => {
                return Identity {
                    user,
                    groups,
                    verified_by: VerifiedBy::ClientCertificate,
                    note: None,
                }
            }
            None => why.push("the client certificate could not be read".into()),
        }
    }
    if why.is_empty() {
        why.push("no SelfSubjectReview (Kubernetes < 1.28), no bearer token or client certificate to check (exec plugin?)".into());
    }
    Identity::unverified(kubeconfig_user, why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_info() {
        let v = json!({"username": "bob", "groups": ["oncall", "system:authenticated"]});
        assert_eq!(
            user_info(&v),
            Some((
                "bob".into(),
                vec!["oncall".into(), "system:authenticated".into()]
            ))
        );
        assert_eq!(user_info(&json!({"username": ""})), None);
    }

    // A throwaway self-signed certificate: CN=carol, O=oncall, O=dev.
    const CERT: &str = include_str!("testdata/carol.pem");

    #[test]
    fn reads_a_client_certificate_subject() {
        assert_eq!(
            certificate_subject(CERT.as_bytes()),
            Some(("carol".into(), vec!["oncall".into(), "dev".into()]))
        );
        assert_eq!(certificate_subject(b"not a certificate"), None);
    }
}
