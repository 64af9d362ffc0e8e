//! `/v1/env_var`: environment variables of an organization, a project or one
//! function. Reading one (its name, metadata and masked preview) takes `read` on
//! what it is set on; creating, changing or deleting one takes `update` there. The
//! value is sealed at rest under the master key and never returned.

use super::{invalid, OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{format_time, CreateEnvVar, EnvVar, EnvVarObjectType, ListResponse, PatchEnvVar};
use castellan_core::{Name, ObjectRef, ObjectType, OrgId, Permission, ProjectId};
use castellan_store::{AdminFilter, AdminKind, AdminRecord, Tx};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace)).routes(routes!(retrieve, update, remove))
}

const KIND: AdminKind = AdminKind::EnvVar;
/// The longest value accepted, in bytes.
const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The categories Braintrust's wire model names.
const CATEGORIES: [&str; 4] = ["env_var", "ai_provider", "sandbox_provider", "automation_integration"];

/// The authorization object an environment variable is set on (a function is a
/// prompt-type object).
fn scope_ref(t: EnvVarObjectType, id: Uuid) -> ObjectRef {
    let object_type = match t {
        EnvVarObjectType::Organization => ObjectType::Organization,
        EnvVarObjectType::Project => ObjectType::Project,
        EnvVarObjectType::Function => ObjectType::Prompt,
    };
    ObjectRef::new(object_type, id)
}

fn wire_type(scope: ObjectRef) -> EnvVarObjectType {
    match scope.object_type {
        ObjectType::Organization => EnvVarObjectType::Organization,
        ObjectType::Project => EnvVarObjectType::Project,
        _ => EnvVarObjectType::Function,
    }
}

/// An environment variable as answers show it: never its value.
fn wire(a: &AdminRecord) -> EnvVar {
    let text = |k: &str| a.data.get(k).and_then(Value::as_str).map(str::to_owned);
    EnvVar {
        id: a.id,
        object_type: wire_type(a.scope),
        object_id: a.scope.object_id,
        name: a.name.clone(),
        created: Some(format_time(a.created)),
        secret_updated_at: a.secret_updated_at.map(format_time),
        secret_updated_by_user_id: a.secret_updated_by.map(|u| u.0),
        used: None,
        metadata: a.data.get("metadata").filter(|m| !m.is_null()).cloned(),
        preview_secret: a.secret.as_ref().and(text("preview")),
        secret_type: text("secret_type"),
        secret_category: text("secret_category").unwrap_or_else(|| "env_var".into()),
    }
}

/// An environment variable as its audit record shows it: not even the preview (an
/// audit-log reader may not read what it is set on).
fn audited(a: &AdminRecord) -> EnvVar {
    EnvVar { preview_secret: None, ..wire(a) }
}

/// The organization of what a variable is set on (it exists: the caller was just
/// authorized on it).
async fn org_of(tx: &mut dyn Tx, scope: ObjectRef) -> ApiResult<OrgId> {
    let missing = || ApiError::NotFound(format!("{} `{}` not found", scope.object_type, scope.object_id));
    match scope.object_type {
        ObjectType::Organization => Ok(OrgId(scope.object_id)),
        ObjectType::Project => Ok(tx.get_project(ProjectId(scope.object_id)).await?.ok_or_else(missing)?.org_id),
        _ => Ok(tx.get_object(scope.object_id).await?.ok_or_else(missing)?.org_id),
    }
}

fn check_value(value: &Option<String>) -> ApiResult<()> {
    match value {
        Some(v) if v.len() > MAX_VALUE_BYTES => {
            Err(ApiError::invalid_body(format!("`value` is {} bytes; the limit is {MAX_VALUE_BYTES}", v.len())))
        }
        _ => Ok(()),
    }
}

fn check_metadata(metadata: &Option<Value>) -> ApiResult<()> {
    match metadata {
        Some(m) if !m.is_object() && !m.is_null() => {
            Err(ApiError::invalid_body(format!("`metadata` must be an object, got `{m}`")))
        }
        _ => Ok(()),
    }
}

