//! The official Braintrust TypeScript packages from npm, unmodified, against a real
//! Castellan on SQLite and PostgreSQL: the SDK (`braintrust`: logging, experiments,
//! datasets, `Eval`, `loadPrompt`), its two CLIs (`braintrust eval`, `bt eval`) and
//! the older REST client (`@braintrust/api`), each also as a principal that lacks the
//! permission. The versions are pinned in `scripts/compat-node`; `scripts/test`
//! installs them (`scripts/setup-node.sh`).

use crate::common;
use crate::support;

use castellan_core::{ObjectType, Permission};
use common::{Backend, TestApp};
use serde_json::{json, Value};
use support::{grant, last_json, member, node, node_command, sdk_env};

/// The npm versions these tests were written against (`scripts/compat-node`).
const PINNED: [(&str, &str); 2] = [("braintrust", "3.35.0"), ("@braintrust/api", "0.1.1")];
/// The `bt` CLI that `braintrust` 3.35.0 ships (a native binary per platform).
const BT_VERSION: &str = "bt 0.12.0";

on_both_backends!(
    #[ignore = "needs the official TypeScript SDK: scripts/test runs it"]
    the_logger_writes_traced_spans_that_read_back_through_the_api,
    a_viewer_can_read_the_logs_but_not_log_and_an_outsider_cannot_register_the_project,
    an_experiment_logs_and_summarizes_against_its_base,
    a_viewer_can_summarize_an_experiment_but_not_log_to_it_or_create_one,
    a_dataset_inserts_updates_deletes_and_fetches,
    a_viewer_can_fetch_a_dataset_but_not_insert_and_an_outsider_cannot_find_it,
    an_eval_over_a_dataset_with_two_scorers_has_the_exact_summary,
    an_eval_without_create_permission_is_refused,
    load_prompt_builds_the_stored_prompt_at_each_version,
    load_prompt_needs_read_on_the_prompt,
    the_braintrust_and_bt_clis_run_an_eval_file,
    the_clis_refuse_an_eval_without_create_permission,
    the_older_rest_client_replaces_objects_and_gives_prompt_feedback
);

#[test]
#[ignore = "needs the official TypeScript SDK: scripts/test runs it"]
fn the_pinned_npm_packages_are_the_ones_installed() {
    let Some(modules) = common::node_modules() else { return };
    for (package, version) in PINNED {
        let manifest = modules.join(package).join("package.json");
        let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
        let v: Value = serde_json::from_str(&text).expect("package.json");
        assert_eq!(v["version"], version, "{package} (run scripts/setup-node.sh)");
    }
    let out = common::run_node(&modules, &[], "bt", &["--version"], &[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), BT_VERSION);
}

/// Checks one entry of a summary's `scores`: exactly the keys the SDKs read, with
/// these values (numbers compared as numbers: JavaScript writes `0.0` as `0`).
fn assert_score(v: &Value, name: &str, score: f64, diff: Option<f64>, (improvements, regressions): (u64, u64)) {
    let mut keys: Vec<&str> = v.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    let mut want = vec!["improvements", "name", "regressions", "score"];
    want.extend(diff.map(|_| "diff"));
    keys.sort_unstable();
    want.sort_unstable();
    assert_eq!(keys, want, "{v}");
    assert_eq!(v["name"], name);
    let close = |x: &Value, y: f64| x.as_f64().is_some_and(|x| (x - y).abs() < 1e-9);
    assert!(close(&v["score"], score), "score of {v}");
    if let Some(d) = diff {
        assert!(close(&v["diff"], d), "diff of {v}");
    }
    assert_eq!((v["improvements"].as_u64(), v["regressions"].as_u64()), (Some(improvements), Some(regressions)), "{v}");
}

