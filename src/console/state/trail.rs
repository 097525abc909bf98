//! The console's audit trail: what the server sent (its signed trail) or,
//! on the demo and directly on clusters, what this console saw change —
//! the same events, from the same [`crate::audit::derive`]. Bounded.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};

use crate::audit::derive::{self, Context};
use crate::audit::Event;
use crate::backend::RequestKey;
use crate::domain::AccessRequest;

/// How many events the console keeps.
pub(crate) const KEEP: usize = 5_000;

#[derive(Debug, Default)]
pub struct Trail {
    events: VecDeque<Event>,
    ids: HashSet<String>,
}

impl Trail {
    /// Kept in the order things happened (a server's first records are the
    /// history it read at start, in the order it read them), so readers
    /// never sort.
    pub fn push(&mut self, e: Event) {
        if !self.ids.insert(e.id.clone()) {
            return;
        }
        let at = self.events.partition_point(|x| x.time <= e.time);
        self.events.insert(at, e);
        if self.events.len() > KEEP {
            if let Some(old) = self.events.pop_front() {
                self.ids.remove(&old.id);
            }
        }
    }

    /// The events of a change this console saw (not on the server backend:
    /// there the server's own trail arrives instead); `mine` when it is
    /// this console's own operation.
    pub fn observe(
        &mut self,
        old: Option<&AccessRequest>,
        new: &AccessRequest,
        mine: Option<crate::audit::Actor>,
        recorded_by: &str,
        now: DateTime<Utc>,
    ) {
        // A request first seen is history, not news: its story is told by
        // `timeline` from the object when it is shown.
        let Some(old) = old else { return };
        let ctx = Context {
            actor: mine,
            recorded_by: recorded_by.into(),
            risk: None,
            now,
        };
        for e in derive::changes(Some(old), new, &ctx) {
            self.push(e);
        }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Newest first (by when it happened).
    pub fn recent(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().rev()
    }

    /// A request's story, oldest first: what its object tells, and what
    /// the trail adds (refusals, verdicts, who shortened).
    pub fn timeline(&self, r: &AccessRequest, recorded_by: &str, now: DateTime<Utc>) -> Vec<Event> {
        let key = RequestKey::of(r);
        let ctx = Context {
            actor: None,
            recorded_by: recorded_by.into(),
            risk: None,
            now,
        };
        let mut out = derive::timeline(r, &ctx);
        let known: HashSet<String> = out.iter().map(|e| e.id.clone()).collect();
        out.extend(
            self.events
                .iter()
                .filter(|e| e.cluster == key.cluster && e.request == key.name)
                .filter(|e| !known.contains(&e.id))
                .cloned(),
        );
        out.sort_by_key(|e| e.time);
        out
    }
}
