//! `/v1/scim_token` (Castellan extension): the SCIM provisioning tokens of an
//! organization. Only its owners manage them: minting or revoking one needs `update`
//! on the organization and ownership (all eight permissions on it), as service tokens
//! do. A SCIM token authorizes only `/scim/v2` of its org, and only while the owner
//! who made it stays an active owner.

use super::{invalid, OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use crate::fill;
use axum::Json;
use castellan_api_types::{format_time, CreateScimToken, CreateScimTokenOutput, ListResponse, ScimToken};
use castellan_core::{KeyId, Name, ObjectRef, ObjectType, OrgId, Permission};
use castellan_store::{KeyFilter, KeyKind, KeyRecord, Paged};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(retrieve, remove))
}

fn to_wire(k: &KeyRecord) -> ScimToken {
    ScimToken {
        id: k.id.0,
        created: Some(format_time(k.created)),
        name: k.name.clone(),
        preview_name: k.preview_name.clone(),
        org_id: k.org_id.map(|o| o.0),
        created_by: Some(k.user_id.0),
        last_used: k.last_used.map(format_time),
        expires_at: k.expires_at.map(format_time),
    }
}

/// Owners only; a member learns it may not, anyone else that there is no such org.
fn owners_only(caller: &Caller, org: OrgId) -> ApiResult<()> {
    if caller.is_owner(org) {
        Ok(())
    } else if caller.member_of(org) {
        Err(ApiError::Forbidden("only owners of the organization manage SCIM tokens".into()))
    } else {
        Err(ApiError::not_found("organization", org))
    }
}

/// The SCIM token list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScimTokenFilters {
    /// Only these tokens: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the tokens of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    scim_token_name: Option<String>,
}

/// SCIM tokens of the organizations the caller owns, newest first (previews only).
#[utoipa::path(get, path = "/v1/scim_token", tag = "ScimTokens", params(Page, ScimTokenFilters, OrgName),
    responses((status = 200, body = ListResponse<ScimToken>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<ScimTokenFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<ScimToken>>> {
    let scope = caller.list_scope(org.get()).await?;
    let owned: Vec<OrgId> = scope.orgs().iter().copied().filter(|o| scope.owns(*o)).collect();
    if owned.is_empty() {
        if let Some(o) = scope.orgs().first().filter(|_| org.get().is_some()) {
            owners_only(&caller, *o)?;
        }
    }
    let filter = KeyFilter {
        kind: KeyKind::ScimToken,
        orgs: owned,
        user: None,
        users: vec![],
        ids: f.ids,
        name: f.scim_token_name,
    };
    let (limit, cursor) = (page.limit(), page.cursor()?);
    let mut tx = caller.state().read_scope(&scope).await?;
    let key = match cursor.id() {
        Some(id) => tx
            .get_key(KeyId(id))
            .await?
            .filter(|k| k.kind == KeyKind::ScimToken && k.org_id.is_some_and(|o| filter.orgs.contains(&o)))
            .map(|k| k.page_key()),
        None => None,
    };
    let req = cursor.resolve(limit, key)?;
    let rows = fill!(req, |w| tx.list_keys(&filter, &w), |_| true);
    Ok(Json(ListResponse { objects: rows.iter().map(to_wire).collect() }))
}

/// Mints a SCIM token for an org the caller owns; the raw `scim-` token is in this
/// answer only. Give it to the identity provider (Okta, Entra ID) with the base URL
/// `<server>/scim/v2`.
#[utoipa::path(post, path = "/v1/scim_token", tag = "ScimTokens", request_body = CreateScimToken,
    responses((status = 200, body = CreateScimTokenOutput)))]
pub async fn create(caller: Caller, Body(body): Body<CreateScimToken>) -> ApiResult<Written<CreateScimTokenOutput>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    let expires_at = super::future_time("expires_at", body.expires_at.as_deref(), caller.state().now())?;
    let org = caller.org(body.org_name.as_deref()).await?;
    owners_only(&caller, org.id)?;
    if caller.actor.impersonator.is_some() {
        return Err(ApiError::Forbidden("credentials cannot be minted while impersonating another user".into()));
    }
    caller.state().limits().tokens.check(&format!("tokens:{}", caller.user.id))?;
    let permit = caller.require(Permission::Update, ObjectRef::new(ObjectType::Organization, org.id.0)).await?;
    let mut w = caller.state().write(&permit).await?;
    let (record, raw) =
        crate::seed::mint_key(&mut w, KeyKind::ScimToken, caller.user.id, org.id, name.as_str(), expires_at).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, CreateScimTokenOutput { scim_token: to_wire(&record), key: raw }))
}

async fn load(caller: &Caller, id: KeyId) -> ApiResult<(KeyRecord, crate::access::Permit)> {
    let (key, _) = caller.state().key_for(caller, id).await.map_err(|_| ApiError::not_found("scim token", id))?;
    let org = match key.org_id {
        Some(o) if key.kind == KeyKind::ScimToken && caller.member_of(o) => o,
        _ => return Err(ApiError::not_found("scim token", id)),
    };
    owners_only(caller, org)?;
    let permit = caller.require(Permission::Update, ObjectRef::new(ObjectType::Organization, org.0)).await?;
    Ok((key, permit))
}

/// One SCIM token (never its secret).
#[utoipa::path(get, path = "/v1/scim_token/{scim_token_id}", tag = "ScimTokens",
    params(("scim_token_id" = uuid::Uuid, Path)), responses((status = 200, body = ScimToken)))]
pub async fn retrieve(caller: Caller, Path(id): Path<KeyId>) -> ApiResult<Json<ScimToken>> {
    let (key, _) = load(&caller, id).await?;
    Ok(Json(to_wire(&key)))
}

/// Revokes a SCIM token; it stops working on the next request, on every replica.
#[utoipa::path(delete, path = "/v1/scim_token/{scim_token_id}", tag = "ScimTokens",
    params(("scim_token_id" = uuid::Uuid, Path)), responses((status = 200, body = ScimToken)))]
pub async fn remove(caller: Caller, Path(id): Path<KeyId>) -> ApiResult<Written<ScimToken>> {
    let (key, permit) = load(&caller, id).await?;
    let mut w = caller.state().write(&permit).await?;
    let wire = to_wire(&key);
    w.revoke_key(&key, &wire).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, wire))
}
