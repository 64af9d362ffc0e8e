//! The app routes the TypeScript SDK (and the Python SDK up to 0.34) calls on the app
//! URL instead of `/v1`: `/api/project/register`, `/api/experiment/register`, … Each
//! is the twin of a `/v1` endpoint and runs that endpoint's code, so it is authorized
//! exactly like it (docs/permissions.md).

use super::objects::{self, object_ref, project_ref, InProject, Listing};
use super::{OrgName, Written};
use crate::access::Caller;
use crate::dataplane::objects::{fields, ExperimentData};
use crate::dto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{
    CreateDataset, CreateExperiment, CreateProject, Experiment, GetExperiments, GetObjectInfo, GetProjects, ObjectInfo,
    ParentInfo, Project, RegisterDataset, RegisterExperiment, RegisterProject, RegisteredDataset, RegisteredExperiment,
    RegisteredProject,
};
use castellan_core::{OrgId, Permission, ProjectId};
use castellan_store::{ObjectKind, ObjectRecord, ProjectRecord};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(register_project))
        .routes(routes!(get_project))
        .routes(routes!(get_projects))
        .routes(routes!(register_experiment))
        .routes(routes!(get_experiments))
        .routes(routes!(register_dataset))
        .routes(routes!(object_info))
}

/// The name the SDKs give a project they are not told the name of.
const GLOBAL_PROJECT: &str = "Global";

/// The most ids one `POST /api/self/get_object_info` may ask about.
const MAX_OBJECT_IDS: usize = 1000;

/// The organization a register call is about: `org_id` (one the caller belongs to),
/// else `org_name` (or the header), else the caller's only one.
async fn org_name_of(caller: &Caller, org_id: Option<Uuid>, org_name: Option<String>) -> ApiResult<String> {
    match org_id {
        Some(id) => Ok(caller.org_by_id(OrgId(id)).await?.name),
        None => Ok(caller.org(org_name.as_deref()).await?.name),
    }
}

/// The project as the caller may see it: all of it when it can read the project, else
/// (a grant on something inside it) only its id, which also stands for its name.
fn project_view(caller: &Caller, p: &ProjectRecord) -> Project {
    if caller.can(Permission::Read, project_ref(p.id)) {
        return dto::project(p);
    }
    Project {
        id: p.id.0,
        org_id: p.org_id.0,
        name: p.id.0.to_string(),
        description: None,
        created: None,
        deleted_at: None,
        user_id: None,
        settings: None,
    }
}

/// A project the caller has just been allowed to act in, by id.
async fn project_record(caller: &Caller, id: ProjectId) -> ApiResult<ProjectRecord> {
    let scope = caller.list_scope(None).await?;
    let mut tx = caller.state().read_scope(&scope).await?;
    tx.get_project(id)
        .await?
        .filter(|p| scope.orgs().contains(&p.org_id))
        .ok_or_else(|| ApiError::not_found("project", id))
}

/// The project a register call names: by id as it is (what may be done in it is
/// decided by the `/v1` twin), or by name, created if missing as `POST
/// /api/project/register` does.
async fn project_of(
    caller: &Caller,
    project_id: Option<Uuid>,
    project_name: Option<String>,
    org: (Option<Uuid>, Option<String>),
) -> ApiResult<ProjectId> {
    if let Some(id) = project_id {
        return Ok(ProjectId(id));
    }
    let Some(name) = project_name.filter(|n| !n.is_empty()) else {
        return Err(ApiError::invalid_body("one of `project_id` and `project_name` is required"));
    };
    let org_name = org_name_of(caller, org.0, org.1).await?;
    let body = CreateProject { name, description: None, org_name: Some(org_name), project_group_name: None };
    Ok(ProjectId(super::project::create_or_replace(caller, body, false).await?.body.id))
}

/// Creates a project, or returns the org's project of that name: `POST /v1/project`
/// (`read` on an existing one, else `create` of a project in the org).
#[utoipa::path(post, path = "/api/project/register", tag = "Projects", request_body = RegisterProject,
    responses((status = 200, body = RegisteredProject)))]
pub async fn register_project(
    caller: Caller,
    Body(body): Body<RegisterProject>,
) -> ApiResult<Written<RegisteredProject>> {
    let org_name = org_name_of(&caller, body.org_id, body.org_name).await?;
    let name = body.project_name.filter(|n| !n.is_empty()).unwrap_or_else(|| GLOBAL_PROJECT.into());
    let create = CreateProject { name, description: None, org_name: Some(org_name), project_group_name: None };
    let w = super::project::create_or_replace(&caller, create, false).await?;
    Ok(Written { revision: w.revision, found_existing: w.found_existing, body: RegisteredProject { project: w.body } })
}

