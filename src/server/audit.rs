//! What the server writes to the audit trail, and when: each change it
//! sees on the requests (its own actions and the reaper's, through the
//! watch), each policy verdict, each action at the call site with the
//! verified caller, and each refused attempt. One [`AuditLog`] holds them;
//! approvers' consoles get them live on the event stream.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use super::Server;
use crate::api::{self, ApiError};
use crate::audit::derive::{self, Context};
use crate::audit::{Actor, Event, Kind};
use crate::backend::{BackendEvent, RequestKey};
use crate::domain::rbac::engine::{analyze, GrantRequest};
use crate::domain::{AccessRequest, Subject};
use crate::policy::Decision;

impl Server {
    /// How a caller's identity was verified.
    pub fn verified_by(&self) -> &'static str {
        if self.authority.kind() == "demo" {
            "demo"
        } else {
            "TokenReview"
        }
    }

    pub fn actor(&self, who: &Subject) -> Actor {
        Actor {
            user: who.user.clone(),
            groups: who.groups.clone(),
            verified_by: self.verified_by().into(),
        }
    }

    pub(super) fn context(&self, actor: Option<Actor>) -> Context {
        Context {
            actor,
            // A name the server only read from the object (a decision made
            // in direct mode on the hub, before the server started or
            // beside it) is the object's word, not a verified caller's;
            // the demo's world has no other writer.
            recorded_by: if self.authority.kind() == "demo" {
                "demo".into()
            } else {
                "request-object".into()
            },
            risk: None,
            now: self.authority.now(),
        }
    }

    /// The diff's worst severity for `r`, when the RBAC is known.
    fn risk(&self, r: &AccessRequest) -> Option<String> {
        let inv = self.hub.inventory_of(&r.cluster)?;
        let key = (
            r.cluster.clone(),
            r.requester.user.clone(),
            r.requester.groups.clone(),
            r.role.clone(),
            r.granted_namespaces().to_vec(),
        );
        self.risks.get_or(&inv, key, || {
            let a = analyze(&inv, GrantRequest::of(r, &r.requester)).ok()?;
            Some(if a.new.is_empty() {
                "none".to_string()
            } else {
                a.worst.label().to_string()
            })
        })
    }

    /// Appends what is new, fills in the risk, and streams it to
    /// approvers. A failure to write is logged loudly and counted: the
    /// action it records has already happened.
    pub fn record(&self, mut events: Vec<Event>, subject: Option<&AccessRequest>) {
        events.retain(|e| !self.audit.has(&e.id));
        if events.is_empty() {
            return;
        }
        if let Some(r) = subject {
            let risk = self.risk(r);
            for e in &mut events {
                if e.risk.is_none() && e.kind != Kind::Refused {
                    e.risk = risk.clone();
                }
            }
        }
        match self.audit.record(events) {
            Ok(sealed) => {
                for s in &sealed {
                    let data: Arc<str> = crate::audit::chain::line(s).into();
                    self.hub.publish(api::events::AUDIT, data);
                }
                // Not the history read at start (a restart would post it
                // all again): the log has it; Events are for what happens.
                if self.hub.primed() {
                    self.authority.post_audit(sealed);
                }
            }
            Err(e) => {
                self.metrics.refused("audit-write-failed");
                tracing::error!(error = %e, "cannot write the audit log");
            }
        }
    }

    /// Events for the authority's changes, before they enter the hub (the
    /// hub still holds each request's previous state).
    pub(super) fn observe(&self, batch: &[BackendEvent]) {
        for e in batch {
            if let BackendEvent::Removed(k) = e {
                self.observe_removed(k);
            }
            if let BackendEvent::Upsert(r) = e {
                let old = self.hub.request(&RequestKey::of(r));
                let mut events = derive::changes(old.as_ref(), r, &self.context(None));
                // Who shortened is not in the object: only the call site,
                // which knows the caller, records a shorten.
                events.retain(|e| e.kind != Kind::Shortened);
                if let Some(events) = self.in_flight.hold(events, r, old.is_none()) {
                    self.record(events, Some(r));
                }
            }
        }
    }

    /// An action at a call site on `key` (None: a creation) starts: what
    /// the watch sees of it waits until the call site has recorded (and
    /// the returned guard is dropped).
    pub(super) fn acting(&self, key: Option<&RequestKey>) -> Acting<'_> {
        self.in_flight.begin(key);
        Acting {
            server: self,
            key: key.cloned(),
        }
    }

    /// The policy's verdict on a pending request, once per distinct verdict.
    pub(super) fn record_verdict(&self, r: &AccessRequest, d: &Decision) {
        let summary = if !d.allowed() {
            format!("refused: {}", d.deny.join("; "))
        } else if let Some(rule) = &d.auto_approve {
            format!("approves itself (rule {rule})")
        } else {
            let mut s = format!("{} approval(s) needed", d.approvals_required);
            if let Some(max) = d.max_duration {
                s.push_str(&format!(
                    ", at most {}",
                    crate::domain::duration::format(max)
                ));
            }
            s
        };
        let detail = serde_json::to_value(d).unwrap_or_default();
        let e = derive::verdict(r, &summary, d.allowed(), detail, &self.context(None));
        self.record(vec![e], Some(r));
    }

    /// A caller's action that went through: the events it caused, in the
    /// caller's verified name.
    pub(super) fn record_action(
        &self,
        who: &Subject,
        before: Option<&AccessRequest>,
        after: &AccessRequest,
    ) {
        let events = derive::changes(before, after, &self.context(Some(self.actor(who))));
        self.record(events, Some(after));
    }

    /// An attempt the server turned away (its caller verified as the
    /// server verifies tokens, or unknown).
    pub(super) fn record_refusal(
        &self,
        who: Option<&Subject>,
        action: &str,
        target: Option<&RequestKey>,
        error: &ApiError,
    ) {
        self.record_refusal_as(who, self.verified_by(), action, target, error)
    }

    /// An attempt turned away, its caller known as `verified_by` says
    /// (the webhook: the apiserver's userInfo).
    pub(super) fn record_refusal_as(
        &self,
        who: Option<&Subject>,
        verified_by: &str,
        action: &str,
        target: Option<&RequestKey>,
        error: &ApiError,
    ) {
        let actor = match who {
            Some(w) => Some(Actor {
                user: w.user.clone(),
                groups: w.groups.clone(),
                verified_by: verified_by.into(),
            }),
            None => Some(Actor::new("(unknown)", "unverified")),
        };
        let mut e = derive::refused(
            actor,
            self.authority.now(),
            action,
            target.map(|k| (k.cluster.as_str(), k.name.as_str())),
            error.code,
            &error.message,
        );
        let subject = target.and_then(|k| self.hub.request(k));
        if let Some(r) = &subject {
            derive::about(&mut e, r);
        }
        e.detail["reason"] = json!(error.reason);
        self.record(vec![e], subject.as_ref());
    }

    /// The refusals not recorded one by one (over their rate), as one
    /// record per caller or address with the count.
    pub(super) fn record_dropped_refusals(&self) {
        for (key, count) in self.refusals.take_dropped() {
            self.metrics.dropped_refusals(count);
            let e = ApiError::new(
                429,
                "TooManyRequests",
                format!("{count} more refused calls by {key} were not recorded one by one (over {} a minute)", super::refusals::RECORDED_PER_MINUTE),
            );
            let mut ev = derive::refused(
                Some(Actor::new(&key, "unverified")),
                self.authority.now(),
                "refusals dropped",
                None,
                e.code,
                &e.message,
            );
            ev.detail["dropped"] = json!(count);
            self.record(vec![ev], None);
        }
    }

    /// A pending request deleted on the hub behind the server's back (not
    /// a withdrawal through the API, which the call site recorded first
    /// under the same id): recorded as withdrawn by whoever deleted it.
    pub(super) fn observe_removed(&self, key: &RequestKey) {
        let Some(was) = self.hub.request(key) else {
            return;
        };
        if was.phase() != crate::domain::Phase::Pending {
            return;
        }
        let mut gone = was.clone();
        gone.status.phase = Some(crate::domain::Phase::Withdrawn);
        gone.status.ended_at = Some(self.authority.now());
        let mut events = derive::changes(Some(&was), &gone, &self.context(None));
        for e in &mut events {
            e.actor = Some(Actor::new(
                "(whoever deleted it on the hub: see the apiserver's audit log)",
                "unverified",
            ));
            e.message = "deleted while pending, not through the server".into();
        }
        // A withdrawal through the API in flight records itself first.
        if let Some(events) = self.in_flight.hold(events, &was, false) {
            self.record(events, Some(&was));
        }
    }
}

