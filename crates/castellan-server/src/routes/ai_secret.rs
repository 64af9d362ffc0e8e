//! `/v1/ai_secret`: an organization's AI provider secrets. Each is an `ai_secret`
//! object under the org's `org_ai_secret`: a grant on one secret, on all of them
//! (`org_ai_secret`) or on the organization ("Manage settings") decides who may see
//! its preview (`read`), change it (`update`) or delete it (`delete`); making one
//! takes `create` on `org_ai_secret`. The value is sealed at rest and never returned.

use super::setting::{self, field, text, Change, Creation, Draft, Setting};
use super::{OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{
    format_time, AISecret, CreateAISecret, DeleteAISecret, EffectiveAIProvider, ListResponse, PatchAISecret,
};
use castellan_core::{ObjectRef, ObjectType, Permission};
use castellan_store::{AdminFilter, AdminKind, AdminRecord};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(list, create, replace, remove_by_name))
        .routes(routes!(effective))
        .routes(routes!(retrieve, update, remove))
}

/// The longest value accepted, in bytes.
pub(crate) const MAX_SECRET_BYTES: usize = 64 * 1024;
/// The longest provider type accepted.
const MAX_TYPE_CHARS: usize = 128;
/// Metadata keys that would put a credential in the clear.
const SECRET_KEYS: [&str; 9] = [
    "secret",
    "api_key",
    "apikey",
    "password",
    "secret_key",
    "secret_access_key",
    "private_key",
    "client_secret",
    "session_token",
];

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::AiSecret;
    const CREATE: Creation = Creation::Child(ObjectType::AiSecret);
    const DELETE: Permission = Permission::Delete;
    type Wire = AISecret;

    fn wire(a: &AdminRecord) -> AISecret {
        AISecret {
            id: a.id,
            created: Some(format_time(a.created)),
            updated_at: Some(format_time(a.updated)),
            secret_updated_at: a.secret_updated_at.map(format_time),
            secret_updated_by_user_id: a.secret_updated_by.map(|u| u.0),
            org_id: a.org_id.0,
            name: a.name.clone(),
            secret_type: text(a, "type"),
            metadata: field(a, "metadata"),
            preview_secret: a.secret.as_ref().and(text(a, "preview")),
        }
    }

    /// Audit records never carry the preview (an audit-log reader may not read the
    /// secret).
    fn audited(a: &AdminRecord) -> AISecret {
        AISecret { preview_secret: None, ..Self::wire(a) }
    }
}

/// Checks a value, a provider type and metadata (an object holding no credential).
pub(crate) fn check(secret: Option<&str>, secret_type: Option<&str>, metadata: Option<&Value>) -> ApiResult<()> {
    if let Some(s) = secret {
        if s.len() > MAX_SECRET_BYTES {
            return Err(ApiError::invalid_body(format!(
                "`secret` is {} bytes; the limit is {MAX_SECRET_BYTES}",
                s.len()
            )));
        }
    }
    if let Some(t) = secret_type {
        if t.chars().count() > MAX_TYPE_CHARS || t.chars().any(char::is_control) {
            return Err(ApiError::invalid_body(format!(
                "`type` must be at most {MAX_TYPE_CHARS} characters without control characters"
            )));
        }
    }
    match metadata {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) => check_no_credential("metadata", m),
        Some(other) => Err(ApiError::invalid_body(format!("`metadata` must be an object, got `{other}`"))),
    }
}

fn check_no_credential(path: &str, m: &Map<String, Value>) -> ApiResult<()> {
    for (k, v) in m {
        let here = format!("{path}.{k}");
        if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) && !v.is_null() {
            return Err(ApiError::invalid_body(format!(
                "`{here}` looks like a credential, and metadata is stored in the clear: send it as `secret`"
            )));
        }
        if let Value::Object(inner) = v {
            check_no_credential(&here, inner)?;
        }
    }
    Ok(())
}

/// How configuration as code lists AI secrets: by name and provider type only; the
/// value is sealed, never exported, and never touched by apply (one it creates has
/// no value until someone sets it).
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec {
        secret: true,
        ..super::config::KindSpec::of::<Kind>(&[ObjectType::Organization], &["type"], |data| {
            check(None, super::config::text(data, "type")?, None)
        })
    }
}

/// The AI secret list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AiSecretFilters {
    /// Only these secrets: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the secret of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    ai_secret_name: Option<String>,
    /// Only secrets of these provider types (repeated or comma-separated).
    #[serde(default)]
    ai_secret_type: Vec<String>,
}

