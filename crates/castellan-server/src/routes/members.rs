//! `PATCH /v1/organization/members` (invite, create service accounts, remove) and
//! `POST /api/invitation/accept` (Castellan extension).

use super::Written;
use crate::access::{AuditEvent, Caller, Credential, Permit, Write};
use crate::dto;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use castellan_api_types::{
    format_time, AcceptInvitation, AcceptedInvitation, AddedUser, Invitation, InviteServiceAccount,
    PatchOrganizationMembers, PatchOrganizationMembersOutput,
};
use castellan_core::{Email, GroupId, Name, ObjectRef, ObjectType, OrgId, Permission, UserId};
use castellan_store::{InvitationRecord, KeyKind, OrgRecord, UserKind, UserRecord};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// How long an invitation can be accepted.
const INVITATION_LIFETIME_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(patch_members)).routes(routes!(accept))
}

async fn resolve_org(caller: &Caller, body: &PatchOrganizationMembers) -> ApiResult<OrgRecord> {
    match &body.org_id {
        Some(id) => {
            let id = Uuid::parse_str(id)
                .map_err(|_| ApiError::invalid_body(format!("`org_id` must be a UUID, got `{id}`")))?;
            let org = caller.org_by_id(OrgId(id)).await?;
            if let Some(n) = &body.org_name {
                if !n.eq_ignore_ascii_case(&org.name) {
                    return Err(ApiError::bad_request(format!("`org_name` `{n}` does not match `org_id`")));
                }
            }
            Ok(org)
        }
        None => caller.org(body.org_name.as_deref()).await,
    }
}

/// The longest lifetime a first service token may be given: 100 years.
const MAX_TOKEN_SECONDS: i64 = 100 * 365 * 24 * 3600;

/// Each service account's `token_expires_in_seconds`, in microseconds: a whole number
/// of seconds from 1 (up to [`MAX_TOKEN_SECONDS`]), and only with `token_name`, whose
/// token it dates.
fn token_expiries(accounts: &[InviteServiceAccount]) -> ApiResult<Vec<Option<i64>>> {
    let mut out = Vec::with_capacity(accounts.len());
    for (i, a) in accounts.iter().enumerate() {
        let field = format!("`invite_users.service_accounts[{i}].token_expires_in_seconds`");
        out.push(match (a.token_expires_in_seconds, &a.token_name) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ApiError::invalid_body(format!(
                    "{field} sets when the token minted for `token_name` expires; give a `token_name` too"
                )))
            }
            (Some(n), Some(_)) if !(1..=MAX_TOKEN_SECONDS).contains(&n) => {
                return Err(ApiError::invalid_body(format!(
                    "{field} must be a whole number of seconds from 1 to {MAX_TOKEN_SECONDS}, got `{n}`"
                )))
            }
            (Some(n), Some(_)) => Some(n * 1_000_000),
        });
    }
    Ok(out)
}

/// Makes `user` a member of `org` and of `groups`; `true` if they were not a member.
async fn join(w: &mut Write, org: OrgId, user: &UserRecord, groups: &[GroupId]) -> ApiResult<bool> {
    let added = w.add_member(org, user.id, user.email.as_deref(), &dto::user(user)).await?;
    for g in groups {
        if w.tx().get_group(*g).await?.is_some_and(|x| x.org_id == org) {
            w.add_group_user(*g, user.id).await?;
        }
    }
    Ok(added)
}

/// Invites people (existing users join at once; others get an invitation to accept),
/// creates service accounts (owners of the organization, or of the project group named
/// by `project_group_id`; creating one with `token_name` also mints
/// its first token, and needs a console session or an owner's service token, not a
/// user API key) and removes members. Inviting needs
/// `create` on the org's members, removing `delete` on them, and putting invitees in
/// groups `update` on each group. Removing a member drops their group memberships,
/// their grants and their keys in this org at once; the last owner and the last
/// member cannot be removed.
#[utoipa::path(patch, path = "/v1/organization/members", tag = "Organizations", request_body = Option<PatchOrganizationMembers>,
    responses((status = 200, body = PatchOrganizationMembersOutput)))]
