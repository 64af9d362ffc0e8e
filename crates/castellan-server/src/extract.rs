//! Request extractors that turn every malformed input into a clear 400.

use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use castellan_store::{Cursor, PageRequest};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::IntoParams;
use uuid::Uuid;

pub mod de;

pub use de::{empty_as_none, without_empties};

/// The largest page a list endpoint serves; larger `limit`s are refused, not cut.
pub const MAX_LIMIT: usize = 1000;

/// A JSON body, parsed whatever the `Content-Type` says (the Braintrust SDK sends
/// some bodies without one). An empty body reads as `{}`.
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = bytes::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body is larger than the server accepts".into())
            } else {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            }
        })?;
        parse_json(&bytes).map(Body)
    }
}

/// Whether JSON text escapes U+0000 (`\u0000` after an odd run of backslashes; an
/// escaped backslash followed by `u0000` is plain text).
fn has_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(b"\\u0000") && bytes[..=i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1
    })
}

/// Parses a JSON body with the same errors as [`Body`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    // PostgreSQL cannot store U+0000 in text or JSON; refused the same on every backend.
    if has_nul_escape(bytes) {
        return Err(ApiError::invalid_body("strings may not contain the character U+0000"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error_free(&mut de)?;
    de.end().map_err(|e| ApiError::BadRequest {
        code: crate::error::ErrorCode::InvalidJson,
        message: format!("request body is not valid JSON: {e}"),
    })?;
    Ok(value)
}

fn serde_path_to_error_free<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, ApiError> {
    T::deserialize(de).map_err(|e| match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof | serde_json::error::Category::Io => {
            ApiError::BadRequest {
                code: crate::error::ErrorCode::InvalidJson,
                message: format!("request body is not valid JSON: {e}"),
            }
        }
        serde_json::error::Category::Data => ApiError::invalid_body(format!("invalid request body: {e}")),
    })
}

/// Query parameters as a multimap, keys in the order they first appear. Repeated
/// keys (`ids=a&ids=b`) and the `ids[]=a` spelling gather under one key. It is the
/// input [`Query`] deserializes from.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: HashMap<String, Vec<String>>,
    order: Vec<String>,
}

impl Params {
    /// Parses a query string.
    pub fn parse(query: &str) -> Params {
        let mut params = Params::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            // `ids[]=a` is another common spelling of a repeated key.
            let key = k.strip_suffix("[]").unwrap_or(&k);
            match params.values.get_mut(key) {
                Some(vs) => vs.push(v.into_owned()),
                None => {
                    params.order.push(key.to_owned());
                    params.values.insert(key.to_owned(), vec![v.into_owned()]);
                }
            }
        }
        params
    }

    /// Every value given for `name`.
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.values.get(name).map(Vec::as_slice)
    }

    /// The keys, in the order they first appear.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    /// Reads the parameters into `T`: 400 `invalid_parameter` naming the parameter
    /// that does not parse. Parameters `T` does not name are ignored, as Braintrust
    /// ignores them.
    pub fn deserialize<T: DeserializeOwned>(&self) -> ApiResult<T> {
        T::deserialize(de::ParamsDe(self)).map_err(|e| ApiError::invalid_parameter(e.into_message()))
    }
}

/// Query parameters read into `T`, a struct whose fields are the parameters. `T` also
/// derives `utoipa::IntoParams` and is named in its handler's `#[utoipa::path]`, so
/// what a handler reads and what the API documents are declared once. See
/// [`de`] for how values are read; any parameter that does not parse is a 400
/// `invalid_parameter` that names it.
#[derive(Debug, Clone, Default)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Params::parse(parts.uri.query().unwrap_or("")).deserialize().map(Query)
    }
}

/// Path parameters, read by `axum::extract::Path`, with a 400 `invalid_parameter`
/// naming the parameter when one does not parse ("`project_id` must be a UUID, got
/// `x`"). A single id reads as `Path<ProjectId>` or `Path<Uuid>`.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(path_error(e.into_kind())),
            // The route has no such parameters: a bug in the route table, not the request.
            Err(e) => Err(ApiError::Internal(e.body_text())),
        }
    }
}

