//! `/v1/api_key`: a user's own keys; owners see and manage every key of their org.

use super::{invalid, OrgName, Written};
use crate::access::Caller;
use crate::dto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use crate::fill;
use axum::Json;
use castellan_api_types::{ApiKey, CreateApiKey, CreateApiKeyOutput, ListResponse};
use castellan_core::{KeyId, Name, OrgId, UserId};
use castellan_store::{KeyFilter, KeyKind, KeyRecord, Paged, Tx, UserRecord};
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(retrieve, remove)).routes(routes!(list_org))
}

async fn with_owners(tx: &mut dyn Tx, keys: &[KeyRecord]) -> ApiResult<Vec<ApiKey>> {
    let mut ids: Vec<UserId> = keys.iter().map(|k| k.user_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let users: HashMap<UserId, UserRecord> = tx.get_users(&ids).await?.into_iter().map(|u| (u.id, u)).collect();
    Ok(keys.iter().map(|k| dto::api_key(k, users.get(&k.user_id))).collect())
}

/// The API key list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApiKeyFilters {
    /// Only these keys: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the keys of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    api_key_name: Option<String>,
}

/// The caller's API keys, plus every key of the orgs it owns, newest first.
#[utoipa::path(get, path = "/v1/api_key", tag = "ApiKeys", params(Page, ApiKeyFilters, OrgName),
    responses((status = 200, body = ListResponse<ApiKey>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<ApiKeyFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<ApiKey>>> {
    let scope = caller.list_scope(org.get()).await?;
    let owns_any = scope.orgs().iter().any(|o| scope.owns(*o));
    let filter = KeyFilter {
        kind: KeyKind::ApiKey,
        orgs: scope.orgs().to_vec(),
        user: if owns_any { None } else { Some(caller.user.id) },
        users: vec![],
        ids: f.ids,
        name: f.api_key_name,
    };
    let visible = |k: &KeyRecord| k.user_id == caller.user.id || k.org_id.is_some_and(|o| scope.owns(o));
    Ok(Json(ListResponse { objects: keys_page(&caller, &scope, &filter, &page, visible).await? }))
}

/// One page of the API keys `filter` names that `visible` accepts, with their owners;
/// a cursor naming a key the caller cannot see is refused like an unknown one.
async fn keys_page(
    caller: &Caller,
    scope: &crate::access::ListScope,
    filter: &KeyFilter,
    page: &Page,
    visible: impl Fn(&KeyRecord) -> bool,
) -> ApiResult<Vec<ApiKey>> {
    let (limit, cursor) = (page.limit(), page.cursor()?);
    let mut tx = caller.state().read_scope(scope).await?;
    let key = match cursor.id() {
        Some(id) => {
            tx.get_key(KeyId(id)).await?.filter(|k| k.kind == KeyKind::ApiKey && visible(k)).map(|k| k.page_key())
        }
        None => None,
    };
    let req = cursor.resolve(limit, key)?;
    let rows = fill!(req, |w| tx.list_keys(filter, &w), &visible);
    with_owners(&mut *tx, &rows).await
}

/// `GET /v1/organization/api_keys`'s organization and time window.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgKeyFilters {
    /// The organization, by id (default: the caller's only one, or `org_name`).
    org_id: Option<Uuid>,
    /// Only keys created at or after this time (RFC 3339).
    #[serde(default, deserialize_with = "empty_as_none")]
    created_after: Option<String>,
    /// Only keys created at or before this time (RFC 3339).
    #[serde(default, deserialize_with = "empty_as_none")]
    created_before: Option<String>,
}

/// The API keys of one organization, newest first: every key of it for its owners,
/// one's own keys in it for anyone else.
#[utoipa::path(get, path = "/v1/organization/api_keys", tag = "Organizations",
    params(Page, ApiKeyFilters, OrgKeyFilters, OrgName), responses((status = 200, body = ListResponse<ApiKey>)))]
