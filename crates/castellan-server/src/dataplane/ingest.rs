//! Writing event rows: authorize every log a request names, fold the request's
//! rows (rows of one id apply in arrival order), then hand it to the write queue,
//! which commits concurrent requests together, each with its own transaction id,
//! in multi-row statements, reading stored rows only for merges.

use super::rows::{self, Op, Row};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::usage::{add_to, count_scores, row_usage, Meter};
use castellan_api_types::format_time;
use castellan_core::{ObjectRef, ObjectType, OrgId, ProjectId};
use castellan_store::{DataTx, EventObject, EventWrite, UsageCounts, XactId};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// The transaction the rows were written at (`None` when there were no rows).
    pub xact_id: Option<XactId>,
    /// The id of each row, in request order.
    pub row_ids: Vec<String>,
    /// How many row versions were written (rows of one id are folded into one).
    pub written: usize,
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Look for attachment references in the rows (worth it only when the payload
    /// mentions one).
    pub scan_attachments: bool,
    /// An overflow payload to delete in the same transaction once its rows are in.
    pub consume_blob: Option<String>,
}

/// One merge: its body and the paths it replaces whole.
type Merge = (Map<String, Value>, Vec<Vec<String>>);

/// A row's state while a request is folded.
enum Slot {
    /// Decided within the request: the row, or `None` for a tombstone.
    Known(Option<Map<String, Value>>),
    /// Merges onto whatever is stored.
    Pending(Vec<Merge>),
}

/// Merges onto a stored row, resolved inside the write.
type PendingRow = (EventObject, ProjectId, String, Vec<Merge>);

/// A folded request, ready to be written (possibly together with others). Rows that
/// do not depend on stored state are serialized here, in the request's own task, so
/// the write queue does as little as possible.
#[derive(Debug, Clone)]
pub struct Prepared {
    known: Vec<EventWrite>,
    pending: Vec<PendingRow>,
    attachments: HashMap<EventObject, Vec<String>>,
    opts: IngestOptions,
    now: String,
    /// The organization of each log written.
    orgs: Vec<(EventObject, OrgId)>,
    /// What the rows decided here add to each organization's usage (merges are
    /// metered once resolved, in the write).
    usage: Vec<(OrgId, UsageCounts)>,
}

impl Prepared {
    /// How many row versions it writes.
    pub fn len(&self) -> usize {
        self.known.len() + self.pending.len()
    }

    /// Whether it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The organizations it writes into.
    pub fn orgs(&self) -> impl Iterator<Item = OrgId> + '_ {
        self.orgs.iter().map(|(_, o)| *o)
    }

    fn org_of(&self, log: EventObject) -> ApiResult<OrgId> {
        self.orgs
            .iter()
            .find(|(l, _)| *l == log)
            .map(|(_, o)| *o)
            .ok_or_else(|| ApiError::Internal("a row's log has no organization".into()))
    }
}

/// What a write committed: its transaction id, and the usage warning its answer
/// carries (the organization is over a limit of its plan).
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// The transaction id.
    pub xact: XactId,
    /// The warning, if any.
    pub warning: Option<String>,
}

/// The stored version of a row.
fn write_of(
    log: EventObject,
    project_id: ProjectId,
    id: String,
    row: Option<Map<String, Value>>,
    scan: bool,
    attachments: &mut HashMap<EventObject, Vec<String>>,
) -> ApiResult<EventWrite> {
    Ok(match row {
        None => EventWrite {
            object: log,
            project_id,
            row_id: id,
            root_span_id: None,
            span_id: None,
            is_root: true,
            deleted: true,
            is_comment: false,
            data: "{}".into(),
        },
        Some(row) => {
            if scan {
                let keys = attachments.entry(log).or_default();
                row.values().for_each(|v| rows::attachment_keys(v, keys));
            }
            EventWrite {
                object: log,
                project_id,
                root_span_id: Some(rows::root_span_id(&id, &row)),
                span_id: Some(rows::span_id(&id, &row)),
                is_root: rows::is_root(&row),
                deleted: false,
                is_comment: rows::is_comment(&row),
                data: serde_json::to_string(&row).map_err(|e| ApiError::Internal(e.to_string()))?,
                row_id: id,
            }
        }
    })
}

fn with_created(mut row: Map<String, Value>, now: &str) -> Map<String, Value> {
    if row.get("created").is_none_or(Value::is_null) {
        row.insert("created".into(), Value::String(now.to_owned()));
    }
    row
}

