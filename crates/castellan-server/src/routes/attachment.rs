//! Attachments: `POST /attachment` (announce, get an upload URL), `POST
//! /attachment/status`, `GET /attachment` (status and a download URL), and the
//! signed URLs themselves, served by Castellan (no bearer header; they expire).
//!
//! Who may do what: any member of the org may announce an attachment; only its
//! uploader may report its status; reading it needs being its uploader or `read`
//! on a log whose rows reference it.

use super::Signature;
use crate::access::signing::SIGNED_URL_TTL_SECS;
use crate::access::{log_ref, AppState, Caller};
use crate::dataplane::public_base;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, Body, Path, Query};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use castellan_api_types::{AttachmentInfo, AttachmentRequest, AttachmentStatusRequest, AttachmentUpload};
use castellan_core::{OrgId, Permission};
use castellan_store::{BlobPurpose, BlobRecord, StoreError, UsageCounts};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const BLOB_PATH: &str = "/attachment/blob";
const STATUSES: [&str; 3] = ["uploading", "done", "error"];

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(announce, info)).routes(routes!(status)).routes(routes!(download, upload))
}

fn check_key(key: &str) -> ApiResult<()> {
    if key.is_empty() || key.len() > 256 || key.chars().any(char::is_control) {
        return Err(ApiError::invalid_body(format!("`key` must be 1 to 256 characters, got `{key}`")));
    }
    Ok(())
}

/// Where an org's attachment key is stored.
fn stored_key(org: OrgId, key: &str) -> String {
    castellan_store::attachment_blob_key(org, key)
}

fn expiry(state: &AppState) -> i64 {
    state.now() / 1_000_000 + SIGNED_URL_TTL_SECS
}

/// Announces an attachment and answers with a signed URL to `PUT` its bytes to.
/// Announcing the same key again (a retry by its uploader) gives a fresh URL.
#[utoipa::path(post, path = "/attachment", tag = "Attachments", request_body = AttachmentRequest,
    responses((status = 200, body = AttachmentUpload)))]
pub async fn announce(
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<AttachmentRequest>,
) -> ApiResult<Json<AttachmentUpload>> {
    check_key(&body.key)?;
    let org = OrgId(body.org_id);
    let permit = caller.blob_permit(Some(org))?;
    let state = caller.state();
    let taken = || ApiError::bad_request(format!("attachment key `{}` is already in use", body.key));
    let stored = stored_key(org, &body.key);
    let existing = state.blob_read(&permit).await?.get_blob(&stored).await?;
    match existing {
        Some(b) if b.purpose == BlobPurpose::Attachment && b.user_id == caller.user.id && b.org_id == org => {}
        Some(_) => return Err(taken()),
        None => {
            let mut tx = state.blob_write(&permit).await?;
            let rec = BlobRecord {
                key: stored.clone(),
                purpose: BlobPurpose::Attachment,
                org_id: org,
                user_id: caller.user.id,
                filename: body.filename.clone(),
                content_type: body.content_type.clone(),
                status: json!({"upload_status": "uploading"}),
                size_bytes: None,
                created: state.now(),
            };
            match tx.insert_blob(&rec).await {
                Err(StoreError::Conflict(_)) => return Err(taken()),
                other => other?,
            }
            tx.commit().await?;
        }
    }
    let url = state.signer().url(
        &public_base(state, &headers),
        BLOB_PATH,
        "PUT",
        BlobPurpose::Attachment,
        &stored,
        expiry(state),
    )?;
    let content_type = body.content_type.unwrap_or_else(|| "application/octet-stream".into());
    Ok(Json(AttachmentUpload { signed_url: url, headers: BTreeMap::from([("Content-Type".to_owned(), content_type)]) }))
}

/// Records the upload status the uploader reports.
#[utoipa::path(post, path = "/attachment/status", tag = "Attachments", request_body = AttachmentStatusRequest,
    responses((status = 200, description = "recorded")))]
pub async fn status(caller: Caller, Body(body): Body<AttachmentStatusRequest>) -> ApiResult<Json<Value>> {
    let upload_status = body.status.get("upload_status").and_then(Value::as_str).unwrap_or_default();
    if !STATUSES.contains(&upload_status) {
        return Err(ApiError::invalid_body(format!(
            "`status.upload_status` must be one of uploading, done, error; got `{upload_status}`"
        )));
    }
    if body.status.get("error_message").is_some_and(|m| !m.is_string() && !m.is_null()) {
        return Err(ApiError::invalid_body("`status.error_message` must be a string"));
    }
    let org = OrgId(body.org_id);
    let permit = caller.blob_permit(Some(org))?;
    let state = caller.state();
    let stored = stored_key(org, &body.key);
    let blob = state.blob_read(&permit).await?.get_blob(&stored).await?;
    let mine =
        blob.is_some_and(|b| b.purpose == BlobPurpose::Attachment && b.org_id == org && b.user_id == caller.user.id);
    if !mine {
        return Err(ApiError::NotFound(format!("attachment `{}` not found", body.key)));
    }
    let mut tx = state.blob_write(&permit).await?;
    tx.set_blob_status(&stored, &body.status).await?;
    tx.commit().await?;
    Ok(Json(json!({})))
}

