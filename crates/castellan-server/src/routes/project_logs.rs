//! `/v1/project_logs/{project_id}`: a project's logs (object type `project_log`).

use crate::access::AppState;
use axum::routing::{get, post};
use axum::Router;
use castellan_api_types::{
    Feedback, FeedbackResponse, FetchEvents, FetchEventsResponse, InsertEvents, InsertEventsResponse,
};
use castellan_store::EventKind;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/project_logs/{project_id}/insert", post(insert))
        .route("/v1/project_logs/{project_id}/fetch", get(fetch_get).post(fetch_post))
        .route("/v1/project_logs/{project_id}/feedback", post(feedback))
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
