//! The main forms without JavaScript: plain HTTP form posts, as a browser with
//! scripts off sends them (the session cookie and the form's `_csrf` field).

use super::{app_with_owner, PASSWORD};
use crate::common;
use crate::common::Backend;
use reqwest::StatusCode;

/// A cookie-keeping client that does not follow redirects.
fn client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// The `_csrf` value of the first form of a page.
fn csrf(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a form with a CSRF field");
    let rest = &html[at + 20..];
    rest[..rest.find('"').expect("end")].to_owned()
}

async fn page(http: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let r = http.get(url).send().await.expect("get");
    (r.status(), r.text().await.expect("body"))
}

async fn main_forms_work_as_plain_form_posts(backend: Backend) {
    let (app, key) = app_with_owner(backend).await;
    let http = client();
    let b = &app.base;

    // Signing in is a form post that sets the session and answers with a redirect.
    let r = http
        .post(format!("{b}/login"))
        .form(&[("email", "owner@acme.test"), ("password", "wrong password!!")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = r.text().await.expect("body");
    assert!(
        body.contains("wrong email or password") && body.contains("value=\"owner@acme.test\""),
        "the error is shown and the email kept: {body}"
    );
    let r = http
        .post(format!("{b}/login"))
        .form(&[("email", "owner@acme.test"), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // A write without the form's CSRF token is refused and changes nothing.
    let r = http.post(format!("{b}/o/acme/settings/groups")).form(&[("name", "NoToken")]).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (s, html) = page(&http, &format!("{b}/o/acme/settings/groups")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!html.contains("NoToken"));
    let token = csrf(&html);

    // Create a group.
    let r = http
        .post(format!("{b}/o/acme/settings/groups"))
        .form(&[("_csrf", token.as_str()), ("name", "Plain"), ("description", "made without scripts")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    let (_, groups) = app.get("/v1/group?org_name=acme&group_name=Plain", &key).await;
    let gid = groups["objects"][0]["id"].as_str().expect("the group exists").to_owned();
    assert!(location.contains(&gid));

    // A name already taken: refused next to the field, what was typed kept.
    let r = http
        .post(format!("{b}/o/acme/settings/groups"))
        .form(&[("_csrf", token.as_str()), ("name", "Plain"), ("description", "again")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.expect("body");
    assert!(html.contains("id=\"name-error\"") && html.contains("value=\"again\""), "{html}");

    // Its permissions: Manage members and Read on all projects.
    let r = http
        .post(format!("{b}/o/acme/settings/groups/{gid}"))
        .form(&[("_csrf", token.as_str()), ("perm", "manage_members"), ("perm", "projects_read")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, acls) = app.get(&format!("/v1/acl/list_org?org_name=acme&group_id={gid}"), &key).await;
    let mut got: Vec<String> = acls
        .as_array()
        .expect("acls")
        .iter()
        .map(|a| format!("{} {}", a["object_type"].as_str().unwrap_or(""), a["permission"].as_str().unwrap_or("")))
        .collect();
    got.sort();
    assert_eq!(got, vec!["org_member create", "org_project read"]);
    let (_, html) = page(&http, &format!("{b}/o/acme/settings/groups/{gid}")).await;
    assert!(html.contains("value=\"manage_members\" checked"), "shown checked from the rows");

    // Invite a member into it.
    let r = http
        .post(format!("{b}/o/acme/settings/members"))
        .form(&[("_csrf", token.as_str()), ("emails", "plain@acme.test"), ("group_id", gid.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.expect("body");
    assert!(html.contains("/invitation?token="), "the invitation link is shown");

    // Create a project and grant the group Update on it.
    let r = http
        .post(format!("{b}/o/acme/projects"))
        .form(&[("_csrf", token.as_str()), ("name", "Plain project")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, projects) = app.get("/v1/project?org_name=acme&project_name=Plain%20project", &key).await;
    let pid = projects["objects"][0]["id"].as_str().expect("project").to_owned();
    let principal = format!("group:{gid}");
    let r = http
        .post(format!("{b}/o/acme/p/{pid}/permissions"))
        .form(&[
            ("_csrf", token.as_str()),
            ("principal", principal.as_str()),
            ("cell", "self:update"),
            ("cell", "experiment:read"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, acls) = app.get(&format!("/v1/acl?object_type=project&object_id={pid}&group_id={gid}"), &key).await;
    let mut got: Vec<String> = crate::common::ids(&acls).iter().map(|_| String::new()).collect();
    got.clear();
    for a in acls["objects"].as_array().expect("acls") {
        got.push(format!(
            "{} {}",
            a["permission"].as_str().unwrap_or(""),
            a["restrict_object_type"].as_str().unwrap_or("-")
        ));
    }
    got.sort();
    assert_eq!(got, vec!["read experiment", "update -"]);

    // Change the owner's password, then sign out.
    let r = http
        .post(format!("{b}/account/password"))
        .form(&[
            ("_csrf", token.as_str()),
            ("current_password", PASSWORD),
            ("new_password", "another long passphrase"),
            ("confirm_password", "another long passphrase"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = http.post(format!("{b}/logout")).form(&[("_csrf", token.as_str())]).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, _) = page(&http, &format!("{b}/o/acme/settings/groups")).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "signed out: sent to sign in");
    app.stop().await;
}

on_both_backends!(main_forms_work_as_plain_form_posts);
