//! Files on a client, a deal or an interaction: stored through a [`BlobStore`] (the data
//! directory by default, or an S3-compatible bucket), typed by their content, named safely,
//! downloaded only by those who see what they are on, deleted to the trash, and every
//! download of a sensitive file audited.

use std::path::PathBuf;

use diesel::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::db::schema::attachments;
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::service::Access;
use crate::error::{AppError, AppResult};

pub use crate::config::DEFAULT_MAX_BYTES;

/// What a file is attached to. Deals and interactions always have a client, which the file
/// keeps too: a merge moves it with the rest, and the client's Files card lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parent {
    Client(String),
    Deal(String),
    Interaction(String),
}

impl Parent {
    /// The parent named by a URL segment (`clients`, `opportunities`, `interactions`).
    pub fn from_segment(segment: &str, id: String) -> Option<Self> {
        match segment {
            "clients" => Some(Self::Client(id)),
            "opportunities" => Some(Self::Deal(id)),
            "interactions" => Some(Self::Interaction(id)),
            _ => None,
        }
    }

    /// The Casbin object guarding files on this parent.
    pub fn object(&self) -> &'static str {
        match self {
            Self::Client(_) => "client",
            Self::Deal(_) => "opportunity",
            Self::Interaction(_) => "interaction",
        }
    }
}

/// The client, deal and interaction a file hangs on, once the actor is known to see them.
struct Resolved {
    client_id: String,
    opportunity_id: Option<String>,
    interaction_id: Option<String>,
}

fn resolve(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    parent: &Parent,
) -> AppResult<Resolved> {
    Ok(match parent {
        Parent::Client(id) => Resolved {
            client_id: crate::domain::clients::service::get(conn, org_id, access, id)?.id,
            opportunity_id: None,
            interaction_id: None,
        },
        Parent::Deal(id) => {
            let deal = crate::domain::pipeline::service::get(conn, org_id, access, id)?;
            Resolved {
                client_id: deal.client_id,
                opportunity_id: Some(deal.id),
                interaction_id: None,
            }
        }
        Parent::Interaction(id) => {
            let entry = crate::domain::interactions::get(conn, org_id, access, id)?;
            Resolved {
                client_id: entry.client_id,
                opportunity_id: entry.opportunity_id,
                interaction_id: Some(entry.id),
            }
        }
    })
}

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

/// The store the configuration names: the data directory unless a bucket is configured.
pub fn configured_store(
    config: &crate::config::Config,
) -> AppResult<std::sync::Arc<dyn BlobStore>> {
    Ok(match &config.blob_store {
        crate::config::BlobConfig::Local => std::sync::Arc::new(LocalStore {
            root: config.data_dir.join("attachments"),
        }),
        crate::config::BlobConfig::S3(s3) => std::sync::Arc::new(
            crate::domain::blob_s3::S3Store::new(s3).map_err(AppError::Internal)?,
        ),
    })
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
    pub opportunity_id: Option<String>,
    pub interaction_id: Option<String>,
}

impl AttachmentRow {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "clientId": self.client_id,
            "opportunityId": self.opportunity_id, "interactionId": self.interaction_id,
            "fileName": self.file_name,
            "contentType": self.content_type, "size": self.size_bytes, "sha256": self.sha256,
            "sensitive": self.sensitive, "uploadedBy": self.uploaded_by,
            "createdAt": self.created_at.and_utc().to_rfc3339(),
            "url": format!("/api/attachments/{}/content", self.id),
        })
    }

    /// What the file is on: the innermost of interaction, deal and client.
    pub fn parent(&self) -> Parent {
        match (&self.interaction_id, &self.opportunity_id) {
            (Some(i), _) => Parent::Interaction(i.clone()),
            (None, Some(d)) => Parent::Deal(d.clone()),
            (None, None) => Parent::Client(self.client_id.clone()),
        }
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

/// The refusal for a file over the limit.
pub fn too_large(limit: usize) -> AppError {
    AppError::PayloadTooLarge(format!(
        "Files can be at most {} MB.",
        limit.div_ceil(1024 * 1024)
    ))
}

/// Stores a file on a client, deal or interaction the actor sees.
pub fn upload(
    conn: &mut DbConn,
    store: &dyn BlobStore,
    ctx: &AuditContext,
    access: &Access,
    parent: &Parent,
    file: NewFile<'_>,
) -> AppResult<AttachmentRow> {
    let NewFile {
        name,
        bytes,
        sensitive,
    } = file;
    let on = resolve(conn, &ctx.org_id, access, parent)?;
    if bytes.is_empty() {
        return Err(AppError::invalid("file", "The file is empty."));
    }
    let key = new_id();
    store
        .put(&key, bytes)
        .map_err(|e| AppError::Internal(format!("storing the file: {e}")))?;
    let row = AttachmentRow {
        id: new_id(),
        organization_id: ctx.org_id.clone(),
        client_id: on.client_id,
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
        opportunity_id: on.opportunity_id,
        interaction_id: on.interaction_id,
    };
    let inserted = crate::db::transaction(conn, |c| {
        diesel::insert_into(attachments::table)
            .values(&row)
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "attachment.upload",
            "attachment",
            Some(&row.id),
            json!({"clientId": row.client_id, "opportunityId": row.opportunity_id,
                   "interactionId": row.interaction_id, "fileName": row.file_name,
                   "size": row.size_bytes, "sensitive": sensitive}),
        )?;
        Ok::<_, AppError>(())
    });
    if let Err(e) = inserted {
        let _ = store.delete(&row.storage_key);
        return Err(e);
    }
    Ok(row)
}

