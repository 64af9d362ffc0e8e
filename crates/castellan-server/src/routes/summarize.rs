//! `GET /v1/experiment/{id}/summarize` and `GET /v1/dataset/{id}/summarize`, and
//! their app-route twins that the TypeScript SDK calls: `POST
//! /api/base_experiment/get_id`, `GET /experiment-comparison2`, `GET /dataset-summary`.

use super::objects::{load, object_ref};
use crate::access::Caller;
use crate::dataplane::{encode_component, public_base, summary};
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Path, Query};
use axum::http::HeaderMap;
use axum::Json;
use castellan_api_types::{
    BaseExperiment, BaseExperimentRequest, DataSummary, DatasetSummary, ExperimentComparison, ExperimentSummary,
    MetricSummary, ScoreSummary,
};
use castellan_core::Permission;
use castellan_store::page::{Direction, Window};
use castellan_store::{
    EventKind, EventObject, EventQuery, ObjectFilter, ObjectKind, ObjectRecord, Paged, StoredEvent, Tx,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(experiment))
        .routes(routes!(dataset))
        .routes(routes!(base_experiment))
        .routes(routes!(experiment_comparison))
        .routes(routes!(dataset_summary))
}

/// Rows read per query while summarizing.
const PAGE: usize = 1000;

/// Every live row of a log, at one version.
async fn all_rows(tx: &mut dyn Tx, log: EventObject) -> ApiResult<Vec<StoredEvent>> {
    let version = tx.current_xact_id().await?;
    let mut out: Vec<StoredEvent> = Vec::new();
    loop {
        let after = out.last().map(|e| (e.xact_id, e.row_id.clone()));
        let page = tx.fetch_events(&EventQuery { object: log, version, after, limit: PAGE }).await?;
        let done = page.len() < PAGE;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// The experiment to compare with when none is named: the stored base experiment,
/// else the newest older experiment of the project; either only if the caller can
/// read it.
async fn default_comparison(caller: &Caller, tx: &mut dyn Tx, exp: &ObjectRecord) -> ApiResult<Option<ObjectRecord>> {
    let readable = |o: &ObjectRecord| caller.can(Permission::Read, object_ref(o.kind, o.id));
    let base = crate::dataplane::objects::fields::<crate::dataplane::objects::ExperimentData>(exp).base_exp_id;
    if let Some(b) = base {
        if let Some(o) = tx.get_object(b).await?.filter(|o| o.kind == ObjectKind::Experiment && readable(o)) {
            return Ok(Some(o));
        }
    }
    let filter = ObjectFilter {
        kinds: vec![ObjectKind::Experiment],
        orgs: vec![exp.org_id],
        projects: vec![exp.project_id],
        ..Default::default()
    };
    let mut from = Some(exp.page_key());
    loop {
        let batch = tx.list_objects(&filter, &Window { from, direction: Direction::Older, limit: 100 }).await?;
        let done = batch.len() < 100;
        from = batch.last().map(|o| o.page_key());
        if let Some(o) = batch.into_iter().find(|o| readable(o)) {
            return Ok(Some(o));
        }
        if done {
            return Ok(None);
        }
    }
}

/// The project's name as this caller may see it: a caller with a grant on one object
/// inside a project it cannot read gets the project's id (which the object already
/// shows it) instead of its name.
fn shown_project_name(caller: &Caller, project: &castellan_store::ProjectRecord) -> String {
    let p = castellan_core::ObjectRef::new(castellan_core::ObjectType::Project, project.id.0);
    if caller.can(Permission::Read, p) {
        project.name.clone()
    } else {
        project.id.0.to_string()
    }
}

/// What an experiment's summary covers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExperimentSummaryQuery {
    /// Whether to compute the scores and metrics (default: only names and links).
    #[serde(default, deserialize_with = "empty_as_none")]
    summarize_scores: Option<bool>,
    /// The experiment to compare with (default: the base experiment, else the
    /// project's previous one).
    comparison_experiment_id: Option<Uuid>,
}

/// An experiment's scores and metrics, compared with `comparison_experiment_id`, or
/// else its base experiment, or else the project's previous experiment. Scores are
/// gathered from every span of each trace. Without `summarize_scores=true` only the
/// names and links are returned.
#[utoipa::path(get, path = "/v1/experiment/{experiment_id}/summarize", tag = "Experiments",
    params(("experiment_id" = Uuid, Path), ExperimentSummaryQuery),
    responses((status = 200, body = ExperimentSummary)))]
