//! The tamper-evident audit log: records are hash-chained per organization.
//!
//! Each record's hash covers every stored field and the previous record's hash, so
//! changing or deleting any record breaks the chain from that point on. `before`,
//! `after` and `details` are stored as the exact JSON text that was hashed, so a
//! database that normalizes JSON cannot break verification.

use crate::model::{Micros, Revision};
use castellan_core::{OrgId, UserId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash that precedes the first record of every org's chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a caller asks the store to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditRecord {
    /// The org whose chain this joins.
    pub org_id: OrgId,
    /// Time of the change.
    pub created: Micros,
    /// Who did it (user or service account); `None` for the system (bootstrap, scheduler).
    pub actor_id: Option<UserId>,
    /// The owner impersonating `actor_id`, if any.
    pub impersonator_id: Option<UserId>,
    /// `<resource>.<action>`, e.g. `project.created`.
    pub event_type: String,
    /// `project`, `api_key`, `acl`, …
    pub resource_type: String,
    /// The changed object's id.
    pub resource_id: Option<Uuid>,
    /// The changed object's name, if it has one.
    pub resource_name: Option<String>,
    /// State before, as canonical JSON text (absent for creations).
    pub before: Option<String>,
    /// State after, as canonical JSON text (absent for deletions).
    pub after: Option<String>,
    /// Event-specific extras, as canonical JSON text.
    pub details: Option<String>,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Id.
    pub id: Uuid,
    /// Position in the org's chain, from 1 without gaps.
    pub seq: u64,
    /// The revision of the transaction that wrote it.
    pub revision: Revision,
    /// The fields given at append time.
    #[serde(flatten)]
    pub record: NewAuditRecord,
    /// The previous record's hash ([`GENESIS_HASH`] for seq 1).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// Canonical JSON text of a value: object keys sorted, no whitespace.
pub fn canonical_json<T: Serialize>(value: &T) -> String {
    // serde_json's Value keeps object keys in a BTreeMap (no preserve_order feature),
    // so going through Value sorts them.
    match serde_json::to_value(value) {
        Ok(v) => v.to_string(),
        Err(e) => serde_json::Value::String(format!("unserializable: {e}")).to_string(),
    }
}

/// The hash of a record given its chain position and predecessor.
pub fn chain_hash(id: Uuid, seq: u64, revision: Revision, rec: &NewAuditRecord, prev_hash: &str) -> String {
    // A JSON array is an unambiguous encoding: no field can bleed into the next.
    let fields = serde_json::json!([
        "castellan-audit-v1",
        id,
        seq,
        revision,
        rec.org_id,
        rec.created,
        rec.actor_id,
        rec.impersonator_id,
        rec.event_type,
        rec.resource_type,
        rec.resource_id,
        rec.resource_name,
        rec.before,
        rec.after,
        rec.details,
        prev_hash,
    ]);
    hex::encode(Sha256::digest(fields.to_string().as_bytes()))
}

/// Builds the stored record that follows `prev` (or starts the chain).
pub fn seal(id: Uuid, revision: Revision, rec: NewAuditRecord, prev: Option<(u64, String)>) -> AuditRecord {
    let (seq, prev_hash) = match prev {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let hash = chain_hash(id, seq, revision, &rec, &prev_hash);
    AuditRecord { id, seq, revision, record: rec, prev_hash, hash }
}

/// A problem found while verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// The sequence number at which the chain stops holding.
    pub seq: u64,
    /// What is wrong there.
    pub problem: String,
}

/// Verifies records of one org given in ascending `seq` order, starting at seq 1,
/// against the org's stored chain head `(seq, hash)`. Returns every break found.
pub fn verify_chain(records: &[AuditRecord], head: Option<(u64, String)>) -> Vec<ChainBreak> {
    let mut breaks = Vec::new();
    let mut expected_seq = 1u64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    for r in records {
        if r.seq != expected_seq {
            breaks.push(ChainBreak {
                seq: expected_seq,
                problem: format!("record {expected_seq} is missing (next present is {})", r.seq),
            });
        }
        if r.prev_hash != prev_hash {
            breaks.push(ChainBreak { seq: r.seq, problem: "previous-hash link does not match".into() });
        }
        let recomputed = chain_hash(r.id, r.seq, r.revision, &r.record, &r.prev_hash);
        if recomputed != r.hash {
            breaks.push(ChainBreak { seq: r.seq, problem: "contents do not match the record's hash".into() });
        }
        expected_seq = r.seq + 1;
        prev_hash = r.hash.clone();
    }
    let last = records.last().map(|r| (r.seq, r.hash.clone()));
    match (head, last) {
        (None, None) => {}
        (Some((hs, hh)), Some((ls, lh))) => {
            if hs != ls || hh != lh {
                breaks.push(ChainBreak {
                    seq: ls.max(hs),
                    problem: format!("chain head says record {hs} is last but the log ends at {ls}"),
                });
            }
        }
        (Some((hs, _)), None) => {
            breaks.push(ChainBreak {
                seq: 1,
                problem: format!("chain head says record {hs} is last but the log is empty"),
            });
        }
        (None, Some((ls, _))) => {
            breaks.push(ChainBreak { seq: ls, problem: "records exist but the chain head is missing".into() });
        }
    }
    breaks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: i64) -> NewAuditRecord {
        NewAuditRecord {
            org_id: OrgId(Uuid::from_u128(1)),
            created: i,
            actor_id: None,
            impersonator_id: None,
            event_type: "project.created".into(),
            resource_type: "project".into(),
            resource_id: Some(Uuid::from_u128(i as u128)),
            resource_name: Some(format!("p{i}")),
            before: None,
            after: Some(canonical_json(&serde_json::json!({"b": 1, "a": i}))),
            details: None,
        }
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 1..=n {
            let prev = out.last().map(|r| (r.seq, r.hash.clone()));
            out.push(seal(Uuid::from_u128(100 + i as u128), i as u64, rec(i), prev));
        }
        out
    }

    #[test]
    fn canonical_json_sorts_keys() {
        assert_eq!(canonical_json(&serde_json::json!({"b": 1, "a": {"d": 2, "c": 3}})), r#"{"a":{"c":3,"d":2},"b":1}"#);
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let c = chain(5);
        let head = c.last().map(|r| (r.seq, r.hash.clone()));
        assert_eq!(verify_chain(&c, head), vec![]);
    }

    #[test]
    fn an_altered_record_is_detected() {
        let mut c = chain(5);
        let head = c.last().map(|r| (r.seq, r.hash.clone()));
        c[2].record.resource_name = Some("evil".into());
        let breaks = verify_chain(&c, head);
        assert_eq!(breaks.first().map(|b| b.seq), Some(3));
    }

    #[test]
    fn a_deleted_record_in_the_middle_or_at_the_end_is_detected() {
        let c = chain(5);
        let head = c.last().map(|r| (r.seq, r.hash.clone()));
        let mut middle = c.clone();
        middle.remove(1);
        assert!(verify_chain(&middle, head.clone()).iter().any(|b| b.seq == 2));
        let mut tail = c;
        tail.pop();
        assert!(!verify_chain(&tail, head).is_empty());
    }
}