/// The files on a parent, newest first. A client's list has the files on its interactions
/// too; files on its deals are listed with each deal, where deal visibility applies.
pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    parent: &Parent,
) -> AppResult<Vec<AttachmentRow>> {
    let on = resolve(conn, org_id, access, parent)?;
    let mut query = attachments::table
        .filter(attachments::organization_id.eq(org_id))
        .filter(attachments::deleted_at.is_null())
        .order(attachments::created_at.desc())
        .select(AttachmentRow::as_select())
        .into_boxed();
    query = match parent {
        Parent::Client(_) => query
            .filter(attachments::client_id.eq(on.client_id))
            .filter(attachments::opportunity_id.is_null()),
        Parent::Deal(_) => query.filter(attachments::opportunity_id.eq(on.opportunity_id)),
        Parent::Interaction(_) => query.filter(attachments::interaction_id.eq(on.interaction_id)),
    };
    Ok(query.load(conn)?)
}

/// The files on each of these interactions, oldest first: id → [(file id, name)]. The
/// caller has already checked the reader sees the interactions.
pub fn on_interactions(
    conn: &mut DbConn,
    org_id: &str,
    ids: &[String],
) -> AppResult<std::collections::HashMap<String, Vec<(String, String)>>> {
    let mut out: std::collections::HashMap<String, Vec<(String, String)>> = Default::default();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(Option<String>, String, String)> = attachments::table
        .filter(attachments::organization_id.eq(org_id))
        .filter(attachments::interaction_id.eq_any(ids))
        .filter(attachments::deleted_at.is_null())
        .order(attachments::created_at.asc())
        .select((
            attachments::interaction_id,
            attachments::id,
            attachments::file_name,
        ))
        .load(conn)?;
    for (on, id, name) in rows {
        if let Some(on) = on {
            out.entry(on).or_default().push((id, name));
        }
    }
    Ok(out)
}

/// An attachment on something the actor sees (else 404).
pub fn get(conn: &mut DbConn, org_id: &str, access: &Access, id: &str) -> AppResult<AttachmentRow> {
    let row: AttachmentRow = attachments::table
        .filter(attachments::organization_id.eq(org_id))
        .filter(attachments::id.eq(id))
        .filter(attachments::deleted_at.is_null())
        .select(AttachmentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    resolve(conn, org_id, access, &row.parent())?;
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
    crate::db::transaction(conn, |c| {
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

/// Where the bytes of every file on a client (and its deals and interactions) are kept.
pub fn storage_keys_of_client(
    conn: &mut DbConn,
    org_id: &str,
    client_id: &str,
) -> AppResult<Vec<String>> {
    Ok(attachments::table
        .filter(attachments::organization_id.eq(org_id))
        .filter(attachments::client_id.eq(client_id))
        .select(attachments::storage_key)
        .load(conn)?)
}

/// Removes files trashed before `cutoff`: the bytes first, then the row, one at a time so
/// a store that fails midway leaves the rest for the next run.
pub fn empty_trash(
    conn: &mut DbConn,
    store: &dyn BlobStore,
    cutoff: chrono::NaiveDateTime,
) -> AppResult<usize> {
    let due: Vec<(String, String)> = attachments::table
        .filter(attachments::deleted_at.lt(cutoff))
        .select((attachments::id, attachments::storage_key))
        .limit(1000)
        .load(conn)?;
    let mut n = 0;
    for (id, key) in due {
        match store.delete(&key) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(attachment = %id, error = %e, "could not remove a trashed file");
                continue;
            }
        }
        diesel::delete(attachments::table.filter(attachments::id.eq(&id))).execute(conn)?;
        n += 1;
    }
    Ok(n)
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
