//! End to end: the real `castellan` binary serving on a free port, driven by the real
//! CLI over HTTP. Bootstrap runs as a separate process while the server is up, so the
//! server must pick the new organization up through its change feed.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_castellan");

struct Server {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(data_dir: &Path) -> Server {
    start_server_with(data_dir, &[])
}

fn start_server_with(data_dir: &Path, extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--poll-interval-ms", "100", "--log", "warn"])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("CASTELLAN_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn castellan serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).expect("the server printed its address");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in `{first}`"))
        .to_owned();
    Server { child, url, lines: rx }
}

/// Runs the CLI; returns (success, stdout, stderr).
fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("CASTELLAN_API_KEY")
        .env_remove("CASTELLAN_URL")
        .env_remove("CASTELLAN_DATABASE_URL")
        .output()
        .expect("run castellan");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> Value {
    let (ok, out, err) = cli(args);
    assert!(ok, "castellan {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("castellan {args:?} printed non-JSON ({e}): {out}"))
}

fn bootstrap(data_dir: &Path, org: &str, email: &str) -> String {
    let d = data_dir.to_str().expect("utf-8 path");
    let v = json(&["bootstrap", "--data-dir", d, "--org", org, "--email", email, "--json"]);
    v["api_key"].as_str().expect("api_key").to_owned()
}

#[test]
fn the_binary_serves_bootstraps_and_keeps_orgs_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = start_server(&data);
    let hint = server.lines.recv_timeout(Duration::from_secs(10)).expect("first-run hint");
    assert!(hint.contains("no organization exists yet"), "{hint}");
    let how = server.lines.recv_timeout(Duration::from_secs(10)).expect("bootstrap command");
    assert!(how.contains("castellan bootstrap"), "{how}");

    // Bootstrap in another process while the server runs.
    let a = bootstrap(&data, "acme", "ada@acme.example");
    let z = bootstrap(&data, "zeta", "zed@zeta.example");
    let (ok, _, err) =
        cli(&["bootstrap", "--data-dir", data.to_str().expect("path"), "--org", "ACME", "--email", "x@y.example"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let url = server.url.as_str();

    // The server sees the new orgs (through the change feed) without a restart.
    let mut me = Value::Null;
    for _ in 0..100 {
        let (ok, out, _) = cli(&["whoami", "--url", url, "--api-key", &a, "--json"]);
        if ok {
            me = serde_json::from_str(&out).expect("json");
            if me["organizations"].as_array().is_some_and(|o| o.len() == 1) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(me["email"], "ada@acme.example");
    assert_eq!(me["organizations"][0]["name"], "acme");

    let p = json(&["project", "create", "alpha", "--description", "first", "--url", url, "--api-key", &a, "--json"]);
    let pid = p["id"].as_str().expect("project id").to_owned();
    let again = json(&["project", "create", "alpha", "--url", url, "--api-key", &a, "--json"]);
    assert_eq!(again["id"], pid.as_str(), "create returns the existing project");
    json(&["project", "create", "beta", "--url", url, "--api-key", &a, "--json"]);
    let list = json(&["project", "list", "--url", url, "--api-key", &a, "--json"]);
    let names: Vec<&str> =
        list["objects"].as_array().expect("objects").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, vec!["beta", "alpha"]);
    let (ok, table, _) = cli(&["project", "list", "--url", url, "--api-key", &a]);
    assert!(ok && table.starts_with("ID") && table.contains("alpha") && table.contains("first"), "{table}");

    // Keys: create, use, list (masked), revoke.
    let k = json(&["api-key", "create", "ci", "--url", url, "--api-key", &a, "--json"]);
    let raw = k["key"].as_str().expect("raw key").to_owned();
    let kid = k["id"].as_str().expect("key id").to_owned();
    json(&["whoami", "--url", url, "--api-key", &raw, "--json"]);
    let (ok, keys, _) = cli(&["api-key", "list", "--url", url, "--api-key", &a]);
    assert!(ok && keys.contains("ci") && !keys.contains(&raw), "{keys}");
    json(&["api-key", "delete", &kid, "--url", url, "--api-key", &a, "--json"]);
    let (ok, _, err) = cli(&["whoami", "--url", url, "--api-key", &raw]);
    assert!(!ok && err.contains("401"), "a revoked key is refused: {err}");

    // The other org sees none of it.
    let (ok, _, err) = cli(&["project", "get", &pid, "--url", url, "--api-key", &z]);
    assert!(!ok && err.contains("404") && err.contains("not_found"), "{err}");
    let (ok, _, err) = cli(&["project", "delete", &pid, "--url", url, "--api-key", &z]);
    assert!(!ok && err.contains("404"), "{err}");
    let zl = json(&["project", "list", "--url", url, "--api-key", &z, "--json"]);
    assert_eq!(zl["objects"].as_array().map(Vec::len), Some(0));
    let (ok, _, err) = cli(&["project", "list", "--org", "acme", "--url", url, "--api-key", &z]);
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, err) = cli(&["project", "list", "--url", url]);
    assert!(!ok && err.contains("API key"), "{err}");

    // Still there for its owner, after everything the other org tried.
    let got = json(&["project", "get", &pid, "--url", url, "--api-key", &a, "--json"]);
    assert_eq!(got["name"], "alpha");
}

#[test]
fn migrate_applies_migrations_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().join("data");
    let d = d.to_str().expect("path");
    for _ in 0..2 {
        let (ok, out, err) = cli(&["migrate", "--data-dir", d]);
        assert!(ok, "{err}");
        assert!(out.contains("migrations applied (sqlite)"), "{out}");
    }
    assert!(dir.path().join("data/castellan.sqlite").exists());
}

#[test]
fn maintenance_compact_rewrites_the_database_and_reports_sizes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    bootstrap(&data, "acme", "ada@acme.example");
    let d = data.to_str().expect("path");
    let v = json(&["maintenance", "compact", "--data-dir", d, "--json"]);
    let done = v.as_array().expect("a list");
    assert_eq!(done.len(), 1, "{v}");
    assert_eq!(done[0]["what"], "database file");
    let (before, after) = (done[0]["bytes_before"].as_i64().expect("n"), done[0]["bytes_after"].as_i64().expect("n"));
    assert!(before > 0 && after > 0 && after <= before, "{v}");
    let (ok, out, err) = cli(&["maintenance", "compact", "--data-dir", d]);
    assert!(ok, "{err}");
    assert!(out.contains("database file") && out.contains("compacted in"), "{out}");
    assert!(err.contains("compacting the sqlite database"), "progress on stderr: {err}");
}

