//! Interactions: `GET/POST /api/clients/{id}/interactions` (the timeline, newest first, and
//! logging one), `GET/PUT/DELETE /api/interactions/{id}`. Reading needs `client:read`,
//! logging, editing and deleting `client:write`, always on a client the actor sees.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{etag, if_match_version, ListEnvelope};
use crate::domain::appointments::Upserted;
use crate::domain::interactions::{self as service, InteractionRow};
use crate::error::{AppError, AppResult};
use crate::ops::interactions::{self as ops, InteractionView, Target, TimelineQuery};
use crate::web::query_pairs;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    list_deal,
    create,
    show,
    update,
    delete,
    preferences,
    set_preferences,
    tasks,
    create_task,
    complete_task,
    appointment,
    import_ics,
    calendar
))]
pub struct Doc;

/// Someone taking part besides the client and the author.
#[derive(Serialize, Deserialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `Participant::to_json` builds it.
pub struct ParticipantRef {
    /// `client` (another client) or `user` (a colleague).
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// Declares a documentation struct with every field of an interaction as
/// `domain::interactions::to_json_with` writes it, followed by `extra` fields.
macro_rules! interaction_schema {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Serialize, ToSchema)]
        #[serde(rename_all = "camelCase")]
        #[allow(dead_code)] // why: describes the answer for /api/openapi.json; `domain::interactions::to_json_with` builds it.
        pub struct $name {
            id: String,
            client_id: String,
            /// The deal it is about, if any.
            opportunity_id: Option<String>,
            /// The author (null for system events and integrations without a user).
            user_id: Option<String>,
            /// `call`, `meeting`, `email`, `note`, `task`, or `event` (a system event, read-only).
            #[serde(rename = "type")]
            kind: String,
            subject: String,
            /// Plain text.
            content: String,
            /// `inbound` or `outbound`.
            direction: Option<String>,
            /// `completed`, `scheduled` or `cancelled`.
            status: String,
            scheduled_at: Option<DateTime<Utc>>,
            completed_at: Option<DateTime<Utc>>,
            /// When it happened or is planned: what the timeline orders by.
            occurred_at: DateTime<Utc>,
            /// Calls: `connected`, `voicemail`, `no_answer`, `busy` or `wrong_number`.
            outcome: Option<String>,
            duration_minutes: Option<i32>,
            /// Tasks: when it is due.
            due_at: Option<DateTime<Utc>>,
            /// Tasks: `low`, `normal` or `high`.
            priority: Option<String>,
            /// Tasks: who does it.
            assignee_id: Option<String>,
            /// When a reminder is sent.
            remind_at: Option<DateTime<Utc>>,
            location: Option<String>,
            /// The id an external appointment system or an imported invitation gave it.
            external_id: Option<String>,
            participants: Vec<ParticipantRef>,
            /// An integration's own data.
            metadata: HashMap<String, Value>,
            /// Increases with every change; send it back (or its `ETag` as `If-Match`) to guard
            /// an edit.
            version: i64,
            created_at: DateTime<Utc>,
            updated_at: DateTime<Utc>,
            $($(#[$fmeta])* $field: $ty,)*
        }
    };
}

interaction_schema!(
    /// A call, meeting, e-mail, note, task or system event on a client's timeline.
    Interaction {}
);

interaction_schema!(
    /// An open task of the caller's, with its client's name and where it stands.
    Task {
        /// The client's display name.
        client_name: String,
        /// `overdue`, `today` or `upcoming` (also when it has no due date).
        bucket: String,
    }
);

interaction_schema!(
    /// A planned call or meeting, or an open task falling due, with its client's name.
    CalendarEntry {
        /// The client's display name.
        client_name: String,
    }
);

