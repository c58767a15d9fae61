//! Multi-row writes of new clients with their tags and custom values, and the write-behind
//! buffer an import chunk uses to get them.
//!
//! An import creates a thousand clients per transaction through the same service as a
//! single create (every rule applies once, in one place). On PostgreSQL each of those
//! creates was a round trip per row per table; held back here and written a few hundred
//! rows per statement when the chunk ends, the chunk costs a handful of statements.
//!
//! The rule that keeps it correct: a held row is never read from memory. Anything that
//! looks a held client up through the store (`store::find`, `find_many`, `replace`) writes
//! the buffer out first and then reads the database, so an update of a row created earlier
//! in the same chunk, or a note written on it, sees it as a committed row would be seen.

use std::cell::RefCell;
use std::collections::HashSet;

use diesel::prelude::*;
use diesel::QueryResult;

use super::keys::Keys;
use super::ClientRow;
use crate::db::schema::{client_tags, clients, custom_field_values};
use crate::db::DbConn;

/// A tag on a client: client id, tag id, organization id.
pub type TagLink = (String, String, String);
/// A custom value's index row: id, organization, field, record, text, number.
pub type ValueRow = (String, String, String, String, Option<String>, Option<i64>);

// Tags and custom values of new clients, a few thousand rows per statement: the sizes keep
// under SQLite's 32,766 bound parameters and PostgreSQL's 65,535. A macro because each
// backend's connection compiles its own multi-row insert.
macro_rules! insert_links {
    ($conn:expr, $tags:expr, $values:expr) => {{
        for chunk in $tags.chunks(2000) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|(c, t, o): &TagLink| {
                    (
                        client_tags::client_id.eq(c),
                        client_tags::tag_id.eq(t),
                        client_tags::organization_id.eq(o),
                    )
                })
                .collect();
            diesel::insert_into(client_tags::table)
                .values(rows)
                .execute($conn)?;
        }
        for chunk in $values.chunks(1500) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|(id, org, field, record, text, num): &ValueRow| {
                    (
                        custom_field_values::id.eq(id),
                        custom_field_values::organization_id.eq(org),
                        custom_field_values::field_id.eq(field),
                        custom_field_values::record_id.eq(record),
                        custom_field_values::text_value.eq(text),
                        custom_field_values::num_value.eq(num),
                    )
                })
                .collect();
            diesel::insert_into(custom_field_values::table)
                .values(rows)
                .execute($conn)?;
        }
    }};
}

/// A new client as `COPY` sends it: every column, a missing value a NULL (not the
/// column's default, which `COPY` cannot express).
#[derive(Insertable)]
#[diesel(table_name = clients, treat_none_as_default_value = false)]
struct Copied<'a> {
    id: &'a str,
    organization_id: &'a str,
    kind: &'a str,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    company_name: Option<&'a str>,
    display_name: &'a str,
    sort_name: &'a str,
    email: Option<&'a str>,
    phone: Option<&'a str>,
    street: Option<&'a str>,
    city: Option<&'a str>,
    region: Option<&'a str>,
    postal_code: Option<&'a str>,
    country: Option<&'a str>,
    website: Option<&'a str>,
    industry: Option<&'a str>,
    source: Option<&'a str>,
    status: &'a str,
    assigned_to: Option<&'a str>,
    employer_id: Option<&'a str>,
    custom_fields: &'a str,
    version: i64,
    created_by: Option<&'a str>,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
    deleted_at: Option<chrono::NaiveDateTime>,
    phone_key: Option<String>,
    name_key: String,
    website_key: Option<String>,
    tag_set: String,
}

impl<'a> Copied<'a> {
    fn of(r: &'a ClientRow, sets: &TagSets) -> Self {
        let k = Keys::of(r);
        Self {
            id: &r.id,
            organization_id: &r.organization_id,
            kind: &r.kind,
            first_name: r.first_name.as_deref(),
            last_name: r.last_name.as_deref(),
            company_name: r.company_name.as_deref(),
            display_name: &r.display_name,
            sort_name: &r.sort_name,
            email: r.email.as_deref(),
            phone: r.phone.as_deref(),
            street: r.street.as_deref(),
            city: r.city.as_deref(),
            region: r.region.as_deref(),
            postal_code: r.postal_code.as_deref(),
            country: r.country.as_deref(),
            website: r.website.as_deref(),
            industry: r.industry.as_deref(),
            source: r.source.as_deref(),
            status: &r.status,
            assigned_to: r.assigned_to.as_deref(),
            employer_id: r.employer_id.as_deref(),
            custom_fields: &r.custom_fields,
            version: r.version,
            created_by: r.created_by.as_deref(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
            phone_key: k.phone,
            name_key: k.name,
            website_key: k.website,
            tag_set: sets.of(&r.id),
        }
    }
}

/// Each new client's `tag_set` (migration client_tag_set) written with the client, so the
/// trigger on its links finds it right and rewrites no row: ',<id>,<id>,' in byte order.
struct TagSets<'a>(std::collections::HashMap<&'a str, Vec<&'a str>>);

impl<'a> TagSets<'a> {
    fn new(tags: &'a [TagLink]) -> Self {
        let mut m: std::collections::HashMap<&str, Vec<&str>> = Default::default();
        for (client, tag, _) in tags {
            m.entry(client.as_str()).or_default().push(tag.as_str());
        }
        for v in m.values_mut() {
            v.sort_unstable();
            v.dedup();
        }
        Self(m)
    }

