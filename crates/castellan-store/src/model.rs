//! The records the store keeps. Times are unix epoch microseconds ([`Micros`]).

use castellan_core::{AclId, GroupId, KeyId, ObjectType, OrgId, Permission, ProjectId, RoleId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Unix epoch microseconds.
pub type Micros = i64;

/// A revision of the whole database: every committed write gets a new, larger one.
pub type Revision = u64;

/// An organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgRecord {
    /// Id.
    pub id: OrgId,
    /// Unique (case-insensitively) among live organizations.
    pub name: String,
    /// Braintrust-compatible data-plane URL.
    pub api_url: Option<String>,
    /// Braintrust-compatible flag.
    pub is_universal_api: Option<bool>,
    /// Braintrust-compatible flag.
    pub is_dataplane_private: Option<bool>,
    /// Braintrust-compatible proxy URL.
    pub proxy_url: Option<String>,
    /// Braintrust-compatible realtime URL.
    pub realtime_url: Option<String>,
    /// `auto`, `click_to_load` or `blocked`.
    pub image_rendering_mode: Option<String>,
    /// Castellan's own org settings (strict delegation, …) as a JSON object.
    pub settings: serde_json::Value,
    /// Creation time.
    pub created: Micros,
}

/// Whether a user is a person or a service account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserKind {
    /// A person.
    User,
    /// A non-human user that acts through service tokens.
    ServiceAccount,
}

impl UserKind {
    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            UserKind::User => "user",
            UserKind::ServiceAccount => "service_account",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<UserKind> {
        match s {
            "user" => Some(UserKind::User),
            "service_account" => Some(UserKind::ServiceAccount),
            _ => None,
        }
    }
}

/// A user or a service account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Id.
    pub id: UserId,
    /// Person or service account.
    pub kind: UserKind,
    /// Lowercased; unique among live users. Service accounts get a synthetic one.
    pub email: Option<String>,
    /// Given name (for service accounts: the account's name).
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Creation time.
    pub created: Micros,
}

/// A user's membership in an organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// The organization.
    pub org_id: OrgId,
    /// The member.
    pub user_id: UserId,
    /// When the user joined.
    pub created: Micros,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectRecord {
    /// Id.
    pub id: ProjectId,
    /// Owning organization.
    pub org_id: OrgId,
    /// Unique among the org's live projects.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creator.
    pub user_id: Option<UserId>,
    /// Project settings (replaced whole on update).
    pub settings: Option<serde_json::Value>,
    /// Creation time.
    pub created: Micros,
}

/// Whether a credential is a user's API key or a service account's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// `sk-…`, acts as its user.
    ApiKey,
    /// `bt-st-…`, acts as its service account.
    ServiceToken,
    /// `scim-…`, authorizes only the SCIM 2.0 provisioning endpoints (`/scim/v2`) of
    /// its organization; its user is the owner who created it.
    ScimToken,
}

impl KeyKind {
    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyKind::ApiKey => "api_key",
            KeyKind::ServiceToken => "service_token",
            KeyKind::ScimToken => "scim_token",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "api_key" => Some(KeyKind::ApiKey),
            "service_token" => Some(KeyKind::ServiceToken),
            "scim_token" => Some(KeyKind::ScimToken),
            _ => None,
        }
    }
}

/// An API key or service token. The raw secret is never stored; only its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Id.
    pub id: KeyId,
    /// API key or service token.
    pub kind: KeyKind,
    /// Free text, not unique.
    pub name: String,
    /// Masked preview such as `sk-…a1b2`.
    pub preview_name: String,
    /// The user (or service account) the key acts as.
    pub user_id: UserId,
    /// The organization it was created in.
    pub org_id: Option<OrgId>,
    /// Creation time.
    pub created: Micros,
    /// Last successful authentication, at minute granularity.
    pub last_used: Option<Micros>,
    /// After this time the key no longer authenticates.
    pub expires_at: Option<Micros>,
}

/// A new key: the record plus the hash of its raw secret.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The record to store.
    pub record: KeyRecord,
    /// Hex SHA-256 of the raw secret.
    pub key_hash: String,
}

