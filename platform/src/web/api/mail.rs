//! E-mail: `/api/mailboxes` (connect, change, remove, `/test`, `/sync`) and `/api/messages`
//! (list with `view=all|unmatched|outbox` or `filter[clientId]`, read with its thread,
//! write — `POST` is safe to retry with `Idempotency-Key` — send again, file on a client).

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::ListEnvelope;
use crate::domain::mail::{MailboxInput, View};
use crate::error::{AppError, AppResult};
use crate::ops::mail as ops;
use crate::web::query_pairs;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_mailboxes,
    create_mailbox,
    show_mailbox,
    update_mailbox,
    delete_mailbox,
    test_mailbox,
    sync_mailbox,
    list_messages,
    send,
    show_message,
    resend,
    message_file,
    file,
    list_templates,
    create_template,
    preview_template,
    text_client,
    show_template,
    update_template,
    delete_template,
    list_sends,
    create_send,
    preview_send,
    show_send,
    send_recipients,
    pause_send,
    resume_send,
    cancel_send,
    settings,
    update_settings,
    bounces,
    clear_bounce
))]
pub struct Doc;

// ---- Documented shapes --------------------------------------------------------------------
// The mailbox, message, template and send answers are built by the domain (`to_json`); these
// structs mirror them for /api/openapi.json.

/// A mail server's address, as a mailbox answers it.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct MailServer {
    host: String,
    port: i32,
    /// `tls`, `starttls` or `none`.
    #[schema(example = "tls")]
    security: String,
}

/// A connected mailbox (never its password).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct Mailbox {
    id: String,
    name: String,
    address: String,
    /// The organization's shared mailbox (no `userId`) rather than a user's own.
    shared: bool,
    /// Whose own mailbox it is; null for a shared one.
    user_id: Option<String>,
    username: String,
    imap: MailServer,
    smtp: MailServer,
    sent_folder: String,
    sync_enabled: bool,
    last_sync_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What the last sync ran into, if anything.
    last_error: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// A mail server's address in a request: the port may be a number or a string.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct MailServerBody {
    host: Option<String>,
    port: Option<i32>,
    /// `tls`, `starttls` or `none`.
    #[schema(example = "tls")]
    security: Option<String>,
}

/// A mailbox's settings. On creation `name`, `address`, `imap.host` and `smtp.host` are
/// needed; on a change, what is left out stays as it was (the password too).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct MailboxBody {
    name: Option<String>,
    address: Option<String>,
    username: Option<String>,
    /// Stored sealed and never answered; left out, the stored one stays.
    password: Option<String>,
    imap: Option<MailServerBody>,
    smtp: Option<MailServerBody>,
    sent_folder: Option<String>,
    sync_enabled: Option<bool>,
    /// On creation only: the organization's shared mailbox (`message:admin`) rather than
    /// the caller's own. A change may not send it.
    shared: Option<bool>,
}

/// How one server answered a connection test.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct ServerCheck {
    ok: bool,
    /// The server's own error; null when it worked.
    error: Option<String>,
}

/// What a connection test found.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct MailboxTest {
    /// Both servers worked.
    ok: bool,
    imap: ServerCheck,
    smtp: ServerCheck,
}

/// What one sync of a mailbox did.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct MailboxSync {
    fetched: u64,
    /// Filed on clients' timelines.
    filed: u64,
    /// From senders no client has.
    unmatched: u64,
    already_known: u64,
    /// Bounce reports recognised.
    bounces: u64,
    /// What went wrong (a folder missing, a login refused); null when nothing did.
    error: Option<String>,
}

/// The sender of a message.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct MessageFrom {
    address: String,
    name: String,
}

/// A client a message is filed on.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct MessageClient {
    id: String,
    name: String,
}

/// A file a message carries.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct MessageFile {
    id: String,
    file_name: String,
    /// As its content shows: `image/png`, `image/jpeg`, `image/gif`, `image/webp`,
    /// `application/pdf`, `application/zip`, `text/plain; charset=utf-8` or
    /// `application/octet-stream`.
    #[schema(example = "application/pdf")]
    content_type: String,
    /// Bytes.
    size: i64,
    /// Where to download it (`/api/messages/{id}/attachments/{file}`).
    url: String,
}

