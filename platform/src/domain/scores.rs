//! Client scores: engagement (0–100), lifetime value and churn risk (0–100), each with the
//! factors that produced it. Computed nightly for a whole organization and on demand for
//! one client: the database aggregates each page of clients in one query (correlated
//! subqueries on indexed columns: interactions by client and time, deals by client), and
//! the arithmetic below turns each client's aggregates into scores.
//!
//! The models, and their assumptions (also in ARCHITECTURE.md, "Client scores"):
//! - **Engagement** adds recency of the last contact (up to 40 points, none after 180
//!   days), frequency in the last 90 days (25 at six contacts), meetings (10 at two),
//!   contact the client started (15 at three inbound), and bulk e-mail opened or clicked
//!   in 90 days (10). Contact means a completed call, meeting, e-mail or note.
//! - **Lifetime value** is what the client has bought (won deals in the organization's
//!   currency; other currencies are not converted and not counted) plus what it is
//!   expected to buy over the next three years: its average order (or the organization's
//!   when it has none) × the organization's purchases per buying client per year × 3 ×
//!   the chance it stays (1 − churn risk). A client that never bought is expected to buy
//!   its open deals at the organization's win rate.
//! - **Churn risk** is rules-based while the organization has too little history to learn
//!   from: silence (10–40 points by days since the last contact), lost deals this quarter
//!   (15 each, up to 30), a contract ending within 60 days without a renewal deal (25),
//!   activity that stopped (10), low engagement (10); a client marked inactive is 100.
//!   Each rule that fires is a reason shown with the score.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Text, Timestamp};
use serde::Serialize;
use serde_json::{json, Value};

use crate::db::schema::{client_scores, score_runs};
use crate::db::{now, DbConn};
use crate::error::AppResult;

/// Clients aggregated per query.
const PAGE: i64 = 2_000;
/// The horizon of the expected future value, in years.
const HORIZON_YEARS: f64 = 3.0;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = client_scores)]
pub struct ScoreRow {
    pub client_id: String,
    pub organization_id: String,
    pub engagement: i32,
    pub lifetime_value_cents: i64,
    pub realised_cents: i64,
    pub currency: String,
    pub churn_risk: i32,
    pub factors: String,
    pub computed_at: NaiveDateTime,
    /// Inactive when computed: kept out of "at risk" lists by the index, not only the filter.
    pub inactive: bool,
    /// The client's owner ('' for none), kept by a trigger as clients are reassigned: a
    /// rep's "at risk" list reads their own entries of `client_scores_owner_risk` in order
    /// instead of the organization's, where a rep with few clients at risk met every other
    /// rep's first.
    pub owner: String,
}

impl ScoreRow {
    pub fn factors(&self) -> Value {
        serde_json::from_str(&self.factors).unwrap_or(Value::Null)
    }
}

/// One client's aggregates, as the page query answers them.
#[derive(Debug, Clone, QueryableByName)]
pub struct Inputs {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub owner: Option<String>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub last_contact: Option<NaiveDateTime>,
    #[diesel(sql_type = BigInt)]
    pub n30: i64,
    #[diesel(sql_type = BigInt)]
    pub n90: i64,
    #[diesel(sql_type = BigInt)]
    pub n365: i64,
    #[diesel(sql_type = BigInt)]
    pub meetings90: i64,
    #[diesel(sql_type = BigInt)]
    pub inbound90: i64,
    #[diesel(sql_type = BigInt)]
    pub engaged90: i64,
    #[diesel(sql_type = BigInt)]
    pub won_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub won_count: i64,
    #[diesel(sql_type = BigInt)]
    pub lost90: i64,
    #[diesel(sql_type = BigInt)]
    pub open_cents: i64,
    #[diesel(sql_type = Nullable<Date>)]
    pub contract_ends: Option<NaiveDate>,
}

/// What the organization's history says, for the lifetime value.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Average won deal, in minor units.
    pub average_order_cents: i64,
    /// Won deals per buying client per year (over the last year).
    pub purchases_per_year: f64,
    /// Won ÷ (won + lost), all time.
    pub win_rate: f64,
}

#[derive(QueryableByName)]
struct HistoryRow {
    #[diesel(sql_type = BigInt)]
    won_total: i64,
    #[diesel(sql_type = BigInt)]
    won_count: i64,
    #[diesel(sql_type = BigInt)]
    lost_count: i64,
    #[diesel(sql_type = BigInt)]
    won_last_year: i64,
    #[diesel(sql_type = BigInt)]
    buyers_last_year: i64,
}

