//! What `portcullis reaper` serves beside its work: `/healthz` (every
//! reaper loop alive and the apiserver answered lately) and `/metrics` in
//! the Prometheus text format — how late grants end after `expiresAt`
//! (reaper lag), how many ended and how, how many reconciles failed.
//!
//! It listens where `--listen` says, loopback unless told otherwise: the
//! numbers say which grants end when, which is nobody else's business.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// Upper bounds (seconds) of the lag histogram.
const LAG_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Counts one lag (seconds) into a histogram of `bounds`.
pub(crate) fn observe_lag(
    bounds: &[f64],
    buckets: &mut [u64],
    count: &mut u64,
    sum: &mut f64,
    lag: f64,
) {
    *count += 1;
    *sum += lag;
    for (n, bound) in buckets.iter_mut().zip(bounds) {
        if lag <= *bound {
            *n += 1;
        }
    }
}

/// `portcullis_reaper_lag_seconds` in the Prometheus text format: the
/// reaper's `/metrics` and the server's serve the same histogram.
pub(crate) fn write_lag(
    out: &mut String,
    help: &str,
    bounds: &[f64],
    buckets: &[u64],
    sum: f64,
    count: u64,
) {
    let _ = writeln!(out, "# HELP portcullis_reaper_lag_seconds {help}");
    let _ = writeln!(out, "# TYPE portcullis_reaper_lag_seconds histogram");
    for (bound, n) in bounds.iter().zip(buckets) {
        let _ = writeln!(
            out,
            "portcullis_reaper_lag_seconds_bucket{{le=\"{bound}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "portcullis_reaper_lag_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(out, "portcullis_reaper_lag_seconds_sum {sum}");
    let _ = writeln!(out, "portcullis_reaper_lag_seconds_count {count}");
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
    fn label(self) -> &'static str {
        match self {
            EndedHow::Expired => "expired",
            EndedHow::Released => "released",
            EndedHow::Failed => "failed",
            EndedHow::Timeout => "timeout",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default)]
struct Lag {
    buckets: [u64; LAG_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The reaper's counters; shared by every reconcile.
#[derive(Debug, Default)]
pub struct ReaperMetrics {
    lag: Mutex<Lag>,
    ended: [AtomicU64; 4],
    failures: AtomicU64,
    /// Unix seconds of the last reconcile that reached the apiserver.
    last_success: AtomicI64,
    /// Reaper loops running (one per cluster).
    loops: AtomicI64,
}

impl ReaperMetrics {
    /// A grant ended `lag_seconds` after it was due (0 for a release).
    pub fn ended(&self, how: EndedHow, lag_seconds: Option<f64>) {
        self.ended[how.index()].fetch_add(1, Ordering::Relaxed);
        if let Some(lag) = lag_seconds {
            let mut l = self.lag.lock().unwrap_or_else(|e| e.into_inner());
            let Lag {
                buckets,
                count,
                sum,
            } = &mut *l;
            observe_lag(&LAG_BUCKETS, buckets, count, sum, lag);
        }
    }

    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reached_apiserver(&self) {
        self.last_success
            .store(chrono::Utc::now().timestamp(), Ordering::Relaxed);
    }

    /// Counts a running reaper loop while the guard lives.
    pub fn running(self: &Arc<Self>) -> LoopGuard {
        self.loops.fetch_add(1, Ordering::Relaxed);
        LoopGuard(self.clone())
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let l = self.lag.lock().unwrap_or_else(|e| e.into_inner());
        write_lag(
            &mut out,
            "From a grant's expiresAt to the reaper's record of its end.",
            &LAG_BUCKETS,
            &l.buckets,
            l.sum,
            l.count,
        );
        drop(l);
        let _ = writeln!(
            out,
            "# HELP portcullis_reaper_grants_ended_total Grants (and pending requests) the reaper ended, by how."
        );
        let _ = writeln!(out, "# TYPE portcullis_reaper_grants_ended_total counter");
        for how in EndedHow::ALL {
            let _ = writeln!(
                out,
                "portcullis_reaper_grants_ended_total{{how=\"{}\"}} {}",
                how.label(),
                self.ended[how.index()].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_reaper_failures_total Reconciles that failed (retried with backoff)."
        );
        let _ = writeln!(out, "# TYPE portcullis_reaper_failures_total counter");
        let _ = writeln!(
            out,
            "portcullis_reaper_failures_total {}",
            self.failures.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_reaper_last_success_timestamp_seconds When a reconcile last reached the apiserver."
        );
        let _ = writeln!(
            out,
            "# TYPE portcullis_reaper_last_success_timestamp_seconds gauge"
        );
        let _ = writeln!(
            out,
            "portcullis_reaper_last_success_timestamp_seconds {}",
            self.last_success.load(Ordering::Relaxed)
        );
        out
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
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    s.metrics.render(),
                )
                    .into_response()
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
            "portcullis_reaper_lag_seconds_bucket{le=\"5\"} 2",
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
