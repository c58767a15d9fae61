//! Interactions: `GET/POST /api/clients/{id}/interactions` (the timeline, newest first, and
//! logging one), `GET/PUT/DELETE /api/interactions/{id}`. Reading needs `client:read`,
//! logging, editing and deleting `client:write`, always on a client the actor sees.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use super::{etag, if_match_version, ListEnvelope};
use crate::domain::appointments::Upserted;
use crate::domain::interactions::{self as service, InteractionRow};
use crate::error::{AppError, AppResult};
use crate::ops::interactions::{self as ops, InteractionView, Target, TimelineQuery};
use crate::web::query_pairs;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid(
            "body",
            "Send the interaction as a JSON object.",
        )),
    }
}

/// Reads the timeline filters: `filter[type]`, `filter[owner]`, `filter[from]`,
/// `filter[to]` (dates or date-times).
pub fn parse_filter(pairs: &[(String, String)]) -> AppResult<service::Filter> {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let kind = get("filter[type]");
    if let Some(k) = &kind {
        if !service::KINDS.contains(&k.as_str()) && k != service::EVENT {
            return Err(AppError::invalid(
                "filter[type]",
                "Filter by call, meeting, email, note, task or event.",
            ));
        }
    }
    let day = |k: &str, end: bool| -> AppResult<Option<chrono::NaiveDateTime>> {
        let Some(v) = get(k) else { return Ok(None) };
        if let Ok(d) = chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
            let d = if end { d.succ_opt().unwrap_or(d) } else { d };
            return Ok(d.and_hms_opt(0, 0, 0));
        }
        chrono::DateTime::parse_from_rfc3339(&v)
            .map(|t| Some(t.naive_utc()))
            .map_err(|_| AppError::invalid(k, "Use a date like 2026-12-01."))
    };
    Ok(service::Filter {
        kind,
        owner: get("filter[owner]"),
        from: day("filter[from]", false)?,
        // A day given as the end includes that day.
        to: day("filter[to]", true)?,
    })
}

async fn list_scope(scope: ApiScope, req: HttpRequest, target: Target) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let limit = match get("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| AppError::invalid("limit", "Use a limit from 1 to 500."))?,
    };
    let after = match get("cursor") {
        None => None,
        Some(c) => Some(service::parse_cursor(&c).ok_or_else(|| {
            AppError::invalid("cursor", "Use the nextCursor of the previous page.")
        })?),
    };
    let filter = parse_filter(&pairs)?;
    let page = ops::timeline(
        &scope,
        target,
        TimelineQuery {
            filter,
            after,
            limit,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        next_cursor: page.next,
        data: page
            .rows
            .iter()
            .map(|r| service::to_json_with(r, page.participants.get(&r.id).map_or(&[][..], |v| v)))
            .collect::<Vec<_>>(),
    }))
}

/// `GET /api/clients/{id}/interactions`: the client's timeline, newest first.
pub async fn list(
    scope: ApiScope,
    req: HttpRequest,
    client: web::Path<String>,
) -> AppResult<HttpResponse> {
    list_scope(scope, req, Target::Client(client.into_inner())).await
}

/// `GET /api/opportunities/{id}/interactions`: what happened about one deal.
pub async fn list_deal(
    scope: ApiScope,
    req: HttpRequest,
    deal: web::Path<String>,
) -> AppResult<HttpResponse> {
    list_scope(scope, req, Target::Deal(deal.into_inner())).await
}

fn respond(status: StatusCode, v: &InteractionView) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::ETAG, etag(v.row.version)));
    if status == StatusCode::CREATED {
        b.insert_header((header::LOCATION, format!("/api/interactions/{}", v.row.id)));
    }
    b.json(v.to_json())
}

pub async fn create(
    scope: ApiScope,
    client: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let v = ops::log(&scope, Target::Client(client.into_inner()), object(body)?).await?;
    Ok(respond(StatusCode::CREATED, &v))
}

pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let v = ops::get(&scope, id.into_inner()).await?;
    Ok(respond(StatusCode::OK, &v))
}

