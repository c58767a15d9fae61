//! The communication center's e-mail in the console: the message list (all, unmatched,
//! outbox), a message with its thread and a reply form, the mailboxes page (connect, test,
//! sync, remove) and writing to a client from the profile. Everything goes through
//! `ops::mail`, as the API does.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Map, Value};

use crate::auth::ConsoleActor;
use crate::domain::mail::{MailboxInput, MailboxRow, View};
use crate::error::{AppError, AppResult};
use crate::ops::mail::{self as ops, MessageView};
use crate::state::AppState;
use crate::web::console::{form_pairs, redirect_with_flash, render, render_with_status};

fn status_label(s: &str) -> &'static str {
    match s {
        "queued" => "Waiting to send",
        "sending" => "Sending",
        "sent" => "Sent",
        "failed" => "Failed",
        "uncertain" => "Maybe not sent",
        "refused" => "Refused",
        "bounced" => "Bounced",
        "received" => "Received",
        _ => "",
    }
}

/// A bulk send's status in words.
fn send_label(s: &str) -> &'static str {
    match s {
        "draft" => "Draft",
        "scheduled" => "Scheduled",
        "running" => "Sending",
        "paused" => "Paused",
        "done" | "finished" | "completed" => "Finished",
        "cancelled" | "canceled" => "Cancelled",
        _ => "In progress",
    }
}

/// A recipient's state in words.
fn recipient_label(s: &str) -> &'static str {
    match s {
        "queued" | "pending" | "waiting" | "handed" => "Waiting",
        "delivered" => "Delivered",
        "cancelled" => "Cancelled",
        "skipped" | "excluded" => "Not written to",
        "unsubscribed" => "Unsubscribed",
        "opened" => "Opened",
        "clicked" => "Clicked",
        other => match status_label(other) {
            "" => "Unknown",
            l => l,
        },
    }
}

pub struct Row {
    pub id: String,
    pub inbound: bool,
    pub party: String,
    pub subject: String,
    pub snippet: String,
    pub clients: Vec<(String, String)>,
    pub when: String,
    pub status: String,
    pub status_label: &'static str,
    pub error: String,
}

fn row_of(m: &MessageView, local: &crate::locale::Local) -> Row {
    let r = &m.row;
    let inbound = r.direction == "inbound";
    let party = if inbound {
        if r.from_name.is_empty() {
            r.from_address.clone()
        } else {
            format!("{} <{}>", r.from_name, r.from_address)
        }
    } else {
        format!("To {}", r.to().join(", "))
    };
    Row {
        id: r.id.clone(),
        inbound,
        party,
        subject: r.subject.clone(),
        snippet: r
            .body_text
            .split_whitespace()
            .take(24)
            .collect::<Vec<_>>()
            .join(" "),
        clients: m.clients.clone(),
        when: local.datetime(r.occurred_at),
        status: r.status.clone(),
        status_label: status_label(&r.status),
        error: r.error.clone().unwrap_or_default(),
    }
}

pub struct Tab {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "partials/mail/list.html")]
struct ListPage {
    days: i64,
    tabs: Vec<Tab>,
    rows: Vec<Row>,
    next: Option<String>,
    view: String,
    empty: &'static str,
    can_write: bool,
    can_see_sends: bool,
    mailboxes: usize,
}

/// `GET /mail?view=conversations|mine|unanswered|unmatched|outbox|all[&days=N]`
pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = crate::web::query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let key = get("view").unwrap_or_else(|| "conversations".into());
    let days = get("days")
        .and_then(|d| d.parse::<i64>().ok())
        .filter(|d| (0..=365).contains(d))
        .unwrap_or(2);
    let (view, empty) = match key.as_str() {
        "unmatched" => (
            View::Unmatched,
            "No message waits for a client: every sender is known.",
        ),
        "outbox" => (
            View::Outbox,
            "Nothing waiting, failed or bounced: every message has left.",
        ),
        "mine" => (
            View::Mine,
            "No conversation of yours yet: write to a client from their profile.",
        ),
        "unanswered" => (View::Unanswered(days), "Nothing waits for an answer."),
        "all" => (View::All, "No e-mail yet."),
        _ => (
            View::Conversations,
            "No e-mail yet. Connect a mailbox, or write to a client from their profile.",
        ),
    };
    let key = if matches!(view, View::Conversations) {
        "conversations".to_string()
    } else {
        key
    };
    let (rows, next) = ops::list(&scope, view, get("cursor"), 50).await?;
    let everyone = if scope.can("client", "oversee") {
        "Team"
    } else {
        "Conversations"
    };
    let tabs = [
        ("/mail", everyone, "conversations"),
        ("/mail?view=mine", "Mine", "mine"),
        ("/mail?view=unanswered", "Unanswered", "unanswered"),
        ("/mail?view=unmatched", "Unmatched", "unmatched"),
        ("/mail?view=outbox", "Outbox", "outbox"),
    ]
    .into_iter()
    .map(|(href, label, k)| Tab {
        href,
        label,
        active: k == key,
    })
    .collect();
    let page = ListPage {
        days,
        tabs,
        rows: rows.iter().map(|m| row_of(m, &actor.local)).collect(),
        next,
        view: key,
        empty,
        can_write: scope.can("message", "write"),
        can_see_sends: scope.can("send", "read"),
        mailboxes: ops::mailboxes(&scope).await?.len(),
    };
    render(&req, &actor, "E-mail", &page).await
}

