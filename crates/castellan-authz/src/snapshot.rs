//! The immutable snapshot index and its point queries (check, explain, tree navigation).
//!
//! Everything is interned: users, groups, roles, containers and ACL rows get dense `u32`
//! indexes into [`Slab`]s, so an ACL entry is three `u32`s and a parent is one. Leaf objects
//! (the millions of experiments, datasets, prompts, playgrounds and project logs) live
//! directly in the slots of a [`PTable`] with up to three entries inline, so a check on a leaf
//! costs one cache miss for the object, overlapped with the lookup of the user's closure,
//! and then walks the few hot containers above it by index.

use crate::bucket::{
    decode_perm, node_filter_first, node_filter_has, node_filter_rest, perm_code, Bucket, Entry, Principal, Probe,
    EXPIRING, GROUP, ROLE, ROLE_INDEX, SCAN_MAX,
};
use crate::idset::IdSet;
use crate::nodes::{
    type_code, AclSlot, Container, GroupNode, IdSlot, Leaf, ObjSlot, RoleNode, Row, UserNode, UserSlot, LEAF_INLINE,
    NONE, SPILLED,
};
use crate::pmap::PMap;
use crate::ptable::{hash_id, PTable, Slot};
use crate::pvec::Slab;
use crate::types::{AclRow, Decision, Grant, GrantPath, NearMiss, NearMissReason, Stats, Subject};
use castellan_core::model::{ObjectRef, ObjectType, Permission};
use std::sync::Arc;
use uuid::Uuid;

/// Containers with rows gathered for a check's subject-major loop: a chain without project
/// groups has at most four objects, so at most three containers; the containers of a
/// project's groups beyond this are tested one at a time.
const CHAIN: usize = 4;

/// An immutable, shareable index of the whole access configuration.
///
/// Every collection is persistent ([`PTable`], [`Slab`], [`PMap`], [`IdSet`]: `Arc`-shared
/// pieces), so [`Snapshot::apply`] copies only the pieces a batch touches and `Clone` is a
/// few thousand pointer copies.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Leaf objects (project children and project logs), keyed by (type, id).
    pub(crate) leaves: PTable<Leaf>,
    /// The entries of leaves with more than [`LEAF_INLINE`] rows.
    pub(crate) spills: Slab<Option<Arc<Bucket>>>,
    pub(crate) containers: Slab<Container>,
    pub(crate) container_ids: PTable<ObjSlot>,
    pub(crate) user_ids: PTable<UserSlot>,
    pub(crate) users: Slab<UserNode>,
    pub(crate) group_ids: PTable<IdSlot>,
    pub(crate) groups: Slab<GroupNode>,
    pub(crate) role_ids: PTable<IdSlot>,
    pub(crate) roles: Slab<RoleNode>,
    pub(crate) rows: Slab<Row>,
    pub(crate) acl_ids: PTable<AclSlot>,
    /// `expires_at` of the rows whose grant code has [`EXPIRING`] (a few percent of rows).
    pub(crate) expiries: PMap<u32, i64>,
    /// Every object of a type inside an organization (nouns, groups, roles, projects, …).
    pub(crate) org_index: PMap<(Uuid, ObjectType), IdSet>,
    /// The experiments, datasets, prompts and prompt sessions of a project, by type.
    pub(crate) project_index: PMap<(Uuid, ObjectType), IdSet>,
    /// The projects of each project group.
    pub(crate) group_projects: PMap<Uuid, IdSet>,
    /// For each grouped project's container, the `(project_group_projects, G)`
    /// containers of its groups, ordered by group id.
    pub(crate) project_groups: PMap<u32, Arc<[u32]>>,
    pub(crate) revision: u64,
}

/// Where an object lives.
#[derive(Clone, Copy)]
pub(crate) enum Loc<'a> {
    Leaf(&'a Leaf),
    Container(u32),
}

/// A permission asked about an object type at a time, pre-encoded for the entry tests.
#[derive(Clone, Copy)]
pub(crate) struct Query {
    t: usize,
    bit: u8,
    /// The two direct-permission codes that yield it: unrestricted, restricted to `t`.
    any: u32,
    typed: u32,
    pub(crate) now: i64,
}

impl Query {
    pub(crate) fn new(p: Permission, t: ObjectType, now: i64) -> Query {
        Query { t: t.index(), bit: 1 << p.index(), any: perm_code(p, None), typed: perm_code(p, Some(t)), now }
    }
}

