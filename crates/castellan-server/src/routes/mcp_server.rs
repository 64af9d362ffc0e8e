//! `/v1/mcp_server`: the MCP servers a project's agents may call. Reading them takes
//! `read` on the project; creating, changing or deleting one takes `update` on it.

use super::setting::{self, text, Change, Draft, Setting};
use super::{check_url, OrgName, Written};
use crate::access::Caller;
use crate::error::ApiResult;
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{format_time, CreateMCPServer, ListResponse, MCPServer, PatchMCPServer};
use castellan_core::ObjectType;
use castellan_store::{AdminFilter, AdminKind, AdminRecord};
use serde::Deserialize;
use serde_json::{json, Map};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace)).routes(routes!(retrieve, update, remove))
}

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::McpServer;
    type Wire = MCPServer;

    fn wire(a: &AdminRecord) -> MCPServer {
        MCPServer {
            id: a.id,
            project_id: a.scope.object_id,
            user_id: setting::creator(a),
            created: Some(format_time(a.created)),
            deleted_at: None,
            name: a.name.clone(),
            description: text(a, "description"),
            url: text(a, "url").unwrap_or_default(),
        }
    }
}

/// How configuration as code lists MCP servers.
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec::of::<Kind>(&[ObjectType::Project], &["description", "url"], |data| {
        check_url("url", super::config::required(data, "url")?)?;
        super::config::text(data, "description").map(|_| ())
    })
}

/// The MCP server list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct McpServerFilters {
    /// Only these: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only MCP servers of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    mcp_server_name: Option<String>,
    /// Only those of this project (extension).
    project_id: Option<Uuid>,
}

/// MCP servers of the projects the caller can read, newest first.
#[utoipa::path(get, path = "/v1/mcp_server", tag = "McpServers", params(Page, McpServerFilters, OrgName),
    responses((status = 200, body = ListResponse<MCPServer>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<McpServerFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<MCPServer>>> {
    let filter = AdminFilter {
        scope_type: Some(ObjectType::Project),
        scope_id: f.project_id,
        ids: f.ids,
        name: f.mcp_server_name,
        ..setting::filter::<Kind>()
    };
    let objects = setting::list::<Kind>(&caller, &page, org.get(), filter, |_| true).await?;
    Ok(Json(ListResponse { objects }))
}

async fn create_or_replace(caller: Caller, body: CreateMCPServer, replace: bool) -> ApiResult<Written<MCPServer>> {
    let name = setting::name("name", &body.name)?;
    check_url("url", &body.url)?;
    let mut data = Map::new();
    data.insert("url".into(), json!(body.url));
    data.insert("description".into(), json!(body.description));
    let draft = Draft { scope: setting::project(body.project_id), name, data, secret: None };
    setting::create::<Kind>(&caller, None, draft, replace).await
}

/// Creates a MCP server (`update` on the project), or answers the project's one of
/// that name unchanged (`x-bt-found-existing: true`).
#[utoipa::path(post, path = "/v1/mcp_server", tag = "McpServers", request_body = CreateMCPServer,
    responses((status = 200, body = MCPServer)))]
pub async fn create(caller: Caller, Body(body): Body<CreateMCPServer>) -> ApiResult<Written<MCPServer>> {
    create_or_replace(caller, body, false).await
}

/// Creates a MCP server, or replaces the project's one of that name.
#[utoipa::path(put, path = "/v1/mcp_server", tag = "McpServers", request_body = CreateMCPServer,
    responses((status = 200, body = MCPServer)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateMCPServer>) -> ApiResult<Written<MCPServer>> {
    create_or_replace(caller, body, true).await
}

/// One MCP server.
#[utoipa::path(get, path = "/v1/mcp_server/{mcp_server_id}", tag = "McpServers",
    params(("mcp_server_id" = Uuid, Path)), responses((status = 200, body = MCPServer)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<MCPServer>> {
    Ok(Json(setting::retrieve::<Kind>(&caller, id).await?))
}

/// Changes a MCP server (`update` on the project).
#[utoipa::path(patch, path = "/v1/mcp_server/{mcp_server_id}", tag = "McpServers",
    params(("mcp_server_id" = Uuid, Path)), request_body = Option<PatchMCPServer>,
    responses((status = 200, body = MCPServer)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchMCPServer>,
) -> ApiResult<Written<MCPServer>> {
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    if let Some(u) = &body.url {
        check_url("url", u)?;
        c.replace.insert("url".into(), json!(u));
    }
    if let Some(d) = body.description {
        c.replace.insert("description".into(), json!(d));
    }
    setting::update::<Kind>(&caller, id, c, |_| Ok(())).await
}

/// Deletes a MCP server (`update` on the project).
#[utoipa::path(delete, path = "/v1/mcp_server/{mcp_server_id}", tag = "McpServers",
    params(("mcp_server_id" = Uuid, Path)), responses((status = 200, body = MCPServer)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<MCPServer>> {
    setting::remove::<Kind>(&caller, id, |_| Ok(())).await
}
