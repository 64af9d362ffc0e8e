//! OpenTelemetry ingest (`POST /otel/v1/traces`): the official `opentelemetry-sdk`
//! with its OTLP/HTTP exporter (protobuf) sending real spans, OTLP JSON over plain
//! HTTP, and the refusals, on SQLite and PostgreSQL.

use crate::common;
use crate::support;

use common::{Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{member, python};

/// The scenarios that need the OpenTelemetry SDK (installed by `scripts/test`).
mod exporter {
    use super::*;
    on_both_backends!(
        #[ignore = "needs the official OpenTelemetry SDK: scripts/test runs it"]
        the_official_otlp_exporter_writes_genai_spans_to_project_logs
    );
}

on_both_backends!(otlp_json_lands_in_experiments_and_refusals_change_nothing);

const EXPORTER: &str = r#"
import json, os
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import Status, StatusCode

exporter = OTLPSpanExporter(
    endpoint=os.environ["CASTELLAN_URL"] + "/otel/v1/traces",
    headers={"Authorization": "Bearer " + os.environ["KEY"], "x-bt-parent": os.environ["PARENT"]},
)
provider = TracerProvider(resource=Resource.create({"service.name": "chatbot"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("castellan-test")
ids = {}
with tracer.start_as_current_span("handle-request") as root:
    root.set_attribute("input.value", json.dumps({"question": "2+2?"}))
    root.set_attribute("output.value", "4")
    with tracer.start_as_current_span("chat gpt-4o") as llm:
        llm.set_attribute("gen_ai.system", "openai")
        llm.set_attribute("gen_ai.request.model", "gpt-4o")
        llm.set_attribute("gen_ai.request.temperature", 0.2)
        llm.set_attribute("gen_ai.prompt.0.role", "user")
        llm.set_attribute("gen_ai.prompt.0.content", "2+2?")
        llm.set_attribute("gen_ai.completion.0.role", "assistant")
        llm.set_attribute("gen_ai.completion.0.content", "4")
        llm.set_attribute("gen_ai.usage.input_tokens", 12)
        llm.set_attribute("gen_ai.usage.output_tokens", 1)
        ids["llm"] = format(llm.get_span_context().span_id, "016x")
    with tracer.start_as_current_span("tool") as tool:
        tool.set_attribute("braintrust.metadata", json.dumps({"tool": "calculator"}))
        tool.set_status(Status(StatusCode.ERROR, "division by zero"))
    ids["root"] = format(root.get_span_context().span_id, "016x")
    ids["trace"] = format(root.get_span_context().trace_id, "032x")
ok = provider.force_flush()
provider.shutdown()
print(json.dumps({"flushed": ok, **ids}))
"#;

async fn fetch_all(app: &TestApp, key: &str, path: &str) -> Vec<Value> {
    let (s, v) = app.post(path, key, json!({"limit": 100})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["events"].as_array().cloned().unwrap_or_default()
}

async fn the_official_otlp_exporter_writes_genai_spans_to_project_logs(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let env = |key: &str, parent: &str| {
        vec![
            ("CASTELLAN_URL".to_owned(), app.base.clone()),
            ("KEY".to_owned(), key.to_owned()),
            ("PARENT".to_owned(), parent.to_owned()),
        ]
    };
    // `project_name:` creates the project on first use.
    let Some(out) = python(EXPORTER, env(&owner, "project_name:otel-app")).await else { return };
    let ids = support::last_json(&out);
    assert_eq!(ids["flushed"], true, "{out}");
    let (_, projects) = app.get("/v1/project?project_name=otel-app", &owner).await;
    let pid = projects["objects"][0]["id"].as_str().expect("created").to_owned();
    let rows = fetch_all(&app, &owner, &format!("/v1/project_logs/{pid}/fetch")).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let by_name = |n: &str| {
        rows.iter().find(|r| r["span_attributes"]["name"] == n).cloned().unwrap_or_else(|| panic!("{n}: {rows:?}"))
    };
    let llm = by_name("chat gpt-4o");
    assert_eq!(llm["input"], json!([{"role": "user", "content": "2+2?"}]), "{llm}");
    assert_eq!(llm["output"], json!([{"role": "assistant", "content": "4"}]));
    assert_eq!(
        (llm["metadata"]["model"].as_str(), llm["metadata"]["provider"].as_str()),
        (Some("gpt-4o"), Some("openai"))
    );
    assert_eq!(llm["metadata"]["temperature"], 0.2);
    assert_eq!(
        (llm["metrics"]["prompt_tokens"].clone(), llm["metrics"]["completion_tokens"].clone()),
        (json!(12), json!(1))
    );
    assert_eq!(llm["span_attributes"]["type"], "llm");
    assert_eq!(llm["span_id"].as_str(), ids["llm"].as_str());
    assert_eq!(llm["span_parents"], json!([ids["root"]]));
    assert_eq!(llm["root_span_id"].as_str(), ids["trace"].as_str());
    assert!(llm["metrics"]["end"].as_f64() >= llm["metrics"]["start"].as_f64(), "{llm}");
    let root = by_name("handle-request");
    assert_eq!((root["input"].clone(), root["output"].clone()), (json!({"question": "2+2?"}), json!("4")));
    assert!(root.get("span_parents").is_none_or(Value::is_null), "{root}");
    let tool = by_name("tool");
    assert_eq!(
        (tool["metadata"]["tool"].as_str(), tool["error"].as_str()),
        (Some("calculator"), Some("division by zero"))
    );
    // A Viewer may read the logs but not write them; the exporter reports the 403.
    let viewer = member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    let refused = r#"
import json, os
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
exporter = OTLPSpanExporter(endpoint=os.environ["CASTELLAN_URL"] + "/otel/v1/traces",
    headers={"Authorization": "Bearer " + os.environ["KEY"], "x-bt-parent": os.environ["PARENT"]})
spans = []
class Keep(SimpleSpanProcessor):
    def on_end(self, span):
        spans.append(span)
provider = TracerProvider()
provider.add_span_processor(Keep(exporter))
with provider.get_tracer("t").start_as_current_span("nope"):
    pass
print(json.dumps({"result": exporter.export(spans).name}))
"#;
    let out = python(refused, env(&viewer.key, &format!("project_id:{pid}"))).await.expect("python");
    assert_eq!(support::last_json(&out)["result"], "FAILURE", "{out}");
    assert_eq!(
        fetch_all(&app, &viewer.key, &format!("/v1/project_logs/{pid}/fetch")).await.len(),
        3,
        "nothing written"
    );
    app.stop().await;
}

fn otlp_json(name: &str, attrs: Value) -> Value {
    json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": name,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000002000000000",
            "attributes": attrs}]}]}]})
}

