//! Row mapping, column lists and query-builder helpers.

use crate::backend::{Db, DbRow};
use crate::db_err;
use castellan_core::{KeyId, OrgId, ProjectId, UserId};
use castellan_store::page::{Direction, Window};
use castellan_store::*;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder, Row};
use uuid::Uuid;

pub(crate) const ORG_COLS: &str = "id, name, api_url, is_universal_api, is_dataplane_private, proxy_url, realtime_url, image_rendering_mode, settings, created";
pub(crate) const USER_COLS: &str = "id, kind, email, given_name, family_name, avatar_url, created";
pub(crate) const PROJECT_COLS: &str = "id, org_id, name, description, user_id, settings, created";
pub(crate) const KEY_COLS: &str = "id, kind, name, preview_name, user_id, org_id, created, last_used, expires_at";
pub(crate) const AUDIT_COLS: &str = "org_id, seq, id, revision, created, actor_id, impersonator_id, event_type, resource_type, resource_id, resource_name, before, after, details, prev_hash, hash";

pub(crate) const INVITATION_COLS: &str = "id, org_id, email, group_ids, invited_by, created, expires_at";

pub(crate) const KEY_AUTH_SQL: &str =
    "SELECT k.id, k.kind, k.name, k.preview_name, k.user_id, k.org_id, k.created, k.last_used, k.expires_at, \
     u.kind AS u_kind, u.email AS u_email, u.given_name AS u_given_name, u.family_name AS u_family_name, \
     u.avatar_url AS u_avatar_url, u.created AS u_created \
     FROM api_keys k JOIN users u ON u.id = k.user_id \
     WHERE k.key_hash = $1 AND k.deleted_at IS NULL AND u.deleted_at IS NULL";

fn integrity(what: &str) -> StoreError {
    StoreError::Integrity(format!("unreadable stored {what}"))
}

pub(crate) fn rev_to_i64(r: Revision) -> StoreResult<i64> {
    i64::try_from(r).map_err(|_| StoreError::Integrity("revision out of range".into()))
}

pub(crate) fn i64_to_rev(v: i64) -> StoreResult<Revision> {
    u64::try_from(v).map_err(|_| StoreError::Integrity("negative revision".into()))
}

// Row shapes: `sqlx::FromRow` reads each column by its name; the functions below
// turn a row into its record, validating what the database cannot.

#[derive(sqlx::FromRow)]
struct OrgRow {
    id: Uuid,
    name: String,
    api_url: Option<String>,
    is_universal_api: Option<bool>,
    is_dataplane_private: Option<bool>,
    proxy_url: Option<String>,
    realtime_url: Option<String>,
    image_rendering_mode: Option<String>,
    settings: Option<Json<serde_json::Value>>,
    created: i64,
}

pub(crate) fn org(r: &DbRow) -> StoreResult<OrgRecord> {
    let o = OrgRow::from_row(r).map_err(db_err)?;
    Ok(OrgRecord {
        id: OrgId(o.id),
        name: o.name,
        api_url: o.api_url,
        is_universal_api: o.is_universal_api,
        is_dataplane_private: o.is_dataplane_private,
        proxy_url: o.proxy_url,
        realtime_url: o.realtime_url,
        image_rendering_mode: o.image_rendering_mode,
        settings: o.settings.map(|j| j.0).unwrap_or_else(|| serde_json::json!({})),
        created: o.created,
    })
}

/// A user's columns (`kind, email, …`), or with `u_` in front when joined to a key
/// or a session.
#[derive(sqlx::FromRow)]
struct UserCols {
    kind: String,
    email: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    avatar_url: Option<String>,
    created: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct JoinedUser {
    #[sqlx(rename = "u_kind")]
    kind: String,
    #[sqlx(rename = "u_email")]
    email: Option<String>,
    #[sqlx(rename = "u_given_name")]
    given_name: Option<String>,
    #[sqlx(rename = "u_family_name")]
    family_name: Option<String>,
    #[sqlx(rename = "u_avatar_url")]
    avatar_url: Option<String>,
    #[sqlx(rename = "u_created")]
    created: i64,
}

fn user_record(id: Uuid, u: UserCols) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: UserId(id),
        kind: UserKind::parse(&u.kind).ok_or_else(|| integrity("user kind"))?,
        email: u.email,
        given_name: u.given_name,
        family_name: u.family_name,
        avatar_url: u.avatar_url,
        created: u.created,
    })
}

/// The user joined (with `u_` columns) to a key or session row.
pub(crate) fn joined_user(r: &DbRow, id: Uuid) -> StoreResult<UserRecord> {
    let u = JoinedUser::from_row(r).map_err(db_err)?;
    let cols = UserCols {
        kind: u.kind,
        email: u.email,
        given_name: u.given_name,
        family_name: u.family_name,
        avatar_url: u.avatar_url,
        created: u.created,
    };
    user_record(id, cols)
}

pub(crate) fn user(r: &DbRow) -> StoreResult<UserRecord> {
    let id: Uuid = r.try_get("id").map_err(db_err)?;
    user_record(id, UserCols::from_row(r).map_err(db_err)?)
}

#[derive(sqlx::FromRow)]
struct ProjectRow {
    id: Uuid,
    org_id: Uuid,
    name: String,
    description: Option<String>,
    user_id: Option<Uuid>,
    settings: Option<Json<serde_json::Value>>,
    created: i64,
}

