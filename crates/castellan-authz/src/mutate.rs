//! Mutations: validation, cascades, and incremental maintenance of the closures.
//!
//! A batch runs on a clone of the snapshot (pointer copies) and only the pieces it touches
//! are copied; on error the clone is dropped, so `apply` is all-or-nothing.

use crate::bucket::{
    node_filter_add, node_filter_of, perm_code, Bucket, Entry, EXPIRING, GROUP, NODE_FILTER_MAX, ROLE, ROLE_INDEX,
};
use crate::error::AuthzError;
use crate::idset::IdSet;
use crate::nodes::{
    pair_masks, type_code, AclSlot, Container, GroupNode, IdSlot, Leaf, Masks, ObjSlot, RoleNode, Row, UserNode,
    UserSlot, LEAF_INLINE, NONE, SPILLED,
};
use crate::ptable::hash_id;
use crate::snapshot::{Loc, Snapshot};
use crate::types::{AclRow, Grant, Mutation, Subject};
use castellan_core::model::{ObjectRef, ObjectType, Permission};
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

use ObjectType as T;

const ORG_NOUNS: [ObjectType; 5] = T::ORG_NOUNS;
const PROJECT_CHILDREN: [ObjectType; 4] = [T::Experiment, T::Dataset, T::Prompt, T::PromptSession];

fn with(list: &[u32], id: u32) -> Arc<[u32]> {
    let mut v = list.to_vec();
    if let Err(i) = v.binary_search(&id) {
        v.insert(i, id);
    }
    v.into()
}

fn without(list: &[u32], id: u32) -> Arc<[u32]> {
    list.iter().copied().filter(|x| *x != id).collect()
}

fn add_sorted(list: &mut Arc<Vec<u32>>, x: u32) {
    if let Err(i) = list.binary_search(&x) {
        Arc::make_mut(list).insert(i, x);
    }
}

fn remove_sorted(list: &mut Arc<Vec<u32>>, x: u32) {
    if let Ok(i) = list.binary_search(&x) {
        Arc::make_mut(list).remove(i);
    }
}

impl Snapshot {
    /// Applies a batch all-or-nothing and returns the new snapshot (revision + 1); `self`
    /// is unchanged. Only the parts the batch touches are copied.
    pub fn apply(&self, mutations: &[Mutation]) -> Result<Snapshot, AuthzError> {
        let mut next = self.clone();
        for m in mutations {
            next.apply_one(m)?;
        }
        next.revision = self.revision + 1;
        Ok(next)
    }

    /// Builds a snapshot from scratch. Nothing is shared yet, so every write is in place.
    pub fn build(mutations: impl IntoIterator<Item = Mutation>) -> Result<Snapshot, AuthzError> {
        let mut s = Snapshot::empty();
        for m in mutations {
            s.apply_one(&m)?;
        }
        Ok(s)
    }

    pub(crate) fn apply_one(&mut self, m: &Mutation) -> Result<(), AuthzError> {
        match *m {
            Mutation::AddOrg { org } => self.add_org(org),
            Mutation::RemoveOrg { org } => self.remove_org(org),
            Mutation::AddObject { object, parent } => self.add_object(object, parent),
            Mutation::RemoveObject { object } => self.remove_object(object),
            Mutation::AddGroup { group, org } => self.add_group(group, org),
            Mutation::RemoveGroup { group } => self.remove_group(group),
            Mutation::AddGroupUser { group, user } => self.set_group_user(group, user, true),
            Mutation::RemoveGroupUser { group, user } => self.set_group_user(group, user, false),
            Mutation::AddGroupGroup { group, member_group } => self.add_group_group(group, member_group),
            Mutation::RemoveGroupGroup { group, member_group } => self.remove_group_group(group, member_group),
            Mutation::AddRole { role, org } => self.add_role(role, org),
            Mutation::RemoveRole { role } => self.remove_role(role),
            Mutation::AddRolePermission { role, permission, restrict_object_type } => {
                self.set_role_permission(role, permission, restrict_object_type, true)
            }
            Mutation::RemoveRolePermission { role, permission, restrict_object_type } => {
                self.set_role_permission(role, permission, restrict_object_type, false)
            }
            Mutation::AddRoleInherit { role, member_role } => self.add_role_inherit(role, member_role),
            Mutation::RemoveRoleInherit { role, member_role } => self.remove_role_inherit(role, member_role),
            Mutation::AddAcl(row) => self.add_acl(row),
            Mutation::RemoveAcl { id } => self.remove_acl(id),
            Mutation::AddProjectGroup { group, org } => self.add_project_group(group, org),
            Mutation::RemoveProjectGroup { group } => self.remove_project_group(group),
            Mutation::AddGroupProject { group, project } => self.set_group_project(group, project, true),
            Mutation::RemoveGroupProject { group, project } => self.set_group_project(group, project, false),
            Mutation::RemoveUser { user } => {
                self.remove_user(user);
                Ok(())
            }
        }
    }

