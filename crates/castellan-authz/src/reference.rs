//! The naive evaluator, straight from the definition in DESIGN §2: sets of rows and edges,
//! closures by fixpoint, every query a scan. It is the oracle of the property tests and is
//! public so the server's tests can use it too. Do not use it to serve requests.

use crate::error::AuthzError;
use crate::types::{AclRow, Grant, Mutation, NearMissReason, Subject};
use castellan_core::model::{ObjectRef, ObjectType, Permission};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

use ObjectType as T;

/// The whole access configuration as plain sets.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    /// Every object and its parent.
    pub objects: BTreeMap<ObjectRef, Option<ObjectRef>>,
    /// Every group and its organization.
    pub groups: BTreeMap<Uuid, Uuid>,
    /// Direct memberships (group, user).
    pub group_users: BTreeSet<(Uuid, Uuid)>,
    /// Direct nesting (group, member_group).
    pub group_groups: BTreeSet<(Uuid, Uuid)>,
    /// Every role and its organization (`None` for system roles).
    pub roles: BTreeMap<Uuid, Option<Uuid>>,
    /// Direct role contents (role, permission, restriction).
    pub role_perms: BTreeSet<(Uuid, Permission, Option<ObjectType>)>,
    /// Direct inheritance (role, member_role).
    pub role_inherits: BTreeSet<(Uuid, Uuid)>,
    /// Every ACL row by id.
    pub acls: BTreeMap<Uuid, AclRow>,
    /// Project group memberships (project group, project).
    pub group_projects: BTreeSet<(Uuid, Uuid)>,
}

fn addable(t: ObjectType) -> bool {
    matches!(t, T::Project | T::Experiment | T::Dataset | T::Prompt | T::PromptSession | T::AiSecret)
}

impl Reference {
    /// An empty configuration.
    pub fn new() -> Reference {
        Reference::default()
    }

    /// Applies a batch all-or-nothing.
    pub fn apply(&mut self, mutations: &[Mutation]) -> Result<(), AuthzError> {
        let mut next = self.clone();
        for m in mutations {
            next.apply_one(m)?;
        }
        *self = next;
        Ok(())
    }

    /// `x` and everything above it, `x` first; empty when `x` is unknown. A project is
    /// followed by `(project_group_projects, G)` of every group holding it, by id.
    pub fn ancestors(&self, x: ObjectRef) -> Vec<ObjectRef> {
        let mut out = Vec::new();
        let mut cur = Some(x);
        while let Some(o) = cur {
            match self.objects.get(&o) {
                Some(parent) => {
                    out.push(o);
                    if o.object_type == T::Project {
                        for (g, _) in self.group_projects.iter().filter(|(_, p)| *p == o.object_id) {
                            out.push(ObjectRef::new(T::ProjectGroupProjects, *g));
                        }
                    }
                    cur = *parent;
                }
                None => break,
            }
        }
        out
    }

    /// The organization at the top of `x`'s chain.
    pub fn org_of(&self, x: ObjectRef) -> Option<Uuid> {
        self.ancestors(x).last().filter(|o| o.object_type == T::Organization).map(|o| o.object_id)
    }

    /// The groups containing `user`, by fixpoint over the membership edges.
    pub fn groups_of(&self, user: Uuid) -> BTreeSet<Uuid> {
        let mut set: BTreeSet<Uuid> = self.group_users.iter().filter(|(_, u)| *u == user).map(|(g, _)| *g).collect();
        loop {
            let more: Vec<Uuid> = self
                .group_groups
                .iter()
                .filter(|(g, m)| set.contains(m) && !set.contains(g))
                .map(|(g, _)| *g)
                .collect();
            if more.is_empty() {
                return set;
            }
            set.extend(more);
        }
    }

