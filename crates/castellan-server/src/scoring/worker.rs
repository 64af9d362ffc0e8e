//! The online-scoring worker: its passes over projects, the scorers' calls, and
//! the writes of their scores, claims and retries.

use super::rules::{rule_of, Head, Rule, ScorerRef};
use super::{builtin, claim_key, judge, sampled, Options};
use crate::access::{AppState, Permit};
use crate::dataplane::ingest::{apply, merged_system_row, prepare_system};
use crate::dataplane::rows::{event_json, Op, Row};
use crate::error::{ApiError, ApiResult};
use castellan_api_types::{format_time, parse_time};
use castellan_core::{ObjectRef, ObjectType, OrgId, ProjectId};
use castellan_store::{
    AdminKind, AdminRecord, EventKind, EventObject, EventWrite, ObjectKind, RawEvent, RunRecord, ScoreRetry,
    StoredEvent, XactId,
};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A scorer, resolved for one pass.
#[derive(Clone)]
enum Resolved {
    Builtin(String),
    Judge(Arc<judge::Judge>),
    Broken(String),
}

impl Resolved {
    fn name(&self, r: &ScorerRef) -> String {
        match (self, r) {
            (Resolved::Builtin(n), _) => n.clone(),
            (Resolved::Judge(j), _) => j.name.clone(),
            (Resolved::Broken(_), ScorerRef::Global(n)) => n.clone(),
            (Resolved::Broken(_), ScorerRef::Function { id, .. }) => id.clone(),
        }
    }
}

/// Per-rule counts of one pass.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Counts {
    /// New row versions read (not deletes, comments or the worker's own writes).
    pub spans: u64,
    /// …in the rule's sample and of the spans it applies to (root or named,
    /// complete, logged after the rule and not too long ago).
    pub sampled: u64,
    /// …passing its filter: scored.
    pub matched: u64,
    /// Scores written.
    pub scored: u64,
    /// Scorers of spans an earlier pass scored (not called or written again).
    pub already_scored: u64,
    /// Scorers that found nothing to score (e.g. no `expected`).
    pub skipped: u64,
    /// Scorers that failed.
    pub errors: u64,
    /// …of which failed in a way a later call may not, and were queued to be
    /// called again.
    pub requeued: u64,
    /// Queued scorers called again.
    pub retried: u64,
    /// Queued scorers given up on after their last round.
    pub gave_up: u64,
}

/// What one pass did, per rule.
#[derive(Debug, Default, Clone)]
pub struct PassReport {
    /// Counts by rule id.
    pub rules: BTreeMap<Uuid, Counts>,
    /// The runs recorded.
    pub runs: Vec<RunRecord>,
}

/// A span's version as stored: its transaction id and JSON text.
type Base = Arc<(XactId, String)>;

/// A scored span's merge, built before the write's transaction.
struct Premerged {
    /// The scores it writes.
    scores: Map<String, Value>,
    /// The version it merges onto.
    base: XactId,
    /// The row, and how many scores it holds.
    row: EventWrite,
    count: i64,
}

/// One scorer's work on one span.
struct Task {
    rule: usize,
    row_id: String,
    span_id: String,
    root_span_id: String,
    scorer: ScorerRef,
    resolved: Resolved,
    /// The scorers' arguments, shared by every scorer of the span.
    vars: Arc<Value>,
    /// The version of the span they were read from, as stored (its transaction
    /// id and JSON text): the scores are merged onto it before the write's
    /// transaction if it is still the newest then.
    base: Base,
    /// The queued retry this call is a round of (none: a new span's first call).
    retry: Option<ScoreRetry>,
}

/// Why a scorer gave no score.
#[derive(Debug, Clone)]
struct Failure {
    message: String,
    /// A time-out, 429, 5xx or unreadable answer: a later call may succeed.
    transient: bool,
}

impl Failure {
    fn lasting(message: String) -> Failure {
        Failure { message, transient: false }
    }
}

/// A scorer's outcome.
type Outcome = Result<Option<(f64, Value)>, Failure>;

/// A provider ready to call: where, with which key, through which client.
type Ready = Result<(Arc<judge::Provider>, reqwest::Client), String>;

/// What one project's pass keeps while it runs.
struct PassState {
    counts: Vec<Counts>,
    first_error: Vec<Option<String>>,
    resolved: HashMap<ScorerRef, Resolved>,
    providers: HashMap<String, Ready>,
}

impl PassState {
    fn new(rules: usize) -> PassState {
        PassState {
            counts: vec![Counts::default(); rules],
            first_error: vec![None; rules],
            resolved: HashMap::new(),
            providers: HashMap::new(),
        }
    }

    fn error(&mut self, rule: usize, message: impl FnOnce() -> String) {
        self.counts[rule].errors += 1;
        if self.first_error[rule].is_none() {
            self.first_error[rule] = Some(message());
        }
    }
}

/// Where a worker's time went since it started, in microseconds per phase: for
/// load scripts and profiling (`examples/online_scoring_bench.rs` prints them).
#[derive(Debug, Default)]
pub struct Timings {
    /// Reading the row versions after the cursor (without their contents).
    pub heads: AtomicU64,
    /// Reading the contents of the versions some rule may take.
    pub versions: AtomicU64,
    /// Parsing them, selecting, sampling, filtering: queuing the scorers' work.
    pub select: AtomicU64,
    /// Looking up what an earlier pass already scored.
    pub claims: AtomicU64,
    /// Running the scorers.
    pub score: AtomicU64,
    /// Waiting for the data writer's connection (ingest holds it meanwhile).
    pub lock: AtomicU64,
    /// Building the rows to write before the transaction: scorer spans, merges.
    pub build: AtomicU64,
    /// In the transaction: claims, retries, checking the merges' versions, writing.
    pub apply: AtomicU64,
    /// Committing.
    pub commit: AtomicU64,
    /// Pausing to give way to ingest.
    pub paused: AtomicU64,
    /// Row versions read (heads).
    pub rows: AtomicU64,
}

