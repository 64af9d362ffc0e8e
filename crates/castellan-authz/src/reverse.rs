//! Reverse lookups: who-can (principals of a permission on an object) and what-can (objects
//! of a type a principal holds a permission on). Both are complete and paginated by id.
//!
//! Each answer is the union of a few id-sorted sources (a group's transitive users, an
//! organization's or project's objects of a type, single ids); a k-way merge from the
//! cursor yields one page in O((sources + limit) · log sources), never scanning everything.

use crate::bucket::{Entry, GROUP};
use crate::idset::IdSet;
use crate::nodes::NONE;
use crate::snapshot::{Loc, Query, Snapshot};
use crate::types::Page;
use castellan_core::model::{ObjectRef, ObjectType, Permission};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use uuid::Uuid;

/// One id-sorted source of a merge.
enum Source<'a> {
    One(u128),
    Set(&'a IdSet),
}

/// The page of the union of `sources` strictly after `after`, at most `limit` ids (at least
/// one: a page of zero could not carry a cursor).
fn merge_page(sources: Vec<Source<'_>>, after: Option<Uuid>, limit: usize) -> Page<Uuid> {
    let limit = limit.max(1);
    let after = after.map(|a| a.as_u128());
    let mut singles: Vec<u128> = Vec::new();
    let mut iters: Vec<Box<dyn Iterator<Item = u128> + '_>> = Vec::new();
    for s in sources {
        match s {
            Source::One(id) => {
                if after.is_none_or(|a| id > a) {
                    singles.push(id);
                }
            }
            Source::Set(set) => iters.push(Box::new(set.iter_after(after))),
        }
    }
    singles.sort_unstable();
    singles.dedup();
    iters.push(Box::new(singles.into_iter()));
    let mut heap: BinaryHeap<Reverse<(u128, usize)>> = BinaryHeap::with_capacity(iters.len());
    for (i, it) in iters.iter_mut().enumerate() {
        if let Some(id) = it.next() {
            heap.push(Reverse((id, i)));
        }
    }
    let mut items: Vec<Uuid> = Vec::with_capacity(limit.min(1024));
    let mut last: Option<u128> = None;
    while let Some(Reverse((id, i))) = heap.pop() {
        if let Some(next) = iters[i].next() {
            heap.push(Reverse((next, i)));
        }
        if last == Some(id) {
            continue;
        }
        if items.len() == limit {
            // A distinct id beyond the page exists: the cursor is exact.
            let next = items.last().copied();
            return Page { items, next };
        }
        items.push(Uuid::from_u128(id));
        last = Some(id);
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
        let q = Query::new(permission, object.object_type, now);
        let mut sources = Vec::new();
        let mut visit = |entries: &[Entry]| {
            for e in entries.iter().filter(|e| self.grants(e, &q)) {
                if e.subject & GROUP == 0 {
                    sources.push(Source::One(self.users.get(e.subject).id.as_u128()));
                } else {
                    sources.push(Source::Set(&self.groups.get(e.subject & !GROUP).users));
                }
            }
        };
        let mut cur = match self.locate(object) {
            None => NONE,
            Some(Loc::Leaf(l)) => {
                visit(self.leaf_entries(l).0);
                l.parent
            }
            Some(Loc::Container(c)) => c,
        };
        while cur != NONE {
            let c = self.containers.get(cur);
            for idx in std::iter::once(cur).chain(self.groups_above(cur).iter().copied()) {
                if let Some(b) = &self.containers.get(idx).bucket {
                    visit(b.entries());
                }
            }
            cur = c.parent;
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
        let Some(who) = self.principal(user) else { return Page::default() };
        let q = Query::new(permission, object_type, now);
        // Grant points: the objects carrying a row that names the principal and grants.
        let mut points: Vec<ObjectRef> = Vec::new();
        let mut visit = |rows: &[u32]| {
            for &ri in rows {
                let r = self.rows.get(ri);
                if self.yields(r.grant, &q) && self.live(r.grant, ri, now) {
                    points.push(r.object());
                }
            }
        };
        visit(&self.users.get(who.user).rows);
        for g in who.groups {
            visit(&self.groups.get(*g).rows);
        }
        points.sort_unstable();
        points.dedup();
        let mut sources = Vec::new();
        for a in points {
            let root = match within {
                None => a,
                // The grant is at or above `within`: everything of the type under `within`.
                Some(w) if within_chain.contains(&a) => w,
                // The grant is below `within`: what is under the grant.
                Some(w) if self.ancestors(a).contains(&w) => a,
                // Two project groups: what is under the grant's group and also under
                // `within`'s (the projects in both, and what is inside them).
                Some(w)
                    if a.object_type == ObjectType::ProjectGroupProjects
                        && w.object_type == ObjectType::ProjectGroupProjects =>
                {
                    let mut under_a = Vec::new();
                    self.descendants_of_type(a, object_type, &mut under_a);
                    for src in under_a {
                        let ids: Vec<u128> = match src {
                            Source::One(id) => vec![id],
                            Source::Set(set) => set.iter().collect(),
                        };
                        for id in ids {
                            let o = ObjectRef::new(object_type, Uuid::from_u128(id));
                            if self.ancestors(o).contains(&w) {
                                sources.push(Source::One(id));
                            }
                        }
                    }
                    continue;
                }
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
        if root.object_type == T::ProjectGroupProjects {
            // Every project of the group, and what is inside each.
            let Some(projects) = self.group_projects.get(&root.object_id) else { return };
            match t {
                T::Project | T::ProjectLog => out.push(Source::Set(projects)),
                T::ProjectGroupProjects => out.push(Source::One(root.object_id.as_u128())),
                t if t.is_project_child() => {
                    for p in projects.iter() {
                        if let Some(set) = self.project_index.get(&(Uuid::from_u128(p), t)) {
                            out.push(Source::Set(set));
                        }
                    }
                }
                _ => {}
            }
            return;
        }
        let index = match root.object_type {
            T::Organization => self.org_index.get(&(root.object_id, t)),
            T::OrgProject if in_project_tree || t == T::ProjectGroupProjects => {
                self.org_index.get(&(root.object_id, t))
            }
            T::OrgAiSecret if t == T::AiSecret => self.org_index.get(&(root.object_id, t)),
            T::Project if t.is_project_child() && t != T::ProjectLog => self.project_index.get(&(root.object_id, t)),
            T::Project if t == T::ProjectLog => {
                out.push(Source::One(root.object_id.as_u128()));
                return;
            }
            _ => None,
        };
        match index {
            Some(set) => out.push(Source::Set(set)),
            None if root.object_type == t => out.push(Source::One(root.object_id.as_u128())),
            None => {}
        }
    }
}
