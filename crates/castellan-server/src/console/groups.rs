//! Settings → Permission groups and Roles. A group's Permissions dialog maps the
//! console's words to the ACL rows of DESIGN §2 and is checked from the group's real
//! rows; saving is one `POST /v1/acl/batch_update`. Groups and roles are created,
//! changed and deleted through `/v1/group` and `/v1/role`'s handlers.

use super::grants::{self, AccessQuery, AccessView};
use super::members::{is_builtin, load_groups, name_of};
use super::{
    all, body, fields, one, q, query, see_other, Ctx, Fail, FormError, ListQuery, Notice, Page, Pager, Session,
    PAGE_SIZE,
};
use crate::error::ApiError;
use crate::routes::{acl, group, role, user};
use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use castellan_api_types::{Acl, Group, Role};
use castellan_core::{GroupId, ObjectRef, ObjectType, Permission, RoleId};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

pub(super) fn routes() -> Router<crate::state::App> {
    Router::new()
        .route("/o/{org}/settings/groups", get(list_page).post(create))
        .route("/o/{org}/settings/groups/{id}", get(permissions_page).post(save_permissions))
        .route("/o/{org}/settings/groups/{id}/delete", post(delete))
        .route("/o/{org}/settings/groups/{id}/members", get(members_page).post(save_members))
        .route("/o/{org}/settings/groups/{id}/access", get(access_page).post(save_access))
        .route("/o/{org}/settings/roles", get(roles_page).post(create_role))
        .route("/o/{org}/settings/roles/{id}", get(role_page).post(save_role))
        .route("/o/{org}/settings/roles/{id}/delete", post(delete_role))
}

/// Every role the caller may read (`GET /v1/role`): system roles and the org's.
pub(super) async fn load_roles(ctx: &Ctx) -> Result<Vec<Role>, Fail> {
    let mut out = role::list(
        ctx.caller.clone(),
        query(&[("limit", "1000")])?,
        query(&[])?,
        query(&[("org_name", ctx.org_name())])?,
    )
    .await?
    .0
    .objects;
    out.sort_by_key(|r| (r.org_id.is_some(), r.name.to_lowercase()));
    Ok(out)
}

struct GroupRow {
    id: Uuid,
    name: String,
    description: String,
    builtin: bool,
    users: usize,
    groups: usize,
    can_delete: bool,
    error: String,
}

#[derive(Template)]
#[template(path = "console/groups.html")]
struct GroupsPage<'a> {
    base: String,
    csrf: &'a str,
    rows: Vec<GroupRow>,
    can_create: bool,
    err: FormError,
    q: String,
    pager: Pager,
    pager_label: &'static str,
}

fn group_ref(id: Uuid) -> ObjectRef {
    ObjectRef::new(ObjectType::Group, id)
}

async fn list_render(ctx: &Ctx, lq: &ListQuery, err: FormError, notice: Option<String>) -> Page {
    // One page of the groups the caller may read (`GET /v1/group`, newest first).
    let page = lq.api_page();
    let page: Vec<(&str, &str)> = page.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let groups = group::list(
        ctx.caller.clone(),
        query(&page)?,
        query(&[("search", lq.search())])?,
        query(&[("org_name", ctx.org_name())])?,
    )
    .await?
    .0
    .objects;
    let base = ctx.base();
    let (groups, pager) = lq.cut(groups, |g| g.id.to_string(), |q| format!("{base}/settings/groups?{q}"));
    let rows = groups
        .iter()
        .map(|g| GroupRow {
            id: g.id,
            name: g.name.clone(),
            description: g.description.clone().unwrap_or_default(),
            builtin: is_builtin(&g.name),
            users: g.member_users.as_ref().map(Vec::len).unwrap_or(0),
            groups: g.member_groups.as_ref().map(Vec::len).unwrap_or(0),
            can_delete: ctx.can(Permission::Delete, group_ref(g.id)),
            error: if err.form == format!("delete-{}", g.id) { err.message.clone() } else { String::new() },
        })
        .collect();
    let status = if err.message.is_empty() { StatusCode::OK } else { FormError::status_of(&err) };
    let p = GroupsPage {
        base: ctx.base(),
        csrf: &ctx.csrf,
        rows,
        can_create: ctx.caller.can(Permission::Create, ctx.org_ref()) || can_create_in(ctx, ObjectType::Group),
        err,
        q: lq.search().to_owned(),
        pager,
        pager_label: "Pages of permission groups",
    };
    ctx.page_status(status, "Permission groups", "settings/groups", p, notice)
}

