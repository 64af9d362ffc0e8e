//! Rate limits for the sign-in and credential endpoints, per credential and per
//! source address, and a growing delay after repeated failed sign-ins.
//!
//! Limits are kept in memory on each replica (a token bucket per key); behind a load
//! balancer the effective limit is the per-replica limit times the replicas.

use crate::error::ApiError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket per key.
pub struct Limiter {
    per_minute: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    /// `per_minute` sustained, with bursts of `burst`.
    pub fn new(per_minute: u32, burst: u32) -> Limiter {
        Limiter {
            per_minute: f64::from(per_minute),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > 100_000 {
            // Forget idle keys rather than grow without bound.
            b.retain(|_, (tokens, at)| *tokens < self.burst || now.duration_since(*at) < Duration::from_secs(600));
        }
        let (tokens, at) = b.entry(key.to_owned()).or_insert((self.burst, now));
        let refill = now.duration_since(*at).as_secs_f64() * self.per_minute / 60.0;
        *tokens = (*tokens + refill).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) * 60.0 / self.per_minute).ceil().max(1.0);
            Err(ApiError::RateLimited { retry_after_secs: wait as u64 })
        }
    }
}

/// Failed sign-ins per key (an email, an address): after `free` failures, each
/// further attempt must wait twice as long as the last, up to 15 minutes.
pub struct Backoff {
    free: u32,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

impl Backoff {
    /// A backoff that lets `free` failures through before slowing down.
    pub fn new(free: u32) -> Backoff {
        Backoff { free, failures: Mutex::new(HashMap::new()) }
    }

    fn wait_for(&self, n: u32) -> Duration {
        if n < self.free {
            return Duration::ZERO;
        }
        let secs = 1u64 << (n - self.free).min(20);
        Duration::from_secs(secs).min(MAX_WAIT)
    }

    /// Refuses an attempt made before the key's wait is over.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, last)) = f.get(key) {
            let until = *last + self.wait_for(*n);
            let now = Instant::now();
            if until > now {
                return Err(ApiError::RateLimited { retry_after_secs: (until - now).as_secs().max(1) });
            }
        }
        Ok(())
    }

    /// Records a failure.
    pub fn failed(&self, key: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let e = f.entry(key.to_owned()).or_insert((0, Instant::now()));
        e.0 = e.0.saturating_add(1);
        e.1 = Instant::now();
    }

    /// Forgets the key's failures (after a success).
    pub fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// The limits the server applies.
pub struct Limits {
    /// Sign-in attempts per source address.
    pub login_by_ip: Limiter,
    /// Sign-in attempts per email.
    pub login_by_email: Limiter,
    /// Credential-minting calls (keys, tokens, invitations) per credential or address.
    pub tokens: Limiter,
    /// Single sign-on requests (start, callback, command-line exchange) per address:
    /// each may call the identity provider.
    pub sso_by_ip: Limiter,
    /// Failed sign-ins per (account, address), and failed password checks per account.
    pub backoff: Backoff,
    /// Failed sign-ins per source address (more lenient: many people may share one).
    pub backoff_ip: Backoff,
    /// Failed sign-ins per account from addresses it has never signed in from: slows
    /// guessing spread over many addresses without locking the owner out of the
    /// addresses it uses.
    pub backoff_unknown: Backoff,
    /// (account, address) pairs that have signed in successfully on this replica.
    pub known: KnownAddresses,
}

/// The (account, address) pairs that have signed in successfully, so that failures
/// elsewhere never lock an account out of the places it is used from. Bounded: when
/// full, the oldest half is forgotten.
#[derive(Default)]
pub struct KnownAddresses {
    pairs: Mutex<(HashMap<String, u64>, u64)>,
}

const KNOWN_MAX: usize = 100_000;

impl KnownAddresses {
    /// Whether `pair` has signed in successfully before.
    pub fn contains(&self, pair: &str) -> bool {
        self.pairs.lock().unwrap_or_else(|p| p.into_inner()).0.contains_key(pair)
    }

    /// Remembers a successful sign-in.
    pub fn remember(&self, pair: &str) {
        let mut g = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        let (map, clock) = &mut *g;
        *clock += 1;
        let now = *clock;
        map.insert(pair.to_owned(), now);
        if map.len() > KNOWN_MAX {
            let cutoff = now - (KNOWN_MAX as u64) / 2;
            map.retain(|_, t| *t > cutoff);
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            login_by_ip: Limiter::new(30, 10),
            login_by_email: Limiter::new(10, 5),
            tokens: Limiter::new(60, 20),
            sso_by_ip: Limiter::new(120, 60),
            backoff: Backoff::new(3),
            backoff_ip: Backoff::new(20),
            backoff_unknown: Backoff::new(10),
            known: KnownAddresses::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let l = Limiter::new(60, 3);
        for _ in 0..3 {
            assert!(l.check("k").is_ok());
        }
        match l.check("k") {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected a 429, got {other:?}"),
        }
        assert!(l.check("other").is_ok(), "keys are independent");
    }

    #[test]
    fn repeated_failures_make_the_next_attempt_wait_longer() {
        let b = Backoff::new(3);
        for _ in 0..2 {
            b.failed("e");
            assert!(b.check("e").is_ok());
        }
        b.failed("e");
        assert!(b.check("e").is_err());
        assert!(b.wait_for(6) > b.wait_for(4));
        assert_eq!(b.wait_for(100), MAX_WAIT);
        b.succeeded("e");
        assert!(b.check("e").is_ok());
    }
}
