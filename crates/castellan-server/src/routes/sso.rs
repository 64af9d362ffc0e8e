//! `/auth/sso/*` (Castellan extension): single sign-on by OpenID Connect,
//! Authorization Code with PKCE (and the client secret when the configuration has
//! one).
//!
//! - `GET /auth/sso/start?org=…` sends the browser to the organization's identity
//!   provider, leaving the state, nonce and PKCE verifier in a short-lived signed
//!   cookie (`castellan_sso`, HttpOnly, `Path=/auth/sso`).
//! - `GET /auth/sso/callback` checks that cookie against the answer (state, RFC 9207
//!   `iss`), exchanges the code, verifies the ID token (signature by the provider's
//!   keys, refetched once for an unknown key; `iss`, `aud`, `exp`, `nonce`), reads
//!   userinfo when claims are missing, and signs the person in (`access::sso`). The
//!   cookie is cleared whatever happens, so a callback cannot be replayed.
//! - A command-line sign-in (`castellan login --sso`) passes `cli_port`,
//!   `cli_challenge` and `cli_state` to start; the callback then hands a one-time code
//!   to its loopback listener, which `POST /auth/sso/cli/token` exchanges (with the
//!   verifier) for an API key bound to the organization (RFC 8252).
//!
//! A failure answers `sso_failed` (401) saying which step failed; a browser gets the
//! sign-in page with that message. An unknown organization and one without single
//! sign-on answer alike.

use crate::access::auth::cookie;
use crate::access::{AppState, SsoOutcome};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Query};
use crate::oidc::{self, CliFlow, Flow};
use crate::routes::auth::{cookie_header, ClientFacts};
use crate::sso::{self, Settings};
use axum::extract::State;
use axum::http::header::{ACCEPT, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use castellan_api_types::format_time;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// The flow cookie's name.
pub const FLOW_COOKIE: &str = "castellan_sso";

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(start)).routes(routes!(callback)).routes(routes!(cli_token))
}

/// Where a sign-in starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartParams {
    /// The organization's name.
    #[serde(default)]
    org: String,
    /// Which of its SSO configurations (by name); default: its oldest.
    #[serde(default)]
    config: Option<String>,
    /// Where to go once signed in: a path on this server (default `/`).
    #[serde(default)]
    return_to: Option<String>,
    /// A command-line sign-in: the port of its loopback listener.
    #[serde(default)]
    cli_port: Option<u16>,
    /// A command-line sign-in: the S256 challenge of its verifier.
    #[serde(default)]
    cli_challenge: Option<String>,
    /// A command-line sign-in: its state, sent back to its listener.
    #[serde(default)]
    cli_state: Option<String>,
}

fn flow_cookie(value: &str, max_age: i64, secure: bool) -> Option<HeaderValue> {
    let mut c = format!("{FLOW_COOKIE}={value}; Path=/auth/sso; SameSite=Lax; HttpOnly; Max-Age={max_age}");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).ok()
}

fn redirect(to: &str) -> ApiResult<Response> {
    let loc =
        HeaderValue::from_str(to).map_err(|_| ApiError::Internal("a redirect target is not a header value".into()))?;
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(LOCATION, loc);
    Ok(r)
}

/// Whether the request comes from a browser page (it answers with the sign-in page).
fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

fn failure(headers: &HeaderMap, org: &str, e: ApiError) -> Response {
    if wants_html(headers) && !matches!(e, ApiError::Internal(_)) {
        let (status, _) = e.status_and_code();
        return crate::console::sso_failure_page(status, org, &e.to_string());
    }
    e.into_response()
}

/// Single sign-on requests per address (each may call the identity provider).
fn limit(state: &AppState, facts: &ClientFacts) -> ApiResult<()> {
    state.limits().sso_by_ip.check(&format!("sso-ip:{}", facts.ip.as_deref().unwrap_or("?")))
}

fn no_sso(org: &str) -> ApiError {
    ApiError::NotFound(format!("organization `{org}` does not exist or has no single sign-on"))
}

/// Starts a single sign-on: sends the browser to the organization's identity
/// provider.
#[utoipa::path(get, path = "/auth/sso/start", tag = "Auth", params(StartParams), security(()),
    responses((status = 303, description = "to the identity provider")))]
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    facts: ClientFacts,
    Query(p): Query<StartParams>,
) -> Response {
    let org = p.org.trim().to_owned();
    if let Err(e) = limit(&state, &facts) {
        return failure(&headers, &org, e);
    }
    match start_flow(&state, &facts, &p, &org).await {
        Ok(r) => r,
        Err(e) => failure(&headers, &org, e),
    }
}

