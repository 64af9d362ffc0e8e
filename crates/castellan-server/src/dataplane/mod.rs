//! The data plane's logic, apart from the handlers: rows and their merge semantics,
//! the ingest pipeline, experiment summaries, and the objects' kind-specific fields.

pub mod btql;
pub mod ingest;
pub mod objects;
pub mod otel;
mod queue;
pub mod rows;
pub mod summary;

use crate::access::{AppState, DataPermit};
use crate::error::{ApiError, ApiResult};
use axum::http::HeaderMap;
use std::sync::Arc;

pub use crate::load::IngestLoad;

/// The data plane's shared state: the write queue every event write goes through.
#[derive(Clone)]
pub struct DataPlane {
    queue: Arc<queue::IngestQueue>,
    /// Wakes the online-scoring worker after a write into project logs.
    scoring: Arc<tokio::sync::Notify>,
}

impl DataPlane {
    /// Starts the write queue over the access layer's one data-write capability.
    pub fn start(access: &AppState) -> DataPlane {
        // Cost alerts recorded by a write whose process stopped before auditing them.
        crate::usage::crossed_at_start(access);
        DataPlane {
            queue: Arc::new(queue::IngestQueue::start(access.data_writer(), access.clone())),
            scoring: access.scoring_wake().clone(),
        }
    }

    /// Writes a prepared request into the logs a permit covers, through the write
    /// queue (committed together with concurrent writes); returns its transaction id.
    pub async fn ingest(&self, permit: DataPermit, work: ingest::Prepared) -> ApiResult<ingest::Committed> {
        if permit.logs().is_empty() {
            return Err(ApiError::Internal("a data write needs at least one log".into()));
        }
        let logs = permit.logs().iter().any(|(l, _)| l.kind == castellan_store::EventKind::ProjectLogs);
        let xact = self.queue.submit(work).await?;
        // Only a wake-up: the worker scores on its own task, never in this request.
        if logs {
            self.scoring.notify_one();
        }
        Ok(xact)
    }
}

/// The base URL clients reach this server at: the configured public URL, else the
/// request's `Host` (so signed URLs and links work on any address without set-up).
pub fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if state.config().public_url.is_some() {
        return state.config().public_url();
    }
    match headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) if !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic()) => format!("http://{host}"),
        _ => state.config().public_url(),
    }
}

/// Percent-encodes one component of a link.
pub fn encode_component(s: &str) -> String {
    crate::access::signing::encode_segment(s)
}
