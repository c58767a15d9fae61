//! Webhooks: `/api/webhooks` (subscriptions; the secret is answered once, on creation and
//! rotation), `/api/webhooks/{id}/deliveries` (the log), `…/test`, `…/rotate-secret`,
//! `…/replay` (one delivery or a time range) and `/api/webhooks/events` (what may be asked).

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::ListEnvelope;
use crate::error::{AppError, AppResult};
use crate::ops::webhooks as ops;
use crate::web::query_pairs;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list, create, events, show, update, delete, rotate, test, deliveries, replay
))]
pub struct Doc;

/// An event type a subscription may ask for.
#[derive(Serialize, ToSchema)]
pub struct EventType {
    /// `client.created`, `deal.won`, …
    #[serde(rename = "type")]
    #[schema(example = "deal.won")]
    kind: &'static str,
    description: &'static str,
}

/// A webhook subscription (never its secret).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct Subscription {
    id: String,
    url: String,
    description: String,
    /// Event types it receives; `["*"]` for every one.
    events: Vec<String>,
    active: bool,
    /// May deliver to a private or loopback host (for development).
    allow_private_host: bool,
    /// Why it was switched off, if it was.
    disabled_reason: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// A webhook subscription just made, with its signing secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct CreatedSubscription {
    id: String,
    url: String,
    description: String,
    /// Event types it receives; `["*"]` for every one.
    events: Vec<String>,
    active: bool,
    allow_private_host: bool,
    disabled_reason: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    /// The signing secret (`whsec_…`), shown this once; null when an `Idempotency-Key`
    /// retry replays the answer.
    secret: Option<String>,
}

/// A subscription's fields. On creation `url` and `events` are needed; on a change, what
/// is left out stays as it was.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct SubscriptionBody {
    /// Where deliveries are posted; private and loopback hosts are refused unless allowed.
    url: Option<String>,
    description: Option<String>,
    /// Event types from `/api/webhooks/events`, or `["*"]` for every one.
    events: Option<Vec<String>>,
    active: Option<bool>,
    /// Allow a private or loopback host (for development).
    allow_private_host: Option<bool>,
}

/// A new signing secret.
#[derive(Serialize, ToSchema)]
pub struct Secret {
    /// The new secret (`whsec_…`), shown this once; the previous one keeps signing beside it
    /// for a day. Null when an `Idempotency-Key` retry replays the answer.
    secret: Option<String>,
}

/// One delivery of an event to a subscription, with its attempts so far.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct Delivery {
    /// The `webhook-id` header, the same on every attempt.
    id: String,
    subscription_id: String,
    /// The event type (`webhook.test` for a test).
    #[serde(rename = "type")]
    #[schema(example = "client.created")]
    kind: String,
    /// The record the event is about.
    record_id: String,
    /// `pending`, `sending`, `delivered` or `dead`.
    #[schema(example = "pending")]
    status: String,
    attempts: i32,
    next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The receiver's HTTP status at the last attempt.
    response_status: Option<i32>,
    /// The start of the receiver's answer.
    response_excerpt: Option<String>,
    duration_ms: Option<i32>,
    error: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The body posted: `{"type", "timestamp", "data"}`.
    payload: Value,
}

/// What to replay: one delivery, or those made in a time range (both ends, RFC 3339).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct ReplayBody {
    /// A delivery's id (`msg_…`).
    delivery_id: Option<String>,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
}

/// How many deliveries were made again.
#[derive(Serialize, ToSchema)]
pub struct Replayed {
    replayed: usize,
}

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid("body", "Send a JSON object.")),
    }
}

/// Lists the event types a subscription may ask for (`webhook:read`).
#[utoipa::path(
    get, path = "/api/webhooks/events", tag = "Webhooks",
    responses((status = 200, description = "The event types.", body = ListEnvelope<EventType>))
)]
pub async fn events(scope: ApiScope) -> AppResult<HttpResponse> {
    ops::list(&scope).await?;
    let data: Vec<EventType> = crate::domain::webhooks::EVENTS
        .iter()
        .map(|(kind, description)| EventType { kind, description })
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// Lists the organization's webhook subscriptions (`webhook:read`), one page, no cursor.
#[utoipa::path(
    get, path = "/api/webhooks", tag = "Webhooks",
    responses((status = 200, description = "The subscriptions.", body = ListEnvelope<Subscription>))
)]
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

