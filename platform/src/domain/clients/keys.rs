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
        // why: one statement per thousand rows, not one per row: on PostgreSQL each row's
        // UPDATE was a round trip, and an upgrade of a million clients waited for all of them.
        let keyed: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| {
                let k = Keys::of(row);
                serde_json::json!({"id": row.id, "p": k.phone, "n": k.name, "w": k.website})
            })
            .collect();
        let payload = serde_json::Value::Array(keyed).to_string();
        let sql = match crate::db::backend_of(conn) {
            crate::db::Backend::Postgres => {
                "UPDATE clients SET phone_key = v.p, name_key = v.n, website_key = v.w \
                 FROM json_to_recordset($1::json) AS v(id text, p text, n text, w text) \
                 WHERE clients.id = v.id"
            }
            crate::db::Backend::Sqlite => {
                "UPDATE clients SET phone_key = v.p, name_key = v.n, website_key = v.w \
                 FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.p') AS p, \
                              json_extract(value, '$.n') AS n, json_extract(value, '$.w') AS w \
                       FROM json_each(?)) AS v \
                 WHERE clients.id = v.id"
            }
        };
        let updated = diesel::sql_query(sql)
            .bind::<diesel::sql_types::Text, _>(payload)
            .execute(conn)?;
        if updated == 0 {
            // Rows this statement could not fill would be read again forever.
            tracing::warn!(
                rows = rows.len(),
                "lookup keys not filled; left for the next start"
            );
            return Ok(filled);
        }
        filled += rows.len();
    }
}
