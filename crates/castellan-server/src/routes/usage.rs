//! `GET /v1/usage` and `/v1/organization/{id}/plan` (Castellan extensions): an
//! organization's metered usage per UTC day or month, and its plan. Both are the
//! organization's account (`org_account`): reading needs `read` on it, changing the
//! plan `update` (Owners hold both; nobody else does until granted).

use super::Written;
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Path, Query};
use crate::usage::{day_and_month, default_plan, Plan, METRICS};
use axum::Json;
use castellan_api_types::{
    OrgPlan, PlanUpdate, UsageAgainstLimit, UsageAmounts, UsageAnswer, UsageCurrentMonth, UsagePeriodAnswer,
};
use castellan_core::{ObjectRef, ObjectType, OrgId, Permission};
use castellan_store::{PlanRecord, UsageCounts};
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// The longest span `granularity=day` answers, in days.
pub const MAX_DAYS: i64 = 366;
/// The longest span `granularity=month` answers, in months.
pub const MAX_MONTHS: i64 = 36;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(usage)).routes(routes!(get_plan, put_plan, patch_plan)).routes(routes!(alerts))
}

/// Which usage `GET /v1/usage` answers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// The organization, by name (or `org_id`; a caller in one organization needs neither).
    #[serde(default, deserialize_with = "empty_as_none")]
    org_name: Option<String>,
    /// The organization, by id.
    org_id: Option<Uuid>,
    /// The first UTC day, `YYYY-MM-DD` (default: the first day of `to`'s month).
    #[serde(default, deserialize_with = "empty_as_none")]
    from: Option<String>,
    /// The last UTC day, inclusive, `YYYY-MM-DD` (default: today).
    #[serde(default, deserialize_with = "empty_as_none")]
    to: Option<String>,
    /// `day` (the default) or `month`.
    #[serde(default, deserialize_with = "empty_as_none")]
    granularity: Option<String>,
}

fn date(field: &str, s: &str) -> ApiResult<NaiveDate> {
    let bad = || ApiError::invalid_parameter(format!("`{field}` must be a date `YYYY-MM-DD`, got `{s}`"));
    if s.len() != 10 {
        return Err(bad());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())
}

fn months_between(a: NaiveDate, b: NaiveDate) -> i64 {
    i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month())
}

fn amounts(c: &UsageCounts) -> UsageAmounts {
    UsageAmounts { processed_bytes: c.processed_bytes, spans: c.spans, scores: c.scores }
}

fn against(used: i64, limit: Option<i64>) -> UsageAgainstLimit {
    let percent = limit.map(|l| {
        if l == 0 {
            if used == 0 {
                0.0
            } else {
                100.0
            }
        } else {
            ((used as f64) * 10_000.0 / (l as f64)).round() / 100.0
        }
    });
    UsageAgainstLimit { used, limit, percent }
}

/// The organization asked for (404 for one the caller is not in).
async fn target(caller: &Caller, org_name: Option<&str>, org_id: Option<Uuid>) -> ApiResult<OrgId> {
    Ok(match org_id {
        Some(id) => caller.org_by_id(OrgId(id)).await?.id,
        None => caller.org(org_name).await?.id,
    })
}

/// An organization's usage per UTC day or month from `from` to `to`, with totals
/// and the current month against its plan (needs `read` on `org_account`).
#[utoipa::path(get, path = "/v1/usage", tag = "Usage", params(UsageQuery),
    responses((status = 200, body = UsageAnswer)))]
