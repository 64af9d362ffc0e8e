//! Configuration as code (`/v1/config/export`, `plan`, `apply`) over real HTTP on
//! SQLite and PostgreSQL: an export applied to a fresh organization exports the
//! same document; applying twice changes nothing the second time; a plan lists
//! exactly what changes; apply is one transaction that refuses lockout, escalation
//! and bad documents without changing anything; one audit record per change;
//! secret values never leave the server.

use crate::common;

use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    an_export_applied_to_a_fresh_organization_exports_the_same_document,
    a_plan_lists_exactly_what_is_added_changed_and_removed,
    apply_refuses_what_would_lock_the_organization_out_and_changes_nothing,
    nobody_gains_through_apply_what_the_endpoints_would_refuse_them,
    a_bad_document_answers_400_naming_the_entry_and_changes_nothing,
    secret_values_never_appear_in_an_export_and_apply_never_touches_them,
    grants_expire_and_plans_are_guarded_by_their_hash
);

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id: {v}")).to_owned()
}

/// A new member of `owner`'s org (invited and accepted); returns (user id, API key).
async fn member(app: &TestApp, owner: &str, email: &str, group: Option<&str>) -> (String, String) {
    let mut invite = json!({"emails": [email]});
    if let Some(g) = group {
        invite["group_name"] = json!(g);
    }
    let (s, _, out) = app
        .send(Method::PATCH, "/v1/organization/members", Some(owner), Some(json!({"invite_users": invite})), &[])
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let token = out["invitations"][0]["token"].as_str().expect("token");
    let (s, _, acc) = app.send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": token})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    (acc["user"]["id"].as_str().expect("id").to_owned(), acc["api_key"].as_str().expect("key").to_owned())
}

/// Brings an existing account (signed in with `their_key`) into `owner`'s org;
/// returns its key for that org.
async fn join(app: &TestApp, owner: &str, email: &str, their_key: &str) -> String {
    let invite = json!({"invite_users": {"emails": [email]}});
    let (s, _, out) = app.send(Method::PATCH, "/v1/organization/members", Some(owner), Some(invite), &[]).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let token = out["invitations"][0]["token"].as_str().expect("token");
    let (s, _, acc) =
        app.send(Method::POST, "/api/invitation/accept", Some(their_key), Some(json!({"token": token})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    acc["api_key"].as_str().expect("key").to_owned()
}

async fn service_account(app: &TestApp, owner: &str, name: &str) -> String {
    let body = json!({"invite_users": {"service_accounts": [{"name": name}]}});
    let (s, _, out) = app.send(Method::PATCH, "/v1/organization/members", Some(owner), Some(body), &[]).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    out["added_users"][0]["id"].as_str().expect("id").to_owned()
}

async fn ok(app: &TestApp, method: Method, path: &str, key: &str, body: Value) -> Value {
    let (s, _, v) = app.send(method.clone(), path, Some(key), Some(body), &[]).await;
    assert_eq!(s, StatusCode::OK, "{method} {path}: {v}");
    v
}

async fn export(app: &TestApp, key: &str, org: &str) -> Value {
    let (s, v) = app.get(&format!("/v1/config/export?org_name={org}"), key).await;
    assert_eq!(s, StatusCode::OK, "export {org}: {v}");
    v
}

async fn plan(app: &TestApp, key: &str, org: &str, doc: &Value) -> (StatusCode, Value) {
    app.post(&format!("/v1/config/plan?org_name={org}"), key, doc.clone()).await
}

async fn apply(app: &TestApp, key: &str, org: &str, doc: &Value) -> (StatusCode, Value) {
    app.post(&format!("/v1/config/apply?org_name={org}"), key, doc.clone()).await
}

/// The audit records of an org, newest first.
async fn audit(app: &TestApp, key: &str, org: &str) -> Vec<Value> {
    let (s, v) = app.get(&format!("/v1/audit_log?org_name={org}&limit=1000"), key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["objects"].as_array().expect("records").clone()
}

/// `(action, kind, name)` of each change of a plan.
fn changes(plan: &Value) -> Vec<(String, String, String)> {
    plan["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes: {plan}"))
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (s("action"), s("kind"), s("name"))
        })
        .collect()
}

fn entry<'a>(doc: &'a mut Value, section: &str, name: &str) -> &'a mut Value {
    doc[section]
        .as_array_mut()
        .and_then(|a| a.iter_mut().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no {section} entry {name}"))
}

