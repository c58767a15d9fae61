//! Imports from other CRMs and spreadsheets. A file becomes a batch: its rows are read and
//! checked up front (a malformed file is refused whole), a preset maps its columns, a preview
//! shows what each row would do, and the run then works through the rows in chunks, each
//! chunk and the batch's progress committed together — so a restart resumes where it stopped
//! and never imports a row twice. Every created or updated record is logged with its prior
//! state, so the batch can be reverted exactly.
//!
//! Why this file is long: staging, preview, the chunk runner and the revert share the
//! batch's row log, the per-chunk caches and the row mapping, and are read together when
//! one of them changes; the presets, the parsers (`csv`, `xlsx`) and the held-back bulk
//! writer (`domain/clients/bulk.rs`) already live apart. The next split is `revert.rs`.

pub mod lanes;
pub mod presets;
pub mod read;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{json, Map, Value};

use crate::db::schema::{clients, external_refs, import_batches, import_changes, opportunities};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::service::Access;
use crate::domain::clients::ClientRow;
use crate::domain::pipeline::OpportunityRow;
use crate::error::{AppError, AppResult, FieldError};
pub use lanes::Lane;
pub use presets::Kind;

/// Rows per committed chunk. A chunk holds SQLite's write lock while it runs, and every
/// other writer waits for it: 1,000 rows keep that wait near a tenth of a second.
pub const CHUNK: usize = 1000;
/// Row errors kept on the batch (the counts cover all).
const MAX_ERRORS: usize = 200;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = import_batches)]
pub struct BatchRow {
    pub id: String,
    pub organization_id: String,
    pub user_id: Option<String>,
    pub file_name: String,
    pub preset: String,
    pub kind: String,
    pub mode: String,
    /// JSON: one target field (or null) per column.
    pub mapping: String,
    /// preview, queued, running, done, failed, reverted
    pub status: String,
    pub total_rows: i32,
    pub processed_rows: i32,
    pub created_count: i32,
    pub updated_count: i32,
    pub skipped_count: i32,
    pub failed_count: i32,
    /// JSON: `[{"row": n, "message": …}]`
    pub errors: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    /// Where the next unprocessed record starts in the stored file.
    pub file_offset: i64,
}

impl BatchRow {
    pub fn kind(&self) -> Kind {
        Kind::parse(&self.kind).unwrap_or(Kind::Contacts)
    }

    pub fn mapping(&self) -> Vec<Option<String>> {
        serde_json::from_str(&self.mapping).unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "fileName": self.file_name, "preset": self.preset, "kind": self.kind,
            "mode": self.mode, "status": self.status, "mapping": self.mapping(),
            "totalRows": self.total_rows, "processedRows": self.processed_rows,
            "created": self.created_count, "updated": self.updated_count,
            "skipped": self.skipped_count, "failed": self.failed_count,
            "errors": serde_json::from_str::<Value>(&self.errors).unwrap_or(json!([])),
            "createdAt": self.created_at.and_utc().to_rfc3339(),
            "finishedAt": self.finished_at.map(|t| t.and_utc().to_rfc3339()),
        })
    }
}

/// What to do with a row that matches an existing record (by external id, e-mail or
/// company domain).
pub const MODES: &[&str] = &["update", "skip", "create"];

/// Where uploaded files wait for their run: `<data dir>/imports/<batch>.csv`.
pub fn file_path(data_dir: &std::path::Path, batch: &str) -> std::path::PathBuf {
    data_dir.join("imports").join(format!("{batch}.csv"))
}

/// Options for a new batch.
pub struct NewBatch<'a> {
    pub file_name: &'a str,
    pub preset: &'a str,
    pub kind: Option<Kind>,
    pub mode: &'a str,
}

/// Reads and checks the file, stores it, and creates the batch (status `preview`).
pub fn stage(
    conn: &mut DbConn,
    ctx: &AuditContext,
    data_dir: &std::path::Path,
    bytes: &[u8],
    opts: NewBatch<'_>,
) -> AppResult<BatchRow> {
    if !presets::PRESETS.contains(&opts.preset) {
        return Err(AppError::invalid(
            "preset",
            "Choose hubspot, salesforce or generic.",
        ));
    }
    if !MODES.contains(&opts.mode) {
        return Err(AppError::invalid(
            "mode",
            "Choose update, skip or create for rows that match an existing record.",
        ));
    }
    let id = new_id();
    let path = file_path(data_dir, &id);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| AppError::Internal(format!("imports directory: {e}")))?;
    }
    // Checks every record and keeps a decoded copy (UTF-8, commas), so the run never
    // guesses the encoding again and can seek by byte offset.
    let file = std::fs::File::create(&path)
        .map_err(|e| AppError::Internal(format!("import copy: {e}")))?;
    let checked = read::copy_checked(bytes, std::io::BufWriter::new(file));
    let (headers, total) = match checked {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    let kind = match opts.kind.or_else(|| presets::detect(&headers)) {
        Some(k) => k,
        None => {
            let _ = std::fs::remove_file(&path);
            return Err(AppError::invalid(
                "kind",
                "Say whether the file holds companies, contacts or deals; the columns do not tell.",
            ));
        }
    };
    let mut mapping = presets::mapping(opts.preset, kind, &headers);
    // Columns the preset does not know may carry a custom field's label or key.
    let custom = targets_for(conn, &ctx.org_id, kind)?;
    for (i, header) in headers.iter().enumerate() {
        if i >= mapping.len() || mapping[i].is_some() {
            continue;
        }
        let h = presets::normalise(header);
        let found = custom.iter().find(|(t, label)| {
            t.strip_prefix(CUSTOM).is_some_and(|key| {
                presets::normalise(key) == h
                    || presets::normalise(label.trim_end_matches(" (custom field)")) == h
            })
        });
        if let Some((t, _)) = found {
            if !mapping.iter().flatten().any(|m| m == t) {
                mapping[i] = Some(t.clone());
            }
        }
    }
    let at = now();
    let row = BatchRow {
        id,
        organization_id: ctx.org_id.clone(),
        user_id: ctx.actor_user_id.clone(),
        file_name: opts.file_name.chars().take(200).collect(),
        preset: opts.preset.to_string(),
        kind: kind.as_str().to_string(),
        mode: opts.mode.to_string(),
        mapping: serde_json::to_string(&mapping).unwrap_or_else(|_| "[]".into()),
        status: "preview".into(),
        total_rows: total as i32,
        processed_rows: 0,
        created_count: 0,
        updated_count: 0,
        skipped_count: 0,
        failed_count: 0,
        errors: "[]".into(),
        created_at: at,
        updated_at: at,
        finished_at: None,
        file_offset: 0,
    };
    diesel::insert_into(import_batches::table)
        .values(&row)
        .execute(conn)?;
    audit::record(
        conn,
        ctx,
        "import.upload",
        "import",
        Some(&row.id),
        json!({"file": row.file_name, "rows": row.total_rows, "kind": row.kind, "preset": row.preset}),
    )?;
    Ok(row)
}

pub fn get(conn: &mut DbConn, org_id: &str, id: &str) -> AppResult<BatchRow> {
    import_batches::table
        .filter(import_batches::organization_id.eq(org_id))
        .filter(import_batches::id.eq(id))
        .select(BatchRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)
}

pub fn list(conn: &mut DbConn, org_id: &str) -> AppResult<Vec<BatchRow>> {
    Ok(import_batches::table
        .filter(import_batches::organization_id.eq(org_id))
        .order(import_batches::created_at.desc())
        .limit(50)
        .select(BatchRow::as_select())
        .load(conn)?)
}

