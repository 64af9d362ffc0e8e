//! `/v1/project_automation` and `/v1/org_automation`: automation rules. Reading a
//! project's takes `read` on the project, changing one `update` on it; an org's
//! (retention for every project) takes `read` / `update` on the organization.
//!
//! A webhook action's signing secret (generated, shown once) and its custom header
//! values are sealed at rest together; answers show the header names only.

use super::setting::{self, field, text, Change, Draft, Setting};
use super::{check_url, OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{
    format_time, AutomationDelivery, AutomationRun, AutomationTestResult, CreateOrgAutomation, CreateProjectAutomation,
    ListResponse, OrgAutomation, PatchOrgAutomation, PatchProjectAutomation, ProjectAutomation, RetentionPreview,
};
use castellan_core::{ObjectRef, ObjectType, Permission};
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
        .routes(routes!(org_list, org_create, org_replace))
        .routes(routes!(org_retrieve, org_update, org_remove))
        .routes(routes!(runs))
        .routes(routes!(preview))
        .routes(routes!(run_now))
        .routes(routes!(test))
        .routes(routes!(deliveries))
        .routes(routes!(org_runs))
        .routes(routes!(org_preview))
        .routes(routes!(org_run_now))
}

pub(crate) fn run_wire(r: castellan_store::RunRecord) -> AutomationRun {
    AutomationRun {
        id: r.id,
        automation_id: r.automation_id,
        started: format_time(r.started),
        finished: r.finished.map(format_time),
        status: r.status,
        count: r.count,
        error: r.error,
        details: r.details,
    }
}

pub(crate) fn delivery_wire(d: castellan_store::DeliveryRecord) -> AutomationDelivery {
    AutomationDelivery {
        id: d.id,
        automation_id: d.automation_id,
        run_id: d.run_id,
        created: format_time(d.created),
        finished: d.finished.map(format_time),
        status: d.status,
        attempts: d.attempts,
        http_status: d.http_status,
        error: d.error,
        details: d.details,
    }
}

/// Castellan extension: the automation's newest deliveries (at most 100), newest
/// first (`read` on the project).
#[utoipa::path(get, path = "/v1/project_automation/{project_automation_id}/deliveries", tag = "ProjectAutomations",
    params(("project_automation_id" = Uuid, Path)), responses((status = 200, body = ListResponse<AutomationDelivery>)))]
pub async fn deliveries(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<ListResponse<AutomationDelivery>>> {
    let (a, permit) = caller.state().admin_for(&caller, Kind::KIND, id, Permission::Read).await?;
    let list = caller.state().jobs(&permit).list_deliveries(a.id, 100).await?;
    Ok(Json(ListResponse { objects: list.into_iter().map(delivery_wire).collect() }))
}

/// Castellan extension: tests a `logs` alert (`update` on the project): counts the
/// spans of the last interval matching its filter and, only when some match, sends
/// its notification with `is_test: true`.
#[utoipa::path(post, path = "/v1/project_automation/{project_automation_id}/test", tag = "ProjectAutomations",
    params(("project_automation_id" = Uuid, Path)), responses((status = 200, body = AutomationTestResult)))]
