//! Projects: the list, a project's objects, Project → Configuration → Permissions,
//! and each object's Permissions (the shared access component on that object).

use super::grants::{self, AccessQuery, AccessView};
use super::{body, enc, fields, one, query, see_other, Ctx, Fail, FormError, Notice, Page, Session};
use crate::error::ApiError;
use crate::routes::{dataset, experiment, project, prompt, prompt_session};
use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Form, Router};
use castellan_api_types::Project;
use castellan_core::{ObjectRef, ObjectType, Permission, ProjectId};
use serde_json::json;
use uuid::Uuid;

pub(super) fn routes() -> Router<crate::state::App> {
    Router::new()
        .route("/o/{org}/projects", get(list_page).post(create))
        .route("/o/{org}/p/go", get(go))
        .route("/o/{org}/p/{project}", get(project_page))
        .route("/o/{org}/p/{project}/permissions", get(permissions_page).post(save_permissions))
        .route("/o/{org}/p/{project}/{kind}/{id}", get(object_page).post(save_object))
}

/// Every project the caller can read (`GET /v1/project`), all pages.
pub(super) async fn load_projects(ctx: &Ctx) -> Result<Vec<Project>, Fail> {
    let mut out: Vec<Project> = Vec::new();
    loop {
        let after = out.last().map(|p| p.id.to_string()).unwrap_or_default();
        let mut p = vec![("limit", "1000")];
        if !after.is_empty() {
            p.push(("starting_after", &after));
        }
        let page = project::list(ctx.caller.clone(), query(&p)?, query(&[])?, query(&[("org_name", ctx.org_name())])?)
            .await?
            .0
            .objects;
        let n = page.len();
        out.extend(page);
        if n < 1000 {
            out.sort_by_key(|p| p.name.to_lowercase());
            return Ok(out);
        }
    }
}

#[derive(Template)]
#[template(path = "console/projects.html")]
struct ProjectsPage<'a> {
    base: String,
    csrf: &'a str,
    projects: Vec<Project>,
    can_create: bool,
    err: FormError,
}

async fn list_render(ctx: &Ctx, err: FormError, notice: Option<String>) -> Page {
    let projects = load_projects(ctx).await?;
    let snap = ctx.caller.state().index().snapshot();
    let can_create =
        snap.can_create(ctx.caller.user.id.0, ObjectType::Project, ctx.org_ref(), ctx.caller.state().now());
    let status = if err.message.is_empty() { StatusCode::OK } else { FormError::status_of(&err) };
    let p = ProjectsPage { base: ctx.base(), csrf: &ctx.csrf, projects, can_create, err };
    ctx.page_status(status, "Projects", "projects", p, notice)
}

async fn list_page(session: Session, Path(org): Path<String>, q: axum::extract::Query<Notice>) -> Page {
    let ctx = session.org(&org).await?;
    list_render(&ctx, FormError::default(), q.0.take()).await
}

/// Creates a project (`POST /v1/project`).
async fn create(session: Session, Path(org): Path<String>, Form(form): Form<Vec<(String, String)>>) -> Page {
    let ctx = session.org(&org).await?;
    let name = one(&form, "name").trim().to_owned();
    let description = Some(one(&form, "description").trim().to_owned()).filter(|s| !s.is_empty());
    let b = body(json!({"name": name, "description": description, "org_name": ctx.org_name()}))?;
    match project::create(ctx.caller.clone(), b).await {
        Ok(w) => Ok(see_other(&format!("{}/p/{}?notice=Project%20created", ctx.base(), w.body.id))),
        Err(e) => list_render(&ctx, FormError::new("create", &e, &["name", "description"], fields(&form)), None).await,
    }
}

#[derive(serde::Deserialize)]
struct Go {
    project: Uuid,
    #[serde(default)]
    principal: String,
}

/// The group dialog's "open project permissions" (a GET form).
async fn go(Path(org): Path<String>, q: axum::extract::Query<Go>) -> axum::response::Response {
    see_other(&format!("/o/{}/p/{}/permissions?principal={}", enc(&org), q.project, enc(&q.principal)))
}

