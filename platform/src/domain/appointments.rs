//! Meetings that start elsewhere: an external appointment system posting to
//! `/api/appointments`, or an `.ics` invitation a user imports. Both are idempotent by the
//! external id (the system's id, or the invitation's UID): sending the same appointment again
//! updates the meeting instead of adding a second one.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde_json::{json, Map, Value};

use crate::db::schema::{clients, interactions, memberships, users};
use crate::db::DbConn;
use crate::domain::audit::AuditContext;
use crate::domain::clients::service::Access;
use crate::domain::interactions::{self as service, InteractionRow};
use crate::error::{AppError, AppResult, FieldError};
use crate::locale::Local;

/// Whether the appointment made a meeting or updated the one it made before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

fn existing(conn: &mut DbConn, org_id: &str, external_id: &str) -> AppResult<Option<String>> {
    Ok(interactions::table
        .filter(interactions::organization_id.eq(org_id))
        .filter(interactions::external_id.eq(external_id))
        .select(interactions::id)
        .first(conn)
        .optional()?)
}

/// A client of the organization the actor sees, by e-mail.
fn client_by_email(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    email: &str,
) -> AppResult<Option<String>> {
    let ids: Vec<String> = clients::table
        .filter(clients::organization_id.eq(org_id))
        .filter(clients::email.eq(email.trim().to_lowercase()))
        .filter(clients::deleted_at.is_null())
        .select(clients::id)
        .limit(20)
        .load(conn)?;
    for id in ids {
        match crate::domain::clients::service::get(conn, org_id, access, &id) {
            Ok(c) => return Ok(Some(c.id)),
            Err(AppError::NotFound) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn member_by_email(conn: &mut DbConn, org_id: &str, email: &str) -> AppResult<Option<String>> {
    Ok(users::table
        .inner_join(memberships::table.on(memberships::user_id.eq(users::id)))
        .filter(memberships::organization_id.eq(org_id))
        .filter(memberships::is_active.eq(true))
        .filter(users::email.eq(email.trim().to_lowercase()))
        .select(users::id)
        .first(conn)
        .optional()?)
}

/// Creates or updates the meeting with this external id. `fields` are interaction fields
/// (`subject`, `scheduledAt`, …) for the client `client_id`.
fn upsert(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    client_id: &str,
    external_id: &str,
    fields: Map<String, Value>,
) -> AppResult<(InteractionRow, Upserted)> {
    // Two deliveries of the same appointment at once: the unique index refuses the second
    // insert, and the retry finds the first.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = crate::db::transaction(conn, |c| {
            if let Some(id) = existing(c, &ctx.org_id, external_id)? {
                let current = service::get(c, &ctx.org_id, access, &id)?;
                if current.client_id != client_id {
                    return Err(AppError::invalid(
                        "clientId",
                        "This appointment belongs to another client; it cannot move.",
                    ));
                }
                let row = service::update(c, ctx, access, &id, &fields, None)?;
                return Ok((row, Upserted::Updated));
            }
            let mut row = service::create(c, ctx, access, client_id, &fields)?;
            diesel::update(interactions::table.filter(interactions::id.eq(&row.id)))
                .set(interactions::external_id.eq(external_id))
                .execute(c)?;
            row.external_id = Some(external_id.to_string());
            Ok((row, Upserted::Created))
        });
        match result {
            Err(AppError::Db(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ))) if attempt < 3 => continue,
            other => return other,
        }
    }
}

