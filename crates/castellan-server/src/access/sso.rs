//! What a single sign-on writes: the identity linked (by issuer and subject, never
//! by email alone), the account and membership made just in time, the provider's
//! groups mapped onto the groups single sign-on manages, and the session (or, for
//! the command line, a one-time code exchanged for an API key). All in one
//! transaction, audited with the identity provider as actor. Also the SSO
//! enforcement on password sign-in and on key creation by password sessions.
//!
//! A sign-in acts on the strength of an ID token the flow verified, so its permit
//! is minted here, as a password sign-in's is in `account`.

use super::{Actor, AppState, AuditEvent, Caller, Credential, Permit, SignedIn, Target, Write};
use crate::error::{ApiError, ApiResult};
use crate::sso::{Person, Settings};
use castellan_core::{Email, GroupId, KeyId, OrgId, UserId};
use castellan_store::{
    AdminFilter, AdminKind, AdminRecord, IdentityRecord, KeyKind, KeyRecord, NewKey, OrgRecord, SessionRecord,
    SsoGrant, UserKind, UserRecord, Window,
};
use serde_json::json;
use uuid::Uuid;

/// How long a command-line sign-in's one-time code may wait to be exchanged.
const GRANT_TTL_MICROS: i64 = 120 * 1_000_000;

/// Where a sign-in ends.
pub enum SsoOutcome {
    /// A browser session.
    Session(Box<SignedIn>),
    /// A command-line sign-in: the one-time code to hand to its loopback listener.
    CliCode(String),
}

/// Why a password sign-in is refused by SSO enforcement, and whether the account
/// may break the glass (it owns every organization that enforces it).
pub struct Enforced {
    /// The refusal, pointing to the SSO button.
    pub message: String,
    /// The organizations enforcing it.
    pub orgs: Vec<OrgId>,
    /// Whether the account owns all of them.
    pub may_break_glass: bool,
}

fn all() -> Window {
    Window { from: None, direction: castellan_store::page::Direction::Older, limit: 10_000 }
}

fn failed(why: impl Into<String>) -> ApiError {
    ApiError::SsoFailed(why.into())
}

impl AppState {
    fn sso_permit(org: Option<OrgId>) -> Permit {
        Permit {
            actor: Actor::SYSTEM,
            permission: None,
            target: match org {
                Some(o) => Target::Sso(o),
                None => Target::Token,
            },
            bound_org: org,
            batch: None,
        }
    }

    /// The key that signs sign-in flow cookies (the same on every replica).
    pub fn sso_flow_key(&self) -> Vec<u8> {
        self.0.signer.derive("sso-flow-cookie")
    }

    /// The provider metadata cache.
    pub fn sso_providers(&self) -> &crate::sso::Providers {
        &self.0.sso
    }

    /// An organization by name and its SSO configurations, oldest first. The sign-in
    /// page needs them before anyone is signed in; `None` when the org does not exist
    /// or has none (the caller answers both alike).
    pub async fn sso_configs_of(&self, org_name: &str) -> ApiResult<Option<(OrgRecord, Vec<AdminRecord>)>> {
        let mut tx = self.read(&Self::sso_permit(None)).await?;
        let Some(org) = tx.find_org_by_name(org_name).await? else { return Ok(None) };
        let f = AdminFilter {
            kind: AdminKind::SsoConfig,
            orgs: vec![org.id],
            scope_type: None,
            scope_id: None,
            ids: vec![],
            name: None,
        };
        let mut configs = tx.list_admin(&f, &all()).await?;
        if configs.is_empty() {
            return Ok(None);
        }
        configs.sort_by_key(|a| (a.created, a.id));
        Ok(Some((org, configs)))
    }

    /// One SSO configuration by id (the callback reads the one its flow started with).
    pub async fn sso_config(&self, id: Uuid) -> ApiResult<Option<AdminRecord>> {
        let mut tx = self.read(&Self::sso_permit(None)).await?;
        Ok(tx.get_admin(id).await?.filter(|a| a.kind == AdminKind::SsoConfig))
    }

    /// Whether anyone has signed in through SSO configuration `id` (enforcement may
    /// only be turned on for a configuration shown to work).
    pub async fn sso_config_proven(&self, id: Uuid) -> ApiResult<bool> {
        let mut tx = self.read(&Self::sso_permit(None)).await?;
        Ok(tx.config_has_identities(id).await?)
    }

