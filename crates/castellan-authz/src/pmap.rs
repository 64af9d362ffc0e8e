//! A hash map with structural sharing: a vector of `Arc`-shared shards.
//!
//! Cloning the map copies one pointer per shard; writing to a clone copies only the shards it
//! touches (`Arc::make_mut`). A lookup is one hash, one index and one probe in a small std
//! `HashMap`, so reads cost what a plain hash map costs, unlike a deep persistent trie.

use rustc_hash::FxBuildHasher;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// Entries per shard at which the shard count grows (×8).
const SHARD_TARGET: usize = 256;
/// At most 2^16 shards: cloning the outer vector stays in the tens of microseconds.
const MAX_BITS: u32 = 16;

type Shard<K, V> = HashMap<K, V, FxBuildHasher>;

/// A persistent hash map (see the module doc).
#[derive(Debug)]
pub(crate) struct PMap<K, V> {
    // INVARIANT: shards.len() == 1 << bits, and every key lives in shards[shard_of(key)].
    shards: Vec<Arc<Shard<K, V>>>,
    bits: u32,
    len: usize,
}

impl<K, V> Clone for PMap<K, V> {
    fn clone(&self) -> Self {
        PMap { shards: self.shards.clone(), bits: self.bits, len: self.len }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Default for PMap<K, V> {
    fn default() -> Self {
        PMap { shards: vec![Arc::new(Shard::default())], bits: 0, len: 0 }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> PMap<K, V> {
    #[inline]
    fn shard_of(&self, key: &K) -> usize {
        if self.bits == 0 {
            return 0;
        }
        // The middle bits: hashbrown uses the low bits for the slot and the top 7 for tags,
        // so taking either for the shard would cluster every shard's keys.
        let h = FxBuildHasher.hash_one(key);
        ((h >> 24) as usize) & ((1usize << self.bits) - 1)
    }

    /// The value of `key`.
    #[inline]
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.shards[self.shard_of(key)].get(key)
    }

    /// Whether `key` is present.
    pub(crate) fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// A mutable reference, copying the shard first if it is shared.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.shard_of(key);
        if !self.shards[i].contains_key(key) {
            return None;
        }
        Arc::make_mut(&mut self.shards[i]).get_mut(key)
    }

    /// Inserts, returning the previous value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let i = self.shard_of(&key);
        let old = Arc::make_mut(&mut self.shards[i]).insert(key, value);
        if old.is_none() {
            self.len += 1;
            self.maybe_grow();
        }
        old
    }

    /// The value of `key`, inserting `make()` first when absent.
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        // Grow first (it may move entries between shards), then take the entry.
        if !self.contains_key(&key) {
            self.len += 1;
            self.maybe_grow();
        }
        let i = self.shard_of(&key);
        Arc::make_mut(&mut self.shards[i]).entry(key).or_insert_with(make)
    }

    /// Removes, returning the value.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.shard_of(key);
        if !self.shards[i].contains_key(key) {
            return None;
        }
        let old = Arc::make_mut(&mut self.shards[i]).remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    fn maybe_grow(&mut self) {
        if self.len <= (SHARD_TARGET << self.bits) || self.bits >= MAX_BITS {
            return;
        }
        // Rebuilding doubles nothing but this map once per ×8 growth: amortized O(1).
        let bits = (self.bits + 3).min(MAX_BITS);
        let old = std::mem::take(&mut self.shards);
        let per = (self.len >> bits) + 1;
        self.bits = bits;
        self.shards =
            (0..1usize << bits).map(|_| Arc::new(Shard::with_capacity_and_hasher(per, FxBuildHasher))).collect();
        for shard in old {
            let shard = Arc::try_unwrap(shard).unwrap_or_else(|a| (*a).clone());
            for (k, v) in shard {
                let i = self.shard_of(&k);
                Arc::make_mut(&mut self.shards[i]).insert(k, v);
            }
        }
    }
}
