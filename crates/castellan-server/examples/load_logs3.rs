//! Sustained `/logs3` ingest, in spans per second, against a real server over real
//! HTTP, with two baselines measured in the same run on the same database:
//!
//! * the no-op rate: `GET /version` at the same concurrency (the HTTP ceiling);
//! * (compared with it) the same spans as OTLP/HTTP protobuf to `/otel/v1/traces`;
//! * raw inserts: the same rows written through the store's data transactions,
//!   without HTTP, JSON parsing or authorization (the database ceiling).
//!
//! A load script, not a test:
//!
//! ```sh
//! cargo run --release -p castellan-server --example load_logs3 -- --backend sqlite --seconds 20
//! cargo run --release -p castellan-server --example load_logs3 -- --backend postgres \
//!     --postgres-url postgres://postgres:postgres@localhost/castellan_test
//! ```
//!
//! Rows are shaped like the Python SDK's spans (ids, span ids, input, output,
//! metadata, metrics, span attributes, context; about 800 bytes of JSON), 100 per
//! request as the SDK batches them; one in four goes to an experiment, the rest to
//! the project's logs, so most requests name two objects.

use castellan_core::ProjectId;
use castellan_server::access::system_clock;
use castellan_server::config::Config;
use castellan_server::serve::start_with_state;
use castellan_store::{EventKind, EventObject, EventWrite, Store};
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
            castellan_store_sqlite::SqliteStore::open(&dir.join("load.sqlite")).await.map_err(|e| e.to_string())?,
        )),
        "postgres" => {
            let schema = format!("load_{}", uuid::Uuid::new_v4().simple());
            Ok(Arc::new(
                castellan_store_postgres::PgStore::connect(&a.postgres_url, Some(&schema))
                    .await
                    .map_err(|e| e.to_string())?,
            ))
        }
        other => Err(format!("unknown backend `{other}`; use sqlite or postgres")),
    }
}

/// One SDK-shaped span row.
fn span(n: u64, object: &str) -> String {
    format!(
        r#"{{"id":"{n:032x}","span_id":"{n:016x}","root_span_id":"{r:032x}","span_parents":null,{object},"created":"2026-11-23T14:16:12.470123+00:00","input":{{"messages":[{{"role":"system","content":"You are a careful assistant that answers arithmetic questions."}},{{"role":"user","content":"What is {n} + 2?"}}]}},"output":{{"role":"assistant","content":"The answer is {m}."}},"metadata":{{"model":"gpt-4o-mini","user_id":"user-{u}","session":"s-{s}"}},"metrics":{{"start":1795443372.470123,"end":1795443372.610456,"prompt_tokens":42,"completion_tokens":7,"tokens":49}},"scores":{{"accuracy":1}},"span_attributes":{{"name":"chat","type":"llm","exec_counter":{n}}},"context":{{"caller_functionname":"answer","caller_filename":"/srv/app/handlers.py","caller_lineno":118,"span_origin":{{"name":"braintrust.sdk.python","version":"0.48.1"}}}}}}"#,
        r = n / 4,
        m = n + 2,
        u = n % 1000,
        s = n % 97,
    )
}

