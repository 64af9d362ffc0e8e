//! Usage metering, plans and cost alerts.
//!
//! Every data write is metered in its own transaction: per organization and UTC day
//! (and month), the bytes of the row versions written as they are stored (and of
//! each attachment upload's body), the row versions written to project logs,
//! experiments and datasets (`spans`; a delete's tombstone is not one, playground
//! rows are not metered), and the score values those rows carry (each non-null
//! entry of `scores` sent, so a feedback merge counts the scores it adds, not the
//! ones already on the row). The write queue commits several requests in one
//! transaction; their usage goes in with one upsert per organization, whatever the
//! number of rows. Nothing lowers a counter: deleting data does not give usage back.
//!
//! Plans: the configured default (`[plan_limits]`), or the plan set for an
//! organization through the API. With `enforcement = "hard"`, a request whose rows
//! would take the month's usage of a limited metric past its limit is refused whole
//! with 429 `plan_limit_exceeded` before anything of it is written; the month's
//! counters are locked first (on PostgreSQL a row lock held to commit, on SQLite the
//! database's write lock), so concurrent writers on any replica are checked one
//! after the other and the limit is never passed. With `soft`, writes always
//! succeed, and once the month is over a limit every write answer carries
//! `x-castellan-usage-warning` naming it.
//!
//! Cost alerts: each percentage of `alert_thresholds` of each limit, crossed by a
//! write, is recorded once per organization and month (`usage_alerts`, unique on
//! org, month, metric and threshold) in the write's transaction; after commit it is
//! audited (`usage.threshold_crossed`, by the system) and handed to
//! [`deliver_cost_alert`], exactly once even with several replicas.

use crate::access::AppState;
use crate::config::PlanLimitsConfig;
use crate::error::{ApiError, ApiResult};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use castellan_api_types::{format_time, OrgPlan, PlanLimitsWire, PlanUpdate};
use castellan_core::OrgId;
use castellan_store::{DataTx, EventKind, Micros, UsageCounts, UsageCrossing};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex};

/// The answer header that says the organization is over a limit of its plan.
pub const WARNING_HEADER: &str = "x-castellan-usage-warning";
/// The metered quantities, by name.
pub const METRICS: [&str; 3] = ["processed_bytes", "spans", "scores"];
/// The default cost-alert thresholds, in percent.
pub const DEFAULT_THRESHOLDS: [i64; 4] = [50, 75, 90, 100];

/// An organization's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Monthly limits (`None`: unlimited).
    pub limits: PlanLimitsWire,
    /// `soft` or `hard`.
    pub enforcement: String,
    /// Percentages of each limit that raise a cost alert.
    pub alert_thresholds: Vec<i64>,
    /// Where cost alerts go.
    pub alert_webhook_url: Option<String>,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            limits: PlanLimitsWire::default(),
            enforcement: "soft".into(),
            alert_thresholds: DEFAULT_THRESHOLDS.to_vec(),
            alert_webhook_url: None,
        }
    }
}

impl Plan {
    /// The configured default plan.
    pub fn from_config(c: &PlanLimitsConfig) -> Result<Plan, String> {
        let d = Plan::default();
        let p = Plan {
            limits: PlanLimitsWire { processed_bytes: c.processed_bytes, spans: c.spans, scores: c.scores },
            enforcement: c.enforcement.clone().unwrap_or(d.enforcement),
            alert_thresholds: c.alert_thresholds.clone().unwrap_or(d.alert_thresholds),
            alert_webhook_url: c.alert_webhook_url.clone(),
        };
        p.check()?;
        Ok(p)
    }

    /// The plan stored for an organization (as [`Plan`] serializes), else `default`.
    pub fn stored_or(stored: Option<Value>, default: &Plan) -> Plan {
        stored.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_else(|| default.clone())
    }

    /// Whether writes that would pass a limit are refused.
    pub fn hard(&self) -> bool {
        self.enforcement == "hard"
    }

    /// A metric's monthly limit.
    pub fn limit(&self, metric: &str) -> Option<i64> {
        match metric {
            "processed_bytes" => self.limits.processed_bytes,
            "spans" => self.limits.spans,
            "scores" => self.limits.scores,
            _ => None,
        }
    }

    /// Whether any metric is limited.
    pub fn limited(&self) -> bool {
        METRICS.iter().any(|m| self.limit(m).is_some())
    }