pub(crate) fn project(r: &DbRow) -> StoreResult<ProjectRecord> {
    let p = ProjectRow::from_row(r).map_err(db_err)?;
    Ok(ProjectRecord {
        id: ProjectId(p.id),
        org_id: OrgId(p.org_id),
        name: p.name,
        description: p.description,
        user_id: p.user_id.map(UserId),
        settings: p.settings.map(|j| j.0),
        created: p.created,
    })
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    kind: String,
    name: String,
    preview_name: String,
    user_id: Uuid,
    org_id: Option<Uuid>,
    created: i64,
    last_used: Option<i64>,
    expires_at: Option<i64>,
}

pub(crate) fn key(r: &DbRow) -> StoreResult<KeyRecord> {
    let k = KeyRow::from_row(r).map_err(db_err)?;
    Ok(KeyRecord {
        id: KeyId(k.id),
        kind: KeyKind::parse(&k.kind).ok_or_else(|| integrity("key kind"))?,
        name: k.name,
        preview_name: k.preview_name,
        user_id: UserId(k.user_id),
        org_id: k.org_id.map(OrgId),
        created: k.created,
        last_used: k.last_used,
        expires_at: k.expires_at,
    })
}

pub(crate) fn key_auth(r: &DbRow) -> StoreResult<KeyAuth> {
    let key = key(r)?;
    let user = joined_user(r, key.user_id.0)?;
    Ok(KeyAuth { key, user })
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    seq: i64,
    revision: i64,
    org_id: Uuid,
    created: i64,
    actor_id: Option<Uuid>,
    impersonator_id: Option<Uuid>,
    event_type: String,
    resource_type: String,
    resource_id: Option<Uuid>,
    resource_name: Option<String>,
    before: Option<String>,
    after: Option<String>,
    details: Option<String>,
    prev_hash: String,
    hash: String,
}

pub(crate) fn audit(r: &DbRow) -> StoreResult<audit::AuditRecord> {
    let a = AuditRow::from_row(r).map_err(db_err)?;
    Ok(audit::AuditRecord {
        id: a.id,
        seq: i64_to_rev(a.seq)?,
        revision: i64_to_rev(a.revision)?,
        record: audit::NewAuditRecord {
            org_id: OrgId(a.org_id),
            created: a.created,
            actor_id: a.actor_id.map(UserId),
            impersonator_id: a.impersonator_id.map(UserId),
            event_type: a.event_type,
            resource_type: a.resource_type,
            resource_id: a.resource_id,
            resource_name: a.resource_name,
            before: a.before,
            after: a.after,
            details: a.details,
        },
        prev_hash: a.prev_hash,
        hash: a.hash,
    })
}

/// Appends ` AND id IN (…)` when `ids` is non-empty.
pub(crate) fn push_ids(qb: &mut QueryBuilder<'_, Db>, col: &str, ids: &[Uuid]) {
    if ids.is_empty() {
        return;
    }
    qb.push(format_args!(" AND {col} IN ("));
    let mut sep = qb.separated(", ");
    for id in ids {
        sep.push_bind(*id);
    }
    qb.push(")");
}

/// Appends ` AND col IN (…)` for text values when non-empty.
pub(crate) fn push_texts(qb: &mut QueryBuilder<'_, Db>, col: &str, vals: &[String]) {
    if vals.is_empty() {
        return;
    }
    qb.push(format_args!(" AND {col} IN ("));
    let mut sep = qb.separated(", ");
    for v in vals {
        sep.push_bind(v.clone());
    }
    qb.push(")");
}

/// The `LIKE` pattern of a "contains" search (lowercased, `!` escaping `%`, `_`, `!`).
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Appends ` AND (LOWER(c1) LIKE p OR …)`: any of `exprs` contains `text`.
pub(crate) fn push_contains(qb: &mut QueryBuilder<'_, Db>, exprs: &[&str], text: &str) {
    let p = contains_pattern(text);
    qb.push(" AND (");
    for (i, e) in exprs.iter().enumerate() {
        if i > 0 {
            qb.push(" OR ");
        }
        qb.push(format_args!("LOWER({e}) LIKE "));
        qb.push_bind(p.clone());
        qb.push(" ESCAPE '!'");
    }
    qb.push(")");
}

/// Appends the keyset condition, order and limit of a window over `(created, id)`.
pub(crate) fn push_window(qb: &mut QueryBuilder<'_, Db>, prefix: &str, w: &Window) {
    let (cmp, order) = match w.direction {
        Direction::Older => ("<", "DESC"),
        Direction::Newer => (">", "ASC"),
    };
    if let Some(k) = w.from {
        qb.push(format_args!(" AND ({prefix}created, {prefix}id) {cmp} ("));
        qb.push_bind(k.created);
        qb.push(", ");
        qb.push_bind(k.id);
        qb.push(")");
    }
    qb.push(format_args!(" ORDER BY {prefix}created {order}, {prefix}id {order} LIMIT "));
    qb.push_bind(w.limit as i64);
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: Uuid,
    org_id: Uuid,
    email: String,
    group_ids: Json<Vec<Uuid>>,
    invited_by: Option<Uuid>,
    created: i64,
    expires_at: i64,
}

pub(crate) fn invitation(r: &DbRow) -> StoreResult<InvitationRecord> {
    let i = InvitationRow::from_row(r).map_err(db_err)?;
    Ok(InvitationRecord {
        id: i.id,
        org_id: OrgId(i.org_id),
        email: i.email,
        group_ids: i.group_ids.0.into_iter().map(castellan_core::GroupId).collect(),
        invited_by: i.invited_by.map(UserId),
        created: i.created,
        expires_at: i.expires_at,
    })
}
