//! The outside audit's findings, each reproduced as the attack it was, over real
//! HTTP on SQLite and PostgreSQL, and asserted to fail now.

use crate::common;

use castellan_server::access::system_clock;
use common::{ids, test_config, Backend, Db, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

on_both_backends!(
    an_invitation_token_never_takes_over_an_account_that_exists,
    an_invitation_is_void_once_expired_used_or_its_org_or_inviter_is_gone,
    an_api_key_acts_only_in_the_org_it_was_made_for,
    inviting_an_existing_user_adds_nobody_and_reveals_nothing,
    a_service_account_cannot_mint_keys_or_manage_its_own_tokens,
    credentialed_cors_is_only_for_configured_origins,
    nothing_about_an_unreadable_object_leaks_through_bodies_or_statuses,
    attachment_keys_belong_to_their_org,
    wrong_passwords_elsewhere_do_not_lock_the_owner_out_of_its_own_address,
    empty_uuid_parameters_and_missing_optional_bodies_are_answered_as_declared,
    revocations_and_removals_reach_a_replica_that_never_polls,
    a_project_changed_on_one_replica_is_served_changed_by_another
);

const DAY: i64 = 24 * 3600 * 1_000_000;

async fn members_patch(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = app.send(Method::PATCH, "/v1/organization/members", Some(key), Some(body), &[]).await;
    (s, v)
}

/// Invites `email` into the org of `owner`; returns the invitation token.
async fn invitation(app: &TestApp, owner: &str, email: &str) -> String {
    let (s, out) =
        members_patch(app, owner, json!({"invite_users": {"emails": [email], "group_name": "Engineers"}})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    out["invitations"][0]["token"].as_str().expect("token").to_owned()
}

async fn accept(app: &TestApp, key: Option<&str>, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = app.send(Method::POST, "/api/invitation/accept", key, Some(body), &[]).await;
    (s, v)
}

async fn login(app: &TestApp, email: &str, password: &str, from: &str) -> StatusCode {
    let body = json!({"email": email, "password": password});
    app.send(Method::POST, "/api/auth/login", None, Some(body), &[("x-forwarded-for", from)]).await.0
}

async fn me(app: &TestApp, key: &str) -> String {
    app.post("/api/self/me", key, json!({})).await.1["id"].as_str().expect("me").to_owned()
}

async fn an_invitation_token_never_takes_over_an_account_that_exists(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let acme = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    // zeta invites first; acme invites later and the person accepts acme's.
    let zeta_token = invitation(&app, &zeta, "newhire@acme.example").await;
    let acme_token = invitation(&app, &acme, "newhire@acme.example").await;
    let (s, acc) = accept(&app, None, json!({"token": acme_token, "password": "the newhire's own passphrase"})).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    let newhire = acc["api_key"].as_str().expect("key").to_owned();
    let user = acc["user"]["id"].as_str().expect("user").to_owned();
    // The attack: zeta's token, no credential, a password of the attacker's choosing.
    let (s, v) = accept(&app, None, json!({"token": zeta_token, "password": "attacker chosen passphrase"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v.get("api_key").is_none() && v.get("user").is_none(), "nothing about the account comes back: {v}");
    assert!(v["message"].as_str().unwrap_or("").contains("sign in"), "{v}");
    assert_eq!(login(&app, "newhire@acme.example", "attacker chosen passphrase", "10.9.9.9").await, 401);
    assert_eq!(login(&app, "newhire@acme.example", "the newhire's own passphrase", "10.1.1.1").await, 200);
    let (_, keys) = app.get("/v1/api_key", &newhire).await;
    assert_eq!(ids(&keys).len(), 1, "no key was minted for the account: {keys}");
    // Another signed-in account cannot use the token either.
    let (s, v) = accept(&app, Some(&acme), json!({"token": zeta_token})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // The account itself, signed in, accepts; it gets a key for zeta only.
    let (s, v) = accept(&app, Some(&newhire), json!({"token": zeta_token, "password": "x y z w v u t s"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a signed-in account sets no password here: {v}");
    let (s, v) = accept(&app, Some(&newhire), json!({"token": zeta_token})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["id"], user.as_str());
    let zeta_key = v["api_key"].as_str().expect("zeta key").to_owned();
    let (_, orgs) = app.get("/v1/organization", &zeta_key).await;
    assert_eq!(orgs["objects"].as_array().map(Vec::len), Some(1));
    assert_eq!(orgs["objects"][0]["name"], "zeta");
    // Used once.
    assert_eq!(accept(&app, Some(&newhire), json!({"token": zeta_token})).await.0, StatusCode::NOT_FOUND);
    // A token for a new address still works alone, and sets that account's password.
    let t = invitation(&app, &acme, "fresh@acme.example").await;
    let (s, v) = accept(&app, None, json!({"token": t, "password": "fresh person's passphrase"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(login(&app, "fresh@acme.example", "fresh person's passphrase", "10.1.1.2").await, 200);
}

async fn an_invitation_is_void_once_expired_used_or_its_org_or_inviter_is_gone(b: Backend) {
    let Some((app, clock)) = TestApp::spawn_with_clock(b).await else { return };
    let acme = app.bootstrap("acme", "ada@acme.example").await;
    // Expired.
    let t = invitation(&app, &acme, "late@acme.example").await;
    clock.fetch_add(8 * DAY, Ordering::SeqCst);
    assert_eq!(accept(&app, None, json!({"token": t})).await.0, StatusCode::NOT_FOUND);
    clock.store(0, Ordering::SeqCst);
    // The inviter has left the org: a second owner invites, then is removed.
    let t = invitation(&app, &acme, "bob@acme.example").await;
    let (s, v) = accept(&app, None, json!({"token": t})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let bob = v["api_key"].as_str().expect("bob").to_owned();
    let bob_id = v["user"]["id"].as_str().expect("bob id").to_owned();
    let (_, owners) = app.get("/v1/group?group_name=Owners", &acme).await;
    let owners = owners["objects"][0]["id"].as_str().expect("owners").to_owned();
    let (s, v) = app.patch(&format!("/v1/group/{owners}"), &acme, json!({"add_member_users": [bob_id]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let by_bob = invitation(&app, &bob, "carol@acme.example").await;
    let (s, v) = members_patch(&app, &acme, json!({"remove_users": {"ids": [bob_id]}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(accept(&app, None, json!({"token": by_bob})).await.0, StatusCode::NOT_FOUND);
    // The org is deleted.
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let t = invitation(&app, &zeta, "dan@zeta.example").await;
    let (_, o) = app.get("/v1/organization", &zeta).await;
    let zeta_id = o["objects"][0]["id"].as_str().expect("zeta").to_owned();
    let (s, v) = app.delete(&format!("/v1/organization/{zeta_id}"), &zeta).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(accept(&app, None, json!({"token": t})).await.0, StatusCode::NOT_FOUND);
    let (s, _, _) = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "dan@zeta.example", "password": "whatever it is"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "no account was made for dan");
}

async fn an_api_key_acts_only_in_the_org_it_was_made_for(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let acme = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let (_, p) = app.post("/v1/project", &acme, json!({"name": "acme-secret"})).await;
    let acme_project = p["id"].as_str().expect("project").to_owned();
    // pat joins both orgs (Engineers in each).
    let (s, v) = accept(&app, None, json!({"token": invitation(&app, &acme, "pat@acme.example").await})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let pat_acme = v["api_key"].as_str().expect("key").to_owned();
    let t = invitation(&app, &zeta, "pat@acme.example").await;
    let (s, v) = accept(&app, Some(&pat_acme), json!({"token": t})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let pat_zeta = v["api_key"].as_str().expect("zeta key").to_owned();
    // The attack: a key made for zeta, used on acme.
    let (s, v) = app.post("/v1/api_key", &pat_acme, json!({"name": "k", "org_name": "zeta"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "an acme key cannot mint a zeta key: {v}");
    let (s, v) = app.post("/v1/api_key", &pat_zeta, json!({"name": "k", "org_name": "zeta"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let zeta_key = v["key"].as_str().expect("key").to_owned();
    let zeta_key_id = v["id"].as_str().expect("id").to_owned();
    for path in [
        "/v1/project?org_name=acme".to_owned(),
        format!("/v1/project/{acme_project}"),
        format!("/v1/project_logs/{acme_project}/fetch"),
    ] {
        let (s, v) = app.get(&path, &zeta_key).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {v}");
    }
    let (s, _, v) = app.send(Method::GET, "/v1/project", Some(&zeta_key), None, &[("x-bt-org-name", "acme")]).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = app.post("/v1/project", &zeta_key, json!({"name": "x", "org_name": "acme"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (_, orgs) = app.get("/v1/organization", &zeta_key).await;
    assert_eq!(orgs["objects"].as_array().map(Vec::len), Some(1), "{orgs}");
    let (_, projects) = app.get("/v1/project", &zeta_key).await;
    assert!(ids(&projects).is_empty(), "zeta has no projects: {projects}");
    // Owners see and revoke every key of their org, and only those.
    let (_, acme_keys) = app.get("/v1/api_key", &acme).await;
    assert!(!ids(&acme_keys).contains(&zeta_key_id), "acme's owner does not see zeta's keys");
    let (_, zeta_keys) = app.get("/v1/api_key", &zeta).await;
    assert!(ids(&zeta_keys).contains(&zeta_key_id), "zeta's owner sees pat's zeta key: {zeta_keys}");
    assert_eq!(app.delete(&format!("/v1/api_key/{zeta_key_id}"), &acme).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/v1/api_key/{zeta_key_id}"), &zeta).await.0, StatusCode::OK);
    assert_eq!(app.get("/v1/project", &zeta_key).await.0, StatusCode::UNAUTHORIZED);
    // No key is minted while impersonating.
    let (s, v) = app
        .send(
            Method::POST,
            "/v1/api_key",
            Some(&acme),
            Some(json!({"name": "as-pat"})),
            &[("x-bt-impersonate-user", "pat@acme.example")],
        )
        .await
        .into_sv();
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
}

trait IntoSv {
    fn into_sv(self) -> (StatusCode, Value);
}
impl IntoSv for (StatusCode, reqwest::header::HeaderMap, Value) {
    fn into_sv(self) -> (StatusCode, Value) {
        (self.0, self.2)
    }
}

async fn inviting_an_existing_user_adds_nobody_and_reveals_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let acme = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let zed = me(&app, &zeta).await;
    let (s, existing) = members_patch(&app, &acme, json!({"invite_users": {"emails": ["zed@zeta.example"]}})).await;
    assert_eq!(s, StatusCode::OK, "{existing}");
    let (s, unknown) = members_patch(&app, &acme, json!({"invite_users": {"emails": ["nobody@zeta.example"]}})).await;
    assert_eq!(s, StatusCode::OK, "{unknown}");
    // The same shape either way: no one added, one invitation.
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        keys.sort();
        let inv: Vec<String> = v["invitations"][0].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        (keys, inv, v["added_users"].as_array().map(Vec::len), v["invitations"].as_array().map(Vec::len))
    };
    assert_eq!(shape(&existing), shape(&unknown));
    assert_eq!(existing["added_users"], json!([]));
    // Nothing learned about zed, and zed is not in acme.
    let (_, users) = app.get("/v1/user", &acme).await;
    assert!(!ids(&users).contains(&zed), "{users}");
    assert_eq!(app.get(&format!("/v1/user/{zed}"), &acme).await.0, StatusCode::NOT_FOUND);
    let (s, v) = app.get("/v1/project?org_name=acme", &zeta).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // By id: only people the inviter can already see; zed is not one of them.
    let (s, v) = members_patch(&app, &acme, json!({"invite_users": {"ids": [zed]}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v2) = members_patch(&app, &acme, json!({"invite_users": {"ids": [uuid::Uuid::new_v4()]}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v2}");
    assert_eq!(v["code"], v2["code"], "an unknown id and an unseen one answer alike");
    // zed joins acme only by accepting, signed in.
    let t = existing["invitations"][0]["token"].as_str().expect("token");
    assert_eq!(accept(&app, None, json!({"token": t})).await.0, StatusCode::UNAUTHORIZED);
    let (s, v) = accept(&app, Some(&zeta), json!({"token": t})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, users) = app.get("/v1/user", &acme).await;
    assert!(ids(&users).contains(&zed), "a member now: {users}");
}

async fn a_service_account_cannot_mint_keys_or_manage_its_own_tokens(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (_, token) = app.service_account(&owner, "bot", "Engineers", "t").await;
    let (s, v) = app.post("/v1/api_key", &token, json!({"name": "escape"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (_, list) = app.get("/v1/service_token", &owner).await;
    let own = list["objects"][0]["id"].as_str().expect("token id").to_owned();
    assert_eq!(app.get(&format!("/v1/service_token/{own}"), &token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/v1/service_token/{own}"), &token).await.0, StatusCode::NOT_FOUND);
    let (s, _, v) = app.send(Method::DELETE, "/v1/service_token", Some(&token), Some(json!({"id": own})), &[]).await;
    assert!(s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN, "{s}: {v}");
    // The token still works (nothing was deleted), and dies when the owner revokes it.
    assert_eq!(app.get("/v1/project", &token).await.0, StatusCode::OK);
    assert_eq!(app.delete(&format!("/v1/service_token/{own}"), &owner).await.0, StatusCode::OK);
    assert_eq!(app.get("/v1/project", &token).await.0, StatusCode::UNAUTHORIZED);
}

async fn credentialed_cors_is_only_for_configured_origins(b: Backend) {
    let Some(db) = Db::fresh(b) else { return };
    let config =
        castellan_server::config::Config { cors_origins: vec!["https://console.acme.example".into()], ..test_config() };
    let app = TestApp::spawn_on(db, config, system_clock()).await;
    let key = app.bootstrap("acme", "ada@acme.example").await;
    for (origin, credentials) in [("https://evil.example", false), ("https://console.acme.example", true)] {
        let (s, h, _) = app.send(Method::GET, "/v1/project", Some(&key), None, &[("origin", origin)]).await;
        assert_eq!(s, StatusCode::OK);
        let acac = h.get("access-control-allow-credentials").and_then(|v| v.to_str().ok());
        assert_eq!(acac == Some("true"), credentials, "{origin}: {h:?}");
        let pre = app
            .http
            .request(Method::OPTIONS, format!("{}/v1/project", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
            .await
            .expect("preflight");
        assert!(pre.status().is_success(), "{}", pre.status());
        let h = pre.headers();
        assert_eq!(h.get("access-control-allow-credentials").is_some(), credentials, "{origin}: {h:?}");
        let allowed = h.get("access-control-allow-headers").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(allowed.contains("authorization"), "{allowed}");
    }
}

async fn nothing_about_an_unreadable_object_leaks_through_bodies_or_statuses(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (_, p) = app.post("/v1/project", &owner, json!({"name": "code-name-falcon"})).await;
    let pid = p["id"].as_str().expect("p").to_owned();
    let (_, e) = app.post("/v1/experiment", &owner, json!({"name": "e1", "project_id": pid})).await;
    let eid = e["id"].as_str().expect("e").to_owned();
    // A member with no group, and read on one experiment only.
    let t = invitation_to_no_group(&app, &owner, "guest@acme.example").await;
    let (s, v) = accept(&app, None, json!({"token": t})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let guest = v["api_key"].as_str().expect("key").to_owned();
    let guest_id = v["user"]["id"].as_str().expect("id").to_owned();
    let grant = json!({"object_type": "experiment", "object_id": eid, "user_id": guest_id, "permission": "read"});
    assert_eq!(app.post("/v1/acl", &owner, grant).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/v1/project/{pid}"), &guest).await.0, StatusCode::NOT_FOUND);
    let (s, v) = app.get(&format!("/v1/experiment/{eid}/summarize"), &guest).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains("code-name-falcon"), "the project's name leaked: {v}");
    assert_eq!(v["project_name"], pid.as_str());
    // The owner still sees the name.
    let (_, v) = app.get(&format!("/v1/experiment/{eid}/summarize"), &owner).await;
    assert_eq!(v["project_name"], "code-name-falcon");
    // A group or role the guest cannot read answers like an unused name.
    let (s, _) = app.post("/v1/group", &owner, json!({"name": "secret-team"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.post("/v1/role", &owner, json!({"name": "secret-role"})).await;
    assert_eq!(s, StatusCode::OK);
    for (method, path, taken) in [
        (Method::PUT, "/v1/group", "secret-team"),
        (Method::POST, "/v1/group", "secret-team"),
        (Method::PUT, "/v1/role", "secret-role"),
        (Method::POST, "/v1/role", "secret-role"),
    ] {
        let (s1, _, v1) = app.send(method.clone(), path, Some(&guest), Some(json!({"name": taken})), &[]).await;
        let (s2, _, v2) = app.send(method.clone(), path, Some(&guest), Some(json!({"name": "unused-name"})), &[]).await;
        assert_eq!((s1, v1["code"].clone()), (s2, v2["code"].clone()), "{method} {path}: {v1} vs {v2}");
        assert_eq!(s1, StatusCode::FORBIDDEN);
    }
    // Someone who may create groups (but not read this one) learns only that the
    // name is taken.
    let (_, o) = app.get("/v1/organization", &owner).await;
    let org = o["objects"][0]["id"].as_str().expect("org").to_owned();
    let grant = json!({"object_type": "organization", "object_id": org, "user_id": guest_id,
                       "permission": "create", "restrict_object_type": "group"});
    let (s, v) = app.post("/v1/acl", &owner, grant).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _, v) = app.send(Method::PUT, "/v1/group", Some(&guest), Some(json!({"name": "secret-team"})), &[]).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("name_taken")), "{v}");
    assert!(v.get("id").is_none() && !v.to_string().contains("member_users"), "{v}");
}

async fn invitation_to_no_group(app: &TestApp, owner: &str, email: &str) -> String {
    let (s, out) = members_patch(app, owner, json!({"invite_users": {"emails": [email]}})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    out["invitations"][0]["token"].as_str().expect("token").to_owned()
}

async fn attachment_keys_belong_to_their_org(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let acme = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let org_id = |key: String| {
        let app = &app;
        async move { app.get("/v1/organization", &key).await.1["objects"][0]["id"].as_str().expect("org").to_owned() }
    };
    let (acme_id, zeta_id) = (org_id(acme.clone()).await, org_id(zeta.clone()).await);
    let body =
        |org: &str| json!({"key": "shared-key-1", "filename": "a.txt", "content_type": "text/plain", "org_id": org});
    let (s, v) = app.post("/attachment", &acme, body(&acme_id)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // zeta's owner probes acme's key: no clash, no hint.
    let (s, v) = app.post("/attachment", &zeta, body(&zeta_id)).await;
    assert_eq!(s, StatusCode::OK, "the same key in another org is another attachment: {v}");
    let (s, _) = app.get(&format!("/attachment?key=shared-key-1&org_id={acme_id}"), &zeta).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Each uploads its own bytes under its own URL.
    let (_, v) = app.post("/attachment", &acme, body(&acme_id)).await;
    let url = v["signedUrl"].as_str().expect("url").to_owned();
    let put = app.http.put(&url).header("content-type", "text/plain").body("acme bytes").send().await.expect("put");
    assert!(put.status().is_success(), "{}", put.status());
    let (_, v) = app.post("/attachment", &zeta, body(&zeta_id)).await;
    let url = v["signedUrl"].as_str().expect("url").to_owned();
    let put = app.http.put(&url).header("content-type", "text/plain").body("zeta bytes").send().await.expect("put");
    assert!(put.status().is_success(), "{}", put.status());
    for (key, org, want) in [(&acme, &acme_id, "acme bytes"), (&zeta, &zeta_id, "zeta bytes")] {
        let (s, info) = app.get(&format!("/attachment?key=shared-key-1&org_id={org}"), key).await;
        assert_eq!(s, StatusCode::OK, "{info}");
        let got = app.http.get(info["downloadUrl"].as_str().expect("url")).send().await.expect("get");
        assert_eq!(got.text().await.expect("text"), want);
    }
}

async fn wrong_passwords_elsewhere_do_not_lock_the_owner_out_of_its_own_address(b: Backend) {
    let Some(db) = Db::fresh(b) else { return };
    let config = castellan_server::config::Config { trust_forwarded_for: true, ..test_config() };
    let app = TestApp::spawn_on(db, config, system_clock()).await;
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let t = invitation(&app, &owner, "pat@acme.example").await;
    let (s, _) = accept(&app, None, json!({"token": t, "password": "pat's real passphrase"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(login(&app, "pat@acme.example", "pat's real passphrase", "198.51.100.7").await, 200);
    // Twelve wrong guesses from an attacker's address.
    let mut last = StatusCode::OK;
    for _ in 0..12 {
        last = login(&app, "pat@acme.example", "a wrong guess!!", "203.0.113.66").await;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "the attacker's address is slowed down");
    assert_eq!(
        login(&app, "pat@acme.example", "pat's real passphrase", "203.0.113.66").await,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits there"
    );
    // Guesses spread over many addresses slow down unknown addresses for the account.
    for i in 0..12 {
        login(&app, "pat@acme.example", "a wrong guess!!", &format!("203.0.113.{}", 100 + i)).await;
    }
    assert_eq!(login(&app, "pat@acme.example", "pat's real passphrase", "192.0.2.1").await, 429);
    // The owner's own address still works.
    assert_eq!(login(&app, "pat@acme.example", "pat's real passphrase", "198.51.100.7").await, 200);
}

async fn empty_uuid_parameters_and_missing_optional_bodies_are_answered_as_declared(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    for path in [
        "/v1/project?ids=",
        "/v1/experiment?project_id=",
        "/v1/acl?object_id=&object_type=project",
        "/v1/project?starting_after=",
    ] {
        let (s, v) = app.get(path, &owner).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(v["message"].as_str().unwrap_or("").contains("empty"), "{path}: {v}");
    }
    // Declared optional, and accepted without a body.
    let spec: Value =
        app.http.get(format!("{}/openapi.json", app.base)).send().await.expect("spec").json().await.expect("json");
    for (path, method) in [("/v1/organization/members", "patch"), ("/v1/acl/batch_update", "post")] {
        let required = &spec["paths"][path][method]["requestBody"]["required"];
        assert!(required.is_null() || *required == json!(false), "{path}: {required}");
        let (s, _, v) = app
            .send(Method::from_bytes(method.to_uppercase().as_bytes()).expect("m"), path, Some(&owner), None, &[])
            .await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
    }
}

#[tokio::test]
async fn the_sqlite_file_and_data_directory_are_private_to_the_server() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // No master key configured: the embedded default generates one into the data dir.
    let config = castellan_server::config::Config { data_dir: data.clone(), secret_key: None, ..test_config() };
    let store = castellan_server::serve::open_store(&config).await.expect("open");
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("castellan.sqlite")), 0o600);
    let (state, system) = castellan_server::serve::prepare(store, config, system_clock()).await.expect("state");
    castellan_server::seed::bootstrap(&state, &system, "acme", "ada@acme.example").await.expect("bootstrap");
    assert_eq!(mode(&data.join("secret.key")), 0o600, "the generated master key");
    for entry in std::fs::read_dir(&data).expect("dir") {
        let p = entry.expect("entry").path();
        assert_eq!(mode(&p) & 0o077, 0, "{} is readable by others", p.display());
    }
    state.close().await;
}

/// A replica that polls once an hour still refuses a revoked key, a removed member
/// and a revoked service token: on PostgreSQL the commit is announced to it
/// (`LISTEN/NOTIFY`); on SQLite each request looks at the revision row first.
async fn revocations_and_removals_reach_a_replica_that_never_polls(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let mut config = test_config();
    config.poll_interval = std::time::Duration::from_secs(3600);
    let replica = TestApp::spawn_on(app.db.clone(), config, system_clock()).await;
    let (_, k) = app.post("/v1/api_key", &owner, json!({"name": "tmp"})).await;
    let raw = k["key"].as_str().expect("raw").to_owned();
    let t = invitation(&app, &owner, "pat@acme.example").await;
    let (s, v) = accept(&app, None, json!({"token": t})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let pat = v["api_key"].as_str().expect("pat").to_owned();
    let pat_id = v["user"]["id"].as_str().expect("pat id").to_owned();
    // Both credentials authenticate on the replica (and are now in its cache).
    assert_eq!(replica.get("/v1/project", &raw).await.0, StatusCode::OK);
    assert_eq!(replica.get("/v1/project", &pat).await.0, StatusCode::OK);
    app.delete(&format!("/v1/api_key/{}", k["id"].as_str().expect("id")), &owner).await;
    let (s, v) = members_patch(&app, &owner, json!({"remove_users": {"ids": [pat_id]}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The replica's next requests are refused; on PostgreSQL allow the announcement
    // its flight (the script under scripts/ measures how long that takes).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut codes = (StatusCode::OK, StatusCode::OK);
    while std::time::Instant::now() < deadline {
        codes = (replica.get("/v1/project", &raw).await.0, replica.get("/v1/project", &pat).await.0);
        if codes == (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED) || b == Backend::Sqlite {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(codes, (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    replica.stop().await;
}

/// Replicas serve project records from memory; a change on one replica reaches the
/// others' copies as a revocation does.
async fn a_project_changed_on_one_replica_is_served_changed_by_another(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let mut config = test_config();
    config.poll_interval = std::time::Duration::from_secs(3600);
    let replica = TestApp::spawn_on(app.db.clone(), config, system_clock()).await;
    let (_, p) = app.post("/v1/project", &owner, json!({"name": "before"})).await;
    let path = format!("/v1/project/{}", p["id"].as_str().expect("id"));
    // The replica learns of the new project from PostgreSQL's announcement, which may
    // still be in flight on a loaded machine: wait for it (as below for the change).
    let first = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut seen = Value::Null;
    while std::time::Instant::now() < first {
        seen = replica.get(&path, &owner).await.1;
        if seen["name"] == "before" || b == Backend::Sqlite {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(seen["name"], "before", "{seen}");
    assert_eq!(replica.get(&path, &owner).await.1["name"], "before", "served again (from memory)");
    let (s, v) = app.patch(&path, &owner, json!({"name": "after", "description": "d"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut got = Value::Null;
    while std::time::Instant::now() < deadline {
        got = replica.get(&path, &owner).await.1;
        if got["name"] == "after" || b == Backend::Sqlite {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!((got["name"].as_str(), got["description"].as_str()), (Some("after"), Some("d")), "{got}");
    // Deleted on A: gone on B.
    assert_eq!(app.delete(&path, &owner).await.0, StatusCode::OK);
    let mut status = StatusCode::OK;
    while std::time::Instant::now() < deadline + std::time::Duration::from_secs(5) {
        status = replica.get(&path, &owner).await.0;
        if status == StatusCode::NOT_FOUND || b == Backend::Sqlite {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(status, StatusCode::NOT_FOUND);
    replica.stop().await;
}
