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
    /// Slow group commits, by the part that took longest: waiting for the
    /// writer's connection, writing the rows, committing.
    slow: [std::sync::atomic::AtomicU64; 3],
    slowest_micros: std::sync::atomic::AtomicU64,
}

/// A group commit slower than this is counted and logged.
pub const SLOW_GROUP: std::time::Duration = std::time::Duration::from_millis(50);

/// Slow group commits (over [`SLOW_GROUP`]) so far, by the part of each that took
/// longest.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SlowGroups {
    /// …waiting for the writer's connection (held by other background writes: a
    /// retention batch, online scores).
    pub waiting: u64,
    /// …writing the rows.
    pub writing: u64,
    /// …committing (on SQLite with `synchronous = FULL`, the write-ahead log's fsync).
    pub committing: u64,
    /// The slowest group commit, microseconds.
    pub slowest_micros: u64,
}

impl IngestLoad {
    /// Records one group commit: how long it took and how many row versions it wrote.
    pub fn record(&self, busy: std::time::Duration, rows: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.busy_micros.fetch_add(u64::try_from(busy.as_micros()).unwrap_or(u64::MAX), Relaxed);
        self.rows.fetch_add(rows as u64, Relaxed);
    }

    /// Records the parts of one group commit (`wait` for the writer's connection,
    /// `write` of the rows, `commit`) if together they took longer than
    /// [`SLOW_GROUP`], and logs it: a request in the group waited that long.
    pub fn record_parts(&self, wait: std::time::Duration, write: std::time::Duration, commit: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let total = wait + write + commit;
        if total <= SLOW_GROUP {
            return;
        }
        let part = if commit >= write && commit >= wait {
            2
        } else if write >= wait {
            1
        } else {
            0
        };
        self.slow[part].fetch_add(1, Relaxed);
        self.slowest_micros.fetch_max(u64::try_from(total.as_micros()).unwrap_or(u64::MAX), Relaxed);
        tracing::warn!(
            total_ms = total.as_millis() as u64,
            waiting_ms = wait.as_millis() as u64,
            writing_ms = write.as_millis() as u64,
            committing_ms = commit.as_millis() as u64,
            "a group commit of ingest was slow"
        );
    }

    /// The slow group commits so far.
    pub fn slow(&self) -> SlowGroups {
        use std::sync::atomic::Ordering::Relaxed;
        SlowGroups {
            waiting: self.slow[0].load(Relaxed),
            writing: self.slow[1].load(Relaxed),
            committing: self.slow[2].load(Relaxed),
            slowest_micros: self.slowest_micros.load(Relaxed),
        }
    }

    /// The writer's time spent writing, in microseconds, and the row versions it
    /// wrote, so far.
    pub fn totals(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.busy_micros.load(Relaxed), self.rows.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn slow_group_commits_are_counted_by_their_longest_part() {
        let load = IngestLoad::default();
        let ms = Duration::from_millis;
        load.record_parts(ms(10), ms(10), ms(20));
        assert_eq!(load.slow(), SlowGroups::default(), "40 ms is not slow");
        load.record_parts(ms(5), ms(5), ms(60));
        load.record_parts(ms(70), ms(5), ms(5));
        load.record_parts(ms(45), ms(5), ms(10));
        load.record_parts(ms(1), ms(200), ms(3));
        assert_eq!(
            load.slow(),
            SlowGroups { waiting: 2, writing: 1, committing: 1, slowest_micros: 204_000 },
            "{:?}",
            load.slow()
        );
    }
}