type RiskKey = (
    String,
    String,
    Vec<String>,
    crate::domain::RoleRef,
    Vec<String>,
);

/// Risk labels already computed, for one inventory per cluster: a first
/// start over 100,000 stored requests from a few hundred requesters
/// analyses each distinct ask once, not each request. A new inventory of
/// a cluster (any RBAC change) starts its labels over.
/// One cluster's labels and the inventory they were computed against.
type ClusterRisks = (
    Arc<crate::domain::rbac::Inventory>,
    HashMap<RiskKey, Option<String>>,
);

#[derive(Default)]
pub(crate) struct RiskCache(std::sync::Mutex<HashMap<String, ClusterRisks>>);

impl RiskCache {
    fn get_or(
        &self,
        inventory: &Arc<crate::domain::rbac::Inventory>,
        key: RiskKey,
        compute: impl FnOnce() -> Option<String>,
    ) -> Option<String> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (seen, labels) = all
            .entry(key.0.clone())
            .or_insert_with(|| (inventory.clone(), HashMap::new()));
        if !Arc::ptr_eq(seen, inventory) {
            *seen = inventory.clone();
            labels.clear();
        }
        if let Some(label) = labels.get(&key) {
            return label.clone();
        }
        let label = compute();
        labels.insert(key, label.clone());
        label
    }
}

/// An action in flight at a call site ([`Server::acting`]); dropped after
/// its record, it records what the watch saw meanwhile.
pub(super) struct Acting<'a> {
    server: &'a Server,
    key: Option<RequestKey>,
}

impl Drop for Acting<'_> {
    fn drop(&mut self) {
        for (events, r) in self.server.in_flight.end(self.key.as_ref()) {
            self.server.record(events, Some(&r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rbac::Inventory;
    use std::cell::Cell;

    #[test]
    fn a_risk_is_analysed_once_per_ask_and_again_when_the_rbac_changes() {
        let cache = RiskCache::default();
        let key = || {
            (
                "prod".to_string(),
                "alice".to_string(),
                vec!["dev".to_string()],
                crate::domain::RoleRef::cluster_role("edit"),
                vec!["payments".to_string()],
            )
        };
        let runs = Cell::new(0);
        let label = |inv: &Arc<Inventory>| {
            cache.get_or(inv, key(), || {
                runs.set(runs.get() + 1);
                Some("HIGH".to_string())
            })
        };
        let first = Arc::new(Inventory::default());
        assert_eq!(label(&first).as_deref(), Some("HIGH"));
        assert_eq!(label(&first).as_deref(), Some("HIGH"));
        assert_eq!(runs.get(), 1, "the same ask on the same RBAC: once");
        let changed = Arc::new(Inventory::default());
        label(&changed);
        assert_eq!(runs.get(), 2, "new RBAC: analysed again");
    }
}
