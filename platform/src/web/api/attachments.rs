//! Attachments on clients, deals and interactions:
//! `POST /api/{clients|opportunities|interactions}/{id}/attachments` with a
//! `multipart/form-data` body (part `file`, optional `sensitive`) or the raw file as the body
//! (`?name=&sensitive=`), `GET` on the same path lists them, `GET /api/attachments/{id}/content`
//! (`?inline=1` shows images in place), `DELETE /api/attachments/{id}` (to the trash).
//! Reading needs `read` and uploading or deleting `write` on what the file is on.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::ListEnvelope;
use crate::domain::attachments::Parent;
use crate::error::{AppError, AppResult};
use crate::ops::attachments as ops;
use crate::state::AppState;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(upload, list, content, delete))]
pub struct Doc;

/// A file on a client, a deal or an interaction.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `AttachmentRow::to_json` builds it.
pub struct Attachment {
    id: String,
    /// The client it belongs to (a deal's or an interaction's client for theirs).
    client_id: String,
    /// The deal it is on, if it is on one.
    opportunity_id: Option<String>,
    /// The interaction it is on, if it is on one.
    interaction_id: Option<String>,
    file_name: String,
    /// The type its content shows (`image/png`, `application/pdf`, `text/plain;
    /// charset=utf-8`, …), whatever its name says.
    content_type: String,
    /// In bytes.
    size: i64,
    /// The SHA-256 of the content, in hex.
    sha256: String,
    /// Only those allowed to read sensitive values may download it.
    sensitive: bool,
    /// The id of the member who uploaded it.
    uploaded_by: Option<String>,
    created_at: DateTime<Utc>,
    /// Where to download it (`/api/attachments/{id}/content`).
    url: String,
}

/// A file sent as a form.
#[derive(ToSchema)]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads the form itself.
pub struct UploadForm {
    /// The file (its name is the part's file name unless `name` says otherwise).
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// The name to keep instead of the part's file name.
    name: Option<String>,
    /// `true` (or `1`, `on`) to mark it sensitive.
    sensitive: Option<String>,
}

/// The parent named by `/api/{clients|opportunities|interactions}/{id}/attachments`.
fn parent_of(path: (String, String)) -> AppResult<Parent> {
    Parent::from_segment(&path.0, path.1).ok_or(AppError::NotFound)
}

/// Uploads a file onto a client, a deal or an interaction (`write` on it: `client:write`,
/// `opportunity:write` or `interaction:write`), as a `multipart/form-data` form or as the
/// raw body with `?name=`.
#[utoipa::path(post, path = "/api/{parent}/{id}/attachments", tag = "Attachments",
    params(
        ("parent" = String, Path, description = "What the file is on: `clients`, `opportunities` or `interactions`."),
        ("id" = String, Path, description = "The client's, deal's or interaction's id."),
        ("name" = Option<String>, Query, description = "The file's name (a raw body; a form may say it too)."),
        ("sensitive" = Option<bool>, Query, description = "`true` marks the file sensitive."),
    ),
    request_body(description = "The file, in a form (part `file`) or as the raw body.",
        content((UploadForm = "multipart/form-data"), ("application/octet-stream"))),
    responses((status = 201, description = "Stored; `Location` names it.", body = Attachment)))]
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

/// Lists the files on a client, a deal or an interaction (`read` on it; one page, no cursor).
#[utoipa::path(get, path = "/api/{parent}/{id}/attachments", tag = "Attachments",
    params(
        ("parent" = String, Path, description = "What the files are on: `clients`, `opportunities` or `interactions`."),
        ("id" = String, Path, description = "The client's, deal's or interaction's id."),
    ),
    responses((status = 200, description = "The files, newest first.", body = ListEnvelope<Attachment>)))]
pub async fn list(scope: ApiScope, path: web::Path<(String, String)>) -> AppResult<HttpResponse> {
    let rows = ops::list(&scope, parent_of(path.into_inner())?).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

/// Downloads a file (`read` on what it is on; audited); `?inline=1` shows an image in place.
#[utoipa::path(get, path = "/api/attachments/{id}/content", tag = "Attachments",
    params(
        ("id" = String, Path, description = "The file's id."),
        ("inline" = Option<String>, Query, description = "`1` shows an image in place instead of downloading it."),
    ),
    responses((status = 200, description = "The file's content, typed as its content shows.",
        content(("image/png"), ("image/jpeg"), ("image/gif"), ("image/webp"), ("application/pdf"),
            ("application/zip"), ("text/plain"), ("application/octet-stream")))))]
pub async fn content(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let (row, bytes) = ops::download(&scope, id.into_inner()).await?;
    Ok(crate::web::upload::file_response(&req, &row, bytes))
}

/// Moves a file to the trash (`write` on what it is on).
#[utoipa::path(delete, path = "/api/attachments/{id}", tag = "Attachments",
    params(("id" = String, Path, description = "The file's id.")),
    responses((status = 204, description = "In the trash.")))]
pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
