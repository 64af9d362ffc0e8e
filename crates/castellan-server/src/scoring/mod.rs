//! Online scoring: `project_score` rules of type `online` run on new project-log
//! spans by a worker inside `serve`, never in the ingest request path (ingest only
//! wakes it).
//!
//! Per project with active rules, under a lease (`scoring:<project>`, so one
//! replica at a time), the worker reads the row versions written after the
//! project's cursor (kept in the database, so a restart or another replica resumes
//! there) and, for each rule: selects spans (`apply_to_root_span`,
//! `apply_to_span_names`; with neither, root spans), samples them deterministically
//! (a hash of rule id and span id against `sampling_rate`), evaluates
//! `btql_filter` in memory, runs each scorer, and writes the scores back onto the
//! span as Braintrust does: a merge of `scores` on the same row, plus, unless
//! `skip_logging`, the scorer's own span as a child (`span_attributes: {name, type:
//! "score", purpose: "scorer"}`, the scorer's input and output, its score).
//!
//! At least once, never twice: each (rule, span, scorer) is claimed in
//! `online_score_claims` in the same transaction as its score, and only claimed
//! scores are written; the cursor moves after that commit, so a crash in between
//! re-reads the spans and writes nothing again. Spans logged before a rule was
//! created, spans still open (`metrics.start` without `metrics.end`) and scorer
//! spans are never scored; a span is scored on its first complete version.
//!
//! Each pass that saw spans records a run per rule (`automation_runs`: spans seen,
//! selected, sampled, scored, errors), readable at `GET
//! /v1/project_score/{id}/runs`.

pub mod builtin;
pub mod judge;

use crate::access::{AppState, Permit};
use crate::dataplane::ingest::{apply, prepare_system};
use crate::dataplane::rows::{self, event_json, Op, Row};
use crate::error::{ApiError, ApiResult};
use castellan_api_types::{format_time, parse_time};
use castellan_btql::Expr;
use castellan_core::{ObjectRef, ObjectType, OrgId, ProjectId};
use castellan_store::{AdminKind, AdminRecord, EventKind, EventObject, ObjectKind, RunRecord, StoredEvent, XactId};
use serde_json::{json, Map, Value};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
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
    /// Calls to a provider per score (the first and the retries).
    pub attempts: u32,
    /// The first retry's wait; each next one waits twice as long.
    pub backoff: Duration,
    /// How long one provider call may take.
    pub timeout: Duration,
    /// Provider calls in flight at once.
    pub concurrency: usize,
    /// How long a project's lease lasts without renewal, microseconds.
    pub lease_micros: i64,
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

/// A scorer as a rule names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum ScorerRef {
    Global(String),
    Function { id: String, version: Option<String> },
}

impl ScorerRef {
    fn key(&self) -> String {
        match self {
            ScorerRef::Global(n) => format!("global:{n}"),
            ScorerRef::Function { id, version } => format!("function:{id}@{}", version.as_deref().unwrap_or("")),
        }
    }
}

/// An online rule, read from its `project_score`.
#[derive(Debug, Clone)]
struct Rule {
    id: Uuid,
    org_id: OrgId,
    project: ProjectId,
    created: i64,
    rate: f64,
    scorers: Vec<ScorerRef>,
    filter: Option<Result<Expr, String>>,
    root: bool,
    names: Vec<String>,
    skip_logging: bool,
    /// Why the rule cannot run here (a scope this server does not run).
    unsupported: Option<String>,
}

