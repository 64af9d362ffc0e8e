//! Property tests: the snapshot index against the naive reference evaluator on randomized
//! worlds built by random mutation sequences (nested groups, nested roles, restrictions,
//! expiry, removals, invalid mutations). Every comparison counts as one case; the suite
//! runs well over 100,000 of them. Set `CASTELLAN_AUTHZ_WORLDS` to run more worlds.

use castellan_authz::reference::Reference;
use castellan_authz::{
    AclRow, AuthzError, Decision, Grant, Mutation, NearMissReason, ObjectRef, ObjectType, Permission, Snapshot, Subject,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

use ObjectType as T;

const TIMES: [i64; 3] = [0, 100, 200];

/// A small universe of ids so that random mutations collide, nest and fail often.
struct Pools {
    orgs: Vec<Uuid>,
    projects: Vec<Uuid>,
    leaves: Vec<ObjectRef>,
    groups: Vec<Uuid>,
    roles: Vec<Uuid>,
    users: Vec<Uuid>,
    acl_ids: Vec<Uuid>,
    project_groups: Vec<Uuid>,
    ai_secrets: Vec<Uuid>,
    /// The objects that existed when the current batch was drawn.
    existing: Vec<ObjectRef>,
}

fn id(rng: &mut StdRng) -> Uuid {
    Uuid::from_u128(rng.gen())
}

impl Pools {
    fn new(rng: &mut StdRng) -> Pools {
        let kinds = [T::Experiment, T::Dataset, T::Prompt, T::PromptSession];
        Pools {
            orgs: (0..2).map(|_| id(rng)).collect(),
            projects: (0..4).map(|_| id(rng)).collect(),
            leaves: (0..8).map(|i| ObjectRef::new(kinds[i % 4], id(rng))).collect(),
            groups: (0..7).map(|_| id(rng)).collect(),
            roles: (0..5).map(|_| id(rng)).collect(),
            users: (0..6).map(|_| id(rng)).collect(),
            acl_ids: Vec::new(),
            project_groups: (0..3).map(|_| id(rng)).collect(),
            ai_secrets: (0..3).map(|_| id(rng)).collect(),
            existing: Vec::new(),
        }
    }

    fn pick<T: Copy>(rng: &mut StdRng, xs: &[T]) -> T {
        xs[rng.gen_range(0..xs.len())]
    }

    /// Any object the universe can name (existing or not).
    fn object(&self, rng: &mut StdRng) -> ObjectRef {
        let org = Self::pick(rng, &self.orgs);
        match rng.gen_range(0..12) {
            11 => ObjectRef::new(T::AiSecret, Self::pick(rng, &self.ai_secrets)),
            10 => {
                let t = if rng.gen_bool(0.5) { T::ProjectGroup } else { T::ProjectGroupProjects };
                ObjectRef::new(t, Self::pick(rng, &self.project_groups))
            }
            0 => ObjectRef::new(T::Organization, org),
            1 => ObjectRef::new(Self::pick(rng, &T::ORG_NOUNS), org),
            2 => ObjectRef::new(T::Project, Self::pick(rng, &self.projects)),
            3 => ObjectRef::new(T::ProjectLog, Self::pick(rng, &self.projects)),
            4 => ObjectRef::new(T::Group, Self::pick(rng, &self.groups)),
            5 => ObjectRef::new(T::Role, Self::pick(rng, &self.roles)),
            _ => Self::pick(rng, &self.leaves),
        }
    }

    /// Mostly three permissions, so grants and queries meet often.
    fn permission(rng: &mut StdRng) -> Permission {
        if rng.gen_bool(0.8) {
            Self::pick(rng, &Permission::ALL[..3])
        } else {
            Self::pick(rng, &Permission::ALL)
        }
    }

    /// An existing object most of the time, else any.
    fn live_object(&self, model: &Reference, rng: &mut StdRng) -> ObjectRef {
        if model.objects.is_empty() || rng.gen_bool(0.15) {
            return self.object(rng);
        }
        let i = rng.gen_range(0..model.objects.len());
        model.objects.keys().nth(i).copied().unwrap_or_else(|| self.object(rng))
    }

    fn restriction(rng: &mut StdRng) -> Option<ObjectType> {
        rng.gen_bool(0.35).then(|| Self::pick(rng, &ObjectType::ALL))
    }

    fn mutation(&mut self, rng: &mut StdRng) -> Mutation {
        let org = Self::pick(rng, &self.orgs);
        let g = Self::pick(rng, &self.groups);
        let g2 = Self::pick(rng, &self.groups);
        let r = Self::pick(rng, &self.roles);
        let r2 = Self::pick(rng, &self.roles);
        let u = Self::pick(rng, &self.users);
        let p = Self::permission(rng);
        if rng.gen_range(0..100) < 10 {
            let group = Self::pick(rng, &self.project_groups);
            let project = Self::pick(rng, &self.projects);
            return match rng.gen_range(0..10) {
                0..=2 => Mutation::AddProjectGroup { group, org },
                3 => Mutation::RemoveProjectGroup { group },
                4..=8 => Mutation::AddGroupProject { group, project },
                _ => Mutation::RemoveGroupProject { group, project },
            };
        }
        match rng.gen_range(0..100) {
            0..=5 => Mutation::AddOrg { org },
            6 => Mutation::RemoveOrg { org },
            7..=14 => {
                let parent = match rng.gen_range(0..4) {
                    0 => ObjectRef::new(T::OrgProject, org),
                    1 => ObjectRef::new(T::Organization, org),
                    _ => self.object(rng),
                };
                Mutation::AddObject { object: ObjectRef::new(T::Project, Self::pick(rng, &self.projects)), parent }
            }
            15..=16 => {
                // An AI secret, under its org or its org's `org_ai_secret` (or anywhere).
                let parent = match rng.gen_range(0..4) {
                    0 => ObjectRef::new(T::OrgAiSecret, org),
                    1 => ObjectRef::new(T::Organization, org),
                    2 => self.object(rng),
                    _ => ObjectRef::new(T::Organization, org),
                };
                Mutation::AddObject { object: ObjectRef::new(T::AiSecret, Self::pick(rng, &self.ai_secrets)), parent }
            }
            17..=24 => {
                let parent = if rng.gen_bool(0.8) {
                    ObjectRef::new(T::Project, Self::pick(rng, &self.projects))
                } else {
                    self.object(rng)
                };
                Mutation::AddObject { object: Self::pick(rng, &self.leaves), parent }
            }
            25..=26 => Mutation::RemoveObject { object: self.object(rng) },
            27..=31 => Mutation::AddGroup { group: g, org },
            32 => Mutation::RemoveGroup { group: g },
            33..=40 => Mutation::AddGroupUser { group: g, user: u },
            41..=42 => Mutation::RemoveGroupUser { group: g, user: u },
            43..=49 => Mutation::AddGroupGroup { group: g, member_group: g2 },
            50..=51 => Mutation::RemoveGroupGroup { group: g, member_group: g2 },
            52..=54 => Mutation::AddRole { role: r, org: if rng.gen_bool(0.2) { None } else { Some(org) } },
            55 => Mutation::RemoveRole { role: r },
            56..=60 => {
                Mutation::AddRolePermission { role: r, permission: p, restrict_object_type: Self::restriction(rng) }
            }
            61 => {
                Mutation::RemoveRolePermission { role: r, permission: p, restrict_object_type: Self::restriction(rng) }
            }
            62..=66 => Mutation::AddRoleInherit { role: r, member_role: r2 },
            67 => Mutation::RemoveRoleInherit { role: r, member_role: r2 },
            68..=92 => {
                let acl = if rng.gen_bool(0.05) && !self.acl_ids.is_empty() {
                    Self::pick(rng, &self.acl_ids)
                } else {
                    let a = id(rng);
                    self.acl_ids.push(a);
                    a
                };
                let subject = if rng.gen_bool(0.5) { Subject::User(u) } else { Subject::Group(g) };
                let grant = if rng.gen_bool(0.3) {
                    Grant::Role(r)
                } else {
                    Grant::Permission { permission: p, restrict_object_type: Self::restriction(rng) }
                };
                let expires_at = if rng.gen_bool(0.3) { Some(Self::pick(rng, &[50, 100, 150, 250])) } else { None };
                let object = if self.existing.is_empty() || rng.gen_bool(0.1) {
                    self.object(rng)
                } else {
                    Self::pick(rng, &self.existing)
                };
                Mutation::AddAcl(AclRow { id: acl, object, subject, grant, expires_at })
            }
            93..=96 if !self.acl_ids.is_empty() => Mutation::RemoveAcl { id: Self::pick(rng, &self.acl_ids) },
            97 => Mutation::RemoveUser { user: u },
            _ => Mutation::AddGroupUser { group: g, user: u },
        }
    }
}

/// Checks a decision's reasons against the model: each grant path is a real chain.
fn assert_paths_are_real(d: &Decision, user: Uuid, p: Permission, model: &Reference, ctx: &str) {
    for g in &d.grants {
        assert_eq!(g.permission, p, "{ctx}");
        let row = model.acls.get(&g.acl_id).unwrap_or_else(|| panic!("{ctx}: unknown acl in path"));
        assert_eq!(row.subject, g.subject, "{ctx}");
        assert_eq!(row.object, g.acl_object, "{ctx}");
        match row.subject {
            Subject::User(u) => {
                assert_eq!(u, user, "{ctx}");
                assert!(g.group_chain.is_empty(), "{ctx}");
            }
            Subject::Group(target) => {
                let chain = &g.group_chain;
                assert!(!chain.is_empty(), "{ctx}: group grant without chain");
                assert!(model.group_users.contains(&(chain[0], user)), "{ctx}: chain does not start at a direct group");
                for w in chain.windows(2) {
                    assert!(model.group_groups.contains(&(w[1], w[0])), "{ctx}: broken group chain");
                }
                assert_eq!(chain.last(), Some(&target), "{ctx}");
            }
        }
        match row.grant {
            Grant::Permission { permission, restrict_object_type } => {
                assert!(g.role_chain.is_empty(), "{ctx}");
                assert_eq!((permission, restrict_object_type), (p, g.restrict_object_type), "{ctx}");
            }
            Grant::Role(r) => {
                let chain = &g.role_chain;
                assert_eq!(chain.first(), Some(&r), "{ctx}");
                for w in chain.windows(2) {
                    assert!(model.role_inherits.contains(&(w[0], w[1])), "{ctx}: broken role chain");
                }
                let last = *chain.last().unwrap_or(&r);
                assert!(model.role_perms.contains(&(last, p, g.restrict_object_type)), "{ctx}: role does not hold it");
            }
        }
    }
}

fn kind(r: &NearMissReason) -> String {
    match r {
        NearMissReason::Expired { at } => format!("expired {at}"),
        NearMissReason::RestrictedTo(_) => "restricted".into(),
    }
}

/// What the random worlds exercised, so a generator that drifts into trivial worlds fails.
#[derive(Default, Debug)]
struct Coverage {
    allowed: usize,
    denied: usize,
    nested_group_grants: usize,
    nested_role_grants: usize,
    expired_misses: usize,
    restricted_misses: usize,
    who_nonempty: usize,
    what_nonempty: usize,
    group_cycles: usize,
    role_cycles: usize,
    rejected_batches: usize,
    project_group_grants: usize,
    acls_on_nonempty: usize,
}

/// Compares every query on one state; returns the number of comparisons made.
fn compare_queries(
    s: &Snapshot,
    model: &Reference,
    pools: &Pools,
    rng: &mut StdRng,
    ctx: &str,
    cov: &mut Coverage,
) -> usize {
    let mut cases = 0;
    let live = |rng: &mut StdRng| pools.live_object(model, rng);
    for _ in 0..24 {
        let (u, p, x, now) =
            (Pools::pick(rng, &pools.users), Pools::permission(rng), live(rng), Pools::pick(rng, &TIMES));
        let allowed = s.check(u, p, x, now);
        assert_eq!(allowed, model.check(u, p, x, now), "{ctx}: check {u} {p} {x} at {now}");
        if allowed {
            cov.allowed += 1;
        } else {
            cov.denied += 1;
        }
        cases += 1;
    }
    for _ in 0..6 {
        let (u, p, x, now) =
            (Pools::pick(rng, &pools.users), Pools::permission(rng), live(rng), Pools::pick(rng, &TIMES));
        let d = s.explain(u, p, x, now);
        let ids: BTreeSet<Uuid> = d.grants.iter().map(|g| g.acl_id).collect();
        assert_eq!(ids, model.granting_acls(u, p, x, now), "{ctx}: explain grants {u} {p} {x} at {now}");
        assert_eq!(d.allowed, !ids.is_empty(), "{ctx}");
        let misses: BTreeMap<Uuid, String> = d.near_misses.iter().map(|n| (n.acl_id, kind(&n.reason))).collect();
        let want: BTreeMap<Uuid, String> = model.near_misses(u, p, x, now).iter().map(|(k, r)| (*k, kind(r))).collect();
        assert_eq!(misses, want, "{ctx}: near misses {u} {p} {x} at {now}");
        assert_paths_are_real(&d, u, p, model, ctx);
        cov.nested_group_grants += d.grants.iter().filter(|g| g.group_chain.len() > 1).count();
        cov.nested_role_grants += d.grants.iter().filter(|g| g.role_chain.len() > 1).count();
        cov.project_group_grants +=
            d.grants.iter().filter(|g| g.acl_object.object_type == ObjectType::ProjectGroupProjects).count();
        for n in &d.near_misses {
            match n.reason {
                NearMissReason::Expired { .. } => cov.expired_misses += 1,
                NearMissReason::RestrictedTo(_) => cov.restricted_misses += 1,
            }
        }
        cases += 1;
    }
    for _ in 0..4 {
        let (u, now) = (Pools::pick(rng, &pools.users), Pools::pick(rng, &TIMES));
        let t = Pools::pick(rng, &ObjectType::ALL);
        let parent = live(rng);
        assert_eq!(
            s.can_create(u, t, parent, now),
            model.can_create(u, t, parent, now),
            "{ctx}: can_create {u} {t} {parent}"
        );
        assert_eq!(s.explain_create(u, t, parent, now).allowed, model.can_create(u, t, parent, now), "{ctx}");
        cases += 1;
    }
    {
        let (p, x, now) = (Pools::permission(rng), live(rng), Pools::pick(rng, &TIMES));
        let limit = rng.gen_range(1..4);
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = s.who_can(p, x, now, after, limit);
            assert!(page.items.len() <= limit, "{ctx}");
            got.extend(page.items);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(got, model.who_can(p, x, now), "{ctx}: who_can {p} {x} at {now}");
        cov.who_nonempty += usize::from(!got.is_empty());
        cases += 1;
    }
    {
        let (u, p, t, now) = (
            Pools::pick(rng, &pools.users),
            Pools::permission(rng),
            Pools::pick(rng, &ObjectType::ALL),
            Pools::pick(rng, &TIMES),
        );
        let within = rng.gen_bool(0.4).then(|| live(rng));
        let limit = rng.gen_range(1..4);
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page = s.what_can(u, p, t, within, now, after, limit);
            got.extend(page.items);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(got, model.what_can(u, p, t, within, now), "{ctx}: what_can {u} {p} {t} within {within:?} at {now}");
        cov.what_nonempty += usize::from(!got.is_empty());
        cases += 1;
    }
    {
        let u = Pools::pick(rng, &pools.users);
        let want: Vec<Uuid> = model.groups_of(u).into_iter().collect();
        assert_eq!(s.groups_of(u), want, "{ctx}: groups_of");
        let direct: Vec<Uuid> = model.group_users.iter().filter(|(_, m)| *m == u).map(|(g, _)| *g).collect();
        let mut direct = direct;
        direct.sort_unstable();
        assert_eq!(s.direct_groups_of(u), direct, "{ctx}: direct_groups_of");
        let g = Pools::pick(rng, &pools.groups);
        let want: Vec<Uuid> = model.users_in_group(g).into_iter().collect();
        assert_eq!(s.users_in_group(g), want, "{ctx}: users_in_group");
        let x = pools.object(rng);
        assert_eq!(s.ancestors(x), model.ancestors(x), "{ctx}: ancestors");
        // The rows on an object that has some (when there are any), or on any object.
        // (picked without drawing from `rng`, so the worlds stay as they were).
        let y = model.acls.range(x.object_id..).next().or(model.acls.iter().next()).map_or(x, |(_, r)| r.object);
        let mut on = s.acls_on(y);
        on.sort_by_key(|r| r.id);
        let want: Vec<AclRow> = model.acls.values().filter(|r| r.object == y).copied().collect();
        assert_eq!(on, want, "{ctx}: acls_on {y}");
        cov.acls_on_nonempty += usize::from(!on.is_empty());
        assert_eq!(s.org_of(x), model.org_of(x), "{ctx}: org_of");
        let st = s.stats();
        assert_eq!(
            (st.objects, st.acls, st.groups, st.roles, st.users),
            (model.objects.len(), model.acls.len(), model.groups.len(), model.roles.len(), model.users().len()),
            "{ctx}: stats"
        );
        cases += 7;
    }
    cases
}

/// A batch of 1 to 5 mutations, mostly valid (each one is drawn until the reference accepts
/// it after the previous ones), sometimes ending with an unfiltered one that may be invalid
/// and then rejects the whole batch.
fn batch_of(pools: &mut Pools, model: &Reference, rng: &mut StdRng) -> Vec<Mutation> {
    let len = rng.gen_range(1..6);
    let mut muts = valid_batch(pools, model, rng, len);
    if rng.gen_bool(0.15) {
        muts.push(pools.mutation(rng));
    }
    muts
}

/// Up to `len` mutations, each valid after the previous ones.
fn valid_batch(pools: &mut Pools, model: &Reference, rng: &mut StdRng, len: usize) -> Vec<Mutation> {
    let mut scratch = model.clone();
    pools.existing = model.objects.keys().copied().collect();
    let mut muts = Vec::new();
    for _ in 0..len {
        for _ in 0..30 {
            let m = pools.mutation(rng);
            if scratch.apply_one(&m).is_ok() {
                muts.push(m);
                break;
            }
        }
    }
    muts
}

/// One random world: a mutation sequence applied in random batches to both evaluators,
/// with the answers compared after every batch. Returns the number of comparisons.
fn run_world(seed: u64, cov: &mut Coverage) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pools = Pools::new(&mut rng);
    let mut snap = Snapshot::empty();
    let mut model = Reference::new();
    let mut cases = 0;
    // Start with both orgs so most later mutations land.
    let boot: Vec<Mutation> = pools.orgs.iter().map(|o| Mutation::AddOrg { org: *o }).collect();
    snap = snap.apply(&boot).expect("orgs");
    model.apply(&boot).expect("orgs");
    // A valid setup batch first (structure, memberships, roles, rows), then random batches.
    for _ in 0..3 {
        let setup = valid_batch(&mut pools, &model, &mut rng, 20);
        model.apply(&setup).expect("a valid setup batch");
        snap = snap.apply(&setup).expect("a valid setup batch");
    }
    for batch in 0..16 {
        let muts = batch_of(&mut pools, &model, &mut rng);
        let before = snap.clone();
        let got = snap.apply(&muts);
        let want = model.apply(&muts);
        let ctx = format!("seed {seed} batch {batch} {muts:?}");
        match (&got, &want) {
            (Ok(_), Ok(())) => {}
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "{ctx}: different errors");
                cov.rejected_batches += 1;
                cov.group_cycles += usize::from(matches!(a, AuthzError::GroupCycle { .. }));
                cov.role_cycles += usize::from(matches!(a, AuthzError::RoleCycle { .. }));
            }
            _ => panic!("{ctx}: index {:?} but reference {want:?}", got.as_ref().err()),
        }
        cases += 1;
        if let Ok(next) = got {
            // The old snapshot is untouched by apply.
            assert_eq!(before.stats(), snap.stats(), "{ctx}");
            snap = next;
        }
        cases += compare_queries(&snap, &model, &pools, &mut rng, &ctx, cov);
    }
    cases
}

