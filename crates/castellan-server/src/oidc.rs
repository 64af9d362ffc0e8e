//! OpenID Connect for single sign-on: verification of ID tokens (RS256 signatures by
//! a provider's JWKS, and the `iss`, `aud`, `azp`, `exp`, `iat` and `nonce` claims).
//! Signatures are checked with `ring` (already in the build through rustls); the
//! claims by hand, so that every refusal says what was wrong. The sign-in flow
//! (discovery, the flow cookie, the code exchange, userinfo, identity linking) builds
//! on this; see docs/oidc-status.md.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

/// How far clocks may disagree, in seconds.
pub const LEEWAY_SECS: i64 = 60;
/// The longest ID token accepted, in bytes.
const MAX_TOKEN: usize = 64 * 1024;

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url segments of JSON.
    #[error("the ID token is malformed: {0}")]
    Malformed(String),
    /// Signed with an algorithm other than RS256 (`none` included).
    #[error("the ID token is signed with `{0}`; only RS256 is accepted")]
    Algorithm(String),
    /// No key of the provider's JWKS has this `kid`: refetch the JWKS once, then refuse.
    #[error("the ID token names key `{0}`, which the provider's JWKS does not hold")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the ID token's signature does not verify")]
    Signature,
    /// A claim is wrong (which, and how).
    #[error("the ID token's `{0}` {1}")]
    Claim(&'static str, String),
}

/// One public key of a JWKS.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    /// Key type (`RSA` is the only one used).
    pub kty: String,
    /// Key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// Intended algorithm, if stated.
    #[serde(default)]
    pub alg: Option<String>,
    /// Intended use, if stated (`sig`).
    #[serde(default, rename = "use")]
    pub key_use: Option<String>,
    /// RSA modulus (base64url).
    #[serde(default)]
    pub n: Option<String>,
    /// RSA exponent (base64url).
    #[serde(default)]
    pub e: Option<String>,
}

/// A JWKS document.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Jwks {
    /// Its keys.
    #[serde(default)]
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// The RS256 signing keys that `kid` may name (all of them when the token names
    /// none and the set holds exactly one).
    fn candidates<'a>(&'a self, kid: Option<&str>) -> Vec<&'a Jwk> {
        let usable = |k: &&Jwk| {
            k.kty == "RSA"
                && k.alg.as_deref().is_none_or(|a| a == "RS256")
                && k.key_use.as_deref().is_none_or(|u| u == "sig")
        };
        let rsa: Vec<&Jwk> = self.keys.iter().filter(usable).collect();
        match kid {
            Some(kid) => rsa.into_iter().filter(|k| k.kid.as_deref() == Some(kid)).collect(),
            None if rsa.len() == 1 => rsa,
            None => Vec::new(),
        }
    }
}

/// What the claims must say.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The configured issuer (exactly).
    pub issuer: &'a str,
    /// The client id (in `aud`; `azp` when several audiences).
    pub client_id: &'a str,
    /// The nonce sent with the authorization request.
    pub nonce: &'a str,
    /// Now, in seconds since the epoch.
    pub now: i64,
}

fn segment(s: &str, what: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(s).map_err(|e| TokenError::Malformed(format!("its {what} is not base64url ({e})")))
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, TokenError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TokenError::Malformed(format!("its {what} is not a JSON object"))),
    }
}

/// The `kid` an ID token's header names, if any (to decide whether to refetch keys).
pub fn key_id(token: &str) -> Result<Option<String>, TokenError> {
    let header = token.split('.').next().unwrap_or("");
    let h = json_object(&segment(header, "header")?, "header")?;
    Ok(h.get("kid").and_then(Value::as_str).map(str::to_owned))
}