/// The fields of an interaction a write accepts; an edit changes only the fields sent.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct InteractionInput {
    /// `call`, `meeting`, `email`, `note` or `task`.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// At most 200 characters; the type's name when empty.
    subject: Option<String>,
    /// Plain text, at most 20 000 characters.
    content: Option<String>,
    /// `inbound` or `outbound`.
    direction: Option<String>,
    /// `completed`, `scheduled` or `cancelled`; by default planned when in the future.
    status: Option<String>,
    scheduled_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    /// A deal of the same client.
    opportunity_id: Option<String>,
    /// `connected`, `voicemail`, `no_answer`, `busy` or `wrong_number`.
    outcome: Option<String>,
    /// 0 to 1440.
    duration_minutes: Option<i32>,
    /// An object of at most 8 KiB.
    metadata: Option<HashMap<String, Value>>,
    due_at: Option<DateTime<Utc>>,
    /// `low`, `normal` or `high`.
    priority: Option<String>,
    /// An active member (a task's assignee is its author unless said).
    assignee_id: Option<String>,
    /// By default when a task is due, a quarter of an hour before a planned call or meeting.
    remind_at: Option<DateTime<Utc>>,
    /// At most 200 characters.
    location: Option<String>,
    /// Other clients and colleagues taking part (at most 50).
    participants: Option<Vec<ParticipantRef>>,
    /// `true` logs an outbound call or e-mail the client's contact preferences object to.
    acknowledge_opt_out: Option<bool>,
    /// The version the edit was based on.
    version: Option<i64>,
}

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid(
            "body",
            "Send the interaction as a JSON object.",
        )),
    }
}

/// Reads the timeline filters: `filter[type]`, `filter[owner]`, `filter[from]`,
/// `filter[to]` (dates or date-times).
pub fn parse_filter(pairs: &[(String, String)]) -> AppResult<service::Filter> {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let kind = get("filter[type]");
    if let Some(k) = &kind {
        if !service::KINDS.contains(&k.as_str()) && k != service::EVENT {
            return Err(AppError::invalid(
                "filter[type]",
                "Filter by call, meeting, email, sms, note, task or event.",
            ));
        }
    }
    let day = |k: &str, end: bool| -> AppResult<Option<chrono::NaiveDateTime>> {
        let Some(v) = get(k) else { return Ok(None) };
        if let Ok(d) = chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
            let d = if end { d.succ_opt().unwrap_or(d) } else { d };
            return Ok(d.and_hms_opt(0, 0, 0));
        }
        chrono::DateTime::parse_from_rfc3339(&v)
            .map(|t| Some(t.naive_utc()))
            .map_err(|_| AppError::invalid(k, "Use a date like 2026-12-01."))
    };
    Ok(service::Filter {
        kind,
        owner: get("filter[owner]"),
        from: day("filter[from]", false)?,
        // A day given as the end includes that day.
        to: day("filter[to]", true)?,
    })
}

async fn list_scope(scope: ApiScope, req: HttpRequest, target: Target) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let limit = match get("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| AppError::invalid("limit", "Use a limit from 1 to 500."))?,
    };
    let after = match get("cursor") {
        None => None,
        Some(c) => Some(service::parse_cursor(&c).ok_or_else(|| {
            AppError::invalid("cursor", "Use the nextCursor of the previous page.")
        })?),
    };
    let filter = parse_filter(&pairs)?;
    let page = ops::timeline(
        &scope,
        target,
        TimelineQuery {
            filter,
            after,
            limit,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        next_cursor: page.next,
        data: page
            .rows
            .iter()
            .map(|r| service::to_json_with(r, page.participants.get(&r.id).map_or(&[][..], |v| v)))
            .collect::<Vec<_>>(),
    }))
}

/// Lists a client's timeline, newest first (`client:read` and `interaction:read`).
#[utoipa::path(get, path = "/api/clients/{id}/interactions", tag = "Interactions",
    params(
        ("id" = String, Path, description = "The client's id."),
        ("limit" = Option<i64>, Query, description = "Page size, 1–500 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page."),
        ("filter[type]" = Option<String>, Query, description = "call, meeting, email, sms, note, task or event."),
        ("filter[owner]" = Option<String>, Query, description = "The author's user id."),
        ("filter[from]" = Option<String>, Query, description = "From this date or date-time on."),
        ("filter[to]" = Option<String>, Query, description = "Up to this date (included) or date-time."),
    ),
    responses((status = 200, description = "A page of the timeline.", body = ListEnvelope<Interaction>)))]
pub async fn list(
    scope: ApiScope,
    req: HttpRequest,
    client: web::Path<String>,
) -> AppResult<HttpResponse> {
    list_scope(scope, req, Target::Client(client.into_inner())).await
}

