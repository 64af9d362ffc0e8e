//! Console render benchmark: the console's pages for an organization with 1,000
//! members, 200 groups and 10,000 grants, each fetched many times over real HTTP by a
//! signed-in session; prints p50 / p99 / max per page, with two baselines measured in
//! the same run (the account page, which renders only the layout, and the API call a
//! members page makes, `GET /v1/user?limit=51`), and the machine's load.
//!
//!   cargo run -p castellan-server --release --example console_bench [-- ROUNDS]
//!
//! The time measured is the whole request on localhost (an upper bound of the
//! server's time); the server runs in this process over a fresh SQLite file.

use castellan_server::access::system_clock;
use castellan_server::config::Config;
use castellan_server::serve::{prepare, start_with_state};
use castellan_store_sqlite::SqliteStore;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MEMBERS: usize = 1000;
const GROUPS: usize = 200;
const GRANTS: usize = 10_000;
const PASSWORD: &str = "correct horse battery staple";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("bench.sqlite")).await.expect("sqlite"));
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        max_body_bytes: 16 << 20,
        secret_key: Some("5ea1ed".repeat(10) + "c0de"),
        ..Default::default()
    };
    let (state, system) = prepare(store, config, system_clock()).await.expect("state");
    let running = start_with_state(state.clone()).await.expect("start");
    let base = format!("http://{}", running.addr);
    let key = castellan_server::seed::bootstrap(&state, &system, "bench", "owner@bench.test")
        .await
        .expect("bootstrap")
        .api_key;
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        let req = http.request(method, format!("{base}{path}")).bearer_auth(&key).json(&body);
        let path = path.to_owned();
        async move {
            let r = req.send().await.expect("request");
            let status = r.status();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            assert!(status.is_success(), "{path}: {status} {v}");
            v
        }
    };
    let started = Instant::now();
    call(reqwest::Method::POST, "/api/auth/password", json!({"new_password": PASSWORD})).await;
    // 1,000 members (service accounts join at once), in batches.
    let mut users: Vec<String> = Vec::new();
    for chunk in 0..(MEMBERS / 100) {
        let accounts: Vec<Value> = (0..100).map(|i| json!({"name": format!("member-{}", chunk * 100 + i)})).collect();
        let v = call(
            reqwest::Method::PATCH,
            "/v1/organization/members",
            json!({"invite_users": {"service_accounts": accounts, "group_name": "Viewers"}}),
        )
        .await;
        users.extend(
            v["added_users"].as_array().expect("added").iter().map(|u| u["id"].as_str().expect("id").to_owned()),
        );
    }
    // 200 groups of 20 members each.
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let members: Vec<&String> = (0..20).map(|i| &users[(g * 5 + i) % users.len()]).collect();
        let v =
            call(reqwest::Method::POST, "/v1/group", json!({"name": format!("group-{g:03}"), "member_users": members}))
                .await;
        groups.push(v["id"].as_str().expect("id").to_owned());
    }
    let project = call(reqwest::Method::POST, "/v1/project", json!({"name": "bench"})).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // 10,000 grants: on the project, to users and groups, permissions and restrictions mixed.
    let perms = ["read", "update", "create", "delete", "read_acls"];
    let types = [Value::Null, json!("experiment"), json!("dataset"), json!("prompt")];
    let mut items = Vec::new();
    for i in 0..GRANTS {
        let mut item = json!({"object_type": "project", "object_id": project, "permission": perms[i % perms.len()], "restrict_object_type": types[(i / perms.len()) % types.len()]});
        let who = i / (perms.len() * types.len());
        if who.is_multiple_of(5) {
            item["group_id"] = json!(groups[who % groups.len()]);
        } else {
            item["user_id"] = json!(users[who % users.len()]);
        }
        items.push(item);
    }
    for chunk in items.chunks(1000) {
        call(reqwest::Method::POST, "/v1/acl/batch_update", json!({"add_acls": chunk})).await;
    }
    // 20 API keys of the owner (the key-minting rate limit's burst).
    for i in 0..20 {
        call(reqwest::Method::POST, "/v1/api_key", json!({"name": format!("key-{i:03}")})).await;
    }
    eprintln!("seeded {MEMBERS} members, {GROUPS} groups, {GRANTS} grants in {:.1?}", started.elapsed());

    // Sign in as the owner through the console's form.
    let session = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = session
        .post(format!("{base}/login"))
        .form(&[("email", "owner@bench.test"), ("password", PASSWORD)])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER, "sign in");
    // A member to ask Explain about, and the second page of members (its link, as
    // the first page gives it).
    let first = session.get(format!("{base}/o/bench/settings/members")).send().await.expect("get");
    let html = first.text().await.expect("body");
    let next = html
        .split("rel=\"next\"")
        .next()
        .and_then(|h| h.rsplit("href=\"").next())
        .and_then(|h| h.split('"').next())
        .expect("a next-page link on the members page")
        .replace("&amp;", "&")
        .replace("&#38;", "&");
    let group = &groups[7];
    let explain_user = &users[123];
    let pages: Vec<(&str, String)> = vec![
        ("baseline: account page", "/account".to_owned()),
        ("members", "/o/bench/settings/members".to_owned()),
        ("members, page 2", next),
        ("members, search", "/o/bench/settings/members?q=member-12".to_owned()),
        ("permission groups", "/o/bench/settings/groups".to_owned()),
        ("group permissions", format!("/o/bench/settings/groups/{group}")),
        ("group members", format!("/o/bench/settings/groups/{group}/members")),
        ("project permissions", format!("/o/bench/p/{project}/permissions")),
        ("project perms, find", format!("/o/bench/p/{project}/permissions?find=member-4")),
        (
            "project perms, explain",
            format!("/o/bench/p/{project}/permissions?explain_user={explain_user}&explain_perm=update"),
        ),
        ("audit log", "/o/bench/settings/audit-log".to_owned()),
        ("API keys", "/o/bench/settings/api-keys".to_owned()),
        ("service accounts", "/o/bench/settings/service-accounts".to_owned()),
    ];
    let load = || {
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split(' ').take(3).collect::<Vec<_>>().join(" ")
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!("machine: {cores} cores, load average {} (1, 5, 15 min) before the measurements", load());
    println!("{:<24} {:>6} {:>9} {:>9} {:>9} {:>8}", "page", "rounds", "p50 ms", "p99 ms", "max ms", "KiB");
    let report = |name: &str, mut times: Vec<Duration>, size: usize| {
        times.sort();
        let at = |q: f64| {
            times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1).min(times.len() - 1)].as_secs_f64()
                * 1000.0
        };
        println!(
            "{name:<24} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>8}",
            times.len(),
            at(0.5),
            at(0.99),
            at(1.0),
            size / 1024
        );
    };
    // The API baseline: the call behind one page of members, with an API key.
    {
        let mut times: Vec<Duration> = Vec::with_capacity(rounds);
        let mut size = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let r = http
                .get(format!("{base}/v1/user?org_name=bench&limit=51"))
                .bearer_auth(&key)
                .send()
                .await
                .expect("get");
            assert_eq!(r.status(), reqwest::StatusCode::OK);
            size = r.bytes().await.expect("body").len();
            times.push(t.elapsed());
        }
        report("baseline: GET /v1/user", times, size);
    }
    for (name, path) in &pages {
        let mut times: Vec<Duration> = Vec::with_capacity(rounds);
        let mut size = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let r = session.get(format!("{base}{path}")).send().await.expect("get");
            assert_eq!(r.status(), reqwest::StatusCode::OK, "{path}");
            size = r.bytes().await.expect("body").len();
            times.push(t.elapsed());
        }
        report(name, times, size);
    }
    println!("load average {} after", load());
    running.stop().await.expect("stop");
}
