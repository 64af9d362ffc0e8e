//! The newest Braintrust wire model (the generated client and models of the
//! `braintrust` 0.48.1 wheel), difference by difference as `braintrust-spec-diff.md`
//! found them: each checked over real HTTP on SQLite and PostgreSQL. The wheel's own
//! REST client drives the same operations in `compat_wheel.rs`.

use crate::common;
use crate::support;

use castellan_api_types::{format_time, parse_time};
use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

on_both_backends!(
    api_keys_and_service_tokens_answer_expires_at_and_stop_working_then,
    organizations_answer_archived_and_deleted_times_and_an_image_mode_enum,
    a_project_creator_is_reassigned_only_to_a_member_by_an_updater,
    experiments_store_and_answer_internal_metadata,
    get_fetch_reads_max_xact_id_and_max_root_span_id_as_post_fetch_does,
    summaries_always_count_improvements_and_regressions_and_omit_a_missing_diff,
    feedback_sets_expected_to_any_json_value,
    bodies_the_client_may_omit_are_accepted_absent_and_change_nothing,
    create_and_mint_needs_a_session_or_an_owners_service_token,
    environments_resolve_reads_and_environment_slugs_deploy
);

const HOUR: i64 = 3600 * 1_000_000;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_micros() as i64
}

fn spec() -> Value {
    serde_json::from_str(&castellan_server::openapi::document_json()).expect("the OpenAPI document is JSON")
}

fn str_of(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_else(|| panic!("no `{field}` in {v}")).to_owned()
}

async fn project(app: &TestApp, key: &str, name: &str) -> String {
    let (s, p) = app.post("/v1/project", key, json!({"name": name})).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    str_of(&p, "id")
}

async fn object(app: &TestApp, key: &str, kind: &str, body: Value) -> Value {
    let (s, v) = app.post(&format!("/v1/{kind}"), key, body).await;
    assert_eq!(s, StatusCode::OK, "create a {kind}: {v}");
    v
}

async fn members_patch(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    let (s, _, v) = app.send(Method::PATCH, "/v1/organization/members", Some(key), Some(body), &[]).await;
    (s, v)
}

/// The `code` of an error answer.
fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

/// Row 1: `ApiKey.expires_at` in every API-key answer (null: never), and in every
/// service-token answer; an expired key or token no longer authenticates.
async fn api_keys_and_service_tokens_answer_expires_at_and_stop_working_then(b: Backend) {
    let Some((app, clock)) = TestApp::spawn_with_clock(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (s, k) = app.post("/v1/api_key", &owner, json!({"name": "forever"})).await;
    assert_eq!(s, StatusCode::OK, "{k}");
    assert_eq!(k.get("expires_at"), Some(&Value::Null), "present, null: {k}");
    let (_, one) = app.get(&format!("/v1/api_key/{}", str_of(&k, "id")), &owner).await;
    assert_eq!(one.get("expires_at"), Some(&Value::Null), "{one}");
    let (_, list) = app.get("/v1/api_key", &owner).await;
    let listed = list["objects"].as_array().expect("objects");
    assert_eq!(listed.len(), 2, "{list}");
    assert!(listed.iter().all(|k| k.get("expires_at") == Some(&Value::Null)), "{list}");

    let at = format_time(now() + HOUR);
    let (s, short) = app.post("/v1/api_key", &owner, json!({"name": "short", "expires_at": at})).await;
    assert_eq!(s, StatusCode::OK, "{short}");
    assert_eq!(short["expires_at"].as_str().and_then(parse_time), parse_time(&at), "{short}");
    let (_, one) = app.get(&format!("/v1/api_key/{}", str_of(&short, "id")), &owner).await;
    assert_eq!(one["expires_at"], short["expires_at"]);
    let raw = str_of(&short, "key");
    assert_eq!(app.get("/v1/project", &raw).await.0, StatusCode::OK, "valid until it expires");
    for bad in ["2001-01-01T00:00:00Z", "tomorrow"] {
        let (s, v) = app.post("/v1/api_key", &owner, json!({"name": "bad", "expires_at": bad})).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_body"), "{bad}: {v}");
    }

    let (sa, forever_token) = app.service_account(&owner, "bot", "Viewers", "forever").await;
    let (_, tokens) = app.get("/v1/service_token", &owner).await;
    assert_eq!(tokens["objects"][0].get("expires_at"), Some(&Value::Null), "{tokens}");
    let (s, t) = app
        .post("/v1/service_token", &owner, json!({"name": "short", "service_account_id": sa, "expires_at": at}))
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["expires_at"].as_str().and_then(parse_time), parse_time(&at), "{t}");
    let short_token = str_of(&t, "key");
    assert_eq!(app.get("/v1/project", &short_token).await.0, StatusCode::OK);

    clock.fetch_add(2 * HOUR, Ordering::SeqCst);
    assert_eq!(app.get("/v1/project", &raw).await.0, StatusCode::UNAUTHORIZED, "an expired API key");
    assert_eq!(app.get("/v1/project", &short_token).await.0, StatusCode::UNAUTHORIZED, "an expired service token");
    assert_eq!(app.get("/v1/project", &forever_token).await.0, StatusCode::OK, "a token without expiry");
    assert_eq!(app.get("/v1/project", &owner).await.0, StatusCode::OK, "a key without expiry");
    let (s, gone) = app.delete(&format!("/v1/api_key/{}", str_of(&short, "id")), &owner).await;
    assert_eq!(s, StatusCode::OK, "an expired key is still revoked by id: {gone}");
    assert_eq!(gone["expires_at"], short["expires_at"], "{gone}");
}