/// An e-mail, sent or received.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct Message {
    id: String,
    mailbox_id: Option<String>,
    user_id: Option<String>,
    /// `inbound` or `outbound`.
    #[schema(example = "outbound")]
    direction: String,
    /// `received`, `queued`, `sending`, `sent`, `failed`, `refused`, `uncertain` or `bounced`.
    #[schema(example = "queued")]
    status: String,
    /// The `Message-ID` header.
    message_id: String,
    in_reply_to: Option<String>,
    thread_id: String,
    from: MessageFrom,
    to: Vec<String>,
    cc: Vec<String>,
    bcc: Vec<String>,
    subject: String,
    text: String,
    /// Filed on at least one client.
    matched: bool,
    error: Option<String>,
    attempts: i32,
    /// The deal it was written from.
    opportunity_id: Option<String>,
    clients: Vec<MessageClient>,
    occurred_at: chrono::DateTime<chrono::Utc>,
    created_at: chrono::DateTime<chrono::Utc>,
    attachments: Vec<MessageFile>,
}

/// A message of a thread, in short.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadEntry {
    id: String,
    /// `inbound` or `outbound`.
    direction: String,
    /// The sender's address.
    from: String,
    subject: String,
    status: String,
    #[schema(format = DateTime)]
    occurred_at: String,
}

/// An e-mail with the messages of its thread.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct MessageDetail {
    id: String,
    mailbox_id: Option<String>,
    user_id: Option<String>,
    /// `inbound` or `outbound`.
    #[schema(example = "inbound")]
    direction: String,
    /// `received`, `queued`, `sending`, `sent`, `failed`, `refused`, `uncertain` or `bounced`.
    #[schema(example = "received")]
    status: String,
    message_id: String,
    in_reply_to: Option<String>,
    thread_id: String,
    from: MessageFrom,
    to: Vec<String>,
    cc: Vec<String>,
    bcc: Vec<String>,
    subject: String,
    text: String,
    matched: bool,
    error: Option<String>,
    attempts: i32,
    opportunity_id: Option<String>,
    clients: Vec<MessageClient>,
    occurred_at: chrono::DateTime<chrono::Utc>,
    created_at: chrono::DateTime<chrono::Utc>,
    attachments: Vec<MessageFile>,
    /// Every message of the thread the caller may see, oldest first.
    thread: Vec<ThreadEntry>,
}

/// An e-mail to write. Addresses are a list or a comma-separated string; at most 50
/// recipients in all.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct MessageBody {
    /// The mailbox to send from.
    mailbox_id: String,
    /// The client it is written to (and filed on).
    client_id: Option<String>,
    #[schema(value_type = Option<Vec<String>>)]
    to: Option<Value>,
    #[schema(value_type = Option<Vec<String>>)]
    cc: Option<Value>,
    #[schema(value_type = Option<Vec<String>>)]
    bcc: Option<Value>,
    subject: Option<String>,
    text: Option<String>,
    /// The id of the message this answers.
    reply_to: Option<String>,
    /// The deal it is written from.
    opportunity_id: Option<String>,
    /// Files to attach: ids of the client's (or deal's) attachments.
    attachment_ids: Option<Vec<String>>,
}

/// Where to file a message.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct FileBody {
    /// The client to file it on; left out or null, a new person is made from the sender.
    client_id: Option<String>,
}

/// A message template.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct Template {
    id: String,
    name: String,
    /// `email` or `sms`.
    #[schema(example = "email")]
    kind: String,
    subject: String,
    body: String,
    /// Each change makes a new version.
    version: i32,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// A past version of a template.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateVersion {
    version: i32,
    subject: String,
    body: String,
    #[schema(format = DateTime)]
    created_at: String,
}

/// A message template with its versions.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct TemplateDetail {
    id: String,
    name: String,
    /// `email` or `sms`.
    #[schema(example = "email")]
    kind: String,
    subject: String,
    body: String,
    version: i32,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    versions: Vec<TemplateVersion>,
}

/// A template's fields (no others are accepted).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct TemplateBody {
    /// `email` (the default) or `sms`.
    #[schema(example = "email")]
    kind: Option<String>,
    name: String,
    /// Merge fields like `{{ client.firstName }}`; empty for a short message.
    subject: Option<String>,
    body: String,
}

/// What to preview: a template by id, or a subject and body as written.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct PreviewBody {
    /// The client whose fields fill it in.
    client_id: String,
    /// A saved template; when given, `subject` and `body` are not read.
    template_id: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    /// The deal whose fields `{{ deal.… }}` reads.
    opportunity_id: Option<String>,
}

/// A template as it would read.
#[derive(Serialize, ToSchema)]
pub struct Preview {
    subject: String,
    text: String,
}

/// Who a bulk send goes to: the client list's filters or chosen clients (one of the two).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the audience for /api/openapi.json; the handler reads it as JSON.
pub struct SendAudience {
    /// The client list's query string, filters only (`filter[status]=customer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<String>,
    /// Chosen clients (at most 200,000).
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ids: Option<Vec<String>>,
}

/// An audience to count.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct AudienceBody {
    audience: SendAudience,
}