async fn an_export_applied_to_a_fresh_organization_exports_the_same_document(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let ada = app.bootstrap("acme", "ada@acme.example").await;
    let (_, bob_key) = member(&app, &ada, "bob@acme.example", Some("Engineers")).await;
    service_account(&app, &ada, "ci-bot").await;
    let org = id(&app.get("/v1/organization", &ada).await.1["objects"][0]);
    ok(
        &app,
        Method::PATCH,
        &format!("/v1/organization/{org}"),
        &ada,
        json!({"api_url": "https://api.acme.example", "image_rendering_mode": "click_to_load"}),
    )
    .await;
    let auditor = ok(&app, Method::POST, "/v1/role", &ada, json!({"name": "Auditor", "description": "reads the log",
        "member_permissions": [{"permission": "read", "restrict_object_type": "org_audit_logs"}, {"permission": "read", "restrict_object_type": null}]})).await;
    ok(
        &app,
        Method::POST,
        "/v1/role",
        &ada,
        json!({"name": "Lead", "member_roles": [id(&auditor)],
        "member_permissions": [{"permission": "create", "restrict_object_type": "project"}]}),
    )
    .await;
    let web = ok(&app, Method::POST, "/v1/project", &ada, json!({"name": "web", "description": "the site"})).await;
    let wid = id(&web);
    let baseline = ok(&app, Method::POST, "/v1/experiment", &ada, json!({"project_id": wid, "name": "baseline"})).await;
    ok(
        &app,
        Method::PATCH,
        &format!("/v1/project/{wid}"),
        &ada,
        json!({"settings": {"comparison_key": "input", "baseline_experiment_id": id(&baseline), "blind_reviews": null}}),
    )
    .await;
    ok(&app, Method::POST, "/v1/project", &ada, json!({"name": "api/v2"})).await;
    let pg = ok(&app, Method::POST, "/v1/project_group", &ada, json!({"name": "frontend", "description": "UI"})).await;
    ok(&app, Method::PATCH, &format!("/v1/project_group/{}", id(&pg)), &ada, json!({"add_member_projects": [wid]}))
        .await;
    // One administration object of every kind a document holds.
    let simulated = format!("/v1/project/{wid}/simulated_user");
    for (path, body) in [
        ("/v1/project_tag", json!({"project_id": wid, "name": "bug", "color": "red"})),
        (
            "/v1/env_var",
            json!({"object_type": "organization", "object_id": org, "name": "OPENAI_API_KEY",
            "value": "sk-live-the-secret-value-0123456789", "secret_type": "openai"}),
        ),
        (
            "/v1/ai_secret",
            json!({"name": "openai", "type": "openai", "secret": "sk-ai-secret-value-0123456789",
            "metadata": {"api_base": "https://api.openai.example"}}),
        ),
        (
            "/v1/project_score",
            json!({"project_id": wid, "name": "quality", "score_type": "categorical",
            "categories": [{"name": "good", "value": 1}, {"name": "bad", "value": 0}]}),
        ),
        (
            "/v1/span_iframe",
            json!({"project_id": wid, "name": "viewer", "url": "https://viewer.example", "post_message": true}),
        ),
        (
            "/v1/view",
            json!({"object_type": "project", "object_id": wid, "view_type": "logs", "name": "errors",
            "view_data": {"search": {"filter": ["error"]}}}),
        ),
        ("/v1/agent", json!({"project_id": wid, "name": "Support Bot", "description": "helps"})),
        ("/v1/mcp_server", json!({"project_id": wid, "name": "tools", "url": "https://mcp.example"})),
        (
            simulated.as_str(),
            json!({"name": "grumpy", "instructions": "be grumpy",
            "voice_config": {"voice_id": "v1"}}),
        ),
        (
            "/environment",
            json!({"name": "Production", "slug": "production", "description": "live", "org_name": "acme"}),
        ),
    ] {
        ok(&app, Method::POST, path, &ada, body).await;
    }
    // A dataset snapshot is a version of data: no document holds it or touches it.
    let golden = ok(&app, Method::POST, "/v1/dataset", &ada, json!({"project_id": wid, "name": "golden"})).await;
    let snapshot = json!({"dataset_id": id(&golden), "name": "golden-v1", "xact_id": "1"});
    ok(&app, Method::POST, "/v1/dataset_snapshot", &ada, snapshot).await;
    // Groups and grants by the document itself: its own edits are part of the round trip.
    let mut doc = export(&app, &ada, "acme").await;
    doc["groups"].as_array_mut().expect("groups").push(json!({"name": "Contractors", "description": "outside help",
        "users": ["bob@acme.example"], "service_accounts": ["ci-bot"]}));
    doc["groups"].as_array_mut().expect("groups").push(json!({"name": "Leads", "groups": ["Contractors"]}));
    for g in [
        json!({"on": "project/web", "group": "Contractors", "permission": "read"}),
        json!({"on": "project/web/experiment/baseline", "group": "Contractors", "permission": "update"}),
        json!({"on": "organization", "user": "bob@acme.example", "role": "Auditor", "expires_at": "2099-01-01T00:00:00Z"}),
        json!({"on": "project/api\\/v2", "service_account": "ci-bot", "permission": "read", "restrict_object_type": "experiment"}),
        json!({"on": "project_group_projects/frontend", "group": "Leads", "role": "Lead"}),
        json!({"on": "group/Contractors", "user": "bob@acme.example", "permission": "update"}),
        json!({"on": "ai_secret/openai", "group": "Contractors", "permission": "read"}),
    ] {
        doc["grants"].as_array_mut().expect("grants").push(g);
    }
    let (s, p) = apply(&app, &ada, "acme", &doc).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let a = export(&app, &ada, "acme").await;
    assert!(!a.to_string().contains("golden-v1"), "{a}");
    assert_eq!(app.get("/v1/dataset_snapshot", &ada).await.1["objects"][0]["name"], "golden-v1");
    assert_eq!(a["projects"][0]["name"], "api/v2", "sorted by name: {a}");
    assert_eq!(
        a["projects"][1]["settings"],
        json!({"baseline_experiment": "baseline", "comparison_key": "input"}),
        "the baseline by name, nulls left out"
    );
    let kinds: std::collections::BTreeSet<&str> =
        a["objects"].as_array().expect("objects").iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "agent",
            "ai_secret",
            "env_var",
            "environment",
            "mcp_server",
            "project_score",
            "project_tag",
            "simulated_user",
            "span_iframe",
            "view"
        ]
    );
    assert!(a["grants"].to_string().contains("project/api\\\\/v2"), "a slash in a name is escaped: {a}");
    let (s, toml) = {
        let (s, h, v) =
            app.send(Method::GET, "/v1/config/export?org_name=acme&format=toml", Some(&ada), None, &[]).await;
        assert_eq!(v, Value::Null, "TOML is not JSON");
        assert!(h["content-type"].to_str().is_ok_and(|c| c.starts_with("application/toml")), "{h:?}");
        let text = app
            .http
            .get(format!("{}/v1/config/export?org_name=acme", app.base))
            .bearer_auth(&ada)
            .header("accept", "application/toml")
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("text");
        (s, text)
    };
    assert_eq!(s, StatusCode::OK);
    assert!(toml.contains("[[groups]]") && toml.contains("name = \"Contractors\""), "{toml}");
    // The TOML form plans exactly like the JSON form: nothing to do.
    let resp = app
        .http
        .post(format!("{}/v1/config/plan", app.base))
        .bearer_auth(&ada)
        .header("content-type", "application/toml")
        .body(toml.clone())
        .send()
        .await
        .expect("plan");
    assert_eq!(resp.status(), StatusCode::OK);
    let p: Value = resp.json().await.expect("json");
    assert_eq!(p["changes"], json!([]), "{p}");
    assert_eq!(p["organization"], "acme");

    // A fresh organization with the same people, the service account and the one
    // experiment (data, which apply does not create).
    let created = ok(&app, Method::POST, "/v1/organization", &ada, json!({"name": "acme-staging"})).await;
    let ada2 = created["api_key"].as_str().expect("key for the new org").to_owned();
    let bob2 = join(&app, &ada2, "bob@acme.example", &bob_key).await;
    service_account(&app, &ada2, "ci-bot").await;
    let web2 = ok(&app, Method::POST, "/v1/project", &ada2, json!({"name": "web"})).await;
    ok(&app, Method::POST, "/v1/experiment", &ada2, json!({"project_id": id(&web2), "name": "baseline"})).await;
    let before = audit(&app, &ada2, "acme-staging").await.len();
    let (s, p) = plan(&app, &ada2, "acme-staging", &a).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["refusals"], json!([]), "{p}");
    assert_eq!(p["organization"], "acme-staging");
    assert!(changes(&p).contains(&("add".into(), "env_var".into(), "organization/env_var/OPENAI_API_KEY".into())));
    assert!(changes(&p).contains(&("change".into(), "project".into(), "web".into())), "{p}");
    assert!(p["notes"].to_string().contains("without a value"), "{p}");
    let (s, applied) = apply(&app, &ada2, "acme-staging", &a).await;
    assert_eq!(s, StatusCode::OK, "{applied}");
    assert_eq!(applied["changes"], p["changes"], "apply makes exactly the plan");
    let rev = applied["revision"].as_u64().expect("revision");
    let records = audit(&app, &ada2, "acme-staging").await;
    assert_eq!(records.len() - before, p["changes"].as_array().expect("changes").len(), "one audit record per change");
    assert!(records.iter().take(records.len() - before).all(|r| r["revision"] == rev), "all in one transaction");
    let mut b_doc = export(&app, &ada2, "acme-staging").await;
    assert_eq!(b_doc["organization"], "acme-staging");
    b_doc["organization"] = json!("acme");
    assert_eq!(b_doc, a, "the fresh organization exports the same document");
    // Applying again changes nothing.
    let (s, p) = plan(&app, &ada2, "acme-staging", &a).await;
    assert_eq!((s, p["changes"].clone()), (StatusCode::OK, json!([])), "{p}");
    let (s, again) = apply(&app, &ada2, "acme-staging", &a).await;
    assert_eq!((s, again["changes"].clone(), again["revision"].clone()), (StatusCode::OK, json!([]), Value::Null));
    assert_eq!(audit(&app, &ada2, "acme-staging").await.len(), records.len(), "nothing audited");
    // What the document says, the engine enforces: bob reads web through Contractors.
    assert_eq!(app.get(&format!("/v1/project/{}", id(&web2)), &bob2).await.0, StatusCode::OK);
    let (_, why) = app
        .get(&format!("/v1/acl/explain?object_type=project&object_id={}&permission=create_acls", id(&web2)), &bob2)
        .await;
    assert_eq!(why["allowed"], false, "{why}");
    app.stop().await;
}

