//! Conformance stories of the data plane: objects inside projects, event logs,
//! transaction ids, blobs and server secrets. Listed in
//! [`conformance_suite!`](crate::conformance_suite) like every other story.

use crate::page::{Direction, Window};
use crate::*;
use castellan_core::{AclId, ObjectType, OrgId, Permission, ProjectId, UserId};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

fn window(limit: usize) -> Window {
    Window { from: None, direction: Direction::Older, limit }
}

/// An org with one user and two projects, committed.
async fn seed(store: &dyn Store) -> (OrgId, UserId, ProjectId, ProjectId) {
    let org = OrgRecord {
        id: OrgId::generate(),
        name: format!("org-{}", Uuid::now_v7().simple()),
        api_url: None,
        is_universal_api: None,
        is_dataplane_private: None,
        proxy_url: None,
        realtime_url: None,
        image_rendering_mode: None,
        settings: json!({}),
        created: 1,
    };
    let user = UserRecord {
        id: UserId::generate(),
        kind: UserKind::User,
        email: Some(format!("{}@example.com", Uuid::now_v7().simple())),
        given_name: None,
        family_name: None,
        avatar_url: None,
        created: 2,
    };
    let project = |name: &str, created| ProjectRecord {
        id: ProjectId::generate(),
        org_id: org.id,
        name: name.into(),
        description: None,
        user_id: None,
        settings: None,
        created,
    };
    let (p, q) = (project("p", 3), project("q", 4));
    let mut tx = store.write().await.expect("begin");
    tx.insert_org(&org).await.expect("org");
    tx.insert_user(&user).await.expect("user");
    tx.insert_project(&p).await.expect("p");
    tx.insert_project(&q).await.expect("q");
    tx.commit().await.expect("commit");
    (org.id, user.id, p.id, q.id)
}

fn object(kind: ObjectKind, org: OrgId, project: ProjectId, name: &str, created: i64) -> ObjectRecord {
    ObjectRecord {
        id: Uuid::now_v7(),
        kind,
        project_id: project,
        org_id: org,
        name: name.into(),
        slug: matches!(kind, ObjectKind::Prompt | ObjectKind::Function).then(|| name.to_lowercase()),
        description: None,
        user_id: None,
        xact_id: None,
        data: json!({"k": name}),
        created,
    }
}

fn row(object: EventObject, project: ProjectId, id: &str, data: serde_json::Value) -> EventWrite {
    EventWrite {
        object,
        project_id: project,
        row_id: id.into(),
        root_span_id: Some(id.into()),
        span_id: Some(id.into()),
        is_root: true,
        deleted: false,
        is_comment: false,
        data: data.to_string(),
    }
}

/// Objects round-trip; names are unique per project and kind, slugs per project
/// across prompts and functions; deleting frees both; lists filter on every field.
pub async fn objects_are_unique_by_name_or_slug_within_a_project(store: Arc<dyn Store>) {
    let (org, _, p, q) = seed(&*store).await;
    let e1 = object(ObjectKind::Experiment, org, p, "e1", 10);
    let d1 = object(ObjectKind::Dataset, org, p, "e1", 11);
    let pr = object(ObjectKind::Prompt, org, p, "Greeter", 12);
    let mut tx = store.write().await.expect("begin");
    tx.insert_object(&e1).await.expect("experiment");
    tx.insert_object(&d1).await.expect("a dataset may share an experiment's name");
    tx.insert_object(&pr).await.expect("prompt");
    let clash = tx.insert_object(&object(ObjectKind::Experiment, org, p, "e1", 13)).await;
    assert!(matches!(clash, Err(StoreError::Conflict(ref m)) if m.contains("`e1`")), "{clash:?}");
    let mut f = object(ObjectKind::Function, org, p, "other", 14);
    f.slug = Some("greeter".into());
    let clash = tx.insert_object(&f).await;
    assert!(matches!(clash, Err(StoreError::Conflict(ref m)) if m.contains("`greeter`")), "{clash:?}");
    tx.insert_object(&object(ObjectKind::Experiment, org, q, "e1", 15)).await.expect("same name, other project");
    assert_eq!(tx.get_object(e1.id).await.expect("get"), Some(e1.clone()));
    assert_eq!(tx.find_object_by_name(p, ObjectKind::Experiment, "e1").await.expect("find"), Some(e1.clone()));
    assert_eq!(tx.find_object_by_slug(p, "greeter").await.expect("slug").map(|o| o.id), Some(pr.id));
    let mut renamed = e1.clone();
    renamed.name = "e2".into();
    renamed.data = json!({"base_exp_id": null, "tags": ["a"]});
    tx.update_object(&renamed).await.expect("rename");
    assert_eq!(tx.get_object(e1.id).await.expect("get"), Some(renamed.clone()));
    tx.commit().await.expect("commit");

    let mut tx = store.write().await.expect("begin");
    let all = ObjectFilter { kinds: ObjectKind::ALL.to_vec(), orgs: vec![org], ..Default::default() };
    assert_eq!(tx.list_objects(&all, &window(10)).await.expect("list").len(), 4);
    let in_p = ObjectFilter { kinds: vec![ObjectKind::Experiment], projects: vec![p], ..all.clone() };
    let ids: Vec<Uuid> = tx.list_objects(&in_p, &window(10)).await.expect("list").iter().map(|o| o.id).collect();
    assert_eq!(ids, vec![e1.id]);
    let by_slug = ObjectFilter { slug: Some("greeter".into()), ..all.clone() };
    assert_eq!(tx.list_objects(&by_slug, &window(10)).await.expect("list").len(), 1);
    let none = ObjectFilter { orgs: vec![], ..all.clone() };
    assert!(tx.list_objects(&none, &window(10)).await.expect("list").is_empty());
    tx.delete_object(pr.id, 20).await.expect("delete");
    assert!(matches!(tx.delete_object(pr.id, 21).await, Err(StoreError::NotFound(_))));
    assert_eq!(tx.get_object(pr.id).await.expect("get"), None);
    tx.insert_object(&f).await.expect("the slug is free after deletion");
    tx.commit().await.expect("commit");
}

