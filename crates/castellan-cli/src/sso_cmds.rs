//! Single sign-on from the command line: `castellan login --sso ORG` (a loopback
//! redirect, RFC 8252, ending with an API key bound to the org, kept in a
//! credentials file only its owner can read), `castellan logout` (revokes that key
//! and forgets it), and the SSO configurations (`castellan sso …`, owners only).

use crate::client::Client;
use crate::output::{cell, emit, Table};
use anyhow::{anyhow, bail, Context, Result};
use castellan_api_types as api;
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What `castellan login --sso` keeps, in the credentials file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// The server.
    pub url: String,
    /// The organization the key is bound to.
    pub org_name: String,
    /// Its id.
    pub org_id: uuid::Uuid,
    /// The key's id (to revoke it at logout).
    pub key_id: uuid::Uuid,
    /// The key.
    pub api_key: String,
    /// When it stops working.
    pub expires_at: Option<String>,
}

/// Where the credentials file is: `CASTELLAN_CREDENTIALS`, else
/// `$XDG_CONFIG_HOME/castellan/credentials.json`, else
/// `~/.config/castellan/credentials.json`.
pub fn credentials_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CASTELLAN_CREDENTIALS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("castellan").join("credentials.json"))
}

/// The stored credentials, if any (a damaged file is an error, not "signed out").
pub fn load_credentials() -> Result<Option<Credentials>> {
    let Some(path) = credentials_path() else { return Ok(None) };
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).with_context(|| format!("{} is not a credentials file", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn save_credentials(c: &Credentials) -> Result<PathBuf> {
    let path = credentials_path().context("no place for the credentials file: set CASTELLAN_CREDENTIALS or HOME")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        std::io::Write::write_all(&mut f, &serde_json::to_vec_pretty(c)?)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// What `castellan login --sso` prints.
#[derive(Serialize)]
struct LoggedIn {
    url: String,
    org_name: String,
    org_id: uuid::Uuid,
    key_id: uuid::Uuid,
    expires_at: Option<String>,
    credentials: String,
}

/// The loopback listener's answer to the browser.
fn page(title: &str, text: &str) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · Castellan</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;line-height:1.5\">\
         <h1>{t}</h1><p>{x}</p></body></html>",
        t = esc(title),
        x = esc(text)
    );
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\
         cache-control: no-store\r\n\r\n{body}",
        body.len()
    )
}

/// Waits for the browser to arrive at `/callback` on the listener; answers its query.
async fn wait_for_callback(listener: tokio::net::TcpListener, state: &str) -> Result<BTreeMap<String, String>> {
    loop {
        let (mut sock, _) = listener.accept().await.context("waiting for the browser")?;
        let mut buf = vec![0u8; 16 * 1024];
        let mut n = 0;
        // The request line and headers (the request has no body).
        while n < buf.len() {
            let got = sock.read(&mut buf[n..]).await.unwrap_or(0);
            if got == 0 {
                break;
            }
            n += got;
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]).into_owned();
        let target = head.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("").to_owned();
        let url = reqwest::Url::parse(&format!("http://127.0.0.1{target}")).ok();
        let Some(url) = url.filter(|u| u.path() == "/callback") else {
            let _ = sock.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            continue;
        };
        let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        if q.get("state").map(String::as_str) != Some(state) {
            let _ = sock.write_all(page("Sign-in refused", "This answer is not for this sign-in.").as_bytes()).await;
            continue;
        }
        let _ = sock
            .write_all(page("Signed in", "You are signed in to Castellan. You can close this window.").as_bytes())
            .await;
        return Ok(q);
    }
}

