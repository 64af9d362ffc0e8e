//! The backend conformance suite: one set of stories every backend must pass.
//!
//! A backend's test file calls [`conformance_suite!`](crate::conformance_suite) with an
//! async function that returns a fresh, migrated, empty store; every story then runs
//! as its own test against its own database.

pub use crate::conformance_data::*;

use crate::audit::{canonical_json, verify_chain, NewAuditRecord};
use crate::page::{fill_page, Cursor, Direction, PageRequest, Window};
use crate::*;
use castellan_core::{AclId, GroupId, KeyId, ObjectType, OrgId, Permission, ProjectId, RoleId, UserId};
use std::sync::Arc;
use uuid::Uuid;

/// Expands to one `#[tokio::test]` per story, each on a fresh store from `$make`
/// (an async fn returning `Option<Arc<dyn Store>>`; `None` means the backend is not
/// available here and the story does not run, which the backend reports itself).
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!($make, #[cfg(all())]);
    };
    ($make:path, #[$attr:meta]) => {
        $crate::conformance_suite!(@each $make, #[$attr];
            orgs_round_trip_and_names_are_unique_ignoring_case,
            users_round_trip_and_emails_are_unique,
            members_join_and_leave_and_list_their_orgs,
            projects_are_unique_by_name_within_an_org_only,
            project_updates_and_soft_deletes_free_the_name,
            lists_are_newest_first_and_page_both_ways_with_filters,
            keys_authenticate_by_hash_until_deleted,
            keys_list_by_kind_user_and_org,
            revisions_increase_with_each_commit_and_rollbacks_leave_no_trace,
            concurrent_writers_get_distinct_ordered_revisions,
            audit_records_chain_per_org_and_verify,
            audit_records_roll_back_with_their_write,
            read_transactions_refuse_writes,
            groups_hold_users_and_groups_and_deleting_one_drops_its_edges,
            users_are_searched_by_name_or_email_and_kind,
            roles_are_unique_per_org_and_system_roles_apart,
            acls_are_unique_by_contents_and_filter_and_cascade,
            the_access_state_reflects_every_live_row,
            invitations_are_found_by_token_until_accepted,
            a_members_keys_in_one_org_are_revoked_together,
            the_audit_log_reads_newest_first_with_filters,
            passwords_and_sessions_round_trip_and_revoke,
            identities_link_once_and_sso_memberships_round_trip,
            objects_are_unique_by_name_or_slug_within_a_project,
            object_versions_are_found_by_transaction_id,
            event_logs_keep_every_version_and_read_as_of_a_transaction,
            data_writes_get_increasing_ids_and_roll_back_cleanly,
            one_data_transaction_carries_several_writes_in_order,
            blobs_are_announced_uploaded_and_referenced,
            server_secrets_are_kept_from_the_first_start,
            the_access_state_lists_live_project_objects_and_their_grants,
            administration_objects_are_unique_per_scope_and_go_with_it,
            usage_counters_add_up_and_crossings_are_recorded_once
        );
    };
    (@each $make:path, #[$attr:meta]; $($story:ident),+ $(,)?) => {
        $(
            #[$attr]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $story() {
                if let Some(store) = $make().await {
                    $crate::conformance::$story(store).await;
                }
            }
        )+
    };
}

fn org(name: &str, created: i64) -> OrgRecord {
    OrgRecord {
        id: OrgId::generate(),
        name: name.into(),
        api_url: None,
        is_universal_api: None,
        is_dataplane_private: None,
        proxy_url: None,
        realtime_url: None,
        image_rendering_mode: None,
        settings: serde_json::json!({}),
        created,
    }
}

fn user(email: &str, created: i64) -> UserRecord {
    UserRecord {
        id: UserId::generate(),
        kind: UserKind::User,
        email: Some(email.into()),
        given_name: Some("Ada".into()),
        family_name: Some("Lovelace".into()),
        avatar_url: None,
        created,
    }
}

fn project(org: OrgId, name: &str, created: i64) -> ProjectRecord {
    ProjectRecord {
        id: ProjectId::generate(),
        org_id: org,
        name: name.into(),
        description: None,
        user_id: None,
        settings: None,
        created,
    }
}

fn key(kind: KeyKind, user: UserId, org: OrgId, name: &str, created: i64) -> NewKey {
    let id = KeyId::generate();
    NewKey {
        record: KeyRecord {
            id,
            kind,
            name: name.into(),
            preview_name: "sk-…abcd".into(),
            user_id: user,
            org_id: Some(org),
            created,
            last_used: None,
            expires_at: None,
        },
        key_hash: format!("hash-{id}"),
    }
}

fn audit(org: OrgId, n: i64) -> NewAuditRecord {
    NewAuditRecord {
        org_id: org,
        created: n,
        actor_id: None,
        impersonator_id: None,
        event_type: "project.created".into(),
        resource_type: "project".into(),
        resource_id: Some(Uuid::now_v7()),
        resource_name: Some(format!("p{n}")),
        before: None,
        after: Some(canonical_json(&serde_json::json!({"name": format!("p{n}"), "x": 1.5}))),
        details: None,
    }
}

async fn seed_org(store: &dyn Store, name: &str, created: i64) -> OrgRecord {
    let o = org(name, created);
    let mut tx = store.write().await.expect("begin");
    tx.insert_org(&o).await.expect("insert org");
    tx.commit().await.expect("commit");
    o
}

fn window(from: Option<crate::page::PageKey>, limit: usize) -> Window {
    Window { from, direction: Direction::Older, limit }
}

/// Orgs round-trip; a second live org with the same name in other case is refused.
pub async fn orgs_round_trip_and_names_are_unique_ignoring_case(store: Arc<dyn Store>) {
    let mut o = seed_org(&*store, "Acme", 10).await;
    let mut tx = store.write().await.expect("begin");
    assert_eq!(tx.get_org(o.id).await.expect("get"), Some(o.clone()));
    assert_eq!(tx.find_org_by_name("acme").await.expect("find").map(|x| x.id), Some(o.id));
    let clash = tx.insert_org(&org("ACME", 11)).await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    drop(tx);
    let mut tx = store.write().await.expect("begin");
    o.api_url = Some("https://api.example".into());
    o.is_universal_api = Some(true);
    o.settings = serde_json::json!({"strict_delegation": true});
    tx.update_org(&o).await.expect("update");
    assert_eq!(tx.count_orgs().await.expect("count"), 1);
    tx.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    assert_eq!(tx.get_org(o.id).await.expect("get"), Some(o.clone()));
    drop(tx);
    let mut tx = store.write().await.expect("begin");
    tx.delete_org(o.id, 20).await.expect("delete");
    assert_eq!(tx.get_org(o.id).await.expect("get"), None);
    assert!(matches!(tx.delete_org(o.id, 21).await, Err(StoreError::NotFound(_))));
    tx.insert_org(&org("acme", 22)).await.expect("name is free after deletion");
    tx.commit().await.expect("commit");
}

