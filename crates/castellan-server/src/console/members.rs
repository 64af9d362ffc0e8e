//! Settings → Members: the members with their groups, invitations, removal, group
//! changes, and an owner's "view as". Every action is `PATCH /v1/organization/members`
//! or `PATCH /v1/group/{id}`, called as the API calls them.

use super::filters;
use super::{
    all, body, enc, fields, one, query, see_other, Ctx, Fail, FormError, ListQuery, Notice, Page, Pager, Session,
};
use crate::error::ApiError;
use crate::routes::{group, members, user};
use askama::Template;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::{Form, Router};
use castellan_api_types::{Group, User};
use castellan_core::{GroupId, ObjectType, Permission};
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

pub(super) fn routes() -> Router<crate::state::App> {
    Router::new()
        .route("/o/{org}", get(org_home))
        .route("/o/{org}/settings", get(org_home))
        .route("/o/{org}/settings/members", get(page).post(invite))
        .route("/o/{org}/settings/members/{user}", get(member_page))
        .route("/o/{org}/settings/members/{user}/groups", post(set_groups))
        .route("/o/{org}/settings/members/{user}/remove", post(remove))
        .route("/o/{org}/view-as", post(view_as))
        .route("/o/{org}/settings/invitations/{id}/revoke", post(revoke_invitation))
}

async fn org_home(Path(org): Path<String>) -> axum::response::Response {
    see_other(&format!("/o/{}/projects", enc(&org)))
}

/// Every member of the org the caller may list (`GET /v1/user`), all pages.
pub(super) async fn load_members(ctx: &Ctx) -> Result<Vec<User>, Fail> {
    let mut out: Vec<User> = Vec::new();
    loop {
        let after = out.last().map(|u| u.id.to_string()).unwrap_or_default();
        let mut p = vec![("limit", "1000")];
        if !after.is_empty() {
            p.push(("starting_after", &after));
        }
        let page = user::list(ctx.caller.clone(), query(&p)?, query(&[])?, query(&[("org_name", ctx.org_name())])?)
            .await?
            .0
            .objects;
        let n = page.len();
        out.extend(page);
        if n < 1000 {
            return Ok(out);
        }
    }
}

/// Every group of the org the caller may read (`GET /v1/group?with_members=false`, all
/// pages), without their member lists: names for labels and pickers. Who is in which
/// group comes from [`direct_groups`].
pub(super) async fn load_groups(ctx: &Ctx) -> Result<Vec<Group>, Fail> {
    let mut out: Vec<Group> = Vec::new();
    loop {
        let after = out.last().map(|g| g.id.to_string()).unwrap_or_default();
        let mut p = vec![("limit", "1000")];
        if !after.is_empty() {
            p.push(("starting_after", &after));
        }
        let page = group::list(
            ctx.caller.clone(),
            query(&p)?,
            query(&[("with_members", "false")])?,
            query(&[("org_name", ctx.org_name())])?,
        )
        .await?
        .0
        .objects;
        let n = page.len();
        out.extend(page);
        if n < 1000 {
            out.sort_by_key(|g| (!is_builtin(&g.name), g.name.to_lowercase()));
            return Ok(out);
        }
    }
}

/// The groups a user is a direct member of, as the authorization index holds them
/// (the memberships every decision is made from), by id.
pub(super) fn direct_groups(ctx: &Ctx, user: Uuid) -> Vec<Uuid> {
    ctx.caller.state().index().snapshot().direct_groups_of(user)
}

/// Whether a group is one of the seeded ones (shown first, never deletable).
pub(super) fn is_builtin(name: &str) -> bool {
    matches!(name, "Owners" | "Engineers" | "Viewers")
}

/// Whether a user is a service account (their address is in the reserved domain).
pub(super) fn is_service(u: &User) -> bool {
    u.email.as_deref().is_none_or(|e| e.ends_with("@service-accounts.castellan.invalid"))
}

