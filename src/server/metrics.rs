//! `/metrics` in the Prometheus text format: requests by phase, decisions
//! and refusals, the reaper's lag after `expiresAt`, connected consoles.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use super::stream::Observed;
use crate::backend::kube::reaper::metrics::{observe_lag, write_lag};
use crate::domain::Phase;

/// Upper bounds (seconds) of the reaper-lag histogram.
const LAG_BUCKETS: [f64; 9] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

#[derive(Debug, Default)]
struct Counts {
    decisions: BTreeMap<(String, &'static str), u64>,
    refusals: BTreeMap<String, u64>,
    refusals_dropped: u64,
    lag_buckets: [u64; LAG_BUCKETS.len()],
    lag_count: u64,
    lag_sum: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
    sse_clients: Arc<AtomicI64>,
}

/// Counts a connected console while it lives.
pub struct SseClient(Arc<AtomicI64>);

impl Drop for SseClient {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn decided(&self, action: &str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        *self
            .counts()
            .decisions
            .entry((action.to_string(), outcome))
            .or_insert(0) += 1;
    }

    pub fn refused(&self, why: &str) {
        *self.counts().refusals.entry(why.to_string()).or_insert(0) += 1;
    }

    /// Refusals counted but not recorded one by one (over their rate).
    pub fn dropped_refusals(&self, n: u64) {
        self.counts().refusals_dropped += n;
    }

    pub fn observe(&self, o: &Observed) {
        let mut c = self.counts();
        let c = &mut *c;
        for lag in &o.expiry_lag {
            observe_lag(
                &LAG_BUCKETS,
                &mut c.lag_buckets,
                &mut c.lag_count,
                &mut c.lag_sum,
                *lag,
            );
        }
    }

    pub fn sse_client(&self) -> SseClient {
        self.sse_clients.fetch_add(1, Ordering::Relaxed);
        SseClient(self.sse_clients.clone())
    }

    pub fn render(&self, phases: &BTreeMap<Phase, usize>) -> String {
        let c = self.counts();
        let mut out = String::new();
        let _ = writeln!(out, "# HELP portcullis_requests Access requests by phase.");
        let _ = writeln!(out, "# TYPE portcullis_requests gauge");
        for phase in [
            Phase::Pending,
            Phase::Active,
            Phase::Denied,
            Phase::Expired,
            Phase::Revoked,
            Phase::Withdrawn,
            Phase::Failed,
        ] {
            let n = phases.get(&phase).copied().unwrap_or(0);
            let _ = writeln!(out, "portcullis_requests{{phase=\"{phase}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_decisions_total API actions by outcome."
        );
        let _ = writeln!(out, "# TYPE portcullis_decisions_total counter");
        for ((action, outcome), n) in &c.decisions {
            let _ = writeln!(
                out,
                "portcullis_decisions_total{{action=\"{action}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_refusals_total Calls refused before any action."
        );
        let _ = writeln!(out, "# TYPE portcullis_refusals_total counter");
        for (why, n) in &c.refusals {
            let _ = writeln!(out, "portcullis_refusals_total{{reason=\"{why}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP portcullis_refusals_dropped_total Refused calls recorded as a count, not one by one (over the rate)."
        );
        let _ = writeln!(out, "# TYPE portcullis_refusals_dropped_total counter");
        let _ = writeln!(
            out,
            "portcullis_refusals_dropped_total {}",
            c.refusals_dropped
        );
        write_lag(
            &mut out,
            "From a grant's expiresAt to its Expired record.",
            &LAG_BUCKETS,
            &c.lag_buckets,
            c.lag_sum,
            c.lag_count,
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_sse_clients Consoles connected to the live stream."
        );
        let _ = writeln!(out, "# TYPE portcullis_sse_clients gauge");
        let _ = writeln!(
            out,
            "portcullis_sse_clients {}",
            self.sse_clients.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.decided("approve", true);
        m.refused("bad-token");
        m.observe(&Observed {
            expiry_lag: vec![0.3, 4.0],
        });
        let _c = m.sse_client();
        let text = m.render(&BTreeMap::from([(Phase::Pending, 3)]));
        for line in [
            "portcullis_requests{phase=\"Pending\"} 3",
            "portcullis_decisions_total{action=\"approve\",outcome=\"ok\"} 1",
            "portcullis_refusals_total{reason=\"bad-token\"} 1",
            "portcullis_reaper_lag_seconds_bucket{le=\"0.5\"} 1",
            "portcullis_reaper_lag_seconds_bucket{le=\"5\"} 2",
            "portcullis_reaper_lag_seconds_count 2",
            "portcullis_sse_clients 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
