//! SCIM 2.0 provisioning (`/scim/v2`) and its tokens (`/v1/scim_token`): Okta- and
//! Entra-shaped request sequences, suspension taking effect at once (also on a second
//! replica), lockout protection, token scoping, every class of bad input, and the
//! `scim2-tester` validator (with the Python venv, like the official-client tests).

use crate::common;

use castellan_server::access::system_clock;
use common::{python, run_python, test_config, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    scim_tokens_are_owner_only_shown_once_audited_and_scoped,
    discovery_documents_are_served_as_scim_json,
    an_okta_shaped_sequence_provisions_suspends_restores_and_removes,
    an_entra_shaped_sequence_with_pascal_case_ops_and_string_booleans,
    suspension_refuses_credentials_at_once_also_on_a_second_replica,
    lockout_protection_holds_for_scim,
    filters_paging_and_attribute_selection,
    manual_groups_are_never_touched_by_scim,
    every_bad_input_gets_a_scim_error_and_changes_nothing,
);

mod validator {
    use super::*;
    on_both_backends!(
        #[ignore = "needs scim2-tester: scripts/test runs it"]
        scim2_tester_passes_every_check
    );
}

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM request as an identity provider sends it (`application/scim+json`).
async fn scim(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method, format!("{}/scim/v2{path}", app.base))
        .bearer_auth(token)
        .header("accept", "application/scim+json");
    if let Some(b) = body {
        req = req.header("content-type", "application/scim+json").body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let bytes = resp.bytes().await.expect("body");
    if status != StatusCode::NO_CONTENT {
        assert!(ct.starts_with("application/scim+json"), "{path}: content type `{ct}`");
    }
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(v["schemas"], json!([ERROR]), "{path}: {v}");
        assert_eq!(v["status"], json!(status.as_u16().to_string()), "{path}: {v}");
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{path}: {v}");
    }
    (status, v)
}

async fn scim_token(app: &TestApp, owner: &str, org: &str) -> String {
    let (s, t) = app.post("/v1/scim_token", owner, json!({"name": "okta", "org_name": org})).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    t["key"].as_str().expect("key").to_owned()
}

