//! Scenario tests of DESIGN §2: the seeded groups, creation, expiry, cycles, explanations,
//! pagination, cascades and publication; plus a data set of benchmark shape against the
//! reference.

use castellan_authz::bench_data::{generate, Rng, Spec};
use castellan_authz::reference::Reference;
use castellan_authz::seed::{self, BuiltinGroups};
use castellan_authz::{
    AclRow, AuthzError, Engine, Grant, Mutation, NearMissReason, ObjectRef, ObjectType, Permission, Snapshot, Subject,
};
use std::sync::Arc;
use uuid::Uuid;

use ObjectType as T;
use Permission as P;

struct World {
    snap: Snapshot,
    org: Uuid,
    owner_role: Uuid,
    groups: BuiltinGroups,
    creator: Uuid,
    engineer: Uuid,
    viewer: Uuid,
    project: ObjectRef,
    experiment: ObjectRef,
}

fn world() -> World {
    let org = Uuid::new_v4();
    let owner_role = Uuid::new_v4();
    let groups = BuiltinGroups { owners: Uuid::new_v4(), engineers: Uuid::new_v4(), viewers: Uuid::new_v4() };
    let (creator, engineer, viewer) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let project = ObjectRef::new(T::Project, Uuid::new_v4());
    let experiment = ObjectRef::new(T::Experiment, Uuid::new_v4());
    let mut m = seed::owner_role_mutations(owner_role);
    m.extend(seed::org_mutations(org, &groups, owner_role, creator, Uuid::new_v4));
    m.push(Mutation::AddGroupUser { group: groups.engineers, user: engineer });
    m.push(Mutation::AddGroupUser { group: groups.viewers, user: viewer });
    m.push(Mutation::AddObject { object: project, parent: ObjectRef::new(T::Organization, org) });
    m.push(Mutation::AddObject { object: experiment, parent: project });
    let snap = Snapshot::build(m).unwrap();
    World { snap, org, owner_role, groups, creator, engineer, viewer, project, experiment }
}

fn acl(object: ObjectRef, subject: Subject, grant: Grant, expires_at: Option<i64>) -> AclRow {
    AclRow { id: Uuid::new_v4(), object, subject, grant, expires_at }
}

#[test]
fn the_org_creator_holds_all_eight_permissions_on_everything_in_the_org() {
    let w = world();
    let o = |t| ObjectRef::new(t, w.org);
    let objects = [
        o(T::Organization),
        o(T::OrgMember),
        o(T::OrgProject),
        o(T::OrgAuditLogs),
        ObjectRef::new(T::Group, w.groups.viewers),
        w.project,
        ObjectRef::new(T::ProjectLog, w.project.object_id),
        w.experiment,
    ];
    for x in objects {
        for p in Permission::ALL {
            assert!(w.snap.check(w.creator, p, x, 0), "{p} on {x}");
        }
    }
}

#[test]
fn engineers_work_on_projects_and_read_the_org_but_do_not_manage_it() {
    let w = world();
    let o = |t| ObjectRef::new(t, w.org);
    for p in [P::Create, P::Read, P::Update, P::Delete] {
        assert!(w.snap.check(w.engineer, p, w.experiment, 0));
        assert!(w.snap.check(w.engineer, p, w.project, 0));
    }
    assert!(w.snap.can_create(w.engineer, T::Project, o(T::Organization), 0));
    for t in [T::Organization, T::OrgMember] {
        assert!(w.snap.check(w.engineer, P::Read, o(t), 0));
        assert!(!w.snap.check(w.engineer, P::Update, o(t), 0));
    }
    assert!(!w.snap.check(w.engineer, P::Read, o(T::OrgAuditLogs), 0));
    assert!(!w.snap.check(w.engineer, P::Create, o(T::OrgMember), 0));
    assert!(!w.snap.check(w.engineer, P::CreateAcls, o(T::Organization), 0));
}

#[test]
fn viewers_read_projects_and_their_objects_but_change_nothing() {
    let w = world();
    assert!(w.snap.check(w.viewer, P::Read, w.experiment, 0));
    assert!(w.snap.check(w.viewer, P::Read, ObjectRef::new(T::ProjectLog, w.project.object_id), 0));
    assert!(!w.snap.check(w.viewer, P::Update, w.experiment, 0));
    assert!(!w.snap.can_create(w.viewer, T::Project, ObjectRef::new(T::OrgProject, w.org), 0));
    assert!(w.snap.check(w.viewer, P::Read, ObjectRef::new(T::Group, w.groups.owners), 0));
}