/// The same spans as OTLP/HTTP protobuf, GenAI attributes for the same fields, all to
/// the project's logs (`x-bt-parent` names one destination per request).
fn otlp(first: u64, batch: usize) -> Vec<u8> {
    use castellan_server::dataplane::otel::{any_value::Value as V, *};
    use prost::Message;
    let kv = |k: &str, v: V| KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }) };
    let s = |t: String| V::StringValue(t);
    let spans = (0..batch as u64)
        .map(|i| {
            let n = 1_000_000_000 + first + i;
            Span {
                trace_id: u128::from(n / 4).to_be_bytes().to_vec(),
                span_id: n.to_be_bytes().to_vec(),
                parent_span_id: Vec::new(),
                name: "chat".into(),
                kind: 3,
                start_time_unix_nano: 1_795_443_372_470_123_000,
                end_time_unix_nano: 1_795_443_372_610_456_000,
                attributes: vec![
                    kv("gen_ai.system", s("openai".into())),
                    kv("gen_ai.request.model", s("gpt-4o-mini".into())),
                    kv("gen_ai.prompt.0.role", s("system".into())),
                    kv(
                        "gen_ai.prompt.0.content",
                        s("You are a careful assistant that answers arithmetic questions.".into()),
                    ),
                    kv("gen_ai.prompt.1.role", s("user".into())),
                    kv("gen_ai.prompt.1.content", s(format!("What is {n} + 2?"))),
                    kv("gen_ai.completion.0.role", s("assistant".into())),
                    kv("gen_ai.completion.0.content", s(format!("The answer is {}.", n + 2))),
                    kv("gen_ai.usage.input_tokens", V::IntValue(42)),
                    kv("gen_ai.usage.output_tokens", V::IntValue(7)),
                    kv("user_id", s(format!("user-{}", n % 1000))),
                    kv("session", s(format!("s-{}", n % 97))),
                    kv("braintrust.scores", s(r#"{"accuracy":1}"#.into())),
                    kv("code.function", s("answer".into())),
                    kv("code.filepath", s("/srv/app/handlers.py".into())),
                    kv("code.lineno", V::IntValue(118)),
                ],
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans { resource: None, scope_spans: vec![ScopeSpans { scope: None, spans }] }],
    }
    .encode_to_vec()
}

fn body(first: u64, batch: usize, logs: &str, exp: &str) -> String {
    let rows: Vec<String> =
        (0..batch as u64).map(|i| span(first + i, if (first + i).is_multiple_of(4) { exp } else { logs })).collect();
    format!(r#"{{"rows":[{}],"api_version":2}}"#, rows.join(","))
}

/// Runs `concurrency` loops of `step` for `secs`; returns (operations, units, latencies).
async fn drive<F, Fut>(concurrency: usize, secs: u64, step: F) -> (u64, u64, Vec<Duration>)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = u64> + Send,
{
    let step = Arc::new(step);
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (step, counter) = (step.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ops, mut units, mut lat) = (0u64, 0u64, Vec::new());
            while Instant::now() < deadline {
                let t = Instant::now();
                units += step(counter.fetch_add(1, Ordering::Relaxed)).await;
                lat.push(t.elapsed());
                ops += 1;
            }
            (ops, units, lat)
        }));
    }
    let (mut ops, mut units, mut lat) = (0, 0, Vec::new());
    for t in tasks {
        if let Ok((o, u, l)) = t.await {
            ops += o;
            units += u;
            lat.extend(l);
        }
    }
    lat.sort();
    (ops, units, lat)
}

