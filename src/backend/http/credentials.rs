//! Where the bearer token for the Portcullis server comes from: a fixed
//! token (`--token-file`, `$PORTCULLIS_TOKEN`, a kubeconfig `token`), a
//! token file read again when the server refuses what it held (a kubeconfig
//! `tokenFile`, which the kubelet or a sidecar rotates), or the kubeconfig's
//! exec plugin (`user.exec`: kubelogin, `aws eks get-token`,
//! `gke-gcloud-auth-plugin`, ...), run as kubectl runs it.
//!
//! We run exec plugins ourselves rather than through kube-rs: its
//! `auth_exec` is private (its refresh lives inside a tower layer for
//! kube's own client, not for the reqwest client that talks to the
//! server), and that layer renews a token 60 s before it expires, so a
//! token that lives a minute or less would run the plugin on every call.
//! Here a token is kept until shortly before its expiry (see
//! [`renew_at`]) and renewed when the server refuses it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Mutex;

use crate::backend::BackendError;
use crate::domain::sanitize::inert;

/// How long a plugin may take. kubelogin may wait for a browser sign-in;
/// a minute is enough for a cached token or a refresh, and a console is
/// not left hanging for longer.
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// The two ExecCredential versions kubectl still speaks (v1alpha1 went
/// with Kubernetes 1.24).
pub const API_V1: &str = "client.authentication.k8s.io/v1";
pub const API_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// What a plugin printed, as quoted in an error: one bounded line.
const QUOTED_MAX: usize = 200;
/// A plugin's command, as named in an error.
const NAME_MAX: usize = 80;
/// What is read of a plugin's output; the rest is drained unread (an
/// ExecCredential is a few kilobytes).
const STDOUT_MAX: usize = 1 << 20;
const STDERR_MAX: usize = 64 << 10;

/// What the server takes, said whenever a kubeconfig offers something else.
const SUPPORTED: &str = "the server takes a bearer token: --token-file F, $PORTCULLIS_TOKEN, or a kubeconfig user with `token`, `tokenFile` or `exec` (a sign-in plugin such as kubelogin, aws eks get-token or gke-gcloud-auth-plugin)";

/// Why there is no token. Every text a plugin or a file supplied is made
/// inert and bounded when the error is made, so each reads as one line.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CredentialError {
    #[error("cannot read the token file {path}: {why}")]
    TokenFile { path: String, why: String },
    /// The kubeconfig has no user that signs in with a token.
    #[error("{0}")]
    Unsupported(String),
    #[error("the sign-in plugin `{plugin}` (the kubeconfig's user.exec) was not found: {hint}")]
    NotFound { plugin: String, hint: String },
    #[error("the sign-in plugin `{plugin}` (the kubeconfig's user.exec) {why}")]
    Setup { plugin: String, why: String },
    #[error("the sign-in plugin `{plugin}` failed ({status}): {said}")]
    Failed {
        plugin: String,
        status: String,
        said: String,
    },
    #[error("the sign-in plugin `{plugin}` gave no token within {secs} s; Portcullis runs it without a terminal (interactive sign-in is not supported): sign in with kubectl first, then try again")]
    TimedOut { plugin: String, secs: u64 },
    #[error("the sign-in plugin `{plugin}` printed no usable ExecCredential: {why}")]
    Unusable { plugin: String, why: String },
}

impl From<CredentialError> for BackendError {
    /// A sign-in that cannot happen is the user's set-up to fix, not the
    /// server being away.
    fn from(e: CredentialError) -> Self {
        BackendError::Config(e.to_string())
    }
}

/// One line of what a plugin (or a file) printed, safe for a terminal,
/// and cut before anything that looks like a credential (`token`, `key`,
/// `password`, `secret`): stray text before a real ExecCredential must
/// not put part of a token on someone's screen or in a log.
fn quoted(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let cut = ["token", "key", "password", "secret"]
        .iter()
        .filter_map(|w| lower.find(w))
        .min();
    let (text, withheld) = match cut {
        Some(at) => (&text[..at], true),
        None => (text, false),
    };
    let text = text.trim();
    match (text.is_empty(), withheld) {
        (true, false) => "(it printed nothing)".into(),
        (true, true) => "(withheld: it looks like a credential)".into(),
        (false, false) => inert(text, QUOTED_MAX).into_owned(),
        (false, true) => format!(
            "{}… (the rest withheld: it looks like a credential)",
            inert(text, QUOTED_MAX)
        ),
    }
}

