//! `/v1/project/{project_id}/simulated_user`: a project's simulated users (for
//! evaluating conversational agents). Reading them takes `read` on the project;
//! creating, changing or deleting one takes `update` on it.

use super::setting::{self, text, Change, Draft, Setting};
use super::Written;
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{
    format_time, CreateSimulatedUser, ListResponse, PatchSimulatedUser, SimulatedUser, SimulatedUserVoiceConfig,
};
use castellan_core::{ObjectType, Permission};
use castellan_store::{AdminFilter, AdminKind, AdminRecord};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(retrieve, update, remove))
}

/// The longest instructions or goal accepted, in characters.
const MAX_TEXT: usize = 100_000;

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::SimulatedUser;
    type Wire = SimulatedUser;

    fn wire(a: &AdminRecord) -> SimulatedUser {
        SimulatedUser {
            id: a.id,
            org_id: a.org_id.0,
            project_id: a.scope.object_id,
            name: a.name.clone(),
            instructions: text(a, "instructions").unwrap_or_default(),
            goal: text(a, "goal"),
            voice_config: a.data.get("voice_config").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or(
                SimulatedUserVoiceConfig { voice_id: String::new(), accent: None, language: None, speaking_rate: None },
            ),
            created: Some(format_time(a.created)),
        }
    }
}

fn check_text(field: &str, v: &str) -> ApiResult<()> {
    if v.trim().is_empty() || v.chars().count() > MAX_TEXT {
        return Err(ApiError::invalid_body(format!("`{field}` must be non-empty and at most {MAX_TEXT} characters")));
    }
    Ok(())
}

fn check_voice(v: &SimulatedUserVoiceConfig) -> ApiResult<()> {
    if v.voice_id.trim().is_empty() {
        return Err(ApiError::invalid_body("`voice_config.voice_id` cannot be empty"));
    }
    if v.speaking_rate.is_some_and(|r| !r.is_finite() || r <= 0.0) {
        return Err(ApiError::invalid_body("`voice_config.speaking_rate` must be a positive number"));
    }
    Ok(())
}

/// How configuration as code lists simulated users.
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec::of::<Kind>(&[ObjectType::Project], &["goal", "instructions", "voice_config"], |data| {
        check_text("instructions", super::config::required(data, "instructions")?)?;
        if let Some(g) = super::config::text(data, "goal")? {
            check_text("goal", g)?;
        }
        let voice = data.get("voice_config").cloned().unwrap_or(Value::Null);
        let voice: SimulatedUserVoiceConfig = serde_json::from_value(voice).map_err(|e| {
            ApiError::invalid_body(format!("`voice_config` is required: an object with a `voice_id` ({e})"))
        })?;
        check_voice(&voice)
    })
}

/// The project the simulated users belong to.
#[derive(Debug, Deserialize)]
pub struct ProjectPath {
    project_id: Uuid,
}

/// One simulated user of a project.
#[derive(Debug, Deserialize)]
pub struct UserPath {
    project_id: Uuid,
    id: Uuid,
}

/// The simulated user list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SimulatedUserFilters {
    /// Only these: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the simulated user of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    simulated_user_name: Option<String>,
}

/// The project's simulated users (`read` on it), newest first.
#[utoipa::path(get, path = "/v1/project/{project_id}/simulated_user", tag = "SimulatedUsers",
    params(("project_id" = Uuid, Path), Page, SimulatedUserFilters),
    responses((status = 200, body = ListResponse<SimulatedUser>)))]
pub async fn list(
    caller: Caller,
    Path(p): Path<ProjectPath>,
    Query(page): Query<Page>,
    Query(f): Query<SimulatedUserFilters>,
) -> ApiResult<Json<ListResponse<SimulatedUser>>> {
    caller.require(Permission::Read, setting::project(p.project_id)).await?;
    let filter = AdminFilter {
        scope_type: Some(ObjectType::Project),
        scope_id: Some(p.project_id),
        ids: f.ids,
        name: f.simulated_user_name,
        ..setting::filter::<Kind>()
    };
    let objects = setting::list::<Kind>(&caller, &page, None, filter, |_| true).await?;
    Ok(Json(ListResponse { objects }))
}

