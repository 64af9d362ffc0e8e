//! Castellan's SQLite backend: one file, WAL mode, one writer connection (so write
//! transactions queue instead of failing with `SQLITE_BUSY`) and a pool of read-only
//! readers. Owns its SQL and its migrations.

mod backend;
mod data;
#[path = "../../castellan-store/sql/mod.rs"]
mod sql;
mod tx;

use async_trait::async_trait;
use castellan_core::KeyId;
use castellan_store::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use data::SqliteDataTx;
pub use tx::SqliteTx;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A Castellan database in one SQLite file.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
    /// The WAL file's path: every commit, by any process, writes to it.
    wal: PathBuf,
    /// The connection that checkpoints the WAL, and its task.
    checkpoints: SqlitePool,
    _checkpointer: Checkpointer,
    /// Set while the writer's connection commits with `synchronous = NORMAL`; the
    /// pool sets it back to FULL when the connection is released.
    relaxed: Arc<AtomicBool>,
}

/// How often the WAL is checkpointed.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The background task that checkpoints the WAL into the database file, ended
/// when the store is dropped.
struct Checkpointer(tokio::task::JoinHandle<()>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Checkpointer {
    /// Checkpoints every [`CHECKPOINT_EVERY`] on a connection of its own, until the
    /// pool closes. PASSIVE: it copies what no reader still needs, never waits for a
    /// lock and never holds the write lock, so commits go on meanwhile (SQLite's
    /// automatic checkpoint, turned off on the writer, runs inside the commit that
    /// crosses its threshold, and every write queued behind that commit waits
    /// while it copies thousands of pages and fsyncs the database file).
    ///
    /// SQLite syncs the database file only when a checkpoint reaches the end of
    /// the WAL, which under steady load (readers keep older frames) happens every
    /// few seconds: the pages copied by the checkpoints in between wait in the
    /// page cache and go to the disk in that one sync, and a commit's WAL sync
    /// that comes during a burst of tens of megabytes waits for it. So after a
    /// checkpoint that copied anything, the checkpointer syncs the file itself
    /// ([`write_back`]): a tenth of a second's pages at a time.
    fn start(pool: SqlitePool, db: PathBuf) -> Checkpointer {
        Checkpointer(tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            let file = std::fs::File::open(&db).ok().map(Arc::new);
            // The WAL's frames and how many of them are in the database file, as
            // of the last checkpoint.
            let mut last = (0i64, 0i64);
            while !pool.is_closed() {
                every.tick().await;
                match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&pool).await {
                    Ok((_, frames, copied)) => {
                        failing = false;
                        // Copied something (SQLite may or may not have synced it:
                        // its answer is as of when the checkpoint began).
                        let moved = copied > 0 && (frames, copied) != last;
                        last = (frames, copied);
                        if let Some(file) = file.clone().filter(|_| moved) {
                            let _ = tokio::task::spawn_blocking(move || write_back(&file)).await;
                        }
                    }
                    Err(e) if !failing && !pool.is_closed() => {
                        failing = true;
                        tracing::warn!(error = %e, "checkpointing the WAL failed; will retry");
                    }
                    Err(_) => {}
                }
            }
        }))
    }
}

/// Writes the database file's dirty pages to the disk (fdatasync). Nothing rests
/// on it for durability (SQLite still syncs the file before it reuses the WAL);
/// it only keeps the pages from piling up.
fn write_back(file: &std::fs::File) {
    if let Err(e) = file.sync_data() {
        tracing::debug!(error = %e, "writing the database file back failed");
    }
}