/// Changes the mapping and the duplicate mode of a batch still in preview.
pub fn configure(
    conn: &mut DbConn,
    org_id: &str,
    id: &str,
    mapping: Option<Vec<Option<String>>>,
    mode: Option<&str>,
) -> AppResult<BatchRow> {
    let batch = get(conn, org_id, id)?;
    if batch.status != "preview" {
        return Err(AppError::Conflict(
            "This import has already run; upload the file again to change it.".into(),
        ));
    }
    let mut errors = Vec::new();
    let targets = targets_for(conn, org_id, batch.kind())?;
    let mapping = match mapping {
        Some(m) => {
            let columns = batch.mapping().len();
            if m.len() != columns {
                errors.push(FieldError::new(
                    "mapping",
                    format!("Send one entry per column ({columns})."),
                ));
            }
            let mut seen = Vec::new();
            for t in m.iter().flatten() {
                if !targets.iter().any(|(k, _)| k == t) {
                    errors.push(FieldError::new(
                        "mapping",
                        format!("{t} is not a field of {}.", batch.kind),
                    ));
                } else if seen.contains(t) {
                    errors.push(FieldError::new(
                        "mapping",
                        format!("{t} is mapped from two columns."),
                    ));
                }
                seen.push(t.clone());
            }
            m
        }
        None => batch.mapping(),
    };
    let mode = mode.unwrap_or(&batch.mode);
    if !MODES.contains(&mode) {
        errors.push(FieldError::new("mode", "Choose update, skip or create."));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(
            "The import could not be changed.".into(),
            errors,
        ));
    }
    diesel::update(import_batches::table.filter(import_batches::id.eq(&batch.id)))
        .set((
            import_batches::mapping.eq(serde_json::to_string(&mapping).unwrap_or_default()),
            import_batches::mode.eq(mode),
            import_batches::updated_at.eq(now()),
        ))
        .execute(conn)?;
    get(conn, org_id, id)
}

/// Queues a batch for the background run. A failed batch (the database went away, the
/// server was stopped hard) is queued again and resumes after its last committed chunk:
/// every chunk commits its rows and the batch's progress together, so nothing runs twice.
pub fn start(conn: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<BatchRow> {
    let batch = get(conn, &ctx.org_id, id)?;
    if !matches!(batch.status.as_str(), "preview" | "failed") {
        return Err(AppError::Conflict(
            "This import is already running or finished.".into(),
        ));
    }
    if !batch.mapping().iter().any(Option::is_some) {
        return Err(AppError::invalid(
            "mapping",
            &format!(
                "None of the columns is a field of {} that Rapport knows; choose another preset or map them.",
                batch.kind
            ),
        ));
    }
    diesel::update(
        import_batches::table
            .filter(import_batches::id.eq(&batch.id))
            .filter(import_batches::status.eq(&batch.status)),
    )
    .set((
        import_batches::status.eq("queued"),
        import_batches::finished_at.eq(None::<chrono::NaiveDateTime>),
        import_batches::updated_at.eq(now()),
    ))
    .execute(conn)?;
    audit::record(
        conn,
        ctx,
        if batch.status == "failed" {
            "import.resume"
        } else {
            "import.start"
        },
        "import",
        Some(&batch.id),
        json!({"mode": batch.mode, "fromRow": batch.processed_rows}),
    )?;
    get(conn, &ctx.org_id, id)
}

/// A row as (target field, value) pairs.
pub type Cells = Vec<(String, String)>;

/// Up to `limit` rows of the stored file from byte `offset` (0: after the header), as
/// (target → value) maps, and the offset after them.
fn mapped_rows(
    data_dir: &std::path::Path,
    batch: &BatchRow,
    offset: i64,
    limit: usize,
) -> AppResult<(Vec<Cells>, i64)> {
    let gone = |e: std::io::Error| {
        AppError::Conflict(format!(
            "The uploaded file of this import is gone ({e}); upload it again."
        ))
    };
    let file = std::fs::File::open(file_path(data_dir, &batch.id)).map_err(gone)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let mut record = csv::StringRecord::new();
    let broken = |e: csv::Error| AppError::Internal(format!("import copy: {e}"));
    if offset == 0 {
        // The header line.
        reader.read_record(&mut record).map_err(broken)?;
    } else {
        let mut pos = csv::Position::new();
        pos.set_byte(offset as u64);
        reader.seek(pos).map_err(broken)?;
    }
    let mapping = batch.mapping();
    let mut rows = Vec::new();
    while rows.len() < limit {
        if !reader.read_record(&mut record).map_err(broken)? {
            break;
        }
        rows.push(
            record
                .iter()
                .zip(mapping.iter())
                .filter_map(|(v, t)| t.clone().map(|t| (t, v.trim().to_string())))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        );
    }
    Ok((rows, reader.position().byte() as i64))
}

/// What one row did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created(String),
    Updated(String),
    Skipped(String),
}

/// Everything a row needs besides its cells.
pub struct Env<'a> {
    pub ctx: &'a AuditContext,
    pub access: &'a Access,
    pub batch: &'a BatchRow,
    pub external: &'a dyn crate::domain::custom_fields::ExternalTypes,
    pub rules: &'a dyn crate::domain::pipeline::service::MoveRules,
    pub default_currency: &'a str,
    /// Loaded once per run rather than per row.
    pub cache: Cache,
}

/// What every row of a run needs from the database and does not change during it.
#[derive(Default)]
pub struct Cache {
    defs: std::cell::RefCell<
        std::collections::HashMap<&'static str, Vec<crate::domain::custom_fields::FieldRow>>,
    >,
    /// The change log of a fast chunk, written in one multi-row insert when the chunk ends
    /// (one round trip per row less on PostgreSQL). `None` in the careful pass, where a
    /// row's savepoint must take its change entry with it.
    changes: std::cell::RefCell<Option<Vec<ChangeRow>>>,
    /// Live clients by e-mail and companies by exact name, read for a whole chunk at once
    /// (one `IN` query each instead of a query per row) and kept current as rows create.
    emails: std::cell::RefCell<std::collections::HashMap<String, Option<String>>>,
    companies: std::cell::RefCell<std::collections::HashMap<String, Option<String>>>,
    /// Companies by website domain, read in bulk for a company file's chunk.
    domains: std::cell::RefCell<std::collections::HashMap<String, Option<String>>>,
    /// Records by (entity, id in the old system), read in bulk for the chunk's own ids.
    refs: std::cell::RefCell<std::collections::HashMap<(String, String), Option<String>>>,
    /// Members by e-mail (the owner column names a handful of people a million times).
    owners: std::cell::RefCell<std::collections::HashMap<String, Option<String>>>,
    /// A fast chunk's new external ids (entity, external id, record), written with the
    /// change log when the chunk ends; `None` in the careful pass.
    new_refs: std::cell::RefCell<Option<Vec<(String, String, String)>>>,
}

