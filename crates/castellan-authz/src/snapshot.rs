//! The immutable snapshot index and its point queries (check, explain, tree navigation).

use crate::pmap::PMap;
use crate::types::{Decision, Grant, GrantPath, NearMiss, NearMissReason, Stats, Subject};
use castellan_core::model::{ObjectRef, ObjectType, Permission};
use imbl::OrdSet;
use std::sync::Arc;
use uuid::Uuid;

/// Per target object type, the set of permissions (bit `Permission::index`) a role yields.
///
/// An unrestricted permission sets its bit for all twelve types, a restricted one for its
/// type only, so "does the role yield p on an object of type t" is one load and one mask.
pub(crate) type Masks = [u8; 12];

/// The masks of one (permission, restriction) pair.
pub(crate) fn pair_masks(permission: Permission, restrict: Option<ObjectType>) -> Masks {
    let bit = 1u8 << permission.index();
    let mut m = [0u8; 12];
    match restrict {
        None => m = [bit; 12],
        Some(t) => m[t.index()] = bit,
    }
    m
}

/// An `Option<i64>` packed in 9 bytes without alignment, so an ACL entry stays 59 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expiry {
    set: bool,
    at: [u8; 8],
}

impl Expiry {
    pub(crate) fn new(at: Option<i64>) -> Self {
        Expiry { set: at.is_some(), at: at.unwrap_or(0).to_le_bytes() }
    }
    pub(crate) fn get(self) -> Option<i64> {
        self.set.then(|| i64::from_le_bytes(self.at))
    }
    /// Expired means `expires_at <= now`.
    #[inline]
    pub(crate) fn live(self, now: i64) -> bool {
        !self.set || i64::from_le_bytes(self.at) > now
    }
}

/// One ACL row as stored in its object's bucket (the object is the bucket's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AclEntry {
    pub(crate) id: Uuid,
    pub(crate) subject: Subject,
    pub(crate) grant: Grant,
    pub(crate) expires: Expiry,
}

impl AclEntry {
    pub(crate) fn key(&self) -> (Subject, Uuid) {
        (self.subject, self.id)
    }
}

/// The ACL rows on one object, with a Bloom filter of their subjects.
///
/// Looking a principal up in a large bucket is one binary search per subject of the
/// principal (the user and each of its groups); the filter (about eight bits per row, one
/// probe) skips the searches for subjects that have no row here, which is nearly all of
/// them, so the cost no longer grows with the bucket.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bucket {
    // INVARIANT: sorted by (subject, id), never empty once stored in a node.
    pub(crate) entries: Vec<AclEntry>,
    // INVARIANT: empty for small buckets (scanned), else every entry's subject bit is set.
    filter: Vec<u64>,
}

/// Buckets up to this size are scanned rather than searched.
const SCAN_MAX: usize = 8;

impl Bucket {
    #[inline]
    fn bit(s: &Subject, mask: usize) -> usize {
        // Ids are random, so their low bits are a good enough hash; the kind is mixed in so a
        // user and a group with equal ids do not share a bit.
        let (kind, v) = subject_key(s);
        ((v as u64) ^ (v >> 64) as u64 ^ (kind as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) as usize & mask
    }

    fn bits_for(n: usize) -> usize {
        if n <= SCAN_MAX {
            0
        } else {
            (n * 8).next_power_of_two()
        }
    }

    /// Recomputes the filter from the entries.
    pub(crate) fn rebuild(&mut self) {
        let bits = Self::bits_for(self.entries.len());
        self.filter = vec![0; bits / 64];
        if bits == 0 {
            return;
        }
        for e in &self.entries {
            let b = Self::bit(&e.subject, bits - 1);
            self.filter[b >> 6] |= 1 << (b & 63);
        }
    }

    /// Inserts an entry at its place, keeping the filter exact enough (no false negatives).
    pub(crate) fn insert(&mut self, entry: AclEntry) {
        let at = self.entries.partition_point(|e| e.key() < entry.key());
        self.entries.insert(at, entry);
        let bits = Self::bits_for(self.entries.len());
        if bits != self.filter.len() * 64 {
            self.rebuild();
        } else if bits > 0 {
            let b = Self::bit(&entry.subject, bits - 1);
            self.filter[b >> 6] |= 1 << (b & 63);
        }
    }

    #[inline]
    fn may_name(&self, s: &Subject) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let b = Self::bit(s, self.filter.len() * 64 - 1);
        self.filter[b >> 6] >> (b & 63) & 1 != 0
    }
}

