//! The HTTP API: one file per resource, assembled here.

pub mod acl;
pub mod agent;
pub mod ai_secret;
pub mod api_key;
pub mod attachment;
pub mod audit_log;
pub mod auth;
pub mod btql;
pub mod config;
pub mod control_plane;
pub mod dataset;
pub mod dataset_snapshot;
pub mod env_var;
pub mod environment;
pub mod events;
pub mod experiment;
pub mod function;
pub mod group;
pub mod insert_functions;
pub mod invitation;
pub mod logs3;
pub mod mcp_server;
pub mod members;
pub mod meta;
pub mod objects;
pub mod organization;
pub mod otel;
pub mod project;
pub mod project_automation;
pub mod project_group;
pub mod project_logs;
pub mod project_score;
pub mod project_tag;
pub mod prompt;
pub mod prompt_session;
pub mod role;
pub mod scim;
pub mod scim_token;
pub mod service_token;
pub(crate) mod setting;
pub mod simulated_user;
pub mod span_iframe;
pub mod sso;
pub mod sso_config;
pub mod summarize;
pub mod usage;
pub mod user;
pub mod view;

use crate::access::AppState;
use crate::error::ApiError;
use crate::extract::empty_as_none;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use castellan_store::Revision;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

/// Response header carrying the revision a write committed at (or a read was served at).
pub const REVISION_HEADER: &str = "x-castellan-revision";
/// Request header asking to be served at or after a revision.
pub const MIN_REVISION_HEADER: &str = "x-castellan-min-revision";
/// Response header Braintrust sets when a create found an existing object.
pub const FOUND_EXISTING_HEADER: &str = "x-bt-found-existing";

/// Fills one page of a list from raw store windows, skipping rows the caller may
/// not see: `fill!(request, |window| tx.list_x(&filter, &window), |row| visible)`.
#[macro_export]
macro_rules! fill {
    ($req:expr, |$w:ident| $fetch:expr, $visible:expr) => {{
        let mut filler = castellan_store::PageFiller::new(&$req);
        while let Some($w) = filler.next_window() {
            let rows = $fetch.await?;
            filler.push(rows, $visible);
        }
        filler.finish()
    }};
}

/// One page of the administration objects `filter` names (env vars, tags, project
/// groups, …), keeping the rows `visible` accepts; a cursor naming a row of another
/// kind or one the caller cannot see is refused like an unknown one.
pub(crate) async fn admin_page(
    tx: &mut dyn castellan_store::Tx,
    filter: &castellan_store::AdminFilter,
    page: &crate::extract::Page,
    visible: impl Fn(&castellan_store::AdminRecord) -> bool,
) -> crate::error::ApiResult<Vec<castellan_store::AdminRecord>> {
    use castellan_store::Paged;
    let (limit, cursor) = (page.limit(), page.cursor()?);
    let key = match cursor.id() {
        Some(id) => tx.get_admin(id).await?.filter(|a| a.kind == filter.kind && visible(a)).map(|a| a.page_key()),
        None => None,
    };
    let req = cursor.resolve(limit, key)?;
    Ok(fill!(req, |w| tx.list_admin(filter, &w), &visible))
}

/// The project a list is narrowed to by `project_id` and/or `project_name`:
/// `Some(None)` when neither is given, `Some(Some(id))` for the project, `None` when
/// nothing can match (no such project, or the two name different projects).
pub(crate) async fn project_filter(
    caller: &crate::access::Caller,
    org_name: Option<&str>,
    project_id: Option<uuid::Uuid>,
    project_name: Option<&str>,
) -> crate::error::ApiResult<Option<Option<uuid::Uuid>>> {
    let Some(name) = project_name else { return Ok(Some(project_id)) };
    let org = caller.org(org_name).await?;
    let scope = caller.list_scope(org_name).await?;
    let mut tx = caller.state().read_scope(&scope).await?;
    Ok(match tx.find_project_by_name(org.id, name).await? {
        Some(p) if project_id.is_none_or(|id| id == p.id.0) => Some(Some(p.id.0)),
        _ => None,
    })
}

/// An http or https URL of at most 2048 characters (`field` names it in errors).
pub(crate) fn check_url(field: &str, url: &str) -> crate::error::ApiResult<()> {
    let lower = url.to_ascii_lowercase();
    let scheme_ok = lower.starts_with("https://") || lower.starts_with("http://");
    let host_ok = url.split_once("://").is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if !scheme_ok || !host_ok || url.len() > 2048 || url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::invalid_body(format!(
            "`{field}` must be an http or https URL of at most 2048 characters, got `{}`",
            url.chars().take(100).collect::<String>()
        )));
    }
    Ok(())
}

