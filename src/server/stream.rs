//! The live stream: every change the authority reports gets an event id
//! (`EPOCH-N`, N counting up from this process's start), is kept in a
//! bounded buffer and fanned out to every connected console. A console that
//! reconnects with `Last-Event-ID` from this process gets exactly what it
//! missed (no gap, no duplicate); one whose id is too old, or from another
//! replica, gets a full snapshot, bracketed so it can drop whatever the
//! snapshot no longer holds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::api::{self, events};
use crate::backend::{BackendEvent, RequestKey};
use crate::domain::{AccessRequest, Phase};

/// How many events are kept for resuming.
pub(crate) const BUFFER: usize = 20_000;

/// One event as sent: id, name, JSON data. The data is shared: a
/// request's JSON is written once and referenced by the state, the
/// resume buffer and every console's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub id: u64,
    pub event: &'static str,
    pub data: Arc<str>,
    /// A request's frame also carries its requester and what anyone else
    /// who may not approve is shown ([`api::redact`]), written once at
    /// ingest: a requester's stream or list costs no JSON work per caller.
    pub redacted: Option<Redacted>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redacted {
    pub requester: Arc<str>,
    pub data: Arc<str>,
}

impl Redacted {
    fn of(r: &AccessRequest, v: &Value) -> Self {
        let mut v = v.clone();
        api::redact(&mut v);
        Self {
            requester: r.requester.user.as_str().into(),
            data: v.to_string().into(),
        }
    }

    /// The data as `user` (who may not approve) may see it.
    fn for_user<'a>(&'a self, user: &str, full: &'a Arc<str>) -> &'a Arc<str> {
        if &*self.requester == user {
            full
        } else {
            &self.data
        }
    }
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    buffer: VecDeque<Arc<Frame>>,
    requests: BTreeMap<RequestKey, (AccessRequest, Arc<str>, Redacted)>,
    inventories: BTreeMap<String, Value>,
    /// The same inventories as the engine reads them.
    parsed: BTreeMap<String, Arc<crate::domain::rbac::Inventory>>,
    clusters: BTreeMap<String, Option<String>>,
    limits: BTreeMap<String, Value>,
    /// Whether the authority's first full list of requests has arrived.
    primed: bool,
}

/// What a request went through, as the metrics count it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// Seconds between a grant's `expiresAt` and its Expired record.
    pub expiry_lag: Vec<f64>,
}

pub(crate) struct Hub {
    /// Distinguishes this process's ids from another replica's.
    pub epoch: String,
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Frame>>,
}

/// What a (re)connecting console is sent before live events.
pub(crate) struct Start {
    pub frames: Vec<Arc<Frame>>,
    pub rx: broadcast::Receiver<Arc<Frame>>,
    /// Live frames with ids up to this one were already in `frames`.
    pub after: u64,
}

fn key_json(k: &RequestKey) -> Value {
    json!({"cluster": k.cluster, "name": k.name})
}

impl Hub {
    pub(crate) fn new(epoch: String) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            epoch,
            state: Mutex::new(State::default()),
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a batch of the authority's events; returns what metrics count.
    pub(crate) fn ingest(&self, batch: Vec<BackendEvent>, now: DateTime<Utc>) -> Observed {
        self.ingest_with(batch, now, |_| None)
    }

