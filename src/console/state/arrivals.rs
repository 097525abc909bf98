//! Noticing new requests without watching the screen: a new pending
//! request from someone else rings the terminal bell and, where the
//! terminal shows them, raises a desktop notification (see
//! [`crate::console::view::notify`]).
//!
//! Decisions (the issue leaves them open):
//! - "New" is a request created after the console started (less a few
//!   seconds of clock skew between the apiserver and this machine): the
//!   pending requests already there when it starts are on the screen, not
//!   news; a relist or a reconnect that re-sends known requests rings
//!   nothing.
//! - Each request is announced at most once, ever, in this session.
//! - Never the approver's own request.
//! - At most one notification per [`QUIET`]: what arrives meanwhile is
//!   batched into the next ("3 new requests: …").
//! - `notify = false` in the config turns bell and notification off.

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};

use crate::backend::RequestKey;
use crate::domain::sanitize::inert;
use crate::domain::{AccessRequest, Phase};

/// The shortest time between two notifications.
pub(crate) const QUIET: TimeDelta = TimeDelta::seconds(5);
/// How much older than the console's start a request may be and still be
/// news (clocks differ a little).
pub(crate) const SKEW: TimeDelta = TimeDelta::seconds(5);
/// How many requests one notification names.
const NAMED: usize = 3;

/// One notification: the bell and a line of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// How many new requests it is about.
    pub count: usize,
    /// What it says (inert: no terminal controls).
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Arrivals {
    since: DateTime<Utc>,
    announced: HashSet<RequestKey>,
    waiting: Vec<(RequestKey, String)>,
    last: Option<DateTime<Utc>>,
}

impl Arrivals {
    pub fn new(started: DateTime<Utc>) -> Self {
        Self {
            since: started - SKEW,
            announced: HashSet::new(),
            waiting: Vec::new(),
            last: None,
        }
    }

    /// A request was seen (added or changed): queued if it is news to `me`.
    /// `cluster`: what the console calls the request's cluster.
    pub fn offer(&mut self, req: &AccessRequest, me: &str, cluster: &str) {
        if req.phase() != Phase::Pending || req.created_at < self.since || req.requester.user == me
        {
            return;
        }
        let key = RequestKey::of(req);
        if !self.announced.insert(key.clone()) {
            return;
        }
        let what = format!(
            "{} asks for {}{} on {}",
            inert(&req.requester.user, 32),
            inert(&req.role.name, 48),
            match req.namespaces.as_slice() {
                [] => " cluster-wide".to_string(),
                [one] => format!(" in {}", inert(one, 40)),
                many => format!(" in {} namespaces", many.len()),
            },
            inert(cluster, 40),
        );
        self.waiting.push((key, what));
    }

    /// A request that is gone or decided before its notification is due is
    /// not news any more.
    pub fn settled(&mut self, key: &RequestKey) {
        self.waiting.retain(|(k, _)| k != key);
    }

    /// The notification due now, if any (at most one per [`QUIET`]).
    pub fn due(&mut self, now: DateTime<Utc>) -> Option<Notification> {
        if self.waiting.is_empty() || self.last.is_some_and(|t| now - t < QUIET) {
            return None;
        }
        self.last = Some(now);
        let batch = std::mem::take(&mut self.waiting);
        let count = batch.len();
        let text = match batch.as_slice() {
            [(_, one)] => format!("new request: {one}"),
            many => {
                let named: Vec<&str> = many.iter().take(NAMED).map(|(_, w)| w.as_str()).collect();
                let more = count.saturating_sub(NAMED);
                format!(
                    "{count} new requests: {}{}",
                    named.join("; "),
                    if more > 0 {
                        format!("; and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
        };
        Some(Notification { count, text })
    }
}
