//! Queries over field definitions and the value index.

use diesel::prelude::*;
use diesel::QueryResult;

use super::model::FieldRow;
use super::value::Indexed;
use crate::db::schema::{custom_field_values, custom_fields};
use crate::db::{new_id, DbConn};

/// Definitions of an entity in display order; archived ones only when asked.
pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    entity: &str,
    include_archived: bool,
) -> QueryResult<Vec<FieldRow>> {
    let mut q = custom_fields::table
        .filter(custom_fields::organization_id.eq(org_id))
        .filter(custom_fields::entity.eq(entity))
        .select(FieldRow::as_select())
        .order((custom_fields::position.asc(), custom_fields::label.asc()))
        .into_boxed();
    if !include_archived {
        q = q.filter(custom_fields::archived_at.is_null());
    }
    q.load(conn)
}

pub fn find(conn: &mut DbConn, org_id: &str, id: &str) -> QueryResult<Option<FieldRow>> {
    custom_fields::table
        .filter(custom_fields::organization_id.eq(org_id))
        .filter(custom_fields::id.eq(id))
        .select(FieldRow::as_select())
        .first(conn)
        .optional()
}

pub fn key_taken(conn: &mut DbConn, org_id: &str, entity: &str, key: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        custom_fields::table
            .filter(custom_fields::organization_id.eq(org_id))
            .filter(custom_fields::entity.eq(entity))
            .filter(custom_fields::field_key.eq(key)),
    ))
    .get_result(conn)
}

pub fn next_position(conn: &mut DbConn, org_id: &str, entity: &str) -> QueryResult<i32> {
    let max: Option<i32> = custom_fields::table
        .filter(custom_fields::organization_id.eq(org_id))
        .filter(custom_fields::entity.eq(entity))
        .select(diesel::dsl::max(custom_fields::position))
        .first(conn)?;
    Ok(max.map_or(0, |m| m + 1))
}

pub fn insert(conn: &mut DbConn, row: &FieldRow) -> QueryResult<()> {
    diesel::insert_into(custom_fields::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Replaces the definition if its version is still `expected`; false when stale.
pub fn replace(conn: &mut DbConn, row: &FieldRow, expected: i64) -> QueryResult<bool> {
    let n = diesel::update(
        custom_fields::table
            .filter(custom_fields::id.eq(&row.id))
            .filter(custom_fields::version.eq(expected)),
    )
    .set((
        custom_fields::label.eq(&row.label),
        custom_fields::required.eq(row.required),
        custom_fields::options.eq(&row.options),
        custom_fields::default_value.eq(&row.default_value),
        custom_fields::help_text.eq(&row.help_text),
        custom_fields::display_group.eq(&row.display_group),
        custom_fields::position.eq(row.position),
        custom_fields::sensitive.eq(row.sensitive),
        custom_fields::searchable.eq(row.searchable),
        custom_fields::currency.eq(&row.currency),
        custom_fields::archived_at.eq(row.archived_at),
        custom_fields::version.eq(expected + 1),
        custom_fields::updated_at.eq(row.updated_at),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Rewrites the indexed values of one record for the given fields.
pub fn write_values(
    conn: &mut DbConn,
    org_id: &str,
    record_id: &str,
    values: &[(String, Vec<Indexed>)],
) -> QueryResult<()> {
    // why: a record saved without custom values would still cost a DELETE round trip; an
    // import of a million rows spent one per row on it.
    if values.is_empty() {
        return Ok(());
    }
    // A client an import chunk holds back takes its values with it (see clients::bulk).
    let rows: Vec<crate::domain::clients::bulk::ValueRow> = values
        .iter()
        .flat_map(|(field_id, index)| {
            index.iter().map(move |i| {
                (
                    new_id(),
                    org_id.to_string(),
                    field_id.clone(),
                    record_id.to_string(),
                    i.text.clone(),
                    i.num,
                )
            })
        })
        .collect();
    let Err(rows) = crate::domain::clients::bulk::hold_values(record_id, rows) else {
        return Ok(());
    };
    let field_ids: Vec<&str> = values.iter().map(|(f, _)| f.as_str()).collect();
    diesel::delete(
        custom_field_values::table
            .filter(custom_field_values::record_id.eq(record_id))
            .filter(custom_field_values::field_id.eq_any(&field_ids)),
    )
    .execute(conn)?;
    // why: MultiConnection has no batch insert for SQLite; values per record are few.
    for (id, org, field, record, text, num) in rows {
        diesel::insert_into(custom_field_values::table)
            .values((
                custom_field_values::id.eq(id),
                custom_field_values::organization_id.eq(org),
                custom_field_values::field_id.eq(field),
                custom_field_values::record_id.eq(record),
                custom_field_values::text_value.eq(text),
                custom_field_values::num_value.eq(num),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete_record_values(conn: &mut DbConn, record_id: &str) -> QueryResult<()> {
    diesel::delete(custom_field_values::table.filter(custom_field_values::record_id.eq(record_id)))
        .execute(conn)
        .map(drop)
}
