//! The engine benchmark: `cargo bench -p castellan-authz --features baselines`.
//!
//! Generates the BT data sets (BT-1k, BT-10k, BT-100k, BT-1M by default; pick with
//! `CASTELLAN_BENCH_SIZES=1k,100k`), builds the snapshot cold, and prints p50/p99 of check,
//! explain, who-can and what-can first pages, a 1k-mutation batch, the build time and the
//! memory per ACL row. With the `baselines` feature, Cedar and casbin evaluate the same model
//! on the same data (at the sizes they can handle) and their answers are compared.

use castellan_authz::bench_data::{generate, Dataset, Rng, Spec};
use castellan_authz::{Mutation, ObjectRef, ObjectType, Permission, Snapshot, Subject};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[global_allocator]
static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

#[cfg(feature = "baselines")]
mod baselines;

/// Timings in nanoseconds, reduced to percentiles.
struct Samples(Vec<f64>);

impl Samples {
    fn pct(&mut self, p: f64) -> f64 {
        self.0.sort_by(|a, b| a.total_cmp(b));
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0.get(i).copied().unwrap_or(f64::NAN)
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// The cost of an empty timed section, subtracted from every sample of a fast operation.
fn timer_overhead() -> f64 {
    let mut s = Samples(
        (0..100_000)
            .map(|_| {
                let t = Instant::now();
                black_box(());
                t.elapsed().as_nanos() as f64
            })
            .collect(),
    );
    s.pct(0.5)
}

/// The machine's floor for a check that misses the cache: one 8-byte read at a random place
/// in a 256 MiB buffer (about the size of the BT-1M snapshot), timed like a check. It moves
/// with the machine's load, so it is measured at the start and at the end of the run.
fn memory_read(overhead: f64, rows: &mut Vec<Row>, when: &str) {
    let n = (256usize << 20) / 8;
    let buf: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
    let mut rng = Rng::new(3);
    let at: Vec<usize> = (0..200_000).map(|_| rng.below(n)).collect();
    let mut s = time_each(&at, overhead, |i| {
        black_box(buf[*i]);
    });
    let what = format!("one random memory read (calibration, {when})");
    row(rows, "machine", &what, &mut s, "8 bytes at a random place in a 256 MiB buffer".into());
}

fn time_each<Q>(queries: &[Q], overhead: f64, mut f: impl FnMut(&Q)) -> Samples {
    Samples(
        queries
            .iter()
            .map(|q| {
                let t = Instant::now();
                f(q);
                (t.elapsed().as_nanos() as f64 - overhead).max(0.0)
            })
            .collect(),
    )
}

/// One row of the printed table.
struct Row {
    size: String,
    what: String,
    p50: String,
    p99: String,
    note: String,
}

fn row(rows: &mut Vec<Row>, size: &str, what: &str, s: &mut Samples, note: String) -> (f64, f64) {
    let (p50, p99) = (s.pct(0.5), s.pct(0.99));
    rows.push(Row { size: size.into(), what: what.into(), p50: fmt_ns(p50), p99: fmt_ns(p99), note });
    (p50, p99)
}

/// A random check query: a user, a permission, an object inside a project.
pub type CheckQuery = (Uuid, Permission, ObjectRef);

fn check_queries(ds: &Dataset, n: usize, seed: u64) -> Vec<CheckQuery> {
    let mut rng = Rng::new(seed);
    let perms = [Permission::Read, Permission::Update, Permission::Create, Permission::Delete];
    (0..n).map(|_| (rng.pick(&ds.users), rng.pick(&perms), rng.pick(&ds.objects))).collect()
}

/// Checks of the kind a server sees: a user on an object it is related to. The user is
/// uniform; the object is drawn from what one of the rows naming the user or one of its
/// groups covers (the row's leaf, a leaf of the row's project, a leaf of the organization);
/// permissions are mostly reads (70% read, 15% update, 10% create, 5% delete). They are
/// still spread over the whole data set, so they are as cold in cache as uniform ones.
fn related_queries(ds: &Dataset, snap: &Snapshot, n: usize, seed: u64) -> Vec<CheckQuery> {
    let mut by_subject: HashMap<Subject, Vec<ObjectRef>> = HashMap::new();
    for r in &ds.acls {
        by_subject.entry(r.subject).or_default().push(r.object);
    }
    let mut children: HashMap<Uuid, Vec<ObjectRef>> = HashMap::new();
    for m in &ds.mutations {
        if let Mutation::AddObject { object, parent } = m {
            if parent.object_type == ObjectType::Project {
                children.entry(parent.object_id).or_default().push(*object);
            }
        }
    }
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    let mut points = Vec::new();
    while out.len() < n {
        let u = rng.pick(&ds.users);
        points.clear();
        points.extend(by_subject.get(&Subject::User(u)).into_iter().flatten());
        for g in snap.groups_of(u) {
            points.extend(by_subject.get(&Subject::Group(g)).into_iter().flatten());
        }
        if points.is_empty() {
            continue;
        }
        let a: ObjectRef = rng.pick(&points);
        let object = match a.object_type {
            ObjectType::Project => match children.get(&a.object_id) {
                Some(c) if !c.is_empty() => rng.pick(c),
                _ => continue,
            },
            ObjectType::Organization | ObjectType::OrgProject => rng.pick(&ds.objects),
            t if t.is_project_child() => a,
            _ => continue,
        };
        let x = rng.below(100);
        let p = match x {
            0..70 => Permission::Read,
            70..85 => Permission::Update,
            85..95 => Permission::Create,
            _ => Permission::Delete,
        };
        out.push((u, p, object));
    }
    out
}

fn spec_of(size: &str) -> Option<Spec> {
    Some(match size {
        "1k" => Spec::scaled("BT-1k", 0.001),
        "10k" => Spec::scaled("BT-10k", 0.01),
        "100k" => Spec::bt_100k(),
        "1m" => Spec::bt_1m(),
        "100k-pg" => Spec::bt_100k().with_project_groups("BT-100k+PG", 100),
        "1m-pg" => Spec::bt_1m().with_project_groups("BT-1M+PG", 100),
        _ => return None,
    })
}

fn main() {
    let sizes = std::env::var("CASTELLAN_BENCH_SIZES").unwrap_or_else(|_| "1k,10k,100k,1m".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<f64>().ok()))
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    println!("machine: {cpu}, {cores} cores, {mem_gib:.0} GiB");
    let overhead = timer_overhead();
    println!("timer overhead {overhead:.0} ns, subtracted from each sample");
    let mut rows = Vec::new();
    memory_read(overhead, &mut rows, "start");
    let mut check_p50 = Vec::new();
    for size in sizes.split(',').map(str::trim) {
        let Some(spec) = spec_of(size) else {
            eprintln!("unknown size `{size}` (use 1k, 10k, 100k, 1m)");
            continue;
        };
        let (uniform, related) = run_size(&spec, overhead, &mut rows);
        check_p50.push((spec.name.clone(), uniform, related));
    }
    memory_read(overhead, &mut rows, "end");
    if let (Some(first), Some(last)) = (check_p50.first(), check_p50.last()) {
        if check_p50.len() > 1 {
            println!(
                "\ncheck p50 drift {} → {}: {:.2}× (uniform queries), {:.2}× (related queries)",
                first.0,
                last.0,
                last.1 / first.1,
                last.2 / first.2
            );
        }
    }
    println!("\n| data set | operation | p50 | p99 | notes |\n|---|---|---|---|---|");
    for r in &rows {
        println!("| {} | {} | {} | {} | {} |", r.size, r.what, r.p50, r.p99, r.note);
    }
}

/// Benchmarks one data set; returns the check p50 in ns (uniform, related queries).
fn run_size(spec: &Spec, overhead: f64, rows: &mut Vec<Row>) -> (f64, f64) {
    let name = spec.name.as_str();
    eprintln!("== {name}: generating");
    let mut ds = generate(spec, 42);
    let acl_rows = ds.acls.len();

    // Cold build, and its memory: everything the snapshot holds, per ACL row; and the
    // marginal cost of the rows (the same data without them).
    eprintln!("== {name}: cold build of {} mutations", ds.mutations.len());
    let before = ALLOC.allocated();
    let muts = ds.mutations.clone();
    let t = Instant::now();
    let snap = match Snapshot::build(muts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{name}: build failed: {e}");
            return (f64::NAN, f64::NAN);
        }
    };
    let build = t.elapsed();
    let total_bytes = ALLOC.allocated().saturating_sub(before) as f64;
    // The list is made after the first reading: `build` consumes and frees it, so made
    // before, its buffer would be subtracted from the snapshot.
    let before = ALLOC.allocated();
    let no_acl: Vec<Mutation> = ds.mutations.iter().filter(|m| !matches!(m, Mutation::AddAcl(_))).cloned().collect();
    let bare = Snapshot::build(no_acl).ok();
    let bare_bytes = ALLOC.allocated().saturating_sub(before) as f64;
    drop(bare);
    let st = snap.stats();
    rows.push(Row {
        size: name.into(),
        what: "cold build".into(),
        p50: fmt_ns(build.as_nanos() as f64),
        p99: "".into(),
        note: format!(
            "{} objects, {} acls, {} users, {} groups, {} roles",
            st.objects, st.acls, st.users, st.groups, st.roles
        ),
    });
    rows.push(Row {
        size: name.into(),
        what: "memory per ACL row".into(),
        p50: format!("{:.0} B", (total_bytes - bare_bytes) / acl_rows as f64),
        p99: "".into(),
        note: format!(
            "marginal (snapshot with rows − without); whole snapshot {:.0} MiB = {:.0} B/row",
            total_bytes / 1048576.0,
            total_bytes / acl_rows as f64
        ),
    });

