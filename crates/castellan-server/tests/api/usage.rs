//! Usage metering and plans over real HTTP, on SQLite and PostgreSQL: exact counts
//! after real ingest through every write path, day and month grouping, deletes
//! that give nothing back, soft warnings, hard refusals that write nothing, cost
//! alerts recorded once, and who may read usage and change plans (`org_account`).

use crate::common::{self, test_config, Backend, Db, TestApp};
use crate::support::{grant, member};
use castellan_core::{ObjectType, Permission};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

on_both_backends!(
    every_write_path_is_metered_exactly_and_deleting_gives_nothing_back,
    usage_is_grouped_by_utc_day_and_month_and_bad_ranges_are_refused,
    a_soft_plan_warns_once_the_month_is_over_a_limit,
    a_hard_plan_refuses_a_write_that_would_pass_the_limit_and_writes_nothing,
    concurrent_writers_cannot_slip_past_a_hard_limit,
    each_threshold_crossing_is_recorded_and_audited_once,
    usage_and_plans_are_the_org_account_and_plan_changes_are_audited,
    a_bad_plan_is_refused_with_the_field_named_and_put_resets_to_the_default,
    the_configured_default_plan_applies_until_the_api_sets_one,
    cost_alerts_are_signed_with_a_secret_shown_once_and_never_again,
);

const DAY: i64 = 86_400 * 1_000_000;

async fn setup(app: &TestApp) -> (String, String, String) {
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, p) = app.post("/v1/project", &key, json!({"name": "p"})).await;
    let (_, orgs) = app.get("/v1/organization", &key).await;
    let org = orgs["objects"][0]["id"].as_str().expect("org").to_owned();
    (key, org, p["id"].as_str().expect("project id").to_owned())
}

async fn make(app: &TestApp, key: &str, kind: &str, pid: &str, name: &str) -> String {
    let (s, v) = app.post(&format!("/v1/{kind}"), key, json!({"project_id": pid, "name": name})).await;
    assert_eq!(s, 200, "{v}");
    v["id"].as_str().expect("id").to_owned()
}

/// `POST /logs3` as the SDK sends it; the status, the usage warning header and the body.
async fn logs3(app: &TestApp, key: &str, rows: Value) -> (StatusCode, Option<String>, Value) {
    let resp = app
        .http
        .post(format!("{}/logs3", app.base))
        .bearer_auth(key)
        .body(json!({"rows": rows, "api_version": 2}).to_string())
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let warning = resp.headers().get("x-castellan-usage-warning").map(|v| v.to_str().unwrap_or_default().to_owned());
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    common::assert_listed_error(status, &body);
    (status, warning, body)
}

fn log_rows(pid: &str, n: usize, tag: &str) -> Value {
    Value::Array(
        (0..n).map(|i| json!({"project_id": pid, "log_id": "g", "id": format!("{tag}-{i}"), "input": i})).collect(),
    )
}

async fn usage(app: &TestApp, key: &str, query: &str) -> Value {
    let (s, v) = app.get(&format!("/v1/usage?{query}"), key).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn today(app: &TestApp, key: &str) -> Value {
    usage(app, key, "").await["current_month"].clone()
}

async fn plan(app: &TestApp, key: &str, org: &str, method: Method, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = app.send(method, &format!("/v1/organization/{org}/plan"), Some(key), Some(body), &[]).await;
    (s, v)
}

/// The bytes of every live row version stored (the JSON text, in bytes), read
/// straight from the database.
async fn stored_bytes(db: &Db) -> i64 {
    match db {
        Db::Sqlite(path) => {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true))
                .await
                .expect("open");
            let n: i64 =
                sqlx::query_scalar("SELECT COALESCE(SUM(length(CAST(data AS BLOB))), 0) FROM events WHERE NOT deleted")
                    .fetch_one(&pool)
                    .await
                    .expect("sum");
            pool.close().await;
            n
        }
        Db::Postgres { url, schema } => {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await.expect("connect");
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT COALESCE(SUM(octet_length(data::text)), 0)::bigint FROM {schema}.events WHERE NOT deleted"
            ))
            .fetch_one(&pool)
            .await
            .expect("sum");
            pool.close().await;
            n
        }
    }
}

