//! `request --wait`: block until the request is decided, say the outcome,
//! and exit with a code a script can branch on (README, "Waiting for a
//! decision"). Live from the backend's stream (the apiserver's watch in
//! direct mode, the server's event stream with `--backend`), not by polling.
//!
//! A pending request past its cluster's approval timeout can never be
//! approved (approve refuses it), so it counts as expired here even
//! before a reaper marks it.

use std::time::Duration;

use chrono::TimeDelta;
use thiserror::Error;

use crate::backend::{BackendError, BackendEvent, Caller, RequestKey};
use crate::cli::commands::verbs::VerbBackend;
use crate::domain::sanitize::inert;
use crate::domain::{duration, AccessRequest, Phase, Verdict};

/// How a wait ended; each has its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Approved: the grant is live.
    Approved,
    /// An approver said no.
    Denied,
    /// It will never be granted: expired undecided, withdrawn, failed, or
    /// approved but already over before it was seen.
    Ended,
    /// `--timeout` passed first; the request stays pending.
    TimedOut,
}

impl Outcome {
    /// 1 is any error and 2 a usage error (clap's), so the outcomes start at 3.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Outcome::Approved => 0,
            Outcome::Denied => 3,
            Outcome::Ended => 4,
            Outcome::TimedOut => 5,
        }
    }
}

/// The binary's exit with an outcome's code; `message` (if any) goes to
/// stderr as one line, after the outcome printed on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", message.as_deref().unwrap_or("the request was not approved"))]
pub(crate) struct Exit {
    pub code: u8,
    pub message: Option<String>,
}

/// What the wait saw last: `None` when the request was deleted (withdrawn).
#[derive(Debug, Clone)]
pub(crate) struct Waited {
    pub outcome: Outcome,
    pub request: Option<AccessRequest>,
}

/// Whether `r` is decided, as of `now` on the cluster's clock.
fn decided(
    r: &AccessRequest,
    now: chrono::DateTime<chrono::Utc>,
    approval_timeout: Duration,
) -> Option<Outcome> {
    match r.phase() {
        Phase::Active => Some(Outcome::Approved),
        Phase::Denied => Some(Outcome::Denied),
        Phase::Pending => {
            let timeout = TimeDelta::from_std(approval_timeout).unwrap_or(TimeDelta::MAX);
            (now - r.created_at >= timeout).then_some(Outcome::Ended)
        }
        _ => Some(Outcome::Ended),
    }
}

/// Waits for `key` to be decided, or `timeout` to pass.
pub(crate) async fn wait(
    backend: &dyn VerbBackend,
    key: &RequestKey,
    timeout: Option<Duration>,
) -> Result<Waited, BackendError> {
    // Subscribed before reading, so a decision in between is not lost.
    let mut events = backend.watch_requests();
    let mut current = match backend.get(key, Caller::Requester).await {
        Ok(r) => r,
        Err(BackendError::NotFound(_)) => {
            return Ok(Waited {
                outcome: Outcome::Ended,
                request: None,
            })
        }
        Err(e) => return Err(e),
    };
    let mut approval_timeout = backend.limits(&key.cluster).await.approval_timeout;
    let give_up = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        let now = backend.now();
        if let Some(outcome) = decided(&current, now, approval_timeout) {
            return Ok(Waited {
                outcome,
                request: Some(current),
            });
        }
        // Wake when the approval timeout passes, or ours.
        let left = TimeDelta::from_std(approval_timeout).unwrap_or(TimeDelta::MAX)
            - (now - current.created_at);
        let expires = tokio::time::Instant::now()
            + left
                .to_std()
                .unwrap_or_default()
                .min(Duration::from_secs(24 * 3600));
        let wake = give_up.map_or(expires, |g| g.min(expires));
        tokio::select! {
            event = events.recv() => match event {
                Some(BackendEvent::Upsert(r)) if RequestKey::of(&r) == *key => current = *r,
                Some(BackendEvent::Removed(k)) if k == *key => {
                    return Ok(Waited { outcome: Outcome::Ended, request: None });
                }
                Some(BackendEvent::Limits { cluster, limits }) if cluster == key.cluster => {
                    approval_timeout = limits.approval_timeout;
                }
                Some(_) => {}
                None => {
                    return Err(BackendError::Unavailable {
                        cluster: key.cluster.clone(),
                        message: format!("the stream ended while waiting for {}", key.name),
                    })
                }
            },
            _ = tokio::time::sleep_until(wake) => {
                if give_up.is_some_and(|g| tokio::time::Instant::now() >= g) {
                    return Ok(Waited { outcome: Outcome::TimedOut, request: Some(current) });
                }
            }
        }
    }
}

/// The outcome in one line, for stdout (`shown`: the name as the verb
/// prints it). Requester-facing text from approvers is made inert.
pub(crate) fn describe(waited: &Waited, shown: &str) -> String {
    let Some(r) = &waited.request else {
        return format!("{shown} is withdrawn (deleted)\n");
    };
    let by = r
        .status
        .decision
        .as_ref()
        .map(|d| format!(" by {}", inert(&d.by, 100)))
        .unwrap_or_default();
    let why = |t: Option<&str>| {
        t.filter(|t| !t.trim().is_empty())
            .map(|t| format!(": {}", inert(t, 300)))
            .unwrap_or_default()
    };
    match waited.outcome {
        Outcome::Approved => format!(
            "approved {shown}{by}: {} {} in {} until {}\n",
            r.role.kind,
            inert(&r.role.name, 100),
            crate::domain::request::scope_text(r.granted_namespaces()),
            r.status
                .expires_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        ),
        Outcome::Denied => format!(
            "denied {shown}{by}{}\n",
            why(r.status.decision.as_ref().and_then(|d| d.reason.as_deref()))
        ),
        Outcome::Ended => {
            let approved = r
                .status
                .decision
                .as_ref()
                .is_some_and(|d| d.verdict == Verdict::Approved);
            match r.phase() {
                Phase::Pending | Phase::Expired if !approved => {
                    format!("{shown} expired: not decided within the approval timeout\n")
                }
                phase if approved => format!(
                    "approved {shown}{by}, but the grant is already {}{}\n",
                    phase.as_str().to_lowercase(),
                    why(r.status.message.as_deref())
                ),
                phase => format!(
                    "{shown} is {}{}\n",
                    phase.as_str().to_lowercase(),
                    why(r.status.message.as_deref())
                ),
            }
        }
        Outcome::TimedOut => format!("{shown} is still pending\n"),
    }
}

/// The one stderr line for `--timeout`.
pub(crate) fn timed_out(shown: &str, after: Duration) -> String {
    format!(
        "{shown} is still pending after {} (--timeout); it stays pending: watch it with `portcullis get requests {shown} -w`",
        duration::format(after)
    )
}
