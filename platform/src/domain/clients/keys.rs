//! The lookup keys stored beside each client: its phone number's national digits, its
//! folded name and its website's domain. Duplicate checks, imports and the list's text
//! filter find clients by these with an index, so a create or a profile costs the same at a
//! million clients as at a hundred. The store writes them with every insert and update.

use diesel::prelude::*;

use super::duplicates::{name_key, phone_key};
use super::ClientRow;
use crate::db::schema::clients;
use crate::db::DbConn;

/// The derived keys of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub phone: Option<String>,
    pub name: String,
    pub website: Option<String>,
}

impl Keys {
    pub fn of(row: &ClientRow) -> Self {
        Self {
            phone: row
                .phone
                .as_deref()
                .and_then(|p| phone_key(p, row.country.as_deref())),
            name: name_key(&row.display_name),
            website: row
                .website
                .as_deref()
                .map(domain_of)
                .filter(|d| !d.is_empty()),
        }
    }
}

/// The host of a website or domain: no scheme, no `www.`, no path, lower case.
pub fn domain_of(s: &str) -> String {
    let s = s.trim().to_lowercase();
    let s = s.split("://").last().unwrap_or_default();
    let s = s.split(['/', '?', '#']).next().unwrap_or_default();
    s.trim_start_matches("www.").to_string()
}

/// Fills the keys of rows written before they existed (`name_key IS NULL`, which a
/// partial index keeps cheap to find), a thousand rows per statement batch. Returns how
/// many rows it filled; on a database written by this version it finds none at once.
pub fn backfill(conn: &mut DbConn) -> QueryResult<usize> {
    let mut filled = 0;
    loop {
        let rows: Vec<ClientRow> = clients::table
            .filter(clients::name_key.is_null())
            .order(clients::id)
            .limit(1000)
            .select(ClientRow::as_select())
            .load(conn)?;
        if rows.is_empty() {
            return Ok(filled);
        }
        crate::db::transaction(conn, |c| {
            for row in &rows {
                let k = Keys::of(row);
                diesel::update(clients::table.filter(clients::id.eq(&row.id)))
                    .set((
                        clients::phone_key.eq(k.phone),
                        clients::name_key.eq(k.name),
                        clients::website_key.eq(k.website),
                    ))
                    .execute(c)?;
            }
            Ok::<_, diesel::result::Error>(())
        })?;
        filled += rows.len();
    }
}