async fn every_write_path_is_metered_exactly_and_deleting_gives_nothing_back(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, org, pid) = setup(&app).await;
    let exp = make(&app, &key, "experiment", &pid, "e").await;
    let ds = make(&app, &key, "dataset", &pid, "d").await;
    let zero = today(&app, &key).await;
    assert_eq!((zero["spans"]["used"].as_i64(), zero["scores"]["used"].as_i64()), (Some(0), Some(0)), "{zero}");

    // /logs3: three log rows (2 + 1 + 0 scores; a null score is none) and one
    // experiment row (1 score): 4 spans, 4 scores.
    let rows = json!([
        {"project_id": pid, "log_id": "g", "id": "r1", "input": "a", "scores": {"a": 1, "b": 0.5, "c": null}},
        {"project_id": pid, "log_id": "g", "id": "r2", "input": "b", "scores": {"a": 0}},
        {"project_id": pid, "log_id": "g", "id": "r3", "input": "c"},
        {"experiment_id": exp, "id": "x1", "input": "q", "scores": {"acc": 0.5}},
    ]);
    assert_eq!(logs3(&app, &key, rows).await.0, 200);
    // Experiment insert: 2 spans, 4 scores.
    let (s, v) = app
        .post(
            &format!("/v1/experiment/{exp}/insert"),
            &key,
            json!({"events": [{"id": "x2", "input": 1, "scores": {"x": 1, "y": 0}}, {"id": "x3", "input": 2, "scores": {"x": 0, "y": 1}}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Feedback: the merged row version (1 span, the 1 score it adds) and the comment's row (1 span).
    let (s, v) = app
        .post(
            &format!("/v1/project_logs/{pid}/feedback"),
            &key,
            json!({"feedback": [{"id": "r1", "scores": {"human": 1}, "comment": "good"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Dataset insert: 1 span.
    let (s, v) = app
        .post(
            &format!("/v1/dataset/{ds}/insert"),
            &key,
            json!({"events": [{"id": "d1", "input": "i", "expected": "o"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // OTLP: 1 span.
    let (s, _, v) = app
        .send(
            Method::POST,
            "/otel/v1/traces",
            Some(&key),
            Some(json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174", "name": "s", "attributes": [{"key": "braintrust.parent",
                "value": {"stringValue": format!("project_id:{pid}")}}]}]}]}]})),
            &[],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // An attachment of 1000 bytes.
    let (s, up) = app.post("/attachment", &key, json!({"key": "k1", "filename": "a.bin", "org_id": org})).await;
    assert_eq!(s, 200, "{up}");
    let put = app.http.put(up["signedUrl"].as_str().expect("url")).body(vec![7u8; 1000]).send().await.expect("put");
    assert_eq!(put.status(), 200);

    let rows_bytes = stored_bytes(&app.db).await;
    let v = usage(&app, &key, "").await;
    let month = &v["current_month"];
    assert_eq!(month["spans"]["used"], 10, "4 + 2 + 2 + 1 + 1 spans: {v}");
    assert_eq!(month["scores"]["used"], 9, "4 + 4 + 1 scores: {v}");
    assert_eq!(month["processed_bytes"]["used"], rows_bytes + 1000, "every stored row version and the attachment: {v}");
    assert_eq!(v["totals"]["spans"], 10, "{v}");
    let periods = v["periods"].as_array().expect("periods");
    let day = periods.last().expect("today");
    assert_eq!((day["spans"].as_i64(), day["scores"].as_i64()), (Some(10), Some(9)), "{v}");
    assert_eq!(month["spans"]["limit"], Value::Null, "no limit by default: {v}");

    // Deleting rows, and then the whole project, gives nothing back.
    let del = json!([{"project_id": pid, "log_id": "g", "id": "r3", "_object_delete": true}]);
    assert_eq!(logs3(&app, &key, del).await.0, 200);
    let (s, _) = app.delete(&format!("/v1/project/{pid}"), &key).await;
    assert_eq!(s, 200);
    let after = usage(&app, &key, "").await;
    assert_eq!(after["current_month"], v["current_month"], "a delete is not usage and lowers nothing");
    app.stop().await;
}

async fn usage_is_grouped_by_utc_day_and_month_and_bad_ranges_are_refused(b: Backend) {
    let Some((app, offset)) = TestApp::spawn_with_clock(b).await else { return };
    let (key, _org, pid) = setup(&app).await;
    // Start at the next 1st of a month, 00:00 UTC (from the server's own clock).
    let now = app.state.now();
    let t = chrono::DateTime::from_timestamp_micros(now).expect("now");
    use chrono::Datelike;
    let next = t.date_naive().with_day(1).expect("1st").checked_add_months(chrono::Months::new(1)).expect("next month");
    let start = next.and_hms_opt(0, 0, 1).expect("time").and_utc().timestamp_micros();
    offset.store(start - now, Ordering::SeqCst);
    // Day 1: 2 rows; day 2: 3 rows; 40 days later (the month after): 4 rows.
    assert_eq!(logs3(&app, &key, log_rows(&pid, 2, "a")).await.0, 200);
    offset.fetch_add(DAY, Ordering::SeqCst);
    assert_eq!(logs3(&app, &key, log_rows(&pid, 3, "b")).await.0, 200);
    offset.fetch_add(40 * DAY, Ordering::SeqCst);
    assert_eq!(logs3(&app, &key, log_rows(&pid, 4, "c")).await.0, 200);
    let d1 = next;
    let d2 = next.succ_opt().expect("day 2");
    let d3 = d2 + chrono::Days::new(40);
    let fmt = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();

    let v = usage(&app, &key, &format!("from={}&to={}", fmt(d1), fmt(d3))).await;
    let periods = v["periods"].as_array().expect("periods");
    assert_eq!(periods.len(), 42, "every day, with or without usage: {v}");
    assert_eq!(periods[0]["period"], fmt(d1));
    assert_eq!(periods[0]["spans"], 2);
    assert_eq!(periods[1]["spans"], 3);
    assert_eq!(periods[2]["spans"], 0);
    assert_eq!(periods[41]["period"], fmt(d3));
    assert_eq!(periods[41]["spans"], 4);
    assert_eq!(v["totals"]["spans"], 9);
    assert_eq!(v["current_month"]["spans"]["used"], 4, "the current month is the 4 rows' month: {v}");

    let m = usage(&app, &key, &format!("from={}&to={}&granularity=month", fmt(d1), fmt(d3))).await;
    let months: Vec<(String, i64)> = m["periods"]
        .as_array()
        .expect("periods")
        .iter()
        .map(|p| (p["period"].as_str().unwrap_or_default().to_owned(), p["spans"].as_i64().unwrap_or(-1)))
        .collect();
    let mon = |d: chrono::NaiveDate| d.format("%Y-%m").to_string();
    assert_eq!(months, [(mon(d1), 5), (mon(d3), 4)], "{m}");
    // A month is its days within the range.
    let part = usage(&app, &key, &format!("from={}&to={}&granularity=month", fmt(d2), fmt(d2))).await;
    assert_eq!(part["periods"][0]["spans"], 3, "{part}");

    for (q, says) in [
        ("from=2026-13-01", "`from` must be a date"),
        ("to=yesterday", "`to` must be a date"),
        ("from=2026-03-02&to=2026-03-01", "must not be after"),
        ("from=2024-01-01&to=2026-01-01", "at most 366 days"),
        ("from=2020-01-01&to=2026-01-01&granularity=month", "at most 36 months"),
        ("granularity=week", "`granularity` must be `day` or `month`"),
    ] {
        let (s, e) = app.get(&format!("/v1/usage?{q}"), &key).await;
        assert_eq!(s, 400, "{q}: {e}");
        assert_eq!(e["code"], "invalid_parameter", "{q}: {e}");
        assert!(e["message"].as_str().unwrap_or_default().contains(says), "{q}: {e}");
    }
    app.stop().await;
}

async fn a_soft_plan_warns_once_the_month_is_over_a_limit(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, org, pid) = setup(&app).await;
    let (s, p) = plan(&app, &key, &org, Method::PATCH, json!({"limits": {"spans": 3}})).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!((p["enforcement"].as_str(), p["source"].as_str()), (Some("soft"), Some("api")), "{p}");
    let (s, warning, _) = logs3(&app, &key, log_rows(&pid, 3, "a")).await;
    assert_eq!((s.as_u16(), warning), (200, None), "at the limit is not over it");
    let (s, warning, _) = logs3(&app, &key, log_rows(&pid, 2, "b")).await;
    assert_eq!(s, 200, "a soft plan refuses nothing");
    let warning = warning.expect("over the limit: a warning");
    assert!(warning.contains("spans 5 of 3"), "{warning}");
    let m = today(&app, &key).await;
    assert_eq!(m["spans"]["used"], 5);
    assert_eq!(m["spans"]["percent"], 166.67, "{m}");
    assert_eq!(m["processed_bytes"]["percent"], Value::Null, "{m}");
    app.stop().await;
}

async fn fetch_ids(app: &TestApp, key: &str, pid: &str) -> Vec<String> {
    let (s, v) = app.post(&format!("/v1/project_logs/{pid}/fetch"), key, json!({})).await;
    assert_eq!(s, 200, "{v}");
    let mut ids: Vec<String> =
        v["events"].as_array().expect("events").iter().filter_map(|e| e["id"].as_str().map(str::to_owned)).collect();
    ids.sort();
    ids
}

async fn a_hard_plan_refuses_a_write_that_would_pass_the_limit_and_writes_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, org, pid) = setup(&app).await;
    let (s, p) = plan(
        &app,
        &key,
        &org,
        Method::PATCH,
        json!({"limits": {"spans": 3, "processed_bytes": 100000}, "enforcement": "hard"}),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(logs3(&app, &key, log_rows(&pid, 2, "a")).await.0, 200);
    let (s, _, e) = logs3(&app, &key, log_rows(&pid, 2, "b")).await;
    assert_eq!(s, 429, "{e}");
    assert_eq!(e["code"], "plan_limit_exceeded");
    let msg = e["message"].as_str().unwrap_or_default();
    for part in ["allows 3 spans per month", "2 are used", "adds 2", "would make 4", "`spans`", "nothing was written"] {
        assert!(msg.contains(part), "`{part}` in: {msg}");
    }
    assert_eq!(fetch_ids(&app, &key, &pid).await, ["a-0", "a-1"], "nothing of the refused request was written");
    // The same through the per-object insert, and a merge (feedback) that would pass.
    let (s, e) = app
        .post(&format!("/v1/project_logs/{pid}/insert"), &key, json!({"events": [{"id": "c1"}, {"id": "c2"}]}))
        .await;
    assert_eq!((s.as_u16(), e["code"].as_str()), (429, Some("plan_limit_exceeded")), "{e}");
    // Exactly at the limit is allowed; one more is not.
    assert_eq!(logs3(&app, &key, log_rows(&pid, 1, "c")).await.0, 200);
    let (s, e) = app
        .post(
            &format!("/v1/project_logs/{pid}/feedback"),
            &key,
            json!({"feedback": [{"id": "a-0", "scores": {"h": 1}}]}),
        )
        .await;
    assert_eq!((s.as_u16(), e["code"].as_str()), (429, Some("plan_limit_exceeded")), "{e}");
    assert_eq!(today(&app, &key).await["spans"]["used"], 3);
    assert_eq!(fetch_ids(&app, &key, &pid).await, ["a-0", "a-1", "c-0"]);
    // An attachment that would pass the bytes limit is refused, its bytes not stored.
    let (s, up) = app.post("/attachment", &key, json!({"key": "big", "org_id": org})).await;
    assert_eq!(s, 200, "{up}");
    let put = app.http.put(up["signedUrl"].as_str().expect("url")).body(vec![1u8; 200_000]).send().await.expect("put");
    assert_eq!(put.status(), 429);
    let body: Value = put.json().await.expect("json");
    assert!(body["message"].as_str().unwrap_or_default().contains("`processed_bytes`"), "{body}");
    let (_, info) = app.get(&format!("/attachment?key=big&org_id={org}"), &key).await;
    let get = app.http.get(info["downloadUrl"].as_str().expect("download url")).send().await.expect("get");
    assert_eq!(get.status(), 404, "the refused upload stored nothing");
    // Raising the limit lets writes through again.
    let (s, _) = plan(&app, &key, &org, Method::PATCH, json!({"limits": {"spans": null}})).await;
    assert_eq!(s, 200);
    assert_eq!(logs3(&app, &key, log_rows(&pid, 2, "d")).await.0, 200);
    app.stop().await;
}

async fn concurrent_writers_cannot_slip_past_a_hard_limit(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, org, pid) = setup(&app).await;
    let (s, _) = plan(&app, &key, &org, Method::PATCH, json!({"limits": {"spans": 7}, "enforcement": "hard"})).await;
    assert_eq!(s, 200);
    // A second replica on the same database writes too.
    let other = TestApp::spawn_on(app.db.clone(), test_config(), castellan_server::access::system_clock()).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (http, base, key, pid) = (
            app.http.clone(),
            if i % 2 == 0 { app.base.clone() } else { other.base.clone() },
            key.clone(),
            pid.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let rows = json!({"rows": [{"project_id": pid, "log_id": "g", "id": format!("w{i}")}], "api_version": 2});
            http.post(format!("{base}/logs3"))
                .bearer_auth(key)
                .body(rows.to_string())
                .send()
                .await
                .expect("post")
                .status()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task").as_u16() {
            200 => ok += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 7, "exactly the limit's worth of writes got in");
    assert_eq!(fetch_ids(&app, &key, &pid).await.len(), 7);
    assert_eq!(today(&app, &key).await["spans"]["used"], 7);
    other.stop().await;
    app.stop().await;
}

async fn crossing_audits(app: &TestApp, key: &str) -> Vec<Value> {
    let (s, v) = app.get("/v1/audit_log?event_type=usage.threshold_crossed", key).await;
    assert_eq!(s, 200, "{v}");
    v["objects"].as_array().cloned().unwrap_or_default()
}

async fn each_threshold_crossing_is_recorded_and_audited_once(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, org, pid) = setup(&app).await;
    let rx = crate::support::Receiver::start().await;
    let (s, p) = plan(
        &app,
        &key,
        &org,
        Method::PATCH,
        json!({"limits": {"spans": 10}, "alert_thresholds": [100, 50], "alert_webhook_url": format!("{}/costs", rx.base)}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(p["alert_thresholds"], json!([50, 100]), "{p}");
    let secret = p["alert_signing_secret"].as_str().expect("a signing secret, shown once").to_owned();
    assert_eq!(logs3(&app, &key, log_rows(&pid, 4, "a")).await.0, 200); // 40 %
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(crossing_audits(&app, &key).await.is_empty(), "nothing crossed yet");
    assert_eq!(logs3(&app, &key, log_rows(&pid, 2, "b")).await.0, 200); // 60 %: 50 crossed
    for i in 0..3 {
        assert_eq!(logs3(&app, &key, log_rows(&pid, 1, &format!("c{i}"))).await.0, 200);
        // 70, 80, 90 %
    }
    assert_eq!(logs3(&app, &key, log_rows(&pid, 5, "d")).await.0, 200); // 140 %: 100 crossed
    assert_eq!(logs3(&app, &key, log_rows(&pid, 5, "e")).await.0, 200); // 190 %: nothing new
    for _ in 0..50 {
        if crossing_audits(&app, &key).await.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Settled once: more time brings no second record.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audits = crossing_audits(&app, &key).await;
    let mut seen: Vec<(i64, i64, String)> = audits
        .iter()
        .map(|a| {
            (
                a["after"]["threshold"].as_i64().unwrap_or(-1),
                a["after"]["used"].as_i64().unwrap_or(-1),
                a["resource_type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [(50, 6, "org_account".to_owned()), (100, 14, "org_account".to_owned())], "{audits:?}");
    assert!(audits.iter().all(|a| a["actor_id"].is_null() && a["after"]["metric"] == "spans"), "{audits:?}");
    // Each crossing reached the plan's webhook once.
    let hits = rx.wait_for(2).await;
    let mut sent: Vec<(i64, i64)> = hits
        .iter()
        .map(|h| {
            assert_eq!(h.path, "/costs");
            assert_eq!(h.headers["x-castellan-event"], "cost_alert");
            let sig = h.headers["x-castellan-signature"].to_str().expect("signature");
            assert!(crate::support::verify_signature(&secret, sig, &h.raw), "signed: {sig}");
            assert_eq!(h.body["alert"]["metric"], "spans");
            assert_eq!(h.body["details"]["limit"], 10);
            (
                h.body["alert"]["threshold_percent"].as_i64().unwrap_or(-1),
                h.body["details"]["used"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    sent.sort();
    assert_eq!(sent, [(50, 6), (100, 14)], "{hits:?}");
    let (s, ds) = app.get(&format!("/v1/organization/{org}/plan/alerts"), &key).await;
    assert_eq!(s, 200, "{ds}");
    let statuses: Vec<_> = ds["objects"].as_array().expect("deliveries").iter().map(|d| d["status"].clone()).collect();
    assert_eq!(statuses, [json!("ok"), json!("ok")], "{ds}");
    // A restart settles nothing again, and sends nothing again.
    let again = TestApp::spawn_on(app.db.clone(), test_config(), castellan_server::access::system_clock()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(crossing_audits(&again, &key).await.len(), 2);
    assert_eq!(rx.hits().len(), 2);
    again.stop().await;
    app.stop().await;
}

async fn usage_and_plans_are_the_org_account_and_plan_changes_are_audited(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, org, _pid) = setup(&app).await;
    let engineer = member(&app, &key, "eng@example.com", Some("Engineers")).await;
    let viewer = member(&app, &key, "view@example.com", Some("Viewers")).await;
    let plain = member(&app, &key, "plain@example.com", None).await;
    let outsider = app.bootstrap("other", "zed@example.com").await;
    let plan_path = format!("/v1/organization/{org}/plan");
    for (who, k) in [("engineer", &engineer.key), ("viewer", &viewer.key), ("member", &plain.key)] {
        let (s, e) = app.get("/v1/usage", k).await;
        assert_eq!((s.as_u16(), e["code"].as_str()), (403, Some("forbidden")), "{who}: {e}");
        assert_eq!(app.get(&plan_path, k).await.0, 403, "{who}");
        assert_eq!(plan(&app, k, &org, Method::PATCH, json!({"enforcement": "hard"})).await.0, 403, "{who}");
    }
    let (s, e) = app.get(&format!("/v1/usage?org_id={org}"), &outsider).await;
    assert_eq!(s, 404, "another org's owner learns nothing: {e}");
    assert_eq!(app.get(&plan_path, &outsider).await.0, 404);
    assert_eq!(app.get("/v1/usage?org_name=acme", &outsider).await.0, 404);
    assert_eq!(app.get(&format!("/v1/organization/{}/plan", uuid::Uuid::new_v4()), &key).await.0, 404);
    // `read` on org_account lets a viewer read usage and the plan, not change it.
    let org_id = uuid::Uuid::parse_str(&org).expect("uuid");
    grant(&app, &key, viewer.user, ObjectType::OrgAccount, org_id, Permission::Read).await;
    assert_eq!(app.get(&format!("/v1/usage?org_id={org}"), &viewer.key).await.0, 200);
    assert_eq!(app.get(&plan_path, &viewer.key).await.0, 200);
    assert_eq!(plan(&app, &viewer.key, &org, Method::PATCH, json!({"enforcement": "hard"})).await.0, 403);
    grant(&app, &key, viewer.user, ObjectType::OrgAccount, org_id, Permission::Update).await;
    let (s, p) = plan(
        &app,
        &viewer.key,
        &org,
        Method::PATCH,
        json!({"limits": {"scores": 500}, "alert_webhook_url": "https://hooks.example/usage"}),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["limits"]["scores"], 500);
    assert_eq!(p["alert_webhook_url"], "https://hooks.example/usage");
    let (s, v) = app.get("/v1/audit_log?event_type=plan.updated", &key).await;
    assert_eq!(s, 200);
    let rec = &v["objects"][0];
    assert_eq!(rec["actor_id"].as_str(), Some(viewer.user.0.to_string().as_str()), "{rec}");
    assert_eq!(rec["before"]["source"], "config", "{rec}");
    assert_eq!(rec["before"]["limits"]["scores"], Value::Null, "{rec}");
    assert_eq!(rec["after"]["limits"]["scores"], 500, "{rec}");
    app.stop().await;
}

async fn a_bad_plan_is_refused_with_the_field_named_and_put_resets_to_the_default(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, org, _pid) = setup(&app).await;
    let (s, p) = plan(&app, &key, &org, Method::GET, Value::Null).await;
    assert_eq!(s, 200);
    assert_eq!(p["source"], "config");
    assert_eq!(p["alert_thresholds"], json!([50, 75, 90, 100]));
    for (body, says) in [
        (json!({"enforcement": "strict"}), "`enforcement`"),
        (json!({"limits": {"spans": -1}}), "`limits.spans`"),
        (json!({"alert_thresholds": [0, 50]}), "`alert_thresholds`"),
        (json!({"alert_webhook_url": "ftp://example.com"}), "`alert_webhook_url`"),
        (json!({"limit": {}}), "limit"),
        (json!({"limits": {"span": 3}}), "span"),
    ] {
        let (s, e) = plan(&app, &key, &org, Method::PATCH, body.clone()).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert_eq!(e["code"], "invalid_body", "{body}: {e}");
        assert!(e["message"].as_str().unwrap_or_default().contains(says), "{body}: {e}");
    }
    let (_, p) = plan(&app, &key, &org, Method::GET, Value::Null).await;
    assert_eq!(p["source"], "config", "a refused change changed nothing: {p}");
    let (s, _) = plan(&app, &key, &org, Method::PATCH, json!({"limits": {"spans": 5}, "enforcement": "hard"})).await;
    assert_eq!(s, 200);
    let (s, p) = plan(&app, &key, &org, Method::PUT, json!({"alert_thresholds": [80]})).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["limits"]["spans"], Value::Null, "PUT starts from the default: {p}");
    assert_eq!(p["enforcement"], "soft");
    assert_eq!(p["alert_thresholds"], json!([80]));
    app.stop().await;
}

async fn the_configured_default_plan_applies_until_the_api_sets_one(b: Backend) {
    let Some(db) = Db::fresh(b) else { return };
    let mut config = test_config();
    config.plan_limits.spans = Some(2);
    config.plan_limits.enforcement = Some("hard".into());
    let app = TestApp::spawn_on(db, config, castellan_server::access::system_clock()).await;
    let (key, org, pid) = setup(&app).await;
    let (_, p) = plan(&app, &key, &org, Method::GET, Value::Null).await;
    assert_eq!((p["limits"]["spans"].as_i64(), p["enforcement"].as_str()), (Some(2), Some("hard")), "{p}");
    assert_eq!(logs3(&app, &key, log_rows(&pid, 3, "a")).await.0, 429);
    assert_eq!(logs3(&app, &key, log_rows(&pid, 2, "b")).await.0, 200);
    let (s, _) = plan(&app, &key, &org, Method::PATCH, json!({"limits": {"spans": 10}})).await;
    assert_eq!(s, 200);
    assert_eq!(logs3(&app, &key, log_rows(&pid, 3, "c")).await.0, 200, "the API's plan overrides the default");
    app.stop().await;
}

async fn cost_alerts_are_signed_with_a_secret_shown_once_and_never_again(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, org, pid) = setup(&app).await;
    let rx = crate::support::Receiver::start().await;
    let url = format!("{}/costs", rx.base);
    // Setting the first webhook URL generates the secret: in this answer only.
    let (s, p) = plan(
        &app,
        &key,
        &org,
        Method::PATCH,
        json!({"limits": {"spans": 4}, "alert_thresholds": [50, 100],
        "alert_webhook_url": url}),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    let first = p["alert_signing_secret"].as_str().expect("shown once").to_owned();
    assert!(first.starts_with("whsec_") && first.len() == 6 + 64, "{first}");
    let generated = p["alert_signing_secret_updated_at"].clone();
    assert!(generated.is_string(), "{p}");
    let (_, shown) = plan(&app, &key, &org, Method::GET, Value::Null).await;
    assert!(shown.get("alert_signing_secret").is_none(), "never shown again: {shown}");
    assert_eq!(shown["alert_signing_secret_updated_at"], generated);
    // Other changes keep it (and do not show it).
    let (_, p) = plan(&app, &key, &org, Method::PATCH, json!({"alert_thresholds": [50, 100, 150]})).await;
    assert!(p.get("alert_signing_secret").is_none() && p["alert_signing_secret_updated_at"] == generated, "{p}");
    // Rotation: a new one, shown once.
    let (s, p) = plan(&app, &key, &org, Method::PATCH, json!({"rotate_alert_signing_secret": true})).await;
    assert_eq!(s, 200, "{p}");
    let secret = p["alert_signing_secret"].as_str().expect("the new one, shown once").to_owned();
    assert_ne!(secret, first);
    assert_ne!(p["alert_signing_secret_updated_at"], generated, "{p}");
    // A crossing is delivered signed with the current secret, not the old one.
    assert_eq!(logs3(&app, &key, log_rows(&pid, 2, "a")).await.0, 200); // 50 %
    let hits = rx.wait_for(1).await;
    let h = &hits[0];
    let sig = h.headers["x-castellan-signature"].to_str().expect("signed").to_owned();
    let (t, _) = sig.split_once(',').expect("t=…,v1=…");
    let t: i64 = t.strip_prefix("t=").expect("t=").parse().expect("unix seconds");
    assert!((t - chrono::Utc::now().timestamp()).abs() < 60, "{sig}");
    assert!(crate::support::verify_signature(&secret, &sig, &h.raw), "verifies over the exact body: {sig}");
    assert!(!crate::support::verify_signature(&first, &sig, &h.raw), "the rotated-out secret does not");
    let mut tampered = h.raw.clone();
    tampered.push(b' ');
    assert!(!crate::support::verify_signature(&secret, &sig, &tampered));
    assert_eq!(h.headers["x-castellan-event"], "cost_alert");
    // The secret is in no answer, delivery record or audit record, nor stored open.
    let mut ds = Value::Null;
    for _ in 0..50 {
        ds = app.get(&format!("/v1/organization/{org}/plan/alerts"), &key).await.1;
        if ds["objects"][0]["status"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ds["objects"][0]["status"], "ok", "{ds}");
    let (_, audit) = app.get("/v1/audit_log?limit=1000", &key).await;
    let (_, plan_audit) = app.get("/v1/audit_log?event_type=plan.updated", &key).await;
    let rotated = plan_audit["objects"].as_array().expect("records").iter().any(|r| {
        r["before"]["alert_signing_secret_updated_at"] == generated
            && r["after"]["alert_signing_secret_updated_at"] != generated
    });
    assert!(rotated, "the rotation is audited by its time: {plan_audit}");
    let dump = common::dump_database(&app.db).await;
    for (what, text) in [
        ("deliveries", ds.to_string()),
        ("audit log", audit.to_string()),
        ("database", dump),
        ("plan", shown.to_string()),
    ] {
        for s in [&first, &secret] {
            assert!(!text.contains(s.as_str()) && !text.contains(&s[6..]), "a signing secret is in the {what}");
        }
    }
    // No URL, no secret; rotating then is refused and changes nothing.
    let (_, p) = plan(&app, &key, &org, Method::PATCH, json!({"alert_webhook_url": null})).await;
    assert_eq!(p["alert_signing_secret_updated_at"], Value::Null, "{p}");
    let (s, e) = plan(&app, &key, &org, Method::PATCH, json!({"rotate_alert_signing_secret": true})).await;
    assert_eq!((s.as_u16(), e["code"].as_str()), (400, Some("invalid_body")), "{e}");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("`alert_webhook_url`")), "{e}");
    let (_, after) = plan(&app, &key, &org, Method::GET, Value::Null).await;
    assert_eq!(after["alert_webhook_url"], Value::Null, "{after}");
    // A URL set again gets a new secret.
    let (_, p) = plan(&app, &key, &org, Method::PATCH, json!({"alert_webhook_url": url})).await;
    let third = p["alert_signing_secret"].as_str().expect("a new secret").to_owned();
    assert!(third != secret && third != first);
    app.stop().await;
}

/// The official Python SDK (`braintrust` from PyPI, unmodified) meets a hard limit:
/// its logger reports the 429 with its message and gives up after its bounded
/// retries (3 attempts by default), instead of retrying forever.
mod python_sdk {
    use super::*;
    use crate::support::{last_json, python, sdk_env};

    on_both_backends!(
        #[ignore = "needs the official Braintrust clients: scripts/test runs it"]
        the_python_logger_reports_a_hard_limit_and_gives_up,
    );

    const SCRIPT: &str = r#"
import json, time, braintrust
logger = braintrust.init_logger(project="p")
for i in range(3):
    logger.log(input={"i": i}, output=i, scores={"s": 1})
t = time.time()
error = None
try:
    logger.flush()
except Exception as e:
    # The SDK raises a group of the failed flushes' errors.
    error = " | ".join(str(x) for x in (getattr(e, "exceptions", None) or [e]))
print(json.dumps({"secs": time.time() - t, "error": error}))
"#;

    async fn the_python_logger_reports_a_hard_limit_and_gives_up(b: Backend) {
        let Some(app) = TestApp::spawn(b).await else { return };
        let (key, org, pid) = setup(&app).await;
        let (s, _) =
            plan(&app, &key, &org, Method::PATCH, json!({"limits": {"spans": 2}, "enforcement": "hard"})).await;
        assert_eq!(s, 200);
        let mut env: Vec<(String, String)> =
            sdk_env(&app, &key).into_iter().filter(|(k, _)| k != "BRAINTRUST_NUM_RETRIES").collect();
        env.push(("BRAINTRUST_SYNC_FLUSH".into(), "1".into()));
        let Some(out) = python(SCRIPT, env).await else { return };
        let v = last_json(&out);
        let error = v["error"].as_str().unwrap_or_default();
        assert!(error.contains("429") && error.contains("plan_limit_exceeded"), "{v}");
        assert!(error.contains("allows 2 spans per month"), "{v}");
        let secs = v["secs"].as_f64().unwrap_or(f64::MAX);
        assert!(secs < 30.0, "the logger gave up after its bounded retries: {v}");
        assert!(fetch_ids(&app, &key, &pid).await.is_empty(), "nothing was written");
        assert_eq!(today(&app, &key).await["spans"]["used"], 0);
        app.stop().await;
    }
}
