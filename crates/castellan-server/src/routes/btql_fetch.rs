//! `POST /btql`, for now only in the one shape the SDKs' record fetchers send
//! (`dataset.fetch()`, `Eval` over a dataset, an opened experiment in the TypeScript
//! SDK): every row of one experiment, dataset or project's logs, a page at a time.
//! That is `POST /v1/<object>/{id}/fetch` (same rows, cursor, version and
//! authorization) with another envelope. Any other query answers 400: the BTQL
//! engine (parsed queries, filters, projections, the text and SQL forms) is built
//! separately and replaces this module, whose shape is a subset of it.

use crate::access::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Body;
use axum::Json;
use castellan_api_types::FetchEvents;
use castellan_store::{EventKind, EventObject};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(btql))
}

/// A BTQL request: a query in JSON form, and how to run it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BtqlRequest {
    /// The query. Served for now: `{"select": [{"op": "star"}], "from": {"op":
    /// "function", "name": {"op": "ident", "name": ["experiment" | "dataset" |
    /// "project_logs"]}, "args": [{"op": "literal", "value": "<id>"}]}, "limit",
    /// "cursor"}`.
    #[schema(value_type = Object)]
    pub query: Value,
    /// Read as of this transaction id.
    #[serde(default)]
    pub version: Option<String>,
    /// Accepted and ignored (`use_columnstore`, `brainstore_realtime`,
    /// `query_source`, `audit_log`, …) unless named above.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub rest: Map<String, Value>,
}

/// The rows of a BTQL query, a page at a time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BtqlResponse {
    /// The rows.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
    /// Pass back as `query.cursor` for the next page; null on the last one.
    pub cursor: Option<String>,
}

/// What the query names: the object read, and the page.
struct ObjectQuery {
    log: EventObject,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn unsupported(what: &str) -> ApiError {
    ApiError::invalid_body(format!(
        "this BTQL query is not served yet ({what}): only every row of one experiment, dataset or project's logs \
         (`select: [{{op: star}}]`, `from: <type>(<id>)`, `limit`, `cursor`)"
    ))
}

/// Parses the record fetchers' query; anything else is refused as unsupported.
fn parse(query: &Value) -> ApiResult<ObjectQuery> {
    let Some(q) = query.as_object() else { return Err(unsupported("the query is not a JSON object")) };
    if let Some(k) = q.keys().find(|k| !["select", "from", "limit", "cursor"].contains(&k.as_str())) {
        return Err(unsupported(&format!("`{k}`")));
    }
    let star = serde_json::json!([{"op": "star"}]);
    if q.get("select") != Some(&star) {
        return Err(unsupported("`select` other than `*`"));
    }
    let from = q.get("from").ok_or_else(|| unsupported("no `from`"))?;
    let name = from.pointer("/name/name").and_then(Value::as_array).map(Vec::as_slice);
    let kind = match (from.get("op").and_then(Value::as_str), name) {
        (Some("function"), Some([n])) => match n.as_str() {
            Some("experiment") => EventKind::Experiment,
            Some("dataset") => EventKind::Dataset,
            Some("project_logs") => EventKind::ProjectLogs,
            _ => return Err(unsupported(&format!("`from` `{n}`"))),
        },
        _ => return Err(unsupported("`from` that is not `<type>(<id>)`")),
    };
    let id = match from.get("args").and_then(Value::as_array).map(Vec::as_slice) {
        Some([arg]) if arg.get("op").and_then(Value::as_str) == Some("literal") => {
            arg.get("value").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok())
        }
        _ => None,
    };
    let id = id.ok_or_else(|| ApiError::invalid_body("`query.from.args` must be one literal object id"))?;
    let limit = match q.get("limit") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| ApiError::invalid_body("`query.limit` must be a whole number"))?),
    };
    let cursor = match q.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c.clone()),
        Some(_) => return Err(ApiError::invalid_body("`query.cursor` must be a string")),
    };
    Ok(ObjectQuery { log: EventObject { kind, id }, limit, cursor })
}

/// Runs a BTQL query (for now only the record fetchers' shape, see the module
/// documentation): `POST /v1/<object>/{id}/fetch`, authorized the same way (`read`
/// on the experiment, dataset or project logs; 404 for one the caller cannot read).
#[utoipa::path(post, path = "/btql", tag = "Events", request_body = BtqlRequest,
    responses((status = 200, body = BtqlResponse)))]
pub async fn btql(caller: Caller, Body(body): Body<BtqlRequest>) -> ApiResult<Json<BtqlResponse>> {
    let q = parse(&body.query)?;
    let req = FetchEvents { limit: q.limit, cursor: q.cursor, version: body.version, ..Default::default() };
    let page = super::events::fetch(&caller, q.log, req).await?;
    Ok(Json(BtqlResponse { data: page.events, cursor: page.cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(kind: &str) -> Value {
        json!({"select": [{"op": "star"}],
               "from": {"op": "function", "name": {"op": "ident", "name": [kind]},
                        "args": [{"op": "literal", "value": "0190a8a0-0000-7000-8000-000000000001"}]},
               "cursor": null, "limit": 1000})
    }

    #[test]
    fn the_record_fetchers_query_names_its_object_and_page() {
        let q = parse(&query("dataset")).expect("served");
        assert_eq!(q.log.kind, EventKind::Dataset);
        assert_eq!(q.limit, Some(1000));
        assert_eq!(q.cursor, None);
        assert_eq!(parse(&query("project_logs")).expect("served").log.kind, EventKind::ProjectLogs);
    }

    #[test]
    fn any_other_query_is_refused_as_not_served_yet() {
        let mut filtered = query("experiment");
        filtered["filter"] =
            json!({"op": "eq", "left": {"op": "ident", "name": ["id"]}, "right": {"op": "literal", "value": 1}});
        for q in [
            filtered,
            query("project_prompts"),
            json!("select: * from dataset('x')"),
            json!({"from": query("dataset")["from"]}),
        ] {
            let e = parse(&q).err().expect("refused");
            assert!(e.to_string().contains("not served yet"), "{e}");
        }
    }
}
