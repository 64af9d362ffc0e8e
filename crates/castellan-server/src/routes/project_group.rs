//! `/v1/project_group`: named sets of an organization's projects. A grant on
//! `(project_group_projects, G)` reaches every project of G and everything inside
//! them; a grant on `(project_group, G)` governs G's definition. Reading a group takes
//! `read` on it, renaming it or changing its projects `update`, deleting it `delete`,
//! and creating one `create` on the organization for project groups. Adding a project
//! also takes `update_acls` on that project: it extends who may reach the project.

use super::{invalid, OrgName, Written};
use crate::access::{Caller, ListScope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{format_time, CreateProjectGroup, ListResponse, PatchProjectGroup, ProjectGroup};
use castellan_core::{Name, ObjectRef, ObjectType, OrgId, Permission, ProjectId};
use castellan_store::{AdminFilter, AdminKind, AdminRecord, Tx};
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

const KIND: AdminKind = AdminKind::ProjectGroup;

fn group_ref(id: Uuid) -> ObjectRef {
    ObjectRef::new(ObjectType::ProjectGroup, id)
}

fn org_ref(org: OrgId) -> ObjectRef {
    ObjectRef::new(ObjectType::Organization, org.0)
}

/// A group as answers show it to `caller`: only the member projects it can read.
async fn wire(caller: &Caller, tx: &mut dyn Tx, a: &AdminRecord) -> ApiResult<ProjectGroup> {
    let text = |k: &str| a.data.get(k).and_then(Value::as_str).map(str::to_owned);
    let projects = tx.group_project_ids(a.id).await?;
    Ok(ProjectGroup {
        id: a.id,
        org_id: a.org_id.0,
        name: a.name.clone(),
        description: text("description"),
        created: Some(format_time(a.created)),
        user_id: text("user_id").and_then(|u| Uuid::parse_str(&u).ok()),
        deleted_at: None,
        member_projects: projects
            .into_iter()
            .filter(|p| caller.can(Permission::Read, ObjectRef::new(ObjectType::Project, p.0)))
            .map(|p| p.0)
            .collect(),
    })
}

/// The group list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectGroupFilters {
    /// Only these groups: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the group of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    project_group_name: Option<String>,
}

