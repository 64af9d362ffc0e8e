//! `/v1/project`.

use super::{invalid, OrgName, Written};
use crate::access::Caller;
use crate::dto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use crate::fill;
use axum::Json;
use castellan_api_types::{CreateProject, ListResponse, PatchProject, Project};
use castellan_core::{Name, ObjectRef, ObjectType, Permission, ProjectId, UserId};
use castellan_store::{AdminKind, Paged, ProjectFilter, ProjectRecord};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace)).routes(routes!(retrieve, update, remove))
}

fn project_ref(id: ProjectId) -> ObjectRef {
    ObjectRef::new(ObjectType::Project, id.0)
}

/// The project list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectFilters {
    /// Only these projects: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the project of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    project_name: Option<String>,
}

/// Projects the caller can read, newest first.
#[utoipa::path(get, path = "/v1/project", tag = "Projects", params(Page, ProjectFilters, OrgName),
    responses((status = 200, body = ListResponse<Project>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<ProjectFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<Project>>> {
    Ok(Json(ListResponse { objects: list_in(&caller, &page, org.get(), f.ids, f.project_name).await? }))
}

/// One page of the projects the caller can read, newest first (`GET /v1/project`,
/// `POST /api/project/get`).
pub(crate) async fn list_in(
    caller: &Caller,
    page: &Page,
    org_name: Option<&str>,
    ids: Vec<Uuid>,
    name: Option<String>,
) -> ApiResult<Vec<Project>> {
    let scope = caller.list_scope(org_name).await?;
    let filter = ProjectFilter { orgs: scope.orgs().to_vec(), ids, name };
    let (limit, cursor) = (page.limit(), page.cursor()?);
    let mut tx = caller.state().read_scope(&scope).await?;
    let key = match cursor.id() {
        Some(id) if scope.visible(Permission::Read, project_ref(ProjectId(id))) => {
            tx.get_project(ProjectId(id)).await?.map(|p| p.page_key())
        }
        _ => None,
    };
    let req = cursor.resolve(limit, key)?;
    let rows = fill!(req, |w| tx.list_projects(&filter, &w), |p: &ProjectRecord| scope
        .visible(Permission::Read, project_ref(p.id)));
    Ok(rows.iter().map(dto::project).collect())
}

/// Creates a project, or returns the org's existing project of that name (200,
/// with `x-bt-found-existing: true`) when the caller can read it.
#[utoipa::path(post, path = "/v1/project", tag = "Projects", request_body = CreateProject,
    responses((status = 200, body = Project)))]
pub async fn create(caller: Caller, Body(body): Body<CreateProject>) -> ApiResult<Written<Project>> {
    create_or_replace(&caller, body, false).await
}

/// Creates a project, or replaces the description of the org's existing project of
/// that name (needs `update` on it).
#[utoipa::path(put, path = "/v1/project", tag = "Projects", request_body = CreateProject,
    responses((status = 200, body = Project)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateProject>) -> ApiResult<Written<Project>> {
    create_or_replace(&caller, body, true).await
}

