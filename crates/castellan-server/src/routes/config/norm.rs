//! A configuration in normal form: every entry keyed by its names, every list a
//! sorted set. A document becomes one once it is checked (each error names the
//! entry), the live state becomes one when it is read, and the two are compared
//! entry by entry; a normal form prints back as the document it stands for.

use super::kinds;
use super::path::Path;
use crate::error::{ApiError, ApiResult};
use crate::seed::BUILTIN_GROUPS;
use castellan_api_types::{
    format_time, parse_time, ConfigDocument, ConfigGrant, ConfigGroup, ConfigObject, ConfigProject, ConfigProjectGroup,
    ConfigRole, ConfigSettings, CONFIG_VERSION,
};
use castellan_core::{Email, Name, ObjectType, Permission};
use castellan_store::AdminKind;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A grantee, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// A permission group.
    Group(String),
    /// A person, by email.
    User(String),
    /// A service account.
    ServiceAccount(String),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Group(g) => write!(f, "group {g}"),
            Principal::User(u) => write!(f, "user {u}"),
            Principal::ServiceAccount(s) => write!(f, "service account {s}"),
        }
    }
}

/// What a grant gives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum What {
    /// A permission.
    Permission(Permission),
    /// A role, by name.
    Role(String),
}

/// A grant's identity: the same key is the same grant (its expiry is not part of it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantKey {
    /// The object.
    pub on: Path,
    /// The grantee.
    pub who: Principal,
    /// The permission or role.
    pub what: What,
    /// The restriction (permissions only).
    pub restrict: Option<ObjectType>,
}

impl GrantKey {
    /// How plans name it: `group Engineers: read:experiment on project/web`.
    pub fn label(&self) -> String {
        let what = match &self.what {
            What::Permission(p) => perm_text(*p, self.restrict),
            What::Role(r) => format!("role {r}"),
        };
        format!("{}: {what} on {}", self.who, self.on)
    }
}

/// An administration object's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    /// What it is set on.
    pub on: Path,
    /// Its kind.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

impl ObjKey {
    /// How plans name it: `project/web/project_tag/bug`.
    pub fn label(&self) -> String {
        format!("{}/{}/{}", self.on, self.kind, self.name.replace('\\', "\\\\").replace('/', "\\/"))
    }
}

/// A role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleN {
    pub description: Option<String>,
    pub permissions: BTreeSet<(Permission, Option<ObjectType>)>,
    pub inherits: BTreeSet<String>,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupN {
    pub description: Option<String>,
    pub users: BTreeSet<String>,
    pub service_accounts: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProjectN {
    pub description: Option<String>,
    pub settings: Option<Map<String, Value>>,
}

/// A project group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProjectGroupN {
    pub description: Option<String>,
    pub projects: BTreeSet<String>,
}

/// A whole configuration in normal form.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Norm {
    pub settings: ConfigSettings,
    pub members: BTreeSet<String>,
    pub service_accounts: BTreeSet<String>,
    pub roles: BTreeMap<String, RoleN>,
    pub groups: BTreeMap<String, GroupN>,
    pub projects: BTreeMap<String, ProjectN>,
    pub project_groups: BTreeMap<String, ProjectGroupN>,
    pub objects: BTreeMap<ObjKey, Map<String, Value>>,
    /// Each grant and its expiry.
    pub grants: BTreeMap<GrantKey, Option<i64>>,
}

/// `read`, or `read:experiment` for a permission restricted to a type.
pub fn perm_text(p: Permission, restrict: Option<ObjectType>) -> String {
    match restrict {
        Some(t) => format!("{p}:{t}"),
        None => p.to_string(),
    }
}

fn parse_perm(s: &str) -> Result<(Permission, Option<ObjectType>), String> {
    let (p, t) = match s.split_once(':') {
        Some((p, t)) => (p, Some(t)),
        None => (s, None),
    };
    let p = p.trim().parse::<Permission>().map_err(|e| e.to_string())?;
    let t = t.map(|t| t.trim().parse::<ObjectType>()).transpose().map_err(|e| e.to_string())?;
    Ok((p, t))
}

/// `v` with every object key whose value is null left out, at every depth.
pub fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// A project's settings in normal form: no nulls, and an empty object is none.
pub fn project_settings(v: Option<&Value>) -> Option<Map<String, Value>> {
    match v.map(without_nulls) {
        Some(Value::Object(m)) if !m.is_empty() => Some(m),
        _ => None,
    }
}