/// Project groups the caller can read, newest first.
#[utoipa::path(get, path = "/v1/project_group", tag = "ProjectGroups", params(Page, ProjectGroupFilters, OrgName),
    responses((status = 200, body = ListResponse<ProjectGroup>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<ProjectGroupFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<ProjectGroup>>> {
    let scope: ListScope = caller.list_scope(org.get()).await?;
    let filter = AdminFilter {
        kind: KIND,
        orgs: scope.orgs().to_vec(),
        scope_type: Some(ObjectType::Organization),
        scope_id: None,
        ids: f.ids,
        name: f.project_group_name,
    };
    let mut tx = caller.state().read_scope(&scope).await?;
    let rows =
        super::admin_page(&mut *tx, &filter, &page, |a| scope.visible(Permission::Read, group_ref(a.id))).await?;
    let mut out = Vec::with_capacity(rows.len());
    for a in &rows {
        out.push(wire(&caller, &mut *tx, a).await?);
    }
    Ok(Json(ListResponse { objects: out }))
}

async fn create_or_replace(
    caller: Caller,
    body: CreateProjectGroup,
    replace: bool,
) -> ApiResult<Written<ProjectGroup>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    let org = caller.org(body.org_name.as_deref()).await?;
    let scope = org_ref(org.id);
    let readable = |a: &AdminRecord| caller.can(Permission::Read, group_ref(a.id));
    {
        let list = caller.list_scope(Some(&org.name)).await?;
        let mut tx = caller.state().read_scope(&list).await?;
        if let Some(a) = tx.find_admin(KIND, scope, name.as_str()).await?.filter(|a| readable(a)) {
            if !replace {
                return Ok(Written::existing(wire(&caller, &mut *tx, &a).await?));
            }
        }
    }
    let existing = {
        let list = caller.list_scope(Some(&org.name)).await?;
        let mut tx = caller.state().read_scope(&list).await?;
        tx.find_admin(KIND, scope, name.as_str()).await?
    };
    let permit = match &existing {
        Some(a) if readable(a) => caller.require(Permission::Update, group_ref(a.id)).await?,
        // A name taken by a group the caller cannot read: as if it were free, the
        // create permission decides first; only then is the clash reported.
        _ => caller.require_create(ObjectType::ProjectGroup, scope).await?,
    };
    let mut w = caller.state().write(&permit).await?;
    let now = w.now();
    let out = match w.tx().find_admin(KIND, scope, name.as_str()).await? {
        Some(before) if readable(&before) && replace => {
            let mut after = before.clone();
            after.data["description"] = json!(body.description);
            if after == before {
                return Ok(Written {
                    revision: None,
                    found_existing: false,
                    body: wire(&caller, w.tx(), &before).await?,
                });
            }
            after.updated = now;
            let (b, a) = (wire(&caller, w.tx(), &before).await?, wire(&caller, w.tx(), &after).await?);
            w.update_admin(&after, &b, &a).await?;
            a
        }
        Some(a) if readable(&a) => return Ok(Written::existing(wire(&caller, w.tx(), &a).await?)),
        Some(_) => {
            return Err(ApiError::BadRequest {
                code: crate::error::ErrorCode::NameTaken,
                message: format!("a project group named `{name}` already exists"),
            })
        }
        None => {
            let a = AdminRecord {
                id: Uuid::now_v7(),
                kind: KIND,
                org_id: org.id,
                scope,
                name: name.into_inner(),
                data: json!({"description": body.description, "user_id": caller.user.id.0}),
                secret: None,
                secret_updated_at: None,
                secret_updated_by: None,
                created: now,
                updated: now,
            };
            let out = wire(&caller, w.tx(), &a).await?;
            w.create_project_group(&a, &out).await?;
            out
        }
    };
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// Creates a project group (`create` on the organization for project groups), or
/// returns the one of that name unchanged when the caller can read it.
#[utoipa::path(post, path = "/v1/project_group", tag = "ProjectGroups", request_body = CreateProjectGroup,
    responses((status = 200, body = ProjectGroup)))]
pub async fn create(caller: Caller, Body(body): Body<CreateProjectGroup>) -> ApiResult<Written<ProjectGroup>> {
    create_or_replace(caller, body, false).await
}

/// Creates a project group, or replaces the description of the one of that name
/// (`update` on it).
#[utoipa::path(put, path = "/v1/project_group", tag = "ProjectGroups", request_body = CreateProjectGroup,
    responses((status = 200, body = ProjectGroup)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateProjectGroup>) -> ApiResult<Written<ProjectGroup>> {
    create_or_replace(caller, body, true).await
}

async fn load(caller: &Caller, id: Uuid, permission: Permission) -> ApiResult<crate::access::Permit> {
    caller.require(permission, group_ref(id)).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::not_found("project group", id),
        e => e,
    })
}