    let n = if spec.acls >= 1_000_000 { 300_000 } else { 200_000 };
    let queries = check_queries(&ds, n, 7);
    let now = ds.now;
    eprintln!("== {name}: check");
    let mut allowed = 0usize;
    for q in &queries[..n / 10] {
        allowed += usize::from(snap.check(q.0, q.1, q.2, now));
    }
    let mut s = time_each(&queries, overhead, |q| {
        black_box(snap.check(q.0, q.1, q.2, now));
    });
    let (check_p50, _) = row(
        rows,
        name,
        "check (uniform random)",
        &mut s,
        format!("{:.1}% allowed", 100.0 * allowed as f64 / (n / 10) as f64),
    );
    let related = related_queries(&ds, &snap, n / 2, 13);
    let allowed = related.iter().filter(|q| snap.check(q.0, q.1, q.2, now)).count();
    let mut s = time_each(&related, overhead, |q| {
        black_box(snap.check(q.0, q.1, q.2, now));
    });
    let (related_p50, _) = row(
        rows,
        name,
        "check (related: user on an object it has a row on or under)",
        &mut s,
        format!("{:.1}% allowed", 100.0 * allowed as f64 / related.len() as f64),
    );
    // Allowed-only checks: the early exit makes them cheaper; shown for completeness.
    let granted: Vec<CheckQuery> =
        queries.iter().filter(|q| snap.check(q.0, q.1, q.2, now)).copied().take(20_000).collect();
    if !granted.is_empty() {
        let mut s = time_each(&granted, overhead, |q| {
            black_box(snap.check(q.0, q.1, q.2, now));
        });
        row(rows, name, "check (allowed only)", &mut s, format!("{} queries", granted.len()));
    }
    eprintln!("== {name}: explain");
    let mut s = time_each(&queries[..n / 4], overhead, |q| {
        black_box(snap.explain(q.0, q.1, q.2, now));
    });
    let (ex50, _) = row(rows, name, "explain", &mut s, String::new());
    if let Some(r) = rows.last_mut() {
        r.note = format!("{:.2}× check p50", ex50 / check_p50);
    }