fn rule_of(a: &AdminRecord) -> Option<Rule> {
    if a.data.get("score_type").and_then(Value::as_str) != Some("online") {
        return None;
    }
    let o = a.data.pointer("/config/online")?;
    if o.get("status").and_then(Value::as_str) == Some("paused") {
        return None;
    }
    let scorers = o
        .get("scorers")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|s| match s.get("type").and_then(Value::as_str) {
                    Some("global") => Some(ScorerRef::Global(s.get("name")?.as_str()?.to_owned())),
                    Some("function") => Some(ScorerRef::Function {
                        id: s.get("id")?.as_str()?.to_owned(),
                        version: s.get("version").and_then(Value::as_str).map(str::to_owned),
                    }),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<String> = o
        .get("apply_to_span_names")
        .and_then(Value::as_array)
        .map(|n| n.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let root = o.get("apply_to_root_span").and_then(Value::as_bool).unwrap_or(names.is_empty());
    let unsupported = match o.pointer("/scope/type").and_then(Value::as_str) {
        None | Some("span") => None,
        Some(t) => Some(format!("scope `{t}` is not run by this server (only `span`)")),
    };
    Some(Rule {
        id: a.id,
        org_id: a.org_id,
        project: ProjectId(a.scope.object_id),
        created: a.created,
        rate: o.get("sampling_rate").and_then(Value::as_f64).unwrap_or(0.0),
        scorers,
        filter: o.get("btql_filter").and_then(Value::as_str).filter(|f| !f.trim().is_empty()).map(parse_filter),
        root,
        names,
        skip_logging: o.get("skip_logging").and_then(Value::as_bool).unwrap_or(false),
        unsupported,
    })
}

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
    /// Complete spans read.
    pub spans: u64,
    /// …of which the rule applies to (root or named).
    pub selected: u64,
    /// …in its sample and passing its filter.
    pub sampled: u64,
    /// Scores written.
    pub scored: u64,
    /// Scores already written by an earlier pass (not written again).
    pub already_scored: u64,
    /// Scorers that found nothing to score (e.g. no `expected`).
    pub skipped: u64,
    /// Scorers that failed.
    pub errors: u64,
}

/// What one pass did, per rule.
#[derive(Debug, Default, Clone)]
pub struct PassReport {
    /// Counts by rule id.
    pub rules: BTreeMap<Uuid, Counts>,
    /// The runs recorded.
    pub runs: Vec<RunRecord>,
}

/// One scorer's work on one span.
struct Task {
    rule: usize,
    row_id: String,
    span_id: String,
    root_span_id: String,
    scorer: ScorerRef,
    resolved: Resolved,
    vars: Value,
}

/// Its outcome.
type Outcome = Result<Option<(f64, Value)>, String>;

/// A provider ready to call: where, with which key, through which client.
type Ready = Result<(Arc<judge::Provider>, reqwest::Client), String>;

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
}

/// How many of its own write transactions a worker remembers.
const OWN_WRITES: usize = 100_000;