/// Verifies an ID token against `jwks` and `expected`; answers its claims.
pub fn verify(token: &str, jwks: &Jwks, expected: &Expected<'_>) -> Result<Map<String, Value>, TokenError> {
    if token.len() > MAX_TOKEN {
        return Err(TokenError::Malformed(format!("it is longer than {MAX_TOKEN} bytes")));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [h64, p64, s64] = parts[..] else {
        return Err(TokenError::Malformed(format!("it has {} segments, not 3", parts.len())));
    };
    let header = json_object(&segment(h64, "header")?, "header")?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "RS256" {
        return Err(TokenError::Algorithm(alg.to_owned()));
    }
    if header.get("crit").is_some() {
        return Err(TokenError::Malformed("it has critical header parameters".into()));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let keys = jwks.candidates(kid);
    if keys.is_empty() {
        return Err(TokenError::UnknownKey(kid.unwrap_or("(none)").to_owned()));
    }
    let signature = segment(s64, "signature")?;
    let signed = &token.as_bytes()[..h64.len() + 1 + p64.len()];
    let verified = keys.iter().any(|k| {
        let (Some(n), Some(e)) = (k.n.as_deref(), k.e.as_deref()) else { return false };
        let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else { return false };
        ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, signed, &signature)
            .is_ok()
    });
    if !verified {
        return Err(TokenError::Signature);
    }
    let claims = json_object(&segment(p64, "payload")?, "payload")?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

fn check_claims(c: &Map<String, Value>, x: &Expected<'_>) -> Result<(), TokenError> {
    let claim = |name: &'static str, why: String| TokenError::Claim(name, why);
    match c.get("iss").and_then(Value::as_str) {
        Some(iss) if iss == x.issuer => {}
        other => return Err(claim("iss", format!("is {other:?}, not the configured issuer `{}`", x.issuer))),
    }
    let aud: Vec<&str> = match c.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !aud.contains(&x.client_id) {
        return Err(claim("aud", format!("is {aud:?}, which does not hold the client id `{}`", x.client_id)));
    }
    let azp = c.get("azp").and_then(Value::as_str);
    if (aud.len() > 1 || azp.is_some()) && azp != Some(x.client_id) {
        return Err(claim("azp", format!("is {azp:?}, not the client id `{}`", x.client_id)));
    }
    let time = |name: &'static str| c.get(name).and_then(Value::as_i64);
    match time("exp") {
        Some(exp) if exp + LEEWAY_SECS > x.now => {}
        Some(exp) => return Err(claim("exp", format!("says it expired at {exp} (now {})", x.now))),
        None => return Err(claim("exp", "is missing".into())),
    }
    if let Some(iat) = time("iat") {
        if iat - LEEWAY_SECS > x.now {
            return Err(claim("iat", format!("is in the future ({iat}, now {})", x.now)));
        }
    }
    if time("nbf").is_some_and(|nbf| nbf - LEEWAY_SECS > x.now) {
        return Err(claim("nbf", "is in the future".into()));
    }
    match c.get("nonce").and_then(Value::as_str) {
        Some(n) if n == x.nonce => {}
        Some(_) => return Err(claim("nonce", "does not match the one this sign-in sent".into())),
        None => return Err(claim("nonce", "is missing".into())),
    }
    match c.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= 255 => Ok(()),
        _ => Err(claim("sub", "is missing or not 1 to 255 characters".into())),
    }
}

/// How long a sign-in may take between start and callback, in seconds.
pub const FLOW_TTL_SECS: i64 = 600;

/// What the start of a sign-in leaves in its short-lived cookie for the callback.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Flow {
    /// The SSO configuration used.
    pub config: uuid::Uuid,
    /// The `state` sent to the provider.
    pub state: String,
    /// The `nonce` sent to the provider.
    pub nonce: String,
    /// The PKCE verifier of the S256 challenge sent.
    pub verifier: String,
    /// Where to go after signing in: a path on this server.
    pub return_to: String,
    /// When the flow stops being accepted (seconds since the epoch).
    pub expires: i64,
    /// A command-line sign-in: where its loopback listener waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli: Option<CliFlow>,
}

/// What a command-line sign-in (`castellan login --sso`) sent at its start: its
/// loopback port, the S256 challenge of its verifier, and its own state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct CliFlow {
    /// The port of its listener on 127.0.0.1.
    pub port: u16,
    /// The S256 challenge of the verifier it will send with the code.
    pub challenge: String,
    /// Its state, sent back with the code.
    pub state: String,
}

/// The S256 PKCE challenge of `verifier` (RFC 7636).
pub fn s256(verifier: &str) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// A random URL-safe value of 32 bytes (state, nonce, PKCE verifier, one-time codes).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Whether `v` is a PKCE verifier or challenge: 43 to 128 unreserved characters.
pub fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Why a flow cookie was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// Missing, malformed or not signed by this server.
    #[error("the sign-in cookie is missing or was not issued by this server; start the sign-in again")]
    Invalid,
    /// Older than [`FLOW_TTL_SECS`].
    #[error("the sign-in took too long; start it again")]
    Expired,
}

