//! The import wizard: upload a CSV (preset, kind, what to do with duplicates) → map columns,
//! with a preview of what each of the first rows would do → run in the background with
//! progress → counts, row errors and a one-click revert.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::domain::imports::{self, BatchRow};
use crate::error::AppResult;
use crate::ops::imports as ops;
use crate::state::AppState;
use crate::web::console::{redirect, redirect_with_flash, render};

pub struct BatchView {
    pub id: String,
    pub file: String,
    pub kind: String,
    pub preset: String,
    pub status: String,
    pub total: i32,
    pub processed: i32,
    pub created: i32,
    pub updated: i32,
    pub skipped: i32,
    pub failed: i32,
    pub when: String,
    pub percent: i64,
}

fn view(b: &BatchRow, local: &crate::locale::Local) -> BatchView {
    BatchView {
        id: b.id.clone(),
        file: b.file_name.clone(),
        kind: b.kind.clone(),
        preset: b.preset.clone(),
        status: b.status.clone(),
        total: b.total_rows,
        processed: b.processed_rows,
        created: b.created_count,
        updated: b.updated_count,
        skipped: b.skipped_count,
        failed: b.failed_count,
        when: local.datetime(b.created_at),
        percent: if b.total_rows == 0 {
            100
        } else {
            i64::from(b.processed_rows) * 100 / i64::from(b.total_rows)
        },
    }
}

#[derive(Template)]
#[template(path = "partials/imports/list.html")]
struct ListPage {
    batches: Vec<BatchView>,
}

/// `GET /imports`.
pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let rows = ops::list(&scope).await?;
    let page = ListPage {
        batches: rows.iter().map(|b| view(b, &scope.local)).collect(),
    };
    render(&req, &actor, "Import", &page).await
}

/// `PUT /imports/upload?name=&preset=&kind=&mode=` with the file as the body.
pub async fn upload(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let input = crate::web::upload::stage_input(&req, "name")?;
    // A refused file comes back as a toast with the reason (the upload script shows it).
    let batch = ops::stage(&scope, body.to_vec(), input)
        .await
        .map_err(crate::web::console::as_toast)?;
    Ok(redirect(&req, &format!("/imports/{}", batch.id)))
}

pub struct ColumnView {
    pub index: usize,
    pub header: String,
    pub sample: String,
    pub target: String,
}

pub struct PreviewRow {
    pub line: usize,
    pub summary: String,
    pub action: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "partials/imports/show.html")]
struct ShowPage {
    b: BatchView,
    mode: String,
    columns: Vec<ColumnView>,
    /// (target, label): the kind's fields and the organization's custom fields.
    targets: Vec<(String, String)>,
    preview: Vec<PreviewRow>,
    errors: Vec<(String, String)>,
    /// The progress card alone (htmx polling while it runs).
    progress_only: bool,
}

fn column_views(m: &ops::Mapping) -> Vec<ColumnView> {
    let mapping = m.batch.mapping();
    m.columns
        .iter()
        .enumerate()
        .map(|(i, (header, sample))| ColumnView {
            index: i,
            header: header.clone(),
            sample: sample.clone(),
            target: mapping.get(i).cloned().flatten().unwrap_or_default(),
        })
        .collect()
}

fn preview_row((line, cells, r): imports::PreviewRow) -> PreviewRow {
    let summary = cells
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "companyName" | "firstName" | "lastName" | "email" | "name" | "stage"
            )
        })
        .map(|(_, v)| v.clone())
        .collect::<Vec<_>>()
        .join(" · ");
    let (action, error) = match r {
        Ok(a) => (a, String::new()),
        Err(e) => (String::new(), e),
    };
    PreviewRow {
        line,
        summary,
        action,
        error,
    }
}

/// The row errors the run recorded: (row, message).
fn row_errors(b: &BatchRow) -> Vec<(String, String)> {
    serde_json::from_str::<Vec<serde_json::Value>>(&b.errors)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["row"].as_i64().map(|r| r.to_string()).unwrap_or_default(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn show_batch(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    id: String,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let progress_only = req.query_string().contains("progress=1");
    let m = ops::mapping(&scope, id, if progress_only { 0 } else { 10 }).await?;
    let page = ShowPage {
        b: view(&m.batch, &scope.local),
        mode: m.batch.mode.clone(),
        columns: column_views(&m),
        errors: row_errors(&m.batch),
        targets: m.targets,
        preview: m.preview.into_iter().map(preview_row).collect(),
        progress_only,
    };
    render(req, actor, "Import", &page).await
}

/// `GET /imports/{id}[?progress=1]`.
pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    show_batch(&req, &actor, &state, id.into_inner()).await
}

/// `POST /imports/{id}/mapping`: `col<i>` = target (or empty), `mode`.
pub async fn mapping(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs: Vec<(String, String)> = crate::web::console::form_pairs(&body)?;
    let mode = pairs
        .iter()
        .find(|(k, _)| k == "mode")
        .map(|(_, v)| v.clone());
    let mut cols: Vec<(usize, Option<String>)> = pairs
        .iter()
        .filter_map(|(k, v)| {
            let i = k.strip_prefix("col")?.parse::<usize>().ok()?;
            Some((i, Some(v.clone()).filter(|v| !v.is_empty())))
        })
        .collect();
    cols.sort_by_key(|(i, _)| *i);
    let mapping = if cols.is_empty() {
        None
    } else {
        Some(cols.into_iter().map(|(_, t)| t).collect())
    };
    let id = id.into_inner();
    ops::configure(&scope, id.clone(), mapping, mode)
        .await
        .map_err(crate::web::console::as_toast)?;
    show_batch(&req, &actor, &state, id).await
}

/// `POST /imports/{id}/run`.
pub async fn run(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let b = ops::start(&scope, id.into_inner())
        .await
        .map_err(crate::web::console::as_toast)?;
    Ok(redirect(&req, &format!("/imports/{}", b.id)))
}

/// `POST /imports/{id}/revert`.
pub async fn revert(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let b = ops::revert(&scope, id.into_inner()).await?;
    redirect_with_flash(
        &req,
        &format!("/imports/{}", b.id),
        &format!(
            "The import of {} was reverted: {} records removed, {} restored.",
            b.file_name, b.created_count, b.updated_count
        ),
    )
}
