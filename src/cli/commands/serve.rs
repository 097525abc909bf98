//! `portcullis serve`: the server, until ctrl-c or SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;

use crate::backend::demo::{DemoBackend, DemoConfig};
use crate::cli::args::{Cli, Command};
use crate::server::authority::{Access, Authority, DemoAuthority, KubeAuthority};
use crate::server::config::{AuditFile, ServerConfig};
use crate::server::{webhook::Webhook, Server};

/// What the server starts with: the demo's, or the config file's.
struct Setup {
    authority: Arc<dyn Authority>,
    access: Access,
    listen: SocketAddr,
    tls: Option<(PathBuf, PathBuf)>,
    webhook: Option<Webhook>,
    /// Each cluster's labels, as a policy sees them.
    labels: BTreeMap<String, BTreeMap<String, String>>,
    /// The policies' directory: the config file's, else `--policy`.
    policy_dir: Option<PathBuf>,
    /// `[audit]` as the config file has it (the demo: the defaults).
    audit: AuditFile,
}

/// `portcullis serve`: until ctrl-c or SIGTERM.
pub(crate) async fn run(cli: &Cli, demo: bool, listen: Option<SocketAddr>) -> anyhow::Result<()> {
    let Setup {
        authority,
        access,
        listen,
        tls,
        webhook,
        labels,
        policy_dir,
        audit,
    } = if demo {
        demo_setup(cli, listen)?
    } else {
        config_setup(cli, listen).await?
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let policy = policy_store(policy_dir.as_deref())?;
    let audit_log = open_audit_log(cli, audit, demo)?;
    let server = Server::builder(authority, access)
        .webhook(webhook)
        .policy(policy)
        .labels(labels)
        .audit(audit_log)
        .start();
    let signer = server.clone();
    let served = crate::server::serve(
        server,
        listen,
        tls,
        |addr| {
            eprintln!("portcullis serve: listening on {scheme}://{addr}; ctrl-c or SIGTERM to stop")
        },
        async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = crate::console::run::terminate_signal() => {}
            }
        },
    )
    .await;
    // The last records get a signed head before the process ends.
    signer.audit.sign(signer.authority.now())?;
    served
}

/// `serve --demo`: the embedded demo, on loopback only.
fn demo_setup(cli: &Cli, listen: Option<SocketAddr>) -> anyhow::Result<Setup> {
    let listen = listen.unwrap_or_else(|| {
        crate::server::config::DEFAULT_LISTEN
            .parse()
            .expect("a valid default address")
    });
    if !listen.ip().is_loopback() {
        bail!("--demo serves on loopback only (its tokens are people's names)");
    }
    // The demo's clusters, as a policy sees them.
    let mut labels = BTreeMap::new();
    for c in crate::backend::demo::org::CLUSTERS {
        let env = c.split('-').next().unwrap_or_default();
        labels.insert(
            c.to_string(),
            BTreeMap::from([("env".to_string(), env.to_string())]),
        );
    }
    let world = Arc::new(DemoBackend::live(DemoConfig::default()));
    let authority = DemoAuthority::new(world);
    let access = authority.access().clone();
    Ok(Setup {
        authority: Arc::new(authority),
        access,
        listen,
        tls: None,
        webhook: None,
        labels,
        policy_dir: cli.policy.clone(),
        audit: AuditFile::default(),
    })
}

/// `serve --config FILE`: the clusters the file names.
async fn config_setup(cli: &Cli, listen: Option<SocketAddr>) -> anyhow::Result<Setup> {
    let Some(path) = &cli.config else {
        bail!("portcullis serve needs --config FILE (see README \"The server\"), or --demo");
    };
    let config = ServerConfig::load(path)?;
    let mut policy_dir = cli.policy.clone();
    if config.policy.is_some() {
        policy_dir = config.policy.clone();
    }
    let audit = config.audit.clone();
    let labels = config
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
    Ok(Setup {
        authority: Arc::new(authority),
        access,
        listen: listen.unwrap_or(config.listen),
        tls,
        webhook,
        labels,
        policy_dir,
        audit,
    })
}

/// The policies in `policy_dir`, if any, reloaded as they change.
fn policy_store(
    policy_dir: Option<&Path>,
) -> anyhow::Result<Option<Arc<crate::policy::PolicyStore>>> {
    let policy = match policy_dir {
        Some(dir) => {
            let store = crate::policy::PolicyStore::open(dir)?;
            let _watch = store.watch();
            Some(store)
        }
        None => None,
    };
    Ok(policy)
}

/// The audit trail as `[audit]` says, `--audit-log`/`--audit-key` over
/// it; says on stderr where it goes.
fn open_audit_log(
    cli: &Cli,
    mut audit: AuditFile,
    demo: bool,
) -> anyhow::Result<crate::audit::log::AuditLog> {
    if let Some(Command::Serve {
        audit_log,
        audit_key,
        ..
    }) = &cli.command
    {
        audit.log = audit_log.clone().or(audit.log);
        audit.key = audit_key.clone().or(audit.key);
    }
    let mut log_config = crate::audit::log::LogConfig::memory();
    log_config.path = audit.log.clone();
    log_config.stdout = audit.stdout.unwrap_or(!demo) && audit.log.is_some();
    if let Some(mb) = audit.rotate_mb {
        log_config.rotate_bytes = mb.max(1) * 1024 * 1024;
    }
    if let Some(k) = &audit.key {
        if audit.log.is_none() {
            bail!("an audit key without an audit log: give [audit] log (or --audit-log FILE)");
        }
        log_config.key = Some(crate::audit::log::read_key(k)?);
    }
    let audit_log = crate::audit::log::AuditLog::open(log_config)?;
    match audit_log.path() {
        Some(p) => eprintln!("portcullis serve: audit trail in {}", p.display()),
        None => eprintln!(
            "portcullis serve: audit trail in memory only (give [audit] log or --audit-log FILE to keep it)"
        ),
    }
    Ok(audit_log)
}
