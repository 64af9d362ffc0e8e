//! Deterministic generator of the benchmark data sets ("BT-1M" and its scalings), shared by
//! the benchmark and the size tests. It depends on nothing but a tiny built-in PRNG so the
//! same seed gives the same data everywhere.

use crate::seed::{org_mutations, owner_role_mutations, BuiltinGroups};
use crate::types::{AclRow, Grant, Mutation, Subject};
use castellan_core::model::{ObjectRef, ObjectType, Permission};
use uuid::Uuid;

/// The shape of a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Display name (`BT-1M`).
    pub name: String,
    /// Projects of the single organization.
    pub projects: usize,
    /// Experiments, datasets, prompts and prompt sessions, spread over the projects.
    pub objects: usize,
    /// Users.
    pub users: usize,
    /// Groups (besides the three built-in ones).
    pub groups: usize,
    /// Nesting depth of groups (a chain of this many groups).
    pub group_depth: usize,
    /// Roles (besides the system role Owner).
    pub roles: usize,
    /// Inheritance depth of roles.
    pub role_depth: usize,
    /// ACL rows (besides the seeded ones).
    pub acls: usize,
    /// Fraction of rows with a `restrict_object_type`.
    pub restricted: f64,
    /// Fraction of rows with an `expires_at` (half already expired at `now`).
    pub expiring: f64,
    /// Project groups; each project is in 0 to 3 of them, the first groups the largest,
    /// and 1% of the rows are on "all projects of" a group.
    pub project_groups: usize,
}

impl Spec {
    /// BT-1M: 1 org, 1,000 projects, 1M objects, 100k users, 10k groups nested up to 4 deep,
    /// 200 roles nested up to 3 deep, 1M ACL rows, 30% restricted.
    pub fn bt_1m() -> Spec {
        Spec::scaled("BT-1M", 1.0)
    }

    /// BT-100k: a tenth of BT-1M.
    pub fn bt_100k() -> Spec {
        Spec::scaled("BT-100k", 0.1)
    }

    /// BT-1M scaled by `f` (at least one project, ten users, five groups and five roles).
    pub fn scaled(name: &str, f: f64) -> Spec {
        let n = |x: f64, min: usize| ((x * f).round() as usize).max(min);
        Spec {
            name: name.to_owned(),
            projects: n(1_000.0, 1),
            objects: n(1_000_000.0, 10),
            users: n(100_000.0, 10),
            groups: n(10_000.0, 5),
            group_depth: 4,
            roles: n(200.0, 5),
            role_depth: 3,
            acls: n(1_000_000.0, 10),
            restricted: 0.30,
            expiring: 0.05,
            project_groups: 0,
        }
    }

    /// This data set with `n` project groups, named `name`.
    pub fn with_project_groups(self, name: &str, n: usize) -> Spec {
        Spec { name: name.to_owned(), project_groups: n, ..self }
    }
}

/// A generated data set and the handles a benchmark needs to query it.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The organization.
    pub org: Uuid,
    /// The clock to query at.
    pub now: i64,
    /// Everything, in an order `Snapshot::build` accepts.
    pub mutations: Vec<Mutation>,
    /// The users.
    pub users: Vec<Uuid>,
    /// The groups (built-in ones first).
    pub groups: Vec<Uuid>,
    /// The org roles.
    pub roles: Vec<Uuid>,
    /// The projects.
    pub projects: Vec<Uuid>,
    /// The objects inside projects.
    pub objects: Vec<ObjectRef>,
    /// The ACL rows (seeded ones included).
    pub acls: Vec<AclRow>,
    /// The project groups.
    pub project_groups: Vec<Uuid>,
    /// Counter for fresh ids of later batches.
    rng: Rng,
}

/// SplitMix64: small, fast, and good enough for synthetic data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    /// A random (version 4) uuid.
    pub fn uuid(&mut self) -> Uuid {
        let hi = (self.next_u64() as u128) << 64;
        uuid::Builder::from_random_bytes((hi | self.next_u64() as u128).to_be_bytes()).into_uuid()
    }
    /// A random element; `xs` must not be empty (the generator only passes non-empty pools).
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

const CHILD_TYPES: [ObjectType; 4] =
    [ObjectType::Experiment, ObjectType::Dataset, ObjectType::Prompt, ObjectType::PromptSession];

