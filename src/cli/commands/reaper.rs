//! `portcullis reaper`: ends grants at their end on every context, with
//! `/healthz` and `/metrics`, until ctrl-c or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::backend::kube::KubeBackend;
use crate::cli::args::Cli;

/// Reaps until stopped.
pub(crate) async fn run(
    cli: &Cli,
    listen: &SocketAddr,
    audit_log: Option<&Path>,
    audit_key: Option<&Path>,
) -> anyhow::Result<()> {
    use crate::backend::kube::reaper::{self, audit_trail, metrics as reaper_metrics};
    let kube = KubeBackend::connect(&cli.contexts, cli.all_contexts).await?;
    let trail = match audit_log {
        Some(path) => {
            let mut config = crate::audit::log::LogConfig::new(path);
            if let Some(k) = audit_key {
                config.key = Some(crate::audit::log::read_key(k)?);
            }
            Some(Arc::new(crate::audit::log::AuditLog::open(config)?))
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
            tasks.push(tokio::spawn(audit_trail::follow(
                c.clone(),
                log.clone(),
                "reaper",
            )));
        }
    }
    if let Some(log) = trail.clone() {
        // The head is signed every few seconds while records come in.
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(crate::server::SIGN_EVERY).await;
                if let Err(e) = log.sign(chrono::Utc::now()) {
                    eprintln!("portcullis reaper: {e}");
                }
            }
        }));
    }
    let (addr, _http) = reaper_metrics::serve(*listen, metrics.clone(), kube.clusters().len())
        .await
        .with_context(|| format!("cannot listen on {listen} for /healthz and /metrics"))?;
    eprintln!(
        "portcullis reaper: watching {} context(s); /healthz and /metrics on http://{addr}; ctrl-c or SIGTERM to stop",
        kube.clusters().len()
    );
    tokio::select! {
        _ = futures::future::join_all(tasks) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = crate::console::run::terminate_signal() => {}
    }
    if let Some(log) = &trail {
        log.sign(chrono::Utc::now())?;
    }
    Ok(())
}