#[test]
fn a_bad_config_file_is_refused_with_the_offending_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("castellan.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nbogus = 1\n").expect("write");
    let (ok, _, err) = cli(&["migrate", "--config", cfg.to_str().expect("path")]);
    assert!(!ok && err.contains("bogus"), "{err}");
}

fn sqlite_exec(db: &Path, sql: &str) {
    let script =
        "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], timeout=30)\nc.execute(sys.argv[2])\nc.commit()\n";
    let out = Command::new("python3").args(["-c", script]).arg(db).arg(sql).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn access_is_managed_from_the_cli_and_audit_tampering_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let owner = bootstrap(&data, "acme", "ada@acme.example");
    let server = start_server(&data);
    let url = server.url.as_str();
    let k = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["--url".into(), url.into(), "--api-key".into(), owner.clone(), "--json".into()]);
        v
    };
    let run = |args: Vec<String>| json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let p = run(k(&["project", "create", "alpha"]));
    let pid = p["id"].as_str().expect("pid").to_owned();
    let g = run(k(&["group", "create", "auditors"]));
    assert_eq!(g["name"], "auditors");
    let inv = run(k(&["member", "invite", "--email", "bob@acme.example", "--group", "Viewers"]));
    let token = inv["invitations"][0]["token"].as_str().expect("token").to_owned();
    let acc = json(&["member", "accept", &token, "--url", url, "--json"]);
    let bob_key = acc["api_key"].as_str().expect("bob key").to_owned();
    let bob = acc["user"]["id"].as_str().expect("bob").to_owned();
    let (ok, _, err) = cli(&["project", "create", "nope", "--url", url, "--api-key", &bob_key]);
    assert!(!ok && err.contains("403"), "a viewer cannot create projects: {err}");
    let acl = run(k(&[
        "acl",
        "create",
        "--object-type",
        "project",
        "--object-id",
        &pid,
        "--user",
        &bob,
        "--permission",
        "update",
    ]));
    assert_eq!(acl["permission"], "update");
    let e = run(k(&[
        "access",
        "explain",
        "--object-type",
        "project",
        "--object-id",
        &pid,
        "--permission",
        "update",
        "--user",
        &bob,
    ]));
    assert_eq!(e["allowed"], true);
    assert_eq!(e["grants"][0]["acl_id"], acl["id"]);
    let who = run(k(&["access", "who-can", "--object-type", "project", "--object-id", &pid, "--permission", "update"]));
    assert!(who.as_array().is_some_and(|w| w.iter().any(|x| x == bob.as_str())), "{who}");
    let (ok, text, _) = cli(&[
        "access",
        "explain",
        "--object-type",
        "project",
        "--object-id",
        &pid,
        "--permission",
        "delete",
        "--url",
        url,
        "--api-key",
        &bob_key,
    ]);
    assert!(ok && text.starts_with("DENIED"), "{text}");
    let r = run(k(&["role", "create", "reader", "--permission", "read", "--permission", "read_acls:project"]));
    assert_eq!(r["member_permissions"].as_array().map(Vec::len), Some(2));
    let roles = run(k(&["role", "list"]));
    assert!(roles["objects"]
        .as_array()
        .is_some_and(|r| r.iter().any(|x| x["name"] == "Owner" && x["org_id"].is_null())));
    run(k(&["acl", "delete", acl["id"].as_str().expect("id")]));

    // The audit chain verifies, then detects an altered record and a deleted one.
    let v = run(k(&["audit", "verify"]));
    assert_eq!(v["ok"], true, "{v}");
    let head = v["head"]["hash"].as_str().expect("head").to_owned();
    let listed = run(k(&["audit", "list", "--event-type", "acl."]));
    assert!(listed["objects"].as_array().is_some_and(|l| l.len() >= 2));
    let db = data.join("castellan.sqlite");
    let n = v["head"]["seq"].as_u64().expect("seq");
    // Truncating the tail together with the head is invisible to the chain alone, but
    // not to a head recorded earlier.
    sqlite_exec(&db, &format!("DELETE FROM audit_log WHERE seq = {n}"));
    sqlite_exec(
        &db,
        &format!("UPDATE audit_head SET seq = {0}, hash = (SELECT hash FROM audit_log WHERE seq = {0})", n - 1),
    );
    let (ok, _, _) = cli(&["audit", "verify", "--url", url, "--api-key", &owner]);
    assert!(ok, "a consistent truncation cannot be seen without an anchor");
    let (ok, out, _) = cli(&["audit", "verify", "--url", url, "--api-key", &owner, "--expect-head", &head]);
    assert!(!ok && out.contains("truncated or rewritten"), "{out}");
    sqlite_exec(&db, "UPDATE audit_log SET resource_name = 'evil' WHERE seq = 3");
    let (ok, out, err) = cli(&["audit", "verify", "--url", url, "--api-key", &owner]);
    assert!(!ok, "tampering must fail verification");
    assert!(out.contains("BROKEN at record 3") && err.contains("does not verify"), "{out}\n{err}");
    sqlite_exec(&db, "DELETE FROM audit_log WHERE seq = 5");
    let (ok, out, _) = cli(&["audit", "verify", "--url", url, "--api-key", &owner]);
    assert!(!ok && out.contains("record 5 is missing"), "{out}");
}

