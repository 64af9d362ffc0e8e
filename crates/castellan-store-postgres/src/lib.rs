//! Castellan's PostgreSQL backend. Several `castellan serve` replicas may share one
//! database; each follows the change feed to keep its authorization index current.
//! Owns its SQL and its migrations.
//!
//! Every write transaction takes the revision row lock as its first statement, so
//! write transactions commit in revision order (the change feed never skips over a
//! revision that commits later) and lock-order deadlocks between writers cannot occur.

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
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::types::Json;
use sqlx::Row;
use std::str::FromStr;
use std::time::Duration;

pub use data::PgDataTx;
pub use tx::PgTx;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A Castellan database on a PostgreSQL server.
pub struct PgStore {
    pool: PgPool,
    /// Woken (by `LISTEN`) whenever any replica commits a change-feed entry.
    commits: std::sync::Arc<CommitSignal>,
    listener: tokio::task::JoinHandle<()>,
}

/// The channel a schema's commits are announced on (each write transaction sends
/// `pg_notify` before it commits; PostgreSQL delivers it at the commit).
fn channel(schema: &str) -> String {
    format!("castellan_changes_{schema}")
}

/// Listens for commit announcements until the pool closes, reconnecting after a
/// failure; every (re)connection also wakes the follower, which then reads whatever
/// may have been missed.
async fn listen(pool: PgPool, channel: String, commits: std::sync::Arc<CommitSignal>) {
    loop {
        if pool.is_closed() {
            return;
        }
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(&channel).await {
                Ok(()) => {
                    commits.notify.notify_one();
                    loop {
                        match l.try_recv().await {
                            Ok(Some(n)) => {
                                if let Ok(rev) = n.payload().parse::<u64>() {
                                    commits.announced.fetch_max(rev, std::sync::atomic::Ordering::SeqCst);
                                }
                                commits.notify.notify_one();
                            }
                            Ok(None) => {
                                // The connection dropped; the next recv reconnects.
                                commits.notify.notify_one();
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "listening for commits failed; polling meanwhile");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN failed; polling meanwhile"),
            },
            Err(e) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "could not connect to listen for commits; polling meanwhile");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
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

impl PgStore {
    /// Connects to `url` (`postgres://…`), optionally confining every connection to
    /// `schema` (created if missing; tests use one schema per database), and runs
    /// migrations.
    pub async fn connect(url: &str, schema: Option<&str>) -> StoreResult<PgStore> {
        let mut opts =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Backend(format!("bad database url: {e}")))?;
        if let Some(s) = schema {
            if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(StoreError::Backend(format!("bad schema name `{s}`")));
            }
            let mut conn_opts = opts.clone();
            conn_opts = conn_opts.options([("search_path", "public")]);
            let setup = PgPoolOptions::new().max_connections(1).connect_with(conn_opts).await.map_err(db_err)?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {s}")).execute(&setup).await.map_err(db_err)?;
            setup.close().await;
            opts = opts.options([("search_path", s)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(db_err)?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Backend(e.to_string()))?;
        let current: String =
            sqlx::query_scalar("SELECT current_schema()::text").fetch_one(&pool).await.map_err(db_err)?;
        let commits = std::sync::Arc::new(CommitSignal::default());
        let listener = tokio::spawn(listen(pool.clone(), channel(&current), commits.clone()));
        Ok(PgStore { pool, commits, listener })
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| StoreError::Backend(e.to_string()))
    }

    async fn write(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self.pool.begin().await.map_err(db_err)?;
        let mut tx = PgTx::new(tx, true);
        // INVARIANT: the revision row is locked before anything else in a write
        // transaction (see the module docs).
        tx.revision().await?;
        Ok(Box::new(tx))
    }

    async fn read(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await.map_err(db_err)?;
        Ok(Box::new(PgTx::new(tx, false)))
    }

    async fn authenticate(&self, key_hash: &str) -> StoreResult<Option<KeyAuth>> {
        let row = sqlx::query(rows::KEY_AUTH_SQL).bind(key_hash).fetch_optional(&self.pool).await.map_err(db_err)?;
        row.map(|r| rows::key_auth(&r)).transpose()
    }

    async fn touch_key(&self, id: KeyId, at: Micros) -> StoreResult<()> {
        sqlx::query("UPDATE api_keys SET last_used = $1 WHERE id = $2 AND (last_used IS NULL OR last_used < $1)")
            .bind(at)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn authenticate_session(&self, token_hash: &str) -> StoreResult<Option<SessionAuth>> {
        let row = sqlx::query(&sessions::session_auth_sql())
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| sessions::session_auth(&r)).transpose()
    }

    async fn touch_session(&self, id: uuid::Uuid, at: Micros) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id = $2 AND last_seen < $1")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn changes_since(&self, after: Revision, limit: usize) -> StoreResult<Vec<ChangeRecord>> {
        let rows = sqlx::query(
            "SELECT revision, created, payload FROM change_log WHERE revision > $1 ORDER BY revision LIMIT $2",
        )
        .bind(rows::rev_to_i64(after)?)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let payload: Json<serde_json::Value> = r.try_get("payload").map_err(db_err)?;
                Ok(ChangeRecord {
                    revision: rows::i64_to_rev(r.try_get("revision").map_err(db_err)?)?,
                    created: r.try_get("created").map_err(db_err)?,
                    payload: payload.0,
                })
            })
            .collect()
    }

    async fn current_revision(&self) -> StoreResult<Revision> {
        // A writer holds the counter row until it commits, and READ COMMITTED shows
        // only committed values, so this is the newest committed revision.
        let v: i64 = sqlx::query_scalar("SELECT value FROM castellan_revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        rows::i64_to_rev(v)
    }

    async fn data_write(&self) -> StoreResult<Box<dyn DataTx>> {
        let tx = self.pool.begin().await.map_err(db_err)?;
        Ok(Box::new(PgDataTx::new(tx)))
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn close(&self) {
        self.listener.abort();
        self.pool.close().await;
    }

    fn commit_notifications(&self) -> Option<std::sync::Arc<CommitSignal>> {
        Some(self.commits.clone())
    }
}
