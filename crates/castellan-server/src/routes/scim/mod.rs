//! SCIM 2.0 provisioning (RFC 7643, RFC 7644) at `/scim/v2`, authorized by an
//! organization's SCIM tokens (`/v1/scim_token`).
//!
//! - Users are the org's members (people, not service accounts). Creating one makes
//!   an account and a membership at once (no invitation email: the identity provider
//!   vouches for the person); an email that already has an account is refused
//!   (`uniqueness`), never linked. `active: false` suspends the member: their API
//!   keys for the org and their console sessions are refused at once on every
//!   replica (a change-feed entry, as a key revocation is); `active: true` restores
//!   them. DELETE ends the membership (groups, grants, keys). Lockout protection
//!   holds: the last active owner can be neither suspended nor removed.
//! - Groups are the permission groups marked as managed by SCIM (made through
//!   `/scim/v2/Groups`). Groups made by hand are invisible to SCIM and never changed
//!   by it; creating a SCIM group whose name a manual group has is refused
//!   (`uniqueness`) rather than adopting it.
//! - Every change is audited in the same transaction, with the SCIM token as actor
//!   (`details.actor_type = "scim_token"`).

pub mod filter;
mod patch;
pub mod schema;

use crate::access::{AppState, AuditEvent, ScimCaller, Write};
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use castellan_core::{Email, GroupId, ObjectRef, ObjectType, OrgId, UserId};
use castellan_store::{AdminFilter, AdminKind, AdminRecord, GroupRecord, Tx, UserKind, UserRecord, Window};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// The SCIM media type.
pub const CONTENT_TYPE: &str = "application/scim+json";

/// A SCIM error answer (RFC 7644 §3.12).
#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> ScimError {
        ScimError { status, scim_type, detail: detail.into() }
    }
    fn bad(scim_type: &'static str, detail: impl Into<String>) -> ScimError {
        ScimError::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }
    fn not_found(what: &str, id: &str) -> ScimError {
        ScimError::new(StatusCode::NOT_FOUND, None, format!("{what} `{id}` not found"))
    }
    fn conflict(detail: impl Into<String>) -> ScimError {
        ScimError::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
    }
}

impl From<ApiError> for ScimError {
    fn from(e: ApiError) -> ScimError {
        let status = e.status_and_code().0;
        let detail = e.to_string();
        match e {
            ApiError::BadRequest { code: crate::error::ErrorCode::NameTaken, .. } => ScimError::conflict(detail),
            ApiError::BadRequest { code: crate::error::ErrorCode::Lockout, message } => {
                ScimError::new(StatusCode::BAD_REQUEST, Some("mutability"), format!("lockout protection: {message}"))
            }
            ApiError::BadRequest { .. } => ScimError::new(status, Some("invalidValue"), detail),
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                ScimError::new(status, None, "internal server error")
            }
            _ => ScimError::new(status, None, detail),
        }
    }
}

impl From<castellan_store::StoreError> for ScimError {
    fn from(e: castellan_store::StoreError) -> ScimError {
        ScimError::from(ApiError::from(e))
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body =
            json!({"schemas": [schema::ERROR], "status": self.status.as_u16().to_string(), "detail": self.detail});
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        scim(self.status, body)
    }
}

type ScimResult<T> = Result<T, ScimError>;

fn scim(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

fn created(body: Value) -> Response {
    let loc = body["meta"]["location"].as_str().and_then(|l| HeaderValue::from_str(l).ok());
    let mut r = scim(StatusCode::CREATED, body);
    if let Some(l) = loc {
        r.headers_mut().insert(header::LOCATION, l);
    }
    r
}

/// The SCIM endpoints.
pub fn router() -> Router<crate::state::App> {
    let v2 = Router::new()
        .route("/ServiceProviderConfig", get(spc))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{name}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{urn}", get(one_schema))
        .route("/.search", axum::routing::post(search_all))
        .route("/Users/.search", axum::routing::post(search_users))
        .route("/Groups/.search", axum::routing::post(search_groups))
        .route("/Users", get(list_users).post(create_user))
        .route("/Users/{id}", get(get_user).put(put_user).patch(patch_user).delete(delete_user))
        .route("/Groups", get(list_groups).post(create_group))
        .route("/Groups/{id}", get(get_group).put(put_group).patch(patch_group).delete(delete_group))
        .fallback(|| async { ScimError::new(StatusCode::NOT_FOUND, None, "no such SCIM endpoint") })
        .method_not_allowed_fallback(|| async {
            ScimError::new(StatusCode::METHOD_NOT_ALLOWED, None, "this SCIM endpoint does not take that method")
        });
    Router::new().nest("/scim/v2", v2)
}

/// The base URL of the SCIM endpoints, for `meta.location`.
fn base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = state.config().public_url.as_deref() {
        return format!("{}/scim/v2", u.trim_end_matches('/'));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}/scim/v2")
}

async fn auth(state: &AppState, headers: &HeaderMap) -> ScimResult<(ScimCaller, String)> {
    let c = ScimCaller::authenticate(state, headers).await?;
    Ok((c, base(state, headers)))
}

