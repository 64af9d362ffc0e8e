//! Project groups (`/v1/project_group`) over real HTTP on SQLite and PostgreSQL: a
//! grant on all projects of a group reaches exactly the projects in it, membership
//! changes take effect at once, and changing membership is guarded.

use crate::common;

use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

on_both_backends!(
    a_grant_on_a_project_group_reaches_exactly_its_projects,
    project_group_membership_is_guarded_and_groups_go_cleanly,
    a_project_group_owner_creates_service_accounts_that_read_its_projects,
    every_principal_meets_project_groups_exactly_as_designed
);

/// A new member of `owner`'s org with no group; returns (user id, API key).
async fn member(app: &TestApp, owner: &str, email: &str) -> (String, String) {
    let invite = json!({"invite_users": {"emails": [email]}});
    let (s, _, out) = app.send(Method::PATCH, "/v1/organization/members", Some(owner), Some(invite), &[]).await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let token = out["invitations"][0]["token"].as_str().expect("token");
    let (s, _, acc) = app.send(Method::POST, "/api/invitation/accept", None, Some(json!({"token": token})), &[]).await;
    assert_eq!(s, StatusCode::OK, "{acc}");
    (acc["user"]["id"].as_str().expect("id").to_owned(), acc["api_key"].as_str().expect("key").to_owned())
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id: {v}")).to_owned()
}