/// Lists what happened about one deal, newest first (`client:read`, `interaction:read` and
/// `opportunity:read`).
#[utoipa::path(get, path = "/api/opportunities/{id}/interactions", tag = "Interactions",
    params(
        ("id" = String, Path, description = "The deal's id."),
        ("limit" = Option<i64>, Query, description = "Page size, 1–500 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page."),
        ("filter[type]" = Option<String>, Query, description = "call, meeting, email, sms, note, task or event."),
        ("filter[owner]" = Option<String>, Query, description = "The author's user id."),
        ("filter[from]" = Option<String>, Query, description = "From this date or date-time on."),
        ("filter[to]" = Option<String>, Query, description = "Up to this date (included) or date-time."),
    ),
    responses((status = 200, description = "A page of the deal's timeline.", body = ListEnvelope<Interaction>)))]
pub async fn list_deal(
    scope: ApiScope,
    req: HttpRequest,
    deal: web::Path<String>,
) -> AppResult<HttpResponse> {
    list_scope(scope, req, Target::Deal(deal.into_inner())).await
}

fn respond(status: StatusCode, v: &InteractionView) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::ETAG, etag(v.row.version)));
    if status == StatusCode::CREATED {
        b.insert_header((header::LOCATION, format!("/api/interactions/{}", v.row.id)));
    }
    b.json(v.to_json())
}

/// Logs an interaction on a client (`interaction:write`).
#[utoipa::path(post, path = "/api/clients/{id}/interactions", tag = "Interactions",
    request_body = InteractionInput,
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 201, description = "Logged; `Location` names it, `ETag` is its version.", body = Interaction)))]
pub async fn create(
    scope: ApiScope,
    client: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let v = ops::log(&scope, Target::Client(client.into_inner()), object(body)?).await?;
    Ok(respond(StatusCode::CREATED, &v))
}

/// Shows an interaction (`client:read` and `interaction:read`).
#[utoipa::path(get, path = "/api/interactions/{id}", tag = "Interactions",
    params(("id" = String, Path, description = "The interaction's id.")),
    responses((status = 200, description = "The interaction.", body = Interaction)))]
pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let v = ops::get(&scope, id.into_inner()).await?;
    Ok(respond(StatusCode::OK, &v))
}

/// Changes the fields sent of an interaction, others stay (`interaction:write`); `If-Match`
/// or `version` guards against a concurrent edit. System events cannot be edited.
#[utoipa::path(put, path = "/api/interactions/{id}", tag = "Interactions",
    request_body = InteractionInput,
    params(("id" = String, Path, description = "The interaction's id.")),
    responses((status = 200, description = "Changed.", body = Interaction)))]
pub async fn update(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let v = ops::update(&scope, id.into_inner(), object(body)?, expected).await?;
    Ok(respond(StatusCode::OK, &v))
}

/// Deletes an interaction (`interaction:delete`).
#[utoipa::path(delete, path = "/api/interactions/{id}", tag = "Interactions",
    params(("id" = String, Path, description = "The interaction's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One channel's consent.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `Preferences::to_json` builds it.
pub struct ChannelConsent {
    /// `opt_in`, `opt_out` or `unknown` (never said).
    status: String,
    /// Where the consent came from (null when unknown).
    source: Option<String>,
    /// When it was given (null when unknown).
    updated_at: Option<String>,
}

/// The consent on each channel.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `Preferences::to_json` builds it.
pub struct Channels {
    email: ChannelConsent,
    phone: ChannelConsent,
    sms: ChannelConsent,
    post: ChannelConsent,
}

/// A client's communication preferences.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `Preferences::to_json` builds it.
pub struct ContactPreferences {
    channels: Channels,
    /// The client asked not to be contacted at all.
    do_not_contact: bool,
    /// `email`, `phone`, `sms` or `post`.
    preferred_channel: Option<String>,
    /// When to reach them, in words (`weekdays 9–12`).
    preferred_window: Option<String>,
}

/// A consent to record.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct ConsentInput {
    /// `opt_in`, `opt_out`, or `unknown` to forget it.
    status: String,
    /// Where it came from (at most 100 characters).
    source: Option<String>,
}

/// The parts of the preferences to change; parts left out stay.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct PreferencesInput {
    /// Consents by channel: `email`, `phone`, `sms`, `post`.
    channels: Option<HashMap<String, ConsentInput>>,
    do_not_contact: Option<bool>,
    /// `email`, `phone`, `sms` or `post`; empty to clear.
    preferred_channel: Option<String>,
    /// At most 100 characters; empty to clear.
    preferred_window: Option<String>,
}