/// Opens `url` in the desktop's browser, if there is one.
fn open_browser(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// `castellan login --sso ORG`.
pub async fn login(
    url: &str,
    org: &str,
    config: Option<&str>,
    no_browser: bool,
    timeout: u64,
    json: bool,
) -> Result<()> {
    let verifier = castellan_server::oidc::random_token();
    let cli_state = castellan_server::oidc::random_token();
    let listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.context("listening on a loopback port for the browser")?;
    let port = listener.local_addr()?.port();
    let mut start = reqwest::Url::parse(&format!("{}/auth/sso/start", url.trim_end_matches('/')))
        .with_context(|| format!("`{url}` is not a server URL"))?;
    {
        let mut q = start.query_pairs_mut();
        q.append_pair("org", org)
            .append_pair("cli_port", &port.to_string())
            .append_pair("cli_challenge", &castellan_server::oidc::s256(&verifier))
            .append_pair("cli_state", &cli_state);
        if let Some(c) = config {
            q.append_pair("config", c);
        }
    }
    // The start answers with a redirect to the provider; a refusal (no SSO for that
    // org) is shown here rather than in the browser.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let probe = http.get(start.as_str()).send().await.with_context(|| format!("cannot reach {url}"))?;
    if !probe.status().is_redirection() {
        let status = probe.status();
        let body: api::ErrorBody = probe
            .json()
            .await
            .unwrap_or_else(|_| api::ErrorBody { code: "unknown".into(), message: "no details".into() });
        bail!("single sign-on cannot start ({} {}): {}", status.as_u16(), body.code, body.message);
    }
    eprintln!("Open this URL in your browser to sign in to `{org}`:\n  {start}");
    if !no_browser && open_browser(start.as_str()) {
        eprintln!("(opened your browser)");
    }
    eprintln!("Waiting for the sign-in to complete (up to {timeout} s)…");
    let q = tokio::time::timeout(Duration::from_secs(timeout), wait_for_callback(listener, &cli_state))
        .await
        .map_err(|_| anyhow!("the sign-in did not complete within {timeout} s"))??;
    let code = q.get("code").context("the browser brought no sign-in code")?;
    let anon = Client::new(url, None, None)?;
    let out: serde_json::Value = anon
        .post_anonymous("/auth/sso/cli/token", &serde_json::json!({"code": code, "verifier": verifier}))
        .await
        .context("exchanging the sign-in code for an API key")?;
    let field = |k: &str| out.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
    let id = |k: &str| field(k).and_then(|v| uuid::Uuid::parse_str(&v).ok()).with_context(|| format!("no `{k}`"));
    let creds = Credentials {
        url: url.trim_end_matches('/').to_owned(),
        org_name: field("org_name").context("no `org_name`")?,
        org_id: id("org_id")?,
        key_id: id("key_id")?,
        api_key: field("api_key").context("no `api_key`")?,
        expires_at: field("expires_at"),
    };
    let path = save_credentials(&creds)?;
    let shown = LoggedIn {
        url: creds.url.clone(),
        org_name: creds.org_name.clone(),
        org_id: creds.org_id,
        key_id: creds.key_id,
        expires_at: creds.expires_at.clone(),
        credentials: path.display().to_string(),
    };
    emit(json, &shown, |l| {
        format!(
            "Signed in to `{}`. Its API key is saved in {} (until {}); `castellan logout` revokes it.\n",
            l.org_name,
            l.credentials,
            l.expires_at.as_deref().unwrap_or("revoked")
        )
    });
    Ok(())
}

#[derive(Serialize)]
struct LoggedOut {
    revoked: bool,
    credentials_removed: Option<String>,
    note: Option<String>,
}

/// `castellan logout`: revokes the stored key and forgets it.
pub async fn logout(json: bool) -> Result<()> {
    let Some(creds) = load_credentials()? else {
        emit(
            json,
            &LoggedOut { revoked: false, credentials_removed: None, note: Some("not signed in".into()) },
            |_| "Not signed in.\n".into(),
        );
        return Ok(());
    };
    let client = Client::new(&creds.url, Some(creds.api_key.clone()), None)?;
    let (revoked, note) = match client.delete::<serde_json::Value>(&format!("/v1/api_key/{}", creds.key_id)).await {
        Ok(_) => (true, None),
        Err(e) => (false, Some(format!("the key could not be revoked ({e:#}); it was forgotten anyway"))),
    };
    let path = credentials_path().context("no credentials file")?;
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    let out = LoggedOut { revoked, credentials_removed: Some(path.display().to_string()), note };
    emit(json, &out, |o| {
        let mut t = format!(
            "Signed out{}; removed {}.\n",
            if o.revoked { " and revoked the API key" } else { "" },
            o.credentials_removed.as_deref().unwrap_or("-")
        );
        if let Some(n) = &o.note {
            t.push_str(&format!("note: {n}\n"));
        }
        t
    });
    Ok(())
}

/// What to do with SSO configurations.
#[derive(Debug, Subcommand)]
pub enum SsoAction {
    /// List the SSO configurations of the organizations you own.
    List,
    /// Show one.
    Get {
        /// Its id.
        id: uuid::Uuid,
    },
    /// Create one. The client secret is read from standard input or an environment
    /// variable, never from the command line.
    Create {
        /// Its name, e.g. `okta`.
        #[arg(long)]
        name: String,
        /// The provider's issuer URL.
        #[arg(long)]
        issuer: String,
        /// The client id registered at the provider.
        #[arg(long)]
        client_id: String,
        #[command(flatten)]
        fields: SsoFields,
    },
    /// Change one (only the fields given).
    Update {
        /// Its id.
        id: uuid::Uuid,
        /// A new issuer URL.
        #[arg(long)]
        issuer: Option<String>,
        /// A new client id.
        #[arg(long)]
        client_id: Option<String>,
        #[command(flatten)]
        fields: SsoFields,
        /// Turn SSO enforcement on or off for the allowed domains.
        #[arg(long)]
        enforced: Option<bool>,
    },
    /// Delete one.
    Delete {
        /// Its id.
        id: uuid::Uuid,
    },
}

/// The optional fields of an SSO configuration.
#[derive(Debug, clap::Args)]
pub struct SsoFields {
    /// Read the client secret from standard input (one line).
    #[arg(long)]
    client_secret_stdin: bool,
    /// Read the client secret from this environment variable.
    #[arg(long)]
    client_secret_env: Option<String>,
    /// A scope to request (repeat); default openid, email, profile.
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// An email domain allowed to sign in (repeat); default any.
    #[arg(long = "domain")]
    domains: Vec<String>,
    /// The claim listing the person's groups at the provider.
    #[arg(long)]
    groups_claim: Option<String>,
    /// `provider-group=Permission group` (repeat).
    #[arg(long = "map")]
    maps: Vec<String>,
    /// The permission group just-in-time members join.
    #[arg(long)]
    default_group: Option<String>,
    /// Just-in-time membership.
    #[arg(long)]
    jit: Option<bool>,
    /// Require the provider to have verified the email.
    #[arg(long)]
    require_email_verified: Option<bool>,
}

impl SsoFields {
    fn into_json(self, body: &mut serde_json::Map<String, serde_json::Value>) -> Result<()> {
        use serde_json::json;
        let secret = match (self.client_secret_stdin, &self.client_secret_env) {
            (true, Some(_)) => {
                bail!("give the client secret by --client-secret-stdin or --client-secret-env, not both")
            }
            (true, None) => {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).context("reading the client secret from standard input")?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            }
            (false, Some(var)) => Some(std::env::var(var).with_context(|| format!("the environment has no `{var}`"))?),
            (false, None) => None,
        };
        if let Some(s) = secret {
            body.insert("client_secret".into(), json!(s));
        }
        if !self.scopes.is_empty() {
            body.insert("scopes".into(), json!(self.scopes));
        }
        if !self.domains.is_empty() {
            body.insert("allowed_email_domains".into(), json!(self.domains));
        }
        if let Some(c) = self.groups_claim {
            body.insert("groups_claim".into(), json!(c));
        }
        if !self.maps.is_empty() {
            let mut m = serde_json::Map::new();
            for entry in self.maps {
                let (k, v) = entry
                    .split_once('=')
                    .with_context(|| format!("--map `{entry}` is not `provider-group=Permission group`"))?;
                m.insert(k.trim().to_owned(), json!(v.trim()));
            }
            body.insert("group_map".into(), serde_json::Value::Object(m));
        }
        if let Some(g) = self.default_group {
            body.insert("default_group".into(), json!(g));
        }
        if let Some(j) = self.jit {
            body.insert("jit".into(), json!(j));
        }
        if let Some(r) = self.require_email_verified {
            body.insert("require_email_verified".into(), json!(r));
        }
        Ok(())
    }
}