#[test]
fn a_project_under_organization_or_org_project_has_the_same_chain() {
    let w = world();
    assert_eq!(
        w.snap.ancestors(w.project),
        vec![w.project, ObjectRef::new(T::OrgProject, w.org), ObjectRef::new(T::Organization, w.org)]
    );
    assert_eq!(w.snap.ancestors(w.experiment)[1..], w.snap.ancestors(w.project)[..]);
    let log = ObjectRef::new(T::ProjectLog, w.project.object_id);
    assert_eq!(w.snap.ancestors(log)[0], log);
    assert_eq!(w.snap.ancestors(log)[1..], w.snap.ancestors(w.project)[..]);
    // "Create projects" = create restricted to project on org_project.
    let u = Uuid::new_v4();
    let row = acl(
        ObjectRef::new(T::OrgProject, w.org),
        Subject::User(u),
        Grant::Permission { permission: P::Create, restrict_object_type: Some(T::Project) },
        None,
    );
    let s = w.snap.apply(&[Mutation::AddAcl(row)]).unwrap();
    for parent in [T::Organization, T::OrgProject] {
        assert!(s.can_create(u, T::Project, ObjectRef::new(parent, w.org), 0));
    }
    assert!(!s.can_create(u, T::Experiment, w.project, 0));
    assert!(!s.check(u, P::Create, w.experiment, 0));
}

#[test]
fn an_expired_grant_never_counts_and_is_reported_as_a_near_miss() {
    let w = world();
    let u = Uuid::new_v4();
    let row = acl(
        w.project,
        Subject::User(u),
        Grant::Permission { permission: P::Read, restrict_object_type: None },
        Some(100),
    );
    let s = w.snap.apply(&[Mutation::AddAcl(row)]).unwrap();
    assert!(s.check(u, P::Read, w.experiment, 99));
    assert!(!s.check(u, P::Read, w.experiment, 100));
    let d = s.explain(u, P::Read, w.experiment, 100);
    assert!(!d.allowed);
    assert_eq!(d.near_misses.len(), 1);
    assert_eq!(d.near_misses[0].reason, NearMissReason::Expired { at: 100 });
    assert!(s.who_can(P::Read, w.experiment, 100, None, 10).items.iter().all(|x| *x != u));
}

#[test]
fn a_restricted_grant_is_reported_as_a_near_miss_on_other_types() {
    let w = world();
    let u = Uuid::new_v4();
    let grant = Grant::Permission { permission: P::Update, restrict_object_type: Some(T::Dataset) };
    let s = w.snap.apply(&[Mutation::AddAcl(acl(w.project, Subject::User(u), grant, None))]).unwrap();
    let d = s.explain(u, P::Update, w.experiment, 0);
    assert!(!d.allowed);
    assert_eq!(d.near_misses[0].reason, NearMissReason::RestrictedTo(T::Dataset));
}

#[test]
fn explain_names_the_group_chain_and_the_role_chain() {
    let w = world();
    let (inner, outer, user) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (role, base) = (Uuid::new_v4(), Uuid::new_v4());
    let row = acl(w.project, Subject::Group(outer), Grant::Role(role), None);
    let s = w
        .snap
        .apply(&[
            Mutation::AddGroup { group: inner, org: w.org },
            Mutation::AddGroup { group: outer, org: w.org },
            Mutation::AddGroupGroup { group: outer, member_group: inner },
            Mutation::AddGroupUser { group: inner, user },
            Mutation::AddRole { role: base, org: Some(w.org) },
            Mutation::AddRolePermission { role: base, permission: P::Delete, restrict_object_type: None },
            Mutation::AddRole { role, org: Some(w.org) },
            Mutation::AddRoleInherit { role, member_role: base },
            Mutation::AddAcl(row),
        ])
        .unwrap();
    let d = s.explain(user, P::Delete, w.experiment, 0);
    assert!(d.allowed);
    assert_eq!(d.grants.len(), 1);
    assert_eq!(d.grants[0].acl_id, row.id);
    assert_eq!(d.grants[0].group_chain, vec![inner, outer]);
    assert_eq!(d.grants[0].role_chain, vec![role, base]);
    assert_eq!(s.groups_of(user), {
        let mut v = vec![inner, outer];
        v.sort();
        v
    });
}