/// The project `GET /api/project` reads.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectIdQuery {
    /// The project.
    id: Uuid,
}

/// One project: `GET /v1/project/{id}` (`read` on it).
#[utoipa::path(get, path = "/api/project", tag = "Projects", params(ProjectIdQuery),
    responses((status = 200, body = Project)))]
pub async fn get_project(caller: Caller, Query(q): Query<ProjectIdQuery>) -> ApiResult<Json<Project>> {
    super::project::retrieve(caller, Path(ProjectId(q.id))).await
}

/// The projects the caller can read that match, as a bare array: `GET /v1/project`
/// with `ids` and `project_name`.
#[utoipa::path(post, path = "/api/project/get", tag = "Projects", request_body = GetProjects,
    responses((status = 200, body = Vec<Project>)))]
pub async fn get_projects(caller: Caller, Body(body): Body<GetProjects>) -> ApiResult<Json<Vec<Project>>> {
    let org = OrgName::named(body.org_name);
    let name = body.name.filter(|n| !n.is_empty());
    let ids = body.id.into_iter().collect();
    Ok(Json(super::project::list_in(&caller, &Page::default(), org.get(), ids, name).await?))
}

/// The base experiment a register call asks for: by id as it is (the `/v1` twin
/// checks it), by name in the project (a 400 saying "base experiment" when the
/// caller cannot read one of that name: the SDK then retries without it), or the
/// project's newest readable experiment made at one of `ancestor_commits`.
async fn base_of(caller: &Caller, pid: ProjectId, body: &RegisterExperiment) -> ApiResult<Option<Uuid>> {
    if let Some(id) = body.base_exp_id {
        return Ok(Some(id));
    }
    if let Some(name) = body.base_experiment.as_deref().filter(|n| !n.is_empty()) {
        return match objects::existing_by_name(caller, pid, ObjectKind::Experiment, name).await? {
            Some(o) => Ok(Some(o.id)),
            // A caller that cannot see the project learns nothing here: the create
            // that follows answers it as for any project it cannot see.
            None if !caller.can(Permission::Read, project_ref(pid)) => Ok(None),
            None => Err(ApiError::invalid_body(format!("base experiment `{name}` not found in the project"))),
        };
    }
    let commits = body.ancestor_commits.as_deref().unwrap_or_default();
    if commits.is_empty() {
        return Ok(None);
    }
    let q = Listing { project: InProject::new(None, Some(pid.0)), ..Default::default() };
    let newest_first = objects::list(caller, &q, &[ObjectKind::Experiment]).await?;
    let at_ancestor = |o: &ObjectRecord| {
        let d: ExperimentData = fields(o);
        let commit = d.repo_info.as_ref().and_then(|r| r.get("commit")).and_then(|c| c.as_str()).map(str::to_owned);
        commit.is_some_and(|c| commits.contains(&c))
    };
    Ok(newest_first.iter().find(|o| at_ancestor(o)).map(|o| o.id))
}

/// Creates an experiment (or, with `update`, reopens the project's experiment of that
/// name): `POST /v1/experiment` (`create` of an experiment in the project, or `read`
/// on the reopened one), with the project named by id, or by name and made if missing
/// as `POST /api/project/register` does.
#[utoipa::path(post, path = "/api/experiment/register", tag = "Experiments", request_body = RegisterExperiment,
    responses((status = 200, body = RegisteredExperiment)))]
pub async fn register_experiment(
    caller: Caller,
    Body(body): Body<RegisterExperiment>,
) -> ApiResult<Written<RegisteredExperiment>> {
    let org = (body.org_id, body.org_name.clone());
    let pid = project_of(&caller, body.project_id, body.project_name.clone(), org).await?;
    let base_exp_id = base_of(&caller, pid, &body).await?;
    let create = CreateExperiment {
        project_id: pid.0,
        name: body.experiment_name.filter(|n| !n.is_empty()),
        description: body.description,
        repo_info: body.repo_info,
        base_exp_id,
        ancestor_commits: None,
        dataset_id: body.dataset_id,
        dataset_version: body.dataset_version,
        parameters_id: body.parameters_id,
        parameters_version: body.parameters_version,
        public: body.public,
        metadata: body.metadata,
        tags: body.tags,
        ensure_new: Some(!body.update.unwrap_or(false)),
        internal_metadata: body.internal_metadata,
    };
    let w = super::experiment::create_or_replace(&caller, create, false).await?;
    let project = project_view(&caller, &project_record(&caller, pid).await?);
    let body = RegisteredExperiment { project, experiment: w.body };
    Ok(Written { revision: w.revision, found_existing: w.found_existing, body })
}