/// `POST` (and, with `replace`, `PUT`) `/v1/project`; also `POST /api/project/register`.
pub(crate) async fn create_or_replace(
    caller: &Caller,
    body: CreateProject,
    replace: bool,
) -> ApiResult<Written<Project>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    let org = caller.org(body.org_name.as_deref()).await?;
    let existing_readable = |p: &ProjectRecord| caller.can(Permission::Read, project_ref(p.id));
    let org_ref = ObjectRef::new(ObjectType::Organization, org.id.0);
    // Looking up by name first lets a reader "create-or-get" an existing project, as
    // the SDK does on every `init`, without needing create permission.
    let found = {
        let scope = caller.list_scope(Some(&org.name)).await?;
        let mut tx = caller.state().read_scope(&scope).await?;
        tx.find_project_by_name(org.id, name.as_str()).await?.filter(|p| existing_readable(p))
    };
    match found {
        Some(p) if replace => {
            let permit = caller.require(Permission::Update, project_ref(p.id)).await?;
            let mut w = caller.state().write(&permit).await?;
            let before = w.tx().get_project(p.id).await?.ok_or_else(|| ApiError::not_found("project", p.id))?;
            let after = ProjectRecord { description: body.description, ..before.clone() };
            if after == before {
                return Ok(Written { revision: None, found_existing: true, body: dto::project(&after) });
            }
            w.update_project(&before, &after).await?;
            let rev = w.commit().await?;
            return Ok(Written { revision: Some(rev), found_existing: true, body: dto::project(&after) });
        }
        Some(p) => return Ok(Written::existing(dto::project(&p))),
        None => {}
    }
    // Into a project group: the group must be one the caller may change, and `create`
    // of a project is decided on all projects of the group (which sits under
    // org_project, so a grant there counts too).
    let group = match body.project_group_name.as_deref().filter(|g| !g.is_empty()) {
        None => None,
        Some(gn) => {
            let missing = || ApiError::NotFound(format!("project group `{gn}` not found"));
            let scope = caller.list_scope(Some(&org.name)).await?;
            let mut tx = caller.state().read_scope(&scope).await?;
            let g = tx.find_admin(AdminKind::ProjectGroup, org_ref, gn).await?.ok_or_else(missing)?;
            let group_ref = ObjectRef::new(ObjectType::ProjectGroup, g.id);
            caller.require(Permission::Update, group_ref).await.map_err(|e| match e {
                ApiError::NotFound(_) => missing(),
                e => e,
            })?;
            Some(g)
        }
    };
    let parent = match &group {
        Some(g) => ObjectRef::new(ObjectType::ProjectGroupProjects, g.id),
        None => org_ref,
    };
    let permit = caller.require_create(ObjectType::Project, parent).await?;
    let mut w = caller.state().write(&permit).await?;
    if let Some(g) = &group {
        // The group's `update`, again under the write lock.
        caller.require(Permission::Update, ObjectRef::new(ObjectType::ProjectGroup, g.id)).await?;
    }
    if let Some(p) = w.tx().find_project_by_name(org.id, name.as_str()).await? {
        return if existing_readable(&p) {
            Ok(Written::existing(dto::project(&p)))
        } else {
            Err(ApiError::BadRequest {
                code: crate::error::ErrorCode::NameTaken,
                message: format!("a project named `{name}` already exists"),
            })
        };
    }
    let p = ProjectRecord {
        id: ProjectId::generate(),
        org_id: org.id,
        name: name.into_inner(),
        description: body.description,
        user_id: Some(caller.user.id),
        settings: None,
        created: w.now(),
    };
    w.create_project(&p).await?;
    if let Some(g) = &group {
        w.add_group_project(g, p.id).await?;
        w.audit(crate::access::AuditEvent::<(), _> {
            org: org.id,
            event_type: "project_group.updated",
            resource_type: "project_group",
            resource_id: Some(g.id),
            resource_name: Some(&g.name),
            before: None,
            after: Some(&serde_json::json!({"added_member_projects": [p.id]})),
        })
        .await?;
    }
    let out = dto::project(&p);
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// One project.
#[utoipa::path(get, path = "/v1/project/{project_id}", tag = "Projects",
    params(("project_id" = uuid::Uuid, Path)), responses((status = 200, body = Project)))]
pub async fn retrieve(caller: Caller, Path(id): Path<ProjectId>) -> ApiResult<Json<Project>> {
    let permit = caller.require(Permission::Read, project_ref(id)).await?;
    // Served from the replica's copy when it has one: the change feed drops it at
    // every change to the project.
    let index = caller.state().index();
    let p = match index.cached_project(id.0) {
        Some(p) => p,
        None => {
            let epoch = index.project_epoch();
            let mut tx = caller.state().read(&permit).await?;
            let p = tx.get_project(id).await?.ok_or_else(|| ApiError::not_found("project", id))?;
            index.cache_project(p, epoch)
        }
    };
    Ok(Json(dto::project(&p)))
}

