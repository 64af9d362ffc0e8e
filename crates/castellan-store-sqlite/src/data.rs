//! The data plane on SQLite: objects inside projects, event logs and blobs.

use crate::tx::SqliteTx;
use crate::{conflict_or, db_err, is_unique, rows};
use async_trait::async_trait;
use castellan_core::{OrgId, ProjectId, UserId};
use castellan_store::page::Window;
use castellan_store::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, Transaction};
use uuid::Uuid;

const OBJECT_COLS: &str = "id, kind, project_id, org_id, name, slug, description, user_id, xact_id, data, created";
const BLOB_COLS: &str = "key, purpose, org_id, user_id, filename, content_type, status, size_bytes, created";
const EVENT_COLS: &str = "e.row_id, e.xact_id, e.project_id, e.deleted, e.data";
/// Rows per multi-row INSERT: 10 columns each stays far below SQLite's variable limit.
const INSERT_CHUNK: usize = 500;
/// Ids per `IN (…)` list.
const IN_CHUNK: usize = 500;

fn integrity(what: &str) -> StoreError {
    StoreError::Integrity(format!("unreadable stored {what}"))
}

fn object_conflict(e: sqlx::Error, o: &ObjectRecord) -> StoreError {
    if !is_unique(&e) {
        return db_err(e);
    }
    if e.to_string().contains("slug") {
        StoreError::Conflict(format!(
            "a prompt or function with slug `{}` already exists",
            o.slug.as_deref().unwrap_or("")
        ))
    } else {
        StoreError::Conflict(format!("a {} named `{}` already exists in this project", o.kind.as_str(), o.name))
    }
}

fn object(r: &SqliteRow) -> StoreResult<ObjectRecord> {
    let kind: String = r.try_get("kind").map_err(db_err)?;
    let data: String = r.try_get("data").map_err(db_err)?;
    Ok(ObjectRecord {
        id: r.try_get("id").map_err(db_err)?,
        kind: ObjectKind::parse(&kind).ok_or_else(|| integrity("object kind"))?,
        project_id: ProjectId(r.try_get("project_id").map_err(db_err)?),
        org_id: OrgId(r.try_get("org_id").map_err(db_err)?),
        name: r.try_get("name").map_err(db_err)?,
        slug: r.try_get("slug").map_err(db_err)?,
        description: r.try_get("description").map_err(db_err)?,
        user_id: r.try_get::<Option<Uuid>, _>("user_id").map_err(db_err)?.map(UserId),
        xact_id: r.try_get::<Option<i64>, _>("xact_id").map_err(db_err)?.map(XactId),
        data: serde_json::from_str(&data).map_err(|_| integrity("object data"))?,
        created: r.try_get("created").map_err(db_err)?,
    })
}

fn event(r: &SqliteRow) -> StoreResult<StoredEvent> {
    let data: String = r.try_get("data").map_err(db_err)?;
    Ok(StoredEvent {
        row_id: r.try_get("row_id").map_err(db_err)?,
        xact_id: XactId(r.try_get("xact_id").map_err(db_err)?),
        project_id: ProjectId(r.try_get("project_id").map_err(db_err)?),
        deleted: r.try_get("deleted").map_err(db_err)?,
        data: serde_json::from_str(&data).map_err(|_| integrity("event"))?,
    })
}

fn blob(r: &SqliteRow) -> StoreResult<BlobRecord> {
    let purpose: String = r.try_get("purpose").map_err(db_err)?;
    let status: String = r.try_get("status").map_err(db_err)?;
    Ok(BlobRecord {
        key: r.try_get("key").map_err(db_err)?,
        purpose: BlobPurpose::parse(&purpose).ok_or_else(|| integrity("blob purpose"))?,
        org_id: OrgId(r.try_get("org_id").map_err(db_err)?),
        user_id: UserId(r.try_get("user_id").map_err(db_err)?),
        filename: r.try_get("filename").map_err(db_err)?,
        content_type: r.try_get("content_type").map_err(db_err)?,
        status: serde_json::from_str(&status).map_err(|_| integrity("blob status"))?,
        size_bytes: r.try_get("size_bytes").map_err(db_err)?,
        created: r.try_get("created").map_err(db_err)?,
    })
}

/// "No newer version of this row at or before `version`", with the version bound last.
const NEWEST_AT: &str = " AND NOT EXISTS (SELECT 1 FROM events n WHERE n.object_kind = e.object_kind \
     AND n.object_id = e.object_id AND n.row_id = e.row_id AND n.xact_id > e.xact_id AND n.xact_id <= ";

async fn next_xact(conn: &mut SqliteConnection) -> StoreResult<XactId> {
    let v: i64 = sqlx::query_scalar("UPDATE xact_counter SET value = value + 1 WHERE id = 1 RETURNING value")
        .fetch_one(conn)
        .await
        .map_err(db_err)?;
    Ok(XactId(v))
}

