//! The sales figures both surfaces show (the forecast, reps' performance) and the reads
//! the sales pages share: the people deals may be assigned to, clients' names.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};

use super::Scope;
use crate::db::DbConn;
use crate::domain::pipeline::analytics::{self, Forecast, Performance};
use crate::domain::pipeline::service::{self, PipelineView};
use crate::domain::{clients, orgs};
use crate::error::{AppError, AppResult};

/// The organization's active members (id, name), as the pickers list them.
pub(super) fn members(c: &mut DbConn, org: &str) -> AppResult<Vec<(String, String)>> {
    let f = orgs::store::MemberFilter {
        is_active: Some(true),
        limit: 1000,
        ..Default::default()
    };
    Ok(orgs::store::list_members(c, org, &f)?
        .into_iter()
        .map(|m| (m.user.id, m.user.name))
        .collect())
}

/// Display names of clients by id, in one query.
pub(super) fn client_names(
    c: &mut DbConn,
    org: &str,
    ids: Vec<String>,
) -> AppResult<HashMap<String, String>> {
    Ok(clients::store::find_many(c, org, &ids)?
        .into_iter()
        .map(|r| (r.id, r.display_name))
        .collect())
}

/// A client's display name (empty when there is none), as a form shows the client it names.
pub(super) fn client_name(c: &mut DbConn, org: &str, id: Option<&str>) -> AppResult<String> {
    Ok(id
        .filter(|x| !x.is_empty())
        .map(|cid| clients::store::find(c, org, cid))
        .transpose()?
        .flatten()
        .map(|x| x.display_name)
        .unwrap_or_default())
}

/// The owner a sales figure or list covers: a user without `oversee` sees only their own
/// deals whatever they ask; "me" is the caller.
pub(super) fn owner_of(scope: &Scope, asked: Option<String>) -> Option<String> {
    let access = scope.access("opportunity");
    if !access.oversee {
        return Some(access.user_id);
    }
    asked.map(|o| if o == "me" { access.user_id } else { o })
}

/// Sales reports sum deals: they need the report right and the right to read deals (a
/// marketer's report right is for client and segment figures, not the pipeline).
pub fn require_reports(scope: &Scope) -> AppResult<()> {
    scope.require("report", "read")?;
    scope.require("opportunity", "read")
}

/// What the sales reports may be narrowed by: the pipelines, and the people (for those who
/// may see others' deals; empty otherwise).
pub struct Filters {
    pub pipelines: Vec<PipelineView>,
    pub owners: Vec<(String, String)>,
}

pub async fn filters(scope: &Scope) -> AppResult<Filters> {
    require_reports(scope)?;
    let oversee = scope.access("opportunity").oversee;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            Ok(Filters {
                pipelines: service::pipelines(c, &org)?,
                owners: if oversee {
                    members(c, &org)?
                } else {
                    Vec::new()
                },
            })
        })
        .await
}

/// The forecast's question: which pipeline and owner, from which month, for how many.
pub struct ForecastQuery {
    pub pipeline: Option<String>,
    pub owner: Option<String>,
    /// The first month; this month when `None`.
    pub from: Option<NaiveDate>,
    pub months: u32,
}

/// The forecast by month in the organization's currency and others, and stage rates.
pub async fn forecast(scope: &Scope, q: ForecastQuery) -> AppResult<Forecast> {
    require_reports(scope)?;
    let filter = analytics::Scope {
        pipeline_id: q.pipeline,
        owner: owner_of(scope, q.owner),
    };
    let org = scope.org_id.clone();
    // The caller's today (UTC for the API).
    let today = scope.local.today();
    scope
        .read(move |c| {
            let currency = super::deals::currency_of(c, &org)?;
            let from = q.from.unwrap_or(today);
            analytics::forecast(c, &org, &filter, from, q.months, &currency)
        })
        .await
}

/// The performance report's question; the last 90 days up to today by default.
pub struct PerformanceQuery {
    pub pipeline: Option<String>,
    pub owner: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// Won and lost deals per rep (and the team), and the time deals spend in each stage.
pub async fn performance(scope: &Scope, q: PerformanceQuery) -> AppResult<Performance> {
    require_reports(scope)?;
    let to = q.to.unwrap_or_else(|| scope.local.today());
    let from = q.from.unwrap_or(to - Duration::days(90));
    if from > to {
        return Err(AppError::invalid(
            "from",
            "The end date is before the start date: pick an end on or after the start.",
        ));
    }
    let filter = analytics::Scope {
        pipeline_id: q.pipeline,
        owner: owner_of(scope, q.owner),
    };
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            // why: every member, active or not, so a rep who left is still named by their
            // won deals rather than shown as "Unassigned".
            let f = orgs::store::MemberFilter {
                limit: 10_000,
                ..Default::default()
            };
            let names: BTreeMap<String, String> = orgs::store::list_members(c, &org, &f)?
                .into_iter()
                .map(|m| (m.user.id, m.user.name))
                .collect();
            analytics::performance(c, &org, &filter, from, to, &names)
        })
        .await
}