/// A JSON answer to a write, carrying its revision.
pub struct Written<T> {
    /// The revision the write committed at (None when nothing was written).
    pub revision: Option<Revision>,
    /// Whether a create returned an object that already existed.
    pub found_existing: bool,
    /// The body.
    pub body: T,
}

impl<T> Written<T> {
    /// A committed write.
    pub fn at(revision: Revision, body: T) -> Self {
        Written { revision: Some(revision), found_existing: false, body }
    }

    /// A create that found the object already there.
    pub fn existing(body: T) -> Self {
        Written { revision: None, found_existing: true, body }
    }
}

impl<T: Serialize> IntoResponse for Written<T> {
    fn into_response(self) -> Response {
        let mut resp = axum::Json(self.body).into_response();
        if let Some(rev) = self.revision {
            if let Ok(v) = HeaderValue::from_str(&rev.to_string()) {
                resp.headers_mut().insert(HeaderName::from_static(REVISION_HEADER), v);
            }
        }
        if self.found_existing {
            resp.headers_mut().insert(HeaderName::from_static(FOUND_EXISTING_HEADER), HeaderValue::from_static("true"));
        }
        resp
    }
}

/// The organization a request is about, by name: every endpoint's `org_name`,
/// declared here once.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgName {
    /// The organization, by name; needed only by a caller in several organizations
    /// (the `x-bt-org-name` header does the same).
    #[serde(default, deserialize_with = "empty_as_none")]
    org_name: Option<String>,
}

impl OrgName {
    /// The organization named in a body rather than the query.
    pub fn named(org_name: Option<String>) -> OrgName {
        OrgName { org_name: org_name.filter(|n| !n.is_empty()) }
    }

    /// The name, if one was given.
    pub fn get(&self) -> Option<&str> {
        self.org_name.as_deref()
    }
}

/// The signature of a signed URL (attachments, `/logs3` overflow payloads); it is
/// checked by `Signer::verify`, so a missing or malformed one is a 403 like a
/// wrong one.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Signature {
    /// When the URL stops working, in seconds since the Unix epoch.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = i64, required = true)]
    pub expires: Option<String>,
    /// The signature, in hex.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = String, required = true)]
    pub sig: Option<String>,
}

/// The answer to creating a `child` (a group or a role) whose name is taken by one
/// the caller cannot read: as if the name were free, the create permission decides
/// first (403 without it, as for an unused name), and only a caller who may create
/// learns that the name is taken (docs/permissions.md, "Name clashes").
pub(crate) async fn unreadable_name_taken(
    caller: &crate::access::Caller,
    child: castellan_core::ObjectType,
    org: castellan_core::OrgId,
    name: &str,
) -> ApiError {
    let org_ref = castellan_core::ObjectRef::new(castellan_core::ObjectType::Organization, org.0);
    match caller.require_create(child, org_ref).await {
        Err(e) => e,
        Ok(_) => ApiError::BadRequest {
            code: crate::error::ErrorCode::NameTaken,
            message: format!("a {child} named `{name}` already exists"),
        },
    }
}

/// An optional expiry given as RFC 3339 text (`field` names it in errors): absent is
/// `None`; a time that does not parse or is not after `now` is a 400.
pub fn future_time(field: &str, value: Option<&str>, now: i64) -> Result<Option<i64>, ApiError> {
    let Some(s) = value else { return Ok(None) };
    let t = castellan_api_types::parse_time(s)
        .ok_or_else(|| ApiError::invalid_body(format!("`{field}` must be an RFC 3339 time, got `{s}`")))?;
    if t <= now {
        return Err(ApiError::invalid_body(format!("`{field}` `{s}` is not in the future")));
    }
    Ok(Some(t))
}

/// A 400 for an invalid value.
pub fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_body(e.to_string())
}

