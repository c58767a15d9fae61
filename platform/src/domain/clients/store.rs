//! Queries over clients, tags, relations and saved views.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::QueryResult;

use super::keys::Keys;
use super::model::*;
use crate::db::schema::{client_relations, client_tags, clients, saved_views, tags};
use crate::db::DbConn;

pub fn find(conn: &mut DbConn, org_id: &str, id: &str) -> QueryResult<Option<ClientRow>> {
    if super::bulk::is_held(id) {
        super::bulk::flush(conn)?;
    }
    clients::table
        .filter(clients::organization_id.eq(org_id))
        .filter(clients::id.eq(id))
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_many(conn: &mut DbConn, org_id: &str, ids: &[String]) -> QueryResult<Vec<ClientRow>> {
    if ids.iter().any(|id| super::bulk::is_held(id)) {
        super::bulk::flush(conn)?;
    }
    clients::table
        .filter(clients::organization_id.eq(org_id))
        .filter(clients::id.eq_any(ids))
        .select(ClientRow::as_select())
        .load(conn)
}

pub fn insert(conn: &mut DbConn, row: &ClientRow) -> QueryResult<()> {
    if super::bulk::hold_row(row) {
        return crate::domain::outbox::touch(
            conn,
            &row.organization_id,
            crate::domain::outbox::CLIENT,
            &row.id,
        );
    }
    let k = Keys::of(row);
    diesel::insert_into(clients::table)
        .values((
            row,
            clients::phone_key.eq(k.phone),
            clients::name_key.eq(k.name),
            clients::website_key.eq(k.website),
        ))
        .execute(conn)?;
    crate::domain::outbox::touch(
        conn,
        &row.organization_id,
        crate::domain::outbox::CLIENT,
        &row.id,
    )
}

/// Writes every column if the stored version is still `expected`; false when stale.
pub fn replace(conn: &mut DbConn, row: &ClientRow, expected: i64) -> QueryResult<bool> {
    if super::bulk::is_held(&row.id) {
        super::bulk::flush(conn)?;
    }
    let k = Keys::of(row);
    let n = diesel::update(
        clients::table
            .filter(clients::id.eq(&row.id))
            .filter(clients::organization_id.eq(&row.organization_id))
            .filter(clients::version.eq(expected)),
    )
    .set((
        (
            clients::kind.eq(&row.kind),
            clients::first_name.eq(&row.first_name),
            clients::last_name.eq(&row.last_name),
            clients::company_name.eq(&row.company_name),
            clients::display_name.eq(&row.display_name),
            clients::sort_name.eq(&row.sort_name),
            clients::email.eq(&row.email),
            clients::phone.eq(&row.phone),
            clients::street.eq(&row.street),
            clients::city.eq(&row.city),
            clients::region.eq(&row.region),
        ),
        (
            clients::postal_code.eq(&row.postal_code),
            clients::country.eq(&row.country),
            clients::website.eq(&row.website),
            clients::industry.eq(&row.industry),
            clients::source.eq(&row.source),
            clients::status.eq(&row.status),
            clients::assigned_to.eq(&row.assigned_to),
            clients::employer_id.eq(&row.employer_id),
            clients::custom_fields.eq(&row.custom_fields),
            clients::version.eq(expected + 1),
            clients::updated_at.eq(row.updated_at),
            clients::deleted_at.eq(row.deleted_at),
        ),
        (
            clients::phone_key.eq(k.phone),
            clients::name_key.eq(k.name),
            clients::website_key.eq(k.website),
        ),
    ))
    .execute(conn)?;
    if n == 1 {
        crate::domain::outbox::touch_client(conn, &row.organization_id, &row.id)?;
    }
    Ok(n == 1)
}

pub fn delete(conn: &mut DbConn, org_id: &str, id: &str) -> QueryResult<()> {
    diesel::delete(
        clients::table
            .filter(clients::organization_id.eq(org_id))
            .filter(clients::id.eq(id)),
    )
    .execute(conn)?;
    crate::domain::outbox::touch(conn, org_id, crate::domain::outbox::CLIENT, id)
}

/// People employed by a company (live ones).
pub fn people_of(conn: &mut DbConn, org_id: &str, company_id: &str) -> QueryResult<Vec<ClientRow>> {
    clients::table
        .filter(clients::organization_id.eq(org_id))
        .filter(clients::employer_id.eq(company_id))
        .filter(clients::deleted_at.is_null())
        .order(clients::sort_name.asc())
        .limit(200)
        .select(ClientRow::as_select())
        .load(conn)
}

/// Companies whose name starts with `prefix`, for the company picker.
pub fn companies_matching(
    conn: &mut DbConn,
    org_id: &str,
    prefix: &str,
    limit: i64,
) -> QueryResult<Vec<ClientRow>> {
    let starts = super::query::starts_with(conn, "clients.sort_name", prefix);
    clients::table
        .filter(clients::organization_id.eq(org_id))
        .filter(clients::kind.eq("company"))
        .filter(clients::deleted_at.is_null())
        .filter(starts)
        .order(clients::sort_name.asc())
        .limit(limit)
        .select(ClientRow::as_select())
        .load(conn)
}

pub fn counts_by_status(
    conn: &mut DbConn,
    org_id: &str,
    only: Option<&str>,
) -> QueryResult<Vec<(String, i64)>> {
    use crate::db::schema::client_counts as cc;
    // why: the counts kept by triggers (a few rows per owner; on PostgreSQL up to sixteen
    // slots each, any of which may be negative, so only the sum means anything) answer what
    // a GROUP BY over every client would, at any size.
    let mut q = cc::table
        .filter(cc::organization_id.eq(org_id))
        .group_by(cc::status)
        .select((
            cc::status,
            diesel::dsl::sql::<diesel::sql_types::BigInt>("CAST(SUM(client_counts.n) AS BIGINT)"),
        ))
        .into_boxed();
    if let Some(user) = only {
        q = q.filter(cc::owner.eq(user));
    }
    Ok(q.load::<(String, i64)>(conn)?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect())
}

pub fn count_created_since(
    conn: &mut DbConn,
    org_id: &str,
    since: NaiveDateTime,
    only: Option<&str>,
) -> QueryResult<i64> {
    let mut q = clients::table
        .filter(clients::organization_id.eq(org_id))
        .filter(clients::deleted_at.is_null())
        .filter(clients::created_at.ge(since))
        .count()
        .into_boxed();
    if let Some(user) = only {
        q = q.filter(clients::assigned_to.eq(user));
    }
    q.get_result(conn)
}

pub fn count_assigned(conn: &mut DbConn, org_id: &str, user_id: &str) -> QueryResult<i64> {
    clients::table
        .filter(clients::organization_id.eq(org_id))
        .filter(clients::deleted_at.is_null())
        .filter(clients::assigned_to.eq(user_id))
        .count()
        .get_result(conn)
}

// Tags

pub fn list_tags(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<TagRow>> {
    tags::table
        .filter(tags::organization_id.eq(org_id))
        .order(tags::name.asc())
        .select(TagRow::as_select())
        .load(conn)
}

pub fn find_tag(conn: &mut DbConn, org_id: &str, id: &str) -> QueryResult<Option<TagRow>> {
    tags::table
        .filter(tags::organization_id.eq(org_id))
        .filter(tags::id.eq(id))
        .select(TagRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_tag_by_name(
    conn: &mut DbConn,
    org_id: &str,
    name: &str,
) -> QueryResult<Option<TagRow>> {
    tags::table
        .filter(tags::organization_id.eq(org_id))
        .filter(crate::db::lower(tags::name).eq(name.to_lowercase()))
        .select(TagRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_tag(conn: &mut DbConn, row: &TagRow) -> QueryResult<()> {
    diesel::insert_into(tags::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn update_tag(
    conn: &mut DbConn,
    org_id: &str,
    id: &str,
    name: &str,
    color: &str,
) -> QueryResult<()> {
    diesel::update(
        tags::table
            .filter(tags::organization_id.eq(org_id))
            .filter(tags::id.eq(id)),
    )
    .set((tags::name.eq(name), tags::color.eq(color)))
    .execute(conn)?;
    crate::domain::outbox::touch_tagged(conn, org_id, id)
}

pub fn delete_tag(conn: &mut DbConn, org_id: &str, id: &str) -> QueryResult<bool> {
    crate::domain::outbox::touch_tagged(conn, org_id, id)?;
    Ok(diesel::delete(
        tags::table
            .filter(tags::organization_id.eq(org_id))
            .filter(tags::id.eq(id)),
    )
    .execute(conn)?
        == 1)
}

pub fn tag_usage(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<(String, i64)>> {
    client_tags::table
        .filter(client_tags::organization_id.eq(org_id))
        .group_by(client_tags::tag_id)
        .select((client_tags::tag_id, diesel::dsl::count_star()))
        .load(conn)
}

/// Tags of each of the given clients.
pub fn tags_of(conn: &mut DbConn, client_ids: &[String]) -> QueryResult<Vec<(String, TagRow)>> {
    // why: Diesel prepares an `IN (…)` list afresh every time (its length varies); one
    // client's tags, asked on every create, view and edit, take a statement it keeps.
    if let [id] = client_ids {
        return client_tags::table
            .inner_join(tags::table)
            .filter(client_tags::client_id.eq(id))
            .order(tags::name.asc())
            .select((client_tags::client_id, TagRow::as_select()))
            .load(conn);
    }
    client_tags::table
        .inner_join(tags::table)
        .filter(client_tags::client_id.eq_any(client_ids))
        .order(tags::name.asc())
        .select((client_tags::client_id, TagRow::as_select()))
        .load(conn)
}

pub fn set_tags(
    conn: &mut DbConn,
    org_id: &str,
    client_id: &str,
    tag_ids: &[String],
) -> QueryResult<()> {
    if super::bulk::hold_tags(org_id, client_id, tag_ids) {
        return crate::domain::outbox::touch(
            conn,
            org_id,
            crate::domain::outbox::CLIENT,
            client_id,
        );
    }
    diesel::delete(client_tags::table.filter(client_tags::client_id.eq(client_id)))
        .execute(conn)?;
    for tag_id in tag_ids {
        add_tag(conn, org_id, client_id, tag_id)?;
    }
    crate::domain::outbox::touch(conn, org_id, crate::domain::outbox::CLIENT, client_id)
}

pub fn add_tag(
    conn: &mut DbConn,
    org_id: &str,
    client_id: &str,
    tag_id: &str,
) -> QueryResult<bool> {
    let exists: bool = diesel::select(diesel::dsl::exists(
        client_tags::table
            .filter(client_tags::client_id.eq(client_id))
            .filter(client_tags::tag_id.eq(tag_id)),
    ))
    .get_result(conn)?;
    if exists {
        return Ok(false);
    }
    diesel::insert_into(client_tags::table)
        .values((
            client_tags::client_id.eq(client_id),
            client_tags::tag_id.eq(tag_id),
            client_tags::organization_id.eq(org_id),
        ))
        .execute(conn)?;
    crate::domain::outbox::touch(conn, org_id, crate::domain::outbox::CLIENT, client_id)?;
    Ok(true)
}

/// Adds a tag to a client and moves its version on (`expected` → `expected + 1`) and its
/// `updated_at`: answers `None` when the version moved meanwhile, `Some(false)` when the
/// client already had the tag (nothing changed). The tag joins the kept set in the same
/// update as the version, so the link's trigger finds it there and rewrites no row: one
/// update of the client per tag added instead of two.
pub fn add_tag_bumping(
    conn: &mut DbConn,
    current: &super::model::ClientRow,
    tag_id: &str,
    at: chrono::NaiveDateTime,
) -> QueryResult<Option<bool>> {
    let exists: bool = diesel::select(diesel::dsl::exists(
        client_tags::table
            .filter(client_tags::client_id.eq(&current.id))
            .filter(client_tags::tag_id.eq(tag_id)),
    ))
    .get_result(conn)?;
    if exists {
        return Ok(Some(false));
    }
    if super::bulk::is_held(&current.id) {
        super::bulk::flush(conn)?;
    }
    let n = diesel::update(
        clients::table
            .filter(clients::id.eq(&current.id))
            .filter(clients::organization_id.eq(&current.organization_id))
            .filter(clients::version.eq(current.version)),
    )
    .set((
        clients::version.eq(current.version + 1),
        clients::updated_at.eq(at),
        clients::tag_set.eq(clients::tag_set.concat(format!("{tag_id},"))),
    ))
    .execute(conn)?;
    if n != 1 {
        return Ok(None);
    }
    diesel::insert_into(client_tags::table)
        .values((
            client_tags::client_id.eq(&current.id),
            client_tags::tag_id.eq(tag_id),
            client_tags::organization_id.eq(&current.organization_id),
        ))
        .execute(conn)?;
    crate::domain::outbox::touch_client(conn, &current.organization_id, &current.id)?;
    Ok(Some(true))
}

pub fn remove_tag(
    conn: &mut DbConn,
    org_id: &str,
    client_id: &str,
    tag_id: &str,
) -> QueryResult<bool> {
    let removed = diesel::delete(
        client_tags::table
            .filter(client_tags::client_id.eq(client_id))
            .filter(client_tags::tag_id.eq(tag_id)),
    )
    .execute(conn)?
        == 1;
    if removed {
        crate::domain::outbox::touch(conn, org_id, crate::domain::outbox::CLIENT, client_id)?;
    }
    Ok(removed)
}

// Relations

pub fn relations_of(
    conn: &mut DbConn,
    org_id: &str,
    client_id: &str,
) -> QueryResult<Vec<RelationRow>> {
    client_relations::table
        .filter(client_relations::organization_id.eq(org_id))
        .filter(
            client_relations::from_client_id
                .eq(client_id)
                .or(client_relations::to_client_id.eq(client_id)),
        )
        .order(client_relations::created_at.asc())
        .select(RelationRow::as_select())
        .load(conn)
}

pub fn insert_relation(conn: &mut DbConn, row: &RelationRow) -> QueryResult<()> {
    diesel::insert_into(client_relations::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn relation_exists(conn: &mut DbConn, from: &str, to: &str, label: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        client_relations::table
            .filter(client_relations::from_client_id.eq(from))
            .filter(client_relations::to_client_id.eq(to))
            .filter(client_relations::label.eq(label)),
    ))
    .get_result(conn)
}

pub fn delete_relation(
    conn: &mut DbConn,
    org_id: &str,
    client_id: &str,
    relation_id: &str,
) -> QueryResult<Option<RelationRow>> {
    let row = client_relations::table
        .filter(client_relations::organization_id.eq(org_id))
        .filter(client_relations::id.eq(relation_id))
        .filter(
            client_relations::from_client_id
                .eq(client_id)
                .or(client_relations::to_client_id.eq(client_id)),
        )
        .select(RelationRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(r) = &row {
        diesel::delete(client_relations::table.find(&r.id)).execute(conn)?;
    }
    Ok(row)
}

// Saved views

pub fn list_views(
    conn: &mut DbConn,
    org_id: &str,
    user_id: &str,
    entity: &str,
) -> QueryResult<Vec<SavedViewRow>> {
    saved_views::table
        .filter(saved_views::organization_id.eq(org_id))
        .filter(saved_views::user_id.eq(user_id))
        .filter(saved_views::entity.eq(entity))
        .order(saved_views::name.asc())
        .select(SavedViewRow::as_select())
        .load(conn)
}

pub fn upsert_view(conn: &mut DbConn, row: &SavedViewRow) -> QueryResult<()> {
    diesel::delete(
        saved_views::table
            .filter(saved_views::organization_id.eq(&row.organization_id))
            .filter(saved_views::user_id.eq(&row.user_id))
            .filter(saved_views::entity.eq(&row.entity))
            .filter(saved_views::name.eq(&row.name)),
    )
    .execute(conn)?;
    diesel::insert_into(saved_views::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn delete_view(conn: &mut DbConn, org_id: &str, user_id: &str, id: &str) -> QueryResult<bool> {
    Ok(diesel::delete(
        saved_views::table
            .filter(saved_views::organization_id.eq(org_id))
            .filter(saved_views::user_id.eq(user_id))
            .filter(saved_views::id.eq(id)),
    )
    .execute(conn)?
        == 1)
}