    // ---- objects -------------------------------------------------------------------

    fn index_object(&mut self, obj: ObjectRef, org: Option<Uuid>, project: Option<Uuid>) {
        if let Some(org) = org {
            self.org_index.get_or_insert_with((org, obj.object_type), IdSet::default).insert(obj.object_id.as_u128());
        }
        if let Some(p) = project {
            self.project_index.get_or_insert_with((p, obj.object_type), IdSet::default).insert(obj.object_id.as_u128());
        }
    }

    fn add_container(&mut self, obj: ObjectRef, parent: u32, org: Option<Uuid>) -> u32 {
        let ty = type_code(obj.object_type);
        let idx = self.containers.alloc(Container {
            id: obj.object_id,
            ty,
            parent,
            bucket: None,
            filter: [0; 12],
            saturated: false,
            grouped: false,
        });
        self.container_ids.insert(hash_id(obj.object_id, ty), ObjSlot { id: obj.object_id, ty, idx });
        self.index_object(obj, org, None);
        idx
    }

    fn add_leaf(&mut self, obj: ObjectRef, parent: u32, org: Option<Uuid>, project: Option<Uuid>) {
        let ty = type_code(obj.object_type);
        let leaf = Leaf { id: obj.object_id, parent, ty, n: 0, e: [Entry::default(); LEAF_INLINE] };
        self.leaves.insert(hash_id(obj.object_id, ty), leaf);
        self.index_object(obj, org, project);
    }

    /// The row indexes of the entries on an object.
    fn rows_on(&self, obj: ObjectRef) -> Vec<u32> {
        match self.locate(obj) {
            Some(Loc::Leaf(l)) => self.leaf_entries(l).0.iter().map(|e| e.row).collect(),
            Some(Loc::Container(c)) => {
                { self.containers.get(c).bucket.as_ref().map(|b| b.entries().iter().map(|e| e.row).collect()) }
                    .unwrap_or_default()
            }
            None => Vec::new(),
        }
    }

    /// Drops one node and the ACL rows on it (not its descendants).
    fn drop_node(&mut self, obj: ObjectRef) {
        let org = self.org_of(obj);
        let project = match self.parent(obj) {
            Some(p) if p.object_type == T::Project && obj.object_type != T::ProjectLog => Some(p.object_id),
            _ => None,
        };
        // The node goes with its bucket, so only the rows' other links need undoing.
        for row in self.rows_on(obj) {
            self.unlink_row(row);
        }
        let ty = type_code(obj.object_type);
        let h = hash_id(obj.object_id, ty);
        if obj.object_type.is_project_child() {
            let Some(leaf) = self.leaves.remove(h, |l| l.ty == ty && l.id == obj.object_id) else { return };
            if leaf.n == SPILLED {
                self.spills.release(leaf.e[0].row);
            }
        } else {
            let Some(slot) = self.container_ids.remove(h, |s| s.ty == ty && s.id == obj.object_id) else { return };
            self.containers.release(slot.idx);
        }
        for (index, owner) in [(&mut self.org_index, org), (&mut self.project_index, project)] {
            let Some(owner) = owner else { continue };
            let key = (owner, obj.object_type);
            if let Some(set) = index.get_mut(&key) {
                set.remove(obj.object_id.as_u128());
                if set.is_empty() {
                    index.remove(&key);
                }
            }
        }
    }

    fn add_org(&mut self, org: Uuid) -> Result<(), AuthzError> {
        let root = ObjectRef::new(T::Organization, org);
        if self.contains(root) {
            return Err(AuthzError::DuplicateObject(root));
        }
        let r = self.add_container(root, NONE, Some(org));
        for t in ORG_NOUNS {
            self.add_container(ObjectRef::new(t, org), r, Some(org));
        }
        Ok(())
    }

