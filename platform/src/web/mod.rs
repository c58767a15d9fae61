//! HTTP: the JSON API (`api/`), the console (`console/`), static assets, health
//! probes and the middleware every request passes through.

pub mod api;
pub mod assets;
pub mod charts;
pub mod console;
pub mod exports;
pub mod idempotency;
pub mod scope;
pub mod search;
pub mod upload;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest, HttpResponse};
use tracing::Instrument;

use crate::auth::RequestId;
use crate::db;
use crate::error::AppResult;
use crate::state::AppState;

pub const HX_REQUEST: &str = "hx-request";
pub const HX_HISTORY_RESTORE: &str = "hx-history-restore-request";

pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key(HX_REQUEST)
}

/// htmx wants only the fragment, except when it restores history from a cache miss.
pub fn wants_fragment(req: &HttpRequest) -> bool {
    is_htmx(req) && !req.headers().contains_key(HX_HISTORY_RESTORE)
}

/// Whether the request reached us over TLS. `X-Forwarded-Proto` (or `Forwarded`) is only
/// believed when the operator says a proxy sits in front (`RAPPORT_TRUST_PROXY`); otherwise
/// anyone could claim HTTPS and earn HSTS or secure-only cookies over plain HTTP.
pub fn is_https(
    conn: &actix_web::dev::ConnectionInfo,
    app_secure: bool,
    trust_proxy: bool,
) -> bool {
    if trust_proxy {
        conn.scheme() == "https"
    } else {
        app_secure
    }
}

/// `is_https` for a handler's request.
pub fn request_is_https(req: &HttpRequest) -> bool {
    let trust = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.config.trust_proxy);
    is_https(&req.connection_info(), req.app_config().secure(), trust)
}

/// The first field (a JSON path, a form or query key) whose text holds a NUL character.
fn nul_in_json(v: &serde_json::Value, path: &str) -> Option<String> {
    match v {
        serde_json::Value::String(s) if s.contains('\0') => Some(path.to_string()),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                return Some(path.to_string());
            }
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            nul_in_json(v, &p)
        }),
        serde_json::Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_in_json(v, &format!("{path}[{i}]"))),
        _ => None,
    }
}

fn nul_in_pairs(encoded: &str) -> Option<String> {
    if !encoded.contains("%00") {
        return None;
    }
    url::form_urlencoded::parse(encoded.as_bytes())
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| k.replace('\0', ""))
}

/// Refuses text with a NUL character anywhere a user can put it (query, form, JSON body)
/// with a 422 naming the field: PostgreSQL cannot store NUL in text, and no name, note
/// or e-mail needs one.
pub async fn refuse_nul(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody + 'static>>, Error> {
    let refuse = |field: String| {
        crate::error::AppError::invalid(
            &field,
            "Text may not contain a NUL character (\\0); remove it and try again.",
        )
    };
    if let Some(field) = nul_in_pairs(req.query_string()) {
        return Ok(req.error_response(refuse(field)).map_into_right_body());
    }
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let is_json = ctype.starts_with("application/json") || ctype.contains("+json");
    let is_form = ctype.starts_with("application/x-www-form-urlencoded");
    if is_json || is_form {
        // why: these bodies are small (the JSON and form limits apply) and every handler
        // reads them whole anyway.
        let body = match req.extract::<web::Bytes>().await {
            Ok(b) => b,
            Err(e) => return Ok(req.error_response(e).map_into_right_body()),
        };
        let found = if is_json {
            let escaped = body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"));
            if escaped {
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| nul_in_json(&v, ""))
                    .map(|f| if f.is_empty() { "body".into() } else { f })
            } else {
                None
            }
        } else {
            nul_in_pairs(&String::from_utf8_lossy(&body))
        };
        if let Some(field) = found {
            return Ok(req.error_response(refuse(field)).map_into_right_body());
        }
        let (_, mut pl) = actix_http::h1::Payload::create(true);
        pl.unread_data(body);
        req.set_payload(actix_web::dev::Payload::from(pl));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The Content-Security-Policy of every response: scripts only from our own assets (the
/// console has no inline script and no `eval`), no framing, forms post only to us. Inline
/// style attributes stay allowed (progress bars set their width).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
form-action 'self'; frame-ancestors 'none'";

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
        path = %logged_path(req.path()),
    );
    let started = Instant::now();
    let is_api = req.path().starts_with("/api");
    let https = {
        let trust = req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|s| s.config.trust_proxy);
        is_https(&req.connection_info(), req.app_config().secure(), trust)
    };
    async move {
        let mut res = next.call(req).await?;
        let headers = res.headers_mut();
        headers.remove(idempotency::REDACT_HEADER);
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
            ("content-security-policy", CSP),
        ] {
            if !headers.contains_key(name) {
                headers.insert(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
        }
        // why: a download (export, file, quote) holds client data; no shared or
        // browser cache may keep a copy.
        if headers.contains_key(header::CONTENT_DISPOSITION)
            && !headers.contains_key(header::CACHE_CONTROL)
        {
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
        }
        if https {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            );
        }
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

/// The database answers. Search is reported, not required: without it everything but
/// search works, so a load balancer should keep sending traffic.
pub async fn readyz(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    db::run(&state.pool, |c| Ok(db::ping(c)?)).await?;
    let search = match actix_web::rt::time::timeout(
        std::time::Duration::from_secs(1),
        state.search.health(),
    )
    .await
    {
        Ok(Ok(())) => "ok",
        _ => "unavailable",
    };
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"status": "ready", "database": "ok", "search": search})))
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

pub use crate::domain::clients::query::resolve_me;

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
    crate::ops::with_plugins(&state.pool, &state.plugins, org_id, f).await
}

/// The path as the log shows it: a password-reset link's token is a key to an account
/// for an hour, so it never reaches the log.
fn logged_path(path: &str) -> &str {
    if path.starts_with("/password/reset/") {
        "/password/reset/…"
    } else {
        path
    }
}
