//! Online scoring over real HTTP, on SQLite and PostgreSQL: spans ingested with
//! `/logs3`, online `project_score` rules, the worker's passes (driven here, or
//! woken by ingest), the scores written back onto the spans (read with `fetch` and
//! BTQL), the scorer spans, the runs, and LLM judges calling a small
//! OpenAI-protocol server of the test's own on loopback.

use crate::common;

use castellan_server::scoring::{self, Options, Worker};
use castellan_store::XactId;
use common::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

on_both_backends!(
    a_judge_on_a_loopback_provider_is_refused_unless_allow_listed,
    one_worker_at_a_time_scores_a_project_and_another_takes_over_when_its_lease_expires,
    built_in_scorers_score_the_selected_sampled_and_filtered_spans_exactly_once,
    an_llm_judge_scores_through_the_projects_ai_provider_and_its_errors_are_recorded_and_retried,
    ingest_wakes_the_worker_and_is_never_held_up_by_it,
    a_judge_that_keeps_failing_is_called_again_in_later_rounds_then_given_up_on,
    claims_that_can_no_longer_matter_are_pruned_by_the_scheduler_in_batches,
    a_batch_of_heads_counts_every_version_read_and_hands_back_only_new_spans,
);

async fn setup(app: &TestApp) -> (String, String) {
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (s, p) = app.post("/v1/project", &key, json!({"name": "p"})).await;
    assert_eq!(s, 200, "{p}");
    (key, p["id"].as_str().expect("project id").to_owned())
}

async fn logs3(app: &TestApp, key: &str, rows: Vec<Value>) {
    let resp = app
        .http
        .post(format!("{}/logs3", app.base))
        .bearer_auth(key)
        .body(json!({"api_version": 2, "rows": rows}).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
}

async fn rule(app: &TestApp, key: &str, pid: &str, name: &str, online: Value) -> String {
    let body = json!({"project_id": pid, "name": name, "score_type": "online", "config": {"online": online}});
    let (s, v) = app.post("/v1/project_score", key, body).await;
    assert_eq!(s, 200, "{v}");
    v["id"].as_str().expect("rule id").to_owned()
}

async fn fetch_all(app: &TestApp, key: &str, pid: &str) -> Vec<Value> {
    let (s, v) = app.post(&format!("/v1/project_logs/{pid}/fetch"), key, json!({"limit": 1000})).await;
    assert_eq!(s, 200, "{v}");
    v["events"].as_array().cloned().unwrap_or_default()
}

fn row<'a>(rows: &'a [Value], id: &str) -> &'a Value {
    rows.iter().find(|r| r["id"] == id).unwrap_or(&Value::Null)
}

fn quick() -> Options {
    Options {
        batch: 7,
        min_interval: Duration::ZERO,
        attempts: 3,
        backoff: Duration::from_millis(20),
        timeout: Duration::from_millis(700),
        ..Options::default()
    }
}

fn span(pid: &str, id: &str, extra: Value) -> Value {
    let mut r = json!({"id": id, "project_id": pid, "log_id": "g", "span_id": format!("s-{id}"),
                       "root_span_id": format!("s-{id}")});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        r[k] = v;
    }
    r
}

fn child(pid: &str, id: &str, parent: &str, name: &str, extra: Value) -> Value {
    let mut r = span(pid, id, extra);
    r["root_span_id"] = json!(format!("s-{parent}"));
    r["span_parents"] = json!([format!("s-{parent}")]);
    r["span_attributes"] = json!({"name": name, "type": "llm"});
    r
}