    /// As [`Self::ingest`], attaching to each request the JSON `verdict`
    /// returns for it (the policy's decision, computed once per change).
    pub(crate) fn ingest_with(
        &self,
        batch: Vec<BackendEvent>,
        now: DateTime<Utc>,
        verdict: impl Fn(&AccessRequest) -> Option<Value>,
    ) -> Observed {
        // Verdicts first, outside the lock: deciding reads the hub too.
        let mut verdicts: Vec<Option<Value>> = batch
            .iter()
            .filter_map(|e| match e {
                BackendEvent::Upsert(r) => Some(verdict(r)),
                _ => None,
            })
            .collect();
        verdicts.reverse();
        let mut observed = Observed::default();
        let mut st = self.lock();
        for e in batch {
            let mut shown = None;
            let (event, data) = match e {
                BackendEvent::Upsert(r) => {
                    let key = RequestKey::of(&r);
                    let was = st.requests.get(&key).map(|(old, _, _)| old.phase());
                    if r.phase() == Phase::Expired && was == Some(Phase::Active) {
                        if let Some(end) = r.status.expires_at {
                            observed
                                .expiry_lag
                                .push((now - end).num_milliseconds() as f64 / 1000.0);
                        }
                    }
                    let mut v = api::request_json(&r);
                    if let Some(p) = verdicts.pop().flatten() {
                        v["policy"] = p;
                    }
                    let data: Arc<str> = v.to_string().into();
                    // A relist or a verdict judged again to the same words
                    // changes nothing: no frame for every console.
                    if st.requests.get(&key).is_some_and(|(_, d, _)| *d == data) {
                        continue;
                    }
                    let redacted = Redacted::of(&r, &v);
                    st.requests
                        .insert(key, (*r, data.clone(), redacted.clone()));
                    shown = Some(redacted);
                    (events::UPSERT, data)
                }
                BackendEvent::Removed(key) => {
                    st.requests.remove(&key);
                    (events::REMOVED, key_json(&key).to_string().into())
                }
                BackendEvent::Inventory { cluster, inventory } => {
                    let v = serde_json::to_value(inventory.as_ref()).unwrap_or(Value::Null);
                    let data = json!({"cluster": cluster, "inventory": v}).to_string();
                    st.parsed.insert(cluster.clone(), inventory);
                    st.inventories.insert(cluster, v);
                    (events::INVENTORY, data.into())
                }
                BackendEvent::ClusterStatus { cluster, error } => {
                    let data = json!({"cluster": cluster, "error": error}).to_string();
                    st.clusters.insert(cluster, error);
                    (events::CLUSTER, data.into())
                }
                BackendEvent::Limits { cluster, limits } => {
                    let v = limits_json(&limits);
                    let data = json!({"cluster": cluster, "limits": v}).to_string();
                    st.limits.insert(cluster, v);
                    (events::LIMITS, data.into())
                }
                BackendEvent::Notice {
                    cluster,
                    error,
                    text,
                } => (
                    events::NOTICE,
                    json!({"cluster": cluster, "error": error, "text": text})
                        .to_string()
                        .into(),
                ),
                BackendEvent::Connection { .. }
                | BackendEvent::Verdict { .. }
                | BackendEvent::Audit(_) => continue,
                BackendEvent::Synced => {
                    st.primed = true;
                    continue;
                }
            };
            self.send(&mut st, event, data, shown);
        }
        observed
    }

    /// Sends one event that is not part of the state (an audit record):
    /// live and in the resume buffer, not in snapshots.
    pub(crate) fn publish(&self, event: &'static str, data: Arc<str>) {
        let mut st = self.lock();
        self.send(&mut st, event, data, None);
    }

    /// The next frame: numbered, kept for resuming, sent live.
    fn send(
        &self,
        st: &mut State,
        event: &'static str,
        data: Arc<str>,
        redacted: Option<Redacted>,
    ) {
        st.next += 1;
        let frame = Arc::new(Frame {
            id: st.next,
            event,
            data,
            redacted,
        });
        st.buffer.push_back(frame.clone());
        if st.buffer.len() > BUFFER {
            st.buffer.pop_front();
        }
        // Nobody listening is fine.
        let _ = self.tx.send(frame);
    }

    /// The pending requests (of `clusters`, or all), as upserts to judge
    /// again.
    pub(crate) fn pending_in(
        &self,
        clusters: Option<&std::collections::BTreeSet<String>>,
    ) -> Vec<BackendEvent> {
        self.lock()
            .requests
            .values()
            .filter(|(r, _, _)| r.phase() == Phase::Pending)
            .filter(|(r, _, _)| clusters.is_none_or(|c| c.contains(&r.cluster)))
            .map(|(r, _, _)| BackendEvent::Upsert(Box::new(r.clone())))
            .collect()
    }

    /// The ended requests past their cluster's `retention` at `now`, at
    /// most `limit` of them.
    pub(crate) fn past_retention(
        &self,
        now: DateTime<Utc>,
        retention: impl Fn(&str) -> std::time::Duration,
        limit: usize,
    ) -> Vec<AccessRequest> {
        self.lock()
            .requests
            .values()
            .filter(|(r, _, _)| {
                r.forgettable_at(retention(&r.cluster))
                    .is_some_and(|at| at <= now)
            })
            .take(limit)
            .map(|(r, _, _)| r.clone())
            .collect()
    }