/// The kubeconfig's `user.exec`, as it is run.
#[derive(Debug, Clone)]
pub struct ExecPlugin {
    /// As the kubeconfig gives it. A relative command with a path
    /// separator (`./bin/login`) is relative to the kubeconfig's folder, as
    /// kubectl has it: `Kubeconfig::read` makes it absolute already.
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    api_version: String,
    install_hint: Option<String>,
    /// `spec.cluster` of the exec info, when `provideClusterInfo` asks.
    cluster: Option<Value>,
    timeout: Duration,
}

impl ExecPlugin {
    /// `exec` of a kubeconfig user; `cluster` is its context's cluster.
    pub fn from_config(
        exec: &kube::config::ExecConfig,
        cluster: Option<&kube::config::Cluster>,
    ) -> Result<Self, CredentialError> {
        let command = exec
            .command
            .clone()
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| {
                CredentialError::Unsupported(format!(
                    "the kubeconfig's user.exec names no command; {SUPPORTED}"
                ))
            })?;
        let plugin = inert(&command, NAME_MAX).into_owned();
        let api_version = match exec.api_version.as_deref() {
            Some(v @ (API_V1 | API_V1BETA1)) => v.to_string(),
            other => {
                return Err(CredentialError::Setup {
                    plugin,
                    why: format!(
                        "has apiVersion {}; Portcullis speaks {API_V1} and {API_V1BETA1}",
                        inert(other.unwrap_or("(none)"), 80)
                    ),
                })
            }
        };
        if exec.interactive_mode == Some(kube::config::ExecInteractiveMode::Always) {
            return Err(CredentialError::Setup {
                plugin,
                why: "has interactiveMode Always; Portcullis runs plugins without a terminal (interactive sign-in is not supported): sign in with kubectl first, or use a plugin mode that signs in without one".into(),
            });
        }
        let env = exec
            .env
            .iter()
            .flatten()
            .filter_map(|e| Some((e.get("name")?.clone(), e.get("value")?.clone())))
            .collect();
        let cluster = exec
            .provide_cluster_info
            .then(|| cluster.map(cluster_info))
            .flatten();
        Ok(Self {
            command,
            args: exec.args.clone().unwrap_or_default(),
            env,
            api_version,
            install_hint: exec.install_hint.clone(),
            cluster,
            timeout: PLUGIN_TIMEOUT,
        })
    }

    /// The same plugin with another time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn name(&self) -> String {
        inert(&self.command, NAME_MAX).into_owned()
    }

    /// `KUBERNETES_EXEC_INFO`, as kubectl sets it for a plugin it runs
    /// without a terminal.
    fn exec_info(&self) -> String {
        let mut spec = json!({"interactive": false});
        if let Some(c) = &self.cluster {
            spec["cluster"] = c.clone();
        }
        json!({"apiVersion": self.api_version, "kind": "ExecCredential", "spec": spec}).to_string()
    }

    /// Runs the plugin once: its token and when to run it again.
    async fn run(&self) -> Result<Issued, CredentialError> {
        let plugin = self.name();
        let mut command = tokio::process::Command::new(&self.command);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("KUBERNETES_EXEC_INFO", self.exec_info())
            // Without a terminal: the console owns it, and a verb's may be
            // a pipe. What it says on stderr is quoted when it fails.
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CredentialError::NotFound {
                plugin: plugin.clone(),
                hint: match self.install_hint.as_deref().map(str::trim) {
                    Some(h) if !h.is_empty() => inert(h, QUOTED_MAX).into_owned(),
                    _ => "install it, or fix user.exec.command in the kubeconfig".into(),
                },
            },
            _ => CredentialError::Setup {
                plugin: plugin.clone(),
                why: format!("cannot start: {e}"),
            },
        })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let finished = tokio::time::timeout(self.timeout, async {
            tokio::join!(
                read_bounded(stdout, STDOUT_MAX),
                read_bounded(stderr, STDERR_MAX),
                child.wait()
            )
        })
        .await;
        let Ok((out, err, status)) = finished else {
            let _ = child.start_kill();
            return Err(CredentialError::TimedOut {
                plugin,
                secs: self.timeout.as_secs().max(1),
            });
        };
        let status = status.map_err(|e| CredentialError::Setup {
            plugin: plugin.clone(),
            why: format!("did not finish: {e}"),
        })?;
        if !status.success() {
            return Err(CredentialError::Failed {
                plugin,
                status: match status.code() {
                    Some(code) => format!("exit code {code}"),
                    None => "killed by a signal".into(),
                },
                // Plugins explain on stderr; some only on stdout.
                said: quoted(if err.trim_ascii().is_empty() {
                    &out
                } else {
                    &err
                }),
            });
        }
        let now = Utc::now();
        let (token, expires) = parse_exec_credential(&out, &self.api_version)
            .map_err(|why| CredentialError::Unusable { plugin, why })?;
        Ok(Issued {
            token,
            renew_at: expires.map(|at| renew_at(now, at, Instant::now())),
        })
    }
}

