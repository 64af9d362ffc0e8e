//! Organizations, users, projects and API keys.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The answer to creating an organization (Castellan extension): the organization,
/// and, when the creator called with an API key (which acts only in its own org), a
/// first key for the new organization, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedOrganization {
    /// The organization.
    #[serde(flatten)]
    pub organization: Organization,
    /// A first API key for the new organization (shown once); absent for a console
    /// session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Organization {
    /// Id.
    pub id: Uuid,
    /// Name, unique (ignoring case).
    pub name: String,
    /// Data-plane URL.
    pub api_url: Option<String>,
    /// Braintrust compatibility flag.
    pub is_universal_api: Option<bool>,
    /// Braintrust compatibility flag.
    pub is_dataplane_private: Option<bool>,
    /// Proxy URL.
    pub proxy_url: Option<String>,
    /// Realtime URL.
    pub realtime_url: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// When the organization was archived; Castellan does not archive
    /// organizations, so always null.
    pub archived_at: Option<String>,
    /// When the organization was deleted: null for a live organization, the time of
    /// deletion in the answer to `DELETE`.
    pub deleted_at: Option<String>,
    /// How the console shows images in logs.
    pub image_rendering_mode: Option<ImageRenderingMode>,
    /// Castellan extension: when true, a grantor may only grant what it holds itself.
    #[serde(default)]
    pub strict_delegation: bool,
}

/// How the console shows images in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageRenderingMode {
    /// Show them.
    Auto,
    /// Show them once clicked.
    ClickToLoad,
    /// Never load them.
    Blocked,
}

impl ImageRenderingMode {
    /// The wire (and stored) text.
    pub const fn as_str(self) -> &'static str {
        match self {
            ImageRenderingMode::Auto => "auto",
            ImageRenderingMode::ClickToLoad => "click_to_load",
            ImageRenderingMode::Blocked => "blocked",
        }
    }

    /// Parses the wire (and stored) text.
    pub fn parse(s: &str) -> Option<ImageRenderingMode> {
        [ImageRenderingMode::Auto, ImageRenderingMode::ClickToLoad, ImageRenderingMode::Blocked]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

// By hand, from a string, so that any other value (a number included) is a data
// error that names the field and the values it takes.
impl<'de> Deserialize<'de> for ImageRenderingMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ImageRenderingMode::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "`image_rendering_mode` must be one of auto, click_to_load, blocked; got `{s}`"
            ))
        })
    }
}

/// `PATCH /v1/organization/{id}`: fields to change; absent fields stay (an absent
/// body changes nothing).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchOrganization {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New data-plane URL.
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
    /// How the console shows images in logs; any other value is refused (400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_rendering_mode: Option<ImageRenderingMode>,
    /// Castellan extension: turn strict delegation on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_delegation: Option<bool>,
}

/// `POST /v1/organization` (Castellan extension): create an organization; the caller
/// becomes its first owner.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateOrganization {
    /// Name, unique (ignoring case).
    pub name: String,
}

/// A user or service account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Project {
    /// Id.
    pub id: Uuid,
    /// Owning organization.
    pub org_id: Uuid,
    /// Name, unique within the organization.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Deletion time; always null on live projects.
    pub deleted_at: Option<String>,
    /// Creator.
    pub user_id: Option<Uuid>,
    /// Project settings.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

/// `POST /v1/project`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateProject {
    /// Name; if the org already has a project of this name, that project is returned.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which organization, when the credential belongs to several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// Create the project straight into this project group: needs `update` on the
    /// group and `create` of a project on all projects of the group (or above it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_group_name: Option<String>,
}

/// `PATCH /v1/project/{id}`: fields to change; absent fields stay (an absent body
/// changes nothing).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchProject {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Replaces all settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
    /// A new creator: the project's `user_id`, which records who created it and
    /// grants nothing. It must be a member (person or service account) of the
    /// project's organization, else 400; null leaves it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
}

/// An API key, as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    /// Id.
    pub id: Uuid,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Name (not unique).
    pub name: String,
    /// Masked preview, e.g. `sk-…a1b2`.
    pub preview_name: String,
    /// The user the key acts as.
    pub user_id: Option<Uuid>,
    /// That user's email.
    pub user_email: Option<String>,
    /// That user's given name.
    pub user_given_name: Option<String>,
    /// That user's family name.
    pub user_family_name: Option<String>,
    /// The organization it was created in.
    pub org_id: Option<Uuid>,
    /// Castellan extension: last successful use (RFC 3339, minute precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    /// When the key stops authenticating (RFC 3339); null: it never expires.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `POST /v1/api_key` (Castellan extension: Braintrust's API lists, reads and
