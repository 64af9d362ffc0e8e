//! `/v1/acl`: grants, plus Castellan's explain, who-can and what-can.

use super::{OrgName, Written};
use crate::access::{Caller, Write};
use crate::dto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Limit, Page, Path, Query, MAX_LIMIT};
use crate::fill;
use axum::Json;
use castellan_api_types::{
    parse_time, Acl, AclBatchUpdate, AclBatchUpdateResponse, AclItem, Explanation, GrantPathOut, IdPage, ListResponse,
    NearMissOut, ObjectRefOut,
};
use castellan_authz::{NearMissReason, Subject};
use castellan_core::{AclId, GroupId, ObjectRef, ObjectType, OrgId, Permission, RoleId, UserId};
use castellan_store::{acl_content_key, AclFilter, AclRecord, Paged, Tx};
use serde::Deserialize;
use std::collections::BTreeSet;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(list, create, replace, find_and_delete))
        .routes(routes!(list_org))
        .routes(routes!(batch_update))
        // The older spelling the Python SDK still uses.
        .route("/v1/acl/batch-update", axum::routing::post(batch_update))
        .routes(routes!(explain))
        .routes(routes!(who_can))
        .routes(routes!(what_can))
        .routes(routes!(retrieve, remove))
}

/// An `AclItem` whose shape is valid: exactly one grantee, exactly one grant, a
/// restriction only on a direct permission, an expiry in the future.
struct Shape {
    object: ObjectRef,
    user_id: Option<UserId>,
    group_id: Option<GroupId>,
    permission: Option<Permission>,
    role_id: Option<RoleId>,
    restrict: Option<ObjectType>,
    expires_at: Option<i64>,
}

fn shape(item: &AclItem, now: i64) -> ApiResult<Shape> {
    let bad = |m: &str| ApiError::bad_request(m);
    match (item.user_id, item.group_id) {
        (Some(_), Some(_)) | (None, None) => return Err(bad("exactly one of `user_id` and `group_id` must be set")),
        _ => {}
    }
    match (item.permission, item.role_id) {
        (Some(_), Some(_)) | (None, None) => return Err(bad("exactly one of `permission` and `role_id` must be set")),
        _ => {}
    }
    if item.role_id.is_some() && item.restrict_object_type.is_some() {
        return Err(bad("`restrict_object_type` can only be used with `permission`, not with `role_id`"));
    }
    let expires_at = match &item.expires_at {
        None => None,
        Some(s) => {
            let t = parse_time(s).ok_or_else(|| bad(&format!("`expires_at` must be an RFC 3339 time, got `{s}`")))?;
            if t <= now {
                return Err(bad(&format!("`expires_at` `{s}` is not in the future")));
            }
            Some(t)
        }
    };
    Ok(Shape {
        object: ObjectRef::new(item.object_type, item.object_id),
        user_id: item.user_id.map(UserId),
        group_id: item.group_id.map(GroupId),
        permission: item.permission,
        role_id: item.role_id.map(RoleId),
        restrict: item.restrict_object_type,
        expires_at,
    })
}

fn content_key(s: &Shape) -> String {
    acl_content_key(
        s.object.object_type,
        s.object.object_id,
        s.user_id,
        s.group_id,
        s.permission,
        s.role_id,
        s.restrict,
    )
}

/// The org that owns an object (the caller has already been authorized on it).
fn org_of(caller: &Caller, obj: ObjectRef) -> ApiResult<OrgId> {
    caller
        .state()
        .index()
        .snapshot()
        .org_of(obj)
        .map(OrgId)
        .ok_or_else(|| ApiError::not_found(obj.object_type.as_str(), obj.object_id))
}