pub async fn usage(caller: Caller, Query(q): Query<UsageQuery>) -> ApiResult<Json<UsageAnswer>> {
    let granularity = q.granularity.as_deref().unwrap_or("day");
    if !["day", "month"].contains(&granularity) {
        return Err(ApiError::invalid_parameter(format!(
            "`granularity` must be `day` or `month`, got `{granularity}`"
        )));
    }
    let state = caller.state();
    let (today, this_month) = day_and_month(state.now());
    let to = date("to", q.to.as_deref().unwrap_or(&today))?;
    let from = match q.from.as_deref() {
        Some(s) => date("from", s)?,
        None => to.with_day(1).unwrap_or(to),
    };
    if from > to {
        return Err(ApiError::invalid_parameter(format!("`from` ({from}) must not be after `to` ({to})")));
    }
    if granularity == "day" && (to - from).num_days() + 1 > MAX_DAYS {
        return Err(ApiError::invalid_parameter(format!(
            "`granularity=day` answers at most {MAX_DAYS} days; {from} to {to} is {} days (use `granularity=month`)",
            (to - from).num_days() + 1
        )));
    }
    if granularity == "month" && months_between(from, to) + 1 > MAX_MONTHS {
        return Err(ApiError::invalid_parameter(format!(
            "`granularity=month` answers at most {MAX_MONTHS} months; {from} to {to} is {} months",
            months_between(from, to) + 1
        )));
    }
    let org = target(&caller, q.org_name.as_deref(), q.org_id).await?;
    let permit = caller.require(Permission::Read, ObjectRef::new(ObjectType::OrgAccount, org.0)).await?;
    let mut tx = state.read(&permit).await?;
    let (from_s, to_s) = (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string());
    let days = tx.usage_periods(org, &from_s, &to_s).await?;
    let month = tx.usage_periods(org, &this_month, &this_month).await?.into_iter().next().map(|p| p.counts);
    let plan = Plan::stored_or(tx.get_plan(org).await?.map(|p| p.data), &default_plan(state));
    drop(tx);
    let mut periods: Vec<(String, UsageCounts)> = Vec::new();
    let mut d = from;
    while d <= to {
        let key = if granularity == "day" { d.format("%Y-%m-%d") } else { d.format("%Y-%m") }.to_string();
        if periods.last().is_none_or(|(k, _)| *k != key) {
            periods.push((key, UsageCounts::default()));
        }
        d = d.succ_opt().unwrap_or(d + chrono::Days::new(1));
    }
    let mut totals = UsageCounts::default();
    for p in &days {
        let key = if granularity == "day" { p.period.clone() } else { p.period[..7].to_owned() };
        if let Some((_, c)) = periods.iter_mut().find(|(k, _)| *k == key) {
            *c = c.plus(&p.counts);
        }
        totals = totals.plus(&p.counts);
    }
    let month = month.unwrap_or_default();
    let [b, s, sc] = METRICS.map(|m| against(month.get(m), plan.limit(m)));
    Ok(Json(UsageAnswer {
        org_id: org.0,
        from: from_s,
        to: to_s,
        granularity: granularity.into(),
        periods: periods
            .into_iter()
            .map(|(period, c)| UsagePeriodAnswer {
                period,
                processed_bytes: c.processed_bytes,
                spans: c.spans,
                scores: c.scores,
            })
            .collect(),
        totals: amounts(&totals),
        current_month: UsageCurrentMonth {
            period: this_month,
            processed_bytes: b,
            spans: s,
            scores: sc,
            enforcement: plan.enforcement,
        },
    }))
}

/// The plan in force and where it comes from.
async fn current(caller: &Caller, org: OrgId, permit: &crate::access::Permit) -> ApiResult<(Plan, Option<PlanRecord>)> {
    let stored = caller.state().read(permit).await?.get_plan(org).await?;
    let plan = Plan::stored_or(stored.as_ref().map(|p| p.data.clone()), &default_plan(caller.state()));
    Ok((plan, stored))
}

fn wire(org: OrgId, plan: &Plan, stored: Option<&PlanRecord>) -> OrgPlan {
    match stored {
        Some(r) => plan.wire(org, "api", Some(r.updated), r.alert_secret.as_ref().and(r.alert_secret_updated)),
        None => plan.wire(org, "config", None, None),
    }
}

/// Castellan extension: the newest deliveries of the organization's cost alerts to
/// the plan's `alert_webhook_url` (at most 100, newest first; `read` on
/// `org_account`).
#[utoipa::path(get, path = "/v1/organization/{organization_id}/plan/alerts", tag = "Usage",
    params(("organization_id" = uuid::Uuid, Path)),
    responses((status = 200, body = castellan_api_types::ListResponse<castellan_api_types::AutomationDelivery>)))]
pub async fn alerts(
    caller: Caller,
    Path(id): Path<OrgId>,
) -> ApiResult<Json<castellan_api_types::ListResponse<castellan_api_types::AutomationDelivery>>> {
    let org = caller.org_by_id(id).await?.id;
    let permit = caller.require(Permission::Read, ObjectRef::new(ObjectType::OrgAccount, org.0)).await?;
    let list = caller.state().jobs(&permit).list_deliveries(org.0, 100).await?;
    Ok(Json(castellan_api_types::ListResponse {
        objects: list.into_iter().map(super::project_automation::delivery_wire).collect(),
    }))
}