#[derive(Template)]
#[template(path = "partials/mail/message.html")]
struct MessagePage {
    m: Row,
    text: String,
    /// The HTML part made safe (empty when the message has none).
    html: String,
    /// Its files: (id, name, size in KB).
    files: Vec<(String, String, i64)>,
    images_hidden: bool,
    to: String,
    cc: String,
    from: String,
    thread: Vec<Row>,
    can_write: bool,
    can_send: bool,
    can_create_client: bool,
    mailboxes: Vec<(String, String)>,
    reply_subject: String,
    reply_to: String,
    form_text: String,
    errors: Vec<String>,
}

async fn message_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    id: String,
    form_text: String,
    errors: Vec<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let (m, thread) = ops::get(&scope, id).await?;
    let r = &m.row;
    let subject = if r.subject.to_lowercase().starts_with("re:") {
        r.subject.clone()
    } else {
        format!("Re: {}", r.subject)
    };
    let reply_to = if r.direction == "inbound" {
        r.from_address.clone()
    } else {
        r.to().join(", ")
    };
    let status = if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let (html, images_hidden) = r
        .body_html
        .as_deref()
        .map(crate::domain::mail::safe_html)
        .unwrap_or_default();
    let page = MessagePage {
        files: m
            .files
            .iter()
            .map(|(id, name, _, size)| (id.clone(), name.clone(), (size + 1023) / 1024))
            .collect(),
        html,
        images_hidden,
        text: r.body_text.clone(),
        to: r.to().join(", "),
        cc: r.cc().join(", "),
        from: if r.from_name.is_empty() {
            r.from_address.clone()
        } else {
            format!("{} <{}>", r.from_name, r.from_address)
        },
        thread: thread.iter().map(|m| row_of(m, &actor.local)).collect(),
        can_write: scope.can("message", "write"),
        can_send: scope.can("message", "send"),
        can_create_client: scope.can("client", "write") && scope.can("message", "write"),
        mailboxes: ops::mailboxes(&scope)
            .await?
            .into_iter()
            .map(|b| (b.id, format!("{} <{}>", b.name, b.address)))
            .collect(),
        reply_subject: subject,
        reply_to,
        form_text,
        errors,
        m: row_of(&m, &actor.local),
    };
    render_with_status(req, actor, "E-mail", &page, status).await
}

/// `GET /mail/messages/{id}`
pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    message_page(&req, &actor, &state, id.into_inner(), String::new(), vec![]).await
}

/// The form's fields; a repeated one (the files' check boxes) joined with commas.
fn fields(body: &[u8]) -> AppResult<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in form_pairs(body)? {
        if k == "csrf_token" {
            continue;
        }
        match out.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                out.insert(k, Value::String(v));
            }
        }
    }
    Ok(out)
}

fn messages_of(e: AppError) -> Result<Vec<String>, AppError> {
    match e {
        AppError::Validation(_, errors) => Ok(errors.into_iter().map(|e| e.message).collect()),
        AppError::Conflict(m) => Ok(vec![m]),
        other => Err(other),
    }
}

/// `POST /mail/messages/{id}/reply`: answers in the thread; a refused reply comes back
/// with its text.
pub async fn reply(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    let mut f = fields(&body)?;
    f.insert("replyTo".into(), Value::String(id.clone()));
    let text = f
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let sent = match ops::draft_from(&f) {
        Ok(d) => ops::send(&scope, d).await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(m) => redirect_with_flash(
            &req,
            &format!("/mail/messages/{}", m.row.id),
            "Your reply is on its way.",
        ),
        Err(e) => message_page(&req, &actor, &state, id, text, messages_of(e)?).await,
    }
}

/// `POST /mail/messages/{id}/resend`
pub async fn resend(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let m = ops::resend(&scope, id.into_inner()).await?;
    redirect_with_flash(
        &req,
        &format!("/mail/messages/{}", m.row.id),
        "It will be sent again within seconds.",
    )
}

/// `POST /mail/messages/{id}/file`: files it on the client picked, or makes the unknown
/// sender a client and files it there.
pub async fn file(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    // The picker's form names a client; the "create" button's form names none.
    let client = match form_pairs(&body)?
        .into_iter()
        .find(|(k, _)| k == "clientId")
    {
        Some((_, v)) if v.trim().is_empty() => {
            return Err(AppError::invalid(
                "clientId",
                "Pick the client: type a name and choose it from the list.",
            ))
        }
        Some((_, v)) => Some(v.trim().to_string()),
        None => None,
    };
    let m = ops::file_on(&scope, id.into_inner(), client).await?;
    let who = m
        .clients
        .first()
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    redirect_with_flash(
        &req,
        &format!("/mail/messages/{}", m.row.id),
        &format!("The message is on {who}'s timeline."),
    )
}

pub struct MailboxLine {
    pub id: String,
    pub name: String,
    pub address: String,
    pub shared: bool,
    pub servers: String,
    pub last_sync: String,
    pub last_error: String,
    pub manageable: bool,
}

#[derive(Default)]
pub struct MailboxForm {
    pub name: String,
    pub address: String,
    pub username: String,
    pub imap_host: String,
    pub imap_port: String,
    pub imap_security: String,
    pub smtp_host: String,
    pub smtp_port: String,
    pub smtp_security: String,
    pub shared: bool,
}

#[derive(Template)]
#[template(path = "partials/mail/mailboxes.html")]
struct MailboxesPage {
    boxes: Vec<MailboxLine>,
    form: MailboxForm,
    errors: Vec<(String, String)>,
    can_write: bool,
    can_share: bool,
    report: Option<(bool, Vec<String>)>,
    tracking: bool,
    /// Address, reason, when.
    bounces: Vec<(String, String, String)>,
}