async fn a_plan_lists_exactly_what_is_added_changed_and_removed(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let ada = app.bootstrap("acme", "ada@acme.example").await;
    member(&app, &ada, "bob@acme.example", None).await;
    let p = ok(&app, Method::POST, "/v1/project", &ada, json!({"name": "p"})).await;
    ok(&app, Method::POST, "/v1/role", &ada, json!({"name": "Old"})).await;
    ok(&app, Method::POST, "/v1/project_tag", &ada, json!({"project_id": id(&p), "name": "t1", "color": "blue"})).await;
    ok(&app, Method::POST, "/v1/project_tag", &ada, json!({"project_id": id(&p), "name": "t2"})).await;
    // A group and a project group that go, with a grant and a member project.
    let temp = ok(&app, Method::POST, "/v1/group", &ada, json!({"name": "Temp", "member_groups": []})).await;
    let grant = json!({"object_type": "project", "object_id": id(&p), "group_id": id(&temp), "permission": "read"});
    ok(&app, Method::POST, "/v1/acl", &ada, grant).await;
    let pg = ok(&app, Method::POST, "/v1/project_group", &ada, json!({"name": "pg1"})).await;
    ok(&app, Method::PATCH, &format!("/v1/project_group/{}", id(&pg)), &ada, json!({"add_member_projects": [id(&p)]}))
        .await;
    let mut doc = export(&app, &ada, "acme").await;
    assert_eq!(plan(&app, &ada, "acme", &doc).await.1["changes"], json!([]), "an export plans to nothing");
    doc["groups"].as_array_mut().expect("groups").retain(|g| g["name"] != "Temp");
    doc["grants"].as_array_mut().expect("grants").retain(|g| g["group"] != "Temp");
    doc.as_object_mut().expect("doc").remove("project_groups");
    doc["groups"].as_array_mut().expect("groups").push(json!({"name": "New", "users": ["bob@acme.example"]}));
    entry(&mut doc, "groups", "Engineers")["description"] = json!("builders");
    doc["roles"] = json!([]);
    let objects = doc["objects"].as_array_mut().expect("objects");
    objects.retain(|o| o["name"] != "t2");
    objects.iter_mut().find(|o| o["name"] == "t1").expect("t1")["data"]["color"] = json!("green");
    objects.push(json!({"kind": "project_tag", "on": "project/p", "name": "t3", "data": {"description": "new"}}));
    doc["grants"].as_array_mut().expect("grants").retain(|g| g["group"] != "Viewers" || g["on"] != "org_project");
    doc["grants"]
        .as_array_mut()
        .expect("grants")
        .push(json!({"on": "project/p", "group": "New", "permission": "read"}));
    let (s, planned) = plan(&app, &ada, "acme", &doc).await;
    assert_eq!(s, StatusCode::OK, "{planned}");
    let c = |a: &str, k: &str, n: &str| (a.to_owned(), k.to_owned(), n.to_owned());
    assert_eq!(
        changes(&planned),
        vec![
            c("change", "group", "Engineers"),
            c("add", "group", "New"),
            c("change", "project_tag", "project/p/project_tag/t1"),
            c("remove", "project_tag", "project/p/project_tag/t2"),
            c("add", "project_tag", "project/p/project_tag/t3"),
            c("remove", "grant", "group Viewers: read on org_project"),
            c("remove", "grant", "group Temp: read on project/p"),
            c("add", "grant", "group New: read on project/p"),
            c("remove", "project_group", "pg1"),
            c("remove", "group", "Temp"),
            c("remove", "role", "Old"),
        ],
        "{planned}"
    );
    let eng = &planned["changes"][0];
    assert_eq!(
        (eng["before"]["description"].as_str().is_some(), &eng["after"]["description"]),
        (true, &json!("builders"))
    );
    assert_eq!(planned["changes"][2]["before"]["data"]["color"], "blue");
    let (s, applied) = apply(&app, &ada, "acme", &doc).await;
    assert_eq!(s, StatusCode::OK, "{applied}");
    let after = export(&app, &ada, "acme").await;
    assert_eq!(plan(&app, &ada, "acme", &after).await.1["changes"], json!([]));
    assert_eq!(plan(&app, &ada, "acme", &doc).await.1["changes"], json!([]), "the edited document is now the state");
    assert_eq!(after.get("roles"), None, "no role left, and an empty list is left out: {after}");
    let (_, tags) = app.get(&format!("/v1/project_tag?project_id={}", id(&p)), &ada).await;
    let mut names: Vec<(String, Value)> = tags["objects"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| (t["name"].as_str().expect("name").to_owned(), t["color"].clone()))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(names, vec![("t1".into(), json!("green")), ("t3".into(), Value::Null)]);
    assert!(
        tags["objects"].as_array().expect("tags").iter().all(|t| t["user_id"].is_string()),
        "creators recorded: {tags}"
    );
    // The audit records are those of the endpoints.
    let records = audit(&app, &ada, "acme").await;
    let rev = applied["revision"].clone();
    let mut events: Vec<String> = records
        .iter()
        .filter(|r| r["revision"] == rev)
        .map(|r| r["event_type"].as_str().expect("event").to_owned())
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            "acl.created",
            "acl.deleted",
            "acl.deleted",
            "group.created",
            "group.deleted",
            "group.updated",
            "project_group.deleted",
            "project_tag.created",
            "project_tag.deleted",
            "project_tag.updated",
            "role.deleted"
        ]
    );
    app.stop().await;
}

