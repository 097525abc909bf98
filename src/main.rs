//! The `portcullis` binary: flags, logging, terminal set-up and restore.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::CommandFactory;
use portcullis::backend::demo::{DemoBackend, DemoConfig};
use portcullis::backend::http::credentials::BearerSource;
use portcullis::backend::kube::KubeBackend;
use portcullis::backend::AccessBackend;
use portcullis::cli::args::{Cli, ColorMode, Command};
use portcullis::cli::config::{self, ConfigFile};
use portcullis::console::state::AppState;
use portcullis::console::view::Theme;

/// mimalloc: its size-segregated pages go back to the system once their
/// objects are freed, so a console that stored a large first sync (and
/// kept most of it compact) does not stay at the sync's peak
/// ([`portcullis::backend::batch::return_freed_memory`]).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let started = Instant::now();
    // `portcullis get requests | head` ends quietly when head has enough,
    // as other command-line tools do (Rust ignores SIGPIPE by default).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal at start-up,
    // before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // One TLS crypto provider for every client and server in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // As `kubectl-portcullis` (the kubectl plugin) help and usage say
    // `kubectl portcullis`.
    let cli = portcullis::cli::invocation::parse(std::env::args_os());
    let verbose = cli.verbose > 0 || debug_logging();
    match real_main(cli, started) {
        Ok(()) => ExitCode::SUCCESS,
        // `request --wait` not approved: its outcome is printed; its code.
        Err(e) if e.downcast_ref::<portcullis::cli::wait::Exit>().is_some() => {
            let exit = e.downcast_ref::<portcullis::cli::wait::Exit>();
            let code = exit.map_or(1, |x| x.code);
            if let Some(m) = exit.and_then(|x| x.message.as_deref()) {
                eprintln!(
                    "portcullis: {}",
                    portcullis::domain::sanitize::inert(m, 2000)
                );
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
            ExitCode::from(code)
        }
        Err(e) => {
            // One line, after the terminal is restored.
            // Errors may quote what a requester wrote (a role name, a
            // reason): made inert like everything else that reaches a terminal.
            // A cause already said by the error before it is said once.
            let mut chain: Vec<String> = Vec::new();
            for c in e.chain().map(|c| c.to_string()) {
                if !chain.last().is_some_and(|last| last.ends_with(&c)) {
                    chain.push(c);
                }
            }
            eprintln!(
                "portcullis: {}",
                portcullis::domain::sanitize::inert(&chain.join(": "), 2000)
            );
            // The full text behind the summary, only when asked for.
            if let Some(portcullis::backend::BackendError::Escalation { details, .. }) =
                e.downcast_ref::<portcullis::backend::BackendError>()
            {
                tracing::debug!(?details, "the apiserver's escalation refusal");
                if verbose {
                    for d in details {
                        eprintln!("  {}", portcullis::domain::sanitize::inert(d, 2000));
                    }
                }
            }
            ExitCode::from(1)
        }
    }
}

/// PORTCULLIS_LOG asks for debug (or trace) output.
fn debug_logging() -> bool {
    std::env::var("PORTCULLIS_LOG")
        .map(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("debug") || v.contains("trace")
        })
        .unwrap_or(false)
}

/// Logs go to a file, never to the screen the console draws on.
fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = config::state_dir()?;
    std::fs::create_dir_all(&dir).ok()?;
    let file = tracing_appender::rolling::never(&dir, "portcullis.log");
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

fn init_stderr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}

fn pick_theme(cli: &Cli, file: &ConfigFile) -> anyhow::Result<Theme> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mono = match cli.color {
        ColorMode::Never => true,
        ColorMode::Always => false,
        ColorMode::Auto => no_color,
    };
    // crossterm honours NO_COLOR by itself; --color always means colour.
    if cli.color == ColorMode::Always {
        crossterm::style::force_color_output(true);
    }
    if mono {
        return Ok(Theme::mono());
    }
    let name = cli
        .theme
        .as_deref()
        .or(file.theme.as_deref())
        .unwrap_or("default");
    let user_dir = config::config_dir().map(|d| d.join("themes"));
    Ok(Theme::load(name, user_dir.as_deref())?)
}