    /// Why the plan is not valid, naming the field.
    pub fn check(&self) -> Result<(), String> {
        for m in METRICS {
            if let Some(l) = self.limit(m) {
                if l < 0 {
                    return Err(format!("`limits.{m}` must be 0 or more (or null for no limit), got {l}"));
                }
            }
        }
        if !["soft", "hard"].contains(&self.enforcement.as_str()) {
            return Err(format!("`enforcement` must be `soft` or `hard`, got `{}`", self.enforcement));
        }
        if self.alert_thresholds.len() > 20 {
            return Err(format!("`alert_thresholds` takes at most 20 values, got {}", self.alert_thresholds.len()));
        }
        if let Some(t) = self.alert_thresholds.iter().find(|t| !(1..=1000).contains(*t)) {
            return Err(format!("`alert_thresholds` are whole percentages from 1 to 1000, got {t}"));
        }
        if let Some(url) = &self.alert_webhook_url {
            crate::routes::check_url("alert_webhook_url", url).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// This plan changed by `u`: each field given replaces the value, each absent one
    /// keeps it (thresholds are sorted and deduplicated).
    pub fn updated(&self, u: PlanUpdate) -> Result<Plan, String> {
        let mut p = self.clone();
        if let Some(l) = u.limits {
            if let Some(v) = l.processed_bytes {
                p.limits.processed_bytes = v;
            }
            if let Some(v) = l.spans {
                p.limits.spans = v;
            }
            if let Some(v) = l.scores {
                p.limits.scores = v;
            }
        }
        if let Some(e) = u.enforcement {
            p.enforcement = e;
        }
        if let Some(mut t) = u.alert_thresholds {
            t.sort_unstable();
            t.dedup();
            p.alert_thresholds = t;
        }
        if let Some(url) = u.alert_webhook_url {
            p.alert_webhook_url = url.filter(|s| !s.is_empty());
        }
        p.check()?;
        Ok(p)
    }

    /// The plan on the wire (never with its signing secret).
    pub fn wire(&self, org: OrgId, source: &str, updated: Option<Micros>, secret_updated: Option<Micros>) -> OrgPlan {
        OrgPlan {
            org_id: org.0,
            limits: self.limits,
            enforcement: self.enforcement.clone(),
            alert_thresholds: self.alert_thresholds.clone(),
            alert_webhook_url: self.alert_webhook_url.clone(),
            source: source.into(),
            updated_at: updated.map(format_time),
            alert_signing_secret_updated_at: secret_updated.map(format_time),
            alert_signing_secret: None,
        }
    }
}

/// The server's default plan (checked when the configuration was loaded).
pub fn default_plan(state: &AppState) -> Plan {
    Plan::from_config(&state.config().plan_limits).unwrap_or_default()
}

/// The UTC day (`YYYY-MM-DD`) and month (`YYYY-MM`) of a time.
pub fn day_and_month(now: Micros) -> (String, String) {
    let t = chrono::DateTime::from_timestamp_micros(now).unwrap_or_default();
    (t.format("%Y-%m-%d").to_string(), t.format("%Y-%m").to_string())
}

/// How many scores a row (or a merge into one) records: the non-null entries of
/// its `scores` object.
pub fn count_scores(row: &Map<String, Value>) -> i64 {
    match row.get("scores") {
        Some(Value::Object(s)) => s.values().filter(|v| !v.is_null()).count() as i64,
        _ => 0,
    }
}

/// What one row version adds: its stored bytes, one span, its scores. Tombstones
/// and playground rows add nothing.
pub fn row_usage(kind: EventKind, deleted: bool, stored_len: usize, scores: i64) -> UsageCounts {
    if deleted || kind == EventKind::PromptSession {
        return UsageCounts::default();
    }
    UsageCounts { processed_bytes: stored_len as i64, spans: 1, scores }
}

/// Adds `u` to `org`'s entry of a small per-org list.
pub fn add_to(list: &mut Vec<(OrgId, UsageCounts)>, org: OrgId, u: UsageCounts) {
    if u.is_zero() {
        return;
    }
    match list.iter_mut().find(|(o, _)| *o == org) {
        Some((_, c)) => *c = c.plus(&u),
        None => list.push((org, u)),
    }
}

struct OrgMeter {
    org: OrgId,
    plan: Plan,
    /// The month's counters when the transaction locked them (hard plans with limits).
    locked: Option<UsageCounts>,
    /// What this transaction adds.
    delta: UsageCounts,
}

/// What a metered transaction found, once its usage is added.
#[derive(Debug, Default)]
pub struct Flushed {
    /// Per organization over a limit: the warning its writes answer with.
    pub warnings: Vec<(OrgId, String)>,
    /// Thresholds crossed for the first time this month.
    pub crossings: Vec<UsageCrossing>,
}

impl Flushed {
    /// The warning for writes into `org`, if it is over a limit.
    pub fn warning(&self, org: OrgId) -> Option<&str> {
        self.warnings.iter().find(|(o, _)| *o == org).map(|(_, w)| w.as_str())
    }
}

/// The meter of one data transaction.
pub struct Meter {
    enabled: bool,
    default: Plan,
    now: Micros,
    day: String,
    month: String,
    orgs: Vec<OrgMeter>,
}

impl Meter {
    /// A meter for a transaction starting now.
    pub fn new(state: &AppState) -> Meter {
        let now = state.now();
        let (day, month) = day_and_month(now);
        Meter {
            enabled: state.config().usage_metering,
            default: default_plan(state),
            now,
            day,
            month,
            orgs: Vec::new(),
        }
    }

    async fn org(&mut self, tx: &mut dyn DataTx, org: OrgId) -> ApiResult<usize> {
        if let Some(i) = self.orgs.iter().position(|m| m.org == org) {
            return Ok(i);
        }
        let plan = Plan::stored_or(tx.org_plan(org).await?, &self.default);
        let locked = if plan.hard() && plan.limited() { Some(tx.lock_usage(org, &self.month).await?) } else { None };
        self.orgs.push(OrgMeter { org, plan, locked, delta: UsageCounts::default() });
        Ok(self.orgs.len() - 1)
    }

    /// Admits one request's usage into the transaction: `Ok(Err(refusal))` (and
    /// nothing counted) if it would take an organization with a hard plan past a
    /// limit. The caller writes nothing of a refused request.
    pub async fn admit(
        &mut self,
        tx: &mut dyn DataTx,
        usage: &[(OrgId, UsageCounts)],
    ) -> ApiResult<Result<(), ApiError>> {
        if !self.enabled {
            return Ok(Ok(()));
        }
        let mut at = Vec::with_capacity(usage.len());
        for (org, u) in usage {
            let i = self.org(tx, *org).await?;
            let m = &self.orgs[i];
            if let Some(base) = m.locked {
                let before = base.plus(&m.delta);
                let after = before.plus(u);
                for metric in METRICS {
                    let Some(limit) = m.plan.limit(metric) else { continue };
                    if after.get(metric) > limit {
                        return Ok(Err(ApiError::PlanLimitExceeded(format!(
                            "the organization's plan allows {limit} {what} per month and {used} are used in {month}; \
                             this request adds {adds}, which would make {total}: nothing was written (limit `{metric}`, \
                             enforcement `hard`)",
                            what = noun(metric),
                            used = before.get(metric),
                            month = self.month,
                            adds = u.get(metric),
                            total = after.get(metric),
                        ))));
                    }
                }
            }
            at.push((i, *u));
        }
        for (i, u) in at {
            self.orgs[i].delta = self.orgs[i].delta.plus(&u);
        }
        Ok(Ok(()))
    }

    /// Adds the transaction's usage (one upsert per organization) and records the
    /// thresholds it crossed.
    pub async fn flush(&mut self, tx: &mut dyn DataTx) -> ApiResult<Flushed> {
        let mut out = Flushed::default();
        if !self.enabled {
            return Ok(out);
        }
        for m in &self.orgs {
            if m.delta.is_zero() {
                continue;
            }
            let after = tx.add_usage(m.org, &self.day, &self.month, &m.delta).await?;
            let mut over = Vec::new();
            for metric in METRICS {
                let Some(limit) = m.plan.limit(metric) else { continue };
                let (a, b) = (i128::from(after.get(metric)), i128::from(after.get(metric) - m.delta.get(metric)));
                let l = i128::from(limit);
                for &t in &m.plan.alert_thresholds {
                    let t128 = i128::from(t);
                    // Crossed: below t% before this transaction, at or above it after.
                    if b * 100 < t128 * l && a * 100 >= t128 * l {
                        let c = UsageCrossing {
                            org_id: m.org,
                            period: self.month.clone(),
                            metric: metric.into(),
                            threshold: t,
                            limit,
                            used: after.get(metric),
                            crossed_at: self.now,
                        };
                        if tx.record_crossing(&c).await? {
                            out.crossings.push(c);
                        }
                    }
                }
                if a > l {
                    over.push(format!("{metric} {} of {limit}", after.get(metric)));
                }
            }
            if !over.is_empty() {
                out.warnings.push((m.org, format!("over plan limit ({}) for {}", over.join(", "), self.month)));
            }
        }
        Ok(out)
    }
}

fn noun(metric: &str) -> &'static str {
    match metric {
        "processed_bytes" => "processed bytes",
        "spans" => "spans",
        _ => "scores",
    }
}

/// Meters one write that is not an event write (an attachment upload): refused
/// with 429 under a hard plan it would pass (nothing of it to be written), else
/// counted in `tx`. Answers the warning, if the organization is now over a limit.
pub async fn meter_one(
    state: &AppState,
    tx: &mut dyn DataTx,
    org: OrgId,
    usage: UsageCounts,
) -> ApiResult<(Option<String>, Vec<UsageCrossing>)> {
    let mut meter = Meter::new(state);
    meter.admit(tx, &[(org, usage)]).await??;
    let flushed = meter.flush(tx).await?;
    Ok((flushed.warning(org).map(str::to_owned), flushed.crossings))
}

tokio::task_local! {
    static WARNING: Arc<Mutex<Option<String>>>;
}

/// Notes the usage warning the current request's answer should carry.
pub fn warn(message: &str) {
    let _ = WARNING.try_with(|w| {
        if let Ok(mut w) = w.lock() {
            *w = Some(message.to_owned());
        }
    });
}

/// Middleware: adds [`WARNING_HEADER`] to an answer whose write found the
/// organization over a limit of its plan.
pub async fn warning_header(req: Request, next: Next) -> Response {
    let slot = Arc::new(Mutex::new(None));
    let mut resp = WARNING.scope(slot.clone(), next.run(req)).await;
    let warning = slot.lock().ok().and_then(|mut w| w.take());
    if let Some(v) = warning.and_then(|w| HeaderValue::from_str(&w).ok()) {
        resp.headers_mut().insert(WARNING_HEADER, v);
    }
    resp
}

/// After a commit that recorded crossings: audits and delivers them before the
/// write answers (a crossing happens at most once per threshold, metric and month,
/// so this is rare), so whoever sees the write's answer finds the audit record.
/// A failure is logged; the next crossing or start settles what is left.
pub async fn crossed(state: &AppState, crossings: &[UsageCrossing]) {
    if crossings.is_empty() {
        return;
    }
    if let Err(e) = settle(state).await {
        tracing::warn!(error = %e, "could not audit the cost alerts crossed; the next crossing or start retries");
    }
}

/// At start: settles crossings a stopped process recorded but did not audit.
pub fn crossed_at_start(state: &AppState) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = settle(&state).await {
            tracing::warn!(error = %e, "could not audit the cost alerts crossed earlier");
        }
    });
}