/// Users round-trip; emails are unique among live users.
pub async fn users_round_trip_and_emails_are_unique(store: Arc<dyn Store>) {
    let mut u = user("ada@example.com", 1);
    let mut tx = store.write().await.expect("begin");
    tx.insert_user(&u).await.expect("insert");
    assert!(matches!(tx.insert_user(&user("ada@example.com", 2)).await, Err(StoreError::Conflict(_))));
    tx.commit().await.expect("commit");
    let mut tx = store.write().await.expect("begin");
    assert_eq!(tx.get_user(u.id).await.expect("get"), Some(u.clone()));
    assert_eq!(tx.find_user_by_email("ADA@example.com").await.expect("find").map(|x| x.id), Some(u.id));
    u.given_name = Some("Augusta".into());
    tx.update_user(&u).await.expect("update");
    tx.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    assert_eq!(tx.get_user(u.id).await.expect("get").and_then(|x| x.given_name), Some("Augusta".into()));
    assert_eq!(tx.get_user(UserId::generate()).await.expect("get"), None);
    let got = tx.get_users(&[u.id, UserId::generate()]).await.expect("get many");
    assert_eq!(got.iter().map(|x| x.id).collect::<Vec<_>>(), vec![u.id], "unknown ids are left out");
    assert!(tx.get_users(&[]).await.expect("none").is_empty());
}

/// A user list can be narrowed by a case-insensitive "contains" search over email and
/// names (`%`, `_` and `!` are plain characters), and to people or service accounts.
pub async fn users_are_searched_by_name_or_email_and_kind(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let mut ada = user("ada@example.com", 2);
    ada.given_name = Some("Ada".into());
    ada.family_name = Some("Lovelace".into());
    let mut grace = user("grace_h@navy.test", 3);
    grace.given_name = Some("Grace".into());
    grace.family_name = Some("Hopper".into());
    let mut bot = user("bot@service-accounts.castellan.invalid", 4);
    bot.kind = UserKind::ServiceAccount;
    bot.given_name = Some("100% bot".into());
    bot.family_name = None;
    let mut tx = store.write().await.expect("begin");
    for (i, u) in [&ada, &grace, &bot].into_iter().enumerate() {
        tx.insert_user(u).await.expect("user");
        tx.add_member(&MemberRecord { org_id: a.id, user_id: u.id, created: 10 + i as i64 }).await.expect("member");
    }
    tx.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    let found = |search: &str, kind: Option<UserKind>| UserFilter {
        orgs: vec![a.id],
        search: Some(search.into()),
        kind,
        ..Default::default()
    };
    let mut ids = Vec::new();
    for (search, kind) in [
        ("LOVE", None),
        ("ada lovelace", None),
        ("navy", None),
        ("_h@", None),
        ("%", None),
        ("x%", None),
        ("", None),
        ("", Some(UserKind::ServiceAccount)),
        ("a", Some(UserKind::User)),
    ] {
        let got = tx.list_users(&found(search, kind), &window(None, 10)).await.expect("search");
        ids.push(got.iter().map(|u| u.id).collect::<Vec<_>>());
    }
    assert_eq!(ids[0], vec![ada.id], "family name, any case");
    assert_eq!(ids[1], vec![ada.id], "full name");
    assert_eq!(ids[2], vec![grace.id], "email");
    assert_eq!(ids[3], vec![grace.id], "`_` is not a wildcard");
    assert_eq!(ids[4], vec![bot.id], "`%` is not a wildcard");
    assert!(ids[5].is_empty());
    assert_eq!(ids[6], vec![bot.id, grace.id, ada.id], "an empty search is no filter");
    assert_eq!(ids[7], vec![bot.id]);
    assert_eq!(ids[8], vec![grace.id, ada.id]);
}

/// Membership is a set; deleted orgs drop out of a user's orgs.
pub async fn members_join_and_leave_and_list_their_orgs(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let b = seed_org(&*store, "b", 2).await;
    let u = user("u@example.com", 3);
    let mut tx = store.write().await.expect("begin");
    tx.insert_user(&u).await.expect("user");
    assert!(tx.add_member(&MemberRecord { org_id: a.id, user_id: u.id, created: 4 }).await.expect("add"));
    assert!(!tx.add_member(&MemberRecord { org_id: a.id, user_id: u.id, created: 5 }).await.expect("again"));
    assert!(tx.add_member(&MemberRecord { org_id: b.id, user_id: u.id, created: 6 }).await.expect("add b"));
    assert_eq!(tx.member_orgs(u.id).await.expect("orgs"), vec![a.id, b.id]);
    assert_eq!(tx.list_members(a.id).await.expect("members").len(), 1);
    assert!(tx.remove_member(a.id, u.id).await.expect("remove"));
    assert!(!tx.remove_member(a.id, u.id).await.expect("remove again"));
    tx.delete_org(b.id, 7).await.expect("delete b");
    assert_eq!(tx.member_orgs(u.id).await.expect("orgs"), vec![]);
    tx.commit().await.expect("commit");
}

/// A project name is unique within its org, not across orgs.
pub async fn projects_are_unique_by_name_within_an_org_only(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let b = seed_org(&*store, "b", 2).await;
    let p = project(a.id, "proj", 3);
    let mut tx = store.write().await.expect("begin");
    tx.insert_project(&p).await.expect("insert");
    assert!(matches!(tx.insert_project(&project(a.id, "proj", 4)).await, Err(StoreError::Conflict(_))));
    drop(tx);
    let mut tx = store.write().await.expect("begin");
    tx.insert_project(&p).await.expect("insert again after rollback");
    tx.insert_project(&project(b.id, "proj", 5)).await.expect("same name in another org");
    tx.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    assert_eq!(tx.find_project_by_name(a.id, "proj").await.expect("find"), Some(p.clone()));
    assert_eq!(tx.find_project_by_name(a.id, "PROJ").await.expect("find"), None);
    assert_eq!(tx.get_project(p.id).await.expect("get"), Some(p));
}

