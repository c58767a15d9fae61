//! Files on a client: stored through a [`BlobStore`] (the data directory by default), typed
//! by their content, named safely, downloaded only by those who see the client, deleted to
//! the trash, and every download of a sensitive file audited.

use std::path::PathBuf;

use diesel::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::db::schema::attachments;
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::service::Access;
use crate::error::{AppError, AppResult};

/// Largest file, in bytes.
pub const MAX_BYTES: usize = 25 * 1024 * 1024;

/// Where the bytes live. The local directory is the default; an S3-compatible store is
/// the same three calls.
pub trait BlobStore: Send + Sync {
    fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()>;
    fn get(&self, key: &str) -> std::io::Result<Vec<u8>>;
    fn delete(&self, key: &str) -> std::io::Result<()>;
}

/// Files under a directory; keys are generated ids, never user input.
pub struct LocalStore {
    pub root: PathBuf,
}

impl LocalStore {
    fn path(&self, key: &str) -> std::io::Result<PathBuf> {
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(std::io::Error::other("bad blob key"));
        }
        Ok(self.root.join(&key[..2]).join(key))
    }
}

impl BlobStore for LocalStore {
    fn put(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // Written aside and renamed, so a crash never leaves half a file under the key.
        let tmp = path.with_extension("part");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, path)
    }

    fn get(&self, key: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(key)?)
    }

    fn delete(&self, key: &str) -> std::io::Result<()> {
        std::fs::remove_file(self.path(key)?)
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = attachments)]
pub struct AttachmentRow {
    pub id: String,
    pub organization_id: String,
    pub client_id: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub storage_key: String,
    pub sensitive: bool,
    pub uploaded_by: Option<String>,
    pub created_at: chrono::NaiveDateTime,
    pub deleted_at: Option<chrono::NaiveDateTime>,
}

impl AttachmentRow {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "clientId": self.client_id, "fileName": self.file_name,
            "contentType": self.content_type, "size": self.size_bytes, "sha256": self.sha256,
            "sensitive": self.sensitive, "uploadedBy": self.uploaded_by,
            "createdAt": self.created_at.and_utc().to_rfc3339(),
            "url": format!("/api/attachments/{}/content", self.id),
        })
    }

    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }
}

/// The type the content shows (magic numbers), whatever the name says; text that is valid
/// UTF-8 is text/plain; anything else is a plain download.
pub fn sniff(bytes: &[u8]) -> &'static str {
    let starts = |m: &[u8]| bytes.starts_with(m);
    if starts(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if starts(b"\xFF\xD8\xFF") {
        "image/jpeg"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "image/gif"
    } else if bytes.len() > 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else if starts(b"%PDF-") {
        "application/pdf"
    } else if starts(b"PK\x03\x04") {
        // Office documents are zip files; the browser gets them as a download.
        "application/zip"
    } else if !bytes.contains(&0) && std::str::from_utf8(&bytes[..bytes.len().min(8192)]).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// A name safe to store and to send back: no directories, no control or quoting characters,
/// at most 120 characters, never empty.
pub fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | '|' | ':' | '*' | '?'))
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let out: String = trimmed.chars().take(120).collect();
    if out.is_empty() {
        "file".into()
    } else {
        out
    }
}

/// A file being uploaded.
pub struct NewFile<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub sensitive: bool,
}

