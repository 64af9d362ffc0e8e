//! `/v1/experiment`: experiments and their events.

use super::objects::{self, check_object, check_tags, load, object_ref, project_ref, InProject, Listing};
use super::{invalid, OrgName, Written};
use crate::access::Caller;
use crate::dataplane::objects::{experiment as wire, fields, merge_value, to_data, ExperimentData};
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{
    format_time, CreateExperiment, Experiment, Feedback, FeedbackResponse, FetchEvents, FetchEventsResponse,
    InsertEvents, InsertEventsResponse, InternalMetadata, ListResponse, PatchExperiment,
};
use castellan_core::{Name, ObjectType, Permission, ProjectId};
use castellan_store::{EventKind, ObjectKind, ObjectRecord};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const KINDS: &[ObjectKind] = &[ObjectKind::Experiment];

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(list, create, replace))
        .routes(routes!(retrieve, update, remove))
        .routes(routes!(insert))
        .routes(routes!(fetch_get, fetch_post))
        .routes(routes!(feedback))
}

/// The experiment list's filters (besides its project and organization).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExperimentFilters {
    /// Only these experiments: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only the experiment of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    experiment_name: Option<String>,
}

/// Experiments the caller can read, newest first.
#[utoipa::path(get, path = "/v1/experiment", tag = "Experiments", params(Page, ExperimentFilters, InProject, OrgName),
    responses((status = 200, body = ListResponse<Experiment>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<ExperimentFilters>,
    Query(project): Query<InProject>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<Experiment>>> {
    let q = Listing { page, org, project, ids: f.ids, name: f.experiment_name, slug: None };
    let rows = objects::list(&caller, &q, KINDS).await?;
    Ok(Json(ListResponse { objects: rows.iter().map(wire).collect() }))
}

/// A readable object of `kind` in the experiment's org, for `base_exp_id` and
/// `dataset_id` (the same 400 whether it is missing or hidden).
async fn check_ref(
    caller: &Caller,
    w: &mut crate::access::Write,
    field: &str,
    kind: ObjectKind,
    id: Option<Uuid>,
    org: castellan_core::OrgId,
) -> ApiResult<()> {
    let Some(id) = id else { return Ok(()) };
    let found = w.tx().get_object(id).await?.filter(|o| o.kind == kind && o.org_id == org);
    if found.is_none() || !caller.can(Permission::Read, object_ref(kind, id)) {
        return Err(ApiError::invalid_body(format!("`{field}`: {} `{id}` not found", kind.as_str())));
    }
    Ok(())
}

/// `internal_metadata.dataset_filter` must be an object (or null) when given.
fn check_internal_metadata(m: &Option<InternalMetadata>) -> ApiResult<()> {
    match m.as_ref().and_then(|m| m.dataset_filter.as_ref()) {
        Some(f) if !f.is_object() && !f.is_null() => {
            Err(ApiError::invalid_body(format!("`internal_metadata.dataset_filter` must be an object, got `{f}`")))
        }
        _ => Ok(()),
    }
}

/// A name for an experiment that has none: the time, made unique.
fn generated_name(now: i64) -> String {
    let t = format_time(now);
    let compact: String = t.chars().take(19).filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    format!("experiment-{}", compact.replace('T', "-"))
}

/// Creates an experiment. With `ensure_new` (what the SDK sends) a taken name gets
/// a numeric suffix; without it the project's experiment of that name is returned.
/// A missing name is generated.
#[utoipa::path(post, path = "/v1/experiment", tag = "Experiments", request_body = CreateExperiment,
    responses((status = 200, body = Experiment)))]
pub async fn create(caller: Caller, Body(body): Body<CreateExperiment>) -> ApiResult<Written<Experiment>> {
    create_or_replace(&caller, body, false).await
}

/// Creates an experiment as `POST` does, except that the project's experiment of
/// that name (unless `ensure_new`) has its fields replaced by the body's (needs
/// `update` on it).
#[utoipa::path(put, path = "/v1/experiment", tag = "Experiments", request_body = CreateExperiment,
    responses((status = 200, body = Experiment)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateExperiment>) -> ApiResult<Written<Experiment>> {
    create_or_replace(&caller, body, true).await
}