/// A user's name for tables.
pub(super) fn name_of(u: &User) -> String {
    let n = [u.given_name.as_deref(), u.family_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    if n.is_empty() {
        u.email.clone().unwrap_or_else(|| u.id.to_string())
    } else {
        n
    }
}

struct Row {
    id: Uuid,
    name: String,
    email: String,
    service: bool,
    groups: Vec<String>,
    error: String,
}

#[derive(Template)]
#[template(path = "console/members.html")]
struct MembersPage<'a> {
    base: String,
    csrf: &'a str,
    rows: Vec<Row>,
    q: String,
    pager: Pager,
    pager_label: &'static str,
    unplaced: String,
    /// Whether invitation links are whole (a public URL is configured).
    public_url: bool,
    groups: Vec<(Uuid, String)>,
    can_invite: bool,
    can_remove: bool,
    owner: bool,
    me: Uuid,
    err: FormError,
    invitations: Vec<(String, String)>,
    pending: Vec<castellan_api_types::Invitation>,
    group_names: HashMap<Uuid, String>,
}

/// One page of the members the caller may list (`GET /v1/user`, newest first), with
/// the search.
pub(super) async fn members_page(
    ctx: &Ctx,
    lq: &ListQuery,
    href: impl Fn(&str) -> String,
) -> Result<(Vec<User>, Pager), Fail> {
    let page = lq.api_page();
    let page: Vec<(&str, &str)> = page.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let users = user::list(
        ctx.caller.clone(),
        query(&page)?,
        query(&[("search", lq.search())])?,
        query(&[("org_name", ctx.org_name())])?,
    )
    .await?
    .0
    .objects;
    Ok(lq.cut(users, |u| u.id.to_string(), href))
}

async fn render(
    ctx: &Ctx,
    lq: &ListQuery,
    err: FormError,
    invitations: Vec<(String, String)>,
    notice: Option<String>,
) -> Page {
    let base = ctx.base();
    let (users, pager) = members_page(ctx, lq, |q| format!("{base}/settings/members?{q}")).await?;
    let groups = load_groups(ctx).await?;
    // Each listed member's groups (those the caller may read), in the list's order.
    let order: HashMap<Uuid, usize> = groups.iter().enumerate().map(|(i, g)| (g.id, i)).collect();
    let mut of_user: HashMap<Uuid, Vec<String>> = HashMap::new();
    for u in &users {
        let mut mine: Vec<usize> = direct_groups(ctx, u.id).iter().filter_map(|g| order.get(g).copied()).collect();
        mine.sort_unstable();
        of_user.insert(u.id, mine.into_iter().map(|i| groups[i].name.clone()).collect());
    }
    let rows: Vec<Row> = users
        .iter()
        .map(|u| Row {
            id: u.id,
            name: name_of(u),
            email: if is_service(u) { String::new() } else { u.email.clone().unwrap_or_default() },
            service: is_service(u),
            groups: of_user.remove(&u.id).unwrap_or_default(),
            error: if err.form == format!("remove-{}", u.id) { err.message.clone() } else { String::new() },
        })
        .collect();
    // A refused removal of a member not on this page is shown above the table.
    let unplaced = if err.form.starts_with("remove-") && rows.iter().all(|r| r.error.is_empty()) {
        err.message.clone()
    } else {
        String::new()
    };
    let status = if err.message.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let can_invite = ctx.can(Permission::Create, ctx.noun(ObjectType::OrgMember));
    let pending = if can_invite {
        crate::routes::invitation::list(ctx.caller.clone(), query(&[("org_name", ctx.org_name())])?).await?.0.objects
    } else {
        vec![]
    };
    let p = MembersPage {
        base: ctx.base(),
        csrf: &ctx.csrf,
        rows,
        q: lq.search().to_owned(),
        pager,
        pager_label: "Pages of members",
        unplaced,
        public_url: ctx.caller.state().config().public_url.is_some(),
        groups: groups.iter().map(|g| (g.id, g.name.clone())).collect(),
        can_invite,
        can_remove: ctx.can(Permission::Delete, ctx.noun(ObjectType::OrgMember)),
        owner: ctx.caller.is_owner(ctx.org.id) && ctx.caller.actor.impersonator.is_none(),
        me: ctx.caller.user.id.0,
        err,
        invitations,
        pending,
        group_names: groups.iter().map(|g| (g.id, g.name.clone())).collect(),
    };
    ctx.page_status(status, "Members", "settings/members", p, notice)
}

