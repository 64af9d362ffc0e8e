//! Authentication: bearer credentials (API keys, service tokens), console session
//! cookies with CSRF protection, and owner impersonation (`x-bt-impersonate-user`).

use super::caller::{Caller, Credential, ORG_HEADER};
use super::{Actor, AppState};
use crate::error::{ApiError, ApiResult};
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::Method;
use castellan_core::{Email, ObjectRef, ObjectType, Permission, UserId};
use castellan_store::{KeyKind, Micros, UserKind, UserRecord};
use std::net::SocketAddr;

/// The session cookie (HttpOnly).
pub const SESSION_COOKIE: &str = "castellan_session";
/// The CSRF cookie (readable by the console's scripts, echoed in [`CSRF_HEADER`]).
pub const CSRF_COOKIE: &str = "castellan_csrf";
/// The header a cookie-authenticated write must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The impersonation header.
pub const IMPERSONATE_HEADER: &str = "x-bt-impersonate-user";
/// A session is dropped after this long without a request.
pub const SESSION_IDLE_MICROS: Micros = 2 * 3600 * 1_000_000;

/// Minimum time between two "last used" writes for one credential.
pub(super) const TOUCH_EVERY_MICROS: Micros = 60 * 1_000_000;

fn bearer(parts: &Parts) -> ApiResult<Option<&str>> {
    let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else { return Ok(None) };
    let value =
        header.to_str().map_err(|_| ApiError::Unauthorized("the authorization header is not valid text".into()))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized("the authorization header must be `Bearer <api key>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized("the authorization header must be `Bearer <api key>`".into()));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::Unauthorized("the bearer credential is empty".into()));
    }
    Ok(Some(token))
}

