//! Interactions: what happened with a client — calls, meetings, e-mails, notes, tasks —
//! newest first on its timeline. Content is kept as plain text and always shown escaped, so
//! nothing a user or an integration stores can run as script.
//!
//! Why this file is long: every kind (call, meeting, e-mail, note, task, system event)
//! shares one validation, one timeline query and one participants table; appointments,
//! the calendar feed and preferences are modules of their own.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{json, Map, Value};

use crate::db::schema::{interaction_participants, interactions, opportunities};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::service::Access;
use crate::error::{AppError, AppResult, FieldError};

/// What people log. System events ([`EVENT`]) are written by Rapport itself.
pub const KINDS: &[&str] = &["call", "meeting", "email", "sms", "note", "task"];
/// Status changes, reassignments, deal moves: recorded by Rapport, read-only.
pub const EVENT: &str = "event";
pub const DIRECTIONS: &[&str] = &["inbound", "outbound"];
pub const STATUSES: &[&str] = &["completed", "scheduled", "cancelled"];
pub const OUTCOMES: &[&str] = &[
    "connected",
    "voicemail",
    "no_answer",
    "busy",
    "wrong_number",
];
pub const PRIORITIES: &[&str] = &["low", "normal", "high"];
/// Longest content kept, in characters.
pub const MAX_CONTENT: usize = 20_000;

// why NULL for None: [`writes_together`] inserts many rows in one statement, which SQLite
// cannot do with `DEFAULT` in a row; no nullable column has another default.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = interactions, treat_none_as_default_value = false)]
pub struct InteractionRow {
    pub id: String,
    pub organization_id: String,
    pub client_id: String,
    pub opportunity_id: Option<String>,
    pub user_id: Option<String>,
    pub kind: String,
    pub subject: String,
    pub content: String,
    pub direction: Option<String>,
    pub status: String,
    pub scheduled_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    pub occurred_at: NaiveDateTime,
    pub outcome: Option<String>,
    pub duration_minutes: Option<i32>,
    pub metadata: String,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
    /// Tasks: when it is due, how urgent, and who does it.
    pub due_at: Option<NaiveDateTime>,
    pub priority: Option<String>,
    pub assignee_id: Option<String>,
    /// When to notify the assignee (tasks) or the author (planned calls and meetings).
    pub remind_at: Option<NaiveDateTime>,
    /// Set once the reminder is sent, so none is sent twice.
    pub reminded_at: Option<NaiveDateTime>,
    pub location: Option<String>,
    /// The id an external appointment system or an imported invitation gave it.
    pub external_id: Option<String>,
}

/// Someone taking part besides the client and author: another client or a colleague.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Participant {
    Client(String),
    User(String),
}

impl Participant {
    pub fn to_json(&self) -> Value {
        match self {
            Participant::Client(id) => json!({"type": "client", "id": id}),
            Participant::User(id) => json!({"type": "user", "id": id}),
        }
    }
}

pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "call" => "Call",
        "meeting" => "Meeting",
        "email" => "E-mail",
        "sms" => "Text message",
        "note" => "Note",
        EVENT => "Update",
        _ => "Task",
    }
}

fn rfc3339(t: NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn to_json(r: &InteractionRow) -> Value {
    to_json_with(r, &[])
}

pub fn to_json_with(r: &InteractionRow, participants: &[Participant]) -> Value {
    json!({
        "id": r.id, "clientId": r.client_id, "opportunityId": r.opportunity_id,
        "userId": r.user_id, "type": r.kind, "subject": r.subject, "content": r.content,
        "direction": r.direction, "status": r.status,
        "scheduledAt": r.scheduled_at.map(rfc3339), "completedAt": r.completed_at.map(rfc3339),
        "occurredAt": rfc3339(r.occurred_at), "outcome": r.outcome,
        "durationMinutes": r.duration_minutes,
        "dueAt": r.due_at.map(rfc3339), "priority": r.priority, "assigneeId": r.assignee_id,
        "remindAt": r.remind_at.map(rfc3339), "location": r.location, "externalId": r.external_id,
        "participants": participants.iter().map(Participant::to_json).collect::<Vec<_>>(),
        "metadata": serde_json::from_str::<Value>(&r.metadata).unwrap_or(json!({})),
        "version": r.version, "createdAt": rfc3339(r.created_at), "updatedAt": rfc3339(r.updated_at),
    })
}

/// Drops control characters other than line breaks and tabs (they break displays and
/// exports); everything else is kept as typed.
fn clean_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .replace("\r\n", "\n")
}

fn parse_time(v: &Value) -> Result<Option<NaiveDateTime>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|d| Some(d.naive_utc()))
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M").map(Some)
            })
            .map_err(|_| "Use a date and time like 2026-12-01T14:30:00Z.".to_string()),
        _ => Err("Use a date and time like 2026-12-01T14:30:00Z.".into()),
    }
}

