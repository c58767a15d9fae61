//! In-console notifications: something a person must know about that happened without
//! them (a plugin disabled for failing, later reminders). Shown in the header and on
//! `/notifications`; `GET /api/me/notifications` for integrations.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{memberships, notifications};
use crate::db::{new_id, now, DbConn};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications)]
pub struct NotificationRow {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub read_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// Notifies every active member of the organization with the given role.
pub fn notify_role(
    conn: &mut DbConn,
    org_id: &str,
    role: crate::domain::orgs::Role,
    kind: &str,
    title: &str,
    body: &str,
    link: Option<&str>,
) -> QueryResult<usize> {
    let users: Vec<String> = memberships::table
        .filter(memberships::organization_id.eq(org_id))
        .filter(memberships::role.eq(role.as_str()))
        .filter(memberships::is_active.eq(true))
        .select(memberships::user_id)
        .load(conn)?;
    let at = now();
    let rows: Vec<NotificationRow> = users
        .into_iter()
        .map(|user_id| NotificationRow {
            id: new_id(),
            organization_id: org_id.to_string(),
            user_id,
            kind: kind.to_string(),
            title: title.to_string(),
            body: body.to_string(),
            link: link.map(str::to_string),
            read_at: None,
            created_at: at,
        })
        .collect();
    for r in &rows {
        diesel::insert_into(notifications::table)
            .values(r)
            .execute(conn)?;
    }
    Ok(rows.len())
}

pub fn unread_count(conn: &mut DbConn, org_id: &str, user_id: &str) -> QueryResult<i64> {
    notifications::table
        .filter(notifications::organization_id.eq(org_id))
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(conn)
}

/// The newest notifications first.
pub fn recent(
    conn: &mut DbConn,
    org_id: &str,
    user_id: &str,
    limit: i64,
) -> QueryResult<Vec<NotificationRow>> {
    notifications::table
        .filter(notifications::organization_id.eq(org_id))
        .filter(notifications::user_id.eq(user_id))
        .order((notifications::created_at.desc(), notifications::id.desc()))
        .limit(limit)
        .select(NotificationRow::as_select())
        .load(conn)
}

/// Marks all of the user's notifications in the organization read.
pub fn mark_all_read(conn: &mut DbConn, org_id: &str, user_id: &str) -> QueryResult<usize> {
    diesel::update(
        notifications::table
            .filter(notifications::organization_id.eq(org_id))
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(Some(now())))
    .execute(conn)
}

/// Notifies one person.
pub fn notify_user(
    conn: &mut DbConn,
    org_id: &str,
    user_id: &str,
    kind: &str,
    title: &str,
    body: &str,
    link: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(notifications::table)
        .values(NotificationRow {
            id: new_id(),
            organization_id: org_id.to_string(),
            user_id: user_id.to_string(),
            kind: kind.to_string(),
            title: title.to_string(),
            body: body.to_string(),
            link: link.map(str::to_string),
            read_at: None,
            created_at: now(),
        })
        .execute(conn)?;
    Ok(())
}