/// Whether the engine lets the caller create a `child` in the organization.
fn can_create_in(ctx: &Ctx, child: ObjectType) -> bool {
    let snap = ctx.caller.state().index().snapshot();
    snap.can_create(ctx.caller.user.id.0, child, ctx.org_ref(), ctx.caller.state().now())
}

async fn list_page(
    session: Session,
    Path(org): Path<String>,
    q: axum::extract::Query<Notice>,
    lq: axum::extract::Query<ListQuery>,
) -> Page {
    let ctx = session.org(&org).await?;
    list_render(&ctx, &lq.0, FormError::default(), q.0.take()).await
}

/// Whether a group of this name (ignoring case) exists: the groups whose name
/// contains it, one query (`GET /v1/group?search=`).
async fn name_taken(ctx: &Ctx, name: &str) -> Result<bool, Fail> {
    let found = group::list(
        ctx.caller.clone(),
        query(&[("limit", "1000")])?,
        query(&[("search", name)])?,
        query(&[("org_name", ctx.org_name())])?,
    )
    .await?
    .0
    .objects;
    Ok(!name.is_empty() && found.iter().any(|g| g.name.eq_ignore_ascii_case(name)))
}

/// Creates a group (`POST /v1/group`); a name already taken is refused rather than
/// returning the existing group, as a console user means a new one.
async fn create(session: Session, Path(org): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Page {
    let ctx = session.org(&org).await?;
    let name = one(&form, "name").trim().to_owned();
    let description = Some(one(&form, "description").trim().to_owned()).filter(|s| !s.is_empty());
    let refused = |e: &ApiError| FormError::new("create", e, &["name", "description"], fields(&form));
    if name_taken(&ctx, &name).await? {
        let e = ApiError::invalid_body(format!("`name`: a group named `{name}` already exists"));
        return list_render(&ctx, &ListQuery::default(), refused(&e), None).await;
    }
    let b = body(json!({"name": name, "description": description, "org_name": ctx.org_name()}))?;
    match group::create(ctx.caller.clone(), b).await {
        Ok(w) => Ok(see_other(&format!("{}/settings/groups/{}?notice=Group%20created", ctx.base(), w.body.id))),
        Err(e) => list_render(&ctx, &ListQuery::default(), refused(&e), None).await,
    }
}

/// Deletes a group (`DELETE /v1/group/{id}`; built-ins are refused by the API).
async fn delete(session: Session, Path((org, id)): Path<(String, Uuid)>) -> Page {
    let ctx = session.org(&org).await?;
    match group::remove(ctx.caller.clone(), crate::extract::Path(GroupId(id))).await {
        Ok(_) => Ok(see_other(&format!("{}/settings/groups?notice=Group%20deleted", ctx.base()))),
        Err(e) => {
            let err = FormError::new(&format!("delete-{id}"), &e, &[], HashMap::new());
            list_render(&ctx, &ListQuery::default(), err, None).await
        }
    }
}

/// A word of the Permissions dialog and the ACL rows it stands for (DESIGN §2).
struct Word {
    key: &'static str,
    label: &'static str,
    rows: &'static [(ObjectType, Permission, Option<ObjectType>)],
}

use ObjectType as T;
use Permission as P;

const ORG_WORDS: [Word; 5] = [
    Word {
        key: "manage_settings",
        label: "Manage settings",
        rows: &[(T::Organization, P::Update, Some(T::Organization))],
    },
    Word { key: "manage_members", label: "Manage members", rows: &[(T::OrgMember, P::Create, None)] },
    Word { key: "remove_members", label: "Remove members", rows: &[(T::OrgMember, P::Delete, None)] },
    Word {
        key: "manage_access",
        label: "Manage access",
        rows: &[
            (T::Organization, P::CreateAcls, None),
            (T::Organization, P::ReadAcls, None),
            (T::Organization, P::UpdateAcls, None),
            (T::Organization, P::DeleteAcls, None),
        ],
    },
    Word { key: "read_audit_logs", label: "Read audit logs", rows: &[(T::OrgAuditLogs, P::Read, None)] },
];

const PROJECT_WORDS: [Word; 5] = [
    Word { key: "projects_read", label: "Read", rows: &[(T::OrgProject, P::Read, None)] },
    Word { key: "projects_create", label: "Create", rows: &[(T::OrgProject, P::Create, None)] },
    Word { key: "projects_update", label: "Update", rows: &[(T::OrgProject, P::Update, None)] },
    Word { key: "projects_delete", label: "Delete", rows: &[(T::OrgProject, P::Delete, None)] },
    Word {
        key: "projects_manage",
        label: "Manage access",
        rows: &[
            (T::OrgProject, P::CreateAcls, None),
            (T::OrgProject, P::ReadAcls, None),
            (T::OrgProject, P::UpdateAcls, None),
            (T::OrgProject, P::DeleteAcls, None),
        ],
    },
];

/// The group's grants on the org-level objects (`GET /v1/acl/list_org`, needs
/// `read_acls` on the organization).
async fn group_grants(ctx: &Ctx, id: Uuid) -> Result<Vec<Acl>, ApiError> {
    let g = id.to_string();
    Ok(acl::list_org(
        ctx.caller.clone(),
        q(&[("org_name", ctx.org_name())])?,
        q(&[])?,
        q(&[("group_id", &g)])?,
        q(&[("limit", "1000")])?,
    )
    .await?
    .0)
}

/// When the group's rows for a word expire: the soonest of them, "" when none does.
fn expiry_of(grants: &[Acl], org: Uuid, w: &Word) -> String {
    w.rows
        .iter()
        .filter_map(|(t, p, r)| {
            grants.iter().find(|a| {
                a.object_type == *t && a.object_id == org && a.permission == Some(*p) && a.restrict_object_type == *r
            })
        })
        .filter_map(|a| a.expires_at.clone())
        .min()
        .map(|t| super::short_time(&t))
        .unwrap_or_default()
}

fn holds(grants: &[Acl], org: Uuid, w: &Word) -> bool {
    w.rows.iter().all(|(t, p, r)| {
        grants.iter().any(|a| {
            a.object_type == *t && a.object_id == org && a.permission == Some(*p) && a.restrict_object_type == *r
        })
    })
}

struct Check {
    key: &'static str,
    label: &'static str,
    checked: bool,
    /// When the group's grants of this word expire ("" for never).
    expires: String,
}

#[derive(Template)]
#[template(path = "console/group.html")]
struct GroupPermsPage<'a> {
    base: String,
    csrf: &'a str,
    group: Group,
    tab: &'a str,
    builtin: bool,
    can_read: bool,
    can_edit: bool,
    org_words: Vec<Check>,
    project_words: Vec<Check>,
    other: Vec<String>,
    projects: Vec<(Uuid, String)>,
    err: String,
    /// What was typed in the expiry, and a refusal about it.
    expires: String,
    expires_err: String,
    // members tab
    users: Vec<(Uuid, String)>,
    found: Vec<(Uuid, String)>,
    q: String,
    can_list: bool,
    pager: Pager,
    pager_label: &'static str,
    subgroups: Vec<(Uuid, String, bool)>,
    can_update: bool,
}

