//! One error model for every endpoint: a status, a stable code and a message.
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `bad_request` | a request that breaks a rule (exactly one of two fields, …) |
//! | 400 | `invalid_json` | the body is not JSON |
//! | 400 | `invalid_body` | the body is JSON of the wrong shape (types, unknown enum values, missing fields) |
//! | 400 | `invalid_parameter` | a query parameter cannot be parsed or is out of range |
//! | 400 | `invalid_query` | a BTQL query that does not parse or names an unknown field; the message says where (`at 1:17: …`) |
//! | 400 | `name_taken` | a rename onto a name that is in use |
//! | 400 | `cycle` | a group or role would contain itself |
//! | 400 | `lockout` | the change would leave an org without an owner or a member |
//! | 400 | `protected` | a built-in group or role cannot be renamed or deleted |
//! | 401 | `unauthorized` | no credential, or a bad, expired or revoked one |
//! | 401 | `sso_failed` | a single sign-on did not complete; the message says which step failed (state, the provider's answer, the ID token, the account) |
//! | 403 | `forbidden` | the caller can see the object but may not do this to it |
//! | 403 | `csrf` | a write authenticated by a session cookie without its CSRF token |
//! | 403 | `sso_required` | the organization requires single sign-on for this account's email domain (password sign-in, or an API key from a password session) |
//! | 404 | `not_found` | no such object, or the caller cannot see it |
//! | 405 | `method_not_allowed` | the path exists, the method does not |
//! | 409 | `plan_changed` | a configuration apply whose plan is no longer the one expected (`expected_plan_hash`) |
//! | 413 | `payload_too_large` | the body is over the limit |
//! | 415 | `unsupported_media_type` | a body of a content type or encoding the endpoint does not take |
//! | 429 | `rate_limited` | too many requests; see `Retry-After` |
//! | 429 | `plan_limit_exceeded` | a write refused because it would take the organization over a hard monthly limit of its plan; the message names the limit and the numbers |
//! | 500 | `internal` | a server fault (details are logged, never returned) |
//! | 503 | `revision_not_reached` | `x-castellan-min-revision` could not be met in time |
//! | 503 | `no_master_key` | a secret value cannot be stored: the server has no master key configured |

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use castellan_api_types::ErrorBody;
use castellan_store::StoreError;

