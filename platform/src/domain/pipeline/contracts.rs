//! Contracts: linked to a client (and optionally the deal that won it), with dates,
//! value, renewal terms, notice period, status and the signed document. Upcoming
//! renewals surface on the dashboard and can open a renewal deal.

use chrono::{Duration, NaiveDate};
use diesel::prelude::*;
use serde_json::{json, Map, Value};

use super::model::*;
use super::service;
use crate::db::schema::contracts;
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::service::Access;
use crate::domain::money::{format_cents, parse_cents, valid_currency};
use crate::error::{AppError, AppResult, FieldError};

/// Largest signed document accepted, in bytes.
pub const MAX_DOCUMENT: usize = 10 * 1024 * 1024;

/// A contract as lists read it: every column but the document's bytes.
#[derive(Queryable, Selectable)]
#[diesel(table_name = contracts)]
struct Listed {
    id: String,
    organization_id: String,
    client_id: String,
    opportunity_id: Option<String>,
    name: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    value_cents: i64,
    currency: String,
    renewal_terms: String,
    notice_days: i32,
    status: String,
    document_name: Option<String>,
    document_type: Option<String>,
    renewal_opportunity_id: Option<String>,
    version: i64,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

impl From<Listed> for ContractRow {
    fn from(l: Listed) -> Self {
        Self {
            id: l.id,
            organization_id: l.organization_id,
            client_id: l.client_id,
            opportunity_id: l.opportunity_id,
            name: l.name,
            start_date: l.start_date,
            end_date: l.end_date,
            value_cents: l.value_cents,
            currency: l.currency,
            renewal_terms: l.renewal_terms,
            notice_days: l.notice_days,
            status: l.status,
            document_name: l.document_name,
            document_type: l.document_type,
            document: None,
            renewal_opportunity_id: l.renewal_opportunity_id,
            version: l.version,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

/// Contract rows without the document bytes, for lists (the dashboard reads them on every
/// visit: up to 500 signed PDFs were read and dropped each time).
pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    client_id: Option<&str>,
    ending_before: Option<NaiveDate>,
    status: Option<&str>,
) -> AppResult<Vec<ContractRow>> {
    let mut q = contracts::table
        .filter(contracts::organization_id.eq(org_id.to_string()))
        .select(Listed::as_select())
        .order((contracts::end_date.asc(), contracts::id.asc()))
        .limit(500)
        .into_boxed();
    if let Some(c) = client_id {
        q = q.filter(contracts::client_id.eq(c.to_string()));
    }
    if let Some(d) = ending_before {
        q = q.filter(contracts::end_date.le(d));
    }
    if let Some(s) = status {
        q = q.filter(contracts::status.eq(s.to_string()));
    }
    let rows: Vec<Listed> = q.load(conn)?;
    // Contracts follow their client's record rules: the clients read in one query, as a
    // client is read one by one (live, and visible to the caller).
    let mut ids: Vec<String> = rows.iter().map(|r| r.client_id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    let visible: std::collections::HashSet<String> =
        crate::domain::clients::store::find_many(conn, org_id, &ids)?
            .into_iter()
            .filter(|c| c.deleted_at.is_none() && access.sees(c))
            .map(|c| c.id)
            .collect();
    Ok(rows
        .into_iter()
        .filter(|r| visible.contains(&r.client_id))
        .map(ContractRow::from)
        .collect())
}

pub fn get(conn: &mut DbConn, org_id: &str, access: &Access, id: &str) -> AppResult<ContractRow> {
    let row = contracts::table
        .filter(contracts::organization_id.eq(org_id))
        .filter(contracts::id.eq(id))
        .select(ContractRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    crate::domain::clients::service::get(conn, org_id, access, &row.client_id)
        .map_err(|_| AppError::NotFound)?;
    Ok(row)
}

fn text<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str).map(str::trim)
}

/// Creates (no `id`) or updates a contract from an API-shaped body.
pub fn save(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    id: Option<&str>,
    body: &Map<String, Value>,
    default_currency: &str,
) -> AppResult<ContractRow> {
    const KEYS: &[&str] = &[
        "name",
        "clientId",
        "opportunityId",
        "startDate",
        "endDate",
        "value",
        "currency",
        "renewalTerms",
        "noticeDays",
        "status",
        "id",
        "version",
        "createdAt",
        "updatedAt",
        "hasDocument",
        "documentName",
    ];
    let mut errors = Vec::new();
    for k in body.keys() {
        if !KEYS.contains(&k.as_str()) {
            errors.push(FieldError::new(k.clone(), "Unknown field."));
        }
    }
    crate::db::transaction(conn, |c| {
        let at = now();
        let current = id.map(|i| get(c, &ctx.org_id, access, i)).transpose()?;
        let mut row = current.clone().unwrap_or(ContractRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            client_id: String::new(),
            opportunity_id: None,
            name: String::new(),
            start_date: at.date(),
            end_date: at.date() + Duration::days(365),
            value_cents: 0,
            currency: default_currency.into(),
            renewal_terms: String::new(),
            notice_days: 30,
            status: "active".into(),
            document_name: None,
            document_type: None,
            document: None,
            renewal_opportunity_id: None,
            version: 1,
            created_at: at,
            updated_at: at,
        });
        if let (Some(cur), Some(v)) = (&current, body.get("version").and_then(Value::as_i64)) {
            if cur.version != v {
                return Err(AppError::Stale(
                    "This contract was changed by someone else; reload and try again.".into(),
                ));
            }
        }
        if let Some(n) = text(body, "name") {
            row.name = n.chars().take(200).collect();
        }
        if row.name.is_empty() {
            errors.push(FieldError::new("name", "Name the contract."));
        }
        if let Some(cl) = text(body, "clientId") {
            match crate::domain::clients::service::get(c, &ctx.org_id, access, cl) {
                Ok(client) => row.client_id = client.id,
                Err(_) => errors.push(FieldError::new("clientId", "Choose a client you can see.")),
            }
        }
        if row.client_id.is_empty() {
            errors.push(FieldError::new(
                "clientId",
                "A contract belongs to a client.",
            ));
        }
        match body.get("opportunityId") {
            Some(Value::String(o)) if !o.is_empty() => {
                match service::get(c, &ctx.org_id, access, o) {
                    Ok(d) => row.opportunity_id = Some(d.id),
                    Err(_) => errors.push(FieldError::new(
                        "opportunityId",
                        "Choose a deal you can see.",
                    )),
                }
            }
            Some(Value::Null) | Some(Value::String(_)) => row.opportunity_id = None,
            Some(_) => errors.push(FieldError::new(
                "opportunityId",
                "Send the deal id as text.",
            )),
            None => {}
        }
        for (key, target) in [
            ("startDate", &mut row.start_date),
            ("endDate", &mut row.end_date),
        ] {
            if let Some(d) = text(body, key) {
                match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                    Ok(d) => *target = d,
                    Err(_) => errors.push(FieldError::new(key, "Use a date as YYYY-MM-DD.")),
                }
            }
        }
        if row.end_date < row.start_date {
            errors.push(FieldError::new(
                "endDate",
                "The end date comes after the start date.",
            ));
        }
        if let Some(v) = body.get("value") {
            let raw = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            match parse_cents(&raw) {
                _ if raw.trim().is_empty() => errors.push(FieldError::new(
                    "value",
                    "Give the contract's value (0 or more).",
                )),
                Ok(cents) => row.value_cents = cents,
                Err(e) => errors.push(FieldError::new("value", e)),
            }
        }
        if let Some(cur) = text(body, "currency") {
            if valid_currency(&cur.to_uppercase()) {
                row.currency = cur.to_uppercase();
            } else {
                errors.push(FieldError::new(
                    "currency",
                    "Use an ISO currency code, e.g. EUR.",
                ));
            }
        }
        if let Some(t) = text(body, "renewalTerms") {
            row.renewal_terms = t.chars().take(2000).collect();
        }
        if let Some(n) = body.get("noticeDays") {
            match n.as_i64().filter(|d| (0..=3650).contains(d)) {
                Some(d) => row.notice_days = i32::try_from(d).unwrap_or(30),
                None => errors.push(FieldError::new("noticeDays", "Use 0 to 3650 days.")),
            }
        }
        if let Some(s) = text(body, "status") {
            if CONTRACT_STATUSES.contains(&s) {
                row.status = s.into();
            } else {
                errors.push(FieldError::new(
                    "status",
                    format!("Use one of: {}.", CONTRACT_STATUSES.join(", ")),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The contract could not be saved.".into(),
                std::mem::take(&mut errors),
            ));
        }
        row.updated_at = at;
        match &current {
            None => {
                diesel::insert_into(contracts::table)
                    .values(&row)
                    .execute(c)?;
                audit::record(
                    c,
                    ctx,
                    "contract.create",
                    "contract",
                    Some(&row.id),
                    json!({"name": row.name, "value": format_cents(row.value_cents), "currency": row.currency}),
                )?;
            }
            Some(cur) => {
                let n = diesel::update(
                    contracts::table
                        .filter(contracts::id.eq(&row.id))
                        .filter(contracts::version.eq(cur.version)),
                )
                .set((
                    contracts::name.eq(&row.name),
                    contracts::client_id.eq(&row.client_id),
                    contracts::opportunity_id.eq(&row.opportunity_id),
                    contracts::start_date.eq(row.start_date),
                    contracts::end_date.eq(row.end_date),
                    contracts::value_cents.eq(row.value_cents),
                    contracts::currency.eq(&row.currency),
                    contracts::renewal_terms.eq(&row.renewal_terms),
                    contracts::notice_days.eq(row.notice_days),
                    contracts::status.eq(&row.status),
                    contracts::version.eq(cur.version + 1),
                    contracts::updated_at.eq(row.updated_at),
                ))
                .execute(c)?;
                if n != 1 {
                    return Err(AppError::Stale(
                        "This contract was changed by someone else; reload and try again.".into(),
                    ));
                }
                audit::record(
                    c,
                    ctx,
                    "contract.update",
                    "contract",
                    Some(&row.id),
                    json!({"status": [cur.status, row.status], "endDate": [cur.end_date, row.end_date]}),
                )?;
            }
        }
        get(c, &ctx.org_id, access, &row.id)
    })
}

pub fn attach(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    id: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> AppResult<()> {
    if bytes.is_empty() || bytes.len() > MAX_DOCUMENT {
        return Err(AppError::PayloadTooLarge(format!(
            "Send a document of 1 byte to {} MiB.",
            MAX_DOCUMENT / 1024 / 1024
        )));
    }
    crate::db::transaction(conn, |c| {
        let row = get(c, &ctx.org_id, access, id)?;
        let safe_name: String = name
            .chars()
            .filter(|ch| !ch.is_control() && *ch != '/' && *ch != '\\' && *ch != '"')
            .take(120)
            .collect();
        diesel::update(contracts::table.find(&row.id))
            .set((
                contracts::document.eq(Some(&bytes)),
                contracts::document_name.eq(Some(if safe_name.is_empty() {
                    "contract".to_string()
                } else {
                    safe_name.clone()
                })),
                contracts::document_type
                    .eq(Some(content_type.chars().take(100).collect::<String>())),
                contracts::version.eq(row.version + 1),
                contracts::updated_at.eq(now()),
            ))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "contract.document",
            "contract",
            Some(id),
            json!({"name": safe_name, "bytes": bytes.len()}),
        )?;
        Ok(())
    })
}

/// Active contracts ending within `days` (the dashboard's "upcoming renewals").
pub fn renewals_due(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    days: i64,
) -> AppResult<Vec<ContractRow>> {
    let until = now().date() + Duration::days(days);
    list(conn, org_id, access, None, Some(until), Some("active"))
}

/// Opens a renewal deal for the contract in the first pipeline, closing at the end date.
pub fn renew(
    conn: &mut DbConn,
    w: &service::WriteContext<'_>,
    id: &str,
) -> AppResult<OpportunityRow> {
    crate::db::transaction(conn, |c| {
        let contract = get(c, &w.ctx.org_id, w.access, id)?;
        if let Some(existing) = &contract.renewal_opportunity_id {
            if let Ok(d) = service::get(c, &w.ctx.org_id, w.access, existing) {
                return Err(AppError::Conflict(format!(
                    "A renewal deal exists already: {}.",
                    d.name
                )));
            }
        }
        let mut body = Map::new();
        body.insert("name".into(), json!(format!("Renewal: {}", contract.name)));
        body.insert("clientId".into(), json!(contract.client_id));
        body.insert("value".into(), json!(format_cents(contract.value_cents)));
        body.insert("currency".into(), json!(contract.currency));
        body.insert(
            "expectedCloseDate".into(),
            json!(contract.end_date.to_string()),
        );
        body.insert("source".into(), json!("Renewal"));
        let deal = service::create(c, w, &body)?;
        diesel::update(contracts::table.find(&contract.id))
            .set((
                contracts::renewal_opportunity_id.eq(Some(&deal.id)),
                contracts::updated_at.eq(now()),
            ))
            .execute(c)?;
        audit::record(
            c,
            w.ctx,
            "contract.renew",
            "contract",
            Some(id),
            json!({"opportunity": deal.id}),
        )?;
        Ok(deal)
    })
}
