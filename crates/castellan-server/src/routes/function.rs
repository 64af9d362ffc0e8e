//! `/v1/function` (scorers, tools, tasks, … and prompts), and what `/v1/prompt`
//! shares with it: every create, replace and patch is a new version with its own
//! transaction id, and reads can ask for any past version.

use super::objects::{self, check_object, check_tags, load, object_ref, project_ref, InProject, Listing};
use super::{invalid, OrgName, Written};
use crate::access::Caller;
use crate::dataplane::objects::{
    fields, function as wire, function_kind, merge_value, to_data, FunctionData, FUNCTION_TYPES,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{CreateFunction, Function, ListResponse, PatchFunction};
use castellan_core::{Name, ObjectType, Permission, ProjectId};
use castellan_store::{ObjectKind, ObjectRecord, XactId};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// Which endpoint family a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/v1/prompt`: prompts only; `function_data` is always `{"type": "prompt"}`.
    Prompt,
    /// `/v1/function`: every function, prompts included.
    Function,
}

impl Mode {
    fn kinds(self) -> &'static [ObjectKind] {
        match self {
            Mode::Prompt => &[ObjectKind::Prompt],
            Mode::Function => &[ObjectKind::Function, ObjectKind::Prompt],
        }
    }
}

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace)).routes(routes!(retrieve, update, remove))
}

fn check_slug(slug: &str) -> ApiResult<String> {
    let s = slug.trim();
    if s.is_empty() || s.chars().count() > 256 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid_body(format!("`slug` must be 1 to 256 characters without spaces, got `{slug}`")));
    }
    Ok(s.to_owned())
}

fn check_function_type(t: &Option<String>) -> ApiResult<()> {
    match t {
        Some(t) if !FUNCTION_TYPES.contains(&t.as_str()) => Err(ApiError::invalid_body(format!(
            "`function_type` must be one of {}; got `{t}`",
            FUNCTION_TYPES.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// `environment_slugs`: distinct slugs; each must name an environment of the
/// organization (checked when the version is written, which then serves it there).
fn check_environment_slugs(slugs: &Option<Vec<String>>) -> ApiResult<Option<Vec<String>>> {
    let Some(slugs) = slugs else { return Ok(None) };
    let mut out: Vec<String> = Vec::with_capacity(slugs.len());
    for (i, s) in slugs.iter().enumerate() {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > 256 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ApiError::invalid_body(format!(
                "`environment_slugs[{i}]` must be 1 to 256 characters without spaces, got `{s}`"
            )));
        }
        if out.iter().any(|o| o == t) {
            return Err(ApiError::invalid_body(format!("`environment_slugs` lists `{t}` twice")));
        }
        out.push(t.to_owned());
    }
    Ok(Some(out))
}

fn check_function_data(v: &Value) -> ApiResult<()> {
    if v.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(ApiError::invalid_body(format!("`function_data` must be an object with a `type`, got `{v}`")));
    }
    Ok(())
}

/// The version of a function (or prompt) to read: by transaction id, or by the
/// environment it is deployed to.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Version {
    /// A past version: its transaction id (19 digits, or the SDK's 16-hex form);
    /// default: the current one.
    #[serde(default, deserialize_with = "empty_as_none")]
    version: Option<String>,
    /// The version deployed to this environment, by slug; not together with
    /// `version` (400). A list must match a single prompt to resolve it (400
    /// otherwise); an unknown environment is 404, and so is a prompt the environment
    /// serves no version of.
    #[serde(default, deserialize_with = "empty_as_none")]
    environment: Option<String>,
}

/// Which version a read asks for.
enum Requested<'a> {
    Current,
    At(XactId),
    Environment(&'a str),
}

impl Version {
    /// The version asked for.
    fn requested(&self) -> ApiResult<Requested<'_>> {
        if let Some(env) = &self.environment {
            if self.version.is_some() {
                return Err(ApiError::invalid_parameter("pass `version` or `environment`, not both"));
            }
            return Ok(Requested::Environment(env));
        }
        match &self.version {
            None => Ok(Requested::Current),
            Some(v) => XactId::parse(v).map(Requested::At).ok_or_else(|| {
                ApiError::invalid_parameter(format!("`version` must be a transaction id (19 digits), got `{v}`"))
            }),
        }
    }
}