/// A description in normal form: an empty one is none.
pub fn text(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

/// The error of a document entry: 400 `invalid_body` naming it.
fn bad(entry: impl fmt::Display, msg: impl fmt::Display) -> ApiError {
    ApiError::invalid_body(format!("{entry}: {msg}"))
}

fn name(entry: &str, raw: &str) -> ApiResult<String> {
    Name::parse("name", raw).map(Name::into_inner).map_err(|e| bad(entry, e))
}

impl Norm {
    /// Checks a document and puts it in normal form. Every reference must resolve
    /// within the document (a group's users among `members`, a grant's role among
    /// `roles` or `system_roles`, …); the first error is a 400 naming the entry.
    pub fn from_document(doc: &ConfigDocument, system_roles: &BTreeSet<String>, now: i64) -> ApiResult<Norm> {
        if doc.version != CONFIG_VERSION {
            return Err(ApiError::invalid_body(format!(
                "`version` must be {CONFIG_VERSION} (the document format this server reads), got {}",
                doc.version
            )));
        }
        name("`organization`", &doc.organization)?;
        let mut n = Norm { settings: settings(&doc.settings)?, ..Norm::default() };
        for m in &doc.members {
            n.members.insert(Email::parse(m).map_err(|e| bad("`members`", e))?.as_str().to_owned());
        }
        for s in &doc.service_accounts {
            n.service_accounts.insert(name("`service_accounts`", s)?);
        }
        // Names first, so that entries may refer to entries listed after them.
        let mut role_names = BTreeSet::new();
        for r in &doc.roles {
            let rn = name("a role", &r.name)?;
            if system_roles.contains(&rn) {
                return Err(bad(format!("role `{rn}`"), "a system role has that name; system roles are not listed"));
            }
            if !role_names.insert(rn.clone()) {
                return Err(bad(format!("role `{rn}`"), "listed twice"));
            }
        }
        let group_names = unique("group", doc.groups.iter().map(|g| g.name.as_str()))?;
        let project_names = unique("project", doc.projects.iter().map(|p| p.name.as_str()))?;
        let pg_names = unique("project group", doc.project_groups.iter().map(|g| g.name.as_str()))?;
        for (builtin, _) in BUILTIN_GROUPS {
            if !group_names.contains(builtin) {
                return Err(ApiError::BadRequest {
                    code: crate::error::ErrorCode::Protected,
                    message: format!("group `{builtin}`: a built-in group cannot be deleted; keep it in the document"),
                });
            }
        }
        for r in &doc.roles {
            let entry = format!("role `{}`", r.name.trim());
            let mut role = RoleN { description: text(&r.description), ..RoleN::default() };
            for p in &r.permissions {
                role.permissions.insert(parse_perm(p).map_err(|e| bad(&entry, format!("permission `{p}`: {e}")))?);
            }
            for i in &r.inherits {
                let i = name(&entry, i)?;
                if !role_names.contains(&i) && !system_roles.contains(&i) {
                    return Err(bad(&entry, format!("inherits `{i}`, which is neither in `roles` nor a system role")));
                }
                role.inherits.insert(i);
            }
            n.roles.insert(r.name.trim().to_owned(), role);
        }
        for g in &doc.groups {
            let entry = format!("group `{}`", g.name.trim());
            let mut group = GroupN { description: text(&g.description), ..GroupN::default() };
            for u in &g.users {
                let e = Email::parse(u).map_err(|e| bad(&entry, e))?.as_str().to_owned();
                if !n.members.contains(&e) {
                    return Err(bad(&entry, format!("user `{e}` is not listed in `members`")));
                }
                group.users.insert(e);
            }
            for s in &g.service_accounts {
                let s = name(&entry, s)?;
                if !n.service_accounts.contains(&s) {
                    return Err(bad(&entry, format!("service account `{s}` is not listed in `service_accounts`")));
                }
                group.service_accounts.insert(s);
            }
            for m in &g.groups {
                let m = name(&entry, m)?;
                if !group_names.contains(&m) {
                    return Err(bad(&entry, format!("member group `{m}` is not in `groups`")));
                }
                group.groups.insert(m);
            }
            n.groups.insert(g.name.trim().to_owned(), group);
        }
        for p in &doc.projects {
            let entry = format!("project `{}`", p.name.trim());
            let settings = project_settings(p.settings.clone().map(Value::Object).as_ref());
            if let Some(s) = &settings {
                check_project_settings(s).map_err(|e| bad(&entry, e))?;
            }
            let project = ProjectN { description: text(&p.description), settings };
            n.projects.insert(p.name.trim().to_owned(), project);
        }
        for g in &doc.project_groups {
            let entry = format!("project group `{}`", g.name.trim());
            let mut pg = ProjectGroupN { description: text(&g.description), ..ProjectGroupN::default() };
            for p in &g.projects {
                let p = name(&entry, p)?;
                if !project_names.contains(&p) {
                    return Err(bad(&entry, format!("project `{p}` is not in `projects`")));
                }
                pg.projects.insert(p);
            }
            n.project_groups.insert(g.name.trim().to_owned(), pg);
        }
        let refs = Refs { roles: &role_names, groups: &group_names, projects: &project_names, pgs: &pg_names };
        for o in &doc.objects {
            let (key, data) = object(o, &refs)?;
            if n.objects.insert(key.clone(), data).is_some() {
                return Err(bad(format!("object `{}`", key.label()), "listed twice"));
            }
        }
        derived_unique(&n)?;
        let secrets: BTreeSet<String> = n
            .objects
            .keys()
            .filter(|k| k.kind == ObjectType::AiSecret.as_str() && k.on == Path::Org(ObjectType::Organization))
            .map(|k| k.name.clone())
            .collect();
        for (i, g) in doc.grants.iter().enumerate() {
            let (key, expires) = grant(i, g, &n, &refs, &secrets, system_roles, now)?;
            if n.grants.insert(key.clone(), expires).is_some() {
                return Err(bad(format!("grant `{}`", key.label()), "listed twice"));
            }
        }
        Ok(n)
    }

    /// The document this normal form stands for, every list sorted.
    pub fn to_document(&self, organization: &str) -> ConfigDocument {
        ConfigDocument {
            version: CONFIG_VERSION,
            organization: organization.to_owned(),
            members: self.members.iter().cloned().collect(),
            service_accounts: self.service_accounts.iter().cloned().collect(),
            settings: self.settings.clone(),
            roles: self.roles.iter().map(|(n, r)| role_entry(n, r)).collect(),
            groups: self.groups.iter().map(|(n, g)| group_entry(n, g)).collect(),
            projects: self.projects.iter().map(|(n, p)| project_entry(n, p)).collect(),
            project_groups: self.project_groups.iter().map(|(n, g)| project_group_entry(n, g)).collect(),
            objects: self.objects.iter().map(|(k, d)| object_entry(k, d)).collect(),
            grants: self.grants.iter().map(|(k, e)| grant_entry(k, *e)).collect(),
        }
    }
}

/// A document's key for a project's baseline experiment, by name (the stored
/// settings hold its id, `baseline_experiment_id`).
pub const BASELINE: &str = "baseline_experiment";

/// Checks a project's settings as `PATCH /v1/project` does, with the baseline
/// experiment named rather than numbered.
fn check_project_settings(s: &Map<String, Value>) -> Result<(), String> {
    let mut stored = s.clone();
    match stored.remove(BASELINE) {
        None => {}
        Some(Value::String(_)) if !s.contains_key("baseline_experiment_id") => {}
        Some(Value::String(_)) => {
            return Err(format!("`settings` names the baseline twice: give `{BASELINE}` (a name) only"))
        }
        Some(other) => return Err(format!("`settings.{BASELINE}` must be an experiment's name, got `{other}`")),
    }
    crate::routes::project::check_settings(&Value::Object(stored)).map_err(|e| e.to_string())
}

fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> ApiResult<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for raw in names {
        let n = name(&format!("a {what}"), raw)?;
        if !out.insert(n.clone()) {
            return Err(bad(format!("{what} `{n}`"), "listed twice"));
        }
    }
    Ok(out)
}

