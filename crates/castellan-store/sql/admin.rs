//! Administration objects (`admin_objects`): environment variables and the other
//! named settings of an organization, a project or an object.

use crate::backend::{Db, DbRow, SqlTx};
use crate::{db_err, is_unique, rows};
use async_trait::async_trait;
use castellan_core::{ObjectRef, ObjectType, OrgId, ProjectId, UserId};
use castellan_store::page::Window;
use castellan_store::*;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use uuid::Uuid;

pub(crate) const COLS: &str = "id, kind, org_id, scope_type, scope_id, name, data, secret, secret_updated_at, \
                    secret_updated_by, created, updated";

#[derive(sqlx::FromRow)]
struct AdminRow {
    id: Uuid,
    kind: String,
    org_id: Uuid,
    scope_type: String,
    scope_id: Uuid,
    name: String,
    data: Json<serde_json::Value>,
    secret: Option<Vec<u8>>,
    secret_updated_at: Option<i64>,
    secret_updated_by: Option<Uuid>,
    created: i64,
    updated: i64,
}

pub(crate) fn admin(r: &DbRow) -> StoreResult<AdminRecord> {
    let a = AdminRow::from_row(r).map_err(db_err)?;
    let bad = |what: &str| StoreError::Integrity(format!("unreadable stored administration object {what}"));
    Ok(AdminRecord {
        id: a.id,
        kind: AdminKind::parse(&a.kind).ok_or_else(|| bad("kind"))?,
        org_id: OrgId(a.org_id),
        scope: ObjectRef::new(a.scope_type.parse::<ObjectType>().map_err(|_| bad("scope"))?, a.scope_id),
        name: a.name,
        data: a.data.0,
        secret: a.secret,
        secret_updated_at: a.secret_updated_at,
        secret_updated_by: a.secret_updated_by.map(UserId),
        created: a.created,
        updated: a.updated,
    })
}

fn conflict(e: sqlx::Error, a: &AdminRecord) -> StoreError {
    if is_unique(&e) {
        StoreError::Conflict(format!("a {} named `{}` already exists there", a.kind.as_str(), a.name))
    } else {
        db_err(e)
    }
}

#[async_trait]
impl AdminRepo for SqlTx {
    async fn insert_admin(&mut self, a: &AdminRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let sql =
            format!("INSERT INTO admin_objects ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
        self.exec_guarded(
            sqlx::query(&sql)
                .bind(a.id)
                .bind(a.kind.as_str())
                .bind(a.org_id.0)
                .bind(a.scope.object_type.as_str())
                .bind(a.scope.object_id)
                .bind(&a.name)
                .bind(Json(&a.data))
                .bind(&a.secret)
                .bind(a.secret_updated_at)
                .bind(a.secret_updated_by.map(|u| u.0))
                .bind(a.created)
                .bind(a.updated),
        )
        .await
        .map_err(|e| conflict(e, a))?;
        Ok(())
    }

    async fn get_admin(&mut self, id: Uuid) -> StoreResult<Option<AdminRecord>> {
        let sql = format!("SELECT {COLS} FROM admin_objects WHERE id = $1");
        let r = sqlx::query(&sql).bind(id).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| admin(&r)).transpose()
    }

    async fn find_admin(&mut self, kind: AdminKind, scope: ObjectRef, name: &str) -> StoreResult<Option<AdminRecord>> {
        let sql = format!(
            "SELECT {COLS} FROM admin_objects WHERE kind = $1 AND scope_type = $2 AND scope_id = $3 AND name = $4"
        );
        let r = sqlx::query(&sql)
            .bind(kind.as_str())
            .bind(scope.object_type.as_str())
            .bind(scope.object_id)
            .bind(name)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        r.map(|r| admin(&r)).transpose()
    }

    async fn update_admin(&mut self, a: &AdminRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let res = self
            .exec_guarded(
                sqlx::query(
                    "UPDATE admin_objects SET name = $1, data = $2, secret = $3, secret_updated_at = $4, \
                     secret_updated_by = $5, updated = $6 WHERE id = $7",
                )
                .bind(&a.name)
                .bind(Json(&a.data))
                .bind(&a.secret)
                .bind(a.secret_updated_at)
                .bind(a.secret_updated_by.map(|u| u.0))
                .bind(a.updated)
                .bind(a.id),
            )
            .await
            .map_err(|e| conflict(e, a))?;
        expect_touched(res.rows_affected(), || format!("{} `{}`", a.kind.as_str(), a.id))
    }

