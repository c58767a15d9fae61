//! The standard reports. Each is grouped SQL over indexed columns (organization, status,
//! dates) returning at most a few hundred rows; rates, medians and the funnel's running
//! totals are worked out here over those rows.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use rust_decimal::Decimal;

use super::{
    after_lit, day_lit, days_between, lit, median, money, percent, start_lit, Bucket, Cell,
    ChartKind, ColKind, Column, Names, Reach, Report, Table,
};
use crate::db::{backend_of, DbConn};
use crate::error::{AppError, AppResult};

/// The standard reports: key, title, what it needs (`deals`, `activities`, `segments`).
pub const KINDS: &[(&str, &str, &str)] = &[
    ("sales-by-rep", "Sales by rep", "deals"),
    ("sales-by-stage", "Open pipeline by stage", "deals"),
    ("sales-by-source", "Sales by source", "deals"),
    ("activity-by-rep", "Activity by rep", "activities"),
    ("conversion-funnel", "Conversion funnel", "deals"),
    ("deal-velocity", "Deal velocity", "deals"),
    ("lost-reasons", "Lost reasons", "deals"),
    ("forecast-vs-actual", "Forecast against actual", "deals"),
    ("segment-growth", "Segment growth", "segments"),
    ("rep-benchmark", "Reps against the team median", "deals"),
];

pub fn title_of(kind: &str) -> Option<&'static str> {
    KINDS.iter().find(|k| k.0 == kind).map(|k| k.1)
}

/// Up to six figures grouped by up to two keys: every standard query selects
/// `k, k2, a, b, c, d` (unused ones as NULL or 0).
#[derive(QueryableByName, Debug)]
struct G {
    #[diesel(sql_type = Nullable<Text>)]
    k: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    k2: Option<String>,
    #[diesel(sql_type = BigInt)]
    a: i64,
    #[diesel(sql_type = BigInt)]
    b: i64,
    #[diesel(sql_type = BigInt)]
    c: i64,
    #[diesel(sql_type = BigInt)]
    d: i64,
}

fn load(c: &mut DbConn, q: String) -> AppResult<Vec<G>> {
    Ok(diesel::sql_query(q).load(c)?)
}

/// `AND <col> = '<me>'` when the caller sees only their own records.
fn own(col: &str, who: &Option<String>) -> String {
    who.as_ref()
        .map(|u| format!(" AND {col} = {}", lit(u)))
        .unwrap_or_default()
}

fn in_pipeline(col: &str, r: &Reach) -> String {
    r.pipeline
        .as_ref()
        .map(|p| format!(" AND {col} = {}", lit(p)))
        .unwrap_or_default()
}

/// `CAST(<sum> AS BIGINT)`: a bigint sum is numeric on PostgreSQL.
fn sum(expr: &str) -> String {
    format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)")
}

fn count_if(cond: &str) -> String {
    sum(&format!("CASE WHEN {cond} THEN 1 ELSE 0 END"))
}

