//! The console's requests: by key and by a small id, each with where its
//! view sorts it, and kept compact once ended.
//!
//! Ids: the views are sorted lists of ids kept in order as requests change
//! (a change is a binary search and a move of 4-byte ids, not a re-sort of
//! 100,000 keys per batch), and the indexes by requester hold ids too. An
//! id is never reused for another key: a removed request's key stays
//! interned (about 100 bytes), so an id held anywhere can never name a
//! different request.
//!
//! Compact: an ended request (Denied, Expired, Revoked, Withdrawn, Failed)
//! never changes again, and ended requests are most of what a console
//! holds after months. Each is kept as one postcard-encoded buffer (about
//! a third of the struct and its strings) and decoded when shown: a
//! screenful of rows, the selection, a filter pass. Its risk summary and
//! why it is invalid stay decoded beside it (the table and the risk filter
//! read them for every row).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use indexmap::IndexSet;

use super::app::{ended_at, Entry, Summary, View};
use std::time::Duration;

use super::filter::{Fields, Filter};
use crate::backend::RequestKey;
use crate::domain::request::RoleKind;
use crate::domain::request::{compact_time, Status};
use crate::domain::{AccessRequest, Credentials, RoleRef, Severity, Subject};

/// A request's place in the store, stable for the store's life.
pub(crate) type Id = u32;

/// What the views need of a request without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub view: View,
    /// The time its view sorts by: asked (Pending), ends (Live grants),
    /// ended (History).
    pub at: DateTime<Utc>,
}

impl Meta {
    pub fn of(req: &AccessRequest) -> Self {
        let view = View::of(req.phase());
        let at = match view {
            View::Pending => req.created_at,
            View::Grants => req.status.expires_at.unwrap_or(DateTime::<Utc>::MIN_UTC),
            View::History => ended_at(req),
        };
        Self { view, at }
    }
}

enum Body {
    Hot(Box<Entry>),
    /// The request, its summary and why it is invalid, postcard-encoded.
    Cold(Box<[u8]>),
    Gone,
}

/// A compact body is two postcard values, one after the other: first what
/// a filter reads ([`Head`]; read borrowed, without decoding the rest),
/// then everything else of the request but its name and cluster (the key
/// has them), its summary and why it is invalid ([`Tail`]).
#[derive(serde::Serialize)]
struct HeadRef<'a> {
    requester: &'a Subject,
    role: &'a RoleRef,
    namespaces: &'a [String],
    reason: &'a str,
    ticket: Option<&'a str>,
    worst: Option<Severity>,
}

#[derive(serde::Deserialize)]
struct Head {
    requester: Subject,
    role: RoleRef,
    namespaces: Vec<String>,
    reason: String,
    ticket: Option<String>,
    #[allow(dead_code)] // read by `HeadView`; the summary has it too
    worst: Option<Severity>,
}

/// [`Head`] borrowed from the bytes (the same wire shape).
#[derive(serde::Deserialize)]
struct HeadView<'a> {
    #[serde(borrow)]
    requester: SubjectView<'a>,
    #[serde(borrow)]
    role: RoleView<'a>,
    #[serde(borrow)]
    namespaces: Vec<&'a str>,
    reason: &'a str,
    ticket: Option<&'a str>,
    worst: Option<Severity>,
}

#[derive(serde::Deserialize)]
struct SubjectView<'a> {
    user: &'a str,
    #[serde(borrow)]
    groups: Vec<&'a str>,
}

#[derive(serde::Deserialize)]
struct RoleView<'a> {
    #[allow(dead_code)] // on the wire before the name
    kind: RoleKind,
    name: &'a str,
}

#[derive(serde::Serialize)]
struct TailRef<'a> {
    #[serde(with = "compact_time")]
    created_at: DateTime<Utc>,
    duration: Duration,
    credentials: Credentials,
    extends: Option<&'a str>,
    status: &'a Status,
    malformed: Option<&'a str>,
    summary: &'a Summary,
    invalid: Option<&'a str>,
    uid: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct Tail {
    #[serde(with = "compact_time")]
    created_at: DateTime<Utc>,
    duration: Duration,
    credentials: Credentials,
    extends: Option<String>,
    status: Status,
    malformed: Option<String>,
    summary: Summary,
    invalid: Option<String>,
    uid: Option<String>,
}