fn body_json(bytes: &Bytes) -> ScimResult<Value> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("the body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ScimError::bad("invalidSyntax", "the body must be a JSON object"));
    }
    Ok(v)
}

// --- discovery -----------------------------------------------------------------

async fn spc(State(state): State<AppState>, headers: HeaderMap) -> ScimResult<Response> {
    let (_, base) = auth(&state, &headers).await?;
    Ok(scim(StatusCode::OK, schema::service_provider_config(&base)))
}

fn list_of(items: Vec<Value>) -> Value {
    let n = items.len();
    json!({"schemas": [schema::LIST], "totalResults": n, "startIndex": 1, "itemsPerPage": n, "Resources": items})
}

async fn resource_types(State(state): State<AppState>, headers: HeaderMap) -> ScimResult<Response> {
    let (_, base) = auth(&state, &headers).await?;
    Ok(scim(StatusCode::OK, list_of(schema::resource_types(&base))))
}

async fn resource_type(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ScimResult<Response> {
    let (_, base) = auth(&state, &headers).await?;
    schema::resource_types(&base)
        .into_iter()
        .find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&name)))
        .map(|r| scim(StatusCode::OK, r))
        .ok_or_else(|| ScimError::not_found("resource type", &name))
}

async fn schemas(State(state): State<AppState>, headers: HeaderMap) -> ScimResult<Response> {
    let (_, base) = auth(&state, &headers).await?;
    Ok(scim(StatusCode::OK, list_of(schema::schemas(&base))))
}

async fn one_schema(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(urn): Path<String>,
) -> ScimResult<Response> {
    let (_, base) = auth(&state, &headers).await?;
    schema::schemas(&base)
        .into_iter()
        .find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&urn)))
        .map(|r| scim(StatusCode::OK, r))
        .ok_or_else(|| ScimError::not_found("schema", &urn))
}

// --- list parameters -----------------------------------------------------------

/// `filter`, `startIndex`, `count`, `attributes`, `excludedAttributes`.
#[derive(Debug, Default)]
struct ListParams {
    filter: Option<filter::Filter>,
    start: usize,
    count: usize,
    attributes: Vec<String>,
    excluded: Vec<String>,
}

fn list_params(q: &HashMap<String, String>) -> ScimResult<ListParams> {
    let get = |k: &str| q.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
    let filter = match get("filter").map(str::trim) {
        None | Some("") => None,
        Some(f) => Some(filter::parse(f).map_err(|e| ScimError::bad("invalidFilter", format!("filter `{f}`: {e}")))?),
    };
    let int = |k: &str| -> ScimResult<Option<i64>> {
        match get(k) {
            None | Some("") => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ScimError::bad("invalidValue", format!("`{k}` must be a whole number, got `{v}`"))),
        }
    };
    let start = int("startIndex")?.unwrap_or(1).max(1) as usize;
    let count = int("count")?.unwrap_or(schema::MAX_RESULTS as i64).clamp(0, schema::MAX_RESULTS as i64) as usize;
    let split = |k: &str| -> Vec<String> {
        get(k)
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    };
    Ok(ListParams { filter, start, count, attributes: split("attributes"), excluded: split("excludedAttributes") })
}

/// Keeps only the asked-for attributes (`id` and `schemas` always), or drops the
/// excluded ones.
fn project(mut res: Value, attributes: &[String], excluded: &[String]) -> Value {
    let Some(obj) = res.as_object_mut() else { return res };
    if !attributes.is_empty() {
        let mut keep: Map<String, Value> = Map::new();
        for k in ["schemas", "id"] {
            if let Some(v) = obj.get(k) {
                keep.insert(k.into(), v.clone());
            }
        }
        for a in attributes {
            let p = filter::strip_urn(a);
            let (top, sub) = match p.split_once('.') {
                Some((t, s)) => (t, Some(s)),
                None => (p, None),
            };
            let Some(key) = filter::key_ci(obj, top) else { continue };
            let v = &obj[&key];
            match sub {
                None => {
                    keep.insert(key.clone(), v.clone());
                }
                Some(s) => {
                    let pick = |x: &Value| -> Option<(String, Value)> {
                        let m = x.as_object()?;
                        let k = filter::key_ci(m, s)?;
                        Some((k.clone(), m[&k].clone()))
                    };
                    let merged = match (v, keep.get(&key).cloned()) {
                        (Value::Array(items), prev) => {
                            let mut out: Vec<Value> = prev
                                .and_then(|p| p.as_array().cloned())
                                .unwrap_or_else(|| vec![json!({}); items.len()]);
                            for (i, it) in items.iter().enumerate() {
                                if let (Some((k, val)), Some(o)) = (pick(it), out.get_mut(i)) {
                                    o[k] = val;
                                }
                            }
                            Value::Array(out)
                        }
                        (Value::Object(_), prev) => {
                            let mut o = prev.unwrap_or_else(|| json!({}));
                            if let Some((k, val)) = pick(v) {
                                o[k] = val;
                            }
                            o
                        }
                        _ => continue,
                    };
                    keep.insert(key, merged);
                }
            }
        }
        return Value::Object(keep);
    }
    for a in excluded {
        let p = filter::strip_urn(a);
        match p.split_once('.') {
            None => {
                if let Some(k) = filter::key_ci(obj, p).filter(|k| k != "id" && k != "schemas") {
                    obj.remove(&k);
                }
            }
            Some((top, s)) => {
                if let Some(k) = filter::key_ci(obj, top) {
                    let strip = |x: &mut Value| {
                        if let Some(m) = x.as_object_mut() {
                            if let Some(sk) = filter::key_ci(m, s) {
                                m.remove(&sk);
                            }
                        }
                    };
                    match obj.get_mut(&k) {
                        Some(Value::Array(items)) => items.iter_mut().for_each(strip),
                        Some(v) => strip(v),
                        None => {}
                    }
                }
            }
        }
    }
    res
}