/// Placeholder `i` (1-based) in the backend's syntax; numbered on both, so one value is
/// bound once however often the text uses it.
fn ph(c: &DbConn, i: usize) -> String {
    match c {
        DbConn::Sqlite(_) => format!("?{i}"),
        DbConn::Postgresql(_) => format!("${i}"),
    }
}

fn history(c: &mut DbConn, org: &str, currency: &str) -> QueryResult<History> {
    let (p1, p2, p3) = (ph(c, 1), ph(c, 2), ph(c, 3));
    let q = format!(
        "SELECT
           CAST(COALESCE(SUM(CASE WHEN status = 'won' AND currency = {p2} THEN value_cents ELSE 0 END), 0) AS BIGINT) AS won_total,
           CAST(COALESCE(SUM(CASE WHEN status = 'won' AND currency = {p2} THEN 1 ELSE 0 END), 0) AS BIGINT) AS won_count,
           CAST(COALESCE(SUM(CASE WHEN status = 'lost' THEN 1 ELSE 0 END), 0) AS BIGINT) AS lost_count,
           CAST(COALESCE(SUM(CASE WHEN status = 'won' AND actual_close >= {p3} THEN 1 ELSE 0 END), 0) AS BIGINT) AS won_last_year,
           CAST(COUNT(DISTINCT CASE WHEN status = 'won' AND actual_close >= {p3} THEN client_id END) AS BIGINT) AS buyers_last_year
         FROM opportunities WHERE organization_id = {p1} AND deleted_at IS NULL"
    );
    let year_ago = (now() - Duration::days(365)).date();
    let r: HistoryRow = diesel::sql_query(q)
        .bind::<Text, _>(org)
        .bind::<Text, _>(currency)
        .bind::<Date, _>(year_ago)
        .get_result(c)?;
    Ok(History {
        average_order_cents: if r.won_count > 0 {
            r.won_total / r.won_count
        } else {
            0
        },
        purchases_per_year: if r.buyers_last_year > 0 {
            r.won_last_year as f64 / r.buyers_last_year as f64
        } else {
            0.0
        },
        win_rate: if r.won_count + r.lost_count > 0 {
            r.won_count as f64 / (r.won_count + r.lost_count) as f64
        } else {
            0.0
        },
    })
}

/// The aggregates of a page of clients (after `after` in id order), or of the listed ones,
/// now.
fn inputs(
    c: &mut DbConn,
    org: &str,
    currency: &str,
    after: &str,
    only: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Inputs>> {
    inputs_as_of(c, org, currency, after, only, None, limit, now())
}

/// The aggregates of the listed clients as they stood at `at` (contacts and deals up to
/// then): what the churn model learns from.
pub fn inputs_at(
    c: &mut DbConn,
    org: &str,
    currency: &str,
    ids: &[String],
    at: NaiveDateTime,
) -> QueryResult<Vec<Inputs>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    inputs_as_of(c, org, currency, "", None, Some(ids), ids.len() as i64, at)
}

