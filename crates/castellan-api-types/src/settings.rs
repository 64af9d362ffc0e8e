//! Administration objects beyond env vars, tags and project groups: AI provider
//! secrets, project scores, span iframes, views, agents, MCP servers, dataset
//! snapshots, simulated users and environments. Field names are Braintrust's.

use castellan_core::ObjectType;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

// --- AI secrets ------------------------------------------------------------------

/// An AI provider's secret (an API key and its settings) of an organization. The
/// value is sealed at rest and never returned; `preview_secret` shows a little of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AISecret {
    /// Id.
    pub id: Uuid,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Last change of any field (RFC 3339).
    pub updated_at: Option<String>,
    /// Last change of the value itself (RFC 3339).
    pub secret_updated_at: Option<String>,
    /// Who last changed the value.
    pub secret_updated_by_user_id: Option<Uuid>,
    /// The organization.
    pub org_id: Uuid,
    /// Name, unique in the organization.
    pub name: String,
    /// The provider (free text, e.g. `openai`, `anthropic`).
    #[serde(rename = "type")]
    pub secret_type: Option<String>,
    /// Provider settings (endpoints, models, …); never a secret.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// A masked preview of the value; null when none is set.
    pub preview_secret: Option<String>,
}

/// `POST /v1/ai_secret` and `PUT /v1/ai_secret`. `Debug` never shows the value.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAISecret {
    /// Name, unique in the organization.
    pub name: String,
    /// The provider.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
    /// Provider settings (an object); never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// The value; sealed at rest, never returned. `PUT` without it keeps the stored
    /// value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Which organization, when the credential belongs to several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
}

impl std::fmt::Debug for CreateAISecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateAISecret")
            .field("name", &self.name)
            .field("type", &self.secret_type)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// `PATCH /v1/ai_secret/{ai_secret_id}`. `Debug` never shows the value.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAISecret {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new provider.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
    /// Settings to merge into the stored ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// A new value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl std::fmt::Debug for PatchAISecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchAISecret")
            .field("name", &self.name)
            .field("type", &self.secret_type)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// `DELETE /v1/ai_secret`: delete by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeleteAISecret {
    /// The name.
    pub name: String,
    /// Which organization, when the credential belongs to several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
}

/// Which AI provider is in force for a project, per provider type (extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EffectiveAIProvider {
    /// The provider type (`type` of the AI secret, `secret_type` of the env var).
    #[serde(rename = "type")]
    pub provider_type: String,
    /// `project` (a project env var of category `ai_provider`) or `organization`
    /// (an org AI secret or org env var of that category).
    pub source: String,
    /// `ai_secret` or `env_var`.
    pub object_type: String,
    /// The id of the AI secret or env var in force.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its masked preview.
    pub preview_secret: Option<String>,
    /// The org-level ones of the same type it overrides (ids).
    pub overrides: Vec<Uuid>,
}

// --- project scores --------------------------------------------------------------

/// The kinds of project score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProjectScoreType {
    /// A number between 0 and 1 set with a slider.
    Slider,
    /// One (or several) of named categories, each worth a value in [0, 1].
    Categorical,
    /// An aggregate: the weighted mean of other scores.
    Weighted,
    /// An aggregate: the least of other scores.
    Minimum,
    /// An aggregate: the greatest of other scores.
    Maximum,
    /// Scored online by functions.
    Online,
    /// Free text.
    FreeForm,
}

/// A project's score definition: human review, aggregate or online.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProjectScore {
    /// Id.
    pub id: Uuid,
    /// The project.
    pub project_id: Uuid,
    /// Who created it.
    pub user_id: Uuid,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The kind of score.
    pub score_type: ProjectScoreType,
    /// `categorical`: `[{name, value}]`; `weighted`: `{score name: weight}`;
    /// `minimum`/`maximum`: `[score name]`; otherwise null.
    #[schema(value_type = Option<Object>)]
    pub categories: Option<Value>,
    /// Settings: `multi_select`, `destination`, `visibility`, `online`, `condition`,
    /// `object_types`.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// A LexoRank-style sort position in the console.
    pub position: Option<String>,
}