/// Restores the terminal when dropped: on quit, on error and on unwinding.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn real_main(cli: Cli, started: Instant) -> anyhow::Result<()> {
    if let Some(Command::Man { out_dir }) = &cli.command {
        use std::io::Write;
        return match out_dir {
            Some(dir) => portcullis::cli::invocation::man_pages_to(dir)
                .with_context(|| format!("cannot write man pages to {}", dir.display())),
            None => Ok(std::io::stdout().write_all(&portcullis::cli::invocation::man_page()?)?),
        };
    }
    if let Some(Command::Completions { shell }) = &cli.command {
        clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "portcullis",
            &mut std::io::stdout(),
        );
        return Ok(());
    }
    if let Some(Command::Version { client, output }) = &cli.command {
        return version(&cli, *client, *output);
    }
    if let Some(Command::Serve { demo, listen, .. }) = &cli.command {
        // `--config` is the server's file here, not the console's.
        let (demo, listen) = (*demo, *listen);
        let _log_guard = init_logging();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        return runtime.block_on(async move { serve(&cli, demo, listen).await });
    }
    let config_path = cli
        .config
        .clone()
        .or_else(|| config::config_dir().map(|d| d.join("config.toml")));
    let file = match &config_path {
        Some(p) => ConfigFile::load(p)?,
        None => ConfigFile::default(),
    };
    let origin = config_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let app_config = file.app_config(&origin, cli.readonly)?;
    let theme = pick_theme(&cli, &file)?;
    // The reaper is a service: its log goes to stderr (the pod's log);
    // everything else logs to a file, never to the console's screen.
    let _log_guard = if matches!(cli.command, Some(Command::Reaper { .. })) {
        init_stderr_logging();
        None
    } else {
        init_logging()
    };

    let groups = file.groups.clone().unwrap_or_default();
    // A policy the console evaluates itself: advisory (the server enforces).
    let policy = match &cli.policy {
        Some(dir) => Some(Arc::new(portcullis::policy::Policy::load(dir)?)),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match &cli.command {
        Some(Command::Completions { .. } | Command::Man { .. }) => unreachable!("handled above"),
        Some(Command::Policy { action }) => policy_verb(action),
        Some(Command::Audit { action }) => runtime.block_on(audit_verb(&cli, action)),
        Some(Command::Crds {
            webhook,
            admission_policy,
            privileged,
            server_image,
            server_config,
            server_kubeconfig,
            grantable,
            approvers,
            requesters,
            reaper_deployment,
        }) => {
            let out = crds(
                &cli,
                webhook.as_deref(),
                server_image
                    .as_deref()
                    .zip(server_config.as_deref())
                    .map(|(i, c)| (i, c, server_kubeconfig.as_deref())),
                grantable,
                approvers,
                requesters,
                reaper_deployment.as_deref(),
            )?;
            print!("{out}");
            if *admission_policy {
                use portcullis::crd::admission_policy;
                let privileged: Vec<String> = if privileged.iter().all(|p| p.trim().is_empty()) {
                    admission_policy::DEFAULT_PRIVILEGED.iter().map(|p| p.to_string()).collect()
                } else {
                    privileged.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
                };
                print!("---\n{}", admission_policy::manifests(&privileged));
            }
            Ok(())
        }
        Some(Command::Serve { .. }) => unreachable!("handled above"),
        Some(Command::Demo { seed, rate }) => {
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(1)
            });
            let rate = *rate;
            runtime.block_on(async move {
                let demo = Arc::new(DemoBackend::live(DemoConfig {
                    seed,
                    rate,
                    ..Default::default()
                }));
                let _simulator = demo.spawn_simulator();
                tracing::info!(seed, ?rate, "starting the demo");
                console(demo, app_config, &theme, started, policy, None).await
            })
        }
        None => runtime.block_on(async move {
            if let Some(url) = &cli.backend {
                let http = connect_server(&cli, url).await?;
                return console(Arc::new(http), app_config, &theme, started, policy, None).await;
            }
            let kube =
                KubeBackend::connect_named(&cli.contexts, cli.all_contexts, &file.cluster_names)
                    .await?;
            // No --policy: the cluster's own (advisory), if it has one.
            // One that does not load is said on the message line; the
            // console runs without it (it is advisory).
            let mut notice = None;
            let policy = match (policy, kube.clusters().first()) {
                (Some(p), _) => Some(p),
                (None, Some(c)) => {
                    match portcullis::backend::kube::policy_source::policy_of(c).await {
                        Ok(p) => p.map(Arc::new),
                        Err(e) => {
                            notice = Some(format!(
                                "the cluster's policy did not load, no verdicts are shown: {e}"
                            ));
                            None
                        }
                    }
                }
                (None, None) => None,
            };
            console(Arc::new(kube), app_config, &theme, started, policy, notice).await
        }),
        Some(Command::Reaper {
            listen,
            audit_log,
            audit_key,
        }) => runtime.block_on(async move {
            use portcullis::backend::kube::reaper::{self, audit_trail, metrics as reaper_metrics};
            let kube = KubeBackend::connect(&cli.contexts, cli.all_contexts).await?;
            let trail = match audit_log {
                Some(path) => {
                    let mut config = portcullis::audit::log::LogConfig::new(path);
                    if let Some(k) = audit_key {
                        config.key = Some(portcullis::audit::log::read_key(k)?);
                    }
                    Some(Arc::new(portcullis::audit::log::AuditLog::open(config)?))
                }
                None => None,
            };
            let metrics = Arc::new(reaper_metrics::ReaperMetrics::default());
            let mut tasks = Vec::new();
            for c in kube.clusters() {
                let missing = reaper::missing_rights(c).await;
                if !missing.is_empty() {
                    bail!(
                        "{} ({}) may not reap on {}: missing {}; bind the portcullis-reaper role",
                        c.user(),
                        c.identity.verified_by,
                        c.context,
                        missing.join(", ")
                    );
                }
                let provision_tokens = reaper::may_provision_tokens(c).await;
                if !provision_tokens {
                    eprintln!(
                        "portcullis reaper: {}: may not mint tokens in portcullis-system, so Token-mode grants get no credentials and requesters cannot release grants (bind portcullis-reaper-tokens there)",
                        c.context
                    );
                }
                let config = reaper::ReaperConfig {
                    provision_tokens,
                    metrics: Some(metrics.clone()),
                    ..Default::default()
                };
                tasks.push(tokio::spawn(reaper::run(c.clone(), config, None)));
                if let Some(log) = &trail {
                    tasks.push(tokio::spawn(audit_trail::follow(c.clone(), log.clone(), "reaper")));
                }
            }
            if let Some(log) = trail.clone() {
                // The head is signed every few seconds while records come in.
                tasks.push(tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(portcullis::server::SIGN_EVERY).await;
                        if let Err(e) = log.sign(chrono::Utc::now()) {
                            eprintln!("portcullis reaper: {e}");
                        }
                    }
                }));
            }
            let (addr, _http) =
                reaper_metrics::serve(*listen, metrics.clone(), kube.clusters().len())
                    .await
                    .with_context(|| format!("cannot listen on {listen} for /healthz and /metrics"))?;
            eprintln!(
                "portcullis reaper: watching {} context(s); /healthz and /metrics on http://{addr}; ctrl-c or SIGTERM to stop",
                kube.clusters().len()
            );
            tokio::select! {
                _ = futures::future::join_all(tasks) => {}
                _ = tokio::signal::ctrl_c() => {}
                _ = portcullis::console::run::terminate_signal() => {}
            }
            if let Some(log) = &trail {
                log.sign(chrono::Utc::now())?;
            }
            Ok(())
        }),
        Some(Command::Version { .. }) => unreachable!("handled above"),
        Some(verb) => runtime.block_on(async {
            // `approve prod/NAME` acts on prod even without --context.
            let contexts = if cli.contexts.is_empty() && !cli.all_contexts {
                portcullis::cli::commands::verbs::named_context(verb).into_iter().collect()
            } else {
                cli.contexts.clone()
            };
            if let Some(url) = &cli.backend {
                let http = connect_server(&cli, url).await?;
                let served = http.info().clusters;
                if let Some(c) = contexts.iter().find(|c| !served.contains(c)) {
                    bail!(
                        "the server has no cluster {c} (it serves: {})",
                        served.join(", ")
                    );
                }
                return verb_on(verb, &http, &contexts, &groups, Vec::new()).await;
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
            verb_on(verb, &kube, &contexts, &groups, failed).await
        }),
    }
}

