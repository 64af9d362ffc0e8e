//! `/v1/project_score`: a project's score definitions (human review scores,
//! aggregate scores, online scoring rules). Reading them takes `read` on the
//! project; creating, changing or deleting one takes `update` on it.

use super::setting::{self, field, text, Change, Draft, Setting};
use super::{OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{
    format_time, AutomationRun, CreateProjectScore, ListResponse, PatchProjectScore, ProjectScore, ProjectScoreType,
};
use castellan_core::{ObjectType, Permission};
use castellan_store::{AdminFilter, AdminKind, AdminRecord};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(list, create, replace))
        .routes(routes!(retrieve, update, remove))
        .routes(routes!(runs))
}

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::ProjectScore;
    type Wire = ProjectScore;

    fn wire(a: &AdminRecord) -> ProjectScore {
        ProjectScore {
            id: a.id,
            project_id: a.scope.object_id,
            user_id: setting::creator(a).unwrap_or_default(),
            created: Some(format_time(a.created)),
            name: a.name.clone(),
            description: text(a, "description"),
            score_type: a
                .data
                .get("score_type")
                .and_then(|t| serde_json::from_value(t.clone()).ok())
                .unwrap_or(ProjectScoreType::Slider),
            categories: field(a, "categories"),
            config: field(a, "config"),
            position: text(a, "position"),
        }
    }
}

/// The most categories (or aggregated scores) one score may have.
const MAX_CATEGORIES: usize = 1000;

fn bad(msg: String) -> ApiError {
    ApiError::invalid_body(msg)
}

fn type_name(t: ProjectScoreType) -> &'static str {
    match t {
        ProjectScoreType::Slider => "slider",
        ProjectScoreType::Categorical => "categorical",
        ProjectScoreType::Weighted => "weighted",
        ProjectScoreType::Minimum => "minimum",
        ProjectScoreType::Maximum => "maximum",
        ProjectScoreType::Online => "online",
        ProjectScoreType::FreeForm => "free-form",
    }
}

/// Checks that `categories` has the shape `score_type` needs: `categorical` a
/// non-empty array of `{name, value}` with distinct names and values in [0, 1];
/// `weighted` a non-empty object of score name → non-negative weight (not all
/// zero); `minimum`/`maximum` a non-empty array of distinct score names; the others
/// none.
pub(crate) fn check_categories(t: ProjectScoreType, categories: Option<&Value>) -> ApiResult<()> {
    let c = categories.filter(|c| !c.is_null());
    let name = type_name(t);
    let distinct = |names: Vec<&str>| -> ApiResult<()> {
        let mut seen = std::collections::HashSet::new();
        for n in names {
            if n.trim().is_empty() {
                return Err(bad(format!("`categories` of a {name} score cannot hold an empty name")));
            }
            if !seen.insert(n) {
                return Err(bad(format!("`categories` of a {name} score names `{n}` twice")));
            }
        }
        Ok(())
    };
    match (t, c) {
        (ProjectScoreType::Categorical, Some(Value::Array(items))) if !items.is_empty() => {
            if items.len() > MAX_CATEGORIES {
                return Err(bad(format!("a score has at most {MAX_CATEGORIES} categories")));
            }
            let mut names = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let obj = item.as_object().ok_or_else(|| {
                    bad(format!("`categories[{i}]` must be an object `{{name, value}}` for a categorical score"))
                })?;
                if let Some(k) = obj.keys().find(|k| *k != "name" && *k != "value") {
                    return Err(bad(format!(
                        "`categories[{i}]` has an unknown field `{k}` (expected `name`, `value`)"
                    )));
                }
                let n = obj
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("`categories[{i}].name` must be a string")))?;
                let v = obj
                    .get("value")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| bad(format!("`categories[{i}].value` must be a number")))?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(bad(format!("`categories[{i}].value` must be between 0 and 1, got {v}")));
                }
                names.push(n);
            }
            distinct(names)
        }
        (ProjectScoreType::Weighted, Some(Value::Object(m))) if !m.is_empty() => {
            if m.len() > MAX_CATEGORIES {
                return Err(bad(format!("a score aggregates at most {MAX_CATEGORIES} scores")));
            }
            let mut total = 0.0;
            for (k, v) in m {
                let w = v.as_f64().ok_or_else(|| bad(format!("`categories.{k}` must be a number (its weight)")))?;
                if !w.is_finite() || w < 0.0 {
                    return Err(bad(format!("`categories.{k}` must be a weight of 0 or more, got {w}")));
                }
                total += w;
            }
            if total <= 0.0 {
                return Err(bad("the weights of a weighted score cannot all be 0".into()));
            }
            distinct(m.keys().map(String::as_str).collect())
        }
        (ProjectScoreType::Minimum | ProjectScoreType::Maximum, Some(Value::Array(items))) if !items.is_empty() => {
            if items.len() > MAX_CATEGORIES {
                return Err(bad(format!("a score aggregates at most {MAX_CATEGORIES} scores")));
            }
            let names = items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str().ok_or_else(|| bad(format!("`categories[{i}]` must be a score name (a string)")))
                })
                .collect::<ApiResult<Vec<_>>>()?;
            distinct(names)
        }
        (ProjectScoreType::Categorical, _) => {
            Err(bad("a categorical score needs `categories`: a non-empty array of `{name, value}`".into()))
        }
        (ProjectScoreType::Weighted, _) => {
            Err(bad("a weighted score needs `categories`: a non-empty object of score name to weight".into()))
        }
        (ProjectScoreType::Minimum | ProjectScoreType::Maximum, _) => {
            Err(bad(format!("a {name} score needs `categories`: a non-empty array of the score names it aggregates")))
        }
        (_, None) => Ok(()),
        (_, Some(_)) => Err(bad(format!("a {name} score takes no `categories`"))),
    }
}

