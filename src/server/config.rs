//! `portcullis serve --config FILE`: one TOML file, every key documented in
//! README ("The server"). Unknown keys are errors: a typo must not leave a
//! limit or an approver list at its default.
//!
//! ```toml
//! listen = "127.0.0.1:7443"
//! tls_cert = "/etc/portcullis/tls.crt"   # both or neither; plain HTTP only
//! tls_key = "/etc/portcullis/tls.key"    # on loopback, or with insecure_http
//! insecure_http = false
//! hub = "hub"                            # kubeconfig context, or "in-cluster"
//! approvers = ["group:oncall", "user:dana"]
//! requesters = []                        # empty: every authenticated user
//! policy = "/etc/portcullis/policies"    # Rego policies, enforced (optional)
//!
//! [clusters.prod]
//! context = "prod"                       # or "in-cluster"
//! max_duration = "4h"
//! approval_timeout = "24h"
//! grantable = ["ClusterRole/edit", "ClusterRole/view", "Role/payments/deployer"]
//! labels = { env = "prod" }              # input.request.cluster_labels
//!
//! [audit]
//! log = "/var/lib/portcullis/audit.jsonl"  # append-only, hash-chained
//! key = "/etc/portcullis/audit.key"        # signs the head (audit keygen)
//! stdout = true                          # also each record on stdout
//! rotate_mb = 64                         # new file past this; chain goes on
//!
//! [webhook]
//! enabled = true                         # serve /validate (needs TLS)
//! privileged = ["system:serviceaccount:portcullis-system:portcullis-server"]
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::backend::kube::settings::{parse_retention, ClusterSettings, DEFAULT_RETENTION};
use crate::domain::grantable::Grantable;
use crate::domain::{duration, Subject, ValidationLimits};

#[derive(Debug, Error)]
pub enum ServerConfigError {
    #[error("server config {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("server config {path}: cannot read it: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub context: Option<String>,
    pub max_duration: Option<String>,
    pub approval_timeout: Option<String>,
    /// How long an ended request stays on the hub (default 30d; `forever`).
    pub retention: Option<String>,
    #[serde(default)]
    pub grantable: Vec<String>,
    /// What the policy sees as `input.request.cluster_labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub privileged: Vec<String>,
}

/// `[audit]`: where the trail goes (README "Audit trail").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    pub log: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub stdout: Option<bool>,
    pub rotate_mb: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    pub listen: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    #[serde(default)]
    pub insecure_http: bool,
    pub hub: Option<String>,
    #[serde(default)]
    pub approvers: Vec<String>,
    #[serde(default)]
    pub requesters: Vec<String>,
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterFile>,
    #[serde(default)]
    pub webhook: WebhookFile,
    /// A directory of Rego policies (and their data), enforced.
    pub policy: Option<PathBuf>,
    #[serde(default)]
    pub audit: AuditFile,
}

/// Who a rule names: `user:NAME` or `group:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User(String),
    Group(String),
}

impl Principal {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("user", name)) if !name.is_empty() => Ok(Self::User(name.into())),
            Some(("group", name)) if !name.is_empty() => Ok(Self::Group(name.into())),
            _ => Err(format!("'{text}' is not user:NAME or group:NAME")),
        }
    }

    pub fn matches(&self, who: &Subject) -> bool {
        match self {
            Self::User(u) => *u == who.user,
            Self::Group(g) => who.groups.contains(g),
        }
    }
}

/// A target cluster as the server runs it.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub name: String,
    /// Kubeconfig context; None = in-cluster config.
    pub context: Option<String>,
    pub settings: ClusterSettings,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Kubeconfig context of the hub; None = in-cluster config.
    pub hub: Option<String>,
    pub approvers: Vec<Principal>,
    pub requesters: Vec<Principal>,
    pub clusters: Vec<ClusterConfig>,
    pub webhook: bool,
    pub privileged: Vec<String>,
    pub policy: Option<PathBuf>,
    pub audit: AuditFile,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7443";

