//! Usage counters, plans and cost-alert crossings (`usage_counters`, `org_plans`,
//! `usage_alerts`): the data-plane half works on a data transaction's connection
//! (each backend's `data.rs` calls it), the administration half is `UsageRepo`.

use crate::backend::{Db, SqlTx};
use crate::db_err;
use async_trait::async_trait;
use castellan_core::{OrgId, UserId};
use castellan_store::*;
use sqlx::types::Json;
use uuid::Uuid;

type Conn = <Db as sqlx::Database>::Connection;

#[derive(sqlx::FromRow)]
struct CountRow {
    period: String,
    processed_bytes: i64,
    spans: i64,
    scores: i64,
}

impl CountRow {
    fn counts(&self) -> UsageCounts {
        UsageCounts { processed_bytes: self.processed_bytes, spans: self.spans, scores: self.scores }
    }
}

pub(crate) async fn org_plan(conn: &mut Conn, org: OrgId) -> StoreResult<Option<serde_json::Value>> {
    let v: Option<Json<serde_json::Value>> = sqlx::query_scalar("SELECT data FROM org_plans WHERE org_id = $1")
        .bind(org.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(v.map(|j| j.0))
}

pub(crate) async fn lock_usage(conn: &mut Conn, org: OrgId, month: &str) -> StoreResult<UsageCounts> {
    // An upsert that changes nothing still takes the row's lock (PostgreSQL); on
    // SQLite the transaction holds the database's write lock already.
    let r: CountRow = sqlx::query_as(
        "INSERT INTO usage_counters (org_id, period) VALUES ($1, $2) ON CONFLICT (org_id, period) \
         DO UPDATE SET spans = usage_counters.spans RETURNING period, processed_bytes, spans, scores",
    )
    .bind(org.0)
    .bind(month)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(r.counts())
}

pub(crate) async fn add_usage(
    conn: &mut Conn,
    org: OrgId,
    day: &str,
    month: &str,
    d: &UsageCounts,
) -> StoreResult<UsageCounts> {
    let rows: Vec<CountRow> = sqlx::query_as(
        "INSERT INTO usage_counters (org_id, period, processed_bytes, spans, scores) \
         VALUES ($1, $2, $4, $5, $6), ($1, $3, $4, $5, $6) ON CONFLICT (org_id, period) DO UPDATE SET \
         processed_bytes = usage_counters.processed_bytes + excluded.processed_bytes, \
         spans = usage_counters.spans + excluded.spans, scores = usage_counters.scores + excluded.scores \
         RETURNING period, processed_bytes, spans, scores",
    )
    .bind(org.0)
    .bind(day)
    .bind(month)
    .bind(d.processed_bytes)
    .bind(d.spans)
    .bind(d.scores)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .find(|r| r.period == month)
        .map(CountRow::counts)
        .ok_or_else(|| StoreError::Integrity("the month's usage counters were not returned".into()))
}

pub(crate) async fn record_crossing(conn: &mut Conn, c: &UsageCrossing) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO usage_alerts (org_id, period, metric, threshold, limit_value, used, crossed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id, period, metric, threshold) DO NOTHING",
    )
    .bind(c.org_id.0)
    .bind(&c.period)
    .bind(&c.metric)
    .bind(c.threshold)
    .bind(c.limit)
    .bind(c.used)
    .bind(c.crossed_at)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

#[derive(sqlx::FromRow)]
struct CrossingRow {
    org_id: Uuid,
    period: String,
    metric: String,
    threshold: i64,
    limit_value: i64,
    used: i64,
    crossed_at: i64,
}

impl From<CrossingRow> for UsageCrossing {
    fn from(r: CrossingRow) -> UsageCrossing {
        UsageCrossing {
            org_id: OrgId(r.org_id),
            period: r.period,
            metric: r.metric,
            threshold: r.threshold,
            limit: r.limit_value,
            used: r.used,
            crossed_at: r.crossed_at,
        }
    }
}

const CROSSING_COLS: &str = "org_id, period, metric, threshold, limit_value, used, crossed_at";

#[derive(sqlx::FromRow)]
struct PlanRow {
    org_id: Uuid,
    data: Json<serde_json::Value>,
    updated: i64,
    updated_by: Option<Uuid>,
    alert_secret: Option<Vec<u8>>,
    alert_secret_updated: Option<i64>,
}