/// Clients left out of a send, by reason.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct Exclusions {
    opted_out: u64,
    do_not_contact: u64,
    no_address: u64,
    /// An address another recipient already has.
    same_address: u64,
    bounced: u64,
}

/// What an audience comes to once preferences are applied.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct Tally {
    /// Clients the audience matches.
    matched: u64,
    /// Clients it will be written to.
    recipients: u64,
    excluded: Exclusions,
}

/// A bulk send to create.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct SendBody {
    name: String,
    template_id: String,
    mailbox_id: String,
    audience: SendAudience,
    /// Messages a minute (60 unless said).
    per_minute: Option<i32>,
    /// When to start (RFC 3339); now unless said.
    scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A send's figures in one hour (UTC).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct SendHour {
    /// `2026-12-01 09:00`
    #[schema(example = "2026-12-01 09:00")]
    hour: String,
    delivered: i64,
    opened: i64,
    clicked: i64,
    bounced: i64,
}

/// A bulk send's report, with `audience` as the caller may stamp it.
macro_rules! send_report {
    ($(#[$m:meta])* $name:ident { audience: $aud:ty $(, $(#[$fm:meta])* $extra:ident: $ety:ty)* $(,)? }) => {
        $(#[$m])*
        #[derive(Serialize, ToSchema)]
        #[serde(rename_all = "camelCase")]
        #[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
        pub struct $name {
            id: String,
            name: String,
            /// `scheduled`, `running`, `paused`, `done` or `cancelled`.
            #[schema(example = "scheduled")]
            status: String,
            template_id: Option<String>,
            /// The template's version the send was made from.
            template_version: i32,
            mailbox_id: Option<String>,
            audience: $aud,
            per_minute: i32,
            scheduled_at: chrono::DateTime<chrono::Utc>,
            /// Clients written to.
            recipients: i32,
            /// Clients left out.
            excluded: i32,
            waiting: i64,
            sending: i64,
            /// Accepted by the server (bounced ones included).
            delivered: i64,
            failed: i64,
            uncertain: i64,
            cancelled: i64,
            opened: i64,
            clicked: i64,
            unsubscribed: i64,
            bounced: i64,
            created_at: chrono::DateTime<chrono::Utc>,
            $($(#[$fm])* $extra: $ety,)*
        }
    };
}

send_report!(
    /// A bulk send and its figures.
    SendReport { audience: SendAudience }
);
send_report!(
    /// A bulk send and its figures, hour by hour too.
    SendDetail {
        audience: SendAudience,
        /// The figures per hour (UTC), oldest first; at most three weeks.
        over_time: Vec<SendHour>,
    }
);
send_report!(
    /// A bulk send just made: its figures, with `audience` the count of who it reaches.
    CreatedSend { audience: Tally }
);

/// One recipient of a bulk send.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the domain builds it as JSON.
pub struct SendRecipient {
    id: String,
    client_id: String,
    /// The client's name.
    client: String,
    address: String,
    /// `waiting`, `excluded`, `cancelled`, `delivered`, or the message's status (`queued`,
    /// `sending`, `failed`, `refused`, `uncertain`, `bounced`).
    #[schema(example = "delivered")]
    state: String,
    /// Why it was left out, or the sending error.
    reason: Option<String>,
    opened_at: Option<chrono::DateTime<chrono::Utc>>,
    clicked_at: Option<chrono::DateTime<chrono::Utc>>,
    unsubscribed_at: Option<chrono::DateTime<chrono::Utc>>,
    bounced_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The organization's mail settings.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MailSettings {
    /// Opens and clicks of bulk messages are recorded.
    tracking: bool,
}

/// An address that bounced.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bounce {
    address: String,
    reason: String,
    #[schema(format = DateTime)]
    bounced_at: String,
}

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid("body", "Send a JSON object.")),
    }
}

fn input(body: &Map<String, Value>) -> AppResult<MailboxInput> {
    MailboxInput::from_json(body)
        .map_err(|e| AppError::Validation("The mailbox could not be saved.".into(), e))
}

/// Lists the mailboxes the caller may use (`message:read`): their own and the organization's
/// shared ones, by name (one page, no cursor).
#[utoipa::path(
    get, path = "/api/mailboxes", tag = "Mailboxes",
    responses((status = 200, description = "The mailboxes.", body = ListEnvelope<Mailbox>))
)]
pub async fn list_mailboxes(scope: ApiScope) -> AppResult<HttpResponse> {
    let data = ops::mailboxes(&scope)
        .await?
        .iter()
        .map(|m| m.to_json())
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// Connects a mailbox: the caller's own (`message:write`) or, with `shared`, the
/// organization's (`message:admin`).
#[utoipa::path(
    post, path = "/api/mailboxes", tag = "Mailboxes", request_body = MailboxBody,
    responses((status = 201, description = "Connected; `Location` names it.", body = Mailbox))
)]
pub async fn create_mailbox(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let body = object(body)?;
    let shared = match body.get("shared") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(AppError::invalid("shared", "Use true or false.")),
    };
    let m = ops::create_mailbox(&scope, shared, input(&body)?).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/mailboxes/{}", m.id)))
        .json(m.to_json()))
}