#[test]
fn secrets_never_reach_the_logs_or_the_database_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let owner = bootstrap(&data, "acme", "ada@acme.example");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--log", "trace", "--data-dir"])
        .arg(&data)
        .env_remove("CASTELLAN_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let url = first.split_whitespace().find(|w| w.starts_with("http://")).expect("url").to_owned();
    let url = url.as_str();
    let j = |args: &[&str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend(["--url", url, "--api-key", owner.as_str(), "--json"]);
        json(&v)
    };
    let key = j(&["api-key", "create", "k"])["key"].as_str().expect("key").to_owned();
    let sa = j(&["service-account", "create", "bot", "--token", "t", "--group", "Viewers"]);
    let token = sa["added_users"][0]["api_key"].as_str().expect("token").to_owned();
    assert!(token.starts_with("bt-st-"));
    let inv = j(&["member", "invite", "--email", "pat@acme.example"]);
    let invitation = inv["invitations"][0]["token"].as_str().expect("inv").to_owned();
    let password = "correct horse battery staple";
    let accept = format!(r#"{{"token": "{invitation}", "password": "{password}"}}"#);
    let out = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-d",
            &accept,
            &format!("{url}/api/invitation/accept"),
        ])
        .output()
        .expect("curl");
    let acc: Value = serde_json::from_slice(&out.stdout).expect("accept json");
    let pat_key = acc["api_key"].as_str().expect("pat key").to_owned();
    let login = format!(r#"{{"email": "pat@acme.example", "password": "{password}"}}"#);
    let out = Command::new("curl")
        .args(["-s", "-i", "-X", "POST", "-d", &login, &format!("{url}/api/auth/login")])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let session = text
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: castellan_session="))
        .and_then(|l| l.split(';').next())
        .expect("session cookie")
        .to_owned();
    // A SCIM token, from the CLI: shown once, listed as a preview, used, revoked.
    let scim = j(&["scim-token", "create", "okta"]);
    let scim_token = scim["key"].as_str().expect("scim token").to_owned();
    assert!(scim_token.starts_with("scim-"), "{scim}");
    let listed = j(&["scim-token", "list"]);
    assert_eq!(listed["objects"][0]["id"], scim["id"], "{listed}");
    assert!(!listed.to_string().contains(&scim_token));
    let (ok, table, _) = cli(&["scim-token", "list", "--url", url, "--api-key", owner.as_str()]);
    assert!(ok && table.contains("okta") && !table.contains(&scim_token), "{table}");
    let scim_get = |t: &str| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", &format!("authorization: Bearer {t}")])
            .arg(format!("{url}/scim/v2/Users"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(scim_get(&scim_token), "200");
    let id = scim["id"].as_str().expect("id").to_owned();
    let revoked = j(&["scim-token", "revoke", &id]);
    assert_eq!(revoked["id"], scim["id"]);
    assert_eq!(scim_get(&scim_token), "401");
    // Use every credential once, wrongly too, so they pass through the server.
    for k in [&key, &token, &pat_key] {
        json(&["whoami", "--url", url, "--api-key", k, "--json"]);
    }
    let (ok, _, _) = cli(&["whoami", "--url", url, "--api-key", "sk-wrongwrongwrongwrongwrongwrong"]);
    assert!(!ok);
    let _ = child.kill();
    let _ = child.wait();
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    assert!(logs.contains("request"), "the server logged requests at trace level");
    let mut db = Vec::new();
    for f in ["castellan.sqlite", "castellan.sqlite-wal"] {
        if let Ok(b) = std::fs::read(data.join(f)) {
            db.extend(b);
        }
    }
    let db = String::from_utf8_lossy(&db).into_owned();
    assert!(db.len() > 10_000);
    for (what, secret) in [
        ("bootstrap key", owner.as_str()),
        ("api key", key.as_str()),
        ("service token", token.as_str()),
        ("SCIM token", scim_token.as_str()),
        ("invitation", invitation.as_str()),
        ("password", password),
        ("first key", pat_key.as_str()),
        ("session", session.as_str()),
    ] {
        let tail = &secret[secret.len() - 20..];
        assert!(!logs.contains(tail), "the {what} is in the server log");
        assert!(!db.contains(tail), "the {what} is in the database file");
    }
    assert!(!logs.contains("wrongwrongwrong"), "rejected credentials are not logged either");
}

#[test]
fn configuration_is_exported_planned_and_applied_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let owner = bootstrap(&data, "acme", "ada@acme.example");
    let server = start_server(&data);
    let url = server.url.as_str();
    let with = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["--url".into(), url.into(), "--api-key".into(), owner.clone()]);
        v
    };
    let run = |args: Vec<String>| cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (ok, _, err) = run(with(&["project", "create", "web"]));
    assert!(ok, "{err}");
    let file = dir.path().join("acme.toml");
    let f = file.to_str().expect("path");
    let (ok, out, err) = run(with(&["config", "export", "--org", "acme", "-o", f]));
    assert!(ok && out.contains("wrote"), "{out}{err}");
    let text = std::fs::read_to_string(&file).expect("exported");
    assert!(text.starts_with("# The configuration of organization `acme`"), "{text}");
    assert!(
        text.contains("[[groups]]") && text.contains("name = \"Owners\"") && text.contains("name = \"web\""),
        "{text}"
    );
    let (ok, out, _) = run(with(&["config", "plan", "-f", f]));
    assert!(ok && out.contains("already matches"), "{out}");

    // An edit: a new group, a tag, the Viewers' description; then plan and apply it.
    let edited = text.replace(
        "[[groups]]\nname = \"Viewers\"",
        "[[groups]]\nname = \"Oncall\"\ndescription = \"pager\"\nusers = [\"ada@acme.example\"]\n\n[[groups]]\nname = \"Viewers\"",
    ) + "\n[[objects]]\nkind = \"project_tag\"\non = \"project/web\"\nname = \"bug\"\ndata = { color = \"red\" }\n";
    assert_ne!(edited, text, "the edit applies to the exported text");
    std::fs::write(&file, &edited).expect("write");
    let (ok, out, err) = run(with(&["config", "plan", "-f", f]));
    assert!(ok, "{err}");
    assert!(out.contains("plan for `acme`: 2 to add, 0 to change, 0 to remove"), "{out}");
    assert!(out.contains("+ group Oncall\n    description: \"pager\"\n    users: [\"ada@acme.example\"]\n"), "{out}");
    assert!(out.contains("+ project_tag project/web/project_tag/bug\n    data: {\"color\":\"red\"}\n"), "{out}");
    let plan = run(with(&["config", "plan", "-f", f, "--json"]));
    let plan: Value = serde_json::from_str(&plan.1).expect("json plan");
    assert_eq!(plan["changes"].as_array().map(Vec::len), Some(2), "{plan}");
    // Without a terminal to confirm on, apply needs --yes.
    let (ok, _, err) = run(with(&["config", "apply", "-f", f]));
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, out, err) = run(with(&["config", "apply", "-f", f, "--yes"]));
    assert!(ok && out.contains("applied 2 change(s) to `acme` at revision"), "{out}{err}");
    let (ok, out, err) = run(with(&["config", "apply", "-f", f, "--yes", "--json"]));
    assert!(ok, "{err}");
    let again: Value = serde_json::from_str(&out).expect("json");
    assert_eq!((again["changes"].clone(), again["revision"].clone()), (serde_json::json!([]), Value::Null));
    // A refusal is printed and nothing is applied.
    std::fs::write(
        &file,
        edited.replace("members = [\"ada@acme.example\"]", "members = [\"ada@acme.example\", \"zed@acme.example\"]"),
    )
    .expect("write");
    let (ok, out, err) = run(with(&["config", "apply", "-f", f, "--yes"]));
    assert!(!ok && out.contains("! member zed@acme.example") && err.contains("not applied"), "{out}{err}");
    // JSON files work the same.
    let json_file = dir.path().join("acme.json");
    let (ok, _, err) = run(with(&["config", "export", "-o", json_file.to_str().expect("path")]));
    assert!(ok, "{err}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json_file).expect("json")).expect("json doc");
    assert!(doc["groups"].as_array().is_some_and(|g| g.iter().any(|g| g["name"] == "Oncall")), "{doc}");
    let (ok, out, _) = run(with(&["config", "plan", "-f", json_file.to_str().expect("path")]));
    assert!(ok && out.contains("already matches"), "{out}");
}

