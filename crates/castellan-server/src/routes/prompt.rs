//! `/v1/prompt`: prompts, with versions. The logic is shared with `/v1/function`
//! (a prompt is a function whose `function_data.type` is `prompt`).

use super::function::{create_in, list_in, remove_in, retrieve_in, update_in, Mode, Version};
use super::objects::{self, InProject, Listing};
use super::{OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{CreateFunction, FeedbackResponse, Function, ListResponse, PatchFunction, PromptFeedback};
use castellan_core::Permission;
use castellan_store::ObjectKind;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(list, create, replace))
        .routes(routes!(retrieve, update, remove))
        .routes(routes!(feedback))
}

/// The prompt list's filters (besides its project, organization and version).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromptFilters {
    /// Only these prompts: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the prompts of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    prompt_name: Option<String>,
    /// Only the prompt with this slug.
    #[serde(default, deserialize_with = "empty_as_none")]
    slug: Option<String>,
}

/// Prompts the caller can read, newest first; with `version`, each as it was then
/// (what `load_prompt(project=…, slug=…, version=…)` asks for).
#[utoipa::path(get, path = "/v1/prompt", tag = "Prompts", params(Page, PromptFilters, Version, InProject, OrgName),
    responses((status = 200, body = ListResponse<Function>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<PromptFilters>,
    Query(version): Query<Version>,
    Query(project): Query<InProject>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<Function>>> {
    let q = Listing { page, org, project, ids: f.ids, name: f.prompt_name, slug: f.slug };
    Ok(Json(ListResponse { objects: list_in(&caller, &q, &version, Mode::Prompt).await? }))
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
    params(("prompt_id" = Uuid, Path), Version), responses((status = 200, body = Function)))]
pub async fn retrieve(
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(version): Query<Version>,
) -> ApiResult<Json<Function>> {
    Ok(Json(retrieve_in(&caller, id, &version, Mode::Prompt).await?))
}

/// A new version of a prompt with these fields changed.
#[utoipa::path(patch, path = "/v1/prompt/{prompt_id}", tag = "Prompts",
    params(("prompt_id" = Uuid, Path)), request_body = Option<PatchFunction>, responses((status = 200, body = Function)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchFunction>,
) -> ApiResult<Written<Function>> {
    update_in(&caller, id, body, Mode::Prompt).await
}

/// Deletes a prompt and every grant on it.
#[utoipa::path(delete, path = "/v1/prompt/{prompt_id}", tag = "Prompts",
    params(("prompt_id" = Uuid, Path)), responses((status = 200, body = Function)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<Function>> {
    remove_in(&caller, id, Mode::Prompt).await
}

/// Feedback on a prompt: comments and metadata, kept in the audit log as one
/// `prompt.feedback` record (Braintrust keeps a row's comments in its audit trail);
/// the prompt and its versions do not change. Needs `update` on the prompt.
#[utoipa::path(post, path = "/v1/prompt/{prompt_id}/feedback", tag = "Prompts",
    params(("prompt_id" = Uuid, Path)), request_body = PromptFeedback, responses((status = 200, body = FeedbackResponse)))]
pub async fn feedback(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PromptFeedback>,
) -> ApiResult<Written<FeedbackResponse>> {
    for (i, item) in body.feedback.iter().enumerate() {
        if Uuid::parse_str(&item.id).ok() != Some(id) {
            return Err(ApiError::invalid_body(format!(
                "`feedback[{i}].id` must be the prompt's id `{id}` (Castellan keeps no other prompt events), got `{}`",
                item.id
            )));
        }
        let source = item.source.as_deref().unwrap_or("external");
        if !["app", "api", "external"].contains(&source) {
            return Err(ApiError::invalid_body(format!(
                "`feedback[{i}].source` must be one of app, api, external; got `{source}`"
            )));
        }
        if item.metadata.as_ref().is_some_and(|m| !m.is_object() && !m.is_null()) {
            return Err(ApiError::invalid_body(format!("`feedback[{i}].metadata` must be an object")));
        }
    }
    const KINDS: &[ObjectKind] = &[ObjectKind::Prompt];
    let (_, permit) = objects::load(&caller, KINDS, id, Permission::Update).await?;
    let done = FeedbackResponse { status: "success".into() };
    if body.feedback.is_empty() {
        return Ok(Written { revision: None, found_existing: false, body: done });
    }
    let mut w = caller.state().write(&permit).await?;
    let prompt = objects::reload(&mut w, KINDS, id).await?;
    w.prompt_feedback(&prompt, &body).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, done))
}