/// Versions of an object are kept by transaction id; a version lookup finds the
/// newest at or before the id asked for. Ids have 19 digits and increase.
pub async fn object_versions_are_found_by_transaction_id(store: Arc<dyn Store>) {
    let (org, _, p, _) = seed(&*store).await;
    let mut tx = store.write().await.expect("begin");
    let x1 = tx.next_xact_id().await.expect("xact");
    let x2 = tx.next_xact_id().await.expect("xact");
    assert!(x2 > x1 && x1.0 > XactId::BASE);
    assert_eq!(x1.to_string().len(), 19);
    let mut v = object(ObjectKind::Prompt, org, p, "p", 10);
    v.xact_id = Some(x1);
    tx.insert_object(&v).await.expect("insert");
    tx.insert_object_version(&v).await.expect("v1");
    let mut v2 = v.clone();
    v2.xact_id = Some(x2);
    v2.data = json!({"prompt_data": {"x": 2}});
    tx.update_object(&v2).await.expect("update");
    tx.insert_object_version(&v2).await.expect("v2");
    tx.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    assert_eq!(tx.get_object_version(v.id, x1).await.expect("v1"), Some(v.clone()));
    assert_eq!(tx.get_object_version(v.id, XactId(x2.0 + 5)).await.expect("v2"), Some(v2.clone()));
    assert_eq!(tx.get_object_version(v.id, XactId(x1.0 - 1)).await.expect("none"), None);
}

