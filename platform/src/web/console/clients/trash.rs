//! The trash: trashed clients, restoring and purging them.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::super::{redirect_with_flash, render};
use super::*;
use crate::auth::ConsoleActor;
use crate::db::{self};
use crate::domain::clients::query::{self, cursor_after, Column, SortKey};
use crate::error::AppResult;
use crate::ops::clients as ops;
use crate::state::AppState;
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
    actor.require("client", "admin").await?;
    let org = actor.org_id().to_string();
    let pairs = query_pairs(&req)?;
    let page = db::run(&state.pool, move |c| {
        let mut params = query::parse_params(c, &org, &[], &pairs)?;
        params.trash = true;
        params.sort = query::Sort {
            key: SortKey::Column(Column::UpdatedAt),
            descending: true,
        };
        params.limit = 51;
        let mut rows = query::list(c, &org, &params)?;
        let more = rows.len() > 50;
        rows.truncate(50);
        let next_href = more
            .then(|| {
                rows.last().map(|r| {
                    format!(
                        "/clients/trash?cursor={}",
                        cursor_after(r, &params.sort).encode()
                    )
                })
            })
            .flatten();
        Ok(TrashPage {
            rows: rows
                .into_iter()
                .map(|r| TrashRow {
                    deleted: r.deleted_at.map(fmt_time).unwrap_or_default(),
                    id: r.id,
                    name: r.display_name,
                })
                .collect(),
            next_href,
        })
    })
    .await?;
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