pub(crate) use sql::store::{conflict_or, db_err, is_unique};
use sql::{objects, rows, sessions, store};

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and runs migrations.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit that was acknowledged survives power loss, not only a crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            // Deleted rows (retention) are overwritten, not left in free space.
            .pragma("secure_delete", "on");
        let relaxed = Arc::new(AtomicBool::new(false));
        let restore = relaxed.clone();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // A connection released after a relaxed write syncs fully again before
            // anyone else takes it (or is closed, and the pool opens a new one with
            // the settings below): a relaxed write's future dropped half-way, or
            // its error, leaves nothing behind.
            .after_release(move |conn, _| {
                let restore = restore.clone();
                Box::pin(async move {
                    if !restore.swap(false, Ordering::SeqCst) {
                        return Ok(true);
                    }
                    Ok(sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await.is_ok())
                })
            })
            // A local file cannot drop the connection; pinging it before every write
            // only adds a round trip to the connection's worker thread.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            // Checkpoints run beside the writer, not inside its commits.
            .connect_with(base.clone().create_if_missing(true).pragma("wal_autocheckpoint", "0"))
            .await
            .map_err(db_err)?;
        let store_writer = writer.clone();
        MIGRATOR.run(&store_writer).await.map_err(|e| StoreError::Backend(e.to_string()))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.clone().read_only(true))
            .await
            .map_err(db_err)?;
        let checkpoints = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(base)
            .await
            .map_err(db_err)?;
        let mut wal = path.to_owned().into_os_string();
        wal.push("-wal");
        Ok(SqliteStore {
            writer,
            reader,
            path: path.to_owned(),
            wal: PathBuf::from(wal),
            _checkpointer: Checkpointer::start(checkpoints.clone(), path.to_owned()),
            checkpoints,
            relaxed,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer's connection, committing with `synchronous = NORMAL` (the WAL
    /// written, not fsynced) until it is released, when it is set back to FULL.
    /// For background work that is redone if lost: its commits become durable with
    /// the next one that syncs, since the WAL is written in order.
    async fn relaxed_writer(&self) -> StoreResult<sqlx::pool::PoolConnection<sqlx::Sqlite>> {
        let mut conn = self.writer.acquire().await.map_err(db_err)?;
        self.relaxed.store(true, Ordering::SeqCst);
        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await.map_err(db_err)?;
        Ok(conn)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.writer).await.map_err(|e| StoreError::Backend(e.to_string()))
    }

    async fn write(&self) -> StoreResult<Box<dyn Tx>> {
        // IMMEDIATE takes the write lock up front, so a transaction that reads and
        // then writes can never fail to upgrade (another process, e.g. `castellan
        // bootstrap`, may hold the file too; busy_timeout makes it wait).
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        Ok(Box::new(SqliteTx::new(tx, true)))
    }

    async fn read(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self.reader.begin().await.map_err(db_err)?;
        Ok(Box::new(SqliteTx::new(tx, false)))
    }

    async fn authenticate(&self, key_hash: &str) -> StoreResult<Option<KeyAuth>> {
        store::authenticate(&self.reader, key_hash).await
    }

    async fn touch_key(&self, id: KeyId, at: Micros) -> StoreResult<()> {
        store::touch_key(&self.writer, id, at).await
    }

    async fn authenticate_session(&self, token_hash: &str) -> StoreResult<Option<SessionAuth>> {
        store::authenticate_session(&self.reader, token_hash).await
    }

    async fn touch_session(&self, id: uuid::Uuid, at: Micros) -> StoreResult<()> {
        store::touch_session(&self.writer, id, at).await
    }

    async fn changes_since(&self, after: Revision, limit: usize) -> StoreResult<Vec<ChangeRecord>> {
        store::changes_since(&self.reader, after, limit).await
    }

    async fn current_revision(&self) -> StoreResult<Revision> {
        store::current_revision(&self.reader).await
    }

    async fn data_write(&self) -> StoreResult<Box<dyn DataTx>> {
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        Ok(Box::new(SqliteDataTx::new(tx)))
    }

    async fn data_write_relaxed(&self) -> StoreResult<Box<dyn DataTx>> {
        let conn = self.relaxed_writer().await?;
        let tx = sqlx::Transaction::begin(conn, Some("BEGIN IMMEDIATE".into())).await.map_err(db_err)?;
        Ok(Box::new(SqliteDataTx::new(tx)))
    }

    async fn take_lease(&self, name: &str, holder: &str, now: Micros, until: Micros) -> StoreResult<bool> {
        sql::jobs::take_lease(&self.writer, name, holder, now, until).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        sql::jobs::release_lease(&self.writer, name, holder).await
    }

    async fn record_run(&self, run: &RunRecord) -> StoreResult<()> {
        sql::jobs::record_run(&self.writer, run).await
    }

    async fn list_runs(&self, automation: uuid::Uuid, limit: usize) -> StoreResult<Vec<RunRecord>> {
        sql::jobs::list_runs(&self.writer, automation, limit).await
    }

    async fn all_admin(&self, kind: AdminKind) -> StoreResult<Vec<AdminRecord>> {
        sql::jobs::all_admin(&self.writer, kind).await
    }

    async fn count_events_before(&self, object: EventObject, cutoff: &str) -> StoreResult<u64> {
        sql::jobs::count_events_before(&self.reader, object, cutoff).await
    }

    /// Read on a reader connection: the write lock is not taken.
    async fn retention_window(
        &self,
        object: EventObject,
        cutoff: &str,
        after: &(XactId, String),
        scan: usize,
    ) -> StoreResult<castellan_store::RetentionWindow> {
        sql::jobs::retention_window(&self.reader, object, cutoff, after, scan).await
    }

    /// Retention's deletes commit without waiting for the disk (on a
    /// [`SqliteStore::relaxed_writer`]): a delete lost to a power cut is redone by
    /// the next sweep, and the commits after it that do wait (ingest's, the run's
    /// record) fsync the WAL, which is written in order, with it. Ingest queued
    /// behind a delete so waits for its statement, not for its fsync too.
    async fn delete_events_between(
        &self,
        object: EventObject,
        cutoff: &str,
        after: &(XactId, String),
        through: &(XactId, String),
    ) -> StoreResult<u64> {
        let mut conn = self.relaxed_writer().await?;
        sql::jobs::delete_events_between(&mut conn, object, cutoff, after, through).await
    }

    async fn scoring_cursor(&self, project: uuid::Uuid) -> StoreResult<Option<(XactId, String)>> {
        sql::jobs::scoring_cursor(&self.writer, project).await
    }

    async fn set_scoring_cursor(&self, project: uuid::Uuid, at_row: &(XactId, String), at: Micros) -> StoreResult<()> {
        sql::jobs::set_scoring_cursor(&self.writer, project, at_row, at).await
    }

    async fn claimed_score_keys(&self, keys: &[Vec<u8>]) -> StoreResult<Vec<Vec<u8>>> {
        sql::jobs::claimed_score_keys(&self.reader, keys).await
    }

    async fn prune_score_claims(&self, before: Micros, limit: usize) -> StoreResult<u64> {
        sql::jobs::prune_score_claims(&self.writer, before, limit).await
    }

    async fn due_score_retries(
        &self,
        project: uuid::Uuid,
        now: Micros,
        limit: usize,
    ) -> StoreResult<Vec<castellan_store::ScoreRetry>> {
        sql::jobs::due_score_retries(&self.reader, project, now, limit).await
    }

    async fn event_heads_since(
        &self,
        object: EventObject,
        after: &(XactId, String),
        limit: usize,
        skip: &[XactId],
    ) -> StoreResult<castellan_store::HeadBatch> {
        sql::jobs::event_heads_since(&self.reader, object, after, limit, skip).await
    }

    async fn event_versions(
        &self,
        object: EventObject,
        versions: &[(XactId, String)],
    ) -> StoreResult<Vec<castellan_store::RawEvent>> {
        sql::jobs::event_versions(&self.reader, object, versions).await
    }

    async fn latest_raw_events(
        &self,
        object: EventObject,
        row_ids: &[String],
    ) -> StoreResult<Vec<castellan_store::RawEvent>> {
        sql::jobs::latest_raw_events(&self.reader, object, row_ids).await
    }

    async fn count_matching(&self, q: &EventSearch, since: Option<XactId>) -> StoreResult<u64> {
        sql::btql::count(&self.reader, q, since).await
    }

    async fn mark_xact(&self, at: Micros, xact: XactId) -> StoreResult<()> {
        sql::jobs::mark_xact(&self.writer, at, xact).await
    }

    async fn xact_before(&self, at: Micros) -> StoreResult<Option<XactId>> {
        sql::jobs::xact_before(&self.writer, at).await
    }

    async fn record_delivery(&self, d: &DeliveryRecord) -> StoreResult<()> {
        sql::jobs::record_delivery(&self.writer, d).await
    }

    async fn list_deliveries(&self, automation: uuid::Uuid, limit: usize) -> StoreResult<Vec<DeliveryRecord>> {
        sql::jobs::list_deliveries(&self.writer, automation, limit).await
    }

    async fn sweep_attachments(&self, object: EventObject, org: castellan_core::OrgId) -> StoreResult<u64> {
        sql::jobs::sweep_attachments(&self.reader, &self.writer, object, org).await
    }

    async fn delete_stale_overflow(&self, org: castellan_core::OrgId, before: Micros) -> StoreResult<u64> {
        sql::jobs::delete_stale_overflow(&self.writer, org, before).await
    }

    async fn replace_server_secret(&self, name: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        store::replace_server_secret(&self.writer, name, old, new).await
    }

    async fn compact(&self) -> StoreResult<Vec<Compacted>> {
        let size = || async {
            let (pages, page): (i64, i64) = (
                sqlx::query_scalar("PRAGMA page_count").fetch_one(&self.writer).await.map_err(db_err)?,
                sqlx::query_scalar("PRAGMA page_size").fetch_one(&self.writer).await.map_err(db_err)?,
            );
            Ok::<i64, StoreError>(pages * page)
        };
        let before = size().await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await.map_err(db_err)?;
        sqlx::query("VACUUM").execute(&self.writer).await.map_err(db_err)?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.writer).await.map_err(db_err)?;
        Ok(vec![Compacted { what: "database file".into(), bytes_before: before, bytes_after: size().await? }])
    }

    async fn sealed_prefixes(&self) -> StoreResult<Vec<(Vec<u8>, i64)>> {
        store::sealed_prefixes(&self.writer).await
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        store::server_secret(&self.writer, name, candidate).await
    }

    async fn close(&self) {
        self.checkpoints.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }

    fn change_stamp(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        // A commit appends to the WAL (or, after a checkpoint, rewrites the file):
        // either way the WAL's or the database's time or length moves.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for p in [&self.path, &self.wal] {
            match std::fs::metadata(p) {
                Ok(m) => (m.modified().ok(), m.len()).hash(&mut h),
                Err(_) => 0u8.hash(&mut h),
            }
        }
        Some(h.finish())
    }
}

