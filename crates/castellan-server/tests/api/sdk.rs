//! The official Braintrust Python SDK (`braintrust` 0.48.1 from PyPI, unmodified)
//! against a real Castellan, on SQLite and PostgreSQL: logging, experiments,
//! datasets, Eval, prompts, attachments and overflow, each also as a principal that
//! lacks the permission.

use crate::common;
use crate::support;

use common::{Backend, TestApp};
use serde_json::{json, Value};
use support::{grant, last_json, member, python, sdk_env};

on_both_backends!(
    #[ignore = "needs the official Braintrust clients: scripts/test runs it"]
    the_logger_writes_traced_spans_that_read_back_through_the_api,
    a_viewer_can_read_the_logs_but_not_log,
    an_experiment_logs_and_summarizes_against_its_base,
    a_viewer_can_summarize_an_experiment_but_not_log_to_it,
    a_grant_on_one_experiment_reaches_that_experiment_only,
    a_dataset_inserts_updates_deletes_and_fetches,
    a_viewer_can_fetch_a_dataset_but_not_insert_into_it,
    an_eval_over_a_dataset_with_two_scorers_prints_its_summary,
    an_eval_without_create_permission_is_refused,
    load_prompt_builds_the_stored_prompt_at_each_version,
    load_prompt_is_refused_without_read_on_the_prompt,
    attachments_and_oversized_payloads_go_through_signed_urls
);

const LOGGER: &str = r#"
import json, braintrust
logger = braintrust.init_logger(project="proj-a")
logger.log(input={"x": 1}, output={"y": 2}, scores={"s": 1})

@braintrust.traced
def add(a, b):
    return a + b

with logger.start_span(name="request", input={"q": 1}) as span:
    span.log(output={"a": 2}, metadata={"k": {"x": 1}})
    with span.start_span(name="child") as c:
        c.log(input="x", output="y")
    add(1, 2)
    span.log(metadata={"k": {"y": 2}}, tags=["t1"])
logger.flush()

from braintrust_api import Braintrust
import os
client = Braintrust(api_key=os.environ["BRAINTRUST_API_KEY"], base_url=os.environ["BRAINTRUST_API_URL"])
page = client.projects.logs.fetch(logger.project.id, limit=100)
rows = [e.model_dump(by_alias=True) for e in page.events]
print(json.dumps({"project_id": logger.project.id, "rows": rows}, default=str))
"#;