/// A script: the SDK, `out(value)` to print the result (the last line), `refusal(e)`
/// for an error's status and message, and `state()` for a fresh SDK state whose
/// background flush errors (refused `/logs3` writes, which the SDK does not throw)
/// land in `flushErrors`.
macro_rules! script {
    ($body:literal) => {
        concat!(
            r#"
const bt = require("braintrust");
const out = (v) => console.log(JSON.stringify(v));
const refusal = (e) => ({ status: e.status ?? null, message: String(e.message ?? e), data: e.data ?? null });
const flushErrors = [];
const state = () => new bt.BraintrustState({ onFlushError: (e) => flushErrors.push(String(e.message ?? e)) });
const byId = (a, b) => (a.id < b.id ? -1 : 1);
const main = (f) => f().catch((e) => { console.error(e); process.exit(1); });
"#,
            $body
        )
    };
}

/// The SDK's environment, pointed at `app`, acting with `key`.
fn env(app: &TestApp, key: &str) -> Vec<(String, String)> {
    let mut env = sdk_env(app, key);
    env.push(("BRAINTRUST_BASE_URL".into(), app.base.clone()));
    env
}

async fn id_of(app: &TestApp, key: &str, path: &str, body: Value) -> String {
    let (s, v) = app.post(path, key, body).await;
    assert_eq!(s, 200, "{path}: {v}");
    v["id"].as_str().expect("id").to_owned()
}

const LOGGER: &str = script!(
    r#"
main(async () => {
  const logger = bt.initLogger({ projectName: "proj-a" });
  logger.log({ input: { x: 1 }, output: { y: 2 }, scores: { s: 1 } });
  const add = bt.wrapTraced(async function add(a, b) { return a + b; });
  await logger.traced(async (span) => {
    span.log({ output: { a: 2 }, metadata: { k: { x: 1 } } });
    await span.traced(async (child) => child.log({ input: "x", output: "y" }), { name: "child" });
    await add(1, 2);
    span.log({ metadata: { k: { y: 2 } }, tags: ["t1"] });
  }, { name: "request", event: { input: { q: 1 } } });
  await logger.flush();
  out({ project_id: (await logger.project).id });
});
"#
);

async fn the_logger_writes_traced_spans_that_read_back_through_the_api(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let Some(out) = node(LOGGER, env(&app, &key)).await else { return };
    let got = last_json(&out);
    let pid = got["project_id"].as_str().expect("project id");
    let (s, v) = app.get(&format!("/v1/project_logs/{pid}/fetch"), &key).await;
    assert_eq!(s, 200);
    let rows = v["events"].as_array().expect("events");
    assert_eq!(rows.len(), 4, "the logged row, request, child and add: {rows:#?}");
    let by_name = |n: &str| rows.iter().find(|r| r["span_attributes"]["name"] == n).cloned().unwrap_or(Value::Null);
    let root = by_name("request");
    assert_eq!(root["input"], json!({"q": 1}));
    assert_eq!(root["output"], json!({"a": 2}));
    assert_eq!(root["metadata"], json!({"k": {"x": 1, "y": 2}}), "span.log calls merge");
    assert_eq!(root["tags"], json!(["t1"]));
    assert_eq!(root["span_parents"], Value::Null, "a root span");
    assert!(root["metrics"]["end"].as_f64().is_some(), "the span's end was merged in: {root}");
    for name in ["child", "add"] {
        let span = by_name(name);
        assert_eq!(span["root_span_id"], root["root_span_id"], "{name} is in the request's trace");
        assert_eq!(span["span_parents"], json!([root["span_id"].clone()]), "{name} is the request's child");
    }
    assert_eq!(by_name("add")["input"], json!([1, 2]));
    assert_eq!(by_name("add")["output"], json!(3));
    assert_eq!(by_name("add")["span_attributes"]["type"], "function", "wrapTraced makes a function span");
    let logged = rows.iter().find(|r| r["input"] == json!({"x": 1})).expect("the logged row");
    assert_eq!(logged["scores"], json!({"s": 1}));
    assert_ne!(logged["root_span_id"], root["root_span_id"], "a trace of its own");
}

const LOG_AS: &str = script!(
    r#"
main(async () => {
  const logger = bt.initLogger({ projectName: "proj-a", state: state() });
  let project = null;
  try { project = (await logger.project).id; } catch (e) { out({ refused: refusal(e) }); return; }
  logger.log({ input: { x: 1 }, output: { y: 2 } });
  await logger.flush();
  out({ project, flushErrors });
});
"#
);