#[cfg(test)]
mod checkpoints {
    /// With SQLite's automatic checkpoint off on the writer, the background
    /// checkpointer is what keeps the WAL from growing without end: commits of 1 MiB
    /// each, a little apart, keep reusing the WAL from its start.
    #[tokio::test]
    async fn the_wal_is_checkpointed_beside_the_writer_and_reused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("wal.sqlite");
        let store = super::SqliteStore::open(&path).await.expect("open");
        sqlx::query("CREATE TABLE scratch (b BLOB)").execute(&store.writer).await.expect("table");
        for _ in 0..24 {
            sqlx::query("INSERT INTO scratch VALUES (randomblob(1048576))")
                .execute(&store.writer)
                .await
                .expect("insert");
            tokio::time::sleep(super::CHECKPOINT_EVERY + std::time::Duration::from_millis(50)).await;
        }
        let wal = std::fs::metadata(&store.wal).expect("the WAL").len();
        assert!(wal < 8 << 20, "24 MiB were committed; the WAL holds {wal} bytes");
        let db = std::fs::metadata(&path).expect("the database").len();
        assert!(db > 20 << 20, "the commits reached the database file ({db} bytes)");
    }
}

#[cfg(test)]
mod durability {
    use castellan_store::{EventKind, EventObject, Store};