/// Audits every crossing not audited yet (`usage.threshold_crossed`) and hands each
/// to [`deliver_cost_alert`]: exactly once, whichever replica gets to it first.
/// Answers how many it settled.
pub async fn settle(state: &AppState) -> ApiResult<usize> {
    let pending = state.meter_read().await?.unaudited_crossings(100).await?;
    let mut n = 0;
    for c in pending {
        let mut w = state.meter_write().await?;
        if !w.tx().mark_crossing_audited(&c, state.now()).await? {
            continue;
        }
        w.audit_crossing(&c).await?;
        w.commit().await?;
        deliver_cost_alert(state, &c).await;
        n += 1;
    }
    Ok(n)
}

/// Delivers a cost alert to the plan's `alert_webhook_url`, if it has one, in the
/// background (the write that crossed the threshold does not wait): the same
/// machinery as automations' webhooks (outbound guard, retries with backoff, the
/// delivery log under the organization's id, `x-castellan-delivery` and
/// `x-castellan-event: cost_alert`). It runs once per crossing: [`settle`] hands each
/// crossing over exactly once.
pub async fn deliver_cost_alert(state: &AppState, crossing: &UsageCrossing) {
    tracing::info!(
        org = %crossing.org_id.0,
        period = %crossing.period,
        metric = %crossing.metric,
        threshold = crossing.threshold,
        used = crossing.used,
        limit = crossing.limit,
        "cost alert: usage crossed a threshold of the plan"
    );
    let (state, c) = (state.clone(), crossing.clone());
    tokio::spawn(async move {
        if let Err(e) = send_cost_alert(&state, &c).await {
            tracing::warn!(org = %c.org_id.0, error = %e, "could not deliver a cost alert");
        }
    });
}

