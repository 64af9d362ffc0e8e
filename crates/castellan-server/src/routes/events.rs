//! What the event endpoints of experiments, datasets and project logs share:
//! `insert`, `fetch` (both forms) and `feedback`.

use crate::access::Caller;
use crate::dataplane::ingest::{ingest, IngestOptions};
use crate::dataplane::rows::{self, decode_cursor, encode_cursor, event_json};
use crate::dataplane::DataPlane;
use crate::error::{ApiError, ApiResult};
use crate::extract::{empty_as_none, MAX_LIMIT};
use castellan_api_types::{
    Feedback, FeedbackResponse, FetchEvents, FetchEventsResponse, InsertEvents, InsertEventsResponse,
};
use castellan_store::{EventObject, EventQuery, XactId};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::IntoParams;

/// Writes `events` into `log` (`update` on it).
pub async fn insert(
    caller: &Caller,
    data: &DataPlane,
    log: EventObject,
    body: InsertEvents,
) -> ApiResult<InsertEventsResponse> {
    let parsed = body
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| rows::parse(i, e, Some(log)))
        .collect::<ApiResult<Vec<_>>>()?;
    if parsed.is_empty() {
        // Still checked: an empty insert must not tell an outsider the log exists.
        caller.require_event_writes(&[log]).await?;
    }
    let done = ingest(caller, data, parsed, IngestOptions { scan_attachments: true, consume_blob: None }).await?;
    Ok(InsertEventsResponse { row_ids: done.row_ids })
}

/// The fetch parameters of the `GET` form: those of the `POST` form's body.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FetchQuery {
    /// The most rows to return, 1 to 1000 (the default).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<usize>)]
    limit: Option<i64>,
    /// Where the next page starts: the previous page's `cursor`.
    #[serde(default, deserialize_with = "empty_as_none")]
    cursor: Option<String>,
    /// The version to read at, a transaction id (19 digits); default: the latest.
    #[serde(default, deserialize_with = "empty_as_none")]
    version: Option<String>,
    /// Deprecated spelling of `version` (Braintrust's older manual pagination
    /// cursor, with `max_root_span_id`): read as of this transaction id (19 digits).
    /// `version` wins when both are given.
    #[serde(default, deserialize_with = "empty_as_none")]
    max_xact_id: Option<String>,
    /// Deprecated; accepted and ignored, as in the `POST` form (page with `cursor`).
    #[serde(default, deserialize_with = "empty_as_none")]
    max_root_span_id: Option<String>,
}

impl From<FetchQuery> for FetchEvents {
    fn from(q: FetchQuery) -> FetchEvents {
        FetchEvents {
            limit: q.limit,
            cursor: q.cursor,
            version: q.version,
            max_xact_id: q.max_xact_id,
            max_root_span_id: q.max_root_span_id,
        }
    }
}

fn parse_version(field: &str, s: &str) -> ApiResult<XactId> {
    XactId::parse(s).ok_or_else(|| {
        ApiError::invalid_parameter(format!("`{field}` must be a transaction id (19 digits), got `{s}`"))
    })
}

/// One page of `log` (`read` on it): the newest version of each live row at the
/// version asked for (or now), newest transaction first.
pub async fn fetch(caller: &Caller, log: EventObject, req: FetchEvents) -> ApiResult<FetchEventsResponse> {
    let limit = match req.limit {
        None => MAX_LIMIT,
        Some(n) if n < 1 => return Err(ApiError::invalid_parameter(format!("`limit` must be at least 1, got `{n}`"))),
        Some(n) if n as u64 > MAX_LIMIT as u64 => {
            return Err(ApiError::invalid_parameter(format!(
                "`limit` must be at most {MAX_LIMIT}, got `{n}`; page with `cursor`"
            )))
        }
        Some(n) => n as usize,
    };
    let cursor = req.cursor.as_deref().map(decode_cursor).transpose()?;
    let pinned = match (&req.version, &req.max_xact_id) {
        (Some(v), _) => Some(parse_version("version", v)?),
        (None, Some(v)) => Some(parse_version("max_xact_id", v)?),
        (None, None) => None,
    };
    let (permit, project) = caller.require_event_read(log).await?;
    let org = caller
        .state()
        .index()
        .snapshot()
        .org_of(castellan_core::ObjectRef::new(castellan_core::ObjectType::Project, project.0));
    let mut tx = caller.state().read(&permit).await?;
    // Every page of one fetch reads the version the first page read at, so rows
    // written meanwhile neither appear twice nor push others off the pages.
    let (version, after) = match cursor {
        Some((v, after)) => (v, Some(after)),
        None => (
            match pinned {
                Some(v) => v,
                None => tx.current_xact_id().await?,
            },
            None,
        ),
    };
    let rows = tx.fetch_events(&EventQuery { object: log, version, after, limit }).await?;
    let next = if rows.len() == limit {
        rows.last().map(|e| encode_cursor(version, &(e.xact_id, e.row_id.clone())))
    } else {
        None
    };
    Ok(FetchEventsResponse { events: rows.into_iter().map(|e| event_json(log, org, e)).collect(), cursor: next })
}

