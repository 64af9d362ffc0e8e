//! The web console in a real headless Chromium against a real server: the
//! access-control seed workflow end to end (two browser sessions), invitations, API
//! keys, service tokens, the audit log, Explain, refusals, every page checked with
//! axe-core and saved as a screenshot (`target/console-screenshots/`), and the main
//! forms without JavaScript (plain HTTP form posts).

mod browser;
mod forms;
mod lists;
mod nojs;
mod sso;

use crate::common;
use crate::common::{Backend, TestApp};
use browser::Browser;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub const PASSWORD: &str = "correct horse battery staple";

/// Starts a server with org `acme` whose owner `owner@acme.test` has a password.
pub async fn app_with_owner(backend: Backend) -> (TestApp, String) {
    let app = TestApp::spawn(backend).await.expect("server");
    let key = app.bootstrap("acme", "owner@acme.test").await;
    let (s, v) = app.post("/api/auth/password", &key, json!({"new_password": PASSWORD})).await;
    assert_eq!(s, StatusCode::OK, "set the owner's password: {v}");
    (app, key)
}

pub(super) fn tag(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_owned()
}

/// The seed guide's workflow: create a group, give it organization permissions, add a
/// member to it by invitation, grant the group a project and the member one object
/// of another project; the member, signed in in a second browser, sees exactly that.
async fn seed_workflow_end_to_end(backend: Backend) {
    let (app, key) = app_with_owner(backend).await;
    let t = tag(backend);
    // Objects the console lists but does not create.
    let (_, seed) = app.post("/v1/project", &key, json!({"name": "Seed"})).await;
    let (_, secret) = app.post("/v1/project", &key, json!({"name": "Secret"})).await;
    let (_, _exp_a) = app.post("/v1/experiment", &key, json!({"name": "baseline", "project_id": id_of(&seed)})).await;
    let (_, exp_b) =
        app.post("/v1/experiment", &key, json!({"name": "hidden-run", "project_id": id_of(&secret)})).await;
    let (_, exp_c) =
        app.post("/v1/experiment", &key, json!({"name": "shared-run", "project_id": id_of(&secret)})).await;
    let (s, _) = app.post("/v1/dataset", &key, json!({"name": "golden", "project_id": id_of(&seed)})).await;
    assert_eq!(s, StatusCode::OK);

    let owner = Browser::start(&app.base, t, true).await;
    owner.go("/").await;
    owner.wait_path("/login").await;
    owner.check("sign-in").await;
    owner.sign_in("owner@acme.test", PASSWORD).await;
    let text = owner.wait_text("Projects").await;
    assert!(text.contains("Seed") && text.contains("Secret"), "the owner sees both projects: {text}");
    owner.check("projects").await;

    // 1. Create a group.
    owner.go("/o/acme/settings/groups").await;
    owner.check("groups").await;
    owner.click("button[commandfor=create-dialog]").await;
    owner.fill("#create-dialog #name", "Reviewers").await;
    owner.fill("#create-dialog #description", "Read the seed project and the audit log").await;
    owner.click("#create-dialog button.primary").await;
    owner.wait_text("Group created").await;
    let group_path = owner.path().await;
    let group_id = group_path.split('/').nth(5).expect("group id").split('?').next().expect("id").to_owned();

    // 2. Its organization permissions, checked from the real rows after saving.
    owner.click("input[value=read_audit_logs]").await;
    owner.click("#group-permissions button.primary").await;
    owner.wait_text("Permissions saved").await;
    assert!(owner.checked("input[value=read_audit_logs]").await, "the saved permission is shown checked");
    assert!(!owner.checked("input[value=manage_settings]").await);
    let (_, acls) = app.get(&format!("/v1/acl/list_org?org_name=acme&group_id={group_id}"), &key).await;
    let rows = acls.as_array().expect("acls");
    assert_eq!(rows.len(), 1, "one ACL row: {acls}");
    assert!(rows[0]["expires_at"].is_null(), "no expiry asked for: {acls}");
    // Again with an expiry: granted until then, and shown by the permission.
    owner.set_value("#group-expires", "2099-06-30T08:00").await;
    owner.click("#group-permissions button.primary").await;
    owner.wait_text("Permissions saved").await;
    let badge = owner.wait_for("[data-expires=read_audit_logs]").await;
    assert!(badge.contains("2099-06-30 08:00"), "{badge}");
    owner.check("group-permissions").await;
    let (_, acls) = app.get(&format!("/v1/acl/list_org?org_name=acme&group_id={group_id}"), &key).await;
    let rows = acls.as_array().expect("acls");
    assert_eq!(rows.len(), 1, "one ACL row: {acls}");
    assert!(rows[0]["expires_at"].as_str().is_some_and(|t| t.starts_with("2099-06-30T08:00")), "{acls}");
    assert_eq!(rows[0]["object_type"], "org_audit_logs");
    assert_eq!(rows[0]["permission"], "read");

    // 3. Add a member: invite into the group; the invitation link is shown once.
    owner.go("/o/acme/settings/members").await;
    owner.click("button[commandfor=invite-dialog]").await;
    owner.fill("#emails", "member@acme.test").await;
    owner.select("#invite-group", &group_id).await;
    owner.check("members-invite-dialog").await;
    owner.click("#invite-dialog button.primary").await;
    owner.wait_text("Invitation links").await;
    let link = owner
        .client
        .find(fantoccini::Locator::Css("code[data-invitation]"))
        .await
        .expect("link")
        .text()
        .await
        .expect("text");
    assert!(link.starts_with("/invitation?token="), "{link}");
    let pending = owner.wait_for("#pending-invitations").await;
    assert!(pending.contains("member@acme.test") && pending.contains("Reviewers"), "listed as pending: {pending}");
    owner.check("members-invited").await;

    // The member accepts in a second browser and sets a password.
    let member = Browser::start(&app.base, t, true).await;
    member.go(&link).await;
    member.check("accept-invitation").await;
    member.fill("#given_name", "Mia").await;
    member.fill("#family_name", "Member").await;
    member.fill("#password", "short").await;
    member.click("form button[type=submit]").await;
    let text = member.wait_text("password").await;
    assert!(member.has("#password-error").await, "a weak password is refused next to the field: {text}");
    member.fill("#password", PASSWORD).await;
    member.click("form button[type=submit]").await;
    member.wait_path("/o/acme/projects").await;
    let text = member.text().await;
    assert!(!text.contains("Seed") && !text.contains("Secret"), "no project yet: {text}");
    member.check("member-no-projects").await;

    // 4. A project-scoped grant: Reviewers read Seed.
    owner.go("/o/acme/settings/members").await;
    let text = owner.wait_text("Mia Member").await;
    assert!(text.contains("Reviewers"), "the member's group is listed: {text}");
    owner.check("members").await;
    // The members list is searched on the server (it is paged, 50 to a page).
    owner.fill("#member-search", "mia").await;
    owner.click("form[role=search] button").await;
    owner.wait_path("/o/acme/settings/members?q=mia").await;
    owner.wait_text("Clear").await;
    let rows = owner.wait_for("#members-table tbody").await;
    assert!(rows.contains("Mia Member") && !rows.contains("owner@acme.test"), "only the match: {rows}");
    owner.check("members-search").await;
    // Project permissions: find the group by name, then edit its permissions.
    owner.go(&format!("/o/acme/p/{}/permissions", id_of(&seed))).await;
    owner.fill("#find", "review").await;
    owner.click("form[role=search] button").await;
    owner.wait_path(&format!("/o/acme/p/{}/permissions?find=review", id_of(&seed))).await;
    let found = owner.wait_for("#matches").await;
    assert!(found.contains("Reviewers") && found.contains("Group"), "the group is found: {found}");
    owner.check("project-permissions-find").await;
    owner.click("#matches a[aria-label='Edit permissions of Reviewers']").await;
    owner.wait_for("#grant-dialog").await;
    assert!(owner.path().await.contains(&format!("principal=group:{group_id}")));
    owner.check("project-permissions-edit").await;
    owner.click("input[value='self:read']").await;
    owner.click("#grant-dialog button.primary").await;
    owner.wait_text("Permissions saved").await;
    let text = owner.text().await;
    assert!(text.contains("Reviewers"), "the grant is listed: {text}");
    owner.check("project-permissions").await;

    // 5. An object-scoped grant: the member reads one experiment of Secret, until a date.
    let member_id = {
        let (_, users) = app.get("/v1/user?org_name=acme&email=member@acme.test", &key).await;
        users["objects"][0]["id"].as_str().expect("member id").to_owned()
    };
    owner.go(&format!("/o/acme/p/{}/experiment/{}?principal=user:{member_id}", id_of(&secret), id_of(&exp_c))).await;
    owner.click("input[value='self:read']").await;
    owner.set_value("#expires_at", "2099-01-31T12:00").await;
    owner.click("#grant-dialog button.primary").await;
    owner.wait_text("Permissions saved").await;
    let text = owner.text().await;
    assert!(text.contains("Mia Member") && text.contains("2099-01-31 12:00"), "grant with its expiry: {text}");
    owner.check("object-permissions").await;

    // Explain and who-can on the Seed project, about the member.
    owner.go(&format!("/o/acme/p/{}/permissions?explain_user={member_id}&explain_perm=read", id_of(&seed))).await;
    let text = owner.wait_text("Explain").await;
    let result = owner
        .client
        .find(fantoccini::Locator::Css("#explain-result"))
        .await
        .expect("result")
        .text()
        .await
        .expect("text");
    assert!(result.contains("can") && result.contains("via group Reviewers"), "explain names the group: {result}");
    assert!(text.contains("via group Reviewers"), "who-can shows the source: {text}");
    owner.check("explain").await;

    // 6. The member sees exactly what the grants say.
    member.go("/o/acme/projects").await;
    let text = member.text().await;
    assert!(text.contains("Seed"), "Seed is readable: {text}");
    assert!(!text.contains("Secret"), "Secret is not (only one experiment in it is): {text}");
    assert!(text.contains("Audit log"), "the audit log is in the nav: {text}");
    assert!(!text.contains("Service accounts"), "owners only: {text}");
    assert!(!text.contains("Members"), "members are not readable: {text}");
    member.check("member-projects").await;
    member.go(&format!("/o/acme/p/{}", id_of(&seed))).await;
    let text = member.text().await;
    assert!(text.contains("baseline") && text.contains("golden"), "the project's objects: {text}");
    assert!(!member.has("a[aria-label^='Permissions of']").await, "no Manage access, no permission links");
    member.check("member-project").await;
    member.go(&format!("/o/acme/p/{}/experiment/{}", id_of(&secret), id_of(&exp_c))).await;
    let text = member.text().await;
    assert!(
        text.contains("shared-run") && text.contains("Manage access"),
        "the experiment is readable, its grants are not: {text}"
    );
    member.go(&format!("/o/acme/p/{}/experiment/{}", id_of(&secret), id_of(&exp_b))).await;
    let text = member.text().await;
    assert!(text.contains("Not found"), "another experiment of Secret is a 404: {text}");
    member.go("/o/acme/settings/audit-log").await;
    member.wait_text("Audit log").await;
    member.check("member-audit-log").await;

    // 7. A refused action shows its message: the last owner cannot be removed.
    let (_, me) = app.get("/v1/user?org_name=acme&email=owner@acme.test", &key).await;
    let owner_id = me["objects"][0]["id"].as_str().expect("owner id").to_owned();
    owner.go("/o/acme/settings/members").await;
    owner.click(&format!("form[action$='/{owner_id}/remove'] button")).await;
    let refusal = owner.wait_for(".row-error").await;
    assert!(refusal.contains("Owners group cannot be left empty"), "the refusal says why: {refusal}");
    owner.check("members-refused").await;
    let (_, still) = app.get("/v1/user?org_name=acme", &key).await;
    assert_eq!(crate::common::ids(&still).len(), 2, "nobody was removed");

    member.close().await;
    owner.close().await;
    app.stop().await;
}

