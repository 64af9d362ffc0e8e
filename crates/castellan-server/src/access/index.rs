//! The replica's in-memory authorization index and the follower that keeps it at
//! the database's newest revision.

use crate::change::{self, Change};
use castellan_authz::{Engine, Snapshot};
use castellan_store::{Revision, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// The index plus what it needs to follow the change feed.
pub struct Index {
    engine: Engine,
    store: Arc<dyn Store>,
    /// Serializes catch-ups so changes are applied once and in order.
    apply: Mutex<()>,
    applied: watch::Sender<Revision>,
}

/// Why the index could not be built or advanced.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored state is not a valid model (or a change did not apply).
    #[error("authorization state: {0}")]
    Model(String),
}

async fn build(store: &dyn Store) -> Result<Snapshot, IndexError> {
    let mut tx = store.read().await?;
    let state = tx.load_access_state().await?;
    drop(tx);
    let muts = change::mutations_from_state(&state);
    let snap = match Snapshot::build(muts.iter().cloned()) {
        Ok(s) => s,
        Err(e) => {
            // A stored state the model refuses must not keep the server from starting.
            // Cold-build mutations only add, so leaving out the ones that do not apply
            // can only deny more, never grant more; each is logged.
            tracing::error!(error = %e, "the stored authorization state does not build cleanly; skipping what does not apply");
            let mut snap = Snapshot::empty();
            for m in muts {
                match snap.apply(std::slice::from_ref(&m)) {
                    Ok(s) => snap = s,
                    Err(e) => tracing::error!(error = %e, mutation = ?m, "skipped while building the index"),
                }
            }
            snap
        }
    };
    Ok(snap.with_revision(state.revision))
}

impl Index {
    /// Builds the index from the database (a cold start).
    pub async fn load(store: Arc<dyn Store>) -> Result<Index, IndexError> {
        let snap = build(&*store).await?;
        let (applied, _) = watch::channel(snap.revision());
        Ok(Index { engine: Engine::new(snap), store, apply: Mutex::new(()), applied })
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.engine.snapshot()
    }

    /// The newest revision applied.
    pub fn revision(&self) -> Revision {
        *self.applied.borrow()
    }

    /// Applies every committed change newer than the index, in order.
    pub async fn catch_up(&self) -> Result<Revision, IndexError> {
        let _guard = self.apply.lock().await;
        loop {
            let from = self.engine.snapshot().revision();
            let batch = self.store.changes_since(from, 500).await?;
            if batch.is_empty() {
                return Ok(from);
            }
            let base = self.engine.snapshot();
            let mut next: Option<Snapshot> = None;
            for c in &batch {
                let changes =
                    change::decode(&c.payload).map_err(|e| IndexError::Model(format!("change {}: {e}", c.revision)))?;
                let muts: Vec<_> = changes.iter().map(Change::to_mutation).collect();
                let src = next.as_ref().unwrap_or(&base);
                match src.apply(&muts) {
                    Ok(s) => next = Some(s.with_revision(c.revision)),
                    Err(e) => {
                        // The writer validated this change against the same history, so
                        // this means the index and the database disagree: rebuild from
                        // the database (at its newest revision) and carry on from there.
                        tracing::error!(revision = c.revision, error = %e, "change did not apply; rebuilding the index");
                        next = Some(build(&*self.store).await?);
                        break;
                    }
                }
            }
            let Some(snap) = next else { return Ok(from) };
            let rev = snap.revision();
            self.engine.publish(snap);
            self.applied.send_replace(rev);
        }
    }

    /// Waits until the index has applied `rev`, polling the feed, for at most `timeout`.
    pub async fn wait_for(&self, rev: Revision, timeout: Duration) -> Result<bool, IndexError> {
        if self.revision() >= rev {
            return Ok(true);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.catch_up().await? >= rev {
                return Ok(true);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let mut rx = self.applied.subscribe();
            let nap = (deadline - now).min(Duration::from_millis(50));
            let _ = tokio::time::timeout(nap, rx.changed()).await;
        }
    }

    /// Follows the feed forever, every `interval` (run as a background task).
    pub async fn follow(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.catch_up().await {
                tracing::warn!(error = %e, "following the change feed failed; will retry");
            }
        }
    }
}
