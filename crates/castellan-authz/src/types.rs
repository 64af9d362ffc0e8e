//! The vocabulary of the engine: subjects, grants, ACL rows, mutations and answers.

use castellan_core::model::{ObjectRef, ObjectType, Permission};
use uuid::Uuid;

/// Who an ACL row names: a user (service accounts are users) or a group.
///
/// The derived order (users before groups, then by id) is the order of an object's ACL bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A user or service account.
    User(Uuid),
    /// A permission group; it stands for every user it contains, transitively.
    Group(Uuid),
}

/// What an ACL row grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grant {
    /// One permission, optionally only on objects of one type.
    Permission {
        /// The permission granted.
        permission: Permission,
        /// When set, the grant only counts on objects of this type.
        restrict_object_type: Option<ObjectType>,
    },
    /// Every (permission, restriction) the role yields, including inherited roles.
    Role(Uuid),
}

/// One ACL row: `subject` gets `grant` on `object` (and so on everything below it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AclRow {
    /// The row's id.
    pub id: Uuid,
    /// The object the row is placed on.
    pub object: ObjectRef,
    /// Who the row names.
    pub subject: Subject,
    /// What it grants.
    pub grant: Grant,
    /// Unix epoch microseconds after which the row no longer counts (`expires_at <= now` is
    /// expired); `None` never expires.
    pub expires_at: Option<i64>,
}

/// One change to the access configuration. A batch is applied all-or-nothing by
/// [`crate::Snapshot::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Creates the organization and its nouns `org_member`, `org_project` and
    /// `org_audit_logs`, all with id `org`.
    AddOrg {
        /// The organization's id.
        org: Uuid,
    },
    /// Drops the organization and everything under it: objects, groups, org roles, ACLs.
    RemoveOrg {
        /// The organization's id.
        org: Uuid,
    },
    /// Adds a project under `(organization, O)` or `(org_project, O)`, or an experiment,
    /// dataset, prompt or prompt session under `(project, P)`. A project brings its
    /// `project_log` (same id).
    AddObject {
        /// The new object.
        object: ObjectRef,
        /// Its parent.
        parent: ObjectRef,
    },
    /// Drops an object added by `AddObject`, its descendants and every ACL on them.
    RemoveObject {
        /// The object to drop.
        object: ObjectRef,
    },
    /// Creates a group of `org`; the group is also the object `(group, id)` under the org.
    AddGroup {
        /// The group's id.
        group: Uuid,
        /// Its organization.
        org: Uuid,
    },
    /// Drops a group, its memberships and every ACL naming it or placed on it.
    RemoveGroup {
        /// The group's id.
        group: Uuid,
    },
    /// Makes `user` a direct member of `group` (idempotent).
    AddGroupUser {
        /// The group.
        group: Uuid,
        /// The user.
        user: Uuid,
    },
    /// Removes a direct membership (idempotent).
    RemoveGroupUser {
        /// The group.
        group: Uuid,
        /// The user.
        user: Uuid,
    },
    /// `group` now contains every user of `member_group`, transitively; a cycle is an error.
    AddGroupGroup {
        /// The containing group.
        group: Uuid,
        /// The contained group.
        member_group: Uuid,
    },
    /// Undoes `AddGroupGroup` (idempotent).
    RemoveGroupGroup {
        /// The containing group.
        group: Uuid,
        /// The contained group.
        member_group: Uuid,
    },
    /// Creates a role; `org: None` is a system role (such as `Owner`).
    AddRole {
        /// The role's id.
        role: Uuid,
        /// Its organization, or `None` for a system role.
        org: Option<Uuid>,
    },
    /// Drops a role, its inheritance edges and every ACL granting it or placed on it.
    RemoveRole {
        /// The role's id.
        role: Uuid,
    },
    /// Adds a (permission, restriction) to a role (idempotent).
    AddRolePermission {
        /// The role.
        role: Uuid,
        /// The permission.
        permission: Permission,
        /// Optional restriction to one object type.
        restrict_object_type: Option<ObjectType>,
    },
    /// Removes a (permission, restriction) from a role (idempotent).
    RemoveRolePermission {
        /// The role.
        role: Uuid,
        /// The permission.
        permission: Permission,
        /// The restriction it was added with.
        restrict_object_type: Option<ObjectType>,
    },
    /// `role` now grants everything `member_role` grants, transitively; a cycle is an error.
    AddRoleInherit {
        /// The inheriting role.
        role: Uuid,
        /// The inherited role.
        member_role: Uuid,
    },
    /// Undoes `AddRoleInherit` (idempotent).
    RemoveRoleInherit {
        /// The inheriting role.
        role: Uuid,
        /// The inherited role.
        member_role: Uuid,
    },
    /// Adds an ACL row.
    AddAcl(AclRow),
    /// Removes an ACL row by id.
    RemoveAcl {
        /// The row's id.
        id: Uuid,
    },
    /// Drops a user's group memberships and every ACL naming the user.
    RemoveUser {
        /// The user.
        user: Uuid,
    },
    /// Adds a project group to an organization: `(project_group, G)` under the
    /// organization (grants there govern the group's definition) and
    /// `(project_group_projects, G)` under `org_project` (grants there reach every
    /// project of the group and everything inside them).
    AddProjectGroup {
        /// The project group's id.
        group: Uuid,
        /// Its organization.
        org: Uuid,
    },
    /// Drops a project group and the ACLs on it; its projects stay.
    RemoveProjectGroup {
        /// The project group's id.
        group: Uuid,
    },
    /// Puts a project of the group's organization in the group (no-op if it is).
    AddGroupProject {
        /// The project group.
        group: Uuid,
        /// The project.
        project: Uuid,
    },
    /// Takes a project out of a group (no-op if it is not there).
    RemoveGroupProject {
        /// The project group.
        group: Uuid,
        /// The project.
        project: Uuid,
    },
}

