//! Files on clients, deals and interactions: upload, list, download and trash, with the
//! right on what the file is on (a deal's file needs the right to read deals) and the
//! record rule of its client.

use super::Scope;
use crate::domain::attachments::{self, AttachmentRow, NewFile, Parent};
use crate::error::{AppError, AppResult};

/// A file as it arrived.
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
    pub sensitive: bool,
}

/// The record rule that decides whether the reader sees what a file hangs on: a deal's
/// (its owner) for a deal's files, the client's otherwise.
fn reach(scope: &Scope, parent: &Parent) -> crate::domain::clients::service::Access {
    match parent {
        Parent::Deal(_) => scope.access("opportunity"),
        Parent::Client(_) | Parent::Interaction(_) => scope.access("client"),
    }
}

pub async fn upload(scope: &Scope, parent: Parent, file: Upload) -> AppResult<AttachmentRow> {
    scope.require(parent.object(), "write")?;
    let access = reach(scope, &parent);
    if file.sensitive && !access.write_sensitive {
        return Err(AppError::Forbidden(
            "You may not mark files sensitive.".into(),
        ));
    }
    let ctx = scope.audit.clone();
    let store = scope.blobs.clone();
    scope
        .read(move |c| {
            attachments::upload(
                c,
                store.as_ref(),
                &ctx,
                &access,
                &parent,
                NewFile {
                    name: &file.name,
                    bytes: &file.bytes,
                    sensitive: file.sensitive,
                },
            )
        })
        .await
}

pub async fn list(scope: &Scope, parent: Parent) -> AppResult<Vec<AttachmentRow>> {
    scope.require(parent.object(), "read")?;
    let access = reach(scope, &parent);
    let org = scope.org_id.clone();
    scope
        .read(move |c| attachments::list(c, &org, &access, &parent))
        .await
}

/// A file and its bytes (the download is audited).
pub async fn download(scope: &Scope, id: String) -> AppResult<(AttachmentRow, Vec<u8>)> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    let store = scope.blobs.clone();
    let rights = scope.clone();
    scope
        .read(move |c| {
            let meta = attachments::get(c, &ctx.org_id, &access, &id)?;
            rights.require(meta.parent().object(), "read")?;
            attachments::download(c, store.as_ref(), &ctx, &access, &id)
        })
        .await
}

/// Moves a file to the trash; needs write access to what it is on.
pub async fn delete(scope: &Scope, id: String) -> AppResult<()> {
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    let rights = scope.clone();
    scope
        .read(move |c| {
            let row = attachments::get(c, &ctx.org_id, &access, &id)?;
            rights.require(row.parent().object(), "write")?;
            attachments::delete(c, &ctx, &access, &id)
        })
        .await
}
