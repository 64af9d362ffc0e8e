//! TODO

pub(super) fn routes() -> axum::Router<crate::state::App> {
    axum::Router::new()
}
