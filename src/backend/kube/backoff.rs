//! How soon a watch comes back after an error: kube-runtime's exponential
//! backoff, tuned to come back quickly (a console or a reaper that lags
//! after an apiserver restart shows nothing new and ends nothing due).

use std::time::Duration;

use kube::runtime::watcher::ExponentialBackoff;

/// 250 ms, doubling, at most 2 s; without jitter (one watcher per cluster).
pub(crate) fn quick() -> ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(2))
        .with_factor(2.0)
        .without_max_times()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comes_back_quickly_and_never_gives_up() {
        let waits: Vec<Duration> = quick().take(8).collect();
        assert_eq!(waits.len(), 8);
        assert_eq!(waits[0], Duration::from_millis(250));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(2)));
        assert_eq!(waits[7], Duration::from_secs(2));
    }
}
