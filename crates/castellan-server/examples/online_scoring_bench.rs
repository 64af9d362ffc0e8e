//! Online scoring under load, against a real server over real HTTP: whether the
//! worker keeps up with a stream of `/logs3` ingest into a project with an online
//! rule (`sampling_rate` 0.1, built-in scorers), and how much ingest capacity the
//! scoring costs.
//!
//! Phases on one database, each `--seconds` long:
//!
//! 0. **warm-up** (`--no-warmup` leaves it out): a baseline phase, not compared, so
//!    that the first baseline is not measured on an empty database;
//! 1. **baseline**: a paced stream of `--rate` spans/s into a project without rules,
//!    while other clients (`--concurrency` requests in flight) log as fast as the
//!    server takes them into a second project: that second rate is the server's
//!    spare ingest capacity;
//! 2. **scoring**: the same, but the paced stream goes into a project with the rule
//!    and the worker runs (as in `serve`, woken by ingest): the spare capacity as a
//!    ratio of the baselines', and the worker's lag behind the stream, sampled every
//!    100 ms as the age of the oldest stream write (by the transaction id `/logs3`
//!    answered) that the worker's cursor has not passed yet;
//! 3. **baseline again**; phases 2 and 3 repeat `--rounds` times (A B A B … A), each
//!    scored phase compared with the mean of the baselines on either side of it, so
//!    that a drift over the run (a growing database, a noisy neighbour) shows;
//! 4. the worker's own rate on a backlog (spans logged with no worker running, then
//!    scored by back-to-back passes);
//! 5. the worst case: every client logging as fast as it can into the scored
//!    project, the worker running, as a ratio of the last baseline's total rate, and how long
//!    the worker needs to catch up once ingest stops.
//!
//! A load script, not a test:
//!
//! ```sh
//! cargo run --release -p castellan-server --example online_scoring_bench -- --backend sqlite --seconds 15 --rate 5000
//! cargo run --release -p castellan-server --example online_scoring_bench -- --backend postgres \
//!     --postgres-url postgres://postgres:postgres@localhost/castellan_test
//! ```

use castellan_server::access::system_clock;
use castellan_server::config::Config;
use castellan_server::scoring::{Options, Worker};
use castellan_server::serve::start_with_state;
use castellan_store::{Store, XactId};
#[allow(dead_code)]
mod support;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    backend: String,
    postgres_url: String,
    seconds: u64,
    concurrency: usize,
    batch: usize,
    rate: u64,
    rounds: usize,
    phases: Vec<String>,
    /// A baseline phase before the first, not compared (`--no-warmup` leaves it out).
    warmup: bool,
    /// The worker's options (`--max-lag-ms`, `--busy-duty`; otherwise `serve`'s).
    opts: Options,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        backend: "sqlite".into(),
        postgres_url: std::env::var("CASTELLAN_TEST_POSTGRES_URL").unwrap_or_default(),
        seconds: 15,
        concurrency: 8,
        batch: 100,
        rate: 5000,
        rounds: 3,
        phases: vec!["rounds".into(), "backlog".into(), "flood".into()],
        warmup: true,
        opts: Options::default(),
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
            "--rate" => a.rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--rounds" => a.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?,
            "--phases" => a.phases = value()?.split(',').map(str::to_owned).collect(),
            "--no-warmup" => a.warmup = false,
            "--max-lag-ms" => {
                a.opts.max_lag = Duration::from_millis(value()?.parse().map_err(|e| format!("--max-lag-ms: {e}"))?)
            }
            "--busy-duty" => a.opts.busy_duty = value()?.parse().map_err(|e| format!("--busy-duty: {e}"))?,
            other => return Err(format!("unknown flag `{other}`")),
        }
    }
    if a.batch == 0 || a.rate < a.batch as u64 || a.seconds == 0 {
        return Err("--batch and --seconds must be positive and --rate at least one batch a second".into());
    }
    Ok(a)
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

struct Target {
    http: reqwest::Client,
    url: String,
    key: String,
}

