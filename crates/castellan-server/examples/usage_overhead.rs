//! What usage metering costs `/logs3` ingest: the same load against servers that
//! differ only in metering, measured in alternating rounds in one process (so the
//! machine's other load falls on every configuration alike), as spans per second
//! and a ratio.
//!
//! * `off`: `usage_metering = false`;
//! * `on`: metering with the default plan (no limits: one plan read and one
//!   upsert of the day's and the month's counters per write transaction);
//! * `hard`: metering under a hard plan with limits far above the load (also locks
//!   and reads the month's counters, checks every request, looks for crossings).
//!
//! ```sh
//! cargo run --release -p castellan-server --example usage_overhead -- --backend sqlite --seconds 8 --rounds 3
//! cargo run --release -p castellan-server --example usage_overhead -- --backend postgres \
//!     --postgres-url postgres://postgres:postgres@localhost/castellan_test
//! ```
//!
//! Rows are the SDK-shaped spans of `load_logs3` (about 800 bytes, one score each),
//! 100 per request, 8 requests in flight, all to one project's logs.

use castellan_server::access::system_clock;
use castellan_server::config::Config;
use castellan_server::serve::{start_with_state, Running};
use castellan_store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    backend: String,
    postgres_url: String,
    seconds: u64,
    rounds: usize,
    concurrency: usize,
    batch: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        backend: "sqlite".into(),
        postgres_url: std::env::var("CASTELLAN_TEST_POSTGRES_URL").unwrap_or_default(),
        seconds: 8,
        rounds: 3,
        concurrency: 8,
        batch: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--backend" => a.backend = value()?,
            "--postgres-url" => a.postgres_url = value()?,
            "--seconds" => a.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--rounds" => a.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--concurrency" => a.concurrency = value()?.parse().map_err(|e| format!("--concurrency: {e}"))?,
            "--batch" => a.batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    Ok(a)
}

async fn open(a: &Args, dir: &std::path::Path, name: &str) -> Result<Arc<dyn Store>, String> {
    match a.backend.as_str() {
        "sqlite" => Ok(Arc::new(
            castellan_store_sqlite::SqliteStore::open(&dir.join(format!("{name}.sqlite")))
                .await
                .map_err(|e| e.to_string())?,
        )),
        "postgres" => {
            let schema = format!("usage_{name}_{}", uuid::Uuid::new_v4().simple());
            Ok(Arc::new(
                castellan_store_postgres::PgStore::connect(&a.postgres_url, Some(&schema))
                    .await
                    .map_err(|e| e.to_string())?,
            ))
        }
        other => Err(format!("unknown backend `{other}`; use sqlite or postgres")),
    }
}

fn span(n: u64, pid: &str) -> String {
    format!(
        r#"{{"id":"{n:032x}","span_id":"{n:016x}","root_span_id":"{r:032x}","span_parents":null,"project_id":"{pid}","log_id":"g","created":"2026-11-23T14:16:12.470123+00:00","input":{{"messages":[{{"role":"system","content":"You are a careful assistant that answers arithmetic questions."}},{{"role":"user","content":"What is {n} + 2?"}}]}},"output":{{"role":"assistant","content":"The answer is {m}."}},"metadata":{{"model":"gpt-4o-mini","user_id":"user-{u}","session":"s-{s}"}},"metrics":{{"start":1795443372.470123,"end":1795443372.610456,"prompt_tokens":42,"completion_tokens":7,"tokens":49}},"scores":{{"accuracy":1}},"span_attributes":{{"name":"chat","type":"llm","exec_counter":{n}}},"context":{{"caller_functionname":"answer","caller_filename":"/srv/app/handlers.py","caller_lineno":118,"span_origin":{{"name":"braintrust.sdk.python","version":"0.48.1"}}}}}}"#,
        r = n / 4,
        m = n + 2,
        u = n % 1000,
        s = n % 97,
    )
}

/// One server under test: its address, key and project.
struct Target {
    name: &'static str,
    running: Running,
    base: String,
    key: String,
    pid: String,
    rates: Vec<f64>,
}

async fn target(a: &Args, dir: &std::path::Path, name: &'static str) -> Result<Target, String> {
    let store = open(a, dir, name).await?;
    let mut config = Config {
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        data_dir: dir.join(name),
        usage_metering: name != "off",
        ..Config::default()
    };
    if name == "hard" {
        config.plan_limits.processed_bytes = Some(1 << 50);
        config.plan_limits.spans = Some(1 << 40);
        config.plan_limits.scores = Some(1 << 40);
        config.plan_limits.enforcement = Some("hard".into());
    }
    let (state, system) =
        castellan_server::serve::prepare(store, config, system_clock()).await.map_err(|e| e.to_string())?;
    let running = start_with_state(state.clone()).await.map_err(|e| e.to_string())?;
    let base = format!("http://{}", running.addr);
    let key = castellan_server::seed::bootstrap(&state, &system, "load", "load@example.com")
        .await
        .map_err(|e| e.to_string())?
        .api_key;
    let project: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/v1/project"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"name": "load"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let pid = project["id"].as_str().ok_or("no project id")?.to_owned();
    Ok(Target { name, running, base, key, pid, rates: Vec::new() })
}

/// Spans per second of `/logs3` against `t` for `secs`.
async fn measure(t: &Target, http: &reqwest::Client, a: &Args, first: u64) -> f64 {
    let counter = Arc::new(AtomicU64::new(first));
    let spans = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (http, url, key, pid) = (http.clone(), format!("{}/logs3", t.base), t.key.clone(), t.pid.clone());
        let (counter, spans, batch) = (counter.clone(), spans.clone(), a.batch);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let i = counter.fetch_add(batch as u64, Ordering::Relaxed);
                let rows: Vec<String> = (0..batch as u64).map(|j| span(i + j, &pid)).collect();
                let body = format!(r#"{{"rows":[{}],"api_version":2}}"#, rows.join(","));
                match http.post(&url).bearer_auth(&key).body(body).send().await {
                    Ok(r) if r.status().is_success() => {
                        spans.fetch_add(batch as u64, Ordering::Relaxed);
                    }
                    Ok(r) => eprintln!("logs3 answered {}", r.status()),
                    Err(e) => eprintln!("logs3 failed: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    spans.load(Ordering::Relaxed) as f64 / a.seconds as f64
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = args()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut targets = vec![target(&a, dir.path(), "off").await?, target(&a, dir.path(), "on").await?];
    targets.push(target(&a, dir.path(), "hard").await?);
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build().map_err(|e| e.to_string())?;
    println!(
        "backend: {}; {} rounds of {} s per configuration, alternating; concurrency {}; {} rows per request",
        a.backend, a.rounds, a.seconds, a.concurrency, a.batch
    );
    let mut first = 1_000_000_000u64;
    for round in 0..a.rounds {
        // Rotate the order every round so no configuration always goes first.
        for k in 0..targets.len() {
            let i = (k + round) % targets.len();
            let rate = measure(&targets[i], &http, &a, first).await;
            first += 100_000_000;
            println!("round {} {:>4}: {:>8.0} spans/s", round + 1, targets[i].name, rate);
            targets[i].rates.push(rate);
        }
    }
    let off = median(&targets[0].rates);
    for t in &targets {
        let m = median(&t.rates);
        println!("{:>4}: median {:>8.0} spans/s, {:.3} of `off`", t.name, m, if off > 0.0 { m / off } else { 0.0 });
    }
    for t in targets {
        t.running.stop().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}
