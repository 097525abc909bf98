//! The scriptable verbs (`request`, `approve`, `deny`, `shorten`,
//! `revoke`, `withdraw`, `login`; `get` lives in [`crate::cli::commands::get`]): no
//! prompts, output on stdout, one-line errors. They run directly on a
//! cluster or against the Portcullis server (`--backend URL`) alike,
//! through [`VerbBackend`]. A request is named `NAME` or `CONTEXT/NAME`
//! (see [`crate::cli::reference`]); with several contexts in view, what they
//! print names it `CONTEXT/NAME` too.
//!
//! Each verb's own part is in its module ([`super::request`],
//! [`super::approve`], …); this one has what they share: the backend
//! they run on, which cluster and request a verb names, and the dispatch.

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::backend::http::HttpBackend;
use crate::backend::kube::KubeBackend;
use crate::backend::{AccessBackend, BackendError, BackendEvent, Caller, RequestKey};
use crate::cli::args::Command;
use crate::cli::commands::{approve, deny, login, release, request, revoke, shorten, withdraw};
use crate::cli::reference::{shown, RequestRef};
use crate::domain::{AccessRequest, Subject, ValidationLimits};

/// What the verbs need beyond [`AccessBackend`].
#[async_trait]
pub trait VerbBackend: AccessBackend {
    /// Every request in view.
    async fn list(&self) -> Result<Vec<AccessRequest>, BackendError>;
    /// One request, as stored now; `caller`: the role the reader acts in
    /// (what a refusal tells them they need).
    async fn get(&self, key: &RequestKey, caller: Caller) -> Result<AccessRequest, BackendError>;
    /// Who asks, and whether that was verified (else `--group` applies).
    fn me(&self) -> (Subject, bool);
    /// The limits a new request for `cluster` is checked against.
    async fn limits(&self, cluster: &str) -> ValidationLimits;
    /// Credentials mode Token: a kubeconfig for the grant.
    async fn login(&self, req: &AccessRequest) -> Result<String, BackendError>;
    /// The requests, live (`get -w`): a full snapshot, then each change.
    fn watch_requests(&self) -> mpsc::UnboundedReceiver<BackendEvent> {
        self.watch()
    }
}

