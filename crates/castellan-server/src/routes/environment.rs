//! `/environment` (no `/v1`, as in Braintrust): an organization's deployment
//! environments, and `/environment-object`: which version of a prompt or dataset
//! each environment serves.
//!
//! Every member may list and read environments; creating, changing or deleting one
//! takes `update` on the organization ("Manage settings"). Assigning a version of a
//! prompt or dataset to an environment takes `update` on that prompt or dataset;
//! reading an assignment takes `read` on it. An assignment is an administration
//! object set on the prompt or dataset and named by the environment's id, so a
//! renamed slug keeps its assignments and a deleted environment takes them along.

use super::setting::{self, text, Change, Draft, Setting};
use super::{OrgName, Written};
use crate::access::{Caller, Write};
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{
    format_time, CreateEnvironment, Environment, EnvironmentObject, ListResponse, PatchEnvironment,
};
use castellan_core::{ObjectRef, ObjectType, OrgId, Permission};
use castellan_store::{AdminFilter, AdminKind, AdminRecord, ObjectKind, Tx, Window, XactId};
use serde::Deserialize;
use serde_json::{json, Map};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(retrieve, update, remove)).routes(routes!(
        get_assignment,
        assign,
        unassign
    ))
}

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::Environment;
    const MEMBERS_READ: bool = true;
    type Wire = Environment;

    fn wire(a: &AdminRecord) -> Environment {
        Environment {
            id: a.id,
            org_id: a.org_id.0,
            name: text(a, "name").unwrap_or_else(|| a.name.clone()),
            slug: a.name.clone(),
            description: text(a, "description"),
            created: Some(format_time(a.created)),
            deleted_at: None,
        }
    }
}

/// Assignments (which version an environment serves), as audit records show them.
struct Assignment;

impl Setting for Assignment {
    const KIND: AdminKind = AdminKind::EnvironmentObject;
    type Wire = serde_json::Value;

    fn wire(a: &AdminRecord) -> serde_json::Value {
        json!({
            "object_type": a.scope.object_type,
            "object_id": a.scope.object_id,
            "environment_id": a.name,
            "environment_slug": a.data.get("environment_slug"),
            "object_version": a.data.get("object_version"),
        })
    }
}

/// How configuration as code lists environments: by slug (their name in a
/// document), with their display name and description. Deleting one deletes its
/// assignments too (see [`delete_in`]).
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec {
        check_name: Some(|slug| check_slug("slug", slug)),
        ..super::config::KindSpec::of::<Kind>(&[ObjectType::Organization], &["description", "name"], |data| {
            if let Some(n) = super::config::text(data, "name")? {
                setting::name("name", n)?;
            }
            super::config::text(data, "description").map(|_| ())
        })
    }
}

/// A slug: 1 to 100 letters, digits, `-` or `_`.
pub(crate) fn check_slug(field: &str, s: &str) -> ApiResult<()> {
    if s.is_empty() || s.len() > 100 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ApiError::invalid_body(format!(
            "`{field}` must be 1 to 100 letters, digits, `-` or `_`, got `{}`",
            s.chars().take(100).collect::<String>()
        )));
    }
    Ok(())
}

/// The organization's environment of slug `slug`, if any.
pub(crate) async fn find(tx: &mut dyn Tx, org: OrgId, slug: &str) -> ApiResult<Option<AdminRecord>> {
    Ok(tx.find_admin(AdminKind::Environment, ObjectRef::new(ObjectType::Organization, org.0), slug).await?)
}

/// The version of `object` the environment `slug` of `org` serves: `Err` 404 when
/// there is no such environment, `Ok(None)` when it serves none.
pub(crate) async fn assigned(tx: &mut dyn Tx, org: OrgId, object: ObjectRef, slug: &str) -> ApiResult<Option<String>> {
    let env = find(tx, org, slug).await?.ok_or_else(|| ApiError::NotFound(format!("no environment `{slug}`")))?;
    let a = tx.find_admin(AdminKind::EnvironmentObject, object, &env.id.to_string()).await?;
    Ok(a.and_then(|a| text(&a, "object_version")))
}