fn line(scope: &crate::ops::Scope, b: &MailboxRow) -> MailboxLine {
    MailboxLine {
        id: b.id.clone(),
        name: b.name.clone(),
        address: b.address.clone(),
        shared: b.user_id.is_none(),
        servers: format!(
            "IMAP {}:{} ({}), SMTP {}:{} ({})",
            b.imap_host, b.imap_port, b.imap_security, b.smtp_host, b.smtp_port, b.smtp_security
        ),
        last_sync: b
            .last_sync_at
            .map(|t| scope.local.datetime(t))
            .unwrap_or_default(),
        last_error: b.last_error.clone().unwrap_or_default(),
        manageable: match &b.user_id {
            None => scope.can("message", "admin"),
            Some(u) => Some(u) == scope.user_id.as_ref(),
        },
    }
}

async fn mailboxes_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    form: MailboxForm,
    errors: Vec<(String, String)>,
    report: Option<(bool, Vec<String>)>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let boxes = ops::mailboxes(&scope)
        .await?
        .iter()
        .map(|b| line(&scope, b))
        .collect();
    let status = if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = MailboxesPage {
        boxes,
        form,
        errors,
        can_write: scope.can("message", "write"),
        can_share: scope.can("message", "admin"),
        report,
        tracking: ops::tracking(&scope).await?,
        bounces: ops::bounces(&scope)
            .await?
            .into_iter()
            .map(|(a, r, t)| (a, r, actor.local.datetime(t)))
            .collect(),
    };
    render_with_status(req, actor, "Mailboxes", &page, status).await
}

/// `GET /mail/mailboxes`
pub async fn mailboxes(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let form = MailboxForm {
        imap_port: "993".into(),
        imap_security: "tls".into(),
        smtp_port: "587".into(),
        smtp_security: "starttls".into(),
        ..Default::default()
    };
    mailboxes_page(&req, &actor, &state, form, vec![], None).await
}

/// `POST /mail/tracking` (`on=1` or `on=0`): admins switch open and click tracking.
pub async fn set_tracking(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let on = pairs.iter().any(|(k, v)| k == "on" && v == "1");
    ops::set_tracking(&scope, on).await?;
    redirect_with_flash(
        &req,
        "/mail/mailboxes",
        if on {
            "Opens and clicks of bulk sends are tracked."
        } else {
            "Opens and clicks are no longer tracked; new messages carry no tracking."
        },
    )
}

/// `POST /mail/bounces/clear` (`address=…`): the address is written to again.
pub async fn clear_bounce(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let address = pairs
        .into_iter()
        .find(|(k, _)| k == "address")
        .map(|(_, v)| v)
        .unwrap_or_default();
    ops::clear_bounce(&scope, address.clone()).await?;
    redirect_with_flash(
        &req,
        "/mail/mailboxes",
        &format!("{address} will be written to again."),
    )
}

/// `POST /mail/mailboxes`: connects a mailbox; a refused form keeps what was typed
/// (except the password).
pub async fn connect(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let form = MailboxForm {
        name: get("name"),
        address: get("address"),
        username: get("username"),
        imap_host: get("imapHost"),
        imap_port: get("imapPort"),
        imap_security: get("imapSecurity"),
        smtp_host: get("smtpHost"),
        smtp_port: get("smtpPort"),
        smtp_security: get("smtpSecurity"),
        shared: get("shared") == "on",
    };
    let input = MailboxInput {
        name: Some(form.name.clone()),
        address: Some(form.address.clone()),
        username: Some(form.username.clone()),
        password: Some(get("password")),
        imap_host: Some(form.imap_host.clone()),
        imap_port: Some(form.imap_port.clone()),
        imap_security: Some(form.imap_security.clone()),
        smtp_host: Some(form.smtp_host.clone()),
        smtp_port: Some(form.smtp_port.clone()),
        smtp_security: Some(form.smtp_security.clone()),
        sent_folder: None,
        sync_enabled: Some(true),
    };
    match ops::create_mailbox(&scope, form.shared, input).await {
        Ok(m) => redirect_with_flash(
            &req,
            "/mail/mailboxes",
            &format!("{} is connected. Use “Test” to check it.", m.address),
        ),
        Err(AppError::Validation(_, errors)) => {
            let errors = errors
                .into_iter()
                .map(|e| (label(&e.field), e.message))
                .collect();
            mailboxes_page(&req, &actor, &state, form, errors, None).await
        }
        Err(e) => Err(e),
    }
}

fn label(field: &str) -> String {
    match field {
        "name" => "Name",
        "address" => "E-mail address",
        "username" => "User name",
        "password" => "Password",
        "imap.host" => "IMAP server",
        "imap.port" => "IMAP port",
        "imap.security" => "IMAP security",
        "smtp.host" => "SMTP server",
        "smtp.port" => "SMTP port",
        "smtp.security" => "SMTP security",
        _ => "Mailbox",
    }
    .into()
}

/// `POST /mail/mailboxes/{id}/test`: the servers' own answers on the page.
pub async fn test(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let r = ops::test_mailbox(&scope, id.into_inner()).await?;
    let lines = vec![
        match &r.imap {
            None => "IMAP: signed in and opened the inbox.".to_string(),
            Some(e) => format!("IMAP: {e}"),
        },
        match &r.smtp {
            None => "SMTP: signed in; ready to send.".to_string(),
            Some(e) => format!("SMTP: {e}"),
        },
    ];
    mailboxes_page(
        &req,
        &actor,
        &state,
        MailboxForm::default(),
        vec![],
        Some((r.imap.is_none() && r.smtp.is_none(), lines)),
    )
    .await
}