/// One verb on a connected backend; `failed`: contexts skipped (said on
/// stderr, and `get` then exits 1 after printing what it has).
async fn verb_on(
    verb: &Command,
    backend: &dyn portcullis::cli::commands::verbs::VerbBackend,
    contexts: &[String],
    groups: &[String],
    failed: Vec<String>,
) -> anyhow::Result<()> {
    use std::io::Write;
    for f in &failed {
        eprintln!(
            "portcullis: {}",
            portcullis::domain::sanitize::inert(f, 2000)
        );
    }
    let Command::Get {
        watch,
        watch_only,
        output_watch_events,
        ..
    } = verb
    else {
        let out = portcullis::cli::commands::verbs::run(
            verb,
            backend,
            contexts,
            groups,
            &mut std::io::stderr(),
        )
        .await?;
        print!("{}", out.stdout);
        if let Some(exit) = out.exit {
            return Err(exit.into());
        }
        return Ok(());
    };
    let view = portcullis::cli::commands::verbs::view(backend, contexts);
    let query = portcullis::cli::commands::get::Query::new(verb, view)?;
    if *watch || *watch_only {
        let options = portcullis::cli::commands::get::watch::WatchOptions {
            only: *watch_only,
            events: *output_watch_events,
        };
        portcullis::cli::commands::get::watch::watch(
            backend,
            &query,
            options,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )
        .await?;
        return Ok(());
    }
    let listing = portcullis::cli::commands::get::list(backend, &query).await?;
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

/// `portcullis version [--client] [-o json|yaml]`: this build, and
/// (without --client) each cluster's apiserver or the Portcullis server.
fn version(
    cli: &Cli,
    client_only: bool,
    output: Option<portcullis::cli::args::VersionOutput>,
) -> anyhow::Result<()> {
    use portcullis::cli::args::VersionOutput;
    use portcullis::version;
    let mut doc = serde_json::json!({ "clientVersion": version::client_json() });
    let mut text = version::client_text();
    let mut failure = None;
    if !client_only {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let servers = runtime.block_on(async {
            if let Some(url) = &cli.backend {
                let http = connect_server(cli, url).await?;
                let v = http
                    .whoami()
                    .server_version
                    .clone()
                    .unwrap_or_else(|| "unknown (an older server)".into());
                return anyhow::Ok(vec![("server".to_string(), url.clone(), v)]);
            }
            let kube = KubeBackend::connect(&cli.contexts, cli.all_contexts).await?;
            let mut out = Vec::new();
            for c in kube.clusters() {
                let v = c
                    .client
                    .apiserver_version()
                    .await
                    .map(|i| i.git_version)
                    .with_context(|| {
                        format!("{}: cannot read the apiserver's version", c.context)
                    })?;
                out.push(("kubernetes".to_string(), c.context.clone(), v));
            }
            Ok(out)
        });
        match servers {
            Ok(servers) => {
                let mut list = Vec::new();
                for (kind, name, v) in servers {
                    let name = portcullis::domain::sanitize::inert(&name, 200).into_owned();
                    let v = portcullis::domain::sanitize::inert(&v, 200).into_owned();
                    if kind == "server" {
                        text.push_str(&format!("Portcullis Server Version ({name}): {v}\n"));
                    } else {
                        text.push_str(&format!("Server Version ({name}): {v}\n"));
                    }
                    list.push(serde_json::json!({"kind": kind, "name": name, "version": v}));
                }
                doc["serverVersions"] = serde_json::Value::Array(list);
            }
            Err(e) => failure = Some(e),
        }
    }
    match output {
        Some(VersionOutput::Json) => println!("{}", serde_json::to_string_pretty(&doc)?),
        Some(VersionOutput::Yaml) => print!("{}", serde_yaml_ng::to_string(&doc)?),
        None => print!("{text}"),
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `portcullis crds [...]`: every manifest asked for, one YAML stream.
fn crds(
    cli: &Cli,
    webhook: Option<&str>,
    server: Option<(&str, &std::path::Path, Option<&std::path::Path>)>,
    grantable: &[String],
    approvers: &[String],
    requesters: &[String],
    reaper_deployment: Option<&str>,
) -> anyhow::Result<String> {
    use portcullis::crd::manifests::{self, Holder};
    use portcullis::domain::grantable::Grantable;
    let holders = |list: &[String], flag: &str| -> anyhow::Result<Vec<Holder>> {
        list.iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| Holder::parse(t).map_err(|e| anyhow::anyhow!("--{flag}: {e}")))
            .collect()
    };
    let approvers = holders(approvers, "approvers")?;
    let requesters = holders(requesters, "requesters")?;
    let roles: Vec<Grantable> = grantable
        .iter()
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let g = Grantable::parse(t.trim()).map_err(|e| anyhow::anyhow!("--grantable: {e}"))?;
            manifests::check_grantable(&g).map_err(|e| anyhow::anyhow!("--grantable: {e}"))?;
            Ok(g)
        })
        .collect::<anyhow::Result<_>>()?;
    let server_image = server.map(|(image, _, _)| image);
    if !roles.is_empty() && approvers.is_empty() && server_image.is_none() {
        bail!("--grantable needs --approvers (who gets the bind rights), e.g. --approvers group:oncall");
    }
    let mut out = if roles.is_empty() {
        manifests::all()
    } else {
        manifests::all_granting(&roles)
    };
    out.push_str(&manifests::holders(&requesters, &approvers));
    out.push_str(&manifests::grantable(
        &roles,
        &approvers,
        server_image.is_some(),
    ));
    if let Some((image, config, kubeconfig)) = server {
        let bundle = portcullis::server::install::bundle(config, kubeconfig)?;
        out.push_str("---\n");
        out.push_str(&manifests::server(image));
        out.push_str("---\n");
        out.push_str(&portcullis::server::install::manifests(&bundle));
    }
    if let Some(image) = reaper_deployment {
        out.push_str(&manifests::reaper_deployment(image));
    }
    if let Some(url) = webhook {
        let Some(ca) = &cli.ca_file else {
            bail!("--webhook needs --ca-file: the CA that signed the server's certificate");
        };
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        out.push_str("---\n");
        out.push_str(&portcullis::server::webhook::configuration(url, &pem));
    }
    Ok(out)
}