/// The members of the organization with these ids the caller may list, in one query
/// per thousand (`GET /v1/user?ids=`).
async fn users_by_id(ctx: &Ctx, ids: &BTreeSet<Uuid>) -> Result<Vec<castellan_api_types::User>, Fail> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(1000) {
        let f: Vec<(&str, &str)> = chunk.iter().map(|i| ("ids", i.as_str())).collect();
        out.extend(
            user::list(
                ctx.caller.clone(),
                query(&[("limit", "1000")])?,
                query(&f)?,
                query(&[("org_name", ctx.org_name())])?,
            )
            .await?
            .0
            .objects,
        );
    }
    Ok(out)
}

async fn load_group(ctx: &Ctx, id: Uuid) -> Result<Group, Fail> {
    Ok(group::retrieve(ctx.caller.clone(), crate::extract::Path(GroupId(id))).await?.0)
}

async fn group_render(
    ctx: &Ctx,
    id: Uuid,
    tab: &str,
    lq: &ListQuery,
    err: String,
    typed: Option<Typed>,
    notice: Option<String>,
) -> Page {
    let g = load_group(ctx, id).await?;
    let org = ctx.org.id.0;
    let can_read = ctx.can(Permission::ReadAcls, ctx.org_ref());
    let can_edit = ctx.can(Permission::CreateAcls, ctx.org_ref()) && ctx.can(Permission::DeleteAcls, ctx.org_ref());
    let grants = if can_read && tab == "permissions" { group_grants(ctx, id).await? } else { vec![] };
    let check = |w: &Word| Check {
        key: w.key,
        label: w.label,
        checked: match &typed {
            Some(t) => t.words.contains(w.key),
            None => holds(&grants, org, w),
        },
        expires: expiry_of(&grants, org, w),
    };
    let org_words = ORG_WORDS.iter().map(check).collect();
    let project_words = PROJECT_WORDS.iter().map(check).collect();
    let roles: HashMap<Uuid, String> = if tab == "permissions" {
        load_roles(ctx).await?.into_iter().map(|r| (r.id, r.name)).collect()
    } else {
        HashMap::new()
    };
    let covered = |a: &Acl| {
        ORG_WORDS.iter().chain(PROJECT_WORDS.iter()).any(|w| {
            w.rows.iter().any(|(t, p, r)| {
                a.object_type == *t && a.object_id == org && a.permission == Some(*p) && a.restrict_object_type == *r
            })
        })
    };
    let other = grants
        .iter()
        .filter(|a| !covered(a))
        .map(|a| {
            let what = match (a.permission, a.role_id) {
                (Some(p), _) => p.to_string(),
                (None, Some(r)) => format!("role {}", roles.get(&r).cloned().unwrap_or_else(|| r.to_string())),
                _ => String::new(),
            };
            let only =
                a.restrict_object_type.map(|t| format!(" ({} only)", t.as_str().replace('_', " "))).unwrap_or_default();
            let exp =
                a.expires_at.as_deref().map(|t| format!(", expires {}", super::short_time(t))).unwrap_or_default();
            format!(
                "{what}{only} on {} {}{exp}",
                a.object_type.as_str().replace('_', " "),
                if a.object_id == org { "" } else { "(a project or object)" }
            )
        })
        .collect();
    let mut users = Vec::new();
    let mut found = Vec::new();
    let mut subgroups = Vec::new();
    let mut pager = Pager::default();
    let can_list = ctx.can(Permission::Read, ctx.noun(ObjectType::OrgMember));
    if tab == "members" {
        let mine: BTreeSet<Uuid> = g.member_users.iter().flatten().copied().collect();
        let sub: BTreeSet<Uuid> = g.member_groups.iter().flatten().copied().collect();
        if can_list {
            // The group's members by name, a page at a time; people to add by search.
            let mut members: Vec<(Uuid, String)> =
                users_by_id(ctx, &mine).await?.iter().map(|u| (u.id, name_of(u))).collect();
            members.sort_by_key(|(_, n)| n.to_lowercase());
            let at = lq.page.max(1);
            let base = format!("{}/settings/groups/{id}/members", ctx.base());
            let link = |p: usize| format!("{base}?{}", super::qs(&[("page", &p.to_string()), ("q", lq.search())]));
            pager.prev = (at > 1).then(|| link(at - 1));
            pager.next = (members.len() > at * PAGE_SIZE).then(|| link(at + 1));
            users = members.into_iter().skip((at - 1) * PAGE_SIZE).take(PAGE_SIZE).collect();
            if !lq.search().is_empty() {
                let hits = user::list(
                    ctx.caller.clone(),
                    query(&[("limit", "50")])?,
                    query(&[("search", lq.search())])?,
                    query(&[("org_name", ctx.org_name())])?,
                )
                .await?
                .0
                .objects;
                found = hits.iter().filter(|u| !mine.contains(&u.id)).map(|u| (u.id, name_of(u))).collect();
            }
        }
        subgroups = load_groups(ctx)
            .await?
            .into_iter()
            .filter(|x| x.id != id)
            .map(|x| (x.id, x.name, sub.contains(&x.id)))
            .collect();
    }
    let projects = if tab == "permissions" {
        super::projects::load_projects(ctx).await?.into_iter().map(|p| (p.id, p.name)).collect()
    } else {
        vec![]
    };
    let status = if err.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let title = g.name.clone();
    // A refusal of the expiry is shown next to it.
    let (err, expires_err) = if err.contains("`expires_at`") { (String::new(), err) } else { (err, String::new()) };
    let expires = typed.as_ref().map(|t| t.expires.clone()).unwrap_or_default();
    let p = GroupPermsPage {
        base: ctx.base(),
        csrf: &ctx.csrf,
        builtin: is_builtin(&g.name),
        can_update: ctx.can(Permission::Update, group_ref(id)),
        group: g,
        tab,
        can_read,
        can_edit,
        org_words,
        project_words,
        other,
        projects,
        err,
        expires,
        expires_err,
        users,
        found,
        q: lq.search().to_owned(),
        can_list,
        pager,
        pager_label: "Pages of this group's members",
        subgroups,
    };
    ctx.page_status(status, &title, "settings/groups", p, notice)
}

