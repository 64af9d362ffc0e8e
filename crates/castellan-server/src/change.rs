//! The change feed's payload: the authorization mutations a transaction made, in a
//! stable serialized form. Every replica replays them, in revision order, onto its
//! own in-memory index.

use castellan_authz::{AclRow, Grant, Mutation, Subject};
use castellan_core::{ObjectRef, ObjectType, Permission};
use castellan_store::AclRecord;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One serialized mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// An organization (and its org-level nouns) appeared.
    AddOrg {
        /// Org id.
        org: Uuid,
    },
    /// An organization and everything under it went away.
    RemoveOrg {
        /// Org id.
        org: Uuid,
    },
    /// An object appeared under a parent.
    AddObject {
        /// The object.
        object: ObjectRef,
        /// Its parent.
        parent: ObjectRef,
    },
    /// An object and its descendants went away.
    RemoveObject {
        /// The object.
        object: ObjectRef,
    },
    /// A group appeared.
    AddGroup {
        /// Group id.
        group: Uuid,
        /// Its org.
        org: Uuid,
    },
    /// A group went away.
    RemoveGroup {
        /// Group id.
        group: Uuid,
    },
    /// A user joined a group.
    AddGroupUser {
        /// Group id.
        group: Uuid,
        /// User id.
        user: Uuid,
    },
    /// A user left a group.
    RemoveGroupUser {
        /// Group id.
        group: Uuid,
        /// User id.
        user: Uuid,
    },
    /// A group became a member of another.
    AddGroupGroup {
        /// Containing group.
        group: Uuid,
        /// Member group.
        member_group: Uuid,
    },
    /// A member group was removed.
    RemoveGroupGroup {
        /// Containing group.
        group: Uuid,
        /// Member group.
        member_group: Uuid,
    },
    /// A role appeared.
    AddRole {
        /// Role id.
        role: Uuid,
        /// Its org (`None`: system role).
        org: Option<Uuid>,
    },
    /// A role went away.
    RemoveRole {
        /// Role id.
        role: Uuid,
    },
    /// A role gained a permission.
    AddRolePermission {
        /// Role id.
        role: Uuid,
        /// Permission.
        permission: Permission,
        /// Restriction.
        restrict_object_type: Option<ObjectType>,
    },
    /// A role lost a permission.
    RemoveRolePermission {
        /// Role id.
        role: Uuid,
        /// Permission.
        permission: Permission,
        /// Restriction.
        restrict_object_type: Option<ObjectType>,
    },
    /// A role started inheriting another.
    AddRoleInherit {
        /// Inheriting role.
        role: Uuid,
        /// Inherited role.
        member_role: Uuid,
    },
    /// A role stopped inheriting another.
    RemoveRoleInherit {
        /// Inheriting role.
        role: Uuid,
        /// Inherited role.
        member_role: Uuid,
    },
    /// An ACL appeared.
    AddAcl {
        /// The row.
        acl: AclRecord,
    },
    /// An ACL went away.
    RemoveAcl {
        /// ACL id.
        id: Uuid,
    },
    /// A project group appeared.
    AddProjectGroup {
        /// Project group id.
        group: Uuid,
        /// Its org.
        org: Uuid,
    },
    /// A project group went away (its projects stay).
    RemoveProjectGroup {
        /// Project group id.
        group: Uuid,
    },
    /// A project joined a project group.
    AddGroupProject {
        /// Project group id.
        group: Uuid,
        /// Project id.
        project: Uuid,
    },
    /// A project left a project group.
    RemoveGroupProject {
        /// Project group id.
        group: Uuid,
        /// Project id.
        project: Uuid,
    },
    /// A user joined an organization (not an engine mutation: replicas keep
    /// memberships beside the index, so a request needs no query to learn them).
    AddMember {
        /// Org id.
        org: Uuid,
        /// User id.
        user: Uuid,
    },
    /// A user left an organization.
    RemoveMember {
        /// Org id.
        org: Uuid,
        /// User id.
        user: Uuid,
    },
    /// A member was suspended (SCIM `active: false`): every replica refuses their
    /// credentials at once; their memberships, groups and grants stay.
    SuspendMember {
        /// Org id.
        org: Uuid,
        /// User id.
        user: Uuid,
    },
    /// A suspended member was restored (SCIM `active: true`).
    ResumeMember {
        /// Org id.
        org: Uuid,
        /// User id.
        user: Uuid,
    },
    /// An API key or service token was revoked (deleted): every replica drops it
    /// from its credential cache.
    RevokeKey {
        /// Key id.
        key: Uuid,
    },
    /// A project's record (name, description, settings) changed: every replica drops
    /// its cached copy.
    UpdateProject {
        /// Project id.
        project: Uuid,
    },
}

/// The engine's row for a stored ACL.
pub fn acl_row(a: &AclRecord) -> AclRow {
    let subject = match (a.user_id, a.group_id) {
        (Some(u), _) => Subject::User(u.0),
        (None, Some(g)) => Subject::Group(g.0),
        // INVARIANT: the database's CHECK constraint guarantees exactly one; a row
        // that somehow has neither names nobody.
        (None, None) => Subject::User(Uuid::nil()),
    };
    let grant = match (a.permission, a.role_id) {
        (Some(permission), _) => Grant::Permission { permission, restrict_object_type: a.restrict_object_type },
        (None, Some(r)) => Grant::Role(r.0),
        (None, None) => Grant::Role(Uuid::nil()),
    };
    AclRow { id: a.id.0, object: ObjectRef::new(a.object_type, a.object_id), subject, grant, expires_at: a.expires_at }
}

