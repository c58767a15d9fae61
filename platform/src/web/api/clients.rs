//! `/api/clients`: clients with filters, sorts and keyset paging; the trash; tags and
//! relations of a client; bulk actions. Every rule is in `ops::clients`; these handlers
//! read the request and write the response.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{etag, if_match_version, ListEnvelope};
use crate::domain::clients::service::WriteMode;
use crate::domain::clients::TagRow;
use crate::error::{AppError, AppResult};
use crate::ops::clients::{self as ops, BulkInput, ClientView, TagChange};
use crate::web::query_pairs;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

fn respond(status: StatusCode, view: &ClientView) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::ETAG, etag(view.row.version)));
    if status == StatusCode::CREATED {
        res.insert_header((header::LOCATION, format!("/api/clients/{}", view.row.id)));
    }
    res.json(view)
}

async fn list_of(scope: ApiScope, req: HttpRequest, trash: bool) -> AppResult<HttpResponse> {
    /// The list envelope, with `total` when `count=true` asked for it.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Counted {
        data: Vec<ClientView>,
        next_cursor: Option<String>,
        total: ops::Total,
    }
    let page = ops::list(&scope, query_pairs(&req)?, trash).await?;
    Ok(match page.total {
        Some(total) => HttpResponse::Ok().json(Counted {
            data: page.data,
            next_cursor: page.next_cursor,
            total,
        }),
        None => HttpResponse::Ok().json(ListEnvelope {
            data: page.data,
            next_cursor: page.next_cursor,
        }),
    })
}

pub async fn list(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    list_of(scope, req, false).await
}

pub async fn list_trash(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    list_of(scope, req, true).await
}

pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let view = ops::get(&scope, id.into_inner()).await?;
    Ok(respond(StatusCode::OK, &view))
}

/// `GET /api/clients/:id/opportunities`: its deals (a company's with its people's, open
/// first), their quotes and its contracts.
pub async fn opportunities(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    scope.require("opportunity", "read")?;
    let deals = ops::deals(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(deals.to_json()))
}

fn body_object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid(
            "body",
            "Send the client as a JSON object.",
        )),
    }
}

pub async fn create(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let view = ops::create(&scope, body_object(body)?).await?;
    Ok(respond(StatusCode::CREATED, &view))
}

async fn write(
    scope: ApiScope,
    req: HttpRequest,
    id: String,
    body: web::Json<Value>,
    mode: WriteMode,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let view = ops::update(&scope, id, body_object(body)?, mode, expected).await?;
    Ok(respond(StatusCode::OK, &view))
}

pub async fn replace(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(scope, req, id.into_inner(), body, WriteMode::Replace).await
}

pub async fn patch(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(scope, req, id.into_inner(), body, WriteMode::Merge).await
}

pub async fn delete(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    ops::trash(&scope, id.into_inner(), if_match_version(&req)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn restore(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let view = ops::restore(&scope, id.into_inner()).await?;
    Ok(respond(StatusCode::OK, &view))
}

pub async fn purge(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::purge(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
struct TagDto {
    id: String,
    name: String,
    color: String,
}

impl From<TagRow> for TagDto {
    fn from(t: TagRow) -> Self {
        Self {
            id: t.id,
            name: t.name,
            color: t.color,
        }
    }
}

pub async fn client_tags(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let tags = ops::tags(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: tags.into_iter().map(TagDto::from).collect(),
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRef {
    /// A tag id or name.
    tag: String,
}

pub async fn add_client_tag(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<TagRef>,
) -> AppResult<HttpResponse> {
    match ops::set_tag(&scope, id.into_inner(), body.into_inner().tag, true).await? {
        TagChange::Changed(tag) | TagChange::Unchanged(tag) => {
            Ok(HttpResponse::Ok().json(TagDto::from(tag)))
        }
        TagChange::NoSuchTag => Err(AppError::invalid("tag", "There is no such tag.")),
    }
}

pub async fn remove_client_tag(
    scope: ApiScope,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, reference) = path.into_inner();
    match ops::set_tag(&scope, id, reference, false).await? {
        TagChange::Changed(_) => Ok(HttpResponse::NoContent().finish()),
        TagChange::Unchanged(_) | TagChange::NoSuchTag => Err(AppError::NotFound),
    }
}

pub async fn relations(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (_, data) = ops::relations(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRelation {
    client_id: String,
    label: String,
}

pub async fn relate(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<NewRelation>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let row = ops::relate(&scope, id.into_inner(), body.client_id, body.label).await?;
    Ok(HttpResponse::Created().json(json!({
        "id": row.id, "clientId": row.to_client_id, "label": row.label, "direction": "outgoing"
    })))
}

pub async fn unrelate(
    scope: ApiScope,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, rel) = path.into_inner();
    ops::unrelate(&scope, id, rel).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn bulk(scope: ApiScope, body: web::Json<BulkInput>) -> AppResult<HttpResponse> {
    let done = ops::bulk(&scope, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({"updated": done})))
}
