//! The console's static files, compiled into the binary and served under names that
//! carry a hash of their content, so browsers may keep them for a year.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// One static file.
pub struct Asset {
    /// Its URL (`/assets/app.<hash>.css`).
    pub path: String,
    bytes: &'static [u8],
    content_type: &'static str,
}

fn asset(stem: &str, ext: &str, bytes: &'static [u8], content_type: &'static str) -> Asset {
    let hash = hex::encode(Sha256::digest(bytes));
    Asset { path: format!("/assets/{stem}.{}.{ext}", &hash[..16]), bytes, content_type }
}

/// The style sheet (hand-written).
pub static CSS: LazyLock<Asset> =
    LazyLock::new(|| asset("app", "css", include_bytes!("../../assets/app.css"), "text/css; charset=utf-8"));
/// htmx (vendored; see assets/VENDORED.md).
pub static JS: LazyLock<Asset> =
    LazyLock::new(|| asset("htmx", "js", include_bytes!("../../assets/htmx.min.js"), "text/javascript; charset=utf-8"));

/// `GET /assets/{name}`: a file by its hashed name, cacheable forever.
pub async fn serve(Path(name): Path<String>) -> Response {
    for a in [&*CSS, &*JS] {
        if a.path.strip_prefix("/assets/") == Some(name.as_str()) {
            let mut r = a.bytes.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
            h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
            return r;
        }
    }
    (StatusCode::NOT_FOUND, "no such asset").into_response()
}
