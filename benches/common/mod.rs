//! What the bench binaries share (`#[path = "common/mod.rs"] mod common;`):
//! the binary's allocator, resident memory, percentiles.
#![allow(dead_code)] // each bench uses some of it

use std::time::Duration;

/// As the binary (`main.rs`): numbers of memory and latency are its own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident memory of a process (`self` or a pid), in KiB.
pub(crate) fn rss_kib_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory of this process, in KiB.
pub(crate) fn rss_kib() -> u64 {
    rss_kib_of("self")
}

/// The `p` percentile (0..=1) of sorted samples.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
