//! The administration objects served by the shared handlers (AI secrets, project
//! scores, span iframes, views, agents, MCP servers, dataset snapshots, simulated
//! users, environments), project settings and the org's API key list, over real
//! HTTP on SQLite and PostgreSQL.

use crate::common;
use crate::support;

use castellan_core::{ObjectType, Permission};
use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

on_both_backends!(
    ai_secrets_are_sealed_and_granted_one_by_one,
    the_provider_in_force_is_the_projects_then_the_orgs,
    project_scores_take_exactly_the_shape_of_their_type,
    project_settings_objects_round_trip_and_refuse_bad_input,
    views_name_the_object_they_are_saved_on,
    simulated_users_and_dataset_snapshots_live_under_their_object,
    environments_serve_prompt_and_dataset_versions,
    project_settings_are_validated_and_replaced_whole,
    the_org_api_key_list_is_the_owners_view,
    the_master_key_rotates_across_replicas_without_downtime,
    automations_validate_their_rules_and_seal_webhook_secrets,
    retention_sweeps_old_rows_under_a_lease_and_leaves_nothing_behind,
    a_sweep_deletes_old_versions_among_new_ones_window_by_window
);

const OPENAI: &str = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzABCD";
const ANTHROPIC: &str = "sk-ant-api03-zyxwvutsrqponmlkjihgfedcba9876543210";

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

async fn project(app: &TestApp, key: &str, name: &str) -> String {
    let (s, p) = app.post("/v1/project", key, json!({"name": name})).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    id(&p)
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("uuid")
}

