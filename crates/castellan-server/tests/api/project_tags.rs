//! Project tags (`/v1/project_tag`) over real HTTP on SQLite and PostgreSQL: a
//! project setting read with the project and changed with `update` on it.

use crate::common;

use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(
    tags_are_unique_per_project_and_round_trip,
    tags_are_read_with_their_project_and_changed_with_update_on_it
);

async fn tags_are_unique_per_project_and_round_trip(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = app.post("/v1/project", &owner, json!({"name": "p"})).await.1["id"].as_str().expect("p").to_owned();
    let q = app.post("/v1/project", &owner, json!({"name": "q"})).await.1["id"].as_str().expect("q").to_owned();
    let (s, t) =
        app.post("/v1/project_tag", &owner, json!({"project_id": p, "name": "good", "color": "#00ff00"})).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(
        (t["name"].as_str(), t["color"].as_str(), t["project_id"].as_str()),
        (Some("good"), Some("#00ff00"), Some(p.as_str()))
    );
    assert!(t["user_id"].is_string() && t["created"].is_string(), "{t}");
    let id = t["id"].as_str().expect("id").to_owned();
    let (_, h, again) = app
        .send(Method::POST, "/v1/project_tag", Some(&owner), Some(json!({"project_id": p, "name": "good"})), &[])
        .await;
    assert_eq!((again["id"].as_str(), h.get("x-bt-found-existing").is_some()), (Some(id.as_str()), true));
    let (s, _) = app.post("/v1/project_tag", &owner, json!({"project_id": q, "name": "good"})).await;
    assert_eq!(s, StatusCode::OK, "the same name in another project");
    let (_, _, replaced) = app
        .send(
            Method::PUT,
            "/v1/project_tag",
            Some(&owner),
            Some(json!({"project_id": p, "name": "good", "description": "d"})),
            &[],
        )
        .await;
    assert_eq!((replaced["id"].as_str(), replaced["description"].as_str()), (Some(id.as_str()), Some("d")));
    assert_eq!(replaced["color"], serde_json::Value::Null, "PUT replaces the colour too");
    let (s, v) = app.patch(&format!("/v1/project_tag/{id}"), &owner, json!({"name": "great", "color": "red"})).await;
    assert_eq!((s, v["name"].as_str(), v["description"].as_str()), (StatusCode::OK, Some("great"), Some("d")));
    let (_, by_project) = app.get(&format!("/v1/project_tag?project_id={p}"), &owner).await;
    assert_eq!(by_project["objects"].as_array().map(Vec::len), Some(1), "{by_project}");
    let (_, by_name) = app.get("/v1/project_tag?project_name=q", &owner).await;
    assert_eq!(by_name["objects"][0]["project_id"].as_str(), Some(q.as_str()), "{by_name}");
    let (_, none) = app.get("/v1/project_tag?project_name=missing", &owner).await;
    assert_eq!(none["objects"], json!([]));
    let (s, v) = app.post("/v1/project_tag", &owner, json!({"project_id": p, "name": " "})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    let (s, v) =
        app.post("/v1/project_tag", &owner, json!({"project_id": p, "name": "x", "color": "c".repeat(65)})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    let (s, v) = app.patch(&format!("/v1/project_tag/{id}"), &owner, json!({"name": "good"})).await;
    assert_eq!(s, StatusCode::OK, "renaming back: {v}");
    app.post("/v1/project_tag", &owner, json!({"project_id": p, "name": "bad"})).await;
    let (s, v) = app.patch(&format!("/v1/project_tag/{id}"), &owner, json!({"name": "bad"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("name_taken")), "{v}");
    let (s, _) = app.delete(&format!("/v1/project_tag/{id}"), &owner).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.get(&format!("/v1/project_tag/{id}"), &owner).await.0, StatusCode::NOT_FOUND);
    // Deleting the project takes its tags; the audit log has every step.
    assert_eq!(app.delete(&format!("/v1/project/{q}"), &owner).await.0, StatusCode::OK);
    let (_, left) = app.get("/v1/project_tag", &owner).await;
    assert_eq!(left["objects"].as_array().map(Vec::len), Some(1), "only p's `bad` is left: {left}");
    let (_, audit) = app.get("/v1/audit_log?org_name=acme&event_type=project_tag.", &owner).await;
    let events: Vec<&str> =
        audit["objects"].as_array().expect("list").iter().filter_map(|e| e["event_type"].as_str()).collect();
    for e in ["project_tag.created", "project_tag.updated", "project_tag.deleted"] {
        assert!(events.contains(&e), "{e} missing: {events:?}");
    }
    app.stop().await;
}

async fn tags_are_read_with_their_project_and_changed_with_update_on_it(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let p = app.post("/v1/project", &owner, json!({"name": "p"})).await.1["id"].as_str().expect("p").to_owned();
    let (_, t) = app.post("/v1/project_tag", &owner, json!({"project_id": p, "name": "secret-label"})).await;
    let id = t["id"].as_str().expect("id").to_owned();
    for (method, path) in
        [(Method::GET, format!("/v1/project_tag/{id}")), (Method::DELETE, format!("/v1/project_tag/{id}"))]
    {
        let (s, _, v) = app.send(method, &path, Some(&zeta), None, &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(!v.to_string().contains("secret-label"), "{v}");
    }
    let (s, _) = app.patch(&format!("/v1/project_tag/{id}"), &zeta, json!({"name": "mine"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        app.post("/v1/project_tag", &zeta, json!({"project_id": p, "name": "x"})).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/v1/project_tag", &zeta).await.1["objects"], json!([]));
    assert_eq!(app.get(&format!("/v1/project_tag/{id}"), &owner).await.1["name"], "secret-label", "unchanged");
    app.stop().await;
}
