//! ACLs, groups, roles and members.

use castellan_core::{ObjectType, Permission};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// An ACL: grants a permission or a role to a user or a group on one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Acl {
    /// Id.
    pub id: Uuid,
    /// Type of the object the grant is on.
    pub object_type: ObjectType,
    /// Id of that object (the org id for org-level grants).
    pub object_id: Uuid,
    /// Grantee user (exactly one of `user_id`, `group_id`).
    pub user_id: Option<Uuid>,
    /// Grantee group.
    pub group_id: Option<Uuid>,
    /// Granted permission (exactly one of `permission`, `role_id`).
    pub permission: Option<Permission>,
    /// Only on objects of this type beneath the object (direct permissions only).
    pub restrict_object_type: Option<ObjectType>,
    /// Granted role.
    pub role_id: Option<Uuid>,
    /// The org that owns the object.
    pub _object_org_id: Uuid,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Castellan extension: the grant stops counting at this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `AclItem`: the contents of an ACL, as sent to create, find or delete one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AclItem {
    /// Type of the object the grant is on.
    pub object_type: ObjectType,
    /// Id of that object.
    pub object_id: Uuid,
    /// Grantee user (exactly one of `user_id`, `group_id`).
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Grantee group.
    #[serde(default)]
    pub group_id: Option<Uuid>,
    /// Granted permission (exactly one of `permission`, `role_id`).
    #[serde(default)]
    pub permission: Option<Permission>,
    /// Only with `permission`: the grant applies to objects of this type only.
    #[serde(default)]
    pub restrict_object_type: Option<ObjectType>,
    /// Granted role.
    #[serde(default)]
    pub role_id: Option<Uuid>,
    /// Castellan extension: the grant stops counting at this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// `POST /v1/acl/batch_update`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct AclBatchUpdate {
    /// ACLs to add (existing ones are left as they are).
    #[serde(default)]
    pub add_acls: Option<Vec<AclItem>>,
    /// ACLs to remove (missing ones are ignored).
    #[serde(default)]
    pub remove_acls: Option<Vec<AclItem>>,
}

/// The answer to a batch update: what actually changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AclBatchUpdateResponse {
    /// ACLs that were created.
    pub added_acls: Vec<Acl>,
    /// ACLs that were deleted.
    pub removed_acls: Vec<Acl>,
}

/// A permission group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Group {
    /// Id.
    pub id: Uuid,
    /// Owning organization.
    pub org_id: Uuid,
    /// Creator.
    pub user_id: Option<Uuid>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Name, unique within the organization.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Always null on live groups.
    pub deleted_at: Option<String>,
    /// Direct user members.
    pub member_users: Option<Vec<Uuid>>,
    /// Groups whose users this group contains.
    pub member_groups: Option<Vec<Uuid>>,
}

/// `POST /v1/group` and `PUT /v1/group`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateGroup {
    /// Name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Direct user members.
    #[serde(default)]
    pub member_users: Option<Vec<Uuid>>,
    /// Member groups.
    #[serde(default)]
    pub member_groups: Option<Vec<Uuid>>,
    /// Which organization.
    #[serde(default)]
    pub org_name: Option<String>,
}

/// `PATCH /v1/group/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchGroup {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Users to add.
    #[serde(default)]
    pub add_member_users: Option<Vec<Uuid>>,
    /// Users to remove.
    #[serde(default)]
    pub remove_member_users: Option<Vec<Uuid>>,
    /// Groups to add.
    #[serde(default)]
    pub add_member_groups: Option<Vec<Uuid>>,
    /// Groups to remove.
    #[serde(default)]
    pub remove_member_groups: Option<Vec<Uuid>>,
}

/// One permission of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub struct MemberPermission {
    /// The permission.
    pub permission: Permission,
    /// Only on objects of this type.
    #[serde(default)]
    pub restrict_object_type: Option<ObjectType>,
}

/// A role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Role {
    /// Id.
    pub id: Uuid,
    /// Owning organization; null for a system role (which cannot be changed).
    pub org_id: Option<Uuid>,
    /// Creator.
    pub user_id: Option<Uuid>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// Name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Always null on live roles.
    pub deleted_at: Option<String>,
    /// The role's own permissions.
    pub member_permissions: Option<Vec<MemberPermission>>,
    /// Roles this role inherits.
    pub member_roles: Option<Vec<Uuid>>,
}