/// Every write of a row is kept; a fetch returns each row's newest version at the
/// version asked for, without tombstones or comments, newest transaction first,
/// and pages with a cursor.
pub async fn event_logs_keep_every_version_and_read_as_of_a_transaction(store: Arc<dyn Store>) {
    let (_, _, p, _) = seed(&*store).await;
    let log = EventObject { kind: EventKind::Experiment, id: Uuid::now_v7() };
    let other = EventObject { kind: EventKind::ProjectLogs, id: p.0 };
    let mut w = store.data_write().await.expect("begin");
    let x1 = w.next_xact_id().await.expect("xact");
    let mut rows: Vec<EventWrite> = ["a", "b", "c"].iter().map(|id| row(log, p, id, json!({"v": 1}))).collect();
    rows.push(row(other, p, "a", json!({"elsewhere": true})));
    let mut comment = row(log, p, "note", json!({"comment": {"text": "hi"}}));
    comment.is_comment = true;
    rows.push(comment);
    w.insert_events(x1, &rows).await.expect("insert");
    w.commit().await.expect("commit");

    let mut w = store.data_write().await.expect("begin");
    let latest = w.latest_events(log, &["a".into(), "b".into(), "zz".into()]).await.expect("latest");
    let x2 = w.next_xact_id().await.expect("xact");
    assert!(x2 > x1);
    assert_eq!(latest.len(), 2);
    assert!(latest.iter().all(|e| e.xact_id == x1 && e.data == json!({"v": 1})));
    let mut gone = row(log, p, "b", json!({}));
    gone.deleted = true;
    w.insert_events(x2, &[row(log, p, "a", json!({"v": 2})), gone]).await.expect("insert");
    w.commit().await.expect("commit");

    let mut tx = store.read().await.expect("read");
    let now = tx.current_xact_id().await.expect("current");
    assert_eq!(now, x2);
    let q = |version, after, limit| EventQuery { object: log, version, after, limit };
    let page = tx.fetch_events(&q(now, None, 10)).await.expect("fetch");
    let got: Vec<(String, XactId)> = page.iter().map(|e| (e.row_id.clone(), e.xact_id)).collect();
    assert_eq!(got, vec![("a".into(), x2), ("c".into(), x1)]);
    assert_eq!(page[0].data, json!({"v": 2}));
    assert_eq!(page[0].project_id, p);
    let then = tx.fetch_events(&q(x1, None, 10)).await.expect("fetch at x1");
    let got: Vec<(String, serde_json::Value)> = then.iter().map(|e| (e.row_id.clone(), e.data.clone())).collect();
    assert_eq!(got, vec![("c".into(), json!({"v": 1})), ("b".into(), json!({"v": 1})), ("a".into(), json!({"v": 1}))]);
    let first = tx.fetch_events(&q(x1, None, 2)).await.expect("page 1");
    let last = first.last().map(|e| (e.xact_id, e.row_id.clone()));
    let second = tx.fetch_events(&q(x1, last, 2)).await.expect("page 2");
    assert_eq!(second.iter().map(|e| e.row_id.as_str()).collect::<Vec<_>>(), vec!["a"]);
    assert_eq!(tx.count_events(log).await.expect("count"), 2);
    assert_eq!(tx.count_events(other).await.expect("count"), 1);
}

/// Concurrent data writes get distinct ids, in the order they commit; a write that
/// is rolled back leaves no rows behind.
pub async fn data_writes_get_increasing_ids_and_roll_back_cleanly(store: Arc<dyn Store>) {
    let (_, _, p, _) = seed(&*store).await;
    let log = EventObject { kind: EventKind::Dataset, id: Uuid::now_v7() };
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut w = store.data_write().await.expect("begin");
            let x = w.next_xact_id().await.expect("xact");
            w.insert_events(x, &[row(log, p, &format!("r{i}"), json!({"i": i}))]).await.expect("insert");
            w.commit().await.expect("commit");
            x
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("task"));
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    let mut w = store.data_write().await.expect("begin");
    let x = w.next_xact_id().await.expect("xact");
    w.insert_events(x, &[row(log, p, "ghost", json!({}))]).await.expect("insert");
    drop(w);
    let mut tx = store.read().await.expect("read");
    let now = tx.current_xact_id().await.expect("current");
    assert_eq!(Some(&now), ids.last(), "a rolled-back write does not advance the counter");
    let rows = tx.fetch_events(&EventQuery { object: log, version: now, after: None, limit: 100 }).await.expect("f");
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r.row_id != "ghost"));
}

/// One data transaction may carry several writes, each with its own id; a later
/// write reads the earlier ones, and all become visible at commit.
pub async fn one_data_transaction_carries_several_writes_in_order(store: Arc<dyn Store>) {
    let (_, _, p, _) = seed(&*store).await;
    let log = EventObject { kind: EventKind::ProjectLogs, id: p.0 };
    let mut w = store.data_write().await.expect("begin");
    let x1 = w.next_xact_id().await.expect("x1");
    w.insert_events(x1, &[row(log, p, "r", json!({"v": 1}))]).await.expect("first");
    let x2 = w.next_xact_id().await.expect("x2");
    assert!(x2 > x1);
    let seen = w.latest_events(log, &["r".into()]).await.expect("latest");
    assert_eq!(seen.iter().map(|e| (e.xact_id, e.data.clone())).collect::<Vec<_>>(), vec![(x1, json!({"v": 1}))]);
    w.insert_events(x2, &[row(log, p, "r", json!({"v": 2}))]).await.expect("second");
    let mut before = store.read().await.expect("read");
    assert!(before.current_xact_id().await.expect("current") < x1, "nothing is visible before the commit");
    drop(before);
    w.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    let q = |version| EventQuery { object: log, version, after: None, limit: 10 };
    assert_eq!(tx.fetch_events(&q(x1)).await.expect("at x1")[0].data, json!({"v": 1}));
    assert_eq!(tx.fetch_events(&q(x2)).await.expect("at x2")[0].data, json!({"v": 2}));
}

