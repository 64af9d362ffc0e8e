//! Event rows: routing a row to its log, the replace / merge / delete semantics, and
//! the shape rows are fetched in.
//!
//! Rows are applied in arrival order. A replace (no `_is_merge`, or false) stands for
//! the whole row; a merge (`_is_merge: true`) deep-merges objects key by key into the
//! row as it stands (arrays and scalars replace, top-level `tags` are a set union,
//! `_merge_paths` are replaced whole), keeping the first write's `created` and span
//! ids; `_object_delete: true` leaves a tombstone.

use crate::error::ApiError;
use castellan_store::{EventKind, EventObject, StoredEvent, XactId};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Keys that route a row to its log; they are not stored with the row.
const ROUTING_KEYS: [&str; 6] = ["experiment_id", "dataset_id", "prompt_session_id", "project_id", "log_id", "org_id"];
/// Keys a merge keeps from the row it merges into.
const FIRST_WRITE_KEYS: [&str; 4] = ["created", "span_id", "root_span_id", "span_parents"];
/// The marker of an attachment reference inside a row.
pub const ATTACHMENT_TYPE: &str = "braintrust_attachment";

/// What a row does.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Stands for the whole row.
    Replace(Map<String, Value>),
    /// Deep-merges into the row; `paths` are replaced whole.
    Merge { body: Map<String, Value>, paths: Vec<Vec<String>> },
    /// Deletes the row.
    Delete,
}

/// One parsed row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The log it goes to.
    pub log: EventObject,
    /// The row id.
    pub id: String,
    /// What it does.
    pub op: Op,
}

fn bad_row(i: usize, msg: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_body(format!("row {i}: {msg}"))
}

fn uuid_field(i: usize, row: &Map<String, Value>, key: &str) -> Result<Option<Uuid>, ApiError> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            Uuid::parse_str(s).map(Some).map_err(|_| bad_row(i, format!("`{key}` must be a UUID, got `{s}`")))
        }
        Some(other) => Err(bad_row(i, format!("`{key}` must be a UUID, got `{other}`"))),
    }
}

/// The log a row is routed to by its keys (experiment, dataset, playground, or
/// project logs).
pub fn route(i: usize, row: &Map<String, Value>) -> Result<EventObject, ApiError> {
    if let Some(id) = uuid_field(i, row, "experiment_id")? {
        return Ok(EventObject { kind: EventKind::Experiment, id });
    }
    if let Some(id) = uuid_field(i, row, "dataset_id")? {
        return Ok(EventObject { kind: EventKind::Dataset, id });
    }
    if let Some(id) = uuid_field(i, row, "prompt_session_id")? {
        return Ok(EventObject { kind: EventKind::PromptSession, id });
    }
    if let Some(id) = uuid_field(i, row, "project_id")? {
        return match row.get("log_id") {
            None | Some(Value::Null) => Ok(EventObject { kind: EventKind::ProjectLogs, id }),
            Some(Value::String(s)) if s == "g" => Ok(EventObject { kind: EventKind::ProjectLogs, id }),
            Some(other) => Err(bad_row(i, format!("`log_id` must be `g` for project logs, got `{other}`"))),
        };
    }
    Err(bad_row(i, "names no object: set one of `experiment_id`, `dataset_id`, `prompt_session_id` or `project_id`"))
}

