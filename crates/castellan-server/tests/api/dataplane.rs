//! The data plane over real HTTP, on SQLite and PostgreSQL: `/logs3` semantics,
//! transaction ids, fetch versions and cursors, refusals that write nothing, object
//! lifecycles and their grants, signed URLs, and the index after a restart.

use crate::common;
use crate::support;

use castellan_core::{ObjectType, Permission};
use common::{ids, test_config, Backend, Db, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use support::{grant, member};

on_both_backends!(
    logs3_takes_rows_for_several_objects_without_a_content_type,
    rows_replace_merge_and_delete_in_arrival_order,
    every_write_gets_a_larger_19_digit_transaction_id,
    a_request_with_one_refused_object_writes_nothing,
    malformed_rows_are_refused_with_the_row_named_and_nothing_written,
    a_fetch_pages_one_snapshot_even_while_rows_are_written,
    insert_and_feedback_endpoints_merge_into_rows,
    experiments_are_created_named_patched_and_deleted_with_their_grants,
    functions_need_function_data_and_keep_slugs_unique,
    a_grant_on_one_playground_reaches_it_and_its_logs_only,
    signed_urls_need_no_bearer_and_refuse_tampering_and_expiry,
    object_grants_survive_a_restart_and_go_with_their_project,
    object_changes_are_audited_and_event_rows_are_not,
    summaries_have_exactly_the_keys_the_sdk_builds_dataclasses_from,
    concurrent_writes_each_get_their_own_id_and_one_failure_spoils_no_other
);

async fn setup(app: &TestApp) -> (String, String) {
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, p) = app.post("/v1/project", &key, json!({"name": "p"})).await;
    (key, p["id"].as_str().expect("project id").to_owned())
}

async fn make(app: &TestApp, key: &str, kind: &str, pid: &str, name: &str) -> String {
    let (s, v) = app.post(&format!("/v1/{kind}"), key, json!({"project_id": pid, "name": name})).await;
    assert_eq!(s, 200, "{v}");
    v["id"].as_str().expect("id").to_owned()
}

/// `POST /logs3` with a raw body and no content type, as the SDK sends it.
async fn logs3(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    let resp = app
        .http
        .post(format!("{}/logs3", app.base))
        .bearer_auth(key)
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn fetch(app: &TestApp, key: &str, path: &str) -> Vec<Value> {
    let (s, v) = app.post(path, key, json!({})).await;
    assert_eq!(s, 200, "{path}: {v}");
    v["events"].as_array().cloned().unwrap_or_default()
}

fn by_id<'a>(rows: &'a [Value], id: &str) -> &'a Value {
    rows.iter().find(|r| r["id"] == id).unwrap_or(&Value::Null)
}

async fn logs3_takes_rows_for_several_objects_without_a_content_type(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let exp = make(&app, &key, "experiment", &pid, "e").await;
    let ds = make(&app, &key, "dataset", &pid, "d").await;
    let rows = json!({"api_version": 2, "rows": [
        {"id": "a", "experiment_id": exp, "input": 1, "scores": {"s": 1}},
        {"id": "b", "dataset_id": ds, "input": 2, "expected": 3},
        {"id": "c", "project_id": pid, "log_id": "g", "input": 4},
    ]});
    let (s, v) = logs3(&app, &key, rows).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["rows"], 3);
    let e = fetch(&app, &key, &format!("/v1/experiment/{exp}/fetch")).await;
    assert_eq!((e.len(), &e[0]["experiment_id"], &e[0]["project_id"]), (1, &json!(exp), &json!(pid)));
    let d = fetch(&app, &key, &format!("/v1/dataset/{ds}/fetch")).await;
    assert_eq!((d.len(), &d[0]["expected"], &d[0]["metadata"]), (1, &json!(3), &Value::Null));
    let l = fetch(&app, &key, &format!("/v1/project_logs/{pid}/fetch")).await;
    assert_eq!((l.len(), &l[0]["log_id"]), (1, &json!("g")));
    assert!(l[0]["created"].as_str().is_some(), "a row without `created` gets one");
    let (s, _, v) = app.send(Method::GET, "/version", None, None, &[]).await;
    assert_eq!(s, 200, "/version needs no credential");
    assert_eq!(v["logs3_payload_max_bytes"], 64 * 1024, "a quarter of the test server's 256 KiB body limit");
}

