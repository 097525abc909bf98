//! `portcullis serve`: one authority for identity, decisions and expiry.
//!
//! Every `/v1` call carries a bearer token the hub's apiserver resolves
//! (TokenReview; the demo's people by name); that user and those groups are
//! used for everything — the requester of a new request, self-approval,
//! `decision.by`. The server alone holds the Kubernetes rights to grant.
//! See README "The server" for the API, one example per call.

pub(crate) mod audit;
pub mod authority;
pub mod config;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod in_flight;
pub(crate) mod install;
pub(crate) mod metrics;
pub mod openapi;
pub(crate) mod refusals;
pub(crate) mod routes;
pub(crate) mod stream;
pub mod webhook;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::audit::log::{AuditLog, LogConfig};
use crate::backend::RequestKey;
use crate::domain::rbac::engine::{analyze, GrantRequest};
use crate::domain::AccessRequest;
use crate::policy::{Decision, PolicyStore};
use authority::{Access, Authority};
use error::Error;
use stream::Hub;

pub struct Server {
    pub(crate) authority: Arc<dyn Authority>,
    pub(crate) access: Access,
    /// The policy in force (None: none configured).
    pub(crate) policy: Option<Arc<PolicyStore>>,
    /// Each cluster's labels, as the policy sees them.
    pub(crate) labels: BTreeMap<String, BTreeMap<String, String>>,
    pub(crate) hub: Hub,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) webhook: Option<webhook::Webhook>,
    /// The audit trail (README "Audit trail").
    pub(crate) audit: Arc<crate::audit::log::AuditLog>,
    /// Refusals recorded one by one up to a rate, the rest counted.
    pub(crate) refusals: refusals::Refusals,
    /// Actions in flight at call sites (their records come first).
    pub(crate) in_flight: in_flight::InFlight,
    /// The risk label of what a request would grant, by who and what it
    /// asks, for the inventory it was computed against.
    pub(crate) risks: audit::RiskCache,
    /// Set when the server stops: live streams end so it can.
    stopping: tokio::sync::watch::Sender<bool>,
}

pub(crate) type Shared = Arc<Server>;

/// How many recent audit records a fresh approver's stream starts with.
pub const AUDIT_IN_SNAPSHOT: usize = 500;

/// How often the audit head is signed when records came in.
pub const SIGN_EVERY: Duration = Duration::from_secs(10);

/// Requests deleted past their retention per round (every [`SIGN_EVERY`]).
const FORGET_PER_ROUND: usize = 500;

impl Server {
    /// A server for `authority`, deciding who may do what by `access`;
    /// the rest is optional ([`Builder`]).
    pub fn builder(authority: Arc<dyn Authority>, access: Access) -> Builder {
        Builder {
            authority,
            access,
            webhook: None,
            policy: None,
            labels: BTreeMap::new(),
            audit: None,
        }
    }