/// The AI secrets the caller can read, newest first.
#[utoipa::path(get, path = "/v1/ai_secret", tag = "AiSecrets", params(Page, AiSecretFilters, OrgName),
    responses((status = 200, body = ListResponse<AISecret>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<AiSecretFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<AISecret>>> {
    let filter = AdminFilter { ids: f.ids, name: f.ai_secret_name, ..setting::filter::<Kind>() };
    let types = f.ai_secret_type;
    let objects = setting::list::<Kind>(&caller, &page, org.get(), filter, |a| {
        types.is_empty() || text(a, "type").is_some_and(|t| types.contains(&t))
    })
    .await?;
    Ok(Json(ListResponse { objects }))
}

async fn create_or_replace(caller: Caller, body: CreateAISecret, replace: bool) -> ApiResult<Written<AISecret>> {
    let name = setting::name("name", &body.name)?;
    check(body.secret.as_deref(), body.secret_type.as_deref(), body.metadata.as_ref())?;
    let org = caller.org(body.org_name.as_deref()).await?;
    let mut data = Map::new();
    data.insert("type".into(), json!(body.secret_type));
    data.insert("metadata".into(), body.metadata.unwrap_or(Value::Null));
    let draft = Draft { scope: ObjectRef::new(ObjectType::Organization, org.id.0), name, data, secret: body.secret };
    setting::create::<Kind>(&caller, Some(&org.name), draft, replace).await
}

/// Creates an AI secret (`create` on the org's `org_ai_secret`), or answers the one
/// of that name unchanged (`x-bt-found-existing: true`) to a caller who can read it.
#[utoipa::path(post, path = "/v1/ai_secret", tag = "AiSecrets", request_body = CreateAISecret,
    responses((status = 200, body = AISecret)))]
pub async fn create(caller: Caller, Body(body): Body<CreateAISecret>) -> ApiResult<Written<AISecret>> {
    create_or_replace(caller, body, false).await
}

/// Creates an AI secret, or replaces the type and metadata of the one of that name
/// (`update` on it); an omitted `secret` keeps the stored value.
#[utoipa::path(put, path = "/v1/ai_secret", tag = "AiSecrets", request_body = CreateAISecret,
    responses((status = 200, body = AISecret)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateAISecret>) -> ApiResult<Written<AISecret>> {
    create_or_replace(caller, body, true).await
}

/// Deletes the AI secret of that name (`delete` on it).
#[utoipa::path(delete, path = "/v1/ai_secret", tag = "AiSecrets", request_body = DeleteAISecret,
    responses((status = 200, body = AISecret)))]
pub async fn remove_by_name(caller: Caller, Body(body): Body<DeleteAISecret>) -> ApiResult<Written<AISecret>> {
    let org = caller.org(body.org_name.as_deref()).await?;
    let scope = ObjectRef::new(ObjectType::Organization, org.id.0);
    let found = setting::find::<Kind>(&caller, Some(&org.name), scope, &body.name).await?;
    let a = found.ok_or_else(|| ApiError::NotFound(format!("ai_secret `{}` not found", body.name)))?;
    setting::remove::<Kind>(&caller, a.id, |_| Ok(())).await
}

/// One AI secret (its value is never shown).
#[utoipa::path(get, path = "/v1/ai_secret/{ai_secret_id}", tag = "AiSecrets",
    params(("ai_secret_id" = Uuid, Path)), responses((status = 200, body = AISecret)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<AISecret>> {
    Ok(Json(setting::retrieve::<Kind>(&caller, id).await?))
}

/// Renames an AI secret or changes its type, metadata (merged) or value (`update`
/// on it).
#[utoipa::path(patch, path = "/v1/ai_secret/{ai_secret_id}", tag = "AiSecrets",
    params(("ai_secret_id" = Uuid, Path)), request_body = Option<PatchAISecret>,
    responses((status = 200, body = AISecret)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchAISecret>,
) -> ApiResult<Written<AISecret>> {
    check(body.secret.as_deref(), body.secret_type.as_deref(), body.metadata.as_ref())?;
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    if let Some(t) = body.secret_type {
        c.replace.insert("type".into(), json!(t));
    }
    if let Some(m) = body.metadata {
        c.data.insert("metadata".into(), m);
    }
    c.secret = body.secret;
    setting::update::<Kind>(&caller, id, c, |_| Ok(())).await
}

/// Deletes an AI secret and its sealed value (`delete` on it); the grants on it go
/// with it.
#[utoipa::path(delete, path = "/v1/ai_secret/{ai_secret_id}", tag = "AiSecrets",
    params(("ai_secret_id" = Uuid, Path)), responses((status = 200, body = AISecret)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<AISecret>> {
    setting::remove::<Kind>(&caller, id, |_| Ok(())).await
}

/// Which project the in-force providers are asked for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EffectiveQuery {
    /// The project.
    project_id: Uuid,
}

/// Castellan extension: the AI provider in force for each provider type in a
/// project (`read` on it). A project's env vars of category `ai_provider` override
/// the organization's AI secrets and `ai_provider` env vars of the same type; among
/// several of one level, an AI secret beats an env var and then the most recently
/// changed wins. Only providers the caller can read are considered.
#[utoipa::path(get, path = "/v1/ai_secret/effective", tag = "AiSecrets", params(EffectiveQuery),
    responses((status = 200, body = ListResponse<EffectiveAIProvider>)))]