async fn rows_replace_merge_and_delete_in_arrival_order(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let row = |v: Value| {
        let mut m = v;
        m["project_id"] = json!(pid);
        m
    };
    let first = json!({"rows": [
        row(json!({"id": "r", "created": "2026-01-01T00:00:00+00:00", "span_id": "s1", "root_span_id": "t1",
                   "input": {"q": 1}, "metadata": {"a": {"b": 1}}, "tags": ["x"]})),
        row(json!({"id": "gone", "input": 0})),
        row(json!({"id": "twice", "input": "old"})),
        row(json!({"id": "twice", "input": "new"})),
    ]});
    assert_eq!(logs3(&app, &key, first).await.0, 200);
    let second = json!({"rows": [
        row(json!({"id": "r", "_is_merge": true, "created": "2030-01-01T00:00:00+00:00", "span_id": "other",
                   "metadata": {"a": {"c": 2}}, "tags": ["y", "x"], "output": [1, 2]})),
        row(json!({"id": "r", "_is_merge": true, "_merge_paths": [["metadata", "a"]], "metadata": {"a": {"d": 3}}})),
        row(json!({"id": "gone", "_object_delete": true})),
        row(json!({"id": "fresh", "_is_merge": true, "input": "merged into nothing"})),
    ]});
    assert_eq!(logs3(&app, &key, second).await.0, 200);
    let rows = fetch(&app, &key, &format!("/v1/project_logs/{pid}/fetch")).await;
    let r = by_id(&rows, "r");
    assert_eq!(r["metadata"], json!({"a": {"d": 3}}), "a merge path is replaced whole");
    assert_eq!(r["tags"], json!(["x", "y"]), "tags are a set union");
    assert_eq!(r["output"], json!([1, 2]));
    assert_eq!(r["input"], json!({"q": 1}), "a merge keeps what it does not mention");
    assert_eq!((&r["created"], &r["span_id"]), (&json!("2026-01-01T00:00:00+00:00"), &json!("s1")));
    assert_eq!(by_id(&rows, "gone"), &Value::Null, "deleted rows are not fetched");
    assert_eq!(by_id(&rows, "twice")["input"], "new");
    assert_eq!(by_id(&rows, "fresh")["input"], "merged into nothing");
    let replace = json!({"rows": [row(json!({"id": "r", "output": "only this"}))]});
    assert_eq!(logs3(&app, &key, replace).await.0, 200);
    let rows = fetch(&app, &key, &format!("/v1/project_logs/{pid}/fetch")).await;
    assert_eq!(by_id(&rows, "r")["input"], Value::Null, "a replace stands for the whole row");
    assert_eq!(by_id(&rows, "r")["output"], "only this");
}

async fn every_write_gets_a_larger_19_digit_transaction_id(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let mut seen: Vec<String> = Vec::new();
    for i in 0..5 {
        let (s, v) =
            logs3(&app, &key, json!({"rows": [{"id": format!("r{i}"), "project_id": pid}, {"project_id": pid}]})).await;
        assert_eq!(s, 200);
        let x = v["xact_id"].as_str().expect("xact").to_owned();
        assert!(x.len() == 19 && x.bytes().all(|c| c.is_ascii_digit()), "{x}");
        assert!(seen.last().is_none_or(|prev| *prev < x), "{seen:?} then {x}");
        seen.push(x);
    }
    // Prompt versions come from the same counter.
    let (_, p) = app.post("/v1/prompt", &key, json!({"project_id": pid, "name": "n", "slug": "s"})).await;
    assert!(p["_xact_id"].as_str().is_some_and(|x| seen.last().is_some_and(|l| x > l.as_str())), "{p}");
    let rows = fetch(&app, &key, &format!("/v1/project_logs/{pid}/fetch")).await;
    assert_eq!(rows.len(), 10);
    let first = by_id(&rows, "r0")["_xact_id"].clone();
    assert_eq!(first, json!(seen[0]));
    assert_eq!(rows.iter().filter(|r| r["_xact_id"] == first).count(), 2, "one id per write, shared by its rows");
    let (_, empty) = logs3(&app, &key, json!({"rows": []})).await;
    assert_eq!(empty["xact_id"], Value::Null, "no rows, no transaction");
}

