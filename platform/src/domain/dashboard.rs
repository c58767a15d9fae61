//! The dashboard's figures, each read by one bounded query: deal sums from the running
//! totals (`opportunity_rollup`, a few rows per owner, stage and close day rather than
//! every deal), deal lists from index ranges with a limit, activity counts from the
//! `interactions_activity_idx` range of one week. No query here reads every client or
//! every deal of the organization, so the page costs the same at 1,000 clients as at
//! 1,000,000.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use super::pipeline::OpportunityRow;
use crate::db::schema::{interactions, opportunities};
use crate::db::DbConn;
use crate::error::AppResult;

/// Lists stop counting here ("100+"): a count on a dashboard is a hint, not a report, and
/// a capped count costs the same at any size.
pub const COUNT_CAP: i64 = 100;

/// The calendar periods the figures compare, from one "today".
#[derive(Debug, Clone, Copy)]
pub struct Periods {
    pub today: NaiveDate,
    pub month_start: NaiveDate,
    pub month_end: NaiveDate,
    pub last_month_start: NaiveDate,
    pub last_month_end: NaiveDate,
    /// Last month up to the same day of the month as today (for a fair comparison).
    pub last_month_to_date: NaiveDate,
    pub quarter_start: NaiveDate,
    pub quarter_end: NaiveDate,
    /// Monday of this week, 00:00.
    pub week_start: NaiveDateTime,
}

impl Periods {
    pub fn of(now: NaiveDateTime) -> Self {
        let today = now.date();
        let month_start = today.with_day(1).unwrap_or(today);
        let next_month = month_start + chrono::Months::new(1);
        let last_month_start = month_start - chrono::Months::new(1);
        let quarter_start =
            NaiveDate::from_ymd_opt(today.year(), (today.month0() / 3) * 3 + 1, 1).unwrap_or(today);
        let quarter_end = quarter_start + chrono::Months::new(3) - Duration::days(1);
        let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
        Self {
            today,
            month_start,
            month_end: next_month - Duration::days(1),
            last_month_start,
            last_month_end: month_start - Duration::days(1),
            last_month_to_date: (last_month_start + Duration::days(i64::from(today.day0())))
                .min(month_start - Duration::days(1)),
            quarter_start,
            quarter_end,
            week_start: monday.and_hms_opt(0, 0, 0).unwrap_or(now),
        }
    }
}