async fn a_viewer_can_read_the_logs_but_not_log_and_an_outsider_cannot_register_the_project(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let pid = id_of(&app, &key, "/v1/project", json!({"name": "proj-a"})).await;
    let rows = json!({"events": [{"id": "r1", "input": 1}]});
    assert_eq!(app.post(&format!("/v1/project_logs/{pid}/insert"), &key, rows).await.0, 200);
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    let Some(out) = node(LOG_AS, env(&app, &viewer.key)).await else { return };
    let got = last_json(&out);
    assert_eq!(got["project"], pid.as_str(), "the viewer reads the project: {out}");
    let errors = got["flushErrors"].as_array().expect("errors");
    assert!(!errors.is_empty(), "the refused write is reported: {out}");
    assert!(
        errors.iter().all(|e| e.as_str().is_some_and(|e| e.contains("403") && e.contains("lack `update`"))),
        "{out}"
    );
    let (_, v) = app.get(&format!("/v1/project_logs/{pid}/fetch"), &viewer.key).await;
    let ids: Vec<&str> = v["events"].as_array().expect("events").iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, vec!["r1"], "nothing was written");
    // A member with no grant cannot see the project, so registering it is creating a
    // project, which it may not do either.
    let outsider = member(&app, &key, "out@example.com", None).await;
    let Some(out) = node(LOG_AS, env(&app, &outsider.key)).await else { return };
    let refused = &last_json(&out)["refused"];
    assert_eq!(refused["status"], 403, "{out}");
    assert!(refused["data"].as_str().is_some_and(|d| d.contains("forbidden")), "{out}");
    let (_, list) = app.get("/v1/project", &key).await;
    assert_eq!(common::ids(&list), vec![pid], "no second project");
}

const EXPERIMENTS: &str = script!(
    r#"
main(async () => {
  const base = bt.init("proj-b", { experiment: "base" });
  [[1, 0], [2, 1], [3, 0.5]].forEach(([input, s], i) => base.log({ input, output: input * 2, scores: { exact: s }, metadata: { i } }));
  const first = await base.summarize();
  const exp = bt.init("proj-b", { experiment: "base", baseExperiment: "base" });
  [[1, 1], [2, 0], [3, 0.5]].forEach(([input, s]) => exp.log({ input, output: input * 2, scores: { exact: s } }));
  const second = await exp.summarize();
  const stray = bt.init("proj-b", { experiment: "stray", baseExperiment: "no-such-experiment" });
  stray.log({ input: 1, output: 2, scores: { exact: 1 } });
  const third = await stray.summarize();
  const opened = bt.init("proj-b", { experiment: await exp.name, open: true });
  const rows = [];
  for await (const r of opened.fetch()) rows.push(r);
  out({ first, second, third, rows: rows.length, base: await base.id, id: await exp.id, stray: await stray.id });
});
"#
);

async fn an_experiment_logs_and_summarizes_against_its_base(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let Some(out) = node(EXPERIMENTS, env(&app, &key)).await else { return };
    let got = last_json(&out);
    let (first, second, third) = (&got["first"], &got["second"], &got["third"]);
    assert_eq!(first["experimentName"], "base");
    assert_eq!(first["comparisonExperimentName"], Value::Null, "the project's first experiment has no base");
    assert_score(&first["scores"]["exact"], "exact", 0.5, None, (0, 0));
    assert_eq!(second["experimentName"], "base-1", "a taken name gets a suffix");
    assert_eq!(second["comparisonExperimentName"], "base", "the base experiment named at init");
    assert_score(&second["scores"]["exact"], "exact", 0.5, Some(0.0), (1, 1));
    assert!(second["metrics"]["duration"]["unit"] == "s", "{second}");
    assert_eq!(third["comparisonExperimentName"], "base-1", "a missing base is dropped; the previous one compares");
    assert_eq!(third["scores"]["exact"]["diff"], 0.5);
    assert_eq!(got["rows"], 3, "the opened experiment's rows, fetched through /btql");
    let (_, e) = app.get(&format!("/v1/experiment/{}", got["id"].as_str().expect("id")), &key).await;
    assert_eq!(e["base_exp_id"], got["base"], "the base is stored");
    let (_, e) = app.get(&format!("/v1/experiment/{}", got["stray"].as_str().expect("id")), &key).await;
    assert_eq!(e["base_exp_id"], Value::Null, "the missing base was not stored");
}