/// Blobs are announced once per key, take bytes and a status later, and remember
/// which logs reference them.
pub async fn blobs_are_announced_uploaded_and_referenced(store: Arc<dyn Store>) {
    let (org, user, p, _) = seed(&*store).await;
    let b = BlobRecord {
        key: "k1".into(),
        purpose: BlobPurpose::Attachment,
        org_id: org,
        user_id: user,
        filename: Some("h.txt".into()),
        content_type: Some("text/plain".into()),
        status: json!({"upload_status": "uploading"}),
        size_bytes: None,
        created: 5,
    };
    let log = EventObject { kind: EventKind::ProjectLogs, id: p.0 };
    let mut w = store.data_write().await.expect("begin");
    w.insert_blob(&b).await.expect("announce");
    assert!(matches!(w.insert_blob(&b).await, Err(StoreError::Conflict(_))));
    w.put_blob_data("k1", b"hello").await.expect("put");
    assert!(matches!(w.put_blob_data("nope", b"x").await, Err(StoreError::NotFound(_))));
    w.set_blob_status("k1", &json!({"upload_status": "done"})).await.expect("status");
    w.insert_attachment_refs(log, &["k1".into(), "k1".into()]).await.expect("refs");
    w.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    let got = tx.get_blob("k1").await.expect("get").expect("there");
    assert_eq!(got.status, json!({"upload_status": "done"}));
    assert_eq!(got.size_bytes, Some(5));
    assert_eq!(tx.get_blob_data("k1").await.expect("data"), Some(b"hello".to_vec()));
    assert_eq!(tx.attachment_refs("k1").await.expect("refs"), vec![log]);
    drop(tx);
    let mut w = store.data_write().await.expect("begin");
    w.delete_blob("k1").await.expect("delete");
    w.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    assert_eq!(tx.get_blob("k1").await.expect("get"), None);
}

/// A server secret is generated once; later candidates do not replace it.
pub async fn server_secrets_are_kept_from_the_first_start(store: Arc<dyn Store>) {
    let first = store.server_secret("signing", b"aaaa").await.expect("first");
    let second = store.server_secret("signing", b"bbbb").await.expect("second");
    assert_eq!(first, b"aaaa".to_vec());
    assert_eq!(second, first);
}

/// The access state lists live objects of live projects (and their grants) only.
pub async fn the_access_state_lists_live_project_objects_and_their_grants(store: Arc<dyn Store>) {
    let (org, user, p, q) = seed(&*store).await;
    let live = object(ObjectKind::Experiment, org, p, "live", 10);
    let gone = object(ObjectKind::Dataset, org, p, "gone", 11);
    let orphan = object(ObjectKind::Prompt, org, q, "orphan", 12);
    let grant = |obj: &ObjectRecord, created| AclRecord {
        id: AclId::generate(),
        org_id: org,
        object_type: obj.kind.object_type(),
        object_id: obj.id,
        user_id: Some(user),
        group_id: None,
        permission: Some(Permission::Read),
        role_id: None,
        restrict_object_type: None,
        expires_at: None,
        created,
    };
    let (a1, a2, a3) = (grant(&live, 20), grant(&gone, 21), grant(&orphan, 22));
    let mut tx = store.write().await.expect("begin");
    for o in [&live, &gone, &orphan] {
        tx.insert_object(o).await.expect("object");
    }
    for a in [&a1, &a2, &a3] {
        tx.insert_acl(a).await.expect("acl");
    }
    tx.delete_object(gone.id, 30).await.expect("delete");
    tx.delete_project(q, 31).await.expect("delete project");
    tx.commit().await.expect("commit");
    let mut tx = store.read().await.expect("read");
    let s = tx.load_access_state().await.expect("state");
    assert_eq!(s.project_objects, vec![(ObjectType::Experiment, live.id, p)]);
    assert_eq!(s.acls, vec![a1]);
}

