//! Exports, served alike by the API and the console: the client list (with the list's
//! filters), deals and interactions, as CSV, XLSX or JSON, streamed a page at a time so a
//! million rows go out in constant memory. Needs `export` on the resource; every export is
//! audited. Cells a spreadsheet would run as a formula are neutralised with a leading
//! apostrophe.

use std::collections::{BTreeSet, HashMap};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

use crate::auth::Actor;
use crate::db;
use crate::domain::audit;
use crate::domain::clients::query;
use crate::domain::clients::service::Access;
use crate::domain::custom_fields;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::{client_access, query_pairs, record_access};

#[derive(utoipa::OpenApi)]
#[openapi(paths(api_clients, api_deals, api_interactions, api_send_recipients))]
pub struct Doc;

/// The client export as JSON.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // why: describes the streamed JSON export for /api/openapi.json.
pub struct ClientExport {
    /// Each client as `GET /api/clients/{id}` shows it, with `tags` as a list of names,
    /// and beside the ids `ownerName` and `ownerEmail` (the `assignedTo` member) and
    /// `employer` (the `employerId` company's name); null when there is none.
    #[schema(value_type = Vec<Object>)]
    data: Vec<Value>,
}

/// The deal export as JSON.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // why: describes the streamed JSON export for /api/openapi.json.
pub struct DealExport {
    data: Vec<DealExportRow>,
}

/// A deal with its client, pipeline, stage and owner by name.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the streamed JSON export for /api/openapi.json.
pub struct DealExportRow {
    id: String,
    name: String,
    /// A decimal string (`1250.00`).
    value: String,
    currency: String,
    probability: i32,
    expected_close_date: Option<chrono::NaiveDate>,
    /// open, won or lost.
    status: String,
    assigned_to: Option<String>,
    client_id: String,
    /// The client's name.
    client: String,
    /// The pipeline's name.
    pipeline: String,
    /// The stage's name.
    stage: String,
    /// The `assignedTo` member's name.
    owner_name: Option<String>,
    /// The `assignedTo` member's e-mail.
    owner_email: Option<String>,
}

/// The interaction export as JSON.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // why: describes the streamed JSON export for /api/openapi.json.
pub struct InteractionExport {
    data: Vec<InteractionExportRow>,
}

/// An interaction with its client's and its author's names.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the streamed JSON export for /api/openapi.json.
pub struct InteractionExportRow {
    id: String,
    client_id: String,
    /// The client's name.
    client: String,
    /// call, meeting, email, sms, note or task.
    #[serde(rename = "type")]
    kind: String,
    direction: Option<String>,
    status: String,
    occurred_at: String,
    outcome: Option<String>,
    duration_minutes: Option<i32>,
    subject: String,
    content: String,
    user_id: Option<String>,
    /// The `userId` member's name.
    user_name: Option<String>,
    /// The `userId` member's e-mail.
    user_email: Option<String>,
}

/// A send's recipients as JSON.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // why: describes the streamed JSON export for /api/openapi.json.
pub struct SendRecipientExport {
    data: Vec<SendRecipientExportRow>,
}

/// A recipient of a send and what became of the message.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the streamed JSON export for /api/openapi.json.
pub struct SendRecipientExportRow {
    id: String,
    client_id: String,
    /// The client's name.
    client: String,
    address: String,
    /// delivered, failed, refused, bounced, uncertain, excluded, waiting, cancelled, …
    state: String,
    /// Why it was excluded or failed.
    reason: Option<String>,
    opened_at: Option<String>,
    clicked_at: Option<String>,
    unsubscribed_at: Option<String>,
    bounced_at: Option<String>,
}

/// Rows read per page.
const PAGE: i64 = 1000;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Xlsx,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Xlsx => "xlsx",
        }
    }
}

fn format_of(pairs: &[(String, String)], path: &str) -> AppResult<Format> {
    let asked = pairs
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str());
    match asked {
        Some("csv") => Ok(Format::Csv),
        Some("json") => Ok(Format::Json),
        Some("xlsx") => Ok(Format::Xlsx),
        None if path.ends_with(".json") => Ok(Format::Json),
        None if path.ends_with(".xlsx") => Ok(Format::Xlsx),
        None => Ok(Format::Csv),
        Some(_) => Err(AppError::invalid("format", "Choose csv, xlsx or json.")),
    }
}