const VIEWER_EXPERIMENT: &str = script!(
    r#"
main(async () => {
  const exp = bt.init("proj-b", { experiment: "e1", update: true, state: state() });
  exp.log({ input: 5, output: 10, scores: { s: 0 } });
  await exp.flush();
  const summary = await exp.summarize();
  let created = null;
  try { await bt.init("proj-b", { experiment: "e2", state: state() }).id; } catch (e) { created = refusal(e); }
  out({ id: await exp.id, flushErrors, score: summary.scores.s.score, created });
});
"#
);

async fn a_viewer_can_summarize_an_experiment_but_not_log_to_it_or_create_one(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let pid = id_of(&app, &key, "/v1/project", json!({"name": "proj-b"})).await;
    let id = id_of(&app, &key, "/v1/experiment", json!({"project_id": pid, "name": "e1"})).await;
    let rows = json!({"events": [{"id": "r1", "input": 1, "output": 2, "scores": {"s": 1}}]});
    assert_eq!(app.post(&format!("/v1/experiment/{id}/insert"), &key, rows).await.0, 200);
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    let Some(out) = node(VIEWER_EXPERIMENT, env(&app, &viewer.key)).await else { return };
    let got = last_json(&out);
    assert_eq!(got["id"], id.as_str(), "update: true reopens the existing experiment: {out}");
    assert!(got["flushErrors"][0].as_str().is_some_and(|e| e.contains("403")), "{out}");
    assert_eq!(got["score"], 1.0, "the refused row was not written: {out}");
    assert_eq!(got["created"]["status"], 403, "{out}");
    assert!(got["created"]["data"].as_str().is_some_and(|d| d.contains("you may not create")), "{out}");
}

const DATASET: &str = script!(
    r#"
main(async () => {
  const ds = bt.initDataset("proj-c", { dataset: "ds1", description: "d", metadata: { a: 1 } });
  for (let i = 0; i < 5; i++) ds.insert({ input: { q: i }, expected: { a: i }, metadata: { i }, id: `row${i}` });
  await ds.flush();
  const first = await ds.version();
  ds.update({ id: "row1", expected: { a: 100 }, tags: ["fixed"] });
  ds.delete("row4");
  await ds.flush();
  const again = bt.initDataset({ project: "proj-c", datasetId: await ds.id });
  const rows = [];
  for await (const r of again.fetch()) rows.push(r);
  const pinned = bt.initDataset("proj-c", { dataset: "ds1", version: first });
  const old = [];
  for await (const r of pinned.fetch()) old.push(r);
  const summary = await again.summarize();
  out({ first, latest: await again.version(), name: await again.name, rows: rows.sort(byId), old: old.sort(byId),
        total: summary.dataSummary.totalRecords });
});
"#
);

async fn a_dataset_inserts_updates_deletes_and_fetches(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let Some(out) = node(DATASET, env(&app, &key)).await else { return };
    let got = last_json(&out);
    assert_eq!(got["name"], "ds1", "found by id through /api/self/get_object_info");
    let rows = got["rows"].as_array().expect("rows");
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, vec!["row0", "row1", "row2", "row3"], "row4 was deleted");
    assert_eq!(rows[1]["expected"], json!({"a": 100}));
    assert_eq!(rows[1]["input"], json!({"q": 1}), "an update merges into the record");
    assert_eq!(rows[1]["tags"], json!(["fixed"]));
    assert_eq!(rows[0]["metadata"], json!({"i": 0}));
    let old = got["old"].as_array().expect("old");
    assert_eq!(old.len(), 5, "the pinned version still has row4");
    assert_eq!(old[1]["expected"], json!({"a": 1}));
    let (first, latest) = (got["first"].as_str().expect("v"), got["latest"].as_str().expect("v"));
    assert!(first.len() == 19 && latest.len() == 19 && latest > first, "{first} < {latest}");
    assert_eq!(got["total"], 4);
}