async fn the_logger_writes_traced_spans_that_read_back_through_the_api(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let Some(out) = python(LOGGER, sdk_env(&app, &key)).await else { return };
    let got = last_json(&out);
    let rows = got["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4, "request, child, add and the logged row: {rows:#?}");
    let by_name = |n: &str| rows.iter().find(|r| r["span_attributes"]["name"] == n).cloned().unwrap_or(Value::Null);
    let root = by_name("request");
    assert_eq!(root["input"], json!({"q": 1}));
    assert_eq!(root["metadata"], json!({"k": {"x": 1, "y": 2}}), "span.log calls merge");
    assert_eq!(root["tags"], json!(["t1"]));
    assert!(root["metrics"]["end"].as_f64().is_some(), "the span's end was merged in: {root}");
    let child = by_name("child");
    assert_eq!(child["root_span_id"], root["root_span_id"]);
    assert_eq!(child["span_parents"], json!([root["span_id"].clone()]));
    assert_eq!(by_name("add")["output"], json!(3));
    let xacts: Vec<&str> = rows.iter().filter_map(|r| r["_xact_id"].as_str()).collect();
    assert!(xacts.iter().all(|x| x.len() == 19 && x.bytes().all(|c| c.is_ascii_digit())), "{xacts:?}");
    let pid = got["project_id"].as_str().expect("project id");
    let (s, v) = app.get(&format!("/v1/project_logs/{pid}/fetch?limit=2"), &key).await;
    assert_eq!(s, 200);
    assert_eq!(v["events"].as_array().map(Vec::len), Some(2));
    let cursor = v["cursor"].as_str().expect("a full page has a cursor");
    let (_, next) = app.post(&format!("/v1/project_logs/{pid}/fetch"), &key, json!({"cursor": cursor})).await;
    assert_eq!(next["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(next["cursor"], Value::Null);
}

const VIEWER_LOGS: &str = r#"
import json, os, braintrust
logger = braintrust.init_logger(project="proj-a")
logger.log(input={"x": 1}, output={"y": 2})
try:
    logger.flush()
    print(json.dumps({"flushed": True}))
except Exception as e:
    errors = [str(x) for x in getattr(e, "exceptions", [e])]
    print(json.dumps({"flushed": False, "error": " | ".join(errors)}))
"#;

async fn a_viewer_can_read_the_logs_but_not_log(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, p) = app.post("/v1/project", &key, json!({"name": "proj-a"})).await;
    let pid = p["id"].as_str().expect("id").to_owned();
    let (s, _) =
        app.post(&format!("/v1/project_logs/{pid}/insert"), &key, json!({"events": [{"id": "r1", "input": 1}]})).await;
    assert_eq!(s, 200);
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    let mut env = sdk_env(&app, &viewer.key);
    env.push(("BRAINTRUST_SYNC_FLUSH".into(), "1".into()));
    let Some(out) = python(VIEWER_LOGS, env).await else { return };
    let got = last_json(&out);
    assert_eq!(got["flushed"], false, "{out}");
    assert!(got["error"].as_str().is_some_and(|e| e.contains("403")), "{got}");
    let (s, v) = app.get(&format!("/v1/project_logs/{pid}/fetch"), &viewer.key).await;
    assert_eq!(s, 200, "a viewer reads the logs");
    let ids: Vec<&str> = v["events"].as_array().expect("events").iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, vec!["r1"], "the refused rows were not written");
    let outsider = member(&app, &key, "out@example.com", None).await;
    let (s, v) = app.get(&format!("/v1/project_logs/{pid}/fetch"), &outsider.key).await;
    assert_eq!(s, 404, "a member without grants cannot see the project's logs");
    assert_eq!(v["code"], "not_found");
}

const EXPERIMENTS: &str = r#"
import json, braintrust
base = braintrust.init(project="proj-b", experiment="base")
for i, (inp, score) in enumerate([(1, 0.0), (2, 1.0), (3, 0.5)]):
    base.log(input=inp, output=inp * 2, scores={"exact": score}, metadata={"i": i})
base.summarize()
exp = braintrust.init(project="proj-b", experiment="base", base_experiment="base")
for inp, score in [(1, 1.0), (2, 0.0), (3, 0.5)]:
    exp.log(input=inp, output=inp * 2, scores={"exact": score})
summary = exp.summarize()
opened = braintrust.init(project="proj-b", experiment=exp.name, open=True)
rows = list(opened.fetch())
print(json.dumps({
    "base": base.name, "name": exp.name, "id": exp.id, "compared_to": summary.comparison_experiment_name,
    "scores": {k: {"score": v.score, "diff": v.diff, "improvements": v.improvements, "regressions": v.regressions}
               for k, v in summary.scores.items()},
    "metrics": sorted(summary.metrics), "rows": len(rows), "text": str(summary)}))
"#;

async fn an_experiment_logs_and_summarizes_against_its_base(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let Some(out) = python(EXPERIMENTS, sdk_env(&app, &key)).await else { return };
    let got = last_json(&out);
    assert_eq!(got["base"], "base");
    assert_eq!(got["name"], "base-1", "ensure_new gives a taken name a suffix");
    assert_eq!(got["compared_to"], "base", "the base experiment named at init is the comparison");
    let exact = &got["scores"]["exact"];
    assert_eq!(exact["score"], 0.5);
    assert_eq!(exact["diff"], 0.0);
    assert_eq!((exact["improvements"].as_u64(), exact["regressions"].as_u64()), (Some(1), Some(1)));
    assert_eq!(got["metrics"], json!(["duration"]));
    assert_eq!(got["rows"], 3);
    assert!(got["text"].as_str().is_some_and(|t| t.contains("base-1 compared to base")), "{got}");
    let id = got["id"].as_str().expect("id");
    let (s, e) = app.get(&format!("/v1/experiment/{id}"), &key).await;
    assert_eq!(s, 200);
    assert!(e["base_exp_id"].as_str().is_some(), "the base is stored: {e}");
    let (_, again) = app
        .get(&format!("/v1/experiment/{id}/summarize?summarize_scores=true&comparison_experiment_id={id}"), &key)
        .await;
    assert_eq!(again["scores"]["exact"]["diff"], 0.0);
    assert_eq!(again["scores"]["exact"]["improvements"], 0, "compared with itself nothing changes");
}

const VIEWER_EXPERIMENT: &str = r#"
import json, braintrust
exp = braintrust.init(project="proj-b", experiment="e1", update=True)
exp.log(input=5, output=10, scores={"s": 0})
try:
    exp.flush()
    error = None
except Exception as e:
    error = " | ".join(str(x) for x in getattr(e, "exceptions", [e]))
print(json.dumps({"id": exp.id, "error": error, "score": exp.summarize().scores["s"].score}))
"#;

async fn a_viewer_can_summarize_an_experiment_but_not_log_to_it(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, p) = app.post("/v1/project", &key, json!({"name": "proj-b"})).await;
    let (_, e) = app.post("/v1/experiment", &key, json!({"project_id": p["id"], "name": "e1"})).await;
    let id = e["id"].as_str().expect("id").to_owned();
    let rows = json!({"events": [{"id": "r1", "input": 1, "output": 2, "scores": {"s": 1}}]});
    assert_eq!(app.post(&format!("/v1/experiment/{id}/insert"), &key, rows).await.0, 200);
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    let mut env = sdk_env(&app, &viewer.key);
    env.push(("BRAINTRUST_SYNC_FLUSH".into(), "1".into()));
    let Some(out) = python(VIEWER_EXPERIMENT, env).await else { return };
    let got = last_json(&out);
    assert_eq!(got["id"], id.as_str(), "update=True opens the existing experiment: {got}");
    assert!(got["error"].as_str().is_some_and(|e| e.contains("403")), "{got}");
    assert_eq!(got["score"], 1.0, "the refused row was not written: {got}");
}

const OPEN_EXPERIMENT: &str = r#"
import json, sys, braintrust
out = {}
for name in ["e1", "e2"]:
    try:
        rows = list(braintrust.init(project="proj-g", experiment=name, open=True).fetch())
        out[name] = len(rows)
    except Exception as e:
        out[name] = "error: " + str(e)
print(json.dumps(out))
"#;

async fn a_grant_on_one_experiment_reaches_that_experiment_only(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, p) = app.post("/v1/project", &key, json!({"name": "proj-g"})).await;
    let pid = p["id"].as_str().expect("id").to_owned();
    let mut ids = Vec::new();
    for name in ["e1", "e2"] {
        let (s, e) = app.post("/v1/experiment", &key, json!({"project_id": pid, "name": name})).await;
        assert_eq!(s, 200);
        let id = e["id"].as_str().expect("id").to_owned();
        let rows = json!({"events": [{"id": "r1", "input": 1, "output": 2, "scores": {"s": 1}}]});
        assert_eq!(app.post(&format!("/v1/experiment/{id}/insert"), &key, rows).await.0, 200);
        ids.push(id);
    }
    let reader = member(&app, &key, "rita@example.com", None).await;
    let e1 = uuid::Uuid::parse_str(&ids[0]).expect("uuid");
    grant(&app, &key, reader.user, castellan_core::ObjectType::Experiment, e1, castellan_core::Permission::Read).await;
    let Some(out) = python(OPEN_EXPERIMENT, sdk_env(&app, &reader.key)).await else { return };
    let got = last_json(&out);
    assert_eq!(got["e1"], 1, "{got}");
    assert!(got["e2"].as_str().is_some_and(|e| e.starts_with("error")), "{got}");
    let (_, list) = app.get("/v1/experiment?project_name=proj-g", &reader.key).await;
    assert_eq!(common::ids(&list), vec![ids[0].clone()]);
    for (path, status) in [
        (format!("/v1/experiment/{}", ids[0]), 200),
        (format!("/v1/experiment/{}/summarize?summarize_scores=true", ids[0]), 200),
        (format!("/v1/experiment/{}", ids[1]), 404),
        (format!("/v1/experiment/{}/fetch", ids[1]), 404),
        (format!("/v1/project/{pid}"), 404),
        (format!("/v1/project_logs/{pid}/fetch"), 404),
    ] {
        assert_eq!(app.get(&path, &reader.key).await.0, status, "GET {path}");
    }
    let row = json!({"events": [{"id": "r2", "input": 1}]});
    let (s, v) = app.post(&format!("/v1/experiment/{}/insert", ids[0]), &reader.key, row.clone()).await;
    assert_eq!((s.as_u16(), v["code"].as_str()), (403, Some("forbidden")), "read is not update");
    assert_eq!(app.post(&format!("/v1/experiment/{}/insert", ids[1]), &reader.key, row).await.0, 404);
    let (s, _) = app.post("/v1/experiment", &reader.key, json!({"project_id": pid, "name": "e3"})).await;
    assert_eq!(s, 404, "no create in a project it cannot see");
}