    /// Signs `person` in through `s` (the flow verified their ID token): links or
    /// finds the account, provisions it just in time, maps groups, and opens a
    /// session (or a command-line code). Nothing is written when it is refused.
    pub async fn sso_sign_in(
        &self,
        s: &Settings,
        person: &Person,
        client: (Option<String>, Option<String>),
        cli_challenge: Option<&str>,
    ) -> ApiResult<SsoOutcome> {
        // A removal that would lock the org out is skipped, not fatal: the person
        // still signs in, and the group keeps them (the audit record says so).
        match self.sso_write(s, person, client.clone(), cli_challenge, true).await {
            Err(ApiError::BadRequest { code: crate::error::ErrorCode::Lockout, .. }) => {
                self.sso_write(s, person, client, cli_challenge, false).await
            }
            other => other,
        }
    }

    async fn sso_write(
        &self,
        s: &Settings,
        person: &Person,
        (user_agent, ip): (Option<String>, Option<String>),
        cli_challenge: Option<&str>,
        removals: bool,
    ) -> ApiResult<SsoOutcome> {
        let org = s.org;
        let email = person
            .email
            .as_deref()
            .ok_or_else(|| failed("the identity provider sent no email address for this account"))?;
        let email = Email::parse(email)
            .map_err(|_| failed(format!("the identity provider sent `{email}`, which is not an email address")))?;
        let domain = email.as_str().rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if !s.allowed_email_domains.is_empty() && !s.covers(email.as_str()) {
            return Err(failed(format!(
                "accounts of the domain `{domain}` may not sign in to this organization by single sign-on"
            )));
        }
        if s.require_email_verified && !person.email_verified {
            return Err(failed(format!(
                "the identity provider has not verified `{email}`; verify it there, then sign in again"
            )));
        }
        let mut w = self.write(&Self::sso_permit(Some(org))).await?;
        w.audit_details(json!({
            "actor_type": "identity_provider",
            "issuer": s.issuer,
            "subject": person.subject,
            "sso_config_id": s.id,
            "sso_config_name": s.name,
        }));
        let user = self.sso_account(&mut w, s, person, &email).await?;
        let index = self.index().clone();
        if !index.member_orgs(user.id.0).contains(&org) {
            if !s.jit {
                return Err(failed(format!(
                    "`{email}` is not a member of this organization; ask an owner to invite you (just-in-time \
                     provisioning is off)"
                )));
            }
            w.add_member(org, user.id, user.email.as_deref(), &crate::dto::user(&user)).await?;
            if let Some(g) = &s.default_group {
                match w.tx().find_group_by_name(org, g).await? {
                    Some(g) => {
                        if w.add_group_user(g.id, user.id).await? {
                            audit_membership(&mut w, org, &g, &user, "group.member_added", None).await?;
                        }
                    }
                    None => tracing::warn!(sso_config = %s.id, group = %g, "the SSO default group does not exist"),
                }
            }
        } else if index.is_suspended(org, user.id.0) {
            return Err(failed("your membership of this organization is suspended; ask an owner"));
        }
        map_groups(&mut w, s, person, &user, removals).await?;
        let now = w.now();
        let outcome = match cli_challenge {
            Some(challenge) => {
                let code = crate::oidc::random_token();
                let grant = SsoGrant {
                    code_hash: crate::keys::hash(&code),
                    user_id: user.id,
                    org_id: org,
                    config_id: s.id,
                    challenge: challenge.to_owned(),
                    expires_at: now + GRANT_TTL_MICROS,
                };
                w.tx().insert_sso_grant(&grant, now).await?;
                SsoOutcome::CliCode(code)
            }
            None => {
                let token = crate::keys::mint("cs-");
                let csrf = crate::keys::mint("csrf-");
                let session = SessionRecord {
                    id: Uuid::now_v7(),
                    user_id: user.id,
                    created: now,
                    last_seen: now,
                    expires_at: now + self.config().session_ttl.as_micros() as i64,
                    user_agent,
                    ip,
                    via: Some(format!("sso:{}", s.id)),
                };
                w.create_session(&session, &token.hash, &csrf.hash).await?;
                SsoOutcome::Session(Box::new(SignedIn { user, session, token: token.raw, csrf: csrf.raw }))
            }
        };
        w.commit().await?;
        Ok(outcome)
    }

