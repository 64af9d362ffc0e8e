//! Automations over a large project log, against a real server over real HTTP, with
//! baselines measured in the same run on the same database:
//!
//! * an alert check (`POST /v1/project_automation/{id}/run` of a `logs` alert whose
//!   filter matches 10% of spans) over a log of `--rows` spans, each check after
//!   1,000 new spans were written (100 match, so each check also delivers a signed
//!   webhook to a receiver on loopback) — against the first page of `fetch`;
//! * the first check of an alert (no previous check: its window is by creation
//!   time, read from the scheduler's transaction-id mark of 20 minutes before);
//! * a retention sweep deleting every one of the `--rows` spans while a client
//!   ingests 10 spans per request one request at a time — the ingest latencies
//!   during the sweep against the same client's before it (`--before-seconds`,
//!   10), and after it for as long as the sweep took.
//!
//! On PostgreSQL the filled log is vacuumed and checkpointed before anything is
//! measured, as a log written over weeks would have been by autovacuum.
//!
//! A load script, not a test:
//!
//! ```sh
//! cargo run --release -p castellan-server --example automation_bench -- --rows 1000000
//! ```

use castellan_server::access::system_clock;
use castellan_server::config::Config;
use castellan_server::load::SlowGroups;
use castellan_server::serve::start_with_state;
use castellan_store::{EventKind, EventObject};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{fill, open, pct, settle_postgres, span};

mod support;

struct Args {
    backend: String,
    postgres_url: String,
    rows: u64,
    iterations: usize,
    before_seconds: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        backend: "sqlite".into(),
        postgres_url: std::env::var("CASTELLAN_TEST_POSTGRES_URL").unwrap_or_default(),
        rows: 1_000_000,
        iterations: 20,
        before_seconds: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--backend" => a.backend = value()?,
            "--postgres-url" => a.postgres_url = value()?,
            "--rows" => a.rows = value()?.parse().map_err(|e| format!("--rows: {e}"))?,
            "--iterations" => a.iterations = value()?.parse().map_err(|e| format!("--iterations: {e}"))?,
            "--before-seconds" => a.before_seconds = value()?.parse().map_err(|e| format!("--before-seconds: {e}"))?,
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    Ok(a)
}