/// Feedback on rows of `log` (`update` on it): each item merges its scores,
/// expected value, metadata and tags into the row; a comment becomes a row of its
/// own that points at it.
pub async fn feedback(
    caller: &Caller,
    data: &DataPlane,
    log: EventObject,
    body: Feedback,
) -> ApiResult<FeedbackResponse> {
    let mut events = Vec::new();
    for (i, item) in body.feedback.into_iter().enumerate() {
        if item.id.is_empty() {
            return Err(ApiError::invalid_body(format!("`feedback[{i}].id` must not be empty")));
        }
        let source = item.source.unwrap_or_else(|| "external".into());
        if !["app", "api", "external"].contains(&source.as_str()) {
            return Err(ApiError::invalid_body(format!(
                "`feedback[{i}].source` must be one of app, api, external; got `{source}`"
            )));
        }
        for (field, v) in [("scores", &item.scores), ("metadata", &item.metadata)] {
            if v.as_ref().is_some_and(|v| !v.is_object()) {
                return Err(ApiError::invalid_body(format!("`feedback[{i}].{field}` must be an object")));
            }
        }
        let mut m = Map::new();
        m.insert("id".into(), Value::String(item.id.clone()));
        m.insert("_is_merge".into(), Value::Bool(true));
        for (k, v) in [("scores", item.scores), ("expected", item.expected), ("metadata", item.metadata)] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        if let Some(tags) = item.tags {
            m.insert("tags".into(), json!(tags));
        }
        events.push(Value::Object(m));
        if let Some(text) = item.comment {
            events.push(json!({"comment": {"text": text}, "origin": {"id": item.id}, "source": source}));
        }
    }
    insert(caller, data, log, InsertEvents { events }).await?;
    Ok(FeedbackResponse { status: "success".into() })
}

/// Defines a log's four event handlers, `insert`, `fetch_get`, `fetch_post` and
/// `feedback`, with their OpenAPI descriptions: the same code for experiments, datasets
/// and project logs, only the paths and words differ.
macro_rules! event_endpoints {
    (
        kind: $kind:expr, id: $id:tt, tag: $tag:tt,
        insert: ($insert:tt, $insert_doc:tt $(,)?),
        fetch: ($fetch:tt, $fetch_get_doc:tt, $fetch_post_doc:tt $(,)?),
        feedback: ($feedback:tt, $feedback_doc:tt $(,)?) $(,)?
    ) => {
        fn event_object(id: uuid::Uuid) -> castellan_store::EventObject {
            castellan_store::EventObject { kind: $kind, id }
        }

        #[doc = $insert_doc]
        #[utoipa::path(post, path = $insert, tag = $tag, params(($id = uuid::Uuid, Path)), request_body = InsertEvents, responses((status = 200, body = InsertEventsResponse)))]
        pub async fn insert(
            caller: $crate::access::Caller,
            axum::extract::State(data): axum::extract::State<$crate::dataplane::DataPlane>,
            $crate::extract::Path(id): $crate::extract::Path<uuid::Uuid>,
            $crate::extract::Body(body): $crate::extract::Body<castellan_api_types::InsertEvents>,
        ) -> $crate::error::ApiResult<axum::Json<castellan_api_types::InsertEventsResponse>> {
            Ok(axum::Json($crate::routes::events::insert(&caller, &data, event_object(id), body).await?))
        }

        #[doc = $fetch_get_doc]
        #[utoipa::path(get, path = $fetch, tag = $tag, params(($id = uuid::Uuid, Path), crate::routes::events::FetchQuery), responses((status = 200, body = FetchEventsResponse)))]
        pub async fn fetch_get(
            caller: $crate::access::Caller,
            $crate::extract::Path(id): $crate::extract::Path<uuid::Uuid>,
            $crate::extract::Query(q): $crate::extract::Query<$crate::routes::events::FetchQuery>,
        ) -> $crate::error::ApiResult<axum::Json<castellan_api_types::FetchEventsResponse>> {
            Ok(axum::Json($crate::routes::events::fetch(&caller, event_object(id), q.into()).await?))
        }

        #[doc = $fetch_post_doc]
        #[utoipa::path(post, path = $fetch, tag = $tag, params(($id = uuid::Uuid, Path)), request_body = Option<FetchEvents>, responses((status = 200, body = FetchEventsResponse)))]
        pub async fn fetch_post(
            caller: $crate::access::Caller,
            $crate::extract::Path(id): $crate::extract::Path<uuid::Uuid>,
            $crate::extract::Body(body): $crate::extract::Body<castellan_api_types::FetchEvents>,
        ) -> $crate::error::ApiResult<axum::Json<castellan_api_types::FetchEventsResponse>> {
            Ok(axum::Json($crate::routes::events::fetch(&caller, event_object(id), body).await?))
        }

        #[doc = $feedback_doc]
        #[utoipa::path(post, path = $feedback, tag = $tag, params(($id = uuid::Uuid, Path)), request_body = Feedback, responses((status = 200, body = FeedbackResponse)))]
        pub async fn feedback(
            caller: $crate::access::Caller,
            axum::extract::State(data): axum::extract::State<$crate::dataplane::DataPlane>,
            $crate::extract::Path(id): $crate::extract::Path<uuid::Uuid>,
            $crate::extract::Body(body): $crate::extract::Body<castellan_api_types::Feedback>,
        ) -> $crate::error::ApiResult<axum::Json<castellan_api_types::FeedbackResponse>> {
            Ok(axum::Json($crate::routes::events::feedback(&caller, &data, event_object(id), body).await?))
        }
    };
}
pub(crate) use event_endpoints;