/// One owner's deal sums in one currency. Values in cents; `weighted_*` in cents × percent.
#[derive(Debug, Clone, QueryableByName)]
pub struct OwnerSums {
    /// '' for deals without an owner.
    #[diesel(sql_type = Text)]
    pub assigned_to: String,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = BigInt)]
    pub open_deals: i64,
    #[diesel(sql_type = BigInt)]
    pub open_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub weighted_month_x100: i64,
    #[diesel(sql_type = BigInt)]
    pub weighted_quarter_x100: i64,
    #[diesel(sql_type = BigInt)]
    pub won_month_deals: i64,
    #[diesel(sql_type = BigInt)]
    pub won_month_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub won_last_month_deals: i64,
    #[diesel(sql_type = BigInt)]
    pub won_last_month_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub won_last_to_date_cents: i64,
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Deal sums per owner and currency (only `owner`'s when given), from the running totals.
pub fn owner_sums(
    conn: &mut DbConn,
    org_id: &str,
    owner: Option<&str>,
    p: &Periods,
) -> AppResult<Vec<OwnerSums>> {
    // why: the dates are inlined (formatted by chrono, never user input) so the only
    // placeholders are the WHERE clause's, numbered in the order SQLite assigns them.
    let between =
        |a: NaiveDate, b: NaiveDate| format!("close_day BETWEEN '{}' AND '{}'", day(a), day(b));
    let (month, quarter, last, last_to_date) = (
        between(p.month_start, p.month_end),
        between(p.quarter_start, p.quarter_end),
        between(p.last_month_start, p.last_month_end),
        between(p.last_month_start, p.last_month_to_date),
    );
    let sum = |cond: &str, col: &str, name: &str| {
        format!(
            "CAST(COALESCE(SUM(CASE WHEN {cond} THEN {col} ELSE 0 END), 0) AS BIGINT) AS {name}"
        )
    };
    let sql =
        format!(
        "SELECT assigned_to, currency, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM opportunity_rollup \
         WHERE organization_id = $1 AND status IN ('open', 'won'){} GROUP BY assigned_to, currency",
        sum("status = 'open'", "deals", "open_deals"),
        sum("status = 'open'", "value_cents", "open_cents"),
        sum(&format!("status = 'open' AND {month}"), "weighted_x100", "weighted_month_x100"),
        sum(&format!("status = 'open' AND {quarter}"), "weighted_x100", "weighted_quarter_x100"),
        sum(&format!("status = 'won' AND {month}"), "deals", "won_month_deals"),
        sum(&format!("status = 'won' AND {month}"), "value_cents", "won_month_cents"),
        sum(&format!("status = 'won' AND {last}"), "deals", "won_last_month_deals"),
        sum(&format!("status = 'won' AND {last}"), "value_cents", "won_last_month_cents"),
        sum(&format!("status = 'won' AND {last_to_date}"), "value_cents", "won_last_to_date_cents"),
        if owner.is_some() { " AND assigned_to = $2" } else { "" },
    );
    let mut q = diesel::sql_query(sql).into_boxed().bind::<Text, _>(org_id);
    if let Some(o) = owner {
        q = q.bind::<Text, _>(o);
    }
    Ok(q.load(conn)?)
}

/// Open deals expected to close from today to `until`, soonest first, and how many there
/// are (up to [`COUNT_CAP`]).
pub fn closing_soon(
    conn: &mut DbConn,
    org_id: &str,
    owner: Option<&str>,
    today: NaiveDate,
    until: NaiveDate,
    limit: i64,
) -> AppResult<(Vec<OpportunityRow>, i64)> {
    let base = || {
        let mut q = opportunities::table
            .filter(opportunities::organization_id.eq(org_id))
            .filter(opportunities::deleted_at.is_null())
            .filter(opportunities::status.eq("open"))
            .filter(opportunities::expected_close.between(today, until))
            .into_boxed();
        if let Some(o) = owner {
            q = q.filter(opportunities::assigned_to.eq(o));
        }
        q
    };
    let rows = base()
        .order((opportunities::expected_close.asc(), opportunities::id.asc()))
        .limit(limit)
        .select(OpportunityRow::as_select())
        .load(conn)?;
    let count = capped_count(
        conn,
        "opportunities WHERE organization_id = $1 AND deleted_at IS NULL AND status = 'open' \
         AND expected_close >= $2 AND expected_close <= $3",
        &[Bind::Text(org_id), Bind::Date(today), Bind::Date(until)],
        owner,
        COUNT_CAP,
    )?;
    Ok((rows, count))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

enum Bind<'a> {
    Text(&'a str),
    Date(NaiveDate),
    Time(NaiveDateTime),
}

/// `COUNT(*)` of at most `cap` rows of `from_where` (binds in order, then the owner when
/// given): counting stops at the cap instead of walking a large range.
fn capped_count(
    conn: &mut DbConn,
    from_where: &str,
    binds: &[Bind<'_>],
    owner: Option<&str>,
    cap: i64,
) -> AppResult<i64> {
    let owner_sql = owner.map_or(String::new(), |_| {
        format!(" AND assigned_to = ${}", binds.len() + 1)
    });
    let sql = format!(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT 1 AS one FROM {from_where}{owner_sql} LIMIT {cap}) AS capped"
    );
    let mut q = diesel::sql_query(sql).into_boxed();
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind::<Text, _>(*t),
            Bind::Date(d) => q.bind::<diesel::sql_types::Date, _>(*d),
            Bind::Time(t) => q.bind::<Timestamp, _>(*t),
        };
    }
    if let Some(o) = owner {
        q = q.bind::<Text, _>(o);
    }
    Ok(q.get_result::<Count>(conn)?.n)
}

/// Open deals of `pipeline_id` that entered their stage before `cutoff` (rotting), oldest
/// first, and how many there are (up to [`COUNT_CAP`]).
pub fn rotting(
    conn: &mut DbConn,
    org_id: &str,
    pipeline_id: &str,
    owner: Option<&str>,
    cutoff: NaiveDateTime,
    limit: i64,
) -> AppResult<(Vec<OpportunityRow>, i64)> {
    let base = || {
        let mut q = opportunities::table
            .filter(opportunities::organization_id.eq(org_id))
            .filter(opportunities::deleted_at.is_null())
            .filter(opportunities::status.eq("open"))
            .filter(opportunities::stage_entered_at.lt(cutoff))
            .filter(opportunities::pipeline_id.eq(pipeline_id))
            .into_boxed();
        if let Some(o) = owner {
            q = q.filter(opportunities::assigned_to.eq(o));
        }
        q
    };
    let rows = base()
        .order((
            opportunities::stage_entered_at.asc(),
            opportunities::id.asc(),
        ))
        .limit(limit)
        .select(OpportunityRow::as_select())
        .load(conn)?;
    let count = rotting_count(conn, org_id, pipeline_id, cutoff, owner)?;
    Ok((rows, count))
}

fn rotting_count(
    conn: &mut DbConn,
    org_id: &str,
    pipeline_id: &str,
    cutoff: NaiveDateTime,
    owner: Option<&str>,
) -> AppResult<i64> {
    capped_count(
        conn,
        "opportunities WHERE organization_id = $1 AND deleted_at IS NULL AND status = 'open' \
         AND pipeline_id = $2 AND stage_entered_at < $3",
        &[
            Bind::Text(org_id),
            Bind::Text(pipeline_id),
            Bind::Time(cutoff),
        ],
        owner,
        COUNT_CAP,
    )
}

