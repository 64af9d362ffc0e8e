//! `/v1/project_tag`: a project's tags. Reading them takes `read` on the project;
//! creating, changing or deleting one takes `update` on it (they are project
//! settings).

use super::{invalid, OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{format_time, CreateProjectTag, ListResponse, PatchProjectTag, ProjectTag};
use castellan_core::{Name, ObjectRef, ObjectType, Permission, ProjectId};
use castellan_store::{AdminFilter, AdminKind, AdminRecord};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace)).routes(routes!(retrieve, update, remove))
}

const KIND: AdminKind = AdminKind::ProjectTag;
/// The longest colour accepted.
const MAX_COLOR_CHARS: usize = 64;

fn project_ref(id: Uuid) -> ObjectRef {
    ObjectRef::new(ObjectType::Project, id)
}

/// A tag as answers show it.
fn wire(a: &AdminRecord) -> ProjectTag {
    let text = |k: &str| a.data.get(k).and_then(Value::as_str).map(str::to_owned);
    ProjectTag {
        id: a.id,
        project_id: a.scope.object_id,
        user_id: text("user_id").and_then(|u| Uuid::parse_str(&u).ok()),
        created: Some(format_time(a.created)),
        name: a.name.clone(),
        description: text("description"),
        color: text("color"),
        position: text("position"),
    }
}

fn check_color(color: &Option<String>) -> ApiResult<()> {
    match color {
        Some(c) if c.chars().count() > MAX_COLOR_CHARS => {
            Err(ApiError::invalid_body(format!("`color` is longer than {MAX_COLOR_CHARS} characters")))
        }
        _ => Ok(()),
    }
}

/// How configuration as code lists tags: their description, colour and position.
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec {
        scopes: &[ObjectType::Project],
        keys: &["color", "description", "position"],
        secret: false,
        records_creator: true,
        creation: super::setting::Creation::Update,
        delete: Permission::Update,
        check: |data| {
            for key in ["description", "position"] {
                super::config::text(data, key)?;
            }
            check_color(&super::config::text(data, "color")?.map(str::to_owned))
        },
        check_name: None,
        derived: None,
        audited: |a| serde_json::to_value(wire(a)).unwrap_or_default(),
    }
}

/// The tag list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectTagFilters {
    /// Only these tags: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only tags of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    project_tag_name: Option<String>,
    /// Only tags of this project.
    project_id: Option<Uuid>,
    /// Only tags of the project of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    project_name: Option<String>,
}

/// Tags of the projects the caller can read, newest first.
#[utoipa::path(get, path = "/v1/project_tag", tag = "ProjectTags", params(Page, ProjectTagFilters, OrgName),
    responses((status = 200, body = ListResponse<ProjectTag>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<ProjectTagFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<ProjectTag>>> {
    let Some(project) = super::project_filter(&caller, org.get(), f.project_id, f.project_name.as_deref()).await?
    else {
        // No such project, or another than `project_id`: nothing matches.
        return Ok(Json(ListResponse { objects: Vec::new() }));
    };
    let scope = caller.list_scope(org.get()).await?;
    let mut tx = caller.state().read_scope(&scope).await?;
    let filter = AdminFilter {
        kind: KIND,
        orgs: scope.orgs().to_vec(),
        scope_type: Some(ObjectType::Project),
        scope_id: project,
        ids: f.ids,
        name: f.project_tag_name,
    };
    let rows = super::admin_page(&mut *tx, &filter, &page, |a| scope.visible(Permission::Read, a.scope)).await?;
    Ok(Json(ListResponse { objects: rows.iter().map(wire).collect() }))
}

async fn create_or_replace(caller: Caller, body: CreateProjectTag, replace: bool) -> ApiResult<Written<ProjectTag>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    check_color(&body.color)?;
    let scope = project_ref(body.project_id);
    // A reader of the project gets an existing tag back from a create; making or
    // changing one takes `update` on the project.
    let read = caller.require(Permission::Read, scope).await?;
    if !replace {
        let mut tx = caller.state().read(&read).await?;
        if let Some(a) = tx.find_admin(KIND, scope, name.as_str()).await? {
            return Ok(Written::existing(wire(&a)));
        }
    }
    let permit = caller.require(Permission::Update, scope).await?;
    let mut w = caller.state().write(&permit).await?;
    let project = w
        .tx()
        .get_project(ProjectId(body.project_id))
        .await?
        .ok_or_else(|| ApiError::not_found("project", body.project_id))?;
    let now = w.now();
    let out = match w.tx().find_admin(KIND, scope, name.as_str()).await? {
        Some(a) if !replace => return Ok(Written::existing(wire(&a))),
        Some(before) => {
            let mut after = before.clone();
            after.data["description"] = json!(body.description);
            after.data["color"] = json!(body.color);
            if after == before {
                return Ok(Written { revision: None, found_existing: false, body: wire(&before) });
            }
            after.updated = now;
            let out = wire(&after);
            w.update_admin(&after, &wire(&before), &out).await?;
            out
        }
        None => {
            let a = AdminRecord {
                id: Uuid::now_v7(),
                kind: KIND,
                org_id: project.org_id,
                scope,
                name: name.into_inner(),
                data: json!({"description": body.description, "color": body.color, "user_id": caller.user.id.0}),
                secret: None,
                secret_updated_at: None,
                secret_updated_by: None,
                created: now,
                updated: now,
            };
            let out = wire(&a);
            w.create_admin(&a, &out).await?;
            out
        }
    };
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// Creates a tag (`update` on the project), or returns the project's tag of that
/// name unchanged (with `x-bt-found-existing: true`).
#[utoipa::path(post, path = "/v1/project_tag", tag = "ProjectTags", request_body = CreateProjectTag,
    responses((status = 200, body = ProjectTag)))]