const DATASET: &str = r#"
import json, braintrust
ds = braintrust.init_dataset(project="proj-c", name="ds1", description="d", metadata={"a": 1})
for i in range(5):
    ds.insert(input={"q": i}, expected={"a": i}, metadata={"i": i}, id=f"row{i}")
ds.flush()
first = ds.version
ds.update(id="row1", expected={"a": 100}, tags=["fixed"])
ds.delete("row4")
ds.flush()
again = braintrust.init_dataset(project="proj-c", name="ds1")
rows = sorted(again.fetch(), key=lambda r: r["id"])
pinned = braintrust.init_dataset(project="proj-c", name="ds1", version=first)
old = sorted(pinned.fetch(), key=lambda r: r["id"])
print(json.dumps({"first": first, "latest": again.version, "rows": rows, "old": old,
                  "total": again.summarize().data_summary.total_records}, default=str))
"#;

async fn a_dataset_inserts_updates_deletes_and_fetches(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let Some(out) = python(DATASET, sdk_env(&app, &key)).await else { return };
    let got = last_json(&out);
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

const VIEWER_DATASET: &str = r#"
import json, braintrust
ds = braintrust.init_dataset(project="proj-c", name="ds1")
rows = list(ds.fetch())
ds.insert(input={"q": 9}, expected={"a": 9})
try:
    ds.flush()
    error = None
except Exception as e:
    error = " | ".join(str(x) for x in getattr(e, "exceptions", [e]))
print(json.dumps({"rows": len(rows), "error": error}))
"#;

async fn a_viewer_can_fetch_a_dataset_but_not_insert_into_it(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, p) = app.post("/v1/project", &key, json!({"name": "proj-c"})).await;
    let (_, d) = app.post("/v1/dataset", &key, json!({"project_id": p["id"], "name": "ds1"})).await;
    let did = d["id"].as_str().expect("id").to_owned();
    let (s, _) =
        app.post(&format!("/v1/dataset/{did}/insert"), &key, json!({"events": [{"id": "a", "input": 1}]})).await;
    assert_eq!(s, 200);
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    let mut env = sdk_env(&app, &viewer.key);
    env.push(("BRAINTRUST_SYNC_FLUSH".into(), "1".into()));
    let Some(out) = python(VIEWER_DATASET, env).await else { return };
    let got = last_json(&out);
    assert_eq!(got["rows"], 1, "{got}");
    assert!(got["error"].as_str().is_some_and(|e| e.contains("403")), "{got}");
    let (_, v) = app.get(&format!("/v1/dataset/{did}/fetch"), &key).await;
    assert_eq!(v["events"].as_array().map(Vec::len), Some(1), "nothing was written");
}

