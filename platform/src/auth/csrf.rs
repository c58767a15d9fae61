//! CSRF protection for the console: a double-submit token. A random value lives
//! in an HttpOnly, SameSite=Strict cookie and is rendered into every page (a hidden
//! field in forms, an `X-CSRF-Token` header on every htmx request). A state-changing
//! console request whose token does not match the cookie is refused with 403.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest};

use crate::domain::orgs::password::{constant_time_eq, random_secret};
use crate::error::AppError;

pub const CSRF_COOKIE: &str = "rapport_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf_token";

/// A token minted during this request (no cookie yet), visible to templates.
#[derive(Clone)]
struct Minted(String);

/// The token this request's page should carry.
pub fn token_of(req: &HttpRequest) -> Option<String> {
    if let Some(m) = req.extensions().get::<Minted>() {
        return Some(m.0.clone());
    }
    req.cookie(CSRF_COOKIE).map(|c| c.value().to_string())
}

pub fn csrf_cookie(value: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(CSRF_COOKIE, value.to_string())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .finish()
}

/// Replaces the token after sign-in, so a token known before it is worthless after.
pub fn rotate(req: &HttpRequest) {
    req.extensions_mut().insert(Minted(random_secret()));
}

fn is_exempt(path: &str) -> bool {
    // why: the unsubscribe link is POSTed by mail providers (RFC 8058 one-click) without
    // cookies; its signed tag is what authorizes it.
    path.starts_with("/api/")
        || path == "/api"
        || path.starts_with("/assets/")
        || path.starts_with("/u/")
}

fn form_field(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v)
}

fn payload_of(bytes: web::Bytes) -> Payload {
    let (_, mut pl) = actix_http::h1::Payload::create(true);
    pl.unread_data(bytes);
    Payload::from(pl)
}

pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, Error> {
    if is_exempt(req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let cookie = req.cookie(CSRF_COOKIE).map(|c| c.value().to_string());
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe {
        if cookie.is_none() {
            req.extensions_mut().insert(Minted(random_secret()));
        }
    } else {
        let Some(expected) = cookie else {
            return Ok(req
                .error_response(AppError::CsrfRejected)
                .map_into_right_body());
        };
        let mut provided = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if provided.is_none() && is_form {
            let body = match req.extract::<web::Bytes>().await {
                Ok(body) => body,
                Err(e) => return Ok(req.error_response(e).map_into_right_body()),
            };
            provided = form_field(&body);
            req.set_payload(payload_of(body));
        }
        if !provided.is_some_and(|p| constant_time_eq(&p, &expected)) {
            return Ok(req
                .error_response(AppError::CsrfRejected)
                .map_into_right_body());
        }
    }
    let secure = crate::web::request_is_https(req.request());
    let mut res = next.call(req).await?;
    let minted = res
        .request()
        .extensions()
        .get::<Minted>()
        .map(|m| m.0.clone());
    if let Some(value) = minted {
        res.response_mut()
            .add_cookie(&csrf_cookie(&value, secure))
            .map_err(actix_web::error::ErrorInternalServerError)?;
    }
    Ok(res.map_into_left_body())
}
