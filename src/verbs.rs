//! The scriptable verbs (`request`, `get`, `approve`, `deny`, `shorten`,
//! `revoke`, `withdraw`, `login`): no prompts, output on stdout, one-line
//! errors. They run directly on a cluster or against the Portcullis server
//! (`--backend URL`) alike, through [`VerbBackend`].

use async_trait::async_trait;
use chrono::{TimeDelta, Utc};
use serde_json::Value;

use crate::api::request_json as object;
use crate::backend::http::HttpBackend;
use crate::backend::kube::KubeBackend;
use crate::backend::{AccessBackend, ApproveSpec, BackendError, NewRequest, RequestKey};
use crate::cli::{Command, CredentialsArg, GetWhat, OutputFormat};
use crate::domain::sanitize::inert;
use crate::domain::{
    duration, AccessRequest, Credentials, Phase, RoleRef, Subject, ValidationLimits,
};

/// What the verbs need beyond [`AccessBackend`].
#[async_trait]
pub trait VerbBackend: AccessBackend {
    /// Every request in view.
    async fn list(&self) -> Result<Vec<AccessRequest>, BackendError>;
    /// One request, as stored now.
    async fn get(&self, key: &RequestKey) -> Result<AccessRequest, BackendError>;
    /// Who asks, and whether that was verified (else `--group` applies).
    fn me(&self) -> (Subject, bool);
    /// The limits a new request for `cluster` is checked against.
    async fn limits(&self, cluster: &str) -> ValidationLimits;
    /// Credentials mode Token: a kubeconfig for the grant.
    async fn login(&self, req: &AccessRequest) -> Result<String, BackendError>;
}

#[async_trait]
impl VerbBackend for KubeBackend {
    async fn list(&self) -> Result<Vec<AccessRequest>, BackendError> {
        KubeBackend::list(self).await
    }
    async fn get(&self, key: &RequestKey) -> Result<AccessRequest, BackendError> {
        KubeBackend::get(self, key).await.map(|(r, _)| r)
    }
    fn me(&self) -> (Subject, bool) {
        let id = &self.clusters()[0].identity;
        (
            Subject {
                user: id.user.clone(),
                groups: id.groups.clone(),
            },
            id.is_verified(),
        )
    }
    async fn limits(&self, cluster: &str) -> ValidationLimits {
        KubeBackend::limits(self, cluster).await
    }
    async fn login(&self, req: &AccessRequest) -> Result<String, BackendError> {
        let kubeconfig =
            kube::config::Kubeconfig::read().map_err(|e| BackendError::Config(e.to_string()))?;
        let context = &req.cluster;
        let cluster_name = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == *context)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
            .unwrap_or_default();
        let entry = kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .and_then(|c| c.cluster.clone())
            .ok_or_else(|| {
                BackendError::Config(format!(
                    "context {context} names no cluster in the kubeconfig"
                ))
            })?;
        let conn = self
            .clusters()
            .iter()
            .find(|c| c.context == *context)
            .ok_or_else(|| BackendError::Config(format!("no context {context}")))?;
        crate::backend::kube::login(
            conn,
            req,
            entry.server.as_deref().unwrap_or_default(),
            entry.certificate_authority_data.as_deref(),
            entry.insecure_skip_tls_verify.unwrap_or(false),
        )
        .await
    }
}

#[async_trait]
impl VerbBackend for HttpBackend {
    async fn list(&self) -> Result<Vec<AccessRequest>, BackendError> {
        HttpBackend::list(self).await
    }
    async fn get(&self, key: &RequestKey) -> Result<AccessRequest, BackendError> {
        self.get_request(key).await
    }
    fn me(&self) -> (Subject, bool) {
        (self.info().approver, true)
    }
    async fn limits(&self, _cluster: &str) -> ValidationLimits {
        // The server checks against its own limits when the request arrives.
        ValidationLimits {
            max_duration: std::time::Duration::MAX,
            ..Default::default()
        }
    }
    async fn login(&self, req: &AccessRequest) -> Result<String, BackendError> {
        Err(BackendError::Invalid(format!(
            "{}: `login` through the server is not in this build; run it with --context on the target cluster",
            req.name
        )))
    }
}

/// Which cluster a verb acts on: the one `--context` names, else the only
/// one in view, else (for an existing request) wherever that name is.
async fn pick_cluster(
    backend: &dyn VerbBackend,
    context: Option<&str>,
    name: Option<&str>,
) -> Result<String, BackendError> {
    let clusters = backend.info().clusters;
    if let Some(c) = context {
        return Ok(c.to_string());
    }
    if clusters.len() == 1 {
        return Ok(clusters[0].clone());
    }
    if let Some(name) = name {
        let found: Vec<String> = backend
            .list()
            .await?
            .into_iter()
            .filter(|r| r.name == name)
            .map(|r| r.cluster)
            .collect();
        if let [one] = found.as_slice() {
            return Ok(one.clone());
        }
    }
    Err(BackendError::Config(format!(
        "name the cluster with --context (one of: {})",
        clusters.join(", ")
    )))
}

