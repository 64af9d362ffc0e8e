//! The kind-specific fields of objects inside projects, as kept in a record's `data`,
//! and the records on the wire.

use castellan_api_types as api;
use castellan_api_types::format_time;
use castellan_store::{ObjectKind, ObjectRecord};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// An experiment's own fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExperimentData {
    /// Git state.
    #[serde(default)]
    pub repo_info: Option<Value>,
    /// Default comparison.
    #[serde(default)]
    pub base_exp_id: Option<Uuid>,
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
    pub public: bool,
    /// Metadata.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Braintrust-controlled metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_metadata: Option<api::InternalMetadata>,
}

/// A dataset's own fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetData {
    /// Metadata.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// A prompt's or function's own fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionData {
    /// The prompt.
    #[serde(default)]
    pub prompt_data: Option<Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Metadata.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Function type.
    #[serde(default)]
    pub function_type: Option<String>,
    /// What runs.
    #[serde(default)]
    pub function_data: Value,
    /// Origin.
    #[serde(default)]
    pub origin: Option<Value>,
    /// Schemas.
    #[serde(default)]
    pub function_schema: Option<Value>,
    /// The environments it was assigned to (stored; environments do not exist yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_slugs: Option<Vec<String>>,
}

/// A playground's own fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionData {
    /// The client's state.
    #[serde(default)]
    pub prompt_session_data: Option<Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// The record's kind-specific fields (defaults when the stored JSON is unreadable:
/// the record itself stays usable).
pub fn fields<T: DeserializeOwned + Default>(o: &ObjectRecord) -> T {
    serde_json::from_value(o.data.clone()).unwrap_or_default()
}

/// Kind-specific fields as stored JSON.
pub fn to_data<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// The values `function_type` accepts.
pub const FUNCTION_TYPES: [&str; 11] = [
    "llm",
    "scorer",
    "task",
    "tool",
    "custom_view",
    "preprocessor",
    "facet",
    "classifier",
    "tag",
    "parameters",
    "sandbox",
];

/// The kind a function is stored as: a prompt when `function_data.type` is `prompt`.
pub fn function_kind(function_data: &Value) -> ObjectKind {
    if function_data.get("type").and_then(Value::as_str) == Some("prompt") {
        ObjectKind::Prompt
    } else {
        ObjectKind::Function
    }
}

/// An experiment on the wire.
pub fn experiment(o: &ObjectRecord) -> api::Experiment {
    let d: ExperimentData = fields(o);
    let commit = d.repo_info.as_ref().and_then(|r| r.get("commit")).and_then(Value::as_str).map(str::to_owned);
    api::Experiment {
        id: o.id,
        project_id: o.project_id.0,
        name: o.name.clone(),
        description: o.description.clone(),
        created: Some(format_time(o.created)),
        repo_info: d.repo_info,
        commit,
        base_exp_id: d.base_exp_id,
        deleted_at: None,
        dataset_id: d.dataset_id,
        dataset_version: d.dataset_version,
        parameters_id: d.parameters_id,
        parameters_version: d.parameters_version,
        public: d.public,
        user_id: o.user_id.map(|u| u.0),
        metadata: d.metadata,
        tags: d.tags,
        internal_metadata: d.internal_metadata,
    }
}

/// A dataset on the wire.
pub fn dataset(o: &ObjectRecord) -> api::Dataset {
    let d: DatasetData = fields(o);
    api::Dataset {
        id: o.id,
        project_id: o.project_id.0,
        name: o.name.clone(),
        description: o.description.clone(),
        created: Some(format_time(o.created)),
        deleted_at: None,
        user_id: o.user_id.map(|u| u.0),
        metadata: d.metadata,
        tags: d.tags,
        url_slug: o.name.clone(),
    }
}

/// A prompt or function on the wire.
pub fn function(o: &ObjectRecord) -> api::Function {
    let d: FunctionData = fields(o);
    api::Function {
        id: o.id,
        _xact_id: o.xact_id.map(|x| x.to_string()).unwrap_or_default(),
        project_id: o.project_id.0,
        log_id: "p".into(),
        org_id: o.org_id.0,
        name: o.name.clone(),
        slug: o.slug.clone().unwrap_or_default(),
        description: o.description.clone(),
        created: Some(format_time(o.created)),
        prompt_data: d.prompt_data,
        tags: d.tags,
        metadata: d.metadata,
        function_type: d.function_type,
        function_data: d.function_data,
        origin: d.origin,
        function_schema: d.function_schema,
        environment_slugs: d.environment_slugs,
    }
}

/// A playground on the wire.
pub fn prompt_session(o: &ObjectRecord) -> api::PromptSession {
    let d: SessionData = fields(o);
    api::PromptSession {
        id: o.id,
        project_id: o.project_id.0,
        org_id: o.org_id.0,
        name: o.name.clone(),
        description: o.description.clone(),
        created: Some(format_time(o.created)),
        deleted_at: None,
        user_id: o.user_id.map(|u| u.0),
        prompt_session_data: d.prompt_session_data,
        tags: d.tags,
    }
}

/// Deep-merges `patch` into `base` (PATCH semantics for object-typed fields).
pub fn merge_value(base: Option<Value>, patch: Value) -> Value {
    match (base, patch) {
        (Some(Value::Object(mut b)), Value::Object(p)) => {
            super::rows::merge_into(&mut b, p, &[]);
            Value::Object(b)
        }
        (_, p) => p,
    }
}