pub async fn test(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<AutomationTestResult>> {
    let (a, permit) = caller.state().admin_for(&caller, Kind::KIND, id, Permission::Update).await?;
    let t = crate::automation::test_alert(caller.state(), &permit, &a).await?;
    Ok(Json(AutomationTestResult {
        count: t.count,
        delivered: t.delivered,
        delivery: t.delivery.map(delivery_wire),
        message: t.message,
    }))
}

/// The newest runs of an automation (`read` on what it is set on).
async fn runs_of<S: Setting>(caller: &Caller, id: Uuid) -> ApiResult<Vec<AutomationRun>> {
    let (a, permit) = caller.state().admin_for(caller, S::KIND, id, Permission::Read).await?;
    let runs = caller.state().jobs(&permit).list_runs(a.id, 100).await?;
    Ok(runs.into_iter().map(run_wire).collect())
}

async fn preview_of<S: Setting>(caller: &Caller, id: Uuid) -> ApiResult<RetentionPreview> {
    let (a, permit) = caller.state().admin_for(caller, S::KIND, id, Permission::Read).await?;
    let sweep = crate::automation::preview(caller.state(), &permit, &a).await?;
    Ok(RetentionPreview {
        cutoff: sweep.cutoff,
        objects: sweep.objects.iter().map(|t| json!(t)).collect(),
        total: sweep.total,
    })
}

async fn run_of<S: Setting>(caller: &Caller, id: Uuid) -> ApiResult<AutomationRun> {
    let (a, permit) = caller.state().admin_for(caller, S::KIND, id, Permission::Update).await?;
    let holder = format!("request-{}", Uuid::new_v4());
    Ok(run_wire(crate::automation::run(caller.state(), &permit, &a, &holder).await?))
}

/// Castellan extension: the automation's newest runs (at most 100), newest first.
#[utoipa::path(get, path = "/v1/project_automation/{project_automation_id}/runs", tag = "ProjectAutomations",
    params(("project_automation_id" = Uuid, Path)), responses((status = 200, body = ListResponse<AutomationRun>)))]
pub async fn runs(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<ListResponse<AutomationRun>>> {
    Ok(Json(ListResponse { objects: runs_of::<Kind>(&caller, id).await? }))
}

/// Castellan extension: what a retention rule would delete if it ran now.
#[utoipa::path(get, path = "/v1/project_automation/{project_automation_id}/preview", tag = "ProjectAutomations",
    params(("project_automation_id" = Uuid, Path)), responses((status = 200, body = RetentionPreview)))]
pub async fn preview(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<RetentionPreview>> {
    Ok(Json(preview_of::<Kind>(&caller, id).await?))
}

/// Castellan extension: runs a retention rule now (`update` on the project), as the
/// scheduler would; the run.
#[utoipa::path(post, path = "/v1/project_automation/{project_automation_id}/run", tag = "ProjectAutomations",
    params(("project_automation_id" = Uuid, Path)), responses((status = 200, body = AutomationRun)))]
pub async fn run_now(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<AutomationRun>> {
    Ok(Json(run_of::<Kind>(&caller, id).await?))
}

/// Castellan extension: the org automation's newest runs.
#[utoipa::path(get, path = "/v1/org_automation/{org_automation_id}/runs", tag = "OrgAutomations",
    params(("org_automation_id" = Uuid, Path)), responses((status = 200, body = ListResponse<AutomationRun>)))]
pub async fn org_runs(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<ListResponse<AutomationRun>>> {
    Ok(Json(ListResponse { objects: runs_of::<OrgKind>(&caller, id).await? }))
}

/// Castellan extension: what an org retention rule would delete now (projects with
/// a rule of their own for the same object type are left to it).
#[utoipa::path(get, path = "/v1/org_automation/{org_automation_id}/preview", tag = "OrgAutomations",
    params(("org_automation_id" = Uuid, Path)), responses((status = 200, body = RetentionPreview)))]
pub async fn org_preview(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<RetentionPreview>> {
    Ok(Json(preview_of::<OrgKind>(&caller, id).await?))
}

/// Castellan extension: runs an org retention rule now (`update` on the organization).
#[utoipa::path(post, path = "/v1/org_automation/{org_automation_id}/run", tag = "OrgAutomations",
    params(("org_automation_id" = Uuid, Path)), responses((status = 200, body = AutomationRun)))]
pub async fn org_run_now(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<AutomationRun>> {
    Ok(Json(run_of::<OrgKind>(&caller, id).await?))
}

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::ProjectAutomation;
    const SECRET_FIELD: &'static str = "config";
    type Wire = ProjectAutomation;

    fn wire(a: &AdminRecord) -> ProjectAutomation {
        ProjectAutomation {
            id: a.id,
            project_id: a.scope.object_id,
            user_id: setting::creator(a),
            created: Some(format_time(a.created)),
            name: a.name.clone(),
            description: text(a, "description"),
            config: field(a, "config").unwrap_or(Value::Null),
            signing_secret: None,
        }
    }
}

pub(crate) struct OrgKind;

impl Setting for OrgKind {
    const KIND: AdminKind = AdminKind::OrgAutomation;
    type Wire = OrgAutomation;

