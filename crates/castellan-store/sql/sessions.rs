//! Passwords and console sessions.

use crate::backend::{DbRow, SqlTx};
use crate::{db_err, rows};
use async_trait::async_trait;
use castellan_core::UserId;
use castellan_store::*;
use sqlx::{FromRow, Row};
use uuid::Uuid;

pub(crate) const SESSION_COLS: &str =
    "s.id, s.user_id, s.created, s.last_seen, s.expires_at, s.user_agent, s.ip, s.via";

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    created: i64,
    last_seen: i64,
    expires_at: i64,
    user_agent: Option<String>,
    ip: Option<String>,
    via: Option<String>,
}

pub(crate) fn session(r: &DbRow) -> StoreResult<SessionRecord> {
    let s = SessionRow::from_row(r).map_err(db_err)?;
    Ok(SessionRecord {
        id: s.id,
        user_id: UserId(s.user_id),
        created: s.created,
        last_seen: s.last_seen,
        expires_at: s.expires_at,
        user_agent: s.user_agent,
        ip: s.ip,
        via: s.via,
    })
}

pub(crate) fn session_auth_sql() -> String {
    format!(
        "SELECT {SESSION_COLS}, s.csrf_hash, u.kind AS u_kind, u.email AS u_email, u.given_name AS u_given_name, \
         u.family_name AS u_family_name, u.avatar_url AS u_avatar_url, u.created AS u_created \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND u.deleted_at IS NULL"
    )
}

pub(crate) fn session_auth(r: &DbRow) -> StoreResult<SessionAuth> {
    let session = session(r)?;
    let user = rows::joined_user(r, session.user_id.0)?;
    Ok(SessionAuth { session, csrf_hash: r.try_get("csrf_hash").map_err(db_err)?, user })
}

#[async_trait]
impl SessionRepo for SqlTx {
    async fn insert_session(&mut self, s: &SessionRecord, token_hash: &str, csrf_hash: &str) -> StoreResult<()> {
        self.ensure_writable()?;
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, csrf_hash, user_id, created, last_seen, expires_at, user_agent, ip, via) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(s.id)
        .bind(token_hash)
        .bind(csrf_hash)
        .bind(s.user_id.0)
        .bind(s.created)
        .bind(s.last_seen)
        .bind(s.expires_at)
        .bind(&s.user_agent)
        .bind(&s.ip)
        .bind(&s.via)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn revoke_session(&mut self, user: UserId, id: Uuid, at: Micros) -> StoreResult<bool> {
        self.ensure_writable()?;
        let res =
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .bind(user.0)
                .execute(self.conn())
                .await
                .map_err(db_err)?;
        Ok(res.rows_affected() == 1)
    }

    async fn revoke_user_sessions(&mut self, user: UserId, keep: Option<Uuid>, at: Micros) -> StoreResult<u64> {
        self.ensure_writable()?;
        let res = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL AND ($3 IS NULL OR id <> $4)",
        )
        .bind(at)
        .bind(user.0)
        .bind(keep)
        .bind(keep)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(res.rows_affected())
    }

    async fn revoke_password_sessions(&mut self, user: UserId, at: Micros) -> StoreResult<u64> {
        self.ensure_writable()?;
        let res = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
             AND (via IS NULL OR via = 'password')",
        )
        .bind(at)
        .bind(user.0)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(res.rows_affected())
    }

    async fn list_sessions(&mut self, user: UserId, now: Micros) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             ORDER BY s.created DESC, s.id DESC"
        );
        let rs = sqlx::query(&sql).bind(user.0).bind(now).fetch_all(self.conn()).await.map_err(db_err)?;
        rs.iter().map(session).collect()
    }
}
