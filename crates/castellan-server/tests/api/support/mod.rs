//! Test support for the data plane: principals with narrow grants, made through the
//! real member and ACL endpoints, and the Braintrust SDK's environment.

#![allow(dead_code)]

use super::common::TestApp;
use castellan_core::{ObjectType, Permission, UserId};
use reqwest::{Method, StatusCode};
use uuid::Uuid;

/// A member of an org with an API key.
pub struct Member {
    pub user: UserId,
    pub key: String,
}

/// Adds a member to the owner's org through the API (an invitation, accepted), in
/// `group` (by name) if given; nothing else is granted.
pub async fn member(app: &TestApp, owner: &str, email: &str, group: Option<&str>) -> Member {
    let mut invite = serde_json::json!({"emails": [email]});
    if let Some(g) = group {
        invite["group_name"] = serde_json::json!(g);
    }
    let (s, _, out) = app
        .send(
            Method::PATCH,
            "/v1/organization/members",
            Some(owner),
            Some(serde_json::json!({"invite_users": invite})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "invite: {out}");
    let token = out["invitations"][0]["token"].as_str().expect("invitation token").to_owned();
    let (s, _, acc) =
        app.send(Method::POST, "/api/invitation/accept", None, Some(serde_json::json!({"token": token})), &[]).await;
    assert_eq!(s, StatusCode::OK, "accept: {acc}");
    let user = acc["user"]["id"].as_str().and_then(|u| Uuid::parse_str(u).ok()).expect("user id");
    Member { user: UserId(user), key: acc["api_key"].as_str().expect("api key").to_owned() }
}

/// Grants `permission` on one object to a user, through `POST /v1/acl` as the owner.
pub async fn grant(app: &TestApp, owner: &str, user: UserId, object_type: ObjectType, object_id: Uuid, p: Permission) {
    let body =
        serde_json::json!({"object_type": object_type, "object_id": object_id, "user_id": user, "permission": p});
    let (s, v) = app.post("/v1/acl", owner, body).await;
    assert_eq!(s, StatusCode::OK, "grant: {v}");
}

/// The environment that points the official SDK at `app` with `key`.
pub fn sdk_env(app: &TestApp, key: &str) -> Vec<(String, String)> {
    vec![
        ("BRAINTRUST_API_KEY".into(), key.into()),
        ("BRAINTRUST_APP_URL".into(), app.base.clone()),
        ("BRAINTRUST_API_URL".into(), app.base.clone()),
        ("BRAINTRUST_APP_PUBLIC_URL".into(), "https://castellan.example".into()),
        ("BRAINTRUST_DISABLE_ATEXIT_FLUSH".into(), "1".into()),
        ("BRAINTRUST_NUM_RETRIES".into(), "0".into()),
        (
            "HOME".into(),
            std::env::temp_dir().join(format!("bt-home-{}", Uuid::new_v4().simple())).display().to_string(),
        ),
    ]
}

/// Runs a Python script with the official clients, off the async workers (the
/// server under test runs on them); returns its stdout.
pub async fn python(script: &str, env: Vec<(String, String)>) -> Option<String> {
    let py = super::common::python()?;
    let script = script.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        super::common::run_python(&py, &script, &env)
    })
    .await
    .expect("python task");
    Some(out)
}

/// The last line of a script's output, parsed as JSON (scripts print their result
/// last).
pub fn last_json(out: &str) -> serde_json::Value {
    let line = out.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("null");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n--- output\n{out}"))
}

/// Runs a CommonJS script with the official TypeScript SDK (`require("braintrust")`,
/// `require("@braintrust/api")`) off the async workers; returns its stdout, failing
/// the test with its output if it fails.
pub async fn node(script: &str, env: Vec<(String, String)>) -> Option<String> {
    let out = node_command(&[("main.js", script)], "node", &["main.js"], env).await?;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}", out.status);
    Some(stdout.into_owned())
}

/// Runs `program` (`node`, `braintrust` or `bt`) with `args` over `files` (see
/// `common::run_node`) off the async workers; returns its output, whatever its status.
pub async fn node_command(
    files: &[(&str, &str)],
    program: &str,
    args: &[&str],
    env: Vec<(String, String)>,
) -> Option<std::process::Output> {
    let modules = super::common::node_modules()?;
    let files: Vec<(String, String)> = files.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect();
    let (program, args) = (program.to_owned(), args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>());
    let out = tokio::task::spawn_blocking(move || {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        super::common::run_node(&modules, &files, &program, &args, &env)
    })
    .await
    .expect("node task");
    Some(out)
}

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxStatus, Uri};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub headers: HeaderMap,
    pub raw: Vec<u8>,
    pub body: Value,
}

/// Whether `header` (`t=<unix seconds>,v1=<hex>`) is the HMAC-SHA256 of
/// `"<t>.<body>"` under `secret`: what a receiver of Castellan's webhooks checks.
pub fn verify_signature(secret: &str, header: &str, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let Some((t, v1)) = header.split_once(',') else { return false };
    let (Some(t), Some(v1)) = (t.strip_prefix("t="), v1.strip_prefix("v1=")) else { return false };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes()) == v1
}

/// A webhook receiver (and Slack / PagerDuty stand-in) on loopback: it records
/// every request and answers the statuses it is told to, then 200.
#[derive(Clone, Default)]
pub struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    plan: Arc<Mutex<VecDeque<u16>>>,
    pub base: String,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let mut r = Receiver::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        r.base = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = r.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let r = shared.clone();
            async move {
                let status = r.plan.lock().expect("plan").pop_front().unwrap_or(200);
                r.hits.lock().expect("hits").push(Hit {
                    path: uri.to_string(),
                    headers,
                    raw: body.to_vec(),
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                let code = AxStatus::from_u16(status).expect("status");
                if uri.path().ends_with("/chat.postMessage") {
                    return (code, axum::Json(json!({"ok": status == 200, "error": "channel_not_found"})))
                        .into_response();
                }
                (code, axum::Json(json!({"received": true}))).into_response()
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        r
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }

    pub fn answer(&self, statuses: &[u16]) {
        self.plan.lock().expect("plan").extend(statuses.iter().copied());
    }

    /// Waits (up to 10 s) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Hit> {
        for _ in 0..200 {
            if self.hits().len() >= n {
                return self.hits();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} requests, got {:?}", self.hits());
    }
}