/// A node of the object tree.
#[derive(Debug, Clone)]
pub(crate) struct ObjNode {
    pub(crate) parent: Option<ObjectRef>,
    pub(crate) acls: Option<Arc<Bucket>>,
}

/// A user: its direct groups and the precomputed closure.
#[derive(Debug, Clone, Default)]
pub(crate) struct UserNode {
    // INVARIANT: sorted, deduplicated.
    pub(crate) direct: Arc<[Uuid]>,
    // INVARIANT: sorted; exactly the union of `up` of the direct groups.
    pub(crate) groups: Arc<[Uuid]>,
    /// One entry per ACL row naming the user (the row's object).
    pub(crate) acl_objects: Arc<Vec<ObjectRef>>,
}

impl UserNode {
    pub(crate) fn is_unused(&self) -> bool {
        self.direct.is_empty() && self.acl_objects.is_empty()
    }
}

/// A group with its precomputed closures in both directions.
#[derive(Debug, Clone)]
pub(crate) struct GroupNode {
    pub(crate) org: Uuid,
    /// Groups this group contains directly.
    pub(crate) members: Arc<[Uuid]>,
    /// Groups containing this group directly.
    pub(crate) parents: Arc<[Uuid]>,
    // INVARIANT: sorted; this group and every group containing it, transitively.
    pub(crate) up: Arc<[Uuid]>,
    // INVARIANT: every user of this group or of a group it contains, transitively.
    pub(crate) users: OrdSet<Uuid>,
    /// One entry per ACL row naming the group (the row's object).
    pub(crate) acl_objects: Arc<Vec<ObjectRef>>,
}

/// A role with its precomputed permission masks.
#[derive(Debug, Clone)]
pub(crate) struct RoleNode {
    pub(crate) org: Option<Uuid>,
    pub(crate) perms: Arc<[(Permission, Option<ObjectType>)]>,
    /// Roles this role inherits directly.
    pub(crate) members: Arc<[Uuid]>,
    /// Roles inheriting this role directly.
    pub(crate) parents: Arc<[Uuid]>,
    // INVARIANT: the union of pair_masks over the perms of this role and every role it
    // inherits, transitively.
    pub(crate) masks: Masks,
    /// Ids of the ACL rows granting this role.
    pub(crate) acls: OrdSet<Uuid>,
}

/// The object tree, split in two maps: the few containers every check walks through
/// (organizations and their nouns, projects, groups, roles: thousands) and the many leaves
/// (experiments, datasets, prompts, playgrounds, project logs: millions). The containers'
/// map stays in cache, so only the first step of a check's walk misses it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjMap {
    containers: PMap<ObjectRef, ObjNode>,
    leaves: PMap<ObjectRef, ObjNode>,
}

impl ObjMap {
    #[inline]
    fn side(&self, o: &ObjectRef) -> &PMap<ObjectRef, ObjNode> {
        if o.object_type.is_project_child() {
            &self.leaves
        } else {
            &self.containers
        }
    }

    fn side_mut(&mut self, o: &ObjectRef) -> &mut PMap<ObjectRef, ObjNode> {
        if o.object_type.is_project_child() {
            &mut self.leaves
        } else {
            &mut self.containers
        }
    }

    #[inline]
    pub(crate) fn get(&self, o: &ObjectRef) -> Option<&ObjNode> {
        self.side(o).get(o)
    }

    pub(crate) fn get_mut(&mut self, o: &ObjectRef) -> Option<&mut ObjNode> {
        self.side_mut(o).get_mut(o)
    }

    pub(crate) fn contains_key(&self, o: &ObjectRef) -> bool {
        self.side(o).contains_key(o)
    }

    pub(crate) fn insert(&mut self, o: ObjectRef, node: ObjNode) -> Option<ObjNode> {
        self.side_mut(&o).insert(o, node)
    }

