//! The one permissions component, used for a group's access, a project's
//! permissions and an object's permissions (Grafana's and Braintrust's "Object
//! permissions" dialog): the direct grants on the object per principal, an editor
//! (checkboxes mapped to ACL rows, with an optional expiry), who can do what and why
//! (`who_can` + `explain`), and an Explain panel. Reads and writes are the ACL
//! endpoints' handlers (`GET /v1/acl`, `POST /v1/acl/batch_update`,
//! `GET /v1/acl/who_can`, `GET /v1/acl/explain`).

use super::{all, body, one, q, query, Ctx, Fail, FormError, Page};
use crate::error::ApiError;
use crate::routes::acl;
use askama::Template;
use axum::http::StatusCode;
use castellan_api_types::{Acl, Explanation, Group, User};
use castellan_authz::{Grant, Subject};
use castellan_core::{ObjectRef, ObjectType, Permission};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// A column of the permission grid: a console word and the permissions it grants.
pub struct Column {
    /// Form key.
    pub key: &'static str,
    /// Header.
    pub label: &'static str,
    /// The permissions it stands for.
    pub perms: &'static [Permission],
}

const MANAGE: &[Permission] =
    &[Permission::CreateAcls, Permission::ReadAcls, Permission::UpdateAcls, Permission::DeleteAcls];

/// Every column; an object type uses some of them.
pub const COLUMNS: [Column; 5] = [
    Column { key: "read", label: "Read", perms: &[Permission::Read] },
    Column { key: "create", label: "Create", perms: &[Permission::Create] },
    Column { key: "update", label: "Update", perms: &[Permission::Update] },
    Column { key: "delete", label: "Delete", perms: &[Permission::Delete] },
    Column { key: "manage", label: "Manage access", perms: MANAGE },
];

/// The rows of the grid for an object: the object itself, and for a project one row
/// per object type inside it (grants restricted to that type).
fn scopes(t: ObjectType) -> Vec<(Option<ObjectType>, &'static str)> {
    match t {
        ObjectType::Project => vec![
            (None, "Project"),
            (Some(ObjectType::Experiment), "Experiments"),
            (Some(ObjectType::Dataset), "Datasets"),
            (Some(ObjectType::ProjectLog), "Logs"),
            (Some(ObjectType::Prompt), "Prompts"),
            (Some(ObjectType::PromptSession), "Playgrounds"),
        ],
        _ => vec![(None, "This object")],
    }
}

/// Which columns an object type's own row has.
fn columns_for(t: ObjectType, restrict: Option<ObjectType>) -> Vec<&'static Column> {
    let create = matches!(t, ObjectType::Project | ObjectType::OrgProject) || restrict.is_some();
    COLUMNS.iter().filter(|c| c.key != "create" || create).collect()
}

/// A principal: `user:<id>` or `group:<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// A user or service account.
    User(Uuid),
    /// A permission group.
    Group(Uuid),
}

impl Principal {
    /// Parses `user:<id>` / `group:<id>`.
    pub fn parse(s: &str) -> Option<Principal> {
        let (k, id) = s.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match k {
            "user" => Some(Principal::User(id)),
            "group" => Some(Principal::Group(id)),
            _ => None,
        }
    }

    /// The form value.
    pub fn key(&self) -> String {
        match self {
            Principal::User(u) => format!("user:{u}"),
            Principal::Group(g) => format!("group:{g}"),
        }
    }

    fn of(a: &Acl) -> Option<Principal> {
        a.user_id.map(Principal::User).or(a.group_id.map(Principal::Group))
    }

    fn fields(&self) -> Value {
        match self {
            Principal::User(u) => json!({"user_id": u}),
            Principal::Group(g) => json!({"group_id": g}),
        }
    }
}

/// Names of the org's principals, roles and objects, for labels.
pub struct Names {
    /// Users by id.
    pub users: HashMap<Uuid, String>,
    /// Which users are service accounts.
    pub service: BTreeSet<Uuid>,
    /// Groups by id.
    pub groups: HashMap<Uuid, String>,
    /// Roles by id.
    pub roles: HashMap<Uuid, String>,
    /// Other objects (projects, …) by id.
    pub objects: HashMap<Uuid, String>,
}