/// Applies the fields present in `body` to `row`; collects what is wrong.
fn apply(
    conn: &mut DbConn,
    row: &mut InteractionRow,
    body: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> AppResult<()> {
    const KEYS: &[&str] = &[
        "type",
        "subject",
        "content",
        "direction",
        "status",
        "scheduledAt",
        "completedAt",
        "opportunityId",
        "outcome",
        "durationMinutes",
        "metadata",
        "version",
        "id",
        "clientId",
        "acknowledgeOptOut",
        "dueAt",
        "priority",
        "assigneeId",
        "remindAt",
        "location",
        "participants",
    ];
    for k in body.keys() {
        if !KEYS.contains(&k.as_str()) {
            errors.push(FieldError::new(k, "Unknown field."));
        }
    }
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::trim);
    if let Some(v) = body.get("type") {
        match v.as_str() {
            Some(k) if KINDS.contains(&k) => row.kind = k.to_string(),
            _ => errors.push(FieldError::new(
                "type",
                "Choose call, meeting, email, sms, note or task.",
            )),
        }
    }
    if body.contains_key("subject") {
        row.subject = clean_text(text("subject").unwrap_or_default());
    }
    if row.subject.chars().count() > 200 {
        errors.push(FieldError::new("subject", "Use at most 200 characters."));
    }
    if body.contains_key("content") {
        row.content = clean_text(text("content").unwrap_or_default());
    }
    if row.content.chars().count() > MAX_CONTENT {
        errors.push(FieldError::new(
            "content",
            format!("Use at most {MAX_CONTENT} characters."),
        ));
    }
    if let Some(v) = body.get("direction") {
        match v.as_str().map(str::trim) {
            None | Some("") => row.direction = None,
            Some(d) if DIRECTIONS.contains(&d) => row.direction = Some(d.to_string()),
            _ => errors.push(FieldError::new("direction", "Choose inbound or outbound.")),
        }
    }
    if let Some(v) = body.get("outcome") {
        match v.as_str().map(str::trim) {
            None | Some("") => row.outcome = None,
            Some(o) if OUTCOMES.contains(&o) => row.outcome = Some(o.to_string()),
            _ => errors.push(FieldError::new(
                "outcome",
                "Choose connected, voicemail, no_answer, busy or wrong_number.",
            )),
        }
    }
    if let Some(v) = body.get("durationMinutes") {
        match v {
            Value::Null => row.duration_minutes = None,
            _ => match v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            {
                Some(m) if (0..=1440).contains(&m) => row.duration_minutes = Some(m as i32),
                _ => errors.push(FieldError::new(
                    "durationMinutes",
                    "Use a whole number of minutes from 0 to 1440.",
                )),
            },
        }
    }
    let (was_due, was_scheduled) = (row.due_at, row.scheduled_at);
    for (key, slot) in [
        ("scheduledAt", &mut row.scheduled_at),
        ("completedAt", &mut row.completed_at),
        ("dueAt", &mut row.due_at),
        ("remindAt", &mut row.remind_at),
    ] {
        if let Some(v) = body.get(key) {
            match parse_time(v) {
                Ok(t) => *slot = t,
                Err(e) => errors.push(FieldError::new(key, e)),
            }
        }
    }
    if body.contains_key("location") {
        row.location = text("location").map(clean_text).filter(|l| !l.is_empty());
        if row
            .location
            .as_ref()
            .is_some_and(|l| l.chars().count() > 200)
        {
            errors.push(FieldError::new("location", "Use at most 200 characters."));
        }
    }
    if let Some(v) = body.get("priority") {
        match v.as_str().map(str::trim) {
            None | Some("") => row.priority = None,
            Some(p) if PRIORITIES.contains(&p) => row.priority = Some(p.to_string()),
            _ => errors.push(FieldError::new("priority", "Choose low, normal or high.")),
        }
    }
    if let Some(v) = body.get("assigneeId") {
        match v.as_str().map(str::trim) {
            None | Some("") => row.assignee_id = None,
            Some(u) => {
                let member =
                    crate::domain::orgs::store::find_member(conn, &row.organization_id, u)?
                        .is_some_and(|m| m.membership.is_active);
                if member {
                    row.assignee_id = Some(u.to_string());
                } else {
                    errors.push(FieldError::new(
                        "assigneeId",
                        "Choose an active member of this organization.",
                    ));
                }
            }
        }
    }
    if let Some(v) = body.get("metadata") {
        match v {
            Value::Object(_) if v.to_string().len() <= 8192 => row.metadata = v.to_string(),
            Value::Null => row.metadata = "{}".into(),
            _ => errors.push(FieldError::new(
                "metadata",
                "Send an object of at most 8 KiB.",
            )),
        }
    }
    if let Some(v) = body.get("opportunityId") {
        match v.as_str().map(str::trim) {
            None | Some("") => row.opportunity_id = None,
            Some(id) => {
                let belongs: bool = diesel::select(diesel::dsl::exists(
                    opportunities::table
                        .filter(opportunities::id.eq(id))
                        .filter(opportunities::organization_id.eq(&row.organization_id))
                        .filter(opportunities::client_id.eq(&row.client_id))
                        .filter(opportunities::deleted_at.is_null()),
                ))
                .get_result(conn)?;
                if belongs {
                    row.opportunity_id = Some(id.to_string());
                } else {
                    errors.push(FieldError::new(
                        "opportunityId",
                        "Choose a deal of this client.",
                    ));
                }
            }
        }
    }
    let explicit_status = match body.get("status") {
        None => None,
        Some(v) => match v.as_str() {
            Some(s) if STATUSES.contains(&s) => Some(s.to_string()),
            _ => {
                errors.push(FieldError::new(
                    "status",
                    "Choose completed, scheduled or cancelled.",
                ));
                None
            }
        },
    };
    let at = now();
    let task = row.kind == "task";
    row.status = explicit_status.unwrap_or_else(|| {
        // A task is open until done; other kinds are planned when in the future and
        // happened otherwise.
        match (row.completed_at, row.scheduled_at) {
            (None, _) if task && row.status.is_empty() => "scheduled".into(),
            (None, Some(s)) if s > at => "scheduled".into(),
            _ if row.status.is_empty() => "completed".into(),
            _ => row.status.clone(),
        }
    });
    if task && row.assignee_id.is_none() {
        row.assignee_id = row.user_id.clone();
    }
    if row.status == "completed" && row.completed_at.is_none() {
        row.completed_at = Some(at);
    }
    if row.status != "completed" {
        row.completed_at = None;
    }
    if row.status == "scheduled" && row.scheduled_at.is_none() && !task {
        errors.push(FieldError::new("scheduledAt", "Say when it is planned."));
    }
    if row.subject.is_empty() {
        row.subject = kind_label(&row.kind).to_string();
    }
    row.occurred_at = row
        .completed_at
        .or(row.scheduled_at)
        .or(row.due_at)
        .unwrap_or(row.created_at);
    // Unless told otherwise, a task reminds when it is due and a planned call or meeting a
    // quarter of an hour before; moving the time moves the reminder.
    let moved = row.due_at != was_due || row.scheduled_at != was_scheduled;
    if !body.contains_key("remindAt") && (moved || row.remind_at.is_none()) {
        row.remind_at = default_reminder(row);
    }
    if row.remind_at.is_some_and(|r| r > at) || moved || body.contains_key("remindAt") {
        row.reminded_at = None;
    }
    Ok(())
}

