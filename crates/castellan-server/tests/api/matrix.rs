//! The authorization matrix: every endpoint, called as each kind of principal, must
//! answer exactly the expected status (on SQLite and PostgreSQL).
//!
//! Principals, in column order: the org's owner; an Engineer; a Viewer; a member of a
//! custom group holding read+update on project P1 only; a member holding a single
//! grant (read on project P2); the owner of another org; no credential; a revoked key.

use crate::common;

use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

on_both_backends!(every_endpoint_answers_each_principal_exactly_as_designed);

const NAMES: [&str; 8] = ["owner", "engineer", "viewer", "custom", "single", "other", "anonymous", "revoked"];

struct World {
    app: TestApp,
    keys: [Option<String>; 8],
    users: [String; 6],
    org: String,
    p1: String,
    p2: String,
    engineers: String,
    owner_key_id: String,
    owner_role: String,
    /// Objects inside the projects: experiments `e1` in P1 and `e2` in P2 (after
    /// `e2a`, its default base), dataset `d2` in P2, prompt `p` in P1.
    inside: [(&'static str, String); 4],
    n: AtomicUsize,
}

impl World {
    fn next(&self) -> usize {
        self.n.fetch_add(1, Ordering::SeqCst)
    }

    async fn call(&self, who: usize, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (s, _, v) = self.app.send(method, path, self.keys[who].as_deref(), body, &[]).await;
        (s, v)
    }

    async fn owner(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(0, method.clone(), path, body).await;
        assert_eq!(s, StatusCode::OK, "fixture {method} {path}: {v}");
        v
    }

    /// Replaces `{…}` placeholders, making fresh objects where the row needs one.
    async fn fill(&self, text: &str) -> String {
        let mut t = text
            .replace("{ORG}", &self.org)
            .replace("{P1}", &self.p1)
            .replace("{P2}", &self.p2)
            .replace("{ENGINEERS}", &self.engineers)
            .replace("{OWNER_KEY}", &self.owner_key_id)
            .replace("{OWNER_ROLE}", &self.owner_role)
            .replace("{VIEWER}", &self.users[2]);
        for (slot, id) in &self.inside {
            t = t.replace(slot, id);
        }
        if t.contains("{N}") {
            t = t.replace("{N}", &self.next().to_string());
        }
        if t.contains("{SCRATCH}") {
            let p = self
                .owner(Method::POST, "/v1/project", Some(json!({"name": format!("scratch-{}", self.next())})))
                .await;
            t = t.replace("{SCRATCH}", p["id"].as_str().expect("id"));
        }
        if t.contains("{FRESH_INVITATION}") {
            let inv = json!({"emails": [format!("pending-{}@acme.example", self.next())]});
            let out = self
                .owner(
                    Method::PATCH,
                    "/v1/organization/members",
                    Some(json!({"invite_users": inv, "org_name": "acme"})),
                )
                .await;
            t = t.replace("{FRESH_INVITATION}", out["invitations"][0]["id"].as_str().expect("invitation id"));
        }
        if t.contains("{FRESH_GROUP}") {
            let g = self.owner(Method::POST, "/v1/group", Some(json!({"name": format!("g-{}", self.next())}))).await;
            t = t.replace("{FRESH_GROUP}", g["id"].as_str().expect("id"));
        }
        if t.contains("{FRESH_ROLE}") {
            let r = self.owner(Method::POST, "/v1/role", Some(json!({"name": format!("r-{}", self.next())}))).await;
            t = t.replace("{FRESH_ROLE}", r["id"].as_str().expect("id"));
        }
        if t.contains("{FRESH_ACL}") {
            let g = self.owner(Method::POST, "/v1/group", Some(json!({"name": format!("ag-{}", self.next())}))).await;
            let a = self
                .owner(Method::POST, "/v1/acl", Some(json!({"object_type": "project", "object_id": self.p1, "group_id": g["id"], "permission": "read"})))
                .await;
            t = t.replace("{FRESH_ACL}", a["id"].as_str().expect("id"));
        }
        for (slot, object_type, object_id) in [
            ("{FRESH_ENV_P1}", "project", &self.p1),
            ("{FRESH_ENV_P2}", "project", &self.p2),
            ("{FRESH_ENV_ORG}", "organization", &self.org),
        ] {
            if t.contains(slot) {
                let name = format!("ENV_{}", self.next());
                let body = json!({"object_type": object_type, "object_id": object_id, "name": name, "value": "v"});
                let e = self.owner(Method::POST, "/v1/env_var", Some(body)).await;
                t = t.replace(slot, e["id"].as_str().expect("id"));
            }
        }
        if t.contains("{FRESH_TAG_P1}") {
            let body = json!({"project_id": self.p1, "name": format!("tag-{}", self.next())});
            let tag = self.owner(Method::POST, "/v1/project_tag", Some(body)).await;
            t = t.replace("{FRESH_TAG_P1}", tag["id"].as_str().expect("id"));
        }
        // Administration objects made by the owner: (slot, path, body).
        let n = self.next();
        let fresh: [(&str, &str, Value); 11] = [
            (
                "{FRESH_ALERT_P1}",
                "/v1/project_automation",
                json!({"project_id": self.p1, "name": format!("al{n}"), "config": {"event_type": "logs", "btql_filter": "metadata.level = 'never-logged'",
                       "interval_seconds": 300, "action": {"type": "webhook", "url": "https://hooks.example/never-called"}}}),
            ),
            (
                "{FRESH_AUTOMATION_P1}",
                "/v1/project_automation",
                json!({"project_id": self.p1, "name": format!("au{n}"), "config": {"event_type": "retention", "object_type": "project_logs", "retention_days": 3}}),
            ),
            ("{FRESH_AI_SECRET}", "/v1/ai_secret", json!({"name": format!("S{n}"), "secret": "v", "org_name": "acme"})),
            (
                "{FRESH_SCORE_P1}",
                "/v1/project_score",
                json!({"project_id": self.p1, "name": format!("s{n}"), "score_type": "slider"}),
            ),
            (
                "{FRESH_IFRAME_P1}",
                "/v1/span_iframe",
                json!({"project_id": self.p1, "name": format!("f{n}"), "url": "https://a.example"}),
            ),
            (
                "{FRESH_VIEW_P1}",
                "/v1/view",
                json!({"object_type": "project", "object_id": self.p1, "view_type": "logs", "name": format!("v{n}")}),
            ),
            ("{FRESH_AGENT_P1}", "/v1/agent", json!({"project_id": self.p1, "name": format!("a{n}")})),
            (
                "{FRESH_MCP_P1}",
                "/v1/mcp_server",
                json!({"project_id": self.p1, "name": format!("m{n}"), "url": "https://m.example"}),
            ),
            (
                "{FRESH_ENV}",
                "/environment",
                json!({"name": format!("e{n}"), "slug": format!("e{n}"), "org_name": "acme"}),
            ),
            ("{FRESH_DATASET_P2}", "/v1/dataset", json!({"project_id": self.p2, "name": format!("d{n}")})),
            (
                "{FRESH_SIMUSER_P1}",
                &format!("/v1/project/{}/simulated_user", self.p1),
                json!({"name": format!("u{n}"), "instructions": "i", "voice_config": {"voice_id": "v"}}),
            ),
        ];
        for (slot, path, body) in fresh {
            if t.contains(slot) {
                let made = self.owner(Method::POST, path, Some(body)).await;
                t = t.replace(slot, made["id"].as_str().expect("id"));
            }
        }
        if t.contains("{FRESH_SNAPSHOT_P1}") {
            let d = self
                .owner(Method::POST, "/v1/dataset", Some(json!({"project_id": self.p1, "name": format!("sd{n}")})))
                .await;
            let body = json!({"dataset_id": d["id"], "name": format!("snap{n}"), "xact_id": "1000192656880881099"});
            let snap = self.owner(Method::POST, "/v1/dataset_snapshot", Some(body)).await;
            t = t.replace("{FRESH_SNAPSHOT_P1}", snap["id"].as_str().expect("id"));
        }
        if t.contains("{FRESH_ASSIGNED_P2}") {
            let d = self
                .owner(Method::POST, "/v1/dataset", Some(json!({"project_id": self.p2, "name": format!("ad{n}")})))
                .await;
            let slug = format!("env{n}");
            self.owner(Method::POST, "/environment", Some(json!({"name": slug, "slug": slug, "org_name": "acme"})))
                .await;
            let path = format!("/environment-object/dataset/{}/{slug}", d["id"].as_str().expect("id"));
            self.owner(Method::PUT, &path, Some(json!({"object_version": "1000192656880881099"}))).await;
            t = t.replace("{FRESH_ASSIGNED_P2}", &path);
        }
        if t.contains("{FRESH_PG}") {
            let pg = self
                .owner(Method::POST, "/v1/project_group", Some(json!({"name": format!("pg-{}", self.next())})))
                .await;
            t = t.replace("{FRESH_PG}", pg["id"].as_str().expect("id"));
        }
        if t.contains("{FRESH_SCIM_TOKEN}") {
            let body = json!({"name": format!("idp-{}", self.next()), "org_name": "acme"});
            let k = self.owner(Method::POST, "/v1/scim_token", Some(body)).await;
            t = t.replace("{FRESH_SCIM_TOKEN}", k["id"].as_str().expect("id"));
        }
        if t.contains("{FRESH_SSO}") {
            let body = json!({"name": format!("idp-{}", self.next()), "org_name": "acme",
                "issuer": "https://idp.example", "client_id": "c", "client_secret": "s"});
            let c = self.owner(Method::POST, "/v1/sso_config", Some(body)).await;
            t = t.replace("{FRESH_SSO}", c["id"].as_str().expect("id"));
        }
        if t.contains("{FRESH_ENG_KEY}") {
            let (s, k) = self.call(1, Method::POST, "/v1/api_key", Some(json!({"name": "eng"}))).await;
            assert_eq!(s, StatusCode::OK);
            t = t.replace("{FRESH_ENG_KEY}", k["id"].as_str().expect("id"));
        }
        if t.contains("{EXPORT}") {
            let doc = self.owner(Method::GET, "/v1/config/export?org_name=acme", None).await;
            t = t.replace("{EXPORT}", &doc.to_string());
        }
        if t.contains("{FRESH_MEMBER}") {
            let email = format!("m{}@acme.example", self.next());
            invite_and_accept(&self.app, self.keys[0].as_deref().expect("owner"), &email, None).await;
            t = t.replace("{FRESH_MEMBER}", &email);
        }
        t
    }
}

async fn invite_and_accept(app: &TestApp, owner: &str, email: &str, group: Option<&str>) -> (String, String) {
    let mut inv = json!({"emails": [email]});
    if let Some(g) = group {
        inv["group_name"] = json!(g);
    }
    let (s, _, out) =
        app.send(Method::PATCH, "/v1/organization/members", Some(owner), Some(json!({"invite_users": inv})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let token = out["invitations"][0]["token"].as_str().expect("token").to_owned();
    let (s, _, acc) = app.send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": token})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    (acc["user"]["id"].as_str().expect("id").to_owned(), acc["api_key"].as_str().expect("key").to_owned())
}

async fn world(app: TestApp) -> World {
    let owner = app.bootstrap("acme", "owner@acme.example").await;
    let other = app.bootstrap("zeta", "owner@zeta.example").await;
    let get = |path: &'static str, key: String| {
        let app = &app;
        async move { app.get(path, &key).await.1 }
    };
    let org = get("/v1/organization", owner.clone()).await["objects"][0]["id"].as_str().expect("org").to_owned();
    let owner_id = app.post("/api/self/me", &owner, json!({})).await.1["id"].as_str().expect("me").to_owned();
    let other_id = app.post("/api/self/me", &other, json!({})).await.1["id"].as_str().expect("me").to_owned();
    let (eng_id, eng) = invite_and_accept(&app, &owner, "eng@acme.example", Some("Engineers")).await;
    let (viewer_id, viewer) = invite_and_accept(&app, &owner, "viewer@acme.example", Some("Viewers")).await;
    let (custom_id, custom) = invite_and_accept(&app, &owner, "custom@acme.example", None).await;
    let (single_id, single) = invite_and_accept(&app, &owner, "single@acme.example", None).await;
    let p1 = app.post("/v1/project", &owner, json!({"name": "p1"})).await.1["id"].as_str().expect("p1").to_owned();
    let p2 = app.post("/v1/project", &owner, json!({"name": "p2"})).await.1["id"].as_str().expect("p2").to_owned();
    let (_, g) = app.post("/v1/group", &owner, json!({"name": "p1-team", "member_users": [custom_id]})).await;
    for perm in ["read", "update"] {
        let (s, v) = app
            .post(
                "/v1/acl",
                &owner,
                json!({"object_type": "project", "object_id": p1, "group_id": g["id"], "permission": perm}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = app
        .post(
            "/v1/acl",
            &owner,
            json!({"object_type": "project", "object_id": p2, "user_id": single_id, "permission": "read"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let engineers =
        app.get("/v1/group?group_name=Engineers", &owner).await.1["objects"][0]["id"].as_str().expect("eng").to_owned();
    let owner_key_id = app.get("/v1/api_key?api_key_name=bootstrap", &owner).await.1["objects"][0]["id"]
        .as_str()
        .expect("key")
        .to_owned();
    let owner_role =
        app.get("/v1/role?role_name=Owner", &owner).await.1["objects"][0]["id"].as_str().expect("role").to_owned();
    let made = |path: &'static str, body: Value| {
        let (app, owner) = (&app, owner.clone());
        async move {
            let (s, v) = app.post(path, &owner, body).await;
            assert_eq!(s, StatusCode::OK, "{path}: {v}");
            v["id"].as_str().expect("id").to_owned()
        }
    };
    let exp_p1 = made("/v1/experiment", json!({"project_id": p1, "name": "e1"})).await;
    made("/v1/experiment", json!({"project_id": p2, "name": "e2a"})).await;
    let exp_p2 = made("/v1/experiment", json!({"project_id": p2, "name": "e2"})).await;
    let ds_p2 = made("/v1/dataset", json!({"project_id": p2, "name": "d2"})).await;
    let prompt = json!({"prompt": {"type": "completion", "content": "hi"}});
    let prompt_p1 =
        made("/v1/prompt", json!({"project_id": p1, "name": "P", "slug": "p", "prompt_data": prompt})).await;
    let (_, k) = app.post("/v1/api_key", &owner, json!({"name": "to-revoke"})).await;
    let revoked = k["key"].as_str().expect("key").to_owned();
    app.delete(&format!("/v1/api_key/{}", k["id"].as_str().expect("id")), &owner).await;
    World {
        app,
        keys: [Some(owner), Some(eng), Some(viewer), Some(custom), Some(single), Some(other), None, Some(revoked)],
        users: [owner_id, eng_id, viewer_id, custom_id, single_id, other_id],
        org,
        p1,
        p2,
        engineers,
        owner_key_id,
        owner_role,
        inside: [("{EXP_P1}", exp_p1), ("{EXP_P2}", exp_p2), ("{DS_P2}", ds_p2), ("{PROMPT_P1}", prompt_p1)],
        n: AtomicUsize::new(0),
    }
}

const U: u16 = 401;

async fn every_endpoint_answers_each_principal_exactly_as_designed(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let w = world(app).await;
    // (method, path, body, expected status per principal)
    #[rustfmt::skip]
    let rows: Vec<(Method, &str, Option<&str>, [u16; 8])> = vec![
        (Method::GET, "/v1", None, [200, 200, 200, 200, 200, 200, 200, 200]),
        (Method::POST, "/api/self/me", Some("{}"), [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/api/apikey/login", Some("{}"), [200, 200, 200, 200, 200, 200, U, U]),
        (Method::GET, "/v1/organization", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::GET, "/v1/organization/{ORG}", None, [200, 200, 200, 200, 200, 404, U, U]),
        (Method::PATCH, "/v1/organization/{ORG}", Some(r#"{"api_url": "https://api.example"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/user", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::GET, "/v1/user/{VIEWER}", None, [200, 200, 200, 404, 404, 404, U, U]),
        (Method::GET, "/v1/project", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/project", Some(r#"{"name": "new-{N}", "org_name": "acme"}"#), [200, 200, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/project/{P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/project/{P2}", None, [200, 200, 200, 404, 200, 404, U, U]),
        (Method::PATCH, "/v1/project/{P1}", Some(r#"{"description": "d{N}"}"#), [200, 200, 403, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/project/{P2}", Some(r#"{"description": "d{N}"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::DELETE, "/v1/project/{SCRATCH}", None, [200, 200, 403, 404, 404, 404, U, U]),
        (Method::GET, "/v1/api_key", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/api_key", Some(r#"{"name": "k{N}", "org_name": "acme"}"#), [200, 200, 200, 200, 200, 404, U, U]),
        (Method::GET, "/v1/api_key/{OWNER_KEY}", None, [200, 404, 404, 404, 404, 404, U, U]),
        (Method::DELETE, "/v1/api_key/{FRESH_ENG_KEY}", None, [200, 200, 404, 404, 404, 404, U, U]),
        (Method::GET, "/v1/scim_token", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::GET, "/v1/scim_token?org_name=acme", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::POST, "/v1/scim_token", Some(r#"{"name": "idp-{N}", "org_name": "acme"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/scim_token/{FRESH_SCIM_TOKEN}", None, [200, 404, 404, 404, 404, 404, U, U]),
        (Method::DELETE, "/v1/scim_token/{FRESH_SCIM_TOKEN}", None, [200, 404, 404, 404, 404, 404, U, U]),
        (Method::GET, "/v1/sso_config", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::GET, "/v1/sso_config?org_name=acme", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::POST, "/v1/sso_config", Some(r#"{"name": "idp-{N}", "org_name": "acme", "issuer": "https://idp.example", "client_id": "c"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/sso_config/{FRESH_SSO}", None, [200, 404, 404, 404, 404, 404, U, U]),
        (Method::PATCH, "/v1/sso_config/{FRESH_SSO}", Some(r#"{"jit": true}"#), [200, 404, 404, 404, 404, 404, U, U]),
        (Method::DELETE, "/v1/sso_config/{FRESH_SSO}", None, [200, 404, 404, 404, 404, 404, U, U]),
        // The sign-in flow answers every caller alike: credentials neither help nor leak.
        (Method::GET, "/auth/sso/start?org=no-such-org", None, [404, 404, 404, 404, 404, 404, 404, 404]),
        (Method::GET, "/auth/sso/start", None, [400, 400, 400, 400, 400, 400, 400, 400]),
        (Method::GET, "/auth/sso/callback?code=c&state=s", None, [401, 401, 401, 401, 401, 401, 401, 401]),
        (Method::POST, "/auth/sso/cli/token", Some(r#"{"code": "c{N}", "verifier": "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"}"#), [401, 401, 401, 401, 401, 401, 401, 401]),
        // API keys never authorize SCIM (only an org's SCIM tokens do).
        (Method::GET, "/scim/v2/Users", None, [U, U, U, U, U, U, U, U]),
        (Method::GET, "/scim/v2/ServiceProviderConfig", None, [U, U, U, U, U, U, U, U]),
        (Method::GET, "/v1/acl?object_type=project&object_id={P1}", None, [200, 403, 403, 403, 404, 404, U, U]),
        (Method::POST, "/v1/acl", Some(r#"{"object_type": "project", "object_id": "{SCRATCH}", "user_id": "{VIEWER}", "permission": "read"}"#), [200, 403, 403, 404, 404, 404, U, U]),
        (Method::GET, "/v1/acl/{FRESH_ACL}", None, [200, 403, 403, 403, 404, 404, U, U]),
        (Method::DELETE, "/v1/acl/{FRESH_ACL}", None, [200, 403, 403, 403, 404, 404, U, U]),
        (Method::POST, "/v1/acl/batch_update", Some(r#"{"add_acls": [{"object_type": "project", "object_id": "{P1}", "user_id": "{VIEWER}", "permission": "update"}]}"#), [200, 403, 403, 403, 404, 404, U, U]),
        (Method::GET, "/v1/acl/list_org?org_name=acme", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/acl/explain?object_type=project&object_id={P1}&permission=read", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/acl/who_can?object_type=project&object_id={P1}&permission=read", None, [200, 403, 403, 403, 404, 404, U, U]),
        (Method::GET, "/v1/acl/what_can?object_type=project&permission=read&org_name=acme", None, [200, 200, 200, 403, 403, 404, U, U]),
        (Method::GET, "/v1/group", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/group", Some(r#"{"name": "new-{N}", "org_name": "acme"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/group/{ENGINEERS}", None, [200, 200, 200, 404, 404, 404, U, U]),
        (Method::PATCH, "/v1/group/{FRESH_GROUP}", Some(r#"{"description": "d"}"#), [200, 403, 403, 404, 404, 404, U, U]),
        (Method::DELETE, "/v1/group/{FRESH_GROUP}", None, [200, 403, 403, 404, 404, 404, U, U]),
        (Method::GET, "/v1/role", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/role", Some(r#"{"name": "new-{N}", "org_name": "acme"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/role/{FRESH_ROLE}", None, [200, 200, 200, 404, 404, 404, U, U]),
        (Method::PATCH, "/v1/role/{FRESH_ROLE}", Some(r#"{"description": "d"}"#), [200, 403, 403, 404, 404, 404, U, U]),
        (Method::DELETE, "/v1/role/{FRESH_ROLE}", None, [200, 403, 403, 404, 404, 404, U, U]),
        (Method::GET, "/v1/role/{OWNER_ROLE}", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::PATCH, "/v1/organization/members", Some(r#"{"invite_users": {"emails": ["new{N}@acme.example"]}, "org_name": "acme"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::PATCH, "/v1/organization/members", Some(r#"{"remove_users": {"emails": ["{FRESH_MEMBER}"]}, "org_name": "acme"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/organization/invitations?org_name=acme", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::DELETE, "/v1/organization/invitations/{FRESH_INVITATION}?org_name=acme", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/env_var", None, [200, 200, 200, 200, 200, 200, U, U]),
        // (The viewer holds `update` on P1 since the batch_update row above.)
        (Method::POST, "/v1/env_var", Some(r#"{"object_type": "project", "object_id": "{P1}", "name": "K{N}", "value": "v"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PUT, "/v1/env_var", Some(r#"{"object_type": "project", "object_id": "{P2}", "name": "K{N}", "value": "v"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::POST, "/v1/env_var", Some(r#"{"object_type": "organization", "object_id": "{ORG}", "name": "K{N}", "value": "v"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/env_var/{FRESH_ENV_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/env_var/{FRESH_ENV_P1}", Some(r#"{"name": "R{N}", "value": "w"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::DELETE, "/v1/env_var/{FRESH_ENV_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/env_var/{FRESH_ENV_P2}", Some(r#"{"name": "R{N}"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::GET, "/v1/env_var/{FRESH_ENV_ORG}", None, [200, 200, 200, 403, 403, 404, U, U]),
        (Method::DELETE, "/v1/env_var/{FRESH_ENV_ORG}", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/project_tag", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/project_tag", Some(r#"{"project_id": "{P2}", "name": "t{N}"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::GET, "/v1/project_tag/{FRESH_TAG_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/project_tag/{FRESH_TAG_P1}", Some(r#"{"color": "c{N}"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::DELETE, "/v1/project_tag/{FRESH_TAG_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/project_group", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/project_group", Some(r#"{"name": "pg{N}", "org_name": "acme"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/project_group/{FRESH_PG}", None, [200, 404, 404, 404, 404, 404, U, U]),
        (Method::PATCH, "/v1/project_group/{FRESH_PG}", Some(r#"{"add_member_projects": ["{P1}"]}"#), [200, 404, 404, 404, 404, 404, U, U]),
        (Method::DELETE, "/v1/project_group/{FRESH_PG}", None, [200, 404, 404, 404, 404, 404, U, U]),
        (Method::GET, "/v1/ai_secret", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/ai_secret", Some(r#"{"name": "S{N}", "secret": "v", "org_name": "acme"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        // AI secrets: the built-in Engineers and Viewers hold nothing on them.
        (Method::GET, "/v1/ai_secret/{FRESH_AI_SECRET}", None, [200, 404, 404, 404, 404, 404, U, U]),
        (Method::PATCH, "/v1/ai_secret/{FRESH_AI_SECRET}", Some(r#"{"secret": "w{N}"}"#), [200, 404, 404, 404, 404, 404, U, U]),
        (Method::DELETE, "/v1/ai_secret/{FRESH_AI_SECRET}", None, [200, 404, 404, 404, 404, 404, U, U]),
        (Method::GET, "/v1/ai_secret/effective?project_id={P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/project_score", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/project_score", Some(r#"{"project_id": "{P2}", "name": "s{N}", "score_type": "slider"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::GET, "/v1/project_score/{FRESH_SCORE_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/project_score/{FRESH_SCORE_P1}", Some(r#"{"description": "d{N}"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/project_score/{FRESH_SCORE_P1}/runs", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::DELETE, "/v1/project_score/{FRESH_SCORE_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/span_iframe", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/span_iframe", Some(r#"{"project_id": "{P2}", "name": "f{N}", "url": "https://a.example"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::GET, "/v1/span_iframe/{FRESH_IFRAME_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/span_iframe/{FRESH_IFRAME_P1}", Some(r#"{"url": "https://b.example/{N}"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::DELETE, "/v1/span_iframe/{FRESH_IFRAME_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/view?object_type=project&object_id={P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::POST, "/v1/view", Some(r#"{"object_type": "project", "object_id": "{P2}", "view_type": "logs", "name": "v{N}"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::POST, "/v1/view", Some(r#"{"object_type": "organization", "object_id": "{ORG}", "view_type": "projects", "name": "v{N}"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/view/{FRESH_VIEW_P1}?object_type=project&object_id={P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/view/{FRESH_VIEW_P1}", Some(r#"{"object_type": "project", "object_id": "{P1}", "starred": true}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::DELETE, "/v1/view/{FRESH_VIEW_P1}", Some(r#"{"object_type": "project", "object_id": "{P1}"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/agent", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/agent", Some(r#"{"project_id": "{P2}", "name": "a{N}"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::GET, "/v1/agent/{FRESH_AGENT_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/agent/{FRESH_AGENT_P1}", Some(r#"{"description": "d{N}"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::DELETE, "/v1/agent/{FRESH_AGENT_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/mcp_server", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/mcp_server", Some(r#"{"project_id": "{P2}", "name": "m{N}", "url": "https://m.example"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::GET, "/v1/mcp_server/{FRESH_MCP_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/mcp_server/{FRESH_MCP_P1}", Some(r#"{"description": "d{N}"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::DELETE, "/v1/mcp_server/{FRESH_MCP_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/dataset_snapshot", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/dataset_snapshot", Some(r#"{"dataset_id": "{FRESH_DATASET_P2}", "name": "s{N}", "xact_id": "1"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::GET, "/v1/dataset_snapshot/{FRESH_SNAPSHOT_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/dataset_snapshot/{FRESH_SNAPSHOT_P1}", Some(r#"{"description": "d{N}"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::DELETE, "/v1/dataset_snapshot/{FRESH_SNAPSHOT_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/project/{P1}/simulated_user", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::POST, "/v1/project/{P2}/simulated_user", Some(r#"{"name": "u{N}", "instructions": "i", "voice_config": {"voice_id": "v"}}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::GET, "/v1/project/{P1}/simulated_user/{FRESH_SIMUSER_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/project/{P1}/simulated_user/{FRESH_SIMUSER_P1}", Some(r#"{"goal": "g{N}"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::DELETE, "/v1/project/{P1}/simulated_user/{FRESH_SIMUSER_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/environment", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/environment", Some(r#"{"name": "e{N}", "slug": "e{N}", "org_name": "acme"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/environment/{FRESH_ENV}", None, [200, 200, 200, 200, 200, 404, U, U]),
        (Method::PATCH, "/environment/{FRESH_ENV}", Some(r#"{"description": "d{N}"}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::DELETE, "/environment/{FRESH_ENV}", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "{FRESH_ASSIGNED_P2}", None, [200, 200, 200, 404, 200, 404, U, U]),
        (Method::PUT, "{FRESH_ASSIGNED_P2}", Some(r#"{"object_version": "1000192656880881100"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::DELETE, "{FRESH_ASSIGNED_P2}", None, [200, 200, 403, 404, 403, 404, U, U]),
        (Method::GET, "/v1/organization/api_keys", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::GET, "/v1/project_automation", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/project_automation", Some(r#"{"project_id": "{P2}", "name": "a{N}", "config": {"event_type": "retention", "object_type": "dataset", "retention_days": 7}}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::GET, "/v1/project_automation/{FRESH_AUTOMATION_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::PATCH, "/v1/project_automation/{FRESH_AUTOMATION_P1}", Some(r#"{"description": "d{N}"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::DELETE, "/v1/project_automation/{FRESH_AUTOMATION_P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/project_automation/{FRESH_AUTOMATION_P1}/runs", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/project_automation/{FRESH_AUTOMATION_P1}/preview", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::POST, "/v1/project_automation/{FRESH_AUTOMATION_P1}/run", Some("{}"), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::POST, "/v1/project_automation/{FRESH_ALERT_P1}/test", Some("{}"), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::POST, "/v1/project_automation/{FRESH_ALERT_P1}/run", Some("{}"), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/project_automation/{FRESH_ALERT_P1}/deliveries", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::GET, "/v1/org_automation", None, [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/v1/org_automation", Some(r#"{"org_id": "{ORG}", "name": "o{N}", "config": {"event_type": "retention", "object_type": "dataset", "retention_days": 7}}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::POST, "/insert-functions", Some(r#"{"functions": [{"project_id": "{P2}", "name": "f", "slug": "f{N}", "function_data": {"type": "prompt"}, "if_exists": "replace"}]}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::POST, "/btql", Some(r#"{"query": "SELECT * FROM project_logs('{P1}') WHERE metadata.n > 1 LIMIT 5"}"#), [200, 200, 200, 200, 404, 404, U, U]),
        (Method::POST, "/btql", Some(r#"{"query": {"from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]}, "args": [{"op": "literal", "value": "{P2}"}]}, "filter": {"op": "isnull", "expr": {"op": "ident", "name": ["error"]}}}}"#), [200, 200, 200, 404, 200, 404, U, U]),
        (Method::POST, "/otel/v1/traces", Some(r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "s{N}", "attributes": [{"key": "braintrust.parent", "value": {"stringValue": "project_id:{P2}"}}]}]}]}]}"#), [200, 200, 403, 404, 403, 404, U, U]),
        // Configuration as code: the whole state, with every kind above in it, exports
        // and applies back unchanged.
        (Method::GET, "/v1/config/export?org_name=acme", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::POST, "/v1/config/plan?org_name=acme", Some("{EXPORT}"), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::POST, "/v1/config/apply?org_name=acme", Some("{EXPORT}"), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/audit_log?org_name=acme", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/audit_log/chain?org_name=acme", None, [200, 403, 403, 403, 403, 404, U, U]),
        // Usage and plans: the org's account (org_account), Owners only by default.
        (Method::GET, "/v1/usage?org_name=acme", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/usage?org_id={ORG}&granularity=month", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/organization/{ORG}/plan", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::GET, "/v1/organization/{ORG}/plan/alerts", None, [200, 403, 403, 403, 403, 404, U, U]),
        (Method::PATCH, "/v1/organization/{ORG}/plan", Some(r#"{"alert_thresholds": [50, 100]}"#), [200, 403, 403, 403, 403, 404, U, U]),
        (Method::PUT, "/v1/organization/{ORG}/plan", Some("{}"), [200, 403, 403, 403, 403, 404, U, U]),
        // The app routes of the TypeScript SDK, each as its /v1 twin (the viewer and
        // the custom member hold `update` on P1 since the batch_update row above).
        (Method::POST, "/api/project/register", Some(r#"{"project_name": "p1", "org_id": "{ORG}"}"#), [200, 200, 200, 200, 403, 404, U, U]),
        (Method::POST, "/api/project/register", Some(r#"{"project_name": "reg-{N}", "org_id": "{ORG}"}"#), [200, 200, 403, 403, 403, 404, U, U]),
        (Method::GET, "/api/project?id={P1}", None, [200, 200, 200, 200, 404, 404, U, U]),
        (Method::POST, "/api/project/get", Some(r#"{"id": "{P2}"}"#), [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/api/experiment/register", Some(r#"{"project_id": "{P1}", "experiment_name": "x{N}"}"#), [200, 200, 403, 403, 404, 404, U, U]),
        (Method::POST, "/api/experiment/register", Some(r#"{"project_name": "p2", "org_id": "{ORG}", "experiment_name": "x{N}"}"#), [200, 200, 403, 403, 403, 404, U, U]),
        (Method::POST, "/api/experiment/register", Some(r#"{"project_id": "{P2}", "experiment_name": "e2", "update": true}"#), [200, 200, 200, 404, 200, 404, U, U]),
        // A missing base answers the 400 the SDK retries on, but only to those who can see the project.
        (Method::POST, "/api/experiment/register", Some(r#"{"project_id": "{P1}", "experiment_name": "x{N}", "base_experiment": "nope"}"#), [400, 400, 400, 400, 404, 404, U, U]),
        (Method::POST, "/api/experiment/get", Some(r#"{"project_id": "{P2}", "experiment_name": "e2"}"#), [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/api/dataset/register", Some(r#"{"project_id": "{P2}", "dataset_name": "d2"}"#), [200, 200, 200, 404, 200, 404, U, U]),
        (Method::POST, "/api/dataset/register", Some(r#"{"project_id": "{P1}", "dataset_name": "nd{N}"}"#), [200, 200, 403, 403, 404, 404, U, U]),
        (Method::POST, "/api/self/get_object_info", Some(r#"{"object_type": "experiment", "object_ids": ["{EXP_P1}"]}"#), [200, 200, 200, 200, 200, 200, U, U]),
        (Method::POST, "/api/base_experiment/get_id", Some(r#"{"id": "{EXP_P2}"}"#), [200, 200, 200, 404, 200, 404, U, U]),
        (Method::GET, "/experiment-comparison2?experiment_id={EXP_P2}", None, [200, 200, 200, 404, 200, 404, U, U]),
        (Method::GET, "/experiment-comparison2?experiment_id={EXP_P2}&base_experiment_id={EXP_P1}", None, [200, 200, 200, 404, 404, 404, U, U]),
        (Method::GET, "/dataset-summary?dataset_id={DS_P2}", None, [200, 200, 200, 404, 200, 404, U, U]),
        (Method::POST, "/btql", Some(r#"{"query": {"select": [{"op": "star"}], "from": {"op": "function", "name": {"op": "ident", "name": ["dataset"]}, "args": [{"op": "literal", "value": "{DS_P2}"}]}}}"#), [200, 200, 200, 404, 200, 404, U, U]),
        // Braintrust's older create-or-replace (`@braintrust/api` 0.1) and prompt feedback.
        (Method::PUT, "/v1/project", Some(r#"{"name": "p2", "org_name": "acme"}"#), [200, 200, 403, 403, 403, 404, U, U]),
        (Method::PUT, "/v1/experiment", Some(r#"{"project_id": "{P2}", "name": "e2", "description": "d{N}"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::PUT, "/v1/dataset", Some(r#"{"project_id": "{P2}", "name": "d2", "description": "d{N}"}"#), [200, 200, 403, 404, 403, 404, U, U]),
        (Method::PUT, "/v1/acl", Some(r#"{"object_type": "project", "object_id": "{SCRATCH}", "user_id": "{VIEWER}", "permission": "read"}"#), [200, 403, 403, 404, 404, 404, U, U]),
        (Method::POST, "/v1/prompt/{PROMPT_P1}/feedback", Some(r#"{"feedback": [{"id": "{PROMPT_P1}", "comment": "c{N}"}]}"#), [200, 200, 200, 200, 404, 404, U, U]),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expect) in &rows {
        for (who, want) in expect.iter().enumerate() {
            let p = w.fill(path).await;
            let b = match body {
                Some(t) => Some(serde_json::from_str::<Value>(&w.fill(t).await).expect("row body is JSON")),
                None => None,
            };
            let (got, v) = w.call(who, method.clone(), &p, b).await;
            if got.as_u16() != *want {
                failures.push(format!("{method} {path} as {}: want {want}, got {} {v}", NAMES[who], got.as_u16()));
            } else if *want >= 400 {
                // Every refusal carries the error model (SCIM's own under /scim/v2).
                let scim_error = path.starts_with("/scim/v2")
                    && v["schemas"] == json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
                    && v["status"] == json!(want.to_string())
                    && v["detail"].as_str().is_some_and(|d| !d.is_empty());
                if !scim_error && (v["code"].as_str().is_none() || v["message"].as_str().is_none_or(str::is_empty)) {
                    failures.push(format!("{method} {path} as {}: refusal without code/message: {v}", NAMES[who]));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(w.users.len(), 6);
}