impl Cache {
    /// Reads the chunk's e-mails and company names in bulk.
    fn prefetch(
        &self,
        conn: &mut DbConn,
        org: &str,
        kind: Kind,
        source: &str,
        rows: &[Vec<(String, String)>],
    ) -> AppResult<()> {
        let emails: Vec<String> = rows
            .iter()
            .filter_map(|cells| cell(cells, "email"))
            .map(str::to_lowercase)
            .collect();
        let names: Vec<String> = rows
            .iter()
            .filter_map(|cells| cell(cells, "companyName"))
            .map(str::to_string)
            .collect();
        for part in emails.chunks(500) {
            let found: Vec<(String, Option<String>, NaiveDateTime)> = clients::table
                .filter(clients::organization_id.eq(org))
                .filter(clients::deleted_at.is_null())
                .filter(clients::email.eq_any(part))
                .select((clients::id, clients::email, clients::created_at))
                .load(conn)?;
            settle(&mut self.emails.borrow_mut(), part, found);
        }
        for part in names.chunks(500) {
            let found: Vec<(String, Option<String>, NaiveDateTime)> = clients::table
                .filter(clients::organization_id.eq(org))
                .filter(clients::deleted_at.is_null())
                .filter(company_kind())
                .filter(clients::company_name.eq_any(part))
                .select((clients::id, clients::company_name, clients::created_at))
                .load(conn)?;
            settle(&mut self.companies.borrow_mut(), part, found);
        }
        if kind == Kind::Companies {
            let domains: Vec<String> = rows
                .iter()
                .filter_map(|cells| cell(cells, "domain"))
                .map(domain_of)
                .filter(|d| !d.is_empty())
                .collect();
            for part in domains.chunks(500) {
                let found: Vec<(String, Option<String>, NaiveDateTime)> = clients::table
                    .filter(clients::organization_id.eq(org))
                    .filter(clients::deleted_at.is_null())
                    .filter(clients::kind.eq("company"))
                    .filter(clients::website_key.eq_any(part))
                    .select((clients::id, clients::website_key, clients::created_at))
                    .load(conn)?;
                settle(&mut self.domains.borrow_mut(), part, found);
            }
        }
        let entity = match kind {
            Kind::Companies => "company",
            Kind::Contacts => "contact",
            Kind::Deals => "opportunity",
        };
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|cells| cell(cells, "externalId"))
            .map(str::to_string)
            .collect();
        for part in ids.chunks(500) {
            let found: Vec<(String, String)> = external_refs::table
                .filter(external_refs::organization_id.eq(org))
                .filter(external_refs::source.eq(source))
                .filter(external_refs::entity.eq(entity))
                .filter(external_refs::external_id.eq_any(part))
                .select((external_refs::external_id, external_refs::record_id))
                .load(conn)?;
            let mut refs = self.refs.borrow_mut();
            for x in part {
                refs.entry((entity.to_string(), x.clone())).or_insert(None);
            }
            for (x, record) in found {
                refs.insert((entity.to_string(), x), Some(record));
            }
        }
        Ok(())
    }

    fn external_ref(
        &self,
        conn: &mut DbConn,
        org: &str,
        source: &str,
        entity: &str,
        external_id: &str,
    ) -> AppResult<Option<String>> {
        let key = (entity.to_string(), external_id.to_string());
        if let Some(hit) = self.refs.borrow().get(&key) {
            return Ok(hit.clone());
        }
        let found = external_ref(conn, org, source, entity, external_id)?;
        self.refs.borrow_mut().insert(key, found.clone());
        Ok(found)
    }

    fn company_by_domain(
        &self,
        conn: &mut DbConn,
        org: &str,
        domain: &str,
    ) -> AppResult<Option<String>> {
        if domain.is_empty() {
            return Ok(None);
        }
        if let Some(hit) = self.domains.borrow().get(domain) {
            return Ok(hit.clone());
        }
        let found = company_by_domain(conn, org, domain)?;
        self.domains
            .borrow_mut()
            .insert(domain.to_string(), found.clone());
        Ok(found)
    }

    fn member_by_email(
        &self,
        conn: &mut DbConn,
        org: &str,
        email: &str,
    ) -> AppResult<Option<String>> {
        if let Some(hit) = self.owners.borrow().get(email) {
            return Ok(hit.clone());
        }
        let found = member_by_email(conn, org, email)?;
        self.owners
            .borrow_mut()
            .insert(email.to_string(), found.clone());
        Ok(found)
    }

    fn client_by_email(
        &self,
        conn: &mut DbConn,
        org: &str,
        email: &str,
    ) -> AppResult<Option<String>> {
        let key = email.to_lowercase();
        if let Some(hit) = self.emails.borrow().get(&key) {
            return Ok(hit.clone());
        }
        let found = client_by_email(conn, org, &key)?;
        self.emails.borrow_mut().insert(key, found.clone());
        Ok(found)
    }

    fn company_by_name(
        &self,
        conn: &mut DbConn,
        org: &str,
        name: &str,
    ) -> AppResult<Option<String>> {
        if let Some(hit) = self.companies.borrow().get(name) {
            return Ok(hit.clone());
        }
        let found = company_by_name(conn, org, name)?;
        self.companies
            .borrow_mut()
            .insert(name.to_string(), found.clone());
        Ok(found)
    }

    /// A client this chunk created or updated: later rows with its e-mail or name find it
    /// (the oldest one found keeps the key, as with the lookups).
    fn remember(&self, row: &ClientRow) {
        if let Some(e) = &row.email {
            let mut map = self.emails.borrow_mut();
            let entry = map.entry(e.clone()).or_insert(None);
            if entry.is_none() {
                *entry = Some(row.id.clone());
            }
        }
        if row.is_company() {
            if let Some(d) = row
                .website
                .as_deref()
                .map(domain_of)
                .filter(|d| !d.is_empty())
            {
                let mut map = self.domains.borrow_mut();
                let entry = map.entry(d).or_insert(None);
                if entry.is_none() {
                    *entry = Some(row.id.clone());
                }
            }
            if let Some(n) = &row.company_name {
                let mut map = self.companies.borrow_mut();
                let entry = map.entry(n.clone()).or_insert(None);
                if entry.is_none() {
                    *entry = Some(row.id.clone());
                }
            }
        }
    }
}

/// Records what a bulk lookup of `asked` found: the oldest id per key, as the single-row
/// lookups choose, and `None` for a key nothing matched.
fn settle(
    map: &mut std::collections::HashMap<String, Option<String>>,
    asked: &[String],
    found: Vec<(String, Option<String>, NaiveDateTime)>,
) {
    for key in asked {
        map.entry(key.clone()).or_insert(None);
    }
    let mut best: std::collections::HashMap<String, (NaiveDateTime, String)> =
        std::collections::HashMap::new();
    for (id, key, at) in found {
        let Some(key) = key else { continue };
        match best.get(&key) {
            Some((old, _)) if *old <= at => {}
            _ => {
                best.insert(key, (at, id));
            }
        }
    }
    for (key, (_, id)) in best {
        map.insert(key, Some(id));
    }
}