/// Updates replace fields; a rename onto a taken name conflicts; soft delete hides
/// the project and frees its name.
pub async fn project_updates_and_soft_deletes_free_the_name(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let mut p = project(a.id, "one", 2);
    let q = project(a.id, "two", 3);
    let mut tx = store.write().await.expect("begin");
    tx.insert_project(&p).await.expect("p");
    tx.insert_project(&q).await.expect("q");
    p.description = Some("d".into());
    p.settings = Some(serde_json::json!({"comparison_key": "input"}));
    tx.update_project(&p).await.expect("update");
    let mut clash = p.clone();
    clash.name = "two".into();
    assert!(matches!(tx.update_project(&clash).await, Err(StoreError::Conflict(_))));
    tx.commit().await.expect("commit");
    let mut tx = store.write().await.expect("begin");
    assert_eq!(tx.get_project(p.id).await.expect("get"), Some(p.clone()));
    tx.delete_project(q.id, 9).await.expect("delete");
    assert_eq!(tx.get_project(q.id).await.expect("get"), None);
    assert!(matches!(tx.delete_project(q.id, 10).await, Err(StoreError::NotFound(_))));
    assert!(matches!(tx.update_project(&q).await, Err(StoreError::NotFound(_))));
    clash.created = 11;
    tx.update_project(&clash).await.expect("rename onto the deleted project's name");
    tx.commit().await.expect("commit");
}

/// Lists come newest first by `(created, id)`, page with windows both ways, and
/// honour the id, name and org filters.
pub async fn lists_are_newest_first_and_page_both_ways_with_filters(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let b = seed_org(&*store, "b", 2).await;
    let mut tx = store.write().await.expect("begin");
    let mut ps = Vec::new();
    for i in 0..25 {
        // Two projects share each timestamp so the id tie-breaker is exercised.
        let p = project(a.id, &format!("p{i:02}"), 100 + i / 2);
        tx.insert_project(&p).await.expect("insert");
        ps.push(p);
    }
    tx.insert_project(&project(b.id, "other", 500)).await.expect("other org");
    tx.commit().await.expect("commit");
    let mut expected = ps.clone();
    expected.sort_by_key(|p| std::cmp::Reverse((p.created, p.id)));

    let f = ProjectFilter { orgs: vec![a.id], ..Default::default() };
    let mut tx = store.read().await.expect("read");
    let all = tx.list_projects(&f, &window(None, 100)).await.expect("list");
    assert_eq!(all, expected);
    // Walk forward in pages of 7 with the shared page filler.
    let mut seen = Vec::new();
    let mut cursor = Cursor::Start;
    loop {
        let req = PageRequest { limit: 7, cursor };
        let page = fill_page(
            &req,
            |w| {
                let rows: Vec<ProjectRecord> = expected
                    .iter()
                    .filter(|p| match (w.from, w.direction) {
                        (None, _) => true,
                        (Some(k), Direction::Older) => (p.created, p.id.0) < (k.created, k.id),
                        (Some(k), Direction::Newer) => (p.created, p.id.0) > (k.created, k.id),
                    })
                    .take(w.limit)
                    .cloned()
                    .collect();
                async move { Ok(rows) }
            },
            |_| true,
        )
        .await
        .expect("page");
        if page.is_empty() {
            break;
        }
        cursor = Cursor::After(crate::page::Paged::page_key(page.last().expect("non-empty")));
        seen.extend(page);
    }
    assert_eq!(seen, expected);
    // The backend's own windows agree with the in-memory order in both directions.
    let k = crate::page::Paged::page_key(&expected[9]);
    let older = tx.list_projects(&f, &window(Some(k), 3)).await.expect("older");
    assert_eq!(older, expected[10..13].to_vec());
    let newer =
        tx.list_projects(&f, &Window { from: Some(k), direction: Direction::Newer, limit: 3 }).await.expect("newer");
    assert_eq!(newer, vec![expected[8].clone(), expected[7].clone(), expected[6].clone()]);
    let by_ids = ProjectFilter { orgs: vec![a.id], ids: vec![ps[3].id.0, ps[5].id.0], ..Default::default() };
    let got = tx.list_projects(&by_ids, &window(None, 100)).await.expect("ids");
    assert_eq!(got.iter().map(|p| p.id).collect::<Vec<_>>(), vec![ps[5].id, ps[3].id]);
    let by_name = ProjectFilter { orgs: vec![a.id, b.id], name: Some("other".into()), ..Default::default() };
    assert_eq!(tx.list_projects(&by_name, &window(None, 100)).await.expect("name").len(), 1);
    let none = ProjectFilter::default();
    assert!(tx.list_projects(&none, &window(None, 100)).await.expect("empty scope").is_empty());
    let orgs = tx.list_orgs(&OrgFilter { scope: vec![a.id, b.id], ..Default::default() }, &window(None, 10)).await;
    assert_eq!(orgs.expect("orgs").iter().map(|o| o.id).collect::<Vec<_>>(), vec![b.id, a.id]);
}

/// A key authenticates by the hash of its secret until it is deleted; touching it
/// records the last use.
pub async fn keys_authenticate_by_hash_until_deleted(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let u = user("k@example.com", 2);
    let k = key(KeyKind::ApiKey, u.id, a.id, "ci", 3);
    let mut tx = store.write().await.expect("begin");
    tx.insert_user(&u).await.expect("user");
    tx.insert_key(&k).await.expect("key");
    tx.commit().await.expect("commit");
    let auth = store.authenticate(&k.key_hash).await.expect("auth").expect("found");
    assert_eq!(auth.key, k.record);
    assert_eq!(auth.user, u);
    assert_eq!(store.authenticate("nope").await.expect("auth"), None);
    store.touch_key(k.record.id, 1_000).await.expect("touch");
    store.touch_key(k.record.id, 500).await.expect("an older touch never moves last_used back");
    let auth = store.authenticate(&k.key_hash).await.expect("auth").expect("found");
    assert_eq!(auth.key.last_used, Some(1_000));
    let mut tx = store.write().await.expect("begin");
    tx.delete_key(k.record.id, 2_000).await.expect("delete");
    tx.commit().await.expect("commit");
    assert_eq!(store.authenticate(&k.key_hash).await.expect("auth"), None);
    let mut tx = store.read().await.expect("read");
    assert_eq!(tx.get_key(k.record.id).await.expect("get"), None);
}

