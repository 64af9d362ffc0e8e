//! `POST /btql` over real HTTP on SQLite and PostgreSQL: each operator, nested
//! paths, the three forms giving one answer, sort / limit / cursor paging, `version`,
//! errors with positions, authorization like `fetch`; and a differential test of the
//! SQL pushed into each database against the in-memory evaluator on random rows.

use crate::common;
use crate::support;

use castellan_btql::{eval, ArithOp, CmpOp, Expr, Literal, SortKey};
use castellan_core::{ObjectType, Permission, ProjectId};
use castellan_store::{EventKind, EventObject, EventQuery, EventSearch, EventWrite, XactId};
use common::{Backend, Db, TestApp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use support::{grant, member};

on_both_backends!(
    every_operator_filters_rows_as_documented,
    the_three_forms_give_the_same_answer,
    sort_limit_and_cursor_page_over_more_rows_than_a_page,
    version_reads_the_log_as_of_a_transaction,
    bad_queries_answer_400_saying_where,
    unreadable_objects_answer_404_and_readable_ones_answer_like_fetch,
    keys_sql_cannot_address_are_matched_in_memory,
    sql_pushdown_agrees_with_the_evaluator_on_random_rows_and_filters
);

mod sdk {
    use super::*;
    on_both_backends!(
        #[ignore = "needs the official Braintrust clients: scripts/test runs it"]
        the_python_sdk_reads_a_filtered_dataset_through_btql
    );

    mod bt_cli {
        use super::*;
        on_both_backends!(
            #[ignore = "needs the official bt CLI: scripts/test runs it"]
            bt_sql_runs_a_query_in_the_sql_form,
            bt_datasets_view_reads_a_dataset_and_is_refused_without_read
        );
    }
}

async fn setup(app: &TestApp) -> (String, String) {
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, p) = app.post("/v1/project", &key, json!({"name": "p"})).await;
    (key, p["id"].as_str().expect("project id").to_owned())
}