async fn built_in_scorers_score_the_selected_sampled_and_filtered_spans_exactly_once(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    // Logged before any rule exists: never scored.
    logs3(&app, &key, vec![span(&pid, "before", json!({"output": "a", "expected": "a"}))]).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let all = json!([{"type": "global", "name": "ExactMatch"}, {"type": "global", "name": "Levenshtein"},
                     {"type": "global", "name": "NumericDiff"}, {"type": "global", "name": "ValidJSON"},
                     {"type": "global", "name": "JSONDiff"}, {"type": "global", "name": "Regex"}]);
    let roots = rule(&app, &key, &pid, "heuristics", json!({"sampling_rate": 1, "scorers": all})).await;
    let named = rule(
        &app,
        &key,
        &pid,
        "llm spans in prod",
        json!({"sampling_rate": 0.5, "scorers": [{"type": "global", "name": "ExactMatch"}],
               "apply_to_span_names": ["llm"], "apply_to_root_span": false,
               "btql_filter": "metadata.env = 'prod'", "skip_logging": true}),
    )
    .await;
    // A filter that does not parse is refused when the rule is written.
    let (s, v) = app
        .post(
            "/v1/project_score",
            &key,
            json!({"project_id": pid, "name": "bad", "score_type": "online",
               "config": {"online": {"sampling_rate": 1, "scorers": [], "btql_filter": "metadata.env ="}}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap_or("").contains("btql_filter"), "{v}");

    let mut rows = vec![
        span(&pid, "r1", json!({"output": "abc", "expected": "axc"})),
        span(&pid, "r2", json!({"output": 105, "expected": 100})),
        span(&pid, "r3", json!({"output": "{\"a\": 1}", "expected": {"a": 2}})),
        span(&pid, "r4", json!({"output": "order 42 shipped", "expected": "\\d+ shipped$"})),
        span(&pid, "r5", json!({"output": "x"})),
        // Still open: not scored until it ends.
        span(&pid, "open", json!({"output": "a", "expected": "a", "metrics": {"start": 1.0}})),
    ];
    let mut llm = Vec::new();
    for i in 0..24 {
        let env = if i % 3 == 0 { "dev" } else { "prod" };
        let id = format!("c{i}");
        rows.push(child(&pid, &id, "r1", "llm", json!({"output": "y", "expected": "y", "metadata": {"env": env}})));
        llm.push((id, env));
    }
    rows.push(child(&pid, "other", "r1", "tool", json!({"output": "y", "expected": "y", "metadata": {"env": "prod"}})));
    logs3(&app, &key, rows).await;

    let worker = Worker::new(app.state.clone(), app.system.permit(), quick());
    let report = worker.pass().await.expect("pass");
    let roots_id: uuid::Uuid = roots.parse().unwrap();
    let named_id: uuid::Uuid = named.parse().unwrap();
    let r = &report.rules[&roots_id];
    assert_eq!((r.sampled, r.matched, r.already_scored), (5, 5, 0), "its own writes are not read as new spans: {r:?}");
    let got = fetch_all(&app, &key, &pid).await;
    let scores = |id: &str| row(&got, id)["scores"].clone();
    assert_eq!(scores("before"), Value::Null, "logged before the rule");
    assert_eq!(scores("open"), Value::Null, "an open span waits");
    let r1 = scores("r1");
    assert_eq!(r1["ExactMatch"], 0.0);
    assert!((r1["Levenshtein"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12, "{r1}");
    assert!((r1["JSONDiff"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12, "{r1}");
    assert_eq!((&r1["ValidJSON"], &r1["Regex"]), (&json!(0.0), &json!(0.0)), "{r1}");
    assert!(r1.get("NumericDiff").is_none(), "text is no number: an error, no score: {r1}");
    let r2 = scores("r2");
    assert!((r2["NumericDiff"].as_f64().unwrap() - (1.0 - 5.0 / 205.0)).abs() < 1e-12, "{r2}");
    assert_eq!(r2["ExactMatch"], 0.0);
    let r3 = scores("r3");
    assert_eq!((&r3["ValidJSON"], &r3["ExactMatch"]), (&json!(1.0), &json!(0.0)), "{r3}");
    assert!((r3["JSONDiff"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9, "{r3}");
    assert_eq!(scores("r4")["Regex"], 1.0);
    let r5 = scores("r5");
    assert_eq!(r5["ExactMatch"], 0.0, "`x` is not `None`");
    assert!(r5.get("Levenshtein").is_none() && r5.get("Regex").is_none(), "no expected, no score: {r5}");
    let rr = &report.rules[&roots_id];
    assert_eq!(rr.errors, 5, "NumericDiff on text (r1, r3, r4), Regex on a number (r2) and an object (r3): {rr:?}");
    assert_eq!(rr.scored, 22, "5 + 5 + 4 + 5 + 3 scores: {rr:?}");
    // Scorer spans: children of the scored span, typed `score`, for the first rule only.
    let scorer_spans: Vec<&Value> = got.iter().filter(|r| r["span_attributes"]["type"] == "score").collect();
    assert_eq!(scorer_spans.len() as u64, rr.scored, "one scorer span per score of the logging rule");
    let lev = scorer_spans
        .iter()
        .find(|s| s["span_parents"] == json!(["s-r1"]) && s["span_attributes"]["name"] == "Levenshtein")
        .expect("r1's Levenshtein span");
    assert_eq!((&lev["root_span_id"], &lev["span_attributes"]["purpose"]), (&json!("s-r1"), &json!("scorer")));
    assert_eq!((&lev["input"]["output"], &lev["input"]["expected"]), (&json!("abc"), &json!("axc")));
    assert_eq!(lev["output"]["score"], lev["scores"]["Levenshtein"]);
    // The named rule: `llm` spans only, in its sample (the documented hash), in prod.
    let nr = &report.rules[&named_id];
    let (mut expected_sampled, mut expected_scored) = (0, 0);
    for (id, env) in &llm {
        let s = scores(id);
        let in_sample = scoring::sampled(named_id, &format!("s-{id}"), 0.5);
        let want = *env == "prod" && in_sample;
        expected_sampled += u64::from(in_sample);
        expected_scored += u64::from(want);
        assert_eq!(s["ExactMatch"] == 1.0, want, "{id} ({env}): {s}");
    }
    assert!(expected_scored > 0 && expected_scored < 16, "the sample is a real subset: {expected_scored}");
    assert_eq!((nr.sampled, nr.matched, nr.scored), (expected_sampled, expected_scored, expected_scored), "{nr:?}");
    assert_eq!(nr.spans, r.spans, "every new version is read, by both rules");
    assert_eq!(scores("other"), Value::Null, "a span of another name");
    assert!(!got
        .iter()
        .any(|r| r["span_attributes"]["type"] == "score" && r["metadata"]["online_scoring_rule_id"] == named));
    // BTQL sees the scores too.
    let q = format!("select: id | from: project_logs('{pid}') | filter: scores.Regex = 1 and is_root");
    let (s, v) = app.post("/btql", &key, json!({"query": q})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"], json!([{"id": "r4"}]));

    // Again: nothing new is written. Then as if a crash lost the cursor after the
    // scores committed: the spans are read again, and still nothing is written twice.
    let versions = |rows: &[Value]| rows.iter().map(|r| (r["id"].clone(), r["_xact_id"].clone())).collect::<Vec<_>>();
    let before = versions(&got);
    let again = worker.pass().await.expect("second pass");
    assert!(again.rules.values().all(|c| c.scored == 0), "{:?}", again.rules);
    let jobs = app.state.jobs(&app.system.permit());
    let project: uuid::Uuid = pid.parse().unwrap();
    jobs.set_scoring_cursor(project, &(XactId(0), String::new()), app.state.now()).await.expect("rewind");
    let replay = worker.pass().await.expect("replay");
    assert_eq!(replay.rules[&roots_id].scored, 0, "{:?}", replay.rules);
    assert!(replay.rules[&roots_id].already_scored >= rr.scored, "{:?}", replay.rules);
    assert_eq!(versions(&fetch_all(&app, &key, &pid).await), before, "no row was written again");

    // The span that was open ends: now it is scored, once.
    logs3(&app, &key, vec![json!({"id": "open", "project_id": pid, "_is_merge": true, "metrics": {"end": 2.0}})]).await;
    worker.pass().await.expect("pass");
    assert_eq!(scores_of(&app, &key, &pid, "open").await["ExactMatch"], 1.0);

    // Runs: one per pass that saw spans, with the counts.
    let (s, v) = app.get(&format!("/v1/project_score/{roots}/runs"), &key).await;
    assert_eq!(s, 200, "{v}");
    let runs = v["objects"].as_array().cloned().unwrap_or_default();
    let first = runs.last().expect("a run");
    assert_eq!((&first["status"], &first["details"]["sampled"]), (&json!("error"), &json!(5)), "{first}");
    assert_eq!(first["count"], json!(rr.scored));
    assert!(first["error"].as_str().unwrap_or("").contains("NumericDiff"), "{first}");
    let (s, _) = app.get(&format!("/v1/project_score/{}/runs", uuid::Uuid::new_v4()), &key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn one_worker_at_a_time_scores_a_project_and_another_takes_over_when_its_lease_expires(b: Backend) {
    let Some((app, clock)) = TestApp::spawn_with_clock(b).await else { return };
    let (key, pid) = setup(&app).await;
    let rid = rule(
        &app,
        &key,
        &pid,
        "exact",
        json!({"sampling_rate": 1, "scorers": [{"type": "global", "name": "ExactMatch"}]}),
    )
    .await;
    let rid: uuid::Uuid = rid.parse().unwrap();
    // Two replicas' workers on one database.
    let first = Worker::new(app.state.clone(), app.system.permit(), quick());
    let second = Worker::new(app.state.clone(), app.system.permit(), quick());
    logs3(&app, &key, vec![span(&pid, "a", json!({"output": 1, "expected": 1}))]).await;
    assert_eq!(first.pass().await.expect("pass").rules[&rid].scored, 1);
    logs3(&app, &key, vec![span(&pid, "b", json!({"output": 1, "expected": 1}))]).await;
    let r = second.pass().await.expect("pass");
    assert!(r.rules.is_empty(), "the project is held by the first worker: {:?}", r.rules);
    assert_eq!(scores_of(&app, &key, &pid, "b").await, Value::Null);
    // The first worker dies; once its lease expires, the second resumes at the cursor.
    drop(first);
    clock.fetch_add(Options::default().lease_micros + 1_000_000, std::sync::atomic::Ordering::SeqCst);
    let r = second.pass().await.expect("pass");
    assert_eq!(
        (r.rules[&rid].scored, r.rules[&rid].already_scored),
        (1, 1),
        "`b` is new; `a` (its score merge, read again) is known as scored: {:?}",
        r.rules
    );
    assert_eq!(scores_of(&app, &key, &pid, "b").await, json!({"ExactMatch": 1.0}));
}

async fn scores_of(app: &TestApp, key: &str, pid: &str, id: &str) -> Value {
    row(&fetch_all(app, key, pid).await, id)["scores"].clone()
}

/// The test's OpenAI-protocol server: records each request (its bearer and body)
/// and answers as `mode` says.
#[derive(Clone, Default)]
struct Provider {
    seen: Arc<Mutex<Vec<(String, Value)>>>,
    mode: Arc<Mutex<String>>,
}

impl Provider {
    fn set(&self, mode: &str) {
        *self.mode.lock().unwrap() = mode.to_owned();
    }

    fn seen(&self) -> Vec<(String, Value)> {
        self.seen.lock().unwrap().clone()
    }

    async fn start(&self) -> String {
        use axum::response::IntoResponse;
        let me = self.clone();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    let auth = headers.get("authorization").and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    me.seen.lock().unwrap().push((auth, v.clone()));
                    let mode = me.mode.lock().unwrap().clone();
                    match mode.as_str() {
                        "429" => {
                            (axum::http::StatusCode::TOO_MANY_REQUESTS, "{\"error\": {\"message\": \"slow down\"}}")
                                .into_response()
                        }
                        "bad_json" => (axum::http::StatusCode::OK, "this is not json").into_response(),
                        "500" => {
                            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "{\"error\": {\"message\": \"down\"}}")
                                .into_response()
                        }
                        "400" => (axum::http::StatusCode::BAD_REQUEST, "{\"error\": {\"message\": \"bad model\"}}")
                            .into_response(),
                        "slow" => {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            (axum::http::StatusCode::OK, "{}").into_response()
                        }
                        _ => {
                            let text = v["messages"].to_string();
                            let choice = if text.contains("Paris") { "Correct" } else { "Partially" };
                            let args = json!({"reasons": "checked it", "choice": choice}).to_string();
                            axum::Json(json!({"id": "chatcmpl-1", "object": "chat.completion", "model": v["model"],
                                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                                    "role": "assistant", "content": null,
                                    "tool_calls": [{"id": "call_1", "type": "function",
                                        "function": {"name": "select_choice", "arguments": args}}]}}]}))
                            .into_response()
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}/v1")
    }
}

async fn judge_setup(app: &TestApp, key: &str, pid: &str, provider: &Provider) -> (String, String) {
    let base = provider.start().await;
    let (s, v) = app
        .post(
            "/v1/ai_secret",
            key,
            json!({"name": "OPENAI_API_KEY", "type": "openai", "secret": "sk-judge-test-0123456789",
                   "metadata": {"api_base": base}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let prompt = json!({"project_id": pid, "name": "Correctness", "slug": "correctness", "function_type": "scorer",
        "prompt_data": {
            "prompt": {"type": "chat", "messages": [
                {"role": "system", "content": "You grade answers."},
                {"role": "user", "content": "Question: {{input.question}}\nAnswer: {{output}}\nExpected: {{expected}}"}]},
            "options": {"model": "gpt-4o-mini", "params": {"temperature": 0}},
            "parser": {"type": "llm_classifier", "use_cot": true,
                       "choice_scores": {"Correct": 1, "Partially": 0.5, "Wrong": 0}}}});
    let (s, v) = app.post("/v1/prompt", key, prompt).await;
    assert_eq!(s, 200, "{v}");
    let fid = v["id"].as_str().expect("prompt id").to_owned();
    let rid =
        rule(app, key, pid, "judge", json!({"sampling_rate": 1, "scorers": [{"type": "function", "id": fid}]})).await;
    (fid, rid)
}

/// A server that may call the test's provider on loopback (`outbound_allow`).
async fn spawn_allowing_loopback(b: Backend) -> Option<TestApp> {
    let db = common::Db::fresh(b)?;
    let config = castellan_server::config::Config { outbound_allow: vec!["127.0.0.1".into()], ..common::test_config() };
    Some(TestApp::spawn_on(db, config, castellan_server::access::system_clock()).await)
}

async fn an_llm_judge_scores_through_the_projects_ai_provider_and_its_errors_are_recorded_and_retried(b: Backend) {
    let Some(app) = spawn_allowing_loopback(b).await else { return };
    let (key, pid) = setup(&app).await;
    let provider = Provider::default();
    let (_, rid) = judge_setup(&app, &key, &pid, &provider).await;
    let worker = Worker::new(app.state.clone(), app.system.permit(), quick());
    logs3(
        &app,
        &key,
        vec![
            span(
                &pid,
                "q1",
                json!({"input": {"question": "Capital of France?"}, "output": "Paris", "expected": "Paris"}),
            ),
            span(&pid, "q2", json!({"input": {"question": "Capital of Spain?"}, "output": "Barcelona?"})),
        ],
    )
    .await;
    worker.pass().await.expect("pass");
    assert_eq!(scores_of(&app, &key, &pid, "q1").await, json!({"Correctness": 1.0}));
    assert_eq!(scores_of(&app, &key, &pid, "q2").await, json!({"Correctness": 0.5}));
    let seen = provider.seen();
    assert_eq!(seen.len(), 2, "one call per span");
    for (auth, body) in &seen {
        assert_eq!(auth, "Bearer sk-judge-test-0123456789", "the sealed key, opened, as the bearer");
        assert_eq!(
            (&body["model"], &body["tool_choice"]["function"]["name"]),
            (&json!("gpt-4o-mini"), &json!("select_choice"))
        );
        assert_eq!(body["messages"][0], json!({"role": "system", "content": "You grade answers."}));
    }
    let q1 = seen.iter().find(|(_, b)| b.to_string().contains("France")).expect("q1's request");
    assert_eq!(q1.1["messages"][1]["content"], "Question: Capital of France?\nAnswer: Paris\nExpected: Paris");
    let q2 = seen.iter().find(|(_, b)| b.to_string().contains("Spain")).expect("q2's request");
    assert_eq!(q2.1["messages"][1]["content"], "Question: Capital of Spain?\nAnswer: Barcelona?\nExpected: ");
    let got = fetch_all(&app, &key, &pid).await;
    let judged = got
        .iter()
        .find(|r| r["span_attributes"]["name"] == "Correctness" && r["span_parents"] == json!(["s-q1"]))
        .expect("the judge's scorer span");
    assert_eq!(
        (&judged["output"]["metadata"]["choice"], &judged["output"]["metadata"]["rationale"]),
        (&json!("Correct"), &json!("checked it"))
    );

    // The provider fails: 429, then an answer that is not JSON. Each is retried
    // (3 attempts), recorded on the rule's run, and leaves the span unscored.
    for (mode, words) in [("429", "429"), ("bad_json", "not JSON")] {
        provider.set(mode);
        let before = provider.seen().len();
        let id = format!("e-{mode}");
        logs3(&app, &key, vec![span(&pid, &id, json!({"output": "x"}))]).await;
        let report = worker.pass().await.expect("pass");
        let c = &report.rules[&rid.parse::<uuid::Uuid>().unwrap()];
        assert_eq!((c.errors, c.scored), (1, 0), "{mode}: {c:?}");
        assert_eq!(provider.seen().len() - before, 3, "{mode}: tried three times");
        let run = report.runs.iter().find(|r| r.automation_id.to_string() == rid).expect("the run");
        assert_eq!(run.status, "error");
        let msg = run.error.clone().unwrap_or_default();
        assert!(msg.contains(words) && msg.contains("after 3 attempts"), "{mode}: {msg}");
        assert!(!msg.contains("sk-judge-test"), "the key is never in a message: {msg}");
        assert_eq!(scores_of(&app, &key, &pid, &id).await, Value::Null);
    }
    let (s, v) = app.get(&format!("/v1/project_score/{rid}/runs"), &key).await;
    assert_eq!(s, 200);
    assert_eq!(v["objects"][0]["status"], "error", "{v}");
    assert!(v["objects"][0]["error"].as_str().unwrap_or("").contains("not JSON"), "{v}");

    // It recovers: the next span is scored.
    provider.set("ok");
    logs3(&app, &key, vec![span(&pid, "q3", json!({"input": {"question": "Capital of France?"}, "output": "Paris"}))])
        .await;
    worker.pass().await.expect("pass");
    assert_eq!(scores_of(&app, &key, &pid, "q3").await, json!({"Correctness": 1.0}));
}

async fn ingest_wakes_the_worker_and_is_never_held_up_by_it(b: Backend) {
    let Some(app) = spawn_allowing_loopback(b).await else { return };
    let (key, pid) = setup(&app).await;
    let provider = Provider::default();
    judge_setup(&app, &key, &pid, &provider).await;
    rule(&app, &key, &pid, "exact", json!({"sampling_rate": 1, "scorers": [{"type": "global", "name": "ExactMatch"}]}))
        .await;
    // A worker that only a wake-up starts (its tick is far away).
    let opts = Options { tick: Duration::from_secs(600), ..quick() };
    let handle = Worker::new(app.state.clone(), app.system.permit(), opts).spawn();
    tokio::time::sleep(Duration::from_millis(300)).await;
    logs3(
        &app,
        &key,
        vec![span(
            &pid,
            "w1",
            json!({"input": {"question": "Capital of France?"}, "output": "Paris", "expected": "Paris"}),
        )],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = scores_of(&app, &key, &pid, "w1").await;
        if s["ExactMatch"] == 1.0 && s["Correctness"] == 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "ingest did not wake the worker: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The provider now hangs past the timeout: the worker waits on it, ingest does not.
    provider.set("slow");
    logs3(&app, &key, vec![span(&pid, "w2", json!({"output": "a", "expected": "a"}))]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..5 {
        let t = Instant::now();
        logs3(&app, &key, vec![span(&pid, &format!("w3-{i}"), json!({"output": "b"}))]).await;
        assert!(t.elapsed() < Duration::from_millis(500), "ingest waited {:?} on a scoring pass", t.elapsed());
    }
    handle.abort();
}

async fn a_judge_on_a_loopback_provider_is_refused_unless_allow_listed(b: Backend) {
    let Some(db) = common::Db::fresh(b) else { return };
    let config = castellan_server::config::Config { outbound_allow: Vec::new(), ..common::test_config() };
    let app = TestApp::spawn_on(db, config, castellan_server::access::system_clock()).await;
    let (key, pid) = setup(&app).await;
    let provider = Provider::default();
    let (_, rid) = judge_setup(&app, &key, &pid, &provider).await;
    logs3(&app, &key, vec![span(&pid, "q", json!({"output": "Paris"}))]).await;
    let report = Worker::new(app.state.clone(), app.system.permit(), quick()).pass().await.expect("pass");
    let run = report.runs.iter().find(|r| r.automation_id.to_string() == rid).expect("the run");
    let msg = run.error.clone().unwrap_or_default();
    assert!(msg.contains("refused") && msg.contains("outbound_allow"), "{msg}");
    assert!(provider.seen().is_empty(), "nothing was sent");
    assert_eq!(scores_of(&app, &key, &pid, "q").await, Value::Null);
}

/// Rows of a table of the test's database, read straight from it.
async fn table_rows(db: &common::Db, table: &str) -> i64 {
    match db {
        common::Db::Sqlite(path) => {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true))
                .await
                .expect("open");
            let n: i64 =
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&pool).await.expect("count");
            pool.close().await;
            n
        }
        common::Db::Postgres { url, schema } => {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await.expect("connect");
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {schema}.{table}"))
                .fetch_one(&pool)
                .await
                .expect("count");
            pool.close().await;
            n
        }
    }
}

async fn a_judge_that_keeps_failing_is_called_again_in_later_rounds_then_given_up_on(b: Backend) {
    let Some(app) = spawn_allowing_loopback(b).await else { return };
    let (key, pid) = setup(&app).await;
    let provider = Provider::default();
    let (_, rid) = judge_setup(&app, &key, &pid, &provider).await;
    let rule_id: uuid::Uuid = rid.parse().unwrap();
    let backoff = Duration::from_millis(100);
    let opts = Options { attempts: 2, rounds: 3, requeue_backoff: backoff, ..quick() };
    let worker = Worker::new(app.state.clone(), app.system.permit(), opts);
    let calls = || provider.seen().len();
    let question = json!({"input": {"question": "Capital of France?"}, "output": "Paris"});

    // Round 1 fails (two calls, both 500): queued, and said so on the run.
    provider.set("500");
    logs3(&app, &key, vec![span(&pid, "q", question.clone())]).await;
    let r = worker.pass().await.expect("pass");
    let c = &r.rules[&rule_id];
    assert_eq!((c.errors, c.requeued, c.scored, c.gave_up), (1, 1, 0, 0), "{c:?}");
    assert_eq!(calls(), 2);
    let run = r.runs.iter().find(|r| r.automation_id == rule_id).expect("run");
    let msg = run.error.clone().unwrap_or_default();
    assert!(msg.contains("500") && msg.contains("queued to be called again") && msg.contains("round 1 of 3"), "{msg}");
    assert_eq!(table_rows(&app.db, "online_score_retries").await, 1);
    // Not due yet: nothing is called.
    worker.pass().await.expect("pass");
    assert_eq!(calls(), 2, "the retry waits its turn");
    // Round 2, once due: still failing; queued again, five times as long.
    tokio::time::sleep(backoff + Duration::from_millis(20)).await;
    let r = worker.pass().await.expect("pass");
    let c = &r.rules[&rule_id];
    assert_eq!((c.retried, c.requeued, c.scored), (1, 1, 0), "{c:?}");
    assert_eq!(calls(), 4);
    let msg = r.runs.iter().find(|r| r.automation_id == rule_id).and_then(|r| r.error.clone()).unwrap_or_default();
    assert!(msg.contains("round 2 of 3"), "{msg}");
    tokio::time::sleep(backoff + Duration::from_millis(20)).await;
    worker.pass().await.expect("pass");
    assert_eq!(calls(), 4, "round 3 waits five times as long as round 2 did");
    // The provider recovers: round 3 scores the span, once, on the span as it is.
    provider.set("ok");
    tokio::time::sleep(backoff * 5).await;
    let r = worker.pass().await.expect("pass");
    let c = &r.rules[&rule_id];
    assert_eq!((c.retried, c.scored, c.errors), (1, 1, 0), "{c:?}");
    assert_eq!(scores_of(&app, &key, &pid, "q").await, json!({"Correctness": 1.0}));
    assert_eq!(table_rows(&app.db, "online_score_retries").await, 0, "off the queue");
    tokio::time::sleep(backoff * 6).await;
    worker.pass().await.expect("pass");
    assert_eq!(calls(), 5, "nothing is called again once scored");
    let judged = fetch_all(&app, &key, &pid)
        .await
        .into_iter()
        .filter(|r| r["span_attributes"]["name"] == "Correctness" && r["span_parents"] == json!(["s-q"]))
        .count();
    assert_eq!(judged, 1, "one scorer span");

    // A provider that stays down: three rounds, then the worker gives up, says so,
    // and calls no more.
    provider.set("500");
    logs3(&app, &key, vec![span(&pid, "down", question.clone())]).await;
    worker.pass().await.expect("pass");
    tokio::time::sleep(backoff + Duration::from_millis(20)).await;
    worker.pass().await.expect("pass");
    tokio::time::sleep(backoff * 5 + Duration::from_millis(20)).await;
    let r = worker.pass().await.expect("pass");
    let c = &r.rules[&rule_id];
    assert_eq!((c.retried, c.gave_up, c.requeued), (1, 1, 0), "{c:?}");
    let msg = r.runs.iter().find(|r| r.automation_id == rule_id).and_then(|r| r.error.clone()).unwrap_or_default();
    assert!(msg.contains("gave up after 3 rounds") && msg.contains("500"), "{msg}");
    assert_eq!(calls(), 5 + 3 * 2, "two calls in each of three rounds");
    tokio::time::sleep(backoff * 30).await;
    worker.pass().await.expect("pass");
    assert_eq!(calls(), 11, "given up: never called again");
    assert_eq!(scores_of(&app, &key, &pid, "down").await, Value::Null);
    let (_, runs) = app.get(&format!("/v1/project_score/{rid}/runs"), &key).await;
    let gave_up = runs["objects"].as_array().expect("runs").iter().any(|r| r["details"]["gave_up"] == 1);
    assert!(gave_up, "the run says it gave up: {runs}");

    // A failure no later call fixes (400): not queued.
    provider.set("400");
    logs3(&app, &key, vec![span(&pid, "bad", question)]).await;
    let r = worker.pass().await.expect("pass");
    let c = &r.rules[&rule_id];
    assert_eq!((c.errors, c.requeued), (1, 0), "{c:?}");
    assert_eq!(table_rows(&app.db, "online_score_retries").await, 0);
}

async fn claims_that_can_no_longer_matter_are_pruned_by_the_scheduler_in_batches(b: Backend) {
    let Some((app, clock)) = TestApp::spawn_with_clock(b).await else { return };
    let (key, pid) = setup(&app).await;
    let rid = rule(
        &app,
        &key,
        &pid,
        "exact",
        json!({"sampling_rate": 1, "skip_logging": true, "scorers": [{"type": "global", "name": "ExactMatch"}]}),
    )
    .await;
    let rule_id: uuid::Uuid = rid.parse().unwrap();
    let worker = Worker::new(
        app.state.clone(),
        app.system.permit(),
        Options { min_interval: Duration::ZERO, ..Options::default() },
    );
    for chunk in 0..3 {
        let rows =
            (0..500).map(|i| span(&pid, &format!("old-{chunk}-{i}"), json!({"output": 1, "expected": 1}))).collect();
        logs3(&app, &key, rows).await;
    }
    let r = worker.pass().await.expect("pass");
    assert_eq!(r.rules[&rule_id].scored, 1500);
    assert_eq!(table_rows(&app.db, "online_score_claims").await, 1500);
    // A scheduler tick soon after prunes nothing: the claims may still matter.
    let holder = "test-scheduler";
    castellan_server::automation::tick_once(&app.state, &app.system, holder).await.expect("tick");
    assert_eq!(table_rows(&app.db, "online_score_claims").await, 1500);
    // Two span ages later they can no longer matter: the next tick prunes them all,
    // in batches.
    let age = i64::try_from(Options::default().max_span_age.as_micros()).unwrap();
    clock.fetch_add(2 * age + 1_000_000, std::sync::atomic::Ordering::SeqCst);
    logs3(&app, &key, vec![span(&pid, "new", json!({"output": 1, "expected": 2}))]).await;
    castellan_server::automation::tick_once(&app.state, &app.system, holder).await.expect("tick");
    assert_eq!(table_rows(&app.db, "online_score_claims").await, 0, "pruned");
    // Read again (as after a lost cursor), the old spans are too old to be scored
    // again; the new one is scored.
    let jobs = app.state.jobs(&app.system.permit());
    jobs.set_scoring_cursor(pid.parse().unwrap(), &(XactId(0), String::new()), app.state.now()).await.expect("rewind");
    let r = worker.pass().await.expect("pass");
    let c = &r.rules[&rule_id];
    assert_eq!((c.sampled, c.scored), (1, 1), "only `new`: {c:?}");
    assert_eq!(scores_of(&app, &key, &pid, "new").await, json!({"ExactMatch": 0.0}));
    assert_eq!(table_rows(&app.db, "online_score_claims").await, 1);
}

mod official_clients {
    use super::*;
    use crate::support::{last_json, python, sdk_env};

    on_both_backends!(
        #[ignore = "needs the official Braintrust clients: scripts/test runs it"]
        the_official_clients_create_a_rule_log_spans_and_read_their_scores_back
    );

    const LOG: &str = r#"
import json, os, braintrust
from braintrust_api import Braintrust
client = Braintrust(api_key=os.environ["BRAINTRUST_API_KEY"], base_url=os.environ["BRAINTRUST_API_URL"], max_retries=0)
project = client.projects.create(name="scored")
rule = client.project_scores.create(
    project_id=project.id, name="exact", score_type="online",
    config={"online": {"sampling_rate": 1, "scorers": [{"type": "global", "name": "ExactMatch"},
                                                         {"type": "global", "name": "Levenshtein"}],
                       "btql_filter": "metadata.env = 'prod'"}})
logger = braintrust.init_logger(project="scored")
with logger.start_span(name="answer", input={"q": "2+2"}) as span:
    span.log(output="four", expected="four", metadata={"env": "prod"})
    with span.start_span(name="llm") as child:
        child.log(output="4", expected="four")
for q, out, exp, env in [("1+1", "two", "too", "prod"), ("3+3", "six", "six", "dev")]:
    with logger.start_span(name="answer-" + q, input={"q": q}) as s:
        s.log(output=out, expected=exp, metadata={"env": env})
logger.flush()
print(json.dumps({"project_id": project.id, "rule_id": rule.id, "rule_type": rule.score_type,
                  "online": rule.config.online.model_dump() if rule.config and rule.config.online else None}))
"#;

    const READ: &str = r#"
import json, os
from braintrust_api import Braintrust
client = Braintrust(api_key=os.environ["BRAINTRUST_API_KEY"], base_url=os.environ["BRAINTRUST_API_URL"], max_retries=0)
rows = [e.model_dump(by_alias=True) for e in client.projects.logs.fetch(os.environ["PROJECT_ID"], limit=100).events]
print(json.dumps({"rows": rows}, default=str))
"#;

    async fn the_official_clients_create_a_rule_log_spans_and_read_their_scores_back(b: Backend) {
        let Some(app) = TestApp::spawn(b).await else { return };
        let key = app.bootstrap("acme", "ada@example.com").await;
        let mut env = sdk_env(&app, &key);
        env.push(("BRAINTRUST_SYNC_FLUSH".into(), "1".into()));
        let Some(out) = python(LOG, env.clone()).await else { return };
        let made = last_json(&out);
        assert_eq!(made["rule_type"], "online", "{made}");
        assert_eq!(made["online"]["btql_filter"], "metadata.env = 'prod'", "{made}");
        let worker = Worker::new(app.state.clone(), app.system.permit(), quick());
        let report = worker.pass().await.expect("pass");
        let rule: uuid::Uuid = made["rule_id"].as_str().expect("rule id").parse().expect("uuid");
        assert_eq!(report.rules[&rule].scored, 4, "{:?}", report.rules);
        env.push(("PROJECT_ID".into(), made["project_id"].as_str().expect("project").to_owned()));
        let Some(out) = python(READ, env).await else { return };
        let rows = last_json(&out)["rows"].as_array().cloned().unwrap_or_default();
        let find = |pred: &dyn Fn(&Value) -> bool| rows.iter().find(|r| pred(r)).cloned().unwrap_or(Value::Null);
        let answer = find(&|r| r["span_attributes"]["name"] == "answer");
        assert_eq!(answer["scores"], json!({"ExactMatch": 1.0, "Levenshtein": 1.0}), "{answer}");
        let llm = find(&|r| r["span_attributes"]["name"] == "llm");
        assert_eq!(llm["scores"], Value::Null, "a child span: not a root: {llm}");
        let two = find(&|r| r["input"] == json!({"q": "1+1"}));
        assert_eq!(two["scores"]["ExactMatch"], 0.0);
        assert!((two["scores"]["Levenshtein"].as_f64().unwrap_or(0.0) - 2.0 / 3.0).abs() < 1e-12, "{two}");
        let dev = find(&|r| r["input"] == json!({"q": "3+3"}));
        assert_eq!(dev["scores"], Value::Null, "filtered out: {dev}");
        let scorer = find(&|r| {
            r["span_attributes"]["type"] == "score" && r["span_parents"] == json!([answer["span_id"].clone()])
        });
        assert_eq!(scorer["root_span_id"], answer["root_span_id"], "the scorer span sits in the scored trace");
    }
}

/// The worker reads a log in batches of heads: each batch counts every version it
/// read and says where the last one is (so the cursor passes them all), and hands
/// back only spans, not tombstones, comments or the versions of the transactions
/// it is told to skip (the worker's own writes).
async fn a_batch_of_heads_counts_every_version_read_and_hands_back_only_new_spans(b: Backend) {
    use castellan_store::{EventKind, EventObject};
    let Some(app) = TestApp::spawn(b).await else { return };
    let (key, pid) = setup(&app).await;
    logs3(&app, &key, vec![span(&pid, "a", json!({})), span(&pid, "b", json!({}))]).await;
    logs3(&app, &key, vec![span(&pid, "c", json!({}))]).await;
    logs3(&app, &key, vec![json!({"id": "b", "project_id": pid, "log_id": "g", "_object_delete": true})]).await;
    let (s, v) = app
        .post(&format!("/v1/project_logs/{pid}/feedback"), &key, json!({"feedback": [{"id": "a", "comment": "nice"}]}))
        .await;
    assert_eq!(s, 200, "{v}");
    let store = app.state.jobs(&app.system.permit());
    let log = EventObject { kind: EventKind::ProjectLogs, id: pid.parse().expect("project id") };
    let start = (XactId(0), String::new());
    let all = store.event_heads_since(log, &start, 1000, &[]).await.expect("heads");
    let ids = |b: &castellan_store::HeadBatch| b.heads.iter().map(|h| h.row_id.clone()).collect::<Vec<_>>();
    // The feedback wrote a new version of `a` and the comment beside it.
    assert_eq!(ids(&all), ["a", "b", "c", "a"], "the spans, oldest first: {all:?}");
    assert_eq!(all.read, 6, "the tombstone and the comment were read too: {all:?}");
    assert!(all.heads.iter().all(|h| h.is_root && h.span_id.as_deref() == Some(&*format!("s-{}", h.row_id))));
    // Leaving out the second transaction (as the worker leaves out its own writes).
    let c = all.heads[2].xact_id;
    let skipped = store.event_heads_since(log, &start, 1000, &[c, XactId(c.0 + 1_000_000)]).await.expect("heads");
    assert_eq!(ids(&skipped), ["a", "b", "a"]);
    assert_eq!((skipped.read, &skipped.last), (all.read, &all.last), "skipped versions still count as read");
    // Batches: the first two versions, then the rest from where the first ended.
    let first = store.event_heads_since(log, &start, 2, &[]).await.expect("heads");
    assert_eq!((first.read, ids(&first)), (2, vec!["a".to_owned(), "b".to_owned()]));
    let last = first.last.clone().expect("a position");
    let rest = store.event_heads_since(log, &last, 1000, &[]).await.expect("heads");
    assert_eq!((rest.read, ids(&rest)), (4, vec!["c".to_owned(), "a".to_owned()]));
    assert_eq!(rest.last, all.last);
    let end = store.event_heads_since(log, &all.last.clone().expect("a position"), 1000, &[]).await.expect("heads");
    assert_eq!((end.read, end.last, end.heads.len()), (0, None, 0), "nothing after the last version");
}
