//! Cedar and casbin evaluating the same model on the same data, as baselines.
//!
//! Both get the same facts: users in groups, groups in groups, the object tree, and one
//! rule per (ACL row, permission pair) with its subject, object, restriction and expiry.
//! Roles are expanded into their (permission, restriction) pairs when exporting (neither
//! has a notion of an inheriting role that is not a principal); groups and the object tree
//! are left to their own hierarchy features (Cedar `in`, casbin `g` / `g2`). Each is run
//! only at sizes it can evaluate in reasonable time (it scans every rule on each request).

use super::{fmt_ns, row, time_each, CheckQuery, Row};
use castellan_authz::bench_data::Dataset;
use castellan_authz::reference::Reference;
use castellan_authz::{Mutation, ObjectRef, ObjectType, Permission, Snapshot, Subject};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::Instant;
use uuid::Uuid;

/// Rows at most, per baseline.
const CEDAR_MAX_ROWS: usize = 12_000;
const CASBIN_MAX_ROWS: usize = 12_000;

/// One exported rule: subject, object, permission, restriction, expiry.
type Rule = (Subject, ObjectRef, Permission, Option<ObjectType>, Option<i64>);

struct Facts {
    user_groups: BTreeMap<Uuid, Vec<Uuid>>,
    group_parents: BTreeMap<Uuid, Vec<Uuid>>,
    objects: BTreeMap<ObjectRef, Option<ObjectRef>>,
    rules: Vec<Rule>,
}

fn facts(ds: &Dataset) -> Facts {
    let mut model = Reference::new();
    for m in &ds.mutations {
        let _ = model.apply_one(m);
    }
    let mut user_groups: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    let mut group_parents: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
    for m in &ds.mutations {
        match m {
            Mutation::AddGroupUser { group, user } => user_groups.entry(*user).or_default().push(*group),
            Mutation::AddGroupGroup { group, member_group } => {
                group_parents.entry(*member_group).or_default().push(*group)
            }
            _ => {}
        }
    }
    let mut rules = Vec::new();
    for row in model.acls.values() {
        for (p, r) in model.expand(&row.grant) {
            rules.push((row.subject, row.object, p, r, row.expires_at));
        }
    }
    Facts { user_groups, group_parents, objects: model.objects.clone(), rules }
}

fn obj_id(o: &ObjectRef) -> String {
    format!("{}:{}", o.object_type, o.object_id)
}

pub fn run(
    name: &str,
    ds: &Dataset,
    snap: &Snapshot,
    queries: &[CheckQuery],
    overhead: f64,
    castellan_p50: f64,
    rows: &mut Vec<Row>,
) {
    let acls = ds.acls.len();
    if acls > CEDAR_MAX_ROWS.max(CASBIN_MAX_ROWS) {
        rows.push(Row {
            size: name.into(),
            what: "Cedar / casbin".into(),
            p50: "—".into(),
            p99: "—".into(),
            note: format!("not run: {acls} rows (they scan every rule per request; see BT-1k/BT-10k)"),
        });
        return;
    }
    let f = facts(ds);
    let now = ds.now;
    let sample: Vec<CheckQuery> = queries.iter().take(if acls > 2_000 { 300 } else { 2_000 }).copied().collect();
    let want: Vec<bool> = sample.iter().map(|q| snap.check(q.0, q.1, q.2, now)).collect();
    if acls <= CEDAR_MAX_ROWS {
        cedar(name, &f, &sample, &want, now, overhead, castellan_p50, rows);
    }
    if acls <= CASBIN_MAX_ROWS {
        casbin_run(name, &f, &sample, &want, now, overhead, castellan_p50, rows);
    }
}