async fn ai_secrets_are_sealed_and_granted_one_by_one(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let body = json!({"name": "OPENAI_API_KEY", "type": "openai", "secret": OPENAI, "metadata": {"api_base": "https://api.openai.com"}});
    let (s, v) = app.post("/v1/ai_secret", &owner, body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!((v["type"].as_str(), v["preview_secret"].as_str()), (Some("openai"), Some("sk-...ABCD")), "{v}");
    assert!(v["org_id"].is_string() && v["secret_updated_at"].is_string() && v["updated_at"].is_string(), "{v}");
    assert!(!v.to_string().contains(OPENAI));
    let openai = id(&v);
    // A create of the same name answers it unchanged.
    let (_, h, again) = app
        .send(
            Method::POST,
            "/v1/ai_secret",
            Some(&owner),
            Some(json!({"name": "OPENAI_API_KEY", "secret": "other-value-that-is-long-enough"})),
            &[],
        )
        .await;
    assert_eq!((id(&again), h.get("x-bt-found-existing").is_some()), (openai.clone(), true));
    assert_eq!(again["preview_secret"], "sk-...ABCD", "unchanged");
    // PUT without `secret` keeps the value and its timestamps.
    let (s, put) = app
        .send(Method::PUT, "/v1/ai_secret", Some(&owner), Some(json!({"name": "OPENAI_API_KEY", "type": "azure"})), &[])
        .await
        .pipe(|(s, _, v)| (s, v));
    assert_eq!(s, StatusCode::OK, "{put}");
    assert_eq!((put["type"].as_str(), put["preview_secret"].as_str()), (Some("azure"), Some("sk-...ABCD")));
    assert_eq!(put["secret_updated_at"], v["secret_updated_at"], "the value did not change");
    assert_eq!(put["metadata"], Value::Null, "PUT replaces the metadata");
    let (_, anthropic) = app
        .post("/v1/ai_secret", &owner, json!({"name": "ANTHROPIC_API_KEY", "type": "anthropic", "secret": ANTHROPIC}))
        .await;
    let anthropic = id(&anthropic);
    // Filters: one type, several types (repeated and comma-separated), a name.
    let count = |v: &Value| v["objects"].as_array().map(Vec::len).unwrap_or(99);
    assert_eq!(count(&app.get("/v1/ai_secret?ai_secret_type=anthropic", &owner).await.1), 1);
    assert_eq!(count(&app.get("/v1/ai_secret?ai_secret_type=anthropic&ai_secret_type=azure", &owner).await.1), 2);
    assert_eq!(count(&app.get("/v1/ai_secret?ai_secret_type=anthropic,azure", &owner).await.1), 2);
    assert_eq!(count(&app.get("/v1/ai_secret?ai_secret_name=ANTHROPIC_API_KEY", &owner).await.1), 1);
    // Bad input changes nothing.
    for (bad, why) in [
        (json!({"name": "X", "metadata": {"api_key": "sk-in-the-clear"}}), "a credential in metadata"),
        (json!({"name": "X", "metadata": {"nested": {"Secret_Access_Key": "abc"}}}), "a nested credential"),
        (json!({"name": "X", "metadata": "text"}), "metadata not an object"),
        (json!({"name": "X", "value": "sk"}), "an unknown field"),
        (json!({"name": "", "secret": "x"}), "an empty name"),
        (json!({"name": "n".repeat(1001)}), "a name too long"),
        (json!({"name": "X", "secret": "s".repeat(65 * 1024)}), "a value too long"),
        (json!({"name": "X", "type": "t".repeat(200)}), "a type too long"),
    ] {
        let (s, v) = app.post("/v1/ai_secret", &owner, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
        common::assert_listed_error(s, &v);
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
    assert_eq!(count(&app.get("/v1/ai_secret", &owner).await.1), 2, "nothing was created");
    // A member without grants sees none of them; another org's owner neither.
    let pat = support::member(&app, &owner, "pat@acme.example", None).await;
    assert_eq!(app.get("/v1/ai_secret", &pat.key).await.1["objects"], json!([]));
    assert_eq!(app.get(&format!("/v1/ai_secret/{openai}"), &pat.key).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/v1/ai_secret/{openai}"), &zeta).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/v1/ai_secret", &zeta).await.1["objects"], json!([]));
    assert_eq!(
        app.post("/v1/ai_secret", &pat.key, json!({"name": "MINE", "secret": OPENAI})).await.0,
        StatusCode::FORBIDDEN
    );
    // A grant on one secret shows that one only; `update` lets it change, not delete.
    support::grant(&app, &owner, pat.user, ObjectType::AiSecret, uuid(&openai), Permission::Read).await;
    let (_, seen) = app.get("/v1/ai_secret", &pat.key).await;
    assert_eq!(common::ids(&seen), vec![openai.clone()], "{seen}");
    assert_eq!(app.get(&format!("/v1/ai_secret/{anthropic}"), &pat.key).await.0, StatusCode::NOT_FOUND);
    let (s, _) = app.patch(&format!("/v1/ai_secret/{openai}"), &pat.key, json!({"secret": "x"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "read is not update");
    support::grant(&app, &owner, pat.user, ObjectType::AiSecret, uuid(&openai), Permission::Update).await;
    let rotated = "sk-proj-rotated-0000000000000000000000WXYZ";
    let (s, v) = app
        .patch(&format!("/v1/ai_secret/{openai}"), &pat.key, json!({"secret": rotated, "metadata": {"org": "o"}}))
        .await;
    assert_eq!((s, v["preview_secret"].as_str()), (StatusCode::OK, Some("sk-...WXYZ")), "{v}");
    assert_eq!(v["secret_updated_by_user_id"].as_str(), Some(pat.user.0.to_string().as_str()));
    assert_eq!(app.delete(&format!("/v1/ai_secret/{openai}"), &pat.key).await.0, StatusCode::FORBIDDEN);
    // All of them: a grant on org_ai_secret.
    let org_id = app.get("/v1/organization", &owner).await.1["objects"][0]["id"].as_str().expect("org").to_owned();
    support::grant(&app, &owner, pat.user, ObjectType::OrgAiSecret, uuid(&org_id), Permission::Read).await;
    assert_eq!(count(&app.get("/v1/ai_secret", &pat.key).await.1), 2);
    // The value is sealed: not in the database files, not in the audit log.
    let dump = common::dump_database(&app.db).await;
    assert!(dump.len() > 1000);
    for secret in [OPENAI, ANTHROPIC, rotated] {
        assert!(!dump.contains(secret) && !dump.contains(&secret[8..32]), "a value is stored in the clear");
    }
    let (_, audit) = app.get("/v1/audit_log?event_type=ai_secret.", &owner).await;
    let events = audit["objects"].as_array().expect("audit");
    assert!(events.len() >= 4, "{audit}");
    assert!(!audit.to_string().contains("sk-..."), "audit records carry no preview: {audit}");
    // Delete by name; its grants go with it (audited).
    let (s, _, gone) =
        app.send(Method::DELETE, "/v1/ai_secret", Some(&owner), Some(json!({"name": "OPENAI_API_KEY"})), &[]).await;
    assert_eq!((s, id(&gone)), (StatusCode::OK, openai.clone()));
    assert_eq!(app.get(&format!("/v1/ai_secret/{openai}"), &owner).await.0, StatusCode::NOT_FOUND);
    let (_, acls) = app.get(&format!("/v1/acl?object_type=ai_secret&object_id={openai}"), &owner).await;
    assert!(acls["objects"].as_array().is_none_or(Vec::is_empty), "{acls}");
    let (s, _, _) =
        app.send(Method::DELETE, "/v1/ai_secret", Some(&owner), Some(json!({"name": "OPENAI_API_KEY"})), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/v1/ai_secret/{anthropic}"), &owner).await.0, StatusCode::OK);
    app.stop().await;
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

async fn the_provider_in_force_is_the_projects_then_the_orgs(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let (_, org_openai) =
        app.post("/v1/ai_secret", &owner, json!({"name": "OPENAI_API_KEY", "type": "openai", "secret": OPENAI})).await;
    app.post("/v1/ai_secret", &owner, json!({"name": "ANTHROPIC_API_KEY", "type": "anthropic", "secret": ANTHROPIC}))
        .await;
    let (_, before) = app.get(&format!("/v1/ai_secret/effective?project_id={p}"), &owner).await;
    let by_type = |v: &Value, t: &str| v["objects"].as_array().expect("list").iter().find(|o| o["type"] == t).cloned();
    let o = by_type(&before, "openai").expect("openai");
    assert_eq!((o["source"].as_str(), o["id"].as_str()), (Some("organization"), org_openai["id"].as_str()), "{before}");
    let (s, var) = app
        .post(
            "/v1/env_var",
            &owner,
            json!({"object_type": "project", "object_id": p, "name": "OPENAI_API_KEY", "value": "sk-project-level-key-0000000000",
                   "secret_type": "openai", "secret_category": "ai_provider"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{var}");
    let (_, after) = app.get(&format!("/v1/ai_secret/effective?project_id={p}"), &owner).await;
    let o = by_type(&after, "openai").expect("openai");
    assert_eq!(
        (o["source"].as_str(), o["object_type"].as_str(), o["id"].as_str()),
        (Some("project"), Some("env_var"), var["id"].as_str())
    );
    assert_eq!(o["overrides"], json!([org_openai["id"]]), "{after}");
    assert_eq!(by_type(&after, "anthropic").expect("anthropic")["source"], "organization");
    // A project the caller cannot read: 404.
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    assert_eq!(app.get(&format!("/v1/ai_secret/effective?project_id={p}"), &zeta).await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn project_scores_take_exactly_the_shape_of_their_type(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let online = json!({"online": {"sampling_rate": 0.25, "scorers": [{"type": "global", "name": "Factuality"}, {"type": "function", "id": "f1"}],
                        "btql_filter": "metadata.env = 'prod'", "scope": {"type": "span"}}});
    let good = [
        ("slider", json!(null), json!({"destination": "expected", "object_types": ["experiment"]})),
        (
            "categorical",
            json!([{"name": "good", "value": 1}, {"name": "bad", "value": 0}]),
            json!({"multi_select": true}),
        ),
        ("weighted", json!({"accuracy": 2, "tone": 1}), json!(null)),
        ("minimum", json!(["accuracy", "tone"]), json!(null)),
        ("maximum", json!(["accuracy"]), json!({"visibility": {"groups": ["Engineers"]}})),
        ("online", json!(null), online.clone()),
        ("free-form", json!(null), json!({"condition": {"when": {"clauses": ["a"]}, "behavior": "hidden"}})),
    ];
    for (t, categories, config) in &good {
        let (s, v) = app
            .post(
                "/v1/project_score",
                &owner,
                json!({"project_id": p, "name": t, "score_type": t, "categories": categories, "config": config}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{t}: {v}");
        assert_eq!((v["score_type"].as_str(), &v["categories"]), (Some(*t), categories), "{v}");
        assert!(v["user_id"].is_string() && v["created"].is_string(), "{v}");
    }
    let bad = [
        (json!({"score_type": "stars"}), "unknown score type"),
        (json!({"score_type": "categorical"}), "categorical without categories"),
        (json!({"score_type": "categorical", "categories": [{"name": "a", "value": 2}]}), "value above 1"),
        (
            json!({"score_type": "categorical", "categories": [{"name": "a", "value": 1}, {"name": "a", "value": 0}]}),
            "a name twice",
        ),
        (json!({"score_type": "categorical", "categories": ["a"]}), "minimum's shape on a categorical"),
        (
            json!({"score_type": "weighted", "categories": [{"name": "a", "value": 1}]}),
            "categorical's shape on weighted",
        ),
        (json!({"score_type": "weighted", "categories": {"a": -1}}), "a negative weight"),
        (json!({"score_type": "weighted", "categories": {"a": 0}}), "all weights zero"),
        (json!({"score_type": "minimum", "categories": {"a": 1}}), "weighted's shape on minimum"),
        (json!({"score_type": "slider", "categories": ["a"]}), "categories on a slider"),
        (json!({"score_type": "online"}), "online without a rule"),
        (json!({"score_type": "online", "config": {"online": {"sampling_rate": 2, "scorers": []}}}), "a rate above 1"),
        (
            json!({"score_type": "online", "config": {"online": {"sampling_rate": 1, "scorers": [{"type": "mystery"}]}}}),
            "a scorer of no type",
        ),
        (
            json!({"score_type": "online", "config": {"online": {"sampling_rate": 1, "scorers": [], "scope": {"type": "group", "group_by": "metadata.session", "placement": "first"}}}}),
            "a group scope (not run)",
        ),
        (
            json!({"score_type": "online", "config": {"online": {"sampling_rate": 1, "scorers": [], "scope": {"type": "trace", "idle_seconds": 30}}}}),
            "a trace scope (not run)",
        ),
        (
            json!({"score_type": "online", "config": {"online": {"sampling_rate": 1, "scorers": [], "scope": {"type": "session"}}}}),
            "an unknown scope",
        ),
        (json!({"score_type": "slider", "config": online}), "an online rule on a slider"),
        (json!({"score_type": "slider", "config": {"multi_select": true}}), "multi_select on a slider"),
        (json!({"score_type": "slider", "config": {"colour": "red"}}), "an unknown config field"),
        (json!({"score_type": "slider", "config": {"object_types": ["spans"]}}), "an unknown object type"),
        (json!({"score_type": "slider", "secret": "sk-123"}), "a secret where none belongs"),
    ];
    for (extra, why) in bad {
        let mut body = json!({"project_id": p, "name": "bad"});
        body.as_object_mut().expect("obj").extend(extra.as_object().expect("obj").clone());
        let (s, v) = app.post("/v1/project_score", &owner, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
        common::assert_listed_error(s, &v);
        if why.ends_with("(not run)") {
            let m = v["message"].as_str().unwrap_or_default();
            assert!(m.contains("`config.online.scope`") && m.contains("scope is not supported"), "{why}: {m}");
        }
    }
    // A PATCH cannot bring a trace scope into a rule either.
    let (_, rule) = app.get(&format!("/v1/project_score?project_id={p}&score_type=online"), &owner).await;
    let rid = rule["objects"][0]["id"].as_str().expect("the online rule").to_owned();
    let patch = json!({"config": {"online": {"sampling_rate": 1, "scorers": [], "scope": {"type": "trace"}}}});
    let (s, v) = app.patch(&format!("/v1/project_score/{rid}"), &owner, patch).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (_, kept) = app.get(&format!("/v1/project_score/{rid}"), &owner).await;
    assert_eq!(kept["config"]["online"]["scope"], json!({"type": "span"}), "unchanged: {kept}");
    let (_, all) = app.get(&format!("/v1/project_score?project_id={p}"), &owner).await;
    assert_eq!(all["objects"].as_array().map(Vec::len), Some(7), "nothing bad was stored");
    let (_, some) = app.get("/v1/project_score?score_type=weighted&score_type=minimum&project_name=p", &owner).await;
    assert_eq!(some["objects"].as_array().map(Vec::len), Some(2), "{some}");
    assert_eq!(app.get("/v1/project_score?score_type=stars", &owner).await.0, StatusCode::BAD_REQUEST);
    // PATCH: config merged and the result validated as a whole.
    let cat =
        all["objects"].as_array().expect("list").iter().find(|o| o["name"] == "categorical").map(id).expect("cat");
    let (s, v) =
        app.patch(&format!("/v1/project_score/{cat}"), &owner, json!({"config": {"destination": "expected"}})).await;
    assert_eq!((s, &v["config"]), (StatusCode::OK, &json!({"multi_select": true, "destination": "expected"})), "{v}");
    let (s, v) = app.patch(&format!("/v1/project_score/{cat}"), &owner, json!({"score_type": "slider"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a slider cannot keep categories: {v}");
    let (s, v) = app.patch(&format!("/v1/project_score/{cat}"), &owner, json!({"name": "weighted"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("name_taken")), "{v}");
    // A Viewer reads them and changes nothing; another org sees nothing.
    let viewer = support::member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    assert_eq!(
        app.get(&format!("/v1/project_score?project_id={p}"), &viewer.key).await.1["objects"].as_array().map(Vec::len),
        Some(7)
    );
    assert_eq!(
        app.patch(&format!("/v1/project_score/{cat}"), &viewer.key, json!({"description": "x"})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.delete(&format!("/v1/project_score/{cat}"), &viewer.key).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        app.post("/v1/project_score", &viewer.key, json!({"project_id": p, "name": "v", "score_type": "slider"}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    assert_eq!(app.get(&format!("/v1/project_score/{cat}"), &zeta).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/v1/project_score", &zeta).await.1["objects"], json!([]));
    assert_eq!(app.delete(&format!("/v1/project_score/{cat}"), &owner).await.0, StatusCode::OK);
    app.stop().await;
}

async fn project_settings_objects_round_trip_and_refuse_bad_input(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    // Span iframes.
    let (s, f) = app
        .post(
            "/v1/span_iframe",
            &owner,
            json!({"project_id": p, "name": "viewer", "url": "https://viz.example/span", "post_message": true}),
        )
        .await;
    assert_eq!(
        (s, f["post_message"].as_bool(), f["url"].as_str()),
        (StatusCode::OK, Some(true), Some("https://viz.example/span")),
        "{f}"
    );
    let (s, v) = app.patch(&format!("/v1/span_iframe/{}", id(&f)), &owner, json!({"url": "javascript:alert(1)"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = app.post("/v1/span_iframe", &owner, json!({"project_id": p, "name": "x", "url": "ftp://a"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, listed) = app.get("/v1/span_iframe?span_iframe_name=viewer", &owner).await;
    assert_eq!(common::ids(&listed), vec![id(&f)]);
    // Agents: a slug from the name, unique in the project.
    let (s, a) =
        app.post("/v1/agent", &owner, json!({"project_id": p, "name": "Support Bot", "metadata": {"tier": 1}})).await;
    assert_eq!(
        (s, a["slug"].as_str(), a["kind"].as_str()),
        (StatusCode::OK, Some("support-bot"), Some("custom")),
        "{a}"
    );
    let (s, v) = app.post("/v1/agent", &owner, json!({"project_id": p, "name": "support bot"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("name_taken")), "{v}");
    let (s, v) = app
        .patch(&format!("/v1/agent/{}", id(&a)), &owner, json!({"name": "Helper", "metadata": {"lang": "en"}}))
        .await;
    assert_eq!(
        (s, v["slug"].as_str(), &v["metadata"]),
        (StatusCode::OK, Some("support-bot"), &json!({"tier": 1, "lang": "en"})),
        "{v}"
    );
    let (s, _) = app.post("/v1/agent", &owner, json!({"project_id": p, "name": "m", "metadata": [1]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // MCP servers.
    let (s, m) = app
        .post(
            "/v1/mcp_server",
            &owner,
            json!({"project_id": p, "name": "tools", "url": "http://mcp.internal:8080/sse"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let (s, m2) = app
        .send(
            Method::PUT,
            "/v1/mcp_server",
            Some(&owner),
            Some(json!({"project_id": p, "name": "tools", "url": "https://mcp.example/sse", "description": "d"})),
            &[],
        )
        .await
        .pipe(|(s, _, v)| (s, v));
    assert_eq!((s, id(&m2), m2["url"].as_str()), (StatusCode::OK, id(&m), Some("https://mcp.example/sse")));
    // Bodies of the wrong shape, unknown projects.
    assert_eq!(
        app.post("/v1/mcp_server", &owner, json!({"project_id": p, "name": "x"})).await.0,
        StatusCode::BAD_REQUEST
    );
    let missing = Uuid::now_v7();
    assert_eq!(
        app.post("/v1/mcp_server", &owner, json!({"project_id": missing, "name": "x", "url": "https://a.b"})).await.0,
        StatusCode::NOT_FOUND
    );
    // A Viewer reads, cannot write; deleting the project takes them all.
    let viewer = support::member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    assert_eq!(app.get(&format!("/v1/agent/{}", id(&a)), &viewer.key).await.0, StatusCode::OK);
    assert_eq!(app.delete(&format!("/v1/mcp_server/{}", id(&m)), &viewer.key).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/v1/project/{p}"), &owner).await.0, StatusCode::OK);
    for path in ["/v1/span_iframe", "/v1/agent", "/v1/mcp_server"] {
        assert_eq!(app.get(path, &owner).await.1["objects"], json!([]), "{path}");
    }
    app.stop().await;
}

async fn views_name_the_object_they_are_saved_on(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let q = project(&app, &owner, "q").await;
    let on_p = |extra: Value| {
        let mut v = json!({"object_type": "project", "object_id": p, "view_type": "logs", "name": "errors"});
        v.as_object_mut().expect("obj").extend(extra.as_object().expect("obj").clone());
        v
    };
    let (s, v) =
        app.post("/v1/view", &owner, on_p(json!({"view_data": {"search": {"filter": ["error IS NOT NULL"]}}}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let view = id(&v);
    assert_eq!(app.get("/v1/view", &owner).await.0, StatusCode::BAD_REQUEST, "object_type and object_id are required");
    let (_, listed) = app.get(&format!("/v1/view?object_type=project&object_id={p}&view_type=logs"), &owner).await;
    assert_eq!(common::ids(&listed), vec![view.clone()]);
    let (_, other) = app.get(&format!("/v1/view?object_type=project&object_id={q}"), &owner).await;
    assert_eq!(other["objects"], json!([]));
    assert_eq!(
        app.get(&format!("/v1/view/{view}?object_type=project&object_id={q}"), &owner).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&format!("/v1/view/{view}?object_type=project&object_id={p}"), &owner).await.0, StatusCode::OK);
    let (s, v) = app
        .patch(
            &format!("/v1/view/{view}"),
            &owner,
            json!({"object_type": "project", "object_id": p, "starred": true, "options": {"rowHeight": "tall"}}),
        )
        .await;
    assert_eq!(
        (s, v["starred"].as_bool(), v["options"]["rowHeight"].as_str()),
        (StatusCode::OK, Some(true), Some("tall")),
        "{v}"
    );
    let (s, _) = app.patch(&format!("/v1/view/{view}"), &owner, json!({"starred": false})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "PATCH must name the object");
    assert_eq!(app.post("/v1/view", &owner, on_p(json!({"view_type": "gallery"}))).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.post("/v1/view", &owner, on_p(json!({"options": "wide"}))).await.0, StatusCode::BAD_REQUEST);
    // A Viewer reads them; an org-level view needs Manage settings.
    let viewer = support::member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    assert_eq!(
        app.get(&format!("/v1/view?object_type=project&object_id={p}"), &viewer.key).await.1["objects"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(app.post("/v1/view", &viewer.key, on_p(json!({"name": "mine"}))).await.0, StatusCode::FORBIDDEN);
    let org_id = app.get("/v1/organization", &owner).await.1["objects"][0]["id"].as_str().expect("org").to_owned();
    let org_view = json!({"object_type": "organization", "object_id": org_id, "view_type": "projects", "name": "all"});
    assert_eq!(app.post("/v1/view", &owner, org_view.clone()).await.0, StatusCode::OK);
    let eng = support::member(&app, &owner, "eve@acme.example", Some("Engineers")).await;
    assert_eq!(
        app.post(
            "/v1/view",
            &eng.key,
            json!({"object_type": "organization", "object_id": org_id, "view_type": "projects", "name": "eng"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // DELETE names the object in its body.
    let (s, _, _) = app
        .send(
            Method::DELETE,
            &format!("/v1/view/{view}"),
            Some(&owner),
            Some(json!({"object_type": "project", "object_id": q})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = app
        .send(
            Method::DELETE,
            &format!("/v1/view/{view}"),
            Some(&owner),
            Some(json!({"object_type": "project", "object_id": p})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.stop().await;
}

async fn simulated_users_and_dataset_snapshots_live_under_their_object(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let q = project(&app, &owner, "q").await;
    let base = format!("/v1/project/{p}/simulated_user");
    let (s, u) = app
        .post(&base, &owner, json!({"name": "grumpy", "instructions": "You are impatient.", "goal": "get a refund", "voice_config": {"voice_id": "v1", "speaking_rate": 1.2}}))
        .await;
    assert_eq!(
        (s, u["goal"].as_str(), u["voice_config"]["voice_id"].as_str()),
        (StatusCode::OK, Some("get a refund"), Some("v1")),
        "{u}"
    );
    assert_eq!(app.get(&format!("/v1/project/{q}/simulated_user/{}", id(&u)), &owner).await.0, StatusCode::NOT_FOUND);
    let (s, v) = app.patch(&format!("{base}/{}", id(&u)), &owner, json!({"goal": null})).await;
    assert_eq!((s, v.get("goal")), (StatusCode::OK, None), "goal cleared: {v}");
    assert_eq!(app.post(&base, &owner, json!({"name": "x", "instructions": "i"})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.post(
            &base,
            &owner,
            json!({"name": "x", "instructions": "i", "voice_config": {"voice_id": "v", "speaking_rate": -1}})
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(common::ids(&app.get(&base, &owner).await.1), vec![id(&u)]);
    // Dataset snapshots.
    let (_, d) = app.post("/v1/dataset", &owner, json!({"project_id": p, "name": "golden"})).await;
    let body = json!({"dataset_id": id(&d), "name": "v1", "xact_id": "1000192656880881099", "description": "first"});
    let (s, snap) = app.post("/v1/dataset_snapshot", &owner, body).await;
    assert_eq!((s, snap["xact_id"].as_str()), (StatusCode::OK, Some("1000192656880881099")), "{snap}");
    assert_eq!(
        app.post("/v1/dataset_snapshot", &owner, json!({"dataset_id": id(&d), "name": "v2", "xact_id": "latest"}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (s, v) = app.patch(&format!("/v1/dataset_snapshot/{}", id(&snap)), &owner, json!({"name": "v1.0"})).await;
    assert_eq!((s, v["name"].as_str()), (StatusCode::OK, Some("v1.0")));
    let viewer = support::member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    assert_eq!(common::ids(&app.get("/v1/dataset_snapshot", &viewer.key).await.1), vec![id(&snap)]);
    assert_eq!(app.delete(&format!("/v1/dataset_snapshot/{}", id(&snap)), &viewer.key).await.0, StatusCode::FORBIDDEN);
    // Deleting the dataset takes its snapshots.
    assert_eq!(app.delete(&format!("/v1/dataset/{}", id(&d)), &owner).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/v1/dataset_snapshot/{}", id(&snap)), &owner).await.0, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn environments_serve_prompt_and_dataset_versions(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let (s, prod) = app.post("/environment", &owner, json!({"name": "Production", "slug": "production"})).await;
    assert_eq!(
        (s, prod["slug"].as_str(), prod["name"].as_str()),
        (StatusCode::OK, Some("production"), Some("Production")),
        "{prod}"
    );
    app.post("/environment", &owner, json!({"name": "Staging", "slug": "staging"})).await;
    assert_eq!(
        app.post("/environment", &owner, json!({"name": "Bad", "slug": "has space"})).await.0,
        StatusCode::BAD_REQUEST
    );
    // Any member lists them; only Manage settings changes them.
    let plain = support::member(&app, &owner, "pat@acme.example", None).await;
    assert_eq!(app.get("/environment", &plain.key).await.1["objects"].as_array().map(Vec::len), Some(2));
    assert_eq!(app.get(&format!("/environment/{}", id(&prod)), &plain.key).await.0, StatusCode::OK);
    assert_eq!(
        app.post("/environment", &plain.key, json!({"name": "Mine", "slug": "mine"})).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.delete(&format!("/environment/{}", id(&prod)), &plain.key).await.0, StatusCode::FORBIDDEN);
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    assert_eq!(app.get(&format!("/environment/{}", id(&prod)), &zeta).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/environment", &zeta).await.1["objects"], json!([]));
    // A prompt created into an unknown environment is not created at all.
    let prompt = |slugs: Value, text: &str| {
        json!({"project_id": p, "name": "greeter", "slug": "greeter", "environment_slugs": slugs,
               "prompt_data": {"prompt": {"type": "chat", "messages": [{"role": "system", "content": text}]}}})
    };
    let (s, v) = app.post("/v1/prompt", &owner, prompt(json!(["production", "nowhere"]), "v0")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(app.get("/v1/prompt?slug=greeter", &owner).await.1["objects"], json!([]));
    let (s, v1) = app.post("/v1/prompt", &owner, prompt(json!(["production"]), "v1")).await;
    assert_eq!(s, StatusCode::OK, "{v1}");
    let pid = id(&v1);
    let v2 = app
        .send(Method::PUT, "/v1/prompt", Some(&owner), Some(prompt(json!(["staging"]), "v2")), &[])
        .await
        .pipe(|(_, _, v)| v);
    assert_ne!(v1["_xact_id"], v2["_xact_id"]);
    let content = |v: &Value| v["prompt_data"]["prompt"]["messages"][0]["content"].as_str().map(str::to_owned);
    let (s, at_prod) = app.get(&format!("/v1/prompt/{pid}?environment=production"), &owner).await;
    assert_eq!((s, content(&at_prod).as_deref()), (StatusCode::OK, Some("v1")), "{at_prod}");
    let (_, at_staging) = app.get(&format!("/v1/prompt/{pid}?environment=staging"), &owner).await;
    assert_eq!(content(&at_staging).as_deref(), Some("v2"));
    let (_, listed) = app.get("/v1/prompt?slug=greeter&environment=production", &owner).await;
    assert_eq!(content(&listed["objects"][0]).as_deref(), Some("v1"), "{listed}");
    assert_eq!(app.get("/v1/prompt?environment=production", &owner).await.0, StatusCode::OK, "one prompt matches");
    app.post("/v1/prompt", &owner, json!({"project_id": p, "name": "other", "slug": "other"})).await;
    assert_eq!(app.get("/v1/prompt?environment=production", &owner).await.0, StatusCode::BAD_REQUEST, "two match");
    let x = v1["_xact_id"].as_str().expect("xact");
    assert_eq!(
        app.get(&format!("/v1/prompt/{pid}?environment=production&version={x}"), &owner).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.get(&format!("/v1/prompt/{pid}?environment=qa"), &owner).await.0, StatusCode::NOT_FOUND);
    // Promotion: staging's version to production.
    let path = format!("/environment-object/prompt/{pid}/production");
    let v2x = v2["_xact_id"].as_str().expect("xact").to_owned();
    let (s, _, v) = app.send(Method::PUT, &path, Some(&owner), Some(json!({"object_version": v2x})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(app.get(&path, &owner).await.1["object_version"].as_str(), Some(v2x.as_str()));
    assert_eq!(
        content(&app.get(&format!("/v1/prompt/{pid}?environment=production"), &owner).await.1).as_deref(),
        Some("v2")
    );
    let (s, _, _) =
        app.send(Method::PUT, &path, Some(&owner), Some(json!({"object_version": "1000000000000000001"})), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "not a version of the prompt");
    let viewer = support::member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    assert_eq!(app.get(&path, &viewer.key).await.0, StatusCode::OK);
    let (s, _, _) = app.send(Method::PUT, &path, Some(&viewer.key), Some(json!({"object_version": v2x})), &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&path, &zeta).await.0, StatusCode::NOT_FOUND);
    // Datasets too (the SDK's init_dataset(environment=…) reads this).
    let (_, d) = app.post("/v1/dataset", &owner, json!({"project_id": p, "name": "golden"})).await;
    let dpath = format!("/environment-object/dataset/{}/production", id(&d));
    assert_eq!(app.get(&dpath, &owner).await.0, StatusCode::NOT_FOUND, "not assigned yet");
    let (s, _, _) =
        app.send(Method::PUT, &dpath, Some(&owner), Some(json!({"object_version": "1000192656880881099"})), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.get(&dpath, &owner).await.1["object_version"], "1000192656880881099");
    // A renamed slug keeps its assignments; a deleted environment takes them.
    let (s, renamed) = app.patch(&format!("/environment/{}", id(&prod)), &owner, json!({"slug": "prod"})).await;
    assert_eq!((s, renamed["slug"].as_str()), (StatusCode::OK, Some("prod")));
    assert_eq!(app.get(&format!("/environment-object/dataset/{}/prod", id(&d)), &owner).await.0, StatusCode::OK);
    assert_eq!(app.delete(&format!("/environment/{}", id(&prod)), &owner).await.0, StatusCode::OK);
    app.post("/environment", &owner, json!({"name": "Prod again", "slug": "prod"})).await;
    assert_eq!(app.get(&format!("/environment-object/dataset/{}/prod", id(&d)), &owner).await.0, StatusCode::NOT_FOUND);
    let (_, audit) = app.get("/v1/audit_log?event_type=environment_object.", &owner).await;
    assert!(
        audit["objects"].as_array().is_some_and(|a| a.iter().any(|e| e["event_type"] == "environment_object.deleted")),
        "{audit}"
    );
    app.stop().await;
}

async fn project_settings_are_validated_and_replaced_whole(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let q = project(&app, &owner, "q").await;
    let (_, e) = app.post("/v1/experiment", &owner, json!({"project_id": p, "name": "base"})).await;
    let (_, e_other) = app.post("/v1/experiment", &owner, json!({"project_id": q, "name": "elsewhere"})).await;
    let settings = json!({"comparison_key": "input.question", "baseline_experiment_id": id(&e),
        "spanFieldOrder": [{"object_type": "span", "column_id": "output", "position": "a0", "layout": "full"}],
        "remote_eval_sources": [{"url": "https://evals.example/run", "name": "remote"}], "disable_realtime_queries": true});
    let (s, v) = app.patch(&format!("/v1/project/{p}"), &owner, json!({"settings": settings})).await;
    assert_eq!((s, &v["settings"]), (StatusCode::OK, &settings), "{v}");
    let (s, v) =
        app.patch(&format!("/v1/project/{p}"), &owner, json!({"settings": {"comparison_key": "expected"}})).await;
    assert_eq!((s, &v["settings"]), (StatusCode::OK, &json!({"comparison_key": "expected"})), "replaced whole");
    for (bad, why) in [
        (json!({"colour": "red"}), "an unknown field"),
        (json!({"comparison_key": 3}), "a key that is not a string"),
        (json!({"baseline_experiment_id": id(&e_other)}), "another project's experiment"),
        (json!({"baseline_experiment_id": "nope"}), "not an id"),
        (json!({"spanFieldOrder": [{"object_type": "span"}]}), "an item without its fields"),
        (
            json!({"spanFieldOrder": [{"object_type": "s", "column_id": "c", "position": "p", "layout": "wide"}]}),
            "an unknown layout",
        ),
        (json!({"remote_eval_sources": [{"url": "file:///etc/passwd"}]}), "a URL that is not http"),
        (json!({"disable_realtime_queries": "yes"}), "a boolean as text"),
        (json!({"default_preprocessor": {"type": "function"}}), "a preprocessor without id"),
        (json!("text"), "settings not an object"),
    ] {
        let (s, v) = app.patch(&format!("/v1/project/{p}"), &owner, json!({"settings": bad})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
        common::assert_listed_error(s, &v);
    }
    assert_eq!(
        app.get(&format!("/v1/project/{p}"), &owner).await.1["settings"],
        json!({"comparison_key": "expected"}),
        "unchanged"
    );
    app.stop().await;
}

async fn the_org_api_key_list_is_the_owners_view(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let pat = support::member(&app, &owner, "pat@acme.example", Some("Engineers")).await;
    let (s, all) = app.get("/v1/organization/api_keys", &owner).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(all["objects"].as_array().map(Vec::len), Some(2), "the owner's and pat's: {all}");
    let (_, mine) = app.get("/v1/organization/api_keys", &pat.key).await;
    assert_eq!(mine["objects"].as_array().map(Vec::len), Some(1), "only pat's own: {mine}");
    assert_eq!(mine["objects"][0]["user_id"].as_str(), Some(pat.user.0.to_string().as_str()));
    let org_id = app.get("/v1/organization", &owner).await.1["objects"][0]["id"].as_str().expect("org").to_owned();
    assert_eq!(app.get(&format!("/v1/organization/api_keys?org_id={org_id}"), &zeta).await.0, StatusCode::NOT_FOUND);
    let (_, later) = app.get("/v1/organization/api_keys?created_after=2999-01-01T00:00:00Z", &owner).await;
    assert_eq!(later["objects"], json!([]));
    assert_eq!(app.get("/v1/organization/api_keys?created_after=yesterday", &owner).await.0, StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn the_master_key_rotates_across_replicas_without_downtime(b: Backend) {
    let Some(old) = TestApp::spawn(b).await else { return };
    let owner = old.bootstrap("acme", "ada@acme.example").await;
    let (_, sec) =
        old.post("/v1/ai_secret", &owner, json!({"name": "OPENAI", "type": "openai", "secret": OPENAI})).await;
    let org_id = old.get("/v1/organization", &owner).await.1["objects"][0]["id"].as_str().expect("org").to_owned();
    let (_, var) = old
        .post(
            "/v1/env_var",
            &owner,
            json!({"object_type": "organization", "object_id": org_id, "name": "T", "value": ANTHROPIC}),
        )
        .await;
    // A cost-alert signing secret on the plan (sealed on `org_plans`).
    let rx = crate::support::Receiver::start().await;
    let (s, plan) = old
        .patch(
            &format!("/v1/organization/{org_id}/plan"),
            &owner,
            json!({"alert_webhook_url": format!("{}/costs", rx.base), "limits": {"spans": 1}, "alert_thresholds": [100]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{plan}");
    let alert_secret = plan["alert_signing_secret"].as_str().expect("shown once").to_owned();
    let old_key = common::test_config().secret_key.expect("key");
    let new_key = "0f".repeat(32);
    // A replica with only a different key refuses to start, naming the key it lacks.
    let store = old.db.open().await;
    let wrong = castellan_server::config::Config { secret_key: Some(new_key.clone()), ..common::test_config() };
    let err = castellan_server::serve::prepare(store, wrong, castellan_server::access::system_clock())
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(text.contains("cannot open") && text.contains("Nothing was changed"), "{text}");
    // A replica with the new key and the old one as previous serves beside the old one.
    let config = castellan_server::config::Config {
        secret_key: Some(new_key.clone()),
        secret_keys_previous: vec![old_key],
        ..common::test_config()
    };
    let new = TestApp::spawn_on(old.db.clone(), config, castellan_server::access::system_clock()).await;
    let (s, v) = new.patch(&format!("/v1/ai_secret/{}", id(&sec)), &owner, json!({"name": "OPENAI_KEY"})).await;
    assert_eq!(s, StatusCode::OK, "the new replica opens what the old key sealed: {v}");
    let before = castellan_server::rotation::status(&new.state).await.expect("status");
    assert_eq!(before.len(), 2, "two keys in use: {before:?}");
    let seen = std::sync::Mutex::new(Vec::new());
    let out =
        castellan_server::rotation::rotate(&new.state, &new.system, |d, t| seen.lock().expect("lock").push((d, t)))
            .await
            .expect("rotate");
    let new_id = new.state.sealer().expect("sealer").key_id();
    assert_eq!((out.key_id.as_str(), out.resealed, out.signing_key_resealed), (new_id.as_str(), 2, true), "{out:?}");
    assert_eq!(out.by_key.keys().collect::<Vec<_>>(), vec![&new_id], "everything under the new key: {out:?}");
    assert!(seen.lock().expect("lock").last().is_some_and(|(d, t)| d == t), "progress ends at the total");
    // Both replicas still serve reads; the values are the ones set, under the new key.
    assert_eq!(old.get(&format!("/v1/env_var/{}", id(&var)), &owner).await.1["preview_secret"], "sk-...3210");
    assert_eq!(new.get(&format!("/v1/ai_secret/{}", id(&sec)), &owner).await.1["preview_secret"], "sk-...ABCD");
    let (_, audit) = new.get("/v1/audit_log?event_type=secrets.rotated", &owner).await;
    assert_eq!(audit["objects"][0]["after"]["resealed"], 1, "{audit}");
    // A second run has nothing to do.
    let again = castellan_server::rotation::rotate(&new.state, &new.system, |_, _| {}).await.expect("rotate");
    assert_eq!((again.resealed, again.unchanged, again.signing_key_resealed), (0, 3, false), "{again:?}");
    // The re-sealed signing secret still signs cost alerts (opened with the new key).
    let (_, p) = new.post("/v1/project", &owner, json!({"name": "p"})).await;
    let row = json!({"rows": [{"project_id": id(&p), "log_id": "g", "id": "a"}], "api_version": 2});
    assert_eq!(new.post("/logs3", &owner, row).await.0, StatusCode::OK);
    let hits = rx.wait_for(1).await;
    let sig = hits[0].headers["x-castellan-signature"].to_str().expect("signed");
    assert!(crate::support::verify_signature(&alert_secret, sig, &hits[0].raw), "{sig}");
    new.stop().await;
    old.stop().await;
}

async fn automations_validate_their_rules_and_seal_webhook_secrets(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let token = "Bearer hook-token-0123456789abcdefghijklmnop";
    let alert = json!({"project_id": p, "name": "errors", "description": "error spikes", "config": {
        "event_type": "logs", "btql_filter": "error IS NOT NULL", "interval_seconds": 3600,
        "action": {"type": "webhook", "url": "https://hooks.example/alert", "headers": {"Authorization": token}}}});
    let (s, a) = app.post("/v1/project_automation", &owner, alert.clone()).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let secret = a["signing_secret"].as_str().expect("shown once").to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() == 70, "{secret}");
    assert_eq!(a["config"]["action"]["header_names"], json!(["Authorization"]), "{a}");
    assert!(!a.to_string().contains("hook-token"), "header values are never answered: {a}");
    let id = id(&a);
    let (_, got) = app.get(&format!("/v1/project_automation/{id}"), &owner).await;
    assert!(got.get("signing_secret").is_none() && !got.to_string().contains("hook-token"), "{got}");
    let (_, h, again) = app.send(Method::POST, "/v1/project_automation", Some(&owner), Some(alert.clone()), &[]).await;
    assert!(h.get("x-bt-found-existing").is_some() && again.get("signing_secret").is_none(), "{again}");
    let (s, put) = app
        .send(Method::PUT, "/v1/project_automation", Some(&owner), Some(alert.clone()), &[])
        .await
        .pipe(|(s, _, v)| (s, v));
    assert_eq!((s, put.get("signing_secret")), (StatusCode::OK, None), "a replace keeps the secret: {put}");
    let (s, v) = app
        .patch(
            &format!("/v1/project_automation/{id}"),
            &owner,
            json!({"config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 30}}),
        )
        .await;
    assert_eq!((s, v["config"]["retention_days"].as_u64()), (StatusCode::OK, Some(30)), "{v}");
    for (config, why) in [
        (
            json!({"event_type": "logs", "btql_filter": "error IS NOT NULL", "interval_seconds": 0, "action": {"type": "webhook", "url": "https://a.example"}}),
            "an interval of 0",
        ),
        (
            json!({"event_type": "logs", "btql_filter": "error IS NOT NULL", "interval_seconds": 60, "action": {"type": "webhook", "url": "ftp://a"}}),
            "a URL that is not http",
        ),
        (
            json!({"event_type": "logs", "btql_filter": "error IS NOT NULL", "interval_seconds": 60, "action": {"type": "email"}}),
            "an unknown action",
        ),
        (
            json!({"event_type": "logs", "btql_filter": "error IS NOT NULL", "interval_seconds": 60, "action": {"type": "webhook", "url": "https://a.example", "headers": {"Host": "x"}}}),
            "a header Castellan sets",
        ),
        (json!({"event_type": "retention", "object_type": "spans", "retention_days": 3}), "an unknown object type"),
        (json!({"event_type": "retention", "object_type": "dataset", "retention_days": -1}), "negative days"),
        (json!({"event_type": "alerts"}), "an unknown event type"),
        (
            json!({"event_type": "logs", "btql_filter": "metadata.level =", "interval_seconds": 60, "action": {"type": "webhook", "url": "https://a.example"}}),
            "a filter that does not parse",
        ),
        (
            json!({"event_type": "logs", "btql_filter": "error IS NOT NULL", "interval_seconds": 60, "action": {"type": "webhook", "url": "http://169.254.169.254/latest"}}),
            "a link-local (metadata) address",
        ),
        (
            json!({"event_type": "btql_export", "export_definition": {"type": "log_spans"}, "export_path": "s3://b/p", "format": "csv", "interval_seconds": 60, "credentials": {"type": "aws_iam", "role_arn": "r", "external_id": "e"}}),
            "an unknown format",
        ),
    ] {
        let (s, v) =
            app.post("/v1/project_automation", &owner, json!({"project_id": p, "name": "bad", "config": config})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
        common::assert_listed_error(s, &v);
    }
    // Org automations: retention only; Manage settings.
    let org_id = app.get("/v1/organization", &owner).await.1["objects"][0]["id"].as_str().expect("org").to_owned();
    let rule = json!({"org_id": org_id, "name": "keep-90", "config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 90}});
    let (s, o) = app.post("/v1/org_automation", &owner, rule.clone()).await;
    assert_eq!((s, o["config"]["retention_days"].as_u64()), (StatusCode::OK, Some(90)), "{o}");
    let (s, _) = app
        .post("/v1/org_automation", &owner, json!({"org_id": org_id, "name": "x", "config": {"event_type": "logs"}}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let viewer = support::member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    assert_eq!(app.get(&format!("/v1/project_automation/{id}"), &viewer.key).await.0, StatusCode::OK);
    assert_eq!(app.delete(&format!("/v1/project_automation/{id}"), &viewer.key).await.0, StatusCode::FORBIDDEN);
    let (_, h, same) = app.send(Method::POST, "/v1/org_automation", Some(&viewer.key), Some(rule.clone()), &[]).await;
    assert!(h.get("x-bt-found-existing").is_some() && same["id"] == o["id"], "a reader gets the existing one: {same}");
    let mut other = rule;
    other["name"] = json!("viewer-rule");
    assert_eq!(app.post("/v1/org_automation", &viewer.key, other).await.0, StatusCode::FORBIDDEN);
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    assert_eq!(app.get(&format!("/v1/project_automation/{id}"), &zeta).await.0, StatusCode::NOT_FOUND);
    // Neither the signing secret nor the header value is stored in the clear.
    let dump = common::dump_database(&app.db).await;
    assert!(!dump.contains(&secret[6..]) && !dump.contains("hook-token"), "sealed at rest");
    let (_, audit) = app.get("/v1/audit_log?event_type=project_automation.", &owner).await;
    assert!(!audit.to_string().contains("hook-token") && !audit.to_string().contains(&secret[6..]), "{audit}");
    app.stop().await;
}

async fn insert_rows(app: &TestApp, key: &str, path: &str, rows: Vec<Value>) {
    let (s, v) = app.post(path, key, json!({"events": rows})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn fetch_ids(app: &TestApp, key: &str, path: &str) -> Vec<String> {
    let (_, v) = app.post(path, key, json!({"limit": 1000})).await;
    let mut ids: Vec<String> =
        v["events"].as_array().expect("events").iter().filter_map(|e| e["id"].as_str().map(str::to_owned)).collect();
    ids.sort();
    ids
}

async fn retention_sweeps_old_rows_under_a_lease_and_leaves_nothing_behind(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let q = project(&app, &owner, "q").await;
    let logs = format!("/v1/project_logs/{p}/insert");
    let marker = "ancient-marker-5f3a9c";
    let old: Vec<Value> =
        (0..5).map(|i| json!({"id": format!("old-{i}"), "input": marker, "created": "2020-01-01T00:00:00Z"})).collect();
    let new: Vec<Value> = (0..3).map(|i| json!({"id": format!("new-{i}"), "input": "recent"})).collect();
    insert_rows(&app, &owner, &logs, old).await;
    insert_rows(&app, &owner, &logs, new).await;
    if let common::Db::Sqlite(path) = &app.db {
        assert!(checkpoint(path).await);
        let text = String::from_utf8_lossy(&std::fs::read(path).expect("db")).into_owned();
        assert!(text.contains(marker), "the scan finds rows not yet swept");
    }
    let (_, rule) = app
        .post("/v1/project_automation", &owner, json!({"project_id": p, "name": "keep-30", "config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 30}}))
        .await;
    let rid = id(&rule);
    let (s, pv) = app.get(&format!("/v1/project_automation/{rid}/preview"), &owner).await;
    assert_eq!((s, pv["total"].as_u64()), (StatusCode::OK, Some(5)), "{pv}");
    // Another replica holds the lease: no second sweep.
    let system = app.system.permit();
    let jobs = app.state.jobs(&system);
    let now = app.state.now();
    assert!(jobs
        .take_lease(&format!("automation:{rid}"), "other-replica", now, now + 60_000_000)
        .await
        .expect("lease"));
    let (s, v) = app.post(&format!("/v1/project_automation/{rid}/run"), &owner, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // Its lease expires: taken over.
    assert!(jobs.take_lease(&format!("automation:{rid}"), "other-replica", now, now - 1).await.expect("lease"));
    let viewer = support::member(&app, &owner, "vic@acme.example", Some("Viewers")).await;
    assert_eq!(
        app.post(&format!("/v1/project_automation/{rid}/run"), &viewer.key, json!({})).await.0,
        StatusCode::FORBIDDEN
    );
    let (s, run) = app.post(&format!("/v1/project_automation/{rid}/run"), &owner, json!({})).await;
    assert_eq!((s, run["status"].as_str(), run["count"].as_i64()), (StatusCode::OK, Some("ok"), Some(5)), "{run}");
    let fetch = format!("/v1/project_logs/{p}/fetch");
    assert_eq!(fetch_ids(&app, &owner, &fetch).await, vec!["new-0", "new-1", "new-2"]);
    let (_, again) = app.post(&format!("/v1/project_automation/{rid}/run"), &owner, json!({})).await;
    assert_eq!(again["count"], 0, "idempotent: {again}");
    let (_, runs) = app.get(&format!("/v1/project_automation/{rid}/runs"), &viewer.key).await;
    assert_eq!(runs["objects"].as_array().map(Vec::len), Some(2), "{runs}");
    let (_, audit) = app.get("/v1/audit_log?event_type=project_automation.run", &owner).await;
    assert_eq!(audit["objects"].as_array().map(Vec::len), Some(2), "one record per run: {audit}");
    // An org rule covers every project without a rule of its own for that type.
    let (_, dp) = app.post("/v1/dataset", &owner, json!({"project_id": p, "name": "dp"})).await;
    let (_, dq) = app.post("/v1/dataset", &owner, json!({"project_id": q, "name": "dq"})).await;
    for (d, m) in [(&dp, "kept-by-its-project-rule"), (&dq, marker)] {
        let rows = vec![
            json!({"id": "ancient", "input": m, "created": "2020-01-01T00:00:00Z"}),
            json!({"id": "fresh", "input": "x"}),
        ];
        insert_rows(&app, &owner, &format!("/v1/dataset/{}/insert", id(d)), rows).await;
    }
    app.post("/v1/project_automation", &owner, json!({"project_id": p, "name": "keep-datasets", "config": {"event_type": "retention", "object_type": "dataset", "retention_days": 36500}}))
        .await;
    let org_id = app.get("/v1/organization", &owner).await.1["objects"][0]["id"].as_str().expect("org").to_owned();
    let (_, org_rule) = app
        .post("/v1/org_automation", &owner, json!({"org_id": org_id, "name": "org-datasets", "config": {"event_type": "retention", "object_type": "dataset", "retention_days": 1}}))
        .await;
    let (_, pv) = app.get(&format!("/v1/org_automation/{}/preview", id(&org_rule)), &owner).await;
    assert_eq!(
        pv["objects"],
        json!([{"object_type": "dataset", "object_id": id(&dq), "rows": 1}]),
        "the project rule wins for p: {pv}"
    );
    let (_, run) = app.post(&format!("/v1/org_automation/{}/run", id(&org_rule)), &owner, json!({})).await;
    assert_eq!(run["count"], 1, "{run}");
    assert_eq!(fetch_ids(&app, &owner, &format!("/v1/dataset/{}/fetch", id(&dq))).await, vec!["fresh"]);
    assert_eq!(fetch_ids(&app, &owner, &format!("/v1/dataset/{}/fetch", id(&dp))).await, vec!["ancient", "fresh"]);
    // The scheduler: due rules run once, then wait for their period.
    let ran = castellan_server::automation::tick_once(&app.state, &app.system, "scheduler-test").await.expect("tick");
    assert_eq!(ran, 1, "only the dataset rule of p has never run");
    assert_eq!(
        castellan_server::automation::tick_once(&app.state, &app.system, "scheduler-test").await.expect("tick"),
        0
    );
    if let common::Db::Sqlite(path) = &app.db {
        // Before the sweep of the marker rows below, the scan finds it.
        assert!(checkpoint(path).await);
        let text = String::from_utf8_lossy(&std::fs::read(path).expect("db")).into_owned();
        assert!(!text.contains(marker), "already swept by the runs above");
    }
    // What was swept is gone from the files (SQLite, overwritten on delete; after a
    // checkpoint the WAL holds none of it either).
    if let common::Db::Sqlite(path) = &app.db {
        assert!(checkpoint(path).await, "checkpointed");
        let mut bytes = std::fs::read(path).expect("db");
        bytes.extend(std::fs::read(path.with_extension("sqlite-wal")).unwrap_or_default());
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("kept-by-its-project-rule"), "the scan sees live rows");
        assert_eq!(text.matches(marker).count(), 0, "swept rows are gone from the database files");
    }
    app.stop().await;
}

/// A log longer than a sweep's window, its old versions scattered among new ones
/// in every transaction: the sweep reads it window by window and deletes exactly
/// the old versions, none of the new ones, and nothing of another project's log.
async fn a_sweep_deletes_old_versions_among_new_ones_window_by_window(b: Backend) {
    use castellan_store::{EventKind, EventObject};
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let p = project(&app, &owner, "p").await;
    let q = project(&app, &owner, "q").await;
    let rows = |tag: &str, batch: usize| -> Vec<Value> {
        (0..500)
            .map(|i| {
                let id = format!("{tag}{batch}-{i:03}");
                if i % 3 == 0 {
                    json!({"id": id, "input": "old", "created": "2020-01-01T00:00:00Z"})
                } else {
                    json!({"id": id, "input": "new"})
                }
            })
            .collect()
    };
    // 4,500 versions in 9 transactions (a window is 2,000), a third of them old.
    for batch in 0..9 {
        insert_rows(&app, &owner, &format!("/v1/project_logs/{p}/insert"), rows("r", batch)).await;
    }
    insert_rows(&app, &owner, &format!("/v1/project_logs/{q}/insert"), rows("q", 0)).await;
    let system = app.system.permit();
    let jobs = app.state.jobs(&system);
    let log = |id: &str| EventObject { kind: EventKind::ProjectLogs, id: id.parse().expect("project id") };
    let all = "9999-01-01T00:00:00Z";
    assert_eq!(jobs.count_events_before(log(&p), all).await.expect("count"), 4500);
    let (_, rule) = app
        .post("/v1/project_automation", &owner, json!({"project_id": p, "name": "keep-30", "config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 30}}))
        .await;
    let rid = id(&rule);
    let (s, pv) = app.get(&format!("/v1/project_automation/{rid}/preview"), &owner).await;
    assert_eq!((s, pv["total"].as_u64()), (StatusCode::OK, Some(9 * 167)), "{pv}");
    let (s, run) = app.post(&format!("/v1/project_automation/{rid}/run"), &owner, json!({})).await;
    assert_eq!(
        (s, run["status"].as_str(), run["count"].as_i64()),
        (StatusCode::OK, Some("ok"), Some(9 * 167)),
        "{run}"
    );
    assert_eq!(jobs.count_events_before(log(&p), all).await.expect("count"), 4500 - 9 * 167, "the new versions stay");
    assert_eq!(jobs.count_events_before(log(&p), "2021-01-01T00:00:00Z").await.expect("count"), 0, "no old one does");
    assert_eq!(jobs.count_events_before(log(&q), all).await.expect("count"), 500, "another log is not touched");
    let (_, pv) = app.get(&format!("/v1/project_automation/{rid}/preview"), &owner).await;
    assert_eq!(pv["total"].as_u64(), Some(0), "{pv}");
    app.stop().await;
}

/// Checkpoints (and truncates) the WAL of a SQLite database through a connection
/// of its own.
async fn checkpoint(path: &std::path::Path) -> bool {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(path).connect().await.expect("connect");
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await.is_ok()
}
