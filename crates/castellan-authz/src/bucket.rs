//! ACL entries as the index stores them (interned, 12 bytes), the buckets holding an
//! object's entries, and the Bloom filters that let a check skip them.
//!
//! An entry names its subject and grant by dense indexes, so it is three `u32`s: three fit
//! inline in a leaf object's slot, and deciding whether it grants needs no hashing.

use castellan_core::model::{ObjectType, Permission};

/// Subject code bit: set for a group (the low bits are its index), clear for a user.
pub(crate) const GROUP: u32 = 1 << 31;
/// Grant code bit: the row expires (its time is in `Snapshot::expiries`).
pub(crate) const EXPIRING: u32 = 1 << 31;
/// Grant code bit: a role (the low 30 bits are its index), else a direct permission.
pub(crate) const ROLE: u32 = 1 << 30;
/// The role index of a role grant code.
pub(crate) const ROLE_INDEX: u32 = ROLE - 1;

/// The code of a direct permission: the permission in bits 0–2, the restriction (type
/// index + 1, or 0 for none) in bits 3–7.
#[inline]
pub(crate) fn perm_code(p: Permission, restrict: Option<ObjectType>) -> u32 {
    p.index() as u32 | (restrict.map_or(0, |t| t.index() as u32 + 1) << 3)
}

/// The inverse of [`perm_code`] (on a code without the `EXPIRING` and `ROLE` bits).
pub(crate) fn decode_perm(code: u32) -> (Permission, Option<ObjectType>) {
    let p = Permission::ALL[(code & 7) as usize];
    let r = match (code >> 3) & 31 {
        0 => None,
        t => ObjectType::ALL.get(t as usize - 1).copied(),
    };
    (p, r)
}

/// One ACL row as stored in its object's bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// A user index, or a group index with [`GROUP`].
    pub(crate) subject: u32,
    /// A [`perm_code`] or a role index with [`ROLE`]; [`EXPIRING`] when the row expires.
    pub(crate) grant: u32,
    /// The row's index in `Snapshot::rows` (its id, object and expiry).
    pub(crate) row: u32,
}

/// A subject code with its hash, from which every filter position is derived. Hashing is
/// two instructions, so probes are made on the fly rather than stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    pub(crate) subject: u32,
    h: u64,
}

impl Probe {
    #[inline]
    pub(crate) fn new(subject: u32) -> Probe {
        // Indexes are dense; the multiply spreads them over all 64 bits.
        Probe { subject, h: (u64::from(subject) ^ 0x5851_F42D_4C95_7F2D).wrapping_mul(0x9E37_79B9_7F4A_7C15) }
    }

    /// Its `i`-th bit (of three) in a [`NodeFilter`]: a 21-bit slice of the hash scaled to 768.
    #[inline]
    fn node_bit(&self, i: u32) -> usize {
        ((((self.h >> (21 * i)) & 0x1F_FFFF) * NODE_FILTER_BITS) >> 21) as usize
    }

    /// Its first node-filter bit as (word, shift within the word).
    #[inline]
    pub(crate) fn first_bit(&self) -> (usize, u32) {
        let b = self.node_bit(0);
        (b >> 6, (b & 63) as u32)
    }

    /// Its word and two bits in a bucket's own filter of `2^(64 - shift)` words (a blocked
    /// Bloom filter: one load, and two bits make false positives rare).
    #[inline]
    fn bucket_bits(&self, shift: u32) -> (usize, u64) {
        let g = self.h.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        ((g >> shift) as usize, 1 << (g & 63) | 1 << ((g >> 6) & 63))
    }
}

/// The filter stored inline in a container node: 768 bits, three per subject, covering
/// buckets of up to [`NODE_FILTER_MAX`] entries (all ones above). It sits in the node's own
/// cache lines, so ruling a container out for a principal costs no further memory access;
/// at 45 subjects a probe errs 0.4% of the time.
pub(crate) type NodeFilter = [u64; 12];
const NODE_FILTER_BITS: u64 = 768;
/// Buckets above this size saturate the node filter (their own filter takes over).
pub(crate) const NODE_FILTER_MAX: usize = 96;