    /// Starts following the authority's changes into the stream hub.
    fn start(b: Builder) -> Shared {
        let Builder {
            authority,
            access,
            webhook,
            policy,
            labels,
            audit,
        } = b;
        let audit = audit.unwrap_or_else(|| {
            AuditLog::open(LogConfig::memory()).expect("a memory-only audit log does no IO")
        });
        // Unique per process start: another replica's (or an earlier
        // run's) ids never resume here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let epoch = format!("{:x}", nanos ^ ((std::process::id() as u64) << 32));
        let server = Arc::new(Server {
            authority: authority.clone(),
            access,
            policy,
            labels,
            hub: Hub::new(epoch),
            metrics: metrics::Metrics::default(),
            webhook,
            audit: Arc::new(audit),
            refusals: refusals::Refusals::default(),
            in_flight: Default::default(),
            risks: Default::default(),
            stopping: tokio::sync::watch::channel(false).0,
        });
        {
            let me = Arc::downgrade(&server);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SIGN_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(server) = me.upgrade() else { break };
                    server.record_dropped_refusals();
                    server.refusals.prune();
                    if let Err(e) = server.audit.sign(server.authority.now()) {
                        tracing::error!(error = %e, "cannot sign the audit head");
                    }
                    server.forget_past_retention().await;
                }
            });
        }
        let mut events = authority.watch();
        let me = Arc::downgrade(&server);
        tokio::spawn(async move {
            while let Some(first) = events.recv().await {
                let batch = crate::backend::batch::drain(first, &mut events);
                let Some(server) = me.upgrade() else { break };
                server.take(batch);
            }
        });
        // A new policy in force: every pending request is judged again.
        if let Some(mut changes) = server.policy.as_ref().map(|p| p.changes()) {
            let me = Arc::downgrade(&server);
            tokio::spawn(async move {
                while changes.changed().await.is_ok() {
                    let Some(server) = me.upgrade() else { break };
                    let pending = server.hub.pending_in(None);
                    server.take(pending);
                }
            });
        }
        server
    }

    /// Deletes from the hub the ended requests past their cluster's
    /// retention whose every record is in the audit log on disk (with no
    /// log file, or a record missing or still held back by a call in
    /// flight, the request stays); after this its history is the log's
    /// (`audit show`). At most [`FORGET_PER_ROUND`] a round, so a first
    /// round after an upgrade does not hold up the signing.
    async fn forget_past_retention(&self) {
        if self.audit.path().is_none() {
            return;
        }
        let due = self.hub.past_retention(
            self.authority.now(),
            |c| self.authority.retention(c),
            FORGET_PER_ROUND,
        );
        let ctx = self.context(None);
        for r in due {
            let recorded = crate::audit::derive::changes(None, &r, &ctx)
                .iter()
                .all(|e| self.audit.has(&e.id));
            if !recorded {
                continue;
            }
            match self
                .authority
                .forget(&RequestKey::of(&r), r.uid.as_deref())
                .await
            {
                Ok(()) => self.metrics.forgotten(),
                Err(e) => {
                    tracing::warn!(request = %r.name, error = %e, "could not delete a request past its retention");
                    return;
                }
            }
        }
    }

    /// Takes a batch of the authority's events into the stream, each
    /// pending request with its verdict. Verdicts judge the diff, so a
    /// cluster's RBAC goes in first, and when it changes its pending
    /// requests are judged again (once per change, never per frame).
    fn take(&self, batch: Vec<crate::backend::BackendEvent>) {
        use crate::backend::BackendEvent;
        let now = self.authority.now();
        let (rbac, mut rest): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|e| matches!(e, BackendEvent::Inventory { .. }));
        if !rbac.is_empty() {
            let clusters: std::collections::BTreeSet<String> = rbac
                .iter()
                .filter_map(|e| match e {
                    BackendEvent::Inventory { cluster, .. } => Some(cluster.clone()),
                    _ => None,
                })
                .collect();
            let observed = self.hub.ingest(rbac, now);
            self.metrics.observe(&observed);
            if self.policy.is_some() {
                let coming: std::collections::HashSet<RequestKey> = rest
                    .iter()
                    .filter_map(|e| match e {
                        BackendEvent::Upsert(r) => Some(RequestKey::of(r)),
                        _ => None,
                    })
                    .collect();
                rest.extend(
                    self.hub
                        .pending_in(Some(&clusters))
                        .into_iter()
                        .filter(|e| match e {
                            BackendEvent::Upsert(r) => !coming.contains(&RequestKey::of(r)),
                            _ => true,
                        }),
                );
            }
        }
        self.observe(&rest);
        let observed = self.hub.ingest_with(rest, now, |r| {
            // Decided once per change, and only while it matters.
            let d = (r.phase() == crate::domain::Phase::Pending)
                .then(|| self.decide(r).ok().flatten())
                .flatten()?;
            self.record_verdict(r, &d);
            serde_json::to_value(d).ok()
        });
        self.metrics.observe(&observed);
    }

    /// The policy's decision on `req` (None: no policy configured).
    pub fn decide(&self, req: &AccessRequest) -> Result<Option<Decision>, Error> {
        let Some(policy) = self.policy.as_ref().and_then(|p| p.current()) else {
            return Ok(None);
        };
        let inventory = self.hub.inventory_of(&req.cluster);
        let analysis = inventory
            .as_ref()
            .and_then(|inv| analyze(inv, GrantRequest::of(req, &req.requester)).ok());
        let now = self.authority.now();
        let extension = req.extends.as_ref().and_then(|of| {
            let live = self.hub.request(&RequestKey {
                cluster: req.cluster.clone(),
                name: of.clone(),
            })?;
            let used = (now - live.status.granted_at?).num_seconds().max(0) as u64;
            Some((of.clone(), used))
        });
        let labels = self.labels.get(&req.cluster).cloned().unwrap_or_default();
        let input = crate::policy::policy_input(
            req,
            analysis.as_ref(),
            &labels,
            now,
            extension.as_ref().map(|(of, used)| (of.as_str(), *used)),
        );
        policy
            .evaluate(&input)
            .map(Some)
            .map_err(|e| Error::Unavailable(e.to_string()))
    }

    /// The routes, behind what every call goes through ([`routes`]).
    pub fn router(self: &Arc<Self>) -> Router {
        routes::router(self)
    }
}

