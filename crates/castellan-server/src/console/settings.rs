//! The audit log, and the administration objects of the organization (AI providers,
//! environment variables, environments) and of a project (tags, human review and
//! aggregate scores, online scoring rules, comparison key). Each list, create and
//! delete is the object's own API handler; the pages share one table and one form.

use super::filters;
use super::members::name_of;
use super::{body, fields, one, query, see_other, Ctx, Fail, FormError, Notice, Page, Session};
use crate::error::ApiError;
use crate::routes::{ai_secret, audit_log, env_var, environment, project, project_score, project_tag};
use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use castellan_api_types::AuditLogEntry;
use castellan_core::{ObjectRef, ObjectType, Permission, ProjectId};
use serde_json::{json, Value};
use std::collections::HashMap;
use uuid::Uuid;

pub(super) fn routes() -> Router<crate::state::App> {
    Router::new()
        .route("/o/{org}/settings/audit-log", get(audit_page))
        .route("/o/{org}/settings/{kind}", get(org_kind_page).post(org_kind_create))
        .route("/o/{org}/settings/{kind}/{id}/delete", post(org_kind_delete))
        .route("/o/{org}/p/{project}/settings", get(project_settings_page).post(save_comparison_key))
        .route("/o/{org}/p/{project}/settings/{kind}", post(project_kind_create))
        .route("/o/{org}/p/{project}/settings/{kind}/{id}/delete", post(project_kind_delete))
}

// ---- Audit log ----

#[derive(serde::Deserialize, Default)]
struct AuditFilters {
    #[serde(default)]
    range: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    before_seq: String,
    #[serde(default)]
    after_seq: String,
    #[serde(default)]
    verify: String,
}

struct AuditRow {
    e: AuditLogEntry,
    actor: String,
    before: String,
    after: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    base: String,
    rows: Vec<AuditRow>,
    range: String,
    ranges: Vec<(&'static str, &'static str, String)>,
    actor: String,
    actor_error: String,
    event_type: String,
    resource_type: String,
    event_types: Vec<&'static str>,
    pager: super::Pager,
    pager_label: &'static str,
    chain: Option<(bool, String)>,
    verify_href: String,
}

/// Records per page of the audit log.
const AUDIT_PAGE: usize = super::PAGE_SIZE;

const EVENT_TYPES: [&str; 22] = [
    "acl.created",
    "acl.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "role.created",
    "role.updated",
    "role.deleted",
    "member.invited",
    "member.removed",
    "invitation.accepted",
    "project.created",
    "project.updated",
    "project.deleted",
    "api_key.created",
    "api_key.deleted",
    "service_token.created",
    "service_token.deleted",
    "ai_secret.created",
    "env_var.created",
    "environment.created",
    "organization.updated",
];

fn pretty(v: &Option<Value>) -> String {
    v.as_ref().and_then(|v| serde_json::to_string_pretty(v).ok()).unwrap_or_default()
}