    fn wire(a: &AdminRecord) -> OrgAutomation {
        OrgAutomation {
            id: a.id,
            org_id: a.org_id.0,
            user_id: setting::creator(a),
            created: Some(format_time(a.created)),
            name: a.name.clone(),
            description: text(a, "description"),
            config: field(a, "config").unwrap_or(Value::Null),
        }
    }
}

fn bad(m: String) -> ApiError {
    ApiError::invalid_body(m)
}

fn obj<'a>(path: &str, v: &'a Value, allowed: &[&str]) -> ApiResult<&'a Map<String, Value>> {
    let m = v.as_object().ok_or_else(|| bad(format!("`{path}` must be an object")))?;
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!("`{path}` has an unknown field `{k}` (expected one of {})", allowed.join(", "))));
    }
    Ok(m)
}

fn string<'a>(path: &str, m: &'a Map<String, Value>, key: &str, required: bool) -> ApiResult<Option<&'a str>> {
    match m.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s)),
        _ => Err(bad(format!("`{path}.{key}` is required: a non-empty string"))),
    }
}

fn one_of(path: &str, m: &Map<String, Value>, key: &str, allowed: &[&str], required: bool) -> ApiResult<()> {
    match m.get(key) {
        None | Some(Value::Null) if !required => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        other => Err(bad(format!(
            "`{path}.{key}` must be one of {}, got `{}`",
            allowed.join(", "),
            other.map(Value::to_string).unwrap_or_else(|| "nothing".into())
        ))),
    }
}

fn interval(path: &str, m: &Map<String, Value>) -> ApiResult<()> {
    match m.get("interval_seconds").and_then(Value::as_f64) {
        Some(s) if (1.0..=2_592_000.0).contains(&s) => Ok(()),
        _ => Err(bad(format!("`{path}.interval_seconds` is required: a number from 1 to 2592000"))),
    }
}

/// The most custom headers a webhook may carry, and their size.
const MAX_HEADERS: usize = 20;

/// Checks an action; a webhook's header values are taken out (to be sealed) and
/// replaced by their names.
fn check_action(path: &str, v: &mut Value) -> ApiResult<Option<Map<String, Value>>> {
    let t = v.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    match t.as_str() {
        "webhook" => {
            let m = obj(path, v, &["type", "url", "formatting_prompt", "headers"])?;
            check_url(&format!("{path}.url"), string(path, m, "url", true)?.unwrap_or_default())?;
            string(path, m, "formatting_prompt", false)?;
            let headers = match m.get("headers") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(h)) => h.clone(),
                Some(_) => return Err(bad(format!("`{path}.headers` must be an object of header name to value"))),
            };
            if headers.len() > MAX_HEADERS {
                return Err(bad(format!("`{path}.headers`: at most {MAX_HEADERS} headers")));
            }
            for (k, val) in &headers {
                let name_ok = axum::http::HeaderName::from_bytes(k.as_bytes()).is_ok();
                let value_ok =
                    val.as_str().is_some_and(|s| axum::http::HeaderValue::from_str(s).is_ok() && s.len() <= 4096);
                if !name_ok || !value_ok {
                    return Err(bad(format!("`{path}.headers.{k}` must be a valid header name with a string value")));
                }
                if matches!(
                    k.to_ascii_lowercase().as_str(),
                    "content-type" | "content-length" | "host" | "x-castellan-signature"
                ) {
                    return Err(bad(format!("`{path}.headers.{k}` is set by Castellan and cannot be overridden")));
                }
            }
            let names: Vec<Value> = headers.keys().map(|k| json!(k)).collect();
            if let Some(m) = v.as_object_mut() {
                m.remove("headers");
                if !names.is_empty() {
                    m.insert("header_names".into(), Value::Array(names));
                }
            }
            Ok(Some(headers))
        }
        "slack" => {
            let m = obj(path, v, &["type", "workspace_id", "channel", "message_template", "formatting_prompt"])?;
            string(path, m, "workspace_id", true)?;
            string(path, m, "channel", true)?;
            string(path, m, "message_template", false)?;
            Ok(None)
        }
        "pagerduty" => {
            let m = obj(path, v, &["type", "routing_key_secret_name", "severity", "formatting_prompt"])?;
            string(path, m, "routing_key_secret_name", true)?;
            one_of(path, m, "severity", &["critical", "error", "warning", "info"], true)?;
            Ok(None)
        }
        _ => Err(bad(format!("`{path}.type` must be `webhook`, `slack` or `pagerduty`"))),
    }
}