/// Row 2: `archived_at` and `deleted_at` in every organization answer (null while
/// it lives; the time of deletion when deleted), and `image_rendering_mode` as the
/// enum `auto`/`click_to_load`/`blocked`, any other value refused.
async fn organizations_answer_archived_and_deleted_times_and_an_image_mode_enum(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (_, list) = app.get("/v1/organization", &owner).await;
    let org = list["objects"][0].clone();
    let id = str_of(&org, "id");
    let (_, one) = app.get(&format!("/v1/organization/{id}"), &owner).await;
    for o in [&org, &one] {
        for field in ["archived_at", "deleted_at"] {
            assert_eq!(o.get(field), Some(&Value::Null), "{field}: {o}");
        }
    }
    for mode in ["click_to_load", "blocked", "auto"] {
        let (s, o) = app.patch(&format!("/v1/organization/{id}"), &owner, json!({"image_rendering_mode": mode})).await;
        assert_eq!(s, StatusCode::OK, "{o}");
        assert_eq!(o["image_rendering_mode"], mode);
        assert_eq!((o.get("archived_at"), o.get("deleted_at")), (Some(&Value::Null), Some(&Value::Null)), "{o}");
    }
    for bad in [json!("sepia"), json!("AUTO"), json!(3)] {
        let (s, v) = app.patch(&format!("/v1/organization/{id}"), &owner, json!({"image_rendering_mode": bad})).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_body"), "{bad}: {v}");
    }
    assert_eq!(app.get(&format!("/v1/organization/{id}"), &owner).await.1["image_rendering_mode"], "auto");
    let (s, spare) = app.post("/v1/organization", &owner, json!({"name": "spare"})).await;
    assert_eq!(s, StatusCode::OK, "{spare}");
    assert_eq!(spare.get("deleted_at"), Some(&Value::Null), "{spare}");
    let spare_key = str_of(&spare, "api_key");
    let before = now();
    let (s, gone) = app.delete(&format!("/v1/organization/{}", str_of(&spare, "id")), &spare_key).await;
    assert_eq!(s, StatusCode::OK, "{gone}");
    let deleted = gone["deleted_at"].as_str().and_then(parse_time).expect("the answer to DELETE says when");
    assert!(deleted >= before - 1_000_000 && deleted <= now() + 1_000_000, "{gone}");
    assert_eq!(gone.get("archived_at"), Some(&Value::Null));
    let mode = &spec()["components"]["schemas"]["ImageRenderingMode"];
    assert_eq!(mode["enum"], json!(["auto", "click_to_load", "blocked"]), "{mode}");
}