fn curl(method: &str, url: &str, key: &str, body: &str) -> Value {
    let out = Command::new("curl")
        .args(["-s", "-X", method, "-H", "content-type: application/json", "-H"])
        .arg(format!("authorization: Bearer {key}"))
        .args(["-d", body, url])
        .output()
        .expect("curl");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{method} {url}: not JSON ({e})"))
}

#[test]
fn the_master_key_rotates_while_the_server_serves_and_a_wrong_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let d = data.to_str().expect("utf-8");
    let owner = bootstrap(&data, "acme", "ada@acme.example");
    let key_file = data.join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).expect("secret.key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the generated key is private");
    }
    let server = start_server(&data);
    let url = server.url.clone();
    let me = json(&["whoami", "--url", &url, "--api-key", &owner, "--json"]);
    let org = me["organizations"][0]["id"].as_str().expect("org").to_owned();
    let secret_value = "sk-proj-rotation-0123456789abcdefghijklmn";
    let s = curl(
        "POST",
        &format!("{url}/v1/ai_secret"),
        &owner,
        &format!(r#"{{"name": "OPENAI", "type": "openai", "secret": "{secret_value}"}}"#),
    );
    let secret_id = s["id"].as_str().unwrap_or_else(|| panic!("{s}")).to_owned();
    let v = curl(
        "POST",
        &format!("{url}/v1/env_var"),
        &owner,
        &format!(
            r#"{{"object_type": "organization", "object_id": "{org}", "name": "TOKEN", "value": "a-value-long-enough-to-preview-1234"}}"#
        ),
    );
    assert!(v["id"].is_string(), "{v}");
    let before = json(&["secrets", "status", "--data-dir", d, "--json"]);
    let old_id = before["key_id"].as_str().expect("key id").to_owned();
    assert_eq!(before["sealed_values"][&old_id], 3, "two values and the URL-signing key: {before}");
    // Rotate while the server runs.
    let rotated = json(&["secrets", "rotate-key", "--generate", "--data-dir", d, "--json"]);
    let new_id = rotated["key_id"].as_str().expect("key id").to_owned();
    assert_ne!(new_id, old_id);
    assert_eq!(
        (rotated["resealed"].as_u64(), rotated["signing_key_resealed"].as_bool()),
        (Some(2), Some(true)),
        "{rotated}"
    );
    assert_eq!(rotated["by_key"], serde_json::json!({ new_id.clone(): 3 }), "{rotated}");
    assert!(data.join(format!("secret.key.previous-{old_id}")).exists(), "the old key is kept aside");
    // The running server still answers; a restarted one opens the re-sealed values.
    let listed = curl("GET", &format!("{url}/v1/ai_secret"), &owner, "");
    assert_eq!(listed["objects"][0]["preview_secret"], "sk-...klmn", "{listed}");
    drop(server);
    let server = start_server(&data);
    let url = server.url.clone();
    let renamed = curl("PATCH", &format!("{url}/v1/ai_secret/{secret_id}"), &owner, r#"{"name": "OPENAI_KEY"}"#);
    assert_eq!(renamed["name"], "OPENAI_KEY", "renaming re-seals, so the value opened: {renamed}");
    drop(server);
    // A second rotation finds nothing to do; the old key can then go.
    let again = json(&["secrets", "rotate-key", "--forget-previous", "--data-dir", d, "--json"]);
    assert_eq!((again["resealed"].as_u64(), again["unchanged"].as_u64()), (Some(0), Some(2)), "{again}");
    assert!(!data.join(format!("secret.key.previous-{old_id}")).exists(), "forgotten");
    // The wrong key: a clear refusal to start, and nothing changed.
    let right = std::fs::read_to_string(&key_file).expect("key");
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).expect("write");
    let (ok, _, err) = cli(&["serve", "--listen", "127.0.0.1:0", "--data-dir", d]);
    assert!(!ok, "a server with the wrong key must not start");
    assert!(err.contains("cannot open") && err.contains(&new_id) && err.contains("Nothing was changed"), "{err}");
    let (ok, _, err) = cli(&["secrets", "rotate-key", "--data-dir", d]);
    assert!(!ok && err.contains("cannot open"), "rotation refuses too: {err}");
    std::fs::write(&key_file, right).expect("restore");
    let after = json(&["secrets", "status", "--data-dir", d, "--json"]);
    assert_eq!(after["sealed_values"], serde_json::json!({ new_id: 3 }), "{after}");
    // No value in the database files, before or after.
    let mut db = Vec::new();
    for f in ["castellan.sqlite", "castellan.sqlite-wal"] {
        if let Ok(b) = std::fs::read(data.join(f)) {
            db.extend(b);
        }
    }
    let text = String::from_utf8_lossy(&db);
    assert!(text.len() > 1000 && !text.contains(secret_value) && !text.contains("0123456789abcdefghij"));
}