/// `spec.cluster` of the exec info (client-go's `Cluster`): what the
/// kubeconfig says of the context's cluster.
fn cluster_info(c: &kube::config::Cluster) -> Value {
    let mut v = json!({});
    if let Some(s) = &c.server {
        v["server"] = json!(s);
    }
    if let Some(s) = &c.tls_server_name {
        v["tls-server-name"] = json!(s);
    }
    if let Some(b) = c.insecure_skip_tls_verify {
        v["insecure-skip-tls-verify"] = json!(b);
    }
    if let Some(s) = &c.certificate_authority_data {
        v["certificate-authority-data"] = json!(s);
    }
    if let Some(s) = &c.proxy_url {
        v["proxy-url"] = json!(s);
    }
    if let Some(config) = c
        .extensions
        .iter()
        .flatten()
        .find(|e| e.name == "client.authentication.k8s.io/exec")
    {
        v["config"] = config.extension.clone();
    }
    v
}

/// Up to `max` bytes of a pipe; the rest is read and dropped, so a plugin
/// that prints a lot is not stuck writing to a pipe no one reads.
async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>, max: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = pipe.read(&mut buf).await {
        let room = max.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

/// The token and its expiry in an ExecCredential a plugin printed, which
/// must answer in the `api_version` it was asked in. The error says what
/// is wrong in one line; it quotes the output only when it is not an
/// ExecCredential at all (a real one may hold a key, never quoted).
pub fn parse_exec_credential(
    stdout: &[u8],
    api_version: &str,
) -> Result<(String, Option<DateTime<Utc>>), String> {
    // JSON, as plugins print it; YAML too, as client-go's decoder takes it.
    let doc: Value = match serde_json::from_slice(stdout) {
        Ok(v) => v,
        Err(json_error) => serde_yaml_ng::from_slice(stdout).map_err(|_| {
            format!(
                "it is not JSON ({json_error}); it printed: {}",
                quoted(stdout)
            )
        })?,
    };
    if !doc.is_object() {
        return Err(format!(
            "it is not a JSON object; it printed: {}",
            quoted(stdout)
        ));
    }
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    match field(&doc, "kind").as_deref() {
        Some("ExecCredential") => {}
        other => {
            return Err(format!(
                "its kind is {}, not ExecCredential",
                inert(other.unwrap_or("(none)"), 60)
            ))
        }
    }
    match field(&doc, "apiVersion").as_deref() {
        Some(v) if v == api_version => {}
        other => {
            return Err(format!(
                "it answered in apiVersion {} to a call in {api_version}",
                inert(other.unwrap_or("(none)"), 60)
            ))
        }
    }
    let status = doc.get("status").unwrap_or(&Value::Null);
    let token = field(status, "token").unwrap_or_default();
    let token = token.trim();
    if token.is_empty() {
        return Err(if status.get("clientCertificateData").is_some() {
            "it gives a client certificate, and the server takes only a bearer token".into()
        } else {
            "status.token is missing".into()
        });
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("status.token holds characters no bearer token has".into());
    }
    let expires = match field(status, "expirationTimestamp")
        .as_deref()
        .map(str::trim)
    {
        None | Some("") => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    format!(
                        "status.expirationTimestamp {} is not an RFC 3339 time",
                        inert(t, 60)
                    )
                })?
                .with_timezone(&Utc),
        ),
    };
    Ok((token.to_string(), expires))
}