/// Whether the node filter may hold the probe's subject. The first bit alone rules out
/// most subjects (the filter is at most a sixth full), so the others are computed only then.
#[inline]
pub(crate) fn node_filter_has(f: &NodeFilter, p: &Probe) -> bool {
    node_filter_first(f, p.first_bit()) && node_filter_rest(f, p)
}

/// The first of a probe's three node-filter bits, as (word, shift); the same for every node.
#[inline]
pub(crate) fn node_filter_first(f: &NodeFilter, (word, shift): (usize, u32)) -> bool {
    f[word % 12] >> shift & 1 != 0
}

/// The other two bits.
#[inline]
pub(crate) fn node_filter_rest(f: &NodeFilter, p: &Probe) -> bool {
    let bit = |i| {
        let b = p.node_bit(i);
        f[(b >> 6) % 12] >> (b & 63) & 1
    };
    bit(1) & bit(2) != 0
}

/// Adds a subject to a node filter.
pub(crate) fn node_filter_add(f: &mut NodeFilter, subject: u32) {
    let p = Probe::new(subject);
    for i in 0..3 {
        let b = p.node_bit(i);
        f[(b >> 6) % 12] |= 1 << (b & 63);
    }
}

/// The node filter of a bucket.
pub(crate) fn node_filter_of(b: Option<&Bucket>) -> NodeFilter {
    let mut f = [0; 12];
    match b {
        None => {}
        Some(b) if b.len() > NODE_FILTER_MAX => f = [!0; 12],
        Some(b) => {
            for e in b.entries() {
                node_filter_add(&mut f, e.subject);
            }
        }
    }
    f
}

/// Buckets up to this size are scanned or searched directly; larger ones have a filter.
pub(crate) const SCAN_MAX: usize = 8;

/// The ACL entries of one object, with a Bloom filter of their subjects when large.
///
/// Looking a principal up in a large bucket is one filter probe per subject of the
/// principal (the user and each of its groups) and a binary search only for the few that
/// may have an entry, so the cost does not grow with the bucket.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bucket {
    // INVARIANT: sorted by (subject, row).
    entries: Vec<Entry>,
    // INVARIANT: empty when entries.len() <= SCAN_MAX; else a power of two of words (at
    // least two), 16 bits per entry, with the two bits of every entry's subject set in its
    // word.
    filter: Vec<u64>,
}

impl Bucket {
    /// The entries, sorted by (subject, row).
    #[inline]
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// A bucket of `entries` (any order).
    pub(crate) fn from_entries(mut entries: Vec<Entry>) -> Bucket {
        entries.sort_unstable_by_key(|e| (e.subject, e.row));
        let mut b = Bucket { entries, filter: Vec::new() };
        b.rebuild();
        b
    }

    fn filter_words(n: usize) -> usize {
        if n <= SCAN_MAX {
            0
        } else {
            (n / 4).next_power_of_two().max(2)
        }
    }

    fn rebuild(&mut self) {
        let words = Self::filter_words(self.entries.len());
        self.filter = vec![0; words];
        for e in self.entries.iter().filter(|_| words > 0) {
            let (w, m) = Probe::new(e.subject).bucket_bits(64 - words.trailing_zeros());
            self.filter[w] |= m;
        }
    }

    /// Adds an entry at its place.
    pub(crate) fn insert(&mut self, e: Entry) {
        let at = self.entries.partition_point(|x| (x.subject, x.row) < (e.subject, e.row));
        self.entries.insert(at, e);
        let words = Self::filter_words(self.entries.len());
        if words != self.filter.len() {
            self.rebuild();
        } else if words > 0 {
            let (w, m) = Probe::new(e.subject).bucket_bits(64 - words.trailing_zeros());
            self.filter[w] |= m;
        }
    }

