//! Exports: the client list (with the list's filters) and the deals, as CSV or JSON,
//! streamed a page at a time so a million rows go out in constant memory. Needs `export` on
//! the resource; every export is audited. Cells a spreadsheet would run as a formula are
//! neutralised with a leading apostrophe.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::stream;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::auth::Actor;
use crate::db;
use crate::domain::audit;
use crate::domain::clients::query;
use crate::domain::clients::service::Access;
use crate::domain::custom_fields;
use crate::error::{AppError, AppResult};
use crate::web::{client_access, query_pairs, record_access};

/// Rows read per page.
const PAGE: i64 = 1000;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

fn format_of(pairs: &[(String, String)], path: &str) -> AppResult<Format> {
    let asked = pairs
        .iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str());
    match asked {
        Some("csv") => Ok(Format::Csv),
        Some("json") => Ok(Format::Json),
        None if path.ends_with(".json") => Ok(Format::Json),
        None => Ok(Format::Csv),
        Some(_) => Err(AppError::invalid("format", "Choose csv or json.")),
    }
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
    let (ctype, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Json => ("application/json", "json"),
    };
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

/// A CSV or JSON body read a page at a time by keyset: `load(after)` answers up to `PAGE`
/// rows whose key follows `after`. A failing page ends the body early (a truncated file,
/// not a silently short one: CSV lacks its last lines, JSON does not parse).
fn keyset_body<F>(
    pool: db::Pool,
    format: Format,
    header: &'static [&'static str],
    load: F,
) -> impl futures_util::Stream<Item = Result<web::Bytes, AppError>>
where
    F: Fn(&mut db::DbConn, String) -> AppResult<Vec<ExportRow>> + Clone + Send + 'static,
{
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
                Format::Csv => {
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
}

struct ClientCursor {
    params: query::ListParams,
    defs: Vec<custom_fields::FieldRow>,
    access: Access,
    org: String,
    first: bool,
    done: bool,
}

/// One page of clients as output bytes; `None` when nothing is left.
fn client_page(
    c: &mut db::DbConn,
    s: &mut ClientCursor,
    format: Format,
) -> AppResult<Option<Vec<u8>>> {
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
    let mut out = Vec::new();
    match format {
        Format::Csv => {
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
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                head.extend(custom.iter().map(|d| format!("custom.{}", d.field_key)));
                out.extend(csv_line(&head));
            }
            for r in &rows {
                let o = |v: &Option<String>| v.clone().unwrap_or_default();
                let stored = r.custom_map();
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
                ];
                for d in &custom {
                    cells.push(match stored.get(&d.field_key) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                    });
                }
                out.extend(csv_line(&cells));
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
                let t: Vec<crate::domain::clients::TagRow> = Vec::new();
                let mut v = crate::web::api::clients::client_json(r, &t, &s.defs, &s.access);
                v["tags"] = json!(tags.get(&r.id).cloned().unwrap_or_default());
                out.extend(v.to_string().into_bytes());
            }
            if !more {
                out.extend(b"]}");
            }
        }
    }
    s.first = false;
    match (more, rows.last()) {
        (true, Some(last)) => s.params.after = Some(query::cursor_after(last, &s.params.sort)),
        _ => s.done = true,
    }
    Ok(Some(out))
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
                json!({"format": if format == Format::Csv { "csv" } else { "json" }, "query": pairs, "sensitive": sensitive}),
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
                Ok((Some(bytes), s)) => Some((Ok::<_, AppError>(web::Bytes::from(bytes)), Some(s))),
                Ok((None, _)) => None,
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
    use crate::db::schema::{clients, opportunities, pipeline_stages, pipelines};
    use diesel::prelude::*;
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
                json!({"format": if format == Format::Csv { "csv" } else { "json" }, "status": status}),
            )?;
            Ok(())
        })
        .await?;
    }
    let load = move |c: &mut db::DbConn, after: String| -> AppResult<Vec<ExportRow>> {
        let mut q = opportunities::table
            .inner_join(clients::table.on(clients::id.eq(opportunities::client_id)))
            .inner_join(pipeline_stages::table.on(pipeline_stages::id.eq(opportunities::stage_id)))
            .inner_join(pipelines::table.on(pipelines::id.eq(opportunities::pipeline_id)))
            .filter(opportunities::organization_id.eq(&org))
            .filter(opportunities::deleted_at.is_null())
            .filter(opportunities::id.gt(after))
            .order(opportunities::id.asc())
            .limit(PAGE)
            .into_boxed();
        if !access.oversee {
            q = q.filter(opportunities::assigned_to.eq(access.user_id.clone()));
        }
        if let Some(s) = &status {
            q = q.filter(opportunities::status.eq(s.clone()));
        }
        let rows: Vec<DealRow> = q
            .select((
                opportunities::id,
                opportunities::name,
                opportunities::value_cents,
                opportunities::currency,
                opportunities::probability,
                opportunities::expected_close,
                opportunities::status,
                opportunities::assigned_to,
                opportunities::client_id,
                clients::display_name,
                pipelines::name,
                pipeline_stages::name,
            ))
            .load(c)?;
        Ok(rows
            .into_iter()
            .map(|r| {
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
                ];
                let json = json!({
                    "id": r.0, "name": r.1, "value": value, "currency": r.3,
                    "probability": r.4, "expectedCloseDate": r.5, "status": r.6,
                    "assignedTo": r.7, "clientId": r.8, "client": r.9, "pipeline": r.10, "stage": r.11,
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
    ];
    Ok(streamed(
        format,
        "deals",
        keyset_body(state.pool.clone(), format, header, load),
    ))
}

/// id, name, value (cents), currency, probability, close, status, owner, client id, client,
/// pipeline, stage.
type DealRow = (
    String,
    String,
    i64,
    String,
    i32,
    Option<chrono::NaiveDate>,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
);

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
    use crate::db::schema::{clients, interactions};
    use diesel::prelude::*;
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
        db::run(&state.pool, move |c| {
            audit::record(
                c,
                &ctx,
                "interaction.export",
                "interaction",
                None,
                json!({"format": if format == Format::Csv { "csv" } else { "json" }, "query": q}),
            )?;
            Ok(())
        })
        .await?;
    }
    let load = move |c: &mut db::DbConn, after: String| -> AppResult<Vec<ExportRow>> {
        let mut q = interactions::table
            .inner_join(clients::table.on(clients::id.eq(interactions::client_id)))
            .filter(interactions::organization_id.eq(&org))
            .filter(interactions::deleted_at.is_null())
            .filter(clients::deleted_at.is_null())
            .filter(interactions::id.gt(after))
            .order(interactions::id.asc())
            .limit(PAGE)
            .into_boxed();
        if !access.oversee {
            q = q.filter(clients::assigned_to.eq(access.user_id.clone()));
        }
        if let Some(k) = &filter.kind {
            q = q.filter(interactions::kind.eq(k.clone()));
        }
        if let Some(u) = &filter.owner {
            q = q.filter(interactions::user_id.eq(u.clone()));
        }
        if let Some(f) = filter.from {
            q = q.filter(interactions::occurred_at.ge(f));
        }
        if let Some(t) = filter.to {
            q = q.filter(interactions::occurred_at.lt(t));
        }
        if let Some(cl) = &client {
            q = q.filter(interactions::client_id.eq(cl.clone()));
        }
        let rows: Vec<InteractionExportRow> = q
            .select((
                interactions::id,
                interactions::client_id,
                clients::display_name,
                interactions::kind,
                interactions::direction,
                interactions::status,
                interactions::occurred_at,
                interactions::outcome,
                interactions::duration_minutes,
                interactions::subject,
                interactions::content,
                interactions::user_id,
            ))
            .load(c)?;
        Ok(rows
            .into_iter()
            .map(|r| {
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
                ];
                let json = json!({
                    "id": r.0, "clientId": r.1, "client": r.2, "type": r.3,
                    "direction": r.4, "status": r.5, "occurredAt": at, "outcome": r.7,
                    "durationMinutes": r.8, "subject": r.9, "content": r.10, "userId": r.11,
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
    ];
    Ok(streamed(
        format,
        "interactions",
        keyset_body(state.pool.clone(), format, header, load),
    ))
}

/// id, client id, client, type, direction, status, when, outcome, minutes, subject,
/// content, author.
type InteractionExportRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    chrono::NaiveDateTime,
    Option<String>,
    Option<i32>,
    String,
    String,
    Option<String>,
);

pub async fn api_interactions(
    actor: crate::auth::ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    interactions(&actor, &state, &req).await
}
