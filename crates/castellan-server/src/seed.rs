//! What the system creates by itself: the system `Owner` role, and each new
//! organization's built-in groups and grants (DESIGN §2), plus first-run bootstrap.

use crate::access::{AppState, AuditEvent, SystemKey, Write};
use crate::error::{ApiError, ApiResult};
use castellan_authz::seed::{
    org_seed_acls, owner_role_permissions, BuiltinGroups, BUILTIN_GROUP_NAMES, OWNER_ROLE_NAME,
};
use castellan_authz::{Grant, Subject};
use castellan_core::{AclId, Email, GroupId, KeyId, Name, OrgId, RoleId, UserId};
use castellan_store::{
    AclRecord, GroupRecord, KeyKind, KeyRecord, NewKey, OrgRecord, RolePermission, RoleRecord, UserKind, UserRecord,
};

/// The name of the built-in group of owners (it can never be emptied).
pub const OWNERS_GROUP: &str = BUILTIN_GROUP_NAMES[0];

/// The built-in groups every organization starts with (names from
/// `castellan_authz::seed`, the one copy), and what they are for.
pub const BUILTIN_GROUPS: [(&str, &str); 3] = [
    (BUILTIN_GROUP_NAMES[0], "Full access to the organization, its data and its settings"),
    (BUILTIN_GROUP_NAMES[1], "Create, read, update and delete projects and everything in them"),
    (BUILTIN_GROUP_NAMES[2], "Read projects and everything in them"),
];

/// Creates the system roles (`Owner`) if this database does not have them yet.
pub async fn ensure_system_roles(state: &AppState, system: &SystemKey) -> ApiResult<()> {
    let permit = system.permit();
    {
        let mut tx = state.read(&permit).await?;
        if tx.find_role_by_name(None, OWNER_ROLE_NAME).await?.is_some() {
            return Ok(());
        }
    }
    let mut w = state.write(&permit).await?;
    if w.tx().find_role_by_name(None, OWNER_ROLE_NAME).await?.is_some() {
        return Ok(());
    }
    let role = RoleRecord {
        id: RoleId::generate(),
        org_id: None,
        name: OWNER_ROLE_NAME.into(),
        description: Some("Every permission".into()),
        user_id: None,
        created: w.now(),
    };
    match w.create_role(&role).await {
        Ok(()) => {}
        // Another replica seeded it at the same moment.
        Err(ApiError::BadRequest { code: crate::error::ErrorCode::NameTaken, .. }) => return Ok(()),
        Err(e) => return Err(e),
    }
    for (permission, restrict_object_type) in owner_role_permissions() {
        w.add_role_permission(role.id, RolePermission { permission, restrict_object_type }).await?;
    }
    w.commit().await?;
    Ok(())
}

/// Creates an organization with its built-in groups and grants; `creator` becomes
/// its first member and owner. Everything is audited in the new org's chain.
pub async fn create_org(w: &mut Write, name: &Name, creator: UserId) -> ApiResult<OrgRecord> {
    let owner_role = w
        .tx()
        .find_role_by_name(None, OWNER_ROLE_NAME)
        .await?
        .ok_or_else(|| ApiError::Internal("the system Owner role is missing".into()))?;
    let now = w.now();
    let org = OrgRecord {
        id: OrgId::generate(),
        name: name.as_str().to_owned(),
        api_url: None,
        is_universal_api: None,
        is_dataplane_private: None,
        proxy_url: None,
        realtime_url: None,
        image_rendering_mode: None,
        settings: serde_json::json!({}),
        created: now,
    };
    w.create_org(&org).await?;
    w.add_member(org.id, creator, None, &serde_json::json!({"user_id": creator})).await?;

    let mut ids = Vec::new();
    for (gname, desc) in BUILTIN_GROUPS {
        let g = GroupRecord {
            id: GroupId::generate(),
            org_id: org.id,
            name: gname.into(),
            description: Some(desc.into()),
            user_id: None,
            created: now,
        };
        w.create_group(&g).await?;
        audit(w, org.id, "group.created", "group", Some(g.id.0), Some(gname), None, Some(&g)).await?;
        ids.push(g.id);
    }
    let builtin = BuiltinGroups { owners: ids[0].0, engineers: ids[1].0, viewers: ids[2].0 };
    w.add_group_user(ids[0], creator).await?;
    audit(
        w,
        org.id,
        "group.member_added",
        "group",
        Some(ids[0].0),
        Some(OWNERS_GROUP),
        None,
        Some(&serde_json::json!({"user_id": creator})),
    )
    .await?;

    for (subject, grant, object) in org_seed_acls(org.id.0, &builtin, owner_role.id.0) {
        let (user_id, group_id) = match subject {
            Subject::User(u) => (Some(UserId(u)), None),
            Subject::Group(g) => (None, Some(GroupId(g))),
        };
        let (permission, role_id, restrict_object_type) = match grant {
            Grant::Permission { permission, restrict_object_type } => (Some(permission), None, restrict_object_type),
            Grant::Role(r) => (None, Some(RoleId(r)), None),
        };
        let acl = AclRecord {
            id: AclId::generate(),
            org_id: org.id,
            object_type: object.object_type,
            object_id: object.object_id,
            user_id,
            group_id,
            permission,
            role_id,
            restrict_object_type,
            expires_at: None,
            created: now,
        };
        w.grant(&acl).await?;
    }
    Ok(org)
}