async fn audit_page(session: Session, Path(org): Path<String>, q: axum::extract::Query<AuditFilters>) -> Page {
    let ctx = session.org(&org).await?;
    let f = q.0;
    let range = if ["24h", "7d", "30d"].contains(&f.range.as_str()) { f.range.clone() } else { "7d".to_owned() };
    let hours = match range.as_str() {
        "24h" => 24,
        "30d" => 30 * 24,
        _ => 7 * 24,
    };
    let since = castellan_api_types::format_time(ctx.caller.state().now() - hours * 3600 * 1_000_000);
    // The actor filter takes an email address (or a user id, as the rows link it).
    let actor = f.actor.trim().to_owned();
    let mut actor_error = String::new();
    let actor_id = if actor.is_empty() || Uuid::parse_str(&actor).is_ok() {
        actor.clone()
    } else {
        match users_where(&ctx, &[("email", actor.as_str())]).await?.first() {
            Some(u) => u.id.to_string(),
            None => {
                actor_error = format!("no member of this organization has the email address `{actor}`");
                Uuid::nil().to_string()
            }
        }
    };
    // One record more than a page, to know whether another follows.
    let limit = (AUDIT_PAGE + 1).to_string();
    let mut params = vec![("since", since.as_str()), ("limit", limit.as_str())];
    for (k, v) in [
        ("actor_id", &actor_id),
        ("event_type", &f.event_type),
        ("resource_type", &f.resource_type),
        ("before_seq", &f.before_seq),
        ("after_seq", &f.after_seq),
    ] {
        if !v.trim().is_empty() {
            params.push((k, v.trim()));
        }
    }
    let org_q = query(&[("org_name", ctx.org_name())])?;
    let mut entries = audit_log::list(ctx.caller.clone(), org_q, query(&params)?).await?.0.objects;
    let backwards = f.before_seq.trim().is_empty() && !f.after_seq.trim().is_empty();
    let (has_newer, has_older) = if backwards {
        let more = entries.len() > AUDIT_PAGE;
        if more {
            entries.remove(0);
        }
        (more, !entries.is_empty())
    } else {
        let more = entries.len() > AUDIT_PAGE;
        entries.truncate(AUDIT_PAGE);
        (!f.before_seq.trim().is_empty(), more)
    };
    // The names of the people on this page, in one query.
    let mut ids: Vec<String> =
        entries.iter().flat_map(|e| [e.actor_id, e.impersonator_id]).flatten().map(|u| u.to_string()).collect();
    ids.sort();
    ids.dedup();
    let names: HashMap<Uuid, String> = if ctx.can(Permission::Read, ctx.noun(ObjectType::OrgMember)) && !ids.is_empty()
    {
        let by: Vec<(&str, &str)> = ids.iter().map(|i| ("ids", i.as_str())).collect();
        users_where(&ctx, &by).await?.iter().map(|u| (u.id, name_of(u))).collect()
    } else {
        HashMap::new()
    };
    let rows = entries
        .into_iter()
        .map(|e| {
            let mut actor = e
                .actor_id
                .map(|a| names.get(&a).cloned().unwrap_or_else(|| a.to_string()))
                .unwrap_or_else(|| "system".into());
            if let Some(i) = e.impersonator_id {
                actor =
                    format!("{actor} (as impersonated by {})", names.get(&i).cloned().unwrap_or_else(|| i.to_string()));
            }
            AuditRow { before: pretty(&e.before), after: pretty(&e.after), actor, e }
        })
        .collect::<Vec<_>>();
    // Chain verification, on demand: every record of the org, re-hashed.
    let chain = if f.verify == "1" { Some(verify_chain(&ctx).await?) } else { None };
    let base = ctx.base();
    let href = |r: &str, extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("range", r),
            ("actor", actor.as_str()),
            ("event_type", &f.event_type),
            ("resource_type", &f.resource_type),
        ];
        pairs.retain(|(k, v)| *k == "range" || !v.is_empty());
        pairs.extend_from_slice(extra);
        format!("{base}/settings/audit-log?{}", super::qs(&pairs))
    };
    let ranges = vec![
        ("24h", "Last 24 hours", href("24h", &[])),
        ("7d", "Last 7 days", href("7d", &[])),
        ("30d", "Last 30 days", href("30d", &[])),
    ];
    let first = rows.first().map(|r| r.e.seq.to_string());
    let last = rows.last().map(|r| r.e.seq.to_string());
    let pager = super::Pager {
        prev: first.filter(|_| has_newer).map(|s| href(&range, &[("after_seq", s.as_str())])),
        next: last.filter(|_| has_older).map(|s| href(&range, &[("before_seq", s.as_str())])),
    };
    let verify_href = href(&range, &[("verify", "1")]);
    let status = if actor_error.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let p = AuditPage {
        base: base.clone(),
        rows,
        range,
        ranges,
        actor,
        actor_error,
        event_type: f.event_type,
        resource_type: f.resource_type,
        event_types: EVENT_TYPES.to_vec(),
        pager,
        pager_label: "Pages of audit records",
        chain,
        verify_href,
    };
    ctx.page_status(status, "Audit log", "settings/audit-log", p, None)
}

/// The members of the organization matching a user-list filter (`GET /v1/user`).
async fn users_where(ctx: &Ctx, filter: &[(&str, &str)]) -> Result<Vec<castellan_api_types::User>, Fail> {
    Ok(crate::routes::user::list(
        ctx.caller.clone(),
        query(&[("limit", "1000")])?,
        query(filter)?,
        query(&[("org_name", ctx.org_name())])?,
    )
    .await?
    .0
    .objects)
}

/// Pages through `GET /v1/audit_log/chain` and verifies the hash chain.
async fn verify_chain(ctx: &Ctx) -> Result<(bool, String), Fail> {
    let mut records = Vec::new();
    let head;
    loop {
        let after = records
            .last()
            .map(|r: &castellan_store::audit::AuditRecord| r.seq.to_string())
            .unwrap_or_else(|| "0".into());
        let page = audit_log::chain(
            ctx.caller.clone(),
            query(&[("org_name", ctx.org_name())])?,
            query(&[("after_seq", &after), ("limit", "1000")])?,
        )
        .await?
        .0;
        let n = page.records.len();
        records.extend(page.records);
        if n < 1000 {
            head = page.head.map(|h| (h.seq, h.hash));
            break;
        }
    }
    let breaks = castellan_store::audit::verify_chain(&records, head);
    Ok(match breaks.first() {
        None => (true, format!("All {} records verified: the hash chain is intact.", records.len())),
        Some(b) => (
            false,
            format!("The chain breaks at record {}: {} ({} problem(s) in all).", b.seq, b.problem, breaks.len()),
        ),
    })
}

// ---- Administration objects ----

/// A form field of a kind.
struct Field {
    name: &'static str,
    label: &'static str,
    input: &'static str,
    options: &'static [&'static str],
    hint: &'static str,
}

const fn text(name: &'static str, label: &'static str, hint: &'static str) -> Field {
    Field { name, label, input: "text", options: &[], hint }
}