    /// SQLite is built with `HAVE_FDATASYNC` (`.cargo/config.toml` hands it to
    /// libsqlite3-sys's build of the bundled source, compiled with this crate): a
    /// commit syncs the WAL's data, not its modification time, and does not wait
    /// for ext4's journal commit, shared with the checkpointer's syncs.
    #[test]
    fn sqlite_is_built_to_sync_with_fdatasync() {
        let flags = option_env!("LIBSQLITE3_FLAGS").unwrap_or_default();
        assert!(
            flags.split_whitespace().any(|f| f == "-DHAVE_FDATASYNC=1"),
            "LIBSQLITE3_FLAGS is {flags:?}; the workspace's .cargo/config.toml sets -DHAVE_FDATASYNC=1"
        );
    }

    /// Retention's deletes and online scoring's writes commit with `synchronous =
    /// NORMAL`; the writer is back at FULL after each (committed, failed or
    /// dropped), so ingest's commits still wait for the disk.
    #[tokio::test]
    async fn relaxed_writes_leave_the_writer_syncing_fully() {
        let dir = tempfile::tempdir().expect("dir");
        let store = super::SqliteStore::open(&dir.path().join("d.sqlite")).await.expect("open");
        let full: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&store.writer).await.expect("pragma");
        assert_eq!(full, 2, "the writer syncs fully");
        let log = EventObject { kind: EventKind::ProjectLogs, id: uuid::Uuid::new_v4() };
        let (first, last) =
            ((castellan_store::XactId(i64::MIN), String::new()), (castellan_store::XactId(i64::MAX), String::new()));
        assert_eq!(store.delete_events_between(log, "2030-01-01T00:00:00Z", &first, &last).await.expect("delete"), 0);
        let sync = || async { sqlx::query_scalar::<_, i64>("PRAGMA synchronous").fetch_one(&store.writer).await };
        assert_eq!(sync().await.expect("pragma"), 2, "the writer is back at FULL after a retention delete");
        // Inside a relaxed transaction the writer does not sync; committed, or
        // dropped unfinished, it does again.
        let tx = store.data_write_relaxed().await.expect("relaxed");
        tx.commit().await.expect("commit");
        assert_eq!(sync().await.expect("pragma"), 2, "back at FULL after a relaxed commit");
        let tx = store.data_write_relaxed().await.expect("relaxed");
        drop(tx);
        assert_eq!(sync().await.expect("pragma"), 2, "back at FULL after a relaxed transaction dropped");
        let mut conn = store.relaxed_writer().await.expect("relaxed");
        let inside: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await.expect("pragma");
        assert_eq!(inside, 1, "NORMAL while relaxed");
        drop(conn);
        assert_eq!(sync().await.expect("pragma"), 2, "back at FULL once released");
    }
}