/// Makes the environment `slug` of `org` serve `version` of `object` (in `w`, whose
/// permit covers `update` on the object); a 400 when there is no such environment.
/// The change, when something changed (for `environment_update` automations, to be
/// fired once `w` commits).
pub(crate) async fn assign_in(
    w: &mut Write,
    caller: &Caller,
    org: OrgId,
    object: ObjectRef,
    slug: &str,
    version: &str,
) -> ApiResult<Option<crate::automation::EnvChange>> {
    let env = find(w.tx(), org, slug)
        .await?
        .ok_or_else(|| ApiError::invalid_body(format!("no environment `{slug}` in this organization")))?;
    let now = w.now();
    let data = json!({"object_version": version, "environment_slug": env.name});
    let change = |previous: Option<String>| crate::automation::EnvChange {
        org,
        object,
        slug: env.name.clone(),
        version: Some(version.to_owned()),
        previous,
        actor: caller.user.id,
    };
    match w.tx().find_admin(AdminKind::EnvironmentObject, object, &env.id.to_string()).await? {
        Some(before) => {
            let mut after = before.clone();
            after.data = data;
            if after != before {
                after.updated = now;
                w.update_admin(&after, &Assignment::wire(&before), &Assignment::wire(&after)).await?;
                return Ok(Some(change(text(&before, "object_version"))));
            }
            Ok(None)
        }
        None => {
            let a = AdminRecord {
                id: Uuid::now_v7(),
                kind: AdminKind::EnvironmentObject,
                org_id: org,
                scope: object,
                name: env.id.to_string(),
                data,
                secret: None,
                secret_updated_at: None,
                secret_updated_by: Some(caller.user.id),
                created: now,
                updated: now,
            };
            w.create_admin(&a, &Assignment::wire(&a)).await?;
            Ok(Some(change(None)))
        }
    }
}

/// The environment list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnvironmentFilters {
    /// Only these: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the environment of this name (or slug).
    #[serde(default, deserialize_with = "empty_as_none")]
    name: Option<String>,
}

/// The environments of the caller's organizations, newest first.
#[utoipa::path(get, path = "/environment", tag = "Environments", params(Page, EnvironmentFilters, OrgName),
    responses((status = 200, body = ListResponse<Environment>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<EnvironmentFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<Environment>>> {
    let filter = AdminFilter { ids: f.ids, ..setting::filter::<Kind>() };
    let name = f.name;
    let objects = setting::list::<Kind>(&caller, &page, org.get(), filter, |a| {
        name.as_deref().is_none_or(|n| a.name == n || text(a, "name").as_deref() == Some(n))
    })
    .await?;
    Ok(Json(ListResponse { objects }))
}

/// Creates an environment (`update` on the organization), or answers the one of
/// that slug unchanged (`x-bt-found-existing: true`).
#[utoipa::path(post, path = "/environment", tag = "Environments", request_body = CreateEnvironment,
    responses((status = 200, body = Environment)))]
pub async fn create(caller: Caller, Body(body): Body<CreateEnvironment>) -> ApiResult<Written<Environment>> {
    let name = setting::name("name", &body.name)?;
    check_slug("slug", &body.slug)?;
    let org = caller.org(body.org_name.as_deref()).await?;
    let mut data = Map::new();
    data.insert("name".into(), json!(name));
    data.insert("description".into(), json!(body.description));
    let draft =
        Draft { scope: ObjectRef::new(ObjectType::Organization, org.id.0), name: body.slug, data, secret: None };
    setting::create::<Kind>(&caller, Some(&org.name), draft, false).await
}

