//! Imports: `POST /api/imports?preset=&kind=&mode=&fileName=` with the CSV as the body
//! (answers the batch and a preview of its first rows), `PATCH /api/imports/{id}` (mapping,
//! mode), `POST /api/imports/{id}/run` (queued for the background worker),
//! `POST /api/imports/{id}/revert`, `GET /api/imports[/{id}]`. Every call needs `client:write` and
//! `client:delete` (and `opportunity:write` for deals), as in the console (`ops::imports`).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::ListEnvelope;
use crate::domain::imports::{self, BatchRow};
use crate::error::{AppError, AppResult};
use crate::ops::imports as ops;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(upload, list, show, configure, run, revert))]
pub struct Doc;

/// An import batch: one uploaded file and what became of its rows.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes `BatchRow::to_json` (built in the domain) for /api/openapi.json.
pub struct ImportBatch {
    id: String,
    file_name: String,
    /// The system the file came from: generic, salesforce, hubspot, …
    preset: String,
    /// companies, contacts or deals.
    kind: String,
    /// What a row matching an existing record does: update, skip or create.
    mode: String,
    /// preview, queued, running, done, failed or reverted.
    status: String,
    /// The target field of each column, in order (null: not imported).
    mapping: Vec<Option<String>>,
    total_rows: i32,
    processed_rows: i32,
    created: i32,
    updated: i32,
    skipped: i32,
    failed: i32,
    /// The first row errors (the counts cover all).
    errors: Vec<ImportError>,
    created_at: String,
    finished_at: Option<String>,
}

/// An import batch with a preview of its first rows.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes `BatchRow::to_json` plus `preview` for /api/openapi.json.
pub struct ImportBatchPreview {
    id: String,
    file_name: String,
    preset: String,
    kind: String,
    mode: String,
    status: String,
    mapping: Vec<Option<String>>,
    total_rows: i32,
    processed_rows: i32,
    created: i32,
    updated: i32,
    skipped: i32,
    failed: i32,
    errors: Vec<ImportError>,
    created_at: String,
    finished_at: Option<String>,
    /// The first 20 rows as they would import; nothing is kept.
    preview: Vec<PreviewLine>,
}

/// A row that failed.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the batch's stored errors for /api/openapi.json.
pub struct ImportError {
    /// The line in the file (null: the file as a whole).
    row: Option<i64>,
    message: String,
}

/// A previewed row: its mapped values and what it would do, or why it would fail.
#[derive(Serialize, ToSchema)]
#[schema(as = ImportPreviewLine)]
pub struct PreviewLine {
    /// The line in the file.
    line: usize,
    /// Field → value as mapped.
    values: BTreeMap<String, String>,
    /// create, update, or `skip: <why>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A batch's new column mapping and/or match mode.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct ImportSettings {
    /// One target field (or null: not imported) per column.
    mapping: Option<Vec<Option<String>>>,
    /// update, skip or create.
    mode: Option<String>,
}

fn preview_json(rows: &[imports::PreviewRow]) -> Value {
    json!(rows
        .iter()
        .map(|(line, cells, r)| PreviewLine {
            line: *line,
            values: cells.iter().cloned().collect(),
            action: r.as_ref().ok().cloned(),
            error: r.as_ref().err().cloned(),
        })
        .collect::<Vec<_>>())
}

/// Stages a file for import and previews its first rows (`client:write`, `client:delete`; deals also `opportunity:write`).
///
/// The file (a CSV export of a spreadsheet or another CRM) is the raw request body. Nothing
/// is imported until the batch runs.
#[utoipa::path(post, path = "/api/imports", tag = "Imports",
    request_body(content = String, content_type = "text/csv",
        description = "The file, at most 50 MB: UTF-8 or Windows-1252, separated by commas, semicolons, tabs or pipes."),
    params(
        ("preset" = Option<String>, Query, description = "The system it came from: generic (default), salesforce, hubspot."),
        ("kind" = Option<String>, Query, description = "companies, contacts or deals; guessed from the headers when left out."),
        ("mode" = Option<String>, Query, description = "A row matching an existing record: update (default), skip or create."),
        ("fileName" = Option<String>, Query, description = "The file's name, as the batch shows it."),
    ),
    responses((status = 201, description = "Staged; `Location` names the batch.", body = ImportBatchPreview)))]
pub async fn upload(
    scope: ApiScope,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let input = crate::web::upload::stage_input(&req, "fileName")?;
    let batch = ops::stage(&scope, body.to_vec(), input).await?;
    let preview = ops::preview(&scope, batch.clone(), 20).await?;
    let mut out = batch.to_json();
    out["preview"] = preview_json(&preview);
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header(("Location", format!("/api/imports/{}", batch.id)))
        .json(out))
}

/// Lists the organization's import batches (`client:write`, `client:delete`).
///
/// One page, no cursor.
#[utoipa::path(get, path = "/api/imports", tag = "Imports",
    responses((status = 200, description = "The batches.", body = ListEnvelope<ImportBatch>)))]
pub async fn list(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = ops::list(&scope).await?;
    Ok(HttpResponse::Ok().json(json!({
        "data": rows.iter().map(BatchRow::to_json).collect::<Vec<_>>(),
        "nextCursor": null,
    })))
}

/// Reads an import batch and its progress (`client:write`, `client:delete`).
#[utoipa::path(get, path = "/api/imports/{id}", tag = "Imports",
    params(("id" = String, Path, description = "The batch's id.")),
    responses((status = 200, description = "The batch.", body = ImportBatch)))]
pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let b = ops::get(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(b.to_json()))
}

/// Changes a staged batch's column mapping or match mode (`client:write`, `client:delete`).
///
/// Answers the batch with a new preview of its first rows.
#[utoipa::path(patch, path = "/api/imports/{id}", tag = "Imports", request_body = ImportSettings,
    params(("id" = String, Path, description = "The batch's id.")),
    responses((status = 200, description = "Changed.", body = ImportBatchPreview)))]
pub async fn configure(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let mapping = match body.get("mapping") {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<Vec<Option<String>>>(v.clone()).map_err(|_| {
                AppError::invalid(
                    "mapping",
                    "Send a list with one field name (or null) per column.",
                )
            })?,
        ),
    };
    let mode = body.get("mode").and_then(Value::as_str).map(str::to_string);
    let b = ops::configure(&scope, id.into_inner(), mapping, mode).await?;
    let preview = ops::preview(&scope, b.clone(), 20).await?;
    let mut out = b.to_json();
    out["preview"] = preview_json(&preview);
    Ok(HttpResponse::Ok().json(out))
}

/// Queues a staged batch for import (`client:write`, `client:delete`; deals also `opportunity:write`).
///
/// The background worker imports it; read the batch for its progress.
#[utoipa::path(post, path = "/api/imports/{id}/run", tag = "Imports",
    params(("id" = String, Path, description = "The batch's id.")),
    responses((status = 202, description = "Queued.", body = ImportBatch)))]
pub async fn run(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let b = ops::start(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(b.to_json()))
}

/// Reverts an imported batch (`client:write`, `client:delete`; deals also `opportunity:write`).
///
/// Records it created are removed and records it updated get their prior values back.
#[utoipa::path(post, path = "/api/imports/{id}/revert", tag = "Imports",
    params(("id" = String, Path, description = "The batch's id.")),
    responses((status = 200, description = "Reverted.", body = ImportBatch)))]
pub async fn revert(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let b = ops::revert(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(b.to_json()))
}