    pub(crate) fn remove(&mut self, o: &ObjectRef) -> Option<ObjNode> {
        self.side_mut(o).remove(o)
    }

    pub(crate) fn len(&self) -> usize {
        self.containers.len() + self.leaves.len()
    }
}

/// An immutable, shareable index of the whole access configuration.
///
/// Every map is a [`PMap`] (sharded, `Arc`-shared), so [`Snapshot::apply`] copies only the
/// shards a batch touches and `Clone` is a few thousand pointer copies.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(crate) objects: ObjMap,
    pub(crate) users: PMap<Uuid, UserNode>,
    pub(crate) groups: PMap<Uuid, GroupNode>,
    pub(crate) roles: PMap<Uuid, RoleNode>,
    /// Where each ACL row lives.
    pub(crate) acl_loc: PMap<Uuid, ObjectRef>,
    /// Every object of a type inside an organization (nouns, groups, roles, projects, …).
    pub(crate) org_index: PMap<(Uuid, ObjectType), OrdSet<Uuid>>,
    /// The experiments, datasets, prompts and prompt sessions of a project, by type.
    pub(crate) project_index: PMap<(Uuid, ObjectType), OrdSet<Uuid>>,
    pub(crate) revision: u64,
}

/// The principal of a query: the user and its precomputed group closure.
#[derive(Clone, Copy)]
pub(crate) struct Principal<'a> {
    pub(crate) user: Uuid,
    pub(crate) groups: &'a [Uuid],
}

impl Principal<'_> {
    #[inline]
    pub(crate) fn has(&self, s: &Subject) -> bool {
        match s {
            Subject::User(u) => *u == self.user,
            Subject::Group(g) => {
                let g = g.as_u128();
                self.groups.binary_search_by(|x| x.as_u128().cmp(&g)).is_ok()
            }
        }
    }
}

/// The bucket order as integers: `Uuid`'s own `Ord` compares byte slices (a `memcmp`
/// call), while `as_u128` is big-endian, so this is the same order at register speed.
#[inline]
pub(crate) fn subject_key(s: &Subject) -> (u8, u128) {
    match s {
        Subject::User(u) => (0, u.as_u128()),
        Subject::Group(g) => (1, g.as_u128()),
    }
}