/// An organization's plan: its monthly limits, enforcement and cost-alert
/// thresholds (needs `read` on `org_account`).
#[utoipa::path(get, path = "/v1/organization/{organization_id}/plan", tag = "Usage",
    params(("organization_id" = uuid::Uuid, Path)), responses((status = 200, body = OrgPlan)))]
pub async fn get_plan(caller: Caller, Path(id): Path<OrgId>) -> ApiResult<Json<OrgPlan>> {
    let org = caller.org_by_id(id).await?.id;
    let permit = caller.require(Permission::Read, ObjectRef::new(ObjectType::OrgAccount, org.0)).await?;
    let (plan, stored) = current(&caller, org, &permit).await?;
    Ok(Json(wire(org, &plan, stored.as_ref())))
}

async fn set(caller: Caller, id: OrgId, body: PlanUpdate, base_is_default: bool) -> ApiResult<Written<OrgPlan>> {
    let org = caller.org_by_id(id).await?.id;
    let permit = caller.require(Permission::Update, ObjectRef::new(ObjectType::OrgAccount, org.0)).await?;
    let (plan, stored) = current(&caller, org, &permit).await?;
    let base = if base_is_default { default_plan(caller.state()) } else { plan.clone() };
    let rotate = body.rotate_alert_signing_secret == Some(true);
    let next = base.updated(body).map_err(ApiError::invalid_body)?;
    if rotate && next.alert_webhook_url.is_none() {
        return Err(ApiError::invalid_body(
            "`rotate_alert_signing_secret` needs an `alert_webhook_url`: the plan has none to sign for",
        ));
    }
    let before = wire(org, &plan, stored.as_ref());
    let mut w = caller.state().write(&permit).await?;
    let now = w.now();
    // The webhook's signing secret: generated when a URL is first set or on request,
    // kept while there is a URL, dropped with it. Sealed at rest, shown once.
    let kept = stored.as_ref().filter(|r| r.alert_secret.is_some() && !rotate);
    let (alert_secret, alert_secret_updated, fresh) = match (&next.alert_webhook_url, kept) {
        (None, _) => (None, None, None),
        (Some(_), Some(r)) => (r.alert_secret.clone(), r.alert_secret_updated, None),
        (Some(_), None) => {
            let secret = crate::webhook::new_signing_secret();
            let sealed = caller.state().sealer()?.seal(crate::secrets::Binding::plan_alert(org), &secret);
            (Some(sealed), Some(now), Some(secret))
        }
    };
    let record = PlanRecord {
        org_id: org,
        data: serde_json::to_value(&next).map_err(|e| ApiError::Internal(e.to_string()))?,
        updated: now,
        updated_by: Some(caller.user.id),
        alert_secret,
        alert_secret_updated,
    };
    // Audited as answers show it: when the secret changed, never its value.
    let after = wire(org, &next, Some(&record));
    w.set_plan(&record, &before, &after).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, OrgPlan { alert_signing_secret: fresh, ..after }))
}

/// Sets an organization's plan; every field left out takes the server's default
/// plan's value (needs `update` on `org_account`; audited `plan.updated`).
#[utoipa::path(put, path = "/v1/organization/{organization_id}/plan", tag = "Usage",
    params(("organization_id" = uuid::Uuid, Path)), request_body = PlanUpdate, responses((status = 200, body = OrgPlan)))]
pub async fn put_plan(
    caller: Caller,
    Path(id): Path<OrgId>,
    Body(body): Body<PlanUpdate>,
) -> ApiResult<Written<OrgPlan>> {
    set(caller, id, body, true).await
}

/// Changes the fields given of an organization's plan (needs `update` on
/// `org_account`; audited `plan.updated`).
#[utoipa::path(patch, path = "/v1/organization/{organization_id}/plan", tag = "Usage",
    params(("organization_id" = uuid::Uuid, Path)), request_body = PlanUpdate, responses((status = 200, body = OrgPlan)))]
pub async fn patch_plan(
    caller: Caller,
    Path(id): Path<OrgId>,
    Body(body): Body<PlanUpdate>,
) -> ApiResult<Written<OrgPlan>> {
    set(caller, id, body, false).await
}
