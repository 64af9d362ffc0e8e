//! The foundation over real HTTP, on SQLite and PostgreSQL: organizations, users,
//! projects, API keys, the error model, revisions and replicas.

use crate::common;

use common::{ids, test_config, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    the_root_and_the_openapi_document_need_no_credential,
    a_missing_bad_or_malformed_credential_is_401,
    projects_are_created_once_by_name_and_round_trip,
    lists_page_newest_first_both_ways_and_filter,
    nothing_of_another_org_is_visible_or_writable,
    a_key_is_shown_once_works_and_stops_working_when_revoked,
    bad_input_gets_a_clear_error_and_changes_nothing,
    a_caller_in_two_orgs_must_choose_one,
    writes_carry_increasing_revisions_and_replicas_serve_them,
    org_settings_update_and_validation,
    a_replica_starts_cleanly_after_an_org_with_groups_and_grants_was_deleted
);

async fn the_root_and_the_openapi_document_need_no_credential(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (s, _, v) = app.send(Method::GET, "/v1", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["message"], "Hello, World!");
    let (s, _, v) = app.send(Method::GET, "/openapi.json", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["openapi"].as_str().is_some_and(|x| x.starts_with("3.")), "{v}");
    assert!(v["paths"]["/v1/project"].is_object());
    let (s, h, _) = app.send(Method::OPTIONS, "/v1/project", None, None, &[("origin", "https://x.example")]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["access-control-allow-origin"], "https://x.example");
    // The routes that are not in the document (spellings clients still use) answer.
    let (s, _, v) = app.send(Method::GET, "/v1/", None, None, &[]).await;
    assert_eq!((s, v["message"].as_str()), (StatusCode::OK, Some("Hello, World!")));
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (s, _, v) = app.send(Method::GET, "/api/self/me", Some(&key), None, &[]).await;
    assert_eq!((s, v["email"].as_str()), (StatusCode::OK, Some("ada@example.com")), "{v}");
    let (s, _, v) = app.send(Method::POST, "/v1/acl/batch-update", Some(&key), Some(json!({})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn a_missing_bad_or_malformed_credential_is_401(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    app.bootstrap("acme", "ada@example.com").await;
    for (headers, what) in [
        (vec![], "missing"),
        (vec![("authorization", "Bearer sk-not-a-key")], "unknown"),
        (vec![("authorization", "Basic abc")], "wrong scheme"),
        (vec![("authorization", "Bearer ")], "empty"),
    ] {
        let (s, _, v) = app.send(Method::GET, "/v1/project", None, None, &headers).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(v["code"], "unauthorized", "{what}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

async fn projects_are_created_once_by_name_and_round_trip(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, _, org) = app.send(Method::GET, "/v1/organization", Some(&key), None, &[]).await;
    let org_id = org["objects"][0]["id"].as_str().expect("org id").to_owned();
    let (s, h, p) = app
        .send(Method::POST, "/v1/project", Some(&key), Some(json!({"name": "alpha", "description": "d"})), &[])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!h.contains_key("x-bt-found-existing"));
    assert_eq!(p["name"], "alpha");
    assert_eq!(p["org_id"], org_id.as_str());
    assert_eq!(p["description"], "d");
    assert!(p["created"].as_str().is_some_and(|c| c.ends_with('Z')));
    let id = p["id"].as_str().expect("id").to_owned();
    let (s, h, again) = app
        .send(Method::POST, "/v1/project", Some(&key), Some(json!({"name": "alpha", "description": "other"})), &[])
        .await;
    assert_eq!(s, StatusCode::OK, "a name clash returns the existing project with 200");
    assert_eq!(h["x-bt-found-existing"], "true");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["description"], "d", "the existing project is returned unmodified");
    let (s, got) = app.get(&format!("/v1/project/{id}"), &key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, p);
    let (s, patched) = app
        .patch(&format!("/v1/project/{id}"), &key, json!({"name": "beta", "settings": {"comparison_key": "input"}}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(patched["name"], "beta");
    assert_eq!(patched["description"], "d");
    assert_eq!(patched["settings"]["comparison_key"], "input");
    let (s, deleted) = app.delete(&format!("/v1/project/{id}"), &key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(deleted["id"], id.as_str());
    let (s, v) = app.get(&format!("/v1/project/{id}"), &key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["code"], "not_found");
    let (s, _) = app.delete(&format!("/v1/project/{id}"), &key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, p2) = app.post("/v1/project", &key, json!({"name": "beta"})).await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(p2["id"], id.as_str(), "a deleted project's name is free again");
}

async fn lists_page_newest_first_both_ways_and_filter(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let mut made = Vec::new();
    for i in 0..7 {
        let (_, p) = app.post("/v1/project", &key, json!({"name": format!("p{i}")})).await;
        made.push(p["id"].as_str().expect("id").to_owned());
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    let (_, all) = app.get("/v1/project", &key).await;
    assert_eq!(ids(&all), newest_first);
    let (_, page1) = app.get("/v1/project?limit=3", &key).await;
    assert_eq!(ids(&page1), newest_first[0..3]);
    let (_, page2) = app.get(&format!("/v1/project?limit=3&starting_after={}", newest_first[2]), &key).await;
    assert_eq!(ids(&page2), newest_first[3..6]);
    let (_, back) = app.get(&format!("/v1/project?limit=2&ending_before={}", newest_first[3]), &key).await;
    assert_eq!(ids(&back), newest_first[1..3]);
    let (_, by_ids) = app.get(&format!("/v1/project?ids={},{}&ids={}", made[0], made[1], made[4]), &key).await;
    assert_eq!(ids(&by_ids), vec![made[4].clone(), made[1].clone(), made[0].clone()]);
    let (_, by_name) = app.get("/v1/project?project_name=p3", &key).await;
    assert_eq!(ids(&by_name), vec![made[3].clone()]);
    let (_, none) = app.get("/v1/project?project_name=nope", &key).await;
    assert_eq!(none, json!({"objects": []}));
    let (s, v) = app.get("/v1/project?limit=1001", &key).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_parameter")));
    let (s, _) = app.get(&format!("/v1/project?starting_after={}&ending_before={}", made[0], made[1]), &key).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = app.get(&format!("/v1/project?starting_after={}", uuid::Uuid::now_v7()), &key).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

async fn nothing_of_another_org_is_visible_or_writable(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let a = app.bootstrap("acme", "ada@acme.example").await;
    let z = app.bootstrap("zeta", "zed@zeta.example").await;
    let (_, pa) = app.post("/v1/project", &a, json!({"name": "secret"})).await;
    let pid = pa["id"].as_str().expect("id").to_owned();
    let (_, orgs_a) = app.get("/v1/organization", &a).await;
    let org_a = orgs_a["objects"][0]["id"].as_str().expect("org").to_owned();
    // Lists: nothing of acme.
    let (_, l) = app.get("/v1/project", &z).await;
    assert!(ids(&l).is_empty());
    let (_, l) = app.get(&format!("/v1/project?ids={pid}"), &z).await;
    assert!(ids(&l).is_empty());
    let (_, l) = app.get("/v1/organization", &z).await;
    assert_eq!(l["objects"].as_array().map(Vec::len), Some(1));
    assert_ne!(l["objects"][0]["id"], org_a.as_str());
    let (_, users) = app.get("/v1/user", &z).await;
    assert!(!users.to_string().contains("ada@acme.example"));
    // By id, by name, by cursor: 404s that say nothing.
    for path in [format!("/v1/project/{pid}"), format!("/v1/organization/{org_a}")] {
        let (s, v) = app.get(&path, &z).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        assert!(!v.to_string().contains("secret"));
    }
    let (s, _) = app.get("/v1/project?org_name=acme", &z).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get(&format!("/v1/project?starting_after={pid}"), &z).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a foreign cursor is refused like an unknown one");
    let (s, _) = app.patch(&format!("/v1/project/{pid}"), &z, json!({"name": "pwned"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.delete(&format!("/v1/project/{pid}"), &z).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.patch(&format!("/v1/organization/{org_a}"), &z, json!({"name": "pwned"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.post("/v1/project", &z, json!({"name": "x", "org_name": "acme"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = app.send(Method::GET, "/v1/project", Some(&z), None, &[("x-bt-org-name", "acme")]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // And acme's project is untouched.
    let (s, p) = app.get(&format!("/v1/project/{pid}"), &a).await;
    assert_eq!((s, p["name"].as_str()), (StatusCode::OK, Some("secret")));
    // Keys: zeta cannot see or revoke acme's keys.
    let (_, keys_a) = app.get("/v1/api_key", &a).await;
    let kid = keys_a["objects"][0]["id"].as_str().expect("key").to_owned();
    let (s, _) = app.get(&format!("/v1/api_key/{kid}"), &z).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.delete(&format!("/v1/api_key/{kid}"), &z).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, keys_z) = app.get("/v1/api_key", &z).await;
    assert!(!ids(&keys_z).contains(&kid));
}

async fn a_key_is_shown_once_works_and_stops_working_when_revoked(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@example.com").await;
    let (s, created) = app.post("/v1/api_key", &owner, json!({"name": "ci"})).await;
    assert_eq!(s, StatusCode::OK);
    let raw = created["key"].as_str().expect("raw key").to_owned();
    assert!(raw.starts_with("sk-") && raw.len() >= 46);
    let preview = created["preview_name"].as_str().expect("preview");
    assert!(preview.ends_with(&raw[raw.len() - 4..]) && !preview.contains(&raw[3..30]));
    assert_eq!(created["user_email"], "ada@example.com");
    let kid = created["id"].as_str().expect("id").to_owned();
    let (s, _) = app.get("/v1/project", &raw).await;
    assert_eq!(s, StatusCode::OK, "the new key works");
    let (_, listed) = app.get("/v1/api_key", &owner).await;
    assert_eq!(listed["objects"].as_array().map(Vec::len), Some(2));
    assert!(!listed.to_string().contains(&raw), "the raw key is never listed");
    let (_, one) = app.get(&format!("/v1/api_key/{kid}"), &owner).await;
    assert!(one.get("key").is_none() && !one.to_string().contains(&raw));
    let (_, named) = app.get("/v1/api_key?api_key_name=ci", &owner).await;
    assert_eq!(ids(&named), vec![kid.clone()]);
    // last_used is recorded (asynchronously, at most once a minute).
    let mut used = Value::Null;
    for _ in 0..50 {
        let (_, k) = app.get(&format!("/v1/api_key/{kid}"), &owner).await;
        used = k["last_used"].clone();
        if used.is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(used.is_string(), "last_used was set");
    let (s, _) = app.delete(&format!("/v1/api_key/{kid}"), &owner).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app.get("/v1/project", &raw).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "revoked at once");
    let (s, _) = app.get(&format!("/v1/api_key/{kid}"), &owner).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn bad_input_gets_a_clear_error_and_changes_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let code = |v: &Value| v["code"].as_str().map(str::to_owned);
    let (s, v) = app.raw(Method::POST, "/v1/project", &key, b"{\"name\": ".to_vec()).await;
    assert_eq!((s, code(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_json")));
    let (s, v) = app.post("/v1/project", &key, json!({"name": 42})).await;
    assert_eq!((s, code(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    assert!(v["message"].as_str().is_some_and(|m| m.contains("string")), "{v}");
    let (s, v) = app.post("/v1/project", &key, json!({})).await;
    assert_eq!((s, code(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    assert!(v["message"].as_str().is_some_and(|m| m.contains("name")), "{v}");
    let (s, v) = app.post("/v1/project", &key, json!({"name": "   "})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = app.post("/v1/project", &key, json!({"name": "x".repeat(300)})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = app.raw(Method::POST, "/v1/project", &key, vec![b' '; 300 * 1024]).await;
    assert_eq!((s, code(&v).as_deref()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    let (s, v) = app.get("/v1/project/not-a-uuid", &key).await;
    assert_eq!((s, code(&v).as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_parameter")));
    assert!(v["message"].as_str().is_some_and(|m| m.contains("`not-a-uuid`")));
    let (s, v) = app.get("/v1/nothing-here", &key).await;
    assert_eq!((s, code(&v).as_deref()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (s, _, v) =
        app.send(Method::PUT, "/v1/project/00000000-0000-0000-0000-000000000000", Some(&key), None, &[]).await;
    assert_eq!((s, code(&v).as_deref()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
    let (s, v) = app.raw(Method::POST, "/v1/project", &key, vec![0xff, 0xfe, 0x00]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // None of that created anything.
    let (_, l) = app.get("/v1/project", &key).await;
    assert!(ids(&l).is_empty());
}

async fn a_caller_in_two_orgs_must_choose_one(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (s, org2) = app.post("/v1/organization", &key, json!({"name": "second"})).await;
    assert_eq!(s, StatusCode::OK, "{org2}");
    // The acme key acts in acme only; creating an org with it hands back a key for it.
    let second_key = org2["api_key"].as_str().expect("a key for the new org").to_owned();
    let (s, v) = app.post("/v1/organization", &key, json!({"name": "SECOND"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("name_taken")), "org names ignore case");
    let (s, p) = app.post("/v1/project", &second_key, json!({"name": "p"})).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["org_id"], org2["id"]);
    let (s, v) = app.post("/v1/project", &key, json!({"name": "x", "org_name": "second"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the acme key does not reach the second org: {v}");
    // A console session spans every org of its user, and must choose one.
    let (s, v) = app.post("/api/auth/password", &key, json!({"new_password": "ada's long passphrase"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, h, v) = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "ada@example.com", "password": "ada's long passphrase"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cookie = h
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with("castellan_session="))
        .and_then(|c| c.split(';').next())
        .expect("session cookie")
        .to_owned();
    let csrf = v["csrf_token"].as_str().expect("csrf").to_owned();
    let session = |method: Method, path: &str, body: Option<Value>, org: Option<&str>| {
        let mut headers = vec![("cookie", cookie.clone()), ("x-csrf-token", csrf.clone())];
        if let Some(o) = org {
            headers.push(("x-bt-org-name", o.to_owned()));
        }
        let app = &app;
        let path = path.to_owned();
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (s, _, v) = app.send(method, &path, None, body, &h).await;
            (s, v)
        }
    };
    let (s, v) = session(Method::POST, "/v1/project", Some(json!({"name": "p"})), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().is_some_and(|m| m.contains("org_name")), "{v}");
    let (s, p) = session(Method::POST, "/v1/project", Some(json!({"name": "q"})), Some("acme")).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_ne!(p["org_id"], org2["id"]);
    let (_, both) = session(Method::GET, "/v1/project", None, None).await;
    assert_eq!(ids(&both).len(), 2, "lists span every org of the caller");
    let (_, one) = session(Method::GET, "/v1/project?org_name=second", None, None).await;
    assert_eq!(ids(&one).len(), 1);
    let (_, orgs) = session(Method::GET, "/v1/organization", None, None).await;
    assert_eq!(orgs["objects"][0]["name"], "second", "newest first");
    let (_, me) = session(Method::POST, "/api/self/me", Some(json!({})), None).await;
    assert_eq!(me["organizations"].as_array().map(Vec::len), Some(2));
    // A key's login names its one org.
    let (_, login) = app.post("/api/apikey/login", &key, json!({})).await;
    assert_eq!(login["org_info"].as_array().map(Vec::len), Some(1));
    assert_eq!(login["org_info"][0]["name"], "acme");
    assert!(login["org_info"][0]["api_url"].as_str().is_some_and(|u| u.starts_with("http://")));
    assert!(login["org_info"][0]["git_metadata"].is_null());
}

async fn writes_carry_increasing_revisions_and_replicas_serve_them(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let rev = |h: &reqwest::header::HeaderMap| -> u64 {
        h["x-castellan-revision"].to_str().ok().and_then(|s| s.parse().ok()).expect("revision header")
    };
    let (_, h1, _) = app.send(Method::POST, "/v1/project", Some(&key), Some(json!({"name": "a"})), &[]).await;
    let (_, h2, p) = app.send(Method::POST, "/v1/project", Some(&key), Some(json!({"name": "b"})), &[]).await;
    assert!(rev(&h2) > rev(&h1));
    // A second replica on the same database, polling slowly, still serves the write
    // to a request that asks for its revision.
    let mut slow = test_config();
    slow.poll_interval = std::time::Duration::from_secs(3600);
    slow.min_revision_wait = std::time::Duration::from_millis(300);
    let replica = TestApp::spawn_on(app.db.clone(), slow, castellan_server::access::system_clock()).await;
    let (_, h3, p3) = app.send(Method::POST, "/v1/project", Some(&key), Some(json!({"name": "c"})), &[]).await;
    let want = rev(&h3).to_string();
    let (s, h, got) = replica
        .send(
            Method::GET,
            &format!("/v1/project/{}", p3["id"].as_str().expect("id")),
            Some(&key),
            None,
            &[("x-castellan-min-revision", &want)],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert!(rev(&h) >= rev(&h3));
    assert_eq!(got["name"], "c");
    let (s, _, v) =
        replica.send(Method::GET, "/v1/project", Some(&key), None, &[("x-castellan-min-revision", "999999")]).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("revision_not_reached")));
    let (s, _, _) =
        replica.send(Method::GET, "/v1/project", Some(&key), None, &[("x-castellan-min-revision", "soon")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // A key revoked on one replica fails on the other: on SQLite at once (each
    // request looks at the revision), on PostgreSQL as soon as the commit's
    // announcement arrives (under a millisecond unloaded: scripts/revocation-latency.sh).
    let (_, k) = app.post("/v1/api_key", &key, json!({"name": "tmp"})).await;
    let raw = k["key"].as_str().expect("raw").to_owned();
    assert_eq!(replica.get("/v1/project", &raw).await.0, StatusCode::OK);
    app.delete(&format!("/v1/api_key/{}", k["id"].as_str().expect("id")), &key).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut status = replica.get("/v1/project", &raw).await.0;
    while status != StatusCode::UNAUTHORIZED && b == Backend::Postgres && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        status = replica.get("/v1/project", &raw).await.0;
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let _ = p;
    replica.stop().await;
}

async fn org_settings_update_and_validation(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, orgs) = app.get("/v1/organization", &key).await;
    let id = orgs["objects"][0]["id"].as_str().expect("id").to_owned();
    let (s, o) = app
        .patch(
            &format!("/v1/organization/{id}"),
            &key,
            json!({"api_url": "https://api.acme.example", "image_rendering_mode": "blocked"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["api_url"], "https://api.acme.example");
    assert_eq!(o["image_rendering_mode"], "blocked");
    assert_eq!(o["name"], "acme");
    let (s, v) = app.patch(&format!("/v1/organization/{id}"), &key, json!({"image_rendering_mode": "sometimes"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().is_some_and(|m| m.contains("`sometimes`")));
    let (s, _) = app.patch(&format!("/v1/organization/{id}"), &key, json!({"api_url": "ftp://x"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, o) = app.get(&format!("/v1/organization/{id}"), &key).await;
    assert_eq!(o["image_rendering_mode"], "blocked", "refused patches changed nothing");
    let (_, login) = app.post("/api/apikey/login", &key, json!({})).await;
    assert_eq!(login["org_info"][0]["api_url"], "https://api.acme.example");
}

async fn a_replica_starts_cleanly_after_an_org_with_groups_and_grants_was_deleted(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, doomed) = app.post("/v1/organization", &key, json!({"name": "doomed"})).await;
    let doomed_id = doomed["id"].as_str().expect("id").to_owned();
    let doomed_key = doomed["api_key"].as_str().expect("key").to_owned();
    let h = [("x-bt-org-name", "doomed")];
    let (s, _, g) = app
        .send(Method::POST, "/v1/group", Some(&doomed_key), Some(json!({"name": "team", "org_name": "doomed"})), &h)
        .await;
    assert_eq!(s, StatusCode::OK, "{g}");
    let (s, _, _) = app
        .send(Method::POST, "/v1/project", Some(&doomed_key), Some(json!({"name": "p", "org_name": "doomed"})), &h)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.delete(&format!("/v1/organization/{doomed_id}"), &doomed_key).await;
    assert_eq!(s, StatusCode::OK);
    // A new replica builds its index from the database alone.
    let replica = TestApp::spawn_on(app.db.clone(), test_config(), castellan_server::access::system_clock()).await;
    let (s, orgs) = replica.get("/v1/organization", &key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&orgs).len(), 1, "{orgs}");
    let (s, p) = replica.post("/v1/project", &key, json!({"name": "still-works", "org_name": "acme"})).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    replica.stop().await;
}