#[test]
fn a_group_cycle_is_rejected_and_nothing_of_the_batch_is_applied() {
    let w = world();
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let s = w
        .snap
        .apply(&[
            Mutation::AddGroup { group: a, org: w.org },
            Mutation::AddGroup { group: b, org: w.org },
            Mutation::AddGroup { group: c, org: w.org },
            Mutation::AddGroupGroup { group: a, member_group: b },
            Mutation::AddGroupGroup { group: b, member_group: c },
        ])
        .unwrap();
    let before = s.stats();
    let err = s
        .apply(&[
            Mutation::AddGroupUser { group: c, user: Uuid::new_v4() },
            Mutation::AddGroupGroup { group: c, member_group: a },
        ])
        .unwrap_err();
    assert_eq!(err, AuthzError::GroupCycle { group: c, member_group: a });
    assert!(err.to_string().contains(&format!("`{a}`")));
    assert_eq!(s.stats(), before);
    assert!(matches!(
        s.apply(&[Mutation::AddGroupGroup { group: a, member_group: a }]),
        Err(AuthzError::GroupCycle { .. })
    ));
}

#[test]
fn a_role_cycle_is_rejected() {
    let w = world();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let s = w
        .snap
        .apply(&[
            Mutation::AddRole { role: a, org: Some(w.org) },
            Mutation::AddRole { role: b, org: Some(w.org) },
            Mutation::AddRoleInherit { role: a, member_role: b },
        ])
        .unwrap();
    assert_eq!(
        s.apply(&[Mutation::AddRoleInherit { role: b, member_role: a }]).unwrap_err(),
        AuthzError::RoleCycle { role: b, member_role: a }
    );
    // The system role Owner may be inherited by an org role, not the other way round.
    assert!(s.apply(&[Mutation::AddRoleInherit { role: a, member_role: w.owner_role }]).is_ok());
    assert!(matches!(
        s.apply(&[Mutation::AddRoleInherit { role: w.owner_role, member_role: a }]),
        Err(AuthzError::CrossOrg { .. })
    ));
}

#[test]
fn who_can_and_what_can_pages_are_complete_sorted_and_never_truncated() {
    let w = world();
    let g = Uuid::new_v4();
    let users: Vec<Uuid> = (0..57).map(|_| Uuid::new_v4()).collect();
    let mut m = vec![Mutation::AddGroup { group: g, org: w.org }];
    m.extend(users.iter().map(|u| Mutation::AddGroupUser { group: g, user: *u }));
    m.push(Mutation::AddAcl(acl(
        w.project,
        Subject::Group(g),
        Grant::Permission { permission: P::Update, restrict_object_type: None },
        None,
    )));
    let exps: Vec<Uuid> = (0..23).map(|_| Uuid::new_v4()).collect();
    m.extend(exps.iter().map(|e| Mutation::AddObject { object: ObjectRef::new(T::Experiment, *e), parent: w.project }));
    let s = w.snap.apply(&m).unwrap();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = s.who_can(P::Update, w.experiment, 0, after, 10);
        assert!(page.items.len() <= 10);
        all.extend(page.items);
        let Some(n) = page.next else { break };
        after = Some(n);
    }
    let mut want: Vec<Uuid> = users.clone();
    want.extend([w.creator, w.engineer]);
    want.sort();
    assert_eq!(all, want);
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = s.what_can(users[0], P::Update, T::Experiment, Some(w.project), 0, after, 7);
        got.extend(page.items);
        let Some(n) = page.next else { break };
        after = Some(n);
    }
    let mut want: Vec<Uuid> = exps.clone();
    want.push(w.experiment.object_id);
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn removing_an_org_drops_its_objects_groups_roles_and_rows() {
    let w = world();
    let s = w.snap.apply(&[Mutation::RemoveOrg { org: w.org }]).unwrap();
    let st = s.stats();
    assert_eq!((st.objects, st.acls, st.groups, st.users), (1, 0, 0, 0), "only the system role object remains");
    assert!(!s.check(w.creator, P::Read, w.experiment, 0));
    assert!(w.snap.check(w.creator, P::Read, w.experiment, 0), "the old snapshot is unchanged");
}

