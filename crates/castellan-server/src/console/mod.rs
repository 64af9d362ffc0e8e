//! The web console, served at `/` by `castellan serve`: server-rendered pages
//! (askama templates, checked when the binary is compiled), hand-written CSS and one
//! vendored script (htmx, which only enhances: every action is a plain form post).
//!
//! The console decides nothing about access. Each page and each action calls the
//! API's own handler (or the service function it calls) with the signed-in session's
//! [`Caller`], so the `Permit` path of the API enforces everything; the engine is
//! only asked, through the caller, which controls to show.

mod assets;
mod auth;
pub(crate) use auth::sso_failure_page;
mod grants;
mod groups;
mod keys;
mod members;
mod projects;
mod settings;
mod sso;

use crate::access::auth::{cookie, CSRF_COOKIE, CSRF_HEADER, IMPERSONATE_HEADER};
use crate::access::Caller;
use crate::error::ApiError;
use crate::extract::{Body, Params, Query};
use askama::Template;
use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use castellan_core::{ObjectRef, ObjectType, Permission};
use castellan_store::OrgRecord;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// The cookie holding the user an owner is viewing the console as.
pub const VIEW_AS_COOKIE: &str = "castellan_view_as";
/// The form field carrying the session's CSRF token.
pub const CSRF_FIELD: &str = "_csrf";

/// The console's routes (HTML pages and form posts).
pub fn routes() -> Router<crate::state::App> {
    Router::new()
        .route("/", get(home))
        .route("/assets/{name}", get(assets::serve))
        .route("/switch", get(switch))
        .route("/view-as/stop", post(stop_view_as))
        .merge(auth::routes())
        .merge(members::routes())
        .merge(groups::routes())
        .merge(projects::routes())
        .merge(keys::routes())
        .merge(settings::routes())
        .merge(sso::routes())
        .layer(axum::middleware::from_fn(forms))
}

/// Turns the console's browser conventions into the API's: the CSRF token of a form
/// (`_csrf`) becomes the `x-csrf-token` header the session check reads, and the
/// "view as" cookie becomes the impersonation header, which the API's own check
/// (owners only) then accepts or refuses.
async fn forms(req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    if parts.uri.path() != "/view-as/stop" && !parts.headers.contains_key(IMPERSONATE_HEADER) {
        if let Some(v) = cookie(&parts, VIEW_AS_COOKIE).and_then(|v| HeaderValue::from_str(v).ok()) {
            parts.headers.insert(IMPERSONATE_HEADER, v);
        }
    }
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if parts.method == Method::POST && is_form {
        let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
            return Fail(ApiError::PayloadTooLarge("the form is too large".into())).into_response();
        };
        let token = form_urlencoded::parse(&bytes).find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.into_owned());
        if let Some(v) = token.and_then(|t| HeaderValue::from_str(&t).ok()) {
            parts.headers.insert(CSRF_HEADER, v);
        }
        return next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await;
    }
    next.run(Request::from_parts(parts, body)).await
}

/// A refusal or failure, answered as a page (a 401 sends the browser to sign in).
#[derive(Debug)]
pub struct Fail(pub ApiError);

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail(e)
    }
}

impl From<askama::Error> for Fail {
    fn from(e: askama::Error) -> Self {
        Fail(ApiError::Internal(format!("template: {e}")))
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    css: &'a str,
    status: u16,
    title: &'a str,
    message: String,
    impersonating: bool,
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let message = match &self.0 {
            ApiError::Internal(_) => "something went wrong on the server; the error has been logged".to_owned(),
            ApiError::Csrf => {
                "this form has expired or did not come from the console; reload the page and try again".into()
            }
            e => e.to_string(),
        };
        let api = self.0.into_response();
        let status = api.status();
        if status == StatusCode::UNAUTHORIZED {
            return see_other("/login");
        }
        let title = match status.as_u16() {
            403 => "Not allowed",
            404 => "Not found",
            400 => "That did not work",
            _ => "Something went wrong",
        };
        let impersonating = message.contains("impersonate");
        let page = ErrorPage { css: &assets::CSS.path, status: status.as_u16(), title, message, impersonating };
        match page.render() {
            Ok(html) => (status, axum::response::Html(html)).into_response(),
            Err(_) => api,
        }
    }
}

/// The answer of a console handler.
pub type Page = Result<Response, Fail>;