/// Shows a mailbox the caller may use (`message:read`).
#[utoipa::path(
    get, path = "/api/mailboxes/{id}", tag = "Mailboxes",
    params(("id" = String, Path, description = "The mailbox's id.")),
    responses((status = 200, description = "The mailbox.", body = Mailbox))
)]
pub async fn show_mailbox(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::mailbox(&scope, id.into_inner()).await?.to_json()))
}

/// Changes a mailbox: the caller's own (`message:write`) or a shared one (`message:admin`);
/// what is left out stays, and a mailbox stays shared or personal.
#[utoipa::path(
    patch, path = "/api/mailboxes/{id}", tag = "Mailboxes", request_body = MailboxBody,
    params(("id" = String, Path, description = "The mailbox's id.")),
    responses((status = 200, description = "Changed.", body = Mailbox))
)]
pub async fn update_mailbox(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let body = object(body)?;
    if body.contains_key("shared") {
        return Err(AppError::invalid(
            "shared",
            "A mailbox stays shared or personal; connect another one instead.",
        ));
    }
    let m = ops::update_mailbox(&scope, id.into_inner(), input(&body)?).await?;
    Ok(HttpResponse::Ok().json(m.to_json()))
}

/// Disconnects a mailbox: the caller's own (`message:write`) or a shared one
/// (`message:admin`).
#[utoipa::path(
    delete, path = "/api/mailboxes/{id}", tag = "Mailboxes",
    params(("id" = String, Path, description = "The mailbox's id.")),
    responses((status = 204, description = "Disconnected."))
)]
pub async fn delete_mailbox(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete_mailbox(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Tests a mailbox's connection to its IMAP and SMTP servers, with the right to change it
/// (`message:write` for one's own, `message:admin` for a shared one); each server's own
/// error is answered, not raised.
#[utoipa::path(
    post, path = "/api/mailboxes/{id}/test", tag = "Mailboxes",
    params(("id" = String, Path, description = "The mailbox's id.")),
    responses((status = 200, description = "What each server answered.", body = MailboxTest))
)]
pub async fn test_mailbox(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::test_mailbox(&scope, id.into_inner()).await?.to_json()))
}

/// Syncs a mailbox now (`message:write`): fetches what is new in its inbox and sent folder
/// and files it on clients.
#[utoipa::path(
    post, path = "/api/mailboxes/{id}/sync", tag = "Mailboxes",
    params(("id" = String, Path, description = "The mailbox's id.")),
    responses((status = 200, description = "What the sync did.", body = MailboxSync))
)]
pub async fn sync_mailbox(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::sync_mailbox(&scope, id.into_inner()).await?.to_json()))
}

