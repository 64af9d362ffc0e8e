//! One's own account: signing in with a password, signing out, changing the
//! password, one's sessions, and redeeming a single-use secret (an invitation).
//!
//! These act on the strength of a credential rather than an authorization
//! decision, so their permits are minted here, next to the check that earns them,
//! and never by handler code.

use super::{AppState, AuditEvent, Caller, Credential, Permit};
use crate::error::{ApiError, ApiResult};
use castellan_core::Email;
use castellan_store::{InvitationRecord, Revision, SessionRecord, UserKind, UserRecord};
use uuid::Uuid;

/// A new session, with its secrets (raw; they go into cookies and are never shown
/// again).
pub struct SignedIn {
    /// Who signed in.
    pub user: UserRecord,
    /// The session.
    pub session: SessionRecord,
    /// The session token.
    pub token: String,
    /// The CSRF token.
    pub csrf: String,
}

impl AppState {
    /// Checks an email and password and, when they match a person's account, opens
    /// a session for it. `None` when they do not (an unknown email costs the same
    /// time as a wrong password).
    pub async fn sign_in(
        &self,
        email: &Email,
        password: String,
        break_glass: bool,
        user_agent: Option<String>,
        ip: Option<String>,
    ) -> ApiResult<Option<SignedIn>> {
        let probe = Permit::by_token(None);
        let (user, stored) = {
            let mut tx = self.read(&probe).await?;
            match tx.find_user_by_email(email.as_str()).await?.filter(|u| u.kind == UserKind::User) {
                Some(u) => {
                    let h = tx.password_hash(u.id).await?;
                    (Some(u), h)
                }
                None => (None, None),
            }
        };
        let ok = crate::passwords::verify(password, stored).await?;
        let Some(user) = user.filter(|_| ok) else { return Ok(None) };
        // SSO enforcement, checked only once the password is right (so it tells a
        // guesser nothing): refused, unless an owner of every enforcing org breaks
        // the glass, which each of them audits.
        let mut via = "password";
        if let Some(e) = self.sso_enforced_for(&user).await? {
            if !(break_glass && e.may_break_glass) {
                let hint = if e.may_break_glass {
                    " (as an owner you may also sign in with your password as a break-glass sign-in, which is audited)"
                } else {
                    ""
                };
                return Err(ApiError::SsoRequired(format!("{}{hint}", e.message)));
            }
            self.sso_break_glass(&user, &e.orgs, ip.as_deref()).await?;
            via = "break_glass";
        }
        let token = crate::keys::mint("cs-");
        let csrf = crate::keys::mint("csrf-");
        let now = self.now();
        let ttl = self.config().session_ttl.as_micros() as i64;
        let session = SessionRecord {
            id: Uuid::now_v7(),
            user_id: user.id,
            created: now,
            last_seen: now,
            expires_at: now + ttl,
            user_agent,
            ip,
            via: Some(via.into()),
        };
        let mut w = self.write(&Permit::by_token(Some(user.id))).await?;
        w.create_session(&session, &token.hash, &csrf.hash).await?;
        w.commit().await?;
        Ok(Some(SignedIn { user, session, token: token.raw, csrf: csrf.raw }))
    }

    /// Finds the pending invitation a token opens. It must exist, be unused and
    /// unexpired; the permit it earns lets the redeemer open the write that accepts
    /// it (which must look the invitation up again under the write lock).
    pub async fn redeem_invitation(&self, token: &str) -> ApiResult<(InvitationRecord, Permit)> {
        let invalid = || ApiError::NotFound("no pending invitation has this token (it may be used or expired)".into());
        let hash = crate::keys::hash(token.trim());
        let probe = Permit::by_token(None);
        let inv = {
            let mut tx = self.read(&probe).await?;
            tx.find_invitation(&hash).await?.ok_or_else(invalid)?
        };
        if inv.expires_at <= self.now() {
            return Err(invalid());
        }
        Ok((inv, probe))
    }
}

impl Caller {
    fn self_permit(&self) -> Permit {
        self.permit(None, super::Target::SelfAccount)
    }

    /// Ends the session the caller signed in with (an API key has none to end).
    pub async fn sign_out(&self) -> ApiResult<()> {
        if let Credential::Session(s) = &self.credential {
            let mut w = self.state().write(&self.self_permit()).await?;
            w.end_session(self.user.id, s.id).await?;
            w.commit().await?;
        }
        Ok(())
    }

    /// Sets or changes the caller's password (the current one is required when
    /// there is one) and ends every other session of the account; returns the
    /// revision and how many sessions ended. Wrong current passwords slow down the
    /// next attempt.
    pub async fn change_password(&self, current: Option<String>, new: String) -> ApiResult<(Revision, u64)> {
        if self.actor.impersonator.is_some() {
            return Err(ApiError::Forbidden("a password cannot be changed while impersonating".into()));
        }
        if self.user.kind != UserKind::User {
            return Err(ApiError::Forbidden("service accounts have no password".into()));
        }
        crate::passwords::check_policy(&new, self.user.email.as_deref())?;
        let key = format!("password:{}", self.user.id);
        let limits = self.state().limits();
        limits.backoff.check(&key)?;
        let permit = self.self_permit();
        let stored = self.state().read(&permit).await?.password_hash(self.user.id).await?;
        if stored.is_some() && !crate::passwords::verify(current.unwrap_or_default(), stored).await? {
            limits.backoff.failed(&key);
            return Err(ApiError::Forbidden("the current password is wrong".into()));
        }
        let hash = crate::passwords::hash(new).await?;
        let mut w = self.state().write(&permit).await?;
        let keep = match &self.credential {
            Credential::Session(s) => Some(s.id),
            Credential::Key(_) => None,
        };
        let revoked = w.set_password(self.user.id, &hash, keep).await?;
        for org in self.orgs.clone() {
            w.audit(AuditEvent::<(), _> {
                org,
                event_type: "user.password_changed",
                resource_type: "user",
                resource_id: Some(self.user.id.0),
                resource_name: self.user.email.as_deref(),
                before: None,
                after: Some(&serde_json::json!({"other_sessions_revoked": revoked})),
            })
            .await?;
        }
        Ok((w.commit().await?, revoked))
    }

    /// The caller's live sessions.
    pub async fn sessions(&self) -> ApiResult<Vec<SessionRecord>> {
        let mut tx = self.state().read(&self.self_permit()).await?;
        Ok(tx.list_sessions(self.user.id, self.state().now()).await?)
    }

    /// Ends one of the caller's sessions; "not found" if it is not theirs.
    pub async fn end_session(&self, id: Uuid) -> ApiResult<Revision> {
        let mut w = self.state().write(&self.self_permit()).await?;
        if !w.end_session(self.user.id, id).await? {
            return Err(ApiError::not_found("session", id));
        }
        w.commit().await
    }
}