pub async fn list_org(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<ApiKeyFilters>,
    Query(o): Query<OrgKeyFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<ApiKey>>> {
    let time = |field: &str, v: &Option<String>| -> ApiResult<Option<i64>> {
        v.as_deref()
            .map(|t| {
                castellan_api_types::parse_time(t).ok_or_else(|| {
                    crate::error::ApiError::invalid_parameter(format!("`{field}` must be an RFC 3339 time, got `{t}`"))
                })
            })
            .transpose()
    };
    let (after, before) = (time("created_after", &o.created_after)?, time("created_before", &o.created_before)?);
    let scope = caller.list_scope(org.get()).await?;
    let orgs: Vec<castellan_core::OrgId> = match o.org_id {
        Some(id) if scope.orgs().iter().any(|x| x.0 == id) => vec![castellan_core::OrgId(id)],
        Some(id) => return Err(crate::error::ApiError::NotFound(format!("organization `{id}` not found"))),
        None => vec![caller.org(org.get()).await?.id],
    };
    let the_org = orgs[0];
    let owner = scope.owns(the_org);
    let filter = KeyFilter {
        kind: KeyKind::ApiKey,
        orgs,
        user: if owner { None } else { Some(caller.user.id) },
        users: vec![],
        ids: f.ids,
        name: f.api_key_name,
    };
    let visible = |k: &KeyRecord| {
        (owner || k.user_id == caller.user.id)
            && k.org_id == Some(the_org)
            && after.is_none_or(|t| k.created >= t)
            && before.is_none_or(|t| k.created <= t)
    };
    Ok(Json(ListResponse { objects: keys_page(&caller, &scope, &filter, &page, visible).await? }))
}

/// Castellan extension: creates an API key for the caller in an org it belongs to;
/// the key acts only in that org, and stops authenticating at `expires_at` if one is
/// given. Refused for service accounts and while impersonating. The raw key is in
/// the answer and nowhere else, ever.
#[utoipa::path(post, path = "/v1/api_key", tag = "ApiKeys", request_body = CreateApiKey,
    responses((status = 200, body = CreateApiKeyOutput)))]
pub async fn create(caller: Caller, Body(body): Body<CreateApiKey>) -> ApiResult<Written<CreateApiKeyOutput>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    if caller.is_service_account() {
        return Err(ApiError::Forbidden(
            "a service account authenticates only with service tokens, which its organization's owners manage".into(),
        ));
    }
    let org = match body.org_id {
        Some(id) => caller.org_by_id(OrgId(id)).await?,
        None => caller.org(body.org_name.as_deref()).await?,
    };
    let expires_at = super::future_time("expires_at", body.expires_at.as_deref(), caller.state().now())?;
    let permit = caller.new_key_permit(org.id)?;
    caller.check_sso_for_new_key(org.id).await?;
    caller.state().limits().tokens.check(&format!("tokens:{}", caller.user.id))?;
    let mut w = caller.state().write(&permit).await?;
    let (record, raw) =
        crate::seed::mint_key(&mut w, KeyKind::ApiKey, caller.user.id, org.id, name.as_str(), expires_at).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, CreateApiKeyOutput { api_key: dto::api_key(&record, Some(&caller.user)), key: raw }))
}

/// One API key (never its secret).
#[utoipa::path(get, path = "/v1/api_key/{api_key_id}", tag = "ApiKeys",
    params(("api_key_id" = uuid::Uuid, Path)), responses((status = 200, body = ApiKey)))]
pub async fn retrieve(caller: Caller, Path(id): Path<KeyId>) -> ApiResult<Json<ApiKey>> {
    let (key, permit) = caller.state().key_for(&caller, id).await?;
    if key.kind != KeyKind::ApiKey {
        return Err(ApiError::not_found("api key", id));
    }
    let mut tx = caller.state().read(&permit).await?;
    let mut out = with_owners(&mut *tx, std::slice::from_ref(&key)).await?;
    out.pop().map(Json).ok_or_else(|| ApiError::not_found("api key", id))
}

/// Revokes an API key; it stops working on the next request, on every replica.
#[utoipa::path(delete, path = "/v1/api_key/{api_key_id}", tag = "ApiKeys",
    params(("api_key_id" = uuid::Uuid, Path)), responses((status = 200, body = ApiKey)))]
pub async fn remove(caller: Caller, Path(id): Path<KeyId>) -> ApiResult<Written<ApiKey>> {
    let (key, permit) = caller.state().key_for(&caller, id).await?;
    if key.kind != KeyKind::ApiKey {
        return Err(ApiError::not_found("api key", id));
    }
    let mut w = caller.state().write(&permit).await?;
    let mut out = with_owners(w.tx(), std::slice::from_ref(&key)).await?;
    let out = out.pop().ok_or_else(|| ApiError::not_found("api key", id))?;
    w.revoke_key(&key, &out).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}
