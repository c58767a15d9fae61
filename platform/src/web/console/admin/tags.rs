//! The Tags page: the organization's tag catalogue with usage counts
//! (`tag:write` to add and edit, `tag:delete` to remove).

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::domain::clients::TAG_COLORS;
use crate::error::{AppError, AppResult};
use crate::ops::tags::{self as ops, TagInput};
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
    /// Adding, renaming and recolouring (`tag:admin`); others see the list.
    can_edit: bool,
}

async fn page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    error: Option<String>,
    name: String,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let can_delete = scope.can("tag", "delete");
    let can_edit = scope.can("tag", "admin");
    let tags = ops::catalogue(&scope)
        .await?
        .into_iter()
        .map(|(t, clients)| TagLine {
            clients,
            id: t.id,
            name: t.name,
            color: t.color,
        })
        .collect();
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
            can_edit,
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

use crate::web::console::form_pairs as form;

/// Creates a tag (no id) or renames/recolours one.
pub async fn save(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (id, name) = (get("id"), get("name"));
    let input = TagInput {
        name: Some(name.clone()),
        color: Some(get("color")),
    };
    let result = if id.is_empty() {
        ops::define(&scope, input).await
    } else {
        ops::update(&scope, id, input).await
    };
    match result {
        Ok(t) => redirect_with_flash(
            &req,
            "/admin/tags",
            &format!("The tag {} was saved.", t.name),
        ),
        Err(AppError::Validation(_, errors)) => {
            let error = errors.first().map(|e| e.message.clone());
            page(&req, &actor, &state, error, name).await
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
    let scope = crate::web::scope::of(&actor, &state).await?;
    ops::delete(&scope, id.into_inner()).await?;
    redirect_with_flash(
        &req,
        "/admin/tags",
        "The tag was deleted and removed from its clients.",
    )
}