fn default_reminder(row: &InteractionRow) -> Option<NaiveDateTime> {
    if row.status != "scheduled" {
        return None;
    }
    match row.kind.as_str() {
        "task" => row.due_at,
        "call" | "meeting" => row.scheduled_at.map(|s| s - chrono::Duration::minutes(15)),
        _ => None,
    }
}

/// Reads `participants` (`[{"type": "client"|"user", "id"}]`): clients the actor sees and
/// active colleagues, without the interaction's own client; `None` when absent.
fn parse_participants(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    own_client: &str,
    body: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> AppResult<Option<Vec<Participant>>> {
    let Some(v) = body.get("participants") else {
        return Ok(None);
    };
    let bad = || {
        FieldError::new(
            "participants",
            "Send a list of {\"type\": \"client\" or \"user\", \"id\": …}.",
        )
    };
    let items = match v {
        Value::Null => return Ok(Some(Vec::new())),
        Value::Array(a) if a.len() <= 50 => a,
        Value::Array(_) => {
            errors.push(FieldError::new(
                "participants",
                "Use at most 50 participants.",
            ));
            return Ok(None);
        }
        _ => {
            errors.push(bad());
            return Ok(None);
        }
    };
    let mut out = Vec::new();
    for item in items {
        let kind = item.get("type").and_then(Value::as_str);
        let Some(id) = item.get("id").and_then(Value::as_str).map(str::trim) else {
            errors.push(bad());
            continue;
        };
        match kind {
            Some("client") if id == own_client => {}
            Some("client") => {
                match crate::domain::clients::service::get(conn, org_id, access, id) {
                    Ok(c) => out.push(Participant::Client(c.id)),
                    Err(AppError::NotFound) => errors.push(FieldError::new(
                        "participants",
                        format!("No client {id} that you can see."),
                    )),
                    Err(e) => return Err(e),
                }
            }
            Some("user") => {
                let member = crate::domain::orgs::store::find_member(conn, org_id, id)?
                    .is_some_and(|m| m.membership.is_active);
                if member {
                    out.push(Participant::User(id.to_string()));
                } else {
                    errors.push(FieldError::new(
                        "participants",
                        format!("{id} is not an active member of this organization."),
                    ));
                }
            }
            _ => errors.push(bad()),
        }
    }
    out.sort();
    out.dedup();
    Ok(Some(out))
}

fn write_participants(
    conn: &mut DbConn,
    row: &InteractionRow,
    participants: &[Participant],
) -> AppResult<()> {
    diesel::delete(
        interaction_participants::table
            .filter(interaction_participants::interaction_id.eq(&row.id)),
    )
    .execute(conn)?;
    for p in participants {
        let (client, user) = match p {
            Participant::Client(id) => (Some(id.as_str()), None),
            Participant::User(id) => (None, Some(id.as_str())),
        };
        diesel::insert_into(interaction_participants::table)
            .values((
                interaction_participants::id.eq(new_id()),
                interaction_participants::interaction_id.eq(&row.id),
                interaction_participants::organization_id.eq(&row.organization_id),
                interaction_participants::client_id.eq(client),
                interaction_participants::user_id.eq(user),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The participants of each of `ids`.
pub fn participants_of(
    conn: &mut DbConn,
    ids: &[String],
) -> AppResult<std::collections::HashMap<String, Vec<Participant>>> {
    let rows: Vec<(String, Option<String>, Option<String>)> = interaction_participants::table
        .filter(interaction_participants::interaction_id.eq_any(ids))
        .select((
            interaction_participants::interaction_id,
            interaction_participants::client_id,
            interaction_participants::user_id,
        ))
        .load(conn)?;
    let mut out: std::collections::HashMap<String, Vec<Participant>> = Default::default();
    for (i, client, user) in rows {
        let p = match (client, user) {
            (Some(c), _) => Participant::Client(c),
            (_, Some(u)) => Participant::User(u),
            _ => continue,
        };
        out.entry(i).or_default().push(p);
    }
    for v in out.values_mut() {
        v.sort();
    }
    Ok(out)
}

fn visible_client(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    client_id: &str,
) -> AppResult<crate::domain::clients::ClientRow> {
    crate::domain::clients::service::get(conn, org_id, access, client_id)
}

pub fn create(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    client_id: &str,
    body: &Map<String, Value>,
) -> AppResult<InteractionRow> {
    crate::db::transaction(conn, |c| {
        let client = visible_client(c, &ctx.org_id, access, client_id)?;
        let at = now();
        let mut row = InteractionRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            client_id: client.id.clone(),
            opportunity_id: None,
            user_id: ctx.actor_user_id.clone(),
            kind: "note".into(),
            subject: String::new(),
            content: String::new(),
            direction: None,
            status: String::new(),
            scheduled_at: None,
            completed_at: None,
            occurred_at: at,
            outcome: None,
            duration_minutes: None,
            metadata: "{}".into(),
            version: 1,
            created_at: at,
            updated_at: at,
            deleted_at: None,
            due_at: None,
            priority: None,
            assignee_id: None,
            remind_at: None,
            reminded_at: None,
            location: None,
            external_id: None,
        };
        let mut errors = Vec::new();
        if !body.contains_key("type") {
            errors.push(FieldError::new(
                "type",
                "Say what it was: call, meeting, email, sms, note or task.",
            ));
        }
        apply(c, &mut row, body, &mut errors)?;
        let participants =
            parse_participants(c, &ctx.org_id, access, &row.client_id, body, &mut errors)?;
        // An outbound contact against the client's wishes needs saying so explicitly.
        let acknowledged = body
            .get("acknowledgeOptOut")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let (Some("outbound"), Some(channel)) = (
            row.direction.as_deref(),
            crate::domain::preferences::channel_of(&row.kind),
        ) {
            let prefs = crate::domain::preferences::load(c, &ctx.org_id, &row.client_id)?;
            if let (Some(why), false) = (prefs.objection(channel), acknowledged) {
                errors.push(FieldError::new(
                    "acknowledgeOptOut",
                    format!("{why} Confirm to log it anyway."),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The interaction could not be saved.".into(),
                errors,
            ));
        }
        match participants.as_deref().filter(|p| !p.is_empty()) {
            // A new interaction has no participants to replace.
            Some(p) => {
                insert_now(c, &row)?;
                write_participants(c, &row, p)?;
            }
            None => insert_or_defer(c, &row)?,
        }
        audit::record(
            c,
            ctx,
            "interaction.create",
            "interaction",
            Some(&row.id),
            json!({"clientId": row.client_id, "type": row.kind, "subject": row.subject}),
        )?;
        Ok(row)
    })
}

/// An interaction the actor may see (its client visible to them), or 404.
pub fn get(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    id: &str,
) -> AppResult<InteractionRow> {
    let row: InteractionRow = interactions::table
        .filter(interactions::organization_id.eq(org_id))
        .filter(interactions::id.eq(id))
        .filter(interactions::deleted_at.is_null())
        .select(InteractionRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)?;
    // Whoever a task is assigned to may work on it, whoever owns its client.
    if row.assignee_id.as_deref() != Some(access.user_id.as_str()) {
        visible_client(conn, org_id, access, &row.client_id)?;
    }
    Ok(row)
}

pub fn update(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    id: &str,
    body: &Map<String, Value>,
    expected: Option<i64>,
) -> AppResult<InteractionRow> {
    crate::db::transaction(conn, |c| {
        let current = get(c, &ctx.org_id, access, id)?;
        let expected = expected.or_else(|| body.get("version").and_then(Value::as_i64));
        if expected.is_some_and(|v| v != current.version) {
            return Err(AppError::Stale(
                "This interaction was changed by someone else; reload and try again.".into(),
            ));
        }
        if current.kind == EVENT {
            return Err(AppError::Conflict(
                "System events are a record of what happened; they cannot be edited.".into(),
            ));
        }
        let mut row = current.clone();
        let mut errors = Vec::new();
        apply(c, &mut row, body, &mut errors)?;
        let participants =
            parse_participants(c, &ctx.org_id, access, &row.client_id, body, &mut errors)?;
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The interaction could not be saved.".into(),
                errors,
            ));
        }
        row.version = current.version + 1;
        row.updated_at = now();
        let n = diesel::update(
            interactions::table
                .filter(interactions::id.eq(&row.id))
                .filter(interactions::version.eq(current.version)),
        )
        .set((
            (
                interactions::opportunity_id.eq(&row.opportunity_id),
                interactions::kind.eq(&row.kind),
                interactions::subject.eq(&row.subject),
                interactions::content.eq(&row.content),
                interactions::direction.eq(&row.direction),
                interactions::status.eq(&row.status),
                interactions::scheduled_at.eq(row.scheduled_at),
                interactions::completed_at.eq(row.completed_at),
            ),
            (
                interactions::occurred_at.eq(row.occurred_at),
                interactions::outcome.eq(&row.outcome),
                interactions::duration_minutes.eq(row.duration_minutes),
                interactions::metadata.eq(&row.metadata),
                interactions::version.eq(row.version),
                interactions::updated_at.eq(row.updated_at),
                interactions::due_at.eq(row.due_at),
                interactions::priority.eq(&row.priority),
                interactions::assignee_id.eq(&row.assignee_id),
            ),
            (
                interactions::remind_at.eq(row.remind_at),
                interactions::reminded_at.eq(row.reminded_at),
                interactions::location.eq(&row.location),
            ),
        ))
        .execute(c)?;
        if n != 1 {
            return Err(AppError::Stale(
                "This interaction was changed by someone else; reload and try again.".into(),
            ));
        }
        if let Some(p) = &participants {
            write_participants(c, &row, p)?;
        }
        let changed: Vec<&str> = [
            ("type", current.kind != row.kind),
            ("subject", current.subject != row.subject),
            ("content", current.content != row.content),
            ("status", current.status != row.status),
            ("scheduledAt", current.scheduled_at != row.scheduled_at),
            ("completedAt", current.completed_at != row.completed_at),
            ("outcome", current.outcome != row.outcome),
            ("participants", participants.is_some()),
        ]
        .into_iter()
        .filter(|(_, c)| *c)
        .map(|(k, _)| k)
        .collect();
        audit::record(
            c,
            ctx,
            "interaction.update",
            "interaction",
            Some(&row.id),
            json!({"clientId": row.client_id, "changed": changed, "status": [current.status, row.status]}),
        )?;
        Ok(row)
    })
}

pub fn delete(conn: &mut DbConn, ctx: &AuditContext, access: &Access, id: &str) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        let row = get(c, &ctx.org_id, access, id)?;
        if row.kind == EVENT {
            return Err(AppError::Conflict(
                "System events are a record of what happened; they cannot be deleted.".into(),
            ));
        }
        diesel::update(interactions::table.filter(interactions::id.eq(&row.id)))
            .set(interactions::deleted_at.eq(Some(now())))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "interaction.delete",
            "interaction",
            Some(&row.id),
            json!({"clientId": row.client_id, "type": row.kind, "subject": row.subject}),
        )?;
        Ok(())
    })
}