/// Generates the data set of `spec` from `seed` (counts below one are taken as one).
pub fn generate(spec: &Spec, seed: u64) -> Dataset {
    // INVARIANT: every pool the generator picks from is non-empty, so `Rng::pick` and the
    // `groups[3..]` draws below never index out of bounds.
    let spec = &Spec {
        projects: spec.projects.max(1),
        objects: spec.objects.max(1),
        users: spec.users.max(1),
        groups: spec.groups.max(1),
        roles: spec.roles.max(1),
        ..spec.clone()
    };
    let mut rng = Rng::new(seed);
    let now: i64 = 1_750_000_000_000_000;
    let org = rng.uuid();
    let owner_role = rng.uuid();
    let builtin = BuiltinGroups { owners: rng.uuid(), engineers: rng.uuid(), viewers: rng.uuid() };
    let users: Vec<Uuid> = (0..spec.users).map(|_| rng.uuid()).collect();
    let mut m = owner_role_mutations(owner_role);
    let mut seed_ids = Vec::new();
    m.extend(org_mutations(org, &builtin, owner_role, users[0], || {
        let id = rng.uuid();
        seed_ids.push(id);
        id
    }));
    let mut acls: Vec<AclRow> = m
        .iter()
        .filter_map(|x| match x {
            Mutation::AddAcl(row) => Some(*row),
            _ => None,
        })
        .collect();

    // Groups in levels: level 0 holds users, each group of level k < depth-1 sits in one
    // (sometimes two) groups of level k+1, so chains are up to `group_depth` long.
    let depth = spec.group_depth.max(1);
    let weights = [0.5, 0.25, 0.15, 0.10];
    let mut levels: Vec<Vec<Uuid>> = vec![Vec::new(); depth];
    for _ in 0..spec.groups {
        let mut l = 0;
        let mut x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        while l + 1 < depth && x >= weights.get(l).copied().unwrap_or(0.1) {
            x -= weights.get(l).copied().unwrap_or(0.1);
            l += 1;
        }
        let g = rng.uuid();
        m.push(Mutation::AddGroup { group: g, org });
        levels[l].push(g);
    }
    for l in 0..depth.saturating_sub(1) {
        if levels[l + 1].is_empty() {
            continue;
        }
        for i in 0..levels[l].len() {
            let g = levels[l][i];
            let parent = rng.pick(&levels[l + 1]);
            m.push(Mutation::AddGroupGroup { group: parent, member_group: g });
            if rng.chance(0.2) {
                let other = rng.pick(&levels[l + 1]);
                if other != parent {
                    m.push(Mutation::AddGroupGroup { group: other, member_group: g });
                }
            }
        }
    }
    let all_groups: Vec<Uuid> = levels.concat();
    for (i, u) in users.iter().enumerate() {
        let k = 1 + rng.below(3);
        for _ in 0..k {
            let g = if rng.chance(0.8) && !levels[0].is_empty() { rng.pick(&levels[0]) } else { rng.pick(&all_groups) };
            m.push(Mutation::AddGroupUser { group: g, user: *u });
        }
        // A few engineers and viewers, as in a real org.
        if i % 50 == 1 {
            m.push(Mutation::AddGroupUser {
                group: if i % 100 == 1 { builtin.engineers } else { builtin.viewers },
                user: *u,
            });
        }
    }

    // Roles in levels: a role of level k > 0 inherits one or two roles of level k-1.
    let rdepth = spec.role_depth.max(1);
    let mut rlevels: Vec<Vec<Uuid>> = vec![Vec::new(); rdepth];
    for i in 0..spec.roles {
        let r = rng.uuid();
        m.push(Mutation::AddRole { role: r, org: Some(org) });
        let l = i % rdepth;
        for _ in 0..1 + rng.below(3) {
            let permission = rng.pick(&Permission::ALL[..4]);
            let restrict_object_type = rng.chance(spec.restricted).then(|| rng.pick(&CHILD_TYPES));
            m.push(Mutation::AddRolePermission { role: r, permission, restrict_object_type });
        }
        if l > 0 && !rlevels[l - 1].is_empty() {
            for _ in 0..1 + rng.below(2) {
                let member_role = rng.pick(&rlevels[l - 1]);
                m.push(Mutation::AddRoleInherit { role: r, member_role });
            }
        }
        rlevels[l].push(r);
    }
    let roles: Vec<Uuid> = rlevels.concat();

    let projects: Vec<Uuid> = (0..spec.projects).map(|_| rng.uuid()).collect();
    for p in &projects {
        m.push(Mutation::AddObject {
            object: ObjectRef::new(ObjectType::Project, *p),
            parent: ObjectRef::new(ObjectType::OrgProject, org),
        });
    }
    // Project groups: each project joins 0 to 3 of them, drawn with a skew so the first
    // groups hold hundreds of projects and the last a few.
    let project_groups: Vec<Uuid> = (0..spec.project_groups).map(|_| rng.uuid()).collect();
    if !project_groups.is_empty() {
        let n = project_groups.len();
        for g in &project_groups {
            m.push(Mutation::AddProjectGroup { group: *g, org });
        }
        for p in &projects {
            for _ in 0..rng.below(4) {
                let u = rng.below(n * n);
                let idx = (n - 1).saturating_sub((u as f64).sqrt() as usize);
                m.push(Mutation::AddGroupProject { group: project_groups[idx], project: *p });
            }
        }
    }
    let mut objects = Vec::with_capacity(spec.objects);
    for _ in 0..spec.objects {
        let object = ObjectRef::new(rng.pick(&CHILD_TYPES), rng.uuid());
        let parent = ObjectRef::new(ObjectType::Project, rng.pick(&projects));
        m.push(Mutation::AddObject { object, parent });
        objects.push(object);
    }

    let mut ds = Dataset {
        org,
        now,
        mutations: m,
        users,
        groups: Vec::new(),
        roles,
        projects,
        objects,
        acls: Vec::new(),
        project_groups,
        rng,
    };
    ds.groups = [builtin.owners, builtin.engineers, builtin.viewers].into_iter().chain(all_groups).collect();
    for _ in 0..spec.acls {
        let row = ds.random_acl(spec);
        ds.mutations.push(Mutation::AddAcl(row));
        acls.push(row);
    }
    ds.acls = acls;
    ds
}

