//! `/v1/user`: read-only; users join organizations through membership.

use super::OrgName;
use crate::access::Caller;
use crate::dto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, without_empties, Page, Path, Query};
use crate::fill;
use axum::Json;
use castellan_api_types::{ListResponse, User};
use castellan_core::{ObjectType, Permission, UserId};
use castellan_store::{Paged, UserFilter, UserKind};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(retrieve))
}

/// The user list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilters {
    /// Only these users: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only users with one of these given names.
    #[serde(default, deserialize_with = "without_empties")]
    given_name: Vec<String>,
    /// Only users with one of these family names.
    #[serde(default, deserialize_with = "without_empties")]
    family_name: Vec<String>,
    /// Only users with one of these email addresses.
    #[serde(default, deserialize_with = "without_empties")]
    email: Vec<String>,
    /// Castellan extension: only users whose email, given name, family name or full
    /// name contains this text (ignoring the case of ASCII letters).
    #[serde(default, deserialize_with = "empty_as_none")]
    search: Option<String>,
    /// Castellan extension: only people (`user`) or only service accounts
    /// (`service_account`).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<String>)]
    user_type: Option<UserType>,
}

/// A kind of user, as the `user_type` filter names it.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    /// A person.
    User,
    /// A service account.
    ServiceAccount,
}

/// Members of the caller's organizations (where it may read members), newest first.
#[utoipa::path(get, path = "/v1/user", tag = "Users", params(Page, UserFilters, OrgName),
    responses((status = 200, body = ListResponse<User>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<UserFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<User>>> {
    let scope = caller.list_scope(org.get()).await?;
    let filter = UserFilter {
        orgs: scope.orgs_where(Permission::Read, ObjectType::OrgMember),
        ids: f.ids,
        given_names: f.given_name,
        family_names: f.family_name,
        emails: f.email,
        search: f.search,
        kind: f.user_type.map(|t| match t {
            UserType::User => UserKind::User,
            UserType::ServiceAccount => UserKind::ServiceAccount,
        }),
    };
    let (limit, cursor) = (page.limit(), page.cursor()?);
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
pub async fn retrieve(caller: Caller, Path(id): Path<UserId>) -> ApiResult<Json<User>> {
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
