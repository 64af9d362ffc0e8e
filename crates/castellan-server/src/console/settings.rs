//! Settings pages for the organization's administration objects and the audit log.

use super::{Notice, Page, Session};
use askama::Template;
use axum::extract::Path;
use axum::routing::get;
use axum::Router;

pub(super) fn routes() -> Router<crate::state::App> {
    Router::new().route("/o/{org}/settings/audit-log", get(audit_page))
}

#[derive(Template)]
#[template(source = "<div class=\"page-head\"><div><h1>Audit log</h1></div></div>", ext = "html")]
struct Audit;

async fn audit_page(session: Session, Path(org): Path<String>, q: axum::extract::Query<Notice>) -> Page {
    let ctx = session.org(&org).await?;
    ctx.page("Audit log", "settings/audit-log", Audit, q.0.take())
}
