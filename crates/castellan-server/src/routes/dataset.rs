//! `/v1/dataset`: datasets and their records.

use super::objects::{self, check_object, check_tags, load};
use super::{events, invalid, path_id, Written};
use crate::access::{AppState, Caller};
use crate::dataplane::objects::{dataset as wire, fields, merge_value, to_data, DatasetData};
use crate::error::ApiResult;
use crate::extract::{Body, Params};
use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use castellan_api_types::{
    CreateDataset, Dataset, Feedback, FeedbackResponse, FetchEvents, FetchEventsResponse, InsertEvents,
    InsertEventsResponse, ListResponse, PatchDataset,
};
use castellan_core::{Name, Permission, ProjectId};
use castellan_store::{EventKind, EventObject, ObjectKind};
use uuid::Uuid;

const KINDS: &[ObjectKind] = &[ObjectKind::Dataset];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/dataset", get(list).post(create))
        .route("/v1/dataset/{dataset_id}", get(retrieve).patch(update).delete(remove))
        .route("/v1/dataset/{dataset_id}/insert", post(insert))
        .route("/v1/dataset/{dataset_id}/fetch", get(fetch_get).post(fetch_post))
        .route("/v1/dataset/{dataset_id}/feedback", post(feedback))
}

fn log(id: Uuid) -> EventObject {
    EventObject { kind: EventKind::Dataset, id }
}

/// Datasets the caller can read, newest first.
#[utoipa::path(get, path = "/v1/dataset", tag = "Datasets",
    params(("limit" = Option<usize>, Query), ("starting_after" = Option<Uuid>, Query), ("ending_before" = Option<Uuid>, Query),
           ("ids" = Option<Vec<Uuid>>, Query), ("dataset_name" = Option<String>, Query), ("project_name" = Option<String>, Query),
           ("project_id" = Option<Uuid>, Query), ("org_name" = Option<String>, Query)),
    responses((status = 200, body = ListResponse<Dataset>)))]
pub async fn list(caller: Caller, q: Params) -> ApiResult<Json<ListResponse<Dataset>>> {
    let rows = objects::list(&caller, &q, KINDS, "dataset_name").await?;
    Ok(Json(ListResponse { objects: rows.iter().map(wire).collect() }))
}

/// Creates a dataset, or returns the project's dataset of that name unchanged (200,
/// with `x-bt-found-existing: true`) when the caller can read it.
#[utoipa::path(post, path = "/v1/dataset", tag = "Datasets", request_body = CreateDataset,
    responses((status = 200, body = Dataset)))]
pub async fn create(caller: Caller, Body(body): Body<CreateDataset>) -> ApiResult<Written<Dataset>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    check_object("metadata", &body.metadata)?;
    check_tags(&body.tags)?;
    let pid = ProjectId(body.project_id);
    let data = to_data(&DatasetData { metadata: body.metadata, tags: body.tags });
    objects::create_or_get(&caller, pid, ObjectKind::Dataset, "dataset", name, body.description, data, wire).await
}

/// One dataset.
#[utoipa::path(get, path = "/v1/dataset/{dataset_id}", tag = "Datasets",
    params(("dataset_id" = Uuid, Path)), responses((status = 200, body = Dataset)))]
pub async fn retrieve(caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Dataset>> {
    let id = path_id("dataset_id", &id)?;
    let (o, _) = load(&caller, KINDS, id, Permission::Read).await?;
    Ok(Json(wire(&o)))
}

/// Changes a dataset; `metadata` is deep-merged, other fields replaced.
#[utoipa::path(patch, path = "/v1/dataset/{dataset_id}", tag = "Datasets",
    params(("dataset_id" = Uuid, Path)), request_body = PatchDataset, responses((status = 200, body = Dataset)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<PatchDataset>,
) -> ApiResult<Written<Dataset>> {
    let id = path_id("dataset_id", &id)?;
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
pub async fn remove(caller: Caller, Path(id): Path<String>) -> ApiResult<Written<Dataset>> {
    let id = path_id("dataset_id", &id)?;
    objects::remove(&caller, KINDS, id, wire).await
}

/// Inserts (replaces, merges or deletes) records of a dataset.
#[utoipa::path(post, path = "/v1/dataset/{dataset_id}/insert", tag = "Datasets",
    params(("dataset_id" = Uuid, Path)), request_body = InsertEvents, responses((status = 200, body = InsertEventsResponse)))]
pub async fn insert(
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<InsertEvents>,
) -> ApiResult<Json<InsertEventsResponse>> {
    let id = path_id("dataset_id", &id)?;
    Ok(Json(events::insert(&caller, log(id), body).await?))
}

/// A page of a dataset's records (query parameters as in the `POST` form).
#[utoipa::path(get, path = "/v1/dataset/{dataset_id}/fetch", tag = "Datasets",
    params(("dataset_id" = Uuid, Path), ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query),
           ("version" = Option<String>, Query)),
    responses((status = 200, body = FetchEventsResponse)))]
pub async fn fetch_get(caller: Caller, Path(id): Path<String>, q: Params) -> ApiResult<Json<FetchEventsResponse>> {
    let id = path_id("dataset_id", &id)?;
    Ok(Json(events::fetch(&caller, log(id), events::fetch_params(&q)?).await?))
}

/// A page of a dataset's records.
#[utoipa::path(post, path = "/v1/dataset/{dataset_id}/fetch", tag = "Datasets",
    params(("dataset_id" = Uuid, Path)), request_body = FetchEvents, responses((status = 200, body = FetchEventsResponse)))]
pub async fn fetch_post(
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<FetchEvents>,
) -> ApiResult<Json<FetchEventsResponse>> {
    let id = path_id("dataset_id", &id)?;
    Ok(Json(events::fetch(&caller, log(id), body).await?))
}

/// Feedback on a dataset's records.
#[utoipa::path(post, path = "/v1/dataset/{dataset_id}/feedback", tag = "Datasets",
    params(("dataset_id" = Uuid, Path)), request_body = Feedback, responses((status = 200, body = FeedbackResponse)))]
pub async fn feedback(
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Feedback>,
) -> ApiResult<Json<FeedbackResponse>> {
    let id = path_id("dataset_id", &id)?;
    Ok(Json(events::feedback(&caller, log(id), body).await?))
}
