//! Environment variables (`/v1/env_var`) over real HTTP on SQLite and PostgreSQL:
//! values sealed at rest and never returned, who may read and change them, and
//! that they go with what they are set on.

use crate::common;

use castellan_server::secrets::Binding;
use common::{test_config, Backend, Db, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    an_env_var_value_is_sealed_at_rest_and_never_returned,
    creating_replacing_and_renaming_keep_the_value_and_its_history_honest,
    env_vars_are_read_with_what_they_are_set_on_and_changed_with_update_there,
    env_vars_go_away_with_their_project_function_or_org,
    bad_env_var_input_is_refused_and_changes_nothing,
    without_a_master_key_no_value_is_stored
);

const VALUE: &str = "sk-proj-0123456789abcdefXYZW";

struct Fixture {
    app: TestApp,
    owner: String,
    org: String,
    project: String,
}

async fn fixture(b: Backend) -> Option<Fixture> {
    let app = TestApp::spawn(b).await?;
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let org = app.get("/v1/organization", &owner).await.1["objects"][0]["id"].as_str().expect("org").to_owned();
    let (s, p) = app.post("/v1/project", &owner, json!({"name": "p"})).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let project = p["id"].as_str().expect("id").to_owned();
    Some(Fixture { app, owner, org, project })
}

async fn put(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = app.send(Method::PUT, "/v1/env_var", Some(key), Some(body), &[]).await;
    (s, v)
}

/// A new member of `owner`'s org in `group`; returns their API key.
async fn member(app: &TestApp, owner: &str, email: &str, group: &str) -> String {
    let invite = json!({"invite_users": {"emails": [email], "group_name": group}});
    let (s, _, out) = app.send(Method::PATCH, "/v1/organization/members", Some(owner), Some(invite), &[]).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let token = out["invitations"][0]["token"].as_str().expect("token");
    let (s, _, acc) = app.send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": token})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    acc["api_key"].as_str().expect("key").to_owned()
}

/// The stored row of an env var, read from the database itself.
async fn stored(app: &TestApp, id: &str) -> castellan_store::AdminRecord {
    let store = app.db.open().await;
    let mut tx = store.read().await.expect("read");
    let id = uuid::Uuid::parse_str(id).expect("uuid");
    let a = tx.get_admin(id).await.expect("get").expect("stored");
    drop(tx);
    store.close().await;
    a
}

fn opened(app: &TestApp, a: &castellan_store::AdminRecord) -> String {
    let binding = Binding::admin(a);
    app.state.sealer().expect("sealer").open(binding, a.secret.as_deref().expect("sealed")).expect("opens")
}