const EVAL: &str = r#"
import json, braintrust
from braintrust import Eval, init_dataset

ds = init_dataset(project="proj-d", name="qa")
for i, (q, a) in enumerate([("1+1", "2"), ("2+2", "4"), ("3+3", "6"), ("4+4", "9"), ("5+5", "10")]):
    ds.insert(input=q, expected=a, id=f"q{i}")
ds.flush()

def exact(input, output, expected):
    return 1.0 if output == expected else 0.0

def short(input, output, expected):
    return 1.0 if len(output) == 1 else 0.5

first = Eval("proj-d", data=init_dataset(project="proj-d", name="qa"), task=lambda input: str(eval(input)),
             scores=[exact, short], experiment_name="run1")
print("=== run2")
fixed = {"4+4": "9"}
second = Eval("proj-d", data=init_dataset(project="proj-d", name="qa"),
              task=lambda input: fixed.get(input, str(eval(input))), scores=[exact, short], experiment_name="run2")
print(json.dumps({"first": first.summary.experiment_id, "second": second.summary.experiment_id}))
"#;

async fn an_eval_over_a_dataset_with_two_scorers_prints_its_summary(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let Some(out) = python(EVAL, sdk_env(&app, &key)).await else { return };
    let (first, second) = out.split_once("=== run2").expect("both runs printed");
    // 4 of 5 answers are right; one answer has two characters.
    assert!(first.contains("80.00% 'exact' score"), "{first}");
    assert!(first.contains("90.00% 'short' score"), "{first}");
    assert!(second.contains("run2 compared to run1"), "{second}");
    assert!(second.contains("100.00% (+20.00%) 'exact' score\t(1 improvements, 0 regressions)"), "{second}");
    assert!(second.contains("90.00% (-) 'short' score\t(0 improvements, 0 regressions)"), "{second}");
    let got = last_json(second);
    let id = got["second"].as_str().expect("experiment id");
    let (_, e) = app.get(&format!("/v1/experiment/{id}"), &key).await;
    assert_eq!(e["name"], "run2");
    assert!(e["dataset_id"].as_str().is_some(), "{e}");
    assert!(e["dataset_version"].as_str().is_some_and(|v| v.len() == 19), "{e}");
    let (_, rows) = app.post(&format!("/v1/experiment/{id}/fetch"), &key, json!({"limit": 1000})).await;
    let rows = rows["events"].as_array().expect("events");
    let scorer_rows = rows.iter().filter(|r| r["span_attributes"]["type"] == "score").count();
    assert_eq!(scorer_rows, 10, "one score span per scorer per case");
    assert!(rows
        .iter()
        .filter(|r| r["span_attributes"]["type"] == "eval")
        .all(|r| r["origin"]["object_type"] == "dataset"));
}

