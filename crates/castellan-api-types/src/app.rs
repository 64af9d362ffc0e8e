//! The app routes (`/api/*/register`, `/api/experiment/get`, …) that the TypeScript
//! SDK and Python SDKs up to 0.34 call on the app URL, each the twin of a `/v1`
//! endpoint.

use crate::{Dataset, Experiment, InternalMetadata, MetricSummary, Project, ScoreSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /api/project/register`: creates a project, or returns the org's project of
/// that name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RegisterProject {
    /// The project's name (default: `Global`, as the SDK names a nameless one).
    #[serde(default)]
    pub project_name: Option<String>,
    /// The organization (default: the `org_name` field or header, else the
    /// caller's only one).
    #[serde(default)]
    pub org_id: Option<Uuid>,
    /// The organization, by name.
    #[serde(default)]
    pub org_name: Option<String>,
}

/// The answer to `POST /api/project/register`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisteredProject {
    /// The project.
    pub project: Project,
}

/// `POST /api/project/get`: the projects matching, as a bare array.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct GetProjects {
    /// Only this project.
    #[serde(default)]
    pub id: Option<Uuid>,
    /// Only the project of this name.
    #[serde(default)]
    pub name: Option<String>,
    /// Only projects of this organization.
    #[serde(default)]
    pub org_name: Option<String>,
}

/// `POST /api/experiment/register`: `POST /v1/experiment` with the project named or
/// made on the way, and the base experiment given by id, by name or by git history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RegisterExperiment {
    /// The project, by name (created if missing, as `POST /api/project/register`).
    #[serde(default)]
    pub project_name: Option<String>,
    /// The project, by id (wins over `project_name`).
    #[serde(default)]
    pub project_id: Option<Uuid>,
    /// The organization of a project named by `project_name`.
    #[serde(default)]
    pub org_id: Option<Uuid>,
    /// The organization, by name.
    #[serde(default)]
    pub org_name: Option<String>,
    /// True: reopen the project's experiment of that name if there is one. False
    /// (default): always create one (a taken name gets a numeric suffix).
    #[serde(default)]
    pub update: Option<bool>,
    /// Name; generated when absent.
    #[serde(default)]
    pub experiment_name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Git state.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub repo_info: Option<Value>,
    /// The base experiment, by id.
    #[serde(default)]
    pub base_exp_id: Option<Uuid>,
    /// The base experiment, by name in the same project; when it is missing (or
    /// hidden) the answer is a 400 saying "base experiment", on which the SDK
    /// retries without it.
    #[serde(default)]
    pub base_experiment: Option<String>,
    /// Commits preceding this one, newest first: the base is the project's newest
    /// readable experiment whose `repo_info.commit` is one of them.
    #[serde(default)]
    pub ancestor_commits: Option<Vec<String>>,
    /// Dataset it runs over.
    #[serde(default)]
    pub dataset_id: Option<Uuid>,
    /// The dataset's version.
    #[serde(default)]
    pub dataset_version: Option<String>,
    /// Braintrust-controlled metadata (the dataset filter).
    #[serde(default)]
    pub internal_metadata: Option<InternalMetadata>,
    /// Parameters object.
    #[serde(default)]
    pub parameters_id: Option<Uuid>,
    /// Its version.
    #[serde(default)]
    pub parameters_version: Option<String>,
    /// Public flag.
    #[serde(default)]
    pub public: Option<bool>,
    /// Metadata.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// The answer to `POST /api/experiment/register`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisteredExperiment {
    /// The project (a caller that cannot read it sees its id as its name).
    pub project: Project,
    /// The experiment.
    pub experiment: Experiment,
}

/// `POST /api/experiment/get`: the experiments matching, as a bare array.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct GetExperiments {
    /// Only experiments of the project of this name.
    #[serde(default)]
    pub project_name: Option<String>,
    /// Only experiments of this project.
    #[serde(default)]
    pub project_id: Option<Uuid>,
    /// Only experiments of this organization.
    #[serde(default)]
    pub org_name: Option<String>,
    /// Only the experiment of this name.
    #[serde(default)]
    pub experiment_name: Option<String>,
}

/// `POST /api/dataset/register`: `POST /v1/dataset` with the project named or made
/// on the way.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RegisterDataset {
    /// The project, by name (created if missing).
    #[serde(default)]
    pub project_name: Option<String>,
    /// The project, by id (wins over `project_name`).
    #[serde(default)]
    pub project_id: Option<Uuid>,
    /// The organization of a project named by `project_name`.
    #[serde(default)]
    pub org_id: Option<Uuid>,
    /// The organization, by name.
    #[serde(default)]
    pub org_name: Option<String>,
    /// The dataset's name (default: `logs`, as the SDKs name a nameless one).
    #[serde(default)]
    pub dataset_name: Option<String>,
    /// Free text (only for a new dataset).
    #[serde(default)]
    pub description: Option<String>,
    /// Metadata (only for a new dataset).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// The answer to `POST /api/dataset/register`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisteredDataset {
    /// The project (a caller that cannot read it sees its id as its name).
    pub project: Project,
    /// The dataset.
    pub dataset: Dataset,
}

/// `POST /api/self/get_object_info`: names and parents of objects by id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct GetObjectInfo {
    /// `project`, `experiment`, `dataset`, `prompt`, `function` or `prompt_session`.
    pub object_type: String,
    /// The ids; those the caller cannot read are left out of the answer.
    pub object_ids: Vec<Uuid>,
    /// Accepted and ignored.
    #[serde(default)]
    pub accept_arbitrary_acl_object_types: Option<bool>,
}

/// One object of `POST /api/self/get_object_info`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectInfo {
    /// Its id.
    pub object_id: Uuid,
    /// Its name.
    pub object_name: String,
    /// What it is in: `{"project": {id, name}}`, or for a project
    /// `{"organization": {id, name}}`.
    pub parent_cols: BTreeMap<String, ParentInfo>,
}

/// A parent in [`ObjectInfo`].
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ParentInfo {
    /// Its id.
    pub id: Uuid,
    /// Its name (a project the caller cannot read: its id).
    pub name: String,
}

/// `POST /api/base_experiment/get_id`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BaseExperimentRequest {
    /// The experiment.
    pub id: Uuid,
}

/// The experiment another is compared with by default.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BaseExperiment {
    /// Its id.
    pub base_exp_id: Uuid,
    /// Its name.
    pub base_exp_name: String,
}

/// `GET /experiment-comparison2`: an experiment's scores and metrics, compared.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExperimentComparison {
    /// Scores by name.
    pub scores: BTreeMap<String, ScoreSummary>,
    /// Metrics by name.
    pub metrics: BTreeMap<String, MetricSummary>,
}
