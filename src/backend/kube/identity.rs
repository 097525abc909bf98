//! Who is at the console, as the apiserver knows them — never the name of a
//! kubeconfig entry, which anyone can rename.
//!
//! SelfSubjectReview (served from Kubernetes 1.28; alpha/beta from 1.26)
//! answers outright. Before 1.28 the apiserver still names the user it
//! authenticated in every refusal (`User "bob" cannot get …`), so a request
//! nobody may make — a resource in an API group that does not exist — tells
//! us the user behind the credentials the client really sent (a bad client
//! certificate next to a good token, a token next to a certificate,
//! impersonation: whatever the apiserver used). A TokenReview of our own
//! token or the client certificate's subject then supplies the groups, but
//! only when it names that same user. Only a credential the client sends
//! alone is believed without the apiserver's word (a cluster-admin, whom
//! nothing refuses). Else the kubeconfig name is used, shown as "identity
//! unverified", and refused for approvals.

use std::fmt;

use kube::config::AuthInfo;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifiedBy {
    SelfSubjectReview,
    /// The user named in the apiserver's own refusal of a probe (groups
    /// unknown: no credential of ours named the same user).
    Refusal,
    TokenReview,
    ClientCertificate,
    /// Nothing the apiserver confirmed: the kubeconfig entry's name.
    Unverified,
}

impl fmt::Display for VerifiedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifiedBy::SelfSubjectReview => "SelfSubjectReview",
            VerifiedBy::Refusal => "the apiserver's refusal",
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
pub(crate) fn certificate_subject(pem: &[u8]) -> Option<(String, Vec<String>)> {
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

/// The user the apiserver says it authenticated, from the refusal of a
/// request nobody is allowed (`None` if it was allowed or failed otherwise).
async fn refused_as(client: &kube::Client) -> Option<String> {
    let request = http::Request::get("/apis/identity.portcullis.dev/v1/whoami")
        .body(Vec::new())
        .ok()?;
    match client.request::<Value>(request).await {
        Err(kube::Error::Api(s)) if s.code == 403 => user_in_refusal(&s.message),
        _ => None,
    }
}

/// `… is forbidden: User "bob" cannot get resource …` → `bob` (the name is
/// Go-quoted, which JSON string syntax reads for every name the apiserver
/// accepts).
pub(crate) fn user_in_refusal(message: &str) -> Option<String> {
    let start = message.find("User \"")? + "User ".len();
    let rest = &message[start..];
    let mut end = None;
    let mut escaped = false;
    for (i, c) in rest.char_indices().skip(1) {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => {
                end = Some(i);
                break;
            }
            _ => escaped = false,
        }
    }
    serde_json::from_str::<String>(&rest[..=end?]).ok()
}

/// The credentials kube-rs will send: a token alone, a certificate alone,
/// or something else (several, exec, auth-provider, basic, impersonation).
enum Sent {
    Token,
    Certificate,
    Other,
}

fn sent(auth: &AuthInfo) -> Sent {
    let others = auth.exec.is_some()
        || auth.auth_provider.is_some()
        || auth.username.is_some()
        || auth.impersonate.is_some();
    match (others, bearer_token(auth), client_certificate(auth)) {
        (false, Some(_), None) => Sent::Token,
        (false, None, Some(_)) => Sent::Certificate,
        _ => Sent::Other,
    }
}

/// Asks the apiserver who this client is. `kubeconfig_user` is only the
/// fallback, and is then marked unverified.
pub(crate) async fn whoami(
    client: &kube::Client,
    auth: &AuthInfo,
    kubeconfig_user: &str,
) -> Identity {
    // Every question at once: one round trip, not three.
    let token = bearer_token(auth);
    let review = async {
        match &token {
            Some(t) => Some(token_review(client, t).await),
            None => None,
        }
    };
    let (ssr, said, reviewed) =
        tokio::join!(self_subject_review(client), refused_as(client), review);
    if let Some((user, groups)) = ssr {
        return Identity {
            user,
            groups,
            verified_by: VerifiedBy::SelfSubjectReview,
            note: None,
        };
    }
    let mut why = Vec::new();
    // Groups (and the name, for whom nothing is refused) from the
    // credential itself: its TokenReview or certificate subject.
    let from_token = match reviewed {
        Some(Ok(found)) => Some(found),
        Some(Err(e)) => {
            why.push(e);
            None
        }
        None => None,
    };
    let from_cert = client_certificate(auth).and_then(|pem| certificate_subject(&pem));
    if let Some(user) = said {
        // The apiserver's word on the name; groups only from a credential
        // that names the same user.
        let (groups, verified_by) = match (&from_token, &from_cert) {
            (Some((u, g)), _) if *u == user => (g.clone(), VerifiedBy::TokenReview),
            (_, Some((u, g))) if *u == user && from_token.is_none() => {
                (g.clone(), VerifiedBy::ClientCertificate)
            }
            _ => (Vec::new(), VerifiedBy::Refusal),
        };
        return Identity {
            user,
            groups,
            verified_by,
            note: None,
        };
    }
    // Nothing was refused (a cluster-admin): believe a credential only
    // when it is the one thing the client sends.
    match sent(auth) {
        Sent::Token => {
            if let Some((user, groups)) = from_token {
                return Identity {
                    user,
                    groups,
                    verified_by: VerifiedBy::TokenReview,
                    note: None,
                };
            }
        }
        Sent::Certificate => {
            if let Some((user, groups)) = from_cert {
                return Identity {
                    user,
                    groups,
                    verified_by: VerifiedBy::ClientCertificate,
                    note: None,
                };
            }
            why.push("the client certificate could not be read".into());
        }
        Sent::Other => why.push(
            "several credentials, an exec plugin or impersonation in the kubeconfig, and the apiserver (< 1.28) would not say which it used".into(),
        ),
    }
    if why.is_empty() {
        why.push("no SelfSubjectReview (Kubernetes < 1.28) and nothing to check".into());
    }
    Identity::unverified(kubeconfig_user, why.join("; "))
}

/// Whether the apiserver lets us write a request's status (what deciding
/// is, in direct mode: the `portcullis-approver` role); None when it did
/// not answer.
pub(crate) async fn may_decide(client: &kube::Client) -> Option<bool> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some("update".into()),
                group: Some("portcullis.dev".into()),
                resource: Some("accessrequests".into()),
                subresource: Some("status".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    kube::Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&Default::default(), &review)
        .await
        .ok()
        .and_then(|r| r.status)
        .map(|s| s.allowed)
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
    fn reads_the_user_from_a_refusal() {
        let m = r#"whoami.identity.portcullis.dev is forbidden: User "bob" cannot list resource "whoami" in API group "identity.portcullis.dev" at the cluster scope"#;
        assert_eq!(user_in_refusal(m), Some("bob".into()));
        let m = r#"x is forbidden: User "system:serviceaccount:ns:a\"b" cannot get"#;
        assert_eq!(
            user_in_refusal(m),
            Some("system:serviceaccount:ns:a\"b".into())
        );
        assert_eq!(user_in_refusal("not found"), None);
    }

    #[test]
    fn reads_a_client_certificate_subject() {
        assert_eq!(
            certificate_subject(CERT.as_bytes()),
            Some(("carol".into(), vec!["oncall".into(), "dev".into()]))
        );
        assert_eq!(certificate_subject(b"not a certificate"), None);
    }
}
