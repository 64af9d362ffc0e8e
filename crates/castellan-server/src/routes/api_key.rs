//! `/v1/api_key`: a user's own keys; owners see and manage every key of their org.

use super::{invalid, path_id, Written};
use crate::access::Caller;
use crate::dto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Params};
use crate::fill;
use axum::extract::Path;
use axum::Json;
use castellan_api_types::{ApiKey, CreateApiKey, CreateApiKeyOutput, ListResponse};
use castellan_core::{KeyId, Name, OrgId, UserId};
use castellan_store::{KeyFilter, KeyKind, KeyRecord, Paged, Tx, UserRecord};
use std::collections::HashMap;
use utoipa_axum::{router::OpenApiRouter, routes};

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(retrieve, remove))
}

async fn with_owners(tx: &mut dyn Tx, keys: &[KeyRecord]) -> ApiResult<Vec<ApiKey>> {
    let mut users: HashMap<UserId, Option<UserRecord>> = HashMap::new();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        if let std::collections::hash_map::Entry::Vacant(slot) = users.entry(k.user_id) {
            slot.insert(tx.get_user(k.user_id).await?);
        }
        out.push(dto::api_key(k, users.get(&k.user_id).and_then(Option::as_ref)));
    }
    Ok(out)
}

/// The caller's API keys, plus every key of the orgs it owns, newest first.
#[utoipa::path(get, path = "/v1/api_key", tag = "ApiKeys",
    params(("limit" = Option<usize>, Query), ("starting_after" = Option<uuid::Uuid>, Query), ("ending_before" = Option<uuid::Uuid>, Query),
           ("ids" = Option<Vec<uuid::Uuid>>, Query), ("api_key_name" = Option<String>, Query), ("org_name" = Option<String>, Query)),
    responses((status = 200, body = ListResponse<ApiKey>)))]
pub async fn list(caller: Caller, q: Params) -> ApiResult<Json<ListResponse<ApiKey>>> {
    let scope = caller.list_scope(q.str("org_name")).await?;
    let owns_any = scope.orgs().iter().any(|o| scope.owns(*o));
    let filter = KeyFilter {
        kind: KeyKind::ApiKey,
        orgs: scope.orgs().to_vec(),
        user: if owns_any { None } else { Some(caller.user.id) },
        ids: q.uuids("ids")?,
        name: q.str("api_key_name").map(str::to_owned),
    };
    let visible = |k: &KeyRecord| k.user_id == caller.user.id || k.org_id.is_some_and(|o| scope.owns(o));
    let limit = q.limit()?;
    let cursor = q.cursor_id()?;
    let mut tx = caller.state().read_scope(&scope).await?;
    let key = match cursor.id() {
        Some(id) => {
            tx.get_key(KeyId(id)).await?.filter(|k| k.kind == KeyKind::ApiKey && visible(k)).map(|k| k.page_key())
        }
        None => None,
    };
    let req = cursor.resolve(limit, key)?;
    let rows = fill!(req, |w| tx.list_keys(&filter, &w), visible);
    Ok(Json(ListResponse { objects: with_owners(&mut *tx, &rows).await? }))
}

/// Creates an API key for the caller in an org it belongs to; the key acts only in
/// that org. Refused for service accounts and while impersonating. The raw key is in
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
    let permit = caller.new_key_permit(org.id)?;
    caller.state().limits().tokens.check(&format!("tokens:{}", caller.user.id))?;
    let mut w = caller.state().write(&permit).await?;
    let (record, raw) =
        crate::seed::mint_key(&mut w, KeyKind::ApiKey, caller.user.id, org.id, name.as_str(), None).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, CreateApiKeyOutput { api_key: dto::api_key(&record, Some(&caller.user)), key: raw }))
}

/// One API key (never its secret).
#[utoipa::path(get, path = "/v1/api_key/{api_key_id}", tag = "ApiKeys",
    params(("api_key_id" = uuid::Uuid, Path)), responses((status = 200, body = ApiKey)))]
pub async fn retrieve(caller: Caller, Path(id): Path<String>) -> ApiResult<Json<ApiKey>> {
    let id = KeyId(path_id("api_key_id", &id)?);
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
pub async fn remove(caller: Caller, Path(id): Path<String>) -> ApiResult<Written<ApiKey>> {
    let id = KeyId(path_id("api_key_id", &id)?);
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