impl Timings {
    fn add(counter: &AtomicU64, since: Instant) -> Instant {
        let now = Instant::now();
        counter.fetch_add(u64::try_from((now - since).as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        now
    }

    /// `name: milliseconds` per phase, and the total.
    pub fn summary(&self) -> String {
        let phases = [
            ("heads", &self.heads),
            ("versions", &self.versions),
            ("select", &self.select),
            ("claims", &self.claims),
            ("score", &self.score),
            ("lock", &self.lock),
            ("build", &self.build),
            ("apply", &self.apply),
            ("commit", &self.commit),
        ];
        let ms = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 / 1000.0;
        // Waiting for the writer is not work.
        let total: f64 = phases.iter().filter(|(n, _)| *n != "lock").map(|(_, c)| ms(c)).sum();
        let rows = self.rows.load(Ordering::Relaxed).max(1) as f64;
        let mut out: Vec<String> = phases.iter().map(|(n, c)| format!("{n} {:.0} ms", ms(c))).collect();
        out.push(format!("working {total:.0} ms ({:.1} us a row version read)", total * 1000.0 / rows));
        out.push(format!("paused {:.0} ms", ms(&self.paused)));
        out.join(", ")
    }
}

/// The online-scoring worker.
pub struct Worker {
    state: AppState,
    permit: Permit,
    holder: String,
    opts: Options,
    /// The transactions this worker wrote scores at (the newest ones): the row
    /// versions they hold are its own, not new spans, and are passed over.
    own: std::sync::Mutex<std::collections::BTreeSet<XactId>>,
    /// The projects whose lease this worker holds, and until when.
    leases: std::sync::Mutex<HashMap<Uuid, i64>>,
    /// When the worker last looked at the data writer's load, and the writer's
    /// busy time then (microseconds).
    load_mark: std::sync::Mutex<(Instant, u64)>,
    /// Since when each project's scoring has been behind (its batches read full).
    behind: std::sync::Mutex<HashMap<Uuid, Instant>>,
    timings: Arc<Timings>,
}

/// How many of its own write transactions a worker remembers.
const OWN_WRITES: usize = 100_000;
/// The most of its own write transactions a batch's query leaves out.
const OWN_SKIPPED: usize = 500;
/// How often a pass that goes on records its cursor.
const CURSOR_EVERY: Duration = Duration::from_secs(2);
/// The longest a worker pauses to give way to ingest after one batch.
const MAX_PAUSE: Duration = Duration::from_secs(5);

impl Worker {
    /// A worker acting with the system's `permit`.
    pub fn new(state: AppState, permit: Permit, opts: Options) -> Worker {
        let busy = state.ingest_load().totals().0;
        Worker {
            state,
            permit,
            holder: format!("scoring-{}", Uuid::new_v4()),
            opts,
            own: Default::default(),
            leases: Default::default(),
            load_mark: std::sync::Mutex::new((Instant::now(), busy)),
            behind: Default::default(),
            timings: Default::default(),
        }
    }

    /// Where this worker's time went so far.
    pub fn timings(&self) -> Arc<Timings> {
        self.timings.clone()
    }

    /// Runs passes until the process ends: after each wake-up from ingest, and at
    /// least every `tick`.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let wake = self.state.scoring_wake().clone();
            loop {
                if let Err(e) = self.pass().await {
                    tracing::warn!(error = %e, "online scoring pass failed; will retry");
                }
                tokio::time::sleep(self.opts.min_interval).await;
                let _ = tokio::time::timeout(self.opts.tick, wake.notified()).await;
            }
        })
    }

    /// One pass over every project with active online rules.
    pub async fn pass(&self) -> ApiResult<PassReport> {
        let jobs = self.state.jobs(&self.permit);
        let mut by_project: BTreeMap<Uuid, Vec<Rule>> = BTreeMap::new();
        for a in jobs.all_admin(AdminKind::ProjectScore).await? {
            if let Some(r) = rule_of(&a) {
                by_project.entry(r.project.0).or_default().push(r);
            }
        }
        let mut report = PassReport::default();
        for (project, rules) in by_project {
            let known = self.state.index().snapshot().org_of(ObjectRef::new(ObjectType::Project, project));
            if known.is_none() {
                continue;
            }
            if !self.hold(project).await? {
                continue;
            }
            let outcome = self.project_pass(ProjectId(project), &rules, &mut report).await;
            if let Err(e) = outcome {
                tracing::warn!(project = %project, error = %e, "online scoring of a project failed");
            }
        }
        Ok(report)
    }

    /// Takes or keeps the lease on a project's scoring (`scoring:<project>`). A
    /// worker keeps the projects it holds while it lives, renewing a lease once half
    /// of it has run out (so a pass costs no lease write most of the time); another
    /// replica takes a project over when its holder's lease expires.
    async fn hold(&self, project: Uuid) -> ApiResult<bool> {
        let now = self.state.now();
        let until = self.leases.lock().ok().and_then(|l| l.get(&project).copied());
        if until.is_some_and(|u| u - now > self.opts.lease_micros / 2) {
            return Ok(true);
        }
        let expires = now + self.opts.lease_micros;
        let held =
            self.state.jobs(&self.permit).take_lease(&format!("scoring:{project}"), &self.holder, now, expires).await?;
        if let Ok(mut l) = self.leases.lock() {
            if held {
                l.insert(project, expires);
            } else {
                l.remove(&project);
            }
        }
        Ok(held)
    }

    /// Notes whether a project's scoring is behind: its last batch was read full.
    fn behind(&self, project: Uuid, full: bool) {
        if let Ok(mut b) = self.behind.lock() {
            if full {
                b.entry(project).or_insert_with(Instant::now);
            } else {
                b.remove(&project);
            }
        }
    }

    /// After a batch of a project's that took `work`: while ingest keeps the data
    /// writer busy (more than `busy_threshold` of the time since the last look),
    /// pauses so that the worker works at most `busy_duty` of the time. Ingest
    /// that is not busy is not held up by the worker anyway, so the worker then
    /// goes on at full speed; and so it does on a project it has been behind on
    /// for longer than `max_lag`, until it catches up.
    async fn give_way(&self, project: Uuid, work: Duration) {
        let duty = self.opts.busy_duty;
        if !(duty > 0.0 && duty < 1.0) {
            return;
        }
        let late = self.behind.lock().ok().and_then(|b| b.get(&project).copied());
        if late.is_some_and(|since| since.elapsed() > self.opts.max_lag) {
            return;
        }
        let busy = self.state.ingest_load().totals().0;
        let now = Instant::now();
        let fraction = match self.load_mark.lock() {
            Ok(mut mark) => {
                let (then, was) = *mark;
                *mark = (now, busy);
                let span = now.saturating_duration_since(then).as_micros().max(1) as f64;
                busy.saturating_sub(was) as f64 / span
            }
            Err(_) => 0.0,
        };
        if fraction > self.opts.busy_threshold {
            let t = Instant::now();
            tokio::time::sleep(work.mul_f64((1.0 - duty) / duty).min(MAX_PAUSE)).await;
            Timings::add(&self.timings.paused, t);
        }
    }

    async fn project_pass(&self, project: ProjectId, rules: &[Rule], report: &mut PassReport) -> ApiResult<()> {
        let jobs = self.state.jobs(&self.permit);
        let started = self.state.now();
        let log = EventObject { kind: EventKind::ProjectLogs, id: project.0 };
        let org = rules.first().map(|r| r.org_id);
        let mut st = PassState::new(rules.len());
        self.retries(project, log, org, rules, &mut st).await?;
        let mut cursor = jobs.scoring_cursor(project.0).await?.unwrap_or((XactId(0), String::new()));
        let mut moved = false;
        let mut saved = Instant::now();
        for _ in 0..self.opts.max_batches {
            let work = Instant::now();
            // The worker's own writes since the cursor (its scores and scorer spans)
            // are not new spans: left out by the query (the first few hundred, more
            // than a batch can reach; any missed are found claimed already).
            let own: Vec<XactId> = match self.own.lock() {
                Ok(o) => o.range(cursor.0..).take(OWN_SKIPPED).copied().collect(),
                Err(_) => Vec::new(),
            };
            let batch = jobs.event_heads_since(log, &cursor, self.opts.batch, &own).await?;
            let t = Timings::add(&self.timings.heads, work);
            self.timings.rows.fetch_add(batch.read as u64, Ordering::Relaxed);
            let Some(next) = batch.last else {
                self.behind(project.0, false);
                break;
            };
            let full = batch.read == self.opts.batch;
            self.behind(project.0, full);
            // Most spans are sampled out: read the contents only of the versions
            // some rule may take (by the span id, stored apart), and parse only the
            // fields that decide it before the whole row.
            let mut wanted = Vec::new();
            for h in &batch.heads {
                st.counts.iter_mut().for_each(|c| c.spans += 1);
                if rules.iter().any(|r| r.may_take(h)) {
                    wanted.push((h.xact_id, h.row_id.clone()));
                }
            }
            let t = Timings::add(&self.timings.select, t);
            let events = if wanted.is_empty() { Vec::new() } else { jobs.event_versions(log, &wanted).await? };
            let t = Timings::add(&self.timings.versions, t);
            let mut tasks = Vec::new();
            for ev in events {
                self.select(project, org, log, rules, ev, &mut st, &mut tasks).await;
            }
            let t = Timings::add(&self.timings.select, t);
            // What an earlier pass scored (this span's earlier version, or the same
            // version before a crash) is not scored again, nor paid for again.
            if !tasks.is_empty() {
                let keys: Vec<Vec<u8>> = tasks.iter().map(|t| claim_key(rules[t.rule].id, &t.row_id)).collect();
                let mut unique = keys.clone();
                unique.sort_unstable();
                unique.dedup();
                let done: HashSet<Vec<u8>> = jobs.claimed_score_keys(&unique).await?.into_iter().collect();
                if !done.is_empty() {
                    let mut kept = Vec::with_capacity(tasks.len());
                    for (t, k) in tasks.into_iter().zip(keys) {
                        if done.contains(&k) {
                            st.counts[t.rule].already_scored += 1;
                        } else {
                            kept.push(t);
                        }
                    }
                    tasks = kept;
                }
            }
            let t = Timings::add(&self.timings.claims, t);
            let outcomes = self.run_tasks(project, org, &tasks, &mut st.providers).await;
            Timings::add(&self.timings.score, t);
            self.write(project, log, rules, &tasks, &outcomes, &mut st).await?;
            cursor = next;
            moved = true;
            // A long pass (a backlog, or one that gives way to busy ingest) also
            // records how far it got every few seconds, so that a restart or another
            // replica resumes near there and the cursor says how far behind it is.
            if saved.elapsed() >= CURSOR_EVERY {
                jobs.set_scoring_cursor(project.0, &cursor, self.state.now()).await?;
                saved = Instant::now();
                moved = false;
            }
            if !self.hold(project.0).await? {
                break;
            }
            self.give_way(project.0, work.elapsed()).await;
            if !full {
                break;
            }
        }
        // At the end of a pass (and every few seconds of a long one): a crash before
        // this re-reads the spans read since, whose claims keep them from being
        // scored (or paid for) twice.
        if moved {
            jobs.set_scoring_cursor(project.0, &cursor, self.state.now()).await?;
        }
        let finished = self.state.now();
        for (i, rule) in rules.iter().enumerate() {
            let c = st.counts[i].clone();
            if c.spans == 0 && c.errors == 0 && c.retried == 0 {
                continue;
            }
            let err = st.first_error[i].clone().map(|e| {
                if c.errors > 1 {
                    format!("{e} (and {} more errors)", c.errors - 1)
                } else {
                    e
                }
            });
            let mut details = serde_json::to_value(&c).unwrap_or(Value::Null);
            details["cursor"] = json!(cursor.0.to_string());
            let run = RunRecord {
                id: Uuid::now_v7(),
                automation_id: rule.id,
                org_id: rule.org_id,
                started,
                finished: Some(finished),
                status: if c.errors > 0 { "error" } else { "ok" }.into(),
                count: i64::try_from(c.scored).unwrap_or(i64::MAX),
                error: err,
                details: Some(details),
            };
            jobs.record_run(&run).await?;
            report.runs.push(run);
            report.rules.insert(rule.id, c);
        }
        Ok(())
    }

    /// A row version as `fetch` answers it (with the log's ids), if it is an object.
    fn row(
        log: EventObject,
        org: Option<OrgId>,
        project: ProjectId,
        ev: RawEvent,
        data: Option<Value>,
    ) -> Option<Map<String, Value>> {
        let data = match data {
            Some(v) => v,
            None => serde_json::from_str(&ev.data).ok()?,
        };
        let stored = StoredEvent { row_id: ev.row_id, xact_id: ev.xact_id, project_id: project, deleted: false, data };
        match event_json(log, org.map(|o| o.0), stored) {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// The scorers' arguments: the span's `input`, `output`, `expected`, `metadata`.
    fn vars(row: &Map<String, Value>) -> Value {
        json!({
            "input": row.get("input").cloned().unwrap_or(Value::Null),
            "output": row.get("output").cloned().unwrap_or(Value::Null),
            "expected": row.get("expected").cloned().unwrap_or(Value::Null),
            "metadata": row.get("metadata").cloned().unwrap_or(Value::Null),
        })
    }

    /// A scorer resolved for this pass.
    async fn resolved(&self, project: ProjectId, org: Option<OrgId>, st: &mut PassState, s: &ScorerRef) -> Resolved {
        if !st.resolved.contains_key(s) {
            let r = self.resolve(project, org, s).await;
            st.resolved.insert(s.clone(), r);
        }
        st.resolved.get(s).cloned().unwrap_or(Resolved::Broken("unresolved".into()))
    }

    /// Decides which rules take a row version (read in full) and queues their
    /// scorers' work on it.
    #[allow(clippy::too_many_arguments)]
    async fn select(
        &self,
        project: ProjectId,
        org: Option<OrgId>,
        log: EventObject,
        rules: &[Rule],
        ev: RawEvent,
        st: &mut PassState,
        tasks: &mut Vec<Task>,
    ) {
        let mut whole: Option<Value> = None;
        let head = match serde_json::from_str::<Head>(&ev.data) {
            Ok(h) => h,
            Err(_) => match serde_json::from_str::<Value>(&ev.data) {
                Ok(Value::Object(m)) => {
                    let h = Head::of(&m);
                    whole = Some(Value::Object(m));
                    h
                }
                _ => return,
            },
        };
        if head.comment.is_some() || head.is_scorer_span() || !head.complete() {
            return;
        }
        let row_id = ev.row_id.clone();
        let span_id = head.span_id.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| row_id.clone());
        let created = head.created.as_deref().and_then(parse_time);
        let oldest = self.state.now() - i64::try_from(self.opts.max_span_age.as_micros()).unwrap_or(i64::MAX);
        let name = head.span_attributes.as_ref().and_then(|a| a.name.as_deref());
        let mut picked = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if created.is_some_and(|c| c < rule.created || c < oldest) {
                continue;
            }
            let chosen = (rule.root && head.is_root()) || name.is_some_and(|n| rule.names.iter().any(|x| x == n));
            if chosen && sampled(rule.id, &span_id, rule.rate) {
                st.counts[i].sampled += 1;
                picked.push(i);
            }
        }
        if picked.is_empty() {
            return;
        }
        let base = Arc::new((ev.xact_id, ev.data.clone()));
        let Some(row) = Self::row(log, org, project, ev, whole) else { return };
        let root_span_id = row.get("root_span_id").and_then(Value::as_str).unwrap_or(&span_id).to_owned();
        let mut vars: Option<Arc<Value>> = None;
        for i in picked {
            let rule = &rules[i];
            if let Some(msg) = &rule.unsupported {
                st.error(i, || msg.clone());
                continue;
            }
            match &rule.filter {
                Some(Err(e)) => {
                    st.error(i, || format!("`btql_filter` does not parse: {e}"));
                    continue;
                }
                Some(Ok(f)) if !castellan_btql::eval::test(f, &row) => continue,
                _ => {}
            }
            st.counts[i].matched += 1;
            let vars = vars.get_or_insert_with(|| Arc::new(Self::vars(&row))).clone();
            for s in &rule.scorers {
                let resolved = self.resolved(project, org, st, s).await;
                tasks.push(Task {
                    rule: i,
                    row_id: row_id.clone(),
                    span_id: span_id.clone(),
                    root_span_id: root_span_id.clone(),
                    scorer: s.clone(),
                    resolved,
                    vars: vars.clone(),
                    base: base.clone(),
                    retry: None,
                });
            }
        }
    }

    /// Calls again the project's queued scorers that are due (on the span as it is
    /// now), before the new spans. A retry whose rule, scorer or span is gone is
    /// dropped.
    async fn retries(
        &self,
        project: ProjectId,
        log: EventObject,
        org: Option<OrgId>,
        rules: &[Rule],
        st: &mut PassState,
    ) -> ApiResult<()> {
        let jobs = self.state.jobs(&self.permit);
        let due = jobs.due_score_retries(project.0, self.state.now(), self.opts.batch).await?;
        if due.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<String> = due.iter().map(|r| r.row_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut latest: HashMap<String, (Map<String, Value>, Base)> = HashMap::new();
        for ev in jobs.latest_raw_events(log, &ids).await? {
            if ev.deleted {
                continue;
            }
            let (id, base) = (ev.row_id.clone(), Arc::new((ev.xact_id, ev.data.clone())));
            if let Some(row) = Self::row(log, org, project, ev, None) {
                latest.insert(id, (row, base));
            }
        }
        let mut tasks = Vec::new();
        let mut dropped = Vec::new();
        for r in due {
            let rule = rules.iter().position(|x| x.id == r.rule_id);
            let scorer = ScorerRef::parse(&r.scorer).filter(|s| rule.is_some_and(|i| rules[i].scorers.contains(s)));
            let (Some(i), Some(scorer), Some((row, base))) = (rule, scorer, latest.get(&r.row_id)) else {
                dropped.push(r);
                continue;
            };
            let span_id = row.get("span_id").and_then(Value::as_str).unwrap_or(&r.row_id).to_owned();
            let resolved = self.resolved(project, org, st, &scorer).await;
            tasks.push(Task {
                rule: i,
                row_id: r.row_id.clone(),
                root_span_id: row.get("root_span_id").and_then(Value::as_str).unwrap_or(&span_id).to_owned(),
                span_id,
                scorer,
                resolved,
                vars: Arc::new(Self::vars(row)),
                base: base.clone(),
                retry: Some(r),
            });
        }
        if !dropped.is_empty() {
            let mut tx = self.state.data_writer().begin().await?;
            for r in &dropped {
                tx.take_score_retry(r.rule_id, &r.row_id, &r.scorer).await?;
            }
            tx.commit().await.map_err(ApiError::from)?;
        }
        let outcomes = self.run_tasks(project, org, &tasks, &mut st.providers).await;
        self.write(project, log, rules, &tasks, &outcomes, st).await
    }

    /// Finds what a scorer reference names.
    async fn resolve(&self, project: ProjectId, org: Option<OrgId>, s: &ScorerRef) -> Resolved {
        match s {
            ScorerRef::Global(n) if builtin::known(n) => Resolved::Builtin(n.clone()),
            ScorerRef::Global(n) => Resolved::Broken(format!(
                "global scorer `{n}` is not served here (built-in scorers: {})",
                builtin::NAMES.join(", ")
            )),
            ScorerRef::Function { id, version } => match self.load_function(project, org, id, version.as_deref()).await
            {
                Ok(j) => Resolved::Judge(Arc::new(j)),
                Err(e) => Resolved::Broken(e),
            },
        }
    }

    async fn load_function(
        &self,
        project: ProjectId,
        org: Option<OrgId>,
        id: &str,
        version: Option<&str>,
    ) -> Result<judge::Judge, String> {
        let mut tx = self.state.read(&self.permit).await.map_err(|e| e.to_string())?;
        let found = match Uuid::parse_str(id) {
            Ok(uuid) => match version.and_then(XactId::parse) {
                Some(v) => tx.get_object_version(uuid, v).await,
                None => tx.get_object(uuid).await,
            },
            Err(_) => tx.find_object_by_slug(project, id).await,
        }
        .map_err(|e| e.to_string())?;
        let o = found
            .filter(|o| Some(o.org_id) == org && matches!(o.kind, ObjectKind::Prompt | ObjectKind::Function))
            .ok_or_else(|| format!("scorer function `{id}` does not exist in this organization"))?;
        let d: crate::dataplane::objects::FunctionData = crate::dataplane::objects::fields(&o);
        let prompt_data = d.prompt_data.unwrap_or(Value::Null);
        judge::Judge::from_prompt(&o.name, &prompt_data)
    }

    /// The provider in force for a project that serves `model`.
    async fn provider(&self, project: ProjectId, org: Option<OrgId>, model: &str) -> Result<judge::Provider, String> {
        let org = org.ok_or("the project has no organization")?;
        let by_type = crate::routes::ai_secret::providers_in_force(
            &self.state,
            &self.permit,
            org,
            ObjectRef::new(ObjectType::Project, project.0),
            |_| true,
        )
        .await
        .map_err(|e| e.to_string())?;
        let chosen: BTreeMap<&String, &AdminRecord> =
            by_type.iter().filter_map(|(t, c)| c.first().map(|(_, _, a)| (t, a))).collect();
        let serves = |a: &AdminRecord| {
            let m = a.data.get("metadata");
            m.and_then(|m| m.get("models")).and_then(Value::as_array).is_some_and(|ms| ms.iter().any(|x| x == model))
                || m.and_then(|m| m.pointer("/customModels")).and_then(|c| c.get(model)).is_some()
        };
        let pick = chosen
            .iter()
            .find(|(_, a)| serves(a))
            .or_else(|| chosen.iter().find(|(t, _)| t.as_str() == "openai"))
            .or_else(|| if chosen.len() == 1 { chosen.iter().next() } else { None })
            .ok_or_else(|| format!("no AI provider in force for this project serves model `{model}`"))?;
        let (ptype, a) = (pick.0.as_str(), *pick.1);
        let api_base = a
            .data
            .pointer("/metadata/api_base")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| (ptype == "openai").then(|| "https://api.openai.com/v1".to_owned()))
            .ok_or_else(|| format!("AI provider `{}` has no `metadata.api_base`", a.name))?;
        let sealed = a.secret.as_ref().ok_or_else(|| format!("AI provider `{}` has no value", a.name))?;
        let sealer = self.state.sealer().map_err(|e| e.to_string())?;
        let key = sealer
            .open(crate::secrets::Binding::admin(a), sealed)
            .map_err(|_| format!("AI provider `{}`: its value does not open with this server's key", a.name))?;
        Ok(judge::Provider { api_base, key, name: a.name.clone() })
    }

    async fn run_tasks(
        &self,
        project: ProjectId,
        org: Option<OrgId>,
        tasks: &[Task],
        providers: &mut HashMap<String, Ready>,
    ) -> Vec<Outcome> {
        let mut out: Vec<Option<Outcome>> = Vec::with_capacity(tasks.len());
        let mut calls = tokio::task::JoinSet::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(self.opts.concurrency.max(1)));
        for (i, t) in tasks.iter().enumerate() {
            match &t.resolved {
                Resolved::Builtin(name) => {
                    let output = t.vars.get("output").unwrap_or(&Value::Null);
                    out.push(Some(
                        builtin::score(name, output, t.vars.get("expected"))
                            .map(|s| s.map(|v| (v, Value::Null)))
                            .map_err(Failure::lasting),
                    ));
                }
                Resolved::Broken(e) => out.push(Some(Err(Failure::lasting(e.clone())))),
                Resolved::Judge(j) => {
                    if !providers.contains_key(&j.model) {
                        let ready = match self.provider(project, org, &j.model).await {
                            Ok(p) => super::http_client(&self.state, &p.api_base).await.map(|c| (Arc::new(p), c)),
                            Err(e) => Err(e),
                        };
                        providers.insert(j.model.clone(), ready);
                    }
                    match providers.get(&j.model) {
                        Some(Ok((p, http))) => {
                            let (j, p, http, limit, opts) =
                                (j.clone(), p.clone(), http.clone(), limit.clone(), self.opts.clone());
                            let body = j.request(&t.vars);
                            calls.spawn(async move {
                                let _slot = limit.acquire_owned().await;
                                (i, judge_with_retries(&http, &j, &p, &body, &opts).await)
                            });
                            out.push(None);
                        }
                        Some(Err(e)) => out.push(Some(Err(Failure::lasting(e.clone())))),
                        None => out.push(Some(Err(Failure::lasting("no provider".into())))),
                    }
                }
            }
        }
        while let Some(done) = calls.join_next().await {
            if let Ok((i, r)) = done {
                out[i] = Some(r.map(Some));
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Failure::lasting("the scorer's call was lost".into()))))
            .collect()
    }

    /// Writes what `tasks` came to, in one transaction: each new span's claim (per
    /// rule), the scores (merged onto the spans, with the scorer spans), the failed
    /// scorers queued for another round, and the retries taken off the queue.
    async fn write(
        &self,
        project: ProjectId,
        log: EventObject,
        rules: &[Rule],
        tasks: &[Task],
        outcomes: &[Outcome],
        st: &mut PassState,
    ) -> ApiResult<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let now_micros = self.state.now();
        let now = format_time(now_micros);
        // Built before the transaction, so that the data writer (which ingest waits
        // for) is held only to write: each score's scorer span, and each scored
        // span's merge onto the version the pass read, as if every claim succeeds
        // (checked in the transaction: a span whose scores or newest version differ
        // by then is merged there instead).
        let mut spans: Vec<Option<EventWrite>> = Vec::with_capacity(tasks.len());
        let mut expected: BTreeMap<&str, (Map<String, Value>, &Base)> = BTreeMap::new();
        // Each span's arguments as JSON text, once for all its scorer spans.
        let mut inputs: HashMap<usize, Arc<str>> = HashMap::new();
        let mut mixed: HashSet<&str> = HashSet::new();
        for (t, o) in tasks.iter().zip(outcomes) {
            let rule = &rules[t.rule];
            let Ok(Some((score, meta))) = o else {
                spans.push(None);
                continue;
            };
            let name = t.resolved.name(&t.scorer);
            let e = expected.entry(&t.row_id).or_insert_with(|| (Map::new(), &t.base));
            if e.1 .0 != t.base.0 {
                mixed.insert(&t.row_id);
            }
            e.0.insert(name.clone(), json!(score));
            spans.push((!rule.skip_logging).then(|| {
                let input = inputs
                    .entry(Arc::as_ptr(&t.vars) as usize)
                    .or_insert_with(|| Arc::from(serde_json::to_string(&*t.vars).unwrap_or_default()))
                    .clone();
                ScorerSpan { name: &name, score: *score, meta, rule: rule.id, input: &input }
                    .write(log, project, t, now_micros, &now)
            }));
        }
        let mut merged: HashMap<&str, Premerged> = HashMap::new();
        for (row_id, (s, base)) in expected {
            if mixed.contains(row_id) {
                continue;
            }
            let mut body = Map::new();
            body.insert("scores".into(), Value::Object(s.clone()));
            let (row, count) = merged_system_row(log, project, row_id.to_owned(), &base.1, body, &now)?;
            merged.insert(row_id, Premerged { scores: s, base: base.0, row, count });
        }
        let started = Timings::add(&self.timings.build, started);
        // Its commit does not wait for the disk: the claims go with the scores, so
        // a power cut that loses them loses both, and the cursor that moves past
        // these spans is committed (synchronously) after, making them durable first
        // (the write-ahead log is written in order): lost, they are scored again,
        // never twice.
        let mut tx = self.state.data_writer().begin_relaxed().await?;
        let started = Timings::add(&self.timings.lock, started);
        // New spans: one claim per rule and span, whatever its scorers came to (a
        // scorer that failed for good is not called again either).
        let mut keys: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
        for t in tasks.iter().filter(|t| t.retry.is_none()) {
            keys.entry(t.rule).or_default().push(claim_key(rules[t.rule].id, &t.row_id));
        }
        let mut claimed: HashSet<(usize, Vec<u8>)> = HashSet::new();
        for (rule, mut list) in keys {
            list.sort_unstable();
            list.dedup();
            for k in tx.claim_score_keys(rules[rule].id, &list, now_micros).await? {
                claimed.insert((rule, k));
            }
        }
        let mut scores: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        let mut built = Vec::new();
        for ((t, o), span) in tasks.iter().zip(outcomes).zip(spans.iter_mut()) {
            let rule = &rules[t.rule];
            match &t.retry {
                None if !claimed.contains(&(t.rule, claim_key(rule.id, &t.row_id))) => {
                    st.counts[t.rule].already_scored += 1;
                    continue;
                }
                None => {}
                // Only whoever takes a retry off the queue writes its outcome.
                Some(r) if !tx.take_score_retry(r.rule_id, &r.row_id, &r.scorer).await? => continue,
                Some(_) => st.counts[t.rule].retried += 1,
            }
            let name = t.resolved.name(&t.scorer);
            match o {
                Ok(Some((score, _))) => {
                    st.counts[t.rule].scored += 1;
                    scores.entry(t.row_id.clone()).or_default().insert(name.clone(), json!(score));
                    if let Some(w) = span.take() {
                        built.push((w, 1));
                    }
                }
                Ok(None) => st.counts[t.rule].skipped += 1,
                Err(f) => {
                    let on = format!("scorer `{name}` on span `{}`", t.span_id);
                    // Rounds of calls failed so far, this one included.
                    let rounds = t.retry.as_ref().map_or(1, |r| r.rounds + 1);
                    let max = i64::from(self.opts.rounds.max(1));
                    if f.transient && rounds < max {
                        let wait = self.opts.requeue_backoff.saturating_mul(5u32.saturating_pow((rounds - 1) as u32));
                        let retry = ScoreRetry {
                            rule_id: rule.id,
                            row_id: t.row_id.clone(),
                            scorer: t.scorer.key(),
                            project_id: project.0,
                            rounds,
                            next_at: now_micros + i64::try_from(wait.as_micros()).unwrap_or(i64::MAX / 2),
                            last_error: f.message.clone(),
                            created: t.retry.as_ref().map_or(now_micros, |r| r.created),
                        };
                        tx.put_score_retry(&retry).await?;
                        st.counts[t.rule].requeued += 1;
                        st.error(t.rule, || {
                            format!(
                                "{on}: {}; queued to be called again in {} s (round {rounds} of {max})",
                                f.message,
                                wait.as_secs()
                            )
                        });
                    } else if f.transient {
                        st.counts[t.rule].gave_up += 1;
                        st.error(t.rule, || format!("{on}: gave up after {rounds} rounds of calls: {}", f.message));
                    } else {
                        st.error(t.rule, || format!("{on}: {}", f.message));
                    }
                }
            }
        }
        // Merges built before the transaction stand if they hold the scores written
        // and the version they were built on is still the newest.
        let ready: Vec<String> = scores
            .iter()
            .filter(|(r, s)| merged.get(r.as_str()).is_some_and(|m| m.scores == **s))
            .map(|(r, _)| r.clone())
            .collect();
        let newest: HashMap<String, XactId> =
            if ready.is_empty() { HashMap::new() } else { tx.latest_xacts(log, &ready).await?.into_iter().collect() };
        let mut out_rows = Vec::new();
        for (row_id, s) in scores {
            match merged.remove(row_id.as_str()) {
                Some(m) if newest.get(&row_id) == Some(&m.base) => built.push((m.row, m.count)),
                _ => {
                    let mut body = Map::new();
                    body.insert("scores".into(), Value::Object(s));
                    out_rows.push(Row { log, id: row_id, op: Op::Merge { body, paths: Vec::new() } });
                }
            }
        }
        let org = self
            .state
            .index()
            .snapshot()
            .org_of(ObjectRef::new(ObjectType::Project, project.0))
            .map(OrgId)
            .ok_or_else(|| ApiError::Internal("a scored project has no organization".into()))?;
        let prepared = prepare_system(out_rows, built, project, org, &now)?;
        let t = started;
        let mut meter = crate::usage::Meter::new(&self.state);
        let written = if prepared.is_empty() {
            None
        } else {
            // A hard plan limit refuses online scores too: nothing is written and the
            // claims roll back with them, so the spans are scored once it allows.
            Some(
                apply(&mut *tx, &prepared, &mut meter)
                    .await?
                    .map_err(|refusal| ApiError::bad_request(format!("online scores not written: {refusal}")))?,
            )
        };
        let flushed = meter.flush(&mut *tx).await?;
        let t = Timings::add(&self.timings.apply, t);
        tx.commit().await.map_err(ApiError::from)?;
        Timings::add(&self.timings.commit, t);
        crate::usage::crossed(&self.state, &flushed.crossings).await;
        if let (Some(x), Ok(mut own)) = (written, self.own.lock()) {
            own.insert(x);
            while own.len() > OWN_WRITES {
                own.pop_first();
            }
        }
        Ok(())
    }
}

