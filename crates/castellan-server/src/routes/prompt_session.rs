//! `/v1/prompt_session` (Castellan extension): playgrounds as objects, so grants on
//! the `prompt_session` object type govern something. Their logs are written
//! through `/logs3` (rows with `prompt_session_id`) or `…/insert`, and read back
//! with `…/fetch`.

use super::objects::{self, check_object, check_tags, load, InProject, Listing};
use super::{events, invalid, OrgName, Written};
use crate::access::Caller;
use crate::dataplane::objects::{fields, prompt_session as wire, to_data, SessionData};
use crate::error::ApiResult;
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{
    CreatePromptSession, FetchEvents, FetchEventsResponse, InsertEvents, InsertEventsResponse, ListResponse,
    PatchPromptSession, PromptSession,
};
use castellan_core::{Name, Permission, ProjectId};
use castellan_store::{EventKind, EventObject, ObjectKind};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const KINDS: &[ObjectKind] = &[ObjectKind::PromptSession];

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(retrieve, update, remove))
        .routes(routes!(insert))
        .routes(routes!(fetch))
}

/// The playground list's filters (besides its project and organization).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromptSessionFilters {
    /// Only these playgrounds: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the playground of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    prompt_session_name: Option<String>,
}

/// Playgrounds the caller can read, newest first.
#[utoipa::path(get, path = "/v1/prompt_session", tag = "Playgrounds", params(Page, PromptSessionFilters, InProject, OrgName),
    responses((status = 200, body = ListResponse<PromptSession>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<PromptSessionFilters>,
    Query(project): Query<InProject>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<PromptSession>>> {
    let q = Listing { page, org, project, ids: f.ids, name: f.prompt_session_name, slug: None };
    let rows = objects::list(&caller, &q, KINDS).await?;
    Ok(Json(ListResponse { objects: rows.iter().map(wire).collect() }))
}

/// Creates a playground, or returns the project's playground of that name unchanged.
#[utoipa::path(post, path = "/v1/prompt_session", tag = "Playgrounds", request_body = CreatePromptSession,
    responses((status = 200, body = PromptSession)))]
pub async fn create(caller: Caller, Body(body): Body<CreatePromptSession>) -> ApiResult<Written<PromptSession>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    check_object("prompt_session_data", &body.prompt_session_data)?;
    check_tags(&body.tags)?;
    let pid = ProjectId(body.project_id);
    let data = to_data(&SessionData { prompt_session_data: body.prompt_session_data, tags: body.tags });
    objects::create_or_get(&caller, pid, ObjectKind::PromptSession, "playground", name, body.description, data, wire)
        .await
}

/// One playground.
#[utoipa::path(get, path = "/v1/prompt_session/{prompt_session_id}", tag = "Playgrounds",
    params(("prompt_session_id" = Uuid, Path)), responses((status = 200, body = PromptSession)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<PromptSession>> {
    let (o, _) = load(&caller, KINDS, id, Permission::Read).await?;
    Ok(Json(wire(&o)))
}

/// Changes a playground (its state is replaced whole).
#[utoipa::path(patch, path = "/v1/prompt_session/{prompt_session_id}", tag = "Playgrounds",
    params(("prompt_session_id" = Uuid, Path)), request_body = Option<PatchPromptSession>, responses((status = 200, body = PromptSession)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchPromptSession>,
) -> ApiResult<Written<PromptSession>> {
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    check_object("prompt_session_data", &body.prompt_session_data)?;
    check_tags(&body.tags)?;
    let (_, permit) = load(&caller, KINDS, id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let before = objects::reload(&mut w, KINDS, id).await?;
    let mut after = before.clone();
    let mut d: SessionData = fields(&before);
    if let Some(n) = name {
        after.name = n.into_inner();
    }
    if body.description.is_some() {
        after.description = body.description;
    }
    d.prompt_session_data = body.prompt_session_data.or(d.prompt_session_data);
    d.tags = body.tags.or(d.tags);
    after.data = to_data(&d);
    objects::commit_update(w, &before, &after, wire).await
}

/// Deletes a playground and every grant on it.
#[utoipa::path(delete, path = "/v1/prompt_session/{prompt_session_id}", tag = "Playgrounds",
    params(("prompt_session_id" = Uuid, Path)), responses((status = 200, body = PromptSession)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<PromptSession>> {
    objects::remove(&caller, KINDS, id, wire).await
}

fn log(id: Uuid) -> EventObject {
    EventObject { kind: EventKind::PromptSession, id }
}

/// Inserts rows of a playground's logs.
#[utoipa::path(post, path = "/v1/prompt_session/{prompt_session_id}/insert", tag = "Playgrounds",
    params(("prompt_session_id" = Uuid, Path)), request_body = InsertEvents, responses((status = 200, body = InsertEventsResponse)))]
pub async fn insert(
    caller: Caller,
    axum::extract::State(data): axum::extract::State<crate::dataplane::DataPlane>,
    Path(id): Path<Uuid>,
    Body(body): Body<InsertEvents>,
) -> ApiResult<Json<InsertEventsResponse>> {
    Ok(Json(events::insert(&caller, &data, log(id), body).await?))
}

/// A page of a playground's logs.
#[utoipa::path(post, path = "/v1/prompt_session/{prompt_session_id}/fetch", tag = "Playgrounds",
    params(("prompt_session_id" = Uuid, Path)), request_body = Option<FetchEvents>, responses((status = 200, body = FetchEventsResponse)))]
pub async fn fetch(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<FetchEvents>,
) -> ApiResult<Json<FetchEventsResponse>> {
    Ok(Json(events::fetch(&caller, log(id), body).await?))
}
