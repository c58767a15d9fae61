//! Duplicates: `GET /api/clients/{id}/duplicates` (likely twins of a client),
//! `GET /api/duplicates` (the groups the background scan found), `POST /api/duplicates/scan`
//! (ask for a fresh scan), `POST /api/clients/{id}/merge`
//! (`{"duplicateId", "fields": [...]}`; answers the survivor and `undoId`) and
//! `POST /api/merges/{undoId}/undo`. Merging needs `client:write` and `client:delete`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::clients::Candidate;
use crate::domain::clients::duplicates;
use crate::error::{AppError, AppResult};
use crate::ops::duplicates as ops;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(of_client, groups, request_scan, merge, undo))]
pub struct Doc;

/// A client's likely twins.
#[derive(Serialize, ToSchema)]
pub struct Candidates {
    data: Vec<Candidate>,
}

/// Lists the clients the caller sees that are likely the same as a client (`client:read`).
#[utoipa::path(get, path = "/api/clients/{id}/duplicates", tag = "Duplicates",
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "Its likely twins (no paging).", body = Candidates)))]
pub async fn of_client(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let list = ops::of_client(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Candidates {
        data: list
            .into_iter()
            .map(|c| Candidate {
                id: c.id,
                display_name: c.name,
                reason: c.reason.to_string(),
            })
            .collect(),
    }))
}

/// The state of the organization's background duplicate scan.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scan {
    /// `never`, `queued`, `running` or `done`.
    status: &'static str,
    /// When a scan was last asked for.
    #[schema(format = DateTime)]
    requested_at: Option<String>,
    /// When the last scan finished.
    #[schema(format = DateTime)]
    finished_at: Option<String>,
    /// How many clients the last scan read.
    scanned_clients: i64,
    /// How many groups the last scan found.
    groups: i32,
}

pub fn scan_json(st: &duplicates::ScanState) -> Scan {
    let at = |t: Option<chrono::NaiveDateTime>| t.map(|t| t.and_utc().to_rfc3339());
    Scan {
        status: if st.running() {
            "running"
        } else if st.pending() {
            "queued"
        } else if st.finished_at.is_some() {
            "done"
        } else {
            "never"
        },
        requested_at: at(st.requested_at),
        finished_at: at(st.finished_at),
        scanned_clients: st.scanned_clients,
        groups: st.group_count,
    }
}

/// A client in a duplicate group.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    id: String,
    display_name: String,
}

/// Clients the scan found to be likely the same, oldest first.
#[derive(Serialize, ToSchema)]
pub struct DuplicateGroup {
    /// `same e-mail`, `same phone number` or `same name and company`.
    reason: &'static str,
    clients: Vec<GroupMember>,
}

/// The groups of the last scan and the scan's state.
#[derive(Serialize, ToSchema)]
pub struct DuplicateGroups {
    scan: Scan,
    /// At most 500 groups (no paging).
    data: Vec<DuplicateGroup>,
}

/// Lists the groups of likely duplicates the last background scan found, as far as the
/// caller sees them (`client:read`), with the scan's state; the first look at an
/// organization never scanned asks for a scan.
#[utoipa::path(get, path = "/api/duplicates", tag = "Duplicates",
    responses((status = 200, description = "The groups and the scan.", body = DuplicateGroups)))]
pub async fn groups(scope: ApiScope) -> AppResult<HttpResponse> {
    let (groups, scan) = ops::groups(&scope, 500).await?;
    Ok(HttpResponse::Ok().json(DuplicateGroups {
        scan: scan_json(&scan),
        data: groups
            .into_iter()
            .map(|g| DuplicateGroup {
                reason: g.reason,
                clients: g
                    .clients
                    .into_iter()
                    .map(|(id, display_name)| GroupMember { id, display_name })
                    .collect(),
            })
            .collect(),
    }))
}

/// A scan asked for.
#[derive(Serialize, ToSchema)]
pub struct ScanRequested {
    scan: Scan,
}

/// Asks for a fresh background duplicate scan (`client:write` and `client:delete`).
#[utoipa::path(post, path = "/api/duplicates/scan", tag = "Duplicates",
    responses((status = 202, description = "Asked for; the scan's state.", body = ScanRequested)))]
pub async fn request_scan(scope: ApiScope) -> AppResult<HttpResponse> {
    let scan = ops::request_scan(&scope).await?;
    Ok(HttpResponse::Accepted().json(ScanRequested {
        scan: scan_json(&scan),
    }))
}

/// Which client to merge into this one, and what to take from it.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct MergeRequest {
    /// The client merged away: it goes to the trash, and its interactions, deals,
    /// contracts, files, people and relations move to this one.
    duplicate_id: String,
    /// Fields to take from the duplicate instead of keeping this client's: firstName,
    /// lastName, companyName, email, phone, website, industry, source, status, assignedTo,
    /// address or `customFields.<key>`.
    fields: Option<Vec<String>>,
}

/// The client that survived a merge.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MergedClient {
    id: String,
    display_name: String,
    version: i64,
}

/// The survivor of a merge and what undoes it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Merged {
    client: MergedClient,
    /// Post to `/api/merges/{undoId}/undo` to undo the merge.
    undo_id: String,
}

/// Merges a duplicate into a client (`client:write` and `client:delete`).
#[utoipa::path(post, path = "/api/clients/{id}/merge", tag = "Duplicates", request_body = MergeRequest,
    params(("id" = String, Path, description = "The id of the client that survives.")),
    responses((status = 200, description = "Merged.", body = Merged)))]
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
    let (row, undo_id) = ops::merge(&scope, id.into_inner(), duplicate, fields).await?;
    Ok(HttpResponse::Ok().json(Merged {
        client: MergedClient {
            id: row.id,
            display_name: row.display_name,
            version: row.version,
        },
        undo_id,
    }))
}

/// The client a merge was undone on.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UndoneClient {
    id: String,
    display_name: String,
}

/// The survivor of an undone merge.
#[derive(Serialize, ToSchema)]
pub struct Undone {
    client: UndoneClient,
}

/// Undoes a merge (`client:write` and `client:delete`): the duplicate comes back with what
/// it brought.
#[utoipa::path(post, path = "/api/merges/{id}/undo", tag = "Duplicates",
    params(("id" = String, Path, description = "The merge's `undoId`.")),
    responses((status = 200, description = "Undone.", body = Undone)))]
pub async fn undo(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let row = ops::undo(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Undone {
        client: UndoneClient {
            id: row.id,
            display_name: row.display_name,
        },
    }))
}
