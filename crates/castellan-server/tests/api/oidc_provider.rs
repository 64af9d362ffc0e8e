//! The OpenID provider the single sign-on tests start: `scripts/oidc-node/provider.mjs`
//! (npm `oidc-provider`, pinned in `scripts/oidc-node`, installed by
//! `scripts/setup-node.sh --oidc`; `CASTELLAN_OIDC_NODE_MODULES` names its
//! `node_modules`), on a free loopback port, and a browser stand-in that walks its
//! login and consent pages over HTTP keeping cookies by hand.

use base64::Engine;
use reqwest::{header, StatusCode};
use serde_json::Value;
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `node_modules` holding `oidc-provider`; a test that needs it fails (never
/// skips) without it.
pub fn node_modules() -> PathBuf {
    match std::env::var("CASTELLAN_OIDC_NODE_MODULES") {
        Ok(p) if std::path::Path::new(&p).join("oidc-provider").join("package.json").is_file() => p.into(),
        _ => panic!(
            "needs the OpenID test provider: set CASTELLAN_OIDC_NODE_MODULES=$(scripts/setup-node.sh --oidc), or run \
             scripts/test, which sets it up"
        ),
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/oidc-node/provider.mjs")
}

/// A running provider; killed when dropped.
pub struct Provider {
    pub issuer: String,
    child: Child,
}

impl Provider {
    /// Starts one with these clients (oidc-provider client metadata) and private JWKs
    /// (the first signs; none: a new key), on `port` (0: any free one).
    pub async fn start(clients: Value, keys: Option<Value>, port: u16, claims_in_id_token: bool) -> Provider {
        let mut cmd = Command::new("node");
        cmd.arg(script())
            .env("OIDC_NODE_MODULES", node_modules())
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_CLIENTS", clients.to_string())
            .env("OIDC_CLAIMS_IN_ID_TOKEN", if claims_in_id_token { "1" } else { "0" })
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(k) = keys {
            cmd.env("OIDC_KEYS", k.to_string());
        }
        let mut child = cmd.spawn().expect("node: is Node.js installed?");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let issuer = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("provider output") {
                if let Some(i) = line.strip_prefix("listening ") {
                    return i.trim().to_owned();
                }
            }
            panic!("the OpenID provider exited before it listened")
        })
        .await
        .expect("the OpenID provider did not start in 30 s");
        Provider { issuer, child }
    }

    /// A new RS256 private JWK from the provider script.
    pub async fn gen_key() -> Value {
        let out = Command::new("node")
            .arg(script())
            .arg("genkey")
            .env("OIDC_NODE_MODULES", node_modules())
            .output()
            .await
            .expect("node");
        assert!(out.status.success(), "genkey: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("jwk")
    }

    /// Sets how the next token responses' ID tokens are spoiled (`None`: not).
    pub async fn tamper(&self, mode: Option<&str>) {
        let r = reqwest::Client::new()
            .post(format!("{}/__test/tamper", self.issuer))
            .body(serde_json::json!({"mode": mode}).to_string())
            .send()
            .await
            .expect("tamper");
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// Stops it (its port is free again once this returns).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Stops it in place (to start another on its port).
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// A PKCE pair: (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A browser stand-in: no redirects followed, cookies kept per host:port by hand.
pub struct Browser {
    pub http: reqwest::Client,
    jar: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser {
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
            jar: BTreeMap::new(),
        }
    }
}

fn origin(url: &str) -> String {
    let u = reqwest::Url::parse(url).expect("url");
    format!("{}:{}", u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0))
}

impl Browser {
    /// The cookies held for `url`'s host.
    pub fn cookies(&self, url: &str) -> BTreeMap<String, String> {
        self.jar.get(&origin(url)).cloned().unwrap_or_default()
    }

    /// One request; returns status, `Location` (absolute) and body.
    pub async fn send(
        &mut self,
        method: reqwest::Method,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> (StatusCode, Option<String>, String) {
        let mut req = self.http.request(method, url);
        let cookies = self.cookies(url);
        if !cookies.is_empty() {
            let c: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, c.join("; "));
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let jar = self.jar.entry(origin(url)).or_default();
        for sc in resp.headers().get_all(header::SET_COOKIE) {
            let sc = sc.to_str().unwrap_or("");
            let first = sc.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                let expired = sc.to_ascii_lowercase().contains("expires=thu, 01 jan 1970") || sc.contains("Max-Age=0");
                if expired || v.is_empty() {
                    jar.remove(k.trim());
                } else {
                    jar.insert(k.trim().into(), v.into());
                }
            }
        }
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(|l| reqwest::Url::parse(url).expect("url").join(l).expect("location").to_string());
        (status, location, resp.text().await.unwrap_or_default())
    }

    /// Follows redirects from `url` while they stay off `stop_at`, signing in as
    /// `login` on the provider's login page and granting its consent page; returns
    /// the first URL that starts with `stop_at` (the relying party's callback).
    pub async fn walk(&mut self, url: &str, login: &str, stop_at: &str) -> String {
        let mut next = url.to_owned();
        for _ in 0..20 {
            if next.starts_with(stop_at) {
                return next;
            }
            let (status, location, body) = self.send(reqwest::Method::GET, &next, None).await;
            if let Some(l) = location {
                next = l;
                continue;
            }
            assert_eq!(status, StatusCode::OK, "{next}: {body}");
            // A login or consent form of devInteractions.
            let action = attr_after(&body, "<form", "action").unwrap_or_else(|| panic!("no form at {next}: {body}"));
            let action = reqwest::Url::parse(&next).expect("url").join(&action).expect("action").to_string();
            let mut fields: Vec<(String, String)> = hidden_inputs(&body);
            if body.contains("name=\"login\"") {
                fields.push(("login".into(), login.into()));
                fields.push(("password".into(), "any".into()));
            }
            let (status, location, body) = self.send(reqwest::Method::POST, &action, Some(&fields)).await;
            next = location.unwrap_or_else(|| panic!("{action} answered {status} without a redirect: {body}"));
        }
        panic!("too many redirects from {url}")
    }
}

fn attr_after(html: &str, tag: &str, attr: &str) -> Option<String> {
    let at = html.find(tag)?;
    let rest = &html[at..];
    let t = &rest[..rest.find('>').unwrap_or(rest.len())];
    let key = format!("{attr}=\"");
    let s = t.find(&key)? + key.len();
    Some(t[s..].split('"').next()?.replace("&amp;", "&"))
}

fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input") {
        rest = &rest[i..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        if tag.contains("type=\"hidden\"") {
            if let (Some(n), Some(v)) = (attr_after(tag, "<input", "name"), attr_after(tag, "<input", "value")) {
                out.push((n, v));
            }
        }
        rest = &rest[end..];
    }
    out
}