async fn apply_refuses_what_would_lock_the_organization_out_and_changes_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let ada = app.bootstrap("acme", "ada@acme.example").await;
    member(&app, &ada, "bob@acme.example", None).await;
    let before = export(&app, &ada, "acme").await;
    let head = audit(&app, &ada, "acme").await.len();
    let mut doc = before.clone();
    doc["groups"].as_array_mut().expect("groups").push(json!({"name": "Extra", "users": ["bob@acme.example"]}));
    doc["grants"]
        .as_array_mut()
        .expect("grants")
        .push(json!({"on": "organization", "group": "Extra", "role": "Owner"}));
    entry(&mut doc, "groups", "Owners")["users"] = json!([]);
    let (s, p) = plan(&app, &ada, "acme", &doc).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(changes(&p).len(), 3, "{p}");
    assert_eq!(p["refusals"].as_array().map(Vec::len), Some(1), "the dry run refuses: {p}");
    assert!(
        p["refusals"][0]["reason"].as_str().is_some_and(|r| r.contains("Owners group cannot be left empty")),
        "{p}"
    );
    // The plan's refusal comes from a dry run; apply's from its commit, which rolls back.
    let (s, e) = apply(&app, &ada, "acme", &doc).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("lockout")), "{e}");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("Owners group cannot be left empty")), "{e}");
    assert_eq!(export(&app, &ada, "acme").await, before, "nothing changed");
    assert_eq!(audit(&app, &ada, "acme").await.len(), head, "nothing audited");
    // Taking the last owner's grant away is refused the same way.
    let mut doc = before.clone();
    doc["grants"].as_array_mut().expect("grants").retain(|g| g["group"] != "Owners");
    let (s, e) = apply(&app, &ada, "acme", &doc).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("lockout")), "{e}");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("without an owner")), "{e}");
    assert_eq!(export(&app, &ada, "acme").await, before);
    // Built-in groups stay.
    let mut doc = before.clone();
    doc["groups"].as_array_mut().expect("groups").retain(|g| g["name"] != "Viewers");
    doc["grants"].as_array_mut().expect("grants").retain(|g| g["group"] != "Viewers");
    let (s, e) = apply(&app, &ada, "acme", &doc).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("protected")), "{e}");
    assert_eq!(export(&app, &ada, "acme").await, before);
    assert_eq!(audit(&app, &ada, "acme").await.len(), head, "nothing audited");
    app.stop().await;
}

