//! Interactions: `GET/POST /api/clients/{id}/interactions` (the timeline, newest first, and
//! logging one), `GET/PUT/DELETE /api/interactions/{id}`. Reading needs `client:read`,
//! logging, editing and deleting `client:write`, always on a client the actor sees.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use super::{etag, if_match_version, ListEnvelope};
use crate::auth::ApiActor;
use crate::db;
use crate::domain::interactions::{self as service, InteractionRow};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::{client_access, query_pairs};

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

async fn list_scope(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    scope: service::Scope,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    actor.require("interaction", "read").await?;
    // why: a deal's timeline holds the deal's notes: it needs the right to read deals.
    if let service::Scope::Deal(_) = scope {
        actor.require("opportunity", "read").await?;
    }
    let access = client_access(&actor).await?;
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
    let org = actor.org_id().to_string();
    let (rows, parts) = db::run(&state.pool, move |c| {
        let rows = service::timeline(c, &org, &access, &scope, &filter, after, limit + 1)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let parts = service::participants_of(c, &ids)?;
        Ok((rows, parts))
    })
    .await?;
    let more = rows.len() as i64 > limit;
    let page: Vec<&InteractionRow> = rows.iter().take(limit as usize).collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        next_cursor: more
            .then(|| page.last().map(|r| service::cursor_of(r)))
            .flatten(),
        data: page
            .iter()
            .map(|r| service::to_json_with(r, parts.get(&r.id).map_or(&[][..], |v| v)))
            .collect::<Vec<_>>(),
    }))
}

/// `GET /api/clients/{id}/interactions`: the client's timeline, newest first.
pub async fn list(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    client: web::Path<String>,
) -> AppResult<HttpResponse> {
    list_scope(
        actor,
        state,
        req,
        service::Scope::Client(client.into_inner()),
    )
    .await
}

/// `GET /api/opportunities/{id}/interactions`: what happened about one deal.
pub async fn list_deal(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    deal: web::Path<String>,
) -> AppResult<HttpResponse> {
    list_scope(actor, state, req, service::Scope::Deal(deal.into_inner())).await
}

fn respond(
    status: StatusCode,
    (r, parts): &(InteractionRow, Vec<service::Participant>),
) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::ETAG, etag(r.version)));
    if status == StatusCode::CREATED {
        b.insert_header((header::LOCATION, format!("/api/interactions/{}", r.id)));
    }
    b.json(service::to_json_with(r, parts))
}

fn with_parts(
    c: &mut crate::db::DbConn,
    r: InteractionRow,
) -> AppResult<(InteractionRow, Vec<service::Participant>)> {
    let parts = service::participants_of(c, std::slice::from_ref(&r.id))?
        .remove(&r.id)
        .unwrap_or_default();
    Ok((r, parts))
}

pub async fn create(
    actor: ApiActor,
    state: web::Data<AppState>,
    client: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    actor.require("interaction", "write").await?;
    let access = client_access(&actor).await?;
    let body = object(body)?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| {
        let r = service::create(c, &ctx, &access, &client, &body)?;
        with_parts(c, r)
    })
    .await?;
    Ok(respond(StatusCode::CREATED, &row))
}

pub async fn show(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    actor.require("interaction", "read").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let row = db::run(&state.pool, move |c| {
        let r = service::get(c, &org, &access, &id)?;
        with_parts(c, r)
    })
    .await?;
    Ok(respond(StatusCode::OK, &row))
}

/// Changes the fields sent (others stay); `If-Match` or `version` guards against a
/// concurrent edit.
pub async fn update(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    actor.require("interaction", "write").await?;
    let access = client_access(&actor).await?;
    let expected = if_match_version(&req)?;
    let body = object(body)?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| {
        let r = service::update(c, &ctx, &access, &id, &body, expected)?;
        with_parts(c, r)
    })
    .await?;
    Ok(respond(StatusCode::OK, &row))
}

