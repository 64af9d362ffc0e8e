//! The test harness: a real server on a free port over a real database (a fresh
//! SQLite file, or a fresh schema on the PostgreSQL server in
//! `CASTELLAN_TEST_POSTGRES_URL`), driven over real HTTP.

#![allow(dead_code)]

use castellan_server::access::{system_clock, AppState, Clock};
use castellan_server::config::Config;
use castellan_server::serve::{start_with_state, Running};
use castellan_store::Store;
use castellan_store_postgres::PgStore;
use castellan_store_sqlite::SqliteStore;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database a test (and its replicas) can open.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(std::path::PathBuf),
    Postgres { url: String, schema: String },
}

impl Db {
    /// A fresh, empty database (a new SQLite file, or a new schema on the PostgreSQL
    /// server in `CASTELLAN_TEST_POSTGRES_URL`; without one, a PostgreSQL test fails).
    pub fn fresh(backend: Backend) -> Option<Db> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let path = dir.path().join("castellan.sqlite");
                std::mem::forget(dir);
                Some(Db::Sqlite(path))
            }
            Backend::Postgres => {
                // These tests are #[ignore]d, so they run only when asked for; asked
                // for without a server they fail rather than pass untested.
                let url = std::env::var("CASTELLAN_TEST_POSTGRES_URL").unwrap_or_else(|_| {
                    panic!("needs PostgreSQL: set CASTELLAN_TEST_POSTGRES_URL, or run scripts/test, which sets it up")
                });
                Some(Db::Postgres { url, schema: format!("t_{}", uuid::Uuid::new_v4().simple()) })
            }
        }
    }

    /// Opens a new connection pool to the database (one per replica).
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(path) => Arc::new(SqliteStore::open(path).await.expect("open sqlite")),
            Db::Postgres { url, schema } => {
                Arc::new(PgStore::connect(url, Some(schema)).await.expect("connect postgres"))
            }
        }
    }
}

/// A running server and an HTTP client for it.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    /// The right to write as the system (bootstrap), as the process starter holds it.
    pub system: castellan_server::access::SystemKey,
    pub db: Db,
    running: Option<Running>,
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

tokio::task_local! {
    /// The servers a test scenario started, checked when it ends.
    static STARTED: std::cell::RefCell<Vec<(AppState, Arc<std::sync::atomic::AtomicBool>)>>;
}

/// Fails if a server's authorization index (and memberships) differs from one
/// rebuilt from the database, once it has caught up with every write.
pub async fn assert_index_matches_database(state: &AppState) {
    state.index().catch_up().await.expect("catch up");
    let diff = state.index().differences_from_database().await.expect("compare the index with the database");
    assert!(diff.is_empty(), "the live index differs from the database:\n{}", diff.join("\n"));
}

/// Runs a test scenario, then checks the index of every server it started (and has
/// not stopped) against the database: a handler that forgot a change-feed entry, or
/// a cascade that the index and the SQL do differently, fails here.
pub async fn with_index_checks(scenario: impl std::future::Future<Output = ()>) {
    STARTED
        .scope(std::cell::RefCell::new(Vec::new()), async {
            scenario.await;
            let started = STARTED.with(|s| s.borrow().clone());
            for (state, stopped) in started {
                if !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    assert_index_matches_database(&state).await;
                }
            }
        })
        .await;
}

/// A test configuration: port 0, quick polling, a short min-revision wait.
pub fn test_config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        poll_interval: Duration::from_millis(50),
        min_revision_wait: Duration::from_millis(700),
        max_body_bytes: 256 * 1024,
        // One master key for every replica of a test's database.
        secret_key: Some("5ea1ed".repeat(10) + "c0de"),
        // The tests' webhook receivers, Slack and OpenAI stand-ins listen on loopback.
        outbound_allow: vec!["127.0.0.1".into()],
        webhook_attempts: 3,
        webhook_backoff: Duration::from_millis(20),
        webhook_timeout: Duration::from_secs(3),
        ..Default::default()
    }
}