pub async fn experiment(
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Query(q): Query<ExperimentSummaryQuery>,
) -> ApiResult<Json<ExperimentSummary>> {
    let summarize_scores = q.summarize_scores.unwrap_or(false);
    let named = q.comparison_experiment_id;
    let (exp, permit) = load(&caller, &[ObjectKind::Experiment], id, Permission::Read).await?;
    // A named comparison must be readable like anything else.
    let named = match named {
        Some(c) => Some(load(&caller, &[ObjectKind::Experiment], c, Permission::Read).await?.0),
        None => None,
    };
    let mut tx = caller.state().read(&permit).await?;
    let project =
        tx.get_project(exp.project_id).await?.ok_or_else(|| ApiError::not_found("project", exp.project_id))?;
    let org = tx.get_org(exp.org_id).await?.ok_or_else(|| ApiError::not_found("organization", exp.org_id))?;
    let base = public_base(caller.state(), &headers);
    let project_name = shown_project_name(&caller, &project);
    let project_url = format!("{base}/app/{}/p/{}", encode_component(&org.name), encode_component(&project_name));
    let experiment_url = format!("{project_url}/experiments/{}", encode_component(&exp.name));
    let mut out = ExperimentSummary {
        project_name,
        experiment_name: exp.name.clone(),
        project_url,
        experiment_url,
        comparison_experiment_name: None,
        scores: None,
        metrics: None,
    };
    if !summarize_scores {
        return Ok(Json(out));
    }
    let (comparison, scores, metrics) = compare(&caller, &mut *tx, &exp, named).await?;
    out.comparison_experiment_name = comparison.map(|c| c.name);
    out.scores = Some(scores);
    out.metrics = Some(metrics);
    Ok(Json(out))
}

/// Scores and metrics by name.
type Compared = (Option<ObjectRecord>, BTreeMap<String, ScoreSummary>, BTreeMap<String, MetricSummary>);

/// An experiment's scores and metrics compared with `named` (already authorized),
/// else with its default comparison; with the comparison used.
async fn compare(
    caller: &Caller,
    tx: &mut dyn Tx,
    exp: &ObjectRecord,
    named: Option<ObjectRecord>,
) -> ApiResult<Compared> {
    let comparison = match named {
        Some(c) => Some(c),
        None => default_comparison(caller, tx, exp).await?,
    };
    let rows = all_rows(tx, EventObject { kind: EventKind::Experiment, id: exp.id }).await?;
    let base_rows = match &comparison {
        Some(c) => Some(all_rows(tx, EventObject { kind: EventKind::Experiment, id: c.id }).await?),
        None => None,
    };
    let (scores, metrics) = summary::summarize(&rows, base_rows.as_deref());
    Ok((comparison, scores, metrics))
}

/// The experiment another is compared with by default (what
/// `GET /v1/experiment/{id}/summarize` compares with when none is named): its base
/// experiment, else the project's previous one, either only if the caller can read
/// it; 400 when there is none (the SDK then compares with nothing). Needs `read` on
/// the experiment.
#[utoipa::path(post, path = "/api/base_experiment/get_id", tag = "Experiments", request_body = BaseExperimentRequest,
    responses((status = 200, body = BaseExperiment)))]
pub async fn base_experiment(
    caller: Caller,
    Body(body): Body<BaseExperimentRequest>,
) -> ApiResult<Json<BaseExperiment>> {
    let (exp, permit) = load(&caller, &[ObjectKind::Experiment], body.id, Permission::Read).await?;
    let mut tx = caller.state().read(&permit).await?;
    match default_comparison(&caller, &mut *tx, &exp).await? {
        Some(b) => Ok(Json(BaseExperiment { base_exp_id: b.id, base_exp_name: b.name })),
        None => Err(ApiError::bad_request(format!("experiment `{}` has no base experiment", exp.id))),
    }
}