    /// The account `(issuer, subject)` is linked to; else the account of this email,
    /// linked now (only with a verified email, and only if it has no identity at this
    /// issuer yet); else a new account (just-in-time provisioning).
    async fn sso_account(&self, w: &mut Write, s: &Settings, person: &Person, email: &Email) -> ApiResult<UserRecord> {
        let now = w.now();
        if let Some(found) = w.tx().find_identity(&s.issuer, &person.subject).await? {
            let user = w
                .tx()
                .get_user(found.user_id)
                .await?
                .filter(|u| u.kind == UserKind::User)
                .ok_or_else(|| failed("the account linked to this identity no longer exists; ask an owner"))?;
            w.tx().set_identity_login(&s.issuer, &person.subject, Some(email.as_str()), now).await?;
            return Ok(user);
        }
        let user = match w.tx().find_user_by_email(email.as_str()).await? {
            Some(u) if u.kind != UserKind::User => {
                return Err(failed(format!("`{email}` names a service account, which cannot sign in")))
            }
            Some(u) => {
                if !person.email_verified {
                    return Err(failed(format!(
                        "an account with the email `{email}` exists; it is linked to a single sign-on identity only \
                         when the identity provider has verified that email"
                    )));
                }
                if w.tx().has_identity_at(u.id, &s.issuer).await? {
                    return Err(failed(format!(
                        "the account `{email}` is already linked to another identity at this identity provider"
                    )));
                }
                u
            }
            None => {
                if !s.jit {
                    return Err(failed(format!(
                        "there is no account for `{email}`; ask an owner to invite you (just-in-time provisioning is \
                         off)"
                    )));
                }
                let u = UserRecord {
                    id: UserId::generate(),
                    kind: UserKind::User,
                    email: Some(email.as_str().to_owned()),
                    given_name: person.given_name.clone(),
                    family_name: person.family_name.clone(),
                    avatar_url: None,
                    created: now,
                };
                w.create_user(&u, None).await?;
                u
            }
        };
        let identity = IdentityRecord {
            issuer: s.issuer.clone(),
            subject: person.subject.clone(),
            user_id: user.id,
            org_id: s.org,
            config_id: s.id,
            email: Some(email.as_str().to_owned()),
            created: now,
            last_login: now,
        };
        w.tx().insert_identity(&identity).await?;
        w.audit(AuditEvent::<(), _> {
            org: s.org,
            event_type: "identity.linked",
            resource_type: "user",
            resource_id: Some(user.id.0),
            resource_name: user.email.as_deref(),
            before: None,
            after: Some(&json!({"issuer": s.issuer, "subject": person.subject, "user_id": user.id.0})),
        })
        .await?;
        Ok(user)
    }

    /// Whether SSO enforcement refuses `user`'s password sign-in: an organization they
    /// belong to enforces SSO for their email's domain.
    pub async fn sso_enforced_for(&self, user: &UserRecord) -> ApiResult<Option<Enforced>> {
        let Some(email) = user.email.as_deref() else { return Ok(None) };
        let orgs = self.index().member_orgs(user.id.0);
        if orgs.is_empty() {
            return Ok(None);
        }
        let mut tx = self.read(&Self::sso_permit(None)).await?;
        let f = AdminFilter {
            kind: AdminKind::SsoConfig,
            orgs: orgs.clone(),
            scope_type: None,
            scope_id: None,
            ids: vec![],
            name: None,
        };
        let configs = tx.list_admin(&f, &all()).await?;
        let mut enforcing: Vec<(OrgId, String)> = Vec::new();
        for a in &configs {
            let enforced = a.data.get("enforced").and_then(serde_json::Value::as_bool).unwrap_or(false);
            let covers = a
                .data
                .get("allowed_email_domains")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(serde_json::Value::as_str)
                .any(|d| email.rsplit_once('@').is_some_and(|(_, e)| e.eq_ignore_ascii_case(d)));
            if enforced && covers && !enforcing.iter().any(|(o, _)| *o == a.org_id) {
                let name = tx.get_org(a.org_id).await?.map(|o| o.name).unwrap_or_default();
                enforcing.push((a.org_id, name));
            }
        }
        if enforcing.is_empty() {
            return Ok(None);
        }
        let snap = self.index().snapshot();
        let now = self.now();
        let owns = |o: OrgId| {
            let org_ref = castellan_core::ObjectRef::new(castellan_core::ObjectType::Organization, o.0);
            !self.index().is_suspended(o, user.id.0)
                && castellan_core::Permission::ALL.iter().all(|p| snap.check(user.id.0, *p, org_ref, now))
        };
        let may_break_glass = enforcing.iter().all(|(o, _)| owns(*o));
        let names: Vec<String> = enforcing.iter().map(|(_, n)| format!("`{n}`")).collect();
        Ok(Some(Enforced {
            message: format!(
                "the organization {} requires single sign-on for accounts of your email's domain: use \"Sign in with \
                 SSO\" with that organization's name",
                names.join(", ")
            ),
            orgs: enforcing.into_iter().map(|(o, _)| o).collect(),
            may_break_glass,
        }))
    }