/// Row 3: `PatchProject.user_id` changes the project's recorded creator. It needs
/// `update` on the project (like any change to it) and must name a member of the
/// project's organization (400 otherwise); it grants nothing.
async fn a_project_creator_is_reassigned_only_to_a_member_by_an_updater(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let outsider = app.bootstrap("zeta", "zed@zeta.example").await;
    let eng = support::member(&app, &owner, "eve@acme.example", Some("Engineers")).await;
    let viewer = support::member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    let (_, me) = app.post("/api/self/me", &owner, json!({})).await;
    let (_, zed) = app.post("/api/self/me", &outsider, json!({})).await;
    let (_, p) = app.post("/v1/project", &owner, json!({"name": "p"})).await;
    let pid = str_of(&p, "id");
    assert_eq!(p["user_id"], me["id"], "the creator is recorded");
    let path = format!("/v1/project/{pid}");

    let (s, v) = app.patch(&path, &eng.key, json!({"user_id": viewer.user})).await;
    assert_eq!(s, StatusCode::OK, "an engineer may update the project: {v}");
    assert_eq!(v["user_id"], json!(viewer.user));
    assert_eq!(app.get(&path, &owner).await.1["user_id"], json!(viewer.user));
    assert_eq!(app.patch(&path, &viewer.key, json!({"user_id": eng.user})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&path, &outsider, json!({"user_id": zed["id"]})).await.0, StatusCode::NOT_FOUND);
    for (who, bad) in [("another org's user", zed["id"].clone()), ("nobody", json!(uuid::Uuid::new_v4()))] {
        let (s, v) = app.patch(&path, &owner, json!({"user_id": bad})).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_body"), "{who}: {v}");
        assert!(v["message"].as_str().unwrap_or("").contains("`user_id`"), "{v}");
    }
    let (s, v) = app.patch(&path, &owner, json!({"user_id": "not-a-uuid"})).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_body"), "{v}");
    let (s, v) = app.patch(&path, &owner, json!({"user_id": null, "description": "d"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user_id"], json!(viewer.user), "null leaves the creator as it is");
    // Being the recorded creator grants nothing.
    assert_eq!(app.patch(&path, &viewer.key, json!({"description": "mine?"})).await.0, StatusCode::FORBIDDEN);
    let declared = &spec()["components"]["schemas"]["PatchProject"]["properties"]["user_id"];
    assert!(declared["description"].as_str().unwrap_or("").contains("member"), "{declared}");
}

/// Row 4: `internal_metadata` (`{dataset_filter: object|null}`) on experiments: in
/// the create and patch bodies, stored, in every answer.
async fn experiments_store_and_answer_internal_metadata(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let pid = project(&app, &owner, "p").await;
    let filter = json!({"filter": {"op": "eq", "left": {"op": "ident", "name": ["metadata", "split"]},
        "right": {"op": "literal", "value": "test"}}});
    let meta = json!({"dataset_filter": filter});
    let e =
        object(&app, &owner, "experiment", json!({"project_id": pid, "name": "e", "internal_metadata": meta})).await;
    assert_eq!(e["internal_metadata"], meta, "{e}");
    let path = format!("/v1/experiment/{}", str_of(&e, "id"));
    assert_eq!(app.get(&path, &owner).await.1["internal_metadata"], meta);
    let (_, list) = app.get("/v1/experiment?experiment_name=e", &owner).await;
    assert_eq!(list["objects"][0]["internal_metadata"], meta, "{list}");
    let plain = object(&app, &owner, "experiment", json!({"project_id": pid, "name": "plain"})).await;
    assert_eq!(plain.get("internal_metadata"), Some(&Value::Null), "present, null: {plain}");

    let (_, v) = app.patch(&path, &owner, json!({"description": "d"})).await;
    assert_eq!(v["internal_metadata"], meta, "a patch without it keeps it");
    let (_, v) = app.patch(&path, &owner, json!({"internal_metadata": {"dataset_filter": null}})).await;
    assert_eq!(v["internal_metadata"], json!({"dataset_filter": null}), "a patch with it replaces it");
    let other = json!({"dataset_filter": {"btql": "metadata.split = 'train'"}});
    let (_, v) = app.patch(&path, &owner, json!({"internal_metadata": other})).await;
    assert_eq!(v["internal_metadata"], other);
    for bad in [json!({"dataset_filter": "metadata.split = 'x'"}), json!({"dataset_filter": [1]}), json!("x")] {
        let (s, v) = app.patch(&path, &owner, json!({"internal_metadata": bad})).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_body"), "{bad}: {v}");
        let (s, v) = app
            .post("/v1/experiment", &owner, json!({"project_id": pid, "name": "bad", "internal_metadata": bad}))
            .await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_body"), "{bad}: {v}");
    }
    assert_eq!(app.get(&path, &owner).await.1["internal_metadata"], other, "refusals changed nothing");
    let (s, gone) = app.delete(&path, &owner).await;
    assert_eq!((s, &gone["internal_metadata"]), (StatusCode::OK, &other), "{gone}");
}

/// Row 5: the `GET` form of fetch declares and reads `max_xact_id` and
/// `max_root_span_id` exactly as the `POST` form does (`max_xact_id` pins the
/// version, `version` wins over it, `max_root_span_id` is accepted and ignored).
async fn get_fetch_reads_max_xact_id_and_max_root_span_id_as_post_fetch_does(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let pid = project(&app, &owner, "p").await;
    let exp = str_of(&object(&app, &owner, "experiment", json!({"project_id": pid, "name": "e"})).await, "id");
    let ds = str_of(&object(&app, &owner, "dataset", json!({"project_id": pid, "name": "d"})).await, "id");
    for base in [format!("/v1/experiment/{exp}"), format!("/v1/dataset/{ds}"), format!("/v1/project_logs/{pid}")] {
        let insert = format!("{base}/insert");
        let fetch = format!("{base}/fetch");
        assert_eq!(app.post(&insert, &owner, json!({"events": [{"id": "r", "input": 1}]})).await.0, StatusCode::OK);
        let (_, first) = app.post(&fetch, &owner, json!({})).await;
        let first = str_of(&first["events"][0], "_xact_id");
        assert_eq!(app.post(&insert, &owner, json!({"events": [{"id": "r", "input": 2}]})).await.0, StatusCode::OK);
        let (_, latest) = app.post(&fetch, &owner, json!({})).await;
        let latest = str_of(&latest["events"][0], "_xact_id");

        let (s, got) = app.get(&format!("{fetch}?max_xact_id={first}&max_root_span_id=whatever"), &owner).await;
        assert_eq!(s, StatusCode::OK, "{base}: {got}");
        assert_eq!(got["events"][0]["input"], 1, "{base}: the row as of `max_xact_id`: {got}");
        let row = &got["events"][0];
        assert_eq!(
            (&row["span_id"], &row["root_span_id"]),
            (&json!("r"), &json!("r")),
            "{base}: span ids default: {row}"
        );
        let (_, posted) = app.post(&fetch, &owner, json!({"max_xact_id": first, "max_root_span_id": "whatever"})).await;
        assert_eq!(got["events"], posted["events"], "{base}: both forms answer alike");
        let (_, got) = app.get(&format!("{fetch}?max_xact_id={first}&version={latest}"), &owner).await;
        assert_eq!(got["events"][0]["input"], 2, "{base}: `version` wins: {got}");
        let (_, got) = app.get(&format!("{fetch}?max_root_span_id=whatever"), &owner).await;
        assert_eq!(got["events"][0]["input"], 2, "{base}: `max_root_span_id` alone changes nothing");
        let (s, v) = app.get(&format!("{fetch}?max_xact_id=yesterday"), &owner).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_parameter"), "{base}: {v}");
        let (s, v) = app.post(&fetch, &owner, json!({"max_xact_id": "yesterday"})).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_parameter"), "{base}: {v}");
    }
    let doc = spec();
    for path in [
        "/v1/experiment/{experiment_id}/fetch",
        "/v1/dataset/{dataset_id}/fetch",
        "/v1/project_logs/{project_id}/fetch",
    ] {
        let params = doc["paths"][path]["get"]["parameters"].as_array().expect("parameters");
        let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
        for want in ["limit", "max_xact_id", "max_root_span_id", "version"] {
            assert!(names.contains(&want), "{path} does not declare `{want}`: {names:?}");
        }
    }
}

/// Row 6: in a summary, each score's and metric's `improvements` and `regressions`
/// are integers, always present (0 without a comparison); `diff` is a number, or
/// absent (never null).
async fn summaries_always_count_improvements_and_regressions_and_omit_a_missing_diff(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let pid = project(&app, &owner, "p").await;
    let row = |acc: f64, end: f64| json!({"events": [{"id": "t1", "input": 1, "scores": {"acc": acc}, "metrics": {"start": 0, "end": end}}]});
    let a = str_of(&object(&app, &owner, "experiment", json!({"project_id": pid, "name": "a"})).await, "id");
    assert_eq!(app.post(&format!("/v1/experiment/{a}/insert"), &owner, row(1.0, 1.0)).await.0, StatusCode::OK);
    let (_, alone) = app.get(&format!("/v1/experiment/{a}/summarize?summarize_scores=true"), &owner).await;
    assert!(alone["comparison_experiment_name"].is_null(), "the project's first experiment: {alone}");
    for entry in [&alone["scores"]["acc"], &alone["metrics"]["duration"]] {
        assert_eq!((entry["improvements"].as_u64(), entry["regressions"].as_u64()), (Some(0), Some(0)), "{entry}");
        assert!(entry.get("diff").is_none(), "no comparison, no `diff` key: {entry}");
    }
    let b2 = str_of(&object(&app, &owner, "experiment", json!({"project_id": pid, "name": "b"})).await, "id");
    assert_eq!(app.post(&format!("/v1/experiment/{b2}/insert"), &owner, row(0.5, 3.0)).await.0, StatusCode::OK);
    let (_, cmp) = app.get(&format!("/v1/experiment/{b2}/summarize?summarize_scores=true"), &owner).await;
    assert_eq!(cmp["comparison_experiment_name"], "a", "{cmp}");
    let acc = &cmp["scores"]["acc"];
    assert_eq!((acc["improvements"].as_u64(), acc["regressions"].as_u64()), (Some(0), Some(1)), "{acc}");
    assert_eq!(acc["diff"].as_f64(), Some(-0.5), "{acc}");
    let duration = &cmp["metrics"]["duration"];
    assert_eq!((duration["improvements"].as_u64(), duration["regressions"].as_u64()), (Some(0), Some(1)));
    assert_eq!(duration["diff"].as_f64(), Some(2.0), "relative: (3 - 1) / 1: {duration}");
    let doc = spec();
    for name in ["ScoreSummary", "MetricSummary"] {
        let s = &doc["components"]["schemas"][name];
        let required: Vec<&str> =
            s["required"].as_array().expect("required").iter().filter_map(Value::as_str).collect();
        assert!(required.contains(&"improvements") && required.contains(&"regressions"), "{name}: {required:?}");
        assert_eq!(s["properties"]["improvements"]["type"], "integer", "{name}");
        assert_eq!(s["properties"]["diff"]["type"], "number", "{name}: a number, not nullable");
        assert!(!required.contains(&"diff"), "{name}");
    }
}

/// Row 7: feedback's `expected` is any JSON value (an explicit null too); `source`
/// is one of `app`, `api`, `external`.
async fn feedback_sets_expected_to_any_json_value(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let pid = project(&app, &owner, "p").await;
    let exp = str_of(&object(&app, &owner, "experiment", json!({"project_id": pid, "name": "e"})).await, "id");
    let ds = str_of(&object(&app, &owner, "dataset", json!({"project_id": pid, "name": "d"})).await, "id");
    let expected_of = |rows: &Value| {
        rows["events"].as_array().and_then(|r| r.iter().find(|e| e["id"] == "r")).map(|e| e["expected"].clone())
    };
    for base in [format!("/v1/experiment/{exp}"), format!("/v1/dataset/{ds}"), format!("/v1/project_logs/{pid}")] {
        let insert = json!({"events": [{"id": "r", "input": 1, "expected": {"a": 1}}]});
        assert_eq!(app.post(&format!("{base}/insert"), &owner, insert).await.0, StatusCode::OK);
        for expected in [json!("a string"), json!(42), json!([1, "two"]), json!(true), Value::Null, json!({"b": 2})] {
            let body = json!({"feedback": [{"id": "r", "expected": expected, "source": "api"}]});
            let (s, v) = app.post(&format!("{base}/feedback"), &owner, body).await;
            assert_eq!((s, &v["status"]), (StatusCode::OK, &json!("success")), "{base} {expected}: {v}");
            let (_, rows) = app.post(&format!("{base}/fetch"), &owner, json!({})).await;
            assert_eq!(expected_of(&rows), Some(expected.clone()), "{base}: {rows}");
        }
        let body = json!({"feedback": [{"id": "r", "metadata": {"k": "v"}}]});
        assert_eq!(app.post(&format!("{base}/feedback"), &owner, body).await.0, StatusCode::OK);
        let (_, rows) = app.post(&format!("{base}/fetch"), &owner, json!({})).await;
        assert_eq!(expected_of(&rows), Some(json!({"b": 2})), "{base}: absent `expected` leaves it: {rows}");
        let body = json!({"feedback": [{"id": "r", "expected": 1, "source": "robot"}]});
        let (s, v) = app.post(&format!("{base}/feedback"), &owner, body).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_body"), "{base}: {v}");
    }
    let expected = &spec()["components"]["schemas"]["FeedbackItem"]["properties"]["expected"];
    assert!(expected.get("type").is_none(), "any JSON value, not only an object: {expected}");
}

/// Row 8: every body the client declares optional (each `PATCH` of an object this
/// server keeps, `PATCH /v1/organization/members`, `POST /v1/acl/batch_update`, and
/// the `POST …/fetch` forms) is declared optional and accepted absent; an absent
/// `PATCH` body changes nothing, writes nothing and audits nothing.
async fn bodies_the_client_may_omit_are_accepted_absent_and_change_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (_, orgs) = app.get("/v1/organization", &owner).await;
    let org = str_of(&orgs["objects"][0], "id");
    let pid = project(&app, &owner, "p").await;
    let id = |v: Value| str_of(&v, "id");
    let exp = id(object(&app, &owner, "experiment", json!({"project_id": pid, "name": "e"})).await);
    let ds = id(object(&app, &owner, "dataset", json!({"project_id": pid, "name": "d"})).await);
    let group = id(object(&app, &owner, "group", json!({"name": "g"})).await);
    let role = id(object(&app, &owner, "role", json!({"name": "r"})).await);
    let prompt = id(object(&app, &owner, "prompt", json!({"project_id": pid, "name": "pr", "slug": "pr"})).await);
    let function = id(object(
        &app,
        &owner,
        "function",
        json!({"project_id": pid, "name": "f", "slug": "f", "function_data": {"type": "global", "name": "Levenshtein"}}),
    )
    .await);
    let tag = id(object(&app, &owner, "project_tag", json!({"project_id": pid, "name": "t"})).await);
    let session = id(object(&app, &owner, "prompt_session", json!({"project_id": pid, "name": "s"})).await);
    let (_, audit) = app.get("/v1/audit_log", &owner).await;
    let audited = audit["objects"].as_array().map(Vec::len);

    let patches = [
        ("/v1/organization/{organization_id}", format!("/v1/organization/{org}")),
        ("/v1/project/{project_id}", format!("/v1/project/{pid}")),
        ("/v1/experiment/{experiment_id}", format!("/v1/experiment/{exp}")),
        ("/v1/dataset/{dataset_id}", format!("/v1/dataset/{ds}")),
        ("/v1/group/{group_id}", format!("/v1/group/{group}")),
        ("/v1/role/{role_id}", format!("/v1/role/{role}")),
        ("/v1/prompt/{prompt_id}", format!("/v1/prompt/{prompt}")),
        ("/v1/function/{function_id}", format!("/v1/function/{function}")),
        ("/v1/project_tag/{project_tag_id}", format!("/v1/project_tag/{tag}")),
        ("/v1/prompt_session/{prompt_session_id}", format!("/v1/prompt_session/{session}")),
    ];
    let doc = spec();
    let optional = |path: &str, method: &str| {
        let required = &doc["paths"][path][method]["requestBody"]["required"];
        assert!(required.is_null() || *required == json!(false), "{method} {path} declares a required body");
    };
    for (declared, path) in &patches {
        optional(declared, "patch");
        let (_, before) = app.get(path, &owner).await;
        let (s, h, after) = app.send(Method::PATCH, path, Some(&owner), None, &[]).await;
        assert_eq!(s, StatusCode::OK, "PATCH {path} without a body: {after}");
        assert_eq!(after, before, "PATCH {path} without a body changed it");
        assert!(h.contains_key("x-castellan-revision"));
    }
    optional("/v1/organization/members", "patch");
    let (s, _, v) = app.send(Method::PATCH, "/v1/organization/members", Some(&owner), None, &[]).await;
    assert_eq!((s, &v["status"], &v["added_users"]), (StatusCode::OK, &json!("success"), &json!([])), "{v}");
    optional("/v1/acl/batch_update", "post");
    let (s, _, v) = app.send(Method::POST, "/v1/acl/batch_update", Some(&owner), None, &[]).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"added_acls": [], "removed_acls": []})));
    assert_eq!(
        app.post(&format!("/v1/experiment/{exp}/insert"), &owner, json!({"events": [{"id": "x"}]})).await.0,
        200
    );
    for (declared, path) in [
        ("/v1/experiment/{experiment_id}/fetch", format!("/v1/experiment/{exp}/fetch")),
        ("/v1/dataset/{dataset_id}/fetch", format!("/v1/dataset/{ds}/fetch")),
        ("/v1/project_logs/{project_id}/fetch", format!("/v1/project_logs/{pid}/fetch")),
        ("/v1/prompt_session/{prompt_session_id}/fetch", format!("/v1/prompt_session/{session}/fetch")),
    ] {
        optional(declared, "post");
        let (s, _, v) = app.send(Method::POST, &path, Some(&owner), None, &[]).await;
        assert_eq!(s, StatusCode::OK, "POST {path} without a body: {v}");
        assert!(v["events"].is_array(), "{v}");
    }
    let (_, fetched) = app.post(&format!("/v1/experiment/{exp}/fetch"), &owner, json!({})).await;
    let (_, _, bare) = app.send(Method::POST, &format!("/v1/experiment/{exp}/fetch"), Some(&owner), None, &[]).await;
    assert_eq!(bare["events"], fetched["events"], "an absent fetch body reads like `{{}}`");
    let (_, audit) = app.get("/v1/audit_log", &owner).await;
    assert_eq!(audit["objects"].as_array().map(Vec::len), audited, "nothing was audited: {audit}");
}