/// A kind of administration object and how the console shows it.
struct Kind {
    slug: &'static str,
    title: &'static str,
    intro: &'static str,
    singular: &'static str,
    columns: &'static [(&'static str, &'static str)],
    fields: &'static [Field],
}

const AI: Kind = Kind {
    slug: "ai-providers",
    title: "AI providers",
    intro: "The organization's provider keys. Values are sealed at rest and never shown again; only a preview is.",
    singular: "AI provider",
    columns: &[
        ("Name", "name"),
        ("Provider", "type"),
        ("Key", "preview_secret"),
        ("Key last changed", "secret_updated_at"),
    ],
    fields: &[
        text("name", "Name", "e.g. OPENAI_API_KEY"),
        Field {
            name: "secret_type",
            label: "Provider",
            input: "select",
            options: &["openai", "anthropic", "google", "mistral", "together", "azure", "bedrock", "vertex", "custom"],
            hint: "",
        },
        Field {
            name: "secret",
            label: "API key",
            input: "password",
            options: &[],
            hint: "Stored sealed; shown only as a preview.",
        },
    ],
};

const ENV: Kind = Kind {
    slug: "env-vars",
    title: "Environment variables",
    intro: "Secrets available to every function (prompts, scorers, tools) of the organization.",
    singular: "variable",
    columns: &[("Name", "name"), ("Value", "preview_secret"), ("Last changed", "secret_updated_at")],
    fields: &[
        text("name", "Name", "e.g. SEARCH_API_KEY"),
        Field {
            name: "value",
            label: "Value",
            input: "password",
            options: &[],
            hint: "Stored sealed; shown only as a preview.",
        },
    ],
};

const ENVS: Kind = Kind {
    slug: "environments",
    title: "Environments",
    intro: "Named deployment targets (dev, staging, production) prompt versions can be assigned to.",
    singular: "environment",
    columns: &[("Name", "name"), ("Slug", "slug"), ("Description", "description"), ("Created", "created")],
    fields: &[
        text("name", "Name", ""),
        text("slug", "Slug", "Lowercase letters, digits and dashes."),
        text("description", "Description", ""),
    ],
};

const TAGS: Kind = Kind {
    slug: "tags",
    title: "Tags",
    intro: "Labels for logs, experiments and dataset rows.",
    singular: "tag",
    columns: &[("Name", "name"), ("Color", "color"), ("Description", "description")],
    fields: &[
        text("name", "Name", ""),
        Field { name: "color", label: "Color", input: "color", options: &[], hint: "Shown next to the tag." },
        text("description", "Description", ""),
    ],
};

const REVIEW: Kind = Kind {
    slug: "human-review",
    title: "Human review scores",
    intro: "Scores reviewers give by hand.",
    singular: "score",
    columns: &[("Name", "name"), ("Type", "score_type"), ("Description", "description")],
    fields: &[
        text("name", "Name", ""),
        Field {
            name: "score_type",
            label: "Type",
            input: "select",
            options: &["slider", "categorical", "free-form"],
            hint: "",
        },
        Field {
            name: "categories",
            label: "Categories",
            input: "textarea",
            options: &[],
            hint: "Categorical only: one per line, `name=value`.",
        },
        text("description", "Description", ""),
    ],
};

const AGGREGATE: Kind = Kind {
    slug: "aggregate-scores",
    title: "Aggregate scores",
    intro: "Scores computed from other scores: weighted average, minimum or maximum.",
    singular: "aggregate score",
    columns: &[("Name", "name"), ("Type", "score_type"), ("Description", "description")],
    fields: &[
        text("name", "Name", ""),
        Field {
            name: "score_type",
            label: "Type",
            input: "select",
            options: &["weighted", "minimum", "maximum"],
            hint: "",
        },
        Field {
            name: "scores",
            label: "Scores",
            input: "textarea",
            options: &[],
            hint: "One per line: a score name, with `=weight` for a weighted score.",
        },
        text("description", "Description", ""),
    ],
};

const PROJECT_AI: Kind = Kind {
    slug: "project-ai-providers",
    title: "Project AI providers",
    intro: "Provider keys for this project only: each overrides the organization's provider of the same type here.",
    singular: "project AI provider",
    columns: &[
        ("Name", "name"),
        ("Provider", "secret_type"),
        ("Key", "preview_secret"),
        ("Key last changed", "secret_updated_at"),
    ],
    fields: &[
        text("name", "Name", "e.g. OPENAI_API_KEY"),
        Field {
            name: "secret_type",
            label: "Provider",
            input: "select",
            options: &["openai", "anthropic", "google", "mistral", "together", "azure", "bedrock", "vertex", "custom"],
            hint: "",
        },
        Field {
            name: "value",
            label: "API key",
            input: "password",
            options: &[],
            hint: "Stored sealed; shown only as a preview.",
        },
    ],
};

