//! Groups, roles and ACLs, and the whole access state.

use crate::backend::{Db, DbRow, SqlTx};
use crate::rows::{i64_to_rev, push_ids, push_window};
use crate::{conflict_or, db_err};
use async_trait::async_trait;
use castellan_core::{AclId, GroupId, ObjectType, OrgId, Permission, ProjectId, RoleId, UserId};
use castellan_store::page::Window;
use castellan_store::*;
use sqlx::{FromRow, QueryBuilder, Row};
use uuid::Uuid;

const GROUP_COLS: &str = "id, org_id, name, description, user_id, created";
const ROLE_COLS: &str = "id, org_id, name, description, user_id, created";
const ACL_COLS: &str = "id, org_id, object_type, object_id, user_id, group_id, permission, role_id, restrict_object_type, expires_at, created";

fn integrity(what: &str) -> StoreError {
    StoreError::Integrity(format!("unreadable stored {what}"))
}

/// A group's or a role's columns (the two tables have the same shape).
#[derive(sqlx::FromRow)]
struct NamedRow {
    id: Uuid,
    org_id: Option<Uuid>,
    name: String,
    description: Option<String>,
    user_id: Option<Uuid>,
    created: i64,
}

fn group(r: &DbRow) -> StoreResult<GroupRecord> {
    let g = NamedRow::from_row(r).map_err(db_err)?;
    Ok(GroupRecord {
        id: GroupId(g.id),
        org_id: OrgId(g.org_id.ok_or_else(|| integrity("group organization"))?),
        name: g.name,
        description: g.description,
        user_id: g.user_id.map(UserId),
        created: g.created,
    })
}

fn role(r: &DbRow) -> StoreResult<RoleRecord> {
    let g = NamedRow::from_row(r).map_err(db_err)?;
    Ok(RoleRecord {
        id: RoleId(g.id),
        org_id: g.org_id.map(OrgId),
        name: g.name,
        description: g.description,
        user_id: g.user_id.map(UserId),
        created: g.created,
    })
}

fn object_type(s: &str) -> StoreResult<ObjectType> {
    s.parse().map_err(|_| integrity("object type"))
}

fn opt_object_type(s: Option<String>) -> StoreResult<Option<ObjectType>> {
    match s.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => object_type(s).map(Some),
    }
}

#[derive(sqlx::FromRow)]
struct AclRow {
    id: Uuid,
    org_id: Uuid,
    object_type: String,
    object_id: Uuid,
    user_id: Option<Uuid>,
    group_id: Option<Uuid>,
    permission: Option<String>,
    role_id: Option<Uuid>,
    restrict_object_type: Option<String>,
    expires_at: Option<i64>,
    created: i64,
}

fn acl(r: &DbRow) -> StoreResult<AclRecord> {
    let a = AclRow::from_row(r).map_err(db_err)?;
    Ok(AclRecord {
        id: AclId(a.id),
        org_id: OrgId(a.org_id),
        object_type: object_type(&a.object_type)?,
        object_id: a.object_id,
        user_id: a.user_id.map(UserId),
        group_id: a.group_id.map(GroupId),
        permission: a.permission.map(|p| p.parse::<Permission>().map_err(|_| integrity("permission"))).transpose()?,
        role_id: a.role_id.map(RoleId),
        restrict_object_type: opt_object_type(a.restrict_object_type)?,
        expires_at: a.expires_at,
        created: a.created,
    })
}

fn role_permission(perm: &str, restrict: &str) -> StoreResult<RolePermission> {
    Ok(RolePermission {
        permission: perm.parse().map_err(|_| integrity("permission"))?,
        restrict_object_type: opt_object_type(Some(restrict.to_owned()))?,
    })
}

impl SqlTx {
    async fn delete_acls_where(&mut self, cond: &str, binds: &[Uuid]) -> StoreResult<Vec<AclRecord>> {
        let sql = format!("DELETE FROM acls WHERE {cond} RETURNING {ACL_COLS}");
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        let rs = q.fetch_all(self.conn()).await.map_err(db_err)?;
        let mut out = rs.iter().map(acl).collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|a| (a.created, a.id.0));
        Ok(out)
    }

    async fn exec_flag(&mut self, sql: &str, a: Uuid, b: Uuid) -> StoreResult<bool> {
        self.ensure_writable()?;
        let res = sqlx::query(sql).bind(a).bind(b).execute(self.conn()).await.map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }
}