async fn page(
    session: Session,
    Path(org): Path<String>,
    q: axum::extract::Query<Notice>,
    lq: axum::extract::Query<ListQuery>,
) -> Page {
    let ctx = session.org(&org).await?;
    render(&ctx, &lq.0, FormError::default(), vec![], q.0.take()).await
}

/// Invites the emails typed (one per line, or separated by commas) into a group.
async fn invite(session: Session, Path(org): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Page {
    let ctx = session.org(&org).await?;
    let emails: Vec<String> = one(&form, "emails")
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let group = one(&form, "group_id");
    let refused = |e: ApiError| FormError::new("invite", &e, &["emails", "group_id"], fields(&form));
    if emails.is_empty() {
        let e = ApiError::invalid_body("`emails`: type at least one email address");
        return render(&ctx, &ListQuery::default(), refused(e), vec![], None).await;
    }
    let mut invite = json!({"emails": emails});
    if !group.is_empty() {
        invite["group_ids"] = json!([group]);
    }
    let b = body(json!({"org_name": ctx.org_name(), "invite_users": invite}));
    let result = match b {
        Ok(b) => members::patch_members(ctx.caller.clone(), b).await.map_err(Fail),
        Err(e) => Err(e),
    };
    match result {
        Ok(w) => {
            let out = w.body;
            let joined = out.added_users.as_ref().map(Vec::len).unwrap_or(0);
            let links: Vec<(String, String)> = out
                .invitations
                .unwrap_or_default()
                .into_iter()
                .filter_map(|i| i.token.map(|t| (i.email, invitation_link(ctx.caller.state().config(), &t))))
                .collect();
            let notice = format!(
                "{} invited{}",
                links.len(),
                if joined > 0 { format!(", {joined} existing account(s) added") } else { String::new() }
            );
            render(&ctx, &ListQuery::default(), FormError::default(), links, Some(notice)).await
        }
        Err(Fail(e)) => render(&ctx, &ListQuery::default(), refused(e), vec![], None).await,
    }
}

/// The link that accepts an invitation: whole, on the server's configured public
/// URL (`public_url`); without one, only its path. It is never built from the
/// request's `Host` header: a link sent to someone else must not point wherever the
/// request that made it said it came from.
pub fn invitation_link(config: &crate::config::Config, token: &str) -> String {
    let path = format!("/invitation?token={}", enc(token));
    match config.public_url.as_deref().map(|u| u.trim_end_matches('/')).filter(|u| !u.is_empty()) {
        Some(base) => format!("{base}{path}"),
        None => path,
    }
}

/// Removes a member (`remove_users`); the last owner and the last member are refused
/// by the API, and the refusal is shown on the row.
async fn remove(session: Session, Path((org, user)): Path<(String, Uuid)>) -> Page {
    let ctx = session.org(&org).await?;
    let b = body(json!({"org_name": ctx.org_name(), "remove_users": {"ids": [user]}}))?;
    match members::patch_members(ctx.caller.clone(), b).await {
        Ok(_) => Ok(see_other(&format!("{}/settings/members?notice=Member%20removed", ctx.base()))),
        Err(e) => {
            let err = FormError::new(&format!("remove-{user}"), &e, &[], HashMap::new());
            render(&ctx, &ListQuery::default(), err, vec![], None).await
        }
    }
}

#[derive(Template)]
#[template(path = "console/member.html")]
struct MemberPage<'a> {
    base: String,
    csrf: &'a str,
    user: User,
    groups: Vec<(Uuid, String, bool, bool)>,
    err: String,
}

