//! `/v1/service_token`: credentials of service accounts. Only owners of the
//! organization manage them.

use super::{invalid, OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use crate::fill;
use axum::Json;
use castellan_api_types::{
    format_time, CreateServiceToken, CreateServiceTokenOutput, DeleteServiceToken, ListResponse, ServiceToken,
};
use castellan_core::{KeyId, Name, OrgId, UserId};
use castellan_store::{KeyFilter, KeyKind, KeyRecord, Paged, Tx, UserKind, UserRecord};
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace, remove_by_body)).routes(routes!(retrieve, remove))
}

async fn to_wire(tx: &mut dyn Tx, k: &KeyRecord) -> ApiResult<ServiceToken> {
    let sa = tx.get_user(k.user_id).await?;
    Ok(wire(k, sa.as_ref()))
}

/// Tokens on the wire with their accounts, read in one query.
async fn to_wire_all(tx: &mut dyn Tx, keys: &[KeyRecord]) -> ApiResult<Vec<ServiceToken>> {
    let mut ids: Vec<UserId> = keys.iter().map(|k| k.user_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let users: HashMap<UserId, UserRecord> = tx.get_users(&ids).await?.into_iter().map(|u| (u.id, u)).collect();
    Ok(keys.iter().map(|k| wire(k, users.get(&k.user_id))).collect())
}

fn wire(k: &KeyRecord, sa: Option<&UserRecord>) -> ServiceToken {
    ServiceToken {
        id: k.id.0,
        created: Some(format_time(k.created)),
        name: k.name.clone(),
        preview_name: k.preview_name.clone(),
        service_account_id: Some(k.user_id.0),
        service_account_email: sa.and_then(|u| u.email.clone()),
        service_account_name: sa.and_then(|u| u.given_name.clone()),
        org_id: k.org_id.map(|o| o.0),
        last_used: k.last_used.map(format_time),
        expires_at: k.expires_at.map(format_time),
    }
}

fn owners_only(caller: &Caller, org: OrgId) -> ApiResult<()> {
    if caller.is_owner(org) {
        Ok(())
    } else if caller.member_of(org) {
        Err(ApiError::Forbidden("only owners of the organization manage service tokens".into()))
    } else {
        Err(ApiError::not_found("organization", org))
    }
}

/// The service token list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServiceTokenFilters {
    /// Only these service tokens: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the tokens of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    service_token_name: Option<String>,
    /// Castellan extension: only the tokens of these service accounts (ids, repeated
    /// or comma-separated).
    #[serde(default)]
    service_account_id: Vec<Uuid>,
}

/// Service tokens of the organizations the caller owns, newest first.
#[utoipa::path(get, path = "/v1/service_token", tag = "ServiceTokens", params(Page, ServiceTokenFilters, OrgName),
    responses((status = 200, body = ListResponse<ServiceToken>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<ServiceTokenFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<ServiceToken>>> {
    let scope = caller.list_scope(org.get()).await?;
    let owned: Vec<OrgId> = scope.orgs().iter().copied().filter(|o| scope.owns(*o)).collect();
    let filter = KeyFilter {
        kind: KeyKind::ServiceToken,
        orgs: owned,
        user: None,
        users: f.service_account_id.into_iter().map(UserId).collect(),
        ids: f.ids,
        name: f.service_token_name,
    };
    let (limit, cursor) = (page.limit(), page.cursor()?);
    let mut tx = caller.state().read_scope(&scope).await?;
    let key = match cursor.id() {
        Some(id) => tx
            .get_key(KeyId(id))
            .await?
            .filter(|k| k.kind == KeyKind::ServiceToken && k.org_id.is_some_and(|o| filter.orgs.contains(&o)))
            .map(|k| k.page_key()),
        None => None,
    };
    let req = cursor.resolve(limit, key)?;
    let rows = fill!(req, |w| tx.list_keys(&filter, &w), |_| true);
    Ok(Json(ListResponse { objects: to_wire_all(&mut *tx, &rows).await? }))
}

async fn mint(caller: Caller, body: CreateServiceToken, replace: bool) -> ApiResult<Written<CreateServiceTokenOutput>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    let expires_at = super::future_time("expires_at", body.expires_at.as_deref(), caller.state().now())?;
    let org = caller.org(body.org_name.as_deref()).await?;
    owners_only(&caller, org.id)?;
    caller.state().limits().tokens.check(&format!("tokens:{}", caller.user.id))?;
    let sa = UserId(body.service_account_id);
    let permit = caller.new_key_permit(org.id)?;
    let mut w = caller.state().write(&permit).await?;
    let account = w.tx().get_user(sa).await?.filter(|u| u.kind == UserKind::ServiceAccount);
    if account.is_none() || !w.tx().member_orgs(sa).await?.contains(&org.id) {
        return Err(ApiError::bad_request(format!("service account `{sa}` not found in this organization")));
    }
    if replace {
        let f = KeyFilter {
            kind: KeyKind::ServiceToken,
            orgs: vec![org.id],
            user: Some(sa),
            users: vec![],
            ids: vec![],
            name: Some(name.as_str().to_owned()),
        };
        let window =
            castellan_store::Window { from: None, direction: castellan_store::page::Direction::Older, limit: 1000 };
        for old in w.tx().list_keys(&f, &window).await? {
            let wire = to_wire(w.tx(), &old).await?;
            w.revoke_key(&old, &wire).await?;
        }
    }
    let (record, raw) =
        crate::seed::mint_key(&mut w, KeyKind::ServiceToken, sa, org.id, name.as_str(), expires_at).await?;
    let wire = to_wire(w.tx(), &record).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, CreateServiceTokenOutput { service_token: wire, key: raw }))
}