/// Whose timeline: a client's (with meetings they took part in) or a deal's.
#[derive(Debug, Clone)]
pub enum Scope {
    Client(String),
    Deal(String),
}

/// What the reader narrowed the timeline to.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<String>,
    /// Logged by this user.
    pub owner: Option<String>,
    /// Happened on or after / before (exclusive) these times.
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

/// A page of a timeline, newest first; `after` is the last (occurred_at, id) seen.
pub fn timeline(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    scope: &Scope,
    filter: &Filter,
    after: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> AppResult<Vec<InteractionRow>> {
    let mut q = interactions::table
        .filter(interactions::organization_id.eq(org_id))
        .filter(interactions::deleted_at.is_null())
        .into_boxed();
    match scope {
        Scope::Client(client_id) => {
            visible_client(conn, org_id, access, client_id)?;
            // Most clients never join someone else's meeting: the plain query keeps to the
            // timeline index then.
            let joined: bool = diesel::select(diesel::dsl::exists(
                interaction_participants::table
                    .filter(interaction_participants::client_id.eq(client_id)),
            ))
            .get_result(conn)?;
            if joined {
                q = q.filter(
                    interactions::client_id
                        .eq(client_id.clone())
                        .or(interactions::id.eq_any(
                            interaction_participants::table
                                .filter(interaction_participants::client_id.eq(client_id.clone()))
                                .select(interaction_participants::interaction_id),
                        )),
                );
            } else {
                q = q.filter(interactions::client_id.eq(client_id.clone()));
            }
        }
        Scope::Deal(deal_id) => {
            crate::domain::pipeline::service::get(conn, org_id, access, deal_id)?;
            q = q.filter(interactions::opportunity_id.eq(deal_id.clone()));
        }
    }
    if let Some(k) = &filter.kind {
        q = q.filter(interactions::kind.eq(k.clone()));
    }
    if let Some(u) = &filter.owner {
        q = q.filter(interactions::user_id.eq(u.clone()));
    }
    if let Some(f) = filter.from {
        q = q.filter(interactions::occurred_at.ge(f));
    }
    if let Some(t) = filter.to {
        q = q.filter(interactions::occurred_at.lt(t));
    }
    if let Some((at, id)) = after {
        q = q.filter(
            interactions::occurred_at
                .lt(at)
                .or(interactions::occurred_at
                    .eq(at)
                    .and(interactions::id.lt(id))),
        );
    }
    Ok(
        q.order((interactions::occurred_at.desc(), interactions::id.desc()))
            .limit(limit)
            .select(InteractionRow::as_select())
            .load(conn)?,
    )
}

/// Records something Rapport saw happen (a status change, a reassignment, a deal moving) on
/// the client's timeline, as the actor.
pub fn record_event(
    conn: &mut DbConn,
    ctx: &AuditContext,
    client_id: &str,
    opportunity_id: Option<&str>,
    subject: &str,
    metadata: Value,
) -> AppResult<()> {
    let at = now();
    let row = InteractionRow {
        id: new_id(),
        organization_id: ctx.org_id.clone(),
        client_id: client_id.to_string(),
        opportunity_id: opportunity_id.map(str::to_string),
        user_id: ctx.actor_user_id.clone(),
        kind: EVENT.into(),
        subject: subject.chars().take(200).collect(),
        content: String::new(),
        direction: None,
        status: "completed".into(),
        scheduled_at: None,
        completed_at: Some(at),
        occurred_at: at,
        outcome: None,
        duration_minutes: None,
        metadata: metadata.to_string(),
        version: 1,
        created_at: at,
        updated_at: at,
        deleted_at: None,
        due_at: None,
        priority: None,
        assignee_id: None,
        remind_at: None,
        reminded_at: None,
        location: None,
        external_id: None,
    };
    insert_or_defer(conn, &row)
}

thread_local! {
    // why: a workflow batch ends hundreds of runs, each with its line on the timeline, and
    // its note steps add as many notes; kept here, they go in as one insert at the batch's
    // end: one statement and one firing of the interactions' triggers instead of one per
    // row, and the shared per-day activity counters are locked only from then to the commit.
    static DEFERRED: std::cell::RefCell<Option<Vec<InteractionRow>>> =
        const { std::cell::RefCell::new(None) };
}

fn insert_now(conn: &mut DbConn, row: &InteractionRow) -> QueryResult<()> {
    diesel::insert_into(interactions::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

fn insert_or_defer(conn: &mut DbConn, row: &InteractionRow) -> AppResult<()> {
    let kept = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(rows) => {
            rows.push(row.clone());
            true
        }
        None => false,
    });
    if !kept {
        insert_now(conn, row)?;
    }
    Ok(())
}

/// Runs `f`; the system events [`record_event`] makes meanwhile, and every new interaction
/// without participants (a workflow step's note, task or meeting), are written together
/// when it has succeeded, on the same connection (so in its transaction). Inside `f` they
/// are not in the database until [`write_kept`] or the end: a run whose later step may read
/// what an earlier one added calls [`write_kept`] between them.
pub fn writes_together<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> AppResult<T>,
) -> AppResult<T> {
    type Kept = Option<Vec<InteractionRow>>;
    struct Restore(Option<Kept>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(before) = self.0.take() {
                DEFERRED.with(|d| *d.borrow_mut() = before);
            }
        }
    }
    let mut restore = Restore(Some(DEFERRED.with(|d| d.borrow_mut().replace(Vec::new()))));
    let out = f(conn)?;
    let rows = DEFERRED
        .with(|d| std::mem::replace(&mut *d.borrow_mut(), restore.0.take().flatten()))
        .unwrap_or_default();
    write_rows(conn, &rows)?;
    Ok(out)
}