async fn member_render(ctx: &Ctx, user_id: Uuid, err: String, notice: Option<String>) -> Page {
    // A member of this organization (`GET /v1/user?ids=`: one the caller may list).
    let id = user_id.to_string();
    let found = user::list(
        ctx.caller.clone(),
        query(&[("limit", "1")])?,
        query(&[("ids", id.as_str())])?,
        query(&[("org_name", ctx.org_name())])?,
    )
    .await?
    .0
    .objects;
    let Some(user) = found.into_iter().next() else {
        return Err(Fail(ApiError::not_found("user", user_id)));
    };
    let mine = direct_groups(ctx, user_id);
    let groups = load_groups(ctx)
        .await?
        .into_iter()
        .map(|g| {
            let member = mine.contains(&g.id);
            let editable = ctx.can(Permission::Update, ObjectRefExt::group(g.id));
            (g.id, g.name, member, editable)
        })
        .collect();
    let status = if err.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let title = name_of(&user);
    let p = MemberPage { base: ctx.base(), csrf: &ctx.csrf, user, groups, err };
    ctx.page_status(status, &title, "settings/members", p, notice)
}

struct ObjectRefExt;
impl ObjectRefExt {
    fn group(id: Uuid) -> castellan_core::ObjectRef {
        castellan_core::ObjectRef::new(ObjectType::Group, id)
    }
}

async fn member_page(
    session: Session,
    Path((org, user)): Path<(String, Uuid)>,
    q: axum::extract::Query<Notice>,
) -> Page {
    let ctx = session.org(&org).await?;
    member_render(&ctx, user, String::new(), q.0.take()).await
}

/// Sets a member's groups: each group whose membership changes is one
/// `PATCH /v1/group/{id}` (which needs `update` on that group).
async fn set_groups(
    session: Session,
    Path((org, user)): Path<(String, Uuid)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let want: Vec<&str> = all(&form, "group");
    let mut changed = 0;
    let mine = direct_groups(&ctx, user);
    for g in load_groups(&ctx).await? {
        let has = mine.contains(&g.id);
        let wants = want.contains(&g.id.to_string().as_str());
        if has == wants {
            continue;
        }
        let patch = if wants { json!({"add_member_users": [user]}) } else { json!({"remove_member_users": [user]}) };
        if let Err(e) = group::update(ctx.caller.clone(), crate::extract::Path(GroupId(g.id)), body(patch)?).await {
            return member_render(&ctx, user, format!("{}: {e}", g.name), None).await;
        }
        changed += 1;
    }
    Ok(see_other(&format!("{}/settings/members/{user}?notice={}%20group(s)%20changed", ctx.base(), changed)))
}

/// Starts viewing the console as a member (owners only: the API's impersonation
/// check decides on the next request; a refused one shows its message).
async fn view_as(session: Session, Path(org): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Page {
    let ctx = session.org(&org).await?;
    let target = one(&form, "user_id");
    let id = Uuid::parse_str(target).map_err(|_| ApiError::invalid_body("`user_id` must be a UUID"))?;
    if ctx.caller.actor.impersonator.is_some() {
        return Err(Fail(ApiError::bad_request("stop viewing as another user first")));
    }
    let mut r = see_other(&format!("{}/projects", ctx.base()));
    let c = format!("{}={id}; Path=/; SameSite=Lax; HttpOnly", super::VIEW_AS_COOKIE);
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// Revokes a pending invitation (`DELETE /v1/organization/invitations/{id}`).
async fn revoke_invitation(session: Session, Path((org, id)): Path<(String, Uuid)>) -> Page {
    let ctx = session.org(&org).await?;
    let q = query(&[("org_name", ctx.org_name())])?;
    match crate::routes::invitation::revoke(ctx.caller.clone(), crate::extract::Path(id), q).await {
        Ok(_) => Ok(see_other(&format!("{}/settings/members?notice=Invitation%20revoked", ctx.base()))),
        Err(e) => {
            let err = FormError::new("invitations", &e, &[], HashMap::new());
            render(&ctx, &ListQuery::default(), err, vec![], None).await
        }
    }
}