/// `POST /mail/mailboxes/{id}/sync`
pub async fn sync(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let r = ops::sync_mailbox(&scope, id.into_inner()).await?;
    let mut lines = vec![format!(
        "{} new message(s): {} filed on client timelines, {} waiting in Unmatched.",
        r.fetched, r.filed, r.unmatched
    )];
    lines.extend(r.error.clone());
    mailboxes_page(
        &req,
        &actor,
        &state,
        MailboxForm::default(),
        vec![],
        Some((r.error.is_none(), lines)),
    )
    .await
}

/// `POST /mail/mailboxes/{id}/delete`
pub async fn remove(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    ops::delete_mailbox(&scope, id.into_inner()).await?;
    redirect_with_flash(
        &req,
        "/mail/mailboxes",
        "The mailbox is disconnected; the messages already filed stay.",
    )
}

#[derive(Template)]
#[template(path = "partials/mail/compose.html")]
struct ComposePage {
    client_id: String,
    client_name: String,
    mailboxes: Vec<(String, String)>,
    mailbox_id: String,
    to: String,
    cc: String,
    bcc: String,
    subject: String,
    text: String,
    errors: Vec<String>,
    objection: String,
    templates: Vec<(String, String)>,
    template_id: String,
    /// The deal it is written from: (id, name), empty when none.
    deal: (String, String),
    /// The client's files that may go along: (id, name, size in KB, checked).
    files: Vec<(String, String, i64, bool)>,
}

#[allow(clippy::too_many_arguments)]
/// The client a message is written to and its contact preferences, which the page shows.
async fn client_and_prefs(
    scope: &crate::ops::Scope,
    client_id: &str,
) -> AppResult<(
    crate::ops::clients::ClientView,
    crate::domain::preferences::Preferences,
)> {
    let client = crate::ops::clients::get(scope, client_id.to_string()).await?;
    let (org, id) = (scope.org_id.clone(), client_id.to_string());
    let prefs = scope
        .read(move |c| crate::domain::preferences::load(c, &org, &id))
        .await?;
    Ok((client, prefs))
}

async fn compose_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    client_id: String,
    form: Option<&Map<String, Value>>,
    errors: Vec<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    scope.require("message", "send")?;
    let (client, prefs) = client_and_prefs(&scope, &client_id).await?;
    let get = |k: &str| {
        form.and_then(|f| f.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    // A template chosen in the form fills subject and message, rendered for this client.
    let pairs = crate::web::query_pairs(req)?;
    let template_id = pairs
        .iter()
        .find(|(k, _)| k == "template")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let deal_id = match form {
        Some(_) => get("opportunityId"),
        None => pairs
            .iter()
            .find(|(k, _)| k == "deal")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
    };
    // A deal out of sight or of another client is not found (no name leaks).
    let deal = if deal_id.is_empty() {
        (String::new(), String::new())
    } else {
        let d = crate::ops::deals::get(&scope, deal_id.clone()).await?;
        if d.row.client_id != client_id {
            return Err(AppError::NotFound);
        }
        (d.row.id, d.row.name)
    };
    let chosen: Vec<String> = get("attachmentIds")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let mut errors = errors;
    let (mut subject, mut text) = (get("subject"), get("text"));
    if form.is_none() && !template_id.is_empty() {
        let (t, _) = ops::template(&scope, template_id.clone()).await?;
        let d = Some(deal.0.clone()).filter(|d| !d.is_empty());
        match ops::preview(&scope, t.subject, t.body, client_id.clone(), d).await {
            Ok((s, b)) => (subject, text) = (s, b),
            Err(AppError::Validation(_, e)) => errors.extend(e.into_iter().map(|e| e.message)),
            Err(e) => return Err(e),
        }
    }
    let status = if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = ComposePage {
        templates: ops::templates(&scope)
            .await?
            .into_iter()
            .filter(|t| t.kind == "email")
            .map(|t| (t.id, t.name))
            .collect(),
        template_id,
        client_name: client.row.display_name.clone(),
        mailboxes: ops::mailboxes(&scope)
            .await?
            .into_iter()
            .map(|b| (b.id, format!("{} <{}>", b.name, b.address)))
            .collect(),
        mailbox_id: get("mailboxId"),
        to: if form.is_some() {
            get("to")
        } else {
            client.row.email.clone().unwrap_or_default()
        },
        cc: get("cc"),
        bcc: get("bcc"),
        subject,
        text,
        errors,
        objection: prefs.objection("email").unwrap_or_default(),
        files: crate::ops::attachments::list(
            &scope,
            crate::domain::attachments::Parent::Client(client_id.clone()),
        )
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !f.sensitive || scope.can("sensitive_field", "read"))
        .map(|f| {
            let checked = chosen.contains(&f.id);
            (f.id, f.file_name, (f.size_bytes + 1023) / 1024, checked)
        })
        .collect(),
        client_id,
        deal,
    };
    render_with_status(req, actor, "Write e-mail", &page, status).await
}

/// `GET /mail/messages/{id}/files/{file}`
pub async fn message_file(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (id, file) = path.into_inner();
    let (name, ctype, bytes) = ops::message_file(&scope, id, file).await?;
    Ok(crate::web::upload::download_response(&name, &ctype, bytes))
}

/// `GET /clients/{id}/email`
pub async fn compose(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    compose_page(&req, &actor, &state, id.into_inner(), None, vec![]).await
}