#[cfg(test)]
mod attachments {
    /// The attachment sweep searches a log for each key on a reader; a row naming
    /// the key written after that search (here: a reader on a copy of the file taken
    /// before it) keeps the key's reference, since the deleting transaction looks
    /// again at the versions newer than the search saw.
    #[tokio::test]
    async fn a_key_named_after_the_search_is_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.sqlite");
        let store = super::SqliteStore::open(&path).await.expect("open");
        let log = uuid::Uuid::new_v4();
        let row = |row_id: &'static str, xact: i64, data: &'static str| {
            sqlx::query(
                "INSERT INTO events (object_kind, object_id, row_id, xact_id, project_id, is_root, deleted, \
                 is_comment, data) VALUES ('project_logs', $1, $2, $3, $1, 1, 0, 0, $4)",
            )
            .bind(log)
            .bind(row_id)
            .bind(xact)
            .bind(data)
        };
        row("r1", 10, r#"{"input": "plain"}"#).execute(&store.writer).await.expect("r1");
        for key in ["kept-key", "gone-key"] {
            sqlx::query("INSERT INTO attachment_refs (key, object_kind, object_id) VALUES ($1, 'project_logs', $2)")
                .bind(key)
                .bind(log)
                .execute(&store.writer)
                .await
                .expect("ref");
        }
        let stale = dir.path().join("stale.sqlite");
        sqlx::query("VACUUM INTO $1")
            .bind(stale.to_string_lossy().into_owned())
            .execute(&store.writer)
            .await
            .expect("copy");
        row("r2", 20, r#"{"input": {"key": "kept-key"}}"#).execute(&store.writer).await.expect("r2");
        let reader = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&stale).read_only(true))
            .await
            .expect("stale reader");
        let object = castellan_store::EventObject { kind: castellan_store::EventKind::ProjectLogs, id: log };
        let org = castellan_core::OrgId(uuid::Uuid::new_v4());
        crate::sql::jobs::sweep_attachments(&reader, &store.writer, object, org).await.expect("sweep");
        let refs: Vec<String> = sqlx::query_scalar("SELECT key FROM attachment_refs ORDER BY key")
            .fetch_all(&store.writer)
            .await
            .expect("refs");
        assert_eq!(refs, vec!["kept-key".to_owned()], "the key named since the search stays; the other goes");
    }
}