/// The version of `o` the environment `slug` serves, read in `tx`.
async fn environment_version(tx: &mut dyn castellan_store::Tx, o: &ObjectRecord, slug: &str) -> ApiResult<Function> {
    let object = object_ref(o.kind, o.id);
    let served = super::environment::assigned(tx, o.org_id, object, slug).await?;
    let v = served
        .as_deref()
        .and_then(XactId::parse)
        .ok_or_else(|| ApiError::NotFound(format!("environment `{slug}` serves no version of `{}`", o.id)))?;
    let old = tx.get_object_version(o.id, v).await?;
    old.map(|o| wire(&o)).ok_or_else(|| ApiError::NotFound(format!("version `{v}` of `{}` not found", o.id)))
}

/// The function list's filters (besides its project, organization and version).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FunctionFilters {
    /// Only these functions: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the functions of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    function_name: Option<String>,
    /// Only the function with this slug.
    #[serde(default, deserialize_with = "empty_as_none")]
    slug: Option<String>,
}

/// Lists the functions (or prompts) the caller can read, at `version` if asked.
pub async fn list_in(caller: &Caller, q: &Listing, version: &Version, mode: Mode) -> ApiResult<Vec<Function>> {
    let requested = version.requested()?;
    let rows = objects::list(caller, q, mode.kinds()).await?;
    let v = match requested {
        Requested::Current => return Ok(rows.iter().map(wire).collect()),
        Requested::At(v) => v,
        Requested::Environment(slug) => {
            let [o] = rows.as_slice() else {
                return Err(ApiError::invalid_parameter(format!(
                    "`environment` needs the request to match a single prompt, and it matches {}: narrow it with `slug`, `project_id` or `limit=1`",
                    rows.len()
                )));
            };
            let scope = caller.list_scope(q.org.get()).await?;
            let mut tx = caller.state().read_scope(&scope).await?;
            return Ok(vec![environment_version(&mut *tx, o, slug).await?]);
        }
    };
    // Each row is already authorized; its versions are the same object.
    let scope = caller.list_scope(q.org.get()).await?;
    let mut tx = caller.state().read_scope(&scope).await?;
    let mut out = Vec::new();
    for o in rows {
        if let Some(old) = tx.get_object_version(o.id, v).await? {
            out.push(wire(&old));
        }
    }
    Ok(out)
}

/// One function (or prompt), at `version` if asked.
pub async fn retrieve_in(caller: &Caller, id: Uuid, version: &Version, mode: Mode) -> ApiResult<Function> {
    let requested = version.requested()?;
    let (o, permit) = load(caller, mode.kinds(), id, Permission::Read).await?;
    let v = match requested {
        Requested::Current => return Ok(wire(&o)),
        Requested::At(v) => v,
        Requested::Environment(slug) => {
            let mut tx = caller.state().read(&permit).await?;
            return environment_version(&mut *tx, &o, slug).await;
        }
    };
    let mut tx = caller.state().read(&permit).await?;
    let old = tx.get_object_version(id, v).await?;
    old.map(|o| wire(&o)).ok_or_else(|| ApiError::NotFound(format!("version `{v}` of `{id}` not found")))
}

/// Validates a create body and returns (name, slug, function_data).
fn check_create(body: &CreateFunction, mode: Mode) -> ApiResult<(Name, String, Value, Option<Vec<String>>)> {
    let name = Name::parse("name", &body.name).map_err(invalid)?;
    let slug = check_slug(&body.slug)?;
    check_object("prompt_data", &body.prompt_data)?;
    check_object("metadata", &body.metadata)?;
    check_tags(&body.tags)?;
    check_function_type(&body.function_type)?;
    let function_data = match (mode, &body.function_data) {
        (Mode::Prompt, _) => json!({"type": "prompt"}),
        (Mode::Function, Some(d)) => {
            check_function_data(d)?;
            d.clone()
        }
        (Mode::Function, None) => return Err(ApiError::invalid_body("`function_data` is required")),
    };
    let environments = check_environment_slugs(&body.environment_slugs)?;
    Ok((name, slug, function_data, environments))
}

