//! Online scoring: `project_score` rules of type `online` run on new project-log
//! spans by a worker inside `serve`, never in the ingest request path (ingest only
//! wakes it).
//!
//! Per project with active rules, under a lease (`scoring:<project>`, so one
//! replica at a time), the worker reads what the row versions written after the
//! project's cursor are (kept in the database, so a restart or another replica
//! resumes there) without their contents, and reads the contents only of the
//! versions some rule may take: a root span for a rule of root spans, and only
//! spans in the rule's sample, decided by the span id stored beside each version.
//! For each rule it then selects spans (`apply_to_root_span`,
//! `apply_to_span_names`; with neither, root spans), samples them deterministically
//! (a hash of rule id and span id against `sampling_rate`), evaluates
//! `btql_filter` in memory, runs each scorer, and writes the scores back onto the
//! span as Braintrust does: a merge of `scores` on the same row, plus, unless
//! `skip_logging`, the scorer's own span as a child (`span_attributes: {name, type:
//! "score", purpose: "scorer"}`, the scorer's input and output, its score).
//!
//! At least once, never twice: each (rule, span) is claimed in
//! `online_score_claims` in the same transaction as its scores, and only a pass
//! that claims it writes them; the cursor moves after that commit, so a crash in
//! between re-reads the spans and writes nothing again. Spans logged before a rule
//! was created or longer than `max_span_age` ago, spans still open (`metrics.start`
//! without `metrics.end`) and scorer spans are never scored; a span is scored on
//! its first complete version. Claims older than twice `max_span_age` can no longer
//! matter (any version of their span read again is too old to score) and are pruned
//! by the scheduler in small batches ([`prune`]).
//!
//! A scorer that fails in a way a later call may not (a time-out, 429, 5xx, an
//! answer that does not parse, after its `attempts` calls) is queued in
//! `online_score_retries` with the claim and called again, on the span as it is
//! then, after `requeue_backoff` (then 5 times as long each round), for `rounds`
//! rounds in all; then the worker gives up on it and says so on the run.
//!
//! While ingest keeps the data writer busy, the worker gives way: after each batch
//! it pauses so that it works at most `busy_duty` of the time, unless it has been
//! behind on the project for longer than `max_lag`: then it works at full speed
//! until it has caught up, so that its lag stays bounded.
//!
//! Each pass that saw spans records a run per rule (`automation_runs`: spans read,
//! sampled, matched, scored, errors, retries), readable at `GET
//! /v1/project_score/{id}/runs`.

pub mod builtin;
pub mod judge;
mod rules;
mod worker;

pub use worker::{Counts, PassReport, Timings, Worker};

use crate::access::{AppState, Permit};
use crate::error::ApiResult;
use castellan_btql::Expr;
use sha2::Digest;
use std::time::Duration;
use uuid::Uuid;

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Row versions read per batch.
    pub batch: usize,
    /// Batches one project gets per pass (then the next project's turn).
    pub max_batches: usize,
    /// A pass runs at least this often, woken or not.
    pub tick: Duration,
    /// …and at most this often (wake-ups in between are coalesced).
    pub min_interval: Duration,
    /// Calls to a provider per score in one round (the first and the retries).
    pub attempts: u32,
    /// The first retry's wait within a round; each next one waits twice as long.
    pub backoff: Duration,
    /// How long one provider call may take.
    pub timeout: Duration,
    /// Provider calls in flight at once.
    pub concurrency: usize,
    /// How long a project's lease lasts without renewal, microseconds.
    pub lease_micros: i64,
    /// Rounds of calls a scorer that keeps failing transiently gets, the first
    /// included, before the worker gives up on it.
    pub rounds: u32,
    /// The wait before a failed scorer's second round; each next one waits 5 times
    /// as long.
    pub requeue_backoff: Duration,
    /// Spans created longer ago than this are not scored; claims twice as old are
    /// pruned.
    pub max_span_age: Duration,
    /// While ingest is busy, the largest share of time the worker works (it pauses
    /// the rest); 1 never gives way.
    pub busy_duty: f64,
    /// Ingest is busy when the data writer was busy more than this share of the
    /// time since the worker last looked.
    pub busy_threshold: f64,
    /// Once a project's scoring has been behind (each batch read full, more
    /// waiting) this long, the worker stops giving way on it until it has caught
    /// up: its lag stays bounded while ingest is busy, at the cost of the capacity
    /// catching up takes.
    pub max_lag: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch: 1000,
            max_batches: 100,
            tick: Duration::from_secs(5),
            min_interval: Duration::from_secs(1),
            attempts: 4,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(30),
            concurrency: 8,
            lease_micros: 300 * 1_000_000,
            rounds: 4,
            requeue_backoff: Duration::from_secs(60),
            max_span_age: Duration::from_secs(86_400),
            busy_duty: 0.25,
            busy_threshold: 0.5,
            max_lag: Duration::from_secs(3),
        }
    }
}