/// Authorizes and writes `rows`. If the caller may not write into any one of the
/// logs the rows name, nothing is written.
pub async fn ingest(
    caller: &Caller,
    data: &super::DataPlane,
    rows: Vec<Row>,
    opts: IngestOptions,
) -> ApiResult<Ingested> {
    let row_ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    if rows.is_empty() {
        return Ok(Ingested { xact_id: None, row_ids, written: 0 });
    }
    let mut logs: Vec<EventObject> = Vec::new();
    for r in &rows {
        if !logs.contains(&r.log) {
            logs.push(r.log);
        }
    }
    let permit = caller.require_event_writes(&logs).await?;
    let now = format_time(caller.state().now());
    let mut order: Vec<(EventObject, String)> = Vec::new();
    let mut slots: HashMap<(EventObject, String), Slot> = HashMap::with_capacity(rows.len());
    for Row { log, id, op } in rows {
        let key = (log, id);
        let prev = slots.remove(&key);
        let is_new = prev.is_none();
        let slot = match (prev, op) {
            (_, Op::Replace(body)) => Slot::Known(Some(with_created(body, &now))),
            (_, Op::Delete) => Slot::Known(None),
            (None, Op::Merge { body, paths }) => Slot::Pending(vec![(body, paths)]),
            (Some(Slot::Known(cur)), Op::Merge { body, paths }) => {
                Slot::Known(Some(with_created(rows::apply_merge(cur, body, &paths), &now)))
            }
            (Some(Slot::Pending(mut v)), Op::Merge { body, paths }) => {
                v.push((body, paths));
                Slot::Pending(v)
            }
        };
        if is_new {
            order.push(key.clone());
        }
        slots.insert(key, slot);
    }
    let snapshot = caller.state().index().snapshot();
    let mut orgs = Vec::with_capacity(permit.logs().len());
    for (log, project) in permit.logs() {
        let org = snapshot
            .org_of(ObjectRef::new(ObjectType::Project, project.0))
            .ok_or_else(|| ApiError::Internal("a log's project has no organization".into()))?;
        orgs.push((*log, OrgId(org)));
    }
    drop(snapshot);
    let (mut known, mut pending, mut attachments) = (Vec::with_capacity(order.len()), Vec::new(), HashMap::new());
    let mut usage = Vec::new();
    for key in order {
        let Some(slot) = slots.remove(&key) else { continue };
        let (log, id) = key;
        let project = permit.project_of(log).ok_or_else(|| ApiError::Internal("a row's log is not covered".into()))?;
        match slot {
            Slot::Known(row) => {
                let scores = row.as_ref().map(count_scores).unwrap_or(0);
                let w = write_of(log, project, id, row, opts.scan_attachments, &mut attachments)?;
                if let Some((_, org)) = orgs.iter().find(|(l, _)| *l == log) {
                    add_to(&mut usage, *org, row_usage(log.kind, w.deleted, w.data.len(), scores));
                }
                known.push(w);
            }
            Slot::Pending(merges) => pending.push((log, project, id, merges)),
        }
    }
    let prepared = Prepared { known, pending, attachments, opts, now, orgs, usage };
    let written = prepared.len();
    let done = data.ingest(permit, prepared).await?;
    if let Some(w) = &done.warning {
        crate::usage::warn(w);
    }
    Ok(Ingested { xact_id: Some(done.xact), row_ids, written })
}

/// Prepares rows the system writes into one project's logs (online scoring's
/// scores and scorer spans), each row id at most once. No caller: whoever calls
/// this writes as the system, under its own permit.
/// The rows are metered like anyone's (online scores count as scores).
/// `built` are rows the caller serialized itself (each with the scores it holds),
/// written as they are.
pub(crate) fn prepare_system(
    rows: Vec<Row>,
    built: Vec<(EventWrite, i64)>,
    project: ProjectId,
    org: OrgId,
    now: &str,
) -> ApiResult<Prepared> {
    let (mut known, mut pending, mut attachments) = (Vec::with_capacity(built.len()), Vec::new(), HashMap::new());
    let (mut orgs, mut usage) = (Vec::new(), Vec::new());
    for (w, scores) in built {
        if !orgs.iter().any(|(l, _)| *l == w.object) {
            orgs.push((w.object, org));
        }
        add_to(&mut usage, org, row_usage(w.object.kind, w.deleted, w.data.len(), scores));
        known.push(w);
    }
    for Row { log, id, op } in rows {
        if !orgs.iter().any(|(l, _)| *l == log) {
            orgs.push((log, org));
        }
        match op {
            Op::Replace(body) => {
                let row = with_created(body, now);
                let scores = count_scores(&row);
                let w = write_of(log, project, id, Some(row), false, &mut attachments)?;
                add_to(&mut usage, org, row_usage(log.kind, w.deleted, w.data.len(), scores));
                known.push(w);
            }
            Op::Merge { body, paths } => pending.push((log, project, id, vec![(body, paths)])),
            Op::Delete => known.push(write_of(log, project, id, None, false, &mut attachments)?),
        }
    }
    Ok(Prepared { known, pending, attachments, opts: IngestOptions::default(), now: now.to_owned(), orgs, usage })
}

