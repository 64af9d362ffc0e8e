//! The data plane's logic, apart from the handlers: rows and their merge semantics,
//! the ingest pipeline, experiment summaries, and the objects' kind-specific fields.

pub mod ingest;
pub mod objects;
pub mod rows;
pub mod summary;

use crate::access::AppState;
use axum::http::HeaderMap;

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
