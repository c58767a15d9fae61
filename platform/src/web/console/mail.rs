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
        "received" => "Received",
        _ => "",
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

fn row_of(m: &MessageView) -> Row {
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
        when: r.occurred_at.format("%Y-%m-%d %H:%M").to_string(),
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
    tabs: Vec<Tab>,
    rows: Vec<Row>,
    next: Option<String>,
    view: String,
    empty: &'static str,
    can_write: bool,
    mailboxes: usize,
}

/// `GET /mail?view=all|unmatched|outbox`
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
    let key = get("view").unwrap_or_else(|| "all".into());
    let (view, empty) = match key.as_str() {
        "unmatched" => (
            View::Unmatched,
            "No message waits for a client: every sender is known.",
        ),
        "outbox" => (
            View::Outbox,
            "Nothing waiting or failed: every message has left.",
        ),
        _ => (
            View::All,
            "No e-mail yet. Connect a mailbox, or write to a client from their profile.",
        ),
    };
    let (rows, next) = ops::list(&scope, view, get("cursor"), 50).await?;
    let tabs = [
        ("/mail", "All", "all"),
        ("/mail?view=unmatched", "Unmatched", "unmatched"),
        ("/mail?view=outbox", "Outbox", "outbox"),
    ]
    .into_iter()
    .map(|(href, label, k)| Tab {
        href,
        label,
        active: k == key || (k == "all" && !["unmatched", "outbox"].contains(&key.as_str())),
    })
    .collect();
    let page = ListPage {
        tabs,
        rows: rows.iter().map(row_of).collect(),
        next,
        view: key,
        empty,
        can_write: scope.can("message", "write"),
        mailboxes: ops::mailboxes(&scope).await?.len(),
    };
    render(&req, &actor, "E-mail", &page).await
}

#[derive(Template)]
#[template(path = "partials/mail/message.html")]
struct MessagePage {
    m: Row,
    text: String,
    to: String,
    cc: String,
    from: String,
    thread: Vec<Row>,
    can_write: bool,
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
    let page = MessagePage {
        text: r.body_text.clone(),
        to: r.to().join(", "),
        cc: r.cc().join(", "),
        from: if r.from_name.is_empty() {
            r.from_address.clone()
        } else {
            format!("{} <{}>", r.from_name, r.from_address)
        },
        thread: thread.iter().map(row_of).collect(),
        can_write: scope.can("message", "write"),
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
        m: row_of(&m),
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

fn fields(body: &[u8]) -> AppResult<Map<String, Value>> {
    Ok(form_pairs(body)?
        .into_iter()
        .filter(|(k, _)| k != "csrf_token")
        .map(|(k, v)| (k, Value::String(v)))
        .collect())
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

/// `POST /mail/messages/{id}/file`: makes the unknown sender a client and files it there.
pub async fn file(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let m = ops::file_on(&scope, id.into_inner(), None).await?;
    let who = m
        .clients
        .first()
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    redirect_with_flash(
        &req,
        &format!("/mail/messages/{}", m.row.id),
        &format!("{who} is now a client, with this message on their timeline."),
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
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
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
}

#[allow(clippy::too_many_arguments)]
async fn compose_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    client_id: String,
    form: Option<&Map<String, Value>>,
    errors: Vec<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    scope.require("message", "write")?;
    let client = crate::ops::clients::get(&scope, client_id.clone()).await?;
    let prefs = {
        let (org, id) = (scope.org_id.clone(), client_id.clone());
        scope
            .read(move |c| crate::domain::preferences::load(c, &org, &id))
            .await?
    };
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
    let page = ComposePage {
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
        subject: get("subject"),
        text: get("text"),
        errors,
        objection: prefs.objection("email").unwrap_or_default(),
        client_id,
    };
    render_with_status(req, actor, "Write e-mail", &page, status).await
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
    match sent {
        Ok(_) => redirect_with_flash(
            &req,
            &format!("/clients/{id}"),
            "Your e-mail is on its way; it shows on the timeline once sent.",
        ),
        Err(e) => {
            let errors = messages_of(e)?;
            compose_page(&req, &actor, &state, id, Some(&f), errors).await
        }
    }
}
