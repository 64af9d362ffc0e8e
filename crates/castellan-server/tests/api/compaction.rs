//! Retention's deleted rows leave the database files: on SQLite at once (deleted
//! content is overwritten, and a checkpoint empties the WAL), on PostgreSQL after
//! `castellan maintenance compact` (`Store::compact`: `VACUUM FULL` of the log tables
//! and a checkpoint), checked by scanning the files themselves. On PostgreSQL the
//! scan reads the server's data directory, so the server must be on this machine (as
//! `scripts/test` runs it).

use crate::common;

use common::{Backend, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

on_both_backends!(swept_rows_leave_the_database_files_after_compaction);

/// The bytes of the files holding the `events` table (heap and TOAST, every segment;
/// PostgreSQL), or of the database and its WAL (SQLite), after a checkpoint.
async fn files(db: &Db) -> Vec<u8> {
    match db {
        Db::Sqlite(path) => {
            use sqlx::ConnectOptions;
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.expect("connect");
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await.expect("checkpoint");
            let mut bytes = std::fs::read(path).expect("db");
            bytes.extend(std::fs::read(path.with_extension("sqlite-wal")).unwrap_or_default());
            bytes
        }
        Db::Postgres { url, schema } => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            sqlx::query("CHECKPOINT").execute(&pool).await.expect("checkpoint (the test role is a superuser)");
            let dir: String = sqlx::query_scalar("SHOW data_directory").fetch_one(&pool).await.expect("data dir");
            let rel = format!("{schema}.events");
            let paths: Vec<Option<String>> = sqlx::query_scalar(
                "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.oid = $1::regclass \
                 UNION ALL SELECT pg_relation_filepath(c.reltoastrelid) FROM pg_class c \
                 WHERE c.oid = $1::regclass AND c.reltoastrelid <> 0",
            )
            .bind(&rel)
            .fetch_all(&pool)
            .await
            .expect("file paths");
            let mut bytes = Vec::new();
            for p in paths.into_iter().flatten() {
                let base = std::path::Path::new(&dir).join(&p);
                bytes.extend(std::fs::read(&base).unwrap_or_else(|e| panic!("read {}: {e}", base.display())));
                for seg in 1.. {
                    match std::fs::read(format!("{}.{seg}", base.display())) {
                        Ok(b) => bytes.extend(b),
                        Err(_) => break,
                    }
                }
            }
            pool.close().await;
            bytes
        }
    }
}

fn count(bytes: &[u8], needle: &str) -> usize {
    bytes.windows(needle.len()).filter(|w| *w == needle.as_bytes()).count()
}

async fn swept_rows_leave_the_database_files_after_compaction(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (s, p) = app.post("/v1/project", &owner, json!({"name": "p"})).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let p = p["id"].as_str().expect("id").to_owned();
    let (old, live) = ("swept-marker-93be1c", "kept-marker-0d4f27");
    let rows: Vec<Value> = (0..200)
        .map(|i| json!({"id": format!("old-{i}"), "input": old, "created": "2020-01-01T00:00:00Z"}))
        .chain((0..20).map(|i| json!({"id": format!("new-{i}"), "input": live})))
        .collect();
    let (s, v) = app.post(&format!("/v1/project_logs/{p}/insert"), &owner, json!({"events": rows})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let before = files(&app.db).await;
    assert!(count(&before, old) >= 200 && count(&before, live) >= 20, "the scan finds the rows");
    let (_, rule) = app
        .post(
            "/v1/project_automation",
            &owner,
            json!({"project_id": p, "name": "keep-30", "config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 30}}),
        )
        .await;
    let rid = rule["id"].as_str().expect("rule").to_owned();
    let (s, run) = app.post(&format!("/v1/project_automation/{rid}/run"), &owner, json!({})).await;
    assert_eq!((s, run["count"].as_i64()), (StatusCode::OK, Some(200)), "{run}");
    let swept = files(&app.db).await;
    match b {
        // Overwritten on delete: gone at once.
        Backend::Sqlite => assert_eq!(count(&swept, old), 0, "SQLite overwrites deleted rows"),
        // Dead tuples keep their bytes until the table is rewritten.
        Backend::Postgres => assert!(count(&swept, old) > 0, "PostgreSQL keeps dead tuples' bytes until compaction"),
    }
    let store = app.db.open().await;
    let done = store.compact().await.expect("compact");
    assert!(!done.is_empty() && done.iter().all(|c| c.bytes_before > 0 && c.bytes_after > 0), "{done:?}");
    if b == Backend::Postgres {
        let events = done.iter().find(|c| c.what == "events").expect("events compacted");
        assert!(events.bytes_after <= events.bytes_before, "the rewrite does not grow the table: {events:?}");
    }
    // PostgreSQL's rewrite keeps a dead row that a transaction still open anywhere
    // in the database could see (the other tests share the server): compacting
    // again once those have ended drops it. Bounded: a row that stays fails.
    let mut after = files(&app.db).await;
    for _ in 0..40 {
        if count(&after, old) == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        store.compact().await.expect("compact again");
        after = files(&app.db).await;
    }
    store.close().await;
    assert_eq!(count(&after, old), 0, "swept rows are gone from the files");
    assert!(count(&after, live) >= 20, "live rows are still there");
    // The server goes on serving after the rewrite.
    let (s, v) = app.post(&format!("/v1/project_logs/{p}/fetch"), &owner, json!({"limit": 100})).await;
    assert_eq!((s, v["events"].as_array().map(Vec::len)), (StatusCode::OK, Some(20)), "{v}");
    app.stop().await;
}
