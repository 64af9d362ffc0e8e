//! Castellan's PostgreSQL backend. Several `castellan serve` replicas may share one
//! database; each follows the change feed to keep its authorization index current.
//! Owns its SQL and its migrations.
//!
//! Every write transaction takes the revision row lock as its first statement, so
//! write transactions commit in revision order (the change feed never skips over a
//! revision that commits later) and lock-order deadlocks between writers cannot occur.

mod backend;
mod data;
#[path = "../../castellan-store/sql/mod.rs"]
mod sql;
mod tx;

use async_trait::async_trait;
use castellan_core::KeyId;
use castellan_store::*;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
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

pub(crate) use sql::store::{conflict_or, db_err, is_unique};
use sql::{objects, rows, sessions, store};

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
        // Each session hands the kernel what it writes out every 256 kB
        // (`backend_flush_after`; PostgreSQL's default, 0, never). A session that evicts
        // pages it changed (a retention sweep's deletes above all) otherwise leaves
        // them in the page cache until the checkpoint's fsync or the kernel's own
        // flush sends hundreds of megabytes out at once, and every commit's WAL
        // flush waits behind that. Set once a connection is open, not as a startup
        // option, which connection poolers such as PgBouncer refuse by default. A
        // URL that sets it (`options=-c backend_flush_after=…`) is left to decide.
        let flush_after = !url.contains("backend_flush_after");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if flush_after {
                        sqlx::query("SET backend_flush_after = '256kB'").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
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

    /// A transaction whose commit does not wait for the WAL flush
    /// (`synchronous_commit = off`, for this transaction only): for background work
    /// that is redone if a crash loses it; the synchronous commits after it flush
    /// the WAL up to and past it.
    async fn relaxed_tx(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await.map_err(db_err)?;
        Ok(tx)
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
        store::authenticate(&self.pool, key_hash).await
    }

    async fn touch_key(&self, id: KeyId, at: Micros) -> StoreResult<()> {
        store::touch_key(&self.pool, id, at).await
    }

    async fn authenticate_session(&self, token_hash: &str) -> StoreResult<Option<SessionAuth>> {
        store::authenticate_session(&self.pool, token_hash).await
    }

    async fn touch_session(&self, id: uuid::Uuid, at: Micros) -> StoreResult<()> {
        store::touch_session(&self.pool, id, at).await
    }

    async fn changes_since(&self, after: Revision, limit: usize) -> StoreResult<Vec<ChangeRecord>> {
        store::changes_since(&self.pool, after, limit).await
    }

    async fn current_revision(&self) -> StoreResult<Revision> {
        store::current_revision(&self.pool).await
    }

    async fn data_write(&self) -> StoreResult<Box<dyn DataTx>> {
        let tx = self.pool.begin().await.map_err(db_err)?;
        Ok(Box::new(PgDataTx::new(tx)))
    }

    async fn data_write_relaxed(&self) -> StoreResult<Box<dyn DataTx>> {
        Ok(Box::new(PgDataTx::new(self.relaxed_tx().await?)))
    }

    async fn take_lease(&self, name: &str, holder: &str, now: Micros, until: Micros) -> StoreResult<bool> {
        sql::jobs::take_lease(&self.pool, name, holder, now, until).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        sql::jobs::release_lease(&self.pool, name, holder).await
    }

    async fn record_run(&self, run: &RunRecord) -> StoreResult<()> {
        sql::jobs::record_run(&self.pool, run).await
    }

    async fn list_runs(&self, automation: uuid::Uuid, limit: usize) -> StoreResult<Vec<RunRecord>> {
        sql::jobs::list_runs(&self.pool, automation, limit).await
    }

    async fn all_admin(&self, kind: AdminKind) -> StoreResult<Vec<AdminRecord>> {
        sql::jobs::all_admin(&self.pool, kind).await
    }

    async fn count_events_before(&self, object: EventObject, cutoff: &str) -> StoreResult<u64> {
        sql::jobs::count_events_before(&self.pool, object, cutoff).await
    }

    /// Retention's deletes commit without waiting for the WAL flush
    /// (`synchronous_commit = off` for their transaction): a delete lost to a crash
    /// is redone by the next sweep, and the synchronous commits after it (the run's
    /// record among them) flush the WAL up to and past it.
    async fn delete_events_between(
        &self,
        object: EventObject,
        cutoff: &str,
        after: &(XactId, String),
        through: &(XactId, String),
    ) -> StoreResult<u64> {
        let mut tx = self.relaxed_tx().await?;
        let deleted = sql::jobs::delete_events_between(&mut tx, object, cutoff, after, through).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(deleted)
    }

    async fn retention_window(
        &self,
        object: EventObject,
        cutoff: &str,
        after: &(XactId, String),
        scan: usize,
    ) -> StoreResult<castellan_store::RetentionWindow> {
        sql::jobs::retention_window(&self.pool, object, cutoff, after, scan).await
    }

    async fn scoring_cursor(&self, project: uuid::Uuid) -> StoreResult<Option<(XactId, String)>> {
        sql::jobs::scoring_cursor(&self.pool, project).await
    }

    async fn set_scoring_cursor(&self, project: uuid::Uuid, at_row: &(XactId, String), at: Micros) -> StoreResult<()> {
        sql::jobs::set_scoring_cursor(&self.pool, project, at_row, at).await
    }

    async fn claimed_score_keys(&self, keys: &[Vec<u8>]) -> StoreResult<Vec<Vec<u8>>> {
        sql::jobs::claimed_score_keys(&self.pool, keys).await
    }

    async fn prune_score_claims(&self, before: Micros, limit: usize) -> StoreResult<u64> {
        sql::jobs::prune_score_claims(&self.pool, before, limit).await
    }

    async fn due_score_retries(
        &self,
        project: uuid::Uuid,
        now: Micros,
        limit: usize,
    ) -> StoreResult<Vec<castellan_store::ScoreRetry>> {
        sql::jobs::due_score_retries(&self.pool, project, now, limit).await
    }

    async fn event_heads_since(
        &self,
        object: EventObject,
        after: &(XactId, String),
        limit: usize,
        skip: &[XactId],
    ) -> StoreResult<castellan_store::HeadBatch> {
        sql::jobs::event_heads_since(&self.pool, object, after, limit, skip).await
    }

    async fn event_versions(
        &self,
        object: EventObject,
        versions: &[(XactId, String)],
    ) -> StoreResult<Vec<castellan_store::RawEvent>> {
        sql::jobs::event_versions(&self.pool, object, versions).await
    }

    async fn latest_raw_events(
        &self,
        object: EventObject,
        row_ids: &[String],
    ) -> StoreResult<Vec<castellan_store::RawEvent>> {
        sql::jobs::latest_raw_events(&self.pool, object, row_ids).await
    }

    async fn count_matching(&self, q: &EventSearch, since: Option<XactId>) -> StoreResult<u64> {
        sql::btql::count(&self.pool, q, since).await
    }

    async fn mark_xact(&self, at: Micros, xact: XactId) -> StoreResult<()> {
        sql::jobs::mark_xact(&self.pool, at, xact).await
    }

    async fn xact_before(&self, at: Micros) -> StoreResult<Option<XactId>> {
        sql::jobs::xact_before(&self.pool, at).await
    }

    async fn record_delivery(&self, d: &DeliveryRecord) -> StoreResult<()> {
        sql::jobs::record_delivery(&self.pool, d).await
    }

    async fn list_deliveries(&self, automation: uuid::Uuid, limit: usize) -> StoreResult<Vec<DeliveryRecord>> {
        sql::jobs::list_deliveries(&self.pool, automation, limit).await
    }

    async fn sweep_attachments(&self, object: EventObject, org: castellan_core::OrgId) -> StoreResult<u64> {
        sql::jobs::sweep_attachments(&self.pool, &self.pool, object, org).await
    }

    async fn delete_stale_overflow(&self, org: castellan_core::OrgId, before: Micros) -> StoreResult<u64> {
        sql::jobs::delete_stale_overflow(&self.pool, org, before).await
    }

    async fn replace_server_secret(&self, name: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        store::replace_server_secret(&self.pool, name, old, new).await
    }

    async fn compact(&self) -> StoreResult<Vec<Compacted>> {
        let mut out = Vec::new();
        // Each table's rewrite takes its lock for as long as it lasts: this is a
        // maintenance step, run when an outage of ingest is acceptable.
        for table in ["events", "object_versions", "blobs", "attachment_refs"] {
            let size = || async {
                sqlx::query_scalar::<_, i64>("SELECT pg_total_relation_size($1::regclass)")
                    .bind(table)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db_err)
            };
            let before = size().await?;
            sqlx::query(&format!("VACUUM (FULL, ANALYZE) {table}")).execute(&self.pool).await.map_err(db_err)?;
            out.push(Compacted { what: table.into(), bytes_before: before, bytes_after: size().await? });
        }
        // The rewritten files reach the disk at the next checkpoint; ask for one now
        // (a role without the right to may not: the server's own comes soon).
        if let Err(e) = sqlx::query("CHECKPOINT").execute(&self.pool).await {
            tracing::warn!(error = %e, "CHECKPOINT after compaction was refused; the next automatic one will do");
        }
        Ok(out)
    }

    async fn sealed_prefixes(&self) -> StoreResult<Vec<(Vec<u8>, i64)>> {
        store::sealed_prefixes(&self.pool).await
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        store::server_secret(&self.pool, name, candidate).await
    }

    async fn close(&self) {
        self.listener.abort();
        self.pool.close().await;
    }

    fn commit_notifications(&self) -> Option<std::sync::Arc<CommitSignal>> {
        Some(self.commits.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::PgStore;

    fn url() -> String {
        std::env::var("CASTELLAN_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!("needs PostgreSQL: set CASTELLAN_TEST_POSTGRES_URL, or run scripts/test, which sets it up")
        })
    }

    /// A setting's value and where it came from (`session` for a `SET`, `client`
    /// for a startup option).
    async fn setting(store: &PgStore, name: &str) -> (String, String) {
        sqlx::query_as("SELECT current_setting($1), source FROM pg_settings WHERE name = $1")
            .bind(name)
            .fetch_one(&store.pool)
            .await
            .expect("setting")
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: scripts/test runs it"]
    async fn sessions_write_back_what_they_evict_unless_the_url_says_otherwise() {
        let url = url();
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let store = PgStore::connect(&url, Some(&schema)).await.expect("connect");
        assert_eq!(setting(&store, "backend_flush_after").await, ("256kB".into(), "session".into()));
        store.pool.close().await;
        let sep = if url.contains('?') { '&' } else { '?' };
        let own = format!("{url}{sep}options=-c%20backend_flush_after%3D64kB");
        let store = PgStore::connect(&own, Some(&schema)).await.expect("connect with options");
        assert_eq!(setting(&store, "backend_flush_after").await.0, "64kB", "the URL's own setting stands");
        assert_eq!(setting(&store, "search_path").await.0, schema, "and the schema still applies");
        store.pool.close().await;
    }
}
