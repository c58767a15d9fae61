//! Quotes: line items with exact decimal totals, numbering per organization, status
//! changes (accepting can win the deal), and the PDF a client receives.

use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::model::*;
use super::service;
use crate::db::schema::{quote_lines, quotes};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::service::Access;
use crate::domain::money::{format_cents, parse_cents, round_cents, valid_currency};
use crate::error::{AppError, AppResult, FieldError};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = QuoteLineInput)]
pub struct LineInput {
    pub name: String,
    /// Decimal string, e.g. "2" or "1.5".
    pub quantity: String,
    pub unit_price: String,
    /// Percent off, e.g. "10".
    #[serde(default)]
    pub discount: Option<String>,
    /// Tax percent, e.g. "19".
    #[serde(default)]
    pub tax_rate: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub tax_cents: i64,
    pub total_cents: i64,
}

/// One line's figures: gross = qty × price; discount = gross × d%; tax = (gross − discount) × t%.
/// Each is rounded to cents (half away from zero) before it is summed.
pub fn line_figures(
    quantity: Decimal,
    unit_price_cents: i64,
    discount: Decimal,
    tax: Decimal,
) -> Result<Totals, String> {
    let gross = quantity * Decimal::new(unit_price_cents, 2);
    let disc = gross * discount / Decimal::from(100);
    let taxed = (gross - disc) * tax / Decimal::from(100);
    let (g, d, t) = (round_cents(gross)?, round_cents(disc)?, round_cents(taxed)?);
    Ok(Totals {
        subtotal_cents: g,
        discount_cents: d,
        tax_cents: t,
        total_cents: g - d + t,
    })
}

fn percent(field: &str, raw: Option<&str>, errors: &mut Vec<FieldError>) -> Decimal {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("0");
    match raw.parse::<Decimal>() {
        Ok(d) if d >= Decimal::ZERO && d <= Decimal::from(100) && d.normalize().scale() <= 4 => {
            d.normalize()
        }
        _ => {
            errors.push(FieldError::new(field, "Use a percentage from 0 to 100."));
            Decimal::ZERO
        }
    }
}

/// Validates lines and computes every figure.
pub fn price(lines: &[LineInput]) -> Result<(Vec<QuoteLineRow>, Totals), Vec<FieldError>> {
    let mut errors = Vec::new();
    if lines.is_empty() || lines.len() > 200 {
        errors.push(FieldError::new("lines", "A quote has 1 to 200 lines."));
    }
    let mut rows = Vec::new();
    let mut totals = Totals::default();
    for (i, l) in lines.iter().enumerate() {
        let f = |name: &str| format!("lines[{i}].{name}");
        if l.name.trim().is_empty() || l.name.chars().count() > 200 {
            errors.push(FieldError::new(f("name"), "Name the product or service."));
        }
        let quantity = match l.quantity.trim().parse::<Decimal>() {
            Ok(q) if q > Decimal::ZERO && q.normalize().scale() <= 4 => q.normalize(),
            _ => {
                errors.push(FieldError::new(
                    f("quantity"),
                    "Use a quantity above zero with at most 4 decimals.",
                ));
                Decimal::ONE
            }
        };
        let unit = parse_cents(&l.unit_price).unwrap_or_else(|e| {
            errors.push(FieldError::new(f("unitPrice"), e));
            0
        });
        let discount = percent(&f("discount"), l.discount.as_deref(), &mut errors);
        let tax = percent(&f("taxRate"), l.tax_rate.as_deref(), &mut errors);
        match line_figures(quantity, unit, discount, tax) {
            Ok(t) => {
                totals.subtotal_cents += t.subtotal_cents;
                totals.discount_cents += t.discount_cents;
                totals.tax_cents += t.tax_cents;
                totals.total_cents += t.total_cents;
                rows.push(QuoteLineRow {
                    id: new_id(),
                    quote_id: String::new(),
                    organization_id: String::new(),
                    position: i32::try_from(i).unwrap_or(0),
                    name: l.name.trim().into(),
                    quantity: quantity.to_string(),
                    unit_price_cents: unit,
                    discount_percent: discount.to_string(),
                    tax_rate: tax.to_string(),
                    total_cents: t.total_cents,
                });
            }
            Err(e) => errors.push(FieldError::new(f("unitPrice"), e)),
        }
    }
    if errors.is_empty() {
        Ok((rows, totals))
    } else {
        Err(errors)
    }
}

pub struct QuoteInput {
    pub opportunity_id: String,
    pub currency: Option<String>,
    pub valid_until: Option<chrono::NaiveDate>,
    pub terms: String,
    pub lines: Vec<LineInput>,
}