#[allow(clippy::too_many_arguments)]
async fn audit<A: serde::Serialize>(
    w: &mut Write,
    org: OrgId,
    event_type: &str,
    resource_type: &str,
    resource_id: Option<uuid::Uuid>,
    resource_name: Option<&str>,
    before: Option<&serde_json::Value>,
    after: Option<&A>,
) -> ApiResult<()> {
    w.audit(AuditEvent { org, event_type, resource_type, resource_id, resource_name, before, after }).await
}

/// Mints a credential of `kind` for `user` in `org`, stores only its hash and audits
/// it; returns the record and the raw secret (to show once).
pub async fn mint_key(
    w: &mut Write,
    kind: KeyKind,
    user: UserId,
    org: OrgId,
    name: &str,
    expires_at: Option<castellan_store::Micros>,
) -> ApiResult<(KeyRecord, String)> {
    let prefix = match kind {
        KeyKind::ApiKey => crate::keys::API_KEY_PREFIX,
        KeyKind::ServiceToken => crate::keys::SERVICE_TOKEN_PREFIX,
        KeyKind::ScimToken => crate::keys::SCIM_TOKEN_PREFIX,
    };
    let minted = crate::keys::mint(prefix);
    let record = KeyRecord {
        id: KeyId::generate(),
        kind,
        name: name.to_owned(),
        preview_name: minted.preview,
        user_id: user,
        org_id: Some(org),
        created: w.now(),
        last_used: None,
        expires_at,
    };
    w.create_key(&NewKey { record: record.clone(), key_hash: minted.hash }).await?;
    Ok((record, minted.raw))
}

/// What `castellan bootstrap` made.
#[derive(Debug, serde::Serialize)]
pub struct Bootstrapped {
    /// The new organization.
    pub org_id: OrgId,
    /// Its name.
    pub org_name: String,
    /// The owner.
    pub user_id: UserId,
    /// The owner's email.
    pub email: String,
    /// The owner's first API key (raw; shown once).
    pub api_key: String,
    /// The revision of the write.
    pub revision: u64,
}

/// Creates an organization, its first owner (reusing an existing user with that
/// email) and the owner's first API key.
pub async fn bootstrap(state: &AppState, system: &SystemKey, org_name: &str, email: &str) -> ApiResult<Bootstrapped> {
    let name = Name::parse("organization name", org_name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let email = Email::parse(email).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut w = state.write(&system.permit()).await?;
    if w.tx().find_org_by_name(name.as_str()).await?.is_some() {
        return Err(ApiError::BadRequest {
            code: crate::error::ErrorCode::NameTaken,
            message: format!("an organization named `{name}` already exists"),
        });
    }
    let user = match w.tx().find_user_by_email(email.as_str()).await? {
        Some(u) => u,
        None => {
            let u = UserRecord {
                id: UserId::generate(),
                kind: UserKind::User,
                email: Some(email.as_str().to_owned()),
                given_name: None,
                family_name: None,
                avatar_url: None,
                created: w.now(),
            };
            w.create_user(&u, None).await?;
            u
        }
    };
    let org = create_org(&mut w, &name, user.id).await?;
    let (_, raw) = mint_key(&mut w, KeyKind::ApiKey, user.id, org.id, "bootstrap", None).await?;
    let revision = w.commit().await?;
    Ok(Bootstrapped {
        org_id: org.id,
        org_name: org.name,
        user_id: user.id,
        email: email.as_str().to_owned(),
        api_key: raw,
        revision,
    })
}