/// Stores a file on a client the actor sees.
pub fn upload(
    conn: &mut DbConn,
    store: &dyn BlobStore,
    ctx: &AuditContext,
    access: &Access,
    client_id: &str,
    file: NewFile<'_>,
) -> AppResult<AttachmentRow> {
    let NewFile {
        name,
        bytes,
        sensitive,
    } = file;
    let client = crate::domain::clients::service::get(conn, &ctx.org_id, access, client_id)?;
    if bytes.is_empty() {
        return Err(AppError::invalid("file", "The file is empty."));
    }
    if bytes.len() > MAX_BYTES {
        return Err(AppError::PayloadTooLarge(format!(
            "Files can be at most {} MB.",
            MAX_BYTES / 1024 / 1024
        )));
    }
    let key = new_id();
    store
        .put(&key, bytes)
        .map_err(|e| AppError::Internal(format!("storing the file: {e}")))?;
    let row = AttachmentRow {
        id: new_id(),
        organization_id: ctx.org_id.clone(),
        client_id: client.id.clone(),
        file_name: safe_name(name),
        content_type: sniff(bytes).to_string(),
        size_bytes: bytes.len() as i64,
        sha256: Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        storage_key: key,
        sensitive,
        uploaded_by: ctx.actor_user_id.clone(),
        created_at: now(),
        deleted_at: None,
    };
    let inserted = conn.transaction(|c| {
        diesel::insert_into(attachments::table)
            .values(&row)
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "attachment.upload",
            "attachment",
            Some(&row.id),
            json!({"clientId": row.client_id, "fileName": row.file_name, "size": row.size_bytes, "sensitive": sensitive}),
        )?;
        Ok::<_, AppError>(())
    });
    if let Err(e) = inserted {
        let _ = store.delete(&row.storage_key);
        return Err(e);
    }
    Ok(row)
}

pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    client_id: &str,
) -> AppResult<Vec<AttachmentRow>> {
    crate::domain::clients::service::get(conn, org_id, access, client_id)?;
    Ok(attachments::table
        .filter(attachments::organization_id.eq(org_id))
        .filter(attachments::client_id.eq(client_id))
        .filter(attachments::deleted_at.is_null())
        .order(attachments::created_at.desc())
        .select(AttachmentRow::as_select())
        .load(conn)?)
}

/// An attachment on a client the actor sees (else 404).
pub fn get(conn: &mut DbConn, org_id: &str, access: &Access, id: &str) -> AppResult<AttachmentRow> {
    let row: AttachmentRow = attachments::table
        .filter(attachments::organization_id.eq(org_id))
        .filter(attachments::id.eq(id))
        .filter(attachments::deleted_at.is_null())
        .select(AttachmentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    crate::domain::clients::service::get(conn, org_id, access, &row.client_id)?;
    Ok(row)
}

/// The bytes of an attachment; a sensitive one needs the sensitive-read grant and leaves an
/// audit entry.
pub fn download(
    conn: &mut DbConn,
    store: &dyn BlobStore,
    ctx: &AuditContext,
    access: &Access,
    id: &str,
) -> AppResult<(AttachmentRow, Vec<u8>)> {
    let row = get(conn, &ctx.org_id, access, id)?;
    if row.sensitive {
        if !access.read_sensitive {
            return Err(AppError::Forbidden(
                "This file is marked sensitive; you may not open it.".into(),
            ));
        }
        audit::record(
            conn,
            ctx,
            "attachment.download",
            "attachment",
            Some(&row.id),
            json!({"clientId": row.client_id, "fileName": row.file_name}),
        )?;
    }
    let bytes = store
        .get(&row.storage_key)
        .map_err(|e| AppError::Internal(format!("reading the file: {e}")))?;
    Ok((row, bytes))
}

/// Moves an attachment to the trash (the bytes stay until the trash is emptied).
pub fn delete(conn: &mut DbConn, ctx: &AuditContext, access: &Access, id: &str) -> AppResult<()> {
    let row = get(conn, &ctx.org_id, access, id)?;
    conn.transaction(|c| {
        diesel::update(attachments::table.filter(attachments::id.eq(&row.id)))
            .set(attachments::deleted_at.eq(Some(now())))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "attachment.delete",
            "attachment",
            Some(&row.id),
            json!({"clientId": row.client_id, "fileName": row.file_name}),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types_come_out_safe() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(
            safe_name("C:\\Users\\x\\report \"final\".pdf"),
            "report final.pdf"
        );
        assert_eq!(safe_name(".."), "file");
        assert_eq!(sniff(b"%PDF-1.7 ..."), "application/pdf");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"MZ\x90\x00\x03"), "application/octet-stream");
    }
}
