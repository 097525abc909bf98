//! Durations as users type and read them (`30m`, `1h 30m`, `90s`), parsed by
//! `humantime`, shown compactly (`1h30m`, `4m05s`).

use std::time::Duration;

use thiserror::Error;

/// What `spec.duration` may look like: what `humantime` reads (`30m`,
/// `1h30m`, `2h 5m`, `90s`), checked by the apiserver.
pub const DURATION_PATTERN: &str = r"^\s*([0-9]+(\.[0-9]+)?\s*(nanos|nsec|ns|usec|us|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y)\s*)+$";

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DurationError {
    #[error("'{0}' is not a duration: use forms like 30m, 1h, 1h30m")]
    Invalid(String),
    #[error("a duration must be longer than zero")]
    Zero,
    #[error("'{0}' is longer than any grant or timeout can be (at most 366d)")]
    TooLong(String),
}

/// The longest duration anyone types for a grant, a shortened end or a
/// timeout: a bound that keeps every clock sum far from overflowing.
pub const MAX: Duration = Duration::from_secs(366 * 86_400);

/// Parses a user-typed duration such as `30m`, `1h30m`, `2h 5m`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let d = humantime::parse_duration(trimmed)
        .map_err(|_| DurationError::Invalid(crate::domain::sanitize::inert(trimmed, 32).into()))?;
    if d.is_zero() {
        return Err(DurationError::Zero);
    }
    if d > MAX {
        return Err(DurationError::TooLong(
            crate::domain::sanitize::inert(trimmed, 32).into(),
        ));
    }
    Ok(d)
}

/// Compact human form for tables: `2d3h`, `1h30m`, `4m05s`, `42s`.
pub fn format(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, (s / 3600) % 24, (s / 60) % 60, s % 60);
    if days > 0 {
        if hours > 0 {
            format!("{days}d{hours}h")
        } else {
            format!("{days}d")
        }
    } else if hours > 0 {
        if mins > 0 {
            format!("{hours}h{mins:02}m")
        } else {
            format!("{hours}h")
        }
    } else if mins > 0 {
        if secs > 0 {
            format!("{mins}m{secs:02}s")
        } else {
            format!("{mins}m")
        }
    } else {
        format!("{secs}s")
    }
}

/// Every unit, nothing dropped (`1d23h59m59s`, `1h30m`, `45s`): what is
/// stored and sent, and what a dialog states a grant will be, where
/// [`format`]'s rounding would make it say less than is granted.
pub fn format_exact(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86_400, "d"),
        ((s / 3600) % 24, "h"),
        ((s / 60) % 60, "m"),
        (s % 60, "s"),
    ];
    let out: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if out.is_empty() {
        "0s".into()
    } else {
        out
    }
}

/// Formats a signed chrono duration (negative shown as `0s`).
pub fn format_chrono(d: chrono::TimeDelta) -> String {
    format(d.to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse(" 2h 5m "), Ok(Duration::from_secs(7500)));
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn exact_form_loses_nothing_and_parses_back() {
        let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
        for secs in [
            1, 59, 60, 61, 3599, 3600, 5415, 86_399, 86_400, 171_999, 31_622_400,
        ] {
            let d = Duration::from_secs(secs);
            let text = format_exact(d);
            assert_eq!(parse(&text), Ok(d), "{text}");
            assert!(pattern.is_match(&text), "{text}");
        }
        assert_eq!(format_exact(Duration::from_secs(171_999)), "1d23h46m39s");
        assert_eq!(format_exact(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn rejects_what_no_clock_can_add() {
        assert!(matches!(parse("300000y"), Err(DurationError::TooLong(_))));
        assert!(matches!(parse("367d"), Err(DurationError::TooLong(_))));
        assert_eq!(parse("366d"), Ok(MAX));
        assert!(parse("18446744073709551615s").is_err());
    }

    #[test]
    fn rejects_garbage_and_zero() {
        assert!(matches!(parse("soon"), Err(DurationError::Invalid(_))));
        assert!(matches!(parse("-5m"), Err(DurationError::Invalid(_))));
        assert_eq!(parse("0s"), Err(DurationError::Zero));
        let msg = parse("\x1b[31m").unwrap_err().to_string();
        assert!(!msg.contains('\x1b'));
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format(Duration::from_secs(42)), "42s");
        assert_eq!(format(Duration::from_secs(245)), "4m05s");
        assert_eq!(format(Duration::from_secs(1800)), "30m");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::from_secs(97_200)), "1d3h");
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_chrono(chrono::TimeDelta::seconds(-5)), "0s");
    }
}