pub fn find(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    id: &str,
) -> AppResult<(QuoteRow, Vec<QuoteLineRow>)> {
    let q: QuoteRow = quotes::table
        .filter(quotes::organization_id.eq(org_id))
        .filter(quotes::id.eq(id))
        .select(QuoteRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    // The deal's record rules decide who sees its quotes.
    service::get(conn, org_id, access, &q.opportunity_id)?;
    let lines = quote_lines::table
        .filter(quote_lines::quote_id.eq(&q.id))
        .order(quote_lines::position.asc())
        .select(QuoteLineRow::as_select())
        .load(conn)?;
    Ok((q, lines))
}

pub fn list_for(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    opportunity_id: &str,
) -> AppResult<Vec<QuoteRow>> {
    service::get(conn, org_id, access, opportunity_id)?;
    Ok(quotes::table
        .filter(quotes::organization_id.eq(org_id))
        .filter(quotes::opportunity_id.eq(opportunity_id))
        .order(quotes::number.desc())
        .select(QuoteRow::as_select())
        .load(conn)?)
}

pub fn create(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    input: QuoteInput,
) -> AppResult<QuoteRow> {
    let (mut lines, totals) = price(&input.lines)
        .map_err(|e| AppError::Validation("The quote could not be saved.".into(), e))?;
    crate::db::transaction(conn, |c| {
        let deal = service::get(c, &ctx.org_id, access, &input.opportunity_id)
            .map_err(|_| AppError::invalid("opportunityId", "Choose a deal you can see."))?;
        let currency = input
            .currency
            .clone()
            .map(|c| c.to_uppercase())
            .unwrap_or(deal.currency.clone());
        if !valid_currency(&currency) {
            return Err(AppError::invalid(
                "currency",
                "Use an ISO currency code, e.g. EUR.",
            ));
        }
        // why: numbers are per organization and gap-free in practice; the unique index
        // (organization_id, number) refuses a concurrent duplicate, which the caller may retry.
        let last: Option<i32> = quotes::table
            .filter(quotes::organization_id.eq(&ctx.org_id))
            .select(diesel::dsl::max(quotes::number))
            .first(c)?;
        let at = now();
        let quote = QuoteRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            opportunity_id: deal.id.clone(),
            number: last.unwrap_or(0) + 1,
            status: "draft".into(),
            currency,
            valid_until: input.valid_until,
            terms: input.terms.chars().take(5000).collect(),
            subtotal_cents: totals.subtotal_cents,
            discount_cents: totals.discount_cents,
            tax_cents: totals.tax_cents,
            total_cents: totals.total_cents,
            version: 1,
            created_at: at,
            updated_at: at,
        };
        diesel::insert_into(quotes::table)
            .values(&quote)
            .execute(c)?;
        for l in &mut lines {
            l.quote_id = quote.id.clone();
            l.organization_id = ctx.org_id.clone();
            diesel::insert_into(quote_lines::table)
                .values(&*l)
                .execute(c)?;
        }
        audit::record(
            c,
            ctx,
            "quote.create",
            "quote",
            Some(&quote.id),
            json!({"number": quote.number, "total": format_cents(quote.total_cents), "currency": quote.currency}),
        )?;
        Ok(quote)
    })
}

/// Moves a quote along draft → sent → accepted | declined | expired. Accepting with
/// `win_deal` moves the deal to its pipeline's won stage.
pub fn set_status(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    id: &str,
    status: &str,
    win_deal: bool,
    rules: &dyn service::MoveRules,
) -> AppResult<QuoteRow> {
    if !QUOTE_STATUSES.contains(&status) {
        return Err(AppError::invalid(
            "status",
            "Use draft, sent, accepted, declined or expired.",
        ));
    }
    crate::db::transaction(conn, |c| {
        let (q, _) = find(c, &ctx.org_id, access, id)?;
        let allowed = match (q.status.as_str(), status) {
            (a, b) if a == b => true,
            ("draft", "sent")
            | ("sent", "accepted" | "declined" | "expired" | "draft")
            | ("draft", "expired") => true,
            _ => false,
        };
        if !allowed {
            return Err(AppError::Conflict(format!(
                "A {} quote cannot become {status}.",
                q.status
            )));
        }
        diesel::update(quotes::table.find(&q.id))
            .set((
                quotes::status.eq(status),
                quotes::version.eq(q.version + 1),
                quotes::updated_at.eq(now()),
            ))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "quote.status",
            "quote",
            Some(&q.id),
            json!({"status": [q.status, status]}),
        )?;
        if status == "accepted" && win_deal {
            let deal = service::get(c, &ctx.org_id, access, &q.opportunity_id)?;
            let won = super::store::stages_of(c, &deal.pipeline_id)?
                .into_iter()
                .find(|s| s.kind == "won" && s.is_active)
                .ok_or_else(|| {
                    AppError::Conflict("The deal's pipeline has no active won stage.".into())
                })?;
            service::move_to(c, ctx, access, &deal.id, &won.id, None, None, rules)?;
        }
        Ok(find(c, &ctx.org_id, access, id)?.0)
    })
}

/// Everything the PDF shows.
pub struct QuoteDocument<'a> {
    pub org_name: &'a str,
    pub client_name: &'a str,
    pub deal_name: &'a str,
    pub quote: &'a QuoteRow,
    pub lines: &'a [QuoteLineRow],
}