/// Checks a retention rule.
fn check_retention(m: &Map<String, Value>) -> ApiResult<()> {
    one_of("config", m, "object_type", &["project_logs", "experiment", "dataset"], true)?;
    match m.get("retention_days").and_then(Value::as_u64) {
        Some(d) if d <= 36_500 => Ok(()),
        _ => Err(bad("`config.retention_days` is required: a whole number of days from 0 to 36500".into())),
    }
}

/// Checks a project automation's `config` against its `event_type`; the header
/// values of a webhook action come back (taken out of the config).
pub(crate) fn check_config(config: &mut Value) -> ApiResult<Option<Map<String, Value>>> {
    let event = config.get("event_type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let status = ["active", "paused"];
    match event.as_str() {
        "logs" => {
            let m = obj("config", config, &["event_type", "btql_filter", "interval_seconds", "action", "status"])?;
            let filter = string("config", m, "btql_filter", true)?.unwrap_or_default();
            crate::automation::check_alert_filter(filter).map_err(bad)?;
            interval("config", m)?;
            one_of("config", m, "status", &status, false)?;
            let mut action = m.get("action").cloned().ok_or_else(|| bad("`config.action` is required".into()))?;
            let headers = check_action("config.action", &mut action)?;
            config["action"] = action;
            Ok(headers)
        }
        "retention" => {
            let m = obj("config", config, &["event_type", "object_type", "retention_days"])?;
            check_retention(m)?;
            Ok(None)
        }
        "environment_update" => {
            let m = obj("config", config, &["event_type", "environment_filter", "action", "status"])?;
            one_of("config", m, "status", &status, false)?;
            match m.get("environment_filter") {
                None | Some(Value::Null) => {}
                Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
                Some(_) => return Err(bad("`config.environment_filter` must be an array of environment slugs".into())),
            }
            let mut action = m.get("action").cloned().ok_or_else(|| bad("`config.action` is required".into()))?;
            let headers = check_action("config.action", &mut action)?;
            config["action"] = action;
            Ok(headers)
        }
        "btql_export" => {
            let m = obj(
                "config",
                config,
                &["event_type", "export_definition", "export_path", "format", "interval_seconds", "credentials", "batch_size", "scope", "status"],
            )?;
            let def = m.get("export_definition").ok_or_else(|| bad("`config.export_definition` is required".into()))?;
            match def.get("type").and_then(Value::as_str) {
                Some("log_traces" | "log_spans") => {}
                Some("btql_query") if def.get("btql_query").is_some_and(Value::is_string) => {}
                _ => return Err(bad("`config.export_definition` must be log_traces, log_spans or btql_query with `btql_query`".into())),
            }
            string("config", m, "export_path", true)?;
            one_of("config", m, "format", &["jsonl", "parquet"], true)?;
            interval("config", m)?;
            one_of("config", m, "status", &status, false)?;
            let cred = m.get("credentials").ok_or_else(|| bad("`config.credentials` is required".into()))?;
            match cred.get("type").and_then(Value::as_str) {
                Some("aws_iam") => {
                    let c = obj("config.credentials", cred, &["type", "role_arn", "external_id"])?;
                    string("config.credentials", c, "role_arn", true)?;
                    string("config.credentials", c, "external_id", true)?;
                }
                Some("gcp_service_account") => {
                    let c = obj("config.credentials", cred, &["type", "service_account_email", "credential_name"])?;
                    string("config.credentials", c, "service_account_email", true)?;
                }
                _ => return Err(bad("`config.credentials.type` must be `aws_iam` or `gcp_service_account`".into())),
            }
            Ok(None)
        }
        "async_query" => {
            let m = obj(
                "config",
                config,
                &["event_type", "created_by_user_id", "object_type", "object_id", "query", "format", "batch_size", "status"],
            )?;
            one_of("config", m, "object_type", &["project_logs", "experiment", "dataset", "playground_logs"], true)?;
            string("config", m, "object_id", true)?;
            string("config", m, "query", true)?;
            one_of("config", m, "format", &["jsonl"], true)?;
            if string("config", m, "created_by_user_id", true)?.is_none_or(|u| Uuid::parse_str(u).is_err()) {
                return Err(bad("`config.created_by_user_id` must be a user id".into()));
            }
            Ok(None)
        }
        "windowed" | "topic" | "topic_digest" => {
            // Loop-agent automations: stored as given, never run by Castellan.
            Ok(None)
        }
        other => Err(bad(format!(
            "`config.event_type` must be one of logs, retention, environment_update, btql_export, async_query, windowed, topic, topic_digest; got `{other}`"
        ))),
    }
}

/// Refuses a webhook URL whose host is a private or loopback address literal the
/// operator did not allow (`outbound_allow`); host names are checked when called.
fn check_destination(caller: &Caller, config: &Value) -> ApiResult<()> {
    let url = config.get("action").filter(|a| a.get("type").and_then(Value::as_str) == Some("webhook"));
    match url.and_then(|a| a.get("url")).and_then(Value::as_str) {
        Some(u) => caller.state().outbound().check_literal(u).map_err(|e| bad(format!("`config.action.url`: {e}"))),
        None => Ok(()),
    }
}

/// The signing secret sealed on `a`, if any.
fn stored_signing_secret(caller: &Caller, a: &AdminRecord) -> ApiResult<Option<String>> {
    Ok(crate::webhook::opened_webhook(caller.state(), a)?.0)
}

fn check_description(d: &Option<String>) -> ApiResult<()> {
    match d {
        Some(d) if d.chars().count() > 10_000 => Err(bad("`description` is longer than 10000 characters".into())),
        _ => Ok(()),
    }
}

/// The automation list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectAutomationFilters {
    /// Only these: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only automations of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    project_automation_name: Option<String>,
    /// Only those of this project (extension).
    project_id: Option<Uuid>,
}

