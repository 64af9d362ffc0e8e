//! The console's long lists are paged on the server (50 rows a page, newest first,
//! next / previous links that are plain links) and keep their search across pages:
//! members, permission groups, a group's members, the audit log, API keys, service
//! accounts and the principals granted on a project. Plain HTTP, no script.

use super::{app_with_owner, PASSWORD};
use crate::common;
use crate::common::{Backend, TestApp};
use castellan_core::{KeyId, OrgId, UserId};
use castellan_store::{KeyKind, KeyRecord, NewKey};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// A signed-in, cookie-keeping client that does not follow redirects.
pub async fn signed_in(app: &TestApp, email: &str) -> reqwest::Client {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = http
        .post(format!("{}/login", app.base))
        .form(&[("email", email), ("password", PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in");
    http
}

/// A page's status and HTML.
pub async fn get(http: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let r = http.get(url).send().await.expect("get");
    (r.status(), r.text().await.expect("body"))
}

/// The value of every `attr="…"` that follows `marker` in the HTML.
fn after_marker(html: &str, marker: &str) -> Vec<String> {
    html.match_indices(marker)
        .map(|(i, _)| {
            let rest = &html[i + marker.len()..];
            rest[..rest.find('"').unwrap_or(rest.len())].to_owned()
        })
        .collect()
}

/// The link of a pager (`rel="next"` or `rel="prev"`), unescaped.
fn link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..at].rfind("href=\"")? + 6;
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

/// The `_csrf` value of the page's first form.
fn csrf(html: &str) -> String {
    after_marker(html, "name=\"_csrf\" value=\"").into_iter().next().expect("a form with a CSRF field")
}

/// Creates `n` service accounts named `<prefix>-000`… in Viewers; their ids.
async fn accounts(app: &TestApp, key: &str, prefix: &str, n: usize) -> Vec<String> {
    let list: Vec<Value> = (0..n).map(|i| json!({"name": format!("{prefix}-{i:03}")})).collect();
    let body = json!({"invite_users": {"service_accounts": list, "group_name": "Viewers"}});
    let (s, v) = app.patch("/v1/organization/members", key, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["added_users"].as_array().expect("added").iter().map(|u| u["id"].as_str().expect("id").to_owned()).collect()
}

async fn long_lists_are_paged_and_keep_their_search(backend: Backend) {
    let (app, key) = app_with_owner(backend).await;
    let b = app.base.clone();
    let bots = accounts(&app, &key, "bot", 60).await;
    let http = signed_in(&app, "owner@acme.test").await;

    // Members: 61 in all (the owner and 60 service accounts), 50 on the first page.
    let member_rows =
        |html: &str| after_marker(html, "<th scope=\"row\" class=\"name\"><a href=\"/o/acme/settings/members/");
    let (s, first) = get(&http, &format!("{b}/o/acme/settings/members")).await;
    assert_eq!(s, StatusCode::OK);
    let page1 = member_rows(&first);
    assert_eq!(page1.len(), 50, "one page of members");
    assert!(link(&first, "prev").is_none(), "the first page has no previous page");
    let next = link(&first, "next").expect("a next page");
    assert!(next.contains("after="), "{next}");
    let (_, second) = get(&http, &format!("{b}{next}")).await;
    let page2 = member_rows(&second);
    assert_eq!(page2.len(), 11, "the rest");
    assert!(link(&second, "next").is_none());
    let all: BTreeSet<&String> = page1.iter().chain(page2.iter()).collect();
    assert_eq!(all.len(), 61, "every member once");
    let prev = link(&second, "prev").expect("a previous page");
    let (_, back) = get(&http, &format!("{b}{prev}")).await;
    assert_eq!(member_rows(&back), page1, "previous leads back to the same first page");

    // The search narrows the list and is kept in the page links.
    let (_, found) = get(&http, &format!("{b}/o/acme/settings/members?q=BOT-05")).await;
    assert_eq!(member_rows(&found).len(), 10, "bot-050 … bot-059, whatever the case");
    assert!(found.contains("value=\"BOT-05\""), "the search box keeps what was typed");
    let (_, v) = app.get("/v1/user?org_name=acme&search=bot&limit=100", &key).await;
    assert_eq!(common::ids(&v).len(), 60, "API search: {v}");
    let (_, searched) = get(&http, &format!("{b}/o/acme/settings/members?q=bot")).await;
    assert_eq!(member_rows(&searched).len(), 50);
    let next = link(&searched, "next").expect("more bots");
    assert!(next.contains("q=bot"), "the search is kept: {next}");
    let (_, rest) = get(&http, &format!("{b}{next}")).await;
    assert_eq!(member_rows(&rest).len(), 10, "the owner is not a bot: {next}");
    let (_, none) = get(&http, &format!("{b}/o/acme/settings/members?q=nobody-like-this")).await;
    assert!(none.contains("No member’s name or email contains"), "an empty result says so");

    // Permission groups: 3 built-in and 55 made here.
    for i in 0..55 {
        let (s, v) = app.post("/v1/group", &key, json!({"name": format!("team-{i:02}")})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let group_rows =
        |html: &str| after_marker(html, "<th scope=\"row\" class=\"name\"><a href=\"/o/acme/settings/groups/");
    let (_, first) = get(&http, &format!("{b}/o/acme/settings/groups")).await;
    assert_eq!(group_rows(&first).len(), 50);
    let (_, second) = get(&http, &format!("{b}{}", link(&first, "next").expect("next"))).await;
    assert_eq!(group_rows(&second).len(), 8);
    assert!(second.contains(">Owners</a>"), "the oldest (built-in) groups come last");
    let (_, found) = get(&http, &format!("{b}/o/acme/settings/groups?q=team-0")).await;
    assert_eq!(group_rows(&found).len(), 10);

    // A group's members: a page of them, and a search for people to add.
    let (_, g) = app.post("/v1/group", &key, json!({"name": "Crowd", "member_users": bots})).await;
    let crowd = g["id"].as_str().expect("group").to_owned();
    let boxes = |html: &str| after_marker(html, "<input type=\"checkbox\" name=\"user\" value=\"");
    let (_, page) = get(&http, &format!("{b}/o/acme/settings/groups/{crowd}/members")).await;
    let shown = boxes(&page);
    assert_eq!(shown.len(), 50, "a page of the group's 60 members");
    assert!(link(&page, "next").is_some_and(|l| l.contains("page=2")));
    // Saving this page with one member unchecked takes out only that one: the ten
    // members on the next page were not listed, so they stay.
    let token = csrf(&page);
    let mut form: Vec<(&str, &str)> = vec![("_csrf", token.as_str())];
    for id in &shown {
        form.push(("listed", id.as_str()));
    }
    for id in shown.iter().skip(1) {
        form.push(("user", id.as_str()));
    }
    let r = http.post(format!("{b}/o/acme/settings/groups/{crowd}/members")).form(&form).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, g) = app.get(&format!("/v1/group/{crowd}"), &key).await;
    let left: BTreeSet<&str> =
        g["member_users"].as_array().expect("members").iter().filter_map(Value::as_str).collect();
    assert_eq!(left.len(), 59, "one member left the group");
    assert!(!left.contains(shown[0].as_str()));
    let (_, page) = get(&http, &format!("{b}/o/acme/settings/groups/{crowd}/members?q={}", "bot-00")).await;
    assert!(page.contains("People matching “bot-00”"));
    assert!(boxes(&page).contains(&shown[0]), "the search offers the member who left");

    // The audit log: 50 records a page; older, then newer again.
    let seqs = |html: &str| after_marker(html, "<p class=\"hint\">#");
    let (_, first) = get(&http, &format!("{b}/o/acme/settings/audit-log?range=24h")).await;
    let page1 = seqs(&first);
    assert_eq!(page1.len(), 50, "a page of audit records");
    let older = link(&first, "next").expect("older records");
    assert!(older.contains("before_seq=") && older.contains("range=24h"), "{older}");
    let (_, second) = get(&http, &format!("{b}{older}")).await;
    let page2 = seqs(&second);
    assert!(!page2.is_empty() && page2.iter().all(|s| !page1.contains(s)), "older records, none repeated");
    let newer = link(&second, "prev").expect("newer records");
    assert!(newer.contains("after_seq="), "{newer}");
    let (_, back) = get(&http, &format!("{b}{newer}")).await;
    assert_eq!(seqs(&back), page1, "newer leads back to the first page");
    let (_, filtered) = get(&http, &format!("{b}/o/acme/settings/audit-log?range=24h&event_type=group.created")).await;
    let next = link(&filtered, "next").expect("more group records");
    assert!(next.contains("event_type=group.created"), "the filters are kept: {next}");
    let (s, bad) = get(&http, &format!("{b}/o/acme/settings/audit-log?actor=nobody@acme.test")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(bad.contains("id=\"actor-error\""), "an unknown actor is refused next to the field");
    let (s, mine) = get(&http, &format!("{b}/o/acme/settings/audit-log?range=24h&actor=owner@acme.test")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(seqs(&mine).len(), 50, "the owner made all of these changes");

    // API keys: 56 of the owner (55 stored here beside the bootstrap key).
    let store = app.db.open().await;
    let (_, me) = app.get("/v1/user?org_name=acme&email=owner@acme.test", &key).await;
    let owner = UserId(me["objects"][0]["id"].as_str().expect("owner").parse().expect("uuid"));
    let (_, org) = app.get("/v1/organization", &key).await;
    let org = OrgId(org["objects"][0]["id"].as_str().expect("org").parse().expect("uuid"));
    let mut tx = store.write().await.expect("begin");
    for i in 0..55 {
        let id = KeyId::generate();
        let record = KeyRecord {
            id,
            kind: KeyKind::ApiKey,
            name: format!("stored-{i:02}"),
            preview_name: "sk-…test".into(),
            user_id: owner,
            org_id: Some(org),
            created: castellan_api_types::parse_time("2026-01-01T00:00:00Z").expect("time") + i,
            last_used: None,
            expires_at: None,
        };
        tx.insert_key(&NewKey { record, key_hash: format!("test-hash-{id}") }).await.expect("key");
    }
    tx.commit().await.expect("commit");
    let key_rows = |html: &str| after_marker(html, "<td><code>");
    let (_, first) = get(&http, &format!("{b}/o/acme/settings/api-keys")).await;
    assert_eq!(key_rows(&first).len(), 50);
    let (_, second) = get(&http, &format!("{b}{}", link(&first, "next").expect("next"))).await;
    assert_eq!(key_rows(&second).len(), 6);

    // Service accounts: 60, 50 on a page; the search pages too.
    let account_rows = |html: &str| after_marker(html, "<section class=\"panel\" aria-labelledby=\"sa-");
    let (_, first) = get(&http, &format!("{b}/o/acme/settings/service-accounts")).await;
    assert_eq!(account_rows(&first).len(), 50);
    let (_, second) = get(&http, &format!("{b}{}", link(&first, "next").expect("next"))).await;
    assert_eq!(account_rows(&second).len(), 10);
    let (_, found) = get(&http, &format!("{b}/o/acme/settings/service-accounts?q=bot-01")).await;
    assert_eq!(account_rows(&found).len(), 10);

    // A project's permissions: 60 principals granted, 50 on a page.
    let (_, p) = app.post("/v1/project", &key, json!({"name": "Wide"})).await;
    let pid = p["id"].as_str().expect("project").to_owned();
    let grants: Vec<Value> = bots
        .iter()
        .map(|u| json!({"object_type": "project", "object_id": pid, "user_id": u, "permission": "read"}))
        .collect();
    let (s, v) = app.post("/v1/acl/batch_update", &key, json!({"add_acls": grants})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let edit_links = |html: &str| after_marker(html, "aria-label=\"Edit permissions of ");
    let (_, first) = get(&http, &format!("{b}/o/acme/p/{pid}/permissions")).await;
    assert_eq!(edit_links(&first).len(), 50, "a page of the principals granted here");
    assert!(first.contains("Granted here <span class=\"badge subtle\">60</span>"), "the count of them all");
    let (_, second) = get(&http, &format!("{b}{}", link(&first, "next").expect("next"))).await;
    assert_eq!(edit_links(&second).len(), 10);
    // The principal picker is a search: groups and people, marked when granted here.
    let (_, found) = get(&http, &format!("{b}/o/acme/p/{pid}/permissions?find=bot-00")).await;
    let matches = after_marker(&found, "<li><strong>");
    assert_eq!(matches.len(), 10, "{matches:?}");
    assert!(found.contains("Has grants here"));
    let (_, found) = get(&http, &format!("{b}/o/acme/p/{pid}/permissions?find=crowd")).await;
    assert!(found.contains("?principal=group:"), "groups are found too");
    // Explain takes an email address; an unknown one is refused next to the field.
    let bot = &bots[3];
    let (_, e) = get(&http, &format!("{b}/o/acme/p/{pid}/permissions?explain_user={bot}&explain_perm=read")).await;
    assert!(e.contains("id=\"explain-result\"") && e.contains("direct"), "explained by id");
    let (_, e) =
        get(&http, &format!("{b}/o/acme/p/{pid}/permissions?explain_user=OWNER@acme.test&explain_perm=delete")).await;
    assert!(e.contains("id=\"explain-result\"") && e.contains("via group Owners"), "explained by email");
    let (_, e) = get(&http, &format!("{b}/o/acme/p/{pid}/permissions?explain_user=who@acme.test")).await;
    assert!(e.contains("id=\"explain-user-error\""), "an unknown email is refused");

    // The API extensions the pages use.
    let (_, v) = app.get("/v1/user?org_name=acme&user_type=service_account&search=bot-01", &key).await;
    assert_eq!(common::ids(&v).len(), 10, "service accounts by search: {v}");
    let (_, v) = app.get("/v1/user?org_name=acme&user_type=user", &key).await;
    assert_eq!(common::ids(&v).len(), 1, "people only: {v}");
    let (s, v) = app.get("/v1/user?org_name=acme&user_type=robot", &key).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = app.get("/v1/group?org_name=acme&search=crowd&with_members=false", &key).await;
    assert_eq!(v["objects"][0]["name"], "Crowd");
    assert!(v["objects"][0]["member_users"].is_null(), "no member lists: {v}");
    let (_, v) = app.get("/v1/group?org_name=acme&search=crowd", &key).await;
    assert_eq!(v["objects"][0]["member_users"].as_array().map(Vec::len), Some(59), "member lists by default");
    let (_, t) = app.post("/v1/service_token", &key, json!({"name": "t", "service_account_id": bots[5]})).await;
    assert!(t["key"].is_string(), "{t}");
    let of = format!("/v1/service_token?org_name=acme&service_account_id={},{}", bots[5], bots[6]);
    let (_, v) = app.get(&of, &key).await;
    assert_eq!(common::ids(&v).len(), 1, "the tokens of those accounts only: {v}");
    let (_, page) = app.get("/v1/audit_log?org_name=acme&limit=3&before_seq=20", &key).await;
    let got: Vec<u64> = page["objects"].as_array().expect("records").iter().filter_map(|r| r["seq"].as_u64()).collect();
    assert_eq!(got, vec![19, 18, 17]);
    let (_, page) = app.get("/v1/audit_log?org_name=acme&limit=3&after_seq=16", &key).await;
    let got: Vec<u64> = page["objects"].as_array().expect("records").iter().filter_map(|r| r["seq"].as_u64()).collect();
    assert_eq!(got, vec![19, 18, 17], "the page just after 16, newest first");
    app.stop().await;
}

on_both_backends!(long_lists_are_paged_and_keep_their_search);