/// The readable experiments that match, as a bare array: `GET /v1/experiment` with
/// `project_name` / `project_id`, `experiment_name` and `org_name`.
#[utoipa::path(post, path = "/api/experiment/get", tag = "Experiments", request_body = GetExperiments,
    responses((status = 200, body = Vec<Experiment>)))]
pub async fn get_experiments(caller: Caller, Body(body): Body<GetExperiments>) -> ApiResult<Json<Vec<Experiment>>> {
    let q = Listing {
        org: OrgName::named(body.org_name),
        project: InProject::new(body.project_name, body.project_id),
        name: body.experiment_name.filter(|n| !n.is_empty()),
        ..Default::default()
    };
    let rows = objects::list(&caller, &q, &[ObjectKind::Experiment]).await?;
    Ok(Json(rows.iter().map(crate::dataplane::objects::experiment).collect()))
}

/// Creates a dataset, or returns the project's dataset of that name: `POST
/// /v1/dataset` (`read` on an existing one, else `create` of a dataset in the
/// project), with the project named by id, or by name and made if missing.
#[utoipa::path(post, path = "/api/dataset/register", tag = "Datasets", request_body = RegisterDataset,
    responses((status = 200, body = RegisteredDataset)))]
pub async fn register_dataset(
    caller: Caller,
    Body(body): Body<RegisterDataset>,
) -> ApiResult<Written<RegisteredDataset>> {
    let pid = project_of(&caller, body.project_id, body.project_name, (body.org_id, body.org_name)).await?;
    let create = CreateDataset {
        project_id: pid.0,
        name: body.dataset_name.filter(|n| !n.is_empty()).unwrap_or_else(|| "logs".into()),
        description: body.description,
        metadata: body.metadata,
        tags: None,
    };
    let w = super::dataset::create_or_replace(&caller, create, false).await?;
    let project = project_view(&caller, &project_record(&caller, pid).await?);
    let body = RegisteredDataset { project, dataset: w.body };
    Ok(Written { revision: w.revision, found_existing: w.found_existing, body })
}

/// Names and parents of objects by id, as a bare array: `GET /v1/<type>/{id}` for
/// each (`read` on it); objects the caller cannot read, or that do not exist, are
/// left out. A project's parent is its organization; any other object's, its project
/// (named by its id when the caller cannot read the project).
#[utoipa::path(post, path = "/api/self/get_object_info", tag = "Meta", request_body = GetObjectInfo,
    responses((status = 200, body = Vec<ObjectInfo>)))]
pub async fn object_info(caller: Caller, Body(body): Body<GetObjectInfo>) -> ApiResult<Json<Vec<ObjectInfo>>> {
    let kinds: &[ObjectKind] = match body.object_type.as_str() {
        "project" => &[],
        "experiment" => &[ObjectKind::Experiment],
        "dataset" => &[ObjectKind::Dataset],
        "prompt" => &[ObjectKind::Prompt],
        "function" => &[ObjectKind::Function, ObjectKind::Prompt],
        "prompt_session" => &[ObjectKind::PromptSession],
        other => {
            return Err(ApiError::invalid_body(format!(
                "`object_type` must be one of project, experiment, dataset, prompt, function, prompt_session; got `{other}`"
            )))
        }
    };
    if body.object_ids.len() > MAX_OBJECT_IDS {
        return Err(ApiError::invalid_body(format!("`object_ids` may name at most {MAX_OBJECT_IDS} objects")));
    }
    let scope = caller.list_scope(None).await?;
    let mut tx = caller.state().read_scope(&scope).await?;
    let mut out = Vec::new();
    for id in body.object_ids {
        if kinds.is_empty() {
            let Some(p) = tx.get_project(ProjectId(id)).await? else { continue };
            if !scope.orgs().contains(&p.org_id) || !scope.visible(Permission::Read, project_ref(p.id)) {
                continue;
            }
            let Some(org) = tx.get_org(p.org_id).await? else { continue };
            let parent = ParentInfo { id: org.id.0, name: org.name };
            let parent_cols = BTreeMap::from([("organization".to_owned(), parent)]);
            out.push(ObjectInfo { object_id: p.id.0, object_name: p.name, parent_cols });
            continue;
        }
        let Some(o) = tx.get_object(id).await? else { continue };
        if !kinds.contains(&o.kind)
            || !scope.orgs().contains(&o.org_id)
            || !scope.visible(Permission::Read, object_ref(o.kind, o.id))
        {
            continue;
        }
        let Some(p) = tx.get_project(o.project_id).await? else { continue };
        let shown = project_view(&caller, &p);
        let parent_cols = BTreeMap::from([("project".to_owned(), ParentInfo { id: shown.id, name: shown.name })]);
        out.push(ObjectInfo { object_id: o.id, object_name: o.name, parent_cols });
    }
    Ok(Json(out))
}
