//! The analytics overview (`GET /api/crm/analytics/overview`): clients by status, new
//! clients, the open pipeline, the win rate, activities and clients at risk for a period,
//! each one grouped SQL count or sum, within the caller's reach (a rep's own clients, deals
//! and activities).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::Serialize;

use super::Scope;
use crate::db::schema::{activity_daily, clients, opportunities, risk_counts};
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCount {
    pub status: String,
    pub clients: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// A decimal string.
    pub value: String,
    pub currency: String,
    pub deals: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WinRate {
    pub won: i64,
    pub lost: i64,
    /// won ÷ (won + lost), null when nothing closed.
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// `YYYY-MM-DD`, inclusive.
    pub from: String,
    pub to: String,
    pub clients_by_status: Vec<StatusCount>,
    /// Clients created in the period.
    pub new_clients: i64,
    /// Open deals now, per currency (never summed across currencies); null without the
    /// right to see deals.
    pub open_pipeline: Option<Vec<Money>>,
    /// Deals closed in the period; null without the right to see deals.
    pub win_rate: Option<WinRate>,
    /// Calls, meetings, e-mails and notes completed in the period.
    pub activities: i64,
    /// Clients (not inactive) whose churn risk is 50 or more, as of the last scoring.
    pub at_risk: i64,
}

/// The longest period an overview covers.
const MAX_DAYS: i64 = 3660;

pub async fn overview(
    scope: &Scope,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> AppResult<Overview> {
    scope.require("client", "read")?;
    let today = scope.local.today();
    let to = to.unwrap_or(today);
    let from = from.unwrap_or(to - chrono::Duration::days(29));
    if from > to {
        return Err(AppError::invalid(
            "from",
            "The period starts after it ends; put the earlier date in from.",
        ));
    }
    if (to - from).num_days() > MAX_DAYS {
        return Err(AppError::invalid("from", "Ask for at most ten years."));
    }
    let start: NaiveDateTime = from.and_hms_opt(0, 0, 0).unwrap_or_default();
    let end: NaiveDateTime = (to + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default();
    let org = scope.org_id.clone();
    let clients_access = scope.access("client");
    let deals_shown = scope.can("opportunity", "read");
    let deals_access = scope.access("opportunity");
    scope
        .read(move |c| {
            let mine = (!clients_access.oversee).then(|| clients_access.user_id.clone());
            let by_status =
                crate::domain::clients::store::counts_by_status(c, &org, mine.as_deref())?
                    .into_iter()
                    .map(|(status, clients)| StatusCount { status, clients })
                    .collect();
            let mut q = clients::table
                .filter(clients::organization_id.eq(&org))
                .filter(clients::deleted_at.is_null())
                .filter(clients::created_at.ge(start))
                .filter(clients::created_at.lt(end))
                .select(count_star())
                .into_boxed();
            if let Some(m) = &mine {
                q = q.filter(clients::assigned_to.eq(m.clone()));
            }
            let new_clients: i64 = q.get_result(c)?;

            let (open_pipeline, win_rate) = if deals_shown {
                let own = (!deals_access.oversee).then(|| deals_access.user_id.clone());
                let mut q = opportunities::table
                    .filter(opportunities::organization_id.eq(&org))
                    .filter(opportunities::deleted_at.is_null())
                    .filter(opportunities::status.eq("open"))
                    .group_by(opportunities::currency)
                    .select((
                        opportunities::currency,
                        // why: SUM of a bigint is numeric on PostgreSQL; cast back to one.
                        sql::<BigInt>(
                            "CAST(COALESCE(SUM(opportunities.value_cents), 0) AS BIGINT)",
                        ),
                        count_star(),
                    ))
                    .into_boxed();
                if let Some(o) = &own {
                    q = q.filter(opportunities::assigned_to.eq(o.clone()));
                }
                let open: Vec<(String, i64, i64)> = q.load(c)?;
                let mut q = opportunities::table
                    .filter(opportunities::organization_id.eq(&org))
                    .filter(opportunities::deleted_at.is_null())
                    .filter(opportunities::status.eq_any(["won", "lost"]))
                    .filter(opportunities::actual_close.ge(from))
                    .filter(opportunities::actual_close.le(to))
                    .group_by(opportunities::status)
                    .select((opportunities::status, count_star()))
                    .into_boxed();
                if let Some(o) = &own {
                    q = q.filter(opportunities::assigned_to.eq(o.clone()));
                }
                let closed: Vec<(String, i64)> = q.load(c)?;
                let n = |s: &str| closed.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
                let (won, lost) = (n("won"), n("lost"));
                (
                    Some(
                        open.into_iter()
                            .map(|(currency, total, deals)| Money {
                                value: crate::domain::money::format_cents(total),
                                currency,
                                deals,
                            })
                            .collect(),
                    ),
                    Some(WinRate {
                        won,
                        lost,
                        rate: (won + lost > 0).then(|| won as f64 / (won + lost) as f64),
                    }),
                )
            } else {
                (None, None)
            };

            // why: the daily counts (kept by triggers) hold a few rows per day and person,
            // where the period can hold millions of activities.
            let mut q = activity_daily::table
                .filter(activity_daily::organization_id.eq(&org))
                .filter(activity_daily::status.eq("completed"))
                .filter(activity_daily::kind.ne_all(["task", "event"]))
                .filter(activity_daily::day.ge(from))
                .filter(activity_daily::day.le(to))
                .select(sql::<BigInt>(
                    "CAST(COALESCE(SUM(activity_daily.n), 0) AS BIGINT)",
                ))
                .into_boxed();
            if let Some(m) = &mine {
                q = q.filter(activity_daily::user_id.eq(m.clone()));
            }
            let activities: i64 = q.get_result(c)?;

            // Written after each scoring (scores change nightly).
            let mut q = risk_counts::table
                .filter(risk_counts::organization_id.eq(&org))
                .select(sql::<BigInt>(
                    "CAST(COALESCE(SUM(risk_counts.n), 0) AS BIGINT)",
                ))
                .into_boxed();
            if let Some(m) = &mine {
                q = q.filter(risk_counts::owner.eq(m.clone()));
            }
            let at_risk: i64 = q.get_result(c)?;
            Ok(Overview {
                from: from.format("%Y-%m-%d").to_string(),
                to: to.format("%Y-%m-%d").to_string(),
                clients_by_status: by_status,
                new_clients,
                open_pipeline,
                win_rate,
                activities,
                at_risk,
            })
        })
        .await
}
