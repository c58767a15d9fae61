//! E-mail: `/api/mailboxes` (connect, change, remove, `/test`, `/sync`) and `/api/messages`
//! (list with `view=all|unmatched|outbox` or `filter[clientId]`, read with its thread,
//! write — `POST` is safe to retry with `Idempotency-Key` — send again, file on a client).

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::ListEnvelope;
use crate::domain::mail::{MailboxInput, View};
use crate::error::{AppError, AppResult};
use crate::ops::mail as ops;
use crate::web::query_pairs;
use crate::web::scope::ApiScope;

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid("body", "Send a JSON object.")),
    }
}

fn input(body: &Map<String, Value>) -> AppResult<MailboxInput> {
    MailboxInput::from_json(body)
        .map_err(|e| AppError::Validation("The mailbox could not be saved.".into(), e))
}

pub async fn list_mailboxes(scope: ApiScope) -> AppResult<HttpResponse> {
    let data = ops::mailboxes(&scope)
        .await?
        .iter()
        .map(|m| m.to_json())
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

pub async fn create_mailbox(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let body = object(body)?;
    let shared = match body.get("shared") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(AppError::invalid("shared", "Use true or false.")),
    };
    let m = ops::create_mailbox(&scope, shared, input(&body)?).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/mailboxes/{}", m.id)))
        .json(m.to_json()))
}

pub async fn show_mailbox(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::mailbox(&scope, id.into_inner()).await?.to_json()))
}

pub async fn update_mailbox(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let body = object(body)?;
    if body.contains_key("shared") {
        return Err(AppError::invalid(
            "shared",
            "A mailbox stays shared or personal; connect another one instead.",
        ));
    }
    let m = ops::update_mailbox(&scope, id.into_inner(), input(&body)?).await?;
    Ok(HttpResponse::Ok().json(m.to_json()))
}

pub async fn delete_mailbox(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete_mailbox(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn test_mailbox(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::test_mailbox(&scope, id.into_inner()).await?.to_json()))
}

pub async fn sync_mailbox(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::sync_mailbox(&scope, id.into_inner()).await?.to_json()))
}

pub async fn list_messages(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
    };
    let limit = match get("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| AppError::invalid("limit", "Use a limit from 1 to 500."))?,
    };
    let view = match (get("filter[clientId]"), get("view").as_deref()) {
        (Some(id), _) => View::Client(id),
        (None, None | Some("all")) => View::All,
        (None, Some("unmatched")) => View::Unmatched,
        (None, Some("outbox")) => View::Outbox,
        (None, Some(_)) => return Err(AppError::invalid("view", "Use all, unmatched or outbox.")),
    };
    let (rows, next_cursor) = ops::list(&scope, view, get("cursor"), limit).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(|m| m.to_json()).collect(),
        next_cursor,
    }))
}

pub async fn show_message(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (msg, thread) = ops::get(&scope, id.into_inner()).await?;
    let mut body = msg.to_json();
    body["thread"] = json!(thread
        .iter()
        .map(
            |m| json!({"id": m.row.id, "direction": m.row.direction, "from": m.row.from_address,
                         "subject": m.row.subject, "status": m.row.status,
                         "occurredAt": m.row.occurred_at.and_utc().to_rfc3339()})
        )
        .collect::<Vec<_>>());
    Ok(HttpResponse::Ok().json(body))
}

pub async fn send(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let draft = ops::draft_from(&object(body)?)?;
    let m = ops::send(&scope, draft).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/messages/{}", m.row.id)))
        .json(m.to_json()))
}

pub async fn resend(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Accepted().json(ops::resend(&scope, id.into_inner()).await?.to_json()))
}

/// `{"clientId": "…"}` files it on that client; `{}` makes a person from the sender.
pub async fn file(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let body = object(body)?;
    let client = match body.get("clientId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(_) => {
            return Err(AppError::invalid(
                "clientId",
                "Name a client by its id, or leave it out to create one.",
            ))
        }
    };
    Ok(HttpResponse::Ok().json(
        ops::file_on(&scope, id.into_inner(), client)
            .await?
            .to_json(),
    ))
}