pub async fn create(caller: Caller, Body(body): Body<CreateProjectTag>) -> ApiResult<Written<ProjectTag>> {
    create_or_replace(caller, body, false).await
}

/// Creates a tag, or replaces the description and colour of the project's tag of
/// that name.
#[utoipa::path(put, path = "/v1/project_tag", tag = "ProjectTags", request_body = CreateProjectTag,
    responses((status = 200, body = ProjectTag)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateProjectTag>) -> ApiResult<Written<ProjectTag>> {
    create_or_replace(caller, body, true).await
}

/// One tag.
#[utoipa::path(get, path = "/v1/project_tag/{project_tag_id}", tag = "ProjectTags",
    params(("project_tag_id" = Uuid, Path)), responses((status = 200, body = ProjectTag)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<ProjectTag>> {
    let (a, _) = caller.state().admin_for(&caller, KIND, id, Permission::Read).await?;
    Ok(Json(wire(&a)))
}

/// Renames a tag or changes its description or colour (`update` on the project).
#[utoipa::path(patch, path = "/v1/project_tag/{project_tag_id}", tag = "ProjectTags",
    params(("project_tag_id" = Uuid, Path)), request_body = Option<PatchProjectTag>,
    responses((status = 200, body = ProjectTag)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchProjectTag>,
) -> ApiResult<Written<ProjectTag>> {
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    check_color(&body.color)?;
    let (_, permit) = caller.state().admin_for(&caller, KIND, id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let missing = || ApiError::not_found(KIND.as_str(), id);
    let before = w.tx().get_admin(id).await?.filter(|a| a.kind == KIND).ok_or_else(missing)?;
    let mut after = before.clone();
    if let Some(n) = name {
        after.name = n.into_inner();
    }
    if let Some(d) = body.description {
        after.data["description"] = json!(d);
    }
    if let Some(c) = body.color {
        after.data["color"] = json!(c);
    }
    if after == before {
        return Ok(Written { revision: None, found_existing: false, body: wire(&before) });
    }
    after.updated = w.now();
    let out = wire(&after);
    w.update_admin(&after, &wire(&before), &out).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// Deletes a tag (`update` on the project).
#[utoipa::path(delete, path = "/v1/project_tag/{project_tag_id}", tag = "ProjectTags",
    params(("project_tag_id" = Uuid, Path)), responses((status = 200, body = ProjectTag)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<ProjectTag>> {
    let (_, permit) = caller.state().admin_for(&caller, KIND, id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let missing = || ApiError::not_found(KIND.as_str(), id);
    let a = w.tx().get_admin(id).await?.filter(|a| a.kind == KIND).ok_or_else(missing)?;
    let out = wire(&a);
    w.delete_admin(&a, &out).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}