fn page(all: Vec<Value>, p: &ListParams) -> Value {
    let matched: Vec<Value> =
        all.into_iter().filter(|r| p.filter.as_ref().is_none_or(|f| filter::matches(r, f))).collect();
    let total = matched.len();
    let items: Vec<Value> =
        matched.into_iter().skip(p.start - 1).take(p.count).map(|r| project(r, &p.attributes, &p.excluded)).collect();
    json!({"schemas": [schema::LIST], "totalResults": total, "startIndex": p.start, "itemsPerPage": items.len(), "Resources": items})
}

fn one(res: Value, q: &HashMap<String, String>) -> ScimResult<Value> {
    let p = list_params(q)?;
    Ok(project(res, &p.attributes, &p.excluded))
}

/// A `SearchRequest` body (`POST …/.search`) as the query parameters it stands for.
fn search_params(body: &Bytes) -> ScimResult<HashMap<String, String>> {
    let v = body_json(body)?;
    let mut q = HashMap::new();
    for (k, x) in v.as_object().into_iter().flatten() {
        let text = match x {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            Value::Null => continue,
            other => return Err(ScimError::bad("invalidValue", format!("`{k}` cannot be {other}"))),
        };
        q.insert(k.clone(), text);
    }
    Ok(q)
}

async fn search_all(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let p = list_params(&search_params(&body)?)?;
    let view = read_view(&c).await?;
    let mut all: Vec<Value> = view.members.iter().map(|m| view.user_json(m, &base)).collect();
    all.extend(view.groups.iter().map(|g| view.group_json(g, &base)));
    Ok(scim(StatusCode::OK, page(all, &p)))
}

