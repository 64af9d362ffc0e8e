//! Dense, persistent arrays indexed by `u32`: the home of every interned node (containers,
//! users, groups, roles, ACL rows).
//!
//! A [`PVec`] is a vector of `Arc`-shared chunks of 256 elements: an element is one index
//! into a small, cache-resident vector of chunk pointers and one load in the chunk (no
//! hashing), a clone copies one pointer per chunk, and a write to a clone copies only the
//! chunk it touches. A [`Slab`] adds a free list so that indexes of removed items are
//! reused and a long-lived engine does not grow with churn.

use std::fmt;
use std::sync::Arc;

/// log2 of the chunk size.
const BITS: u32 = 8;
const CHUNK: usize = 1 << BITS;
const MASK: usize = CHUNK - 1;

/// A persistent vector (see the module doc).
#[derive(Clone)]
pub(crate) struct PVec<T> {
    // INVARIANT: every chunk has CHUNK slots and len <= chunks.len() * CHUNK; the slots past
    // len are `T::default()`. Chunks are slices, so an element is one load past the chunk
    // pointer (a `Vec` inside the `Arc` would add its header's), and pushing into an
    // unshared last chunk fills a slot in place.
    chunks: Vec<Arc<[T]>>,
    len: usize,
}

impl<T> Default for PVec<T> {
    fn default() -> Self {
        PVec { chunks: Vec::new(), len: 0 }
    }
}

impl<T: Clone + Default> PVec<T> {
    /// Number of elements.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The element at `i` (`i < len`).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> &T {
        &self.chunks[i >> BITS][i & MASK]
    }

    /// A mutable reference to the element at `i`, copying its chunk first if it is shared.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut T {
        &mut Arc::make_mut(&mut self.chunks[i >> BITS])[i & MASK]
    }

    /// Appends `v`; returns its index.
    pub(crate) fn push(&mut self, v: T) -> usize {
        let i = self.len;
        if i == self.chunks.len() * CHUNK {
            self.chunks.push((0..CHUNK).map(|_| T::default()).collect());
        }
        *self.get_mut(i) = v;
        self.len += 1;
        i
    }
}

impl<T> fmt::Debug for PVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PVec(len {})", self.len)
    }
}

/// A [`PVec`] whose released indexes are reused.
#[derive(Clone)]
pub(crate) struct Slab<T> {
    items: PVec<T>,
    // INVARIANT: the released indexes; their items are `T::default()` and nothing refers to them.
    free: Arc<Vec<u32>>,
    live: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { items: PVec::default(), free: Arc::default(), live: 0 }
    }
}

impl<T: Clone + Default> Slab<T> {
    /// Stores `v` at a free index (a released one first) and returns the index.
    ///
    /// Indexes are `u32`: a slab never holds 2^31 items (each costs tens of bytes, so memory
    /// runs out long before), which leaves the top bit free for the callers' tags.
    pub(crate) fn alloc(&mut self, v: T) -> u32 {
        self.live += 1;
        if let Some(i) = Arc::make_mut(&mut self.free).pop() {
            *self.items.get_mut(i as usize) = v;
            return i;
        }
        self.items.push(v) as u32
    }

    /// Releases index `i` and returns what it held.
    pub(crate) fn release(&mut self, i: u32) -> T {
        self.live -= 1;
        Arc::make_mut(&mut self.free).push(i);
        std::mem::take(self.items.get_mut(i as usize))
    }

    /// The item at `i` (a live index).
    #[inline]
    pub(crate) fn get(&self, i: u32) -> &T {
        self.items.get(i as usize)
    }

    /// A mutable reference to the item at `i`, copying its chunk first if it is shared.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: u32) -> &mut T {
        self.items.get_mut(i as usize)
    }

    /// Number of live items.
    pub(crate) fn live(&self) -> usize {
        self.live
    }
}

impl<T> fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slab(live {})", self.live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_is_unchanged_by_writes_to_the_original() {
        let mut a: PVec<u32> = PVec::default();
        for i in 0..1000 {
            a.push(i);
        }
        let b = a.clone();
        *a.get_mut(700) = 7;
        a.push(5);
        assert_eq!((*a.get(700), *b.get(700), a.len(), b.len()), (7, 700, 1001, 1000));
        assert!((0..1000).all(|i| *b.get(i) == i as u32));
    }

    #[test]
    fn released_indexes_are_reused() {
        let mut s: Slab<u64> = Slab::default();
        let ids: Vec<u32> = (0..600).map(|i| s.alloc(i)).collect();
        assert_eq!(s.release(ids[3]), 3);
        assert_eq!(s.release(ids[500]), 500);
        assert_eq!(s.live(), 598);
        let again = [s.alloc(9), s.alloc(8), s.alloc(7)];
        assert_eq!(again, [500, 3, 600]);
        assert_eq!(*s.get(3), 8);
    }
}