/// `POST /api/appointments`: `{"externalId", "clientId" | "clientEmail", "subject",
/// "startsAt", "endsAt" | "durationMinutes", "location", "description", "status",
/// "participants", "opportunityId"}`.
pub fn receive(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    body: &Map<String, Value>,
) -> AppResult<(InteractionRow, Upserted)> {
    const KEYS: &[&str] = &[
        "externalId",
        "clientId",
        "clientEmail",
        "subject",
        "startsAt",
        "endsAt",
        "durationMinutes",
        "location",
        "description",
        "status",
        "participants",
        "opportunityId",
    ];
    let mut errors: Vec<FieldError> = body
        .keys()
        .filter(|k| !KEYS.contains(&k.as_str()))
        .map(|k| FieldError::new(k, "Unknown field."))
        .collect();
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let external_id = text("externalId");
    match external_id {
        None => errors.push(FieldError::new(
            "externalId",
            "Send the id your system gave the appointment; it makes retries safe.",
        )),
        Some(e) if e.chars().count() > 200 => {
            errors.push(FieldError::new("externalId", "Use at most 200 characters."))
        }
        _ => {}
    }
    let client = match (text("clientId"), text("clientEmail")) {
        (Some(id), _) => {
            match crate::domain::clients::service::get(conn, &ctx.org_id, access, id) {
                Ok(c) => Some(c.id),
                Err(AppError::NotFound) => {
                    errors.push(FieldError::new("clientId", "No client with this id."));
                    None
                }
                Err(e) => return Err(e),
            }
        }
        (None, Some(email)) => {
            let found = client_by_email(conn, &ctx.org_id, access, email)?;
            if found.is_none() {
                errors.push(FieldError::new(
                    "clientEmail",
                    "No client has this e-mail address.",
                ));
            }
            found
        }
        (None, None) => {
            errors.push(FieldError::new(
                "clientId",
                "Say whose appointment it is: clientId or clientEmail.",
            ));
            None
        }
    };
    let starts = parse_when(body.get("startsAt"));
    let ends = parse_when(body.get("endsAt"));
    let mut fields = Map::new();
    fields.insert("type".into(), json!("meeting"));
    match starts {
        Ok(Some(s)) => {
            fields.insert("scheduledAt".into(), json!(rfc3339(s)));
            match (ends, body.get("durationMinutes")) {
                (Ok(Some(e)), _) if e > s => {
                    fields.insert(
                        "durationMinutes".into(),
                        json!((e - s).num_minutes().min(1440)),
                    );
                }
                (Ok(Some(_)), _) => errors.push(FieldError::new(
                    "endsAt",
                    "The end must be after the start.",
                )),
                (Ok(None), Some(d)) => {
                    fields.insert("durationMinutes".into(), d.clone());
                }
                (Ok(None), None) => {}
                (Err(m), _) => errors.push(FieldError::new("endsAt", m)),
            }
        }
        Ok(None) => errors.push(FieldError::new("startsAt", "Say when it starts.")),
        Err(m) => errors.push(FieldError::new("startsAt", m)),
    }
    fields.insert(
        "subject".into(),
        json!(text("subject").unwrap_or("Appointment")),
    );
    for (from, to) in [
        ("description", "content"),
        ("location", "location"),
        ("participants", "participants"),
        ("opportunityId", "opportunityId"),
    ] {
        if let Some(v) = body.get(from) {
            fields.insert(to.into(), v.clone());
        }
    }
    match text("status") {
        None | Some("scheduled") | Some("confirmed") => {
            fields.insert("status".into(), json!("scheduled"));
        }
        Some("cancelled") => {
            fields.insert("status".into(), json!("cancelled"));
        }
        Some("completed") => {
            fields.insert("status".into(), json!("completed"));
        }
        Some(_) => errors.push(FieldError::new(
            "status",
            "Choose scheduled, completed or cancelled.",
        )),
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(
            "The appointment could not be saved.".into(),
            errors,
        ));
    }
    let (Some(client), Some(external_id)) = (client, external_id) else {
        return Err(AppError::Internal("checked above".into()));
    };
    upsert(
        conn,
        ctx,
        access,
        &client,
        &format!("api:{external_id}"),
        fields,
    )
}

fn rfc3339(t: NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_when(v: Option<&Value>) -> Result<Option<NaiveDateTime>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|d| Some(d.naive_utc()))
            .map_err(|_| "Use a date and time like 2026-12-01T14:30:00Z.".to_string()),
        Some(_) => Err("Use a date and time like 2026-12-01T14:30:00Z.".into()),
    }
}

