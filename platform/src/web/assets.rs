//! Static files compiled into the binary, so a single file is the whole install.
//! Names carry versions, so they may be cached for a year.

use actix_web::{http::header, web, HttpResponse};

use crate::error::AppError;

/// The pinned htmx build and its Subresource Integrity hash (checked by a test).
pub const HTMX_PATH: &str = "/assets/vendor/htmx-2.0.8.min.js";
pub const HTMX_SRI: &str =
    "sha384-/TgkGk7p307TH7EXJDuUlgG3Ce1UVolAOFopFekQkkXihi5u/6OCvVKyz1W+idaz";
/// Bump with the stylesheet's content so browsers fetch the new one.
pub const CSS_PATH: &str = "/assets/app-1.css";
pub const JS_PATH: &str = "/assets/app-1.js";

pub const HTMX_JS: &[u8] = include_bytes!("../../../assets/vendor/htmx-2.0.8.min.js");
const APP_CSS: &[u8] = include_bytes!("../../../assets/app.css");
const APP_JS: &[u8] = include_bytes!("../../../assets/app.js");
const HTMX_LICENSE: &[u8] = include_bytes!("../../../assets/vendor/htmx-LICENSE.txt");

pub async fn serve(path: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (body, ctype) = match format!("/assets/{}", path.as_str()).as_str() {
        HTMX_PATH => (HTMX_JS, "text/javascript; charset=utf-8"),
        CSS_PATH => (APP_CSS, "text/css; charset=utf-8"),
        JS_PATH => (APP_JS, "text/javascript; charset=utf-8"),
        "/assets/vendor/htmx-LICENSE.txt" => (HTMX_LICENSE, "text/plain; charset=utf-8"),
        _ => return Err(AppError::NotFound),
    };
    Ok(HttpResponse::Ok()
        .content_type(ctype)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body))
}