pub async fn delete(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("interaction", "write").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    db::run(&state.pool, move |c| service::delete(c, &ctx, &access, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/clients/{id}/preferences`.
pub async fn preferences(
    actor: ApiActor,
    state: web::Data<AppState>,
    client: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    actor.require("interaction", "read").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let p = db::run(&state.pool, move |c| {
        crate::domain::clients::service::get(c, &org, &access, &client)?;
        crate::domain::preferences::load(c, &org, &client)
    })
    .await?;
    Ok(HttpResponse::Ok().json(p.to_json()))
}

/// `PUT /api/clients/{id}/preferences`: changes the parts sent.
pub async fn set_preferences(
    actor: ApiActor,
    state: web::Data<AppState>,
    client: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    actor.require("interaction", "write").await?;
    let access = client_access(&actor).await?;
    let body = object(body)?;
    let ctx = actor.audit();
    let p = db::run(&state.pool, move |c| {
        crate::domain::preferences::update(c, &ctx, &access, &client, &body)
    })
    .await?;
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
pub async fn tasks(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    actor.require("interaction", "read").await?;
    let (org, user) = (actor.org_id().to_string(), actor.user_id.clone());
    let rows = db::run(&state.pool, move |c| service::open_tasks(c, &org, &user)).await?;
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
pub async fn create_task(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    actor.require("interaction", "write").await?;
    let access = client_access(&actor).await?;
    let mut body = object(body)?;
    let client = body
        .remove("clientId")
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| AppError::invalid("clientId", "Say which client the task is for."))?;
    body.insert("type".into(), Value::String("task".into()));
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| {
        let r = service::create(c, &ctx, &access, &client, &body)?;
        with_parts(c, r)
    })
    .await?;
    Ok(respond(StatusCode::CREATED, &row))
}

/// `POST /api/tasks/{id}/complete`.
pub async fn complete_task(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("interaction", "write").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| {
        let r = service::complete_task(c, &ctx, &access, &id)?;
        with_parts(c, r)
    })
    .await?;
    Ok(respond(StatusCode::OK, &row))
}

/// `POST /api/appointments`: a meeting from an external appointment system; sending the same
/// `externalId` again updates it (200) instead of adding another (201).
pub async fn appointment(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    actor.require("interaction", "write").await?;
    let access = client_access(&actor).await?;
    let body = object(body)?;
    let ctx = actor.audit();
    let (row, how) = db::run(&state.pool, move |c| {
        let (r, how) = crate::domain::appointments::receive(c, &ctx, &access, &body)?;
        Ok((with_parts(c, r)?, how))
    })
    .await?;
    let status = match how {
        crate::domain::appointments::Upserted::Created => StatusCode::CREATED,
        crate::domain::appointments::Upserted::Updated => StatusCode::OK,
    };
    Ok(respond(status, &row))
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
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("interaction", "write").await?;
    let access = client_access(&actor).await?;
    let pairs = query_pairs(&req)?;
    let client = pairs
        .iter()
        .find(|(k, _)| k == "clientId")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty());
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| AppError::invalid("file", "The calendar file is not UTF-8 text."))?;
    let ctx = actor.audit();
    let org = actor.org_id().to_string();
    let report = db::run(&state.pool, move |c| {
        if let Some(id) = &client {
            crate::domain::clients::service::get(c, &org, &access, id)?;
        }
        crate::domain::appointments::import_ics(c, &ctx, &access, &text, client.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(ics_report_json(&report)))
}

/// `GET /api/calendar?from=&to=&scope=me|team`: planned calls and meetings (at most 62 days).
pub async fn calendar(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    actor.require("interaction", "read").await?;
    let access = client_access(&actor).await?;
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
    let today = chrono::Utc::now().date_naive();
    let from = date("from")?.unwrap_or(today);
    let to = date("to")?.unwrap_or(from + chrono::Duration::days(7));
    if to <= from || (to - from).num_days() > 62 {
        return Err(AppError::invalid(
            "to",
            "Ask for a range of 1 to 62 days after from.",
        ));
    }
    let team = match get("scope").as_deref() {
        None | Some("me") => false,
        Some("team") => true,
        Some(_) => return Err(AppError::invalid("scope", "Use me or team.")),
    };
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| {
        let users = service::calendar_users(c, &org, &access, team)?;
        crate::domain::calendar::between(
            c,
            &org,
            &users,
            from.and_hms_opt(0, 0, 0).unwrap_or_default(),
            to.and_hms_opt(0, 0, 0).unwrap_or_default(),
            2000,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows
            .iter()
            .map(|(r, client, _)| {
                let mut v = service::to_json(r);
                v["clientName"] = Value::String(client.clone());
                v
            })
            .collect::<Vec<_>>(),
        next_cursor: None,
    }))
}