/// Mints a token for a service account of an org the caller owns; the raw `bt-st-`
/// token is in the answer only.
#[utoipa::path(post, path = "/v1/service_token", tag = "ServiceTokens", request_body = CreateServiceToken,
    responses((status = 200, body = CreateServiceTokenOutput)))]
pub async fn create(
    caller: Caller,
    Body(body): Body<CreateServiceToken>,
) -> ApiResult<Written<CreateServiceTokenOutput>> {
    mint(caller, body, false).await
}

/// Like `POST`, but first revokes the account's tokens of the same name.
#[utoipa::path(put, path = "/v1/service_token", tag = "ServiceTokens", request_body = CreateServiceToken,
    responses((status = 200, body = CreateServiceTokenOutput)))]
pub async fn replace(
    caller: Caller,
    Body(body): Body<CreateServiceToken>,
) -> ApiResult<Written<CreateServiceTokenOutput>> {
    mint(caller, body, true).await
}

async fn load(caller: &Caller, id: KeyId) -> ApiResult<(KeyRecord, crate::access::Permit)> {
    let (key, permit) = caller.state().key_for(caller, id).await?;
    if key.kind != KeyKind::ServiceToken {
        return Err(ApiError::not_found("service token", id));
    }
    if let Some(org) = key.org_id {
        if key.user_id != caller.user.id {
            owners_only(caller, org)?;
        }
    }
    Ok((key, permit))
}

/// One service token (never its secret).
#[utoipa::path(get, path = "/v1/service_token/{service_token_id}", tag = "ServiceTokens",
    params(("service_token_id" = uuid::Uuid, Path)), responses((status = 200, body = ServiceToken)))]
pub async fn retrieve(caller: Caller, Path(id): Path<KeyId>) -> ApiResult<Json<ServiceToken>> {
    let (key, permit) = load(&caller, id).await?;
    let mut tx = caller.state().read(&permit).await?;
    Ok(Json(to_wire(&mut *tx, &key).await?))
}

async fn revoke(caller: Caller, id: KeyId) -> ApiResult<Written<ServiceToken>> {
    let (key, permit) = load(&caller, id).await?;
    let mut w = caller.state().write(&permit).await?;
    let wire = to_wire(w.tx(), &key).await?;
    w.revoke_key(&key, &wire).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, wire))
}

/// Revokes a service token; it stops working on the next request, on every replica.
#[utoipa::path(delete, path = "/v1/service_token/{service_token_id}", tag = "ServiceTokens",
    params(("service_token_id" = uuid::Uuid, Path)), responses((status = 200, body = ServiceToken)))]
pub async fn remove(caller: Caller, Path(id): Path<KeyId>) -> ApiResult<Written<ServiceToken>> {
    revoke(caller, id).await
}

/// Revokes a service token named in the body.
#[utoipa::path(delete, path = "/v1/service_token", tag = "ServiceTokens", request_body = DeleteServiceToken,
    responses((status = 200, body = ServiceToken)))]
pub async fn remove_by_body(caller: Caller, Body(body): Body<DeleteServiceToken>) -> ApiResult<Written<ServiceToken>> {
    revoke(caller, KeyId(body.id)).await
}