/// `POST /clients/{id}/email`
pub async fn send(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    let mut f = fields(&body)?;
    f.insert("clientId".into(), Value::String(id.clone()));
    let sent = match ops::draft_from(&f) {
        Ok(d) => ops::send(&scope, d).await,
        Err(e) => Err(e),
    };
    let back = match f.get("opportunityId").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => format!("/opportunities/{d}"),
        _ => format!("/clients/{id}"),
    };
    match sent {
        Ok(_) => redirect_with_flash(
            &req,
            &back,
            "Your e-mail is on its way; it shows on the timeline once sent.",
        ),
        Err(e) => {
            let errors = messages_of(e)?;
            compose_page(&req, &actor, &state, id, Some(&f), errors).await
        }
    }
}

// ---- Text messages (written here, sent from the rep's phone) --------------------------------

#[derive(Template)]
#[template(path = "partials/mail/text.html")]
struct TextPage {
    client_id: String,
    client_name: String,
    phone: String,
    objection: String,
    templates: Vec<(String, String)>,
    template_id: String,
    text: String,
    errors: Vec<String>,
    /// The rendered text with its length and segments, after "Preview".
    preview: Option<(String, usize, usize)>,
    /// After "Log it": the `sms:` link and the text as logged.
    logged: Option<(String, String)>,
}

#[allow(clippy::too_many_arguments)]
async fn text_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    client_id: String,
    form: Option<&Map<String, Value>>,
    errors: Vec<String>,
    preview: Option<(String, usize, usize)>,
    logged: Option<(String, String)>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    scope.require("message", "send")?;
    scope.require("interaction", "write")?;
    let (client, prefs) = client_and_prefs(&scope, &client_id).await?;
    let get = |k: &str| {
        form.and_then(|f| f.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let status = if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = TextPage {
        templates: ops::templates(&scope)
            .await?
            .into_iter()
            .filter(|t| t.kind == "sms")
            .map(|t| (t.id, t.name))
            .collect(),
        template_id: get("templateId"),
        text: if logged.is_some() {
            String::new()
        } else {
            get("text")
        },
        client_name: client.row.display_name.clone(),
        phone: client.row.phone.clone().unwrap_or_default(),
        objection: prefs.objection("sms").unwrap_or_default(),
        errors,
        preview,
        logged,
        client_id,
    };
    render_with_status(req, actor, "Text message", &page, status).await
}

/// `GET /clients/{id}/text`
pub async fn text_form(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    text_page(
        &req,
        &actor,
        &state,
        id.into_inner(),
        None,
        vec![],
        None,
        None,
    )
    .await
}

/// `POST /clients/{id}/text`: "Preview" renders it for this client; "Log it" records it on
/// the timeline and offers the link that opens the phone's messaging app with it.
pub async fn text_send(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    let f = fields(&body)?;
    let get = |k: &str| {
        f.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let template = Some(get("templateId")).filter(|t| !t.is_empty());
    if get("do") == "preview" {
        let source = match &template {
            Some(t) => ops::template(&scope, t.clone()).await.map(|(t, _)| t.body),
            None => Ok(get("text")),
        };
        let rendered = match source {
            Ok(src) => ops::preview(&scope, String::new(), src, id.clone(), None)
                .await
                .map(|(_, text)| text.trim().to_string()),
            Err(e) => Err(e),
        };
        return match rendered {
            Ok(text) => {
                let n = text.chars().count();
                let segments = crate::domain::templates::sms_segments(&text);
                text_page(
                    &req,
                    &actor,
                    &state,
                    id,
                    Some(&f),
                    vec![],
                    Some((text, n, segments)),
                    None,
                )
                .await
            }
            Err(e) => {
                let errors = messages_of(e)?;
                text_page(&req, &actor, &state, id, Some(&f), errors, None, None).await
            }
        };
    }
    let text = Some(get("text")).filter(|t| !t.is_empty());
    match ops::text(&scope, id.clone(), template, text).await {
        Ok(sent) => {
            text_page(
                &req,
                &actor,
                &state,
                id,
                Some(&f),
                vec![],
                None,
                Some((sent.uri, sent.text)),
            )
            .await
        }
        Err(e) => {
            let errors = messages_of(e)?;
            text_page(&req, &actor, &state, id, Some(&f), errors, None, None).await
        }
    }
}

// ---- Links in bulk e-mail (no sign-in: the signed tag is the authority) ------------------

use crate::domain::sends::escape;

fn plain_page(title: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
             content=\"width=device-width, initial-scale=1\"><title>{t}</title></head><body style=\"font-family:sans-serif;\
             max-width:32rem;margin:4rem auto;padding:0 1rem\"><h1>{t}</h1>{body}</body></html>",
            t = escape(title)
        ))
}

/// `GET /u/{rid}/{tag}`: asks before unsubscribing (mail scanners follow links; only the
/// POST below changes anything).
pub async fn unsubscribe_page(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (rid, tag) = path.into_inner();
    if !state.secret.verify("unsubscribe", &rid, &tag) {
        return Err(AppError::NotFound);
    }
    Ok(plain_page(
        "Unsubscribe",
        &format!(
            "<p>Stop receiving these e-mails?</p><form method=\"post\" action=\"/u/{}/{}\">\
             <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
             <button type=\"submit\">Unsubscribe</button></form>",
            escape(&rid),
            escape(&tag)
        ),
    ))
}

/// `POST /u/{rid}/{tag}`: the page's button and RFC 8058 one-click alike.
pub async fn unsubscribe(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (rid, tag) = path.into_inner();
    let key = state.secret.clone();
    let org = crate::db::run(&state.pool, move |c| {
        crate::domain::sends::unsubscribe(c, &key, &rid, &tag)
    })
    .await?;
    Ok(plain_page(
        "You are unsubscribed",
        &format!(
            "<p>{} will not send you these e-mails any more.</p>",
            escape(&org)
        ),
    ))
}

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21,
    0xf9, 4, 1, 0, 0, 0, 0, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, 0x3b,
];

