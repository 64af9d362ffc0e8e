//! The plan: the changes that bring an organization from its live state to a
//! document, each resolved to ids and paired with what its own endpoint would need
//! to authorize it, in the order apply makes them; and what apply would refuse.

use super::live::Live;
use super::norm::{self, GrantKey, Norm, ObjKey, Principal, What};
use super::path::Path;
use super::step::{digest, NewIds, Plan, Step};
use crate::access::{Batch, Made, Need};
use crate::error::ApiResult;
use crate::routes::setting::Creation;
use castellan_api_types::{ConfigAction, ConfigChange, ConfigRefusal};
use castellan_core::{AclId, GroupId, ObjectRef, ObjectType, Permission, ProjectId, RoleId, UserId};
use castellan_store::{AclRecord, AdminKind, ObjectKind, RolePermission, Tx};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

fn change(action: ConfigAction, kind: &str, name: String, before: Option<Value>, after: Option<Value>) -> ConfigChange {
    ConfigChange { action, kind: kind.to_owned(), name, before, after }
}

fn entry<T: Serialize>(t: &T) -> Option<Value> {
    serde_json::to_value(t).ok()
}

struct Builder<'a> {
    live: &'a Live,
    want: &'a Norm,
    ids: &'a mut NewIds,
    /// The objects inside projects the document names, resolved.
    inner: HashMap<Path, ObjectRef>,
    /// Every stored grant (expired ones included) by its identity.
    acls: HashMap<GrantKey, &'a AclRecord>,
    org: ObjectRef,
    plan: Plan,
}

/// Plans the changes from `live` to `want` (a checked document). `tx` reads the
/// objects inside projects the document names; `ids` names what is created.
pub async fn plan(tx: &mut dyn Tx, want: &Norm, live: &Live, ids: &mut NewIds) -> ApiResult<Plan> {
    let mut inner = HashMap::new();
    let named = want.grants.keys().map(|k| &k.on).chain(want.objects.keys().map(|k| &k.on));
    for path in named {
        let Path::Inner(project, t, name) = path else { continue };
        let Some(p) = live.projects.get(project) else { continue };
        let found = match t {
            ObjectType::Prompt => tx.find_object_by_slug(p.id, name).await?,
            ObjectType::Experiment => tx.find_object_by_name(p.id, ObjectKind::Experiment, name).await?,
            ObjectType::Dataset => tx.find_object_by_name(p.id, ObjectKind::Dataset, name).await?,
            _ => tx.find_object_by_name(p.id, ObjectKind::PromptSession, name).await?,
        };
        if let Some(o) = found {
            inner.insert(path.clone(), ObjectRef::new(*t, o.id));
        }
    }
    // Baseline experiments, by name, as paths.
    for (name, p) in &want.projects {
        let Some(b) = p.settings.as_ref().and_then(|s| s.get(norm::BASELINE)).and_then(Value::as_str) else {
            continue;
        };
        let Some(project) = live.projects.get(name) else { continue };
        if let Some(o) = tx.find_object_by_name(project.id, ObjectKind::Experiment, b).await? {
            let path = Path::Inner(name.clone(), ObjectType::Experiment, b.to_owned());
            inner.insert(path, ObjectRef::new(ObjectType::Experiment, o.id));
        }
    }
    let org = ObjectRef::new(ObjectType::Organization, live.org.id.0);
    let batch = Batch { org: live.org.id, made: Vec::new(), needs: Vec::new() };
    let empty = Plan {
        steps: vec![],
        changes: vec![],
        refusals: vec![],
        notes: vec![],
        batch,
        need_of: vec![],
        hash: String::new(),
    };
    let acls = live.acls.iter().filter_map(|a| Some((live.grant_key(a)?, a))).collect();
    let mut b = Builder { live, want, ids, inner, acls, org, plan: empty };
    b.accounts();
    b.settings();
    b.roles();
    b.groups();
    b.projects();
    b.project_groups();
    b.objects();
    b.grants();
    b.removals();
    let mut plan = b.plan;
    plan.hash = digest(&plan.changes);
    Ok(plan)
}