/// Row 9: `invite_users.service_accounts[]` with `token_name` (create-and-mint)
/// needs a console session or a service token of an owner, never a user API key
/// (403); plain creation keeps needing an owner, with any credential.
/// `token_expires_in_seconds` (a whole number from 1) dates the minted token.
async fn create_and_mint_needs_a_session_or_an_owners_service_token(b: Backend) {
    let Some((app, clock)) = TestApp::spawn_with_clock(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let mint = |name: &str, expiry: Value| json!({"invite_users": {"service_accounts": [{"name": name, "token_name": "first", "token_expires_in_seconds": expiry}]}});
    let (_, users) = app.get("/v1/user", &owner).await;
    let (s, v) = members_patch(&app, &owner, mint("by-key", json!(3600))).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "forbidden"), "{v}");
    let message = v["message"].as_str().unwrap_or("");
    assert!(message.contains("not a user API key") && message.contains("/v1/service_token"), "{message}");
    assert_eq!(app.get("/v1/user", &owner).await.1, users, "nothing was created");

    // Plain creation with the owner's API key, then an owner service account.
    let (_, admin_token) = app.service_account(&owner, "admin-bot", "Owners", "ops").await;
    let (_, viewer_token) = app.service_account(&owner, "viewer-bot", "Viewers", "ops").await;
    let (s, v) = members_patch(&app, &viewer_token, mint("by-viewer", json!(3600))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a service token of a non-owner: {v}");

    let before = now();
    let (s, out) = members_patch(&app, &admin_token, mint("by-owner-token", json!(3600))).await;
    assert_eq!(s, StatusCode::OK, "an owner's service token may create-and-mint: {out}");
    let added = &out["added_users"][0];
    assert_eq!(added["token_name"], "first", "{out}");
    let minted = str_of(added, "api_key");
    assert!(minted.starts_with("bt-st-"), "{minted}");
    let (_, tokens) = app.get("/v1/service_token?service_token_name=first", &owner).await;
    let expires = tokens["objects"][0]["expires_at"].as_str().and_then(parse_time).expect("an expiry");
    assert!(expires >= before + HOUR && expires <= now() + HOUR, "an hour from the request: {tokens}");
    assert_eq!(app.get("/v1/project", &minted).await.0, StatusCode::OK);

    // A console session of an owner.
    let (s, v) = app.post("/api/auth/password", &owner, json!({"new_password": "ada's long passphrase"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, h, login) = app
        .send(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "ada@acme.example", "password": "ada's long passphrase"})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{login}");
    let cookie = h
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok()?.split(';').next())
        .find(|c| c.starts_with("castellan_session="))
        .expect("a session cookie")
        .to_owned();
    let csrf = str_of(&login, "csrf_token");
    let by_session = |body: Value| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        let app = &app;
        async move {
            let (s, _, v) = app
                .send(
                    Method::PATCH,
                    "/v1/organization/members",
                    None,
                    Some(body),
                    &[("cookie", &cookie), ("x-csrf-token", &csrf)],
                )
                .await;
            (s, v)
        }
    };
    let (s, out) = by_session(mint("by-session", Value::Null)).await;
    assert_eq!(s, StatusCode::OK, "an owner's console session may create-and-mint: {out}");
    let forever = str_of(&out["added_users"][0], "api_key");
    for (bad, why) in [
        (mint("zero", json!(0)), "not positive"),
        (mint("negative", json!(-5)), "not positive"),
        (mint("huge", json!(10_000_000_000_000_i64)), "too far away"),
        (mint("fraction", json!(1.5)), "not a whole number"),
        (
            json!({"invite_users": {"service_accounts": [{"name": "no-token", "token_expires_in_seconds": 60}]}}),
            "no token",
        ),
    ] {
        let (s, v) = by_session(bad).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_body"), "{why}: {v}");
    }
    clock.fetch_add(2 * HOUR, Ordering::SeqCst);
    assert_eq!(app.get("/v1/project", &minted).await.0, StatusCode::UNAUTHORIZED, "the minted token expired");
    assert_eq!(app.get("/v1/project", &forever).await.0, StatusCode::OK, "one minted without expiry");
    let declared = &spec()["components"]["schemas"]["InviteServiceAccount"]["properties"]["token_expires_in_seconds"];
    assert_eq!((declared["type"].clone(), declared["minimum"].clone()), (json!(["integer", "null"]), json!(1)));
}