/// The function (or prompt) of `slug` in a project, if the caller can read it.
pub async fn find_by_slug(caller: &Caller, project: Uuid, slug: &str) -> ApiResult<Option<ObjectRecord>> {
    let scope = caller.list_scope(None).await?;
    let mut tx = caller.state().read_scope(&scope).await?;
    let found = tx.find_object_by_slug(ProjectId(project), slug).await?;
    Ok(found.filter(|o| {
        Mode::Function.kinds().contains(&o.kind) && scope.visible(Permission::Read, object_ref(o.kind, o.id))
    }))
}

/// Creates a function (or prompt). With `replace`, an existing one of that slug
/// gets a new version with these fields (`update` on it); without, it is returned
/// unchanged when readable.
pub async fn create_in(
    caller: &Caller,
    body: CreateFunction,
    mode: Mode,
    replace: bool,
) -> ApiResult<Written<Function>> {
    let (name, slug, function_data, environment_slugs) = check_create(&body, mode)?;
    let pid = ProjectId(body.project_id);
    let data = FunctionData {
        prompt_data: body.prompt_data,
        tags: body.tags,
        metadata: body.metadata,
        function_type: body.function_type,
        function_data: function_data.clone(),
        origin: body.origin,
        function_schema: body.function_schema,
        environment_slugs,
    };
    let existing = {
        let scope = caller.list_scope(None).await?;
        let mut tx = caller.state().read_scope(&scope).await?;
        let found = tx.find_object_by_slug(pid, &slug).await?;
        found.filter(|o| mode.kinds().contains(&o.kind) && scope.visible(Permission::Read, object_ref(o.kind, o.id)))
    };
    let permit = match &existing {
        Some(o) if !replace => return Ok(Written::existing(wire(o))),
        Some(o) => caller.require(Permission::Update, object_ref(o.kind, o.id)).await?,
        None => caller.require_create(ObjectType::Prompt, project_ref(pid)).await?,
    };
    let mut w = caller.state().write(&permit).await?;
    let project = objects::project(&mut w, pid).await?;
    let xact = w.tx().next_xact_id().await?;
    let current = w.tx().find_object_by_slug(pid, &slug).await?;
    let (o, before) = match current {
        Some(cur) if existing.as_ref().is_some_and(|e| e.id == cur.id) => {
            let mut o = cur.clone();
            o.kind = function_kind(&function_data);
            o.name = name.into_inner();
            o.description = body.description;
            o.xact_id = Some(xact);
            o.data = to_data(&data);
            (o, Some(cur))
        }
        Some(_) => {
            return Err(ApiError::BadRequest {
                code: crate::error::ErrorCode::NameTaken,
                message: format!("a prompt or function with slug `{slug}` already exists"),
            })
        }
        None => (
            ObjectRecord {
                id: Uuid::now_v7(),
                kind: function_kind(&function_data),
                project_id: pid,
                org_id: project.org_id,
                name: name.into_inner(),
                slug: Some(slug),
                description: body.description,
                user_id: Some(caller.user.id),
                xact_id: Some(xact),
                data: to_data(&data),
                created: w.now(),
            },
            None,
        ),
    };
    let out = wire(&o);
    match &before {
        None => w.create_object(&o, &out).await?,
        Some(b) => w.update_object(&o, &wire(b), &out).await?,
    }
    w.record_version(&o).await?;
    // The new version is what the named environments serve: every slug must name an
    // environment, or nothing is written.
    let mut changes = Vec::new();
    for slug in data.environment_slugs.iter().flatten() {
        let c =
            super::environment::assign_in(&mut w, caller, o.org_id, object_ref(o.kind, o.id), slug, &xact.to_string())
                .await?;
        changes.extend(c);
    }
    let rev = w.commit().await?;
    crate::automation::environment_changed(caller.state(), &permit, changes);
    Ok(Written::at(rev, out))
}