fn merge_paths(i: usize, v: Option<&Value>) -> Result<Vec<Vec<String>>, ApiError> {
    let bad = || bad_row(i, "`_merge_paths` must be an array of arrays of keys");
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(paths)) => paths
            .iter()
            .map(|p| match p {
                Value::Array(keys) => {
                    keys.iter().map(|k| k.as_str().map(str::to_owned).ok_or_else(bad)).collect::<Result<Vec<_>, _>>()
                }
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

fn flag(i: usize, row: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match row.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(bad_row(i, format!("`{key}` must be true or false, got `{other}`"))),
    }
}

/// Parses row `i`. With `forced`, the row goes to that log whatever its keys say
/// (the per-object insert endpoints).
pub fn parse(i: usize, value: Value, forced: Option<EventObject>) -> Result<Row, ApiError> {
    let Value::Object(mut row) = value else {
        return Err(bad_row(i, "must be a JSON object"));
    };
    let log = match forced {
        Some(f) => f,
        None => route(i, &row)?,
    };
    let id = match row.remove("id") {
        None | Some(Value::Null) => Uuid::new_v4().to_string(),
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(bad_row(i, format!("`id` must be a non-empty string, got `{other}`"))),
    };
    let delete = flag(i, &row, "_object_delete")?;
    let merge = flag(i, &row, "_is_merge")?;
    let paths = merge_paths(i, row.get("_merge_paths"))?;
    // Control fields (`_is_merge`, `_audit_source`, a client's `_xact_id`, …) and
    // routing keys are not part of the row.
    row.retain(|k, _| !k.starts_with('_') && !ROUTING_KEYS.contains(&k.as_str()));
    let op = if delete {
        Op::Delete
    } else if merge {
        Op::Merge { body: row, paths }
    } else {
        Op::Replace(row)
    };
    Ok(Row { log, id, op })
}

/// Deep-merges `src` into `dst` (see the module docs).
pub fn merge_into(dst: &mut Map<String, Value>, src: Map<String, Value>, paths: &[Vec<String>]) {
    let mut prefix = Vec::new();
    merge_at(dst, src, paths, &mut prefix);
}

fn merge_at(dst: &mut Map<String, Value>, src: Map<String, Value>, paths: &[Vec<String>], prefix: &mut Vec<String>) {
    for (k, v) in src {
        if prefix.is_empty() && k == "tags" {
            if let (Some(Value::Array(old)), Value::Array(new)) = (dst.get_mut("tags"), &v) {
                for t in new {
                    if !old.contains(t) {
                        old.push(t.clone());
                    }
                }
                continue;
            }
        }
        prefix.push(k.clone());
        let whole = paths.iter().any(|p| p == prefix);
        match (dst.get_mut(&k), v) {
            (Some(Value::Object(d)), Value::Object(s)) if !whole => merge_at(d, s, paths, prefix),
            (_, v) => {
                dst.insert(k, v);
            }
        }
        prefix.pop();
    }
}

/// Applies a merge to the row as it stands (`None`: no such row, or a tombstone).
pub fn apply_merge(
    current: Option<Map<String, Value>>,
    body: Map<String, Value>,
    paths: &[Vec<String>],
) -> Map<String, Value> {
    match current {
        None => body,
        Some(mut row) => {
            let kept: Vec<(&str, Value)> = FIRST_WRITE_KEYS
                .iter()
                .filter_map(|k| row.get(*k).filter(|v| !v.is_null()).map(|v| (*k, v.clone())))
                .collect();
            merge_into(&mut row, body, paths);
            for (k, v) in kept {
                row.insert(k.to_owned(), v);
            }
            row
        }
    }
}

/// The row's trace: its `root_span_id`, else its own id.
pub fn root_span_id(id: &str, row: &Map<String, Value>) -> String {
    match row.get("root_span_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => id.to_owned(),
    }
}

/// The row's span id: its `span_id`, else its own id (as reads answer it).
pub fn span_id(id: &str, row: &Map<String, Value>) -> String {
    match row.get("span_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => id.to_owned(),
    }
}

/// A root span, or a row without spans: `span_parents` is absent, null or empty.
pub fn is_root(row: &Map<String, Value>) -> bool {
    match row.get("span_parents") {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// A comment on another row (feedback with `comment`), not a span.
pub fn is_comment(row: &Map<String, Value>) -> bool {
    row.get("comment").is_some_and(|c| !c.is_null())
}

/// Collects the keys of attachment references anywhere inside `v`.
pub fn attachment_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("type").and_then(Value::as_str) == Some(ATTACHMENT_TYPE) {
                if let Some(k) = m.get("key").and_then(Value::as_str) {
                    out.push(k.to_owned());
                }
            }
            m.values().for_each(|x| attachment_keys(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| attachment_keys(x, out)),
        _ => {}
    }
}

/// A stored row as the API returns it: its fields plus `id`, `_xact_id`, its
/// object's ids (project logs: and `org_id`), `created`, and `span_id` and
/// `root_span_id` (the row's id when it was written without them); dataset rows
/// always carry `input`, `expected`, `metadata` and `tags` (the SDK reads them).
pub fn event_json(log: EventObject, org: Option<Uuid>, e: StoredEvent) -> Value {
    let mut m = match e.data {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("data".into(), other);
            m
        }
    };
    // A row written without span ids (a REST insert may leave them out) is a trace of
    // its own, as summaries already read it: the client's row types require both.
    let root = root_span_id(&e.row_id, &m);
    if !matches!(m.get("span_id"), Some(Value::String(s)) if !s.is_empty()) {
        m.insert("span_id".into(), Value::String(e.row_id.clone()));
    }
    m.insert("root_span_id".into(), Value::String(root));
    m.insert("id".into(), Value::String(e.row_id));
    m.insert("_xact_id".into(), Value::String(e.xact_id.to_string()));
    m.insert("project_id".into(), Value::String(e.project_id.to_string()));
    match log.kind {
        EventKind::Experiment => {
            m.insert("experiment_id".into(), Value::String(log.id.to_string()));
        }
        EventKind::Dataset => {
            m.insert("dataset_id".into(), Value::String(log.id.to_string()));
            for k in ["input", "expected", "metadata", "tags"] {
                m.entry(k).or_insert(Value::Null);
            }
        }
        EventKind::ProjectLogs => {
            m.insert("log_id".into(), Value::String("g".into()));
            if let Some(o) = org {
                m.insert("org_id".into(), Value::String(o.to_string()));
            }
        }
        EventKind::PromptSession => {
            m.insert("prompt_session_id".into(), Value::String(log.id.to_string()));
            m.insert("log_id".into(), Value::String("x".into()));
        }
    }
    m.entry("created").or_insert(Value::Null);
    Value::Object(m)
}

/// Encodes a fetch position: the version read at and the last row returned.
pub fn encode_cursor(version: XactId, last: &(XactId, String)) -> String {
    use base64::Engine;
    let raw = format!("{}.{}.{}", version.0, last.0 .0, last.1);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes [`encode_cursor`]'s output.
pub fn decode_cursor(s: &str) -> Result<(XactId, (XactId, String)), ApiError> {
    use base64::Engine;
    let bad = || ApiError::invalid_parameter(format!("`cursor` `{s}` is not a cursor this server issued"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = raw.splitn(3, '.');
    let (Some(v), Some(x), Some(row)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let v = v.parse::<i64>().map_err(|_| bad())?;
    let x = x.parse::<i64>().map_err(|_| bad())?;
    Ok((XactId(v), (XactId(x), row.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn rows_route_by_their_object_keys_and_lose_control_fields() {
        let e = Uuid::new_v4();
        let r =
            parse(0, json!({"id": "a", "experiment_id": e, "_is_merge": true, "_audit_source": "app", "x": 1}), None)
                .unwrap();
        assert_eq!(r.log, EventObject { kind: EventKind::Experiment, id: e });
        assert_eq!(r.op, Op::Merge { body: obj(json!({"x": 1})), paths: vec![] });
        let p = Uuid::new_v4();
        let r = parse(1, json!({"project_id": p, "log_id": "g", "_object_delete": true}), None).unwrap();
        assert_eq!(r.log.kind, EventKind::ProjectLogs);
        assert_eq!(r.op, Op::Delete);
        assert_eq!(r.id.len(), 36, "a missing id is generated");
    }

    #[test]
    fn bad_rows_name_the_row_and_the_field() {
        let msg = |v: Value| parse(3, v, None).unwrap_err().to_string();
        assert!(msg(json!({"input": 1})).contains("row 3: names no object"));
        assert!(msg(json!({"experiment_id": "nope"})).contains("`experiment_id` must be a UUID, got `nope`"));
        assert!(msg(json!(5)).contains("must be a JSON object"));
        let p = Uuid::new_v4();
        assert!(msg(json!({"project_id": p, "log_id": "q"})).contains("`log_id`"));
        assert!(msg(json!({"project_id": p, "_is_merge": "yes"})).contains("`_is_merge`"));
        assert!(msg(json!({"project_id": p, "_merge_paths": [1]})).contains("`_merge_paths`"));
    }

    #[test]
    fn merges_recurse_into_objects_replace_the_rest_and_union_tags() {
        let cur = obj(json!({"created": "t0", "span_id": "s", "metadata": {"a": {"b": 1}}, "tags": ["x"], "out": [1]}));
        let body = obj(
            json!({"created": "t9", "span_id": "other", "metadata": {"a": {"c": 2}}, "tags": ["y", "x"], "out": [2]}),
        );
        let got = apply_merge(Some(cur), body, &[]);
        assert_eq!(
            Value::Object(got),
            json!({"created": "t0", "span_id": "s", "metadata": {"a": {"b": 1, "c": 2}}, "tags": ["x", "y"], "out": [2]})
        );
    }

    #[test]
    fn merge_paths_are_replaced_whole() {
        let cur = obj(json!({"metadata": {"a": {"b": 1}, "k": 1}}));
        let body = obj(json!({"metadata": {"a": {"c": 2}}}));
        let got = apply_merge(Some(cur), body, &[vec!["metadata".into(), "a".into()]]);
        assert_eq!(Value::Object(got), json!({"metadata": {"a": {"c": 2}, "k": 1}}));
    }

    #[test]
    fn a_merge_into_nothing_is_the_row_as_sent() {
        assert_eq!(apply_merge(None, obj(json!({"x": 1})), &[]), obj(json!({"x": 1})));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = encode_cursor(XactId(XactId::BASE + 9), &(XactId(XactId::BASE + 3), "row.with.dots".into()));
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (XactId(XactId::BASE + 9), (XactId(XactId::BASE + 3), "row.with.dots".into()))
        );
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor("bm90IGEgY3Vyc29y").is_err());
    }

    #[test]
    fn attachment_references_are_found_anywhere_in_a_row() {
        let row = json!({"input": {"file": {"type": "braintrust_attachment", "key": "k1"}}, "x": [{"type": "braintrust_attachment", "key": "k2"}]});
        let mut keys = Vec::new();
        attachment_keys(&row, &mut keys);
        keys.sort();
        assert_eq!(keys, vec!["k1", "k2"]);
    }
}