/// deletes keys but has no operation to create one).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateApiKey {
    /// Name (not unique).
    pub name: String,
    /// Which organization, when the credential belongs to several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// Which organization, by id (as the `bt` CLI sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<Uuid>,
    /// When the key stops authenticating (RFC 3339, in the future); absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// The answer to `POST /v1/api_key`: the key plus its raw secret, shown only once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateApiKeyOutput {
    /// The key.
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The raw `sk-…` secret. It is not stored and cannot be shown again.
    pub key: String,
}

/// `POST /api/self/me`: who the credential acts as.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SelfInfo {
    /// The user id.
    pub id: Uuid,
    /// Email.
    pub email: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// The organizations the user belongs to.
    pub organizations: Vec<OrgRef>,
}

/// An organization's id and name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrgRef {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
}

/// A service token, as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceToken {
    /// Id.
    pub id: Uuid,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Name (not unique).
    pub name: String,
    /// Masked preview, e.g. `bt-st-****a1b2`.
    pub preview_name: String,
    /// The service account it acts as.
    pub service_account_id: Option<Uuid>,
    /// That account's (synthetic) email.
    pub service_account_email: Option<String>,
    /// That account's name.
    pub service_account_name: Option<String>,
    /// The organization.
    pub org_id: Option<Uuid>,
    /// Castellan extension: last successful use (RFC 3339, minute precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    /// When the token stops authenticating (RFC 3339); null: it never expires.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `POST /v1/service_token` and `PUT /v1/service_token`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateServiceToken {
    /// Name (not unique for POST; PUT replaces the account's token of that name).
    pub name: String,
    /// The service account the token acts as.
    pub service_account_id: Uuid,
    /// Which organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// Castellan extension: when the token stops working (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// The answer to creating a service token: the raw token, shown only once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateServiceTokenOutput {
    /// The token.
    #[serde(flatten)]
    pub service_token: ServiceToken,
    /// The raw `bt-st-…` secret.
    pub key: String,
}

/// `DELETE /v1/service_token`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeleteServiceToken {
    /// The token's id.
    pub id: Uuid,
}

/// `POST /api/auth/login` (Castellan extension).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// An owner's break-glass sign-in past SSO enforcement (audited in every
    /// enforcing organization; refused for anyone who is not an owner of them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<bool>,
}

/// The answer to a sign-in: the session cookie is set; the CSRF token must be echoed
/// in `x-csrf-token` on every write made with the cookie.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// The signed-in user.
    pub user: User,
    /// The session's id.
    pub session_id: Uuid,
    /// The CSRF token (also in the `castellan_csrf` cookie).
    pub csrf_token: String,
    /// When the session ends at the latest (RFC 3339).
    pub expires_at: String,
}

/// `POST /api/auth/password` (Castellan extension).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangePassword {
    /// The current password (required when the account has one).
    #[serde(default)]
    pub current_password: Option<String>,
    /// The new password (at least 10 characters).
    pub new_password: String,
}

/// A console session, as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// Id.
    pub id: Uuid,
    /// Sign-in time (RFC 3339).
    pub created: String,
    /// Last use (RFC 3339).
    pub last_seen: String,
    /// End at the latest (RFC 3339).
    pub expires_at: String,
    /// Browser at sign-in.
    pub user_agent: Option<String>,
    /// Address at sign-in.
    pub ip: Option<String>,
    /// Whether it is the session making this request.
    pub current: bool,
}

/// What an environment variable is set on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnvVarObjectType {
    /// The whole organization (every function of it).
    Organization,
    /// One project (its functions).
    Project,
    /// One function or prompt.
    Function,
}