async fn search_users(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ScimResult<Response> {
    let q = search_params(&body)?;
    list_users(State(state), headers, Query(q)).await
}

async fn search_groups(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ScimResult<Response> {
    let q = search_params(&body)?;
    list_groups(State(state), headers, Query(q)).await
}

// --- reading the org's SCIM view ------------------------------------------------

fn all_window() -> Window {
    Window { from: None, direction: castellan_store::page::Direction::Older, limit: 100_000 }
}

async fn admin_records(tx: &mut dyn Tx, kind: AdminKind, org: OrgId) -> ScimResult<HashMap<String, AdminRecord>> {
    let f = AdminFilter { kind, orgs: vec![org], scope_type: None, scope_id: None, ids: vec![], name: None };
    Ok(tx.list_admin(&f, &all_window()).await?.into_iter().map(|a| (a.name.clone(), a)).collect())
}

/// A member as SCIM sees them.
struct Member {
    user: UserRecord,
    rec: Option<AdminRecord>,
    joined: i64,
}

impl Member {
    fn attrs(&self) -> Map<String, Value> {
        match &self.rec {
            Some(r) => r.data.get("attributes").and_then(Value::as_object).cloned().unwrap_or_default(),
            None => {
                let u = &self.user;
                let mut m = Map::new();
                m.insert("userName".into(), json!(u.email.clone().unwrap_or_else(|| u.id.0.to_string())));
                let mut name = Map::new();
                if let Some(g) = &u.given_name {
                    name.insert("givenName".into(), json!(g));
                }
                if let Some(f) = &u.family_name {
                    name.insert("familyName".into(), json!(f));
                }
                let formatted: Vec<&str> =
                    [u.given_name.as_deref(), u.family_name.as_deref()].into_iter().flatten().collect();
                if !formatted.is_empty() {
                    name.insert("formatted".into(), json!(formatted.join(" ")));
                    m.insert("displayName".into(), json!(formatted.join(" ")));
                }
                if !name.is_empty() {
                    m.insert("name".into(), Value::Object(name));
                }
                if let Some(e) = &u.email {
                    m.insert("emails".into(), json!([{"value": e, "type": "work", "primary": true}]));
                }
                m
            }
        }
    }
    fn active(&self) -> bool {
        self.rec.as_ref().and_then(|r| r.data.get("active")).and_then(Value::as_bool).unwrap_or(true)
    }
    /// Whether `active` was removed (unassigned: the member is active, and the
    /// attribute is not shown).
    fn active_unset(&self) -> bool {
        self.rec.as_ref().and_then(|r| r.data.get("active_unset")).and_then(Value::as_bool).unwrap_or(false)
    }
    fn user_name(&self) -> String {
        self.attrs().get("userName").and_then(Value::as_str).unwrap_or_default().to_owned()
    }
}

/// A SCIM-managed group.
struct ScimGroup {
    group: GroupRecord,
    rec: AdminRecord,
    users: Vec<UserId>,
}

/// What a request reads: the org's members and SCIM groups.
struct View {
    members: Vec<Member>,
    groups: Vec<ScimGroup>,
}

async fn load_view(tx: &mut dyn Tx, org: OrgId) -> ScimResult<View> {
    let mut recs = admin_records(tx, AdminKind::ScimUser, org).await?;
    let mut members = Vec::new();
    for m in tx.list_members(org).await? {
        let Some(u) = tx.get_user(m.user_id).await? else { continue };
        if u.kind != UserKind::User {
            continue;
        }
        let rec = recs.remove(&u.id.0.to_string());
        members.push(Member { user: u, rec, joined: m.created });
    }
    members.sort_by_key(|m| (m.joined, m.user.id.0));
    let mut groups = Vec::new();
    for (name, rec) in admin_records(tx, AdminKind::ScimGroup, org).await? {
        let Ok(id) = Uuid::parse_str(&name) else { continue };
        let Some(g) = tx.get_group(GroupId(id)).await?.filter(|g| g.org_id == org) else { continue };
        let users = tx.group_users(g.id).await?;
        groups.push(ScimGroup { group: g, rec, users });
    }
    groups.sort_by_key(|g| (g.group.created, g.group.id.0));
    Ok(View { members, groups })
}

fn time(t: i64) -> String {
    castellan_api_types::format_time(t)
}

impl View {
    fn member(&self, id: &str) -> Option<&Member> {
        let id = Uuid::parse_str(id).ok()?;
        self.members.iter().find(|m| m.user.id.0 == id)
    }
    fn group(&self, id: &str) -> Option<&ScimGroup> {
        let id = Uuid::parse_str(id).ok()?;
        self.groups.iter().find(|g| g.group.id.0 == id)
    }

    fn user_json(&self, m: &Member, base: &str) -> Value {
        let mut o = m.attrs();
        let id = m.user.id.0.to_string();
        o.insert("id".into(), json!(id));
        if !m.active_unset() {
            o.insert("active".into(), json!(m.active()));
        }
        let mut schemas = vec![json!(schema::USER)];
        if o.contains_key(schema::ENTERPRISE) {
            schemas.push(json!(schema::ENTERPRISE));
        }
        o.insert("schemas".into(), Value::Array(schemas));
        let groups: Vec<Value> = self
            .groups
            .iter()
            .filter(|g| g.users.contains(&m.user.id))
            .map(|g| {
                json!({"value": g.group.id.0.to_string(), "display": g.group.name,
                    "$ref": format!("{base}/Groups/{}", g.group.id.0), "type": "direct"})
            })
            .collect();
        if !groups.is_empty() {
            o.insert("groups".into(), Value::Array(groups));
        }
        let modified = m.rec.as_ref().map(|r| r.updated).unwrap_or(m.joined.max(m.user.created));
        o.insert(
            "meta".into(),
            json!({"resourceType": "User", "created": time(m.user.created), "lastModified": time(modified),
                "location": format!("{base}/Users/{id}")}),
        );
        Value::Object(o)
    }

    fn group_json(&self, g: &ScimGroup, base: &str) -> Value {
        let id = g.group.id.0.to_string();
        let mut o = Map::new();
        o.insert("schemas".into(), json!([schema::GROUP]));
        o.insert("id".into(), json!(id));
        o.insert("displayName".into(), json!(g.group.name));
        if let Some(e) = g.rec.data.get("externalId").filter(|v| v.is_string()) {
            o.insert("externalId".into(), e.clone());
        }
        let members: Vec<Value> = g
            .users
            .iter()
            .map(|u| json!({"value": u.0.to_string(), "$ref": format!("{base}/Users/{}", u.0), "type": "User"}))
            .collect();
        o.insert("members".into(), Value::Array(members));
        o.insert(
            "meta".into(),
            json!({"resourceType": "Group", "created": time(g.group.created), "lastModified": time(g.rec.updated),
                "location": format!("{base}/Groups/{id}")}),
        );
        Value::Object(o)
    }
}

// --- users -----------------------------------------------------------------------

async fn read_view(c: &ScimCaller) -> ScimResult<View> {
    let mut tx = c.state().read(&c.permit()).await?;
    load_view(&mut *tx, c.org).await
}

async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let p = list_params(&q)?;
    let view = read_view(&c).await?;
    let all: Vec<Value> = view.members.iter().map(|m| view.user_json(m, &base)).collect();
    Ok(scim(StatusCode::OK, page(all, &p)))
}

async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let view = read_view(&c).await?;
    let m = view.member(&id).ok_or_else(|| ScimError::not_found("user", &id))?;
    Ok(scim(StatusCode::OK, one(view.user_json(m, &base), &q)?))
}

