//! An organization's administration state as stored, read in one transaction, with
//! the maps between names and ids that a plan resolves documents with, and its
//! normal form (what export prints).

use super::kinds;
use super::norm::{self, GrantKey, GroupN, Norm, ObjKey, Principal, ProjectGroupN, ProjectN, RoleN, What};
use super::path::Path;
use crate::error::ApiResult;
use castellan_api_types::{ConfigSettings, ImageRenderingMode};
use castellan_core::{GroupId, ObjectRef, ObjectType, ProjectId, RoleId, UserId};
use castellan_store::page::{Direction, Window};
use castellan_store::{
    AclFilter, AclRecord, AdminFilter, AdminKind, AdminRecord, GroupFilter, GroupRecord, ObjectKind, ObjectRecord,
    OrgRecord, Paged, ProjectFilter, ProjectRecord, RoleFilter, RolePermission, RoleRecord, Tx, UserFilter, UserKind,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Every row `fetch` lists, window after window.
macro_rules! all {
    (|$w:ident| $fetch:expr) => {{
        let mut out = Vec::new();
        let mut $w = Window { from: None, direction: Direction::Older, limit: 1000 };
        loop {
            let rows = $fetch.await?;
            let n = rows.len();
            $w.from = rows.last().map(|r| r.page_key());
            out.extend(rows);
            if n < $w.limit {
                break;
            }
        }
        out
    }};
}

/// A group and its direct members.
pub struct LiveGroup {
    pub rec: GroupRecord,
    pub users: Vec<UserId>,
    pub groups: Vec<GroupId>,
}

/// A role, its own permissions and the roles it inherits.
pub struct LiveRole {
    pub rec: RoleRecord,
    pub permissions: Vec<RolePermission>,
    pub inherits: Vec<RoleId>,
}

/// The stored state of one organization.
pub struct Live {
    pub org: OrgRecord,
    /// Members who are people, by email.
    pub people: BTreeMap<String, UserId>,
    /// Service accounts, by name (names need not be unique).
    pub accounts: BTreeMap<String, Vec<UserId>>,
    pub principals: HashMap<UserId, Principal>,
    /// Groups by name.
    pub groups: BTreeMap<String, LiveGroup>,
    pub group_names: HashMap<GroupId, String>,
    /// The org's roles and the system roles, by name.
    pub roles: BTreeMap<String, LiveRole>,
    pub role_names: HashMap<RoleId, String>,
    pub projects: BTreeMap<String, ProjectRecord>,
    pub project_names: HashMap<ProjectId, String>,
    /// Project groups by name, with their projects.
    pub project_groups: BTreeMap<String, (AdminRecord, Vec<ProjectId>)>,
    /// The administration objects a document lists under `objects`.
    pub objects: BTreeMap<ObjKey, AdminRecord>,
    /// Names of every administration object, by id (AI secrets are grant points).
    pub admin_names: HashMap<Uuid, String>,
    /// Every grant, expired ones included.
    pub acls: Vec<AclRecord>,
    /// The objects inside projects that grants or settings are on.
    pub inner: HashMap<Uuid, ObjectRecord>,
    /// The state in normal form (expired grants left out).
    pub norm: Norm,
}

/// The id of a project's baseline experiment, from its settings.
fn baseline(p: &ProjectRecord) -> Option<Uuid> {
    let id = p.settings.as_ref()?.get("baseline_experiment_id")?.as_str()?;
    Uuid::parse_str(id).ok()
}

impl Live {
    /// Reads `org`'s state in `tx`; `now` decides which grants have expired.
    pub async fn load(tx: &mut dyn Tx, org: OrgRecord, now: i64) -> ApiResult<Live> {
        let orgs = vec![org.id];
        let mut live = Live {
            org,
            people: BTreeMap::new(),
            accounts: BTreeMap::new(),
            principals: HashMap::new(),
            groups: BTreeMap::new(),
            group_names: HashMap::new(),
            roles: BTreeMap::new(),
            role_names: HashMap::new(),
            projects: BTreeMap::new(),
            project_names: HashMap::new(),
            project_groups: BTreeMap::new(),
            objects: BTreeMap::new(),
            admin_names: HashMap::new(),
            acls: Vec::new(),
            inner: HashMap::new(),
            norm: Norm::default(),
        };
        let uf = UserFilter { orgs: orgs.clone(), ..UserFilter::default() };
        for u in all!(|w| tx.list_users(&uf, &w)) {
            match (u.kind, &u.email, &u.given_name) {
                (UserKind::User, Some(e), _) => {
                    live.people.insert(e.to_lowercase(), u.id);
                    live.principals.insert(u.id, Principal::User(e.to_lowercase()));
                }
                (UserKind::ServiceAccount, _, Some(n)) => {
                    live.accounts.entry(n.clone()).or_default().push(u.id);
                    live.principals.insert(u.id, Principal::ServiceAccount(n.clone()));
                }
                _ => {}
            }
        }
        let gf = GroupFilter { orgs: orgs.clone(), ..GroupFilter::default() };
        for rec in all!(|w| tx.list_groups(&gf, &w)) {
            let users = tx.group_users(rec.id).await?;
            let groups = tx.group_groups(rec.id).await?;
            live.group_names.insert(rec.id, rec.name.clone());
            live.groups.insert(rec.name.clone(), LiveGroup { rec, users, groups });
        }
        let rf = RoleFilter { orgs: orgs.clone(), include_system: true, ..RoleFilter::default() };
        for rec in all!(|w| tx.list_roles(&rf, &w)) {
            let permissions = tx.role_permissions(rec.id).await?;
            let inherits = tx.role_roles(rec.id).await?;
            live.role_names.insert(rec.id, rec.name.clone());
            live.roles.insert(rec.name.clone(), LiveRole { rec, permissions, inherits });
        }
        let pf = ProjectFilter { orgs: orgs.clone(), ..ProjectFilter::default() };
        for p in all!(|w| tx.list_projects(&pf, &w)) {
            live.project_names.insert(p.id, p.name.clone());
            live.projects.insert(p.name.clone(), p);
        }
        // Keyed by path once the objects inside projects they may be set on are read.
        let mut listed = Vec::new();
        for kind in AdminKind::ALL {
            let f = AdminFilter { kind, orgs: orgs.clone(), scope_type: None, scope_id: None, ids: vec![], name: None };
            for a in all!(|w| tx.list_admin(&f, &w)) {
                live.admin_names.insert(a.id, a.name.clone());
                if kind == AdminKind::ProjectGroup {
                    let projects = tx.group_project_ids(a.id).await?;
                    live.project_groups.insert(a.name.clone(), (a, projects));
                } else if kinds::spec(kind).is_some() {
                    listed.push(a);
                }
            }
        }
        let af = AclFilter { orgs, ..AclFilter::default() };
        live.acls = all!(|w| tx.list_acls(&af, &w));
        let mut inner_ids: Vec<Uuid> = live
            .acls
            .iter()
            .map(|a| ObjectRef::new(a.object_type, a.object_id))
            .chain(listed.iter().map(|a| a.scope))
            .filter(|o| o.object_type.is_project_child() && o.object_type != ObjectType::ProjectLog)
            .map(|o| o.object_id)
            .chain(live.projects.values().filter_map(baseline))
            .collect();
        inner_ids.sort();
        inner_ids.dedup();
        for id in inner_ids {
            if let Some(o) = tx.get_object(id).await? {
                live.inner.insert(id, o);
            }
        }
        for a in listed {
            // One set on something that no longer resolves is left out.
            if let Some(on) = live.path_of(a.scope) {
                live.objects.insert(ObjKey { on, kind: a.kind.as_str(), name: a.name.clone() }, a);
            }
        }
        live.norm = live.normal_form(now);
        Ok(live)
    }

    /// The path of an object of the org, if it resolves.
    pub fn path_of(&self, o: ObjectRef) -> Option<Path> {
        use ObjectType as T;
        let named = |n: Option<&String>| n.map(|n| Path::Named(o.object_type, n.clone()));
        match o.object_type {
            t if t.is_org_noun() => (o.object_id == self.org.id.0).then_some(Path::Org(t)),
            T::Group => named(self.group_names.get(&GroupId(o.object_id))),
            T::Role => {
                let name = self.role_names.get(&RoleId(o.object_id))?;
                self.roles.get(name).filter(|r| r.rec.org_id.is_some())?;
                Some(Path::Named(T::Role, name.clone()))
            }
            T::ProjectGroup | T::ProjectGroupProjects | T::AiSecret => named(self.admin_names.get(&o.object_id)),
            T::Project | T::ProjectLog => named(self.project_names.get(&ProjectId(o.object_id))),
            T::Experiment | T::Dataset | T::Prompt | T::PromptSession => {
                let obj = self.inner.get(&o.object_id)?;
                let project = self.project_names.get(&obj.project_id)?;
                let name = match obj.kind {
                    ObjectKind::Prompt | ObjectKind::Function => obj.slug.clone().unwrap_or_else(|| obj.name.clone()),
                    _ => obj.name.clone(),
                };
                Some(Path::Inner(project.clone(), o.object_type, name))
            }
            _ => None,
        }
    }

    fn normal_form(&self, now: i64) -> Norm {
        let o = &self.org;
        let text = |k: &str| o.settings.get(k).and_then(Value::as_bool);
        let settings = ConfigSettings {
            api_url: o.api_url.clone(),
            is_universal_api: o.is_universal_api,
            is_dataplane_private: o.is_dataplane_private,
            proxy_url: o.proxy_url.clone(),
            realtime_url: o.realtime_url.clone(),
            image_rendering_mode: o.image_rendering_mode.as_deref().and_then(ImageRenderingMode::parse),
            strict_delegation: text("strict_delegation").unwrap_or(false),
        };
        let mut n = Norm {
            settings,
            members: self.people.keys().cloned().collect(),
            service_accounts: self.accounts.keys().cloned().collect(),
            ..Norm::default()
        };
        for (name, r) in self.roles.iter().filter(|(_, r)| r.rec.org_id.is_some()) {
            let role = RoleN {
                description: norm::text(&r.rec.description),
                permissions: r.permissions.iter().map(|p| (p.permission, p.restrict_object_type)).collect(),
                inherits: r.inherits.iter().filter_map(|i| self.role_names.get(i).cloned()).collect(),
            };
            n.roles.insert(name.clone(), role);
        }
        for (name, g) in &self.groups {
            let mut group = GroupN { description: norm::text(&g.rec.description), ..GroupN::default() };
            for u in &g.users {
                match self.principals.get(u) {
                    Some(Principal::User(e)) => group.users.insert(e.clone()),
                    Some(Principal::ServiceAccount(s)) => group.service_accounts.insert(s.clone()),
                    _ => false,
                };
            }
            group.groups = g.groups.iter().filter_map(|m| self.group_names.get(m).cloned()).collect();
            n.groups.insert(name.clone(), group);
        }
        for (name, p) in &self.projects {
            let mut settings = norm::project_settings(p.settings.as_ref());
            // The baseline by name, when it is an experiment of the project.
            let named = baseline(p).and_then(|id| self.inner.get(&id)).filter(|e| e.project_id == p.id);
            if let (Some(s), Some(e)) = (settings.as_mut(), named) {
                s.remove("baseline_experiment_id");
                s.insert(norm::BASELINE.into(), Value::String(e.name.clone()));
            }
            let project = ProjectN { description: norm::text(&p.description), settings };
            n.projects.insert(name.clone(), project);
        }
        for (name, (a, projects)) in &self.project_groups {
            let pg = ProjectGroupN {
                description: a
                    .data
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .filter(|s| !s.is_empty()),
                projects: projects.iter().filter_map(|p| self.project_names.get(p).cloned()).collect(),
            };
            n.project_groups.insert(name.clone(), pg);
        }
        for (key, a) in &self.objects {
            if let Some(spec) = kinds::spec(a.kind) {
                n.objects.insert(key.clone(), kinds::exported(&spec, &a.data));
            }
        }
        for a in self.acls.iter().filter(|a| a.expires_at.is_none_or(|t| t > now)) {
            if let Some(key) = self.grant_key(a) {
                n.grants.insert(key, a.expires_at);
            }
        }
        n
    }

    /// A stored grant's identity by names, if everything it names resolves.
    pub fn grant_key(&self, a: &AclRecord) -> Option<GrantKey> {
        let on = self.path_of(ObjectRef::new(a.object_type, a.object_id))?;
        let who = match (a.user_id, a.group_id) {
            (Some(u), _) => self.principals.get(&u)?.clone(),
            (None, Some(g)) => Principal::Group(self.group_names.get(&g)?.clone()),
            (None, None) => return None,
        };
        let what = match (a.permission, a.role_id) {
            (Some(p), _) => What::Permission(p),
            (None, Some(r)) => What::Role(self.role_names.get(&r)?.clone()),
            (None, None) => return None,
        };
        Some(GrantKey { on, who, what, restrict: a.restrict_object_type })
    }
}