fn settings(s: &ConfigSettings) -> ApiResult<ConfigSettings> {
    for (field, v) in [("api_url", &s.api_url), ("proxy_url", &s.proxy_url), ("realtime_url", &s.realtime_url)] {
        if let Some(v) = v {
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                return Err(bad("`settings`", format!("`{field}` must be an http(s) URL, got `{v}`")));
            }
        }
    }
    Ok(s.clone())
}

/// The names a document defines, which its paths may name.
struct Refs<'a> {
    roles: &'a BTreeSet<String>,
    groups: &'a BTreeSet<String>,
    projects: &'a BTreeSet<String>,
    pgs: &'a BTreeSet<String>,
}

impl Refs<'_> {
    /// Checks that a path names something the document defines (objects inside a
    /// project are data, checked against the live state by the plan).
    fn check(&self, path: &Path, secrets: Option<&BTreeSet<String>>) -> Result<(), String> {
        let (set, what) = match path {
            Path::Org(_) => return Ok(()),
            Path::Named(ObjectType::Group, n) => (self.groups, ("group", n)),
            Path::Named(ObjectType::Role, n) => (self.roles, ("role", n)),
            Path::Named(ObjectType::ProjectGroup | ObjectType::ProjectGroupProjects, n) => {
                (self.pgs, ("project group", n))
            }
            Path::Named(ObjectType::AiSecret, n) => match secrets {
                Some(s) if s.contains(n) => return Ok(()),
                _ => return Err(format!("AI secret `{n}` is not among the document's `ai_secret` objects")),
            },
            Path::Named(_, p) | Path::Inner(p, _, _) => (self.projects, ("project", p)),
        };
        if set.contains(what.1) {
            Ok(())
        } else {
            Err(format!("{} `{}` is not in the document", what.0, what.1))
        }
    }
}

