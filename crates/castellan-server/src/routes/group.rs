//! `/v1/group`: permission groups. Built-in groups cannot be renamed or deleted, and
//! the Owners group can never be emptied.

use super::{invalid, OrgName, Written};
use crate::access::{AuditEvent, Caller, Write};
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use crate::fill;
use crate::seed::BUILTIN_GROUPS;
use axum::Json;
use castellan_api_types::{format_time, CreateGroup, Group, ListResponse, PatchGroup};
use castellan_core::{GroupId, Name, ObjectRef, ObjectType, OrgId, Permission, UserId};
use castellan_store::{GroupFilter, GroupMember, GroupRecord, Paged, Tx};
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

fn group_ref(id: GroupId) -> ObjectRef {
    ObjectRef::new(ObjectType::Group, id.0)
}

fn is_builtin(g: &GroupRecord) -> bool {
    BUILTIN_GROUPS.iter().any(|(n, _)| *n == g.name)
}

/// A group on the wire, with its direct members.
pub async fn to_wire(tx: &mut dyn Tx, g: &GroupRecord) -> ApiResult<Group> {
    let users = tx.group_users(g.id).await?;
    let groups = tx.group_groups(g.id).await?;
    Ok(wire(g, users.into_iter().map(|u| u.0).collect(), groups.into_iter().map(|g| g.0).collect()))
}

/// Groups on the wire, their members read in one query for all of them.
pub async fn to_wire_all(tx: &mut dyn Tx, groups: &[GroupRecord]) -> ApiResult<Vec<Group>> {
    let ids: Vec<GroupId> = groups.iter().map(|g| g.id).collect();
    let mut members: HashMap<GroupId, (Vec<Uuid>, Vec<Uuid>)> = HashMap::new();
    for (g, m) in tx.group_members(&ids).await? {
        let entry = members.entry(g).or_default();
        match m {
            GroupMember::User(u) => entry.0.push(u.0),
            GroupMember::Group(x) => entry.1.push(x.0),
        }
    }
    Ok(groups
        .iter()
        .map(|g| {
            let (users, nested) = members.remove(&g.id).unwrap_or_default();
            wire(g, users, nested)
        })
        .collect())
}

fn wire(g: &GroupRecord, users: Vec<Uuid>, groups: Vec<Uuid>) -> Group {
    Group {
        id: g.id.0,
        org_id: g.org_id.0,
        user_id: g.user_id.map(|u| u.0),
        created: Some(format_time(g.created)),
        name: g.name.clone(),
        description: g.description.clone(),
        deleted_at: None,
        member_users: Some(users),
        member_groups: Some(groups),
    }
}

/// Checks that every user is a member of `org` and every group is a live group of it.
async fn check_members(tx: &mut dyn Tx, org: OrgId, users: &[Uuid], groups: &[Uuid]) -> ApiResult<()> {
    for u in users {
        if !tx.member_orgs(UserId(*u)).await?.contains(&org) {
            return Err(ApiError::bad_request(format!("user `{u}` is not a member of this organization")));
        }
    }
    for g in groups {
        if tx.get_group(GroupId(*g)).await?.is_none_or(|x| x.org_id != org) {
            return Err(ApiError::bad_request(format!("group `{g}` not found in this organization")));
        }
    }
    Ok(())
}

/// Applies membership additions and removals, recording the changes.
async fn apply_members(
    w: &mut Write,
    g: &GroupRecord,
    add_users: &[Uuid],
    remove_users: &[Uuid],
    add_groups: &[Uuid],
    remove_groups: &[Uuid],
) -> ApiResult<()> {
    check_members(w.tx(), g.org_id, add_users, add_groups).await?;
    for u in remove_users {
        w.remove_group_user(g.org_id, g.id, UserId(*u)).await?;
    }
    for m in remove_groups {
        w.remove_group_group(g.org_id, g.id, GroupId(*m)).await?;
    }
    for u in add_users {
        w.add_group_user(g.id, UserId(*u)).await?;
    }
    for m in add_groups {
        w.add_group_group(g.id, GroupId(*m)).await?;
    }
    if !remove_users.is_empty() || !remove_groups.is_empty() {
        // Asked to remove: the lockout guard holds even if nothing was there.
        w.guard(g.org_id);
    }
    Ok(())
}

async fn audit(
    w: &mut Write,
    event: &str,
    org: OrgId,
    id: GroupId,
    name: &str,
    before: Option<&Group>,
    after: Option<&Group>,
) -> ApiResult<()> {
    w.audit(AuditEvent {
        org,
        event_type: event,
        resource_type: "group",
        resource_id: Some(id.0),
        resource_name: Some(name),
        before,
        after,
    })
    .await
}