    fn remove_org(&mut self, org: Uuid) -> Result<(), AuthzError> {
        let root = ObjectRef::new(T::Organization, org);
        if !self.contains(root) {
            return Err(AuthzError::UnknownOrg(org));
        }
        let ids = |s: &Snapshot, t: ObjectType| -> Vec<Uuid> {
            s.org_index.get(&(org, t)).map(|set| set.iter().map(Uuid::from_u128).collect()).unwrap_or_default()
        };
        for g in ids(self, T::Group) {
            self.remove_group(g)?;
        }
        for r in ids(self, T::Role) {
            self.remove_role(r)?;
        }
        for g in ids(self, T::ProjectGroup) {
            self.remove_project_group(g)?;
        }
        for p in ids(self, T::Project) {
            self.remove_object(ObjectRef::new(T::Project, p))?;
        }
        for s in ids(self, T::AiSecret) {
            self.drop_node(ObjectRef::new(T::AiSecret, s));
        }
        for t in ORG_NOUNS {
            self.drop_node(ObjectRef::new(t, org));
        }
        self.drop_node(root);
        Ok(())
    }

    fn add_object(&mut self, object: ObjectRef, parent: ObjectRef) -> Result<(), AuthzError> {
        if !(matches!(object.object_type, T::Project | T::AiSecret) || PROJECT_CHILDREN.contains(&object.object_type)) {
            return Err(AuthzError::WrongObjectType(object.object_type));
        }
        if self.contains(object) {
            return Err(AuthzError::DuplicateObject(object));
        }
        if !self.contains(parent) {
            return Err(AuthzError::UnknownParent(parent));
        }
        let wrong = AuthzError::WrongParentType { object, parent };
        if object.object_type == T::AiSecret {
            // An AI secret sits under its org's `org_ai_secret`, whichever is named.
            if !matches!(parent.object_type, T::Organization | T::OrgAiSecret) {
                return Err(wrong);
            }
            let org = parent.object_id;
            let all = self.container_idx(ObjectRef::new(T::OrgAiSecret, org)).unwrap_or(NONE);
            self.add_container(object, all, Some(org));
            return Ok(());
        }
        if object.object_type == T::Project {
            if !matches!(parent.object_type, T::Organization | T::OrgProject) {
                return Err(wrong);
            }
            let org = parent.object_id;
            let org_project = self.container_idx(ObjectRef::new(T::OrgProject, org)).unwrap_or(NONE);
            let p = self.add_container(object, org_project, Some(org));
            self.add_leaf(ObjectRef::new(T::ProjectLog, object.object_id), p, Some(org), None);
        } else {
            if parent.object_type != T::Project {
                return Err(wrong);
            }
            let org = self.org_of(parent);
            let p = self.container_idx(parent).unwrap_or(NONE);
            self.add_leaf(object, p, org, Some(parent.object_id));
        }
        Ok(())
    }

    fn remove_object(&mut self, object: ObjectRef) -> Result<(), AuthzError> {
        if !(matches!(object.object_type, T::Project | T::AiSecret) || PROJECT_CHILDREN.contains(&object.object_type)) {
            return Err(AuthzError::WrongObjectType(object.object_type));
        }
        if !self.contains(object) {
            return Err(AuthzError::UnknownObject(object));
        }
        if object.object_type == T::Project {
            let p = object.object_id;
            for t in PROJECT_CHILDREN {
                let ids: Vec<Uuid> = self
                    .project_index
                    .get(&(p, t))
                    .map(|s| s.iter().map(Uuid::from_u128).collect())
                    .unwrap_or_default();
                for id in ids {
                    self.drop_node(ObjectRef::new(t, id));
                }
            }
            self.drop_node(ObjectRef::new(T::ProjectLog, p));
            if let Some(c) = self.container_idx(object) {
                let groups: Vec<Uuid> = self.groups_above(c).iter().map(|g| self.containers.get(*g).id).collect();
                for g in groups {
                    self.set_group_project(g, p, false)?;
                }
            }
        }
        self.drop_node(object);
        Ok(())
    }

    // ---- project groups ------------------------------------------------------------

    fn add_project_group(&mut self, group: Uuid, org: Uuid) -> Result<(), AuthzError> {
        let root = self.container_idx(ObjectRef::new(T::Organization, org)).ok_or(AuthzError::UnknownOrg(org))?;
        let pg = ObjectRef::new(T::ProjectGroup, group);
        if self.contains(pg) {
            return Err(AuthzError::DuplicateObject(pg));
        }
        let org_project = self.container_idx(ObjectRef::new(T::OrgProject, org)).unwrap_or(NONE);
        self.add_container(pg, root, Some(org));
        self.add_container(ObjectRef::new(T::ProjectGroupProjects, group), org_project, Some(org));
        self.group_projects.insert(group, IdSet::default());
        Ok(())
    }