/// Row 10: `environment` (query) on prompt and function reads, and
/// `environment_slugs` on prompt create and replace: slugs are validated, stored and
/// deploy the written version; a read through an unknown environment, or one that
/// serves no version of the object, is 404 `not_found`.
async fn environments_resolve_reads_and_environment_slugs_deploy(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let pid = project(&app, &owner, "p").await;
    for slug in ["production", "staging"] {
        let (s, v) = app.post("/environment", &owner, json!({"name": slug, "slug": slug})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let body = |slugs: Value| json!({"project_id": pid, "name": "Greet", "slug": "greet", "environment_slugs": slugs});
    let p = object(&app, &owner, "prompt", body(json!(["production", "staging"]))).await;
    assert_eq!(p["environment_slugs"], json!(["production", "staging"]), "{p}");
    let path = format!("/v1/prompt/{}", str_of(&p, "id"));
    assert_eq!(app.get(&path, &owner).await.1["environment_slugs"], json!(["production", "staging"]));
    let (s, _, v) = app.send(Method::PUT, "/v1/prompt", Some(&owner), Some(body(json!(["production"]))), &[]).await;
    assert_eq!((s, &v["environment_slugs"]), (StatusCode::OK, &json!(["production"])), "PUT replaces them: {v}");
    let (_, v) = app.patch(&path, &owner, json!({"description": "d"})).await;
    assert_eq!(v["environment_slugs"], json!(["production"]), "a patch keeps them");
    let plain = object(&app, &owner, "prompt", json!({"project_id": pid, "name": "Plain", "slug": "plain"})).await;
    assert!(plain.get("environment_slugs").is_none(), "{plain}");
    for bad in [json!("production"), json!([""]), json!(["two words"]), json!(["a", "a"]), json!([1])] {
        let body = json!({"project_id": pid, "name": "Other", "slug": "other", "environment_slugs": bad});
        let (s, v) = app.post("/v1/prompt", &owner, body).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_body"), "{bad}: {v}");
    }

    let f = object(
        &app,
        &owner,
        "function",
        json!({"project_id": pid, "name": "F", "slug": "f", "function_data": {"type": "global", "name": "Levenshtein"}}),
    )
    .await;
    for read in
        [format!("{path}?environment=production"), "/v1/prompt?environment=production&slug=greet&limit=1".to_owned()]
    {
        let (s, v) = app.get(&read, &owner).await;
        assert_eq!(s, StatusCode::OK, "{read}: {v}");
    }
    for (read, message) in [
        (format!("/v1/function/{}?environment=production", str_of(&f, "id")), "serves no version"),
        (format!("{path}?environment=qa"), "no environment `qa`"),
    ] {
        let (s, v) = app.get(&read, &owner).await;
        assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{read}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| m.contains(message)), "{read}: {v}");
    }
    let version = str_of(&app.get(&path, &owner).await.1, "_xact_id");
    let (s, v) = app.get(&format!("{path}?environment=production&version={version}"), &owner).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "invalid_parameter"), "{v}");
    assert_eq!(app.get(&format!("{path}?environment="), &owner).await.0, StatusCode::OK, "empty reads as absent");
    let (s, _) = app.get(&format!("/v1/prompt/{}?environment=production", uuid::Uuid::new_v4()), &owner).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let doc = spec();
    for (path, method) in [
        ("/v1/prompt", "get"),
        ("/v1/prompt/{prompt_id}", "get"),
        ("/v1/function", "get"),
        ("/v1/function/{function_id}", "get"),
    ] {
        let params = doc["paths"][path][method]["parameters"].as_array().expect("parameters");
        let env =
            params.iter().find(|p| p["name"] == "environment").unwrap_or_else(|| panic!("{path}: no environment"));
        assert!(env["description"].as_str().unwrap_or("").contains("404"), "{path}: {env}");
    }
    let slugs = &doc["components"]["schemas"]["CreateFunction"]["properties"]["environment_slugs"];
    assert_eq!(slugs["items"]["type"], "string", "{slugs}");
}