async fn permissions_page(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    q: axum::extract::Query<Notice>,
) -> Page {
    let ctx = session.org(&org).await?;
    group_render(&ctx, id, "permissions", &ListQuery::default(), String::new(), None, q.0.take()).await
}

/// Saves the Permissions dialog: the rows of checked words are added, those of
/// unchecked words removed, in one batch.
async fn save_permissions(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let typed = Typed {
        words: all(&form, "perm").into_iter().map(str::to_owned).collect(),
        expires: one(&form, "expires_at").trim().to_owned(),
    };
    let lq = ListQuery::default();
    let current = match group_grants(&ctx, id).await {
        Ok(g) => g,
        Err(e) => return group_render(&ctx, id, "permissions", &lq, e.to_string(), Some(typed), None).await,
    };
    let expires = super::grants::expiry(&typed.expires);
    let org_id = ctx.org.id.0;
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    for w in ORG_WORDS.iter().chain(PROJECT_WORDS.iter()) {
        let want = typed.words.contains(w.key);
        for (t, p, r) in w.rows {
            let row = current.iter().find(|a| {
                a.object_type == *t && a.permission == Some(*p) && a.restrict_object_type == *r && a.object_id == org_id
            });
            let mut item = json!({"object_type": t, "object_id": org_id, "group_id": id, "permission": p, "restrict_object_type": r});
            match (want, row) {
                (true, None) => {
                    item["expires_at"] = json!(expires);
                    add.push(item);
                }
                // With an expiry, a row held already is granted again with it.
                (true, Some(a)) if expires.is_some() && a.expires_at != expires => {
                    remove.push(item.clone());
                    item["expires_at"] = json!(expires);
                    add.push(item);
                }
                (false, Some(_)) => remove.push(item),
                _ => {}
            }
        }
    }
    let b = body(json!({"add_acls": add, "remove_acls": remove}))?;
    match acl::batch_update(ctx.caller.clone(), b).await {
        Ok(_) => Ok(see_other(&format!("{}/settings/groups/{id}?notice=Permissions%20saved", ctx.base()))),
        Err(e) => group_render(&ctx, id, "permissions", &lq, e.to_string(), Some(typed), None).await,
    }
}