/// Calls a judge, retrying what may pass on a second try with exponential backoff.
async fn judge_with_retries(
    http: &reqwest::Client,
    j: &judge::Judge,
    p: &judge::Provider,
    body: &Value,
    opts: &Options,
) -> Result<(f64, Value), Failure> {
    let attempts = opts.attempts.max(1);
    let mut wait = opts.backoff;
    for attempt in 1..=attempts {
        let result = match judge::call(http, p, body, opts.timeout).await {
            Ok(answer) => j.parse(&answer).map_err(|e| judge::CallError { message: e, retryable: true }),
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => return Ok(v),
            Err(e) if !e.retryable || attempt == attempts => {
                let message = format!("{} (after {attempt} attempt{})", e.message, if attempt == 1 { "" } else { "s" });
                return Err(Failure { message, transient: e.retryable });
            }
            Err(_) => {}
        }
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
    Err(Failure::lasting("no attempt was made".into()))
}

/// The scorer's own span, a child of the scored span, as Braintrust logs scorer
/// spans (`type: score`, `purpose: scorer`, input the scorer's arguments, output
/// its score). Its id is time-ordered (a UUIDv7), so the spans a pass writes land
/// together in the log's index; the claim written with it keeps it from being
/// written twice.
struct ScorerSpan<'a> {
    name: &'a str,
    score: f64,
    meta: &'a Value,
    rule: Uuid,
    /// The scorer's arguments as JSON text.
    input: &'a str,
}