/// Automations of the projects the caller can read, newest first.
#[utoipa::path(get, path = "/v1/project_automation", tag = "ProjectAutomations",
    params(Page, ProjectAutomationFilters, OrgName), responses((status = 200, body = ListResponse<ProjectAutomation>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<ProjectAutomationFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<ProjectAutomation>>> {
    let filter = AdminFilter {
        scope_type: Some(ObjectType::Project),
        scope_id: f.project_id,
        ids: f.ids,
        name: f.project_automation_name,
        ..setting::filter::<Kind>()
    };
    Ok(Json(ListResponse { objects: setting::list::<Kind>(&caller, &page, org.get(), filter, |_| true).await? }))
}

async fn create_or_replace(
    caller: Caller,
    body: CreateProjectAutomation,
    replace: bool,
) -> ApiResult<Written<ProjectAutomation>> {
    let name = setting::name("name", &body.name)?;
    check_description(&body.description)?;
    let mut config = body.config;
    let headers = check_config(&mut config)?;
    check_destination(&caller, &config)?;
    let scope = setting::project(body.project_id);
    let mut fresh_secret = None;
    let secret = match headers {
        Some(headers) => {
            let existing = setting::find::<Kind>(&caller, None, scope, &name).await?;
            let signing = match &existing {
                Some(a) => stored_signing_secret(&caller, a)?,
                None => None,
            };
            let signing = signing.unwrap_or_else(|| {
                let s = crate::webhook::new_signing_secret();
                fresh_secret = Some(s.clone());
                s
            });
            Some(json!({"signing_secret": signing, "headers": headers}).to_string())
        }
        None => None,
    };
    let mut data = Map::new();
    data.insert("description".into(), json!(body.description));
    data.insert("config".into(), config);
    let mut out = setting::create::<Kind>(&caller, None, Draft { scope, name, data, secret }, replace).await?;
    if !out.found_existing && out.revision.is_some() {
        out.body.signing_secret = fresh_secret;
    }
    Ok(out)
}

/// Creates an automation (`update` on the project), or answers the project's one of
/// that name unchanged (`x-bt-found-existing: true`). A webhook's signing secret is
/// in the answer that creates it, and nowhere else, ever.
#[utoipa::path(post, path = "/v1/project_automation", tag = "ProjectAutomations", request_body = CreateProjectAutomation,
    responses((status = 200, body = ProjectAutomation)))]