/// `GET /t/o/{rid}/{tag}`: the open pixel.
pub async fn opened(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (rid, tag) = path.into_inner();
    let key = state.secret.clone();
    crate::db::run(&state.pool, move |c| {
        crate::domain::sends::opened(c, &key, &rid, &tag)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header(("Cache-Control", "no-store"))
        .body(PIXEL))
}

/// `GET /t/c/{rid}/{tag}?u=…`: records the click and goes on; a link whose tag does not
/// cover this exact address is a 404, never an open redirect.
pub async fn clicked(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (rid, tag) = path.into_inner();
    let pairs = crate::web::query_pairs(&req)?;
    let url = pairs
        .iter()
        .find(|(k, _)| k == "u")
        .map(|(_, v)| v.clone())
        .ok_or(AppError::NotFound)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(AppError::NotFound);
    }
    let key = state.secret.clone();
    let to = crate::db::run(&state.pool, move |c| {
        crate::domain::sends::clicked(c, &key, &rid, &tag, &url)
    })
    .await?;
    Ok(HttpResponse::Found()
        .insert_header((actix_web::http::header::LOCATION, to))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .finish())
}

// ---- Templates -----------------------------------------------------------------------

#[derive(Default)]
pub struct TemplateForm {
    pub id: String,
    /// `email` or `sms`.
    pub kind: String,
    pub name: String,
    pub subject: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "partials/mail/templates.html")]
struct TemplatesPage {
    templates: Vec<(String, String, i32, String)>,
    form: TemplateForm,
    versions: Vec<(i32, String, String)>,
    errors: Vec<(String, String)>,
    can_write: bool,
    /// (merge field, label, plugin) of the enabled plugins.
    plugin_fields: Vec<(String, String, String)>,
}

async fn templates_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    form: TemplateForm,
    errors: Vec<(String, String)>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let templates = ops::templates(&scope)
        .await?
        .into_iter()
        .map(|t| {
            (
                t.id,
                if t.kind == "sms" {
                    format!("{} (SMS)", t.name)
                } else {
                    t.name
                },
                t.version,
                actor.local.datetime(t.updated_at),
            )
        })
        .collect();
    let versions = if form.id.is_empty() {
        vec![]
    } else {
        ops::template(&scope, form.id.clone())
            .await?
            .1
            .into_iter()
            .map(|(v, s, _, at)| (v, s, actor.local.datetime(at)))
            .collect()
    };
    let status = if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = TemplatesPage {
        templates,
        form,
        versions,
        errors,
        can_write: scope.can("message", "write"),
        plugin_fields: ops::plugin_merge_fields(&scope).await?,
    };
    render_with_status(req, actor, "Templates", &page, status).await
}

/// `GET /mail/templates[?edit=ID]`
pub async fn templates(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let pairs = crate::web::query_pairs(&req)?;
    let form = match pairs.iter().find(|(k, _)| k == "edit") {
        Some((_, id)) => {
            let scope = crate::web::scope::of(&actor, &state).await?;
            let (t, _) = ops::template(&scope, id.clone()).await?;
            TemplateForm {
                id: t.id,
                kind: t.kind,
                name: t.name,
                subject: t.subject,
                body: t.body,
            }
        }
        None => TemplateForm {
            kind: "email".into(),
            body:
                "Hello {{ client.firstName | default(\"there\") }},\n\n\n\n{{ sender.signature }}"
                    .into(),
            ..Default::default()
        },
    };
    templates_page(&req, &actor, &state, form, vec![]).await
}

/// `POST /mail/templates`: creates, or edits the one named by `id`.
pub async fn save_template(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    let form = TemplateForm {
        id: get("id"),
        kind: Some(get("kind"))
            .filter(|k| k == "sms")
            .unwrap_or_else(|| "email".into()),
        name: get("name"),
        subject: get("subject"),
        body: get("body").replace("\r\n", "\n"),
    };
    let id = Some(form.id.clone()).filter(|i| !i.is_empty());
    match ops::save_template(
        &scope,
        id,
        Some(form.kind.clone()),
        form.name.clone(),
        form.subject.clone(),
        form.body.clone(),
    )
    .await
    {
        Ok(t) => redirect_with_flash(
            &req,
            &format!("/mail/templates?edit={}", t.id),
            &format!("Saved “{}” (version {}).", t.name, t.version),
        ),
        Err(AppError::Validation(_, errors)) => {
            let errors = errors
                .into_iter()
                .map(|e| (template_label(&e.field), e.message))
                .collect();
            templates_page(&req, &actor, &state, form, errors).await
        }
        Err(e) => Err(e),
    }
}

fn template_label(field: &str) -> String {
    match field {
        "name" => "Name",
        "subject" => "Subject",
        "body" => "Message",
        "clientId" => "Client",
        _ => "Template",
    }
    .into()
}

#[derive(Template)]
#[template(path = "partials/mail/preview.html")]
struct PreviewFragment {
    subject: String,
    text: String,
    errors: Vec<(String, String)>,
    /// A short message's length and segments.
    sms: Option<(usize, usize)>,
}

