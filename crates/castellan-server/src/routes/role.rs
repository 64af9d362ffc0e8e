//! `/v1/role`: named sets of permissions that may inherit other roles. System roles
//! (`org_id` null, such as `Owner`) are listed to everyone and cannot be changed.

use super::{invalid, OrgName, Written};
use crate::access::{AuditEvent, Caller, Write};
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use crate::fill;
use axum::Json;
use castellan_api_types::{format_time, CreateRole, ListResponse, MemberPermission, PatchRole, Role};
use castellan_core::{Name, ObjectRef, ObjectType, OrgId, Permission, RoleId};
use castellan_store::{Paged, RoleFilter, RolePermission, RoleRecord, Tx};
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace)).routes(routes!(retrieve, update, remove))
}

fn role_ref(id: RoleId) -> ObjectRef {
    ObjectRef::new(ObjectType::Role, id.0)
}

fn system_role_error(r: &RoleRecord) -> ApiError {
    ApiError::Forbidden(format!("the system role `{}` cannot be changed", r.name))
}

/// A role on the wire, with its own permissions and inherited roles.
pub async fn to_wire(tx: &mut dyn Tx, r: &RoleRecord) -> ApiResult<Role> {
    let perms = tx.role_permissions(r.id).await?;
    let roles = tx.role_roles(r.id).await?;
    Ok(wire(r, perms, roles))
}

/// Roles on the wire, their contents read in two queries for all of them.
async fn to_wire_all(tx: &mut dyn Tx, records: &[RoleRecord]) -> ApiResult<Vec<Role>> {
    let ids: Vec<RoleId> = records.iter().map(|r| r.id).collect();
    let (perms, inherits) = tx.role_contents(&ids).await?;
    let mut perms_of: HashMap<RoleId, Vec<RolePermission>> = HashMap::new();
    for (r, p) in perms {
        perms_of.entry(r).or_default().push(p);
    }
    let mut roles_of: HashMap<RoleId, Vec<RoleId>> = HashMap::new();
    for (r, m) in inherits {
        roles_of.entry(r).or_default().push(m);
    }
    Ok(records
        .iter()
        .map(|r| wire(r, perms_of.remove(&r.id).unwrap_or_default(), roles_of.remove(&r.id).unwrap_or_default()))
        .collect())
}

fn wire(r: &RoleRecord, perms: Vec<RolePermission>, roles: Vec<RoleId>) -> Role {
    Role {
        id: r.id.0,
        org_id: r.org_id.map(|o| o.0),
        user_id: r.user_id.map(|u| u.0),
        created: Some(format_time(r.created)),
        name: r.name.clone(),
        description: r.description.clone(),
        deleted_at: None,
        member_permissions: Some(
            perms
                .into_iter()
                .map(|p| MemberPermission { permission: p.permission, restrict_object_type: p.restrict_object_type })
                .collect(),
        ),
        member_roles: Some(roles.into_iter().map(|r| r.0).collect()),
    }
}

fn to_pair(m: &MemberPermission) -> RolePermission {
    RolePermission { permission: m.permission, restrict_object_type: m.restrict_object_type }
}

async fn check_roles(tx: &mut dyn Tx, org: OrgId, roles: &[Uuid]) -> ApiResult<()> {
    for r in roles {
        if tx.get_role(RoleId(*r)).await?.is_none_or(|x| x.org_id.is_some_and(|o| o != org)) {
            return Err(ApiError::bad_request(format!("role `{r}` not found in this organization")));
        }
    }
    Ok(())
}

async fn apply_members(
    w: &mut Write,
    r: &RoleRecord,
    add_perms: &[MemberPermission],
    remove_perms: &[MemberPermission],
    add_roles: &[Uuid],
    remove_roles: &[Uuid],
) -> ApiResult<()> {
    let org = r.org_id.ok_or_else(|| system_role_error(r))?;
    check_roles(w.tx(), org, add_roles).await?;
    for p in remove_perms {
        w.remove_role_permission(org, r.id, to_pair(p)).await?;
    }
    for m in remove_roles {
        w.remove_role_role(org, r.id, RoleId(*m)).await?;
    }
    for p in add_perms {
        w.add_role_permission(r.id, to_pair(p)).await?;
    }
    for m in add_roles {
        w.add_role_role(r.id, RoleId(*m)).await?;
    }
    if !remove_perms.is_empty() || !remove_roles.is_empty() {
        // Asked to remove: the lockout guard holds even if nothing was there.
        w.guard(org);
    }
    Ok(())
}