/// Creates a simulated user (`update` on the project), or answers the project's one
/// of that name unchanged (`x-bt-found-existing: true`).
#[utoipa::path(post, path = "/v1/project/{project_id}/simulated_user", tag = "SimulatedUsers",
    params(("project_id" = Uuid, Path)), request_body = CreateSimulatedUser,
    responses((status = 200, body = SimulatedUser)))]
pub async fn create(
    caller: Caller,
    Path(p): Path<ProjectPath>,
    Body(body): Body<CreateSimulatedUser>,
) -> ApiResult<Written<SimulatedUser>> {
    let name = setting::name("name", &body.name)?;
    check_text("instructions", &body.instructions)?;
    if let Some(g) = &body.goal {
        check_text("goal", g)?;
    }
    check_voice(&body.voice_config)?;
    let mut data = Map::new();
    data.insert("instructions".into(), json!(body.instructions));
    data.insert("goal".into(), json!(body.goal));
    data.insert("voice_config".into(), json!(body.voice_config));
    let draft = Draft { scope: setting::project(p.project_id), name, data, secret: None };
    setting::create::<Kind>(&caller, None, draft, false).await
}

fn in_project(a: &AdminRecord, project: Uuid) -> ApiResult<()> {
    if a.scope != setting::project(project) {
        return Err(ApiError::not_found("simulated_user", a.id));
    }
    Ok(())
}

/// One simulated user.
#[utoipa::path(get, path = "/v1/project/{project_id}/simulated_user/{id}", tag = "SimulatedUsers",
    params(("project_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = SimulatedUser)))]
pub async fn retrieve(caller: Caller, Path(p): Path<UserPath>) -> ApiResult<Json<SimulatedUser>> {
    let a = setting::load::<Kind>(&caller, p.id, Permission::Read).await?;
    in_project(&a, p.project_id)?;
    Ok(Json(Kind::wire(&a)))
}

/// Changes a simulated user (`update` on the project); `goal: null` clears its goal.
#[utoipa::path(patch, path = "/v1/project/{project_id}/simulated_user/{id}", tag = "SimulatedUsers",
    params(("project_id" = Uuid, Path), ("id" = Uuid, Path)), request_body = PatchSimulatedUser,
    responses((status = 200, body = SimulatedUser)))]
pub async fn update(
    caller: Caller,
    Path(p): Path<UserPath>,
    Body(body): Body<PatchSimulatedUser>,
) -> ApiResult<Written<SimulatedUser>> {
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    if let Some(i) = &body.instructions {
        check_text("instructions", i)?;
        c.replace.insert("instructions".into(), json!(i));
    }
    match &body.goal {
        Some(Some(g)) => {
            check_text("goal", g)?;
            c.replace.insert("goal".into(), json!(g));
        }
        Some(None) => {
            c.replace.insert("goal".into(), Value::Null);
        }
        None => {}
    }
    if let Some(v) = &body.voice_config {
        check_voice(v)?;
        c.replace.insert("voice_config".into(), json!(v));
    }
    let project = p.project_id;
    setting::update::<Kind>(&caller, p.id, c, |a| in_project(a, project)).await
}

/// Deletes a simulated user (`update` on the project).
#[utoipa::path(delete, path = "/v1/project/{project_id}/simulated_user/{id}", tag = "SimulatedUsers",
    params(("project_id" = Uuid, Path), ("id" = Uuid, Path)), responses((status = 200, body = SimulatedUser)))]
pub async fn remove(caller: Caller, Path(p): Path<UserPath>) -> ApiResult<Written<SimulatedUser>> {
    let project = p.project_id;
    setting::remove::<Kind>(&caller, p.id, |a| in_project(a, project)).await
}
