//! Webhooks: `/api/webhooks` (subscriptions; the secret is answered once, on creation and
//! rotation), `/api/webhooks/{id}/deliveries` (the log), `…/test`, `…/rotate-secret`,
//! `…/replay` (one delivery or a time range) and `/api/webhooks/events` (what may be asked).

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::ListEnvelope;
use crate::error::{AppError, AppResult};
use crate::ops::webhooks as ops;
use crate::web::query_pairs;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid("body", "Send a JSON object.")),
    }
}

pub async fn events(scope: ApiScope) -> AppResult<HttpResponse> {
    ops::list(&scope).await?;
    let data: Vec<Value> = crate::domain::webhooks::EVENTS
        .iter()
        .map(|(k, d)| json!({"type": k, "description": d}))
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

pub async fn list(scope: ApiScope) -> AppResult<HttpResponse> {
    let data = ops::list(&scope)
        .await?
        .iter()
        .map(|s| s.to_json())
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// `POST /api/webhooks`: answers the subscription with its `secret`, shown this once.
pub async fn create(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let input = ops::input_from(&object(body)?)?;
    let (row, secret) = ops::create(&scope, input).await?;
    let mut out = row.to_json();
    out["secret"] = json!(secret);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/webhooks/{}", row.id)))
        .insert_header((crate::web::idempotency::REDACT_HEADER, "secret"))
        .json(out))
}

pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::get(&scope, id.into_inner()).await?.to_json()))
}

pub async fn update(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let input = ops::input_from(&object(body)?)?;
    Ok(HttpResponse::Ok().json(ops::update(&scope, id.into_inner(), input).await?.to_json()))
}

pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/webhooks/{id}/rotate-secret`: the new secret, shown this once; the previous one
/// keeps signing (beside it) for a day.
pub async fn rotate(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let secret = ops::rotate(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((crate::web::idempotency::REDACT_HEADER, "secret"))
        .json(json!({"secret": secret})))
}

pub async fn test(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let d = ops::send_test(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(d.to_json()))
}

/// `GET /api/webhooks/{id}/deliveries[?status=dead][&type=deal.won][&cursor=…][&limit=…]`
pub async fn deliveries(
    scope: ApiScope,
    id: web::Path<String>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let limit = match get("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| AppError::invalid("limit", "Use a limit from 1 to 200."))?,
    };
    let mut rows = ops::deliveries(
        &scope,
        id.into_inner(),
        get("status"),
        get("type"),
        get("cursor"),
        limit + 1,
    )
    .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|d| d.id.clone())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
        next_cursor,
    }))
}

/// `POST /api/webhooks/{id}/replay` with `{"deliveryId": "msg_…"}` or `{"from": …, "to": …}`
/// (RFC 3339): sends them again as new deliveries with the same payloads.
pub async fn replay(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let body = object(body)?;
    if let Some(k) = body
        .keys()
        .find(|k| !["deliveryId", "from", "to"].contains(&k.as_str()))
    {
        return Err(AppError::invalid(k, "Unknown field."));
    }
    let time = |k: &str| -> AppResult<Option<chrono::NaiveDateTime>> {
        body.get(k)
            .and_then(Value::as_str)
            .map(|s| {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| t.naive_utc())
                    .map_err(|_| AppError::invalid(k, "Use a time like 2026-12-01T09:00:00Z."))
            })
            .transpose()
    };
    let one = body
        .get("deliveryId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let range = match (time("from")?, time("to")?) {
        (Some(f), Some(t)) if f <= t => Some((f, t)),
        (Some(_), Some(_)) => return Err(AppError::invalid("to", "End after the start.")),
        (None, None) => None,
        _ => return Err(AppError::invalid("to", "Give both from and to.")),
    };
    let n = ops::replay(&scope, id.into_inner(), one, range).await?;
    Ok(HttpResponse::Accepted().json(json!({"replayed": n})))
}