const EVAL_DENIED: &str = r#"
import json, braintrust
from braintrust import Eval
try:
    Eval("proj-d", data=[{"input": "1+1", "expected": "2"}], task=lambda input: "2",
         scores=[lambda input, output, expected: 1.0], experiment_name="sneaky")
    print(json.dumps({"error": None}))
except Exception as e:
    print(json.dumps({"error": str(e)}))
"#;

async fn an_eval_without_create_permission_is_refused(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, p) = app.post("/v1/project", &key, json!({"name": "proj-d"})).await;
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    let Some(out) = python(EVAL_DENIED, sdk_env(&app, &viewer.key)).await else { return };
    let got = last_json(&out);
    assert!(got["error"].as_str().is_some_and(|e| e.contains("403")), "{out}");
    let (_, list) = app.get(&format!("/v1/experiment?project_id={}", p["id"].as_str().unwrap_or("")), &key).await;
    assert_eq!(common::ids(&list).len(), 0, "no experiment was created");
}

const LOAD_PROMPT: &str = r#"
import json, os, braintrust
from braintrust.xact_ids import prettify_xact
v1 = os.environ["V1"]
latest = braintrust.load_prompt(project="proj-e", slug="greeter")
old = braintrust.load_prompt(project="proj-e", slug="greeter", version=v1)
pretty = braintrust.load_prompt(project="proj-e", slug="greeter", version=prettify_xact(v1))
by_id = braintrust.load_prompt(id=latest.id)
print(json.dumps({
    "latest": latest.build(name="Ada")["messages"], "model": latest.build(name="Ada")["model"],
    "old": old.build(name="Ada")["messages"], "pretty": pretty.build(name="Ada")["messages"],
    "version": latest.version, "by_id": by_id.version}))
"#;

pub(crate) async fn make_prompt(app: &TestApp, key: &str) -> (String, String, String) {
    let (_, p) = app.post("/v1/project", key, json!({"name": "proj-e"})).await;
    let prompt = |text: &str| {
        json!({"prompt": {"type": "chat", "messages": [{"role": "system", "content": text}]},
               "options": {"model": "gpt-4o-mini"}})
    };
    let body =
        json!({"project_id": p["id"], "name": "Greeter", "slug": "greeter", "prompt_data": prompt("Hello {{name}}")});
    let (s, v1) = app.post("/v1/prompt", key, body).await;
    assert_eq!(s, 200, "{v1}");
    let id = v1["id"].as_str().expect("id").to_owned();
    let (s, v2) = app.patch(&format!("/v1/prompt/{id}"), key, json!({"prompt_data": prompt("Goodbye {{name}}")})).await;
    assert_eq!(s, 200, "{v2}");
    let (v1x, v2x) = (v1["_xact_id"].as_str().expect("v1"), v2["_xact_id"].as_str().expect("v2"));
    assert!(v2x > v1x, "a patch is a new version");
    (id, v1x.to_owned(), v2x.to_owned())
}