/// The value of a cookie, if the request carries it.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` hop when the
/// server is configured to trust its proxy.
pub fn client_ip(parts: &Parts, state: &AppState) -> Option<String> {
    if state.config().trust_forwarded_for {
        if let Some(first) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            return Some(first.to_owned());
        }
    }
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string())
}

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &S) -> Result<Self, Self::Rejection> {
        let state = &AppState::from_ref(app);
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let header_org = match parts.headers.get(ORG_HEADER) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| ApiError::bad_request(format!("the `{ORG_HEADER}` header is not valid text")))?
                    .to_owned(),
            ),
        };
        let (user, credential) = match bearer(parts)? {
            Some(token) => by_key(state, token).await?,
            None => match cookie(parts, SESSION_COOKIE) {
                Some(token) => by_session(state, parts, token).await?,
                None => {
                    return Err(ApiError::Unauthorized(
                        "missing credential: send `Authorization: Bearer <api key>`".into(),
                    ))
                }
            },
        };
        // A member suspended by their organization's identity provider (SCIM
        // `active: false`): a key bound to that org, and any console session, stop
        // working at once (every replica applies the suspension as it applies a
        // revocation).
        let suspended = match &credential {
            Credential::Key(k) => k.org_id.is_some_and(|o| state.index().is_suspended(o, user.id.0)),
            Credential::Session(_) => state.index().suspended_anywhere(user.id.0),
        };
        if suspended {
            return Err(ApiError::Unauthorized(
                "this account is suspended in its organization (by its identity provider); ask an owner".into(),
            ));
        }
        let (user, actor) = match parts.headers.get(IMPERSONATE_HEADER) {
            None => {
                let id = user.id;
                (user, Actor { user: Some(id), impersonator: None })
            }
            Some(v) => {
                let target = v.to_str().map_err(|_| {
                    ApiError::bad_request(format!("the `{IMPERSONATE_HEADER}` header is not valid text"))
                })?;
                impersonate(state, &user, target).await?
            }
        };
        // Memberships come from the index (kept by the change feed), not a query.
        let bound_org = match &credential {
            Credential::Key(k) => k.org_id,
            Credential::Session(_) => None,
        };
        let mut orgs = state.index().member_orgs(user.id.0);
        let stale = match bound_org {
            Some(b) => !orgs.contains(&b),
            None => orgs.is_empty(),
        };
        if stale {
            // The credential may be newer than this replica's index (made on another
            // replica a moment ago): catch up once before deciding.
            state.index().catch_up().await.map_err(|e| ApiError::Internal(e.to_string()))?;
            orgs = state.index().member_orgs(user.id.0);
        }
        // A key acts only in the org it was made for: every other org is, for this
        // request, one the caller does not belong to.
        if let Some(b) = bound_org {
            orgs.retain(|o| *o == b);
        }
        let caller = Caller {
            state: state.clone(),
            user,
            credential,
            orgs,
            actor,
            ip: client_ip(parts, state),
            header_org,
            bound_org,
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// Without commit announcements (SQLite), another process sharing the database may
/// have revoked a credential or removed a member a moment ago: one look at the
/// revision row says whether to catch up before trusting memory.
async fn catch_up_if_polling(state: &AppState) -> ApiResult<()> {
    if state.0.commits.is_some() {
        return Ok(());
    }
    // The files' stamp moves with every commit; only then is the revision read. The
    // stamp is recorded only after catching up, so a concurrent request that sees it
    // unchanged cannot run ahead of a catch-up still in progress.
    let stamp = state.0.store.change_stamp();
    if stamp.is_some_and(|s| s == state.0.caught_up_stamp.load(std::sync::atomic::Ordering::SeqCst)) {
        return Ok(());
    }
    if state.0.store.current_revision().await? > state.index().revision() {
        state.index().catch_up().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    if let Some(s) = stamp {
        state.0.caught_up_stamp.store(s, std::sync::atomic::Ordering::SeqCst);
    }
    Ok(())
}

async fn by_key(state: &AppState, token: &str) -> ApiResult<(UserRecord, Credential)> {
    let invalid = || ApiError::Unauthorized("invalid credential: the key is unknown, revoked or expired".into());
    let hash = crate::keys::hash(token);
    let index = state.index();
    catch_up_if_polling(state).await?;
    let auth = match index.cached_key(&hash) {
        Some(a) => a,
        None => {
            let epoch = index.key_epoch();
            let found = state.0.store.authenticate(&hash).await?.ok_or_else(invalid)?;
            index.cache_key(&hash, found, epoch)
        }
    };
    let now = state.now();
    if auth.key.expires_at.is_some_and(|t| t <= now) {
        return Err(invalid());
    }
    // Service accounts authenticate only with the service tokens owners manage; an
    // API key of one (minted before this rule) does not authenticate.
    if auth.key.kind == KeyKind::ApiKey && auth.user.kind == UserKind::ServiceAccount {
        return Err(invalid());
    }
    // A SCIM token authorizes only its org's `/scim/v2` endpoints.
    if auth.key.kind == KeyKind::ScimToken {
        return Err(ApiError::Unauthorized("a SCIM token authorizes only the SCIM endpoints under /scim/v2".into()));
    }
    state.0.touches.note(auth.key.id, auth.key.last_used, now);
    Ok((auth.user.clone(), Credential::Key(auth.key.clone())))
}

/// A request to `/scim/v2`, authorized by one of its org's SCIM tokens.
#[derive(Clone)]
pub struct ScimCaller {
    state: AppState,
    /// The token.
    pub token: castellan_store::KeyRecord,
    /// Its organization: the only one the request can see.
    pub org: castellan_core::OrgId,
}

impl ScimCaller {
    /// Authenticates `Authorization: Bearer scim-…`: a live, unexpired SCIM token
    /// whose creator is still an active owner of its org. API keys and service tokens
    /// do not authorize SCIM.
    pub async fn authenticate(state: &AppState, headers: &axum::http::HeaderMap) -> ApiResult<ScimCaller> {
        let invalid = || ApiError::Unauthorized("invalid credential: not a live SCIM token of an organization".into());
        let token = match headers.get(axum::http::header::AUTHORIZATION) {
            None => {
                return Err(ApiError::Unauthorized(
                    "missing credential: send `Authorization: Bearer <SCIM token>`".into(),
                ))
            }
            Some(v) => {
                let v = v.to_str().map_err(|_| invalid())?;
                match v.split_once(' ') {
                    Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                        t.trim().to_owned()
                    }
                    _ => {
                        return Err(ApiError::Unauthorized(
                            "the authorization header must be `Bearer <SCIM token>`".into(),
                        ))
                    }
                }
            }
        };
        let hash = crate::keys::hash(&token);
        let index = state.index();
        catch_up_if_polling(state).await?;
        let auth = match index.cached_key(&hash) {
            Some(a) => a,
            None => {
                let epoch = index.key_epoch();
                let found = state.0.store.authenticate(&hash).await?.ok_or_else(invalid)?;
                index.cache_key(&hash, found, epoch)
            }
        };
        let now = state.now();
        let org = match auth.key.org_id {
            Some(o) if auth.key.kind == KeyKind::ScimToken => o,
            _ => return Err(invalid()),
        };
        if auth.key.expires_at.is_some_and(|t| t <= now) {
            return Err(invalid());
        }
        // The token carries its creator's authority: only while they are an active
        // owner of the org.
        let creator = auth.user.id.0;
        let org_ref = ObjectRef::new(ObjectType::Organization, org.0);
        let snap = index.snapshot();
        let owner = index.member_orgs(creator).contains(&org)
            && !index.is_suspended(org, creator)
            && Permission::ALL.iter().all(|p| snap.check(creator, *p, org_ref, now));
        if !owner {
            return Err(invalid());
        }
        state.0.touches.note(auth.key.id, auth.key.last_used, now);
        Ok(ScimCaller { state: state.clone(), token: auth.key.clone(), org })
    }

    /// The state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The permit for a SCIM request: its token's org, acted on by the token (the
    /// system actor, with the token named in every audit record's details).
    pub fn permit(&self) -> super::Permit {
        super::Permit {
            actor: Actor::SYSTEM,
            permission: None,
            target: super::Target::Scim(self.org),
            bound_org: Some(self.org),
            batch: None,
        }
    }

    /// What every audit record of a SCIM write names as its actor.
    pub fn actor_details(&self) -> serde_json::Value {
        serde_json::json!({
            "actor_type": "scim_token",
            "scim_token_id": self.token.id.0,
            "scim_token_name": self.token.name,
            "scim_token_created_by": self.token.user_id.0,
        })
    }
}

async fn by_session(state: &AppState, parts: &Parts, token: &str) -> ApiResult<(UserRecord, Credential)> {
    let invalid = || ApiError::Unauthorized("your session has ended; sign in again".into());
    catch_up_if_polling(state).await?;
    let auth = state.0.store.authenticate_session(&crate::keys::hash(token)).await?.ok_or_else(invalid)?;
    let now = state.now();
    if auth.session.expires_at <= now || now - auth.session.last_seen > SESSION_IDLE_MICROS {
        return Err(invalid());
    }
    // SameSite=Lax keeps the cookie off cross-site subrequests; a write must also
    // prove it was made by our own pages by echoing the CSRF token.
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if sent.is_empty() || crate::keys::hash(sent) != auth.csrf_hash {
            return Err(ApiError::Csrf);
        }
    }
    if now - auth.session.last_seen >= TOUCH_EVERY_MICROS {
        let store = state.0.store.clone();
        let id = auth.session.id;
        tokio::spawn(async move {
            if let Err(e) = store.touch_session(id, now).await {
                tracing::warn!(error = %e, "could not record session use");
            }
        });
    }
    Ok((auth.user, Credential::Session(auth.session)))
}

