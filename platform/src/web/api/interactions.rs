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