fn chart(kind: ChartKind, label: &str, values: &[&str]) -> super::Chart {
    super::Chart {
        kind,
        label: label.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

pub fn run(c: &mut DbConn, kind: &str, r: &Reach) -> AppResult<Report> {
    let Some(title) = title_of(kind) else {
        return Err(AppError::NotFound);
    };
    let needs = KINDS.iter().find(|k| k.0 == kind).map_or("", |k| k.2);
    if needs == "deals" && !r.deals {
        return Err(AppError::Forbidden(
            "This report sums deals; your role may not see deals.".into(),
        ));
    }
    if needs == "activities" && !r.activities {
        return Err(AppError::Forbidden(
            "This report counts activities; your role may not see them.".into(),
        ));
    }
    let names = super::Names::load(c, &r.org)?;
    let (table, chart, note) = match kind {
        "sales-by-rep" => sales_by_rep(c, r, &names)?,
        "sales-by-stage" => sales_by_stage(c, r, &names)?,
        "sales-by-source" => sales_by_source(c, r)?,
        "activity-by-rep" => activity_by_rep(c, r, &names)?,
        "conversion-funnel" => funnel(c, r, &names)?,
        "deal-velocity" => velocity(c, r, &names)?,
        "lost-reasons" => lost_reasons(c, r)?,
        "forecast-vs-actual" => forecast_vs_actual(c, r)?,
        "segment-growth" => segment_growth(c, r)?,
        _ => rep_benchmark(c, r, &names)?,
    };
    Ok(Report {
        kind: kind.into(),
        title: title.into(),
        from: r.from,
        to: r.to,
        table,
        chart,
        note,
    })
}

type Built = (Table, super::Chart, String);

fn closed_in_period(r: &Reach) -> String {
    format!(
        "o.organization_id = {} AND o.deleted_at IS NULL AND o.actual_close >= {} AND o.actual_close <= {}{}{}",
        lit(&r.org),
        day_lit(r.from),
        day_lit(r.to),
        own("o.assigned_to", &r.deals_of),
        in_pipeline("o.pipeline_id", r)
    )
}

fn sales_by_rep(c: &mut DbConn, r: &Reach, names: &Names) -> AppResult<Built> {
    let q = format!(
        "SELECT o.assigned_to AS k, o.currency AS k2, {won} AS a, {lost} AS b, {value} AS c, CAST(0 AS BIGINT) AS d \
         FROM opportunities o WHERE {w} AND o.status IN ('won', 'lost') \
         GROUP BY o.assigned_to, o.currency",
        won = count_if("o.status = 'won'"),
        lost = count_if("o.status = 'lost'"),
        value = sum("CASE WHEN o.status = 'won' THEN o.value_cents ELSE 0 END"),
        w = closed_in_period(r)
    );
    let mut rows: Vec<(String, String, i64, i64, i64)> = load(c, q)?
        .into_iter()
        .map(|g| {
            (
                names.user(g.k.as_deref()),
                g.k2.unwrap_or_default(),
                g.a,
                g.b,
                g.c,
            )
        })
        .collect();
    rows.sort_by(|a, b| b.4.cmp(&a.4).then_with(|| a.0.cmp(&b.0)));
    let table = Table {
        columns: vec![
            Column::new("rep", "Rep", ColKind::Text),
            Column::new("currency", "Currency", ColKind::Text),
            Column::new("wonDeals", "Won deals", ColKind::Count),
            Column::new("lostDeals", "Lost deals", ColKind::Count),
            Column::new("wonValue", "Won value", ColKind::Money),
            Column::new("winRate", "Win rate (%)", ColKind::Percent),
            Column::new("averageDeal", "Average won deal", ColKind::Money),
        ],
        rows: rows
            .into_iter()
            .map(|(rep, cur, won, lost, value)| {
                vec![
                    Cell::Text(rep),
                    Cell::Text(cur),
                    Cell::Int(won),
                    Cell::Int(lost),
                    money(value),
                    percent(won, won + lost),
                    if won > 0 {
                        money(value / won)
                    } else {
                        Cell::Null
                    },
                ]
            })
            .collect(),
    };
    Ok((
        table,
        chart(ChartKind::Bar, "rep", &["wonValue"]),
        "Deals closed in the period, by their owner; amounts per currency, never added across currencies.".into(),
    ))
}

fn sales_by_stage(c: &mut DbConn, r: &Reach, names: &Names) -> AppResult<Built> {
    let q = format!(
        "SELECT o.stage_id AS k, o.currency AS k2, CAST(COUNT(*) AS BIGINT) AS a, {value} AS b, {weighted} AS c, CAST(0 AS BIGINT) AS d \
         FROM opportunities o WHERE o.organization_id = {org} AND o.deleted_at IS NULL AND o.status = 'open'{own}{pipe} \
         GROUP BY o.stage_id, o.currency",
        value = sum("o.value_cents"),
        weighted = sum("o.value_cents * o.probability"),
        org = lit(&r.org),
        own = own("o.assigned_to", &r.deals_of),
        pipe = in_pipeline("o.pipeline_id", r),
    );
    let mut rows = load(c, q)?;
    let order = |g: &G| {
        let s = g.k.as_deref().and_then(|k| names.stages.get(k));
        (
            s.map(|s| names.pipeline(&s.0)).unwrap_or_default(),
            s.map_or(i32::MAX, |s| s.2),
            g.k2.clone(),
        )
    };
    rows.sort_by_key(order);
    let table = Table {
        columns: vec![
            Column::new("pipeline", "Pipeline", ColKind::Text),
            Column::new("stage", "Stage", ColKind::Text),
            Column::new("currency", "Currency", ColKind::Text),
            Column::new("openDeals", "Open deals", ColKind::Count),
            Column::new("value", "Value", ColKind::Money),
            Column::new("weighted", "Weighted value", ColKind::Money),
        ],
        rows: rows
            .into_iter()
            .map(|g| {
                let stage = g.k.unwrap_or_default();
                let pipeline = names
                    .stages
                    .get(&stage)
                    .map(|s| names.pipeline(&s.0))
                    .unwrap_or_default();
                vec![
                    Cell::Text(pipeline),
                    Cell::Text(names.stage(&stage)),
                    Cell::Text(g.k2.unwrap_or_default()),
                    Cell::Int(g.a),
                    money(g.b),
                    money(g.c / 100),
                ]
            })
            .collect(),
    };
    Ok((
        table,
        chart(ChartKind::Bar, "stage", &["value", "weighted"]),
        "Deals open now, by the stage they are in; weighted = value × the deal's probability. The period does not apply.".into(),
    ))
}

fn sales_by_source(c: &mut DbConn, r: &Reach) -> AppResult<Built> {
    let q = format!(
        "SELECT COALESCE(NULLIF(o.source, ''), '') AS k, o.currency AS k2, CAST(COUNT(*) AS BIGINT) AS a, {won} AS b, {lost} AS c, {value} AS d \
         FROM opportunities o WHERE o.organization_id = {org} AND o.deleted_at IS NULL \
         AND o.created_at >= {from} AND o.created_at < {to}{own}{pipe} \
         GROUP BY COALESCE(NULLIF(o.source, ''), ''), o.currency",
        won = count_if("o.status = 'won'"),
        lost = count_if("o.status = 'lost'"),
        value = sum("CASE WHEN o.status = 'won' THEN o.value_cents ELSE 0 END"),
        org = lit(&r.org),
        from = start_lit(r.from),
        to = after_lit(r.to),
        own = own("o.assigned_to", &r.deals_of),
        pipe = in_pipeline("o.pipeline_id", r),
    );
    let mut rows = load(c, q)?;
    rows.sort_by(|a, b| b.a.cmp(&a.a).then_with(|| a.k.cmp(&b.k)));
    let table = Table {
        columns: vec![
            Column::new("source", "Source", ColKind::Text),
            Column::new("currency", "Currency", ColKind::Text),
            Column::new("newDeals", "New deals", ColKind::Count),
            Column::new("won", "Won so far", ColKind::Count),
            Column::new("lost", "Lost so far", ColKind::Count),
            Column::new("wonValue", "Won value", ColKind::Money),
            Column::new("winRate", "Win rate (%)", ColKind::Percent),
        ],
        rows: rows
            .into_iter()
            .map(|g| {
                let source =
                    g.k.filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "(no source)".into());
                vec![
                    Cell::Text(source),
                    Cell::Text(g.k2.unwrap_or_default()),
                    Cell::Int(g.a),
                    Cell::Int(g.b),
                    Cell::Int(g.c),
                    money(g.d),
                    percent(g.b, g.b + g.c),
                ]
            })
            .collect(),
    };
    Ok((
        table,
        chart(ChartKind::Bar, "source", &["newDeals", "won"]),
        "Deals created in the period, by their source, with how many of them have been won or lost since.".into(),
    ))
}

/// The activity kinds counted, in column order.
const ACTIVITY: &[(&str, &str, &str)] = &[
    ("call", "calls", "Calls"),
    ("meeting", "meetings", "Meetings"),
    ("email", "emails", "E-mails"),
    ("sms", "texts", "Texts"),
    ("note", "notes", "Notes"),
    ("task", "tasks", "Tasks done"),
];

/// Completed activities in the period per person, as `(user, kind) → count`.
fn activities(c: &mut DbConn, r: &Reach) -> AppResult<Vec<G>> {
    load(
        c,
        format!(
            "SELECT NULLIF(i.user_id, '') AS k, i.kind AS k2, CAST(SUM(i.n) AS BIGINT) AS a, CAST(0 AS BIGINT) AS b, CAST(0 AS BIGINT) AS c, CAST(0 AS BIGINT) AS d \
             FROM activity_daily i WHERE i.organization_id = {org} AND i.status = 'completed' \
             AND i.kind IN ('call', 'meeting', 'email', 'sms', 'note', 'task') \
             AND i.day >= {from} AND i.day <= {to}{own} \
             GROUP BY i.user_id, i.kind HAVING SUM(i.n) > 0",
            org = lit(&r.org),
            from = day_lit(r.from),
            to = day_lit(r.to),
            own = own("i.user_id", &r.activities_of),
        ),
    )
}

fn activity_by_rep(c: &mut DbConn, r: &Reach, names: &Names) -> AppResult<Built> {
    let mut per: BTreeMap<Option<String>, [i64; 6]> = BTreeMap::new();
    for g in activities(c, r)? {
        if let Some(i) = ACTIVITY.iter().position(|a| Some(a.0) == g.k2.as_deref()) {
            per.entry(g.k).or_default()[i] += g.a;
        }
    }
    let mut rows: Vec<(String, [i64; 6])> = per
        .into_iter()
        .map(|(u, n)| (names.user(u.as_deref()), n))
        .collect();
    rows.sort_by(|a, b| {
        b.1.iter()
            .sum::<i64>()
            .cmp(&a.1.iter().sum::<i64>())
            .then_with(|| a.0.cmp(&b.0))
    });
    let mut columns = vec![Column::new("rep", "Rep", ColKind::Text)];
    columns.extend(
        ACTIVITY
            .iter()
            .map(|a| Column::new(a.1, a.2, ColKind::Count)),
    );
    columns.push(Column::new("total", "Total", ColKind::Count));
    let table = Table {
        columns,
        rows: rows
            .into_iter()
            .map(|(rep, n)| {
                let mut row = vec![Cell::Text(rep)];
                row.extend(n.iter().map(|v| Cell::Int(*v)));
                row.push(Cell::Int(n.iter().sum()));
                row
            })
            .collect(),
    };
    Ok((
        table,
        chart(ChartKind::Bar, "rep", &["calls", "meetings", "emails", "notes", "tasks"]),
        "Calls, meetings, e-mails and notes logged as done in the period, and tasks completed, by the person who logged them.".into(),
    ))
}

/// The pipeline a funnel follows: the one asked for, else the organization's first.
fn funnel_pipeline(r: &Reach, names: &Names) -> Option<String> {
    r.pipeline
        .clone()
        .or_else(|| names.pipeline_order.first().cloned())
}

fn funnel(c: &mut DbConn, r: &Reach, names: &Names) -> AppResult<Built> {
    let Some(pipeline) = funnel_pipeline(r, names) else {
        return Ok((
            Table::default(),
            chart(ChartKind::Funnel, "stage", &["reached"]),
            "No pipeline yet.".into(),
        ));
    };
    let p = lit(&pipeline);
    let deals = format!(
        "o.organization_id = {org} AND o.deleted_at IS NULL AND o.pipeline_id = {p} \
         AND o.created_at >= {from} AND o.created_at < {to}{own}",
        org = lit(&r.org),
        from = start_lit(r.from),
        to = after_lit(r.to),
        own = own("o.assigned_to", &r.deals_of),
    );
    // Each deal's furthest stage (by position, lost stages aside) among the stages it
    // entered, left and is in; the funnel then counts, per stage, the deals that got
    // at least that far.
    let q = format!(
        "SELECT CAST(x.furthest AS TEXT) AS k, NULL AS k2, CAST(COUNT(*) AS BIGINT) AS a, CAST(0 AS BIGINT) AS b, CAST(0 AS BIGINT) AS c, CAST(0 AS BIGINT) AS d FROM ( \
           SELECT e.opp, MAX(s.position) AS furthest FROM ( \
             SELECT h.to_stage_id AS st, h.opportunity_id AS opp FROM opportunity_stage_history h \
               JOIN opportunities o ON o.id = h.opportunity_id WHERE {deals} \
             UNION ALL SELECT h.from_stage_id AS st, h.opportunity_id AS opp FROM opportunity_stage_history h \
               JOIN opportunities o ON o.id = h.opportunity_id WHERE {deals} \
             UNION ALL SELECT o.stage_id AS st, o.id AS opp FROM opportunities o WHERE {deals} \
           ) e JOIN pipeline_stages s ON s.id = e.st AND s.kind <> 'lost' AND s.pipeline_id = {p} GROUP BY e.opp \
         ) x GROUP BY x.furthest"
    );
    let reached: BTreeMap<i32, i64> = load(c, q)?
        .into_iter()
        .filter_map(|g| Some((g.k?.parse::<i32>().ok()?, g.a)))
        .collect();
    let mut stages: Vec<(&String, &super::StageInfo)> = names
        .stages
        .iter()
        .filter(|(_, s)| s.0 == pipeline && s.3 != "lost")
        .collect();
    stages.sort_by_key(|(_, s)| s.2);
    let mut rows = Vec::new();
    let (mut first, mut previous) = (None::<i64>, None::<i64>);
    for (_, s) in stages {
        let n: i64 = reached.range(s.2..).map(|(_, n)| n).sum();
        let start = *first.get_or_insert(n);
        rows.push(vec![
            Cell::Text(s.1.clone()),
            Cell::Int(n),
            previous.map_or(Cell::Null, |p| percent(n, p)),
            percent(n, start),
        ]);
        previous = Some(n);
    }
    Ok((
        Table {
            columns: vec![
                Column::new("stage", "Stage", ColKind::Text),
                Column::new("reached", "Deals that reached it", ColKind::Count),
                Column::new("fromPrevious", "From the stage before (%)", ColKind::Percent),
                Column::new("fromStart", "From the first stage (%)", ColKind::Percent),
            ],
            rows,
        },
        chart(ChartKind::Funnel, "stage", &["reached"]),
        format!(
            "Deals created in the period in the {} pipeline, by the furthest stage each reached (a deal that skipped a stage counts as having passed it).",
            names.pipeline(&pipeline)
        ),
    ))
}

fn velocity(c: &mut DbConn, r: &Reach, names: &Names) -> AppResult<Built> {
    let backend = backend_of(c);
    let cycle = days_between(backend, "o.actual_close", "o.created_at");
    let q = format!(
        "SELECT o.pipeline_id AS k, o.currency AS k2, {won} AS a, {lost} AS b, {value} AS c, \
           CAST(COALESCE(SUM(CASE WHEN o.status = 'won' THEN {cycle} ELSE 0 END), 0) AS BIGINT) AS d \
         FROM opportunities o WHERE {w} AND o.status IN ('won', 'lost') GROUP BY o.pipeline_id, o.currency",
        won = count_if("o.status = 'won'"),
        lost = count_if("o.status = 'lost'"),
        value = sum("CASE WHEN o.status = 'won' THEN o.value_cents ELSE 0 END"),
        w = closed_in_period(r),
    );
    let closed = load(c, q)?;
    let q = format!(
        "SELECT o.pipeline_id AS k, o.currency AS k2, CAST(COUNT(*) AS BIGINT) AS a, CAST(0 AS BIGINT) AS b, CAST(0 AS BIGINT) AS c, CAST(0 AS BIGINT) AS d \
         FROM opportunities o WHERE o.organization_id = {org} AND o.deleted_at IS NULL AND o.status = 'open'{own}{pipe} \
         GROUP BY o.pipeline_id, o.currency",
        org = lit(&r.org),
        own = own("o.assigned_to", &r.deals_of),
        pipe = in_pipeline("o.pipeline_id", r),
    );
    let open: BTreeMap<(Option<String>, Option<String>), i64> = load(c, q)?
        .into_iter()
        .map(|g| ((g.k, g.k2), g.a))
        .collect();
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let mut keys: Vec<(Option<String>, Option<String>)> = open.keys().cloned().collect();
    for g in &closed {
        let k = (g.k.clone(), g.k2.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.sort_by_key(|(p, cur)| (names.pipeline(p.as_deref().unwrap_or("")), cur.clone()));
    for key in keys {
        let n_open = open.get(&key).copied().unwrap_or(0);
        let g = closed.iter().find(|g| (g.k.clone(), g.k2.clone()) == key);
        let (won, lost, value, days) = g.map_or((0, 0, 0, 0), |g| (g.a, g.b, g.c, g.d));
        let rate = (won + lost > 0).then(|| Decimal::from(won) / Decimal::from(won + lost));
        let avg = (won > 0).then(|| Decimal::new(value, 2) / Decimal::from(won));
        let cycle = (won > 0).then(|| Decimal::from(days) / Decimal::from(won));
        // Sales velocity: open deals × win rate × average won deal ÷ sales cycle (days; a
        // cycle under a day counts as one).
        let per_day = match (rate, avg, cycle) {
            (Some(rate), Some(avg), Some(cycle)) => {
                Some(Decimal::from(n_open) * rate * avg / cycle.max(Decimal::ONE))
            }
            _ => None,
        };
        let dec = |d: Option<Decimal>, dp: u32| d.map_or(Cell::Null, |d| Cell::Dec(d.round_dp(dp)));
        rows.push(vec![
            Cell::Text(names.pipeline(key.0.as_deref().unwrap_or(""))),
            Cell::Text(key.1.clone().unwrap_or_default()),
            Cell::Int(n_open),
            percent(won, won + lost),
            dec(avg, 2),
            dec(cycle, 1),
            dec(per_day, 2),
            dec(per_day.map(|d| d * Decimal::from(30)), 2),
        ]);
    }
    Ok((
        Table {
            columns: vec![
                Column::new("pipeline", "Pipeline", ColKind::Text),
                Column::new("currency", "Currency", ColKind::Text),
                Column::new("openDeals", "Open deals", ColKind::Count),
                Column::new("winRate", "Win rate (%)", ColKind::Percent),
                Column::new("averageDeal", "Average won deal", ColKind::Money),
                Column::new("cycleDays", "Sales cycle (days)", ColKind::Number),
                Column::new("perDay", "Velocity per day", ColKind::Money),
                Column::new("perMonth", "Velocity per 30 days", ColKind::Money),
            ],
            rows,
        },
        chart(ChartKind::Bar, "pipeline", &["perMonth"]),
        "Sales velocity = open deals × win rate × average won deal ÷ sales cycle, from the deals closed in the period: the value the pipeline turns into revenue per day.".into(),
    ))
}

fn lost_reasons(c: &mut DbConn, r: &Reach) -> AppResult<Built> {
    let q = format!(
        "SELECT COALESCE(NULLIF(o.loss_reason, ''), '') AS k, o.currency AS k2, CAST(COUNT(*) AS BIGINT) AS a, {value} AS b, CAST(0 AS BIGINT) AS c, CAST(0 AS BIGINT) AS d \
         FROM opportunities o WHERE {w} AND o.status = 'lost' \
         GROUP BY COALESCE(NULLIF(o.loss_reason, ''), ''), o.currency",
        value = sum("o.value_cents"),
        w = closed_in_period(r),
    );
    let mut rows = load(c, q)?;
    let total: i64 = rows.iter().map(|g| g.a).sum();
    rows.sort_by(|a, b| b.a.cmp(&a.a).then_with(|| a.k.cmp(&b.k)));
    Ok((
        Table {
            columns: vec![
                Column::new("reason", "Reason", ColKind::Text),
                Column::new("currency", "Currency", ColKind::Text),
                Column::new("lostDeals", "Lost deals", ColKind::Count),
                Column::new("lostValue", "Lost value", ColKind::Money),
                Column::new("share", "Share of lost deals (%)", ColKind::Percent),
            ],
            rows: rows
                .into_iter()
                .map(|g| {
                    vec![
                        Cell::Text(
                            g.k.filter(|s| !s.is_empty())
                                .unwrap_or_else(|| "(no reason given)".into()),
                        ),
                        Cell::Text(g.k2.unwrap_or_default()),
                        Cell::Int(g.a),
                        money(g.b),
                        percent(g.a, total),
                    ]
                })
                .collect(),
        },
        chart(ChartKind::Pie, "reason", &["lostDeals"]),
        "Deals lost in the period, by the reason recorded when they were lost.".into(),
    ))
}

fn forecast_vs_actual(c: &mut DbConn, r: &Reach) -> AppResult<Built> {
    let backend = backend_of(c);
    let expected = Bucket::Month.sql(backend, "o.expected_close");
    let closed = Bucket::Month.sql(backend, "o.actual_close");
    // The probability a deal had before it closed: its own while open; for a closed deal
    // the one it left its last stage with (so a won deal is not counted as a certainty
    // after the fact).
    let probability = "CASE WHEN o.status = 'open' THEN o.probability ELSE COALESCE(( \
        SELECT h.from_probability FROM opportunity_stage_history h WHERE h.opportunity_id = o.id \
        ORDER BY h.moved_at DESC LIMIT 1), o.probability) END";
    let base = format!(
        "o.organization_id = {org} AND o.deleted_at IS NULL{own}{pipe}",
        org = lit(&r.org),
        own = own("o.assigned_to", &r.deals_of),
        pipe = in_pipeline("o.pipeline_id", r),
    );
    let forecast = load(
        c,
        format!(
            "SELECT {expected} AS k, o.currency AS k2, {weighted} AS a, CAST(COUNT(*) AS BIGINT) AS b, CAST(0 AS BIGINT) AS c, CAST(0 AS BIGINT) AS d \
             FROM opportunities o WHERE {base} AND o.expected_close >= {from} AND o.expected_close <= {to} \
             GROUP BY {expected}, o.currency",
            weighted = sum(&format!("o.value_cents * ({probability})")),
            from = day_lit(r.from),
            to = day_lit(r.to),
        ),
    )?;
    let actual = load(
        c,
        format!(
            "SELECT {closed} AS k, o.currency AS k2, {value} AS a, CAST(COUNT(*) AS BIGINT) AS b, CAST(0 AS BIGINT) AS c, CAST(0 AS BIGINT) AS d \
             FROM opportunities o WHERE {base} AND o.status = 'won' AND o.actual_close >= {from} AND o.actual_close <= {to} \
             GROUP BY {closed}, o.currency",
            value = sum("o.value_cents"),
            from = day_lit(r.from),
            to = day_lit(r.to),
        ),
    )?;
    let mut months: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
    for g in forecast {
        let e = months
            .entry((g.k.unwrap_or_default(), g.k2.unwrap_or_default()))
            .or_default();
        e.0 += g.a / 100;
        e.2 += g.b;
    }
    for g in actual {
        months
            .entry((g.k.unwrap_or_default(), g.k2.unwrap_or_default()))
            .or_default()
            .1 += g.a;
    }
    Ok((
        Table {
            columns: vec![
                Column::new("month", "Month", ColKind::Text),
                Column::new("currency", "Currency", ColKind::Text),
                Column::new("forecast", "Forecast (weighted)", ColKind::Money),
                Column::new("actual", "Actual won", ColKind::Money),
                Column::new("difference", "Difference", ColKind::Money),
                Column::new("attainment", "Attainment (%)", ColKind::Percent),
            ],
            rows: months
                .into_iter()
                .map(|((month, cur), (f, a, _))| {
                    vec![
                        Cell::Text(month),
                        Cell::Text(cur),
                        money(f),
                        money(a),
                        money(a - f),
                        percent(a, f),
                    ]
                })
                .collect(),
        },
        chart(ChartKind::Bar, "month", &["forecast", "actual"]),
        "Per month: the weighted value of the deals expected to close in it, won and lost ones included (each at the probability it had before closing), against what was actually won.".into(),
    ))
}

fn segment_growth(c: &mut DbConn, r: &Reach) -> AppResult<Built> {
    let org = lit(&r.org);
    let (from, to) = (day_lit(r.from), day_lit(r.to));
    // First and last recorded size in the period, and entries and exits in it.
    let q = format!(
        "SELECT s.id AS k, s.name AS k2, \
           CAST(COALESCE((SELECT z.members FROM segment_sizes z WHERE z.segment_id = s.id AND z.day >= {from} AND z.day <= {to} ORDER BY z.day ASC LIMIT 1), -1) AS BIGINT) AS a, \
           CAST(COALESCE((SELECT z.members FROM segment_sizes z WHERE z.segment_id = s.id AND z.day >= {from} AND z.day <= {to} ORDER BY z.day DESC LIMIT 1), -1) AS BIGINT) AS b, \
           CAST((SELECT COUNT(*) FROM segment_events e WHERE e.segment_id = s.id AND e.kind = 'entered' AND e.at >= {fs} AND e.at < {ta}) AS BIGINT) AS c, \
           CAST((SELECT COUNT(*) FROM segment_events e WHERE e.segment_id = s.id AND e.kind = 'left' AND e.at >= {fs} AND e.at < {ta}) AS BIGINT) AS d \
         FROM segments s WHERE s.organization_id = {org} ORDER BY s.name LIMIT 500",
        fs = start_lit(r.from),
        ta = after_lit(r.to),
    );
    let rows = load(c, q)?;
    let count = |n: i64| if n < 0 { Cell::Null } else { Cell::Int(n) };
    Ok((
        Table {
            columns: vec![
                Column::new("segment", "Segment", ColKind::Text),
                Column::new("start", "Members at the start", ColKind::Count),
                Column::new("end", "Members at the end", ColKind::Count),
                Column::new("change", "Change", ColKind::Count),
                Column::new("growth", "Growth (%)", ColKind::Percent),
                Column::new("entered", "Entered", ColKind::Count),
                Column::new("left", "Left", ColKind::Count),
            ],
            rows: rows
                .into_iter()
                .map(|g| {
                    let known = g.a >= 0 && g.b >= 0;
                    vec![
                        Cell::Text(g.k2.unwrap_or_default()),
                        count(g.a),
                        count(g.b),
                        if known { Cell::Int(g.b - g.a) } else { Cell::Null },
                        if known { percent(g.b - g.a, g.a) } else { Cell::Null },
                        Cell::Int(g.c),
                        Cell::Int(g.d),
                    ]
                })
                .collect(),
        },
        chart(ChartKind::Bar, "segment", &["entered", "left"]),
        "Each segment's size on the first and last day recorded in the period (sizes are recorded daily), and the clients who entered and left it.".into(),
    ))
}

fn rep_benchmark(c: &mut DbConn, r: &Reach, names: &Names) -> AppResult<Built> {
    // The currency most deals were won in over the period (the organization's own when
    // nothing was won): values in other currencies are not added in.
    let currency = load(
        c,
        format!(
            "SELECT o.currency AS k, NULL AS k2, CAST(COUNT(*) AS BIGINT) AS a, CAST(0 AS BIGINT) AS b, CAST(0 AS BIGINT) AS c, CAST(0 AS BIGINT) AS d \
             FROM opportunities o WHERE {w} AND o.status = 'won' GROUP BY o.currency ORDER BY COUNT(*) DESC, o.currency LIMIT 1",
            w = closed_in_period(r)
        ),
    )?
    .into_iter()
    .next()
    .and_then(|g| g.k)
    .map_or_else(|| crate::ops::default_currency(c, &r.org), Ok)?;
    let q = format!(
        "SELECT o.assigned_to AS k, NULL AS k2, {won} AS a, {value} AS b, CAST(0 AS BIGINT) AS c, CAST(0 AS BIGINT) AS d \
         FROM opportunities o WHERE {w} AND o.status = 'won' AND o.currency = {cur} AND o.assigned_to IS NOT NULL \
         GROUP BY o.assigned_to",
        won = count_if("o.status = 'won'"),
        value = sum("o.value_cents"),
        w = closed_in_period(r),
        cur = lit(&currency),
    );
    let mut per: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for g in load(c, q)? {
        if let Some(u) = g.k {
            let e = per.entry(u).or_default();
            e.0 += g.a;
            e.1 += g.b;
        }
    }
    if r.activities {
        for g in activities(c, r)? {
            if let Some(u) = g.k {
                per.entry(u).or_default().2 += g.a;
            }
        }
    }
    // why: the median is the team's: people who do not sell (service reps, admins logging
    // a call) and former members would pull it down.
    if r.deals_of.is_none() {
        per.retain(|u, _| names.sellers.contains(u));
    }
    // Every active seller counts, including one with nothing yet (they pull the median
    // down, as they should).
    if r.deals_of.is_none() {
        for u in &names.sellers {
            per.entry(u.clone()).or_default();
        }
    }
    let mut won: Vec<Decimal> = per.values().map(|v| Decimal::new(v.1, 2)).collect();
    let mut acts: Vec<Decimal> = per.values().map(|v| Decimal::from(v.2)).collect();
    let (won_median, acts_median) = (median(&mut won), median(&mut acts));
    let vs = |v: Decimal, m: Option<Decimal>| match m {
        Some(m) if m > Decimal::ZERO => Cell::Dec((v * Decimal::from(100) / m).round_dp(1)),
        _ => Cell::Null,
    };
    let mut rows: Vec<(String, (i64, i64, i64))> = per
        .into_iter()
        .map(|(u, v)| (names.user(Some(&u)), v))
        .collect();
    rows.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then_with(|| a.0.cmp(&b.0)));
    let mut table_rows: Vec<Vec<Cell>> = rows
        .into_iter()
        .map(|(name, (n, value, a))| {
            vec![
                Cell::Text(name),
                Cell::Int(n),
                money(value),
                Cell::Int(a),
                vs(Decimal::new(value, 2), won_median),
                vs(Decimal::from(a), acts_median),
            ]
        })
        .collect();
    table_rows.push(vec![
        Cell::Text("Team median".into()),
        Cell::Null,
        won_median.map_or(Cell::Null, |m| Cell::Dec(m.round_dp(2))),
        acts_median.map_or(Cell::Null, |m| Cell::Dec(m.round_dp(1))),
        Cell::Dec(Decimal::from(100)),
        Cell::Dec(Decimal::from(100)),
    ]);
    Ok((
        Table {
            columns: vec![
                Column::new("rep", "Rep", ColKind::Text),
                Column::new("wonDeals", "Won deals", ColKind::Count),
                Column::new("wonValue", &format!("Won value ({currency})"), ColKind::Money),
                Column::new("activities", "Activities", ColKind::Count),
                Column::new("wonVsMedian", "Won value vs median (%)", ColKind::Percent),
                Column::new("activitiesVsMedian", "Activities vs median (%)", ColKind::Percent),
            ],
            rows: table_rows,
        },
        chart(ChartKind::Bar, "rep", &["wonVsMedian", "activitiesVsMedian"]),
        format!(
            "Each rep's won value (in {currency}) and activities in the period against the team's median (100% = the median rep)."
        ),
    ))
}
