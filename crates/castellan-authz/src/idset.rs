//! A persistent sorted set of ids: the id-ordered sources of who-can and what-can (a group's
//! users, an organization's or project's objects of a type).
//!
//! Sorted runs of at most 256 ids, each `Arc`-shared: a clone copies one pointer per run, an
//! insert or removal copies one run (4 KiB at most), and a page from a cursor is a binary
//! search over the runs' last ids then one within a run. About 20 bytes per id, against
//! ~35 for a B-tree with per-node child arrays.

use std::fmt;
use std::sync::Arc;

const RUN_MAX: usize = 256;

/// The set (see the module doc). Ids are `Uuid::as_u128`, whose order is the uuid order.
#[derive(Clone, Default)]
pub(crate) struct IdSet {
    // INVARIANT: every run is non-empty and sorted, runs are in order (the last id of a run is
    // below the first of the next), no run exceeds RUN_MAX, and len is the sum of their sizes.
    runs: Vec<Arc<Vec<u128>>>,
    // INVARIANT: lasts[i] is the last id of runs[i], so that finding a run reads one vector
    // rather than one run per step of the search.
    lasts: Vec<u128>,
    len: usize,
}

impl fmt::Debug for IdSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdSet(len {})", self.len)
    }
}

impl IdSet {
    /// Number of ids.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The run that holds `x` or would hold it (the last run for ids above every run).
    fn run_of(&self, x: u128) -> usize {
        let i = self.lasts.partition_point(|l| *l < x);
        i.min(self.runs.len().saturating_sub(1))
    }

    /// Whether `x` is in the set.
    #[cfg(test)]
    pub(crate) fn contains(&self, x: u128) -> bool {
        self.runs.get(self.run_of(x)).is_some_and(|r| r.binary_search(&x).is_ok())
    }

    /// Adds `x`; returns whether it was absent.
    pub(crate) fn insert(&mut self, x: u128) -> bool {
        if self.runs.is_empty() {
            self.runs.push(Arc::new(vec![x]));
            self.lasts.push(x);
            self.len = 1;
            return true;
        }
        let i = self.run_of(x);
        let Err(at) = self.runs[i].binary_search(&x) else { return false };
        let run = Arc::make_mut(&mut self.runs[i]);
        run.insert(at, x);
        if run.len() > RUN_MAX {
            let upper = run.split_off(run.len() / 2);
            self.lasts[i] = run.last().copied().unwrap_or_default();
            self.lasts.insert(i + 1, upper.last().copied().unwrap_or_default());
            self.runs.insert(i + 1, Arc::new(upper));
        } else {
            self.lasts[i] = self.lasts[i].max(x);
        }
        self.len += 1;
        true
    }

    /// Removes `x`; returns whether it was present.
    pub(crate) fn remove(&mut self, x: u128) -> bool {
        if self.runs.is_empty() {
            return false;
        }
        let i = self.run_of(x);
        let Ok(at) = self.runs[i].binary_search(&x) else { return false };
        let run = Arc::make_mut(&mut self.runs[i]);
        run.remove(at);
        let small = run.len();
        let last = run.last().copied();
        self.len -= 1;
        match last {
            None => {
                self.runs.remove(i);
                self.lasts.remove(i);
            }
            Some(l) => self.lasts[i] = l,
        }
        if small > 0 && small < RUN_MAX / 4 && i + 1 < self.runs.len() && small + self.runs[i + 1].len() <= RUN_MAX / 2
        {
            // Merge a shrunken run with its successor so that sparse sets stay compact.
            let next = self.runs.remove(i + 1);
            self.lasts.remove(i);
            Arc::make_mut(&mut self.runs[i]).extend_from_slice(&next);
        }
        true
    }

    /// The ids strictly after `after` (all of them for `None`), in order.
    pub(crate) fn iter_after(&self, after: Option<u128>) -> impl Iterator<Item = u128> + '_ {
        let (run, at) = match after {
            None => (0, 0),
            Some(a) => {
                let i = self.lasts.partition_point(|l| *l <= a);
                let at = self.runs.get(i).map_or(0, |r| r.partition_point(|x| *x <= a));
                (i, at)
            }
        };
        let first = self.runs.get(run).map(|r| &r[at..]);
        let rest = self.runs.get(run + 1..).unwrap_or(&[]);
        first.into_iter().chain(rest.iter().map(|r| &r[..])).flatten().copied()
    }

    /// Every id, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        self.iter_after(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::ops::Bound;

    #[test]
    fn the_set_agrees_with_a_btree_set_under_random_inserts_and_removals() {
        let mut s = IdSet::default();
        let mut b: BTreeSet<u128> = BTreeSet::new();
        let mut x = 3u64;
        let mut old = Vec::new();
        for step in 0..30_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = u128::from(x % 5_000) << 64 | u128::from(x % 7);
            // Grow first, then shrink, so runs split and merge.
            if (step < 15_000) == x.is_multiple_of(4) {
                assert_eq!(s.remove(v), b.remove(&v));
            } else {
                assert_eq!(s.insert(v), b.insert(v));
            }
            if step % 3_000 == 0 {
                old.push((s.clone(), b.clone()));
            }
        }
        old.push((s, b));
        for (s, b) in old {
            assert_eq!(s.len(), b.len());
            assert!(s.iter().eq(b.iter().copied()));
            for probe in b.iter().copied().step_by(7).chain([0, u128::MAX]) {
                assert_eq!(s.contains(probe), b.contains(&probe));
                let want: Vec<u128> = b.range((Bound::Excluded(probe), Bound::Unbounded)).take(300).copied().collect();
                let got: Vec<u128> = s.iter_after(Some(probe)).take(300).collect();
                assert_eq!(got, want);
            }
        }
    }
}