    fn remove_project_group(&mut self, group: Uuid) -> Result<(), AuthzError> {
        let pg = ObjectRef::new(T::ProjectGroup, group);
        if !self.contains(pg) {
            return Err(AuthzError::UnknownObject(pg));
        }
        let projects: Vec<Uuid> =
            self.group_projects.get(&group).map(|s| s.iter().map(Uuid::from_u128).collect()).unwrap_or_default();
        for p in projects {
            self.set_group_project(group, p, false)?;
        }
        self.group_projects.remove(&group);
        self.drop_node(ObjectRef::new(T::ProjectGroupProjects, group));
        self.drop_node(pg);
        Ok(())
    }

    fn set_group_project(&mut self, group: Uuid, project: Uuid, member: bool) -> Result<(), AuthzError> {
        let pg = ObjectRef::new(T::ProjectGroup, group);
        if !self.contains(pg) {
            return Err(AuthzError::UnknownObject(pg));
        }
        let p = ObjectRef::new(T::Project, project);
        let Some(pc) = self.container_idx(p) else { return Err(AuthzError::UnknownObject(p)) };
        let all = ObjectRef::new(T::ProjectGroupProjects, group);
        if member && self.org_of(p) != self.org_of(pg) {
            return Err(AuthzError::WrongParentType { object: p, parent: all });
        }
        let Some(gc) = self.container_idx(all) else { return Err(AuthzError::UnknownObject(all)) };
        let mut list: Vec<u32> = self.groups_above(pc).to_vec();
        let present = list.contains(&gc);
        if member == present {
            return Ok(());
        }
        if member {
            list.push(gc);
            list.sort_by_key(|g| self.containers.get(*g).id);
            self.group_projects.get_or_insert_with(group, IdSet::default).insert(project.as_u128());
        } else {
            list.retain(|g| *g != gc);
            if let Some(set) = self.group_projects.get_mut(&group) {
                set.remove(project.as_u128());
            }
        }
        self.containers.get_mut(pc).grouped = !list.is_empty();
        if list.is_empty() {
            self.project_groups.remove(&pc);
        } else {
            self.project_groups.insert(pc, list.into());
        }
        Ok(())
    }

    // ---- ACL rows ------------------------------------------------------------------

    fn add_acl(&mut self, row: AclRow) -> Result<(), AuthzError> {
        if self.acl_row(row.id).is_some() {
            return Err(AuthzError::DuplicateAcl(row.id));
        }
        if !self.contains(row.object) {
            return Err(AuthzError::UnknownObject(row.object));
        }
        let org = self.org_of(row.object);
        let group = match row.subject {
            Subject::Group(g) => {
                let gi = self.group_idx(g).ok_or(AuthzError::UnknownGroup(g))?;
                if Some(self.groups.get(gi).org) != org {
                    return Err(AuthzError::CrossOrg { id: g, object: row.object });
                }
                gi | GROUP
            }
            Subject::User(_) => NONE,
        };
        let mut grant = match row.grant {
            Grant::Role(r) => {
                let ri = self.role_idx(r).ok_or(AuthzError::UnknownRole(r))?;
                let role_org = self.roles.get(ri).org;
                if role_org.is_some() && role_org != org {
                    return Err(AuthzError::CrossOrg { id: r, object: row.object });
                }
                ri | ROLE
            }
            Grant::Permission { permission, restrict_object_type } => perm_code(permission, restrict_object_type),
        };
        // Valid: from here on nothing fails.
        if row.expires_at.is_some() {
            grant |= EXPIRING;
        }
        let subject = match row.subject {
            Subject::User(u) => self.ensure_user(u),
            Subject::Group(_) => group,
        };
        let ri = self.rows.alloc(Row {
            id: row.id,
            object: row.object.object_id,
            subject,
            grant,
            object_type: type_code(row.object.object_type),
        });
        if let Some(at) = row.expires_at {
            self.expiries.insert(ri, at);
        }
        let h = hash_id(row.id, 0);
        self.acl_ids.insert(h, AclSlot::new(h, ri));
        if subject & GROUP == 0 {
            add_sorted(&mut self.users.get_mut(subject).rows, ri);
        } else {
            add_sorted(&mut self.groups.get_mut(subject & !GROUP).rows, ri);
        }
        if grant & ROLE != 0 {
            add_sorted(&mut self.roles.get_mut(grant & ROLE_INDEX).rows, ri);
        }
        self.bucket_insert(row.object, Entry { subject, grant, row: ri });
        Ok(())
    }