fn object(o: &ConfigObject, refs: &Refs<'_>) -> ApiResult<(ObjKey, Map<String, Value>)> {
    let entry = format!("object `{}/{}/{}`", o.on, o.kind, o.name);
    let listed = || kinds::listed().iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
    let kind = AdminKind::parse(o.kind.trim())
        .ok_or_else(|| bad(&entry, format!("unknown kind `{}`; the kinds of `objects` are: {}", o.kind, listed())))?;
    let spec = kinds::spec(kind).ok_or_else(|| match kind {
        AdminKind::ProjectGroup => bad(&entry, "project groups are listed under `project_groups`"),
        _ => bad(&entry, format!("a {} is a version of data, not part of a configuration", kind.as_str())),
    })?;
    let on = Path::parse(&o.on).map_err(|e| bad(&entry, e))?;
    if !spec.scopes.contains(&on.object_type()) {
        let scopes: Vec<&str> = spec.scopes.iter().map(|t| t.as_str()).collect();
        return Err(bad(&entry, format!("a {} is set on one of: {}", kind.as_str(), scopes.join(", "))));
    }
    refs.check(&on, None).map_err(|e| bad(&entry, e))?;
    let data: Map<String, Value> =
        o.data.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect();
    let name = name(&entry, &o.name)?;
    kinds::check(kind, &spec, &name, &data).map_err(|e| bad(&entry, e))?;
    Ok((ObjKey { on, kind: kind.as_str(), name }, data))
}

/// Objects whose kind derives a unique key from the name (an agent's slug) may not
/// share one on what they are set on.
fn derived_unique(n: &Norm) -> ApiResult<()> {
    let mut seen: BTreeMap<(&Path, &str, String), &str> = BTreeMap::new();
    for key in n.objects.keys() {
        let Some((field, derive)) = AdminKind::parse(key.kind).and_then(kinds::spec).and_then(|s| s.derived) else {
            continue;
        };
        let d = derive(&key.name);
        if let Some(other) = seen.insert((&key.on, key.kind, d.clone()), &key.name) {
            return Err(bad(
                format!("object `{}`", key.label()),
                format!("the {} `{other}` on `{}` has the same {field} `{d}`", key.kind, key.on),
            ));
        }
    }
    Ok(())
}