fn configs_table(rows: &[api::SsoConfig]) -> String {
    let mut t = Table::new(vec!["ID", "NAME", "ISSUER", "DOMAINS", "JIT", "ENFORCED", "SECRET"]);
    for c in rows {
        t.row(vec![
            c.id.to_string(),
            c.name.clone(),
            c.issuer.clone(),
            cell(&Some(c.allowed_email_domains.join(",")).filter(|d| !d.is_empty())),
            c.jit.to_string(),
            c.enforced.to_string(),
            if c.client_secret_set { "set".into() } else { "-".into() },
        ]);
    }
    t.render()
}

/// Runs a `castellan sso` command.
pub async fn sso(c: &Client, json: bool, org: Option<String>, action: SsoAction) -> Result<()> {
    let one = |c: &api::SsoConfig| configs_table(std::slice::from_ref(c));
    match action {
        SsoAction::List => {
            let l: api::ListResponse<api::SsoConfig> = c.get("/v1/sso_config", &[]).await?;
            emit(json, &l.objects, |o| configs_table(o));
        }
        SsoAction::Get { id } => {
            let s: api::SsoConfig = c.get(&format!("/v1/sso_config/{id}"), &[]).await?;
            emit(json, &s, one);
        }
        SsoAction::Create { name, issuer, client_id, fields } => {
            let mut body = serde_json::Map::new();
            body.insert("name".into(), name.into());
            body.insert("issuer".into(), issuer.into());
            body.insert("client_id".into(), client_id.into());
            if let Some(o) = org {
                body.insert("org_name".into(), o.into());
            }
            fields.into_json(&mut body)?;
            let s: api::SsoConfig = c.post("/v1/sso_config", &body).await.context("creating the SSO configuration")?;
            emit(json, &s, |s| {
                format!("{}Register {{server}}/auth/sso/callback as the redirect URI at the provider.\n", one(s))
            });
        }
        SsoAction::Update { id, issuer, client_id, fields, enforced } => {
            let mut body = serde_json::Map::new();
            if let Some(i) = issuer {
                body.insert("issuer".into(), i.into());
            }
            if let Some(ci) = client_id {
                body.insert("client_id".into(), ci.into());
            }
            if let Some(e) = enforced {
                body.insert("enforced".into(), e.into());
            }
            fields.into_json(&mut body)?;
            let s: api::SsoConfig = c.patch(&format!("/v1/sso_config/{id}"), &body).await?;
            emit(json, &s, one);
        }
        SsoAction::Delete { id } => {
            let s: api::SsoConfig = c.delete(&format!("/v1/sso_config/{id}")).await?;
            emit(json, &s, one);
        }
    }
    Ok(())
}