/// A 303 to `to` (which htmx follows too).
pub fn see_other(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert("hx-location", v);
    }
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// A query string built from pairs.
pub fn qs(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The API handler's query type, read from a query string as the API reads it.
pub fn query<T: DeserializeOwned>(pairs: &[(&str, &str)]) -> Result<Query<T>, Fail> {
    Ok(Params::parse(&qs(pairs)).deserialize().map(Query)?)
}

/// As [`query`], with the API's error.
pub fn q<T: DeserializeOwned>(pairs: &[(&str, &str)]) -> Result<Query<T>, ApiError> {
    Params::parse(&qs(pairs)).deserialize().map(Query)
}

/// The API handler's body type, from JSON as the API reads it.
pub fn body<T: DeserializeOwned>(v: serde_json::Value) -> Result<Body<T>, Fail> {
    Ok(crate::extract::parse_json(v.to_string().as_bytes()).map(Body)?)
}

/// A signed-in console session: the API's caller and the CSRF token its forms carry.
pub struct Session {
    /// The caller, as the API sees it (the impersonated user while viewing as one).
    pub caller: Caller,
    /// The CSRF token to put in forms.
    pub csrf: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Session
where
    crate::access::AppState: FromRef<S>,
{
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if cookie(parts, crate::access::auth::SESSION_COOKIE).is_none() {
            return Err(Fail(ApiError::Unauthorized("sign in".into())));
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        let csrf = cookie(parts, CSRF_COOKIE).unwrap_or("").to_owned();
        Ok(Session { caller, csrf })
    }
}

/// One entry of the navigation.
pub struct NavItem {
    /// Where it leads.
    pub href: String,
    /// Its text.
    pub label: &'static str,
    /// Whether it is the current page.
    pub current: bool,
}

/// A page's context: the session in one organization.
pub struct Ctx {
    /// The caller.
    pub caller: Caller,
    /// CSRF token for forms.
    pub csrf: String,
    /// The organization in the URL.
    pub org: OrgRecord,
    /// Names of every organization the user belongs to.
    pub orgs: Vec<String>,
}

impl Session {
    /// The context of a page of organization `name` (404 for one the caller is not in).
    pub async fn org(self, name: &str) -> Result<Ctx, Fail> {
        let org = self.caller.org(Some(name)).await?;
        let mut orgs = Vec::new();
        for id in &self.caller.orgs {
            orgs.push(self.caller.org_by_id(*id).await?.name);
        }
        orgs.sort_by_key(|n| n.to_lowercase());
        Ok(Ctx { caller: self.caller, csrf: self.csrf, org, orgs })
    }
}

/// The layout around every signed-in page.
#[derive(Template)]
#[template(path = "console/base.html")]
struct Shell<'a> {
    css: &'a str,
    js: &'a str,
    title: &'a str,
    org: &'a str,
    orgs: &'a [String],
    user: String,
    initial: String,
    viewing_as: Option<String>,
    csrf: &'a str,
    nav: Vec<(&'static str, Vec<NavItem>)>,
    notice: Option<String>,
    body: String,
}

/// A user's label: their name and email, or their id.
pub fn user_label(u: &castellan_store::UserRecord) -> String {
    let name = [u.given_name.as_deref(), u.family_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let email = u.email.clone().filter(|e| !e.ends_with("@service-accounts.castellan.invalid"));
    match (&email, name.is_empty()) {
        (Some(e), true) => e.clone(),
        (Some(e), false) => format!("{name} ({e})"),
        (None, false) => name,
        (None, true) => u.id.0.to_string(),
    }
}

impl Ctx {
    /// The org's URL prefix.
    pub fn base(&self) -> String {
        format!("/o/{}", enc(&self.org.name))
    }

    /// The organization as an object.
    pub fn org_ref(&self) -> ObjectRef {
        ObjectRef::new(ObjectType::Organization, self.org.id.0)
    }

    /// An org-level noun of this organization.
    pub fn noun(&self, t: ObjectType) -> ObjectRef {
        ObjectRef::new(t, self.org.id.0)
    }

    /// Asks the engine whether the caller may do `p` on `obj` (to show a control).
    pub fn can(&self, p: Permission, obj: ObjectRef) -> bool {
        self.caller.can(p, obj)
    }

    /// The org name, as the API's `org_name` parameter.
    pub fn org_name(&self) -> &str {
        &self.org.name
    }

    fn nav(&self, current: &str) -> Vec<(&'static str, Vec<NavItem>)> {
        let b = self.base();
        let item = |key: &str, label: &'static str| NavItem {
            href: format!("{b}/{key}"),
            label,
            current: key == current || current.starts_with(&format!("{key}/")),
        };
        let mut org = Vec::new();
        if self.can(Permission::Read, self.noun(ObjectType::OrgMember)) {
            org.push(item("settings/members", "Members"));
        }
        org.push(item("settings/groups", "Permission groups"));
        org.push(item("settings/roles", "Roles"));
        org.push(item("settings/api-keys", "API keys"));
        if self.caller.is_owner(self.org.id) {
            org.push(item("settings/service-accounts", "Service accounts"));
            org.push(item("settings/single-sign-on", "Single sign-on"));
        }
        if self.can(Permission::Read, self.noun(ObjectType::OrgAuditLogs)) {
            org.push(item("settings/audit-log", "Audit log"));
        }
        org.push(item("settings/ai-providers", "AI providers"));
        org.push(item("settings/env-vars", "Env variables"));
        org.push(item("settings/environments", "Environments"));
        vec![("", vec![item("projects", "Projects")]), ("Settings", org)]
    }

    /// Renders `body` inside the layout.
    pub fn page(&self, title: &str, current: &str, body: impl Template, notice: Option<String>) -> Page {
        self.page_status(StatusCode::OK, title, current, body, notice)
    }

    /// Renders `body` inside the layout with a status (a form refused: 400, 403, …).
    pub fn page_status(
        &self,
        status: StatusCode,
        title: &str,
        current: &str,
        body: impl Template,
        notice: Option<String>,
    ) -> Page {
        let body = body.render()?;
        let viewing_as = self.caller.actor.impersonator.map(|_| user_label(&self.caller.user));
        let user = match self.caller.actor.impersonator {
            Some(_) => format!("Viewing as {}", user_label(&self.caller.user)),
            None => user_label(&self.caller.user),
        };
        let shell = Shell {
            css: &assets::CSS.path,
            js: &assets::JS.path,
            title,
            org: &self.org.name,
            orgs: &self.orgs,
            initial: user.chars().next().map(|c| c.to_uppercase().to_string()).unwrap_or_default(),
            user,
            viewing_as,
            csrf: &self.csrf,
            nav: self.nav(current),
            notice,
            body,
        };
        Ok((status, axum::response::Html(shell.render()?)).into_response())
    }
}

/// A form that was refused: the message, the field it is about (when the API's
/// message names one of the form's fields in backticks), and what was typed.
#[derive(Default, Clone)]
pub struct FormError {
    /// Which form on the page (its dialog is reopened).
    pub form: String,
    /// The field the message is about, if any.
    pub field: String,
    /// The message.
    pub message: String,
    /// What was typed, by field.
    pub values: HashMap<String, String>,
}

impl FormError {
    /// A refusal of `form` with the API's error; `fields` are the form's field names.
    pub fn new(form: &str, e: &ApiError, fields: &[&str], values: HashMap<String, String>) -> FormError {
        let message = match e {
            ApiError::Internal(_) => "something went wrong on the server; the error has been logged".into(),
            e => e.to_string(),
        };
        let field =
            fields.iter().find(|f| message.contains(&format!("`{f}`"))).map(|f| f.to_string()).unwrap_or_default();
        FormError { form: form.into(), field, message, values }
    }

    /// The HTTP status for the refusal.
    pub fn status(e: &ApiError) -> StatusCode {
        match e {
            ApiError::Forbidden(_) | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether the refusal is about `form`.
    pub fn is(&self, form: &str) -> bool {
        self.form == form
    }

    /// The message when it is about `field` of `form`.
    pub fn at(&self, form: &str, field: &str) -> &str {
        if self.form == form && self.field == field {
            &self.message
        } else {
            ""
        }
    }

    /// The message when it is about `form` but no one field of it.
    pub fn general(&self, form: &str) -> &str {
        if self.form == form && self.field.is_empty() {
            &self.message
        } else {
            ""
        }
    }

    /// What was typed in `field` of `form`.
    pub fn value(&self, form: &str, field: &str) -> &str {
        if self.form == form {
            self.values.get(field).map(String::as_str).unwrap_or("")
        } else {
            ""
        }
    }
}

/// Rows per page of the console's long lists.
pub const PAGE_SIZE: usize = 50;

/// Where a list page starts and what it is narrowed to, from its query string:
/// `after` (the last id of the page before it), `before` (the first id of the page
/// after it), `q` (a search). The API's cursor does the paging.
#[derive(serde::Deserialize, Default, Clone)]
pub struct ListQuery {
    /// Start after this row.
    #[serde(default)]
    pub after: String,
    /// End before this row.
    #[serde(default)]
    pub before: String,
    /// The search text.
    #[serde(default)]
    pub q: String,
    /// A page number (1 for the first), for lists paged in memory.
    #[serde(default)]
    pub page: usize,
}

/// The links to the pages around a list page (no script needed).
#[derive(Default)]
pub struct Pager {
    /// The newer rows (the page before).
    pub prev: Option<String>,
    /// The older rows (the page after).
    pub next: Option<String>,
}

impl Pager {
    /// Whether there is any other page.
    pub fn any(&self) -> bool {
        self.prev.is_some() || self.next.is_some()
    }
}

impl ListQuery {
    /// The search, trimmed.
    pub fn search(&self) -> &str {
        self.q.trim()
    }

    /// The API's page parameters: one row more than a page (to know whether
    /// another follows), from the cursor.
    pub fn api_page(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![("limit", (PAGE_SIZE + 1).to_string())];
        if !self.before.is_empty() {
            p.push(("ending_before", self.before.clone()));
        } else if !self.after.is_empty() {
            p.push(("starting_after", self.after.clone()));
        }
        p
    }

    /// Cuts the rows the API answered to one page and links its neighbours; `href`
    /// makes a link from the extra query pairs (the search is kept).
    pub fn cut<T>(
        &self,
        mut rows: Vec<T>,
        id: impl Fn(&T) -> String,
        href: impl Fn(&str) -> String,
    ) -> (Vec<T>, Pager) {
        let backwards = !self.before.is_empty();
        let (has_prev, has_next) = if backwards {
            let more = rows.len() > PAGE_SIZE;
            if more {
                rows.remove(0);
            }
            (more, !rows.is_empty())
        } else {
            let more = rows.len() > PAGE_SIZE;
            rows.truncate(PAGE_SIZE);
            (!self.after.is_empty(), more)
        };
        let link = |k: &str, v: String| {
            let mut pairs = vec![(k, v.as_str())];
            if !self.search().is_empty() {
                pairs.push(("q", self.search()));
            }
            href(&qs(&pairs))
        };
        let prev = rows.first().filter(|_| has_prev).map(|r| link("before", id(r)));
        let next = rows.last().filter(|_| has_next).map(|r| link("after", id(r)));
        (rows, Pager { prev, next })
    }
}

/// The notice a redirect carries (`?notice=`), shown once on the page it lands on.
#[derive(serde::Deserialize, Default)]
pub struct Notice {
    notice: Option<String>,
}

impl Notice {
    /// The notice text (short; it is shown as text, never as markup).
    pub fn take(self) -> Option<String> {
        self.notice.filter(|n| !n.is_empty()).map(|n| n.chars().take(200).collect())
    }
}

/// `/`: the first organization's projects, or the sign-in page.
async fn home(session: Result<Session, Fail>) -> Page {
    let Ok(session) = session else { return Ok(see_other("/login")) };
    let Some(first) = session.caller.orgs.first().copied() else {
        return Err(Fail(ApiError::NotFound("your account does not belong to any organization yet".into())));
    };
    let mut names = Vec::new();
    for id in &session.caller.orgs {
        names.push(session.caller.org_by_id(*id).await?.name);
    }
    names.sort_by_key(|n| n.to_lowercase());
    let name = names.first().cloned().unwrap_or_else(|| first.0.to_string());
    Ok(see_other(&format!("/o/{}/projects", enc(&name))))
}

#[derive(serde::Deserialize)]
struct SwitchTo {
    org: String,
}

/// The organization switcher (a GET form).
async fn switch(session: Session, axum::extract::Query(q): axum::extract::Query<SwitchTo>) -> Page {
    let ctx = session.org(&q.org).await?;
    Ok(see_other(&format!("{}/projects", ctx.base())))
}

/// Stops viewing the console as another user.
async fn stop_view_as() -> Response {
    let mut r = see_other("/");
    if let Ok(v) = HeaderValue::from_str(&format!("{VIEW_AS_COOKIE}=; Path=/; SameSite=Lax; Max-Age=0; HttpOnly")) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Gathers a form's fields (a field given several times keeps every value).
pub fn fields(form: &[(String, String)]) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    for (k, v) in form {
        if k == CSRF_FIELD {
            continue;
        }
        out.entry(k.clone()).and_modify(|e| {
            e.push('\n');
            e.push_str(v)
        });
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    out
}

/// Every value of a repeated form field.
pub fn all<'a>(form: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    form.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

/// The one value of a form field ("" when absent).
pub fn one<'a>(form: &'a [(String, String)], key: &str) -> &'a str {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// A timestamp's date and minute, as the console shows them (`2026-12-05 03:21`).
pub fn short_time(t: &str) -> String {
    t.get(..16).map(|s| s.replace('T', " ")).unwrap_or_else(|| t.to_owned())
}

/// The templates' own filters.
pub mod filters {
    /// `{{ t|short }}`: a timestamp's date and minute.
    #[askama::filter_fn]
    pub fn short<T: std::fmt::Display>(t: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::short_time(&t.to_string()))
    }
}