async fn load_prompt_builds_the_stored_prompt_at_each_version(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (_, v1, v2) = make_prompt(&app, &key).await;
    let mut env = sdk_env(&app, &key);
    env.push(("V1".into(), v1));
    let Some(out) = python(LOAD_PROMPT, env).await else { return };
    let got = last_json(&out);
    assert_eq!(got["latest"], json!([{"role": "system", "content": "Goodbye Ada"}]));
    assert_eq!(got["old"], json!([{"role": "system", "content": "Hello Ada"}]));
    assert_eq!(got["pretty"], got["old"], "the SDK's 16-hex version names the same version");
    assert_eq!(got["model"], "gpt-4o-mini");
    assert_eq!(got["version"], v2.as_str());
    assert_eq!(got["by_id"], v2.as_str());
}

const LOAD_PROMPT_DENIED: &str = r#"
import json, braintrust
try:
    p = braintrust.load_prompt(project="proj-e", slug="greeter")
    print(json.dumps({"loaded": p.build(name="Bo")["messages"][0]["content"]}))
except Exception as e:
    print(json.dumps({"error": str(e)}))
"#;

async fn load_prompt_is_refused_without_read_on_the_prompt(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let (id, _, _) = make_prompt(&app, &key).await;
    let outsider = member(&app, &key, "out@example.com", None).await;
    let Some(out) = python(LOAD_PROMPT_DENIED, sdk_env(&app, &outsider.key)).await else { return };
    let got = last_json(&out);
    assert!(got["error"].as_str().is_some_and(|e| e.contains("not found")), "{out}");
    assert_eq!(app.get(&format!("/v1/prompt/{id}"), &outsider.key).await.0, 404);
    let pid = uuid::Uuid::parse_str(&id).expect("uuid");
    grant(&app, &key, outsider.user, castellan_core::ObjectType::Prompt, pid, castellan_core::Permission::Read).await;
    let Some(out) = python(LOAD_PROMPT_DENIED, sdk_env(&app, &outsider.key)).await else { return };
    assert_eq!(last_json(&out)["loaded"], "Goodbye Bo", "a grant on the prompt alone is enough: {out}");
    let (s, _) = app.patch(&format!("/v1/prompt/{id}"), &outsider.key, json!({"name": "Mine"})).await;
    assert_eq!(s, 403, "read is not update");
}

const ATTACHMENTS: &str = r#"
import json, os, braintrust
from braintrust import Attachment
from braintrust.logger import ReadonlyAttachment
logger = braintrust.init_logger(project="proj-f")
logger.log(input={"file": Attachment(data=b"hello attachment", filename="h.txt", content_type="text/plain")},
           output="with attachment")
logger.log(input={"big": "x" * 100000}, output="big")
logger.flush()
bg = braintrust.logger._state.global_bg_logger()
from braintrust_api import Braintrust
client = Braintrust(api_key=os.environ["BRAINTRUST_API_KEY"], base_url=os.environ["BRAINTRUST_API_URL"])
rows = [e.model_dump(by_alias=True) for e in client.projects.logs.fetch(logger.project.id, limit=100).events]
with_file = next(r for r in rows if r["output"] == "with attachment")
big = next(r for r in rows if r["output"] == "big")
ref = with_file["input"]["file"]
print(json.dumps({"ref": ref, "data": ReadonlyAttachment(ref).data.decode(), "big": len(big["input"]["big"]),
                  "overflows": getattr(bg, "_overflow_upload_count", None), "project_id": logger.project.id}))
"#;

async fn attachments_and_oversized_payloads_go_through_signed_urls(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let key = app.bootstrap("acme", "ada@example.com").await;
    let Some(out) = python(ATTACHMENTS, sdk_env(&app, &key)).await else { return };
    let got = last_json(&out);
    assert_eq!(got["ref"]["type"], "braintrust_attachment");
    assert_eq!(got["data"], "hello attachment", "uploaded and downloaded through signed URLs");
    assert_eq!(got["big"], 100000);
    assert!(got["overflows"].as_u64().is_some_and(|n| n >= 1), "the large row went through /logs3/overflow: {got}");
    // Who may read the attachment: its uploader, and whoever can read the logs.
    let attachment_key = got["ref"]["key"].as_str().expect("key");
    let (_, orgs) = app.get("/v1/organization", &key).await;
    let org = orgs["objects"][0]["id"].as_str().expect("org").to_owned();
    let path = format!("/attachment?key={attachment_key}&org_id={org}");
    let viewer = member(&app, &key, "vic@example.com", Some("Viewers")).await;
    let outsider = member(&app, &key, "out@example.com", None).await;
    let (s, v) = app.get(&path, &viewer.key).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"]["upload_status"], "done");
    assert_eq!(app.get(&path, &outsider.key).await.0, 404);
}