/// One environment (any member of its organization).
#[utoipa::path(get, path = "/environment/{environment_id}", tag = "Environments",
    params(("environment_id" = Uuid, Path)), responses((status = 200, body = Environment)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<Environment>> {
    Ok(Json(setting::retrieve::<Kind>(&caller, id).await?))
}

/// Renames an environment, changes its slug (its assignments follow) or its
/// description (`update` on the organization).
#[utoipa::path(patch, path = "/environment/{environment_id}", tag = "Environments",
    params(("environment_id" = Uuid, Path)), request_body = Option<PatchEnvironment>,
    responses((status = 200, body = Environment)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchEnvironment>,
) -> ApiResult<Written<Environment>> {
    let mut c = Change::default();
    if let Some(s) = body.slug {
        check_slug("slug", &s)?;
        c.name = Some(s);
    }
    if let Some(n) = &body.name {
        c.replace.insert("name".into(), json!(setting::name("name", n)?));
    }
    if let Some(d) = body.description {
        c.replace.insert("description".into(), json!(d));
    }
    setting::update::<Kind>(&caller, id, c, |_| Ok(())).await
}

/// Deletes an environment and every assignment to it (`update` on the
/// organization); each is audited.
#[utoipa::path(delete, path = "/environment/{environment_id}", tag = "Environments",
    params(("environment_id" = Uuid, Path)), responses((status = 200, body = Environment)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<Environment>> {
    let (_, permit) = caller.state().admin_for(&caller, AdminKind::Environment, id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let missing = || ApiError::not_found("environment", id);
    let env = w.tx().get_admin(id).await?.filter(|a| a.kind == AdminKind::Environment).ok_or_else(missing)?;
    delete_in(&mut w, &env).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, Kind::wire(&env)))
}

/// Deletes an environment and every assignment to it (in `w`, whose permit covers
/// `update` on the organization); each is audited.
pub(crate) async fn delete_in(w: &mut Write, env: &AdminRecord) -> ApiResult<()> {
    let filter = AdminFilter {
        kind: AdminKind::EnvironmentObject,
        orgs: vec![env.org_id],
        scope_type: None,
        scope_id: None,
        ids: Vec::new(),
        name: Some(env.id.to_string()),
    };
    for a in w.tx().list_admin(&filter, &Window::all()).await? {
        w.delete_admin(&a, &Assignment::wire(&a)).await?;
    }
    w.delete_admin(env, &Kind::wire(env)).await
}

/// What an assignment request names.
#[derive(Debug, Deserialize)]
pub struct AssignmentPath {
    object_type: String,
    object_id: Uuid,
    environment_slug: String,
}

/// The prompt or dataset an assignment path names, as an authorization object.
async fn assignment_target(
    caller: &Caller,
    p: &AssignmentPath,
    permission: Permission,
) -> ApiResult<(ObjectRef, OrgId)> {
    let (object_type, kinds): (ObjectType, &[ObjectKind]) = match p.object_type.as_str() {
        "prompt" => (ObjectType::Prompt, &[ObjectKind::Prompt, ObjectKind::Function]),
        "dataset" => (ObjectType::Dataset, &[ObjectKind::Dataset]),
        other => {
            return Err(ApiError::invalid_parameter(format!(
                "environments serve versions of `prompt` or `dataset` objects, not `{other}`"
            )))
        }
    };
    let object = ObjectRef::new(object_type, p.object_id);
    let permit = caller.require(permission, object).await?;
    let mut tx = caller.state().read(&permit).await?;
    let o = tx.get_object(p.object_id).await?.filter(|o| kinds.contains(&o.kind));
    let o = o.ok_or_else(|| ApiError::not_found(&p.object_type, p.object_id))?;
    Ok((object, o.org_id))
}

/// The version of a prompt or dataset an environment serves (`read` on it); 404
/// when it serves none.
#[utoipa::path(get, path = "/environment-object/{object_type}/{object_id}/{environment_slug}", tag = "Environments",
    params(("object_type" = String, Path, description = "`prompt` or `dataset`"), ("object_id" = Uuid, Path),
        ("environment_slug" = String, Path), OrgName),
    responses((status = 200, body = EnvironmentObject)))]