/// What a [`Server`] starts with beyond its authority and access.
pub struct Builder {
    authority: Arc<dyn Authority>,
    access: Access,
    webhook: Option<webhook::Webhook>,
    policy: Option<Arc<PolicyStore>>,
    labels: BTreeMap<String, BTreeMap<String, String>>,
    audit: Option<AuditLog>,
}

impl Builder {
    /// Answers the apiserver's admission calls (direct mode, optional).
    pub fn webhook(mut self, webhook: Option<webhook::Webhook>) -> Self {
        self.webhook = webhook;
        self
    }

    /// The policy in force (README "Policy").
    pub fn policy(mut self, policy: Option<Arc<PolicyStore>>) -> Self {
        self.policy = policy;
        self
    }

    /// Each cluster's labels, as the policy sees them.
    pub fn labels(mut self, labels: BTreeMap<String, BTreeMap<String, String>>) -> Self {
        self.labels = labels;
        self
    }

    /// The audit trail (default: in memory only), its head signed every
    /// [`SIGN_EVERY`] when it has a key.
    pub fn audit(mut self, audit: AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Starts following the authority's changes (needs a tokio runtime).
    pub fn start(self) -> Shared {
        Server::start(self)
    }
}

/// The largest request body a call may send (a request with a long reason
/// is a few KiB); beyond, 413, recorded.
pub const MAX_BODY: usize = 64 * 1024;

/// How often a live stream's token is checked again: as often as any
/// call's (the TokenReview cache's lifetime).
pub const STREAM_RECHECK: Duration = authority::TOKEN_TTL;

/// Serves until `shutdown` resolves: TLS when configured, else plain HTTP
/// (the config allows that only on loopback, or behind a TLS proxy).
pub async fn serve(
    server: Shared,
    listen: SocketAddr,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = server.router();
    let stopping = server.stopping.clone();
    let shutdown = async move {
        shutdown.await;
        let _ = stopping.send(true);
    };
    match tls {
        None => {
            let listener = tokio::net::TcpListener::bind(listen).await?;
            ready(listener.local_addr()?);
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await?;
        }
        Some((cert, key)) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&cert, &key).await?;
            let listener = std::net::TcpListener::bind(listen)?;
            listener.set_nonblocking(true)?;
            ready(listener.local_addr()?);
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                h.graceful_shutdown(Some(Duration::from_secs(5)));
            });
            axum_server::from_tcp_rustls(listener, config)?
                .handle(handle)
                .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                .await?;
        }
    }
    Ok(())
}