impl Flow {
    /// The cookie value: base64url JSON, a dot, and its HMAC-SHA256 under `key`.
    pub fn seal(&self, key: &[u8]) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac(key, body.as_bytes())))
    }

    /// The flow of a cookie value sealed under `key`, unexpired at `now`.
    pub fn open(value: &str, key: &[u8], now: i64) -> Result<Flow, FlowError> {
        use hmac::Mac;
        let (body, tag) = value.split_once('.').ok_or(FlowError::Invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| FlowError::Invalid)?;
        let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).map_err(|_| FlowError::Invalid)?;
        m.update(body.as_bytes());
        m.verify_slice(&tag).map_err(|_| FlowError::Invalid)?;
        let flow: Flow = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(FlowError::Invalid)?;
        if flow.expires <= now {
            return Err(FlowError::Expired);
        }
        Ok(flow)
    }
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A `return_to` a sign-in may end at: a path on this server (`/…`, not `//…` nor
/// `/\…`, no control characters), else `/`. Never another site (an open redirect).
pub fn safe_return_to(v: Option<&str>) -> String {
    match v {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= 2048
                && !p.chars().any(|c| c.is_control() || c == '\\') =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode("sig")
        )
    }

    fn expected() -> Expected<'static> {
        Expected { issuer: "https://idp.example", client_id: "c", nonce: "n", now: 1_000_000 }
    }

    fn jwks() -> Jwks {
        serde_json::from_str(r#"{"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}]}"#).expect("jwks")
    }

    #[test]
    fn malformed_unsigned_and_unknown_key_tokens_are_refused_before_any_claim_is_read() {
        let x = expected();
        assert!(matches!(verify("a.b", &jwks(), &x), Err(TokenError::Malformed(_))));
        assert!(matches!(verify("!!.b.c", &jwks(), &x), Err(TokenError::Malformed(_))));
        let none = jwt(r#"{"alg": "none"}"#, "{}");
        assert_eq!(verify(&none, &jwks(), &x), Err(TokenError::Algorithm("none".into())));
        let hs = jwt(r#"{"alg": "HS256", "kid": "k1"}"#, "{}");
        assert_eq!(verify(&hs, &jwks(), &x), Err(TokenError::Algorithm("HS256".into())));
        let other = jwt(r#"{"alg": "RS256", "kid": "k9"}"#, "{}");
        assert_eq!(verify(&other, &jwks(), &x), Err(TokenError::UnknownKey("k9".into())));
        assert_eq!(key_id(&other), Ok(Some("k9".into())));
        let bad_sig = jwt(r#"{"alg": "RS256", "kid": "k1"}"#, "{}");
        assert_eq!(verify(&bad_sig, &jwks(), &x), Err(TokenError::Signature));
    }

    #[test]
    fn every_claim_is_checked() {
        let x = expected();
        let ok = serde_json::json!({"iss": "https://idp.example", "aud": "c", "exp": 1_000_100, "iat": 999_990, "nonce": "n", "sub": "u1"});
        let m = |patch: Value| {
            let mut c = ok.clone();
            for (k, v) in patch.as_object().expect("obj") {
                if v.is_null() {
                    c.as_object_mut().expect("obj").remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            c.as_object().cloned().expect("obj")
        };
        assert_eq!(check_claims(&m(serde_json::json!({})), &x), Ok(()));
        let cases = [
            (serde_json::json!({"iss": "https://evil.example"}), "iss"),
            (serde_json::json!({"aud": "other"}), "aud"),
            (serde_json::json!({"aud": ["c", "other"]}), "azp"),
            (serde_json::json!({"azp": "other"}), "azp"),
            (serde_json::json!({"exp": 999_900}), "exp"),
            (serde_json::json!({"exp": null}), "exp"),
            (serde_json::json!({"iat": 1_000_100}), "iat"),
            (serde_json::json!({"nonce": "m"}), "nonce"),
            (serde_json::json!({"nonce": null}), "nonce"),
            (serde_json::json!({"sub": ""}), "sub"),
        ];
        for (patch, name) in cases {
            match check_claims(&m(patch.clone()), &x) {
                Err(TokenError::Claim(n, _)) => assert_eq!(n, name, "{patch}"),
                other => panic!("{patch}: {other:?}"),
            }
        }
        assert_eq!(check_claims(&m(serde_json::json!({"aud": ["c", "o"], "azp": "c"})), &x), Ok(()));
        assert_eq!(check_claims(&m(serde_json::json!({"exp": 999_950})), &x), Ok(()), "within the leeway");
    }

    #[test]
    fn flow_cookies_are_signed_expire_and_return_only_to_this_server() {
        let flow = Flow {
            config: uuid::Uuid::nil(),
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".repeat(43),
            return_to: safe_return_to(Some("/app/p?x=1")),
            expires: 1_000,
            cli: Some(CliFlow { port: 4242, challenge: s256("v"), state: "cs".into() }),
        };
        let sealed = flow.seal(b"key-1");
        assert_eq!(Flow::open(&sealed, b"key-1", 999), Ok(flow.clone()));
        assert_eq!(Flow::open(&sealed, b"key-1", 1_000), Err(FlowError::Expired));
        assert_eq!(Flow::open(&sealed, b"key-2", 999), Err(FlowError::Invalid));
        let (body, tag) = sealed.split_once('.').expect("dot");
        let other = Flow { return_to: "/evil".into(), ..flow };
        let forged = format!("{}.{tag}", other.seal(b"key-1").split_once('.').expect("dot").0);
        assert_eq!(Flow::open(&forged, b"key-1", 999), Err(FlowError::Invalid));
        assert_eq!(Flow::open(body, b"key-1", 999), Err(FlowError::Invalid));
        assert_eq!(Flow::open("", b"key-1", 999), Err(FlowError::Invalid));
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:x", "/a\nb"] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_return_to(None), "/");
    }
}