    eprintln!("== {name}: who-can");
    let mut rng = Rng::new(11);
    let objs: Vec<ObjectRef> = (0..2_000).map(|_| rng.pick(&ds.objects)).collect();
    let mut total = 0usize;
    let mut s = time_each(&objs, overhead, |o| {
        total += black_box(snap.who_can(Permission::Read, *o, now, None, 100)).items.len();
    });
    row(
        rows,
        name,
        "who-can first page (100)",
        &mut s,
        format!("avg {:.0} principals on page", total as f64 / objs.len() as f64),
    );
    // The widest answer: every principal that may read the org's projects, paged through.
    let wide = ObjectRef::new(ObjectType::Project, ds.projects[0]);
    let mut runs = Vec::new();
    let mut count = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let mut after = None;
        count = 0;
        loop {
            let page = snap.who_can(Permission::Read, wide, now, after, 1_000);
            count += page.items.len();
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        runs.push(t.elapsed().as_nanos() as f64);
    }
    row(rows, name, "who-can, all pages", &mut Samples(runs), format!("{count} principals (read on a project)"));

    eprintln!("== {name}: what-can");
    let users: Vec<Uuid> = (0..2_000).map(|_| rng.pick(&ds.users)).collect();
    let mut total = 0usize;
    let mut s = time_each(&users, overhead, |u| {
        total +=
            black_box(snap.what_can(*u, Permission::Read, ObjectType::Experiment, None, now, None, 100)).items.len();
    });
    row(
        rows,
        name,
        "what-can first page (100)",
        &mut s,
        format!("avg {:.0} experiments on page", total as f64 / users.len() as f64),
    );

    eprintln!("== {name}: 1k-mutation batches");
    let mut runs = Vec::new();
    for _ in 0..if spec.acls >= 1_000_000 { 10 } else { 20 } {
        let batch = ds.mutation_batch(spec, 1_000);
        let t = Instant::now();
        let next = snap.apply(&batch);
        runs.push(t.elapsed().as_nanos() as f64);
        if let Err(e) = next {
            eprintln!("batch rejected: {e}");
        }
    }
    row(rows, name, "apply 1k-mutation batch", &mut Samples(runs), "new snapshot, old one unchanged".into());

    #[cfg(feature = "baselines")]
    baselines::run(name, &ds, &snap, &queries, overhead, check_p50, rows);
    let _ = Duration::ZERO;
    (check_p50, related_p50)
}