fn encode(e: &Entry) -> Option<Box<[u8]>> {
    let r = &e.req;
    let head = postcard::to_allocvec(&HeadRef {
        requester: &r.requester,
        role: &r.role,
        namespaces: &r.namespaces,
        reason: &r.reason,
        ticket: r.ticket.as_deref(),
        worst: e.summary.worst,
    })
    .ok()?;
    let tail = postcard::to_allocvec(&TailRef {
        created_at: r.created_at,
        duration: r.duration,
        credentials: r.credentials,
        extends: r.extends.as_deref(),
        status: &r.status,
        malformed: r.malformed.as_deref(),
        summary: &e.summary,
        invalid: e.invalid.as_deref(),
        uid: r.uid.as_deref(),
    })
    .ok()?;
    let mut bytes = head;
    bytes.extend_from_slice(&tail);
    Some(bytes.into_boxed_slice())
}

/// The entry back, with its name and cluster from its key (not encoded).
fn decode(bytes: &[u8], key: &RequestKey) -> Option<Entry> {
    let (h, rest): (Head, _) = postcard::take_from_bytes(bytes).ok()?;
    let t: Tail = postcard::from_bytes(rest).ok()?;
    Some(Entry {
        req: AccessRequest {
            name: key.name.clone(),
            uid: t.uid,
            cluster: key.cluster.clone(),
            created_at: t.created_at,
            requester: h.requester,
            role: h.role,
            namespaces: h.namespaces,
            duration: t.duration,
            reason: h.reason,
            ticket: h.ticket,
            credentials: t.credentials,
            extends: t.extends,
            status: t.status,
            malformed: t.malformed,
        },
        summary: t.summary,
        invalid: t.invalid,
    })
}

struct Slot {
    body: Body,
    meta: Meta,
}

#[derive(Default)]
pub struct Store {
    keys: IndexSet<RequestKey>,
    slots: Vec<Slot>,
    len: usize,
}

impl Store {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One more than the largest id given out.
    pub fn id_bound(&self) -> usize {
        self.slots.len()
    }

    /// The id of a request held now.
    pub fn id(&self, key: &RequestKey) -> Option<Id> {
        let i = self.keys.get_index_of(key)?;
        (!matches!(self.slots[i].body, Body::Gone)).then_some(i as Id)
    }

    pub fn key(&self, id: Id) -> &RequestKey {
        &self.keys[id as usize]
    }

    pub fn meta(&self, id: Id) -> Meta {
        self.slots[id as usize].meta
    }

    pub fn contains_key(&self, key: &RequestKey) -> bool {
        self.id(key).is_some()
    }