/// The stored attributes of a user, validated and in canonical form.
struct UserInput {
    attrs: Map<String, Value>,
    active: Option<bool>,
    /// `active` was removed by a PATCH: unassigned, which is active.
    active_unset: bool,
}

fn as_bool(v: &Value, what: &str) -> ScimResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(ScimError::bad("invalidValue", format!("`{what}` must be a boolean, got {other}"))),
    }
}

fn string_or_null(v: &Value, what: &str) -> ScimResult<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(ScimError::bad("invalidValue", format!("`{what}` must be a string, got {other}"))),
    }
}

fn strings(v: &Value, what: &str, keys: &[&str]) -> ScimResult<Map<String, Value>> {
    let Some(o) = v.as_object() else {
        return Err(ScimError::bad("invalidValue", format!("`{what}` must be an object, got {v}")));
    };
    let mut out = Map::new();
    for (k, x) in o {
        let Some(canon) = keys.iter().find(|c| c.eq_ignore_ascii_case(k)) else { continue };
        if *canon == "primary" {
            if !x.is_null() {
                out.insert("primary".into(), json!(as_bool(x, &format!("{what}.primary"))?));
            }
            continue;
        }
        if *canon == "manager" {
            if x.is_object() {
                out.insert("manager".into(), Value::Object(strings(x, "manager", &["value", "displayName"])?));
            } else if let Some(s) = string_or_null(x, "manager")? {
                out.insert("manager".into(), json!({"value": s}));
            }
            continue;
        }
        if let Some(s) = string_or_null(x, &format!("{what}.{canon}"))? {
            out.insert((*canon).into(), json!(s));
        }
    }
    Ok(out)
}

/// Validates a User body (POST, PUT, or the result of a PATCH).
fn user_input(v: &Value) -> ScimResult<UserInput> {
    let Some(o) = v.as_object() else { return Err(ScimError::bad("invalidSyntax", "a User must be a JSON object")) };
    let mut attrs = Map::new();
    let mut active = None;
    for (k, x) in o {
        let key = k.as_str();
        if key.eq_ignore_ascii_case(schema::ENTERPRISE) {
            if !x.is_null() {
                let e = strings(
                    x,
                    "enterprise",
                    &["employeeNumber", "costCenter", "organization", "division", "department", "manager"],
                )?;
                if !e.is_empty() {
                    attrs.insert(schema::ENTERPRISE.into(), Value::Object(e));
                }
            }
            continue;
        }
        let k = filter::strip_urn(key).to_ascii_lowercase();
        match k.as_str() {
            "username" => {
                let s = string_or_null(x, "userName")?.unwrap_or_default();
                attrs.insert("userName".into(), json!(s.trim()));
            }
            "displayname" | "title" | "externalid" => {
                let canon = match k.as_str() {
                    "displayname" => "displayName",
                    "title" => "title",
                    _ => "externalId",
                };
                if let Some(s) = string_or_null(x, canon)? {
                    attrs.insert(canon.into(), json!(s));
                }
            }
            "name" if !x.is_null() => {
                let n = strings(x, "name", &["formatted", "familyName", "givenName"])?;
                if !n.is_empty() {
                    attrs.insert("name".into(), Value::Object(n));
                }
            }
            "active" if !x.is_null() => active = Some(as_bool(x, "active")?),
            "emails" => {
                let items = match x {
                    Value::Null => vec![],
                    Value::Array(a) => a.clone(),
                    other => {
                        return Err(ScimError::bad("invalidValue", format!("`emails` must be a list, got {other}")))
                    }
                };
                let mut out = Vec::new();
                for (i, e) in items.iter().enumerate() {
                    let m = strings(e, &format!("emails[{i}]"), &["value", "type", "primary", "display"])?;
                    if !m.contains_key("value") {
                        return Err(ScimError::bad("invalidValue", format!("`emails[{i}].value` is required")));
                    }
                    out.push(Value::Object(m));
                }
                if !out.is_empty() {
                    attrs.insert("emails".into(), Value::Array(out));
                }
            }
            // Read-only or server-assigned: ignored (RFC 7643 §2.2).
            _ => {}
        }
    }
    match attrs.get("userName").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => {}
        _ => return Err(ScimError::bad("invalidValue", "`userName` is required and must not be empty")),
    }
    Ok(UserInput { attrs, active, active_unset: false })
}

/// The account email a new user gets: the primary (or first) email, else the
/// userName, when it is a valid address.
fn account_email(attrs: &Map<String, Value>) -> Option<String> {
    let emails = attrs.get("emails").and_then(Value::as_array).cloned().unwrap_or_default();
    let primary = emails.iter().find(|e| e["primary"] == json!(true)).or(emails.first());
    primary
        .and_then(|e| e["value"].as_str())
        .into_iter()
        .chain(attrs.get("userName").and_then(Value::as_str))
        .find_map(|s| Email::parse(s).ok())
        .map(|e| e.as_str().to_owned())
}