fn path_error(kind: axum::extract::path::ErrorKind) -> ApiError {
    use axum::extract::path::ErrorKind;
    match kind {
        // The only path values that fail to parse here are UUIDs (ids wrap them),
        // whose parser words its errors this way.
        ErrorKind::DeserializeError { key, value, message } if message.starts_with("UUID parsing failed") => {
            ApiError::invalid_parameter(format!("`{key}` must be a UUID, got `{value}`"))
        }
        ErrorKind::DeserializeError { key, value, message } => {
            ApiError::invalid_parameter(format!("`{key}` is not valid ({message}), got `{value}`"))
        }
        ErrorKind::ParseErrorAtKey { key, value, expected_type } => {
            ApiError::invalid_parameter(format!("`{key}` must be a `{expected_type}`, got `{value}`"))
        }
        ErrorKind::InvalidUtf8InPathParam { key } => {
            ApiError::invalid_parameter(format!("`{key}` is not valid UTF-8 once percent-decoded"))
        }
        // The handler's type does not fit its route: a bug here, not in the request.
        e @ (ErrorKind::WrongNumberOfParameters { .. } | ErrorKind::UnsupportedType { .. }) => {
            ApiError::Internal(e.to_string())
        }
        e => ApiError::invalid_parameter(e.to_string()),
    }
}

/// A page size, `limit`: a whole number from 0 to [`MAX_LIMIT`], which is also the
/// default (given with no value, it is absent). A larger one is refused, not cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(usize);

impl Limit {
    /// The number of rows asked for.
    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit(MAX_LIMIT)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match empty_as_none::<_, i64>(d)? {
            None => Ok(Limit::default()),
            Some(n) if n < 0 => Err(D::Error::custom(format_args!("must be at least 0, got `{n}`"))),
            Some(n) if n as u64 > MAX_LIMIT as u64 => Err(D::Error::custom(format_args!(
                "must be at most {MAX_LIMIT}, got `{n}`; page with `starting_after`"
            ))),
            Some(n) => Ok(Limit(n as usize)),
        }
    }
}

/// Where a list's page starts and how long it is: every list endpoint's paging
/// parameters, declared here once. Its handler takes `Query(page): Query<Page>` and
/// names `Page` in `#[utoipa::path(params(..))]`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The most objects to return, at most 1000 (the default).
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit,
    /// Return the objects after this one (pass the last id of the previous page).
    starting_after: Option<Uuid>,
    /// Return the objects before this one (pass the first id of the page after).
    ending_before: Option<Uuid>,
}

impl Page {
    /// The page size.
    pub fn limit(&self) -> usize {
        self.limit.get()
    }

    /// The page cursor: at most one of `starting_after` and `ending_before`.
    pub fn cursor(&self) -> ApiResult<PageCursor> {
        match (self.starting_after, self.ending_before) {
            (Some(_), Some(_)) => {
                Err(ApiError::invalid_parameter("pass at most one of `starting_after` and `ending_before`"))
            }
            (Some(a), None) => Ok(PageCursor::After(a)),
            (None, Some(b)) => Ok(PageCursor::Before(b)),
            (None, None) => Ok(PageCursor::Start),
        }
    }
}

/// A page cursor before its id is resolved to a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCursor {
    /// First page.
    Start,
    /// `starting_after`.
    After(Uuid),
    /// `ending_before`.
    Before(Uuid),
}

impl PageCursor {
    /// The cursor's id, if any.
    pub fn id(self) -> Option<Uuid> {
        match self {
            PageCursor::Start => None,
            PageCursor::After(id) | PageCursor::Before(id) => Some(id),
        }
    }