impl ServerConfig {
    pub fn load(path: &Path) -> Result<Self, ServerConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ServerConfigError> {
        let bad = |message: String| ServerConfigError::Invalid {
            path: origin.into(),
            message,
        };
        let file: ServerFile = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
        let listen: SocketAddr = file
            .listen
            .as_deref()
            .unwrap_or(DEFAULT_LISTEN)
            .parse()
            .map_err(|e| bad(format!("listen: {e}")))?;
        let tls = match (file.tls_cert, file.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err(bad("tls_cert and tls_key go together".into())),
        };
        if tls.is_none() && !listen.ip().is_loopback() && !file.insecure_http {
            return Err(bad(format!(
                "listen {listen} is not loopback: give tls_cert and tls_key (or insecure_http = true behind a TLS proxy)"
            )));
        }
        let principals = |key: &str, list: &[String]| {
            list.iter()
                .map(|p| Principal::parse(p).map_err(|e| bad(format!("{key}: {e}"))))
                .collect::<Result<Vec<_>, _>>()
        };
        let approvers = principals("approvers", &file.approvers)?;
        if approvers.is_empty() {
            return Err(bad(
                "approvers: name at least one user:NAME or group:NAME (nobody else may approve)"
                    .into(),
            ));
        }
        let requesters = principals("requesters", &file.requesters)?;
        if file.clusters.is_empty() {
            return Err(bad(
                "clusters: name at least one target cluster ([clusters.NAME] context = \"…\")"
                    .into(),
            ));
        }
        let mut clusters = Vec::new();
        for (name, c) in file.clusters {
            let dur = |key: &str, v: &Option<String>, default| match v {
                Some(t) => {
                    duration::parse(t).map_err(|e| bad(format!("clusters.{name}.{key}: {e}")))
                }
                None => Ok(default),
            };
            let limits = ValidationLimits::default();
            let grantable = c
                .grantable
                .iter()
                .map(|g| {
                    Grantable::parse(g).map_err(|e| bad(format!("clusters.{name}.grantable: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            clusters.push(ClusterConfig {
                context: c.context.filter(|c| c != "in-cluster"),
                settings: ClusterSettings {
                    limits: ValidationLimits {
                        max_duration: dur("max_duration", &c.max_duration, limits.max_duration)?,
                        approval_timeout: dur(
                            "approval_timeout",
                            &c.approval_timeout,
                            limits.approval_timeout,
                        )?,
                        grantable: (!grantable.is_empty()).then_some(grantable),
                        ..limits
                    },
                    retention: match &c.retention {
                        Some(r) => parse_retention(r)
                            .map_err(|e| bad(format!("clusters.{name}.retention: {e}")))?,
                        None => DEFAULT_RETENTION,
                    },
                    from_cluster: false,
                },
                labels: c.labels,
                name,
            });
        }
        if file.webhook.enabled && tls.is_none() {
            return Err(bad(
                "webhook.enabled needs tls_cert and tls_key: the apiserver calls webhooks over HTTPS".into(),
            ));
        }
        Ok(Self {
            listen,
            tls,
            hub: file.hub.filter(|h| h != "in-cluster"),
            approvers,
            requesters,
            clusters,
            webhook: file.webhook.enabled,
            privileged: file.webhook.privileged,
            policy: file.policy,
            audit: file.audit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
hub = "hub"
approvers = ["group:oncall", "user:dana"]
[clusters.prod]
context = "prod"
max_duration = "4h"
grantable = ["ClusterRole/edit"]
[clusters.staging]
context = "staging"
retention = "90d"
"#;

    #[test]
    fn reads_the_documented_keys() {
        let c = ServerConfig::parse(GOOD, "s.toml").unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.hub.as_deref(), Some("hub"));
        assert_eq!(c.clusters.len(), 2);
        let prod = c.clusters.iter().find(|x| x.name == "prod").unwrap();
        assert_eq!(prod.settings.limits.max_duration.as_secs(), 4 * 3600);
        assert!(prod.settings.limits.grantable.is_some());
        assert_eq!(
            prod.settings.retention.as_secs(),
            30 * 86_400,
            "the default"
        );
        let staging = c.clusters.iter().find(|x| x.name == "staging").unwrap();
        assert_eq!(staging.settings.retention.as_secs(), 90 * 86_400);
        assert!(c.approvers[0].matches(&Subject::new("erin", &["oncall"])));
        assert!(!c.approvers[1].matches(&Subject::new("erin", &["dev"])));
    }

    #[test]
    fn refuses_what_would_leave_a_door_open() {
        let e = |t: &str| ServerConfig::parse(t, "s.toml").unwrap_err().to_string();
        assert!(e("[clusters.a]\ncontext='a'\n").contains("approvers"));
        assert!(e("approvers=['group:x']\n").contains("clusters"));
        assert!(
            e("approvers=['group:x']\nlisten='0.0.0.0:80'\n[clusters.a]\n")
                .contains("not loopback")
        );
        assert!(e("approvers=['oncall']\n[clusters.a]\n").contains("user:NAME or group:NAME"));
        assert!(e("approvers=['group:x']\nbogus=1\n[clusters.a]\n").contains("unknown field"));
        assert!(
            e("approvers=['group:x']\n[webhook]\nenabled=true\n[clusters.a]\n").contains("HTTPS")
        );
    }
}