fn taken(view: &View, user_name: &str, except: Option<UserId>) -> bool {
    view.members.iter().any(|m| Some(m.user.id) != except && m.user_name().eq_ignore_ascii_case(user_name))
}

fn member_ref(org: OrgId) -> ObjectRef {
    ObjectRef::new(ObjectType::OrgMember, org.0)
}

/// Stores a user's SCIM record (created or updated, audited) and applies a change of
/// `active` (suspension or restoration, audited, guarded against lockout).
async fn save_user(
    w: &mut Write,
    org: OrgId,
    m: &Member,
    input: &UserInput,
    wire_before: Option<&Value>,
    wire_after: &Value,
) -> ScimResult<()> {
    let was_active = m.active();
    let active = input.active.unwrap_or(was_active);
    let mut data = json!({"attributes": Value::Object(input.attrs.clone()), "active": active});
    if input.active_unset {
        data["active_unset"] = json!(true);
    }
    let now = w.now();
    match &m.rec {
        Some(r) => {
            if r.data != data {
                let mut rec = r.clone();
                rec.data = data;
                rec.updated = now;
                w.update_admin(&rec, &wire_before, wire_after).await?;
            }
        }
        None => {
            let rec = AdminRecord {
                id: Uuid::now_v7(),
                kind: AdminKind::ScimUser,
                org_id: org,
                scope: member_ref(org),
                name: m.user.id.0.to_string(),
                data,
                secret: None,
                secret_updated_at: None,
                secret_updated_by: None,
                created: now,
                updated: now,
            };
            w.create_admin(&rec, wire_after).await?;
        }
    }
    if active != was_active {
        let name = input.attrs.get("userName").and_then(Value::as_str).map(str::to_owned);
        w.set_suspended(org, m.user.id, !active, name.as_deref(), wire_after).await?;
    }
    Ok(())
}

async fn open_write(c: &ScimCaller) -> ScimResult<Write> {
    let mut w = c.state().write(&c.permit()).await?;
    w.audit_details(c.actor_details());
    Ok(w)
}

/// The user as stored after a write, read back in the write's transaction.
async fn reread_user(w: &mut Write, org: OrgId, id: UserId, base: &str) -> ScimResult<Value> {
    let view = load_view(w.tx(), org).await?;
    let m = view.member(&id.0.to_string()).ok_or_else(|| ScimError::not_found("user", &id.0.to_string()))?;
    Ok(view.user_json(m, base))
}

async fn create_user(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let input = user_input(&body_json(&body)?)?;
    let user_name = input.attrs["userName"].as_str().unwrap_or_default().to_owned();
    let mut w = open_write(&c).await?;
    let view = load_view(w.tx(), c.org).await?;
    if taken(&view, &user_name, None) {
        return Err(ScimError::conflict(format!("a user with userName `{user_name}` already exists")));
    }
    let email = account_email(&input.attrs);
    if let Some(e) = &email {
        if w.tx().find_user_by_email(e).await?.is_some() {
            return Err(ScimError::conflict(format!(
                "an account with the email `{e}` already exists; SCIM does not take over existing accounts (invite \
                 it to the organization instead)"
            )));
        }
    }
    let name = input.attrs.get("name");
    let u = UserRecord {
        id: UserId::generate(),
        kind: UserKind::User,
        email,
        given_name: name.and_then(|n| n["givenName"].as_str()).map(str::to_owned),
        family_name: name.and_then(|n| n["familyName"].as_str()).map(str::to_owned),
        avatar_url: None,
        created: w.now(),
    };
    w.create_user(&u, None).await?;
    w.add_member(c.org, u.id, Some(user_name.as_str()), &crate::dto::user(&u)).await?;
    // A user created inactive starts suspended.
    let m = Member { user: u.clone(), rec: None, joined: w.now() };
    let wire = {
        let mut v = view.user_json(&m, &base);
        v["active"] = json!(input.active.unwrap_or(true));
        v
    };
    save_user(&mut w, c.org, &m, &input, None, &wire).await?;
    let out = reread_user(&mut w, c.org, u.id, &base).await?;
    w.commit().await?;
    Ok(created(out))
}

async fn replace_user_with(c: &ScimCaller, base: &str, id: &str, body: Value, patch_ops: bool) -> ScimResult<Value> {
    let mut w = open_write(c).await?;
    let view = load_view(w.tx(), c.org).await?;
    let m = view.member(id).ok_or_else(|| ScimError::not_found("user", id))?;
    let before = view.user_json(m, base);
    let input = if patch_ops {
        let mut doc = Value::Object(m.attrs());
        if !m.active_unset() {
            doc["active"] = json!(m.active());
        }
        patch::apply(&mut doc, &body, patch::Kind::User)?;
        let mut input = user_input(&doc)?;
        if input.active.is_none() {
            input.active = Some(true);
            input.active_unset = true;
        }
        input
    } else {
        if let Some(given) = body.get("id").and_then(Value::as_str) {
            if given != id {
                return Err(ScimError::bad("mutability", format!("`id` is `{id}` and cannot be changed")));
            }
        }
        user_input(&body)?
    };
    let user_name = input.attrs["userName"].as_str().unwrap_or_default();
    if taken(&view, user_name, Some(m.user.id)) {
        return Err(ScimError::conflict(format!("a user with userName `{user_name}` already exists")));
    }
    let mut after = Value::Object(input.attrs.clone());
    after["id"] = json!(id);
    after["active"] = json!(input.active.unwrap_or(m.active()));
    save_user(&mut w, c.org, m, &input, Some(&before), &after).await?;
    let out = reread_user(&mut w, c.org, m.user.id, base).await?;
    w.commit().await?;
    Ok(out)
}