async fn audit(
    w: &mut Write,
    event: &str,
    org: OrgId,
    r: &RoleRecord,
    before: Option<&Role>,
    after: Option<&Role>,
) -> ApiResult<()> {
    w.audit(AuditEvent {
        org,
        event_type: event,
        resource_type: "role",
        resource_id: Some(r.id.0),
        resource_name: Some(&r.name),
        before,
        after,
    })
    .await
}

/// The role list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoleFilters {
    /// Only these roles: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the roles of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    role_name: Option<String>,
}

/// System roles and the roles the caller can read, newest first.
#[utoipa::path(get, path = "/v1/role", tag = "Roles", params(Page, RoleFilters, OrgName),
    responses((status = 200, body = ListResponse<Role>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<RoleFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<Role>>> {
    let scope = caller.list_scope(org.get()).await?;
    let filter = RoleFilter {
        orgs: scope.orgs().to_vec(),
        include_system: !scope.orgs().is_empty(),
        ids: f.ids,
        name: f.role_name,
    };
    let visible = |r: &RoleRecord| r.org_id.is_none() || scope.visible(Permission::Read, role_ref(r.id));
    let (limit, cursor) = (page.limit(), page.cursor()?);
    let mut tx = caller.state().read_scope(&scope).await?;
    let key = match cursor.id() {
        Some(id) => tx
            .get_role(RoleId(id))
            .await?
            .filter(|r| visible(r) && r.org_id.is_none_or(|o| filter.orgs.contains(&o)))
            .map(|r| r.page_key()),
        None => None,
    };
    let req = cursor.resolve(limit, key)?;
    let rows = fill!(req, |w| tx.list_roles(&filter, &w), visible);
    Ok(Json(ListResponse { objects: to_wire_all(&mut *tx, &rows).await? }))
}

async fn create_or_replace(caller: Caller, body: CreateRole, replace: bool) -> ApiResult<Written<Role>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    let org = caller.org(body.org_name.as_deref()).await?;
    let perms = body.member_permissions.unwrap_or_default();
    let roles = body.member_roles.unwrap_or_default();
    let existing = {
        let scope = caller.list_scope(Some(&org.name)).await?;
        let mut tx = caller.state().read_scope(&scope).await?;
        tx.find_role_by_name(Some(org.id), name.as_str()).await?
    };
    let existing = match existing {
        Some(r) if !caller.can(Permission::Read, role_ref(r.id)) => {
            return Err(super::unreadable_name_taken(&caller, ObjectType::Role, org.id, name.as_str()).await)
        }
        other => other,
    };
    if let Some(r) = existing {
        if !replace {
            let permit = caller.require(Permission::Read, role_ref(r.id)).await?;
            let mut tx = caller.state().read(&permit).await?;
            return Ok(Written::existing(to_wire(&mut *tx, &r).await?));
        }
        let permit = caller.require(Permission::Update, role_ref(r.id)).await?;
        let mut w = caller.state().write(&permit).await?;
        let r = w.tx().get_role(r.id).await?.ok_or_else(|| ApiError::not_found("role", r.id))?;
        let before = to_wire(w.tx(), &r).await?;
        let mut rec = r.clone();
        rec.description = body.description;
        w.update_role(&rec).await?;
        let cur_perms = before.member_permissions.clone().unwrap_or_default();
        let cur_roles = before.member_roles.clone().unwrap_or_default();
        let rm_perms: Vec<MemberPermission> = cur_perms.iter().filter(|p| !perms.contains(p)).copied().collect();
        let rm_roles: Vec<Uuid> = cur_roles.iter().filter(|x| !roles.contains(x)).copied().collect();
        apply_members(&mut w, &rec, &perms, &rm_perms, &roles, &rm_roles).await?;
        let after = to_wire(w.tx(), &rec).await?;
        audit(&mut w, "role.updated", org.id, &rec, Some(&before), Some(&after)).await?;
        let rev = w.commit().await?;
        return Ok(Written::at(rev, after));
    }
    let permit = caller.require_create(ObjectType::Role, ObjectRef::new(ObjectType::Organization, org.id.0)).await?;
    let mut w = caller.state().write(&permit).await?;
    let r = RoleRecord {
        id: RoleId::generate(),
        org_id: Some(org.id),
        name: name.into_inner(),
        description: body.description,
        user_id: Some(caller.user.id),
        created: w.now(),
    };
    w.create_role(&r).await?;
    apply_members(&mut w, &r, &perms, &[], &roles, &[]).await?;
    let after = to_wire(w.tx(), &r).await?;
    audit(&mut w, "role.created", org.id, &r, None, Some(&after)).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, after))
}

