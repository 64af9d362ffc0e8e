//! A persistent hash table whose slots hold the data itself, for the lookups on a check's
//! critical path (leaf objects, users) and for the id → index maps.
//!
//! The table is a directory of `Arc`-shared shards; a shard is a flat array of slots with
//! linear probing. A lookup is the directory (small, cache-resident), then the slot itself:
//! one cache miss on a large table, where a `HashMap` behind an `Arc` costs a header, the
//! control bytes and then the slot. A clone copies the directory; a write to a clone copies
//! only the shard it touches (a few kilobytes). Shards grow one at a time by a quarter, so
//! the table stays 56–70% full; the directory doubles when shards average 256 entries.

use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// A slot: `Default` is the empty slot.
pub(crate) trait Slot: Clone + Default {
    /// Whether the slot is empty.
    fn is_empty(&self) -> bool;
    /// The hash of the key of an occupied slot (the one it was inserted with).
    fn hash(&self) -> u64;
}

/// Average entries per shard above which the directory doubles.
const SHARD_TARGET: usize = 256;
const MIN_CAP: usize = 8;
const MAX_BITS: u32 = 24;

/// The persistent table (see the module doc).
#[derive(Clone)]
pub(crate) struct PTable<S> {
    // INVARIANT: shards.len() == counts.len() == 1 << bits; counts[i] is the number of
    // occupied slots of shards[i], which is below 7/10 of its length (so every probe meets an
    // empty slot); an entry of hash h lives in shards[shard_of(h)] and is reachable from
    // home(h) by linear probing without crossing an empty slot.
    shards: Vec<Arc<[S]>>,
    counts: Vec<u32>,
    bits: u32,
    len: usize,
}

impl<S: Slot> Default for PTable<S> {
    fn default() -> Self {
        PTable { shards: vec![empty_shard(MIN_CAP)], counts: vec![0], bits: 0, len: 0 }
    }
}

impl<S> fmt::Debug for PTable<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PTable(len {}, shards {})", self.len, self.shards.len())
    }
}

fn empty_shard<S: Slot>(cap: usize) -> Arc<[S]> {
    (0..cap).map(|_| S::default()).collect()
}

/// The first slot probed for hash `h` in a shard of `cap` slots: the low 32 bits scaled to
/// the capacity (which need not be a power of two); the shard is chosen by the top bits.
#[inline]
fn home(h: u64, cap: usize) -> usize {
    (((h & 0xFFFF_FFFF) * cap as u64) >> 32) as usize
}

#[inline]
fn next(i: usize, cap: usize) -> usize {
    if i + 1 == cap {
        0
    } else {
        i + 1
    }
}

/// Puts `slot` at the first empty slot from its home (the shard has one).
fn place<S: Slot>(shard: &mut [S], h: u64, slot: S) {
    let cap = shard.len();
    let mut i = home(h, cap);
    while !shard[i].is_empty() {
        i = next(i, cap);
    }
    shard[i] = slot;
}

impl<S: Slot> PTable<S> {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn shard_of(&self, h: u64) -> usize {
        if self.bits == 0 {
            0
        } else {
            (h >> (64 - self.bits)) as usize
        }
    }

    /// The position of the entry of hash `h` satisfying `eq`.
    #[inline]
    fn position(&self, h: u64, mut eq: impl FnMut(&S) -> bool) -> Option<(usize, usize)> {
        let si = self.shard_of(h);
        let shard = &self.shards[si];
        let cap = shard.len();
        let mut i = home(h, cap);
        loop {
            let s = &shard[i];
            if s.is_empty() {
                return None;
            }
            if eq(s) {
                return Some((si, i));
            }
            i = next(i, cap);
        }
    }

    /// The first slot a lookup of hash `h` reads. Reading it before any branch that depends
    /// on another lookup's data starts both cache misses at once.
    #[inline]
    pub(crate) fn home(&self, h: u64) -> &S {
        let shard = &self.shards[self.shard_of(h)];
        &shard[home(h, shard.len())]
    }

    /// The entry of hash `h` satisfying `eq`.
    #[inline]
    pub(crate) fn get(&self, h: u64, eq: impl FnMut(&S) -> bool) -> Option<&S> {
        self.position(h, eq).map(|(si, i)| &self.shards[si][i])
    }

    /// A mutable reference to the entry, copying its shard first if it is shared. The caller
    /// must not change the entry's key.
    pub(crate) fn get_mut(&mut self, h: u64, eq: impl FnMut(&S) -> bool) -> Option<&mut S> {
        let (si, i) = self.position(h, eq)?;
        Some(&mut Arc::make_mut(&mut self.shards[si])[i])
    }

    /// Inserts an entry whose key is absent (the caller checks).
    pub(crate) fn insert(&mut self, h: u64, slot: S) {
        let si = self.shard_of(h);
        if (self.counts[si] as usize + 1) * 10 > self.shards[si].len() * 7 {
            let cap = self.shards[si].len();
            self.regrow(si, cap + cap / 4 + 1);
        }
        place(Arc::make_mut(&mut self.shards[si]), h, slot);
        self.counts[si] += 1;
        self.len += 1;
        if self.len > SHARD_TARGET << self.bits && self.bits < MAX_BITS {
            self.reshard(self.bits + 1);
        }
    }

