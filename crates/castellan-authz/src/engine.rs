//! The published snapshot: readers take an `Arc` and keep it for the whole request, the
//! writer swaps in a new one after the database commit.

use crate::snapshot::Snapshot;
use std::sync::{Arc, RwLock};

/// Holds the current snapshot and publishes new ones by an atomic pointer swap.
#[derive(Debug)]
pub struct Engine {
    // The lock guards only the pointer: readers hold it for one `Arc` clone, never across
    // a check, so a publish never waits for queries.
    current: RwLock<Arc<Snapshot>>,
}

impl Engine {
    /// An engine serving `s`.
    pub fn new(s: Snapshot) -> Engine {
        Engine { current: RwLock::new(Arc::new(s)) }
    }

    /// The current snapshot; it stays valid (and unchanged) for as long as it is held.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        // A poisoned lock still holds a valid Arc: a panic cannot tear a pointer store.
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `s` the current snapshot for every later [`Engine::snapshot`].
    pub fn publish(&self, s: Snapshot) {
        let new = Arc::new(s);
        let old = match self.current.write() {
            Ok(mut g) => std::mem::replace(&mut *g, new),
            Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), new),
        };
        // Freeing a large snapshot happens here, after the lock is released.
        drop(old);
    }
}