/// The people a page names, by id: `(name, e-mail)`. One query a page (a page names a
/// handful of owners a thousand times), so memory stays bounded by the page.
fn people_of<'a>(
    c: &mut db::DbConn,
    ids: impl IntoIterator<Item = Option<&'a str>>,
) -> AppResult<HashMap<String, (String, String)>> {
    use crate::db::schema::users;
    use diesel::prelude::*;
    let ids: BTreeSet<&str> = ids.into_iter().flatten().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::name, users::email))
        .load::<(String, String, String)>(c)?
        .into_iter()
        .map(|(id, name, email)| (id, (name, email)))
        .collect())
}

/// The employers a page of clients names, by id: their display names (trashed ones too:
/// the export says what the id points at). One query a page.
fn employers_of<'a>(
    c: &mut db::DbConn,
    org: &str,
    ids: impl IntoIterator<Item = Option<&'a str>>,
) -> AppResult<HashMap<String, String>> {
    use crate::db::schema::clients;
    use diesel::prelude::*;
    let ids: BTreeSet<&str> = ids.into_iter().flatten().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(clients::table
        .filter(clients::organization_id.eq(org))
        .filter(clients::id.eq_any(ids))
        .select((clients::id, clients::display_name))
        .load::<(String, String)>(c)?
        .into_iter()
        .collect())
}

/// A cell that would start a formula in a spreadsheet gets a leading apostrophe.
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

fn csv_line(cells: &[String]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = w.write_record(cells.iter().map(|c| neutralise(c)));
    w.into_inner().unwrap_or_default()
}

/// The response for a streamed export: its type, a dated file name, and the body.
fn streamed<S>(format: Format, name: &str, body: S) -> HttpResponse
where
    S: futures_util::Stream<Item = Result<web::Bytes, AppError>> + 'static,
{
    let ctype = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Json => "application/json",
        Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    };
    let ext = format.name();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, ctype))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{name}-{}.{ext}\"",
                chrono::Utc::now().format("%Y-%m-%d")
            ),
        ))
        .streaming(body)
}

/// An exported row: its key (rows come in key order), its CSV cells and its JSON object.
type ExportRow = (String, Vec<String>, Value);

/// The next page of spreadsheet rows (the first page starts with the header), or `None`.
pub type NextRows = Box<dyn FnMut(&mut db::DbConn) -> AppResult<Option<Vec<Vec<String>>>> + Send>;

/// Hands the workbook's bytes to the response as they are written, 64 KB at a time.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<web::Bytes>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = web::Bytes::from(std::mem::take(&mut self.buf));
        // A closed channel means the reader went away: stop writing.
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "download cancelled"))
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

/// A cell that is a plain decimal number (no leading zeros, so postal codes and phone
/// numbers stay text) is written as a number a spreadsheet can sum.
fn as_number(cell: &str) -> Option<f64> {
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !int.is_empty()
        && int.len() <= 12
        && int.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'))
        && frac.len() <= 6
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && frac.is_empty());
    plain.then(|| cell.parse().ok()).flatten()
}

fn write_workbook(
    pool: &db::Pool,
    sheet: &str,
    next: &mut NextRows,
    out: ChannelWriter,
) -> AppResult<()> {
    use rust_xlsxwriter::{Format as Style, Workbook};
    let fail =
        |e: rust_xlsxwriter::XlsxError| AppError::Internal(format!("writing the workbook: {e}"));
    let mut book = Workbook::new();
    let bold = Style::new().set_bold();
    let ws = book.add_worksheet_with_constant_memory().map_err(fail)?;
    ws.set_name(sheet).map_err(fail)?;
    let mut row: u32 = 0;
    loop {
        let page = {
            let mut conn = pool
                .get()
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            next(&mut conn)?
        };
        let Some(rows) = page else { break };
        for cells in rows {
            for (col, cell) in cells.iter().enumerate() {
                let col = col as u16;
                // Cells are typed values, never formulas: nothing to neutralise here.
                if row == 0 {
                    ws.write_string_with_format(row, col, cell, &bold)
                        .map_err(fail)?;
                } else if let Some(n) = as_number(cell) {
                    ws.write_number(row, col, n).map_err(fail)?;
                } else if !cell.is_empty() {
                    ws.write_string(row, col, cell).map_err(fail)?;
                }
            }
            row = row.saturating_add(1);
            if row > 1_048_575 {
                return Err(AppError::BadRequest(
                    "A worksheet holds at most 1,048,576 rows; export CSV instead.".into(),
                ));
            }
        }
    }
    book.save_to_writer(out).map_err(fail)
}

