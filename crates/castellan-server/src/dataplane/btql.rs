//! Running a BTQL query: parse it (any form) into one plan, authorize its `from`
//! exactly as `fetch` is authorized, bind the log's constant fields, push the filter
//! and the sort into SQL, and page with an opaque keyset cursor.
//!
//! What the backend cannot express (on SQLite: a JSON key containing `"` or `\`) is
//! evaluated in memory on the rows SQL returns, in batches, by the same evaluator
//! the differential test holds the SQL to.

use super::rows::event_json;
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::MAX_LIMIT;
use castellan_api_types::{BtqlRequest, BtqlResponse};
use castellan_btql::{eval, fields, Expr, Select, Source};
use castellan_store::{EventKind, EventObject, EventSearch, SearchPosition, XactId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Digest;

/// Rows read per round when part of the filter runs in memory.
const RESIDUAL_BATCH: usize = 500;

/// What a cursor carries: the version the first page read at, the sort it belongs
/// to, and the position after the last row it returned.
#[derive(Debug, Serialize, Deserialize)]
struct CursorData {
    v: i64,
    s: String,
    p: SearchPosition,
}

fn sort_signature(sort: &[castellan_btql::SortKey]) -> String {
    let text: Vec<String> =
        sort.iter().map(|k| format!("{} {}", castellan_btql::print::expr(&k.expr), k.desc)).collect();
    hex::encode(&sha2::Sha256::digest(text.join(",").as_bytes())[..8])
}

fn encode_cursor(c: &CursorData) -> String {
    use base64::Engine;
    let raw = serde_json::to_vec(c).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(s: &str, sig: &str, keys: usize) -> ApiResult<CursorData> {
    use base64::Engine;
    let bad = || ApiError::invalid_query(format!("`cursor` `{s}` is not a cursor this server issued for this query"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let c: CursorData = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if c.s != sig || c.p.keys.len() != keys {
        return Err(bad());
    }
    Ok(c)
}

fn log_of(source: Source, id: &str) -> ApiResult<EventObject> {
    let id = uuid::Uuid::parse_str(id)
        .map_err(|_| ApiError::invalid_query(format!("`from`: `{id}` is not an object id (a UUID)")))?;
    let kind = match source {
        Source::Experiment => EventKind::Experiment,
        Source::Dataset => EventKind::Dataset,
        Source::ProjectLogs => EventKind::ProjectLogs,
        Source::PlaygroundLogs => EventKind::PromptSession,
    };
    Ok(EventObject { kind, id })
}

/// The JSON Schema of the answered rows.
fn schema(select: &Select) -> Value {
    let properties: Map<String, Value> = match select {
        Select::Star => Map::new(),
        Select::Columns(cols) => cols.iter().map(|c| (c.alias.clone(), json!({}))).collect(),
    };
    json!({"type": "array", "items": {"type": "object", "properties": properties}})
}

/// Runs one page of a query for `caller`.
pub async fn run(caller: &Caller, req: BtqlRequest) -> ApiResult<BtqlResponse> {
    if let Some(f) = req.fmt.as_deref().filter(|f| *f != "json") {
        return Err(ApiError::invalid_body(format!("`fmt` `{f}` is not served; use `json`")));
    }
    if req.audit_log == Some(true) {
        return Err(ApiError::invalid_body("`audit_log` queries are not served"));
    }
    let q = castellan_btql::parse(&req.query, "query").map_err(|e| ApiError::invalid_query(e.to_string()))?;
    let log = log_of(q.from.source, &q.from.id)?;
    let limit = match q.limit {
        None => MAX_LIMIT,
        Some(0) => return Err(ApiError::invalid_query("`limit` must be at least 1")),
        Some(n) if n > MAX_LIMIT as u64 => {
            return Err(ApiError::invalid_query(format!(
                "`limit` must be at most {MAX_LIMIT}, got `{n}`; page with `cursor`"
            )))
        }
        Some(n) => n as usize,
    };
    let pinned = match req.version.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => Some(XactId::parse(v).ok_or_else(|| {
            ApiError::invalid_body(format!("`version` must be a transaction id (19 digits), got `{v}`"))
        })?),
        None => None,
    };
    let sig = sort_signature(&q.sort);
    let cursor = q.cursor.as_deref().map(|c| decode_cursor(c, &sig, q.sort.len())).transpose()?;

    // Authorized exactly as `fetch`: an unreadable log is a 404 that says nothing more.
    let (permit, project) = caller.require_event_read(log).await?;
    let org = caller
        .state()
        .index()
        .snapshot()
        .org_of(castellan_core::ObjectRef::new(castellan_core::ObjectType::Project, project.0));
    let constants = |name: &str| -> Option<String> {
        match name {
            "project_id" => Some(project.0.to_string()),
            "experiment_id" | "dataset_id" | "prompt_session_id" => Some(log.id.to_string()),
            "org_id" => org.map(|o| o.to_string()),
            "log_id" => Some(if log.kind == EventKind::ProjectLogs { "g" } else { "x" }.to_owned()),
            _ => None,
        }
    };
    let source = q.from.source;
    let bind = |e: Expr| fields::bind_constants(e, source, &constants);
    let mut tx = caller.state().read(&permit).await?;
    let (mut pushed, mut residual) = (Vec::new(), Vec::new());
    for c in q.filter.map(bind).map(Expr::conjuncts).unwrap_or_default() {
        if tx.pushable(&c) {
            pushed.push(c);
        } else {
            residual.push(c);
        }
    }
    let residual = Expr::all(residual);
    let sort: Vec<_> =
        q.sort.into_iter().map(|k| castellan_btql::SortKey { expr: bind(k.expr), desc: k.desc }).collect();
    if let Some(k) = sort.iter().find(|k| !tx.pushable(&k.expr)) {
        return Err(ApiError::invalid_query(format!(
            "cannot sort by `{}` on this database: a key containing `\"` or `\\`",
            castellan_btql::print::expr(&k.expr)
        )));
    }
    let (version, mut after) = match cursor {
        Some(c) => (XactId(c.v), Some(c.p)),
        None => (
            match pinned {
                Some(v) => v,
                None => tx.current_xact_id().await?,
            },
            None,
        ),
    };
    let mut search = EventSearch { object: log, version, filter: Expr::all(pushed), sort, after: None, limit };
    let mut data = Vec::new();
    let mut last: Option<SearchPosition> = None;
    loop {
        let batch = if residual.is_some() { RESIDUAL_BATCH.max(limit) } else { limit - data.len() };
        search.after = after.take();
        search.limit = batch;
        let found = tx.search_events(&search).await?;
        let exhausted = found.len() < batch;
        let mut scanned = None;
        for f in found {
            scanned = Some(f.position());
            let pos = f.position();
            let row = match event_json(log, org, f.event) {
                Value::Object(m) => m,
                _ => continue,
            };
            if residual.as_ref().is_some_and(|r| !eval::test(r, &row)) {
                continue;
            }
            data.push(match &q.select {
                Select::Star => Value::Object(row),
                Select::Columns(cols) => Value::Object(eval::project(cols, &row)),
            });
            last = Some(pos);
            if data.len() == limit {
                break;
            }
        }
        if data.len() == limit || exhausted {
            break;
        }
        after = scanned;
    }
    let next = if data.len() == limit {
        last.map(|p| encode_cursor(&CursorData { v: version.0, s: sig.clone(), p }))
    } else {
        None
    };
    Ok(BtqlResponse { data, cursor: next, schema: schema(&q.select) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_refused_for_another_sort_or_when_mangled() {
        let sig = sort_signature(&[]);
        let c = encode_cursor(&CursorData {
            v: XactId::BASE + 5,
            s: sig.clone(),
            p: SearchPosition { keys: vec![], xact_id: XactId(XactId::BASE + 3), row_id: "r".into() },
        });
        assert_eq!(decode_cursor(&c, &sig, 0).unwrap().p.row_id, "r");
        let other = sort_signature(&[castellan_btql::SortKey { expr: Expr::field(["created"]), desc: true }]);
        assert!(decode_cursor(&c, &other, 0).is_err());
        assert!(decode_cursor("garbage!", &sig, 0).is_err());
    }
}
