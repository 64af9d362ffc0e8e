//! How busy ingest is, shared by the data write queue (which records it) and the
//! background work that gives way to it (online scoring). It names nothing else of the
//! crate, so the access layer can hold it without importing the data plane.

/// How busy the data write queue's writer is: the time it has spent writing, and
/// the row versions it has written, since the process started. Background work
/// (online scoring) reads it to give way to ingest.
#[derive(Debug, Default)]
pub struct IngestLoad {
    busy_micros: std::sync::atomic::AtomicU64,
    rows: std::sync::atomic::AtomicU64,
}

impl IngestLoad {
    /// Records one group commit: how long it took and how many row versions it wrote.
    pub fn record(&self, busy: std::time::Duration, rows: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.busy_micros.fetch_add(u64::try_from(busy.as_micros()).unwrap_or(u64::MAX), Relaxed);
        self.rows.fetch_add(rows as u64, Relaxed);
    }

    /// The writer's time spent writing, in microseconds, and the row versions it
    /// wrote, so far.
    pub fn totals(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.busy_micros.load(Relaxed), self.rows.load(Relaxed))
    }
}
