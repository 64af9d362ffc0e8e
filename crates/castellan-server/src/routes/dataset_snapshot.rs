//! `/v1/dataset_snapshot`: named versions of a dataset (its rows as of a
//! transaction). Reading them takes `read` on the dataset; creating, renaming or
//! deleting one takes `update` on it.

use super::setting::{self, text, Change, Draft, Setting};
use super::{OrgName, Written};
use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Page, Path, Query};
use axum::Json;
use castellan_api_types::{format_time, CreateDatasetSnapshot, DatasetSnapshot, ListResponse, PatchDatasetSnapshot};
use castellan_core::{ObjectRef, ObjectType};
use castellan_store::{AdminFilter, AdminKind, AdminRecord};
use serde::Deserialize;
use serde_json::{json, Map};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(list, create, replace)).routes(routes!(retrieve, update, remove))
}

pub(crate) struct Kind;

impl Setting for Kind {
    const KIND: AdminKind = AdminKind::DatasetSnapshot;
    type Wire = DatasetSnapshot;

    fn wire(a: &AdminRecord) -> DatasetSnapshot {
        DatasetSnapshot {
            id: a.id,
            dataset_id: a.scope.object_id,
            name: a.name.clone(),
            description: text(a, "description"),
            xact_id: text(a, "xact_id").unwrap_or_default(),
            created: Some(format_time(a.created)),
        }
    }
}

/// A transaction id: 1 to 19 decimal digits.
fn check_xact(x: &str) -> ApiResult<()> {
    if x.is_empty() || x.len() > 19 || !x.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_body(format!("`xact_id` must be a transaction id (up to 19 digits), got `{x}`")));
    }
    Ok(())
}

/// The snapshot list's filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DatasetSnapshotFilters {
    /// Only these: ids, repeated or comma-separated.
    #[serde(default)]
    ids: Vec<Uuid>,
    /// Only snapshots of this name.
    #[serde(default, deserialize_with = "empty_as_none")]
    dataset_snapshot_name: Option<String>,
    /// Only snapshots of this dataset (extension).
    dataset_id: Option<Uuid>,
}

/// Snapshots of the datasets the caller can read, newest first.
#[utoipa::path(get, path = "/v1/dataset_snapshot", tag = "DatasetSnapshots",
    params(Page, DatasetSnapshotFilters, OrgName), responses((status = 200, body = ListResponse<DatasetSnapshot>)))]
pub async fn list(
    caller: Caller,
    Query(page): Query<Page>,
    Query(f): Query<DatasetSnapshotFilters>,
    Query(org): Query<OrgName>,
) -> ApiResult<Json<ListResponse<DatasetSnapshot>>> {
    let filter = AdminFilter {
        scope_type: Some(ObjectType::Dataset),
        scope_id: f.dataset_id,
        ids: f.ids,
        name: f.dataset_snapshot_name,
        ..setting::filter::<Kind>()
    };
    let objects = setting::list::<Kind>(&caller, &page, org.get(), filter, |_| true).await?;
    Ok(Json(ListResponse { objects }))
}

async fn create_or_replace(
    caller: Caller,
    body: CreateDatasetSnapshot,
    replace: bool,
) -> ApiResult<Written<DatasetSnapshot>> {
    let name = setting::name("name", &body.name)?;
    check_xact(&body.xact_id)?;
    let mut data = Map::new();
    data.insert("xact_id".into(), json!(body.xact_id));
    data.insert("description".into(), json!(body.description));
    let scope = ObjectRef::new(ObjectType::Dataset, body.dataset_id);
    setting::create::<Kind>(&caller, None, Draft { scope, name, data, secret: None }, replace).await
}

/// Creates a snapshot (`update` on the dataset), or answers the dataset's snapshot
/// of that name unchanged (`x-bt-found-existing: true`).
#[utoipa::path(post, path = "/v1/dataset_snapshot", tag = "DatasetSnapshots", request_body = CreateDatasetSnapshot,
    responses((status = 200, body = DatasetSnapshot)))]
pub async fn create(caller: Caller, Body(body): Body<CreateDatasetSnapshot>) -> ApiResult<Written<DatasetSnapshot>> {
    create_or_replace(caller, body, false).await
}

/// Creates a snapshot, or replaces the dataset's snapshot of that name.
#[utoipa::path(put, path = "/v1/dataset_snapshot", tag = "DatasetSnapshots", request_body = CreateDatasetSnapshot,
    responses((status = 200, body = DatasetSnapshot)))]
pub async fn replace(caller: Caller, Body(body): Body<CreateDatasetSnapshot>) -> ApiResult<Written<DatasetSnapshot>> {
    create_or_replace(caller, body, true).await
}

/// One snapshot.
#[utoipa::path(get, path = "/v1/dataset_snapshot/{dataset_snapshot_id}", tag = "DatasetSnapshots",
    params(("dataset_snapshot_id" = Uuid, Path)), responses((status = 200, body = DatasetSnapshot)))]
pub async fn retrieve(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<DatasetSnapshot>> {
    Ok(Json(setting::retrieve::<Kind>(&caller, id).await?))
}

/// Renames a snapshot or changes its description (`update` on the dataset).
#[utoipa::path(patch, path = "/v1/dataset_snapshot/{dataset_snapshot_id}", tag = "DatasetSnapshots",
    params(("dataset_snapshot_id" = Uuid, Path)), request_body = Option<PatchDatasetSnapshot>,
    responses((status = 200, body = DatasetSnapshot)))]
pub async fn update(
    caller: Caller,
    Path(id): Path<Uuid>,
    Body(body): Body<PatchDatasetSnapshot>,
) -> ApiResult<Written<DatasetSnapshot>> {
    let mut c =
        Change { name: body.name.as_deref().map(|n| setting::name("name", n)).transpose()?, ..Change::default() };
    if let Some(d) = body.description {
        c.replace.insert("description".into(), json!(d));
    }
    setting::update::<Kind>(&caller, id, c, |_| Ok(())).await
}

/// Deletes a snapshot (`update` on the dataset); the dataset's rows stay.
#[utoipa::path(delete, path = "/v1/dataset_snapshot/{dataset_snapshot_id}", tag = "DatasetSnapshots",
    params(("dataset_snapshot_id" = Uuid, Path)), responses((status = 200, body = DatasetSnapshot)))]
pub async fn remove(caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Written<DatasetSnapshot>> {
    setting::remove::<Kind>(&caller, id, |_| Ok(())).await
}