/// Checks the grantee and role belong to the object's org.
async fn check_references(tx: &mut dyn Tx, org: OrgId, s: &Shape) -> ApiResult<()> {
    if let Some(u) = s.user_id {
        if !tx.member_orgs(u).await?.contains(&org) {
            return Err(ApiError::bad_request(format!("user `{u}` is not a member of this organization")));
        }
    }
    if let Some(g) = s.group_id {
        if tx.get_group(g).await?.is_none_or(|g| g.org_id != org) {
            return Err(ApiError::bad_request(format!("group `{g}` not found in this organization")));
        }
    }
    if let Some(r) = s.role_id {
        if tx.get_role(r).await?.is_none_or(|r| r.org_id.is_some_and(|o| o != org)) {
            return Err(ApiError::bad_request(format!("role `{r}` not found in this organization")));
        }
    }
    Ok(())
}

/// Every (permission, restriction) a role yields, following inheritance.
async fn role_closure(tx: &mut dyn Tx, role: RoleId) -> ApiResult<Vec<(Permission, Option<ObjectType>)>> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![role];
    let mut out = BTreeSet::new();
    while let Some(r) = todo.pop() {
        if !seen.insert(r) {
            continue;
        }
        for p in tx.role_permissions(r).await? {
            out.insert((p.permission, p.restrict_object_type));
        }
        todo.extend(tx.role_roles(r).await?);
    }
    Ok(out.into_iter().collect())
}

/// Under strict delegation a grantor may only grant what it holds on the object
/// itself (for a restricted grant: what it holds on objects of that type there).
async fn check_delegation(caller: &Caller, tx: &mut dyn Tx, org: OrgId, s: &Shape) -> ApiResult<()> {
    let strict = tx
        .get_org(org)
        .await?
        .is_some_and(|o| o.settings.get("strict_delegation").and_then(|v| v.as_bool()).unwrap_or(false));
    if !strict {
        return Ok(());
    }
    let pairs = match (s.permission, s.role_id) {
        (Some(p), _) => vec![(p, s.restrict)],
        (None, Some(r)) => role_closure(tx, r).await?,
        (None, None) => vec![],
    };
    let snap = caller.state().index().snapshot();
    let now = caller.state().now();
    for (p, r) in pairs {
        if !crate::access::holds(&snap, caller.user.id.0, p, r, s.object, now) {
            return Err(crate::access::delegation_refused(p, r, s.object));
        }
    }
    Ok(())
}

/// Adds one validated grant in `w`; returns it and whether it is new.
async fn add(caller: &Caller, w: &mut Write, s: &Shape) -> ApiResult<(AclRecord, bool)> {
    let org = org_of(caller, s.object)?;
    if let Some(existing) = w.tx().find_acl(&content_key(s)).await? {
        return Ok((existing, false));
    }
    check_references(w.tx(), org, s).await?;
    check_delegation(caller, w.tx(), org, s).await?;
    let acl = AclRecord {
        id: AclId::generate(),
        org_id: org,
        object_type: s.object.object_type,
        object_id: s.object.object_id,
        user_id: s.user_id,
        group_id: s.group_id,
        permission: s.permission,
        role_id: s.role_id,
        restrict_object_type: s.restrict,
        expires_at: s.expires_at,
        created: w.now(),
    };
    w.grant(&acl).await?;
    Ok((acl, true))
}

/// Deletes one grant in `w`.
async fn delete(w: &mut Write, acl: &AclRecord) -> ApiResult<()> {
    w.revoke_grant(acl).await
}

/// The object whose grants (or whose holders) are asked about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AclObject {
    /// The object's type.
    object_type: ObjectType,
    /// The object's id (the organization's id for the organization-level types).
    object_id: Uuid,
}

impl AclObject {
    fn object(&self) -> ObjectRef {
        ObjectRef::new(self.object_type, self.object_id)
    }
}

/// The object a list of an organization's grants may be narrowed to.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AclObjectFilter {
    /// Only grants on objects of this type.
    #[serde(default, deserialize_with = "empty_as_none")]
    object_type: Option<ObjectType>,
    /// Only grants on this object.
    object_id: Option<Uuid>,
}

