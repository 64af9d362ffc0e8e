//! The app routes the TypeScript SDK calls (`/api/*/register`, …) and Braintrust's
//! older create-or-replace, over HTTP without the SDK: what each answers, beyond the
//! flows `ts_sdk` drives and the statuses `matrix` checks.

use crate::common;
use crate::support;

use castellan_core::{ObjectType, Permission};
use common::{Backend, TestApp};
use serde_json::{json, Value};
use support::{grant, member};

on_both_backends!(
    registering_names_or_makes_the_project_and_finds_the_base_experiment,
    object_info_names_what_the_caller_can_read_and_nothing_else,
    a_replace_rewrites_the_named_object_and_a_create_does_not,
    prompt_feedback_is_audited_and_checked,
    btql_serves_the_record_fetchers_query_and_filters
);

async fn ok(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    let (s, v) = app.post(path, key, body).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

async fn registering_names_or_makes_the_project_and_finds_the_base_experiment(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let reg = ok(&app, &key, "/api/project/register", json!({})).await;
    assert_eq!(reg["project"]["name"], "Global", "a nameless project is the SDKs' global one");
    let made = ok(&app, &key, "/api/experiment/register", json!({"project_name": "p", "experiment_name": "a"})).await;
    assert_eq!(made["project"]["name"], "p", "the project is made on the way");
    let pid = made["project"]["id"].clone();
    let a = made["experiment"]["id"].clone();
    let (s, _) = app
        .patch(
            &format!("/v1/experiment/{}", a.as_str().unwrap_or_default()),
            &key,
            json!({"repo_info": {"commit": "c1"}}),
        )
        .await;
    assert_eq!(s, 200);
    let body = json!({"project_id": pid, "experiment_name": "b", "ancestor_commits": ["c2", "c1", "c0"]});
    let b_exp = ok(&app, &key, "/api/experiment/register", body).await;
    assert_eq!(b_exp["experiment"]["base_exp_id"], a, "the newest experiment at an ancestor commit");
    let body = json!({"project_id": pid, "experiment_name": "c", "base_experiment": "b"});
    let c = ok(&app, &key, "/api/experiment/register", body).await;
    assert_eq!(c["experiment"]["base_exp_id"], b_exp["experiment"]["id"]);
    let body = json!({"project_id": pid, "experiment_name": "d", "base_experiment": "nope"});
    let (s, v) = app.post("/api/experiment/register", &key, body).await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().is_some_and(|m| m.contains("base experiment")), "the SDK retries on this text: {v}");
    let again = ok(&app, &key, "/api/experiment/register", json!({"project_id": pid, "experiment_name": "a"})).await;
    assert_eq!(again["experiment"]["name"], "a-1", "without update, always a new experiment");
    let body = json!({"project_id": pid, "experiment_name": "a", "update": true});
    assert_eq!(ok(&app, &key, "/api/experiment/register", body).await["experiment"]["id"], a, "update reopens");
    let got = ok(&app, &key, "/api/experiment/get", json!({"project_name": "p", "experiment_name": "a"})).await;
    assert_eq!(got.as_array().map(|a| a.iter().map(|e| e["id"].clone()).collect::<Vec<_>>()), Some(vec![a.clone()]));
    let base = ok(&app, &key, "/api/base_experiment/get_id", json!({"id": c["experiment"]["id"]})).await;
    assert_eq!(base, json!({"base_exp_id": b_exp["experiment"]["id"], "base_exp_name": "b"}));
    let (s, v) = app.post("/api/base_experiment/get_id", &key, json!({"id": a})).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("bad_request")), "the first has no base: {v}");
    let ds = ok(&app, &key, "/api/dataset/register", json!({"project_id": pid})).await;
    assert_eq!(ds["dataset"]["name"], "logs", "a nameless dataset is the SDKs' default");
    let p = pid.as_str().unwrap_or_default();
    assert_eq!(app.get(&format!("/api/project?id={p}"), &key).await.1["name"], "p");
    let (s, v) = app.get("/api/project", &key).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_parameter")), "`id` is required: {v}");
}

