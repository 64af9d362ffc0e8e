//! The scheduler inside `serve`, and what it runs: retention sweeps of project and
//! org automations (`event_type: retention`) and alert checks (`event_type: logs`:
//! count the project's new log spans matching the rule's BTQL filter since the last
//! check; when there are any, deliver the notification through the rule's action,
//! see [`crate::webhook`]). Each automation is a job under a
//! lease in the database (`job_leases`), so with several replicas on one PostgreSQL
//! exactly one runs it at a time, and a replica that dies mid-sweep is taken over
//! when its lease expires; a sweep is idempotent (it deletes what is older than the
//! window, in batches, each its own short transaction, so ingest waits at most one
//! batch). Every run is recorded (`automation_runs`) and audited as one record with
//! its counts.

use crate::access::{AppState, Permit, SystemKey};
use crate::error::{ApiError, ApiResult};
use castellan_api_types::format_time;
use castellan_core::ProjectId;
use castellan_store::{AdminKind, AdminRecord, EventKind, EventObject, ObjectFilter, ObjectKind, RunRecord, Window};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// Rows one delete removes at most (one short transaction).
pub const BATCH: usize = 1000;
/// The smallest batch a sweep shrinks to.
const MIN_BATCH: usize = 50;
/// How many versions a sweep reads at a time (without the write lock) to find
/// those to delete.
const WINDOW: usize = 2000;
/// How long one delete may hold the write lock before the next batch is smaller.
const BATCH_BUDGET: std::time::Duration = std::time::Duration::from_millis(8);
/// A delete slower than this is counted on the run (`details.slow_batches`) and
/// logged: ingest waited about as long.
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_millis(50);
/// How often a retention rule is swept.
const SWEEP_EVERY_MICROS: i64 = 10 * 60 * 1_000_000;
/// How far before a window's start the transaction-id mark it reads from must be.
const MARK_SLACK_MICROS: i64 = 5 * 60 * 1_000_000;
/// How often the scheduler marks the newest transaction id.
const MARK_EVERY_MICROS: i64 = 60 * 1_000_000;
/// How long a lease lasts without renewal.
const LEASE_MICROS: i64 = 5 * 60 * 1_000_000;

/// One log a retention rule sweeps.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// `project_logs`, `experiment` or `dataset`.
    pub object_type: &'static str,
    /// The project (logs) or the object.
    pub object_id: Uuid,
    /// Row versions created before the cutoff.
    pub rows: u64,
}

/// What a retention rule would delete, or deleted.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    /// Rows created before this time go.
    pub cutoff: String,
    /// Per log.
    pub objects: Vec<Target>,
    /// In all.
    pub total: u64,
}

fn rule(a: &AdminRecord) -> Option<(&str, i64)> {
    let c = a.data.get("config")?;
    if c.get("event_type").and_then(Value::as_str) != Some("retention") {
        return None;
    }
    Some((c.get("object_type")?.as_str()?, c.get("retention_days")?.as_i64()?))
}

/// The logs a retention automation covers: its project's (a project rule), or every
/// project's of the org that has no project rule of its own for the same object type
/// (an org rule: the project rule wins).
async fn logs(state: &AppState, permit: &Permit, a: &AdminRecord) -> ApiResult<Vec<(&'static str, EventObject)>> {
    let Some((object_type, _)) = rule(a) else { return Ok(Vec::new()) };
    let projects: Vec<ProjectId> = match a.kind {
        AdminKind::ProjectAutomation => vec![ProjectId(a.scope.object_id)],
        _ => {
            let overridden: Vec<Uuid> = state
                .jobs(permit)
                .all_admin(AdminKind::ProjectAutomation)
                .await?
                .into_iter()
                .filter(|p| p.org_id == a.org_id && rule(p).is_some_and(|(t, _)| t == object_type))
                .map(|p| p.scope.object_id)
                .collect();
            let mut tx = state.read(permit).await?;
            let filter = castellan_store::ProjectFilter { orgs: vec![a.org_id], ids: Vec::new(), name: None };
            let all = tx.list_projects(&filter, &Window::all()).await?;
            all.into_iter().map(|p| p.id).filter(|p| !overridden.contains(&p.0)).collect()
        }
    };
    let mut out = Vec::new();
    let (label, kind) = match object_type {
        "project_logs" => {
            for p in projects {
                out.push(("project_logs", EventObject { kind: EventKind::ProjectLogs, id: p.0 }));
            }
            return Ok(out);
        }
        "experiment" => ("experiment", (ObjectKind::Experiment, EventKind::Experiment)),
        _ => ("dataset", (ObjectKind::Dataset, EventKind::Dataset)),
    };
    if projects.is_empty() {
        return Ok(out);
    }
    let mut tx = state.read(permit).await?;
    let filter =
        ObjectFilter { kinds: vec![kind.0], orgs: vec![a.org_id], projects, ids: Vec::new(), name: None, slug: None };
    for o in tx.list_objects(&filter, &Window::all()).await? {
        out.push((label, EventObject { kind: kind.1, id: o.id }));
    }
    Ok(out)
}

