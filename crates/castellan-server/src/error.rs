//! One error model for every endpoint: a status, a stable code and a message.
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `bad_request` | a request that breaks a rule (exactly one of two fields, …) |
//! | 400 | `invalid_json` | the body is not JSON |
//! | 400 | `invalid_body` | the body is JSON of the wrong shape (types, unknown enum values, missing fields) |
//! | 400 | `invalid_parameter` | a query parameter cannot be parsed or is out of range |
//! | 400 | `name_taken` | a rename onto a name that is in use |
//! | 400 | `cycle` | a group or role would contain itself |
//! | 400 | `lockout` | the change would leave an org without an owner or a member |
//! | 401 | `unauthorized` | no credential, or a bad, expired or revoked one |
//! | 403 | `forbidden` | the caller can see the object but may not do this to it |
//! | 403 | `csrf` | a write authenticated by a session cookie without its CSRF token |
//! | 404 | `not_found` | no such object, or the caller cannot see it |
//! | 405 | `method_not_allowed` | the path exists, the method does not |
//! | 413 | `payload_too_large` | the body is over the limit |
//! | 429 | `rate_limited` | too many requests; see `Retry-After` |
//! | 500 | `internal` | a server fault (details are logged, never returned) |
//! | 503 | `revision_not_reached` | `x-castellan-min-revision` could not be met in time |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use castellan_api_types::ErrorBody;
use castellan_store::StoreError;

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a specific code.
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// 401.
    #[error("{0}")]
    Unauthorized(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 403 for a cookie-authenticated write without the CSRF token.
    #[error("this request needs the `x-csrf-token` header of your session")]
    Csrf,
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 429.
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// 503 for an unmet minimum revision.
    #[error("{0}")]
    RevisionNotReached(String),
    /// 500. The text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest { code: "bad_request", message: message.into() }
    }

    /// 400 `invalid_parameter`.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        ApiError::BadRequest { code: "invalid_parameter", message: message.into() }
    }

    /// 400 `invalid_body`.
    pub fn invalid_body(message: impl Into<String>) -> Self {
        ApiError::BadRequest { code: "invalid_body", message: message.into() }
    }

    /// 404 for an object of `kind` with `id`.
    pub fn not_found(kind: &str, id: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("{kind} `{id}` not found"))
    }

    /// The status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Csrf => (StatusCode::FORBIDDEN, "csrf"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::RevisionNotReached(_) => (StatusCode::SERVICE_UNAVAILABLE, "revision_not_reached"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(msg) => ApiError::BadRequest { code: "name_taken", message: msg },
            StoreError::Integrity(msg) | StoreError::Backend(msg) => ApiError::Internal(msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(detail) => {
                // 5xx bodies are opaque; the cause goes to the log only.
                tracing::error!(error = %detail, "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = (status, axum::Json(ErrorBody { code: code.to_owned(), message })).into_response();
        if let ApiError::RateLimited { retry_after_secs } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