/// An object of a project, as the project page lists it.
struct Obj {
    kind: &'static str,
    id: Uuid,
    name: String,
    description: String,
    manage: bool,
}

#[derive(Template)]
#[template(path = "console/project.html")]
struct ProjectPage {
    base: String,
    project: Project,
    sections: Vec<(&'static str, Vec<Obj>)>,
    can_manage: bool,
}

async fn load_project(ctx: &Ctx, id: Uuid) -> Result<Project, Fail> {
    let p = project::retrieve(ctx.caller.clone(), crate::extract::Path(ProjectId(id))).await?.0;
    if p.org_id != ctx.org.id.0 {
        return Err(Fail(ApiError::not_found("project", id)));
    }
    Ok(p)
}

fn obj_ref(kind: &str, id: Uuid) -> Option<ObjectRef> {
    let t = match kind {
        "experiment" => ObjectType::Experiment,
        "dataset" => ObjectType::Dataset,
        "prompt" => ObjectType::Prompt,
        "playground" => ObjectType::PromptSession,
        "logs" => ObjectType::ProjectLog,
        _ => return None,
    };
    Some(ObjectRef::new(t, id))
}

async fn project_page(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    q: axum::extract::Query<Notice>,
) -> Page {
    let ctx = session.org(&org).await?;
    let p = load_project(&ctx, id).await?;
    let pid = id.to_string();
    let inp = [("project_id", pid.as_str())];
    let orgq = [("org_name", ctx.org_name())];
    let lim = [("limit", "1000")];
    let c = || ctx.caller.clone();
    let mk = |kind: &'static str, id: Uuid, name: String, description: Option<String>| Obj {
        kind,
        id,
        name,
        description: description.unwrap_or_default(),
        manage: obj_ref(kind, id).is_some_and(|o| ctx.can(Permission::ReadAcls, o)),
    };
    let exps = experiment::list(c(), query(&lim)?, query(&[])?, query(&inp)?, query(&orgq)?).await?.0.objects;
    let dsets = dataset::list(c(), query(&lim)?, query(&[])?, query(&inp)?, query(&orgq)?).await?.0.objects;
    let prompts =
        prompt::list(c(), query(&lim)?, query(&[])?, query(&[])?, query(&inp)?, query(&orgq)?).await?.0.objects;
    let sessions = prompt_session::list(c(), query(&lim)?, query(&[])?, query(&inp)?, query(&orgq)?).await?.0.objects;
    let sections = vec![
        ("Experiments", exps.into_iter().map(|e| mk("experiment", e.id, e.name, e.description)).collect()),
        ("Datasets", dsets.into_iter().map(|e| mk("dataset", e.id, e.name, e.description)).collect()),
        ("Prompts", prompts.into_iter().map(|e| mk("prompt", e.id, e.name, e.description)).collect()),
        ("Playgrounds", sessions.into_iter().map(|e| mk("playground", e.id, e.name, e.description)).collect()),
        ("Logs", vec![mk("logs", id, "Project logs".into(), Some("Every span logged to this project".into()))]),
    ];
    let title = p.name.clone();
    let can_manage = ctx.can(Permission::ReadAcls, ObjectRef::new(ObjectType::Project, id));
    ctx.page(&title, "projects", ProjectPage { base: ctx.base(), project: p, sections, can_manage }, q.0.take())
}

/// The tabs of a project.
pub(super) fn project_tabs(ctx: &Ctx, id: Uuid, cur: &str) -> Vec<(String, String, bool)> {
    let b = format!("{}/p/{id}", ctx.base());
    vec![
        (b.clone(), "Objects".into(), cur == "objects"),
        (format!("{b}/permissions"), "Permissions".into(), cur == "permissions"),
        (format!("{b}/settings"), "Configuration".into(), cur == "settings"),
    ]
}

