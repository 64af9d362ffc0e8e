//! Console sign-in (Castellan extension): email and password to a session cookie,
//! sign-out, password change, and one's sessions.

use super::Written;
use crate::access::auth::{client_ip, CSRF_COOKIE, SESSION_COOKIE};
use crate::access::{AppState, AuditEvent, Caller, Credential, Permit};
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
use castellan_store::{SessionRecord, UserKind};
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

fn cookie_header(name: &str, value: &str, max_age_secs: i64, http_only: bool, secure: bool) -> Option<HeaderValue> {
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
pub struct ClientFacts {
    ip: Option<String>,
    user_agent: Option<String>,
    secure: bool,
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
    let probe = Permit::by_token(None);
    let (user, stored) = {
        let mut tx = state.read(&probe).await?;
        match tx.find_user_by_email(email.as_str()).await?.filter(|u| u.kind == UserKind::User) {
            Some(u) => {
                let h = tx.password_hash(u.id).await?;
                (Some(u), h)
            }
            None => (None, None),
        }
    };
    let ok = crate::passwords::verify(body.password, stored).await?;
    let Some(user) = user.filter(|_| ok) else {
        limits.backoff.failed(&pair_key);
        limits.backoff_ip.failed(&ip_key);
        if !known {
            limits.backoff_unknown.failed(&email_key);
        }
        return Err(wrong());
    };
    limits.backoff.succeeded(&pair_key);
    limits.known.remember(&pair_key);
    let token = crate::keys::mint("cs-");
    let csrf = crate::keys::mint("csrf-");
    let now = state.now();
    let ttl = state.config().session_ttl.as_micros() as i64;
    let session = SessionRecord {
        id: Uuid::now_v7(),
        user_id: user.id,
        created: now,
        last_seen: now,
        expires_at: now + ttl,
        user_agent: facts.user_agent,
        ip: facts.ip,
    };
    let mut w = state.write(&Permit::by_token(Some(user.id))).await?;
    w.tx().insert_session(&session, &token.hash, &csrf.hash).await?;
    w.commit().await?;
    let body = LoginResponse {
        user: dto::user(&user),
        session_id: session.id,
        csrf_token: csrf.raw.clone(),
        expires_at: format_time(session.expires_at),
    };
    let mut resp = Json(body).into_response();
    let max_age = ttl / 1_000_000;
    for c in [
        cookie_header(SESSION_COOKIE, &token.raw, max_age, true, facts.secure),
        cookie_header(CSRF_COOKIE, &csrf.raw, max_age, false, facts.secure),
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
    if let Credential::Session(s) = &caller.credential {
        let mut w = caller.state().write(&caller.self_permit()).await?;
        let now = w.now();
        w.tx().revoke_session(caller.user.id, s.id, now).await?;
        w.commit().await?;
    }
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
    if caller.actor.impersonator.is_some() {
        return Err(ApiError::Forbidden("a password cannot be changed while impersonating".into()));
    }
    if caller.user.kind != UserKind::User {
        return Err(ApiError::Forbidden("service accounts have no password".into()));
    }
    crate::passwords::check_policy(&body.new_password, caller.user.email.as_deref())?;
    let key = format!("password:{}", caller.user.id);
    caller.state().limits().backoff.check(&key)?;
    let permit = caller.self_permit();
    let stored = caller.state().read(&permit).await?.password_hash(caller.user.id).await?;
    if stored.is_some() {
        let current = body.current_password.unwrap_or_default();
        if !crate::passwords::verify(current, stored).await? {
            caller.state().limits().backoff.failed(&key);
            return Err(ApiError::Forbidden("the current password is wrong".into()));
        }
    }
    let hash = crate::passwords::hash(body.new_password).await?;
    let mut w = caller.state().write(&permit).await?;
    w.tx().set_password_hash(caller.user.id, Some(&hash)).await?;
    let keep = match &caller.credential {
        Credential::Session(s) => Some(s.id),
        Credential::Key(_) => None,
    };
    let now = w.now();
    let revoked = w.tx().revoke_user_sessions(caller.user.id, keep, now).await?;
    for org in caller.orgs.clone() {
        w.audit(AuditEvent::<(), _> {
            org,
            event_type: "user.password_changed",
            resource_type: "user",
            resource_id: Some(caller.user.id.0),
            resource_name: caller.user.email.as_deref(),
            before: None,
            after: Some(&serde_json::json!({"other_sessions_revoked": revoked})),
        })
        .await?;
    }
    let rev = w.commit().await?;
    Ok(Written::at(rev, serde_json::json!({"status": "changed", "other_sessions_revoked": revoked})))
}

/// One's live sessions.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "Auth", responses((status = 200, body = ListResponse<Session>)))]
pub async fn sessions(caller: Caller) -> ApiResult<Json<ListResponse<Session>>> {
    let current = match &caller.credential {
        Credential::Session(s) => Some(s.id),
        Credential::Key(_) => None,
    };
    let mut tx = caller.state().read(&caller.self_permit()).await?;
    let rows = tx.list_sessions(caller.user.id, caller.state().now()).await?;
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
    let mut w = caller.state().write(&caller.self_permit()).await?;
    let now = w.now();
    if !w.tx().revoke_session(caller.user.id, id, now).await? {
        return Err(ApiError::not_found("session", id));
    }
    let rev = w.commit().await?;
    Ok(Written::at(rev, serde_json::json!({"status": "revoked", "id": id})))
}