async fn object_info_names_what_the_caller_can_read_and_nothing_else(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let p = ok(&app, &key, "/v1/project", json!({"name": "p"})).await;
    let d1 = ok(&app, &key, "/v1/dataset", json!({"project_id": p["id"], "name": "d1"})).await;
    let d2 = ok(&app, &key, "/v1/dataset", json!({"project_id": p["id"], "name": "d2"})).await;
    let info = |k: String, t: &'static str, ids: Vec<Value>| {
        let app = &app;
        async move { ok(app, &k, "/api/self/get_object_info", json!({"object_type": t, "object_ids": ids})).await }
    };
    let all = info(key.clone(), "dataset", vec![d1["id"].clone(), d2["id"].clone(), p["id"].clone()]).await;
    let names: Vec<&str> = all.as_array().expect("array").iter().filter_map(|o| o["object_name"].as_str()).collect();
    assert_eq!(names, vec!["d1", "d2"], "a project's id is not a dataset");
    assert_eq!(all[0]["parent_cols"]["project"], json!({"id": p["id"], "name": "p"}));
    let rita = member(&app, &key, "rita@example.com", None).await;
    let d1_id = uuid::Uuid::parse_str(d1["id"].as_str().unwrap_or_default()).expect("uuid");
    grant(&app, &key, rita.user, ObjectType::Dataset, d1_id, Permission::Read).await;
    let mine = info(rita.key.clone(), "dataset", vec![d1["id"].clone(), d2["id"].clone()]).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "only the granted dataset: {mine}");
    assert_eq!(mine[0]["parent_cols"]["project"]["name"], p["id"], "a project it cannot read is named by its id");
    assert_eq!(info(rita.key.clone(), "project", vec![p["id"].clone()]).await, json!([]));
    let org = info(key.clone(), "project", vec![p["id"].clone()]).await;
    assert_eq!(org[0]["parent_cols"]["organization"]["name"], "acme");
    let (s, v) = app.post("/api/self/get_object_info", &key, json!({"object_type": "group", "object_ids": []})).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_body")));
}

async fn a_replace_rewrites_the_named_object_and_a_create_does_not(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let put = |path: &'static str, body: Value| {
        let (app, key) = (&app, key.clone());
        async move {
            let (s, h, v) = app.send(reqwest::Method::PUT, path, Some(&key), Some(body), &[]).await;
            assert_eq!(s, 200, "{path}: {v}");
            (h.get("x-bt-found-existing").is_some(), v)
        }
    };
    let (found, p) = put("/v1/project", json!({"name": "p", "description": "one"})).await;
    assert!(!found);
    let (found, p2) = put("/v1/project", json!({"name": "p", "description": "two"})).await;
    assert!(found, "x-bt-found-existing marks a replace");
    assert_eq!((p2["id"].clone(), p2["description"].clone()), (p["id"].clone(), json!("two")));
    let e = json!({"project_id": p["id"], "name": "e", "metadata": {"a": 1}, "tags": ["t"]});
    let (_, e1) = put("/v1/experiment", e).await;
    let (_, e2) = put("/v1/experiment", json!({"project_id": p["id"], "name": "e", "public": true})).await;
    assert_eq!(e2["id"], e1["id"]);
    assert_eq!(
        (e2["metadata"].clone(), e2["tags"].clone(), e2["public"].clone()),
        (Value::Null, Value::Null, json!(true))
    );
    let (_, e3) = put("/v1/experiment", json!({"project_id": p["id"], "name": "e", "ensure_new": true})).await;
    assert_eq!(e3["name"], "e-1", "ensure_new always creates");
    let posted =
        ok(&app, &key, "/v1/experiment", json!({"project_id": p["id"], "name": "e", "description": "x"})).await;
    assert_eq!(
        (posted["id"].clone(), posted["description"].clone()),
        (e1["id"].clone(), Value::Null),
        "POST returns it as it is"
    );
    let (_, d1) = put("/v1/dataset", json!({"project_id": p["id"], "name": "d", "metadata": {"a": 1}})).await;
    let (_, d2) = put("/v1/dataset", json!({"project_id": p["id"], "name": "d", "description": "x"})).await;
    assert_eq!(
        (d2["id"].clone(), d2["metadata"].clone(), d2["description"].clone()),
        (d1["id"].clone(), Value::Null, json!("x"))
    );
    let (_, audit) = app.get("/v1/audit_log?event_type=experiment.updated", &key).await;
    assert_eq!(audit["objects"].as_array().map(Vec::len), Some(1), "one replace, one audited update");
}