/// One page of a complete, id-sorted answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page<T> {
    /// The items of this page, sorted by id.
    pub items: Vec<T>,
    /// The cursor to pass as `after` for the next page; `Some` exactly when more items follow.
    pub next: Option<Uuid>,
}

/// The answer to "may U do p on x", with the reasons.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// Whether it is allowed.
    pub allowed: bool,
    /// Every ACL row that grants it, with the group and role chains that carry it.
    pub grants: Vec<GrantPath>,
    /// Rows naming the principal that would have granted it but for expiry or restriction.
    pub near_misses: Vec<NearMiss>,
}

/// How one ACL row reaches the principal and yields the permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantPath {
    /// The ACL row.
    pub acl_id: Uuid,
    /// The object the row is on (the checked object or one of its ancestors).
    pub acl_object: ObjectRef,
    /// The row's subject.
    pub subject: Subject,
    /// `user ∈ g0 ⊂ g1 ⊂ … ⊂ the row's group`; empty for a row naming the user.
    pub group_chain: Vec<Uuid>,
    /// `row's role → … → the role holding the permission`; empty for a direct permission.
    pub role_chain: Vec<Uuid>,
    /// The permission yielded.
    pub permission: Permission,
    /// The restriction of the (permission, restriction) pair that matched.
    pub restrict_object_type: Option<ObjectType>,
    /// The row's expiry.
    pub expires_at: Option<i64>,
}

/// Why a row naming the principal did not grant the permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NearMissReason {
    /// It would have granted it, but expired at this time.
    Expired {
        /// The row's `expires_at`.
        at: i64,
    },
    /// It yields the permission only on objects of this other type.
    RestrictedTo(ObjectType),
}

/// A row that would have matched but for expiry or restriction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearMiss {
    /// The ACL row.
    pub acl_id: Uuid,
    /// Why it did not count.
    pub reason: NearMissReason,
}

/// Sizes of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Objects in the tree (org nouns and project logs included).
    pub objects: usize,
    /// ACL rows.
    pub acls: usize,
    /// Users with a group membership or an ACL row.
    pub users: usize,
    /// Groups.
    pub groups: usize,
    /// Roles (system roles included).
    pub roles: usize,
}