#[allow(clippy::too_many_arguments)]
fn inputs_as_of(
    c: &mut DbConn,
    org: &str,
    currency: &str,
    after: &str,
    only: Option<&str>,
    ids: Option<&[String]>,
    limit: i64,
    t: NaiveDateTime,
) -> QueryResult<Vec<Inputs>> {
    let p: Vec<String> = (1..=10).map(|i| ph(c, i)).collect();
    let contact = "i.client_id = c.id AND i.deleted_at IS NULL AND i.status = 'completed' \
                   AND i.kind NOT IN ('task', 'event')";
    let (org_p, after_p, d30, d90, d365, at, cur, d60, lim, only_p) = (
        &p[0], &p[1], &p[2], &p[3], &p[4], &p[5], &p[6], &p[7], &p[8], &p[9],
    );
    let deal = format!("o.client_id = c.id AND o.deleted_at IS NULL AND o.created_at <= {at}");
    let mut narrow = format!("c.id > {after_p} AND ({only_p} = '' OR c.id = {only_p})");
    // A listed snapshot keeps clients trashed since (the caller chose them as of `at`).
    let live = if ids.is_some() {
        "1 = 1"
    } else {
        "c.deleted_at IS NULL"
    };
    if let Some(ids) = ids {
        // The ids are this organization's own (read from clients a moment before); quoted
        // all the same.
        let list: Vec<String> = ids.iter().map(|i| crate::domain::reports::lit(i)).collect();
        narrow.push_str(&format!(" AND c.id IN ({})", list.join(", ")));
    }
    let q = format!(
        "SELECT c.id, c.status, c.assigned_to AS owner,
           (SELECT max(i.occurred_at) FROM interactions i WHERE {contact} AND i.occurred_at <= {at}) AS last_contact,
           (SELECT count(*) FROM interactions i WHERE {contact} AND i.occurred_at >= {d30} AND i.occurred_at <= {at}) AS n30,
           (SELECT count(*) FROM interactions i WHERE {contact} AND i.occurred_at >= {d90} AND i.occurred_at <= {at}) AS n90,
           (SELECT count(*) FROM interactions i WHERE {contact} AND i.occurred_at >= {d365} AND i.occurred_at <= {at}) AS n365,
           (SELECT count(*) FROM interactions i WHERE {contact} AND i.kind = 'meeting' AND i.occurred_at >= {d90} AND i.occurred_at <= {at}) AS meetings90,
           (SELECT count(*) FROM interactions i WHERE {contact} AND i.direction = 'inbound' AND i.occurred_at >= {d90} AND i.occurred_at <= {at}) AS inbound90,
           (SELECT count(*) FROM send_recipients r WHERE r.client_id = c.id AND ((r.opened_at >= {d90} AND r.opened_at <= {at}) OR (r.clicked_at >= {d90} AND r.clicked_at <= {at}))) AS engaged90,
           (SELECT CAST(COALESCE(SUM(o.value_cents), 0) AS BIGINT) FROM opportunities o WHERE {deal} AND o.status = 'won' AND o.actual_close <= {at} AND o.currency = {cur}) AS won_cents,
           (SELECT count(*) FROM opportunities o WHERE {deal} AND o.status = 'won' AND o.actual_close <= {at}) AS won_count,
           (SELECT count(*) FROM opportunities o WHERE {deal} AND o.status = 'lost' AND o.actual_close >= {d90} AND o.actual_close <= {at}) AS lost90,
           (SELECT CAST(COALESCE(SUM(o.value_cents), 0) AS BIGINT) FROM opportunities o WHERE {deal} AND o.status = 'open' AND o.currency = {cur}) AS open_cents,
           (SELECT min(k.end_date) FROM contracts k WHERE k.client_id = c.id AND k.status = 'active' AND k.start_date <= {at} AND k.end_date <= {d60} AND k.renewal_opportunity_id IS NULL) AS contract_ends
         FROM clients c
         WHERE c.organization_id = {org_p} AND {live} AND {narrow}
         ORDER BY c.id LIMIT {lim}"
    );
    let day = |n: i64| t - Duration::days(n);
    diesel::sql_query(q)
        .bind::<Text, _>(org)
        .bind::<Text, _>(after)
        .bind::<Timestamp, _>(day(30))
        .bind::<Timestamp, _>(day(90))
        .bind::<Timestamp, _>(day(365))
        .bind::<Timestamp, _>(t)
        .bind::<Text, _>(currency)
        .bind::<Date, _>((t + Duration::days(60)).date())
        .bind::<BigInt, _>(limit)
        .bind::<Text, _>(only.unwrap_or_default())
        .load(c)
}

/// A factor of a score: what it is, and how many points it gave.
fn factor(what: String, points: i64) -> Value {
    json!({"factor": what, "points": points})
}