    pub fn get(&self, key: &RequestKey) -> Option<Cow<'_, Entry>> {
        self.by_id(self.id(key)?)
    }

    /// The entry, decoded when it is kept compact.
    pub fn by_id(&self, id: Id) -> Option<Cow<'_, Entry>> {
        match &self.slots.get(id as usize)?.body {
            Body::Hot(e) => Some(Cow::Borrowed(e)),
            Body::Cold(bytes) => decode(bytes, self.key(id)).map(Cow::Owned),
            Body::Gone => None,
        }
    }

    /// The request alone (no copy of its summary).
    pub fn req(&self, id: Id) -> Option<Cow<'_, AccessRequest>> {
        match &self.slots.get(id as usize)?.body {
            Body::Hot(e) => Some(Cow::Borrowed(&e.req)),
            Body::Cold(bytes) => decode(bytes, self.key(id)).map(|e| Cow::Owned(e.req)),
            Body::Gone => None,
        }
    }

    /// Whether the request is kept compact (reading it decodes it).
    pub fn is_compact(&self, id: Id) -> bool {
        matches!(self.slots[id as usize].body, Body::Cold(_))
    }

    /// Whether `filter` passes the request: a compact one is read borrowed
    /// (what a filter reads is encoded first), not decoded.
    pub fn passes(&self, id: Id, filter: &Filter, cluster_name: &str) -> bool {
        let key = self.key(id);
        match self.slots.get(id as usize).map(|s| &s.body) {
            Some(Body::Hot(e)) => filter.matches_named(&e.req, e.summary.worst, cluster_name),
            Some(Body::Cold(bytes)) => {
                let Ok((h, _)) = postcard::take_from_bytes::<HeadView<'_>>(bytes) else {
                    return false;
                };
                filter.matches_fields(&Fields {
                    name: &key.name,
                    cluster: &key.cluster,
                    cluster_name,
                    user: h.requester.user,
                    groups: h.requester.groups,
                    role: h.role.name,
                    namespaces: h.namespaces,
                    reason: h.reason,
                    ticket: h.ticket,
                    worst: h.worst,
                })
            }
            _ => false,
        }
    }

    /// How many requests are kept compact, and their bytes (for the scale
    /// benchmark's report).
    pub fn compact_footprint(&self) -> (usize, usize) {
        self.slots
            .iter()
            .filter_map(|s| match &s.body {
                Body::Cold(bytes) => Some(bytes.len()),
                _ => None,
            })
            .fold((0, 0), |(n, b), len| (n + 1, b + len))
    }

    /// Every id held now, in the order first seen.
    pub fn ids(&self) -> impl Iterator<Item = Id> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| !matches!(s.body, Body::Gone))
            .map(|(i, _)| i as Id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&RequestKey, Cow<'_, Entry>)> + '_ {
        self.ids()
            .filter_map(|id| Some((self.key(id), self.by_id(id)?)))
    }

    pub fn values(&self) -> impl Iterator<Item = Cow<'_, Entry>> + '_ {
        self.ids().filter_map(|id| self.by_id(id))
    }

    /// Stores an entry (replacing what the key held); an ended request is
    /// kept compact.
    pub fn insert(&mut self, entry: Entry) -> Id {
        let meta = Meta::of(&entry.req);
        let key = RequestKey::of(&entry.req);
        let body = match entry.req.phase().is_terminal().then(|| encode(&entry)) {
            Some(Some(bytes)) => Body::Cold(bytes),
            // Live, or (it cannot happen for these types) not encodable.
            _ => Body::Hot(Box::new(entry)),
        };
        let (i, _) = self.keys.insert_full(key);
        let slot = Slot { body, meta };
        if i == self.slots.len() {
            self.slots.push(slot);
            self.len += 1;
        } else {
            if matches!(self.slots[i].body, Body::Gone) {
                self.len += 1;
            }
            self.slots[i] = slot;
        }
        i as Id
    }

    /// Changes what the console computed about a request (after its
    /// cluster's RBAC changed).
    pub fn set_checks(&mut self, id: Id, summary: Summary, invalid: Option<String>) {
        let Some(key) = self.keys.get_index(id as usize) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        match &mut slot.body {
            Body::Hot(e) => {
                e.summary = summary;
                e.invalid = invalid;
            }
            Body::Cold(bytes) => {
                if let Some(mut e) = decode(bytes, key) {
                    e.summary = summary;
                    e.invalid = invalid;
                    if let Some(b) = encode(&e) {
                        *bytes = b;
                    }
                }
            }
            Body::Gone => {}
        }
    }

    pub fn remove(&mut self, key: &RequestKey) -> Option<Id> {
        let id = self.id(key)?;
        self.take(id);
        Some(id)
    }

    /// Moves a request out, leaving its id without one (its key and where
    /// it sorted stay, for taking it out of the views): a change reads the
    /// old request without copying it, then stores the new one.
    pub fn take(&mut self, id: Id) -> Option<AccessRequest> {
        let slot = self.slots.get_mut(id as usize)?;
        let req = match std::mem::replace(&mut slot.body, Body::Gone) {
            Body::Hot(e) => Some(e.req),
            Body::Cold(bytes) => decode(&bytes, &self.keys[id as usize]).map(|e| e.req),
            Body::Gone => return None,
        };
        self.len -= 1;
        req
    }
}

/// A view's rows, in order: keys by position, as a slice of keys would.
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    ids: &'a [Id],
    store: &'a Store,
}

impl<'a> Rows<'a> {
    pub fn new(ids: &'a [Id], store: &'a Store) -> Self {
        Self { ids, store }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn ids(&self) -> &'a [Id] {
        self.ids
    }

    pub fn get(&self, i: usize) -> Option<&'a RequestKey> {
        let store = self.store;
        self.ids.get(i).map(|&id| store.key(id))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &'a RequestKey> + ExactSizeIterator + 'a {
        let store = self.store;
        self.ids.iter().map(move |&id| store.key(id))
    }

