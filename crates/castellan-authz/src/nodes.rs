//! The nodes and slots the snapshot is made of: leaf slots with inline entries, container
//! nodes with inline filters, user slots with inline closures, and the cold per-user, per-group,
//! per-role and per-row data. Layouts are chosen by cache line: see each type.

use crate::bucket::{Bucket, Entry, NodeFilter};
use crate::idset::IdSet;
use crate::ptable::{hash_id, Slot};
use castellan_core::model::{ObjectRef, ObjectType, Permission};
use std::sync::Arc;
use uuid::Uuid;

/// Per target object type, the set of permissions (bit `Permission::index`) a role yields.
///
/// An unrestricted permission sets its bit for every type, a restricted one for its type
/// only, so "does the role yield p on an object of type t" is one load and one mask.
pub(crate) type Masks = [u8; ObjectType::COUNT];

/// The masks of one (permission, restriction) pair.
pub(crate) fn pair_masks(permission: Permission, restrict: Option<ObjectType>) -> Masks {
    let bit = 1u8 << permission.index();
    let mut m = [0u8; ObjectType::COUNT];
    match restrict {
        None => m = [bit; ObjectType::COUNT],
        Some(t) => m[t.index()] = bit,
    }
    m
}

/// "No index" (a container without parent, an empty slot).
pub(crate) const NONE: u32 = u32::MAX;
/// `Leaf::n` of a leaf whose entries moved to `Snapshot::spills`.
pub(crate) const SPILLED: u8 = u8::MAX;

/// The stored form of an object type: its index + 1, so that 0 marks an empty slot.
#[inline]
pub(crate) fn type_code(t: ObjectType) -> u8 {
    t.index() as u8 + 1
}

fn type_of(code: u8) -> ObjectType {
    // INVARIANT: codes are only ever made by `type_code`.
    ObjectType::ALL[usize::from(code.max(1)) - 1]
}

/// Entries stored inline in a leaf's slot: 98% of the leaves of BT-1M have at most three rows.
pub(crate) const LEAF_INLINE: usize = 3;

/// A leaf object, stored in the slot of `Snapshot::leaves`: one cache line, aligned, so a
/// check on a leaf reads its parent and its entries with a single miss.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
pub(crate) struct Leaf {
    pub(crate) id: Uuid,
    /// The container index of its project.
    pub(crate) parent: u32,
    /// `type_code` of its type; 0 marks an empty slot.
    pub(crate) ty: u8,
    /// How many of `e` are its entries, or [`SPILLED`]: then `e[0].row` is its index in
    /// `Snapshot::spills`.
    pub(crate) n: u8,
    // INVARIANT: n <= LEAF_INLINE or n == SPILLED, and a spilled bucket holds more than
    // LEAF_INLINE entries.
    pub(crate) e: [Entry; LEAF_INLINE],
}

impl Slot for Leaf {
    #[inline]
    fn is_empty(&self) -> bool {
        self.ty == 0
    }
    fn hash(&self) -> u64 {
        hash_id(self.id, self.ty)
    }
}

/// An (object type, id) → container index slot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ObjSlot {
    pub(crate) id: Uuid,
    /// `type_code`; 0 marks an empty slot.
    pub(crate) ty: u8,
    pub(crate) idx: u32,
}

impl Slot for ObjSlot {
    fn is_empty(&self) -> bool {
        self.ty == 0
    }
    fn hash(&self) -> u64 {
        hash_id(self.id, self.ty)
    }
}

/// An id → index slot (groups, roles).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdSlot {
    pub(crate) id: Uuid,
    /// [`NONE`] marks an empty slot.
    pub(crate) idx: u32,
}

impl Default for IdSlot {
    fn default() -> Self {
        IdSlot { id: Uuid::nil(), idx: NONE }
    }
}

impl Slot for IdSlot {
    fn is_empty(&self) -> bool {
        self.idx == NONE
    }
    fn hash(&self) -> u64 {
        hash_id(self.id, 0)
    }
}

/// Groups of a closure stored inline in its [`UserSlot`].
const INLINE_GROUPS: usize = 22;

/// A user's slot: its index and its precomputed closure, inline for up to 22 groups (99% of
/// the users of BT-1M), so that a check finds the principal with one cache miss, which
/// overlaps the object's. Two cache lines, aligned; the fields are in this order so that the
/// key and the first ten groups share the first line.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
pub(crate) struct UserSlot {
    pub(crate) id: Uuid,
    /// [`NONE`] marks an empty slot.
    pub(crate) idx: u32,
    len: u32,
    // INVARIANT: the closure (sorted group indexes, exactly the union of `up` of the user's
    // direct groups) is inline[..len] when len <= INLINE_GROUPS, else all of `heap`.
    inline: [u32; INLINE_GROUPS],
    heap: Option<Arc<[u32]>>,
}

impl Default for UserSlot {
    fn default() -> Self {
        UserSlot { id: Uuid::nil(), idx: NONE, len: 0, inline: [0; INLINE_GROUPS], heap: None }
    }
}

