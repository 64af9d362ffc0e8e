//! How configuration as code treats each kind of administration object. Every kind
//! is listed here (the match is exhaustive, so a new kind must decide): the ones a
//! document lists under `objects`, generically, each described by its own route
//! module, and the ones it leaves out.

use crate::error::{ApiError, ApiResult};
use crate::routes::setting::{Creation, Setting};
use castellan_core::{ObjectType, Permission};
use castellan_store::{AdminKind, AdminRecord};
use serde_json::{Map, Value};

/// A `data` key, and how it follows from the name.
pub(crate) type Derived = (&'static str, fn(&str) -> String);

/// How one kind appears in a document's `objects` and how apply writes it.
#[derive(Clone, Copy)]
pub(crate) struct KindSpec {
    /// What objects of the kind may be set on.
    pub scopes: &'static [ObjectType],
    /// The `data` keys a document holds (the rest of `data`, derived or secret, is
    /// never exported and stays as it is when apply changes the object).
    pub keys: &'static [&'static str],
    /// Whether the kind holds a sealed secret value: a document then carries its
    /// name and type only; apply creates it without a value and never touches one.
    pub secret: bool,
    /// Whether its `data` records its creator (`user_id`), as its endpoint does.
    pub records_creator: bool,
    /// What creating one needs on what it is set on, as its endpoint decides.
    pub creation: Creation,
    /// What deleting one needs on [`AdminRecord::guard`].
    pub delete: Permission,
    /// Checks a document's values of `keys`, as its endpoint checks a body.
    pub check: fn(&Map<String, Value>) -> ApiResult<()>,
    /// Checks a name beyond the rules every name follows.
    pub check_name: Option<fn(&str) -> ApiResult<()>>,
    /// A `data` key derived from the name (kept by the endpoint), which must be
    /// unique among the kind's objects on what they are set on.
    pub derived: Option<Derived>,
    /// The object as its audit records show it (as its own endpoint audits it).
    pub audited: fn(&AdminRecord) -> Value,
}

impl KindSpec {
    /// A kind served by the shared handlers (`routes::setting`): its creation,
    /// deletion and audited form come from there.
    pub(crate) fn of<S: Setting>(
        scopes: &'static [ObjectType],
        keys: &'static [&'static str],
        check: fn(&Map<String, Value>) -> ApiResult<()>,
    ) -> KindSpec {
        KindSpec {
            scopes,
            keys,
            secret: false,
            records_creator: true,
            creation: S::CREATE,
            delete: S::DELETE,
            check,
            check_name: None,
            derived: None,
            audited: audited::<S>,
        }
    }
}

fn audited<S: Setting>(a: &AdminRecord) -> Value {
    serde_json::to_value(S::audited(a)).unwrap_or_default()
}

/// The kinds a document lists under `objects`, and how; `None` for a kind it
/// leaves out: project groups (a section of their own), dataset snapshots and
/// environment assignments (versions of data, which no other organization has).
pub(crate) fn spec(kind: AdminKind) -> Option<KindSpec> {
    use crate::routes::*;
    match kind {
        AdminKind::EnvVar => Some(env_var::config_kind()),
        AdminKind::ProjectTag => Some(project_tag::config_kind()),
        AdminKind::AiSecret => Some(ai_secret::config_kind()),
        AdminKind::ProjectScore => Some(project_score::config_kind()),
        AdminKind::SpanIframe => Some(span_iframe::config_kind()),
        AdminKind::View => Some(view::config_kind()),
        AdminKind::Agent => Some(agent::config_kind()),
        AdminKind::McpServer => Some(mcp_server::config_kind()),
        AdminKind::SimulatedUser => Some(simulated_user::config_kind()),
        AdminKind::Environment => Some(environment::config_kind()),
        AdminKind::ProjectAutomation => Some(project_automation::config_kind()),
        AdminKind::OrgAutomation => Some(project_automation::org_config_kind()),
        AdminKind::ProjectGroup
        | AdminKind::DatasetSnapshot
        | AdminKind::EnvironmentObject
        | AdminKind::ScimUser
        | AdminKind::ScimGroup
        | AdminKind::SsoConfig => None,
    }
}

/// The kinds listed under `objects`.
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

/// Checks a document's object of a kind: its name, and its `data` (only the kind's
/// keys, each valid).
pub(crate) fn check(kind: AdminKind, spec: &KindSpec, name: &str, data: &Map<String, Value>) -> Result<(), String> {
    if let Some(check_name) = spec.check_name {
        check_name(name).map_err(|e| e.to_string())?;
    }
    for k in data.keys() {
        if DERIVED.contains(&k.as_str()) {
            return Err(format!("`data.{k}` is derived or secret and cannot be set by a document"));
        }
        if !spec.keys.contains(&k.as_str()) {
            let keys = if spec.keys.is_empty() { "none".to_owned() } else { spec.keys.join(", ") };
            return Err(format!("unknown field `data.{k}` for a {kind}; its fields are: {keys}", kind = kind.as_str()));
        }
    }
    (spec.check)(data).map_err(|e| format!("`data`: {e}"))
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

/// A string value of `data` (absent or null is none), or a 400 naming its key.
pub(crate) fn text<'a>(data: &'a Map<String, Value>, key: &str) -> ApiResult<Option<&'a str>> {
    match data.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::invalid_body(format!("`{key}` must be a string, got `{other}`"))),
    }
}

/// A string value `data` must have, or a 400 naming its key.
pub(crate) fn required<'a>(data: &'a Map<String, Value>, key: &str) -> ApiResult<&'a str> {
    text(data, key)?.ok_or_else(|| ApiError::invalid_body(format!("`{key}` is required")))
}
