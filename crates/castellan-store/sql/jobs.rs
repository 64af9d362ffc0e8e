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

/// Retention's window: up to `scan` versions after a position (`$1` kind, `$2` id,
/// `$3`/`$4` the position, `$5` how many, `$6` the cutoff), with the positions of
/// those created before the cutoff as the batch's items.
pub(crate) fn window_sql() -> String {
    batch_after_sql(
        &format!("e.xact_id, e.row_id, {CREATED} < $6 AS old"),
        "o AS (SELECT xact_id, row_id FROM b WHERE b.old)",
        crate::backend::POSITIONS_JSON,
    )
}

pub(crate) async fn retention_window(
    pool: &Pool<Db>,
    object: EventObject,
    cutoff: &str,
    after: &(XactId, String),
    scan: usize,
) -> StoreResult<RetentionWindow> {
    let r: BatchRow = sqlx::query_as(&window_sql())
        .bind(object.kind.as_str())
        .bind(object.id)
        .bind(after.0 .0)
        .bind(after.1.as_str())
        .bind(i64::try_from(scan).unwrap_or(i64::MAX))
        .bind(cutoff)
        .fetch_one(pool)
        .await
        .map_err(db_err)?;
    let mut old: Vec<(i64, String)> = r.items("retention window")?;
    old.sort();
    Ok(RetentionWindow {
        read: r.read(),
        last: r.last(),
        old: old.into_iter().map(|(x, row)| (XactId(x), row)).collect(),
    })
}

/// Retention's delete of one batch (`$1` kind, `$2` id, `$3`/`$4` after, `$5`/`$6`
/// through, `$7` the cutoff).
pub(crate) fn delete_between_sql() -> String {
    format!(
        "DELETE FROM events WHERE object_kind = $1 AND object_id = $2 \
         AND xact_id >= $3 AND (xact_id > $3 OR row_id > $4) AND xact_id <= $5 AND (xact_id < $5 OR row_id <= $6) \
         AND {CREATED} < $7"
    )
}