/// The group list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupFilters {
    /// Only these groups: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the group of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    group_name: Option<String>,
    /// Castellan extension: only groups whose name contains this text (ignoring the
    /// case of ASCII letters).
    #[serde(default, deserialize_with = "empty_as_none")]
    search: Option<String>,
    /// Castellan extension: `false` answers each group without its member lists
    /// (`member_users` and `member_groups` are null), to list many groups cheaply.
    #[serde(default, deserialize_with = "empty_as_none")]
    with_members: Option<bool>,
}

/// Groups the caller can read, newest first.
#[utoipa::path(get, path = "/v1/group", tag = "Groups", params(Page, GroupFilters, OrgName),
    responses((status = 200, body = ListResponse<Group>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<GroupFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<Group>>> {
    let scope = caller.list_scope(org.get()).await?;
    let filter = GroupFilter { orgs: scope.orgs().to_vec(), ids: f.ids, name: f.group_name, search: f.search };
    let (limit, cursor) = (page.limit(), page.cursor()?);
    let mut tx = caller.state().read_scope(&scope).await?;
    let key = match cursor.id() {
        Some(id) if scope.visible(Permission::Read, group_ref(GroupId(id))) => {
            tx.get_group(GroupId(id)).await?.map(|g| g.page_key())
        }
        _ => None,
    };
    let req = cursor.resolve(limit, key)?;
    let rows =
        fill!(req, |w| tx.list_groups(&filter, &w), |g: &GroupRecord| scope.visible(Permission::Read, group_ref(g.id)));
    let objects = if f.with_members == Some(false) {
        rows.iter()
            .map(|g| Group { member_users: None, member_groups: None, ..wire(g, Vec::new(), Vec::new()) })
            .collect()
    } else {
        to_wire_all(&mut *tx, &rows).await?
    };
    Ok(Json(ListResponse { objects }))
}

async fn create_or_replace(caller: Caller, body: CreateGroup, replace: bool) -> ApiResult<Written<Group>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    let org = caller.org(body.org_name.as_deref()).await?;
    let org_ref = ObjectRef::new(ObjectType::Organization, org.id.0);
    let users = body.member_users.unwrap_or_default();
    let groups = body.member_groups.unwrap_or_default();
    let existing = {
        let scope = caller.list_scope(Some(&org.name)).await?;
        let mut tx = caller.state().read_scope(&scope).await?;
        tx.find_group_by_name(org.id, name.as_str()).await?
    };
    let existing = match existing {
        Some(g) if !caller.can(Permission::Read, group_ref(g.id)) => {
            return Err(super::unreadable_name_taken(&caller, ObjectType::Group, org.id, name.as_str()).await)
        }
        other => other,
    };
    if let Some(g) = existing {
        if !replace {
            let permit = caller.require(Permission::Read, group_ref(g.id)).await?;
            let mut tx = caller.state().read(&permit).await?;
            return Ok(Written::existing(to_wire(&mut *tx, &g).await?));
        }
        let permit = caller.require(Permission::Update, group_ref(g.id)).await?;
        let mut w = caller.state().write(&permit).await?;
        let g = w.tx().get_group(g.id).await?.ok_or_else(|| ApiError::not_found("group", g.id))?;
        let before = to_wire(w.tx(), &g).await?;
        let mut after_rec = g.clone();
        after_rec.description = body.description;
        w.update_group(&after_rec).await?;
        let cur_users = before.member_users.clone().unwrap_or_default();
        let cur_groups = before.member_groups.clone().unwrap_or_default();
        let rm_users: Vec<Uuid> = cur_users.iter().filter(|u| !users.contains(u)).copied().collect();
        let rm_groups: Vec<Uuid> = cur_groups.iter().filter(|x| !groups.contains(x)).copied().collect();
        apply_members(&mut w, &after_rec, &users, &rm_users, &groups, &rm_groups).await?;
        let after = to_wire(w.tx(), &after_rec).await?;
        audit(&mut w, "group.updated", org.id, g.id, &g.name, Some(&before), Some(&after)).await?;
        let rev = w.commit().await?;
        return Ok(Written::at(rev, after));
    }
    let permit = caller.require_create(ObjectType::Group, org_ref).await?;
    let mut w = caller.state().write(&permit).await?;
    let g = GroupRecord {
        id: GroupId::generate(),
        org_id: org.id,
        name: name.into_inner(),
        description: body.description,
        user_id: Some(caller.user.id),
        created: w.now(),
    };
    w.create_group(&g).await?;
    apply_members(&mut w, &g, &users, &[], &groups, &[]).await?;
    let after = to_wire(w.tx(), &g).await?;
    audit(&mut w, "group.created", org.id, g.id, &g.name, None, Some(&after)).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, after))
}

