//! Request extractors that turn every malformed input into a clear 400.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use castellan_store::{Cursor, PageRequest};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::str::FromStr;
use uuid::Uuid;

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

/// Parses a JSON body with the same errors as [`Body`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
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

/// Query parameters as a multimap. Repeated keys (`ids=a&ids=b`) and comma-joined
/// values (`ids=a,b`, as the Stainless clients send them) are both understood by the
/// list getters. Unknown parameters are ignored, as Braintrust does.
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, Vec<String>>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query().unwrap_or("")))
    }
}

impl Params {
    /// Parses a query string.
    pub fn parse(query: &str) -> Params {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            // `ids[]=a` is another common spelling of a repeated key.
            let key = k.strip_suffix("[]").unwrap_or(&k).to_owned();
            map.entry(key).or_default().push(v.into_owned());
        }
        Params(map)
    }

    /// The last value of a parameter, if present and non-empty.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.last()).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// Every value of a parameter, comma-joined values split.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .get(name)
            .map(|vs| {
                vs.iter()
                    .flat_map(|v| v.split(','))
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A parameter parsed as `T`, with a 400 naming it when it does not parse.
    pub fn parsed<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        match self.str(name) {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| ApiError::invalid_parameter(format!("`{name}` must be {what}, got `{s}`"))),
        }
    }

    /// A UUID parameter.
    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        self.refuse_empty(name, "a UUID")?;
        self.parsed(name, "a UUID")
    }

    /// A parameter given with no value (`?project_id=`) is refused rather than read
    /// as absent: dropping a filter silently widens what an answer covers.
    fn refuse_empty(&self, name: &str, what: &str) -> Result<(), ApiError> {
        match self.0.get(name) {
            Some(vs) if vs.iter().any(|v| v.trim().is_empty()) => {
                Err(ApiError::invalid_parameter(format!("`{name}` must be {what}, got an empty value")))
            }
            _ => Ok(()),
        }
    }

    /// A list of UUIDs (`ids`).
    pub fn uuids(&self, name: &str) -> Result<Vec<Uuid>, ApiError> {
        self.refuse_empty(name, "one or more UUIDs")?;
        self.list(name)
            .iter()
            .map(|s| {
                Uuid::parse_str(s)
                    .map_err(|_| ApiError::invalid_parameter(format!("`{name}` must hold UUIDs, got `{s}`")))
            })
            .collect()
    }

    /// A boolean parameter (`true`/`false`/`1`/`0`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.str(name) {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(s) => Err(ApiError::invalid_parameter(format!("`{name}` must be true or false, got `{s}`"))),
        }
    }

    /// An enum parameter such as `object_type`, with the accepted values in the error.
    pub fn enumerated<T>(&self, name: &str) -> Result<Option<T>, ApiError>
    where
        T: FromStr<Err = castellan_core::model::UnknownVariant>,
    {
        match self.str(name) {
            None => Ok(None),
            Some(s) => s.parse::<T>().map(Some).map_err(|e| ApiError::invalid_parameter(format!("`{name}`: {e}"))),
        }
    }

    /// The page size: `limit` (default and maximum [`MAX_LIMIT`]).
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.parsed::<i64>("limit", "a whole number")? {
            None => Ok(MAX_LIMIT),
            Some(n) if n < 0 => Err(ApiError::invalid_parameter(format!("`limit` must be at least 0, got `{n}`"))),
            Some(n) if n as u64 > MAX_LIMIT as u64 => Err(ApiError::invalid_parameter(format!(
                "`limit` must be at most {MAX_LIMIT}, got `{n}`; page with `starting_after`"
            ))),
            Some(n) => Ok(n as usize),
        }
    }

    /// The page cursor: at most one of `starting_after` and `ending_before`.
    pub fn cursor_id(&self) -> Result<PageCursor, ApiError> {
        let after = self.uuid("starting_after")?;
        let before = self.uuid("ending_before")?;
        match (after, before) {
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

    #[test]
    fn ids_arrive_repeated_or_comma_joined() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let c = Uuid::from_u128(3);
        let p = Params::parse(&format!("ids={a},{b}&ids={c}"));
        assert_eq!(p.uuids("ids").unwrap(), vec![a, b, c]);
        assert!(Params::parse("ids=zzz").uuids("ids").is_err());
    }

    #[test]
    fn a_limit_over_the_maximum_is_refused_not_cut() {
        assert_eq!(Params::parse("limit=5").limit().unwrap(), 5);
        assert_eq!(Params::parse("").limit().unwrap(), MAX_LIMIT);
        assert!(Params::parse("limit=1001").limit().is_err());
        assert!(Params::parse("limit=-1").limit().is_err());
        assert!(Params::parse("limit=ten").limit().is_err());
    }

    #[test]
    fn both_cursors_at_once_are_refused() {
        let p = Params::parse(&format!("starting_after={}&ending_before={}", Uuid::nil(), Uuid::nil()));
        assert!(p.cursor_id().is_err());
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
