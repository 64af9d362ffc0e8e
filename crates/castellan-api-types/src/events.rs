//! Events of experiments, datasets and project logs: insert, fetch, feedback,
//! summaries, `/logs3`, attachments.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST …/insert`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InsertEvents {
    /// Rows: replaced (default), merged (`_is_merge: true`) or deleted
    /// (`_object_delete: true`), by `id`.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
}

/// The answer to an insert: the row ids, in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InsertEventsResponse {
    /// One per event.
    pub row_ids: Vec<String>,
}

/// `POST …/fetch` (the `GET` form takes the same fields as query parameters). Every
/// field is optional, and so is the body: an absent one reads the first page.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct FetchEvents {
    /// Rows per page (at most 1000, the default).
    #[serde(default)]
    pub limit: Option<i64>,
    /// The `cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Read as of this transaction id.
    #[serde(default)]
    pub version: Option<String>,
    /// Deprecated spelling of `version` (Braintrust's older manual pagination
    /// cursor, with `max_root_span_id`): read as of this transaction id (19 digits).
    /// `version` wins when both are given.
    #[serde(default)]
    pub max_xact_id: Option<String>,
    /// Deprecated; accepted and ignored (page with `cursor`).
    #[serde(default)]
    pub max_root_span_id: Option<String>,
}

/// One page of events, newest transaction first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FetchEventsResponse {
    /// The rows, each with `id`, `_xact_id`, `created` and its object's ids.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    /// Pass back for the next page; null on the last one.
    pub cursor: Option<String>,
}

/// A field whose presence matters: absent stays `None` (by `#[serde(default)]`), any
/// value given, `null` included, is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// One piece of feedback on a row.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackItem {
    /// The row.
    pub id: String,
    /// Scores to merge in: name to number (0 to 1) or null. (Castellan extension on
    /// datasets.)
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub scores: Option<Value>,
    /// New expected value: any JSON value; an explicit `null` sets it to null.
    /// (Castellan extension on datasets, whose rows also have an expected value.)
    #[serde(default, deserialize_with = "present")]
    pub expected: Option<Value>,
    /// A comment, stored as its own row.
    #[serde(default)]
    pub comment: Option<String>,
    /// Metadata to merge in.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Where the feedback came from: `app`, `api` or `external` (the default).
    #[serde(default)]
    pub source: Option<String>,
    /// Tags to add.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// `POST …/feedback`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Feedback {
    /// The feedback.
    pub feedback: Vec<FeedbackItem>,
}

/// One item of `POST /v1/prompt/{id}/feedback`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptFeedbackItem {
    /// The prompt event: the prompt's own id (Castellan keeps no other prompt events).
    pub id: String,
    /// A comment about the prompt.
    #[serde(default)]
    pub comment: Option<String>,
    /// Data about the feedback (a `user_id`, say).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Where the feedback came from: `app`, `api` or `external` (the default).
    #[serde(default)]
    pub source: Option<String>,
}

/// `POST /v1/prompt/{id}/feedback` (which `@braintrust/api` 0.1 calls).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PromptFeedback {
    /// The feedback.
    pub feedback: Vec<PromptFeedbackItem>,
}

/// The answer to feedback.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackResponse {
    /// Always `success`.
    pub status: String,
}

/// One score of an experiment summary. Exactly these keys: the SDK builds a
/// dataclass from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreSummary {
    /// Score name.
    pub name: String,
    /// Mean over traces (each trace's spans averaged first).
    pub score: f64,
    /// Traces that scored higher than their match in the comparison (0 without one).
    pub improvements: u64,
    /// Traces that scored lower (0 without a comparison).
    pub regressions: u64,
    /// This mean minus the comparison's; absent (never null) without a comparison.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub diff: Option<f64>,
}

/// One metric of an experiment summary (same rule: exactly these keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricSummary {
    /// Metric name.
    pub name: String,
    /// Mean over traces.
    pub metric: f64,
    /// Unit label.
    pub unit: String,
    /// Traces better (lower) than their match (0 without a comparison).
    pub improvements: u64,
    /// Traces worse (higher; 0 without a comparison).
    pub regressions: u64,
    /// Relative change against the comparison; absent (never null) without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub diff: Option<f64>,
}

/// `GET /v1/experiment/{id}/summarize`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExperimentSummary {
    /// Project name.
    pub project_name: String,
    /// Experiment name.
    pub experiment_name: String,
    /// Link to the project.
    pub project_url: String,
    /// Link to the experiment.
    pub experiment_url: String,
    /// The experiment compared with, if any.
    pub comparison_experiment_name: Option<String>,
    /// Scores by name (absent unless `summarize_scores`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<BTreeMap<String, ScoreSummary>>,
    /// Metrics by name (absent unless `summarize_scores`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<BTreeMap<String, MetricSummary>>,
}