/// An XLSX body: the rows are written on a blocking thread into a constant-memory
/// workbook (spooled to a temporary file), then the zipped workbook streams out.
fn xlsx_body(
    pool: db::Pool,
    sheet: &'static str,
    mut next: NextRows,
) -> impl futures_util::Stream<Item = Result<web::Bytes, AppError>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<web::Bytes>(8);
    actix_web::rt::task::spawn_blocking(move || {
        let out = ChannelWriter {
            tx,
            buf: Vec::with_capacity(64 * 1024),
        };
        if let Err(e) = write_workbook(&pool, sheet, &mut next, out) {
            // The status is already sent: the body ends early and the file does not open.
            tracing::warn!(error = %e, "xlsx export stopped");
        }
    });
    stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, AppError>(b), rx))
    })
}

/// A CSV or JSON body read a page at a time by keyset: `load(after)` answers up to `PAGE`
/// rows whose key follows `after`. A failing page ends the body early (a truncated file,
/// not a silently short one: CSV lacks its last lines, JSON does not parse).
fn keyset_body<F>(
    pool: db::Pool,
    format: Format,
    header: &'static [&'static str],
    load: F,
) -> stream::LocalBoxStream<'static, Result<web::Bytes, AppError>>
where
    F: Fn(&mut db::DbConn, String) -> AppResult<Vec<ExportRow>> + Clone + Send + 'static,
{
    if format == Format::Xlsx {
        let mut after: Option<String> = Some(String::new());
        let mut first = true;
        let next: NextRows = Box::new(move |c| {
            let Some(from) = after.take() else {
                return Ok(None);
            };
            let rows = load(c, from)?;
            if rows.len() as i64 == PAGE {
                after = rows.last().map(|r| r.0.clone());
            }
            let mut out: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
            if std::mem::take(&mut first) {
                out.push(header.iter().map(|h| h.to_string()).collect());
            }
            out.extend(rows.into_iter().map(|r| r.1));
            Ok(Some(out))
        });
        return xlsx_body(pool, "Export", next).boxed_local();
    }
    stream::unfold(Some((String::new(), true)), move |s| {
        let (pool, load) = (pool.clone(), load.clone());
        async move {
            let (after, first) = s?;
            let rows = match db::run(&pool, move |c| load(c, after)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "export stopped");
                    return None;
                }
            };
            if rows.is_empty() && !first {
                // The previous page was full: close the JSON array.
                return (format == Format::Json)
                    .then(|| (Ok(web::Bytes::from_static(b"]}")), None));
            }
            let more = rows.len() as i64 == PAGE;
            let mut out = Vec::new();
            match format {
                Format::Csv | Format::Xlsx => {
                    if first {
                        out.extend(csv_line(
                            &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
                        ));
                    }
                    for (_, cells, _) in &rows {
                        out.extend(csv_line(cells));
                    }
                }
                Format::Json => {
                    if first {
                        out.extend(b"{\"data\":[");
                    }
                    for (i, (_, _, v)) in rows.iter().enumerate() {
                        if !(first && i == 0) {
                            out.push(b',');
                        }
                        out.extend(v.to_string().into_bytes());
                    }
                    if !more {
                        out.extend(b"]}");
                    }
                }
            }
            let next = if more {
                rows.last().map(|r| (r.0.clone(), false))
            } else {
                None
            };
            Some((Ok(web::Bytes::from(out)), next))
        }
    })
    .boxed_local()
}