/// An environment variable: a named secret value for functions (prompts, scorers,
/// tools) of an organization, a project or one function. The value is sealed at
/// rest and never returned; `preview_secret` shows a few characters of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnvVar {
    /// Id.
    pub id: Uuid,
    /// What it is set on.
    pub object_type: EnvVarObjectType,
    /// The id of the organization, project or function.
    pub object_id: Uuid,
    /// Name, unique on its object.
    pub name: String,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// When the value last changed (RFC 3339).
    pub secret_updated_at: Option<String>,
    /// Who last changed the value.
    pub secret_updated_by_user_id: Option<Uuid>,
    /// When a function last used it (RFC 3339).
    pub used: Option<String>,
    /// Free-form metadata.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// A masked preview of the value (`sk-...wxyz`); null when no value is set.
    pub preview_secret: Option<String>,
    /// An optional classification (e.g. the AI provider's name).
    pub secret_type: Option<String>,
    /// `env_var` (a plain environment variable) or `ai_provider` (a project's AI
    /// provider key).
    pub secret_category: String,
}

/// `POST /v1/env_var` and `PUT /v1/env_var`. `Debug` never shows the value.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateEnvVar {
    /// What it is set on.
    pub object_type: EnvVarObjectType,
    /// The id of the organization, project or function.
    pub object_id: Uuid,
    /// Name, unique on its object.
    pub name: String,
    /// The value; sealed at rest, never returned. `PUT` without it keeps the
    /// stored value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Free-form metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// An optional classification (e.g. the AI provider's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
    /// `env_var` (default) or `ai_provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_category: Option<String>,
}

/// `PATCH /v1/env_var/{env_var_id}`. `Debug` never shows the value.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct PatchEnvVar {
    /// The (new) name.
    pub name: String,
    /// A new value; sealed at rest, never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// New metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// A new classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
}

/// A project's tag, for labelling its experiments, dataset records and logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProjectTag {
    /// Id.
    pub id: Uuid,
    /// The project it belongs to.
    pub project_id: Uuid,
    /// Who created it.
    pub user_id: Option<Uuid>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Its colour in the console.
    pub color: Option<String>,
    /// A LexoRank-style sort position in the console.
    pub position: Option<String>,
}

/// `POST /v1/project_tag` and `PUT /v1/project_tag`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateProjectTag {
    /// The project.
    pub project_id: Uuid,
    /// Name, unique in the project.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its colour in the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// `PATCH /v1/project_tag/{project_tag_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchProjectTag {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A project group: a named set of an organization's projects. A grant on
/// `project_group_projects` of the group reaches every project in it; a grant on the
/// `project_group` governs the set's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProjectGroup {
    /// Id.
    pub id: Uuid,
    /// The organization.
    pub org_id: Uuid,
    /// Name, unique in the organization.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Who created it.
    pub user_id: Option<Uuid>,
    /// Always null: deleted groups are gone.
    pub deleted_at: Option<String>,
    /// Sorted ids of the live projects in the group that the caller can read.
    pub member_projects: Vec<Uuid>,
}

/// `POST /v1/project_group` and `PUT /v1/project_group`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateProjectGroup {
    /// Name, unique in the organization.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which organization, when the credential belongs to several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
}

/// `PATCH /v1/project_group/{project_group_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchProjectGroup {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Projects to add (each needs `update_acls` on the project: membership extends
    /// who may reach it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_member_projects: Option<Vec<Uuid>>,
    /// Projects to take out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_member_projects: Option<Vec<Uuid>>,
}

impl std::fmt::Debug for CreateEnvVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateEnvVar")
            .field("object_type", &self.object_type)
            .field("object_id", &self.object_id)
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "***"))
            .field("metadata", &self.metadata)
            .field("secret_type", &self.secret_type)
            .field("secret_category", &self.secret_category)
            .finish()
    }
}

impl std::fmt::Debug for PatchEnvVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchEnvVar")
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "***"))
            .field("metadata", &self.metadata)
            .field("secret_type", &self.secret_type)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_bodies_never_show_their_value_in_debug_output() {
        let c: CreateEnvVar = serde_json::from_value(serde_json::json!({
            "object_type": "project", "object_id": Uuid::nil(), "name": "K", "value": "hunter2-secret"
        }))
        .unwrap();
        let p: PatchEnvVar =
            serde_json::from_value(serde_json::json!({"name": "K", "value": "hunter2-secret"})).unwrap();
        for shown in [format!("{c:?}"), format!("{p:?}")] {
            assert!(!shown.contains("hunter2") && shown.contains("***"), "{shown}");
        }
    }
}