/// Deletes the versions of `object` after `after`, up to and including `through`,
/// created before `cutoff`, on `conn` (the backend decides how durable its commit
/// must be); how many. The range bounds `xact_id` on both sides, so both planners
/// walk the log's transaction index between them and no further.
pub(crate) async fn delete_events_between(
    conn: &mut <Db as sqlx::Database>::Connection,
    object: EventObject,
    cutoff: &str,
    after: &(XactId, String),
    through: &(XactId, String),
) -> StoreResult<u64> {
    let done = sqlx::query(&delete_between_sql())
        .bind(object.kind.as_str())
        .bind(object.id)
        .bind(after.0 .0)
        .bind(after.1.as_str())
        .bind(through.0 .0)
        .bind(through.1.as_str())
        .bind(cutoff)
        .execute(conn)
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
///
/// Each key's search of the log runs on `reader` (it may read every row: on SQLite
/// the writer's one connection would keep ingest waiting meanwhile); the
/// transaction that drops the reference looks again only at the versions written
/// since, through the log's transaction index, so a row naming the key that came
/// in between keeps it.
pub(crate) async fn sweep_attachments(
    reader: &Pool<Db>,
    writer: &Pool<Db>,
    object: EventObject,
    org: OrgId,
) -> StoreResult<u64> {
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT key FROM attachment_refs WHERE object_kind = $1 AND object_id = $2")
            .bind(object.kind.as_str())
            .bind(object.id)
            .fetch_all(reader)
            .await
            .map_err(db_err)?;
    if keys.is_empty() {
        return Ok(0);
    }
    // The log's newest version before its rows are searched: whatever the searches
    // did not see is newer.
    let seen: Option<i64> =
        sqlx::query_scalar("SELECT MAX(xact_id) FROM events WHERE object_kind = $1 AND object_id = $2")
            .bind(object.kind.as_str())
            .bind(object.id)
            .fetch_one(reader)
            .await
            .map_err(db_err)?;
    // Whether a version of the log (`$1`, `$2`) names the key (`$3`), among those
    // that `newer` admits.
    let names = |newer: &str| {
        format!(
            "SELECT 1 FROM events WHERE object_kind = $1 AND object_id = $2{newer} AND {} LIMIT 1",
            <Dialect as JsonSql>::contains("CAST(data AS TEXT)", "$3")
        )
    };
    let (search, since) = (names(""), names(" AND xact_id > $4"));
    let mut deleted = 0;
    for key in keys {
        let still: Option<i32> = sqlx::query_scalar(&search)
            .bind(object.kind.as_str())
            .bind(object.id)
            .bind(&key)
            .fetch_optional(reader)
            .await
            .map_err(db_err)?;
        if still.is_some() {
            continue;
        }
        // The write first: the transaction holds the write lock before it looks.
        let mut tx = writer.begin().await.map_err(db_err)?;
        sqlx::query("DELETE FROM attachment_refs WHERE key = $1 AND object_kind = $2 AND object_id = $3")
            .bind(&key)
            .bind(object.kind.as_str())
            .bind(object.id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let named_since: Option<i32> = sqlx::query_scalar(&since)
            .bind(object.kind.as_str())
            .bind(object.id)
            .bind(&key)
            .bind(seen.unwrap_or(i64::MIN))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if named_since.is_some() {
            tx.rollback().await.map_err(db_err)?;
            continue;
        }
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

pub(crate) async fn scoring_cursor(pool: &Pool<Db>, project: Uuid) -> StoreResult<Option<(XactId, String)>> {
    let v: Option<(i64, String)> =
        sqlx::query_as("SELECT xact_id, row_id FROM online_scoring_cursors WHERE project_id = $1")
            .bind(project)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
    Ok(v.map(|(x, r)| (XactId(x), r)))
}

pub(crate) async fn set_scoring_cursor(
    pool: &Pool<Db>,
    project: Uuid,
    at_row: &(XactId, String),
    at: Micros,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO online_scoring_cursors (project_id, xact_id, row_id, updated) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (project_id) DO UPDATE SET xact_id = excluded.xact_id, row_id = excluded.row_id, \
         updated = excluded.updated",
    )
    .bind(project)
    .bind(at_row.0 .0)
    .bind(at_row.1.as_str())
    .bind(at)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// A batch of a log's versions read as one row (decoding a row per version cost
/// SQLite's driver several times what reading it did): how many versions, the last
/// one's position, and the batch's items as one JSON array.
#[derive(sqlx::FromRow)]
struct BatchRow {
    n: i64,
    last_xact: Option<i64>,
    last_row: Option<String>,
    items: Option<String>,
}

impl BatchRow {
    fn read(&self) -> usize {
        usize::try_from(self.n).unwrap_or(0)
    }

    fn last(&self) -> Option<(XactId, String)> {
        self.last_xact.zip(self.last_row.clone()).map(|(x, row)| (XactId(x), row))
    }

    /// The items, decoded (`what` names the batch in an error).
    fn items<T: serde::de::DeserializeOwned>(&self, what: &str) -> StoreResult<Vec<T>> {
        match self.items.as_deref() {
            Some(text) => serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("{what}: {e}"))),
            None => Ok(Vec::new()),
        }
    }
}

/// The next versions of a log after a position (`$1` kind, `$2` id, `$3`/`$4` the
/// position, `$5` how many) as a [`BatchRow`]: `b` is the batch (reading
/// `columns` of `events e`), `selected` defines the table the aggregate `json`
/// reads from `b`. `xact_id >= $3` first: both planners then seek the log's index
/// to the position (an `a > x OR (a = x AND b > y)` alone makes SQLite scan the
/// whole log from its start on every batch, so that reading a backlog took time
/// quadratic in its length).
fn batch_after_sql(columns: &str, selected: &str, json: &str) -> String {
    format!(
        "WITH b AS (SELECT {columns} FROM events e WHERE e.object_kind = $1 AND e.object_id = $2 \
         AND e.xact_id >= $3 AND (e.xact_id > $3 OR e.row_id > $4) ORDER BY e.xact_id, e.row_id LIMIT $5), \
         l AS (SELECT xact_id, row_id FROM b ORDER BY xact_id DESC, row_id DESC LIMIT 1), {selected} \
         SELECT (SELECT COUNT(*) FROM b) AS n, (SELECT xact_id FROM l) AS last_xact, (SELECT row_id FROM l) AS last_row, \
         {json} AS items"
    )
}

/// One batch of heads: the spans among the versions (`$6…` are the `skip`
/// transactions).
pub(crate) fn heads_sql(skip: usize) -> String {
    let skipped = if skip == 0 {
        String::new()
    } else {
        let list: Vec<String> = (6..6 + skip).map(|i| format!("${i}")).collect();
        format!(" AND b.xact_id NOT IN ({})", list.join(", "))
    };
    batch_after_sql(
        "e.row_id, e.xact_id, e.deleted, e.is_root, e.is_comment, e.span_id",
        &format!(
            "w AS (SELECT row_id, xact_id, is_root, span_id FROM b WHERE NOT b.deleted AND NOT b.is_comment{skipped})"
        ),
        crate::backend::HEADS_JSON,
    )
}

pub(crate) async fn event_heads_since(
    pool: &Pool<Db>,
    object: EventObject,
    after: &(XactId, String),
    limit: usize,
    skip: &[XactId],
) -> StoreResult<HeadBatch> {
    let sql = heads_sql(skip.len());
    let mut q = sqlx::query_as::<_, BatchRow>(&sql)
        .bind(object.kind.as_str())
        .bind(object.id)
        .bind(after.0 .0)
        .bind(after.1.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
    for x in skip {
        q = q.bind(x.0);
    }
    let r = q.fetch_one(pool).await.map_err(db_err)?;
    let parsed: Vec<(String, i64, serde_json::Value, Option<String>)> = r.items("heads")?;
    let heads = parsed
        .into_iter()
        .map(|(row_id, xact_id, is_root, span_id)| EventHead {
            row_id,
            xact_id: XactId(xact_id),
            // SQLite answers 0 or 1, PostgreSQL a boolean.
            is_root: is_root.as_bool().unwrap_or_else(|| is_root.as_i64().is_some_and(|i| i != 0)),
            span_id,
        })
        .collect();
    Ok(HeadBatch { read: r.read(), last: r.last(), heads })
}

#[derive(sqlx::FromRow)]
struct RawRow {
    row_id: String,
    xact_id: i64,
    deleted: bool,
    data: String,
}

impl From<RawRow> for RawEvent {
    fn from(r: RawRow) -> RawEvent {
        RawEvent { row_id: r.row_id, xact_id: XactId(r.xact_id), deleted: r.deleted, data: r.data }
    }
}

/// The versions a list names. Joined from a `VALUES` list, so that each is one seek
/// of the log's primary key: with `(row_id = ? AND xact_id = ?) OR …` SQLite read
/// the whole log for every call.
pub(crate) async fn event_versions(
    pool: &Pool<Db>,
    object: EventObject,
    versions: &[(XactId, String)],
) -> StoreResult<Vec<RawEvent>> {
    let mut out = Vec::with_capacity(versions.len());
    for chunk in versions.chunks(200) {
        let mut qb = sqlx::QueryBuilder::<Db>::new(VERSIONS_SELECT);
        let mut sep = qb.separated(", ");
        for (x, row) in chunk {
            sep.push("(").push_bind_unseparated(row.as_str()).push_unseparated(", ");
            sep.push_bind_unseparated(x.0).push_unseparated(")");
        }
        qb.push(VERSIONS_JOIN);
        qb.push_bind(object.kind.as_str()).push(" AND e.object_id = ").push_bind(object.id);
        let rows: Vec<RawRow> = qb.build_query_as().fetch_all(pool).await.map_err(db_err)?;
        out.extend(rows.into_iter().map(RawEvent::from));
    }
    Ok(out)
}

pub(crate) const VERSIONS_SELECT: &str =
    "SELECT e.row_id, e.xact_id, e.deleted, CAST(e.data AS TEXT) AS data FROM (VALUES ";
/// `CROSS JOIN`: SQLite then keeps the list as the outer loop (without it, it may
/// walk the log's index and look each row up in the list); PostgreSQL plans it as
/// any inner join.
pub(crate) const VERSIONS_JOIN: &str =
    ") v CROSS JOIN events e WHERE e.row_id = v.column1 AND e.xact_id = v.column2 AND e.object_kind = ";

pub(crate) async fn latest_raw_events(
    pool: &Pool<Db>,
    object: EventObject,
    row_ids: &[String],
) -> StoreResult<Vec<RawEvent>> {
    let mut out = Vec::with_capacity(row_ids.len());
    for chunk in row_ids.chunks(200) {
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "SELECT e.row_id, e.xact_id, e.deleted, CAST(e.data AS TEXT) AS data FROM events e WHERE e.object_kind = ",
        );
        qb.push_bind(object.kind.as_str()).push(" AND e.object_id = ").push_bind(object.id);
        qb.push(" AND e.row_id IN (");
        let mut sep = qb.separated(", ");
        for r in chunk {
            sep.push_bind(r.as_str());
        }
        qb.push(
            ") AND NOT EXISTS (SELECT 1 FROM events n WHERE n.object_kind = e.object_kind \
             AND n.object_id = e.object_id AND n.row_id = e.row_id AND n.xact_id > e.xact_id)",
        );
        let rows: Vec<RawRow> = qb.build_query_as().fetch_all(pool).await.map_err(db_err)?;
        out.extend(rows.into_iter().map(RawEvent::from));
    }
    Ok(out)
}

/// Claims score keys inside a data transaction (on its connection); the keys it
/// claimed.
pub(crate) async fn claim_score_keys(
    conn: &mut <Db as sqlx::Database>::Connection,
    rule: Uuid,
    keys: &[Vec<u8>],
    at: Micros,
) -> StoreResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for chunk in keys.chunks(300) {
        let mut qb = sqlx::QueryBuilder::<Db>::new("INSERT INTO online_score_claims (key, rule_id, created) ");
        qb.push_values(chunk, |mut b, k| {
            b.push_bind(k.as_slice()).push_bind(rule).push_bind(at);
        });
        qb.push(" ON CONFLICT (key) DO NOTHING RETURNING key");
        let claimed: Vec<Vec<u8>> = qb.build_query_scalar().fetch_all(&mut *conn).await.map_err(db_err)?;
        out.extend(claimed);
    }
    Ok(out)
}

pub(crate) async fn claimed_score_keys(pool: &Pool<Db>, keys: &[Vec<u8>]) -> StoreResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for chunk in keys.chunks(500) {
        let mut qb = sqlx::QueryBuilder::<Db>::new("SELECT key FROM online_score_claims WHERE key IN (");
        let mut sep = qb.separated(", ");
        for k in chunk {
            sep.push_bind(k.as_slice());
        }
        qb.push(")");
        let found: Vec<Vec<u8>> = qb.build_query_scalar().fetch_all(pool).await.map_err(db_err)?;
        out.extend(found);
    }
    Ok(out)
}