impl Names {
    /// Loads every name the caller may read.
    pub async fn load(ctx: &Ctx, users: &[User], groups: &[Group]) -> Result<Names, Fail> {
        let roles = super::groups::load_roles(ctx).await?;
        let mut objects = HashMap::new();
        for p in super::projects::load_projects(ctx).await? {
            objects.insert(p.id, p.name);
        }
        Ok(Names {
            users: users.iter().map(|u| (u.id, super::members::name_of(u))).collect(),
            service: users.iter().filter(|u| super::members::is_service(u)).map(|u| u.id).collect(),
            groups: groups.iter().map(|g| (g.id, g.name.clone())).collect(),
            roles: roles.into_iter().map(|r| (r.id, r.name)).collect(),
            objects,
        })
    }

    /// A principal's label.
    pub fn principal(&self, p: Principal) -> String {
        match p {
            Principal::User(u) => self.users.get(&u).cloned().unwrap_or_else(|| format!("user {u}")),
            Principal::Group(g) => self.groups.get(&g).cloned().unwrap_or_else(|| format!("group {g}")),
        }
    }

    fn kind(&self, p: Principal) -> &'static str {
        match p {
            Principal::Group(_) => "Group",
            Principal::User(u) if self.service.contains(&u) => "Service account",
            Principal::User(_) => "User",
        }
    }

    fn object(&self, t: ObjectType, id: Uuid) -> String {
        match t {
            ObjectType::Organization => "the organization".into(),
            ObjectType::OrgProject => "all projects".into(),
            ObjectType::OrgMember => "members".into(),
            ObjectType::OrgAuditLogs => "the audit log".into(),
            ObjectType::Project => {
                format!("project {}", self.objects.get(&id).cloned().unwrap_or_else(|| id.to_string()))
            }
            ObjectType::ProjectLog => "the project's logs".into(),
            ObjectType::ProjectGroupProjects => "a project group's projects".into(),
            ObjectType::Group => format!("group {}", self.groups.get(&id).cloned().unwrap_or_else(|| id.to_string())),
            other => format!("this {}", other.as_str().replace('_', " ")),
        }
    }

    /// Where a permission comes from, as explain tells it: direct, via group X, via
    /// role Y, inherited from the organization or project.
    pub fn source(&self, on: ObjectRef, g: &castellan_api_types::GrantPathOut) -> String {
        let mut parts = Vec::new();
        match (g.group_id, g.group_chain.is_empty()) {
            (Some(gid), _) => {
                let chain: Vec<String> =
                    g.group_chain.iter().map(|x| self.groups.get(x).cloned().unwrap_or_default()).collect();
                let named = self.groups.get(&gid).cloned().unwrap_or_else(|| gid.to_string());
                if chain.len() > 1 {
                    parts.push(format!("via group {}", chain.join(" → ")));
                } else {
                    parts.push(format!("via group {named}"));
                }
            }
            (None, _) => parts.push("direct".into()),
        }
        if !g.role_chain.is_empty() {
            let chain: Vec<String> =
                g.role_chain.iter().map(|x| self.roles.get(x).cloned().unwrap_or_else(|| x.to_string())).collect();
            parts.push(format!("via role {}", chain.join(" → ")));
        }
        if g.acl_object_type != on.object_type || g.acl_object_id != on.object_id {
            parts.push(format!("inherited from {}", self.object(g.acl_object_type, g.acl_object_id)));
        }
        if let Some(t) = g.restrict_object_type {
            parts.push(format!("for {}s", t.as_str().replace('_', " ")));
        }
        parts.join(" · ")
    }
}

