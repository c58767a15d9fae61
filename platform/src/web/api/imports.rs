//! Imports: `POST /api/imports?preset=&kind=&mode=&fileName=` with the CSV as the body
//! (answers the batch and a preview of its first rows), `PATCH /api/imports/{id}` (mapping,
//! mode), `POST /api/imports/{id}/run` (queued for the background worker),
//! `POST /api/imports/{id}/revert`, `GET /api/imports[/{id}]`. Importing and reverting need
//! `client:write` and `client:delete` (and `opportunity:write` for deals).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::auth::ApiActor;
use crate::db;
use crate::domain::imports::{self, BatchRow, Env, Kind, NewBatch};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::{client_access, query_pairs};

pub async fn require(actor: &crate::auth::Actor, kind: Option<Kind>) -> AppResult<()> {
    actor.require("client", "write").await?;
    actor.require("client", "delete").await?;
    if kind == Some(Kind::Deals) {
        actor.require("opportunity", "write").await?;
    }
    Ok(())
}

/// The first rows as they would import.
pub async fn preview_of(
    state: &AppState,
    actor: &crate::auth::Actor,
    batch: BatchRow,
    limit: usize,
) -> AppResult<Vec<imports::PreviewRow>> {
    let access = client_access(actor).await?;
    let ctx = actor.audit();
    let currency = actor.org.default_currency.clone();
    let data_dir = state.config.data_dir.clone();
    crate::web::run_with_plugins(state, actor.org_id().to_string(), move |c, ext| {
        let env = Env {
            ctx: &ctx,
            access: &access,
            batch: &batch,
            external: ext,
            rules: ext,
            default_currency: &currency,
            cache: Default::default(),
        };
        imports::preview(c, &data_dir, &env, limit)
    })
    .await
}

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

/// Stages an uploaded file (the body) as a batch from the query's `kind`, `preset`, `mode`
/// and file name (under `name_key`), for the API and the console alike.
pub async fn stage_upload(
    actor: &crate::auth::Actor,
    state: &AppState,
    req: &HttpRequest,
    body: web::Bytes,
    name_key: &str,
) -> AppResult<imports::BatchRow> {
    let pairs = query_pairs(req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let kind = match get("kind") {
        None => None,
        Some(k) => Some(
            Kind::parse(&k)
                .ok_or_else(|| AppError::invalid("kind", "Choose companies, contacts or deals."))?,
        ),
    };
    require(actor, kind).await?;
    let preset = get("preset").unwrap_or_else(|| "generic".into());
    let mode = get("mode").unwrap_or_else(|| "update".into());
    let name = get(name_key).unwrap_or_else(|| "import.csv".into());
    let ctx = actor.audit();
    let data_dir = state.config.data_dir.clone();
    db::run(&state.pool, move |c| {
        imports::stage(
            c,
            &ctx,
            &data_dir,
            &body,
            NewBatch {
                file_name: &name,
                preset: &preset,
                kind,
                mode: &mode,
            },
        )
    })
    .await
}

pub async fn upload(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let batch = stage_upload(&actor, &state, &req, body, "fileName").await?;
    require(&actor, Some(batch.kind())).await?;
    let preview = preview_of(&state, &actor, batch.clone(), 20).await?;
    let mut out = batch.to_json();
    out["preview"] = preview_json(&preview);
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header(("Location", format!("/api/imports/{}", batch.id)))
        .json(out))
}

pub async fn list(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| imports::list(c, &org)).await?;
    Ok(HttpResponse::Ok().json(json!({
        "data": rows.iter().map(BatchRow::to_json).collect::<Vec<_>>(),
        "nextCursor": null,
    })))
}

pub async fn show(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let org = actor.org_id().to_string();
    let b = db::run(&state.pool, move |c| imports::get(c, &org, &id)).await?;
    Ok(HttpResponse::Ok().json(b.to_json()))
}

pub async fn configure(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    require(&actor, None).await?;
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
    let org = actor.org_id().to_string();
    let b = db::run(&state.pool, move |c| {
        imports::configure(c, &org, &id, mapping, mode.as_deref())
    })
    .await?;
    let preview = preview_of(&state, &actor, b.clone(), 20).await?;
    let mut out = b.to_json();
    out["preview"] = preview_json(&preview);
    Ok(HttpResponse::Ok().json(out))
}

pub async fn run(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    require(&actor, None).await?;
    let ctx = actor.audit();
    let b = db::run(&state.pool, move |c| {
        let b = imports::get(c, &ctx.org_id, &id)?;
        Ok(b)
    })
    .await?;
    require(&actor, Some(b.kind())).await?;
    let ctx = actor.audit();
    let id = b.id.clone();
    let b = db::run(&state.pool, move |c| imports::start(c, &ctx, &id)).await?;
    Ok(HttpResponse::Accepted().json(b.to_json()))
}

pub async fn revert(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    require(&actor, None).await?;
    let ctx = actor.audit();
    let b = db::run(&state.pool, move |c| imports::revert(c, &ctx, &id)).await?;
    Ok(HttpResponse::Ok().json(b.to_json()))
}
