//! Imports: `POST /api/imports?preset=&kind=&mode=&fileName=` with the CSV as the body
//! (answers the batch and a preview of its first rows), `PATCH /api/imports/{id}` (mapping,
//! mode), `POST /api/imports/{id}/run` (queued for the background worker),
//! `POST /api/imports/{id}/revert`, `GET /api/imports[/{id}]`. Every call needs `client:write` and
//! `client:delete` (and `opportunity:write` for deals), as in the console (`ops::imports`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::domain::imports::{self, BatchRow};
use crate::error::{AppError, AppResult};
use crate::ops::imports as ops;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

fn preview_json(rows: &[imports::PreviewRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|(line, cells, r)| {
                let values: serde_json::Map<String, Value> = cells
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                match r {
                    Ok(action) => json!({"line": line, "values": values, "action": action}),
                    Err(e) => json!({"line": line, "values": values, "error": e}),
                }
            })
            .collect(),
    )
}

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

pub async fn list(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = ops::list(&scope).await?;
    Ok(HttpResponse::Ok().json(json!({
        "data": rows.iter().map(BatchRow::to_json).collect::<Vec<_>>(),
        "nextCursor": null,
    })))
}

pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let b = ops::get(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(b.to_json()))
}

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

pub async fn run(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let b = ops::start(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(b.to_json()))
}

pub async fn revert(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let b = ops::revert(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(b.to_json()))
}
