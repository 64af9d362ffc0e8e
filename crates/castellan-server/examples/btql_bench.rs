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

use castellan_server::access::system_clock;
use castellan_server::config::Config;
use castellan_server::serve::start_with_state;
use castellan_store::{EventKind, EventObject};
use serde_json::{json, Value};
use std::time::Instant;
use support::{fill, open, pct, span};

// Not every script uses every part of the shared module.
#[allow(dead_code)]
mod support;

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

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = args()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (store, _) = open(&a.backend, &a.postgres_url, dir.path()).await?;
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
    fill(&*store, log, 0, a.rows, span).await?;
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