    /// Every user known: named in a membership or in a row.
    pub fn users(&self) -> BTreeSet<Uuid> {
        let mut set: BTreeSet<Uuid> = self.group_users.iter().map(|(_, u)| *u).collect();
        set.extend(self.acls.values().filter_map(|r| match r.subject {
            Subject::User(u) => Some(u),
            Subject::Group(_) => None,
        }));
        set
    }

    /// The users of `group`, transitively.
    pub fn users_in_group(&self, group: Uuid) -> BTreeSet<Uuid> {
        self.users().into_iter().filter(|u| self.groups_of(*u).contains(&group)).collect()
    }

    /// The roles `role` inherits, itself included, by fixpoint.
    pub fn role_closure(&self, role: Uuid) -> BTreeSet<Uuid> {
        let mut set = BTreeSet::from([role]);
        loop {
            let more: Vec<Uuid> = self
                .role_inherits
                .iter()
                .filter(|(r, m)| set.contains(r) && !set.contains(m))
                .map(|(_, m)| *m)
                .collect();
            if more.is_empty() {
                return set;
            }
            set.extend(more);
        }
    }

    /// The (permission, restriction) pairs a grant yields after role expansion.
    pub fn expand(&self, grant: &Grant) -> Vec<(Permission, Option<ObjectType>)> {
        match grant {
            Grant::Permission { permission, restrict_object_type } => vec![(*permission, *restrict_object_type)],
            Grant::Role(r) => {
                let closure = self.role_closure(*r);
                self.role_perms.iter().filter(|(x, _, _)| closure.contains(x)).map(|(_, p, t)| (*p, *t)).collect()
            }
        }
    }

    fn names(&self, row: &AclRow, user: Uuid, groups: &BTreeSet<Uuid>) -> bool {
        match row.subject {
            Subject::User(u) => u == user,
            Subject::Group(g) => groups.contains(&g),
        }
    }

    /// The rows on `chain` that grant `p` to `user` on an object of type `t` at `now`.
    fn granting(&self, user: Uuid, p: Permission, t: ObjectType, chain: &[ObjectRef], now: i64) -> BTreeSet<Uuid> {
        let groups = self.groups_of(user);
        self.acls
            .values()
            .filter(|r| chain.contains(&r.object))
            .filter(|r| self.names(r, user, &groups))
            .filter(|r| r.expires_at.is_none_or(|e| e > now))
            .filter(|r| self.expand(&r.grant).iter().any(|(q, rt)| *q == p && rt.is_none_or(|x| x == t)))
            .map(|r| r.id)
            .collect()
    }

    /// The rows that grant `p` on `x` to `user` at `now` (empty for an unknown object).
    pub fn granting_acls(&self, user: Uuid, p: Permission, x: ObjectRef, now: i64) -> BTreeSet<Uuid> {
        self.granting(user, p, x.object_type, &self.ancestors(x), now)
    }

    /// The rows naming `user` on `x`'s chain that would grant `p` but for expiry or
    /// restriction, with the reason's kind (`RestrictedTo` carries any one restriction).
    pub fn near_misses(&self, user: Uuid, p: Permission, x: ObjectRef, now: i64) -> BTreeMap<Uuid, NearMissReason> {
        let t = x.object_type;
        let chain = self.ancestors(x);
        let groups = self.groups_of(user);
        let mut out = BTreeMap::new();
        for r in self.acls.values().filter(|r| chain.contains(&r.object) && self.names(r, user, &groups)) {
            let pairs = self.expand(&r.grant);
            let fits = pairs.iter().any(|(q, rt)| *q == p && rt.is_none_or(|y| y == t));
            let live = r.expires_at.is_none_or(|e| e > now);
            if fits && !live {
                out.insert(r.id, NearMissReason::Expired { at: r.expires_at.unwrap_or(i64::MIN) });
            } else if !fits && live {
                if let Some((_, Some(other))) = pairs.iter().find(|(q, rt)| *q == p && rt.is_some()) {
                    out.insert(r.id, NearMissReason::RestrictedTo(*other));
                }
            }
        }
        out
    }

