//! Alerts and notifications over real HTTP on SQLite and PostgreSQL: `logs` alerts
//! counting new matching spans and delivering Braintrust's payload to a receiver the
//! test runs on loopback (signed, with custom headers, retried), tests, Slack and
//! PagerDuty actions against stand-ins of their APIs, `environment_update`
//! automations, the scheduler running alerts on its own, and the outbound guard.

use crate::common;
use crate::support;
use support::{verify_signature as verify, Receiver};

use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

on_both_backends!(
    logs_alerts_count_new_matching_spans_and_deliver_signed_webhooks,
    deliveries_retry_transient_failures_and_stop_at_refusals,
    a_test_sends_only_when_recent_logs_match,
    slack_and_pagerduty_actions_reach_their_apis_with_the_orgs_secrets,
    environment_changes_fire_their_automations,
    the_scheduler_checks_due_alerts_on_its_own,
    outbound_calls_to_private_addresses_are_refused_unless_allowed,
    retention_deletes_the_attachments_and_stale_payloads_of_swept_rows
);

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

async fn project(app: &TestApp, key: &str, name: &str) -> String {
    let (s, v) = app.post("/v1/project", key, json!({"name": name})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    id(&v)
}

async fn log(app: &TestApp, key: &str, p: &str, rows: Vec<Value>) {
    let (s, v) = app.post(&format!("/v1/project_logs/{p}/insert"), key, json!({"events": rows})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

fn rows(level: &str, n: usize, tag: &str) -> Vec<Value> {
    (0..n).map(|i| json!({"id": format!("{tag}-{i}"), "input": "q", "metadata": {"level": level}})).collect()
}

fn alert(p: &str, name: &str, action: Value) -> Value {
    json!({"project_id": p, "name": name, "config": {
        "event_type": "logs", "btql_filter": "metadata.level = 'error'", "interval_seconds": 3600, "action": action}})
}

async fn logs_alerts_count_new_matching_spans_and_deliver_signed_webhooks(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let p = project(&app, &owner, "checkout").await;
    let rx = Receiver::start().await;
    let hook = format!("{}/hook?token=query-secret-77", rx.base);
    let (s, a) = app
        .post(
            "/v1/project_automation",
            &owner,
            alert(&p, "errors", json!({"type": "webhook", "url": hook, "headers": {"X-Api-Key": "header-secret-42"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let secret = a["signing_secret"].as_str().expect("signing secret shown once").to_owned();
    let aid = id(&a);
    log(&app, &owner, &p, rows("error", 3, "e")).await;
    log(&app, &owner, &p, rows("info", 2, "i")).await;

    let (s, run) = app.post(&format!("/v1/project_automation/{aid}/run"), &owner, json!({})).await;
    assert_eq!((s, run["status"].as_str(), run["count"].as_i64()), (StatusCode::OK, Some("ok"), Some(3)), "{run}");
    let hits = rx.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let h = &hits[0];
    assert_eq!(h.path, "/hook?token=query-secret-77");
    let body = &h.body;
    assert_eq!(body["organization"]["name"], "acme");
    assert_eq!(body["project"], json!({"id": p, "name": "checkout"}));
    assert_eq!(body["automation"]["id"], aid);
    assert_eq!(body["automation"]["name"], "errors");
    assert_eq!(body["automation"]["event_type"], "logs");
    assert_eq!(body["automation"]["btql_filter"], "metadata.level = 'error'");
    assert_eq!(body["automation"]["interval_seconds"], 3600);
    assert!(body["automation"]["url"]
        .as_str()
        .is_some_and(|u| u.ends_with(&format!("/configuration/alerts?aid={aid}"))));
    assert_eq!(body["details"]["is_test"], false);
    assert_eq!(body["details"]["count"], 3);
    assert_eq!(body["details"]["message"], "errors: 3 logs triggered alert in the last 1 hour");
    assert!(body["details"]["related_logs_url"].as_str().is_some_and(|u| u.contains("/p/checkout/logs")), "{body}");
    assert!(body["details"]["time_start"].as_str().is_some() && body["details"]["time_end"].as_str().is_some());
    assert_eq!(h.headers["x-api-key"], "header-secret-42");
    assert_eq!(h.headers["content-type"], "application/json");
    assert_eq!(h.headers["x-castellan-event"], "logs");
    let sig = h.headers["x-castellan-signature"].to_str().expect("signature");
    assert!(verify(&secret, sig, &h.raw), "the signature verifies over the exact body: {sig}");
    assert!(!verify("whsec_wrong", sig, &h.raw));

    // Nothing new: no notification. New spans: only they count.
    let (_, run) = app.post(&format!("/v1/project_automation/{aid}/run"), &owner, json!({})).await;
    assert_eq!((run["status"].as_str(), run["count"].as_i64()), (Some("ok"), Some(0)), "{run}");
    assert_eq!(rx.hits().len(), 1);
    log(&app, &owner, &p, rows("error", 1, "late")).await;
    log(&app, &owner, &p, rows("info", 4, "noise")).await;
    let (_, run) = app.post(&format!("/v1/project_automation/{aid}/run"), &owner, json!({})).await;
    assert_eq!(run["count"], 1, "{run}");
    let hits = rx.hits();
    assert_eq!(
        (hits.len(), hits[1].body["details"]["message"].as_str()),
        (2, Some("errors: 1 log triggered alert in the last 1 hour"))
    );

    // The delivery log: newest first, the URL without its query, never a secret.
    let viewer = support::member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    let (s, ds) = app.get(&format!("/v1/project_automation/{aid}/deliveries"), &viewer.key).await;
    assert_eq!(s, StatusCode::OK, "{ds}");
    let list = ds["objects"].as_array().expect("deliveries");
    assert_eq!(list.len(), 2, "{ds}");
    assert_eq!(list[0]["status"], "ok");
    assert_eq!(list[0]["attempts"], 1);
    assert_eq!(list[0]["http_status"], 200);
    assert_eq!(list[0]["details"]["target"], format!("{}/hook", rx.base));
    assert_eq!(hits[1].headers["x-castellan-delivery"].to_str().ok(), list[0]["id"].as_str());
    let (_, runs) = app.get(&format!("/v1/project_automation/{aid}/runs"), &viewer.key).await;
    assert_eq!(runs["objects"].as_array().map(Vec::len), Some(3), "{runs}");
    for text in [ds.to_string(), runs.to_string()] {
        for leaked in ["query-secret-77", "header-secret-42", secret.as_str()] {
            assert!(!text.contains(leaked), "{leaked} in {text}");
        }
    }
    // The automation shows its URL as configured (Braintrust's model), but never
    // the signing secret or header values.
    let shown = app.get(&format!("/v1/project_automation/{aid}"), &owner).await.1.to_string();
    assert!(!shown.contains("header-secret-42") && !shown.contains(&secret), "{shown}");
    // Runs that notified are audited.
    let (_, audit) = app.get("/v1/audit_log?event_type=project_automation.run", &owner).await;
    assert_eq!(audit["objects"].as_array().map(Vec::len), Some(2), "{audit}");
    // A viewer may read but not run or test; another org learns nothing.
    for path in ["run", "test"] {
        let (s, _) = app.post(&format!("/v1/project_automation/{aid}/{path}"), &viewer.key, json!({})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        let (s, v) = app.post(&format!("/v1/project_automation/{aid}/{path}"), &zeta, json!({})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {v}");
    }
    assert_eq!(app.get(&format!("/v1/project_automation/{aid}/deliveries"), &zeta).await.0, StatusCode::NOT_FOUND);
    assert_eq!(rx.hits().len(), 2, "refused calls send nothing");
    app.stop().await;
}

async fn deliveries_retry_transient_failures_and_stop_at_refusals(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let rx = Receiver::start().await;
    let (_, a) = app
        .post(
            "/v1/project_automation",
            &owner,
            alert(&p, "flaky", json!({"type": "webhook", "url": format!("{}/h", rx.base)})),
        )
        .await;
    let aid = id(&a);
    // 500, then 429, then 200: three attempts, one delivery, one id.
    rx.answer(&[500, 429]);
    log(&app, &owner, &p, rows("error", 2, "a")).await;
    let (_, run) = app.post(&format!("/v1/project_automation/{aid}/run"), &owner, json!({})).await;
    assert_eq!((run["status"].as_str(), run["count"].as_i64()), (Some("ok"), Some(2)), "{run}");
    let hits = rx.hits();
    assert_eq!(hits.len(), 3);
    let ids: Vec<_> = hits.iter().map(|h| h.headers["x-castellan-delivery"].clone()).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one delivery id across retries");
    let (_, ds) = app.get(&format!("/v1/project_automation/{aid}/deliveries"), &owner).await;
    assert_eq!(
        (ds["objects"][0]["attempts"].as_i64(), ds["objects"][0]["status"].as_str()),
        (Some(3), Some("ok")),
        "{ds}"
    );
    // A 400 is the receiver's refusal: no retry; the run records the error.
    rx.answer(&[400]);
    log(&app, &owner, &p, rows("error", 1, "b")).await;
    let (_, run) = app.post(&format!("/v1/project_automation/{aid}/run"), &owner, json!({})).await;
    assert_eq!(run["status"], "error", "{run}");
    assert!(run["error"].as_str().is_some_and(|e| e.contains("answered 400")), "{run}");
    assert_eq!(rx.hits().len(), 4);
    // Always 503: every attempt made (3 in tests), then failed.
    rx.answer(&[503, 503, 503]);
    log(&app, &owner, &p, rows("error", 1, "c")).await;
    let (_, run) = app.post(&format!("/v1/project_automation/{aid}/run"), &owner, json!({})).await;
    assert!(run["error"].as_str().is_some_and(|e| e.contains("after 3 attempts")), "{run}");
    assert_eq!(rx.hits().len(), 7);
    let (_, ds) = app.get(&format!("/v1/project_automation/{aid}/deliveries"), &owner).await;
    let statuses: Vec<_> = ds["objects"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| (d["status"].clone(), d["http_status"].clone()))
        .collect();
    assert_eq!(statuses, vec![(json!("failed"), json!(503)), (json!("failed"), json!(400)), (json!("ok"), json!(200))]);
    // Nothing listens: retried, recorded as a connection failure.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let (_, gone) = app
        .post(
            "/v1/project_automation",
            &owner,
            alert(&p, "gone", json!({"type": "webhook", "url": format!("http://127.0.0.1:{dead}/h")})),
        )
        .await;
    let (_, run) = app.post(&format!("/v1/project_automation/{}/run", id(&gone)), &owner, json!({})).await;
    assert!(
        run["error"].as_str().is_some_and(|e| e.contains("could not connect") && e.contains("after 3 attempts")),
        "{run}"
    );
    app.stop().await;
}

async fn a_test_sends_only_when_recent_logs_match(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let rx = Receiver::start().await;
    let (_, a) = app
        .post(
            "/v1/project_automation",
            &owner,
            alert(&p, "errors", json!({"type": "webhook", "url": format!("{}/h", rx.base)})),
        )
        .await;
    let aid = id(&a);
    // Old errors (created years ago) and recent non-errors: nothing matches now.
    log(
        &app,
        &owner,
        &p,
        vec![json!({"id": "old", "metadata": {"level": "error"}, "created": "2020-01-01T00:00:00Z"})],
    )
    .await;
    log(&app, &owner, &p, rows("info", 2, "i")).await;
    let (s, t) = app.post(&format!("/v1/project_automation/{aid}/test"), &owner, json!({})).await;
    assert_eq!((s, t["count"].as_u64(), t["delivered"].as_bool()), (StatusCode::OK, Some(0), Some(false)), "{t}");
    assert!(t["message"].as_str().is_some_and(|m| m.contains("nothing was sent")), "{t}");
    assert!(rx.hits().is_empty());
    // An error span written now, then the scheduler's transaction-id mark as if it
    // had been taken ten minutes ago: a window by time reads only what was written
    // after a mark taken well before it, so that span (written "before" the mark) is
    // not read, and the two below are.
    log(&app, &owner, &p, rows("error", 1, "before-mark")).await;
    let permit = app.system.permit();
    let xact = app.state.read(&permit).await.expect("read").current_xact_id().await.expect("xact");
    app.state.jobs(&permit).mark_xact(app.state.now() - 2 * 3_600 * 1_000_000, xact).await.expect("mark");
    log(&app, &owner, &p, rows("error", 2, "e")).await;
    let (_, t) = app.post(&format!("/v1/project_automation/{aid}/test"), &owner, json!({})).await;
    assert_eq!((t["count"].as_u64(), t["delivered"].as_bool()), (Some(2), Some(true)), "{t}");
    let hits = rx.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].body["details"]["is_test"], true);
    assert_eq!(hits[0].body["details"]["count"], 2);
    // A test is not a run; its delivery is logged as a test.
    assert_eq!(app.get(&format!("/v1/project_automation/{aid}/runs"), &owner).await.1["objects"], json!([]));
    let (_, ds) = app.get(&format!("/v1/project_automation/{aid}/deliveries"), &owner).await;
    assert_eq!(ds["objects"][0]["details"]["is_test"], true, "{ds}");
    // Only logs alerts can be tested.
    let (_, r) = app
        .post("/v1/project_automation", &owner, json!({"project_id": p, "name": "keep", "config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 30}}))
        .await;
    let (s, v) = app.post(&format!("/v1/project_automation/{}/test", id(&r)), &owner, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    common::assert_listed_error(s, &v);
    app.stop().await;
}

async fn slack_and_pagerduty_actions_reach_their_apis_with_the_orgs_secrets(b: Backend) {
    let Some(db) = common::Db::fresh(b) else { return };
    let rx = Receiver::start().await;
    let config = castellan_server::config::Config {
        slack_api_url: format!("{}/slack/api", rx.base),
        pagerduty_api_url: format!("{}/pd", rx.base),
        ..common::test_config()
    };
    let app = TestApp::spawn_on(db, config, castellan_server::access::system_clock()).await;
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let org = app.get("/v1/organization", &owner).await.1["objects"][0]["id"].as_str().expect("org").to_owned();
    let p = project(&app, &owner, "p").await;
    let (_, slack) = app
        .post(
            "/v1/project_automation",
            &owner,
            alert(
                &p,
                "to-slack",
                json!({"type": "slack", "workspace_id": "T123", "channel": "C-alerts",
                "message_template": "{{automation.name}} fired: {{details.count}} in {{project.name}}"}),
            ),
        )
        .await;
    log(&app, &owner, &p, rows("error", 2, "e")).await;
    // No bot token yet: a clear error, nothing sent.
    let (_, run) = app.post(&format!("/v1/project_automation/{}/run", id(&slack)), &owner, json!({})).await;
    assert!(run["error"].as_str().is_some_and(|e| e.contains("SLACK_BOT_TOKEN")), "{run}");
    assert!(rx.hits().is_empty());
    let (s, _, v) = app
        .send(Method::PUT, "/v1/env_var", Some(&owner),
            Some(json!({"object_type": "organization", "object_id": org, "name": "SLACK_BOT_TOKEN", "value": "xoxb-test-token"})), &[])
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    log(&app, &owner, &p, rows("error", 1, "f")).await;
    let (_, run) = app.post(&format!("/v1/project_automation/{}/run", id(&slack)), &owner, json!({})).await;
    assert_eq!(run["status"], "ok", "{run}");
    let hits = rx.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].path, "/slack/api/chat.postMessage");
    assert_eq!(hits[0].headers["authorization"], "Bearer xoxb-test-token");
    assert_eq!(hits[0].body["channel"], "C-alerts");
    assert_eq!(hits[0].body["text"], "to-slack fired: 1 in p");
    // Slack's own refusal (`ok: false`) is a failure with Slack's error.
    rx.answer(&[500, 299]);
    log(&app, &owner, &p, rows("error", 1, "g")).await;
    let (_, run) = app.post(&format!("/v1/project_automation/{}/run", id(&slack)), &owner, json!({})).await;
    assert!(run["error"].as_str().is_some_and(|e| e.contains("channel_not_found")), "{run}");
    // PagerDuty, its routing key from a project env var.
    app.send(
        Method::PUT,
        "/v1/env_var",
        Some(&owner),
        Some(json!({"object_type": "project", "object_id": p, "name": "PD_ROUTING", "value": "pd-routing-key-9"})),
        &[],
    )
    .await;
    let (_, pd) = app
        .post(
            "/v1/project_automation",
            &owner,
            alert(
                &p,
                "to-pd",
                json!({"type": "pagerduty", "routing_key_secret_name": "PD_ROUTING", "severity": "critical"}),
            ),
        )
        .await;
    let (_, run) = app.post(&format!("/v1/project_automation/{}/run", id(&pd)), &owner, json!({})).await;
    assert_eq!(run["status"], "ok", "{run}");
    let h = rx.hits().last().cloned().expect("pd");
    assert_eq!(h.path, "/pd/v2/enqueue");
    assert_eq!(h.body["routing_key"], "pd-routing-key-9");
    assert_eq!(h.body["event_action"], "trigger");
    assert_eq!(h.body["payload"]["severity"], "critical");
    assert_eq!(h.body["payload"]["summary"], "to-pd: 4 logs triggered alert in the last 1 hour");
    let (_, ds) = app.get(&format!("/v1/project_automation/{}/deliveries", id(&pd)), &owner).await;
    assert!(!ds.to_string().contains("pd-routing-key-9"), "{ds}");
    app.stop().await;
}

async fn environment_changes_fire_their_automations(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let rx = Receiver::start().await;
    for (slug, name) in [("production", "Production"), ("staging", "Staging")] {
        let (s, v) = app.post("/environment", &owner, json!({"name": name, "slug": slug})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, auto) = app
        .post(
            "/v1/project_automation",
            &owner,
            json!({"project_id": p, "name": "prod-deploys", "config": {
            "event_type": "environment_update", "environment_filter": ["production"],
            "action": {"type": "webhook", "url": format!("{}/deploys", rx.base)}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{auto}");
    let prompt = |text: &str, envs: Value| {
        json!({"project_id": p, "name": "greeter", "slug": "greeter", "environment_slugs": envs,
               "prompt_data": {"prompt": {"type": "chat", "messages": [{"role": "system", "content": text}]}}})
    };
    // Deployed to staging only: the production automation stays quiet.
    let (_, v1) = app.post("/v1/prompt", &owner, prompt("v1", json!(["staging"]))).await;
    let pid = id(&v1);
    // Promoted to production: it fires.
    let x1 = v1["_xact_id"].as_str().expect("xact").to_owned();
    let path = format!("/environment-object/prompt/{pid}/production");
    let (s, _, v) = app.send(Method::PUT, &path, Some(&owner), Some(json!({"object_version": x1})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let hits = rx.wait_for(1).await;
    let d = &hits[0].body;
    assert_eq!(hits[0].path, "/deploys");
    assert_eq!(d["automation"]["event_type"], "environment_update");
    assert_eq!(d["details"]["action"], "assigned");
    assert_eq!(d["details"]["environment"]["slug"], "production");
    assert_eq!(d["details"]["object"]["id"], pid);
    assert_eq!(d["details"]["object_version"], x1);
    assert_eq!(d["details"]["previous_version"], Value::Null);
    assert_eq!(hits[0].headers["x-castellan-event"], "environment_update");
    // The same version again changes nothing and fires nothing; a new one does,
    // also when deployed by a prompt write.
    app.send(Method::PUT, &path, Some(&owner), Some(json!({"object_version": x1})), &[]).await;
    let (_, _, v2) =
        app.send(Method::PUT, "/v1/prompt", Some(&owner), Some(prompt("v2", json!(["production"]))), &[]).await;
    let hits = rx.wait_for(2).await;
    assert_eq!(hits[1].body["details"]["object_version"], v2["_xact_id"]);
    assert_eq!(hits[1].body["details"]["previous_version"], x1);
    // Taken off production.
    app.send(Method::DELETE, &path, Some(&owner), None, &[]).await;
    let hits = rx.wait_for(3).await;
    assert_eq!(hits[2].body["details"]["action"], "removed");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.hits().len(), 3, "staging changes and no-ops fire nothing");
    let (_, runs) = app.get(&format!("/v1/project_automation/{}/runs", id(&auto)), &owner).await;
    assert_eq!(runs["objects"].as_array().map(Vec::len), Some(3), "{runs}");
    // Run by hand: refused with the reason.
    let (s, v) = app.post(&format!("/v1/project_automation/{}/run", id(&auto)), &owner, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    app.stop().await;
}

async fn the_scheduler_checks_due_alerts_on_its_own(b: Backend) {
    let Some(db) = common::Db::fresh(b) else { return };
    let config =
        castellan_server::config::Config { scheduler_tick: Duration::from_millis(100), ..common::test_config() };
    let app = TestApp::spawn_on(db, config, castellan_server::access::system_clock()).await;
    let scheduler = castellan_server::automation::spawn(app.state.clone(), &app.system);
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let rx = Receiver::start().await;
    let mut body = alert(&p, "fast", json!({"type": "webhook", "url": format!("{}/h", rx.base)}));
    body["config"]["interval_seconds"] = json!(1);
    let (_, a) = app.post("/v1/project_automation", &owner, body.clone()).await;
    let mut paused = body;
    paused["name"] = json!("paused");
    paused["config"]["status"] = json!("paused");
    let (_, quiet) = app.post("/v1/project_automation", &owner, paused).await;
    log(&app, &owner, &p, rows("error", 2, "e")).await;
    let hits = rx.wait_for(1).await;
    assert_eq!(hits[0].body["automation"]["id"], id(&a));
    assert_eq!(hits[0].body["details"]["count"], 2);
    log(&app, &owner, &p, rows("error", 1, "f")).await;
    let hits = rx.wait_for(2).await;
    assert_eq!(hits[1].body["details"]["count"], 1, "each span notified once");
    scheduler.abort();
    assert_eq!(app.get(&format!("/v1/project_automation/{}/runs", id(&quiet)), &owner).await.1["objects"], json!([]));
    app.stop().await;
}

async fn outbound_calls_to_private_addresses_are_refused_unless_allowed(b: Backend) {
    let Some(db) = common::Db::fresh(b) else { return };
    let config = castellan_server::config::Config { outbound_allow: Vec::new(), ..common::test_config() };
    let app = TestApp::spawn_on(db, config, castellan_server::access::system_clock()).await;
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let rx = Receiver::start().await;
    // An address literal is refused when saved.
    let (s, v) = app
        .post(
            "/v1/project_automation",
            &owner,
            alert(&p, "direct", json!({"type": "webhook", "url": format!("{}/h", rx.base)})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| m.contains("loopback") && m.contains("outbound_allow")), "{v}");
    // A name is checked when it is called (`localhost` here), and refused without retries.
    let port = rx.base.rsplit(':').next().expect("port");
    let (s, a) = app
        .post(
            "/v1/project_automation",
            &owner,
            alert(&p, "by-name", json!({"type": "webhook", "url": format!("http://localhost:{port}/h")})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    log(&app, &owner, &p, rows("error", 1, "e")).await;
    let (_, run) = app.post(&format!("/v1/project_automation/{}/run", id(&a)), &owner, json!({})).await;
    assert!(run["error"].as_str().is_some_and(|e| e.contains("refused") && e.contains("after 1 attempt:")), "{run}");
    assert!(rx.hits().is_empty(), "nothing reached the loopback receiver");
    app.stop().await;
}

async fn upload(app: &TestApp, key: &str, org: &str, name: &str, body: &'static str) {
    let (s, up) = app
        .post(
            "/attachment",
            key,
            json!({"key": name, "filename": "f.txt", "content_type": "text/plain", "org_id": org}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{up}");
    let url = up["signedUrl"].as_str().expect("url").to_owned();
    assert_eq!(app.http.put(url).body(body).send().await.expect("put").status(), 200);
    let status = json!({"key": name, "org_id": org, "status": {"upload_status": "done"}});
    assert_eq!(app.post("/attachment/status", key, status).await.0, StatusCode::OK);
}

async fn retention_deletes_the_attachments_and_stale_payloads_of_swept_rows(b: Backend) {
    let Some((app, clock)) = TestApp::spawn_with_clock(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let org = app.get("/v1/organization", &owner).await.1["objects"][0]["id"].as_str().expect("org").to_owned();
    let p = project(&app, &owner, "p").await;
    upload(&app, &owner, &org, "only-old", "ancient bytes").await;
    upload(&app, &owner, &org, "shared", "still needed").await;
    let att =
        |k: &str| json!({"type": "braintrust_attachment", "key": k, "filename": "f.txt", "content_type": "text/plain"});
    log(
        &app,
        &owner,
        &p,
        vec![
            json!({"id": "old-1", "input": {"file": att("only-old")}, "created": "2020-01-01T00:00:00Z"}),
            json!({"id": "old-2", "input": {"file": att("shared")}, "created": "2020-01-01T00:00:00Z"}),
            json!({"id": "new-1", "input": {"file": att("shared")}}),
        ],
    )
    .await;
    // An overflow payload announced and never used, two days ago.
    let (s, o) = app
        .post(
            "/logs3/overflow",
            &owner,
            json!({"rows": [{"object_ids": {"project_id": p, "log_id": "g"}}], "size_bytes": 10}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    clock.store(2 * 86_400 * 1_000_000, std::sync::atomic::Ordering::SeqCst);
    let (_, rule) = app
        .post("/v1/project_automation", &owner, json!({"project_id": p, "name": "keep-30", "config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 30}}))
        .await;
    let (_, run) = app.post(&format!("/v1/project_automation/{}/run", id(&rule)), &owner, json!({})).await;
    assert_eq!((run["status"].as_str(), run["count"].as_i64()), (Some("ok"), Some(2)), "{run}");
    assert_eq!(
        (run["details"]["attachments"].as_u64(), run["details"]["overflow"].as_u64()),
        (Some(1), Some(1)),
        "{run}"
    );
    let (s, gone) = app.get(&format!("/attachment?key=only-old&org_id={org}"), &owner).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{gone}");
    let (s, kept) = app.get(&format!("/attachment?key=shared&org_id={org}"), &owner).await;
    assert_eq!(s, StatusCode::OK, "{kept}");
    let got = app.http.get(kept["downloadUrl"].as_str().expect("url")).send().await.expect("get");
    assert_eq!(got.text().await.expect("body"), "still needed");
    // Again: nothing more to delete.
    let (_, run) = app.post(&format!("/v1/project_automation/{}/run", id(&rule)), &owner, json!({})).await;
    assert_eq!((run["count"].as_i64(), run["details"]["attachments"].as_u64()), (Some(0), Some(0)), "{run}");
    if let common::Db::Sqlite(path) = &app.db {
        use sqlx::ConnectOptions;
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.expect("connect");
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await.expect("checkpoint");
        let mut bytes = std::fs::read(path).expect("db");
        bytes.extend(std::fs::read(path.with_extension("sqlite-wal")).unwrap_or_default());
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("still needed"), "the scan sees live attachments");
        assert!(!text.contains("ancient bytes"), "a swept attachment's bytes are gone from the files");
    }
    app.stop().await;
}