/// What an `.ics` import did.
#[derive(Debug, Default, Clone)]
pub struct IcsReport {
    pub created: usize,
    pub updated: usize,
    /// Events left out, each with why.
    pub skipped: Vec<(String, String)>,
}

/// RFC 5545 text values: `\n`, `\,`, `\;`, `\\` unescaped.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A DTSTART/DTEND as UTC: a DATE-TIME in UTC (`…Z`); with a `TZID` in that zone (an IANA
/// name, or the Windows name Outlook writes); floating (no zone) or with a zone nobody
/// knows, in the importer's own zone; an all-day DATE at 09:00 there.
fn ics_time(p: &ical::property::Property, local: &Local) -> Option<NaiveDateTime> {
    let v = p.value.as_deref()?.trim();
    if let Some(utc) = v.strip_suffix('Z') {
        return NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").ok();
    }
    let zone = p
        .params
        .iter()
        .flatten()
        .find(|(k, _)| k.eq_ignore_ascii_case("TZID"))
        .and_then(|(_, v)| v.first())
        .and_then(|name| zone_of(name))
        .map_or(*local, |tz| Local { tz, ..*local });
    let wall = NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S")
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(v, "%Y%m%d")
                .ok()
                .and_then(|d| d.and_hms_opt(9, 0, 0))
        })?;
    Some(zone.to_utc(wall))
}

/// A TZID as a zone: IANA names (some programs prefix a `/`), else the Windows names
/// Outlook and Exchange write for the common zones.
fn zone_of(tzid: &str) -> Option<chrono_tz::Tz> {
    let name = tzid.trim().trim_matches('"').trim_start_matches('/');
    if let Some(tz) = crate::locale::time_zone(name) {
        return Some(tz);
    }
    let iana = match name {
        "GMT Standard Time" => "Europe/London",
        "W. Europe Standard Time" => "Europe/Berlin",
        "Romance Standard Time" => "Europe/Paris",
        "Central Europe Standard Time" => "Europe/Budapest",
        "Central European Standard Time" => "Europe/Warsaw",
        "E. Europe Standard Time" => "Europe/Chisinau",
        "FLE Standard Time" => "Europe/Kiev",
        "GTB Standard Time" => "Europe/Bucharest",
        "Russian Standard Time" => "Europe/Moscow",
        "Eastern Standard Time" => "America/New_York",
        "Central Standard Time" => "America/Chicago",
        "Mountain Standard Time" => "America/Denver",
        "US Mountain Standard Time" => "America/Phoenix",
        "Pacific Standard Time" => "America/Los_Angeles",
        "Alaskan Standard Time" => "America/Anchorage",
        "Hawaiian Standard Time" => "Pacific/Honolulu",
        "Atlantic Standard Time" => "America/Halifax",
        "E. South America Standard Time" => "America/Sao_Paulo",
        "India Standard Time" => "Asia/Kolkata",
        "China Standard Time" => "Asia/Shanghai",
        "Tokyo Standard Time" => "Asia/Tokyo",
        "Singapore Standard Time" => "Asia/Singapore",
        "AUS Eastern Standard Time" => "Australia/Sydney",
        "New Zealand Standard Time" => "Pacific/Auckland",
        "South Africa Standard Time" => "Africa/Johannesburg",
        "Arabian Standard Time" => "Asia/Dubai",
        "UTC" | "Coordinated Universal Time" => "UTC",
        _ => return None,
    };
    crate::locale::time_zone(iana)
}

/// An RFC 5545 DURATION such as `PT1H30M`, `P1D` or `PT45M`.
fn ics_duration(v: &str) -> Option<chrono::Duration> {
    let v = v.trim().trim_start_matches('+');
    let rest = v.strip_prefix('P')?;
    let (mut total, mut num, mut in_time) = (0i64, String::new(), false);
    for c in rest.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' => num.push(c),
            unit => {
                let n: i64 = num.parse().ok()?;
                num.clear();
                total += n * match (unit, in_time) {
                    ('W', false) => 7 * 86_400,
                    ('D', false) => 86_400,
                    ('H', true) => 3600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return None,
                };
            }
        }
    }
    num.is_empty().then(|| chrono::Duration::seconds(total))
}