#[test]
fn usage_and_the_plan_are_shown_and_set_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let owner = bootstrap(&data, "acme", "ada@acme.example");
    let server = start_server(&data);
    let url = server.url.as_str();
    let with = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["--url".into(), url.into(), "--api-key".into(), owner.clone()]);
        v
    };
    let run = |args: Vec<String>| cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (ok, out, err) = run(with(&["project", "create", "web", "--json"]));
    assert!(ok, "{err}");
    let pid = serde_json::from_str::<Value>(&out).expect("json")["id"].as_str().expect("id").to_owned();
    let rows = serde_json::json!({"rows": [{"project_id": pid, "log_id": "g", "id": "a", "scores": {"s": 1}},
        {"project_id": pid, "log_id": "g", "id": "b"}]});
    let done = curl("POST", &format!("{url}/logs3"), &owner, &rows.to_string());
    assert!(done.get("xact_id").is_some(), "{done}");

    let (ok, out, err) = run(with(&["usage", "--json"]));
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!((v["totals"]["spans"].as_i64(), v["totals"]["scores"].as_i64()), (Some(2), Some(1)), "{v}");
    let (ok, out, err) = run(with(&["usage", "--granularity", "month"]));
    assert!(ok, "{err}");
    assert!(out.starts_with("PERIOD") && out.contains("SPANS"), "{out}");
    let total = out.lines().find(|l| l.starts_with("total")).expect("a total row");
    assert_eq!(total.split_whitespace().skip(2).collect::<Vec<_>>(), ["2", "1"], "{out}");
    assert!(out.contains("spans 2 (unlimited)"), "{out}");
    let (ok, _, err) = run(with(&["usage", "--from", "2026-02-30"]));
    assert!(!ok && err.contains("`from` must be a date"), "{err}");

    let (ok, out, err) =
        run(with(&["plan", "set", "--spans", "1_000", "--enforcement", "hard", "--alert-thresholds", "80,100"]));
    assert!(ok, "{err}");
    assert!(out.contains("spans / month") && out.contains("1000") && out.contains("80%, 100%"), "{out}");
    let (ok, out, err) = run(with(&["plan", "show", "--json"]));
    assert!(ok, "{err}");
    let p: Value = serde_json::from_str(&out).expect("json");
    assert_eq!((p["limits"]["spans"].as_i64(), p["enforcement"].as_str()), (Some(1000), Some("hard")), "{p}");
    // The cost-alert webhook's signing secret: printed once, when generated.
    let (ok, out, err) = run(with(&["plan", "set", "--alert-webhook-url", "https://hooks.example/costs"]));
    assert!(ok && out.contains("signing secret (shown once") && out.contains("whsec_"), "{out}{err}");
    let (ok, out, _) = run(with(&["plan", "show"]));
    assert!(ok && out.contains("signed (secret generated") && !out.contains("whsec_"), "{out}");
    let (ok, out, _) = run(with(&["plan", "set", "--rotate-alert-signing-secret", "--json"]));
    let p: Value = serde_json::from_str(&out).expect("json");
    assert!(ok && p["alert_signing_secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{p}");
    let (ok, out, _) = run(with(&["usage"]));
    assert!(ok && out.contains("spans 2 of 1000 (0.2%)"), "{out}");
    let (ok, _, err) = run(with(&["plan", "set", "--enforcement", "strict"]));
    assert!(!ok && err.contains("`enforcement` must be `soft` or `hard`"), "{err}");
    let (ok, out, err) = run(with(&["plan", "set", "--reset", "--json"]));
    assert!(ok, "{err}");
    let p: Value = serde_json::from_str(&out).expect("json");
    assert_eq!((p["limits"]["spans"].clone(), p["enforcement"].as_str()), (Value::Null, Some("soft")), "{p}");
}

