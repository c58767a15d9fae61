//! Imports: staging an uploaded file as a batch, mapping its columns with a preview of
//! what the first rows would do, running it in the background and reverting it. Imports
//! are for those who may both write and delete clients (a revert removes what the import
//! created); a deal file also needs `opportunity:write`.

use serde::Deserialize;

use super::Scope;
use crate::domain::imports::{self, BatchRow, Env, Kind, NewBatch, PreviewRow};
use crate::error::{AppError, AppResult};

/// How to read an uploaded file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageInput {
    /// companies, contacts or deals; guessed from the headers when left out.
    pub kind: Option<String>,
    /// The system it came from (`generic`, `salesforce`, `hubspot`, …).
    pub preset: Option<String>,
    /// What to do with a row matching an existing client: update, skip or create.
    pub mode: Option<String>,
    pub file_name: Option<String>,
}

fn require(scope: &Scope, kind: Option<Kind>) -> AppResult<()> {
    scope.require("client", "write")?;
    scope.require("client", "delete")?;
    if kind == Some(Kind::Deals) {
        scope.require("opportunity", "write")?;
    }
    Ok(())
}

fn text(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Checks and stores the file and creates its batch (status `preview`).
pub async fn stage(scope: &Scope, bytes: Vec<u8>, input: StageInput) -> AppResult<BatchRow> {
    let kind = match text(input.kind) {
        None => None,
        Some(k) => Some(
            Kind::parse(&k)
                .ok_or_else(|| AppError::invalid("kind", "Choose companies, contacts or deals."))?,
        ),
    };
    require(scope, kind)?;
    let preset = text(input.preset).unwrap_or_else(|| "generic".into());
    let mode = text(input.mode).unwrap_or_else(|| "update".into());
    let name = text(input.file_name).unwrap_or_else(|| "import.csv".into());
    let (ctx, data_dir) = (scope.audit.clone(), scope.data_dir.clone());
    let batch = scope
        .read(move |c| {
            let new = NewBatch {
                file_name: &name,
                preset: &preset,
                kind,
                mode: &mode,
            };
            imports::stage(c, &ctx, &data_dir, &bytes, new)
        })
        .await?;
    // The kind guessed from the headers may need more than the caller asked for.
    require(scope, Some(batch.kind()))?;
    Ok(batch)
}

pub async fn list(scope: &Scope) -> AppResult<Vec<BatchRow>> {
    require(scope, None)?;
    let org = scope.org_id.clone();
    scope.read(move |c| imports::list(c, &org)).await
}

pub async fn get(scope: &Scope, id: String) -> AppResult<BatchRow> {
    require(scope, None)?;
    let org = scope.org_id.clone();
    scope.read(move |c| imports::get(c, &org, &id)).await
}

/// The first `limit` rows as they would import, each with what it would do or why not;
/// nothing is kept.
pub async fn preview(scope: &Scope, batch: BatchRow, limit: usize) -> AppResult<Vec<PreviewRow>> {
    require(scope, Some(batch.kind()))?;
    let access = scope.access("client");
    let (ctx, data_dir) = (scope.audit.clone(), scope.data_dir.clone());
    super::with_plugins(
        &scope.pool,
        &scope.plugins,
        scope.org_id.clone(),
        move |c, ext| {
            let currency = super::default_currency(c, &ctx.org_id)?;
            let env = Env {
                ctx: &ctx,
                access: &access,
                batch: &batch,
                external: ext,
                rules: ext,
                default_currency: &currency,
                cache: Default::default(),
            };
            imports::preview(c, &data_dir, &env, limit)
        },
    )
    .await
}

/// A batch with what its mapping step shows: each column's header and a sample value,
/// the fields it may map to, and the preview of its first rows.
pub struct Mapping {
    pub batch: BatchRow,
    pub columns: Vec<(String, String)>,
    /// (target, label): the kind's fields and the organization's custom fields.
    pub targets: Vec<(String, String)>,
    pub preview: Vec<PreviewRow>,
}

/// The batch, and, while it waits to be run, its mapping step.
pub async fn mapping(scope: &Scope, id: String, preview_rows: usize) -> AppResult<Mapping> {
    require(scope, None)?;
    let org = scope.org_id.clone();
    let (batch, targets) = scope
        .read(move |c| {
            let batch = imports::get(c, &org, &id)?;
            let targets = imports::targets_for(c, &org, batch.kind())?;
            Ok((batch, targets))
        })
        .await?;
    let (columns, preview) = if batch.status == "preview" && preview_rows > 0 {
        (
            imports::columns(&scope.data_dir, &batch)?,
            preview(scope, batch.clone(), preview_rows).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Mapping {
        batch,
        columns,
        targets,
        preview,
    })
}

/// Sets which field each column fills (`None` leaves a column out) and the duplicate mode.
pub async fn configure(
    scope: &Scope,
    id: String,
    mapping: Option<Vec<Option<String>>>,
    mode: Option<String>,
) -> AppResult<BatchRow> {
    require(scope, None)?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| imports::configure(c, &org, &id, mapping, mode.as_deref()))
        .await
}

/// Queues the batch for the background worker.
pub async fn start(scope: &Scope, id: String) -> AppResult<BatchRow> {
    let batch = get(scope, id).await?;
    require(scope, Some(batch.kind()))?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| imports::start(c, &ctx, &batch.id))
        .await
}

/// Removes what the import created and puts back what it changed.
pub async fn revert(scope: &Scope, id: String) -> AppResult<BatchRow> {
    let batch = get(scope, id).await?;
    require(scope, Some(batch.kind()))?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| imports::revert(c, &ctx, &batch.id))
        .await
}