/// How many rows the current scope keeps (0 outside one).
pub fn kept() -> usize {
    DEFERRED.with(|d| d.borrow().as_ref().map_or(0, Vec::len))
}

/// Writes the rows the current scope kept so far, now.
pub fn write_kept(conn: &mut DbConn) -> AppResult<()> {
    let rows = DEFERRED.with(|d| {
        d.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    });
    write_rows(conn, &rows)
}

fn write_rows(conn: &mut DbConn, rows: &[InteractionRow]) -> AppResult<()> {
    // 27 columns a row: 500 rows stay under SQLite's 32,766 bound parameters.
    crate::db::append_rows!(conn, interactions::table, rows, 500);
    Ok(())
}

/// Sends the reminders that are due: one notification to the assignee (tasks) or author and
/// each colleague taking part. Marks them sent in the same transaction, so a crash or a
/// second worker never sends one twice. Returns how many interactions reminded.
pub fn send_reminders(conn: &mut DbConn, at: NaiveDateTime) -> AppResult<usize> {
    use crate::db::schema::clients;
    crate::db::transaction(conn, |c| {
        let due: Vec<(InteractionRow, String)> = interactions::table
            .inner_join(clients::table.on(clients::id.eq(interactions::client_id)))
            .filter(interactions::remind_at.le(at))
            .filter(interactions::reminded_at.is_null())
            .filter(interactions::deleted_at.is_null())
            .filter(interactions::status.eq("scheduled"))
            .order(interactions::remind_at.asc())
            .limit(500)
            .select((InteractionRow::as_select(), clients::display_name))
            .load(c)?;
        let ids: Vec<String> = due.iter().map(|(r, _)| r.id.clone()).collect();
        let parts = participants_of(c, &ids)?;
        for (r, client) in &due {
            let claimed = diesel::update(
                interactions::table
                    .filter(interactions::id.eq(&r.id))
                    .filter(interactions::reminded_at.is_null()),
            )
            .set(interactions::reminded_at.eq(Some(at)))
            .execute(c)?;
            if claimed != 1 {
                continue;
            }
            let mut people: Vec<String> = r
                .assignee_id
                .clone()
                .or_else(|| r.user_id.clone())
                .into_iter()
                .collect();
            for p in parts.get(&r.id).into_iter().flatten() {
                if let Participant::User(u) = p {
                    people.push(u.clone());
                }
            }
            people.sort();
            people.dedup();
            let when = r.due_at.or(r.scheduled_at).unwrap_or(r.occurred_at);
            let title = format!("{}: {}", kind_label(&r.kind), r.subject);
            let link = format!("/clients/{}#interaction-{}", r.client_id, r.id);
            // Each person reads the time on their own clock.
            let zones: std::collections::HashMap<String, crate::locale::Local> =
                crate::db::schema::users::table
                    .filter(crate::db::schema::users::id.eq_any(&people))
                    .select((
                        crate::db::schema::users::id,
                        crate::db::schema::users::time_zone,
                        crate::db::schema::users::locale,
                    ))
                    .load::<(String, String, String)>(c)?
                    .into_iter()
                    .map(|(id, tz, loc)| (id, crate::locale::Local::of(&tz, &loc)))
                    .collect();
            for u in people {
                let local = zones.get(&u).copied().unwrap_or_default();
                let body = format!(
                    "{} with {} on {}",
                    if r.kind == "task" { "Due" } else { "Planned" },
                    client,
                    local.datetime(when)
                );
                crate::domain::notifications::notify_user(
                    c,
                    &r.organization_id,
                    &u,
                    "reminder",
                    &title,
                    &body,
                    Some(&link),
                )?;
            }
        }
        Ok(due.len())
    })
}

