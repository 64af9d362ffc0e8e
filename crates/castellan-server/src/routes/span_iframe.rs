//! `/v1/span_iframe`: URLs a project embeds to render its spans. Reading them takes
//! `read` on the project; creating, changing or deleting one takes `update` on it.

use super::setting::{self, text, Change, Draft, Setting};
use super::{check_url, OrgName, Written};
use crate::access::Caller;
use crate::error::ApiResult;
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{format_time, CreateSpanIFrame, ListResponse, PatchSpanIFrame, SpanIFrame};
use castellan_core::ObjectType;
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

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::SpanIframe;
    type Wire = SpanIFrame;

    fn wire(a: &AdminRecord) -> SpanIFrame {
        SpanIFrame {
            id: a.id,
            project_id: a.scope.object_id,
            user_id: setting::creator(a),
            created: Some(format_time(a.created)),
            deleted_at: None,
            name: a.name.clone(),
            description: text(a, "description"),
            url: text(a, "url").unwrap_or_default(),
            post_message: a.data.get("post_message").and_then(Value::as_bool),
        }
    }
}

/// How configuration as code lists span iframes.
pub(crate) fn config_kind() -> super::config::KindSpec {
    super::config::KindSpec::of::<Kind>(&[ObjectType::Project], &["description", "post_message", "url"], |data| {
        check_url("url", super::config::required(data, "url")?)?;
        super::config::text(data, "description")?;
        match data.get("post_message") {
            None | Some(Value::Null) | Some(Value::Bool(_)) => Ok(()),
            Some(other) => Err(crate::error::ApiError::invalid_body(format!(
                "`post_message` must be true or false, got `{other}`"
            ))),
        }
    })
}

/// The span iframe list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SpanIframeFilters {
    /// Only these: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only span iframes of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    span_iframe_name: Option<String>,
    /// Only those of this project (extension).
    project_id: Option<Uuid>,
}

/// Span iframes of the projects the caller can read, newest first.
#[utoipa::path(get, path = "/v1/span_iframe", tag = "SpanIframes", params(Page, SpanIframeFilters, OrgName),
    responses((status = 200, body = ListResponse<SpanIFrame>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<SpanIframeFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<SpanIFrame>>> {
    let filter = AdminFilter {
        scope_type: Some(ObjectType::Project),
        scope_id: f.project_id,
        ids: f.ids,
        name: f.span_iframe_name,
        ..setting::filter::<Kind>()
    };
    let objects = setting::list::<Kind>(&caller, &page, org.get(), filter, |_| true).await?;
    Ok(Json(ListResponse { objects }))
}

async fn create_or_replace(caller: Caller, body: CreateSpanIFrame, replace: bool) -> ApiResult<Written<SpanIFrame>> {
    let name = setting::name("name", &body.name)?;
    check_url("url", &body.url)?;
    let mut data = Map::new();
    data.insert("url".into(), json!(body.url));
    data.insert("description".into(), json!(body.description));
    data.insert("post_message".into(), json!(body.post_message));
    let draft = Draft { scope: setting::project(body.project_id), name, data, secret: None };
    setting::create::<Kind>(&caller, None, draft, replace).await
}

/// Creates a span iframe (`update` on the project), or answers the project's one of
/// that name unchanged (`x-bt-found-existing: true`).
#[utoipa::path(post, path = "/v1/span_iframe", tag = "SpanIframes", request_body = CreateSpanIFrame,
    responses((status = 200, body = SpanIFrame)))]
pub async fn create(caller: Caller, Body(body): Body<CreateSpanIFrame>) -> ApiResult<Written<SpanIFrame>> {
    create_or_replace(caller, body, false).await
}

/// Creates a span iframe, or replaces the project's one of that name.
#[utoipa::path(put, path = "/v1/span_iframe", tag = "SpanIframes", request_body = CreateSpanIFrame,
    responses((status = 200, body = SpanIFrame)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateSpanIFrame>) -> ApiResult<Written<SpanIFrame>> {
    create_or_replace(caller, body, true).await
}

/// One span iframe.
#[utoipa::path(get, path = "/v1/span_iframe/{span_iframe_id}", tag = "SpanIframes",
    params(("span_iframe_id" = Uuid, Path)), responses((status = 200, body = SpanIFrame)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<SpanIFrame>> {
    Ok(Json(setting::retrieve::<Kind>(&caller, id).await?))
}

/// Changes a span iframe (`update` on the project).
#[utoipa::path(patch, path = "/v1/span_iframe/{span_iframe_id}", tag = "SpanIframes",
    params(("span_iframe_id" = Uuid, Path)), request_body = Option<PatchSpanIFrame>,
    responses((status = 200, body = SpanIFrame)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchSpanIFrame>,
) -> ApiResult<Written<SpanIFrame>> {
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    if let Some(u) = &body.url {
        check_url("url", u)?;
        c.replace.insert("url".into(), json!(u));
    }
    if let Some(d) = body.description {
        c.replace.insert("description".into(), json!(d));
    }
    if let Some(p) = body.post_message {
        c.replace.insert("post_message".into(), json!(p));
    }
    setting::update::<Kind>(&caller, id, c, |_| Ok(())).await
}

/// Deletes a span iframe (`update` on the project).
#[utoipa::path(delete, path = "/v1/span_iframe/{span_iframe_id}", tag = "SpanIframes",
    params(("span_iframe_id" = Uuid, Path)), responses((status = 200, body = SpanIFrame)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<SpanIFrame>> {
    setting::remove::<Kind>(&caller, id, |_| Ok(())).await
}
