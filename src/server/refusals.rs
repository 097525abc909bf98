//! Every refusal on the record, at a bounded rate. Each call the server
//! turns away (401, 403, 404, 409, 413, 422, 429, a panic's 500, …) is
//! recorded by one middleware ([`super::record_refusals`]), whoever turned
//! it away: a handler, the body limit, the router, the panic net. A caller
//! (verified user, or a rejected token by its hash) and an address may each
//! have [`RECORDED_PER_MINUTE`] refusals a minute recorded one by one (the
//! audit trail and the hub's Events); the rest are counted, and every
//! [`super::SIGN_EVERY`] one record per caller or address says how many
//! were not recorded one by one. A flood of refused calls cannot flood the
//! record, and the record still says it happened.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Refusals recorded one by one per caller and per address, each minute
/// (the first ones of a burst all are).
pub(crate) const RECORDED_PER_MINUTE: u32 = 20;

/// Calls per second each address may make (tower_governor; a burst of
/// [`CALL_BURST`]); beyond, 429.
pub(crate) const CALLS_PER_SECOND: u64 = 200;
pub(crate) const CALL_BURST: u32 = 1000;

pub(crate) struct Refusals {
    limiter: DefaultKeyedRateLimiter<String>,
    dropped: Mutex<BTreeMap<String, u64>>,
}

impl Default for Refusals {
    fn default() -> Self {
        Self::new(RECORDED_PER_MINUTE)
    }
}

impl Refusals {
    pub(crate) fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(n)),
            dropped: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether one more refusal by `caller` from `address` is recorded one
    /// by one; if not, it is counted against whichever is over its rate.
    /// A `verified` caller has a budget of their own, whatever their
    /// address spent: nobody can make another's refusals anonymous by
    /// exhausting their address first.
    pub(crate) fn admit(&self, caller: &str, address: &str, verified: bool) -> bool {
        let caller_ok = self.limiter.check_key(&caller.to_string()).is_ok();
        if verified {
            if !caller_ok {
                let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
                *dropped.entry(caller.to_string()).or_insert(0) += 1;
            }
            return caller_ok;
        }
        let address_ok = self.limiter.check_key(&address.to_string()).is_ok();
        if caller_ok && address_ok {
            return true;
        }
        let key = if caller_ok { address } else { caller };
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        *dropped.entry(key.to_string()).or_insert(0) += 1;
        false
    }

    /// Forgets callers and addresses whose budget is full again: the map
    /// holds only the last minute's.
    pub(crate) fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// The counts not yet recorded, emptied.
    pub(crate) fn take_dropped(&self) -> BTreeMap<String, u64> {
        let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_recorded_up_to_the_rate_then_counted() {
        let r = Refusals::new(5);
        let admitted = (0..100)
            .filter(|_| r.admit("user:mallory", "addr:127.0.0.1", true))
            .count();
        assert_eq!(admitted, 5);
        assert_eq!(
            r.take_dropped(),
            BTreeMap::from([("user:mallory".to_string(), 95)])
        );
        assert!(r.take_dropped().is_empty(), "taken once");
    }

    #[test]
    fn many_callers_from_one_address_are_bounded_by_the_address() {
        let r = Refusals::new(5);
        let admitted = (0..50)
            .filter(|i| r.admit(&format!("token:{i}"), "addr:10.0.0.9", false))
            .count();
        assert_eq!(admitted, 5);
        assert_eq!(r.take_dropped().get("addr:10.0.0.9"), Some(&45));
        // Another address is not held back by that one.
        assert!(r.admit("token:new", "addr:10.0.0.10", false));
        // A verified caller keeps their own budget on a spent address.
        assert!(r.admit("user:mallory", "addr:10.0.0.9", true));
    }
}