/// id, seq, entity, record, action, state before.
type ChangeRow = (String, i32, String, String, &'static str, Option<String>);

impl Cache {
    fn defs(
        &self,
        conn: &mut DbConn,
        org: &str,
        entity: &'static str,
    ) -> AppResult<Vec<crate::domain::custom_fields::FieldRow>> {
        if let Some(d) = self.defs.borrow().get(entity) {
            return Ok(d.clone());
        }
        let d = crate::domain::custom_fields::store::list(conn, org, entity, false)?;
        self.defs.borrow_mut().insert(entity, d.clone());
        Ok(d)
    }
}

/// A previewed row: its line in the file, its mapped values, and what it would do (or why
/// it would fail).
pub type PreviewRow = (usize, Vec<(String, String)>, Result<String, String>);

/// The first rows as they would import, with each row's errors; nothing is kept.
pub fn preview(
    conn: &mut DbConn,
    data_dir: &std::path::Path,
    env: &Env<'_>,
    limit: usize,
) -> AppResult<Vec<PreviewRow>> {
    let (rows, _) = mapped_rows(data_dir, env.batch, 0, limit)?;
    let mut out = Vec::new();
    // Run the rows for real inside a transaction that is always rolled back: the preview
    // says exactly what the run will say.
    let _ = crate::db::transaction::<(), AppError, _>(conn, |c| {
        for (i, cells) in rows.iter().take(limit).enumerate() {
            let r = crate::db::transaction(c, |c| import_row(c, env, cells, i as i32));
            let said = match r {
                Ok(Outcome::Created(_)) => Ok("create".to_string()),
                Ok(Outcome::Updated(_)) => Ok("update".to_string()),
                Ok(Outcome::Skipped(why)) => Ok(format!("skip: {why}")),
                Err(e) => Err(row_error(e)),
            };
            out.push((i + 2, cells.clone(), said));
        }
        Err(AppError::Conflict("preview only".into()))
    });
    Ok(out)
}

fn row_error(e: AppError) -> String {
    match e {
        AppError::Validation(_, errs) => errs
            .into_iter()
            .map(|e| {
                if e.field.is_empty() || e.field == "row" {
                    e.message
                } else {
                    format!("{}: {}", e.field, e.message)
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        AppError::NotFound => "a record it refers to was not found".into(),
        other => other.to_string(),
    }
}

/// Counts a row's outcome (created, updated, skipped, failed); created and updated rows
/// took the next change-log sequence number.
fn tally(outcome: Outcome, counts: &mut (i32, i32, i32, i32), seq: &mut i32) {
    match outcome {
        Outcome::Created(_) => {
            counts.0 += 1;
            *seq += 1;
        }
        Outcome::Updated(_) => {
            counts.1 += 1;
            *seq += 1;
        }
        Outcome::Skipped(_) => counts.2 += 1,
    }
}

/// Runs the next chunk of a queued or running batch; `Ok(false)` when it is finished.
pub fn run_chunk(conn: &mut DbConn, data_dir: &std::path::Path, env: &Env<'_>) -> AppResult<bool> {
    run_lane(conn, data_dir, env, &Lane::Alone)
}

/// Runs a chunk in the given lane (see `lanes.rs`: two chunks at once on PostgreSQL).
pub fn run_lane(
    conn: &mut DbConn,
    data_dir: &std::path::Path,
    env: &Env<'_>,
    lane: &Lane<'_>,
) -> AppResult<bool> {
    if let (DbConn::Postgresql(_), false) = (&*conn, matches!(lane, Lane::Second { .. })) {
        // why: a table that grows from nothing during an import keeps the statistics of an
        // empty one until analysed, and PostgreSQL then looks up each row's e-mail by
        // scanning (1M rows fell to 300 rows/s where autovacuum is off). Analysing after 1,
        // 2, 4, 8… chunks keeps the plans right at a handful of analyses per import.
        let done = get(conn, &env.ctx.org_id, &env.batch.id)?.processed_rows as usize / CHUNK;
        if done > 0 && done.is_power_of_two() {
            diesel::connection::SimpleConnection::batch_execute(
                conn,
                "ANALYZE clients, opportunities, external_refs",
            )?;
        }
    }
    // Fast path: the chunk's rows straight in its transaction. Most chunks have no failing
    // row, and a savepoint makes SQLite copy every page it touches to a sub-journal first
    // (a third of the import's time went to those writes). Any failure rolls the chunk back
    // and it runs again carefully, each row in its own savepoint.
    let more = match chunk_attempt(conn, data_dir, env, false, lane) {
        Ok(more) => more,
        // A second lane's failure may be the first lane's doing (a record both touch):
        // the chunk runs again alone, after the first has committed.
        Err(_) if matches!(lane, Lane::Second { .. }) => {
            return Err(AppError::Stale(
                "This part of the import runs again on its own.".into(),
            ))
        }
        Err(_) => chunk_attempt(conn, data_dir, env, true, lane)?,
    };
    if let Lane::Second { .. } = lane {
        lanes::count_second_run();
    }
    if !more {
        // A finished import may have grown the tables many times over: the planner needs
        // to know (after the last chunk's commit, so no write lock is held meanwhile).
        crate::db::refresh_statistics(conn)?;
    }
    Ok(more)
}

fn chunk_attempt(
    conn: &mut DbConn,
    data_dir: &std::path::Path,
    env: &Env<'_>,
    careful: bool,
    lane: &Lane<'_>,
) -> AppResult<bool> {
    crate::db::long_transaction(conn, |c| {
        // The batch as committed: another worker may have run this chunk meanwhile.
        let batch = get(c, &env.ctx.org_id, &env.batch.id)?;
        if !matches!(batch.status.as_str(), "queued" | "running") {
            return Ok(false);
        }
        // A second lane starts where the first lane's chunk, not yet committed, ends.
        let (from, offset) = match lane {
            Lane::Second { from, offset, .. } => (*from, *offset),
            _ => (batch.processed_rows as usize, batch.file_offset),
        };
        let (rows, next_offset) = mapped_rows(data_dir, &batch, offset, CHUNK)?;
        let to = from + rows.len();
        if let Lane::First(started) = lane {
            lanes::hold(c, &batch.id, to)?;
            started.set();
        }
        // One audit entry for the import, not one per record: each record is in the
        // batch's change log with its prior state.
        let bulk = AuditContext {
            import_batch: Some(batch.id.clone()),
            ..env.ctx.clone()
        };
        let row_env = Env {
            ctx: &bulk,
            access: env.access,
            batch: env.batch,
            external: env.external,
            rules: env.rules,
            default_currency: env.default_currency,
            cache: Cache {
                changes: std::cell::RefCell::new((!careful).then(Vec::new)),
                new_refs: std::cell::RefCell::new((!careful).then(Vec::new)),
                ..Cache::default()
            },
        };
        row_env
            .cache
            .prefetch(c, &env.ctx.org_id, batch.kind(), &batch.preset, &rows)?;
        // The careful pass writes each row's outbox entry inside that row's savepoint.
        let _deferred = (!careful).then(crate::domain::outbox::defer_touches);
        // New clients go in a few hundred per statement when the chunk ends (a deal file's
        // rows write deals that point at clients, so only client files hold them back).
        let _holding =
            (!careful && batch.kind() != Kind::Deals).then(crate::domain::clients::bulk::hold);
        let mut counts = (0, 0, 0, 0);
        let mut errors: Vec<Value> = Vec::new();
        // The next change number: the last one's plus one (an index lookup; counting the
        // batch's changes grew with every chunk). A second lane's chunk follows one whose
        // changes it cannot see yet, and which takes at most a number per row.
        let mut seq: i32 = import_changes::table
            .filter(import_changes::batch_id.eq(&batch.id))
            .select(diesel::dsl::max(import_changes::seq))
            .first::<Option<i32>>(c)?
            .map_or(0, |last| last + 1)
            + if matches!(lane, Lane::Second { .. }) {
                CHUNK as i32
            } else {
                0
            };
        if !careful {
            for cells in &rows {
                tally(import_row(c, &row_env, cells, seq)?, &mut counts, &mut seq);
            }
        } else {
            for (i, cells) in rows.iter().enumerate() {
                match crate::db::transaction(c, |c| import_row(c, &row_env, cells, seq)) {
                    Ok(outcome) => tally(outcome, &mut counts, &mut seq),
                    Err(e) => {
                        counts.3 += 1;
                        errors.push(json!({"row": from + i + 2, "message": row_error(e)}));
                    }
                }
            }
        }
        crate::domain::clients::bulk::flush(c)?;
        flush_changes(c, &row_env)?;
        flush_refs(c, &row_env)?;
        crate::domain::outbox::flush_touches(c)?;
        if let Lane::Second { started, .. } = lane {
            // Commits after the first lane's chunk, or not at all.
            started.wait();
            lanes::follow(c, &batch.id, from)?;
        }
        // The batch's progress moves on only from where this chunk starts: a chunk another
        // worker ran meanwhile (or a first lane that did not commit) makes this one roll
        // back. Claimed first, then read again, so the counts add to the committed ones.
        let claimed = diesel::update(
            import_batches::table
                .filter(import_batches::id.eq(&batch.id))
                .filter(import_batches::processed_rows.eq(from as i32)),
        )
        .set(import_batches::updated_at.eq(now()))
        .execute(c)?;
        if claimed != 1 {
            return Err(AppError::Stale(
                "Another worker ran this part of the import.".into(),
            ));
        }
        let batch = get(c, &env.ctx.org_id, &batch.id)?;
        let mut all: Vec<Value> = serde_json::from_str(&batch.errors).unwrap_or_default();
        all.extend(
            errors
                .into_iter()
                .take(MAX_ERRORS.saturating_sub(all.len())),
        );
        let done = rows.len() < CHUNK || to >= batch.total_rows as usize;
        diesel::update(import_batches::table.filter(import_batches::id.eq(&batch.id)))
            .set((
                import_batches::processed_rows.eq(to as i32),
                import_batches::file_offset.eq(next_offset),
                import_batches::created_count.eq(batch.created_count + counts.0),
                import_batches::updated_count.eq(batch.updated_count + counts.1),
                import_batches::skipped_count.eq(batch.skipped_count + counts.2),
                import_batches::failed_count.eq(batch.failed_count + counts.3),
                import_batches::errors.eq(Value::Array(all).to_string()),
                import_batches::status.eq(if done { "done" } else { "running" }),
                import_batches::updated_at.eq(now()),
                import_batches::finished_at.eq(if done { Some(now()) } else { None }),
            ))
            .execute(c)?;
        if done {
            let b = get(c, &env.ctx.org_id, &batch.id)?;
            audit::record(
                c,
                env.ctx,
                "import.finish",
                "import",
                Some(&b.id),
                json!({"created": b.created_count, "updated": b.updated_count, "skipped": b.skipped_count, "failed": b.failed_count}),
            )?;
            // New records may twin old ones in ways the import does not match on (phone,
            // name at a company): the duplicates page gets a fresh check.
            if b.created_count > 0 {
                crate::domain::clients::duplicates::request_scan(c, &env.ctx.org_id)?;
            }
        }
        Ok(!done)
    })
}

fn log_change(
    conn: &mut DbConn,
    env: &Env<'_>,
    seq: i32,
    entity: &str,
    record: &str,
    before: Option<String>,
) -> AppResult<()> {
    let action = if before.is_some() {
        "updated"
    } else {
        "created"
    };
    if let Some(buffer) = env.cache.changes.borrow_mut().as_mut() {
        buffer.push((
            new_id(),
            seq,
            entity.to_string(),
            record.to_string(),
            action,
            before,
        ));
        return Ok(());
    }
    diesel::insert_into(import_changes::table)
        .values((
            import_changes::id.eq(new_id()),
            import_changes::batch_id.eq(&env.batch.id),
            import_changes::organization_id.eq(&env.ctx.org_id),
            import_changes::seq.eq(seq),
            import_changes::entity.eq(entity),
            import_changes::record_id.eq(record),
            import_changes::action.eq(action),
            import_changes::before.eq(before),
        ))
        .execute(conn)?;
    Ok(())
}

/// Writes a fast chunk's buffered change log, a few hundred rows per statement.
fn flush_changes(conn: &mut DbConn, env: &Env<'_>) -> AppResult<()> {
    let Some(rows) = env.cache.changes.borrow_mut().take() else {
        return Ok(());
    };
    #[derive(Insertable)]
    #[diesel(table_name = import_changes, treat_none_as_default_value = false)]
    struct NewChange<'a> {
        id: &'a str,
        batch_id: &'a str,
        organization_id: &'a str,
        seq: i32,
        entity: &'a str,
        record_id: &'a str,
        action: &'a str,
        before: Option<&'a str>,
    }
    // why: SQLite binds at most 32,766 parameters per statement; COPY has no such bound.
    let part_size = if matches!(conn, DbConn::Sqlite(_)) {
        500
    } else {
        rows.len().max(1)
    };
    for part in rows.chunks(part_size) {
        let values: Vec<NewChange<'_>> = part
            .iter()
            .map(|(id, seq, entity, record, action, before)| NewChange {
                id,
                batch_id: &env.batch.id,
                organization_id: &env.ctx.org_id,
                seq: *seq,
                entity,
                record_id: record,
                action,
                before: before.as_deref(),
            })
            .collect();
        // why: MultiConnection compiles no multi-row insert; each backend's connection does.
        // PostgreSQL takes the rows as one binary COPY (nothing to parse or plan).
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(import_changes::table)
                .values(values)
                .execute(c)?,
            DbConn::Postgresql(c) => diesel::copy_from(import_changes::table)
                .from_insertable(values)
                .execute(c)?,
        };
    }
    Ok(())
}

fn external_ref(
    conn: &mut DbConn,
    org: &str,
    source: &str,
    entity: &str,
    external_id: &str,
) -> AppResult<Option<String>> {
    Ok(external_refs::table
        .filter(external_refs::organization_id.eq(org))
        .filter(external_refs::source.eq(source))
        .filter(external_refs::entity.eq(entity))
        .filter(external_refs::external_id.eq(external_id))
        .select(external_refs::record_id)
        .first(conn)
        .optional()?)
}

fn remember_ref(
    conn: &mut DbConn,
    env: &Env<'_>,
    entity: &str,
    external_id: &str,
    record: &str,
) -> AppResult<()> {
    let org = &env.ctx.org_id;
    if env
        .cache
        .external_ref(conn, org, &env.batch.preset, entity, external_id)?
        .is_some()
    {
        return Ok(());
    }
    env.cache.refs.borrow_mut().insert(
        (entity.to_string(), external_id.to_string()),
        Some(record.to_string()),
    );
    if let Some(buffer) = env.cache.new_refs.borrow_mut().as_mut() {
        buffer.push((
            entity.to_string(),
            external_id.to_string(),
            record.to_string(),
        ));
        return Ok(());
    }
    diesel::insert_into(external_refs::table)
        .values((
            external_refs::organization_id.eq(org),
            external_refs::source.eq(&env.batch.preset),
            external_refs::entity.eq(entity),
            external_refs::external_id.eq(external_id),
            external_refs::record_id.eq(record),
            external_refs::batch_id.eq(&env.batch.id),
        ))
        .execute(conn)?;
    Ok(())
}

/// Writes a fast chunk's new external ids, a few hundred per statement.
fn flush_refs(conn: &mut DbConn, env: &Env<'_>) -> AppResult<()> {
    let Some(refs) = env.cache.new_refs.borrow_mut().take() else {
        return Ok(());
    };
    for part in refs.chunks(500) {
        let values: Vec<_> = part
            .iter()
            .map(|(entity, x, record)| {
                (
                    external_refs::organization_id.eq(&env.ctx.org_id),
                    external_refs::source.eq(&env.batch.preset),
                    external_refs::entity.eq(entity),
                    external_refs::external_id.eq(x),
                    external_refs::record_id.eq(record),
                    external_refs::batch_id.eq(&env.batch.id),
                )
            })
            .collect();
        let insert = diesel::insert_into(external_refs::table).values(values);
        match conn {
            DbConn::Sqlite(c) => insert.execute(c)?,
            DbConn::Postgresql(c) => insert.execute(c)?,
        };
    }
    Ok(())
}

/// A live client of the organization by id.
fn live_client(conn: &mut DbConn, org: &str, id: &str) -> AppResult<Option<ClientRow>> {
    Ok(crate::domain::clients::store::find(conn, org, id)?.filter(|c| c.deleted_at.is_none()))
}

pub use crate::domain::clients::keys::domain_of;

fn company_by_domain(conn: &mut DbConn, org: &str, domain: &str) -> AppResult<Option<String>> {
    if domain.is_empty() {
        return Ok(None);
    }
    Ok(clients::table
        .filter(clients::organization_id.eq(org))
        .filter(clients::deleted_at.is_null())
        .filter(clients::website_key.eq(domain))
        .filter(clients::kind.eq("company"))
        .select(clients::id)
        .order(clients::created_at)
        .first(conn)
        .optional()?)
}

/// `kind = 'company'` written out, not bound: the company-name index holds companies only
/// (people carry a company name too, and a person's insert should not pay for that index),
/// and a planner uses a partial index only when the query names its condition literally.
fn company_kind() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql::<diesel::sql_types::Bool>("clients.kind = 'company'")
}

fn company_by_name(conn: &mut DbConn, org: &str, name: &str) -> AppResult<Option<String>> {
    Ok(clients::table
        .filter(clients::organization_id.eq(org))
        .filter(clients::deleted_at.is_null())
        .filter(company_kind())
        .filter(clients::company_name.eq(name))
        .select((clients::id, clients::created_at))
        .limit(50)
        .load::<(String, NaiveDateTime)>(conn)?
        .into_iter()
        .min_by_key(|(_, at)| *at)
        .map(|(id, _)| id))
}

fn client_by_email(conn: &mut DbConn, org: &str, email: &str) -> AppResult<Option<String>> {
    Ok(clients::table
        .filter(clients::organization_id.eq(org))
        .filter(clients::deleted_at.is_null())
        .filter(clients::email.eq(email.to_lowercase()))
        // why: no ORDER BY, or SQLite walks the created-at index instead of the e-mail one.
        .select((clients::id, clients::created_at))
        .limit(50)
        .load::<(String, NaiveDateTime)>(conn)?
        .into_iter()
        .min_by_key(|(_, at)| *at)
        .map(|(id, _)| id))
}

fn member_by_email(conn: &mut DbConn, org: &str, email: &str) -> AppResult<Option<String>> {
    use crate::db::schema::{memberships, users};
    Ok(users::table
        .inner_join(memberships::table.on(memberships::user_id.eq(users::id)))
        .filter(memberships::organization_id.eq(org))
        .filter(memberships::is_active.eq(true))
        .filter(users::email.eq(email.trim().to_lowercase()))
        .select(users::id)
        .first(conn)
        .optional()?)
}

/// The first of a list of ids (`a;b`, `a,b`).
fn first_id(s: &str) -> &str {
    s.split([';', ',']).next().unwrap_or_default().trim()
}

/// Imports one row (inside its own savepoint, so a refused row leaves nothing behind).
fn import_row(
    conn: &mut DbConn,
    env: &Env<'_>,
    cells: &[(String, String)],
    seq: i32,
) -> AppResult<Outcome> {
    for (target, value) in cells {
        if read::looks_like_formula(value) {
            return Err(AppError::invalid(
                "row",
                &format!(
                    "{target} starts with {} like a spreadsheet formula; remove it, or start the cell with an apostrophe.",
                    value.trim_start().chars().next().unwrap_or('=')
                ),
            ));
        }
    }
    match env.batch.kind() {
        Kind::Companies | Kind::Contacts => import_client(conn, env, cells, seq),
        Kind::Deals => import_deal(conn, env, cells, seq),
    }
}

/// Columns mapped to custom fields (`custom.<key>`) go in as `customFields`; the field's
/// own rules check and convert the text (numbers, dates, choices).
fn put_custom(body: &mut Map<String, Value>, cells: &[(String, String)]) {
    let custom: Map<String, Value> = cells
        .iter()
        .filter_map(|(t, v)| {
            t.strip_prefix(CUSTOM)
                .map(|k| (k.to_string(), Value::String(v.clone())))
        })
        .collect();
    if !custom.is_empty() {
        body.insert("customFields".into(), Value::Object(custom));
    }
}

/// Mapping targets that name a custom field start with this.
pub const CUSTOM: &str = "custom.";

/// The entity whose custom fields a kind of file can fill.
fn entity_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Deals => "opportunity",
        Kind::Companies | Kind::Contacts => "client",
    }
}