/// The filters of a list of grants.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AclFilters {
    /// Only grants to this user.
    user_id: Option<Uuid>,
    /// Only grants to this group.
    group_id: Option<Uuid>,
    /// Only grants of this permission.
    #[serde(default, deserialize_with = "empty_as_none")]
    permission: Option<Permission>,
    /// Only grants restricted to objects of this type.
    #[serde(default, deserialize_with = "empty_as_none")]
    restrict_object_type: Option<ObjectType>,
    /// Only grants of this role.
    role_id: Option<Uuid>,
    /// Only these grants: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
}

impl AclFilters {
    fn filter(self, orgs: Vec<OrgId>, object_type: Option<ObjectType>, object_id: Option<Uuid>) -> AclFilter {
        AclFilter {
            orgs,
            object_type,
            object_id,
            user_id: self.user_id.map(UserId),
            group_id: self.group_id.map(GroupId),
            permission: self.permission,
            role_id: self.role_id.map(RoleId),
            restrict_object_type: self.restrict_object_type,
            ids: self.ids,
        }
    }
}

/// The direct grants on one object (needs `read_acls` on it).
#[utoipa::path(get, path = "/v1/acl", tag = "Acls", params(AclObject, AclFilters, Page),
    responses((status = 200, body = ListResponse<Acl>)))]
pub async fn list(
    caller: Caller,
    Query(object): Query<AclObject>,
    Query(f): Query<AclFilters>,
    Query(page): Query<Page>,
) -> ApiResult<Json<ListResponse<Acl>>> {
    let obj = object.object();
    let permit = caller.require(Permission::ReadAcls, obj).await?;
    let org = org_of(&caller, obj)?;
    let filter = f.filter(vec![org], Some(obj.object_type), Some(obj.object_id));
    list_page(&page, filter, caller.state().read(&permit).await?).await.map(|v| Json(ListResponse { objects: v }))
}

async fn list_page(page: &Page, filter: AclFilter, mut tx: Box<dyn Tx>) -> ApiResult<Vec<Acl>> {
    let (limit, cursor) = (page.limit(), page.cursor()?);
    let key = match cursor.id() {
        Some(id) => tx.get_acl(AclId(id)).await?.filter(|a| filter.orgs.contains(&a.org_id)).map(|a| a.page_key()),
        None => None,
    };
    let req = cursor.resolve(limit, key)?;
    let rows = fill!(req, |w| tx.list_acls(&filter, &w), |_| true);
    Ok(rows.iter().map(dto::acl).collect())
}

/// Every grant in the organization (needs `read_acls` on it); a bare array.
#[utoipa::path(get, path = "/v1/acl/list_org", tag = "Acls", params(OrgName, AclObjectFilter, AclFilters, Page),
    responses((status = 200, body = Vec<Acl>)))]