const ONLINE: Kind = Kind {
    slug: "online-scoring",
    title: "Online scoring rules",
    intro: "Rules that score a sample of new spans as they are logged, with built-in scorers or this project's scorer prompts.",
    singular: "rule",
    columns: &[
        ("Name", "name"),
        ("Sampling", "_sampling"),
        ("Scorers", "_scorers"),
        ("Applies to", "_spans"),
        ("Filter", "_filter"),
    ],
    // The dialog is its own (online_form); these name its fields for errors.
    fields: &[
        text("name", "Name", ""),
        text("sampling_rate", "Sampling rate", ""),
        text("scorers", "Scorers", ""),
        text("btql_filter", "Filter", ""),
        text("apply_to_span_names", "Span names", ""),
        text("description", "Description", ""),
    ],
};

/// The online scoring dialog: what was typed (or the defaults) and the scorers to
/// pick from.
struct OnlineForm {
    name: String,
    sampling_rate: String,
    /// (form value, label, kind, checked)
    scorers: Vec<(String, String, &'static str, bool)>,
    btql_filter: String,
    root: bool,
    span_names: String,
    skip_logging: bool,
    description: String,
}

impl OnlineForm {
    /// The built-in scorers are always offered; `prompts` are the project's scorer
    /// prompts (id, name).
    fn new(err: &FormError, prompts: &[(Uuid, String)]) -> OnlineForm {
        let slug = ONLINE.slug;
        let typed = err.is(slug);
        let picked: Vec<&str> = err.value(slug, "scorer").lines().collect();
        let mut scorers: Vec<(String, String, &'static str, bool)> = crate::scoring::builtin::NAMES
            .iter()
            .map(|n| (format!("global:{n}"), (*n).to_owned(), "Built-in", false))
            .collect();
        scorers.extend(prompts.iter().map(|(id, n)| (format!("function:{id}"), n.clone(), "Scorer prompt", false)));
        for s in &mut scorers {
            s.3 = picked.contains(&s.0.as_str());
        }
        OnlineForm {
            name: err.value(slug, "name").to_owned(),
            sampling_rate: if typed { err.value(slug, "sampling_rate").to_owned() } else { "0.1".into() },
            scorers,
            btql_filter: err.value(slug, "btql_filter").to_owned(),
            root: !typed || err.value(slug, "apply_to_root_span") == "1",
            span_names: err.value(slug, "apply_to_span_names").to_owned(),
            skip_logging: err.value(slug, "skip_logging") == "1",
            description: err.value(slug, "description").to_owned(),
        }
    }

    fn builtin(&self) -> impl Iterator<Item = &(String, String, &'static str, bool)> {
        self.scorers.iter().filter(|s| s.2 == "Built-in")
    }

    fn prompts(&self) -> impl Iterator<Item = &(String, String, &'static str, bool)> {
        self.scorers.iter().filter(|s| s.2 != "Built-in")
    }

    fn has_prompts(&self) -> bool {
        self.prompts().next().is_some()
    }
}

/// The project's scorer prompts (`GET /v1/prompt`, those whose `function_type` is
/// `scorer`): id and name.
async fn scorer_prompts(ctx: &Ctx, project: Uuid) -> Result<Vec<(Uuid, String)>, Fail> {
    let pid = project.to_string();
    let all = crate::routes::prompt::list(
        ctx.caller.clone(),
        query(&[("limit", "1000")])?,
        query(&[])?,
        query(&[])?,
        query(&[("project_id", pid.as_str())])?,
        query(&[("org_name", ctx.org_name())])?,
    )
    .await?
    .0
    .objects;
    let mut out: Vec<(Uuid, String)> =
        all.into_iter().filter(|f| f.function_type.as_deref() == Some("scorer")).map(|f| (f.id, f.name)).collect();
    out.sort_by_key(|(_, n)| n.to_lowercase());
    Ok(out)
}

/// The body of `POST /v1/project_score` for the online scoring dialog; a field the
/// console itself can tell is wrong is refused before the API is asked.
fn online_body(project: Uuid, form: &[(String, String)]) -> Result<Value, ApiError> {
    let name = one(form, "name").trim();
    let rate = one(form, "sampling_rate").trim();
    let rate: f64 = match rate {
        "" => {
            return Err(ApiError::invalid_body("`sampling_rate`: type how much of the traffic to score, from 0 to 1"))
        }
        r => r.parse().map_err(|_| {
            ApiError::invalid_body(format!(
                "`sampling_rate`: `{r}` is not a number; type one from 0 to 1 (0.1 scores one span in ten)"
            ))
        })?,
    };
    let scorers: Vec<Value> = super::all(form, "scorer")
        .into_iter()
        .filter_map(|s| match s.split_once(':') {
            Some(("global", n)) => Some(json!({"type": "global", "name": n})),
            Some(("function", id)) => Some(json!({"type": "function", "id": id})),
            _ => None,
        })
        .collect();
    if scorers.is_empty() {
        return Err(ApiError::invalid_body("`scorers`: choose at least one scorer"));
    }
    let names: Vec<&str> =
        one(form, "apply_to_span_names").split([',', '\n']).map(str::trim).filter(|n| !n.is_empty()).collect();
    let mut online = json!({
        "sampling_rate": rate,
        "scorers": scorers,
        "apply_to_root_span": one(form, "apply_to_root_span") == "1",
        "skip_logging": one(form, "skip_logging") == "1",
    });
    let filter = one(form, "btql_filter").trim();
    if !filter.is_empty() {
        online["btql_filter"] = json!(filter);
    }
    if !names.is_empty() {
        online["apply_to_span_names"] = json!(names);
    }
    let description = Some(one(form, "description").trim()).filter(|d| !d.is_empty());
    Ok(json!({
        "project_id": project,
        "name": name,
        "score_type": "online",
        "description": description,
        "config": {"online": online},
    }))
}

/// The dialog field an API message about `config.online.…` is about.
fn online_field(message: &str) -> Option<&'static str> {
    [
        ("config.online.sampling_rate", "sampling_rate"),
        ("config.online.scorers", "scorers"),
        ("config.online.btql_filter", "btql_filter"),
        ("config.online.apply_to_span_names", "apply_to_span_names"),
    ]
    .into_iter()
    .find(|(path, _)| message.contains(&format!("`{path}")))
    .map(|(_, f)| f)
}

/// An online rule's cells: its sampling, scorers (by name), spans and filter.
fn online_cells(v: &mut Value, prompts: &[(Uuid, String)]) {
    let o = v.pointer("/config/online").cloned().unwrap_or(Value::Null);
    let rate = o.get("sampling_rate").and_then(Value::as_f64).unwrap_or(0.0);
    let scorers: Vec<String> = o
        .get("scorers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| match (s.get("name").and_then(Value::as_str), s.get("id").and_then(Value::as_str)) {
                    (Some(n), _) => n.to_owned(),
                    (None, Some(id)) => prompts
                        .iter()
                        .find(|(p, _)| p.to_string() == id)
                        .map(|(_, n)| n.clone())
                        .unwrap_or_else(|| id.to_owned()),
                    _ => "?".into(),
                })
                .collect()
        })
        .unwrap_or_default();
    let names: Vec<&str> = o
        .get("apply_to_span_names")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let root = o.get("apply_to_root_span").and_then(Value::as_bool).unwrap_or(names.is_empty());
    let mut spans = Vec::new();
    if root {
        spans.push("root span".to_owned());
    }
    if !names.is_empty() {
        spans.push(format!("spans named {}", names.join(", ")));
    }
    let paused = o.get("status").and_then(Value::as_str) == Some("paused");
    v["_sampling"] = json!(format!("{}%{}", (rate * 1000.0).round() / 10.0, if paused { " (paused)" } else { "" }));
    v["_scorers"] = json!(scorers.join(", "));
    v["_spans"] = json!(if spans.is_empty() { "no spans".to_owned() } else { spans.join(" and ") });
    v["_filter"] = json!(o.get("btql_filter").and_then(Value::as_str).unwrap_or("—"));
    if o.get("skip_logging").and_then(Value::as_bool) == Some(true) {
        v["_scorers"] = json!(format!("{} (not logged)", scorers.join(", ")));
    }
}

