//! Single sign-on by OpenID Connect, the provider's side: an SSO configuration as
//! the flow reads it, the provider's metadata and keys (discovery, JWKS, cached per
//! issuer and refetched once on an unknown key), the code exchange and userinfo.
//! Every request to the provider goes through the outbound guard (no private
//! addresses unless allow-listed, no redirects, a time limit). The flow's endpoints
//! are in `routes/sso.rs`; what a sign-in writes is in `access/sso.rs`.

use crate::access::AppState;
use crate::error::{ApiError, ApiResult};
use crate::oidc::{self, Jwks, TokenError};
use castellan_core::OrgId;
use castellan_store::AdminRecord;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a provider's metadata and keys are used before they are fetched again.
const META_TTL: Duration = Duration::from_secs(3600);
/// The least time between two refetches of a provider's keys for an unknown `kid`.
const JWKS_REFETCH_GAP: Duration = Duration::from_secs(5);
/// How long a provider that could not be reached is not tried again (so that
/// sign-in attempts cannot make the server hammer a provider that is down).
const FAILURE_TTL_MICROS: i64 = 15 * 1_000_000;
/// The largest answer read from a provider.
const MAX_ANSWER: usize = 1024 * 1024;
/// The most groups read from a groups claim.
const MAX_GROUPS: usize = 1000;