impl Worker {
    /// A worker acting with the system's `permit`.
    pub fn new(state: AppState, permit: Permit, opts: Options) -> Worker {
        Worker {
            state,
            permit,
            holder: format!("scoring-{}", Uuid::new_v4()),
            opts,
            own: Default::default(),
            leases: Default::default(),
        }
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

    async fn project_pass(&self, project: ProjectId, rules: &[Rule], report: &mut PassReport) -> ApiResult<()> {
        let jobs = self.state.jobs(&self.permit);
        let started = self.state.now();
        let log = EventObject { kind: EventKind::ProjectLogs, id: project.0 };
        let org = rules.first().map(|r| r.org_id);
        let mut cursor = jobs.scoring_cursor(project.0).await?.unwrap_or((XactId(0), String::new()));
        let mut moved = false;
        let mut counts = vec![Counts::default(); rules.len()];
        let mut first_error: Vec<Option<String>> = vec![None; rules.len()];
        let mut resolved: HashMap<ScorerRef, Resolved> = HashMap::new();
        let mut providers: HashMap<String, Ready> = HashMap::new();
        for _ in 0..self.opts.max_batches {
            let events = jobs.events_since(log, &cursor, self.opts.batch).await?;
            let Some(last) = events.last() else { break };
            let next = (last.xact_id, last.row_id.clone());
            let full = events.len() == self.opts.batch;
            let mut tasks = Vec::new();
            let own: std::collections::HashSet<XactId> = match self.own.lock() {
                Ok(o) => events.iter().map(|e| e.xact_id).filter(|x| o.contains(x)).collect(),
                Err(_) => Default::default(),
            };
            for ev in events {
                if ev.deleted || own.contains(&ev.xact_id) {
                    continue;
                }
                // Most spans are not sampled: read only the fields that decide it,
                // and the whole row only for the spans some rule takes.
                let mut whole: Option<Value> = None;
                let head = match serde_json::from_str::<Head>(&ev.data) {
                    Ok(h) => h,
                    Err(_) => match serde_json::from_str::<Value>(&ev.data) {
                        Ok(Value::Object(m)) => {
                            let h = Head::of(&m);
                            whole = Some(Value::Object(m));
                            h
                        }
                        _ => continue,
                    },
                };
                if head.comment.is_some() || head.is_scorer_span() || !head.complete() {
                    continue;
                }
                let row_id = ev.row_id.clone();
                let span_id = head.span_id.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| row_id.clone());
                let created = head.created.as_deref().and_then(parse_time);
                let name = head.span_attributes.as_ref().and_then(|a| a.name.as_deref());
                let mut picked = Vec::new();
                for (i, rule) in rules.iter().enumerate() {
                    if created.is_some_and(|c| c < rule.created) {
                        continue;
                    }
                    let c = &mut counts[i];
                    c.spans += 1;
                    let chosen =
                        (rule.root && head.is_root()) || name.is_some_and(|n| rule.names.iter().any(|x| x == n));
                    if !chosen {
                        continue;
                    }
                    c.selected += 1;
                    if sampled(rule.id, &span_id, rule.rate) {
                        picked.push(i);
                    }
                }
                if picked.is_empty() {
                    continue;
                }
                let data = match whole {
                    Some(v) => v,
                    None => match serde_json::from_str(&ev.data) {
                        Ok(v) => v,
                        Err(_) => continue,
                    },
                };
                let stored = StoredEvent {
                    row_id: row_id.clone(),
                    xact_id: ev.xact_id,
                    project_id: project,
                    deleted: false,
                    data,
                };
                let Value::Object(row) = event_json(log, org.map(|o| o.0), stored) else { continue };
                let root_span_id = row.get("root_span_id").and_then(Value::as_str).unwrap_or(&span_id).to_owned();
                for i in picked {
                    let rule = &rules[i];
                    let c = &mut counts[i];
                    if let Some(msg) = &rule.unsupported {
                        c.errors += 1;
                        first_error[i].get_or_insert_with(|| msg.clone());
                        continue;
                    }
                    match &rule.filter {
                        Some(Err(e)) => {
                            c.errors += 1;
                            first_error[i].get_or_insert_with(|| format!("`btql_filter` does not parse: {e}"));
                            continue;
                        }
                        Some(Ok(f)) if !castellan_btql::eval::test(f, &row) => continue,
                        _ => {}
                    }
                    c.sampled += 1;
                    let vars = json!({
                        "input": row.get("input").cloned().unwrap_or(Value::Null),
                        "output": row.get("output").cloned().unwrap_or(Value::Null),
                        "expected": row.get("expected").cloned().unwrap_or(Value::Null),
                        "metadata": row.get("metadata").cloned().unwrap_or(Value::Null),
                    });
                    for s in &rule.scorers {
                        if !resolved.contains_key(s) {
                            let r = self.resolve(project, org, s).await;
                            resolved.insert(s.clone(), r);
                        }
                        let r = resolved.get(s).cloned().unwrap_or(Resolved::Broken("unresolved".into()));
                        tasks.push(Task {
                            rule: i,
                            row_id: row_id.clone(),
                            span_id: span_id.clone(),
                            root_span_id: root_span_id.clone(),
                            scorer: s.clone(),
                            resolved: r,
                            vars: vars.clone(),
                        });
                    }
                }
            }
            // What an earlier pass scored (this span's earlier version, or the same
            // version before a crash) is not scored again, nor paid for again.
            if !tasks.is_empty() {
                let keys: Vec<String> =
                    tasks.iter().map(|t| claim_key(rules[t.rule].id, &t.row_id, &t.scorer)).collect();
                let done: std::collections::HashSet<String> =
                    jobs.claimed_score_keys(&keys).await?.into_iter().collect();
                if !done.is_empty() {
                    let mut kept = Vec::with_capacity(tasks.len());
                    for (t, k) in tasks.into_iter().zip(keys) {
                        if done.contains(&k) {
                            counts[t.rule].already_scored += 1;
                        } else {
                            kept.push(t);
                        }
                    }
                    tasks = kept;
                }
            }
            let outcomes = self.run_tasks(project, org, &tasks, &mut providers).await;
            self.write(project, log, rules, &tasks, &outcomes, &mut counts, &mut first_error).await?;
            cursor = next;
            moved = true;
            if !self.hold(project.0).await? {
                break;
            }
            if !full {
                break;
            }
        }
        // Once per pass: a crash before this re-reads the pass's spans, whose scores
        // the claims keep from being written (or paid for) twice.
        if moved {
            jobs.set_scoring_cursor(project.0, &cursor, self.state.now()).await?;
        }
        let finished = self.state.now();
        for (i, rule) in rules.iter().enumerate() {
            let c = counts[i].clone();
            if c.spans == 0 && c.errors == 0 {
                continue;
            }
            let err = first_error[i].clone().map(|e| {
                if c.errors > 1 {
                    format!("{e} (and {} more errors)", c.errors - 1)
                } else {
                    e
                }
            });
            let run = RunRecord {
                id: Uuid::now_v7(),
                automation_id: rule.id,
                org_id: rule.org_id,
                started,
                finished: Some(finished),
                status: if c.errors > 0 { "error" } else { "ok" }.into(),
                count: i64::try_from(c.scored).unwrap_or(i64::MAX),
                error: err,
                details: Some(json!({
                    "spans": c.spans, "selected": c.selected, "sampled": c.sampled, "scored": c.scored,
                    "already_scored": c.already_scored, "skipped": c.skipped, "errors": c.errors,
                    "cursor": cursor.0.to_string(),
                })),
            };
            jobs.record_run(&run).await?;
            report.runs.push(run);
            report.rules.insert(rule.id, c);
        }
        Ok(())
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
                        builtin::score(name, output, t.vars.get("expected")).map(|s| s.map(|v| (v, Value::Null))),
                    ));
                }
                Resolved::Broken(e) => out.push(Some(Err(e.clone()))),
                Resolved::Judge(j) => {
                    if !providers.contains_key(&j.model) {
                        let ready = match self.provider(project, org, &j.model).await {
                            Ok(p) => http_client(&self.state, &p.api_base).await.map(|c| (Arc::new(p), c)),
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
                        Some(Err(e)) => out.push(Some(Err(e.clone()))),
                        None => out.push(Some(Err("no provider".into()))),
                    }
                }
            }
        }
        while let Some(done) = calls.join_next().await {
            if let Ok((i, r)) = done {
                out[i] = Some(r.map(Some));
            }
        }
        out.into_iter().map(|o| o.unwrap_or_else(|| Err("the scorer's call was lost".into()))).collect()
    }

    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        project: ProjectId,
        log: EventObject,
        rules: &[Rule],
        tasks: &[Task],
        outcomes: &[Outcome],
        counts: &mut [Counts],
        first_error: &mut [Option<String>],
    ) -> ApiResult<()> {
        let now_micros = self.state.now();
        let now = format_time(now_micros);
        // Keys per rule, of the scores to write.
        let mut wanted: BTreeMap<usize, Vec<(String, usize)>> = BTreeMap::new();
        for (k, (t, o)) in tasks.iter().zip(outcomes).enumerate() {
            match o {
                Ok(Some(_)) => {
                    let key = claim_key(rules[t.rule].id, &t.row_id, &t.scorer);
                    wanted.entry(t.rule).or_default().push((key, k));
                }
                Ok(None) => counts[t.rule].skipped += 1,
                Err(e) => {
                    counts[t.rule].errors += 1;
                    let name = t.resolved.name(&t.scorer);
                    first_error[t.rule].get_or_insert_with(|| format!("scorer `{name}` on span `{}`: {e}", t.span_id));
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let mut tx = self.state.data_writer().begin().await?;
        let mut scores: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        let mut out_rows = Vec::new();
        for (rule_ix, keys) in wanted {
            let rule = &rules[rule_ix];
            let list: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
            let claimed: std::collections::HashSet<String> =
                tx.claim_score_keys(rule.id, &list, now_micros).await?.into_iter().collect();
            for (key, k) in keys {
                if !claimed.contains(&key) {
                    counts[rule_ix].already_scored += 1;
                    continue;
                }
                let (t, Ok(Some((score, meta)))) = (&tasks[k], &outcomes[k]) else { continue };
                counts[rule_ix].scored += 1;
                let name = t.resolved.name(&t.scorer);
                scores.entry(t.row_id.clone()).or_default().insert(name.clone(), json!(score));
                if !rule.skip_logging {
                    out_rows.push(scorer_span(log, &key, t, &name, *score, meta, rule.id, now_micros));
                }
            }
        }
        for (row_id, s) in scores {
            let mut body = Map::new();
            body.insert("scores".into(), Value::Object(s));
            out_rows.push(Row { log, id: row_id, op: Op::Merge { body, paths: Vec::new() } });
        }
        let org = self
            .state
            .index()
            .snapshot()
            .org_of(ObjectRef::new(ObjectType::Project, project.0))
            .map(OrgId)
            .ok_or_else(|| ApiError::Internal("a scored project has no organization".into()))?;
        let prepared = prepare_system(out_rows, project, org, &now)?;
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
        tx.commit().await.map_err(ApiError::from)?;
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
) -> Result<(f64, Value), String> {
    let attempts = opts.attempts.max(1);
    let mut wait = opts.backoff;
    let mut last = String::new();
    for attempt in 1..=attempts {
        let result = match judge::call(http, p, body, opts.timeout).await {
            Ok(answer) => j.parse(&answer).map_err(|e| judge::CallError { message: e, retryable: true }),
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => return Ok(v),
            Err(e) => {
                last = e.message;
                if !e.retryable || attempt == attempts {
                    return Err(format!("{last} (after {attempt} attempt{})", if attempt == 1 { "" } else { "s" }));
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
    Err(last)
}

/// The idempotency key of one rule's scorer on one span.
fn claim_key(rule: Uuid, row_id: &str, scorer: &ScorerRef) -> String {
    hex::encode(sha2::Sha256::digest(format!("{rule}|{row_id}|{}", scorer.key()).as_bytes()))
}

/// The fields of a span that decide whether a rule takes it.
#[derive(Debug, Default, serde::Deserialize)]
struct Head {
    #[serde(default)]
    span_id: Option<String>,
    #[serde(default)]
    span_parents: Option<Vec<serde::de::IgnoredAny>>,
    #[serde(default)]
    span_attributes: Option<HeadAttributes>,
    #[serde(default)]
    metrics: Option<HeadMetrics>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    comment: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct HeadAttributes {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    purpose: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct HeadMetrics {
    #[serde(default)]
    start: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    end: Option<serde::de::IgnoredAny>,
}

impl Head {
    /// From a parsed row whose fields have unusual types (a number as a name…).
    fn of(row: &Map<String, Value>) -> Head {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let attrs = row.get("span_attributes");
        let metric =
            |k: &str| row.get("metrics").and_then(|m| m.get(k)).filter(|v| !v.is_null()).map(|_| serde::de::IgnoredAny);
        Head {
            span_id: text(row.get("span_id")),
            span_parents: (!rows::is_root(row)).then(|| vec![serde::de::IgnoredAny]),
            span_attributes: Some(HeadAttributes {
                name: text(attrs.and_then(|a| a.get("name"))),
                kind: text(attrs.and_then(|a| a.get("type"))),
                purpose: text(attrs.and_then(|a| a.get("purpose"))),
            }),
            metrics: Some(HeadMetrics { start: metric("start"), end: metric("end") }),
            created: text(row.get("created")),
            comment: row.get("comment").filter(|c| !c.is_null()).map(|_| serde::de::IgnoredAny),
        }
    }

    fn is_root(&self) -> bool {
        self.span_parents.as_ref().is_none_or(Vec::is_empty)
    }

    /// A span the scoring itself wrote (never scored in turn).
    fn is_scorer_span(&self) -> bool {
        self.span_attributes
            .as_ref()
            .is_some_and(|a| a.kind.as_deref() == Some("score") || a.purpose.as_deref() == Some("scorer"))
    }

    /// A span that has ended, or never said it started (a plain log row).
    fn complete(&self) -> bool {
        self.metrics.as_ref().is_none_or(|m| m.start.is_none() || m.end.is_some())
    }
}

/// The scorer's own span, a child of the scored span, as Braintrust logs scorer
/// spans (`type: score`, `purpose: scorer`, input the scorer's arguments, output
/// its score). Its id derives from the claim key, so writing it again replaces it.
#[allow(clippy::too_many_arguments)]
fn scorer_span(
    log: EventObject,
    key: &str,
    t: &Task,
    name: &str,
    score: f64,
    meta: &Value,
    rule: Uuid,
    now: i64,
) -> Row {
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    let id = uuid::Builder::from_random_bytes(b).into_uuid().to_string();
    let secs = now as f64 / 1e6;
    let mut output = json!({"score": score});
    if !meta.is_null() {
        output["metadata"] = meta.clone();
    }
    let body = json!({
        "span_id": id,
        "root_span_id": t.root_span_id,
        "span_parents": [t.span_id],
        "span_attributes": {"name": name, "type": "score", "purpose": "scorer"},
        "input": t.vars,
        "output": output,
        "scores": {name: score},
        "metadata": {"online_scoring_rule_id": rule.to_string()},
        "metrics": {"start": secs, "end": secs},
    });
    let Value::Object(m) = body else { unreachable!("a JSON object literal") };
    Row { log, id, op: Op::Replace(m) }
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
    fn open_spans_and_scorer_spans_are_not_scored() {
        let head = |v: &str| serde_json::from_str::<Head>(v).unwrap();
        assert!(!head(r#"{"metrics": {"start": 1.0}, "input": {"big": [1, 2]}}"#).complete());
        assert!(head(r#"{"metrics": {"start": 1.0, "end": 2.0}}"#).complete());
        assert!(!head(r#"{"metrics": {"start": 1.0, "end": null}}"#).complete());
        assert!(head(r#"{"input": 1}"#).complete());
        assert!(head(r#"{"span_attributes": {"type": "score"}}"#).is_scorer_span());
        assert!(head(r#"{"span_parents": null}"#).is_root() && head(r#"{"span_parents": []}"#).is_root());
        assert!(!head(r#"{"span_parents": ["p"]}"#).is_root());
        assert!(head(r#"{"comment": null}"#).comment.is_none() && head(r#"{"comment": "x"}"#).comment.is_some());
        // Unusual types fall back to the whole row.
        assert!(serde_json::from_str::<Head>(r#"{"span_attributes": {"name": 5}}"#).is_err());
        let m = json!({"span_attributes": {"name": 5, "type": "score"}, "span_parents": ["p"]});
        let h = Head::of(m.as_object().unwrap());
        assert!(h.is_scorer_span() && !h.is_root() && h.complete());
    }
}