impl ScorerSpan<'_> {
    /// The row, serialized here: the arguments are the scored span's contents, the
    /// same for each of its scorers, and are serialized once for all of them.
    fn write(&self, log: EventObject, project: ProjectId, t: &Task, now: i64, created: &str) -> EventWrite {
        let id = Uuid::now_v7().to_string();
        let text = |v: &str| serde_json::to_string(v).unwrap_or_default();
        let (name, score) = (text(self.name), serde_json::to_string(&self.score).unwrap_or_default());
        let secs = serde_json::to_string(&(now as f64 / 1e6)).unwrap_or_default();
        let mut output = format!(r#"{{"score":{score}"#);
        if !self.meta.is_null() {
            output.push_str(r#","metadata":"#);
            output.push_str(&serde_json::to_string(self.meta).unwrap_or_default());
        }
        output.push('}');
        let data = format!(
            r#"{{"created":{created},"input":{input},"metadata":{{"online_scoring_rule_id":"{rule}"}},"metrics":{{"end":{secs},"start":{secs}}},"output":{output},"root_span_id":{root},"scores":{{{name}:{score}}},"span_attributes":{{"name":{name},"purpose":"scorer","type":"score"}},"span_id":"{id}","span_parents":[{parent}]}}"#,
            created = text(created),
            input = self.input,
            rule = self.rule,
            root = text(&t.root_span_id),
            parent = text(&t.span_id),
        );
        EventWrite {
            object: log,
            project_id: project,
            root_span_id: Some(t.root_span_id.clone()),
            span_id: Some(id.clone()),
            is_root: false,
            deleted: false,
            is_comment: false,
            data,
            row_id: id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(vars: Value) -> Task {
        Task {
            rule: 0,
            row_id: "row-1".into(),
            span_id: "span \"1\"".into(),
            root_span_id: "root\n1".into(),
            scorer: ScorerRef::Global("Levenshtein".into()),
            resolved: Resolved::Builtin("Levenshtein".into()),
            vars: Arc::new(vars),
            base: Arc::new((XactId(1), "{}".into())),
            retry: None,
        }
    }

    #[test]
    fn scorer_spans_are_the_json_braintrust_logs() {
        let log = EventObject { kind: EventKind::ProjectLogs, id: Uuid::from_u128(9) };
        let vars = json!({"input": {"q": "é \"x\""}, "output": "a\\b", "expected": null, "metadata": {"k": [1, 2.5]}});
        let t = task(vars.clone());
        let rule = Uuid::from_u128(5);
        let input = serde_json::to_string(&vars).unwrap();
        let meta = json!({"choice": "A", "rationale": "line\nbreak"});
        for (meta, score) in [(Value::Null, 0.25), (meta, 1.0)] {
            let span = ScorerSpan { name: "Lev \"en\"", score, meta: &meta, rule, input: &input };
            let w = span.write(log, ProjectId(Uuid::from_u128(3)), &t, 1_700_000_000_500_000, "2023-11-14T22:13:20Z");
            let got: Value = serde_json::from_str(&w.data).expect("valid JSON");
            let mut output = json!({"score": score});
            if !meta.is_null() {
                output["metadata"] = meta.clone();
            }
            let want = json!({
                "created": "2023-11-14T22:13:20Z",
                "span_id": w.row_id,
                "root_span_id": "root\n1",
                "span_parents": ["span \"1\""],
                "span_attributes": {"name": "Lev \"en\"", "type": "score", "purpose": "scorer"},
                "input": vars,
                "output": output,
                "scores": {"Lev \"en\"": score},
                "metadata": {"online_scoring_rule_id": rule.to_string()},
                "metrics": {"start": 1_700_000_000.5, "end": 1_700_000_000.5},
            });
            assert_eq!(got, want);
            assert_eq!(w.span_id.as_deref(), Some(w.row_id.as_str()));
            assert_eq!(w.root_span_id.as_deref(), Some("root\n1"));
            assert!(!w.is_root && !w.deleted && !w.is_comment);
        }
    }
}
