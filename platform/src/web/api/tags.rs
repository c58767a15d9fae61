//! `/api/tags`: the organization's tag catalogue (`tag:read`, `tag:write`, `tag:delete`).

use actix_web::{http::header, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::ListEnvelope;
use crate::domain::clients::TagRow;
use crate::error::AppResult;
use crate::ops::tags::{self as ops, TagInput};
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, update, delete))]
pub struct Doc;

/// A tag of the organization's catalogue.
#[derive(Serialize, ToSchema)]
pub struct Tag {
    id: String,
    name: String,
    /// A CSS colour (`#0a7cff`).
    color: String,
    /// How many clients wear it (0 in answers to a change).
    clients: i64,
}

fn tag_json(t: &TagRow, usage: i64) -> Tag {
    Tag {
        id: t.id.clone(),
        name: t.name.clone(),
        color: t.color.clone(),
        clients: usage,
    }
}

/// Every tag with the number of clients wearing it, by name (one page, no cursor).
#[utoipa::path(get, path = "/api/tags", tag = "Tags",
    responses((status = 200, description = "The catalogue.", body = ListEnvelope<Tag>)))]
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

/// Defines a tag (`tag:write`); names are unique per organization, ignoring case.
#[utoipa::path(post, path = "/api/tags", tag = "Tags", request_body = TagInput,
    responses((status = 201, description = "Defined; `Location` names it.", body = Tag)))]
pub async fn create(scope: ApiScope, body: web::Json<TagInput>) -> AppResult<HttpResponse> {
    let tag = ops::define(&scope, body.into_inner()).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/tags/{}", tag.id)))
        .json(tag_json(&tag, 0)))
}

/// Renames or recolours a tag (`tag:write`); clients wearing it keep it.
#[utoipa::path(patch, path = "/api/tags/{id}", tag = "Tags", request_body = TagInput,
    params(("id" = String, Path, description = "The tag's id.")),
    responses((status = 200, description = "Changed.", body = Tag)))]
pub async fn update(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<TagInput>,
) -> AppResult<HttpResponse> {
    let tag = ops::update(&scope, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(tag_json(&tag, 0)))
}

/// Deletes a tag (`tag:delete`) and takes it off every client.
#[utoipa::path(delete, path = "/api/tags/{id}", tag = "Tags",
    params(("id" = String, Path, description = "The tag's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
