//! Online scoring under load, against a real server over real HTTP: `/logs3`
//! ingest with an online rule active (`sampling_rate` 0.1, built-in scorers) and
//! the worker running, compared with ingest alone, and whether the worker keeps up.
//!
//! Three measurements on one database:
//!
//! * ingest alone: spans/s into a project without rules;
//! * the worker's own rate: spans logged into a project with a rule while no worker
//!   runs, then scored by back-to-back passes (spans read and judged per second);
//! * ingest with scoring: the worker running (woken by ingest) while spans are
//!   logged into a project with a rule; the ingest rate as a ratio of the first, the
//!   worker's lag when ingest stops, and so the rate it sustained.
//!
//! A load script, not a test:
//!
//! ```sh
//! cargo run --release -p castellan-server --example online_scoring_bench -- --backend sqlite --seconds 20
//! cargo run --release -p castellan-server --example online_scoring_bench -- --backend postgres \
//!     --postgres-url postgres://postgres:postgres@localhost/castellan_test
//! ```

use castellan_server::access::system_clock;
use castellan_server::config::Config;
use castellan_server::scoring::{Options, Worker};
use castellan_server::serve::start_with_state;
use castellan_store::{Store, XactId};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    backend: String,
    postgres_url: String,
    seconds: u64,
    concurrency: usize,
    batch: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        backend: "sqlite".into(),
        postgres_url: std::env::var("CASTELLAN_TEST_POSTGRES_URL").unwrap_or_default(),
        seconds: 20,
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
            "--concurrency" => a.concurrency = value()?.parse().map_err(|e| format!("--concurrency: {e}"))?,
            "--batch" => a.batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    Ok(a)
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

/// One SDK-shaped root span with an `expected` (so every scorer has work); one in
/// three answers wrong.
fn span(n: u64, pid: &str) -> String {
    let m = if n.is_multiple_of(3) { n + 3 } else { n + 2 };
    format!(
        r#"{{"id":"{n:032x}","span_id":"{n:016x}","root_span_id":"{n:016x}","span_parents":null,"project_id":"{pid}","log_id":"g","input":{{"messages":[{{"role":"system","content":"You are a careful assistant that answers arithmetic questions."}},{{"role":"user","content":"What is {n} + 2?"}}]}},"output":{{"role":"assistant","content":"The answer is {m}."}},"expected":{{"role":"assistant","content":"The answer is {e}."}},"metadata":{{"model":"gpt-4o-mini","user_id":"user-{u}"}},"metrics":{{"start":1795443372.470123,"end":1795443372.610456,"tokens":49}},"span_attributes":{{"name":"chat","type":"llm"}}}}"#,
        e = n + 2,
        u = n % 1000,
    )
}