/// CPU seconds this process has used so far (user + system), from `/proc`.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesized command name; utime and stime are the 12th and
    // 13th of those, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
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
    let key = castellan_server::seed::bootstrap(&state, &system, "load", "load@example.com")
        .await
        .map_err(|e| e.to_string())?
        .api_key;
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build().map_err(|e| e.to_string())?;
    let post =
        |path: &str, body: serde_json::Value| http.post(format!("{base}{path}")).bearer_auth(&key).json(&body).send();
    let project: serde_json::Value = post("/v1/project", serde_json::json!({"name": "load"}))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let pid = project["id"].as_str().ok_or("no project id")?.to_owned();
    let experiment: serde_json::Value = post("/v1/experiment", serde_json::json!({"project_id": pid, "name": "load"}))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let eid = experiment["id"].as_str().ok_or("no experiment id")?.to_owned();
    let logs = format!(r#""project_id":"{pid}","log_id":"g""#);
    let exp = format!(r#""experiment_id":"{eid}""#);
    println!(
        "backend: {}; {} s per phase; concurrency {}; {} rows per request ({} bytes)",
        a.backend,
        a.seconds,
        a.concurrency,
        a.batch,
        body(0, a.batch, &logs, &exp).len()
    );

    // 1. /logs3 over HTTP.
    let cpu0 = cpu_secs();
    let (batch, url, k) = (a.batch, format!("{base}/logs3"), key.clone());
    let (h, l, e) = (http.clone(), logs.clone(), exp.clone());
    let (reqs, spans, lat) = drive(a.concurrency, a.seconds, move |i| {
        let payload = body(i * batch as u64, batch, &l, &e);
        let req = h.post(&url).bearer_auth(&k).body(payload).send();
        async move {
            match req.await {
                Ok(r) if r.status().is_success() => batch as u64,
                Ok(r) => {
                    eprintln!("logs3 answered {}", r.status());
                    0
                }
                Err(err) => {
                    eprintln!("logs3 failed: {err}");
                    0
                }
            }
        }
    })
    .await;
    let secs = a.seconds as f64;
    println!(
        "/logs3 ingest:     {:>9.0} spans/s  ({:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms, {:.2} of 2 cores busy)",
        spans as f64 / secs,
        reqs as f64 / secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        (cpu_secs() - cpu0) / secs
    );

    // 1b. The same number of spans as OTLP/HTTP protobuf to /otel/v1/traces.
    let cpu0 = cpu_secs();
    let (url, k, parent) = (format!("{base}/otel/v1/traces"), key.clone(), format!("project_id:{pid}"));
    let h = http.clone();
    let (reqs, spans, lat) = drive(a.concurrency, a.seconds, move |i| {
        let payload = otlp(i * batch as u64, batch);
        let req = h
            .post(&url)
            .bearer_auth(&k)
            .header("content-type", "application/x-protobuf")
            .header("x-bt-parent", &parent)
            .body(payload)
            .send();
        async move {
            match req.await {
                Ok(r) if r.status().is_success() => batch as u64,
                Ok(r) => {
                    eprintln!("otel answered {}", r.status());
                    0
                }
                Err(err) => {
                    eprintln!("otel failed: {err}");
                    0
                }
            }
        }
    })
    .await;
    println!(
        "OTLP ingest:       {:>9.0} spans/s  ({:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms, {:.2} of 2 cores busy)",
        spans as f64 / secs,
        reqs as f64 / secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        (cpu_secs() - cpu0) / secs
    );

    // 2. The no-op endpoint at the same concurrency.
    let (h, url) = (http.clone(), format!("{base}/version"));
    let (reqs, _, lat) = drive(a.concurrency, a.seconds.min(5), move |_| {
        let req = h.get(&url).send();
        async move { u64::from(req.await.is_ok_and(|r| r.status().is_success())) }
    })
    .await;
    println!(
        "no-op GET /version: {:>8.0} requests/s (p50 {:.2} ms) -- the HTTP ceiling",
        reqs as f64 / a.seconds.min(5) as f64,
        pct(&lat, 0.5)
    );

    // 3. Raw inserts of the same rows through the store, no HTTP.
    let project_id = ProjectId(uuid::Uuid::parse_str(&pid).map_err(|e| e.to_string())?);
    let log = EventObject { kind: EventKind::ProjectLogs, id: project_id.0 };
    let store2 = store.clone();
    let (txs, rows, _) = drive(a.concurrency, a.seconds.min(10), move |i| {
        let store = store2.clone();
        let writes: Vec<EventWrite> = (0..batch as u64)
            .map(|j| {
                let n = 1_000_000_000 + i * batch as u64 + j;
                EventWrite {
                    object: log,
                    project_id,
                    row_id: format!("{n:032x}"),
                    root_span_id: Some(format!("{:032x}", n / 4)),
                    span_id: Some(format!("{n:032x}")),
                    is_root: true,
                    deleted: false,
                    is_comment: false,
                    data: span(n, r#""log_id":"g""#),
                }
            })
            .collect();
        async move {
            let Ok(mut tx) = store.data_write().await else { return 0 };
            let Ok(xact) = tx.next_xact_id().await else { return 0 };
            if tx.insert_events(xact, &writes).await.is_err() || tx.commit().await.is_err() {
                return 0;
            }
            writes.len() as u64
        }
    })
    .await;
    println!(
        "raw store inserts: {:>9.0} rows/s   ({:.0} transactions/s) -- the database ceiling",
        rows as f64 / a.seconds.min(10) as f64,
        txs as f64 / a.seconds.min(10) as f64
    );
    running.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}
