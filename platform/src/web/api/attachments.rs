//! Attachments on clients, deals and interactions:
//! `POST /api/{clients|opportunities|interactions}/{id}/attachments` with a
//! `multipart/form-data` body (part `file`, optional `sensitive`) or the raw file as the body
//! (`?name=&sensitive=`), `GET` on the same path lists them, `GET /api/attachments/{id}/content`
//! (`?inline=1` shows images in place), `DELETE /api/attachments/{id}` (to the trash).
//! Reading needs `read` and uploading or deleting `write` on what the file is on.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::domain::attachments::Parent;
use crate::error::{AppError, AppResult};
use crate::ops::attachments as ops;
use crate::state::AppState;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

/// The parent named by `/api/{clients|opportunities|interactions}/{id}/attachments`.
fn parent_of(path: (String, String)) -> AppResult<Parent> {
    Parent::from_segment(&path.0, path.1).ok_or(AppError::NotFound)
}

pub async fn upload(
    scope: ApiScope,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let parent = parent_of(path.into_inner())?;
    scope.require(parent.object(), "write")?;
    let file =
        crate::web::upload::read_upload(&req, payload, state.config.max_upload_bytes).await?;
    let row = ops::upload(&scope, parent, file).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/attachments/{}", row.id)))
        .json(row.to_json()))
}

pub async fn list(scope: ApiScope, path: web::Path<(String, String)>) -> AppResult<HttpResponse> {
    let rows = ops::list(&scope, parent_of(path.into_inner())?).await?;
    Ok(HttpResponse::Ok().json(json!({
        "data": rows.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        "nextCursor": null,
    })))
}

pub async fn content(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let (row, bytes) = ops::download(&scope, id.into_inner()).await?;
    Ok(crate::web::upload::file_response(&req, &row, bytes))
}

pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