/// Administration objects: unique by name per kind and scope, updated in place,
/// listed with filters, deleted for good, and swept with the org, project or object
/// they are set on.
pub async fn administration_objects_are_unique_per_scope_and_go_with_it(store: Arc<dyn Store>) {
    let (org, user, p, q) = seed(&*store).await;
    let f = object(ObjectKind::Function, org, p, "tool", 5);
    let admin = |scope: castellan_core::ObjectRef, name: &str, created: i64| AdminRecord {
        id: Uuid::now_v7(),
        kind: AdminKind::EnvVar,
        org_id: org,
        scope,
        name: name.into(),
        data: json!({"secret_type": null}),
        secret: Some(vec![1, 2, 3]),
        secret_updated_at: Some(created),
        secret_updated_by: Some(user),
        created,
        updated: created,
    };
    let on = |t: ObjectType, id: Uuid| castellan_core::ObjectRef::new(t, id);
    let in_org = admin(on(ObjectType::Organization, org.0), "KEY", 10);
    let in_p = admin(on(ObjectType::Project, p.0), "KEY", 11);
    let in_q = admin(on(ObjectType::Project, q.0), "OTHER", 12);
    let in_f = admin(on(ObjectType::Prompt, f.id), "KEY", 13);
    let mut tx = store.write().await.expect("begin");
    tx.insert_object(&f).await.expect("function");
    for a in [&in_org, &in_p, &in_q, &in_f] {
        tx.insert_admin(a).await.expect("insert: the same name on another scope is free");
    }
    let clash = tx.insert_admin(&admin(on(ObjectType::Project, p.0), "KEY", 14)).await;
    assert!(matches!(clash, Err(StoreError::Conflict(ref m)) if m.contains("`KEY`")), "{clash:?}");
    assert_eq!(tx.get_admin(in_p.id).await.expect("get"), Some(in_p.clone()));
    let found = tx.find_admin(AdminKind::EnvVar, in_f.scope, "KEY").await.expect("find");
    assert_eq!(found.map(|a| a.id), Some(in_f.id));
    let mut renamed = in_p.clone();
    renamed.name = "OTHER".into();
    renamed.secret = None;
    renamed.updated = 20;
    tx.update_admin(&renamed).await.expect("rename");
    assert_eq!(tx.get_admin(in_p.id).await.expect("get"), Some(renamed.clone()));
    let third = admin(on(ObjectType::Project, p.0), "THIRD", 15);
    tx.insert_admin(&third).await.expect("third");
    let clash = tx.update_admin(&AdminRecord { name: "OTHER".into(), ..third.clone() }).await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "a rename onto a taken name: {clash:?}");
    tx.delete_admin(third.id).await.expect("delete third");
    let all = AdminFilter {
        kind: AdminKind::EnvVar,
        orgs: vec![org],
        scope_type: None,
        scope_id: None,
        ids: vec![],
        name: None,
    };
    let ids = |v: Vec<AdminRecord>| v.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(ids(tx.list_admin(&all, &window(10)).await.expect("list")), vec![in_f.id, in_q.id, in_p.id, in_org.id]);
    let projects = AdminFilter { scope_type: Some(ObjectType::Project), ..all.clone() };
    assert_eq!(ids(tx.list_admin(&projects, &window(10)).await.expect("list")), vec![in_q.id, in_p.id]);
    let named = AdminFilter { name: Some("KEY".into()), ..all.clone() };
    assert_eq!(ids(tx.list_admin(&named, &window(10)).await.expect("list")), vec![in_f.id, in_org.id]);
    let scoped = AdminFilter { scope_id: Some(org.0), ..all.clone() };
    assert_eq!(ids(tx.list_admin(&scoped, &window(10)).await.expect("list")), vec![in_org.id]);
    let nobody = AdminFilter { orgs: vec![], ..all.clone() };
    assert!(tx.list_admin(&nobody, &window(10)).await.expect("list").is_empty());
    assert_eq!(ids(tx.list_admin(&all, &window(1)).await.expect("list")), vec![in_f.id]);
    // A project takes its own variables and its objects' with it; the org takes the rest.
    assert_eq!(ids(tx.delete_admin_under(p.0).await.expect("sweep")), vec![in_p.id, in_f.id]);
    tx.delete_admin(in_q.id).await.expect("delete");
    assert!(matches!(tx.delete_admin(in_q.id).await, Err(StoreError::NotFound(_))));
    assert_eq!(tx.get_admin(in_q.id).await.expect("get"), None);
    assert_eq!(ids(tx.delete_admin_under(org.0).await.expect("sweep")), vec![in_org.id]);
    assert!(tx.list_admin(&all, &window(10)).await.expect("list").is_empty());
    tx.commit().await.expect("commit");
}