#[cfg(test)]
mod plans {
    /// Online scoring reads a log from its cursor in batches: the query must seek
    /// the log's index to the cursor, not scan from the log's start (which made a
    /// backlog's reading quadratic).
    #[tokio::test]
    async fn reading_a_log_after_a_cursor_seeks_the_index() {
        let dir = tempfile::tempdir().expect("dir");
        let store = super::SqliteStore::open(&dir.path().join("plan.sqlite")).await.expect("open");
        for skip in [0usize, 2] {
            let sql = format!("EXPLAIN QUERY PLAN {}", crate::sql::jobs::heads_sql(skip));
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql)
                .bind("project_logs")
                .bind(uuid::Uuid::nil())
                .bind(1i64)
                .bind("r")
                .bind(10i64);
            for x in 0..skip {
                q = q.bind(x as i64);
            }
            let plan = q.fetch_all(&store.reader).await.expect("plan");
            let detail: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
            assert!(
                detail.iter().any(|d| d.contains("events_by_xact") && d.contains("xact_id>?")),
                "the cursor's bound is an index range: {detail:?}"
            );
            assert!(!detail.iter().any(|d| d.starts_with("SCAN e")), "the log is not scanned: {detail:?}");
        }
    }

    /// A retention sweep reads the log in windows after a position, and deletes a
    /// batch as a range bounded on both sides: both seek the log's transaction
    /// index, neither reads the log from its start nor past the batch's end (an
    /// unbounded `created < cutoff … LIMIT` scanned every newer version under the
    /// write lock on its last batch).
    #[tokio::test]
    async fn retention_reads_windows_and_deletes_ranges_of_the_index() {
        let dir = tempfile::tempdir().expect("dir");
        let store = super::SqliteStore::open(&dir.path().join("plan.sqlite")).await.expect("open");
        let window = format!("EXPLAIN QUERY PLAN {}", crate::sql::jobs::window_sql());
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&window)
            .bind("project_logs")
            .bind(uuid::Uuid::nil())
            .bind(1i64)
            .bind("r")
            .bind(10i64)
            .bind("2026-01-01T00:00:00Z")
            .fetch_all(&store.reader)
            .await
            .expect("plan");
        let detail: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
        assert!(
            detail.iter().any(|d| d.contains("events_by_xact") && d.contains("xact_id>?")),
            "the window starts at an index position: {detail:?}"
        );
        assert!(!detail.iter().any(|d| d.starts_with("SCAN e")), "the log is not scanned: {detail:?}");
        let delete = format!("EXPLAIN QUERY PLAN {}", crate::sql::jobs::delete_between_sql());
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&delete)
            .bind("project_logs")
            .bind(uuid::Uuid::nil())
            .bind(1i64)
            .bind("r")
            .bind(5i64)
            .bind("s")
            .bind("2026-01-01T00:00:00Z")
            .fetch_all(&store.reader)
            .await
            .expect("plan");
        let detail: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
        assert!(
            detail.iter().any(|d| d.contains("events_by_xact") && d.contains("xact_id>? AND xact_id<?")),
            "a batch is an index range bounded on both sides: {detail:?}"
        );
    }

    /// …and then reads the sampled versions by their keys, each one seek of the
    /// primary key (a list of ORed pairs made SQLite read the whole log).
    #[tokio::test]
    async fn reading_named_versions_seeks_the_primary_key() {
        use crate::sql::jobs::{VERSIONS_JOIN, VERSIONS_SELECT};
        let dir = tempfile::tempdir().expect("dir");
        let store = super::SqliteStore::open(&dir.path().join("plan.sqlite")).await.expect("open");
        let sql =
            format!("EXPLAIN QUERY PLAN {VERSIONS_SELECT}($1, $2), ($3, $4){VERSIONS_JOIN}$5 AND e.object_id = $6");
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&sql)
            .bind("a")
            .bind(1i64)
            .bind("b")
            .bind(2i64)
            .bind("project_logs")
            .bind(uuid::Uuid::nil())
            .fetch_all(&store.reader)
            .await
            .expect("plan");
        let detail: Vec<&str> = plan.iter().map(|r| r.3.as_str()).collect();
        assert!(
            detail.iter().any(|d| d.starts_with("SEARCH e") && d.contains("row_id=? AND xact_id=?")),
            "each version is one seek: {detail:?}"
        );
        assert!(!detail.iter().any(|d| d.starts_with("SCAN e")), "the log is not scanned: {detail:?}");
    }
}