/// A run of `a` starting at `now`, not finished yet.
fn new_run(a: &AdminRecord, now: i64) -> RunRecord {
    RunRecord {
        id: Uuid::now_v7(),
        automation_id: a.id,
        org_id: a.org_id,
        started: now,
        finished: None,
        status: "running".into(),
        count: 0,
        error: None,
        details: None,
    }
}

/// A run's error when its delivery failed.
fn delivery_failed(d: &castellan_store::DeliveryRecord) -> String {
    format!("delivery failed {}: {}", crate::webhook::after(d.attempts), d.error.clone().unwrap_or_default())
}

/// An automation's `config.event_type`.
pub fn event_type(a: &AdminRecord) -> Option<&str> {
    a.data.get("config")?.get("event_type")?.as_str()
}

fn paused(a: &AdminRecord) -> bool {
    a.data.get("config").and_then(|c| c.get("status")).and_then(Value::as_str) == Some("paused")
}

/// Checks a `logs` alert's BTQL filter: it parses, and names only fields project
/// logs have (an error says where).
pub fn check_alert_filter(filter: &str) -> Result<(), String> {
    castellan_btql::text::parse_expr(filter).map_err(|e| format!("`config.btql_filter`: {e}"))?;
    let q = format!("select: * | from: project_logs('{}') | filter: {filter}", Uuid::nil());
    castellan_btql::parse_str(&q).map(|_| ()).map_err(|e| format!("`config.btql_filter`: {e}"))
}

/// Runs an automation now, whatever it is: a retention sweep or an alert check.
pub async fn run(state: &AppState, permit: &Permit, a: &AdminRecord, holder: &str) -> ApiResult<RunRecord> {
    match event_type(a) {
        Some("retention") => sweep(state, permit, a, holder).await,
        Some("logs") => check_alert(state, permit, a, holder).await,
        Some("environment_update") => Err(ApiError::bad_request(
            "an environment_update automation runs when a prompt's environment assignment changes; it cannot be run by hand",
        )),
        Some(other) => Err(ApiError::bad_request(format!(
            "`{other}` automations are stored but not run by Castellan (only logs alerts, retention and environment_update are)"
        ))),
        None => Err(ApiError::bad_request("this automation has no event type")),
    }
}