const FETCH_AND_INSERT: &str = script!(
    r#"
main(async () => {
  const ds = process.env.DATASET_ID
    ? bt.initDataset({ project: "proj-c", datasetId: process.env.DATASET_ID, state: state() })
    : bt.initDataset("proj-c", { dataset: "ds1", state: state() });
  let rows;
  try { rows = []; for await (const r of ds.fetch()) rows.push(r); } catch (e) { out({ refused: refusal(e) }); return; }
  ds.insert({ input: { q: 9 }, expected: { a: 9 } });
  await ds.flush();
  out({ rows: rows.length, flushErrors });
});
"#
);

async fn a_viewer_can_fetch_a_dataset_but_not_insert_and_an_outsider_cannot_find_it(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let pid = id_of(&app, &key, "/v1/project", json!({"name": "proj-c"})).await;
    let did = id_of(&app, &key, "/v1/dataset", json!({"project_id": pid, "name": "ds1"})).await;
    let rows = json!({"events": [{"id": "a", "input": 1}]});
    assert_eq!(app.post(&format!("/v1/dataset/{did}/insert"), &key, rows).await.0, 200);
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    let Some(out) = node(FETCH_AND_INSERT, env(&app, &viewer.key)).await else { return };
    let got = last_json(&out);
    assert_eq!(got["rows"], 1, "{out}");
    assert!(got["flushErrors"][0].as_str().is_some_and(|e| e.contains("403")), "{out}");
    let (_, v) = app.get(&format!("/v1/dataset/{did}/fetch"), &key).await;
    assert_eq!(v["events"].as_array().map(Vec::len), Some(1), "nothing was written");
    let outsider = member(&app, &key, "out@example.com", None).await;
    let mut by_id = env(&app, &outsider.key);
    by_id.push(("DATASET_ID".into(), did.clone()));
    let Some(out) = node(FETCH_AND_INSERT, by_id).await else { return };
    let refused = &last_json(&out)["refused"];
    assert_eq!(refused["message"], format!("Dataset with ID {did} not found"), "{out}");
    let fetch = json!({"query": {"select": [{"op": "star"}],
        "from": {"op": "function", "name": {"op": "ident", "name": ["dataset"]}, "args": [{"op": "literal", "value": did}]}}});
    let (s, v) = app.post("/btql", &outsider.key, fetch).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (404, Some("not_found")));
}

const EVAL: &str = script!(
    r#"
main(async () => {
  const ds = bt.initDataset("proj-d", { dataset: "qa" });
  [["1+1", "2"], ["2+2", "4"], ["3+3", "6"], ["4+4", "9"], ["5+5", "10"]].forEach(([input, expected], i) => ds.insert({ input, expected, id: `q${i}` }));
  await ds.flush();
  const sums = { "1+1": "2", "2+2": "4", "3+3": "6", "4+4": "8", "5+5": "10" };
  const exact = ({ output, expected }) => (output === expected ? 1 : 0);
  const short = ({ output }) => ({ name: "short", score: output.length === 1 ? 1 : 0.5 });
  const run = (experimentName, answers) => bt.Eval("proj-d", {
    data: bt.initDataset("proj-d", { dataset: "qa" }), task: (input) => answers[input], scores: [exact, short], experimentName });
  const first = await run("run1", sums);
  const second = await run("run2", { ...sums, "4+4": "9" });
  out({ first: first.summary, second: second.summary, dataset: await ds.id });
});
"#
);

