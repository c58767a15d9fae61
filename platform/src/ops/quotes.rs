//! Quotes on a deal: create, list, read, change status, print; they follow their deal's
//! `opportunity:*` rights and record rule.

use super::Scope;
use crate::domain::pipeline::quotes::{self, QuoteInput};
use crate::domain::pipeline::{QuoteLineRow, QuoteRow};
use crate::error::AppResult;

/// A quote with its lines.
pub type Quote = (QuoteRow, Vec<QuoteLineRow>);

pub async fn create(scope: &Scope, input: QuoteInput) -> AppResult<Quote> {
    scope.require("opportunity", "write")?;
    let access = scope.access("opportunity");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let q = quotes::create(c, &ctx, &access, input)?;
            quotes::find(c, &ctx.org_id, &access, &q.id)
        })
        .await
}

/// A deal's quotes, without their lines.
pub async fn list(scope: &Scope, deal: String) -> AppResult<Vec<QuoteRow>> {
    scope.require("opportunity", "read")?;
    let access = scope.access("opportunity");
    let org = scope.org_id.clone();
    scope
        .read(move |c| quotes::list_for(c, &org, &access, &deal))
        .await
}

pub async fn get(scope: &Scope, id: String) -> AppResult<Quote> {
    scope.require("opportunity", "read")?;
    let access = scope.access("opportunity");
    let org = scope.org_id.clone();
    scope
        .read(move |c| quotes::find(c, &org, &access, &id))
        .await
}

/// Marks a quote sent, accepted, declined or expired; an accepted one may win its deal
/// (a stage move, so the plugins' stage rules apply).
pub async fn set_status(scope: &Scope, id: String, status: String, win: bool) -> AppResult<Quote> {
    scope.require("opportunity", "write")?;
    let access = scope.access("opportunity");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| {
            quotes::set_status(c, &ctx, &access, &id, &status, win, ext)?;
            quotes::find(c, &ctx.org_id, &access, &id)
        })
        .await
}

/// The quote as a PDF.
pub async fn pdf(scope: &Scope, id: String) -> AppResult<(QuoteRow, Vec<u8>)> {
    scope.require("opportunity", "read")?;
    let access = scope.access("opportunity");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let org = crate::domain::orgs::store::find_org(c, &org)?
                .ok_or(crate::error::AppError::NotFound)?;
            quotes::quote_pdf(c, &org, &access, &id)
        })
        .await
}

/// The organization's quotes the caller may see (deals' record rule), a page at a time.
pub async fn list_all(
    scope: &Scope,
    status: Option<String>,
    before: Option<i32>,
    limit: i64,
) -> AppResult<Vec<quotes::Listed>> {
    scope.require("opportunity", "read")?;
    if let Some(s) = status.as_deref() {
        if !crate::domain::pipeline::QUOTE_STATUSES.contains(&s) {
            return Err(crate::error::AppError::invalid(
                "status",
                "Choose draft, sent, accepted, declined or expired.",
            ));
        }
    }
    let access = scope.access("opportunity");
    let org = scope.org_id.clone();
    scope
        .read(move |c| quotes::list_all(c, &org, &access, status.as_deref(), before, limit))
        .await
}