/// Every grant placed on `obj`, as the authorization index holds them (the snapshot
/// `who_can` and `explain` answer from): `read_acls` on it is required, through the
/// same `Permit` path as `GET /v1/acl`. In memory, so a page lists an object's
/// thousands of grants without reading them from the database.
pub async fn grants_on(ctx: &Ctx, obj: ObjectRef) -> Result<Vec<Acl>, ApiError> {
    ctx.caller.require(Permission::ReadAcls, obj).await?;
    let org = ctx.org.id.0;
    let rows = ctx.caller.state().index().snapshot().acls_on(obj);
    Ok(rows
        .into_iter()
        .map(|r| {
            let (permission, restrict_object_type, role_id) = match r.grant {
                Grant::Permission { permission, restrict_object_type } => {
                    (Some(permission), restrict_object_type, None)
                }
                Grant::Role(role) => (None, None, Some(role)),
            };
            Acl {
                id: r.id,
                object_type: obj.object_type,
                object_id: obj.object_id,
                user_id: match r.subject {
                    Subject::User(u) => Some(u),
                    Subject::Group(_) => None,
                },
                group_id: match r.subject {
                    Subject::Group(g) => Some(g),
                    Subject::User(_) => None,
                },
                permission,
                restrict_object_type,
                role_id,
                _object_org_id: org,
                created: None,
                expires_at: r.expires_at.map(castellan_api_types::format_time),
            }
        })
        .collect())
}

/// One principal's direct grants on `obj` (`GET /v1/acl` with `user_id` or
/// `group_id`; needs `read_acls` on it), read from the database for a write.
async fn grants_of(ctx: &Ctx, obj: ObjectRef, p: Principal) -> Result<Vec<Acl>, ApiError> {
    let (t, id) = (obj.object_type.as_str().to_owned(), obj.object_id.to_string());
    let (k, v) = match p {
        Principal::User(u) => ("user_id", u.to_string()),
        Principal::Group(g) => ("group_id", g.to_string()),
    };
    let mut out: Vec<Acl> = Vec::new();
    loop {
        let after = out.last().map(|a| a.id.to_string()).unwrap_or_default();
        let mut page = vec![("limit", "1000")];
        if !after.is_empty() {
            page.push(("starting_after", after.as_str()));
        }
        let got =
            acl::list(ctx.caller.clone(), q(&[("object_type", &t), ("object_id", &id)])?, q(&[(k, &v)])?, q(&page)?)
                .await?
                .0
                .objects;
        let n = got.len();
        out.extend(got);
        if n < 1000 {
            return Ok(out);
        }
    }
}

/// One principal's direct grants on the object, for the table.
struct GrantRow {
    key: String,
    label: String,
    kind: &'static str,
    summary: Vec<String>,
    roles: Vec<String>,
    expires: String,
}

/// A cell of the editor.
struct Cell {
    name: String,
    label: String,
    checked: bool,
    present: bool,
}

struct EditRow {
    label: &'static str,
    cells: Vec<Cell>,
}

/// A who-can line.
struct WhoRow {
    id: Uuid,
    label: String,
    sources: Vec<(String, String)>,
}

/// An Explain answer: allowed, about whom, the deciding grants (source, expiry),
/// the near misses.
type Explained = (bool, String, Vec<(String, String)>, Vec<String>);

/// The access component's template.
#[derive(Template)]
#[template(path = "console/access.html")]
struct AccessPage<'a> {
    heading: String,
    intro: &'a str,
    crumbs: Vec<(String, String)>,
    tabs: Vec<(String, String, bool)>,
    action: String,
    csrf: &'a str,
    can_read: bool,
    can_edit: bool,
    rows: Vec<GrantRow>,
    total: usize,
    pager: super::Pager,
    pager_label: &'static str,
    headers: Vec<&'static str>,
    find: String,
    matches: Vec<Match>,
    editing: Option<(String, String)>,
    grid: Vec<EditRow>,
    expires: String,
    err: FormError,
    who_perm: String,
    who: Vec<WhoRow>,
    who_more: usize,
    explain_user: String,
    explain_error: String,
    explain_perm: String,
    explained: Option<Explained>,
    perms: Vec<&'static str>,
}

/// A principal found by the search, to edit.
struct Match {
    key: String,
    label: String,
    kind: &'static str,
    granted: bool,
}

