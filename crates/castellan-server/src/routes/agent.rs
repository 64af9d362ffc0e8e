//! `/v1/agent`: a project's agents. Reading them takes `read` on the project;
//! creating, changing or deleting one takes `update` on it.

use super::setting::{self, field, text, Change, Draft, Setting};
use super::{OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{format_time, Agent, CreateAgent, ListResponse, PatchAgent};
use castellan_core::ObjectType;
use castellan_store::{AdminFilter, AdminKind, AdminRecord};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace)).routes(routes!(retrieve, update, remove))
}

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::Agent;
    const KEPT: &'static [&'static str] = &["user_id", "slug"];
    type Wire = Agent;

    fn wire(a: &AdminRecord) -> Agent {
        Agent {
            id: a.id,
            project_id: a.scope.object_id,
            user_id: setting::creator(a).unwrap_or_default(),
            created: Some(format_time(a.created)),
            name: a.name.clone(),
            slug: text(a, "slug").unwrap_or_else(|| slug(&a.name)),
            kind: "custom".into(),
            description: text(a, "description"),
            metadata: field(a, "metadata"),
        }
    }
}

/// A URL-safe identifier for `name`: lowercase letters and digits, other runs
/// turned into one `-`.
pub(crate) fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "agent".into()
    } else {
        out
    }
}

fn check_metadata(m: Option<&Value>) -> ApiResult<()> {
    match m {
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(ApiError::invalid_body(format!("`metadata` must be an object, got `{other}`"))),
    }
}

/// How configuration as code lists agents; their slug follows from their name, and
/// two agents of a project may not share one.
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec {
        derived: Some(("slug", slug)),
        ..super::config::KindSpec::of::<Kind>(&[ObjectType::Project], &["description", "metadata"], |data| {
            super::config::text(data, "description")?;
            check_metadata(data.get("metadata"))
        })
    }
}

/// The agent list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentFilters {
    /// Only these: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only agents of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    agent_name: Option<String>,
    /// Only agents of this project (extension).
    project_id: Option<Uuid>,
}

/// Agents of the projects the caller can read, newest first.
#[utoipa::path(get, path = "/v1/agent", tag = "Agents", params(Page, AgentFilters, OrgName),
    responses((status = 200, body = ListResponse<Agent>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<AgentFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<Agent>>> {
    let filter = AdminFilter {
        scope_type: Some(ObjectType::Project),
        scope_id: f.project_id,
        ids: f.ids,
        name: f.agent_name,
        ..setting::filter::<Kind>()
    };
    let objects = setting::list::<Kind>(&caller, &page, org.get(), filter, |_| true).await?;
    Ok(Json(ListResponse { objects }))
}

async fn create_or_replace(caller: Caller, body: CreateAgent, replace: bool) -> ApiResult<Written<Agent>> {
    let name = setting::name("name", &body.name)?;
    check_metadata(body.metadata.as_ref())?;
    let scope = setting::project(body.project_id);
    let slug = slug(&name);
    // Another agent of the project whose name gives the same slug takes it.
    let filter = AdminFilter {
        scope_type: Some(ObjectType::Project),
        scope_id: Some(body.project_id),
        ..setting::filter::<Kind>()
    };
    let same = setting::list::<Kind>(&caller, &crate::extract::Page::default(), None, filter, |a| {
        a.name != name && text(a, "slug").as_deref() == Some(slug.as_str())
    })
    .await?;
    if let Some(other) = same.first() {
        return Err(ApiError::BadRequest {
            code: crate::error::ErrorCode::NameTaken,
            message: format!("the agent `{}` of this project already has the slug `{slug}`", other.name),
        });
    }
    let mut data = Map::new();
    data.insert("slug".into(), json!(slug));
    data.insert("description".into(), json!(body.description));
    data.insert("metadata".into(), body.metadata.unwrap_or(Value::Null));
    setting::create::<Kind>(&caller, None, Draft { scope, name, data, secret: None }, replace).await
}

/// Creates an agent (`update` on the project), or answers the project's agent of
/// that name unchanged (`x-bt-found-existing: true`).
#[utoipa::path(post, path = "/v1/agent", tag = "Agents", request_body = CreateAgent,
    responses((status = 200, body = Agent)))]
pub async fn create(caller: Caller, Body(body): Body<CreateAgent>) -> ApiResult<Written<Agent>> {
    create_or_replace(caller, body, false).await
}

/// Creates an agent, or replaces the project's agent of that name.
#[utoipa::path(put, path = "/v1/agent", tag = "Agents", request_body = CreateAgent,
    responses((status = 200, body = Agent)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateAgent>) -> ApiResult<Written<Agent>> {
    create_or_replace(caller, body, true).await
}

/// One agent.
#[utoipa::path(get, path = "/v1/agent/{agent_id}", tag = "Agents",
    params(("agent_id" = Uuid, Path)), responses((status = 200, body = Agent)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<Agent>> {
    Ok(Json(setting::retrieve::<Kind>(&caller, id).await?))
}

/// Renames an agent (its slug stays) or changes its description or metadata
/// (merged) (`update` on the project).
#[utoipa::path(patch, path = "/v1/agent/{agent_id}", tag = "Agents",
    params(("agent_id" = Uuid, Path)), request_body = Option<PatchAgent>, responses((status = 200, body = Agent)))]
pub async fn update(caller: Caller, Path(id): Path<Uuid>, Body(body): Body<PatchAgent>) -> ApiResult<Written<Agent>> {
    check_metadata(body.metadata.as_ref())?;
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    if let Some(d) = body.description {
        c.replace.insert("description".into(), json!(d));
    }
    if let Some(m) = body.metadata {
        c.data.insert("metadata".into(), m);
    }
    setting::update::<Kind>(&caller, id, c, |_| Ok(())).await
}

/// Deletes an agent (`update` on the project).
#[utoipa::path(delete, path = "/v1/agent/{agent_id}", tag = "Agents",
    params(("agent_id" = Uuid, Path)), responses((status = 200, body = Agent)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<Agent>> {
    setting::remove::<Kind>(&caller, id, |_| Ok(())).await
}
