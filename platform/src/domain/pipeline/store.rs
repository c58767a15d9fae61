//! Queries over pipelines, stages, opportunities, history and loss reasons.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::QueryResult;

use super::model::*;
use crate::db::schema::{
    loss_reasons, opportunities, opportunity_stage_history, pipeline_stages, pipelines,
};
use crate::db::DbConn;

pub fn list_pipelines(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<PipelineRow>> {
    pipelines::table
        .filter(pipelines::organization_id.eq(org_id))
        .filter(pipelines::archived_at.is_null())
        .order((pipelines::position.asc(), pipelines::created_at.asc()))
        .select(PipelineRow::as_select())
        .load(conn)
}

pub fn find_pipeline(
    conn: &mut DbConn,
    org_id: &str,
    id: &str,
) -> QueryResult<Option<PipelineRow>> {
    pipelines::table
        .filter(pipelines::organization_id.eq(org_id))
        .filter(pipelines::id.eq(id))
        .select(PipelineRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_pipeline(conn: &mut DbConn, row: &PipelineRow) -> QueryResult<()> {
    diesel::insert_into(pipelines::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn update_pipeline(conn: &mut DbConn, row: &PipelineRow) -> QueryResult<()> {
    diesel::update(pipelines::table.find(&row.id))
        .set((
            pipelines::name.eq(&row.name),
            pipelines::rotting_days.eq(row.rotting_days),
            pipelines::position.eq(row.position),
            pipelines::archived_at.eq(row.archived_at),
            pipelines::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .map(drop)
}

/// Stages of the organization's pipelines in board order (all of them, retired too).
pub fn stages_of_org(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<StageRow>> {
    pipeline_stages::table
        .filter(pipeline_stages::organization_id.eq(org_id))
        .order((
            pipeline_stages::pipeline_id.asc(),
            pipeline_stages::position.asc(),
        ))
        .select(StageRow::as_select())
        .load(conn)
}

pub fn stages_of(conn: &mut DbConn, pipeline_id: &str) -> QueryResult<Vec<StageRow>> {
    pipeline_stages::table
        .filter(pipeline_stages::pipeline_id.eq(pipeline_id))
        .order(pipeline_stages::position.asc())
        .select(StageRow::as_select())
        .load(conn)
}

pub fn find_stage(conn: &mut DbConn, org_id: &str, id: &str) -> QueryResult<Option<StageRow>> {
    pipeline_stages::table
        .filter(pipeline_stages::organization_id.eq(org_id))
        .filter(pipeline_stages::id.eq(id))
        .select(StageRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_stage(conn: &mut DbConn, row: &StageRow) -> QueryResult<()> {
    diesel::insert_into(pipeline_stages::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn update_stage(conn: &mut DbConn, row: &StageRow) -> QueryResult<()> {
    diesel::update(pipeline_stages::table.find(&row.id))
        .set((
            pipeline_stages::name.eq(&row.name),
            pipeline_stages::position.eq(row.position),
            pipeline_stages::probability.eq(row.probability),
            pipeline_stages::is_active.eq(row.is_active),
            pipeline_stages::color.eq(&row.color),
            pipeline_stages::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .map(drop)
}

pub fn count_in_stage(conn: &mut DbConn, stage_id: &str) -> QueryResult<i64> {
    opportunities::table
        .filter(opportunities::stage_id.eq(stage_id))
        .filter(opportunities::deleted_at.is_null())
        .count()
        .get_result(conn)
}

pub fn loss_reasons(
    conn: &mut DbConn,
    org_id: &str,
    active_only: bool,
) -> QueryResult<Vec<LossReasonRow>> {
    let mut q = loss_reasons::table
        .filter(loss_reasons::organization_id.eq(org_id))
        .order(loss_reasons::name.asc())
        .select(LossReasonRow::as_select())
        .into_boxed();
    if active_only {
        q = q.filter(loss_reasons::is_active.eq(true));
    }
    q.load(conn)
}

pub fn insert_loss_reason(conn: &mut DbConn, row: &LossReasonRow) -> QueryResult<()> {
    diesel::insert_into(loss_reasons::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn set_loss_reason_active(
    conn: &mut DbConn,
    org_id: &str,
    id: &str,
    active: bool,
) -> QueryResult<bool> {
    Ok(diesel::update(
        loss_reasons::table
            .filter(loss_reasons::organization_id.eq(org_id))
            .filter(loss_reasons::id.eq(id)),
    )
    .set(loss_reasons::is_active.eq(active))
    .execute(conn)?
        == 1)
}

pub fn find_opportunity(
    conn: &mut DbConn,
    org_id: &str,
    id: &str,
) -> QueryResult<Option<OpportunityRow>> {
    opportunities::table
        .filter(opportunities::organization_id.eq(org_id))
        .filter(opportunities::id.eq(id))
        .select(OpportunityRow::as_select())
        .first(conn)
        .optional()
}

/// Deals' names by id (trashed ones too: a log names what was there).
pub fn names_of(
    conn: &mut DbConn,
    org_id: &str,
    ids: &[String],
) -> QueryResult<Vec<(String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    opportunities::table
        .filter(opportunities::organization_id.eq(org_id))
        .filter(opportunities::id.eq_any(ids))
        .select((opportunities::id, opportunities::name))
        .load(conn)
}

pub fn insert_opportunity(conn: &mut DbConn, row: &OpportunityRow) -> QueryResult<()> {
    diesel::insert_into(opportunities::table)
        .values(row)
        .execute(conn)?;
    crate::domain::outbox::touch(
        conn,
        &row.organization_id,
        crate::domain::outbox::OPPORTUNITY,
        &row.id,
    )
}

/// Writes the row if the stored version is still `expected`; false when stale.
pub fn replace_opportunity(
    conn: &mut DbConn,
    row: &OpportunityRow,
    expected: i64,
) -> QueryResult<bool> {
    let n = diesel::update(
        opportunities::table
            .filter(opportunities::id.eq(&row.id))
            .filter(opportunities::organization_id.eq(&row.organization_id))
            .filter(opportunities::version.eq(expected)),
    )
    .set((
        (
            opportunities::pipeline_id.eq(&row.pipeline_id),
            opportunities::stage_id.eq(&row.stage_id),
            opportunities::client_id.eq(&row.client_id),
            opportunities::name.eq(&row.name),
            opportunities::description.eq(&row.description),
            opportunities::value_cents.eq(row.value_cents),
            opportunities::currency.eq(&row.currency),
            opportunities::probability.eq(row.probability),
            opportunities::probability_set.eq(row.probability_set),
            opportunities::expected_close.eq(row.expected_close),
            opportunities::actual_close.eq(row.actual_close),
        ),
        (
            opportunities::status.eq(&row.status),
            opportunities::assigned_to.eq(&row.assigned_to),
            opportunities::source.eq(&row.source),
            opportunities::competitors.eq(&row.competitors),
            opportunities::loss_reason.eq(&row.loss_reason),
            opportunities::custom_fields.eq(&row.custom_fields),
            opportunities::version.eq(expected + 1),
            opportunities::stage_entered_at.eq(row.stage_entered_at),
            opportunities::updated_at.eq(row.updated_at),
            opportunities::deleted_at.eq(row.deleted_at),
        ),
    ))
    .execute(conn)?;
    if n == 1 {
        crate::domain::outbox::touch(
            conn,
            &row.organization_id,
            crate::domain::outbox::OPPORTUNITY,
            &row.id,
        )?;
    }
    Ok(n == 1)
}

pub fn insert_move(conn: &mut DbConn, row: &StageMoveRow) -> QueryResult<()> {
    diesel::insert_into(opportunity_stage_history::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn history_of(
    conn: &mut DbConn,
    org_id: &str,
    opportunity_id: &str,
) -> QueryResult<Vec<StageMoveRow>> {
    opportunity_stage_history::table
        .filter(opportunity_stage_history::organization_id.eq(org_id))
        .filter(opportunity_stage_history::opportunity_id.eq(opportunity_id))
        .order((
            opportunity_stage_history::moved_at.asc(),
            opportunity_stage_history::id.asc(),
        ))
        .select(StageMoveRow::as_select())
        .load(conn)
}

/// Filters of the opportunity list.
#[derive(Debug, Default, Clone)]
pub struct OpportunityFilter {
    pub only_assigned_to: Option<String>,
    pub pipeline_id: Option<String>,
    pub stage_id: Option<String>,
    pub statuses: Vec<String>,
    pub assigned_to: Option<String>,
    pub client_id: Option<String>,
    pub close_from: Option<NaiveDate>,
    pub close_to: Option<NaiveDate>,
    pub value_min: Option<i64>,
    pub value_max: Option<i64>,
    pub custom: Vec<crate::domain::clients::query::CustomFilter>,
    /// Keyset: continue after this id (newest first).
    pub before: Option<String>,
    pub limit: i64,
}

pub fn list_opportunities(
    conn: &mut DbConn,
    org_id: &str,
    f: &OpportunityFilter,
) -> QueryResult<Vec<OpportunityRow>> {
    use crate::db::schema::custom_field_values as v;
    use crate::domain::custom_fields::value::{Op, Operand};
    let mut q = opportunities::table
        .filter(opportunities::organization_id.eq(org_id.to_string()))
        .filter(opportunities::deleted_at.is_null())
        .select(OpportunityRow::as_select())
        .order(opportunities::id.desc())
        .limit(f.limit)
        .into_boxed();
    if let Some(u) = &f.only_assigned_to {
        q = q.filter(opportunities::assigned_to.eq(u.clone()));
    }
    if let Some(p) = &f.pipeline_id {
        q = q.filter(opportunities::pipeline_id.eq(p.clone()));
    }
    if let Some(s) = &f.stage_id {
        q = q.filter(opportunities::stage_id.eq(s.clone()));
    }
    if !f.statuses.is_empty() {
        q = q.filter(opportunities::status.eq_any(f.statuses.clone()));
    }
    if let Some(a) = &f.assigned_to {
        q = q.filter(opportunities::assigned_to.eq(a.clone()));
    }
    if let Some(c) = &f.client_id {
        q = q.filter(opportunities::client_id.eq(c.clone()));
    }
    if let Some(d) = f.close_from {
        q = q.filter(opportunities::expected_close.ge(d));
    }
    if let Some(d) = f.close_to {
        q = q.filter(opportunities::expected_close.le(d));
    }
    if let Some(v) = f.value_min {
        q = q.filter(opportunities::value_cents.ge(v));
    }
    if let Some(v) = f.value_max {
        q = q.filter(opportunities::value_cents.le(v));
    }
    if let Some(b) = &f.before {
        q = q.filter(opportunities::id.lt(b.clone()));
    }
    for cf in &f.custom {
        let fid = cf.field.id.clone();
        macro_rules! exists_where {
            ($cond:expr) => {
                q.filter(diesel::dsl::exists(
                    v::table
                        .filter(v::record_id.eq(opportunities::id))
                        .filter(v::field_id.eq(fid))
                        .filter($cond)
                        .select(v::id),
                ))
            };
        }
        q = match (&cf.operand, cf.op) {
            (Operand::Text(t), Op::Contains) => exists_where!(v::text_value
                .like(format!("%{}%", crate::domain::orgs::store::escape_like(t)))
                .escape('\\')),
            (Operand::Text(t), Op::Gt) => exists_where!(v::text_value.gt(t.clone())),
            (Operand::Text(t), Op::Gte) => exists_where!(v::text_value.ge(t.clone())),
            (Operand::Text(t), Op::Lt) => exists_where!(v::text_value.lt(t.clone())),
            (Operand::Text(t), Op::Lte) => exists_where!(v::text_value.le(t.clone())),
            (Operand::Text(t), _) => exists_where!(v::text_value.eq(t.clone())),
            (Operand::Num(n), Op::Gt) => exists_where!(v::num_value.gt(*n)),
            (Operand::Num(n), Op::Gte) => exists_where!(v::num_value.ge(*n)),
            (Operand::Num(n), Op::Lt) => exists_where!(v::num_value.lt(*n)),
            (Operand::Num(n), Op::Lte) => exists_where!(v::num_value.le(*n)),
            (Operand::Num(n), _) => exists_where!(v::num_value.eq(*n)),
            (Operand::TextList(items), _) => exists_where!(v::text_value.eq_any(items.clone())),
            (Operand::NumList(items), _) => exists_where!(v::num_value.eq_any(items.clone())),
        };
    }
    q.load(conn)
}

/// Open deals of a pipeline for the board, newest first, capped per stage by the caller's
/// limit; `before` (a deal id) continues a column where its last card left off.
#[allow(clippy::too_many_arguments)] // why: the board's filters, each a plain value.
pub fn board(
    conn: &mut DbConn,
    org_id: &str,
    pipeline_id: &str,
    owner: Option<&str>,
    close_month: Option<(NaiveDate, NaiveDate)>,
    per_stage: i64,
    stage_id: &str,
    before: Option<&str>,
) -> QueryResult<Vec<OpportunityRow>> {
    let mut q = opportunities::table
        .filter(opportunities::organization_id.eq(org_id.to_string()))
        .filter(opportunities::pipeline_id.eq(pipeline_id.to_string()))
        .filter(opportunities::stage_id.eq(stage_id.to_string()))
        .filter(opportunities::deleted_at.is_null())
        .select(OpportunityRow::as_select())
        .order(opportunities::id.desc())
        .limit(per_stage)
        .into_boxed();
    if let Some(o) = owner {
        q = q.filter(opportunities::assigned_to.eq(o.to_string()));
    }
    if let Some((from, to)) = close_month {
        q = q
            .filter(opportunities::expected_close.ge(from))
            .filter(opportunities::expected_close.le(to));
    }
    if let Some(b) = before {
        q = q.filter(opportunities::id.lt(b.to_string()));
    }
    q.load(conn)
}

#[derive(Debug, Clone, QueryableByName)]
pub struct StageTotal {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub stage_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub currency: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub deals: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub value_cents: i64,
}

/// Count and value per (stage, currency) of a pipeline's live deals, with the board's
/// filters, read from the rollup.
pub fn stage_totals(
    conn: &mut DbConn,
    org_id: &str,
    pipeline_id: &str,
    owner: Option<&str>,
    close_month: Option<(NaiveDate, NaiveDate)>,
) -> QueryResult<Vec<StageTotal>> {
    use super::rollup::{bind_all, where_sql, Filter};
    let mut filters = vec![Filter::Eq("pipeline_id", pipeline_id)];
    if let Some(o) = owner {
        filters.push(Filter::Eq("assigned_to", o));
    }
    if let Some((from, to)) = close_month {
        filters.push(Filter::Gte(
            "close_day",
            from.format("%Y-%m-%d").to_string(),
        ));
        filters.push(Filter::Lte("close_day", to.format("%Y-%m-%d").to_string()));
    }
    let sql = format!(
        "SELECT stage_id, currency, CAST(SUM(deals) AS BIGINT) AS deals, CAST(SUM(value_cents) AS BIGINT) AS value_cents \
         FROM opportunity_rollup WHERE organization_id = $1{} GROUP BY stage_id, currency HAVING SUM(deals) > 0",
        where_sql(&filters, 2)
    );
    bind_all(
        diesel::sql_query(sql)
            .into_boxed()
            .bind::<diesel::sql_types::Text, _>(org_id),
        &filters,
    )
    .load(conn)
}

pub fn contacts_of(
    conn: &mut DbConn,
    opportunity_id: &str,
) -> QueryResult<Vec<super::service::Contact>> {
    use crate::db::schema::opportunity_contacts as oc;
    Ok(oc::table
        .filter(oc::opportunity_id.eq(opportunity_id))
        .order(oc::client_id.asc())
        .select((oc::client_id, oc::role))
        .load::<(String, String)>(conn)?
        .into_iter()
        .map(|(client_id, role)| super::service::Contact { client_id, role })
        .collect())
}

pub fn set_contacts(
    conn: &mut DbConn,
    org_id: &str,
    opportunity_id: &str,
    contacts: &[super::service::Contact],
) -> QueryResult<()> {
    use crate::db::schema::opportunity_contacts as oc;
    diesel::delete(oc::table.filter(oc::opportunity_id.eq(opportunity_id))).execute(conn)?;
    for c in contacts {
        diesel::insert_into(oc::table)
            .values((
                oc::opportunity_id.eq(opportunity_id),
                oc::client_id.eq(&c.client_id),
                oc::organization_id.eq(org_id),
                oc::role.eq(&c.role),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// id, name, value (cents), currency, probability, close, status, owner, client id, client,
/// pipeline, stage.
pub type ExportRow = (
    String,
    String,
    i64,
    String,
    i32,
    Option<NaiveDate>,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
);

/// A page of a deal export after the id `after`, by id: live deals the caller reaches
/// (`only_owner`: those assigned to that user), optionally of one status.
pub fn export_page(
    conn: &mut DbConn,
    org_id: &str,
    only_owner: Option<&str>,
    status: Option<&str>,
    after: &str,
    limit: i64,
) -> QueryResult<Vec<ExportRow>> {
    use crate::db::schema::{clients, pipelines};
    let mut q = opportunities::table
        .inner_join(clients::table.on(clients::id.eq(opportunities::client_id)))
        .inner_join(pipeline_stages::table.on(pipeline_stages::id.eq(opportunities::stage_id)))
        .inner_join(pipelines::table.on(pipelines::id.eq(opportunities::pipeline_id)))
        .filter(opportunities::organization_id.eq(org_id))
        .filter(opportunities::deleted_at.is_null())
        .filter(opportunities::id.gt(after.to_string()))
        .order(opportunities::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(owner) = only_owner {
        q = q.filter(opportunities::assigned_to.eq(owner.to_string()));
    }
    if let Some(s) = status {
        q = q.filter(opportunities::status.eq(s.to_string()));
    }
    q.select((
        opportunities::id,
        opportunities::name,
        opportunities::value_cents,
        opportunities::currency,
        opportunities::probability,
        opportunities::expected_close,
        opportunities::status,
        opportunities::assigned_to,
        opportunities::client_id,
        clients::display_name,
        pipelines::name,
        pipeline_stages::name,
    ))
    .load(conn)
}

/// A `YYYY-MM-DD` date from a query or body field named `k`.
pub fn parse_date(k: &str, v: &str) -> crate::error::AppResult<NaiveDate> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
        .map_err(|_| crate::error::AppError::invalid(k, "Use a date as YYYY-MM-DD."))
}

/// Parses `/api/opportunities` filters (API conventions) into the store's filter.
pub fn parse_list_filter(
    c: &mut DbConn,
    org: &str,
    pairs: &[(String, String)],
    user_id: &str,
) -> crate::error::AppResult<OpportunityFilter> {
    use crate::domain::custom_fields::value::{encode_operand, Op};
    let defs = crate::domain::custom_fields::store::list(c, org, "opportunity", false)?;
    let mut f = OpportunityFilter {
        limit: 50,
        ..Default::default()
    };
    for (k, v) in pairs {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match k.as_str() {
            "limit" => f.limit = v.parse().ok().filter(|l| (1..=500).contains(l)).ok_or_else(|| crate::error::AppError::invalid("limit", "Use a whole number from 1 to 500."))?,
            "cursor" => f.before = Some(v.to_string()),
            "filter[pipeline]" => f.pipeline_id = Some(v.into()),
            "filter[stage]" => f.stage_id = Some(v.into()),
            "filter[status]" | "filter[status][in]" => f.statuses = v.split(',').map(str::to_string).collect(),
            "filter[assignedTo]" | "filter[owner]" => f.assigned_to = Some(if v == "me" { user_id.to_string() } else { v.into() }),
            "filter[clientId]" | "filter[client]" => f.client_id = Some(v.into()),
            "filter[expectedCloseDate][gte]" => f.close_from = Some(parse_date(k, v)?),
            "filter[expectedCloseDate][lte]" => f.close_to = Some(parse_date(k, v)?),
            "filter[value][gte]" => f.value_min = Some(crate::domain::money::parse_cents(v).map_err(|e| crate::error::AppError::invalid(k, &e))?),
            "filter[value][lte]" => f.value_max = Some(crate::domain::money::parse_cents(v).map_err(|e| crate::error::AppError::invalid(k, &e))?),
            custom if custom.starts_with("filter[customFields.") => {
                let inner = &custom["filter[customFields.".len()..];
                let (key, op) = match inner.split_once("][") {
                    Some((key, rest)) => (key, rest.trim_end_matches(']')),
                    None => (inner.trim_end_matches(']'), ""),
                };
                let def = defs.iter().find(|d| d.field_key == key).ok_or_else(|| crate::error::AppError::invalid(k, "There is no such custom field."))?;
                let op = Op::parse(op).ok_or_else(|| crate::error::AppError::invalid(k, "Use one of eq, gt, gte, lt, lte, contains, in."))?;
                let operand = encode_operand(def, op, v).map_err(|e| crate::error::AppError::invalid(k, &e))?;
                f.custom.push(crate::domain::clients::query::CustomFilter { field: def.clone(), op, operand });
            }
            other => return Err(crate::error::AppError::invalid(other, "Unknown query parameter; filters: pipeline, stage, status, assignedTo, clientId, expectedCloseDate[gte|lte], value[gte|lte], customFields.<key>.")),
        }
    }
    Ok(f)
}