impl From<PlanRow> for PlanRecord {
    fn from(r: PlanRow) -> PlanRecord {
        PlanRecord {
            org_id: OrgId(r.org_id),
            data: r.data.0,
            updated: r.updated,
            updated_by: r.updated_by.map(UserId),
            alert_secret: r.alert_secret,
            alert_secret_updated: r.alert_secret_updated,
        }
    }
}

const PLAN_COLS: &str = "org_id, data, updated, updated_by, alert_secret, alert_secret_updated";

#[async_trait]
impl UsageRepo for SqlTx {
    async fn get_plan(&mut self, org: OrgId) -> StoreResult<Option<PlanRecord>> {
        let r: Option<PlanRow> = sqlx::query_as(&format!("SELECT {PLAN_COLS} FROM org_plans WHERE org_id = $1"))
            .bind(org.0)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        Ok(r.map(Into::into))
    }

    async fn sealed_plan_page(&mut self, after: Option<OrgId>, limit: usize) -> StoreResult<Vec<PlanRecord>> {
        let rows: Vec<PlanRow> = sqlx::query_as(&format!(
            "SELECT {PLAN_COLS} FROM org_plans WHERE alert_secret IS NOT NULL AND ($1 OR org_id > $2) \
             ORDER BY org_id LIMIT $3"
        ))
        .bind(after.is_none())
        .bind(after.map_or(Uuid::nil(), |o| o.0))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn reseal_plan_secret(&mut self, org: OrgId, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        self.ensure_writable()?;
        let done = sqlx::query("UPDATE org_plans SET alert_secret = $1 WHERE org_id = $2 AND alert_secret = $3")
            .bind(new)
            .bind(org.0)
            .bind(old)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_plan(&mut self, p: &PlanRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        sqlx::query(
            "INSERT INTO org_plans (org_id, data, updated, updated_by, alert_secret, alert_secret_updated) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id) DO UPDATE SET data = excluded.data, \
             updated = excluded.updated, updated_by = excluded.updated_by, alert_secret = excluded.alert_secret, \
             alert_secret_updated = excluded.alert_secret_updated",
        )
        .bind(p.org_id.0)
        .bind(Json(&p.data))
        .bind(p.updated)
        .bind(p.updated_by.map(|u| u.0))
        .bind(p.alert_secret.as_deref())
        .bind(p.alert_secret_updated)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn usage_periods(&mut self, org: OrgId, from: &str, to: &str) -> StoreResult<Vec<UsagePeriod>> {
        let rows: Vec<CountRow> = sqlx::query_as(
            "SELECT period, processed_bytes, spans, scores FROM usage_counters WHERE org_id = $1 \
             AND period >= $2 AND period <= $3 AND length(period) = $4 ORDER BY period",
        )
        .bind(org.0)
        .bind(from)
        .bind(to)
        .bind(i32::try_from(from.len()).unwrap_or(0))
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        Ok(rows.into_iter().map(|r| UsagePeriod { counts: r.counts(), period: r.period }).collect())
    }

    async fn unaudited_crossings(&mut self, limit: usize) -> StoreResult<Vec<UsageCrossing>> {
        let sql = format!(
            "SELECT {CROSSING_COLS} FROM usage_alerts WHERE audited_at IS NULL ORDER BY crossed_at, metric, threshold \
             LIMIT $1"
        );
        let rows: Vec<CrossingRow> = sqlx::query_as(&sql)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn mark_crossing_audited(&mut self, c: &UsageCrossing, at: Micros) -> StoreResult<bool> {
        self.ensure_writable()?;
        let done = sqlx::query(
            "UPDATE usage_alerts SET audited_at = $1 WHERE org_id = $2 AND period = $3 AND metric = $4 \
             AND threshold = $5 AND audited_at IS NULL",
        )
        .bind(at)
        .bind(c.org_id.0)
        .bind(&c.period)
        .bind(&c.metric)
        .bind(c.threshold)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_crossings(&mut self, org: OrgId, period: &str) -> StoreResult<Vec<UsageCrossing>> {
        let sql = format!(
            "SELECT {CROSSING_COLS} FROM usage_alerts WHERE org_id = $1 AND period = $2 ORDER BY metric, threshold"
        );
        let rows: Vec<CrossingRow> =
            sqlx::query_as(&sql).bind(org.0).bind(period).fetch_all(self.conn()).await.map_err(db_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
