//! The data plane's write path on PostgreSQL: batched event inserts with array
//! binds, and the transaction counter. Object and event reads are the shared SQL
//! (`castellan-store/sql/objects.rs`).

use crate::db_err;
use crate::objects::{event, BLOB_COLS, EVENT_COLS};
use async_trait::async_trait;
use castellan_store::*;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

/// Bumps the counter. The row stays locked until the transaction ends, which orders
/// data writes (and only them) by their ids.
pub(crate) async fn next_xact(conn: &mut PgConnection) -> StoreResult<XactId> {
    let v: i64 = sqlx::query_scalar("UPDATE xact_counter SET value = value + 1 WHERE id = 1 RETURNING value")
        .fetch_one(conn)
        .await
        .map_err(db_err)?;
    Ok(XactId(v))
}

/// A data-plane write transaction on the PostgreSQL store.
pub struct PgDataTx {
    tx: Transaction<'static, Postgres>,
    xact: Option<XactId>,
}

impl PgDataTx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> Self {
        PgDataTx { tx, xact: None }
    }

    /// Before reading the newest versions of rows: locks the transaction-id counter
    /// row (unless this transaction already holds it, having taken its id). In READ
    /// COMMITTED the reads after it then see every data write committed before this
    /// one, and none can commit in between.
    async fn lock_counter(&mut self) -> StoreResult<()> {
        if self.xact.is_none() {
            sqlx::query("SELECT value FROM xact_counter WHERE id = 1 FOR UPDATE")
                .execute(&mut *self.tx)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }
}

#[async_trait]
impl DataTx for PgDataTx {
    async fn claim_score_keys(&mut self, rule: uuid::Uuid, keys: &[Vec<u8>], at: Micros) -> StoreResult<Vec<Vec<u8>>> {
        crate::sql::jobs::claim_score_keys(&mut self.tx, rule, keys, at).await
    }

    async fn put_score_retry(&mut self, r: &castellan_store::ScoreRetry) -> StoreResult<()> {
        crate::sql::jobs::put_score_retry(&mut self.tx, r).await
    }

    async fn take_score_retry(&mut self, rule: uuid::Uuid, row_id: &str, scorer: &str) -> StoreResult<bool> {
        crate::sql::jobs::take_score_retry(&mut self.tx, rule, row_id, scorer).await
    }

    async fn next_xact_id(&mut self) -> StoreResult<XactId> {
        let x = next_xact(&mut self.tx).await?;
        self.xact = Some(x);
        Ok(x)
    }

    async fn latest_xacts(&mut self, object: EventObject, row_ids: &[String]) -> StoreResult<Vec<(String, XactId)>> {
        // INVARIANT: the counter row is locked first (see `lock_counter`).
        self.lock_counter().await?;
        let rs: Vec<(String, i64)> = sqlx::query_as(
            "SELECT row_id, MAX(xact_id) FROM events WHERE object_kind = $1 AND object_id = $2 \
             AND row_id = ANY($3) GROUP BY row_id",
        )
        .bind(object.kind.as_str())
        .bind(object.id)
        .bind(row_ids)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(rs.into_iter().map(|(r, x)| (r, XactId(x))).collect())
    }

