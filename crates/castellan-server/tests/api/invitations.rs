//! Pending invitations: listed to those who may invite (never with their tokens),
//! and revoked, after which the token no longer works.

use crate::common;
use crate::common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn a_revoked_invitation_is_no_longer_pending_and_cannot_be_accepted(b: Backend) {
    let Some(app) = TestApp::spawn(b).await else { return };
    let owner = app.bootstrap("acme", "owner@acme.example").await;
    let (s, out) = app
        .patch(
            "/v1/organization/members",
            &owner,
            json!({"invite_users": {"emails": ["new@acme.example"], "group_name": "Viewers"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let id = out["invitations"][0]["id"].as_str().expect("id").to_owned();
    let token = out["invitations"][0]["token"].as_str().expect("token").to_owned();
    let (s, list) = app.get("/v1/organization/invitations?org_name=acme", &owner).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(common::ids(&list), vec![id.clone()]);
    assert!(list["objects"][0].get("token").is_none(), "never the token: {list}");
    assert_eq!(list["objects"][0]["email"], "new@acme.example");

    let (s, v) = app.delete(&format!("/v1/organization/invitations/{id}?org_name=acme"), &owner).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, list) = app.get("/v1/organization/invitations?org_name=acme", &owner).await;
    assert!(common::ids(&list).is_empty(), "no longer pending: {list}");
    let (s, v) = app.delete(&format!("/v1/organization/invitations/{id}?org_name=acme"), &owner).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "revoked twice: {v}");
    let body = json!({"token": token, "password": "correct horse battery staple"});
    let (s, _, v) = app.send(Method::POST, "/api/invitation/accept", None, Some(body), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the token no longer works: {v}");
    let (_, log) = app.get("/v1/audit_log?org_name=acme&event_type=invitation.revoked", &owner).await;
    assert_eq!(log["objects"].as_array().map(Vec::len), Some(1), "audited: {log}");
    app.stop().await;
}

on_both_backends!(a_revoked_invitation_is_no_longer_pending_and_cannot_be_accepted);