struct ClientCursor {
    params: query::ListParams,
    defs: Vec<custom_fields::FieldRow>,
    access: Access,
    org: String,
    first: bool,
    done: bool,
}

/// One page of clients: CSV or JSON bytes, or spreadsheet rows.
enum ClientPage {
    Bytes(Vec<u8>),
    Rows(Vec<Vec<String>>),
}

/// One page of clients; `None` when nothing is left.
fn client_page(
    c: &mut db::DbConn,
    s: &mut ClientCursor,
    format: Format,
) -> AppResult<Option<ClientPage>> {
    if s.done {
        return Ok(None);
    }
    let mut params = s.params.clone();
    params.limit = PAGE + 1;
    let mut rows = query::list(c, &s.org, &params)?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let custom: Vec<&custom_fields::FieldRow> = s
        .defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || s.access.read_sensitive))
        .collect();
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut tags: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (client, t) in crate::domain::clients::store::tags_of(c, &ids)? {
        tags.entry(client).or_default().push(t.name);
    }
    let owners = people_of(c, rows.iter().map(|r| r.assigned_to.as_deref()))?;
    let employers = employers_of(c, &s.org, rows.iter().map(|r| r.employer_id.as_deref()))?;
    let mut out = Vec::new();
    let mut lines: Vec<Vec<String>> = Vec::new();
    match format {
        Format::Csv | Format::Xlsx => {
            if s.first {
                let mut head: Vec<String> = [
                    "id",
                    "type",
                    "firstName",
                    "lastName",
                    "companyName",
                    "displayName",
                    "email",
                    "phone",
                    "street",
                    "city",
                    "region",
                    "postalCode",
                    "country",
                    "website",
                    "industry",
                    "source",
                    "status",
                    "assignedTo",
                    "employerId",
                    "tags",
                    "createdAt",
                    "updatedAt",
                    // why: added after the columns integrators read by position; the
                    // custom columns follow, and they vary by caller already.
                    "ownerName",
                    "ownerEmail",
                    "employer",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                head.extend(custom.iter().map(|d| format!("custom.{}", d.field_key)));
                lines.push(head);
            }
            for r in &rows {
                let o = |v: &Option<String>| v.clone().unwrap_or_default();
                let stored = r.custom_map();
                let owner = r.assigned_to.as_deref().and_then(|id| owners.get(id));
                let mut cells = vec![
                    r.id.clone(),
                    r.kind.clone(),
                    o(&r.first_name),
                    o(&r.last_name),
                    o(&r.company_name),
                    r.display_name.clone(),
                    o(&r.email),
                    o(&r.phone),
                    o(&r.street),
                    o(&r.city),
                    o(&r.region),
                    o(&r.postal_code),
                    o(&r.country),
                    o(&r.website),
                    o(&r.industry),
                    o(&r.source),
                    r.status.clone(),
                    o(&r.assigned_to),
                    o(&r.employer_id),
                    tags.get(&r.id).map(|t| t.join("; ")).unwrap_or_default(),
                    r.created_at.and_utc().to_rfc3339(),
                    r.updated_at.and_utc().to_rfc3339(),
                    owner.map(|o| o.0.clone()).unwrap_or_default(),
                    owner.map(|o| o.1.clone()).unwrap_or_default(),
                    r.employer_id
                        .as_ref()
                        .and_then(|e| employers.get(e))
                        .cloned()
                        .unwrap_or_default(),
                ];
                for d in &custom {
                    cells.push(match stored.get(&d.field_key) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    });
                }
                lines.push(cells);
            }
            if format == Format::Csv {
                for line in &lines {
                    out.extend(csv_line(line));
                }
            }
        }
        Format::Json => {
            if s.first {
                out.extend(b"{\"data\":[");
            }
            for (i, r) in rows.iter().enumerate() {
                if !(s.first && i == 0) {
                    out.push(b',');
                }
                let mut v =
                    crate::ops::clients::ClientView::new(r.clone(), Vec::new(), &s.defs, &s.access)
                        .to_json();
                v["tags"] = json!(tags.get(&r.id).cloned().unwrap_or_default());
                let owner = r.assigned_to.as_deref().and_then(|id| owners.get(id));
                v["ownerName"] = json!(owner.map(|o| &o.0));
                v["ownerEmail"] = json!(owner.map(|o| &o.1));
                v["employer"] = json!(r.employer_id.as_ref().and_then(|e| employers.get(e)));
                out.extend(v.to_string().into_bytes());
            }
            if !more {
                out.extend(b"]}");
            }
        }
    }
    s.first = false;
    match (more, rows.last()) {
        (true, Some(last)) => s.params.after = Some(query::cursor_for(c, last, &s.params.sort)?),
        _ => s.done = true,
    }
    Ok(Some(if format == Format::Xlsx {
        ClientPage::Rows(lines)
    } else {
        ClientPage::Bytes(out)
    }))
}