/// When a token that expires at `expires` (said at `now`) is renewed: a
/// tenth of its lifetime early, at most 10 s early. Early, because the
/// token still has to reach the server and be reviewed by the hub's
/// apiserver, whose clock may run a little ahead of ours; no earlier than
/// that, so a token that lives seconds (a test's) or a minute is still
/// used for most of its life rather than renewed on every call (kube-rs's
/// fixed 60 s would).
fn renew_at(now: DateTime<Utc>, expires: DateTime<Utc>, now_instant: Instant) -> Instant {
    let life = (expires - now).to_std().unwrap_or(Duration::ZERO);
    let early = (life / 10).min(Duration::from_secs(10));
    now_instant + (life - early)
}

/// A token and when it is due for renewal (never, for a fixed one or a
/// file's).
#[derive(Clone)]
struct Issued {
    token: String,
    renew_at: Option<Instant>,
}

impl Issued {
    fn fresh(&self) -> bool {
        self.renew_at.is_none_or(|at| Instant::now() < at)
    }
}

enum Source {
    Fixed(String),
    File(PathBuf),
    Exec(Box<ExecPlugin>),
}

/// The bearer token for the server, renewed as its source allows. Shared
/// by every call and the event stream; one renewal at a time.
pub struct BearerSource {
    source: Source,
    /// The token in use. Held across a renewal, so callers that find it
    /// stale at once wait for one run of the plugin rather than each
    /// starting their own.
    cache: Mutex<Option<Issued>>,
}

impl std::fmt::Debug for BearerSource {
    /// Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.source {
            Source::Fixed(_) => "fixed token".to_string(),
            Source::File(p) => format!("token file {}", p.display()),
            Source::Exec(e) => format!("exec plugin {}", e.name()),
        };
        f.debug_struct("BearerSource")
            .field("source", &kind)
            .finish()
    }
}

impl From<String> for BearerSource {
    fn from(token: String) -> Self {
        Self::fixed(token)
    }
}

impl From<&str> for BearerSource {
    fn from(token: &str) -> Self {
        Self::fixed(token)
    }
}

impl BearerSource {
    fn with(source: Source) -> Self {
        Self {
            source,
            cache: Mutex::new(None),
        }
    }

    /// A token given as it is (`--token-file`'s contents, the environment,
    /// a kubeconfig `token`): never renewed.
    pub fn fixed(token: impl Into<String>) -> Self {
        Self::with(Source::Fixed(token.into().trim().to_string()))
    }

    /// A file holding the token, read again when the server refuses it.
    pub fn token_file(path: impl Into<PathBuf>) -> Self {
        Self::with(Source::File(path.into()))
    }

    pub fn exec(plugin: ExecPlugin) -> Self {
        Self::with(Source::Exec(Box::new(plugin)))
    }

    /// How the current context's user signs in (`current-context`, its
    /// `user`): `token`, else `tokenFile`, else `exec`. Anything else is
    /// an error saying what is supported.
    pub fn from_kubeconfig(config: &kube::config::Kubeconfig) -> Result<Self, CredentialError> {
        let unsupported =
            |what: String| CredentialError::Unsupported(format!("{what}; {SUPPORTED}"));
        let Some(current) = config.current_context.as_deref() else {
            return Err(unsupported(
                "no token for the server: the kubeconfig has no current-context".into(),
            ));
        };
        let shown = |s: &str| inert(s, 80).into_owned();
        let context = config
            .contexts
            .iter()
            .find(|c| c.name == current)
            .and_then(|c| c.context.as_ref())
            .ok_or_else(|| {
                unsupported(format!(
                    "no token for the server: the kubeconfig's current-context {} is not among its contexts",
                    shown(current)
                ))
            })?;
        let user = context.user.as_deref().unwrap_or_default();
        let Some(auth) = config
            .auth_infos
            .iter()
            .find(|a| a.name == user)
            .and_then(|a| a.auth_info.as_ref())
        else {
            return Err(unsupported(format!(
                "no token for the server: context {} has no user in the kubeconfig",
                shown(current)
            )));
        };
        use secrecy::ExposeSecret;
        if let Some(t) = auth.token.as_ref().map(|t| t.expose_secret().trim()) {
            if !t.is_empty() {
                return Ok(Self::fixed(t));
            }
        }
        if let Some(f) = &auth.token_file {
            return Ok(Self::token_file(f));
        }
        if let Some(exec) = &auth.exec {
            let cluster = context.cluster.as_str();
            let cluster = config
                .clusters
                .iter()
                .find(|c| c.name == cluster)
                .and_then(|c| c.cluster.as_ref());
            return ExecPlugin::from_config(exec, cluster).map(Self::exec);
        }
        let who = format!(
            "the kubeconfig's user {} (context {})",
            shown(user),
            shown(current)
        );
        Err(unsupported(
            if auth.client_certificate.is_some() || auth.client_certificate_data.is_some() {
                format!("{who} signs in with a client certificate, which the server cannot check")
            } else if let Some(p) = &auth.auth_provider {
                format!(
                    "{who} signs in with the auth-provider {}, which kubectl no longer runs (its exec plugin replaces it, e.g. kubelogin for OIDC)",
                    shown(&p.name)
                )
            } else if auth.username.is_some() || auth.password.is_some() {
                format!("{who} signs in with a username and password")
            } else {
                format!("no token for the server: {who} has none")
            },
        ))
    }