/// One project group.
#[utoipa::path(get, path = "/v1/project_group/{project_group_id}", tag = "ProjectGroups",
    params(("project_group_id" = Uuid, Path)), responses((status = 200, body = ProjectGroup)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<ProjectGroup>> {
    let permit = load(&caller, id, Permission::Read).await?;
    let mut tx = caller.state().read(&permit).await?;
    let a =
        tx.get_admin(id).await?.filter(|a| a.kind == KIND).ok_or_else(|| ApiError::not_found("project group", id))?;
    Ok(Json(wire(&caller, &mut *tx, &a).await?))
}

/// Renames a project group, changes its description, or adds and removes projects
/// (`update` on the group; adding a project also `update_acls` on the project).
#[utoipa::path(patch, path = "/v1/project_group/{project_group_id}", tag = "ProjectGroups",
    params(("project_group_id" = Uuid, Path)), request_body = PatchProjectGroup,
    responses((status = 200, body = ProjectGroup)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchProjectGroup>,
) -> ApiResult<Written<ProjectGroup>> {
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    let permit = load(&caller, id, Permission::Update).await?;
    let add = body.add_member_projects.unwrap_or_default();
    let remove = body.remove_member_projects.unwrap_or_default();
    for p in &add {
        let project = ObjectRef::new(ObjectType::Project, *p);
        caller.require(Permission::UpdateAcls, project).await.map_err(|e| match e {
            ApiError::Forbidden(_) => ApiError::Forbidden(format!(
                "adding project `{p}` to a group extends who may reach it: that takes `update_acls` on the project"
            )),
            e => e,
        })?;
    }
    let mut w = caller.state().write(&permit).await?;
    // The checks above, again under the write lock: a grant revoked a moment ago on
    // another replica no longer counts.
    for p in &add {
        caller.require(Permission::UpdateAcls, ObjectRef::new(ObjectType::Project, *p)).await?;
    }
    let missing = || ApiError::not_found("project group", id);
    let before = w.tx().get_admin(id).await?.filter(|a| a.kind == KIND).ok_or_else(missing)?;
    // Audited in full: the answer lists only the projects the caller can read, the
    // audit record every member, before and after.
    let members = |ids: Vec<ProjectId>| json!({"member_projects": ids.iter().map(|p| p.0).collect::<Vec<_>>()});
    let before_members = members(w.tx().group_project_ids(id).await?);
    let mut after = before.clone();
    if let Some(n) = name {
        if n.as_str() != before.name {
            // A name taken by a group the caller cannot read is answered as for a
            // create: only a caller who may create groups learns that it is taken.
            if let Some(other) = w.tx().find_admin(KIND, before.scope, n.as_str()).await? {
                return Err(if caller.can(Permission::Read, group_ref(other.id)) {
                    ApiError::BadRequest {
                        code: crate::error::ErrorCode::NameTaken,
                        message: format!("a project group named `{n}` already exists"),
                    }
                } else {
                    super::unreadable_name_taken(&caller, ObjectType::ProjectGroup, before.org_id, n.as_str()).await
                });
            }
        }
        after.name = n.into_inner();
    }
    if let Some(d) = body.description {
        after.data["description"] = json!(d);
    }
    let mut changed = after != before;
    for p in &remove {
        changed |= w.remove_group_project(&before, ProjectId(*p)).await?;
    }
    for p in &add {
        let project = w.tx().get_project(ProjectId(*p)).await?.ok_or_else(|| ApiError::not_found("project", p))?;
        if project.org_id != before.org_id {
            return Err(ApiError::not_found("project", p));
        }
        changed |= w.add_group_project(&before, project.id).await?;
    }
    if !changed {
        return Ok(Written { revision: None, found_existing: false, body: wire(&caller, w.tx(), &before).await? });
    }
    if after != before {
        after.updated = w.now();
    }
    let audited = |a: &AdminRecord, m: &Value| json!({"name": a.name, "description": a.data.get("description"), "member_projects": m["member_projects"]});
    let after_members = members(w.tx().group_project_ids(id).await?);
    w.update_admin(&after, &audited(&before, &before_members), &audited(&after, &after_members)).await?;
    let out = wire(&caller, w.tx(), &after).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// Deletes a project group and every grant on it (`delete` on it); its projects stay.
#[utoipa::path(delete, path = "/v1/project_group/{project_group_id}", tag = "ProjectGroups",
    params(("project_group_id" = Uuid, Path)), responses((status = 200, body = ProjectGroup)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<ProjectGroup>> {
    let permit = load(&caller, id, Permission::Delete).await?;
    let mut w = caller.state().write(&permit).await?;
    let missing = || ApiError::not_found("project group", id);
    let a = w.tx().get_admin(id).await?.filter(|a| a.kind == KIND).ok_or_else(missing)?;
    let out = wire(&caller, w.tx(), &a).await?;
    w.delete_project_group(&a, &out).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}