/// `5 minutes`, `1 hour`, `1 day`, `90 seconds`.
fn human(secs: i64) -> String {
    let (n, unit) = if secs % 86_400 == 0 {
        (secs / 86_400, "day")
    } else if secs % 3_600 == 0 {
        (secs / 3_600, "hour")
    } else if secs % 60 == 0 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Braintrust's alert payload.
#[allow(clippy::too_many_arguments)]
fn alert_payload(
    state: &AppState,
    a: &AdminRecord,
    org_name: &str,
    project_name: &str,
    count: u64,
    time_start: &str,
    time_end: &str,
    is_test: bool,
) -> (Value, String) {
    let c = a.data.get("config").cloned().unwrap_or(Value::Null);
    let interval = c.get("interval_seconds").and_then(Value::as_f64).unwrap_or(0.0) as i64;
    let base = format!("{}/app/{}/p/{}", state.config().public_url(), enc(org_name), enc(project_name));
    let filter = c.get("btql_filter").and_then(Value::as_str).unwrap_or_default();
    let message = format!(
        "{}: {count} {} triggered alert in the last {}",
        a.name,
        if count == 1 { "log" } else { "logs" },
        human(interval)
    );
    let payload = json!({
        "organization": {"id": a.org_id.0, "name": org_name},
        "project": {"id": a.scope.object_id, "name": project_name},
        "automation": {
            "id": a.id,
            "name": a.name,
            "description": a.data.get("description").and_then(Value::as_str).unwrap_or_default(),
            "event_type": "logs",
            "btql_filter": filter,
            "interval_seconds": interval,
            "url": format!("{base}/configuration/alerts?aid={}", a.id),
        },
        "details": {
            "is_test": is_test,
            "message": message,
            "time_start": time_start,
            "time_end": time_end,
            "count": count,
            "related_logs_url": format!("{base}/logs?search={}", enc(&json!({"filter": [filter]}).to_string())),
        },
    });
    (payload, message)
}

/// How many of project `project`'s log spans match `filter` now: those written
/// after `since` when given, and (when given) created at or after `created_from`.
async fn count_matching(
    state: &AppState,
    permit: &Permit,
    project: Uuid,
    filter: &str,
    since: Option<castellan_store::XactId>,
    created_from: Option<&str>,
) -> ApiResult<(u64, castellan_store::XactId)> {
    use castellan_btql::{CmpOp, Expr, Literal, Source};
    let (expr, _) = castellan_btql::text::parse_expr(filter)
        .map_err(|e| ApiError::bad_request(format!("`config.btql_filter`: {e}")))?;
    let log = EventObject { kind: EventKind::ProjectLogs, id: project };
    let org =
        state.index().snapshot().org_of(castellan_core::ObjectRef::new(castellan_core::ObjectType::Project, project));
    let constants = |name: &str| -> Option<String> {
        match name {
            "project_id" => Some(project.to_string()),
            "org_id" => org.map(|o| o.to_string()),
            "log_id" => Some("g".to_owned()),
            _ => None,
        }
    };
    let mut parts = castellan_btql::fields::bind_constants(expr, Source::ProjectLogs, &constants).conjuncts();
    if let Some(from) = created_from {
        parts.push(Expr::Cmp(
            CmpOp::Ge,
            Box::new(Expr::field(["created"])),
            Box::new(Expr::Literal(Literal::String(from.to_owned()))),
        ));
    }
    // A window by creation time reads only the rows written since a mark well before
    // it (clients' clocks may run a little ahead of ours).
    let since = match (since, created_from.and_then(castellan_api_types::parse_time)) {
        (None, Some(from)) => state.jobs(permit).xact_before(from - MARK_SLACK_MICROS).await?,
        (since, _) => since,
    };
    let mut tx = state.read(permit).await?;
    let version = tx.current_xact_id().await?;
    let (pushed, residual): (Vec<Expr>, Vec<Expr>) = parts.into_iter().partition(|c| tx.pushable(c));
    let mut search = castellan_store::EventSearch {
        object: log,
        version,
        filter: Expr::all(pushed),
        sort: Vec::new(),
        after: None,
        limit: 1000,
    };
    let Some(residual) = Expr::all(residual) else {
        drop(tx);
        return Ok((state.jobs(permit).count_matching(&search, since).await?, version));
    };
    // What SQL cannot express here is evaluated row by row.
    let mut n = 0;
    loop {
        let found = tx.search_events(&search).await?;
        let exhausted = found.len() < search.limit;
        let mut last = None;
        for f in found {
            last = Some(f.position());
            if since.is_some_and(|s| f.event.xact_id <= s) {
                continue;
            }
            if let Value::Object(row) = crate::dataplane::rows::event_json(log, org, f.event) {
                if castellan_btql::eval::test(&residual, &row) {
                    n += 1;
                }
            }
        }
        if exhausted || last.is_none() {
            break;
        }
        search.after = last;
    }
    Ok((n, version))
}

async fn names(state: &AppState, permit: &Permit, a: &AdminRecord) -> ApiResult<(String, String)> {
    let mut tx = state.read(permit).await?;
    let org = tx.get_org(a.org_id).await?.map(|o| o.name).unwrap_or_default();
    let project = tx.get_project(ProjectId(a.scope.object_id)).await?.map(|p| p.name).unwrap_or_default();
    Ok((org, project))
}

/// What a test of an alert found and sent.
#[derive(Debug, Clone, Serialize)]
pub struct AlertTest {
    /// Log spans matching the filter in the last interval.
    pub count: u64,
    /// Whether a test notification was sent (only when some matched).
    pub delivered: bool,
    /// What happened to it.
    pub delivery: Option<castellan_store::DeliveryRecord>,
    /// In words.
    pub message: String,
}

/// `POST …/test`: counts the spans of the last interval matching the filter and,
/// only if there are any, sends the notification with `is_test: true`.
pub async fn test_alert(state: &AppState, permit: &Permit, a: &AdminRecord) -> ApiResult<AlertTest> {
    if event_type(a) != Some("logs") {
        return Err(ApiError::bad_request("only `logs` alerts can be tested"));
    }
    let c = a.data.get("config").cloned().unwrap_or(Value::Null);
    let filter = c.get("btql_filter").and_then(Value::as_str).unwrap_or_default();
    let interval = c.get("interval_seconds").and_then(Value::as_f64).unwrap_or(0.0) as i64;
    let now = state.now();
    let (start, end) = (format_time(now - interval * 1_000_000), format_time(now));
    let (count, _) = count_matching(state, permit, a.scope.object_id, filter, None, Some(&start)).await?;
    if count == 0 {
        return Ok(AlertTest {
            count,
            delivered: false,
            delivery: None,
            message: format!("no logs matched the filter in the last {}; nothing was sent", human(interval)),
        });
    }
    let (org, project) = names(state, permit, a).await?;
    let (payload, message) = alert_payload(state, a, &org, &project, count, &start, &end, true);
    let action = c.get("action").cloned().unwrap_or(Value::Null);
    let n = crate::webhook::Notification { event: "logs", is_test: true, payload, message, run_id: None };
    let d = crate::webhook::deliver(state, permit, a, &action, &n).await?;
    let message = match d.status.as_str() {
        "ok" => format!("{count} logs matched; the test notification was delivered"),
        _ => format!(
            "{count} logs matched; the test notification failed {}: {}",
            crate::webhook::after(d.attempts),
            d.error.clone().unwrap_or_default()
        ),
    };
    Ok(AlertTest { count, delivered: d.status == "ok", delivery: Some(d), message })
}

/// Checks a `logs` alert (under its lease): counts the spans written since the last
/// check that match its filter (on a first check: created in the last interval)
/// and, when there are any, delivers the notification; records the run (and audits
/// it when it notified).
pub async fn check_alert(state: &AppState, permit: &Permit, a: &AdminRecord, holder: &str) -> ApiResult<RunRecord> {
    let c = a.data.get("config").cloned().unwrap_or(Value::Null);
    let filter = c.get("btql_filter").and_then(Value::as_str).unwrap_or_default().to_owned();
    let interval = c.get("interval_seconds").and_then(Value::as_f64).unwrap_or(0.0) as i64;
    let jobs = state.jobs(permit);
    let lease = format!("automation:{}", a.id);
    let now = state.now();
    if !jobs.take_lease(&lease, holder, now, now + LEASE_MICROS).await? {
        return Err(ApiError::bad_request("this automation is running on another replica; try again later"));
    }
    let previous = jobs.list_runs(a.id, 10).await?.into_iter().find_map(|r| {
        let d = r.details?;
        let x = d.get("xact_id")?.as_str().and_then(castellan_store::XactId::parse)?;
        Some((x, d.get("time_end")?.as_str()?.to_owned()))
    });
    let mut record = new_run(a, now);
    jobs.record_run(&record).await?;
    let time_end = format_time(now);
    let time_start = match &previous {
        Some((_, t)) => t.clone(),
        None => format_time(now - interval * 1_000_000),
    };
    let outcome: ApiResult<(u64, castellan_store::XactId, Option<castellan_store::DeliveryRecord>)> = async {
        let (count, version) = match &previous {
            Some((since, _)) => count_matching(state, permit, a.scope.object_id, &filter, Some(*since), None).await?,
            None => count_matching(state, permit, a.scope.object_id, &filter, None, Some(&time_start)).await?,
        };
        if count == 0 {
            return Ok((0, version, None));
        }
        let (org, project) = names(state, permit, a).await?;
        let (payload, message) = alert_payload(state, a, &org, &project, count, &time_start, &time_end, false);
        let action = c.get("action").cloned().unwrap_or(Value::Null);
        let n =
            crate::webhook::Notification { event: "logs", is_test: false, payload, message, run_id: Some(record.id) };
        let d = crate::webhook::deliver(state, permit, a, &action, &n).await?;
        Ok((count, version, Some(d)))
    }
    .await;
    record.finished = Some(state.now());
    match &outcome {
        Ok((count, version, delivery)) => {
            record.count = i64::try_from(*count).unwrap_or(i64::MAX);
            record.details = Some(json!({
                "xact_id": version.to_string(),
                "time_start": time_start,
                "time_end": time_end,
                "delivery_id": delivery.as_ref().map(|d| d.id),
                "delivery_status": delivery.as_ref().map(|d| d.status.clone()),
            }));
            match delivery {
                Some(d) if d.status != "ok" => {
                    record.status = "error".into();
                    record.error = Some(delivery_failed(d));
                }
                _ => record.status = "ok".into(),
            }
        }
        Err(e) => {
            record.status = "error".into();
            record.error = Some(e.to_string());
            // The window is not advanced: the next check counts these spans again.
            record.details =
                previous.as_ref().map(|(x, t)| json!({"xact_id": x.to_string(), "time_start": t, "time_end": t}));
        }
    }
    jobs.record_run(&record).await?;
    if record.count > 0 {
        let mut w = state.write(permit).await?;
        w.audit_run(
            a,
            "run",
            &json!({"run_id": record.id, "status": record.status, "matched": record.count, "time_start": time_start,
                    "time_end": time_end, "error": record.error}),
        )
        .await?;
        w.commit().await?;
    }
    jobs.release_lease(&lease, holder).await?;
    outcome.map(|_| record)
}

/// What a retention automation would delete now.
pub async fn preview(state: &AppState, permit: &Permit, a: &AdminRecord) -> ApiResult<Sweep> {
    let (_, days) = rule(a).ok_or_else(|| ApiError::bad_request("this automation is not a retention rule"))?;
    let cutoff = format_time(state.now() - days * 86_400 * 1_000_000);
    let mut objects = Vec::new();
    for (object_type, log) in logs(state, permit, a).await? {
        let rows = state.jobs(permit).count_events_before(log, &cutoff).await?;
        if rows > 0 {
            objects.push(Target { object_type, object_id: log.id, rows });
        }
    }
    let total = objects.iter().map(|t| t.rows).sum();
    Ok(Sweep { cutoff, objects, total })
}

/// Sweeps a retention automation now (under its lease), records and audits the
/// run; the run.
pub async fn sweep(state: &AppState, permit: &Permit, a: &AdminRecord, holder: &str) -> ApiResult<RunRecord> {
    let (_, days) = rule(a).ok_or_else(|| ApiError::bad_request("this automation is not a retention rule"))?;
    let jobs = state.jobs(permit);
    let lease = format!("automation:{}", a.id);
    let now = state.now();
    if !jobs.take_lease(&lease, holder, now, now + LEASE_MICROS).await? {
        return Err(ApiError::bad_request("this automation is running on another replica; try again later"));
    }
    let mut record = new_run(a, now);
    jobs.record_run(&record).await?;
    let cutoff = format_time(now - days * 86_400 * 1_000_000);
    let mut objects = Vec::new();
    let (mut attachments, mut overflow) = (0u64, 0u64);
    // The longest one delete took (holding the write lock), and how many took
    // longer than ingest should ever wait.
    let (mut slowest, mut slow) = (std::time::Duration::ZERO, 0u64);
    let mut renewed = now;
    // Keeps the lease while a long sweep runs (renewed once a quarter of it has
    // passed: a commit per batch would cost ingest a disk flush each); a sweep that
    // lost it to another replica stops.
    let renew = |renewed: &mut i64| {
        let due = state.now() - *renewed > LEASE_MICROS / 4;
        if due {
            *renewed = state.now();
        }
        let (lease, until) = (lease.clone(), *renewed + LEASE_MICROS);
        let at = *renewed;
        async move {
            if due && !jobs.take_lease(&lease, holder, at, until).await? {
                return Err(ApiError::bad_request(
                    "this sweep lost its lease to another replica (it ran longer than the lease); that replica goes \
                     on with it",
                ));
            }
            Ok::<(), ApiError>(())
        }
    };
    let outcome: ApiResult<()> = async {
        for (object_type, log) in logs(state, permit, a).await? {
            let mut rows = 0u64;
            // The log is read in windows of versions, by transaction id, without the
            // write lock; the old versions of a window are deleted in batches, each a
            // range of the log (bounded on both sides, so no delete reads past its
            // batch) in a short transaction of its own. Batches are sized so that one
            // holds the write lock for about BATCH_BUDGET, with a pause twice as long
            // between them: ingest never waits long behind a sweep, and the sweep's
            // writes (and the fsyncs and checkpoints they cost) take at most a third
            // of the disk's time. Reads pause as long as they took.
            let mut batch = 200usize;
            let mut after = (castellan_store::XactId(i64::MIN), String::new());
            loop {
                let t = std::time::Instant::now();
                let window = jobs.retention_window(log, &cutoff, &after, WINDOW).await?;
                let read = t.elapsed();
                let mut from = after.clone();
                let mut old = window.old.as_slice();
                while !old.is_empty() {
                    let (this, rest) = old.split_at(batch.min(old.len()));
                    let Some(through) = this.last().cloned() else { break };
                    let t = std::time::Instant::now();
                    let n = jobs.delete_events_between(log, &cutoff, &from, &through).await?;
                    let took = t.elapsed();
                    rows += n;
                    slowest = slowest.max(took);
                    if took > SLOW_BATCH {
                        slow += 1;
                        tracing::warn!(
                            automation = %a.id,
                            rows = n,
                            took_ms = took.as_millis() as u64,
                            "a retention batch held the write lock long"
                        );
                    }
                    renew(&mut renewed).await?;
                    (from, old) = (through, rest);
                    batch = if took > BATCH_BUDGET {
                        (batch / 2).max(MIN_BATCH)
                    } else if took < BATCH_BUDGET / 2 {
                        (batch * 3 / 2).min(BATCH)
                    } else {
                        batch
                    };
                    tokio::time::sleep((took * 2).min(BATCH_BUDGET * 8)).await;
                }
                match window.last {
                    Some(last) if window.read >= WINDOW => after = last,
                    _ => break,
                }
                renew(&mut renewed).await?;
                tokio::time::sleep(read.min(BATCH_BUDGET * 8)).await;
            }
            if rows > 0 {
                // Attachments no remaining row of this log names go with the rows.
                attachments += jobs.sweep_attachments(log, a.org_id).await?;
                objects.push(Target { object_type, object_id: log.id, rows });
            }
        }
        // Overflow payloads announced a day ago or more and never used (a used one goes
        // with its write; an unused one's upload URL expired long ago).
        overflow = jobs.delete_stale_overflow(a.org_id, now - 86_400 * 1_000_000).await?;
        Ok(())
    }
    .await;
    let total: u64 = objects.iter().map(|t| t.rows).sum();
    record.finished = Some(state.now());
    record.count = i64::try_from(total).unwrap_or(i64::MAX);
    record.details = Some(json!({
        "cutoff": cutoff, "objects": objects, "attachments": attachments, "overflow": overflow,
        "slowest_batch_ms": slowest.as_secs_f64() * 1000.0, "slow_batches": slow,
    }));
    match &outcome {
        Ok(()) => record.status = "ok".into(),
        Err(e) => {
            record.status = "error".into();
            record.error = Some(e.to_string());
        }
    }
    jobs.record_run(&record).await?;
    let mut w = state.write(permit).await?;
    w.audit_run(
        a,
        "run",
        &json!({"run_id": record.id, "status": record.status, "deleted": total, "cutoff": cutoff, "objects": objects,
                "attachments": attachments, "overflow": overflow}),
    )
    .await?;
    w.commit().await?;
    jobs.release_lease(&lease, holder).await?;
    outcome.map(|()| record)
}

/// Runs the scheduler until the process ends: every tick (`scheduler_tick`), each
/// due automation — a retention rule last swept more than ten minutes ago, an
/// active alert last checked more than its interval ago — runs on whichever replica
/// takes its lease, all of a tick's at once.
pub fn spawn(state: AppState, system: &SystemKey) -> tokio::task::JoinHandle<()> {
    let holder = format!("replica-{}", Uuid::new_v4());
    let permit = system.permit();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.config().scheduler_tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = tick_with(&state, &permit, &holder).await {
                tracing::warn!(error = %e, "scheduler tick failed; will retry");
            }
        }
    })
}