/// A dataset's size.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataSummary {
    /// Live rows.
    pub total_records: u64,
}

/// `GET /v1/dataset/{id}/summarize`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetSummary {
    /// Project name.
    pub project_name: String,
    /// Dataset name.
    pub dataset_name: String,
    /// Link to the project.
    pub project_url: String,
    /// Link to the dataset.
    pub dataset_url: String,
    /// Null unless `summarize_data`.
    pub data_summary: Option<DataSummary>,
}

/// `GET /version`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionInfo {
    /// Server version.
    pub version: String,
    /// Larger `/logs3` payloads go through `/logs3/overflow`.
    pub logs3_payload_max_bytes: u64,
}

/// The answer to `POST /logs3`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Logs3Response {
    /// The transaction the rows were written at (null when there were none).
    pub xact_id: Option<String>,
    /// How many rows were written.
    pub rows: u64,
}

/// `POST /logs3/overflow`: ask where to upload a large payload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OverflowRequest {
    /// Always `application/json`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Payload size.
    #[serde(default)]
    pub size_bytes: Option<u64>,
    /// One entry per row: `{"object_ids": {…}, …}`; every object is checked now.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Value>,
}

/// Where to upload: a signed URL served by Castellan (no bearer header needed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignedUpload {
    /// `PUT`.
    pub method: String,
    /// The URL; it expires.
    #[serde(rename = "signedUrl")]
    pub signed_url: String,
    /// Headers to send with the upload.
    pub headers: BTreeMap<String, String>,
    /// The key to reference the upload by.
    pub key: String,
}

/// `POST /attachment`: announce an attachment and get an upload URL.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachmentRequest {
    /// The key from the row's attachment reference.
    pub key: String,
    /// File name.
    #[serde(default)]
    pub filename: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The organization.
    pub org_id: uuid::Uuid,
}

/// Where to upload an attachment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachmentUpload {
    /// The signed `PUT` URL; it expires.
    #[serde(rename = "signedUrl")]
    pub signed_url: String,
    /// Headers to send with the upload.
    pub headers: BTreeMap<String, String>,
}

/// `POST /attachment/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachmentStatusRequest {
    /// The key.
    pub key: String,
    /// The organization.
    pub org_id: uuid::Uuid,
    /// `{"upload_status": "uploading"|"done"|"error", "error_message"?: …}`.
    #[schema(value_type = Object)]
    pub status: Value,
}

/// `GET /attachment`: where to download it and its status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttachmentInfo {
    /// The signed download URL (or the external URL); it expires.
    #[serde(rename = "downloadUrl")]
    pub download_url: String,
    /// The last status the uploader reported.
    #[schema(value_type = Object)]
    pub status: Value,
}

/// `POST /btql`: one query, in any of BTQL's three forms. Other keys the SDKs and
/// the `bt` CLI send (`use_columnstore`, `use_brainstore`, `brainstore_realtime`,
/// `query_source`, `lint_mode`, `strict_lint_mode`) are accepted and ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct BtqlRequest {
    /// The query: the JSON form (an object: `select`, `from`, `filter`, `sort`,
    /// `limit`, `cursor`), or a string in the text form (`select: * | from:
    /// project_logs('<id>') | filter: … | sort: … | limit: …`) or the SQL form (`SELECT *
    /// FROM project_logs('<id>') WHERE … ORDER BY … LIMIT …`).
    #[schema(value_type = Object)]
    pub query: Value,
    /// Read as of this transaction id (19 digits, or the SDK's 16-hex form); default:
    /// the latest. A `cursor` keeps the version of its first page.
    #[serde(default)]
    pub version: Option<String>,
    /// The answer's format: only `json` (the default).
    #[serde(default)]
    pub fmt: Option<String>,
    /// Audit-log rows instead of rows: not served (400 when true).
    #[serde(default)]
    pub audit_log: Option<bool>,
}

/// One page of a BTQL query.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BtqlResponse {
    /// The rows: with `select: *` shaped as `fetch` answers them, else one key per
    /// selected column.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
    /// Pass back as the query's `cursor` for the next page; null on the last one
    /// (also sent as the `x-bt-cursor` header).
    pub cursor: Option<String>,
    /// A JSON Schema of the rows (an array of objects, with the selected columns).
    #[schema(value_type = Object)]
    pub schema: Value,
}