fn project_view(ctx: &Ctx, p: &Project) -> AccessView {
    AccessView {
        obj: ObjectRef::new(ObjectType::Project, p.id),
        heading: p.name.clone(),
        intro: "Project permissions: grants on this project and on the objects of each type inside it.",
        crumbs: vec![(format!("{}/projects", ctx.base()), "Projects".into())],
        tabs: project_tabs(ctx, p.id, "permissions"),
        action: format!("{}/p/{}/permissions", ctx.base(), p.id),
        nav: "projects",
    }
}

async fn permissions_page(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    q: axum::extract::Query<AccessQuery>,
) -> Page {
    let ctx = session.org(&org).await?;
    let p = load_project(&ctx, id).await?;
    grants::render(&ctx, project_view(&ctx, &p), q.0, FormError::default()).await
}

async fn save_permissions(
    session: Session,
    Path((org, id)): Path<(String, Uuid)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let p = load_project(&ctx, id).await?;
    grants::save(&ctx, project_view(&ctx, &p), form).await
}

/// The name and project of an object, read through its own endpoint (404 if
/// unreadable).
async fn object_name(ctx: &Ctx, kind: &str, id: Uuid) -> Result<(String, Uuid), Fail> {
    let c = ctx.caller.clone();
    let p = crate::extract::Path(id);
    Ok(match kind {
        "experiment" => experiment::retrieve(c, p).await.map(|x| (x.0.name, x.0.project_id))?,
        "dataset" => dataset::retrieve(c, p).await.map(|x| (x.0.name, x.0.project_id))?,
        "prompt" => prompt::retrieve(c, p, query(&[])?).await.map(|x| (x.0.name, x.0.project_id))?,
        "playground" => prompt_session::retrieve(c, p).await.map(|x| (x.0.name, x.0.project_id))?,
        _ => {
            let obj = ObjectRef::new(ObjectType::ProjectLog, id);
            ctx.caller.require(Permission::Read, obj).await?;
            ("Project logs".into(), id)
        }
    })
}

async fn object_view(ctx: &Ctx, project: Uuid, kind: &str, id: Uuid) -> Result<AccessView, Fail> {
    let obj = obj_ref(kind, id).ok_or_else(|| Fail(ApiError::NotFound(format!("no such object kind `{kind}`"))))?;
    let id = if kind == "logs" { project } else { id };
    let (name, in_project) = object_name(ctx, kind, id).await?;
    if in_project != project {
        return Err(Fail(ApiError::not_found(kind, id)));
    }
    // The project itself may be unreadable to someone granted only this object.
    let mut crumbs = vec![(format!("{}/projects", ctx.base()), "Projects".to_owned())];
    if let Ok(p) = load_project(ctx, project).await {
        crumbs.push((format!("{}/p/{}", ctx.base(), p.id), p.name));
    }
    Ok(AccessView {
        obj: ObjectRef::new(obj.object_type, id),
        heading: name,
        intro: match kind {
            "experiment" => "Experiment permissions: who may read, change, delete or manage access to this experiment.",
            "dataset" => "Dataset permissions: who may read, change, delete or manage access to this dataset.",
            "prompt" => "Prompt permissions: who may read, change, delete or manage access to this prompt.",
            "playground" => "Playground permissions: who may read, change, delete or manage access to this playground.",
            _ => "Log permissions: who may read or write this project's logs.",
        },
        crumbs,
        tabs: vec![],
        action: format!("{}/p/{project}/{kind}/{id}", ctx.base()),
        nav: "projects",
    })
}

async fn object_page(
    session: Session,
    Path((org, project, kind, id)): Path<(String, Uuid, String, Uuid)>,
    q: axum::extract::Query<AccessQuery>,
) -> Page {
    let ctx = session.org(&org).await?;
    let view = object_view(&ctx, project, &kind, id).await?;
    grants::render(&ctx, view, q.0, FormError::default()).await
}

async fn save_object(
    session: Session,
    Path((org, project, kind, id)): Path<(String, Uuid, String, Uuid)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Page {
    let ctx = session.org(&org).await?;
    let view = object_view(&ctx, project, &kind, id).await?;
    grants::save(&ctx, view, form).await
}
