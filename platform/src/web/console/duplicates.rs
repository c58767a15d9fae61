//! Duplicates in the console: the groups a scan finds, a side-by-side comparison where the
//! user picks the surviving value per field, and the merge with its undo.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::domain::clients::duplicates;
use crate::error::{AppError, AppResult};
use crate::ops::duplicates::{self as ops, FieldChoice};
use crate::state::AppState;
use crate::web::console::{redirect, redirect_with_flash, render};
use crate::web::query_pairs;

#[derive(Template)]
#[template(path = "partials/clients/duplicates.html")]
struct GroupsPage {
    groups: Vec<duplicates::Group>,
    /// "Last checked …", "Checking now…" or "Not checked yet".
    status: String,
    /// A scan is queued or running: the page refreshes itself.
    busy: bool,
    /// May start a scan and merge (change and delete clients).
    can_merge: bool,
}

/// `GET /clients/duplicates`.
pub async fn groups(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (groups, scan) = ops::groups(&scope, 200).await?;
    let busy = scan.running() || scan.pending();
    let status = match (busy, scan.finished_at) {
        (true, _) => {
            "Checking for duplicates now; this page refreshes when it is done.".to_string()
        }
        (false, Some(at)) => format!(
            "Last checked {} across {} clients.",
            actor.local.datetime(at),
            scan.scanned_clients
        ),
        (false, None) => "Not checked yet.".to_string(),
    };
    let page = GroupsPage {
        groups,
        status,
        busy,
        can_merge: scope.can("client", "write") && scope.can("client", "delete"),
    };
    render(&req, &actor, "Duplicates", &page).await
}

/// `POST /clients/duplicates/scan`: asks for a fresh scan and shows the page again.
pub async fn request_scan(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    ops::request_scan(&scope).await?;
    redirect_with_flash(
        &req,
        "/clients/duplicates",
        "A fresh check for duplicates has started.",
    )
}

#[derive(Template)]
#[template(path = "partials/clients/merge.html")]
struct ComparePage {
    survivor_id: String,
    survivor: String,
    duplicate_id: String,
    duplicate: String,
    fields: Vec<FieldChoice>,
    moving: Vec<(String, i64)>,
}

/// `GET /clients/{id}/merge?with={duplicate}`.
pub async fn compare(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let with = query_pairs(&req)?
        .into_iter()
        .find(|(k, _)| k == "with")
        .map(|(_, v)| v)
        .ok_or_else(|| AppError::BadRequest("Say which client to compare with.".into()))?;
    let cmp = ops::compare(&scope, id.into_inner(), with).await?;
    let page = ComparePage {
        survivor_id: cmp.survivor.id,
        survivor: cmp.survivor.display_name,
        duplicate_id: cmp.duplicate.id,
        duplicate: cmp.duplicate.display_name,
        fields: cmp.fields,
        moving: cmp.moving,
    };
    render(&req, &actor, "Merge", &page).await
}

/// `POST /clients/{id}/merge`: `duplicate` and `take` (repeated) from the comparison.
pub async fn merge(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs: Vec<(String, String)> = crate::web::console::form_pairs(&body)?;
    let duplicate = pairs
        .iter()
        .find(|(k, _)| k == "duplicate")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| AppError::BadRequest("Say which client to merge.".into()))?;
    let take: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| v == "duplicate")
        .filter_map(|(k, _)| k.strip_prefix("field_").map(str::to_string))
        .collect();
    let (_, undo) = ops::merge(&scope, id.into_inner(), duplicate, take)
        .await
        .map_err(crate::web::console::as_toast)?;
    Ok(redirect(&req, &format!("/merges/{undo}")))
}

#[derive(Template)]
#[template(path = "partials/clients/merged.html")]
struct MergedPage {
    undo_id: String,
    survivor_id: String,
    survivor: String,
    duplicate: String,
    undone: bool,
}

/// `GET /merges/{id}`: what a merge did, with its undo.
pub async fn merged(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let m = ops::merged(&scope, id.into_inner()).await?;
    let page = MergedPage {
        undo_id: m.undo_id,
        survivor_id: m.survivor_id,
        survivor: m.survivor,
        duplicate: m.duplicate,
        undone: m.undone,
    };
    render(&req, &actor, "Merged", &page).await
}

/// `POST /merges/{id}/undo`.
pub async fn undo(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    ops::undo(&scope, id.clone()).await?;
    redirect_with_flash(
        &req,
        &format!("/merges/{id}"),
        "The merge was undone; both clients are back as they were.",
    )
}
