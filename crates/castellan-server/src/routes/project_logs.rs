//! `/v1/project_logs/{project_id}`: a project's logs (object type `project_log`).

use castellan_api_types::{
    Feedback, FeedbackResponse, FetchEvents, FetchEventsResponse, InsertEvents, InsertEventsResponse,
};
use castellan_store::EventKind;
use utoipa_axum::{router::OpenApiRouter, routes};

/// This module's endpoints: each registered from its `#[utoipa::path]`, so the
/// route and its OpenAPI operation are declared once.
pub(crate) fn routes() -> OpenApiRouter<crate::state::App> {
    OpenApiRouter::new().routes(routes!(insert)).routes(routes!(fetch_get, fetch_post)).routes(routes!(feedback))
}

super::events::event_endpoints! {
    kind: EventKind::ProjectLogs,
    id: "project_id",
    tag: "Logs",
    insert: (
        "/v1/project_logs/{project_id}/insert",
        "Inserts (replaces, merges or deletes) rows of a project's logs.",
    ),
    fetch: (
        "/v1/project_logs/{project_id}/fetch",
        "A page of a project's logs (query parameters as in the `POST` form).",
        "A page of a project's logs.",
    ),
    feedback: (
        "/v1/project_logs/{project_id}/feedback",
        "Feedback on rows of a project's logs.",
    ),
}