    fn of(&self, client: &str) -> String {
        match self.0.get(client) {
            Some(ids) => format!(",{},", ids.join(",")),
            None => ",".into(),
        }
    }
}

/// Inserts new clients, then their tags, then their custom values (the order the foreign
/// keys need), a few hundred rows per statement. Search indexing is the caller's.
pub fn insert_all(
    conn: &mut DbConn,
    rows: &[ClientRow],
    tags: &[TagLink],
    values: &[ValueRow],
) -> QueryResult<()> {
    let sets = TagSets::new(tags);
    // why: MultiConnection compiles no multi-row insert; each backend's connection does.
    match conn {
        DbConn::Sqlite(c) => {
            // 500 clients of 31 columns stay under SQLite's 32,766 bound parameters.
            for chunk in rows.chunks(500) {
                let keyed: Vec<_> = chunk
                    .iter()
                    .map(|r| {
                        let k = Keys::of(r);
                        (
                            r,
                            clients::phone_key.eq(k.phone),
                            clients::name_key.eq(k.name),
                            clients::website_key.eq(k.website),
                            clients::tag_set.eq(sets.of(&r.id)),
                        )
                    })
                    .collect();
                diesel::insert_into(clients::table)
                    .values(keyed)
                    .execute(c)?;
            }
            insert_links!(c, tags, values)
        }
        DbConn::Postgresql(c) => {
            // why: a thousand rows in one binary COPY cost PostgreSQL no statement to parse
            // and plan and no 30,000 bound parameters; the import's main table went in at a
            // third less server time than with multi-row INSERTs.
            let copied: Vec<Copied<'_>> = rows.iter().map(|r| Copied::of(r, &sets)).collect();
            diesel::copy_from(clients::table)
                .from_insertable(copied)
                .execute(c)?;
            insert_links!(c, tags, values)
        }
    }
    Ok(())
}

#[derive(Default)]
struct Held {
    ids: HashSet<String>,
    rows: Vec<ClientRow>,
    tags: Vec<TagLink>,
    values: Vec<ValueRow>,
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

/// Drops what is still held (a rolled-back chunk's rows) when the holding ends.
pub struct Holding(());

impl Drop for Holding {
    fn drop(&mut self) {
        HELD.with(|h| h.borrow_mut().take());
    }
}

/// Holds this thread's new clients back until [`flush`]; the caller's transaction must
/// span both, and must call [`flush`] before it commits.
pub fn hold() -> Holding {
    HELD.with(|h| *h.borrow_mut() = Some(Held::default()));
    Holding(())
}

/// Takes a new client into the buffer; false when nothing is being held.
pub(super) fn hold_row(row: &ClientRow) -> bool {
    HELD.with(|h| match h.borrow_mut().as_mut() {
        Some(held) => {
            held.ids.insert(row.id.clone());
            held.rows.push(row.clone());
            true
        }
        None => false,
    })
}

/// Whether `id` is a client still held back.
pub fn is_held(id: &str) -> bool {
    HELD.with(|h| {
        h.borrow()
            .as_ref()
            .is_some_and(|held| held.ids.contains(id))
    })
}

/// The tags of a held client go with it; false when `client_id` is not held.
pub(super) fn hold_tags(org_id: &str, client_id: &str, tag_ids: &[String]) -> bool {
    HELD.with(|h| match h.borrow_mut().as_mut() {
        Some(held) if held.ids.contains(client_id) => {
            held.tags.retain(|(c, _, _)| c != client_id);
            held.tags.extend(
                tag_ids
                    .iter()
                    .map(|t| (client_id.to_string(), t.clone(), org_id.to_string())),
            );
            true
        }
        _ => false,
    })
}

/// The custom values of a held client go with it, replacing the same fields' values;
/// the rows come back when `record_id` is not a held client.
pub fn hold_values(record_id: &str, rows: Vec<ValueRow>) -> Result<(), Vec<ValueRow>> {
    HELD.with(|h| match h.borrow_mut().as_mut() {
        Some(held) if held.ids.contains(record_id) => {
            let fields: HashSet<&String> = rows.iter().map(|r| &r.2).collect();
            held.values
                .retain(|r| !(r.3 == record_id && fields.contains(&r.2)));
            held.values.extend(rows);
            Ok(())
        }
        _ => Err(rows),
    })
}

/// Writes everything held so far and keeps holding.
pub fn flush(conn: &mut DbConn) -> QueryResult<()> {
    let held = HELD.with(|h| h.borrow_mut().as_mut().map(std::mem::take));
    match held {
        Some(held) if !held.rows.is_empty() => {
            insert_all(conn, &held.rows, &held.tags, &held.values)
        }
        _ => Ok(()),
    }
}