async fn start_flow(state: &AppState, facts: &ClientFacts, p: &StartParams, org: &str) -> ApiResult<Response> {
    if org.is_empty() {
        return Err(ApiError::invalid_parameter("`org` names the organization to sign in to"));
    }
    let cli = match (p.cli_port, &p.cli_challenge, &p.cli_state) {
        (None, None, None) => None,
        (Some(port), Some(challenge), Some(cs)) => {
            if port < 1024 {
                return Err(ApiError::invalid_parameter("`cli_port` must be 1024 to 65535"));
            }
            if !oidc::is_pkce_value(challenge) || !oidc::is_pkce_value(cs) {
                return Err(ApiError::invalid_parameter(
                    "`cli_challenge` and `cli_state` must be 43 to 128 URL-safe characters",
                ));
            }
            Some(CliFlow { port, challenge: challenge.clone(), state: cs.clone() })
        }
        _ => {
            return Err(ApiError::invalid_parameter(
                "a command-line sign-in sends `cli_port`, `cli_challenge` and `cli_state` together",
            ))
        }
    };
    let (_, configs) = state.sso_configs_of(org).await?.ok_or_else(|| no_sso(org))?;
    let record = match &p.config {
        Some(name) => configs.iter().find(|a| a.name == *name).ok_or_else(|| no_sso(org))?,
        None => configs.first().ok_or_else(|| no_sso(org))?,
    };
    let s = Settings::from_record(state, record)?;
    let meta = state.sso_providers().get(state, &s.issuer).await?;
    let flow = Flow {
        config: s.id,
        state: oidc::random_token(),
        nonce: oidc::random_token(),
        verifier: oidc::random_token(),
        return_to: oidc::safe_return_to(p.return_to.as_deref()),
        expires: state.now() / 1_000_000 + oidc::FLOW_TTL_SECS,
        cli,
    };
    let mut url = reqwest::Url::parse(&meta.discovery.authorization_endpoint)
        .map_err(|e| ApiError::SsoFailed(format!("the provider's authorization endpoint is not a URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &s.client_id)
        .append_pair("redirect_uri", &sso::redirect_uri(state))
        .append_pair("scope", &s.scopes.join(" "))
        .append_pair("state", &flow.state)
        .append_pair("nonce", &flow.nonce)
        .append_pair("code_challenge", &oidc::s256(&flow.verifier))
        .append_pair("code_challenge_method", "S256");
    let mut r = redirect(url.as_str())?;
    if let Some(c) = flow_cookie(&flow.seal(&state.sso_flow_key()), oidc::FLOW_TTL_SECS, facts.secure) {
        r.headers_mut().append(SET_COOKIE, c);
    }
    Ok(r)
}

/// The provider's answer.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    /// The authorization code.
    #[serde(default)]
    code: Option<String>,
    /// The state sent at the start.
    #[serde(default)]
    state: Option<String>,
    /// RFC 9207: the issuer that answered.
    #[serde(default)]
    iss: Option<String>,
    /// The provider's error, if it refused.
    #[serde(default)]
    error: Option<String>,
    /// Its description.
    #[serde(default)]
    error_description: Option<String>,
}

/// Completes a single sign-on: checks the answer against the flow cookie, exchanges
/// the code, verifies the ID token and signs the person in (a session, or a
/// command-line code handed to its loopback listener).
#[utoipa::path(get, path = "/auth/sso/callback", tag = "Auth", params(CallbackParams), security(()),
    responses((status = 303, description = "signed in: to `return_to` (or the command line's listener)"),
        (status = 401, description = "`sso_failed`: which step failed")))]
pub async fn callback(
    State(state): State<AppState>,
    parts: Parts,
    facts: ClientFacts,
    Query(q): Query<CallbackParams>,
) -> Response {
    let flow = cookie(&parts, FLOW_COOKIE).map(str::to_owned);
    let (org, result) = match limit(&state, &facts) {
        Ok(()) => finish(&state, &facts, flow.as_deref(), &q).await,
        Err(e) => (String::new(), Err(e)),
    };
    let mut r = match result {
        Ok(r) => r,
        Err(e) => failure(&parts.headers, &org, e),
    };
    // Spent, whatever happened: a second callback with it fails.
    if let Some(c) = flow_cookie("", 0, facts.secure) {
        r.headers_mut().append(SET_COOKIE, c);
    }
    r
}

async fn finish(
    state: &AppState,
    facts: &ClientFacts,
    flow: Option<&str>,
    q: &CallbackParams,
) -> (String, ApiResult<Response>) {
    let now = state.now() / 1_000_000;
    let flow = match flow.map(|v| Flow::open(v, &state.sso_flow_key(), now)) {
        Some(Ok(f)) => f,
        Some(Err(e)) => return (String::new(), Err(ApiError::SsoFailed(e.to_string()))),
        None => return (String::new(), Err(ApiError::SsoFailed(oidc::FlowError::Invalid.to_string()))),
    };
    let record = match state.sso_config(flow.config).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return (String::new(), Err(ApiError::SsoFailed("this single sign-on configuration was deleted".into())))
        }
        Err(e) => return (String::new(), Err(e)),
    };
    let org = state.org_name(record.org_id).await.unwrap_or_default();
    let result = async {
        let s = Settings::from_record(state, &record)?;
        complete(state, facts, &s, &flow, q).await
    }
    .await;
    (org, result)
}