    /// The token to send now: the one held while it is fresh, else a new
    /// one (the file read, the plugin run).
    pub async fn token(&self) -> Result<String, CredentialError> {
        if let Source::Fixed(t) = &self.source {
            return Ok(t.clone());
        }
        let mut cache = self.cache.lock().await;
        if let Some(held) = cache.as_ref().filter(|i| i.fresh()) {
            return Ok(held.token.clone());
        }
        let issued = self.issue().await?;
        *cache = Some(issued.clone());
        Ok(issued.token)
    }

    /// After the server refused `rejected` (401): a different token to try
    /// once more, or `None` when there is none (a fixed token; a plugin or
    /// file that gives the same one again). Another caller's renewal since
    /// `rejected` was handed out is used rather than a second run.
    pub async fn renewed(&self, rejected: &str) -> Result<Option<String>, CredentialError> {
        if let Source::Fixed(_) = &self.source {
            return Ok(None);
        }
        let mut cache = self.cache.lock().await;
        if let Some(held) = cache.as_ref().filter(|i| i.fresh() && i.token != rejected) {
            return Ok(Some(held.token.clone()));
        }
        let issued = self.issue().await?;
        *cache = Some(issued.clone());
        Ok((issued.token != rejected).then_some(issued.token))
    }

    async fn issue(&self) -> Result<Issued, CredentialError> {
        match &self.source {
            Source::Fixed(t) => Ok(Issued {
                token: t.clone(),
                renew_at: None,
            }),
            Source::File(path) => {
                let shown = || inert(&path.display().to_string(), 200).into_owned();
                let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                    CredentialError::TokenFile {
                        path: shown(),
                        why: e.to_string(),
                    }
                })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(CredentialError::TokenFile {
                        path: shown(),
                        why: "it is empty".into(),
                    });
                }
                Ok(Issued {
                    token: token.to_string(),
                    renew_at: None,
                })
            }
            Source::Exec(plugin) => plugin.run().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(String, Option<DateTime<Utc>>), String> {
        parse_exec_credential(text.as_bytes(), API_V1)
    }

    #[test]
    fn a_v1_credential_gives_its_token_and_expiry() {
        let (token, expires) = parse(
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
                "status":{"token":"eyJ.abc.def","expirationTimestamp":"2030-01-02T03:04:05Z"}}"#,
        )
        .unwrap();
        assert_eq!(token, "eyJ.abc.def");
        assert_eq!(expires.unwrap().to_rfc3339(), "2030-01-02T03:04:05+00:00");
    }

    #[test]
    fn a_v1beta1_credential_without_expiry_is_kept() {
        let text = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"k8s-aws-v1.xyz"}}"#;
        let (token, expires) = parse_exec_credential(text.as_bytes(), API_V1BETA1).unwrap();
        assert_eq!((token.as_str(), expires), ("k8s-aws-v1.xyz", None));
    }

    #[test]
    fn yaml_is_taken_as_client_go_takes_it() {
        let text = "apiVersion: client.authentication.k8s.io/v1\nkind: ExecCredential\nstatus:\n  token: t0\n";
        assert_eq!(parse(text).unwrap().0, "t0");
    }

    #[test]
    fn a_credential_without_a_token_says_so() {
        let e = parse(r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{}}"#)
            .unwrap_err();
        assert_eq!(e, "status.token is missing");
        let e = parse(r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"C","clientKeyData":"SECRET"}}"#)
            .unwrap_err();
        assert!(
            e.contains("client certificate") && !e.contains("SECRET"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_timestamp_is_named() {
        let e = parse(r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t","expirationTimestamp":"tomorrow"}}"#)
            .unwrap_err();
        assert!(
            e.contains("expirationTimestamp tomorrow is not an RFC 3339"),
            "{e}"
        );
    }

    #[test]
    fn another_version_or_kind_is_refused_without_quoting_it() {
        let e = parse(r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"SECRET"}}"#)
            .unwrap_err();
        assert!(
            e.contains("apiVersion client.authentication.k8s.io/v1beta1") && !e.contains("SECRET"),
            "{e}"
        );
        let e = parse(r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"Secret","status":{"token":"SECRET"}}"#)
            .unwrap_err();
        assert!(e.contains("kind is Secret") && !e.contains("SECRET"), "{e}");
    }

    #[test]
    fn what_looks_like_a_credential_is_never_quoted() {
        let e = parse("warning: cache stale\n{\"status\":{\"token\":\"s3cr3t-abc\"").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(e.contains("warning: cache stale"), "{e}");
        assert!(e.contains("withheld"), "{e}");
    }

    #[test]
    fn garbage_is_quoted_inert_and_bounded() {
        let garbage = format!("\x1b[31mlogin failed\x1b[0m\n{}", "x".repeat(5000));
        let e = parse(&garbage).unwrap_err();
        assert!(!e.contains('\x1b') && !e.contains('\n'), "{e:?}");
        assert!(e.contains("login failed"), "{e}");
        assert!(e.chars().count() < 400, "{} chars", e.chars().count());
        for text in ["", "null", "[1,2]", "\"just a string\"", "{", "\u{0}\u{ff}"] {
            assert!(parse(text).is_err(), "{text:?}");
        }
        assert!(parse_exec_credential(&[0xff, 0xfe, 0x00, 0x1b], API_V1).is_err());
    }

    #[test]
    fn a_token_is_renewed_a_tenth_of_its_life_early_at_most_ten_seconds() {
        let now = Utc::now();
        let at = Instant::now();
        let renew = |secs: i64| renew_at(now, now + chrono::TimeDelta::seconds(secs), at) - at;
        assert_eq!(renew(3), Duration::from_millis(2700));
        assert_eq!(renew(3600), Duration::from_secs(3590));
        assert_eq!(renew(-5), Duration::ZERO);
    }

    #[cfg(unix)]
    mod plugins {
        use super::super::*;
        use std::os::unix::fs::PermissionsExt;
        use std::sync::Arc;

        /// A kubeconfig user.exec running `script` (a shell script written
        /// to a scratch folder); returns the plugin and the folder.
        fn plugin(name: &str, script: &str) -> (ExecPlugin, PathBuf) {
            let dir = std::env::temp_dir().join(format!(
                "portcullis-credentials-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("plugin.sh");
            std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            let exec: kube::config::ExecConfig = serde_json::from_value(json!({
                "apiVersion": API_V1,
                "command": path,
                "env": [{"name": "DIR", "value": dir}],
            }))
            .unwrap();
            (ExecPlugin::from_config(&exec, None).unwrap(), dir)
        }

        const CREDENTIAL: &str = r#"printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$TOKEN""#;

        fn runs(dir: &std::path::Path) -> usize {
            std::fs::read_to_string(dir.join("runs"))
                .map(|t| t.lines().count())
                .unwrap_or(0)
        }

        #[tokio::test]
        async fn callers_at_once_share_one_run() {
            let (p, dir) = plugin(
                "shared",
                &format!("echo run >> \"$DIR/runs\"; sleep 0.3; TOKEN=t1; {CREDENTIAL}"),
            );
            let source = Arc::new(BearerSource::exec(p));
            let calls = (0..8).map(|_| {
                let s = source.clone();
                tokio::spawn(async move { s.token().await })
            });
            for t in futures::future::join_all(calls).await {
                assert_eq!(t.unwrap().unwrap(), "t1");
            }
            assert_eq!(runs(&dir), 1);
        }

        #[tokio::test]
        async fn a_refused_token_runs_the_plugin_again_once() {
            let (p, dir) = plugin(
                "renew",
                &format!("echo run >> \"$DIR/runs\"; TOKEN=t$(wc -l < \"$DIR/runs\" | tr -d ' '); {CREDENTIAL}"),
            );
            let source = BearerSource::exec(p);
            assert_eq!(source.token().await.unwrap(), "t1");
            assert_eq!(source.token().await.unwrap(), "t1", "kept while fresh");
            assert_eq!(source.renewed("t1").await.unwrap().as_deref(), Some("t2"));
            // A caller that still held t1 gets t2 without another run.
            assert_eq!(source.renewed("t1").await.unwrap().as_deref(), Some("t2"));
            assert_eq!(runs(&dir), 2);
        }

        #[tokio::test]
        async fn a_plugin_that_hangs_is_stopped() {
            let (p, _dir) = plugin("hang", "sleep 30");
            let started = Instant::now();
            let e = BearerSource::exec(p.with_timeout(Duration::from_millis(300)))
                .token()
                .await
                .unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(10));
            assert!(matches!(e, CredentialError::TimedOut { .. }), "{e}");
            assert!(
                e.to_string()
                    .contains("interactive sign-in is not supported"),
                "{e}"
            );
        }

        #[tokio::test]
        async fn a_missing_plugin_shows_its_install_hint() {
            let exec: kube::config::ExecConfig = serde_json::from_value(json!({
                "apiVersion": API_V1BETA1,
                "command": "portcullis-no-such-plugin",
                "installHint": "brew install\n\x1b[31mthe-plugin",
            }))
            .unwrap();
            let e = BearerSource::exec(ExecPlugin::from_config(&exec, None).unwrap())
                .token()
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("`portcullis-no-such-plugin`")
                    && e.contains("was not found: brew install"),
                "{e}"
            );
            assert!(!e.contains('\x1b') && !e.contains('\n'), "{e:?}");
        }

        #[tokio::test]
        async fn a_plugin_sees_the_exec_info_kubectl_gives() {
            let (p, dir) = plugin(
                "info",
                &format!(
                    "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$DIR/info\"; TOKEN=t; {CREDENTIAL}"
                ),
            );
            BearerSource::exec(p).token().await.unwrap();
            let info: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("info")).unwrap()).unwrap();
            assert_eq!(
                info,
                json!({"apiVersion": API_V1, "kind": "ExecCredential", "spec": {"interactive": false}})
            );
        }
    }

    fn kubeconfig(user: &str) -> kube::config::Kubeconfig {
        kube::config::Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nclusters:\n- name: k\n  cluster: {{server: 'https://k.example'}}\nusers:\n- name: u\n  user:\n{user}"
        ))
        .unwrap()
    }

    #[test]
    fn a_kubeconfig_user_signs_in_with_a_token_a_file_or_a_plugin() {
        let kind = |user: &str| {
            format!(
                "{:?}",
                BearerSource::from_kubeconfig(&kubeconfig(user)).unwrap()
            )
        };
        assert!(kind("    token: abc\n").contains("fixed token"));
        assert!(kind("    tokenFile: /var/run/token\n").contains("token file /var/run/token"));
        assert!(kind("    exec: {apiVersion: client.authentication.k8s.io/v1, command: kubectl, args: [oidc-login, get-token]}\n")
            .contains("exec plugin kubectl"));
    }

    #[test]
    fn other_kinds_of_sign_in_say_what_is_supported() {
        for (user, says) in [
            ("    client-certificate-data: Zm9v\n    client-key-data: YmFy\n", "client certificate"),
            ("    auth-provider: {name: oidc, config: {}}\n", "auth-provider oidc"),
            ("    username: admin\n    password: hunter2\n", "username and password"),
            ("    {}\n", "has none"),
            ("    exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: old}\n", "v1alpha1"),
            ("    exec: {apiVersion: client.authentication.k8s.io/v1, command: k, interactiveMode: Always}\n", "interactive sign-in is not supported"),
        ] {
            let e = BearerSource::from_kubeconfig(&kubeconfig(user)).unwrap_err().to_string();
            assert!(e.contains(says), "{user}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
            if !user.contains("exec") {
                assert!(e.contains("tokenFile") && e.contains("exec"), "{e}");
            }
        }
    }
}
