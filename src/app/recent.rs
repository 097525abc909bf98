//! Recent reasons for a deny or a revoke, offered with `tab`/`↑` in the
//! reason dialog: this session's first, then the ones on record (every
//! approver's), newest first, each once.

use super::state::{AppState, BulkKind};
use crate::domain::request::Verdict;
use crate::domain::Phase;

/// How many recent reasons are offered.
pub const OFFERED: usize = 8;

pub fn reasons(state: &AppState, kind: BulkKind) -> Vec<String> {
    let mut on_record: Vec<(chrono::DateTime<chrono::Utc>, &str)> = state
        .entries
        .values()
        .filter_map(|e| {
            let s = &e.req.status;
            match kind {
                BulkKind::Deny => s
                    .decision
                    .as_ref()
                    .filter(|d| d.verdict == Verdict::Denied)
                    .and_then(|d| d.reason.as_deref().map(|r| (d.at, r))),
                BulkKind::Revoke => (e.req.phase() == Phase::Revoked)
                    .then(|| s.revoke_reason.as_deref().zip(s.ended_at))
                    .flatten()
                    .map(|(r, at)| (at, r)),
            }
        })
        .collect();
    on_record.sort_by(|a, b| b.cmp(a));
    let mut out: Vec<String> = Vec::new();
    let session = state
        .reasons_used
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, r)| r.as_str());
    for r in session.chain(on_record.into_iter().map(|(_, r)| r)) {
        // Another approver's words: inert before they reach an input.
        let r = crate::domain::sanitize::inert(r.trim(), 1024).into_owned();
        if !r.is_empty() && !out.contains(&r) {
            out.push(r);
        }
        if out.len() == OFFERED {
            break;
        }
    }
    out
}
