//! `/v1/view`: saved views (filters, columns, charts) of an object's pages in the
//! console. Every operation names the object the view is saved on
//! (`object_type`, `object_id`), as Braintrust's API requires. Reading views takes
//! `read` on that object; creating, changing or deleting one takes `update` on it
//! (a view of the organization's pages needs "Manage settings").

use super::setting::{self, field, text, Change, Draft, Setting};
use super::Written;
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{format_time, CreateView, DeleteView, ListResponse, PatchView, View};
use castellan_core::{ObjectRef, ObjectType};
use castellan_store::{AdminFilter, AdminKind, AdminRecord};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace)).routes(routes!(retrieve, update, remove))
}

/// The pages a view can be of.
const VIEW_TYPES: [&str; 17] = [
    "projects",
    "experiments",
    "experiment",
    "playgrounds",
    "playground",
    "datasets",
    "dataset",
    "prompts",
    "parameters",
    "tools",
    "scorers",
    "classifiers",
    "logs",
    "monitor",
    "for_review_project_log",
    "for_review_experiments",
    "for_review_datasets",
];

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::View;
    const KEPT: &'static [&'static str] = &["user_id", "starred"];
    type Wire = View;

    fn wire(a: &AdminRecord) -> View {
        View {
            id: a.id,
            object_type: a.scope.object_type,
            object_id: a.scope.object_id,
            view_type: text(a, "view_type"),
            name: a.name.clone(),
            description: text(a, "description"),
            created: Some(format_time(a.created)),
            updated_at: Some(format_time(a.updated)),
            deleted_at: None,
            user_id: setting::creator(a),
            view_data: field(a, "view_data"),
            options: field(a, "options"),
            starred: a.data.get("starred").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

fn check_view_type(t: Option<&str>) -> ApiResult<()> {
    match t {
        Some(t) if !VIEW_TYPES.contains(&t) => {
            Err(ApiError::invalid_body(format!("`view_type` must be one of {}, got `{t}`", VIEW_TYPES.join(", "))))
        }
        _ => Ok(()),
    }
}

fn check_object(field: &str, v: Option<&Value>) -> ApiResult<()> {
    match v {
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(ApiError::invalid_body(format!("`{field}` must be an object, got `{other}`"))),
    }
}

/// How configuration as code lists views: on whatever object they are saved on.
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec::of::<Kind>(
        &ObjectType::ALL,
        &["description", "options", "starred", "view_data", "view_type"],
        |data| {
            check_view_type(super::config::text(data, "view_type")?)?;
            super::config::text(data, "description")?;
            check_object("view_data", data.get("view_data"))?;
            check_object("options", data.get("options"))?;
            match data.get("starred") {
                None | Some(Value::Null) | Some(Value::Bool(_)) => Ok(()),
                Some(other) => Err(ApiError::invalid_body(format!("`starred` must be true or false, got `{other}`"))),
            }
        },
    )
}

/// What a view request names: the object the view is saved on.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewObject {
    /// The type of object the views are saved on.
    object_type: ObjectType,
    /// The object.
    object_id: Uuid,
}

/// The view list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewFilters {
    /// Only these: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only views of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    view_name: Option<String>,
    /// Only views of this page type.
    #[serde(default, deserialize_with = "empty_as_none")]
    view_type: Option<String>,
}