/// Subscribes a URL to events (`webhook:admin`); the answer carries the signing `secret`,
/// shown this once.
#[utoipa::path(
    post, path = "/api/webhooks", tag = "Webhooks", request_body = SubscriptionBody,
    responses((status = 201, description = "Subscribed; `Location` names it.", body = CreatedSubscription))
)]
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

/// Shows a webhook subscription (`webhook:read`).
#[utoipa::path(
    get, path = "/api/webhooks/{id}", tag = "Webhooks",
    params(("id" = String, Path, description = "The subscription's id.")),
    responses((status = 200, description = "The subscription.", body = Subscription))
)]
pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::get(&scope, id.into_inner()).await?.to_json()))
}

/// Changes a webhook subscription (`webhook:admin`); what is left out stays.
#[utoipa::path(
    patch, path = "/api/webhooks/{id}", tag = "Webhooks", request_body = SubscriptionBody,
    params(("id" = String, Path, description = "The subscription's id.")),
    responses((status = 200, description = "Changed.", body = Subscription))
)]
pub async fn update(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let input = ops::input_from(&object(body)?)?;
    Ok(HttpResponse::Ok().json(ops::update(&scope, id.into_inner(), input).await?.to_json()))
}

/// Deletes a webhook subscription (`webhook:admin`); nothing more is delivered to it.
#[utoipa::path(
    delete, path = "/api/webhooks/{id}", tag = "Webhooks",
    params(("id" = String, Path, description = "The subscription's id.")),
    responses((status = 204, description = "Deleted."))
)]
pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotates a subscription's signing secret (`webhook:admin`): the new one is shown this
/// once, and the previous one keeps signing beside it for a day.
#[utoipa::path(
    post, path = "/api/webhooks/{id}/rotate-secret", tag = "Webhooks",
    params(("id" = String, Path, description = "The subscription's id.")),
    responses((status = 200, description = "The new secret.", body = Secret))
)]
pub async fn rotate(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let secret = ops::rotate(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((crate::web::idempotency::REDACT_HEADER, "secret"))
        .json(Secret {
            secret: Some(secret),
        }))
}

/// Queues a test event (`webhook.test`) to a subscription (`webhook:admin`).
#[utoipa::path(
    post, path = "/api/webhooks/{id}/test", tag = "Webhooks",
    params(("id" = String, Path, description = "The subscription's id.")),
    responses((status = 202, description = "Queued; the delivery to follow.", body = Delivery))
)]
pub async fn test(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let d = ops::send_test(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(d.to_json()))
}

/// Lists a subscription's deliveries, newest first (`webhook:read`).
#[utoipa::path(
    get, path = "/api/webhooks/{id}/deliveries", tag = "Webhooks",
    params(
        ("id" = String, Path, description = "The subscription's id."),
        ("status" = Option<String>, Query, description = "Only deliveries in this state: `pending`, `sending`, `delivered` or `dead`."),
        ("type" = Option<String>, Query, description = "Only deliveries of this event type (`deal.won`)."),
        ("limit" = Option<i64>, Query, description = "1–200 (50 unless said)."),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`.")
    ),
    responses((status = 200, description = "One page of deliveries.", body = ListEnvelope<Delivery>))
)]
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

/// Sends deliveries again as new deliveries with the same payloads (`webhook:admin`): one
/// by id, or every one made in a time range.
#[utoipa::path(
    post, path = "/api/webhooks/{id}/replay", tag = "Webhooks", request_body = ReplayBody,
    params(("id" = String, Path, description = "The subscription's id.")),
    responses((status = 202, description = "Queued again.", body = Replayed))
)]
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
    Ok(HttpResponse::Accepted().json(Replayed { replayed: n }))
}