/// `POST /v1/project_score` and `PUT /v1/project_score`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectScore {
    /// The project.
    pub project_id: Uuid,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The kind of score.
    pub score_type: ProjectScoreType,
    /// Categories (shape by `score_type`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub categories: Option<Value>,
    /// Settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

/// `PATCH /v1/project_score/{project_score_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProjectScore {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new kind (its categories must fit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_type: Option<ProjectScoreType>,
    /// New categories (replaced whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub categories: Option<Value>,
    /// Settings to merge into the stored ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

// --- span iframes ----------------------------------------------------------------

/// A URL the console embeds to render a project's spans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpanIFrame {
    /// Id.
    pub id: Uuid,
    /// The project.
    pub project_id: Uuid,
    /// Who created it.
    pub user_id: Option<Uuid>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Always null on live ones.
    pub deleted_at: Option<String>,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The URL (http or https).
    pub url: String,
    /// Whether the console posts the span's data to the iframe.
    pub post_message: Option<bool>,
}

/// `POST /v1/span_iframe` and `PUT /v1/span_iframe`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSpanIFrame {
    /// The project.
    pub project_id: Uuid,
    /// Name, unique in the project.
    pub name: String,
    /// The URL (http or https).
    pub url: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the console posts the span's data to the iframe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_message: Option<bool>,
}

/// `PATCH /v1/span_iframe/{span_iframe_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSpanIFrame {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the console posts the span's data to the iframe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_message: Option<bool>,
}

// --- views -----------------------------------------------------------------------

/// A saved view (filters, columns, charts) of an object's page in the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct View {
    /// Id.
    pub id: Uuid,
    /// The type of object it is saved on.
    pub object_type: ObjectType,
    /// The object it is saved on.
    pub object_id: Uuid,
    /// The page it is a view of (`experiments`, `logs`, `monitor`, …).
    pub view_type: Option<String>,
    /// Name, unique per object.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: Option<String>,
    /// Always null on live views.
    pub deleted_at: Option<String>,
    /// Who created it.
    pub user_id: Option<Uuid>,
    /// Its search and charts.
    #[schema(value_type = Option<Object>)]
    pub view_data: Option<Value>,
    /// Its display options.
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
    /// Whether it is starred.
    #[serde(default)]
    pub starred: bool,
}

/// `POST /v1/view` and `PUT /v1/view`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateView {
    /// The type of object it is saved on.
    pub object_type: ObjectType,
    /// The object it is saved on.
    pub object_id: Uuid,
    /// The page it is a view of.
    pub view_type: Option<String>,
    /// Name, unique per object.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its search and charts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub view_data: Option<Value>,
    /// Its display options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
    /// Ignored (the creator is the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    /// Ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

/// `PATCH /v1/view/{view_id}`: `object_type` and `object_id` must name what the
/// view is saved on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchView {
    /// The type of object it is saved on.
    pub object_type: ObjectType,
    /// The object it is saved on.
    pub object_id: Uuid,
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new page type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_type: Option<String>,
    /// Search and charts to merge in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub view_data: Option<Value>,
    /// Options to merge in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub options: Option<Value>,
    /// Star or unstar it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starred: Option<bool>,
    /// Ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

/// `DELETE /v1/view/{view_id}`: what the view is saved on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeleteView {
    /// The type of object it is saved on.
    pub object_type: ObjectType,
    /// The object it is saved on.
    pub object_id: Uuid,
}

// --- agents and MCP servers ------------------------------------------------------