async fn a_request_with_one_refused_object_writes_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let readable = make(&app, &key, "experiment", &pid, "readable").await;
    let writable = make(&app, &key, "experiment", &pid, "writable").await;
    let hidden = make(&app, &key, "experiment", &pid, "hidden").await;
    let m = member(&app, &key, "m@example.com", None).await;
    let uuid = |s: &str| uuid::Uuid::parse_str(s).expect("uuid");
    grant(&app, &key, m.user, ObjectType::Experiment, uuid(&readable), Permission::Read).await;
    grant(&app, &key, m.user, ObjectType::Experiment, uuid(&writable), Permission::Update).await;
    let ok = json!({"id": "w", "experiment_id": writable, "input": 1});
    let (s, v) = logs3(&app, &m.key, json!({"rows": [ok]})).await;
    assert_eq!(s, 200, "update without read still writes: {v}");
    for (other, status, code) in [(&readable, 403, "forbidden"), (&hidden, 404, "not_found")] {
        let rows = json!({"rows": [{"id": "x", "experiment_id": writable, "input": 2},
                                   {"id": "y", "experiment_id": other, "input": 3}]});
        let (s, v) = logs3(&app, &m.key, rows).await;
        assert_eq!((s.as_u16(), v["code"].as_str()), (status, Some(code)), "{v}");
        assert!(v["message"].as_str().is_some_and(|msg| msg.contains(other.as_str())), "{v}");
    }
    let (s, _) = logs3(&app, &m.key, json!({"rows": [{"id": "z", "project_id": pid, "input": 1}]})).await;
    assert_eq!(s, 404, "no grant on the project's logs");
    let rows = fetch(&app, &key, &format!("/v1/experiment/{writable}/fetch")).await;
    assert_eq!(ids_of(&rows), vec!["w"], "refused requests wrote nothing");
}

fn ids_of(rows: &[Value]) -> Vec<&str> {
    rows.iter().filter_map(|r| r["id"].as_str()).collect()
}

async fn malformed_rows_are_refused_with_the_row_named_and_nothing_written(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let good = json!({"id": "good", "project_id": pid});
    for (body, code, needle) in [
        (json!({"rows": [good.clone(), {"input": 1}]}), "invalid_body", "row 1: names no object"),
        (json!({"rows": [good.clone(), {"experiment_id": "e-1"}]}), "invalid_body", "`e-1`"),
        (json!({"rows": [good.clone(), {"project_id": pid, "_is_merge": "yes"}]}), "invalid_body", "`_is_merge`"),
        (json!({"rows": [good.clone(), 7]}), "invalid_body", "row 1: must be a JSON object"),
        (json!({"rows": "nope"}), "invalid_body", "`rows`"),
        (json!({"rows": {"type": "logs3_overflow", "key": "never"}}), "not_found", "`never`"),
    ] {
        let (s, v) = logs3(&app, &key, body).await;
        let expected = if code == "not_found" { 404 } else { 400 };
        assert_eq!((s.as_u16(), v["code"].as_str()), (expected, Some(code)), "{v}");
        assert!(v["message"].as_str().is_some_and(|m| m.contains(needle)), "{needle}: {v}");
    }
    let (s, v) = app.raw(Method::POST, "/logs3", &key, b"{\"rows\": [".to_vec()).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_json")));
    let (s, v) = app.post(&format!("/v1/project_logs/{pid}/fetch"), &key, json!({"cursor": "garbage!"})).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_parameter")));
    let (s, v) = app.post(&format!("/v1/project_logs/{pid}/fetch"), &key, json!({"version": "12"})).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_parameter")), "{v}");
    let (s, _) = app.post(&format!("/v1/project_logs/{pid}/fetch"), &key, json!({"limit": 5000})).await;
    assert_eq!(s, 400);
    assert!(fetch(&app, &key, &format!("/v1/project_logs/{pid}/fetch")).await.is_empty(), "nothing was written");
}

async fn a_fetch_pages_one_snapshot_even_while_rows_are_written(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let rows: Vec<Value> = (0..5).map(|i| json!({"id": format!("r{i}"), "project_id": pid, "v": 1})).collect();
    let (_, w1) = logs3(&app, &key, json!({"rows": rows})).await;
    let path = format!("/v1/project_logs/{pid}/fetch");
    let (_, page1) = app.post(&path, &key, json!({"limit": 2})).await;
    // Meanwhile: a row from the first page and one not yet seen change, one appears.
    let later = json!({"rows": [{"id": "r4", "project_id": pid, "v": 2}, {"id": "r0", "project_id": pid, "v": 2},
                                {"id": "new", "project_id": pid}]});
    assert_eq!(logs3(&app, &key, later).await.0, 200);
    let mut seen: Vec<Value> = page1["events"].as_array().cloned().unwrap_or_default();
    let mut cursor = page1["cursor"].clone();
    while let Some(c) = cursor.as_str() {
        let (_, page) = app.post(&path, &key, json!({"limit": 2, "cursor": c})).await;
        seen.extend(page["events"].as_array().cloned().unwrap_or_default());
        cursor = page["cursor"].clone();
    }
    let mut got: Vec<&str> = ids_of(&seen);
    got.sort();
    assert_eq!(got, vec!["r0", "r1", "r2", "r3", "r4"], "every row once, none of the later ones");
    assert!(seen.iter().all(|r| r["v"] == 1), "all as of the first page");
    let at_first = fetch_version(&app, &key, &path, w1["xact_id"].as_str().expect("xact")).await;
    assert_eq!(at_first.len(), 5);
    assert_eq!(fetch(&app, &key, &path).await.len(), 6);
}