/// Creates a role (needs `create` on the organization for roles), or returns the
/// existing role of that name unchanged.
#[utoipa::path(post, path = "/v1/role", tag = "Roles", request_body = CreateRole, responses((status = 200, body = Role)))]
pub async fn create(caller: Caller, Body(body): Body<CreateRole>) -> ApiResult<Written<Role>> {
    create_or_replace(caller, body, false).await
}

/// Creates a role, or replaces the permissions and inherited roles of the existing
/// role of that name (needs `update` on it).
#[utoipa::path(put, path = "/v1/role", tag = "Roles", request_body = CreateRole, responses((status = 200, body = Role)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateRole>) -> ApiResult<Written<Role>> {
    create_or_replace(caller, body, true).await
}

/// Loads a role the caller may read: a system role, or an org role it can read.
async fn readable(caller: &Caller, id: RoleId) -> ApiResult<(RoleRecord, Role)> {
    let scope = caller.list_scope(None).await?;
    let mut tx = caller.state().read_scope(&scope).await?;
    let r = tx.get_role(id).await?.ok_or_else(|| ApiError::not_found("role", id))?;
    if r.org_id.is_some() {
        caller.require(Permission::Read, role_ref(id)).await?;
    } else if scope.orgs().is_empty() {
        return Err(ApiError::not_found("role", id));
    }
    let wire = to_wire(&mut *tx, &r).await?;
    Ok((r, wire))
}

/// One role.
#[utoipa::path(get, path = "/v1/role/{role_id}", tag = "Roles", params(("role_id" = Uuid, Path)), responses((status = 200, body = Role)))]
pub async fn retrieve(caller: Caller, Path(id): Path<RoleId>) -> ApiResult<Json<Role>> {
    Ok(Json(readable(&caller, id).await?.1))
}

/// Renames a role or changes its permissions and inherited roles (needs `update` on it).
#[utoipa::path(patch, path = "/v1/role/{role_id}", tag = "Roles", params(("role_id" = Uuid, Path)), request_body = Option<PatchRole>,
    responses((status = 200, body = Role)))]
pub async fn update(caller: Caller, Path(id): Path<RoleId>, Body(body): Body<PatchRole>) -> ApiResult<Written<Role>> {
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    let (r, _) = readable(&caller, id).await?;
    if r.org_id.is_none() {
        return Err(system_role_error(&r));
    }
    let permit = caller.require(Permission::Update, role_ref(id)).await?;
    let mut w = caller.state().write(&permit).await?;
    let r = w.tx().get_role(id).await?.ok_or_else(|| ApiError::not_found("role", id))?;
    let org = r.org_id.ok_or_else(|| system_role_error(&r))?;
    let before = to_wire(w.tx(), &r).await?;
    let mut rec = r.clone();
    if let Some(n) = name {
        rec.name = n.into_inner();
    }
    if let Some(d) = body.description {
        rec.description = Some(d);
    }
    if rec != r {
        w.update_role(&rec).await?;
    }
    apply_members(
        &mut w,
        &rec,
        &body.add_member_permissions.unwrap_or_default(),
        &body.remove_member_permissions.unwrap_or_default(),
        &body.add_member_roles.unwrap_or_default(),
        &body.remove_member_roles.unwrap_or_default(),
    )
    .await?;
    let after = to_wire(w.tx(), &rec).await?;
    if after == before {
        return Ok(Written { revision: None, found_existing: false, body: after });
    }
    audit(&mut w, "role.updated", org, &rec, Some(&before), Some(&after)).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, after))
}

/// Deletes a role and every grant of it (needs `delete` on it).
#[utoipa::path(delete, path = "/v1/role/{role_id}", tag = "Roles", params(("role_id" = Uuid, Path)), responses((status = 200, body = Role)))]
pub async fn remove(caller: Caller, Path(id): Path<RoleId>) -> ApiResult<Written<Role>> {
    let (r, _) = readable(&caller, id).await?;
    if r.org_id.is_none() {
        return Err(system_role_error(&r));
    }
    let permit = caller.require(Permission::Delete, role_ref(id)).await?;
    let mut w = caller.state().write(&permit).await?;
    let r = w.tx().get_role(id).await?.ok_or_else(|| ApiError::not_found("role", id))?;
    let org = r.org_id.ok_or_else(|| system_role_error(&r))?;
    let before = to_wire(w.tx(), &r).await?;
    w.delete_role(org, &r).await?;
    audit(&mut w, "role.deleted", org, &r, Some(&before), None).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, before))
}