/// Whether `a` is due at `now`, given its last run.
fn due(a: &AdminRecord, last: Option<&RunRecord>, now: i64) -> bool {
    let every = match event_type(a) {
        Some("retention") if rule(a).is_some() => SWEEP_EVERY_MICROS,
        Some("logs") if !paused(a) => {
            let secs = a.data.get("config").and_then(|c| c.get("interval_seconds")).and_then(Value::as_f64);
            (secs.unwrap_or(0.0).max(1.0) * 1_000_000.0) as i64
        }
        _ => return false,
    };
    last.is_none_or(|r| r.started <= now - every)
}

/// One scheduler pass: runs every due automation (concurrently, each under its
/// lease) and waits for them; how many ran.
pub async fn tick_once(state: &AppState, system: &SystemKey, holder: &str) -> ApiResult<usize> {
    tick_with(state, &system.permit(), holder).await
}

async fn tick_with(state: &AppState, permit: &Permit, holder: &str) -> ApiResult<usize> {
    let permit = permit.clone();
    let now = state.now();
    let xact = state.read(&permit).await?.current_xact_id().await?;
    state.jobs(&permit).mark_xact(now - now % MARK_EVERY_MICROS, xact).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for kind in [AdminKind::ProjectAutomation, AdminKind::OrgAutomation] {
        for a in state.jobs(&permit).all_admin(kind).await? {
            let last = state.jobs(&permit).list_runs(a.id, 1).await?;
            if !due(&a, last.first(), state.now()) {
                continue;
            }
            let (state, permit, holder) = (state.clone(), permit.clone(), holder.to_owned());
            tasks.spawn(async move {
                match run(&state, &permit, &a, &holder).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(automation = %a.id, error = %e, "automation run failed");
                        false
                    }
                }
            });
        }
    }
    // Online scoring's claims that can no longer matter, on one replica at a time.
    let jobs = state.jobs(&permit);
    if jobs.take_lease("scoring:prune", holder, now, now + LEASE_MICROS).await? {
        let max_age = crate::scoring::Options::default().max_span_age;
        match crate::scoring::prune(state, &permit, max_age, state.now()).await {
            Ok(n) if n > 0 => tracing::debug!(pruned = n, "online scoring claims pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not prune online scoring claims"),
        }
        jobs.release_lease("scoring:prune", holder).await?;
    }
    let mut ran = 0;
    while let Some(done) = tasks.join_next().await {
        if done.unwrap_or(false) {
            ran += 1;
        }
    }
    Ok(ran)
}

