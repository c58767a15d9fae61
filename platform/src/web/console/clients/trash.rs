//! The trash: trashed clients, restoring and purging them.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::fmt_time;
use crate::auth::ConsoleActor;
use crate::error::AppResult;
use crate::ops::clients as ops;
use crate::state::AppState;
use crate::web::console::{redirect_with_flash, render};
use crate::web::query_pairs;

pub struct TrashRow {
    pub id: String,
    pub name: String,
    pub deleted: String,
}

#[derive(Template)]
#[template(path = "partials/clients/trash.html")]
struct TrashPage {
    rows: Vec<TrashRow>,
    next_href: Option<String>,
}

pub async fn trash(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let found = ops::trash_page(&scope, query_pairs(&req)?).await?;
    let page = TrashPage {
        rows: found
            .rows
            .into_iter()
            .map(|r| TrashRow {
                deleted: r
                    .deleted_at
                    .map(|t| fmt_time(t, &scope.local))
                    .unwrap_or_default(),
                id: r.id,
                name: r.display_name,
            })
            .collect(),
        next_href: found
            .next_cursor
            .map(|cursor| format!("/clients/trash?cursor={cursor}")),
    };
    render(&req, &actor, "Trash", &page).await
}

pub async fn restore(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let row = ops::restore(&scope, id.into_inner()).await?.row;
    let message = format!("{} was restored.", row.display_name);
    redirect_with_flash(&req, &format!("/clients/{}", row.id), &message)
}

pub async fn purge(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    ops::purge(&scope, id.into_inner()).await?;
    redirect_with_flash(&req, "/clients/trash", "The client was deleted for good.")
}