/// An SSO configuration as the sign-in flow uses it.
#[derive(Clone)]
pub struct Settings {
    /// Its id.
    pub id: Uuid,
    /// Its organization.
    pub org: OrgId,
    /// Its name.
    pub name: String,
    /// The issuer, exactly as the ID tokens must name it.
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// The client secret (opened), if the client has one.
    pub client_secret: Option<String>,
    /// Scopes requested (`openid` among them).
    pub scopes: Vec<String>,
    /// Email domains allowed to sign in (none: any).
    pub allowed_email_domains: Vec<String>,
    /// The claim that lists the person's groups at the provider.
    pub groups_claim: Option<String>,
    /// Provider group → permission group name.
    pub group_map: BTreeMap<String, String>,
    /// The group just-in-time members join.
    pub default_group: Option<String>,
    /// Just-in-time provisioning.
    pub jit: bool,
    /// Whether the provider must have verified the email.
    pub require_email_verified: bool,
    /// Password sign-in is refused for members whose email domain is allowed here.
    pub enforced: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings").field("id", &self.id).field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

fn strings(a: &AdminRecord, key: &str) -> Vec<String> {
    a.data
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

impl Settings {
    /// The configuration stored in `a`; its client secret opened under the master key.
    pub fn from_record(state: &AppState, a: &AdminRecord) -> ApiResult<Settings> {
        let text = |k: &str| a.data.get(k).and_then(Value::as_str).map(str::to_owned);
        let flag = |k: &str, d: bool| a.data.get(k).and_then(Value::as_bool).unwrap_or(d);
        let client_secret = match &a.secret {
            Some(sealed) => Some(
                state
                    .sealer()?
                    .open(crate::secrets::Binding::admin(a), sealed)
                    .map_err(|e| ApiError::Internal(format!("the SSO client secret does not open: {e}")))?,
            ),
            None => None,
        };
        Ok(Settings {
            id: a.id,
            org: a.org_id,
            name: a.name.clone(),
            issuer: text("issuer").unwrap_or_default(),
            client_id: text("client_id").unwrap_or_default(),
            client_secret,
            scopes: strings(a, "scopes"),
            allowed_email_domains: strings(a, "allowed_email_domains"),
            groups_claim: text("groups_claim"),
            group_map: a
                .data
                .get("group_map")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect(),
            default_group: text("default_group"),
            jit: flag("jit", false),
            require_email_verified: flag("require_email_verified", true),
            enforced: flag("enforced", false),
        })
    }

    /// Whether an email's domain is one this configuration covers.
    pub fn covers(&self, email: &str) -> bool {
        let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
        self.allowed_email_domains.contains(&domain)
    }
}

/// The redirect URI every provider is registered with.
pub fn redirect_uri(state: &AppState) -> String {
    format!("{}/auth/sso/callback", state.config().public_url())
}

/// What discovery says about a provider (the fields the flow uses).
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    /// Its issuer: must equal the configured one.
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where codes are exchanged.
    pub token_endpoint: String,
    /// Where claims missing from the ID token are read.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// Its keys.
    pub jwks_uri: String,
    /// How clients may authenticate at the token endpoint.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 9207: the authorization response carries `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// A provider's metadata and keys, as fetched.
pub struct Meta {
    /// Its discovery document.
    pub discovery: Discovery,
    /// Its keys.
    pub jwks: Jwks,
    fetched: Instant,
    /// When the keys were last refetched for an unknown `kid`.
    refetched: Option<Instant>,
}

/// Provider metadata and keys, cached per issuer.
#[derive(Default)]
pub struct Providers {
    cache: Mutex<HashMap<String, Arc<Meta>>>,
    /// Providers whose metadata could not be fetched: why, and when (server time).
    failures: Mutex<HashMap<String, (String, i64)>>,
}

fn provider_error(issuer: &str, what: impl std::fmt::Display) -> ApiError {
    ApiError::SsoFailed(format!("the identity provider `{issuer}` could not be used: {what}"))
}

/// A provider URL the flow may call: `https`, or `http` when the issuer itself is
/// (a loopback test provider, which the configuration allows only on loopback).
fn endpoint_ok(issuer: &str, url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) => u.scheme() == "https" || (u.scheme() == "http" && issuer.starts_with("http://")),
        Err(_) => false,
    }
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading its answer failed: {e}"))? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("its answer is larger than {MAX_ANSWER} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GETs a JSON document from a provider through the outbound guard.
async fn get_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    issuer: &str,
    url: &str,
    bearer: Option<&str>,
) -> ApiResult<T> {
    let client = state.outbound().client_for(url).await.map_err(|e| provider_error(issuer, e))?;
    let mut req = client.get(url).header(reqwest::header::ACCEPT, "application/json");
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let resp = req.send().await.map_err(|e| provider_error(issuer, format!("`{url}` did not answer ({e})")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(provider_error(issuer, format!("`{url}` answered {status}")));
    }
    let body = read_capped(resp).await.map_err(|e| provider_error(issuer, format!("`{url}`: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| provider_error(issuer, format!("`{url}` did not answer JSON ({e})")))
}

impl Providers {
    /// The provider's metadata and keys: cached for an hour, else fetched.
    pub async fn get(&self, state: &AppState, issuer: &str) -> ApiResult<Arc<Meta>> {
        if let Some(m) = self.cached(issuer).filter(|m| m.fetched.elapsed() < META_TTL) {
            return Ok(m);
        }
        let now = state.now();
        let recent = {
            let f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            f.get(issuer).filter(|(_, at)| now - at < FAILURE_TTL_MICROS).map(|(why, _)| why.clone())
        };
        if let Some(why) = recent {
            return Err(ApiError::SsoFailed(format!("{why} (it is tried again at most every 15 s)")));
        }
        match self.fetch(state, issuer).await {
            Ok(m) => {
                self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(issuer);
                Ok(m)
            }
            Err(e) => {
                let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
                if f.len() >= 1000 {
                    f.clear();
                }
                f.insert(issuer.to_owned(), (e.to_string(), now));
                Err(e)
            }
        }
    }

    async fn fetch(&self, state: &AppState, issuer: &str) -> ApiResult<Arc<Meta>> {
        let url = format!("{issuer}/.well-known/openid-configuration");
        let discovery: Discovery = get_json(state, issuer, &url, None).await?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(provider_error(
                issuer,
                format!("its discovery document names the issuer `{}`, not this one", discovery.issuer),
            ));
        }
        for (name, u) in [
            ("authorization_endpoint", Some(&discovery.authorization_endpoint)),
            ("token_endpoint", Some(&discovery.token_endpoint)),
            ("jwks_uri", Some(&discovery.jwks_uri)),
            ("userinfo_endpoint", discovery.userinfo_endpoint.as_ref()),
        ] {
            if let Some(u) = u.filter(|u| !endpoint_ok(issuer, u)) {
                return Err(provider_error(issuer, format!("its `{name}` `{u}` is not an https URL")));
            }
        }
        let jwks: Jwks = get_json(state, issuer, &discovery.jwks_uri, None).await?;
        let meta = Arc::new(Meta { discovery, jwks, fetched: Instant::now(), refetched: None });
        self.put(issuer, meta.clone());
        Ok(meta)
    }

    /// Fetches the provider's keys again (a token named a key they did not hold: the
    /// provider rotated its keys), unless that was done moments ago.
    pub async fn refetch_keys(&self, state: &AppState, issuer: &str, meta: &Arc<Meta>) -> ApiResult<Arc<Meta>> {
        if let Some(m) = self.cached(issuer).filter(|m| m.refetched.is_some_and(|t| t.elapsed() < JWKS_REFETCH_GAP)) {
            return Ok(m);
        }
        let jwks: Jwks = get_json(state, issuer, &meta.discovery.jwks_uri, None).await?;
        let now = Instant::now();
        let fresh = Arc::new(Meta { discovery: meta.discovery.clone(), jwks, fetched: now, refetched: Some(now) });
        self.put(issuer, fresh.clone());
        Ok(fresh)
    }

    fn cached(&self, issuer: &str) -> Option<Arc<Meta>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(issuer).cloned()
    }

    fn put(&self, issuer: &str, meta: Arc<Meta>) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() >= 1000 {
            c.clear();
        }
        c.insert(issuer.to_owned(), meta);
    }
}

/// The token endpoint's answer (the fields used).
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Exchanges an authorization code (with the PKCE verifier) at the token endpoint;
/// answers the ID token and the access token.
pub async fn exchange(
    state: &AppState,
    s: &Settings,
    meta: &Meta,
    code: &str,
    verifier: &str,
) -> ApiResult<(String, Option<String>)> {
    let url = &meta.discovery.token_endpoint;
    let client = state.outbound().client_for(url).await.map_err(|e| provider_error(&s.issuer, e))?;
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect_uri(state)),
        ("code_verifier", verifier.to_owned()),
    ];
    let methods = &meta.discovery.token_endpoint_auth_methods_supported;
    let mut req = client.post(url).header(reqwest::header::ACCEPT, "application/json");
    match &s.client_secret {
        // client_secret_basic is the default (RFC 8414); post only when it is all the
        // provider takes.
        Some(secret) if methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic") => {
            let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(&s.client_id), Some(enc(secret)));
        }
        Some(secret) => {
            form.push(("client_id", s.client_id.clone()));
            form.push(("client_secret", secret.clone()));
        }
        None => form.push(("client_id", s.client_id.clone())),
    }
    let resp = req
        .form(&form)
        .send()
        .await
        .map_err(|e| provider_error(&s.issuer, format!("its token endpoint did not answer ({e})")))?;
    let status = resp.status();
    let body = read_capped(resp).await.map_err(|e| provider_error(&s.issuer, e))?;
    if !status.is_success() {
        // OAuth errors are `{"error": …, "error_description": …}`: say which.
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let err = v.get("error").and_then(Value::as_str).map(printable).unwrap_or_default();
        let desc = v.get("error_description").and_then(Value::as_str).map(printable).unwrap_or_default();
        return Err(ApiError::SsoFailed(format!(
            "the identity provider refused the sign-in code ({status} {err}{}{desc}); start the sign-in again",
            if desc.is_empty() { "" } else { ": " }
        )));
    }
    let t: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|e| provider_error(&s.issuer, format!("its token answer is not JSON ({e})")))?;
    let id = t.id_token.ok_or_else(|| provider_error(&s.issuer, "its token answer holds no `id_token`"))?;
    Ok((id, t.access_token))
}