/// A webhook receiver on loopback counting what it gets.
async fn receiver() -> Result<(String, Arc<AtomicU64>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let url = format!("http://{}/hook", listener.local_addr().map_err(|e| e.to_string())?);
    let got = Arc::new(AtomicU64::new(0));
    let g = got.clone();
    let app = axum::Router::new().fallback(move || {
        let g = g.clone();
        async move {
            g.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, got))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = args()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (store, schema) = open(&a.backend, &a.postgres_url, dir.path()).await?;
    let config = Config {
        listen: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        data_dir: dir.path().to_owned(),
        outbound_allow: vec!["127.0.0.1".into()],
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
    let call = |path: String, body: Value| {
        let req = http.post(format!("{base}{path}")).bearer_auth(&key).json(&body);
        async move {
            let t = Instant::now();
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let v: Value = resp.json().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!("{path}: {status} {v}"));
            }
            Ok::<_, String>((t.elapsed(), v))
        }
    };
    let (_, project) = call("/v1/project".into(), json!({"name": "bench"})).await?;
    let pid = project["id"].as_str().ok_or("no project id")?.to_owned();
    let log = EventObject { kind: EventKind::ProjectLogs, id: uuid::Uuid::parse_str(&pid).map_err(|e| e.to_string())? };
    let old = |n: u64| span(n).replace("2026-11-23T14:16:12.470123+00:00", "2020-01-01T00:00:00.000000+00:00");
    let started = Instant::now();
    fill(&*store, log, 0, a.rows, old).await?;
    eprintln!("wrote {} rows in {:.1} s", a.rows, started.elapsed().as_secs_f64());
    if let Some(schema) = &schema {
        let t = Instant::now();
        settle_postgres(&a.postgres_url, schema).await?;
        eprintln!("vacuumed and checkpointed in {:.1} s", t.elapsed().as_secs_f64());
    }
    // As a server that has run for a while has: the scheduler's transaction-id mark
    // from 20 minutes ago (these rows were written before it).
    let xact = store.read().await.map_err(|e| e.to_string())?.current_xact_id().await.map_err(|e| e.to_string())?;
    store.mark_xact(state.now() - 20 * 60 * 1_000_000, xact).await.map_err(|e| e.to_string())?;

    // Alerts.
    let (hook, delivered) = receiver().await?;
    let (_, alert) = call(
        "/v1/project_automation".into(),
        json!({"project_id": pid, "name": "gpt-4o", "config": {"event_type": "logs", "btql_filter": "metadata.model = 'gpt-4o'",
               "interval_seconds": 300, "action": {"type": "webhook", "url": hook}}}),
    )
    .await?;
    let aid = alert["id"].as_str().ok_or("no automation id")?.to_owned();
    let (first, v) = call(format!("/v1/project_automation/{aid}/run"), json!({})).await?;
    eprintln!("first check: {:.1} ms, {v}", ms(first));
    let now = chrono_now();
    let fresh = |n: u64| span(n).replace("2026-11-23T14:16:12.470123+00:00", &now);
    let (mut checks, mut fetches) = (Vec::new(), Vec::new());
    let mut next = a.rows;
    for _ in 0..a.iterations {
        fill(&*store, log, next, next + 1000, &fresh).await?;
        next += 1000;
        let (took, run) = call(format!("/v1/project_automation/{aid}/run"), json!({})).await?;
        if run["count"] != 100 || run["status"] != "ok" {
            return Err(format!("unexpected run {run}"));
        }
        checks.push(took);
        let (took, _) = call(format!("/v1/project_logs/{pid}/fetch"), json!({"limit": 100})).await?;
        fetches.push(took);
    }
    checks.sort();
    fetches.sort();
    if delivered.load(Ordering::SeqCst) != a.iterations as u64 {
        return Err(format!("{} webhooks received, {} expected", delivered.load(Ordering::SeqCst), a.iterations));
    }

    // Retention under ingest.
    let ingest_for = |stop: Arc<AtomicBool>, limit: Duration| {
        let http = http.clone();
        let (base, key, pid) = (base.clone(), key.clone(), pid.clone());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            let t0 = Instant::now();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) && t0.elapsed() < limit {
                let rows: Vec<Value> =
                    (0..10).map(|j| json!({"id": format!("ingest-{i}-{j}"), "input": "q", "output": "a"})).collect();
                let t = Instant::now();
                let ok = http
                    .post(format!("{base}/v1/project_logs/{pid}/insert"))
                    .bearer_auth(&key)
                    .json(&json!({"events": rows}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    let took = t.elapsed();
                    if took > Duration::from_millis(50) {
                        // When, to set beside the database's own log.
                        eprintln!("slow ingest request: {:.1} ms, ended {}", ms(took), chrono_now());
                    }
                    lat.push(took);
                }
                i += 1;
            }
            lat.sort();
            lat
        })
    };
    let slow_at_start = state.ingest_load().slow();
    eprintln!("baseline starts {}", chrono_now());
    let baseline = ingest_for(Arc::new(AtomicBool::new(false)), Duration::from_secs(a.before_seconds))
        .await
        .map_err(|e| e.to_string())?;
    let slow_before = state.ingest_load().slow();
    let (_, rule) = call(
        "/v1/project_automation".into(),
        json!({"project_id": pid, "name": "keep-30-days", "config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 30}}),
    )
    .await?;
    let rid = rule["id"].as_str().ok_or("no rule id")?.to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let during = ingest_for(stop.clone(), Duration::from_secs(3600));
    eprintln!("sweep starts {}", chrono_now());
    let (sweep, run) = call(format!("/v1/project_automation/{rid}/run"), json!({})).await?;
    eprintln!("sweep ends {}", chrono_now());
    stop.store(true, Ordering::SeqCst);
    let during = during.await.map_err(|e| e.to_string())?;
    let slow_during = state.ingest_load().slow();
    // As long again after the sweep: a second baseline, as long as the sweep, so
    // that the rare slow request (a slow fsync of the disk's) is counted over as
    // many requests with and without a sweep.
    let after = ingest_for(Arc::new(AtomicBool::new(false)), sweep).await.map_err(|e| e.to_string())?;
    eprintln!("after-sweep baseline ends {}", chrono_now());
    let slow_after = state.ingest_load().slow();
    if run["count"].as_u64() != Some(a.rows) {
        return Err(format!("the sweep deleted {} rows, {} expected: {run}", run["count"], a.rows));
    }

    println!("\n{} rows on {}; {} alert checks\n", a.rows, a.backend, a.iterations);
    println!("| what | p50 ms | p99 ms | max ms | ratio (p50) |");
    println!("|---|---|---|---|---|");
    let f50 = pct(&fetches, 0.5);
    println!(
        "| fetch, first page of 100 (baseline) | {f50:.1} | {:.1} | {:.1} | 1.00× |",
        pct(&fetches, 0.99),
        pct(&fetches, 1.0)
    );
    println!(
        "| alert check after 1,000 new spans (100 match, webhook delivered) | {:.1} | {:.1} | {:.1} | {:.2}× |",
        pct(&checks, 0.5),
        pct(&checks, 0.99),
        pct(&checks, 1.0),
        pct(&checks, 0.5) / f50
    );
    println!(
        "| first alert check (window by creation time, from the scheduler's mark) | {:.1} | | | {:.2}× |",
        ms(first),
        ms(first) / f50
    );
    let b50 = pct(&baseline, 0.5);
    println!(
        "| ingest of 10 spans, before the sweep (baseline, {} requests) | {b50:.1} | {:.1} | {:.1} | 1.00× |",
        baseline.len(),
        pct(&baseline, 0.99),
        pct(&baseline, 1.0)
    );
    println!(
        "| ingest of 10 spans during the sweep ({} requests) | {:.1} | {:.1} | {:.1} | {:.2}× |",
        during.len(),
        pct(&during, 0.5),
        pct(&during, 0.99),
        pct(&during, 1.0),
        pct(&during, 0.5) / b50
    );
    println!(
        "| ingest of 10 spans after the sweep, as long as it ({} requests) | {:.1} | {:.1} | {:.1} | {:.2}× |",
        after.len(),
        pct(&after, 0.5),
        pct(&after, 0.99),
        pct(&after, 1.0),
        pct(&after, 0.5) / b50
    );
    let over = |v: &[Duration]| v.iter().filter(|d| **d > Duration::from_millis(50)).count();
    println!(
        "\ningest requests over 50 ms: {} of {} before the sweep, {} of {} during it, {} of {} after it",
        over(&baseline),
        baseline.len(),
        over(&during),
        during.len(),
        over(&after),
        after.len()
    );
    // Where the slow requests' time went: the data writer's group commits over
    // 50 ms, by their longest part.
    let parts = |a: SlowGroups, b: SlowGroups| {
        format!(
            "{} waiting for the writer's connection, {} writing, {} committing",
            b.waiting - a.waiting,
            b.writing - a.writing,
            b.committing - a.committing
        )
    };
    println!(
        "group commits over 50 ms, by their longest part: before the sweep {}; during it {}; after it {} (the slowest of the run \
         {:.0} ms)",
        parts(slow_at_start, slow_before),
        parts(slow_before, slow_during),
        parts(slow_during, slow_after),
        slow_after.slowest_micros as f64 / 1000.0
    );
    println!(
        "retention sweep of {} rows: {:.1} s ({:.0} rows/s); the slowest delete {:.1} ms, {} over 50 ms",
        a.rows,
        sweep.as_secs_f64(),
        a.rows as f64 / sweep.as_secs_f64(),
        run["details"]["slowest_batch_ms"].as_f64().unwrap_or(f64::NAN),
        run["details"]["slow_batches"]
    );
    let probe = dir.path().to_owned();
    let fsyncs = tokio::task::spawn_blocking(move || fsync_loop(&probe, Duration::from_secs(20)))
        .await
        .map_err(|e| e.to_string())??;
    println!(
        "the disk alone (8 KiB appended and fsynced in the data directory, 2 ms apart, 20 s): p50 {:.2} ms, p99 {:.2} ms, \
         max {:.0} ms; {} of {} over 50 ms",
        pct(&fsyncs, 0.5),
        pct(&fsyncs, 0.99),
        pct(&fsyncs, 1.0),
        fsyncs.iter().filter(|d| **d > Duration::from_millis(50)).count(),
        fsyncs.len()
    );
    running.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// How long fsync takes on the data directory's disk: 8 KiB appended and synced,
/// every 2 ms, for `secs` (sorted latencies).
fn fsync_loop(dir: &std::path::Path, secs: Duration) -> Result<Vec<Duration>, String> {
    use std::io::{Seek, Write};
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).map_err(|e| e.to_string())?;
    let buf = [b'x'; 8192];
    let mut lat = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < secs {
        f.write_all(&buf).map_err(|e| e.to_string())?;
        let t = Instant::now();
        f.sync_data().map_err(|e| e.to_string())?;
        lat.push(t.elapsed());
        if lat.len() % 5000 == 0 {
            f.set_len(0).map_err(|e| e.to_string())?;
            f.rewind().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = std::fs::remove_file(&path);
    lat.sort();
    Ok(lat)
}

/// Now as the SDK writes `created`.
fn chrono_now() -> String {
    castellan_api_types::format_time(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0),
    )
}