/// Row 11: every field where Castellan departs from the newest client on purpose is
/// described as a Castellan extension in the published document (the client test
/// compares every served schema with the wheel's models; this names the known ones).
#[test]
fn castellan_extensions_are_described_as_such() {
    let doc = spec();
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("Organization", "strict_delegation"),
        ("PatchOrganization", "strict_delegation"),
        ("ApiKey", "last_used"),
        ("ServiceToken", "last_used"),
        ("CreateServiceToken", "expires_at"),
        ("PatchOrganizationMembersOutput", "invitations"),
        ("PatchOrganizationMembersOutput", "removed_users"),
        ("Acl", "expires_at"),
        ("AclItem", "expires_at"),
        ("CreateExperiment", "ancestor_commits"),
        ("Function", "environment_slugs"),
        ("CreateFunction", "metadata"),
        ("PatchFunction", "metadata"),
        ("PatchFunction", "origin"),
        ("PatchFunction", "function_type"),
        ("PatchFunction", "function_schema"),
    ] {
        let d = schemas[schema]["properties"][field]["description"].as_str().unwrap_or("");
        assert!(d.contains("Castellan extension"), "{schema}.{field} is not described as an extension: {d:?}");
    }
    for (schema, field) in [("ApiKey", "expires_at"), ("ServiceToken", "expires_at")] {
        let d = schemas[schema]["properties"][field]["description"].as_str().unwrap_or("");
        assert!(!d.contains("Castellan extension"), "{schema}.{field} is in the newest client: {d:?}");
    }
}
