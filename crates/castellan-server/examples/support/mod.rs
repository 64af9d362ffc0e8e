//! What the load scripts share: opening a bench database, SDK-shaped spans, writing
//! many of them straight through the store, percentiles.

use castellan_core::ProjectId;
use castellan_store::{EventObject, EventWrite, Store};
use std::sync::Arc;
use std::time::Duration;

const MODELS: [&str; 10] = [
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "o3-mini",
    "claude-sonnet",
    "claude-haiku",
    "gemini-pro",
    "gemini-flash",
    "llama-70b",
    "mistral-large",
];

/// One SDK-shaped span's stored fields (without the routing keys), about 900 bytes:
/// input messages, output, metadata with a model among 10, a user among 1000 and an
/// env (`prod` for even `n`), scores, metrics, span attributes, context.
pub fn span(n: u64) -> String {
    format!(
        r#"{{"span_id":"{n:016x}","root_span_id":"{r:032x}","span_parents":null,"created":"2026-11-23T14:16:12.470123+00:00","input":{{"messages":[{{"role":"system","content":"You are a careful assistant that answers arithmetic questions."}},{{"role":"user","content":"What is {n} + 2?"}}]}},"output":{{"role":"assistant","content":"The answer is {m}."}},"metadata":{{"model":"{model}","user_id":"user-{u}","session":"s-{s}","env":"{env}"}},"metrics":{{"start":1795443372.470123,"end":1795443372.610456,"prompt_tokens":42,"completion_tokens":7,"tokens":49}},"scores":{{"accuracy":{acc}}},"span_attributes":{{"name":"chat","type":"llm","exec_counter":{n}}},"context":{{"caller_functionname":"answer","caller_filename":"/srv/app/handlers.py","caller_lineno":118,"span_origin":{{"name":"braintrust.sdk.python","version":"0.48.1"}}}}}}"#,
        r = n / 4,
        m = n + 2,
        model = MODELS[(n % 10) as usize],
        u = n % 1000,
        s = n % 97,
        env = if n.is_multiple_of(2) { "prod" } else { "dev" },
        acc = (n % 100) as f64 / 100.0,
    )
}

/// Opens the bench database: a SQLite file in `dir`, or a fresh schema on the
/// PostgreSQL server at `postgres_url` (returned with the store).
pub async fn open(
    backend: &str,
    postgres_url: &str,
    dir: &std::path::Path,
) -> Result<(Arc<dyn Store>, Option<String>), String> {
    match backend {
        "sqlite" => Ok((
            Arc::new(
                castellan_store_sqlite::SqliteStore::open(&dir.join("bench.sqlite"))
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            None,
        )),
        "postgres" => {
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let store = castellan_store_postgres::PgStore::connect(postgres_url, Some(&schema))
                .await
                .map_err(|e| e.to_string())?;
            Ok((Arc::new(store), Some(schema)))
        }
        other => Err(format!("unknown backend `{other}`; use sqlite or postgres")),
    }
}

/// Brings a PostgreSQL schema just filled in bulk to the state a server that
/// wrote those rows over weeks is in: vacuumed (autovacuum has long since set the
/// pages all-visible and frozen them) and checkpointed. Without it the first
/// minutes after a bulk fill are autovacuum rewriting every page of it and
/// checkpoints writing them out, which is the fill's cost, not what comes next.
pub async fn settle_postgres(postgres_url: &str, schema: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(postgres_url).await.map_err(|e| e.to_string())?;
    for stmt in [format!("VACUUM (FREEZE, ANALYZE) {schema}.events"), "CHECKPOINT".to_owned()] {
        sqlx::query(&stmt).execute(&mut conn).await.map_err(|e| format!("{stmt}: {e}"))?;
    }
    Ok(())
}

pub fn pct(lat: &[Duration], p: f64) -> f64 {
    lat.get(((lat.len() as f64 - 1.0) * p) as usize).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// Writes spans `from..to` into `log` straight through the store, 5,000 per
/// transaction; `data` makes each row's stored JSON.
pub async fn fill(
    store: &dyn Store,
    log: EventObject,
    from: u64,
    to: u64,
    data: impl Fn(u64) -> String,
) -> Result<(), String> {
    let per_tx = 5000u64;
    let mut n = from;
    while n < to {
        let mut tx = store.data_write().await.map_err(|e| e.to_string())?;
        let xact = tx.next_xact_id().await.map_err(|e| e.to_string())?;
        let rows: Vec<EventWrite> = (n..(n + per_tx).min(to))
            .map(|i| EventWrite {
                object: log,
                project_id: ProjectId(log.id),
                row_id: format!("{i:032x}"),
                root_span_id: Some(format!("{:032x}", i / 4)),
                span_id: Some(format!("{i:032x}")),
                is_root: true,
                deleted: false,
                is_comment: false,
                data: data(i),
            })
            .collect();
        tx.insert_events(xact, &rows).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        n += per_tx;
    }
    Ok(())
}
