//! The PostgreSQL transaction: how it begins, locks, records a change and commits,
//! and the savepoint that keeps a unique violation from aborting it. The
//! repositories themselves are the shared SQL (`castellan-store/sql/`).

use crate::{db_err, rows};
use async_trait::async_trait;
use castellan_store::*;
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// A transaction on the PostgreSQL store.
pub struct PgTx {
    pub(crate) tx: Transaction<'static, Postgres>,
    revision: Option<Revision>,
    writable: bool,
}

impl PgTx {
    /// Runs a statement that may violate a unique index inside a savepoint: in
    /// PostgreSQL a failed statement aborts the whole transaction, but callers expect
    /// a `Conflict` to leave the transaction usable (as it does on SQLite).
    pub(crate) async fn exec_guarded(
        &mut self,
        q: sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
        sqlx::query("SAVEPOINT castellan_guard").execute(&mut *self.tx).await?;
        match q.execute(&mut *self.tx).await {
            Ok(r) => {
                sqlx::query("RELEASE SAVEPOINT castellan_guard").execute(&mut *self.tx).await?;
                Ok(r)
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT castellan_guard").execute(&mut *self.tx).await?;
                Err(e)
            }
        }
    }

    pub(crate) fn new(tx: Transaction<'static, Postgres>, writable: bool) -> Self {
        PgTx { tx, revision: None, writable }
    }

    pub(crate) fn conn(&mut self) -> &mut sqlx::PgConnection {
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
        let sql = format!("UPDATE {table} SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL");
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
impl Tx for PgTx {
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
        sqlx::query("INSERT INTO change_log (revision, created, payload) VALUES ($1, $2, $3)")
            .bind(rows::rev_to_i64(rev)?)
            .bind(created)
            .bind(Json(payload))
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        // Delivered to every listening replica when (and only if) this commits.
        sqlx::query("SELECT pg_notify('castellan_changes_' || current_schema(), $1)")
            .bind(rev.to_string())
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(rev)
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(db_err)
    }
}