/// `GET /api/clients/export?format=csv|json&filter[...]…` and `/clients/export.csv` in the
/// console.
pub async fn clients(
    actor: &Actor,
    state: &AppState,
    req: &HttpRequest,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    actor.require("client", "export").await?;
    let access = client_access(actor).await?;
    let mut pairs = query_pairs(req)?;
    // Exporting a segment's members is the segment's export right as well.
    if pairs.iter().any(|(k, _)| k == "filter[segment]") {
        actor.require("segment", "export").await?;
    }
    let format = format_of(&pairs, req.path())?;
    pairs.retain(|(k, _)| !matches!(k.as_str(), "format" | "limit" | "cursor"));
    crate::web::resolve_me(&mut pairs, &actor.user_id);
    let org = actor.org_id().to_string();
    let ctx = actor.audit();
    let (params, defs) = {
        let (org, access, pairs) = (org.clone(), access.clone(), pairs.clone());
        db::run(&state.pool, move |c| {
            let defs = custom_fields::store::list(c, &org, "client", false)?;
            let mut params = query::parse_params(c, &org, &defs, &pairs)?;
            if !access.oversee {
                params.only_assigned_to = Some(access.user_id.clone());
            }
            let sensitive = access.read_sensitive && defs.iter().any(|d| d.sensitive);
            audit::record(
                c,
                &ctx,
                "client.export",
                "client",
                None,
                json!({"format": format.name(), "query": pairs, "sensitive": sensitive}),
            )?;
            Ok((params, defs))
        })
        .await?
    };
    let cursor = ClientCursor {
        params,
        defs,
        access,
        org,
        first: true,
        done: false,
    };
    let pool = state.pool.clone();
    if format == Format::Xlsx {
        let mut cursor = cursor;
        let next: NextRows = Box::new(move |c| {
            Ok(match client_page(c, &mut cursor, format)? {
                Some(ClientPage::Rows(rows)) => Some(rows),
                _ => None,
            })
        });
        return Ok(streamed(
            format,
            "clients",
            xlsx_body(pool, "Clients", next),
        ));
    }
    let body = stream::unfold(Some(cursor), move |s| {
        let pool = pool.clone();
        async move {
            let mut s = s?;
            let result = db::run(&pool, move |c| {
                let page = client_page(c, &mut s, format)?;
                Ok((page, s))
            })
            .await;
            match result {
                Ok((Some(ClientPage::Bytes(bytes)), s)) => {
                    Some((Ok::<_, AppError>(web::Bytes::from(bytes)), Some(s)))
                }
                Ok((_, _)) => None,
                // The status is already sent: end the body early (a truncated file, not a
                // silently short one: CSV lacks the last lines, JSON does not parse).
                Err(e) => {
                    tracing::warn!(error = %e, "export stopped");
                    None
                }
            }
        }
    });
    Ok(streamed(format, "clients", body))
}