/// What authenticating a credential yields.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyAuth {
    /// The key.
    pub key: KeyRecord,
    /// The user it acts as.
    pub user: UserRecord,
}

/// One committed change of the authorization state, in revision order. Replicas
/// follow these to keep their in-memory index current.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The revision of the transaction that made the change.
    pub revision: Revision,
    /// Commit time.
    pub created: Micros,
    /// Opaque to the store: the server's list of authorization mutations.
    pub payload: serde_json::Value,
}

/// Filters for listing organizations.
#[derive(Debug, Clone, Default)]
pub struct OrgFilter {
    /// Only these orgs (the caller's). Empty means none.
    pub scope: Vec<OrgId>,
    /// Exact ids.
    pub ids: Vec<Uuid>,
    /// Exact name.
    pub name: Option<String>,
}

/// Filters for listing projects.
#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    /// Only projects of these orgs. Empty means none.
    pub orgs: Vec<OrgId>,
    /// Exact ids.
    pub ids: Vec<Uuid>,
    /// Exact name.
    pub name: Option<String>,
}

/// Filters for listing users.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only members of these orgs. Empty means none.
    pub orgs: Vec<OrgId>,
    /// Exact ids.
    pub ids: Vec<Uuid>,
    /// Any of these given names.
    pub given_names: Vec<String>,
    /// Any of these family names.
    pub family_names: Vec<String>,
    /// Any of these emails (lowercased).
    pub emails: Vec<String>,
    /// Only users whose email, given name, family name or full name contains this
    /// text, ignoring the case of ASCII letters.
    pub search: Option<String>,
    /// Only people, or only service accounts.
    pub kind: Option<UserKind>,
}

/// Filters for listing keys.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    /// API keys or service tokens.
    pub kind: KeyKind,
    /// Only keys created in these orgs.
    pub orgs: Vec<OrgId>,
    /// Only keys of this user (None: any user).
    pub user: Option<UserId>,
    /// Only keys of one of these users (empty: any user).
    pub users: Vec<UserId>,
    /// Exact ids.
    pub ids: Vec<Uuid>,
    /// Exact name.
    pub name: Option<String>,
}

/// A permission group of an organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Id.
    pub id: GroupId,
    /// Owning organization (immutable).
    pub org_id: OrgId,
    /// Unique among the org's live groups.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creator.
    pub user_id: Option<UserId>,
    /// Creation time.
    pub created: Micros,
}

/// A role: a named set of permissions that may inherit other roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleRecord {
    /// Id.
    pub id: RoleId,
    /// Owning organization; `None` for a system role (such as `Owner`).
    pub org_id: Option<OrgId>,
    /// Unique among the org's live roles (system roles: among system roles).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Creator.
    pub user_id: Option<UserId>,
    /// Creation time.
    pub created: Micros,
}

/// One `(permission, restrict_object_type)` a role grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RolePermission {
    /// The permission.
    pub permission: Permission,
    /// Only on objects of this type, if set.
    pub restrict_object_type: Option<ObjectType>,
}

/// An ACL row: grants a permission or a role to a user or a group on one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclRecord {
    /// Id.
    pub id: AclId,
    /// The org that owns the object (`_object_org_id`).
    pub org_id: OrgId,
    /// Type of the object the grant is on.
    pub object_type: ObjectType,
    /// Id of that object.
    pub object_id: Uuid,
    /// Grantee user (exactly one of user/group).
    pub user_id: Option<UserId>,
    /// Grantee group.
    pub group_id: Option<GroupId>,
    /// Granted permission (exactly one of permission/role).
    pub permission: Option<Permission>,
    /// Granted role.
    pub role_id: Option<RoleId>,
    /// Narrows a direct permission to objects of this type.
    pub restrict_object_type: Option<ObjectType>,
    /// The grant stops counting at this time.
    pub expires_at: Option<Micros>,
    /// Creation time.
    pub created: Micros,
}