impl TestApp {
    /// Starts a server over a fresh database.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        let db = Db::fresh(backend)?;
        Some(TestApp::spawn_on(db, test_config(), system_clock()).await)
    }

    /// Starts a server whose clock runs `offset` microseconds ahead of the system
    /// clock (tests move time forward by adding to it).
    pub async fn spawn_with_clock(backend: Backend) -> Option<(TestApp, Arc<std::sync::atomic::AtomicI64>)> {
        let db = Db::fresh(backend)?;
        let offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let o = offset.clone();
        let sys = system_clock();
        let clock: Clock = Arc::new(move || sys() + o.load(std::sync::atomic::Ordering::SeqCst));
        Some((TestApp::spawn_on(db, test_config(), clock).await, offset))
    }

    /// Starts a server (a replica) over an existing database.
    pub async fn spawn_on(db: Db, config: Config, clock: Clock) -> TestApp {
        let store = db.open().await;
        let (state, system) = castellan_server::serve::prepare(store, config, clock).await.expect("state");
        let running = start_with_state(state.clone()).await.expect("start");
        let base = format!("http://{}", running.addr);
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let _ = STARTED.try_with(|s| s.borrow_mut().push((state.clone(), stopped.clone())));
        TestApp { base, http: reqwest::Client::new(), state, system, db, running: Some(running), stopped }
    }

    /// Checks the index against the database, then stops the server.
    pub async fn stop(mut self) {
        assert_index_matches_database(&self.state).await;
        self.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(r) = self.running.take() {
            r.stop().await.expect("stop");
        }
    }

    /// Bootstraps an org with an owner; returns the owner's API key.
    pub async fn bootstrap(&self, org: &str, email: &str) -> String {
        castellan_server::seed::bootstrap(&self.state, &self.system, org, email).await.expect("bootstrap").api_key
    }

    /// Creates a service account `name` in the owner's org, in `group`, and mints it a
    /// service token named `token` with `POST /v1/service_token` (an owner's API key
    /// may not create-and-mint in one call); returns the account's id and the token.
    pub async fn service_account(&self, owner: &str, name: &str, group: &str, token: &str) -> (String, String) {
        let body = serde_json::json!({"invite_users": {"service_accounts": [{"name": name}], "group_name": group}});
        let (s, _, out) = self.send(Method::PATCH, "/v1/organization/members", Some(owner), Some(body), &[]).await;
        assert_eq!(s, StatusCode::OK, "create the service account: {out}");
        let sa = out["added_users"][0]["id"].as_str().expect("service account id").to_owned();
        let (s, t) =
            self.post("/v1/service_token", owner, serde_json::json!({"name": token, "service_account_id": sa})).await;
        assert_eq!(s, StatusCode::OK, "mint its token: {t}");
        (sa, t["key"].as_str().expect("token").to_owned())
    }

    /// Sends a request; returns the status, the headers and the JSON body (or
    /// `Value::Null` for an empty or non-JSON body).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_listed_error(status, &json);
        (status, headers, json)
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.send(Method::GET, path, Some(key), None, &[]).await;
        (s, v)
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.send(Method::POST, path, Some(key), Some(body), &[]).await;
        (s, v)
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self.send(Method::PATCH, path, Some(key), Some(body), &[]).await;
        (s, v)
    }

    pub async fn delete(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let (s, _, v) = self.send(Method::DELETE, path, Some(key), None, &[]).await;
        (s, v)
    }

    /// Sends raw bytes as the body.
    pub async fn raw(&self, method: Method, path: &str, key: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

/// Every error answer any test receives carries a code of the documented table
/// (`castellan_server::error::ErrorCode`), with that code's status.
pub fn assert_listed_error(status: StatusCode, body: &Value) {
    if !(status.is_client_error() || status.is_server_error()) {
        return;
    }
    let Some(code) = body.get("code").and_then(Value::as_str) else { return };
    let listed = castellan_server::error::ErrorCode::ALL.iter().find(|c| c.as_str() == code);
    let listed = listed.unwrap_or_else(|| panic!("error code `{code}` is not in the documented table: {body}"));
    assert_eq!(listed.status().as_u16(), status.as_u16(), "`{code}` answered with the wrong status: {body}");
}

/// The ids of a list answer, in order.
pub fn ids(v: &Value) -> Vec<String> {
    v["objects"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Expands each listed async test fn (taking a `Backend`) into one test per backend.
/// The PostgreSQL half is `#[ignore]`d, so a plain `cargo test` lists it as not run
/// instead of passing it untested; `scripts/test` sets PostgreSQL up and runs it
/// with `--include-ignored`. A leading attribute applies to the SQLite half too (the
/// tests that need the official clients pass `#[ignore = "…"]`).
#[macro_export]
macro_rules! on_both_backends {
    (#[$sqlite:meta] $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[$sqlite]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::common::with_index_checks(super::$name(super::common::Backend::Sqlite)).await;
                }
            )+
        }
        mod postgres {
            $(
                #[ignore = "needs PostgreSQL: scripts/test runs it"]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::common::with_index_checks(super::$name(super::common::Backend::Postgres)).await;
                }
            )+
        }
    };
    ($($name:ident),+ $(,)?) => {
        $crate::on_both_backends!(#[cfg(all())] $($name),+);
    };
}

