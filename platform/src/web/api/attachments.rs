//! Attachments: `POST /api/clients/{id}/attachments?name=&sensitive=` with the file as the
//! body, `GET /api/clients/{id}/attachments`, `GET /api/attachments/{id}/content`
//! (`?inline=1` shows images in place), `DELETE /api/attachments/{id}` (to the trash).
//! Reading needs `client:read`, uploading and deleting `client:write`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::app::AppState;
use crate::auth::Actor;
use crate::db;
use crate::domain::attachments::{self, LocalStore, NewFile};
use crate::error::{AppError, AppResult};
use crate::web::{client_access, query_pairs};

/// The configured blob store: the data directory.
pub fn store(state: &AppState) -> LocalStore {
    LocalStore {
        root: state.config.data_dir.join("attachments"),
    }
}

pub async fn upload_as(
    actor: &Actor,
    state: &AppState,
    req: &HttpRequest,
    client: String,
    body: web::Bytes,
) -> AppResult<attachments::AttachmentRow> {
    actor.require("client", "write").await?;
    let access = client_access(actor).await?;
    let pairs = query_pairs(req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let name = get("name").unwrap_or_else(|| "file".into());
    let sensitive = matches!(get("sensitive").as_deref(), Some("true" | "1" | "on"));
    if sensitive && !access.write_sensitive {
        return Err(AppError::Forbidden(
            "You may not mark files sensitive.".into(),
        ));
    }
    let ctx = actor.audit();
    let store = store(state);
    db::run(&state.pool, move |c| {
        attachments::upload(
            c,
            &store,
            &ctx,
            &access,
            &client,
            NewFile {
                name: &name,
                bytes: &body,
                sensitive,
            },
        )
    })
    .await
}

pub async fn upload(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    client: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let row = upload_as(&actor, &state, &req, client.into_inner(), body).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/attachments/{}", row.id)))
        .json(row.to_json()))
}

pub async fn list(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    client: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| {
        attachments::list(c, &org, &access, &client)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "data": rows.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        "nextCursor": null,
    })))
}

/// The file, as a download (or in place, for images asked `?inline=1`).
pub async fn content_as(
    actor: &Actor,
    state: &AppState,
    req: &HttpRequest,
    id: String,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(actor).await?;
    let ctx = actor.audit();
    let store = store(state);
    let (row, bytes) = db::run(&state.pool, move |c| {
        attachments::download(c, &store, &ctx, &access, &id)
    })
    .await?;
    let inline = row.is_image() && req.query_string().contains("inline=1");
    // RFC 6266: an ASCII fallback and the UTF-8 name.
    let ascii: String = row
        .file_name
        .chars()
        .map(|c| if c.is_ascii() && c != '"' { c } else { '_' })
        .collect();
    let encoded: String = serde_urlencoded::to_string([("n", &row.file_name)])
        .unwrap_or_default()
        .trim_start_matches("n=")
        .replace('+', "%20");
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, row.content_type.clone()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "{}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}",
                if inline { "inline" } else { "attachment" }
            ),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(bytes))
}

pub async fn content(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    content_as(&actor, &state, &req, id.into_inner()).await
}

pub async fn delete(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    db::run(&state.pool, move |c| {
        attachments::delete(c, &ctx, &access, &id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