async fn invite(app: &TestApp, owner: &str, email: &str, group: Option<&str>) -> (String, String) {
    let mut inv = json!({"emails": [email]});
    if let Some(g) = group {
        inv["group_name"] = json!(g);
    }
    let (s, out) = app.patch("/v1/organization/members", owner, json!({"invite_users": inv})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let token = out["invitations"][0]["token"].as_str().expect("token").to_owned();
    let (s, _, acc) = app.send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": token})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    (acc["user"]["id"].as_str().expect("id").to_owned(), acc["api_key"].as_str().expect("key").to_owned())
}

fn new_user(user_name: &str) -> Value {
    json!({"schemas": [USER], "userName": user_name, "name": {"givenName": "Pat", "familyName": "Lee"},
        "emails": [{"value": user_name, "type": "work", "primary": true}], "active": true, "externalId": format!("ext-{user_name}")})
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

async fn audit_events(app: &TestApp, owner: &str, event: &str) -> Vec<Value> {
    let (s, v) = app.get(&format!("/v1/audit_log?event_type={event}&limit=100"), owner).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["objects"].as_array().cloned().unwrap_or_default()
}

async fn scim_tokens_are_owner_only_shown_once_audited_and_scoped(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let other = app.bootstrap("zeta", "zed@zeta.example").await;
    let (eng_id, eng) = invite(&app, &owner, "eng@acme.example", Some("Engineers")).await;
    // Owners only.
    let (s, v) = app.post("/v1/scim_token", &eng, json!({"name": "x"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v}");
    let (s, t) = app.post("/v1/scim_token", &owner, json!({"name": "okta"})).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let raw = t["key"].as_str().expect("key").to_owned();
    assert!(raw.starts_with("scim-") && raw.len() > 40, "{raw}");
    let id = t["id"].as_str().expect("id").to_owned();
    // Listed as previews, never the secret; the engineer sees none.
    let (_, list) = app.get("/v1/scim_token", &owner).await;
    assert_eq!(list["objects"].as_array().map(Vec::len), Some(1), "{list}");
    assert!(!list.to_string().contains(&raw));
    assert!(list["objects"][0]["preview_name"].as_str().is_some_and(|p| p.ends_with(&raw[raw.len() - 4..])));
    assert_eq!(app.get("/v1/scim_token", &eng).await.1["objects"], json!([]));
    assert_eq!(app.get(&format!("/v1/scim_token/{id}"), &eng).await.0, StatusCode::NOT_FOUND);
    // Not stored in the clear.
    assert!(!common::dump_database(&app.db).await.contains(&raw), "the raw SCIM token is in the database");
    // A SCIM token authorizes only /scim/v2; an API key never authorizes /scim/v2.
    assert_eq!(app.get("/v1/project", &raw).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/v1/scim_token", &raw).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scim(&app, Method::GET, "/Users", &owner, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scim(&app, Method::GET, "/Users", "scim-not-a-token", None).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = scim(&app, Method::GET, "/Users", &raw, None).await;
    assert_eq!(s, StatusCode::OK);
    // Another org's token sees nothing of this org.
    let zeta = scim_token(&app, &other, "zeta").await;
    let (_, users) = scim(&app, Method::GET, "/Users", &zeta, None).await;
    assert_eq!(users["totalResults"], 1, "only zeta's owner: {users}");
    assert!(!users.to_string().contains("acme.example"));
    for (m, path) in [
        (Method::GET, format!("/Users/{eng_id}")),
        (Method::PUT, format!("/Users/{eng_id}")),
        (Method::PATCH, format!("/Users/{eng_id}")),
        (Method::DELETE, format!("/Users/{eng_id}")),
    ] {
        let body = match m {
            Method::PUT => Some(new_user("eng@acme.example")),
            Method::PATCH => Some(patch(json!([{"op": "replace", "value": {"active": false}}]))),
            _ => None,
        };
        assert_eq!(scim(&app, m.clone(), &path, &zeta, body).await.0, StatusCode::NOT_FOUND, "{m} {path}");
    }
    assert_eq!(app.get("/v1/project", &eng).await.0, StatusCode::OK, "untouched by the other org's token");
    // Revoked: refused at once; audited.
    let (s, v) = app.delete(&format!("/v1/scim_token/{id}"), &owner).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(scim(&app, Method::GET, "/Users", &raw, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(audit_events(&app, &owner, "scim_token.created").await.len(), 1);
    assert_eq!(audit_events(&app, &owner, "scim_token.deleted").await.len(), 1);
    // A token stops working once its creator is no longer an owner.
    let (_, t2) = app.post("/v1/scim_token", &owner, json!({"name": "entra"})).await;
    let raw2 = t2["key"].as_str().expect("key").to_owned();
    assert_eq!(scim(&app, Method::GET, "/Users", &raw2, None).await.0, StatusCode::OK);
    let (_, owners) = app.get("/v1/group?group_name=Owners", &owner).await;
    let owners_id = owners["objects"][0]["id"].as_str().expect("owners").to_owned();
    let (s, v) = app.patch(&format!("/v1/group/{owners_id}"), &owner, json!({"add_member_users": [eng_id]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, t3) = app.post("/v1/scim_token", &eng, json!({"name": "eng-made"})).await;
    assert_eq!(s, StatusCode::OK, "{t3}");
    let raw3 = t3["key"].as_str().expect("key").to_owned();
    let (s, v) = app.patch(&format!("/v1/group/{owners_id}"), &owner, json!({"remove_member_users": [eng_id]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(scim(&app, Method::GET, "/Users", &raw3, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scim(&app, Method::GET, "/Users", &raw2, None).await.0, StatusCode::OK);
}

async fn discovery_documents_are_served_as_scim_json(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let token = scim_token(&app, &owner, "acme").await;
    let (s, spc) = scim(&app, Method::GET, "/ServiceProviderConfig", &token, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["filter"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    let (_, rts) = scim(&app, Method::GET, "/ResourceTypes", &token, None).await;
    let ids: Vec<&str> = rts["Resources"].as_array().expect("list").iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["User", "Group"]);
    let (s, user) = scim(&app, Method::GET, "/ResourceTypes/User", &token, None).await;
    assert_eq!((s, user["endpoint"].as_str()), (StatusCode::OK, Some("/Users")));
    assert_eq!(scim(&app, Method::GET, "/ResourceTypes/Nope", &token, None).await.0, StatusCode::NOT_FOUND);
    let (_, schemas) = scim(&app, Method::GET, "/Schemas", &token, None).await;
    assert!(schemas["totalResults"].as_u64().is_some_and(|n| n >= 2));
    let (s, us) = scim(&app, Method::GET, &format!("/Schemas/{USER}"), &token, None).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> =
        us["attributes"].as_array().expect("attrs").iter().filter_map(|a| a["name"].as_str()).collect();
    for n in ["userName", "name", "emails", "active", "groups"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert_eq!(scim(&app, Method::GET, &format!("/Schemas/{GROUP}"), &token, None).await.0, StatusCode::OK);
    assert_eq!(scim(&app, Method::GET, "/Schemas/urn:nope", &token, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(scim(&app, Method::GET, "/Nope", &token, None).await.0, StatusCode::NOT_FOUND);
}

async fn an_okta_shaped_sequence_provisions_suspends_restores_and_removes(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let token = scim_token(&app, &owner, "acme").await;
    // Okta looks the user up first.
    let q = "/Users?filter=userName%20eq%20%22pat%40acme.example%22&startIndex=1&count=100";
    let (s, found) = scim(&app, Method::GET, q, &token, None).await;
    assert_eq!((s, found["totalResults"].as_u64()), (StatusCode::OK, Some(0)), "{found}");
    let (s, u) = scim(&app, Method::POST, "/Users", &token, Some(new_user("pat@acme.example"))).await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let id = u["id"].as_str().expect("id").to_owned();
    assert_eq!(u["userName"], "pat@acme.example");
    assert_eq!(u["active"], true);
    assert_eq!(u["meta"]["resourceType"], "User");
    assert!(u["meta"]["location"].as_str().is_some_and(|l| l.ends_with(&format!("/scim/v2/Users/{id}"))));
    // Case-insensitive userName lookups find it.
    let q = "/Users?filter=userName%20eq%20%22PAT%40ACME.EXAMPLE%22";
    assert_eq!(scim(&app, Method::GET, q, &token, None).await.1["totalResults"], 1);
    // It is a member of the org (without an invitation).
    let (_, users) = app.get("/v1/user", &owner).await;
    assert!(users.to_string().contains("pat@acme.example"), "{users}");
    // Deactivate: path-less replace.
    let (s, v) = scim(
        &app,
        Method::PATCH,
        &format!("/Users/{id}"),
        &token,
        Some(patch(json!([{"op": "replace", "value": {"active": false}}]))),
    )
    .await;
    assert_eq!((s, v["active"].as_bool()), (StatusCode::OK, Some(false)), "{v}");
    assert_eq!(scim(&app, Method::GET, &format!("/Users/{id}"), &token, None).await.1["active"], false);
    // Reactivate with a full PUT, as Okta does on profile pushes.
    let mut put = new_user("pat@acme.example");
    put["name"]["givenName"] = json!("Patricia");
    let (s, v) = scim(&app, Method::PUT, &format!("/Users/{id}"), &token, Some(put)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["active"].as_bool(), v["name"]["givenName"].as_str()), (Some(true), Some("Patricia")));
    // Group push: create with a member, rename, delete.
    let (s, g) = scim(
        &app,
        Method::POST,
        "/Groups",
        &token,
        Some(json!({"schemas": [GROUP], "displayName": "okta-eng", "members": [{"value": id, "display": "pat"}]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let gid = g["id"].as_str().expect("gid").to_owned();
    assert_eq!(g["members"][0]["value"], json!(id));
    let (_, gg) = app.get(&format!("/v1/group/{gid}"), &owner).await;
    assert_eq!(gg["member_users"], json!([id]), "a real permission group: {gg}");
    let (s, v) = scim(
        &app,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        &token,
        Some(patch(json!([{"op": "replace", "value": {"id": gid, "displayName": "okta-engineering"}}]))),
    )
    .await;
    assert_eq!((s, v["displayName"].as_str()), (StatusCode::OK, Some("okta-engineering")), "{v}");
    let (_, u2) = scim(&app, Method::GET, &format!("/Users/{id}"), &token, None).await;
    assert_eq!(u2["groups"][0]["display"], "okta-engineering", "{u2}");
    assert_eq!(scim(&app, Method::DELETE, &format!("/Groups/{gid}"), &token, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/v1/group/{gid}"), &owner).await.0, StatusCode::NOT_FOUND);
    assert_eq!(scim(&app, Method::GET, &format!("/Groups/{gid}"), &token, None).await.0, StatusCode::NOT_FOUND);
    // Delete the user: the membership ends.
    assert_eq!(scim(&app, Method::DELETE, &format!("/Users/{id}"), &token, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(scim(&app, Method::GET, &format!("/Users/{id}"), &token, None).await.0, StatusCode::NOT_FOUND);
    assert!(!app.get("/v1/user", &owner).await.1.to_string().contains("pat@acme.example"));
    // Every change is audited with the SCIM token as actor.
    for event in [
        "member.added",
        "member.suspended",
        "member.restored",
        "member.removed",
        "group.created",
        "group.updated",
        "group.deleted",
    ] {
        let got = audit_events(&app, &owner, event).await;
        let scim_made: Vec<&Value> = got.iter().filter(|e| e["details"]["actor_type"] == "scim_token").collect();
        assert!(!scim_made.is_empty(), "{event} by the SCIM token: {got:?}");
        assert!(scim_made.iter().all(|e| e["actor_id"].is_null()), "{event}");
    }
    let (s, v) = app.get("/v1/audit_log/chain?org_name=acme", &owner).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn an_entra_shaped_sequence_with_pascal_case_ops_and_string_booleans(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let token = scim_token(&app, &owner, "acme").await;
    // Entra first queries by externalId / userName with a filter it builds itself.
    let (s, v) = scim(&app, Method::GET, "/Users?filter=externalId%20eq%20%22e-1%22", &token, None).await;
    assert_eq!((s, v["totalResults"].as_u64()), (StatusCode::OK, Some(0)));
    let body = json!({
        "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "e-1", "userName": "sam@acme.example", "active": "True", "displayName": "Sam Roe",
        "emails": [{"primary": "true", "type": "work", "value": "sam@acme.example"}],
        "name": {"formatted": "Sam Roe", "familyName": "Roe", "givenName": "Sam"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
    });
    let (s, u) = scim(&app, Method::POST, "/Users", &token, Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let id = u["id"].as_str().expect("id").to_owned();
    assert_eq!(u["active"], true);
    assert_eq!(u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"], "R&D");
    // PascalCase ops, string booleans, a value-filter path.
    let ops = patch(json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "sam.roe@acme.example"},
        {"op": "Replace", "path": "name.givenName", "value": "Samuel"},
        {"op": "Add", "path": "title", "value": "Engineer"},
        {"op": "Replace", "path": "active", "value": "False"},
    ]));
    let (s, v) = scim(&app, Method::PATCH, &format!("/Users/{id}"), &token, Some(ops)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["emails"][0]["value"], "sam.roe@acme.example");
    assert_eq!(v["name"]["givenName"], "Samuel");
    assert_eq!(v["title"], "Engineer");
    assert_eq!(v["active"], false);
    let ops = patch(json!([{"op": "Replace", "path": "active", "value": "True"}]));
    assert_eq!(scim(&app, Method::PATCH, &format!("/Users/{id}"), &token, Some(ops)).await.1["active"], true);
    // A second user for the group.
    let (_, u2) = scim(&app, Method::POST, "/Users", &token, Some(new_user("kim@acme.example"))).await;
    let id2 = u2["id"].as_str().expect("id2").to_owned();
    // Entra creates the group empty, then adds members with a PATCH.
    let (s, g) = scim(
        &app,
        Method::POST,
        "/Groups",
        &token,
        Some(json!({"schemas": [GROUP], "displayName": "entra-devs", "externalId": "g-1", "members": []})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let gid = g["id"].as_str().expect("gid").to_owned();
    let q = "/Groups?filter=displayName%20eq%20%22entra-devs%22&excludedAttributes=members";
    let (_, found) = scim(&app, Method::GET, q, &token, None).await;
    assert_eq!(found["totalResults"], 1);
    assert!(found["Resources"][0].get("members").is_none(), "{found}");
    let add = patch(json!([{"op": "Add", "path": "members", "value": [{"value": id}, {"value": id2}]}]));
    let (s, v) = scim(&app, Method::PATCH, &format!("/Groups/{gid}"), &token, Some(add)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["members"].as_array().map(Vec::len), Some(2), "{v}");
    // Remove by value filter, and by listing in `value`.
    let rm = patch(json!([{"op": "Remove", "path": format!("members[value eq \"{id}\"]")}]));
    let (_, v) = scim(&app, Method::PATCH, &format!("/Groups/{gid}"), &token, Some(rm)).await;
    assert_eq!(v["members"].as_array().map(Vec::len), Some(1), "{v}");
    let rm = patch(json!([{"op": "Remove", "path": "members", "value": [{"value": id2}]}]));
    let (_, v) = scim(&app, Method::PATCH, &format!("/Groups/{gid}"), &token, Some(rm)).await;
    assert_eq!(v["members"], json!([]), "{v}");
    let (_, gg) = app.get(&format!("/v1/group/{gid}"), &owner).await;
    assert_eq!(gg["member_users"], json!([]));
    // Rename through a path.
    let ren = patch(json!([{"op": "Replace", "path": "displayName", "value": "entra-developers"}]));
    let (_, v) = scim(&app, Method::PATCH, &format!("/Groups/{gid}"), &token, Some(ren)).await;
    assert_eq!(v["displayName"], "entra-developers");
    assert_eq!(app.get(&format!("/v1/group/{gid}"), &owner).await.1["name"], "entra-developers");
    // Entra deletes the group, then the users.
    assert_eq!(scim(&app, Method::DELETE, &format!("/Groups/{gid}"), &token, None).await.0, StatusCode::NO_CONTENT);
    for u in [&id, &id2] {
        assert_eq!(scim(&app, Method::DELETE, &format!("/Users/{u}"), &token, None).await.0, StatusCode::NO_CONTENT);
    }
    assert_eq!(scim(&app, Method::GET, "/Users", &token, None).await.1["totalResults"], 1, "only the owner");
}

async fn suspension_refuses_credentials_at_once_also_on_a_second_replica(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let mut config = test_config();
    config.poll_interval = std::time::Duration::from_secs(3600);
    let replica = TestApp::spawn_on(app.db.clone(), config, system_clock()).await;
    let token = scim_token(&app, &owner, "acme").await;
    let (pat_id, pat_key) = invite(&app, &owner, "pat@acme.example", Some("Engineers")).await;
    // The member also has a console session.
    let (s, _) =
        app.post("/api/auth/password", &pat_key, json!({"new_password": "correct horse battery staple 9"})).await;
    assert_eq!(s, StatusCode::OK, "set a password");
    let session = if s == StatusCode::OK {
        let resp = app
            .http
            .post(format!("{}/api/auth/login", app.base))
            .json(&json!({"email": "pat@acme.example", "password": "correct horse battery staple 9"}))
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), StatusCode::OK);
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("castellan_session="))
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
    } else {
        None
    };
    assert!(session.is_some(), "signed in");
    let with_session = |app: &TestApp, cookie: &str| {
        app.http.get(format!("{}/v1/project", app.base)).header("cookie", cookie.to_owned()).send()
    };
    assert_eq!(app.get("/v1/project", &pat_key).await.0, StatusCode::OK);
    assert_eq!(replica.get("/v1/project", &pat_key).await.0, StatusCode::OK, "cached on the replica");
    if let Some(c) = &session {
        assert_eq!(with_session(&app, c).await.expect("get").status(), StatusCode::OK);
    }
    // Okta's lookup by userName finds the invited member (userName = email).
    let q = "/Users?filter=userName%20eq%20%22pat%40acme.example%22";
    let (_, found) = scim(&app, Method::GET, q, &token, None).await;
    assert_eq!(found["Resources"][0]["id"], json!(pat_id), "{found}");
    let off = patch(json!([{"op": "replace", "value": {"active": false}}]));
    let (s, v) = scim(&app, Method::PATCH, &format!("/Users/{pat_id}"), &token, Some(off)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The very next request is refused, here and on the replica.
    assert_eq!(app.get("/v1/project", &pat_key).await.0, StatusCode::UNAUTHORIZED);
    if let Some(c) = &session {
        assert_eq!(with_session(&app, c).await.expect("get").status(), StatusCode::UNAUTHORIZED);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut code = StatusCode::OK;
    while std::time::Instant::now() < deadline {
        code = replica.get("/v1/project", &pat_key).await.0;
        if code == StatusCode::UNAUTHORIZED || b == Backend::Sqlite {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(code, StatusCode::UNAUTHORIZED, "the replica refuses the suspended member's key");
    // A replica started now (cold index) also knows.
    let cold = TestApp::spawn_on(app.db.clone(), test_config(), system_clock()).await;
    assert_eq!(cold.get("/v1/project", &pat_key).await.0, StatusCode::UNAUTHORIZED);
    // The member stays a member (and in their groups) while suspended.
    let (_, eng) = app.get("/v1/group?group_name=Engineers", &owner).await;
    assert!(eng["objects"][0]["member_users"].to_string().contains(&pat_id));
    // Restored: the same key works again, everywhere.
    let on = patch(json!([{"op": "replace", "path": "active", "value": true}]));
    let (s, v) = scim(&app, Method::PATCH, &format!("/Users/{pat_id}"), &token, Some(on)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(app.get("/v1/project", &pat_key).await.0, StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        code = replica.get("/v1/project", &pat_key).await.0;
        if code == StatusCode::OK || b == Backend::Sqlite {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(code, StatusCode::OK);
    if let Some(c) = &session {
        assert_eq!(with_session(&app, c).await.expect("get").status(), StatusCode::OK);
    }
    // Suspended again, then removed by hand: the suspension ends with the membership
    // (the index checks compare every replica's suspensions with the database).
    let off = patch(json!([{"op": "replace", "value": {"active": "False"}}]));
    assert_eq!(scim(&app, Method::PATCH, &format!("/Users/{pat_id}"), &token, Some(off)).await.0, StatusCode::OK);
    let (s, v) = app.patch("/v1/organization/members", &owner, json!({"remove_users": {"ids": [pat_id]}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(scim(&app, Method::GET, &format!("/Users/{pat_id}"), &token, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(audit_events(&app, &owner, "scim_user.deleted").await.len(), 1);
    cold.stop().await;
    replica.stop().await;
}

async fn lockout_protection_holds_for_scim(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let token = scim_token(&app, &owner, "acme").await;
    let (_, me) = app.post("/api/self/me", &owner, json!({})).await;
    let owner_id = me["id"].as_str().expect("id").to_owned();
    let off = patch(json!([{"op": "replace", "value": {"active": false}}]));
    let (s, v) = scim(&app, Method::PATCH, &format!("/Users/{owner_id}"), &token, Some(off.clone())).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["detail"].as_str().is_some_and(|d| d.contains("lockout") && d.contains("owner")), "{v}");
    let (s, v) = scim(&app, Method::DELETE, &format!("/Users/{owner_id}"), &token, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["detail"].as_str().is_some_and(|d| d.contains("lockout")), "{v}");
    // Nothing changed.
    assert_eq!(app.get("/v1/project", &owner).await.0, StatusCode::OK);
    assert_eq!(scim(&app, Method::GET, &format!("/Users/{owner_id}"), &token, None).await.1["active"], true);
    // With a second owner, the first may be suspended (the token's creator then loses
    // its authority, so a token made by the second owner carries on).
    let (second_id, second) = invite(&app, &owner, "bo@acme.example", Some("Owners")).await;
    let token2 = scim_token(&app, &second, "acme").await;
    let (s, v) = scim(&app, Method::PATCH, &format!("/Users/{owner_id}"), &token2, Some(off.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(app.get("/v1/project", &owner).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scim(&app, Method::GET, "/Users", &token, None).await.0, StatusCode::UNAUTHORIZED);
    // The second owner is now the last active one.
    let (s, v) = scim(&app, Method::PATCH, &format!("/Users/{second_id}"), &token2, Some(off)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(app.get("/v1/project", &second).await.0, StatusCode::OK);
}

async fn filters_paging_and_attribute_selection(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let token = scim_token(&app, &owner, "acme").await;
    for (n, t) in [("amy", "work"), ("bob", "home"), ("cat", "work")] {
        let mut u = new_user(&format!("{n}@acme.example"));
        u["emails"][0]["type"] = json!(t);
        u["displayName"] = json!(n.to_uppercase());
        let (s, v) = scim(&app, Method::POST, "/Users", &token, Some(u)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let names = |v: &Value| -> Vec<String> {
        v["Resources"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|r| r["userName"].as_str().map(str::to_owned))
            .collect()
    };
    let enc = |f: &str| f.replace(' ', "%20").replace('"', "%22").replace('[', "%5B").replace(']', "%5D");
    for (f, want) in [
        (r#"userName sw "a""#, vec!["ada@acme.example", "amy@acme.example"]),
        (r#"userName co "MY@""#, vec!["amy@acme.example"]),
        (r#"userName ew "t@acme.example""#, vec!["cat@acme.example"]),
        (
            r#"userName ne "ada@acme.example" and not (displayName eq "BOB")"#,
            vec!["amy@acme.example", "cat@acme.example"],
        ),
        (
            r#"(displayName eq "AMY" or displayName eq "CAT") and active eq true"#,
            vec!["amy@acme.example", "cat@acme.example"],
        ),
        (r#"emails[type eq "home"]"#, vec!["bob@acme.example"]),
        (r#"emails[type eq "work"].value sw "c""#, vec!["cat@acme.example"]),
        (r#"emails.value eq "BOB@acme.example""#, vec!["bob@acme.example"]),
        (r#"title pr"#, vec![]),
        (r#"externalId pr and userName gt "b""#, vec!["bob@acme.example", "cat@acme.example"]),
        (r#"userName le "amy@acme.example""#, vec!["ada@acme.example", "amy@acme.example"]),
        (
            r#"meta.created ge "2000-01-01T00:00:00Z""#,
            vec!["ada@acme.example", "amy@acme.example", "bob@acme.example", "cat@acme.example"],
        ),
    ] {
        let (s, v) = scim(&app, Method::GET, &format!("/Users?filter={}", enc(f)), &token, None).await;
        assert_eq!(s, StatusCode::OK, "{f}: {v}");
        assert_eq!(names(&v), want, "{f}");
        assert_eq!(v["totalResults"].as_u64(), Some(want.len() as u64), "{f}");
    }
    // Paging: 1-based startIndex, count.
    let (_, v) = scim(&app, Method::GET, "/Users?startIndex=2&count=2", &token, None).await;
    assert_eq!(
        (v["totalResults"].as_u64(), v["startIndex"].as_u64(), v["itemsPerPage"].as_u64()),
        (Some(4), Some(2), Some(2))
    );
    assert_eq!(names(&v), ["amy@acme.example", "bob@acme.example"]);
    let (_, v) = scim(&app, Method::GET, "/Users?count=0", &token, None).await;
    assert_eq!((v["totalResults"].as_u64(), v["Resources"].as_array().map(Vec::len)), (Some(4), Some(0)));
    // Attribute selection.
    let (_, v) = scim(&app, Method::GET, "/Users?attributes=userName,emails.value&count=1", &token, None).await;
    let r = &v["Resources"][0];
    assert!(r["id"].is_string() && r["userName"].is_string(), "{r}");
    assert!(r.get("name").is_none() && r.get("active").is_none(), "{r}");
    assert!(r["emails"][0]["value"].is_string() && r["emails"][0].get("type").is_none(), "{r}");
    let (_, v) = scim(&app, Method::GET, "/Users?excludedAttributes=emails,name&count=1", &token, None).await;
    let r = &v["Resources"][0];
    assert!(r.get("emails").is_none() && r.get("name").is_none() && r["userName"].is_string(), "{r}");
}

async fn manual_groups_are_never_touched_by_scim(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let token = scim_token(&app, &owner, "acme").await;
    let (s, manual) = app.post("/v1/group", &owner, json!({"name": "platform"})).await;
    assert_eq!(s, StatusCode::OK, "{manual}");
    let mid = manual["id"].as_str().expect("id").to_owned();
    let (_, eng) = app.get("/v1/group?group_name=Engineers", &owner).await;
    let eid = eng["objects"][0]["id"].as_str().expect("eng").to_owned();
    // Invisible to SCIM.
    let (_, v) = scim(&app, Method::GET, "/Groups", &token, None).await;
    assert_eq!(v["totalResults"], 0, "{v}");
    for id in [&mid, &eid] {
        assert_eq!(scim(&app, Method::GET, &format!("/Groups/{id}"), &token, None).await.0, StatusCode::NOT_FOUND);
        let p = patch(json!([{"op": "replace", "path": "displayName", "value": "x"}]));
        assert_eq!(scim(&app, Method::PATCH, &format!("/Groups/{id}"), &token, Some(p)).await.0, StatusCode::NOT_FOUND);
        assert_eq!(scim(&app, Method::DELETE, &format!("/Groups/{id}"), &token, None).await.0, StatusCode::NOT_FOUND);
    }
    // Not adopted by name.
    for name in ["platform", "Engineers", "Owners"] {
        let (s, v) =
            scim(&app, Method::POST, "/Groups", &token, Some(json!({"schemas": [GROUP], "displayName": name}))).await;
        assert_eq!((s, v["scimType"].as_str()), (StatusCode::CONFLICT, Some("uniqueness")), "{name}: {v}");
    }
    // A SCIM group cannot be renamed onto a manual one either.
    let (_, g) =
        scim(&app, Method::POST, "/Groups", &token, Some(json!({"schemas": [GROUP], "displayName": "scim-one"}))).await;
    let gid = g["id"].as_str().expect("gid").to_owned();
    let p = patch(json!([{"op": "replace", "path": "displayName", "value": "platform"}]));
    let (s, v) = scim(&app, Method::PATCH, &format!("/Groups/{gid}"), &token, Some(p)).await;
    assert_eq!((s, v["scimType"].as_str()), (StatusCode::CONFLICT, Some("uniqueness")), "{v}");
    let (_, still) = app.get(&format!("/v1/group/{mid}"), &owner).await;
    assert_eq!(still["name"], "platform");
    let (s, v) =
        scim(&app, Method::POST, "/Groups", &token, Some(json!({"schemas": [GROUP], "displayName": "scim-one"}))).await;
    assert_eq!((s, v["scimType"].as_str()), (StatusCode::CONFLICT, Some("uniqueness")), "{v}");
}

async fn every_bad_input_gets_a_scim_error_and_changes_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let token = scim_token(&app, &owner, "acme").await;
    let (_, u) = scim(&app, Method::POST, "/Users", &token, Some(new_user("pat@acme.example"))).await;
    let id = u["id"].as_str().expect("id").to_owned();
    let (_, g) = scim(
        &app,
        Method::POST,
        "/Groups",
        &token,
        Some(json!({"schemas": [GROUP], "displayName": "team", "members": [{"value": id}]})),
    )
    .await;
    let gid = g["id"].as_str().expect("gid").to_owned();
    let (_, user_before) = scim(&app, Method::GET, &format!("/Users/{id}"), &token, None).await;
    let (_, group_before) = scim(&app, Method::GET, &format!("/Groups/{gid}"), &token, None).await;
    let (_, audit_before) = app.get("/v1/audit_log?limit=1", &owner).await;
    // Malformed filters.
    for f in [
        "userName%20eq",
        "userName%20zz%20%22a%22",
        "(userName%20eq%20%22a%22",
        "userName%20eq%20%22a",
        "active%20gt%20true",
        "%3D%3D",
        "emails%5Btype%20eq%20%22work%22",
    ] {
        let (s, v) = scim(&app, Method::GET, &format!("/Users?filter={f}"), &token, None).await;
        assert_eq!((s, v["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidFilter")), "{f}: {v}");
        let (s, v) = scim(&app, Method::GET, &format!("/Groups?filter={f}"), &token, None).await;
        assert_eq!((s, v["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidFilter")), "{f}: {v}");
    }
    let bad_count = scim(&app, Method::GET, "/Users?count=lots", &token, None).await;
    assert_eq!((bad_count.0, bad_count.1["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidValue")));
    let user_path = format!("/Users/{id}");
    let group_path = format!("/Groups/{gid}");
    let cases: Vec<(&str, Value, &str)> = vec![
        (&user_path, patch(json!([{"op": "replace", "path": "nope", "value": 1}])), "invalidPath"),
        (&user_path, patch(json!([{"op": "replace", "path": "name.nope", "value": "x"}])), "invalidPath"),
        (&user_path, patch(json!([{"op": "replace", "path": "emails[type eq", "value": "x"}])), "invalidPath"),
        (&user_path, patch(json!([{"op": "replace", "path": "userName[type eq \"x\"]", "value": "x"}])), "invalidPath"),
        (&user_path, patch(json!([{"op": "replace", "path": "emails", "value": "x@y.z"}])), "invalidValue"),
        (
            &user_path,
            patch(
                json!([{"op": "replace", "path": "emails[type eq \"home\" or primary eq false].value", "value": "x@y.z"}]),
            ),
            "noTarget",
        ),
        (
            &user_path,
            patch(json!([{"op": "replace", "path": "emails[type sw \"ho\"].value", "value": "x@y.z"}])),
            "noTarget",
        ),
        (&user_path, patch(json!([{"op": "remove"}])), "noTarget"),
        (&user_path, patch(json!([{"op": "replace", "path": "active", "value": "maybe"}])), "invalidValue"),
        (&user_path, patch(json!([{"op": "replace", "path": "userName", "value": ""}])), "invalidValue"),
        (&user_path, patch(json!([{"op": "replace", "path": "userName", "value": 7}])), "invalidValue"),
        (&user_path, patch(json!([{"op": "replace", "path": "id", "value": "x"}])), "mutability"),
        (&user_path, patch(json!([{"op": "replace", "value": "not an object"}])), "invalidValue"),
        (&user_path, patch(json!([{"op": "move", "path": "title", "value": "x"}])), "invalidSyntax"),
        (&user_path, json!({"schemas": [PATCH], "Operations": []}), "invalidSyntax"),
        (
            &user_path,
            json!({"schemas": ["urn:nope"], "Operations": [{"op": "add", "path": "title", "value": "x"}]}),
            "invalidSyntax",
        ),
        // The first operation is fine; the second fails; neither is applied.
        (
            &user_path,
            patch(
                json!([{"op": "replace", "path": "title", "value": "changed"}, {"op": "replace", "path": "active", "value": "maybe"}]),
            ),
            "invalidValue",
        ),
        (
            &group_path,
            patch(
                json!([{"op": "add", "path": "members", "value": [{"value": "00000000-0000-0000-0000-000000000000"}]}]),
            ),
            "invalidValue",
        ),
        (
            &group_path,
            patch(json!([{"op": "add", "path": "members", "value": [{"value": "not-a-uuid"}]}])),
            "invalidValue",
        ),
        (&group_path, patch(json!([{"op": "replace", "path": "displayName", "value": ""}])), "invalidValue"),
        (&group_path, patch(json!([{"op": "replace", "path": "members[value eq", "value": []}])), "invalidPath"),
        (&group_path, patch(json!([{"op": "replace", "path": "userName", "value": "x"}])), "invalidPath"),
    ];
    for (path, body, want) in cases {
        let (s, v) = scim(&app, Method::PATCH, path, &token, Some(body.clone())).await;
        assert_eq!((s, v["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some(want)), "{body}: {v}");
    }
    // Bodies that are not JSON, or not objects.
    for path in ["/Users", "/Groups"] {
        let resp = app
            .http
            .post(format!("{}/scim/v2{path}", app.base))
            .bearer_auth(&token)
            .header("content-type", "application/scim+json")
            .body("{not json")
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["scimType"], "invalidSyntax", "{v}");
        let (s, v) = scim(&app, Method::POST, path, &token, Some(json!([1]))).await;
        assert_eq!((s, v["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidSyntax")), "{v}");
    }
    // Bad values on create and replace.
    for body in [
        json!({"schemas": [USER]}),
        json!({"schemas": [USER], "userName": "  "}),
        json!({"schemas": [USER], "userName": "x@acme.example", "active": "perhaps"}),
        json!({"schemas": [USER], "userName": "x@acme.example", "emails": "x@acme.example"}),
        json!({"schemas": [USER], "userName": "x@acme.example", "emails": [{"type": "work"}]}),
        json!({"schemas": [USER], "userName": "x@acme.example", "name": "X"}),
    ] {
        let (s, v) = scim(&app, Method::POST, "/Users", &token, Some(body.clone())).await;
        assert_eq!((s, v["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidValue")), "{body}: {v}");
    }
    let (s, v) = scim(
        &app,
        Method::PUT,
        &user_path,
        &token,
        Some(json!({"schemas": [USER], "id": "other", "userName": "pat@acme.example"})),
    )
    .await;
    assert_eq!((s, v["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("mutability")), "{v}");
    for body in
        [json!({"schemas": [GROUP]}), json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": "nobody"}]})]
    {
        let (s, v) = scim(&app, Method::POST, "/Groups", &token, Some(body.clone())).await;
        assert_eq!((s, v["scimType"].as_str()), (StatusCode::BAD_REQUEST, Some("invalidValue")), "{body}: {v}");
    }
    // Uniqueness: userName (case-insensitive), an existing account's email, a group name.
    let (s, v) = scim(&app, Method::POST, "/Users", &token, Some(new_user("PAT@acme.example"))).await;
    assert_eq!((s, v["scimType"].as_str()), (StatusCode::CONFLICT, Some("uniqueness")), "{v}");
    let (s, v) = scim(&app, Method::POST, "/Users", &token, Some(new_user("ADA@acme.example"))).await;
    assert_eq!((s, v["scimType"].as_str()), (StatusCode::CONFLICT, Some("uniqueness")), "{v}");
    let other = app.bootstrap("zeta", "zed@zeta.example").await;
    let _ = other;
    let (s, v) = scim(&app, Method::POST, "/Users", &token, Some(new_user("zed@zeta.example"))).await;
    assert_eq!(
        (s, v["scimType"].as_str()),
        (StatusCode::CONFLICT, Some("uniqueness")),
        "an existing account is not taken over: {v}"
    );
    let (_, u2) = scim(&app, Method::POST, "/Users", &token, Some(new_user("kim@acme.example"))).await;
    let rename = patch(json!([{"op": "replace", "path": "userName", "value": "Pat@Acme.example"}]));
    let (s, v) =
        scim(&app, Method::PATCH, &format!("/Users/{}", u2["id"].as_str().expect("id")), &token, Some(rename)).await;
    assert_eq!((s, v["scimType"].as_str()), (StatusCode::CONFLICT, Some("uniqueness")), "{v}");
    // Unknown ids.
    for path in
        ["/Users/00000000-0000-0000-0000-000000000000", "/Users/nope", "/Groups/00000000-0000-0000-0000-000000000000"]
    {
        assert_eq!(scim(&app, Method::GET, path, &token, None).await.0, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(scim(&app, Method::DELETE, path, &token, None).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    // Nothing changed by any of it (beyond kim's creation).
    assert_eq!(scim(&app, Method::GET, &user_path, &token, None).await.1, user_before);
    assert_eq!(scim(&app, Method::GET, &group_path, &token, None).await.1, group_before);
    let (_, audit_after) = app.get("/v1/audit_log?limit=100", &owner).await;
    let newer: Vec<&Value> = audit_after["objects"]
        .as_array()
        .expect("log")
        .iter()
        .take_while(|e| e["id"] != audit_before["objects"][0]["id"])
        .collect();
    assert!(
        newer
            .iter()
            .all(|e| e["resource_name"] == "kim@acme.example" || e["after"].to_string().contains("kim@acme.example")),
        "only kim's creation was recorded: {newer:?}"
    );
}

/// `scim2-tester`'s `check_server` with every tag, against a real server; no check
/// may fail.
async fn scim2_tester_passes_every_check(b: Backend) {
    let python = python().expect("python");
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let token = scim_token(&app, &owner, "acme").await;
    let script = r#"
import os, sys
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server, Status
client = SyncSCIMClient(Client(base_url=os.environ["SCIM_URL"], headers={"Authorization": "Bearer " + os.environ["SCIM_TOKEN"]}))
client.discover()
results = check_server(client, include_tags={"discovery", "service-provider-config", "resource-types", "schemas", "crud:create", "crud:read", "crud:read:attributes", "crud:update", "crud:delete", "patch:add", "patch:remove", "patch:replace", "misc"})
bad = 0
for r in results:
    print(r.status.name, r.title, (r.reason or "")[:300])
    if r.status in (Status.ERROR, Status.CRITICAL):
        bad += 1
print("TOTAL", len(results), "FAILED", bad)
sys.exit(1 if bad or not results else 0)
"#;
    let url = format!("{}/scim/v2", app.base);
    let out = run_python(&python, script, &[("SCIM_URL", &url), ("SCIM_TOKEN", &token)]);
    assert!(out.contains("FAILED 0"), "{out}");
}