/// A change of what an environment serves (a prompt or dataset version assigned to
/// it, or taken off it).
#[derive(Debug, Clone)]
pub struct EnvChange {
    /// The organization.
    pub org: castellan_core::OrgId,
    /// The prompt (or function) or dataset.
    pub object: castellan_core::ObjectRef,
    /// The environment's slug.
    pub slug: String,
    /// The version it serves now (None: it serves none any more).
    pub version: Option<String>,
    /// The version it served before.
    pub previous: Option<String>,
    /// Who changed it.
    pub actor: castellan_core::UserId,
}

/// Fires the `environment_update` automations of the changed objects' projects
/// whose `environment_filter` is empty or names the environment, after the change
/// committed (in the background: the request does not wait for deliveries). Each
/// firing is a run of the automation, with its delivery.
pub fn environment_changed(state: &AppState, permit: &Permit, changes: Vec<EnvChange>) {
    if changes.is_empty() {
        return;
    }
    let (state, permit) = (state.clone(), permit.clone());
    tokio::spawn(async move {
        for ch in changes {
            if let Err(e) = fire_environment_update(&state, &permit, &ch).await {
                tracing::warn!(error = %e, environment = %ch.slug, "environment_update automations failed");
            }
        }
    });
}

async fn fire_environment_update(state: &AppState, permit: &Permit, ch: &EnvChange) -> ApiResult<()> {
    let mut tx = state.read(permit).await?;
    let Some(o) = tx.get_object(ch.object.object_id).await? else { return Ok(()) };
    let org_name = tx.get_org(ch.org).await?.map(|o| o.name).unwrap_or_default();
    let project_name = tx.get_project(o.project_id).await?.map(|p| p.name).unwrap_or_default();
    drop(tx);
    let automations = state.jobs(permit).all_admin(AdminKind::ProjectAutomation).await?;
    for a in automations.iter().filter(|a| {
        a.org_id == ch.org
            && a.scope.object_id == o.project_id.0
            && event_type(a) == Some("environment_update")
            && !paused(a)
            && a.data
                .get("config")
                .and_then(|c| c.get("environment_filter"))
                .and_then(Value::as_array)
                .is_none_or(|f| f.is_empty() || f.iter().any(|s| s.as_str() == Some(ch.slug.as_str())))
    }) {
        let c = a.data.get("config").cloned().unwrap_or(Value::Null);
        let kind = if ch.object.object_type == castellan_core::ObjectType::Dataset { "dataset" } else { "prompt" };
        let label = o.slug.clone().unwrap_or_else(|| o.name.clone());
        let message = match &ch.version {
            Some(v) => format!("{}: {kind} `{label}` version {v} is now deployed to `{}`", a.name, ch.slug),
            None => format!("{}: {kind} `{label}` was removed from `{}`", a.name, ch.slug),
        };
        let now = state.now();
        let base = format!("{}/app/{}/p/{}", state.config().public_url(), enc(&org_name), enc(&project_name));
        let payload = json!({
            "organization": {"id": ch.org.0, "name": org_name},
            "project": {"id": o.project_id.0, "name": project_name},
            "automation": {
                "id": a.id,
                "name": a.name,
                "description": a.data.get("description").and_then(Value::as_str).unwrap_or_default(),
                "event_type": "environment_update",
                "environment_filter": c.get("environment_filter").cloned().unwrap_or(json!([])),
                "url": format!("{base}/configuration/automations?aid={}", a.id),
            },
            "details": {
                "is_test": false,
                "message": message,
                "time": format_time(now),
                "environment": {"slug": ch.slug},
                "object": {"type": kind, "id": o.id, "name": o.name, "slug": o.slug},
                "action": if ch.version.is_some() { "assigned" } else { "removed" },
                "object_version": ch.version,
                "previous_version": ch.previous,
                "actor": {"id": ch.actor.0},
            },
        });
        let mut record = RunRecord {
            count: 1,
            details: Some(json!({"environment": ch.slug, "object_id": o.id, "object_version": ch.version})),
            ..new_run(a, now)
        };
        let jobs = state.jobs(permit);
        jobs.record_run(&record).await?;
        let action = c.get("action").cloned().unwrap_or(Value::Null);
        let n = crate::webhook::Notification {
            event: "environment_update",
            is_test: false,
            payload,
            message,
            run_id: Some(record.id),
        };
        let d = crate::webhook::deliver(state, permit, a, &action, &n).await?;
        record.finished = Some(state.now());
        if d.status == "ok" {
            record.status = "ok".into();
        } else {
            record.status = "error".into();
            record.error = Some(delivery_failed(&d));
        }
        jobs.record_run(&record).await?;
    }
    Ok(())
}