impl AclRecord {
    /// The identity of an ACL's contents: two rows with the same key are the same
    /// grant (Braintrust's "same contents"). Expiry is not part of it.
    pub fn content_key(&self) -> String {
        acl_content_key(
            self.object_type,
            self.object_id,
            self.user_id,
            self.group_id,
            self.permission,
            self.role_id,
            self.restrict_object_type,
        )
    }
}

/// See [`AclRecord::content_key`].
pub fn acl_content_key(
    object_type: ObjectType,
    object_id: Uuid,
    user_id: Option<UserId>,
    group_id: Option<GroupId>,
    permission: Option<Permission>,
    role_id: Option<RoleId>,
    restrict_object_type: Option<ObjectType>,
) -> String {
    let subject = match (user_id, group_id) {
        (Some(u), _) => format!("u:{u}"),
        (None, Some(g)) => format!("g:{g}"),
        (None, None) => "-".into(),
    };
    let grant = match (permission, role_id) {
        (Some(p), _) => format!("p:{p}"),
        (None, Some(r)) => format!("r:{r}"),
        (None, None) => "-".into(),
    };
    let restrict = restrict_object_type.map(|t| t.as_str()).unwrap_or("");
    format!("{object_type}:{object_id}:{subject}:{grant}:{restrict}")
}

/// Filters for listing groups.
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    /// Only groups of these orgs. Empty means none.
    pub orgs: Vec<OrgId>,
    /// Exact ids.
    pub ids: Vec<Uuid>,
    /// Exact name.
    pub name: Option<String>,
    /// Only groups whose name contains this text, ignoring the case of ASCII letters.
    pub search: Option<String>,
}

/// A direct member of a group: a user or another group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupMember {
    /// A user (or service account).
    User(UserId),
    /// A nested group.
    Group(GroupId),
}

/// Filters for listing roles.
#[derive(Debug, Clone, Default)]
pub struct RoleFilter {
    /// Roles of these orgs.
    pub orgs: Vec<OrgId>,
    /// Also system roles (org_id null).
    pub include_system: bool,
    /// Exact ids.
    pub ids: Vec<Uuid>,
    /// Exact name.
    pub name: Option<String>,
}

/// Filters for listing ACLs. Every set field must match.
#[derive(Debug, Clone, Default)]
pub struct AclFilter {
    /// Only ACLs of these orgs. Empty means none.
    pub orgs: Vec<OrgId>,
    /// Object type.
    pub object_type: Option<ObjectType>,
    /// Object id.
    pub object_id: Option<Uuid>,
    /// Grantee user.
    pub user_id: Option<UserId>,
    /// Grantee group.
    pub group_id: Option<GroupId>,
    /// Granted permission.
    pub permission: Option<Permission>,
    /// Granted role.
    pub role_id: Option<RoleId>,
    /// Restriction.
    pub restrict_object_type: Option<ObjectType>,
    /// Exact ids.
    pub ids: Vec<Uuid>,
}

/// Everything the authorization index is built from, read in one consistent snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessState {
    /// The revision the snapshot was read at.
    pub revision: Revision,
    /// Live organizations.
    pub orgs: Vec<OrgId>,
    /// Live projects and their orgs.
    pub projects: Vec<(ProjectId, OrgId)>,
    /// Live objects inside projects (experiments, datasets, prompts, playgrounds) and
    /// their projects, parents before children.
    pub project_objects: Vec<(ObjectType, Uuid, ProjectId)>,
    /// Live groups and their orgs.
    pub groups: Vec<(GroupId, OrgId)>,
    /// Direct user members of groups.
    pub group_users: Vec<(GroupId, UserId)>,
    /// Group-in-group edges: `(group, member_group)`.
    pub group_groups: Vec<(GroupId, GroupId)>,
    /// Live roles and their orgs (`None`: system role).
    pub roles: Vec<(RoleId, Option<OrgId>)>,
    /// Each role's own permissions.
    pub role_permissions: Vec<(RoleId, RolePermission)>,
    /// Role inheritance edges: `(role, member_role)`.
    pub role_roles: Vec<(RoleId, RoleId)>,
    /// Every live ACL.
    pub acls: Vec<AclRecord>,
    /// Memberships in live organizations, in the organizations' creation order.
    pub members: Vec<(OrgId, UserId)>,
    /// Live project groups and their orgs.
    pub project_groups: Vec<(Uuid, OrgId)>,
    /// Live projects in live project groups: `(project group, project)`.
    pub group_projects: Vec<(Uuid, ProjectId)>,
    /// AI secrets (objects of their own, under their org's `org_ai_secret`).
    pub ai_secrets: Vec<(Uuid, OrgId)>,
}