/// Lists the e-mail the caller may see (`message:read`), newest first, in one of the
/// center's views or for one client.
#[utoipa::path(
    get, path = "/api/messages", tag = "E-mail",
    params(
        ("view" = Option<String>, Query, description = "`all` (the default), `conversations` (the latest message of each thread), `mine`, `unanswered` (conversations whose latest message came in `days` ago or more), `unmatched` (received from senders no client has) or `outbox` (queued, sending, failed, uncertain, refused, bounced)."),
        ("filter[clientId]" = Option<String>, Query, description = "Only the messages filed on this client (the view is then not read)."),
        ("days" = Option<i64>, Query, description = "For `view=unanswered`: days without an answer, 0–365 (2 unless said)."),
        ("limit" = Option<i64>, Query, description = "1–500 (50 unless said)."),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`.")
    ),
    responses((status = 200, description = "One page of messages.", body = ListEnvelope<Message>))
)]
pub async fn list_messages(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
    };
    let limit = match get("limit") {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| AppError::invalid("limit", "Use a limit from 1 to 500."))?,
    };
    let days = match get("days") {
        None => 2,
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=365).contains(n))
            .ok_or_else(|| AppError::invalid("days", "Use a number of days from 0 to 365."))?,
    };
    let view = match (get("filter[clientId]"), get("view").as_deref()) {
        (Some(id), _) => View::Client(id),
        (None, None | Some("all")) => View::All,
        (None, Some("conversations")) => View::Conversations,
        (None, Some("mine")) => View::Mine,
        (None, Some("unanswered")) => View::Unanswered(days),
        (None, Some("unmatched")) => View::Unmatched,
        (None, Some("outbox")) => View::Outbox,
        (None, Some(_)) => {
            return Err(AppError::invalid(
                "view",
                "Use all, conversations, mine, unanswered, unmatched or outbox.",
            ))
        }
    };
    let (rows, next_cursor) = ops::list(&scope, view, get("cursor"), limit).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(|m| m.to_json()).collect(),
        next_cursor,
    }))
}

/// Shows a message with the messages of its thread the caller may see (`message:read`).
#[utoipa::path(
    get, path = "/api/messages/{id}", tag = "E-mail",
    params(("id" = String, Path, description = "The message's id.")),
    responses((status = 200, description = "The message and its thread.", body = MessageDetail))
)]
pub async fn show_message(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (msg, thread) = ops::get(&scope, id.into_inner()).await?;
    let mut body = msg.to_json();
    body["thread"] = json!(thread
        .iter()
        .map(|m| ThreadEntry {
            id: m.row.id.clone(),
            direction: m.row.direction.clone(),
            from: m.row.from_address.clone(),
            subject: m.row.subject.clone(),
            status: m.row.status.clone(),
            occurred_at: m.row.occurred_at.and_utc().to_rfc3339(),
        })
        .collect::<Vec<_>>());
    Ok(HttpResponse::Ok().json(body))
}

/// Writes an e-mail (`message:send`): checked and queued now, sent by the worker within
/// seconds; safe to retry with `Idempotency-Key`.
#[utoipa::path(
    post, path = "/api/messages", tag = "E-mail", request_body = MessageBody,
    responses((status = 202, description = "Queued; `Location` names it.", body = Message))
)]
pub async fn send(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let draft = ops::draft_from(&object(body)?)?;
    let m = ops::send(&scope, draft).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/messages/{}", m.row.id)))
        .json(m.to_json()))
}

/// Downloads a file a message carries (`message:read`), always as an attachment.
#[utoipa::path(
    get, path = "/api/messages/{id}/attachments/{file}", tag = "E-mail",
    params(("id" = String, Path, description = "The message's id."), ("file" = String, Path, description = "The file's id.")),
    responses((status = 200, description = "The file's bytes, typed as its content shows (the type `contentType` names).",
        content(("image/png"), ("image/jpeg"), ("image/gif"), ("image/webp"), ("application/pdf"),
            ("application/zip"), ("text/plain"), ("application/octet-stream"))))
)]
pub async fn message_file(
    scope: ApiScope,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, file) = path.into_inner();
    let (name, ctype, bytes) = ops::message_file(&scope, id, file).await?;
    Ok(crate::web::upload::download_response(&name, &ctype, bytes))
}

/// Sends a failed or uncertain message again (`message:send`).
#[utoipa::path(
    post, path = "/api/messages/{id}/resend", tag = "E-mail",
    params(("id" = String, Path, description = "The message's id.")),
    responses((status = 202, description = "Queued again.", body = Message))
)]
pub async fn resend(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Accepted().json(ops::resend(&scope, id.into_inner()).await?.to_json()))
}

/// Files a message (one from an unknown sender) on a client (`message:write`), or on a new
/// person made from its sender when no client is named.
#[utoipa::path(
    post, path = "/api/messages/{id}/file", tag = "E-mail", request_body = FileBody,
    params(("id" = String, Path, description = "The message's id.")),
    responses((status = 200, description = "Filed.", body = Message))
)]
pub async fn file(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let body = object(body)?;
    let client = match body.get("clientId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(_) => {
            return Err(AppError::invalid(
                "clientId",
                "Name a client by its id, or leave it out to create one.",
            ))
        }
    };
    Ok(HttpResponse::Ok().json(
        ops::file_on(&scope, id.into_inner(), client)
            .await?
            .to_json(),
    ))
}

// ---- /api/templates ----------------------------------------------------------------------

fn text_field(body: &Map<String, Value>, k: &str) -> String {
    body.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

type TemplateFields = (Option<String>, String, String, String);

fn template_fields(body: &Map<String, Value>) -> AppResult<TemplateFields> {
    let unknown: Vec<_> = body
        .keys()
        .filter(|k| !["kind", "name", "subject", "body"].contains(&k.as_str()))
        .map(|k| crate::error::FieldError::new(k, "Unknown field."))
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::Validation(
            "The template could not be saved.".into(),
            unknown,
        ));
    }
    Ok((
        Some(text_field(body, "kind")).filter(|k| !k.is_empty()),
        text_field(body, "name"),
        text_field(body, "subject"),
        text_field(body, "body"),
    ))
}

/// Lists the organization's message templates (`message:read`), one page, no cursor.
#[utoipa::path(
    get, path = "/api/templates", tag = "Templates",
    responses((status = 200, description = "The templates.", body = ListEnvelope<Template>))
)]
pub async fn list_templates(scope: ApiScope) -> AppResult<HttpResponse> {
    let data = ops::templates(&scope)
        .await?
        .iter()
        .map(|t| t.to_json())
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// Creates a message template (`message:write`); its merge fields must parse.
#[utoipa::path(
    post, path = "/api/templates", tag = "Templates", request_body = TemplateBody,
    responses((status = 201, description = "Created; `Location` names it.", body = Template))
)]
pub async fn create_template(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let (kind, name, subject, text) = template_fields(&object(body)?)?;
    let t = ops::save_template(&scope, None, kind, name, subject, text).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/templates/{}", t.id)))
        .json(t.to_json()))
}

/// Shows a message template with its versions (`message:read`).
#[utoipa::path(
    get, path = "/api/templates/{id}", tag = "Templates",
    params(("id" = String, Path, description = "The template's id.")),
    responses((status = 200, description = "The template.", body = TemplateDetail))
)]
pub async fn show_template(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (t, versions) = ops::template(&scope, id.into_inner()).await?;
    let mut body = t.to_json();
    body["versions"] = json!(versions
        .iter()
        .map(|(v, s, b, at)| TemplateVersion {
            version: *v,
            subject: s.clone(),
            body: b.clone(),
            created_at: at.and_utc().to_rfc3339(),
        })
        .collect::<Vec<_>>());
    Ok(HttpResponse::Ok().json(body))
}

/// Changes a message template (`message:write`), making a new version.
#[utoipa::path(
    put, path = "/api/templates/{id}", tag = "Templates", request_body = TemplateBody,
    params(("id" = String, Path, description = "The template's id.")),
    responses((status = 200, description = "Changed.", body = Template))
)]
pub async fn update_template(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let (kind, name, subject, text) = template_fields(&object(body)?)?;
    Ok(HttpResponse::Ok().json(
        ops::save_template(&scope, Some(id.into_inner()), kind, name, subject, text)
            .await?
            .to_json(),
    ))
}

/// Deletes a message template (`message:write`).
#[utoipa::path(
    delete, path = "/api/templates/{id}", tag = "Templates",
    params(("id" = String, Path, description = "The template's id.")),
    responses((status = 204, description = "Deleted."))
)]
pub async fn delete_template(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete_template(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Renders a template, saved or as written, for a client and optionally a deal
/// (`message:read`): the text as it would read.
#[utoipa::path(
    post, path = "/api/templates/preview", tag = "Templates", request_body = PreviewBody,
    responses((status = 200, description = "The rendered subject and text.", body = Preview))
)]
pub async fn preview_template(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let body = object(body)?;
    let client = text_field(&body, "clientId");
    if client.is_empty() {
        return Err(AppError::invalid(
            "clientId",
            "Choose the client to preview against.",
        ));
    }
    let (subject, text) = match body.get("templateId").and_then(Value::as_str) {
        Some(id) => {
            let (t, _) = ops::template(&scope, id.to_string()).await?;
            (t.subject, t.body)
        }
        None => (text_field(&body, "subject"), text_field(&body, "body")),
    };
    let deal = Some(text_field(&body, "opportunityId")).filter(|d| !d.is_empty());
    let (subject, text) = ops::preview(&scope, subject, text, client, deal).await?;
    Ok(HttpResponse::Ok().json(Preview { subject, text }))
}

/// What to text a client: a saved `sms` template or the words themselves.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct TextBody {
    /// A text-message template; when given, `body` is not read.
    template_id: Option<String>,
    /// The message, merge fields allowed (`{{ client.firstName }}`).
    body: Option<String>,
}

/// A text message as logged.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; the handler builds it as JSON.
pub struct TextAnswer {
    /// The outbound `sms` interaction on the client's timeline.
    interaction: Value,
    /// The client's phone number.
    to: String,
    text: String,
    /// SMS segments the text takes.
    segments: usize,
    /// An RFC 5724 `sms:` link that opens a phone's messaging app with the text.
    uri: String,
}

/// Writes a text message to a client (`message:send`, `interaction:write`): renders it,
/// logs it on the timeline as an outbound text, and answers the `sms:` link the rep's phone
/// sends it with (Rapport has no SMS gateway). Refused (422 on `clientId`) when the client has
/// no phone number or its preferences refuse text messages.
#[utoipa::path(
    post, path = "/api/clients/{id}/text-messages", tag = "Templates",
    params(("id" = String, Path, description = "The client's id.")),
    request_body = TextBody,
    responses((status = 201, description = "Logged; send it with `uri`.", body = TextAnswer))
)]
pub async fn text_client(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let body = object(body)?;
    let template = Some(text_field(&body, "templateId")).filter(|t| !t.is_empty());
    let text = Some(text_field(&body, "body")).filter(|t| !t.is_empty());
    let sent = ops::text(&scope, id.into_inner(), template, text).await?;
    Ok(HttpResponse::Created().json(sent.to_json()))
}

// ---- /api/sends --------------------------------------------------------------------------

fn audience_of(body: &Map<String, Value>) -> AppResult<crate::domain::sends::Audience> {
    use crate::domain::sends::Audience;
    match body.get("audience") {
        Some(Value::Object(a)) => match (a.get("query"), a.get("clientIds")) {
            (Some(Value::String(q)), None) => Ok(Audience::Query(q.trim_start_matches('?').to_string())),
            (None, Some(Value::Array(ids))) if ids.len() <= crate::domain::sends::MAX_RECIPIENTS => Ok(Audience::Clients(
                ids.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            )),
            _ => Err(AppError::invalid(
                "audience",
                "Give the audience as {\"query\": \"filter[status]=customer\"} or {\"clientIds\": [...]}.",
            )),
        },
        _ => Err(AppError::invalid("audience", "Say who it goes to: {\"query\": …} or {\"clientIds\": [...]}.")),
    }
}

/// Counts who an audience reaches once preferences are applied, and who is left out
/// (`send:create`).
#[utoipa::path(
    post, path = "/api/sends/preview", tag = "Bulk sends", request_body = AudienceBody,
    responses((status = 200, description = "The count.", body = Tally))
)]
pub async fn preview_send(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let tally = ops::preview_send(&scope, audience_of(&object(body)?)?).await?;
    Ok(HttpResponse::Ok().json(tally.to_json()))
}

/// Creates a bulk send of a template to an audience (`send:create`): every recipient is
/// written now, and the worker sends at the given rate from `scheduledAt`.
#[utoipa::path(
    post, path = "/api/sends", tag = "Bulk sends", request_body = SendBody,
    responses((status = 201, description = "Created; `Location` names it.", body = CreatedSend))
)]
pub async fn create_send(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let body = object(body)?;
    const KEYS: &[&str] = &[
        "name",
        "templateId",
        "mailboxId",
        "audience",
        "perMinute",
        "scheduledAt",
    ];
    if let Some(k) = body.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(AppError::invalid(k, "Unknown field."));
    }
    let per_minute = match body.get("perMinute") {
        None => 60,
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                AppError::invalid("perMinute", "Use a whole number of messages a minute.")
            })?,
    };
    let scheduled_at = match body.get("scheduledAt").and_then(Value::as_str) {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| {
                    AppError::invalid("scheduledAt", "Use a time like 2026-12-01T09:00:00Z.")
                })?
                .naive_utc(),
        ),
    };
    let input = crate::domain::sends::NewSend {
        name: text_field(&body, "name"),
        template_id: text_field(&body, "templateId"),
        mailbox_id: text_field(&body, "mailboxId"),
        audience: audience_of(&body)?,
        per_minute,
        scheduled_at,
    };
    let (row, tally) = ops::create_send(&scope, input).await?;
    let mut report = ops::send_report(&scope, row.id.clone()).await?;
    report["audience"] = tally.to_json();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/sends/{}", row.id)))
        .json(report))
}

/// Lists the organization's bulk sends with their figures (`send:read`), one page, no cursor.
#[utoipa::path(
    get, path = "/api/sends", tag = "Bulk sends",
    responses((status = 200, description = "The sends.", body = ListEnvelope<SendReport>))
)]
pub async fn list_sends(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = ops::sends(&scope).await?;
    let mut data = Vec::with_capacity(rows.len());
    for r in rows {
        data.push(ops::send_report(&scope, r.id).await?);
    }
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// Shows a bulk send's report (`send:read`), with its figures hour by hour (`overTime`, UTC).
#[utoipa::path(
    get, path = "/api/sends/{id}", tag = "Bulk sends",
    params(("id" = String, Path, description = "The send's id.")),
    responses((status = 200, description = "The report.", body = SendDetail))
)]
pub async fn show_send(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let mut report = ops::send_report(&scope, id.clone()).await?;
    report["overTime"] = Value::Array(ops::send_over_time(&scope, id).await?);
    Ok(HttpResponse::Ok().json(report))
}

/// Shows the organization's mail settings (`message:read`).
#[utoipa::path(
    get, path = "/api/mail/settings", tag = "E-mail",
    responses((status = 200, description = "The settings.", body = MailSettings))
)]
pub async fn settings(scope: ApiScope) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(MailSettings {
        tracking: ops::tracking(&scope).await?,
    }))
}

/// Changes the organization's mail settings (`message:admin`): with `tracking` false, opens
/// and clicks are no longer recorded, and new bulk messages carry neither the pixel nor
/// tracked links.
#[utoipa::path(
    put, path = "/api/mail/settings", tag = "E-mail", request_body = MailSettings,
    responses((status = 200, description = "The settings now.", body = MailSettings))
)]
pub async fn update_settings(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let body = object(body)?;
    if let Some(k) = body.keys().find(|k| k.as_str() != "tracking") {
        return Err(AppError::invalid(k, "Unknown field."));
    }
    let on = body
        .get("tracking")
        .and_then(Value::as_bool)
        .ok_or_else(|| AppError::invalid("tracking", "Use true or false."))?;
    ops::set_tracking(&scope, on).await?;
    settings(scope).await
}

/// Lists the addresses that bounced (`message:read`), newest first, at most 200; nothing is
/// sent to them.
#[utoipa::path(
    get, path = "/api/mail/bounces", tag = "E-mail",
    responses((status = 200, description = "The bounced addresses.", body = ListEnvelope<Bounce>))
)]
pub async fn bounces(scope: ApiScope) -> AppResult<HttpResponse> {
    let data: Vec<Bounce> = ops::bounces(&scope)
        .await?
        .into_iter()
        .map(|(address, reason, at)| Bounce {
            address,
            reason,
            bounced_at: at.and_utc().to_rfc3339(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// Forgets a bounce (`message:write`), so the address is written to again.
#[utoipa::path(
    delete, path = "/api/mail/bounces/{address}", tag = "E-mail",
    params(("address" = String, Path, description = "The address that bounced.")),
    responses((status = 204, description = "Forgotten."))
)]
pub async fn clear_bounce(scope: ApiScope, address: web::Path<String>) -> AppResult<HttpResponse> {
    ops::clear_bounce(&scope, address.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lists a bulk send's recipients with their state (`send:read`), in id order.
#[utoipa::path(
    get, path = "/api/sends/{id}/recipients", tag = "Bulk sends",
    params(
        ("id" = String, Path, description = "The send's id."),
        ("filter[state]" = Option<String>, Query, description = "One of the report's figures: `delivered`, `failed`, `excluded`, `opened`, `clicked`, `bounced`, `unsubscribed`, `uncertain`, `waiting` or `cancelled`."),
        ("limit" = Option<i64>, Query, description = "1–500 (100 unless said)."),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`.")
    ),
    responses((status = 200, description = "One page of recipients.", body = ListEnvelope<SendRecipient>))
)]
pub async fn send_recipients(
    scope: ApiScope,
    id: web::Path<String>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
    };
    let limit = match get("limit") {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| AppError::invalid("limit", "Use a limit from 1 to 500."))?,
    };
    let data = ops::send_recipients(
        &scope,
        id.into_inner(),
        get("filter[state]"),
        get("cursor"),
        limit + 1,
    )
    .await?;
    let mut data = data;
    let next_cursor = if data.len() as i64 > limit {
        data.truncate(limit as usize);
        data.last()
            .and_then(|r| r["id"].as_str())
            .map(str::to_string)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ListEnvelope { data, next_cursor }))
}

