//! Forecast and performance figures. Sums run in SQL as integers (cents, and
//! cents × percent for weighted values) grouped by day and currency; months and
//! rates are computed here with `rust_decimal`, so no float touches money and both
//! backends group alike. Totals stay per currency: amounts in different currencies
//! are never added together.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text, Timestamp};
use rust_decimal::Decimal;
use serde::Serialize;

use super::rollup::{bind_all, where_sql, Filter};
use super::store;
use crate::db::DbConn;
use crate::error::AppResult;

/// Deals at or above this probability count as "commit".
pub const COMMIT_PROBABILITY: i32 = 70;

#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub pipeline_id: Option<String>,
    pub owner: Option<String>,
}

#[derive(QueryableByName)]
struct DayOpen {
    #[diesel(sql_type = Text)]
    day: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    best: i64,
    #[diesel(sql_type = BigInt)]
    weighted_x100: i64,
    #[diesel(sql_type = BigInt)]
    commit_cents: i64,
    #[diesel(sql_type = BigInt)]
    deals: i64,
}

#[derive(QueryableByName)]
struct DayWon {
    #[diesel(sql_type = Text)]
    day: String,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    won: i64,
}

/// One month of the forecast, in one currency. Amounts are decimal strings.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForecastMonth {
    /// `2026-01`.
    pub month: String,
    pub currency: String,
    pub open_deals: i64,
    pub weighted: Decimal,
    pub best_case: Decimal,
    pub commit: Decimal,
    pub closed_won: Decimal,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageRate {
    pub stage_id: String,
    pub stage: String,
    pub probability: i32,
    /// Closed deals that passed through the stage.
    pub closed_deals: i64,
    /// Share of those that were won, in percent (null without closed deals).
    pub historical_win_rate: Option<Decimal>,
}

/// The weighted forecast by month and currency, and the stages' historical win rates.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    /// The first month, `2026-01`.
    pub from: String,
    pub months: Vec<ForecastMonth>,
    pub stages: Vec<StageRate>,
}

fn month_start(d: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d)
}

pub fn add_months(d: NaiveDate, n: u32) -> NaiveDate {
    d.checked_add_months(chrono::Months::new(n)).unwrap_or(d)
}

/// Rounds to `dp` places and always shows them ("100.0", not "100").
fn fixed(d: Decimal, dp: u32) -> Decimal {
    let mut r = d.round_dp(dp);
    r.rescale(dp);
    r
}

fn cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

