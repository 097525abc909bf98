//! The demo's world: a seeded organisation and a simulator that keeps it
//! alive. Pure and deterministic: time is passed in, randomness comes from a
//! seeded ChaCha generator, so `--seed N` replays the same story.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::org::{self, Person, APPROVER, CLUSTERS, PEOPLE, REASONS};
use crate::backend::{ApproveSpec, BackendError, BackendEvent, NewRequest, Op, RequestKey, Seen};
use crate::domain::request::{Approval, Status};
use crate::domain::{AccessRequest, Credentials, Phase, RoleRef, Subject, ValidationLimits};

#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub seed: u64,
    /// Mean time between two new requests; zero stops arrivals.
    pub rate: Duration,
    pub start: DateTime<Utc>,
    /// Whether to include a request with hostile text (escape sequences,
    /// bidi overrides, a huge reason) so the demo shows it rendered inert.
    pub hostile: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            rate: Duration::from_secs(8),
            start: DateTime::from_timestamp(1_795_662_000, 0).unwrap_or_default(), // 2026-11-26T03:00:00Z
            hostile: true,
        }
    }
}

pub struct DemoWorld {
    rng: ChaCha8Rng,
    config: DemoConfig,
    limits: ValidationLimits,
    now: DateTime<Utc>,
    requests: BTreeMap<RequestKey, AccessRequest>,
    inventories: BTreeMap<String, Arc<crate::domain::rbac::Inventory>>,
    next_arrival: Option<DateTime<Utc>>,
    serial: u64,
}

const DURATIONS: &[u64] = &[15, 30, 30, 60, 60, 120, 240];

fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl DemoWorld {
    pub fn new(config: DemoConfig) -> Self {
        let inventories = CLUSTERS
            .iter()
            .map(|c| (c.to_string(), Arc::new(org::inventory(c))))
            .collect();
        let mut world = Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            now: config.start,
            limits: ValidationLimits::default(),
            requests: BTreeMap::new(),
            inventories,
            next_arrival: None,
            serial: 0,
            config,
        };
        world.seed_history();
        world.schedule_arrival();
        world
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn limits(&self) -> &ValidationLimits {
        &self.limits
    }

    pub fn approver() -> Subject {
        PEOPLE
            .iter()
            .find(|p| p.user == APPROVER)
            .map(Person::subject)
            .unwrap_or_else(|| Subject::new(APPROVER, &[]))
    }

    pub fn clusters(&self) -> Vec<String> {
        self.inventories.keys().cloned().collect()
    }

    /// Deletes a request from the world (an ended one past its retention).
    pub fn forget(&mut self, key: &RequestKey) -> bool {
        self.requests.remove(key).is_some()
    }

    pub fn requests(&self) -> impl Iterator<Item = &AccessRequest> {
        self.requests.values()
    }

    /// Everything a new subscriber needs, as events.
    pub fn snapshot(&self) -> Vec<BackendEvent> {
        let mut out: Vec<BackendEvent> = self
            .inventories
            .iter()
            .flat_map(|(c, inv)| {
                [
                    BackendEvent::ClusterStatus {
                        cluster: c.clone(),
                        error: None,
                    },
                    BackendEvent::Inventory {
                        cluster: c.clone(),
                        inventory: inv.clone(),
                    },
                ]
            })
            .collect();
        out.extend(
            self.requests
                .values()
                .cloned()
                .map(|r| BackendEvent::Upsert(Box::new(r))),
        );
        out
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    fn new_name(&mut self, user: &str, ns: Option<&str>) -> String {
        self.serial += 1;
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let suffix: String = (0..4)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        format!("{user}-{}-{suffix}", ns.unwrap_or("cluster"))
    }

    /// A plausible request from a random person (never the approver unless `who` says so).
    fn invent(&mut self, created_at: DateTime<Utc>, who: Option<&'static Person>) -> AccessRequest {
        let person = match who {
            Some(p) => p,
            None => {
                let others: Vec<&'static Person> =
                    PEOPLE.iter().filter(|p| p.user != APPROVER).collect();
                *self.pick(&others)
            }
        };
        let cluster = self.pick(CLUSTERS).to_string();
        let roll: u32 = self.rng.random_range(0..100);
        let home = person.home;
        let first = self.pick(home).to_string();
        let (role, namespaces) = match roll {
            0..=29 => (RoleRef::cluster_role("edit"), vec![first]),
            30..=44 => (RoleRef::cluster_role("view"), {
                let mut v: Vec<String> = home.iter().map(|s| s.to_string()).collect();
                v.truncate(self.rng.random_range(1..=home.len()));
                v
            }),
            45..=59 => (RoleRef::cluster_role("debugger"), vec![first]),
            60..=67 => (RoleRef::cluster_role("admin"), vec![first]),
            68..=74 => (RoleRef::cluster_role("secret-reader"), vec![first]),
            75..=79 => (RoleRef::role("deployer"), vec!["payments".into()]),
            80..=83 => (RoleRef::role("log-reader"), vec!["orders".into()]),
            84..=87 => (RoleRef::cluster_role("node-inspector"), Vec::new()),
            88..=91 => (RoleRef::cluster_role("platform-operator"), vec![first]),
            92..=94 => (RoleRef::cluster_role("view"), Vec::new()),
            95..=97 => (RoleRef::cluster_role("webhook-admin"), Vec::new()),
            _ => (RoleRef::cluster_role("cluster-admin"), Vec::new()),
        };
        let ticket = format!("INC-{}", self.rng.random_range(4000..9999));
        let reason = self.pick(REASONS).replace("{t}", &ticket);
        let duration = minutes(*self.pick(DURATIONS));
        let name = self.new_name(person.user, namespaces.first().map(String::as_str));
        AccessRequest {
            name,
            uid: None,
            cluster,
            created_at,
            requester: person.subject(),
            role,
            namespaces,
            duration,
            reason,
            ticket: Some(ticket),
            credentials: if self.rng.random_range(0..5) == 0 {
                Credentials::Token
            } else {
                Credentials::Identity
            },
            extends: None,
            status: Status::default(),
            malformed: None,
        }
    }

    fn insert(&mut self, mut req: AccessRequest) -> BackendEvent {
        if req.uid.is_none() {
            // As an apiserver would: every stored request its own uid.
            self.serial += 1;
            req.uid = Some(format!("demo-{:06}-{}", self.serial, req.name));
        }
        self.requests.insert(RequestKey::of(&req), req.clone());
        BackendEvent::Upsert(Box::new(req))
    }

    /// A past day of decisions, a few live grants and a queue.
    fn seed_history(&mut self) {
        let start = self.now;
        self.seed_ended(start);
        self.seed_live(start);
        self.seed_queue(start);
    }

    /// Ended requests, spread over the last 20 hours.
    fn seed_ended(&mut self, start: DateTime<Utc>) {
        let approvers = ["dana", "erin", "grace"];
        let deny_reasons = [
            "no incident ticket: open one and ask again",
            "too broad: ask for view first",
            "use the staging cluster for this",
            "duplicate of an approved request",
        ];
        for i in 0..24u32 {
            let created = start - TimeDelta::minutes(1200 - i as i64 * 48);
            let mut r = self.invent(created, None);
            let approver = approvers[(i as usize) % approvers.len()];
            let at = created + TimeDelta::minutes(self.rng.random_range(1..20));
            match i % 6 {
                0..=2 => {
                    let ns = r.namespaces.clone();
                    let _ = r.approve(
                        Approval {
                            by: approver.into(),
                            at,
                            duration: r.duration,
                            namespaces: ns,
                            reason: None,
                        },
                        &self.limits,
                    );
                    let _ = r.expire_if_due(at + delta(r.duration), &self.limits);
                }
                3 => {
                    let why = *self.pick(&deny_reasons[..]);
                    let _ = r.deny(approver, at, why);
                }
                4 => {
                    let ns = r.namespaces.iter().take(1).cloned().collect();
                    let _ = r.approve(
                        Approval {
                            by: approver.into(),
                            at,
                            duration: r.duration.min(minutes(15)),
                            namespaces: ns,
                            reason: Some("shorter: one namespace is enough".into()),
                        },
                        &self.limits,
                    );
                    let _ = r.revoke(
                        approver,
                        at + TimeDelta::minutes(5),
                        "work done, closing early",
                    );
                }
                _ => {
                    let user = r.requester.user.clone();
                    let _ = r.withdraw(&user, at);
                }
            }
            if r.phase() == Phase::Active {
                let _ = r.expire_if_due(start, &self.limits);
            }
            self.insert(r);
        }
    }

    /// Live grants with various remaining times (one under five minutes).
    fn seed_live(&mut self, start: DateTime<Utc>) {
        let approvers = ["dana", "erin", "grace"];
        for (i, remaining_min) in [3i64, 12, 40, 95].into_iter().enumerate() {
            let mut r = self.invent(start - TimeDelta::minutes(130), None);
            r.duration = minutes(120);
            let at = start + TimeDelta::minutes(remaining_min) - TimeDelta::minutes(120);
            let ns = r.namespaces.clone();
            let _ = r.approve(
                Approval {
                    by: approvers[i % 3].into(),
                    at,
                    duration: r.duration,
                    namespaces: ns,
                    reason: None,
                },
                &self.limits,
            );
            self.insert(r);
        }
    }

    /// The queue: waiting for a few seconds to an hour; the approver's own
    /// request; a hostile one when asked for.
    fn seed_queue(&mut self, start: DateTime<Utc>) {
        for age in [55i64, 31, 18, 9, 4, 2] {
            let r = self.invent(start - TimeDelta::minutes(age), None);
            self.insert(r);
        }
        // The approver's own request: approving it must be refused.
        let dana = PEOPLE.iter().find(|p| p.user == APPROVER);
        let mut own = self.invent(start - TimeDelta::minutes(6), dana);
        own.role = RoleRef::cluster_role("admin");
        own.namespaces = vec!["monitoring".into()];
        own.reason = "Prometheus storage full, need to resize the PVC".into();
        self.insert(own);
        if self.config.hostile {
            let mallory = Subject::new("mallory\x1b[2J", &["dev", "\u{202E}nimda-retsulc"]);
            let mut r = self.invent(start - TimeDelta::minutes(1), None);
            r.name = "mallory-payments-x9x9".into();
            r.requester = mallory;
            r.role = RoleRef::cluster_role("secret-reader");
            r.namespaces = vec!["payments".into()];
            r.reason = format!(
                "\x1b]0;owned\x07urgent!!\x1b[31m approve now \u{202E}txet desrever{}",
                " padding".repeat(200)
            );
            r.ticket = Some("\x1b[5mINC-0000\x1b[0m".into());
            self.insert(r);
        }
    }

    fn schedule_arrival(&mut self) {
        if self.config.rate.is_zero() {
            self.next_arrival = None;
            return;
        }
        let base = self.config.rate.as_millis() as i64;
        let jitter = self.rng.random_range(base / 2..=base + base / 2);
        self.next_arrival = Some(self.now + TimeDelta::milliseconds(jitter.max(1)));
    }

    /// Moves the world to `now`: arrivals, withdrawals, expiries. Returns what changed.
    pub fn advance(&mut self, now: DateTime<Utc>) -> Vec<BackendEvent> {
        let mut events = Vec::new();
        if now <= self.now {
            return events;
        }
        while let Some(at) = self.next_arrival.filter(|at| *at <= now) {
            self.now = at;
            let r = self.invent(at, None);
            events.push(self.insert(r));
            // Now and then someone changes their mind.
            if self.rng.random_range(0..6) == 0 {
                let pending: Vec<RequestKey> = self
                    .requests
                    .iter()
                    .filter(|(_, r)| {
                        r.phase() == Phase::Pending
                            && r.requester.user != APPROVER
                            && !r.name.starts_with("mallory")
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                if !pending.is_empty() {
                    let key = pending[self.rng.random_range(0..pending.len())].clone();
                    if let Some(r) = self.requests.get_mut(&key) {
                        let user = r.requester.user.clone();
                        if r.withdraw(&user, at).is_ok() {
                            events.push(BackendEvent::Upsert(Box::new(r.clone())));
                        }
                    }
                }
            }
            self.schedule_arrival();
        }
        self.now = now;
        for r in self.requests.values_mut() {
            if r.expire_if_due(now, &self.limits) {
                events.push(BackendEvent::Upsert(Box::new(r.clone())));
            }
        }
        events
    }

    fn get_mut(&mut self, key: &RequestKey) -> Result<&mut AccessRequest, BackendError> {
        self.requests
            .get_mut(key)
            .ok_or_else(|| BackendError::NotFound(key.clone()))
    }

    /// Applies `change` to a copy and stores it only when it succeeds.
    fn change(
        &mut self,
        key: &RequestKey,
        change: impl FnOnce(
            &mut AccessRequest,
            DateTime<Utc>,
            &ValidationLimits,
        ) -> Result<(), crate::domain::PhaseError>,
    ) -> Result<AccessRequest, BackendError> {
        let now = self.now;
        let limits = self.limits.clone();
        let stored = self.get_mut(key)?;
        let mut next = stored.clone();
        change(&mut next, now, &limits)?;
        *stored = next.clone();
        Ok(next)
    }

    /// `op` by `by`, refused unless the request is still what `seen` says
    /// (checked and changed under one lock, as a conditional write would).
    pub fn decide(
        &mut self,
        key: &RequestKey,
        by: &str,
        seen: &Seen,
        op: Op,
        required: usize,
    ) -> Result<AccessRequest, BackendError> {
        let now = self
            .requests
            .get(key)
            .ok_or_else(|| BackendError::NotFound(key.clone()))?;
        seen.check(now)?;
        match op {
            Op::Approve(spec) => self.review(key, by, spec, required),
            Op::Deny { reason } => self.deny(key, by, &reason),
            Op::Shorten { new_end } => self.shorten(key, new_end),
            Op::Revoke { reason } => self.revoke(key, by, &reason),
            Op::Withdraw => self.withdraw(key, by),
            Op::Release => self.release(key, by),
        }
    }

    pub fn approve(
        &mut self,
        key: &RequestKey,
        by: &str,
        spec: ApproveSpec,
    ) -> Result<AccessRequest, BackendError> {
        self.review(key, by, spec, 1)
    }

    /// One approval of `required` (see [`AccessRequest::review`]).
    pub fn review(
        &mut self,
        key: &RequestKey,
        by: &str,
        spec: ApproveSpec,
        required: usize,
    ) -> Result<AccessRequest, BackendError> {
        self.change(key, |r, now, limits| {
            r.review(
                Approval {
                    by: by.into(),
                    at: now,
                    duration: spec.duration,
                    namespaces: spec.namespaces,
                    reason: spec.reason,
                },
                required,
                limits,
            )
            .map(|_| ())
        })
    }

    pub fn deny(
        &mut self,
        key: &RequestKey,
        by: &str,
        reason: &str,
    ) -> Result<AccessRequest, BackendError> {
        self.change(key, |r, now, _| r.deny(by, now, reason))
    }

    pub fn shorten(
        &mut self,
        key: &RequestKey,
        new_end: DateTime<Utc>,
    ) -> Result<AccessRequest, BackendError> {
        self.change(key, |r, now, _| r.shorten(new_end, now))
    }

    pub fn revoke(
        &mut self,
        key: &RequestKey,
        by: &str,
        reason: &str,
    ) -> Result<AccessRequest, BackendError> {
        self.change(key, |r, now, _| r.revoke(by, now, reason))
    }

    pub fn withdraw(&mut self, key: &RequestKey, by: &str) -> Result<AccessRequest, BackendError> {
        self.change(key, |r, now, _| r.withdraw(by, now))
    }

    pub fn release(&mut self, key: &RequestKey, by: &str) -> Result<AccessRequest, BackendError> {
        self.change(key, |r, now, _| r.release(by, now))
    }

    pub fn create(&mut self, new: NewRequest) -> Result<AccessRequest, BackendError> {
        if !self.inventories.contains_key(&new.cluster) {
            return Err(BackendError::Invalid(format!(
                "unknown cluster '{}'",
                crate::domain::sanitize::inert(&new.cluster, 64)
            )));
        }
        let ns = new.namespaces.first().cloned();
        let name = self.new_name(
            &new.requester
                .user
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase(),
            ns.as_deref(),
        );
        // Invalid requests are still stored (as a hand-made object would be):
        // the console lists them as invalid and they can only be denied.
        let req = new.into_request(name, self.now);
        match self.insert(req) {
            BackendEvent::Upsert(stored) => Ok(*stored),
            _ => unreachable!("insert reports the request it stored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_world() {
        let a = DemoWorld::new(DemoConfig::default());
        let b = DemoWorld::new(DemoConfig::default());
        let names = |w: &DemoWorld| w.requests().map(|r| r.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b));
        let c = DemoWorld::new(DemoConfig {
            seed: 2,
            ..Default::default()
        });
        assert_ne!(names(&a), names(&c));
    }

    #[test]
    fn seeded_org_has_queue_grants_and_history() {
        let w = DemoWorld::new(DemoConfig::default());
        let count = |p: Phase| w.requests().filter(|r| r.phase() == p).count();
        assert!(count(Phase::Pending) >= 6);
        assert_eq!(count(Phase::Active), 4);
        assert!(
            count(Phase::Denied) >= 3 && count(Phase::Revoked) >= 3 && count(Phase::Withdrawn) >= 3
        );
        assert!(w
            .requests()
            .any(|r| r.requester.user == APPROVER && r.phase() == Phase::Pending));
        assert_eq!(w.clusters().len(), 3);
        let users: std::collections::BTreeSet<_> =
            w.requests().map(|r| r.requester.user.clone()).collect();
        assert!(users.len() >= 8, "{users:?}");
    }

    #[test]
    fn simulator_brings_arrivals_and_expiries() {
        let mut w = DemoWorld::new(DemoConfig::default());
        let start = w.now();
        let before = w.requests().count();
        let events = w.advance(start + TimeDelta::minutes(5));
        assert!(
            w.requests().count() > before + 10,
            "about one arrival per 8s"
        );
        // The grant with 3 minutes left has expired.
        assert!(events
            .iter()
            .any(|e| matches!(e, BackendEvent::Upsert(r) if r.phase() == Phase::Expired)));
        assert_eq!(
            w.requests().filter(|r| r.phase() == Phase::Active).count(),
            3
        );
        assert!(w.advance(start).is_empty(), "time never goes back");
    }

    #[test]
    fn rate_zero_stops_arrivals() {
        let mut w = DemoWorld::new(DemoConfig {
            rate: Duration::ZERO,
            ..Default::default()
        });
        let before = w.requests().count();
        let start = w.now();
        w.advance(start + TimeDelta::hours(1));
        assert_eq!(w.requests().count(), before);
    }

    #[test]
    fn failed_change_changes_nothing() {
        let mut w = DemoWorld::new(DemoConfig::default());
        let own = w
            .requests()
            .find(|r| r.requester.user == APPROVER)
            .map(RequestKey::of)
            .unwrap();
        let spec = ApproveSpec {
            duration: minutes(5),
            namespaces: vec!["monitoring".into()],
            reason: None,
        };
        assert!(matches!(
            w.approve(&own, APPROVER, spec),
            Err(BackendError::Refused(_))
        ));
        assert_eq!(
            w.requests.get(&own).map(|r| r.phase()),
            Some(Phase::Pending)
        );
    }
}