/// Scores one client's aggregates (see the module's models); the churn risk comes from the
/// organization's learned model when it has one in use, else from the rules.
pub fn score(
    i: &Inputs,
    h: &History,
    at: NaiveDateTime,
    currency: &str,
    model: Option<&crate::domain::churn::Model>,
) -> ScoreRow {
    let days_since = i.last_contact.map(|l| (at - l).num_days().max(0));
    // Engagement
    let mut eng = Vec::new();
    let mut e = 0i64;
    if let Some(d) = days_since {
        let p = (40.0 * (1.0 - d as f64 / 180.0)).max(0.0).round() as i64;
        e += p;
        eng.push(factor(format!("Last contact {d} days ago"), p));
    } else {
        eng.push(factor("Never contacted".into(), 0));
    }
    let freq = (25.0 * (i.n90 as f64 / 6.0).min(1.0)).round() as i64;
    e += freq;
    eng.push(factor(format!("{} contacts in 90 days", i.n90), freq));
    if i.meetings90 > 0 {
        let p = (10.0 * (i.meetings90 as f64 / 2.0).min(1.0)).round() as i64;
        e += p;
        eng.push(factor(format!("{} meetings in 90 days", i.meetings90), p));
    }
    if i.inbound90 > 0 {
        let p = (15.0 * (i.inbound90 as f64 / 3.0).min(1.0)).round() as i64;
        e += p;
        eng.push(factor(
            format!("{} contacts started by the client in 90 days", i.inbound90),
            p,
        ));
    }
    if i.engaged90 > 0 {
        e += 10;
        eng.push(factor(
            "Opened or clicked a bulk e-mail in 90 days".into(),
            10,
        ));
    }
    let engagement = e.clamp(0, 100);

    // Churn risk
    let mut churn = Vec::new();
    let mut r = 0i64;
    if i.status == "inactive" {
        r = 100;
        churn.push(factor("Marked inactive".into(), 100));
    } else {
        match days_since {
            None => {
                r += 30;
                churn.push(factor("Never contacted".into(), 30));
            }
            Some(d) if d >= 90 => {
                r += 40;
                churn.push(factor(format!("No contact for {d} days"), 40));
            }
            Some(d) if d >= 60 => {
                r += 20;
                churn.push(factor(format!("No contact for {d} days"), 20));
            }
            Some(d) if d >= 30 => {
                r += 10;
                churn.push(factor(format!("No contact for {d} days"), 10));
            }
            Some(_) => {}
        }
        if i.lost90 > 0 {
            let p = (15 * i.lost90).min(30);
            r += p;
            churn.push(factor(
                format!(
                    "{} lost deal{} this quarter",
                    i.lost90,
                    if i.lost90 == 1 { "" } else { "s" }
                ),
                p,
            ));
        }
        if let Some(end) = i.contract_ends {
            let days = (end - at.date()).num_days();
            r += 25;
            churn.push(factor(
                if days >= 0 {
                    format!("Contract ends in {days} days, no renewal deal")
                } else {
                    format!("Contract ended {} days ago, no renewal deal", -days)
                },
                25,
            ));
        }
        if i.n30 == 0 && i.n365 >= 6 {
            r += 10;
            churn.push(factor(
                format!(
                    "Activity stopped: none in 30 days after {} this year",
                    i.n365
                ),
                10,
            ));
        }
        if engagement < 20 && i.last_contact.is_some() {
            r += 10;
            churn.push(factor(format!("Low engagement ({engagement})"), 10));
        }
    }
    let mut churn_risk = r.clamp(0, 100);
    let mut churn_basis = "rules";
    if let (Some(m), false) = (model, i.status == "inactive") {
        let (p, contributions) = m.predict(&crate::domain::churn::features(i, at));
        churn_risk = (p * 100.0).round().clamp(0.0, 100.0) as i64;
        churn_basis = "learned";
        let mut up: Vec<(usize, f64)> = contributions
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, v)| *v > 0.05)
            .collect();
        up.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = up.iter().map(|x| x.1).sum();
        churn = up
            .iter()
            .take(4)
            .map(|(j, v)| {
                factor(
                    crate::domain::churn::describe(*j, i, at),
                    (churn_risk as f64 * v / total.max(f64::EPSILON)).round() as i64,
                )
            })
            .collect();
    }

    // Lifetime value
    let stay = 1.0 - churn_risk as f64 / 100.0;
    let (expected, basis) = if i.won_count > 0 {
        let own = i.won_cents / i.won_count.max(1);
        let order = if own > 0 { own } else { h.average_order_cents };
        let per_year = h
            .purchases_per_year
            .max(if i.won_count > 0 { 0.5 } else { 0.0 });
        (
            (order as f64 * per_year * HORIZON_YEARS * stay).round() as i64,
            format!(
                "{} × {:.2} purchases a year × {HORIZON_YEARS} years × {:.0}% chance to stay",
                crate::domain::money::display(order, currency),
                per_year,
                stay * 100.0
            ),
        )
    } else {
        (
            (i.open_cents as f64 * h.win_rate).round() as i64,
            format!(
                "open deals {} × {:.0}% win rate",
                crate::domain::money::display(i.open_cents, currency),
                h.win_rate * 100.0
            ),
        )
    };
    let factors = json!({
        "engagement": eng,
        "churnRisk": churn,
        "churnBasis": churn_basis,
        "lifetimeValue": {
            "realised": crate::domain::money::format_cents(i.won_cents),
            "expected": crate::domain::money::format_cents(expected),
            "basis": basis,
        },
    });
    ScoreRow {
        client_id: i.id.clone(),
        organization_id: String::new(),
        engagement: engagement as i32,
        lifetime_value_cents: i.won_cents + expected,
        realised_cents: i.won_cents,
        currency: currency.to_string(),
        churn_risk: churn_risk as i32,
        factors: factors.to_string(),
        computed_at: at,
        inactive: i.status == "inactive",
        owner: i.owner.clone().unwrap_or_default(),
    }
}