pub async fn list_org(
    caller: Caller,
    Query(org): Query<OrgName>,
    Query(object): Query<AclObjectFilter>,
    Query(f): Query<AclFilters>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Vec<Acl>>> {
    let org = caller.org(org.get()).await?;
    let permit = caller.require(Permission::ReadAcls, ObjectRef::new(ObjectType::Organization, org.id.0)).await?;
    let filter = f.filter(vec![org.id], object.object_type, object.object_id);
    list_page(&page, filter, caller.state().read(&permit).await?).await.map(Json)
}

/// Grants a permission or role (needs `create_acls` on the object). An identical ACL
/// is returned as it is, with 200.
#[utoipa::path(post, path = "/v1/acl", tag = "Acls", request_body = AclItem, responses((status = 200, body = Acl)))]
pub async fn create(caller: Caller, Body(item): Body<AclItem>) -> ApiResult<Written<Acl>> {
    let s = shape(&item, caller.state().now())?;
    let permit = caller.require(Permission::CreateAcls, s.object).await?;
    let mut w = caller.state().write(&permit).await?;
    let (acl, new) = add(&caller, &mut w, &s).await?;
    if !new {
        return Ok(Written::existing(dto::acl(&acl)));
    }
    let rev = w.commit().await?;
    Ok(Written::at(rev, dto::acl(&acl)))
}

/// Braintrust's older create-or-replace, which `@braintrust/api` 0.1 calls: an ACL
/// is its contents, so this is `POST /v1/acl` (needs `create_acls` on the object; an
/// identical ACL is returned as it is).
#[utoipa::path(put, path = "/v1/acl", tag = "Acls", request_body = AclItem, responses((status = 200, body = Acl)))]
pub async fn replace(caller: Caller, body: Body<AclItem>) -> ApiResult<Written<Acl>> {
    create(caller, body).await
}

/// One ACL (needs `read_acls` on its object).
#[utoipa::path(get, path = "/v1/acl/{acl_id}", tag = "Acls", params(("acl_id" = Uuid, Path)), responses((status = 200, body = Acl)))]
pub async fn retrieve(caller: Caller, Path(id): Path<AclId>) -> ApiResult<Json<Acl>> {
    let (acl, _) = caller.state().acl_for(&caller, id, Permission::ReadAcls).await?;
    Ok(Json(dto::acl(&acl)))
}

/// Revokes an ACL (needs `delete_acls` on its object).
#[utoipa::path(delete, path = "/v1/acl/{acl_id}", tag = "Acls", params(("acl_id" = Uuid, Path)), responses((status = 200, body = Acl)))]
pub async fn remove(caller: Caller, Path(id): Path<AclId>) -> ApiResult<Written<Acl>> {
    let (_, permit) = caller.state().acl_for(&caller, id, Permission::DeleteAcls).await?;
    let mut w = caller.state().write(&permit).await?;
    let acl = w.tx().get_acl(id).await?.ok_or_else(|| ApiError::not_found("acl", id))?;
    delete(&mut w, &acl).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, dto::acl(&acl)))
}

/// Finds the ACL with these contents and revokes it (needs `delete_acls` on the object).
#[utoipa::path(delete, path = "/v1/acl", tag = "Acls", request_body = AclItem, responses((status = 200, body = Acl)))]
pub async fn find_and_delete(caller: Caller, Body(item): Body<AclItem>) -> ApiResult<Written<Acl>> {
    let mut item = item;
    item.expires_at = None;
    let s = shape(&item, caller.state().now())?;
    let permit = caller.require(Permission::DeleteAcls, s.object).await?;
    let mut w = caller.state().write(&permit).await?;
    let acl = w.tx().find_acl(&content_key(&s)).await?.ok_or_else(|| ApiError::NotFound("no acl matches".into()))?;
    delete(&mut w, &acl).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, dto::acl(&acl)))
}

/// Adds and removes many ACLs in one transaction. Every item is authorized first
/// (`create_acls` / `delete_acls` on its object); if any is refused, nothing changes.
/// Adding an existing ACL or removing a missing one is a no-op and is not listed.
#[utoipa::path(post, path = "/v1/acl/batch_update", tag = "Acls", request_body = Option<AclBatchUpdate>,
    responses((status = 200, body = AclBatchUpdateResponse)))]