/// Changes a project's name, description, settings (`settings` replaces all) or
/// recorded creator (`user_id`, a member of the project's organization); needs
/// `update` on the project. An absent body changes nothing.
#[utoipa::path(patch, path = "/v1/project/{project_id}", tag = "Projects",
    params(("project_id" = uuid::Uuid, Path)), request_body = Option<PatchProject>,
    responses((status = 200, body = Project)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<ProjectId>,
    Body(body): Body<PatchProject>,
) -> ApiResult<Written<Project>> {
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    if let Some(s) = &body.settings {
        check_settings(s)?;
    }
    let permit = caller.require(Permission::Update, project_ref(id)).await?;
    let mut w = caller.state().write(&permit).await?;
    let before = w.tx().get_project(id).await?.ok_or_else(|| ApiError::not_found("project", id))?;
    let mut after = before.clone();
    if let Some(u) = body.user_id.map(UserId) {
        // The creator is a record, not a grant; it may name only a member of the
        // project's org (the same 400 for an unknown id and a non-member).
        if !w.tx().member_orgs(u).await?.contains(&before.org_id) {
            return Err(ApiError::invalid_body(format!(
                "`user_id`: user `{u}` is not a member of the project's organization"
            )));
        }
        after.user_id = Some(u);
    }
    if let Some(n) = name {
        after.name = n.into_inner();
    }
    if let Some(d) = body.description {
        after.description = Some(d);
    }
    if let Some(s) = body.settings {
        // The baseline must be an experiment of this project.
        if let Some(b) = s.get("baseline_experiment_id").and_then(serde_json::Value::as_str) {
            let exp = uuid::Uuid::parse_str(b).ok();
            let found = match exp {
                Some(e) => w.tx().get_object(e).await?,
                None => None,
            };
            if !found.is_some_and(|o| o.project_id == id && o.kind == castellan_store::ObjectKind::Experiment) {
                return Err(ApiError::invalid_body(format!(
                    "`settings.baseline_experiment_id`: `{b}` is not an experiment of this project"
                )));
            }
        }
        after.settings = Some(s);
    }
    if after == before {
        // Nothing to change (an absent or empty body): nothing to write or audit.
        return Ok(Written { revision: None, found_existing: false, body: dto::project(&after) });
    }
    w.update_project(&before, &after).await?;
    let out = dto::project(&after);
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// The project settings Braintrust's newest model names, with their types.
const SETTINGS: [&str; 10] = [
    "comparison_key",
    "baseline_experiment_id",
    "spanFieldOrder",
    "remote_eval_sources",
    "disable_realtime_queries",
    "default_preprocessor",
    "blind_reviews",
    "coding_agent_insights_dashboard",
    "monitor_charts_use_metrics_start",
    "require_all_human_review_scores",
];

/// Checks `settings` (which replaces all of a project's settings): an object of the
/// known fields, each of its type.
pub(crate) fn check_settings(s: &serde_json::Value) -> ApiResult<()> {
    use serde_json::Value;
    let bad = |m: String| Err(ApiError::invalid_body(m));
    let Some(m) = s.as_object() else { return bad("`settings` must be an object".into()) };
    for (k, v) in m {
        if !SETTINGS.contains(&k.as_str()) {
            return bad(format!("`settings` has an unknown field `{k}` (known: {})", SETTINGS.join(", ")));
        }
        if v.is_null() {
            continue;
        }
        let path = format!("settings.{k}");
        match k.as_str() {
            "comparison_key" => {
                if !v.as_str().is_some_and(|c| !c.trim().is_empty() && c.len() <= 1024) {
                    return bad(format!(
                        "`{path}` must be a non-empty field path of at most 1024 bytes (e.g. `input`)"
                    ));
                }
            }
            "baseline_experiment_id" => {
                if v.as_str().is_none_or(|b| uuid::Uuid::parse_str(b).is_err()) {
                    return bad(format!("`{path}` must be an experiment id"));
                }
            }
            "spanFieldOrder" => {
                let Some(items) = v.as_array() else { return bad(format!("`{path}` must be an array")) };
                for (i, item) in items.iter().enumerate() {
                    let Some(o) = item.as_object() else { return bad(format!("`{path}[{i}]` must be an object")) };
                    for req in ["object_type", "column_id", "position"] {
                        if !o.get(req).is_some_and(Value::is_string) {
                            return bad(format!("`{path}[{i}].{req}` is required (a string)"));
                        }
                    }
                    if let Some(extra) =
                        o.keys().find(|k| !["object_type", "column_id", "position", "layout"].contains(&k.as_str()))
                    {
                        return bad(format!("`{path}[{i}]` has an unknown field `{extra}`"));
                    }
                    match o.get("layout") {
                        None | Some(Value::Null) => {}
                        Some(Value::String(l)) if l == "full" || l == "two_column" => {}
                        Some(l) => {
                            return bad(format!("`{path}[{i}].layout` must be `full` or `two_column`, got `{l}`"))
                        }
                    }
                }
            }
            "remote_eval_sources" => {
                let Some(items) = v.as_array() else { return bad(format!("`{path}` must be an array")) };
                for (i, item) in items.iter().enumerate() {
                    let Some(o) = item.as_object() else { return bad(format!("`{path}[{i}]` must be an object")) };
                    if let Some(extra) = o.keys().find(|k| !["url", "name", "description"].contains(&k.as_str())) {
                        return bad(format!("`{path}[{i}]` has an unknown field `{extra}`"));
                    }
                    let url = o.get("url").and_then(Value::as_str).unwrap_or_default();
                    super::check_url(&format!("{path}[{i}].url"), url).map_err(|_| {
                        ApiError::invalid_body(format!("`{path}[{i}].url` must be an http or https URL"))
                    })?;
                    for t in ["name", "description"] {
                        if o.get(t).is_some_and(|x| !x.is_null() && !x.is_string()) {
                            return bad(format!("`{path}[{i}].{t}` must be a string"));
                        }
                    }
                }
            }
            "default_preprocessor" => {
                let ok = match v.get("type").and_then(Value::as_str) {
                    Some("function") => v.get("id").is_some_and(Value::is_string),
                    Some("global") => v.get("name").is_some_and(Value::is_string),
                    _ => false,
                };
                if !ok {
                    return bad(format!(
                        "`{path}` must be `{{type: \"function\", id, version?}}` or `{{type: \"global\", name, function_type?}}`"
                    ));
                }
            }
            _ => {
                if !v.is_boolean() {
                    return bad(format!("`{path}` must be true or false"));
                }
            }
        }
    }
    Ok(())
}

/// Deletes a project, its contents and every grant on them.
#[utoipa::path(delete, path = "/v1/project/{project_id}", tag = "Projects",
    params(("project_id" = uuid::Uuid, Path)), responses((status = 200, body = Project)))]
pub async fn remove(caller: Caller, Path(id): Path<ProjectId>) -> ApiResult<Written<Project>> {
    let permit = caller.require(Permission::Delete, project_ref(id)).await?;
    let mut w = caller.state().write(&permit).await?;
    let p = w.tx().get_project(id).await?.ok_or_else(|| ApiError::not_found("project", id))?;
    w.delete_project(&p).await?;
    let out = dto::project(&p);
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}
