//! `Idempotency-Key` on API POSTs: the first response to a key is stored (per user and
//! organization, for 24 hours) and replayed for a retry of the same request, so a client
//! that lost a response can retry without creating twice. The same key with a different
//! request is refused (422); a retry while the first is still running gets 409. A claim
//! whose request never answered (the server was killed) is a lease: after [`LEASE`] a retry
//! takes it over and runs. Secrets a response shows once (tokens, one-time passwords) are
//! never stored: handlers name them in [`REDACT_HEADER`] and the replay carries `null`.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse, ResponseError};
use chrono::Duration;

use crate::db;
use crate::domain::idempotency::{self as idem, Claim};
use crate::domain::orgs::password::sha256_hex;
use crate::domain::orgs::store;
use crate::error::AppError;
use crate::state::AppState;

const HEADER: &str = "idempotency-key";
/// Set by a handler to the comma-separated top-level JSON fields of its response that are
/// secrets; they are removed before the response is stored. Never sent to the client.
pub const REDACT_HEADER: &str = "x-rapport-redact";
/// How long a claim without a response holds its key before a retry may take it over.
pub const LEASE: Duration = Duration::seconds(60);
/// Headers worth replaying with the stored body.
const KEPT_HEADERS: [header::HeaderName; 3] =
    [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

fn payload_of(bytes: web::Bytes) -> Payload {
    let (_, mut pl) = actix_http::h1::Payload::create(true);
    pl.unread_data(bytes);
    Payload::from(pl)
}

/// The body to keep for replays: the named secret fields set to `null`. A body that
/// names secrets but is not a JSON object is not kept at all.
fn redacted(bytes: &[u8], fields: &[String]) -> String {
    if fields.is_empty() {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(mut m)) => {
            for f in fields {
                if let Some(v) = m.get_mut(f) {
                    *v = serde_json::Value::Null;
                }
            }
            serde_json::Value::Object(m).to_string()
        }
        _ => String::new(),
    }
}

fn error(req: ServiceRequest, e: AppError) -> ServiceResponse<BoxBody> {
    req.error_response(e).map_into_boxed_body()
}

pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let key = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .map(str::to_string);
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| sha256_hex(t.trim()));
    let (Some(key), Some(token_hash), true) = (key, token, req.method() == Method::POST) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if key.is_empty() || key.len() > 200 {
        return Ok(error(
            req,
            AppError::BadRequest("Idempotency-Key must be 1 to 200 characters.".into()),
        ));
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // why: read the body ourselves up to the largest any route takes (an upload, an
    // import); the route still applies its own limit. The global JSON limit would refuse
    // a 2 MB upload that the route itself accepts.
    let cap = state
        .config
        .max_upload_bytes
        .max(crate::domain::imports::read::MAX_FILE)
        + 64 * 1024;
    let body = {
        use futures_util::StreamExt;
        let mut payload = actix_web::HttpMessage::take_payload(&mut req);
        let mut buf = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return Ok(req.error_response(e).map_into_boxed_body()),
            };
            if buf.len() + chunk.len() > cap {
                return Ok(error(
                    req,
                    AppError::PayloadTooLarge(format!(
                        "The request body is larger than {} MB.",
                        cap / 1024 / 1024
                    )),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        buf.freeze()
    };
    let fingerprint = sha256_hex(&format!(
        "{} {}?{}\n{}",
        req.method(),
        req.path(),
        req.query_string(),
        String::from_utf8_lossy(&body)
    ));
    req.set_payload(payload_of(body));

    let claim = db::run(&state.pool, move |c| {
        // Unknown tokens pass through: the handler answers 401 as usual.
        let Some(token) = store::find_live_token(c, &token_hash)? else {
            return Ok(None);
        };
        idem::claim(
            c,
            &token.organization_id,
            &token.user_id,
            &key,
            &fingerprint,
            LEASE,
        )
    })
    .await;
    let claim = match claim {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(next.call(req).await?.map_into_boxed_body()),
        Err(e) => return Ok(error(req, e)),
    };
    let id =
        match claim {
            Claim::Fresh(id) => id,
            Claim::Mismatch => {
                return Ok(error(
                    req,
                    AppError::invalid(
                        "Idempotency-Key",
                        "This key was already used for a different request; use a new key.",
                    ),
                ))
            }
            Claim::InProgress => return Ok(error(
                req,
                AppError::Conflict(
                    "A request with this Idempotency-Key is still being processed; retry shortly."
                        .into(),
                ),
            )),
            Claim::Replay(status, body, headers) => {
                let mut res =
                    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
                if let Ok(serde_json::Value::Object(h)) =
                    serde_json::from_str::<serde_json::Value>(&headers)
                {
                    for (name, value) in h {
                        if let Some(v) = value.as_str() {
                            res.insert_header((name.as_str(), v));
                        }
                    }
                }
                res.insert_header(("idempotent-replayed", "true"));
                return Ok(req.into_response(res.body(body)));
            }
        };

    let mut res = next.call(req).await?;
    let redact: Vec<String> = res
        .headers_mut()
        .remove(REDACT_HEADER)
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .flat_map(|v| {
            v.split(',')
                .map(|f| f.trim().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let status = res.status();
    let kept: serde_json::Map<String, serde_json::Value> = KEPT_HEADERS
        .iter()
        .filter_map(|h| {
            res.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|v| (h.as_str().to_string(), v.into()))
        })
        .collect();
    let (http_req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = match to_bytes(body).await {
        Ok(b) => b,
        Err(_) => {
            let pool = state.pool.clone();
            let _ = db::run(&pool, move |c| Ok(idem::forget(c, &id)?)).await;
            return Ok(ServiceResponse::new(
                http_req,
                AppError::Internal("response body unreadable".into()).error_response(),
            ));
        }
    };
    let text = redacted(&bytes, &redact);
    let stored = db::run(&state.pool, move |c| {
        if status.is_server_error() {
            // why: a failure on our side should be retried for real, not replayed.
            idem::forget(c, &id)?;
        } else {
            let headers = serde_json::Value::Object(kept).to_string();
            idem::answer(c, &id, status.as_u16(), &text, &headers)?;
        }
        Ok(())
    })
    .await;
    if let Err(e) = stored {
        tracing::error!(error = %e, "could not store the idempotent response");
    }
    Ok(ServiceResponse::new(
        http_req,
        head.set_body(bytes).map_into_boxed_body(),
    ))
}
