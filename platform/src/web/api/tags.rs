//! `/api/tags`: the organization's tag catalogue (`tag:read`, `tag:write`, `tag:delete`).

use actix_web::{http::header, web, HttpResponse};
use serde_json::json;

use super::ListEnvelope;
use crate::domain::clients::TagRow;
use crate::error::AppResult;
use crate::ops::tags::{self as ops, TagInput};
use crate::web::scope::ApiScope;

fn tag_json(t: &TagRow, usage: i64) -> serde_json::Value {
    json!({"id": t.id, "name": t.name, "color": t.color, "clients": usage})
}

pub async fn list(scope: ApiScope) -> AppResult<HttpResponse> {
    let data = ops::catalogue(&scope)
        .await?
        .iter()
        .map(|(t, n)| tag_json(t, *n))
        .collect::<Vec<_>>();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

pub async fn create(scope: ApiScope, body: web::Json<TagInput>) -> AppResult<HttpResponse> {
    let tag = ops::define(&scope, body.into_inner()).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/tags/{}", tag.id)))
        .json(tag_json(&tag, 0)))
}

pub async fn update(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<TagInput>,
) -> AppResult<HttpResponse> {
    let tag = ops::update(&scope, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(tag_json(&tag, 0)))
}

pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