    /// Resolves to a page request given the cursor row's key (found and visible).
    pub fn resolve(self, limit: usize, key: Option<castellan_store::PageKey>) -> Result<PageRequest, ApiError> {
        let cursor = match (self, key) {
            (PageCursor::Start, _) => Cursor::Start,
            (PageCursor::After(_), Some(k)) => Cursor::After(k),
            (PageCursor::Before(_), Some(k)) => Cursor::Before(k),
            (PageCursor::After(id) | PageCursor::Before(id), None) => {
                return Err(ApiError::invalid_parameter(format!("cursor `{id}` does not name an object in this list")))
            }
        };
        Ok(PageRequest { limit, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use castellan_core::{ObjectType, ProjectId};

    /// A query struct with a field of each kind the handlers use.
    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default)]
    struct Filters {
        ids: Vec<Uuid>,
        project_id: Option<Uuid>,
        #[serde(deserialize_with = "empty_as_none")]
        org_name: Option<String>,
        #[serde(deserialize_with = "empty_as_none")]
        summarize: Option<bool>,
        #[serde(deserialize_with = "empty_as_none")]
        object_type: Option<ObjectType>,
        #[serde(deserialize_with = "without_empties")]
        email: Vec<String>,
    }

    fn read<T: DeserializeOwned>(query: &str) -> T {
        Params::parse(query).deserialize().unwrap_or_else(|e| panic!("`{query}` was refused: {e}"))
    }

    /// The message of the 400 `invalid_parameter` a query is refused with.
    fn refusal<T: DeserializeOwned + std::fmt::Debug>(query: &str) -> String {
        match Params::parse(query).deserialize::<T>() {
            Err(ApiError::BadRequest { code: crate::error::ErrorCode::InvalidParameter, message }) => message,
            other => panic!("`{query}` was not refused as an invalid parameter: {other:?}"),
        }
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn ids_arrive_repeated_comma_joined_or_with_brackets() {
        let (a, b, c) = (id(1), id(2), id(3));
        assert_eq!(read::<Filters>(&format!("ids={a},{b}&ids={c}")).ids, vec![a, b, c]);
        assert_eq!(read::<Filters>(&format!("ids[]={a}&ids[]={b}")).ids, vec![a, b]);
        assert_eq!(read::<Filters>(&format!("ids={a},%20{b},,")).ids, vec![a, b], "pieces are trimmed");
        assert_eq!(read::<Filters>("").ids, Vec::<Uuid>::new());
    }

    #[test]
    fn a_bad_uuid_is_refused_naming_its_parameter() {
        assert_eq!(refusal::<Filters>("project_id=nope"), "`project_id` must be a UUID, got `nope`");
        assert_eq!(refusal::<Filters>(&format!("ids={},zzz", id(1))), "each value of `ids` must be a UUID, got `zzz`");
    }

    #[test]
    fn an_empty_uuid_filter_is_refused() {
        assert_eq!(refusal::<Filters>("project_id="), "`project_id` must be a UUID, got an empty value");
        assert_eq!(refusal::<Filters>(&format!("project_id={}&project_id=", id(1))), refusal::<Filters>("project_id="));
        assert_eq!(refusal::<Filters>(&format!("project_id=&project_id={}", id(1))), refusal::<Filters>("project_id="));
        assert_eq!(refusal::<Filters>("ids="), "each value of `ids` must be a UUID, got an empty value");
        assert!(refusal::<Filters>(&format!("ids={}&ids=", id(1))).contains("empty value"));
        assert!(refusal::<Filters>("ids=,").contains("empty value"));
    }

    #[test]
    fn an_empty_string_parameter_reads_as_absent() {
        assert_eq!(read::<Filters>("org_name="), Filters::default());
        assert_eq!(read::<Filters>("org_name=a&org_name=").org_name, None);
        assert_eq!(read::<Filters>("org_name=&org_name=b").org_name.as_deref(), Some("b"));
        assert_eq!(read::<Filters>("email=&email=a@x.io,,b@x.io").email, vec!["a@x.io", "b@x.io"]);
    }

    #[test]
    fn a_scalar_reads_the_last_of_its_values() {
        assert_eq!(read::<Filters>("org_name=a&org_name=b").org_name.as_deref(), Some("b"));
        assert_eq!(read::<Filters>(&format!("project_id={}&project_id={}", id(1), id(2))).project_id, Some(id(2)));
        assert_eq!(read::<Filters>("org_name=a,b").org_name.as_deref(), Some("a,b"), "commas split lists only");
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        assert_eq!(read::<Filters>("foo=bar&foo=&limit=ten"), Filters::default());
    }

    #[test]
    fn booleans_are_true_false_one_or_zero() {
        for (q, want) in [("true", true), ("1", true), ("false", false), ("0", false)] {
            assert_eq!(read::<Filters>(&format!("summarize={q}")).summarize, Some(want));
        }
        assert_eq!(read::<Filters>("summarize=").summarize, None);
        assert_eq!(refusal::<Filters>("summarize=yes"), "`summarize` must be true or false, got `yes`");
    }

    #[test]
    fn an_enum_names_the_values_it_accepts() {
        assert_eq!(read::<Filters>("object_type=prompt_session").object_type, Some(ObjectType::PromptSession));
        let refused = refusal::<Filters>("object_type=folder");
        assert!(refused.starts_with("`object_type` must be one of organization, org_member,"), "{refused}");
        assert!(refused.ends_with(", got `folder`"), "{refused}");
    }

    #[test]
    fn a_missing_required_parameter_is_named() {
        #[derive(Debug, Deserialize)]
        struct Required {
            #[allow(dead_code)]
            object_id: ProjectId,
        }
        assert_eq!(refusal::<Required>("object_type=project"), "`object_id` is required");
        assert_eq!(refusal::<Required>("object_id=x"), "`object_id` must be a UUID, got `x`");
        assert_eq!(read::<Required>(&format!("object_id={}", id(7))).object_id, ProjectId(id(7)));
    }

    #[test]
    fn a_limit_over_the_maximum_is_refused_not_cut() {
        assert_eq!(read::<Page>("limit=5").limit(), 5);
        assert_eq!(read::<Page>("limit=0").limit(), 0);
        assert_eq!(read::<Page>("").limit(), MAX_LIMIT);
        assert_eq!(read::<Page>("limit=").limit(), MAX_LIMIT);
        assert_eq!(read::<Page>("limit=1000").limit(), MAX_LIMIT);
        assert_eq!(
            refusal::<Page>("limit=1001"),
            "`limit` must be at most 1000, got `1001`; page with `starting_after`"
        );
        assert_eq!(refusal::<Page>("limit=-1"), "`limit` must be at least 0, got `-1`");
        assert_eq!(refusal::<Page>("limit=ten"), "`limit` must be a whole number, got `ten`");
    }

    #[test]
    fn both_cursors_at_once_are_refused() {
        let (a, b) = (id(1), id(2));
        assert_eq!(read::<Page>(&format!("starting_after={a}")).cursor().unwrap(), PageCursor::After(a));
        assert_eq!(read::<Page>(&format!("ending_before={b}")).cursor().unwrap(), PageCursor::Before(b));
        assert_eq!(read::<Page>("").cursor().unwrap(), PageCursor::Start);
        let both = read::<Page>(&format!("starting_after={a}&ending_before={b}")).cursor().unwrap_err();
        assert_eq!(both.to_string(), "pass at most one of `starting_after` and `ending_before`");
        assert_eq!(both.status_and_code().1, "invalid_parameter");
        assert_eq!(refusal::<Page>("starting_after="), "`starting_after` must be a UUID, got an empty value");
    }

    #[tokio::test]
    async fn a_path_id_that_is_not_a_uuid_is_refused_naming_it() {
        use tower::ServiceExt;
        async fn one(Path(id): Path<ProjectId>) -> String {
            id.to_string()
        }
        let app = axum::Router::new().route("/p/{project_id}", axum::routing::get(one));
        let get = |uri: String| {
            let app = app.clone();
            async move {
                let resp = app.oneshot(Request::get(uri).body(axum::body::Body::empty()).unwrap()).await.unwrap();
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        assert_eq!(get(format!("/p/{}", id(9))).await, (axum::http::StatusCode::OK, id(9).to_string()));
        let (status, body) = get("/p/not-a-uuid".into()).await;
        assert_eq!(status, axum::http::StatusCode::BAD_REQUEST);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "invalid_parameter");
        assert_eq!(body["message"], "`project_id` must be a UUID, got `not-a-uuid`");
    }

    #[test]
    fn a_nul_character_is_refused_but_an_escaped_backslash_before_u0000_is_text() {
        assert!(has_nul_escape(br#"{"a": "x\u0000y"}"#));
        assert!(has_nul_escape(br#"{"a": "\U0000"}"#));
        assert!(!has_nul_escape(br#"{"a": "\\u0000"}"#));
        assert!(has_nul_escape(br#"{"a": "\\\u0000"}"#));
        let code = parse_json::<serde_json::Value>(br#"{"a": "\u0000"}"#).unwrap_err().status_and_code().1;
        assert_eq!(code, "invalid_body");
    }

    #[test]
    fn bodies_distinguish_bad_json_from_bad_shapes() {
        #[derive(serde::Deserialize, Debug)]
        struct B {
            #[allow(dead_code)]
            name: String,
        }
        let code = |r: Result<B, ApiError>| r.unwrap_err().status_and_code().1;
        assert_eq!(code(parse_json(b"{nope")), "invalid_json");
        assert_eq!(code(parse_json(br#"{"name": 5}"#)), "invalid_body");
        assert_eq!(code(parse_json(b"")), "invalid_body");
        assert_eq!(code(parse_json(br#"{"name": "a"} trailing"#)), "invalid_json");
        assert!(parse_json::<B>(br#"{"name": "a", "extra": 1}"#).is_ok());
    }
}
