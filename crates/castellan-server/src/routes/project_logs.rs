//! `/v1/project_logs/{project_id}`: a project's logs (object type `project_log`).

use super::{events, path_id};
use crate::access::{AppState, Caller};
use crate::error::ApiResult;
use crate::extract::{Body, Params};
use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use castellan_api_types::{
    Feedback, FeedbackResponse, FetchEvents, FetchEventsResponse, InsertEvents, InsertEventsResponse,
};
use castellan_store::{EventKind, EventObject};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/project_logs/{project_id}/insert", post(insert))
        .route("/v1/project_logs/{project_id}/fetch", get(fetch_get).post(fetch_post))
        .route("/v1/project_logs/{project_id}/feedback", post(feedback))
}

fn log(raw: &str) -> ApiResult<EventObject> {
    Ok(EventObject { kind: EventKind::ProjectLogs, id: path_id("project_id", raw)? })
}

/// Inserts (replaces, merges or deletes) rows of a project's logs.
#[utoipa::path(post, path = "/v1/project_logs/{project_id}/insert", tag = "Logs",
    params(("project_id" = uuid::Uuid, Path)), request_body = InsertEvents, responses((status = 200, body = InsertEventsResponse)))]
pub async fn insert(
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<InsertEvents>,
) -> ApiResult<Json<InsertEventsResponse>> {
    Ok(Json(events::insert(&caller, log(&id)?, body).await?))
}

/// A page of a project's logs (query parameters as in the `POST` form).
#[utoipa::path(get, path = "/v1/project_logs/{project_id}/fetch", tag = "Logs",
    params(("project_id" = uuid::Uuid, Path), ("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query),
           ("version" = Option<String>, Query)),
    responses((status = 200, body = FetchEventsResponse)))]
pub async fn fetch_get(caller: Caller, Path(id): Path<String>, q: Params) -> ApiResult<Json<FetchEventsResponse>> {
    Ok(Json(events::fetch(&caller, log(&id)?, events::fetch_params(&q)?).await?))
}

/// A page of a project's logs.
#[utoipa::path(post, path = "/v1/project_logs/{project_id}/fetch", tag = "Logs",
    params(("project_id" = uuid::Uuid, Path)), request_body = FetchEvents, responses((status = 200, body = FetchEventsResponse)))]
pub async fn fetch_post(
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<FetchEvents>,
) -> ApiResult<Json<FetchEventsResponse>> {
    Ok(Json(events::fetch(&caller, log(&id)?, body).await?))
}

/// Feedback on rows of a project's logs.
#[utoipa::path(post, path = "/v1/project_logs/{project_id}/feedback", tag = "Logs",
    params(("project_id" = uuid::Uuid, Path)), request_body = Feedback, responses((status = 200, body = FeedbackResponse)))]
pub async fn feedback(
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Feedback>,
) -> ApiResult<Json<FeedbackResponse>> {
    Ok(Json(events::feedback(&caller, log(&id)?, body).await?))
}