    /// Audits an owner's break-glass password sign-in past SSO enforcement, in each
    /// enforcing organization.
    pub async fn sso_break_glass(&self, user: &UserRecord, orgs: &[OrgId], ip: Option<&str>) -> ApiResult<()> {
        let mut w = self.write(&Permit::by_token(Some(user.id))).await?;
        for o in orgs {
            w.audit(AuditEvent::<(), _> {
                org: *o,
                event_type: "sso.break_glass",
                resource_type: "user",
                resource_id: Some(user.id.0),
                resource_name: user.email.as_deref(),
                before: None,
                after: Some(&json!({"method": "password", "ip": ip})),
            })
            .await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Exchanges a command-line sign-in's one-time code and its PKCE verifier for an
    /// API key bound to the organization. A code works once, for two minutes, and
    /// only with the verifier whose challenge started the sign-in.
    pub async fn sso_cli_exchange(&self, code: &str, verifier: &str) -> ApiResult<(KeyRecord, String, OrgRecord)> {
        let invalid = || failed("the sign-in code is unknown, used or expired; run `castellan login --sso` again");
        let hash = crate::keys::hash(code.trim());
        let mut w = self.write(&Self::sso_permit(None)).await?;
        let grant = w.tx().take_sso_grant(&hash).await?.ok_or_else(invalid)?;
        if grant.expires_at <= w.now() {
            w.commit().await?;
            return Err(invalid());
        }
        if crate::oidc::s256(verifier) != grant.challenge {
            // The code is spent either way: a wrong verifier does not get a second try.
            w.commit().await?;
            return Err(failed("the verifier does not match this sign-in's challenge"));
        }
        let index = self.index().clone();
        if !index.member_orgs(grant.user_id.0).contains(&grant.org_id)
            || index.is_suspended(grant.org_id, grant.user_id.0)
        {
            w.commit().await?;
            return Err(invalid());
        }
        let org = w.tx().get_org(grant.org_id).await?.ok_or_else(invalid)?;
        w.act_as(grant.user_id);
        let minted = crate::keys::mint(crate::keys::API_KEY_PREFIX);
        let now = w.now();
        let record = KeyRecord {
            id: KeyId::generate(),
            kind: KeyKind::ApiKey,
            name: "castellan login --sso".into(),
            preview_name: minted.preview,
            user_id: grant.user_id,
            org_id: Some(grant.org_id),
            created: now,
            last_used: None,
            expires_at: Some(now + self.config().session_ttl.as_micros() as i64),
        };
        w.create_key(&NewKey { record: record.clone(), key_hash: minted.hash }).await?;
        w.commit().await?;
        Ok((record, minted.raw, org))
    }
}

impl Caller {
    /// Refuses minting an API key in `org` from a password session of a member whose
    /// email domain `org` enforces SSO for (an owner's break-glass session may).
    pub async fn check_sso_for_new_key(&self, org: OrgId) -> ApiResult<()> {
        let Credential::Session(s) = &self.credential else { return Ok(()) };
        if s.via.as_deref().is_some_and(|v| v.starts_with("sso:") || v == "break_glass") {
            return Ok(());
        }
        match self.state().sso_enforced_for(&self.user).await? {
            Some(e) if e.orgs.contains(&org) => {
                Err(ApiError::SsoRequired(format!("{}; API keys are created from a single sign-on session", e.message)))
            }
            _ => Ok(()),
        }
    }
}

async fn audit_membership(
    w: &mut Write,
    org: OrgId,
    g: &castellan_store::GroupRecord,
    user: &UserRecord,
    event_type: &str,
    note: Option<&str>,
) -> ApiResult<()> {
    let mut after = json!({"user_id": user.id.0, "email": user.email, "group": g.name});
    if let Some(n) = note {
        after["note"] = json!(n);
    }
    w.audit(AuditEvent::<(), _> {
        org,
        event_type,
        resource_type: "group",
        resource_id: Some(g.id.0),
        resource_name: Some(&g.name),
        before: None,
        after: Some(&after),
    })
    .await
}

/// Applies the provider's groups to the groups the configuration maps to (the ones
/// single sign-on manages; a group SCIM manages is left to SCIM): joins the mapped
/// ones, and leaves the others only where single sign-on made the membership. A provider that sent no groups claim at all
/// changes nothing (a misconfigured claim must not empty every group).
async fn map_groups(w: &mut Write, s: &Settings, person: &Person, user: &UserRecord, removals: bool) -> ApiResult<()> {
    let Some(sent) = &person.groups else { return Ok(()) };
    if s.group_map.is_empty() {
        return Ok(());
    }
    let org = s.org;
    let wanted: Vec<&String> = s.group_map.iter().filter(|(k, _)| sent.contains(k)).map(|(_, v)| v).collect();
    let mut targets: Vec<&String> = s.group_map.values().collect();
    targets.sort();
    targets.dedup();
    let member_of: Vec<GroupId> = w.tx().user_groups(org, user.id).await?;
    let made: Vec<GroupId> = w.tx().sso_groups_of(user.id).await?;
    let now = w.now();
    for name in targets {
        let Some(g) = w.tx().find_group_by_name(org, name).await? else {
            tracing::warn!(sso_config = %s.id, group = %name, "an SSO-mapped group does not exist");
            continue;
        };
        // A group SCIM manages belongs to SCIM: single sign-on leaves it alone.
        let scim_scope = castellan_core::ObjectRef::new(castellan_core::ObjectType::OrgMember, org.0);
        if w.tx().find_admin(AdminKind::ScimGroup, scim_scope, &g.id.0.to_string()).await?.is_some() {
            tracing::warn!(sso_config = %s.id, group = %name, "an SSO-mapped group is managed by SCIM; skipped");
            continue;
        }
        let want = wanted.contains(&name);
        let is_member = member_of.contains(&g.id);
        let by_sso = made.contains(&g.id);
        if want && !is_member {
            w.add_group_user(g.id, user.id).await?;
            w.tx().add_sso_group_member(g.id, user.id, s.id, now).await?;
            audit_membership(w, org, &g, user, "group.member_added", None).await?;
        } else if !want && is_member && by_sso {
            if removals {
                w.remove_group_user(org, g.id, user.id).await?;
                w.tx().remove_sso_group_member(g.id, user.id).await?;
                audit_membership(w, org, &g, user, "group.member_removed", None).await?;
            } else {
                audit_membership(w, org, &g, user, "group.member_kept", Some("removing it would lock the org out"))
                    .await?;
            }
        } else if !want && !is_member && by_sso {
            w.tx().remove_sso_group_member(g.id, user.id).await?;
        }
    }
    Ok(())
}

impl AppState {
    /// An organization's name (for messages), if it exists.
    pub async fn org_name(&self, org: OrgId) -> ApiResult<String> {
        let mut tx = self.read(&Self::sso_permit(None)).await?;
        Ok(tx.get_org(org).await?.map(|o| o.name).unwrap_or_default())
    }
}

impl Caller {
    /// After SSO enforcement was turned on in `org` for `domains`: ends the password
    /// sessions of the org's members whose email is in those domains (their single
    /// sign-on and break-glass sessions stay; so do the caller's own). Audited once,
    /// as `sso.sessions_ended`, with how many; how many.
    pub async fn end_password_sessions(&self, org: OrgId, domains: &[String]) -> ApiResult<u64> {
        let org_ref = castellan_core::ObjectRef::new(castellan_core::ObjectType::Organization, org.0);
        let permit = self.permit(Some(castellan_core::Permission::Update), Target::Object(org_ref));
        let mut w = self.state().write(&permit).await?;
        let now = w.now();
        let mut ended = 0;
        let mut people = 0;
        for m in w.tx().list_members(org).await? {
            if m.user_id == self.user.id {
                continue;
            }
            let Some(u) = w.tx().get_user(m.user_id).await? else { continue };
            let covered = u
                .email
                .as_deref()
                .and_then(|e| e.rsplit_once('@'))
                .is_some_and(|(_, d)| domains.iter().any(|x| x.eq_ignore_ascii_case(d)));
            if covered && u.kind == UserKind::User {
                let n = w.tx().revoke_password_sessions(u.id, now).await?;
                if n > 0 {
                    ended += n;
                    people += 1;
                }
            }
        }
        w.audit(AuditEvent::<(), _> {
            org,
            event_type: "sso.sessions_ended",
            resource_type: "organization",
            resource_id: Some(org.0),
            resource_name: None,
            before: None,
            after: Some(&json!({"password_sessions_ended": ended, "members": people, "domains": domains})),
        })
        .await?;
        w.commit().await?;
        Ok(ended)
    }
}