#[test]
fn the_engine_serves_the_old_snapshot_until_a_new_one_is_published() {
    let w = world();
    let engine = Engine::new(w.snap.clone().with_revision(7));
    let held: Arc<Snapshot> = engine.snapshot();
    let next = held.apply(&[Mutation::RemoveUser { user: w.viewer }]).unwrap().with_revision(8);
    engine.publish(next);
    assert_eq!(held.revision(), 7);
    assert!(held.check(w.viewer, P::Read, w.experiment, 0));
    assert_eq!(engine.snapshot().revision(), 8);
    assert!(!engine.snapshot().check(w.viewer, P::Read, w.experiment, 0));
}

#[test]
fn large_acl_buckets_answer_like_the_reference() {
    // Hundreds of rows on one object exercise the binary-search and Bloom-filter path.
    let w = world();
    let mut rng = Rng::new(5);
    let groups: Vec<Uuid> = (0..40).map(|_| rng.uuid()).collect();
    let users: Vec<Uuid> = (0..60).map(|_| rng.uuid()).collect();
    let mut m: Vec<Mutation> = groups.iter().map(|g| Mutation::AddGroup { group: *g, org: w.org }).collect();
    for u in &users {
        m.push(Mutation::AddGroupUser { group: rng.pick(&groups), user: *u });
    }
    for _ in 0..600 {
        let subject = if rng.chance(0.5) { Subject::Group(rng.pick(&groups)) } else { Subject::User(rng.pick(&users)) };
        let permission = rng.pick(&Permission::ALL);
        let restrict_object_type = rng.chance(0.3).then(|| rng.pick(&ObjectType::ALL));
        let object = if rng.chance(0.5) { ObjectRef::new(T::Organization, w.org) } else { w.project };
        let expires_at = rng.chance(0.2).then(|| rng.below(200) as i64);
        m.push(Mutation::AddAcl(acl(
            object,
            subject,
            Grant::Permission { permission, restrict_object_type },
            expires_at,
        )));
    }
    let s = w.snap.apply(&m).unwrap();
    let mut model = Reference::new();
    let mut base = seed::owner_role_mutations(w.owner_role);
    base.extend(seed::org_mutations(w.org, &w.groups, w.owner_role, w.creator, Uuid::new_v4));
    base.extend([
        Mutation::AddGroupUser { group: w.groups.engineers, user: w.engineer },
        Mutation::AddGroupUser { group: w.groups.viewers, user: w.viewer },
        Mutation::AddObject { object: w.project, parent: ObjectRef::new(T::Organization, w.org) },
        Mutation::AddObject { object: w.experiment, parent: w.project },
    ]);
    model.apply(&base).unwrap();
    model.apply(&m).unwrap();
    for u in &users {
        for p in Permission::ALL {
            for now in [0, 100, 300] {
                assert_eq!(s.check(*u, p, w.experiment, now), model.check(*u, p, w.experiment, now));
            }
        }
    }
    // Removals rebuild the filter: still exact.
    let doomed: Vec<Mutation> = m
        .iter()
        .filter_map(|x| match x {
            Mutation::AddAcl(r) if r.id.as_u128() % 2 == 0 => Some(Mutation::RemoveAcl { id: r.id }),
            _ => None,
        })
        .collect();
    let s = s.apply(&doomed).unwrap();
    model.apply(&doomed).unwrap();
    for u in &users {
        for p in Permission::ALL {
            assert_eq!(s.check(*u, p, w.experiment, 0), model.check(*u, p, w.experiment, 0));
        }
    }
}

#[test]
fn a_data_set_of_benchmark_shape_agrees_with_the_reference_on_a_sample() {
    // BT-1M scaled to 10k rows: nested groups 4 deep, roles 3 deep, 30% restricted rows,
    // expiring rows, seeded groups. Large enough for big buckets, small enough for debug CI.
    let spec = Spec::scaled("BT-10k", 0.01);
    let mut ds = generate(&spec, 3);
    let s = Snapshot::build(ds.mutations.clone()).unwrap();
    let mut model = Reference::new();
    model.apply(&ds.mutations).unwrap();
    let mut rng = Rng::new(9);
    for _ in 0..150 {
        let (u, p, x) = (rng.pick(&ds.users), rng.pick(&Permission::ALL[..4]), rng.pick(&ds.objects));
        assert_eq!(s.check(u, p, x, ds.now), model.check(u, p, x, ds.now), "{u} {p} {x}");
    }
    // A 1k-mutation batch applied to both.
    let batch = ds.mutation_batch(&spec, 1_000);
    let s2 = s.apply(&batch).unwrap();
    model.apply(&batch).unwrap();
    for _ in 0..100 {
        let (u, p, x) = (rng.pick(&ds.users), rng.pick(&Permission::ALL[..4]), rng.pick(&ds.objects));
        assert_eq!(s2.check(u, p, x, ds.now), model.check(u, p, x, ds.now), "{u} {p} {x} after the batch");
    }
    let x = ObjectRef::new(T::Project, ds.projects[0]);
    let page = s2.who_can(P::Read, x, ds.now, None, 50);
    for u in &page.items {
        assert!(model.check(*u, P::Read, x, ds.now));
    }
}

