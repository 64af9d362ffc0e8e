//! `GET /version`, `POST /logs3` (the SDK's write path for every object type) and
//! `/logs3/overflow` (payloads over the advertised size go through a signed upload).

use super::Signature;
use crate::access::signing::SIGNED_URL_TTL_SECS;
use crate::access::{AppState, Caller};
use crate::dataplane::ingest::{ingest, IngestOptions};
use crate::dataplane::DataPlane;
use crate::dataplane::{public_base, rows};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, Body, Path, Query};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use bytes::Bytes;
use castellan_api_types::{Logs3Response, OverflowRequest, SignedUpload, VersionInfo};
use castellan_core::{ObjectRef, ObjectType, OrgId};
use castellan_store::{BlobPurpose, BlobRecord, EventObject, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The reference type of an overflow payload in `rows`.
const OVERFLOW_TYPE: &str = "logs3_overflow";
/// The most a single `/logs3` request is advertised to carry (the SDK's own cap).
const MAX_ADVERTISED: usize = 6 * 1024 * 1024;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new()
        .routes(routes!(version))
        .routes(routes!(logs3))
        .routes(routes!(overflow))
        .routes(routes!(overflow_upload))
}

/// The `/logs3` size limit the server advertises: a quarter of the largest body it
/// accepts (so overflow uploads, which may be that large, always fit), at most 6 MiB.
pub fn payload_limit(state: &AppState) -> usize {
    (state.config().max_body_bytes / 4).min(MAX_ADVERTISED)
}

/// Server version and the `/logs3` payload limit; needs no credential.
#[utoipa::path(get, path = "/version", tag = "Logs", security(()), responses((status = 200, body = VersionInfo)))]
pub async fn version(State(state): State<AppState>) -> Json<VersionInfo> {
    Json(VersionInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        logs3_payload_max_bytes: payload_limit(&state) as u64,
    })
}

#[derive(Deserialize)]
struct Envelope {
    rows: Value,
    #[serde(default)]
    #[allow(dead_code)]
    api_version: Option<i64>,
}

fn mentions_attachment(body: &[u8]) -> bool {
    let marker = rows::ATTACHMENT_TYPE.as_bytes();
    body.windows(marker.len()).any(|w| w == marker)
}

async fn write(
    caller: &Caller,
    data: &DataPlane,
    list: Vec<Value>,
    scan: bool,
    consume: Option<String>,
) -> ApiResult<Logs3Response> {
    let parsed = list.into_iter().enumerate().map(|(i, r)| rows::parse(i, r, None)).collect::<ApiResult<Vec<_>>>()?;
    let done = ingest(caller, data, parsed, IngestOptions { scan_attachments: scan, consume_blob: consume }).await?;
    Ok(Logs3Response { xact_id: done.xact_id.map(|x| x.to_string()), rows: done.written as u64 })
}

/// Writes rows for any mix of experiments, datasets, project logs and playgrounds
/// (`{"rows": [...], "api_version": 2}`; the body is JSON whatever its content
/// type). Every object named is checked (`update`); one refusal refuses the whole
/// request. All rows get one new transaction id. `rows` may instead reference an
/// uploaded overflow payload (`{"type": "logs3_overflow", "key": …}`).
#[utoipa::path(post, path = "/logs3", tag = "Logs", request_body(content = Object, description = "{\"rows\": [...], \"api_version\": 2}"),
    responses((status = 200, body = Logs3Response)))]
pub async fn logs3(caller: Caller, State(data_plane): State<DataPlane>, body: Bytes) -> ApiResult<Json<Logs3Response>> {
    let env: Envelope = parse_json(&body)?;
    match env.rows {
        Value::Array(list) => Ok(Json(write(&caller, &data_plane, list, mentions_attachment(&body), None).await?)),
        Value::Object(r) if r.get("type").and_then(Value::as_str) == Some(OVERFLOW_TYPE) => {
            let key = r.get("key").and_then(Value::as_str).unwrap_or_default().to_owned();
            let permit = caller.blob_permit(None)?;
            let mut tx = caller.state().blob_read(&permit).await?;
            let missing = || ApiError::NotFound(format!("overflow payload `{key}` not found"));
            let blob = tx.get_blob(&key).await?.ok_or_else(missing)?;
            if blob.purpose != BlobPurpose::Logs3Overflow || blob.user_id != caller.user.id {
                return Err(missing());
            }
            let data = tx.get_blob_data(&key).await?.ok_or_else(|| {
                ApiError::bad_request(format!("overflow payload `{key}` was announced but never uploaded"))
            })?;
            drop(tx);
            let inner: Envelope = parse_json(&data)?;
            let Value::Array(list) = inner.rows else {
                return Err(ApiError::invalid_body("an overflow payload's `rows` must be an array"));
            };
            Ok(Json(write(&caller, &data_plane, list, mentions_attachment(&data), Some(key)).await?))
        }
        _ => Err(ApiError::invalid_body("`rows` must be an array of rows or a `logs3_overflow` reference")),
    }
}

