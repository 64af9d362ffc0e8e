//! The scheduler inside `serve`, and what it runs: retention sweeps of project and
//! org automations (`event_type: retention`). Each automation is a job under a
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
use std::time::Duration;
use uuid::Uuid;

/// Rows one delete removes at most (one short transaction).
pub const BATCH: usize = 1000;
/// How often the scheduler looks for due jobs.
const TICK: Duration = Duration::from_secs(30);
/// How often a retention rule is swept.
const SWEEP_EVERY_MICROS: i64 = 10 * 60 * 1_000_000;
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
pub async fn run(state: &AppState, permit: &Permit, a: &AdminRecord, holder: &str) -> ApiResult<RunRecord> {
    let (_, days) = rule(a).ok_or_else(|| ApiError::bad_request("this automation is not a retention rule"))?;
    let jobs = state.jobs(permit);
    let lease = format!("automation:{}", a.id);
    let now = state.now();
    if !jobs.take_lease(&lease, holder, now, now + LEASE_MICROS).await? {
        return Err(ApiError::bad_request("this automation is running on another replica; try again later"));
    }
    let mut record = RunRecord {
        id: Uuid::now_v7(),
        automation_id: a.id,
        org_id: a.org_id,
        started: now,
        finished: None,
        status: "running".into(),
        count: 0,
        error: None,
        details: None,
    };
    jobs.record_run(&record).await?;
    let cutoff = format_time(now - days * 86_400 * 1_000_000);
    let mut objects = Vec::new();
    let outcome: ApiResult<()> = async {
        for (object_type, log) in logs(state, permit, a).await? {
            let mut rows = 0u64;
            loop {
                let n = jobs.delete_events_before(log, &cutoff, BATCH).await?;
                rows += n;
                // Keep the lease while a long sweep runs.
                jobs.take_lease(&lease, holder, state.now(), state.now() + LEASE_MICROS).await?;
                if n < BATCH as u64 {
                    break;
                }
            }
            if rows > 0 {
                objects.push(Target { object_type, object_id: log.id, rows });
            }
        }
        Ok(())
    }
    .await;
    let total: u64 = objects.iter().map(|t| t.rows).sum();
    record.finished = Some(state.now());
    record.count = i64::try_from(total).unwrap_or(i64::MAX);
    record.details = Some(json!({"cutoff": cutoff, "objects": objects}));
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
        &json!({"run_id": record.id, "status": record.status, "deleted": total, "cutoff": cutoff, "objects": objects}),
    )
    .await?;
    w.commit().await?;
    jobs.release_lease(&lease, holder).await?;
    outcome.map(|()| record)
}

/// Runs the scheduler until the process ends: every tick, each retention rule
/// whose last run is older than its period is swept, on whichever replica takes
/// its lease.
pub fn spawn(state: AppState, system: SystemKey) -> tokio::task::JoinHandle<()> {
    let holder = format!("replica-{}", Uuid::new_v4());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = tick_once(&state, &system, &holder).await {
                tracing::warn!(error = %e, "scheduler tick failed; will retry");
            }
        }
    })
}

/// One scheduler pass.
pub async fn tick_once(state: &AppState, system: &SystemKey, holder: &str) -> ApiResult<usize> {
    let permit = system.permit();
    let mut ran = 0;
    for kind in [AdminKind::ProjectAutomation, AdminKind::OrgAutomation] {
        for a in state.jobs(&permit).all_admin(kind).await? {
            if rule(&a).is_none() {
                continue;
            }
            let last = state.jobs(&permit).list_runs(a.id, 1).await?;
            if last.first().is_some_and(|r| r.started > state.now() - SWEEP_EVERY_MICROS) {
                continue;
            }
            match run(state, &permit, &a, holder).await {
                Ok(_) => ran += 1,
                Err(e) => tracing::warn!(automation = %a.id, error = %e, "retention run failed"),
            }
        }
    }
    Ok(ran)
}
