//! What a store does outside a repository transaction (authenticating credentials,
//! recording their use, following the change feed, server secrets), over a
//! connection pool the backend chooses, and the mapping of driver errors.

use crate::backend::Db;
use crate::{rows, sessions};
use castellan_core::KeyId;
use castellan_store::*;
use sqlx::types::Json;
use sqlx::{Pool, Row};

pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(crate) fn is_unique(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

/// A unique-index violation becomes `Conflict(message())`, anything else a backend error.
pub(crate) fn conflict_or(e: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    if is_unique(&e) {
        StoreError::Conflict(message())
    } else {
        db_err(e)
    }
}

pub(crate) async fn authenticate(pool: &Pool<Db>, key_hash: &str) -> StoreResult<Option<KeyAuth>> {
    let row = sqlx::query(rows::KEY_AUTH_SQL).bind(key_hash).fetch_optional(pool).await.map_err(db_err)?;
    row.map(|r| rows::key_auth(&r)).transpose()
}

pub(crate) async fn touch_key(pool: &Pool<Db>, id: KeyId, at: Micros) -> StoreResult<()> {
    sqlx::query("UPDATE api_keys SET last_used = $1 WHERE id = $2 AND (last_used IS NULL OR last_used < $1)")
        .bind(at)
        .bind(id.0)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn authenticate_session(pool: &Pool<Db>, token_hash: &str) -> StoreResult<Option<SessionAuth>> {
    let row = sqlx::query(&sessions::session_auth_sql()).bind(token_hash).fetch_optional(pool).await.map_err(db_err)?;
    row.map(|r| sessions::session_auth(&r)).transpose()
}

pub(crate) async fn touch_session(pool: &Pool<Db>, id: uuid::Uuid, at: Micros) -> StoreResult<()> {
    sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id = $2 AND last_seen < $1")
        .bind(at)
        .bind(id)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn changes_since(pool: &Pool<Db>, after: Revision, limit: usize) -> StoreResult<Vec<ChangeRecord>> {
    let rs =
        sqlx::query("SELECT revision, created, payload FROM change_log WHERE revision > $1 ORDER BY revision LIMIT $2")
            .bind(rows::rev_to_i64(after)?)
            .bind(limit as i64)
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
    rs.iter()
        .map(|r| {
            let payload: Json<serde_json::Value> = r.try_get("payload").map_err(db_err)?;
            Ok(ChangeRecord {
                revision: rows::i64_to_rev(r.try_get("revision").map_err(db_err)?)?,
                created: r.try_get("created").map_err(db_err)?,
                payload: payload.0,
            })
        })
        .collect()
}

pub(crate) async fn current_revision(pool: &Pool<Db>) -> StoreResult<Revision> {
    let v: i64 = sqlx::query_scalar("SELECT value FROM castellan_revision WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db_err)?;
    rows::i64_to_rev(v)
}

pub(crate) async fn server_secret(pool: &Pool<Db>, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
    sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(candidate)
        .execute(pool)
        .await
        .map_err(db_err)?;
    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(db_err)
}

pub(crate) async fn replace_server_secret(pool: &Pool<Db>, name: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE server_secrets SET value = $1 WHERE name = $2 AND value = $3")
        .bind(new)
        .bind(name)
        .bind(old)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn sealed_prefixes(pool: &Pool<Db>) -> StoreResult<Vec<(Vec<u8>, i64)>> {
    sqlx::query_as(
        "SELECT p, COUNT(*) FROM (SELECT substr(secret, 1, 9) AS p FROM admin_objects WHERE secret IS NOT NULL \
         UNION ALL SELECT substr(value, 1, 9) AS p FROM server_secrets WHERE name LIKE '%.sealed' \
         UNION ALL SELECT substr(alert_secret, 1, 9) AS p FROM org_plans WHERE alert_secret IS NOT NULL) s GROUP BY p",
    )
    .fetch_all(pool)
    .await
    .map_err(db_err)
}