/// Which attachment `GET /attachment` is about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttachmentQuery {
    /// The attachment's key, as announced.
    #[serde(default, deserialize_with = "empty_as_none")]
    key: Option<String>,
    /// An external attachment's URL, answered as it is (when no `key` is given).
    #[serde(default, deserialize_with = "empty_as_none")]
    url: Option<String>,
    /// The organization the attachment belongs to (Castellan reads the caller's only
    /// organization when it is missing).
    #[param(required = true)]
    org_id: Option<Uuid>,
    /// The file name the SDK sends; not used.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[allow(dead_code)]
    filename: Option<String>,
    /// The content type the SDK sends; not used.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[allow(dead_code)]
    content_type: Option<String>,
}

/// An attachment's status and a signed download URL (`key=`), or, for an external
/// attachment (`url=`), that URL.
#[utoipa::path(get, path = "/attachment", tag = "Attachments", params(AttachmentQuery),
    responses((status = 200, body = AttachmentInfo)))]
pub async fn info(
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<AttachmentQuery>,
) -> ApiResult<Json<AttachmentInfo>> {
    let org = match q.org_id {
        Some(o) => OrgId(o),
        None => caller.org(None).await?.id,
    };
    let permit = caller.blob_permit(Some(org))?;
    if let (None, Some(url)) = (&q.key, q.url) {
        return Ok(Json(AttachmentInfo { download_url: url, status: json!({"upload_status": "done"}) }));
    }
    let key = q.key.as_deref().ok_or_else(|| ApiError::invalid_parameter("pass `key` (or `url`)"))?;
    let state = caller.state();
    let missing = || ApiError::NotFound(format!("attachment `{key}` not found"));
    let mut tx = state.blob_read(&permit).await?;
    // Attachments announced before keys were kept per org are stored under the bare key.
    let mut stored = stored_key(org, key);
    let mut blob = tx.get_blob(&stored).await?;
    if blob.is_none() {
        stored = key.to_owned();
        blob = tx.get_blob(&stored).await?;
    }
    let blob = blob.filter(|b| b.purpose == BlobPurpose::Attachment && b.org_id == org).ok_or_else(missing)?;
    let readable = blob.user_id == caller.user.id
        || tx.attachment_refs(key).await?.into_iter().any(|log| caller.can(Permission::Read, log_ref(log)));
    if !readable {
        return Err(missing());
    }
    let url = state.signer().url(
        &public_base(state, &headers),
        BLOB_PATH,
        "GET",
        BlobPurpose::Attachment,
        &stored,
        expiry(state),
    )?;
    Ok(Json(AttachmentInfo { download_url: url, status: blob.status }))
}

fn verify(state: &AppState, method: &str, key: &str, s: &Signature) -> ApiResult<crate::access::BlobPermit> {
    let (expires, sig) = (s.expires.as_deref(), s.sig.as_deref());
    state.signer().verify(method, BlobPurpose::Attachment, key, expires, sig, state.now() / 1_000_000)
}

/// Receives an attachment's bytes at a signed URL.
#[utoipa::path(put, path = "/attachment/blob/{key}", tag = "Attachments", security(()),
    params(("key" = String, Path), Signature),
    responses((status = 200, description = "stored")))]
pub async fn upload(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(signature): Query<Signature>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let permit = verify(&state, "PUT", &key, &signature)?;
    // The signature names the purpose too; this is a second lock on the same door.
    let blob = state.blob_read(&permit).await?.get_blob(permit.key()).await?;
    let Some(blob) = blob.filter(|b| b.purpose == BlobPurpose::Attachment) else {
        return Err(ApiError::NotFound(format!("attachment `{key}` not found")));
    };
    let mut tx = state.blob_write(&permit).await?;
    // Metered (and, under a hard plan, refused) before the bytes are stored.
    let usage = UsageCounts { processed_bytes: body.len() as i64, spans: 0, scores: 0 };
    let (warning, crossings) = crate::usage::meter_one(&state, &mut *tx, blob.org_id, usage).await?;
    match tx.put_blob_data(permit.key(), &body).await {
        Err(StoreError::NotFound(_)) => return Err(ApiError::NotFound(format!("attachment `{key}` not found"))),
        other => other?,
    }
    tx.commit().await?;
    crate::usage::crossed(&state, &crossings).await;
    if let Some(w) = warning {
        crate::usage::warn(&w);
    }
    Ok(Json(json!({})))
}

/// Serves an attachment's bytes at a signed URL.
#[utoipa::path(get, path = "/attachment/blob/{key}", tag = "Attachments", security(()),
    params(("key" = String, Path), Signature),
    responses((status = 200, description = "the attachment's bytes")))]
pub async fn download(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(signature): Query<Signature>,
) -> ApiResult<Response> {
    let permit = verify(&state, "GET", &key, &signature)?;
    let mut tx = state.blob_read(&permit).await?;
    let missing = || ApiError::NotFound(format!("attachment `{key}` not found"));
    let blob = tx.get_blob(permit.key()).await?.filter(|b| b.purpose == BlobPurpose::Attachment).ok_or_else(missing)?;
    let data = tx.get_blob_data(permit.key()).await?.ok_or_else(missing)?;
    let mut resp = (StatusCode::OK, Bytes::from(data)).into_response();
    let ct = blob.content_type.as_deref().and_then(|c| HeaderValue::from_str(c).ok());
    resp.headers_mut().insert(header::CONTENT_TYPE, ct.unwrap_or(HeaderValue::from_static("application/octet-stream")));
    if let Some(v) = blob
        .filename
        .as_deref()
        .filter(|f| f.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !f.contains('"'))
        .and_then(|f| HeaderValue::from_str(&format!("attachment; filename=\"{f}\"")).ok())
    {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
