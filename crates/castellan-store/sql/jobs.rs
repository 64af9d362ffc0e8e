//! The scheduler's leases, automation runs, and retention's deletes: over the pool,
//! outside repository transactions (each statement is its own short transaction, so
//! a sweep never holds the write lock for long).

use super::btql::JsonSql;
use super::store::db_err;
use crate::backend::{Db, Dialect};
use castellan_core::OrgId;
use castellan_store::*;
use sqlx::Pool;
use uuid::Uuid;

pub(crate) async fn take_lease(
    pool: &Pool<Db>,
    name: &str,
    holder: &str,
    now: Micros,
    until: Micros,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO job_leases (name, holder, expires) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires \
         WHERE job_leases.expires < $4 OR job_leases.holder = excluded.holder",
    )
    .bind(name)
    .bind(holder)
    .bind(until)
    .bind(now)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn release_lease(pool: &Pool<Db>, name: &str, holder: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM job_leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn record_run(pool: &Pool<Db>, r: &RunRecord) -> StoreResult<()> {
    let details = r.details.as_ref().map(|d| d.to_string());
    sqlx::query(
        "INSERT INTO automation_runs (id, automation_id, org_id, started, finished, status, count, error, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET finished = excluded.finished, \
         status = excluded.status, count = excluded.count, error = excluded.error, details = excluded.details",
    )
    .bind(r.id)
    .bind(r.automation_id)
    .bind(r.org_id.0)
    .bind(r.started)
    .bind(r.finished)
    .bind(&r.status)
    .bind(r.count)
    .bind(&r.error)
    .bind(details)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: Uuid,
    automation_id: Uuid,
    org_id: Uuid,
    started: i64,
    finished: Option<i64>,
    status: String,
    count: i64,
    error: Option<String>,
    details: Option<String>,
}

pub(crate) async fn list_runs(pool: &Pool<Db>, automation: Uuid, limit: usize) -> StoreResult<Vec<RunRecord>> {
    let rows: Vec<RunRow> = sqlx::query_as(
        "SELECT id, automation_id, org_id, started, finished, status, count, error, details FROM automation_runs \
         WHERE automation_id = $1 ORDER BY started DESC, id DESC LIMIT $2",
    )
    .bind(automation)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    Ok(rows
        .into_iter()
        .map(|r| RunRecord {
            id: r.id,
            automation_id: r.automation_id,
            org_id: OrgId(r.org_id),
            started: r.started,
            finished: r.finished,
            status: r.status,
            count: r.count,
            error: r.error,
            details: r.details.and_then(|d| serde_json::from_str(&d).ok()),
        })
        .collect())
}

pub(crate) async fn all_admin(pool: &Pool<Db>, kind: AdminKind) -> StoreResult<Vec<AdminRecord>> {
    let sql = format!(
        "SELECT {} FROM admin_objects a WHERE a.kind = $1 AND a.org_id IN (SELECT id FROM orgs WHERE deleted_at IS NULL) \
         ORDER BY a.created, a.id",
        super::admin::COLS.split(", ").map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", ")
    );
    let rows = sqlx::query(&sql).bind(kind.as_str()).fetch_all(pool).await.map_err(db_err)?;
    rows.iter().map(super::admin::admin).collect()
}

/// A row's creation time, as every backend reads it from its JSON.
const CREATED: &str = "(data ->> 'created')";

