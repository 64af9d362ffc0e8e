//! Mutations: validation, cascades, and incremental maintenance of the closures.
//!
//! A batch runs on a clone of the snapshot (pointer copies) and only the shards it touches
//! are copied; on error the clone is dropped, so `apply` is all-or-nothing.

use crate::error::AuthzError;
use crate::snapshot::{pair_masks, AclEntry, Expiry, GroupNode, Masks, ObjNode, RoleNode, Snapshot, UserNode};
use crate::types::{AclRow, Grant, Mutation, Subject};
use castellan_core::model::{ObjectRef, ObjectType, Permission};
use imbl::OrdSet;
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

use ObjectType as T;

const ORG_NOUNS: [ObjectType; 3] = [T::OrgMember, T::OrgProject, T::OrgAuditLogs];
const PROJECT_CHILDREN: [ObjectType; 4] = [T::Experiment, T::Dataset, T::Prompt, T::PromptSession];

fn with(list: &[Uuid], id: Uuid) -> Arc<[Uuid]> {
    let mut v = list.to_vec();
    if let Err(i) = v.binary_search(&id) {
        v.insert(i, id);
    }
    v.into()
}

fn without(list: &[Uuid], id: Uuid) -> Arc<[Uuid]> {
    list.iter().copied().filter(|x| *x != id).collect()
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
            Mutation::RemoveUser { user } => {
                self.remove_user(user);
                Ok(())
            }
        }
    }

    // ---- objects -------------------------------------------------------------------

    fn add_node(&mut self, obj: ObjectRef, parent: Option<ObjectRef>, org: Option<Uuid>, project: Option<Uuid>) {
        self.objects.insert(obj, ObjNode { parent, acls: None });
        if let Some(org) = org {
            self.org_index.get_or_insert_with((org, obj.object_type), OrdSet::new).insert(obj.object_id);
        }
        if let Some(p) = project {
            self.project_index.get_or_insert_with((p, obj.object_type), OrdSet::new).insert(obj.object_id);
        }
    }

    /// Drops one node and the ACL rows on it (not its descendants).
    fn drop_node(&mut self, obj: ObjectRef) {
        let org = self.org_of(obj);
        let project = match self.parent(obj) {
            Some(p) if p.object_type == T::Project && obj.object_type != T::ProjectLog => Some(p.object_id),
            _ => None,
        };
        let Some(node) = self.objects.remove(&obj) else { return };
        if let Some(bucket) = node.acls {
            for e in bucket.entries.iter() {
                self.unlink_acl(obj, e);
            }
        }
        for (index, owner) in [(&mut self.org_index, org), (&mut self.project_index, project)] {
            let Some(owner) = owner else { continue };
            let key = (owner, obj.object_type);
            if let Some(set) = index.get_mut(&key) {
                set.remove(&obj.object_id);
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
        self.add_node(root, None, Some(org), None);
        for t in ORG_NOUNS {
            self.add_node(ObjectRef::new(t, org), Some(root), Some(org), None);
        }
        Ok(())
    }

    fn remove_org(&mut self, org: Uuid) -> Result<(), AuthzError> {
        let root = ObjectRef::new(T::Organization, org);
        if !self.contains(root) {
            return Err(AuthzError::UnknownOrg(org));
        }
        let ids = |s: &Snapshot, t: ObjectType| -> Vec<Uuid> {
            s.org_index.get(&(org, t)).map(|set| set.iter().copied().collect()).unwrap_or_default()
        };
        for g in ids(self, T::Group) {
            self.remove_group(g)?;
        }
        for r in ids(self, T::Role) {
            self.remove_role(r)?;
        }
        for p in ids(self, T::Project) {
            self.remove_object(ObjectRef::new(T::Project, p))?;
        }
        for t in ORG_NOUNS {
            self.drop_node(ObjectRef::new(t, org));
        }
        self.drop_node(root);
        Ok(())
    }

    fn add_object(&mut self, object: ObjectRef, parent: ObjectRef) -> Result<(), AuthzError> {
        if !(object.object_type == T::Project || PROJECT_CHILDREN.contains(&object.object_type)) {
            return Err(AuthzError::WrongObjectType(object.object_type));
        }
        if self.contains(object) {
            return Err(AuthzError::DuplicateObject(object));
        }
        if !self.contains(parent) {
            return Err(AuthzError::UnknownParent(parent));
        }
        let wrong = AuthzError::WrongParentType { object, parent };
        if object.object_type == T::Project {
            if !matches!(parent.object_type, T::Organization | T::OrgProject) {
                return Err(wrong);
            }
            let org = parent.object_id;
            self.add_node(object, Some(ObjectRef::new(T::OrgProject, org)), Some(org), None);
            self.add_node(ObjectRef::new(T::ProjectLog, object.object_id), Some(object), Some(org), None);
        } else {
            if parent.object_type != T::Project {
                return Err(wrong);
            }
            let org = self.org_of(parent);
            self.add_node(object, Some(parent), org, Some(parent.object_id));
        }
        Ok(())
    }

    fn remove_object(&mut self, object: ObjectRef) -> Result<(), AuthzError> {
        if !(object.object_type == T::Project || PROJECT_CHILDREN.contains(&object.object_type)) {
            return Err(AuthzError::WrongObjectType(object.object_type));
        }
        if !self.contains(object) {
            return Err(AuthzError::UnknownObject(object));
        }
        if object.object_type == T::Project {
            let p = object.object_id;
            for t in PROJECT_CHILDREN {
                let ids: Vec<Uuid> =
                    self.project_index.get(&(p, t)).map(|s| s.iter().copied().collect()).unwrap_or_default();
                for id in ids {
                    self.drop_node(ObjectRef::new(t, id));
                }
            }
            self.drop_node(ObjectRef::new(T::ProjectLog, p));
        }
        self.drop_node(object);
        Ok(())
    }

    // ---- ACL rows ------------------------------------------------------------------

    fn add_acl(&mut self, row: AclRow) -> Result<(), AuthzError> {
        if self.acl_loc.contains_key(&row.id) {
            return Err(AuthzError::DuplicateAcl(row.id));
        }
        if !self.contains(row.object) {
            return Err(AuthzError::UnknownObject(row.object));
        }
        let org = self.org_of(row.object);
        if let Subject::Group(g) = row.subject {
            let node = self.groups.get(&g).ok_or(AuthzError::UnknownGroup(g))?;
            if Some(node.org) != org {
                return Err(AuthzError::CrossOrg { id: g, object: row.object });
            }
        }
        if let Grant::Role(r) = row.grant {
            let node = self.roles.get(&r).ok_or(AuthzError::UnknownRole(r))?;
            if node.org.is_some() && node.org != org {
                return Err(AuthzError::CrossOrg { id: r, object: row.object });
            }
        }
        let entry =
            AclEntry { id: row.id, subject: row.subject, grant: row.grant, expires: Expiry::new(row.expires_at) };
        if let Some(node) = self.objects.get_mut(&row.object) {
            Arc::make_mut(node.acls.get_or_insert_with(Default::default)).insert(entry);
        }
        self.acl_loc.insert(row.id, row.object);
        match row.subject {
            Subject::User(u) => {
                Arc::make_mut(&mut self.users.get_or_insert_with(u, UserNode::default).acl_objects).push(row.object)
            }
            Subject::Group(g) => {
                if let Some(node) = self.groups.get_mut(&g) {
                    Arc::make_mut(&mut node.acl_objects).push(row.object);
                }
            }
        }
        if let Grant::Role(r) = row.grant {
            if let Some(node) = self.roles.get_mut(&r) {
                node.acls.insert(row.id);
            }
        }
        Ok(())
    }

    fn remove_acl(&mut self, id: Uuid) -> Result<(), AuthzError> {
        let obj = *self.acl_loc.get(&id).ok_or(AuthzError::UnknownAcl(id))?;
        self.remove_entries(obj, |e| e.id == id);
        Ok(())
    }

    /// Removes the entries of `obj`'s bucket matching `pred`, unlinking each.
    fn remove_entries(&mut self, obj: ObjectRef, pred: impl Fn(&AclEntry) -> bool) {
        let Some(node) = self.objects.get_mut(&obj) else { return };
        let Some(bucket) = node.acls.as_mut() else { return };
        if !bucket.entries.iter().any(&pred) {
            return;
        }
        let b = Arc::make_mut(bucket);
        let removed: Vec<AclEntry> = b.entries.iter().filter(|e| pred(e)).copied().collect();
        b.entries.retain(|e| !pred(e));
        // A Bloom filter cannot forget a bit; rebuilding keeps it tight (removal is O(n) anyway).
        b.rebuild();
        if b.entries.is_empty() {
            node.acls = None;
        }
        for e in &removed {
            self.unlink_acl(obj, e);
        }
    }

    /// Removes the side indexes of one entry (the bucket itself is the caller's business).
    fn unlink_acl(&mut self, obj: ObjectRef, e: &AclEntry) {
        self.acl_loc.remove(&e.id);
        let drop_one = |list: &mut Arc<Vec<ObjectRef>>| {
            if let Some(i) = list.iter().position(|o| *o == obj) {
                Arc::make_mut(list).swap_remove(i);
            }
        };
        match e.subject {
            Subject::User(u) => {
                let mut unused = false;
                if let Some(node) = self.users.get_mut(&u) {
                    drop_one(&mut node.acl_objects);
                    unused = node.is_unused();
                }
                if unused {
                    self.users.remove(&u);
                }
            }
            Subject::Group(g) => {
                if let Some(node) = self.groups.get_mut(&g) {
                    drop_one(&mut node.acl_objects);
                }
            }
        }
        if let Grant::Role(r) = e.grant {
            if let Some(node) = self.roles.get_mut(&r) {
                node.acls.remove(&e.id);
            }
        }
    }

    /// Removes every row naming `subject`.
    fn remove_rows_naming(&mut self, subject: Subject) {
        let objects: Vec<ObjectRef> = match subject {
            Subject::User(u) => self.users.get(&u).map(|n| n.acl_objects.to_vec()),
            Subject::Group(g) => self.groups.get(&g).map(|n| n.acl_objects.to_vec()),
        }
        .unwrap_or_default();
        let mut objects = objects;
        objects.sort_unstable();
        objects.dedup();
        for obj in objects {
            self.remove_entries(obj, |e| e.subject == subject);
        }
    }

    // ---- groups ----------------------------------------------------------------------

    fn add_group(&mut self, group: Uuid, org: Uuid) -> Result<(), AuthzError> {
        let root = ObjectRef::new(T::Organization, org);
        if !self.contains(root) {
            return Err(AuthzError::UnknownOrg(org));
        }
        if self.groups.contains_key(&group) {
            return Err(AuthzError::DuplicateGroup(group));
        }
        let obj = ObjectRef::new(T::Group, group);
        if self.contains(obj) {
            return Err(AuthzError::DuplicateObject(obj));
        }
        self.groups.insert(
            group,
            GroupNode {
                org,
                members: Arc::from([]),
                parents: Arc::from([]),
                up: Arc::from([group]),
                users: OrdSet::new(),
                acl_objects: Arc::default(),
            },
        );
        self.add_node(obj, Some(root), Some(org), None);
        Ok(())
    }

    fn remove_group(&mut self, group: Uuid) -> Result<(), AuthzError> {
        let node = self.groups.get(&group).cloned().ok_or(AuthzError::UnknownGroup(group))?;
        for p in node.parents.iter() {
            self.remove_group_group(*p, group)?;
        }
        for m in node.members.iter() {
            self.remove_group_group(group, *m)?;
        }
        // With no member groups left, the group's users are exactly its direct users.
        let users: Vec<Uuid> = self.groups.get(&group).map(|n| n.users.iter().copied().collect()).unwrap_or_default();
        for u in users {
            self.set_group_user(group, u, false)?;
        }
        self.remove_rows_naming(Subject::Group(group));
        self.drop_node(ObjectRef::new(T::Group, group));
        self.groups.remove(&group);
        Ok(())
    }

    fn set_group_user(&mut self, group: Uuid, user: Uuid, member: bool) -> Result<(), AuthzError> {
        if !self.groups.contains_key(&group) {
            return Err(AuthzError::UnknownGroup(group));
        }
        let is_member = self.users.get(&user).is_some_and(|n| n.direct.binary_search(&group).is_ok());
        if is_member == member {
            return Ok(());
        }
        let node = self.users.get_or_insert_with(user, UserNode::default);
        node.direct = if member { with(&node.direct, group) } else { without(&node.direct, group) };
        self.refresh_user(user);
        Ok(())
    }

    fn add_group_group(&mut self, group: Uuid, member_group: Uuid) -> Result<(), AuthzError> {
        let g = self.groups.get(&group).ok_or(AuthzError::UnknownGroup(group))?;
        let m = self.groups.get(&member_group).ok_or(AuthzError::UnknownGroup(member_group))?;
        if g.org != m.org {
            return Err(AuthzError::CrossOrg { id: member_group, object: ObjectRef::new(T::Group, group) });
        }
        if g.members.contains(&member_group) {
            return Ok(());
        }
        // `up(group)` already holds every group containing `group`; if the member is one of
        // them (or the group itself), the new edge closes a cycle.
        if g.up.binary_search(&member_group).is_ok() {
            return Err(AuthzError::GroupCycle { group, member_group });
        }
        self.set_group_edge(group, member_group, true);
        Ok(())
    }

    fn remove_group_group(&mut self, group: Uuid, member_group: Uuid) -> Result<(), AuthzError> {
        let g = self.groups.get(&group).ok_or(AuthzError::UnknownGroup(group))?;
        if !self.groups.contains_key(&member_group) {
            return Err(AuthzError::UnknownGroup(member_group));
        }
        if g.members.contains(&member_group) {
            self.set_group_edge(group, member_group, false);
        }
        Ok(())
    }

    /// Adds or removes the edge, then re-derives only what it changes: `up` of the groups
    /// below `member_group`, and the closures of the users of `member_group`.
    fn set_group_edge(&mut self, group: Uuid, member_group: Uuid, present: bool) {
        if let Some(g) = self.groups.get_mut(&group) {
            g.members = if present { with(&g.members, member_group) } else { without(&g.members, member_group) };
        }
        if let Some(m) = self.groups.get_mut(&member_group) {
            m.parents = if present { with(&m.parents, group) } else { without(&m.parents, group) };
        }
        for x in self.down_of(member_group) {
            let up = self.compute_up(x);
            if let Some(n) = self.groups.get_mut(&x) {
                n.up = up;
            }
        }
        // The users of member_group do not change with its parents; their closures do.
        let users: Vec<Uuid> =
            self.groups.get(&member_group).map(|n| n.users.iter().copied().collect()).unwrap_or_default();
        for u in users {
            self.refresh_user(u);
        }
    }

    /// `group` and every group it contains, transitively.
    fn down_of(&self, group: Uuid) -> Vec<Uuid> {
        let mut seen = vec![group];
        let mut queue = VecDeque::from([group]);
        while let Some(g) = queue.pop_front() {
            for m in self.groups.get(&g).map(|n| n.members.clone()).unwrap_or_else(|| Arc::from([])).iter() {
                if !seen.contains(m) {
                    seen.push(*m);
                    queue.push_back(*m);
                }
            }
        }
        seen
    }

    /// `group` and every group containing it, from the parent edges alone.
    fn compute_up(&self, group: Uuid) -> Arc<[Uuid]> {
        let mut seen = vec![group];
        let mut queue = VecDeque::from([group]);
        while let Some(g) = queue.pop_front() {
            if let Some(n) = self.groups.get(&g) {
                for p in n.parents.iter() {
                    if !seen.contains(p) {
                        seen.push(*p);
                        queue.push_back(*p);
                    }
                }
            }
        }
        seen.sort_unstable();
        seen.into()
    }

    /// Re-derives one user's closure and moves the user between the groups' user sets by
    /// the difference only.
    fn refresh_user(&mut self, user: Uuid) {
        let Some(node) = self.users.get(&user) else { return };
        let mut closure: Vec<Uuid> = Vec::new();
        for d in node.direct.iter() {
            if let Some(g) = self.groups.get(d) {
                closure.extend(g.up.iter().copied());
            }
        }
        closure.sort_unstable();
        closure.dedup();
        let old = node.groups.clone();
        for g in old.iter().filter(|g| closure.binary_search(g).is_err()) {
            if let Some(n) = self.groups.get_mut(g) {
                n.users.remove(&user);
            }
        }
        for g in closure.iter().filter(|g| old.binary_search(g).is_err()) {
            if let Some(n) = self.groups.get_mut(g) {
                n.users.insert(user);
            }
        }
        let mut unused = false;
        if let Some(n) = self.users.get_mut(&user) {
            n.groups = closure.into();
            unused = n.is_unused();
        }
        if unused {
            self.users.remove(&user);
        }
    }

    fn remove_user(&mut self, user: Uuid) {
        let direct: Vec<Uuid> = self.users.get(&user).map(|n| n.direct.to_vec()).unwrap_or_default();
        if let Some(n) = self.users.get_mut(&user) {
            n.direct = Arc::from([]);
        }
        if !direct.is_empty() {
            self.refresh_user(user);
        }
        self.remove_rows_naming(Subject::User(user));
    }

    // ---- roles -----------------------------------------------------------------------

    fn add_role(&mut self, role: Uuid, org: Option<Uuid>) -> Result<(), AuthzError> {
        let root = org.map(|o| ObjectRef::new(T::Organization, o));
        if let (Some(o), Some(root)) = (org, root) {
            if !self.contains(root) {
                return Err(AuthzError::UnknownOrg(o));
            }
        }
        if self.roles.contains_key(&role) {
            return Err(AuthzError::DuplicateRole(role));
        }
        let obj = ObjectRef::new(T::Role, role);
        if self.contains(obj) {
            return Err(AuthzError::DuplicateObject(obj));
        }
        self.roles.insert(
            role,
            RoleNode {
                org,
                perms: Arc::from([]),
                members: Arc::from([]),
                parents: Arc::from([]),
                masks: [0; 12],
                acls: OrdSet::new(),
            },
        );
        self.add_node(obj, root, org, None);
        Ok(())
    }

    fn remove_role(&mut self, role: Uuid) -> Result<(), AuthzError> {
        let node = self.roles.get(&role).cloned().ok_or(AuthzError::UnknownRole(role))?;
        for p in node.parents.iter() {
            self.remove_role_inherit(*p, role)?;
        }
        for m in node.members.iter() {
            self.remove_role_inherit(role, *m)?;
        }
        for id in node.acls.iter() {
            if let Some(obj) = self.acl_loc.get(id).copied() {
                self.remove_entries(obj, |e| e.id == *id);
            }
        }
        self.drop_node(ObjectRef::new(T::Role, role));
        self.roles.remove(&role);
        Ok(())
    }

    fn set_role_permission(
        &mut self,
        role: Uuid,
        p: Permission,
        r: Option<ObjectType>,
        present: bool,
    ) -> Result<(), AuthzError> {
        let node = self.roles.get_mut(&role).ok_or(AuthzError::UnknownRole(role))?;
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
        self.refresh_roles_above(role);
        Ok(())
    }

    fn add_role_inherit(&mut self, role: Uuid, member_role: Uuid) -> Result<(), AuthzError> {
        let r = self.roles.get(&role).ok_or(AuthzError::UnknownRole(role))?;
        let m = self.roles.get(&member_role).ok_or(AuthzError::UnknownRole(member_role))?;
        if m.org.is_some() && m.org != r.org {
            return Err(AuthzError::CrossOrg { id: member_role, object: ObjectRef::new(T::Role, role) });
        }
        if r.members.contains(&member_role) {
            return Ok(());
        }
        if self.role_down(member_role).contains(&role) {
            return Err(AuthzError::RoleCycle { role, member_role });
        }
        self.set_role_edge(role, member_role, true);
        Ok(())
    }

    fn remove_role_inherit(&mut self, role: Uuid, member_role: Uuid) -> Result<(), AuthzError> {
        let r = self.roles.get(&role).ok_or(AuthzError::UnknownRole(role))?;
        if !self.roles.contains_key(&member_role) {
            return Err(AuthzError::UnknownRole(member_role));
        }
        if r.members.contains(&member_role) {
            self.set_role_edge(role, member_role, false);
        }
        Ok(())
    }

    fn set_role_edge(&mut self, role: Uuid, member_role: Uuid, present: bool) {
        if let Some(r) = self.roles.get_mut(&role) {
            r.members = if present { with(&r.members, member_role) } else { without(&r.members, member_role) };
        }
        if let Some(m) = self.roles.get_mut(&member_role) {
            m.parents = if present { with(&m.parents, role) } else { without(&m.parents, role) };
        }
        self.refresh_roles_above(role);
    }

    /// `role` and every role it inherits, transitively.
    fn role_down(&self, role: Uuid) -> Vec<Uuid> {
        self.role_walk(role, |n| n.members.clone())
    }

    fn role_walk(&self, role: Uuid, next: impl Fn(&RoleNode) -> Arc<[Uuid]>) -> Vec<Uuid> {
        let mut seen = vec![role];
        let mut queue = VecDeque::from([role]);
        while let Some(r) = queue.pop_front() {
            if let Some(n) = self.roles.get(&r) {
                for x in next(n).iter() {
                    if !seen.contains(x) {
                        seen.push(*x);
                        queue.push_back(*x);
                    }
                }
            }
        }
        seen
    }

    /// Re-derives the masks of `role` and of every role inheriting it: only those change.
    fn refresh_roles_above(&mut self, role: Uuid) {
        for r in self.role_walk(role, |n| n.parents.clone()) {
            let mut masks: Masks = [0; 12];
            for d in self.role_down(r) {
                if let Some(n) = self.roles.get(&d) {
                    for (p, t) in n.perms.iter() {
                        let m = pair_masks(*p, *t);
                        for i in 0..12 {
                            masks[i] |= m[i];
                        }
                    }
                }
            }
            if let Some(n) = self.roles.get_mut(&r) {
                n.masks = masks;
            }
        }
    }
}
