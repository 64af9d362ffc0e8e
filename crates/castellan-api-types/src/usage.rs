//! Usage and plans (Castellan extensions): `GET /v1/usage` and
//! `/v1/organization/{id}/plan`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The metered quantities of one period (or a total).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageAmounts {
    /// Bytes of the rows and attachments ingested (each written row version as
    /// stored, each attachment upload's body).
    pub processed_bytes: i64,
    /// Row versions written to project logs, experiments and datasets.
    pub spans: i64,
    /// Score values recorded on the rows written (offline, online, feedback).
    pub scores: i64,
}

/// One period of `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsagePeriodAnswer {
    /// `YYYY-MM-DD` (granularity `day`) or `YYYY-MM` (granularity `month`), UTC.
    pub period: String,
    /// Bytes processed in it.
    pub processed_bytes: i64,
    /// Spans written in it.
    pub spans: i64,
    /// Scores recorded in it.
    pub scores: i64,
}

/// One metric of the current month against the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageAgainstLimit {
    /// Used so far this month.
    pub used: i64,
    /// The plan's monthly limit (`null`: unlimited).
    pub limit: Option<i64>,
    /// `used` as a percentage of `limit`, two decimals (`null`: unlimited).
    pub percent: Option<f64>,
}

/// The current UTC month against the organization's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageCurrentMonth {
    /// `YYYY-MM`.
    pub period: String,
    /// Processed bytes.
    pub processed_bytes: UsageAgainstLimit,
    /// Spans.
    pub spans: UsageAgainstLimit,
    /// Scores.
    pub scores: UsageAgainstLimit,
    /// `soft` (over a limit: writes succeed with a warning header) or `hard` (a
    /// write that would go over is refused with 429 `plan_limit_exceeded`).
    pub enforcement: String,
}

/// `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageAnswer {
    /// The organization.
    pub org_id: Uuid,
    /// The first day asked for (`YYYY-MM-DD`).
    pub from: String,
    /// The last day asked for (`YYYY-MM-DD`, inclusive).
    pub to: String,
    /// `day` or `month`.
    pub granularity: String,
    /// Every period from `from` to `to`, oldest first (periods without usage are
    /// zero). A month is the sum of its days within `from`..`to`.
    pub periods: Vec<UsagePeriodAnswer>,
    /// The sum of `periods`.
    pub totals: UsageAmounts,
    /// The current month against the plan.
    pub current_month: UsageCurrentMonth,
}

/// Monthly limits (`null`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanLimitsWire {
    /// Processed bytes per month.
    pub processed_bytes: Option<i64>,
    /// Spans per month.
    pub spans: Option<i64>,
    /// Scores per month.
    pub scores: Option<i64>,
}

/// An organization's plan (`GET /v1/organization/{id}/plan`). `Debug` never shows
/// the signing secret.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrgPlan {
    /// The organization.
    pub org_id: Uuid,
    /// Monthly limits.
    pub limits: PlanLimitsWire,
    /// `soft` or `hard`.
    pub enforcement: String,
    /// Percentages of each limit at which a cost alert is recorded, once per month.
    pub alert_thresholds: Vec<i64>,
    /// Where cost alerts are delivered (a webhook), if anywhere.
    pub alert_webhook_url: Option<String>,
    /// `config` (the server's default plan) or `api` (set for this organization).
    pub source: String,
    /// When it was set through the API.
    pub updated_at: Option<String>,
    /// When the cost-alert webhook's signing secret was generated (null: there is
    /// none, and cost alerts are sent unsigned).
    pub alert_signing_secret_updated_at: Option<String>,
    /// Castellan extension: the secret cost alerts are signed with
    /// (`x-castellan-signature: t=…,v1=HMAC-SHA256("<t>.<body>")`, as automations'
    /// webhooks); shown once, in the answer that generated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_signing_secret: Option<String>,
}

impl std::fmt::Debug for OrgPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgPlan")
            .field("org_id", &self.org_id)
            .field("limits", &self.limits)
            .field("enforcement", &self.enforcement)
            .field("alert_thresholds", &self.alert_thresholds)
            .field("alert_webhook_url", &self.alert_webhook_url)
            .field("source", &self.source)
            .field("updated_at", &self.updated_at)
            .field("alert_signing_secret_updated_at", &self.alert_signing_secret_updated_at)
            .field("alert_signing_secret", &self.alert_signing_secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Limits to change: an absent key keeps the limit, `null` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanLimitsPatch {
    /// Processed bytes per month.
    #[serde(default, deserialize_with = "crate::common::double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub processed_bytes: Option<Option<i64>>,
    /// Spans per month.
    #[serde(default, deserialize_with = "crate::common::double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub spans: Option<Option<i64>>,
    /// Scores per month.
    #[serde(default, deserialize_with = "crate::common::double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub scores: Option<Option<i64>>,
}

/// `PUT` (every absent field takes the server's default plan's value) or `PATCH`
/// (every absent field keeps the current value) of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanUpdate {
    /// Monthly limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<PlanLimitsPatch>,
    /// `soft` or `hard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<String>,
    /// Whole percentages from 1 to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_thresholds: Option<Vec<i64>>,
    /// An http(s) URL, or `null` for none.
    #[serde(default, deserialize_with = "crate::common::double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub alert_webhook_url: Option<Option<String>>,
    /// `true`: generate a new signing secret for the cost-alert webhook (shown once,
    /// in this answer). One is generated anyway when a webhook URL is first set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_alert_signing_secret: Option<bool>,
}
