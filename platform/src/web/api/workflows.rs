//! Workflows: `/api/workflows` (list, create; `…/catalogue` says what triggers and steps
//! exist), `/api/workflows/{id}` (read, change — a new definition is a new version —,
//! delete), `…/versions`, `…/runs`, `…/dry-run`, `…/rotate-url`, `/api/workflow-runs`
//! (by record) and `/api/workflow-runs/{id}` (a run step by step), and the incoming call
//! `POST /api/hooks/workflows/{secret}` (no token: the secret in the URL is the credential).

use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::ListEnvelope;
use crate::domain::workflows::{ACTIONS, DATE_FIELDS, TRIGGERS};
use crate::error::{AppError, AppResult};
use crate::ops::workflows as ops;
use crate::state::AppState;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid("body", "Send a JSON object.")),
    }
}

fn with_url(mut out: Value, secret: Option<String>) -> Value {
    if let Some(s) = secret {
        out["incomingUrl"] = json!(format!("/api/hooks/workflows/{s}"));
    }
    out
}

pub async fn catalogue(scope: ApiScope) -> AppResult<HttpResponse> {
    scope.require("workflow", "read")?;
    let pairs = |l: &[(&str, &str)]| -> Vec<Value> {
        l.iter()
            .map(|(k, d)| json!({"type": k, "description": d}))
            .collect()
    };
    Ok(HttpResponse::Ok().json(json!({
        "triggers": pairs(TRIGGERS), "steps": pairs(ACTIONS),
        "dates": DATE_FIELDS.iter().map(|(k, d)| json!({"field": k, "description": d})).collect::<Vec<_>>(),
    })))
}

pub async fn list(scope: ApiScope) -> AppResult<HttpResponse> {
    let data = ops::list(&scope)
        .await?
        .iter()
        .map(|(w, d)| w.to_json(d))
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// `POST /api/workflows`: a workflow started by an incoming call is answered with its
/// `incomingUrl`, shown this once.
pub async fn create(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let input = ops::input_from(&object(body)?)?;
    let (row, secret) = ops::create(&scope, input).await?;
    let (row, def) = ops::get(&scope, row.id).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/workflows/{}", row.id)))
        .insert_header((crate::web::idempotency::REDACT_HEADER, "incomingUrl"))
        .json(with_url(row.to_json(&def), secret)))
}

pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (row, def) = ops::get(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(row.to_json(&def)))
}

pub async fn update(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let input = ops::input_from(&object(body)?)?;
    let (row, secret) = ops::update(&scope, id.into_inner(), input).await?;
    let (row, def) = ops::get(&scope, row.id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((crate::web::idempotency::REDACT_HEADER, "incomingUrl"))
        .json(with_url(row.to_json(&def), secret)))
}

pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn versions(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let data = ops::versions(&scope, id.into_inner())
        .await?
        .iter()
        .map(|v| {
            json!({"version": v.version, "definition": v.definition(),
                   "createdBy": v.created_by, "createdAt": v.created_at.and_utc().to_rfc3339()})
        })
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunsQuery {
    record_id: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

fn runs_page(runs: Vec<crate::domain::workflows::RunRow>, limit: i64) -> HttpResponse {
    let next = (runs.len() as i64 == limit)
        .then(|| runs.last().map(|r| r.id.clone()))
        .flatten();
    HttpResponse::Ok().json(ListEnvelope {
        data: runs.iter().map(|r| r.to_json()).collect(),
        next_cursor: next,
    })
}

pub async fn runs(
    scope: ApiScope,
    id: web::Path<String>,
    q: web::Query<RunsQuery>,
) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let runs = ops::runs(&scope, Some(id.into_inner()), q.record_id, q.cursor, limit).await?;
    Ok(runs_page(runs, limit))
}

/// `GET /api/workflow-runs?recordId=…`: every workflow's runs on one record.
pub async fn record_runs(scope: ApiScope, q: web::Query<RunsQuery>) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let Some(record) = q.record_id else {
        return Err(AppError::invalid(
            "recordId",
            "Name the record whose runs to list.",
        ));
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let runs = ops::runs(&scope, None, Some(record), q.cursor, limit).await?;
    Ok(runs_page(runs, limit))
}

pub async fn run(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (run, steps, flow, def) = ops::run_detail(&scope, id.into_inner()).await?;
    let mut out = run.to_json();
    out["workflow"] = json!({"id": flow.id, "name": flow.name});
    out["steps"] = json!(def
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let done = steps.iter().find(|r| r.position as usize == i);
            json!({"position": i, "type": s.kind, "definition": s,
                   "status": done.map(|d| d.status.as_str()).unwrap_or("not run"),
                   "outcome": done.map(|d| d.outcome.clone()),
                   "finishedAt": done.map(|d| d.finished_at.and_utc().to_rfc3339())})
        })
        .collect::<Vec<_>>());
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DryRun {
    record_type: String,
    record_id: String,
}

pub async fn dry_run(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<DryRun>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let lines = ops::dry_run(&scope, id.into_inner(), b.record_type, b.record_id).await?;
    Ok(HttpResponse::Ok().json(json!({"wouldDo": lines})))
}

pub async fn rotate_url(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let secret = ops::rotate_hook(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((crate::web::idempotency::REDACT_HEADER, "incomingUrl"))
        .json(with_url(json!({}), Some(secret))))
}

/// `POST /api/hooks/workflows/{secret}`: starts a run; 202 with its id.
pub async fn incoming(
    state: web::Data<AppState>,
    secret: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    if body.len() > ops::MAX_HOOK_BODY {
        return Err(AppError::PayloadTooLarge(format!(
            "Send at most {} KB.",
            ops::MAX_HOOK_BODY / 1024
        )));
    }
    let value: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| AppError::invalid("body", "Send a JSON object."))?
    };
    if !value.is_object() {
        return Err(AppError::invalid("body", "Send a JSON object."));
    }
    let id = ops::incoming(&state.pool, secret.into_inner(), value).await?;
    Ok(HttpResponse::Accepted().json(json!({"runId": id})))
}