/// Key lists filter by kind, owner and org.
pub async fn keys_list_by_kind_user_and_org(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let b = seed_org(&*store, "b", 2).await;
    let u = user("u@example.com", 3);
    let v = user("v@example.com", 4);
    let mut tx = store.write().await.expect("begin");
    tx.insert_user(&u).await.expect("u");
    tx.insert_user(&v).await.expect("v");
    let k1 = key(KeyKind::ApiKey, u.id, a.id, "one", 10);
    let k2 = key(KeyKind::ApiKey, v.id, a.id, "two", 11);
    let k3 = key(KeyKind::ServiceToken, v.id, a.id, "tok", 12);
    let k4 = key(KeyKind::ApiKey, u.id, b.id, "one", 13);
    for k in [&k1, &k2, &k3, &k4] {
        tx.insert_key(k).await.expect("key");
    }
    tx.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    let f = |kind, user, name: Option<&str>| KeyFilter {
        kind,
        orgs: vec![a.id],
        user,
        users: vec![],
        ids: vec![],
        name: name.map(str::to_owned),
    };
    let of_users = |users: Vec<UserId>| KeyFilter { users, ..f(KeyKind::ApiKey, None, None) };
    assert_eq!(
        tx.list_keys(&of_users(vec![u.id, v.id]), &window(None, 10)).await.expect("l").len(),
        2,
        "keys of either user"
    );
    let only_v = tx.list_keys(&of_users(vec![v.id]), &window(None, 10)).await.expect("l");
    assert_eq!(only_v.into_iter().map(|k| k.id).collect::<Vec<_>>(), vec![k2.record.id]);
    let ids = |v: Vec<KeyRecord>| v.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(
        ids(tx.list_keys(&f(KeyKind::ApiKey, None, None), &window(None, 10)).await.expect("l")),
        vec![k2.record.id, k1.record.id]
    );
    assert_eq!(
        ids(tx.list_keys(&f(KeyKind::ApiKey, Some(u.id), None), &window(None, 10)).await.expect("l")),
        vec![k1.record.id]
    );
    assert_eq!(
        ids(tx.list_keys(&f(KeyKind::ServiceToken, None, None), &window(None, 10)).await.expect("l")),
        vec![k3.record.id]
    );
    assert_eq!(
        ids(tx.list_keys(&f(KeyKind::ApiKey, None, Some("one")), &window(None, 10)).await.expect("l")),
        vec![k1.record.id]
    );
}

/// Each committed write transaction gets a larger revision; a rolled-back one leaves
/// no change entry behind.
pub async fn revisions_increase_with_each_commit_and_rollbacks_leave_no_trace(store: Arc<dyn Store>) {
    let start = store.current_revision().await.expect("rev");
    let mut revs = Vec::new();
    for i in 0..3 {
        let mut tx = store.write().await.expect("begin");
        let r = tx.record_change(i, &serde_json::json!({"i": i})).await.expect("change");
        assert_eq!(tx.revision().await.expect("same revision"), r);
        tx.commit().await.expect("commit");
        revs.push(r);
    }
    assert!(revs[0] > start && revs[1] > revs[0] && revs[2] > revs[1]);
    let mut tx = store.write().await.expect("begin");
    tx.record_change(9, &serde_json::json!({"rolled": "back"})).await.expect("change");
    drop(tx);
    assert_eq!(store.current_revision().await.expect("rev"), revs[2]);
    let changes = store.changes_since(start, 100).await.expect("changes");
    assert_eq!(changes.iter().map(|c| c.revision).collect::<Vec<_>>(), revs);
    assert_eq!(changes[1].payload, serde_json::json!({"i": 1}));
    assert_eq!(store.changes_since(revs[0], 1).await.expect("limit").len(), 1);
}

/// Writers racing from many tasks each get a distinct revision, and the change feed
/// lists every one of them in order.
pub async fn concurrent_writers_get_distinct_ordered_revisions(store: Arc<dyn Store>) {
    let start = store.current_revision().await.expect("rev");
    let a = seed_org(&*store, "a", 1).await;
    let mut handles = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut tx = store.write().await.expect("begin");
            tx.insert_project(&project(a.id, &format!("p{i}"), i)).await.expect("insert");
            let r = tx.record_change(i, &serde_json::json!({"i": i})).await.expect("change");
            tx.commit().await.expect("commit");
            r
        }));
    }
    let mut revs = Vec::new();
    for h in handles {
        revs.push(h.await.expect("join"));
    }
    revs.sort_unstable();
    revs.dedup();
    assert_eq!(revs.len(), 16);
    let feed: Vec<Revision> =
        store.changes_since(start, 100).await.expect("feed").into_iter().map(|c| c.revision).collect();
    assert!(feed.windows(2).all(|w| w[0] < w[1]));
    for r in &revs {
        assert!(feed.contains(r));
    }
}

/// Records chain per org: each org's chain verifies on its own and the head matches.
pub async fn audit_records_chain_per_org_and_verify(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let b = seed_org(&*store, "b", 2).await;
    for i in 0..5 {
        let mut tx = store.write().await.expect("begin");
        let r = tx.append_audit(audit(a.id, i)).await.expect("append a");
        assert_eq!(r.seq, i as u64 + 1);
        if i % 2 == 0 {
            tx.append_audit(audit(b.id, i)).await.expect("append b");
        }
        tx.commit().await.expect("commit");
    }
    let mut tx = store.read().await.expect("read");
    let chain_a = tx.audit_chain(a.id, 0, 100).await.expect("chain");
    assert_eq!(chain_a.len(), 5);
    let head_a = tx.audit_head(a.id).await.expect("head");
    assert_eq!(verify_chain(&chain_a, head_a.clone()), vec![]);
    assert_eq!(head_a.map(|h| h.0), Some(5));
    let chain_b = tx.audit_chain(b.id, 0, 100).await.expect("chain b");
    assert_eq!(chain_b.len(), 3);
    assert_eq!(verify_chain(&chain_b, tx.audit_head(b.id).await.expect("head b")), vec![]);
    assert_eq!(tx.audit_chain(a.id, 3, 100).await.expect("tail").len(), 2);
    // What was stored is exactly what was hashed, JSON text included.
    assert_eq!(chain_a[0].record.after, audit(a.id, 0).after);
}

/// An audit record written in a transaction that rolls back is gone with it, and the
/// chain continues from the last committed record.
pub async fn audit_records_roll_back_with_their_write(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let mut tx = store.write().await.expect("begin");
    tx.insert_project(&project(a.id, "kept", 2)).await.expect("p");
    tx.append_audit(audit(a.id, 1)).await.expect("audit");
    tx.commit().await.expect("commit");
    let mut tx = store.write().await.expect("begin");
    tx.insert_project(&project(a.id, "lost", 3)).await.expect("p");
    tx.append_audit(audit(a.id, 2)).await.expect("audit");
    drop(tx);
    let mut tx = store.write().await.expect("begin");
    let r = tx.append_audit(audit(a.id, 3)).await.expect("audit");
    assert_eq!(r.seq, 2);
    assert_eq!(tx.find_project_by_name(a.id, "lost").await.expect("find"), None);
    tx.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    let chain = tx.audit_chain(a.id, 0, 10).await.expect("chain");
    assert_eq!(verify_chain(&chain, tx.audit_head(a.id).await.expect("head")), vec![]);
}

/// A read transaction refuses every kind of write.
pub async fn read_transactions_refuse_writes(store: Arc<dyn Store>) {
    let mut tx = store.read().await.expect("read");
    assert!(tx.insert_org(&org("x", 1)).await.is_err());
    assert!(tx.revision().await.is_err());
    drop(tx);
    let mut tx = store.read().await.expect("read");
    assert_eq!(tx.count_orgs().await.expect("count"), 0);
}