/// The weighted pipeline and best case / commit / closed-won per month from `from`'s month.
pub fn forecast(
    conn: &mut DbConn,
    org_id: &str,
    scope: &Scope,
    from: NaiveDate,
    months: u32,
    default_currency: &str,
) -> AppResult<Forecast> {
    let start = month_start(from);
    let end = add_months(start, months) - chrono::Duration::days(1);
    let filters = |status: &'static str| {
        let mut f = vec![
            Filter::Eq("status", status),
            Filter::Gte("close_day", start.format("%Y-%m-%d").to_string()),
            Filter::Lte("close_day", end.format("%Y-%m-%d").to_string()),
        ];
        if let Some(p) = scope.pipeline_id.as_deref() {
            f.push(Filter::Eq("pipeline_id", p));
        }
        if let Some(o) = scope.owner.as_deref() {
            f.push(Filter::Eq("assigned_to", o));
        }
        f
    };
    let open_filters = filters("open");
    let open_sql = format!(
        "SELECT close_day AS day, currency, CAST(SUM(value_cents) AS BIGINT) AS best, CAST(SUM(weighted_x100) AS BIGINT) AS weighted_x100, \
         CAST(SUM(commit_cents) AS BIGINT) AS commit_cents, CAST(SUM(deals) AS BIGINT) AS deals \
         FROM opportunity_rollup WHERE organization_id = $1{} GROUP BY close_day, currency",
        where_sql(&open_filters, 2)
    );
    let open: Vec<DayOpen> = bind_all(
        diesel::sql_query(open_sql)
            .into_boxed()
            .bind::<Text, _>(org_id),
        &open_filters,
    )
    .load(conn)?;
    let won_filters = filters("won");
    let won_sql = format!(
        "SELECT close_day AS day, currency, CAST(SUM(value_cents) AS BIGINT) AS won \
         FROM opportunity_rollup WHERE organization_id = $1{} GROUP BY close_day, currency",
        where_sql(&won_filters, 2)
    );
    let won: Vec<DayWon> = bind_all(
        diesel::sql_query(won_sql)
            .into_boxed()
            .bind::<Text, _>(org_id),
        &won_filters,
    )
    .load(conn)?;
    let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap_or(start);

    let mut buckets: BTreeMap<(String, String), ForecastMonth> = BTreeMap::new();
    let key = |d: NaiveDate, c: &str| (d.format("%Y-%m").to_string(), c.to_string());
    let blank = |month: &str, currency: &str| ForecastMonth {
        month: month.into(),
        currency: currency.into(),
        open_deals: 0,
        weighted: Decimal::ZERO,
        best_case: Decimal::ZERO,
        commit: Decimal::ZERO,
        closed_won: Decimal::ZERO,
    };
    let mut currencies: Vec<String> = vec![default_currency.to_string()];
    for r in open
        .iter()
        .map(|r| &r.currency)
        .chain(won.iter().map(|r| &r.currency))
    {
        if !currencies.contains(r) {
            currencies.push(r.clone());
        }
    }
    for i in 0..months {
        let m = add_months(start, i);
        for c in &currencies {
            let k = key(m, c);
            buckets.insert(k.clone(), blank(&k.0, c));
        }
    }
    for r in open {
        let d = day(&r.day);
        let b = buckets
            .entry(key(d, &r.currency))
            .or_insert_with(|| blank(&d.format("%Y-%m").to_string(), &r.currency));
        b.best_case += cents(r.best);
        b.weighted += Decimal::new(r.weighted_x100, 4);
        b.commit += cents(r.commit_cents);
        b.open_deals += r.deals;
    }
    for r in won {
        let d = day(&r.day);
        let b = buckets
            .entry(key(d, &r.currency))
            .or_insert_with(|| blank(&d.format("%Y-%m").to_string(), &r.currency));
        b.closed_won += cents(r.won);
    }
    let mut months_out: Vec<ForecastMonth> = buckets.into_values().collect();
    months_out.sort_by(|a, b| {
        (
            a.month.as_str(),
            currencies.iter().position(|c| *c == a.currency),
        )
            .cmp(&(
                b.month.as_str(),
                currencies.iter().position(|c| *c == b.currency),
            ))
    });
    let stages = match &scope.pipeline_id {
        Some(p) => win_rates(conn, org_id, p)?,
        None => match store::list_pipelines(conn, org_id)?.first() {
            Some(p) => win_rates(conn, org_id, &p.id)?,
            None => Vec::new(),
        },
    };
    Ok(Forecast {
        from: start.format("%Y-%m").to_string(),
        months: months_out,
        stages,
    })
}

#[derive(QueryableByName)]
struct StageOutcome {
    #[diesel(sql_type = Text)]
    stage_id: String,
    #[diesel(sql_type = BigInt)]
    won: i64,
    #[diesel(sql_type = BigInt)]
    closed: i64,
}

type WinRateCache = Mutex<HashMap<(String, String), (Instant, Vec<StageRate>)>>;

/// Historical win rates change only when deals close or reopen, but computing them reads
/// every closed deal's history; so they are kept per process for a minute, and dropped at
/// once when a deal of the organization closes or reopens here.
fn cache() -> &'static WinRateCache {
    static CACHE: OnceLock<WinRateCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

const WIN_RATE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

pub fn forget_win_rates(org_id: &str) {
    if let Ok(mut c) = cache().lock() {
        c.retain(|(org, _), _| org != org_id);
    }
}

/// For each open stage: of the closed deals that ever entered it, how many were won.
pub fn win_rates(conn: &mut DbConn, org_id: &str, pipeline_id: &str) -> AppResult<Vec<StageRate>> {
    let key = (org_id.to_string(), pipeline_id.to_string());
    if let Ok(c) = cache().lock() {
        if let Some((at, rates)) = c.get(&key) {
            if at.elapsed() < WIN_RATE_TTL {
                return Ok(rates.clone());
            }
        }
    }
    let rates = compute_win_rates(conn, org_id, pipeline_id)?;
    if let Ok(mut c) = cache().lock() {
        c.insert(key, (Instant::now(), rates.clone()));
    }
    Ok(rates)
}