/// A webhook receiver on loopback: answers each request with the next status of
/// `statuses` (the last one from then on); the bodies it received.
fn receiver(statuses: Vec<u16>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = conn.read(&mut chunk) else { break String::new() };
                if n == 0 {
                    break String::new();
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                    }
                }
            };
            seen.lock().expect("lock").push(body);
            let status = statuses.get(i).or(statuses.last()).copied().unwrap_or(200);
            let _ = write!(conn, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

#[test]
fn automation_runs_and_deliveries_are_shown_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let owner = bootstrap(&data, "acme", "ada@acme.example");
    let server = start_server_with(
        &data,
        &["--outbound-allow", "127.0.0.1", "--webhook-attempts", "2", "--webhook-backoff-ms", "50"],
    );
    let url = server.url.as_str();
    let with = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["--url".into(), url.into(), "--api-key".into(), owner.clone()]);
        v
    };
    let run = |args: Vec<String>| cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (ok, out, err) = run(with(&["project", "create", "web", "--json"]));
    assert!(ok, "{err}");
    let pid = serde_json::from_str::<Value>(&out).expect("json")["id"].as_str().expect("id").to_owned();
    let me = json(&["whoami", "--url", url, "--api-key", &owner, "--json"]);
    let org = me["organizations"][0]["id"].as_str().expect("org").to_owned();

    // An alert whose first notification fails (503 twice) and whose second is taken.
    let (hook, got) = receiver(vec![503, 503, 200]);
    let alert = curl(
        "POST",
        &format!("{url}/v1/project_automation"),
        &owner,
        &serde_json::json!({"project_id": pid, "name": "errors", "config": {"event_type": "logs",
            "btql_filter": "metadata.level = 'error'", "interval_seconds": 3600,
            "action": {"type": "webhook", "url": format!("{hook}/hook?token=abc")}}})
        .to_string(),
    );
    let aid = alert["id"].as_str().unwrap_or_else(|| panic!("{alert}")).to_owned();
    let log = |ids: &[&str]| {
        let rows: Vec<Value> = ids
            .iter()
            .map(|i| serde_json::json!({"project_id": pid, "log_id": "g", "id": i, "metadata": {"level": "error"}}))
            .collect();
        let done = curl("POST", &format!("{url}/logs3"), &owner, &serde_json::json!({"rows": rows}).to_string());
        assert!(done.get("xact_id").is_some(), "{done}");
    };
    log(&["a", "b"]);
    let first = curl("POST", &format!("{url}/v1/project_automation/{aid}/run"), &owner, "{}");
    assert_eq!(first["count"], 2, "{first}");
    log(&["c"]);
    let second = curl("POST", &format!("{url}/v1/project_automation/{aid}/run"), &owner, "{}");
    assert_eq!(second["count"], 1, "{second}");
    assert_eq!(got.lock().expect("lock").len(), 3, "two attempts, then one");

    // Runs, by name and by id, as a table and as JSON (newest first).
    let (ok, out, err) = run(with(&["automation", "runs", "errors", "--project", "web"]));
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("STARTED") && lines[0].contains("STATUS") && lines[0].contains("ERROR"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    let cols: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(cols[2..5], ["error", "2", "delivery"], "{out}");
    assert!(lines[2].contains("503"), "the failed delivery's error is shown: {out}");
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cols[2..], ["ok", "1", "-"], "{out}");
    let runs = json(&with(&["automation", "runs", &aid, "--json"]).iter().map(String::as_str).collect::<Vec<_>>());
    let counts: Vec<i64> =
        runs["objects"].as_array().expect("objects").iter().filter_map(|r| r["count"].as_i64()).collect();
    assert_eq!(counts, [1, 2], "{runs}");
    assert!(runs["objects"][1]["finished"].is_string() && runs["objects"][1]["error"].is_string(), "{runs}");
    let by_pid = run(with(&["automation", "runs", "errors", "--project", &pid, "--json"]));
    assert_eq!(serde_json::from_str::<Value>(&by_pid.1).expect("json"), runs, "a project id works as well as its name");

    // Deliveries: the target without its query token, the attempts, the statuses.
    let (ok, out, err) = run(with(&["automation", "deliveries", "errors", "--project", "web"]));
    assert!(ok, "{err}");
    assert!(out.starts_with("CREATED") && out.contains(&format!("{hook}/hook")) && !out.contains("token"), "{out}");
    let rows: Vec<Vec<&str>> = out.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0][1..5], ["logs", "ok", "1", "200"], "{out}");
    assert_eq!(rows[1][1..5], ["logs", "failed", "2", "503"], "{out}");
    let ds = json(&with(&["automation", "deliveries", &aid, "--json"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(ds["objects"][1]["attempts"], 2, "{ds}");

    // An organization's retention rule: named without --project.
    let keep = curl(
        "POST",
        &format!("{url}/v1/org_automation"),
        &owner,
        &serde_json::json!({"org_id": org, "name": "keep-90",
            "config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 90}})
        .to_string(),
    );
    let kid = keep["id"].as_str().unwrap_or_else(|| panic!("{keep}")).to_owned();
    let swept = curl("POST", &format!("{url}/v1/org_automation/{kid}/run"), &owner, "{}");
    assert_eq!((swept["status"].as_str(), swept["count"].as_i64()), (Some("ok"), Some(0)), "{swept}");
    let (ok, out, err) = run(with(&["automation", "runs", "keep-90"]));
    assert!(ok && out.lines().count() == 2 && out.lines().nth(1).is_some_and(|l| l.contains(" ok ")), "{out}{err}");
    let (ok, out, _) = run(with(&["automation", "list"]));
    assert!(ok && out.contains("keep-90") && out.contains("organization") && out.contains("errors"), "{out}");
    let listed = json(
        &with(&["automation", "list", "--project", "web", "--json"]).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(listed["project_automations"][0]["id"], aid.as_str(), "{listed}");
    assert_eq!(listed["org_automations"], serde_json::json!([]), "{listed}");

    // An online scoring rule's runs are the worker's passes.
    let rule = curl(
        "POST",
        &format!("{url}/v1/project_score"),
        &owner,
        &serde_json::json!({"project_id": pid, "name": "exact", "score_type": "online",
            "config": {"online": {"sampling_rate": 1, "scorers": [{"type": "global", "name": "ExactMatch"}]}}})
        .to_string(),
    );
    assert!(rule["id"].is_string(), "{rule}");
    let rows =
        serde_json::json!({"rows": [{"project_id": pid, "log_id": "g", "id": "s1", "output": "x", "expected": "x"}]});
    curl("POST", &format!("{url}/logs3"), &owner, &rows.to_string());
    let mut scored = Value::Null;
    for _ in 0..150 {
        let (ok, out, _) = run(with(&["automation", "runs", "exact", "--project", "web", "--json"]));
        scored = serde_json::from_str(&out).unwrap_or(Value::Null);
        if ok && scored["objects"].as_array().is_some_and(|o| !o.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        (scored["objects"][0]["status"].as_str(), scored["objects"][0]["count"].as_i64()),
        (Some("ok"), Some(1)),
        "{scored}"
    );

    // Mistakes are named.
    let (ok, _, err) = run(with(&["automation", "runs", "nope", "--project", "web"]));
    assert!(!ok && err.contains("project `web` has no automation or online scoring rule named `nope`"), "{err}");
    let (ok, _, err) = run(with(&["automation", "runs", "errors"]));
    assert!(!ok && err.contains("--project"), "{err}");
    let (ok, _, err) = run(with(&["automation", "runs", "errors", "--project", "nowhere"]));
    assert!(!ok && err.contains("project `nowhere` not found"), "{err}");
    let (ok, _, err) = run(with(&["automation", "deliveries", "keep-90"]));
    assert!(!ok && err.contains("delivers no notifications"), "{err}");
    let (ok, _, err) = run(with(&["automation", "runs", "00000000-0000-0000-0000-000000000001"]));
    assert!(!ok && err.contains("not found"), "{err}");

    // Cost alerts' deliveries: none yet, as a table and as JSON.
    let (ok, out, err) = run(with(&["plan", "alerts"]));
    assert!(ok && out == "no deliveries yet\n", "{out}{err}");
    let (ok, out, _) = run(with(&["plan", "alerts", "--json"]));
    assert!(ok && serde_json::from_str::<Value>(&out).expect("json")["objects"] == serde_json::json!([]), "{out}");
}
