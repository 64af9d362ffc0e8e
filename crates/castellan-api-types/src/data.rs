//! The data plane: experiments, datasets, prompts, functions, playgrounds, and
//! their events.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// An experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Experiment {
    /// Id.
    pub id: Uuid,
    /// The project it belongs to.
    pub project_id: Uuid,
    /// Name, unique within the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Git state of the code that ran it.
    #[schema(value_type = Option<Object>)]
    pub repo_info: Option<Value>,
    /// Commit, from `repo_info`.
    pub commit: Option<String>,
    /// The experiment it is compared with by default.
    pub base_exp_id: Option<Uuid>,
    /// Always null on live experiments.
    pub deleted_at: Option<String>,
    /// The dataset it ran over.
    pub dataset_id: Option<Uuid>,
    /// The dataset's version (a transaction id).
    pub dataset_version: Option<String>,
    /// Parameters object.
    pub parameters_id: Option<Uuid>,
    /// Its version.
    pub parameters_version: Option<String>,
    /// Readable by anyone with the link (stored; Castellan still requires a grant).
    pub public: bool,
    /// Creator.
    pub user_id: Option<Uuid>,
    /// Free-form metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Braintrust-controlled metadata about the experiment.
    pub internal_metadata: Option<InternalMetadata>,
}

/// Braintrust-controlled metadata about an experiment, stored as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InternalMetadata {
    /// The BTQL filter payload used to evaluate a subset of the linked dataset (an
    /// object, or null).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub dataset_filter: Option<Value>,
}

/// `POST /v1/experiment`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateExperiment {
    /// The project to create it in.
    pub project_id: Uuid,
    /// Name; generated when absent. With `ensure_new` a taken name gets a suffix.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Git state.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub repo_info: Option<Value>,
    /// Base experiment to compare with.
    #[serde(default)]
    pub base_exp_id: Option<Uuid>,
    /// Castellan extension (from Braintrust's older API): commits preceding this
    /// one; accepted, not stored.
    #[serde(default)]
    pub ancestor_commits: Option<Vec<String>>,
    /// Dataset it ran over.
    #[serde(default)]
    pub dataset_id: Option<Uuid>,
    /// The dataset's version.
    #[serde(default)]
    pub dataset_version: Option<String>,
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
    /// True: always create (a taken name gets a suffix). False: return the existing
    /// experiment of that name.
    #[serde(default)]
    pub ensure_new: Option<bool>,
    /// Braintrust-controlled metadata about the experiment.
    #[serde(default)]
    pub internal_metadata: Option<InternalMetadata>,
}

/// `PATCH /v1/experiment/{id}`: absent fields stay (an absent body changes nothing);
/// `metadata` is deep-merged, `internal_metadata` replaced.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchExperiment {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Git state.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub repo_info: Option<Value>,
    /// Base experiment.
    #[serde(default)]
    pub base_exp_id: Option<Uuid>,
    /// Dataset.
    #[serde(default)]
    pub dataset_id: Option<Uuid>,
    /// Dataset version.
    #[serde(default)]
    pub dataset_version: Option<String>,
    /// Parameters object.
    #[serde(default)]
    pub parameters_id: Option<Uuid>,
    /// Its version.
    #[serde(default)]
    pub parameters_version: Option<String>,
    /// Public flag.
    #[serde(default)]
    pub public: Option<bool>,
    /// Metadata, deep-merged.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Tags (replaced).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Braintrust-controlled metadata about the experiment (replaced).
    #[serde(default)]
    pub internal_metadata: Option<InternalMetadata>,
}

/// A dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Dataset {
    /// Id.
    pub id: Uuid,
    /// The project it belongs to.
    pub project_id: Uuid,
    /// Name, unique within the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Always null on live datasets.
    pub deleted_at: Option<String>,
    /// Creator.
    pub user_id: Option<Uuid>,
    /// Metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// The name as used in URLs.
    pub url_slug: String,
}

/// `POST /v1/dataset`: creates one, or returns the project's dataset of that name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateDataset {
    /// The project.
    pub project_id: Uuid,
    /// Name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Metadata.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// `PATCH /v1/dataset/{id}`: absent fields stay; `metadata` is deep-merged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchDataset {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Metadata, deep-merged.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Tags (replaced).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// A function: a prompt, scorer, tool, task, … Prompts are the functions whose