async fn an_eval_over_a_dataset_with_two_scorers_has_the_exact_summary(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let Some(out) = node(EVAL, env(&app, &key)).await else { return };
    let got = last_json(&out);
    let (first, second) = (&got["first"], &got["second"]);
    // 4 of 5 answers are right; one answer has two characters.
    assert_eq!(first["experimentName"], "run1");
    assert_eq!(first["comparisonExperimentName"], Value::Null);
    assert_score(&first["scores"]["exact"], "exact", 0.8, None, (0, 0));
    assert_score(&first["scores"]["short"], "short", 0.9, None, (0, 0));
    assert_eq!(second["comparisonExperimentName"], "run1", "the previous experiment is the base");
    assert_score(&second["scores"]["exact"], "exact", 1.0, Some(0.2), (1, 0));
    assert_score(&second["scores"]["short"], "short", 0.9, Some(0.0), (0, 0));
    let id = second["experimentId"].as_str().expect("experiment id");
    let (_, e) = app.get(&format!("/v1/experiment/{id}"), &key).await;
    assert_eq!(e["name"], "run2");
    assert_eq!(e["dataset_id"], got["dataset"]);
    assert!(e["dataset_version"].as_str().is_some_and(|v| v.len() == 19), "{e}");
    let (_, rows) = app.post(&format!("/v1/experiment/{id}/fetch"), &key, json!({"limit": 1000})).await;
    let rows = rows["events"].as_array().expect("events");
    let scorer_rows = rows.iter().filter(|r| r["span_attributes"]["type"] == "score").count();
    assert_eq!(scorer_rows, 10, "one score span per scorer per case");
    let evals: Vec<&Value> = rows.iter().filter(|r| r["span_attributes"]["type"] == "eval").collect();
    assert_eq!(evals.len(), 5);
    assert!(evals.iter().all(|r| r["origin"]["object_type"] == "dataset"), "{evals:?}");
}

const EVAL_DENIED: &str = script!(
    r#"
main(async () => {
  try {
    await bt.Eval("proj-d", { data: [{ input: "1+1", expected: "2" }], task: () => "2", scores: [() => 1], experimentName: "sneaky" });
    out({ refused: null });
  } catch (e) { out({ refused: refusal(e) }); }
});
"#
);

async fn an_eval_without_create_permission_is_refused(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let pid = id_of(&app, &key, "/v1/project", json!({"name": "proj-d"})).await;
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    let Some(out) = node(EVAL_DENIED, env(&app, &viewer.key)).await else { return };
    let refused = &last_json(&out)["refused"];
    assert_eq!(refused["status"], 403, "{out}");
    assert!(refused["data"].as_str().is_some_and(|d| d.contains("you may not create")), "{out}");
    let (_, list) = app.get(&format!("/v1/experiment?project_id={pid}"), &key).await;
    assert_eq!(common::ids(&list).len(), 0, "no experiment was created");
}

const LOAD_PROMPT: &str = script!(
    r#"
main(async () => {
  const latest = await bt.loadPrompt({ projectName: "proj-e", slug: "greeter" });
  const old = await bt.loadPrompt({ projectName: "proj-e", slug: "greeter", version: process.env.V1 });
  const byId = await bt.loadPrompt({ id: latest.id });
  const built = latest.build({ name: "Ada" });
  out({ latest: built.messages, model: built.model, old: old.build({ name: "Ada" }).messages, version: latest.version,
        byId: byId.version });
});
"#
);

async fn load_prompt_builds_the_stored_prompt_at_each_version(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, v1, v2) = crate::sdk::make_prompt(&app, &key).await;
    let mut env = env(&app, &key);
    env.push(("V1".into(), v1));
    let Some(out) = node(LOAD_PROMPT, env).await else { return };
    let got = last_json(&out);
    assert_eq!(got["latest"], json!([{"role": "system", "content": "Goodbye Ada"}]));
    assert_eq!(got["old"], json!([{"role": "system", "content": "Hello Ada"}]));
    assert_eq!(got["model"], "gpt-4o-mini");
    assert_eq!(got["version"], v2.as_str());
    assert_eq!(got["byId"], v2.as_str());
}

const LOAD_PROMPT_AS: &str = script!(
    r#"
main(async () => {
  try {
    const p = await bt.loadPrompt({ projectName: "proj-e", slug: "greeter" });
    out({ loaded: p.build({ name: "Bo" }).messages[0].content });
  } catch (e) { out({ refused: refusal(e) }); }
});
"#
);