/// Replaces the scores of these clients (one page of a scoring run).
pub fn store(c: &mut DbConn, org: &str, rows: Vec<ScoreRow>) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows: Vec<ScoreRow> = rows
        .into_iter()
        .map(|mut r| {
            r.organization_id = org.to_string();
            r
        })
        .collect();
    let ids: Vec<String> = rows.iter().map(|r| r.client_id.clone()).collect();
    crate::db::transaction(c, |c| {
        diesel::delete(client_scores::table.filter(client_scores::client_id.eq_any(&ids)))
            .execute(c)?;
        // why: MultiConnection compiles no multi-row insert; each backend's connection does.
        for chunk in rows.chunks(500) {
            match c {
                DbConn::Sqlite(c) => diesel::insert_into(client_scores::table)
                    .values(chunk.to_vec())
                    .execute(c)?,
                DbConn::Postgresql(c) => diesel::insert_into(client_scores::table)
                    .values(chunk.to_vec())
                    .execute(c)?,
            };
        }
        // why: a client reassigned since its page was read had its old score's owner moved
        // by the trigger, and that row was just replaced with the owner read before; read
        // the owner again here, or the new owner's at-risk list misses the client until the
        // next scoring. Only the rows that differ are written.
        let owner_now = diesel::dsl::sql::<diesel::sql_types::Text>(
            "COALESCE((SELECT c.assigned_to FROM clients c WHERE c.id = client_scores.client_id), '')",
        );
        diesel::update(
            client_scores::table
                .filter(client_scores::client_id.eq_any(&ids))
                .filter(client_scores::owner.ne(owner_now.clone())),
        )
        .set(client_scores::owner.eq(owner_now))
        .execute(c)?;
        Ok(())
    })
}

fn currency_of(c: &mut DbConn, org: &str) -> AppResult<String> {
    Ok(crate::domain::orgs::store::find_org(c, org)?
        .map(|o| o.default_currency)
        .unwrap_or_else(|| "EUR".into()))
}

/// Scores every live client of the organization, page by page; answers how many.
pub fn compute_org(c: &mut DbConn, org: &str) -> AppResult<i64> {
    let currency = currency_of(c, org)?;
    let h = history(c, org, &currency)?;
    let model = crate::domain::churn::current(c, org)?;
    let started = now();
    crate::db::transaction(c, |c| -> QueryResult<()> {
        diesel::delete(score_runs::table.filter(score_runs::organization_id.eq(org))).execute(c)?;
        diesel::insert_into(score_runs::table)
            .values((
                score_runs::organization_id.eq(org),
                score_runs::started_at.eq(started),
            ))
            .execute(c)?;
        Ok(())
    })?;
    let mut after = String::new();
    let mut n = 0i64;
    loop {
        let page = inputs(c, org, &currency, &after, None, PAGE)?;
        let Some(last) = page.last().map(|i| i.id.clone()) else {
            break;
        };
        let at = now();
        let rows: Vec<ScoreRow> = page
            .iter()
            .map(|i| score(i, &h, at, &currency, model.as_ref()))
            .collect();
        n += rows.len() as i64;
        store(c, org, rows)?;
        if (page.len() as i64) < PAGE {
            break;
        }
        after = last;
    }
    // Scores of clients gone since (trashed) are dropped.
    diesel::delete(
        client_scores::table
            .filter(client_scores::organization_id.eq(org))
            .filter(client_scores::computed_at.lt(started)),
    )
    .execute(c)?;
    count_at_risk(c, org)?;
    diesel::update(score_runs::table.filter(score_runs::organization_id.eq(org)))
        .set((
            score_runs::finished_at.eq(Some(now())),
            score_runs::clients.eq(n),
        ))
        .execute(c)?;
    Ok(n)
}