    pub fn contains(&self, key: &RequestKey) -> bool {
        self.position(key).is_some()
    }

    pub fn position(&self, key: &RequestKey) -> Option<usize> {
        let id = self.store.id(key)?;
        self.ids.iter().position(|&x| x == id)
    }

    pub fn to_vec(self) -> Vec<RequestKey> {
        self.iter().cloned().collect()
    }
}

impl std::ops::Index<usize> for Rows<'_> {
    type Output = RequestKey;

    fn index(&self, i: usize) -> &RequestKey {
        self.store.key(self.ids[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::request::{Approval, Status};
    use crate::domain::{Credentials, RoleRef, Subject};
    use std::time::Duration;

    fn entry(name: &str) -> Entry {
        Entry {
            req: AccessRequest {
                name: name.into(),
                uid: None,
                cluster: "prod".into(),
                created_at: DateTime::from_timestamp(1_000, 0).unwrap(),
                requester: Subject::new("alice", &["team"]),
                role: RoleRef::cluster_role("edit"),
                namespaces: vec!["payments".into()],
                duration: Duration::from_secs(600),
                reason: "INC-1 \u{1b}]52;c;evil\u{7} and more".into(),
                ticket: Some("INC-1".into()),
                credentials: Credentials::Identity,
                extends: None,
                status: Status::default(),
                malformed: None,
            },
            summary: Summary {
                worst: None,
                new_permissions: 3,
                asked: 5,
                error: None,
            },
            invalid: Some("why".into()),
        }
    }

    #[test]
    fn ended_requests_are_compact_and_read_back_whole() {
        let mut store = Store::default();
        let pending = entry("a");
        let id = store.insert(pending.clone());
        assert!(!store.is_compact(id));
        let ended = ended("a");
        assert_eq!(store.insert(ended.clone()), id, "one id per key");
        assert!(store.is_compact(id));
        assert_eq!(store.len(), 1);
        let back = store.get(&RequestKey::of(&ended.req)).unwrap();
        assert_eq!(back.req, ended.req);
        assert_eq!(back.summary, ended.summary);
        assert_eq!(back.invalid, ended.invalid);
        assert_eq!(store.meta(id).view, View::History);
    }

    #[test]
    fn a_compact_request_is_filtered_as_the_whole_one_would_be() {
        let mut store = Store::default();
        let mut e = ended("a");
        e.req.reason = "Réparer l'ÉDITION du catalogue \u{1b}[2J INC-77".into();
        e.summary.worst = Some(Severity::High);
        let id = store.insert(e.clone());
        assert!(store.is_compact(id));
        for text in [
            "",
            "alice",
            "ALICE",
            "team",
            "édition",
            "ÉDIT",
            "ns:payments",
            "ns:cluster-wide",
            "cluster:prod",
            "cluster:eu",
            "risk:high",
            "risk:critical",
            "inc-77",
            "\u{1b}[2j",
            "role:edit",
            "u:bob",
            "a prod",
            "nothing-like-it",
        ] {
            let f = Filter::parse(text);
            assert_eq!(
                store.passes(id, &f, "Prod EU"),
                f.matches_named(&e.req, e.summary.worst, "Prod EU"),
                "filter {text:?}"
            );
        }
    }

    fn ended(name: &str) -> Entry {
        let mut e = entry(name);
        let at = e.req.created_at;
        e.req
            .approve(
                Approval {
                    by: "bob".into(),
                    at,
                    duration: Duration::from_secs(60),
                    namespaces: vec!["payments".into()],
                    reason: None,
                },
                &Default::default(),
            )
            .unwrap();
        e.req.revoke("bob", at, "done").unwrap();
        e
    }

    #[test]
    fn a_removed_key_keeps_its_id_and_no_other_key_takes_it() {
        let mut store = Store::default();
        let a = store.insert(entry("a"));
        let b = store.insert(entry("b"));
        assert_eq!(store.remove(&RequestKey::of(&entry("a").req)), Some(a));
        assert_eq!(store.len(), 1);
        assert!(store.by_id(a).is_none());
        assert_eq!(store.ids().collect::<Vec<_>>(), vec![b]);
        assert_eq!(store.insert(entry("c")), 2);
        assert_eq!(store.insert(entry("a")), a, "back under its old id");
        assert_eq!(store.len(), 3);
    }
}