async fn nobody_gains_through_apply_what_the_endpoints_would_refuse_them(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let ada = app.bootstrap("acme", "ada@acme.example").await;
    let (_, eng) = member(&app, &ada, "eng@acme.example", Some("Engineers")).await;
    let (aud_id, aud) = member(&app, &ada, "aud@acme.example", None).await;
    let p = ok(&app, Method::POST, "/v1/project", &ada, json!({"name": "p"})).await;
    let doc = export(&app, &ada, "acme").await;
    // An Engineer reads neither the whole organization nor its grants.
    for path in ["/v1/config/export?org_name=acme"] {
        let (s, e) = app.get(path, &eng).await;
        assert_eq!((s, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{e}");
    }
    assert_eq!(plan(&app, &eng, "acme", &doc).await.0, StatusCode::FORBIDDEN);
    let mut escalate = doc.clone();
    escalate["grants"]
        .as_array_mut()
        .expect("grants")
        .push(json!({"on": "organization", "user": "eng@acme.example", "role": "Owner"}));
    escalate["members"] = json!(["ada@acme.example", "aud@acme.example", "eng@acme.example"]);
    assert_eq!(apply(&app, &eng, "acme", &escalate).await.0, StatusCode::FORBIDDEN);
    // An auditor reads everything (read and read_acls on the organization) and may
    // manage grants on project p only.
    for (object_type, object_id, permission) in [
        ("organization", id(&app.get("/v1/organization", &ada).await.1["objects"][0]), "read"),
        ("organization", id(&app.get("/v1/organization", &ada).await.1["objects"][0]), "read_acls"),
        ("project", id(&p), "create_acls"),
        ("project", id(&p), "delete_acls"),
    ] {
        ok(
            &app,
            Method::POST,
            "/v1/acl",
            &ada,
            json!({"object_type": object_type, "object_id": object_id, "user_id": aud_id, "permission": permission}),
        )
        .await;
    }
    let doc = export(&app, &aud, "acme").await;
    let mut own = doc.clone();
    own["grants"]
        .as_array_mut()
        .expect("grants")
        .push(json!({"on": "organization", "user": "aud@acme.example", "role": "Owner"}));
    let (s, pl) = plan(&app, &aud, "acme", &own).await;
    assert_eq!(s, StatusCode::OK, "{pl}");
    assert!(pl["refusals"].to_string().contains("create_acls"), "the plan says why: {pl}");
    let (s, e) = apply(&app, &aud, "acme", &own).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{e}");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("user aud@acme.example: role Owner on organization")),
        "names the entry: {e}"
    );
    assert_eq!(export(&app, &ada, "acme").await, doc, "nothing changed");
    // A grant on p is the auditor's to make…
    let mut on_p = doc.clone();
    on_p["grants"]
        .as_array_mut()
        .expect("grants")
        .push(json!({"on": "project/p", "user": "eng@acme.example", "permission": "update"}));
    let (s, v) = apply(&app, &aud, "acme", &on_p).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // …but with strict delegation on, only what the auditor holds there itself.
    let org = id(&app.get("/v1/organization", &ada).await.1["objects"][0]);
    ok(&app, Method::PATCH, &format!("/v1/organization/{org}"), &ada, json!({"strict_delegation": true})).await;
    let mut strict = export(&app, &aud, "acme").await;
    strict["grants"]
        .as_array_mut()
        .expect("grants")
        .push(json!({"on": "project/p", "user": "eng@acme.example", "permission": "delete"}));
    let (s, e) = apply(&app, &aud, "acme", &strict).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("strict delegation")), "{e}");
    let mut held = export(&app, &aud, "acme").await;
    held["grants"]
        .as_array_mut()
        .expect("grants")
        .push(json!({"on": "project/p", "user": "eng@acme.example", "permission": "create_acls"}));
    assert_eq!(apply(&app, &aud, "acme", &held).await.0, StatusCode::OK, "what the grantor holds it may grant");
    // Turning strict delegation off in the same document does not lift it, even for
    // one who may change the settings.
    let settings = json!({"object_type": "organization", "object_id": org, "user_id": aud_id, "permission": "update", "restrict_object_type": "organization"});
    ok(&app, Method::POST, "/v1/acl", &ada, settings).await;
    let mut off = export(&app, &aud, "acme").await;
    off["settings"]["strict_delegation"] = json!(false);
    off["grants"]
        .as_array_mut()
        .expect("grants")
        .push(json!({"on": "project/p", "user": "eng@acme.example", "permission": "delete"}));
    let (s, e) = apply(&app, &aud, "acme", &off).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("strict delegation")), "{e}");
    // A project made by the apply is reachable only through what already reaches new projects.
    let mut newp = export(&app, &aud, "acme").await;
    newp["projects"].as_array_mut().expect("projects").push(json!({"name": "q"}));
    let (s, e) = apply(&app, &aud, "acme", &newp).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "creating a project takes create on the organization's projects: {e}");
    let (s, e) = apply(&app, &ada, "other", &doc).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "an organization one does not belong to: {e}");
    app.stop().await;
}

