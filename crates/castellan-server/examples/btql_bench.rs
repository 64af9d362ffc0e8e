//! BTQL first-page latency over a large project log, against a real server over
//! real HTTP, with the baseline measured in the same run on the same database: the
//! unfiltered first page of 100 (through `/btql`, and through `fetch`).
//!
//! A load script, not a test:
//!
//! ```sh
//! cargo run --release -p castellan-server --example btql_bench -- --rows 1000000
//! cargo run --release -p castellan-server --example btql_bench -- --backend postgres \
//!     --postgres-url postgres://postgres:postgres@localhost/castellan_test --rows 200000
//! ```
//!
//! The rows are written straight through the store (SDK-shaped spans of about 900
//! bytes: input messages, output, metadata with a model among 10 and a user among
//! 1000, scores, metrics, span attributes, context), then each query runs
//! `--iterations` times, one at a time, after three warm-up runs.

use castellan_core::ProjectId;
use castellan_server::access::system_clock;
use castellan_server::config::Config;
use castellan_server::serve::start_with_state;
use castellan_store::{EventKind, EventObject, EventWrite, Store};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    backend: String,
    postgres_url: String,
    rows: u64,
    iterations: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        backend: "sqlite".into(),
        postgres_url: std::env::var("CASTELLAN_TEST_POSTGRES_URL").unwrap_or_default(),
        rows: 1_000_000,
        iterations: 50,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--backend" => a.backend = value()?,
            "--postgres-url" => a.postgres_url = value()?,
            "--rows" => a.rows = value()?.parse().map_err(|e| format!("--rows: {e}"))?,
            "--iterations" => a.iterations = value()?.parse().map_err(|e| format!("--iterations: {e}"))?,
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    Ok(a)
}

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

/// One SDK-shaped span's stored fields (without the routing keys).
fn span(n: u64) -> String {
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

async fn open(a: &Args, dir: &std::path::Path) -> Result<Arc<dyn Store>, String> {
    match a.backend.as_str() {
        "sqlite" => Ok(Arc::new(
            castellan_store_sqlite::SqliteStore::open(&dir.join("bench.sqlite")).await.map_err(|e| e.to_string())?,
        )),
        "postgres" => {
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            Ok(Arc::new(
                castellan_store_postgres::PgStore::connect(&a.postgres_url, Some(&schema))
                    .await
                    .map_err(|e| e.to_string())?,
            ))
        }
        other => Err(format!("unknown backend `{other}`; use sqlite or postgres")),
    }
}

fn pct(lat: &[Duration], p: f64) -> f64 {
    lat.get(((lat.len() as f64 - 1.0) * p) as usize).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = args()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = open(&a, dir.path()).await?;
    let config = Config {
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let (state, system) =
        castellan_server::serve::prepare(store.clone(), config, system_clock()).await.map_err(|e| e.to_string())?;
    let running = start_with_state(state.clone()).await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", running.addr);
    let key = castellan_server::seed::bootstrap(&state, &system, "bench", "bench@example.com")
        .await
        .map_err(|e| e.to_string())?
        .api_key;
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| http.post(format!("{base}{path}")).bearer_auth(&key).json(&body).send();
    let project: Value = post("/v1/project".into(), json!({"name": "bench"}))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let pid = project["id"].as_str().ok_or("no project id")?.to_owned();
    let log = EventObject { kind: EventKind::ProjectLogs, id: uuid::Uuid::parse_str(&pid).map_err(|e| e.to_string())? };

    let started = Instant::now();
    let per_tx = 5000u64;
    let mut n = 0u64;
    while n < a.rows {
        let mut tx = store.data_write().await.map_err(|e| e.to_string())?;
        let xact = tx.next_xact_id().await.map_err(|e| e.to_string())?;
        let rows: Vec<EventWrite> = (n..(n + per_tx).min(a.rows))
            .map(|i| EventWrite {
                object: log,
                project_id: ProjectId(log.id),
                row_id: format!("{i:032x}"),
                root_span_id: Some(format!("{:032x}", i / 4)),
                is_root: true,
                deleted: false,
                is_comment: false,
                data: span(i),
            })
            .collect();
        tx.insert_events(xact, &rows).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        n += per_tx;
    }
    eprintln!("wrote {} rows in {:.1} s", a.rows, started.elapsed().as_secs_f64());

    let from = json!({"op": "function", "name": {"op": "ident", "name": ["project_logs"]}, "args": [{"op": "literal", "value": pid}]});
    let eq = |path: &[&str], v: Value| json!({"op": "eq", "left": {"op": "ident", "name": path}, "right": {"op": "literal", "value": v}});
    let cases: Vec<(&str, String, Value)> = vec![
        ("fetch, no filter (baseline)", format!("/v1/project_logs/{pid}/fetch"), json!({"limit": 100})),
        ("btql, no filter (baseline)", "/btql".into(), json!({"query": {"from": from, "limit": 100}})),
        (
            "btql `metadata.env = 'prod'` (50%)",
            "/btql".into(),
            json!({"query": {"from": from, "filter": eq(&["metadata", "env"], json!("prod")), "limit": 100}}),
        ),
        (
            "btql `metadata.model = 'gpt-4o'` (10%)",
            "/btql".into(),
            json!({"query": {"from": from, "filter": eq(&["metadata", "model"], json!("gpt-4o")), "limit": 100}}),
        ),
        (
            "btql text `metadata.model = 'gpt-4o' and scores.accuracy > 0.5` (4.9%)",
            "/btql".into(),
            json!({"query": format!("select: * | from: project_logs('{pid}') | filter: metadata.model = 'gpt-4o' and scores.accuracy > 0.5 | limit: 100")}),
        ),
        (
            "btql SQL `scores.accuracy = 0.07` (1%)",
            "/btql".into(),
            json!({"query": format!("SELECT * FROM project_logs('{pid}') WHERE scores.accuracy = 0.07 LIMIT 100")}),
        ),
        (
            "btql `metadata.user_id = 'user-7'` (0.1%)",
            "/btql".into(),
            json!({"query": {"from": from, "filter": eq(&["metadata", "user_id"], json!("user-7")), "limit": 100}}),
        ),
    ];
    let mut results = Vec::new();
    for (name, path, body) in &cases {
        let mut lat = Vec::new();
        let mut rows = 0;
        for i in 0..a.iterations + 3 {
            let t = Instant::now();
            let resp = post(path.clone(), body.clone()).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let v: Value = resp.json().await.map_err(|e| e.to_string())?;
            let took = t.elapsed();
            if !status.is_success() {
                return Err(format!("{name}: {status} {v}"));
            }
            rows = v.get("data").or_else(|| v.get("events")).and_then(Value::as_array).map(Vec::len).unwrap_or(0);
            if i >= 3 {
                lat.push(took);
            }
        }
        lat.sort();
        results.push((*name, rows, pct(&lat, 0.5), pct(&lat, 0.9), pct(&lat, 0.99)));
    }
    let base_p50 = results[1].2;
    println!(
        "\n{} rows on {}, {} runs each; ratio = p50 / the unfiltered /btql first page's p50\n",
        a.rows, a.backend, a.iterations
    );
    println!("| query (first page of 100) | rows | p50 ms | p90 ms | p99 ms | ratio |");
    println!("|---|---|---|---|---|---|");
    for (name, rows, p50, p90, p99) in &results {
        println!("| {name} | {rows} | {p50:.1} | {p90:.1} | {p99:.1} | {:.2}× |", p50 / base_p50);
    }
    running.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}