/// A provider's text, made safe to show: printable, at most 200 characters.
pub fn printable(v: &str) -> String {
    v.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Verifies an ID token with the provider's keys, refetching them once when the
/// token names a key they do not hold (the provider rotated its keys).
pub async fn verify(
    state: &AppState,
    providers: &Providers,
    s: &Settings,
    meta: Arc<Meta>,
    token: &str,
    nonce: &str,
) -> ApiResult<Map<String, Value>> {
    let now = state.now() / 1_000_000;
    let x = oidc::Expected { issuer: &s.issuer, client_id: &s.client_id, nonce, now };
    let refused = |e: TokenError| ApiError::SsoFailed(format!("{e}; the sign-in was refused"));
    match oidc::verify(token, &meta.jwks, &x) {
        Err(TokenError::UnknownKey(_)) => {
            let fresh = providers.refetch_keys(state, &s.issuer, &meta).await?;
            oidc::verify(token, &fresh.jwks, &x).map_err(refused)
        }
        other => other.map_err(refused),
    }
}

/// The person a sign-in is for, from the ID token and (where it lacks them) userinfo.
#[derive(Debug, Clone)]
pub struct Person {
    /// The provider's subject.
    pub subject: String,
    /// Email.
    pub email: Option<String>,
    /// Whether the provider verified it.
    pub email_verified: bool,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// The groups claim: `None` when the provider sent none at all.
    pub groups: Option<Vec<String>>,
}

fn claim_text(c: &Map<String, Value>, k: &str) -> Option<String> {
    c.get(k).and_then(Value::as_str).map(printable).filter(|s| !s.is_empty())
}

fn claim_groups(c: &Map<String, Value>, k: &str) -> Option<Vec<String>> {
    match c.get(k)? {
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).take(MAX_GROUPS).map(str::to_owned).collect()),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// Whether `email_verified` says yes (a boolean, or the string some providers send).
fn verified(c: &Map<String, Value>) -> Option<bool> {
    match c.get("email_verified")? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    }
}

