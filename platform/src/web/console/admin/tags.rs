//! The Tags page: the organization's tag catalogue with usage counts
//! (`tag:write` to add and edit, `tag:delete` to remove).

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::db;
use crate::domain::clients::{service, store, TAG_COLORS};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::console::{redirect_with_flash, render_with_status};

pub struct TagLine {
    pub id: String,
    pub name: String,
    pub color: String,
    pub clients: i64,
}

#[derive(Template)]
#[template(path = "partials/admin/tags.html")]
struct TagsPage {
    tags: Vec<TagLine>,
    colors: &'static [&'static str],
    error: Option<String>,
    name: String,
    can_delete: bool,
}

async fn page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    error: Option<String>,
    name: String,
) -> AppResult<HttpResponse> {
    let org = actor.org_id().to_string();
    let can_delete = actor.can("tag", "delete").await?;
    let tags = db::run(&state.pool, move |c| {
        let usage: std::collections::HashMap<String, i64> =
            store::tag_usage(c, &org)?.into_iter().collect();
        Ok(store::list_tags(c, &org)?
            .into_iter()
            .map(|t| TagLine {
                clients: usage.get(&t.id).copied().unwrap_or(0),
                id: t.id,
                name: t.name,
                color: t.color,
            })
            .collect())
    })
    .await?;
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render_with_status(
        req,
        actor,
        "Tags",
        &TagsPage {
            tags,
            colors: TAG_COLORS,
            error,
            name,
            can_delete,
        },
        status,
    )
    .await
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("tag", "write").await?;
    page(&req, &actor, &state, None, String::new()).await
}

fn form(body: &web::Bytes) -> AppResult<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))
}

/// Creates a tag (no id) or renames/recolours one.
pub async fn save(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("tag", "write").await?;
    let pairs = form(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (id, name, color) = (get("id"), get("name"), get("color"));
    let ctx = actor.audit();
    let n = name.clone();
    let result = db::run(&state.pool, move |c| {
        if id.is_empty() {
            service::define_tag(c, &ctx, &n, if color.is_empty() { "gray" } else { &color })
        } else {
            service::update_tag(c, &ctx, &id, Some(&n), Some(&color))
        }
    })
    .await;
    match result {
        Ok(t) => redirect_with_flash(
            &req,
            "/admin/tags",
            &format!("The tag {} was saved.", t.name),
        ),
        Err(AppError::Validation(_, errors)) => {
            page(
                &req,
                &actor,
                &state,
                errors.first().map(|e| e.message.clone()),
                name,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

pub async fn delete(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("tag", "delete").await?;
    let ctx = actor.audit();
    db::run(&state.pool, move |c| service::delete_tag(c, &ctx, &id)).await?;
    redirect_with_flash(
        &req,
        "/admin/tags",
        "The tag was deleted and removed from its clients.",
    )
}