pub async fn get_assignment(
    caller: Caller,
    Path(p): Path<AssignmentPath>,
    Query(_org): Query<OrgName>,
) -> ApiResult<Json<EnvironmentObject>> {
    let (object, org) = assignment_target(&caller, &p, Permission::Read).await?;
    let permit = caller.require(Permission::Read, object).await?;
    let mut tx = caller.state().read(&permit).await?;
    match assigned(&mut *tx, org, object, &p.environment_slug).await? {
        Some(object_version) => Ok(Json(EnvironmentObject { object_version })),
        None => Err(ApiError::NotFound(format!(
            "environment `{}` serves no version of {} `{}`",
            p.environment_slug, p.object_type, p.object_id
        ))),
    }
}

/// Makes an environment serve a version of a prompt or dataset (`update` on it);
/// idempotent. A prompt's version must be one of its versions.
#[utoipa::path(put, path = "/environment-object/{object_type}/{object_id}/{environment_slug}", tag = "Environments",
    params(("object_type" = String, Path, description = "`prompt` or `dataset`"), ("object_id" = Uuid, Path),
        ("environment_slug" = String, Path)),
    request_body = EnvironmentObject, responses((status = 200, body = EnvironmentObject)))]
pub async fn assign(
    caller: Caller,
    Path(p): Path<AssignmentPath>,
    Body(body): Body<EnvironmentObject>,
) -> ApiResult<Written<EnvironmentObject>> {
    let version = XactId::parse(&body.object_version).ok_or_else(|| {
        ApiError::invalid_body(format!(
            "`object_version` must be a transaction id (19 digits), got `{}`",
            body.object_version
        ))
    })?;
    let (object, org) = assignment_target(&caller, &p, Permission::Update).await?;
    let permit = caller.require(Permission::Update, object).await?;
    let mut w = caller.state().write(&permit).await?;
    if object.object_type == ObjectType::Prompt && w.tx().get_object_version(object.object_id, version).await?.is_none()
    {
        return Err(ApiError::invalid_body(format!("prompt `{}` has no version `{version}`", object.object_id)));
    }
    let change = assign_in(&mut w, &caller, org, object, &p.environment_slug, &version.to_string()).await?;
    let rev = w.commit().await?;
    crate::automation::environment_changed(caller.state(), &permit, change.into_iter().collect());
    Ok(Written::at(rev, EnvironmentObject { object_version: version.to_string() }))
}

/// Stops an environment serving any version of a prompt or dataset (`update` on it).
#[utoipa::path(delete, path = "/environment-object/{object_type}/{object_id}/{environment_slug}", tag = "Environments",
    params(("object_type" = String, Path, description = "`prompt` or `dataset`"), ("object_id" = Uuid, Path),
        ("environment_slug" = String, Path)),
    responses((status = 200, body = EnvironmentObject)))]
pub async fn unassign(caller: Caller, Path(p): Path<AssignmentPath>) -> ApiResult<Written<EnvironmentObject>> {
    let (object, org) = assignment_target(&caller, &p, Permission::Update).await?;
    let permit = caller.require(Permission::Update, object).await?;
    let mut w = caller.state().write(&permit).await?;
    let slug = &p.environment_slug;
    let env = find(w.tx(), org, slug).await?.ok_or_else(|| ApiError::NotFound(format!("no environment `{slug}`")))?;
    let a = w.tx().find_admin(AdminKind::EnvironmentObject, object, &env.id.to_string()).await?;
    let a = a.ok_or_else(|| ApiError::NotFound(format!("environment `{slug}` serves no version of this object")))?;
    w.delete_admin(&a, &Assignment::wire(&a)).await?;
    let rev = w.commit().await?;
    let change = crate::automation::EnvChange {
        org,
        object,
        slug: env.name.clone(),
        version: None,
        previous: text(&a, "object_version"),
        actor: caller.user.id,
    };
    crate::automation::environment_changed(caller.state(), &permit, vec![change]);
    Ok(Written::at(rev, EnvironmentObject { object_version: text(&a, "object_version").unwrap_or_default() }))
}
