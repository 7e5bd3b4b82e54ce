//! Login throttling: a rate limit per client address, and a lockout per account.
//!
//! An address may try [`BURST`] logins at once and one more every [`REFILL`] after that; beyond
//! that it is told when to come back (HTTP 429 with `Retry-After`), without a password being
//! checked. An account with [`LOCK_AFTER`] failed logins within [`LOCK_WINDOW`] is locked for
//! [`LOCK_FOR`] after the last of them: every login to it fails with the same reply as a wrong
//! password, so the lock tells an attacker nothing. The state is in memory (a restart clears
//! it) and bounded: at most [`MAX_TRACKED`] addresses and accounts each, the stalest dropped.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Logins an address may try at once.
pub const BURST: u32 = 10;
/// One more login per this long, after the burst.
pub const REFILL: Duration = Duration::from_secs(6);
/// Failed logins that lock an account…
pub const LOCK_AFTER: usize = 5;
/// …when they fall within this span…
pub const LOCK_WINDOW: Duration = Duration::from_secs(15 * 60);
/// …for this long after the last of them.
pub const LOCK_FOR: Duration = Duration::from_secs(15 * 60);
/// Addresses and accounts tracked at most.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct State {
    addresses: HashMap<IpAddr, Bucket>,
    /// Times of each account's recent failed logins, oldest first (at most [`LOCK_AFTER`]).
    failures: HashMap<String, VecDeque<Instant>>,
}

#[derive(Debug, Default)]
pub struct LoginGuard {
    state: Mutex<State>,
}

impl LoginGuard {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one login attempt from `address`'s allowance, or says how long to wait for one.
    pub fn admit(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut state = self.lock();
        if state.addresses.len() >= MAX_TRACKED && !state.addresses.contains_key(&address) {
            // Full buckets carry no information: drop those first, then the stalest.
            let per_token = REFILL.as_secs_f64();
            state.addresses.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() / per_token < f64::from(BURST)
            });
            if state.addresses.len() >= MAX_TRACKED
                && let Some(stalest) = state
                    .addresses
                    .iter()
                    .min_by_key(|(_, b)| b.at)
                    .map(|(a, _)| *a)
            {
                state.addresses.remove(&stalest);
            }
        }
        let bucket = state.addresses.entry(address).or_insert(Bucket {
            tokens: f64::from(BURST),
            at: now,
        });
        let refilled = now.duration_since(bucket.at).as_secs_f64() / REFILL.as_secs_f64();
        bucket.tokens = (bucket.tokens + refilled).min(f64::from(BURST));
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) * REFILL.as_secs_f64();
            Err(Duration::from_secs_f64(wait.ceil().max(1.0)))
        }
    }

    /// Whether `account` is locked out now.
    #[must_use]
    pub fn is_locked(&self, account: &str, now: Instant) -> bool {
        self.lock().failures.get(account).is_some_and(|times| {
            times.len() >= LOCK_AFTER
                && times
                    .back()
                    .is_some_and(|last| now.duration_since(*last) < LOCK_FOR)
                && times
                    .back()
                    .zip(times.front())
                    .is_some_and(|(last, first)| last.duration_since(*first) <= LOCK_WINDOW)
        })
    }

    /// Records a failed login of `account`.
    pub fn failed(&self, account: &str, now: Instant) {
        let mut state = self.lock();
        if state.failures.len() >= MAX_TRACKED && !state.failures.contains_key(account) {
            state.failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < LOCK_WINDOW)
            });
            if state.failures.len() >= MAX_TRACKED {
                return;
            }
        }
        let times = state.failures.entry(account.to_string()).or_default();
        times.push_back(now);
        while times.len() > LOCK_AFTER
            || times
                .front()
                .is_some_and(|first| now.duration_since(*first) > LOCK_WINDOW)
        {
            times.pop_front();
        }
    }

    /// A successful login clears the account's failures.
    pub fn succeeded(&self, account: &str) {
        self.lock().failures.remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_a_burst_then_one_login_per_refill() {
        let guard = LoginGuard::default();
        let (ip, other): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let start = Instant::now();
        for _ in 0..BURST {
            guard.admit(ip, start).unwrap();
        }
        let wait = guard.admit(ip, start).unwrap_err();
        assert_eq!(wait, REFILL);
        guard.admit(other, start).unwrap();
        // Half a refill later: still waiting, for the other half.
        assert_eq!(guard.admit(ip, start + REFILL / 2).unwrap_err(), REFILL / 2);
        guard.admit(ip, start + REFILL).unwrap();
        assert!(guard.admit(ip, start + REFILL).is_err());
        // After a long pause the whole burst is back, no more.
        let later = start + REFILL * 100;
        for _ in 0..BURST {
            guard.admit(ip, later).unwrap();
        }
        assert!(guard.admit(ip, later).is_err());
    }

    #[test]
    fn five_failures_within_the_window_lock_the_account_for_a_while() {
        let guard = LoginGuard::default();
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        for i in 0..4 {
            guard.failed("root", start + minute * i);
        }
        assert!(!guard.is_locked("root", start + minute * 4));
        guard.failed("root", start + minute * 4);
        assert!(guard.is_locked("root", start + minute * 4));
        assert!(!guard.is_locked("alice", start + minute * 4));
        assert!(guard.is_locked("root", start + minute * 3 + LOCK_FOR));
        assert!(!guard.is_locked("root", start + minute * 4 + LOCK_FOR));

        // Failures spread wider than the window do not lock.
        let guard = LoginGuard::default();
        for i in 0..10 {
            guard.failed("bob", start + LOCK_WINDOW / 3 * i);
            assert!(!guard.is_locked("bob", start + LOCK_WINDOW / 3 * i), "{i}");
        }

        // A success clears the count.
        let guard = LoginGuard::default();
        for i in 0..4 {
            guard.failed("carol", start + minute * i);
        }
        guard.succeeded("carol");
        guard.failed("carol", start + minute * 5);
        assert!(!guard.is_locked("carol", start + minute * 5));
    }
}