pub async fn patch_members(
    caller: Caller,
    Body(body): Body<PatchOrganizationMembers>,
) -> ApiResult<Written<PatchOrganizationMembersOutput>> {
    let org = resolve_org(&caller, &body).await?;
    let members_ref = ObjectRef::new(ObjectType::OrgMember, org.id.0);
    let invite = body.invite_users.clone().unwrap_or_default();
    let remove = body.remove_users.clone().unwrap_or_default();
    let ids = invite.ids.clone().unwrap_or_default();
    let emails = invite.emails.clone().unwrap_or_default();
    let accounts = invite.service_accounts.clone().unwrap_or_default();
    let rm_ids = remove.ids.clone().unwrap_or_default();
    let rm_emails = remove.emails.clone().unwrap_or_default();

    let mut permits: Vec<Permit> = Vec::new();
    if !ids.is_empty() || !emails.is_empty() {
        permits.push(caller.require(Permission::Create, members_ref).await?);
    }
    // A project group the new service accounts get `read` on all projects of. Its
    // owner (every permission on the group, and `create_acls` on its projects) may
    // create service accounts for it without owning the organization.
    let project_group = match invite.project_group_id {
        None => None,
        Some(g) => {
            let group_ref = ObjectRef::new(ObjectType::ProjectGroup, g);
            let projects_ref = ObjectRef::new(ObjectType::ProjectGroupProjects, g);
            let owner_of_group = Permission::ALL.iter().all(|p| caller.can(*p, group_ref))
                && caller.can(Permission::CreateAcls, projects_ref);
            if !caller.can(Permission::Read, group_ref) {
                return Err(ApiError::bad_request(format!("project group `{g}` not found in this organization")));
            }
            Some((g, owner_of_group))
        }
    };
    if !accounts.is_empty() {
        match project_group {
            _ if caller.is_owner(org.id) => permits.push(caller.require(Permission::Create, members_ref).await?),
            Some((g, true)) => permits.push(
                caller.require(Permission::CreateAcls, ObjectRef::new(ObjectType::ProjectGroupProjects, g)).await?,
            ),
            _ => {
                return Err(ApiError::Forbidden(
                    "only owners of the organization, or of the project group named by `project_group_id`, may create \
                     service accounts"
                        .into(),
                ))
            }
        }
    }
    let expiries = token_expiries(&accounts)?;
    if accounts.iter().any(|a| a.token_name.is_some()) {
        // Create-and-mint hands out a credential in the same call, so (as Braintrust
        // has it) a user's API key is not enough: it takes a console session or a
        // service token of an owner. Plain creation, then `POST /v1/service_token`,
        // works with an owner's API key.
        if matches!(&caller.credential, Credential::Key(k) if k.kind == KeyKind::ApiKey) {
            return Err(ApiError::Forbidden(
                "creating a service account with `token_name` mints a service token, which needs a console session or \
                 an owner's service token, not a user API key; create the account without `token_name` and mint its \
                 token with POST /v1/service_token"
                    .into(),
            ));
        }
        permits.push(caller.new_key_permit(org.id)?);
    }
    if !rm_ids.is_empty() || !rm_emails.is_empty() {
        permits.push(caller.require(Permission::Delete, members_ref).await?);
    }
    let emails: Vec<Email> = emails
        .iter()
        .map(|e| Email::parse(e).map_err(|e| ApiError::invalid_body(e.to_string())))
        .collect::<ApiResult<_>>()?;
    let names: Vec<Name> = accounts
        .iter()
        .map(|a| Name::parse("service account name", &a.name).map_err(|e| ApiError::invalid_body(e.to_string())))
        .collect::<ApiResult<_>>()?;

    // Groups for the invitees, each needing `update`.
    let mut group_ids: Vec<GroupId> =
        invite.group_ids.clone().unwrap_or_default().into_iter().chain(invite.group_id).map(GroupId).collect();
    let group_names: Vec<String> =
        invite.group_names.clone().unwrap_or_default().into_iter().chain(invite.group_name.clone()).collect();
    {
        let scope = caller.list_scope(Some(&org.name)).await?;
        let mut tx = caller.state().read_scope(&scope).await?;
        for n in &group_names {
            let g = tx
                .find_group_by_name(org.id, n)
                .await?
                .ok_or_else(|| ApiError::bad_request(format!("group `{n}` not found in this organization")))?;
            group_ids.push(g.id);
        }
    }
    group_ids.sort();
    group_ids.dedup();
    for g in &group_ids {
        let obj = ObjectRef::new(ObjectType::Group, g.0);
        match caller.require(Permission::Update, obj).await {
            Ok(p) => permits.push(p),
            Err(ApiError::NotFound(_)) => {
                return Err(ApiError::bad_request(format!("group `{g}` not found in this organization")))
            }
            Err(e) => return Err(e),
        }
    }
    let Some(first) = permits.first() else {
        return Ok(Written {
            revision: None,
            found_existing: false,
            body: PatchOrganizationMembersOutput {
                status: "success".into(),
                org_id: org.id.to_string(),
                send_email_error: None,
                added_users: Some(vec![]),
                invitations: None,
                removed_users: None,
            },
        });
    };
    let mut w = caller.state().write(first).await?;
    // Under the write lock, the project-group owner's standing again: a grant revoked a
    // moment ago on another replica no longer counts.
    if let Some((g, true)) = project_group.filter(|_| !accounts.is_empty() && !caller.is_owner(org.id)) {
        let group_ref = ObjectRef::new(ObjectType::ProjectGroup, g);
        for p in Permission::ALL {
            caller.require(p, group_ref).await?;
        }
        caller.require(Permission::CreateAcls, ObjectRef::new(ObjectType::ProjectGroupProjects, g)).await?;
    }
    if let Some((g, _)) = project_group {
        let found = w.tx().get_admin(g).await?;
        if !found.is_some_and(|a| a.kind == castellan_store::AdminKind::ProjectGroup && a.org_id == org.id) {
            return Err(ApiError::bad_request(format!("project group `{g}` not found in this organization")));
        }
    }
    for g in &group_ids {
        if w.tx().get_group(*g).await?.is_none_or(|x| x.org_id != org.id) {
            return Err(ApiError::bad_request(format!("group `{g}` not found in this organization")));
        }
    }
    let mut added = Vec::new();
    let mut invitations = Vec::new();

    // Nobody joins without accepting: every invitee gets an invitation, whether or
    // not the address has an account, and the answer has the same shape either way.
    // By id, only people the caller can already see (members of an org where it
    // reads members) may be invited; an id that is already a member of this org is
    // put in the groups at once.
    let seeable: Vec<OrgId> = caller
        .orgs
        .iter()
        .copied()
        .filter(|o| caller.can(Permission::Read, ObjectRef::new(ObjectType::OrgMember, o.0)))
        .collect();
    let mut invitees: Vec<String> = emails.iter().map(|e| e.as_str().to_owned()).collect();
    for id in &ids {
        let not_found = || ApiError::bad_request(format!("user `{id}` not found"));
        let u = w.tx().get_user(UserId(*id)).await?.filter(|u| u.kind == UserKind::User).ok_or_else(not_found)?;
        let their_orgs = w.tx().member_orgs(u.id).await?;
        if !their_orgs.iter().any(|o| seeable.contains(o)) {
            return Err(not_found());
        }
        if their_orgs.contains(&org.id) {
            join(&mut w, org.id, &u, &group_ids).await?;
            added.push(AddedUser { id: u.id.0, email: u.email.clone(), api_key: None, token_name: None });
        } else if let Some(e) = &u.email {
            invitees.push(e.clone());
        }
    }
    for email in &invitees {
        let token = crate::keys::mint("inv-");
        let inv = InvitationRecord {
            id: Uuid::now_v7(),
            org_id: org.id,
            email: email.clone(),
            group_ids: group_ids.clone(),
            invited_by: Some(caller.user.id),
            created: w.now(),
            expires_at: w.now() + INVITATION_LIFETIME_MICROS,
        };
        w.create_invitation(&inv, &token.hash).await?;
        let wire = Invitation {
            id: inv.id,
            email: inv.email.clone(),
            group_ids: inv.group_ids.iter().map(|g| g.0).collect(),
            created: Some(format_time(inv.created)),
            expires_at: Some(format_time(inv.expires_at)),
            token: None,
        };
        w.audit(AuditEvent::<(), _> {
            org: org.id,
            event_type: "invitation.created",
            resource_type: "invitation",
            resource_id: Some(inv.id),
            resource_name: Some(&inv.email),
            before: None,
            after: Some(&wire),
        })
        .await?;
        invitations.push(Invitation { token: Some(token.raw), ..wire });
    }
    for ((a, name), expiry) in accounts.iter().zip(&names).zip(&expiries) {
        let id = UserId::generate();
        let u = UserRecord {
            id,
            kind: UserKind::ServiceAccount,
            email: Some(format!("{}@service-accounts.castellan.invalid", id.0.simple())),
            given_name: Some(name.as_str().to_owned()),
            family_name: None,
            avatar_url: None,
            created: w.now(),
        };
        w.create_user(&u, None).await?;
        join(&mut w, org.id, &u, &group_ids).await?;
        if let Some((g, _)) = project_group {
            let acl = castellan_store::AclRecord {
                id: castellan_core::AclId::generate(),
                org_id: org.id,
                object_type: ObjectType::ProjectGroupProjects,
                object_id: g,
                user_id: Some(u.id),
                group_id: None,
                permission: Some(Permission::Read),
                role_id: None,
                restrict_object_type: None,
                expires_at: None,
                created: w.now(),
            };
            w.grant(&acl).await?;
        }
        let mut out = AddedUser { id: id.0, email: u.email.clone(), api_key: None, token_name: None };
        if let Some(tn) = &a.token_name {
            let tn = Name::parse("token_name", tn).map_err(|e| ApiError::invalid_body(e.to_string()))?;
            let expires_at = expiry.map(|micros| w.now() + micros);
            let (_, raw) =
                crate::seed::mint_key(&mut w, KeyKind::ServiceToken, id, org.id, tn.as_str(), expires_at).await?;
            out.api_key = Some(raw);
            out.token_name = Some(tn.into_inner());
        }
        added.push(out);
    }

    let mut removed = Vec::new();
    let mut targets: Vec<UserRecord> = Vec::new();
    for id in &rm_ids {
        let u = w.tx().get_user(UserId(*id)).await?;
        targets
            .push(u.ok_or_else(|| ApiError::bad_request(format!("user `{id}` is not a member of this organization")))?);
    }
    for e in &rm_emails {
        let u = w.tx().find_user_by_email(&e.to_lowercase()).await?;
        targets
            .push(u.ok_or_else(|| ApiError::bad_request(format!("user `{e}` is not a member of this organization")))?);
    }
    for u in targets {
        if !w.tx().member_orgs(u.id).await?.contains(&org.id) {
            return Err(ApiError::bad_request(format!(
                "user `{}` is not a member of this organization",
                u.email.as_deref().unwrap_or("")
            )));
        }
        for g in w.tx().user_groups(org.id, u.id).await? {
            w.remove_group_user(org.id, g, u.id).await?;
        }
        w.revoke_grants_of(org.id, u.id).await?;
        w.revoke_keys_of(org.id, u.id).await?;
        w.remove_member(org.id, u.id, u.email.as_deref(), &dto::user(&u)).await?;
        removed.push(u.id.0);
    }
    let send_email_error = if invite.send_invite_emails.unwrap_or(false)
        && !(added.is_empty() && invitations.is_empty())
    {
        Some("this server has no mail transport configured; share the invitation tokens with the invitees".to_owned())
    } else {
        None
    };
    let rev = w.commit().await?;
    Ok(Written::at(
        rev,
        PatchOrganizationMembersOutput {
            status: "success".into(),
            org_id: org.id.to_string(),
            send_email_error,
            added_users: Some(added),
            invitations: if invitations.is_empty() { None } else { Some(invitations) },
            removed_users: if removed.is_empty() { None } else { Some(removed) },
        },
    ))
}

