//! The command line: its flags ([`args`]), the config file, one file per
//! command under [`commands`], and what they share (connecting, logging,
//! request references, waiting for a decision, how the binary was invoked).
//! The binary's edge: errors are `anyhow` here, said in one line.

pub mod args;
pub mod commands;
pub(crate) mod config;
pub(crate) mod connect;
pub(crate) mod invocation;
pub(crate) mod logging;
pub(crate) mod reference;
pub(crate) mod table;
pub(crate) mod wait;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use args::{Cli, Command};
use commands::console::Start;
use config::ConfigFile;

/// The `portcullis` binary (and `kubectl-portcullis`).
pub fn main() -> ExitCode {
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
    let cli = invocation::parse(std::env::args_os());
    let verbose = cli.verbose > 0 || logging::debug_logging();
    match run(cli, started) {
        Ok(()) => ExitCode::SUCCESS,
        // `request --wait` not approved: its outcome is printed; its code.
        Err(e) if e.downcast_ref::<wait::Exit>().is_some() => {
            let exit = e.downcast_ref::<wait::Exit>();
            let code = exit.map_or(1, |x| x.code);
            if let Some(m) = exit.and_then(|x| x.message.as_deref()) {
                eprintln!("portcullis: {}", crate::domain::sanitize::inert(m, 2000));
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
                crate::domain::sanitize::inert(&chain.join(": "), 2000)
            );
            // The full text behind the summary, only when asked for.
            if let Some(crate::backend::BackendError::Escalation { details, .. }) =
                e.downcast_ref::<crate::backend::BackendError>()
            {
                tracing::debug!(?details, "the apiserver's escalation refusal");
                if verbose {
                    for d in details {
                        eprintln!("  {}", crate::domain::sanitize::inert(d, 2000));
                    }
                }
            }
            ExitCode::from(1)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli, started: Instant) -> anyhow::Result<()> {
    match &cli.command {
        Some(Command::Man { out_dir }) => return commands::man::run(out_dir.as_deref()),
        Some(Command::Completions { shell }) => return commands::completions::run(*shell),
        Some(Command::Version { client, output }) => {
            return commands::version::run(&cli, *client, *output)
        }
        Some(Command::Serve { demo, listen, .. }) => {
            // `--config` is the server's file here, not the console's.
            let _log_guard = logging::to_file();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            return runtime.block_on(commands::serve::run(&cli, *demo, *listen));
        }
        _ => {}
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
    let theme = commands::console::pick_theme(&cli, &file)?;
    // The reaper is a service: its log goes to stderr (the pod's log);
    // everything else logs to a file, never to the console's screen.
    let _log_guard = if matches!(cli.command, Some(Command::Reaper { .. })) {
        logging::to_stderr();
        None
    } else {
        logging::to_file()
    };
    let groups = file.groups.clone().unwrap_or_default();
    // A policy the console evaluates itself: advisory (the server enforces).
    let policy = match &cli.policy {
        Some(dir) => Some(Arc::new(crate::policy::Policy::load(dir)?)),
        None => None,
    };
    let start = Start {
        app_config,
        theme,
        started,
        policy,
    };
    let runtime = runtime()?;
    match &cli.command {
        Some(
            Command::Completions { .. }
            | Command::Man { .. }
            | Command::Version { .. }
            | Command::Serve { .. },
        ) => unreachable!("handled above"),
        Some(Command::Policy { action }) => commands::policy::run(action),
        Some(Command::Audit { action }) => runtime.block_on(commands::audit::run(&cli, action)),
        Some(Command::Crds { .. }) => commands::crds::run(&cli),
        Some(Command::Demo { seed, rate }) => {
            runtime.block_on(commands::console::demo(start, *seed, *rate))
        }
        None => runtime.block_on(commands::console::connected(&cli, &file, start)),
        Some(Command::Reaper {
            listen,
            audit_log,
            audit_key,
        }) => runtime.block_on(commands::reaper::run(
            &cli,
            listen,
            audit_log.as_deref(),
            audit_key.as_deref(),
        )),
        Some(verb) => runtime.block_on(commands::verbs::connect_and_run(&cli, verb, &groups)),
    }
}