fn group(org: OrgId, name: &str, created: i64) -> GroupRecord {
    GroupRecord { id: GroupId::generate(), org_id: org, name: name.into(), description: None, user_id: None, created }
}

fn role(org: Option<OrgId>, name: &str, created: i64) -> RoleRecord {
    RoleRecord { id: RoleId::generate(), org_id: org, name: name.into(), description: None, user_id: None, created }
}

fn acl_for_user(org: OrgId, object: (ObjectType, Uuid), user: UserId, p: Permission, created: i64) -> AclRecord {
    AclRecord {
        id: AclId::generate(),
        org_id: org,
        object_type: object.0,
        object_id: object.1,
        user_id: Some(user),
        group_id: None,
        permission: Some(p),
        role_id: None,
        restrict_object_type: None,
        expires_at: None,
        created,
    }
}

/// Groups are unique by name per org, hold users and groups, and deleting one drops
/// its memberships in both directions.
pub async fn groups_hold_users_and_groups_and_deleting_one_drops_its_edges(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let b = seed_org(&*store, "b", 2).await;
    let u = user("g@example.com", 3);
    let mut tx = store.write().await.expect("begin");
    tx.insert_user(&u).await.expect("user");
    let mut g1 = group(a.id, "Owners", 4);
    let g2 = group(a.id, "Engineers", 5);
    tx.insert_group(&g1).await.expect("g1");
    tx.insert_group(&g2).await.expect("g2");
    assert!(matches!(tx.insert_group(&group(a.id, "Owners", 6)).await, Err(StoreError::Conflict(_))));
    tx.insert_group(&group(b.id, "Owners", 7)).await.expect("same name in another org");
    assert!(tx.add_group_user(g1.id, u.id).await.expect("add"));
    assert!(!tx.add_group_user(g1.id, u.id).await.expect("add again"));
    assert!(tx.add_group_group(g2.id, g1.id).await.expect("nest"));
    assert!(!tx.add_group_group(g2.id, g1.id).await.expect("nest again"));
    assert_eq!(tx.group_users(g1.id).await.expect("users"), vec![u.id]);
    assert_eq!(tx.group_groups(g2.id).await.expect("groups"), vec![g1.id]);
    assert_eq!(tx.user_groups(a.id, u.id).await.expect("user groups"), vec![g1.id]);
    assert_eq!(tx.user_groups(b.id, u.id).await.expect("other org"), vec![]);
    let mut want = vec![(g1.id, GroupMember::User(u.id)), (g2.id, GroupMember::Group(g1.id))];
    want.sort();
    assert_eq!(tx.group_members(&[g2.id, g1.id]).await.expect("members of both"), want);
    assert!(tx.group_members(&[]).await.expect("none").is_empty());
    let searched = GroupFilter { orgs: vec![a.id], search: Some("gineer".into()), ..Default::default() };
    let found = tx.list_groups(&searched, &window(None, 10)).await.expect("search");
    assert_eq!(found.iter().map(|g| g.id).collect::<Vec<_>>(), vec![g2.id]);
    g1.description = Some("all access".into());
    tx.update_group(&g1).await.expect("update");
    let mut rename = g2.clone();
    rename.name = "Owners".into();
    assert!(matches!(tx.update_group(&rename).await, Err(StoreError::Conflict(_))));
    tx.commit().await.expect("commit");
    let mut tx = store.write().await.expect("begin");
    assert_eq!(tx.find_group_by_name(a.id, "Owners").await.expect("find"), Some(g1.clone()));
    tx.delete_group(g1.id, 9).await.expect("delete");
    assert_eq!(tx.get_group(g1.id).await.expect("get"), None);
    assert_eq!(tx.group_groups(g2.id).await.expect("edge gone"), vec![]);
    assert_eq!(tx.user_groups(a.id, u.id).await.expect("membership gone"), vec![]);
    assert!(!tx.remove_group_user(g1.id, u.id).await.expect("remove"));
    let listed = tx.list_groups(&GroupFilter { orgs: vec![a.id], ..Default::default() }, &window(None, 10)).await;
    assert_eq!(listed.expect("list").iter().map(|g| g.id).collect::<Vec<_>>(), vec![g2.id]);
    tx.commit().await.expect("commit");
}

/// Role names are unique per org and, separately, among system roles; permissions
/// and inheritance edges are sets; deleting a role drops its edges both ways.
pub async fn roles_are_unique_per_org_and_system_roles_apart(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let mut tx = store.write().await.expect("begin");
    let owner = role(None, "Owner", 2);
    let r = role(Some(a.id), "Owner", 3);
    let base = role(Some(a.id), "base", 4);
    tx.insert_role(&owner).await.expect("system");
    tx.insert_role(&r).await.expect("org role may share a system role's name");
    tx.insert_role(&base).await.expect("base");
    assert!(matches!(tx.insert_role(&role(None, "Owner", 5)).await, Err(StoreError::Conflict(_))));
    assert!(matches!(tx.insert_role(&role(Some(a.id), "base", 6)).await, Err(StoreError::Conflict(_))));
    let read_projects =
        RolePermission { permission: Permission::Read, restrict_object_type: Some(ObjectType::Project) };
    let read_all = RolePermission { permission: Permission::Read, restrict_object_type: None };
    assert!(tx.add_role_permission(base.id, read_projects).await.expect("perm"));
    assert!(tx.add_role_permission(base.id, read_all).await.expect("perm unrestricted is distinct"));
    assert!(!tx.add_role_permission(base.id, read_all).await.expect("again"));
    assert!(tx.add_role_role(r.id, base.id).await.expect("inherit"));
    assert_eq!(tx.role_permissions(base.id).await.expect("perms").len(), 2);
    assert_eq!(tx.role_roles(r.id).await.expect("roles"), vec![base.id]);
    assert_eq!(tx.find_role_by_name(None, "Owner").await.expect("sys").map(|x| x.id), Some(owner.id));
    assert_eq!(tx.find_role_by_name(Some(a.id), "Owner").await.expect("org").map(|x| x.id), Some(r.id));
    assert!(tx.remove_role_permission(base.id, read_projects).await.expect("remove"));
    assert_eq!(tx.role_permissions(base.id).await.expect("perms"), vec![read_all]);
    let (perms, inherits) = tx.role_contents(&[r.id, base.id, owner.id]).await.expect("contents");
    assert_eq!(perms, vec![(base.id, read_all)]);
    assert_eq!(inherits, vec![(r.id, base.id)]);
    assert_eq!(tx.role_contents(&[]).await.expect("none"), (vec![], vec![]));
    tx.commit().await.expect("commit");
    let mut tx = store.write().await.expect("begin");
    let both = RoleFilter { orgs: vec![a.id], include_system: true, ..Default::default() };
    assert_eq!(tx.list_roles(&both, &window(None, 10)).await.expect("list").len(), 3);
    let sys = RoleFilter { include_system: true, ..Default::default() };
    assert_eq!(
        tx.list_roles(&sys, &window(None, 10)).await.expect("list").iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![owner.id]
    );
    tx.delete_role(base.id, 9).await.expect("delete");
    assert_eq!(tx.role_roles(r.id).await.expect("edge gone"), vec![]);
    assert_eq!(tx.role_permissions(base.id).await.expect("perms gone"), vec![]);
    assert_eq!(tx.get_role(base.id).await.expect("get"), None);
    tx.commit().await.expect("commit");
}

