//! Identities, on SQLite and PostgreSQL: service accounts and tokens, passwords and
//! sessions with CSRF protection, impersonation, rate limits, and no secret at rest.

use crate::common;

use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

on_both_backends!(
    service_accounts_are_owner_only_and_hold_exactly_their_grants,
    service_tokens_expire_are_replaced_and_revoked_at_once,
    passwords_open_sessions_that_need_csrf_for_writes_and_end,
    sign_in_is_rate_limited_and_failures_slow_down,
    owners_impersonate_only_within_what_they_own_and_the_audit_shows_both,
    no_secret_is_stored_in_the_clear
);

const HOUR: i64 = 3600 * 1_000_000;

async fn members_patch(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = app.send(Method::PATCH, "/v1/organization/members", Some(key), Some(body), &[]).await;
    (s, v)
}

async fn invite(app: &TestApp, owner: &str, email: &str, group: &str, password: Option<&str>) -> (String, String) {
    let (s, out) = members_patch(app, owner, json!({"invite_users": {"emails": [email], "group_name": group}})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let token = out["invitations"][0]["token"].as_str().expect("token").to_owned();
    let mut body = json!({"token": token});
    if let Some(p) = password {
        body["password"] = json!(p);
    }
    let (s, _, acc) = app.send(Method::POST, "/api/invitation/accept", None, Some(body), &[]).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    (acc["user"]["id"].as_str().expect("id").to_owned(), acc["api_key"].as_str().expect("key").to_owned())
}

async fn service_accounts_are_owner_only_and_hold_exactly_their_grants(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (_, eng) = invite(&app, &owner, "eve@acme.example", "Engineers", None).await;
    let p = app.post("/v1/project", &owner, json!({"name": "p"})).await.1["id"].as_str().expect("p").to_owned();
    let q = app.post("/v1/project", &owner, json!({"name": "q"})).await.1["id"].as_str().expect("q").to_owned();
    let sa_body = json!({"invite_users": {"service_accounts": [{"name": "ci-bot", "token_name": "ci"}], "group_name": "Viewers"}});
    let (s, v) = members_patch(&app, &eng, sa_body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "engineers cannot create service accounts: {v}");
    let (s, v) = members_patch(&app, &owner, sa_body).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "create-and-mint is not for a user API key, even an owner's: {v}");
    let (sa, token) = app.service_account(&owner, "ci-bot", "Viewers", "ci").await;
    assert!(token.starts_with("bt-st-"), "{token}");
    // It is a user: it appears in lists, groups and grants.
    let (_, me) = app.post("/api/self/me", &token, json!({})).await;
    assert_eq!(me["id"], sa.as_str());
    let (_, viewers) = app.get("/v1/group?group_name=Viewers", &owner).await;
    assert_eq!(viewers["objects"][0]["member_users"], json!([sa]));
    // Exactly its group's grants (read) plus its own (update on p).
    assert_eq!(app.get(&format!("/v1/project/{q}"), &token).await.0, StatusCode::OK);
    assert_eq!(
        app.patch(&format!("/v1/project/{p}"), &token, json!({"description": "x"})).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = app
        .post(
            "/v1/acl",
            &owner,
            json!({"object_type": "project", "object_id": p, "user_id": sa, "permission": "update"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(app.patch(&format!("/v1/project/{p}"), &token, json!({"description": "x"})).await.0, StatusCode::OK);
    assert_eq!(
        app.patch(&format!("/v1/project/{q}"), &token, json!({"description": "x"})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.delete(&format!("/v1/project/{p}"), &token).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.post("/v1/project", &token, json!({"name": "r"})).await.0, StatusCode::FORBIDDEN);
    // Non-owners cannot mint tokens for it; owners can.
    let (s, _) = app.post("/v1/service_token", &eng, json!({"name": "x", "service_account_id": sa})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app.post("/v1/service_token", &token, json!({"name": "x", "service_account_id": sa})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a service account is not an owner");
    let (s, t2) = app.post("/v1/service_token", &owner, json!({"name": "deploy", "service_account_id": sa})).await;
    assert_eq!(s, StatusCode::OK, "{t2}");
    assert_eq!(t2["service_account_name"], "ci-bot");
    let me_eng = app.post("/api/self/me", &eng, json!({})).await.1["id"].as_str().expect("id").to_owned();
    let (s, _) = app.post("/v1/service_token", &owner, json!({"name": "x", "service_account_id": me_eng})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a person is not a service account");
    // Removing the account revokes its tokens at once.
    let (s, _) = members_patch(&app, &owner, json!({"remove_users": {"ids": [sa]}})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.get("/v1/project", &token).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/v1/project", t2["key"].as_str().expect("key")).await.0, StatusCode::UNAUTHORIZED);
}

async fn service_tokens_expire_are_replaced_and_revoked_at_once(b: Backend) {
    let Some((app, clock)) = TestApp::spawn_with_clock(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (_, out) = members_patch(
        &app,
        &owner,
        json!({"invite_users": {"service_accounts": [{"name": "bot"}], "group_name": "Engineers"}}),
    )
    .await;
    let sa = out["added_users"][0]["id"].as_str().expect("sa").to_owned();
    assert!(out["added_users"][0]["api_key"].is_null(), "no token unless asked");
    let soon = castellan_api_types::format_time(now() + HOUR);
    let (s, t) = app
        .post("/v1/service_token", &owner, json!({"name": "short", "service_account_id": sa, "expires_at": soon}))
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let short = t["key"].as_str().expect("key").to_owned();
    assert!(t["preview_name"]
        .as_str()
        .is_some_and(|p| p.starts_with("bt-st-****") && p.ends_with(&short[short.len() - 4..])));
    assert_eq!(app.get("/v1/project", &short).await.0, StatusCode::OK);
    let (s, _) = app
        .post(
            "/v1/service_token",
            &owner,
            json!({"name": "x", "service_account_id": sa, "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "an expiry in the past is refused");
    // PUT replaces the account's token of that name.
    let (_, a) = app.post("/v1/service_token", &owner, json!({"name": "deploy", "service_account_id": sa})).await;
    let (s, b2) = app
        .send(
            Method::PUT,
            "/v1/service_token",
            Some(&owner),
            Some(json!({"name": "deploy", "service_account_id": sa})),
            &[],
        )
        .await
        .sv();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.get("/v1/project", a["key"].as_str().expect("a")).await.0, StatusCode::UNAUTHORIZED, "replaced");
    let new = b2["key"].as_str().expect("b").to_owned();
    assert_eq!(app.get("/v1/project", &new).await.0, StatusCode::OK);
    let (_, listed) = app.get("/v1/service_token", &owner).await;
    let names: Vec<&str> =
        listed["objects"].as_array().expect("objects").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, vec!["deploy", "short"]);
    assert!(!listed.to_string().contains(&new) && !listed.to_string().contains(&short));
    // Revoked by body: fails at once.
    let (s, _, _) =
        app.send(Method::DELETE, "/v1/service_token", Some(&owner), Some(json!({"id": b2["id"]})), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.get("/v1/project", &new).await.0, StatusCode::UNAUTHORIZED);
    // Expired: fails once the clock passes its expiry.
    clock.store(HOUR + 1_000_000, Ordering::SeqCst);
    let (s, v) = app.get("/v1/project", &short).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    assert_eq!(
        app.get(&format!("/v1/service_token/{}", t["id"].as_str().expect("id")), &owner).await.0,
        StatusCode::OK
    );
    let (s, _) = app.delete(&format!("/v1/service_token/{}", t["id"].as_str().expect("id")), &owner).await;
    assert_eq!(s, StatusCode::OK);
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_micros() as i64
}

trait Sv {
    fn sv(self) -> (StatusCode, Value);
}
impl Sv for (StatusCode, reqwest::header::HeaderMap, Value) {
    fn sv(self) -> (StatusCode, Value) {
        (self.0, self.2)
    }
}

/// Signs in; returns the session cookie pair, the CSRF token and the raw Set-Cookie
/// headers.
async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, String, String, Vec<String>) {
    let (s, h, v) =
        app.send(Method::POST, "/api/auth/login", None, Some(json!({"email": email, "password": password})), &[]).await;
    let set: Vec<String> = h.get_all("set-cookie").iter().filter_map(|c| c.to_str().ok().map(str::to_owned)).collect();
    let session =
        set.iter().find(|c| c.starts_with("castellan_session=")).map(|c| c.split(';').next().unwrap_or("").to_owned());
    (s, session.unwrap_or_default(), v["csrf_token"].as_str().unwrap_or("").to_owned(), set)
}

async fn passwords_open_sessions_that_need_csrf_for_writes_and_end(b: Backend) {
    let Some((app, clock)) = TestApp::spawn_with_clock(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (s, out) = members_patch(
        &app,
        &owner,
        json!({"invite_users": {"emails": ["pat@acme.example"], "group_name": "Engineers"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let token = out["invitations"][0]["token"].as_str().expect("token").to_owned();
    let (s, _, v) = app
        .send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": token, "password": "short"})), &[])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "weak password refused: {v}");
    let (s, _, _) = app
        .send(
            Method::POST,
            "/api/invitation/accept",
            None,
            Some(json!({"token": token, "password": "a sturdy passphrase"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _, _) = login(&app, "pat@acme.example", "a wrong passphrase").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _, _) = login(&app, "nobody@acme.example", "a sturdy passphrase").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "unknown emails get the same answer");
    let (s, cookie, csrf, set) = login(&app, "PAT@acme.example", "a sturdy passphrase").await;
    assert_eq!(s, StatusCode::OK);
    let sess = set.iter().find(|c| c.starts_with("castellan_session=")).expect("session cookie");
    assert!(sess.contains("HttpOnly") && sess.contains("SameSite=Lax") && sess.contains("Path=/"), "{sess}");
    assert!(set.iter().any(|c| c.starts_with("castellan_csrf=") && !c.contains("HttpOnly")));
    // Reads work with the cookie; writes need the CSRF token too.
    let (s, _, me) =
        app.send(Method::POST, "/api/self/me", None, None, &[("cookie", &cookie), ("x-csrf-token", &csrf)]).await;
    assert_eq!((s, me["email"].as_str()), (StatusCode::OK, Some("pat@acme.example")));
    let (s, _, _) = app.send(Method::GET, "/v1/project", None, None, &[("cookie", &cookie)]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, v) =
        app.send(Method::POST, "/v1/project", None, Some(json!({"name": "x"})), &[("cookie", &cookie)]).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("csrf")));
    let (s, _, v) = app
        .send(
            Method::POST,
            "/v1/project",
            None,
            Some(json!({"name": "x"})),
            &[("cookie", &cookie), ("x-csrf-token", "forged")],
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("csrf")));
    let (s, _, _) = app
        .send(
            Method::POST,
            "/v1/project",
            None,
            Some(json!({"name": "x"})),
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // A second session; changing the password from the first revokes the second.
    let (_, cookie2, _, _) = login(&app, "pat@acme.example", "a sturdy passphrase").await;
    let (_, _, l) = app.send(Method::GET, "/api/auth/sessions", None, None, &[("cookie", &cookie)]).await;
    assert_eq!(l["objects"].as_array().map(Vec::len), Some(2));
    let (s, _, v) = app
        .send(
            Method::POST,
            "/api/auth/password",
            None,
            Some(json!({"current_password": "wrong one here", "new_password": "another good phrase"})),
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _, v) = app
        .send(
            Method::POST,
            "/api/auth/password",
            None,
            Some(json!({"current_password": "a sturdy passphrase", "new_password": "another good phrase"})),
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!((s, v["other_sessions_revoked"].as_u64()), (StatusCode::OK, Some(1)), "{v}");
    assert_eq!(
        app.send(Method::GET, "/v1/project", None, None, &[("cookie", &cookie2)]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(&app, "pat@acme.example", "a sturdy passphrase").await.0, StatusCode::UNAUTHORIZED);
    // Logout ends the session.
    let (s, h, _) =
        app.send(Method::POST, "/api/auth/logout", None, None, &[("cookie", &cookie), ("x-csrf-token", &csrf)]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h.get_all("set-cookie").iter().any(|c| c.to_str().is_ok_and(|c| c.contains("Max-Age=0"))));
    assert_eq!(
        app.send(Method::GET, "/v1/project", None, None, &[("cookie", &cookie)]).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Sessions expire: idle for more than two hours, or past their lifetime.
    let (_, cookie3, _, _) = login(&app, "pat@acme.example", "another good phrase").await;
    assert_eq!(app.send(Method::GET, "/v1/project", None, None, &[("cookie", &cookie3)]).await.0, StatusCode::OK);
    clock.store(3 * HOUR, Ordering::SeqCst);
    assert_eq!(
        app.send(Method::GET, "/v1/project", None, None, &[("cookie", &cookie3)]).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Service accounts have no password to sign in with.
    let (s, _, _, _) = login(&app, "ada@acme.example", "").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn sign_in_is_rate_limited_and_failures_slow_down(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    invite(&app, &owner, "pat@acme.example", "Viewers", Some("a sturdy passphrase")).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let (s, h, _) = app
            .send(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": "pat@acme.example", "password": "wrong guess!!"})),
                &[],
            )
            .await;
        statuses.push(s.as_u16());
        if s == StatusCode::TOO_MANY_REQUESTS {
            retry_after = h.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        }
    }
    assert_eq!(&statuses[..3], &[401, 401, 401]);
    assert_eq!(statuses[3], 429, "{statuses:?}");
    assert!(retry_after.is_some_and(|r| r >= 1));
    let (s, _, _) = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "pat@acme.example", "password": "a sturdy passphrase"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "even the right password waits out the delay");
    // Per source address: a burst of sign-ins for many emails is cut off too.
    let mut limited = false;
    for i in 0..30 {
        let (s, _, _) = app
            .send(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": format!("x{i}@acme.example"), "password": "whatever you like"})),
                &[],
            )
            .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "per-address limit");
    // Minting keys is limited per credential.
    let mut minted = 0;
    loop {
        let (s, v) = app.post("/v1/api_key", &owner, json!({"name": "k"})).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(v["code"], "rate_limited");
            break;
        }
        assert_eq!(s, StatusCode::OK);
        minted += 1;
        assert!(minted < 100, "no limit on minting keys");
    }
}

async fn owners_impersonate_only_within_what_they_own_and_the_audit_shows_both(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let other_owner = app.bootstrap("zeta", "zed@zeta.example").await;
    let (m, mkey) = invite(&app, &owner, "max@acme.example", "Viewers", None).await;
    let (_, eng) = invite(&app, &owner, "eve@acme.example", "Engineers", None).await;
    let imp = |who: &str| vec![("x-bt-impersonate-user", who.to_owned())];
    let send = |key: &str, method: Method, path: &str, body: Option<Value>, h: Vec<(&'static str, String)>| {
        let app = &app;
        let key = key.to_owned();
        let path = path.to_owned();
        async move {
            let hs: Vec<(&str, &str)> = h.iter().map(|(a, b)| (*a, b.as_str())).collect();
            let (s, _, v) = app.send(method, &path, Some(&key), body, &hs).await;
            (s, v)
        }
    };
    let (s, me) = send(&owner, Method::POST, "/api/self/me", None, imp(&m)).await;
    assert_eq!((s, me["id"].as_str()), (StatusCode::OK, Some(m.as_str())), "{me}");
    let (s, me) = send(&owner, Method::POST, "/api/self/me", None, imp("MAX@acme.example")).await;
    assert_eq!((s, me["id"].as_str()), (StatusCode::OK, Some(m.as_str())), "by email");
    // Acting as the viewer: the viewer's permissions apply.
    let (s, _) = send(&owner, Method::POST, "/v1/project", Some(json!({"name": "as-max"})), imp(&m)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) =
        send(&owner, Method::POST, "/v1/project", Some(json!({"name": "as-eve"})), imp("eve@acme.example")).await;
    assert_eq!(s, StatusCode::OK);
    let (_, log) = app.get("/v1/audit_log?event_type=project.created", &owner).await;
    let entry = &log["objects"][0];
    let (_, eve) = app.post("/api/self/me", &eng, json!({})).await;
    assert_eq!(entry["actor_id"], eve["id"]);
    let (_, ada) = app.post("/api/self/me", &owner, json!({})).await;
    assert_eq!(entry["impersonator_id"], ada["id"], "the audit log records both identities");
    // Not an owner of every org of the target: refused. Non-owners: refused.
    let (_, zed) = app.post("/api/self/me", &other_owner, json!({})).await;
    let zed_id = zed["id"].as_str().expect("zed").to_owned();
    let (_, inv) = members_patch(&app, &owner, json!({"invite_users": {"emails": ["zed@zeta.example"]}})).await;
    let token = inv["invitations"][0]["token"].as_str().expect("token").to_owned();
    let (s, _, v) =
        app.send(Method::POST, "/api/invitation/accept", Some(&other_owner), Some(json!({"token": token})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = send(&owner, Method::POST, "/api/self/me", None, imp(&zed_id)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "zed also belongs to zeta, which ada does not own");
    let (s, _) = send(&mkey, Method::POST, "/api/self/me", None, imp("eve@acme.example")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = send(&eng, Method::POST, "/api/self/me", None, imp(&m)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = send(&owner, Method::POST, "/api/self/me", None, imp("ghost@acme.example")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "an unknown user is refused like a forbidden one");
    let (s, _) = send(&owner, Method::POST, "/api/self/me", None, imp("not an email")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

async fn no_secret_is_stored_in_the_clear(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (_, key) = app.post("/v1/api_key", &owner, json!({"name": "k"})).await;
    let key = key["key"].as_str().expect("key").to_owned();
    let (_, token) = app.service_account(&owner, "bot", "Viewers", "t").await;
    let (_, out) = members_patch(&app, &owner, json!({"invite_users": {"emails": ["pat@acme.example"]}})).await;
    let invitation = out["invitations"][0]["token"].as_str().expect("inv").to_owned();
    let password = "correct horse battery staple";
    let (s, _, _) = app
        .send(
            Method::POST,
            "/api/invitation/accept",
            None,
            Some(json!({"token": invitation, "password": password})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, session, csrf, _) = login(&app, "pat@acme.example", password).await;
    assert_eq!(s, StatusCode::OK);
    let session = session.trim_start_matches("castellan_session=").to_owned();
    let dump = common::dump_database(&app.db).await;
    assert!(dump.len() > 1000, "the dump read the database");
    for (what, secret) in [
        ("bootstrap key", owner.as_str()),
        ("api key", key.as_str()),
        ("service token", token.as_str()),
        ("invitation token", invitation.as_str()),
        ("password", password),
        ("session token", session.as_str()),
        ("csrf token", csrf.as_str()),
    ] {
        assert!(secret.len() >= 20, "{what} looks too short to be real: {secret}");
        assert!(!dump.contains(secret), "the {what} is stored in the clear");
        // Not even its secret part without the prefix.
        let body = &secret[secret.len() - 20..];
        assert!(!dump.contains(body), "part of the {what} is stored in the clear");
    }
    assert!(dump.contains("$argon2id$"), "passwords are stored as argon2id hashes");
}
