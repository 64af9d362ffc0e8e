//! Writing event rows: one authorization check per log, then one transaction with
//! one transaction id for the whole request, multi-row statements, and merges read
//! only for the rows that need them.

use super::rows::{self, Op, Row};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use castellan_api_types::format_time;
use castellan_store::{EventObject, EventWrite, XactId};
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

/// A row's state while a request is folded.
enum Slot {
    /// Decided within the request: the row, or `None` for a tombstone.
    Known(Option<Map<String, Value>>),
    /// Merges onto whatever is stored.
    Pending(Vec<(Map<String, Value>, Vec<Vec<String>>)>),
}

fn with_created(mut row: Map<String, Value>, now: &str) -> Map<String, Value> {
    if row.get("created").is_none_or(Value::is_null) {
        row.insert("created".into(), Value::String(now.to_owned()));
    }
    row
}

/// Authorizes and writes `rows`. If the caller may not write into any one of the
/// logs the rows name, nothing is written.
pub async fn ingest(caller: &Caller, rows: Vec<Row>, opts: IngestOptions) -> ApiResult<Ingested> {
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

    // Fold the request: rows of one id are applied in arrival order.
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

    let mut tx = caller.state().data_write(&permit).await?;
    // Merges onto stored rows: read those rows (after taking the transaction id, so
    // concurrent writers of the same row serialize).
    let mut pending: HashMap<EventObject, Vec<String>> = HashMap::new();
    for ((log, id), slot) in &slots {
        if matches!(slot, Slot::Pending(_)) {
            pending.entry(*log).or_default().push(id.clone());
        }
    }
    let mut stored: HashMap<(EventObject, String), Map<String, Value>> = HashMap::new();
    for (log, ids) in pending {
        for e in tx.latest_events(log, &ids).await? {
            if let (false, Value::Object(m)) = (e.deleted, e.data) {
                stored.insert((log, e.row_id), m);
            }
        }
    }

    let mut writes = Vec::with_capacity(order.len());
    let mut attachments: HashMap<EventObject, Vec<String>> = HashMap::new();
    for key in order {
        let Some(slot) = slots.remove(&key) else { continue };
        let row = match slot {
            Slot::Known(row) => row,
            Slot::Pending(merges) => {
                let mut cur = stored.remove(&key);
                for (body, paths) in merges {
                    cur = Some(rows::apply_merge(cur, body, &paths));
                }
                cur.map(|r| with_created(r, &now))
            }
        };
        let (log, id) = key;
        let project_id =
            permit.project_of(log).ok_or_else(|| ApiError::Internal("a row's log is not covered".into()))?;
        let write = match row {
            None => EventWrite {
                object: log,
                project_id,
                root_span_id: None,
                is_root: true,
                deleted: true,
                is_comment: false,
                data: "{}".into(),
                row_id: id,
            },
            Some(row) => {
                if opts.scan_attachments {
                    let mut keys = Vec::new();
                    rows::attachment_keys(&Value::Object(row.clone()), &mut keys);
                    attachments.entry(log).or_default().extend(keys);
                }
                EventWrite {
                    object: log,
                    project_id,
                    root_span_id: Some(rows::root_span_id(&id, &row)),
                    is_root: rows::is_root(&row),
                    deleted: false,
                    is_comment: rows::is_comment(&row),
                    data: serde_json::to_string(&row).map_err(|e| ApiError::Internal(e.to_string()))?,
                    row_id: id,
                }
            }
        };
        writes.push(write);
    }
    tx.insert_events(&writes).await?;
    for (log, keys) in attachments {
        if !keys.is_empty() {
            tx.insert_attachment_refs(log, &keys).await?;
        }
    }
    if let Some(key) = &opts.consume_blob {
        tx.delete_blob(key).await?;
    }
    let xact = tx.xact_id().await?;
    tx.commit().await?;
    Ok(Ingested { xact_id: Some(xact), row_ids, written: writes.len() })
}