/// A merge of `body` (`scores`, say) onto a row version as stored (`stored`, its
/// JSON text), as the write path would merge it onto that version: the row to
/// write and the scores the body holds. For a system writer that read the version
/// before its transaction and checks, inside it, that the version is still the
/// newest ([`DataTx::latest_xacts`]); a row that changed meanwhile goes through
/// [`prepare_system`]'s merges instead.
pub(crate) fn merged_system_row(
    log: EventObject,
    project: ProjectId,
    id: String,
    stored: &str,
    body: Map<String, Value>,
    now: &str,
) -> ApiResult<(EventWrite, i64)> {
    let cur = match serde_json::from_str(stored) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    let scores = count_scores(&body);
    let row = with_created(rows::apply_merge(cur, body, &[]), now);
    Ok((write_of(log, project, id, Some(row), false, &mut HashMap::new())?, scores))
}

/// Writes one prepared request inside `tx` at a new transaction id, metered by
/// `meter`; `Ok(Err(refusal))` when the meter refuses it (a hard plan limit), with
/// nothing of it written. Runs again, in a transaction of its own, if the shared
/// one fails.
pub async fn apply(tx: &mut dyn DataTx, p: &Prepared, meter: &mut Meter) -> ApiResult<Result<XactId, ApiError>> {
    // INVARIANT: the transaction id (the data writers' lock on PostgreSQL) is taken
    // before the meter locks any usage counters, so locks are always taken in one
    // order. A refused request leaves its id unused.
    let xact = tx.next_xact_id().await?;
    let mut resolved = Vec::new();
    let mut merge_attachments = HashMap::new();
    let mut usage = p.usage.clone();
    if !p.pending.is_empty() {
        let mut ids: HashMap<EventObject, Vec<String>> = HashMap::new();
        for (log, _, id, _) in &p.pending {
            ids.entry(*log).or_default().push(id.clone());
        }
        let mut stored: HashMap<(EventObject, String), Map<String, Value>> = HashMap::new();
        for (log, ids) in ids {
            for e in tx.latest_events(log, &ids).await? {
                if let (false, Value::Object(m)) = (e.deleted, e.data) {
                    stored.insert((log, e.row_id), m);
                }
            }
        }
        for (log, project, id, merges) in &p.pending {
            let mut cur = stored.remove(&(*log, id.clone()));
            let mut scores = 0;
            for (body, paths) in merges {
                scores += count_scores(body);
                cur = Some(rows::apply_merge(cur, body.clone(), paths));
            }
            let row = cur.map(|r| with_created(r, &p.now));
            let w = write_of(*log, *project, id.clone(), row, p.opts.scan_attachments, &mut merge_attachments)?;
            add_to(&mut usage, p.org_of(*log)?, row_usage(log.kind, w.deleted, w.data.len(), scores));
            resolved.push(w);
        }
    }
    if let Err(refused) = meter.admit(tx, &usage).await? {
        return Ok(Err(refused));
    }
    tx.insert_events(xact, &p.known).await?;
    if !resolved.is_empty() {
        tx.insert_events(xact, &resolved).await?;
        for (log, keys) in merge_attachments {
            if !keys.is_empty() {
                tx.insert_attachment_refs(log, &keys).await?;
            }
        }
    }
    for (log, keys) in &p.attachments {
        if !keys.is_empty() {
            tx.insert_attachment_refs(*log, keys).await?;
        }
    }
    if let Some(key) = &p.opts.consume_blob {
        tx.delete_blob(key).await?;
    }
    Ok(Ok(xact))
}