impl Snapshot {
    /// An empty snapshot at revision 0.
    pub fn empty() -> Snapshot {
        Snapshot::default()
    }

    /// The revision stamped by [`Snapshot::with_revision`] (or counted by `apply`).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The same snapshot stamped with the database revision it reflects.
    pub fn with_revision(mut self, rev: u64) -> Snapshot {
        self.revision = rev;
        self
    }

    // ---- interning ---------------------------------------------------------------------

    #[inline]
    pub(crate) fn locate(&self, o: ObjectRef) -> Option<Loc<'_>> {
        let ty = type_code(o.object_type);
        let h = hash_id(o.object_id, ty);
        if o.object_type.is_project_child() {
            self.leaves.get(h, |l| l.ty == ty && l.id == o.object_id).map(Loc::Leaf)
        } else {
            self.container_ids.get(h, |s| s.ty == ty && s.id == o.object_id).map(|s| Loc::Container(s.idx))
        }
    }

    pub(crate) fn container_idx(&self, o: ObjectRef) -> Option<u32> {
        match self.locate(o) {
            Some(Loc::Container(c)) => Some(c),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn user_slot(&self, user: Uuid) -> Option<&UserSlot> {
        self.user_ids.get(hash_id(user, 0), |s| s.id == user)
    }

    pub(crate) fn user_idx(&self, user: Uuid) -> Option<u32> {
        self.user_slot(user).map(|s| s.idx)
    }

    pub(crate) fn group_idx(&self, group: Uuid) -> Option<u32> {
        self.group_ids.get(hash_id(group, 0), |s| s.id == group).map(|s| s.idx)
    }

    pub(crate) fn role_idx(&self, role: Uuid) -> Option<u32> {
        self.role_ids.get(hash_id(role, 0), |s| s.id == role).map(|s| s.idx)
    }

    pub(crate) fn acl_row(&self, id: Uuid) -> Option<u32> {
        let h = hash_id(id, 0);
        let rows = &self.rows;
        self.acl_ids.get(h, |s| s.hash() == h && rows.get(s.row).id == id).map(|s| s.row)
    }

    #[inline]
    pub(crate) fn principal(&self, user: Uuid) -> Option<Principal<'_>> {
        let s = self.user_slot(user)?;
        let groups = s.groups();
        // Load the closure's last line now, while the object's probe is still in flight,
        // rather than when the first entry is tested.
        std::hint::black_box(groups.last().copied());
        Some(Principal { user: s.idx, groups })
    }

    /// The subject a code stands for.
    pub(crate) fn subject(&self, code: u32) -> Subject {
        if code & GROUP == 0 {
            Subject::User(self.users.get(code).id)
        } else {
            Subject::Group(self.groups.get(code & !GROUP).id)
        }
    }

    /// The entries of a leaf and their filter (empty unless spilled and large).
    #[inline]
    pub(crate) fn leaf_entries<'a>(&'a self, l: &'a Leaf) -> (&'a [Entry], Option<&'a Bucket>) {
        if l.n == SPILLED {
            match self.spills.get(l.e[0].row) {
                Some(b) => (b.entries(), Some(b)),
                None => (&[], None),
            }
        } else {
            (&l.e[..usize::from(l.n).min(LEAF_INLINE)], None)
        }
    }

    /// Calls `f` on every entry of the leaf naming `who` (see [`Bucket::each_match`]).
    #[inline]
    fn leaf_match<'a>(&'a self, l: &'a Leaf, who: &Principal<'_>, mut f: impl FnMut(&'a Entry) -> bool) -> bool {
        match self.leaf_entries(l) {
            (entries, Some(b)) if entries.len() > SCAN_MAX => b.each_of_principal(who, f),
            (entries, _) => entries.iter().any(|e| who.has(e.subject) && f(e)),
        }
    }

    // ---- navigation -------------------------------------------------------------------

    /// Whether the object exists.
    pub fn contains(&self, object: ObjectRef) -> bool {
        self.locate(object).is_some()
    }

    fn parent_idx(&self, loc: Loc<'_>) -> u32 {
        match loc {
            Loc::Leaf(l) => l.parent,
            Loc::Container(c) => self.containers.get(c).parent,
        }
    }

    /// The object's parent (`None` for an organization, a system role or an unknown object).
    pub fn parent(&self, object: ObjectRef) -> Option<ObjectRef> {
        let p = self.parent_idx(self.locate(object)?);
        (p != NONE).then(|| self.containers.get(p).object())
    }

    /// The object and everything above it, the object first and the organization last;
    /// empty for an unknown object.
    /// A project is followed by `(project_group_projects, G)` of each group holding it,
    /// by group id.
    pub fn ancestors(&self, object: ObjectRef) -> Vec<ObjectRef> {
        let mut out = Vec::with_capacity(4);
        let Some(loc) = self.locate(object) else { return out };
        out.push(object);
        if let Loc::Container(c) = loc {
            out.extend(self.groups_above(c).iter().map(|g| self.containers.get(*g).object()));
        }
        let mut cur = self.parent_idx(loc);
        while cur != NONE {
            let c = self.containers.get(cur);
            out.push(c.object());
            out.extend(self.groups_above(cur).iter().map(|g| self.containers.get(*g).object()));
            cur = c.parent;
        }
        out
    }

    /// The `(project_group_projects, G)` containers above a project container, beside
    /// its parent (empty for anything else).
    #[inline]
    pub(crate) fn groups_above(&self, c: u32) -> &[u32] {
        if !self.containers.get(c).grouped {
            return &[];
        }
        self.project_groups.get(&c).map_or(&[], |g| g)
    }

    /// The organization the object belongs to (`None` for system roles and unknown objects).
    pub fn org_of(&self, object: ObjectRef) -> Option<Uuid> {
        self.ancestors(object).last().filter(|o| o.object_type == ObjectType::Organization).map(|o| o.object_id)
    }

    /// The groups containing the user, transitively, sorted by id.
    pub fn groups_of(&self, user: Uuid) -> Vec<Uuid> {
        let Some(p) = self.principal(user) else { return Vec::new() };
        let mut ids: Vec<Uuid> = p.groups.iter().map(|g| self.groups.get(*g).id).collect();
        ids.sort_unstable();
        ids
    }

    /// The groups the user is a direct member of (not through nesting), sorted by id.
    pub fn direct_groups_of(&self, user: Uuid) -> Vec<Uuid> {
        let Some(u) = self.user_idx(user) else { return Vec::new() };
        let mut ids: Vec<Uuid> = self.users.get(u).direct.iter().map(|g| self.groups.get(*g).id).collect();
        ids.sort_unstable();
        ids
    }

    /// The users of the group and of every group it contains, transitively, sorted by id.
    pub fn users_in_group(&self, group: Uuid) -> Vec<Uuid> {
        self.group_idx(group)
            .map(|g| self.groups.get(g).users.iter().map(Uuid::from_u128).collect())
            .unwrap_or_default()
    }

    /// The ACL rows placed on exactly `object` (not those above it), expired ones
    /// included, in the object's bucket order (users before groups, then by index).
    pub fn acls_on(&self, object: ObjectRef) -> Vec<AclRow> {
        let entries: &[Entry] = match self.locate(object) {
            None => return Vec::new(),
            Some(Loc::Leaf(l)) => self.leaf_entries(l).0,
            Some(Loc::Container(c)) => self.containers.get(c).bucket.as_deref().map(Bucket::entries).unwrap_or(&[]),
        };
        entries
            .iter()
            .map(|e| {
                let grant = if e.grant & ROLE != 0 {
                    Grant::Role(self.roles.get(e.grant & ROLE_INDEX).id)
                } else {
                    let (permission, restrict_object_type) = decode_perm(e.grant & !EXPIRING);
                    Grant::Permission { permission, restrict_object_type }
                };
                let expires_at = if e.grant & EXPIRING != 0 { self.expiries.get(&e.row).copied() } else { None };
                AclRow { id: self.rows.get(e.row).id, object, subject: self.subject(e.subject), grant, expires_at }
            })
            .collect()
    }

    /// Counts of the snapshot's contents.
    pub fn stats(&self) -> Stats {
        Stats {
            objects: self.leaves.len() + self.container_ids.len(),
            acls: self.rows.live(),
            users: self.users.live(),
            groups: self.groups.live(),
            roles: self.roles.live(),
        }
    }

    // ---- check ------------------------------------------------------------------------

    /// Whether a grant code yields the queried permission on the queried type.
    #[inline]
    pub(crate) fn yields(&self, code: u32, q: &Query) -> bool {
        if code & ROLE != 0 {
            self.roles.get(code & ROLE_INDEX).masks[q.t] & q.bit != 0
        } else {
            let c = code & !EXPIRING;
            c == q.any || c == q.typed
        }
    }

    /// Whether the row of an expiring entry is still live at `now` (`expires_at > now`).
    #[inline]
    pub(crate) fn live(&self, code: u32, row: u32, now: i64) -> bool {
        code & EXPIRING == 0 || self.expiries.get(&row).is_none_or(|at| *at > now)
    }

    /// Whether an entry grants the query.
    #[inline]
    pub(crate) fn grants(&self, e: &Entry, q: &Query) -> bool {
        self.yields(e.grant, q) && self.live(e.grant, e.row, q.now)
    }

    /// Calls `f` on every entry of a container naming `who`, stopping when it returns true.
    /// Each subject of the principal is first tested against the node's inline filter, so a
    /// container without a row for the principal is ruled out without touching its bucket.
    #[inline]
    fn container_match<'a>(
        &'a self,
        c: &'a Container,
        who: &Principal<'_>,
        mut f: impl FnMut(&'a Entry) -> bool,
    ) -> bool {
        let Some(b) = &c.bucket else { return false };
        if c.saturated {
            return b.each_of_principal(who, f);
        }
        // A plain loop over the subjects: iterator adapters here cost a call per subject.
        for i in 0..=who.groups.len() {
            let p = Probe::new(who.subject(i));
            if node_filter_has(&c.filter, &p) && b.each_of_subject(&p, &mut f) {
                return true;
            }
        }
        false
    }

    /// The check from `loc` up: the leaf's entries, then each container's bucket.
    #[inline]
    fn check_from(&self, who: &Principal<'_>, q: &Query, loc: Loc<'_>) -> bool {
        let mut cur = match loc {
            Loc::Leaf(l) => {
                if self.leaf_match(l, who, |e| self.grants(e, q)) {
                    return true;
                }
                l.parent
            }
            Loc::Container(c) => c,
        };
        // The containers above with rows (for a leaf: project, its groups' "all projects",
        // org_project, organization). A denial must look at all of them, so the loop below is by subject:
        // each subject is hashed once and tested against every container's filter.
        let mut chain: [&Container; CHAIN] = [self.containers.get(0); CHAIN];
        let mut n = 0;
        while cur != NONE {
            let top = self.containers.get(cur);
            // A project in project groups has their containers above it, beside its parent.
            let extra: &[u32] = if top.grouped { self.groups_above(cur) } else { &[] };
            for c in std::iter::once(top).chain(extra.iter().map(|g| self.containers.get(*g))) {
                if c.bucket.is_some() {
                    if n == CHAIN {
                        // Deeper than a chain without project groups: one container at a time.
                        if self.container_match(c, who, |e| self.grants(e, q)) {
                            return true;
                        }
                    } else {
                        chain[n] = c;
                        n += 1;
                    }
                }
            }
            cur = top.parent;
        }
        let chain = &chain[..n];
        for i in 0..=who.groups.len() {
            let p = Probe::new(who.subject(i));
            let first = p.first_bit();
            for c in chain {
                let may = c.saturated || (node_filter_first(&c.filter, first) && node_filter_rest(&c.filter, &p));
                if may && c.bucket.as_ref().is_some_and(|b| b.each_of_subject(&p, |e| self.grants(e, q))) {
                    return true;
                }
            }
        }
        false
    }

    /// May `user` do `permission` on `object` at time `now`? An unknown object is `false`.
    ///
    /// Cost: one probe for the object (for a leaf, its slot holds its entries), one for the
    /// user's closure (independent, so the two cache misses overlap), then the containers
    /// above by index (three, plus one per project group the project is in), whose inline
    /// filters rule out most subjects without touching their buckets: independent of the
    /// number of rows.
    pub fn check(&self, user: Uuid, permission: Permission, object: ObjectRef, now: i64) -> bool {
        let q = Query::new(permission, object.object_type, now);
        // Both lookups start with a cache miss. Reading both home slots before either
        // lookup branches on what it read puts the two misses in flight together (a
        // mispredicted branch in the first would otherwise replay the second after it).
        if object.object_type.is_project_child() {
            let ty = type_code(object.object_type);
            std::hint::black_box(self.leaves.home(hash_id(object.object_id, ty)).ty);
        }
        std::hint::black_box(self.user_ids.home(hash_id(user, 0)).idx);
        let loc = self.locate(object);
        let who = self.principal(user);
        match (loc, who) {
            (Some(loc), Some(who)) => self.check_from(&who, &q, loc),
            _ => false,
        }
    }

    /// [`Snapshot::check`] with the reasons: every row that grants it and the near misses.
    pub fn explain(&self, user: Uuid, permission: Permission, object: ObjectRef, now: i64) -> Decision {
        self.explain_chain(user, permission, object.object_type, object, now)
    }

    /// Where the chain of a prospective child of `child_type` under `parent` starts: the
    /// parent itself, except that a project's chain goes through `org_project` whichever of
    /// `organization` or `org_project` is named. `None` when the child cannot live there.
    pub(crate) fn create_start(&self, child_type: ObjectType, parent: ObjectRef) -> Option<ObjectRef> {
        use ObjectType as T;
        let start = match (child_type, parent.object_type) {
            (T::Project, T::Organization | T::OrgProject) => ObjectRef::new(T::OrgProject, parent.object_id),
            // A project created straight into a project group: `create` on all projects
            // of the group (or above it) decides.
            (T::Project, T::ProjectGroupProjects) => parent,
            (T::ProjectLog | T::Experiment | T::Dataset | T::Prompt | T::PromptSession, T::Project) => parent,
            (T::AiSecret, T::Organization | T::OrgAiSecret) => ObjectRef::new(T::OrgAiSecret, parent.object_id),
            (
                T::Group
                | T::Role
                | T::ProjectGroup
                | T::OrgMember
                | T::OrgProject
                | T::OrgAuditLogs
                | T::OrgAiSecret
                | T::OrgAccount,
                T::Organization,
            ) => parent,
            _ => return None,
        };
        self.contains(start).then_some(start)
    }

    /// May `user` create an object of `child_type` under `parent`? This is `create` on a
    /// prospective child: its ancestors are the parent's chain and restrictions are matched
    /// against `child_type`.
    pub fn can_create(&self, user: Uuid, child_type: ObjectType, parent: ObjectRef, now: i64) -> bool {
        let Some(start) = self.create_start(child_type, parent) else { return false };
        let q = Query::new(Permission::Create, child_type, now);
        match (self.locate(start), self.principal(user)) {
            (Some(loc), Some(who)) => self.check_from(&who, &q, loc),
            _ => false,
        }
    }

    /// [`Snapshot::can_create`] with the reasons.
    pub fn explain_create(&self, user: Uuid, child_type: ObjectType, parent: ObjectRef, now: i64) -> Decision {
        match self.create_start(child_type, parent) {
            Some(start) => self.explain_chain(user, Permission::Create, child_type, start, now),
            None => Decision::default(),
        }
    }

    // ---- explain ----------------------------------------------------------------------

    fn explain_chain(&self, user: Uuid, p: Permission, t: ObjectType, start: ObjectRef, now: i64) -> Decision {
        let mut d = Decision::default();
        let (Some(loc), Some(who)) = (self.locate(start), self.principal(user)) else { return d };
        let direct: &[u32] = &self.users.get(who.user).direct;
        let q = Query::new(p, t, now);
        let mut matched: Vec<&Entry> = Vec::new();
        let explain_object = |d: &mut Decision, obj: ObjectRef, matched: &mut Vec<&Entry>| {
            // The bucket order of the public model: users before groups, then by id.
            matched.sort_by_cached_key(|e| {
                let kind = u8::from(e.subject & GROUP != 0);
                let id = match self.subject(e.subject) {
                    Subject::User(u) | Subject::Group(u) => u,
                };
                (kind, id, self.rows.get(e.row).id)
            });
            for e in matched.drain(..) {
                self.explain_entry(d, direct, obj, e, p, &q);
            }
        };
        let mut cur = match loc {
            Loc::Leaf(l) => {
                self.leaf_match(l, &who, |e| {
                    matched.push(e);
                    false
                });
                explain_object(&mut d, start, &mut matched);
                l.parent
            }
            Loc::Container(c) => c,
        };
        while cur != NONE {
            let top = self.containers.get(cur);
            for c in std::iter::once(top).chain(self.groups_above(cur).iter().map(|g| self.containers.get(*g))) {
                self.container_match(c, &who, |e| {
                    matched.push(e);
                    false
                });
                explain_object(&mut d, c.object(), &mut matched);
            }
            cur = top.parent;
        }
        d.allowed = !d.grants.is_empty();
        d
    }

    fn explain_entry(&self, d: &mut Decision, direct: &[u32], obj: ObjectRef, e: &Entry, p: Permission, q: &Query) {
        let t = ObjectType::ALL[q.t];
        let live = self.live(e.grant, e.row, q.now);
        let acl_id = self.rows.get(e.row).id;
        // (role chain, matched restriction) when the row yields p on type t, ignoring expiry.
        let fit: Option<(Vec<Uuid>, Option<ObjectType>)> = if e.grant & ROLE != 0 {
            let r = e.grant & ROLE_INDEX;
            match self.role_chain(r, p, t) {
                Some(found) => Some(found),
                None => {
                    if live {
                        if let Some(other) = self.role_restriction(r, p) {
                            d.near_misses.push(NearMiss { acl_id, reason: NearMissReason::RestrictedTo(other) });
                        }
                    }
                    None
                }
            }
        } else {
            match decode_perm(e.grant & !EXPIRING) {
                (permission, _) if permission != p => None,
                (_, Some(r)) if r != t => {
                    if live {
                        d.near_misses.push(NearMiss { acl_id, reason: NearMissReason::RestrictedTo(r) });
                    }
                    None
                }
                (_, r) => Some((Vec::new(), r)),
            }
        };
        let Some((role_chain, restrict_object_type)) = fit else { return };
        let expires_at = if e.grant & EXPIRING != 0 { self.expiries.get(&e.row).copied() } else { None };
        if !live {
            let at = expires_at.unwrap_or(i64::MIN);
            d.near_misses.push(NearMiss { acl_id, reason: NearMissReason::Expired { at } });
            return;
        }
        let subject = self.subject(e.subject);
        let group_chain =
            if e.subject & GROUP == 0 { Vec::new() } else { self.group_chain(direct, e.subject & !GROUP) };
        d.grants.push(GrantPath {
            acl_id,
            acl_object: obj,
            subject,
            group_chain,
            role_chain,
            permission: p,
            restrict_object_type,
            expires_at,
        });
    }

    /// A chain `g0 ⊂ … ⊂ target` from one of the user's direct groups. Each step moves to a
    /// parent whose `up` still contains the target, so it needs no search.
    pub(crate) fn group_chain(&self, direct: &[u32], target: u32) -> Vec<Uuid> {
        let contains_target = |g: &u32| self.groups.get(*g).up.binary_search(&target).is_ok();
        let Some(mut cur) = direct.iter().copied().find(|g| contains_target(g)) else { return Vec::new() };
        let mut chain = vec![self.groups.get(cur).id];
        while cur != target {
            let Some(next) = self.groups.get(cur).parents.iter().copied().find(|g| contains_target(g)) else { break };
            chain.push(self.groups.get(next).id);
            cur = next;
        }
        chain
    }

    /// A chain `role → … → role holding (p, None | Some(t))` and the restriction held, found
    /// breadth-first so it is a shortest one.
    pub(crate) fn role_chain(
        &self,
        role: u32,
        p: Permission,
        t: ObjectType,
    ) -> Option<(Vec<Uuid>, Option<ObjectType>)> {
        if self.roles.get(role).masks[t.index()] & (1 << p.index()) == 0 {
            return None;
        }
        let mut queue = std::collections::VecDeque::from([(role, vec![role])]);
        let mut seen = vec![role];
        while let Some((r, chain)) = queue.pop_front() {
            let n = self.roles.get(r);
            if let Some(&(_, restrict)) = n.perms.iter().find(|(q, rt)| *q == p && rt.is_none_or(|x| x == t)) {
                return Some((chain.iter().map(|r| self.roles.get(*r).id).collect(), restrict));
            }
            for m in n.members.iter() {
                if !seen.contains(m) {
                    seen.push(*m);
                    let mut c = chain.clone();
                    c.push(*m);
                    queue.push_back((*m, c));
                }
            }
        }
        None
    }

    /// Some type the role (or one it inherits) restricts `p` to.
    fn role_restriction(&self, role: u32, p: Permission) -> Option<ObjectType> {
        let masks = &self.roles.get(role).masks;
        let bit = 1u8 << p.index();
        ObjectType::ALL.into_iter().find(|t| masks[t.index()] & bit != 0)
    }
}
