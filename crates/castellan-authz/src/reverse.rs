//! Reverse lookups: who-can (principals of a permission on an object) and what-can (objects
//! of a type a principal holds a permission on). Both are complete and paginated by id.
//!
//! Each answer is the union of a few id-sorted sources (a group's transitive users, an
//! organization's or project's objects of a type, single ids); a k-way merge from the
//! cursor yields one page in O((sources + limit) · log sources), never scanning everything.

use crate::snapshot::{for_each_match, Snapshot};
use crate::types::{Page, Subject};
use castellan_core::model::{ObjectRef, ObjectType, Permission};
use imbl::OrdSet;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;
use uuid::Uuid;

/// One id-sorted source of a merge.
enum Source<'a> {
    One(Uuid),
    Set(&'a OrdSet<Uuid>),
}

/// The page of the union of `sources` strictly after `after`, at most `limit` ids (at least
/// one: a page of zero could not carry a cursor).
fn merge_page(sources: Vec<Source<'_>>, after: Option<Uuid>, limit: usize) -> Page<Uuid> {
    let limit = limit.max(1);
    let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
    let mut singles: Vec<Uuid> = Vec::new();
    let mut iters: Vec<Box<dyn Iterator<Item = Uuid> + '_>> = Vec::new();
    for s in sources {
        match s {
            Source::One(id) => {
                if after.is_none_or(|a| id > a) {
                    singles.push(id);
                }
            }
            Source::Set(set) => iters.push(Box::new(set.range((lower, Bound::Unbounded)).copied())),
        }
    }
    singles.sort_unstable();
    singles.dedup();
    iters.push(Box::new(singles.into_iter()));
    let mut heap: BinaryHeap<Reverse<(Uuid, usize)>> = BinaryHeap::with_capacity(iters.len());
    for (i, it) in iters.iter_mut().enumerate() {
        if let Some(id) = it.next() {
            heap.push(Reverse((id, i)));
        }
    }
    let mut items: Vec<Uuid> = Vec::with_capacity(limit.min(1024));
    while let Some(Reverse((id, i))) = heap.pop() {
        if let Some(next) = iters[i].next() {
            heap.push(Reverse((next, i)));
        }
        if items.last() == Some(&id) {
            continue;
        }
        if items.len() == limit {
            // A distinct id beyond the page exists: the cursor is exact.
            let next = items.last().copied();
            return Page { items, next };
        }
        items.push(id);
    }
    Page { items, next: None }
}

impl Snapshot {
    /// Every user (service accounts included) who may do `permission` on `object` at `now`,
    /// through direct rows, groups (transitively) and roles (transitively); sorted by id,
    /// starting after `after`, at most `limit` (minimum 1) per page, never truncated silently.
    pub fn who_can(
        &self,
        permission: Permission,
        object: ObjectRef,
        now: i64,
        after: Option<Uuid>,
        limit: usize,
    ) -> Page<Uuid> {
        let t = object.object_type;
        let mut sources = Vec::new();
        if self.contains(object) {
            for a in self.ancestors(object) {
                let Some(bucket) = self.objects.get(&a).and_then(|n| n.acls.as_ref()) else { continue };
                for e in bucket.entries.iter() {
                    if !(e.expires.live(now) && self.yields(&e.grant, permission, t)) {
                        continue;
                    }
                    match e.subject {
                        Subject::User(u) => sources.push(Source::One(u)),
                        Subject::Group(g) => {
                            if let Some(n) = self.groups.get(&g) {
                                sources.push(Source::Set(&n.users));
                            }
                        }
                    }
                }
            }
        }
        merge_page(sources, after, limit)
    }

    /// The ids of every object of `object_type` (only descendants of `within`, itself
    /// included, when given) on which `user` may do `permission` at `now`; sorted by id,
    /// starting after `after`, at most `limit` (minimum 1) per page, never truncated silently.
    #[allow(clippy::too_many_arguments)]
    pub fn what_can(
        &self,
        user: Uuid,
        permission: Permission,
        object_type: ObjectType,
        within: Option<ObjectRef>,
        now: i64,
        after: Option<Uuid>,
        limit: usize,
    ) -> Page<Uuid> {
        let within_chain = match within {
            Some(w) if !self.contains(w) => return Page::default(),
            Some(w) => self.ancestors(w),
            None => Vec::new(),
        };
        let who = self.principal(user);
        // Grant points: the objects carrying a row naming the user or one of its groups.
        let mut points: Vec<ObjectRef> = Vec::new();
        if let Some(n) = self.users.get(&user) {
            points.extend(n.acl_objects.iter().copied());
        }
        for g in who.groups {
            if let Some(n) = self.groups.get(g) {
                points.extend(n.acl_objects.iter().copied());
            }
        }
        points.sort_unstable();
        points.dedup();
        let mut sources = Vec::new();
        for a in points {
            let Some(bucket) = self.objects.get(&a).and_then(|n| n.acls.as_ref()) else { continue };
            let granted =
                for_each_match(bucket, &who, |e| e.expires.live(now) && self.yields(&e.grant, permission, object_type));
            if !granted {
                continue;
            }
            let root = match within {
                None => a,
                // The grant is at or above `within`: everything of the type under `within`.
                Some(w) if within_chain.contains(&a) => w,
                // The grant is below `within`: what is under the grant.
                Some(w) if self.ancestors(a).contains(&w) => a,
                Some(_) => continue,
            };
            self.descendants_of_type(root, object_type, &mut sources);
        }
        merge_page(sources, after, limit)
    }

    /// The sources of the objects of type `t` among `root` and its descendants.
    fn descendants_of_type<'a>(&'a self, root: ObjectRef, t: ObjectType, out: &mut Vec<Source<'a>>) {
        use ObjectType as T;
        let in_project_tree = t == T::Project || t.is_project_child();
        let index = match root.object_type {
            T::Organization => self.org_index.get(&(root.object_id, t)),
            T::OrgProject if in_project_tree => self.org_index.get(&(root.object_id, t)),
            T::Project if t.is_project_child() && t != T::ProjectLog => self.project_index.get(&(root.object_id, t)),
            T::Project if t == T::ProjectLog => {
                out.push(Source::One(root.object_id));
                return;
            }
            _ => None,
        };
        match index {
            Some(set) => out.push(Source::Set(set)),
            None if root.object_type == t => out.push(Source::One(root.object_id)),
            None => {}
        }
    }
}
