//! Single sign-on against a real OpenID provider (npm `oidc-provider`, started by the
//! test): the whole browser flow over HTTP (start → the provider's login and consent
//! pages → callback), identity linking, just-in-time provisioning, group mapping,
//! every bad-input case of the callback, key rotation at the provider, and SSO
//! enforcement with the owners' break-glass sign-in.

use crate::common;
use crate::oidc_provider::{Browser, Provider};

use common::{test_config, Backend, Db, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

on_both_backends!(
    #[ignore = "needs the OpenID test provider (npm oidc-provider): scripts/test runs it"]
    sso_signs_in_links_provisions_and_maps_groups,
    bad_sso_answers_are_refused_and_change_nothing,
    the_providers_key_rotation_is_followed,
    sso_enforcement_refuses_passwords_but_owners_can_break_the_glass,
);

const SECRET: &str = "oidc-client-secret-0123456789abcdefghijklmnopqrstuvwxyz";
pub const PASSWORD: &str = "correct horse battery staple 9";

/// A free loopback port (bound and released: the server takes it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A server whose public URL is its real address (the redirect URI registered at the
/// provider), with a clock tests can move forward, and the provider itself.
pub struct Sso {
    pub app: TestApp,
    pub op: Provider,
    pub owner: String,
    pub config_id: String,
    pub clock: Arc<AtomicI64>,
}

pub fn clients(base: &str) -> Value {
    json!([{"client_id": "castellan", "client_secret": SECRET, "redirect_uris": [format!("{base}/auth/sso/callback")]}])
}

pub async fn setup(b: Backend, keys: Option<Value>, op_port: u16) -> Option<Sso> {
    let db = Db::fresh(b)?;
    let port = free_port();
    let mut config = test_config();
    config.listen = format!("127.0.0.1:{port}").parse().expect("addr");
    config.public_url = Some(format!("http://127.0.0.1:{port}"));
    let clock = Arc::new(AtomicI64::new(0));
    let c = clock.clone();
    let sys = castellan_server::access::system_clock();
    let app = TestApp::spawn_on(db, config, Arc::new(move || sys() + c.load(Ordering::SeqCst))).await;
    assert_eq!(app.base, format!("http://127.0.0.1:{port}"));
    let op = Provider::start(clients(&app.base), keys, op_port, false).await;
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (s, c) = app
        .post(
            "/v1/sso_config",
            &owner,
            json!({
                "name": "okta",
                "issuer": op.issuer,
                "client_id": "castellan",
                "client_secret": SECRET,
                "scopes": ["openid", "email", "profile", "groups"],
                "allowed_email_domains": ["acme.example"],
                "groups_claim": "groups",
                "group_map": {"eng": "Engineers"},
                "default_group": "Viewers",
                "jit": true,
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let config_id = c["id"].as_str().expect("id").to_owned();
    Some(Sso { app, op, owner, config_id, clock })
}

/// What a sign-in ended with.
pub struct Ended {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Value,
    pub session: Option<String>,
    pub csrf: Option<String>,
}

impl Sso {
    /// Starts a sign-in in `browser`; answers the provider URL it was sent to.
    pub async fn start(&self, browser: &mut Browser, query: &str) -> String {
        let (s, loc, body) =
            browser.send(Method::GET, &format!("{}/auth/sso/start?{query}", self.app.base), None).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
        let loc = loc.expect("a redirect to the provider");
        assert!(loc.starts_with(&self.op.issuer), "{loc}");
        assert!(browser.cookies(&self.app.base).contains_key("castellan_sso"), "the flow cookie is set");
        loc
    }

    /// Walks the provider as `login` to the callback URL (not requested yet).
    pub async fn to_callback(&self, browser: &mut Browser, login: &str) -> String {
        let at = self.start(browser, "org=acme&return_to=/projects").await;
        browser.walk(&at, login, &format!("{}/auth/sso/callback", self.app.base)).await
    }

    /// Requests a callback URL in `browser`.
    pub async fn finish(&self, browser: &mut Browser, callback: &str) -> Ended {
        let (status, location, body) = browser.send(Method::GET, callback, None).await;
        let cookies = browser.cookies(&self.app.base);
        assert!(!cookies.contains_key("castellan_sso"), "the flow cookie is cleared by the callback");
        Ended {
            status,
            location,
            body: serde_json::from_str(&body).unwrap_or(Value::Null),
            session: cookies.get("castellan_session").cloned(),
            csrf: cookies.get("castellan_csrf").cloned(),
        }
    }

    /// A whole sign-in as `login` in a new browser.
    pub async fn sign_in(&self, login: &str) -> Ended {
        let mut browser = Browser::default();
        let cb = self.to_callback(&mut browser, login).await;
        self.finish(&mut browser, &cb).await
    }

    async fn group_members(&self, name: &str) -> Vec<String> {
        let (s, g) = self.app.get(&format!("/v1/group?group_name={name}"), &self.owner).await;
        assert_eq!(s, StatusCode::OK, "{g}");
        g["objects"][0]["member_users"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    }

    async fn group_id(&self, name: &str) -> String {
        let (_, g) = self.app.get(&format!("/v1/group?group_name={name}"), &self.owner).await;
        g["objects"][0]["id"].as_str().expect("group id").to_owned()
    }

    /// Every user the org shows, by email → id.
    async fn members(&self) -> std::collections::BTreeMap<String, String> {
        let (s, l) = self.app.get("/v1/user?limit=1000", &self.owner).await;
        assert_eq!(s, StatusCode::OK, "{l}");
        l["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| Some((u["email"].as_str()?.to_owned(), u["id"].as_str()?.to_owned())))
            .collect()
    }

    async fn audit(&self, event: &str) -> Vec<Value> {
        let (s, l) = self.app.get(&format!("/v1/audit_log?event_type={event}&limit=1000"), &self.owner).await;
        assert_eq!(s, StatusCode::OK, "{l}");
        l["objects"].as_array().cloned().unwrap_or_default()
    }

    async fn set_account(&self, id: &str, claims: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/__test/accounts", self.op.issuer))
            .body(json!({ id: claims }).to_string())
            .send()
            .await
            .expect("accounts");
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// A request with a session cookie (and its CSRF token).
    async fn with_session(&self, e: &Ended, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .app
            .http
            .request(method, format!("{}{path}", self.app.base))
            .header("cookie", format!("castellan_session={}", e.session.as_deref().expect("session")));
        if let Some(c) = &e.csrf {
            req = req.header("x-csrf-token", c);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

fn signed_in(e: &Ended, to: &str) {
    assert_eq!(e.status, StatusCode::SEE_OTHER, "{}", e.body);
    assert!(e.location.as_deref().is_some_and(|l| l.ends_with(to)), "{:?}", e.location);
    assert!(e.session.is_some() && e.csrf.is_some(), "session cookies are set");
}

fn refused(e: &Ended, needle: &str) {
    assert_eq!((e.status, e.body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("sso_failed")), "{}", e.body);
    let m = e.body["message"].as_str().unwrap_or("");
    assert!(m.contains(needle), "`{needle}` not in: {m}");
    assert!(e.session.is_none(), "no session after a refusal");
}

async fn invite_with_password(app: &TestApp, owner: &str, email: &str) -> String {
    let (s, out) = app.patch("/v1/organization/members", owner, json!({"invite_users": {"emails": [email]}})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let token = out["invitations"][0]["token"].as_str().expect("token").to_owned();
    let (s, _, acc) = app
        .send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": token, "password": PASSWORD})), &[])
        .await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    acc["api_key"].as_str().expect("key").to_owned()
}

async fn sso_signs_in_links_provisions_and_maps_groups(b: Backend) {
    let Some(t) = setup(b, None, 0).await else { return };
    // Alice (verified, groups eng + staff) has no account: just in time she gets one,
    // joins the org in the default group and in Engineers (eng is mapped).
    let e = t.sign_in("alice").await;
    signed_in(&e, "/projects");
    let members = t.members().await;
    let alice = members.get("alice@acme.example").expect("alice joined").clone();
    assert!(t.group_members("Viewers").await.contains(&alice), "the default group");
    assert!(t.group_members("Engineers").await.contains(&alice), "eng → Engineers");
    // The session works, and says how it started.
    let (s, sessions) = t.with_session(&e, Method::GET, "/api/auth/sessions", None).await;
    assert_eq!((s, sessions["objects"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{sessions}");
    // Audited with the identity provider as actor.
    for event in ["identity.linked", "member.added", "group.member_added"] {
        let recs = t.audit(event).await;
        let r = recs.iter().find(|r| r.to_string().contains(&alice)).unwrap_or_else(|| panic!("no {event}"));
        assert_eq!(r["details"]["actor_type"], "identity_provider", "{r}");
        assert_eq!(r["details"]["issuer"], json!(t.op.issuer), "{r}");
        assert_eq!(r["details"]["subject"], "alice", "{r}");
    }
    // Signing in again finds the same account by (issuer, subject).
    signed_in(&t.sign_in("alice").await, "/projects");
    assert_eq!(t.members().await.len(), members.len());
    assert_eq!(t.audit("identity.linked").await.len(), 1);
    // The provider drops eng: single sign-on takes back the membership it made.
    t.set_account("alice", json!({"email": "alice@acme.example", "email_verified": true, "groups": ["staff"]})).await;
    signed_in(&t.sign_in("alice").await, "/projects");
    assert!(!t.group_members("Engineers").await.contains(&alice), "unmapped: removed");
    assert!(t.group_members("Viewers").await.contains(&alice), "the default group is not managed");
    assert_eq!(t.audit("group.member_removed").await.len(), 1);
    // A membership an owner made by hand is never touched by single sign-on.
    let eng = t.group_id("Engineers").await;
    let (s, g) = t.app.patch(&format!("/v1/group/{eng}"), &t.owner, json!({"add_member_users": [alice]})).await;
    assert_eq!(s, StatusCode::OK, "{g}");
    signed_in(&t.sign_in("alice").await, "/projects");
    assert!(t.group_members("Engineers").await.contains(&alice), "manual membership kept");
    t.set_account("alice", json!({"email": "alice@acme.example", "email_verified": true, "groups": ["eng"]})).await;
    signed_in(&t.sign_in("alice").await, "/projects");
    t.set_account("alice", json!({"email": "alice@acme.example", "email_verified": true, "groups": []})).await;
    signed_in(&t.sign_in("alice").await, "/projects");
    assert!(t.group_members("Engineers").await.contains(&alice), "still manual: kept");
    // A provider that sends no groups claim at all changes no group.
    t.set_account("dora", json!({"email": "dora@acme.example", "email_verified": true, "groups": ["eng"]})).await;
    signed_in(&t.sign_in("dora").await, "/projects");
    let dora = t.members().await.get("dora@acme.example").expect("dora").clone();
    assert!(t.group_members("Engineers").await.contains(&dora));
    t.set_account("dora", json!({"email": "dora@acme.example", "email_verified": true})).await;
    signed_in(&t.sign_in("dora").await, "/projects");
    assert!(t.group_members("Engineers").await.contains(&dora), "no claim: nothing removed");

    // An existing password account is linked when the provider verified its email.
    let bob_key = invite_with_password(&t.app, &t.owner, "bob@acme.example").await;
    let bob = t.members().await.get("bob@acme.example").expect("bob").clone();
    signed_in(&t.sign_in("bob").await, "/projects");
    assert_eq!(t.members().await.get("bob@acme.example"), Some(&bob), "the same account");
    let linked = t.audit("identity.linked").await;
    assert!(linked.iter().any(|r| r["resource_id"] == json!(bob)), "bob linked");
    // … but never a second identity at the same issuer onto it, by email alone.
    t.set_account("bob2", json!({"email": "bob@acme.example", "email_verified": true})).await;
    refused(&t.sign_in("bob2").await, "already linked to another identity");
    // An unverified email is refused, and cannot take over an account either.
    refused(&t.sign_in("unverified").await, "has not verified");
    // A domain the configuration does not allow is refused.
    refused(&t.sign_in("outsider").await, "`evil.example`");
    assert!(!t.members().await.contains_key("mallory@evil.example"));
    // With verification not required, an unverified email may join just in time, but
    // an existing account is still never linked on an unverified email.
    let (s, v) = t
        .app
        .patch(&format!("/v1/sso_config/{}", t.config_id), &t.owner, json!({"require_email_verified": false}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    signed_in(&t.sign_in("unverified").await, "/projects");
    assert!(t.members().await.contains_key("eve@acme.example"), "joined just in time");
    invite_with_password(&t.app, &t.owner, "frank@acme.example").await;
    t.set_account("frank-x", json!({"email": "frank@acme.example", "email_verified": false})).await;
    refused(&t.sign_in("frank-x").await, "only when the identity provider has verified that email");
    let (s, _) = t
        .app
        .patch(&format!("/v1/sso_config/{}", t.config_id), &t.owner, json!({"require_email_verified": true}))
        .await;
    assert_eq!(s, StatusCode::OK);
    // Without just-in-time provisioning, strangers are told to ask for an invitation.
    let (s, v) = t.app.patch(&format!("/v1/sso_config/{}", t.config_id), &t.owner, json!({"jit": false})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let before = t.members().await;
    refused(&t.sign_in("carol").await, "ask an owner to invite you");
    assert_eq!(t.members().await, before, "nothing was made");
    // An owner removes bob from the org: single sign-on does not bring him back.
    let (s, v) = t
        .app
        .patch("/v1/organization/members", &t.owner, json!({"remove_users": {"emails": ["bob@acme.example"]}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    refused(&t.sign_in("bob").await, "not a member of this organization");
    drop(bob_key);
    t.op.stop().await;
    t.app.stop().await;
}

async fn bad_sso_answers_are_refused_and_change_nothing(b: Backend) {
    let Some(t) = setup(b, None, 0).await else { return };
    let before = t.members().await;
    let cb = format!("{}/auth/sso/callback", t.app.base);
    // No flow cookie at all.
    let mut browser = Browser::default();
    refused(&t.finish(&mut browser, &format!("{cb}?code=x&state=y")).await, "cookie is missing");
    // A state that is not this sign-in's; the cookie is then spent, so the genuine
    // answer fails too.
    let mut browser = Browser::default();
    let real = t.to_callback(&mut browser, "alice").await;
    let url = reqwest::Url::parse(&real).expect("url");
    let q: std::collections::BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    let forged = real.replace(&format!("state={}", q["state"]), "state=forged");
    refused(&t.finish(&mut browser, &forged).await, "`state` is not this sign-in's");
    refused(&t.finish(&mut browser, &real).await, "cookie is missing");
    // A replayed code: a new sign-in's cookie with the old code is refused by the
    // provider (the code is spent, and its PKCE verifier is another).
    let mut browser = Browser::default();
    let good = t.to_callback(&mut browser, "alice").await;
    signed_in(&t.finish(&mut browser, &good).await, "/projects");
    let mut replay = Browser::default();
    let fresh = t.to_callback(&mut replay, "alice").await;
    let fresh_state =
        reqwest::Url::parse(&fresh).expect("url").query_pairs().find(|(k, _)| k == "state").expect("s").1.into_owned();
    let old = reqwest::Url::parse(&good).expect("url");
    let old_code = old.query_pairs().find(|(k, _)| k == "code").expect("code").1.into_owned();
    let mut spliced = reqwest::Url::parse(&cb).expect("url");
    spliced
        .query_pairs_mut()
        .append_pair("code", &old_code)
        .append_pair("state", &fresh_state)
        .append_pair("iss", &t.op.issuer);
    refused(&t.finish(&mut replay, spliced.as_str()).await, "refused the sign-in code");
    // A mix-up: the answer names another issuer (RFC 9207).
    let mut browser = Browser::default();
    let real = t.to_callback(&mut browser, "alice").await;
    let mixed = real.replace(&form_encoded(&t.op.issuer), &form_encoded("https://evil.example"));
    assert_ne!(mixed, real);
    refused(&t.finish(&mut browser, &mixed).await, "a mix-up");
    // … or none, though the provider promises it.
    let mut browser = Browser::default();
    let real = t.to_callback(&mut browser, "alice").await;
    let stripped = real.replace(&format!("&iss={}", form_encoded(&t.op.issuer)), "");
    assert_ne!(stripped, real);
    refused(&t.finish(&mut browser, &stripped).await, "lacks the `iss`");
    // The provider's own refusal is shown.
    let mut browser = Browser::default();
    let at = t.start(&mut browser, "org=acme").await;
    let st =
        reqwest::Url::parse(&at).expect("url").query_pairs().find(|(k, _)| k == "state").expect("s").1.into_owned();
    let denied = format!("{cb}?error=access_denied&error_description=no%20thanks&state={st}");
    refused(&t.finish(&mut browser, &denied).await, "access_denied: no thanks");
    // Every way the provider's ID token can be spoiled.
    for (mode, needle) in [
        ("signature", "signature does not verify"),
        ("unknown_kid", "does not hold"),
        ("expired", "`exp`"),
        ("nonce", "`nonce`"),
        ("iss", "`iss`"),
        ("aud", "`aud`"),
    ] {
        t.op.tamper(Some(mode)).await;
        refused(&t.sign_in("alice").await, needle);
    }
    t.op.tamper(None).await;
    // A flow older than ten minutes is refused.
    let mut browser = Browser::default();
    let real = t.to_callback(&mut browser, "alice").await;
    t.clock.fetch_add(11 * 60 * 1_000_000, Ordering::SeqCst);
    refused(&t.finish(&mut browser, &real).await, "took too long");
    t.clock.store(0, Ordering::SeqCst);
    // A forged cookie.
    let mut browser = Browser::default();
    let real = t.to_callback(&mut browser, "alice").await;
    let (s, _, body) = browser.send(Method::GET, &format!("{}/auth/sso/start?org=acme", t.app.base), None).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let mut req = t.app.http.get(&real);
    req = req.header("cookie", "castellan_sso=eyJmb3JnZWQiOnRydWV9.AAAA");
    let r = req.send().await.expect("callback");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Unknown organizations and ones without single sign-on answer alike; bad
    // command-line parameters are refused.
    t.app.bootstrap("plain", "pat@plain.example").await;
    let get = |q: &'static str| {
        let base = t.app.base.clone();
        async move {
            let r = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client")
                .get(format!("{base}/auth/sso/start?{q}"))
                .send()
                .await
                .expect("start");
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s1, v1) = get("org=nope").await;
    let (s2, v2) = get("org=plain").await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(
        v1["message"].as_str().map(|m| m.replace("nope", "X")),
        v2["message"].as_str().map(|m| m.replace("plain", "X"))
    );
    assert_eq!(get("org=acme&config=other").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get("").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(get("org=acme&cli_port=80&cli_challenge=x&cli_state=y").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(get("org=acme&cli_port=5000").await.0, StatusCode::BAD_REQUEST);
    // A browser is shown the sign-in page with the reason.
    let r =
        t.app.http.get(format!("{cb}?code=x&state=y")).header("accept", "text/html").send().await.expect("callback");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let html = r.text().await.expect("html");
    assert!(html.contains("id=\"sso-error\"") && html.contains("start the sign-in again"), "{html}");
    // The command-line exchange refuses unknown codes and malformed verifiers.
    let (s, _, v) = t
        .app
        .send(Method::POST, "/auth/sso/cli/token", None, Some(json!({"code": "nope", "verifier": "v".repeat(43)})), &[])
        .await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("sso_failed")), "{v}");
    let (s, _, v) = t
        .app
        .send(Method::POST, "/auth/sso/cli/token", None, Some(json!({"code": "x", "verifier": "short"})), &[])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // Only the one good sign-in changed anything.
    let after = t.members().await;
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert!(after.contains_key("alice@acme.example"));
    assert_eq!(t.audit("identity.linked").await.len(), 1);
    // Sign-in requests are limited per address (each may call the provider).
    let mut limited = None;
    for i in 0..200 {
        let (s, v) = get("org=nope").await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((i, v));
            break;
        }
    }
    let (i, v) = limited.expect("a burst of sign-in starts is limited");
    assert!(i < 120, "limited after {i}");
    assert_eq!(v["code"], "rate_limited", "{v}");
    t.op.stop().await;
    t.app.stop().await;
}

fn form_encoded(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

async fn the_providers_key_rotation_is_followed(b: Backend) {
    let old = Provider::gen_key().await;
    let port = free_port();
    let Some(mut t) = setup(b, Some(json!([old.clone()])), port).await else { return };
    signed_in(&t.sign_in("alice").await, "/projects");
    // The provider rotates: a new key signs, the old one is still published.
    let new = Provider::gen_key().await;
    let clients = clients(&t.app.base);
    t.op.kill().await;
    t.op = Provider::start(clients.clone(), Some(json!([new.clone(), old])), port, false).await;
    let e = t.sign_in("alice").await;
    signed_in(&e, "/projects");
    // Then the old key is withdrawn: tokens it signed would no longer verify, and the
    // new one still does.
    t.op.kill().await;
    t.op = Provider::start(clients, Some(json!([new])), port, false).await;
    signed_in(&t.sign_in("alice").await, "/projects");
    t.op.tamper(Some("unknown_kid")).await;
    refused(&t.sign_in("alice").await, "does not hold");
    t.op.tamper(None).await;
    // A provider that cannot be reached is refused clearly, and not asked again for
    // 15 s however many sign-ins start (then it is).
    let dead = free_port();
    let (s, v) = t
        .app
        .post(
            "/v1/sso_config",
            &t.owner,
            json!({"name": "later", "issuer": format!("http://127.0.0.1:{dead}"), "client_id": "castellan", "client_secret": SECRET}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let url = format!("{}/auth/sso/start?org=acme&config=later", t.app.base);
    let mut browser = Browser::default();
    let (s, _, body) = browser.send(Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("could not be used"), "{body}");
    let later = Provider::start(self::clients(&t.app.base), None, dead, false).await;
    let (s, _, body) = browser.send(Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("tried again at most every 15 s"), "{body}");
    t.clock.fetch_add(16 * 1_000_000, Ordering::SeqCst);
    let (s, loc, body) = browser.send(Method::GET, &url, None).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(loc.is_some_and(|l| l.starts_with(&later.issuer)));
    later.stop().await;
    t.op.stop().await;
    t.app.stop().await;
}

async fn sso_enforcement_refuses_passwords_but_owners_can_break_the_glass(b: Backend) {
    let Some(t) = setup(b, None, 0).await else { return };
    let app = &t.app;
    let cfg = format!("/v1/sso_config/{}", t.config_id);
    let login = |email: &'static str, password: &'static str, break_glass: bool| async move {
        let body = json!({"email": email, "password": password, "break_glass": break_glass});
        let r = app.http.post(format!("{}/api/auth/login", app.base)).json(&body).send().await.expect("login");
        let s = r.status();
        let cookies: Vec<String> =
            r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        let cookie = |n: &str| {
            cookies.iter().find_map(|c| c.split(';').next()?.strip_prefix(&format!("{n}=")).map(str::to_owned))
        };
        Ended {
            status: s,
            location: None,
            body: v,
            session: cookie("castellan_session"),
            csrf: cookie("castellan_csrf"),
        }
    };
    // Passwords for the owner, a member of the enforced domain and one of another.
    let (s, v) = app.post("/api/auth/password", &t.owner, json!({"new_password": PASSWORD})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    invite_with_password(app, &t.owner, "bob@acme.example").await;
    invite_with_password(app, &t.owner, "cy@partner.example").await;
    let bob_before = login("bob@acme.example", PASSWORD, false).await;
    assert_eq!(bob_before.status, StatusCode::OK, "{}", bob_before.body);
    let ada_before = login("ada@acme.example", PASSWORD, false).await;
    let cy_before = login("cy@partner.example", PASSWORD, false).await;
    assert_eq!((ada_before.status, cy_before.status), (StatusCode::OK, StatusCode::OK));
    // Not before anyone has signed in through the configuration, nor without domains.
    let (s, v) = app.patch(&cfg, &t.owner, json!({"enforced": true})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| m.contains("once someone has signed in")), "{v}");
    let alice = t.sign_in("alice").await;
    signed_in(&alice, "/projects");
    let (s, v) = app.patch(&cfg, &t.owner, json!({"enforced": true, "allowed_email_domains": []})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = app.patch(&cfg, &t.owner, json!({"enforced": true})).await;
    assert_eq!((s, v["enforced"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    // The covered members' password sessions end at once (bob's); another domain's
    // (cy's) and those of the owner who turned it on stay.
    let (s, _) = t.with_session(&bob_before, Method::GET, "/api/auth/sessions", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "bob's password session ended");
    assert_eq!(t.with_session(&cy_before, Method::GET, "/api/auth/sessions", None).await.0, StatusCode::OK);
    assert_eq!(t.with_session(&ada_before, Method::GET, "/api/auth/sessions", None).await.0, StatusCode::OK);
    let ended = t.audit("sso.sessions_ended").await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0]["after"]["password_sessions_ended"], 1, "{ended:?}");
    // Bob's password no longer signs him in; the message points to the SSO button.
    // A wrong password still says only that.
    let e = login("bob@acme.example", PASSWORD, false).await;
    assert_eq!((e.status, e.body["code"].as_str()), (StatusCode::FORBIDDEN, Some("sso_required")), "{}", e.body);
    let m = e.body["message"].as_str().unwrap_or("");
    assert!(m.contains("Sign in with SSO") && m.contains("`acme`") && !m.contains("break-glass"), "{m}");
    let e = login("bob@acme.example", "wrong password entirely", false).await;
    assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{}", e.body);
    // He cannot break the glass; a member of another domain is not affected.
    let e = login("bob@acme.example", PASSWORD, true).await;
    assert_eq!(e.body["code"], "sso_required", "{}", e.body);
    assert_eq!(login("cy@partner.example", PASSWORD, false).await.status, StatusCode::OK);
    // A password session of a covered member (the owner's, which stayed) cannot mint
    // API keys; an SSO session can.
    let (s, v) = t.with_session(&ada_before, Method::POST, "/v1/api_key", Some(json!({"name": "k"}))).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("sso_required")), "{v}");
    let (s, v) = t.with_session(&alice, Method::POST, "/v1/api_key", Some(json!({"name": "k"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The owner is told about the break-glass path, and it works, audited.
    let e = login("ada@acme.example", PASSWORD, false).await;
    assert_eq!(e.body["code"], "sso_required", "{}", e.body);
    assert!(e.body["message"].as_str().is_some_and(|m| m.contains("break-glass")), "{}", e.body);
    assert!(t.audit("sso.break_glass").await.is_empty());
    let owner = login("ada@acme.example", PASSWORD, true).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    let glass = t.audit("sso.break_glass").await;
    assert_eq!(glass.len(), 1, "{glass:?}");
    assert_eq!(glass[0]["resource_name"], "ada@acme.example");
    let (s, v) = t.with_session(&owner, Method::POST, "/v1/api_key", Some(json!({"name": "glass"}))).await;
    assert_eq!(s, StatusCode::OK, "a break-glass session may: {v}");
    // Turning enforcement off restores password sign-in.
    let (s, _) = app.patch(&cfg, &t.owner, json!({"enforced": false})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(login("bob@acme.example", PASSWORD, false).await.status, StatusCode::OK);
    t.op.stop().await;
    t.app.stop().await;
}
