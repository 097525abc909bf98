//! The embedded demo backend: a seeded organisation with simulated traffic,
//! behind the same [`AccessBackend`] trait the cluster mode uses. Also the
//! fixture backend for UI tests, on a manual clock.

pub mod org;
pub(crate) mod world;

use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::mpsc;

pub use world::{DemoConfig, DemoWorld};

use super::{
    AccessBackend, BackendError, BackendEvent, BackendInfo, NewRequest, Op, RequestKey, Seen,
};
use crate::domain::{AccessRequest, Subject};

/// Where the demo's time comes from.
#[derive(Debug, Clone)]
pub enum Clock {
    /// Wall-clock time, shifted so the seeded story starts at start-up.
    System { offset: TimeDelta },
    /// Moved only by [`DemoBackend::advance`]: deterministic tests.
    Manual(Arc<Mutex<DateTime<Utc>>>),
}

pub struct DemoBackend {
    world: Mutex<DemoWorld>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<BackendEvent>>>,
    clock: Clock,
    approver: Subject,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves consistent data (every change is
    // applied to a copy first), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DemoBackend {
    /// A demo on wall-clock time: the seeded story is moved to start now.
    pub fn live(mut config: DemoConfig) -> Self {
        let now = Utc::now();
        let offset = now - config.start;
        config.start = now;
        Self::with_clock(config, Clock::System { offset })
    }

    /// A demo on a manual clock starting at `config.start`.
    pub fn manual(config: DemoConfig) -> Self {
        let clock = Clock::Manual(Arc::new(Mutex::new(config.start)));
        Self::with_clock(config, clock)
    }

    fn with_clock(config: DemoConfig, clock: Clock) -> Self {
        Self {
            world: Mutex::new(DemoWorld::new(config)),
            subscribers: Mutex::new(Vec::new()),
            clock,
            approver: DemoWorld::approver(),
        }
    }

    fn publish(&self, events: Vec<BackendEvent>) {
        if events.is_empty() {
            return;
        }
        let mut subs = lock(&self.subscribers);
        subs.retain(|tx| events.iter().all(|e| tx.send(e.clone()).is_ok()));
    }

    /// Every request of the world now (tests compare what a console shows).
    pub fn requests(&self) -> Vec<AccessRequest> {
        lock(&self.world).requests().cloned().collect()
    }

    /// Deletes a request, as its store would (an ended one past its
    /// retention): consoles see it removed.
    pub fn forget(&self, key: &RequestKey) {
        if lock(&self.world).forget(key) {
            self.publish(vec![BackendEvent::Removed(key.clone())]);
        }
    }

    /// Runs the simulator up to the clock's now.
    pub fn tick(&self) {
        let now = self.now();
        let events = lock(&self.world).advance(now);
        self.publish(events);
    }

    /// Manual clock only: moves time forward and runs the simulator.
    pub fn advance(&self, by: std::time::Duration) {
        if let Clock::Manual(t) = &self.clock {
            let mut now = lock(t);
            *now += TimeDelta::from_std(by).unwrap_or_default();
        }
        self.tick();
    }

    /// Runs the simulator in the background on wall-clock time.
    pub fn spawn_simulator(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(std::time::Duration::from_millis(200));
            loop {
                interval.tick().await;
                match me.upgrade() {
                    Some(backend) => backend.tick(),
                    None => break,
                }
            }
        })
    }

    fn act(
        &self,
        f: impl FnOnce(&mut DemoWorld, &str) -> Result<AccessRequest, BackendError>,
    ) -> Result<AccessRequest, BackendError> {
        self.act_as(&self.approver.user, f)
    }

    /// Runs a change as another user (a second approver, the requester),
    /// publishing what changed: how tests and the simulator play the others.
    pub fn act_as(
        &self,
        user: &str,
        f: impl FnOnce(&mut DemoWorld, &str) -> Result<AccessRequest, BackendError>,
    ) -> Result<AccessRequest, BackendError> {
        let result = {
            let mut world = lock(&self.world);
            let now = self.now();
            let mut events = world.advance(now);
            let r = f(&mut world, user);
            if let Ok(req) = &r {
                events.push(BackendEvent::Upsert(Box::new(req.clone())));
            }
            (r, events)
        };
        self.publish(result.1);
        result.0
    }
}

#[async_trait]
impl AccessBackend for DemoBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: "demo",
            approver: self.approver.clone(),
            clusters: lock(&self.world).clusters(),
            cluster_names: Default::default(),
            identity_note: None,
            may_approve: Some(true),
            requester_groups_verified: true,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        match &self.clock {
            Clock::System { .. } => Utc::now(),
            Clock::Manual(t) => *lock(t),
        }
    }

    fn watch(&self) -> mpsc::UnboundedReceiver<BackendEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        // Hold the subscriber list while taking the snapshot so no event is
        // lost or duplicated between the two.
        let mut subs = lock(&self.subscribers);
        for e in lock(&self.world).snapshot() {
            let _ = tx.send(e);
        }
        let _ = tx.send(BackendEvent::Synced);
        subs.push(tx);
        rx
    }

    async fn create(&self, request: NewRequest) -> Result<AccessRequest, BackendError> {
        self.act(|w, _| w.create(request))
    }

    async fn apply(
        &self,
        key: &RequestKey,
        seen: &Seen,
        op: Op,
    ) -> Result<AccessRequest, BackendError> {
        self.act(|w, me| w.decide(key, me, seen, op, 1))
    }
}