/// What was typed in the Permissions dialog: the words checked and the expiry.
struct Typed {
    words: BTreeSet<String>,
    expires: String,
}

async fn members_page(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    q: axum::extract::Query<Notice>,
    lq: axum::extract::Query<ListQuery>,
) -> Page {
    let ctx = session.org(&org).await?;
    group_render(&ctx, id, "members", &lq.0, String::new(), None, q.0.take()).await
}

/// Sets the group's members (users and nested groups) in one `PATCH /v1/group/{id}`.
async fn save_members(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let g = load_group(&ctx, id).await?;
    let want_users: BTreeSet<Uuid> = all(&form, "user").iter().filter_map(|s| Uuid::parse_str(s).ok()).collect();
    let want_groups: BTreeSet<Uuid> = all(&form, "subgroup").iter().filter_map(|s| Uuid::parse_str(s).ok()).collect();
    let have_users: BTreeSet<Uuid> = g.member_users.iter().flatten().copied().collect();
    let have_groups: BTreeSet<Uuid> = g.member_groups.iter().flatten().copied().collect();
    // Only the users the form listed (a page of members, the search's matches) may
    // leave; the others are kept as they are.
    let listed: BTreeSet<Uuid> = all(&form, "listed").iter().filter_map(|s| Uuid::parse_str(s).ok()).collect();
    let patch = json!({
        "add_member_users": want_users.difference(&have_users).filter(|u| listed.contains(u)).collect::<Vec<_>>(),
        "remove_member_users": have_users.difference(&want_users).filter(|u| listed.contains(u)).collect::<Vec<_>>(),
        "add_member_groups": want_groups.difference(&have_groups).collect::<Vec<_>>(),
        "remove_member_groups": have_groups.difference(&want_groups).collect::<Vec<_>>(),
    });
    match group::update(ctx.caller.clone(), crate::extract::Path(GroupId(id)), body(patch)?).await {
        Ok(_) => Ok(see_other(&format!("{}/settings/groups/{id}/members?notice=Members%20saved", ctx.base()))),
        Err(e) => group_render(&ctx, id, "members", &ListQuery::default(), e.to_string(), None, None).await,
    }
}