async fn fetch_version(app: &TestApp, key: &str, path: &str, v: &str) -> Vec<Value> {
    let (_, page) = app.get(&format!("{path}?version={v}"), key).await;
    page["events"].as_array().cloned().unwrap_or_default()
}

async fn insert_and_feedback_endpoints_merge_into_rows(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let exp = make(&app, &key, "experiment", &pid, "e").await;
    let events =
        json!({"events": [{"id": "a", "input": 1, "scores": {"x": 0.5}, "experiment_id": "ignored"}, {"input": 2}]});
    let (s, v) = app.post(&format!("/v1/experiment/{exp}/insert"), &key, events).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["row_ids"][0], "a");
    assert_eq!(v["row_ids"].as_array().map(Vec::len), Some(2), "a missing id is generated and returned");
    let fb =
        json!({"feedback": [{"id": "a", "scores": {"human": 1}, "comment": "nice", "tags": ["ok"], "source": "app"}]});
    let (s, v) = app.post(&format!("/v1/experiment/{exp}/feedback"), &key, fb).await;
    assert_eq!((s.as_u16(), &v), (200, &json!({"status": "success"})));
    let rows = fetch(&app, &key, &format!("/v1/experiment/{exp}/fetch")).await;
    assert_eq!(rows.len(), 2, "the comment is stored but not fetched as an event");
    assert_eq!(by_id(&rows, "a")["scores"], json!({"x": 0.5, "human": 1}));
    assert_eq!(by_id(&rows, "a")["tags"], json!(["ok"]));
    let bad = json!({"feedback": [{"id": "a", "source": "robot"}]});
    let (s, v) = app.post(&format!("/v1/experiment/{exp}/feedback"), &key, bad).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_body")));
    assert!(v["message"].as_str().is_some_and(|m| m.contains("`robot`")));
}

async fn experiments_are_created_named_patched_and_deleted_with_their_grants(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let (_, unnamed) = app.post("/v1/experiment", &key, json!({"project_id": pid})).await;
    assert!(unnamed["name"].as_str().is_some_and(|n| n.starts_with("experiment-")), "{unnamed}");
    let (_, a) = app.post("/v1/experiment", &key, json!({"project_id": pid, "name": "x", "ensure_new": true})).await;
    let (_, b2) = app.post("/v1/experiment", &key, json!({"project_id": pid, "name": "x", "ensure_new": true})).await;
    assert_eq!((a["name"].as_str(), b2["name"].as_str()), (Some("x"), Some("x-1")));
    let (_, h, same) =
        app.send(Method::POST, "/v1/experiment", Some(&key), Some(json!({"project_id": pid, "name": "x"})), &[]).await;
    assert_eq!((same["id"].clone(), h.get("x-bt-found-existing").is_some()), (a["id"].clone(), true));
    let id = a["id"].as_str().expect("id").to_owned();
    let patch = json!({"metadata": {"k": {"a": 1}}, "tags": ["t"], "base_exp_id": b2["id"]});
    let (s, p) = app.patch(&format!("/v1/experiment/{id}"), &key, patch).await;
    assert_eq!(s, 200, "{p}");
    let (_, p) = app.patch(&format!("/v1/experiment/{id}"), &key, json!({"metadata": {"k": {"b": 2}}})).await;
    assert_eq!((p["metadata"].clone(), p["tags"].clone()), (json!({"k": {"a": 1, "b": 2}}), json!(["t"])));
    let (s, v) = app.patch(&format!("/v1/experiment/{id}"), &key, json!({"base_exp_id": uuid::Uuid::nil()})).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_body")), "{v}");
    let (s, v) = app.patch(&format!("/v1/experiment/{id}"), &key, json!({"name": "x-1"})).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("name_taken")), "{v}");
    let (_, list) = app.get(&format!("/v1/experiment?project_id={pid}&experiment_name=x-1"), &key).await;
    assert_eq!(ids(&list), vec![b2["id"].as_str().unwrap_or_default().to_owned()]);
    let m = member(&app, &key, "m@example.com", None).await;
    grant(&app, &key, m.user, ObjectType::Experiment, uuid::Uuid::parse_str(&id).expect("uuid"), Permission::Read)
        .await;
    assert_eq!(app.get(&format!("/v1/experiment/{id}"), &m.key).await.0, 200);
    assert_eq!(app.delete(&format!("/v1/experiment/{id}"), &m.key).await.0, 403, "read is not delete");
    let (s, gone) = app.delete(&format!("/v1/experiment/{id}"), &key).await;
    assert_eq!((s.as_u16(), gone["id"].as_str()), (200, Some(id.as_str())));
    assert_eq!(app.get(&format!("/v1/experiment/{id}"), &key).await.0, 404);
    let (_, again) = app.post("/v1/experiment", &key, json!({"project_id": pid, "name": "x"})).await;
    assert_ne!(again["id"], json!(id), "the name is free again");
    assert_eq!(app.get(&format!("/v1/experiment/{}", again["id"].as_str().unwrap_or("")), &m.key).await.0, 404);
    let (s, v) = app.post("/v1/experiment", &key, json!({"project_id": pid, "name": "  "})).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_body")));
}