fn object<'a>(path: &str, v: &'a Value, allowed: &[&str]) -> ApiResult<&'a Map<String, Value>> {
    let m = v.as_object().ok_or_else(|| bad(format!("`{path}` must be an object")))?;
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!("`{path}` has an unknown field `{k}` (expected one of {})", allowed.join(", "))));
    }
    Ok(m)
}

fn opt<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    m.get(k).filter(|v| !v.is_null())
}

fn strings(path: &str, v: Option<&Value>) -> ApiResult<()> {
    match v {
        None => Ok(()),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(bad(format!("`{path}` must be an array of strings"))),
    }
}

fn boolean(path: &str, v: Option<&Value>) -> ApiResult<()> {
    match v {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(_) => Err(bad(format!("`{path}` must be true or false"))),
    }
}

fn one_of(path: &str, v: Option<&Value>, allowed: &[&str]) -> ApiResult<()> {
    match v {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(other) => Err(bad(format!("`{path}` must be one of {}, got `{other}`", allowed.join(", ")))),
    }
}

fn number_in(path: &str, v: Option<&Value>, lo: f64, hi: f64) -> ApiResult<()> {
    match v {
        None => Ok(()),
        Some(n) => match n.as_f64() {
            Some(x) if (lo..=hi).contains(&x) => Ok(()),
            _ => Err(bad(format!("`{path}` must be a number from {lo} to {hi}, got `{n}`"))),
        },
    }
}

const FUNCTION_TYPES: [&str; 11] = [
    "llm",
    "scorer",
    "task",
    "tool",
    "custom_view",
    "preprocessor",
    "facet",
    "classifier",
    "tag",
    "parameters",
    "sandbox",
];