/// Castellan extension: an organization's SCIM provisioning token, as listed (never
/// the secret). It authorizes only `/scim/v2` of its organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScimToken {
    /// Id.
    pub id: Uuid,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Name (not unique).
    pub name: String,
    /// Masked preview, e.g. `scim-****a1b2`.
    pub preview_name: String,
    /// The organization it provisions.
    pub org_id: Option<Uuid>,
    /// The owner who created it (it works only while they are an active owner).
    pub created_by: Option<Uuid>,
    /// Last successful use (RFC 3339, minute precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
    /// When the token stops authenticating (RFC 3339); null: it never expires.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// `POST /v1/scim_token` (Castellan extension).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateScimToken {
    /// Name (not unique), e.g. the identity provider's.
    pub name: String,
    /// Which organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// When the token stops working (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// The answer to creating a SCIM token: the raw token, shown only once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateScimTokenOutput {
    /// The token.
    #[serde(flatten)]
    pub scim_token: ScimToken,
    /// The raw `scim-…` secret.
    pub key: String,
}

/// Castellan extension: an organization's single sign-on configuration (OpenID
/// Connect), as shown to its owners. The client secret is sealed at rest and never
/// returned; `client_secret_set` says whether one is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SsoConfig {
    /// Id.
    pub id: Uuid,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: Option<String>,
    /// The organization it signs in to.
    pub org_id: Uuid,
    /// Name, unique in the organization (e.g. `okta`).
    pub name: String,
    /// The provider's issuer; its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// Whether a client secret is stored (it is never returned).
    pub client_secret_set: bool,
    /// Scopes requested (always including `openid`).
    pub scopes: Vec<String>,
    /// Email domains allowed to sign in; empty: any.
    pub allowed_email_domains: Vec<String>,
    /// The claim that lists the user's groups at the provider, if groups are mapped.
    pub groups_claim: Option<String>,
    /// Provider group (a value of the groups claim) → permission group name of the
    /// organization.
    pub group_map: std::collections::BTreeMap<String, String>,
    /// The permission group a user joins on first sign-in (with `jit`).
    pub default_group: Option<String>,
    /// Just-in-time membership: a verified user of an allowed domain who is not a
    /// member yet becomes one on first sign-in.
    pub jit: bool,
    /// Refuse sign-in unless the provider says the email is verified.
    pub require_email_verified: bool,
    /// SSO enforcement: members whose email domain is in `allowed_email_domains` may
    /// not sign in with a password (owners keep an audited break-glass path), and
    /// password sessions may not create API keys. Only turned on once someone has
    /// signed in through this configuration.
    #[serde(default)]
    pub enforced: bool,
}

/// `POST /v1/sso_config` (Castellan extension). `Debug` never shows the secret.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSsoConfig {
    /// Name, unique in the organization.
    pub name: String,
    /// The provider's issuer URL (`https://…`; `http://` only for loopback).
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret; sealed at rest, never returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Scopes; default `["openid", "email", "profile"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Email domains allowed to sign in; default: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_email_domains: Option<Vec<String>>,
    /// The groups claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_claim: Option<String>,
    /// Provider group → permission group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_map: Option<std::collections::BTreeMap<String, String>>,
    /// The default permission group for just-in-time members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_group: Option<String>,
    /// Just-in-time membership; default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jit: Option<bool>,
    /// Require `email_verified`; default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_email_verified: Option<bool>,
    /// Which organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
}

impl std::fmt::Debug for CreateSsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateSsoConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// `PATCH /v1/sso_config/{sso_config_id}` (Castellan extension): the fields sent are
/// replaced (a sent `group_map` replaces the whole map; `null` clears an optional
/// field). `Debug` never shows the secret.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSsoConfig {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// A new client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A new client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// New scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// New allowed email domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_email_domains: Option<Vec<String>>,
    /// A new groups claim (`null` clears).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::common::double_option")]
    #[schema(value_type = Option<String>)]
    pub groups_claim: Option<Option<String>>,
    /// A new group map (replaces the whole map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_map: Option<std::collections::BTreeMap<String, String>>,
    /// A new default group (`null` clears).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::common::double_option")]
    #[schema(value_type = Option<String>)]
    pub default_group: Option<Option<String>>,
    /// Just-in-time membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jit: Option<bool>,
    /// Require `email_verified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_email_verified: Option<bool>,
    /// SSO enforcement for the allowed email domains (refused until someone has
    /// signed in through this configuration, and without allowed domains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced: Option<bool>,
}

impl std::fmt::Debug for PatchSsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchSsoConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}