/// The views saved on an object (`read` on it), newest first.
#[utoipa::path(get, path = "/v1/view", tag = "Views", params(Page, ViewObject, ViewFilters),
    responses((status = 200, body = ListResponse<View>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(on): Query<ViewObject>,
    Query(f): Query<ViewFilters>,
) -> ApiResult<Json<ListResponse<View>>> {
    check_view_type(f.view_type.as_deref()).map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
    let scope = ObjectRef::new(on.object_type, on.object_id);
    caller.require(castellan_core::Permission::Read, scope).await?;
    let filter = AdminFilter {
        scope_type: Some(on.object_type),
        scope_id: Some(on.object_id),
        ids: f.ids,
        name: f.view_name,
        ..setting::filter::<Kind>()
    };
    let view_type = f.view_type;
    let objects = setting::list::<Kind>(&caller, &page, None, filter, |a| {
        view_type.is_none() || text(a, "view_type") == view_type
    })
    .await?;
    Ok(Json(ListResponse { objects }))
}

async fn create_or_replace(caller: Caller, body: CreateView, replace: bool) -> ApiResult<Written<View>> {
    let name = setting::name("name", &body.name)?;
    check_view_type(body.view_type.as_deref())?;
    check_object("view_data", body.view_data.as_ref())?;
    check_object("options", body.options.as_ref())?;
    let mut data = Map::new();
    data.insert("view_type".into(), json!(body.view_type));
    data.insert("description".into(), json!(body.description));
    data.insert("view_data".into(), body.view_data.unwrap_or(Value::Null));
    data.insert("options".into(), body.options.unwrap_or(Value::Null));
    let scope = ObjectRef::new(body.object_type, body.object_id);
    setting::create::<Kind>(&caller, None, Draft { scope, name, data, secret: None }, replace).await
}

/// Saves a view (`update` on the object), or answers the object's view of that name
/// unchanged (`x-bt-found-existing: true`).
#[utoipa::path(post, path = "/v1/view", tag = "Views", request_body = CreateView,
    responses((status = 200, body = View)))]
pub async fn create(caller: Caller, Body(body): Body<CreateView>) -> ApiResult<Written<View>> {
    create_or_replace(caller, body, false).await
}

/// Saves a view, or replaces the object's view of that name.
#[utoipa::path(put, path = "/v1/view", tag = "Views", request_body = CreateView,
    responses((status = 200, body = View)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateView>) -> ApiResult<Written<View>> {
    create_or_replace(caller, body, true).await
}

/// A view saved on some other object is answered as not found.
fn on_object(a: &AdminRecord, object_type: ObjectType, object_id: Uuid) -> ApiResult<()> {
    if a.scope != ObjectRef::new(object_type, object_id) {
        return Err(ApiError::not_found("view", a.id));
    }
    Ok(())
}

/// One view (`read` on the object it is saved on, which the request must name).
#[utoipa::path(get, path = "/v1/view/{view_id}", tag = "Views",
    params(("view_id" = Uuid, Path), ViewObject), responses((status = 200, body = View)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>, Query(on): Query<ViewObject>) -> ApiResult<Json<View>> {
    let a = setting::load::<Kind>(&caller, id, castellan_core::Permission::Read).await?;
    on_object(&a, on.object_type, on.object_id)?;
    Ok(Json(Kind::wire(&a)))
}

/// Changes a view (`update` on the object it is saved on, which the body must
/// name): `view_data` and `options` are merged into the stored ones.
#[utoipa::path(patch, path = "/v1/view/{view_id}", tag = "Views",
    params(("view_id" = Uuid, Path)), request_body = PatchView, responses((status = 200, body = View)))]
pub async fn update(caller: Caller, Path(id): Path<Uuid>, Body(body): Body<PatchView>) -> ApiResult<Written<View>> {
    check_view_type(body.view_type.as_deref())?;
    check_object("view_data", body.view_data.as_ref())?;
    check_object("options", body.options.as_ref())?;
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    if let Some(d) = body.description {
        c.replace.insert("description".into(), json!(d));
    }
    if let Some(t) = body.view_type {
        c.replace.insert("view_type".into(), json!(t));
    }
    if let Some(s) = body.starred {
        c.replace.insert("starred".into(), json!(s));
    }
    if let Some(v) = body.view_data {
        c.data.insert("view_data".into(), v);
    }
    if let Some(o) = body.options {
        c.data.insert("options".into(), o);
    }
    let (t, o) = (body.object_type, body.object_id);
    setting::update::<Kind>(&caller, id, c, |a| on_object(a, t, o)).await
}

/// Deletes a view (`update` on the object it is saved on, which the body must
/// name).
#[utoipa::path(delete, path = "/v1/view/{view_id}", tag = "Views",
    params(("view_id" = Uuid, Path)), request_body = DeleteView, responses((status = 200, body = View)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>, Body(body): Body<DeleteView>) -> ApiResult<Written<View>> {
    setting::remove::<Kind>(&caller, id, |a| on_object(a, body.object_type, body.object_id)).await
}