/// A pending invitation of a person (by email) to join an organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvitationRecord {
    /// Id.
    pub id: Uuid,
    /// The organization.
    pub org_id: OrgId,
    /// The invited address (lowercased).
    pub email: String,
    /// Groups the person joins on accepting.
    pub group_ids: Vec<GroupId>,
    /// Who invited.
    pub invited_by: Option<UserId>,
    /// Creation time.
    pub created: Micros,
    /// After this time it can no longer be accepted.
    pub expires_at: Micros,
}

/// Filters for reading the audit log of one org. Every set field must match.
#[derive(Debug, Clone)]
pub struct AuditFilter {
    /// The org.
    pub org: OrgId,
    /// At or after this time.
    pub since: Option<Micros>,
    /// Before this time.
    pub until: Option<Micros>,
    /// Acting user.
    pub actor: Option<UserId>,
    /// Exact event type, or a prefix ending in `.` (e.g. `acl.`).
    pub event_type: Option<String>,
    /// Resource type.
    pub resource_type: Option<String>,
    /// Resource id.
    pub resource_id: Option<Uuid>,
    /// Only records after this sequence number; the page read is then the one just
    /// after it (the oldest such records), still answered newest first.
    pub after_seq: Option<u64>,
}

/// A console session (cookie sign-in). Only hashes of its token and CSRF token are
/// stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Id.
    pub id: Uuid,
    /// The signed-in user.
    pub user_id: UserId,
    /// Sign-in time.
    pub created: Micros,
    /// Last request made with it.
    pub last_seen: Micros,
    /// It stops working at this time.
    pub expires_at: Micros,
    /// The browser's user agent at sign-in.
    pub user_agent: Option<String>,
    /// The source address at sign-in.
    pub ip: Option<String>,
    /// How it was started: `password`, `break_glass` (an owner's password sign-in
    /// past SSO enforcement) or `sso:<configuration id>`; `None` for sessions made
    /// before this was recorded (treated as `password`).
    pub via: Option<String>,
}

/// An identity at an OpenID provider, linked to an account: `(issuer, subject)`
/// names exactly one account, never the other way round by email alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityRecord {
    /// The provider's issuer (exactly as in its ID tokens).
    pub issuer: String,
    /// The provider's subject for the person.
    pub subject: String,
    /// The linked account.
    pub user_id: UserId,
    /// The organization whose SSO configuration linked it.
    pub org_id: OrgId,
    /// That configuration.
    pub config_id: Uuid,
    /// The email the provider last sent.
    pub email: Option<String>,
    /// When it was linked.
    pub created: Micros,
    /// The last sign-in through it.
    pub last_login: Micros,
}

/// What [`crate::Store::compact`] rewrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compacted {
    /// A table, or the database file.
    pub what: String,
    /// Its size before, in bytes.
    pub bytes_before: i64,
    /// Its size after, in bytes.
    pub bytes_after: i64,
}

/// A command-line sign-in's one-time code, stored by its hash until exchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SsoGrant {
    /// Hex SHA-256 of the code.
    pub code_hash: String,
    /// Who signed in.
    pub user_id: UserId,
    /// The organization the key will be bound to.
    pub org_id: OrgId,
    /// The SSO configuration used.
    pub config_id: Uuid,
    /// The S256 challenge of the command line's verifier.
    pub challenge: String,
    /// Unusable from then on.
    pub expires_at: Micros,
}

/// What authenticating a session cookie yields.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionAuth {
    /// The session.
    pub session: SessionRecord,
    /// Hex SHA-256 of its CSRF token.
    pub csrf_hash: String,
    /// The user.
    pub user: UserRecord,
}
