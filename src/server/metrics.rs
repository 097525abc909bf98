//! `/metrics` in the OpenMetrics text format (`prometheus-client`):
//! requests by phase, decisions and refusals, the reaper's lag after
//! `expiresAt`, connected consoles.

use std::collections::BTreeMap;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::stream::Observed;
use crate::backend::kube::reaper::metrics::{encode, register_lag};
use crate::domain::Phase;

pub(crate) use crate::backend::kube::reaper::metrics::CONTENT_TYPE;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Decision {
    action: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

/// The server's metrics, in one registry.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<PhaseLabel, Gauge>,
    decisions: Family<Decision, Counter>,
    refusals: Family<Reason, Counter>,
    refusals_dropped: Counter,
    forgotten: Counter,
    lag: Histogram,
    sse_clients: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<PhaseLabel, Gauge>::default();
        registry.register(
            "portcullis_requests",
            "Access requests by phase",
            requests.clone(),
        );
        let decisions = Family::<Decision, Counter>::default();
        registry.register(
            "portcullis_decisions",
            "API actions by outcome",
            decisions.clone(),
        );
        let refusals = Family::<Reason, Counter>::default();
        registry.register(
            "portcullis_refusals",
            "Calls refused before any action",
            refusals.clone(),
        );
        let refusals_dropped = Counter::default();
        registry.register(
            "portcullis_refusals_dropped",
            "Refused calls recorded as a count, not one by one (over the rate)",
            refusals_dropped.clone(),
        );
        let forgotten = Counter::default();
        registry.register(
            "portcullis_requests_forgotten",
            "Ended requests deleted from the hub past their retention (their history stays in the audit log)",
            forgotten.clone(),
        );
        let lag = register_lag(
            &mut registry,
            "From a grant's expiresAt to its Expired record",
        );
        let sse_clients = Gauge::default();
        registry.register(
            "portcullis_sse_clients",
            "Consoles connected to the live stream",
            sse_clients.clone(),
        );
        Self {
            registry,
            requests,
            decisions,
            refusals,
            refusals_dropped,
            forgotten,
            lag,
            sse_clients,
        }
    }
}

/// Counts a connected console while it lives.
pub(crate) struct SseClient(Gauge);

impl Drop for SseClient {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub(crate) fn decided(&self, action: &str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.decisions
            .get_or_create(&Decision {
                action: action.to_string(),
                outcome,
            })
            .inc();
    }

    pub(crate) fn refused(&self, why: &str) {
        self.refusals
            .get_or_create(&Reason {
                reason: why.to_string(),
            })
            .inc();
    }

    /// An ended request deleted past its retention.
    pub(crate) fn forgotten(&self) {
        self.forgotten.inc();
    }

    /// Refusals counted but not recorded one by one (over their rate).
    pub(crate) fn dropped_refusals(&self, n: u64) {
        self.refusals_dropped.inc_by(n);
    }

    pub(crate) fn observe(&self, o: &Observed) {
        for lag in &o.expiry_lag {
            self.lag.observe(*lag);
        }
    }

    pub(crate) fn sse_client(&self) -> SseClient {
        self.sse_clients.inc();
        SseClient(self.sse_clients.clone())
    }

    /// The text of `/metrics`, with `phases` (counted by the stream) as
    /// they are now.
    pub(crate) fn render(&self, phases: &BTreeMap<Phase, usize>) -> String {
        for phase in [
            Phase::Pending,
            Phase::Active,
            Phase::Denied,
            Phase::Expired,
            Phase::Revoked,
            Phase::Released,
            Phase::Withdrawn,
            Phase::Failed,
        ] {
            let n = phases.get(&phase).copied().unwrap_or(0);
            self.requests
                .get_or_create(&PhaseLabel {
                    phase: phase.to_string(),
                })
                .set(n as i64);
        }
        encode(&self.registry)
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
            "portcullis_reaper_lag_seconds_bucket{le=\"5.0\"} 2",
            "portcullis_reaper_lag_seconds_count 2",
            "portcullis_sse_clients 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