fn grant(
    i: usize,
    g: &ConfigGrant,
    n: &Norm,
    refs: &Refs<'_>,
    secrets: &BTreeSet<String>,
    system_roles: &BTreeSet<String>,
    now: i64,
) -> ApiResult<(GrantKey, Option<i64>)> {
    let entry = format!("grant #{} (on `{}`)", i + 1, g.on);
    let on = Path::parse(&g.on).map_err(|e| bad(&entry, e))?;
    refs.check(&on, Some(secrets)).map_err(|e| bad(&entry, e))?;
    let who = match (&g.user, &g.service_account, &g.group) {
        (Some(u), None, None) => {
            let e = Email::parse(u).map_err(|e| bad(&entry, e))?.as_str().to_owned();
            if !n.members.contains(&e) {
                return Err(bad(&entry, format!("user `{e}` is not listed in `members`")));
            }
            Principal::User(e)
        }
        (None, Some(s), None) => {
            let s = name(&entry, s)?;
            if !n.service_accounts.contains(&s) {
                return Err(bad(&entry, format!("service account `{s}` is not listed in `service_accounts`")));
            }
            Principal::ServiceAccount(s)
        }
        (None, None, Some(gr)) => {
            let gr = name(&entry, gr)?;
            if !refs.groups.contains(&gr) {
                return Err(bad(&entry, format!("group `{gr}` is not in `groups`")));
            }
            Principal::Group(gr)
        }
        _ => return Err(bad(&entry, "exactly one of `user`, `service_account` and `group` must be set")),
    };
    let what = match (g.permission, &g.role) {
        (Some(p), None) => What::Permission(p),
        (None, Some(r)) => {
            let r = name(&entry, r)?;
            if !refs.roles.contains(&r) && !system_roles.contains(&r) {
                return Err(bad(&entry, format!("role `{r}` is neither in `roles` nor a system role")));
            }
            if g.restrict_object_type.is_some() {
                return Err(bad(&entry, "`restrict_object_type` can only be used with `permission`, not with `role`"));
            }
            What::Role(r)
        }
        _ => return Err(bad(&entry, "exactly one of `permission` and `role` must be set")),
    };
    let expires = match &g.expires_at {
        None => None,
        Some(s) => {
            let t = parse_time(s)
                .ok_or_else(|| bad(&entry, format!("`expires_at` must be an RFC 3339 time, got `{s}`")))?;
            if t <= now {
                return Err(bad(&entry, format!("`expires_at` `{s}` is not in the future")));
            }
            Some(t)
        }
    };
    Ok((GrantKey { on, who, what, restrict: g.restrict_object_type }, expires))
}

/// A role as a document lists it.
pub fn role_entry(name: &str, r: &RoleN) -> ConfigRole {
    ConfigRole {
        name: name.to_owned(),
        description: r.description.clone(),
        permissions: r.permissions.iter().map(|(p, t)| perm_text(*p, *t)).collect(),
        inherits: r.inherits.iter().cloned().collect(),
    }
}

/// A group as a document lists it.
pub fn group_entry(name: &str, g: &GroupN) -> ConfigGroup {
    ConfigGroup {
        name: name.to_owned(),
        description: g.description.clone(),
        users: g.users.iter().cloned().collect(),
        service_accounts: g.service_accounts.iter().cloned().collect(),
        groups: g.groups.iter().cloned().collect(),
    }
}

/// A project as a document lists it.
pub fn project_entry(name: &str, p: &ProjectN) -> ConfigProject {
    ConfigProject { name: name.to_owned(), description: p.description.clone(), settings: p.settings.clone() }
}

/// A project group as a document lists it.
pub fn project_group_entry(name: &str, g: &ProjectGroupN) -> ConfigProjectGroup {
    ConfigProjectGroup {
        name: name.to_owned(),
        description: g.description.clone(),
        projects: g.projects.iter().cloned().collect(),
    }
}

/// An administration object as a document lists it.
pub fn object_entry(k: &ObjKey, data: &Map<String, Value>) -> ConfigObject {
    ConfigObject { kind: k.kind.to_owned(), on: k.on.to_string(), name: k.name.clone(), data: data.clone() }
}

/// A grant as a document lists it.
pub fn grant_entry(k: &GrantKey, expires: Option<i64>) -> ConfigGrant {
    let (user, service_account, group) = match &k.who {
        Principal::User(u) => (Some(u.clone()), None, None),
        Principal::ServiceAccount(s) => (None, Some(s.clone()), None),
        Principal::Group(g) => (None, None, Some(g.clone())),
    };
    let (permission, role) = match &k.what {
        What::Permission(p) => (Some(*p), None),
        What::Role(r) => (None, Some(r.clone())),
    };
    ConfigGrant {
        on: k.on.to_string(),
        user,
        service_account,
        group,
        permission,
        role,
        restrict_object_type: k.restrict,
        expires_at: expires.map(format_time),
    }
}