/// `POST /v1/role` and `PUT /v1/role`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateRole {
    /// Name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Permissions.
    #[serde(default)]
    pub member_permissions: Option<Vec<MemberPermission>>,
    /// Inherited roles.
    #[serde(default)]
    pub member_roles: Option<Vec<Uuid>>,
    /// Which organization.
    #[serde(default)]
    pub org_name: Option<String>,
}

/// `PATCH /v1/role/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchRole {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Permissions to add.
    #[serde(default)]
    pub add_member_permissions: Option<Vec<MemberPermission>>,
    /// Permissions to remove.
    #[serde(default)]
    pub remove_member_permissions: Option<Vec<MemberPermission>>,
    /// Roles to inherit.
    #[serde(default)]
    pub add_member_roles: Option<Vec<Uuid>>,
    /// Roles to stop inheriting.
    #[serde(default)]
    pub remove_member_roles: Option<Vec<Uuid>>,
}

/// A service account to create while inviting.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InviteServiceAccount {
    /// Its name.
    pub name: String,
    /// Also mint a first service token with this name (create-and-mint; the raw
    /// token is in `added_users[].api_key`, shown once). The request must then be
    /// made with a console session or an owner's service token, not a user API key
    /// (403); without it, an owner's API key is enough.
    #[serde(default)]
    pub token_name: Option<String>,
    /// Seconds from now after which that first token expires (a whole number from 1;
    /// only with `token_name`); absent or null: it never expires.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub token_expires_in_seconds: Option<i64>,
}

/// Who to invite.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct InviteUsers {
    /// Existing users, by id.
    #[serde(default)]
    pub ids: Option<Vec<Uuid>>,
    /// People by email (existing users join at once; others get an invitation).
    #[serde(default)]
    pub emails: Option<Vec<String>>,
    /// Service accounts to create: by owners of the organization, or by owners of the
    /// project group named by `project_group_id`. Plain creation works with any such
    /// credential; creating with `token_name` also mints a token and needs a console
    /// session or a service token.
    #[serde(default)]
    pub service_accounts: Option<Vec<InviteServiceAccount>>,
    /// Send invitation emails.
    #[serde(default)]
    pub send_invite_emails: Option<bool>,
    /// Groups to put the invitees in.
    #[serde(default)]
    pub group_ids: Option<Vec<Uuid>>,
    /// Groups to put the invitees in, by name.
    #[serde(default)]
    pub group_names: Option<Vec<String>>,
    /// One group, by id.
    #[serde(default)]
    pub group_id: Option<Uuid>,
    /// One group, by name.
    #[serde(default)]
    pub group_name: Option<String>,
    /// Grants each new service account `read` on all projects of this project group.
    /// Required when an owner of the project group (every permission on the
    /// project_group, and `create_acls` on its projects) rather than of the
    /// organization creates service accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_group_id: Option<Uuid>,
}

/// Who to remove.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RemoveUsers {
    /// By id.
    #[serde(default)]
    pub ids: Option<Vec<Uuid>>,
    /// By email.
    #[serde(default)]
    pub emails: Option<Vec<String>>,
}

/// `PATCH /v1/organization/members`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PatchOrganizationMembers {
    /// Invitations.
    #[serde(default)]
    pub invite_users: Option<InviteUsers>,
    /// Removals.
    #[serde(default)]
    pub remove_users: Option<RemoveUsers>,
    /// Which organization, by name.
    #[serde(default)]
    pub org_name: Option<String>,
    /// Which organization, by id.
    #[serde(default)]
    pub org_id: Option<String>,
}

/// A user added by a members patch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AddedUser {
    /// User id.
    pub id: Uuid,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// A minted service token (service accounts only; shown once).
    #[serde(default)]
    pub api_key: Option<String>,
    /// That token's name.
    #[serde(default)]
    pub token_name: Option<String>,
}

