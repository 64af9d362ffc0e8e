//! Administration objects: named settings that live on an organization, a project
//! or an object (environment variables today; AI provider secrets, project scores
//! and tags, views, automations and the like share the same table). The columns
//! every kind shares are fields; the rest of a kind's fields are kept in `data`, and
//! a secret value only ever sealed, in `secret`.

use crate::error::StoreResult;
use crate::page::Window;
use crate::Micros;
use async_trait::async_trait;
use castellan_core::{ObjectRef, OrgId, ProjectId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The kinds of administration object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminKind {
    /// An environment variable (`/v1/env_var`).
    EnvVar,
    /// A project's tag (`/v1/project_tag`).
    ProjectTag,
    /// A project group (`/v1/project_group`): its definition; its projects are
    /// `project_group_projects` rows.
    ProjectGroup,
    /// An AI provider's secret (`/v1/ai_secret`), set on the organization; itself an
    /// `ai_secret` object under the org's `org_ai_secret`, which grants may name.
    AiSecret,
    /// A project's score definition (`/v1/project_score`): human review, aggregate
    /// and online scores.
    ProjectScore,
    /// A project's span iframe (`/v1/span_iframe`).
    SpanIframe,
    /// A saved view of an object (`/v1/view`).
    View,
    /// A project's agent (`/v1/agent`).
    Agent,
    /// A project's MCP server (`/v1/mcp_server`).
    McpServer,
    /// A named snapshot of a dataset at a transaction (`/v1/dataset_snapshot`).
    DatasetSnapshot,
    /// A project's simulated user (`/v1/project/{id}/simulated_user`).
    SimulatedUser,
    /// A deployment environment of an organization (`/environment`); its name column
    /// holds the slug (unique per org).
    Environment,
    /// Which version of a prompt or dataset an environment serves: set on the object,
    /// named by the environment's slug (`/environment-object`).
    EnvironmentObject,
    /// A project's automation (`/v1/project_automation`): alerts, retention, exports.
    ProjectAutomation,
    /// An organization's automation (`/v1/org_automation`): retention for every
    /// project.
    OrgAutomation,
    /// The SCIM attributes of an org member (`/scim/v2/Users`): set on the org's
    /// `org_member`, named by the user's id; `data.active == false` suspends them.
    ScimUser,
    /// Marks a permission group as managed by SCIM (`/scim/v2/Groups`): set on the
    /// org's `org_member`, named by the group's id.
    ScimGroup,
    /// An organization's single sign-on configuration (`/v1/sso_config`): OpenID
    /// Connect issuer, client and mapping; its client secret is the sealed value.
    SsoConfig,
}

impl AdminKind {
    /// Every kind.
    pub const ALL: [AdminKind; 18] = [
        AdminKind::EnvVar,
        AdminKind::ProjectTag,
        AdminKind::ProjectGroup,
        AdminKind::AiSecret,
        AdminKind::ProjectScore,
        AdminKind::SpanIframe,
        AdminKind::View,
        AdminKind::Agent,
        AdminKind::McpServer,
        AdminKind::DatasetSnapshot,
        AdminKind::SimulatedUser,
        AdminKind::Environment,
        AdminKind::EnvironmentObject,
        AdminKind::ProjectAutomation,
        AdminKind::OrgAutomation,
        AdminKind::ScimUser,
        AdminKind::ScimGroup,
        AdminKind::SsoConfig,
    ];

    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AdminKind::EnvVar => "env_var",
            AdminKind::ProjectTag => "project_tag",
            AdminKind::ProjectGroup => "project_group",
            AdminKind::AiSecret => "ai_secret",
            AdminKind::ProjectScore => "project_score",
            AdminKind::SpanIframe => "span_iframe",
            AdminKind::View => "view",
            AdminKind::Agent => "agent",
            AdminKind::McpServer => "mcp_server",
            AdminKind::DatasetSnapshot => "dataset_snapshot",
            AdminKind::SimulatedUser => "simulated_user",
            AdminKind::Environment => "environment",
            AdminKind::EnvironmentObject => "environment_object",
            AdminKind::ProjectAutomation => "project_automation",
            AdminKind::OrgAutomation => "org_automation",
            AdminKind::ScimUser => "scim_user",
            AdminKind::ScimGroup => "scim_group",
            AdminKind::SsoConfig => "sso_config",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<AdminKind> {
        AdminKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One administration object. Names are unique per (kind, scope).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminRecord {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: AdminKind,
    /// The organization it belongs to.
    pub org_id: OrgId,
    /// What it is set on: the organization, a project or an object.
    pub scope: ObjectRef,
    /// Name.
    pub name: String,
    /// Kind-specific fields, a JSON object. Never a secret.
    pub data: serde_json::Value,
    /// The sealed secret value, if any (never the value itself).
    pub secret: Option<Vec<u8>>,
    /// When the secret value last changed.
    pub secret_updated_at: Option<Micros>,
    /// Who last changed the secret value.
    pub secret_updated_by: Option<UserId>,
    /// Creation time.
    pub created: Micros,
    /// Last change.
    pub updated: Micros,
}

impl AdminRecord {
    /// The authorization object that decides who may see and change it: an AI
    /// secret is an object of its own (`ai_secret`, under the org's
    /// `org_ai_secret`); every other kind is decided on what it is set on.
    pub fn guard(&self) -> ObjectRef {
        match self.kind {
            AdminKind::AiSecret => ObjectRef::new(castellan_core::ObjectType::AiSecret, self.id),
            _ => self.scope,
        }
    }
}

/// Filters for listing administration objects. Every set field must match.
#[derive(Debug, Clone)]
pub struct AdminFilter {
    /// The kind.
    pub kind: AdminKind,
    /// Only objects of these orgs. Empty means none.
    pub orgs: Vec<OrgId>,
    /// Only objects set on this object type …
    pub scope_type: Option<castellan_core::ObjectType>,
    /// … and object id.
    pub scope_id: Option<Uuid>,
    /// Exact ids.
    pub ids: Vec<Uuid>,
    /// Exact name.
    pub name: Option<String>,
}

impl crate::page::Paged for AdminRecord {
    fn page_key(&self) -> crate::page::PageKey {
        crate::page::PageKey { created: self.created, id: self.id }
    }
}

/// Administration objects.
#[async_trait]
pub trait AdminRepo {
    /// Inserts; `Conflict` when the name is taken in its scope.
    async fn insert_admin(&mut self, a: &AdminRecord) -> StoreResult<()>;
    /// One by id.
    async fn get_admin(&mut self, id: Uuid) -> StoreResult<Option<AdminRecord>>;
    /// One by kind, scope and name.
    async fn find_admin(&mut self, kind: AdminKind, scope: ObjectRef, name: &str) -> StoreResult<Option<AdminRecord>>;
    /// Stores a changed name, data or secret; `Conflict` when the new name is taken,
    /// `NotFound` when it is gone.
    async fn update_admin(&mut self, a: &AdminRecord) -> StoreResult<()>;
    /// Deletes (the row and its sealed secret are gone); `NotFound` when it was.
    async fn delete_admin(&mut self, id: Uuid) -> StoreResult<()>;
    /// A page, newest first by default.
    async fn list_admin(&mut self, f: &AdminFilter, w: &Window) -> StoreResult<Vec<AdminRecord>>;
    /// Deletes every administration object set on `scope` or, when `scope` is a
    /// project, on an object inside it; or, for an org id, all of the org's.
    async fn delete_admin_under(&mut self, scope: Uuid) -> StoreResult<Vec<AdminRecord>>;
    /// Puts a project in a project group; `false` if it was there.
    async fn add_group_project(&mut self, group: Uuid, project: ProjectId, org: OrgId, at: Micros)
        -> StoreResult<bool>;
    /// Takes a project out of a project group; `false` if it was not there.
    async fn remove_group_project(&mut self, group: Uuid, project: ProjectId) -> StoreResult<bool>;
    /// The live projects of a project group, by id.
    async fn group_project_ids(&mut self, group: Uuid) -> StoreResult<Vec<ProjectId>>;
    /// Up to `limit` objects of every org holding a sealed value, by id, after
    /// `after` (for re-sealing them all under a new master key).
    async fn sealed_admin_page(&mut self, after: Option<Uuid>, limit: usize) -> StoreResult<Vec<AdminRecord>>;
    /// Deletes every membership of `id` (a project group or a project); the pairs.
    async fn delete_group_projects_of(&mut self, id: Uuid) -> StoreResult<Vec<(Uuid, ProjectId)>>;
}

/// One delivery of an automation's notification (a webhook call, a Slack message, a
/// PagerDuty event), with every attempt it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Id (also sent to the receiver, so it can drop duplicates).
    pub id: Uuid,
    /// The automation (or, for cost alerts, the organization).
    pub automation_id: Uuid,
    /// Its organization.
    pub org_id: OrgId,
    /// The run that sent it, if a run did.
    pub run_id: Option<Uuid>,
    /// When it was first attempted.
    pub created: Micros,
    /// When it finished (None while being attempted).
    pub finished: Option<Micros>,
    /// `pending`, `ok` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last HTTP status received.
    pub http_status: Option<i64>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// What was sent where (`kind`, `target`, `event`, `is_test`); never a secret.
    pub details: Option<serde_json::Value>,
}

/// One run of an automation (a retention sweep, an alert check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Id.
    pub id: Uuid,
    /// The automation.
    pub automation_id: Uuid,
    /// Its organization.
    pub org_id: OrgId,
    /// When it started.
    pub started: Micros,
    /// When it finished (None while running).
    pub finished: Option<Micros>,
    /// `running`, `ok` or `error`.
    pub status: String,
    /// What it counted (rows deleted, logs matched, …).
    pub count: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// Per-object counts and the like.
    pub details: Option<serde_json::Value>,
}