    /// Removes and returns the entry of hash `h` satisfying `eq`.
    pub(crate) fn remove(&mut self, h: u64, eq: impl FnMut(&S) -> bool) -> Option<S> {
        let (si, i) = self.position(h, eq)?;
        let shard = Arc::make_mut(&mut self.shards[si]);
        let cap = shard.len();
        let out = std::mem::take(&mut shard[i]);
        // Backward-shift deletion: pull later entries of the run into the hole when that
        // keeps them reachable from their home, so no tombstones are needed.
        let (mut hole, mut j) = (i, i);
        loop {
            j = next(j, cap);
            if shard[j].is_empty() {
                break;
            }
            let k = home(shard[j].hash(), cap);
            let reachable_without_hole = if hole <= j { hole < k && k <= j } else { hole < k || k <= j };
            if !reachable_without_hole {
                shard[hole] = std::mem::take(&mut shard[j]);
                hole = j;
            }
        }
        self.counts[si] -= 1;
        self.len -= 1;
        Some(out)
    }

    /// Every entry, in no particular order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &S> + '_ {
        self.shards.iter().flat_map(|s| s.iter()).filter(|s| !s.is_empty())
    }

    /// Rebuilds shard `si` with `cap` slots.
    fn regrow(&mut self, si: usize, cap: usize) {
        let mut fresh = empty_shard::<S>(cap.max(MIN_CAP));
        let target = Arc::make_mut(&mut fresh);
        for s in self.shards[si].iter().filter(|s| !s.is_empty()) {
            place(target, s.hash(), s.clone());
        }
        self.shards[si] = fresh;
    }

    /// Rebuilds the whole table with `2^bits` shards (amortized: once per doubling).
    fn reshard(&mut self, bits: u32) {
        let n = 1usize << bits;
        let per = (self.len >> bits) + 1;
        let cap = (per + per / 2).max(MIN_CAP);
        let mut shards: Vec<Arc<[S]>> = (0..n).map(|_| empty_shard(cap)).collect();
        let mut counts = vec![0u32; n];
        let old = std::mem::take(&mut self.shards);
        self.bits = bits;
        for s in old.iter().flat_map(|s| s.iter()).filter(|s| !s.is_empty()) {
            let h = s.hash();
            let si = self.shard_of(h);
            if (counts[si] as usize + 1) * 10 > shards[si].len() * 7 {
                let grown = shards[si].len() * 5 / 4 + 1;
                let mut fresh = empty_shard::<S>(grown);
                let target = Arc::make_mut(&mut fresh);
                for x in shards[si].iter().filter(|x| !x.is_empty()) {
                    place(target, x.hash(), x.clone());
                }
                shards[si] = fresh;
            }
            place(Arc::make_mut(&mut shards[si]), h, s.clone());
            counts[si] += 1;
        }
        self.shards = shards;
        self.counts = counts;
    }
}

/// A 64-bit hash of a uuid and a small salt (an object type), by one folded multiply: ids
/// are random or time-ordered, and both halves take part.
#[inline]
pub(crate) fn hash_id(id: Uuid, salt: u8) -> u64 {
    let v = id.as_u128();
    let a = (v as u64) ^ 0x243F_6A88_85A3_08D3 ^ u64::from(salt);
    let b = ((v >> 64) as u64) ^ 0x1319_8A2E_0370_7344;
    let m = u128::from(a) * u128::from(b);
    let x = (m as u64) ^ ((m >> 64) as u64);
    // One more multiply spreads the entropy to the top bits, which pick the shard.
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Clone, Default, Debug, PartialEq)]
    struct KV {
        key: u64,
        val: u64,
        used: bool,
    }

    impl Slot for KV {
        fn is_empty(&self) -> bool {
            !self.used
        }
        fn hash(&self) -> u64 {
            h(self.key)
        }
    }

    /// A deliberately poor hash (many collisions) so probing and deletion runs are long.
    fn h(k: u64) -> u64 {
        (k % 97).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k % 5)
    }

    #[test]
    fn the_table_agrees_with_a_hash_map_under_random_inserts_and_removals() {
        let mut t: PTable<KV> = PTable::default();
        let mut m: HashMap<u64, u64> = HashMap::new();
        let mut x = 7u64;
        let mut snapshots = Vec::new();
        for step in 0..40_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 3_000;
            if x.is_multiple_of(3) {
                let got = t.remove(h(key), |s| s.key == key).map(|s| s.val);
                assert_eq!(got, m.remove(&key));
            } else if let Some(s) = t.get_mut(h(key), |s| s.key == key) {
                s.val = step;
                m.insert(key, step);
            } else {
                t.insert(h(key), KV { key, val: step, used: true });
                m.insert(key, step);
            }
            if step % 5_000 == 0 {
                snapshots.push((t.clone(), m.clone()));
            }
        }
        assert_eq!(t.len(), m.len());
        for k in 0..3_000 {
            assert_eq!(t.get(h(k), |s| s.key == k).map(|s| s.val), m.get(&k).copied());
        }
        // Old clones are untouched by later writes.
        for (t, m) in snapshots {
            assert_eq!(t.len(), m.len());
            assert_eq!(t.iter().count(), m.len());
            for (k, v) in m {
                assert_eq!(t.get(h(k), |s| s.key == k).map(|s| s.val), Some(v));
            }
        }
    }
}