/// The churn risk from which a client counts as at risk.
pub const AT_RISK: i32 = 50;

/// Counts the clients at risk per owner once the scores are in, for the overview and the
/// dashboards (one pass here rather than one per visit).
fn count_at_risk(c: &mut DbConn, org: &str) -> QueryResult<()> {
    use crate::db::schema::risk_counts;
    crate::db::transaction(c, |c| {
        diesel::delete(risk_counts::table.filter(risk_counts::organization_id.eq(org)))
            .execute(c)?;
        diesel::sql_query(format!(
            "INSERT INTO risk_counts (organization_id, owner, n) \
             SELECT s.organization_id, COALESCE(c.assigned_to, ''), COUNT(*) \
             FROM client_scores s JOIN clients c ON c.id = s.client_id \
             WHERE s.organization_id = {org} AND s.churn_risk >= {AT_RISK} \
             AND c.deleted_at IS NULL AND c.status <> 'inactive' \
             GROUP BY s.organization_id, COALESCE(c.assigned_to, '')",
            org = crate::domain::reports::lit(org),
        ))
        .execute(c)?;
        Ok(())
    })
}

/// Scores one client now.
pub fn compute_client(c: &mut DbConn, org: &str, id: &str) -> AppResult<Option<ScoreRow>> {
    let currency = currency_of(c, org)?;
    let h = history(c, org, &currency)?;
    let page = inputs(c, org, &currency, "", Some(id), 1)?;
    let Some(i) = page.first() else {
        return Ok(None);
    };
    let model = crate::domain::churn::current(c, org)?;
    let mut row = score(i, &h, now(), &currency, model.as_ref());
    store(c, org, vec![row.clone()])?;
    row.organization_id = org.to_string();
    Ok(Some(row))
}

pub fn get(c: &mut DbConn, org: &str, id: &str) -> QueryResult<Option<ScoreRow>> {
    client_scores::table
        .filter(client_scores::organization_id.eq(org))
        .filter(client_scores::client_id.eq(id))
        .select(ScoreRow::as_select())
        .first(c)
        .optional()
}

/// The scores of the clients `ids` (a page of a list), by client id.
pub fn of_clients(
    c: &mut DbConn,
    org: &str,
    ids: &[String],
) -> QueryResult<std::collections::HashMap<String, ScoreRow>> {
    Ok(client_scores::table
        .filter(client_scores::organization_id.eq(org))
        .filter(client_scores::client_id.eq_any(ids))
        .select(ScoreRow::as_select())
        .load(c)?
        .into_iter()
        .map(|r| (r.client_id.clone(), r))
        .collect())
}

/// Organizations whose scores are due (never computed, or not for `every`).
pub fn due(c: &mut DbConn, every: Duration) -> QueryResult<Vec<String>> {
    use crate::db::schema::organizations;
    let cutoff = now() - every;
    let fresh: Vec<String> = score_runs::table
        .filter(score_runs::started_at.ge(cutoff))
        .select(score_runs::organization_id)
        .load(c)?;
    let mut all: Vec<String> = organizations::table.select(organizations::id).load(c)?;
    all.retain(|o| !fresh.contains(o));
    Ok(all)
}