/// The cursor after a row: `<unix micros>_<id>`.
pub fn cursor_of(r: &InteractionRow) -> String {
    format!("{}_{}", r.occurred_at.and_utc().timestamp_micros(), r.id)
}

pub fn parse_cursor(s: &str) -> Option<(NaiveDateTime, String)> {
    let (micros, id) = s.split_once('_')?;
    let at = chrono::DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
    Some((at, id.to_string()))
}

/// Open tasks assigned to `user` (with their client's name), soonest due first; tasks
/// without a due date last.
pub fn open_tasks(
    conn: &mut DbConn,
    org_id: &str,
    user: &str,
) -> AppResult<Vec<(InteractionRow, String)>> {
    use crate::db::schema::clients;
    let mut rows: Vec<(InteractionRow, String)> = interactions::table
        .inner_join(clients::table.on(clients::id.eq(interactions::client_id)))
        .filter(interactions::organization_id.eq(org_id))
        .filter(interactions::assignee_id.eq(user))
        .filter(interactions::kind.eq("task"))
        .filter(interactions::status.eq("scheduled"))
        .filter(interactions::deleted_at.is_null())
        .limit(1000)
        .select((InteractionRow::as_select(), clients::display_name))
        .load(conn)?;
    rows.sort_by_key(|(r, _)| (r.due_at.is_none(), r.due_at, r.created_at));
    Ok(rows)
}