    /// Puts an entry in its object's bucket: inline in a leaf while it has at most two,
    /// else in a spilled or container bucket.
    fn bucket_insert(&mut self, obj: ObjectRef, e: Entry) {
        let ty = type_code(obj.object_type);
        if obj.object_type.is_project_child() {
            let Some(l) = self.leaves.get_mut(hash_id(obj.object_id, ty), |l| l.ty == ty && l.id == obj.object_id)
            else {
                return;
            };
            match l.n {
                SPILLED => {
                    if let Some(b) = self.spills.get_mut(l.e[0].row) {
                        Arc::make_mut(b).insert(e);
                    }
                }
                n if usize::from(n) < LEAF_INLINE => {
                    l.e[usize::from(n)] = e;
                    l.n += 1;
                }
                _ => {
                    let mut all = l.e.to_vec();
                    all.push(e);
                    let si = self.spills.alloc(Some(Arc::new(Bucket::from_entries(all))));
                    l.n = SPILLED;
                    l.e = [Entry::default(); LEAF_INLINE];
                    l.e[0].row = si;
                }
            }
        } else if let Some(s) =
            self.container_ids.get(hash_id(obj.object_id, ty), |s| s.ty == ty && s.id == obj.object_id)
        {
            let c = self.containers.get_mut(s.idx);
            let b = Arc::make_mut(c.bucket.get_or_insert_with(Default::default));
            b.insert(e);
            if b.len() > NODE_FILTER_MAX {
                c.filter = [!0; 12];
                c.saturated = true;
            } else {
                node_filter_add(&mut c.filter, e.subject);
            }
        }
    }

    /// Takes the entry of `row` out of its object's bucket.
    fn bucket_remove(&mut self, obj: ObjectRef, row: u32) {
        let ty = type_code(obj.object_type);
        if obj.object_type.is_project_child() {
            let Some(l) = self.leaves.get_mut(hash_id(obj.object_id, ty), |l| l.ty == ty && l.id == obj.object_id)
            else {
                return;
            };
            if l.n == SPILLED {
                let si = l.e[0].row;
                let Some(b) = self.spills.get_mut(si) else { return };
                let b = Arc::make_mut(b);
                b.remove_row(row);
                if b.len() <= LEAF_INLINE {
                    // Back inline: the check on this leaf is one cache miss again.
                    let mut e = [Entry::default(); LEAF_INLINE];
                    e[..b.len()].copy_from_slice(b.entries());
                    l.n = b.len() as u8;
                    l.e = e;
                    self.spills.release(si);
                }
            } else if let Some(i) = l.e[..usize::from(l.n)].iter().position(|e| e.row == row) {
                l.e.copy_within(i + 1..usize::from(l.n), i);
                l.n -= 1;
                l.e[usize::from(l.n)] = Entry::default();
            }
        } else if let Some(s) =
            self.container_ids.get(hash_id(obj.object_id, ty), |s| s.ty == ty && s.id == obj.object_id)
        {
            let c = self.containers.get_mut(s.idx);
            if let Some(b) = c.bucket.as_mut() {
                Arc::make_mut(b).remove_row(row);
                if b.len() == 0 {
                    c.bucket = None;
                }
            }
            c.filter = node_filter_of(c.bucket.as_deref());
            c.saturated = c.filter == [!0; 12];
        }
    }

    fn remove_acl(&mut self, id: Uuid) -> Result<(), AuthzError> {
        let ri = self.acl_row(id).ok_or(AuthzError::UnknownAcl(id))?;
        self.remove_row(ri);
        Ok(())
    }

    /// Removes a row entirely: its entry, then its other links.
    fn remove_row(&mut self, ri: u32) {
        let obj = self.rows.get(ri).object();
        self.bucket_remove(obj, ri);
        self.unlink_row(ri);
    }

    /// Undoes every link of a row but its bucket entry, and frees it.
    fn unlink_row(&mut self, ri: u32) {
        let row = *self.rows.get(ri);
        let h = hash_id(row.id, 0);
        self.acl_ids.remove(h, |s| s.row == ri);
        if row.grant & EXPIRING != 0 {
            self.expiries.remove(&ri);
        }
        if row.subject & GROUP == 0 {
            remove_sorted(&mut self.users.get_mut(row.subject).rows, ri);
            self.drop_user_if_unused(row.subject);
        } else {
            remove_sorted(&mut self.groups.get_mut(row.subject & !GROUP).rows, ri);
        }
        if row.grant & ROLE != 0 {
            remove_sorted(&mut self.roles.get_mut(row.grant & ROLE_INDEX).rows, ri);
        }
        self.rows.release(ri);
    }