fn org_kind(slug: &str) -> Result<&'static Kind, Fail> {
    [&AI, &ENV, &ENVS]
        .into_iter()
        .find(|k| k.slug == slug)
        .ok_or_else(|| Fail(ApiError::NotFound(format!("no settings page `{slug}`"))))
}

fn project_kind(slug: &str) -> Result<&'static Kind, Fail> {
    [&TAGS, &REVIEW, &AGGREGATE, &ONLINE, &PROJECT_AI]
        .into_iter()
        .find(|k| k.slug == slug)
        .ok_or_else(|| Fail(ApiError::NotFound(format!("no project settings `{slug}`"))))
}

/// One object in a table: its id, its cells, its badges.
struct Item {
    /// Whether this page may delete it (an organization default shown on a project
    /// page is changed on the organization's page).
    own: bool,
    id: String,
    cells: Vec<String>,
    badges: Vec<(String, &'static str)>,
}

struct Section {
    kind: &'static Kind,
    action: String,
    items: Vec<Item>,
    can_create: bool,
    can_delete: bool,
}

fn cell(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) if key.ends_with("_at") || key == "created" => super::short_time(s),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The objects of a kind, as JSON (each through its list endpoint).
async fn list_kind(
    ctx: &Ctx,
    kind: &Kind,
    project: Option<Uuid>,
    prompts: &[(Uuid, String)],
) -> Result<Vec<Value>, Fail> {
    let c = ctx.caller.clone();
    let org = query(&[("org_name", ctx.org_name())]);
    let lim = || query(&[("limit", "1000")]);
    let pid = project.map(|p| p.to_string()).unwrap_or_default();
    match kind.slug {
        "ai-providers" => to_values(ai_secret::list(c, lim()?, query(&[])?, org?).await?.0.objects),
        "env-vars" => {
            let oid = ctx.org.id.0.to_string();
            let f = query(&[("object_type", "organization"), ("object_id", oid.as_str())])?;
            to_values(env_var::list(c, lim()?, f, org?).await?.0.objects)
        }
        "environments" => to_values(environment::list(c, lim()?, query(&[])?, org?).await?.0.objects),
        "project-ai-providers" => {
            let f = query(&[("object_type", "project"), ("object_id", pid.as_str())])?;
            let vars = to_values(
                env_var::list(c.clone(), lim()?, f, query(&[("org_name", ctx.org_name())])?).await?.0.objects,
            )?;
            let mut out: Vec<Value> = vars
                .into_iter()
                .filter(|v| v.get("secret_category").and_then(Value::as_str) == Some("ai_provider"))
                .collect();
            // The organization's providers, marked overridden where a project key of
            // the same type takes their place here.
            let overridden: Vec<String> =
                out.iter().filter_map(|v| v.get("secret_type").and_then(Value::as_str).map(str::to_owned)).collect();
            for mut o in to_values(ai_secret::list(c, lim()?, query(&[])?, org?).await?.0.objects)? {
                let t = o.get("type").and_then(Value::as_str).unwrap_or("").to_owned();
                o["secret_type"] = json!(t);
                o["_org_default"] = json!(if overridden.contains(&t) { "Overridden" } else { "Organization default" });
                out.push(o);
            }
            Ok(out)
        }
        "tags" => {
            to_values(project_tag::list(c, lim()?, query(&[("project_id", pid.as_str())])?, org?).await?.0.objects)
        }
        "human-review" | "aggregate-scores" | "online-scoring" => {
            let types: &[&str] = match kind.slug {
                "human-review" => &["slider", "categorical", "free-form"],
                "aggregate-scores" => &["weighted", "minimum", "maximum"],
                _ => &["online"],
            };
            let mut p = vec![("project_id", pid.as_str())];
            p.extend(types.iter().map(|t| ("score_type", *t)));
            let mut out = to_values(project_score::list(c, lim()?, query(&p)?, org?).await?.0.objects)?;
            if kind.slug == "online-scoring" {
                out.iter_mut().for_each(|v| online_cells(v, prompts));
            }
            Ok(out)
        }
        _ => Ok(vec![]),
    }
}

/// A list answer as JSON values.
fn to_values<T: serde::Serialize>(objs: Vec<T>) -> Result<Vec<Value>, Fail> {
    objs.into_iter().map(|o| serde_json::to_value(o).map_err(|e| Fail(ApiError::Internal(e.to_string())))).collect()
}

/// A request body for an API handler, with the API's error.
fn b<T: serde::de::DeserializeOwned>(v: Value) -> Result<crate::extract::Body<T>, ApiError> {
    body(v).map_err(|f| f.0)
}

/// Creates one through its create endpoint.
async fn create_kind(ctx: &Ctx, kind: &Kind, project: Option<Uuid>, form: &[(String, String)]) -> Result<(), ApiError> {
    let c = ctx.caller.clone();
    let opt = |k: &str| Some(one(form, k).trim().to_owned()).filter(|s| !s.is_empty());
    match kind.slug {
        "ai-providers" => {
            ai_secret::create(c, b(json!({"name": one(form, "name").trim(), "type": opt("secret_type"), "secret": opt("secret"), "org_name": ctx.org_name()}))?).await?;
        }
        "env-vars" => {
            env_var::create(c, b(json!({"object_type": "organization", "object_id": ctx.org.id.0, "name": one(form, "name").trim(), "value": opt("value")}))?).await?;
        }
        "project-ai-providers" => {
            let v = json!({"object_type": "project", "object_id": project, "name": one(form, "name").trim(), "value": opt("value"),
                "secret_type": opt("secret_type"), "secret_category": "ai_provider"});
            env_var::create(c, b(v)?).await?;
        }
        "environments" => {
            environment::create(c, b(json!({"name": one(form, "name").trim(), "slug": one(form, "slug").trim(), "description": opt("description"), "org_name": ctx.org_name()}))?).await?;
        }
        "tags" => {
            project_tag::create(c, b(json!({"project_id": project, "name": one(form, "name").trim(), "color": opt("color"), "description": opt("description")}))?).await?;
        }
        "human-review" | "aggregate-scores" => {
            let t = one(form, "score_type");
            let mut v = json!({"project_id": project, "name": one(form, "name").trim(), "score_type": t, "description": opt("description")});
            if t == "categorical" {
                let cats: Vec<Value> = one(form, "categories")
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| match l.split_once('=') {
                        Some((n, val)) => json!({"name": n.trim(), "value": val.trim().parse::<f64>().unwrap_or(0.0)}),
                        None => json!({"name": l.trim(), "value": 0}),
                    })
                    .collect();
                v["categories"] = json!(cats);
            }
            if kind.slug == "aggregate-scores" {
                let mut scores = serde_json::Map::new();
                for l in one(form, "scores").lines().filter(|l| !l.trim().is_empty()) {
                    let (n, w) = l.split_once('=').unwrap_or((l, "1"));
                    scores.insert(n.trim().to_owned(), json!(w.trim().parse::<f64>().unwrap_or(1.0)));
                }
                v["categories"] =
                    if t == "weighted" { Value::Object(scores) } else { json!(scores.keys().collect::<Vec<_>>()) };
            }
            project_score::create(c, b(v)?).await?;
        }
        "online-scoring" => {
            let project = project.ok_or_else(|| ApiError::bad_request("online scoring rules belong to a project"))?;
            project_score::create(c, b(online_body(project, form)?)?).await?;
        }
        _ => return Err(ApiError::bad_request(format!("{} are created with the API", kind.title))),
    }
    Ok(())
}

