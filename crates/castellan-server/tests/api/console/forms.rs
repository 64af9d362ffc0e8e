//! Forms added to the console after it landed, posted over plain HTTP as a browser
//! without scripts posts them: creating an online scoring rule (through the API's own
//! `POST /v1/project_score` handler and `Permit` path, errors next to the field and
//! what was typed kept), the group Permissions dialog's expiry, and invitation links.

use super::lists::{get, signed_in};
use super::{app_with_owner, PASSWORD};
use crate::common;
use crate::common::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The `_csrf` value of a page's first form.
fn csrf(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a form with a CSRF field");
    let rest = &html[at + 20..];
    rest[..rest.find('"').expect("end")].to_owned()
}

async fn online_scoring_rules_are_created_in_the_console(backend: Backend) {
    let (app, key) = app_with_owner(backend).await;
    let b = app.base.clone();
    let (_, p) = app.post("/v1/project", &key, json!({"name": "Scored"})).await;
    let pid = p["id"].as_str().expect("project").to_owned();
    // A scorer prompt of the project (an LLM judge) and a plain prompt, which is not offered.
    let judge = json!({"project_id": pid, "name": "Correctness", "slug": "correctness", "function_type": "scorer",
        "prompt_data": {"prompt": {"type": "chat", "messages": [{"role": "user", "content": "Is {{output}} right?"}]},
            "options": {"model": "gpt-4o-mini"},
            "parser": {"type": "llm_classifier", "use_cot": false, "choice_scores": {"Y": 1, "N": 0}}}});
    let (s, j) = app.post("/v1/prompt", &key, judge).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let judge_id = j["id"].as_str().expect("judge").to_owned();
    let (s, _) = app.post("/v1/prompt", &key, json!({"project_id": pid, "name": "Greeter", "slug": "greeter"})).await;
    assert_eq!(s, StatusCode::OK);

    let http = signed_in(&app, "owner@acme.test").await;
    let page_url = format!("{b}/o/acme/p/{pid}/settings");
    let (s, html) = get(&http, &page_url).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("id=\"online-form\""), "the dialog is offered to who may update the project");
    assert!(html.contains("value=\"global:ExactMatch\"") && html.contains("value=\"global:Levenshtein\""));
    assert!(html.contains(&format!("value=\"function:{judge_id}\"")), "the project's scorer prompt is offered");
    assert!(!html.contains("Greeter"), "a prompt that is not a scorer is not");
    let token = csrf(&html);
    let post = |form: Vec<(&'static str, String)>| {
        let mut f: Vec<(&str, String)> = vec![("_csrf", token.clone())];
        f.extend(form);
        http.post(format!("{b}/o/acme/p/{pid}/settings/online-scoring")).form(&f).send()
    };
    let rules = || async {
        let (_, v) = app.get(&format!("/v1/project_score?project_id={pid}&score_type=online"), &key).await;
        v["objects"].as_array().expect("scores").clone()
    };

    // No scorer: refused next to the scorers, what was typed kept.
    let r = post(vec![
        ("name", "Quality".into()),
        ("sampling_rate", "0.25".into()),
        ("btql_filter", "metadata.env = 'prod'".into()),
        ("apply_to_root_span", "1".into()),
    ])
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.expect("body");
    assert!(html.contains("id=\"online-scorers-error\"") && html.contains("choose at least one scorer"), "{html}");
    assert!(html.contains("value=\"Quality\"") && html.contains("value=\"0.25\""), "typed values kept");
    assert!(html.contains("value=\"metadata.env = &#39;prod&#39;\""), "the filter kept: {html}");
    assert!(rules().await.is_empty(), "nothing was created");

    // A sampling rate out of range: the API's refusal, next to that field.
    let r = post(vec![
        ("name", "Quality".into()),
        ("sampling_rate", "1.5".into()),
        ("scorer", "global:ExactMatch".into()),
        ("scorer", format!("function:{judge_id}")),
    ])
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.expect("body");
    assert!(html.contains("id=\"online-rate-error\"") && html.contains("sampling_rate"), "{html}");
    assert!(
        html.contains("value=\"global:ExactMatch\" checked")
            && html.contains(&format!("value=\"function:{judge_id}\" checked")),
        "the scorers picked stay picked"
    );
    // Not a number at all.
    let r = post(vec![
        ("name", "Quality".into()),
        ("sampling_rate", "lots".into()),
        ("scorer", "global:ExactMatch".into()),
    ])
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("body").contains("`lots` is not a number"));
    // A filter that is not BTQL.
    let r = post(vec![
        ("name", "Quality".into()),
        ("sampling_rate", "0.5".into()),
        ("scorer", "global:ExactMatch".into()),
        ("btql_filter", "metadata.env = ".into()),
    ])
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.expect("body");
    assert!(html.contains("id=\"online-filter-error\"") && html.contains("not a BTQL expression"), "{html}");
    assert!(rules().await.is_empty(), "nothing was created");

    // A good one: exactly this rule, through the API's handler.
    let r = post(vec![
        ("name", "Quality".into()),
        ("sampling_rate", "0.25".into()),
        ("scorer", "global:Levenshtein".into()),
        ("scorer", format!("function:{judge_id}")),
        ("btql_filter", "metadata.env = 'prod'".into()),
        ("apply_to_span_names", "retrieve, answer".into()),
        ("skip_logging", "1".into()),
        ("description", "Answers in production".into()),
    ])
    .await
    .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let got = rules().await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["name"], "Quality");
    assert_eq!(got[0]["description"], "Answers in production");
    assert_eq!(
        got[0]["config"]["online"],
        json!({
            "sampling_rate": 0.25,
            "scorers": [{"type": "global", "name": "Levenshtein"}, {"type": "function", "id": judge_id}],
            "btql_filter": "metadata.env = 'prod'",
            "apply_to_root_span": false,
            "apply_to_span_names": ["retrieve", "answer"],
            "skip_logging": true,
        })
    );
    let (_, html) = get(&http, &page_url).await;
    for cell in ["Quality", "25%", "Levenshtein, Correctness (not logged)", "spans named retrieve, answer"] {
        assert!(html.contains(cell), "the rule is listed with `{cell}`");
    }
    let (_, log) = app.get("/v1/audit_log?org_name=acme&event_type=project_score.created", &key).await;
    assert_eq!(common::ids(&log).len(), 1, "audited as any API write: {log}");

    // Someone who may only read the project is not offered the dialog, and a post
    // anyway is refused by the API's Permit path, changing nothing.
    let (s, v) = app
        .patch(
            "/v1/organization/members",
            &key,
            json!({"invite_users": {"emails": ["reader@acme.test"], "group_name": "Viewers"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let invite = v["invitations"][0]["token"].as_str().expect("token");
    let body = json!({"token": invite, "password": PASSWORD});
    let (s, _, v) = app.send(reqwest::Method::POST, "/api/invitation/accept", None, Some(body), &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let reader = signed_in(&app, "reader@acme.test").await;
    let (s, html) = get(&reader, &page_url).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!html.contains("id=\"online-form\""), "no dialog for a reader");
    let token = csrf(&html);
    let r = reader
        .post(format!("{b}/o/acme/p/{pid}/settings/online-scoring"))
        .form(&[
            ("_csrf", token.as_str()),
            ("name", "Sneaky"),
            ("sampling_rate", "1"),
            ("scorer", "global:ExactMatch"),
            ("apply_to_root_span", "1"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let names: Vec<Value> = rules().await.iter().map(|r| r["name"].clone()).collect();
    assert_eq!(names, vec![json!("Quality")], "nothing else was created");
    app.stop().await;
}

on_both_backends!(online_scoring_rules_are_created_in_the_console);

/// The group Permissions dialog grants with an expiry, shows it by each permission,
/// and refuses one in the past next to the field, keeping what was typed.
async fn group_permissions_take_an_expiry(backend: Backend) {
    let (app, key) = app_with_owner(backend).await;
    let b = app.base.clone();
    let (_, g) = app.post("/v1/group", &key, json!({"name": "Auditors"})).await;
    let gid = g["id"].as_str().expect("group").to_owned();
    let http = signed_in(&app, "owner@acme.test").await;
    let url = format!("{b}/o/acme/settings/groups/{gid}");
    let (_, html) = get(&http, &url).await;
    assert!(html.contains("id=\"group-expires\""), "the dialog has an expiry field");
    let token = csrf(&html);
    let rows = || async {
        let (_, v) = app.get(&format!("/v1/acl/list_org?org_name=acme&group_id={gid}"), &key).await;
        let mut got: Vec<String> = v
            .as_array()
            .expect("acls")
            .iter()
            .map(|a| {
                format!(
                    "{} {} {}",
                    a["object_type"].as_str().unwrap_or(""),
                    a["permission"].as_str().unwrap_or(""),
                    a["expires_at"].as_str().map(|t| &t[..16]).unwrap_or("never")
                )
            })
            .collect();
        got.sort();
        got
    };

    // Two permissions until a date.
    let r = http
        .post(&url)
        .form(&[
            ("_csrf", token.as_str()),
            ("perm", "read_audit_logs"),
            ("perm", "projects_read"),
            ("expires_at", "2099-01-31T12:00"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(rows().await, vec!["org_audit_logs read 2099-01-31T12:00", "org_project read 2099-01-31T12:00"]);
    let (_, html) = get(&http, &url).await;
    assert!(
        html.contains("data-expires=\"read_audit_logs\">expires 2099-01-31 12:00")
            && html.contains("data-expires=\"projects_read\">expires 2099-01-31 12:00"),
        "each granted permission shows its expiry"
    );
    assert!(!html.contains("data-expires=\"manage_members\""), "no expiry on what is not granted");

    // Adding one without an expiry leaves the others' expiry as it is.
    let r = http
        .post(&url)
        .form(&[
            ("_csrf", token.as_str()),
            ("perm", "read_audit_logs"),
            ("perm", "projects_read"),
            ("perm", "manage_members"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        rows().await,
        vec!["org_audit_logs read 2099-01-31T12:00", "org_member create never", "org_project read 2099-01-31T12:00"]
    );

    // A date in the past: refused next to the field, nothing changed, what was typed kept.
    let r = http
        .post(&url)
        .form(&[("_csrf", token.as_str()), ("perm", "remove_members"), ("expires_at", "2001-02-03T04:05")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.expect("body");
    assert!(html.contains("id=\"group-expires-error\"") && html.contains("is not in the future"), "{html}");
    assert!(html.contains("value=\"2001-02-03T04:05\""), "the expiry typed is kept");
    assert!(html.contains("value=\"remove_members\" checked"), "the boxes checked are kept");
    assert!(!html.contains("value=\"manage_members\" checked"), "as typed, not as stored");
    assert_eq!(rows().await.len(), 3, "nothing changed");

    // A new expiry grants the checked permissions again until then.
    let r = http
        .post(&url)
        .form(&[("_csrf", token.as_str()), ("perm", "read_audit_logs"), ("expires_at", "2098-05-06T07:08")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(rows().await, vec!["org_audit_logs read 2098-05-06T07:08"]);
    app.stop().await;
}

/// Invitation links are whole on the configured public URL, and never built from the
/// request's Host: without a public URL the console shows the path and says why.
async fn invitation_links_use_the_public_url_only(backend: Backend) {
    // Without a public URL: a path, and a note; a forged Host changes nothing.
    let (app, _key) = app_with_owner(backend).await;
    let http = signed_in(&app, "owner@acme.test").await;
    let url = format!("{}/o/acme/settings/members", app.base);
    let (_, html) = get(&http, &url).await;
    let token = csrf(&html);
    let r = http
        .post(&url)
        .header("host", "evil.example")
        .form(&[("_csrf", token.as_str()), ("emails", "path@acme.test")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.expect("body");
    assert!(html.contains(">/invitation?token=inv-"), "only the path: {html}");
    assert!(html.contains("id=\"no-public-url\"") && html.contains("public_url"), "and why");
    assert!(!html.contains("evil.example"), "the Host header is not used");
    app.stop().await;

    // With one: whole links on it, whatever the Host.
    let db = common::Db::fresh(backend).expect("database");
    let config = castellan_server::config::Config {
        public_url: Some("https://castellan.example.test/".into()),
        ..common::test_config()
    };
    let app = common::TestApp::spawn_on(db, config, castellan_server::access::system_clock()).await;
    let key = app.bootstrap("acme", "owner@acme.test").await;
    let (s, _) = app.post("/api/auth/password", &key, json!({"new_password": PASSWORD})).await;
    assert_eq!(s, StatusCode::OK);
    let http = signed_in(&app, "owner@acme.test").await;
    let url = format!("{}/o/acme/settings/members", app.base);
    let (_, html) = get(&http, &url).await;
    let token = csrf(&html);
    let r = http
        .post(&url)
        .header("host", "evil.example")
        .form(&[("_csrf", token.as_str()), ("emails", "whole@acme.test")])
        .send()
        .await
        .expect("post");
    let html = r.text().await.expect("body");
    let at = html.find("https://castellan.example.test/invitation?token=inv-").expect("a whole link on the public URL");
    assert!(!html.contains("id=\"no-public-url\"") && !html.contains("evil.example"));
    // The link works: its token accepts the invitation.
    let link = &html[at..];
    let link = &link[..link.find('<').expect("end")];
    let token = link.split("token=").nth(1).expect("token");
    let body = json!({"token": token, "password": PASSWORD});
    let (s, _, v) = app.send(reqwest::Method::POST, "/api/invitation/accept", None, Some(body), &[]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.stop().await;
}

mod more {
    use super::*;
    on_both_backends!(group_permissions_take_an_expiry, invitation_links_use_the_public_url_only);
}
