//! Test support for the data plane: principals with narrow grants, written
//! straight into the database with their change-feed entries (as the ACL endpoints
//! would), and the Braintrust SDK's environment.

#![allow(dead_code)]

use super::common::TestApp;
use castellan_core::{AclId, GroupId, KeyId, ObjectType, OrgId, Permission, UserId};
use castellan_server::change::Change;
use castellan_store::{AclRecord, KeyKind, KeyRecord, MemberRecord, NewKey, UserKind, UserRecord};
use uuid::Uuid;

/// A member of an org with an API key.
pub struct Member {
    pub user: UserId,
    pub key: String,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

async fn org_id(app: &TestApp, org: &str) -> OrgId {
    let store = app.db.open().await;
    let mut tx = store.read().await.expect("read");
    tx.find_org_by_name(org).await.expect("find").expect("org exists").id
}

/// Adds a member to `org` (in `group`, one of the built-in groups, if given) with an
/// API key; nothing else is granted.
pub async fn member(app: &TestApp, org: &str, email: &str, group: Option<&str>) -> Member {
    let org = org_id(app, org).await;
    let store = app.db.open().await;
    let mut tx = store.write().await.expect("begin");
    let user = UserRecord {
        id: UserId::generate(),
        kind: UserKind::User,
        email: Some(email.into()),
        given_name: None,
        family_name: None,
        avatar_url: None,
        created: now(),
    };
    tx.insert_user(&user).await.expect("user");
    tx.add_member(&MemberRecord { org_id: org, user_id: user.id, created: now() }).await.expect("member");
    let minted = castellan_server::keys::mint(castellan_server::keys::API_KEY_PREFIX);
    let record = KeyRecord {
        id: KeyId::generate(),
        kind: KeyKind::ApiKey,
        name: "test".into(),
        preview_name: minted.preview.clone(),
        user_id: user.id,
        org_id: Some(org),
        created: now(),
        last_used: None,
        expires_at: None,
    };
    tx.insert_key(&NewKey { record, key_hash: minted.hash.clone() }).await.expect("key");
    let mut changes = Vec::new();
    if let Some(g) = group {
        let group: GroupId = tx.find_group_by_name(org, g).await.expect("find group").expect("group exists").id;
        tx.add_group_user(group, user.id).await.expect("join");
        changes.push(Change::AddGroupUser { group: group.0, user: user.id.0 });
    }
    tx.record_change(now(), &serde_json::to_value(&changes).expect("json")).await.expect("change");
    tx.commit().await.expect("commit");
    store.close().await;
    app.state.index().catch_up().await.expect("catch up");
    Member { user: user.id, key: minted.raw }
}

/// Grants `permission` on one object to a user.
pub async fn grant(app: &TestApp, org: &str, user: UserId, object_type: ObjectType, object_id: Uuid, p: Permission) {
    let org = org_id(app, org).await;
    let store = app.db.open().await;
    let mut tx = store.write().await.expect("begin");
    let acl = AclRecord {
        id: AclId::generate(),
        org_id: org,
        object_type,
        object_id,
        user_id: Some(user),
        group_id: None,
        permission: Some(p),
        role_id: None,
        restrict_object_type: None,
        expires_at: None,
        created: now(),
    };
    tx.insert_acl(&acl).await.expect("acl");
    tx.record_change(now(), &serde_json::to_value(vec![Change::AddAcl { acl }]).expect("json")).await.expect("change");
    tx.commit().await.expect("commit");
    store.close().await;
    app.state.index().catch_up().await.expect("catch up");
}

/// The environment that points the official SDK at `app` with `key`.
pub fn sdk_env(app: &TestApp, key: &str) -> Vec<(String, String)> {
    vec![
        ("BRAINTRUST_API_KEY".into(), key.into()),
        ("BRAINTRUST_APP_URL".into(), app.base.clone()),
        ("BRAINTRUST_API_URL".into(), app.base.clone()),
        ("BRAINTRUST_APP_PUBLIC_URL".into(), "https://castellan.example".into()),
        ("BRAINTRUST_DISABLE_ATEXIT_FLUSH".into(), "1".into()),
        ("BRAINTRUST_NUM_RETRIES".into(), "0".into()),
        (
            "HOME".into(),
            std::env::temp_dir().join(format!("bt-home-{}", Uuid::new_v4().simple())).display().to_string(),
        ),
    ]
}

/// Runs a Python script with the official clients, off the async workers (the
/// server under test runs on them); returns its stdout.
pub async fn python(script: &str, env: Vec<(String, String)>) -> Option<String> {
    let py = super::common::python()?;
    let script = script.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        super::common::run_python(&py, &script, &env)
    })
    .await
    .expect("python task");
    Some(out)
}

/// The last line of a script's output, parsed as JSON (scripts print their result
/// last).
pub fn last_json(out: &str) -> serde_json::Value {
    let line = out.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or("null");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n--- output\n{out}"))
}
