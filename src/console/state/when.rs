//! Times as the approver reads them: clock times in their local time zone
//! (`TZ`, or a fixed offset the tests inject), with UTC beside it where a
//! grant's end is decided; ages in one precision.

use chrono::{DateTime, FixedOffset, Local, Offset, TimeDelta, TimeZone, Utc};

use crate::domain::duration;

/// Where clock times are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The system's local time (`TZ`, `/etc/localtime`).
    System,
    /// A fixed offset: UTC by default, so tests do not depend on the host.
    Fixed(FixedOffset),
}

impl Default for Zone {
    fn default() -> Self {
        Zone::Fixed(FixedOffset::east_opt(0).expect("zero offset"))
    }
}

impl Zone {
    pub fn offset(self, at: DateTime<Utc>) -> FixedOffset {
        match self {
            Zone::System => Local.offset_from_utc_datetime(&at.naive_utc()).fix(),
            Zone::Fixed(o) => o,
        }
    }

    fn local(self, at: DateTime<Utc>) -> DateTime<FixedOffset> {
        at.with_timezone(&self.offset(at))
    }

    fn is_utc(self, at: DateTime<Utc>) -> bool {
        self.offset(at).local_minus_utc() == 0
    }
}

/// `05:12` when `at` falls on the same local day as `now`, else
/// `Nov 25 17:12`.
pub fn clock(zone: Zone, now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let (l, n) = (zone.local(at), zone.local(now));
    if l.date_naive() == n.date_naive() {
        l.format("%H:%M").to_string()
    } else {
        l.format("%b %d %H:%M").to_string()
    }
}

/// A clock time where the exact end matters: `06:12 (05:12 UTC)` in a
/// zone other than UTC, else `05:12 UTC`.
pub fn clock_utc(zone: Zone, now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let utc = if at.date_naive() == now.date_naive() {
        at.format("%H:%M UTC").to_string()
    } else {
        at.format("%b %d %H:%M UTC").to_string()
    };
    if zone.is_utc(at) {
        utc
    } else {
        format!("{} ({utc})", clock(zone, now, at))
    }
}

/// An age in one precision: seconds only under a minute, then minutes,
/// hours and minutes, days and hours (`42s`, `55m`, `4h48m`, `2d3h`).
pub fn age(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    if s < 60 {
        return format!("{s}s");
    }
    let m = s / 60;
    duration::format(std::time::Duration::from_secs(m as u64 * 60))
}

/// `4h48m ago`.
pub fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    format!("{} ago", age(now - at))
}

/// A countdown to `at`, to the second under an hour (`in 2m57s`).
pub fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    format!("in {}", duration::format_chrono(at - now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, h, m, 0).unwrap()
    }

    #[test]
    fn ages_have_one_precision() {
        assert_eq!(age(TimeDelta::seconds(42)), "42s");
        assert_eq!(age(TimeDelta::seconds(55 * 60 + 1)), "55m");
        assert_eq!(age(TimeDelta::seconds(4 * 3600 + 48 * 60 + 59)), "4h48m");
        assert_eq!(age(TimeDelta::hours(51)), "2d3h");
        assert_eq!(age(TimeDelta::seconds(-5)), "0s");
    }

    #[test]
    fn clocks_are_local_with_utc_where_it_matters() {
        let utc = Zone::default();
        assert_eq!(clock(utc, t(3, 0), t(5, 12)), "05:12");
        assert_eq!(clock_utc(utc, t(3, 0), t(5, 12)), "05:12 UTC");
        let cet = Zone::Fixed(FixedOffset::east_opt(3600).unwrap());
        assert_eq!(clock(cet, t(3, 0), t(5, 12)), "06:12");
        assert_eq!(clock_utc(cet, t(3, 0), t(5, 12)), "06:12 (05:12 UTC)");
        let yesterday = t(3, 0) - TimeDelta::hours(10);
        assert_eq!(clock(utc, t(3, 0), yesterday), "Nov 25 17:00");
        assert_eq!(until(t(3, 0), t(3, 3)), "in 3m");
    }
}