#[test]
fn the_index_agrees_with_the_reference_on_random_mutation_sequences() {
    let worlds: u64 = std::env::var("CASTELLAN_AUTHZ_WORLDS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let mut cov = Coverage::default();
    let cases: usize = (0..worlds).map(|w| run_world(w, &mut cov)).sum();
    println!("{cases} randomized cases compared with 0 mismatches; coverage {cov:?}");
    assert!(cases >= 100_000 || worlds < 600, "only {cases} cases");
    // The worlds are not trivial: every feature shows up a fair number of times.
    for (what, n) in [
        ("allowed checks", cov.allowed),
        ("nested group grants", cov.nested_group_grants),
        ("nested role grants", cov.nested_role_grants),
        ("expired near misses", cov.expired_misses),
        ("restricted near misses", cov.restricted_misses),
        ("non-empty who-can", cov.who_nonempty),
        ("non-empty acls_on", cov.acls_on_nonempty),
        ("non-empty what-can", cov.what_nonempty),
        ("group cycles rejected", cov.group_cycles),
        ("role cycles rejected", cov.role_cycles),
        ("grants through a project group", cov.project_group_grants),
    ] {
        assert!(n * 100 >= worlds as usize, "too few {what}: {n}");
    }
}

#[test]
fn a_cold_build_answers_like_the_same_mutations_applied_one_by_one() {
    for seed in 1000..1040 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pools = Pools::new(&mut rng);
        let mut muts: Vec<Mutation> = pools.orgs.iter().map(|o| Mutation::AddOrg { org: *o }).collect();
        let mut model = Reference::new();
        model.apply(&muts).expect("orgs");
        // Keep only the mutations that succeed, so the whole list is a valid build.
        for _ in 0..60 {
            let m = pools.mutation(&mut rng);
            if model.apply(std::slice::from_ref(&m)).is_ok() {
                muts.push(m);
            }
        }
        let built = Snapshot::build(muts).expect("valid list");
        compare_queries(&built, &model, &pools, &mut rng, &format!("build seed {seed}"), &mut Coverage::default());
    }
}