async fn an_env_var_value_is_sealed_at_rest_and_never_returned(b: Backend) {
    let Some(f) = fixture(b).await else { return };
    let (s, v) = f
        .app
        .post(
            "/v1/env_var",
            &f.owner,
            json!({"object_type": "project", "object_id": f.project, "name": "OPENAI_API_KEY", "value": VALUE}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["preview_secret"], "sk-...XYZW");
    assert_eq!((v["object_type"].as_str(), v["secret_category"].as_str()), (Some("project"), Some("env_var")));
    assert!(v["secret_updated_at"].is_string() && v["secret_updated_by_user_id"].is_string(), "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    // No answer, list or audit record carries the value.
    let (_, one) = f.app.get(&format!("/v1/env_var/{id}"), &f.owner).await;
    let (_, all) = f.app.get("/v1/env_var", &f.owner).await;
    let (_, audit) = f.app.get("/v1/audit_log?org_name=acme", &f.owner).await;
    for body in [&v, &one, &all, &audit] {
        assert!(!body.to_string().contains("0123456789abcdef"), "the value leaked: {body}");
    }
    assert!(audit.to_string().contains("env_var.created"), "{audit}");
    // In the database: sealed, bound to this row, and it opens to the value.
    let a = stored(&f.app, &id).await;
    let sealed = a.secret.clone().expect("sealed");
    assert!(!sealed.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()), "stored in the clear");
    assert!(!a.data.to_string().contains("0123456789abcdef"), "{}", a.data);
    assert_eq!(opened(&f.app, &a), VALUE);
    f.app.stop().await;
}

async fn creating_replacing_and_renaming_keep_the_value_and_its_history_honest(b: Backend) {
    let Some(f) = fixture(b).await else { return };
    let body = json!({"object_type": "organization", "object_id": f.org, "name": "TOKEN", "value": VALUE,
                      "metadata": {"team": "ml"}, "secret_type": "openai"});
    let (s, first) = f.app.post("/v1/env_var", &f.owner, body).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let id = first["id"].as_str().expect("id").to_owned();
    // A second create of that name returns it unchanged, marked as found.
    let (s, h, again) = f
        .app
        .send(
            Method::POST,
            "/v1/env_var",
            Some(&f.owner),
            Some(json!({"object_type": "organization", "object_id": f.org, "name": "TOKEN", "value": "other"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h.get("x-bt-found-existing").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(again, first);
    assert_eq!(opened(&f.app, &stored(&f.app, &id).await), VALUE, "a create that found it changed nothing");
    // PUT without a value keeps it and replaces the rest.
    let (s, replaced) = put(
        &f.app,
        &f.owner,
        json!({"object_type": "organization", "object_id": f.org, "name": "TOKEN", "metadata": {"team": "infra"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["id"].as_str(), Some(id.as_str()));
    assert_eq!(replaced["metadata"], json!({"team": "infra"}));
    assert_eq!(replaced["secret_type"], Value::Null);
    assert_eq!(replaced["preview_secret"], first["preview_secret"]);
    assert_eq!(replaced["secret_updated_at"], first["secret_updated_at"]);
    // The same value again is no change to the value.
    let (_, same) = put(
        &f.app,
        &f.owner,
        json!({"object_type": "organization", "object_id": f.org, "name": "TOKEN", "value": VALUE, "metadata": {"team": "infra"}}),
    )
    .await;
    assert_eq!(same["secret_updated_at"], first["secret_updated_at"], "{same}");
    // A rename keeps the value: it is sealed again under the new name.
    let (s, renamed) = f.app.patch(&format!("/v1/env_var/{id}"), &f.owner, json!({"name": "API_TOKEN"})).await;
    assert_eq!(s, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "API_TOKEN");
    let a = stored(&f.app, &id).await;
    assert_eq!(opened(&f.app, &a), VALUE);
    // A new value is a change of the value.
    let (s, changed) =
        f.app.patch(&format!("/v1/env_var/{id}"), &f.owner, json!({"name": "API_TOKEN", "value": "hunter2"})).await;
    assert_eq!(s, StatusCode::OK, "{changed}");
    assert_eq!(changed["preview_secret"], "********");
    assert_ne!(changed["secret_updated_at"], first["secret_updated_at"]);
    assert_eq!(opened(&f.app, &stored(&f.app, &id).await), "hunter2");
    // A rename onto a taken name is refused.
    f.app.post("/v1/env_var", &f.owner, json!({"object_type": "organization", "object_id": f.org, "name": "B"})).await;
    let (s, v) = f.app.patch(&format!("/v1/env_var/{id}"), &f.owner, json!({"name": "B"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("name_taken")), "{v}");
    // Lists filter by scope and name.
    let (_, by_name) = f.app.get("/v1/env_var?env_var_name=API_TOKEN", &f.owner).await;
    assert_eq!(by_name["objects"].as_array().map(Vec::len), Some(1), "{by_name}");
    let (_, on_project) =
        f.app.get(&format!("/v1/env_var?object_type=project&object_id={}", f.project), &f.owner).await;
    assert_eq!(on_project["objects"], json!([]));
    let (_, on_org) = f.app.get(&format!("/v1/env_var?object_type=organization&object_id={}", f.org), &f.owner).await;
    assert_eq!(on_org["objects"].as_array().map(Vec::len), Some(2), "{on_org}");
    let (s, gone) = f.app.delete(&format!("/v1/env_var/{id}"), &f.owner).await;
    assert_eq!((s, gone["name"].as_str()), (StatusCode::OK, Some("API_TOKEN")));
    assert_eq!(f.app.get(&format!("/v1/env_var/{id}"), &f.owner).await.0, StatusCode::NOT_FOUND);
    let (_, audit) = f.app.get("/v1/audit_log?org_name=acme", &f.owner).await;
    for e in ["env_var.created", "env_var.updated", "env_var.deleted"] {
        assert!(audit.to_string().contains(e), "{e} missing from the audit log");
    }
    f.app.stop().await;
}

async fn env_vars_are_read_with_what_they_are_set_on_and_changed_with_update_there(b: Backend) {
    let Some(f) = fixture(b).await else { return };
    let app = &f.app;
    let viewer = member(app, &f.owner, "vera@acme.example", "Viewers").await;
    let engineer = member(app, &f.owner, "eli@acme.example", "Engineers").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let on = |t: &str, id: &str, name: &str| json!({"object_type": t, "object_id": id, "name": name, "value": VALUE});
    let (_, pv) = app.post("/v1/env_var", &f.owner, on("project", &f.project, "P")).await;
    let (_, ov) = app.post("/v1/env_var", &f.owner, on("organization", &f.org, "O")).await;
    let (pid, oid) = (pv["id"].as_str().expect("id"), ov["id"].as_str().expect("id"));
    // A viewer reads both, changes neither, makes none.
    assert_eq!(app.get(&format!("/v1/env_var/{pid}"), &viewer).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/v1/env_var/{oid}"), &viewer).await.0, StatusCode::OK);
    assert_eq!(app.get("/v1/env_var", &viewer).await.1["objects"].as_array().map(Vec::len), Some(2));
    let (s, v) = app.patch(&format!("/v1/env_var/{pid}"), &viewer, json!({"name": "X", "value": "stolen"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    assert_eq!(app.delete(&format!("/v1/env_var/{pid}"), &viewer).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.post("/v1/env_var", &viewer, on("project", &f.project, "V")).await.0, StatusCode::FORBIDDEN);
    // An engineer manages the project's, not the org's.
    assert_eq!(app.post("/v1/env_var", &engineer, on("project", &f.project, "E")).await.0, StatusCode::OK);
    assert_eq!(app.post("/v1/env_var", &engineer, on("organization", &f.org, "E")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/v1/env_var/{oid}"), &engineer).await.0, StatusCode::FORBIDDEN);
    // Another org sees nothing: not found, absent from lists, and no way to make one.
    for id in [pid, oid] {
        let (s, v) = app.get(&format!("/v1/env_var/{id}"), &zeta).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(!v.to_string().contains("\"P\"") && !v.to_string().contains(&f.project), "{v}");
        assert_eq!(app.patch(&format!("/v1/env_var/{id}"), &zeta, json!({"name": "Z"})).await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.delete(&format!("/v1/env_var/{id}"), &zeta).await.0, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.get("/v1/env_var", &zeta).await.1["objects"], json!([]));
    assert_eq!(app.post("/v1/env_var", &zeta, on("project", &f.project, "Z")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.post("/v1/env_var", &zeta, on("organization", &f.org, "Z")).await.0, StatusCode::NOT_FOUND);
    // An id that never existed answers exactly as one the caller cannot see.
    let (s, v) = app.get(&format!("/v1/env_var/{}", uuid::Uuid::now_v7()), &zeta).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (s, _, _) = app.send(Method::GET, "/v1/env_var", None, None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Nothing the refused callers tried changed the variable.
    assert_eq!(opened(app, &stored(app, pid).await), VALUE);
    f.app.stop().await;
}

async fn env_vars_go_away_with_their_project_function_or_org(b: Backend) {
    let Some(f) = fixture(b).await else { return };
    let app = &f.app;
    let (s, func) = app
        .post(
            "/v1/function",
            &f.owner,
            json!({"project_id": f.project, "name": "tool", "slug": "tool",
                   "function_data": {"type": "code", "data": {"type": "inline", "code": "x"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{func}");
    let fid = func["id"].as_str().expect("id").to_owned();
    let on = |t: &str, id: &str| json!({"object_type": t, "object_id": id, "name": "K", "value": VALUE});
    let mut ids = Vec::new();
    for (t, id) in [("function", fid.as_str()), ("project", f.project.as_str()), ("organization", f.org.as_str())] {
        let (s, v) = app.post("/v1/env_var", &f.owner, on(t, id)).await;
        assert_eq!(s, StatusCode::OK, "{t}: {v}");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    // An env var on a function is refused on an id that is not a function.
    let (s, _) = app.post("/v1/env_var", &f.owner, on("function", &f.project)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/v1/project/{}", f.project), &f.owner).await.0, StatusCode::OK);
    let store = app.db.open().await;
    let mut tx = store.read().await.expect("read");
    for (i, id) in ids.iter().enumerate() {
        let row = tx.get_admin(uuid::Uuid::parse_str(id).expect("uuid")).await.expect("get");
        assert_eq!(row.is_some(), i == 2, "env var {i} after the project's deletion");
    }
    drop(tx);
    store.close().await;
    let (_, audit) = app.get("/v1/audit_log?org_name=acme&event_type=env_var.deleted", &f.owner).await;
    assert_eq!(audit["objects"].as_array().map(Vec::len), Some(2), "{audit}");
    f.app.stop().await;
}

async fn bad_env_var_input_is_refused_and_changes_nothing(b: Backend) {
    let Some(f) = fixture(b).await else { return };
    let app = &f.app;
    let base = json!({"object_type": "project", "object_id": f.project, "name": "K", "value": "v"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, code) in [
        (with("object_type", json!("experiment")), "invalid_body"),
        (with("object_id", json!("nope")), "invalid_body"),
        (with("name", json!("  ")), "invalid_body"),
        (with("metadata", json!([1])), "invalid_body"),
        (with("secret_category", json!("password")), "invalid_body"),
        (with("value", json!("x".repeat(64 * 1024 + 1))), "invalid_body"),
        (json!({"name": "K"}), "invalid_body"),
    ] {
        let (s, v) = app.post("/v1/env_var", &f.owner, body.clone()).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (s, v) = app.get("/v1/env_var?object_type=experiment", &f.owner).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_parameter")), "{v}");
    let (s, v) = app.get("/v1/env_var/not-a-uuid", &f.owner).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_parameter")), "{v}");
    let (s, ok) = app.post("/v1/env_var", &f.owner, base.clone()).await;
    assert_eq!(s, StatusCode::OK);
    let id = ok["id"].as_str().expect("id");
    let (s, v) = app.patch(&format!("/v1/env_var/{id}"), &f.owner, json!({"value": "w"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")), "PATCH needs `name`: {v}");
    assert_eq!(app.get("/v1/env_var", &f.owner).await.1["objects"].as_array().map(Vec::len), Some(1));
    assert_eq!(opened(app, &stored(app, id).await), "v");
    f.app.stop().await;
}

async fn without_a_master_key_no_value_is_stored(b: Backend) {
    let Some(db) = Db::fresh(b) else { return };
    // A PostgreSQL deployment that names no master key has none.
    let config = castellan_server::config::Config {
        secret_key: None,
        database_url: Some("postgres://replicas-share-a-key.invalid/db".into()),
        ..test_config()
    };
    let app = TestApp::spawn_on(db, config, castellan_server::access::system_clock()).await;
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let org = app.get("/v1/organization", &owner).await.1["objects"][0]["id"].as_str().expect("org").to_owned();
    let (s, v) = app
        .post(
            "/v1/env_var",
            &owner,
            json!({"object_type": "organization", "object_id": org, "name": "K", "value": "v"}),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("no_master_key")), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| m.contains("secret_key")), "{v}");
    assert_eq!(app.get("/v1/env_var", &owner).await.1["objects"], json!([]), "nothing was stored");
    // A variable without a value needs no key.
    let (s, v) =
        app.post("/v1/env_var", &owner, json!({"object_type": "organization", "object_id": org, "name": "FLAG"})).await;
    assert_eq!((s, v["preview_secret"].clone()), (StatusCode::OK, Value::Null), "{v}");
    app.stop().await;
}