/// The payload of a cost alert.
pub fn cost_alert_payload(org_name: &str, c: &UsageCrossing) -> (Value, String) {
    let message = format!(
        "{org_name}: {} reached {}% of the monthly limit ({} of {}) in {}",
        c.metric, c.threshold, c.used, c.limit, c.period
    );
    let payload = serde_json::json!({
        "organization": {"id": c.org_id.0, "name": org_name},
        "alert": {"type": "cost_alert", "metric": c.metric, "threshold_percent": c.threshold},
        "details": {
            "is_test": false,
            "message": message,
            "period": c.period,
            "used": c.used,
            "limit": c.limit,
            "percent": if c.limit > 0 { (c.used as f64) * 100.0 / (c.limit as f64) } else { 0.0 },
            "time": format_time(c.crossed_at),
        },
    });
    (payload, message)
}

async fn send_cost_alert(state: &AppState, c: &UsageCrossing) -> ApiResult<()> {
    let mut tx = state.meter_read().await?;
    let stored = tx.get_plan(c.org_id).await?;
    let sealed = stored.as_ref().and_then(|p| p.alert_secret.clone());
    let plan = Plan::stored_or(stored.map(|p| p.data), &default_plan(state));
    let Some(url) = plan.alert_webhook_url.clone() else { return Ok(()) };
    let org_name = tx.get_org(c.org_id).await?.map(|o| o.name).unwrap_or_default();
    drop(tx);
    // Signed with the plan's secret, opened only for this delivery (a plan set
    // before secrets existed, or the configured default, has none: unsigned).
    let secret = match sealed {
        Some(sealed) => Some(
            state
                .sealer()?
                .open(crate::secrets::Binding::plan_alert(c.org_id), &sealed)
                .map_err(|e| ApiError::Internal(format!("the cost-alert signing secret cannot be opened ({e})")))?,
        ),
        None => None,
    };
    let (payload, message) = cost_alert_payload(&org_name, c);
    // Delivered as the organization's own notification (no automation: the URL and
    // the signing secret are the plan's).
    let now = state.now();
    let source = castellan_store::AdminRecord {
        id: c.org_id.0,
        kind: castellan_store::AdminKind::OrgAutomation,
        org_id: c.org_id,
        scope: castellan_core::ObjectRef::new(castellan_core::ObjectType::Organization, c.org_id.0),
        name: "cost alerts".into(),
        data: Value::Null,
        secret: None,
        secret_updated_at: None,
        secret_updated_by: None,
        created: now,
        updated: now,
    };
    let action = serde_json::json!({"type": "webhook", "url": url});
    let n = crate::webhook::Notification { event: "cost_alert", is_test: false, payload, message, run_id: None };
    let keys = crate::webhook::WebhookKeys { secret, headers: Map::new() };
    crate::webhook::deliver_with(state, &state.meter_permit(), &source, &action, &n, Some(keys)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_are_utc() {
        // 2026-01-31T23:59:59.999999Z and a microsecond later.
        let t = 1_769_903_999_999_999;
        assert_eq!(day_and_month(t), ("2026-01-31".into(), "2026-01".into()));
        assert_eq!(day_and_month(t + 1), ("2026-02-01".into(), "2026-02".into()));
    }

    #[test]
    fn scores_count_non_null_entries_only() {
        let row: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"scores": {"a": 1, "b": 0.5, "c": null}})).unwrap();
        assert_eq!(count_scores(&row), 2);
        assert_eq!(count_scores(&Map::new()), 0);
    }

    #[test]
    fn a_plan_names_what_is_wrong_with_it() {
        let p = Plan::default();
        let bad = |u: serde_json::Value| p.updated(serde_json::from_value(u).unwrap()).unwrap_err();
        assert!(bad(serde_json::json!({"enforcement": "strict"})).contains("enforcement"));
        assert!(bad(serde_json::json!({"limits": {"spans": -1}})).contains("limits.spans"));
        assert!(bad(serde_json::json!({"alert_thresholds": [0]})).contains("alert_thresholds"));
        assert!(bad(serde_json::json!({"alert_webhook_url": "ftp://x"})).contains("alert_webhook_url"));
        let ok = p
            .updated(
                serde_json::from_value(serde_json::json!({"limits": {"spans": 10}, "alert_thresholds": [90, 50, 90]}))
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(ok.limits.spans, Some(10));
        assert_eq!(ok.alert_thresholds, [50, 90]);
    }
}