#[async_trait]
impl VerbBackend for KubeBackend {
    async fn list(&self) -> Result<Vec<AccessRequest>, BackendError> {
        KubeBackend::list(self).await
    }
    async fn get(&self, key: &RequestKey, caller: Caller) -> Result<AccessRequest, BackendError> {
        KubeBackend::get(self, key, caller).await.map(|(r, _)| r)
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
    fn watch_requests(&self) -> mpsc::UnboundedReceiver<BackendEvent> {
        KubeBackend::watch_requests(self)
    }
}

#[async_trait]
impl VerbBackend for HttpBackend {
    async fn list(&self) -> Result<Vec<AccessRequest>, BackendError> {
        HttpBackend::list(self).await
    }
    async fn get(&self, key: &RequestKey, _caller: Caller) -> Result<AccessRequest, BackendError> {
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
        self.credentials(&RequestKey {
            cluster: req.cluster.clone(),
            name: req.name.clone(),
        })
        .await
    }
}

/// The NAME a verb acts on (also `request --extend NAME`), as given.
fn named(command: &Command) -> Option<&str> {
    match command {
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
    }
}

/// The context a verb's `CONTEXT/NAME` names, if it does: direct mode
/// connects to it when no `--context` is given.
pub(crate) fn named_context(command: &Command) -> Option<String> {
    let mut contexts: Vec<String> = match command {
        Command::Get { names, .. } => names
            .iter()
            .filter_map(|n| RequestRef::parse(n).context)
            .collect(),
        other => named(other)
            .and_then(|n| RequestRef::parse(n).context)
            .into_iter()
            .collect(),
    };
    contexts.dedup();
    match contexts.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// Which cluster a verb acts on: the one its `CONTEXT/NAME` or the
/// `--context` names, else the only one in view, else (for an existing
/// request) the one context in view that has that name.
async fn pick_cluster(
    backend: &dyn VerbBackend,
    view: &[String],
    named: Option<&RequestRef>,
) -> Result<String, BackendError> {
    if let Some(c) = named.and_then(|n| n.context.as_ref()) {
        if !view.contains(c) {
            return Err(BackendError::Config(format!(
                "{c}/{}: context {c} is not in view (in view: {})",
                named.map(|n| n.name.as_str()).unwrap_or_default(),
                view.join(", ")
            )));
        }
        return Ok(c.clone());
    }
    if let [one] = view {
        return Ok(one.clone());
    }
    if let Some(n) = named {
        let listed = backend.list().await?;
        let found: Vec<String> = listed
            .into_iter()
            .filter(|r| r.name == n.name && view.contains(&r.cluster))
            .map(|r| r.cluster)
            .collect();
        return match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(crate::cli::commands::get::not_found(n, view)),
            many => Err(BackendError::Config(format!(
                "{} is in {} contexts: name one as {}",
                n.name,
                many.len(),
                many.iter()
                    .map(|c| format!("{c}/{}", n.name))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))),
        };
    }
    Err(BackendError::Config(format!(
        "name the cluster with --context (one of: {})",
        view.join(", ")
    )))
}

/// The contexts a verb sees: those given with `--context` (the server's
/// clusters with `--backend`), else every one the backend has.
pub(crate) fn view(backend: &dyn AccessBackend, contexts: &[String]) -> Vec<String> {
    if contexts.is_empty() {
        backend.info().clusters
    } else {
        contexts.to_vec()
    }
}

/// The role a verb acts in.
fn caller_of(command: &Command) -> Caller {
    match command {
        Command::Approve { .. }
        | Command::Deny { .. }
        | Command::Shorten { .. }
        | Command::Revoke { .. } => Caller::Approver,
        Command::Get { .. } => Caller::Viewer,
        _ => Caller::Requester,
    }
}

/// What a verb prints on stdout, and (`request --wait` not approved) the
/// exit it ends with.
#[derive(Debug)]
pub(crate) struct Printed {
    pub stdout: String,
    pub exit: Option<crate::cli::wait::Exit>,
}

/// Runs one verb; returns what to print. `contexts`: the `--context`
/// values as given (empty: every context the backend has); `progress`:
/// where a long verb (`request --wait`) says what it is doing (stderr).
pub(crate) async fn run(
    command: &Command,
    backend: &dyn VerbBackend,
    contexts: &[String],
    config_groups: &[String],
    progress: &mut (dyn std::io::Write + Send),
) -> Result<Printed, BackendError> {
    let mut exit = None;
    let stdout = run_verb(
        command,
        backend,
        contexts,
        config_groups,
        progress,
        &mut exit,
    )
    .await?;
    Ok(Printed { stdout, exit })
}

/// What a verb acts with: the backend, the cluster it acts on, who asks,
/// and how it names requests.
pub(crate) struct Verb<'a> {
    pub(crate) backend: &'a dyn VerbBackend,
    /// The cluster the verb acts on.
    pub(crate) cluster: String,
    /// Who asks ([`VerbBackend::me`]).
    pub(crate) me: Subject,
    /// Whether `me` was verified (else `--group` applies).
    pub(crate) verified: bool,
    /// Whether what the verb prints names the cluster (`CONTEXT/NAME`).
    multi: bool,
    /// The role the verb acts in.
    caller: Caller,
}

impl<'a> Verb<'a> {
    /// Where `command` acts: the cluster picked from the contexts in view.
    async fn new(
        command: &Command,
        backend: &'a dyn VerbBackend,
        contexts: &[String],
    ) -> Result<Self, BackendError> {
        let view = view(backend, contexts);
        let caller = caller_of(command);
        let target = named(command).map(RequestRef::parse);
        // Named as CONTEXT/NAME, or several contexts in view: what the verb
        // prints says which cluster it acted on.
        let multi = view.len() > 1 || target.as_ref().is_some_and(|t| t.context.is_some());
        let cluster = pick_cluster(backend, &view, target.as_ref()).await?;
        let (me, verified) = backend.me();
        Ok(Verb {
            backend,
            cluster,
            me,
            verified,
            multi,
            caller,
        })
    }

    /// `name` as the verb prints it: `CONTEXT/NAME` when it names the
    /// cluster.
    pub(crate) fn show(&self, name: &str) -> String {
        shown(&self.cluster, name, self.multi)
    }

    /// NAME, CONTEXT/NAME or accessrequest.portcullis.dev/NAME: the name.
    pub(crate) fn key(&self, name: &str) -> RequestKey {
        RequestKey {
            cluster: self.cluster.clone(),
            name: RequestRef::parse(name).name,
        }
    }

    /// The request `name`, as stored now, read in the verb's role.
    pub(crate) async fn get(&self, name: &str) -> Result<AccessRequest, BackendError> {
        self.backend.get(&self.key(name), self.caller).await
    }
}