async fn a_bad_document_answers_400_naming_the_entry_and_changes_nothing(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let ada = app.bootstrap("acme", "ada@acme.example").await;
    ok(&app, Method::POST, "/v1/project", &ada, json!({"name": "p"})).await;
    let doc = export(&app, &ada, "acme").await;
    let head = audit(&app, &ada, "acme").await.len();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        f(&mut d);
        d
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(&|d| d["objects"] = json!([{"kind": "webhook", "on": "organization", "name": "w"}])),
            "invalid_body",
            "unknown kind `webhook`",
        ),
        (
            with(&|d| {
                d["objects"] =
                    json!([{"kind": "project_tag", "on": "project/p", "name": "t", "data": {"colour": "red"}}])
            }),
            "invalid_body",
            "unknown field `data.colour`",
        ),
        (
            with(&|d| d["objects"] = json!([{"kind": "project_tag", "on": "organization", "name": "t"}])),
            "invalid_body",
            "a project_tag is set on one of: project",
        ),
        (with(&|d| d["groups"][0]["userz"] = json!([])), "invalid_body", "groups[0]"),
        (
            with(&|d| {
                d["grants"]
                    .as_array_mut()
                    .expect("g")
                    .push(json!({"on": "project/p", "user": "nobody@acme.example", "permission": "read"}))
            }),
            "invalid_body",
            "user `nobody@acme.example` is not listed in `members`",
        ),
        (
            with(&|d| {
                d["grants"]
                    .as_array_mut()
                    .expect("g")
                    .push(json!({"on": "project/nope", "group": "Owners", "permission": "read"}))
            }),
            "invalid_body",
            "project `nope` is not in the document",
        ),
        (
            with(&|d| {
                d["grants"].as_array_mut().expect("g").push(
                    json!({"on": "project/p", "group": "Owners", "user": "ada@acme.example", "permission": "read"}),
                )
            }),
            "invalid_body",
            "exactly one of `user`, `service_account` and `group`",
        ),
        (
            with(&|d| {
                d["grants"]
                    .as_array_mut()
                    .expect("g")
                    .push(json!({"on": "project/p", "group": "Owners", "permission": "reed"}))
            }),
            "invalid_body",
            "reed",
        ),
        (
            with(&|d| {
                d["grants"]
                    .as_array_mut()
                    .expect("g")
                    .push(json!({"on": "galaxy/far", "group": "Owners", "permission": "read"}))
            }),
            "invalid_body",
            "galaxy",
        ),
        (
            with(&|d| {
                d["grants"].as_array_mut().expect("g").push(json!({"on": "project/p", "group": "Owners", "permission": "read", "expires_at": "2001-01-01T00:00:00Z"}))
            }),
            "invalid_body",
            "not in the future",
        ),
        (with(&|d| d["roles"] = json!([{"name": "Owner"}])), "invalid_body", "system role"),
        (with(&|d| d["roles"] = json!([{"name": "R", "permissions": ["read:galaxy"]}])), "invalid_body", "role `R`"),
        (
            with(&|d| d["groups"].as_array_mut().expect("g").push(json!({"name": "Owners"}))),
            "invalid_body",
            "group `Owners`: listed twice",
        ),
        (with(&|d| d["version"] = json!(2)), "invalid_body", "`version` must be 1"),
    ];
    for (d, code, says) in cases {
        for (what, (s, e)) in
            [("plan", plan(&app, &ada, "acme", &d).await), ("apply", apply(&app, &ada, "acme", &d).await)]
        {
            assert_eq!((s, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{what} {says}: {e}");
            assert!(e["message"].as_str().is_some_and(|m| m.contains(says)), "{what}: `{says}` not in {e}");
        }
    }
    // A person who is not a member: listed as a refusal by the plan, refused by apply.
    let mut d = doc.clone();
    d["members"].as_array_mut().expect("members").push(json!("carol@acme.example"));
    entry(&mut d, "groups", "Viewers")["users"] = json!(["carol@acme.example"]);
    let (s, p) = plan(&app, &ada, "acme", &d).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["refusals"][0]["kind"], "member", "{p}");
    assert!(p["refusals"][0]["reason"].as_str().is_some_and(|r| r.contains("neither invites")), "{p}");
    let (s, e) = apply(&app, &ada, "acme", &d).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("member `carol@acme.example`")), "{e}");
    // An experiment that does not exist is not created.
    let mut d = doc.clone();
    d["grants"]
        .as_array_mut()
        .expect("g")
        .push(json!({"on": "project/p/experiment/nope", "group": "Owners", "permission": "read"}));
    let (s, p) = plan(&app, &ada, "acme", &d).await;
    assert_eq!(s, StatusCode::OK);
    assert!(p["refusals"].to_string().contains("does not create experiments"), "{p}");
    assert_eq!(apply(&app, &ada, "acme", &d).await.0, StatusCode::BAD_REQUEST);
    // TOML errors name the line.
    let resp = app
        .http
        .post(format!("{}/v1/config/apply", app.base))
        .bearer_auth(&ada)
        .header("content-type", "application/toml")
        .body("version = 1\norganization = \"acme\"\n[[groups]]\nname = 5\n")
        .send()
        .await
        .expect("apply");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let e: Value = resp.json().await.expect("json");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("line 4")), "{e}");
    assert_eq!(export(&app, &ada, "acme").await, doc, "nothing changed");
    assert_eq!(audit(&app, &ada, "acme").await.len(), head, "nothing audited");
    app.stop().await;
}