#[async_trait]
impl ObjectRepo for SqliteTx {
    async fn insert_object(&mut self, o: &ObjectRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let sql = format!("INSERT INTO project_objects ({OBJECT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
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
            .bind(o.data.to_string())
            .bind(o.created)
            .execute(self.conn())
            .await
            .map_err(|e| object_conflict(e, o))?;
        Ok(())
    }

    async fn get_object(&mut self, id: Uuid) -> StoreResult<Option<ObjectRecord>> {
        let sql = format!("SELECT {OBJECT_COLS} FROM project_objects WHERE id = ? AND deleted_at IS NULL");
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
            "SELECT {OBJECT_COLS} FROM project_objects WHERE project_id = ? AND kind = ? AND name = ? \
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
            "SELECT {OBJECT_COLS} FROM project_objects WHERE project_id = ? AND slug = ? AND deleted_at IS NULL"
        );
        let r = sqlx::query(&sql).bind(project.0).bind(slug).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| object(&r)).transpose()
    }

    async fn update_object(&mut self, o: &ObjectRecord) -> StoreResult<()> {
        self.ensure_writable()?;
        let res = sqlx::query(
            "UPDATE project_objects SET kind = ?, name = ?, slug = ?, description = ?, user_id = ?, xact_id = ?, \
             data = ? WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(o.kind.as_str())
        .bind(&o.name)
        .bind(&o.slug)
        .bind(&o.description)
        .bind(o.user_id.map(|u| u.0))
        .bind(o.xact_id.map(|x| x.0))
        .bind(o.data.to_string())
        .bind(o.id)
        .execute(self.conn())
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
            QueryBuilder::<Sqlite>::new(format!("SELECT {OBJECT_COLS} FROM project_objects WHERE deleted_at IS NULL"));
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
        let record = serde_json::to_string(o).map_err(|e| StoreError::Integrity(e.to_string()))?;
        sqlx::query("INSERT INTO object_versions (object_id, xact_id, record) VALUES (?, ?, ?)")
            .bind(o.id)
            .bind(xact.0)
            .bind(record)
            .execute(self.conn())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_object_version(&mut self, id: Uuid, xact: XactId) -> StoreResult<Option<ObjectRecord>> {
        let rec: Option<String> = sqlx::query_scalar(
            "SELECT record FROM object_versions WHERE object_id = ? AND xact_id <= ? ORDER BY xact_id DESC LIMIT 1",
        )
        .bind(id)
        .bind(xact.0)
        .fetch_optional(self.conn())
        .await
        .map_err(db_err)?;
        rec.map(|s| serde_json::from_str(&s).map_err(|_| integrity("object version"))).transpose()
    }

    async fn next_xact_id(&mut self) -> StoreResult<XactId> {
        self.ensure_writable()?;
        next_xact(self.conn()).await
    }
}

#[async_trait]
impl EventRepo for SqliteTx {
    async fn current_xact_id(&mut self) -> StoreResult<XactId> {
        let v: i64 = sqlx::query_scalar("SELECT value FROM xact_counter WHERE id = 1")
            .fetch_one(self.conn())
            .await
            .map_err(db_err)?;
        Ok(XactId(v))
    }

    async fn fetch_events(&mut self, q: &EventQuery) -> StoreResult<Vec<StoredEvent>> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {EVENT_COLS} FROM events e WHERE e.object_kind = "));
        qb.push_bind(q.object.kind.as_str()).push(" AND e.object_id = ").push_bind(q.object.id);
        qb.push(" AND e.xact_id <= ").push_bind(q.version.0);
        qb.push(" AND e.deleted = 0 AND e.is_comment = 0");
        if let Some((x, row)) = &q.after {
            qb.push(" AND (e.xact_id, e.row_id) < (").push_bind(x.0).push(", ").push_bind(row.clone()).push(")");
        }
        qb.push(NEWEST_AT).push_bind(q.version.0).push(")");
        qb.push(" ORDER BY e.xact_id DESC, e.row_id DESC LIMIT ").push_bind(q.limit as i64);
        let rs = qb.build().fetch_all(self.conn()).await.map_err(db_err)?;
        rs.iter().map(event).collect()
    }

    async fn count_events(&mut self, object: EventObject) -> StoreResult<u64> {
        let sql = "SELECT COUNT(*) FROM events e WHERE e.object_kind = ? AND e.object_id = ? AND e.deleted = 0 \
             AND e.is_comment = 0 AND NOT EXISTS (SELECT 1 FROM events n WHERE n.object_kind = e.object_kind \
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
        let sql = format!("SELECT {BLOB_COLS} FROM blobs WHERE key = ?");
        let r = sqlx::query(&sql).bind(key).fetch_optional(self.conn()).await.map_err(db_err)?;
        r.map(|r| blob(&r)).transpose()
    }

    async fn get_blob_data(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let d: Option<Option<Vec<u8>>> = sqlx::query_scalar("SELECT data FROM blobs WHERE key = ?")
            .bind(key)
            .fetch_optional(self.conn())
            .await
            .map_err(db_err)?;
        Ok(d.flatten())
    }

    async fn attachment_refs(&mut self, key: &str) -> StoreResult<Vec<EventObject>> {
        let rs: Vec<(String, Uuid)> = sqlx::query_as(
            "SELECT object_kind, object_id FROM attachment_refs WHERE key = ? ORDER BY object_kind, object_id",
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

/// A data-plane write transaction on the SQLite store (on the one writer connection).
pub struct SqliteDataTx {
    tx: Transaction<'static, Sqlite>,
}

impl SqliteDataTx {
    pub(crate) fn new(tx: Transaction<'static, Sqlite>) -> Self {
        SqliteDataTx { tx }
    }
}

#[async_trait]
impl DataTx for SqliteDataTx {
    async fn next_xact_id(&mut self) -> StoreResult<XactId> {
        next_xact(&mut self.tx).await
    }

    async fn latest_events(&mut self, object: EventObject, row_ids: &[String]) -> StoreResult<Vec<StoredEvent>> {
        // The transaction began IMMEDIATE: it holds the database's write lock already.
        let mut out = Vec::new();
        for chunk in row_ids.chunks(IN_CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new(format!("SELECT {EVENT_COLS} FROM events e WHERE e.object_kind = "));
            qb.push_bind(object.kind.as_str()).push(" AND e.object_id = ").push_bind(object.id);
            rows::push_texts(&mut qb, "e.row_id", chunk);
            qb.push(
                " AND NOT EXISTS (SELECT 1 FROM events n WHERE n.object_kind = e.object_kind \
                 AND n.object_id = e.object_id AND n.row_id = e.row_id AND n.xact_id > e.xact_id)",
            );
            let rs = qb.build().fetch_all(&mut *self.tx).await.map_err(db_err)?;
            for r in &rs {
                out.push(event(r)?);
            }
        }
        Ok(out)
    }

    async fn insert_events(&mut self, xact: XactId, rows: &[EventWrite]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        for chunk in rows.chunks(INSERT_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO events (object_kind, object_id, row_id, xact_id, project_id, root_span_id, is_root, \
                 deleted, is_comment, data) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.object.kind.as_str())
                    .push_bind(r.object.id)
                    .push_bind(r.row_id.as_str())
                    .push_bind(xact.0)
                    .push_bind(r.project_id.0)
                    .push_bind(r.root_span_id.as_deref())
                    .push_bind(r.is_root)
                    .push_bind(r.deleted)
                    .push_bind(r.is_comment)
                    .push_bind(r.data.as_str());
            });
            qb.build().execute(&mut *self.tx).await.map_err(db_err)?;
        }
        Ok(())
    }

    async fn insert_attachment_refs(&mut self, object: EventObject, keys: &[String]) -> StoreResult<()> {
        for chunk in keys.chunks(IN_CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("INSERT OR IGNORE INTO attachment_refs (key, object_kind, object_id) ");
            qb.push_values(chunk, |mut b, k| {
                b.push_bind(k.as_str()).push_bind(object.kind.as_str()).push_bind(object.id);
            });
            qb.build().execute(&mut *self.tx).await.map_err(db_err)?;
        }
        Ok(())
    }

    async fn insert_blob(&mut self, b: &BlobRecord) -> StoreResult<()> {
        let sql = format!("INSERT INTO blobs ({BLOB_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        sqlx::query(&sql)
            .bind(&b.key)
            .bind(b.purpose.as_str())
            .bind(b.org_id.0)
            .bind(b.user_id.0)
            .bind(&b.filename)
            .bind(&b.content_type)
            .bind(b.status.to_string())
            .bind(b.size_bytes)
            .bind(b.created)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| conflict_or(e, || format!("key `{}` is already in use", b.key)))?;
        Ok(())
    }

    async fn put_blob_data(&mut self, key: &str, data: &[u8]) -> StoreResult<()> {
        let res = sqlx::query("UPDATE blobs SET data = ?, size_bytes = ? WHERE key = ?")
            .bind(data)
            .bind(data.len() as i64)
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("blob `{key}`"))
    }

    async fn set_blob_status(&mut self, key: &str, status: &serde_json::Value) -> StoreResult<()> {
        let res = sqlx::query("UPDATE blobs SET status = ? WHERE key = ?")
            .bind(status.to_string())
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("blob `{key}`"))
    }

    async fn delete_blob(&mut self, key: &str) -> StoreResult<()> {
        let res =
            sqlx::query("DELETE FROM blobs WHERE key = ?").bind(key).execute(&mut *self.tx).await.map_err(db_err)?;
        expect_touched(res.rows_affected(), || format!("blob `{key}`"))
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(db_err)
    }
}