async fn logs3(app: &TestApp, key: &str, rows: Vec<Value>) {
    let (s, v) = app.post("/logs3", key, json!({"rows": rows, "api_version": 2})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

fn from(source: &str, id: &str) -> Value {
    json!({"op": "function", "name": {"op": "ident", "name": [source]}, "args": [{"op": "literal", "value": id}]})
}

/// Runs a query; returns the status and the body.
async fn btql(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    app.post("/btql", key, body).await
}

fn row_ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn ident(path: &[&str]) -> Value {
    json!({"op": "ident", "name": path})
}

fn lit(v: Value) -> Value {
    json!({"op": "literal", "value": v})
}

async fn every_operator_filters_rows_as_documented(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let row = |id: &str, extra: Value| {
        let mut r = json!({"id": id, "project_id": pid, "log_id": "g"});
        r.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        r
    };
    logs3(
        &app,
        &key,
        vec![
            row("a", json!({"input": "Hello World", "metadata": {"model": "gpt-4o", "env": {"region": "eu"}}, "scores": {"accuracy": 0.9}, "tags": ["x", "y"], "metrics": {"start": 1.0, "end": 3.5}})),
            row("b", json!({"input": {"messages": [{"content": "say HELLO"}]}, "metadata": {"model": "gpt-4o-mini", "env": {"region": "us"}}, "scores": {"accuracy": 0.4}, "tags": ["y"], "metrics": {"start": 1.0, "end": 1.5}, "error": "boom"})),
            row("c", json!({"input": "100% sure", "metadata": {"model": "claude", "n": 3}, "scores": {"accuracy": null}, "span_parents": ["a"], "span_id": "s-c", "root_span_id": "a"})),
            row("d", json!({"input": "gone"})),
        ],
    )
    .await;
    logs3(&app, &key, vec![row("d", json!({"_object_delete": true}))]).await;
    let q = |filter: Value| {
        let app = &app;
        let key = key.clone();
        let pid = pid.clone();
        async move {
            let (s, v) =
                btql(app, &key, json!({"query": {"from": from("project_logs", &pid), "filter": filter}})).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            sorted(row_ids(&v))
        }
    };
    let cmp = |op: &str, path: &[&str], v: Value| json!({"op": op, "left": ident(path), "right": lit(v)});
    assert_eq!(q(cmp("eq", &["metadata", "model"], json!("gpt-4o"))).await, ["a"]);
    assert_eq!(q(cmp("ne", &["metadata", "model"], json!("gpt-4o"))).await, ["b", "c"]);
    assert_eq!(q(cmp("eq", &["metadata", "env", "region"], json!("us"))).await, ["b"], "a nested path");
    assert_eq!(q(cmp("gt", &["scores", "accuracy"], json!(0.5))).await, ["a"]);
    assert_eq!(q(cmp("ge", &["scores", "accuracy"], json!(0.4))).await, ["a", "b"]);
    assert_eq!(q(cmp("lt", &["scores", "accuracy"], json!(0.5))).await, ["b"], "null is not less than anything");
    assert_eq!(q(cmp("le", &["metadata", "n"], json!(3))).await, ["c"]);
    assert_eq!(q(cmp("eq", &["metadata", "n"], json!("3"))).await, Vec::<String>::new(), "types do not mix");
    assert_eq!(
        q(json!({"op": "in", "left": ident(&["metadata", "model"]), "right": lit(json!(["claude", "gpt-4o"]))})).await,
        ["a", "c"]
    );
    assert_eq!(q(cmp("like", &["input"], json!("Hello%"))).await, ["a"]);
    assert_eq!(q(cmp("like", &["input"], json!("hello%"))).await, Vec::<String>::new(), "LIKE is case sensitive");
    assert_eq!(q(cmp("ilike", &["input"], json!("hello%"))).await, ["a"]);
    assert_eq!(q(cmp("like", &["input"], json!("100\\%%"))).await, ["c"], "an escaped %");
    assert_eq!(q(cmp("match", &["input"], json!("hello"))).await, ["a", "b"], "match searches inside objects too");
    assert_eq!(q(cmp("includes", &["tags"], json!("x"))).await, ["a"]);
    assert_eq!(q(json!({"op": "isnull", "expr": ident(&["error"])})).await, ["a", "c"]);
    assert_eq!(q(json!({"op": "isnotnull", "expr": ident(&["error"])})).await, ["b"]);
    assert_eq!(q(json!({"op": "not", "expr": cmp("eq", &["metadata", "model"], json!("claude"))})).await, ["a", "b"]);
    assert_eq!(
        q(json!({"op": "and", "children": [cmp("eq", &["is_root"], json!(true)), cmp("lt", &["scores", "accuracy"], json!(1))]})).await,
        ["a", "b"]
    );
    assert_eq!(
        q(json!({"op": "or", "left": cmp("eq", &["id"], json!("a")), "right": cmp("eq", &["span_id"], json!("s-c"))}))
            .await,
        ["a", "c"]
    );
    assert_eq!(
        q(cmp("eq", &["root_span_id"], json!("a"))).await,
        ["a", "c"],
        "a row without span ids is its own trace"
    );
    assert_eq!(q(cmp("eq", &["project_id"], json!(pid))).await, ["a", "b", "c"], "the log's constant fields");
    let elapsed = json!({"op": "ge", "left": {"op": "sub", "left": ident(&["metrics", "end"]), "right": ident(&["metrics", "start"])}, "right": lit(json!(2))});
    assert_eq!(q(elapsed).await, ["a"], "arithmetic");
    assert_eq!(q(json!({"op": "literal", "value": false})).await, Vec::<String>::new());
    assert_eq!(q(json!("metadata.model = 'claude' OR tags INCLUDES 'y'")).await, ["a", "b", "c"], "a filter in text");
}

async fn the_three_forms_give_the_same_answer(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let rows: Vec<Value> = (0..30)
        .map(|i| json!({"id": format!("r{i:02}"), "project_id": pid, "metadata": {"model": if i % 3 == 0 { "gpt-4o" } else { "other" }}, "scores": {"accuracy": f64::from(i) / 30.0}}))
        .collect();
    logs3(&app, &key, rows).await;
    let json_form = json!({"query": {
        "select": [{"op": "star"}],
        "from": from("project_logs", &pid),
        "filter": {"op": "and", "children": [
            {"op": "eq", "left": ident(&["metadata", "model"]), "right": lit(json!("gpt-4o"))},
            {"op": "gt", "left": ident(&["scores", "accuracy"]), "right": lit(json!(0.2))},
        ]},
        "sort": [{"expr": ident(&["scores", "accuracy"]), "dir": "desc"}],
        "limit": 4,
    }});
    let text = format!(
        "select: * | from: project_logs('{pid}') | filter: metadata.model = 'gpt-4o' and scores.accuracy > 0.2 | \
         sort: scores.accuracy desc | limit: 4"
    );
    let sql = format!(
        "SELECT * FROM project_logs('{pid}') WHERE metadata.model = 'gpt-4o' AND scores.accuracy > 0.2 \
         ORDER BY scores.accuracy DESC LIMIT 4"
    );
    let (s, a) = btql(&app, &key, json_form).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let (s, t) = btql(&app, &key, json!({"query": text, "fmt": "json"})).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, q) =
        btql(&app, &key, json!({"query": sql, "fmt": "json", "lint_mode": "strict", "query_source": "bt_sql"})).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert_eq!(row_ids(&a), ["r27", "r24", "r21", "r18"]);
    assert_eq!(a["data"], t["data"]);
    assert_eq!(a["data"], q["data"]);
    assert_eq!(a["schema"]["type"], "array", "`bt sql` reads `schema`");
    // Rows are shaped as fetch shapes them.
    let (_, f) = app.post(&format!("/v1/project_logs/{pid}/fetch"), &key, json!({})).await;
    let fetched = f["events"].as_array().expect("events").iter().find(|e| e["id"] == "r27").cloned();
    assert_eq!(Some(a["data"][0].clone()), fetched);
    // Columns.
    let (s, c) = btql(&app, &key, json!({"query": format!("SELECT id, metadata.model AS m, scores.accuracy * 30 AS n FROM project_logs('{pid}') WHERE id = 'r03'")})).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["data"], json!([{"id": "r03", "m": "gpt-4o", "n": 3.0}]));
}