    /// May `user` do `p` on `x` at `now`?
    pub fn check(&self, user: Uuid, p: Permission, x: ObjectRef, now: i64) -> bool {
        !self.granting_acls(user, p, x, now).is_empty()
    }

    /// The chain of a prospective child of `child_type` under `parent`, or `None`.
    pub fn create_chain(&self, child_type: ObjectType, parent: ObjectRef) -> Option<Vec<ObjectRef>> {
        let ok = match child_type {
            T::Project => matches!(parent.object_type, T::Organization | T::OrgProject | T::ProjectGroupProjects),
            T::ProjectLog | T::Experiment | T::Dataset | T::Prompt | T::PromptSession => {
                parent.object_type == T::Project
            }
            T::Group
            | T::Role
            | T::ProjectGroup
            | T::OrgMember
            | T::OrgProject
            | T::OrgAuditLogs
            | T::OrgAiSecret
            | T::OrgAccount => parent.object_type == T::Organization,
            T::AiSecret => matches!(parent.object_type, T::Organization | T::OrgAiSecret),
            T::Organization | T::ProjectGroupProjects => false,
        };
        if !ok || !self.objects.contains_key(&parent) {
            return None;
        }
        let start = match child_type {
            T::Project if parent.object_type != T::ProjectGroupProjects => {
                ObjectRef::new(T::OrgProject, parent.object_id)
            }
            T::AiSecret => ObjectRef::new(T::OrgAiSecret, parent.object_id),
            _ => parent,
        };
        let chain = self.ancestors(start);
        (!chain.is_empty()).then_some(chain)
    }

    /// May `user` create an object of `child_type` under `parent` at `now`?
    pub fn can_create(&self, user: Uuid, child_type: ObjectType, parent: ObjectRef, now: i64) -> bool {
        self.create_chain(child_type, parent)
            .is_some_and(|chain| !self.granting(user, Permission::Create, child_type, &chain, now).is_empty())
    }

    /// Every known user who may do `p` on `x` at `now`, sorted.
    pub fn who_can(&self, p: Permission, x: ObjectRef, now: i64) -> Vec<Uuid> {
        self.users().into_iter().filter(|u| self.check(*u, p, x, now)).collect()
    }

