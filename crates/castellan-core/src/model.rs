//! Object types and permissions exactly as Braintrust's `AclObjectType` and `Permission`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// The kinds of object an ACL can be placed on (Braintrust's `AclObjectType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    /// An organization; its id is the org id.
    Organization,
    /// "Membership of organization O"; object id is the org id.
    OrgMember,
    /// "Every project of organization O"; object id is the org id.
    OrgProject,
    /// "The audit log of organization O"; object id is the org id.
    OrgAuditLogs,
    /// A permission group of an organization.
    Group,
    /// A role of an organization (or a system role).
    Role,
    /// A project.
    Project,
    /// The logs of a project; object id is the project id.
    ProjectLog,
    /// An experiment inside a project.
    Experiment,
    /// A dataset inside a project.
    Dataset,
    /// A prompt (or function) inside a project.
    Prompt,
    /// A playground inside a project.
    PromptSession,
    /// A project group: a named set of an organization's projects. Grants on it govern
    /// the set's definition (read, rename, membership).
    ProjectGroup,
    /// "Every project of project group PG"; object id is the group's id.
    ProjectGroupProjects,
    /// One AI provider secret of an organization.
    AiSecret,
    /// "Every AI provider secret of organization O"; object id is the org id.
    OrgAiSecret,
    /// "The plan, billing and usage of organization O"; object id is the org id.
    OrgAccount,
}

impl ObjectType {
    /// How many object types there are.
    pub const COUNT: usize = 17;

    /// The org-level nouns whose object id is the organization's id (besides the
    /// organization itself).
    pub const ORG_NOUNS: [ObjectType; 5] = [
        ObjectType::OrgMember,
        ObjectType::OrgProject,
        ObjectType::OrgAuditLogs,
        ObjectType::OrgAiSecret,
        ObjectType::OrgAccount,
    ];

    /// Every object type, in a fixed order; `index()` is the position in this list.
    pub const ALL: [ObjectType; ObjectType::COUNT] = [
        ObjectType::Organization,
        ObjectType::OrgMember,
        ObjectType::OrgProject,
        ObjectType::OrgAuditLogs,
        ObjectType::Group,
        ObjectType::Role,
        ObjectType::Project,
        ObjectType::ProjectLog,
        ObjectType::Experiment,
        ObjectType::Dataset,
        ObjectType::Prompt,
        ObjectType::PromptSession,
        ObjectType::ProjectGroup,
        ObjectType::ProjectGroupProjects,
        ObjectType::AiSecret,
        ObjectType::OrgAiSecret,
        ObjectType::OrgAccount,
    ];

    /// The wire name (`org_project`, `prompt_session`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            ObjectType::Organization => "organization",
            ObjectType::OrgMember => "org_member",
            ObjectType::OrgProject => "org_project",
            ObjectType::OrgAuditLogs => "org_audit_logs",
            ObjectType::Group => "group",
            ObjectType::Role => "role",
            ObjectType::Project => "project",
            ObjectType::ProjectLog => "project_log",
            ObjectType::Experiment => "experiment",
            ObjectType::Dataset => "dataset",
            ObjectType::Prompt => "prompt",
            ObjectType::PromptSession => "prompt_session",
            ObjectType::ProjectGroup => "project_group",
            ObjectType::ProjectGroupProjects => "project_group_projects",
            ObjectType::AiSecret => "ai_secret",
            ObjectType::OrgAiSecret => "org_ai_secret",
            ObjectType::OrgAccount => "org_account",
        }
    }

    /// Position in [`ObjectType::ALL`], stable for bit-packing.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// True for the org-level nouns whose object id is the organization's id.
    pub const fn is_org_noun(self) -> bool {
        matches!(
            self,
            ObjectType::Organization
                | ObjectType::OrgMember
                | ObjectType::OrgProject
                | ObjectType::OrgAuditLogs
                | ObjectType::OrgAiSecret
                | ObjectType::OrgAccount
        )
    }

    /// True for the object types that live inside a project (including the project's logs).
    pub const fn is_project_child(self) -> bool {
        matches!(
            self,
            ObjectType::ProjectLog
                | ObjectType::Experiment
                | ObjectType::Dataset
                | ObjectType::Prompt
                | ObjectType::PromptSession
        )
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown enum value on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`; expected one of: {expected}")]
pub struct UnknownVariant {
    /// What was being parsed (`object type`, `permission`).
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
    /// The accepted values, comma-separated.
    pub expected: String,
}

impl FromStr for ObjectType {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| UnknownVariant {
            kind: "object type",
            value: s.to_owned(),
            expected: ObjectType::ALL.map(|t| t.as_str()).join(", "),
        })
    }
}

/// The eight permissions of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Create objects (children of the object the grant is on).
    Create,
    /// Read the object.
    Read,
    /// Change the object.
    Update,
    /// Delete the object.
    Delete,
    /// Create ACLs on the object.
    CreateAcls,
    /// Read ACLs on the object.
    ReadAcls,
    /// Change ACLs on the object.
    UpdateAcls,
    /// Delete ACLs on the object.
    DeleteAcls,
}

impl Permission {
    /// Every permission; `index()` is the position in this list.
    pub const ALL: [Permission; 8] = [
        Permission::Create,
        Permission::Read,
        Permission::Update,
        Permission::Delete,
        Permission::CreateAcls,
        Permission::ReadAcls,
        Permission::UpdateAcls,
        Permission::DeleteAcls,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::Create => "create",
            Permission::Read => "read",
            Permission::Update => "update",
            Permission::Delete => "delete",
            Permission::CreateAcls => "create_acls",
            Permission::ReadAcls => "read_acls",
            Permission::UpdateAcls => "update_acls",
            Permission::DeleteAcls => "delete_acls",
        }
    }

    /// Position in [`Permission::ALL`], stable for bit-packing.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| UnknownVariant {
            kind: "permission",
            value: s.to_owned(),
            expected: Permission::ALL.map(|p| p.as_str()).join(", "),
        })
    }
}

/// A typed reference to one object of the tree: `(object_type, object_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The object's type.
    pub object_type: ObjectType,
    /// The object's id (the org id for org-level nouns, the project id for `project_log`).
    pub object_id: Uuid,
}

impl ObjectRef {
    /// Builds a reference.
    pub const fn new(object_type: ObjectType, object_id: Uuid) -> Self {
        ObjectRef { object_type, object_id }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object_type, self.object_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_type_round_trips_through_its_wire_name() {
        for (i, t) in ObjectType::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(t.as_str().parse::<ObjectType>(), Ok(t));
            assert_eq!(serde_json::to_string(&t).ok(), Some(format!("\"{}\"", t.as_str())));
        }
    }

    #[test]
    fn every_permission_round_trips_through_its_wire_name() {
        for (i, p) in Permission::ALL.into_iter().enumerate() {
            assert_eq!(p.index(), i);
            assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        }
    }

    #[test]
    fn an_unknown_permission_names_the_accepted_values() {
        let err = "admin".parse::<Permission>().unwrap_err();
        assert!(err.to_string().contains("`admin`"));
        assert!(err.to_string().contains("create_acls"));
    }
}
