//! Duplicates: `GET /api/clients/{id}/duplicates` (likely twins of a client),
//! `GET /api/duplicates` (the groups the background scan found), `POST /api/duplicates/scan`
//! (ask for a fresh scan), `POST /api/clients/{id}/merge`
//! (`{"duplicateId", "fields": [...]}`; answers the survivor and `undoId`) and
//! `POST /api/merges/{undoId}/undo`. Merging needs `client:write` and `client:delete`.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::ApiActor;
use crate::db;
use crate::domain::clients::duplicates::{self, Candidate};
use crate::domain::custom_fields;
use crate::error::{AppError, AppResult};
use crate::web::client_access;

pub fn candidates_json(list: &[Candidate]) -> Value {
    Value::Array(
        list.iter()
            .map(|c| json!({"id": c.id, "displayName": c.name, "reason": c.reason}))
            .collect(),
    )
}

pub async fn of_client(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let list = db::run(&state.pool, move |c| {
        let row = crate::domain::clients::service::get(c, &org, &access, &id)?;
        duplicates::candidates(c, &access, &row)
    })
    .await?;
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

/// The groups the last background scan found (as far as the actor sees), and the scan's
/// state. The first look at an organization never scanned asks for a scan.
pub async fn groups(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let (groups, scan) = db::run(&state.pool, move |c| {
        duplicates::page(c, &org, &access, 500)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "scan": scan_json(&scan),
        "data": groups.iter().map(|g| json!({
            "reason": g.reason,
            "clients": g.clients.iter().map(|(id, name)| json!({"id": id, "displayName": name})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>()
    })))
}

/// `POST /api/duplicates/scan`: asks for a fresh scan (202 with the scan's state).
pub async fn request_scan(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    // why: a scan reads the whole organization; only those who may merge (write and
    // delete clients) may start one.
    actor.require("client", "write").await?;
    actor.require("client", "delete").await?;
    let org = actor.org_id().to_string();
    let scan = db::run(&state.pool, move |c| duplicates::request_scan(c, &org)).await?;
    Ok(HttpResponse::Accepted().json(json!({"scan": scan_json(&scan)})))
}

/// Merges `duplicate` into `survivor` as the actor.
pub async fn run_merge(
    actor: &crate::auth::Actor,
    state: &AppState,
    survivor: String,
    duplicate: String,
    fields: Vec<String>,
) -> AppResult<(crate::domain::clients::ClientRow, String)> {
    actor.require("client", "write").await?;
    actor.require("client", "delete").await?;
    let access = client_access(actor).await?;
    let ctx = actor.audit();
    crate::web::run_with_plugins(state, actor.org_id().to_string(), move |c, ext| {
        let defs = custom_fields::store::list(c, &ctx.org_id, "client", false)?;
        let w = crate::domain::clients::service::WriteContext {
            ctx: &ctx,
            access: &access,
            defs: &defs,
            external: ext,
        };
        duplicates::merge(c, &w, &survivor, &duplicate, &fields)
    })
    .await
}

pub async fn merge(
    actor: ApiActor,
    state: web::Data<AppState>,
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
    let (row, undo) = run_merge(&actor, &state, id.into_inner(), duplicate, fields).await?;
    Ok(HttpResponse::Ok().json(json!({"client": {"id": row.id, "displayName": row.display_name, "version": row.version}, "undoId": undo})))
}

pub async fn undo(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    actor.require("client", "delete").await?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| duplicates::undo(c, &ctx, &id)).await?;
    Ok(HttpResponse::Ok().json(json!({"client": {"id": row.id, "displayName": row.display_name}})))
}