/// Where the component is shown and what it is about.
pub struct AccessView {
    /// The object.
    pub obj: ObjectRef,
    /// Its title.
    pub heading: String,
    /// One line under the title.
    pub intro: &'static str,
    /// Breadcrumbs (href, label).
    pub crumbs: Vec<(String, String)>,
    /// Tabs (href, label, current).
    pub tabs: Vec<(String, String, bool)>,
    /// The page's URL (the form posts there).
    pub action: String,
    /// The nav entry to mark.
    pub nav: &'static str,
}

/// The page's query: the principal being edited, the who-can permission, the explain question.
#[derive(serde::Deserialize, Default)]
pub struct AccessQuery {
    #[serde(default)]
    principal: String,
    #[serde(default)]
    who: String,
    #[serde(default)]
    explain_user: String,
    #[serde(default)]
    explain_perm: String,
    #[serde(default)]
    find: String,
    #[serde(default)]
    page: usize,
    #[serde(default)]
    notice: Option<String>,
}

/// How many users the who-can list shows with their sources.
const WHO_PAGE: usize = 25;
/// How many principals a search shows.
const MATCHES: usize = 20;

/// Renders the component.
pub async fn render(ctx: &Ctx, view: AccessView, q: AccessQuery, err: FormError) -> Page {
    let obj = view.obj;
    let users = if ctx.can(Permission::Read, ctx.noun(ObjectType::OrgMember)) {
        super::members::load_members(ctx).await?
    } else {
        vec![]
    };
    let groups = super::members::load_groups(ctx).await?;
    let names = Names::load(ctx, &users, &groups).await?;
    let can_read = ctx.can(Permission::ReadAcls, obj);
    let can_edit = ctx.can(Permission::CreateAcls, obj) && ctx.can(Permission::DeleteAcls, obj);
    let grants = if can_read { grants_on(ctx, obj).await? } else { vec![] };

    // Direct grants per principal.
    let mut by: BTreeMap<Principal, Vec<&Acl>> = BTreeMap::new();
    for a in &grants {
        if let Some(p) = Principal::of(a) {
            by.entry(p).or_default().push(a);
        }
    }
    let scopes_ = scopes(obj.object_type);
    // The principals by kind and name, a page of them at a time; only the page's
    // rows are summed up.
    let mut order: Vec<(Principal, String, &'static str)> =
        by.keys().map(|p| (*p, names.principal(*p), names.kind(*p))).collect();
    order.sort_by_cached_key(|(_, label, kind)| (*kind != "Group", label.to_lowercase()));
    let total = order.len();
    let at = q.page.max(1);
    let page_link = |p: usize| format!("{}?{}", view.action, super::qs(&[("page", &p.to_string())]));
    let pager = super::Pager {
        prev: (at > 1).then(|| page_link(at - 1)),
        next: (total > at * super::PAGE_SIZE).then(|| page_link(at + 1)),
    };
    let rows: Vec<GrantRow> = order
        .into_iter()
        .skip((at - 1) * super::PAGE_SIZE)
        .take(super::PAGE_SIZE)
        .map(|(p, label, kind)| {
            let acls = by.get(&p).map(Vec::as_slice).unwrap_or_default();
            let mut summary = Vec::new();
            for (restrict, label) in &scopes_ {
                let words: Vec<&str> = columns_for(obj.object_type, *restrict)
                    .iter()
                    .filter(|c| {
                        c.perms.iter().all(|perm| {
                            acls.iter().any(|a| a.permission == Some(*perm) && a.restrict_object_type == *restrict)
                        })
                    })
                    .map(|c| c.label)
                    .collect();
                if !words.is_empty() {
                    summary.push(if restrict.is_none() {
                        words.join(", ")
                    } else {
                        format!("{label}: {}", words.join(", "))
                    });
                }
            }
            let other: Vec<String> = acls
                .iter()
                .filter(|a| a.permission.is_some())
                .filter(|a| {
                    !columns_for(obj.object_type, a.restrict_object_type).iter().any(|c| {
                        c.perms.contains(&a.permission.unwrap_or(Permission::Read))
                            && c.perms.iter().all(|perm| {
                                acls.iter().any(|b| {
                                    b.permission == Some(*perm) && b.restrict_object_type == a.restrict_object_type
                                })
                            })
                    })
                })
                .map(|a| match a.restrict_object_type {
                    Some(t) => format!(
                        "{} ({}s only)",
                        a.permission.map(|p| p.to_string()).unwrap_or_default(),
                        t.as_str().replace('_', " ")
                    ),
                    None => a.permission.map(|p| p.to_string()).unwrap_or_default(),
                })
                .collect();
            summary.extend(other);
            let roles = acls
                .iter()
                .filter_map(|a| a.role_id)
                .map(|r| names.roles.get(&r).cloned().unwrap_or_else(|| r.to_string()))
                .collect();
            let expiries: BTreeSet<String> =
                acls.iter().filter_map(|a| a.expires_at.clone()).map(|t| super::short_time(&t)).collect();
            let expires = match (expiries.len(), acls.iter().all(|a| a.expires_at.is_some())) {
                (0, _) => "Never".to_owned(),
                (_, true) => expiries.into_iter().collect::<Vec<_>>().join(", "),
                (_, false) => format!("Some: {}", expiries.into_iter().collect::<Vec<_>>().join(", ")),
            };
            GrantRow { key: p.key(), label, kind, summary, roles, expires }
        })
        .collect();

    // The editor, for one principal.
    let editing = Principal::parse(if err.form == "grant" { err.value("grant", "principal") } else { &q.principal });
    let mut grid = Vec::new();
    let mut expires = String::new();
    if let Some(p) = editing {
        let mine: Vec<&&Acl> = by.get(&p).map(|v| v.iter().collect()).unwrap_or_default();
        let typed: Vec<&str> = if err.form == "grant" {
            err.values.get("cell").map(|s| s.lines().collect()).unwrap_or_default()
        } else {
            vec![]
        };
        for (restrict, label) in &scopes_ {
            let cells = COLUMNS
                .iter()
                .map(|c| {
                    let present = columns_for(obj.object_type, *restrict).iter().any(|x| x.key == c.key);
                    let name = format!("{}:{}", restrict.map(|t| t.as_str()).unwrap_or("self"), c.key);
                    let held = c.perms.iter().all(|perm| {
                        mine.iter().any(|a| a.permission == Some(*perm) && a.restrict_object_type == *restrict)
                    });
                    let checked = if err.form == "grant" { typed.contains(&name.as_str()) } else { held };
                    Cell { label: format!("{} {label}", c.label), name, checked, present }
                })
                .collect();
            grid.push(EditRow { label, cells });
        }
        expires = if err.form == "grant" { err.value("grant", "expires_at").to_owned() } else { String::new() };
    }
    let editing = editing.map(|p| (p.key(), names.principal(p)));

    // Principals matching the search, to edit (groups first, then people by name).
    let find = q.find.trim().to_owned();
    let mut matches = Vec::new();
    if !find.is_empty() {
        let needle = find.to_lowercase();
        for g in groups.iter().filter(|g| g.name.to_lowercase().contains(&needle)) {
            let p = Principal::Group(g.id);
            matches.push(Match { key: p.key(), label: g.name.clone(), kind: "Group", granted: by.contains_key(&p) });
        }
        let mut people: Vec<Match> = users
            .iter()
            .filter(|u| {
                super::members::name_of(u).to_lowercase().contains(&needle)
                    || u.email.as_deref().is_some_and(|e| e.to_lowercase().contains(&needle))
            })
            .map(|u| {
                let p = Principal::User(u.id);
                Match { key: p.key(), label: names.principal(p), kind: names.kind(p), granted: by.contains_key(&p) }
            })
            .collect();
        people.sort_by_key(|m| m.label.to_lowercase());
        matches.extend(people);
        matches.truncate(MATCHES);
    }

    // Who can: every holder of the permission, each with its sources from explain.
    let who_perm = if q.who.is_empty() { "read".to_owned() } else { q.who.clone() };
    let mut who = Vec::new();
    let mut who_more = 0;
    if can_read {
        if let Ok(perm) = who_perm.parse::<Permission>() {
            // Every holder, by name; the first ones are explained (each in memory).
            let mut ids = who_can(ctx, obj, perm).await?;
            ids.sort_by_cached_key(|id| names.principal(Principal::User(*id)).to_lowercase());
            who_more = ids.len().saturating_sub(WHO_PAGE);
            for id in ids.into_iter().take(WHO_PAGE) {
                let e = explain(ctx, obj, perm, id).await?;
                let sources = e
                    .grants
                    .iter()
                    .map(|g| {
                        (
                            names.source(obj, g),
                            g.expires_at.as_deref().map(super::short_time).unwrap_or_else(|| "Never".into()),
                        )
                    })
                    .collect();
                who.push(WhoRow { id, label: names.principal(Principal::User(id)), sources });
            }
        }
    }

    // The Explain panel.
    let explain_perm = if q.explain_perm.is_empty() { "read".to_owned() } else { q.explain_perm.clone() };
    let mut explained = None;
    // The user asked about: an id (the who-can rows link one) or an email address.
    let mut explain_error = String::new();
    let asked = q.explain_user.trim();
    let explain_who = match Uuid::parse_str(asked) {
        Ok(id) => Some(id),
        Err(_) if asked.is_empty() => None,
        Err(_) => {
            let hit = users.iter().find(|u| u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(asked)));
            if hit.is_none() {
                explain_error = format!("no member of this organization has the email address `{asked}`");
            }
            hit.map(|u| u.id)
        }
    };
    let explain_user = match explain_who.and_then(|id| users.iter().find(|u| u.id == id)) {
        Some(u) => u.email.clone().filter(|_| !super::members::is_service(u)).unwrap_or_else(|| u.id.to_string()),
        None => asked.to_owned(),
    };
    if let (Some(uid), Ok(perm)) = (explain_who, explain_perm.parse::<Permission>()) {
        match explain(ctx, obj, perm, uid).await {
            Ok(e) => {
                let grants = e
                    .grants
                    .iter()
                    .map(|g| {
                        (
                            names.source(obj, g),
                            g.expires_at.as_deref().map(super::short_time).unwrap_or_else(|| "Never".into()),
                        )
                    })
                    .collect();
                let misses = e
                    .near_misses
                    .iter()
                    .map(|m| match (&m.expired_at, m.restricted_to) {
                        (Some(at), _) => format!("a grant expired at {}", super::short_time(at)),
                        (_, Some(t)) => format!("a grant applies only to {}s", t.as_str().replace('_', " ")),
                        _ => m.reason.clone(),
                    })
                    .collect();
                explained = Some((e.allowed, names.principal(Principal::User(uid)), grants, misses));
            }
            Err(e) => explained = Some((false, e.to_string(), vec![], vec![])),
        }
    }
    let status = if err.message.is_empty() { StatusCode::OK } else { FormError::status_of(&err) };
    let p = AccessPage {
        heading: view.heading.clone(),
        intro: view.intro,
        crumbs: view.crumbs,
        tabs: view.tabs,
        action: view.action,
        csrf: &ctx.csrf,
        can_read,
        can_edit,
        rows,
        total,
        pager,
        pager_label: "Pages of principals granted here",
        headers: COLUMNS.iter().map(|c| c.label).collect(),
        find,
        matches,
        editing,
        grid,
        expires,
        err,
        who_perm,
        who,
        who_more,
        explain_user,
        explain_error,
        explain_perm,
        explained,
        perms: Permission::ALL.iter().map(|p| p.as_str()).collect(),
    };
    ctx.page_status(status, &view.heading, view.nav, p, q.notice)
}