fn check_category(category: &Option<String>) -> ApiResult<()> {
    match category {
        Some(c) if !CATEGORIES.contains(&c.as_str()) => Err(ApiError::invalid_body(format!(
            "`secret_category` must be one of {}, got `{c}`",
            CATEGORIES.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// How configuration as code lists environment variables: by name, type and
/// category only; the value is sealed, never exported, and never touched by apply
/// (one it creates has no value until someone sets it).
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec {
        scopes: &[ObjectType::Organization, ObjectType::Project, ObjectType::Prompt],
        keys: &["secret_category", "secret_type"],
        secret: true,
        records_creator: false,
        creation: super::setting::Creation::Update,
        delete: Permission::Update,
        check: |data| {
            super::config::text(data, "secret_type")?;
            check_category(&super::config::text(data, "secret_category")?.map(str::to_owned))
        },
        check_name: None,
        derived: None,
        audited: |a| serde_json::to_value(audited(a)).unwrap_or_default(),
    }
}

/// The env var list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnvVarFilters {
    /// Only these variables: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only variables of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    env_var_name: Option<String>,
    /// Only variables set on this kind of object.
    #[serde(default, deserialize_with = "empty_as_none")]
    object_type: Option<EnvVarObjectType>,
    /// Only variables set on this object.
    object_id: Option<Uuid>,
}

/// Environment variables the caller can read, newest first; filtered by what they
/// are set on (`object_type`, `object_id`), `env_var_name` and `ids`.
#[utoipa::path(get, path = "/v1/env_var", tag = "EnvVars", params(Page, EnvVarFilters, OrgName),
    responses((status = 200, body = ListResponse<EnvVar>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<EnvVarFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<EnvVar>>> {
    let scope = caller.list_scope(org.get()).await?;
    let filter = AdminFilter {
        kind: KIND,
        orgs: scope.orgs().to_vec(),
        scope_type: f.object_type.map(|t| scope_ref(t, Uuid::nil()).object_type),
        scope_id: f.object_id,
        ids: f.ids,
        name: f.env_var_name,
    };
    let mut tx = caller.state().read_scope(&scope).await?;
    let rows = super::admin_page(&mut *tx, &filter, &page, |a| scope.visible(Permission::Read, a.scope)).await?;
    Ok(Json(ListResponse { objects: rows.iter().map(wire).collect() }))
}

async fn create_or_replace(caller: Caller, body: CreateEnvVar, replace: bool) -> ApiResult<Written<EnvVar>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    check_value(&body.value)?;
    check_metadata(&body.metadata)?;
    check_category(&body.secret_category)?;
    let scope = scope_ref(body.object_type, body.object_id);
    // Anyone who can read what it is set on gets an existing variable back from a
    // create; making or changing one takes `update` there.
    let read = caller.require(Permission::Read, scope).await?;
    if !replace {
        let mut tx = caller.state().read(&read).await?;
        if let Some(a) = tx.find_admin(KIND, scope, name.as_str()).await? {
            return Ok(Written::existing(wire(&a)));
        }
    }
    let permit = caller.require(Permission::Update, scope).await?;
    let mut w = caller.state().write(&permit).await?;
    let org = org_of(w.tx(), scope).await?;
    let now = w.now();
    let fields = json!({
        "metadata": body.metadata,
        "secret_type": body.secret_type,
        "secret_category": body.secret_category,
    });
    let existing = w.tx().find_admin(KIND, scope, name.as_str()).await?;
    let out = match existing {
        Some(a) if !replace => return Ok(Written::existing(wire(&a))),
        Some(before) => {
            let mut after = before.clone();
            let preview = before.data.get("preview").cloned();
            after.data = fields;
            if let (Some(p), Some(m)) = (preview, after.data.as_object_mut()) {
                m.insert("preview".into(), p);
            }
            if let Some(v) = &body.value {
                super::setting::seal(&caller, &mut after, v, now)?;
            }
            after.updated = now;
            w.update_admin(&after, &audited(&before), &audited(&after)).await?;
            wire(&after)
        }
        None => {
            let mut a = AdminRecord {
                id: Uuid::now_v7(),
                kind: KIND,
                org_id: org,
                scope,
                name: name.into_inner(),
                data: fields,
                secret: None,
                secret_updated_at: None,
                secret_updated_by: None,
                created: now,
                updated: now,
            };
            if let Some(v) = &body.value {
                super::setting::seal(&caller, &mut a, v, now)?;
            }
            w.create_admin(&a, &audited(&a)).await?;
            wire(&a)
        }
    };
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// Creates an environment variable (`update` on what it is set on), or returns the
/// one of that name there unchanged (with `x-bt-found-existing: true`).
#[utoipa::path(post, path = "/v1/env_var", tag = "EnvVars", request_body = CreateEnvVar,
    responses((status = 200, body = EnvVar)))]
pub async fn create(caller: Caller, Body(body): Body<CreateEnvVar>) -> ApiResult<Written<EnvVar>> {
    create_or_replace(caller, body, false).await
}

/// Creates an environment variable, or replaces the metadata, type and category of
/// the one of that name (and its value, when one is given).
#[utoipa::path(put, path = "/v1/env_var", tag = "EnvVars", request_body = CreateEnvVar,
    responses((status = 200, body = EnvVar)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateEnvVar>) -> ApiResult<Written<EnvVar>> {
    create_or_replace(caller, body, true).await
}

/// One environment variable (its value is never shown).
#[utoipa::path(get, path = "/v1/env_var/{env_var_id}", tag = "EnvVars",
    params(("env_var_id" = Uuid, Path)), responses((status = 200, body = EnvVar)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<EnvVar>> {
    let (a, _) = caller.state().admin_for(&caller, KIND, id, Permission::Read).await?;
    Ok(Json(wire(&a)))
}

/// Renames an environment variable or changes its value, metadata or type
/// (`update` on what it is set on).
#[utoipa::path(patch, path = "/v1/env_var/{env_var_id}", tag = "EnvVars",
    params(("env_var_id" = Uuid, Path)), request_body = PatchEnvVar, responses((status = 200, body = EnvVar)))]
pub async fn update(caller: Caller, Path(id): Path<Uuid>, Body(body): Body<PatchEnvVar>) -> ApiResult<Written<EnvVar>> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    check_value(&body.value)?;
    check_metadata(&body.metadata)?;
    let (_, permit) = caller.state().admin_for(&caller, KIND, id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let before =
        w.tx().get_admin(id).await?.filter(|a| a.kind == KIND).ok_or_else(|| ApiError::not_found(KIND.as_str(), id))?;
    let mut after = before.clone();
    let now = w.now();
    if name.as_str() != before.name {
        after.name = name.into_inner();
        // The sealed value is bound to the name: open it under the old one and seal
        // it again under the new one.
        if body.value.is_none() {
            super::setting::reseal(&caller, &before, &mut after, "value")?;
        }
    }
    if let Some(m) = body.metadata {
        after.data["metadata"] = m;
    }
    if let Some(t) = body.secret_type {
        after.data["secret_type"] = json!(t);
    }
    if let Some(v) = &body.value {
        super::setting::seal(&caller, &mut after, v, now)?;
    }
    if after == before {
        return Ok(Written { revision: None, found_existing: false, body: wire(&before) });
    }
    after.updated = now;
    w.update_admin(&after, &audited(&before), &audited(&after)).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, wire(&after)))
}

/// Deletes an environment variable and its sealed value (`update` on what it is
/// set on).
#[utoipa::path(delete, path = "/v1/env_var/{env_var_id}", tag = "EnvVars",
    params(("env_var_id" = Uuid, Path)), responses((status = 200, body = EnvVar)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<EnvVar>> {
    let (_, permit) = caller.state().admin_for(&caller, KIND, id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let a =
        w.tx().get_admin(id).await?.filter(|a| a.kind == KIND).ok_or_else(|| ApiError::not_found(KIND.as_str(), id))?;
    w.delete_admin(&a, &audited(&a)).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, wire(&a)))
}
