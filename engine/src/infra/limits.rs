//! In-process rate limits: a token bucket per key for requests, and a failure counter per
//! account and per address for logins. Kept in memory: with several instances each
//! enforces its own share, which is enough to stop abuse without another service.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::settings::LimitSettings;

const SHARDS: usize = 16;
/// Past this many keys in a shard, idle entries are swept.
const SWEEP_AT: usize = 4096;

pub struct Limits {
    pub requests: TokenBuckets,
    pub logins: FailureCounter,
}

impl Limits {
    pub fn new(s: &LimitSettings) -> Self {
        Self {
            requests: TokenBuckets::new(s.requests_per_minute, Duration::from_secs(60)),
            logins: FailureCounter::new(s.login_failures, Duration::from_secs(s.login_window_secs)),
        }
    }
}

/// How long to wait before trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, rounded up, at least 1: what goes into a `Retry-After` header.
    pub fn secs(&self) -> u64 {
        self.0.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// `DefaultHasher::new()` uses fixed keys, so a key always lands in the same shard.
fn shard_of(k: &str, n: usize) -> usize {
    let mut d = std::hash::DefaultHasher::new();
    k.hash(&mut d);
    (d.finish() as usize) % n
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct TokenBuckets {
    capacity: f64,
    per_sec: f64,
    shards: Vec<Mutex<HashMap<String, Bucket>>>,
}

impl TokenBuckets {
    /// `per_window` requests per `window`, with bursts up to `per_window`. 0 disables.
    pub fn new(per_window: u32, window: Duration) -> Self {
        Self {
            capacity: f64::from(per_window),
            per_sec: f64::from(per_window) / window.as_secs_f64().max(1.0),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Gives back a token taken for a request that turned out not to count against `key`.
    pub fn refund(&self, key: &str) {
        let mut map = self.shards[shard_of(key, SHARDS)].lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = map.get_mut(key) {
            b.tokens = (b.tokens + 1.0).min(self.capacity);
        }
    }

    /// Takes one token for `key`, or says how long until one is free.
    pub fn check(&self, key: &str) -> Result<(), RetryAfter> {
        if self.capacity <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.shards[shard_of(key, SHARDS)].lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            let full = Duration::from_secs_f64(self.capacity / self.per_sec);
            map.retain(|_, b| now.duration_since(b.at) < full);
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket { tokens: self.capacity, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.per_sec).min(self.capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(RetryAfter(Duration::from_secs_f64((1.0 - b.tokens) / self.per_sec)))
        }
    }
}

pub struct FailureCounter {
    max: u32,
    window: Duration,
    shards: Vec<Mutex<HashMap<String, Vec<Instant>>>>,
}

impl FailureCounter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self { max, window, shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    fn with<R>(&self, key: &str, f: impl FnOnce(&mut Vec<Instant>, Instant) -> R) -> R {
        let now = Instant::now();
        let mut map = self.shards[shard_of(key, SHARDS)].lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < self.window));
        }
        let v = map.entry(key.to_owned()).or_default();
        v.retain(|t| now.duration_since(*t) < self.window);
        f(v, now)
    }

    /// Counts an attempt for `key` before it is judged, or refuses when `max` attempts
    /// already count within the window. Counting first means attempts sent in parallel
    /// cannot all pass the check before any of them fails; a successful attempt takes its
    /// count back with [`Self::forgive`].
    pub fn attempt(&self, key: &str) -> Result<(), RetryAfter> {
        if self.max == 0 {
            return Ok(());
        }
        self.with(key, |v, now| match v.first() {
            Some(first) if v.len() >= self.max as usize => {
                Err(RetryAfter(self.window.saturating_sub(now.duration_since(*first))))
            }
            _ => {
                v.push(now);
                Ok(())
            }
        })
    }

    /// Takes back the latest attempt counted for `key` (it succeeded).
    pub fn forgive(&self, key: &str) {
        self.with(key, |v, _| {
            v.pop();
        });
    }

    pub fn clear(&self, key: &str) {
        self.with(key, |v, _| v.clear());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refuses_past_capacity_and_says_when() {
        let b = TokenBuckets::new(3, Duration::from_secs(60));
        assert!(b.check("a").is_ok() && b.check("a").is_ok() && b.check("a").is_ok());
        let wait = b.check("a").expect_err("fourth in a minute");
        assert!(wait.secs() >= 19 && wait.secs() <= 20, "{wait:?}");
        assert!(b.check("b").is_ok(), "other keys have their own bucket");
    }

    #[test]
    fn attempts_count_before_judging_and_clear_resets() {
        let f = FailureCounter::new(2, Duration::from_secs(60));
        assert!(f.attempt("x").is_ok());
        assert!(f.attempt("x").is_ok());
        assert!(f.attempt("x").is_err(), "a third attempt while two are counted");
        f.forgive("x");
        assert!(f.attempt("x").is_ok(), "a forgiven attempt frees its place");
        f.clear("x");
        assert!(f.attempt("x").is_ok());
    }
}