pub(crate) async fn prune_score_claims(pool: &Pool<Db>, before: Micros, limit: usize) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM online_score_claims WHERE key IN \
         (SELECT key FROM online_score_claims WHERE created < $1 ORDER BY created LIMIT $2)",
    )
    .bind(before)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}

#[derive(sqlx::FromRow)]
struct RetryRow {
    rule_id: Uuid,
    row_id: String,
    scorer: String,
    project_id: Uuid,
    rounds: i64,
    next_at: i64,
    last_error: String,
    created: i64,
}

pub(crate) async fn due_score_retries(
    pool: &Pool<Db>,
    project: Uuid,
    now: Micros,
    limit: usize,
) -> StoreResult<Vec<ScoreRetry>> {
    let rows: Vec<RetryRow> = sqlx::query_as(
        "SELECT rule_id, row_id, scorer, project_id, rounds, next_at, last_error, created FROM online_score_retries \
         WHERE project_id = $1 AND next_at <= $2 ORDER BY next_at LIMIT $3",
    )
    .bind(project)
    .bind(now)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    Ok(rows
        .into_iter()
        .map(|r| ScoreRetry {
            rule_id: r.rule_id,
            row_id: r.row_id,
            scorer: r.scorer,
            project_id: r.project_id,
            rounds: r.rounds,
            next_at: r.next_at,
            last_error: r.last_error,
            created: r.created,
        })
        .collect())
}

pub(crate) async fn put_score_retry(conn: &mut <Db as sqlx::Database>::Connection, r: &ScoreRetry) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO online_score_retries (rule_id, row_id, scorer, project_id, rounds, next_at, last_error, created) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (rule_id, row_id, scorer) DO UPDATE SET \
         rounds = excluded.rounds, next_at = excluded.next_at, last_error = excluded.last_error",
    )
    .bind(r.rule_id)
    .bind(r.row_id.as_str())
    .bind(r.scorer.as_str())
    .bind(r.project_id)
    .bind(r.rounds)
    .bind(r.next_at)
    .bind(r.last_error.as_str())
    .bind(r.created)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn take_score_retry(
    conn: &mut <Db as sqlx::Database>::Connection,
    rule: Uuid,
    row_id: &str,
    scorer: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM online_score_retries WHERE rule_id = $1 AND row_id = $2 AND scorer = $3")
        .bind(rule)
        .bind(row_id)
        .bind(scorer)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
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
