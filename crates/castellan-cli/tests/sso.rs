//! Single sign-on from the command line, end to end: the real `castellan` binary
//! serving, the real OpenID provider (npm `oidc-provider`), `castellan sso create`,
//! `castellan login --sso` through the provider's pages to the CLI's loopback
//! listener, the saved key used by later commands, and `castellan logout` revoking
//! it.

#[path = "../../castellan-server/tests/api/oidc_provider.rs"]
#[allow(dead_code)]
mod oidc_provider;

use oidc_provider::{Browser, Provider};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_castellan");
const SECRET: &str = "cli-client-secret-0123456789abcdefghijklmnop";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The CLI with a clean environment: this credentials file, this server.
fn cli(creds: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("CASTELLAN_API_KEY")
        .env_remove("CASTELLAN_URL")
        .env_remove("CASTELLAN_ORG")
        .env_remove("CASTELLAN_DATABASE_URL")
        .env("CASTELLAN_CREDENTIALS", creds)
        .kill_on_drop(true);
    c
}

async fn run(creds: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = cli(creds);
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().await.expect("run castellan");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn json_of(creds: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Value {
    let (ok, out, err) = run(creds, args, envs).await;
    assert!(ok, "castellan {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("castellan {args:?} printed non-JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the OpenID test provider (npm oidc-provider): scripts/test runs it"]
async fn sso_login_and_logout_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let creds = dir.path().join("config").join("credentials.json");
    let data = dir.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // The server, reachable at its public URL, allowed to call the loopback provider.
    let mut server = cli(&creds)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--public-url", &url, "--log", "warn"])
        .args(["--outbound-allow", "127.0.0.1", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.expect("started").expect("line");
    let op = Provider::start(
        json!([{"client_id": "castellan", "client_secret": SECRET, "redirect_uris": [format!("{url}/auth/sso/callback")]}]),
        None,
        0,
        false,
    )
    .await;
    let boot = json_of(
        &creds,
        &[
            "bootstrap",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--org",
            "acme",
            "--email",
            "ada@acme.example",
            "--json",
        ],
        &[],
    )
    .await;
    let owner = boot["api_key"].as_str().expect("owner key").to_owned();
    // The owner configures single sign-on; the secret comes from the environment.
    let made = json_of(
        &creds,
        &[
            "sso",
            "create",
            "--url",
            &url,
            "--api-key",
            &owner,
            "--name",
            "okta",
            "--issuer",
            &op.issuer,
            "--client-id",
            "castellan",
            "--client-secret-env",
            "OKTA_SECRET",
            "--domain",
            "acme.example",
            "--scope",
            "openid",
            "--scope",
            "email",
            "--scope",
            "groups",
            "--groups-claim",
            "groups",
            "--map",
            "eng=Engineers",
            "--default-group",
            "Viewers",
            "--jit",
            "true",
            "--json",
        ],
        &[("OKTA_SECRET", SECRET)],
    )
    .await;
    assert_eq!((made["client_secret_set"].as_bool(), made["jit"].as_bool()), (Some(true), Some(true)), "{made}");
    assert_eq!(made["group_map"], json!({"eng": "Engineers"}));
    let listed = json_of(&creds, &["sso", "list", "--url", &url, "--api-key", &owner, "--json"], &[]).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert!(!listed.to_string().contains(SECRET));
    // An org without single sign-on is refused before any browser is involved.
    let (ok, _, err) = run(&creds, &["login", "--sso", "nope", "--url", &url, "--no-browser"], &[]).await;
    assert!(!ok && err.contains("does not exist or has no single sign-on"), "{err}");
    // `castellan login --sso acme`: the URL it prints leads through the provider to
    // its loopback listener.
    let mut login = cli(&creds)
        .args(["login", "--sso", "acme", "--url", &url, "--no-browser", "--json", "--timeout-secs", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("login");
    let mut err_lines = BufReader::new(login.stderr.take().expect("stderr")).lines();
    let start = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = err_lines.next_line().await.expect("stderr") {
            if let Some(u) = l.trim().strip_prefix(&format!("{url}/auth/sso/start?")) {
                return format!("{url}/auth/sso/start?{u}");
            }
        }
        panic!("login printed no URL")
    })
    .await
    .expect("the URL in time");
    assert!(start.contains("cli_port=") && start.contains("cli_challenge="), "{start}");
    let mut browser = Browser::default();
    let callback = browser.walk(&start, "alice", &format!("{url}/auth/sso/callback")).await;
    let (s, to_cli, body) = browser.send(Method::GET, &callback, None).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let to_cli = to_cli.expect("to the CLI");
    assert!(to_cli.starts_with("http://127.0.0.1:") && to_cli.contains("/callback?code="), "{to_cli}");
    assert!(!browser.cookies(&url).contains_key("castellan_session"), "a CLI sign-in opens no browser session");
    let (s, _, page) = browser.send(Method::GET, &to_cli, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("You can close this window"), "{page}");
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(login.stdout.as_mut().expect("stdout"), &mut out).await.expect("out");
    let status = tokio::time::timeout(Duration::from_secs(30), login.wait()).await.expect("exits").expect("status");
    assert!(status.success(), "login failed: {out}");
    let signed: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(signed["org_name"], "acme");
    assert!(signed.get("api_key").is_none(), "the key is not printed: {signed}");
    // The key is in a file only its owner can read, bound to the org, with an expiry.
    let saved: Value = serde_json::from_slice(&std::fs::read(&creds).expect("credentials")).expect("json");
    let key = saved["api_key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("sk-") && saved["expires_at"].is_string(), "{saved}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&creds).expect("meta").permissions().mode() & 0o777, 0o600);
    }
    // The same code cannot be exchanged twice.
    let code =
        reqwest::Url::parse(&to_cli).expect("url").query_pairs().find(|(k, _)| k == "code").expect("c").1.into_owned();
    let r = reqwest::Client::new()
        .post(format!("{url}/auth/sso/cli/token"))
        .json(&json!({"code": code, "verifier": "x".repeat(43)}))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Later commands use the saved key and server without flags.
    let me = json_of(&creds, &["whoami", "--json"], &[]).await;
    assert_eq!(me["email"], "alice@acme.example", "{me}");
    // Logout revokes the key and forgets it.
    let out = json_of(&creds, &["logout", "--json"], &[]).await;
    assert_eq!(out["revoked"], true, "{out}");
    assert!(!creds.exists());
    let r = reqwest::Client::new()
        .post(format!("{url}/api/self/me"))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the revoked key still works");
    let out = json_of(&creds, &["logout", "--json"], &[]).await;
    assert_eq!(out["note"], "not signed in");
    // Owners delete the configuration; sign-in through it stops.
    let id = made["id"].as_str().expect("id");
    json_of(&creds, &["sso", "delete", id, "--url", &url, "--api-key", &owner, "--json"], &[]).await;
    let (ok, _, err) = run(&creds, &["login", "--sso", "acme", "--url", &url, "--no-browser"], &[]).await;
    assert!(!ok && err.contains("no single sign-on"), "{err}");
    op.stop().await;
    let _ = server.kill().await;
}
