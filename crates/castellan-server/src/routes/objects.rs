//! What the handlers of objects inside projects (experiments, datasets, prompts,
//! functions, playgrounds) share: loading one under a permission, listing with the
//! usual filters, and the audited create, update and delete.

use super::{OrgName, Written};
use crate::access::{Caller, Permit, Write};
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Page};
use crate::fill;
use castellan_core::{Name, ObjectRef, ObjectType, Permission, ProjectId};
use castellan_store::{ObjectFilter, ObjectKind, ObjectRecord, Paged, ProjectRecord};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

/// The authorization object of an object.
pub fn object_ref(kind: ObjectKind, id: Uuid) -> ObjectRef {
    ObjectRef::new(kind.object_type(), id)
}

/// The authorization object of a project.
pub fn project_ref(id: ProjectId) -> ObjectRef {
    ObjectRef::new(ObjectType::Project, id.0)
}

/// Object `id`, one of `kinds`, after checking `permission` on it: 404 if the
/// caller cannot read it (or it is of another kind), 403 if it can read but not
/// do this.
pub async fn load(
    caller: &Caller,
    kinds: &[ObjectKind],
    id: Uuid,
    permission: Permission,
) -> ApiResult<(ObjectRecord, Permit)> {
    let kind = *kinds.first().ok_or_else(|| ApiError::Internal("no object kind".into()))?;
    let permit = caller.require(permission, object_ref(kind, id)).await?;
    let mut tx = caller.state().read(&permit).await?;
    match tx.get_object(id).await? {
        Some(o) if kinds.contains(&o.kind) => Ok((o, permit)),
        _ => Err(ApiError::not_found(kind.as_str(), id)),
    }
}

/// The object again, inside a write transaction (it may have changed or gone).
pub async fn reload(w: &mut Write, kinds: &[ObjectKind], id: Uuid) -> ApiResult<ObjectRecord> {
    let kind = kinds.first().map(|k| k.as_str()).unwrap_or("object");
    match w.tx().get_object(id).await? {
        Some(o) if kinds.contains(&o.kind) => Ok(o),
        _ => Err(ApiError::not_found(kind, id)),
    }
}

/// The project an object is created in, inside the write transaction.
pub async fn project(w: &mut Write, id: ProjectId) -> ApiResult<ProjectRecord> {
    w.tx().get_project(id).await?.ok_or_else(|| ApiError::not_found("project", id))
}

/// The project a list of objects is narrowed to, by id or by name: every object
/// list's `project_id` and `project_name`, declared here once.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InProject {
    /// Only objects in the project of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    project_name: Option<String>,
    /// Only objects in this project.
    project_id: Option<Uuid>,
}

impl InProject {
    /// The project named in a body rather than the query.
    pub fn new(project_name: Option<String>, project_id: Option<Uuid>) -> InProject {
        InProject { project_name: project_name.filter(|n| !n.is_empty()), project_id }
    }
}

/// What a list of objects asks for: its page, organization and project, and the
/// filters each kind's handler reads (`ids`, its own `<kind>_name`, and `slug` for
/// prompts and functions).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The page.
    pub page: Page,
    /// `org_name`.
    pub org: OrgName,
    /// `project_id`, `project_name`.
    pub project: InProject,
    /// `ids`.
    pub ids: Vec<Uuid>,
    /// `<kind>_name`.
    pub name: Option<String>,
    /// `slug`.
    pub slug: Option<String>,
}

/// One page of the objects of `kinds` the caller can read, newest first.
pub async fn list(caller: &Caller, q: &Listing, kinds: &[ObjectKind]) -> ApiResult<Vec<ObjectRecord>> {
    let scope = caller.list_scope(q.org.get()).await?;
    let mut filter = ObjectFilter {
        kinds: kinds.to_vec(),
        orgs: scope.orgs().to_vec(),
        projects: q.project.project_id.map(ProjectId).into_iter().collect(),
        ids: q.ids.clone(),
        name: q.name.clone(),
        slug: q.slug.clone(),
    };
    let (limit, cursor) = (q.page.limit(), q.page.cursor()?);
    let mut tx = caller.state().read_scope(&scope).await?;
    if let Some(name) = &q.project.project_name {
        // The name only narrows the list; every row is still checked, so no grant on
        // the project itself is needed (a grant on one object inside it is enough).
        let mut named = Vec::new();
        for org in scope.orgs() {
            if let Some(p) = tx.find_project_by_name(*org, name).await? {
                named.push(p.id);
            }
        }
        if !filter.projects.is_empty() {
            named.retain(|p| filter.projects.contains(p));
        }
        if named.is_empty() {
            return Ok(Vec::new());
        }
        filter.projects = named;
    }
    let visible = |o: &ObjectRecord| scope.visible(Permission::Read, object_ref(o.kind, o.id));
    let key = match cursor.id() {
        Some(id) => tx.get_object(id).await?.filter(|o| kinds.contains(&o.kind) && visible(o)).map(|o| o.page_key()),
        None => None,
    };
    let req = cursor.resolve(limit, key)?;
    Ok(fill!(req, |w| tx.list_objects(&filter, &w), |o: &ObjectRecord| visible(o)))
}