/// The HTTP client a provider call to `api_base` is made with: through the
/// server's outbound guard (`crate::outbound`: the destination resolved and checked
/// once, private and loopback addresses refused unless `outbound_allow` lists them,
/// no redirects).
pub async fn http_client(state: &AppState, api_base: &str) -> Result<reqwest::Client, String> {
    let url = format!("{}/chat/completions", api_base.trim_end_matches('/'));
    state.outbound().client_for(&url).await.map_err(|e| e.to_string())
}

/// Whether a span is in a rule's sample: the first 8 bytes of SHA-256 of
/// `"<rule id>:<span id>"`, as a fraction of 2^64, below `rate`.
pub fn sampled(rule: Uuid, span_id: &str, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 || rate.is_nan() {
        return false;
    }
    let h = sha2::Sha256::digest(format!("{rule}:{span_id}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    (u64::from_be_bytes(b) as f64 / 18_446_744_073_709_551_616.0) < rate
}

/// Parses a rule's `btql_filter` (a BTQL or SQL boolean expression over span fields).
pub fn parse_filter(src: &str) -> Result<Expr, String> {
    castellan_btql::parse_expr(src).map_err(|e| e.to_string())
}

/// The claim of one rule on one span (row): the first 16 bytes of SHA-256 of
/// `"<rule id>|<row id>"`.
fn claim_key(rule: Uuid, row_id: &str) -> Vec<u8> {
    sha2::Sha256::digest(format!("{rule}|{row_id}").as_bytes())[..16].to_vec()
}

/// Claims pruned per statement (one short transaction each).
const PRUNE_BATCH: usize = 1000;
/// The most claims one call prunes.
const PRUNE_MAX: u64 = 200_000;

/// Prunes claims (and queued retries) made more than twice `max_span_age` before
/// `now`: any version of their span that is read again was created too long ago
/// to be scored, so they can no longer keep anything from being scored twice.
/// Deletes in batches of 1,000, each its own transaction, with a pause as long as
/// the batch took between them (so ingest waits at most one batch), up to 200,000
/// a call; how many went.
pub async fn prune(state: &AppState, permit: &Permit, max_span_age: Duration, now: i64) -> ApiResult<u64> {
    let jobs = state.jobs(permit);
    let before = now - 2 * i64::try_from(max_span_age.as_micros()).unwrap_or(i64::MAX / 4);
    let mut total = 0;
    while total < PRUNE_MAX {
        let t = std::time::Instant::now();
        let n = jobs.prune_score_claims(before, PRUNE_BATCH).await?;
        total += n;
        if n < PRUNE_BATCH as u64 {
            break;
        }
        tokio::time::sleep(t.elapsed()).await;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_is_deterministic_and_close_to_the_rate() {
        let rule = Uuid::from_u128(7);
        let n = 20_000;
        let hits = (0..n).filter(|i| sampled(rule, &format!("span-{i}"), 0.1)).count();
        assert!((1_700..2_300).contains(&hits), "{hits} of {n} sampled at 0.1");
        assert_eq!(sampled(rule, "span-1", 0.1), sampled(rule, "span-1", 0.1));
        assert!(sampled(rule, "x", 1.0));
        assert!(!sampled(rule, "x", 0.0));
    }

    #[test]
    fn filters_parse_as_btql_expressions() {
        assert!(parse_filter("metadata.env = 'prod' and scores.x > 0.5").is_ok());
        assert!(parse_filter("metadata.env = ").is_err());
    }

    #[test]
    fn claims_are_per_rule_and_span() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(claim_key(a, "r1").len(), 16);
        assert_eq!(claim_key(a, "r1"), claim_key(a, "r1"));
        assert_ne!(claim_key(a, "r1"), claim_key(b, "r1"));
        assert_ne!(claim_key(a, "r1"), claim_key(a, "r2"));
    }
}