async fn put_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let body = body_json(&body)?;
    Ok(scim(StatusCode::OK, replace_user_with(&c, &base, &id, body, false).await?))
}

async fn patch_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let body = body_json(&body)?;
    Ok(scim(StatusCode::OK, replace_user_with(&c, &base, &id, body, true).await?))
}

async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ScimResult<Response> {
    let (c, _) = auth(&state, &headers).await?;
    let mut w = open_write(&c).await?;
    let view = load_view(w.tx(), c.org).await?;
    let m = view.member(&id).ok_or_else(|| ScimError::not_found("user", &id))?;
    let org = c.org;
    let u = &m.user;
    for g in w.tx().user_groups(org, u.id).await? {
        w.remove_group_user(org, g, u.id).await?;
    }
    w.revoke_grants_of(org, u.id).await?;
    w.revoke_keys_of(org, u.id).await?;
    let user_name = m.user_name();
    w.remove_member(org, u.id, Some(user_name.as_str()), &crate::dto::user(u)).await?;
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- groups ----------------------------------------------------------------------

async fn list_groups(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let p = list_params(&q)?;
    let view = read_view(&c).await?;
    let all: Vec<Value> = view.groups.iter().map(|g| view.group_json(g, &base)).collect();
    Ok(scim(StatusCode::OK, page(all, &p)))
}

async fn get_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let view = read_view(&c).await?;
    let g = view.group(&id).ok_or_else(|| ScimError::not_found("group", &id))?;
    Ok(scim(StatusCode::OK, one(view.group_json(g, &base), &q)?))
}

/// A validated Group body.
struct GroupInput {
    name: String,
    external_id: Option<String>,
    members: Vec<UserId>,
}

fn group_input(v: &Value, view: &View) -> ScimResult<GroupInput> {
    let Some(o) = v.as_object() else { return Err(ScimError::bad("invalidSyntax", "a Group must be a JSON object")) };
    let mut name = None;
    let mut external_id = None;
    let mut members = Vec::new();
    for (k, x) in o {
        match filter::strip_urn(k).to_ascii_lowercase().as_str() {
            "displayname" => name = string_or_null(x, "displayName")?,
            "externalid" => external_id = string_or_null(x, "externalId")?,
            "members" => {
                let items = match x {
                    Value::Null => vec![],
                    Value::Array(a) => a.clone(),
                    other => {
                        return Err(ScimError::bad("invalidValue", format!("`members` must be a list, got {other}")))
                    }
                };
                for (i, it) in items.iter().enumerate() {
                    let val = filter::get_ci(it, "value").and_then(Value::as_str).ok_or_else(|| {
                        ScimError::bad("invalidValue", format!("`members[{i}].value` must be a user's id"))
                    })?;
                    if filter::get_ci(it, "type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !t.eq_ignore_ascii_case("user"))
                    {
                        return Err(ScimError::bad(
                            "invalidValue",
                            format!("`members[{i}]`: only users can be members"),
                        ));
                    }
                    let m = view.member(val).ok_or_else(|| {
                        ScimError::bad(
                            "invalidValue",
                            format!("`members[{i}].value` `{val}` is not a user of this organization"),
                        )
                    })?;
                    if !members.contains(&m.user.id) {
                        members.push(m.user.id);
                    }
                }
            }
            _ => {}
        }
    }
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| ScimError::bad("invalidValue", "`displayName` is required and must not be empty"))?;
    castellan_core::Name::parse("displayName", &name).map_err(|e| ScimError::bad("invalidValue", e.to_string()))?;
    Ok(GroupInput { name, external_id, members })
}

async fn audit_group(
    w: &mut Write,
    event: &str,
    g: &GroupRecord,
    before: Option<&Value>,
    after: Option<&Value>,
) -> ScimResult<()> {
    w.audit(AuditEvent {
        org: g.org_id,
        event_type: event,
        resource_type: "group",
        resource_id: Some(g.id.0),
        resource_name: Some(&g.name),
        before,
        after,
    })
    .await?;
    Ok(())
}