/// `POST /mail/templates/preview`: the form's text rendered against the chosen client.
pub async fn preview(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default()
    };
    let frag = if get("clientId").is_empty() {
        PreviewFragment {
            subject: String::new(),
            text: String::new(),
            errors: vec![("Client".into(), "Pick a client to preview with.".into())],
            sms: None,
        }
    } else {
        let sms = get("kind") == "sms";
        match ops::preview(
            &scope,
            if sms { String::new() } else { get("subject") },
            get("body").replace("\r\n", "\n"),
            get("clientId"),
            None,
        )
        .await
        {
            Ok((subject, text)) => PreviewFragment {
                sms: sms.then(|| {
                    (
                        text.chars().count(),
                        crate::domain::templates::sms_segments(&text),
                    )
                }),
                subject,
                text,
                errors: vec![],
            },
            Err(AppError::Validation(_, e)) => PreviewFragment {
                subject: String::new(),
                text: String::new(),
                errors: e
                    .into_iter()
                    .map(|e| (template_label(&e.field), e.message))
                    .collect(),
                sms: None,
            },
            Err(AppError::NotFound) => PreviewFragment {
                subject: String::new(),
                text: String::new(),
                errors: vec![(
                    "Client".into(),
                    "That client is not one you can see.".into(),
                )],
                sms: None,
            },
            Err(e) => return Err(e),
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(
            frag.render()
                .map_err(|e| AppError::Internal(e.to_string()))?,
        ))
}

// ---- Bulk sends --------------------------------------------------------------------------

pub struct SendLine {
    pub id: String,
    pub name: String,
    pub status: String,
    pub recipients: i64,
    pub delivered: i64,
    pub opened: i64,
    pub clicked: i64,
    pub created: String,
}

#[derive(Default)]
pub struct SendForm {
    pub name: String,
    pub template_id: String,
    pub mailbox_id: String,
    pub query: String,
    pub per_minute: String,
    /// `YYYY-MM-DDTHH:MM` in UTC, empty for now.
    pub scheduled_at: String,
}

#[derive(Template)]
#[template(path = "partials/mail/sends.html")]
struct SendsPage {
    sends: Vec<SendLine>,
    form: SendForm,
    templates: Vec<(String, String)>,
    mailboxes: Vec<(String, String)>,
    errors: Vec<String>,
    can_write: bool,
}

async fn sends_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    form: SendForm,
    errors: Vec<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let mut sends = Vec::new();
    for s in ops::sends(&scope).await? {
        let r = ops::send_report(&scope, s.id.clone()).await?;
        let n = |k: &str| r[k].as_i64().unwrap_or(0);
        sends.push(SendLine {
            id: s.id,
            name: s.name,
            status: s.status,
            recipients: n("recipients"),
            delivered: n("delivered"),
            opened: n("opened"),
            clicked: n("clicked"),
            created: actor.local.datetime(s.created_at),
        });
    }
    let status = if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = SendsPage {
        sends,
        form,
        templates: ops::templates(&scope)
            .await?
            .into_iter()
            .filter(|t| t.kind == "email")
            .map(|t| (t.id, t.name))
            .collect(),
        mailboxes: ops::mailboxes(&scope)
            .await?
            .into_iter()
            .map(|b| (b.id, format!("{} <{}>", b.name, b.address)))
            .collect(),
        errors,
        can_write: scope.can("send", "create"),
    };
    render_with_status(req, actor, "Bulk sends", &page, status).await
}

/// `GET /mail/sends`
pub async fn sends(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let pairs = crate::web::query_pairs(&req)?;
    // The client list's address as it was, less what orders or pages it.
    let query = pairs
        .iter()
        .find(|(k, _)| k == "audience")
        .map(|(_, v)| {
            let kept: Vec<(String, String)> =
                serde_urlencoded::from_str::<Vec<(String, String)>>(v)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, val)| {
                        !matches!(k.as_str(), "sort" | "cursor" | "limit" | "count" | "view")
                            && !val.is_empty()
                    })
                    .collect();
            // Brackets stay readable in the form: `filter[status]=customer`.
            serde_urlencoded::to_string(kept)
                .unwrap_or_default()
                .replace("%5B", "[")
                .replace("%5D", "]")
        })
        .unwrap_or_default();
    sends_page(
        &req,
        &actor,
        &state,
        SendForm {
            per_minute: "60".into(),
            query,
            ..Default::default()
        },
        vec![],
    )
    .await
}

fn send_form(body: &[u8]) -> AppResult<SendForm> {
    let pairs = form_pairs(body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    Ok(SendForm {
        name: get("name"),
        template_id: get("templateId"),
        mailbox_id: get("mailboxId"),
        query: get("query")
            .trim_start_matches("/clients")
            .trim_start_matches('?')
            .to_string(),
        per_minute: get("perMinute"),
        scheduled_at: get("scheduledAt"),
    })
}

#[derive(Template)]
#[template(path = "partials/mail/audience.html")]
struct AudienceFragment {
    tally: Option<crate::domain::sends::Tally>,
    error: String,
}

/// `POST /mail/sends/preview`: how many it reaches, and who is left out.
pub async fn preview_send(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let form = send_form(&body)?;
    let frag =
        match ops::preview_send(&scope, crate::domain::sends::Audience::Query(form.query)).await {
            Ok(t) => AudienceFragment {
                tally: Some(t),
                error: String::new(),
            },
            Err(AppError::Validation(_, e)) => AudienceFragment {
                tally: None,
                error: e
                    .into_iter()
                    .map(|e| e.message)
                    .collect::<Vec<_>>()
                    .join(" "),
            },
            Err(e) => return Err(e),
        };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(
            frag.render()
                .map_err(|e| AppError::Internal(e.to_string()))?,
        ))
}

