//! Identities at OpenID providers, and the group memberships single sign-on made.

use crate::backend::SqlTx;
use crate::{conflict_or, db_err};
use async_trait::async_trait;
use castellan_core::{GroupId, OrgId, UserId};
use castellan_store::*;
use sqlx::FromRow;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct IdentityRow {
    issuer: String,
    subject: String,
    user_id: Uuid,
    org_id: Uuid,
    config_id: Uuid,
    email: Option<String>,
    created: i64,
    last_login: i64,
}

#[async_trait]
impl IdentityRepo for SqlTx {
    async fn find_identity(&mut self, issuer: &str, subject: &str) -> StoreResult<Option<IdentityRecord>> {
        let r = sqlx::query(
            "SELECT i.issuer, i.subject, i.user_id, i.org_id, i.config_id, i.email, i.created, i.last_login \
             FROM sso_identities i JOIN users u ON u.id = i.user_id \
             WHERE i.issuer = $1 AND i.subject = $2 AND u.deleted_at IS NULL",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_optional(self.conn())
        .await
        .map_err(db_err)?;
        let Some(r) = r else { return Ok(None) };
        let i = IdentityRow::from_row(&r).map_err(db_err)?;
        Ok(Some(IdentityRecord {
            issuer: i.issuer,
            subject: i.subject,
            user_id: UserId(i.user_id),
            org_id: OrgId(i.org_id),
            config_id: i.config_id,
            email: i.email,
            created: i.created,
            last_login: i.last_login,
        }))
    }

    async fn has_identity_at(&mut self, user: UserId, issuer: &str) -> StoreResult<bool> {
        let r = sqlx::query("SELECT 1 FROM sso_identities WHERE user_id = $1 AND issuer = $2 LIMIT 1")
            .bind(user.0)
            .bind(issuer)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        Ok(r.is_some())
    }

    async fn config_has_identities(&mut self, config: Uuid) -> StoreResult<bool> {
        let r = sqlx::query("SELECT 1 FROM sso_identities WHERE config_id = $1 LIMIT 1")
            .bind(config)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        Ok(r.is_some())
    }

    async fn insert_identity(&mut self, i: &IdentityRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        self.exec_guarded(
            sqlx::query(
                "INSERT INTO sso_identities (issuer, subject, user_id, org_id, config_id, email, created, last_login) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&i.issuer)
            .bind(&i.subject)
            .bind(i.user_id.0)
            .bind(i.org_id.0)
            .bind(i.config_id)
            .bind(&i.email)
            .bind(i.created)
            .bind(i.last_login),
        )
        .await
        .map_err(|e| conflict_or(e, || format!("the identity `{}` at `{}` is already linked", i.subject, i.issuer)))?;
        Ok(())
    }

    async fn set_identity_login(
        &mut self,
        issuer: &str,
        subject: &str,
        email: Option<&str>,
        at: Micros,
    ) -> StoreResult<()> {
        self.ensure_writable()?;
        sqlx::query("UPDATE sso_identities SET last_login = $1, email = $2 WHERE issuer = $3 AND subject = $4")
            .bind(at)
            .bind(email)
            .bind(issuer)
            .bind(subject)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn sso_groups_of(&mut self, user: UserId) -> StoreResult<Vec<GroupId>> {
        let rs: Vec<(Uuid,)> = sqlx::query_as("SELECT group_id FROM sso_group_members WHERE user_id = $1")
            .bind(user.0)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        Ok(rs.into_iter().map(|(g,)| GroupId(g)).collect())
    }

    async fn add_sso_group_member(
        &mut self,
        group: GroupId,
        user: UserId,
        config: Uuid,
        at: Micros,
    ) -> StoreResult<()> {
        self.ensure_writable()?;
        sqlx::query(
            "INSERT INTO sso_group_members (group_id, user_id, config_id, created) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (group_id, user_id) DO NOTHING",
        )
        .bind(group.0)
        .bind(user.0)
        .bind(config)
        .bind(at)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn remove_sso_group_member(&mut self, group: GroupId, user: UserId) -> StoreResult<()> {
        self.ensure_writable()?;
        sqlx::query("DELETE FROM sso_group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group.0)
            .bind(user.0)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn insert_sso_grant(&mut self, g: &SsoGrant, now: Micros) -> StoreResult<()> {
        self.ensure_writable()?;
        sqlx::query("DELETE FROM sso_cli_grants WHERE expires_at <= $1")
            .bind(now)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO sso_cli_grants (code_hash, user_id, org_id, config_id, challenge, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&g.code_hash)
        .bind(g.user_id.0)
        .bind(g.org_id.0)
        .bind(g.config_id)
        .bind(&g.challenge)
        .bind(g.expires_at)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn take_sso_grant(&mut self, code_hash: &str) -> StoreResult<Option<SsoGrant>> {
        self.ensure_writable()?;
        let r: Option<(String, Uuid, Uuid, Uuid, String, i64)> = sqlx::query_as(
            "DELETE FROM sso_cli_grants WHERE code_hash = $1 \
             RETURNING code_hash, user_id, org_id, config_id, challenge, expires_at",
        )
        .bind(code_hash)
        .fetch_optional(self.conn())
        .await
        .map_err(db_err)?;
        Ok(r.map(|(code_hash, u, o, config_id, challenge, expires_at)| SsoGrant {
            code_hash,
            user_id: UserId(u),
            org_id: OrgId(o),
            config_id,
            challenge,
            expires_at,
        }))
    }
}
