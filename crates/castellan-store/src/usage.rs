//! Usage metering and plans: counters per organization and UTC day and month,
//! the plan an organization was given through the API, and the cost-alert
//! thresholds it crossed.

use crate::{Micros, StoreResult};
use async_trait::async_trait;
use castellan_core::{OrgId, UserId};
use serde::{Deserialize, Serialize};

/// What is metered: processed bytes, spans (event row versions) and scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageCounts {
    /// Bytes of the rows and attachments ingested.
    pub processed_bytes: i64,
    /// Row versions written to project logs, experiments and datasets.
    pub spans: i64,
    /// Score values recorded on the rows written.
    pub scores: i64,
}

impl UsageCounts {
    /// Whether nothing is counted.
    pub fn is_zero(&self) -> bool {
        *self == UsageCounts::default()
    }

    /// The sum of both.
    pub fn plus(&self, o: &UsageCounts) -> UsageCounts {
        UsageCounts {
            processed_bytes: self.processed_bytes.saturating_add(o.processed_bytes),
            spans: self.spans.saturating_add(o.spans),
            scores: self.scores.saturating_add(o.scores),
        }
    }

    /// The value of a metric by name (`processed_bytes`, `spans`, `scores`).
    pub fn get(&self, metric: &str) -> i64 {
        match metric {
            "processed_bytes" => self.processed_bytes,
            "spans" => self.spans,
            "scores" => self.scores,
            _ => 0,
        }
    }
}

/// The counters of one period (`YYYY-MM-DD` or `YYYY-MM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsagePeriod {
    /// The UTC day or month.
    pub period: String,
    /// Its counters.
    pub counts: UsageCounts,
}

/// An organization's plan as set through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRecord {
    /// The organization.
    pub org_id: OrgId,
    /// The plan (the server's own shape; the store keeps it as JSON).
    pub data: serde_json::Value,
    /// When it was last set.
    pub updated: Micros,
    /// Who set it.
    pub updated_by: Option<UserId>,
    /// The cost-alert webhook's signing secret, sealed under the master key (never
    /// stored or shown open).
    pub alert_secret: Option<Vec<u8>>,
    /// When the signing secret was last generated.
    pub alert_secret_updated: Option<Micros>,
}

/// A cost-alert threshold crossed: a percentage of a metric's monthly limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageCrossing {
    /// The organization.
    pub org_id: OrgId,
    /// The UTC month (`YYYY-MM`).
    pub period: String,
    /// `processed_bytes`, `spans` or `scores`.
    pub metric: String,
    /// The percentage crossed.
    pub threshold: i64,
    /// The metric's monthly limit then.
    pub limit: i64,
    /// The month's usage once the write that crossed it committed.
    pub used: i64,
    /// When.
    pub crossed_at: Micros,
}

/// Plans, usage counters and crossings, inside an administration transaction.
#[async_trait]
pub trait UsageRepo {
    /// The plan an organization was given through the API, if any.
    async fn get_plan(&mut self, org: OrgId) -> StoreResult<Option<PlanRecord>>;
    /// Stores (inserts or replaces) an organization's plan.
    async fn put_plan(&mut self, plan: &PlanRecord) -> StoreResult<()>;
    /// The counters of an organization's periods from `from` to `to` (inclusive,
    /// compared as text: pass days for days, months for months), oldest first;
    /// only periods as long as `from`.
    async fn usage_periods(&mut self, org: OrgId, from: &str, to: &str) -> StoreResult<Vec<UsagePeriod>>;
    /// Crossings not audited yet, oldest first.
    async fn unaudited_crossings(&mut self, limit: usize) -> StoreResult<Vec<UsageCrossing>>;
    /// Marks a crossing audited at `at`; `false` if it already was (another replica).
    async fn mark_crossing_audited(&mut self, c: &UsageCrossing, at: Micros) -> StoreResult<bool>;
    /// Plans with a sealed cost-alert signing secret, by organization id after
    /// `after`, at most `limit` (master-key rotation pages through them).
    async fn sealed_plan_page(&mut self, after: Option<OrgId>, limit: usize) -> StoreResult<Vec<PlanRecord>>;
    /// Stores a plan's signing secret sealed again under another master key (only
    /// if the sealed value is still `old`); whether it was.
    async fn reseal_plan_secret(&mut self, org: OrgId, old: &[u8], new: &[u8]) -> StoreResult<bool>;
    /// An organization's crossings of one month.
    async fn list_crossings(&mut self, org: OrgId, period: &str) -> StoreResult<Vec<UsageCrossing>>;
}