#[test]
fn a_data_set_with_project_groups_agrees_with_the_reference_on_a_sample() {
    let spec = Spec::scaled("BT-10k", 0.01).with_project_groups("BT-10k+PG", 5);
    let ds = generate(&spec, 4);
    assert!(ds.acls.iter().any(|a| a.object.object_type == T::ProjectGroupProjects), "rows on project groups");
    let s = Snapshot::build(ds.mutations.clone()).unwrap();
    let mut model = Reference::new();
    model.apply(&ds.mutations).unwrap();
    let mut rng = Rng::new(11);
    for _ in 0..200 {
        let (u, p, x) = (rng.pick(&ds.users), rng.pick(&Permission::ALL[..4]), rng.pick(&ds.objects));
        assert_eq!(s.check(u, p, x, ds.now), model.check(u, p, x, ds.now), "{u} {p} {x}");
        assert_eq!(s.ancestors(x), model.ancestors(x), "{x}");
    }
    for g in &ds.project_groups {
        let all = ObjectRef::new(T::ProjectGroupProjects, *g);
        assert_eq!(s.who_can(P::Read, all, ds.now, None, 100_000).items, model.who_can(P::Read, all, ds.now));
    }
}

#[test]
fn applying_a_batch_leaves_every_answer_of_the_old_snapshot_unchanged() {
    // The index shares its pieces between snapshots; a write must copy, never change a shared
    // piece. Answers of the old snapshot are taken before and after a mixed batch.
    let spec = Spec::scaled("BT-10k", 0.01);
    let mut ds = generate(&spec, 5);
    let s = Snapshot::build(ds.mutations.clone()).unwrap();
    let mut batch = ds.mutation_batch(&spec, 1_000);
    // Also removals that cascade: a project, a group and a user.
    batch.push(Mutation::RemoveObject { object: ObjectRef::new(T::Project, ds.projects[1]) });
    batch.push(Mutation::RemoveGroup { group: ds.groups[5] });
    batch.push(Mutation::RemoveUser { user: ds.users[2] });
    let mut rng = Rng::new(17);
    let checks: Vec<(Uuid, Permission, ObjectRef)> =
        (0..400).map(|_| (rng.pick(&ds.users), rng.pick(&Permission::ALL[..4]), rng.pick(&ds.objects))).collect();
    let answers = |s: &Snapshot| {
        let checks: Vec<bool> = checks.iter().map(|(u, p, x)| s.check(*u, *p, *x, ds.now)).collect();
        let explains: Vec<usize> = checks_explained(s, &checks_of(&ds, 40), ds.now);
        let who = s.who_can(P::Read, ObjectRef::new(T::Project, ds.projects[0]), ds.now, None, 10_000);
        let what = s.what_can(ds.users[1], P::Read, T::Experiment, None, ds.now, None, 10_000);
        let groups: Vec<Vec<Uuid>> = ds.users.iter().take(50).map(|u| s.groups_of(*u)).collect();
        let members = s.users_in_group(ds.groups[4]);
        (checks, explains, who, what, groups, members, s.stats())
    };
    let before = answers(&s);
    let next = s.apply(&batch).unwrap();
    assert_ne!(next.stats(), s.stats());
    assert_eq!(answers(&s), before);
}

fn checks_of(ds: &castellan_authz::bench_data::Dataset, n: usize) -> Vec<(Uuid, Permission, ObjectRef)> {
    let mut rng = Rng::new(23);
    (0..n).map(|_| (rng.pick(&ds.users), rng.pick(&Permission::ALL[..4]), rng.pick(&ds.objects))).collect()
}