/// Exports the clients the caller sees as CSV, XLSX or JSON (`client:read` and `client:export`).
///
/// Takes the client list's search, filters and order; every export is audited. Custom
/// fields are columns `custom.<key>` (sensitive ones only with the right to read them),
/// after `ownerName`, `ownerEmail` and `employer`, which name the `assignedTo` and
/// `employerId` ids (an `ownerEmail` column assigns the owner again on import);
/// cells a spreadsheet would run as a formula get a leading apostrophe. `limit` and
/// `cursor` are ignored: the export holds every matching client.
#[utoipa::path(get, path = "/api/clients/export", tag = "Exports",
    params(
        ("format" = Option<String>, Query, description = "csv (default), xlsx or json."),
        ("q" = Option<String>, Query, description = "Search, as the client list."),
        ("sort" = Option<String>, Query, description = "Order, as the client list (`-updatedAt`)."),
        ("filter[status]" = Option<String>, Query, description = "Only clients with these statuses (comma-separated); every other `filter[…]` of the client list works too."),
    ),
    responses((status = 200, description = "The clients, as a dated attachment.", content(
        (String = "text/csv"),
        (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (ClientExport = "application/json"),
    ))))]
pub async fn api_clients(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    clients(&actor, &state, &req).await
}

/// `GET /api/opportunities/export?format=csv|json[&filter[status]=open]`: deals the actor
/// sees, with their client, stage and pipeline names.
pub async fn deals(actor: &Actor, state: &AppState, req: &HttpRequest) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    actor.require("opportunity", "export").await?;
    let access = record_access(actor, "opportunity").await?;
    let pairs = query_pairs(req)?;
    let format = format_of(&pairs, req.path())?;
    let status = pairs
        .iter()
        .find(|(k, _)| k == "filter[status]")
        .map(|(_, v)| v.clone());
    if let Some(s) = &status {
        if !["open", "won", "lost"].contains(&s.as_str()) {
            return Err(AppError::invalid(
                "filter[status]",
                "Use open, won or lost.",
            ));
        }
    }
    let org = actor.org_id().to_string();
    let ctx = actor.audit();
    {
        let status = status.clone();
        db::run(&state.pool, move |c| {
            audit::record(
                c,
                &ctx,
                "opportunity.export",
                "opportunity",
                None,
                json!({"format": format.name(), "status": status}),
            )?;
            Ok(())
        })
        .await?;
    }
    let load = move |c: &mut db::DbConn, after: String| -> AppResult<Vec<ExportRow>> {
        let owner = (!access.oversee).then_some(access.user_id.as_str());
        let rows = crate::domain::pipeline::store::export_page(
            c,
            &org,
            owner,
            status.as_deref(),
            &after,
            PAGE,
        )?;
        let owners = people_of(c, rows.iter().map(|r| r.7.as_deref()))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let owner = r.7.as_deref().and_then(|id| owners.get(id));
                let value = rust_decimal::Decimal::new(r.2, 2).to_string();
                let close = r.5.map(|d| d.to_string()).unwrap_or_default();
                let cells = vec![
                    r.0.clone(),
                    r.1.clone(),
                    value.clone(),
                    r.3.clone(),
                    r.4.to_string(),
                    close,
                    r.6.clone(),
                    r.7.clone().unwrap_or_default(),
                    r.8.clone(),
                    r.9.clone(),
                    r.10.clone(),
                    r.11.clone(),
                    owner.map(|o| o.0.clone()).unwrap_or_default(),
                    owner.map(|o| o.1.clone()).unwrap_or_default(),
                ];
                let json = json!({
                    "id": r.0, "name": r.1, "value": value, "currency": r.3,
                    "probability": r.4, "expectedCloseDate": r.5, "status": r.6,
                    "assignedTo": r.7, "clientId": r.8, "client": r.9, "pipeline": r.10, "stage": r.11,
                    "ownerName": owner.map(|o| &o.0), "ownerEmail": owner.map(|o| &o.1),
                });
                (r.0, cells, json)
            })
            .collect())
    };
    let header = &[
        "id",
        "name",
        "value",
        "currency",
        "probability",
        "expectedCloseDate",
        "status",
        "assignedTo",
        "clientId",
        "client",
        "pipeline",
        "stage",
        "ownerName",
        "ownerEmail",
    ];
    Ok(streamed(
        format,
        "deals",
        keyset_body(state.pool.clone(), format, header, load),
    ))
}

