//! The data plane's write path on SQLite: chunked multi-row event inserts, and the
//! transaction counter. Object and event reads are the shared SQL
//! (`castellan-store/sql/objects.rs`).

use crate::objects::{event, BLOB_COLS, EVENT_COLS};
use crate::{conflict_or, db_err, rows};
use async_trait::async_trait;
use castellan_store::*;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, Transaction};

/// Rows per multi-row INSERT: 10 columns each stays far below SQLite's variable limit.
const INSERT_CHUNK: usize = 500;
/// Ids per `IN (…)` list.
const IN_CHUNK: usize = 500;

pub(crate) async fn next_xact(conn: &mut SqliteConnection) -> StoreResult<XactId> {
    let v: i64 = sqlx::query_scalar("UPDATE xact_counter SET value = value + 1 WHERE id = 1 RETURNING value")
        .fetch_one(conn)
        .await
        .map_err(db_err)?;
    Ok(XactId(v))
}

/// A data-plane write transaction on the SQLite store (on the one writer connection).
pub struct SqliteDataTx {
    tx: Transaction<'static, Sqlite>,
}

impl SqliteDataTx {
    pub(crate) fn new(tx: Transaction<'static, Sqlite>) -> Self {
        SqliteDataTx { tx }
    }
}

#[async_trait]
impl DataTx for SqliteDataTx {
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
        next_xact(&mut self.tx).await
    }

    async fn latest_events(&mut self, object: EventObject, row_ids: &[String]) -> StoreResult<Vec<StoredEvent>> {
        // The transaction began IMMEDIATE: it holds the database's write lock already.
        let mut out = Vec::new();
        for chunk in row_ids.chunks(IN_CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new(format!("SELECT {EVENT_COLS} FROM events e WHERE e.object_kind = "));
            qb.push_bind(object.kind.as_str()).push(" AND e.object_id = ").push_bind(object.id);
            rows::push_texts(&mut qb, "e.row_id", chunk);
            qb.push(
                " AND NOT EXISTS (SELECT 1 FROM events n WHERE n.object_kind = e.object_kind \
                 AND n.object_id = e.object_id AND n.row_id = e.row_id AND n.xact_id > e.xact_id)",
            );
            let rs = qb.build().fetch_all(&mut *self.tx).await.map_err(db_err)?;
            for r in &rs {
                out.push(event(r)?);
            }
        }
        Ok(out)
    }

    async fn latest_xacts(&mut self, object: EventObject, row_ids: &[String]) -> StoreResult<Vec<(String, XactId)>> {
        // The transaction began IMMEDIATE: it holds the database's write lock already.
        let mut out = Vec::with_capacity(row_ids.len());
        for chunk in row_ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("SELECT row_id, MAX(xact_id) FROM events WHERE object_kind = ");
            qb.push_bind(object.kind.as_str()).push(" AND object_id = ").push_bind(object.id);
            rows::push_texts(&mut qb, "row_id", chunk);
            qb.push(" GROUP BY row_id");
            let rs: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *self.tx).await.map_err(db_err)?;
            out.extend(rs.into_iter().map(|(r, x)| (r, XactId(x))));
        }
        Ok(out)
    }

    async fn insert_events(&mut self, xact: XactId, rows: &[EventWrite]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (object_kind, object_id, row_id, xact_id, project_id, root_span_id, span_id, \
                 is_root, deleted, is_comment, data) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.object.kind.as_str())
                    .push_bind(r.object.id)
                    .push_bind(r.row_id.as_str())
                    .push_bind(xact.0)
                    .push_bind(r.project_id.0)
                    .push_bind(r.root_span_id.as_deref())
                    .push_bind(r.span_id.as_deref())
                    .push_bind(r.is_root)
                    .push_bind(r.deleted)
                    .push_bind(r.is_comment)
                    .push_bind(r.data.as_str());
            });
            qb.build().execute(&mut *self.tx).await.map_err(db_err)?;
        }
        Ok(())
    }

    async fn insert_attachment_refs(&mut self, object: EventObject, keys: &[String]) -> StoreResult<()> {
        for chunk in keys.chunks(IN_CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO attachment_refs (key, object_kind, object_id) ");
            qb.push_values(chunk, |mut b, k| {
                b.push_bind(k.as_str()).push_bind(object.kind.as_str()).push_bind(object.id);
            });
            qb.build().execute(&mut *self.tx).await.map_err(db_err)?;
        }
        Ok(())
    }

    async fn insert_blob(&mut self, b: &BlobRecord) -> StoreResult<()> {
        let sql = format!("INSERT INTO blobs ({BLOB_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        sqlx::query(&sql)
            .bind(&b.key)
            .bind(b.purpose.as_str())
            .bind(b.org_id.0)
            .bind(b.user_id.0)
            .bind(&b.filename)
            .bind(&b.content_type)
            .bind(b.status.to_string())
            .bind(b.size_bytes)
            .bind(b.created)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| conflict_or(e, || format!("key `{}` is already in use", b.key)))?;
        Ok(())
    }

    async fn put_blob_data(&mut self, key: &str, data: &[u8]) -> StoreResult<()> {
        let res = sqlx::query("UPDATE blobs SET data = ?, size_bytes = ? WHERE key = ?")
            .bind(data)
            .bind(data.len() as i64)
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("blob `{key}`"))
    }

    async fn set_blob_status(&mut self, key: &str, status: &serde_json::Value) -> StoreResult<()> {
        let res = sqlx::query("UPDATE blobs SET status = ? WHERE key = ?")
            .bind(status.to_string())
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("blob `{key}`"))
    }

    async fn delete_blob(&mut self, key: &str) -> StoreResult<()> {
        let res =
            sqlx::query("DELETE FROM blobs WHERE key = ?").bind(key).execute(&mut *self.tx).await.map_err(db_err)?;
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