pub async fn create(
    caller: Caller,
    Body(body): Body<CreateProjectAutomation>,
) -> ApiResult<Written<ProjectAutomation>> {
    create_or_replace(caller, body, false).await
}

/// Creates an automation, or replaces the project's one of that name (its signing
/// secret stays).
#[utoipa::path(put, path = "/v1/project_automation", tag = "ProjectAutomations", request_body = CreateProjectAutomation,
    responses((status = 200, body = ProjectAutomation)))]
pub async fn replace(
    caller: Caller,
    Body(body): Body<CreateProjectAutomation>,
) -> ApiResult<Written<ProjectAutomation>> {
    create_or_replace(caller, body, true).await
}

/// One automation.
#[utoipa::path(get, path = "/v1/project_automation/{project_automation_id}", tag = "ProjectAutomations",
    params(("project_automation_id" = Uuid, Path)), responses((status = 200, body = ProjectAutomation)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<ProjectAutomation>> {
    Ok(Json(setting::retrieve::<Kind>(&caller, id).await?))
}

/// Changes an automation (`update` on the project); a new `config` replaces the old
/// one whole (a webhook keeps its signing secret).
#[utoipa::path(patch, path = "/v1/project_automation/{project_automation_id}", tag = "ProjectAutomations",
    params(("project_automation_id" = Uuid, Path)), request_body = Option<PatchProjectAutomation>,
    responses((status = 200, body = ProjectAutomation)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchProjectAutomation>,
) -> ApiResult<Written<ProjectAutomation>> {
    check_description(&body.description)?;
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    if let Some(d) = body.description {
        c.replace.insert("description".into(), json!(d));
    }
    let mut fresh_secret = None;
    if let Some(mut config) = body.config {
        let headers = check_config(&mut config)?;
        check_destination(&caller, &config)?;
        if let Some(headers) = headers {
            let before = setting::load::<Kind>(&caller, id, Permission::Update).await?;
            let signing = stored_signing_secret(&caller, &before)?.unwrap_or_else(|| {
                let s = crate::webhook::new_signing_secret();
                fresh_secret = Some(s.clone());
                s
            });
            c.secret = Some(json!({"signing_secret": signing, "headers": headers}).to_string());
        }
        c.replace.insert("config".into(), config);
    }
    let mut out = setting::update::<Kind>(&caller, id, c, |_| Ok(())).await?;
    if out.revision.is_some() {
        out.body.signing_secret = fresh_secret;
    }
    Ok(out)
}

/// Deletes an automation and its sealed secrets (`update` on the project).
#[utoipa::path(delete, path = "/v1/project_automation/{project_automation_id}", tag = "ProjectAutomations",
    params(("project_automation_id" = Uuid, Path)), responses((status = 200, body = ProjectAutomation)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<ProjectAutomation>> {
    setting::remove::<Kind>(&caller, id, |_| Ok(())).await
}

fn check_org_config(config: &Value) -> ApiResult<()> {
    match config.get("event_type").and_then(Value::as_str) {
        Some("retention") => check_retention(obj("config", config, &["event_type", "object_type", "retention_days"])?),
        _ => Err(bad("an org automation's `config.event_type` must be `retention`".into())),
    }
}

/// The org automation list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgAutomationFilters {
    /// Only these: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only automations of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    org_automation_name: Option<String>,
}

/// The automations of the organizations where the caller may read the organization.
#[utoipa::path(get, path = "/v1/org_automation", tag = "OrgAutomations", params(Page, OrgAutomationFilters, OrgName),
    responses((status = 200, body = ListResponse<OrgAutomation>)))]
pub async fn org_list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<OrgAutomationFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<OrgAutomation>>> {
    let filter = AdminFilter { ids: f.ids, name: f.org_automation_name, ..setting::filter::<OrgKind>() };
    Ok(Json(ListResponse { objects: setting::list::<OrgKind>(&caller, &page, org.get(), filter, |_| true).await? }))
}