/// The number of granting rows and near misses of each explained query.
fn checks_explained(s: &Snapshot, queries: &[(Uuid, Permission, ObjectRef)], now: i64) -> Vec<usize> {
    queries
        .iter()
        .map(|(u, p, x)| {
            let d = s.explain(*u, *p, *x, now);
            d.grants.len() * 1000 + d.near_misses.len()
        })
        .collect()
}

#[test]
fn a_project_group_grant_reaches_its_projects_until_they_leave_it() {
    let w = world();
    let (pg1, pg2) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let other = ObjectRef::new(T::Project, Uuid::new_v4());
    let alice = Uuid::new_v4();
    let grant = acl(
        ObjectRef::new(T::ProjectGroupProjects, pg1),
        Subject::User(alice),
        Grant::Permission { permission: P::Read, restrict_object_type: None },
        None,
    );
    let define = acl(
        ObjectRef::new(T::ProjectGroup, pg2),
        Subject::User(alice),
        Grant::Permission { permission: P::Update, restrict_object_type: None },
        None,
    );
    let s = w
        .snap
        .apply(&[
            Mutation::AddObject { object: other, parent: ObjectRef::new(T::Organization, w.org) },
            Mutation::AddProjectGroup { group: pg1, org: w.org },
            Mutation::AddProjectGroup { group: pg2, org: w.org },
            Mutation::AddGroupProject { group: pg1, project: w.project.object_id },
            Mutation::AddGroupProject { group: pg2, project: w.project.object_id },
            Mutation::AddGroupProject { group: pg2, project: other.object_id },
            Mutation::AddAcl(grant),
            Mutation::AddAcl(define),
        ])
        .unwrap();
    // The grant on "all projects of pg1" reaches the project in pg1 and what is inside it.
    assert!(s.check(alice, P::Read, w.project, 0));
    assert!(s.check(alice, P::Read, w.experiment, 0));
    assert!(!s.check(alice, P::Read, other, 0), "other is in pg2 only");
    // A grant on the group's definition reaches no project.
    assert!(!s.check(alice, P::Update, other, 0));
    assert!(s.check(alice, P::Update, ObjectRef::new(T::ProjectGroup, pg2), 0));
    // Ancestors and explain name the group.
    let pgp = |g| ObjectRef::new(T::ProjectGroupProjects, g);
    assert_eq!(
        s.ancestors(w.experiment),
        vec![
            w.experiment,
            w.project,
            pgp(pg1),
            pgp(pg2),
            ObjectRef::new(T::OrgProject, w.org),
            ObjectRef::new(T::Organization, w.org)
        ]
    );
    let d = s.explain(alice, P::Read, w.experiment, 0);
    assert_eq!(d.grants.iter().map(|g| (g.acl_id, g.acl_object)).collect::<Vec<_>>(), vec![(grant.id, pgp(pg1))]);
    assert!(s.who_can(P::Read, w.experiment, 0, None, 100).items.contains(&alice));
    assert_eq!(s.what_can(alice, P::Read, T::Project, None, 0, None, 100).items, vec![w.project.object_id]);
    assert_eq!(s.what_can(alice, P::Read, T::Experiment, None, 0, None, 100).items, vec![w.experiment.object_id]);
    // Leaving the group takes the access away at once; deleting the group too.
    let left = s.apply(&[Mutation::RemoveGroupProject { group: pg1, project: w.project.object_id }]).unwrap();
    assert!(!left.check(alice, P::Read, w.experiment, 0));
    assert!(s.check(alice, P::Read, w.experiment, 0), "the old snapshot is unchanged");
    let gone = s.apply(&[Mutation::RemoveProjectGroup { group: pg1 }]).unwrap();
    assert!(!gone.check(alice, P::Read, w.project, 0));
    assert_eq!(gone.ancestors(w.project)[1], pgp(pg2));
    // A project of another org cannot join.
    let zeta = Uuid::new_v4();
    let foreign = ObjectRef::new(T::Project, Uuid::new_v4());
    let err = s
        .apply(&[
            Mutation::AddOrg { org: zeta },
            Mutation::AddObject { object: foreign, parent: ObjectRef::new(T::Organization, zeta) },
            Mutation::AddGroupProject { group: pg1, project: foreign.object_id },
        ])
        .unwrap_err();
    assert!(matches!(err, AuthzError::WrongParentType { .. }), "{err:?}");
}