/// Renders the quote as a one-or-more-page A4 PDF with the standard Helvetica font
/// (nothing to embed). Text is limited to Latin-1, which WinAnsi encodes.
pub fn pdf(doc: &QuoteDocument<'_>) -> Vec<u8> {
    let money = |c: i64| format!("{} {}", format_cents(c), doc.quote.currency);
    let mut d = crate::pdf::Doc::new();
    d.text(50.0, doc.org_name, true);
    d.down(30.0);
    d.text(50.0, format!("Quote Q-{:05}", doc.quote.number), true);
    d.text(
        350.0,
        format!("Date: {}", doc.quote.created_at.format("%Y-%m-%d")),
        false,
    );
    d.down(18.0);
    d.text(50.0, format!("For: {}", doc.client_name), false);
    if let Some(v) = doc.quote.valid_until {
        d.text(350.0, format!("Valid until: {v}"), false);
    }
    d.down(18.0);
    d.text(50.0, format!("Regarding: {}", doc.deal_name), false);
    d.down(34.0);
    for (x, h) in [
        (50.0, "Item"),
        (290.0, "Qty"),
        (340.0, "Unit price"),
        (430.0, "Disc. %"),
        (480.0, "Tax %"),
        (520.0, "Total"),
    ] {
        d.text(x, h, true);
    }
    d.down(18.0);
    for l in doc.lines {
        d.need(16.0);
        d.text(50.0, crate::pdf::clip(&l.name, 40), false);
        d.text(290.0, l.quantity.clone(), false);
        d.text(340.0, format_cents(l.unit_price_cents), false);
        d.text(430.0, l.discount_percent.clone(), false);
        d.text(480.0, l.tax_rate.clone(), false);
        d.text(520.0, format_cents(l.total_cents), false);
        d.down(16.0);
    }
    d.down(14.0);
    d.need(64.0);
    for (label, value, bold) in [
        ("Subtotal", money(doc.quote.subtotal_cents), false),
        ("Discount", money(-doc.quote.discount_cents), false),
        ("Tax", money(doc.quote.tax_cents), false),
        ("Total", money(doc.quote.total_cents), true),
    ] {
        d.text(380.0, label, bold);
        d.text(450.0, value, bold);
        d.down(16.0);
    }
    if !doc.quote.terms.is_empty() {
        d.down(20.0);
        d.need(30.0);
        d.text(50.0, "Terms", true);
        d.down(16.0);
        d.paragraph(50.0, &doc.quote.terms, 95, 14.0);
    }
    d.finish()
}

/// Loads what the quote PDF shows and renders it.
pub fn quote_pdf(
    c: &mut crate::db::DbConn,
    org: &crate::domain::orgs::OrganizationRow,
    access: &crate::domain::clients::service::Access,
    id: &str,
) -> crate::error::AppResult<(QuoteRow, Vec<u8>)> {
    let (q, lines) = find(c, &org.id, access, id)?;
    let deal = crate::domain::pipeline::service::get(c, &org.id, access, &q.opportunity_id)?;
    let client = crate::domain::clients::store::find(c, &org.id, &deal.client_id)?
        .ok_or(crate::error::AppError::NotFound)?;
    let bytes = pdf(&QuoteDocument {
        org_name: &org.name,
        client_name: &client.display_name,
        deal_name: &deal.name,
        quote: &q,
        lines: &lines,
    });
    Ok((q, bytes))
}

/// A quote as the organization's list shows it: with its deal and client.
pub struct Listed {
    pub quote: QuoteRow,
    pub deal_name: String,
    pub client_id: String,
    pub client_name: String,
}

/// The organization's quotes on deals the caller may see, newest number first, optionally
/// of one status; `before` is the number to continue below (paging).
pub fn list_all(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    status: Option<&str>,
    before: Option<i32>,
    limit: i64,
) -> AppResult<Vec<Listed>> {
    use crate::db::schema::{clients, opportunities};
    let mut q = quotes::table
        .inner_join(opportunities::table.on(opportunities::id.eq(quotes::opportunity_id)))
        .inner_join(clients::table.on(clients::id.eq(opportunities::client_id)))
        .filter(quotes::organization_id.eq(org_id))
        .filter(opportunities::organization_id.eq(org_id))
        .filter(opportunities::deleted_at.is_null())
        .into_boxed();
    if !access.oversee {
        q = q.filter(opportunities::assigned_to.eq(&access.user_id));
    }
    if let Some(s) = status {
        q = q.filter(quotes::status.eq(s.to_string()));
    }
    if let Some(n) = before {
        q = q.filter(quotes::number.lt(n));
    }
    let rows: Vec<(QuoteRow, String, String, String)> = q
        .order(quotes::number.desc())
        .limit(limit)
        .select((
            QuoteRow::as_select(),
            opportunities::name,
            clients::id,
            clients::display_name,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(quote, deal_name, client_id, client_name)| Listed {
            quote,
            deal_name,
            client_id,
            client_name,
        })
        .collect())
}
