//! The search outbox: every change to a searchable record writes a `search_outbox` row in
//! its own transaction, from the stores, so no write path can forget. The indexer
//! (`crate::search`) drains it. It sits here, below the stores, so that writing a record
//! never depends on the search layer above.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{client_tags, opportunities, search_outbox};
use crate::db::{now, DbConn};

pub const CLIENT: &str = "client";
pub const OPPORTUNITY: &str = "opportunity";
/// An outbox row asking for the whole organization (a field became searchable).
pub const REINDEX: &str = "reindex";

/// Queues a record for the index; call inside the write's transaction.
pub fn touch(conn: &mut DbConn, org_id: &str, entity: &str, id: &str) -> QueryResult<()> {
    let deferred = DEFERRED.with(|d| {
        d.borrow_mut().as_mut().map(|queue| {
            queue.push((org_id.to_string(), entity.to_string(), id.to_string()));
        })
    });
    if deferred.is_some() {
        return Ok(());
    }
    let at = now();
    diesel::insert_into(search_outbox::table)
        .values((
            search_outbox::organization_id.eq(org_id),
            search_outbox::entity.eq(entity),
            search_outbox::entity_id.eq(id),
            search_outbox::attempts.eq(0),
            search_outbox::next_attempt_at.eq(at),
            search_outbox::created_at.eq(at),
        ))
        .execute(conn)
        .map(drop)
}

thread_local! {
    /// Touches held back by [`defer_touches`] on this thread.
    static DEFERRED: std::cell::RefCell<Option<Vec<(String, String, String)>>> =
        const { std::cell::RefCell::new(None) };
}

/// Drops the held-back touches (a rolled-back chunk's) unless they were written. One made
/// while another holds touches back (`outer` false) leaves them to that one: dropping the
/// queue there lost the outer holder's touches and wrote its later ones one by one.
pub struct Deferred {
    outer: bool,
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if self.outer {
            DEFERRED.with(|d| d.borrow_mut().take());
        }
    }
}

/// Holds this thread's touches back until [`flush_touches`] writes them in multi-row
/// inserts: an import chunk of a thousand rows then costs a few statements for the
/// outbox instead of a thousand round trips. The caller's transaction makes them atomic
/// with the rows they name.
pub fn defer_touches() -> Deferred {
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        let outer = d.is_none();
        if outer {
            *d = Some(Vec::new());
        }
        Deferred { outer }
    })
}

/// Writes the touches held back since [`defer_touches`], and keeps deferring.
pub fn flush_touches(conn: &mut DbConn) -> QueryResult<()> {
    let queue = DEFERRED.with(|d| d.borrow_mut().as_mut().map(std::mem::take));
    let Some(queue) = queue else {
        return Ok(());
    };
    #[derive(Insertable)]
    #[diesel(table_name = search_outbox, treat_none_as_default_value = false)]
    struct Row<'a> {
        organization_id: &'a str,
        entity: &'a str,
        entity_id: &'a str,
        attempts: i32,
        next_attempt_at: NaiveDateTime,
        created_at: NaiveDateTime,
    }
    let at = now();
    let rows: Vec<Row<'_>> = queue
        .iter()
        .map(|(org, entity, id)| Row {
            organization_id: org,
            entity,
            entity_id: id,
            attempts: 0,
            next_attempt_at: at,
            created_at: at,
        })
        .collect();
    crate::db::append_rows!(conn, search_outbox::table, &rows[..], 500);
    Ok(())
}

/// Queues a client and its deals (their second line shows the client's name).
pub fn touch_client(conn: &mut DbConn, org_id: &str, id: &str) -> QueryResult<()> {
    touch(conn, org_id, CLIENT, id)?;
    let deals: Vec<String> = opportunities::table
        .filter(opportunities::organization_id.eq(org_id))
        .filter(opportunities::client_id.eq(id))
        .select(opportunities::id)
        .load(conn)?;
    for d in deals {
        touch(conn, org_id, OPPORTUNITY, &d)?;
    }
    Ok(())
}

/// Queues every client carrying a tag (renamed or deleted).
pub fn touch_tagged(conn: &mut DbConn, org_id: &str, tag_id: &str) -> QueryResult<()> {
    let ids: Vec<String> = client_tags::table
        .filter(client_tags::tag_id.eq(tag_id))
        .select(client_tags::client_id)
        .load(conn)?;
    for id in ids {
        touch(conn, org_id, CLIENT, &id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> Option<usize> {
        DEFERRED.with(|d| d.borrow().as_ref().map(Vec::len))
    }

    #[test]
    fn a_deferral_inside_another_leaves_the_outer_queue_alone() {
        let outer = defer_touches();
        DEFERRED.with(|d| {
            if let Some(q) = d.borrow_mut().as_mut() {
                q.push(("org".into(), CLIENT.into(), "a".into()));
            }
        });
        {
            let _inner = defer_touches();
            assert_eq!(held(), Some(1), "the inner deferral emptied the queue");
        }
        assert_eq!(
            held(),
            Some(1),
            "the inner deferral's end dropped the queue"
        );
        drop(outer);
        assert_eq!(held(), None);
    }
}