async fn functions_need_function_data_and_keep_slugs_unique(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let scorer = json!({"project_id": pid, "name": "Exact", "slug": "exact", "function_type": "scorer",
                        "function_data": {"type": "code", "data": {"type": "inline", "code": "x"}}});
    let (s, f) = app.post("/v1/function", &key, scorer.clone()).await;
    assert_eq!(s, 200, "{f}");
    assert_eq!((f["function_type"].as_str(), f["log_id"].as_str()), (Some("scorer"), Some("p")));
    let (_, prompts) = app.get(&format!("/v1/prompt?project_id={pid}"), &key).await;
    assert_eq!(ids(&prompts).len(), 0, "a scorer is not a prompt");
    let (_, p) = app.post("/v1/prompt", &key, json!({"project_id": pid, "name": "P", "slug": "p1"})).await;
    let (_, all) = app.get(&format!("/v1/function?project_id={pid}"), &key).await;
    assert_eq!(ids(&all).len(), 2, "prompts are functions too");
    assert_eq!(p["function_data"], json!({"type": "prompt"}));
    for (body, needle) in [
        (json!({"project_id": pid, "name": "n", "slug": "s2"}), "`function_data` is required"),
        (json!({"project_id": pid, "name": "n", "slug": "s2", "function_data": {"x": 1}}), "`function_data`"),
        (json!({"project_id": pid, "name": "n", "slug": "has space", "function_data": {"type": "code"}}), "`slug`"),
        (
            json!({"project_id": pid, "name": "n", "slug": "s3", "function_type": "wizard", "function_data": {"type": "code"}}),
            "`wizard`",
        ),
    ] {
        let (s, v) = app.post("/v1/function", &key, body).await;
        assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_body")), "{v}");
        assert!(v["message"].as_str().is_some_and(|m| m.contains(needle)), "{needle}: {v}");
    }
    let (s, v) = app.post("/v1/prompt", &key, json!({"project_id": pid, "name": "Q", "slug": "exact"})).await;
    assert_eq!(
        (s.as_u16(), v["code"].as_str()),
        (400, Some("name_taken")),
        "slugs are shared by prompts and functions"
    );
    let replaced = json!({"project_id": pid, "name": "Exact v2", "slug": "exact", "function_data": {"type": "code"}});
    let (s, _, r) = app.send(Method::PUT, "/v1/function", Some(&key), Some(replaced), &[]).await;
    assert_eq!(s, 200);
    assert_eq!((r["id"].clone(), r["name"].as_str()), (f["id"].clone(), Some("Exact v2")));
    let fid = f["id"].as_str().unwrap_or_default();
    let (_, old) = app.get(&format!("/v1/function/{fid}?version={}", f["_xact_id"].as_str().unwrap_or("")), &key).await;
    assert_eq!(old["name"], "Exact", "the first version is kept");
    let (s, v) = app.get(&format!("/v1/prompt/{fid}"), &key).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (404, Some("not_found")), "a scorer is not served as a prompt");
}