/// Checks an online scoring rule (`config.online`).
fn check_online(v: &Value) -> ApiResult<()> {
    let m = object(
        "config.online",
        v,
        &[
            "sampling_rate",
            "scorers",
            "btql_filter",
            "apply_to_root_span",
            "apply_to_span_names",
            "skip_logging",
            "scope",
            "status",
        ],
    )?;
    let rate = m.get("sampling_rate").ok_or_else(|| bad("`config.online.sampling_rate` is required".into()))?;
    number_in("config.online.sampling_rate", Some(rate), 0.0, 1.0)?;
    let scorers = m
        .get("scorers")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`config.online.scorers` is required: an array of functions".into()))?;
    for (i, s) in scorers.iter().enumerate() {
        let path = format!("config.online.scorers[{i}]");
        let t = s.get("type").and_then(Value::as_str);
        match t {
            Some("function") => {
                let f = object(&path, s, &["type", "id", "version"])?;
                if f.get("id").and_then(Value::as_str).is_none_or(str::is_empty) {
                    return Err(bad(format!("`{path}.id` is required: the function's id")));
                }
                if opt(f, "version").is_some_and(|v| !v.is_string()) {
                    return Err(bad(format!("`{path}.version` must be a string")));
                }
            }
            Some("global") => {
                let f = object(&path, s, &["type", "name", "function_type"])?;
                if f.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
                    return Err(bad(format!("`{path}.name` is required: the global function's name")));
                }
                one_of(&format!("{path}.function_type"), opt(f, "function_type"), &FUNCTION_TYPES)?;
            }
            _ => return Err(bad(format!("`{path}.type` must be `function` or `global`"))),
        }
    }
    match opt(m, "btql_filter") {
        None => {}
        Some(Value::String(f)) if f.trim().is_empty() => {}
        Some(Value::String(f)) => {
            crate::scoring::parse_filter(f)
                .map_err(|e| bad(format!("`config.online.btql_filter` is not a BTQL expression: {e}")))?;
        }
        Some(_) => return Err(bad("`config.online.btql_filter` must be a string".into())),
    }
    boolean("config.online.apply_to_root_span", opt(m, "apply_to_root_span"))?;
    boolean("config.online.skip_logging", opt(m, "skip_logging"))?;
    strings("config.online.apply_to_span_names", opt(m, "apply_to_span_names"))?;
    one_of("config.online.status", opt(m, "status"), &["active", "paused"])?;
    // Only span scope is run. Braintrust's API names trace scope (`idle_seconds`) and
    // group scope (`group_by`, `placement`, …) but not what their scorers receive or
    // where their scores go, so such rules are refused rather than stored and never
    // run.
    if let Some(scope) = opt(m, "scope") {
        match scope.get("type").and_then(Value::as_str) {
            Some("span") => {
                object("config.online.scope", scope, &["type"])?;
            }
            Some(t @ ("trace" | "group")) => {
                return Err(bad(format!(
                    "`config.online.scope`: `{t}` scope is not supported; Castellan scores each span on its own \
                     (use `{{\"type\": \"span\"}}` or leave `scope` out)"
                )))
            }
            _ => {
                return Err(bad(
                    "`config.online.scope.type` must be `span` (`trace` and `group` are not supported)".into()
                ))
            }
        }
    }
    Ok(())
}

/// Checks `config` (an object of the fields Braintrust's `ProjectScoreConfig` has)
/// against `score_type`: `multi_select` only on categorical scores, `online` needed
/// by (and only on) online scores.
pub(crate) fn check_config(t: ProjectScoreType, config: Option<&Value>) -> ApiResult<()> {
    let config = config.filter(|c| !c.is_null());
    let Some(c) = config else {
        return match t {
            ProjectScoreType::Online => Err(bad("an online score needs `config.online`".into())),
            _ => Ok(()),
        };
    };
    let m = object("config", c, &["multi_select", "destination", "visibility", "online", "condition", "object_types"])?;
    boolean("config.multi_select", opt(m, "multi_select"))?;
    if opt(m, "multi_select") == Some(&Value::Bool(true)) && t != ProjectScoreType::Categorical {
        return Err(bad("`config.multi_select` applies to categorical scores only".into()));
    }
    if opt(m, "destination").is_some_and(|d| !d.is_string()) {
        return Err(bad("`config.destination` must be a string (e.g. `expected`)".into()));
    }
    if let Some(v) = opt(m, "visibility") {
        let vm = object("config.visibility", v, &["users", "groups"])?;
        strings("config.visibility.users", opt(vm, "users"))?;
        strings("config.visibility.groups", opt(vm, "groups"))?;
    }
    if let Some(cond) = opt(m, "condition") {
        let cm = object("config.condition", cond, &["when", "behavior"])?;
        let when = cm.get("when").ok_or_else(|| bad("`config.condition.when` is required".into()))?;
        let wm = object("config.condition.when", when, &["clauses", "subspan_clauses", "trace_clauses"])?;
        for k in ["clauses", "subspan_clauses", "trace_clauses"] {
            strings(&format!("config.condition.when.{k}"), opt(wm, k))?;
        }
        one_of("config.condition.behavior", opt(cm, "behavior"), &["hidden"])?;
    }
    if let Some(types) = opt(m, "object_types") {
        let a = types.as_array().ok_or_else(|| bad("`config.object_types` must be an array".into()))?;
        for (i, v) in a.iter().enumerate() {
            one_of(&format!("config.object_types[{i}]"), Some(v), &["project_logs", "dataset", "experiment"])?;
        }
    }
    match (t, opt(m, "online")) {
        (ProjectScoreType::Online, Some(o)) => check_online(o),
        (ProjectScoreType::Online, None) => Err(bad("an online score needs `config.online`".into())),
        (_, Some(_)) => Err(bad("`config.online` applies to online scores only".into())),
        (_, None) => Ok(()),
    }
}

