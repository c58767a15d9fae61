//! Duplicates: `GET /api/clients/{id}/duplicates` (likely twins of a client),
//! `GET /api/duplicates` (the groups the background scan found), `POST /api/duplicates/scan`
//! (ask for a fresh scan), `POST /api/clients/{id}/merge`
//! (`{"duplicateId", "fields": [...]}`; answers the survivor and `undoId`) and
//! `POST /api/merges/{undoId}/undo`. Merging needs `client:write` and `client:delete`.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use crate::domain::clients::duplicates;
use crate::error::{AppError, AppResult};
use crate::ops::clients::candidates_json;
use crate::ops::duplicates as ops;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

pub async fn of_client(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let list = ops::of_client(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({"data": candidates_json(&list)})))
}

pub fn scan_json(st: &duplicates::ScanState) -> Value {
    let at = |t: Option<chrono::NaiveDateTime>| t.map(|t| t.and_utc().to_rfc3339());
    json!({
        "status": if st.running() { "running" } else if st.pending() { "queued" } else if st.finished_at.is_some() { "done" } else { "never" },
        "requestedAt": at(st.requested_at),
        "finishedAt": at(st.finished_at),
        "scannedClients": st.scanned_clients,
        "groups": st.group_count,
    })
}

/// The groups the last background scan found (as far as the caller sees), and the scan's
/// state. The first look at an organization never scanned asks for a scan.
pub async fn groups(scope: ApiScope) -> AppResult<HttpResponse> {
    let (groups, scan) = ops::groups(&scope, 500).await?;
    Ok(HttpResponse::Ok().json(json!({
        "scan": scan_json(&scan),
        "data": groups.iter().map(|g| json!({
            "reason": g.reason,
            "clients": g.clients.iter().map(|(id, name)| json!({"id": id, "displayName": name})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()
    })))
}

/// `POST /api/duplicates/scan`: asks for a fresh scan (202 with the scan's state).
pub async fn request_scan(scope: ApiScope) -> AppResult<HttpResponse> {
    let scan = ops::request_scan(&scope).await?;
    Ok(HttpResponse::Accepted().json(json!({"scan": scan_json(&scan)})))
}

pub async fn merge(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let duplicate = body
        .get("duplicateId")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            AppError::invalid("duplicateId", "Say which client to merge into this one.")
        })?
        .to_string();
    let fields: Vec<String> = match body.get("fields") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            AppError::invalid(
                "fields",
                "Send the names of the fields to take from the duplicate.",
            )
        })?,
    };
    let (row, undo) = ops::merge(&scope, id.into_inner(), duplicate, fields).await?;
    Ok(HttpResponse::Ok().json(json!({"client": {"id": row.id, "displayName": row.display_name, "version": row.version}, "undoId": undo})))
}

pub async fn undo(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let row = ops::undo(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({"client": {"id": row.id, "displayName": row.display_name}})))
}