/// Posts batches of spans into `pid` from `concurrency` tasks, as fast as they are
/// taken, for `secs`; spans written.
async fn flood(t: &Target, pid: &str, a: &Args, offset: u64) -> u64 {
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (h, url, key, pid, counter, batch) =
            (t.http.clone(), t.url.clone(), t.key.clone(), pid.to_owned(), counter.clone(), a.batch);
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

/// What a paced stream did: spans written, request latencies, and when each write
/// was answered with which transaction id.
#[derive(Default)]
struct Stream {
    spans: u64,
    latencies: Vec<Duration>,
    writes: Vec<(Instant, XactId)>,
}

/// Posts one batch into `pid` every `batch / rate` seconds for `secs`, whatever the
/// earlier requests are doing (an open loop, as independent clients would).
async fn paced(t: &Target, pid: &str, a: &Args, offset: u64, log: Arc<std::sync::Mutex<Stream>>) {
    let period = Duration::from_secs_f64(a.batch as f64 / a.rate as f64);
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    let mut i = 0u64;
    while Instant::now() < deadline {
        every.tick().await;
        let payload = body(offset + i * a.batch as u64, a.batch, pid);
        i += 1;
        let (h, url, key, log, batch) = (t.http.clone(), t.url.clone(), t.key.clone(), log.clone(), a.batch as u64);
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            match h.post(&url).bearer_auth(&key).body(payload).send().await {
                Ok(r) if r.status().is_success() => {
                    let answer: serde_json::Value = r.json().await.unwrap_or_default();
                    let done = Instant::now();
                    let xact = answer["xact_id"].as_str().and_then(XactId::parse);
                    if let Ok(mut s) = log.lock() {
                        s.spans += batch;
                        s.latencies.push(done - sent);
                        if let Some(x) = xact {
                            s.writes.push((done, x));
                        }
                    }
                }
                Ok(r) => eprintln!("logs3 answered {}", r.status()),
                Err(e) => eprintln!("logs3 failed: {e}"),
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// The worker's lag behind a stream: the age of the oldest answered write whose
/// transaction its cursor has not passed (zero when it has passed them all).
fn lag(stream: &Stream, cursor: Option<XactId>, now: Instant) -> Duration {
    stream
        .writes
        .iter()
        .filter(|(_, x)| cursor.is_none_or(|c| *x > c))
        .map(|(at, _)| now.saturating_duration_since(*at))
        .max()
        .unwrap_or_default()
}

async fn cursor(store: &dyn Store, pid: uuid::Uuid) -> Option<XactId> {
    store.scoring_cursor(pid).await.ok().flatten().map(|(x, _)| x)
}

async fn rule(t: &Target, base: &str, pid: &str) -> Result<(), String> {
    let scorers = serde_json::json!([{"type": "global", "name": "ExactMatch"}, {"type": "global", "name": "Levenshtein"},
                                     {"type": "global", "name": "JSONDiff"}, {"type": "global", "name": "ValidJSON"}]);
    let body = serde_json::json!({"project_id": pid, "name": "online", "score_type": "online",
                                  "config": {"online": {"sampling_rate": 0.1, "scorers": scorers}}});
    let r = t.http.post(format!("{base}/v1/project_score")).bearer_auth(&t.key).json(&body).send().await;
    match r {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("creating the rule answered {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether the worker has read every row version of a project's logs up to `head`.
async fn caught_up(store: &dyn Store, pid: uuid::Uuid, head: XactId) -> bool {
    cursor(store, pid).await.is_some_and(|x| x >= head)
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p) as usize).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// Phase 1 or 3: the paced stream into `plain` beside a flood into `capacity`.
async fn baseline(t: &Target, a: &Args, plain: &str, capacity: &str, offset: u64) -> (f64, Stream) {
    let log = Arc::new(std::sync::Mutex::new(Stream::default()));
    let (spare, ()) = tokio::join!(flood(t, capacity, a, offset), paced(t, plain, a, offset + (1 << 36), log.clone()));
    let stream = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    (spare as f64 / a.seconds as f64, stream)
}

fn report(name: &str, spare: f64, stream: &mut Stream, a: &Args) {
    println!(
        "{name:<28} spare capacity {spare:>8.0} spans/s; stream {:>6.0} spans/s (p50 {:.1} ms, p99 {:.1} ms per request)",
        stream.spans as f64 / a.seconds as f64,
        pct(&mut stream.latencies, 0.5),
        pct(&mut stream.latencies, 0.99),
    );
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
    let http =
        reqwest::Client::builder().pool_max_idle_per_host(a.concurrency + 64).build().map_err(|e| e.to_string())?;
    let t = Target { http, url: format!("{base}/logs3"), key };
    let mut pids = Vec::new();
    for name in ["capacity", "plain", "scored", "backlog", "flooded"] {
        let p: serde_json::Value = t
            .http
            .post(format!("{base}/v1/project"))
            .bearer_auth(&t.key)
            .json(&serde_json::json!({"name": name}))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        pids.push(p["id"].as_str().ok_or("no project id")?.to_owned());
    }
    println!("machine: {}", machine());
    println!(
        "backend: {}; {} s per phase; stream {} spans/s; flood {} requests in flight; {} spans per request; \
         rule: sampling_rate 0.1, ExactMatch + Levenshtein + JSONDiff + ValidJSON",
        a.backend, a.seconds, a.rate, a.concurrency, a.batch
    );

    // 1-3. Baselines and scored phases alternating (A B A B … A, `--rounds` scored
    // phases), the worker running throughout as in `serve`: each scored phase's
    // spare capacity against the mean of the baselines on either side of it.
    let mut last_total = None;
    if a.phases.iter().any(|p| p == "rounds") {
        last_total = Some(rounds(&a, &t, &base, &pids, &store, &state, &system).await?);
    }
    if a.phases.iter().any(|p| p == "backlog") {
        backlog(&a, &t, &base, &pids, &store, &state, &system).await?;
    }
    if a.phases.iter().any(|p| p == "flood") {
        flooded(&a, &t, &base, &pids, &store, &state, &system, last_total).await?;
    }
    running.stop().await.map_err(|e| e.to_string())?;
    Ok(())
}

type State = castellan_server::access::AppState;
type System = castellan_server::access::SystemKey;

fn pid(pids: &[String], i: usize) -> Result<uuid::Uuid, String> {
    pids[i].parse().map_err(|_| "bad project id".to_owned())
}

/// 1-3. Baselines and scored phases alternating (A B A B … A, `--rounds` scored
/// phases), the worker running throughout as in `serve`: each scored phase's spare
/// capacity against the mean of the baselines on either side of it. The last
/// baseline's total rate (stream and spare capacity).
async fn rounds(
    a: &Args,
    t: &Target,
    base: &str,
    pids: &[String],
    store: &Arc<dyn Store>,
    state: &State,
    system: &System,
) -> Result<f64, String> {
    let id = |i: usize| pid(pids, i);
    rule(t, base, &pids[2]).await?;
    let worker = Worker::new(state.clone(), system.permit(), a.opts.clone());
    let timings = worker.timings();
    let worker = worker.spawn();
    if a.warmup {
        // Ingest into an empty database runs faster than into one holding a few
        // phases' spans, and not linearly slower after: compared against a first
        // baseline on an empty database, the first round would be compared against
        // a rate the database no longer allows.
        let (spare, mut s) = baseline(t, a, &pids[1], &pids[0], 60 << 40).await;
        report("0. warm-up (not compared)", spare, &mut s, a);
    }
    let (mut before, mut s) = baseline(t, a, &pids[1], &pids[0], 0).await;
    report("1. baseline", before, &mut s, a);
    let (mut ratios, mut all_lags, mut catch_ups) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..a.rounds {
        let offset = (2 * round as u64 + 1) << 40;
        let log = Arc::new(std::sync::Mutex::new(Stream::default()));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (store, log, done, scored) = (store.clone(), log.clone(), done.clone(), id(2)?);
            tokio::spawn(async move {
                let mut lags = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let c = cursor(&*store, scored).await;
                    let now = Instant::now();
                    if let Ok(s) = log.lock() {
                        lags.push(lag(&s, c, now));
                    }
                }
                lags
            })
        };
        let (spare, ()) =
            tokio::join!(flood(t, &pids[0], a, offset), paced(t, &pids[2], a, offset + (1 << 36), log.clone()));
        let spare = spare as f64 / a.seconds as f64;
        done.store(true, Ordering::Relaxed);
        let mut lags = sampler.await.map_err(|e| e.to_string())?;
        let stopped = Instant::now();
        let last = log.lock().ok().and_then(|s| s.writes.iter().map(|w| w.1).max()).unwrap_or(XactId(0));
        while !caught_up(&**store, id(2)?, last).await {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if stopped.elapsed() > Duration::from_secs(600) {
                return Err("the worker did not catch up in 10 minutes".into());
            }
        }
        let catch_up = stopped.elapsed().as_secs_f64() * 1000.0;
        let mut s = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
        report("2. stream scored", spare, &mut s, a);
        let (after, mut s) = baseline(t, a, &pids[1], &pids[0], offset + (2 << 36)).await;
        report("3. baseline", after, &mut s, a);
        let ratio = spare / ((before + after) / 2.0);
        println!(
            "   round {}: {ratio:.2}x of the baselines' spare capacity; the worker's lag behind the stream: p50 {:.0} ms, \
             p99 {:.0} ms, max {:.0} ms; caught up {catch_up:.0} ms after the stream stopped",
            round + 1,
            pct(&mut lags, 0.5),
            pct(&mut lags, 0.99),
            pct(&mut lags, 1.0),
        );
        ratios.push(ratio);
        all_lags.extend(lags);
        catch_ups.push(catch_up);
        before = after;
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len().max(1) as f64;
    println!(
        "   over {} rounds: {mean:.3}x of the spare capacity ({:.1}% less; rounds {}); lag p50 {:.0} ms, p99 {:.0} ms, \
         max {:.0} ms; caught up at most {:.0} ms after a stream stopped",
        ratios.len(),
        (1.0 - mean) * 100.0,
        ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", "),
        pct(&mut all_lags, 0.5),
        pct(&mut all_lags, 0.99),
        pct(&mut all_lags, 1.0),
        catch_ups.iter().cloned().fold(0.0, f64::max),
    );
    worker.abort();
    println!("   the worker's time: {}", timings.summary());
    Ok(before + a.rate as f64)
}

/// 4. The worker's own rate, on a backlog.
async fn backlog(
    a: &Args,
    t: &Target,
    base: &str,
    pids: &[String],
    store: &Arc<dyn Store>,
    state: &State,
    system: &System,
) -> Result<(), String> {
    let id = |i: usize| pid(pids, i);
    rule(t, base, &pids[3]).await?;
    let n = flood(t, &pids[3], a, 4 << 40).await;
    let worker = Worker::new(state.clone(), system.permit(), a.opts.clone());
    let h = head(&**store).await;
    let started = Instant::now();
    let mut scored = 0;
    while !caught_up(&**store, id(3)?, h).await {
        let r = worker.pass().await.map_err(|e| e.to_string())?;
        scored += r.rules.values().map(|c| c.scored).sum::<u64>();
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the worker did not work through the backlog in 10 minutes".into());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "4. worker on a backlog       {:>8.0} spans/s ({n} spans in {secs:.2} s, {scored} scores written)",
        n as f64 / secs
    );
    println!("   the worker's time: {}", worker.timings().summary());
    Ok(())
}

/// 5. Everything into the scored project, as fast as it is taken.
#[allow(clippy::too_many_arguments)]
async fn flooded(
    a: &Args,
    t: &Target,
    base: &str,
    pids: &[String],
    store: &Arc<dyn Store>,
    state: &State,
    system: &System,
    last_total: Option<f64>,
) -> Result<(), String> {
    let id = |i: usize| pid(pids, i);
    rule(t, base, &pids[4]).await?;
    let worker = Worker::new(state.clone(), system.permit(), a.opts.clone());
    let timings = worker.timings();
    let worker = worker.spawn();
    let n = flood(t, &pids[4], a, 5 << 40).await;
    let with = n as f64 / a.seconds as f64;
    let h = head(&**store).await;
    let started = Instant::now();
    while !caught_up(&**store, id(4)?, h).await {
        state.scoring_wake().notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the worker did not catch up in 10 minutes".into());
        }
    }
    let behind = started.elapsed().as_secs_f64();
    worker.abort();
    let ratio = last_total.map(|l| format!("{:.2}x of the last baseline's total; ", with / l)).unwrap_or_default();
    println!(
        "5. flood into scored project {with:>8.0} spans/s ({ratio}the worker caught up {behind:.2} s after ingest stopped)"
    );
    println!("   the worker's time: {}", timings.summary());
    Ok(())
}

async fn head(store: &dyn Store) -> XactId {
    match store.read().await {
        Ok(mut tx) => tx.current_xact_id().await.unwrap_or(XactId(0)),
        Err(_) => XactId(0),
    }
}

async fn open(a: &Args, dir: &std::path::Path) -> Result<Arc<dyn Store>, String> {
    support::open(&a.backend, &a.postgres_url, dir).await.map(|(store, _)| store)
}