/// Where an open task stands today: overdue, today or upcoming (incl. no due date).
pub fn bucket(due: Option<NaiveDateTime>, today: chrono::NaiveDate) -> &'static str {
    match due.map(|d| d.date()) {
        Some(d) if d < today => "overdue",
        Some(d) if d == today => "today",
        _ => "upcoming",
    }
}

/// id, client id, client, type, direction, status, when, outcome, minutes, subject,
/// content, author.
pub type ExportRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    NaiveDateTime,
    Option<String>,
    Option<i32>,
    String,
    String,
    Option<String>,
);

/// A page of an interaction export after the id `after`, by id. For one client
/// (`client`) it holds what that client's timeline holds (its own interactions and the
/// meetings it joined), and the client must be one the caller sees; otherwise it holds the
/// interactions of every live client the caller sees.
pub fn export_page(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    filter: &Filter,
    client: Option<&str>,
    after: &str,
    limit: i64,
) -> AppResult<Vec<ExportRow>> {
    use crate::db::schema::clients;
    let mut q = interactions::table
        .inner_join(clients::table.on(clients::id.eq(interactions::client_id)))
        .filter(interactions::organization_id.eq(org_id))
        .filter(interactions::deleted_at.is_null())
        .filter(interactions::id.gt(after.to_string()))
        .order(interactions::id.asc())
        .limit(limit)
        .into_boxed();
    match client {
        Some(client_id) => {
            visible_client(conn, org_id, access, client_id)?;
            q = q.filter(
                interactions::client_id
                    .eq(client_id.to_string())
                    .or(interactions::id.eq_any(
                        interaction_participants::table
                            .filter(interaction_participants::client_id.eq(client_id.to_string()))
                            .select(interaction_participants::interaction_id),
                    )),
            );
        }
        None => {
            q = q.filter(clients::deleted_at.is_null());
            if !access.oversee {
                q = q.filter(clients::assigned_to.eq(access.user_id.clone()));
            }
        }
    }
    if let Some(k) = &filter.kind {
        q = q.filter(interactions::kind.eq(k.clone()));
    }
    if let Some(u) = &filter.owner {
        q = q.filter(interactions::user_id.eq(u.clone()));
    }
    if let Some(f) = filter.from {
        q = q.filter(interactions::occurred_at.ge(f));
    }
    if let Some(t) = filter.to {
        q = q.filter(interactions::occurred_at.lt(t));
    }
    Ok(q.select((
        interactions::id,
        interactions::client_id,
        clients::display_name,
        interactions::kind,
        interactions::direction,
        interactions::status,
        interactions::occurred_at,
        interactions::outcome,
        interactions::duration_minutes,
        interactions::subject,
        interactions::content,
        interactions::user_id,
    ))
    .load(conn)?)
}

/// Marks a task done (only tasks).
pub fn complete_task(
    c: &mut crate::db::DbConn,
    ctx: &crate::domain::audit::AuditContext,
    access: &crate::domain::clients::service::Access,
    id: &str,
) -> crate::error::AppResult<InteractionRow> {
    let task = get(c, &ctx.org_id, access, id)?;
    if task.kind != "task" {
        return Err(crate::error::AppError::NotFound);
    }
    let mut body = Map::new();
    body.insert("status".into(), Value::String("completed".into()));
    update(c, ctx, access, id, &body, None)
}

/// Whose calendar to show: the actor's, or (for those who oversee) everyone's.
pub fn calendar_users(
    c: &mut crate::db::DbConn,
    org: &str,
    access: &crate::domain::clients::service::Access,
    team: bool,
) -> crate::error::AppResult<Vec<String>> {
    if !team || !access.oversee {
        return Ok(vec![access.user_id.clone()]);
    }
    Ok(crate::domain::orgs::store::list_members(
        c,
        org,
        &crate::domain::orgs::store::MemberFilter {
            limit: 1000,
            ..Default::default()
        },
    )?
    .into_iter()
    .filter(|m| m.membership.is_active)
    .map(|m| m.user.id)
    .collect())
}