/// `GET /v1/acl/who_can`, every page.
async fn who_can(ctx: &Ctx, obj: ObjectRef, perm: Permission) -> Result<Vec<Uuid>, Fail> {
    let (t, id, p) = (obj.object_type.as_str(), obj.object_id.to_string(), perm.as_str());
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let mut page = vec![("limit", "1000")];
        if !cursor.is_empty() {
            page.push(("cursor", &cursor));
        }
        let r = acl::who_can(
            ctx.caller.clone(),
            query(&[("object_type", t), ("object_id", &id)])?,
            query(&[("permission", p)])?,
            query(&page)?,
        )
        .await?
        .0;
        out.extend(r.ids);
        match r.next_cursor {
            Some(c) => cursor = c.to_string(),
            None => return Ok(out),
        }
    }
}

/// `GET /v1/acl/explain` about `user`.
pub async fn explain(ctx: &Ctx, obj: ObjectRef, perm: Permission, user: Uuid) -> Result<Explanation, ApiError> {
    let (t, id, p, u) = (obj.object_type.as_str(), obj.object_id.to_string(), perm.as_str(), user.to_string());
    Ok(acl::explain(
        ctx.caller.clone(),
        q(&[("object_type", t), ("object_id", &id)])?,
        q(&[("permission", p)])?,
        q(&[("user_id", &u)])?,
    )
    .await?
    .0)
}