/// Shows a client's communication preferences: consent per channel, do-not-contact
/// (`client:read`).
#[utoipa::path(get, path = "/api/clients/{id}/preferences", tag = "Clients",
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "Its preferences.", body = ContactPreferences)))]
pub async fn preferences(scope: ApiScope, client: web::Path<String>) -> AppResult<HttpResponse> {
    let p = crate::ops::clients::preferences(&scope, client.into_inner()).await?;
    Ok(HttpResponse::Ok().json(p.to_json()))
}

/// Changes the parts sent of a client's communication preferences (`client:write`; audited).
#[utoipa::path(put, path = "/api/clients/{id}/preferences", tag = "Clients",
    request_body = PreferencesInput,
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "The preferences now.", body = ContactPreferences)))]
pub async fn set_preferences(
    scope: ApiScope,
    client: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let p =
        crate::ops::clients::set_preferences(&scope, client.into_inner(), object(body)?).await?;
    Ok(HttpResponse::Ok().json(p.to_json()))
}

fn task_json(
    r: &InteractionRow,
    client: &str,
    today: chrono::NaiveDate,
    participants: &[crate::domain::interactions::Participant],
) -> Value {
    let mut v = service::to_json_with(r, participants);
    v["clientName"] = Value::String(client.to_string());
    v["bucket"] = Value::String(service::bucket(r.due_at, today).to_string());
    v
}

/// Lists the caller's open tasks, soonest due first, each with where it stands
/// (`client:read` and `interaction:read`; one page, no cursor).
#[utoipa::path(get, path = "/api/tasks", tag = "Tasks",
    responses((status = 200, description = "The open tasks.", body = ListEnvelope<Task>)))]
pub async fn tasks(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = ops::my_tasks(&scope).await?;
    let people = ops::participants(&scope, &rows).await?;
    let today = chrono::Utc::now().date_naive();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows
            .iter()
            .map(|(r, client)| {
                task_json(r, client, today, people.get(&r.id).map_or(&[][..], |v| v))
            })
            .collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

/// A task to add: the client, and the fields of an interaction.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct TaskInput {
    /// The client the task is for.
    client_id: String,
    subject: Option<String>,
    content: Option<String>,
    due_at: Option<DateTime<Utc>>,
    /// `low`, `normal` or `high`.
    priority: Option<String>,
    /// An active member; the caller when left out.
    assignee_id: Option<String>,
    /// By default when it is due.
    remind_at: Option<DateTime<Utc>>,
    /// A deal of the same client.
    opportunity_id: Option<String>,
}

/// Adds a task for a client (`interaction:write`); any field of an interaction may be sent too.
#[utoipa::path(post, path = "/api/tasks", tag = "Tasks", request_body = TaskInput,
    responses((status = 201, description = "Added; `Location` names it.", body = Interaction)))]
pub async fn create_task(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let mut body = object(body)?;
    let client = body
        .remove("clientId")
        .and_then(|v| v.as_str().map(str::to_string))
        .ok_or_else(|| AppError::invalid("clientId", "Say which client the task is for."))?;
    let v = ops::create_task(&scope, client, body).await?;
    Ok(respond(StatusCode::CREATED, &v))
}

/// Marks a task done (`interaction:write`; only a task).
#[utoipa::path(post, path = "/api/tasks/{id}/complete", tag = "Tasks",
    params(("id" = String, Path, description = "The task's id.")),
    responses((status = 200, description = "Done.", body = Interaction)))]
pub async fn complete_task(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let v = ops::complete_task(&scope, id.into_inner()).await?;
    Ok(respond(StatusCode::OK, &v))
}

/// An appointment from an external system.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct AppointmentInput {
    /// The id your system gave it (at most 200 characters): sending it again updates the
    /// meeting, so retries are safe.
    external_id: String,
    /// Whose appointment it is: a client's id, or
    client_id: Option<String>,
    /// the e-mail address of a client.
    client_email: Option<String>,
    /// "Appointment" when left out.
    subject: Option<String>,
    starts_at: DateTime<Utc>,
    /// After `startsAt`; or send `durationMinutes`.
    ends_at: Option<DateTime<Utc>>,
    duration_minutes: Option<i32>,
    location: Option<String>,
    /// Becomes the meeting's content.
    description: Option<String>,
    /// `scheduled` (or `confirmed`, the default), `completed` or `cancelled`.
    status: Option<String>,
    participants: Option<Vec<ParticipantRef>>,
    /// A deal of the same client.
    opportunity_id: Option<String>,
}