async fn secret_values_never_appear_in_an_export_and_apply_never_touches_them(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let ada = app.bootstrap("acme", "ada@acme.example").await;
    let p = ok(&app, Method::POST, "/v1/project", &ada, json!({"name": "p"})).await;
    let secret = "sk-live-THIS-IS-THE-SECRET-0123456789abcdef";
    let env = ok(
        &app,
        Method::POST,
        "/v1/env_var",
        &ada,
        json!({"object_type": "project", "object_id": id(&p), "name": "OPENAI_API_KEY",
        "value": secret, "secret_type": "openai", "metadata": {"note": "rotated monthly"}}),
    )
    .await;
    let preview = env["preview_secret"].as_str().expect("preview").to_owned();
    assert!(!preview.is_empty());
    let doc = export(&app, &ada, "acme").await;
    let toml = app
        .http
        .get(format!("{}/v1/config/export?org_name=acme&format=toml", app.base))
        .bearer_auth(&ada)
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("text");
    for text in [doc.to_string(), toml.clone()] {
        assert!(!text.contains(secret) && !text.contains(&preview) && !text.contains("preview"), "{text}");
        assert!(text.contains("OPENAI_API_KEY") && text.contains("openai"), "{text}");
    }
    let obj = &doc["objects"][0];
    assert_eq!(
        obj,
        &json!({"kind": "env_var", "on": "project/p", "name": "OPENAI_API_KEY", "data": {"secret_type": "openai"}})
    );
    // Changing its type keeps its value; a new one has none; removing one removes it.
    let mut d = doc.clone();
    d["objects"][0]["data"]["secret_type"] = json!("anthropic");
    d["objects"]
        .as_array_mut()
        .expect("objects")
        .push(json!({"kind": "env_var", "on": "organization", "name": "NEW_KEY"}));
    let (s, v) = apply(&app, &ada, "acme", &d).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, got) = app.get(&format!("/v1/env_var/{}", id(&env)), &ada).await;
    assert_eq!(
        (got["secret_type"].as_str(), got["preview_secret"].as_str()),
        (Some("anthropic"), Some(preview.as_str())),
        "{got}"
    );
    assert_eq!(got["secret_updated_at"], env["secret_updated_at"]);
    assert_eq!(got["metadata"], json!({"note": "rotated monthly"}), "what a document does not hold stays");
    let (_, list) = app.get("/v1/env_var?env_var_name=NEW_KEY", &ada).await;
    assert_eq!(list["objects"][0]["preview_secret"], Value::Null, "{list}");
    let (_, log) = app.get("/v1/audit_log?org_name=acme&event_type=env_var.", &ada).await;
    assert!(!log.to_string().contains(secret) && !log.to_string().contains(&preview), "{log}");
    assert_eq!(apply(&app, &ada, "acme", &doc).await.0, StatusCode::OK);
    let (_, list) = app.get("/v1/env_var?env_var_name=NEW_KEY", &ada).await;
    assert_eq!(list["objects"], json!([]));
    app.stop().await;
}

