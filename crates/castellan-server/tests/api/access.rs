//! Access control over the API, on SQLite and PostgreSQL: ACLs, groups, roles,
//! members, lockout protection, strict delegation, expiry, explain/who-can/what-can
//! and the audit log.

use crate::common;

use common::{ids, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

on_both_backends!(
    new_orgs_are_seeded_with_builtin_groups_and_the_owner_role,
    members_join_through_invitations_and_get_their_groups_rights,
    acls_are_validated_deduplicated_and_revocable_in_every_way,
    an_object_level_grant_reveals_that_object_only,
    groups_and_roles_nest_reject_cycles_and_cascade,
    lockout_protection_keeps_an_owner_and_a_member,
    strict_delegation_limits_grants_to_what_the_grantor_holds,
    expired_grants_stop_counting_at_their_time,
    explain_who_can_and_what_can_answer_completely,
    removing_a_member_revokes_everything_at_once,
    every_change_is_audited_and_the_chain_verifies,
    the_newest_object_types_are_grant_points_or_refused_by_name
);

struct Org {
    key: String,
    id: String,
    user: String,
}

async fn org(app: &TestApp, name: &str, email: &str) -> Org {
    let key = app.bootstrap(name, email).await;
    let (_, o) = app.get("/v1/organization", &key).await;
    let id = o["objects"][0]["id"].as_str().expect("org").to_owned();
    let (_, me) = app.post("/api/self/me", &key, json!({})).await;
    Org { key, id, user: me["id"].as_str().expect("me").to_owned() }
}

async fn group_id(app: &TestApp, key: &str, name: &str) -> String {
    let (_, g) = app.get(&format!("/v1/group?group_name={name}"), key).await;
    g["objects"][0]["id"].as_str().unwrap_or_else(|| panic!("group {name}: {g}")).to_owned()
}

/// Adds a brand-new person to `o` through an invitation; returns (user id, key).
async fn join(app: &TestApp, o: &Org, email: &str, group: Option<&str>) -> (String, String) {
    let mut invite = json!({"emails": [email]});
    if let Some(g) = group {
        invite["group_name"] = json!(g);
    }
    let (s, out) = app
        .send(Method::PATCH, "/v1/organization/members", Some(&o.key), Some(json!({"invite_users": invite})), &[])
        .await
        .into_sv();
    assert_eq!(s, StatusCode::OK, "{out}");
    let token = out["invitations"][0]["token"].as_str().expect("token").to_owned();
    let (s, _, acc) = app.send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": token})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    (acc["user"]["id"].as_str().expect("user").to_owned(), acc["api_key"].as_str().expect("key").to_owned())
}

trait IntoSv {
    fn into_sv(self) -> (StatusCode, Value);
}
impl IntoSv for (StatusCode, reqwest::header::HeaderMap, Value) {
    fn into_sv(self) -> (StatusCode, Value) {
        (self.0, self.2)
    }
}

async fn project(app: &TestApp, key: &str, name: &str) -> String {
    let (s, p) = app.post("/v1/project", key, json!({"name": name})).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    p["id"].as_str().expect("project").to_owned()
}

async fn grant(app: &TestApp, key: &str, body: Value) -> (StatusCode, Value) {
    app.post("/v1/acl", key, body).await
}

async fn new_orgs_are_seeded_with_builtin_groups_and_the_owner_role(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let (_, groups) = app.get("/v1/group", &o.key).await;
    let mut names: Vec<&str> =
        groups["objects"].as_array().expect("groups").iter().filter_map(|g| g["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["Engineers", "Owners", "Viewers"]);
    let owners =
        groups["objects"].as_array().expect("groups").iter().find(|g| g["name"] == "Owners").expect("Owners").clone();
    assert_eq!(owners["member_users"], json!([o.user]));
    let (_, roles) = app.get("/v1/role?role_name=Owner", &o.key).await;
    assert_eq!(roles["objects"].as_array().map(Vec::len), Some(1));
    let owner_role = &roles["objects"][0];
    assert!(owner_role["org_id"].is_null(), "Owner is a system role");
    assert_eq!(owner_role["member_permissions"].as_array().map(Vec::len), Some(8));
    let (s, all) = app.get("/v1/acl/list_org", &o.key).await;
    assert_eq!(s, StatusCode::OK);
    let all = all.as_array().expect("list_org is a bare array").clone();
    // Owners: role Owner on the org. Engineers: 4 on org_project + 4 restricted reads.
    // Viewers: read on org_project + the same 4 restricted reads.
    assert_eq!(all.len(), 1 + 8 + 5, "{all:?}");
    let owners_id = owners["id"].as_str().expect("id");
    assert!(all.iter().any(|a| a["group_id"] == owners_id
        && a["role_id"] == owner_role["id"]
        && a["object_type"] == "organization"
        && a["object_id"] == o.id.as_str()));
    let eng = group_id(&app, &o.key, "Engineers").await;
    let eng_rows: Vec<&Value> = all.iter().filter(|a| a["group_id"] == eng.as_str()).collect();
    assert_eq!(eng_rows.iter().filter(|a| a["object_type"] == "org_project").count(), 4);
    let restricted: Vec<&str> = eng_rows.iter().filter_map(|a| a["restrict_object_type"].as_str()).collect();
    for t in ["organization", "org_member", "group", "role"] {
        assert!(restricted.contains(&t), "{t} missing from {restricted:?}");
    }
    let (s, v) = app
        .patch(&format!("/v1/role/{}", owner_role["id"].as_str().expect("id")), &o.key, json!({"name": "Boss"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "system roles cannot be changed: {v}");
    let (s, _) = app.delete(&format!("/v1/role/{}", owner_role["id"].as_str().expect("id")), &o.key).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn members_join_through_invitations_and_get_their_groups_rights(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let p = project(&app, &o.key, "alpha").await;
    let (eng_user, eng) = join(&app, &o, "eve@acme.example", Some("Engineers")).await;
    let (_, viewer) = join(&app, &o, "vic@acme.example", Some("Viewers")).await;
    let (_, nobody) = join(&app, &o, "nia@acme.example", None).await;
    // Engineers create, read, update, delete projects; cannot manage access or members.
    assert_eq!(app.get(&format!("/v1/project/{p}"), &eng).await.0, StatusCode::OK);
    let q = project(&app, &eng, "from-eve").await;
    assert_eq!(app.patch(&format!("/v1/project/{q}"), &eng, json!({"description": "x"})).await.0, StatusCode::OK);
    let (s, _) = grant(
        &app,
        &eng,
        json!({"object_type": "project", "object_id": p, "user_id": eng_user, "permission": "read_acls"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "engineers cannot manage access");
    let (s, _) = app
        .send(
            Method::PATCH,
            "/v1/organization/members",
            Some(&eng),
            Some(json!({"invite_users": {"emails": ["x@y.example"]}})),
            &[],
        )
        .await
        .into_sv();
    assert_eq!(s, StatusCode::FORBIDDEN, "engineers cannot invite");
    let (s, v) = app.get("/v1/audit_log", &eng).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "engineers cannot read the audit log: {v}");
    // Viewers read, nothing more.
    let (_, l) = app.get("/v1/project", &viewer).await;
    assert_eq!(ids(&l).len(), 2);
    let (s, v) = app.post("/v1/project", &viewer, json!({"name": "nope"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(app.patch(&format!("/v1/project/{p}"), &viewer, json!({"name": "x"})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/v1/project/{p}"), &viewer).await.0, StatusCode::FORBIDDEN);
    // A member in no group sees nothing of the projects.
    let (_, l) = app.get("/v1/project", &nobody).await;
    assert!(ids(&l).is_empty());
    assert_eq!(app.get(&format!("/v1/project/{p}"), &nobody).await.0, StatusCode::NOT_FOUND);
    // Existing users join only by accepting, signed in as themselves; the invitation
    // puts them in its groups, and they get a key for this org.
    let other = org(&app, "zeta", "zed@zeta.example").await;
    let (s, out) = app
        .send(
            Method::PATCH,
            "/v1/organization/members",
            Some(&o.key),
            Some(json!({"invite_users": {"emails": ["zed@zeta.example"], "group_names": ["Viewers"]}})),
            &[],
        )
        .await
        .into_sv();
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["added_users"], json!([]), "nobody is added without accepting: {out}");
    let token = out["invitations"][0]["token"].as_str().expect("token").to_owned();
    let (s, _, acc) =
        app.send(Method::POST, "/api/invitation/accept", Some(&other.key), Some(json!({"token": token})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    assert_eq!(acc["user"]["id"], other.user.as_str());
    let other_acme = acc["api_key"].as_str().expect("key").to_owned();
    let (s, v) =
        app.send(Method::GET, "/v1/project", Some(&other_acme), None, &[("x-bt-org-name", "acme")]).await.into_sv();
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ids(&v).len(), 2);
    let (s, v) =
        app.send(Method::GET, "/v1/project", Some(&other.key), None, &[("x-bt-org-name", "acme")]).await.into_sv();
    assert_eq!(s, StatusCode::NOT_FOUND, "zed's zeta key stays in zeta: {v}");
    // An invitation token works once; a bad one is refused.
    let (s, _, _) =
        app.send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": "inv-nope"})), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, out) = app
        .send(
            Method::PATCH,
            "/v1/organization/members",
            Some(&o.key),
            Some(json!({"invite_users": {"emails": ["Once@Acme.example"], "send_invite_emails": true}})),
            &[],
        )
        .await
        .into_sv();
    assert!(
        out["send_email_error"].as_str().is_some_and(|e| e.contains("mail")),
        "mail failure is reported, not fatal: {out}"
    );
    let token = out["invitations"][0]["token"].as_str().expect("token").to_owned();
    assert_eq!(out["invitations"][0]["email"], "once@acme.example");
    assert_eq!(
        app.send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": token})), &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": token})), &[]).await.0,
        StatusCode::NOT_FOUND
    );
    // Bad invitations change nothing.
    let (s, v) = app
        .send(
            Method::PATCH,
            "/v1/organization/members",
            Some(&o.key),
            Some(json!({"invite_users": {"emails": ["not-an-email"]}})),
            &[],
        )
        .await
        .into_sv();
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = app
        .send(
            Method::PATCH,
            "/v1/organization/members",
            Some(&o.key),
            Some(json!({"invite_users": {"emails": ["a@b.example"], "group_name": "Nope"}})),
            &[],
        )
        .await
        .into_sv();
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

async fn acls_are_validated_deduplicated_and_revocable_in_every_way(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let p = project(&app, &o.key, "alpha").await;
    let (u, _) = join(&app, &o, "u@acme.example", None).await;
    let item = json!({"object_type": "project", "object_id": p, "user_id": u, "permission": "read"});
    let (s, h, a1) = app.send(Method::POST, "/v1/acl", Some(&o.key), Some(item.clone()), &[]).await;
    assert_eq!(s, StatusCode::OK, "{a1}");
    assert!(!h.contains_key("x-bt-found-existing"));
    assert_eq!(a1["_object_org_id"], o.id.as_str());
    let (s, h, again) = app.send(Method::POST, "/v1/acl", Some(&o.key), Some(item.clone()), &[]).await;
    assert_eq!((s, &again["id"]), (StatusCode::OK, &a1["id"]), "identical contents return the existing ACL");
    assert_eq!(h["x-bt-found-existing"], "true");
    // Clear 400s for every malformed item, and nothing is written.
    for (bad, why) in [
        (json!({"object_type": "project", "object_id": p, "permission": "read"}), "no grantee"),
        (
            json!({"object_type": "project", "object_id": p, "user_id": u, "group_id": u, "permission": "read"}),
            "two grantees",
        ),
        (json!({"object_type": "project", "object_id": p, "user_id": u}), "no grant"),
        (
            json!({"object_type": "project", "object_id": p, "user_id": u, "permission": "read", "role_id": u}),
            "two grants",
        ),
        (
            json!({"object_type": "project", "object_id": p, "user_id": u, "role_id": u, "restrict_object_type": "experiment"}),
            "restricted role",
        ),
        (json!({"object_type": "project", "object_id": p, "user_id": u, "permission": "admin"}), "unknown permission"),
        (json!({"object_type": "galaxy", "object_id": p, "user_id": u, "permission": "read"}), "unknown object type"),
        (
            json!({"object_type": "project", "object_id": p, "user_id": u, "permission": "read", "expires_at": "soon"}),
            "bad expiry",
        ),
        (
            json!({"object_type": "project", "object_id": p, "user_id": u, "permission": "read", "expires_at": "2000-01-01T00:00:00Z"}),
            "past expiry",
        ),
        (json!({"object_type": "project", "object_id": p, "user_id": o.id, "permission": "update"}), "not a member"),
    ] {
        let (s, v) = grant(&app, &o.key, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{why}");
    }
    let (s, _) = grant(
        &app,
        &o.key,
        json!({"object_type": "project", "object_id": uuid::Uuid::now_v7(), "user_id": u, "permission": "read"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "unknown object");
    let (_, listed) = app.get(&format!("/v1/acl?object_type=project&object_id={p}"), &o.key).await;
    assert_eq!(ids(&listed), vec![a1["id"].as_str().expect("id").to_owned()]);
    let (s, _) = app.get("/v1/acl?object_type=project", &o.key).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "object_id is required");
    let aid = a1["id"].as_str().expect("id").to_owned();
    assert_eq!(app.get(&format!("/v1/acl/{aid}"), &o.key).await.1["permission"], "read");
    // Delete by id, find-and-delete by contents, and batch (both paths).
    assert_eq!(app.delete(&format!("/v1/acl/{aid}"), &o.key).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/v1/acl/{aid}"), &o.key).await.0, StatusCode::NOT_FOUND);
    grant(&app, &o.key, item.clone()).await;
    let (s, _, gone) = app.send(Method::DELETE, "/v1/acl", Some(&o.key), Some(item.clone()), &[]).await;
    assert_eq!((s, gone["user_id"].as_str()), (StatusCode::OK, Some(u.as_str())));
    let (s, _, _) = app.send(Method::DELETE, "/v1/acl", Some(&o.key), Some(item.clone()), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let upd = json!({"object_type": "project", "object_id": p, "user_id": u, "permission": "update"});
    let (s, out) = app.post("/v1/acl/batch_update", &o.key, json!({"add_acls": [item, upd], "remove_acls": []})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["added_acls"].as_array().map(Vec::len), Some(2));
    let (s, out) = app.post("/v1/acl/batch-update", &o.key, json!({"add_acls": [item], "remove_acls": [upd, {"object_type": "project", "object_id": p, "user_id": u, "permission": "delete"}]})).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["added_acls"], json!([]), "adding an existing ACL is a no-op");
    assert_eq!(out["removed_acls"].as_array().map(Vec::len), Some(1), "removing a missing ACL is a no-op");
    let (_, org_acls) = app.get(&format!("/v1/acl/list_org?user_id={u}"), &o.key).await;
    assert_eq!(org_acls.as_array().map(Vec::len), Some(1));
}

async fn an_object_level_grant_reveals_that_object_only(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let p1 = project(&app, &o.key, "one").await;
    let p2 = project(&app, &o.key, "two").await;
    let (u, key) = join(&app, &o, "u@acme.example", None).await;
    // A custom group with read+update on project one only.
    let (s, g) = app.post("/v1/group", &o.key, json!({"name": "contractors", "member_users": [u]})).await;
    assert_eq!(s, StatusCode::OK, "{g}");
    let gid = g["id"].as_str().expect("gid");
    for perm in ["read", "update"] {
        let (s, v) = grant(
            &app,
            &o.key,
            json!({"object_type": "project", "object_id": p1, "group_id": gid, "permission": perm}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, l) = app.get("/v1/project", &key).await;
    assert_eq!(ids(&l), vec![p1.clone()]);
    assert_eq!(app.get(&format!("/v1/project/{p2}"), &key).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.patch(&format!("/v1/project/{p1}"), &key, json!({"description": "ok"})).await.0, StatusCode::OK);
    assert_eq!(app.delete(&format!("/v1/project/{p1}"), &key).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        app.post("/v1/project", &key, json!({"name": "three"})).await.0,
        StatusCode::FORBIDDEN,
        "a member may not create projects"
    );
    // A restricted grant: read on the org restricted to `project` shows every project.
    grant(&app, &o.key, json!({"object_type": "organization", "object_id": o.id, "user_id": u, "permission": "read", "restrict_object_type": "project"})).await;
    let (_, l) = app.get("/v1/project", &key).await;
    assert_eq!(ids(&l).len(), 2);
}

async fn groups_and_roles_nest_reject_cycles_and_cascade(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let p = project(&app, &o.key, "alpha").await;
    let (u, key) = join(&app, &o, "u@acme.example", None).await;
    let (_, inner) = app.post("/v1/group", &o.key, json!({"name": "inner", "member_users": [u]})).await;
    let (_, outer) = app.post("/v1/group", &o.key, json!({"name": "outer", "member_groups": [inner["id"]]})).await;
    let (s, same) = app.post("/v1/group", &o.key, json!({"name": "outer", "description": "ignored"})).await;
    assert_eq!((s, &same["id"]), (StatusCode::OK, &outer["id"]), "same name returns the existing group");
    let (s, v) = app
        .patch(
            &format!("/v1/group/{}", inner["id"].as_str().expect("id")),
            &o.key,
            json!({"add_member_groups": [outer["id"]]}),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("cycle")), "{v}");
    // Roles: reader inherits base; a grant of the role to the outer group reaches u.
    let (s, base) =
        app.post("/v1/role", &o.key, json!({"name": "base", "member_permissions": [{"permission": "read"}]})).await;
    assert_eq!(s, StatusCode::OK, "{base}");
    let (_, reader) = app.post("/v1/role", &o.key, json!({"name": "reader", "member_roles": [base["id"]]})).await;
    let (s, v) = app
        .patch(
            &format!("/v1/role/{}", base["id"].as_str().expect("id")),
            &o.key,
            json!({"add_member_roles": [reader["id"]]}),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("cycle")), "{v}");
    let (s, v) = grant(
        &app,
        &o.key,
        json!({"object_type": "project", "object_id": p, "group_id": outer["id"], "role_id": reader["id"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        app.get(&format!("/v1/project/{p}"), &key).await.0,
        StatusCode::OK,
        "user -> inner -> outer, reader -> base -> read"
    );
    // PUT replaces the membership; the grant stops reaching u.
    let (s, v) = app
        .send(Method::PUT, "/v1/group", Some(&o.key), Some(json!({"name": "outer", "member_groups": []})), &[])
        .await
        .into_sv();
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["member_groups"], json!([]));
    assert_eq!(app.get(&format!("/v1/project/{p}"), &key).await.0, StatusCode::NOT_FOUND);
    app.patch(&format!("/v1/group/{}", outer["id"].as_str().expect("id")), &o.key, json!({"add_member_users": [u]}))
        .await;
    assert_eq!(app.get(&format!("/v1/project/{p}"), &key).await.0, StatusCode::OK);
    // Removing the inherited permission from the base role, then deleting the role:
    app.patch(
        &format!("/v1/role/{}", base["id"].as_str().expect("id")),
        &o.key,
        json!({"remove_member_permissions": [{"permission": "read"}]}),
    )
    .await;
    assert_eq!(app.get(&format!("/v1/project/{p}"), &key).await.0, StatusCode::NOT_FOUND);
    let (s, _) = app.delete(&format!("/v1/role/{}", reader["id"].as_str().expect("id")), &o.key).await;
    assert_eq!(s, StatusCode::OK);
    let (_, acls) = app.get(&format!("/v1/acl?object_type=project&object_id={p}"), &o.key).await;
    assert!(ids(&acls).is_empty(), "a deleted role's grants go with it");
    // Deleting a group takes its grants too.
    grant(
        &app,
        &o.key,
        json!({"object_type": "project", "object_id": p, "group_id": outer["id"], "permission": "read"}),
    )
    .await;
    assert_eq!(app.delete(&format!("/v1/group/{}", outer["id"].as_str().expect("id")), &o.key).await.0, StatusCode::OK);
    let (_, acls) = app.get(&format!("/v1/acl?object_type=project&object_id={p}"), &o.key).await;
    assert!(ids(&acls).is_empty());
    assert_eq!(app.get(&format!("/v1/project/{p}"), &key).await.0, StatusCode::NOT_FOUND);
    // Members must belong to the org.
    let other = org(&app, "zeta", "z@zeta.example").await;
    let (s, _) = app.post("/v1/group", &o.key, json!({"name": "x", "member_users": [other.user]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

async fn lockout_protection_keeps_an_owner_and_a_member(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let owners = group_id(&app, &o.key, "Owners").await;
    let (s, v) = app.patch(&format!("/v1/group/{owners}"), &o.key, json!({"remove_member_users": [o.user]})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("lockout")), "{v}");
    let (s, v) = app.delete(&format!("/v1/group/{owners}"), &o.key).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("protected")));
    let (s, v) = app.patch(&format!("/v1/group/{owners}"), &o.key, json!({"name": "Kings"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("protected")));
    let (s, v) = app
        .send(
            Method::PATCH,
            "/v1/organization/members",
            Some(&o.key),
            Some(json!({"remove_users": {"ids": [o.user]}})),
            &[],
        )
        .await
        .into_sv();
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("lockout")), "{v}");
    let (_, acls) =
        app.get(&format!("/v1/acl?object_type=organization&object_id={}&group_id={owners}", o.id), &o.key).await;
    let owner_acl = ids(&acls).pop().expect("owners' grant");
    let (s, v) = app.delete(&format!("/v1/acl/{owner_acl}"), &o.key).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("lockout")), "{v}");
    // With a second owner, the first may leave the Owners group.
    let (u2, k2) = join(&app, &o, "second@acme.example", Some("Owners")).await;
    let (s, v) = app.patch(&format!("/v1/group/{owners}"), &o.key, json!({"remove_member_users": [o.user]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = app.patch(&format!("/v1/group/{owners}"), &k2, json!({"remove_member_users": [u2]})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("lockout")));
    // Everything refused left the org as it was.
    let (_, g) = app.get(&format!("/v1/group/{owners}"), &k2).await;
    assert_eq!(g["member_users"], json!([u2]));
}

async fn strict_delegation_limits_grants_to_what_the_grantor_holds(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let p = project(&app, &o.key, "alpha").await;
    let (m, mkey) = join(&app, &o, "manager@acme.example", None).await;
    let (u, _) = join(&app, &o, "u@acme.example", None).await;
    for perm in ["read", "create_acls"] {
        grant(&app, &o.key, json!({"object_type": "project", "object_id": p, "user_id": m, "permission": perm})).await;
    }
    let del = json!({"object_type": "project", "object_id": p, "user_id": u, "permission": "delete"});
    let (s, v) = grant(&app, &mkey, del.clone()).await;
    assert_eq!(s, StatusCode::OK, "off by default, create_acls lets one grant anything: {v}");
    app.delete(&format!("/v1/acl/{}", v["id"].as_str().expect("id")), &o.key).await;
    let (s, org_out) =
        app.patch(&format!("/v1/organization/{}", o.id), &o.key, json!({"strict_delegation": true})).await;
    assert_eq!((s, &org_out["strict_delegation"]), (StatusCode::OK, &json!(true)));
    let (s, v) = grant(&app, &mkey, del).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| m.contains("strict delegation")));
    let (s, v) =
        grant(&app, &mkey, json!({"object_type": "project", "object_id": p, "user_id": u, "permission": "read"})).await;
    assert_eq!(s, StatusCode::OK, "what the grantor holds may still be granted: {v}");
    let (_, owner_role) = app.get("/v1/role?role_name=Owner", &o.key).await;
    let (s, _) = grant(
        &app,
        &mkey,
        json!({"object_type": "project", "object_id": p, "user_id": u, "role_id": owner_role["objects"][0]["id"]}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a role is checked permission by permission");
}

async fn expired_grants_stop_counting_at_their_time(b: Backend) {
    let Some((app, clock)) = TestApp::spawn_with_clock(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let p = project(&app, &o.key, "alpha").await;
    let (u, key) = join(&app, &o, "temp@acme.example", None).await;
    let at = chrono_in(3600);
    let (s, a) = grant(
        &app,
        &o.key,
        json!({"object_type": "project", "object_id": p, "user_id": u, "permission": "read", "expires_at": at}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert!(a["expires_at"].is_string());
    assert_eq!(app.get(&format!("/v1/project/{p}"), &key).await.0, StatusCode::OK);
    clock.store(3_601_000_000, Ordering::SeqCst);
    assert_eq!(app.get(&format!("/v1/project/{p}"), &key).await.0, StatusCode::NOT_FOUND, "expired");
    let (_, e) = app
        .get(&format!("/v1/acl/explain?object_type=project&object_id={p}&permission=read&user_id={u}"), &o.key)
        .await;
    assert_eq!(e["allowed"], false);
    assert_eq!(e["near_misses"][0]["reason"], "expired", "{e}");
}

fn chrono_in(secs: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_micros() as i64;
    castellan_api_types::format_time(now + secs * 1_000_000)
}

async fn explain_who_can_and_what_can_answer_completely(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let p = project(&app, &o.key, "alpha").await;
    let q = project(&app, &o.key, "beta").await;
    let mut engineers = Vec::new();
    for i in 0..5 {
        engineers.push(join(&app, &o, &format!("e{i}@acme.example"), Some("Engineers")).await.0);
    }
    let (viewer, vkey) = join(&app, &o, "v@acme.example", Some("Viewers")).await;
    // explain: a viewer reads through Viewers -> read on org_project.
    let (s, e) = app.get(&format!("/v1/acl/explain?object_type=project&object_id={p}&permission=read"), &vkey).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["allowed"], true);
    let g = &e["grants"][0];
    assert_eq!(g["acl_object_type"], "org_project");
    assert_eq!(g["group_chain"], json!([group_id(&app, &o.key, "Viewers").await]));
    assert_eq!(e["ancestors"].as_array().map(Vec::len), Some(3));
    let (_, e) = app.get(&format!("/v1/acl/explain?object_type=project&object_id={p}&permission=delete"), &vkey).await;
    assert_eq!((e["allowed"].clone(), e["grants"].clone()), (json!(false), json!([])));
    let (_, e) = app
        .get(
            &format!(
                "/v1/acl/explain?object_type=organization&object_id={}&permission=create&child_object_type=project",
                o.id
            ),
            &o.key,
        )
        .await;
    assert_eq!(e["allowed"], true, "{e}");
    assert!(
        e["grants"][0]["role_chain"].as_array().is_some_and(|c| !c.is_empty()),
        "the owner creates through the Owner role"
    );
    // Explaining someone else needs read_acls.
    let (s, _) = app
        .get(&format!("/v1/acl/explain?object_type=project&object_id={p}&permission=read&user_id={}", o.user), &vkey)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // who_can: every engineer and the owner may update, paged 2 at a time, complete.
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let (s, page) = app
            .get(
                &format!("/v1/acl/who_can?object_type=project&object_id={p}&permission=update&limit=2{cursor}"),
                &o.key,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        all.extend(page["ids"].as_array().expect("ids").iter().filter_map(|v| v.as_str().map(str::to_owned)));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let mut want = engineers.clone();
    want.push(o.user.clone());
    want.sort();
    assert_eq!(all, want);
    assert!(!all.contains(&viewer));
    assert_eq!(
        app.get(&format!("/v1/acl/who_can?object_type=project&object_id={p}&permission=update"), &vkey).await.0,
        StatusCode::FORBIDDEN
    );
    // what_can: the viewer can read both projects, update none.
    let (_, w) = app.get("/v1/acl/what_can?object_type=project&permission=read", &vkey).await;
    let mut got: Vec<String> =
        w["ids"].as_array().expect("ids").iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    got.sort();
    let mut want = vec![p.clone(), q.clone()];
    want.sort();
    assert_eq!(got, want);
    let (_, w) = app.get("/v1/acl/what_can?object_type=project&permission=update", &vkey).await;
    assert_eq!(w["ids"], json!([]));
    let (s, _) =
        app.get(&format!("/v1/acl/what_can?object_type=project&permission=read&user_id={viewer}"), &o.key).await;
    assert_eq!(s, StatusCode::OK, "owners may ask about others");
    let (s, _) =
        app.get(&format!("/v1/acl/what_can?object_type=project&permission=read&user_id={}", o.user), &vkey).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

async fn removing_a_member_revokes_everything_at_once(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let p = project(&app, &o.key, "alpha").await;
    let (u, key) = join(&app, &o, "leaver@acme.example", Some("Engineers")).await;
    grant(&app, &o.key, json!({"object_type": "project", "object_id": p, "user_id": u, "permission": "delete"})).await;
    let (_, k2) = app.post("/v1/api_key", &key, json!({"name": "second"})).await;
    let k2 = k2["key"].as_str().expect("key").to_owned();
    assert_eq!(app.get(&format!("/v1/project/{p}"), &k2).await.0, StatusCode::OK);
    let (s, out) = app
        .send(
            Method::PATCH,
            "/v1/organization/members",
            Some(&o.key),
            Some(json!({"remove_users": {"emails": ["LEAVER@acme.example"]}})),
            &[],
        )
        .await
        .into_sv();
    assert_eq!(s, StatusCode::OK, "{out}");
    assert_eq!(out["removed_users"], json!([u]));
    for k in [&key, &k2] {
        assert_eq!(
            app.get(&format!("/v1/project/{p}"), k).await.0,
            StatusCode::UNAUTHORIZED,
            "keys of that org are revoked"
        );
    }
    let (_, eng) = app.get(&format!("/v1/group/{}", group_id(&app, &o.key, "Engineers").await), &o.key).await;
    assert_eq!(eng["member_users"], json!([]));
    let (_, acls) = app.get(&format!("/v1/acl/list_org?user_id={u}"), &o.key).await;
    assert_eq!(acls, json!([]));
    let (_, users) = app.get("/v1/user", &o.key).await;
    assert!(!users.to_string().contains("leaver@"));
}

async fn every_change_is_audited_and_the_chain_verifies(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let o = org(&app, "acme", "ada@acme.example").await;
    let p = project(&app, &o.key, "alpha").await;
    app.patch(&format!("/v1/project/{p}"), &o.key, json!({"description": "new"})).await;
    let (_, g) = app.post("/v1/group", &o.key, json!({"name": "g"})).await;
    let (_, a) = grant(
        &app,
        &o.key,
        json!({"object_type": "project", "object_id": p, "group_id": g["id"], "permission": "read"}),
    )
    .await;
    app.delete(&format!("/v1/acl/{}", a["id"].as_str().expect("id")), &o.key).await;
    let (s, log) = app.get("/v1/audit_log", &o.key).await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let events: Vec<&str> =
        log["objects"].as_array().expect("objects").iter().filter_map(|e| e["event_type"].as_str()).collect();
    assert_eq!(&events[..5], &["acl.deleted", "acl.created", "group.created", "project.updated", "project.created"]);
    assert!(events.contains(&"organization.created") && events.contains(&"api_key.created"));
    let upd = &log["objects"][3];
    assert_eq!(upd["before"]["description"], json!(null));
    assert_eq!(upd["after"]["description"], "new");
    assert_eq!(upd["actor_id"], o.user.as_str());
    let (_, acl_only) = app.get("/v1/audit_log?event_type=acl.", &o.key).await;
    assert!(acl_only["objects"].as_array().expect("objects").iter().all(|e| e["resource_type"] == "acl"));
    let (_, by_res) = app.get(&format!("/v1/audit_log?resource_id={p}"), &o.key).await;
    assert_eq!(by_res["objects"].as_array().map(Vec::len), Some(2));
    let (_, paged) = app.get("/v1/audit_log?limit=2&before_seq=3", &o.key).await;
    let seqs: Vec<u64> =
        paged["objects"].as_array().expect("objects").iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, vec![2, 1]);
    let (s, _) = app.get("/v1/audit_log?since=yesterday", &o.key).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for q in ["before_seq=9223372036854775808", "before_seq=-1", "before_seq=x"] {
        assert_eq!(app.get(&format!("/v1/audit_log?{q}"), &o.key).await.0, StatusCode::BAD_REQUEST, "{q}");
    }
    assert_eq!(app.get("/v1/audit_log/chain?after_seq=18446744073709551615", &o.key).await.0, StatusCode::BAD_REQUEST);
    // The chain export verifies.
    let (_, chain) = app.get("/v1/audit_log/chain?limit=1000", &o.key).await;
    let records: Vec<castellan_store::audit::AuditRecord> =
        serde_json::from_value(chain["records"].clone()).expect("records");
    let head = (chain["head"]["seq"].as_u64().expect("seq"), chain["head"]["hash"].as_str().expect("hash").to_owned());
    assert_eq!(castellan_store::audit::verify_chain(&records, Some(head)), vec![]);
    // Another org's member sees none of it.
    let z = org(&app, "zeta", "z@zeta.example").await;
    assert_eq!(app.get("/v1/audit_log?org_name=acme", &z.key).await.0, StatusCode::NOT_FOUND);
}

/// The five object types of Braintrust's newest model: `org_ai_secret` and
/// `org_account` are org-level grant points today; `ai_secret`, `project_group` and
/// `project_group_projects` name objects, and a grant on one that does not exist is
/// "not found" like any other object.
async fn the_newest_object_types_are_grant_points_or_refused_by_name(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let acme = org(&app, "acme", "ada@acme.example").await;
    let zeta = org(&app, "zeta", "zed@zeta.example").await;
    for t in ["org_ai_secret", "org_account"] {
        let (s, a) = app
            .post("/v1/acl", &acme.key, json!({"object_type": t, "object_id": acme.id, "group_id": group_id(&app, &acme.key, "Engineers").await, "permission": "read"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{t}: {a}");
        assert_eq!(a["object_type"], t);
        let (_, listed) = app.get(&format!("/v1/acl?object_type={t}&object_id={}", acme.id), &acme.key).await;
        assert_eq!(listed["objects"].as_array().map(Vec::len), Some(1), "{t}: {listed}");
        // The owner holds everything there through the organization; another org's owner
        // cannot even see the grant point.
        let (_, why) = app
            .get(&format!("/v1/acl/explain?object_type={t}&object_id={}&permission=update", acme.id), &acme.key)
            .await;
        assert_eq!(why["allowed"], true, "{t}: {why}");
        let (s, _) = app.get(&format!("/v1/acl?object_type={t}&object_id={}", acme.id), &zeta.key).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{t}");
    }
    for t in ["ai_secret", "project_group", "project_group_projects"] {
        let (s, v) = app
            .post("/v1/acl", &acme.key, json!({"object_type": t, "object_id": uuid::Uuid::now_v7(), "user_id": acme.user, "permission": "read"}))
            .await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{t}: {v}");
    }
    // Roles may be restricted to each of the seventeen types.
    let perms: Vec<Value> = ["project_group", "project_group_projects", "ai_secret", "org_ai_secret", "org_account"]
        .iter()
        .map(|t| json!({"permission": "read", "restrict_object_type": t}))
        .collect();
    let (s, r) = app.post("/v1/role", &acme.key, json!({"name": "newest", "member_permissions": perms})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["member_permissions"].as_array().map(Vec::len), Some(5), "{r}");
    let (s, v) = app
        .post(
            "/v1/acl",
            &acme.key,
            json!({"object_type": "org_secrets", "object_id": acme.id, "user_id": acme.user, "permission": "read"}),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| m.contains("org_account")), "the accepted values are listed: {v}");
    let _ = zeta.user;
    app.stop().await;
}
