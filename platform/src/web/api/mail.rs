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

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

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
    let days = match get("days") {
        None => 2,
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=365).contains(n))
            .ok_or_else(|| AppError::invalid("days", "Use a number of days from 0 to 365."))?,
    };
    let view = match (get("filter[clientId]"), get("view").as_deref()) {
        (Some(id), _) => View::Client(id),
        (None, None | Some("all")) => View::All,
        (None, Some("conversations")) => View::Conversations,
        (None, Some("mine")) => View::Mine,
        (None, Some("unanswered")) => View::Unanswered(days),
        (None, Some("unmatched")) => View::Unmatched,
        (None, Some("outbox")) => View::Outbox,
        (None, Some(_)) => {
            return Err(AppError::invalid(
                "view",
                "Use all, conversations, mine, unanswered, unmatched or outbox.",
            ))
        }
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

/// `GET /api/messages/{id}/attachments/{file}`: the file's bytes (always a download).
pub async fn message_file(
    scope: ApiScope,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, file) = path.into_inner();
    let (name, ctype, bytes) = ops::message_file(&scope, id, file).await?;
    Ok(crate::web::upload::download_response(&name, &ctype, bytes))
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

// ---- /api/templates ----------------------------------------------------------------------

fn text_field(body: &Map<String, Value>, k: &str) -> String {
    body.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

type TemplateFields = (Option<String>, String, String, String);

fn template_fields(body: &Map<String, Value>) -> AppResult<TemplateFields> {
    let unknown: Vec<_> = body
        .keys()
        .filter(|k| !["kind", "name", "subject", "body"].contains(&k.as_str()))
        .map(|k| crate::error::FieldError::new(k, "Unknown field."))
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::Validation(
            "The template could not be saved.".into(),
            unknown,
        ));
    }
    Ok((
        Some(text_field(body, "kind")).filter(|k| !k.is_empty()),
        text_field(body, "name"),
        text_field(body, "subject"),
        text_field(body, "body"),
    ))
}

pub async fn list_templates(scope: ApiScope) -> AppResult<HttpResponse> {
    let data = ops::templates(&scope)
        .await?
        .iter()
        .map(|t| t.to_json())
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

pub async fn create_template(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let (kind, name, subject, text) = template_fields(&object(body)?)?;
    let t = ops::save_template(&scope, None, kind, name, subject, text).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/templates/{}", t.id)))
        .json(t.to_json()))
}

pub async fn show_template(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (t, versions) = ops::template(&scope, id.into_inner()).await?;
    let mut body = t.to_json();
    body["versions"] = json!(versions
        .iter()
        .map(|(v, s, b, at)| json!({"version": v, "subject": s, "body": b, "createdAt": at.and_utc().to_rfc3339()}))
        .collect::<Vec<_>>());
    Ok(HttpResponse::Ok().json(body))
}

pub async fn update_template(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let (kind, name, subject, text) = template_fields(&object(body)?)?;
    Ok(HttpResponse::Ok().json(
        ops::save_template(&scope, Some(id.into_inner()), kind, name, subject, text)
            .await?
            .to_json(),
    ))
}

pub async fn delete_template(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete_template(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `{"subject", "body", "clientId"}` or `{"templateId", "clientId"}`, optionally with the
/// `opportunityId` whose fields `{{ deal.… }}` reads: the text as it would read.
pub async fn preview_template(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let body = object(body)?;
    let client = text_field(&body, "clientId");
    if client.is_empty() {
        return Err(AppError::invalid(
            "clientId",
            "Choose the client to preview against.",
        ));
    }
    let (subject, text) = match body.get("templateId").and_then(Value::as_str) {
        Some(id) => {
            let (t, _) = ops::template(&scope, id.to_string()).await?;
            (t.subject, t.body)
        }
        None => (text_field(&body, "subject"), text_field(&body, "body")),
    };
    let deal = Some(text_field(&body, "opportunityId")).filter(|d| !d.is_empty());
    let (subject, text) = ops::preview(&scope, subject, text, client, deal).await?;
    Ok(HttpResponse::Ok().json(json!({"subject": subject, "text": text})))
}

// ---- /api/sends --------------------------------------------------------------------------

fn audience_of(body: &Map<String, Value>) -> AppResult<crate::domain::sends::Audience> {
    use crate::domain::sends::Audience;
    match body.get("audience") {
        Some(Value::Object(a)) => match (a.get("query"), a.get("clientIds")) {
            (Some(Value::String(q)), None) => Ok(Audience::Query(q.trim_start_matches('?').to_string())),
            (None, Some(Value::Array(ids))) if ids.len() <= crate::domain::sends::MAX_RECIPIENTS => Ok(Audience::Clients(
                ids.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            )),
            _ => Err(AppError::invalid(
                "audience",
                "Give the audience as {\"query\": \"filter[status]=customer\"} or {\"clientIds\": [...]}.",
            )),
        },
        _ => Err(AppError::invalid("audience", "Say who it goes to: {\"query\": …} or {\"clientIds\": [...]}.")),
    }
}

pub async fn preview_send(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let tally = ops::preview_send(&scope, audience_of(&object(body)?)?).await?;
    Ok(HttpResponse::Ok().json(tally.to_json()))
}

pub async fn create_send(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let body = object(body)?;
    const KEYS: &[&str] = &[
        "name",
        "templateId",
        "mailboxId",
        "audience",
        "perMinute",
        "scheduledAt",
    ];
    if let Some(k) = body.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(AppError::invalid(k, "Unknown field."));
    }
    let per_minute = match body.get("perMinute") {
        None => 60,
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                AppError::invalid("perMinute", "Use a whole number of messages a minute.")
            })?,
    };
    let scheduled_at = match body.get("scheduledAt").and_then(Value::as_str) {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| {
                    AppError::invalid("scheduledAt", "Use a time like 2026-12-01T09:00:00Z.")
                })?
                .naive_utc(),
        ),
    };
    let input = crate::domain::sends::NewSend {
        name: text_field(&body, "name"),
        template_id: text_field(&body, "templateId"),
        mailbox_id: text_field(&body, "mailboxId"),
        audience: audience_of(&body)?,
        per_minute,
        scheduled_at,
    };
    let (row, tally) = ops::create_send(&scope, input).await?;
    let mut report = ops::send_report(&scope, row.id.clone()).await?;
    report["audience"] = tally.to_json();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/sends/{}", row.id)))
        .json(report))
}