fn access_view(ctx: &Ctx, g: &Group) -> AccessView {
    let base = format!("{}/settings/groups/{}", ctx.base(), g.id);
    AccessView {
        obj: group_ref(g.id),
        heading: g.name.clone(),
        intro: "Who may view this group, change it, delete it, or manage access to it.",
        crumbs: vec![(format!("{}/settings/groups", ctx.base()), "Permission groups".into())],
        tabs: group_tabs(&base, "access"),
        action: format!("{base}/access"),
        nav: "settings/groups",
    }
}

fn group_tabs(base: &str, cur: &str) -> Vec<(String, String, bool)> {
    vec![
        (base.to_owned(), "Permissions".into(), cur == "permissions"),
        (format!("{base}/members"), "Members".into(), cur == "members"),
        (format!("{base}/access"), "Group access".into(), cur == "access"),
    ]
}

async fn access_page(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    q: axum::extract::Query<AccessQuery>,
) -> Page {
    let ctx = session.org(&org).await?;
    let g = load_group(&ctx, id).await?;
    grants::render(&ctx, access_view(&ctx, &g), q.0, FormError::default()).await
}

async fn save_access(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let g = load_group(&ctx, id).await?;
    grants::save(&ctx, access_view(&ctx, &g), form).await
}

// ---- Roles ----

struct RoleRow {
    id: Uuid,
    name: String,
    description: String,
    system: bool,
    perms: Vec<String>,
    inherits: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/roles.html")]
struct RolesPage<'a> {
    base: String,
    csrf: &'a str,
    rows: Vec<RoleRow>,
    can_create: bool,
    err: FormError,
}

