//! `/v1/sso_config` (Castellan extension): an organization's single sign-on
//! configurations (OpenID Connect). Only its owners see or manage them: each needs
//! `update` on the organization and ownership, as SCIM tokens do; anyone else learns
//! nothing (a member is refused, a stranger gets 404). Each is an administration
//! object of kind `sso_config` set on the organization; the client secret is its
//! sealed value (bound to org, kind, row and name), never returned or logged. Writes
//! are audited through the shared administration-object path.

use super::setting::{self, Change, Draft, Setting};
use super::{OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{format_time, CreateSsoConfig, ListResponse, PatchSsoConfig, SsoConfig};
use castellan_core::{ObjectRef, ObjectType, OrgId};
use castellan_store::{AdminFilter, AdminKind, AdminRecord};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(retrieve, update, remove))
}

/// Scopes requested when none are configured.
pub(crate) const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];
/// Limits on the configuration's sizes.
const MAX_URL: usize = 2048;
const MAX_TEXT: usize = 512;
const MAX_SECRET: usize = 4096;
const MAX_LIST: usize = 100;
const MAX_GROUP_MAP: usize = 500;

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::SsoConfig;
    const SECRET_FIELD: &'static str = "client_secret";
    type Wire = SsoConfig;

    fn wire(a: &AdminRecord) -> SsoConfig {
        let strings = |k: &str| -> Vec<String> {
            a.data
                .get(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        let group_map = a
            .data
            .get("group_map")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect();
        SsoConfig {
            id: a.id,
            created: Some(format_time(a.created)),
            updated_at: Some(format_time(a.updated)),
            org_id: a.org_id.0,
            name: a.name.clone(),
            issuer: setting::text(a, "issuer").unwrap_or_default(),
            client_id: setting::text(a, "client_id").unwrap_or_default(),
            client_secret_set: a.secret.is_some(),
            scopes: strings("scopes"),
            allowed_email_domains: strings("allowed_email_domains"),
            groups_claim: setting::text(a, "groups_claim"),
            group_map,
            default_group: setting::text(a, "default_group"),
            jit: a.data.get("jit").and_then(Value::as_bool).unwrap_or(false),
            require_email_verified: a.data.get("require_email_verified").and_then(Value::as_bool).unwrap_or(true),
            enforced: a.data.get("enforced").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

/// Owners only; a member learns it may not, anyone else that there is no such org.
fn owners_only(caller: &Caller, org: OrgId) -> ApiResult<()> {
    if caller.is_owner(org) {
        Ok(())
    } else if caller.member_of(org) {
        Err(ApiError::Forbidden("only owners of the organization manage single sign-on".into()))
    } else {
        Err(ApiError::not_found("organization", org))
    }
}

/// A text field: not blank, no control characters, at most `max` characters.
fn plain(field: &str, v: &str, max: usize) -> ApiResult<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::invalid_body(format!(
            "`{field}` must be 1 to {max} characters without control characters"
        )));
    }
    Ok(v.to_owned())
}

/// An issuer: an absolute `https` URL without query or fragment (`http` only for a
/// loopback host, as a test provider is). Kept exactly as sent but for a trailing
/// slash, since the ID token's `iss` must equal it.
pub(crate) fn issuer(v: &str) -> ApiResult<String> {
    let v = plain("issuer", v, MAX_URL)?;
    let bad = |why: &str| ApiError::invalid_body(format!("`issuer` {why}: `{v}`"));
    let url = reqwest::Url::parse(&v).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(bad("must be an https URL (http only for a loopback host)")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a query, a fragment or credentials"));
    }
    Ok(v.trim_end_matches('/').to_owned())
}

fn scopes(v: Vec<String>) -> ApiResult<Vec<String>> {
    if v.len() > MAX_LIST {
        return Err(ApiError::invalid_body(format!("`scopes` may list at most {MAX_LIST}")));
    }
    let mut out: Vec<String> = Vec::new();
    for s in v {
        if s.is_empty() || s.len() > 128 || !s.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\') {
            return Err(ApiError::invalid_body(format!("`scopes` holds `{s}`, which is not a scope token")));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if !out.iter().any(|s| s == "openid") {
        out.insert(0, "openid".into());
    }
    Ok(out)
}

fn domains(v: Vec<String>) -> ApiResult<Vec<String>> {
    if v.len() > MAX_LIST {
        return Err(ApiError::invalid_body(format!("`allowed_email_domains` may list at most {MAX_LIST}")));
    }
    let mut out: Vec<String> = Vec::new();
    for d in v {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        let ok = !d.is_empty()
            && d.len() <= 253
            && d.contains('.')
            && d.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !ok {
            return Err(ApiError::invalid_body(format!("`allowed_email_domains` holds `{d}`, which is not a domain")));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

fn group_map(v: BTreeMap<String, String>) -> ApiResult<Value> {
    if v.len() > MAX_GROUP_MAP {
        return Err(ApiError::invalid_body(format!("`group_map` may hold at most {MAX_GROUP_MAP} entries")));
    }
    let mut m = Map::new();
    for (k, g) in v {
        let k = plain("group_map key", &k, MAX_TEXT)?;
        let g = setting::name("group_map value", &g)?;
        m.insert(k, json!(g));
    }
    Ok(Value::Object(m))
}

fn secret(v: &str) -> ApiResult<String> {
    if v.is_empty() || v.len() > MAX_SECRET {
        return Err(ApiError::invalid_body(format!("`client_secret` must be 1 to {MAX_SECRET} bytes")));
    }
    Ok(v.to_owned())
}

/// The SSO configuration list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SsoConfigFilters {
    /// Only these configurations: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the configuration of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    sso_config_name: Option<String>,
}

/// The SSO configurations of the organizations the caller owns, newest first.
#[utoipa::path(get, path = "/v1/sso_config", tag = "SsoConfigs", params(Page, SsoConfigFilters, OrgName),
    responses((status = 200, body = ListResponse<SsoConfig>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<SsoConfigFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<SsoConfig>>> {
    if org.get().is_some() {
        let o = caller.org(org.get()).await?;
        owners_only(&caller, o.id)?;
    }
    let filter = AdminFilter { ids: f.ids, name: f.sso_config_name, ..setting::filter::<Kind>() };
    let objects = setting::list::<Kind>(&caller, &page, org.get(), filter, |a| caller.is_owner(a.org_id)).await?;
    Ok(Json(ListResponse { objects }))
}

/// Creates an SSO configuration for an org the caller owns (or answers the one of
/// that name unchanged with `x-bt-found-existing: true`). Register
/// `<public_url>/auth/sso/callback` at the provider as the redirect URI.
#[utoipa::path(post, path = "/v1/sso_config", tag = "SsoConfigs", request_body = CreateSsoConfig,
    responses((status = 200, body = SsoConfig)))]
pub async fn create(caller: Caller, Body(body): Body<CreateSsoConfig>) -> ApiResult<Written<SsoConfig>> {
    let name = setting::name("name", &body.name)?;
    let mut data = Map::new();
    data.insert("issuer".into(), json!(issuer(&body.issuer)?));
    data.insert("client_id".into(), json!(plain("client_id", &body.client_id, MAX_TEXT)?));
    let sc = body.scopes.unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    data.insert("scopes".into(), json!(scopes(sc)?));
    data.insert("allowed_email_domains".into(), json!(domains(body.allowed_email_domains.unwrap_or_default())?));
    let claim = body.groups_claim.as_deref().map(|c| plain("groups_claim", c, MAX_TEXT)).transpose()?;
    data.insert("groups_claim".into(), json!(claim));
    data.insert("group_map".into(), group_map(body.group_map.unwrap_or_default())?);
    let default_group = body.default_group.as_deref().map(|g| setting::name("default_group", g)).transpose()?;
    data.insert("default_group".into(), json!(default_group));
    data.insert("jit".into(), json!(body.jit.unwrap_or(false)));
    data.insert("require_email_verified".into(), json!(body.require_email_verified.unwrap_or(true)));
    let client_secret = body.client_secret.as_deref().map(secret).transpose()?;
    let org = caller.org(body.org_name.as_deref()).await?;
    owners_only(&caller, org.id)?;
    let draft = Draft { scope: ObjectRef::new(ObjectType::Organization, org.id.0), name, data, secret: client_secret };
    setting::create::<Kind>(&caller, Some(&org.name), draft, false).await
}

/// Loads a configuration for one of its org's owners; anyone else gets 404.
async fn load_owned(caller: &Caller, id: Uuid) -> ApiResult<AdminRecord> {
    let a = setting::load::<Kind>(caller, id, castellan_core::Permission::Read)
        .await
        .map_err(|_| ApiError::not_found("sso_config", id))?;
    if !caller.is_owner(a.org_id) {
        return Err(ApiError::not_found("sso_config", id));
    }
    Ok(a)
}

/// One SSO configuration (never its client secret).
#[utoipa::path(get, path = "/v1/sso_config/{sso_config_id}", tag = "SsoConfigs",
    params(("sso_config_id" = Uuid, Path)), responses((status = 200, body = SsoConfig)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<SsoConfig>> {
    Ok(Json(Kind::wire(&load_owned(&caller, id).await?)))
}

/// Changes an SSO configuration: the fields sent replace the stored ones.
#[utoipa::path(patch, path = "/v1/sso_config/{sso_config_id}", tag = "SsoConfigs",
    params(("sso_config_id" = Uuid, Path)), request_body = Option<PatchSsoConfig>,
    responses((status = 200, body = SsoConfig)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchSsoConfig>,
) -> ApiResult<Written<SsoConfig>> {
    let current = load_owned(&caller, id).await?;
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    let r = &mut c.replace;
    if let Some(v) = body.issuer {
        r.insert("issuer".into(), json!(issuer(&v)?));
    }
    if let Some(v) = body.client_id {
        r.insert("client_id".into(), json!(plain("client_id", &v, MAX_TEXT)?));
    }
    if let Some(v) = body.scopes {
        r.insert("scopes".into(), json!(scopes(v)?));
    }
    if let Some(v) = body.allowed_email_domains {
        r.insert("allowed_email_domains".into(), json!(domains(v)?));
    }
    if let Some(v) = body.groups_claim {
        r.insert("groups_claim".into(), json!(v.as_deref().map(|c| plain("groups_claim", c, MAX_TEXT)).transpose()?));
    }
    if let Some(v) = body.group_map {
        r.insert("group_map".into(), group_map(v)?);
    }
    if let Some(v) = body.default_group {
        r.insert("default_group".into(), json!(v.as_deref().map(|g| setting::name("default_group", g)).transpose()?));
    }
    if let Some(v) = body.jit {
        r.insert("jit".into(), json!(v));
    }
    if let Some(v) = body.require_email_verified {
        r.insert("require_email_verified".into(), json!(v));
    }
    if let Some(v) = body.enforced {
        r.insert("enforced".into(), json!(v));
    }
    // Enforcement covers the allowed domains, so it needs some; and it is only turned
    // on for a configuration someone has signed in through (a broken one would lock
    // every covered member out).
    let enforced = body.enforced.unwrap_or_else(|| current.data.get("enforced").and_then(Value::as_bool) == Some(true));
    if enforced {
        let domains_after = r
            .get("allowed_email_domains")
            .or_else(|| current.data.get("allowed_email_domains"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if domains_after == 0 {
            return Err(ApiError::invalid_body(
                "`enforced` applies to the `allowed_email_domains`, and this configuration would have none",
            ));
        }
        let was = current.data.get("enforced").and_then(Value::as_bool) == Some(true);
        if !was && !caller.state().sso_config_proven(id).await? {
            return Err(ApiError::invalid_body(
                "`enforced` can only be turned on once someone has signed in through this configuration (sign in \
                 with it first, so a mistake in it cannot lock everyone out)",
            ));
        }
    }
    c.secret = body.client_secret.as_deref().map(secret).transpose()?;
    let was_enforced = current.data.get("enforced").and_then(Value::as_bool) == Some(true);
    let written = setting::update::<Kind>(&caller, id, c, |a| owners_only(&caller, a.org_id)).await?;
    // Turned on: the covered members' password sessions end now (they sign in again
    // by single sign-on); the owner turning it on keeps theirs.
    if written.body.enforced && !was_enforced {
        caller.end_password_sessions(current.org_id, &written.body.allowed_email_domains).await?;
    }
    Ok(written)
}

/// Deletes an SSO configuration and its sealed client secret; sign-in through it
/// stops at once.
#[utoipa::path(delete, path = "/v1/sso_config/{sso_config_id}", tag = "SsoConfigs",
    params(("sso_config_id" = Uuid, Path)), responses((status = 200, body = SsoConfig)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<SsoConfig>> {
    load_owned(&caller, id).await?;
    setting::remove::<Kind>(&caller, id, |a| owners_only(&caller, a.org_id)).await
}
