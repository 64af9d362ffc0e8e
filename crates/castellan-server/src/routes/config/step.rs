//! A plan's parts: its changes resolved to ids (the steps apply makes), what they
//! need authorized, and the ids of what it creates.

use crate::access::Batch;
use castellan_api_types::{ConfigChange, ConfigRefusal};
use castellan_core::{AclId, GroupId, ObjectRef, ProjectId, RoleId, UserId};
use castellan_store::{AclRecord, AdminKind, OrgRecord, RolePermission};
use serde_json::{Map, Value};
use sha2::Digest;
use std::collections::HashMap;
use uuid::Uuid;

/// One change, resolved to ids.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Settings(Box<OrgRecord>),
    AddRole {
        id: RoleId,
        name: String,
        description: Option<String>,
        permissions: Vec<RolePermission>,
        inherits: Vec<RoleId>,
    },
    ChangeRole {
        id: RoleId,
        description: Option<String>,
        add: Vec<RolePermission>,
        remove: Vec<RolePermission>,
        add_inherits: Vec<RoleId>,
        remove_inherits: Vec<RoleId>,
    },
    RemoveRole(RoleId),
    AddGroup {
        id: GroupId,
        name: String,
        description: Option<String>,
        users: Vec<UserId>,
        groups: Vec<GroupId>,
    },
    ChangeGroup {
        id: GroupId,
        description: Option<String>,
        add_users: Vec<UserId>,
        remove_users: Vec<UserId>,
        add_groups: Vec<GroupId>,
        remove_groups: Vec<GroupId>,
    },
    RemoveGroup(GroupId),
    AddProject {
        id: ProjectId,
        name: String,
        description: Option<String>,
        settings: Option<Value>,
    },
    ChangeProject {
        id: ProjectId,
        description: Option<String>,
        settings: Option<Value>,
    },
    AddProjectGroup {
        id: Uuid,
        name: String,
        description: Option<String>,
        projects: Vec<ProjectId>,
    },
    ChangeProjectGroup {
        id: Uuid,
        description: Option<String>,
        add: Vec<ProjectId>,
        remove: Vec<ProjectId>,
    },
    RemoveProjectGroup(Uuid),
    AddObject {
        id: Uuid,
        kind: AdminKind,
        scope: ObjectRef,
        name: String,
        data: Map<String, Value>,
    },
    ChangeObject {
        id: Uuid,
        data: Map<String, Value>,
    },
    RemoveObject(Uuid),
    AddGrant(Box<AclRecord>),
    RemoveGrant(AclId),
}

/// A plan: `steps[i]` makes `changes[i]`.
pub struct Plan {
    pub steps: Vec<Step>,
    pub changes: Vec<ConfigChange>,
    pub refusals: Vec<ConfigRefusal>,
    pub notes: Vec<String>,
    /// Everything the steps need authorized.
    pub batch: Batch,
    /// For each need of `batch`, the change it belongs to.
    pub need_of: Vec<usize>,
    /// A digest of `changes`.
    pub hash: String,
}

/// The ids of the entries a plan creates, kept from the plan made before the write
/// lock for the one made under it (so both need the same).
#[derive(Debug, Default)]
pub struct NewIds(HashMap<(&'static str, String), Uuid>);

impl NewIds {
    pub(super) fn get(&mut self, kind: &'static str, name: &str) -> Uuid {
        *self.0.entry((kind, name.to_owned())).or_insert_with(Uuid::now_v7)
    }
}

/// A digest of a plan's changes (what `expected_plan_hash` names).
pub fn digest(changes: &[ConfigChange]) -> String {
    hex::encode(sha2::Sha256::digest(castellan_store::audit::canonical_json(&changes).as_bytes()))
}