/// What a column can be mapped to: the kind's fields, then the organization's active custom
/// fields for it (`custom.<key>`), as (target, label).
pub fn targets_for(
    conn: &mut DbConn,
    org_id: &str,
    kind: Kind,
) -> AppResult<Vec<(String, String)>> {
    let mut targets: Vec<(String, String)> = kind
        .targets()
        .iter()
        .map(|(k, l)| (k.to_string(), l.to_string()))
        .collect();
    for d in crate::domain::custom_fields::store::list(conn, org_id, entity_of(kind), false)? {
        if d.is_active() {
            targets.push((
                format!("{CUSTOM}{}", d.field_key),
                format!("{} (custom field)", d.label),
            ));
        }
    }
    Ok(targets)
}

/// The value mapped to `target` in a row.
fn cell<'a>(cells: &'a [(String, String)], target: &str) -> Option<&'a str> {
    cells
        .iter()
        .find(|(t, _)| t == target)
        .map(|(_, v)| v.as_str())
}

fn import_client(
    conn: &mut DbConn,
    env: &Env<'_>,
    cells: &[(String, String)],
    seq: i32,
) -> AppResult<Outcome> {
    let get = |k: &str| cell(cells, k);
    let org = env.ctx.org_id.as_str();
    let company = env.batch.kind() == Kind::Companies;
    let external_id = get("externalId");
    let domain = get("domain").map(domain_of).unwrap_or_default();
    let email = get("email").map(str::to_lowercase);
    // why: old systems number companies and contacts from the same range, so an id is
    // only unique within its source *and* kind; a contact's id never finds a company.
    let ref_kind = if company { "company" } else { "contact" };
    // Existing record: by its id in the old system, else by e-mail or company domain.
    let mut existing = match external_id {
        Some(x) => env
            .cache
            .external_ref(conn, org, &env.batch.preset, ref_kind, x)?,
        None => None,
    };
    if existing.is_none() {
        existing = if company {
            env.cache.company_by_domain(conn, org, &domain)?
        } else {
            match &email {
                Some(e) => env.cache.client_by_email(conn, org, e)?,
                None => None,
            }
        };
    }
    // An update never changes a record's kind: a person's row never lands on a company.
    let existing = match existing {
        Some(id) => live_client(conn, org, &id)?.filter(|c| (c.kind == "company") == company),
        None => None,
    };
    let mut body = Map::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            body.insert(k.to_string(), Value::String(v.to_string()));
        }
    };
    if company {
        put("type", Some("company"));
        put("companyName", get("companyName"));
        if !domain.is_empty() {
            let site = get("domain").unwrap_or_default();
            let site = if site.contains("://") {
                site.to_string()
            } else {
                format!("https://{domain}")
            };
            put("website", Some(&site));
        }
        put("industry", get("industry"));
    } else {
        put("type", Some("individual"));
        put("firstName", get("firstName"));
        put("lastName", get("lastName"));
        put("email", email.as_deref());
    }
    put("phone", get("phone").or_else(|| get("mobile")));
    put("source", get("source"));
    if let Some(s) = get("status") {
        match presets::status_alias(s) {
            Some(st) => put("status", Some(st)),
            None => {
                return Err(AppError::invalid(
                    "status",
                    &format!(
                        "“{s}” is not a status Rapport knows (lead, prospect, customer, inactive)."
                    ),
                ))
            }
        }
    }
    let mut address = Map::new();
    for k in ["street", "city", "region", "postalCode"] {
        if let Some(v) = get(k) {
            address.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    if let Some(v) = get("country") {
        match presets::country_code(v) {
            Some(code) => {
                address.insert("country".into(), Value::String(code.into()));
            }
            None => {
                return Err(AppError::invalid(
                    "country",
                    &format!("“{v}” is not a country Rapport recognises; use its two-letter code."),
                ))
            }
        }
    }
    if !address.is_empty() {
        body.insert("address".into(), Value::Object(address));
    }
    if let Some(owner) = get("owner") {
        if let Some(u) = env.cache.member_by_email(conn, org, owner)? {
            body.insert("assignedTo".into(), Value::String(u));
        }
    }
    if !company {
        let employer = match get("companyExternalId").map(first_id) {
            Some(x) if !x.is_empty() => {
                env.cache
                    .external_ref(conn, org, &env.batch.preset, "company", x)?
            }
            _ => None,
        };
        let employer = match (employer, get("companyName")) {
            (Some(e), _) => Some(e),
            (None, Some(name)) => env.cache.company_by_name(conn, org, name)?,
            (None, None) => None,
        };
        if let Some(e) = employer {
            body.insert("employerId".into(), Value::String(e));
        }
    }
    put_custom(&mut body, cells);
    let defs = env.cache.defs(conn, org, "client")?;
    let w = crate::domain::clients::service::WriteContext {
        ctx: env.ctx,
        access: env.access,
        defs: &defs,
        external: env.external,
    };
    let outcome = match (existing, env.batch.mode.as_str()) {
        (Some(c), "skip") => {
            return Ok(Outcome::Skipped(format!(
                "matches {} already in Rapport",
                c.display_name
            )))
        }
        (Some(c), "update") => {
            let before =
                serde_json::to_string(&c).map_err(|e| AppError::Internal(e.to_string()))?;
            // The kind stays what it is; a contact file does not turn a company into a person.
            body.remove("type");
            let row = crate::domain::clients::service::update(
                conn,
                &w,
                &c.id,
                &body,
                crate::domain::clients::service::WriteMode::Merge,
                None,
            )?;
            if row.version != c.version {
                log_change(conn, env, seq, "client", &row.id, Some(before))?;
            }
            env.cache.remember(&row);
            Outcome::Updated(row.id)
        }
        _ => {
            // Every row runs inside the chunk's transaction (fast) or its own savepoint
            // (careful), either rolled back whole on an error.
            let row = crate::domain::clients::service::create_within(conn, &w, &body)?;
            env.cache.remember(&row);
            log_change(conn, env, seq, "client", &row.id, None)?;
            let opts_out = ["emailOptOut", "doNotCall"]
                .iter()
                .any(|k| get(k).is_some_and(presets::truthy));
            if opts_out || get("notes").is_some() {
                // Preferences and notes point at the new client: it must be written first.
                crate::domain::clients::bulk::flush(conn)?;
            }
            if !company {
                let mut prefs = Map::new();
                let mut channels = Map::new();
                if get("emailOptOut").is_some_and(presets::truthy) {
                    channels.insert(
                        "email".into(),
                        json!({"status": "opt_out", "source": format!("{} import", env.batch.preset)}),
                    );
                }
                if get("doNotCall").is_some_and(presets::truthy) {
                    channels.insert(
                        "phone".into(),
                        json!({"status": "opt_out", "source": format!("{} import", env.batch.preset)}),
                    );
                }
                if !channels.is_empty() {
                    prefs.insert("channels".into(), Value::Object(channels));
                    crate::domain::preferences::update(conn, env.ctx, env.access, &row.id, &prefs)?;
                }
            }
            if let Some(notes) = get("notes") {
                let mut note = Map::new();
                note.insert("type".into(), json!("note"));
                note.insert("subject".into(), json!("Imported notes"));
                note.insert("content".into(), json!(notes));
                crate::domain::interactions::create(conn, env.ctx, env.access, &row.id, &note)?;
            }
            Outcome::Created(row.id)
        }
    };
    let id = match &outcome {
        Outcome::Created(id) | Outcome::Updated(id) => id.clone(),
        Outcome::Skipped(_) => return Ok(outcome),
    };
    if let Some(x) = external_id {
        remember_ref(conn, env, ref_kind, x, &id)?;
    }
    Ok(outcome)
}

fn import_deal(
    conn: &mut DbConn,
    env: &Env<'_>,
    cells: &[(String, String)],
    seq: i32,
) -> AppResult<Outcome> {
    let get = |k: &str| cell(cells, k);
    use crate::domain::pipeline::{service as deals, store as deal_store};
    let org = env.ctx.org_id.as_str();
    let preset = env.batch.preset.as_str();
    let external_id = get("externalId");
    let existing = match external_id {
        Some(x) => match env
            .cache
            .external_ref(conn, org, preset, "opportunity", x)?
        {
            Some(id) => {
                deal_store::find_opportunity(conn, org, &id)?.filter(|d| d.deleted_at.is_none())
            }
            None => None,
        },
        None => None,
    };
    // Whose deal: the company's, else the contact's, else by e-mail or company name.
    let mut client = None;
    for (key, entity) in [
        ("companyExternalId", "company"),
        ("contactExternalId", "contact"),
    ] {
        if client.is_none() {
            if let Some(x) = get(key).map(first_id).filter(|x| !x.is_empty()) {
                client = env.cache.external_ref(conn, org, preset, entity, x)?;
            }
        }
    }
    if client.is_none() {
        if let Some(e) = get("clientEmail") {
            client = env.cache.client_by_email(conn, org, e)?;
        }
    }
    if client.is_none() {
        if let Some(n) = get("companyName") {
            client = env.cache.company_by_name(conn, org, n)?;
        }
    }
    let Some(client) = client.or_else(|| existing.as_ref().map(|d| d.client_id.clone())) else {
        return Err(AppError::invalid(
            "client",
            "No client for this deal: import its company or contact first (or map a client e-mail).",
        ));
    };
    let pipeline = deal_store::list_pipelines(conn, org)?
        .into_iter()
        .next()
        .ok_or(AppError::NotFound)?;
    let stages = deal_store::stages_of(conn, &pipeline.id)?;
    let mut body = Map::new();
    body.insert("clientId".into(), json!(client));
    if let Some(n) = get("name") {
        body.insert("name".into(), json!(n));
    }
    if let Some(s) = get("stage") {
        let wanted = presets::stage_alias(s);
        match stages
            .iter()
            .filter(|st| st.is_active)
            .find(|st| presets::normalise(&st.name) == presets::normalise(wanted))
        {
            Some(st) => {
                body.insert("stage".into(), json!(st.id));
                if st.kind == "lost" {
                    let reasons = deal_store::loss_reasons(conn, org, true)?;
                    if let Some(r) = reasons.first() {
                        body.insert("lossReason".into(), json!(r.name));
                    }
                }
            }
            None => {
                return Err(AppError::invalid(
                    "stage",
                    &format!(
                        "“{s}” is not a stage of {}; add it or rename it in the file.",
                        pipeline.name
                    ),
                ))
            }
        }
    }
    if let Some(a) = get("amount") {
        let cleaned: String = a
            .chars()
            .filter(|c| !matches!(c, ',' | ' ' | '$' | '€' | '£'))
            .collect();
        body.insert("value".into(), json!(cleaned));
    }
    if let Some(c) = get("currency") {
        body.insert("currency".into(), json!(c));
    }
    if let Some(d) = get("closeDate") {
        body.insert("expectedCloseDate".into(), json!(d.get(..10).unwrap_or(d)));
    }
    if let Some(p) = get("probability") {
        match p.trim_end_matches('%').trim().parse::<f64>() {
            Ok(n) => {
                body.insert("probability".into(), json!(n.round() as i64));
            }
            Err(_) => {
                return Err(AppError::invalid(
                    "probability",
                    "Use a number from 0 to 100.",
                ))
            }
        }
    }
    if let Some(s) = get("source") {
        body.insert("source".into(), json!(s));
    }
    if let Some(owner) = get("owner") {
        if let Some(u) = env.cache.member_by_email(conn, org, owner)? {
            body.insert("assignedTo".into(), json!(u));
        }
    }
    put_custom(&mut body, cells);
    let defs = env.cache.defs(conn, org, "opportunity")?;
    let w = deals::WriteContext {
        ctx: env.ctx,
        access: env.access,
        defs: &defs,
        default_currency: env.default_currency,
        external: env.external,
        rules: env.rules,
    };
    let outcome = match (existing, env.batch.mode.as_str()) {
        (Some(d), "skip") => return Ok(Outcome::Skipped(format!("matches the deal {}", d.name))),
        (Some(d), "update") => {
            let before =
                serde_json::to_string(&d).map_err(|e| AppError::Internal(e.to_string()))?;
            let row = deals::update(
                conn,
                &w,
                &d.id,
                &body,
                crate::domain::custom_fields::service::Mode::Merge,
                None,
            )?;
            if row.version != d.version {
                log_change(conn, env, seq, "opportunity", &row.id, Some(before))?;
            }
            Outcome::Updated(row.id)
        }
        _ => {
            let row = deals::create(conn, &w, &body)?;
            log_change(conn, env, seq, "opportunity", &row.id, None)?;
            Outcome::Created(row.id)
        }
    };
    if let (Some(x), Outcome::Created(id) | Outcome::Updated(id)) = (external_id, &outcome) {
        remember_ref(conn, env, "opportunity", x, id)?;
    }
    Ok(outcome)
}

/// Undoes a finished batch: records it created are removed, records it updated get their
/// prior state back (version included), ids it learnt are forgotten. All or nothing.
pub fn revert(conn: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<BatchRow> {
    use crate::domain::pipeline::{rollup, store as deal_store};
    crate::db::long_transaction(conn, |c| {
        let batch = get(c, &ctx.org_id, id)?;
        if !matches!(batch.status.as_str(), "done" | "failed") {
            return Err(AppError::Conflict(match batch.status.as_str() {
                "reverted" => "This import was already reverted.".to_string(),
                _ => "Only a finished import can be reverted.".to_string(),
            }));
        }
        // A later import that touched the same records would be silently undone too.
        // (In pieces: a large batch touches more records than one statement may bind.)
        let touched: Vec<String> = import_changes::table
            .filter(import_changes::batch_id.eq(&batch.id))
            .select(import_changes::record_id)
            .load(c)?;
        let later_batches: Vec<String> = import_batches::table
            .filter(import_batches::organization_id.eq(&ctx.org_id))
            .filter(import_batches::created_at.gt(batch.created_at))
            .filter(import_batches::status.ne("reverted"))
            .select(import_batches::id)
            .load(c)?;
        let mut later: i64 = 0;
        if !later_batches.is_empty() {
            for part in touched.chunks(5000) {
                later += import_changes::table
                    .filter(import_changes::batch_id.eq_any(&later_batches))
                    .filter(import_changes::record_id.eq_any(part))
                    .count()
                    .get_result::<i64>(c)?;
            }
        }
        if later > 0 {
            return Err(AppError::Conflict(
                "A later import changed the same records; revert that one first.".into(),
            ));
        }
        let changes: Vec<(String, String, String, Option<String>)> = import_changes::table
            .filter(import_changes::batch_id.eq(&batch.id))
            .order(import_changes::seq.desc())
            .select((
                import_changes::entity,
                import_changes::record_id,
                import_changes::action,
                import_changes::before,
            ))
            .load(c)?;
        // Deals first (they hang off clients), newest change first.
        let mut ordered: Vec<&(String, String, String, Option<String>)> =
            changes.iter().filter(|x| x.0 == "opportunity").collect();
        ordered.extend(changes.iter().filter(|x| x.0 == "client"));
        for (entity, record, action, before) in ordered {
            match (entity.as_str(), action.as_str()) {
                ("opportunity", _) => {
                    let current = deal_store::find_opportunity(c, &ctx.org_id, record)?;
                    if let Some(cur) = &current {
                        rollup::apply(c, Some(cur), None)?;
                    }
                    match before
                        .as_deref()
                        .map(serde_json::from_str::<OpportunityRow>)
                    {
                        Some(Ok(old)) => {
                            if let Some(cur) = &current {
                                deal_store::replace_opportunity(c, &old, cur.version)?;
                                diesel::update(
                                    opportunities::table.filter(opportunities::id.eq(&old.id)),
                                )
                                .set((
                                    opportunities::version.eq(old.version),
                                    opportunities::updated_at.eq(old.updated_at),
                                ))
                                .execute(c)?;
                                rollup::apply(c, None, Some(&old))?;
                            }
                        }
                        Some(Err(e)) => {
                            return Err(AppError::Internal(format!("import snapshot: {e}")))
                        }
                        None => {
                            diesel::delete(
                                opportunities::table.filter(opportunities::id.eq(record)),
                            )
                            .execute(c)?;
                        }
                    }
                    crate::domain::outbox::touch(c, &ctx.org_id, "opportunity", record)?;
                }
                _ => {
                    match before.as_deref().map(serde_json::from_str::<ClientRow>) {
                        Some(Ok(old)) => {
                            if let Some(cur) =
                                crate::domain::clients::store::find(c, &ctx.org_id, record)?
                            {
                                crate::domain::clients::store::replace(c, &old, cur.version)?;
                                diesel::update(clients::table.filter(clients::id.eq(&old.id)))
                                    .set((
                                        clients::version.eq(old.version),
                                        clients::updated_at.eq(old.updated_at),
                                    ))
                                    .execute(c)?;
                            }
                        }
                        Some(Err(e)) => {
                            return Err(AppError::Internal(format!("import snapshot: {e}")))
                        }
                        None => {
                            // Deals of other batches or people on this client go with it.
                            let deals: Vec<OpportunityRow> = opportunities::table
                                .filter(opportunities::client_id.eq(record))
                                .select(OpportunityRow::as_select())
                                .load(c)?;
                            for d in &deals {
                                rollup::apply(c, Some(d), None)?;
                            }
                            diesel::update(clients::table.filter(clients::employer_id.eq(record)))
                                .set(clients::employer_id.eq(None::<String>))
                                .execute(c)?;
                            diesel::delete(clients::table.filter(clients::id.eq(record)))
                                .execute(c)?;
                        }
                    }
                    crate::domain::outbox::touch_client(c, &ctx.org_id, record)?;
                }
            }
        }
        diesel::delete(external_refs::table.filter(external_refs::batch_id.eq(&batch.id)))
            .execute(c)?;
        diesel::update(import_batches::table.filter(import_batches::id.eq(&batch.id)))
            .set((
                import_batches::status.eq("reverted"),
                import_batches::updated_at.eq(now()),
            ))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "import.revert",
            "import",
            Some(&batch.id),
            json!({"changes": changes.len()}),
        )?;
        get(c, &ctx.org_id, id)
    })
}

/// Batches waiting for or in the middle of their run, oldest first (what a restarted worker
/// picks up).
pub fn pending(conn: &mut DbConn) -> AppResult<Vec<BatchRow>> {
    Ok(import_batches::table
        .filter(import_batches::status.eq_any(["queued", "running"]))
        .order(import_batches::created_at.asc())
        .limit(20)
        .select(BatchRow::as_select())
        .load(conn)?)
}

/// Marks a batch failed (a problem with the batch itself, not with a row); what it did so
/// far stays and can be reverted.
pub fn fail(conn: &mut DbConn, org_id: &str, id: &str, why: &str) -> AppResult<()> {
    let batch = get(conn, org_id, id)?;
    let mut errors: Vec<Value> = serde_json::from_str(&batch.errors).unwrap_or_default();
    errors.push(json!({"row": null, "message": why}));
    diesel::update(import_batches::table.filter(import_batches::id.eq(id)))
        .set((
            import_batches::status.eq("failed"),
            import_batches::errors.eq(Value::Array(errors).to_string()),
            import_batches::finished_at.eq(Some(now())),
            import_batches::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The file's column names with the first non-empty value of each (for the mapping step).
pub fn columns(data_dir: &std::path::Path, batch: &BatchRow) -> AppResult<Vec<(String, String)>> {
    let gone = |e: std::io::Error| {
        AppError::Conflict(format!(
            "The uploaded file of this import is gone ({e}); upload it again."
        ))
    };
    let file = std::fs::File::open(file_path(data_dir, &batch.id)).map_err(gone)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| AppError::Internal(format!("import copy: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let sample: Vec<csv::StringRecord> = reader.records().take(50).filter_map(Result::ok).collect();
    Ok(headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let v = sample
                .iter()
                .filter_map(|r| r.get(i))
                .find(|v| !v.trim().is_empty())
                .unwrap_or_default();
            (h.clone(), v.chars().take(60).collect())
        })
        .collect())
}