/// Runs one verb; returns what to print.
pub async fn run(
    command: &Command,
    backend: &dyn VerbBackend,
    context: Option<&str>,
    config_groups: &[String],
) -> Result<String, BackendError> {
    let name = match command {
        Command::Approve { name, .. }
        | Command::Deny { name, .. }
        | Command::Shorten { name, .. }
        | Command::Revoke { name, .. }
        | Command::Withdraw { name }
        | Command::Release { name }
        | Command::Diff { name, .. }
        | Command::Login { name } => Some(name.as_str()),
        Command::Request {
            extend: Some(name), ..
        } => Some(name.as_str()),
        _ => None,
    };
    let cluster = match command {
        Command::Get { .. } => String::new(),
        _ => pick_cluster(backend, context, name).await?,
    };
    let key = |name: &str| RequestKey {
        cluster: cluster.clone(),
        name: name.to_string(),
    };
    let (me, verified) = backend.me();
    let get = |name: &str| {
        let k = key(name);
        async move { backend.get(&k).await }
    };
    match command {
        Command::Request {
            role,
            cluster_role,
            namespaces,
            duration,
            reason,
            ticket,
            groups,
            credentials,
            extend,
        } => {
            // The apiserver's (or the server's) word for who asks; only an
            // unverified identity falls back to the groups given here.
            let groups = if verified {
                // Every user has these; they say nothing to an approver.
                me.groups
                    .iter()
                    .filter(|g| {
                        *g != "system:authenticated" && !g.starts_with("system:serviceaccounts")
                    })
                    .cloned()
                    .collect()
            } else if groups.is_empty() {
                config_groups.to_vec()
            } else {
                groups.clone()
            };
            let requester = Subject {
                user: me.user.clone(),
                groups,
            };
            let live = match extend {
                Some(of) => Some(get(of).await?),
                None => None,
            };
            let new = match (&live, role) {
                // An extension asks for what the live grant holds (or less).
                (Some(live), _) => NewRequest {
                    cluster: cluster.clone(),
                    requester,
                    role: live.role.clone(),
                    namespaces: if namespaces.is_empty() {
                        live.granted_namespaces().to_vec()
                    } else {
                        namespaces.clone()
                    },
                    duration: *duration,
                    reason: reason.clone(),
                    ticket: ticket.clone().or_else(|| live.ticket.clone()),
                    credentials: live.credentials,
                    extends: Some(live.name.clone()),
                },
                (None, Some(role)) => NewRequest {
                    cluster: cluster.clone(),
                    requester,
                    role: if *cluster_role {
                        RoleRef::cluster_role(role)
                    } else {
                        RoleRef::role(role)
                    },
                    namespaces: namespaces.clone(),
                    duration: *duration,
                    reason: reason.clone(),
                    ticket: ticket.clone(),
                    credentials: match credentials {
                        CredentialsArg::Identity => Credentials::Identity,
                        CredentialsArg::Token => Credentials::Token,
                    },
                    extends: None,
                },
                (None, None) => {
                    return Err(BackendError::Invalid(
                        "name a role (--role) or a grant to extend (--extend)".into(),
                    ))
                }
            };
            // Refuse what can never be approved before it reaches anyone.
            let draft = new.clone().into_request("new".into(), Utc::now());
            draft
                .validate(&backend.limits(&cluster).await)
                .map_err(|e| BackendError::Invalid(e.to_string()))?;
            if let Some(live) = &live {
                draft
                    .check_extends(live)
                    .map_err(|e| BackendError::Invalid(e.to_string()))?;
            }
            let made = backend.create(new).await?;
            Ok(format!("{}\n", made.name))
        }
        Command::Get { what, output, all } => {
            let mut items: Vec<AccessRequest> = backend
                .list()
                .await?
                .into_iter()
                .filter(|r| match what {
                    GetWhat::Grants => r.phase() == Phase::Active,
                    GetWhat::Requests => *all || r.phase() == Phase::Pending,
                })
                .collect();
            items.sort_by_key(|r| r.created_at);
            Ok(match output {
                OutputFormat::Table => table(&items, *what, backend.now()),
                OutputFormat::Json => escape_data(
                    &serde_json::to_string_pretty(&Value::Array(
                        items.iter().map(object).collect(),
                    ))
                    .map(|s| s + "\n")
                    .unwrap_or_default(),
                ),
                OutputFormat::Yaml => escape_data(
                    &serde_yaml_ng::to_string(&Value::Array(items.iter().map(object).collect()))
                        .unwrap_or_default(),
                ),
            })
        }
        Command::Approve {
            name,
            duration,
            namespaces,
            reason,
        } => {
            let asked = get(name).await?;
            let spec = ApproveSpec {
                duration: duration.unwrap_or(asked.duration),
                namespaces: if namespaces.is_empty() {
                    asked.namespaces.clone()
                } else {
                    namespaces.clone()
                },
                reason: reason.clone(),
            };
            let r = backend.approve(&key(name), spec).await?;
            Ok(format!(
                "approved {}: {} {} in {} until {}\n",
                r.name,
                r.role.kind,
                r.role.name,
                scope(r.granted_namespaces()),
                r.status
                    .expires_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default()
            ))
        }
        Command::Deny { name, reason } => backend
            .deny(&key(name), reason)
            .await
            .map(|r| format!("denied {}\n", r.name)),
        Command::Shorten { name, to } => {
            // "From now" on the apiserver's clock, not this machine's.
            let end = backend.now() + TimeDelta::from_std(*to).unwrap_or(TimeDelta::MAX);
            backend
                .shorten(&key(name), end)
                .await
                .map(|r| format!("shortened {}: ends in {}\n", r.name, duration::format(*to)))
        }
        Command::Revoke { name, reason } => backend
            .revoke(&key(name), reason)
            .await
            .map(|r| format!("revoked {}\n", r.name)),
        Command::Withdraw { name } => backend
            .withdraw(&key(name))
            .await
            .map(|r| format!("withdrew {} (deleted)\n", r.name)),
        Command::Release { name } => {
            let r = backend.release(&key(name)).await?;
            if !r.phase().is_terminal() {
                return Err(BackendError::Unavailable {
                    cluster: cluster.clone(),
                    message: format!(
                        "{name}: release asked (its release binding is deleted), but no reaper has ended the grant yet: access remains until one does (is `portcullis reaper` running?)"
                    ),
                });
            }
            Ok(format!(
                "released {}: access ended{}\n",
                r.name,
                r.status
                    .message
                    .as_deref()
                    .map(|m| format!(" ({})", inert(m, 300)))
                    .unwrap_or_default()
            ))
        }
        Command::Login { name } => backend.login(&get(name).await?).await,
        Command::Diff { name, output } => {
            let req = get(name).await?;
            let report = crate::diff_verb::report(backend, &req).await?;
            crate::diff_verb::render(&report, *output)
        }
        other => Err(BackendError::Invalid(format!(
            "{other:?} is not a request verb"
        ))),
    }
}

