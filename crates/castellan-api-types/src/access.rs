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
