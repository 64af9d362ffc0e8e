//! Organizations, members, invitations, users, projects, keys and the audit log.

use crate::backend::{Db, SqlTx};
use crate::{conflict_or, db_err, rows};
use async_trait::async_trait;
use castellan_core::{KeyId, OrgId, ProjectId, UserId};
use castellan_store::audit::{seal, AuditRecord, NewAuditRecord};
use castellan_store::page::Window;
use castellan_store::*;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

fn org_name_key(name: &str) -> String {
    name.to_lowercase()
}

#[async_trait]
impl OrgRepo for SqlTx {
    async fn insert_org(&mut self, o: &OrgRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        self.exec_guarded(sqlx::query(
            "INSERT INTO orgs (id, name, name_key, api_url, is_universal_api, is_dataplane_private, proxy_url, \
             realtime_url, image_rendering_mode, settings, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(o.id.0)
        .bind(&o.name)
        .bind(org_name_key(&o.name))
        .bind(&o.api_url)
        .bind(o.is_universal_api)
        .bind(o.is_dataplane_private)
        .bind(&o.proxy_url)
        .bind(&o.realtime_url)
        .bind(&o.image_rendering_mode)
        .bind(Json(&o.settings))
        .bind(o.created)
        )
        .await
        .map_err(|e| conflict_or(e, || format!("an organization named `{}` already exists", o.name)))?;
        Ok(())
    }

    async fn get_org(&mut self, id: OrgId) -> StoreResult<Option<OrgRecord>> {
        let sql = format!("SELECT {} FROM orgs WHERE id = $1 AND deleted_at IS NULL", rows::ORG_COLS);
        let r = sqlx::query(&sql).bind(id.0).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        r.map(|r| rows::org(&r)).transpose()
    }

    async fn find_org_by_name(&mut self, name: &str) -> StoreResult<Option<OrgRecord>> {
        let sql = format!("SELECT {} FROM orgs WHERE name_key = $1 AND deleted_at IS NULL", rows::ORG_COLS);
        let r = sqlx::query(&sql).bind(org_name_key(name)).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        r.map(|r| rows::org(&r)).transpose()
    }

    async fn update_org(&mut self, o: &OrgRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let res = self.exec_guarded(sqlx::query(
            "UPDATE orgs SET name = $1, name_key = $2, api_url = $3, is_universal_api = $4, is_dataplane_private = $5, \
             proxy_url = $6, realtime_url = $7, image_rendering_mode = $8, settings = $9 WHERE id = $10 AND deleted_at IS NULL",
        )
        .bind(&o.name)
        .bind(org_name_key(&o.name))
        .bind(&o.api_url)
        .bind(o.is_universal_api)
        .bind(o.is_dataplane_private)
        .bind(&o.proxy_url)
        .bind(&o.realtime_url)
        .bind(&o.image_rendering_mode)
        .bind(Json(&o.settings))
        .bind(o.id.0)
        )
        .await
        .map_err(|e| conflict_or(e, || format!("an organization named `{}` already exists", o.name)))?;
        expect_touched(res.rows_affected(), || format!("organization `{}`", o.id))
    }

    async fn delete_org(&mut self, id: OrgId, at: Micros) -> StoreResult<()> {
        self.soft_delete("orgs", id.0, at, || format!("organization `{id}`")).await
    }

    async fn list_orgs(&mut self, f: &OrgFilter, w: &Window) -> StoreResult<Vec<OrgRecord>> {
        if f.scope.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {} FROM orgs WHERE deleted_at IS NULL", rows::ORG_COLS));
        let scope: Vec<Uuid> = f.scope.iter().map(|o| o.0).collect();
        rows::push_ids(&mut qb, "id", &scope);
        rows::push_ids(&mut qb, "id", &f.ids);
        if let Some(n) = &f.name {
            qb.push(" AND name_key = ").push_bind(org_name_key(n));
        }
        rows::push_window(&mut qb, "", w);
        let rs = qb.build().fetch_all(&mut *self.tx).await.map_err(db_err)?;
        rs.iter().map(rows::org).collect()
    }

    async fn count_orgs(&mut self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orgs WHERE deleted_at IS NULL")
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(n.max(0) as u64)
    }

    async fn add_member(&mut self, m: &MemberRecord) -> StoreResult<bool> {
        self.ensure_writable()?;
        let res = sqlx::query(
            "INSERT INTO org_members (org_id, user_id, created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(m.org_id.0)
        .bind(m.user_id.0)
        .bind(m.created)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(res.rows_affected() == 1)
    }

    async fn remove_member(&mut self, org: OrgId, user: UserId) -> StoreResult<bool> {
        self.ensure_writable()?;
        let res = sqlx::query("DELETE FROM org_members WHERE org_id = $1 AND user_id = $2")
            .bind(org.0)
            .bind(user.0)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() == 1)
    }

    async fn member_orgs(&mut self, user: UserId) -> StoreResult<Vec<OrgId>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT m.org_id FROM org_members m JOIN orgs o ON o.id = m.org_id \
             WHERE m.user_id = $1 AND o.deleted_at IS NULL ORDER BY o.created, o.id",
        )
        .bind(user.0)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(ids.into_iter().map(OrgId).collect())
    }

    async fn list_members(&mut self, org: OrgId) -> StoreResult<Vec<MemberRecord>> {
        let rs =
            sqlx::query("SELECT org_id, user_id, created FROM org_members WHERE org_id = $1 ORDER BY created, user_id")
                .bind(org.0)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(db_err)?;
        rs.iter()
            .map(|r| {
                Ok(MemberRecord {
                    org_id: OrgId(r.try_get("org_id").map_err(db_err)?),
                    user_id: UserId(r.try_get("user_id").map_err(db_err)?),
                    created: r.try_get("created").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn insert_invitation(&mut self, inv: &InvitationRecord, token_hash: &str) -> StoreResult<()> {
        self.ensure_writable()?;
        let groups: Vec<Uuid> = inv.group_ids.iter().map(|g| g.0).collect();
        sqlx::query(
            "INSERT INTO invitations (id, org_id, email, group_ids, invited_by, token_hash, created, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(inv.id)
        .bind(inv.org_id.0)
        .bind(&inv.email)
        .bind(Json(&groups))
        .bind(inv.invited_by.map(|u| u.0))
        .bind(token_hash)
        .bind(inv.created)
        .bind(inv.expires_at)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn find_invitation(&mut self, token_hash: &str) -> StoreResult<Option<InvitationRecord>> {
        let r = sqlx::query(&format!(
            "SELECT {} FROM invitations WHERE token_hash = $1 AND accepted_at IS NULL",
            rows::INVITATION_COLS
        ))
        .bind(token_hash)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_err)?;
        r.map(|r| rows::invitation(&r)).transpose()
    }

    async fn accept_invitation(&mut self, id: Uuid, at: Micros) -> StoreResult<bool> {
        self.ensure_writable()?;
        let res = sqlx::query("UPDATE invitations SET accepted_at = $1 WHERE id = $2 AND accepted_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() == 1)
    }

    async fn list_invitations(&mut self, org: OrgId) -> StoreResult<Vec<InvitationRecord>> {
        let rs = sqlx::query(&format!(
            "SELECT {} FROM invitations WHERE org_id = $1 AND accepted_at IS NULL ORDER BY created, id",
            rows::INVITATION_COLS
        ))
        .bind(org.0)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_err)?;
        rs.iter().map(rows::invitation).collect()
    }
}

#[async_trait]
impl UserRepo for SqlTx {
    async fn insert_user(&mut self, u: &UserRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        self.exec_guarded(sqlx::query(
            "INSERT INTO users (id, kind, email, given_name, family_name, avatar_url, created) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(u.id.0)
        .bind(u.kind.as_str())
        .bind(&u.email)
        .bind(&u.given_name)
        .bind(&u.family_name)
        .bind(&u.avatar_url)
        .bind(u.created)
        )
        .await
        .map_err(|e| conflict_or(e, || format!("a user with email `{}` already exists", u.email.as_deref().unwrap_or(""))))?;
        Ok(())
    }

    async fn get_user(&mut self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {} FROM users WHERE id = $1 AND deleted_at IS NULL", rows::USER_COLS);
        let r = sqlx::query(&sql).bind(id.0).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        r.map(|r| rows::user(&r)).transpose()
    }

    async fn get_users(&mut self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {} FROM users WHERE deleted_at IS NULL", rows::USER_COLS));
        let ids: Vec<Uuid> = ids.iter().map(|u| u.0).collect();
        rows::push_ids(&mut qb, "id", &ids);
        let rs = qb.build().fetch_all(&mut *self.tx).await.map_err(db_err)?;
        rs.iter().map(rows::user).collect()
    }

    async fn find_user_by_email(&mut self, email: &str) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {} FROM users WHERE email = $1 AND deleted_at IS NULL", rows::USER_COLS);
        let r = sqlx::query(&sql).bind(email.to_lowercase()).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        r.map(|r| rows::user(&r)).transpose()
    }

    async fn update_user(&mut self, u: &UserRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let res = self.exec_guarded(sqlx::query(
            "UPDATE users SET email = $1, given_name = $2, family_name = $3, avatar_url = $4 WHERE id = $5 AND deleted_at IS NULL",
        )
        .bind(&u.email)
        .bind(&u.given_name)
        .bind(&u.family_name)
        .bind(&u.avatar_url)
        .bind(u.id.0)
        )
        .await
        .map_err(|e| conflict_or(e, || format!("a user with email `{}` already exists", u.email.as_deref().unwrap_or(""))))?;
        expect_touched(res.rows_affected(), || format!("user `{}`", u.id))
    }

    async fn list_users(&mut self, f: &UserFilter, w: &Window) -> StoreResult<Vec<UserRecord>> {
        if f.orgs.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {} FROM users WHERE deleted_at IS NULL AND id IN (SELECT user_id FROM org_members WHERE 1 = 1",
            rows::USER_COLS
        ));
        let orgs: Vec<Uuid> = f.orgs.iter().map(|o| o.0).collect();
        rows::push_ids(&mut qb, "org_id", &orgs);
        qb.push(")");
        rows::push_ids(&mut qb, "id", &f.ids);
        rows::push_texts(&mut qb, "given_name", &f.given_names);
        rows::push_texts(&mut qb, "family_name", &f.family_names);
        let emails: Vec<String> = f.emails.iter().map(|e| e.to_lowercase()).collect();
        rows::push_texts(&mut qb, "email", &emails);
        if let Some(k) = f.kind {
            qb.push(" AND kind = ").push_bind(k.as_str());
        }
        if let Some(text) = f.search.as_deref().filter(|t| !t.is_empty()) {
            let exprs = [
                "COALESCE(email, '')",
                "COALESCE(given_name, '')",
                "COALESCE(family_name, '')",
                "COALESCE(given_name, '') || ' ' || COALESCE(family_name, '')",
            ];
            rows::push_contains(&mut qb, &exprs, text);
        }
        rows::push_window(&mut qb, "", w);
        let rs = qb.build().fetch_all(&mut *self.tx).await.map_err(db_err)?;
        rs.iter().map(rows::user).collect()
    }
    async fn password_hash(&mut self, user: UserId) -> StoreResult<Option<String>> {
        let v: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1 AND deleted_at IS NULL")
                .bind(user.0)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(db_err)?;
        Ok(v.flatten())
    }

    async fn set_password_hash(&mut self, user: UserId, hash: Option<&str>) -> StoreResult<()> {
        self.ensure_writable()?;
        let res = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND deleted_at IS NULL")
            .bind(hash)
            .bind(user.0)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("user `{user}`"))
    }
}

#[async_trait]
impl ProjectRepo for SqlTx {
    async fn insert_project(&mut self, p: &ProjectRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        self.exec_guarded(sqlx::query(
            "INSERT INTO projects (id, org_id, name, description, user_id, settings, created) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(p.id.0)
        .bind(p.org_id.0)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.user_id.map(|u| u.0))
        .bind(p.settings.as_ref().map(Json))
        .bind(p.created)
        )
        .await
        .map_err(|e| conflict_or(e, || format!("a project named `{}` already exists", p.name)))?;
        Ok(())
    }

    async fn get_project(&mut self, id: ProjectId) -> StoreResult<Option<ProjectRecord>> {
        let sql = format!("SELECT {} FROM projects WHERE id = $1 AND deleted_at IS NULL", rows::PROJECT_COLS);
        let r = sqlx::query(&sql).bind(id.0).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        r.map(|r| rows::project(&r)).transpose()
    }

    async fn find_project_by_name(&mut self, org: OrgId, name: &str) -> StoreResult<Option<ProjectRecord>> {
        let sql = format!(
            "SELECT {} FROM projects WHERE org_id = $1 AND name = $2 AND deleted_at IS NULL",
            rows::PROJECT_COLS
        );
        let r = sqlx::query(&sql).bind(org.0).bind(name).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        r.map(|r| rows::project(&r)).transpose()
    }

    async fn update_project(&mut self, p: &ProjectRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let res = self.exec_guarded(sqlx::query(
            "UPDATE projects SET name = $1, description = $2, user_id = $3, settings = $4 WHERE id = $5 AND deleted_at IS NULL",
        )
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.user_id.map(|u| u.0))
        .bind(p.settings.as_ref().map(Json))
        .bind(p.id.0)
        )
        .await
        .map_err(|e| conflict_or(e, || format!("a project named `{}` already exists", p.name)))?;
        expect_touched(res.rows_affected(), || format!("project `{}`", p.id))
    }

    async fn delete_project(&mut self, id: ProjectId, at: Micros) -> StoreResult<()> {
        self.soft_delete("projects", id.0, at, || format!("project `{id}`")).await
    }

    async fn list_projects(&mut self, f: &ProjectFilter, w: &Window) -> StoreResult<Vec<ProjectRecord>> {
        if f.orgs.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb =
            QueryBuilder::<Db>::new(format!("SELECT {} FROM projects WHERE deleted_at IS NULL", rows::PROJECT_COLS));
        let orgs: Vec<Uuid> = f.orgs.iter().map(|o| o.0).collect();
        rows::push_ids(&mut qb, "org_id", &orgs);
        rows::push_ids(&mut qb, "id", &f.ids);
        if let Some(n) = &f.name {
            qb.push(" AND name = ").push_bind(n.clone());
        }
        rows::push_window(&mut qb, "", w);
        let rs = qb.build().fetch_all(&mut *self.tx).await.map_err(db_err)?;
        rs.iter().map(rows::project).collect()
    }
}

#[async_trait]
impl KeyRepo for SqlTx {
    async fn insert_key(&mut self, k: &NewKey) -> StoreResult<()> {
        self.ensure_writable()?;
        let r = &k.record;
        sqlx::query(
            "INSERT INTO api_keys (id, kind, name, key_hash, preview_name, user_id, org_id, created, last_used, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(r.id.0)
        .bind(r.kind.as_str())
        .bind(&r.name)
        .bind(&k.key_hash)
        .bind(&r.preview_name)
        .bind(r.user_id.0)
        .bind(r.org_id.map(|o| o.0))
        .bind(r.created)
        .bind(r.last_used)
        .bind(r.expires_at)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_key(&mut self, id: KeyId) -> StoreResult<Option<KeyRecord>> {
        let sql = format!("SELECT {} FROM api_keys WHERE id = $1 AND deleted_at IS NULL", rows::KEY_COLS);
        let r = sqlx::query(&sql).bind(id.0).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        r.map(|r| rows::key(&r)).transpose()
    }

    async fn delete_key(&mut self, id: KeyId, at: Micros) -> StoreResult<()> {
        self.soft_delete("api_keys", id.0, at, || format!("key `{id}`")).await
    }

    async fn delete_keys_of(&mut self, org: OrgId, user: UserId, at: Micros) -> StoreResult<Vec<KeyRecord>> {
        self.ensure_writable()?;
        let rs = sqlx::query(&format!(
            "UPDATE api_keys SET deleted_at = $1 WHERE org_id = $2 AND user_id = $3 AND deleted_at IS NULL RETURNING {}",
            rows::KEY_COLS
        ))
        .bind(at)
        .bind(org.0)
        .bind(user.0)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_err)?;
        let mut out = rs.iter().map(rows::key).collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|k| (k.created, k.id.0));
        Ok(out)
    }

    async fn list_keys(&mut self, f: &KeyFilter, w: &Window) -> StoreResult<Vec<KeyRecord>> {
        if f.orgs.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Db>::new(format!(
            "SELECT {} FROM api_keys WHERE deleted_at IS NULL AND kind = ",
            rows::KEY_COLS
        ));
        qb.push_bind(f.kind.as_str());
        let orgs: Vec<Uuid> = f.orgs.iter().map(|o| o.0).collect();
        rows::push_ids(&mut qb, "org_id", &orgs);
        if let Some(u) = f.user {
            qb.push(" AND user_id = ").push_bind(u.0);
        }
        let users: Vec<Uuid> = f.users.iter().map(|u| u.0).collect();
        rows::push_ids(&mut qb, "user_id", &users);
        rows::push_ids(&mut qb, "id", &f.ids);
        if let Some(n) = &f.name {
            qb.push(" AND name = ").push_bind(n.clone());
        }
        rows::push_window(&mut qb, "", w);
        let rs = qb.build().fetch_all(&mut *self.tx).await.map_err(db_err)?;
        rs.iter().map(rows::key).collect()
    }
}

#[async_trait]
impl AuditRepo for SqlTx {
    async fn list_audit(
        &mut self,
        f: &AuditFilter,
        before_seq: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {} FROM audit_log WHERE org_id = ", rows::AUDIT_COLS));
        qb.push_bind(f.org.0);
        if let Some(s) = before_seq {
            qb.push(" AND seq < ").push_bind(rows::rev_to_i64(s)?);
        }
        if let Some(s) = f.after_seq {
            qb.push(" AND seq > ").push_bind(rows::rev_to_i64(s)?);
        }
        if let Some(t) = f.since {
            qb.push(" AND created >= ").push_bind(t);
        }
        if let Some(t) = f.until {
            qb.push(" AND created < ").push_bind(t);
        }
        if let Some(a) = f.actor {
            qb.push(" AND actor_id = ").push_bind(a.0);
        }
        match f.event_type.as_deref() {
            Some(e) if e.ends_with('.') => {
                qb.push(" AND substr(event_type, 1, ").push_bind(e.len() as i32).push(") = ").push_bind(e.to_owned());
            }
            Some(e) => {
                qb.push(" AND event_type = ").push_bind(e.to_owned());
            }
            None => {}
        }
        if let Some(r) = &f.resource_type {
            qb.push(" AND resource_type = ").push_bind(r.clone());
        }
        if let Some(r) = f.resource_id {
            qb.push(" AND resource_id = ").push_bind(r);
        }
        // After a position, the records just after it: read oldest first, then turned.
        let order = if f.after_seq.is_some() { "ASC" } else { "DESC" };
        qb.push(format_args!(" ORDER BY seq {order} LIMIT ")).push_bind(limit as i64);
        let rs = qb.build().fetch_all(&mut *self.tx).await.map_err(db_err)?;
        let mut out = rs.iter().map(rows::audit).collect::<StoreResult<Vec<_>>>()?;
        if f.after_seq.is_some() {
            out.reverse();
        }
        Ok(out)
    }

    async fn append_audit(&mut self, rec: NewAuditRecord) -> StoreResult<AuditRecord> {
        let revision = self.revision().await?;
        let head: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE org_id = $1")
            .bind(rec.org_id.0)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        let prev = head.map(|(s, h)| Ok::<_, StoreError>((rows::i64_to_rev(s)?, h))).transpose()?;
        let sealed = seal(Uuid::now_v7(), revision, rec, prev);
        let r = &sealed.record;
        sqlx::query(
            "INSERT INTO audit_log (org_id, seq, id, revision, created, actor_id, impersonator_id, event_type, \
             resource_type, resource_id, resource_name, before, after, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(r.org_id.0)
        .bind(rows::rev_to_i64(sealed.seq)?)
        .bind(sealed.id)
        .bind(rows::rev_to_i64(revision)?)
        .bind(r.created)
        .bind(r.actor_id.map(|u| u.0))
        .bind(r.impersonator_id.map(|u| u.0))
        .bind(&r.event_type)
        .bind(&r.resource_type)
        .bind(r.resource_id)
        .bind(&r.resource_name)
        .bind(&r.before)
        .bind(&r.after)
        .bind(&r.details)
        .bind(&sealed.prev_hash)
        .bind(&sealed.hash)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO audit_head (org_id, seq, hash) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .bind(r.org_id.0)
        .bind(rows::rev_to_i64(sealed.seq)?)
        .bind(&sealed.hash)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(sealed)
    }

    async fn audit_chain(&mut self, org: OrgId, after_seq: u64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        let sql =
            format!("SELECT {} FROM audit_log WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3", rows::AUDIT_COLS);
        let rs = sqlx::query(&sql)
            .bind(org.0)
            .bind(rows::rev_to_i64(after_seq)?)
            .bind(limit as i64)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err)?;
        rs.iter().map(rows::audit).collect()
    }

    async fn audit_head(&mut self, org: OrgId) -> StoreResult<Option<(u64, String)>> {
        let head: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE org_id = $1")
            .bind(org.0)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        head.map(|(s, h)| Ok((rows::i64_to_rev(s)?, h))).transpose()
    }
}
