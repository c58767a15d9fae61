//! Private iCalendar feeds: each user gets a URL with a random token that Google Calendar or
//! Outlook can subscribe to; it lists the calls and meetings they scheduled in the
//! organization. A new URL revokes the old one.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{calendar_feeds, clients, interaction_participants, interactions};
use crate::db::{now, DbConn};
use crate::domain::interactions::{kind_label, InteractionRow};
use crate::error::AppResult;

fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The user's feed token, made on first use.
pub fn token(conn: &mut DbConn, org_id: &str, user_id: &str) -> AppResult<String> {
    crate::db::transaction(conn, |c| {
        let existing: Option<String> = calendar_feeds::table
            .filter(calendar_feeds::user_id.eq(user_id))
            .filter(calendar_feeds::organization_id.eq(org_id))
            .select(calendar_feeds::token)
            .first(c)
            .optional()?;
        if let Some(t) = existing {
            return Ok(t);
        }
        let t = new_token();
        diesel::insert_into(calendar_feeds::table)
            .values((
                calendar_feeds::token.eq(&t),
                calendar_feeds::user_id.eq(user_id),
                calendar_feeds::organization_id.eq(org_id),
                calendar_feeds::created_at.eq(now()),
            ))
            .execute(c)?;
        Ok(t)
    })
}

/// Replaces the token: the old URL stops working at once.
pub fn rotate(conn: &mut DbConn, org_id: &str, user_id: &str) -> AppResult<String> {
    crate::db::transaction(conn, |c| {
        diesel::delete(
            calendar_feeds::table
                .filter(calendar_feeds::user_id.eq(user_id))
                .filter(calendar_feeds::organization_id.eq(org_id)),
        )
        .execute(c)?;
        token(c, org_id, user_id)
    })
}

/// Ends the member's feed URL (deactivation, a new role, a password reset): a calendar
/// app that still polls it gets nothing, and a new URL is made when they ask again.
pub fn revoke_member_feeds(conn: &mut DbConn, org_id: &str, user_id: &str) -> QueryResult<()> {
    diesel::delete(
        calendar_feeds::table
            .filter(calendar_feeds::user_id.eq(user_id))
            .filter(calendar_feeds::organization_id.eq(org_id)),
    )
    .execute(conn)
    .map(drop)
}

/// Whose feed a token opens: (organization, user), only while they are an active member.
pub fn owner(conn: &mut DbConn, token: &str) -> AppResult<Option<(String, String)>> {
    use crate::db::schema::memberships;
    Ok(calendar_feeds::table
        .inner_join(
            memberships::table.on(memberships::user_id
                .eq(calendar_feeds::user_id)
                .and(memberships::organization_id.eq(calendar_feeds::organization_id))),
        )
        .filter(calendar_feeds::token.eq(token))
        .filter(memberships::is_active.eq(true))
        .select((calendar_feeds::organization_id, calendar_feeds::user_id))
        .first(conn)
        .optional()?)
}

/// RFC 5545 text: backslash, semicolon, comma and newlines escaped.
fn text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace('\n', "\\n")
}

/// Folds a content line at 75 octets (continuation lines start with a space).
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for ch in line.chars() {
        let n = ch.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(ch);
        width += n;
    }
    out.push_str("\r\n");
}

/// A parameter value: quoted, without the characters a quoted value cannot hold.
fn param(s: &str) -> String {
    format!(
        "\"{}\"",
        s.chars()
            .filter(|c| !c.is_control() && *c != '"')
            .collect::<String>()
    )
}