/// Lets `real` act as `target` (an id or an email) if `real` owns every organization
/// the target belongs to. Refusals do not say whether the target exists.
async fn impersonate(state: &AppState, real: &UserRecord, target: &str) -> ApiResult<(UserRecord, Actor)> {
    let refused = || ApiError::Forbidden(format!("you may not impersonate `{target}`"));
    let mut tx = state.0.store.read().await?;
    let found = match uuid::Uuid::parse_str(target.trim()) {
        Ok(id) => tx.get_user(UserId(id)).await?,
        Err(_) => match Email::parse(target) {
            Ok(e) => tx.find_user_by_email(e.as_str()).await?,
            Err(_) => {
                return Err(ApiError::bad_request(format!("`{IMPERSONATE_HEADER}` must be a user id or an email")))
            }
        },
    };
    let target_user = found.ok_or_else(refused)?;
    let target_orgs = tx.member_orgs(target_user.id).await?;
    drop(tx);
    if target_orgs.is_empty() {
        return Err(refused());
    }
    let snap = state.index().snapshot();
    let now = state.now();
    let owns_all = target_orgs.iter().all(|o| {
        let obj = ObjectRef::new(ObjectType::Organization, o.0);
        Permission::ALL.iter().all(|p| snap.check(real.id.0, *p, obj, now))
    });
    if !owns_all {
        return Err(refused());
    }
    let actor = Actor { user: Some(target_user.id), impersonator: Some(real.id) };
    Ok((target_user, actor))
}

/// The caller if the request carries a credential (a bearer key or a session
/// cookie), else `None`. A credential that is present but bad is still a 401.
pub struct MaybeCaller(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let has_credential =
            parts.headers.contains_key(axum::http::header::AUTHORIZATION) || cookie(parts, SESSION_COOKIE).is_some();
        if !has_credential {
            return Ok(MaybeCaller(None));
        }
        Ok(MaybeCaller(Some(Caller::from_request_parts(parts, state).await?)))
    }
}
