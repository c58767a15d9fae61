//! Attachments on clients, deals and interactions:
//! `POST /api/{clients|opportunities|interactions}/{id}/attachments` with a
//! `multipart/form-data` body (part `file`, optional `sensitive`) or the raw file as the body
//! (`?name=&sensitive=`), `GET` on the same path lists them, `GET /api/attachments/{id}/content`
//! (`?inline=1` shows images in place), `DELETE /api/attachments/{id}` (to the trash).
//! Reading needs `read` and uploading or deleting `write` on what the file is on.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::app::AppState;
use crate::auth::Actor;
use crate::db;
use crate::domain::attachments::{self, NewFile, Parent};
use crate::error::{AppError, AppResult};
use crate::web::{client_access, query_pairs};
use futures_util::StreamExt;

/// The configured blob store.
pub fn store(state: &AppState) -> std::sync::Arc<dyn attachments::BlobStore> {
    state.blobs.clone()
}

/// A file as it arrived: from a `multipart/form-data` body (the `file` part, plus optional
/// `name` and `sensitive` parts) or as the raw body with `?name=&sensitive=`.
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
    pub sensitive: bool,
}

fn truthy(v: &str) -> bool {
    matches!(v, "true" | "1" | "on" | "yes")
}

/// Appends a chunk, refusing as soon as the file passes the limit (the rest is never read).
fn append(buf: &mut Vec<u8>, chunk: &[u8], limit: usize) -> AppResult<()> {
    if buf.len() + chunk.len() > limit {
        return Err(attachments::too_large(limit));
    }
    buf.extend_from_slice(chunk);
    Ok(())
}

pub async fn read_upload(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> AppResult<Upload> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // A multipart body carries a little more than the file: allow for its headers.
    if declared.is_some_and(|n| n > limit + 64 * 1024) {
        return Err(attachments::too_large(limit));
    }
    let pairs = query_pairs(req)?;
    let query = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut upload = Upload {
        name: query("name").unwrap_or_default(),
        bytes: Vec::new(),
        sensitive: query("sensitive").is_some_and(|v| truthy(&v)),
    };
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| AppError::BadRequest(format!("The upload broke off: {e}")))?;
            append(&mut upload.bytes, &chunk, limit)?;
        }
        if upload.name.is_empty() {
            upload.name = "file".into();
        }
        return Ok(upload);
    }
    let bad = |e: actix_multipart::MultipartError| {
        AppError::BadRequest(format!("The multipart body could not be read: {e}"))
    };
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut got_file = false;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(bad)?;
        let disposition = field.content_disposition().cloned();
        let field_name = disposition
            .as_ref()
            .and_then(|d| d.get_name())
            .unwrap_or_default()
            .to_string();
        let file_name = disposition
            .as_ref()
            .and_then(|d| d.get_filename())
            .map(str::to_string);
        let mut value = Vec::new();
        let is_file = field_name == "file" || (file_name.is_some() && !got_file);
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(bad)?;
            if !is_file && value.len() + chunk.len() > 4096 {
                return Err(AppError::invalid(
                    &field_name,
                    "This form field is too long (at most 4 KB).",
                ));
            }
            append(&mut value, &chunk, limit)?;
        }
        if is_file && !got_file {
            got_file = true;
            upload.bytes = value;
            if upload.name.is_empty() {
                upload.name = file_name.unwrap_or_default();
            }
        } else if field_name == "name" {
            upload.name = String::from_utf8_lossy(&value).trim().to_string();
        } else if field_name == "sensitive" {
            upload.sensitive = truthy(String::from_utf8_lossy(&value).trim());
        }
    }
    if !got_file {
        return Err(AppError::invalid(
            "file",
            "The form has no file: send it in a part named \"file\".",
        ));
    }
    if upload.name.is_empty() {
        upload.name = "file".into();
    }
    Ok(upload)
}

pub async fn upload_as(
    actor: &Actor,
    state: &AppState,
    req: &HttpRequest,
    parent: Parent,
    payload: web::Payload,
) -> AppResult<attachments::AttachmentRow> {
    actor.require(parent.object(), "write").await?;
    let access = client_access(actor).await?;
    let upload = read_upload(req, payload, state.config.max_upload_bytes).await?;
    if upload.sensitive && !access.write_sensitive {
        return Err(AppError::Forbidden(
            "You may not mark files sensitive.".into(),
        ));
    }
    let ctx = actor.audit();
    let store = store(state);
    db::run(&state.pool, move |c| {
        attachments::upload(
            c,
            store.as_ref(),
            &ctx,
            &access,
            &parent,
            NewFile {
                name: &upload.name,
                bytes: &upload.bytes,
                sensitive: upload.sensitive,
            },
        )
    })
    .await
}

/// The parent named by `/api/{clients|opportunities|interactions}/{id}/attachments`.
fn parent_of(path: (String, String)) -> AppResult<Parent> {
    Parent::from_segment(&path.0, path.1).ok_or(AppError::NotFound)
}

pub async fn upload(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let parent = parent_of(path.into_inner())?;
    let row = upload_as(&actor, &state, &req, parent, payload).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/attachments/{}", row.id)))
        .json(row.to_json()))
}

pub async fn list(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let parent = parent_of(path.into_inner())?;
    actor.require(parent.object(), "read").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| {
        attachments::list(c, &org, &access, &parent)
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
    // A deal's or a call's file needs the right to read deals or interactions too.
    let (org, acc, fid) = (actor.org_id().to_string(), access.clone(), id.clone());
    let meta = db::run(&state.pool, move |c| attachments::get(c, &org, &acc, &fid)).await?;
    actor.require(meta.parent().object(), "read").await?;
    let ctx = actor.audit();
    let store = store(state);
    let (row, bytes) = db::run(&state.pool, move |c| {
        attachments::download(c, store.as_ref(), &ctx, &access, &id)
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

/// Moves a file to the trash; needs write access to what it is on.
pub async fn delete_as(actor: &Actor, state: &AppState, id: String) -> AppResult<()> {
    let access = client_access(actor).await?;
    let org = actor.org_id().to_string();
    let (lookup_id, lookup_access) = (id.clone(), access.clone());
    let row = db::run(&state.pool, move |c| {
        attachments::get(c, &org, &lookup_access, &lookup_id)
    })
    .await?;
    actor.require(row.parent().object(), "write").await?;
    let ctx = actor.audit();
    db::run(&state.pool, move |c| {
        attachments::delete(c, &ctx, &access, &id)
    })
    .await
}

pub async fn delete(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    delete_as(&actor, &state, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Purges a client for good, and then the bytes of every file it had (the rows go with the
/// client; the bytes live outside the database). A store that fails to delete leaves bytes
/// behind and says so in the log; the purge stands.
pub async fn purge_client(actor: &Actor, state: &AppState, id: String) -> AppResult<()> {
    let ctx = actor.audit();
    let keys = db::run(&state.pool, move |c| {
        let keys = attachments::storage_keys_of_client(c, &ctx.org_id, &id)?;
        crate::domain::clients::service::purge(c, &ctx, &id)?;
        Ok(keys)
    })
    .await?;
    let store = store(state);
    actix_web::web::block(move || {
        for key in keys {
            if let Err(e) = store.delete(&key) {
                tracing::warn!(key = %key, error = %e, "a purged client's file stayed in the store");
            }
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))
}
