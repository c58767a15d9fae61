//! Quotes from a deal's page: create one, change its status, print it.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;

use super::super::redirect_with_flash;
use super::deal::{deal_page, DraftLine, QuoteDraft};
use super::{get, parse_form};
use crate::auth::ConsoleActor;
use crate::domain::pipeline::quotes::{LineInput, QuoteInput};
use crate::error::{AppError, AppResult};
use crate::ops::quotes;
use crate::state::AppState;

/// The quote the form describes: its filled lines (a row with neither a name nor a price
/// is left out), validity and terms.
fn quote_input(pairs: &[(String, String)], deal: String) -> QuoteInput {
    let all = |k: &str| {
        pairs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let (names, qtys, prices) = (all("line_name"), all("line_qty"), all("line_price"));
    let (discounts, taxes) = (all("line_discount"), all("line_tax"));
    let lines = (0..names.len())
        .filter(|i| {
            !names[*i].trim().is_empty() || !prices.get(*i).is_none_or(|p| p.trim().is_empty())
        })
        .map(|i| LineInput {
            name: names[i].clone(),
            quantity: qtys.get(i).cloned().unwrap_or_else(|| "1".into()),
            unit_price: prices.get(i).cloned().unwrap_or_default(),
            discount: discounts.get(i).cloned(),
            tax_rate: taxes.get(i).cloned(),
        })
        .collect();
    QuoteInput {
        opportunity_id: deal,
        currency: None,
        valid_until: get(pairs, "valid_until")
            .and_then(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()),
        terms: get(pairs, "terms").unwrap_or_default().to_string(),
        lines,
    }
}

/// Everything the form sent, row by row, to show again when the quote is refused.
fn draft_of(pairs: &[(String, String)]) -> QuoteDraft {
    let all = |k: &str| {
        pairs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let (names, qtys, prices) = (all("line_name"), all("line_qty"), all("line_price"));
    let (discounts, taxes) = (all("line_discount"), all("line_tax"));
    let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
    let mut lines: Vec<DraftLine> = (0..names.len().min(200))
        .map(|i| DraftLine {
            name: at(&names, i),
            qty: at(&qtys, i),
            price: at(&prices, i),
            discount: at(&discounts, i),
            tax: at(&taxes, i),
        })
        .collect();
    if lines.is_empty() {
        lines = QuoteDraft::default().lines;
    }
    QuoteDraft {
        lines,
        valid_until: get(pairs, "valid_until").unwrap_or_default().to_string(),
        terms: get(pairs, "terms").unwrap_or_default().to_string(),
    }
}

/// The form's rows that hold a line (a name or a price), by their place in the form.
fn filled_rows(pairs: &[(String, String)]) -> Vec<usize> {
    let d = draft_of(pairs);
    (0..d.lines.len())
        .filter(|i| !d.lines[*i].name.trim().is_empty() || !d.lines[*i].price.trim().is_empty())
        .collect()
}

/// `lines[1].unitPrice` → "Line 3, unit price": the quote's errors in the form's words,
/// numbered as the form shows its rows (`rows` maps a line to its row; empty rows are
/// skipped when the quote is read).
fn field_words(field: &str, rows: &[usize]) -> String {
    let Some(rest) = field.strip_prefix("lines[") else {
        return match field {
            "lines" => "Lines".into(),
            "validUntil" => "Valid until".into(),
            "terms" => "Terms".into(),
            "currency" => "Currency".into(),
            other => other.to_string(),
        };
    };
    let (n, name) = rest.split_once("].").unwrap_or((rest, ""));
    let line = n
        .parse::<usize>()
        .ok()
        .map_or(1, |n| rows.get(n).copied().unwrap_or(n) + 1);
    let what = match name {
        "name" => "item",
        "quantity" => "quantity",
        "unitPrice" => "unit price",
        "discount" => "discount",
        "taxRate" => "tax",
        other => other,
    };
    format!("Line {line}, {what}")
}

pub async fn create_quote(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let deal = id.into_inner();
    match quotes::create(&scope, quote_input(&pairs, deal.clone())).await {
        Ok((q, _)) => {
            let total = scope.local.cents(q.total_cents, &q.currency);
            let message = format!("Quote Q-{:05} was created: {total}.", q.number);
            redirect_with_flash(&req, &format!("/opportunities/{deal}"), &message)
        }
        Err(AppError::Validation(_, errors)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let rows = filled_rows(&pairs);
            let errors = errors
                .into_iter()
                .map(|mut e| {
                    e.field = field_words(&e.field, &rows);
                    e
                })
                .collect();
            let draft = draft_of(&pairs);
            deal_page(&req, &actor, &state, deal, errors, draft, status).await
        }
        Err(e) => Err(e),
    }
}

pub async fn quote_status(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let status = get(&pairs, "status").unwrap_or_default().to_string();
    let win = get(&pairs, "win_deal").is_some();
    let (q, _) = quotes::set_status(&scope, id.into_inner(), status, win).await?;
    redirect_with_flash(
        &req,
        &format!("/opportunities/{}", q.opportunity_id),
        &format!("Quote Q-{:05} is now {}.", q.number, q.status),
    )
}

pub async fn quote_pdf(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (q, bytes) = quotes::pdf(&scope, id.into_inner()).await?;
    Ok(crate::web::upload::pdf_response(&q, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_row_the_form_shows() {
        // Row 1 empty (skipped), so the quote's first line is the form's row 2.
        assert_eq!(
            field_words("lines[0].unitPrice", &[1, 2]),
            "Line 2, unit price"
        );
        assert_eq!(
            field_words("lines[1].quantity", &[1, 2]),
            "Line 3, quantity"
        );
        assert_eq!(field_words("lines", &[]), "Lines");
    }
}

pub struct QuoteListLine {
    pub id: String,
    pub reference: String,
    pub deal_id: String,
    pub deal: String,
    pub client_id: String,
    pub client: String,
    pub status: String,
    pub total: String,
    pub valid_until: String,
    pub created: String,
}

#[derive(askama::Template)]
#[template(path = "partials/sales/quotes.html")]
struct QuotesPage {
    rows: Vec<QuoteListLine>,
    status: String,
    statuses: &'static [&'static str],
    /// The number to continue below, when there may be more.
    more: Option<i32>,
}

const QUOTES_PAGE: i64 = 50;

/// `GET /quotes?status=&before=`: every quote on a deal the caller may see, newest first.
pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = crate::web::query_pairs(&req)?;
    let status = get(&pairs, "status").map(str::to_string);
    let before = match get(&pairs, "before") {
        Some(b) => Some(
            b.parse::<i32>()
                .map_err(|_| AppError::BadRequest("The page asked for does not exist.".into()))?,
        ),
        None => None,
    };
    let rows = quotes::list_all(&scope, status.clone(), before, QUOTES_PAGE + 1).await?;
    let more = (rows.len() as i64 > QUOTES_PAGE)
        .then(|| rows.get(QUOTES_PAGE as usize - 1).map(|l| l.quote.number))
        .flatten();
    let rows = rows
        .into_iter()
        .take(QUOTES_PAGE as usize)
        .map(|l| QuoteListLine {
            reference: format!("Q-{:05}", l.quote.number),
            total: scope.local.cents(l.quote.total_cents, &l.quote.currency),
            valid_until: l
                .quote
                .valid_until
                .map(|d| scope.local.date(d))
                .unwrap_or_default(),
            created: scope
                .local
                .date(scope.local.wall(l.quote.created_at).date()),
            id: l.quote.id,
            deal_id: l.quote.opportunity_id,
            deal: l.deal_name,
            client_id: l.client_id,
            client: l.client_name,
            status: l.quote.status,
        })
        .collect();
    let page = QuotesPage {
        rows,
        status: status.unwrap_or_default(),
        statuses: crate::domain::pipeline::QUOTE_STATUSES,
        more,
    };
    super::super::render(&req, &actor, "Quotes", &page).await
}