/// `portcullis policy check|eval|test DIR`.
async fn audit_verb(cli: &Cli, action: &portcullis::cli::args::AuditAction) -> anyhow::Result<()> {
    use portcullis::audit::{chain, files, query};
    use portcullis::cli::args::{AuditAction, AuditOutput};
    match action {
        AuditAction::Keygen { out } => {
            let (secret, public) = files::keygen(out)?;
            println!(
                "wrote {} (secret: the server's or reaper's `audit.key`) and {} (give it to auditors: `portcullis audit verify LOG --key {}`)",
                secret.display(),
                public.display(),
                public.display()
            );
            Ok(())
        }
        AuditAction::Verify { files: given, key } => {
            let key = match key {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .with_context(|| format!("cannot read {}", p.display()))?;
                    Some(chain::parse_public(&text).with_context(|| format!("{}", p.display()))?)
                }
                None => None,
            };
            match files::verify(given, key.as_ref()) {
                Ok(report) => {
                    for line in report.lines {
                        println!("{line}");
                    }
                    Ok(())
                }
                Err(why) => bail!("NOT intact: {why}"),
            }
        }
        AuditAction::Show {
            file,
            request,
            user,
            since,
            output,
        } => {
            let filter = query::Filter {
                request: request.clone(),
                user: user.clone(),
                since: since.map(|d| {
                    chrono::Utc::now()
                        - chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
                }),
            };
            let records = match (file, &cli.backend) {
                (Some(f), _) => files::read(std::slice::from_ref(f)).map_err(anyhow::Error::msg)?,
                (None, Some(url)) => {
                    let server = connect_server(cli, url).await?;
                    let mut q = Vec::new();
                    if let Some(r) = &filter.request {
                        q.push(("request", r.clone()));
                    }
                    if let Some(u) = &filter.user {
                        q.push(("user", u.clone()));
                    }
                    if let Some(t) = filter.since {
                        q.push(("since", t.to_rfc3339()));
                    }
                    server.audit(&q).await?
                }
                (None, None) => {
                    bail!("give --file LOG (the server's or reaper's audit log) or --backend URL")
                }
            };
            let chosen: Vec<_> = records
                .into_iter()
                .filter(|s| filter.matches(&s.event))
                .collect();
            match output {
                AuditOutput::Table => print!("{}", query::table(&chosen)),
                AuditOutput::Json => {
                    for s in &chosen {
                        println!("{}", chain::line(s));
                    }
                }
            }
            Ok(())
        }
    }
}

