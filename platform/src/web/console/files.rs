//! The Files card on a client's profile and on a deal, and the console's upload, download
//! and delete of attachments (interactions take files from their timeline entry).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::{as_toast, html_fragment, redirect_with_flash};
use crate::auth::ConsoleActor;
use crate::domain::attachments::Parent;
use crate::error::{AppError, AppResult};
use crate::ops::Scope;
use crate::state::AppState;

pub struct FileView {
    pub id: String,
    pub name: String,
    pub size: String,
    pub image: bool,
    pub sensitive: bool,
    /// What else it hangs on, when not the card's own record (e.g. "a call").
    pub on: String,
}

#[derive(Template)]
#[template(path = "partials/files.html")]
struct FilesCard {
    upload_url: String,
    limit_mb: usize,
    can_write: bool,
    can_mark_sensitive: bool,
    files: Vec<FileView>,
}

fn size_label(bytes: i64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / 1048576.0)
    } else if bytes >= 1024 {
        format!("{} KB", (bytes + 1023) / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// The rendered card for a client or a deal the reader sees.
pub async fn card(
    scope: &Scope,
    parent: Parent,
    can_write: bool,
    limit: usize,
) -> AppResult<String> {
    let upload_url = match &parent {
        Parent::Client(id) => format!("/clients/{id}/attachments/upload"),
        Parent::Deal(id) => format!("/opportunities/{id}/attachments/upload"),
        Parent::Interaction(id) => format!("/interactions/{id}/attachments/upload"),
    };
    let on_record = !matches!(parent, Parent::Interaction(_));
    let files = crate::ops::attachments::list(scope, parent)
        .await?
        .into_iter()
        .map(|a| FileView {
            on: if a.interaction_id.is_some() && on_record {
                "a timeline entry".into()
            } else {
                String::new()
            },
            size: size_label(a.size_bytes),
            image: a.is_image(),
            sensitive: a.sensitive,
            id: a.id,
            name: a.file_name,
        })
        .collect();
    FilesCard {
        upload_url,
        limit_mb: limit.div_ceil(1024 * 1024),
        can_write,
        can_mark_sensitive: scope.access("client").write_sensitive,
        files,
    }
    .render()
    .map_err(|e| AppError::Internal(e.to_string()))
}

/// `PUT /{clients|opportunities|interactions}/{id}/attachments/upload` (the raw file, from
/// the drop zone): back to the page the file now shows on.
pub async fn upload(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let (segment, id) = path.into_inner();
    let parent = Parent::from_segment(&segment, id).ok_or(AppError::NotFound)?;
    let scope = crate::web::scope::of(&actor, &state).await?;
    scope.require(parent.object(), "write").map_err(as_toast)?;
    let file = crate::web::upload::read_upload(&req, payload, state.config.max_upload_bytes)
        .await
        .map_err(as_toast)?;
    let row = crate::ops::attachments::upload(&scope, parent, file)
        .await
        .map_err(as_toast)?;
    // The query makes the browser load the page again: a change of fragment alone would not.
    let back = match (&row.opportunity_id, &row.interaction_id) {
        (Some(deal), None) => format!("/opportunities/{deal}?attached=1#files"),
        (_, Some(entry)) => format!("/clients/{}?attached=1#interaction-{entry}", row.client_id),
        (None, None) => format!("/clients/{}?attached=1#files", row.client_id),
    };
    redirect_with_flash(&req, &back, &format!("{} was attached.", row.file_name))
}

pub async fn content(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (row, bytes) = crate::ops::attachments::download(&scope, id.into_inner()).await?;
    Ok(crate::web::upload::file_response(&req, &row, bytes))
}

pub async fn delete(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    crate::ops::attachments::delete(&scope, id.into_inner())
        .await
        .map_err(as_toast)?;
    Ok(html_fragment(String::new()))
}