/// Creates a group (needs `create` on the organization for groups), or returns the
/// existing group of that name unchanged.
#[utoipa::path(post, path = "/v1/group", tag = "Groups", request_body = CreateGroup, responses((status = 200, body = Group)))]
pub async fn create(caller: Caller, Body(body): Body<CreateGroup>) -> ApiResult<Written<Group>> {
    create_or_replace(caller, body, false).await
}

/// Creates a group, or replaces the description and members of the existing group of
/// that name (needs `update` on it).
#[utoipa::path(put, path = "/v1/group", tag = "Groups", request_body = CreateGroup, responses((status = 200, body = Group)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateGroup>) -> ApiResult<Written<Group>> {
    create_or_replace(caller, body, true).await
}

/// One group.
#[utoipa::path(get, path = "/v1/group/{group_id}", tag = "Groups", params(("group_id" = Uuid, Path)), responses((status = 200, body = Group)))]
pub async fn retrieve(caller: Caller, Path(id): Path<GroupId>) -> ApiResult<Json<Group>> {
    let permit = caller.require(Permission::Read, group_ref(id)).await?;
    let mut tx = caller.state().read(&permit).await?;
    let g = tx.get_group(id).await?.ok_or_else(|| ApiError::not_found("group", id))?;
    Ok(Json(to_wire(&mut *tx, &g).await?))
}

/// Renames a group or changes its members (needs `update` on it).
#[utoipa::path(patch, path = "/v1/group/{group_id}", tag = "Groups", params(("group_id" = Uuid, Path)), request_body = Option<PatchGroup>,
    responses((status = 200, body = Group)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<GroupId>,
    Body(body): Body<PatchGroup>,
) -> ApiResult<Written<Group>> {
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    let permit = caller.require(Permission::Update, group_ref(id)).await?;
    let mut w = caller.state().write(&permit).await?;
    let g = w.tx().get_group(id).await?.ok_or_else(|| ApiError::not_found("group", id))?;
    let before = to_wire(w.tx(), &g).await?;
    let mut rec = g.clone();
    if let Some(n) = name {
        if is_builtin(&g) && n.as_str() != g.name {
            return Err(ApiError::BadRequest {
                code: crate::error::ErrorCode::Protected,
                message: format!("the built-in group `{}` cannot be renamed", g.name),
            });
        }
        rec.name = n.into_inner();
    }
    if let Some(d) = body.description {
        rec.description = Some(d);
    }
    if rec != g {
        w.update_group(&rec).await?;
    }
    apply_members(
        &mut w,
        &rec,
        &body.add_member_users.unwrap_or_default(),
        &body.remove_member_users.unwrap_or_default(),
        &body.add_member_groups.unwrap_or_default(),
        &body.remove_member_groups.unwrap_or_default(),
    )
    .await?;
    let after = to_wire(w.tx(), &rec).await?;
    if after == before {
        return Ok(Written { revision: None, found_existing: false, body: after });
    }
    audit(&mut w, "group.updated", g.org_id, id, &rec.name, Some(&before), Some(&after)).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, after))
}

/// Deletes a group, its memberships and every grant to or on it (needs `delete` on
/// it). Built-in groups cannot be deleted.
#[utoipa::path(delete, path = "/v1/group/{group_id}", tag = "Groups", params(("group_id" = Uuid, Path)), responses((status = 200, body = Group)))]
pub async fn remove(caller: Caller, Path(id): Path<GroupId>) -> ApiResult<Written<Group>> {
    let permit = caller.require(Permission::Delete, group_ref(id)).await?;
    let mut w = caller.state().write(&permit).await?;
    let g = w.tx().get_group(id).await?.ok_or_else(|| ApiError::not_found("group", id))?;
    if is_builtin(&g) {
        return Err(ApiError::BadRequest {
            code: crate::error::ErrorCode::Protected,
            message: format!("the built-in group `{}` cannot be deleted", g.name),
        });
    }
    let before = to_wire(w.tx(), &g).await?;
    w.delete_group(&g).await?;
    audit(&mut w, "group.deleted", g.org_id, id, &g.name, Some(&before), None).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, before))
}