pub async fn batch_update(
    caller: Caller,
    Body(body): Body<AclBatchUpdate>,
) -> ApiResult<Written<AclBatchUpdateResponse>> {
    let now = caller.state().now();
    let adds = body.add_acls.unwrap_or_default();
    let mut removes = body.remove_acls.unwrap_or_default();
    for r in &mut removes {
        r.expires_at = None;
    }
    let mut checked = Vec::new();
    for (items, perm) in [(&adds, Permission::CreateAcls), (&removes, Permission::DeleteAcls)] {
        for item in items {
            let s = shape(item, now)?;
            let permit = caller.require(perm, s.object).await?;
            checked.push((s, perm, permit));
        }
    }
    let Some((_, _, first)) = checked.first() else {
        return Ok(Written { revision: None, found_existing: false, body: empty_batch() });
    };
    let mut w = caller.state().write(first).await?;
    let mut out = empty_batch();
    // Removals first, so a batch that moves a grant (remove + add) ends with it added.
    for (s, _, _) in checked.iter().filter(|c| c.1 == Permission::DeleteAcls) {
        if let Some(acl) = w.tx().find_acl(&content_key(s)).await? {
            delete(&mut w, &acl).await?;
            out.removed_acls.push(dto::acl(&acl));
        }
    }
    for (s, _, _) in checked.iter().filter(|c| c.1 == Permission::CreateAcls) {
        let (acl, new) = add(&caller, &mut w, s).await?;
        if new {
            out.added_acls.push(dto::acl(&acl));
        }
    }
    if out.added_acls.is_empty() && out.removed_acls.is_empty() {
        return Ok(Written { revision: None, found_existing: false, body: out });
    }
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

fn empty_batch() -> AclBatchUpdateResponse {
    AclBatchUpdateResponse { added_acls: vec![], removed_acls: vec![] }
}

/// The permission an explain, who-can or what-can question is about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Held {
    /// The permission asked about.
    permission: Permission,
}

/// A page of ids in id order.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdCursor {
    /// Where the page starts: the previous page's `next_cursor`.
    cursor: Option<Uuid>,
    /// The most ids to return, 1 to 1000 (the default).
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit,
}

impl IdCursor {
    fn get(&self) -> ApiResult<(Option<Uuid>, usize)> {
        match self.limit.get() {
            0 => Err(ApiError::invalid_parameter("`limit` must be at least 1")),
            n => Ok((self.cursor, n.min(MAX_LIMIT))),
        }
    }
}

/// Whom an explanation is about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// The user (or service account) asked about (default: the caller).
    user_id: Option<Uuid>,
    /// Explain creating a child of this type under the object instead.
    #[serde(default, deserialize_with = "empty_as_none")]
    child_object_type: Option<ObjectType>,
}

/// Castellan extension: why may (or may not) a principal do `permission` on an
/// object — every deciding grant with its group and role chain, and the grants that
/// almost applied. About oneself: needs `read` on the object; about another user:
/// `read_acls` on it. With `child_object_type`, explains creating such a child.
#[utoipa::path(get, path = "/v1/acl/explain", tag = "Acls",
    params(AclObject, Held, ExplainQuery), responses((status = 200, body = Explanation)))]
pub async fn explain(
    caller: Caller,
    Query(object): Query<AclObject>,
    Query(Held { permission }): Query<Held>,
    Query(q): Query<ExplainQuery>,
) -> ApiResult<Json<Explanation>> {
    let obj = object.object();
    let user = q.user_id.unwrap_or(caller.user.id.0);
    let child = q.child_object_type;
    if user == caller.user.id.0 {
        caller.require(Permission::Read, obj).await?;
    } else {
        caller.require(Permission::ReadAcls, obj).await?;
    }
    let snap = caller.state().index().snapshot();
    let now = caller.state().now();
    let d = match child {
        Some(c) => snap.explain_create(user, c, obj, now),
        None => snap.explain(user, permission, obj, now),
    };
    let permission = if child.is_some() { Permission::Create } else { permission };
    Ok(Json(Explanation {
        allowed: d.allowed,
        user_id: user,
        permission,
        object_type: obj.object_type,
        object_id: obj.object_id,
        ancestors: snap
            .ancestors(obj)
            .into_iter()
            .map(|a| ObjectRefOut { object_type: a.object_type, object_id: a.object_id })
            .collect(),
        grants: d
            .grants
            .iter()
            .map(|g| GrantPathOut {
                acl_id: g.acl_id,
                acl_object_type: g.acl_object.object_type,
                acl_object_id: g.acl_object.object_id,
                user_id: match g.subject {
                    Subject::User(u) => Some(u),
                    Subject::Group(_) => None,
                },
                group_id: match g.subject {
                    Subject::Group(x) => Some(x),
                    Subject::User(_) => None,
                },
                group_chain: g.group_chain.clone(),
                role_chain: g.role_chain.clone(),
                permission: g.permission,
                restrict_object_type: g.restrict_object_type,
                expires_at: g.expires_at.map(castellan_api_types::format_time),
            })
            .collect(),
        near_misses: d
            .near_misses
            .iter()
            .map(|m| match m.reason {
                NearMissReason::Expired { at } => NearMissOut {
                    acl_id: m.acl_id,
                    reason: "expired".into(),
                    expired_at: Some(castellan_api_types::format_time(at)),
                    restricted_to: None,
                },
                NearMissReason::RestrictedTo(t) => NearMissOut {
                    acl_id: m.acl_id,
                    reason: "restricted".into(),
                    expired_at: None,
                    restricted_to: Some(t),
                },
            })
            .collect(),
    }))
}