async fn a_grant_on_one_playground_reaches_it_and_its_logs_only(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let mine = make(&app, &key, "prompt_session", &pid, "mine").await;
    let other = make(&app, &key, "prompt_session", &pid, "other").await;
    let rows = json!({"rows": [{"id": "a", "prompt_session_id": mine, "log_id": "x", "input": 1},
                               {"id": "b", "prompt_session_id": other, "log_id": "x", "input": 2}]});
    assert_eq!(logs3(&app, &key, rows).await.0, 200);
    let m = member(&app, &key, "m@example.com", None).await;
    // Through the ACL endpoint this time: grants on playgrounds are ordinary grants.
    let acl = json!({"object_type": "prompt_session", "object_id": mine, "user_id": m.user, "permission": "read"});
    let (s, v) = app.post("/v1/acl", &key, acl).await;
    assert_eq!(s, 200, "{v}");
    let (_, list) = app.get("/v1/prompt_session", &m.key).await;
    assert_eq!(ids(&list), vec![mine.clone()]);
    let rows = fetch(&app, &m.key, &format!("/v1/prompt_session/{mine}/fetch")).await;
    assert_eq!((ids_of(&rows), &rows[0]["log_id"]), (vec!["a"], &json!("x")));
    assert_eq!(app.post(&format!("/v1/prompt_session/{other}/fetch"), &m.key, json!({})).await.0, 404);
    let (s, _) = app.patch(&format!("/v1/prompt_session/{mine}"), &m.key, json!({"name": "renamed"})).await;
    assert_eq!(s, 403);
    let (s, p) = app.patch(&format!("/v1/prompt_session/{mine}"), &key, json!({"prompt_session_data": {"k": 1}})).await;
    assert_eq!((s.as_u16(), &p["prompt_session_data"]), (200, &json!({"k": 1})));
}

async fn signed_urls_need_no_bearer_and_refuse_tampering_and_expiry(b: Backend) {
    let Some(db) = Db::fresh(b) else { return };
    let offset = Arc::new(AtomicI64::new(0));
    let o = offset.clone();
    let clock: castellan_server::access::Clock = Arc::new(move || {
        let now = castellan_server::access::system_clock()();
        now + o.load(Ordering::SeqCst)
    });
    let app = TestApp::spawn_on(db, test_config(), clock).await;
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, orgs) = app.get("/v1/organization", &key).await;
    let org = orgs["objects"][0]["id"].as_str().expect("org").to_owned();
    let (s, up) = app
        .post(
            "/attachment",
            &key,
            json!({"key": "k1", "filename": "a.txt", "content_type": "text/plain", "org_id": org}),
        )
        .await;
    assert_eq!(s, 200, "{up}");
    let url = up["signedUrl"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&app.base), "served by Castellan itself: {url}");
    let put = |u: String, body: &'static str| {
        let http = app.http.clone();
        async move { http.put(u).body(body).send().await.expect("put").status().as_u16() }
    };
    assert_eq!(put(url.replace("sig=", "sig=00"), "evil").await, 403, "a tampered signature");
    assert!(url.contains("k1?"), "{url}");
    assert_eq!(put(url.replace("k1?", "k2?"), "evil").await, 403, "another key");
    assert_eq!(put(url.clone(), "hello").await, 200, "no bearer header needed");
    let (s, _) = app
        .post("/attachment/status", &key, json!({"key": "k1", "org_id": org, "status": {"upload_status": "done"}}))
        .await;
    assert_eq!(s, 200);
    let (s, v) = app
        .post("/attachment/status", &key, json!({"key": "k1", "org_id": org, "status": {"upload_status": "meh"}}))
        .await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_body")));
    let (_, info) = app.get(&format!("/attachment?key=k1&org_id={org}"), &key).await;
    let download = info["downloadUrl"].as_str().expect("download url").to_owned();
    let got = app.http.get(&download).send().await.expect("get");
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "text/plain");
    assert_eq!(got.text().await.expect("body"), "hello");
    assert_eq!(put(download.clone(), "x").await, 403, "a download URL does not upload");
    let other = member(&app, &key, "m@example.com", None).await;
    let (s, v) = app.post("/attachment", &other.key, json!({"key": "k1", "org_id": org})).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("bad_request")), "someone else's key: {v}");
    offset.store(2 * 3600 * 1_000_000, Ordering::SeqCst);
    let late = app.http.get(&download).send().await.expect("get");
    assert_eq!(late.status(), 403);
    let body: Value = late.json().await.unwrap_or(Value::Null);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("expired")), "{body}");
}