#[async_trait]
impl AccessRepo for SqlTx {
    async fn insert_group(&mut self, g: &GroupRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        self.exec_guarded(
            sqlx::query(
                "INSERT INTO groups (id, org_id, name, description, user_id, created) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(g.id.0)
            .bind(g.org_id.0)
            .bind(&g.name)
            .bind(&g.description)
            .bind(g.user_id.map(|u| u.0))
            .bind(g.created),
        )
        .await
        .map_err(|e| conflict_or(e, || format!("a group named `{}` already exists", g.name)))?;
        Ok(())
    }

    async fn get_group(&mut self, id: GroupId) -> StoreResult<Option<GroupRecord>> {
        let sql = format!("SELECT {GROUP_COLS} FROM groups WHERE id = $1 AND deleted_at IS NULL");
        let r = sqlx::query(&sql).bind(id.0).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| group(&r)).transpose()
    }

    async fn find_group_by_name(&mut self, org: OrgId, name: &str) -> StoreResult<Option<GroupRecord>> {
        let sql = format!("SELECT {GROUP_COLS} FROM groups WHERE org_id = $1 AND name = $2 AND deleted_at IS NULL");
        let r = sqlx::query(&sql).bind(org.0).bind(name).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| group(&r)).transpose()
    }

    async fn update_group(&mut self, g: &GroupRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let res = self
            .exec_guarded(
                sqlx::query("UPDATE groups SET name = $1, description = $2 WHERE id = $3 AND deleted_at IS NULL")
                    .bind(&g.name)
                    .bind(&g.description)
                    .bind(g.id.0),
            )
            .await
            .map_err(|e| conflict_or(e, || format!("a group named `{}` already exists", g.name)))?;
        expect_touched(res.rows_affected(), || format!("group `{}`", g.id))
    }

    async fn delete_group(&mut self, id: GroupId, at: Micros) -> StoreResult<()> {
        self.soft_delete("groups", id.0, at, || format!("group `{id}`")).await?;
        sqlx::query("DELETE FROM group_users WHERE group_id = $1")
            .bind(id.0)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM group_groups WHERE group_id = $1 OR member_group_id = $2")
            .bind(id.0)
            .bind(id.0)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_groups(&mut self, f: &GroupFilter, w: &Window) -> StoreResult<Vec<GroupRecord>> {
        if f.orgs.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {GROUP_COLS} FROM groups WHERE deleted_at IS NULL"));
        let orgs: Vec<Uuid> = f.orgs.iter().map(|o| o.0).collect();
        push_ids(&mut qb, "org_id", &orgs);
        push_ids(&mut qb, "id", &f.ids);
        if let Some(n) = &f.name {
            qb.push(" AND name = ").push_bind(n.clone());
        }
        if let Some(text) = f.search.as_deref().filter(|t| !t.is_empty()) {
            crate::rows::push_contains(&mut qb, &["name"], text);
        }
        push_window(&mut qb, "", w);
        let rs = qb.build().fetch_all(self.conn()).await.map_err(db_err)?;
        rs.iter().map(group).collect()
    }

    async fn group_members(&mut self, groups: &[GroupId]) -> StoreResult<Vec<(GroupId, GroupMember)>> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = groups.iter().map(|g| g.0).collect();
        let mut qb =
            QueryBuilder::<Db>::new("SELECT group_id, user_id AS member, 0 AS kind FROM group_users WHERE 1 = 1");
        push_ids(&mut qb, "group_id", &ids);
        qb.push(" UNION ALL SELECT group_id, member_group_id AS member, 1 AS kind FROM group_groups WHERE 1 = 1");
        push_ids(&mut qb, "group_id", &ids);
        let rs = qb.build().fetch_all(self.conn()).await.map_err(db_err)?;
        let mut out = Vec::with_capacity(rs.len());
        for r in &rs {
            let (g, m, kind): (Uuid, Uuid, i32) =
                (r.try_get(0).map_err(db_err)?, r.try_get(1).map_err(db_err)?, r.try_get(2).map_err(db_err)?);
            let member = if kind == 0 { GroupMember::User(UserId(m)) } else { GroupMember::Group(GroupId(m)) };
            out.push((GroupId(g), member));
        }
        out.sort_unstable();
        Ok(out)
    }

    async fn group_users(&mut self, g: GroupId) -> StoreResult<Vec<UserId>> {
        let ids: Vec<Uuid> = sqlx::query_scalar("SELECT user_id FROM group_users WHERE group_id = $1 ORDER BY user_id")
            .bind(g.0)
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    async fn group_groups(&mut self, g: GroupId) -> StoreResult<Vec<GroupId>> {
        let ids: Vec<Uuid> =
            sqlx::query_scalar("SELECT member_group_id FROM group_groups WHERE group_id = $1 ORDER BY member_group_id")
                .bind(g.0)
                .fetch_all(self.conn())
                .await
                .map_err(db_err)?;
        Ok(ids.into_iter().map(GroupId).collect())
    }

    async fn add_group_user(&mut self, g: GroupId, u: UserId) -> StoreResult<bool> {
        self.exec_flag("INSERT INTO group_users (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", g.0, u.0)
            .await
    }

    async fn remove_group_user(&mut self, g: GroupId, u: UserId) -> StoreResult<bool> {
        self.exec_flag("DELETE FROM group_users WHERE group_id = $1 AND user_id = $2", g.0, u.0).await
    }

    async fn add_group_group(&mut self, g: GroupId, m: GroupId) -> StoreResult<bool> {
        self.exec_flag(
            "INSERT INTO group_groups (group_id, member_group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            g.0,
            m.0,
        )
        .await
    }

    async fn remove_group_group(&mut self, g: GroupId, m: GroupId) -> StoreResult<bool> {
        self.exec_flag("DELETE FROM group_groups WHERE group_id = $1 AND member_group_id = $2", g.0, m.0).await
    }

    async fn user_groups(&mut self, org: OrgId, u: UserId) -> StoreResult<Vec<GroupId>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT g.id FROM group_users gu JOIN groups g ON g.id = gu.group_id \
             WHERE gu.user_id = $1 AND g.org_id = $2 AND g.deleted_at IS NULL ORDER BY g.created, g.id",
        )
        .bind(u.0)
        .bind(org.0)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        Ok(ids.into_iter().map(GroupId).collect())
    }

    async fn insert_role(&mut self, r: &RoleRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        self.exec_guarded(
            sqlx::query(
                "INSERT INTO roles (id, org_id, name, description, user_id, created) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(r.id.0)
            .bind(r.org_id.map(|o| o.0))
            .bind(&r.name)
            .bind(&r.description)
            .bind(r.user_id.map(|u| u.0))
            .bind(r.created),
        )
        .await
        .map_err(|e| conflict_or(e, || format!("a role named `{}` already exists", r.name)))?;
        Ok(())
    }

    async fn get_role(&mut self, id: RoleId) -> StoreResult<Option<RoleRecord>> {
        let sql = format!("SELECT {ROLE_COLS} FROM roles WHERE id = $1 AND deleted_at IS NULL");
        let r = sqlx::query(&sql).bind(id.0).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| role(&r)).transpose()
    }

    async fn find_role_by_name(&mut self, org: Option<OrgId>, name: &str) -> StoreResult<Option<RoleRecord>> {
        let r = match org {
            Some(o) => {
                let sql =
                    format!("SELECT {ROLE_COLS} FROM roles WHERE org_id = $1 AND name = $2 AND deleted_at IS NULL");
                sqlx::query(&sql).bind(o.0).bind(name).fetch_optional(self.conn()).await
            }
            None => {
                let sql =
                    format!("SELECT {ROLE_COLS} FROM roles WHERE org_id IS NULL AND name = $1 AND deleted_at IS NULL");
                sqlx::query(&sql).bind(name).fetch_optional(self.conn()).await
            }
        }
        .map_err(db_err)?;
        r.map(|r| role(&r)).transpose()
    }

    async fn update_role(&mut self, r: &RoleRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let res = self
            .exec_guarded(
                sqlx::query("UPDATE roles SET name = $1, description = $2 WHERE id = $3 AND deleted_at IS NULL")
                    .bind(&r.name)
                    .bind(&r.description)
                    .bind(r.id.0),
            )
            .await
            .map_err(|e| conflict_or(e, || format!("a role named `{}` already exists", r.name)))?;
        expect_touched(res.rows_affected(), || format!("role `{}`", r.id))
    }

    async fn delete_role(&mut self, id: RoleId, at: Micros) -> StoreResult<()> {
        self.soft_delete("roles", id.0, at, || format!("role `{id}`")).await?;
        sqlx::query("DELETE FROM role_permissions WHERE role_id = $1")
            .bind(id.0)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM role_roles WHERE role_id = $1 OR member_role_id = $2")
            .bind(id.0)
            .bind(id.0)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_roles(&mut self, f: &RoleFilter, w: &Window) -> StoreResult<Vec<RoleRecord>> {
        if f.orgs.is_empty() && !f.include_system {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {ROLE_COLS} FROM roles WHERE deleted_at IS NULL AND ("));
        if f.include_system {
            qb.push("org_id IS NULL");
        } else {
            qb.push("0 = 1");
        }
        if !f.orgs.is_empty() {
            qb.push(" OR org_id IN (");
            let mut sep = qb.separated(", ");
            for o in &f.orgs {
                sep.push_bind(o.0);
            }
            qb.push(")");
        }
        qb.push(")");
        push_ids(&mut qb, "id", &f.ids);
        if let Some(n) = &f.name {
            qb.push(" AND name = ").push_bind(n.clone());
        }
        push_window(&mut qb, "", w);
        let rs = qb.build().fetch_all(self.conn()).await.map_err(db_err)?;
        rs.iter().map(role).collect()
    }

    async fn role_permissions(&mut self, r: RoleId) -> StoreResult<Vec<RolePermission>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT permission, restrict_object_type FROM role_permissions WHERE role_id = $1 \
             ORDER BY permission, restrict_object_type",
        )
        .bind(r.0)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let mut out = rows.iter().map(|(p, t)| role_permission(p, t)).collect::<StoreResult<Vec<_>>>()?;
        out.sort();
        Ok(out)
    }

    async fn add_role_permission(&mut self, r: RoleId, p: RolePermission) -> StoreResult<bool> {
        self.ensure_writable()?;
        let res = sqlx::query(
            "INSERT INTO role_permissions (role_id, permission, restrict_object_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(r.0)
        .bind(p.permission.as_str())
        .bind(p.restrict_object_type.map(|t| t.as_str()).unwrap_or(""))
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn remove_role_permission(&mut self, r: RoleId, p: RolePermission) -> StoreResult<bool> {
        self.ensure_writable()?;
        let res = sqlx::query(
            "DELETE FROM role_permissions WHERE role_id = $1 AND permission = $2 AND restrict_object_type = $3",
        )
        .bind(r.0)
        .bind(p.permission.as_str())
        .bind(p.restrict_object_type.map(|t| t.as_str()).unwrap_or(""))
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn role_contents(
        &mut self,
        roles: &[RoleId],
    ) -> StoreResult<(Vec<(RoleId, RolePermission)>, Vec<(RoleId, RoleId)>)> {
        if roles.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let ids: Vec<Uuid> = roles.iter().map(|r| r.0).collect();
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT role_id, permission, restrict_object_type FROM role_permissions WHERE 1 = 1",
        );
        push_ids(&mut qb, "role_id", &ids);
        let rs = qb.build().fetch_all(self.conn()).await.map_err(db_err)?;
        let mut perms = Vec::with_capacity(rs.len());
        for r in &rs {
            let (role, p, t): (Uuid, String, String) =
                (r.try_get(0).map_err(db_err)?, r.try_get(1).map_err(db_err)?, r.try_get(2).map_err(db_err)?);
            perms.push((RoleId(role), role_permission(&p, &t)?));
        }
        perms.sort();
        let mut qb = QueryBuilder::<Db>::new("SELECT role_id, member_role_id FROM role_roles WHERE 1 = 1");
        push_ids(&mut qb, "role_id", &ids);
        let rs = qb.build().fetch_all(self.conn()).await.map_err(db_err)?;
        let mut inherits = Vec::with_capacity(rs.len());
        for r in &rs {
            let (role, m): (Uuid, Uuid) = (r.try_get(0).map_err(db_err)?, r.try_get(1).map_err(db_err)?);
            inherits.push((RoleId(role), RoleId(m)));
        }
        inherits.sort();
        Ok((perms, inherits))
    }

    async fn role_roles(&mut self, r: RoleId) -> StoreResult<Vec<RoleId>> {
        let ids: Vec<Uuid> =
            sqlx::query_scalar("SELECT member_role_id FROM role_roles WHERE role_id = $1 ORDER BY member_role_id")
                .bind(r.0)
                .fetch_all(self.conn())
                .await
                .map_err(db_err)?;
        Ok(ids.into_iter().map(RoleId).collect())
    }

    async fn add_role_role(&mut self, r: RoleId, m: RoleId) -> StoreResult<bool> {
        self.exec_flag(
            "INSERT INTO role_roles (role_id, member_role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            r.0,
            m.0,
        )
        .await
    }

    async fn remove_role_role(&mut self, r: RoleId, m: RoleId) -> StoreResult<bool> {
        self.exec_flag("DELETE FROM role_roles WHERE role_id = $1 AND member_role_id = $2", r.0, m.0).await
    }

    async fn insert_acl(&mut self, a: &AclRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        self.exec_guarded(sqlx::query(
            "INSERT INTO acls (id, org_id, content_key, object_type, object_id, user_id, group_id, permission, role_id, \
             restrict_object_type, expires_at, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(a.id.0)
        .bind(a.org_id.0)
        .bind(a.content_key())
        .bind(a.object_type.as_str())
        .bind(a.object_id)
        .bind(a.user_id.map(|u| u.0))
        .bind(a.group_id.map(|g| g.0))
        .bind(a.permission.map(|p| p.as_str()))
        .bind(a.role_id.map(|r| r.0))
        .bind(a.restrict_object_type.map(|t| t.as_str()))
        .bind(a.expires_at)
        .bind(a.created)
        )
        .await
        .map_err(|e| conflict_or(e, || "an identical acl already exists".to_string()))?;
        Ok(())
    }

    async fn get_acl(&mut self, id: AclId) -> StoreResult<Option<AclRecord>> {
        let sql = format!("SELECT {ACL_COLS} FROM acls WHERE id = $1");
        let r = sqlx::query(&sql).bind(id.0).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| acl(&r)).transpose()
    }

    async fn find_acl(&mut self, content_key: &str) -> StoreResult<Option<AclRecord>> {
        let sql = format!("SELECT {ACL_COLS} FROM acls WHERE content_key = $1");
        let r = sqlx::query(&sql).bind(content_key).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| acl(&r)).transpose()
    }

    async fn delete_acl(&mut self, id: AclId) -> StoreResult<()> {
        self.ensure_writable()?;
        let res =
            sqlx::query("DELETE FROM acls WHERE id = $1").bind(id.0).execute(self.conn()).await.map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("acl `{id}`"))
    }

    async fn list_acls(&mut self, f: &AclFilter, w: &Window) -> StoreResult<Vec<AclRecord>> {
        if f.orgs.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {ACL_COLS} FROM acls WHERE 1 = 1"));
        let orgs: Vec<Uuid> = f.orgs.iter().map(|o| o.0).collect();
        push_ids(&mut qb, "org_id", &orgs);
        push_ids(&mut qb, "id", &f.ids);
        if let Some(t) = f.object_type {
            qb.push(" AND object_type = ").push_bind(t.as_str());
        }
        if let Some(o) = f.object_id {
            qb.push(" AND object_id = ").push_bind(o);
        }
        if let Some(u) = f.user_id {
            qb.push(" AND user_id = ").push_bind(u.0);
        }
        if let Some(g) = f.group_id {
            qb.push(" AND group_id = ").push_bind(g.0);
        }
        if let Some(p) = f.permission {
            qb.push(" AND permission = ").push_bind(p.as_str());
        }
        if let Some(r) = f.role_id {
            qb.push(" AND role_id = ").push_bind(r.0);
        }
        if let Some(t) = f.restrict_object_type {
            qb.push(" AND restrict_object_type = ").push_bind(t.as_str());
        }
        push_window(&mut qb, "", w);
        let rs = qb.build().fetch_all(self.conn()).await.map_err(db_err)?;
        rs.iter().map(acl).collect()
    }

    async fn delete_acls_on(&mut self, t: ObjectType, id: Uuid) -> StoreResult<Vec<AclRecord>> {
        self.ensure_writable()?;
        let sql = format!("DELETE FROM acls WHERE object_type = $1 AND object_id = $2 RETURNING {ACL_COLS}");
        let rs = sqlx::query(&sql).bind(t.as_str()).bind(id).fetch_all(self.conn()).await.map_err(db_err)?;
        let mut out = rs.iter().map(acl).collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|a| (a.created, a.id.0));
        Ok(out)
    }

    async fn delete_acls_of_user(&mut self, org: OrgId, u: UserId) -> StoreResult<Vec<AclRecord>> {
        self.ensure_writable()?;
        self.delete_acls_where("org_id = $1 AND user_id = $2", &[org.0, u.0]).await
    }

    async fn delete_acls_inside(&mut self, project: ProjectId) -> StoreResult<Vec<AclRecord>> {
        self.ensure_writable()?;
        self.delete_acls_where("object_id IN (SELECT id FROM project_objects WHERE project_id = $1)", &[project.0])
            .await
    }

    async fn delete_acls_referencing(&mut self, g: Option<GroupId>, r: Option<RoleId>) -> StoreResult<Vec<AclRecord>> {
        self.ensure_writable()?;
        let mut out = Vec::new();
        if let Some(g) = g {
            out.extend(self.delete_acls_where("group_id = $1", &[g.0]).await?);
        }
        if let Some(r) = r {
            out.extend(self.delete_acls_where("role_id = $1", &[r.0]).await?);
        }
        Ok(out)
    }

    async fn load_access_state(&mut self) -> StoreResult<AccessState> {
        let rev: i64 = sqlx::query_scalar("SELECT value FROM castellan_revision WHERE id = 1")
            .fetch_one(self.conn())
            .await
            .map_err(db_err)?;
        let orgs: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM orgs WHERE deleted_at IS NULL ORDER BY created, id")
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        let projects: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT p.id, p.org_id FROM projects p JOIN orgs o ON o.id = p.org_id \
             WHERE p.deleted_at IS NULL AND o.deleted_at IS NULL ORDER BY p.created, p.id",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let groups: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT g.id, g.org_id FROM groups g JOIN orgs o ON o.id = g.org_id \
             WHERE g.deleted_at IS NULL AND o.deleted_at IS NULL ORDER BY g.created, g.id",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let group_users: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT gu.group_id, gu.user_id FROM group_users gu JOIN groups g ON g.id = gu.group_id \
             JOIN users u ON u.id = gu.user_id JOIN orgs o ON o.id = g.org_id \
             WHERE g.deleted_at IS NULL AND u.deleted_at IS NULL AND o.deleted_at IS NULL",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let group_groups: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT gg.group_id, gg.member_group_id FROM group_groups gg JOIN groups a ON a.id = gg.group_id \
             JOIN groups b ON b.id = gg.member_group_id JOIN orgs o ON o.id = a.org_id \
             WHERE a.deleted_at IS NULL AND b.deleted_at IS NULL AND o.deleted_at IS NULL",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let roles: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
            "SELECT id, org_id FROM roles WHERE deleted_at IS NULL \
                 AND (org_id IS NULL OR org_id IN (SELECT id FROM orgs WHERE deleted_at IS NULL)) ORDER BY created, id",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let role_perms: Vec<(Uuid, String, String)> = sqlx::query_as(
            "SELECT rp.role_id, rp.permission, rp.restrict_object_type FROM role_permissions rp \
             JOIN roles r ON r.id = rp.role_id WHERE r.deleted_at IS NULL \
             AND (r.org_id IS NULL OR r.org_id IN (SELECT id FROM orgs WHERE deleted_at IS NULL))",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let role_roles: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT rr.role_id, rr.member_role_id FROM role_roles rr JOIN roles a ON a.id = rr.role_id \
             JOIN roles b ON b.id = rr.member_role_id WHERE a.deleted_at IS NULL AND b.deleted_at IS NULL \
             AND (a.org_id IS NULL OR a.org_id IN (SELECT id FROM orgs WHERE deleted_at IS NULL))",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let objects: Vec<(String, Uuid, Uuid)> = sqlx::query_as(
            "SELECT o.kind, o.id, o.project_id FROM project_objects o JOIN projects p ON p.id = o.project_id \
             JOIN orgs g ON g.id = p.org_id \
             WHERE o.deleted_at IS NULL AND p.deleted_at IS NULL AND g.deleted_at IS NULL ORDER BY o.created, o.id",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        // Grants on objects that are gone (with their project, say) are not part of the
        // model: the index could not place them.
        let acl_sql = format!(
            "SELECT {ACL_COLS} FROM acls WHERE org_id IN (SELECT id FROM orgs WHERE deleted_at IS NULL) \
             AND (object_type NOT IN ('project', 'project_log', 'experiment', 'dataset', 'prompt', 'prompt_session', 'ai_secret') \
                  OR (object_type = 'ai_secret' AND object_id IN (SELECT id FROM admin_objects WHERE kind = 'ai_secret')) \
                  OR (object_type IN ('project', 'project_log') \
                      AND object_id IN (SELECT id FROM projects WHERE deleted_at IS NULL)) \
                  OR object_id IN (SELECT o.id FROM project_objects o JOIN projects p ON p.id = o.project_id \
                      WHERE o.deleted_at IS NULL AND p.deleted_at IS NULL)) \
             ORDER BY created, id"
        );
        let acls = sqlx::query(&acl_sql).fetch_all(self.conn()).await.map_err(db_err)?;
        let members: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT m.org_id, m.user_id FROM org_members m JOIN orgs o ON o.id = m.org_id \
             WHERE o.deleted_at IS NULL ORDER BY o.created, o.id, m.user_id",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let project_groups: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT a.id, a.org_id FROM admin_objects a JOIN orgs o ON o.id = a.org_id \
             WHERE a.kind = 'project_group' AND o.deleted_at IS NULL ORDER BY a.created, a.id",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let group_projects: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT m.group_id, m.project_id FROM project_group_projects m \
             JOIN admin_objects a ON a.id = m.group_id AND a.kind = 'project_group' \
             JOIN projects p ON p.id = m.project_id JOIN orgs o ON o.id = p.org_id \
             WHERE p.deleted_at IS NULL AND o.deleted_at IS NULL ORDER BY m.group_id, m.project_id",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        let ai_secrets: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT a.id, a.org_id FROM admin_objects a JOIN orgs o ON o.id = a.org_id \
             WHERE a.kind = 'ai_secret' AND o.deleted_at IS NULL ORDER BY a.created, a.id",
        )
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        Ok(AccessState {
            ai_secrets: ai_secrets.into_iter().map(|(g, o)| (g, OrgId(o))).collect(),
            project_groups: project_groups.into_iter().map(|(g, o)| (g, OrgId(o))).collect(),
            group_projects: group_projects.into_iter().map(|(g, p)| (g, ProjectId(p))).collect(),
            members: members.into_iter().map(|(o, u)| (OrgId(o), UserId(u))).collect(),
            revision: i64_to_rev(rev)?,
            orgs: orgs.into_iter().map(OrgId).collect(),
            projects: projects.into_iter().map(|(p, o)| (ProjectId(p), OrgId(o))).collect(),
            project_objects: objects
                .into_iter()
                .map(|(k, id, p)| {
                    let kind =
                        ObjectKind::parse(&k).ok_or_else(|| StoreError::Integrity("unreadable object kind".into()))?;
                    Ok((kind.object_type(), id, ProjectId(p)))
                })
                .collect::<StoreResult<Vec<_>>>()?,
            groups: groups.into_iter().map(|(g, o)| (GroupId(g), OrgId(o))).collect(),
            group_users: group_users.into_iter().map(|(g, u)| (GroupId(g), UserId(u))).collect(),
            group_groups: group_groups.into_iter().map(|(g, m)| (GroupId(g), GroupId(m))).collect(),
            roles: roles.into_iter().map(|(r, o)| (RoleId(r), o.map(OrgId))).collect(),
            role_permissions: role_perms
                .iter()
                .map(|(r, p, t)| Ok((RoleId(*r), role_permission(p, t)?)))
                .collect::<StoreResult<Vec<_>>>()?,
            role_roles: role_roles.into_iter().map(|(r, m)| (RoleId(r), RoleId(m))).collect(),
            acls: acls.iter().map(acl).collect::<StoreResult<Vec<_>>>()?,
        })
    }
}