fn policy_verb(action: &portcullis::cli::args::PolicyAction) -> anyhow::Result<()> {
    use portcullis::cli::args::PolicyAction;
    use portcullis::policy::Policy;
    match action {
        PolicyAction::Check { dir } => {
            let p = Policy::load(dir)?;
            println!(
                "{}: {} file(s) load and compile; {} test rule(s)",
                dir.display(),
                p.files.len(),
                p.tests.len()
            );
            Ok(())
        }
        PolicyAction::Eval { dir, input } => {
            let p = Policy::load(dir)?;
            let text = std::fs::read_to_string(input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let value: serde_json::Value = serde_yaml_ng::from_str(&text)
                .with_context(|| format!("{} is not JSON or YAML", input.display()))?;
            let decision = p.evaluate(&value)?;
            println!("{}", serde_json::to_string_pretty(&decision)?);
            Ok(())
        }
        PolicyAction::Test { dir } => {
            let p = Policy::load(dir)?;
            let outcomes = p.run_tests();
            let failed = outcomes.iter().filter(|t| t.outcome.is_err()).count();
            for t in &outcomes {
                match &t.outcome {
                    Ok(()) => println!("PASS {}", t.name),
                    Err(why) => println!("FAIL {} ({}): {why}", t.name, t.file.display()),
                }
            }
            println!("{} passed, {failed} failed", outcomes.len() - failed);
            if failed > 0 {
                bail!("{failed} policy test(s) failed");
            }
            Ok(())
        }
    }
}

/// The credentials for the server: --token-file, else $PORTCULLIS_TOKEN,
/// else how the current kubeconfig context's user signs in (`token`,
/// `tokenFile` or an `exec` plugin; `$KUBECONFIG` as kubectl reads it).
fn server_credentials(cli: &Cli) -> anyhow::Result<BearerSource> {
    if let Some(file) = &cli.token_file {
        let t = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the token file {}", file.display()))?;
        return Ok(BearerSource::fixed(t));
    }
    if let Some(t) = std::env::var("PORTCULLIS_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Ok(BearerSource::fixed(t));
    }
    let kubeconfig = kube::config::Kubeconfig::read().map_err(|e| {
        anyhow::anyhow!("no token for the server: pass --token-file or set PORTCULLIS_TOKEN ({e})")
    })?;
    Ok(BearerSource::from_kubeconfig(&kubeconfig)?)
}

async fn connect_server(
    cli: &Cli,
    url: &str,
) -> anyhow::Result<portcullis::backend::http::HttpBackend> {
    let credentials = server_credentials(cli)?;
    let ca = match &cli.ca_file {
        Some(f) => Some(std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?),
        None => None,
    };
    Ok(portcullis::backend::http::HttpBackend::connect(url, credentials, ca.as_deref()).await?)
}

/// `portcullis serve`: until ctrl-c or SIGTERM.
async fn serve(cli: &Cli, demo: bool, listen: Option<std::net::SocketAddr>) -> anyhow::Result<()> {
    use portcullis::server::authority::{Authority, DemoAuthority, KubeAuthority};
    use portcullis::server::{config::ServerConfig, webhook::Webhook, Server};
    let mut policy_dir = cli.policy.clone();
    let mut labels = std::collections::BTreeMap::new();
    let mut audit = portcullis::server::config::AuditFile::default();
    let (authority, access, listen, tls, webhook): (Arc<dyn Authority>, _, _, _, _) = if demo {
        let listen = listen.unwrap_or_else(|| {
            portcullis::server::config::DEFAULT_LISTEN
                .parse()
                .expect("a valid default address")
        });
        if !listen.ip().is_loopback() {
            bail!("--demo serves on loopback only (its tokens are people's names)");
        }
        // The demo's clusters, as a policy sees them.
        for c in portcullis::backend::demo::org::CLUSTERS {
            let env = c.split('-').next().unwrap_or_default();
            labels.insert(
                c.to_string(),
                std::collections::BTreeMap::from([("env".to_string(), env.to_string())]),
            );
        }
        let world = Arc::new(DemoBackend::live(DemoConfig::default()));
        let authority = DemoAuthority::new(world);
        let access = authority.access().clone();
        (Arc::new(authority), access, listen, None, None)
    } else {
        let Some(path) = &cli.config else {
            bail!("portcullis serve needs --config FILE (see README \"The server\"), or --demo");
        };
        let config = ServerConfig::load(path)?;
        if config.policy.is_some() {
            policy_dir = config.policy.clone();
        }
        audit = config.audit.clone();
        labels = config
            .clusters
            .iter()
            .map(|c| (c.name.clone(), c.labels.clone()))
            .collect();
        let authority = KubeAuthority::connect(&config).await?;
        let access = authority.access().clone();
        let webhook = config.webhook.then(|| Webhook {
            privileged: config.privileged.clone(),
        });
        let tls = config.tls.clone();
        (
            Arc::new(authority),
            access,
            listen.unwrap_or(config.listen),
            tls,
            webhook,
        )
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let policy = match &policy_dir {
        Some(dir) => {
            let store = portcullis::policy::PolicyStore::open(dir)?;
            let _watch = store.watch();
            Some(store)
        }
        None => None,
    };
    if let Some(Command::Serve {
        audit_log,
        audit_key,
        ..
    }) = &cli.command
    {
        audit.log = audit_log.clone().or(audit.log);
        audit.key = audit_key.clone().or(audit.key);
    }
    let mut log_config = portcullis::audit::log::LogConfig::memory();
    log_config.path = audit.log.clone();
    log_config.stdout = audit.stdout.unwrap_or(!demo) && audit.log.is_some();
    if let Some(mb) = audit.rotate_mb {
        log_config.rotate_bytes = mb.max(1) * 1024 * 1024;
    }
    if let Some(k) = &audit.key {
        if audit.log.is_none() {
            bail!("an audit key without an audit log: give [audit] log (or --audit-log FILE)");
        }
        log_config.key = Some(portcullis::audit::log::read_key(k)?);
    }
    let audit_log = portcullis::audit::log::AuditLog::open(log_config)?;
    match audit_log.path() {
        Some(p) => eprintln!("portcullis serve: audit trail in {}", p.display()),
        None => eprintln!(
            "portcullis serve: audit trail in memory only (give [audit] log or --audit-log FILE to keep it)"
        ),
    }
    let server = Server::start_with_audit(authority, access, webhook, policy, labels, audit_log);
    let signer = server.clone();
    let served = portcullis::server::serve(
        server,
        listen,
        tls,
        |addr| {
            eprintln!("portcullis serve: listening on {scheme}://{addr}; ctrl-c or SIGTERM to stop")
        },
        async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = portcullis::console::run::terminate_signal() => {}
            }
        },
    )
    .await;
    // The last records get a signed head before the process ends.
    signer.audit.sign(signer.authority.now())?;
    served
}

/// The console on any backend, with the terminal restored on every exit.
async fn console(
    backend: Arc<dyn AccessBackend>,
    app_config: portcullis::console::state::app::AppConfig,
    theme: &Theme,
    started: Instant,
    policy: Option<Arc<portcullis::policy::Policy>>,
    notice: Option<String>,
) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!("the console needs a terminal: run it in one (stdout is not a TTY)");
    }
    let info = backend.info();
    let mut state =
        AppState::new(app_config, info.approver.clone(), info.kind, backend.now()).trust(&info);
    state.policy = policy;
    if let Some(text) = notice {
        state.flash(
            portcullis::console::state::app::FlashLevel::Error,
            portcullis::domain::sanitize::inert(&text, 400).into_owned(),
        );
    }
    // ratatui::init installs a panic hook that restores the terminal
    // before the panic message prints; the guard covers every other exit.
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let _guard = TerminalGuard;
    portcullis::console::run::run(&mut terminal, backend, state, theme, started).await
}