/// The person, reading userinfo when the ID token lacks the email (or the configured
/// groups claim); userinfo's `sub` must be the ID token's.
pub async fn person(
    state: &AppState,
    s: &Settings,
    meta: &Meta,
    id_claims: &Map<String, Value>,
    access_token: Option<&str>,
) -> ApiResult<Person> {
    let subject = id_claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut claims = id_claims.clone();
    let lacks_groups = s.groups_claim.as_deref().is_some_and(|g| !claims.contains_key(g));
    if !claims.contains_key("email") || lacks_groups {
        if let (Some(url), Some(token)) = (&meta.discovery.userinfo_endpoint, access_token) {
            let info: Map<String, Value> = get_json(state, &s.issuer, url, Some(token)).await?;
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(ApiError::SsoFailed(
                    "the provider's userinfo is for another subject than its ID token; the sign-in was refused".into(),
                ));
            }
            for (k, v) in info {
                claims.entry(k).or_insert(v);
            }
        }
    }
    let (given_name, family_name) = match (claim_text(&claims, "given_name"), claim_text(&claims, "family_name")) {
        (None, None) => (claim_text(&claims, "name"), None),
        other => other,
    };
    Ok(Person {
        subject,
        email: claim_text(&claims, "email").map(|e| e.to_ascii_lowercase()),
        email_verified: verified(&claims).unwrap_or(false),
        given_name,
        family_name,
        groups: s.groups_claim.as_deref().and_then(|g| claim_groups(&claims, g)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_leniently_but_safely() {
        let c: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "email_verified": "TRUE", "groups": "eng", "roles": ["a", 1, "b"], "name": "A\u{7}da"
        }))
        .expect("claims");
        assert_eq!(verified(&c), Some(true));
        assert_eq!(claim_groups(&c, "groups"), Some(vec!["eng".to_owned()]));
        assert_eq!(claim_groups(&c, "roles"), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(claim_groups(&c, "missing"), None);
        assert_eq!(claim_text(&c, "name").as_deref(), Some("Ada"));
        assert!(endpoint_ok("http://127.0.0.1:1", "http://127.0.0.1:1/token"));
        assert!(!endpoint_ok("https://idp.example", "http://idp.example/token"));
        assert!(!endpoint_ok("https://idp.example", "javascript:alert(1)"));
    }
}