fn perm_label(p: Permission, r: Option<ObjectType>) -> String {
    match r {
        Some(t) => format!("{p} ({})", t.as_str().replace('_', " ")),
        None => p.to_string(),
    }
}

async fn roles_render(ctx: &Ctx, err: FormError, notice: Option<String>) -> Page {
    let roles = load_roles(ctx).await?;
    let names: HashMap<Uuid, String> = roles.iter().map(|r| (r.id, r.name.clone())).collect();
    let rows = roles
        .iter()
        .map(|r| RoleRow {
            id: r.id,
            name: r.name.clone(),
            description: r.description.clone().unwrap_or_default(),
            system: r.org_id.is_none(),
            perms: r
                .member_permissions
                .iter()
                .flatten()
                .map(|m| perm_label(m.permission, m.restrict_object_type))
                .collect(),
            inherits: r
                .member_roles
                .iter()
                .flatten()
                .map(|x| names.get(x).cloned().unwrap_or_else(|| x.to_string()))
                .collect(),
        })
        .collect();
    let status = if err.message.is_empty() { StatusCode::OK } else { FormError::status_of(&err) };
    let p =
        RolesPage { base: ctx.base(), csrf: &ctx.csrf, rows, can_create: can_create_in(ctx, ObjectType::Role), err };
    ctx.page_status(status, "Roles", "settings/roles", p, notice)
}

async fn roles_page(session: Session, Path(org): Path<String>, q: axum::extract::Query<Notice>) -> Page {
    let ctx = session.org(&org).await?;
    roles_render(&ctx, FormError::default(), q.0.take()).await
}

