//! The console: `portcullis` (on clusters or `--backend URL`) and
//! `portcullis demo`, with the terminal restored on every exit.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::backend::demo::{DemoBackend, DemoConfig};
use crate::backend::kube::KubeBackend;
use crate::backend::AccessBackend;
use crate::cli::args::{Cli, ColorMode};
use crate::cli::config::{self, ConfigFile};
use crate::cli::connect;
use crate::console::state::app::AppConfig;
use crate::console::state::AppState;
use crate::console::view::Theme;
use crate::policy::Policy;

/// What every console starts from: the config file's settings, the theme
/// and an advisory policy (`--policy DIR`).
pub(crate) struct Start {
    pub app_config: AppConfig,
    pub theme: Theme,
    pub started: Instant,
    pub policy: Option<Arc<Policy>>,
}

/// `portcullis demo`: the embedded demo, no cluster needed.
pub(crate) async fn demo(
    start: Start,
    seed: Option<u64>,
    rate: std::time::Duration,
) -> anyhow::Result<()> {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1)
    });
    let demo = Arc::new(DemoBackend::live(DemoConfig {
        seed,
        rate,
        ..Default::default()
    }));
    let _simulator = demo.spawn_simulator();
    tracing::info!(seed, ?rate, "starting the demo");
    run(demo, start, None).await
}

/// `portcullis`: on the contexts asked for, or on the server.
pub(crate) async fn connected(cli: &Cli, file: &ConfigFile, start: Start) -> anyhow::Result<()> {
    if let Some(url) = &cli.backend {
        let http = connect::server(cli, url).await?;
        return run(Arc::new(http), start, None).await;
    }
    let kube =
        KubeBackend::connect_named(&cli.contexts, cli.all_contexts, &file.cluster_names).await?;
    // No --policy: the cluster's own (advisory), if it has one.
    // One that does not load is said on the message line; the
    // console runs without it (it is advisory).
    let mut notice = None;
    let policy = match (start.policy.clone(), kube.clusters().first()) {
        (Some(p), _) => Some(p),
        (None, Some(c)) => match crate::backend::kube::policy_source::policy_of(c).await {
            Ok(p) => p.map(Arc::new),
            Err(e) => {
                notice = Some(format!(
                    "the cluster's policy did not load, no verdicts are shown: {e}"
                ));
                None
            }
        },
        (None, None) => None,
    };
    run(Arc::new(kube), Start { policy, ..start }, notice).await
}

pub(crate) fn pick_theme(cli: &Cli, file: &ConfigFile) -> anyhow::Result<Theme> {
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

/// The console on any backend, with the terminal restored on every exit.
async fn run(
    backend: Arc<dyn AccessBackend>,
    start: Start,
    notice: Option<String>,
) -> anyhow::Result<()> {
    let Start {
        app_config,
        theme,
        started,
        policy,
    } = start;
    if !std::io::stdout().is_terminal() {
        bail!("the console needs a terminal: run it in one (stdout is not a TTY)");
    }
    let info = backend.info();
    let mut state =
        AppState::new(app_config, info.approver.clone(), info.kind, backend.now()).trust(&info);
    state.policy = policy;
    if let Some(text) = notice {
        state.flash(
            crate::console::state::app::FlashLevel::Error,
            crate::domain::sanitize::inert(&text, 400).into_owned(),
        );
    }
    // ratatui::init installs a panic hook that restores the terminal
    // before the panic message prints; the guard covers every other exit.
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let _guard = TerminalGuard;
    crate::console::run::run(&mut terminal, backend, state, &theme, started).await
}