async fn grants_expire_and_plans_are_guarded_by_their_hash(b: Backend) {
    let Some((app, clock)) = TestApp::spawn_with_clock(b).await else { return };
    let ada = app.bootstrap("acme", "ada@acme.example").await;
    let (bob, _) = member(&app, &ada, "bob@acme.example", None).await;
    let p = ok(&app, Method::POST, "/v1/project", &ada, json!({"name": "p"})).await;
    let soon = castellan_api_types::format_time(app.state.now() + 3_600_000_000);
    ok(&app, Method::POST, "/v1/acl", &ada, json!({"object_type": "project", "object_id": id(&p), "user_id": bob, "permission": "read", "expires_at": soon})).await;
    let doc = export(&app, &ada, "acme").await;
    assert!(doc["grants"].to_string().contains(&soon), "{doc}");
    // A new expiry replaces the grant: the old row goes, a new one comes.
    let mut later = doc.clone();
    let g = later["grants"]
        .as_array_mut()
        .expect("grants")
        .iter_mut()
        .find(|g| g["user"] == "bob@acme.example")
        .expect("grant");
    g["expires_at"] = json!("2099-01-01T00:00:00Z");
    let (_, p1) = plan(&app, &ada, "acme", &later).await;
    let name = "user bob@acme.example: read on project/p";
    assert_eq!(
        changes(&p1),
        vec![("remove".into(), "grant".into(), name.into()), ("add".into(), "grant".into(), name.into())]
    );
    // The hash guards apply: a stale one changes nothing.
    let (s, e) = app.post("/v1/config/apply?org_name=acme&expected_plan_hash=0000", &ada, later.clone()).await;
    assert_eq!((s, e["code"].as_str()), (StatusCode::CONFLICT, Some("plan_changed")), "{e}");
    let hash = p1["plan_hash"].as_str().expect("hash");
    let (s, v) =
        app.post(&format!("/v1/config/apply?org_name=acme&expected_plan_hash={hash}"), &ada, later.clone()).await;
    assert_eq!((s, v["plan_hash"].as_str()), (StatusCode::OK, Some(hash)), "{v}");
    // An expired grant is no longer exported, and one of the same identity replaces it.
    clock.fetch_add(200 * 365 * 24 * 3_600_000_000, std::sync::atomic::Ordering::SeqCst);
    let now_doc = export(&app, &ada, "acme").await;
    assert!(!now_doc["grants"].to_string().contains("bob@acme.example"), "{now_doc}");
    let mut again = now_doc.clone();
    again["grants"]
        .as_array_mut()
        .expect("grants")
        .push(json!({"on": "project/p", "user": "bob@acme.example", "permission": "read"}));
    let (_, p2) = plan(&app, &ada, "acme", &again).await;
    assert_eq!(
        changes(&p2),
        vec![("remove".into(), "grant".into(), name.into()), ("add".into(), "grant".into(), name.into())],
        "{p2}"
    );
    assert_eq!(apply(&app, &ada, "acme", &again).await.0, StatusCode::OK);
    assert_eq!(plan(&app, &ada, "acme", &again).await.1["changes"], json!([]));
    app.stop().await;
}