/// A `datetime-local` value (UTC) as RFC 3339, or `None` when empty.
pub fn expiry(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Some(match s.len() {
        16 => format!("{s}:00Z"),
        19 => format!("{s}Z"),
        _ => s.to_owned(),
    })
}

/// Saves one principal's grid: the rows the checkboxes stand for are added, the
/// unchecked ones removed, in one `POST /v1/acl/batch_update` (all or nothing).
/// With an expiry, every checked row is granted again with it.
pub async fn save(ctx: &Ctx, view: AccessView, form: Vec<(String, String)>) -> Page {
    let obj = view.obj;
    let refused = |e: &ApiError| FormError::new("grant", e, &["principal", "expires_at"], super::fields(&form));
    let Some(p) = Principal::parse(one(&form, "principal")) else {
        let e = ApiError::invalid_body("`principal`: choose a group, user or service account");
        return render(ctx, view, AccessQuery::default(), refused(&e)).await;
    };
    let expires = expiry(one(&form, "expires_at"));
    let checked: BTreeSet<&str> = all(&form, "cell").into_iter().collect();
    let current = match grants_of(ctx, obj, p).await {
        Ok(g) => g,
        Err(e) => return render(ctx, view, AccessQuery::default(), refused(&e)).await,
    };
    let mine: Vec<&Acl> = current.iter().filter(|a| Principal::of(a) == Some(p) && a.permission.is_some()).collect();
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for (restrict, _) in scopes(obj.object_type) {
        for c in columns_for(obj.object_type, restrict) {
            let name = format!("{}:{}", restrict.map(|t| t.as_str()).unwrap_or("self"), c.key);
            let want = checked.contains(name.as_str());
            for perm in c.perms {
                let row = mine.iter().find(|a| a.permission == Some(*perm) && a.restrict_object_type == restrict);
                let mut item = json!({"object_type": obj.object_type, "object_id": obj.object_id, "permission": perm, "restrict_object_type": restrict});
                if let (Some(a), Some(b)) = (item.as_object_mut(), p.fields().as_object()) {
                    a.extend(b.clone());
                }
                match (want, row) {
                    (true, None) => {
                        item["expires_at"] = json!(expires);
                        add.push(item);
                    }
                    (true, Some(r)) if expires.is_some() && r.expires_at != expires => {
                        remove.push(item.clone());
                        item["expires_at"] = json!(expires);
                        add.push(item);
                    }
                    (false, Some(_)) => remove.push(item),
                    _ => {}
                }
            }
        }
    }
    let b = body(json!({"add_acls": add, "remove_acls": remove}))?;
    match acl::batch_update(ctx.caller.clone(), b).await {
        Ok(_) => Ok(super::see_other(&format!("{}?notice=Permissions%20saved", view.action))),
        Err(e) => render(ctx, view, AccessQuery::default(), refused(&e)).await,
    }
}

impl FormError {
    /// The status for a refusal already turned into a form error.
    pub fn status_of(err: &FormError) -> StatusCode {
        if err.message.contains("lack") || err.message.contains("may not") {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        }
    }
}