/// Castellan extension: every user (or service account) that holds `permission` on
/// an object, through any group and role, in id order; complete when paged with
/// `cursor` until `next_cursor` is null. Needs `read_acls` on the object.
#[utoipa::path(get, path = "/v1/acl/who_can", tag = "Acls",
    params(AclObject, Held, IdCursor), responses((status = 200, body = IdPage)))]
pub async fn who_can(
    caller: Caller,
    Query(object): Query<AclObject>,
    Query(Held { permission }): Query<Held>,
    Query(page): Query<IdCursor>,
) -> ApiResult<Json<IdPage>> {
    let obj = object.object();
    let (cursor, limit) = page.get()?;
    caller.require(Permission::ReadAcls, obj).await?;
    let page = caller.state().index().snapshot().who_can(permission, obj, caller.state().now(), cursor, limit);
    Ok(Json(IdPage { ids: page.items, next_cursor: page.next }))
}

/// What a what-can question asks about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WhatCanQuery {
    /// The type of the objects asked about.
    object_type: ObjectType,
    /// The user (or service account) asked about (default: the caller).
    user_id: Option<Uuid>,
    /// The type of the object to look within (with `within_id`; default: the organization).
    #[serde(default, deserialize_with = "empty_as_none")]
    within_type: Option<ObjectType>,
    /// The object to look within (with `within_type`).
    within_id: Option<Uuid>,
}

/// Castellan extension: every object of `object_type` a user holds `permission` on,
/// within `within_type`/`within_id` (default: the organization), in id order;
/// complete when paged. About oneself: needs `read` on the scope; about another
/// user: `read_acls` on it.
#[utoipa::path(get, path = "/v1/acl/what_can", tag = "Acls",
    params(WhatCanQuery, Held, OrgName, IdCursor), responses((status = 200, body = IdPage)))]
pub async fn what_can(
    caller: Caller,
    Query(q): Query<WhatCanQuery>,
    Query(Held { permission }): Query<Held>,
    Query(org): Query<OrgName>,
    Query(page): Query<IdCursor>,
) -> ApiResult<Json<IdPage>> {
    let object_type = q.object_type;
    let user = q.user_id.unwrap_or(caller.user.id.0);
    let (cursor, limit) = page.get()?;
    let within = match (q.within_type, q.within_id) {
        (Some(t), Some(id)) => ObjectRef::new(t, id),
        (None, None) => ObjectRef::new(ObjectType::Organization, caller.org(org.get()).await?.id.0),
        _ => return Err(ApiError::invalid_parameter("pass both `within_type` and `within_id`, or neither")),
    };
    if user == caller.user.id.0 {
        caller.require(Permission::Read, within).await?;
    } else {
        caller.require(Permission::ReadAcls, within).await?;
    }
    let page = caller.state().index().snapshot().what_can(
        user,
        permission,
        object_type,
        Some(within),
        caller.state().now(),
        cursor,
        limit,
    );
    Ok(Json(IdPage { ids: page.items, next_cursor: page.next }))
}