on_both_backends!(
    #[ignore = "needs Chromium, chromedriver and axe-core: scripts/test runs it"]
    seed_workflow_end_to_end
);

/// API keys shown once, service accounts and their tokens, the audit log's filters
/// and chain verification, roles, the administration objects, and "view as".
async fn keys_tokens_audit_and_settings(backend: Backend) {
    let (app, key) = app_with_owner(backend).await;
    let t = tag(backend);
    let (_, proj) = app.post("/v1/project", &key, json!({"name": "Seed"})).await;
    let owner = Browser::start(&app.base, t, true).await;
    owner.sign_in("owner@acme.test", PASSWORD).await;

    // An API key is shown once, with a copy button, and works.
    owner.go("/o/acme/settings/api-keys").await;
    owner.click("button[commandfor=create-dialog]").await;
    owner.fill("#key-name", "ci").await;
    owner.click("#create-dialog button.primary").await;
    owner.wait_for("#new-secret").await;
    let raw = owner
        .client
        .find(fantoccini::Locator::Css("#secret-value"))
        .await
        .expect("secret")
        .prop("value")
        .await
        .expect("value")
        .expect("a value");
    assert!(raw.starts_with("sk-"), "{raw}");
    assert!(owner.has("#copy-secret").await);
    owner.check("api-key-created").await;
    let (s, _) = app.get("/v1/project", &raw).await;
    assert_eq!(s, StatusCode::OK, "the new key authenticates");
    owner.go("/o/acme/settings/api-keys").await;
    assert!(!owner.html().await.contains(&raw), "never shown again");
    let text = owner.text().await;
    assert!(text.contains("ci"), "listed by name: {text}");
    owner.check("api-keys").await;

    // A service account with its first token, shown once; the token works.
    owner.go("/o/acme/settings/service-accounts").await;
    owner.click("button[commandfor=create-dialog]").await;
    owner.fill("#sa-name", "deploy-bot").await;
    owner.fill("#sa-token", "first").await;
    owner.click("#create-dialog button.primary").await;
    owner.wait_for("#new-secret").await;
    let token = owner
        .client
        .find(fantoccini::Locator::Css("#secret-value"))
        .await
        .expect("secret")
        .prop("value")
        .await
        .expect("value")
        .expect("a value");
    assert!(token.starts_with("bt-st-"), "{token}");
    let (s, _) = app.get("/v1/project", &token).await;
    assert_eq!(s, StatusCode::OK, "the token authenticates");
    owner.check("service-accounts").await;

    // Roles: create one, give it permissions and inheritance.
    owner.go("/o/acme/settings/roles").await;
    owner.click("button[commandfor=create-dialog]").await;
    owner.fill("#create-dialog #name", "Auditor").await;
    owner.click("#create-dialog button.primary").await;
    owner.wait_text("Role created").await;
    owner.click("input[value='read:any']").await;
    owner.click("input[value='read_acls:project']").await;
    owner.click("form button.primary").await;
    owner.wait_text("Role saved").await;
    assert!(owner.checked("input[value='read_acls:project']").await);
    owner.check("role").await;
    let (_, roles) = app.get("/v1/role?org_name=acme&role_name=Auditor", &key).await;
    let perms = roles["objects"][0]["member_permissions"].as_array().expect("perms").len();
    assert_eq!(perms, 2, "{roles}");
    owner.go("/o/acme/settings/roles").await;
    owner.check("roles").await;

    // Administration objects.
    owner.go("/o/acme/settings/environments").await;
    owner.click("button[commandfor=new-environments]").await;
    owner.fill("#environments-name", "Production").await;
    owner.fill("#environments-slug", "production").await;
    owner.click("#new-environments button.primary").await;
    owner.wait_text("Created").await;
    owner.check("environments").await;
    owner.go("/o/acme/settings/env-vars").await;
    owner.click("button[commandfor=new-env-vars]").await;
    owner.fill("#env-vars-name", "SEARCH_KEY").await;
    owner.fill("#env-vars-value", "s3cret-value-123").await;
    owner.click("#new-env-vars button.primary").await;
    owner.wait_text("Created").await;
    assert!(!owner.html().await.contains("s3cret-value-123"), "the value is never shown");
    owner.check("env-vars").await;
    owner.go("/o/acme/settings/ai-providers").await;
    owner.click("button[commandfor=new-ai-providers]").await;
    owner.fill("#ai-providers-name", "OPENAI_API_KEY").await;
    owner.fill("#ai-providers-secret", "sk-openai-abcdefghijklmnop").await;
    owner.click("#new-ai-providers button.primary").await;
    owner.wait_text("Created").await;
    assert!(!owner.html().await.contains("sk-openai-abcdefghijklmnop"), "previews only");
    owner.check("ai-providers").await;
    owner.go(&format!("/o/acme/p/{}/settings", id_of(&proj))).await;
    owner.click("button[commandfor=new-tags]").await;
    owner.fill("#tags-name", "needs-review").await;
    owner.click("#new-tags button.primary").await;
    owner.wait_text("needs-review").await;
    // An online scoring rule through its dialog: a filter that is not BTQL is refused
    // next to the field, with what was typed kept; corrected, the rule is listed.
    owner.click("button[commandfor=new-online-scoring]").await;
    owner.fill("#online-name", "Quality").await;
    owner.set_value("#online-rate", "0.5").await;
    owner.click("input[value='global:ExactMatch']").await;
    owner.fill("#online-filter", "metadata.env = ").await;
    owner.click("#online-form button.primary").await;
    let refusal = owner.wait_for("#online-filter-error").await;
    assert!(refusal.contains("not a BTQL expression"), "{refusal}");
    let typed = owner
        .client
        .find(fantoccini::Locator::Css("#online-name"))
        .await
        .expect("name")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(typed.as_deref(), Some("Quality"), "the name typed is kept");
    assert!(owner.checked("input[value='global:ExactMatch']").await, "the scorer picked stays picked");
    owner.check("online-scoring-refused").await;
    owner.fill("#online-filter", "metadata.env = 'prod'").await;
    owner.click("#online-form button.primary").await;
    let text = owner.wait_text("Created").await;
    assert!(text.contains("Quality") && text.contains("50%") && text.contains("ExactMatch"), "listed: {text}");
    owner
        .client
        .execute("document.getElementById('online-scoring').scrollIntoView(); return true;", vec![])
        .await
        .expect("scroll");
    owner.check("online-scoring-rules").await;
    let (_, rules) = app.get(&format!("/v1/project_score?project_id={}&score_type=online", id_of(&proj)), &key).await;
    assert_eq!(rules["objects"][0]["config"]["online"]["btql_filter"], "metadata.env = 'prod'");
    owner.fill("#comparison_key", "input.question").await;
    owner.click("form[action$='/settings'] button").await;
    owner.wait_text("Comparison key saved").await;
    owner.check("project-configuration").await;
    let (_, p) = app.get(&format!("/v1/project/{}", id_of(&proj)), &key).await;
    assert_eq!(p["settings"]["comparison_key"], "input.question");

    // The audit log: filters and chain verification.
    owner.go("/o/acme/settings/audit-log?range=24h").await;
    let text = owner.wait_text("Audit log").await;
    assert!(text.contains("role.created") && text.contains("api_key.created"), "{text}");
    owner.check("audit-log").await;
    owner.go("/o/acme/settings/audit-log?range=24h&event_type=role.created").await;
    let rows = owner.wait_for("#audit-table tbody").await;
    assert!(rows.contains("role.created") && !rows.contains("api_key.created"), "filtered by event type: {rows}");
    owner.click("#verify-chain").await;
    let status = owner.wait_for("#chain-status").await;
    assert!(status.contains("intact"), "{status}");
    owner.check("audit-log-verified").await;

    // An owner views the console as a member: marked on every page, checked as them.
    let (s, v) = app
        .patch(
            "/v1/organization/members",
            &key,
            json!({"invite_users": {"emails": ["viewer@acme.test"], "group_name": "Viewers"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = v["invitations"][0]["token"].as_str().expect("token");
    let body = json!({"token": token, "password": PASSWORD});
    let (s, _, v) = app.send(reqwest::Method::POST, "/api/invitation/accept", None, Some(body), &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let viewer = v["user"]["id"].as_str().expect("viewer id").to_owned();
    owner.go("/o/acme/settings/members").await;
    owner.click(&format!("form[action$='/view-as']:has(input[value='{viewer}']) button")).await;
    let banner = owner.wait_for(".view-as").await;
    assert!(banner.contains("viewer@acme.test"), "{banner}");
    let text = owner.text().await;
    assert!(!text.contains("Service accounts") && !text.contains("Audit log"), "the viewer's navigation: {text}");
    owner.check("view-as").await;
    owner.click(".view-as button").await;
    owner.wait_text("Service accounts").await;
    assert!(!owner.has(".view-as").await);

    owner.close().await;
    app.stop().await;
}

mod more {
    use super::*;
    on_both_backends!(
        #[ignore = "needs Chromium, chromedriver and axe-core: scripts/test runs it"]
        keys_tokens_audit_and_settings
    );
}