/// `function_data.type` is `prompt`; `/v1/prompt` shows only those.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Function {
    /// Id.
    pub id: Uuid,
    /// The current version (a transaction id).
    pub _xact_id: String,
    /// The project.
    pub project_id: Uuid,
    /// Always `p` (the prompt log).
    pub log_id: String,
    /// The project's organization.
    pub org_id: Uuid,
    /// Display name.
    pub name: String,
    /// Unique within the project (among prompts and functions).
    pub slug: String,
    /// Free text.
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// The prompt (`{"prompt": …, "options": …}`).
    #[schema(value_type = Option<Object>)]
    pub prompt_data: Option<Value>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// `llm`, `scorer`, `task`, `tool`, … or null.
    pub function_type: Option<String>,
    /// What runs: `{"type": "prompt"}`, `{"type": "code", …}`, `{"type": "global", …}`.
    #[schema(value_type = Object)]
    pub function_data: Value,
    /// Where it came from.
    #[schema(value_type = Option<Object>)]
    pub origin: Option<Value>,
    /// Parameter and return schemas.
    #[schema(value_type = Option<Object>)]
    pub function_schema: Option<Value>,
    /// Castellan extension: the `environment_slugs` it was created or replaced
    /// with, as stored (absent when none were given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_slugs: Option<Vec<String>>,
}

/// `POST /v1/prompt` and `/v1/function` (and `PUT`, which replaces by slug).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateFunction {
    /// The project.
    pub project_id: Uuid,
    /// Display name.
    pub name: String,
    /// Unique within the project.
    pub slug: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// The prompt.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub prompt_data: Option<Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Castellan extension: free-form metadata.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Function type.
    #[serde(default)]
    pub function_type: Option<String>,
    /// Required on `/v1/function`; `/v1/prompt` sets `{"type": "prompt"}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub function_data: Option<Value>,
    /// Origin.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub origin: Option<Value>,
    /// Schemas.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub function_schema: Option<Value>,
    /// The environments (by slug) to assign the written version to: distinct slugs,
    /// each an environment of the organization (else 400 and nothing is written);
    /// they are also stored and shown in the answer, and `PUT` replaces them.
    #[serde(default)]
    pub environment_slugs: Option<Vec<String>>,
}

/// `PATCH /v1/prompt/{id}` and `/v1/function/{id}`: a new version with these fields
/// changed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchFunction {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New slug.
    #[serde(default)]
    pub slug: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New prompt.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub prompt_data: Option<Value>,
    /// New tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Castellan extension: metadata, deep-merged.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Castellan extension: a new function type.
    #[serde(default)]
    pub function_type: Option<String>,
    /// New function data (`/v1/function` only).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub function_data: Option<Value>,
    /// Castellan extension: a new origin.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub origin: Option<Value>,
    /// Castellan extension: new parameter and return schemas.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub function_schema: Option<Value>,
}

/// A playground (Castellan extension: Braintrust has the object type but no REST
/// endpoints, so grants on playgrounds had nothing to govern).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PromptSession {
    /// Id.
    pub id: Uuid,
    /// The project.
    pub project_id: Uuid,
    /// The project's organization.
    pub org_id: Uuid,
    /// Name, unique within the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Always null on live playgrounds.
    pub deleted_at: Option<String>,
    /// Creator.
    pub user_id: Option<Uuid>,
    /// The playground's state, as the client keeps it.
    #[schema(value_type = Option<Object>)]
    pub prompt_session_data: Option<Value>,
    /// Tags.
    pub tags: Option<Vec<String>>,
}

/// `POST /v1/prompt_session`: creates one, or returns the project's playground of
/// that name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreatePromptSession {
    /// The project.
    pub project_id: Uuid,
    /// Name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// State.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub prompt_session_data: Option<Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// `PATCH /v1/prompt_session/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchPromptSession {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New state (replaced).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub prompt_session_data: Option<Value>,
    /// New tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}