pub async fn effective(
    caller: Caller,
    Query(q): Query<EffectiveQuery>,
) -> ApiResult<Json<ListResponse<EffectiveAIProvider>>> {
    let project = setting::project(q.project_id);
    let read = caller.require(Permission::Read, project).await?;
    let org = caller
        .state()
        .index()
        .snapshot()
        .org_of(project)
        .ok_or_else(|| ApiError::not_found("project", q.project_id))?;
    let scope = caller.list_scope(None).await.ok();
    let can_read = |obj: ObjectRef| scope.as_ref().is_some_and(|s| s.visible(Permission::Read, obj));
    let by_type = providers_in_force(caller.state(), &read, castellan_core::OrgId(org), project, can_read).await?;
    let mut objects = Vec::new();
    for (provider_type, c) in by_type {
        let (rank, object_type, chosen) = &c[0];
        let overrides = c[1..].iter().filter(|(r, _, _)| *r < 2 && *rank == 2).map(|(_, _, a)| a.id).collect();
        objects.push(EffectiveAIProvider {
            provider_type,
            source: if *rank == 2 { "project" } else { "organization" }.into(),
            object_type: (*object_type).into(),
            id: chosen.id,
            name: chosen.name.clone(),
            preview_secret: chosen.secret.as_ref().and(text(chosen, "preview")),
            overrides,
        });
    }
    Ok(Json(ListResponse { objects }))
}

/// Every AI provider candidate of a project, by provider type, best first: a
/// project's env vars of category `ai_provider`, then the organization's AI secrets,
/// then its `ai_provider` env vars (only those `can_read` admits), the most recently
/// changed first within a level. The first of each type is the one in force (the
/// `/v1/ai_secret/effective` answer; online scoring's LLM judges call it).
pub(crate) async fn providers_in_force(
    state: &crate::access::AppState,
    permit: &crate::access::Permit,
    org: castellan_core::OrgId,
    project: ObjectRef,
    can_read: impl Fn(ObjectRef) -> bool,
) -> ApiResult<std::collections::BTreeMap<String, Vec<(u8, &'static str, AdminRecord)>>> {
    let org_ref = ObjectRef::new(ObjectType::Organization, org.0);
    let mut tx = state.read(permit).await?;
    let all = |kind, scope: ObjectRef| AdminFilter {
        kind,
        orgs: vec![org],
        scope_type: Some(scope.object_type),
        scope_id: Some(scope.object_id),
        ids: Vec::new(),
        name: None,
    };
    let mut candidates: Vec<(u8, &'static str, AdminRecord)> = Vec::new();
    let window = castellan_store::Window::all();
    for a in tx.list_admin(&all(AdminKind::EnvVar, project), &window).await? {
        candidates.push((2, "env_var", a));
    }
    let secrets = tx.list_admin(&all(AdminKind::AiSecret, org_ref), &window).await?;
    let org_vars = tx.list_admin(&all(AdminKind::EnvVar, org_ref), &window).await?;
    drop(tx);
    candidates.extend(secrets.into_iter().filter(|a| can_read(a.guard())).map(|a| (1, "ai_secret", a)));
    candidates.extend(org_vars.into_iter().filter(|a| can_read(a.guard())).map(|a| (0, "env_var", a)));
    // By type: the highest rank (project var, org secret, org var), then the newest.
    let mut by_type: std::collections::BTreeMap<String, Vec<(u8, &'static str, AdminRecord)>> = Default::default();
    for (rank, object_type, a) in candidates {
        let provider = match object_type {
            "ai_secret" => text(&a, "type"),
            _ if text(&a, "secret_category").as_deref() == Some("ai_provider") => text(&a, "secret_type"),
            _ => None,
        };
        if let Some(t) = provider {
            by_type.entry(t).or_default().push((rank, object_type, a));
        }
    }
    for c in by_type.values_mut() {
        c.sort_by_key(|(rank, _, a)| std::cmp::Reverse((*rank, a.secret_updated_at.unwrap_or(a.updated), a.id)));
    }
    Ok(by_type)
}