#[allow(clippy::too_many_arguments)]
fn cedar(
    name: &str,
    f: &Facts,
    sample: &[CheckQuery],
    want: &[bool],
    now: i64,
    overhead: f64,
    castellan_p50: f64,
    rows: &mut Vec<Row>,
) {
    use cedar_policy::{
        Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression,
    };
    let uid = |t: &str, id: &str| EntityUid::from_str(&format!("{t}::\"{id}\"")).ok();
    let t = Instant::now();
    let mut entities = Vec::new();
    for (u, gs) in &f.user_groups {
        let parents: HashSet<EntityUid> = gs.iter().filter_map(|g| uid("Group", &g.to_string())).collect();
        if let Some(e) = uid("User", &u.to_string()) {
            entities.push(Entity::new_no_attrs(e, parents));
        }
    }
    for (g, ps) in &f.group_parents {
        let parents: HashSet<EntityUid> = ps.iter().filter_map(|p| uid("Group", &p.to_string())).collect();
        if let Some(e) = uid("Group", &g.to_string()) {
            entities.push(Entity::new_no_attrs(e, parents));
        }
    }
    for (o, parent) in &f.objects {
        let parents: HashSet<EntityUid> = parent.iter().filter_map(|p| uid("Obj", &obj_id(p))).collect();
        let attrs = HashMap::from([("t".to_owned(), RestrictedExpression::new_string(o.object_type.to_string()))]);
        if let Some(ent) = uid("Obj", &obj_id(o)).and_then(|e| Entity::new(e, attrs, parents).ok()) {
            entities.push(ent);
        }
    }
    let mut text = String::new();
    for (subject, object, p, r, exp) in &f.rules {
        let who = match subject {
            Subject::User(u) => format!("principal == User::\"{u}\""),
            Subject::Group(g) => format!("principal in Group::\"{g}\""),
        };
        let mut conds = Vec::new();
        if let Some(r) = r {
            conds.push(format!("resource.t == \"{r}\""));
        }
        if let Some(e) = exp {
            conds.push(format!("context.now < {e}"));
        }
        let when = if conds.is_empty() { String::new() } else { format!(" when {{ {} }}", conds.join(" && ")) };
        text.push_str(&format!(
            "permit({who}, action == Action::\"{p}\", resource in Obj::\"{}\"){when};\n",
            obj_id(object)
        ));
    }
    let (Ok(policies), Ok(entities)) = (PolicySet::from_str(&text), Entities::from_entities(entities, None)) else {
        eprintln!("cedar: could not load the export");
        return;
    };
    let load = t.elapsed();
    let auth = Authorizer::new();
    let requests: Vec<Option<Request>> = sample
        .iter()
        .map(|(u, p, o)| {
            let ctx = Context::from_pairs([("now".to_owned(), RestrictedExpression::new_long(now))]).ok()?;
            Request::new(uid("User", &u.to_string())?, uid("Action", p.as_str())?, uid("Obj", &obj_id(o))?, ctx, None)
                .ok()
        })
        .collect();
    let mut got = Vec::new();
    let mut s = time_each(&requests, overhead, |r| {
        got.push(r.as_ref().is_some_and(|r| auth.is_authorized(r, &policies, &entities).decision() == Decision::Allow));
    });
    let mismatches = got.iter().zip(want).filter(|(a, b)| a != b).count();
    let p50 = s.pct(0.5);
    row(
        rows,
        name,
        "Cedar check (baseline)",
        &mut s,
        format!(
            "{} policies; {:.0}× Castellan p50; {} / {} answers differ; load {}",
            f.rules.len(),
            p50 / castellan_p50,
            mismatches,
            sample.len(),
            fmt_ns(load.as_nanos() as f64)
        ),
    );
}

#[allow(clippy::too_many_arguments)]
fn casbin_run(
    name: &str,
    f: &Facts,
    sample: &[CheckQuery],
    want: &[bool],
    now: i64,
    overhead: f64,
    castellan_p50: f64,
    rows: &mut Vec<Row>,
) {
    use casbin::prelude::*;
    const MODEL: &str = r#"
[request_definition]
r = sub, obj, act, typ, now

[policy_definition]
p = sub, obj, act, typ, exp

[role_definition]
g = _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && g2(r.obj, p.obj) && r.act == p.act && (p.typ == "*" || p.typ == r.typ) && p.exp > r.now
"#;
    // Fixed-width decimal so that string order is numeric order.
    let stamp = |t: i64| format!("{:020}", t.max(0));
    let sub = |s: &Subject| match s {
        Subject::User(u) => format!("u:{u}"),
        Subject::Group(g) => format!("g:{g}"),
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else { return };
    let t = Instant::now();
    let enforcer = rt.block_on(async {
        let model = DefaultModel::from_str(MODEL).await.ok()?;
        let mut e = Enforcer::new(model, MemoryAdapter::default()).await.ok()?;
        let policies: Vec<Vec<String>> = f
            .rules
            .iter()
            .map(|(s, o, p, r, exp)| {
                vec![
                    sub(s),
                    obj_id(o),
                    p.to_string(),
                    r.map_or("*".to_owned(), |t| t.to_string()),
                    exp.map_or("9".repeat(20), stamp),
                ]
            })
            .collect();
        e.add_policies(policies).await.ok()?;
        let mut g: Vec<Vec<String>> = Vec::new();
        for (u, gs) in &f.user_groups {
            g.extend(gs.iter().map(|x| vec![format!("u:{u}"), format!("g:{x}")]));
        }
        for (x, ps) in &f.group_parents {
            g.extend(ps.iter().map(|p| vec![format!("g:{x}"), format!("g:{p}")]));
        }
        e.add_grouping_policies(g).await.ok()?;
        let g2: Vec<Vec<String>> =
            f.objects.iter().filter_map(|(o, p)| p.map(|p| vec![obj_id(o), obj_id(&p)])).collect();
        e.add_named_grouping_policies("g2", g2).await.ok()?;
        Some(e)
    });
    let Some(enforcer) = enforcer else {
        eprintln!("casbin: could not load the export");
        return;
    };
    let load = t.elapsed();
    let args: Vec<(String, String, String, String, String)> = sample
        .iter()
        .map(|(u, p, o)| (format!("u:{u}"), obj_id(o), p.to_string(), o.object_type.to_string(), stamp(now)))
        .collect();
    let mut got = Vec::new();
    let mut s = time_each(&args, overhead, |a| {
        got.push(enforcer.enforce(a.clone()).unwrap_or(false));
    });
    let mismatches = got.iter().zip(want).filter(|(a, b)| a != b).count();
    let p50 = s.pct(0.5);
    row(
        rows,
        name,
        "casbin check (baseline)",
        &mut s,
        format!(
            "{} policies; {:.0}× Castellan p50; {} / {} answers differ; load {}",
            f.rules.len(),
            p50 / castellan_p50,
            mismatches,
            sample.len(),
            fmt_ns(load.as_nanos() as f64)
        ),
    );
}
