//! Shared SQL: written once, compiled into both backends (`#[path]` modules of
//! `castellan-store-sqlite` and `castellan-store-postgres`), each with its own `Db`,
//! `DbRow` and `SqlTx` (see each backend's `backend.rs`). Parameters are `$N`, which
//! both drivers bind by number; JSON is bound and read as `sqlx::types::Json`.
//!
//! Row mapping, column lists and query-builder helpers.

use crate::backend::{Db, DbRow};
use crate::db_err;
use castellan_core::{KeyId, OrgId, ProjectId, UserId};
use castellan_store::page::{Direction, Window};
use castellan_store::*;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
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

fn json_opt(r: &DbRow, col: &str) -> StoreResult<Option<serde_json::Value>> {
    let v: Option<Json<serde_json::Value>> = r.try_get(col).map_err(db_err)?;
    Ok(v.map(|j| j.0))
}

pub(crate) fn org(r: &DbRow) -> StoreResult<OrgRecord> {
    Ok(OrgRecord {
        id: OrgId(r.try_get("id").map_err(db_err)?),
        name: r.try_get("name").map_err(db_err)?,
        api_url: r.try_get("api_url").map_err(db_err)?,
        is_universal_api: r.try_get("is_universal_api").map_err(db_err)?,
        is_dataplane_private: r.try_get("is_dataplane_private").map_err(db_err)?,
        proxy_url: r.try_get("proxy_url").map_err(db_err)?,
        realtime_url: r.try_get("realtime_url").map_err(db_err)?,
        image_rendering_mode: r.try_get("image_rendering_mode").map_err(db_err)?,
        settings: json_opt(r, "settings")?.unwrap_or_else(|| serde_json::json!({})),
        created: r.try_get("created").map_err(db_err)?,
    })
}

pub(crate) fn user_with_prefix(r: &DbRow, id: Uuid, p: &str) -> StoreResult<UserRecord> {
    let kind: String = r.try_get(format!("{p}kind").as_str()).map_err(db_err)?;
    Ok(UserRecord {
        id: UserId(id),
        kind: UserKind::parse(&kind).ok_or_else(|| integrity("user kind"))?,
        email: r.try_get(format!("{p}email").as_str()).map_err(db_err)?,
        given_name: r.try_get(format!("{p}given_name").as_str()).map_err(db_err)?,
        family_name: r.try_get(format!("{p}family_name").as_str()).map_err(db_err)?,
        avatar_url: r.try_get(format!("{p}avatar_url").as_str()).map_err(db_err)?,
        created: r.try_get(format!("{p}created").as_str()).map_err(db_err)?,
    })
}

pub(crate) fn user(r: &DbRow) -> StoreResult<UserRecord> {
    user_with_prefix(r, r.try_get("id").map_err(db_err)?, "")
}

pub(crate) fn project(r: &DbRow) -> StoreResult<ProjectRecord> {
    Ok(ProjectRecord {
        id: ProjectId(r.try_get("id").map_err(db_err)?),
        org_id: OrgId(r.try_get("org_id").map_err(db_err)?),
        name: r.try_get("name").map_err(db_err)?,
        description: r.try_get("description").map_err(db_err)?,
        user_id: r.try_get::<Option<Uuid>, _>("user_id").map_err(db_err)?.map(UserId),
        settings: json_opt(r, "settings")?,
        created: r.try_get("created").map_err(db_err)?,
    })
}

pub(crate) fn key(r: &DbRow) -> StoreResult<KeyRecord> {
    let kind: String = r.try_get("kind").map_err(db_err)?;
    Ok(KeyRecord {
        id: KeyId(r.try_get("id").map_err(db_err)?),
        kind: KeyKind::parse(&kind).ok_or_else(|| integrity("key kind"))?,
        name: r.try_get("name").map_err(db_err)?,
        preview_name: r.try_get("preview_name").map_err(db_err)?,
        user_id: UserId(r.try_get("user_id").map_err(db_err)?),
        org_id: r.try_get::<Option<Uuid>, _>("org_id").map_err(db_err)?.map(OrgId),
        created: r.try_get("created").map_err(db_err)?,
        last_used: r.try_get("last_used").map_err(db_err)?,
        expires_at: r.try_get("expires_at").map_err(db_err)?,
    })
}

pub(crate) fn key_auth(r: &DbRow) -> StoreResult<KeyAuth> {
    let key = key(r)?;
    let user = user_with_prefix(r, key.user_id.0, "u_")?;
    Ok(KeyAuth { key, user })
}

pub(crate) fn audit(r: &DbRow) -> StoreResult<audit::AuditRecord> {
    Ok(audit::AuditRecord {
        id: r.try_get("id").map_err(db_err)?,
        seq: i64_to_rev(r.try_get("seq").map_err(db_err)?)?,
        revision: i64_to_rev(r.try_get("revision").map_err(db_err)?)?,
        record: audit::NewAuditRecord {
            org_id: OrgId(r.try_get("org_id").map_err(db_err)?),
            created: r.try_get("created").map_err(db_err)?,
            actor_id: r.try_get::<Option<Uuid>, _>("actor_id").map_err(db_err)?.map(UserId),
            impersonator_id: r.try_get::<Option<Uuid>, _>("impersonator_id").map_err(db_err)?.map(UserId),
            event_type: r.try_get("event_type").map_err(db_err)?,
            resource_type: r.try_get("resource_type").map_err(db_err)?,
            resource_id: r.try_get("resource_id").map_err(db_err)?,
            resource_name: r.try_get("resource_name").map_err(db_err)?,
            before: r.try_get("before").map_err(db_err)?,
            after: r.try_get("after").map_err(db_err)?,
            details: r.try_get("details").map_err(db_err)?,
        },
        prev_hash: r.try_get("prev_hash").map_err(db_err)?,
        hash: r.try_get("hash").map_err(db_err)?,
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

pub(crate) fn invitation(r: &DbRow) -> StoreResult<InvitationRecord> {
    let groups: Json<Vec<Uuid>> = r.try_get("group_ids").map_err(db_err)?;
    Ok(InvitationRecord {
        id: r.try_get("id").map_err(db_err)?,
        org_id: OrgId(r.try_get("org_id").map_err(db_err)?),
        email: r.try_get("email").map_err(db_err)?,
        group_ids: groups.0.into_iter().map(castellan_core::GroupId).collect(),
        invited_by: r.try_get::<Option<Uuid>, _>("invited_by").map_err(db_err)?.map(UserId),
        created: r.try_get("created").map_err(db_err)?,
        expires_at: r.try_get("expires_at").map_err(db_err)?,
    })
}