/// Checks that no other group has `name` (a manual one is never adopted).
async fn name_free(w: &mut Write, org: OrgId, name: &str, except: Option<GroupId>) -> ScimResult<()> {
    if let Some(other) = w.tx().find_group_by_name(org, name).await?.filter(|g| Some(g.id) != except) {
        let scim_managed =
            w.tx().find_admin(AdminKind::ScimGroup, member_ref(org), &other.id.0.to_string()).await?.is_some();
        return Err(ScimError::conflict(if scim_managed {
            format!("a group named `{name}` already exists")
        } else {
            format!("a group named `{name}` exists and is managed by hand; SCIM does not adopt it (rename one of them)")
        }));
    }
    Ok(())
}

async fn set_members(w: &mut Write, g: &GroupRecord, have: &[UserId], want: &[UserId]) -> ScimResult<()> {
    for u in have.iter().filter(|u| !want.contains(u)) {
        w.remove_group_user(g.org_id, g.id, *u).await?;
    }
    for u in want.iter().filter(|u| !have.contains(u)) {
        w.add_group_user(g.id, *u).await?;
    }
    Ok(())
}

async fn reread_group(w: &mut Write, org: OrgId, id: GroupId, base: &str) -> ScimResult<Value> {
    let view = load_view(w.tx(), org).await?;
    let g = view.group(&id.0.to_string()).ok_or_else(|| ScimError::not_found("group", &id.0.to_string()))?;
    Ok(view.group_json(g, base))
}

async fn create_group(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let body = body_json(&body)?;
    let mut w = open_write(&c).await?;
    let view = load_view(w.tx(), c.org).await?;
    let input = group_input(&body, &view)?;
    name_free(&mut w, c.org, &input.name, None).await?;
    let now = w.now();
    let g = GroupRecord {
        id: GroupId::generate(),
        org_id: c.org,
        name: input.name.clone(),
        description: Some("managed by SCIM".into()),
        user_id: None,
        created: now,
    };
    w.create_group(&g).await?;
    set_members(&mut w, &g, &[], &input.members).await?;
    let rec = AdminRecord {
        id: Uuid::now_v7(),
        kind: AdminKind::ScimGroup,
        org_id: c.org,
        scope: member_ref(c.org),
        name: g.id.0.to_string(),
        data: json!({"externalId": input.external_id}),
        secret: None,
        secret_updated_at: None,
        secret_updated_by: None,
        created: now,
        updated: now,
    };
    w.create_admin(&rec, &json!({"group_id": g.id.0, "externalId": input.external_id})).await?;
    let out = reread_group(&mut w, c.org, g.id, &base).await?;
    audit_group(&mut w, "group.created", &g, None, Some(&out)).await?;
    w.commit().await?;
    Ok(created(out))
}

async fn replace_group_with(c: &ScimCaller, base: &str, id: &str, body: Value, patch_ops: bool) -> ScimResult<Value> {
    let mut w = open_write(c).await?;
    let view = load_view(w.tx(), c.org).await?;
    let sg = view.group(id).ok_or_else(|| ScimError::not_found("group", id))?;
    let before = view.group_json(sg, base);
    let doc = if patch_ops {
        let mut doc = before.clone();
        patch::apply(&mut doc, &body, patch::Kind::Group)?;
        doc
    } else {
        if let Some(given) = body.get("id").and_then(Value::as_str) {
            if given != id {
                return Err(ScimError::bad("mutability", format!("`id` is `{id}` and cannot be changed")));
            }
        }
        body
    };
    let input = group_input(&doc, &view)?;
    let mut g = sg.group.clone();
    if input.name != g.name {
        name_free(&mut w, c.org, &input.name, Some(g.id)).await?;
        g.name = input.name.clone();
        w.update_group(&g).await?;
    }
    set_members(&mut w, &g, &sg.users, &input.members).await?;
    let data = json!({"externalId": input.external_id});
    if sg.rec.data != data {
        let mut rec = sg.rec.clone();
        rec.data = data;
        rec.updated = w.now();
        w.update_admin(&rec, &sg.rec.data, &rec.data).await?;
    }
    let out = reread_group(&mut w, c.org, g.id, base).await?;
    if out["displayName"] != before["displayName"]
        || out["members"] != before["members"]
        || out["externalId"] != before["externalId"]
    {
        audit_group(&mut w, "group.updated", &g, Some(&before), Some(&out)).await?;
        w.commit().await?;
    }
    Ok(out)
}

async fn put_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let body = body_json(&body)?;
    Ok(scim(StatusCode::OK, replace_group_with(&c, &base, &id, body, false).await?))
}

async fn patch_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let body = body_json(&body)?;
    let out = replace_group_with(&c, &base, &id, body, true).await?;
    Ok(scim(StatusCode::OK, one(out, &q)?))
}

async fn delete_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ScimResult<Response> {
    let (c, base) = auth(&state, &headers).await?;
    let mut w = open_write(&c).await?;
    let view = load_view(w.tx(), c.org).await?;
    let sg = view.group(&id).ok_or_else(|| ScimError::not_found("group", &id))?;
    let before = view.group_json(sg, &base);
    w.delete_group(&sg.group).await?;
    audit_group(&mut w, "group.deleted", &sg.group, Some(&before), None).await?;
    w.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
