//! Objects inside projects, event logs and blobs, as read and written through a
//! repository transaction. The data-plane write path (`DataTx`: batched event
//! inserts) stays in each backend, where the two dialects differ.

use crate::backend::{Db, DbRow, SqlTx};
use crate::{db_err, is_unique, rows};
use async_trait::async_trait;
use castellan_core::{OrgId, ProjectId, UserId};
use castellan_store::page::Window;
use castellan_store::*;
use sqlx::types::Json;
use sqlx::{FromRow, QueryBuilder};
use uuid::Uuid;

pub(crate) const OBJECT_COLS: &str =
    "id, kind, project_id, org_id, name, slug, description, user_id, xact_id, data, created";
pub(crate) const BLOB_COLS: &str = "key, purpose, org_id, user_id, filename, content_type, status, size_bytes, created";
pub(crate) const EVENT_COLS: &str = "e.row_id, e.xact_id, e.project_id, e.deleted, e.data";

fn integrity(what: &str) -> StoreError {
    StoreError::Integrity(format!("unreadable stored {what}"))
}

fn object_conflict(e: sqlx::Error, o: &ObjectRecord) -> StoreError {
    if !is_unique(&e) {
        return db_err(e);
    }
    // PostgreSQL names the violated constraint; SQLite names the columns in its message.
    let on_slug = e.as_database_error().and_then(|d| d.constraint()).is_some_and(|c| c.contains("slug"))
        || e.to_string().contains("slug");
    if on_slug {
        StoreError::Conflict(format!(
            "a prompt or function with slug `{}` already exists",
            o.slug.as_deref().unwrap_or("")
        ))
    } else {
        StoreError::Conflict(format!("a {} named `{}` already exists in this project", o.kind.as_str(), o.name))
    }
}

#[derive(sqlx::FromRow)]
struct ObjectRow {
    id: Uuid,
    kind: String,
    project_id: Uuid,
    org_id: Uuid,
    name: String,
    slug: Option<String>,
    description: Option<String>,
    user_id: Option<Uuid>,
    xact_id: Option<i64>,
    data: Json<serde_json::Value>,
    created: i64,
}

fn object(r: &DbRow) -> StoreResult<ObjectRecord> {
    let o = ObjectRow::from_row(r).map_err(db_err)?;
    Ok(ObjectRecord {
        id: o.id,
        kind: ObjectKind::parse(&o.kind).ok_or_else(|| integrity("object kind"))?,
        project_id: ProjectId(o.project_id),
        org_id: OrgId(o.org_id),
        name: o.name,
        slug: o.slug,
        description: o.description,
        user_id: o.user_id.map(UserId),
        xact_id: o.xact_id.map(XactId),
        data: o.data.0,
        created: o.created,
    })
}

#[derive(sqlx::FromRow)]
struct EventRow {
    row_id: String,
    xact_id: i64,
    project_id: Uuid,
    deleted: bool,
    data: Json<serde_json::Value>,
}

pub(crate) fn event(r: &DbRow) -> StoreResult<StoredEvent> {
    let e = EventRow::from_row(r).map_err(db_err)?;
    Ok(StoredEvent {
        row_id: e.row_id,
        xact_id: XactId(e.xact_id),
        project_id: ProjectId(e.project_id),
        deleted: e.deleted,
        data: e.data.0,
    })
}

#[derive(sqlx::FromRow)]
struct BlobRow {
    key: String,
    purpose: String,
    org_id: Uuid,
    user_id: Uuid,
    filename: Option<String>,
    content_type: Option<String>,
    status: Json<serde_json::Value>,
    size_bytes: Option<i64>,
    created: i64,
}

fn blob(r: &DbRow) -> StoreResult<BlobRecord> {
    let b = BlobRow::from_row(r).map_err(db_err)?;
    Ok(BlobRecord {
        key: b.key,
        purpose: BlobPurpose::parse(&b.purpose).ok_or_else(|| integrity("blob purpose"))?,
        org_id: OrgId(b.org_id),
        user_id: UserId(b.user_id),
        filename: b.filename,
        content_type: b.content_type,
        status: b.status.0,
        size_bytes: b.size_bytes,
        created: b.created,
    })
}

/// "No newer version of this row at or before `version`", with the version bound last.
const NEWEST_AT: &str = " AND NOT EXISTS (SELECT 1 FROM events n WHERE n.object_kind = e.object_kind \
     AND n.object_id = e.object_id AND n.row_id = e.row_id AND n.xact_id > e.xact_id AND n.xact_id <= ";