/// Deletes one through its delete endpoint.
async fn delete_kind(ctx: &Ctx, kind: &Kind, id: Uuid) -> Result<(), ApiError> {
    let c = ctx.caller.clone();
    let p = crate::extract::Path(id);
    match kind.slug {
        "ai-providers" => drop(ai_secret::remove(c, p).await?),
        "env-vars" | "project-ai-providers" => drop(env_var::remove(c, p).await?),
        "environments" => drop(environment::remove(c, p).await?),
        "tags" => drop(project_tag::remove(c, p).await?),
        "online-scoring" | "human-review" | "aggregate-scores" => drop(project_score::remove(c, p).await?),
        _ => return Err(ApiError::not_found("object", id)),
    }
    Ok(())
}

/// Rotation age: a warning when a secret has not changed for six months.
fn badges(kind: &Kind, v: &Value, now: i64) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    if let Some(b) = v.get("_org_default").and_then(Value::as_str) {
        out.push((b.to_owned(), if b == "Overridden" { "warn" } else { "subtle" }));
    }
    if matches!(kind.slug, "ai-providers" | "env-vars" | "project-ai-providers") {
        let changed = v
            .get("secret_updated_at")
            .or(v.get("created"))
            .and_then(Value::as_str)
            .and_then(castellan_api_types::parse_time);
        if let Some(t) = changed {
            let days = (now - t) / (24 * 3600 * 1_000_000);
            if days > 182 {
                out.push((format!("Not rotated for {days} days"), "warn"));
            }
        }
    }
    out
}