/// JSON and YAML keep requester text as data, but a terminal must not
/// act on it: characters a terminal interprets (C1 controls, bidi
/// overrides, zero-width marks) become `\uXXXX` escapes — lossless inside
/// JSON strings and YAML double-quoted scalars, visible and inert anywhere.
/// (C0 controls are already escaped by both serializers.)
fn escape_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if crate::domain::sanitize::is_dangerous(c) && !matches!(c, '\n' | '\t') {
            // UTF-16 units: what JSON's \u escape counts (a surrogate pair
            // above U+FFFF).
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{:04X}", unit));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn scope(ns: &[String]) -> String {
    if ns.is_empty() {
        "cluster-wide".into()
    } else {
        ns.join(",")
    }
}

/// A kubectl-style table; requester text is made inert for the terminal.
/// `now` is the apiserver's clock (ages and time left as the cluster counts them).
fn table(items: &[AccessRequest], what: GetWhat, now: chrono::DateTime<Utc>) -> String {
    let last = match what {
        GetWhat::Requests => "AGE",
        GetWhat::Grants => "LEFT",
    };
    let mut rows = vec![[
        "NAME",
        "REQUESTER",
        "ROLE",
        "NAMESPACES",
        "DURATION",
        "PHASE",
        last,
    ]
    .map(String::from)
    .to_vec()];
    for r in items {
        rows.push(vec![
            inert(&r.name, 64).into_owned(),
            inert(&r.requester.user, 32).into_owned(),
            inert(&r.role.name, 40).into_owned(),
            inert(&scope(r.granted_namespaces()), 60).into_owned(),
            duration::format(r.duration),
            if r.malformed.is_some() {
                "Invalid".into()
            } else {
                r.phase().to_string()
            },
            match what {
                GetWhat::Requests => duration::format_chrono(now - r.created_at),
                GetWhat::Grants => duration::format(r.remaining(now)),
            },
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}