/// Changes the fields sent (others stay); `If-Match` or `version` guards against a
/// concurrent edit.
pub async fn update(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let v = ops::update(&scope, id.into_inner(), object(body)?, expected).await?;
    Ok(respond(StatusCode::OK, &v))
}

pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/clients/{id}/preferences`.
pub async fn preferences(scope: ApiScope, client: web::Path<String>) -> AppResult<HttpResponse> {
    let p = crate::ops::clients::preferences(&scope, client.into_inner()).await?;
    Ok(HttpResponse::Ok().json(p.to_json()))
}

/// `PUT /api/clients/{id}/preferences`: changes the parts sent.
pub async fn set_preferences(
    scope: ApiScope,
    client: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let p =
        crate::ops::clients::set_preferences(&scope, client.into_inner(), object(body)?).await?;
    Ok(HttpResponse::Ok().json(p.to_json()))
}

fn task_json(r: &InteractionRow, client: &str, today: chrono::NaiveDate) -> Value {
    let mut v = service::to_json(r);
    v["clientName"] = Value::String(client.to_string());
    v["bucket"] = Value::String(service::bucket(r.due_at, today).to_string());
    v
}

/// `GET /api/tasks`: the caller's open tasks, soonest due first, each with `bucket`
/// (overdue, today, upcoming).
pub async fn tasks(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = ops::my_tasks(&scope).await?;
    let today = chrono::Utc::now().date_naive();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows
            .iter()
            .map(|(r, client)| task_json(r, client, today))
            .collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

/// `POST /api/tasks {"clientId", "subject", "dueAt"?, "priority"?, "assigneeId"?, "content"?}`.
pub async fn create_task(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let mut body = object(body)?;
    let client = body
        .remove("clientId")
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| AppError::invalid("clientId", "Say which client the task is for."))?;
    let v = ops::create_task(&scope, client, body).await?;
    Ok(respond(StatusCode::CREATED, &v))
}

/// `POST /api/tasks/{id}/complete`.
pub async fn complete_task(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let v = ops::complete_task(&scope, id.into_inner()).await?;
    Ok(respond(StatusCode::OK, &v))
}

/// `POST /api/appointments`: a meeting from an external appointment system; sending the same
/// `externalId` again updates it (200) instead of adding another (201).
pub async fn appointment(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let (v, how) = ops::appointment(&scope, object(body)?).await?;
    let status = match how {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    Ok(respond(status, &v))
}

pub fn ics_report_json(r: &crate::domain::appointments::IcsReport) -> Value {
    serde_json::json!({
        "created": r.created,
        "updated": r.updated,
        "skipped": r.skipped.iter().map(|(s, why)| serde_json::json!({"summary": s, "reason": why})).collect::<Vec<_>>(),
    })
}

/// `POST /api/calendar/import[?clientId=]` with a `text/calendar` body: each invitation
/// becomes a meeting with the client among its attendees (or `clientId`).
pub async fn import_ics(
    scope: ApiScope,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let client = pairs
        .iter()
        .find(|(k, _)| k == "clientId")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty());
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| AppError::invalid("file", "The calendar file is not UTF-8 text."))?;
    let report = ops::import_ics(&scope, text, client).await?;
    Ok(HttpResponse::Ok().json(ics_report_json(&report)))
}

/// `GET /api/calendar?from=&to=&scope=me|team`: planned calls and meetings (at most 62 days).
pub async fn calendar(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let date = |k: &str| -> AppResult<Option<chrono::NaiveDate>> {
        get(k)
            .map(|v| {
                chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                    .map_err(|_| AppError::invalid(k, "Use a date like 2026-12-01."))
            })
            .transpose()
    };
    let from = date("from")?.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let to = date("to")?.unwrap_or(from + chrono::Duration::days(7));
    let team = match get("scope").as_deref() {
        None | Some("me") => false,
        Some("team") => true,
        Some(_) => return Err(AppError::invalid("scope", "Use me or team.")),
    };
    let rows = ops::calendar(&scope, from, to, team).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows
            .iter()
            .map(|(r, client)| {
                let mut v = service::to_json(r);
                v["clientName"] = Value::String(client.clone());
                v
            })
            .collect::<Vec<_>>(),
        next_cursor: None,
    }))
}