async fn section(
    ctx: &Ctx,
    kind: &'static Kind,
    project: Option<Uuid>,
    action: String,
    prompts: &[(Uuid, String)],
) -> Result<Section, Fail> {
    let now = ctx.caller.state().now();
    let items = list_kind(ctx, kind, project, prompts)
        .await?
        .iter()
        .map(|v| Item {
            own: v.get("_org_default").is_none(),
            id: cell(v, "id"),
            cells: kind.columns.iter().map(|(_, k)| cell(v, k)).collect(),
            badges: badges(kind, v, now),
        })
        .collect();
    // Who may change these, asked of the engine: the organization's "Manage
    // settings" for org objects, `update` on the project for project settings, and
    // for AI providers `create` under all AI secrets.
    let (can_create, can_delete) = match (kind.slug, project) {
        ("ai-providers", _) => {
            let all = ctx.noun(ObjectType::OrgAiSecret);
            let snap = ctx.caller.state().index().snapshot();
            (snap.can_create(ctx.caller.user.id.0, ObjectType::AiSecret, all, now), ctx.can(Permission::Delete, all))
        }
        (_, Some(p)) => {
            let u = ctx.can(Permission::Update, ObjectRef::new(ObjectType::Project, p));
            (u && !kind.fields.is_empty(), u)
        }
        _ => {
            let u = ctx.can(Permission::Update, ctx.org_ref());
            (u, u)
        }
    };
    Ok(Section { kind, action, items, can_create, can_delete })
}

#[derive(Template)]
#[template(path = "console/admin_objects.html")]
struct KindPage<'a> {
    csrf: &'a str,
    heading: String,
    intro: String,
    crumbs: Vec<(String, String)>,
    tabs: Vec<(String, String, bool)>,
    sections: Vec<Section>,
    err: FormError,
    comparison: Option<(String, String, bool)>,
    online: Option<OnlineForm>,
}

async fn org_render(ctx: &Ctx, slug: &str, err: FormError, notice: Option<String>) -> Page {
    let kind = org_kind(slug)?;
    let sec = section(ctx, kind, None, format!("{}/settings/{}", ctx.base(), kind.slug), &[]).await?;
    let status = if err.message.is_empty() { StatusCode::OK } else { FormError::status_of(&err) };
    let p = KindPage {
        csrf: &ctx.csrf,
        heading: kind.title.into(),
        intro: kind.intro.into(),
        crumbs: vec![],
        tabs: vec![],
        sections: vec![sec],
        err,
        comparison: None,
        online: None,
    };
    ctx.page_status(status, kind.title, &format!("settings/{}", kind.slug), p, notice)
}

async fn org_kind_page(
    session: Session,
    Path((org, kind)): Path<(String, String)>,
    q: axum::extract::Query<Notice>,
) -> Page {
    let ctx = session.org(&org).await?;
    org_render(&ctx, &kind, FormError::default(), q.0.take()).await
}

