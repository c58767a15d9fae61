//! HTTP: the JSON API (`api/`), the console (`console/`), static assets, health
//! probes and the middleware every request passes through.

pub mod api;
pub mod assets;
pub mod console;
pub mod idempotency;
pub mod search;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest, HttpResponse};
use tracing::Instrument;

use crate::app::AppState;
use crate::auth::RequestId;
use crate::db;
use crate::error::AppResult;

pub const HX_REQUEST: &str = "hx-request";
pub const HX_HISTORY_RESTORE: &str = "hx-history-restore-request";

pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key(HX_REQUEST)
}

/// htmx wants only the fragment, except when it restores history from a cache miss.
pub fn wants_fragment(req: &HttpRequest) -> bool {
    is_htmx(req) && !req.headers().contains_key(HX_HISTORY_RESTORE)
}

/// Gives each request an id (a caller's `X-Request-Id` when it is sane), a tracing
/// span carrying it, and `Vary: HX-Request` on every response the console may vary.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
    );
    let started = Instant::now();
    let is_api = req.path().starts_with("/api");
    async move {
        let mut res = next.call(req).await?;
        let headers = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&id) {
            headers.insert(HeaderName::from_static("x-request-id"), v);
        }
        if !is_api {
            headers.append(header::VARY, HeaderValue::from_static("HX-Request"));
        }
        tracing::info!(
            status = res.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request finished"
        );
        Ok(res)
    }
    .instrument(span)
    .await
}

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The database answers.
pub async fn readyz(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    db::run(&state.pool, |c| {
        use diesel::connection::SimpleConnection;
        c.batch_execute("SELECT 1")?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready", "database": "ok"})))
}

/// What the actor may do to clients beyond their base rights, from policy.
pub async fn client_access(
    actor: &crate::auth::Actor,
) -> AppResult<crate::domain::clients::service::Access> {
    record_access(actor, "client").await
}

/// Record-level reach on `resource` (client, opportunity): `oversee` widens it to others' records.
pub async fn record_access(
    actor: &crate::auth::Actor,
    resource: &str,
) -> AppResult<crate::domain::clients::service::Access> {
    Ok(crate::domain::clients::service::Access {
        user_id: actor.user_id.clone(),
        oversee: actor.can(resource, "oversee").await?,
        read_sensitive: actor.can("sensitive_field", "read").await?,
        write_sensitive: actor.can("sensitive_field", "write").await?,
        create_tags: actor.can("tag", "write").await?,
    })
}

/// The query string as ordered pairs (repeated keys kept).
pub fn query_pairs(req: &HttpRequest) -> AppResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(req.query_string()).map_err(|e| {
        crate::error::AppError::BadRequest(format!("The query string is malformed: {e}"))
    })
}

/// `filter[assignedTo]=me` means the signed-in user, in the API and the console alike.
pub fn resolve_me(pairs: &mut [(String, String)], user_id: &str) {
    for (k, v) in pairs.iter_mut() {
        if k == "filter[assignedTo]" && v == "me" {
            *v = user_id.to_string();
        }
    }
}

/// The public address of a user's calendar feed, as this request reached the server.
pub fn calendar_feed_url(req: &HttpRequest, token: &str) -> String {
    let info = req.connection_info();
    format!("{}://{}/calendar/{token}.ics", info.scheme(), info.host())
}

/// Runs blocking work that may validate plugin field types: loads the organization's
/// enabled plugins, hands them to `f`, then records the calls' health.
pub async fn run_with_plugins<T, F>(state: &AppState, org_id: String, f: F) -> AppResult<T>
where
    F: FnOnce(&mut crate::db::DbConn, &crate::plugins::PluginFieldTypes) -> AppResult<T>
        + Send
        + 'static,
    T: Send + 'static,
{
    let runtime = state.plugins.clone();
    db::run(&state.pool, move |c| {
        let ext = crate::plugins::PluginFieldTypes::load(c, &runtime, &org_id)?;
        let out = f(c, &ext);
        if out.is_ok() {
            ext.deliver();
        }
        crate::plugins::settle(c, &org_id, &ext.records())?;
        out
    })
    .await
}