/// Receives a meeting from an external appointment system (`interaction:write`); sending
/// the same `externalId` again updates it instead of adding another.
#[utoipa::path(post, path = "/api/appointments", tag = "Calendar", request_body = AppointmentInput,
    responses(
        (status = 201, description = "A new meeting; `Location` names it.", body = Interaction),
        (status = 200, description = "The meeting of this `externalId`, updated.", body = Interaction),
    ))]
pub async fn appointment(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let (v, how) = ops::appointment(&scope, object(body)?).await?;
    let status = match how {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    Ok(respond(status, &v))
}

/// An event of the file left out.
#[derive(Serialize, ToSchema)]
pub struct SkippedEvent {
    /// The event's summary.
    summary: String,
    /// Why it was left out.
    reason: String,
}

/// What an import did.
#[derive(Serialize, ToSchema)]
pub struct IcsImport {
    /// Meetings added.
    created: usize,
    /// Meetings already imported, updated.
    updated: usize,
    skipped: Vec<SkippedEvent>,
}

pub fn ics_report_json(r: &crate::domain::appointments::IcsReport) -> IcsImport {
    IcsImport {
        created: r.created,
        updated: r.updated,
        skipped: r
            .skipped
            .iter()
            .map(|(summary, reason)| SkippedEvent {
                summary: summary.clone(),
                reason: reason.clone(),
            })
            .collect(),
    }
}

/// Imports the invitations of an iCalendar file as meetings (`interaction:write`), each on
/// the client among its attendees, or on `clientId`.
#[utoipa::path(post, path = "/api/calendar/import", tag = "Calendar",
    request_body(content = String, content_type = "text/calendar", description = "An iCalendar (`.ics`) file, UTF-8."),
    params(("clientId" = Option<String>, Query, description = "The client every meeting is on.")),
    responses((status = 200, description = "What the import did.", body = IcsImport)))]
pub async fn import_ics(
    scope: ApiScope,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let client = pairs
        .iter()
        .find(|(k, _)| k == "clientId")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty());
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| AppError::invalid("file", "The calendar file is not UTF-8 text."))?;
    let report = ops::import_ics(&scope, text, client).await?;
    Ok(HttpResponse::Ok().json(ics_report_json(&report)))
}

/// Lists the planned calls and meetings and the open tasks falling due between two days,
/// the caller's or the team's, soonest first (`client:read` and `interaction:read`; at most
/// 62 days, one page).
#[utoipa::path(get, path = "/api/calendar", tag = "Calendar",
    params(
        ("from" = Option<chrono::NaiveDate>, Query, description = "The first day (default today)."),
        ("to" = Option<chrono::NaiveDate>, Query, description = "The day after the last (default a week after `from`)."),
        ("scope" = Option<String>, Query, description = "`me` (default) or `team` (every member's, for a role that oversees)."),
    ),
    responses((status = 200, description = "The entries.", body = ListEnvelope<CalendarEntry>)))]
pub async fn calendar(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let date = |k: &str| -> AppResult<Option<chrono::NaiveDate>> {
        get(k)
            .map(|v| {
                chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                    .map_err(|_| AppError::invalid(k, "Use a date like 2026-12-01."))
            })
            .transpose()
    };
    let from = date("from")?.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let to = date("to")?.unwrap_or(from + chrono::Duration::days(7));
    let team = match get("scope").as_deref() {
        None | Some("me") => false,
        Some("team") => true,
        Some(_) => return Err(AppError::invalid("scope", "Use me or team.")),
    };
    let rows = ops::calendar(&scope, from, to, team).await?;
    let people = ops::participants(&scope, &rows).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows
            .iter()
            .map(|(r, client)| {
                let mut v = service::to_json_with(r, people.get(&r.id).map_or(&[][..], |v| v));
                v["clientName"] = Value::String(client.clone());
                v
            })
            .collect::<Vec<_>>(),
        next_cursor: None,
    }))
}