pub async fn list_sends(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = ops::sends(&scope).await?;
    let mut data = Vec::with_capacity(rows.len());
    for r in rows {
        data.push(ops::send_report(&scope, r.id).await?);
    }
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// The report, with its figures hour by hour (`overTime`, UTC).
pub async fn show_send(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let mut report = ops::send_report(&scope, id.clone()).await?;
    report["overTime"] = Value::Array(ops::send_over_time(&scope, id).await?);
    Ok(HttpResponse::Ok().json(report))
}

/// `GET /api/mail/settings`
pub async fn settings(scope: ApiScope) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(serde_json::json!({"tracking": ops::tracking(&scope).await?})))
}

/// `PUT /api/mail/settings` with `{"tracking": false}`: opens and clicks are no longer
/// recorded, and new bulk messages carry neither the pixel nor tracked links.
pub async fn update_settings(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let body = object(body)?;
    if let Some(k) = body.keys().find(|k| k.as_str() != "tracking") {
        return Err(AppError::invalid(k, "Unknown field."));
    }
    let on = body
        .get("tracking")
        .and_then(Value::as_bool)
        .ok_or_else(|| AppError::invalid("tracking", "Use true or false."))?;
    ops::set_tracking(&scope, on).await?;
    settings(scope).await
}

/// `GET /api/mail/bounces`: addresses that bounced, newest first (nothing is sent to them).
pub async fn bounces(scope: ApiScope) -> AppResult<HttpResponse> {
    let data: Vec<Value> = ops::bounces(&scope)
        .await?
        .into_iter()
        .map(|(address, reason, at)| {
            serde_json::json!({"address": address, "reason": reason,
                               "bouncedAt": at.and_utc().to_rfc3339()})
        })
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// `DELETE /api/mail/bounces/{address}`: the address works again.
pub async fn clear_bounce(scope: ApiScope, address: web::Path<String>) -> AppResult<HttpResponse> {
    ops::clear_bounce(&scope, address.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn send_recipients(
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
    };
    let limit = match get("limit") {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| AppError::invalid("limit", "Use a limit from 1 to 500."))?,
    };
    let data = ops::send_recipients(
        &scope,
        id.into_inner(),
        get("filter[state]"),
        get("cursor"),
        limit + 1,
    )
    .await?;
    let mut data = data;
    let next_cursor = if data.len() as i64 > limit {
        data.truncate(limit as usize);
        data.last()
            .and_then(|r| r["id"].as_str())
            .map(str::to_string)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ListEnvelope { data, next_cursor }))
}

pub async fn pause_send(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let r = ops::act_send(&scope, id.into_inner(), "pause").await?;
    Ok(HttpResponse::Ok().json(ops::send_report(&scope, r.id).await?))
}

pub async fn resume_send(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let r = ops::act_send(&scope, id.into_inner(), "resume").await?;
    Ok(HttpResponse::Ok().json(ops::send_report(&scope, r.id).await?))
}

pub async fn cancel_send(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let r = ops::act_send(&scope, id.into_inner(), "cancel").await?;
    Ok(HttpResponse::Ok().json(ops::send_report(&scope, r.id).await?))
}