/// Usage counters add up per day and month, in one statement, and roll back with
/// their write; a plan round-trips; a crossing is recorded and audited once.
pub async fn usage_counters_add_up_and_crossings_are_recorded_once(store: Arc<dyn Store>) {
    let (org, user, _, _) = seed(&*store).await;
    let d = |b, s, sc| UsageCounts { processed_bytes: b, spans: s, scores: sc };
    let mut w = store.data_write().await.expect("begin");
    assert_eq!(w.lock_usage(org, "2026-12").await.expect("lock"), UsageCounts::default());
    assert_eq!(w.add_usage(org, "2026-12-01", "2026-12", &d(100, 2, 1)).await.expect("add"), d(100, 2, 1));
    assert_eq!(w.add_usage(org, "2026-12-02", "2026-12", &d(50, 1, 0)).await.expect("add"), d(150, 3, 1));
    w.commit().await.expect("commit");
    let mut w = store.data_write().await.expect("begin");
    w.add_usage(org, "2026-12-02", "2026-12", &d(1, 1, 1)).await.expect("add");
    drop(w);
    let mut w = store.data_write().await.expect("begin");
    assert_eq!(w.lock_usage(org, "2026-12").await.expect("lock"), d(150, 3, 1), "a rollback counts nothing");
    assert_eq!(w.org_plan(org).await.expect("plan"), None);
    let c = UsageCrossing {
        org_id: org,
        period: "2026-12".into(),
        metric: "spans".into(),
        threshold: 50,
        limit: 4,
        used: 3,
        crossed_at: 5,
    };
    assert!(w.record_crossing(&c).await.expect("cross"));
    assert!(!w.record_crossing(&UsageCrossing { used: 4, ..c.clone() }).await.expect("again"), "once a month");
    w.commit().await.expect("commit");
    let mut tx = store.write().await.expect("begin");
    let days = tx.usage_periods(org, "2026-12-01", "2026-12-31").await.expect("days");
    assert_eq!(
        days.iter().map(|p| (p.period.as_str(), p.counts)).collect::<Vec<_>>(),
        [("2026-12-01", d(100, 2, 1)), ("2026-12-02", d(50, 1, 0))]
    );
    let months = tx.usage_periods(org, "2026-01", "2026-12").await.expect("months");
    assert_eq!(months.len(), 1, "days are not months");
    assert_eq!(months[0].counts, d(150, 3, 1));
    let plan = PlanRecord {
        org_id: org,
        data: json!({"enforcement": "hard"}),
        updated: 7,
        updated_by: Some(user),
        alert_secret: Some(vec![1, 2, 3]),
        alert_secret_updated: Some(7),
    };
    tx.put_plan(&plan).await.expect("put");
    tx.put_plan(&PlanRecord { updated: 8, ..plan.clone() }).await.expect("put again");
    assert_eq!(tx.get_plan(org).await.expect("get"), Some(PlanRecord { updated: 8, ..plan.clone() }));
    // Rotation pages through sealed signing secrets and re-seals only the value it read.
    let page = tx.sealed_plan_page(None, 10).await.expect("page");
    assert_eq!(page.iter().map(|p| p.org_id).collect::<Vec<_>>(), [org]);
    assert!(tx.sealed_plan_page(Some(org), 10).await.expect("after").is_empty());
    assert!(!tx.reseal_plan_secret(org, &[9], &[4, 5]).await.expect("stale"), "not the value read");
    assert!(tx.reseal_plan_secret(org, &[1, 2, 3], &[4, 5]).await.expect("reseal"));
    assert_eq!(tx.get_plan(org).await.expect("get").and_then(|p| p.alert_secret), Some(vec![4, 5]));
    assert_eq!(tx.unaudited_crossings(10).await.expect("pending"), std::slice::from_ref(&c));
    assert!(tx.mark_crossing_audited(&c, 9).await.expect("mark"));
    assert!(!tx.mark_crossing_audited(&c, 10).await.expect("mark again"), "audited once");
    assert!(tx.unaudited_crossings(10).await.expect("pending").is_empty());
    assert_eq!(tx.list_crossings(org, "2026-12").await.expect("list"), [c]);
    tx.commit().await.expect("commit");
    let mut w = store.data_write().await.expect("begin");
    assert_eq!(w.org_plan(org).await.expect("plan"), Some(json!({"enforcement": "hard"})));
}