    async fn latest_events(&mut self, object: EventObject, row_ids: &[String]) -> StoreResult<Vec<StoredEvent>> {
        // INVARIANT: the counter row is locked first (see `lock_counter`).
        self.lock_counter().await?;
        let sql = format!(
            "SELECT {EVENT_COLS} FROM events e WHERE e.object_kind = $1 AND e.object_id = $2 \
             AND e.row_id = ANY($3) AND NOT EXISTS (SELECT 1 FROM events n WHERE n.object_kind = e.object_kind \
             AND n.object_id = e.object_id AND n.row_id = e.row_id AND n.xact_id > e.xact_id)"
        );
        let rs = sqlx::query(&sql)
            .bind(object.kind.as_str())
            .bind(object.id)
            .bind(row_ids)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err)?;
        rs.iter().map(event).collect()
    }

    async fn insert_events(&mut self, xact: XactId, rows: &[EventWrite]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch, whatever its size: arrays, not VALUES.
        let kinds: Vec<&str> = rows.iter().map(|r| r.object.kind.as_str()).collect();
        let objects: Vec<Uuid> = rows.iter().map(|r| r.object.id).collect();
        let row_ids: Vec<&str> = rows.iter().map(|r| r.row_id.as_str()).collect();
        let projects: Vec<Uuid> = rows.iter().map(|r| r.project_id.0).collect();
        let roots: Vec<Option<&str>> = rows.iter().map(|r| r.root_span_id.as_deref()).collect();
        let spans: Vec<Option<&str>> = rows.iter().map(|r| r.span_id.as_deref()).collect();
        let is_root: Vec<bool> = rows.iter().map(|r| r.is_root).collect();
        let deleted: Vec<bool> = rows.iter().map(|r| r.deleted).collect();
        let is_comment: Vec<bool> = rows.iter().map(|r| r.is_comment).collect();
        let data: Vec<&str> = rows.iter().map(|r| r.data.as_str()).collect();
        sqlx::query(
            "INSERT INTO events (object_kind, object_id, row_id, xact_id, project_id, root_span_id, is_root, \
             deleted, is_comment, data, span_id) \
             SELECT k, o, r, $4, p, rs, ir, d, c, j::json, s FROM UNNEST($1::text[], $2::uuid[], $3::text[], \
             $5::uuid[], $6::text[], $7::bool[], $8::bool[], $9::bool[], $10::text[], $11::text[]) \
             AS t(k, o, r, p, rs, ir, d, c, j, s)",
        )
        .bind(&kinds)
        .bind(&objects)
        .bind(&row_ids)
        .bind(xact.0)
        .bind(&projects)
        .bind(&roots)
        .bind(&is_root)
        .bind(&deleted)
        .bind(&is_comment)
        .bind(&data)
        .bind(&spans)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn insert_attachment_refs(&mut self, object: EventObject, keys: &[String]) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO attachment_refs (key, object_kind, object_id) SELECT k, $2, $3 FROM UNNEST($1::text[]) AS t(k) \
             ON CONFLICT DO NOTHING",
        )
        .bind(keys)
        .bind(object.kind.as_str())
        .bind(object.id)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn insert_blob(&mut self, b: &BlobRecord) -> StoreResult<()> {
        // ON CONFLICT instead of catching the error: a failed statement would abort
        // the transaction.
        let sql = format!(
            "INSERT INTO blobs ({BLOB_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (key) DO NOTHING"
        );
        let res = sqlx::query(&sql)
            .bind(&b.key)
            .bind(b.purpose.as_str())
            .bind(b.org_id.0)
            .bind(b.user_id.0)
            .bind(&b.filename)
            .bind(&b.content_type)
            .bind(Json(&b.status))
            .bind(b.size_bytes)
            .bind(b.created)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        if res.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("key `{}` is already in use", b.key)));
        }
        Ok(())
    }

    async fn put_blob_data(&mut self, key: &str, data: &[u8]) -> StoreResult<()> {
        let res = sqlx::query("UPDATE blobs SET data = $1, size_bytes = $2 WHERE key = $3")
            .bind(data)
            .bind(data.len() as i64)
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("blob `{key}`"))
    }

    async fn set_blob_status(&mut self, key: &str, status: &serde_json::Value) -> StoreResult<()> {
        let res = sqlx::query("UPDATE blobs SET status = $1 WHERE key = $2")
            .bind(Json(status))
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("blob `{key}`"))
    }

    async fn delete_blob(&mut self, key: &str) -> StoreResult<()> {
        let res =
            sqlx::query("DELETE FROM blobs WHERE key = $1").bind(key).execute(&mut *self.tx).await.map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("blob `{key}`"))
    }

    async fn org_plan(&mut self, org: castellan_core::OrgId) -> StoreResult<Option<serde_json::Value>> {
        crate::sql::usage::org_plan(&mut self.tx, org).await
    }

    async fn lock_usage(&mut self, org: castellan_core::OrgId, month: &str) -> StoreResult<UsageCounts> {
        crate::sql::usage::lock_usage(&mut self.tx, org, month).await
    }

    async fn add_usage(
        &mut self,
        org: castellan_core::OrgId,
        day: &str,
        month: &str,
        delta: &UsageCounts,
    ) -> StoreResult<UsageCounts> {
        crate::sql::usage::add_usage(&mut self.tx, org, day, month, delta).await
    }

    async fn record_crossing(&mut self, c: &UsageCrossing) -> StoreResult<bool> {
        crate::sql::usage::record_crossing(&mut self.tx, c).await
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(db_err)
    }
}