async fn create_role(session: Session, Path(org): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Page {
    let ctx = session.org(&org).await?;
    let name = one(&form, "name").trim().to_owned();
    let description = Some(one(&form, "description").trim().to_owned()).filter(|s| !s.is_empty());
    let refused = |e: &ApiError| FormError::new("create", e, &["name", "description"], fields(&form));
    if load_roles(&ctx).await?.iter().any(|r| r.name.eq_ignore_ascii_case(&name) && r.org_id.is_some()) {
        let e = ApiError::invalid_body(format!("`name`: a role named `{name}` already exists"));
        return roles_render(&ctx, refused(&e), None).await;
    }
    let b =
        body(json!({"name": name, "description": description, "org_name": ctx.org_name(), "member_permissions": []}))?;
    match role::create(ctx.caller.clone(), b).await {
        Ok(w) => Ok(see_other(&format!("{}/settings/roles/{}?notice=Role%20created", ctx.base(), w.body.id))),
        Err(e) => roles_render(&ctx, refused(&e), None).await,
    }
}

async fn delete_role(session: Session, Path((org, id)): Path<(String, Uuid)>) -> Page {
    let ctx = session.org(&org).await?;
    match role::remove(ctx.caller.clone(), crate::extract::Path(RoleId(id))).await {
        Ok(_) => Ok(see_other(&format!("{}/settings/roles?notice=Role%20deleted", ctx.base()))),
        Err(e) => role_render(&ctx, id, e.to_string(), None).await,
    }
}

/// The rows of the role editor: any object type, then each type a grant may be
/// restricted to.
const ROLE_SCOPES: [(Option<ObjectType>, &str); 10] = [
    (None, "Any object"),
    (Some(T::Organization), "Organization"),
    (Some(T::OrgMember), "Members"),
    (Some(T::Group), "Groups"),
    (Some(T::Role), "Roles"),
    (Some(T::Project), "Projects"),
    (Some(T::Experiment), "Experiments"),
    (Some(T::Dataset), "Datasets"),
    (Some(T::Prompt), "Prompts"),
    (Some(T::ProjectLog), "Logs"),
];

#[derive(Template)]
#[template(path = "console/role.html")]
struct RolePage<'a> {
    base: String,
    csrf: &'a str,
    role: Role,
    editable: bool,
    can_delete: bool,
    perms: Vec<&'static str>,
    grid: Vec<(&'static str, Vec<(String, bool)>)>,
    others: Vec<(Uuid, String, bool)>,
    err: String,
}

async fn role_render(ctx: &Ctx, id: Uuid, err: String, notice: Option<String>) -> Page {
    let r = role::retrieve(ctx.caller.clone(), crate::extract::Path(RoleId(id))).await?.0;
    let held: BTreeSet<(Permission, Option<ObjectType>)> =
        r.member_permissions.iter().flatten().map(|m| (m.permission, m.restrict_object_type)).collect();
    let grid = ROLE_SCOPES
        .iter()
        .map(|(scope, label)| {
            let cells = Permission::ALL
                .iter()
                .map(|p| {
                    (
                        format!("{}:{}", p.as_str(), scope.map(|t| t.as_str()).unwrap_or("any")),
                        held.contains(&(*p, *scope)),
                    )
                })
                .collect();
            (*label, cells)
        })
        .collect();
    let inherited: BTreeSet<Uuid> = r.member_roles.iter().flatten().copied().collect();
    let others = load_roles(ctx)
        .await?
        .into_iter()
        .filter(|x| x.id != id)
        .map(|x| (x.id, x.name, inherited.contains(&x.id)))
        .collect();
    let obj = ObjectRef::new(ObjectType::Role, id);
    let editable = r.org_id.is_some() && ctx.can(Permission::Update, obj);
    let status = if err.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let title = r.name.clone();
    let p = RolePage {
        base: ctx.base(),
        csrf: &ctx.csrf,
        can_delete: r.org_id.is_some() && ctx.can(Permission::Delete, obj),
        role: r,
        editable,
        perms: Permission::ALL.iter().map(|p| p.as_str()).collect(),
        grid,
        others,
        err,
    };
    ctx.page_status(status, &title, "settings/roles", p, notice)
}

async fn role_page(session: Session, Path((org, id)): Path<(String, Uuid)>, q: axum::extract::Query<Notice>) -> Page {
    let ctx = session.org(&org).await?;
    role_render(&ctx, id, String::new(), q.0.take()).await
}

/// Saves a role's permissions and inherited roles (`PATCH /v1/role/{id}`).
async fn save_role(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let r = role::retrieve(ctx.caller.clone(), crate::extract::Path(RoleId(id))).await?.0;
    let mut want = BTreeSet::new();
    for cell in all(&form, "perm") {
        let Some((p, s)) = cell.split_once(':') else { continue };
        let Ok(p) = p.parse::<Permission>() else { continue };
        let scope = if s == "any" { None } else { s.parse::<ObjectType>().ok() };
        want.insert((p, scope));
    }
    let have: BTreeSet<(Permission, Option<ObjectType>)> =
        r.member_permissions.iter().flatten().map(|m| (m.permission, m.restrict_object_type)).collect();
    let mp = |s: &BTreeSet<(Permission, Option<ObjectType>)>| -> Vec<serde_json::Value> {
        s.iter().map(|(p, t)| json!({"permission": p, "restrict_object_type": t})).collect()
    };
    let want_roles: BTreeSet<Uuid> = all(&form, "inherit").iter().filter_map(|s| Uuid::parse_str(s).ok()).collect();
    let have_roles: BTreeSet<Uuid> = r.member_roles.iter().flatten().copied().collect();
    let description = one(&form, "description").trim().to_owned();
    let patch = json!({
        "description": description,
        "add_member_permissions": mp(&want.difference(&have).copied().collect()),
        "remove_member_permissions": mp(&have.difference(&want).copied().collect()),
        "add_member_roles": want_roles.difference(&have_roles).collect::<Vec<_>>(),
        "remove_member_roles": have_roles.difference(&want_roles).collect::<Vec<_>>(),
    });
    match role::update(ctx.caller.clone(), crate::extract::Path(RoleId(id)), body(patch)?).await {
        Ok(_) => Ok(see_other(&format!("{}/settings/roles/{id}?notice=Role%20saved", ctx.base()))),
        Err(e) => role_render(&ctx, id, e.to_string(), None).await,
    }
}