/// The stable codes of error answers: this enum is the table above (a test checks
/// that the table lists each, with its status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400 `bad_request`.
    BadRequest,
    /// 400 `invalid_json`.
    InvalidJson,
    /// 400 `invalid_body`.
    InvalidBody,
    /// 400 `invalid_parameter`.
    InvalidParameter,
    /// 400 `invalid_query`.
    InvalidQuery,
    /// 400 `name_taken`.
    NameTaken,
    /// 400 `cycle`.
    Cycle,
    /// 400 `lockout`.
    Lockout,
    /// 400 `protected`.
    Protected,
    /// 401 `unauthorized`.
    Unauthorized,
    /// 403 `forbidden`.
    Forbidden,
    /// 403 `csrf`.
    Csrf,
    /// 403 `sso_required`.
    SsoRequired,
    /// 401 `sso_failed`.
    SsoFailed,
    /// 404 `not_found`.
    NotFound,
    /// 405 `method_not_allowed`.
    MethodNotAllowed,
    /// 409 `plan_changed`.
    PlanChanged,
    /// 413 `payload_too_large`.
    PayloadTooLarge,
    /// 415 `unsupported_media_type`.
    UnsupportedMediaType,
    /// 429 `rate_limited`.
    RateLimited,
    /// 429 `plan_limit_exceeded`.
    PlanLimitExceeded,
    /// 500 `internal`.
    Internal,
    /// 503 `revision_not_reached`.
    RevisionNotReached,
    /// 503 `no_master_key`.
    NoMasterKey,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidBody,
        ErrorCode::InvalidParameter,
        ErrorCode::InvalidQuery,
        ErrorCode::NameTaken,
        ErrorCode::Cycle,
        ErrorCode::Lockout,
        ErrorCode::Protected,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::Csrf,
        ErrorCode::SsoRequired,
        ErrorCode::SsoFailed,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PlanChanged,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RateLimited,
        ErrorCode::PlanLimitExceeded,
        ErrorCode::Internal,
        ErrorCode::RevisionNotReached,
        ErrorCode::NoMasterKey,
    ];

    /// The code on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::Cycle => "cycle",
            ErrorCode::Lockout => "lockout",
            ErrorCode::Protected => "protected",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Csrf => "csrf",
            ErrorCode::SsoRequired => "sso_required",
            ErrorCode::SsoFailed => "sso_failed",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PlanChanged => "plan_changed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::PlanLimitExceeded => "plan_limit_exceeded",
            ErrorCode::Internal => "internal",
            ErrorCode::RevisionNotReached => "revision_not_reached",
            ErrorCode::NoMasterKey => "no_master_key",
        }
    }

    /// Its HTTP status.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::InvalidJson
            | ErrorCode::InvalidBody
            | ErrorCode::InvalidParameter
            | ErrorCode::InvalidQuery
            | ErrorCode::NameTaken
            | ErrorCode::Cycle
            | ErrorCode::Lockout
            | ErrorCode::Protected => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized | ErrorCode::SsoFailed => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden | ErrorCode::Csrf | ErrorCode::SsoRequired => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::PlanChanged => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited | ErrorCode::PlanLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::RevisionNotReached | ErrorCode::NoMasterKey => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a specific code (one of the 400 codes).
    #[error("{message}")]
    BadRequest {
        /// Stable code.
        code: ErrorCode,
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
    /// 403: the organization requires single sign-on for this account (the message
    /// says where to sign in instead).
    #[error("{0}")]
    SsoRequired(String),
    /// 401: a single sign-on did not complete (the message says which step failed).
    #[error("{0}")]
    SsoFailed(String),
    /// 403 for a cookie-authenticated write without the CSRF token.
    #[error("this request needs the `x-csrf-token` header of your session")]
    Csrf,
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the state changed since a plan was made.
    #[error("{0}")]
    PlanChanged(String),
    /// 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429.
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// 429: a write would go over a hard limit of the organization's plan.
    #[error("{0}")]
    PlanLimitExceeded(String),
    /// 503 for an unmet minimum revision.
    #[error("{0}")]
    RevisionNotReached(String),
    /// 503: secret values cannot be stored without a master key.
    #[error("this server has no master key for secret values: set `secret_key` or `secret_key_file` (the same on every replica)")]
    NoMasterKey,
    /// 500. The text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest { code: ErrorCode::BadRequest, message: message.into() }
    }

    /// 400 `invalid_parameter`.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        ApiError::BadRequest { code: ErrorCode::InvalidParameter, message: message.into() }
    }

    /// 400 `invalid_query`.
    pub fn invalid_query(message: impl Into<String>) -> Self {
        ApiError::BadRequest { code: ErrorCode::InvalidQuery, message: message.into() }
    }

    /// 400 `invalid_body`.
    pub fn invalid_body(message: impl Into<String>) -> Self {
        ApiError::BadRequest { code: ErrorCode::InvalidBody, message: message.into() }
    }

    /// 404 for an object of `kind` with `id`.
    pub fn not_found(kind: &str, id: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("{kind} `{id}` not found"))
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest { code, .. } => *code,
            ApiError::Unauthorized(_) => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Csrf => ErrorCode::Csrf,
            ApiError::SsoRequired(_) => ErrorCode::SsoRequired,
            ApiError::SsoFailed(_) => ErrorCode::SsoFailed,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::PlanChanged(_) => ErrorCode::PlanChanged,
            ApiError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::PlanLimitExceeded(_) => ErrorCode::PlanLimitExceeded,
            ApiError::RevisionNotReached(_) => ErrorCode::RevisionNotReached,
            ApiError::NoMasterKey => ErrorCode::NoMasterKey,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        let code = self.code();
        (code.status(), code.as_str())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict(msg) => ApiError::BadRequest { code: ErrorCode::NameTaken, message: msg },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_table_lists_every_code_with_its_status_and_nothing_else() {
        let doc: Vec<&str> = include_str!("error.rs").lines().take_while(|l| l.starts_with("//!")).collect();
        let rows: Vec<&str> = doc.iter().copied().filter(|l| l.starts_with("//! | ") && l.contains('`')).collect();
        for c in ErrorCode::ALL {
            let row = format!("//! | {} | `{}` |", c.status().as_u16(), c.as_str());
            assert!(rows.iter().any(|r| r.starts_with(&row)), "the table lacks {row}");
        }
        assert_eq!(rows.len(), ErrorCode::ALL.len(), "the table lists a code the enum does not have: {rows:#?}");
    }

    #[test]
    fn a_bad_request_code_is_a_400() {
        for c in ErrorCode::ALL {
            let e = ApiError::BadRequest { code: c, message: String::new() };
            if c.status() == StatusCode::BAD_REQUEST {
                assert_eq!(e.status_and_code(), (StatusCode::BAD_REQUEST, c.as_str()));
            }
        }
    }
}
