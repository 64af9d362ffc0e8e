//! `/v1/user`: read-only; users join organizations through membership.

use super::path_id;
use crate::access::Caller;
use crate::dto;
use crate::error::{ApiError, ApiResult};
use crate::extract::Params;
use crate::fill;
use axum::extract::Path;
use axum::Json;
use castellan_api_types::{ListResponse, User};
use castellan_core::{ObjectType, Permission, UserId};
use castellan_store::{Paged, UserFilter};
use utoipa_axum::{router::OpenApiRouter, routes};

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(retrieve))
}

/// Members of the caller's organizations (where it may read members), newest first.
#[utoipa::path(get, path = "/v1/user", tag = "Users",
    params(("limit" = Option<usize>, Query), ("starting_after" = Option<uuid::Uuid>, Query), ("ending_before" = Option<uuid::Uuid>, Query),
           ("ids" = Option<Vec<uuid::Uuid>>, Query), ("given_name" = Option<Vec<String>>, Query), ("family_name" = Option<Vec<String>>, Query),
           ("email" = Option<Vec<String>>, Query), ("org_name" = Option<String>, Query)),
    responses((status = 200, body = ListResponse<User>)))]
pub async fn list(caller: Caller, q: Params) -> ApiResult<Json<ListResponse<User>>> {
    let scope = caller.list_scope(q.str("org_name")).await?;
    let filter = UserFilter {
        orgs: scope.orgs_where(Permission::Read, ObjectType::OrgMember),
        ids: q.uuids("ids")?,
        given_names: q.list("given_name"),
        family_names: q.list("family_name"),
        emails: q.list("email"),
    };
    let limit = q.limit()?;
    let cursor = q.cursor_id()?;
    let mut tx = caller.state().read_scope(&scope).await?;
    let key = match cursor.id() {
        Some(id) => {
            let member_orgs = tx.member_orgs(UserId(id)).await?;
            if member_orgs.iter().any(|o| filter.orgs.contains(o)) {
                tx.get_user(UserId(id)).await?.map(|u| u.page_key())
            } else {
                None
            }
        }
        None => None,
    };
    let req = cursor.resolve(limit, key)?;
    let rows = fill!(req, |w| tx.list_users(&filter, &w), |_| true);
    Ok(Json(ListResponse { objects: rows.iter().map(dto::user).collect() }))
}

/// One user: oneself, or a member of an org where the caller may read members.
#[utoipa::path(get, path = "/v1/user/{user_id}", tag = "Users",
    params(("user_id" = uuid::Uuid, Path)), responses((status = 200, body = User)))]
pub async fn retrieve(caller: Caller, Path(id): Path<String>) -> ApiResult<Json<User>> {
    let id = UserId(path_id("user_id", &id)?);
    if id == caller.user.id {
        return Ok(Json(dto::user(&caller.user)));
    }
    let scope = caller.list_scope(None).await?;
    let readable = scope.orgs_where(Permission::Read, ObjectType::OrgMember);
    let mut tx = caller.state().read_scope(&scope).await?;
    let shared = tx.member_orgs(id).await?.iter().any(|o| readable.contains(o));
    if !shared {
        return Err(ApiError::not_found("user", id));
    }
    let user = tx.get_user(id).await?.ok_or_else(|| ApiError::not_found("user", id))?;
    Ok(Json(dto::user(&user)))
}
