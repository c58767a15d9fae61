//! `/api/tags`: the organization's tag catalogue (`tag:read`, `tag:write`, `tag:delete`).

use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::ListEnvelope;
use crate::auth::ApiActor;
use crate::db;
use crate::domain::clients::{service, store, TagRow};
use crate::error::AppResult;
use crate::state::AppState;

fn tag_json(t: &TagRow, usage: i64) -> serde_json::Value {
    json!({"id": t.id, "name": t.name, "color": t.color, "clients": usage})
}

pub async fn list(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("tag", "read").await?;
    let org = actor.org_id().to_string();
    let data = db::run(&state.pool, move |c| {
        let usage: std::collections::HashMap<String, i64> =
            store::tag_usage(c, &org)?.into_iter().collect();
        Ok(store::list_tags(c, &org)?
            .iter()
            .map(|t| tag_json(t, usage.get(&t.id).copied().unwrap_or(0)))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagInput {
    name: Option<String>,
    color: Option<String>,
}

pub async fn create(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<TagInput>,
) -> AppResult<HttpResponse> {
    actor.require("tag", "write").await?;
    let ctx = actor.audit();
    let b = body.into_inner();
    let tag = db::run(&state.pool, move |c| {
        service::define_tag(
            c,
            &ctx,
            b.name.as_deref().unwrap_or_default(),
            b.color.as_deref().unwrap_or("gray"),
        )
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/tags/{}", tag.id)))
        .json(tag_json(&tag, 0)))
}

pub async fn update(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<TagInput>,
) -> AppResult<HttpResponse> {
    actor.require("tag", "write").await?;
    let ctx = actor.audit();
    let b = body.into_inner();
    let tag = db::run(&state.pool, move |c| {
        service::update_tag(c, &ctx, &id, b.name.as_deref(), b.color.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(tag_json(&tag, 0)))
}

pub async fn delete(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("tag", "delete").await?;
    let ctx = actor.audit();
    db::run(&state.pool, move |c| service::delete_tag(c, &ctx, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
