//! A client's business, for its profile's Deals card and `GET /api/clients/:id/opportunities`:
//! its deals (a company's include its people's), their quotes and its contracts, each as the
//! caller may see them — deals only with the right to read deals and, for a sales rep, only
//! their own; contracts by the client's rules.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use serde_json::{json, Value};

use super::Scope;
use crate::db::schema::{opportunities, quotes};
use crate::domain::clients::{service, store};
use crate::domain::money::format_cents;
use crate::domain::pipeline::store as pipeline;
use crate::domain::pipeline::OpportunityRow;
use crate::error::AppResult;

/// Deals shown at most (open ones first); `more` says there are others.
const SHOWN: i64 = 50;

pub struct DealLine {
    pub id: String,
    pub name: String,
    /// The person the deal is with, when it is one of a company's people's.
    pub via: Option<(String, String)>,
    pub stage: String,
    pub status: String,
    pub value_cents: i64,
    pub currency: String,
    pub expected_close: Option<NaiveDate>,
    pub actual_close: Option<NaiveDate>,
}

pub struct QuoteLine {
    pub id: String,
    pub deal_id: String,
    pub deal_name: String,
    pub number: i32,
    pub status: String,
    pub total_cents: i64,
    pub currency: String,
    pub valid_until: Option<NaiveDate>,
}

pub struct ContractLine {
    pub id: String,
    pub name: String,
    pub status: String,
    pub end_date: NaiveDate,
    pub value_cents: i64,
    pub currency: String,
}

pub struct ClientDeals {
    /// May the caller see deals at all (the card shows, or not).
    pub deals_shown: bool,
    /// Open deals, closing soonest first.
    pub open: Vec<DealLine>,
    /// Won and lost, latest first.
    pub closed: Vec<DealLine>,
    pub more: bool,
    pub quotes: Vec<QuoteLine>,
    pub contracts: Vec<ContractLine>,
}

impl ClientDeals {
    pub fn to_json(&self) -> Value {
        let deal = |d: &DealLine| {
            json!({
                "id": d.id, "name": d.name, "stage": d.stage, "status": d.status,
                "value": format_cents(d.value_cents), "currency": d.currency,
                "expectedClose": d.expected_close, "actualClose": d.actual_close,
                "via": d.via.as_ref().map(|(id, name)| json!({"id": id, "name": name})),
            })
        };
        json!({
            "data": self.open.iter().chain(&self.closed).map(deal).collect::<Vec<_>>(),
            "more": self.more,
            "quotes": self.quotes.iter().map(|q| json!({
                "id": q.id, "opportunityId": q.deal_id, "opportunityName": q.deal_name,
                "number": q.number, "status": q.status, "total": format_cents(q.total_cents),
                "currency": q.currency, "validUntil": q.valid_until,
            })).collect::<Vec<_>>(),
            "contracts": self.contracts.iter().map(|c| json!({
                "id": c.id, "name": c.name, "status": c.status, "endDate": c.end_date,
                "value": format_cents(c.value_cents), "currency": c.currency,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A client's deals, quotes and contracts; 404 when the caller may not see the client.
pub async fn of_client(scope: &Scope, client_id: String) -> AppResult<ClientDeals> {
    scope.require("client", "read")?;
    let client_access = scope.access("client");
    let deals_shown = scope.can("opportunity", "read");
    let deal_access = scope.access("opportunity");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let row = service::get(c, &org, &client_access, &client_id)?;
            let contracts = crate::domain::pipeline::contracts::list(
                c,
                &org,
                &client_access,
                Some(&row.id),
                None,
                None,
            )?
            .into_iter()
            .map(|k| ContractLine {
                id: k.id,
                name: k.name,
                status: k.status,
                end_date: k.end_date,
                value_cents: k.value_cents,
                currency: k.currency,
            })
            .collect();
            let mut out = ClientDeals {
                deals_shown,
                open: Vec::new(),
                closed: Vec::new(),
                more: false,
                quotes: Vec::new(),
                contracts,
            };
            if !deals_shown {
                return Ok(out);
            }
            // A company's people's deals are the company's business too.
            let mut names: HashMap<String, String> = HashMap::new();
            if row.is_company() {
                for p in store::people_of(c, &org, &row.id)? {
                    names.insert(p.id, p.display_name);
                }
            }
            let mut ids: Vec<String> = names.keys().cloned().collect();
            ids.push(row.id.clone());
            let mut q = opportunities::table
                .filter(opportunities::organization_id.eq(&org))
                .filter(opportunities::client_id.eq_any(&ids))
                .filter(opportunities::deleted_at.is_null())
                .select(OpportunityRow::as_select())
                .order(opportunities::id.asc())
                .limit(500)
                .into_boxed();
            if !deal_access.oversee {
                q = q.filter(opportunities::assigned_to.eq(deal_access.user_id.clone()));
            }
            let rows: Vec<OpportunityRow> = q.load(c)?;
            let stages: HashMap<String, String> = pipeline::stages_of_org(c, &org)?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect();
            let line = |o: &OpportunityRow| DealLine {
                id: o.id.clone(),
                name: o.name.clone(),
                via: names
                    .get(&o.client_id)
                    .map(|n| (o.client_id.clone(), n.clone())),
                stage: stages.get(&o.stage_id).cloned().unwrap_or_default(),
                status: o.status.clone(),
                value_cents: o.value_cents,
                currency: o.currency.clone(),
                expected_close: o.expected_close,
                actual_close: o.actual_close,
            };
            let (mut open, mut closed): (Vec<&OpportunityRow>, Vec<&OpportunityRow>) =
                rows.iter().partition(|o| o.status == "open");
            // Sorted here: the backends disagree on where NULL dates go. Undated deals last.
            open.sort_by_key(|o| (o.expected_close.is_none(), o.expected_close));
            closed.sort_by_key(|o| std::cmp::Reverse(o.actual_close));
            out.more = rows.len() as i64 > SHOWN;
            out.open = open.into_iter().take(SHOWN as usize).map(line).collect();
            let room = (SHOWN as usize).saturating_sub(out.open.len());
            out.closed = closed.into_iter().take(room).map(line).collect();
            let deal_names: HashMap<&String, &String> =
                rows.iter().map(|o| (&o.id, &o.name)).collect();
            let deal_ids: Vec<&String> = deal_names.keys().copied().collect();
            type Q = (String, String, i32, String, i64, String, Option<NaiveDate>);
            let found: Vec<Q> = quotes::table
                .filter(quotes::organization_id.eq(&org))
                .filter(quotes::opportunity_id.eq_any(deal_ids))
                .order(quotes::created_at.desc())
                .limit(SHOWN)
                .select((
                    quotes::id,
                    quotes::opportunity_id,
                    quotes::number,
                    quotes::status,
                    quotes::total_cents,
                    quotes::currency,
                    quotes::valid_until,
                ))
                .load(c)?;
            out.quotes = found
                .into_iter()
                .map(
                    |(id, deal_id, number, status, total_cents, currency, valid_until)| QuoteLine {
                        deal_name: deal_names
                            .get(&deal_id)
                            .map(|n| n.to_string())
                            .unwrap_or_default(),
                        id,
                        deal_id,
                        number,
                        status,
                        total_cents,
                        currency,
                        valid_until,
                    },
                )
                .collect();
            Ok(out)
        })
        .await
}