/// The clients most at risk, highest first: (id, name, risk, top reason), those owned by
/// `owner` when given.
pub fn at_risk(
    c: &mut DbConn,
    org: &str,
    owner: Option<&str>,
    min_risk: i32,
    limit: i64,
) -> QueryResult<Vec<(String, String, i32, String)>> {
    use crate::db::schema::clients;
    let mut q = client_scores::table
        .inner_join(clients::table.on(clients::id.eq(client_scores::client_id)))
        .filter(client_scores::organization_id.eq(org))
        // why: client_scores_open_risk, read in order and stopped at the limit; without it
        // the list walks every inactive client (all at risk 100) before the first it shows.
        .filter(client_scores::inactive.eq(false))
        .filter(client_scores::churn_risk.ge(min_risk))
        .filter(clients::deleted_at.is_null())
        .filter(clients::status.ne("inactive"))
        .select((
            clients::id,
            clients::display_name,
            client_scores::churn_risk,
            client_scores::factors,
        ))
        .into_boxed();
    if let Some(o) = owner {
        // why both: the score's copy of the owner picks the index range
        // (client_scores_owner_risk); the client's own owner is the truth.
        q = q
            .filter(client_scores::owner.eq(o.to_string()))
            .filter(clients::assigned_to.eq(o.to_string()));
    }
    Ok(q.order((
        client_scores::churn_risk.desc(),
        client_scores::client_id.desc(),
    ))
    .limit(limit)
    .load::<(String, String, i32, String)>(c)?
    .into_iter()
    .map(|(id, name, risk, f)| {
        let f: Value = serde_json::from_str(&f).unwrap_or(Value::Null);
        let top = f["churnRisk"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|x| x["factor"].as_str())
            .unwrap_or_default()
            .to_string();
        (id, name, risk, top)
    })
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Inputs {
        Inputs {
            id: "c".into(),
            status: "customer".into(),
            owner: None,
            last_contact: None,
            n30: 0,
            n90: 0,
            n365: 0,
            meetings90: 0,
            inbound90: 0,
            engaged90: 0,
            won_cents: 0,
            won_count: 0,
            lost90: 0,
            open_cents: 0,
            contract_ends: None,
        }
    }

    fn at() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap_or_default()
            .and_hms_opt(12, 0, 0)
            .unwrap_or_default()
    }

    #[test]
    fn each_factor_moves_the_scores_the_documented_way() {
        let h = History {
            average_order_cents: 100_000,
            purchases_per_year: 1.0,
            win_rate: 0.5,
        };
        let quiet = score(&base(), &h, at(), "EUR", None);
        assert_eq!(quiet.engagement, 0);
        assert_eq!(quiet.churn_risk, 30, "never contacted");

        let mut recent = base();
        recent.last_contact = Some(at() - Duration::days(3));
        recent.n90 = 6;
        recent.n30 = 2;
        recent.n365 = 10;
        let r = score(&recent, &h, at(), "EUR", None);
        assert!(r.engagement >= 60, "{}", r.engagement);
        assert_eq!(r.churn_risk, 0);

        // More silence: lower engagement, higher risk, with the reason in words.
        let mut silent = recent.clone();
        silent.last_contact = Some(at() - Duration::days(94));
        silent.n90 = 0;
        silent.n30 = 0;
        let s = score(&silent, &h, at(), "EUR", None);
        assert!(s.engagement < r.engagement);
        assert!(s.churn_risk >= 35 + 10);
        assert!(
            s.factors.contains("No contact for 94 days"),
            "{}",
            s.factors
        );
        assert!(s.factors.contains("Activity stopped"), "{}", s.factors);

        // A contract ending without renewal and lost deals each add their points.
        let mut ending = recent.clone();
        ending.contract_ends = Some(at().date() + Duration::days(20));
        ending.lost90 = 2;
        let e = score(&ending, &h, at(), "EUR", None);
        assert_eq!(e.churn_risk, 25 + 30);
        assert!(e
            .factors
            .contains("Contract ends in 20 days, no renewal deal"));
        assert!(e.factors.contains("2 lost deals this quarter"));

        let mut gone = recent.clone();
        gone.status = "inactive".into();
        assert_eq!(score(&gone, &h, at(), "EUR", None).churn_risk, 100);

        // Lifetime value: what was bought, plus the expected future, less for a client
        // likely to leave.
        let mut buyer = recent.clone();
        buyer.won_cents = 300_000;
        buyer.won_count = 2;
        let b = score(&buyer, &h, at(), "EUR", None);
        assert_eq!(b.realised_cents, 300_000);
        assert_eq!(b.lifetime_value_cents, 300_000 + 150_000 * 3);
        let mut leaving = buyer.clone();
        leaving.contract_ends = Some(at().date() + Duration::days(5));
        let l = score(&leaving, &h, at(), "EUR", None);
        assert!(l.lifetime_value_cents < b.lifetime_value_cents);
        // A prospect is worth its open deals at the win rate.
        let mut prospect = recent.clone();
        prospect.open_cents = 80_000;
        assert_eq!(
            score(&prospect, &h, at(), "EUR", None).lifetime_value_cents,
            40_000
        );
    }
}