    // ---- users -----------------------------------------------------------------------

    /// The user's index, creating the user if needed.
    fn ensure_user(&mut self, user: Uuid) -> u32 {
        if let Some(i) = self.user_idx(user) {
            return i;
        }
        let idx = self.users.alloc(UserNode { id: user, direct: Arc::from([]), rows: Arc::default() });
        self.user_ids.insert(hash_id(user, 0), UserSlot::new(user, idx));
        idx
    }

    /// Forgets a user with no membership and no row (stats count only the others).
    fn drop_user_if_unused(&mut self, ui: u32) {
        let n = self.users.get(ui);
        if n.direct.is_empty() && n.rows.is_empty() {
            let id = n.id;
            self.user_ids.remove(hash_id(id, 0), |s| s.idx == ui);
            self.users.release(ui);
        }
    }

    fn remove_user(&mut self, user: Uuid) {
        let Some(ui) = self.user_idx(user) else { return };
        if !self.users.get(ui).direct.is_empty() {
            self.users.get_mut(ui).direct = Arc::from([]);
            // Forgets the user at once when it has no rows.
            self.refresh_user(ui);
        }
        if let Some(ui) = self.user_idx(user) {
            // The last row's removal forgets the user.
            for ri in self.users.get(ui).rows.clone().iter() {
                self.remove_row(*ri);
            }
        }
    }

    // ---- groups ----------------------------------------------------------------------

    fn add_group(&mut self, group: Uuid, org: Uuid) -> Result<(), AuthzError> {
        let root = ObjectRef::new(T::Organization, org);
        let Some(r) = self.container_idx(root) else { return Err(AuthzError::UnknownOrg(org)) };
        if self.group_idx(group).is_some() {
            return Err(AuthzError::DuplicateGroup(group));
        }
        let obj = ObjectRef::new(T::Group, group);
        if self.contains(obj) {
            return Err(AuthzError::DuplicateObject(obj));
        }
        let gi = self.groups.alloc(GroupNode {
            id: group,
            org,
            members: Arc::from([]),
            parents: Arc::from([]),
            up: Arc::from([]),
            users: IdSet::default(),
            rows: Arc::default(),
        });
        self.groups.get_mut(gi).up = Arc::from([gi]);
        self.group_ids.insert(hash_id(group, 0), IdSlot { id: group, idx: gi });
        self.add_container(obj, r, Some(org));
        Ok(())
    }

    fn remove_group(&mut self, group: Uuid) -> Result<(), AuthzError> {
        let gi = self.group_idx(group).ok_or(AuthzError::UnknownGroup(group))?;
        let node = self.groups.get(gi).clone();
        for p in node.parents.iter() {
            self.set_group_edge(*p, gi, false);
        }
        for m in node.members.iter() {
            self.set_group_edge(gi, *m, false);
        }
        // With no member groups left, the group's users are exactly its direct users.
        let users: Vec<Uuid> = self.groups.get(gi).users.iter().map(Uuid::from_u128).collect();
        for u in users {
            self.set_group_user(group, u, false)?;
        }
        for ri in self.groups.get(gi).rows.clone().iter() {
            self.remove_row(*ri);
        }
        self.drop_node(ObjectRef::new(T::Group, group));
        self.group_ids.remove(hash_id(group, 0), |s| s.idx == gi);
        self.groups.release(gi);
        Ok(())
    }

    fn set_group_user(&mut self, group: Uuid, user: Uuid, member: bool) -> Result<(), AuthzError> {
        let gi = self.group_idx(group).ok_or(AuthzError::UnknownGroup(group))?;
        let is_member = self.user_idx(user).is_some_and(|ui| self.users.get(ui).direct.binary_search(&gi).is_ok());
        if is_member == member {
            return Ok(());
        }
        let ui = self.ensure_user(user);
        let node = self.users.get_mut(ui);
        node.direct = if member { with(&node.direct, gi) } else { without(&node.direct, gi) };
        self.refresh_user(ui);
        Ok(())
    }

    fn add_group_group(&mut self, group: Uuid, member_group: Uuid) -> Result<(), AuthzError> {
        let g = self.group_idx(group).ok_or(AuthzError::UnknownGroup(group))?;
        let m = self.group_idx(member_group).ok_or(AuthzError::UnknownGroup(member_group))?;
        let (gn, mn) = (self.groups.get(g), self.groups.get(m));
        if gn.org != mn.org {
            return Err(AuthzError::CrossOrg { id: member_group, object: ObjectRef::new(T::Group, group) });
        }
        if gn.members.contains(&m) {
            return Ok(());
        }
        // `up(group)` already holds every group containing `group`; if the member is one of
        // them (or the group itself), the new edge closes a cycle.
        if gn.up.binary_search(&m).is_ok() {
            return Err(AuthzError::GroupCycle { group, member_group });
        }
        self.set_group_edge(g, m, true);
        Ok(())
    }