/// `POST /mail/sends`
pub async fn create_send(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let form = send_form(&body)?;
    let per_minute = match form.per_minute.parse::<i32>() {
        Ok(n) => n,
        Err(_) => {
            return sends_page(
                &req,
                &actor,
                &state,
                form,
                vec!["Say how many messages a minute, e.g. 60.".into()],
            )
            .await
        }
    };
    let scheduled_at = if form.scheduled_at.is_empty() {
        None
    } else {
        // The person's wall clock, stored as UTC.
        match actor.local.parse_input(&form.scheduled_at) {
            Some(t) => Some(t),
            None => {
                return sends_page(
                    &req,
                    &actor,
                    &state,
                    form,
                    vec![
                        "Give the start as a date and time, or leave it empty to send now.".into(),
                    ],
                )
                .await
            }
        }
    };
    let input = crate::domain::sends::NewSend {
        name: form.name.clone(),
        template_id: form.template_id.clone(),
        mailbox_id: form.mailbox_id.clone(),
        audience: crate::domain::sends::Audience::Query(form.query.clone()),
        per_minute,
        scheduled_at,
    };
    match ops::create_send(&scope, input).await {
        Ok((row, tally)) => redirect_with_flash(
            &req,
            &format!("/mail/sends/{}", row.id),
            &if row.scheduled_at > crate::db::now() {
                format!(
                    "Scheduled for {} to {} client(s); {} left out.",
                    actor.local.datetime(row.scheduled_at),
                    tally.eligible,
                    tally.matched - tally.eligible
                )
            } else {
                format!(
                    "Sending to {} client(s); {} left out.",
                    tally.eligible,
                    tally.matched - tally.eligible
                )
            },
        ),
        Err(e) => {
            let errors = messages_of(e)?;
            sends_page(&req, &actor, &state, form, errors).await
        }
    }
}

#[derive(Template)]
#[template(path = "partials/mail/send.html")]
struct SendPage {
    id: String,
    name: String,
    status: String,
    /// The status in words.
    status_text: &'static str,
    scheduled: String,
    figures: Vec<(&'static str, &'static str, i64)>,
    recipients: Vec<(String, String, String, String, String)>,
    state: String,
    can_write: bool,
    can_export: bool,
    /// Hour (UTC), delivered, opened, clicked, bounced, and the bar widths in percent.
    hours: Vec<(String, i64, i64, i64, i64, i64, i64)>,
}

/// `GET /mail/sends/{id}[?state=…]`: the report, with the recipients behind each figure.
pub async fn send_report(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    let pairs = crate::web::query_pairs(&req)?;
    let filter = pairs
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty());
    let r = ops::send_report(&scope, id.clone()).await?;
    let n = |k: &str| r[k].as_i64().unwrap_or(0);
    let figures = vec![
        ("recipients", "Recipients", n("recipients")),
        ("waiting", "Waiting", n("waiting")),
        ("delivered", "Delivered", n("delivered")),
        ("failed", "Failed", n("failed")),
        ("opened", "Opened", n("opened")),
        ("clicked", "Clicked", n("clicked")),
        ("bounced", "Bounced", n("bounced")),
        ("unsubscribed", "Unsubscribed", n("unsubscribed")),
        ("excluded", "Left out", n("excluded")),
    ]
    .into_iter()
    .chain((n("uncertain") > 0).then_some(("uncertain", "Maybe not sent", n("uncertain"))))
    .collect::<Vec<_>>();
    let series = ops::send_over_time(&scope, id.clone()).await?;
    let top = series
        .iter()
        .map(|h| h["delivered"].as_i64().unwrap_or(0))
        .max()
        .unwrap_or(0)
        .max(1);
    let hours = series
        .iter()
        .rev()
        .take(48)
        .map(|h| {
            let v = |k: &str| h[k].as_i64().unwrap_or(0);
            (
                h["hour"].as_str().unwrap_or_default().to_string(),
                v("delivered"),
                v("opened"),
                v("clicked"),
                v("bounced"),
                v("delivered") * 100 / top,
                v("opened") * 100 / top,
            )
        })
        .collect();
    let state_filter = filter.clone().filter(|s| s != "recipients");
    let recipients = ops::send_recipients(&scope, id.clone(), state_filter, None, 100)
        .await?
        .into_iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (
                s("clientId"),
                s("client"),
                s("address"),
                recipient_label(&s("state")).to_string(),
                s("reason"),
            )
        })
        .collect();
    let status = r["status"].as_str().unwrap_or_default().to_string();
    let page = SendPage {
        id,
        name: r["name"].as_str().unwrap_or_default().to_string(),
        scheduled: if status == "scheduled" {
            r["scheduledAt"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| actor.local.datetime(t.naive_utc()))
                .unwrap_or_default()
        } else {
            String::new()
        },
        status_text: send_label(&status),
        status,
        figures,
        recipients,
        state: filter.unwrap_or_default(),
        can_write: scope.can("send", "create"),
        can_export: scope.can("client", "export"),
        hours,
    };
    render(&req, &actor, "Bulk send", &page).await
}

/// `GET /mail/sends/{id}/export?format=csv|xlsx[&state=…]`
pub async fn export_send(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    crate::web::exports::send_recipients(&actor, &state, &req, id.into_inner()).await
}

/// `POST /mail/sends/{id}/{action}` (pause, resume, cancel)
pub async fn act_send(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (id, action) = path.into_inner();
    let action: &'static str = match action.as_str() {
        "pause" => "pause",
        "resume" => "resume",
        "cancel" => "cancel",
        _ => return Err(AppError::NotFound),
    };
    let r = ops::act_send(&scope, id, action).await?;
    redirect_with_flash(
        &req,
        &format!("/mail/sends/{}", r.id),
        &format!("The send is {}.", r.status),
    )
}