#[async_trait]
impl ObjectRepo for SqlTx {
    async fn insert_object(&mut self, o: &ObjectRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let sql = format!(
            "INSERT INTO project_objects ({OBJECT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        self.exec_guarded(
            sqlx::query(&sql)
                .bind(o.id)
                .bind(o.kind.as_str())
                .bind(o.project_id.0)
                .bind(o.org_id.0)
                .bind(&o.name)
                .bind(&o.slug)
                .bind(&o.description)
                .bind(o.user_id.map(|u| u.0))
                .bind(o.xact_id.map(|x| x.0))
                .bind(Json(&o.data))
                .bind(o.created),
        )
        .await
        .map_err(|e| object_conflict(e, o))?;
        Ok(())
    }

    async fn get_object(&mut self, id: Uuid) -> StoreResult<Option<ObjectRecord>> {
        let sql = format!("SELECT {OBJECT_COLS} FROM project_objects WHERE id = $1 AND deleted_at IS NULL");
        let r = sqlx::query(&sql).bind(id).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| object(&r)).transpose()
    }

    async fn find_object_by_name(
        &mut self,
        project: ProjectId,
        kind: ObjectKind,
        name: &str,
    ) -> StoreResult<Option<ObjectRecord>> {
        let sql = format!(
            "SELECT {OBJECT_COLS} FROM project_objects WHERE project_id = $1 AND kind = $2 AND name = $3 \
             AND deleted_at IS NULL ORDER BY created DESC, id DESC LIMIT 1"
        );
        let r = sqlx::query(&sql)
            .bind(project.0)
            .bind(kind.as_str())
            .bind(name)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        r.map(|r| object(&r)).transpose()
    }

    async fn find_object_by_slug(&mut self, project: ProjectId, slug: &str) -> StoreResult<Option<ObjectRecord>> {
        let sql = format!(
            "SELECT {OBJECT_COLS} FROM project_objects WHERE project_id = $1 AND slug = $2 AND deleted_at IS NULL"
        );
        let r = sqlx::query(&sql).bind(project.0).bind(slug).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| object(&r)).transpose()
    }

    async fn update_object(&mut self, o: &ObjectRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let res = self
            .exec_guarded(
                sqlx::query(
                    "UPDATE project_objects SET kind = $1, name = $2, slug = $3, description = $4, user_id = $5, \
                     xact_id = $6, data = $7 WHERE id = $8 AND deleted_at IS NULL",
                )
                .bind(o.kind.as_str())
                .bind(&o.name)
                .bind(&o.slug)
                .bind(&o.description)
                .bind(o.user_id.map(|u| u.0))
                .bind(o.xact_id.map(|x| x.0))
                .bind(Json(&o.data))
                .bind(o.id),
            )
            .await
            .map_err(|e| object_conflict(e, o))?;
        expect_touched(res.rows_affected(), || format!("{} `{}`", o.kind.as_str(), o.id))
    }

    async fn delete_object(&mut self, id: Uuid, at: Micros) -> StoreResult<()> {
        self.soft_delete("project_objects", id, at, || format!("object `{id}`")).await
    }

    async fn list_objects(&mut self, f: &ObjectFilter, w: &Window) -> StoreResult<Vec<ObjectRecord>> {
        if f.kinds.is_empty() || f.orgs.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb =
            QueryBuilder::<Db>::new(format!("SELECT {OBJECT_COLS} FROM project_objects WHERE deleted_at IS NULL"));
        let kinds: Vec<String> = f.kinds.iter().map(|k| k.as_str().to_owned()).collect();
        rows::push_texts(&mut qb, "kind", &kinds);
        let orgs: Vec<Uuid> = f.orgs.iter().map(|o| o.0).collect();
        rows::push_ids(&mut qb, "org_id", &orgs);
        let projects: Vec<Uuid> = f.projects.iter().map(|p| p.0).collect();
        rows::push_ids(&mut qb, "project_id", &projects);
        rows::push_ids(&mut qb, "id", &f.ids);
        if let Some(n) = &f.name {
            qb.push(" AND name = ").push_bind(n.clone());
        }
        if let Some(s) = &f.slug {
            qb.push(" AND slug = ").push_bind(s.clone());
        }
        rows::push_window(&mut qb, "", w);
        let rs = qb.build().fetch_all(self.conn()).await.map_err(db_err)?;
        rs.iter().map(object).collect()
    }

    async fn insert_object_version(&mut self, o: &ObjectRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let xact = o.xact_id.ok_or_else(|| StoreError::Integrity("a version needs a transaction id".into()))?;
        sqlx::query("INSERT INTO object_versions (object_id, xact_id, record) VALUES ($1, $2, $3)")
            .bind(o.id)
            .bind(xact.0)
            .bind(Json(o))
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_object_version(&mut self, id: Uuid, xact: XactId) -> StoreResult<Option<ObjectRecord>> {
        let rec: Option<Json<ObjectRecord>> = sqlx::query_scalar(
            "SELECT record FROM object_versions WHERE object_id = $1 AND xact_id <= $2 ORDER BY xact_id DESC LIMIT 1",
        )
        .bind(id)
        .bind(xact.0)
        .fetch_optional(self.conn())
        .await
        .map_err(|_| integrity("object version"))?;
        Ok(rec.map(|j| j.0))
    }

    async fn next_xact_id(&mut self) -> StoreResult<XactId> {
        self.ensure_writable()?;
        crate::data::next_xact(self.conn()).await
    }
}

