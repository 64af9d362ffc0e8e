//! The SQLite transaction: how it begins, records a change and commits. The
//! repositories themselves are the shared SQL (`castellan-store/sql/`).

use crate::{db_err, rows};
use async_trait::async_trait;
use castellan_store::*;
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

/// A transaction on the SQLite store.
pub struct SqliteTx {
    pub(crate) tx: Transaction<'static, Sqlite>,
    revision: Option<Revision>,
    writable: bool,
}

impl SqliteTx {
    pub(crate) fn new(tx: Transaction<'static, Sqlite>, writable: bool) -> Self {
        SqliteTx { tx, revision: None, writable }
    }

    /// Runs a statement that may violate a unique index. On SQLite a failed
    /// statement leaves the transaction usable, so this is a plain execute (on
    /// PostgreSQL it needs a savepoint).
    pub(crate) async fn exec_guarded<'q>(
        &mut self,
        q: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<sqlx::sqlite::SqliteQueryResult, sqlx::Error> {
        q.execute(&mut *self.tx).await
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.tx
    }

    /// Marks the live row `id` of `table` deleted at `at`; `NotFound(what())` when there
    /// is none. `table` is always one of this crate's literals, never input.
    pub(crate) async fn soft_delete(
        &mut self,
        table: &'static str,
        id: Uuid,
        at: Micros,
        what: impl FnOnce() -> String,
    ) -> StoreResult<()> {
        self.ensure_writable()?;
        let sql = format!("UPDATE {table} SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL");
        let res = sqlx::query(&sql).bind(at).bind(id).execute(&mut *self.tx).await.map_err(db_err)?;
        expect_touched(res.rows_affected(), what)
    }

    pub(crate) fn ensure_writable(&self) -> StoreResult<()> {
        if self.writable {
            Ok(())
        } else {
            Err(StoreError::Backend("write attempted in a read-only transaction".into()))
        }
    }
}

#[async_trait]
impl Tx for SqliteTx {
    async fn revision(&mut self) -> StoreResult<Revision> {
        if let Some(r) = self.revision {
            return Ok(r);
        }
        self.ensure_writable()?;
        let v: i64 = sqlx::query_scalar("UPDATE castellan_revision SET value = value + 1 WHERE id = 1 RETURNING value")
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db_err)?;
        let r = rows::i64_to_rev(v)?;
        self.revision = Some(r);
        Ok(r)
    }

    async fn record_change(&mut self, created: Micros, payload: &serde_json::Value) -> StoreResult<Revision> {
        let rev = self.revision().await?;
        sqlx::query("INSERT INTO change_log (revision, created, payload) VALUES (?, ?, ?)")
            .bind(rows::rev_to_i64(rev)?)
            .bind(created)
            .bind(payload.to_string())
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(rev)
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(db_err)
    }
}