/// A pending invitation (Castellan extension).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Invitation {
    /// Id.
    pub id: Uuid,
    /// The invited email.
    pub email: String,
    /// Groups the person joins on accepting.
    pub group_ids: Vec<Uuid>,
    /// Creation time (RFC 3339).
    pub created: Option<String>,
    /// When the invitation lapses (RFC 3339).
    pub expires_at: Option<String>,
    /// The secret token to accept it with (only in the answer that created it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The answer to `PATCH /v1/organization/members`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PatchOrganizationMembersOutput {
    /// Always `success`.
    pub status: String,
    /// The organization.
    pub org_id: String,
    /// Why invitation emails could not be sent, if they could not.
    pub send_email_error: Option<String>,
    /// Users who joined (and created service accounts).
    pub added_users: Option<Vec<AddedUser>>,
    /// Castellan extension: invitations created for people without an account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitations: Option<Vec<Invitation>>,
    /// Castellan extension: users removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_users: Option<Vec<Uuid>>,
}

/// `POST /api/invitation/accept` (Castellan extension): accept an invitation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AcceptInvitation {
    /// The invitation's token.
    pub token: String,
    /// Given name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub family_name: Option<String>,
    /// A password for console sign-in (optional).
    #[serde(default)]
    pub password: Option<String>,
}

/// The answer to accepting an invitation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AcceptedInvitation {
    /// The (new or existing) user.
    pub user: crate::User,
    /// The organization joined.
    pub org_id: Uuid,
    /// A first API key for the user (shown once).
    pub api_key: String,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditLogEntry {
    /// Id.
    pub id: Uuid,
    /// Position in the org's hash chain, from 1.
    pub seq: u64,
    /// The revision of the write.
    pub revision: u64,
    /// Time (RFC 3339).
    pub created: String,
    /// The organization.
    pub org_id: Uuid,
    /// Who acted (user or service account); null for the system.
    pub actor_id: Option<Uuid>,
    /// The owner impersonating the actor, if any.
    pub impersonator_id: Option<Uuid>,
    /// `<resource>.<action>`, e.g. `acl.created`.
    pub event_type: String,
    /// `project`, `acl`, …
    pub resource_type: String,
    /// The object's id.
    pub resource_id: Option<Uuid>,
    /// The object's name.
    pub resource_name: Option<String>,
    /// State before (null for creations).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// State after (null for deletions).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    /// Castellan extension: who acted when it was not a user, e.g.
    /// `{"actor_type": "scim_token", "scim_token_id": …}` for SCIM provisioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// The previous record's hash.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// One way a principal holds a permission (Castellan extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GrantPathOut {
    /// The deciding ACL.
    pub acl_id: Uuid,
    /// The object it is on.
    pub acl_object_type: ObjectType,
    /// Its id.
    pub acl_object_id: Uuid,
    /// The ACL's user grantee.
    pub user_id: Option<Uuid>,
    /// The ACL's group grantee.
    pub group_id: Option<Uuid>,
    /// The principal's groups from the innermost to the ACL's group.
    pub group_chain: Vec<Uuid>,
    /// The roles from the ACL's role to the one holding the permission.
    pub role_chain: Vec<Uuid>,
    /// The permission yielded.
    pub permission: Permission,
    /// Its restriction.
    pub restrict_object_type: Option<ObjectType>,
    /// When the grant expires (RFC 3339).
    pub expires_at: Option<String>,
}

/// A grant that almost applied (Castellan extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NearMissOut {
    /// The ACL.
    pub acl_id: Uuid,
    /// `expired` or `restricted`.
    pub reason: String,
    /// For `expired`: when (RFC 3339).
    pub expired_at: Option<String>,
    /// For `restricted`: the type it is restricted to.
    pub restricted_to: Option<ObjectType>,
}

/// `GET /v1/acl/explain` (Castellan extension).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Explanation {
    /// Whether the principal may.
    pub allowed: bool,
    /// The principal.
    pub user_id: Uuid,
    /// The permission asked about.
    pub permission: Permission,
    /// The object.
    pub object_type: ObjectType,
    /// Its id.
    pub object_id: Uuid,
    /// The object and its ancestors, nearest first.
    pub ancestors: Vec<crate::access::ObjectRefOut>,
    /// Every grant path that allows it.
    pub grants: Vec<GrantPathOut>,
    /// Grants that would have applied but for expiry or a restriction.
    pub near_misses: Vec<NearMissOut>,
}

/// An object reference on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ObjectRefOut {
    /// Type.
    pub object_type: ObjectType,
    /// Id.
    pub object_id: Uuid,
}

/// A page of ids (Castellan extension: who-can, what-can). Complete: follow
/// `next_cursor` until it is null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IdPage {
    /// The ids, ascending.
    pub ids: Vec<Uuid>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<Uuid>,
}
