//! The reaper: ends grants at their `expiresAt` and expires pending requests
//! past the approval timeout. One timer per request, set from the watch (no
//! polling); everything overdue at start-up is handled at once. Runs inside
//! every console and as `portcullis reaper`; several at once are safe
//! because [`super::expire`] is idempotent and loses races gracefully.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use kube::runtime::watcher;
use serde_json::Value;

use super::{deadline, expire, wire, KubeCluster};
use crate::domain::ValidationLimits;

/// Runs until the watch ends (never, normally).
pub async fn run(cluster: Arc<KubeCluster>, limits: ValidationLimits) {
    let mut deadlines: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut stream = watcher(cluster.requests(), watcher::Config::default()).boxed();
    loop {
        let next = deadlines
            .iter()
            .min_by_key(|(_, at)| **at)
            .map(|(n, at)| (n.clone(), *at));
        let sleep = match &next {
            Some((_, at)) => (*at - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            event = stream.try_next() => match event {
                Ok(Some(watcher::Event::Apply(o) | watcher::Event::InitApply(o))) => {
                    let value = serde_json::to_value(&o).unwrap_or(Value::Null);
                    let req = wire::request_from_json(&cluster.context, &value);
                    match deadline(&req, &limits) {
                        Some(at) => deadlines.insert(req.name, at),
                        None => deadlines.remove(&req.name),
                    };
                }
                Ok(Some(watcher::Event::Delete(o))) => {
                    if let Some(name) = o.metadata.name {
                        deadlines.remove(&name);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(cluster = %cluster.context, error = %e, "reaper watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = tokio::time::sleep(sleep), if next.is_some() => {
                // Everything due now, concurrently: a burst of grants ending
                // together must not queue behind each other.
                let now = Utc::now();
                let due: Vec<String> = deadlines.iter().filter(|(_, at)| **at <= now).map(|(n, _)| n.clone()).collect();
                let results = futures::future::join_all(due.iter().map(|name| expire(&cluster, name, &limits))).await;
                for (name, result) in due.into_iter().zip(results) {
                    match result {
                        Ok(done) => {
                            tracing::info!(cluster = %cluster.context, %name, done, "reaped");
                            // The watch brings the new state; until then don't spin.
                            deadlines.remove(&name);
                        }
                        Err(e) => {
                            tracing::warn!(cluster = %cluster.context, %name, error = %e, "reap failed; retrying in 1s");
                            deadlines.insert(name, Utc::now() + chrono::TimeDelta::seconds(1));
                        }
                    }
                }
            }
        }
    }
}