/// The Python interpreter with the official Braintrust clients installed
/// (`CASTELLAN_PYTHON`, made by `scripts/setup-python.sh`). The tests that need it are
/// #[ignore]d, so they run only when asked for; asked for without it they fail
/// rather than pass untested.
pub fn python() -> Option<std::path::PathBuf> {
    match std::env::var("CASTELLAN_PYTHON") {
        Ok(p) if std::path::Path::new(&p).exists() => Some(p.into()),
        _ => panic!(
            "needs the official clients: set CASTELLAN_PYTHON=$(scripts/setup-python.sh), or run scripts/test, which \
             sets it up"
        ),
    }
}

/// Runs a Python script with the official clients against `app`, passing `env`;
/// returns its stdout, panicking with its stderr if it fails.
pub fn run_python(python: &std::path::Path, script: &str, env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .envs(env.iter().copied())
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "python failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    stdout
}

/// Every byte of the database, as text: the SQLite file and its WAL, or a `pg_dump`
/// of the test's PostgreSQL schema and every row of every table in it.
pub async fn dump_database(db: &Db) -> String {
    match db {
        Db::Sqlite(path) => {
            let mut out = String::new();
            for p in [path.clone(), path.with_extension("sqlite-wal")] {
                if let Ok(bytes) = std::fs::read(&p) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            out
        }
        Db::Postgres { url, schema } => {
            use sqlx::Row;
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await.expect("connect");
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1")
                    .bind(schema)
                    .fetch_all(&pool)
                    .await
                    .expect("tables");
            // `pg_dump` of the schema, as an operator would take a backup…
            let dumped = std::process::Command::new("pg_dump")
                .args(["--no-owner", "--schema", schema.as_str(), url.as_str()])
                .output()
                .expect("pg_dump (PostgreSQL's client tools) is needed to scan a PostgreSQL database");
            assert!(dumped.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&dumped.stderr));
            let mut out = String::from_utf8_lossy(&dumped.stdout).into_owned();
            assert!(out.contains("admin_objects"), "pg_dump dumped the schema");
            // …and every row as text.
            for t in tables {
                let rows = sqlx::query(&format!("SELECT t::text AS row FROM {schema}.\"{t}\" t"))
                    .fetch_all(&pool)
                    .await
                    .expect("rows");
                for r in rows {
                    out.push_str(&r.try_get::<String, _>("row").unwrap_or_default());
                    out.push('\n');
                }
            }
            pool.close().await;
            out
        }
    }
}

/// The official Braintrust TypeScript packages from npm, at the versions pinned in
/// `scripts/compat-node` (`CASTELLAN_NODE_MODULES`, the `node_modules` directory
/// `scripts/setup-node.sh` fills). The tests that need them are #[ignore]d, so they run
/// only when asked for; asked for without them they fail rather than pass untested.
pub fn node_modules() -> Option<std::path::PathBuf> {
    match std::env::var("CASTELLAN_NODE_MODULES") {
        Ok(p) if std::path::Path::new(&p).join("braintrust").join("package.json").is_file() => Some(p.into()),
        _ => panic!(
            "needs the official TypeScript SDK and CLIs: set CASTELLAN_NODE_MODULES=$(scripts/setup-node.sh), or run \
             scripts/test, which sets them up"
        ),
    }
}

/// How long one run of the TypeScript SDK or a CLI may take before it is killed.
const NODE_DEADLINE: Duration = Duration::from_secs(180);

/// Runs `program` — `node`, or a command of the npm packages (`braintrust`, `bt`) —
/// with `args` in a fresh directory that holds `files` and links the npm packages in
/// as its `node_modules`, with a `HOME` and `TMPDIR` of its own (the `bt` CLI's eval
/// runner empties `$TMPDIR/tsx`), passing `env`; returns its output, whatever its
/// exit status. A run past the deadline is killed and fails the test.
pub fn run_node(
    node_modules: &std::path::Path,
    files: &[(&str, &str)],
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(node_modules, dir.path().join("node_modules")).expect("link node_modules");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write a script");
    }
    let (home, tmp) = (dir.path().join("home"), dir.path().join("tmp"));
    std::fs::create_dir(&home).expect("home");
    std::fs::create_dir(&tmp).expect("tmp");
    let exe = if program == "node" { "node".into() } else { node_modules.join(".bin").join(program) };
    let mut child = Command::new(&exe)
        .args(args)
        .current_dir(dir.path())
        .envs(env.iter().copied())
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env("NO_COLOR", "1")
        .env("NO_UPDATE_NOTIFIER", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > NODE_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
            panic!(
                "{program} {args:?} ran past {NODE_DEADLINE:?}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&o),
                String::from_utf8_lossy(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output =
        std::process::Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() };
    drop(dir);
    output
}
