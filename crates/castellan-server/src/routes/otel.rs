//! `POST /otel/v1/traces`: OpenTelemetry traces (OTLP/HTTP, protobuf or JSON) written
//! as log rows of a project or an experiment, like `/logs3` writes them. The
//! destination is the `x-bt-parent` header (`project_id:…`, `project_name:…`,
//! `experiment_id:…`), or a span's own `braintrust.parent` attribute; each is
//! authorized like a `/logs3` write to it (`update`), and one refusal refuses the
//! request. A `project_name` that names no project creates it, if the caller may.

use crate::access::Caller;
use crate::dataplane::ingest::{ingest, IngestOptions};
use crate::dataplane::otel::{decode_json, decode_protobuf, span_row, Destination};
use crate::dataplane::{rows, DataPlane};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_json, Body};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use castellan_api_types::CreateProject;
use std::collections::HashMap;
use utoipa_axum::{router::OpenApiRouter, routes};

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(traces))
}

/// The header naming where spans go.
const PARENT_HEADER: &str = "x-bt-parent";

/// Resolves a parent (`project_id:…`, `project_name:…`, `experiment_id:…`).
async fn destination(caller: &Caller, parent: &str) -> ApiResult<Destination> {
    let bad = || {
        ApiError::invalid_parameter(format!(
            "`{PARENT_HEADER}` must be `project_id:<id>`, `project_name:<name>` or `experiment_id:<id>`, got `{parent}`"
        ))
    };
    let (kind, value) = parent.split_once(':').ok_or_else(bad)?;
    let id = || uuid::Uuid::parse_str(value.trim()).map_err(|_| bad());
    match kind.trim() {
        "project_id" => Ok(Destination::ProjectLogs(id()?)),
        "experiment_id" => Ok(Destination::Experiment(id()?)),
        "project_name" => {
            let name = value.trim();
            // Create-or-get, exactly as `POST /v1/project` does it.
            let body =
                CreateProject { name: name.to_owned(), description: None, org_name: None, project_group_name: None };
            let p = super::project::create(caller.clone(), Body(body)).await?;
            Ok(Destination::ProjectLogs(p.body.id))
        }
        _ => Err(bad()),
    }
}

/// An OTLP/HTTP trace export. `Content-Type: application/x-protobuf` (answered in
/// protobuf) or `application/json`; compressed bodies are refused (415).
#[utoipa::path(post, path = "/otel/v1/traces", tag = "Logs",
    params(("x-bt-parent" = String, Header, description = "`project_id:<id>`, `project_name:<name>` or `experiment_id:<id>`")),
    request_body(content = Object, description = "an OTLP ExportTraceServiceRequest"),
    responses((status = 200, description = "an ExportTraceServiceResponse")))]
pub async fn traces(
    caller: Caller,
    State(data): State<DataPlane>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let text = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let encoding = text(header::CONTENT_ENCODING);
    if !encoding.is_empty() && encoding != "identity" {
        return Err(ApiError::UnsupportedMediaType(format!(
            "`Content-Encoding: {encoding}` is not accepted: send OTLP uncompressed"
        )));
    }
    let content_type = text(header::CONTENT_TYPE);
    let protobuf =
        content_type.starts_with("application/x-protobuf") || content_type.starts_with("application/protobuf");
    let request = if protobuf {
        decode_protobuf(&body).map_err(|e| ApiError::invalid_body(e.to_string()))?
    } else if content_type.starts_with("application/json") {
        decode_json(&parse_json(&body)?).map_err(|e| ApiError::invalid_body(e.to_string()))?
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "OTLP/HTTP is `application/x-protobuf` or `application/json`, got `{content_type}`"
        )));
    };
    let header_parent = headers.get(PARENT_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut resolved: HashMap<String, Destination> = HashMap::new();
    let mut list = Vec::new();
    for rs in &request.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let own = span.attributes.iter().find(|kv| kv.key == "braintrust.parent").and_then(|kv| {
                    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                        Some(crate::dataplane::otel::any_value::Value::StringValue(s)) => Some(s.clone()),
                        _ => None,
                    }
                });
                let parent = own.or_else(|| header_parent.clone()).ok_or_else(|| {
                    ApiError::invalid_parameter(format!(
                        "`{PARENT_HEADER}` is required (`project_id:<id>`, `project_name:<name>` or `experiment_id:<id>`)"
                    ))
                })?;
                let dest = match resolved.get(&parent) {
                    Some(d) => *d,
                    None => {
                        let d = destination(&caller, &parent).await?;
                        resolved.insert(parent, d);
                        d
                    }
                };
                list.push(span_row(span, dest).map_err(|e| ApiError::invalid_body(e.to_string()))?);
            }
        }
    }
    let parsed = list.into_iter().enumerate().map(|(i, r)| rows::parse(i, r, None)).collect::<ApiResult<Vec<_>>>()?;
    ingest(&caller, &data, parsed, IngestOptions { scan_attachments: false, consume_blob: None }).await?;
    Ok(if protobuf {
        // An empty ExportTraceServiceResponse: everything was accepted.
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"))], Vec::<u8>::new()).into_response()
    } else {
        axum::Json(serde_json::json!({})).into_response()
    })
}