    pub(crate) fn primed(&self) -> bool {
        self.lock().primed
    }

    /// `{"items": [...]}` of the requests `keep` accepts, written from
    /// the JSON each request already has (for `GET /v1/requests`).
    /// With `redact_for` (a caller who may not approve), requests of
    /// anyone else are [`api::redact`]ed.
    pub(crate) fn list_json(
        &self,
        keep: impl Fn(&AccessRequest) -> bool,
        redact_for: Option<&str>,
    ) -> String {
        let st = self.lock();
        let mut out = String::from("{\"items\":[");
        let mut first = true;
        for (r, data, redacted) in st.requests.values() {
            if keep(r) {
                if !first {
                    out.push(',');
                }
                first = false;
                match redact_for {
                    Some(me) => out.push_str(redacted.for_user(me, data)),
                    None => out.push_str(data),
                }
            }
        }
        out.push_str("]}");
        out
    }

    pub(crate) fn request(&self, key: &RequestKey) -> Option<AccessRequest> {
        self.lock().requests.get(key).map(|(r, _, _)| r.clone())
    }

    pub(crate) fn inventory(&self, cluster: &str) -> Option<Value> {
        self.lock().inventories.get(cluster).cloned()
    }

    /// A cluster's inventory as the engine reads it.
    pub(crate) fn inventory_of(
        &self,
        cluster: &str,
    ) -> Option<Arc<crate::domain::rbac::Inventory>> {
        self.lock().parsed.get(cluster).cloned()
    }

    /// Counts by phase, for the metrics.
    pub(crate) fn phases(&self) -> BTreeMap<Phase, usize> {
        let mut out = BTreeMap::new();
        for (r, _, _) in self.lock().requests.values() {
            *out.entry(r.phase()).or_insert(0) += 1;
        }
        out
    }

    /// Where a console starts: the events after `last` (an `EPOCH-N` id
    /// of this process still in the buffer), else a full snapshot.
    pub(crate) fn start(&self, last: Option<&str>) -> Start {
        let st = self.lock();
        // Subscribed under the lock: nothing ingested later is missed.
        let rx = self.tx.subscribe();
        let resume = last
            .and_then(|l| l.split_once('-'))
            .filter(|(epoch, _)| *epoch == self.epoch)
            .and_then(|(_, n)| n.parse::<u64>().ok())
            .filter(|n| {
                *n <= st.next && st.buffer.front().is_none_or(|oldest| *n + 1 >= oldest.id)
            });
        let frames = match resume {
            Some(n) => st.buffer.iter().filter(|f| f.id > n).cloned().collect(),
            None => {
                let id = st.next;
                let frame = |event, data: Arc<str>| {
                    Arc::new(Frame {
                        id,
                        event,
                        data,
                        redacted: None,
                    })
                };
                let mut out = vec![frame(events::SNAPSHOT, "{}".into())];
                for (cluster, error) in &st.clusters {
                    out.push(frame(
                        events::CLUSTER,
                        json!({"cluster": cluster, "error": error})
                            .to_string()
                            .into(),
                    ));
                }
                for (cluster, v) in &st.limits {
                    out.push(frame(
                        events::LIMITS,
                        json!({"cluster": cluster, "limits": v}).to_string().into(),
                    ));
                }
                for (cluster, v) in &st.inventories {
                    out.push(frame(
                        events::INVENTORY,
                        json!({"cluster": cluster, "inventory": v})
                            .to_string()
                            .into(),
                    ));
                }
                for (_, data, redacted) in st.requests.values() {
                    out.push(Arc::new(Frame {
                        id,
                        event: events::UPSERT,
                        data: data.clone(),
                        redacted: Some(redacted.clone()),
                    }));
                }
                out.push(frame(events::SNAPSHOT_DONE, "{}".into()));
                out
            }
        };
        Start {
            frames,
            rx,
            after: st.next,
        }
    }

