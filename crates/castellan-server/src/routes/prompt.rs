//! `/v1/prompt`: prompts, with versions. The logic is shared with `/v1/function`
//! (a prompt is a function whose `function_data.type` is `prompt`).

use super::function::{create_in, list_in, remove_in, retrieve_in, update_in, Mode};
use super::Written;
use crate::access::Caller;
use crate::error::ApiResult;
use crate::extract::{Body, Params};
use axum::extract::Path;
use axum::Json;
use castellan_api_types::{CreateFunction, Function, ListResponse, PatchFunction};
use utoipa_axum::{router::OpenApiRouter, routes};

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace)).routes(routes!(retrieve, update, remove))
}

/// Prompts the caller can read, newest first; with `version`, each as it was then
/// (what `load_prompt(project=…, slug=…, version=…)` asks for).
#[utoipa::path(get, path = "/v1/prompt", tag = "Prompts",
    params(("limit" = Option<usize>, Query), ("starting_after" = Option<uuid::Uuid>, Query), ("ending_before" = Option<uuid::Uuid>, Query),
           ("ids" = Option<Vec<uuid::Uuid>>, Query), ("prompt_name" = Option<String>, Query), ("slug" = Option<String>, Query),
           ("version" = Option<String>, Query), ("project_name" = Option<String>, Query),
           ("project_id" = Option<uuid::Uuid>, Query), ("org_name" = Option<String>, Query)),
    responses((status = 200, body = ListResponse<Function>)))]
pub async fn list(caller: Caller, q: Params) -> ApiResult<Json<ListResponse<Function>>> {
    Ok(Json(ListResponse { objects: list_in(&caller, &q, Mode::Prompt).await? }))
}

/// Creates a prompt, or returns the project's prompt of that slug unchanged.
#[utoipa::path(post, path = "/v1/prompt", tag = "Prompts", request_body = CreateFunction,
    responses((status = 200, body = Function)))]
pub async fn create(caller: Caller, Body(body): Body<CreateFunction>) -> ApiResult<Written<Function>> {
    create_in(&caller, body, Mode::Prompt, false).await
}

/// Creates a prompt, or replaces the project's prompt of that slug (a new version).
#[utoipa::path(put, path = "/v1/prompt", tag = "Prompts", request_body = CreateFunction,
    responses((status = 200, body = Function)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateFunction>) -> ApiResult<Written<Function>> {
    create_in(&caller, body, Mode::Prompt, true).await
}

/// One prompt, at `version` if asked.
#[utoipa::path(get, path = "/v1/prompt/{prompt_id}", tag = "Prompts",
    params(("prompt_id" = uuid::Uuid, Path), ("version" = Option<String>, Query)), responses((status = 200, body = Function)))]
pub async fn retrieve(caller: Caller, Path(id): Path<String>, q: Params) -> ApiResult<Json<Function>> {
    Ok(Json(retrieve_in(&caller, &id, &q, Mode::Prompt).await?))
}

/// A new version of a prompt with these fields changed.
#[utoipa::path(patch, path = "/v1/prompt/{prompt_id}", tag = "Prompts",
    params(("prompt_id" = uuid::Uuid, Path)), request_body = PatchFunction, responses((status = 200, body = Function)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<PatchFunction>,
) -> ApiResult<Written<Function>> {
    update_in(&caller, &id, body, Mode::Prompt).await
}

/// Deletes a prompt and every grant on it.
#[utoipa::path(delete, path = "/v1/prompt/{prompt_id}", tag = "Prompts",
    params(("prompt_id" = uuid::Uuid, Path)), responses((status = 200, body = Function)))]
pub async fn remove(caller: Caller, Path(id): Path<String>) -> ApiResult<Written<Function>> {
    remove_in(&caller, &id, Mode::Prompt).await
}