/// ACLs are unique by contents (not by expiry), filter on every column, and are
/// removed with their object, their user or their group and role.
pub async fn acls_are_unique_by_contents_and_filter_and_cascade(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let u = user("acl@example.com", 2);
    let p = project(a.id, "p", 3);
    let g = group(a.id, "g", 4);
    let r = role(Some(a.id), "r", 5);
    let mut tx = store.write().await.expect("begin");
    tx.insert_user(&u).await.expect("user");
    tx.insert_project(&p).await.expect("project");
    tx.insert_group(&g).await.expect("group");
    tx.insert_role(&r).await.expect("role");
    let on_p = (ObjectType::Project, p.id.0);
    let on_org = (ObjectType::Organization, a.id.0);
    let a1 = acl_for_user(a.id, on_p, u.id, Permission::Read, 10);
    let mut a2 = acl_for_user(a.id, on_p, u.id, Permission::Read, 11);
    a2.restrict_object_type = Some(ObjectType::Experiment);
    let mut a3 = acl_for_user(a.id, on_org, u.id, Permission::Update, 12);
    a3.expires_at = Some(99);
    let mut a4 = acl_for_user(a.id, on_p, u.id, Permission::Read, 13);
    a4.user_id = None;
    a4.group_id = Some(g.id);
    let mut a5 = acl_for_user(a.id, on_org, u.id, Permission::Read, 14);
    a5.permission = None;
    a5.role_id = Some(r.id);
    for x in [&a1, &a2, &a3, &a4, &a5] {
        tx.insert_acl(x).await.expect("acl");
    }
    let mut dup = a1.clone();
    dup.id = AclId::generate();
    dup.expires_at = Some(5);
    assert!(matches!(tx.insert_acl(&dup).await, Err(StoreError::Conflict(_))));
    assert_eq!(tx.find_acl(&dup.content_key()).await.expect("find"), Some(a1.clone()));
    assert_eq!(tx.get_acl(a3.id).await.expect("get"), Some(a3.clone()));
    let ids = |v: Vec<AclRecord>| v.into_iter().map(|x| x.id).collect::<Vec<_>>();
    let base = AclFilter { orgs: vec![a.id], ..Default::default() };
    let on_project = AclFilter { object_type: Some(ObjectType::Project), object_id: Some(p.id.0), ..base.clone() };
    assert_eq!(ids(tx.list_acls(&on_project, &window(None, 10)).await.expect("l")), vec![a4.id, a2.id, a1.id]);
    let restricted = AclFilter { restrict_object_type: Some(ObjectType::Experiment), ..base.clone() };
    assert_eq!(ids(tx.list_acls(&restricted, &window(None, 10)).await.expect("l")), vec![a2.id]);
    let by_role = AclFilter { role_id: Some(r.id), ..base.clone() };
    assert_eq!(ids(tx.list_acls(&by_role, &window(None, 10)).await.expect("l")), vec![a5.id]);
    let by_perm = AclFilter { permission: Some(Permission::Update), user_id: Some(u.id), ..base.clone() };
    assert_eq!(ids(tx.list_acls(&by_perm, &window(None, 10)).await.expect("l")), vec![a3.id]);
    assert_eq!(ids(tx.delete_acls_on(ObjectType::Project, p.id.0).await.expect("on")), vec![a1.id, a2.id, a4.id]);
    assert_eq!(ids(tx.delete_acls_referencing(None, Some(r.id)).await.expect("role")), vec![a5.id]);
    assert_eq!(ids(tx.delete_acls_of_user(a.id, u.id).await.expect("user")), vec![a3.id]);
    assert!(tx.list_acls(&base, &window(None, 10)).await.expect("l").is_empty());
    assert!(matches!(tx.delete_acl(a1.id).await, Err(StoreError::NotFound(_))));
    tx.commit().await.expect("commit");
}

/// The state the authorization index is built from lists every live row and
/// nothing deleted, at the current revision.
pub async fn the_access_state_reflects_every_live_row(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let gone = seed_org(&*store, "gone", 2).await;
    let u = user("s@example.com", 3);
    let p = project(a.id, "p", 4);
    let dead = project(a.id, "dead", 5);
    let g = group(a.id, "g", 6);
    let h = group(a.id, "h", 7);
    let r = role(None, "Owner", 8);
    let rp = RolePermission { permission: Permission::Delete, restrict_object_type: None };
    let acl = acl_for_user(a.id, (ObjectType::Project, p.id.0), u.id, Permission::Read, 9);
    let mut tx = store.write().await.expect("begin");
    tx.insert_user(&u).await.expect("user");
    tx.insert_project(&p).await.expect("p");
    tx.insert_project(&dead).await.expect("dead");
    tx.delete_project(dead.id, 10).await.expect("delete");
    // Everything inside the deleted org stays out of the state: its groups, their
    // members and nesting, its roles and its grants.
    let gone_g = group(gone.id, "Owners", 6);
    let gone_h = group(gone.id, "Engineers", 6);
    let gone_r = role(Some(gone.id), "gone-role", 6);
    tx.insert_group(&gone_g).await.expect("gone group");
    tx.insert_group(&gone_h).await.expect("gone group 2");
    tx.add_group_user(gone_g.id, u.id).await.expect("gone member");
    tx.add_group_group(gone_g.id, gone_h.id).await.expect("gone nesting");
    tx.insert_role(&gone_r).await.expect("gone role");
    tx.add_role_permission(gone_r.id, rp).await.expect("gone role perm");
    let mut gone_acl = acl_for_user(gone.id, (ObjectType::Organization, gone.id.0), u.id, Permission::Read, 9);
    gone_acl.group_id = Some(gone_g.id);
    gone_acl.user_id = None;
    tx.insert_acl(&gone_acl).await.expect("gone acl");
    tx.delete_org(gone.id, 10).await.expect("delete org");
    tx.insert_group(&g).await.expect("g");
    tx.insert_group(&h).await.expect("h");
    tx.add_group_user(g.id, u.id).await.expect("gu");
    tx.add_group_group(h.id, g.id).await.expect("gg");
    tx.insert_role(&r).await.expect("role");
    tx.add_role_permission(r.id, rp).await.expect("rp");
    tx.insert_acl(&acl).await.expect("acl");
    let rev = tx.record_change(11, &serde_json::json!([])).await.expect("change");
    tx.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    let s = tx.load_access_state().await.expect("state");
    assert_eq!(s.revision, rev);
    assert_eq!(s.orgs, vec![a.id]);
    assert_eq!(s.projects, vec![(p.id, a.id)]);
    assert_eq!(s.groups, vec![(g.id, a.id), (h.id, a.id)]);
    assert_eq!(s.group_users, vec![(g.id, u.id)]);
    assert_eq!(s.group_groups, vec![(h.id, g.id)]);
    assert_eq!(s.roles, vec![(r.id, None)]);
    assert_eq!(s.role_permissions, vec![(r.id, rp)]);
    assert_eq!(s.acls, vec![acl]);
}