/// Exports the deals the caller sees as CSV, XLSX or JSON (`opportunity:read` and `opportunity:export`).
///
/// Each deal comes with its client, pipeline and stage names, and its owner's name and
/// e-mail (`ownerName`, `ownerEmail`, the last columns); every export is audited.
#[utoipa::path(get, path = "/api/opportunities/export", tag = "Exports",
    params(
        ("format" = Option<String>, Query, description = "csv (default), xlsx or json."),
        ("filter[status]" = Option<String>, Query, description = "Only open, won or lost deals."),
    ),
    responses((status = 200, description = "The deals, as a dated attachment.", content(
        (String = "text/csv"),
        (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (DealExport = "application/json"),
    ))))]
pub async fn api_deals(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    deals(&actor, &state, &req).await
}

/// `GET /api/interactions/export?format=csv|json[&filter[type]=call][&filter[clientId]=…]
/// [&filter[from]=2026-01-01][&filter[to]=2026-12-31]`: interactions on clients the actor
/// sees, oldest first.
pub async fn interactions(
    actor: &Actor,
    state: &AppState,
    req: &HttpRequest,
) -> AppResult<HttpResponse> {
    actor.require("interaction", "read").await?;
    actor.require("interaction", "export").await?;
    let access = client_access(actor).await?;
    let pairs = query_pairs(req)?;
    let format = format_of(&pairs, req.path())?;
    let filter = crate::web::api::interactions::parse_filter(&pairs)?;
    let client = pairs
        .iter()
        .find(|(k, _)| k == "filter[clientId]")
        .map(|(_, v)| v.clone());
    let org = actor.org_id().to_string();
    let ctx = actor.audit();
    {
        let q: Vec<(String, String)> = pairs.clone();
        let (one, reach) = (client.clone(), access.clone());
        db::run(&state.pool, move |c| {
            // One client's export is its timeline: a client out of reach is not found
            // (before any byte is sent, not halfway through the stream).
            if let Some(id) = &one {
                crate::domain::clients::service::get(c, &ctx.org_id, &reach, id)?;
            }
            audit::record(
                c,
                &ctx,
                "interaction.export",
                "interaction",
                None,
                json!({"format": format.name(), "query": q}),
            )?;
            Ok(())
        })
        .await?;
    }
    let load = move |c: &mut db::DbConn, after: String| -> AppResult<Vec<ExportRow>> {
        let rows = crate::domain::interactions::export_page(
            c,
            &org,
            &access,
            &filter,
            client.as_deref(),
            &after,
            PAGE,
        )?;
        let authors = people_of(c, rows.iter().map(|r| r.11.as_deref()))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let author = r.11.as_deref().and_then(|id| authors.get(id));
                let at = r.6.and_utc().to_rfc3339();
                let cells = vec![
                    r.0.clone(),
                    r.1.clone(),
                    r.2.clone(),
                    r.3.clone(),
                    r.4.clone().unwrap_or_default(),
                    r.5.clone(),
                    at.clone(),
                    r.7.clone().unwrap_or_default(),
                    r.8.map(|d| d.to_string()).unwrap_or_default(),
                    r.9.clone(),
                    r.10.clone(),
                    r.11.clone().unwrap_or_default(),
                    author.map(|a| a.0.clone()).unwrap_or_default(),
                    author.map(|a| a.1.clone()).unwrap_or_default(),
                ];
                let json = json!({
                    "id": r.0, "clientId": r.1, "client": r.2, "type": r.3,
                    "direction": r.4, "status": r.5, "occurredAt": at, "outcome": r.7,
                    "durationMinutes": r.8, "subject": r.9, "content": r.10, "userId": r.11,
                    "userName": author.map(|a| &a.0), "userEmail": author.map(|a| &a.1),
                });
                (r.0, cells, json)
            })
            .collect())
    };
    let header = &[
        "id",
        "clientId",
        "client",
        "type",
        "direction",
        "status",
        "occurredAt",
        "outcome",
        "durationMinutes",
        "subject",
        "content",
        "userId",
        "userName",
        "userEmail",
    ];
    Ok(streamed(
        format,
        "interactions",
        keyset_body(state.pool.clone(), format, header, load),
    ))
}