async fn sort_limit_and_cursor_page_over_more_rows_than_a_page(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    for chunk in 0..3 {
        let rows: Vec<Value> = (0..100)
            .map(|i| {
                let n = chunk * 100 + i;
                json!({"id": format!("r{n:03}"), "project_id": pid, "metadata": {"n": (n * 7) % 50, "even": n % 2 == 0}})
            })
            .collect();
        logs3(&app, &key, rows).await;
    }
    // Default order (newest transaction first), filtered, 3 pages of 60.
    let filter = json!({"op": "eq", "left": ident(&["metadata", "even"]), "right": lit(json!(true))});
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let (s, v) = btql(
            &app,
            &key,
            json!({"query": {"from": from("project_logs", &pid), "filter": filter, "limit": 60, "cursor": cursor}}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        seen.extend(row_ids(&v));
        pages += 1;
        if pages == 1 {
            // Rows written meanwhile do not show up on later pages.
            logs3(&app, &key, vec![json!({"id": "late", "project_id": pid, "metadata": {"even": true}})]).await;
        }
        cursor = v["cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 150);
    assert_eq!(sorted(seen.clone()), sorted((0..300).step_by(2).map(|n| format!("r{n:03}")).collect()));
    // A custom sort with ties (metadata.n has 50 values), paged by the text form's cursor.
    let mut got: Vec<(i64, String)> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut text =
            format!("select: id, metadata.n AS n | from: project_logs('{pid}') | sort: metadata.n asc | limit: 70");
        if let Some(c) = &cursor {
            text.push_str(&format!(" | cursor: '{c}'"));
        }
        let (s, _, v) = app.send(reqwest::Method::POST, "/btql", Some(&key), Some(json!({"query": text})), &[]).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        for r in v["data"].as_array().expect("data") {
            got.push((r["n"].as_i64().unwrap_or(-1), r["id"].as_str().unwrap_or("").to_owned()));
        }
        cursor = v["cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(got.len(), 301, "every row once, `late` (no n) first");
    assert_eq!(got[0], (-1, "late".to_owned()), "null sorts first ascending");
    let ns: Vec<i64> = got[1..].iter().map(|g| g.0).collect();
    let mut want = ns.clone();
    want.sort();
    assert_eq!(ns, want);
    let mut ids: Vec<String> = got.iter().map(|g| g.1.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 301, "no row twice");
    // The cursor header, and a cursor of another sort is refused.
    let (s, h, v) = app
        .send(
            reqwest::Method::POST,
            "/btql",
            Some(&key),
            Some(json!({"query": {"from": from("project_logs", &pid), "limit": 10}})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h.get("x-bt-cursor").and_then(|c| c.to_str().ok()), v["cursor"].as_str());
    let other = json!({"query": {"from": from("project_logs", &pid), "limit": 10, "cursor": v["cursor"], "sort": [{"expr": ident(&["created"])}]}});
    let (s, e) = btql(&app, &key, other).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{e}");
    let (s, e) = btql(&app, &key, json!({"query": {"from": from("project_logs", &pid), "limit": 1001}})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
}

async fn version_reads_the_log_as_of_a_transaction(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, _) = setup(&app).await;
    let (_, pid) = setup_dataset(&app, &key).await;
    logs3(&app, &key, vec![json!({"id": "a", "dataset_id": pid, "input": 1, "expected": 1})]).await;
    let (_, v) = btql(&app, &key, json!({"query": {"from": from("dataset", &pid)}})).await;
    let v1 = v["data"][0]["_xact_id"].as_str().expect("xact").to_owned();
    logs3(
        &app,
        &key,
        vec![json!({"id": "a", "dataset_id": pid, "input": 2}), json!({"id": "b", "dataset_id": pid, "input": 3})],
    )
    .await;
    logs3(&app, &key, vec![json!({"id": "a", "dataset_id": pid, "_object_delete": true})]).await;
    let at = |version: Option<&str>, filter: Value| {
        let mut body = json!({"query": {"from": from("dataset", &pid), "filter": filter}});
        if let Some(v) = version {
            body["version"] = json!(v);
        }
        let (app, key) = (&app, key.clone());
        async move {
            let (s, v) = btql(app, &key, body).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v["data"].as_array().cloned().unwrap_or_default()
        }
    };
    let then = at(Some(&v1), Value::Null).await;
    assert_eq!((then.len(), &then[0]["input"]), (1, &json!(1)), "as of the first write");
    let now = at(None, Value::Null).await;
    assert_eq!(now.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(), [json!("b")], "the deleted row is gone");
    let filtered = at(Some(&v1), json!({"op": "eq", "left": ident(&["input"]), "right": lit(json!(2))})).await;
    assert!(filtered.is_empty(), "the filter sees the version read, not a later one");
    let by_xact = at(None, json!({"op": "gt", "left": ident(&["_xact_id"]), "right": lit(json!(v1))})).await;
    assert_eq!(by_xact.len(), 1);
    let (s, e) = btql(&app, &key, json!({"query": {"from": from("dataset", &pid)}, "version": "yesterday"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
}

async fn setup_dataset(app: &TestApp, key: &str) -> (String, String) {
    let (_, p) = app.post("/v1/project", key, json!({"name": "dp"})).await;
    let pid = p["id"].as_str().expect("id").to_owned();
    let (s, d) = app.post("/v1/dataset", key, json!({"project_id": pid, "name": "d"})).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    (pid, d["id"].as_str().expect("id").to_owned())
}

async fn bad_queries_answer_400_saying_where(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let err = |query: Value| {
        let (app, key) = (&app, key.clone());
        async move {
            let (s, v) = btql(app, &key, json!({"query": query})).await;
            assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query")), "{v}");
            v["message"].as_str().unwrap_or_default().to_owned()
        }
    };
    let m = err(json!(format!("select: * | from: project_logs('{pid}') | filter: metadata.a >"))).await;
    assert!(m.starts_with("at 1:"), "{m}");
    assert!(m.contains("expected an expression, found the end of the query"), "{m}");
    let m = err(json!(format!("SELECT * FROM project_logs('{pid}')\nWHERE bogus = 1"))).await;
    assert!(m.starts_with("at 2:7: unknown field `bogus`"), "{m}");
    let m = err(json!({"from": from("project_logs", &pid), "filter": {"op": "eq", "left": ident(&["metdata", "a"]), "right": lit(json!(1))}})).await;
    assert!(m.starts_with("at `query.filter.left`: unknown field `metdata`"), "{m}");
    let m = err(json!({"from": from("project_logs", &pid), "filter": {"op": "like", "left": ident(&["input"]), "right": lit(json!(3))}})).await;
    assert!(m.starts_with("at `query.filter.right`"), "{m}");
    let m = err(json!({"from": from("project_logs", "not-a-uuid")})).await;
    assert!(m.contains("not-a-uuid"), "{m}");
    let m = err(json!({"from": from("project_prompts", &pid)})).await;
    assert!(m.contains("unknown source `project_prompts`"), "{m}");
    let m = err(json!(format!("SELECT count(*) FROM project_logs('{pid}')"))).await;
    assert!(m.starts_with("at 1:8: unknown function `count`"), "{m}");
}

async fn unreadable_objects_answer_404_and_readable_ones_answer_like_fetch(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (owner, pid) = setup(&app).await;
    let (_, other_pid) = {
        let (_, p) = app.post("/v1/project", &owner, json!({"name": "q"})).await;
        ((), p["id"].as_str().expect("id").to_owned())
    };
    let (_, exp) = app.post("/v1/experiment", &owner, json!({"project_id": pid, "name": "e"})).await;
    let exp = exp["id"].as_str().expect("id").to_owned();
    logs3(&app, &owner, vec![json!({"id": "x", "experiment_id": exp, "input": 1})]).await;
    let m = member(&app, &owner, "m@example.com", None).await;
    let query = |source: &str, id: &str| json!({"query": {"from": from(source, id)}});
    for (source, id) in
        [("experiment", exp.as_str()), ("project_logs", pid.as_str()), ("project_logs", other_pid.as_str())]
    {
        let (s, v) = btql(&app, &m.key, query(source, id)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{source} {id}: {v}");
        let (fs, _) = app
            .post(
                &format!("/v1/{}/{id}/fetch", if source == "experiment" { "experiment" } else { "project_logs" }),
                &m.key,
                json!({}),
            )
            .await;
        assert_eq!(fs, s, "as fetch answers");
    }
    let (s, v) = btql(&app, &m.key, query("experiment", &uuid::Uuid::new_v4().to_string())).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a log that does not exist answers the same: {v}");
    grant(&app, &owner, m.user, ObjectType::Experiment, uuid::Uuid::parse_str(&exp).expect("uuid"), Permission::Read)
        .await;
    let (s, v) = btql(&app, &m.key, query("experiment", &exp)).await;
    assert_eq!((s, row_ids(&v)), (StatusCode::OK, vec!["x".to_owned()]), "{v}");
    let (s, _) = btql(&app, &m.key, query("project_logs", &pid)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a grant on one experiment reaches no more");
    let (s, _, _) = app.send(reqwest::Method::POST, "/btql", None, Some(query("experiment", &exp)), &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn keys_sql_cannot_address_are_matched_in_memory(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    let rows: Vec<Value> = (0..40)
        .map(|i| json!({"id": format!("r{i:02}"), "project_id": pid, "metadata": {"say \"hi\"": i % 4, "back\\slash": "v", "plain": i}}))
        .collect();
    logs3(&app, &key, rows).await;
    // A page of 3 out of 10 matches, the rest on later pages.
    let filter = json!({"op": "and", "children": [
        {"op": "eq", "left": ident(&["metadata", "say \"hi\""]), "right": lit(json!(1))},
        {"op": "ge", "left": ident(&["metadata", "plain"]), "right": lit(json!(0))},
    ]});
    let mut all = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let (s, v) = btql(
            &app,
            &key,
            json!({"query": {"from": from("project_logs", &pid), "filter": filter, "limit": 3, "cursor": cursor}}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        all.extend(row_ids(&v));
        cursor = v["cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(sorted(all), (0..40).filter(|i| i % 4 == 1).map(|i| format!("r{i:02}")).collect::<Vec<_>>());
    let (s, v) = btql(
        &app,
        &key,
        json!({"query": format!("from: project_logs('{pid}') | filter: metadata.\"back\\slash\" = 'v' | limit: 5")}),
    )
    .await;
    assert_eq!((s, row_ids(&v).len()), (StatusCode::OK, 5), "{v}");
}

// ---- the official SDK ----

const SDK_DATASET: &str = r#"
import json, braintrust
ds = braintrust.init_dataset(project="proj-q", name="ds")
for i in range(30):
    ds.insert(id=f"r{i:02d}", input={"i": i}, expected=i % 3, metadata={"split": "train" if i % 2 == 0 else "test"})
ds.flush()
train = {"op": "eq", "left": {"op": "ident", "name": ["metadata", "split"]}, "right": {"op": "literal", "value": "train"}}
filtered = braintrust.init_dataset(project="proj-q", name="ds", _internal_btql={"filter": train})
paged = list(filtered.fetch(batch_size=4))
limited = braintrust.init_dataset(project="proj-q", name="ds", _internal_btql={"filter": train, "limit": 5})
version = filtered.version
ds.insert(id="r99", input={"i": 99}, expected=0, metadata={"split": "train"})
ds.flush()
pinned = braintrust.init_dataset(project="proj-q", name="ds", version=version, _internal_btql={"filter": train})
later = braintrust.init_dataset(project="proj-q", name="ds", _internal_btql={"filter": train})
print(json.dumps({
    "ids": sorted(r["id"] for r in paged),
    "expected": sorted({r["expected"] for r in paged}),
    "limited": len(list(limited)),
    "pinned": len(list(pinned)),
    "later": len(list(later)),
}))
"#;

async fn the_python_sdk_reads_a_filtered_dataset_through_btql(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let env = support::sdk_env(&app, &key);
    let out = support::python(SDK_DATASET, env).await.expect("python");
    let got = support::last_json(&out);
    let want: Vec<String> = (0..30).step_by(2).map(|i| format!("r{i:02}")).collect();
    assert_eq!(got["ids"], json!(want), "15 train rows, fetched 4 at a time through cursors: {out}");
    assert_eq!(got["expected"], json!([0, 1, 2]));
    assert_eq!((&got["limited"], &got["pinned"], &got["later"]), (&json!(5), &json!(15), &json!(16)), "{out}");
}

/// `bt sql` (the official CLI, from npm) sends the SQL form as `{"query": "<text>",
/// "fmt": "json", "lint_mode": …}` and prints the answer's `data` and `schema`.
async fn bt_sql_runs_a_query_in_the_sql_form(b: Backend) {
    // `bt` sends its queries to the login answer's `api_url` (the server's public URL),
    // whatever `--api-url` says: the server must know its own address.
    let Some(db) = Db::fresh(b) else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let mut config = common::test_config();
    config.listen = format!("127.0.0.1:{port}").parse().expect("addr");
    config.public_url = Some(format!("http://127.0.0.1:{port}"));
    let app = TestApp::spawn_on(db, config, castellan_server::access::system_clock()).await;
    let (key, pid) = setup(&app).await;
    let rows: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("r{i}"), "project_id": pid, "metadata": {"model": format!("m{i}")}, "scores": {"accuracy": f64::from(i) / 5.0}}))
        .collect();
    logs3(&app, &key, rows).await;
    let modules = common::node_modules().expect("node modules");
    let mut env = support::sdk_env(&app, &key);
    env.push(("BRAINTRUST_BASE_URL".into(), app.base.clone()));
    let sql = format!(
        "SELECT id, metadata.model AS model FROM project_logs('{pid}') WHERE scores.accuracy > 0.5 ORDER BY id DESC LIMIT 2"
    );
    let out = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        common::run_node(&modules, &[], "bt", &["sql", "--json", "--non-interactive", "--no-input", &sql], &env)
    })
    .await
    .expect("bt task");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "bt sql failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    let answer = support::last_json(&stdout);
    assert_eq!(answer["data"], json!([{"id": "r5", "model": "m5"}, {"id": "r4", "model": "m4"}]), "{stdout}");
    assert!(answer["schema"]["items"]["properties"]["model"].is_object(), "{stdout}");
}

/// `bt datasets view` (the official CLI) lists a dataset's rows through `/btql`; a
/// member who cannot read the dataset gets nothing.
async fn bt_datasets_view_reads_a_dataset_and_is_refused_without_read(b: Backend) {
    let Some(db) = Db::fresh(b) else { return };
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let mut config = common::test_config();
    config.listen = format!("127.0.0.1:{port}").parse().expect("addr");
    config.public_url = Some(format!("http://127.0.0.1:{port}"));
    let app = TestApp::spawn_on(db, config, castellan_server::access::system_clock()).await;
    let key = app.bootstrap("acme", "ada@acme.example").await;
    let (_, p) = app.post("/v1/project", &key, json!({"name": "viewer-proj"})).await;
    let pid = p["id"].as_str().expect("id").to_owned();
    let (_, d) = app.post("/v1/dataset", &key, json!({"project_id": pid, "name": "golden"})).await;
    let did = d["id"].as_str().expect("id").to_owned();
    let rows: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("row-{i}"), "input": format!("question {i}"), "expected": format!("answer {i}")}))
        .collect();
    let (s, v) = app.post(&format!("/v1/dataset/{did}/insert"), &key, json!({"events": rows})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let outsider = support::member(&app, &key, "pat@acme.example", None).await;
    let modules = common::node_modules().expect("node modules");
    let run = |who: String| {
        let mut env = support::sdk_env(&app, &who);
        env.push(("BRAINTRUST_BASE_URL".into(), app.base.clone()));
        let modules = modules.clone();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let args = ["datasets", "view", "golden", "--project", "viewer-proj", "--json", "--no-input", "--full"];
            common::run_node(&modules, &[], "bt", &args, &env)
        })
    };
    let out = run(key.clone()).await.expect("bt task");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "bt datasets view failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    for i in 0..3 {
        assert!(stdout.contains(&format!("question {i}")) && stdout.contains(&format!("answer {i}")), "{stdout}");
    }
    let out = run(outsider.key).await.expect("bt task");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && !text.contains("question 0"), "a member without grants sees no rows: {text}");
    app.stop().await;
}

// ---- the differential test ----

const KEYS: [&str; 6] = ["a", "b", "c", "0", "k.d", "sp ace"];
const STRINGS: [&str; 10] = ["a", "B", "ab", "abc", "é", "x y", "100%", "a_b", "", "Hello World"];

fn scalar(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..6) {
        0 => Value::Null,
        1 => json!(rng.gen_bool(0.5)),
        2 => json!(rng.gen_range(-5i64..6)),
        3 => json!(f64::from(rng.gen_range(-500i32..500)) / 100.0),
        _ => json!(STRINGS[rng.gen_range(0..STRINGS.len())]),
    }
}

fn value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.gen_range(0..if depth == 0 { 6 } else { 9 }) {
        6 => Value::Array((0..rng.gen_range(0..4)).map(|_| value(rng, depth - 1)).collect()),
        7 | 8 => {
            let mut m = Map::new();
            for _ in 0..rng.gen_range(0..4) {
                m.insert(KEYS[rng.gen_range(0..KEYS.len())].to_owned(), value(rng, depth - 1));
            }
            Value::Object(m)
        }
        _ => scalar(rng),
    }
}

fn random_row(rng: &mut StdRng, n: usize) -> Map<String, Value> {
    let mut m = Map::new();
    for f in ["input", "output", "expected", "metadata", "scores", "metrics", "error"] {
        if rng.gen_bool(0.8) {
            m.insert(f.to_owned(), value(rng, 2));
        }
    }
    if rng.gen_bool(0.7) {
        m.insert("tags".into(), Value::Array((0..rng.gen_range(0..3)).map(|_| scalar(rng)).collect()));
    }
    if rng.gen_bool(0.5) {
        m.insert("span_id".into(), json!(format!("s{}", n % 7)));
        m.insert("root_span_id".into(), json!(format!("t{}", n % 5)));
        if rng.gen_bool(0.6) {
            m.insert("span_parents".into(), json!([format!("s{}", n % 3)]));
        }
    }
    m.insert("created".into(), json!(format!("2026-01-0{}T00:00:00Z", 1 + n % 9)));
    m
}

const PATHS: [&[&str]; 16] = [
    &["input"],
    &["output"],
    &["expected", "a"],
    &["metadata", "a"],
    &["metadata", "b", "c"],
    &["metadata", "k.d"],
    &["metadata", "sp ace"],
    &["scores", "0"],
    &["metrics", "a"],
    &["tags"],
    &["id"],
    &["span_id"],
    &["root_span_id"],
    &["is_root"],
    &["created"],
    &["error"],
];

fn literal_of(v: Value) -> Literal {
    match v {
        Value::Bool(b) => Literal::Bool(b),
        Value::Number(n) => Literal::Number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Literal::String(s),
        _ => Literal::Null,
    }
}

fn operand(rng: &mut StdRng) -> Expr {
    match rng.gen_range(0..10) {
        0..=5 => Expr::field(PATHS[rng.gen_range(0..PATHS.len())].iter().copied()),
        6 => Expr::Arith(
            [ArithOp::Add, ArithOp::Sub, ArithOp::Mul, ArithOp::Div][rng.gen_range(0..4)],
            Box::new(Expr::field(PATHS[rng.gen_range(0..PATHS.len())].iter().copied())),
            Box::new(Expr::Literal(literal_of(scalar(rng)))),
        ),
        _ => Expr::Literal(literal_of(scalar(rng))),
    }
}

fn filter(rng: &mut StdRng, depth: u32) -> Expr {
    let b = Box::new;
    let leaf = |rng: &mut StdRng| -> Expr {
        let x = operand(rng);
        match rng.gen_range(0..9) {
            0..=2 => Expr::Cmp(CmpOp::ALL[rng.gen_range(0..6)], b(x), b(operand(rng))),
            3 => Expr::IsNull(b(x)),
            4 => Expr::In(b(x), (0..rng.gen_range(1..4)).map(|_| literal_of(scalar(rng))).collect()),
            5 => Expr::Like {
                expr: b(x),
                pattern: ["%a%", "a_", "%", "_", "100\\%", "%b", "é%", "A%"][rng.gen_range(0..8)].into(),
                case_insensitive: rng.gen_bool(0.5),
            },
            6 => Expr::Match(
                b(Expr::field(PATHS[rng.gen_range(0..PATHS.len())].iter().copied())),
                ["a", "B", "é", "x y", "world"][rng.gen_range(0..5)].into(),
            ),
            7 => Expr::Includes(
                b(Expr::field(PATHS[rng.gen_range(0..PATHS.len())].iter().copied())),
                literal_of(scalar(rng)),
            ),
            _ => Expr::IsNotNull(b(x)),
        }
    };
    if depth == 0 {
        return leaf(rng);
    }
    match rng.gen_range(0..5) {
        0 => Expr::And((0..rng.gen_range(2..4)).map(|_| filter(rng, depth - 1)).collect()),
        1 => Expr::Or((0..rng.gen_range(2..4)).map(|_| filter(rng, depth - 1)).collect()),
        2 => Expr::Not(b(filter(rng, depth - 1))),
        _ => leaf(rng),
    }
}

async fn sql_pushdown_agrees_with_the_evaluator_on_random_rows_and_filters(b: Backend) {
    let Some(db) = Db::fresh(b) else { return };
    let store = db.open().await;
    let seed: u64 = std::env::var("CASTELLAN_BTQL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xB7_91);
    let mut rng = StdRng::seed_from_u64(seed);
    let log = EventObject { kind: EventKind::ProjectLogs, id: uuid::Uuid::new_v4() };
    let project = ProjectId(uuid::Uuid::new_v4());
    // 240 rows in 6 writes; later writes replace or delete some earlier rows.
    for w in 0..6 {
        let mut tx = store.data_write().await.expect("data tx");
        let xact = tx.next_xact_id().await.expect("xact");
        let mut writes = Vec::new();
        for i in 0..60 {
            let n = w * 40 + i;
            let id = format!("row{n:03}");
            let deleted = w > 0 && rng.gen_bool(0.1);
            let row = random_row(&mut rng, n);
            writes.push(EventWrite {
                object: log,
                project_id: project,
                root_span_id: Some(castellan_server::dataplane::rows::root_span_id(&id, &row)),
                span_id: (!deleted).then(|| castellan_server::dataplane::rows::span_id(&id, &row)),
                is_root: castellan_server::dataplane::rows::is_root(&row),
                deleted,
                is_comment: false,
                data: if deleted { "{}".into() } else { Value::Object(row).to_string() },
                row_id: id,
            });
        }
        tx.insert_events(xact, &writes).await.expect("insert");
        tx.commit().await.expect("commit");
    }
    let mut tx = store.read().await.expect("read");
    let version = tx.current_xact_id().await.expect("version");
    let all = tx.fetch_events(&EventQuery { object: log, version, after: None, limit: 10_000 }).await.expect("fetch");
    let rows: Vec<(String, XactId, Map<String, Value>)> = all
        .into_iter()
        .map(|e| {
            let (id, x) = (e.row_id.clone(), e.xact_id);
            match castellan_server::dataplane::rows::event_json(log, None, e) {
                Value::Object(m) => (id, x, m),
                _ => unreachable!("rows are objects"),
            }
        })
        .collect();
    assert!(rows.len() > 150, "{} live rows", rows.len());
    let (mut differences, mut nonempty) = (Vec::new(), 0);
    for i in 0..400 {
        let f = filter(&mut rng, 3);
        assert!(tx.pushable(&f), "every generated filter is pushed down");
        let search =
            EventSearch { object: log, version, filter: Some(f.clone()), sort: vec![], after: None, limit: 10_000 };
        let got: Vec<String> = tx
            .search_events(&search)
            .await
            .unwrap_or_else(|e| panic!("filter {i} `{}`: {e}", castellan_btql::print::expr(&f)))
            .into_iter()
            .map(|r| r.event.row_id)
            .collect();
        let want: Vec<String> =
            rows.iter().filter(|(_, _, r)| eval::test(&f, r)).map(|(id, _, _)| id.clone()).collect();
        if !want.is_empty() {
            nonempty += 1;
        }
        if got != want {
            differences.push(format!(
                "`{}`: sql {} rows, memory {} rows",
                castellan_btql::print::expr(&f),
                got.len(),
                want.len()
            ));
        }
    }
    // Sorts: the database's order is the evaluator's sort key order.
    for _ in 0..100 {
        let key = operand(&mut rng);
        let desc = rng.gen_bool(0.5);
        let search = EventSearch {
            object: log,
            version,
            filter: None,
            sort: vec![SortKey { expr: key.clone(), desc }],
            after: None,
            limit: 10_000,
        };
        let got: Vec<String> =
            tx.search_events(&search).await.expect("sorted").into_iter().map(|r| r.event.row_id).collect();
        let mut want: Vec<&(String, XactId, Map<String, Value>)> = rows.iter().collect();
        want.sort_by(|a, b| {
            let (ka, kb) = (eval::sort_key(&eval::value(&key, &a.2)), eval::sort_key(&eval::value(&key, &b.2)));
            let o = eval::cmp_keys(&ka, &kb);
            let o = if desc { o.reverse() } else { o };
            o.then(b.1.cmp(&a.1)).then_with(|| b.0.as_bytes().cmp(a.0.as_bytes()))
        });
        let want: Vec<String> = want.into_iter().map(|r| r.0.clone()).collect();
        if got != want {
            differences.push(format!(
                "sort by `{}` {}",
                castellan_btql::print::expr(&key),
                if desc { "desc" } else { "asc" }
            ));
        }
    }
    assert!(nonempty > 100, "the filters select something ({nonempty} of 400)");
    assert!(differences.is_empty(), "{} differences (seed {seed}):\n{}", differences.len(), differences.join("\n"));
    println!("{b:?}: 400 filters and 100 sorts over {} rows, 0 differences (seed {seed})", rows.len());
}
