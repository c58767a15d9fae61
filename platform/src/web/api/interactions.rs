//! Interactions: `GET/POST /api/clients/{id}/interactions` (the timeline, newest first, and
//! logging one), `GET/PUT/DELETE /api/interactions/{id}`. Reading needs `client:read`,
//! logging, editing and deleting `client:write`, always on a client the actor sees.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use super::{etag, if_match_version, ListEnvelope};
use crate::app::AppState;
use crate::auth::ApiActor;
use crate::db;
use crate::domain::interactions::{self as service, InteractionRow};
use crate::error::{AppError, AppResult};
use crate::web::{client_access, query_pairs};

fn respond(status: StatusCode, r: &InteractionRow) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::ETAG, etag(r.version)));
    if status == StatusCode::CREATED {
        b.insert_header((header::LOCATION, format!("/api/interactions/{}", r.id)));
    }
    b.json(service::to_json(r))
}

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid(
            "body",
            "Send the interaction as a JSON object.",
        )),
    }
}

pub async fn list(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    client: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
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
    let kind = get("filter[type]");
    if let Some(k) = &kind {
        if !service::KINDS.contains(&k.as_str()) {
            return Err(AppError::invalid(
                "filter[type]",
                "Filter by call, meeting, email, note or task.",
            ));
        }
    }
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| {
        service::timeline(c, &org, &access, &client, kind.as_deref(), after, limit + 1)
    })
    .await?;
    let more = rows.len() as i64 > limit;
    let page: Vec<&InteractionRow> = rows.iter().take(limit as usize).collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        next_cursor: more
            .then(|| page.last().map(|r| service::cursor_of(r)))
            .flatten(),
        data: page.iter().map(|r| service::to_json(r)).collect::<Vec<_>>(),
    }))
}

pub async fn create(
    actor: ApiActor,
    state: web::Data<AppState>,
    client: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let body = object(body)?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| {
        service::create(c, &ctx, &access, &client, &body)
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
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let row = db::run(&state.pool, move |c| service::get(c, &org, &access, &id)).await?;
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
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let expected = if_match_version(&req)?;
    let body = object(body)?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| {
        service::update(c, &ctx, &access, &id, &body, expected)
    })
    .await?;
    Ok(respond(StatusCode::OK, &row))
}

pub async fn delete(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
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
    actor.require("client", "write").await?;
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
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let mut body = object(body)?;
    let client = body
        .remove("clientId")
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| AppError::invalid("clientId", "Say which client the task is for."))?;
    body.insert("type".into(), Value::String("task".into()));
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| {
        service::create(c, &ctx, &access, &client, &body)
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
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| complete(c, &ctx, &access, &id)).await?;
    Ok(respond(StatusCode::OK, &row))
}

/// Marks a task done (only tasks).
pub fn complete(
    c: &mut crate::db::DbConn,
    ctx: &crate::domain::audit::AuditContext,
    access: &crate::domain::clients::service::Access,
    id: &str,
) -> AppResult<InteractionRow> {
    let task = service::get(c, &ctx.org_id, access, id)?;
    if task.kind != "task" {
        return Err(AppError::NotFound);
    }
    let mut body = Map::new();
    body.insert("status".into(), Value::String("completed".into()));
    service::update(c, ctx, access, id, &body, None)
}
