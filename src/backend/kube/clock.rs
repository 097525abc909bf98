//! One clock per cluster: the apiserver's.
//!
//! A grant's `expiresAt` and every reaper's "is it due?" are computed from
//! the apiserver's time, never from the laptop running the console: an
//! approver whose clock is an hour off must neither lengthen nor shorten a
//! grant, and two reapers on different machines must agree on when it ends.
//! The apiserver has no "what time is it" call, but every response carries
//! an HTTP `Date` header (second resolution); the skew between it and the
//! local clock, taken at the midpoint of the round trip, is good to about
//! half a second — finer than `expiresAt`, which is stored in seconds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use http::Request;

/// How old a skew measurement may be before an approval measures again.
pub const RESYNC_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct ClusterClock {
    /// What is known of (apiserver time − local time), in milliseconds: it
    /// lies in [lo, hi]. Each measurement gives such an interval (the
    /// header truncates to the second, and the reply took some time);
    /// successive ones are intersected, so the estimate sharpens.
    bounds: Mutex<Option<(i64, i64)>>,
    /// The midpoint of the bounds, for lock-free reads.
    offset_ms: AtomicI64,
    /// The lower bound, for lock-free reads.
    lower_ms: AtomicI64,
    /// When the offset was last measured (None: never).
    synced: Mutex<Option<Instant>>,
    /// Test hook: pretend the local clock is off by this much.
    local_error: TimeDelta,
}

impl Default for ClusterClock {
    fn default() -> Self {
        Self::with_local_error(TimeDelta::zero())
    }
}

/// Reads an HTTP `Date` header (`Fri, 27 Nov 2026 05:39:34 GMT`).
pub fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl ClusterClock {
    /// A clock whose local reading is off by `error` (tests inject skew).
    pub fn with_local_error(error: TimeDelta) -> Self {
        Self {
            bounds: Mutex::new(None),
            offset_ms: AtomicI64::new(0),
            lower_ms: AtomicI64::new(0),
            synced: Mutex::new(None),
            local_error: error,
        }
    }

    /// This machine's clock (with the injected error, if any).
    pub fn local_now(&self) -> DateTime<Utc> {
        Utc::now() + self.local_error
    }

    /// The apiserver's time, as best known (decisions are stamped with it).
    pub fn now(&self) -> DateTime<Utc> {
        self.local_now() + TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// A time the apiserver's clock has certainly reached: what "is this
    /// grant's end due?" asks, so no grant ends early by the cluster's clock.
    pub fn now_at_least(&self) -> DateTime<Utc> {
        self.local_now() + TimeDelta::milliseconds(self.lower_ms.load(Ordering::Relaxed))
    }

    pub fn offset(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    fn is_fresh(&self) -> bool {
        self.synced
            .lock()
            .ok()
            .and_then(|s| *s)
            .is_some_and(|at| at.elapsed() < RESYNC_AFTER)
    }

    /// Records one measurement: the server said `server` (whole seconds)
    /// between local `sent` and `received`.
    pub fn record(&self, sent: DateTime<Utc>, received: DateTime<Utc>, server: DateTime<Utc>) {
        // The server's true time at the reply was in [server, server + 1 s),
        // read somewhere between sent and received.
        let lo = (server - received).num_milliseconds();
        let hi = (server + TimeDelta::seconds(1) - sent).num_milliseconds();
        let Ok(mut bounds) = self.bounds.lock() else {
            return;
        };
        let merged = match *bounds {
            // Intersect with what was known; disjoint means a clock jumped:
            // start over from this measurement.
            Some((a, b)) if lo.max(a) <= hi.min(b) => (lo.max(a), hi.min(b)),
            _ => (lo, hi),
        };
        *bounds = Some(merged);
        self.lower_ms.store(merged.0, Ordering::Relaxed);
        self.offset_ms
            .store((merged.0 + merged.1) / 2, Ordering::Relaxed);
        if let Ok(mut s) = self.synced.lock() {
            *s = Some(Instant::now());
        }
    }

    /// Measures the skew with one cheap request (`GET /version`).
    pub async fn sync(&self, client: &kube::Client) -> Result<TimeDelta, kube::Error> {
        let request = Request::get("/version")
            .body(kube::client::Body::from(Vec::new()))
            .map_err(kube::Error::HttpError)?;
        let sent = self.local_now();
        let response = client.send(request).await?;
        let received = self.local_now();
        if let Some(server) = response
            .headers()
            .get(http::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
        {
            self.record(sent, received, server);
        }
        Ok(self.offset())
    }

    /// Measures again when the last measurement is stale; a failed
    /// measurement keeps the previous offset (logged).
    pub async fn ensure_fresh(&self, client: &kube::Client) {
        if self.is_fresh() {
            return;
        }
        if let Err(e) = self.sync(client).await {
            tracing::warn!(error = %e, "could not read the apiserver's clock; using the last known skew");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn reads_http_dates() {
        assert_eq!(
            parse_http_date("Fri, 27 Nov 2026 05:39:34 GMT"),
            Some(t("2026-11-27T05:39:34Z"))
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn an_hour_fast_laptop_reads_server_time() {
        let clock = ClusterClock::with_local_error(TimeDelta::hours(1));
        let sent = clock.local_now();
        let received = sent + TimeDelta::milliseconds(20);
        // The server's clock is right: it reads an hour earlier.
        let server = sent - TimeDelta::hours(1);
        let server_whole = DateTime::from_timestamp(server.timestamp(), 0).unwrap();
        clock.record(sent, received, server_whole);
        let error = (clock.now() - Utc::now()).num_milliseconds().abs();
        assert!(error <= 1_000, "off by {error} ms");
        assert!(
            clock.now_at_least() <= Utc::now() + TimeDelta::milliseconds(1),
            "a lower bound"
        );
    }

    #[test]
    fn measurements_narrow_the_bounds() {
        let clock = ClusterClock::default();
        let base = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        // True offset 0; replies at .2 s and .7 s into a second.
        let at = |ms: i64| base + TimeDelta::milliseconds(ms);
        clock.record(at(190), at(210), base);
        clock.record(at(1690), at(1710), base + TimeDelta::seconds(1));
        let lower = clock.lower_ms.load(Ordering::Relaxed);
        let mid = clock.offset_ms.load(Ordering::Relaxed);
        assert!((-310..=0).contains(&lower), "{lower}");
        assert!(mid.abs() <= 310, "{mid}");
    }
}
