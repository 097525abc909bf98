//! What `portcullis reaper` serves beside its work: `/healthz` (every
//! reaper loop alive and the apiserver answered lately) and `/metrics` in
//! the OpenMetrics text format (`prometheus-client`) — how late grants end after `expiresAt`
//! (reaper lag), how many ended and how, how many reconciles failed.
//!
//! It listens where `--listen` says, loopback unless told otherwise: the
//! numbers say which grants end when, which is nobody else's business.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds (seconds) of the lag histogram.
const LAG_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// What `/metrics` answers with: the OpenMetrics text format.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `portcullis_reaper_lag_seconds`: from a grant's `expiresAt` to the
/// record of its end. The one definition the reaper's `/metrics` and the
/// server's serve.
pub(crate) fn register_lag(registry: &mut Registry, help: &str) -> Histogram {
    let lag = Histogram::new(LAG_BUCKETS);
    registry.register_with_unit("portcullis_reaper_lag", help, Unit::Seconds, lag.clone());
    lag
}

/// A registry in the text format.
pub(crate) fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String does not fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// How a grant (or a pending request) ended at the reaper's hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedHow {
    /// A live grant at its `expiresAt`.
    Expired,
    /// Its requester released it (deleted the request of a live grant).
    Released,
    /// An approval that died half-way, or a grant without an end.
    Failed,
    /// A pending request at the approval timeout.
    Timeout,
}

impl EndedHow {
    const ALL: [EndedHow; 4] = [
        EndedHow::Expired,
        EndedHow::Released,
        EndedHow::Failed,
        EndedHow::Timeout,
    ];
    fn label(self) -> How {
        How {
            how: match self {
                EndedHow::Expired => "expired",
                EndedHow::Released => "released",
                EndedHow::Failed => "failed",
                EndedHow::Timeout => "timeout",
            },
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct How {
    how: &'static str,
}

/// The reaper's counters; shared by every reconcile.
#[derive(Debug)]
pub struct ReaperMetrics {
    registry: Registry,
    lag: Histogram,
    ended: Family<How, Counter>,
    failures: Counter,
    /// Unix seconds of the last reconcile that reached the apiserver.
    last_success: Gauge,
    /// Reaper loops running (one per cluster).
    loops: AtomicI64,
}

impl Default for ReaperMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let lag = register_lag(
            &mut registry,
            "From a grant's expiresAt to the reaper's record of its end",
        );
        let ended = Family::<How, Counter>::default();
        registry.register(
            "portcullis_reaper_grants_ended",
            "Grants (and pending requests) the reaper ended, by how",
            ended.clone(),
        );
        // Every way shows, 0 until it happens.
        for how in EndedHow::ALL {
            ended.get_or_create(&how.label()).inc_by(0);
        }
        let failures = Counter::default();
        registry.register(
            "portcullis_reaper_failures",
            "Reconciles that failed (retried with backoff)",
            failures.clone(),
        );
        let last_success = Gauge::default();
        registry.register(
            "portcullis_reaper_last_success_timestamp_seconds",
            "When a reconcile last reached the apiserver",
            last_success.clone(),
        );
        Self {
            registry,
            lag,
            ended,
            failures,
            last_success,
            loops: AtomicI64::new(0),
        }
    }
}

impl ReaperMetrics {
    /// A grant ended `lag_seconds` after it was due (0 for a release).
    pub fn ended(&self, how: EndedHow, lag_seconds: Option<f64>) {
        self.ended.get_or_create(&how.label()).inc();
        if let Some(lag) = lag_seconds {
            self.lag.observe(lag);
        }
    }

    pub fn failed(&self) {
        self.failures.inc();
    }

    pub fn reached_apiserver(&self) {
        self.last_success.set(chrono::Utc::now().timestamp());
    }

    /// Counts a running reaper loop while the guard lives.
    pub fn running(self: &Arc<Self>) -> LoopGuard {
        self.loops.fetch_add(1, Ordering::Relaxed);
        LoopGuard(self.clone())
    }

    pub fn render(&self) -> String {
        encode(&self.registry)
    }

    /// Alive: every loop still runs.
    pub fn healthy(&self, expected_loops: i64) -> bool {
        self.loops.load(Ordering::Relaxed) >= expected_loops
    }
}

/// Keeps a loop counted while it runs.
pub struct LoopGuard(Arc<ReaperMetrics>);

impl Drop for LoopGuard {
    fn drop(&mut self) {
        self.0.loops.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Clone)]
struct Served {
    metrics: Arc<ReaperMetrics>,
    loops: i64,
}

/// `/healthz` and `/metrics`.
pub(crate) fn router(metrics: Arc<ReaperMetrics>, loops: usize) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|State(s): State<Served>| async move {
                if s.metrics.healthy(s.loops) {
                    (StatusCode::OK, "ok\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "a reaper loop stopped\n")
                }
            }),
        )
        .route(
            "/metrics",
            get(|State(s): State<Served>| async move {
                ([("content-type", CONTENT_TYPE)], s.metrics.render()).into_response()
            }),
        )
        .with_state(Served {
            metrics,
            loops: loops as i64,
        })
}

/// Binds `listen` (the caller says where) and serves until the task ends.
pub(crate) async fn serve(
    listen: SocketAddr,
    metrics: Arc<ReaperMetrics>,
    loops: usize,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = router(metrics, loops);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the reaper's /metrics server stopped");
        }
    });
    Ok((addr, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_happened() {
        let m = Arc::new(ReaperMetrics::default());
        m.ended(EndedHow::Expired, Some(0.3));
        m.ended(EndedHow::Expired, Some(4.0));
        m.ended(EndedHow::Released, None);
        m.failed();
        let text = m.render();
        for line in [
            "portcullis_reaper_lag_seconds_bucket{le=\"0.5\"} 1",
            "portcullis_reaper_lag_seconds_bucket{le=\"5.0\"} 2",
            "portcullis_reaper_lag_seconds_count 2",
            "portcullis_reaper_grants_ended_total{how=\"expired\"} 2",
            "portcullis_reaper_grants_ended_total{how=\"released\"} 1",
            "portcullis_reaper_grants_ended_total{how=\"failed\"} 0",
            "portcullis_reaper_failures_total 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!m.healthy(1));
        let g = m.running();
        assert!(m.healthy(1));
        drop(g);
        assert!(!m.healthy(1));
    }
}
