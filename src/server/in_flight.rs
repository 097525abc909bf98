//! Actions in flight at a call site, and what the watch saw of them
//! meanwhile.
//!
//! The call site knows the verified caller; the watch only knows what the
//! object says (`request-object`). Both derive the same events with the
//! same ids and the first to record one wins, so what the watch sees of a
//! request while an action on it is in flight waits until the call site
//! has recorded: the record then names the caller as verified, whichever
//! of the two the runtime happened to run first.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::audit::Event;
use crate::domain::{AccessRequest, RequestKey};

/// At most this many changes are held at once.
const HELD_MAX: usize = 10_000;

/// Events held back, with the request they are about.
pub(crate) type Held = Vec<(Vec<Event>, AccessRequest)>;

#[derive(Default)]
pub(crate) struct InFlight {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Actions in flight on each request.
    keys: HashMap<RequestKey, usize>,
    /// Creations in flight (the new request's name is not known before).
    creates: usize,
    held: Vec<Held1>,
}

struct Held1 {
    key: RequestKey,
    new: bool,
    events: Vec<Event>,
    request: AccessRequest,
}

impl Inner {
    fn busy(&self, key: &RequestKey, new: bool) -> bool {
        self.keys.contains_key(key) || (new && self.creates > 0)
    }
}

impl InFlight {
    /// An action on `key` (None: a creation) starts.
    pub(crate) fn begin(&self, key: Option<&RequestKey>) {
        let mut i = self.lock();
        match key {
            Some(k) => *i.keys.entry(k.clone()).or_default() += 1,
            None => i.creates += 1,
        }
    }

    /// The action on `key` ended (recorded or failed): what was held for
    /// requests no longer in flight, to record now.
    pub(crate) fn end(&self, key: Option<&RequestKey>) -> Held {
        let mut i = self.lock();
        match key {
            Some(k) => {
                if let Some(n) = i.keys.get_mut(k) {
                    *n -= 1;
                    if *n == 0 {
                        i.keys.remove(k);
                    }
                }
            }
            None => i.creates = i.creates.saturating_sub(1),
        }
        let held = std::mem::take(&mut i.held);
        let (wait, go): (Vec<_>, Vec<_>) = held.into_iter().partition(|h| i.busy(&h.key, h.new));
        i.held = wait;
        go.into_iter().map(|h| (h.events, h.request)).collect()
    }

    /// Holds `events` about `request` (`new`: first seen now) when an
    /// action on it is in flight; gives them back otherwise.
    pub(crate) fn hold(
        &self,
        events: Vec<Event>,
        request: &AccessRequest,
        new: bool,
    ) -> Option<Vec<Event>> {
        let key = RequestKey::of(request);
        let mut i = self.lock();
        // Bounded: past HELD_MAX (a flood of creates that never end) what
        // comes is recorded at once, as the object says.
        if !i.busy(&key, new) || i.held.len() >= HELD_MAX {
            return Some(events);
        }
        i.held.push(Held1 {
            key,
            new,
            events,
            request: request.clone(),
        });
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding it leaves nothing half-done worth refusing.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str) -> AccessRequest {
        use crate::domain::request::Status;
        use crate::domain::{Credentials, RoleRef, Subject};
        AccessRequest {
            name: name.into(),
            uid: None,
            cluster: "prod".into(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            requester: Subject::new("alice", &["dev"]),
            role: RoleRef::cluster_role("edit"),
            namespaces: vec!["payments".into()],
            duration: std::time::Duration::from_secs(1800),
            reason: "INC-1".into(),
            ticket: None,
            credentials: Credentials::Identity,
            extends: None,
            status: Status::default(),
            malformed: None,
        }
    }

    #[test]
    fn what_the_watch_sees_of_an_action_in_flight_waits_for_it() {
        let f = InFlight::default();
        let a = req("a");
        let b = req("b");
        let ka = RequestKey::of(&a);
        // Nothing in flight: recorded at once.
        assert!(f.hold(vec![], &a, false).is_some());
        f.begin(Some(&ka));
        assert!(f.hold(vec![], &a, false).is_none(), "held while in flight");
        assert!(
            f.hold(vec![], &b, false).is_some(),
            "another request is not"
        );
        // A creation holds only requests seen for the first time.
        f.begin(None);
        assert!(f.hold(vec![], &b, false).is_some());
        assert!(f.hold(vec![], &b, true).is_none());
        assert_eq!(f.end(None).len(), 1, "b's creation is released");
        let released = f.end(Some(&ka));
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].1.name, "a");
        assert!(f.end(Some(&ka)).is_empty(), "an extra end is harmless");
    }
}