/// A project's agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    /// Id.
    pub id: Uuid,
    /// The project.
    pub project_id: Uuid,
    /// Who created it.
    pub user_id: Uuid,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Name, unique in the project.
    pub name: String,
    /// A URL-safe identifier derived from the name, unique in the project.
    pub slug: String,
    /// `custom` (every agent defined through this API).
    pub kind: String,
    /// Free text.
    pub description: Option<String>,
    /// Free-form metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `POST /v1/agent` and `PUT /v1/agent`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// The project.
    pub project_id: Uuid,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form metadata (an object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// `PATCH /v1/agent/{agent_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAgent {
    /// A new name (the slug stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Metadata to merge in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// A project's MCP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MCPServer {
    /// Id.
    pub id: Uuid,
    /// The project.
    pub project_id: Uuid,
    /// Who created it.
    pub user_id: Option<Uuid>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Always null on live ones.
    pub deleted_at: Option<String>,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The endpoint (http or https).
    pub url: String,
}

/// `POST /v1/mcp_server` and `PUT /v1/mcp_server`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMCPServer {
    /// The project.
    pub project_id: Uuid,
    /// Name, unique in the project.
    pub name: String,
    /// The endpoint (http or https).
    pub url: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PATCH /v1/mcp_server/{mcp_server_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMCPServer {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

// --- dataset snapshots -----------------------------------------------------------

/// A named version of a dataset: its rows as of a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatasetSnapshot {
    /// Id.
    pub id: Uuid,
    /// The dataset.
    pub dataset_id: Uuid,
    /// Name, unique per dataset.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The transaction id (`_xact_id`) the snapshot stands for.
    pub xact_id: String,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
}

/// `POST /v1/dataset_snapshot` and `PUT /v1/dataset_snapshot`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDatasetSnapshot {
    /// The dataset.
    pub dataset_id: Uuid,
    /// Name, unique per dataset.
    pub name: String,
    /// The transaction id (a 19-digit `_xact_id`).
    pub xact_id: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PATCH /v1/dataset_snapshot/{dataset_snapshot_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchDatasetSnapshot {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

// --- simulated users -------------------------------------------------------------

/// The voice of a simulated user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulatedUserVoiceConfig {
    /// The voice.
    pub voice_id: String,
    /// Accent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent: Option<String>,
    /// Language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Speaking rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaking_rate: Option<f64>,
}

/// A project's simulated user, for evaluating conversational agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SimulatedUser {
    /// Id.
    pub id: Uuid,
    /// The organization.
    pub org_id: Uuid,
    /// The project.
    pub project_id: Uuid,
    /// Name, unique in the project.
    pub name: String,
    /// Role, scenario and behaviour.
    pub instructions: String,
    /// What it wants; the conversation ends when it is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Its voice.
    pub voice_config: SimulatedUserVoiceConfig,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
}

/// `POST /v1/project/{project_id}/simulated_user`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSimulatedUser {
    /// Name, unique in the project.
    pub name: String,
    /// Role, scenario and behaviour.
    pub instructions: String,
    /// What it wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Its voice.
    pub voice_config: SimulatedUserVoiceConfig,
}

/// `PATCH /v1/project/{project_id}/simulated_user/{id}`: `goal: null` clears the goal.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSimulatedUser {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// A new goal; null clears it.
    #[serde(default, deserialize_with = "crate::common::double_option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub goal: Option<Option<String>>,
    /// A new voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_config: Option<SimulatedUserVoiceConfig>,
}

// --- environments ----------------------------------------------------------------

/// A deployment environment of an organization (`production`, `staging`, …) that
/// prompt and dataset versions are assigned to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Environment {
    /// Id.
    pub id: Uuid,
    /// The organization.
    pub org_id: Uuid,
    /// Display name.
    pub name: String,
    /// URL-safe identifier, unique in the organization.
    pub slug: String,
    /// Free text.
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Always null on live ones.
    pub deleted_at: Option<String>,
}

/// `POST /environment`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironment {
    /// Display name.
    pub name: String,
    /// URL-safe identifier (letters, digits, `-`, `_`), unique in the organization.
    pub slug: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which organization, when the credential belongs to several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
}

/// `PATCH /environment/{environment_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchEnvironment {
    /// A new display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new slug (assignments follow it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Which version of a prompt or dataset an environment serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentObject {
    /// The version (`_xact_id`).
    pub object_version: String,
}

