//! A small in-memory cache with a time to live, sharded to keep lock contention low. Used
//! only on SQLite, where one process owns the database and so sees every change: each
//! write that makes an entry wrong evicts it. On PostgreSQL several instances may share
//! the store, so the cache is off and every read goes there. Entries also age out, a
//! bound on any staleness.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 16;
/// The longest an entry is kept.
pub const TTL_MS: i64 = 60_000;
const MAX_PER_SHARD: usize = 8192;

pub struct Cache<V> {
    enabled: bool,
    shards: Vec<Mutex<HashMap<String, (V, i64)>>>,
}

impl<V: Clone> Cache<V> {
    pub fn new(enabled: bool) -> Self {
        Self { enabled, shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<String, (V, i64)>> {
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        self.shards[(h.finish() as usize) % SHARDS].lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str, now: i64) -> Option<V> {
        if !self.enabled {
            return None;
        }
        self.shard(key).get(key).filter(|(_, until)| *until > now).map(|(v, _)| v.clone())
    }

    /// Keeps `value` under `key` until `until` (at most [`TTL_MS`] from `now`).
    pub fn put(&self, key: &str, value: V, until: i64, now: i64) {
        if !self.enabled {
            return;
        }
        let mut shard = self.shard(key);
        if shard.len() >= MAX_PER_SHARD {
            shard.retain(|_, (_, until)| *until > now);
        }
        shard.insert(key.to_owned(), (value, until.min(now + TTL_MS)));
    }

    pub fn remove(&self, key: &str) {
        self.shard(key).remove(key);
    }

    /// Forgets every entry `drop` picks.
    pub fn remove_where(&self, drop: impl Fn(&V) -> bool) {
        for s in &self.shards {
            s.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, (v, _)| !drop(v));
        }
    }
}
