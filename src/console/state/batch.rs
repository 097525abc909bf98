//! A bulk deny or revoke in flight: its outcomes come back one by one, in
//! any order, and are said once when the last is in — the count, and every
//! request by name.

use std::collections::BTreeSet;

use super::app::BulkKind;
use crate::backend::RequestKey;
use crate::domain::sanitize::inert;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub kind: BulkKind,
    /// Still waiting for these.
    pub waiting: BTreeSet<RequestKey>,
    pub done: Vec<RequestKey>,
    /// Those that failed, with why.
    pub failed: Vec<(RequestKey, String)>,
}

impl Batch {
    pub fn new(kind: BulkKind, keys: &[RequestKey]) -> Self {
        Self {
            kind,
            waiting: keys.iter().cloned().collect(),
            done: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Records one outcome; true when it belonged to this batch.
    pub fn record(&mut self, key: &RequestKey, result: Result<(), String>) -> bool {
        if !self.waiting.remove(key) {
            return false;
        }
        match result {
            Ok(()) => self.done.push(key.clone()),
            Err(e) => self.failed.push((key.clone(), e)),
        }
        true
    }

    pub fn finished(&self) -> bool {
        self.waiting.is_empty()
    }

    /// What to say when finished, and whether it is an error.
    pub fn summary(&self) -> (bool, String) {
        let (verb, noun) = match self.kind {
            BulkKind::Deny => ("Denied", "request"),
            BulkKind::Revoke => ("Revoked", "live grant"),
        };
        let total = self.done.len() + self.failed.len();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let names = |keys: &mut dyn Iterator<Item = &RequestKey>| {
            keys.map(|k| inert(&k.name, 64).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let done = names(&mut self.done.iter());
        if self.failed.is_empty() {
            return (
                false,
                format!("{verb} {total} {noun}{}: {done}", plural(total)),
            );
        }
        let failed: Vec<String> = self
            .failed
            .iter()
            .map(|(k, e)| format!("{} ({})", inert(&k.name, 64), inert(e, 160)))
            .collect();
        let head = if self.done.is_empty() {
            format!("{verb} none of {total} {noun}{}", plural(total))
        } else {
            format!(
                "{verb} {} of {total} {noun}{}: {done}",
                self.done.len(),
                plural(total)
            )
        };
        (
            true,
            format!(
                "{head}; could not {}: {}",
                self.kind.verb().to_lowercase(),
                failed.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> RequestKey {
        RequestKey {
            cluster: "c".into(),
            name: n.into(),
        }
    }

    #[test]
    fn says_the_count_and_every_name_once_all_are_back() {
        let mut b = Batch::new(BulkKind::Deny, &[k("a"), k("b"), k("c")]);
        assert!(b.record(&k("b"), Ok(())));
        assert!(!b.record(&k("zz"), Ok(())), "not ours");
        assert!(b.record(&k("a"), Ok(())));
        assert!(!b.finished());
        assert!(b.record(&k("c"), Ok(())));
        assert!(b.finished());
        assert_eq!(b.summary(), (false, "Denied 3 requests: b, a, c".into()));
        let mut b = Batch::new(BulkKind::Revoke, &[k("a"), k("b")]);
        b.record(&k("a"), Ok(()));
        b.record(&k("b"), Err("gone".into()));
        assert_eq!(
            b.summary(),
            (
                true,
                "Revoked 1 of 2 live grants: a; could not revoke: b (gone)".into()
            )
        );
    }
}