// --- automations -----------------------------------------------------------------

/// A project's automation: an alert on its logs (`logs`), a retention rule
/// (`retention`), an environment alert (`environment_update`), or an export or query
/// (stored; Castellan does not run exports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProjectAutomation {
    /// Id.
    pub id: Uuid,
    /// The project.
    pub project_id: Uuid,
    /// Who created it.
    pub user_id: Option<Uuid>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The rule (by `event_type`). A webhook action's `headers` show their names
    /// only: the values are sealed at rest.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Castellan extension: the secret webhook deliveries are signed with
    /// (`x-castellan-signature: t=…,v1=HMAC-SHA256`); shown once, in the answer that
    /// created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// `POST /v1/project_automation` and `PUT /v1/project_automation`. `Debug` never
/// shows header values.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectAutomation {
    /// The project.
    pub project_id: Uuid,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The rule.
    #[schema(value_type = Object)]
    pub config: Value,
}

impl std::fmt::Debug for CreateProjectAutomation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateProjectAutomation")
            .field("project_id", &self.project_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `PATCH /v1/project_automation/{project_automation_id}`.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProjectAutomation {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new rule (replaced whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

impl std::fmt::Debug for PatchProjectAutomation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchProjectAutomation").field("name", &self.name).finish_non_exhaustive()
    }
}

/// An organization's automation: a retention rule for every project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrgAutomation {
    /// Id.
    pub id: Uuid,
    /// The organization.
    pub org_id: Uuid,
    /// Who created it.
    pub user_id: Option<Uuid>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Name, unique in the organization.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The rule (`event_type: retention`).
    #[schema(value_type = Object)]
    pub config: Value,
}

/// `POST /v1/org_automation` and `PUT /v1/org_automation`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgAutomation {
    /// The organization.
    pub org_id: Uuid,
    /// Name, unique in the organization.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The rule.
    #[schema(value_type = Object)]
    pub config: Value,
}

/// `PATCH /v1/org_automation/{org_automation_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchOrgAutomation {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
}

/// One run of an automation (Castellan extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutomationRun {
    /// Id.
    pub id: Uuid,
    /// The automation.
    pub automation_id: Uuid,
    /// Start (RFC 3339).
    pub started: String,
    /// End (RFC 3339); null while running.
    pub finished: Option<String>,
    /// `running`, `ok` or `error`.
    pub status: String,
    /// What it counted (rows deleted by a retention sweep).
    pub count: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// Per-object counts and the cutoff.
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// One delivery of an automation's notification (Castellan extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutomationDelivery {
    /// Id (sent as `x-castellan-delivery`, the same on every retry).
    pub id: Uuid,
    /// The automation.
    pub automation_id: Uuid,
    /// The run that sent it (null for a test).
    pub run_id: Option<Uuid>,
    /// First attempt (RFC 3339).
    pub created: String,
    /// End (RFC 3339); null while being attempted.
    pub finished: Option<String>,
    /// `pending`, `ok` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last HTTP status received.
    pub http_status: Option<i64>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// `kind` (webhook, slack, pagerduty), `target` (URL without query, channel),
    /// `event`, `is_test`.
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// What testing an alert found and sent (Castellan extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutomationTestResult {
    /// Log spans of the last interval matching the filter.
    pub count: u64,
    /// Whether a test notification (`is_test: true`) was delivered; one is sent
    /// only when some spans matched.
    pub delivered: bool,
    /// The delivery, when one was attempted.
    pub delivery: Option<AutomationDelivery>,
    /// In words.
    pub message: String,
}

/// What a retention rule would delete now (Castellan extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RetentionPreview {
    /// Rows created before this time would go.
    pub cutoff: String,
    /// Per log: `{object_type, object_id, rows}` (row versions).
    #[schema(value_type = Vec<Object>)]
    pub objects: Vec<Value>,
    /// In all.
    pub total: u64,
}