impl Change {
    /// The engine mutation, if the change is one (memberships and key revocations
    /// are kept beside the engine, by the replica's index).
    pub fn to_mutation(&self) -> Option<Mutation> {
        Some(match self.clone() {
            Change::AddOrg { org } => Mutation::AddOrg { org },
            Change::RemoveOrg { org } => Mutation::RemoveOrg { org },
            Change::AddObject { object, parent } => Mutation::AddObject { object, parent },
            Change::RemoveObject { object } => Mutation::RemoveObject { object },
            Change::AddGroup { group, org } => Mutation::AddGroup { group, org },
            Change::RemoveGroup { group } => Mutation::RemoveGroup { group },
            Change::AddGroupUser { group, user } => Mutation::AddGroupUser { group, user },
            Change::RemoveGroupUser { group, user } => Mutation::RemoveGroupUser { group, user },
            Change::AddGroupGroup { group, member_group } => Mutation::AddGroupGroup { group, member_group },
            Change::RemoveGroupGroup { group, member_group } => Mutation::RemoveGroupGroup { group, member_group },
            Change::AddRole { role, org } => Mutation::AddRole { role, org },
            Change::RemoveRole { role } => Mutation::RemoveRole { role },
            Change::AddRolePermission { role, permission, restrict_object_type } => {
                Mutation::AddRolePermission { role, permission, restrict_object_type }
            }
            Change::RemoveRolePermission { role, permission, restrict_object_type } => {
                Mutation::RemoveRolePermission { role, permission, restrict_object_type }
            }
            Change::AddRoleInherit { role, member_role } => Mutation::AddRoleInherit { role, member_role },
            Change::RemoveRoleInherit { role, member_role } => Mutation::RemoveRoleInherit { role, member_role },
            Change::AddAcl { acl } => Mutation::AddAcl(acl_row(&acl)),
            Change::RemoveAcl { id } => Mutation::RemoveAcl { id },
            Change::AddProjectGroup { group, org } => Mutation::AddProjectGroup { group, org },
            Change::RemoveProjectGroup { group } => Mutation::RemoveProjectGroup { group },
            Change::AddGroupProject { group, project } => Mutation::AddGroupProject { group, project },
            Change::RemoveGroupProject { group, project } => Mutation::RemoveGroupProject { group, project },
            Change::AddMember { .. }
            | Change::RemoveMember { .. }
            | Change::SuspendMember { .. }
            | Change::ResumeMember { .. }
            | Change::RevokeKey { .. }
            | Change::UpdateProject { .. } => return None,
        })
    }
}

/// Every mutation that rebuilds the index from a stored [`castellan_store::AccessState`].
pub fn mutations_from_state(s: &castellan_store::AccessState) -> Vec<Mutation> {
    let mut out = Vec::with_capacity(
        s.orgs.len() + s.projects.len() + s.groups.len() + s.group_users.len() + s.roles.len() + s.acls.len(),
    );
    out.extend(s.orgs.iter().map(|o| Mutation::AddOrg { org: o.0 }));
    out.extend(s.projects.iter().map(|(p, o)| Mutation::AddObject {
        object: ObjectRef::new(ObjectType::Project, p.0),
        parent: ObjectRef::new(ObjectType::Organization, o.0),
    }));
    out.extend(s.project_objects.iter().map(|(t, id, p)| Mutation::AddObject {
        object: ObjectRef::new(*t, *id),
        parent: ObjectRef::new(ObjectType::Project, p.0),
    }));
    out.extend(s.groups.iter().map(|(g, o)| Mutation::AddGroup { group: g.0, org: o.0 }));
    out.extend(s.group_users.iter().map(|(g, u)| Mutation::AddGroupUser { group: g.0, user: u.0 }));
    out.extend(s.group_groups.iter().map(|(g, m)| Mutation::AddGroupGroup { group: g.0, member_group: m.0 }));
    out.extend(s.roles.iter().map(|(r, o)| Mutation::AddRole { role: r.0, org: o.map(|o| o.0) }));
    out.extend(s.role_permissions.iter().map(|(r, p)| Mutation::AddRolePermission {
        role: r.0,
        permission: p.permission,
        restrict_object_type: p.restrict_object_type,
    }));
    out.extend(s.role_roles.iter().map(|(r, m)| Mutation::AddRoleInherit { role: r.0, member_role: m.0 }));
    out.extend(s.project_groups.iter().map(|(g, o)| Mutation::AddProjectGroup { group: *g, org: o.0 }));
    out.extend(s.group_projects.iter().map(|(g, p)| Mutation::AddGroupProject { group: *g, project: p.0 }));
    out.extend(s.ai_secrets.iter().map(|(id, o)| Mutation::AddObject {
        object: ObjectRef::new(ObjectType::AiSecret, *id),
        parent: ObjectRef::new(ObjectType::OrgAiSecret, o.0),
    }));
    out.extend(s.acls.iter().map(|a| Mutation::AddAcl(acl_row(a))));
    out
}

/// Decodes a change-feed payload.
pub fn decode(payload: &serde_json::Value) -> Result<Vec<Change>, serde_json::Error> {
    serde_json::from_value(payload.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_json() {
        let c = vec![
            Change::AddOrg { org: Uuid::from_u128(1) },
            Change::AddRolePermission {
                role: Uuid::from_u128(2),
                permission: Permission::ReadAcls,
                restrict_object_type: Some(ObjectType::OrgMember),
            },
        ];
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v[1]["op"], "add_role_permission");
        assert_eq!(decode(&v).unwrap(), c);
    }
}