async fn load_prompt_needs_read_on_the_prompt(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (id, _, _) = crate::sdk::make_prompt(&app, &key).await;
    let outsider = member(&app, &key, "out@example.com", None).await;
    let Some(out) = node(LOAD_PROMPT_AS, env(&app, &outsider.key)).await else { return };
    assert_eq!(last_json(&out)["refused"]["message"], "Prompt greeter not found in proj-e", "{out}");
    let prompt = uuid::Uuid::parse_str(&id).expect("uuid");
    grant(&app, &key, outsider.user, ObjectType::Prompt, prompt, Permission::Read).await;
    let Some(out) = node(LOAD_PROMPT_AS, env(&app, &outsider.key)).await else { return };
    assert_eq!(last_json(&out)["loaded"], "Goodbye Bo", "a grant on the prompt alone is enough: {out}");
}

/// An eval file as the CLIs run it (TypeScript, bundled by the CLI).
const EVAL_FILE: &str = r#"
import { Eval } from "braintrust";

const answers: Record<string, string> = { "1+1": "2", "2+2": "4", "3+3": "6", "4+4": "8" };

Eval("proj-cli", {
  data: () => [
    { input: "1+1", expected: "2" },
    { input: "2+2", expected: "4" },
    { input: "3+3", expected: "7" },
    { input: "4+4", expected: "8" },
  ],
  task: async (input: string) => answers[input],
  scores: [({ output, expected }: { output: string; expected?: string }) => ({ name: "exact", score: output === expected ? 1 : 0 })],
  experimentName: "cli-run",
});
"#;

/// `braintrust eval` and `bt eval` of `math.eval.ts`, one summary line each.
const CLI_RUNS: [(&str, &[&str]); 2] = [
    ("braintrust", &["eval", "--jsonl", "math.eval.ts"]),
    ("bt", &["eval", "--jsonl", "--no-color", "--no-input", "math.eval.ts"]),
];

async fn the_braintrust_and_bt_clis_run_an_eval_file(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let mut names = Vec::new();
    for (program, args) in CLI_RUNS {
        let Some(out) = node_command(&[("math.eval.ts", EVAL_FILE)], program, args, env(&app, &key)).await else {
            return;
        };
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{program} eval failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
        let summary = last_json(&stdout);
        assert_eq!(summary["projectName"], "proj-cli");
        assert_eq!(summary["scores"]["exact"]["score"], 0.75, "{program}: {summary}");
        names.push((summary["experimentName"].clone(), summary["comparisonExperimentName"].clone()));
    }
    assert_eq!(names[0], (json!("cli-run"), Value::Null));
    assert_eq!(names[1], (json!("cli-run-1"), json!("cli-run")), "bt's run is compared with the first");
    let (_, list) = app.get("/v1/experiment?project_name=proj-cli", &key).await;
    assert_eq!(common::ids(&list).len(), 2);
}

async fn the_clis_refuse_an_eval_without_create_permission(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let pid = id_of(&app, &key, "/v1/project", json!({"name": "proj-cli"})).await;
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    for (program, args) in CLI_RUNS {
        let Some(out) = node_command(&[("math.eval.ts", EVAL_FILE)], program, args, env(&app, &viewer.key)).await
        else {
            return;
        };
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{program} eval should fail: {text}");
        assert!(text.contains("403") && text.contains("you may not create"), "{program}: {text}");
    }
    let (_, list) = app.get(&format!("/v1/experiment?project_id={pid}"), &key).await;
    assert_eq!(common::ids(&list).len(), 0, "no experiment was created");
}

