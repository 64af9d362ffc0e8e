//! Errors of mutations. Queries never fail: an unknown object is simply not allowed.

use castellan_core::model::{ObjectRef, ObjectType};
use uuid::Uuid;

/// Why a batch of mutations was rejected (nothing of it was applied).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthzError {
    /// The group membership would make a group contain itself.
    #[error("group `{member_group}` already contains group `{group}`, directly or not: adding it would make a cycle")]
    GroupCycle {
        /// The containing group of the rejected edge.
        group: Uuid,
        /// The contained group of the rejected edge.
        member_group: Uuid,
    },
    /// The role inheritance would make a role inherit itself.
    #[error("role `{member_role}` already inherits role `{role}`, directly or not: adding it would make a cycle")]
    RoleCycle {
        /// The inheriting role of the rejected edge.
        role: Uuid,
        /// The inherited role of the rejected edge.
        member_role: Uuid,
    },
    /// No such object.
    #[error("unknown object `{0}`")]
    UnknownObject(ObjectRef),
    /// The parent of a new object does not exist.
    #[error("unknown parent `{0}`")]
    UnknownParent(ObjectRef),
    /// No such organization.
    #[error("unknown organization `{0}`")]
    UnknownOrg(Uuid),
    /// No such group.
    #[error("unknown group `{0}`")]
    UnknownGroup(Uuid),
    /// No such role.
    #[error("unknown role `{0}`")]
    UnknownRole(Uuid),
    /// No such ACL row.
    #[error("unknown acl `{0}`")]
    UnknownAcl(Uuid),
    /// The object cannot live under that parent.
    #[error("`{object}` cannot be placed under `{parent}`")]
    WrongParentType {
        /// The new object.
        object: ObjectRef,
        /// The rejected parent.
        parent: ObjectRef,
    },
    /// The object type is created or dropped by another mutation (org nouns by `AddOrg`,
    /// groups by `AddGroup`, roles by `AddRole`, project logs with their project).
    #[error("objects of type `{0}` are not added or removed with this mutation")]
    WrongObjectType(ObjectType),
    /// An object with this type and id already exists.
    #[error("object `{0}` already exists")]
    DuplicateObject(ObjectRef),
    /// A group with this id already exists.
    #[error("group `{0}` already exists")]
    DuplicateGroup(Uuid),
    /// A role with this id already exists.
    #[error("role `{0}` already exists")]
    DuplicateRole(Uuid),
    /// An ACL row with this id already exists.
    #[error("acl `{0}` already exists")]
    DuplicateAcl(Uuid),
    /// A group or role of one organization used in another.
    #[error("`{id}` belongs to another organization than `{object}`")]
    CrossOrg {
        /// The group or role.
        id: Uuid,
        /// The object (or the group or role) it was used with.
        object: ObjectRef,
    },
}