/// Calls `f` on every entry of `bucket` naming `who`; stops early when `f` returns true.
///
/// Small buckets are scanned; large ones (an organization's) are binary-searched once per
/// subject of the principal, so the cost stays logarithmic in the number of rows.
#[inline]
pub(crate) fn for_each_match<'b>(b: &'b Bucket, who: &Principal<'_>, mut f: impl FnMut(&'b AclEntry) -> bool) -> bool {
    let bucket = &b.entries[..];
    if bucket.len() <= SCAN_MAX {
        return bucket.iter().any(|e| who.has(&e.subject) && f(e));
    }
    let subjects = std::iter::once(Subject::User(who.user)).chain(who.groups.iter().map(|g| Subject::Group(*g)));
    for s in subjects {
        if !b.may_name(&s) {
            continue;
        }
        let key = subject_key(&s);
        let start = bucket.partition_point(|e| subject_key(&e.subject) < key);
        for e in bucket[start..].iter().take_while(|e| e.subject == s) {
            if f(e) {
                return true;
            }
        }
    }
    false
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

    /// Whether the object exists.
    pub fn contains(&self, object: ObjectRef) -> bool {
        self.objects.contains_key(&object)
    }

    /// The object's parent (`None` for an organization, a system role or an unknown object).
    pub fn parent(&self, object: ObjectRef) -> Option<ObjectRef> {
        self.objects.get(&object).and_then(|n| n.parent)
    }

    /// The object and everything above it, the object first and the organization last;
    /// empty for an unknown object.
    pub fn ancestors(&self, object: ObjectRef) -> Vec<ObjectRef> {
        let mut out = Vec::with_capacity(4);
        let mut cur = Some(object);
        while let Some(o) = cur {
            let Some(node) = self.objects.get(&o) else { break };
            out.push(o);
            cur = node.parent;
        }
        out
    }

    /// The organization the object belongs to (`None` for system roles and unknown objects).
    pub fn org_of(&self, object: ObjectRef) -> Option<Uuid> {
        self.ancestors(object).last().filter(|o| o.object_type == ObjectType::Organization).map(|o| o.object_id)
    }

    /// The groups containing the user, transitively, sorted by id.
    pub fn groups_of(&self, user: Uuid) -> Vec<Uuid> {
        self.users.get(&user).map(|n| n.groups.to_vec()).unwrap_or_default()
    }

    /// The users of the group and of every group it contains, transitively, sorted by id.
    pub fn users_in_group(&self, group: Uuid) -> Vec<Uuid> {
        self.groups.get(&group).map(|g| g.users.iter().copied().collect()).unwrap_or_default()
    }

    /// Counts of the snapshot's contents.
    pub fn stats(&self) -> Stats {
        Stats {
            objects: self.objects.len(),
            acls: self.acl_loc.len(),
            users: self.users.len(),
            groups: self.groups.len(),
            roles: self.roles.len(),
        }
    }

    pub(crate) fn principal(&self, user: Uuid) -> Principal<'_> {
        Principal { user, groups: self.users.get(&user).map_or(&[][..], |n| &n.groups[..]) }
    }

    /// Whether the grant yields `p` on an object of type `t`, after role expansion.
    #[inline]
    pub(crate) fn yields(&self, grant: &Grant, p: Permission, t: ObjectType) -> bool {
        match grant {
            Grant::Permission { permission, restrict_object_type } => {
                *permission == p && restrict_object_type.is_none_or(|r| r == t)
            }
            Grant::Role(r) => self.roles.get(r).is_some_and(|n| n.masks[t.index()] & (1 << p.index()) != 0),
        }
    }

    /// The check on the chain starting at `start`, matching restrictions against `t`.
    #[inline]
    fn check_chain(&self, user: Uuid, p: Permission, t: ObjectType, start: ObjectRef, now: i64) -> bool {
        let who = self.principal(user);
        let mut cur = start;
        loop {
            let Some(node) = self.objects.get(&cur) else { return false };
            if let Some(bucket) = &node.acls {
                if for_each_match(bucket, &who, |e| e.expires.live(now) && self.yields(&e.grant, p, t)) {
                    return true;
                }
            }
            match node.parent {
                Some(parent) => cur = parent,
                None => return false,
            }
        }
    }

    /// May `user` do `permission` on `object` at time `now`? An unknown object is `false`.
    ///
    /// Cost: one lookup for the user's closure, one per ancestor (at most four), and a scan
    /// or binary search of each ancestor's ACL bucket: independent of the number of rows.
    pub fn check(&self, user: Uuid, permission: Permission, object: ObjectRef, now: i64) -> bool {
        self.check_chain(user, permission, object.object_type, object, now)
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
            (T::ProjectLog | T::Experiment | T::Dataset | T::Prompt | T::PromptSession, T::Project) => parent,
            (T::Group | T::Role | T::OrgMember | T::OrgProject | T::OrgAuditLogs, T::Organization) => parent,
            _ => return None,
        };
        self.contains(start).then_some(start)
    }

    /// May `user` create an object of `child_type` under `parent`? This is `create` on a
    /// prospective child: its ancestors are the parent's chain and restrictions are matched
    /// against `child_type`.
    pub fn can_create(&self, user: Uuid, child_type: ObjectType, parent: ObjectRef, now: i64) -> bool {
        self.create_start(child_type, parent)
            .is_some_and(|start| self.check_chain(user, Permission::Create, child_type, start, now))
    }

    /// [`Snapshot::can_create`] with the reasons.
    pub fn explain_create(&self, user: Uuid, child_type: ObjectType, parent: ObjectRef, now: i64) -> Decision {
        match self.create_start(child_type, parent) {
            Some(start) => self.explain_chain(user, Permission::Create, child_type, start, now),
            None => Decision::default(),
        }
    }

    fn explain_chain(&self, user: Uuid, p: Permission, t: ObjectType, start: ObjectRef, now: i64) -> Decision {
        let who = self.principal(user);
        let direct: &[Uuid] = self.users.get(&user).map_or(&[][..], |n| &n.direct[..]);
        let mut d = Decision::default();
        let mut cur = Some(start);
        while let Some(obj) = cur {
            let Some(node) = self.objects.get(&obj) else { break };
            if let Some(bucket) = &node.acls {
                for_each_match(bucket, &who, |e| {
                    self.explain_entry(&mut d, direct, obj, e, p, t, now);
                    false
                });
            }
            cur = node.parent;
        }
        d.allowed = !d.grants.is_empty();
        d
    }

    #[allow(clippy::too_many_arguments)]
    fn explain_entry(
        &self,
        d: &mut Decision,
        direct: &[Uuid],
        obj: ObjectRef,
        e: &AclEntry,
        p: Permission,
        t: ObjectType,
        now: i64,
    ) {
        let live = e.expires.live(now);
        // (role chain, matched restriction) when the row yields p on type t, ignoring expiry.
        let fit: Option<(Vec<Uuid>, Option<ObjectType>)> = match e.grant {
            Grant::Permission { permission, restrict_object_type } if permission == p => match restrict_object_type {
                Some(r) if r != t => {
                    if live {
                        d.near_misses.push(NearMiss { acl_id: e.id, reason: NearMissReason::RestrictedTo(r) });
                    }
                    None
                }
                r => Some((Vec::new(), r)),
            },
            Grant::Permission { .. } => None,
            Grant::Role(r) => match self.role_chain(r, p, t) {
                Some(found) => Some(found),
                None => {
                    if live {
                        if let Some(other) = self.role_restriction(r, p) {
                            d.near_misses.push(NearMiss { acl_id: e.id, reason: NearMissReason::RestrictedTo(other) });
                        }
                    }
                    None
                }
            },
        };
        let Some((role_chain, restrict_object_type)) = fit else { return };
        if !live {
            let at = e.expires.get().unwrap_or(i64::MIN);
            d.near_misses.push(NearMiss { acl_id: e.id, reason: NearMissReason::Expired { at } });
            return;
        }
        let group_chain = match e.subject {
            Subject::User(_) => Vec::new(),
            Subject::Group(g) => self.group_chain(direct, g),
        };
        d.grants.push(GrantPath {
            acl_id: e.id,
            acl_object: obj,
            subject: e.subject,
            group_chain,
            role_chain,
            permission: p,
            restrict_object_type,
            expires_at: e.expires.get(),
        });
    }

    /// A chain `g0 ⊂ … ⊂ target` from one of the user's direct groups. Each step moves to a
    /// parent whose `up` still contains the target, so it needs no search.
    pub(crate) fn group_chain(&self, direct: &[Uuid], target: Uuid) -> Vec<Uuid> {
        let contains_target = |g: &Uuid| self.groups.get(g).is_some_and(|n| n.up.binary_search(&target).is_ok());
        let Some(mut cur) = direct.iter().copied().find(|g| contains_target(g)) else { return Vec::new() };
        let mut chain = vec![cur];
        while cur != target {
            let Some(next) = self.groups.get(&cur).and_then(|n| n.parents.iter().copied().find(|g| contains_target(g)))
            else {
                break;
            };
            chain.push(next);
            cur = next;
        }
        chain
    }

    /// A chain `role → … → role holding (p, None | Some(t))` and the restriction held, found
    /// breadth-first so it is a shortest one.
    pub(crate) fn role_chain(
        &self,
        role: Uuid,
        p: Permission,
        t: ObjectType,
    ) -> Option<(Vec<Uuid>, Option<ObjectType>)> {
        let node = self.roles.get(&role)?;
        if node.masks[t.index()] & (1 << p.index()) == 0 {
            return None;
        }
        let mut queue = std::collections::VecDeque::from([(role, vec![role])]);
        let mut seen = vec![role];
        while let Some((r, chain)) = queue.pop_front() {
            let Some(n) = self.roles.get(&r) else { continue };
            if let Some(&(_, restrict)) = n.perms.iter().find(|(q, rt)| *q == p && rt.is_none_or(|x| x == t)) {
                return Some((chain, restrict));
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
    fn role_restriction(&self, role: Uuid, p: Permission) -> Option<ObjectType> {
        let node = self.roles.get(&role)?;
        let bit = 1u8 << p.index();
        ObjectType::ALL.into_iter().find(|t| node.masks[t.index()] & bit != 0)
    }
}