async fn object_grants_survive_a_restart_and_go_with_their_project(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let exp = make(&app, &key, "experiment", &pid, "e").await;
    let (_, p2) = app.post("/v1/project", &key, json!({"name": "doomed"})).await;
    let doomed = make(&app, &key, "dataset", p2["id"].as_str().expect("id"), "d").await;
    let m = member(&app, &key, "m@example.com", None).await;
    grant(&app, &key, m.user, ObjectType::Experiment, uuid::Uuid::parse_str(&exp).expect("u"), Permission::Read).await;
    grant(&app, &key, m.user, ObjectType::Dataset, uuid::Uuid::parse_str(&doomed).expect("u"), Permission::Read).await;
    assert_eq!(app.get(&format!("/v1/dataset/{doomed}"), &m.key).await.0, 200);
    assert_eq!(app.delete(&format!("/v1/project/{}", p2["id"].as_str().unwrap_or("")), &key).await.0, 200);
    assert_eq!(app.get(&format!("/v1/dataset/{doomed}"), &m.key).await.0, 404, "gone with its project");
    let db = app.db.clone();
    app.stop().await;
    let again = TestApp::spawn_on(db, test_config(), castellan_server::access::system_clock()).await;
    assert_eq!(
        again.get(&format!("/v1/experiment/{exp}"), &m.key).await.0,
        200,
        "the index was rebuilt with the grant"
    );
    assert_eq!(again.get(&format!("/v1/dataset/{doomed}"), &m.key).await.0, 404);
    assert_eq!(again.get(&format!("/v1/experiment/{exp}"), &key).await.0, 200);
}

async fn object_changes_are_audited_and_event_rows_are_not(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let exp = make(&app, &key, "experiment", &pid, "e").await;
    assert_eq!(app.patch(&format!("/v1/experiment/{exp}"), &key, json!({"description": "d"})).await.0, 200);
    let store = app.db.open().await;
    let org = store.read().await.expect("read").find_org_by_name("acme").await.expect("find").expect("org").id;
    let length = |store: Arc<dyn castellan_store::Store>| async move {
        store.read().await.expect("read").audit_head(org).await.expect("head").map(|(seq, _)| seq)
    };
    let before = length(store.clone()).await;
    let rows = json!({"rows": [{"experiment_id": exp, "input": 1}, {"experiment_id": exp, "input": 2}]});
    assert_eq!(logs3(&app, &key, rows).await.0, 200);
    assert_eq!(length(store.clone()).await, before, "event rows are data, not administration");
    assert_eq!(app.delete(&format!("/v1/experiment/{exp}"), &key).await.0, 200);
    let mut tx = store.read().await.expect("read");
    let chain = tx.audit_chain(org, 0, 1000).await.expect("chain");
    let events: Vec<&str> =
        chain.iter().map(|r| r.record.event_type.as_str()).filter(|e| e.starts_with("experiment")).collect();
    assert_eq!(events, vec!["experiment.created", "experiment.updated", "experiment.deleted"]);
    let created = chain.iter().find(|r| r.record.event_type == "experiment.created").expect("created");
    assert_eq!(created.record.resource_id.map(|u| u.to_string()), Some(exp));
    assert_eq!(castellan_store::audit::verify_chain(&chain, tx.audit_head(org).await.expect("head")), vec![]);
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    k.sort();
    k
}