async fn org_kind_create(
    session: Session,
    Path((org, slug)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let kind = org_kind(&slug)?;
    match create_kind(&ctx, kind, None, &form).await {
        Ok(()) => Ok(see_other(&format!("{}/settings/{slug}?notice=Created", ctx.base()))),
        Err(e) => {
            let names: Vec<&str> = kind.fields.iter().map(|f| f.name).collect();
            org_render(&ctx, &slug, FormError::new(kind.slug, &e, &names, fields(&form)), None).await
        }
    }
}

async fn org_kind_delete(session: Session, Path((org, slug, id)): Path<(String, String, Uuid)>) -> Page {
    let ctx = session.org(&org).await?;
    let kind = org_kind(&slug)?;
    match delete_kind(&ctx, kind, id).await {
        Ok(()) => Ok(see_other(&format!("{}/settings/{slug}?notice=Deleted", ctx.base()))),
        Err(e) => org_render(&ctx, &slug, FormError::new(kind.slug, &e, &[], HashMap::new()), None).await,
    }
}

async fn project_render(ctx: &Ctx, id: Uuid, err: FormError, notice: Option<String>) -> Page {
    let p = project::retrieve(ctx.caller.clone(), crate::extract::Path(ProjectId(id))).await?.0;
    if p.org_id != ctx.org.id.0 {
        return Err(Fail(ApiError::not_found("project", id)));
    }
    let prompts = scorer_prompts(ctx, id).await?;
    let mut sections = Vec::new();
    for kind in [&PROJECT_AI, &TAGS, &REVIEW, &AGGREGATE, &ONLINE] {
        let action = format!("{}/p/{id}/settings/{}", ctx.base(), kind.slug);
        sections.push(section(ctx, kind, Some(id), action, &prompts).await?);
    }
    let online = OnlineForm::new(&err, &prompts);
    let key =
        p.settings.as_ref().and_then(|s| s.get("comparison_key")).and_then(Value::as_str).unwrap_or("").to_owned();
    let can_update = ctx.can(Permission::Update, ObjectRef::new(ObjectType::Project, id));
    let status = if err.message.is_empty() { StatusCode::OK } else { FormError::status_of(&err) };
    let page = KindPage {
        csrf: &ctx.csrf,
        heading: p.name.clone(),
        intro: "Project configuration: tags, scores, online scoring and the comparison key.".into(),
        crumbs: vec![(format!("{}/projects", ctx.base()), "Projects".into())],
        tabs: super::projects::project_tabs(ctx, id, "settings"),
        sections,
        err,
        comparison: Some((format!("{}/p/{id}/settings", ctx.base()), key, can_update)),
        online: Some(online),
    };
    ctx.page_status(status, &p.name, "projects", page, notice)
}

async fn project_settings_page(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    q: axum::extract::Query<Notice>,
) -> Page {
    let ctx = session.org(&org).await?;
    project_render(&ctx, id, FormError::default(), q.0.take()).await
}

/// Sets the comparison key (`PATCH /v1/project/{id}` with `settings`, which replaces
/// the project's settings: the others are sent back as they are).
async fn save_comparison_key(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let p = project::retrieve(ctx.caller.clone(), crate::extract::Path(ProjectId(id))).await?.0;
    let mut settings = p.settings.clone().filter(Value::is_object).unwrap_or_else(|| json!({}));
    let key = one(&form, "comparison_key").trim().to_owned();
    settings["comparison_key"] = if key.is_empty() { Value::Null } else { json!(key) };
    match project::update(ctx.caller.clone(), crate::extract::Path(ProjectId(id)), body(json!({"settings": settings}))?)
        .await
    {
        Ok(_) => Ok(see_other(&format!("{}/p/{id}/settings?notice=Comparison%20key%20saved", ctx.base()))),
        Err(e) => {
            project_render(
                &ctx,
                id,
                FormError::new("comparison", &e, &["comparison_key", "settings.comparison_key"], fields(&form)),
                None,
            )
            .await
        }
    }
}

async fn project_kind_create(
    session: Session,
    Path((org, id, slug)): Path<(String, Uuid, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let kind = project_kind(&slug)?;
    match create_kind(&ctx, kind, Some(id), &form).await {
        Ok(()) => Ok(see_other(&format!("{}/p/{id}/settings?notice=Created#{}", ctx.base(), kind.slug))),
        Err(e) => {
            let names: Vec<&str> = kind.fields.iter().map(|f| f.name).collect();
            let mut err = FormError::new(kind.slug, &e, &names, fields(&form));
            if err.field.is_empty() {
                err.field = online_field(&err.message).unwrap_or_default().to_owned();
            }
            project_render(&ctx, id, err, None).await
        }
    }
}

async fn project_kind_delete(session: Session, Path((org, id, slug, oid)): Path<(String, Uuid, String, Uuid)>) -> Page {
    let ctx = session.org(&org).await?;
    let kind = project_kind(&slug)?;
    match delete_kind(&ctx, kind, oid).await {
        Ok(()) => Ok(see_other(&format!("{}/p/{id}/settings?notice=Deleted", ctx.base()))),
        Err(e) => project_render(&ctx, id, FormError::new(kind.slug, &e, &[], HashMap::new()), None).await,
    }
}
