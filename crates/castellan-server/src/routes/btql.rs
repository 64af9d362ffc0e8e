//! `POST /btql`: BTQL queries over a log's rows, in the JSON, text or SQL form (see
//! `dataplane/btql.rs`), authorized as `fetch` is: `read` on the experiment, dataset,
//! playground or project logs named in `from`.

use crate::access::Caller;
use crate::error::ApiResult;
use crate::extract::Body;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use castellan_api_types::{BtqlRequest, BtqlResponse};
use utoipa_axum::{router::OpenApiRouter, routes};

/// The response header that repeats the answer's `cursor`, as Braintrust sends it.
pub const CURSOR_HEADER: &str = "x-bt-cursor";

/// This module's endpoints.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(query))
}

/// Runs a BTQL query: `select` (`*` or columns), `from` an experiment, dataset,
/// playground or project logs, `filter`, `sort`, `limit` (at most 1000) and
/// `cursor`, at the latest `version` or the one asked for. Only the newest version
/// of each row is read, deleted rows never. A query that does not parse, or names a
/// field its rows do not have, is a 400 `invalid_query` that says where.
#[utoipa::path(post, path = "/btql", tag = "BTQL", request_body = BtqlRequest, responses((status = 200, body = BtqlResponse)))]
pub async fn query(caller: Caller, Body(body): Body<BtqlRequest>) -> ApiResult<Response> {
    let answer = crate::dataplane::btql::run(&caller, body).await?;
    let header = answer.cursor.as_deref().and_then(|c| HeaderValue::from_str(c).ok());
    let mut resp = axum::Json(answer).into_response();
    if let Some(v) = header {
        resp.headers_mut().insert(HeaderName::from_static(CURSOR_HEADER), v);
    }
    Ok(resp)
}