const REST: &str = script!(
    r#"
const Braintrust = require("@braintrust/api").default;
const c = new Braintrust({ apiKey: process.env.BRAINTRUST_API_KEY, baseURL: process.env.BRAINTRUST_BASE_URL, maxRetries: 0 });
const attempt = async (f) => { try { return { ok: await f() }; } catch (e) { return { status: e.status, message: String(e.message) }; } };
const P = process.env.PROJECT_ID, PROMPT = process.env.PROMPT_ID, USER = process.env.USER_ID;
main(async () => {
  out({
    project: [await attempt(() => c.project.replace({ name: "proj-api" })), await attempt(() => c.project.replace({ name: "proj-new" }))],
    experiment: [await attempt(() => c.experiment.replace({ project_id: P, name: "e1", description: "first", metadata: { a: 1 } })),
                 await attempt(() => c.experiment.replace({ project_id: P, name: "e1", description: "second" }))],
    dataset: [await attempt(() => c.dataset.replace({ project_id: P, name: "d1", description: "x" })),
              await attempt(() => c.dataset.replace({ project_id: P, name: "d1", description: "y" }))],
    acl: [await attempt(() => c.acl.replace({ object_type: "project", object_id: P, user_id: USER, permission: "read" })),
          await attempt(() => c.acl.replace({ object_type: "project", object_id: P, user_id: USER, permission: "read" }))],
    feedback: await attempt(() => c.prompt.feedback(PROMPT, { feedback: [{ id: PROMPT, comment: "nice", metadata: { user_id: "u1" } }] })),
  });
});
"#
);

async fn the_older_rest_client_replaces_objects_and_gives_prompt_feedback(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let pid = id_of(&app, &key, "/v1/project", json!({"name": "proj-api"})).await;
    let prompt_data = json!({"prompt": {"type": "completion", "content": "hi"}});
    let body = json!({"project_id": pid, "name": "P", "slug": "p", "prompt_data": prompt_data});
    let prompt = id_of(&app, &key, "/v1/prompt", body).await;
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    let outsider = member(&app, &key, "out@example.com", None).await;
    let run = |k: &str| {
        let mut e = env(&app, k);
        e.extend([("PROJECT_ID".into(), pid.clone()), ("PROMPT_ID".into(), prompt.clone())]);
        e.push(("USER_ID".into(), viewer.user.0.to_string()));
        e
    };
    let Some(out) = node(REST, run(&key)).await else { return };
    let got = last_json(&out);
    let ok = |v: &Value, field: &str| v["ok"][field].clone();
    assert_eq!(ok(&got["project"][0], "id"), json!(pid), "an existing project is replaced, not duplicated: {out}");
    assert!(got["project"][1]["ok"]["id"].is_string(), "a new name creates one: {out}");
    let [e1, e2] = [&got["experiment"][0], &got["experiment"][1]];
    assert_eq!(ok(e1, "id"), ok(e2, "id"), "{out}");
    assert_eq!((ok(e1, "description"), ok(e2, "description")), (json!("first"), json!("second")));
    assert_eq!(ok(e2, "metadata"), Value::Null, "a replace sets every field");
    assert_eq!(ok(&got["dataset"][0], "id"), ok(&got["dataset"][1], "id"));
    assert_eq!(ok(&got["dataset"][1], "description"), "y");
    assert_eq!(ok(&got["acl"][0], "id"), ok(&got["acl"][1], "id"), "an identical grant is returned as it is");
    assert_eq!(got["feedback"]["ok"], json!({"status": "success"}), "{out}");
    let (_, audit) = app.get(&format!("/v1/audit_log?event_type=prompt.feedback&resource_id={prompt}"), &key).await;
    let records = audit["objects"].as_array().expect("records");
    assert_eq!(records.len(), 1, "{audit}");
    assert_eq!(records[0]["after"]["feedback"][0]["comment"], "nice");
    let (_, p) = app.get(&format!("/v1/prompt/{prompt}"), &key).await;
    assert_eq!(p["prompt_data"], prompt_data, "feedback does not change the prompt");
    // A viewer may read all of it but change none of it; an outsider sees none of it.
    for (k, status) in [(&viewer.key, 403), (&outsider.key, 404)] {
        let Some(out) = node(REST, run(k)).await else { return };
        let got = last_json(&out);
        for field in ["experiment", "dataset", "acl"] {
            assert_eq!(got[field][0]["status"], status, "{field}: {out}");
        }
        assert_eq!(got["feedback"]["status"], status, "feedback: {out}");
        // A project the caller cannot read is a project it would create, and the
        // organization is known to its members: 403 either way.
        assert_eq!(got["project"][0]["status"], 403, "replacing proj-api: {out}");
        assert_eq!(got["project"][1]["status"], 403, "creating a project: {out}");
    }
}