/// Announces an oversized payload and answers with a signed URL to `PUT` it to.
/// Every object the payload's rows name is checked now (`update`).
#[utoipa::path(post, path = "/logs3/overflow", tag = "Logs", request_body = OverflowRequest,
    responses((status = 200, body = SignedUpload)))]
pub async fn overflow(
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<OverflowRequest>,
) -> ApiResult<Json<SignedUpload>> {
    let mut logs: Vec<EventObject> = Vec::new();
    for (i, r) in body.rows.iter().enumerate() {
        let ids = r.get("object_ids").and_then(Value::as_object).ok_or_else(|| {
            ApiError::invalid_body(format!("`rows[{i}].object_ids` must be an object naming the row's object"))
        })?;
        let log = rows::route(i, ids)?;
        if !logs.contains(&log) {
            logs.push(log);
        }
    }
    let permit = caller.require_event_writes(&logs).await?;
    let (_, project) =
        *permit.logs().first().ok_or_else(|| ApiError::invalid_body("`rows` must name at least one object"))?;
    let org = caller
        .state()
        .index()
        .snapshot()
        .org_of(ObjectRef::new(ObjectType::Project, project.0))
        .map(OrgId)
        .ok_or_else(|| ApiError::not_found("project", project))?;
    let key = uuid::Uuid::new_v4().to_string();
    let state = caller.state();
    let blob_permit = caller.blob_permit(Some(org))?;
    let mut tx = state.blob_write(&blob_permit).await?;
    tx.insert_blob(&BlobRecord {
        key: key.clone(),
        purpose: BlobPurpose::Logs3Overflow,
        org_id: org,
        user_id: caller.user.id,
        filename: None,
        content_type: Some("application/json".into()),
        status: json!({"upload_status": "uploading"}),
        size_bytes: None,
        created: state.now(),
    })
    .await?;
    tx.commit().await?;
    let expires = state.now() / 1_000_000 + SIGNED_URL_TTL_SECS;
    let url = state.signer().url(
        &public_base(state, &headers),
        "/logs3/overflow",
        "PUT",
        BlobPurpose::Logs3Overflow,
        &key,
        expires,
    )?;
    let headers = BTreeMap::from([("Content-Type".to_owned(), "application/json".to_owned())]);
    Ok(Json(SignedUpload { method: "PUT".into(), signed_url: url, headers, key }))
}

/// Receives an overflow payload at a signed URL (no bearer header; the signature is
/// the authorization, and it expires).
#[utoipa::path(put, path = "/logs3/overflow/{key}", tag = "Logs", security(()),
    params(("key" = String, Path), Signature),
    responses((status = 200, description = "stored")))]
pub async fn overflow_upload(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(signature): Query<Signature>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let permit = state.signer().verify(
        "PUT",
        BlobPurpose::Logs3Overflow,
        &key,
        signature.expires.as_deref(),
        signature.sig.as_deref(),
        state.now() / 1_000_000,
    )?;
    let blob = state.blob_read(&permit).await?.get_blob(permit.key()).await?;
    if blob.is_none_or(|b| b.purpose != BlobPurpose::Logs3Overflow) {
        return Err(ApiError::NotFound(format!("overflow payload `{key}` not found")));
    }
    let mut tx = state.blob_write(&permit).await?;
    match tx.put_blob_data(permit.key(), &body).await {
        Err(StoreError::NotFound(_)) => return Err(ApiError::NotFound(format!("overflow payload `{key}` not found"))),
        other => other?,
    }
    tx.commit().await?;
    Ok(Json(json!({})))
}