fn body(first: u64, batch: usize, pid: &str) -> String {
    let rows: Vec<String> = (0..batch as u64).map(|i| span(first + i, pid)).collect();
    format!(r#"{{"rows":[{}],"api_version":2}}"#, rows.join(","))
}

/// Posts batches of spans into `pid` from `concurrency` tasks for `secs`; spans
/// written.
async fn ingest(http: &reqwest::Client, url: &str, key: &str, pid: &str, a: &Args, offset: u64) -> u64 {
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (h, url, key, pid, counter, batch) =
            (http.clone(), url.to_owned(), key.to_owned(), pid.to_owned(), counter.clone(), a.batch);
        tasks.push(tokio::spawn(async move {
            let mut spans = 0u64;
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let payload = body(offset + i * batch as u64, batch, &pid);
                match h.post(&url).bearer_auth(&key).body(payload).send().await {
                    Ok(r) if r.status().is_success() => spans += batch as u64,
                    Ok(r) => eprintln!("logs3 answered {}", r.status()),
                    Err(e) => eprintln!("logs3 failed: {e}"),
                }
            }
            spans
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap_or(0);
    }
    total
}

async fn rule(http: &reqwest::Client, base: &str, key: &str, pid: &str) -> Result<(), String> {
    let scorers = serde_json::json!([{"type": "global", "name": "ExactMatch"}, {"type": "global", "name": "Levenshtein"},
                                     {"type": "global", "name": "JSONDiff"}, {"type": "global", "name": "ValidJSON"}]);
    let body = serde_json::json!({"project_id": pid, "name": "online", "score_type": "online",
                                  "config": {"online": {"sampling_rate": 0.1, "scorers": scorers}}});
    let r = http.post(format!("{base}/v1/project_score")).bearer_auth(key).json(&body).send().await;
    match r {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("creating the rule answered {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether the worker has read every row version of a project's logs.
async fn caught_up(store: &dyn Store, pid: uuid::Uuid, head: XactId) -> bool {
    match store.scoring_cursor(pid).await {
        Ok(Some((x, _))) => x >= head,
        _ => false,
    }
}

async fn head(store: &dyn Store) -> XactId {
    match store.read().await {
        Ok(mut tx) => tx.current_xact_id().await.unwrap_or(XactId(0)),
        Err(_) => XactId(0),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpu}, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0))
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
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build().map_err(|e| e.to_string())?;
    let mut pids = Vec::new();
    for name in ["alone", "backlog", "scored"] {
        let p: serde_json::Value = http
            .post(format!("{base}/v1/project"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"name": name}))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        pids.push(p["id"].as_str().ok_or("no project id")?.to_owned());
    }
    let url = format!("{base}/logs3");
    println!("machine: {}", machine());
    println!(
        "backend: {}; {} s per phase; concurrency {}; {} spans per request; rule: sampling_rate 0.1, \
         ExactMatch + Levenshtein + JSONDiff + ValidJSON",
        a.backend, a.seconds, a.concurrency, a.batch
    );

    // 1. Ingest alone.
    let n = ingest(&http, &url, &key, &pids[0], &a, 0).await;
    let alone = n as f64 / a.seconds as f64;
    println!("ingest, no rule:                {alone:>9.0} spans/s");

    // 2. The worker's own rate, on a backlog.
    rule(&http, &base, &key, &pids[1]).await?;
    let n = ingest(&http, &url, &key, &pids[1], &a, 1 << 40).await;
    let worker = Worker::new(state.clone(), system.permit(), Options::default());
    let pid1: uuid::Uuid = pids[1].parse().map_err(|_| "bad id")?;
    let h = head(&*store).await;
    let t = Instant::now();
    let mut scored = 0;
    while !caught_up(&*store, pid1, h).await {
        let r = worker.pass().await.map_err(|e| e.to_string())?;
        scored += r.rules.values().map(|c| c.scored).sum::<u64>();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "worker on a backlog:            {:>9.0} spans/s  ({n} spans in {secs:.2} s, {scored} scores written)",
        n as f64 / secs
    );

    // 3. Ingest with the worker running.
    rule(&http, &base, &key, &pids[2]).await?;
    let opts = Options { min_interval: Duration::from_millis(200), ..Options::default() };
    let handle = Worker::new(state.clone(), system.permit(), opts).spawn();
    let n = ingest(&http, &url, &key, &pids[2], &a, 2 << 40).await;
    let with = n as f64 / a.seconds as f64;
    let pid2: uuid::Uuid = pids[2].parse().map_err(|_| "bad id")?;
    let h = head(&*store).await;
    let t = Instant::now();
    while !caught_up(&*store, pid2, h).await {
        state.scoring_wake().notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
        if t.elapsed() > Duration::from_secs(600) {
            return Err("the worker did not catch up in 10 minutes".into());
        }
    }
    let lag = t.elapsed().as_secs_f64();
    handle.abort();
    println!(
        "ingest, rule + worker running:  {with:>9.0} spans/s  (ratio {:.2} of ingest alone; the worker caught up \
         {lag:.2} s after ingest stopped: it sustained {:.0} spans/s)",
        with / alone,
        n as f64 / (a.seconds as f64 + lag)
    );
    running.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}
