//! Static files compiled into the binary, so a single file is the whole install.
//! Names carry versions, so they may be cached for a year.

use std::sync::LazyLock;

use actix_web::{http::header, web, HttpResponse};

use crate::error::AppError;

/// The pinned htmx build and its Subresource Integrity hash (checked by a test).
pub const HTMX_PATH: &str = "/assets/vendor/htmx-2.0.8.min.js";
pub const HTMX_SRI: &str =
    "sha384-/TgkGk7p307TH7EXJDuUlgG3Ce1UVolAOFopFekQkkXihi5u/6OCvVKyz1W+idaz";
/// Content-addressed names: a changed file gets a new URL, so year-long caching is safe.
pub static CSS_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/assets/app-{}.css", short_hash(APP_CSS)));
pub static JS_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/assets/app-{}.js", short_hash(APP_JS)));

fn short_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SortableJS, the board's drag-and-drop, vendored like htmx.
pub const SORTABLE_PATH: &str = "/assets/vendor/sortable-1.15.7.min.js";
pub const SORTABLE_SRI: &str =
    "sha384-DgmC6Xe2bSN2WjTDXzWYbUbxyhNP+NNkGDR/g78pCXV7E7rcVTGxVg0uIVCUUcBc";
const SORTABLE_JS: &[u8] = include_bytes!("../../../assets/vendor/sortable-1.15.7.min.js");
const SORTABLE_LICENSE: &[u8] = include_bytes!("../../../assets/vendor/sortable-LICENSE.txt");

/// The tab icon (versioned by name: change the number with the file).
pub const FAVICON_PATH: &str = "/assets/favicon-1.svg";
const FAVICON: &[u8] = include_bytes!("../../../assets/favicon.svg");

pub const HTMX_JS: &[u8] = include_bytes!("../../../assets/vendor/htmx-2.0.8.min.js");
const APP_CSS: &[u8] = include_bytes!("../../../assets/app.css");
const APP_JS: &[u8] = include_bytes!("../../../assets/app.js");
const HTMX_LICENSE: &[u8] = include_bytes!("../../../assets/vendor/htmx-LICENSE.txt");

pub async fn serve(path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let requested = format!("/assets/{}", path.as_str());
    let (body, ctype) = match requested.as_str() {
        HTMX_PATH => (HTMX_JS, "text/javascript; charset=utf-8"),
        "/assets/vendor/htmx-LICENSE.txt" => (HTMX_LICENSE, "text/plain; charset=utf-8"),
        SORTABLE_PATH => (SORTABLE_JS, "text/javascript; charset=utf-8"),
        "/assets/vendor/sortable-LICENSE.txt" => (SORTABLE_LICENSE, "text/plain; charset=utf-8"),
        FAVICON_PATH => (FAVICON, "image/svg+xml"),
        p if p == CSS_PATH.as_str() => (APP_CSS, "text/css; charset=utf-8"),
        p if p == JS_PATH.as_str() => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return Err(AppError::NotFound),
    };
    Ok(HttpResponse::Ok()
        .content_type(ctype)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body))
}