    async fn delete_admin(&mut self, id: Uuid) -> StoreResult<()> {
        self.ensure_writable()?;
        let res = sqlx::query("DELETE FROM admin_objects WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("administration object `{id}`"))
    }

    async fn list_admin(&mut self, f: &AdminFilter, w: &Window) -> StoreResult<Vec<AdminRecord>> {
        if f.orgs.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {COLS} FROM admin_objects WHERE kind = "));
        qb.push_bind(f.kind.as_str());
        let orgs: Vec<Uuid> = f.orgs.iter().map(|o| o.0).collect();
        rows::push_ids(&mut qb, "org_id", &orgs);
        rows::push_ids(&mut qb, "id", &f.ids);
        if let Some(t) = f.scope_type {
            qb.push(" AND scope_type = ").push_bind(t.as_str());
        }
        if let Some(id) = f.scope_id {
            qb.push(" AND scope_id = ").push_bind(id);
        }
        if let Some(n) = &f.name {
            qb.push(" AND name = ").push_bind(n.clone());
        }
        rows::push_window(&mut qb, "", w);
        let rs = qb.build().fetch_all(self.conn()).await.map_err(db_err)?;
        rs.iter().map(admin).collect()
    }

    async fn sealed_admin_page(&mut self, after: Option<Uuid>, limit: usize) -> StoreResult<Vec<AdminRecord>> {
        let sql = format!("SELECT {COLS} FROM admin_objects WHERE secret IS NOT NULL AND id > $1 ORDER BY id LIMIT $2");
        let rs = sqlx::query(&sql)
            .bind(after.unwrap_or_else(Uuid::nil))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.conn())
            .await
            .map_err(db_err)?;
        rs.iter().map(admin).collect()
    }

    async fn delete_admin_under(&mut self, scope: Uuid) -> StoreResult<Vec<AdminRecord>> {
        self.ensure_writable()?;
        let sql = format!(
            "DELETE FROM admin_objects WHERE org_id = $1 OR scope_id = $1 \
             OR scope_id IN (SELECT id FROM project_objects WHERE project_id = $1) RETURNING {COLS}"
        );
        let rs = sqlx::query(&sql).bind(scope).fetch_all(self.conn()).await.map_err(db_err)?;
        let mut out = rs.iter().map(admin).collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|a| (a.created, a.id));
        Ok(out)
    }

    async fn add_group_project(
        &mut self,
        group: Uuid,
        project: ProjectId,
        org: OrgId,
        at: Micros,
    ) -> StoreResult<bool> {
        self.ensure_writable()?;
        let res = sqlx::query(
            "INSERT INTO project_group_projects (group_id, project_id, org_id, created) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (group_id, project_id) DO NOTHING",
        )
        .bind(group)
        .bind(project.0)
        .bind(org.0)
        .bind(at)
        .execute(self.conn())
        .await
        .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn remove_group_project(&mut self, group: Uuid, project: ProjectId) -> StoreResult<bool> {
        self.ensure_writable()?;
        let res = sqlx::query("DELETE FROM project_group_projects WHERE group_id = $1 AND project_id = $2")
            .bind(group)
            .bind(project.0)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(res.rows_affected() > 0)
    }

    async fn group_project_ids(&mut self, group: Uuid) -> StoreResult<Vec<ProjectId>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT m.project_id FROM project_group_projects m JOIN projects p ON p.id = m.project_id \
             WHERE m.group_id = $1 AND p.deleted_at IS NULL ORDER BY m.project_id",
        )
        .bind(group)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        Ok(ids.into_iter().map(ProjectId).collect())
    }

    async fn delete_group_projects_of(&mut self, id: Uuid) -> StoreResult<Vec<(Uuid, ProjectId)>> {
        self.ensure_writable()?;
        let mut rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "DELETE FROM project_group_projects WHERE group_id = $1 OR project_id = $1 RETURNING group_id, project_id",
        )
        .bind(id)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        rows.sort();
        Ok(rows.into_iter().map(|(g, p)| (g, ProjectId(p))).collect())
    }
}