impl Dataset {
    /// A fresh random ACL row on an existing object, shaped like the rest of the data set.
    pub fn random_acl(&mut self, spec: &Spec) -> AclRow {
        let rng = &mut self.rng;
        let id = rng.uuid();
        let x = rng.below(1000);
        let object = if x < 1 {
            ObjectRef::new(if rng.chance(0.5) { ObjectType::Organization } else { ObjectType::OrgProject }, self.org)
        } else if x < 50 {
            ObjectRef::new(ObjectType::Project, rng.pick(&self.projects))
        } else if x < 60 && !self.project_groups.is_empty() {
            ObjectRef::new(ObjectType::ProjectGroupProjects, rng.pick(&self.project_groups))
        } else {
            rng.pick(&self.objects)
        };
        // Built-in groups already carry their seeded rows; random rows name the others.
        let subject = if rng.chance(0.5) && self.groups.len() > 3 {
            Subject::Group(self.groups[3 + rng.below(self.groups.len() - 3)])
        } else {
            Subject::User(rng.pick(&self.users))
        };
        // 30% of rows restricted, and only direct permissions can be: 25% roles, 75%
        // permissions of which restricted/0.75 carry a restriction.
        let grant = if rng.chance(0.25) && !self.roles.is_empty() {
            Grant::Role(rng.pick(&self.roles))
        } else {
            let permission = rng.pick(&Permission::ALL[..4]);
            let restrict_object_type = rng.chance(spec.restricted / 0.75).then(|| rng.pick(&CHILD_TYPES));
            Grant::Permission { permission, restrict_object_type }
        };
        let expires_at = rng.chance(spec.expiring).then(|| {
            let delta = 1 + rng.below(1_000_000_000) as i64;
            if rng.chance(0.5) {
                self.now - delta
            } else {
                self.now + delta
            }
        });
        AclRow { id, object, subject, grant, expires_at }
    }

    /// A realistic batch of `n` mutations valid on the built snapshot: new rows, removed
    /// rows, new memberships and new objects. Rows it removes are taken from the end.
    pub fn mutation_batch(&mut self, spec: &Spec, n: usize) -> Vec<Mutation> {
        let mut out = Vec::with_capacity(n);
        let mut removed = 0;
        for i in 0..n {
            let k = i % 10;
            let m = if k < 5 {
                Mutation::AddAcl(self.random_acl(spec))
            } else if k < 7 && removed + 4 < self.acls.len() {
                removed += 1;
                Mutation::RemoveAcl { id: self.acls[self.acls.len() - removed].id }
            } else if k < 9 {
                let user = self.rng.pick(&self.users);
                Mutation::AddGroupUser { group: self.groups[3 + self.rng.below(self.groups.len() - 3)], user }
            } else {
                let object = ObjectRef::new(self.rng.pick(&CHILD_TYPES), self.rng.uuid());
                Mutation::AddObject {
                    object,
                    parent: ObjectRef::new(ObjectType::Project, self.rng.pick(&self.projects)),
                }
            };
            out.push(m);
        }
        out
    }
}
