//! Files over HTTP, for the API and the console alike: reading an upload (multipart or a raw
//! body) within the size limit, what an import or a plugin install asks for beside its
//! file, and answering a download (attachments, quote PDFs, contract documents) with safe
//! headers.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::domain::attachments::{self, AttachmentRow};
use crate::error::{AppError, AppResult};
pub use crate::ops::attachments::Upload;
use crate::web::query_pairs;

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

/// A file as a download (or in place, for images asked `?inline=1`).
/// How to read an import file, from the query string (`kind`, `preset`, `mode` and the
/// file's name under `name_key`).
pub fn stage_input(
    req: &HttpRequest,
    name_key: &str,
) -> AppResult<crate::ops::imports::StageInput> {
    let pairs = query_pairs(req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    Ok(crate::ops::imports::StageInput {
        kind: get("kind"),
        preset: get("preset"),
        mode: get("mode"),
        file_name: get(name_key),
    })
}

/// A `Content-Disposition` value for a file name as people gave it (RFC 6266: an ASCII
/// fallback without quotes or control characters, and the UTF-8 name).
fn disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = serde_urlencoded::to_string([("n", name)])
        .unwrap_or_default()
        .trim_start_matches("n=")
        .replace('+', "%20");
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

pub fn file_response(req: &HttpRequest, row: &AttachmentRow, bytes: Vec<u8>) -> HttpResponse {
    let inline = row.is_image() && req.query_string().contains("inline=1");
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, row.content_type.clone()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            disposition(if inline { "inline" } else { "attachment" }, &row.file_name),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(bytes)
}

/// A file that is not an attachment row (a message's file): always a download, never
/// rendered by the browser, whatever its type.
pub fn download_response(name: &str, content_type: &str, bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type.to_string()))
        .insert_header((header::CONTENT_DISPOSITION, disposition("attachment", name)))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(bytes)
}

/// Largest plugin bundle accepted.
pub const MAX_BUNDLE: usize = 20 * 1024 * 1024;

/// The capabilities an install asks to grant (`grant=a,b` or `grantAll=true`: all the
/// bundle requests), given the bundle it carries.
pub fn plugin_grants(pairs: &[(String, String)], body: &[u8]) -> AppResult<Vec<String>> {
    let all = pairs
        .iter()
        .any(|(k, v)| (k == "grantAll" || k == "grant_all") && (v == "true" || v == "1"));
    if all {
        return Ok(crate::plugins::bundle::unpack(body)
            .map_err(|e| AppError::invalid("bundle", &e))?
            .manifest
            .capabilities);
    }
    Ok(pairs
        .iter()
        .filter(|(k, _)| k == "grant")
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect())
}

/// A quote's PDF, shown in the browser.
pub fn pdf_response(q: &crate::domain::pipeline::model::QuoteRow, bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            header::CONTENT_DISPOSITION,
            disposition("inline", &format!("quote-Q-{:05}.pdf", q.number)),
        ))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(bytes)
}

/// A contract document's name (`?name=`) and type (the request's `Content-Type`) as
/// uploaded with the file as the raw body.
pub fn document_of(req: &HttpRequest) -> AppResult<(String, String)> {
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let name = query_pairs(req)?
        .into_iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "contract".into());
    Ok((name, ctype))
}

/// A contract's document as a download.
pub fn document_response(
    row: crate::domain::pipeline::model::ContractRow,
) -> AppResult<HttpResponse> {
    let bytes = row.document.ok_or(AppError::NotFound)?;
    let name = row.document_name.unwrap_or_else(|| "contract".into());
    Ok(HttpResponse::Ok()
        .content_type(
            row.document_type
                .unwrap_or_else(|| "application/octet-stream".into()),
        )
        .insert_header((
            header::CONTENT_DISPOSITION,
            disposition("attachment", &name),
        ))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(bytes))
}
