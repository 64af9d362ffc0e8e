//! `/v1/organization`.

use super::{invalid, Written};
use crate::access::Caller;
use crate::dto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use crate::fill;
use axum::Json;
use castellan_api_types::{
    format_time, CreateOrganization, CreatedOrganization, ListResponse, Organization, PatchOrganization,
};
use castellan_core::{Name, ObjectRef, ObjectType, OrgId, Permission};
use castellan_store::{OrgFilter, Paged};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(retrieve, update, remove))
}

/// The organization list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgFilters {
    /// Only these organizations: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the organization of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    org_name: Option<String>,
}

/// Organizations the caller belongs to, newest first.
#[utoipa::path(get, path = "/v1/organization", tag = "Organizations", params(Page, OrgFilters),
    responses((status = 200, body = ListResponse<Organization>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<OrgFilters>,
) -> ApiResult<Json<ListResponse<Organization>>> {
    let filter = OrgFilter { scope: caller.orgs.clone(), ids: f.ids, name: f.org_name };
    let (limit, cursor) = (page.limit(), page.cursor()?);
    let scope = caller.list_scope(None).await?;
    let mut tx = caller.state().read_scope(&scope).await?;
    let key = match cursor.id() {
        Some(id) if caller.member_of(OrgId(id)) => tx.get_org(OrgId(id)).await?.map(|o| o.page_key()),
        _ => None,
    };
    let req = cursor.resolve(limit, key)?;
    let rows = fill!(req, |w| tx.list_orgs(&filter, &w), |_| true);
    Ok(Json(ListResponse { objects: rows.iter().map(dto::org).collect() }))
}

/// Castellan extension: creates an organization; the caller becomes its first owner.
/// An API key acts only in its own org, so a caller using one also gets a first key
/// for the new org (shown once). Service accounts and impersonators create none.
#[utoipa::path(post, path = "/v1/organization", tag = "Organizations", request_body = CreateOrganization,
    responses((status = 200, body = CreatedOrganization)))]
pub async fn create(caller: Caller, Body(body): Body<CreateOrganization>) -> ApiResult<Written<CreatedOrganization>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    let permit = caller.require_new_org()?;
    let mut w = caller.state().write(&permit).await?;
    let org = crate::seed::create_org(&mut w, &name, caller.user.id).await?;
    let api_key = match caller.credential {
        crate::access::Credential::Key(_) => Some(
            crate::seed::mint_key(&mut w, castellan_store::KeyKind::ApiKey, caller.user.id, org.id, "first key", None)
                .await?
                .1,
        ),
        crate::access::Credential::Session(_) => None,
    };
    let rev = w.commit().await?;
    Ok(Written::at(rev, CreatedOrganization { organization: dto::org(&org), api_key }))
}

/// One organization the caller belongs to.
#[utoipa::path(get, path = "/v1/organization/{organization_id}", tag = "Organizations",
    params(("organization_id" = uuid::Uuid, Path)), responses((status = 200, body = Organization)))]
pub async fn retrieve(caller: Caller, Path(id): Path<OrgId>) -> ApiResult<Json<Organization>> {
    Ok(Json(dto::org(&caller.org_by_id(id).await?)))
}

fn check_url(field: &str, v: &str) -> ApiResult<()> {
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(())
    } else {
        Err(ApiError::invalid_body(format!("`{field}` must be an http(s) URL, got `{v}`")))
    }
}

/// Changes an organization's settings (needs `update` on it: "Manage settings"). An
/// absent body changes nothing.
#[utoipa::path(patch, path = "/v1/organization/{organization_id}", tag = "Organizations",
    params(("organization_id" = uuid::Uuid, Path)), request_body = Option<PatchOrganization>,
    responses((status = 200, body = Organization)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<OrgId>,
    Body(body): Body<PatchOrganization>,
) -> ApiResult<Written<Organization>> {
    caller.org_by_id(id).await?;
    let permit = caller.require(Permission::Update, ObjectRef::new(ObjectType::Organization, id.0)).await?;
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    for (field, v) in [("api_url", &body.api_url), ("proxy_url", &body.proxy_url), ("realtime_url", &body.realtime_url)]
    {
        if let Some(v) = v {
            check_url(field, v)?;
        }
    }
    let mut w = caller.state().write(&permit).await?;
    let before = w.tx().get_org(id).await?.ok_or_else(|| ApiError::not_found("organization", id))?;
    let mut after = before.clone();
    if let Some(n) = name {
        after.name = n.into_inner();
    }
    after.api_url = body.api_url.or(after.api_url);
    after.is_universal_api = body.is_universal_api.or(after.is_universal_api);
    after.is_dataplane_private = body.is_dataplane_private.or(after.is_dataplane_private);
    after.proxy_url = body.proxy_url.or(after.proxy_url);
    after.realtime_url = body.realtime_url.or(after.realtime_url);
    after.image_rendering_mode =
        body.image_rendering_mode.map(|m| m.as_str().to_owned()).or(after.image_rendering_mode);
    if let Some(sd) = body.strict_delegation {
        if let Some(m) = after.settings.as_object_mut() {
            m.insert("strict_delegation".into(), serde_json::Value::Bool(sd));
        } else {
            after.settings = serde_json::json!({ "strict_delegation": sd });
        }
    }
    if after == before {
        // Nothing to change (an absent or empty body): nothing to write or audit.
        return Ok(Written { revision: None, found_existing: false, body: dto::org(&after) });
    }
    w.update_org(&before, &after).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, dto::org(&after)))
}

/// Deletes an organization and everything in it (needs `delete` on it).
#[utoipa::path(delete, path = "/v1/organization/{organization_id}", tag = "Organizations",
    params(("organization_id" = uuid::Uuid, Path)), responses((status = 200, body = Organization)))]
pub async fn remove(caller: Caller, Path(id): Path<OrgId>) -> ApiResult<Written<Organization>> {
    caller.org_by_id(id).await?;
    let permit = caller.require(Permission::Delete, ObjectRef::new(ObjectType::Organization, id.0)).await?;
    let mut w = caller.state().write(&permit).await?;
    let org = w.tx().get_org(id).await?.ok_or_else(|| ApiError::not_found("organization", id))?;
    w.delete_org(&org).await?;
    let out = Organization { deleted_at: Some(format_time(w.now())), ..dto::org(&org) };
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}