/// Exports the interactions on clients the caller sees as CSV, XLSX or JSON (`interaction:read` and `interaction:export`).
///
/// Oldest first, each with its author's name and e-mail (`userName`, `userEmail`, the
/// last columns); every export is audited.
#[utoipa::path(get, path = "/api/interactions/export", tag = "Exports",
    params(
        ("format" = Option<String>, Query, description = "csv (default), xlsx or json."),
        ("filter[type]" = Option<String>, Query, description = "Only call, meeting, email, sms, note, task or event."),
        ("filter[clientId]" = Option<String>, Query, description = "Only this client's timeline."),
        ("filter[owner]" = Option<String>, Query, description = "Only those of this user."),
        ("filter[from]" = Option<String>, Query, description = "From this day (`2026-01-01`) or time on."),
        ("filter[to]" = Option<String>, Query, description = "Up to this day (inclusive) or time."),
    ),
    responses((status = 200, description = "The interactions, as a dated attachment.", content(
        (String = "text/csv"),
        (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (InteractionExport = "application/json"),
    ))))]
pub async fn api_interactions(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    interactions(&actor, &state, &req).await
}

/// `GET /api/sends/{id}/export?format=csv|xlsx|json[&state=opened]` (and the console's
/// `/mail/sends/{id}/export`): a send's recipients with what became of each. Addresses leave
/// Rapport with it, so it takes the right to export clients as well.
pub async fn send_recipients(
    actor: &Actor,
    state: &AppState,
    req: &HttpRequest,
    id: String,
) -> AppResult<HttpResponse> {
    actor.require("send", "read").await?;
    actor.require("client", "export").await?;
    let pairs = query_pairs(req)?;
    let format = format_of(&pairs, req.path())?;
    let only = pairs
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty() && v != "recipients");
    let org = actor.org_id().to_string();
    let ctx = actor.audit();
    {
        let (id, only) = (id.clone(), only.clone());
        db::run(&state.pool, move |c| {
            // A send of another organization, or a state that does not exist, is answered
            // before any byte is sent.
            crate::domain::sends::recipients(c, &ctx.org_id, &id, only.as_deref(), None, 1)?;
            audit::record(
                c,
                &ctx,
                "send.export",
                "send",
                Some(&id),
                json!({"format": format.name(), "state": only}),
            )?;
            Ok(())
        })
        .await?;
    }
    let load = move |c: &mut db::DbConn, after: String| -> AppResult<Vec<ExportRow>> {
        let after = Some(after).filter(|a| !a.is_empty());
        let rows = crate::domain::sends::recipients(
            c,
            &org,
            &id,
            only.as_deref(),
            after.as_deref(),
            PAGE,
        )?;
        Ok(rows
            .into_iter()
            .map(|v| {
                let f = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                let cells = vec![
                    f("clientId"),
                    f("client"),
                    f("address"),
                    f("state"),
                    f("reason"),
                    f("openedAt"),
                    f("clickedAt"),
                    f("bouncedAt"),
                    f("unsubscribedAt"),
                ];
                (f("id"), cells, v)
            })
            .collect())
    };
    let header = &[
        "clientId",
        "client",
        "address",
        "state",
        "reason",
        "openedAt",
        "clickedAt",
        "bouncedAt",
        "unsubscribedAt",
    ];
    Ok(streamed(
        format,
        "send-recipients",
        keyset_body(state.pool.clone(), format, header, load),
    ))
}

/// Exports a send's recipients as CSV, XLSX or JSON (`send:read` and `client:export`).
///
/// Each recipient comes with what became of the message; every export is audited.
#[utoipa::path(get, path = "/api/sends/{id}/export", tag = "Exports",
    params(
        ("id" = String, Path, description = "The send's id."),
        ("format" = Option<String>, Query, description = "csv (default), xlsx or json."),
        ("state" = Option<String>, Query, description = "Only recipients in this state: delivered, failed, excluded, opened, clicked, bounced, unsubscribed, uncertain, waiting or cancelled."),
    ),
    responses((status = 200, description = "The recipients, as a dated attachment.", content(
        (String = "text/csv"),
        (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (SendRecipientExport = "application/json"),
    ))))]
pub async fn api_send_recipients(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    send_recipients(&actor, &state, &req, id.into_inner()).await
}