async fn org_create_or_replace(
    caller: Caller,
    body: CreateOrgAutomation,
    replace: bool,
) -> ApiResult<Written<OrgAutomation>> {
    let name = setting::name("name", &body.name)?;
    check_description(&body.description)?;
    check_org_config(&body.config)?;
    let mut data = Map::new();
    data.insert("description".into(), json!(body.description));
    data.insert("config".into(), body.config);
    let scope = ObjectRef::new(ObjectType::Organization, body.org_id);
    setting::create::<OrgKind>(&caller, None, Draft { scope, name, data, secret: None }, replace).await
}

/// Creates an org automation (`update` on the organization), or answers the one of
/// that name unchanged.
#[utoipa::path(post, path = "/v1/org_automation", tag = "OrgAutomations", request_body = CreateOrgAutomation,
    responses((status = 200, body = OrgAutomation)))]
pub async fn org_create(caller: Caller, Body(body): Body<CreateOrgAutomation>) -> ApiResult<Written<OrgAutomation>> {
    org_create_or_replace(caller, body, false).await
}

/// Creates an org automation, or replaces the one of that name.
#[utoipa::path(put, path = "/v1/org_automation", tag = "OrgAutomations", request_body = CreateOrgAutomation,
    responses((status = 200, body = OrgAutomation)))]
pub async fn org_replace(caller: Caller, Body(body): Body<CreateOrgAutomation>) -> ApiResult<Written<OrgAutomation>> {
    org_create_or_replace(caller, body, true).await
}

/// One org automation.
#[utoipa::path(get, path = "/v1/org_automation/{org_automation_id}", tag = "OrgAutomations",
    params(("org_automation_id" = Uuid, Path)), responses((status = 200, body = OrgAutomation)))]
pub async fn org_retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<OrgAutomation>> {
    Ok(Json(setting::retrieve::<OrgKind>(&caller, id).await?))
}

/// Changes an org automation (`update` on the organization).
#[utoipa::path(patch, path = "/v1/org_automation/{org_automation_id}", tag = "OrgAutomations",
    params(("org_automation_id" = Uuid, Path)), request_body = Option<PatchOrgAutomation>,
    responses((status = 200, body = OrgAutomation)))]
pub async fn org_update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchOrgAutomation>,
) -> ApiResult<Written<OrgAutomation>> {
    check_description(&body.description)?;
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    if let Some(d) = body.description {
        c.replace.insert("description".into(), json!(d));
    }
    if let Some(config) = body.config {
        check_org_config(&config)?;
        c.replace.insert("config".into(), config);
    }
    setting::update::<OrgKind>(&caller, id, c, |_| Ok(())).await
}

/// Deletes an org automation (`update` on the organization).
#[utoipa::path(delete, path = "/v1/org_automation/{org_automation_id}", tag = "OrgAutomations",
    params(("org_automation_id" = Uuid, Path)), responses((status = 200, body = OrgAutomation)))]
pub async fn org_remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<OrgAutomation>> {
    setting::remove::<OrgKind>(&caller, id, |_| Ok(())).await
}

/// How configuration as code lists project automations (their `config`, with header
/// names but never values; apply creates webhooks without a signing secret or
/// header values, which a `PUT` then sets).
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec::of::<Kind>(&[ObjectType::Project], &["description", "config"], |data| {
        super::config::text(data, "description")?;
        let mut config = data.get("config").cloned().unwrap_or(Value::Null);
        match check_config(&mut config)? {
            Some(h) if !h.is_empty() => {
                Err(bad("header values cannot be set by a document (they are sealed); set them with PUT".into()))
            }
            _ => Ok(()),
        }
    })
}

/// How configuration as code lists org automations.
pub(crate) fn org_config_kind() -> super::config::KindSpec {
    super::config::KindSpec::of::<OrgKind>(&[ObjectType::Organization], &["description", "config"], |data| {
        super::config::text(data, "description")?;
        check_org_config(data.get("config").unwrap_or(&Value::Null))
    })
}