/// Pauses a scheduled or running bulk send (`send:create`).
#[utoipa::path(
    post, path = "/api/sends/{id}/pause", tag = "Bulk sends",
    params(("id" = String, Path, description = "The send's id.")),
    responses((status = 200, description = "Paused.", body = SendReport))
)]
pub async fn pause_send(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let r = ops::act_send(&scope, id.into_inner(), "pause").await?;
    Ok(HttpResponse::Ok().json(ops::send_report(&scope, r.id).await?))
}

/// Resumes a paused bulk send (`send:create`).
#[utoipa::path(
    post, path = "/api/sends/{id}/resume", tag = "Bulk sends",
    params(("id" = String, Path, description = "The send's id.")),
    responses((status = 200, description = "Running again.", body = SendReport))
)]
pub async fn resume_send(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let r = ops::act_send(&scope, id.into_inner(), "resume").await?;
    Ok(HttpResponse::Ok().json(ops::send_report(&scope, r.id).await?))
}

/// Cancels a bulk send (`send:create`): recipients still waiting are not written to.
#[utoipa::path(
    post, path = "/api/sends/{id}/cancel", tag = "Bulk sends",
    params(("id" = String, Path, description = "The send's id.")),
    responses((status = 200, description = "Cancelled.", body = SendReport))
)]
pub async fn cancel_send(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let r = ops::act_send(&scope, id.into_inner(), "cancel").await?;
    Ok(HttpResponse::Ok().json(ops::send_report(&scope, r.id).await?))
}