/// Castellan extension: accepts an invitation with its token. For an address with
/// no account the token alone creates the account (with the password, if given),
/// joins the organization and its groups, and returns a first API key (shown once).
/// For an address that already has an account the token is not enough: that account
/// must be signed in (session or API key) and the invitation's email must be its
/// own; the answer then carries a key for the joined organization. A token works
/// once, expires, and is void once its organization is deleted or its inviter has
/// left it.
#[utoipa::path(post, path = "/api/invitation/accept", tag = "Organizations", request_body = AcceptInvitation,
    security((), ("bearerAuth" = [])),
    responses((status = 200, body = AcceptedInvitation)))]
pub async fn accept(
    axum::extract::State(state): axum::extract::State<crate::access::AppState>,
    facts: crate::routes::auth::ClientFacts,
    signed_in: crate::access::MaybeCaller,
    Body(body): Body<AcceptInvitation>,
) -> ApiResult<Written<AcceptedInvitation>> {
    let invalid = || ApiError::NotFound("no pending invitation has this token (it may be used or expired)".into());
    state.limits().tokens.check(&format!("accept:{}", facts.ip().unwrap_or("?")))?;
    let hash = crate::keys::hash(body.token.trim());
    let (inv, probe) = state.redeem_invitation(&body.token).await?;
    let signed_in = signed_in.0;
    if let Some(c) = &signed_in {
        if c.actor.impersonator.is_some() {
            return Err(ApiError::Forbidden("an invitation cannot be accepted while impersonating".into()));
        }
        if c.user.email.as_deref() != Some(inv.email.as_str()) {
            return Err(ApiError::Forbidden(
                "this invitation was sent to another email address than the signed-in account's".into(),
            ));
        }
    }
    let given = body
        .given_name
        .as_deref()
        .map(|n| Name::parse("given_name", n))
        .transpose()
        .map_err(|e| ApiError::invalid_body(e.to_string()))?;
    let family = body
        .family_name
        .as_deref()
        .map(|n| Name::parse("family_name", n))
        .transpose()
        .map_err(|e| ApiError::invalid_body(e.to_string()))?;
    if signed_in.is_some() && body.password.is_some() {
        return Err(ApiError::invalid_body(
            "`password` sets the password of a new account; a signed-in account changes its own with /api/auth/password",
        ));
    }
    if let Some(p) = &body.password {
        crate::passwords::check_policy(p, Some(&inv.email))?;
    }
    let password_hash = match body.password {
        Some(p) => Some(crate::passwords::hash(p).await?),
        None => None,
    };
    let mut w = state.write(&probe).await?;
    let inv = w.tx().find_invitation(&hash).await?.ok_or_else(invalid)?;
    // Void once the org is gone or the inviter no longer belongs to it.
    if w.tx().get_org(inv.org_id).await?.is_none() {
        return Err(invalid());
    }
    if let Some(by) = inv.invited_by {
        if !w.tx().member_orgs(by).await?.contains(&inv.org_id) {
            return Err(invalid());
        }
    }
    let user = match (w.tx().find_user_by_email(&inv.email).await?, &signed_in) {
        (Some(u), Some(c)) if u.id == c.user.id => u,
        (Some(_), _) => {
            return Err(ApiError::Unauthorized(
                "this invitation is for an existing account: sign in as that account (session or API key) and accept it again"
                    .into(),
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::Forbidden(
                "this invitation was sent to another email address than the signed-in account's".into(),
            ))
        }
        (None, None) => {
            let u = UserRecord {
                id: UserId::generate(),
                kind: UserKind::User,
                email: Some(inv.email.clone()),
                given_name: given.map(Name::into_inner),
                family_name: family.map(Name::into_inner),
                avatar_url: None,
                created: w.now(),
            };
            w.create_user(&u, password_hash.as_deref()).await?;
            u
        }
    };
    w.act_as(user.id);
    if !w.use_invitation(inv.id).await? {
        return Err(invalid());
    }
    join(&mut w, inv.org_id, &user, &inv.group_ids).await?;
    w.audit(AuditEvent::<(), _> {
        org: inv.org_id,
        event_type: "invitation.accepted",
        resource_type: "invitation",
        resource_id: Some(inv.id),
        resource_name: Some(&inv.email),
        before: None,
        after: Some(&serde_json::json!({"user_id": user.id})),
    })
    .await?;
    let (_, raw) = crate::seed::mint_key(&mut w, KeyKind::ApiKey, user.id, inv.org_id, "first key", None).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, AcceptedInvitation { user: dto::user(&user), org_id: inv.org_id.0, api_key: raw }))
}