pub(crate) async fn count_events_before(pool: &Pool<Db>, object: EventObject, cutoff: &str) -> StoreResult<u64> {
    let sql = format!("SELECT COUNT(*) FROM events WHERE object_kind = $1 AND object_id = $2 AND {CREATED} < $3");
    let n: i64 = sqlx::query_scalar(&sql)
        .bind(object.kind.as_str())
        .bind(object.id)
        .bind(cutoff)
        .fetch_one(pool)
        .await
        .map_err(db_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) async fn delete_events_before(
    pool: &Pool<Db>,
    object: EventObject,
    cutoff: &str,
    limit: usize,
) -> StoreResult<u64> {
    let sql = format!(
        "DELETE FROM events WHERE object_kind = $1 AND object_id = $2 AND (row_id, xact_id) IN \
         (SELECT row_id, xact_id FROM events WHERE object_kind = $1 AND object_id = $2 AND {CREATED} < $3 LIMIT $4)"
    );
    let done = sqlx::query(&sql)
        .bind(object.kind.as_str())
        .bind(object.id)
        .bind(cutoff)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn record_delivery(pool: &Pool<Db>, d: &DeliveryRecord) -> StoreResult<()> {
    let details = d.details.as_ref().map(|v| v.to_string());
    sqlx::query(
        "INSERT INTO automation_deliveries (id, automation_id, org_id, run_id, created, finished, status, attempts, \
         http_status, error, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO UPDATE \
         SET finished = excluded.finished, status = excluded.status, attempts = excluded.attempts, \
         http_status = excluded.http_status, error = excluded.error, details = excluded.details",
    )
    .bind(d.id)
    .bind(d.automation_id)
    .bind(d.org_id.0)
    .bind(d.run_id)
    .bind(d.created)
    .bind(d.finished)
    .bind(&d.status)
    .bind(d.attempts)
    .bind(d.http_status)
    .bind(&d.error)
    .bind(details)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    automation_id: Uuid,
    org_id: Uuid,
    run_id: Option<Uuid>,
    created: i64,
    finished: Option<i64>,
    status: String,
    attempts: i64,
    http_status: Option<i64>,
    error: Option<String>,
    details: Option<String>,
}

pub(crate) async fn list_deliveries(
    pool: &Pool<Db>,
    automation: Uuid,
    limit: usize,
) -> StoreResult<Vec<DeliveryRecord>> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT id, automation_id, org_id, run_id, created, finished, status, attempts, http_status, error, details \
         FROM automation_deliveries WHERE automation_id = $1 ORDER BY created DESC, id DESC LIMIT $2",
    )
    .bind(automation)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    Ok(rows
        .into_iter()
        .map(|r| DeliveryRecord {
            id: r.id,
            automation_id: r.automation_id,
            org_id: OrgId(r.org_id),
            run_id: r.run_id,
            created: r.created,
            finished: r.finished,
            status: r.status,
            attempts: r.attempts,
            http_status: r.http_status,
            error: r.error,
            details: r.details.and_then(|d| serde_json::from_str(&d).ok()),
        })
        .collect())
}

/// After rows of `object` went: its references to attachments that no row of it
/// still names are dropped, then every attachment no log references any more is
/// deleted (bytes and record); how many attachments were deleted.
pub(crate) async fn sweep_attachments(pool: &Pool<Db>, object: EventObject, org: OrgId) -> StoreResult<u64> {
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM attachment_refs WHERE object_kind = $1 AND object_id = $2")
            .bind(object.kind.as_str())
            .bind(object.id)
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
    let mut deleted = 0;
    for key in keys {
        let sql = format!(
            "SELECT 1 FROM events WHERE object_kind = $1 AND object_id = $2 AND {} LIMIT 1",
            <Dialect as JsonSql>::contains("CAST(data AS TEXT)", "$3")
        );
        let still: Option<i32> = sqlx::query_scalar(&sql)
            .bind(object.kind.as_str())
            .bind(object.id)
            .bind(&key)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
        if still.is_some() {
            continue;
        }
        let mut tx = pool.begin().await.map_err(db_err)?;
        sqlx::query("DELETE FROM attachment_refs WHERE key = $1 AND object_kind = $2 AND object_id = $3")
            .bind(&key)
            .bind(object.kind.as_str())
            .bind(object.id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // References are by the client's key (no org: another org's log naming the
        // same key keeps the bytes, never the other way round); blobs by the org's.
        let done = sqlx::query(
            "DELETE FROM blobs WHERE key = $1 AND org_id = $2 AND purpose = 'attachment' \
             AND NOT EXISTS (SELECT 1 FROM attachment_refs r WHERE r.key = $3)",
        )
        .bind(attachment_blob_key(org, &key))
        .bind(org.0)
        .bind(&key)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        deleted += done.rows_affected();
    }
    Ok(deleted)
}

/// Deletes an org's overflow payloads announced before `before` and never consumed
/// (a consumed one is deleted with the write that reads it); how many.
pub(crate) async fn delete_stale_overflow(pool: &Pool<Db>, org: OrgId, before: Micros) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM blobs WHERE org_id = $1 AND purpose = 'logs3_overflow' AND created < $2")
        .bind(org.0)
        .bind(before)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}

pub(crate) async fn mark_xact(pool: &Pool<Db>, at: Micros, xact: XactId) -> StoreResult<()> {
    sqlx::query("INSERT INTO xact_marks (at, xact_id) VALUES ($1, $2) ON CONFLICT (at) DO NOTHING")
        .bind(at)
        .bind(xact.0)
        .execute(pool)
        .await
        .map_err(db_err)?;
    sqlx::query("DELETE FROM xact_marks WHERE at < $1")
        .bind(at - 40 * 86_400 * 1_000_000)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn xact_before(pool: &Pool<Db>, at: Micros) -> StoreResult<Option<XactId>> {
    let x: Option<i64> = sqlx::query_scalar("SELECT xact_id FROM xact_marks WHERE at <= $1 ORDER BY at DESC LIMIT 1")
        .bind(at)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    Ok(x.map(XactId))
}