    fn remove_group_group(&mut self, group: Uuid, member_group: Uuid) -> Result<(), AuthzError> {
        let g = self.group_idx(group).ok_or(AuthzError::UnknownGroup(group))?;
        let m = self.group_idx(member_group).ok_or(AuthzError::UnknownGroup(member_group))?;
        if self.groups.get(g).members.contains(&m) {
            self.set_group_edge(g, m, false);
        }
        Ok(())
    }

    /// Adds or removes the edge, then re-derives only what it changes: `up` of the groups
    /// below `member`, and the closures of the users of `member`.
    fn set_group_edge(&mut self, group: u32, member: u32, present: bool) {
        let g = self.groups.get_mut(group);
        g.members = if present { with(&g.members, member) } else { without(&g.members, member) };
        let m = self.groups.get_mut(member);
        m.parents = if present { with(&m.parents, group) } else { without(&m.parents, group) };
        for x in self.down_of(member) {
            let up = self.compute_up(x);
            self.groups.get_mut(x).up = up;
        }
        // The users of `member` do not change with its parents; their closures do.
        let users: Vec<Uuid> = self.groups.get(member).users.iter().map(Uuid::from_u128).collect();
        for u in users {
            if let Some(ui) = self.user_idx(u) {
                self.refresh_user(ui);
            }
        }
    }

    /// `group` and every group it contains, transitively.
    fn down_of(&self, group: u32) -> Vec<u32> {
        let mut seen = vec![group];
        let mut queue = VecDeque::from([group]);
        while let Some(g) = queue.pop_front() {
            for m in self.groups.get(g).members.iter() {
                if !seen.contains(m) {
                    seen.push(*m);
                    queue.push_back(*m);
                }
            }
        }
        seen
    }

    /// `group` and every group containing it, from the parent edges alone.
    fn compute_up(&self, group: u32) -> Arc<[u32]> {
        let mut seen = vec![group];
        let mut queue = VecDeque::from([group]);
        while let Some(g) = queue.pop_front() {
            for p in self.groups.get(g).parents.iter() {
                if !seen.contains(p) {
                    seen.push(*p);
                    queue.push_back(*p);
                }
            }
        }
        seen.sort_unstable();
        seen.into()
    }

    /// Re-derives one user's closure and moves the user between the groups' user sets by
    /// the difference only.
    fn refresh_user(&mut self, ui: u32) {
        let node = self.users.get(ui);
        let id = node.id;
        let mut closure: Vec<u32> = Vec::new();
        for d in node.direct.iter() {
            closure.extend(self.groups.get(*d).up.iter().copied());
        }
        closure.sort_unstable();
        closure.dedup();
        let h = hash_id(id, 0);
        let old: Vec<u32> = self.user_ids.get(h, |s| s.idx == ui).map(|s| s.groups().to_vec()).unwrap_or_default();
        for g in old.iter().filter(|g| closure.binary_search(g).is_err()) {
            self.groups.get_mut(*g).users.remove(id.as_u128());
        }
        for g in closure.iter().filter(|g| old.binary_search(g).is_err()) {
            self.groups.get_mut(*g).users.insert(id.as_u128());
        }
        if let Some(s) = self.user_ids.get_mut(h, |s| s.idx == ui) {
            s.set_groups(&closure);
        }
        self.drop_user_if_unused(ui);
    }

    // ---- roles -----------------------------------------------------------------------

    fn add_role(&mut self, role: Uuid, org: Option<Uuid>) -> Result<(), AuthzError> {
        let parent = match org {
            Some(o) => match self.container_idx(ObjectRef::new(T::Organization, o)) {
                Some(r) => r,
                None => return Err(AuthzError::UnknownOrg(o)),
            },
            None => NONE,
        };
        if self.role_idx(role).is_some() {
            return Err(AuthzError::DuplicateRole(role));
        }
        let obj = ObjectRef::new(T::Role, role);
        if self.contains(obj) {
            return Err(AuthzError::DuplicateObject(obj));
        }
        let ri = self.roles.alloc(RoleNode {
            id: role,
            org,
            perms: Arc::from([]),
            members: Arc::from([]),
            parents: Arc::from([]),
            masks: [0; ObjectType::COUNT],
            rows: Arc::default(),
        });
        self.role_ids.insert(hash_id(role, 0), IdSlot { id: role, idx: ri });
        self.add_container(obj, parent, org);
        Ok(())
    }