/// Runs one verb (each in its own module); returns what to print.
async fn run_verb(
    command: &Command,
    backend: &dyn VerbBackend,
    contexts: &[String],
    config_groups: &[String],
    progress: &mut (dyn std::io::Write + Send),
    exit: &mut Option<crate::cli::wait::Exit>,
) -> Result<String, BackendError> {
    let verb = Verb::new(command, backend, contexts).await?;
    match command {
        Command::Request { .. } => {
            request::run(&verb, command, config_groups, progress, exit).await
        }
        Command::Approve {
            name,
            duration,
            namespaces,
            reason,
        } => approve::run(&verb, name, *duration, namespaces, reason).await,
        Command::Deny { name, reason } => deny::run(&verb, name, reason).await,
        Command::Shorten { name, to } => shorten::run(&verb, name, *to).await,
        Command::Revoke { name, reason } => revoke::run(&verb, name, reason).await,
        Command::Withdraw { name } => withdraw::run(&verb, name).await,
        Command::Release { name } => release::run(&verb, name).await,
        Command::Login { name } => login::run(&verb, name).await,
        Command::Diff { name, output } => {
            let req = verb.get(name).await?;
            let report = crate::cli::commands::diff::report(backend, &req).await?;
            crate::cli::commands::diff::render(&report, *output)
        }
        other => Err(not_a_verb(other)),
    }
}

/// The refusal of a command that is not a request verb.
pub(crate) fn not_a_verb(command: &Command) -> BackendError {
    BackendError::Invalid(format!("{command:?} is not a request verb"))
}

/// One verb (`get` included), connected as the flags say: on the contexts
/// asked for, or on the server (`--backend URL`).
pub(crate) async fn connect_and_run(
    cli: &crate::cli::args::Cli,
    verb: &Command,
    groups: &[String],
) -> anyhow::Result<()> {
    use anyhow::bail;
    // `approve prod/NAME` acts on prod even without --context.
    let contexts = if cli.contexts.is_empty() && !cli.all_contexts {
        named_context(verb).into_iter().collect()
    } else {
        cli.contexts.clone()
    };
    if let Some(url) = &cli.backend {
        let http = crate::cli::connect::server(cli, url).await?;
        let served = http.info().clusters;
        if let Some(c) = contexts.iter().find(|c| !served.contains(c)) {
            bail!(
                "the server has no cluster {c} (it serves: {})",
                served.join(", ")
            );
        }
        return on(verb, &http, &contexts, groups, Vec::new()).await;
    }
    let kube = KubeBackend::connect(&contexts, cli.all_contexts).await?;
    // A context asked for by name that cannot be reached fails the
    // verb; with --all-contexts it is said and skipped.
    let failed: Vec<String> = kube
        .failed()
        .iter()
        .map(|(c, e)| format!("cluster {c} is unreachable: {e}"))
        .collect();
    if !cli.all_contexts && !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    on(verb, &kube, &contexts, groups, failed).await
}

/// One verb on a connected backend; `failed`: contexts skipped (said on
/// stderr, and `get` then exits 1 after printing what it has).
async fn on(
    verb: &Command,
    backend: &dyn VerbBackend,
    contexts: &[String],
    groups: &[String],
    failed: Vec<String>,
) -> anyhow::Result<()> {
    use anyhow::bail;
    use std::io::Write;
    for f in &failed {
        eprintln!("portcullis: {}", crate::domain::sanitize::inert(f, 2000));
    }
    let Command::Get {
        watch,
        watch_only,
        output_watch_events,
        ..
    } = verb
    else {
        let out = run(verb, backend, contexts, groups, &mut std::io::stderr()).await?;
        print!("{}", out.stdout);
        if let Some(exit) = out.exit {
            return Err(exit.into());
        }
        return Ok(());
    };
    let view = view(backend, contexts);
    let query = crate::cli::commands::get::Query::new(verb, view)?;
    if *watch || *watch_only {
        let options = crate::cli::commands::get::watch::WatchOptions {
            only: *watch_only,
            events: *output_watch_events,
        };
        crate::cli::commands::get::watch::watch(
            backend,
            &query,
            options,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )
        .await?;
        return Ok(());
    }
    let listing = crate::cli::commands::get::list(backend, &query).await?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(listing.stdout.as_bytes())?;
    stdout.flush()?;
    if let Some(note) = listing.note {
        eprintln!("{note}");
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}