async fn a_grant_on_a_project_group_reaches_exactly_its_projects(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let (bob, bob_key) = member(&app, &owner, "bob@acme.example").await;
    let p = id(&app.post("/v1/project", &owner, json!({"name": "p"})).await.1);
    let q = id(&app.post("/v1/project", &owner, json!({"name": "q"})).await.1);
    let (s, g) = app.post("/v1/project_group", &owner, json!({"name": "team", "description": "d"})).await;
    assert_eq!(s, StatusCode::OK, "{g}");
    let gid = id(&g);
    assert_eq!(g["member_projects"], json!([]));
    let (s, g) = app.patch(&format!("/v1/project_group/{gid}"), &owner, json!({"add_member_projects": [p]})).await;
    assert_eq!((s, g["member_projects"].clone()), (StatusCode::OK, json!([p])), "{g}");
    let (s, a) = app
        .post(
            "/v1/acl",
            &owner,
            json!({"object_type": "project_group_projects", "object_id": gid, "user_id": bob, "permission": "read"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(app.get(&format!("/v1/project/{p}"), &bob_key).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/v1/project/{q}"), &bob_key).await.0, StatusCode::NOT_FOUND);
    let names: Vec<String> = app.get("/v1/project", &bob_key).await.1["objects"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|x| x["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(names, ["p"]);
    let (_, why) = app
        .get(&format!("/v1/acl/explain?object_type=project&object_id={p}&permission=read&user_id={bob}"), &owner)
        .await;
    assert_eq!(why["allowed"], true, "{why}");
    assert!(why.to_string().contains("project_group_projects"), "explain names the group: {why}");
    // The grant on the group's definition is not a grant on its projects.
    let (_, e) = app.post("/v1/experiment", &owner, json!({"project_id": p, "name": "e"})).await;
    assert_eq!(app.get(&format!("/v1/experiment/{}", id(&e)), &bob_key).await.0, StatusCode::OK, "inside p too");
    // Leaving the group takes the access away at once.
    let (s, g) = app
        .patch(
            &format!("/v1/project_group/{gid}"),
            &owner,
            json!({"remove_member_projects": [p], "add_member_projects": [q]}),
        )
        .await;
    assert_eq!((s, g["member_projects"].clone()), (StatusCode::OK, json!([q])), "{g}");
    assert_eq!(app.get(&format!("/v1/project/{p}"), &bob_key).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/v1/project/{q}"), &bob_key).await.0, StatusCode::OK);
    // A project created straight into the group is in it, and reachable at once.
    let (s, r) = app.post("/v1/project", &owner, json!({"name": "r", "project_group_name": "team"})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let r = id(&r);
    assert_eq!(app.get(&format!("/v1/project/{r}"), &bob_key).await.0, StatusCode::OK);
    let (s, v) = app.post("/v1/project", &owner, json!({"name": "x", "project_group_name": "nope"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{v}");
    assert_eq!(
        app.post("/v1/project", &bob_key, json!({"name": "y", "project_group_name": "team"})).await.0,
        StatusCode::NOT_FOUND,
        "bob cannot read the group"
    );
    let (s, g) = app.patch(&format!("/v1/project_group/{gid}"), &owner, json!({"remove_member_projects": [r]})).await;
    assert_eq!((s, g["member_projects"].clone()), (StatusCode::OK, json!([q])), "{g}");
    // Deleting a project takes it out of its groups.
    assert_eq!(app.delete(&format!("/v1/project/{q}"), &owner).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/v1/project_group/{gid}"), &owner).await.1["member_projects"], json!([]));
    let (_, audit) = app.get("/v1/audit_log?org_name=acme&event_type=project_group.updated", &owner).await;
    assert!(audit.to_string().contains("project deleted") && audit.to_string().contains(&q), "{audit}");
    app.stop().await;
}

async fn project_group_membership_is_guarded_and_groups_go_cleanly(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let (carol, carol_key) = member(&app, &owner, "carol@acme.example").await;
    let p = id(&app.post("/v1/project", &owner, json!({"name": "p"})).await.1);
    let z = id(&app.post("/v1/project", &zeta, json!({"name": "z"})).await.1);
    let gid = id(&app.post("/v1/project_group", &owner, json!({"name": "carols"})).await.1);
    // Carol administers the group's definition, and can read p, but may not pull p in.
    for (object_type, object_id, permission) in
        [("project_group", &gid, "update"), ("project_group", &gid, "read"), ("project", &p, "read")]
    {
        let (s, v) = app
            .post(
                "/v1/acl",
                &owner,
                json!({"object_type": object_type, "object_id": object_id, "user_id": carol, "permission": permission}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = app.patch(&format!("/v1/project_group/{gid}"), &carol_key, json!({"add_member_projects": [p]})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| m.contains("update_acls")), "{v}");
    let (s, v) = app.patch(&format!("/v1/project_group/{gid}"), &carol_key, json!({"name": "carol's"})).await;
    assert_eq!((s, v["name"].as_str()), (StatusCode::OK, Some("carol's")), "{v}");
    // Renaming onto the name of a group Carol cannot read: she may not create groups,
    // so she learns nothing about it (403, as for a create), where the owner learns it
    // is taken.
    let hidden = id(&app.post("/v1/project_group", &owner, json!({"name": "hidden"})).await.1);
    let (s, v) = app.patch(&format!("/v1/project_group/{gid}"), &carol_key, json!({"name": "hidden"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v}");
    assert!(!v.to_string().contains("exists"), "{v}");
    let (s, v) = app.patch(&format!("/v1/project_group/{gid}"), &owner, json!({"name": "hidden"})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("name_taken")), "{v}");
    app.delete(&format!("/v1/project_group/{hidden}"), &owner).await;
    // Another org sees nothing and cannot pull in its project; the owner cannot pull in zeta's.
    for (method, path) in
        [(Method::GET, format!("/v1/project_group/{gid}")), (Method::DELETE, format!("/v1/project_group/{gid}"))]
    {
        let (s, _, v) = app.send(method, &path, Some(&zeta), None, &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        assert!(!v.to_string().contains("carol"), "{v}");
    }
    assert_eq!(app.get("/v1/project_group", &zeta).await.1["objects"], json!([]));
    let (s, _) = app.patch(&format!("/v1/project_group/{gid}"), &owner, json!({"add_member_projects": [z]})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // create-or-get, listing by name, bad names.
    let (_, h, again) =
        app.send(Method::POST, "/v1/project_group", Some(&owner), Some(json!({"name": "carol's"})), &[]).await;
    assert_eq!((again["id"].as_str(), h.get("x-bt-found-existing").is_some()), (Some(gid.as_str()), true));
    let (_, by_name) = app.get("/v1/project_group?project_group_name=carol's", &owner).await;
    assert_eq!(by_name["objects"].as_array().map(Vec::len), Some(1), "{by_name}");
    let (s, v) = app.post("/v1/project_group", &owner, json!({"name": ""})).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_body")));
    assert_eq!(app.post("/v1/project_group", &carol_key, json!({"name": "mine"})).await.0, StatusCode::FORBIDDEN);
    // Deleting the group drops every grant on it (audited); its projects stay.
    app.patch(&format!("/v1/project_group/{gid}"), &owner, json!({"add_member_projects": [p]})).await;
    let (s, _) = app.delete(&format!("/v1/project_group/{gid}"), &owner).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.get(&format!("/v1/project_group/{gid}"), &owner).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/v1/project/{p}"), &owner).await.0, StatusCode::OK);
    let (_, acls) = app.get(&format!("/v1/acl?object_type=project&object_id={p}"), &owner).await;
    assert_eq!(acls["objects"].as_array().map(Vec::len), Some(1), "carol's read on p stays: {acls}");
    let (_, audit) = app.get("/v1/audit_log?org_name=acme&event_type=project_group.", &owner).await;
    let events: Vec<&str> =
        audit["objects"].as_array().expect("audit").iter().filter_map(|e| e["event_type"].as_str()).collect();
    for e in ["project_group.created", "project_group.updated", "project_group.deleted"] {
        assert!(events.contains(&e), "{e}: {events:?}");
    }
    app.stop().await;
}

/// The authorization matrix of project groups: each principal, on each endpoint a
/// project group changes, gets exactly the expected status. Principals: the owner; a
/// member of a permission group granted `read` on all projects of group A; the owner of group A's definition
/// (read, update, delete on the project_group); a member granted `read` on all
/// projects of group B; another org's owner. Projects: `a` in A; `t` in A and B, then
/// taken out of B; `o` in no group. The definer administers A's definition but reads
/// none of its projects: a project it cannot read, and "all projects of A", are 404 to
/// it like any object it cannot see.
async fn every_principal_meets_project_groups_exactly_as_designed(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let (reader, reader_key) = member(&app, &owner, "reader@acme.example").await;
    let (definer, definer_key) = member(&app, &owner, "definer@acme.example").await;
    let (b_reader, b_reader_key) = member(&app, &owner, "breader@acme.example").await;
    let project = |name: &'static str| {
        let (app, owner) = (&app, &owner);
        async move { id(&app.post("/v1/project", owner, json!({"name": name})).await.1) }
    };
    let (pa, pt, po) = (project("a").await, project("t").await, project("o").await);
    let ga = id(&app.post("/v1/project_group", &owner, json!({"name": "A"})).await.1);
    let gb = id(&app.post("/v1/project_group", &owner, json!({"name": "B"})).await.1);
    app.patch(&format!("/v1/project_group/{ga}"), &owner, json!({"add_member_projects": [pa, pt]})).await;
    app.patch(&format!("/v1/project_group/{gb}"), &owner, json!({"add_member_projects": [pt]})).await;
    let grant = |object_type: &'static str, object_id: String, user: String, permission: &'static str| {
        let (app, owner) = (&app, &owner);
        async move {
            let body =
                json!({"object_type": object_type, "object_id": object_id, "user_id": user, "permission": permission});
            let (s, v) = app.post("/v1/acl", owner, body).await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    };
    // The reader holds it through a permission group, as a console admin would grant it.
    let (s, readers) = app.post("/v1/group", &owner, json!({"name": "A readers", "member_users": [reader]})).await;
    assert_eq!(s, StatusCode::OK, "{readers}");
    let body = json!({"object_type": "project_group_projects", "object_id": ga, "group_id": readers["id"], "permission": "read"});
    assert_eq!(app.post("/v1/acl", &owner, body).await.0, StatusCode::OK);
    for p in ["read", "update", "delete"] {
        grant("project_group", ga.clone(), definer.clone(), p).await;
    }
    grant("project_group_projects", gb.clone(), b_reader.clone(), "read").await;
    // t leaves B: B's reader loses it at once.
    app.patch(&format!("/v1/project_group/{gb}"), &owner, json!({"remove_member_projects": [pt]})).await;
    let keys = [Some(owner.clone()), Some(reader_key), Some(definer_key), Some(b_reader_key), Some(zeta)];
    const NAMES: [&str; 5] = ["owner", "A-reader", "A-definer", "B-reader", "other org"];
    #[rustfmt::skip]
    let rows: Vec<(Method, String, Option<Value>, [u16; 5])> = vec![
        (Method::GET, format!("/v1/project/{pa}"), None, [200, 200, 404, 404, 404]),
        (Method::GET, format!("/v1/project/{pt}"), None, [200, 200, 404, 404, 404]),
        (Method::GET, format!("/v1/project/{po}"), None, [200, 404, 404, 404, 404]),
        (Method::PATCH, format!("/v1/project/{pa}"), Some(json!({"description": "x"})), [200, 403, 404, 404, 404]),
        (Method::GET, format!("/v1/project_group/{ga}"), None, [200, 404, 200, 404, 404]),
        (Method::GET, format!("/v1/project_group/{gb}"), None, [200, 404, 404, 404, 404]),
        (Method::PATCH, format!("/v1/project_group/{ga}"), Some(json!({"description": "d"})), [200, 404, 200, 404, 404]),
        (Method::PATCH, format!("/v1/project_group/{ga}"), Some(json!({"add_member_projects": [po]})), [200, 404, 404, 404, 404]),
        (Method::PATCH, format!("/v1/project_group/{ga}"), Some(json!({"remove_member_projects": [po]})), [200, 404, 200, 404, 404]),
        (Method::GET, format!("/v1/acl?object_type=project_group_projects&object_id={ga}"), None, [200, 403, 404, 404, 404]),
        (Method::POST, "/v1/project".into(), Some(json!({"name": "n", "project_group_name": "A"})), [200, 404, 404, 404, 404]),
    ];
    let mut failures = Vec::new();
    for (method, path, body, want) in &rows {
        for (who, expected) in want.iter().enumerate() {
            let (s, _, v) = app.send(method.clone(), path, keys[who].as_deref(), body.clone(), &[]).await;
            if s.as_u16() != *expected {
                failures.push(format!("{method} {path} as {}: want {expected}, got {} {v}", NAMES[who], s.as_u16()));
            }
            if method == Method::POST && s.is_success() {
                // Keep the next principal's create from finding this one.
                app.delete(&format!("/v1/project/{}", id(&v)), &owner).await;
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    app.stop().await;
}

/// `invite_users.project_group_id`: an owner of a project group (every permission on
/// it, and `create_acls` on its projects) creates service accounts that read the
/// group's projects, without owning the organization.
async fn a_project_group_owner_creates_service_accounts_that_read_its_projects(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "ada@acme.example").await;
    let zeta = app.bootstrap("zeta", "zed@zeta.example").await;
    let (lead, lead_key) = member(&app, &owner, "lead@acme.example").await;
    let (_, other_key) = member(&app, &owner, "other@acme.example").await;
    let p = id(&app.post("/v1/project", &owner, json!({"name": "p"})).await.1);
    let o = id(&app.post("/v1/project", &owner, json!({"name": "o"})).await.1);
    let g = id(&app.post("/v1/project_group", &owner, json!({"name": "lead's"})).await.1);
    app.patch(&format!("/v1/project_group/{g}"), &owner, json!({"add_member_projects": [p]})).await;
    let z = id(&app.post("/v1/project_group", &zeta, json!({"name": "z"})).await.1);
    for perm in ["create", "read", "update", "delete", "create_acls", "read_acls", "update_acls", "delete_acls"] {
        let body = json!({"object_type": "project_group", "object_id": g, "user_id": lead, "permission": perm});
        assert_eq!(app.post("/v1/acl", &owner, body).await.0, StatusCode::OK);
    }
    let body =
        json!({"object_type": "project_group_projects", "object_id": g, "user_id": lead, "permission": "create_acls"});
    assert_eq!(app.post("/v1/acl", &owner, body).await.0, StatusCode::OK);
    let invite = |group: Option<&str>| {
        let mut i = json!({"service_accounts": [{"name": "bot"}]});
        if let Some(g) = group {
            i["project_group_id"] = json!(g);
        }
        json!({"invite_users": i})
    };
    let patch = |key: String, body: Value| {
        let app = &app;
        async move { app.send(Method::PATCH, "/v1/organization/members", Some(&key), Some(body), &[]).await }
    };
    // Without naming the group, or by someone who does not own it: refused.
    let (s, _, v) = patch(lead_key.clone(), invite(None)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // A group the caller cannot see answers like one that does not exist.
    let (s, _, v) = patch(other_key.clone(), invite(Some(&g))).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{v}");
    let (s, _, v) = patch(lead_key.clone(), invite(Some(&z))).await;
    assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "another org's group: {v}");
    // The group's owner: the new account reads the group's projects, nothing else.
    let (s, _, v) = patch(lead_key.clone(), invite(Some(&g))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let bot = v["added_users"][0]["id"].as_str().expect("bot").to_owned();
    let (s, t) = app.post("/v1/service_token", &owner, json!({"name": "t", "service_account_id": bot})).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let bot_key = t["key"].as_str().expect("key").to_owned();
    assert_eq!(app.get(&format!("/v1/project/{p}"), &bot_key).await.0, StatusCode::OK);
    assert_eq!(app.get(&format!("/v1/project/{o}"), &bot_key).await.0, StatusCode::NOT_FOUND);
    let (_, acls) = app.get(&format!("/v1/acl?object_type=project_group_projects&object_id={g}"), &owner).await;
    assert!(acls.to_string().contains(&bot), "the grant is listed: {acls}");
    app.stop().await;
}