async fn complete(
    state: &AppState,
    facts: &ClientFacts,
    s: &Settings,
    flow: &Flow,
    q: &CallbackParams,
) -> ApiResult<Response> {
    let sent_state = q.state.as_deref().unwrap_or("");
    if !constant_time_eq(sent_state.as_bytes(), flow.state.as_bytes()) {
        return Err(ApiError::SsoFailed(
            "the answer's `state` is not this sign-in's (it was started elsewhere or replayed); start the sign-in again"
                .into(),
        ));
    }
    if let Some(err) = &q.error {
        let desc = q.error_description.as_deref().map(sso::printable).unwrap_or_default();
        return Err(ApiError::SsoFailed(format!(
            "the identity provider refused the sign-in: {}{}{desc}",
            sso::printable(err),
            if desc.is_empty() { "" } else { ": " }
        )));
    }
    let providers = state.sso_providers();
    let meta = providers.get(state, &s.issuer).await?;
    match q.iss.as_deref().map(|i| i.trim_end_matches('/')) {
        Some(i) if i != s.issuer => {
            return Err(ApiError::SsoFailed(format!(
                "the answer comes from the issuer `{}`, not `{}` (a mix-up); the sign-in was refused",
                sso::printable(i),
                s.issuer
            )))
        }
        None if meta.discovery.authorization_response_iss_parameter_supported => {
            return Err(ApiError::SsoFailed(
                "the answer lacks the `iss` parameter its provider promises (RFC 9207); the sign-in was refused".into(),
            ))
        }
        _ => {}
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or_else(|| ApiError::SsoFailed("the answer carries no authorization code".into()))?;
    let (id_token, access_token) = sso::exchange(state, s, &meta, code, &flow.verifier).await?;
    let claims = sso::verify(state, providers, s, meta.clone(), &id_token, &flow.nonce).await?;
    let meta = providers.get(state, &s.issuer).await?;
    let person = sso::person(state, s, &meta, &claims, access_token.as_deref()).await?;
    let client = (facts.user_agent.clone(), facts.ip.clone());
    match state.sso_sign_in(s, &person, client, flow.cli.as_ref().map(|c| c.challenge.as_str())).await? {
        SsoOutcome::Session(signed) => {
            let mut r = redirect(&flow.return_to)?;
            let max_age = state.config().session_ttl.as_secs() as i64;
            for c in [
                cookie_header(crate::access::auth::SESSION_COOKIE, &signed.token, max_age, true, facts.secure),
                cookie_header(crate::access::auth::CSRF_COOKIE, &signed.csrf, max_age, false, facts.secure),
            ]
            .into_iter()
            .flatten()
            {
                r.headers_mut().append(SET_COOKIE, c);
            }
            Ok(r)
        }
        SsoOutcome::CliCode(code) => {
            let cli = flow.cli.as_ref().ok_or_else(|| ApiError::Internal("a CLI code without a CLI flow".into()))?;
            let mut to = reqwest::Url::parse(&format!("http://127.0.0.1:{}/callback", cli.port))
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            to.query_pairs_mut().append_pair("code", &code).append_pair("state", &cli.state);
            redirect(to.as_str())
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A command-line sign-in's code and verifier.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CliTokenRequest {
    /// The one-time code its loopback listener received.
    pub code: String,
    /// The PKCE verifier whose challenge started the sign-in.
    pub verifier: String,
}

/// The API key a command-line sign-in ends with (shown once).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CliTokenResponse {
    /// The key (raw; shown once).
    pub api_key: String,
    /// Its id.
    pub key_id: uuid::Uuid,
    /// The organization it is bound to.
    pub org_id: uuid::Uuid,
    /// Its name.
    pub org_name: String,
    /// When it stops working (RFC 3339).
    pub expires_at: Option<String>,
}

/// Exchanges a command-line sign-in's one-time code (once, within two minutes, with
/// its verifier) for an API key bound to the organization.
#[utoipa::path(post, path = "/auth/sso/cli/token", tag = "Auth", request_body = CliTokenRequest, security(()),
    responses((status = 200, body = CliTokenResponse), (status = 401, description = "`sso_failed`")))]
pub async fn cli_token(
    State(state): State<AppState>,
    facts: ClientFacts,
    Body(b): Body<CliTokenRequest>,
) -> ApiResult<Json<CliTokenResponse>> {
    limit(&state, &facts)?;
    if b.code.len() > 256 || !oidc::is_pkce_value(&b.verifier) {
        return Err(ApiError::invalid_body("`code` must be at most 256 characters and `verifier` a PKCE verifier"));
    }
    let (key, raw, org) = state.sso_cli_exchange(&b.code, &b.verifier).await?;
    Ok(Json(CliTokenResponse {
        api_key: raw,
        key_id: key.id.0,
        org_id: org.id.0,
        org_name: org.name,
        expires_at: key.expires_at.map(format_time),
    }))
}