    /// A frame as a caller who may not approve sees it (need to know):
    /// no RBAC inventories, notices or audit records; others' requests
    /// [`api::redact`]ed. None: not for them.
    pub(crate) fn for_requester(user: &str, frame: Arc<Frame>) -> Option<Arc<Frame>> {
        match frame.event {
            events::INVENTORY | events::NOTICE | events::AUDIT => None,
            events::UPSERT => match &frame.redacted {
                Some(r) if &*r.requester == user => Some(frame),
                Some(r) => Some(Arc::new(Frame {
                    id: frame.id,
                    event: frame.event,
                    data: r.data.clone(),
                    redacted: None,
                })),
                // Every request frame carries its redaction: one that does
                // not is not shown to those who may not read it.
                None => None,
            },
            _ => Some(frame),
        }
    }
}

pub(crate) fn limits_json(l: &crate::domain::ValidationLimits) -> Value {
    json!({
        "maxDuration": crate::domain::duration::format(l.max_duration),
        "approvalTimeout": crate::domain::duration::format(l.approval_timeout),
        "maxReasonChars": l.max_reason_chars,
        "grantable": l.grantable.as_ref().map(|g| g.iter().map(ToString::to_string).collect::<Vec<_>>()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::NewRequest;
    use crate::domain::{Credentials, RoleRef, Subject};
    use std::time::Duration;

    fn req(name: &str) -> AccessRequest {
        NewRequest {
            cluster: "c".into(),
            requester: Subject::new("alice", &[]),
            role: RoleRef::cluster_role("view"),
            namespaces: vec!["a".into()],
            duration: Duration::from_secs(60),
            reason: "x".into(),
            ticket: None,
            credentials: Credentials::Identity,
            extends: None,
        }
        .into_request(name.into(), Utc::now())
    }

    fn up(name: &str) -> BackendEvent {
        BackendEvent::Upsert(Box::new(req(name)))
    }

    #[test]
    fn resumes_exactly_after_the_last_id_seen() {
        let hub = Hub::new("e1".into());
        assert!(!hub.primed());
        hub.ingest(vec![BackendEvent::Synced], Utc::now());
        assert!(hub.primed());
        hub.ingest(vec![up("a"), up("b"), up("c")], Utc::now());
        let start = hub.start(Some("e1-1"));
        let ids: Vec<u64> = start.frames.iter().map(|f| f.id).collect();
        assert_eq!(ids, [2, 3]);
        assert_eq!(start.after, 3);
        // Nothing missed, nothing twice: the current id resumes to nothing.
        assert!(hub.start(Some("e1-3")).frames.is_empty());
    }

    #[test]
    fn another_epoch_or_an_unknown_id_gets_a_bracketed_snapshot() {
        let hub = Hub::new("e1".into());
        hub.ingest(
            vec![
                up("a"),
                up("b"),
                BackendEvent::Removed(RequestKey::of(&req("a"))),
            ],
            Utc::now(),
        );
        for last in [None, Some("e0-2"), Some("e1-99"), Some("garbage")] {
            let s = hub.start(last);
            let names: Vec<&str> = s.frames.iter().map(|f| f.event).collect();
            assert_eq!(
                names,
                [events::SNAPSHOT, events::UPSERT, events::SNAPSHOT_DONE],
                "{last:?}"
            );
            assert!(s.frames[1].data.contains("\"name\":\"b\""));
        }
    }

    #[test]
    fn the_same_request_again_sends_no_frame_a_change_does() {
        let hub = Hub::new("e1".into());
        let a = req("a");
        hub.ingest(vec![BackendEvent::Upsert(Box::new(a.clone()))], Utc::now());
        let mut start = hub.start(None);
        // A relist: the same object again.
        hub.ingest(vec![BackendEvent::Upsert(Box::new(a.clone()))], Utc::now());
        assert!(start.rx.try_recv().is_err(), "no frame for no change");
        let mut changed = a;
        changed.reason.push_str(" (more)");
        hub.ingest(vec![BackendEvent::Upsert(Box::new(changed))], Utc::now());
        let f = start.rx.try_recv().expect("a frame for the change");
        assert_eq!(f.id, 2, "ids count frames sent");
        assert!(f.data.contains("(more)"));
    }

    #[test]
    fn live_frames_after_start_reach_the_subscriber() {
        let hub = Hub::new("e1".into());
        let mut start = hub.start(None);
        hub.ingest(vec![up("z")], Utc::now());
        let f = start.rx.try_recv().expect("live frame");
        assert_eq!(f.id, 1);
        assert!(f.id > start.after);
    }
}