impl UserSlot {
    pub(crate) fn new(id: Uuid, idx: u32) -> UserSlot {
        UserSlot { id, idx, ..UserSlot::default() }
    }

    /// The user's groups, transitively: sorted group indexes.
    #[inline]
    pub(crate) fn groups(&self) -> &[u32] {
        // The length first: `heap` is on the second line, read only for long closures.
        let len = self.len as usize;
        match &self.heap {
            _ if len <= INLINE_GROUPS => &self.inline[..len],
            Some(h) => h,
            None => &[],
        }
    }

    pub(crate) fn set_groups(&mut self, groups: &[u32]) {
        self.len = groups.len() as u32;
        if groups.len() <= INLINE_GROUPS {
            self.inline[..groups.len()].copy_from_slice(groups);
            self.heap = None;
        } else {
            self.heap = Some(groups.into());
        }
    }
}

impl Slot for UserSlot {
    #[inline]
    fn is_empty(&self) -> bool {
        self.idx == NONE
    }
    fn hash(&self) -> u64 {
        hash_id(self.id, 0)
    }
}

/// An acl id → row index slot. The id itself is in the row; the slot keeps the full hash so
/// that it can be moved without reading the row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AclSlot {
    pub(crate) hash: [u32; 2],
    /// [`NONE`] marks an empty slot.
    pub(crate) row: u32,
}

impl Default for AclSlot {
    fn default() -> Self {
        AclSlot { hash: [0; 2], row: NONE }
    }
}

impl AclSlot {
    pub(crate) fn new(hash: u64, row: u32) -> AclSlot {
        AclSlot { hash: [hash as u32, (hash >> 32) as u32], row }
    }
}

impl Slot for AclSlot {
    fn is_empty(&self) -> bool {
        self.row == NONE
    }
    fn hash(&self) -> u64 {
        u64::from(self.hash[0]) | u64::from(self.hash[1]) << 32
    }
}

/// A container object: an organization or org noun, a group, a role or a project. Two
/// cache lines, aligned: a check reads the parent and the filter together.
#[derive(Debug, Clone, Default)]
#[repr(align(64))]
pub(crate) struct Container {
    pub(crate) id: Uuid,
    pub(crate) ty: u8,
    /// The parent's container index, or [`NONE`].
    pub(crate) parent: u32,
    pub(crate) bucket: Option<Arc<Bucket>>,
    // INVARIANT: `node_filter_of(bucket)`, and `saturated` says whether it is all ones (then
    // it is not worth testing).
    pub(crate) filter: NodeFilter,
    pub(crate) saturated: bool,
    /// A project in at least one project group: its `(project_group_projects, G)`
    /// containers, above it beside its parent, are in `Snapshot::project_groups`.
    pub(crate) grouped: bool,
}

impl Container {
    pub(crate) fn object(&self) -> ObjectRef {
        ObjectRef::new(type_of(self.ty), self.id)
    }
}

/// A user's cold data (its hot data is its [`UserSlot`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct UserNode {
    pub(crate) id: Uuid,
    // INVARIANT: sorted, deduplicated group indexes.
    pub(crate) direct: Arc<[u32]>,
    // INVARIANT: sorted indexes of the rows naming the user.
    pub(crate) rows: Arc<Vec<u32>>,
}

/// A group with its precomputed closures in both directions.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupNode {
    pub(crate) id: Uuid,
    pub(crate) org: Uuid,
    /// Groups this group contains directly.
    pub(crate) members: Arc<[u32]>,
    /// Groups containing this group directly.
    pub(crate) parents: Arc<[u32]>,
    // INVARIANT: sorted; this group and every group containing it, transitively.
    pub(crate) up: Arc<[u32]>,
    // INVARIANT: every user of this group or of a group it contains, transitively.
    pub(crate) users: IdSet,
    // INVARIANT: sorted indexes of the rows naming the group.
    pub(crate) rows: Arc<Vec<u32>>,
}

/// A role with its precomputed permission masks.
#[derive(Debug, Clone, Default)]
pub(crate) struct RoleNode {
    pub(crate) id: Uuid,
    pub(crate) org: Option<Uuid>,
    pub(crate) perms: Arc<[(Permission, Option<ObjectType>)]>,
    /// Roles this role inherits directly.
    pub(crate) members: Arc<[u32]>,
    /// Roles inheriting this role directly.
    pub(crate) parents: Arc<[u32]>,
    // INVARIANT: the union of pair_masks over the perms of this role and every role it
    // inherits, transitively.
    pub(crate) masks: Masks,
    // INVARIANT: sorted indexes of the rows granting this role.
    pub(crate) rows: Arc<Vec<u32>>,
}

/// One ACL row: what its entry does not say (44 bytes).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Row {
    pub(crate) id: Uuid,
    pub(crate) object: Uuid,
    /// The entry's subject and grant codes.
    pub(crate) subject: u32,
    pub(crate) grant: u32,
    pub(crate) object_type: u8,
}

impl Row {
    pub(crate) fn object(&self) -> ObjectRef {
        ObjectRef::new(type_of(self.object_type), self.object)
    }
}