    /// Removes the entry of `row`; returns it.
    pub(crate) fn remove_row(&mut self, row: u32) -> Option<Entry> {
        let at = self.entries.iter().position(|e| e.row == row)?;
        let e = self.entries.remove(at);
        // A Bloom filter cannot forget a bit; rebuilding keeps it tight (removal is O(n) anyway).
        self.rebuild();
        Some(e)
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Calls `f` on the entries of subject `s`, stopping when it returns true.
    #[inline]
    fn entries_of<'b>(&'b self, s: u32, f: impl FnMut(&'b Entry) -> bool) -> bool {
        let start = self.entries.partition_point(|e| e.subject < s);
        self.entries[start..].iter().take_while(|e| e.subject == s).any(f)
    }

    /// Calls `f` on the entries of the probe's subject, stopping when it returns true.
    #[inline]
    pub(crate) fn each_of_subject<'b>(&'b self, p: &Probe, f: impl FnMut(&'b Entry) -> bool) -> bool {
        if !self.filter.is_empty() {
            let (w, m) = p.bucket_bits(64 - self.filter.len().trailing_zeros());
            if self.filter.get(w).is_none_or(|w| w & m != m) {
                return false;
            }
        }
        self.entries_of(p.subject, f)
    }

    /// [`Bucket::each_of_subject`] for each subject of the principal, with the filter's
    /// parameters read once.
    #[inline]
    pub(crate) fn each_of_principal<'b>(&'b self, who: &Principal<'_>, mut f: impl FnMut(&'b Entry) -> bool) -> bool {
        let filter = &self.filter[..];
        let shift = 64 - filter.len().max(1).trailing_zeros();
        // A plain loop over the subjects: iterator adapters here cost a call per subject.
        for i in 0..=who.groups.len() {
            let s = who.subject(i);
            if !filter.is_empty() {
                let (w, m) = Probe::new(s).bucket_bits(shift);
                if filter.get(w).is_none_or(|w| w & m != m) {
                    continue;
                }
            }
            if self.entries_of(s, &mut f) {
                return true;
            }
        }
        false
    }
}

/// The principal of a query: the user's subject code and its groups, transitively.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Principal<'a> {
    /// The user's index (a subject code without [`GROUP`]).
    pub(crate) user: u32,
    // INVARIANT: sorted group indexes (without the GROUP bit).
    pub(crate) groups: &'a [u32],
}

impl Principal<'_> {
    /// Whether a subject code names the principal.
    #[inline]
    pub(crate) fn has(&self, subject: u32) -> bool {
        if subject & GROUP == 0 {
            subject == self.user
        } else {
            self.groups.binary_search(&(subject & !GROUP)).is_ok()
        }
    }

    /// The `i`-th subject code of the principal: the user for 0, then its groups
    /// (`i <= groups.len()`).
    #[inline]
    pub(crate) fn subject(&self, i: usize) -> u32 {
        match i.checked_sub(1) {
            None => self.user,
            Some(g) => self.groups.get(g).map_or(self.user, |g| g | GROUP),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_codes_round_trip() {
        for p in Permission::ALL {
            for r in std::iter::once(None).chain(ObjectType::ALL.map(Some)) {
                let c = perm_code(p, r);
                assert_eq!(c & (ROLE | EXPIRING), 0);
                assert_eq!(decode_perm(c), (p, r));
            }
        }
    }

    #[test]
    fn a_large_bucket_finds_exactly_the_entries_of_the_principal() {
        let mut b = Bucket::default();
        for i in 0..500u32 {
            b.insert(Entry { subject: if i % 2 == 0 { i % 97 } else { (i % 89) | GROUP }, grant: 0, row: i });
        }
        for row in (0..500).step_by(3) {
            assert!(b.remove_row(row).is_some());
        }
        let groups = [3u32, 40, 88];
        let who = Principal { user: 10, groups: &groups };
        let mut got: Vec<u32> = Vec::new();
        b.each_of_principal(&who, |e| {
            got.push(e.row);
            false
        });
        got.sort_unstable();
        let want: Vec<u32> = b.entries().iter().filter(|e| who.has(e.subject)).map(|e| e.row).collect();
        let mut want = want;
        want.sort_unstable();
        assert_eq!(got, want);
        assert!(!got.is_empty());
    }
}
