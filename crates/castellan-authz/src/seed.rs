//! The built-in seeding of DESIGN §2 as data, so the server and the tests share one copy.

use crate::types::{AclRow, Grant, Mutation, Subject};
use castellan_core::model::{ObjectRef, ObjectType, Permission};
use uuid::Uuid;

/// The name of the system role holding all eight permissions.
pub const OWNER_ROLE_NAME: &str = "Owner";

/// The names of the built-in groups, in the order of [`BuiltinGroups`].
pub const BUILTIN_GROUP_NAMES: [&str; 3] = ["Owners", "Engineers", "Viewers"];

/// The permissions of the system role `Owner`: all eight, unrestricted.
pub fn owner_role_permissions() -> Vec<(Permission, Option<ObjectType>)> {
    Permission::ALL.into_iter().map(|p| (p, None)).collect()
}

/// The ids of an organization's built-in groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinGroups {
    /// `Owners`: role Owner on the organization.
    pub owners: Uuid,
    /// `Engineers`: create/read/update/delete on all projects, and the four restricted reads.
    pub engineers: Uuid,
    /// `Viewers`: read on all projects, and the four restricted reads.
    pub viewers: Uuid,
}

/// The rows seeded for an organization, exactly as DESIGN §2 lists them.
pub fn org_seed_acls(org: Uuid, groups: &BuiltinGroups, owner_role: Uuid) -> Vec<(Subject, Grant, ObjectRef)> {
    let organization = ObjectRef::new(ObjectType::Organization, org);
    let org_project = ObjectRef::new(ObjectType::OrgProject, org);
    let perm = |permission, restrict_object_type| Grant::Permission { permission, restrict_object_type };
    // Engineers and Viewers may read the organization's own settings, members, groups and
    // roles, each as a separate row restricted to that type.
    let restricted_reads = [ObjectType::Organization, ObjectType::OrgMember, ObjectType::Group, ObjectType::Role];
    let mut rows = vec![(Subject::Group(groups.owners), Grant::Role(owner_role), organization)];
    for p in [Permission::Create, Permission::Read, Permission::Update, Permission::Delete] {
        rows.push((Subject::Group(groups.engineers), perm(p, None), org_project));
    }
    for t in restricted_reads {
        rows.push((Subject::Group(groups.engineers), perm(Permission::Read, Some(t)), organization));
    }
    rows.push((Subject::Group(groups.viewers), perm(Permission::Read, None), org_project));
    for t in restricted_reads {
        rows.push((Subject::Group(groups.viewers), perm(Permission::Read, Some(t)), organization));
    }
    rows
}

/// The mutations creating the system role `Owner` (once per installation).
pub fn owner_role_mutations(owner_role: Uuid) -> Vec<Mutation> {
    let mut out = vec![Mutation::AddRole { role: owner_role, org: None }];
    out.extend(owner_role_permissions().into_iter().map(|(permission, restrict_object_type)| {
        Mutation::AddRolePermission { role: owner_role, permission, restrict_object_type }
    }));
    out
}

/// The mutations creating an organization with its built-in groups and rows, and making
/// `creator` a member of Owners. `acl_id` supplies the id of each seeded row in turn.
pub fn org_mutations(
    org: Uuid,
    groups: &BuiltinGroups,
    owner_role: Uuid,
    creator: Uuid,
    mut acl_id: impl FnMut() -> Uuid,
) -> Vec<Mutation> {
    let mut out = vec![Mutation::AddOrg { org }];
    for g in [groups.owners, groups.engineers, groups.viewers] {
        out.push(Mutation::AddGroup { group: g, org });
    }
    for (subject, grant, object) in org_seed_acls(org, groups, owner_role) {
        out.push(Mutation::AddAcl(AclRow { id: acl_id(), object, subject, grant, expires_at: None }));
    }
    out.push(Mutation::AddGroupUser { group: groups.owners, user: creator });
    out
}
