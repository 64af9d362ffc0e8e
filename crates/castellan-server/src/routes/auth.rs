//! Console sign-in (Castellan extension): email and password to a session cookie,
//! sign-out, password change, and one's sessions.

use super::Written;
use crate::access::auth::{client_ip, CSRF_COOKIE, SESSION_COOKIE};
use crate::access::{AppState, Caller, Credential, SignedIn};
use crate::dto;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path};
use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::header::{SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use castellan_api_types::{format_time, ChangePassword, ListResponse, LoginRequest, LoginResponse, Session};
use castellan_core::Email;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(change_password))
        .routes(routes!(sessions))
        .routes(routes!(revoke_session))
}

/// Whether cookies must be `Secure`: the server is reached over TLS.
fn secure(state: &AppState, parts: &Parts) -> bool {
    state.config().public_url().starts_with("https://")
        || parts.headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) == Some("https")
}

pub(crate) fn cookie_header(
    name: &str,
    value: &str,
    max_age_secs: i64,
    http_only: bool,
    secure: bool,
) -> Option<HeaderValue> {
    let mut c = format!("{name}={value}; Path=/; SameSite=Lax; Max-Age={max_age_secs}");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

/// Request facts the sign-in needs besides the body.
#[derive(Clone)]
pub struct ClientFacts {
    pub(crate) ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) secure: bool,
}

impl ClientFacts {
    /// The client's address, if known.
    pub fn ip(&self) -> Option<&str> {
        self.ip.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientFacts
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &S) -> Result<Self, Self::Rejection> {
        let state = &AppState::from_ref(app);
        Ok(ClientFacts {
            ip: client_ip(parts, state),
            user_agent: parts
                .headers
                .get(USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(256).collect()),
            secure: secure(state, parts),
        })
    }
}

/// Signs in with email and password: sets an HttpOnly session cookie and a CSRF
/// cookie. Limited per address and per email; repeated failures make the next
/// attempt wait longer. Unknown emails cost the same time as wrong passwords.
#[utoipa::path(post, path = "/api/auth/login", tag = "Auth", request_body = LoginRequest, security(()),
    responses((status = 200, body = LoginResponse)))]
pub async fn login(
    State(state): State<AppState>,
    facts: ClientFacts,
    Body(body): Body<LoginRequest>,
) -> ApiResult<Response> {
    let wrong = || ApiError::Unauthorized("wrong email or password".into());
    let email = Email::parse(&body.email).map_err(|_| wrong())?;
    let ip = facts.ip.as_deref().unwrap_or("?");
    let ip_key = format!("login-ip:{ip}");
    let email_key = format!("login-email:{email}");
    let pair_key = format!("login-pair:{email}|{ip}");
    let limits = state.limits();
    // Failures slow down the address they come from and the (account, address)
    // pair. The account-wide limits apply only to addresses the account has never
    // signed in from, so guessing elsewhere cannot lock the owner out of its own.
    let known = limits.known.contains(&pair_key);
    limits.login_by_ip.check(&ip_key)?;
    limits.backoff_ip.check(&ip_key)?;
    limits.backoff.check(&pair_key)?;
    if !known {
        limits.login_by_email.check(&email_key)?;
        limits.backoff_unknown.check(&email_key)?;
    }
    let break_glass = body.break_glass.unwrap_or(false);
    let signed_in = state.sign_in(&email, body.password, break_glass, facts.user_agent, facts.ip).await?;
    let Some(SignedIn { user, session, token, csrf }) = signed_in else {
        limits.backoff.failed(&pair_key);
        limits.backoff_ip.failed(&ip_key);
        if !known {
            limits.backoff_unknown.failed(&email_key);
        }
        return Err(wrong());
    };
    limits.backoff.succeeded(&pair_key);
    limits.known.remember(&pair_key);
    let ttl = state.config().session_ttl.as_micros() as i64;
    let body = LoginResponse {
        user: dto::user(&user),
        session_id: session.id,
        csrf_token: csrf.clone(),
        expires_at: format_time(session.expires_at),
    };
    let mut resp = Json(body).into_response();
    let max_age = ttl / 1_000_000;
    for c in [
        cookie_header(SESSION_COOKIE, &token, max_age, true, facts.secure),
        cookie_header(CSRF_COOKIE, &csrf, max_age, false, facts.secure),
    ]
    .into_iter()
    .flatten()
    {
        resp.headers_mut().append(SET_COOKIE, c);
    }
    Ok(resp)
}

/// Signs out: revokes the session and clears its cookies.
#[utoipa::path(post, path = "/api/auth/logout", tag = "Auth", responses((status = 200, description = "signed out")))]
pub async fn logout(caller: Caller, facts: ClientFacts) -> ApiResult<Response> {
    caller.sign_out().await?;
    let mut resp = Json(serde_json::json!({"status": "signed_out"})).into_response();
    for c in [
        cookie_header(SESSION_COOKIE, "", 0, true, facts.secure),
        cookie_header(CSRF_COOKIE, "", 0, false, facts.secure),
    ]
    .into_iter()
    .flatten()
    {
        resp.headers_mut().append(SET_COOKIE, c);
    }
    Ok(resp)
}

/// Sets or changes one's password (the current one is required when there is one);
/// every other session of the account is revoked.
#[utoipa::path(post, path = "/api/auth/password", tag = "Auth", request_body = ChangePassword,
    responses((status = 200, description = "password changed")))]
pub async fn change_password(
    caller: Caller,
    Body(body): Body<ChangePassword>,
) -> ApiResult<Written<serde_json::Value>> {
    let (rev, revoked) = caller.change_password(body.current_password, body.new_password).await?;
    Ok(Written::at(rev, serde_json::json!({"status": "changed", "other_sessions_revoked": revoked})))
}

/// One's live sessions.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "Auth", responses((status = 200, body = ListResponse<Session>)))]
pub async fn sessions(caller: Caller) -> ApiResult<Json<ListResponse<Session>>> {
    let current = match &caller.credential {
        Credential::Session(s) => Some(s.id),
        Credential::Key(_) => None,
    };
    let rows = caller.sessions().await?;
    Ok(Json(ListResponse {
        objects: rows
            .into_iter()
            .map(|s| Session {
                id: s.id,
                created: format_time(s.created),
                last_seen: format_time(s.last_seen),
                expires_at: format_time(s.expires_at),
                user_agent: s.user_agent,
                ip: s.ip,
                current: Some(s.id) == current,
            })
            .collect(),
    }))
}

/// Revokes one of one's sessions; it stops working on the next request.
#[utoipa::path(delete, path = "/api/auth/sessions/{session_id}", tag = "Auth", params(("session_id" = Uuid, Path)),
    responses((status = 200, description = "revoked")))]
pub async fn revoke_session(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<serde_json::Value>> {
    let rev = caller.end_session(id).await?;
    Ok(Written::at(rev, serde_json::json!({"status": "revoked", "id": id})))
}