    /// The ids of the objects of type `t` (under `within`, itself included) on which `user`
    /// may do `p` at `now`, sorted.
    pub fn what_can(&self, user: Uuid, p: Permission, t: ObjectType, within: Option<ObjectRef>, now: i64) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .objects
            .keys()
            .filter(|o| o.object_type == t)
            .filter(|o| within.is_none_or(|w| self.ancestors(**o).contains(&w)))
            .filter(|o| self.check(user, p, **o, now))
            .map(|o| o.object_id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Drops objects (and everything under them) and every row on a dropped object.
    fn drop_objects(&mut self, pred: impl Fn(&Reference, ObjectRef) -> bool) {
        let doomed: BTreeSet<ObjectRef> = self.objects.keys().copied().filter(|o| pred(self, *o)).collect();
        self.objects.retain(|o, _| !doomed.contains(o));
        self.acls.retain(|_, r| !doomed.contains(&r.object));
    }

    fn drop_group(&mut self, g: Uuid) {
        self.groups.remove(&g);
        self.group_users.retain(|(x, _)| *x != g);
        self.group_groups.retain(|(x, m)| *x != g && *m != g);
        self.acls.retain(|_, r| r.subject != Subject::Group(g));
        let obj = ObjectRef::new(T::Group, g);
        self.drop_objects(|_, o| o == obj);
    }

    fn drop_role(&mut self, role: Uuid) {
        self.roles.remove(&role);
        self.role_perms.retain(|(x, _, _)| *x != role);
        self.role_inherits.retain(|(x, m)| *x != role && *m != role);
        self.acls.retain(|_, r| r.grant != Grant::Role(role));
        let obj = ObjectRef::new(T::Role, role);
        self.drop_objects(|_, o| o == obj);
    }

    /// Applies one mutation with the same validation as the index, checked in the same
    /// order so that the errors compare equal.
    pub fn apply_one(&mut self, m: &Mutation) -> Result<(), AuthzError> {
        match *m {
            Mutation::AddOrg { org } => {
                let root = ObjectRef::new(T::Organization, org);
                if self.objects.contains_key(&root) {
                    return Err(AuthzError::DuplicateObject(root));
                }
                self.objects.insert(root, None);
                for t in T::ORG_NOUNS {
                    self.objects.insert(ObjectRef::new(t, org), Some(root));
                }
            }
            Mutation::RemoveOrg { org } => {
                if !self.objects.contains_key(&ObjectRef::new(T::Organization, org)) {
                    return Err(AuthzError::UnknownOrg(org));
                }
                let groups: Vec<Uuid> = self.groups.iter().filter(|(_, o)| **o == org).map(|(g, _)| *g).collect();
                for g in groups {
                    self.drop_group(g);
                }
                let roles: Vec<Uuid> = self.roles.iter().filter(|(_, o)| **o == Some(org)).map(|(r, _)| *r).collect();
                for r in roles {
                    self.drop_role(r);
                }
                let doomed: BTreeSet<Uuid> = self
                    .objects
                    .keys()
                    .filter(|o| o.object_type == T::ProjectGroup && self.org_of(**o) == Some(org))
                    .map(|o| o.object_id)
                    .collect();
                self.group_projects.retain(|(g, _)| !doomed.contains(g));
                self.drop_objects(|s, o| s.org_of(o) == Some(org));
                self.group_projects.retain(|(_, p)| self.objects.contains_key(&ObjectRef::new(T::Project, *p)));
            }
            Mutation::AddObject { object, parent } => {
                if !addable(object.object_type) {
                    return Err(AuthzError::WrongObjectType(object.object_type));
                }
                if self.objects.contains_key(&object) {
                    return Err(AuthzError::DuplicateObject(object));
                }
                if !self.objects.contains_key(&parent) {
                    return Err(AuthzError::UnknownParent(parent));
                }
                let ok = match object.object_type {
                    T::Project => matches!(parent.object_type, T::Organization | T::OrgProject),
                    T::AiSecret => matches!(parent.object_type, T::Organization | T::OrgAiSecret),
                    _ => parent.object_type == T::Project,
                };
                if !ok {
                    return Err(AuthzError::WrongParentType { object, parent });
                }
                if object.object_type == T::AiSecret {
                    self.objects.insert(object, Some(ObjectRef::new(T::OrgAiSecret, parent.object_id)));
                } else if object.object_type == T::Project {
                    self.objects.insert(object, Some(ObjectRef::new(T::OrgProject, parent.object_id)));
                    self.objects.insert(ObjectRef::new(T::ProjectLog, object.object_id), Some(object));
                } else {
                    self.objects.insert(object, Some(parent));
                }
            }
            Mutation::RemoveObject { object } => {
                if !addable(object.object_type) {
                    return Err(AuthzError::WrongObjectType(object.object_type));
                }
                if !self.objects.contains_key(&object) {
                    return Err(AuthzError::UnknownObject(object));
                }
                self.drop_objects(|s, o| s.ancestors(o).contains(&object));
                if object.object_type == T::Project {
                    self.group_projects.retain(|(_, p)| *p != object.object_id);
                }
            }
            Mutation::AddGroup { group, org } => {
                let root = ObjectRef::new(T::Organization, org);
                if !self.objects.contains_key(&root) {
                    return Err(AuthzError::UnknownOrg(org));
                }
                if self.groups.contains_key(&group) {
                    return Err(AuthzError::DuplicateGroup(group));
                }
                let obj = ObjectRef::new(T::Group, group);
                if self.objects.contains_key(&obj) {
                    return Err(AuthzError::DuplicateObject(obj));
                }
                self.groups.insert(group, org);
                self.objects.insert(obj, Some(root));
            }
            Mutation::RemoveGroup { group } => {
                if !self.groups.contains_key(&group) {
                    return Err(AuthzError::UnknownGroup(group));
                }
                self.drop_group(group);
            }
            Mutation::AddGroupUser { group, user } | Mutation::RemoveGroupUser { group, user } => {
                if !self.groups.contains_key(&group) {
                    return Err(AuthzError::UnknownGroup(group));
                }
                if matches!(m, Mutation::AddGroupUser { .. }) {
                    self.group_users.insert((group, user));
                } else {
                    self.group_users.remove(&(group, user));
                }
            }
            Mutation::AddGroupGroup { group, member_group } => {
                let g_org = *self.groups.get(&group).ok_or(AuthzError::UnknownGroup(group))?;
                let m_org = *self.groups.get(&member_group).ok_or(AuthzError::UnknownGroup(member_group))?;
                if g_org != m_org {
                    return Err(AuthzError::CrossOrg { id: member_group, object: ObjectRef::new(T::Group, group) });
                }
                if self.group_groups.contains(&(group, member_group)) {
                    return Ok(());
                }
                // A cycle: `member_group` already contains `group` (or is it).
                let mut below = BTreeSet::from([member_group]);
                loop {
                    let more: Vec<Uuid> = self
                        .group_groups
                        .iter()
                        .filter(|(g, x)| below.contains(g) && !below.contains(x))
                        .map(|(_, x)| *x)
                        .collect();
                    if more.is_empty() {
                        break;
                    }
                    below.extend(more);
                }
                if below.contains(&group) {
                    return Err(AuthzError::GroupCycle { group, member_group });
                }
                self.group_groups.insert((group, member_group));
            }
            Mutation::RemoveGroupGroup { group, member_group } => {
                for g in [group, member_group] {
                    if !self.groups.contains_key(&g) {
                        return Err(AuthzError::UnknownGroup(g));
                    }
                }
                self.group_groups.remove(&(group, member_group));
            }
            Mutation::AddRole { role, org } => {
                if let Some(o) = org {
                    if !self.objects.contains_key(&ObjectRef::new(T::Organization, o)) {
                        return Err(AuthzError::UnknownOrg(o));
                    }
                }
                if self.roles.contains_key(&role) {
                    return Err(AuthzError::DuplicateRole(role));
                }
                let obj = ObjectRef::new(T::Role, role);
                if self.objects.contains_key(&obj) {
                    return Err(AuthzError::DuplicateObject(obj));
                }
                self.roles.insert(role, org);
                self.objects.insert(obj, org.map(|o| ObjectRef::new(T::Organization, o)));
            }
            Mutation::RemoveRole { role } => {
                if !self.roles.contains_key(&role) {
                    return Err(AuthzError::UnknownRole(role));
                }
                self.drop_role(role);
            }
            Mutation::AddRolePermission { role, permission, restrict_object_type } => {
                if !self.roles.contains_key(&role) {
                    return Err(AuthzError::UnknownRole(role));
                }
                self.role_perms.insert((role, permission, restrict_object_type));
            }
            Mutation::RemoveRolePermission { role, permission, restrict_object_type } => {
                if !self.roles.contains_key(&role) {
                    return Err(AuthzError::UnknownRole(role));
                }
                self.role_perms.remove(&(role, permission, restrict_object_type));
            }
            Mutation::AddRoleInherit { role, member_role } => {
                let r_org = *self.roles.get(&role).ok_or(AuthzError::UnknownRole(role))?;
                let m_org = *self.roles.get(&member_role).ok_or(AuthzError::UnknownRole(member_role))?;
                if m_org.is_some() && m_org != r_org {
                    return Err(AuthzError::CrossOrg { id: member_role, object: ObjectRef::new(T::Role, role) });
                }
                if self.role_inherits.contains(&(role, member_role)) {
                    return Ok(());
                }
                if self.role_closure(member_role).contains(&role) {
                    return Err(AuthzError::RoleCycle { role, member_role });
                }
                self.role_inherits.insert((role, member_role));
            }
            Mutation::RemoveRoleInherit { role, member_role } => {
                for r in [role, member_role] {
                    if !self.roles.contains_key(&r) {
                        return Err(AuthzError::UnknownRole(r));
                    }
                }
                self.role_inherits.remove(&(role, member_role));
            }
            Mutation::AddAcl(row) => {
                if self.acls.contains_key(&row.id) {
                    return Err(AuthzError::DuplicateAcl(row.id));
                }
                if !self.objects.contains_key(&row.object) {
                    return Err(AuthzError::UnknownObject(row.object));
                }
                let org = self.org_of(row.object);
                if let Subject::Group(g) = row.subject {
                    let g_org = *self.groups.get(&g).ok_or(AuthzError::UnknownGroup(g))?;
                    if Some(g_org) != org {
                        return Err(AuthzError::CrossOrg { id: g, object: row.object });
                    }
                }
                if let Grant::Role(r) = row.grant {
                    let r_org = *self.roles.get(&r).ok_or(AuthzError::UnknownRole(r))?;
                    if r_org.is_some() && r_org != org {
                        return Err(AuthzError::CrossOrg { id: r, object: row.object });
                    }
                }
                self.acls.insert(row.id, row);
            }
            Mutation::RemoveAcl { id } => {
                if self.acls.remove(&id).is_none() {
                    return Err(AuthzError::UnknownAcl(id));
                }
            }
            Mutation::RemoveUser { user } => {
                self.group_users.retain(|(_, u)| *u != user);
                self.acls.retain(|_, r| r.subject != Subject::User(user));
            }
            Mutation::AddProjectGroup { group, org } => {
                let root = ObjectRef::new(T::Organization, org);
                if !self.objects.contains_key(&root) {
                    return Err(AuthzError::UnknownOrg(org));
                }
                let pg = ObjectRef::new(T::ProjectGroup, group);
                if self.objects.contains_key(&pg) {
                    return Err(AuthzError::DuplicateObject(pg));
                }
                self.objects.insert(pg, Some(root));
                let all = ObjectRef::new(T::ProjectGroupProjects, group);
                self.objects.insert(all, Some(ObjectRef::new(T::OrgProject, org)));
            }
            Mutation::RemoveProjectGroup { group } => {
                let pg = ObjectRef::new(T::ProjectGroup, group);
                if !self.objects.contains_key(&pg) {
                    return Err(AuthzError::UnknownObject(pg));
                }
                self.group_projects.retain(|(g, _)| *g != group);
                let all = ObjectRef::new(T::ProjectGroupProjects, group);
                self.drop_objects(|_, o| o == pg || o == all);
            }
            Mutation::AddGroupProject { group, project } | Mutation::RemoveGroupProject { group, project } => {
                let pg = ObjectRef::new(T::ProjectGroup, group);
                if !self.objects.contains_key(&pg) {
                    return Err(AuthzError::UnknownObject(pg));
                }
                let p = ObjectRef::new(T::Project, project);
                if !self.objects.contains_key(&p) {
                    return Err(AuthzError::UnknownObject(p));
                }
                if matches!(m, Mutation::AddGroupProject { .. }) {
                    if self.org_of(p) != self.org_of(pg) {
                        let parent = ObjectRef::new(T::ProjectGroupProjects, group);
                        return Err(AuthzError::WrongParentType { object: p, parent });
                    }
                    self.group_projects.insert((group, project));
                } else {
                    self.group_projects.remove(&(group, project));
                }
            }
        }
        Ok(())
    }
}
