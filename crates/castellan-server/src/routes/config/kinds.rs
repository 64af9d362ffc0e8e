//! How configuration as code treats each kind of administration object. Every kind
//! is listed here (the match is exhaustive, so a new kind must decide): the ones a
//! document lists under `objects`, generically, and the ones with a section of
//! their own.

use castellan_core::ObjectType;
use castellan_store::{AdminKind, AdminRecord};
use serde_json::{Map, Value};

/// How one kind appears in a document's `objects` and how apply writes it.
#[derive(Clone, Copy)]
pub(crate) struct KindSpec {
    /// What objects of the kind may be set on.
    pub scopes: &'static [ObjectType],
    /// The `data` keys a document holds (the rest of `data`, derived or secret, is
    /// never exported and stays as it is when apply changes the object).
    pub keys: &'static [&'static str],
    /// Whether the kind holds a sealed secret value: a document then carries its
    /// name and type only, apply creates it without a value and never touches one.
    pub secret: bool,
    /// Whether its `data` records its creator (`user_id`), as its endpoint does.
    pub records_creator: bool,
    /// Checks a document's values of `keys`; the message names the key.
    pub check: fn(&Map<String, Value>) -> Result<(), String>,
    /// The object as its audit records show it (as its own endpoint audits it).
    pub audited: fn(&AdminRecord) -> Value,
}

/// The kinds a document lists under `objects`, and how; `None` for a kind with a
/// section of its own (project groups).
pub(crate) fn spec(kind: AdminKind) -> Option<KindSpec> {
    match kind {
        AdminKind::EnvVar => Some(crate::routes::env_var::config_kind()),
        AdminKind::ProjectTag => Some(crate::routes::project_tag::config_kind()),
        AdminKind::ProjectGroup => None,
    }
}

/// The kinds listed under `objects`, by name.
pub(crate) fn listed() -> Vec<AdminKind> {
    AdminKind::ALL.into_iter().filter(|k| spec(*k).is_some()).collect()
}

/// Keys no document holds whatever the kind: ids, times, creators, previews.
const DERIVED: [&str; 10] =
    ["id", "created", "updated", "user_id", "preview", "preview_secret", "secret", "value", "org_id", "project_id"];

/// A stored object's `data` as a document holds it: the kind's keys, without nulls.
pub(crate) fn exported(spec: &KindSpec, data: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(m) = data.as_object() {
        for k in spec.keys {
            if let Some(v) = m.get(*k).map(super::norm::without_nulls).filter(|v| !v.is_null()) {
                out.insert((*k).to_owned(), v);
            }
        }
    }
    out
}

/// Checks a document's `data` for a kind: only its keys, each valid.
pub(crate) fn check(kind: AdminKind, spec: &KindSpec, data: &Map<String, Value>) -> Result<(), String> {
    for k in data.keys() {
        if DERIVED.contains(&k.as_str()) {
            return Err(format!("`data.{k}` is derived or secret and cannot be set by a document"));
        }
        if !spec.keys.contains(&k.as_str()) {
            let keys = if spec.keys.is_empty() { "none".to_owned() } else { spec.keys.join(", ") };
            return Err(format!("unknown field `data.{k}` for a {kind}; its fields are: {keys}", kind = kind.as_str()));
        }
    }
    (spec.check)(data)
}

/// `data` to store: `before` (the stored object's, kept for every key a document
/// does not hold) with the kind's keys replaced by `desired`.
pub(crate) fn merged(spec: &KindSpec, before: &Value, desired: &Map<String, Value>) -> Value {
    let mut out = before.as_object().cloned().unwrap_or_default();
    for k in spec.keys {
        out.remove(*k);
    }
    for (k, v) in desired {
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}

/// A string value of `data`, or an error naming its key.
pub(crate) fn text<'a>(data: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("`data.{key}` must be a string, got `{other}`")),
    }
}