fn check_description(d: Option<&str>) -> ApiResult<()> {
    match d {
        Some(d) if d.chars().count() > 10_000 => Err(bad("`description` is longer than 10000 characters".into())),
        _ => Ok(()),
    }
}

/// How configuration as code lists score definitions: every field of the body,
/// checked as a create checks it.
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec::of::<Kind>(
        &[ObjectType::Project],
        &["categories", "config", "description", "position", "score_type"],
        |data| {
            let t = data.get("score_type").cloned().unwrap_or(Value::Null);
            let t: ProjectScoreType = serde_json::from_value(t).map_err(|_| {
                bad("`score_type` is required: one of slider, categorical, weighted, minimum, maximum, online, free-form"
                    .into())
            })?;
            check_description(super::config::text(data, "description")?)?;
            super::config::text(data, "position")?;
            check_categories(t, data.get("categories"))?;
            check_config(t, data.get("config"))
        },
    )
}

/// The score list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectScoreFilters {
    /// Only these scores: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only scores of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    project_score_name: Option<String>,
    /// Only scores of this project.
    project_id: Option<Uuid>,
    /// Only scores of the project of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    project_name: Option<String>,
    /// Only scores of these types (repeated or comma-separated).
    #[serde(default)]
    #[param(value_type = Option<Vec<ProjectScoreType>>)]
    score_type: Vec<String>,
}

/// Score definitions of the projects the caller can read, newest first.
#[utoipa::path(get, path = "/v1/project_score", tag = "ProjectScores", params(Page, ProjectScoreFilters, OrgName),
    responses((status = 200, body = ListResponse<ProjectScore>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<ProjectScoreFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<ProjectScore>>> {
    for t in &f.score_type {
        if serde_json::from_value::<ProjectScoreType>(json!(t)).is_err() {
            return Err(ApiError::invalid_parameter(format!(
                "`score_type` must be one of slider, categorical, weighted, minimum, maximum, online, free-form; got `{t}`"
            )));
        }
    }
    let Some(project) = super::project_filter(&caller, org.get(), f.project_id, f.project_name.as_deref()).await?
    else {
        return Ok(Json(ListResponse { objects: Vec::new() }));
    };
    let filter = AdminFilter {
        scope_type: Some(ObjectType::Project),
        scope_id: project,
        ids: f.ids,
        name: f.project_score_name,
        ..setting::filter::<Kind>()
    };
    let types = f.score_type;
    let objects = setting::list::<Kind>(&caller, &page, org.get(), filter, |a| {
        types.is_empty()
            || a.data.get("score_type").and_then(Value::as_str).is_some_and(|t| types.iter().any(|x| x == t))
    })
    .await?;
    Ok(Json(ListResponse { objects }))
}

async fn create_or_replace(
    caller: Caller,
    body: CreateProjectScore,
    replace: bool,
) -> ApiResult<Written<ProjectScore>> {
    let name = setting::name("name", &body.name)?;
    check_description(body.description.as_deref())?;
    check_categories(body.score_type, body.categories.as_ref())?;
    check_config(body.score_type, body.config.as_ref())?;
    let mut data = Map::new();
    data.insert("description".into(), json!(body.description));
    data.insert("score_type".into(), json!(body.score_type));
    data.insert("categories".into(), body.categories.unwrap_or(Value::Null));
    data.insert("config".into(), body.config.unwrap_or(Value::Null));
    let draft = Draft { scope: setting::project(body.project_id), name, data, secret: None };
    setting::create::<Kind>(&caller, None, draft, replace).await
}

/// Creates a score definition (`update` on the project), or answers the project's
/// score of that name unchanged (`x-bt-found-existing: true`).
#[utoipa::path(post, path = "/v1/project_score", tag = "ProjectScores", request_body = CreateProjectScore,
    responses((status = 200, body = ProjectScore)))]
