//! Recent reasons for a deny or a revoke, offered with `tab`/`↑` in the
//! reason dialog: one typed and cancelled first, then this session's, then
//! the ones on record (every approver's), newest first, each once. What is
//! typed before `tab` narrows them to those starting with it.

use super::app::{AppState, BulkKind};

/// How many recent reasons are offered.
pub const OFFERED: usize = 8;
/// How many decisions on record are read for them, newest first.
const LOOK_BACK: usize = 500;

pub fn reasons(state: &AppState, kind: BulkKind) -> Vec<String> {
    // Newest first from the index of decisions; a bounded look back
    // (reasons repeat, and a dialog must open at once).
    let on_record: Vec<String> = state
        .decisions_on_record(kind)
        .take(LOOK_BACK)
        .filter_map(|r| match kind {
            BulkKind::Deny => r.status.decision.as_ref().and_then(|d| d.reason.clone()),
            BulkKind::Revoke => r.status.revoke_reason.clone(),
        })
        .collect();
    let mut out: Vec<String> = Vec::new();
    let cancelled = state
        .reason_cancelled
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, r)| r.as_str());
    let session = state
        .reasons_used
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, r)| r.as_str());
    for r in cancelled
        .chain(session)
        .chain(on_record.iter().map(String::as_str))
    {
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

/// The offered reasons (indexes into `recent`) that start with `typed`,
/// ignoring case; all of them when nothing is typed.
pub fn starting_with(recent: &[String], typed: &str) -> Vec<usize> {
    let typed = typed.trim_start().to_lowercase();
    recent
        .iter()
        .enumerate()
        .filter(|(_, r)| r.to_lowercase().starts_with(&typed))
        .map(|(i, _)| i)
        .collect()
}