impl Builder<'_> {
    fn push(&mut self, change: ConfigChange, step: Step, needs: Vec<Need>) {
        let i = self.plan.changes.len();
        self.plan.changes.push(change);
        self.plan.steps.push(step);
        for n in needs {
            self.plan.batch.needs.push(n);
            self.plan.need_of.push(i);
        }
    }

    fn refuse(&mut self, kind: &str, name: &str, reason: String) {
        let r = ConfigRefusal { kind: kind.to_owned(), name: name.to_owned(), reason };
        if !self.plan.refusals.contains(&r) {
            self.plan.refusals.push(r);
        }
    }

    /// Whether the document manages what `path` names: everything but the inside
    /// of projects it leaves out.
    fn managed(&self, path: &Path) -> bool {
        path.project().is_none_or(|p| self.want.projects.contains_key(p))
    }

    fn user(&self, p: &Principal) -> Option<UserId> {
        match p {
            Principal::User(e) => self.live.people.get(e).copied(),
            Principal::ServiceAccount(s) => match self.live.accounts.get(s).map(Vec::as_slice) {
                Some([one]) => Some(*one),
                _ => None,
            },
            Principal::Group(_) => None,
        }
    }

    fn group(&mut self, name: &str) -> GroupId {
        match self.live.groups.get(name) {
            Some(g) => g.rec.id,
            None => GroupId(self.ids.get("group", name)),
        }
    }

    fn role(&mut self, name: &str) -> RoleId {
        match self.live.roles.get(name) {
            Some(r) => r.rec.id,
            None => RoleId(self.ids.get("role", name)),
        }
    }

    fn project(&mut self, name: &str) -> ProjectId {
        match self.live.projects.get(name) {
            Some(p) => p.id,
            None => ProjectId(self.ids.get("project", name)),
        }
    }

    fn project_group(&mut self, name: &str) -> Uuid {
        match self.live.project_groups.get(name) {
            Some((a, _)) => a.id,
            None => self.ids.get("project_group", name),
        }
    }

    /// The object a path names, once the plan has made what it must make.
    fn resolve(&mut self, path: &Path) -> Option<ObjectRef> {
        use ObjectType as T;
        let r = |t, id| Some(ObjectRef::new(t, id));
        match path {
            Path::Org(t) => r(*t, self.org.object_id),
            Path::Named(T::Group, n) => r(T::Group, self.group(n).0),
            Path::Named(T::Role, n) => r(T::Role, self.role(n).0),
            Path::Named(t @ (T::ProjectGroup | T::ProjectGroupProjects), n) => r(*t, self.project_group(n)),
            Path::Named(T::AiSecret, n) => {
                let key = ObjKey { on: Path::Org(T::Organization), kind: T::AiSecret.as_str(), name: n.clone() };
                let id = match self.live.objects.get(&key) {
                    Some(a) => a.id,
                    // One the plan makes (the document has it, or the path would not pass).
                    None => self.ids.get(key.kind, &key.label()),
                };
                r(T::AiSecret, id)
            }
            Path::Named(t, n) => r(*t, self.project(n).0),
            Path::Inner(..) => self.inner.get(path).copied(),
        }
    }

    fn refuse_missing(&mut self, kind: &str, name: &str, path: &Path) {
        let reason = match path {
            Path::Inner(_, t, _) => format!(
                "{t} `{path}` does not exist: apply does not create experiments, datasets, prompts or playgrounds"
            ),
            _ => format!("`{path}` does not exist and the document does not create it"),
        };
        self.refuse(kind, name, reason);
    }

    fn accounts(&mut self) {
        let (want, live) = (self.want, self.live);
        for e in want.members.iter().filter(|e| !live.people.contains_key(*e)) {
            self.refuse("member", e, "not a member of the organization; apply neither invites people nor creates accounts: invite them (`castellan member invite`) and plan again".into());
        }
        for e in live.people.keys().filter(|e| !want.members.contains(*e)) {
            self.plan.notes.push(format!("member `{e}` is not in the document: apply leaves the membership (it takes them out of the document's groups and drops their grants)"));
        }
        for s in &want.service_accounts {
            match live.accounts.get(s).map(Vec::len) {
                None => self.refuse("service_account", s, "no service account of the organization has this name; apply does not create service accounts: create it and plan again".into()),
                Some(1) => {}
                Some(n) => self.refuse("service_account", s, format!("{n} service accounts have this name; rename all but one")),
            }
        }
        for s in live.accounts.keys().filter(|s| !want.service_accounts.contains(*s)) {
            self.plan.notes.push(format!("service account `{s}` is not in the document: apply leaves it (it takes it out of the document's groups and drops its grants)"));
        }
        for p in live.projects.keys().filter(|p| !want.projects.contains_key(*p)) {
            self.plan.notes.push(format!("project `{p}` is not in the document: apply never deletes projects; it, its settings and everything set on it or inside it are left as they are"));
        }
    }

    fn settings(&mut self) {
        let (want, live) = (&self.want.settings, &self.live.norm.settings);
        if want == live {
            return;
        }
        let mut after = self.live.org.clone();
        after.api_url = want.api_url.clone();
        after.is_universal_api = want.is_universal_api;
        after.is_dataplane_private = want.is_dataplane_private;
        after.proxy_url = want.proxy_url.clone();
        after.realtime_url = want.realtime_url.clone();
        after.image_rendering_mode = want.image_rendering_mode.map(|m| m.as_str().to_owned());
        match after.settings.as_object_mut() {
            Some(m) => {
                m.insert("strict_delegation".into(), Value::Bool(want.strict_delegation));
            }
            None => after.settings = serde_json::json!({ "strict_delegation": want.strict_delegation }),
        }
        let (before, after_e) = (entry(live), entry(want));
        let name = self.live.org.name.clone();
        let need = Need::On(Permission::Update, self.org);
        self.push(
            change(ConfigAction::Change, "organization", name, before, after_e),
            Step::Settings(Box::new(after)),
            vec![need],
        );
    }

    fn roles(&mut self) {
        let want = self.want;
        for (name, r) in &want.roles {
            let permissions: Vec<RolePermission> = r
                .permissions
                .iter()
                .map(|(p, t)| RolePermission { permission: *p, restrict_object_type: *t })
                .collect();
            let inherits: Vec<RoleId> = r.inherits.iter().map(|i| self.role(i)).collect();
            let after = entry(&norm::role_entry(name, r));
            match self.live.norm.roles.get(name) {
                None => {
                    let id = self.role(name);
                    self.plan.batch.made.push(Made::Role(id.0));
                    let step = Step::AddRole {
                        id,
                        name: name.clone(),
                        description: r.description.clone(),
                        permissions,
                        inherits,
                    };
                    let need = Need::Create(ObjectType::Role, self.org);
                    self.push(change(ConfigAction::Add, "role", name.clone(), None, after), step, vec![need]);
                }
                Some(l) if l != r => {
                    let live = &self.live.roles[name];
                    let step = Step::ChangeRole {
                        id: live.rec.id,
                        description: r.description.clone(),
                        add: permissions.iter().filter(|p| !live.permissions.contains(p)).copied().collect(),
                        remove: live.permissions.iter().filter(|p| !permissions.contains(p)).copied().collect(),
                        add_inherits: inherits.iter().filter(|i| !live.inherits.contains(i)).copied().collect(),
                        remove_inherits: live.inherits.iter().filter(|i| !inherits.contains(i)).copied().collect(),
                    };
                    let need = Need::On(Permission::Update, ObjectRef::new(ObjectType::Role, live.rec.id.0));
                    self.push(
                        change(ConfigAction::Change, "role", name.clone(), entry(&norm::role_entry(name, l)), after),
                        step,
                        vec![need],
                    );
                }
                Some(_) => {}
            }
        }
    }

    fn members(&mut self, g: &norm::GroupN) -> (Vec<UserId>, Vec<GroupId>) {
        let people = g.users.iter().map(|u| Principal::User(u.clone()));
        let accounts = g.service_accounts.iter().map(|s| Principal::ServiceAccount(s.clone()));
        let users: Vec<UserId> = people.chain(accounts).filter_map(|p| self.user(&p)).collect();
        let groups = g.groups.iter().map(|m| self.group(m)).collect();
        (users, groups)
    }

    fn groups(&mut self) {
        let want = self.want;
        for (name, g) in &want.groups {
            let (users, groups) = self.members(g);
            let after = entry(&norm::group_entry(name, g));
            match self.live.norm.groups.get(name) {
                None => {
                    let id = self.group(name);
                    self.plan.batch.made.push(Made::Group(id.0));
                    let step =
                        Step::AddGroup { id, name: name.clone(), description: g.description.clone(), users, groups };
                    let need = Need::Create(ObjectType::Group, self.org);
                    self.push(change(ConfigAction::Add, "group", name.clone(), None, after), step, vec![need]);
                }
                Some(l) if l != g => {
                    let live = &self.live.groups[name];
                    let step = Step::ChangeGroup {
                        id: live.rec.id,
                        description: g.description.clone(),
                        add_users: users.iter().filter(|u| !live.users.contains(u)).copied().collect(),
                        remove_users: live.users.iter().filter(|u| !users.contains(u)).copied().collect(),
                        add_groups: groups.iter().filter(|m| !live.groups.contains(m)).copied().collect(),
                        remove_groups: live.groups.iter().filter(|m| !groups.contains(m)).copied().collect(),
                    };
                    let need = Need::On(Permission::Update, ObjectRef::new(ObjectType::Group, live.rec.id.0));
                    self.push(
                        change(ConfigAction::Change, "group", name.clone(), entry(&norm::group_entry(name, l)), after),
                        step,
                        vec![need],
                    );
                }
                Some(_) => {}
            }
        }
    }

    fn projects(&mut self) {
        let want = self.want;
        for (name, p) in &want.projects {
            let after = entry(&norm::project_entry(name, p));
            if self.live.norm.projects.get(name) == Some(p) {
                continue;
            }
            let Some(settings) = self.stored_settings(name, p.settings.as_ref()) else { continue };
            match self.live.norm.projects.get(name) {
                None => {
                    let id = self.project(name);
                    self.plan.batch.made.push(Made::Project(id.0));
                    let step =
                        Step::AddProject { id, name: name.clone(), description: p.description.clone(), settings };
                    let need = Need::Create(ObjectType::Project, self.org);
                    self.push(change(ConfigAction::Add, "project", name.clone(), None, after), step, vec![need]);
                }
                Some(l) if l != p => {
                    let id = self.project(name);
                    let step = Step::ChangeProject { id, description: p.description.clone(), settings };
                    let need = Need::On(Permission::Update, ObjectRef::new(ObjectType::Project, id.0));
                    self.push(
                        change(
                            ConfigAction::Change,
                            "project",
                            name.clone(),
                            entry(&norm::project_entry(name, l)),
                            after,
                        ),
                        step,
                        vec![need],
                    );
                }
                Some(_) => {}
            }
        }
    }

    /// A project's settings as they are stored: the baseline experiment by id; `None`
    /// (refused) when it names an experiment that does not exist.
    fn stored_settings(&mut self, project: &str, s: Option<&Map<String, Value>>) -> Option<Option<Value>> {
        let Some(s) = s else { return Some(None) };
        let mut s = s.clone();
        if let Some(Value::String(b)) = s.remove(norm::BASELINE) {
            let path = Path::Inner(project.to_owned(), ObjectType::Experiment, b);
            let Some(e) = self.inner.get(&path).copied() else {
                self.refuse_missing("project", project, &path);
                return None;
            };
            s.insert("baseline_experiment_id".into(), Value::String(e.object_id.to_string()));
        }
        Some(Some(Value::Object(s)))
    }

    fn project_groups(&mut self) {
        let want = self.want;
        for (name, g) in &want.project_groups {
            let projects: Vec<ProjectId> = g.projects.iter().map(|p| self.project(p)).collect();
            let after = entry(&norm::project_group_entry(name, g));
            let acls = |ps: &[ProjectId]| -> Vec<Need> {
                ps.iter().map(|p| Need::On(Permission::UpdateAcls, ObjectRef::new(ObjectType::Project, p.0))).collect()
            };
            // Projects the document leaves out stay in the group as they are.
            let live = self.live.norm.project_groups.get(name).map(|l| {
                let mut l = l.clone();
                l.projects.retain(|p| want.projects.contains_key(p));
                l
            });
            match live {
                None => {
                    let id = self.project_group(name);
                    self.plan.batch.made.push(Made::ProjectGroup(id));
                    let mut needs = vec![Need::Create(ObjectType::ProjectGroup, self.org)];
                    needs.extend(acls(&projects));
                    let step =
                        Step::AddProjectGroup { id, name: name.clone(), description: g.description.clone(), projects };
                    self.push(change(ConfigAction::Add, "project_group", name.clone(), None, after), step, needs);
                }
                Some(l) if &l != g => {
                    let (rec, members) = &self.live.project_groups[name];
                    let add: Vec<ProjectId> = projects.iter().filter(|p| !members.contains(p)).copied().collect();
                    let managed =
                        |p: &ProjectId| self.live.project_names.get(p).is_some_and(|n| want.projects.contains_key(n));
                    let remove = members.iter().filter(|p| !projects.contains(p) && managed(p)).copied().collect();
                    let mut needs =
                        vec![Need::On(Permission::Update, ObjectRef::new(ObjectType::ProjectGroup, rec.id))];
                    needs.extend(acls(&add));
                    let step = Step::ChangeProjectGroup { id: rec.id, description: g.description.clone(), add, remove };
                    self.push(
                        change(
                            ConfigAction::Change,
                            "project_group",
                            name.clone(),
                            entry(&norm::project_group_entry(name, &l)),
                            after,
                        ),
                        step,
                        needs,
                    );
                }
                Some(_) => {}
            }
        }
    }

    fn objects(&mut self) {
        let (want, live) = (self.want, self.live);
        let managed = |k: &&ObjKey| self.managed(&k.on);
        let keys: BTreeSet<&ObjKey> = want.objects.keys().chain(live.norm.objects.keys().filter(managed)).collect();
        for key in keys {
            let label = key.label();
            let (w, l) = (want.objects.get(key), live.norm.objects.get(key).filter(|_| self.managed(&key.on)));
            let Some((kind, spec)) = AdminKind::parse(key.kind).and_then(|k| Some((k, super::kinds::spec(k)?))) else {
                continue;
            };
            match (w, l) {
                (Some(data), None) => {
                    let Some(scope) = self.resolve(&key.on) else {
                        self.refuse_missing(key.kind, &label, &key.on);
                        continue;
                    };
                    let id = self.ids.get(key.kind, &label);
                    if kind == AdminKind::AiSecret {
                        self.plan.batch.made.push(Made::AiSecret(id));
                    }
                    if spec.secret {
                        self.plan.notes.push(format!(
                            "{} `{label}` will be created without a value: set one with its own endpoint",
                            key.kind
                        ));
                    }
                    let need = match spec.creation {
                        Creation::Update => Need::On(Permission::Update, scope),
                        Creation::Child(t) => Need::Create(t, scope),
                    };
                    let step = Step::AddObject { id, kind, scope, name: key.name.clone(), data: data.clone() };
                    let after = entry(&norm::object_entry(key, data));
                    self.push(change(ConfigAction::Add, key.kind, label, None, after), step, vec![need]);
                }
                (Some(data), Some(old)) if data != old => {
                    let rec = &live.objects[key];
                    let step = Step::ChangeObject { id: rec.id, data: data.clone() };
                    let (before, after) = (entry(&norm::object_entry(key, old)), entry(&norm::object_entry(key, data)));
                    let need = Need::On(Permission::Update, rec.guard());
                    self.push(change(ConfigAction::Change, key.kind, label, before, after), step, vec![need]);
                }
                (None, Some(old)) => {
                    let rec = &live.objects[key];
                    let before = entry(&norm::object_entry(key, old));
                    let need = Need::On(spec.delete, rec.guard());
                    self.push(
                        change(ConfigAction::Remove, key.kind, label, before, None),
                        Step::RemoveObject(rec.id),
                        vec![need],
                    );
                }
                _ => {}
            }
        }
    }

    /// Every (permission, restriction) a role yields, through what it inherits, as
    /// the document defines the org's roles (system roles as stored).
    fn closure(&self, role: &str) -> BTreeSet<(Permission, Option<ObjectType>)> {
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut todo = vec![role.to_owned()];
        while let Some(r) = todo.pop() {
            if !seen.insert(r.clone()) {
                continue;
            }
            if let Some(d) = self.want.roles.get(&r) {
                out.extend(d.permissions.iter().copied());
                todo.extend(d.inherits.iter().cloned());
            } else if let Some(s) = self.live.roles.get(&r).filter(|s| s.rec.org_id.is_none()) {
                out.extend(s.permissions.iter().map(|p| (p.permission, p.restrict_object_type)));
                todo.extend(s.inherits.iter().filter_map(|i| self.live.role_names.get(i).cloned()));
            }
        }
        out
    }

    fn grants(&mut self) {
        let (want, live) = (self.want, self.live);
        let strict = want.settings.strict_delegation || live.norm.settings.strict_delegation;
        let live_grants: BTreeMap<&GrantKey, Option<i64>> =
            live.norm.grants.iter().filter(|(k, _)| self.managed(&k.on)).map(|(k, e)| (k, *e)).collect();
        let mut adds = Vec::new();
        for (key, expires) in &want.grants {
            match live_grants.get(key) {
                Some(e) if e == expires => {}
                Some(_) => {
                    self.remove_grant(key);
                    adds.push((key, *expires));
                }
                None => {
                    // An expired grant of the same identity is replaced.
                    if self.acls.contains_key(key) {
                        self.remove_grant(key);
                    }
                    adds.push((key, *expires));
                }
            }
        }
        for key in live_grants.keys().filter(|k| !want.grants.contains_key(**k)) {
            self.remove_grant(key);
        }
        for (key, expires) in adds {
            self.add_grant(key, expires, strict);
        }
    }

    fn remove_grant(&mut self, key: &GrantKey) {
        let Some(acl) = self.acls.get(key).copied() else { return };
        let before = entry(&norm::grant_entry(key, acl.expires_at));
        let need = Need::On(Permission::DeleteAcls, ObjectRef::new(acl.object_type, acl.object_id));
        self.push(
            change(ConfigAction::Remove, "grant", key.label(), before, None),
            Step::RemoveGrant(acl.id),
            vec![need],
        );
    }

    fn add_grant(&mut self, key: &GrantKey, expires: Option<i64>, strict: bool) {
        let label = key.label();
        let Some(object) = self.resolve(&key.on) else {
            return self.refuse_missing("grant", &label, &key.on);
        };
        let (user_id, group_id) = match &key.who {
            Principal::Group(g) => (None, Some(self.group(g))),
            p => match self.user(p) {
                Some(u) => (Some(u), None),
                // Refused with the account itself.
                None => return,
            },
        };
        let (permission, role_id) = match &key.what {
            What::Permission(p) => (Some(*p), None),
            What::Role(r) => (None, Some(self.role(r))),
        };
        let mut needs = vec![Need::On(Permission::CreateAcls, object)];
        if strict {
            let pairs = match &key.what {
                What::Permission(p) => BTreeSet::from([(*p, key.restrict)]),
                What::Role(r) => self.closure(r),
            };
            needs.extend(pairs.into_iter().map(|(p, r)| Need::Hold(p, r, object)));
        }
        let acl = AclRecord {
            id: AclId::generate(),
            org_id: self.live.org.id,
            object_type: object.object_type,
            object_id: object.object_id,
            user_id,
            group_id,
            permission,
            role_id,
            restrict_object_type: key.restrict,
            expires_at: expires,
            created: 0,
        };
        let after = entry(&norm::grant_entry(key, expires));
        self.push(change(ConfigAction::Add, "grant", label, None, after), Step::AddGrant(Box::new(acl)), needs);
    }

    /// Deletions of whole entries come last, once no grant names them.
    fn removals(&mut self) {
        let (want, live) = (self.want, self.live);
        for (name, l) in live.norm.project_groups.iter().filter(|(n, _)| !want.project_groups.contains_key(*n)) {
            let id = live.project_groups[name].0.id;
            let need = Need::On(Permission::Delete, ObjectRef::new(ObjectType::ProjectGroup, id));
            let before = entry(&norm::project_group_entry(name, l));
            self.push(
                change(ConfigAction::Remove, "project_group", name.clone(), before, None),
                Step::RemoveProjectGroup(id),
                vec![need],
            );
        }
        for (name, l) in live.norm.groups.iter().filter(|(n, _)| !want.groups.contains_key(*n)) {
            let id = live.groups[name].rec.id;
            let need = Need::On(Permission::Delete, ObjectRef::new(ObjectType::Group, id.0));
            let before = entry(&norm::group_entry(name, l));
            self.push(
                change(ConfigAction::Remove, "group", name.clone(), before, None),
                Step::RemoveGroup(id),
                vec![need],
            );
        }
        for (name, l) in live.norm.roles.iter().filter(|(n, _)| !want.roles.contains_key(*n)) {
            let id = live.roles[name].rec.id;
            let need = Need::On(Permission::Delete, ObjectRef::new(ObjectType::Role, id.0));
            let before = entry(&norm::role_entry(name, l));
            self.push(
                change(ConfigAction::Remove, "role", name.clone(), before, None),
                Step::RemoveRole(id),
                vec![need],
            );
        }
    }
}
