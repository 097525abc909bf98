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

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use http::Request;

/// How old a skew measurement may be before an approval measures again.
pub const RESYNC_AFTER: Duration = Duration::from_secs(60);

/// What is known of the apiserver's time at one instant of this machine's
/// monotonic clock: it lies in [lo, hi].
#[derive(Debug, Clone, Copy)]
struct Bounds {
    anchor: Instant,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
}

impl Bounds {
    fn at(&self, when: Instant) -> (DateTime<Utc>, DateTime<Utc>) {
        let d = signed(when, self.anchor);
        (self.lo + d, self.hi + d)
    }
}

fn signed(a: Instant, b: Instant) -> TimeDelta {
    match a.checked_duration_since(b) {
        Some(d) => TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX),
        None => -TimeDelta::from_std(b.duration_since(a)).unwrap_or(TimeDelta::MAX),
    }
}

/// The apiserver's clock, followed on this machine's monotonic clock: once
/// measured, a step of the laptop's wall clock changes nothing. Each
/// measurement bounds the server's time (the header truncates to the
/// second, and the reply took some time); successive ones are intersected,
/// so the estimate sharpens.
#[derive(Debug)]
pub struct ClusterClock {
    bounds: Mutex<Option<Bounds>>,
    /// When the clock was last measured (None: never).
    synced: Mutex<Option<Instant>>,
    /// Test hook: pretend the local wall clock is off by this much (it only
    /// matters before the first measurement).
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
            synced: Mutex::new(None),
            local_error: error,
        }
    }

    /// This machine's wall clock (with the injected error, if any).
    pub fn local_now(&self) -> DateTime<Utc> {
        Utc::now() + self.local_error
    }

    fn bounds_now(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let b = (*self.bounds.lock().ok()?)?;
        Some(b.at(Instant::now()))
    }

    /// The apiserver's time, as best known (decisions are stamped with it);
    /// the local clock until the first measurement.
    pub fn now(&self) -> DateTime<Utc> {
        match self.bounds_now() {
            Some((lo, hi)) => lo + (hi - lo) / 2,
            None => self.local_now(),
        }
    }

    /// A time the apiserver's clock has certainly reached: what "is this
    /// grant's end due?" asks, so no grant ends early by the cluster's
    /// clock. Before any measurement, the local clock (the reaper measures
    /// before it acts).
    pub fn now_at_least(&self) -> DateTime<Utc> {
        match self.bounds_now() {
            Some((lo, _)) => lo,
            None => self.local_now(),
        }
    }

    /// Whether the apiserver's clock has been measured.
    pub fn is_synced(&self) -> bool {
        self.bounds.lock().is_ok_and(|b| b.is_some())
    }

    /// The apiserver's clock minus this machine's wall clock (for logs).
    pub fn offset(&self) -> TimeDelta {
        self.now() - self.local_now()
    }

    fn is_fresh(&self) -> bool {
        self.synced
            .lock()
            .ok()
            .and_then(|s| *s)
            .is_some_and(|at| at.elapsed() < RESYNC_AFTER)
    }

    /// Records one measurement: the server said `server` (whole seconds) in
    /// a reply to a request sent at `sent` and received at `received`.
    pub fn record(&self, sent: Instant, received: Instant, server: DateTime<Utc>) {
        // When the reply arrived, the server's clock read at least what the
        // header says, and at most its next second plus the trip.
        let lo = server;
        let hi = server + TimeDelta::seconds(1) + signed(received, sent);
        let Ok(mut bounds) = self.bounds.lock() else {
            return;
        };
        let merged = match *bounds {
            // Intersect with what was known; disjoint means a clock jumped
            // (the server's): start over from this measurement.
            Some(b) => {
                let (a, z) = b.at(received);
                if lo.max(a) <= hi.min(z) {
                    (lo.max(a), hi.min(z))
                } else {
                    (lo, hi)
                }
            }
            None => (lo, hi),
        };
        *bounds = Some(Bounds {
            anchor: received,
            lo: merged.0,
            hi: merged.1,
        });
        if let Ok(mut s) = self.synced.lock() {
            *s = Some(Instant::now());
        }
    }

    /// Measures the skew with one cheap request (`GET /version`).
    pub async fn sync(&self, client: &kube::Client) -> Result<TimeDelta, kube::Error> {
        let request = Request::get("/version")
            .body(kube::client::Body::from(Vec::new()))
            .map_err(kube::Error::HttpError)?;
        let sent = Instant::now();
        let response = client.send(request).await?;
        let received = Instant::now();
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
        let sent = Instant::now();
        let received = sent + Duration::from_millis(20);
        // The server's clock is right; the laptop's is an hour fast.
        let server = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        clock.record(sent, received, server);
        let error = (clock.now() - Utc::now()).num_milliseconds().abs();
        assert!(error <= 1_100, "off by {error} ms");
        assert!(
            clock.now_at_least() <= Utc::now() + TimeDelta::milliseconds(25),
            "a lower bound"
        );
    }

    #[test]
    fn measurements_narrow_the_bounds() {
        let clock = ClusterClock::default();
        let i0 = Instant::now();
        let at = |ms: u64| i0 + Duration::from_millis(ms);
        // The server's clock reads a whole second W at i0 + 200 ms.
        let w = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let truth = |ms: u64| w + TimeDelta::milliseconds(ms as i64 - 200);
        clock.record(at(190), at(210), w);
        clock.record(at(1690), at(1710), w + TimeDelta::seconds(1));
        let b = (*clock.bounds.lock().unwrap()).unwrap();
        let (lo, hi) = b.at(at(1710));
        assert!(lo <= truth(1710) && truth(1710) <= hi, "{lo} {hi}");
        assert!(hi - lo <= TimeDelta::milliseconds(520), "{}", hi - lo);
    }
}