fn compute_win_rates(
    conn: &mut DbConn,
    org_id: &str,
    pipeline_id: &str,
) -> AppResult<Vec<StageRate>> {
    let outcomes: Vec<StageOutcome> = diesel::sql_query(
        "SELECT h.to_stage_id AS stage_id, \
         CAST(COUNT(DISTINCT CASE WHEN o.status = 'won' THEN o.id END) AS BIGINT) AS won, \
         CAST(COUNT(DISTINCT o.id) AS BIGINT) AS closed \
         FROM opportunity_stage_history h JOIN opportunities o ON o.id = h.opportunity_id \
         WHERE h.organization_id = $1 AND o.pipeline_id = $2 AND o.status IN ('won', 'lost') AND o.deleted_at IS NULL \
         GROUP BY h.to_stage_id",
    )
    .bind::<Text, _>(org_id)
    .bind::<Text, _>(pipeline_id)
    .load(conn)?;
    Ok(store::stages_of(conn, pipeline_id)?
        .into_iter()
        .filter(|s| s.kind == "open" && s.is_active)
        .map(|s| {
            let o = outcomes.iter().find(|o| o.stage_id == s.id);
            let closed = o.map_or(0, |o| o.closed);
            StageRate {
                historical_win_rate: o
                    .filter(|o| o.closed > 0)
                    .map(|o| fixed(Decimal::from(o.won * 100) / Decimal::from(o.closed), 1)),
                closed_deals: closed,
                stage_id: s.id,
                stage: s.name,
                probability: s.probability,
            }
        })
        .collect())
}

#[derive(QueryableByName)]
struct ClosedDeal {
    #[diesel(sql_type = Nullable<Text>)]
    owner: Option<String>,
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    value_cents: i64,
    #[diesel(sql_type = Timestamp)]
    created_at: NaiveDateTime,
    #[diesel(sql_type = Date)]
    actual_close: NaiveDate,
}