pub async fn create(caller: Caller, Body(body): Body<CreateProjectScore>) -> ApiResult<Written<ProjectScore>> {
    create_or_replace(caller, body, false).await
}

/// Creates a score definition, or replaces the project's score of that name.
#[utoipa::path(put, path = "/v1/project_score", tag = "ProjectScores", request_body = CreateProjectScore,
    responses((status = 200, body = ProjectScore)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateProjectScore>) -> ApiResult<Written<ProjectScore>> {
    create_or_replace(caller, body, true).await
}

/// One score definition.
#[utoipa::path(get, path = "/v1/project_score/{project_score_id}", tag = "ProjectScores",
    params(("project_score_id" = Uuid, Path)), responses((status = 200, body = ProjectScore)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<ProjectScore>> {
    Ok(Json(setting::retrieve::<Kind>(&caller, id).await?))
}

/// Changes a score definition (`update` on the project): `config` is merged into
/// the stored one, `categories` replaced; the result must still be a valid score.
#[utoipa::path(patch, path = "/v1/project_score/{project_score_id}", tag = "ProjectScores",
    params(("project_score_id" = Uuid, Path)), request_body = Option<PatchProjectScore>,
    responses((status = 200, body = ProjectScore)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchProjectScore>,
) -> ApiResult<Written<ProjectScore>> {
    check_description(body.description.as_deref())?;
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    if let Some(d) = &body.description {
        c.replace.insert("description".into(), json!(d));
    }
    if let Some(t) = body.score_type {
        c.replace.insert("score_type".into(), json!(t));
    }
    if let Some(cat) = &body.categories {
        c.replace.insert("categories".into(), cat.clone());
    }
    if let Some(cfg) = &body.config {
        c.data.insert("config".into(), cfg.clone());
    }
    setting::update::<Kind>(&caller, id, c, |before| {
        // The score as it would be after the change must still be valid.
        let t = body.score_type.unwrap_or_else(|| Kind::wire(before).score_type);
        let categories = body.categories.clone().or_else(|| field(before, "categories"));
        let mut config = field(before, "config").unwrap_or(Value::Null);
        if let Some(cfg) = &body.config {
            if config.is_null() {
                config = json!({});
            }
            setting::deep_merge(&mut config, cfg.clone());
        }
        check_categories(t, categories.as_ref())?;
        check_config(t, Some(&config))
    })
    .await
}

/// Castellan extension: the newest runs of an online scoring rule (at most 100,
/// newest first), each a pass of the worker with its counts (`read` on the project).
#[utoipa::path(get, path = "/v1/project_score/{project_score_id}/runs", tag = "ProjectScores",
    params(("project_score_id" = Uuid, Path)), responses((status = 200, body = ListResponse<AutomationRun>)))]
pub async fn runs(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<ListResponse<AutomationRun>>> {
    let (a, permit) = caller.state().admin_for(&caller, Kind::KIND, id, Permission::Read).await?;
    let runs = caller.state().jobs(&permit).list_runs(a.id, 100).await?;
    Ok(Json(ListResponse { objects: runs.into_iter().map(super::project_automation::run_wire).collect() }))
}

/// Deletes a score definition (`update` on the project).
#[utoipa::path(delete, path = "/v1/project_score/{project_score_id}", tag = "ProjectScores",
    params(("project_score_id" = Uuid, Path)), responses((status = 200, body = ProjectScore)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<ProjectScore>> {
    setting::remove::<Kind>(&caller, id, |_| Ok(())).await
}
