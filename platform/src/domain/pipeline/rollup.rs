//! Running totals of deals (`opportunity_rollup`), kept in step with every deal write in
//! the same transaction: the board's column totals and the forecast sum a few thousand
//! rollup rows instead of every deal. The upsert (`ON CONFLICT … DO UPDATE`) is spelled
//! the same on SQLite and PostgreSQL, so this one file serves both.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::QueryResult;

use super::analytics::COMMIT_PROBABILITY;
use super::model::OpportunityRow;
use crate::db::DbConn;

/// The rollup key and amounts of one live deal.
fn contribution(o: &OpportunityRow) -> Option<([String; 7], [i64; 4])> {
    if o.deleted_at.is_some() {
        return None;
    }
    let day = if o.status == "open" {
        o.expected_close
    } else {
        o.actual_close
    };
    let key = [
        o.organization_id.clone(),
        o.pipeline_id.clone(),
        o.stage_id.clone(),
        o.assigned_to.clone().unwrap_or_default(),
        o.currency.clone(),
        o.status.clone(),
        day.map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
    ];
    let commit = if o.probability >= COMMIT_PROBABILITY {
        o.value_cents
    } else {
        0
    };
    Some((
        key,
        [
            1,
            o.value_cents,
            o.value_cents * i64::from(o.probability),
            commit,
        ],
    ))
}

fn add(conn: &mut DbConn, key: &[String; 7], amounts: [i64; 4], sign: i64) -> QueryResult<()> {
    let mut q = diesel::sql_query(
        "INSERT INTO opportunity_rollup (organization_id, pipeline_id, stage_id, assigned_to, currency, status, close_day, \
         deals, value_cents, weighted_x100, commit_cents) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (organization_id, pipeline_id, stage_id, assigned_to, currency, status, close_day) DO UPDATE SET \
         deals = opportunity_rollup.deals + excluded.deals, value_cents = opportunity_rollup.value_cents + excluded.value_cents, \
         weighted_x100 = opportunity_rollup.weighted_x100 + excluded.weighted_x100, commit_cents = opportunity_rollup.commit_cents + excluded.commit_cents",
    )
    .into_boxed();
    for k in key {
        q = q.bind::<Text, _>(k.clone());
    }
    for a in amounts {
        q = q.bind::<BigInt, _>(a * sign);
    }
    q.execute(conn).map(drop)
}

/// Moves a deal's contribution from its old state to its new one (either may be absent).
pub fn apply(
    conn: &mut DbConn,
    before: Option<&OpportunityRow>,
    after: Option<&OpportunityRow>,
) -> QueryResult<()> {
    let old = before.and_then(contribution);
    let new = after.and_then(contribution);
    if old == new {
        return Ok(());
    }
    if let Some((k, a)) = &old {
        add(conn, k, *a, -1)?;
    }
    if let Some((k, a)) = &new {
        add(conn, k, *a, 1)?;
    }
    Ok(())
}

/// Recomputes the organization's rollup from its deals (after bulk loads).
pub fn rebuild(conn: &mut DbConn, org_id: &str) -> QueryResult<()> {
    diesel::sql_query("DELETE FROM opportunity_rollup WHERE organization_id = $1")
        .bind::<Text, _>(org_id)
        .execute(conn)?;
    diesel::sql_query(format!(
        "INSERT INTO opportunity_rollup (organization_id, pipeline_id, stage_id, assigned_to, currency, status, close_day, \
         deals, value_cents, weighted_x100, commit_cents) \
         SELECT organization_id, pipeline_id, stage_id, COALESCE(assigned_to, ''), currency, status, \
         CASE WHEN status = 'open' THEN COALESCE(CAST(expected_close AS TEXT), '') ELSE COALESCE(CAST(actual_close AS TEXT), '') END, \
         CAST(COUNT(*) AS BIGINT), CAST(SUM(value_cents) AS BIGINT), CAST(SUM(value_cents * probability) AS BIGINT), \
         CAST(SUM(CASE WHEN probability >= {COMMIT_PROBABILITY} THEN value_cents ELSE 0 END) AS BIGINT) \
         FROM opportunities WHERE organization_id = $1 AND deleted_at IS NULL \
         GROUP BY organization_id, pipeline_id, stage_id, COALESCE(assigned_to, ''), currency, status, \
         CASE WHEN status = 'open' THEN COALESCE(CAST(expected_close AS TEXT), '') ELSE COALESCE(CAST(actual_close AS TEXT), '') END"
    ))
    .bind::<Text, _>(org_id)
    .execute(conn)
    .map(drop)
}

/// A condition and its bind, for the read queries' optional filters.
pub enum Filter<'a> {
    Eq(&'static str, &'a str),
    Gte(&'static str, String),
    Lte(&'static str, String),
}

/// Appends `AND col op $n` for each filter, numbering placeholders after `first`.
pub fn where_sql(filters: &[Filter<'_>], first: usize) -> String {
    filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let n = first + i;
            match f {
                Filter::Eq(c, _) => format!(" AND {c} = ${n}"),
                Filter::Gte(c, _) => format!(" AND {c} >= ${n}"),
                Filter::Lte(c, _) => format!(" AND {c} <= ${n}"),
            }
        })
        .collect()
}

pub fn bind_all<'a>(
    mut q: diesel::query_builder::BoxedSqlQuery<
        'a,
        <DbConn as diesel::Connection>::Backend,
        diesel::query_builder::SqlQuery,
    >,
    filters: &'a [Filter<'a>],
) -> diesel::query_builder::BoxedSqlQuery<
    'a,
    <DbConn as diesel::Connection>::Backend,
    diesel::query_builder::SqlQuery,
> {
    for f in filters {
        q = match f {
            Filter::Eq(_, v) => q.bind::<Text, _>(*v),
            Filter::Gte(_, v) | Filter::Lte(_, v) => q.bind::<Text, _>(v.as_str()),
        };
    }
    q
}