#[derive(QueryableByName)]
struct Move {
    #[diesel(sql_type = Text)]
    opportunity_id: String,
    #[diesel(sql_type = Text)]
    to_stage_id: String,
    #[diesel(sql_type = Timestamp)]
    moved_at: NaiveDateTime,
    #[diesel(sql_type = Nullable<Text>)]
    owner: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepFigures {
    /// User id, or null for unassigned deals; "team" rows carry `team: true`.
    pub user_id: Option<String>,
    pub name: String,
    pub team: bool,
    pub currency: String,
    pub won_deals: i64,
    pub lost_deals: i64,
    pub won_value: Decimal,
    pub win_rate: Option<Decimal>,
    pub average_deal_size: Option<Decimal>,
    /// Average days from creation to a won close.
    pub sales_cycle_days: Option<Decimal>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageTime {
    pub stage_id: String,
    pub stage: String,
    /// Average days a deal stayed in the stage before moving on, over moves out in the period.
    pub average_days: Option<Decimal>,
    pub moves: i64,
}

/// Won and lost deals per rep and for the team, and the time deals spend in each stage.
/// Amounts and rates are decimal strings.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Performance {
    /// The first day, YYYY-MM-DD.
    pub from: String,
    /// The last day, YYYY-MM-DD.
    pub to: String,
    pub reps: Vec<RepFigures>,
    pub time_in_stage: Vec<StageTime>,
}

fn finish(r: &mut RepFigures, cycle_days_total: i64) {
    let closed = r.won_deals + r.lost_deals;
    r.win_rate =
        (closed > 0).then(|| fixed(Decimal::from(r.won_deals * 100) / Decimal::from(closed), 1));
    r.average_deal_size =
        (r.won_deals > 0).then(|| fixed(r.won_value / Decimal::from(r.won_deals), 2));
    r.sales_cycle_days = (r.won_deals > 0).then(|| {
        fixed(
            Decimal::from(cycle_days_total) / Decimal::from(r.won_deals),
            1,
        )
    });
}

/// Per rep and for the team: what closed between `from` and `to` (inclusive).
pub fn performance(
    conn: &mut DbConn,
    org_id: &str,
    scope: &Scope,
    from: NaiveDate,
    to: NaiveDate,
    names: &BTreeMap<String, String>,
) -> AppResult<Performance> {
    let deals: Vec<ClosedDeal> = diesel::sql_query(
        "SELECT assigned_to AS owner, currency, status, value_cents, created_at, actual_close \
         FROM opportunities WHERE organization_id = $1 AND status IN ('won', 'lost') AND deleted_at IS NULL \
         AND actual_close >= $2 AND actual_close <= $3 AND ($4 IS NULL OR pipeline_id = $4) AND ($5 IS NULL OR assigned_to = $5)",
    )
    .bind::<Text, _>(org_id)
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .bind::<Nullable<Text>, _>(scope.pipeline_id.as_deref())
    .bind::<Nullable<Text>, _>(scope.owner.as_deref())
    .load(conn)?;
    let mut per: BTreeMap<(Option<String>, String), (RepFigures, i64)> = BTreeMap::new();
    let mut team: BTreeMap<String, (RepFigures, i64)> = BTreeMap::new();
    for d in &deals {
        let cycle = (d.actual_close - d.created_at.date()).num_days().max(0);
        for entry in [
            per.entry((d.owner.clone(), d.currency.clone()))
                .or_insert_with(|| {
                    (
                        RepFigures {
                            user_id: d.owner.clone(),
                            name: d
                                .owner
                                .as_ref()
                                .and_then(|o| names.get(o).cloned())
                                .unwrap_or_else(|| "Unassigned".into()),
                            currency: d.currency.clone(),
                            ..Default::default()
                        },
                        0,
                    )
                }),
            team.entry(d.currency.clone()).or_insert_with(|| {
                (
                    RepFigures {
                        name: "Team".into(),
                        team: true,
                        currency: d.currency.clone(),
                        ..Default::default()
                    },
                    0,
                )
            }),
        ] {
            if d.status == "won" {
                entry.0.won_deals += 1;
                entry.0.won_value += cents(d.value_cents);
                entry.1 += cycle;
            } else {
                entry.0.lost_deals += 1;
            }
        }
    }
    let mut reps: Vec<RepFigures> = per
        .into_values()
        .chain(team.into_values())
        .map(|(mut r, cycle)| {
            finish(&mut r, cycle);
            r
        })
        .collect();
    reps.sort_by(|a, b| {
        a.team
            .cmp(&b.team)
            .then(b.won_value.cmp(&a.won_value))
            .then(a.name.cmp(&b.name))
    });

    // Time in stage: for each move out of a stage within the period, the time since entering it.
    let moves: Vec<Move> = diesel::sql_query(
        "SELECT h.opportunity_id, h.to_stage_id, h.moved_at, o.assigned_to AS owner FROM opportunity_stage_history h \
         JOIN opportunities o ON o.id = h.opportunity_id \
         WHERE h.organization_id = $1 AND h.opportunity_id IN ( \
           SELECT opportunity_id FROM opportunity_stage_history WHERE organization_id = $1 AND moved_at >= $2 AND moved_at <= $3) \
         AND ($4 IS NULL OR o.pipeline_id = $4) AND ($5 IS NULL OR o.assigned_to = $5) \
         ORDER BY h.opportunity_id, h.moved_at, h.id",
    )
    .bind::<Text, _>(org_id)
    .bind::<Timestamp, _>(from.and_hms_opt(0, 0, 0).unwrap_or_default())
    .bind::<Timestamp, _>(to.and_hms_opt(23, 59, 59).unwrap_or_default())
    .bind::<Nullable<Text>, _>(scope.pipeline_id.as_deref())
    .bind::<Nullable<Text>, _>(scope.owner.as_deref())
    .load(conn)?;
    let mut durations: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let period = (
        from.and_hms_opt(0, 0, 0).unwrap_or_default(),
        to.and_hms_opt(23, 59, 59).unwrap_or_default(),
    );
    for pair in moves.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.opportunity_id != b.opportunity_id || b.moved_at < period.0 || b.moved_at > period.1 {
            continue;
        }
        let _ = &a.owner;
        let e = durations.entry(a.to_stage_id.clone()).or_insert((0, 0));
        e.0 += (b.moved_at - a.moved_at).num_seconds();
        e.1 += 1;
    }
    let stages = match &scope.pipeline_id {
        Some(p) => store::stages_of(conn, p)?,
        None => store::stages_of_org(conn, org_id)?,
    };
    let time_in_stage = stages
        .into_iter()
        .filter(|s| s.kind == "open")
        .map(|s| {
            let d = durations.get(&s.id).copied().unwrap_or((0, 0));
            StageTime {
                average_days: (d.1 > 0)
                    .then(|| fixed(Decimal::from(d.0) / Decimal::from(d.1 * 86_400), 1)),
                moves: d.1,
                stage_id: s.id,
                stage: s.name,
            }
        })
        .collect();
    Ok(Performance {
        from: from.to_string(),
        to: to.to_string(),
        reps,
        time_in_stage,
    })
}