async fn summaries_have_exactly_the_keys_the_sdk_builds_dataclasses_from(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let first = make(&app, &key, "experiment", &pid, "first").await;
    let second = make(&app, &key, "experiment", &pid, "second").await;
    for (exp, score) in [(&first, 0.25), (&second, 0.75)] {
        let rows = json!({"events": [
            {"id": "root", "span_id": "root", "root_span_id": "root", "input": "q", "metrics": {"start": 10.0, "end": 12.0}},
            {"id": "child", "span_id": "child", "root_span_id": "root", "span_parents": ["root"], "scores": {"acc": score}},
        ]});
        assert_eq!(app.post(&format!("/v1/experiment/{exp}/insert"), &key, rows).await.0, 200);
    }
    let (s, alone) = app.get(&format!("/v1/experiment/{first}/summarize?summarize_scores=true"), &key).await;
    assert_eq!(s, 200, "{alone}");
    assert_eq!(alone["comparison_experiment_name"], Value::Null, "nothing older to compare with");
    assert_eq!(keys(&alone["scores"]["acc"]), vec!["improvements", "name", "regressions", "score"]);
    assert_eq!(alone["scores"]["acc"]["score"], 0.25, "scores come from the child span");
    assert_eq!(keys(&alone["metrics"]["duration"]), vec!["improvements", "metric", "name", "regressions", "unit"]);
    assert_eq!(
        (alone["metrics"]["duration"]["metric"].as_f64(), alone["metrics"]["duration"]["unit"].as_str()),
        (Some(2.0), Some("s"))
    );
    let (_, cmp) = app.get(&format!("/v1/experiment/{second}/summarize?summarize_scores=true"), &key).await;
    assert_eq!(cmp["comparison_experiment_name"], "first", "the previous experiment of the project");
    assert_eq!(keys(&cmp["scores"]["acc"]), vec!["diff", "improvements", "name", "regressions", "score"]);
    assert_eq!(
        (cmp["scores"]["acc"]["diff"].as_f64(), cmp["scores"]["acc"]["improvements"].as_u64()),
        (Some(0.5), Some(1))
    );
    let (_, bare) = app.get(&format!("/v1/experiment/{second}/summarize"), &key).await;
    assert_eq!(
        keys(&bare),
        vec!["comparison_experiment_name", "experiment_name", "experiment_url", "project_name", "project_url"]
    );
    let ds = make(&app, &key, "dataset", &pid, "d").await;
    let (_, d) = app.get(&format!("/v1/dataset/{ds}/summarize?summarize_data=true"), &key).await;
    assert_eq!(d["data_summary"], json!({"total_records": 0}));
    let (_, d) = app.get(&format!("/v1/dataset/{ds}/summarize"), &key).await;
    assert_eq!(d["data_summary"], Value::Null);
    let (s, v) = app.get(&format!("/v1/experiment/{second}/summarize?summarize_scores=maybe"), &key).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (400, Some("invalid_parameter")));
}

async fn concurrent_writes_each_get_their_own_id_and_one_failure_spoils_no_other(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let mut writes = Vec::new();
    for i in 0..24 {
        let body =
            json!({"rows": [{"id": format!("r{i}"), "project_id": pid}, {"id": format!("s{i}"), "project_id": pid}]});
        writes.push(spawn_logs3(&app, &key, body));
    }
    let mut ids: Vec<String> = Vec::new();
    for (s, v) in join(writes).await {
        assert_eq!(s, 200, "{v}");
        ids.push(v["xact_id"].as_str().expect("xact").to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 24, "one id per request, even when committed together");
    assert_eq!(fetch(&app, &key, &format!("/v1/project_logs/{pid}/fetch")).await.len(), 48);

    // Two requests consuming the same overflow payload: the second one's write
    // fails; the first is committed all the same, and the rows exist once.
    let ann = json!({"content_type": "application/json", "size_bytes": 10, "rows": [{"object_ids": {"project_id": pid, "log_id": "g"}}]});
    let (s, up) = app.post("/logs3/overflow", &key, ann).await;
    assert_eq!(s, 200, "{up}");
    let payload = json!({"rows": [{"id": "big", "project_id": pid, "input": "x"}], "api_version": 2});
    let put = app.http.put(up["signedUrl"].as_str().expect("url")).body(payload.to_string()).send().await.expect("put");
    assert_eq!(put.status(), 200);
    let reference = json!({"rows": {"type": "logs3_overflow", "key": up["key"], "size_bytes": 10}, "api_version": 2});
    let mut statuses: Vec<u16> =
        join(vec![spawn_logs3(&app, &key, reference.clone()), spawn_logs3(&app, &key, reference)])
            .await
            .into_iter()
            .map(|(s, _)| s.as_u16())
            .collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 404]);
    let rows = fetch(&app, &key, &format!("/v1/project_logs/{pid}/fetch")).await;
    assert_eq!(rows.iter().filter(|r| r["id"] == "big").count(), 1);
    let (_, v) = app
        .get(
            &format!("/v1/project_logs/{pid}/fetch?version={}", by_id(&rows, "big")["_xact_id"].as_str().unwrap_or("")),
            &key,
        )
        .await;
    assert_eq!(v["events"].as_array().map(Vec::len), Some(49));
}

/// `POST /logs3` on a task of its own (so several run at once).
fn spawn_logs3(app: &TestApp, key: &str, body: Value) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let (http, url, key) = (app.http.clone(), format!("{}/logs3", app.base), key.to_owned());
    tokio::spawn(async move {
        let resp = http.post(url).bearer_auth(key).body(body.to_string()).send().await.expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    })
}

async fn join(tasks: Vec<tokio::task::JoinHandle<(StatusCode, Value)>>) -> Vec<(StatusCode, Value)> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}