fn stamp(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Calls and meetings on the calendars of `users` (as author or participant) planned
/// between `from` and `to`, with their client's name and e-mail, soonest first.
pub fn between(
    conn: &mut DbConn,
    org_id: &str,
    users: &[String],
    from: NaiveDateTime,
    to: NaiveDateTime,
    limit: i64,
) -> AppResult<Vec<(InteractionRow, String, Option<String>)>> {
    Ok(interactions::table
        .inner_join(clients::table.on(clients::id.eq(interactions::client_id)))
        .filter(interactions::organization_id.eq(org_id))
        .filter(
            interactions::user_id
                .eq_any(users)
                .or(interactions::id.eq_any(
                    interaction_participants::table
                        .filter(interaction_participants::user_id.eq_any(users))
                        .select(interaction_participants::interaction_id),
                )),
        )
        .filter(interactions::deleted_at.is_null())
        .filter(interactions::kind.eq_any(["meeting", "call"]))
        .filter(interactions::scheduled_at.ge(from))
        .filter(interactions::scheduled_at.lt(to))
        .order((interactions::scheduled_at.asc(), interactions::id.asc()))
        .limit(limit)
        .select((
            InteractionRow::as_select(),
            clients::display_name,
            clients::email,
        ))
        .load(conn)?)
}

/// The feed: scheduled calls and meetings of the user (theirs or ones they take part in)
/// from 30 days ago on.
pub fn feed(conn: &mut DbConn, org_id: &str, user_id: &str) -> AppResult<String> {
    let from = now() - Duration::days(30);
    let rows = between(
        conn,
        org_id,
        &[user_id.to_string()],
        from,
        from + Duration::days(3650),
        2000,
    )?;
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Rapport//CRM//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Rapport",
    ] {
        fold(line, &mut out);
    }
    for (r, client, email) in rows {
        let Some(start) = r.scheduled_at else {
            continue;
        };
        let end = start + Duration::minutes(i64::from(r.duration_minutes.unwrap_or(30).max(5)));
        fold("BEGIN:VEVENT", &mut out);
        fold(&format!("UID:{}@rapport", r.id), &mut out);
        fold(&format!("DTSTAMP:{}", stamp(r.updated_at)), &mut out);
        fold(&format!("DTSTART:{}", stamp(start)), &mut out);
        fold(&format!("DTEND:{}", stamp(end)), &mut out);
        fold(
            &format!(
                "SUMMARY:{}",
                text(&format!(
                    "{}: {} — {}",
                    kind_label(&r.kind),
                    r.subject,
                    client
                ))
            ),
            &mut out,
        );
        // Lets an import of this feed (into another organization, say) keep the subject.
        fold(&format!("X-RAPPORT-SUBJECT:{}", text(&r.subject)), &mut out);
        if !r.content.is_empty() {
            fold(&format!("DESCRIPTION:{}", text(&r.content)), &mut out);
        }
        if let Some(l) = &r.location {
            fold(&format!("LOCATION:{}", text(l)), &mut out);
        }
        if let Some(e) = &email {
            fold(
                &format!("ATTENDEE;CN={}:mailto:{e}", param(&client)),
                &mut out,
            );
        }
        fold(
            &format!(
                "STATUS:{}",
                match r.status.as_str() {
                    "cancelled" => "CANCELLED",
                    _ => "CONFIRMED",
                }
            ),
            &mut out,
        );
        fold(&format!("SEQUENCE:{}", r.version - 1), &mut out);
        fold("END:VEVENT", &mut out);
    }
    fold("END:VCALENDAR", &mut out);
    Ok(out)
}

/// Open tasks assigned to `users` that fall due between `from` and `to`, with their client's
/// name and e-mail, soonest first — the calendar shows them beside calls and meetings.
pub fn tasks_between(
    conn: &mut DbConn,
    org_id: &str,
    users: &[String],
    from: NaiveDateTime,
    to: NaiveDateTime,
    limit: i64,
) -> AppResult<Vec<(InteractionRow, String, Option<String>)>> {
    Ok(interactions::table
        .inner_join(clients::table.on(clients::id.eq(interactions::client_id)))
        .filter(interactions::organization_id.eq(org_id))
        .filter(interactions::assignee_id.eq_any(users))
        .filter(interactions::kind.eq("task"))
        .filter(interactions::status.eq("scheduled"))
        .filter(interactions::deleted_at.is_null())
        .filter(interactions::due_at.ge(from))
        .filter(interactions::due_at.lt(to))
        .order((interactions::due_at.asc(), interactions::id.asc()))
        .limit(limit)
        .select((
            InteractionRow::as_select(),
            clients::display_name,
            clients::email,
        ))
        .load(conn)?)
}