fn mailto(v: &str) -> Option<String> {
    let v = v.trim();
    let lower = v.to_lowercase();
    lower
        .strip_prefix("mailto:")
        .map(|e| e.trim().to_string())
        .filter(|e| e.contains('@'))
}

/// Longest `.ics` accepted, in bytes.
pub const MAX_ICS: usize = 2 * 1024 * 1024;

/// Imports the events of an iCalendar file as meetings. Each event's client is the first
/// attendee (or organizer) who is a client the actor sees, else `default_client`; other
/// matching clients and colleagues become participants. Re-importing the same invitation
/// updates the meeting; an event of Rapport's own feed is recognised and left alone.
pub fn import_ics(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    ics: &str,
    default_client: Option<&str>,
    local: &Local,
) -> AppResult<IcsReport> {
    if ics.len() > MAX_ICS {
        return Err(AppError::invalid(
            "file",
            "The calendar file is larger than 2 MiB.",
        ));
    }
    if !ics.trim_start().starts_with("BEGIN:VCALENDAR") {
        return Err(AppError::invalid(
            "file",
            "This is not an iCalendar (.ics) file: it must start with BEGIN:VCALENDAR.",
        ));
    }
    let mut report = IcsReport::default();
    let parser = ical::IcalParser::new(std::io::BufReader::new(ics.as_bytes()));
    for cal in parser {
        let cal = cal.map_err(|e| {
            AppError::invalid("file", &format!("The calendar file could not be read: {e}"))
        })?;
        let cancelled_all = cal
            .properties
            .iter()
            .any(|p| p.name == "METHOD" && p.value.as_deref() == Some("CANCEL"));
        for event in cal.events {
            let prop = |name: &str| {
                event
                    .properties
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| p.value.clone())
            };
            let summary = prop("X-RAPPORT-SUBJECT")
                .or_else(|| prop("SUMMARY"))
                .map(|s| unescape(&s))
                .unwrap_or_else(|| "Meeting".into());
            let Some(uid) = prop("UID").filter(|u| !u.trim().is_empty()) else {
                report.skipped.push((summary, "It has no UID.".into()));
                continue;
            };
            if let Some(own) = uid.strip_suffix("@rapport") {
                let ours: bool = diesel::select(diesel::dsl::exists(
                    interactions::table
                        .filter(interactions::organization_id.eq(&ctx.org_id))
                        .filter(interactions::id.eq(own)),
                ))
                .get_result(conn)?;
                if ours {
                    report
                        .skipped
                        .push((summary, "It is already in Rapport.".into()));
                    continue;
                }
            }
            let time = |name: &str| {
                event
                    .properties
                    .iter()
                    .find(|p| p.name == name)
                    .and_then(|p| ics_time(p, local))
            };
            let Some(start) = time("DTSTART") else {
                report
                    .skipped
                    .push((summary, "It has no start time Rapport can read.".into()));
                continue;
            };
            let end = time("DTEND").or_else(|| {
                prop("DURATION")
                    .and_then(|d| ics_duration(&d))
                    .map(|d| start + d)
            });
            let mut emails: Vec<String> = Vec::new();
            for p in &event.properties {
                if p.name == "ATTENDEE" || p.name == "ORGANIZER" {
                    if let Some(e) = p.value.as_deref().and_then(mailto) {
                        emails.push(e);
                    }
                }
            }
            let mut client: Option<String> = None;
            let mut participants = Vec::new();
            for e in &emails {
                if let Some(c) = client_by_email(conn, &ctx.org_id, access, e)? {
                    if client.is_none() {
                        client = Some(c);
                    } else if client.as_deref() != Some(c.as_str()) {
                        participants.push(json!({"type": "client", "id": c}));
                    }
                } else if let Some(u) = member_by_email(conn, &ctx.org_id, e)? {
                    if Some(&u) != ctx.actor_user_id.as_ref() {
                        participants.push(json!({"type": "user", "id": u}));
                    }
                }
            }
            let Some(client) = client.or_else(|| default_client.map(str::to_string)) else {
                report.skipped.push((
                    summary,
                    "None of its attendees is a client you can see.".into(),
                ));
                continue;
            };
            let cancelled = cancelled_all || prop("STATUS").as_deref() == Some("CANCELLED");
            let mut fields = Map::new();
            fields.insert("type".into(), json!("meeting"));
            fields.insert(
                "subject".into(),
                json!(summary.chars().take(200).collect::<String>()),
            );
            fields.insert("scheduledAt".into(), json!(rfc3339(start)));
            if let Some(e) = end.filter(|e| *e > start) {
                fields.insert(
                    "durationMinutes".into(),
                    json!((e - start).num_minutes().min(1440)),
                );
            }
            if let Some(d) = prop("DESCRIPTION") {
                fields.insert(
                    "content".into(),
                    json!(unescape(&d)
                        .chars()
                        .take(service::MAX_CONTENT)
                        .collect::<String>()),
                );
            }
            if let Some(l) = prop("LOCATION") {
                fields.insert(
                    "location".into(),
                    json!(unescape(&l).chars().take(200).collect::<String>()),
                );
            }
            fields.insert("participants".into(), Value::Array(participants));
            fields.insert(
                "status".into(),
                json!(if cancelled { "cancelled" } else { "scheduled" }),
            );
            match upsert(
                conn,
                ctx,
                access,
                &client,
                &format!("ics:{}", uid.trim()),
                fields,
            ) {
                Ok((_, Upserted::Created)) => report.created += 1,
                Ok((_, Upserted::Updated)) => report.updated += 1,
                Err(AppError::Validation(_, errs)) => report.skipped.push((
                    summary,
                    errs.into_iter()
                        .map(|e| e.message)
                        .collect::<Vec<_>>()
                        .join(" "),
                )),
                Err(e) if matches!(e, AppError::BadRequest(_)) => {
                    report.skipped.push((summary, e.to_string()))
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(value: &str, tzid: Option<&str>) -> ical::property::Property {
        ical::property::Property {
            name: "DTSTART".into(),
            params: tzid.map(|z| vec![("TZID".to_string(), vec![z.to_string()])]),
            value: Some(value.into()),
        }
    }

    fn at(s: &str) -> Option<NaiveDateTime> {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").ok()
    }

    #[test]
    fn invitation_times_are_read_in_their_own_zone() {
        let importer = Local::of("America/New_York", "en-US");
        // UTC stays UTC.
        assert_eq!(
            ics_time(&prop("20261205T140000Z", None), &importer),
            at("2026-12-05 14:00")
        );
        // A TZID in IANA form, in winter and in summer.
        let berlin = Some("Europe/Berlin");
        assert_eq!(
            ics_time(&prop("20261205T140000", berlin), &importer),
            at("2026-12-05 13:00")
        );
        assert_eq!(
            ics_time(&prop("20260705T140000", berlin), &importer),
            at("2026-07-05 12:00")
        );
        // Outlook's Windows names.
        let pacific = Some("Pacific Standard Time");
        assert_eq!(
            ics_time(&prop("20261205T090000", pacific), &importer),
            at("2026-12-05 17:00")
        );
        // Floating, or a zone nobody knows: the importer's wall clock.
        assert_eq!(
            ics_time(&prop("20261205T090000", None), &importer),
            at("2026-12-05 14:00")
        );
        let odd = Some("Custom Zone 7");
        assert_eq!(
            ics_time(&prop("20261205T090000", odd), &importer),
            at("2026-12-05 14:00")
        );
        // All day: 09:00 in the zone.
        assert_eq!(
            ics_time(&prop("20261205", berlin), &importer),
            at("2026-12-05 08:00")
        );
        assert_eq!(ics_time(&prop("soon", None), &importer), None);
    }
}
