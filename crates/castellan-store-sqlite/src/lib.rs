//! Castellan's SQLite backend: one file, WAL mode, one writer connection (so write
//! transactions queue instead of failing with `SQLITE_BUSY`) and a pool of read-only
//! readers. Owns its SQL and its migrations.

#[path = "../../castellan-store/sql/access.rs"]
mod access;
mod backend;
mod data;
#[path = "../../castellan-store/sql/objects.rs"]
mod objects;
#[path = "../../castellan-store/sql/repos.rs"]
mod repos;
#[path = "../../castellan-store/sql/rows.rs"]
mod rows;
#[path = "../../castellan-store/sql/sessions.rs"]
mod sessions;
mod tx;

use async_trait::async_trait;
use castellan_core::KeyId;
use castellan_store::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Row;
use std::path::{Path, PathBuf};
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
}

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(crate) fn is_unique(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

/// A unique-index violation becomes `Conflict(message())`, anything else a backend error.
pub(crate) fn conflict_or(e: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    if is_unique(&e) {
        StoreError::Conflict(message())
    } else {
        db_err(e)
    }
}

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
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // A local file cannot drop the connection; pinging it before every write
            // only adds a round trip to the connection's worker thread.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(db_err)?;
        let store_writer = writer.clone();
        MIGRATOR.run(&store_writer).await.map_err(|e| StoreError::Backend(e.to_string()))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.read_only(true))
            .await
            .map_err(db_err)?;
        let mut wal = path.to_owned().into_os_string();
        wal.push("-wal");
        Ok(SqliteStore { writer, reader, path: path.to_owned(), wal: PathBuf::from(wal) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
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
        let row = sqlx::query(rows::KEY_AUTH_SQL).bind(key_hash).fetch_optional(&self.reader).await.map_err(db_err)?;
        row.map(|r| rows::key_auth(&r)).transpose()
    }

    async fn touch_key(&self, id: KeyId, at: Micros) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)")
            .bind(at)
            .bind(id.0)
            .bind(at)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn authenticate_session(&self, token_hash: &str) -> StoreResult<Option<SessionAuth>> {
        let row = sqlx::query(&sessions::session_auth_sql())
            .bind(token_hash)
            .fetch_optional(&self.reader)
            .await
            .map_err(db_err)?;
        row.map(|r| sessions::session_auth(&r)).transpose()
    }

    async fn touch_session(&self, id: uuid::Uuid, at: Micros) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen = ? WHERE id = ? AND last_seen < ?")
            .bind(at)
            .bind(id)
            .bind(at)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn changes_since(&self, after: Revision, limit: usize) -> StoreResult<Vec<ChangeRecord>> {
        let rows = sqlx::query(
            "SELECT revision, created, payload FROM change_log WHERE revision > ? ORDER BY revision LIMIT ?",
        )
        .bind(rows::rev_to_i64(after)?)
        .bind(limit as i64)
        .fetch_all(&self.reader)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("payload").map_err(db_err)?;
                Ok(ChangeRecord {
                    revision: rows::i64_to_rev(r.try_get("revision").map_err(db_err)?)?,
                    created: r.try_get("created").map_err(db_err)?,
                    payload: serde_json::from_str(&payload).map_err(|e| StoreError::Integrity(e.to_string()))?,
                })
            })
            .collect()
    }

    async fn current_revision(&self) -> StoreResult<Revision> {
        let v: i64 = sqlx::query_scalar("SELECT value FROM castellan_revision WHERE id = 1")
            .fetch_one(&self.reader)
            .await
            .map_err(db_err)?;
        rows::i64_to_rev(v)
    }

    async fn data_write(&self) -> StoreResult<Box<dyn DataTx>> {
        let tx = self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
        Ok(Box::new(SqliteDataTx::new(tx)))
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.writer)
            .await
            .map_err(db_err)
    }

    async fn close(&self) {
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