/// Every endpoint, each declared once by its `#[utoipa::path]` (route and OpenAPI
/// operation together).
pub fn api() -> utoipa_axum::router::OpenApiRouter<crate::state::App> {
    utoipa_axum::router::OpenApiRouter::new()
        .merge(meta::routes())
        .merge(organization::routes())
        .merge(user::routes())
        .merge(project::routes())
        .merge(control_plane::routes())
        .merge(api_key::routes())
        .merge(logs3::routes())
        .merge(attachment::routes())
        .merge(experiment::routes())
        .merge(dataset::routes())
        .merge(summarize::routes())
        .merge(project_logs::routes())
        .merge(prompt::routes())
        .merge(function::routes())
        .merge(prompt_session::routes())
        .merge(acl::routes())
        .merge(group::routes())
        .merge(role::routes())
        .merge(members::routes())
        .merge(invitation::routes())
        .merge(audit_log::routes())
        .merge(auth::routes())
        .merge(service_token::routes())
        .merge(env_var::routes())
        .merge(project_tag::routes())
        .merge(project_group::routes())
        .merge(ai_secret::routes())
        .merge(project_score::routes())
        .merge(span_iframe::routes())
        .merge(view::routes())
        .merge(agent::routes())
        .merge(mcp_server::routes())
        .merge(dataset_snapshot::routes())
        .merge(simulated_user::routes())
        .merge(environment::routes())
        .merge(otel::routes())
        .merge(insert_functions::routes())
        .merge(config::routes())
        .merge(project_automation::routes())
        .merge(usage::routes())
        .merge(btql::routes())
        .merge(scim_token::routes())
        .merge(sso_config::routes())
        .merge(sso::routes())
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let max_body = state.config().max_body_bytes;
    let (router, _) = api().split_for_parts();
    router
        .merge(scim::router())
        .merge(crate::console::routes())
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn(crate::usage::warning_header))
        .layer(axum::middleware::from_fn_with_state(state.clone(), revisions))
        .layer(axum::middleware::from_fn(log_requests))
        .layer(cors(state.config()))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .with_state(crate::state::App::new(state))
}

/// Serves `x-castellan-min-revision` (waits until this replica has applied it) and
/// stamps every answer that does not carry a write's revision with the revision it
/// was served at.
async fn revisions(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(v) = req.headers().get(MIN_REVISION_HEADER) {
        let Some(rev) = v.to_str().ok().and_then(|s| s.trim().parse::<Revision>().ok()) else {
            return ApiError::invalid_parameter(format!("`{MIN_REVISION_HEADER}` must be a whole number"))
                .into_response();
        };
        let wait = state.config().min_revision_wait;
        match state.index().wait_for(rev, wait).await {
            Ok(true) => {}
            Ok(false) => {
                return ApiError::RevisionNotReached(format!(
                    "revision {rev} was not reached within {} ms (this replica is at {})",
                    wait.as_millis(),
                    state.index().revision()
                ))
                .into_response()
            }
            Err(e) => return ApiError::Internal(e.to_string()).into_response(),
        }
    }
    let served_at = state.index().revision();
    let mut resp = next.run(req).await;
    if !resp.headers().contains_key(REVISION_HEADER) {
        if let Ok(v) = HeaderValue::from_str(&served_at.to_string()) {
            resp.headers_mut().insert(HeaderName::from_static(REVISION_HEADER), v);
        }
    }
    resp
}

/// Logs each request: method, path (never the query string, which may carry signed
/// URL secrets), status and latency. Credentials, bodies and headers are never logged.
async fn log_requests(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let micros = started.elapsed().as_micros() as u64;
    if status >= 500 {
        tracing::warn!(%method, %path, status, micros, "request");
    } else {
        tracing::info!(%method, %path, status, micros, "request");
    }
    resp
}

const CORS_HEADERS: [&str; 21] = [
    "content-type",
    "authorization",
    "x-api-key",
    "x-bt-auth-token",
    "x-bt-parent",
    "x-bt-org-name",
    "x-bt-project-id",
    "x-bt-stream-fmt",
    "x-bt-use-cache",
    "x-bt-use-gateway",
    "x-bt-impersonate-user",
    "x-castellan-min-revision",
    "x-csrf-token",
    "x-stainless-os",
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-arch",
    "x-stainless-retry-count",
    "x-stainless-timeout",
];

/// Cross-origin requests: any origin may call the API with a bearer token (the
/// answer names the origin but never allows credentials); only the origins listed in
/// `cors_origins` may send cookies (`Access-Control-Allow-Credentials: true`).
fn cors(config: &crate::config::Config) -> tower_http::cors::CorsLayer {
    use tower_http::cors::{AllowCredentials, AllowOrigin, CorsLayer};
    let trusted: Vec<HeaderValue> = config.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let headers: Vec<HeaderName> = CORS_HEADERS.iter().map(|h| HeaderName::from_static(h)).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_credentials(AllowCredentials::predicate(move |origin, _| trusted.contains(origin)))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers(headers)
        .expose_headers([
            HeaderName::from_static(REVISION_HEADER),
            HeaderName::from_static("x-bt-found-existing"),
            HeaderName::from_static(btql::CURSOR_HEADER),
            header::RETRY_AFTER,
        ])
        .max_age(std::time::Duration::from_secs(86400))
}