/// `POST` (and, with `replace`, `PUT`) `/v1/experiment`; also
/// `POST /api/experiment/register`.
pub(crate) async fn create_or_replace(
    caller: &Caller,
    body: CreateExperiment,
    replace: bool,
) -> ApiResult<Written<Experiment>> {
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    check_object("metadata", &body.metadata)?;
    check_object("repo_info", &body.repo_info)?;
    check_tags(&body.tags)?;
    check_internal_metadata(&body.internal_metadata)?;
    let pid = ProjectId(body.project_id);
    let ensure_new = body.ensure_new.unwrap_or(false);
    if let (false, Some(n)) = (ensure_new, &name) {
        if let Some(o) = objects::existing_by_name(caller, pid, ObjectKind::Experiment, n.as_str()).await? {
            if !replace {
                return Ok(Written::existing(wire(&o)));
            }
            return replace_fields(caller, o.id, body).await;
        }
    }
    let permit = caller.require_create(ObjectType::Experiment, project_ref(pid)).await?;
    let mut w = caller.state().write(&permit).await?;
    let project = objects::project(&mut w, pid).await?;
    check_ref(caller, &mut w, "base_exp_id", ObjectKind::Experiment, body.base_exp_id, project.org_id).await?;
    check_ref(caller, &mut w, "dataset_id", ObjectKind::Dataset, body.dataset_id, project.org_id).await?;
    let base = match name {
        Some(n) => n.into_inner(),
        None => generated_name(w.now()),
    };
    let mut name = base.clone();
    let mut n = 0;
    while let Some(existing) = w.tx().find_object_by_name(pid, ObjectKind::Experiment, &name).await? {
        if !ensure_new && body.name.is_some() {
            return if caller.can(Permission::Read, object_ref(existing.kind, existing.id)) {
                Ok(Written::existing(wire(&existing)))
            } else {
                Err(ApiError::BadRequest {
                    code: crate::error::ErrorCode::NameTaken,
                    message: format!("an experiment named `{name}` already exists"),
                })
            };
        }
        n += 1;
        name = format!("{base}-{n}");
    }
    let data = ExperimentData {
        repo_info: body.repo_info,
        base_exp_id: body.base_exp_id,
        dataset_id: body.dataset_id,
        dataset_version: body.dataset_version,
        parameters_id: body.parameters_id,
        parameters_version: body.parameters_version,
        public: body.public.unwrap_or(false),
        metadata: body.metadata,
        tags: body.tags,
        internal_metadata: body.internal_metadata,
    };
    let o = ObjectRecord {
        id: Uuid::now_v7(),
        kind: ObjectKind::Experiment,
        project_id: pid,
        org_id: project.org_id,
        name,
        slug: None,
        description: body.description,
        user_id: Some(caller.user.id),
        xact_id: None,
        data: to_data(&data),
        created: w.now(),
    };
    let out = wire(&o);
    w.create_object(&o, &out).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// `PUT /v1/experiment` of an existing experiment: every field the body carries
/// replaces the stored one (absent ones are cleared), its name stays.
async fn replace_fields(caller: &Caller, id: Uuid, body: CreateExperiment) -> ApiResult<Written<Experiment>> {
    if body.base_exp_id == Some(id) {
        return Err(ApiError::invalid_body("`base_exp_id`: an experiment cannot be its own base"));
    }
    let (_, permit) = load(caller, KINDS, id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let before = objects::reload(&mut w, KINDS, id).await?;
    check_ref(caller, &mut w, "base_exp_id", ObjectKind::Experiment, body.base_exp_id, before.org_id).await?;
    check_ref(caller, &mut w, "dataset_id", ObjectKind::Dataset, body.dataset_id, before.org_id).await?;
    let data = ExperimentData {
        repo_info: body.repo_info,
        base_exp_id: body.base_exp_id,
        dataset_id: body.dataset_id,
        dataset_version: body.dataset_version,
        parameters_id: body.parameters_id,
        parameters_version: body.parameters_version,
        public: body.public.unwrap_or(false),
        metadata: body.metadata,
        tags: body.tags,
        internal_metadata: body.internal_metadata,
    };
    let after = ObjectRecord { description: body.description, data: to_data(&data), ..before.clone() };
    let mut out = objects::commit_update(w, &before, &after, wire).await?;
    out.found_existing = true;
    Ok(out)
}

/// One experiment.
#[utoipa::path(get, path = "/v1/experiment/{experiment_id}", tag = "Experiments",
    params(("experiment_id" = Uuid, Path)), responses((status = 200, body = Experiment)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<Experiment>> {
    let (o, _) = load(&caller, KINDS, id, Permission::Read).await?;
    Ok(Json(wire(&o)))
}

/// Changes an experiment; `metadata` is deep-merged, other fields replaced. An
/// absent body changes nothing.
#[utoipa::path(patch, path = "/v1/experiment/{experiment_id}", tag = "Experiments",
    params(("experiment_id" = Uuid, Path)), request_body = Option<PatchExperiment>,
    responses((status = 200, body = Experiment)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchExperiment>,
) -> ApiResult<Written<Experiment>> {
    let name = body.name.as_deref().map(|n| Name::parse("name", n)).transpose().map_err(invalid)?;
    check_object("metadata", &body.metadata)?;
    check_object("repo_info", &body.repo_info)?;
    check_tags(&body.tags)?;
    check_internal_metadata(&body.internal_metadata)?;
    if body.base_exp_id == Some(id) {
        return Err(ApiError::invalid_body("`base_exp_id`: an experiment cannot be its own base"));
    }
    let (_, permit) = load(&caller, KINDS, id, Permission::Update).await?;
    let mut w = caller.state().write(&permit).await?;
    let before = objects::reload(&mut w, KINDS, id).await?;
    check_ref(&caller, &mut w, "base_exp_id", ObjectKind::Experiment, body.base_exp_id, before.org_id).await?;
    check_ref(&caller, &mut w, "dataset_id", ObjectKind::Dataset, body.dataset_id, before.org_id).await?;
    let mut after = before.clone();
    let mut d: ExperimentData = fields(&before);
    if let Some(n) = name {
        after.name = n.into_inner();
    }
    if body.description.is_some() {
        after.description = body.description;
    }
    if let Some(m) = body.metadata {
        d.metadata = Some(merge_value(d.metadata.take(), m));
    }
    d.repo_info = body.repo_info.or(d.repo_info);
    d.base_exp_id = body.base_exp_id.or(d.base_exp_id);
    d.dataset_id = body.dataset_id.or(d.dataset_id);
    d.dataset_version = body.dataset_version.or(d.dataset_version);
    d.parameters_id = body.parameters_id.or(d.parameters_id);
    d.parameters_version = body.parameters_version.or(d.parameters_version);
    d.public = body.public.unwrap_or(d.public);
    d.tags = body.tags.or(d.tags);
    d.internal_metadata = body.internal_metadata.or(d.internal_metadata);
    after.data = to_data(&d);
    objects::commit_update(w, &before, &after, wire).await
}

/// Deletes an experiment and every grant on it.
#[utoipa::path(delete, path = "/v1/experiment/{experiment_id}", tag = "Experiments",
    params(("experiment_id" = Uuid, Path)), responses((status = 200, body = Experiment)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<Experiment>> {
    objects::remove(&caller, KINDS, id, wire).await
}

super::events::event_endpoints! {
    kind: EventKind::Experiment,
    id: "experiment_id",
    tag: "Experiments",
    insert: (
        "/v1/experiment/{experiment_id}/insert",
        "Inserts (replaces, merges or deletes) rows of an experiment.",
    ),
    fetch: (
        "/v1/experiment/{experiment_id}/fetch",
        "A page of an experiment's rows (query parameters as in the `POST` form).",
        "A page of an experiment's rows.",
    ),
    feedback: (
        "/v1/experiment/{experiment_id}/feedback",
        "Feedback (scores, expected values, comments) on an experiment's rows.",
    ),
}