async fn prompt_feedback_is_audited_and_checked(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let p = ok(&app, &key, "/v1/project", json!({"name": "p"})).await;
    let prompt_data = json!({"prompt": {"type": "completion", "content": "hi"}});
    let f = ok(
        &app,
        &key,
        "/v1/prompt",
        json!({"project_id": p["id"], "name": "F", "slug": "f", "prompt_data": prompt_data}),
    )
    .await;
    let id = f["id"].as_str().expect("id").to_owned();
    let path = format!("/v1/prompt/{id}/feedback");
    for (body, field) in [
        (json!({"feedback": [{"id": "row1", "comment": "c"}]}), "feedback[0].id"),
        (json!({"feedback": [{"id": id, "source": "robot"}]}), "feedback[0].source"),
        (json!({"feedback": [{"id": id, "scores": {"s": 1}}]}), "scores"),
    ] {
        let (s, v) = app.post(&path, &key, body).await;
        assert_eq!(s, 400, "{v}");
        assert!(v["message"].as_str().is_some_and(|m| m.contains(field)), "names `{field}`: {v}");
    }
    let item = json!({"id": id, "comment": "clear", "metadata": {"user_id": "u1"}, "source": "app"});
    assert_eq!(ok(&app, &key, &path, json!({"feedback": [item.clone()]})).await, json!({"status": "success"}));
    assert_eq!(ok(&app, &key, &path, json!({"feedback": []})).await, json!({"status": "success"}));
    let (_, audit) = app.get(&format!("/v1/audit_log?event_type=prompt.feedback&resource_id={id}"), &key).await;
    let records = audit["objects"].as_array().expect("records");
    assert_eq!(records.len(), 1, "an empty list records nothing: {audit}");
    assert_eq!(records[0]["after"], json!({"feedback": [item]}));
    assert_eq!(records[0]["resource_name"], "F");
    let (_, now) = app.get(&format!("/v1/prompt/{id}"), &key).await;
    assert_eq!(now["_xact_id"], f["_xact_id"], "no new version");
}

async fn btql_serves_the_record_fetchers_query_and_filters(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let p = ok(&app, &key, "/v1/project", json!({"name": "p"})).await;
    let d = ok(&app, &key, "/v1/dataset", json!({"project_id": p["id"], "name": "d"})).await;
    let did = d["id"].as_str().expect("id").to_owned();
    let events: Vec<Value> = (0..3).map(|i| json!({"id": format!("r{i}"), "input": i})).collect();
    ok(&app, &key, &format!("/v1/dataset/{did}/insert"), json!({"events": events})).await;
    let query = |cursor: Value| {
        json!({"query": {"select": [{"op": "star"}], "limit": 2, "cursor": cursor,
               "from": {"op": "function", "name": {"op": "ident", "name": ["dataset"]}, "args": [{"op": "literal", "value": did}]}},
               "use_columnstore": false, "brainstore_realtime": true, "query_source": "js_sdk_object_fetcher_dataset"})
    };
    let first = ok(&app, &key, "/btql", query(Value::Null)).await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(2));
    let next = ok(&app, &key, "/btql", query(first["cursor"].clone())).await;
    assert_eq!(next["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(next["cursor"], Value::Null);
    let mut filtered = query(Value::Null);
    filtered["query"]["filter"] =
        json!({"op": "eq", "left": {"op": "ident", "name": ["id"]}, "right": {"op": "literal", "value": "r1"}});
    let only = ok(&app, &key, "/btql", filtered).await;
    assert_eq!(
        only["data"].as_array().map(|a| a.iter().map(|r| r["id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("r1")])
    );
}