async fn post_otlp(
    app: &TestApp,
    key: &str,
    parent: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .post(format!("{}/otel/v1/traces", app.base))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body);
    if let Some(p) = parent {
        req = req.header("x-bt-parent", p);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn otlp_json_lands_in_experiments_and_refusals_change_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let (_, p) = app.post("/v1/project", &owner, json!({"name": "p"})).await;
    let (_, e) = app.post("/v1/experiment", &owner, json!({"project_id": p["id"], "name": "e"})).await;
    let eid = e["id"].as_str().expect("id").to_owned();
    let parent = format!("experiment_id:{eid}");
    let attrs = json!([
        {"key": "llm.model_name", "value": {"stringValue": "claude"}},
        {"key": "llm.input_messages.0.message.role", "value": {"stringValue": "user"}},
        {"key": "llm.input_messages.0.message.content", "value": {"stringValue": "hi"}},
        {"key": "llm.token_count.prompt", "value": {"intValue": "5"}},
        {"key": "braintrust.scores", "value": {"stringValue": "{\"accuracy\": 0.5}"}},
        {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}
    ]);
    let body = serde_json::to_vec(&otlp_json("llm-call", attrs)).expect("json");
    let (s, v) = post_otlp(&app, &owner, Some(&parent), "application/json", body.clone()).await;
    assert_eq!((s, v), (StatusCode::OK, json!({})));
    let rows = fetch_all(&app, &owner, &format!("/v1/experiment/{eid}/fetch")).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(
        (r["input"].clone(), r["scores"].clone()),
        (json!([{"role": "user", "content": "hi"}]), json!({"accuracy": 0.5}))
    );
    assert_eq!((r["metadata"]["model"].as_str(), r["metadata"]["tags"].clone()), (Some("claude"), json!(["a"])));
    assert_eq!(r["metrics"]["prompt_tokens"], 5);
    assert_eq!(r["metrics"]["end"], 1_700_000_002.0);
    // The same span again replaces the row (its id is the span id).
    let (s, _) = post_otlp(&app, &owner, Some(&parent), "application/json", body.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(fetch_all(&app, &owner, &format!("/v1/experiment/{eid}/fetch")).await.len(), 1);
    // Refusals: no parent, a bad parent, wrong types, a stranger, a viewer, gzip.
    let viewer = member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    for (key, parent, ct, want, code) in [
        (&owner, None, "application/json", 400, "invalid_parameter"),
        (&owner, Some("dataset_id:x"), "application/json", 400, "invalid_parameter"),
        (&owner, Some(parent.as_str()), "text/plain", 415, "unsupported_media_type"),
        (&zeta, Some(parent.as_str()), "application/json", 404, "not_found"),
        (&viewer.key, Some(parent.as_str()), "application/json", 403, "forbidden"),
    ] {
        let (s, v) = post_otlp(&app, key, parent, ct, body.clone()).await;
        assert_eq!((s.as_u16(), v["code"].as_str()), (want, Some(code)), "{parent:?} {ct}: {v}");
        common::assert_listed_error(s, &v);
    }
    let (s, v) = post_otlp(&app, &owner, Some(&parent), "application/x-protobuf", b"\x0a\xff\xff".to_vec()).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")), "{v}");
    let resp = app
        .http
        .post(format!("{}/otel/v1/traces", app.base))
        .bearer_auth(&owner)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("x-bt-parent", &parent)
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let bad_ids =
        json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "abcd", "spanId": "ef", "name": "x"}]}]}]});
    let (s, v) =
        post_otlp(&app, &owner, Some(&parent), "application/json", serde_json::to_vec(&bad_ids).expect("json")).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")), "{v}");
    assert_eq!(fetch_all(&app, &owner, &format!("/v1/experiment/{eid}/fetch")).await.len(), 1, "nothing else written");
    let (s, _) = post_otlp(&app, &zeta, Some("project_name:p"), "application/json", body).await;
    assert_eq!(s, StatusCode::OK, "zeta's own project `p`, made in zeta");
    let (_, zp) = app.get("/v1/project", &zeta).await;
    assert_eq!(zp["objects"].as_array().map(Vec::len), Some(1));
    assert_ne!(zp["objects"][0]["id"], p["id"], "not acme's project of that name");
    app.stop().await;
}