/// The experiments `GET /experiment-comparison2` compares.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComparisonQuery {
    /// The experiment.
    experiment_id: Uuid,
    /// The experiment to compare with (default: as `GET
    /// /v1/experiment/{id}/summarize` chooses).
    #[serde(default)]
    base_experiment_id: Option<Uuid>,
}

/// An experiment's scores and metrics compared with `base_experiment_id`: the
/// `scores` and `metrics` of `GET /v1/experiment/{id}/summarize?summarize_scores=true`,
/// authorized the same way (`read` on both experiments).
#[utoipa::path(get, path = "/experiment-comparison2", tag = "Experiments", params(ComparisonQuery),
    responses((status = 200, body = ExperimentComparison)))]
pub async fn experiment_comparison(
    caller: Caller,
    Query(q): Query<ComparisonQuery>,
) -> ApiResult<Json<ExperimentComparison>> {
    let (exp, permit) = load(&caller, &[ObjectKind::Experiment], q.experiment_id, Permission::Read).await?;
    let named = match q.base_experiment_id {
        Some(c) => Some(load(&caller, &[ObjectKind::Experiment], c, Permission::Read).await?.0),
        None => None,
    };
    let mut tx = caller.state().read(&permit).await?;
    let (_, scores, metrics) = compare(&caller, &mut *tx, &exp, named).await?;
    Ok(Json(ExperimentComparison { scores, metrics }))
}

/// The dataset `GET /dataset-summary` counts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DatasetSummaryParams {
    /// The dataset.
    dataset_id: Uuid,
}

/// A dataset's live record count: the `data_summary` of `GET
/// /v1/dataset/{id}/summarize?summarize_data=true` (`read` on the dataset).
#[utoipa::path(get, path = "/dataset-summary", tag = "Datasets", params(DatasetSummaryParams),
    responses((status = 200, body = DataSummary)))]
pub async fn dataset_summary(caller: Caller, Query(q): Query<DatasetSummaryParams>) -> ApiResult<Json<DataSummary>> {
    let (_, permit) = load(&caller, &[ObjectKind::Dataset], q.dataset_id, Permission::Read).await?;
    let mut tx = caller.state().read(&permit).await?;
    let total_records = tx.count_events(EventObject { kind: EventKind::Dataset, id: q.dataset_id }).await?;
    Ok(Json(DataSummary { total_records }))
}

/// What a dataset's summary covers.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DatasetSummaryQuery {
    /// Whether to count the records (default: only names and links).
    #[serde(default, deserialize_with = "empty_as_none")]
    summarize_data: Option<bool>,
}

/// A dataset's names and links, and with `summarize_data=true` its record count.
#[utoipa::path(get, path = "/v1/dataset/{dataset_id}/summarize", tag = "Datasets",
    params(("dataset_id" = Uuid, Path), DatasetSummaryQuery),
    responses((status = 200, body = DatasetSummary)))]
pub async fn dataset(
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Query(q): Query<DatasetSummaryQuery>,
) -> ApiResult<Json<DatasetSummary>> {
    let summarize_data = q.summarize_data.unwrap_or(false);
    let (ds, permit) = load(&caller, &[ObjectKind::Dataset], id, Permission::Read).await?;
    let mut tx = caller.state().read(&permit).await?;
    let project = tx.get_project(ds.project_id).await?.ok_or_else(|| ApiError::not_found("project", ds.project_id))?;
    let org = tx.get_org(ds.org_id).await?.ok_or_else(|| ApiError::not_found("organization", ds.org_id))?;
    let base = public_base(caller.state(), &headers);
    let project_name = shown_project_name(&caller, &project);
    let project_url = format!("{base}/app/{}/p/{}", encode_component(&org.name), encode_component(&project_name));
    let dataset_url = format!("{project_url}/datasets/{}", encode_component(&ds.name));
    let data_summary = if summarize_data {
        Some(DataSummary { total_records: tx.count_events(EventObject { kind: EventKind::Dataset, id }).await? })
    } else {
        None
    };
    Ok(Json(DatasetSummary { project_name, dataset_name: ds.name, project_url, dataset_url, data_summary }))
}