/// Calls, meetings, e-mails and notes a person logged (completed) in a window.
#[derive(Debug, Clone, QueryableByName)]
pub struct ActivityCount {
    #[diesel(sql_type = Nullable<Text>)]
    pub user_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub this_week: i64,
    #[diesel(sql_type = BigInt)]
    pub last_week: i64,
}

/// Activities per user this week (Monday to now) and over the same stretch of last week;
/// only `user`'s when given.
pub fn activity_counts(
    conn: &mut DbConn,
    org_id: &str,
    user: Option<&str>,
    week_start: NaiveDateTime,
    now: NaiveDateTime,
) -> AppResult<Vec<ActivityCount>> {
    let last_start = week_start - Duration::days(7);
    let last_end = now - Duration::days(7);
    // why: placeholders are numbered in the order they first appear, as SQLite assigns
    // them, so one bind order serves both backends.
    let sql = format!(
        "SELECT user_id, \
         CAST(COALESCE(SUM(CASE WHEN occurred_at >= $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS this_week, \
         CAST(COALESCE(SUM(CASE WHEN occurred_at < $1 AND occurred_at <= $2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS last_week \
         FROM interactions WHERE organization_id = $3 AND occurred_at >= $4 AND occurred_at <= $5 \
         AND deleted_at IS NULL AND status = 'completed' AND kind IN ('call', 'meeting', 'email', 'sms', 'note') \
         AND user_id {} GROUP BY user_id",
        if user.is_some() { "= $6" } else { "IS NOT NULL" }
    );
    let mut q = diesel::sql_query(sql)
        .into_boxed()
        .bind::<Timestamp, _>(week_start)
        .bind::<Timestamp, _>(last_end)
        .bind::<Text, _>(org_id)
        .bind::<Timestamp, _>(last_start)
        .bind::<Timestamp, _>(now);
    if let Some(u) = user {
        q = q.bind::<Text, _>(u);
    }
    Ok(q.load(conn)?)
}

/// Clients created since `since` (the caller's own when `owner` is given), counted up to
/// [`NEW_CLIENTS_CAP`]: "new clients" stays a bounded read after a large import.
pub fn new_clients_since(
    conn: &mut DbConn,
    org_id: &str,
    since: NaiveDateTime,
    owner: Option<&str>,
) -> AppResult<i64> {
    capped_count(
        conn,
        "clients WHERE organization_id = $1 AND deleted_at IS NULL AND created_at >= $2",
        &[Bind::Text(org_id), Bind::Time(since)],
        owner,
        NEW_CLIENTS_CAP,
    )
}

/// Where "new clients" stops counting.
pub const NEW_CLIENTS_CAP: i64 = 1000;

/// Overdue open tasks per assignee (due before today), for the team table.
#[derive(Debug, Clone, QueryableByName)]
pub struct OverdueCount {
    #[diesel(sql_type = Nullable<Text>)]
    pub assignee_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub overdue: i64,
}

pub fn overdue_tasks(
    conn: &mut DbConn,
    org_id: &str,
    assignees: &[String],
    start: NaiveDateTime,
) -> AppResult<Vec<OverdueCount>> {
    Ok(interactions::table
        .filter(interactions::organization_id.eq(org_id))
        .filter(interactions::assignee_id.eq_any(assignees))
        .filter(interactions::status.eq("scheduled"))
        .filter(interactions::due_at.lt(start))
        .filter(interactions::kind.eq("task"))
        .filter(interactions::deleted_at.is_null())
        .group_by(interactions::assignee_id)
        .select((interactions::assignee_id, diesel::dsl::count_star()))
        .load::<(Option<String>, i64)>(conn)?
        .into_iter()
        .map(|(assignee_id, overdue)| OverdueCount {
            assignee_id,
            overdue,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_calendar() {
        let now = NaiveDate::from_ymd_opt(2026, 12, 3)
            .unwrap()
            .and_hms_opt(15, 0, 0)
            .unwrap();
        let p = Periods::of(now);
        assert_eq!(p.month_start.to_string(), "2026-12-01");
        assert_eq!(p.month_end.to_string(), "2026-12-31");
        assert_eq!(p.last_month_start.to_string(), "2026-11-01");
        assert_eq!(p.last_month_end.to_string(), "2026-11-30");
        assert_eq!(p.last_month_to_date.to_string(), "2026-11-03");
        let end_of_march = NaiveDate::from_ymd_opt(2027, 3, 31)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap();
        assert_eq!(
            Periods::of(end_of_march).last_month_to_date.to_string(),
            "2027-02-28"
        );
        assert_eq!(p.quarter_start.to_string(), "2026-10-01");
        assert_eq!(p.quarter_end.to_string(), "2026-12-31");
        assert_eq!(p.week_start.to_string(), "2026-11-30 00:00:00");
    }
}