/// The project's live object of `kind` named `name`, if the caller can read it. It
/// is looked up before any create permission is asked for, so that a reader can
/// "create-or-get" an existing object as the SDK does on every `init`.
pub async fn existing_by_name(
    caller: &Caller,
    project: ProjectId,
    kind: ObjectKind,
    name: &str,
) -> ApiResult<Option<ObjectRecord>> {
    let scope = caller.list_scope(None).await?;
    let mut tx = caller.state().read_scope(&scope).await?;
    let found = tx.find_object_by_name(project, kind, name).await?;
    Ok(found.filter(|o| scope.orgs().contains(&o.org_id) && scope.visible(Permission::Read, object_ref(o.kind, o.id))))
}

/// Creates the object `name` of `kind` in project `pid` (`create` on the project), or
/// returns the project's live object of that name unchanged (200, with
/// `x-bt-found-existing: true`) when the caller can read it. `noun` names the kind in
/// the error when the name is taken by an object the caller cannot read.
#[allow(clippy::too_many_arguments)]
pub async fn create_or_get<A: Serialize>(
    caller: &Caller,
    pid: ProjectId,
    kind: ObjectKind,
    noun: &str,
    name: Name,
    description: Option<String>,
    data: serde_json::Value,
    wire: impl Fn(&ObjectRecord) -> A,
) -> ApiResult<Written<A>> {
    if let Some(o) = existing_by_name(caller, pid, kind, name.as_str()).await? {
        return Ok(Written::existing(wire(&o)));
    }
    let permit = caller.require_create(kind.object_type(), project_ref(pid)).await?;
    let mut w = caller.state().write(&permit).await?;
    let project = project(&mut w, pid).await?;
    if w.tx().find_object_by_name(pid, kind, name.as_str()).await?.is_some() {
        return Err(ApiError::BadRequest {
            code: crate::error::ErrorCode::NameTaken,
            message: format!("a {noun} named `{name}` already exists"),
        });
    }
    let o = ObjectRecord {
        id: Uuid::now_v7(),
        kind,
        project_id: pid,
        org_id: project.org_id,
        name: name.into_inner(),
        slug: None,
        description,
        user_id: Some(caller.user.id),
        xact_id: None,
        data,
        created: w.now(),
    };
    let out = wire(&o);
    w.create_object(&o, &out).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// Stores `after`, the changed form of `before` (read in this same write), audits the
/// change and commits; returns the object as changed. When nothing changed (an absent
/// or empty `PATCH` body) nothing is written or audited.
pub async fn commit_update<A: Serialize>(
    mut w: Write,
    before: &ObjectRecord,
    after: &ObjectRecord,
    wire: impl Fn(&ObjectRecord) -> A,
) -> ApiResult<Written<A>> {
    let out = wire(after);
    if after == before {
        return Ok(Written { revision: None, found_existing: false, body: out });
    }
    w.update_object(after, &wire(before), &out).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// Deletes an object of `kinds` (`delete` on it) with every grant on it; returns it.
pub async fn remove<A: Serialize>(
    caller: &Caller,
    kinds: &[ObjectKind],
    id: Uuid,
    wire: impl Fn(&ObjectRecord) -> A,
) -> ApiResult<Written<A>> {
    let (_, permit) = load(caller, kinds, id, Permission::Delete).await?;
    let mut w = caller.state().write(&permit).await?;
    let o = reload(&mut w, kinds, id).await?;
    let out = wire(&o);
    w.delete_object(&o, &out).await?;
    let rev = w.commit().await?;
    Ok(Written::at(rev, out))
}

/// Tags must be distinct, non-empty strings.
pub fn check_tags(tags: &Option<Vec<String>>) -> ApiResult<()> {
    if let Some(tags) = tags {
        for (i, t) in tags.iter().enumerate() {
            if t.trim().is_empty() {
                return Err(ApiError::invalid_body(format!("`tags[{i}]` must not be empty")));
            }
            if tags[..i].contains(t) {
                return Err(ApiError::invalid_body(format!("`tags` lists `{t}` twice")));
            }
        }
    }
    Ok(())
}

/// `metadata` must be an object when given.
pub fn check_object(field: &str, v: &Option<serde_json::Value>) -> ApiResult<()> {
    match v {
        Some(x) if !x.is_object() && !x.is_null() => {
            Err(ApiError::invalid_body(format!("`{field}` must be an object, got `{x}`")))
        }
        _ => Ok(()),
    }
}
