//! How long a revocation committed on one replica takes to be enforced on another,
//! over real HTTP, with two replicas on one PostgreSQL database (each with its own
//! index, credential cache and connection pool; replica B polls only once an hour,
//! so only the commit announcement can tell it).
//!
//! Each round: replica A mints an API key; replica B authenticates with it (so B
//! has it cached); A revokes it; the clock starts when A acknowledges the revocation
//! and stops at B's first 401. The baseline, measured in the same run, is one
//! authorized request to B.
//!
//! ```sh
//! scripts/revocation-latency.sh            # or:
//! cargo run --release -p castellan-server --example revocation_latency -- \
//!     --postgres-url postgres://postgres:postgres@localhost/castellan_test --rounds 300
//! ```

use castellan_server::access::system_clock;
use castellan_server::config::Config;
use castellan_server::serve::start_with_state;
use castellan_store_postgres::PgStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut url = std::env::var("CASTELLAN_TEST_POSTGRES_URL").unwrap_or_default();
    let mut rounds = 300usize;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--postgres-url" => url = it.next().ok_or("--postgres-url needs a value")?,
            "--rounds" => rounds = it.next().ok_or("--rounds needs a value")?.parse()?,
            other => return Err(format!("unknown flag `{other}`").into()),
        }
    }
    if url.is_empty() {
        return Err("pass --postgres-url or set CASTELLAN_TEST_POSTGRES_URL".into());
    }
    let schema = format!("revlat_{}", uuid::Uuid::new_v4().simple());
    let replica = |poll: Duration| {
        let (url, schema) = (url.clone(), schema.clone());
        async move {
            let store = Arc::new(PgStore::connect(&url, Some(&schema)).await?);
            let config = Config { listen: "127.0.0.1:0".parse()?, poll_interval: poll, ..Default::default() };
            let (state, system) = castellan_server::serve::prepare(store, config, system_clock()).await?;
            let running = start_with_state(state.clone()).await?;
            Ok::<_, Box<dyn std::error::Error>>((format!("http://{}", running.addr), (state, system), running))
        }
    };
    let (a, a_state, a_run) = replica(Duration::from_millis(500)).await?;
    let (b, _b_state, b_run) = replica(Duration::from_secs(3600)).await?;
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(rounds);
    let mut baseline = Vec::with_capacity(rounds);
    let mut polls = 0u64;
    for i in 0..rounds {
        // A fresh org and owner key each round (minting is rate-limited per credential).
        let raw = castellan_server::seed::bootstrap(
            &a_state.0,
            &a_state.1,
            &format!("org{i}"),
            &format!("u{i}@acme.example"),
        )
        .await?
        .api_key;
        let keys: serde_json::Value =
            http.get(format!("{a}/v1/api_key")).bearer_auth(&raw).send().await?.json().await?;
        let id = keys["objects"][0]["id"].as_str().ok_or("no key id")?.to_owned();
        // B authenticates with the key (and so caches it).
        let started = Instant::now();
        let s = http.get(format!("{b}/v1/project")).bearer_auth(&raw).send().await?.status();
        baseline.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(s, 200, "the new key works on B");
        let s = http.delete(format!("{a}/v1/api_key/{id}")).bearer_auth(&raw).send().await?.status();
        assert_eq!(s, 200);
        let acknowledged = Instant::now();
        loop {
            polls += 1;
            let s = http.get(format!("{b}/v1/project")).bearer_auth(&raw).send().await?.status();
            if s == 401 {
                break;
            }
            if acknowledged.elapsed() > Duration::from_secs(5) {
                return Err("replica B still admits a revoked key after 5 s".into());
            }
        }
        latencies.push(acknowledged.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    baseline.sort_by(f64::total_cmp);
    let base = percentile(&baseline, 0.5);
    println!(
        "cross-replica revocation on PostgreSQL, {rounds} rounds, {} cores",
        std::thread::available_parallelism()?
    );
    println!("baseline (one authorized request to B): p50 {:.2} ms, p99 {:.2} ms", base, percentile(&baseline, 0.99));
    for (name, p) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)] {
        let v = percentile(&latencies, p);
        println!("revocation enforced on B: {name} {v:.2} ms ({:.1}x the baseline request)", v / base);
    }
    println!("requests to B until refused: {:.2} on average", polls as f64 / rounds as f64);
    a_run.stop().await?;
    b_run.stop().await?;
    Ok(())
}
