//! Configuration as code (Castellan extension): an organization's whole
//! administration state as one document, and the plan that brings the live state to
//! it. The same types are the JSON of `/v1/config/*` and the TOML file of
//! `castellan config`; every name is the object's name (emails for people), never an
//! id, and every list is sorted, so a document is stable and diffs well.

use castellan_core::{ObjectType, Permission};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::ImageRenderingMode;

/// The document format this server writes and reads.
pub const CONFIG_VERSION: u32 = 1;

/// An organization's administration state (Castellan extension). Secret values
/// (environment variables, AI provider keys) are never part of it: a secret-bearing
/// object appears with its name and type only. An empty list is left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    /// The format's version: 1.
    pub version: u32,
    /// The organization the document was exported from: the organization plan and
    /// apply act on when the request names none. Apply never renames an organization.
    pub organization: String,
    /// The organization's members who are people, by email. Apply neither invites
    /// nor removes members: every address must already be a member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// The organization's service accounts, by name. Apply does not create them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_accounts: Vec<String>,
    /// The organization's settings.
    #[serde(default)]
    pub settings: ConfigSettings,
    /// The organization's roles (system roles such as `Owner` are not listed; grants
    /// and roles may name them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<ConfigRole>,
    /// Permission groups, the built-in `Owners`, `Engineers` and `Viewers` included
    /// (they must stay in the document: they cannot be deleted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<ConfigGroup>,
    /// Projects: their description and settings. Apply creates the missing ones and
    /// never deletes one; a project left out of the document, and everything set on
    /// it or inside it, is left as it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<ConfigProject>,
    /// Project groups and the projects in each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub project_groups: Vec<ConfigProjectGroup>,
    /// Administration objects set on the organization, a project or an object in one
    /// (environment variables, project tags, …), by kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ConfigObject>,
    /// Grants (ACLs) at every level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<ConfigGrant>,
}

/// The settable fields of an organization (`PATCH /v1/organization/{id}`); an
/// absent field is unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigSettings {
    /// Data-plane URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Braintrust compatibility flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_universal_api: Option<bool>,
    /// Braintrust compatibility flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_dataplane_private: Option<bool>,
    /// Proxy URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// Realtime URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_url: Option<String>,
    /// How the console shows images in logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_rendering_mode: Option<ImageRenderingMode>,
    /// When true, a grantor may only grant what it holds itself.
    #[serde(default)]
    pub strict_delegation: bool,
}

/// A role of the organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigRole {
    /// Name, unique among the organization's roles and the system roles.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its own permissions: `read`, or `read:experiment` for one restricted to
    /// objects of a type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// The roles it inherits, by name (system roles included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherits: Vec<String>,
}

/// A permission group and its direct members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigGroup {
    /// Name, unique in the organization.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Member people, by email (each listed in `members`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Member service accounts, by name (each listed in `service_accounts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_accounts: Vec<String>,
    /// Member groups, by name: the group contains their members too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// A project's own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigProject {
    /// Name, unique in the organization.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The project's `settings` object (keys whose value is null are left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Map<String, Value>>,
}

/// A project group and its projects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigProjectGroup {
    /// Name, unique in the organization.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its projects, by name (each listed in `projects`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
}

/// An administration object: a named setting of some kind on the organization, a
/// project or an object inside one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigObject {
    /// Its kind: `env_var`, `project_tag`, …
    pub kind: String,
    /// What it is set on, as a path: `organization`, `project/NAME`,
    /// `project/NAME/prompt/SLUG`, … (see `ConfigGrant.on`).
    pub on: String,
    /// Name, unique per kind on what it is set on.
    pub name: String,
    /// The kind's fields (no ids, times or creators; for a secret-bearing kind, its
    /// type only, never the value or a preview of it).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// A grant: a permission or a role, to a person, a service account or a group, on
/// one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigGrant {
    /// The object, as a path of type and name segments: `organization`, an org noun
    /// (`org_project`, `org_member`, `org_audit_logs`, `org_ai_secret`,
    /// `org_account`), `group/NAME`, `role/NAME`, `project_group/NAME`,
    /// `project_group_projects/NAME`, `ai_secret/NAME`, `project/NAME`,
    /// `project_log/NAME`, or `project/NAME/experiment|dataset|prompt_session/NAME`
    /// and `project/NAME/prompt/SLUG`. A `/` or `\` inside a name is written `\/`,
    /// `\\`.
    pub on: String,
    /// The grantee, a person by email (exactly one of `user`, `service_account`,
    /// `group`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The grantee, a service account by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// The grantee, a group by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The permission granted (exactly one of `permission` and `role`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<Permission>,
    /// The role granted, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Narrows a permission to objects of this type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrict_object_type: Option<ObjectType>,
    /// The grant stops counting at this time (RFC 3339, in the future).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigAction {
    /// Creates the entry.
    Add,
    /// Changes the entry in place.
    Change,
    /// Deletes the entry.
    Remove,
}

/// One change of a plan: one entry of the document, and one audit record when applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConfigChange {
    /// Add, change or remove.
    pub action: ConfigAction,
    /// `organization`, `role`, `group`, `project`, `project_group`, `grant`, or an
    /// administration object's kind.
    pub kind: String,
    /// The entry: its name, its path (objects: `ON/KIND/NAME`), or for a grant
    /// `PRINCIPAL: GRANT on PATH`.
    pub name: String,
    /// The entry as it is (absent for an addition), in the document's form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// The entry as it will be (absent for a removal), in the document's form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// Something in the document that apply cannot do; apply refuses the whole document
/// while any remains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConfigRefusal {
    /// The kind of entry, as in [`ConfigChange`] (`member` and `service_account` for
    /// accounts; `apply` for a refusal of the whole set of changes, such as lockout).
    pub kind: String,
    /// The entry.
    pub name: String,
    /// Why, and what to do about it.
    pub reason: String,
}

/// `POST /v1/config/plan` (Castellan extension): the changes that bring the
/// organization to the document, in the order apply makes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConfigPlan {
    /// The organization planned for.
    pub organization: String,
    /// Every change, in order; empty when the organization already matches.
    pub changes: Vec<ConfigChange>,
    /// What apply would refuse; apply changes nothing while any remains.
    pub refusals: Vec<ConfigRefusal>,
    /// What the document leaves alone (members and projects not in it).
    pub notes: Vec<String>,
    /// A digest of `changes`: pass it to apply as `expected_plan_hash` to apply
    /// exactly this plan.
    pub plan_hash: String,
}

/// `POST /v1/config/apply` (Castellan extension): what was changed, in one
/// transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConfigApplied {
    /// The organization changed.
    pub organization: String,
    /// The changes made, in order (one audit record each); empty when it already
    /// matched.
    pub changes: Vec<ConfigChange>,
    /// The digest of the plan applied.
    pub plan_hash: String,
    /// The revision the changes committed at (null when nothing changed).
    pub revision: Option<u64>,
}