#[async_trait]
impl EventRepo for SqlTx {
    async fn current_xact_id(&mut self) -> StoreResult<XactId> {
        // Writers hold the counter row until they commit, so the committed value is
        // the newest transaction whose rows are all visible.
        let v: i64 = sqlx::query_scalar("SELECT value FROM xact_counter WHERE id = 1")
            .fetch_one(self.conn())
            .await
            .map_err(db_err)?;
        Ok(XactId(v))
    }

    async fn fetch_events(&mut self, q: &EventQuery) -> StoreResult<Vec<StoredEvent>> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {EVENT_COLS} FROM events e WHERE e.object_kind = "));
        qb.push_bind(q.object.kind.as_str()).push(" AND e.object_id = ").push_bind(q.object.id);
        qb.push(" AND e.xact_id <= ").push_bind(q.version.0);
        qb.push(" AND NOT e.deleted AND NOT e.is_comment");
        if let Some((x, row)) = &q.after {
            qb.push(" AND (e.xact_id, e.row_id) < (").push_bind(x.0).push(", ").push_bind(row.clone()).push(")");
        }
        qb.push(NEWEST_AT).push_bind(q.version.0).push(")");
        qb.push(" ORDER BY e.xact_id DESC, e.row_id DESC LIMIT ").push_bind(q.limit as i64);
        let rs = qb.build().fetch_all(self.conn()).await.map_err(db_err)?;
        rs.iter().map(event).collect()
    }

    async fn search_events(&mut self, q: &EventSearch) -> StoreResult<Vec<FoundEvent>> {
        super::btql::search(self.conn(), q).await
    }

    fn pushable(&self, e: &castellan_btql::Expr) -> bool {
        super::btql::pushable(e)
    }

    async fn count_events(&mut self, object: EventObject) -> StoreResult<u64> {
        let sql = "SELECT COUNT(*) FROM events e WHERE e.object_kind = $1 AND e.object_id = $2 AND NOT e.deleted \
             AND NOT e.is_comment AND NOT EXISTS (SELECT 1 FROM events n WHERE n.object_kind = e.object_kind \
             AND n.object_id = e.object_id AND n.row_id = e.row_id AND n.xact_id > e.xact_id)";
        let n: i64 = sqlx::query_scalar(sql)
            .bind(object.kind.as_str())
            .bind(object.id)
            .fetch_one(self.conn())
            .await
            .map_err(db_err)?;
        Ok(n.max(0) as u64)
    }

    async fn get_blob(&mut self, key: &str) -> StoreResult<Option<BlobRecord>> {
        let sql = format!("SELECT {BLOB_COLS} FROM blobs WHERE key = $1");
        let r = sqlx::query(&sql).bind(key).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| blob(&r)).transpose()
    }

    async fn get_blob_data(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let d: Option<Option<Vec<u8>>> = sqlx::query_scalar("SELECT data FROM blobs WHERE key = $1")
            .bind(key)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        Ok(d.flatten())
    }

    async fn attachment_refs(&mut self, key: &str) -> StoreResult<Vec<EventObject>> {
        let rs: Vec<(String, Uuid)> = sqlx::query_as(
            "SELECT object_kind, object_id FROM attachment_refs WHERE key = $1 ORDER BY object_kind, object_id",
        )
        .bind(key)
        .fetch_all(self.conn())
        .await
        .map_err(db_err)?;
        rs.into_iter()
            .map(|(k, id)| Ok(EventObject { kind: EventKind::parse(&k).ok_or_else(|| integrity("event kind"))?, id }))
            .collect()
    }
}