/// A new version of a function (or prompt) with the given fields changed; when
/// nothing changes (an absent or empty body), the current version, unwritten.
pub async fn update_in(caller: &Caller, id: Uuid, body: PatchFunction, mode: Mode) -> ApiResult<Written<Function>> {
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    let slug = body.slug.as_deref().map(check_slug).transpose()?;
    check_object("prompt_data", &body.prompt_data)?;
    check_object("metadata", &body.metadata)?;
    check_tags(&body.tags)?;
    check_function_type(&body.function_type)?;
    if let Some(d) = &body.function_data {
        if mode == Mode::Prompt {
            return Err(ApiError::invalid_body("`function_data` of a prompt cannot change; use /v1/function"));
        }
        check_function_data(d)?;
    }
    let (_, permit) = load(caller, mode.kinds(), id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let before = objects::reload(&mut w, mode.kinds(), id).await?;
    let mut d: FunctionData = fields(&before);
    let mut after = before.clone();
    if let Some(n) = name {
        after.name = n.into_inner();
    }
    if slug.is_some() {
        after.slug = slug;
    }
    if body.description.is_some() {
        after.description = body.description;
    }
    if let Some(m) = body.metadata {
        d.metadata = Some(merge_value(d.metadata.take(), m));
    }
    d.prompt_data = body.prompt_data.or(d.prompt_data);
    d.tags = body.tags.or(d.tags);
    d.function_type = body.function_type.or(d.function_type);
    d.origin = body.origin.or(d.origin);
    d.function_schema = body.function_schema.or(d.function_schema);
    if let Some(f) = body.function_data {
        after.kind = function_kind(&f);
        d.function_data = f;
    }
    after.data = to_data(&d);
    if after == before {
        // Nothing to change (an absent or empty body): no new version.
        return Ok(Written { revision: None, found_existing: false, body: wire(&before) });
    }
    after.xact_id = Some(w.tx().next_xact_id().await?);
    let out = wire(&after);
    w.update_object(&after, &wire(&before), &out).await?;
    w.record_version(&after).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// Deletes a function (or prompt) and every grant on it.
pub async fn remove_in(caller: &Caller, id: Uuid, mode: Mode) -> ApiResult<Written<Function>> {
    objects::remove(caller, mode.kinds(), id, wire).await
}

/// Functions (prompts included) the caller can read, newest first.
#[utoipa::path(get, path = "/v1/function", tag = "Functions", params(Page, FunctionFilters, Version, InProject, OrgName),
    responses((status = 200, body = ListResponse<Function>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<FunctionFilters>,
    Query(version): Query<Version>,
    Query(project): Query<InProject>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<Function>>> {
    let q = Listing { page, org, project, ids: f.ids, name: f.function_name, slug: f.slug };
    Ok(Json(ListResponse { objects: list_in(&caller, &q, &version, Mode::Function).await? }))
}

/// Creates a function, or returns the project's function of that slug unchanged.
#[utoipa::path(post, path = "/v1/function", tag = "Functions", request_body = CreateFunction,
    responses((status = 200, body = Function)))]
pub async fn create(caller: Caller, Body(body): Body<CreateFunction>) -> ApiResult<Written<Function>> {
    create_in(&caller, body, Mode::Function, false).await
}

/// Creates a function, or replaces the project's function of that slug (a new version).
#[utoipa::path(put, path = "/v1/function", tag = "Functions", request_body = CreateFunction,
    responses((status = 200, body = Function)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateFunction>) -> ApiResult<Written<Function>> {
    create_in(&caller, body, Mode::Function, true).await
}

/// One function, at `version` if asked.
#[utoipa::path(get, path = "/v1/function/{function_id}", tag = "Functions",
    params(("function_id" = Uuid, Path), Version), responses((status = 200, body = Function)))]
pub async fn retrieve(
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(version): Query<Version>,
) -> ApiResult<Json<Function>> {
    Ok(Json(retrieve_in(&caller, id, &version, Mode::Function).await?))
}

/// A new version of a function with these fields changed.
#[utoipa::path(patch, path = "/v1/function/{function_id}", tag = "Functions",
    params(("function_id" = Uuid, Path)), request_body = Option<PatchFunction>, responses((status = 200, body = Function)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchFunction>,
) -> ApiResult<Written<Function>> {
    update_in(&caller, id, body, Mode::Function).await
}

/// Deletes a function and every grant on it.
#[utoipa::path(delete, path = "/v1/function/{function_id}", tag = "Functions",
    params(("function_id" = Uuid, Path)), responses((status = 200, body = Function)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<Function>> {
    remove_in(&caller, id, Mode::Function).await
}