/// An invitation is found by its token hash until it is accepted, once.
pub async fn invitations_are_found_by_token_until_accepted(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let g = group(a.id, "Engineers", 2);
    let inv = InvitationRecord {
        id: Uuid::now_v7(),
        org_id: a.id,
        email: "new@example.com".into(),
        group_ids: vec![g.id],
        invited_by: None,
        created: 3,
        expires_at: 1_000,
    };
    let mut tx = store.write().await.expect("begin");
    tx.insert_group(&g).await.expect("group");
    tx.insert_invitation(&inv, "tokhash").await.expect("insert");
    tx.commit().await.expect("commit");
    let mut tx = store.write().await.expect("begin");
    assert_eq!(tx.find_invitation("tokhash").await.expect("find"), Some(inv.clone()));
    assert_eq!(tx.find_invitation("other").await.expect("find"), None);
    assert_eq!(tx.list_invitations(a.id).await.expect("list"), vec![inv.clone()]);
    assert!(tx.accept_invitation(inv.id, 10).await.expect("accept"));
    assert!(!tx.accept_invitation(inv.id, 11).await.expect("accept twice"));
    assert_eq!(tx.find_invitation("tokhash").await.expect("find"), None);
    assert!(tx.list_invitations(a.id).await.expect("list").is_empty());
    tx.commit().await.expect("commit");
}

/// Revoking a member's keys in one org leaves their keys in other orgs alone.
pub async fn a_members_keys_in_one_org_are_revoked_together(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let b = seed_org(&*store, "b", 2).await;
    let u = user("u@example.com", 3);
    let k1 = key(KeyKind::ApiKey, u.id, a.id, "one", 4);
    let k2 = key(KeyKind::ApiKey, u.id, a.id, "two", 5);
    let k3 = key(KeyKind::ApiKey, u.id, b.id, "three", 6);
    let mut tx = store.write().await.expect("begin");
    tx.insert_user(&u).await.expect("user");
    for k in [&k1, &k2, &k3] {
        tx.insert_key(k).await.expect("key");
    }
    let gone = tx.delete_keys_of(a.id, u.id, 9).await.expect("delete");
    assert_eq!(gone.iter().map(|k| k.id).collect::<Vec<_>>(), vec![k1.record.id, k2.record.id]);
    tx.commit().await.expect("commit");
    assert_eq!(store.authenticate(&k1.key_hash).await.expect("auth"), None);
    assert!(store.authenticate(&k3.key_hash).await.expect("auth").is_some());
}

/// The audit log of an org reads newest first and filters by time, actor, event
/// type (exact or prefix) and resource.
pub async fn the_audit_log_reads_newest_first_with_filters(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a", 1).await;
    let actor = UserId::generate();
    let mut tx = store.write().await.expect("begin");
    let mut ids = Vec::new();
    for i in 0..6 {
        let mut r = audit(a.id, 100 + i);
        r.event_type = if i % 2 == 0 { "acl.created".into() } else { "project.created".into() };
        r.resource_type = if i % 2 == 0 { "acl".into() } else { "project".into() };
        if i >= 4 {
            r.actor_id = Some(actor);
        }
        ids.push(tx.append_audit(r).await.expect("append").seq);
    }
    tx.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    let f = AuditFilter {
        org: a.id,
        since: None,
        until: None,
        actor: None,
        event_type: None,
        resource_type: None,
        resource_id: None,
        after_seq: None,
    };
    let seqs = |v: Vec<crate::audit::AuditRecord>| v.into_iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(seqs(tx.list_audit(&f, None, 10).await.expect("all")), vec![6, 5, 4, 3, 2, 1]);
    assert_eq!(seqs(tx.list_audit(&f, Some(4), 2).await.expect("page")), vec![3, 2]);
    // The page just after a position (the one before it in the newest-first order).
    let after = AuditFilter { after_seq: Some(2), ..f.clone() };
    assert_eq!(seqs(tx.list_audit(&after, None, 2).await.expect("newer page")), vec![4, 3]);
    assert_eq!(seqs(tx.list_audit(&after, Some(6), 10).await.expect("between")), vec![5, 4, 3]);
    let acl = AuditFilter { event_type: Some("acl.".into()), ..f.clone() };
    assert_eq!(seqs(tx.list_audit(&acl, None, 10).await.expect("prefix")), vec![5, 3, 1]);
    let exact = AuditFilter { event_type: Some("project.created".into()), ..f.clone() };
    assert_eq!(seqs(tx.list_audit(&exact, None, 10).await.expect("exact")), vec![6, 4, 2]);
    let by_actor = AuditFilter { actor: Some(actor), ..f.clone() };
    assert_eq!(seqs(tx.list_audit(&by_actor, None, 10).await.expect("actor")), vec![6, 5]);
    let window = AuditFilter { since: Some(101), until: Some(103), ..f.clone() };
    assert_eq!(seqs(tx.list_audit(&window, None, 10).await.expect("time")), vec![3, 2]);
    let by_type = AuditFilter { resource_type: Some("project".into()), ..f.clone() };
    assert_eq!(seqs(tx.list_audit(&by_type, None, 10).await.expect("type")).len(), 3);
    assert_eq!(ids.len(), 6);
}

