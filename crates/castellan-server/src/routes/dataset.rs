//! `/v1/dataset`: datasets and their records.

use super::objects::{self, check_object, check_tags, load, InProject, Listing};
use super::{invalid, OrgName, Written};
use crate::access::Caller;
use crate::dataplane::objects::{dataset as wire, fields, merge_value, to_data, DatasetData};
use crate::error::ApiResult;
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{
    CreateDataset, Dataset, Feedback, FeedbackResponse, FetchEvents, FetchEventsResponse, InsertEvents,
    InsertEventsResponse, ListResponse, PatchDataset,
};
use castellan_core::{Name, Permission, ProjectId};
use castellan_store::{EventKind, ObjectKind};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const KINDS: &[ObjectKind] = &[ObjectKind::Dataset];

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(list, create, replace))
        .routes(routes!(retrieve, update, remove))
        .routes(routes!(insert))
        .routes(routes!(fetch_get, fetch_post))
        .routes(routes!(feedback))
}

/// The dataset list's filters (besides its project and organization).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DatasetFilters {
    /// Only these datasets: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the dataset of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    dataset_name: Option<String>,
}

/// Datasets the caller can read, newest first.
#[utoipa::path(get, path = "/v1/dataset", tag = "Datasets", params(Page, DatasetFilters, InProject, OrgName),
    responses((status = 200, body = ListResponse<Dataset>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<DatasetFilters>,
    Query(project): Query<InProject>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<Dataset>>> {
    let q = Listing { page, org, project, ids: f.ids, name: f.dataset_name, slug: None };
    let rows = objects::list(&caller, &q, KINDS).await?;
    Ok(Json(ListResponse { objects: rows.iter().map(wire).collect() }))
}

/// Creates a dataset, or returns the project's dataset of that name unchanged (200,
/// with `x-bt-found-existing: true`) when the caller can read it.
#[utoipa::path(post, path = "/v1/dataset", tag = "Datasets", request_body = CreateDataset,
    responses((status = 200, body = Dataset)))]
pub async fn create(caller: Caller, Body(body): Body<CreateDataset>) -> ApiResult<Written<Dataset>> {
    create_or_replace(&caller, body, false).await
}

/// Creates a dataset, or replaces the description, metadata and tags of the
/// project's dataset of that name (needs `update` on it).
#[utoipa::path(put, path = "/v1/dataset", tag = "Datasets", request_body = CreateDataset,
    responses((status = 200, body = Dataset)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateDataset>) -> ApiResult<Written<Dataset>> {
    create_or_replace(&caller, body, true).await
}

/// `POST` (and, with `replace`, `PUT`) `/v1/dataset`; also `POST /api/dataset/register`.
pub(crate) async fn create_or_replace(
    caller: &Caller,
    body: CreateDataset,
    replace: bool,
) -> ApiResult<Written<Dataset>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    check_object("metadata", &body.metadata)?;
    check_tags(&body.tags)?;
    let pid = ProjectId(body.project_id);
    let data = to_data(&DatasetData { metadata: body.metadata, tags: body.tags });
    if replace {
        if let Some(o) = objects::existing_by_name(caller, pid, ObjectKind::Dataset, name.as_str()).await? {
            let (_, permit) = load(caller, KINDS, o.id, Permission::Update).await?;
            let mut w = caller.state().write(&permit).await?;
            let before = objects::reload(&mut w, KINDS, o.id).await?;
            let after = castellan_store::ObjectRecord { description: body.description, data, ..before.clone() };
            let mut out = objects::commit_update(w, &before, &after, wire).await?;
            out.found_existing = true;
            return Ok(out);
        }
    }
    objects::create_or_get(caller, pid, ObjectKind::Dataset, "dataset", name, body.description, data, wire).await
}

/// One dataset.
#[utoipa::path(get, path = "/v1/dataset/{dataset_id}", tag = "Datasets",
    params(("dataset_id" = Uuid, Path)), responses((status = 200, body = Dataset)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<Dataset>> {
    let (o, _) = load(&caller, KINDS, id, Permission::Read).await?;
    Ok(Json(wire(&o)))
}

/// Changes a dataset; `metadata` is deep-merged, other fields replaced.
#[utoipa::path(patch, path = "/v1/dataset/{dataset_id}", tag = "Datasets",
    params(("dataset_id" = Uuid, Path)), request_body = Option<PatchDataset>, responses((status = 200, body = Dataset)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchDataset>,
) -> ApiResult<Written<Dataset>> {
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    check_object("metadata", &body.metadata)?;
    check_tags(&body.tags)?;
    let (_, permit) = load(&caller, KINDS, id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let before = objects::reload(&mut w, KINDS, id).await?;
    let mut after = before.clone();
    let mut d: DatasetData = fields(&before);
    if let Some(n) = name {
        after.name = n.into_inner();
    }
    if body.description.is_some() {
        after.description = body.description;
    }
    if let Some(m) = body.metadata {
        d.metadata = Some(merge_value(d.metadata.take(), m));
    }
    d.tags = body.tags.or(d.tags);
    after.data = to_data(&d);
    objects::commit_update(w, &before, &after, wire).await
}

/// Deletes a dataset and every grant on it.
#[utoipa::path(delete, path = "/v1/dataset/{dataset_id}", tag = "Datasets",
    params(("dataset_id" = Uuid, Path)), responses((status = 200, body = Dataset)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<Dataset>> {
    objects::remove(&caller, KINDS, id, wire).await
}

super::events::event_endpoints! {
    kind: EventKind::Dataset,
    id: "dataset_id",
    tag: "Datasets",
    insert: (
        "/v1/dataset/{dataset_id}/insert",
        "Inserts (replaces, merges or deletes) records of a dataset.",
    ),
    fetch: (
        "/v1/dataset/{dataset_id}/fetch",
        "A page of a dataset's records (query parameters as in the `POST` form).",
        "A page of a dataset's records.",
    ),
    feedback: (
        "/v1/dataset/{dataset_id}/feedback",
        "Feedback on a dataset's records.",
    ),
}