    fn remove_role(&mut self, role: Uuid) -> Result<(), AuthzError> {
        let ri = self.role_idx(role).ok_or(AuthzError::UnknownRole(role))?;
        let node = self.roles.get(ri).clone();
        for p in node.parents.iter() {
            self.set_role_edge(*p, ri, false);
        }
        for m in node.members.iter() {
            self.set_role_edge(ri, *m, false);
        }
        for row in node.rows.iter() {
            self.remove_row(*row);
        }
        self.drop_node(ObjectRef::new(T::Role, role));
        self.role_ids.remove(hash_id(role, 0), |s| s.idx == ri);
        self.roles.release(ri);
        Ok(())
    }

    fn set_role_permission(
        &mut self,
        role: Uuid,
        p: Permission,
        r: Option<ObjectType>,
        present: bool,
    ) -> Result<(), AuthzError> {
        let ri = self.role_idx(role).ok_or(AuthzError::UnknownRole(role))?;
        let node = self.roles.get_mut(ri);
        let has = node.perms.contains(&(p, r));
        if has == present {
            return Ok(());
        }
        let mut perms = node.perms.to_vec();
        if present {
            perms.push((p, r));
            perms.sort_unstable();
        } else {
            perms.retain(|x| *x != (p, r));
        }
        node.perms = perms.into();
        self.refresh_roles_above(ri);
        Ok(())
    }

    fn add_role_inherit(&mut self, role: Uuid, member_role: Uuid) -> Result<(), AuthzError> {
        let r = self.role_idx(role).ok_or(AuthzError::UnknownRole(role))?;
        let m = self.role_idx(member_role).ok_or(AuthzError::UnknownRole(member_role))?;
        let (rn, mn) = (self.roles.get(r), self.roles.get(m));
        if mn.org.is_some() && mn.org != rn.org {
            return Err(AuthzError::CrossOrg { id: member_role, object: ObjectRef::new(T::Role, role) });
        }
        if rn.members.contains(&m) {
            return Ok(());
        }
        if self.role_down(m).contains(&r) {
            return Err(AuthzError::RoleCycle { role, member_role });
        }
        self.set_role_edge(r, m, true);
        Ok(())
    }

    fn remove_role_inherit(&mut self, role: Uuid, member_role: Uuid) -> Result<(), AuthzError> {
        let r = self.role_idx(role).ok_or(AuthzError::UnknownRole(role))?;
        let m = self.role_idx(member_role).ok_or(AuthzError::UnknownRole(member_role))?;
        if self.roles.get(r).members.contains(&m) {
            self.set_role_edge(r, m, false);
        }
        Ok(())
    }

    fn set_role_edge(&mut self, role: u32, member: u32, present: bool) {
        let r = self.roles.get_mut(role);
        r.members = if present { with(&r.members, member) } else { without(&r.members, member) };
        let m = self.roles.get_mut(member);
        m.parents = if present { with(&m.parents, role) } else { without(&m.parents, role) };
        self.refresh_roles_above(role);
    }

    /// `role` and every role it inherits, transitively.
    fn role_down(&self, role: u32) -> Vec<u32> {
        self.role_walk(role, |n| &n.members)
    }

    fn role_walk(&self, role: u32, next: impl Fn(&RoleNode) -> &Arc<[u32]>) -> Vec<u32> {
        let mut seen = vec![role];
        let mut queue = VecDeque::from([role]);
        while let Some(r) = queue.pop_front() {
            for x in next(self.roles.get(r)).iter() {
                if !seen.contains(x) {
                    seen.push(*x);
                    queue.push_back(*x);
                }
            }
        }
        seen
    }

    /// Re-derives the masks of `role` and of every role inheriting it: only those change.
    fn refresh_roles_above(&mut self, role: u32) {
        for r in self.role_walk(role, |n| &n.parents) {
            let mut masks: Masks = [0; ObjectType::COUNT];
            for d in self.role_down(r) {
                for (p, t) in self.roles.get(d).perms.iter() {
                    let m = pair_masks(*p, *t);
                    for i in 0..ObjectType::COUNT {
                        masks[i] |= m[i];
                    }
                }
            }
            self.roles.get_mut(r).masks = masks;
        }
    }
}