/// Password hashes are stored and cleared; sessions authenticate by token hash until
/// revoked, one at a time or all but one.
pub async fn passwords_and_sessions_round_trip_and_revoke(store: Arc<dyn Store>) {
    let u = user("s@example.com", 1);
    let mut tx = store.write().await.expect("begin");
    tx.insert_user(&u).await.expect("user");
    assert_eq!(tx.password_hash(u.id).await.expect("hash"), None);
    tx.set_password_hash(u.id, Some("$argon2id$v=19$fake")).await.expect("set");
    assert_eq!(tx.password_hash(u.id).await.expect("hash").as_deref(), Some("$argon2id$v=19$fake"));
    let mk = |n: u128| SessionRecord {
        id: Uuid::from_u128(n),
        user_id: u.id,
        created: n as i64,
        last_seen: n as i64,
        expires_at: 1_000,
        user_agent: Some("test".into()),
        ip: Some("127.0.0.1".into()),
        via: Some(if n == 2 { "sso:x".into() } else { "password".into() }),
    };
    for n in 1..=3 {
        tx.insert_session(&mk(n), &format!("tok{n}"), &format!("csrf{n}")).await.expect("session");
    }
    tx.commit().await.expect("commit");
    let auth = store.authenticate_session("tok2").await.expect("auth").expect("found");
    assert_eq!((auth.session, auth.csrf_hash, auth.user.id), (mk(2), "csrf2".to_owned(), u.id));
    store.touch_session(Uuid::from_u128(2), 50).await.expect("touch");
    assert_eq!(store.authenticate_session("tok2").await.expect("auth").map(|a| a.session.last_seen), Some(50));
    let mut tx = store.write().await.expect("begin");
    assert_eq!(tx.list_sessions(u.id, 0).await.expect("list").len(), 3);
    assert_eq!(tx.list_sessions(u.id, 1_000).await.expect("expired are not listed").len(), 0);
    assert!(tx.revoke_session(u.id, Uuid::from_u128(1), 60).await.expect("revoke"));
    assert!(!tx.revoke_session(u.id, Uuid::from_u128(1), 61).await.expect("twice"));
    assert!(!tx.revoke_session(UserId::generate(), Uuid::from_u128(2), 61).await.expect("someone else's"));
    assert_eq!(tx.revoke_user_sessions(u.id, Some(Uuid::from_u128(3)), 62).await.expect("all but"), 1);
    tx.set_password_hash(u.id, None).await.expect("clear");
    assert_eq!(tx.password_hash(u.id).await.expect("hash"), None);
    tx.commit().await.expect("commit");
    assert_eq!(store.authenticate_session("tok1").await.expect("auth"), None);
    assert_eq!(store.authenticate_session("tok2").await.expect("auth"), None);
    assert!(store.authenticate_session("tok3").await.expect("auth").is_some());
    // Only the sessions a password opened (or unmarked, older ones) are revoked by
    // revoke_password_sessions; single sign-on's and break-glass ones stay.
    let v = user("t@example.com", 2);
    let mut tx = store.write().await.expect("begin");
    tx.insert_user(&v).await.expect("user");
    for (n, via) in [(11u128, Some("password")), (12, Some("sso:x")), (13, None), (14, Some("break_glass"))] {
        let s = SessionRecord { id: Uuid::from_u128(n), user_id: v.id, via: via.map(str::to_owned), ..mk(n) };
        tx.insert_session(&s, &format!("tok{n}"), "c").await.expect("session");
    }
    assert_eq!(tx.revoke_password_sessions(v.id, 70).await.expect("revoke"), 2);
    let mut live: Vec<u128> = tx.list_sessions(v.id, 0).await.expect("list").iter().map(|s| s.id.as_u128()).collect();
    live.sort();
    assert_eq!(live, vec![12, 14]);
    tx.commit().await.expect("commit");
}

/// An identity `(issuer, subject)` links exactly one account, once; single sign-on's
/// own group memberships are recorded and forgotten per (group, user).
pub async fn identities_link_once_and_sso_memberships_round_trip(store: Arc<dyn Store>) {
    let o = org("idp", 1);
    let (u, v) = (user("i@example.com", 1), user("j@example.com", 2));
    let cfg = Uuid::from_u128(7);
    let mut tx = store.write().await.expect("begin");
    tx.insert_org(&o).await.expect("org");
    tx.insert_user(&u).await.expect("user");
    tx.insert_user(&v).await.expect("user");
    let g = group(o.id, "eng", 3);
    tx.insert_group(&g).await.expect("group");
    let id = IdentityRecord {
        issuer: "https://idp.example".into(),
        subject: "s1".into(),
        user_id: u.id,
        org_id: o.id,
        config_id: cfg,
        email: Some("i@example.com".into()),
        created: 5,
        last_login: 5,
    };
    assert!(!tx.config_has_identities(cfg).await.expect("none yet"));
    tx.insert_identity(&id).await.expect("link");
    let again = IdentityRecord { user_id: v.id, ..id.clone() };
    assert!(matches!(tx.insert_identity(&again).await, Err(StoreError::Conflict(_))), "linked twice");
    // The transaction goes on after the refused insert (PostgreSQL: a savepoint).
    tx.set_identity_login("https://idp.example", "s1", Some("i2@example.com"), 9).await.expect("login");
    tx.add_sso_group_member(g.id, u.id, cfg, 9).await.expect("sso member");
    tx.add_sso_group_member(g.id, u.id, cfg, 10).await.expect("idempotent");
    tx.commit().await.expect("commit");
    let mut tx = store.write().await.expect("begin");
    let found = tx.find_identity("https://idp.example", "s1").await.expect("find").expect("linked");
    assert_eq!((found.user_id, found.last_login, found.email.as_deref()), (u.id, 9, Some("i2@example.com")));
    assert_eq!(tx.find_identity("https://idp.example", "s2").await.expect("find"), None);
    assert_eq!(tx.find_identity("https://other.example", "s1").await.expect("find"), None);
    assert!(tx.has_identity_at(u.id, "https://idp.example").await.expect("has"));
    assert!(!tx.has_identity_at(v.id, "https://idp.example").await.expect("has"));
    assert!(!tx.has_identity_at(u.id, "https://other.example").await.expect("has"));
    assert!(tx.config_has_identities(cfg).await.expect("some"));
    assert_eq!(tx.sso_groups_of(u.id).await.expect("groups"), vec![g.id]);
    assert_eq!(tx.sso_groups_of(v.id).await.expect("groups"), vec![]);
    tx.remove_sso_group_member(g.id, u.id).await.expect("forget");
    assert_eq!(tx.sso_groups_of(u.id).await.expect("groups"), vec![]);
    // A command-line grant is taken exactly once; expired ones are dropped on insert.
    let grant = |code: &str, expires_at| SsoGrant {
        code_hash: code.into(),
        user_id: u.id,
        org_id: o.id,
        config_id: cfg,
        challenge: "ch".into(),
        expires_at,
    };
    tx.insert_sso_grant(&grant("old", 20), 10).await.expect("grant");
    tx.insert_sso_grant(&grant("new", 100), 30).await.expect("grant");
    assert_eq!(tx.take_sso_grant("old").await.expect("take"), None, "dropped when expired");
    assert_eq!(tx.take_sso_grant("new").await.expect("take"), Some(grant("new", 100)));
    assert_eq!(tx.take_sso_grant("new").await.expect("take"), None, "taken once");
    tx.commit().await.expect("commit");
}
