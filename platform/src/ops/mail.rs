//! The communication center's e-mail, once for the API, the console and the workers:
//! mailboxes (connect, test, sync), writing to clients (queued, sent by the worker), the
//! message list and threads, and filing what arrived from unknown senders.
//!
//! Rights: `message:read` reads the center, `message:write` writes e-mail (to clients the
//! user may see) and connects the user's own mailbox, `message:admin` connects the
//! organization's shared mailboxes.

use serde_json::{json, Map, Value};

use super::Scope;
use crate::db::{self, Pool};
use crate::domain::mail::{self, Draft, Filed, MailboxInput, MailboxRow, MessageRow, Reader, View};
use crate::error::{AppError, AppResult};
use crate::integrations::mail as transport;
use crate::integrations::secret::Key;

/// A message with the clients it is filed on.
#[derive(Debug, Clone)]
pub struct MessageView {
    pub row: MessageRow,
    pub clients: Vec<(String, String)>,
    /// Its files: (id, name, type, size).
    pub files: Vec<(String, String, String, i64)>,
}

impl MessageView {
    pub fn to_json(&self) -> Value {
        let mut v = self.row.to_json(&self.clients);
        v["attachments"] = self
            .files
            .iter()
            .map(|(id, name, ctype, size)| {
                json!({"id": id, "fileName": name, "contentType": ctype, "size": size,
                       "url": format!("/api/messages/{}/attachments/{id}", self.row.id)})
            })
            .collect();
        v
    }
}

/// One file of a message the caller may see: (name, type, bytes).
pub async fn message_file(
    scope: &Scope,
    message: String,
    file: String,
) -> AppResult<(String, String, Vec<u8>)> {
    scope.require("message", "read")?;
    let (org, user, oversee) = reader(scope);
    let blobs = scope.blobs.clone();
    scope
        .read(move |c| {
            let r = Reader {
                org: &org,
                user: user.as_deref(),
                oversee,
            };
            mail::file_of_message(c, &*blobs, &r, &message, &file)
        })
        .await
}

fn reader(scope: &Scope) -> (String, Option<String>, bool) {
    (
        scope.org_id.clone(),
        scope.user_id.clone(),
        scope.can("client", "oversee"),
    )
}

/// The mailboxes the caller may use: their own and the shared ones.
pub async fn mailboxes(scope: &Scope) -> AppResult<Vec<MailboxRow>> {
    scope.require("message", "read")?;
    let (org, user) = (scope.org_id.clone(), scope.user_id.clone());
    scope
        .read(move |c| mail::mailboxes_for(c, &org, user.as_deref()))
        .await
}

pub async fn mailbox(scope: &Scope, id: String) -> AppResult<MailboxRow> {
    scope.require("message", "read")?;
    let (org, user) = (scope.org_id.clone(), scope.user_id.clone());
    scope
        .read(move |c| mail::mailbox(c, &org, user.as_deref(), &id))
        .await
}

/// Whether the caller may change this mailbox: their own, or a shared one as admin.
fn may_manage(scope: &Scope, m: &MailboxRow) -> AppResult<()> {
    match &m.user_id {
        None => scope.require("message", "admin"),
        Some(u) if Some(u) == scope.user_id.as_ref() => scope.require("message", "write"),
        Some(_) => Err(AppError::NotFound),
    }
}

/// Connects a mailbox: the organization's shared one (`shared`) or the caller's own.
pub async fn create_mailbox(
    scope: &Scope,
    shared: bool,
    input: MailboxInput,
) -> AppResult<MailboxRow> {
    if shared || scope.user_id.is_none() {
        scope.require("message", "admin")?;
    } else {
        scope.require("message", "write")?;
    }
    let user = if shared { None } else { scope.user_id.clone() };
    let mut row = mail::new_mailbox(&scope.org_id, user.as_deref());
    mail::apply_input(&mut row, input, &scope.secret)?;
    let ctx = scope.audit.clone();
    let saved = row.clone();
    scope
        .read(move |c| mail::save_mailbox(c, &ctx, &row, true))
        .await?;
    Ok(saved)
}

pub async fn update_mailbox(
    scope: &Scope,
    id: String,
    input: MailboxInput,
) -> AppResult<MailboxRow> {
    let mut row = mailbox(scope, id).await?;
    may_manage(scope, &row)?;
    mail::apply_input(&mut row, input, &scope.secret)?;
    let ctx = scope.audit.clone();
    let saved = row.clone();
    scope
        .read(move |c| mail::save_mailbox(c, &ctx, &row, false))
        .await?;
    Ok(saved)
}

pub async fn delete_mailbox(scope: &Scope, id: String) -> AppResult<()> {
    let row = mailbox(scope, id).await?;
    may_manage(scope, &row)?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| mail::delete_mailbox(c, &ctx, &row))
        .await
}

/// What a connection test found, per server: `None` when it worked, else the server's
/// own error.
#[derive(Debug, Clone)]
pub struct TestReport {
    pub imap: Option<String>,
    pub smtp: Option<String>,
}

impl TestReport {
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.imap.is_none() && self.smtp.is_none(),
            "imap": {"ok": self.imap.is_none(), "error": self.imap},
            "smtp": {"ok": self.smtp.is_none(), "error": self.smtp},
        })
    }
}

pub async fn test_mailbox(scope: &Scope, id: String) -> AppResult<TestReport> {
    let row = mailbox(scope, id).await?;
    may_manage(scope, &row)?;
    let login = row.login(&scope.secret)?;
    let (imap, smtp) = (row.imap(), row.smtp());
    blocking(move || TestReport {
        imap: transport::test_imap(&imap, &login).err(),
        smtp: transport::test_smtp(&smtp, &login).err(),
    })
    .await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    actix_web::web::block(f)
        .await
        .map_err(|e| AppError::Internal(format!("blocking task: {e}")))
}

/// What one sync of a mailbox did.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    pub fetched: usize,
    pub filed: usize,
    pub unmatched: usize,
    pub known: usize,
    pub bounces: usize,
    pub error: Option<String>,
}

impl SyncReport {
    pub fn to_json(&self) -> Value {
        json!({"fetched": self.fetched, "filed": self.filed, "unmatched": self.unmatched,
               "alreadyKnown": self.known, "bounces": self.bounces, "error": self.error})
    }
}

/// Syncs one of the caller's mailboxes now.
pub async fn sync_mailbox(scope: &Scope, id: String) -> AppResult<SyncReport> {
    let row = mailbox(scope, id).await?;
    may_manage(scope, &row).or_else(|_| scope.require("message", "write"))?;
    sync(&scope.pool, &scope.secret, &scope.blobs, row).await
}

/// Fetches what is new in the mailbox's inbox and sent folder and files it, message by
/// message (each with its folder mark, so a restart resumes where it stopped).
pub async fn sync(
    pool: &Pool,
    key: &Key,
    blobs: &super::Blobs,
    mailbox: MailboxRow,
) -> AppResult<SyncReport> {
    // One sync of a mailbox at a time in this process (the poll, an IDLE wake-up and the
    // "Sync now" button may meet): the second finds nothing to do rather than racing the
    // first to file the same messages.
    static SYNCING: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let syncing = SYNCING.get_or_init(Default::default);
    if !syncing
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(mailbox.id.clone())
    {
        return Ok(SyncReport::default());
    }
    struct Done<'a>(
        &'a std::sync::Mutex<std::collections::HashSet<String>>,
        String,
    );
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.1);
        }
    }
    let _done = Done(syncing, mailbox.id.clone());
    let mut report = SyncReport::default();
    let login = match mailbox.login(key) {
        Ok(l) => l,
        Err(e) => {
            let id = mailbox.id.clone();
            let msg = e.to_string();
            db::run(pool, move |c| mail::record_sync(c, &id, Some(msg))).await?;
            return Err(e);
        }
    };
    let mut errors = Vec::new();
    for (folder, outgoing) in [
        ("INBOX".to_string(), false),
        (mailbox.sent_folder.clone(), true),
    ] {
        loop {
            let (id, f) = (mailbox.id.clone(), folder.clone());
            let last = db::run(pool, move |c| mail::folder_state(c, &id, &f)).await?;
            let (server, l, f) = (mailbox.imap(), login.clone(), folder.clone());
            let fetched = blocking(move || {
                let mut s = transport::imap_login(&server, &l)?;
                let r = transport::fetch_new(&mut s, &f, last);
                let _ = s.logout();
                r
            })
            .await?;
            let fetched = match fetched {
                Ok(f) => f,
                Err(e) => {
                    // A mailbox without the named sent folder still syncs its inbox.
                    errors.push(e);
                    break;
                }
            };
            let more = fetched.more;
            let mut messages = fetched.messages;
            while !messages.is_empty() {
                let rest = messages.split_off(messages.len().min(100));
                let batch = std::mem::replace(&mut messages, rest);
                report.fetched += batch.len();
                let (m, f, v) = (mailbox.clone(), folder.clone(), fetched.uid_validity);
                let before = report.fetched - batch.len();
                // why: on PostgreSQL a mail table that grows from nothing keeps the
                // statistics of an empty one until analysed, and the planner then looked
                // Message-IDs up through the thread index, scanning the organization's mail
                // for every message (10 messages/s at 10,000). Analysing when a sync has
                // filed 100, 200, 400… messages keeps the plans right; small syncs never do.
                let analyse = (before / 100).is_power_of_two() && before % 100 == 0;
                let store = blobs.clone();
                let filed = db::run(pool, move |c| {
                    if analyse {
                        mail::refresh_statistics(c)?;
                    }
                    mail::file_batch(c, &*store, &m, &f, v, &batch, outgoing)
                })
                .await?;
                for outcome in filed {
                    match outcome {
                        Filed::New(0) => report.unmatched += 1,
                        Filed::New(n) => report.filed += n,
                        Filed::Known | Filed::Unreadable => report.known += 1,
                        Filed::Bounce => report.bounces += 1,
                    }
                }
            }
            if !more {
                break;
            }
        }
    }
    report.error = (!errors.is_empty()).then(|| errors.join("; "));
    let (id, e) = (mailbox.id.clone(), report.error.clone());
    db::run(pool, move |c| mail::record_sync(c, &id, e)).await?;
    Ok(report)
}

/// Syncs every mailbox that has sync switched on (the worker's round).
pub async fn sync_all(pool: &Pool, key: &Key, blobs: &super::Blobs) -> AppResult<usize> {
    let boxes: Vec<MailboxRow> = db::run(pool, |c| {
        use crate::db::schema::mailboxes;
        use diesel::prelude::*;
        Ok(mailboxes::table
            .filter(mailboxes::sync_enabled.eq(true))
            .select(MailboxRow::as_select())
            .load(c)?)
    })
    .await?;
    let n = boxes.len();
    for m in boxes {
        let address = m.address.clone();
        if let Err(e) = sync(pool, key, blobs, m).await {
            tracing::warn!(mailbox = %address, error = %e, "mailbox sync failed");
        }
    }
    Ok(n)
}

/// The fields of a message to write, from the API's JSON or the console's form.
pub fn draft_from(body: &Map<String, Value>) -> AppResult<Draft> {
    const KEYS: &[&str] = &[
        "mailboxId",
        "clientId",
        "to",
        "cc",
        "bcc",
        "subject",
        "text",
        "replyTo",
        "opportunityId",
        "attachmentIds",
    ];
    let mut errors: Vec<crate::error::FieldError> = body
        .keys()
        .filter(|k| !KEYS.contains(&k.as_str()))
        .map(|k| crate::error::FieldError::new(k, "Unknown field."))
        .collect();
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let opt = |k: &str| Some(text(k)).filter(|s| !s.is_empty());
    let to = mail::parse_addresses(body.get("to"), "to", &mut errors);
    let cc = mail::parse_addresses(body.get("cc"), "cc", &mut errors);
    let bcc = mail::parse_addresses(body.get("bcc"), "bcc", &mut errors);
    if opt("mailboxId").is_none() {
        errors.push(crate::error::FieldError::new(
            "mailboxId",
            "Choose the mailbox to send from.",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(
            "The message was not sent.".into(),
            errors,
        ));
    }
    Ok(Draft {
        mailbox_id: text("mailboxId"),
        client_id: opt("clientId"),
        to,
        cc,
        bcc,
        subject: text("subject"),
        text: body
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        reply_to: opt("replyTo"),
        opportunity_id: opt("opportunityId"),
        attachment_ids: match body.get("attachmentIds") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            // The console's form sends one id per checked box, joined.
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            Some(_) => {
                return Err(AppError::invalid(
                    "attachmentIds",
                    "Give the files as a list of ids.",
                ))
            }
        },
    })
}

/// Writes an e-mail: checked and queued now, sent by the worker within seconds.
pub async fn send(scope: &Scope, draft: Draft) -> AppResult<MessageView> {
    scope.require("message", "send")?;
    let (ctx, access) = (scope.audit.clone(), scope.access("client"));
    let deals = scope.access("opportunity");
    let may_see_deals = scope.can("opportunity", "read");
    let blobs = scope.blobs.clone();
    let row = scope
        .read(move |c| {
            let mut draft = draft;
            if let Some(id) = &draft.opportunity_id {
                let not_found = || AppError::invalid("opportunityId", "That deal does not exist.");
                if !may_see_deals {
                    return Err(not_found());
                }
                let deal = crate::domain::pipeline::service::get(c, &ctx.org_id, &deals, id)
                    .map_err(|_| not_found())?;
                match &draft.client_id {
                    Some(client) if *client != deal.client_id => {
                        return Err(AppError::invalid(
                            "opportunityId",
                            "That deal belongs to another client.",
                        ))
                    }
                    Some(_) => {}
                    None => draft.client_id = Some(deal.client_id),
                }
            }
            mail::queue(c, &*blobs, &ctx, &access, draft)
        })
        .await?;
    view_of(scope, row).await
}

async fn view_of(scope: &Scope, row: MessageRow) -> AppResult<MessageView> {
    let id = row.id.clone();
    let (clients, files) = scope
        .read(move |c| {
            let ids = std::slice::from_ref(&id);
            Ok((
                mail::clients_of(c, ids)?.remove(&id).unwrap_or_default(),
                mail::files_of(c, ids)?.remove(&id).unwrap_or_default(),
            ))
        })
        .await?;
    Ok(MessageView {
        row,
        clients,
        files,
    })
}

/// Sends the messages that are due; returns how many were tried. The worker's round.
pub async fn deliver_due(pool: &Pool, key: &Key, blobs: &super::Blobs) -> AppResult<usize> {
    let mut tried = 0;
    while let Some(msg) = db::run(pool, mail::claim_due).await? {
        tried += 1;
        let m = msg.clone();
        let store = blobs.clone();
        let (mailbox, objection, files) = db::run(pool, move |c| {
            Ok((
                m.mailbox_id
                    .as_deref()
                    .map(|id| mail::find_mailbox(c, id))
                    .transpose()?
                    .flatten(),
                mail::objection_now(c, &m)?,
                mail::files_to_send(c, &*store, &m.id),
            ))
        })
        .await?;
        let outcome: Result<(), (String, bool, bool)> = match (mailbox, objection) {
            (_, Some(why)) => Err((why, true, true)),
            (None, _) => Err((
                "The mailbox it was to leave from was removed.".into(),
                true,
                false,
            )),
            (Some(mb), None) => match (mb.login(key), files.and_then(|f| build(&msg, f))) {
                (Err(e), _) => Err((e.to_string(), true, false)),
                (_, Err(e)) => Err((e, true, false)),
                (Ok(login), Ok(message)) => {
                    let server = mb.smtp();
                    blocking(move || transport::send(&server, &login, &message))
                        .await?
                        .map_err(|e| (e.reply, e.permanent, false))
                }
            },
        };
        let m = msg.clone();
        db::run(pool, move |c| match outcome {
            Ok(()) => mail::mark_sent(c, &m),
            Err((reply, permanent, refused)) => {
                mail::mark_failed(c, &m, &reply, permanent, refused)
            }
        })
        .await?;
    }
    Ok(tried)
}

/// The message as it goes out: plain text, threaded to what it answers.
fn build(
    msg: &MessageRow,
    files: Vec<(String, String, Vec<u8>)>,
) -> Result<lettre::Message, String> {
    use lettre::message::{header::ContentType, Mailbox};
    let parse = |a: &str| {
        a.parse::<lettre::Address>()
            .map_err(|e| format!("{a}: {e}"))
    };
    let name = Some(msg.from_name.clone()).filter(|n| !n.is_empty());
    let mut b = lettre::Message::builder()
        .message_id(Some(msg.message_id.clone()))
        .from(Mailbox::new(name, parse(&msg.from_address)?))
        .subject(msg.subject.clone())
        .date_now();
    for a in msg.to() {
        b = b.to(Mailbox::new(None, parse(&a)?));
    }
    for a in msg.cc() {
        b = b.cc(Mailbox::new(None, parse(&a)?));
    }
    for a in msg.bcc() {
        b = b.bcc(Mailbox::new(None, parse(&a)?));
    }
    if let Some(parent) = &msg.in_reply_to {
        b = b.in_reply_to(parent.clone()).references(parent.clone());
    }
    if let Some(url) = &msg.list_unsubscribe {
        use lettre::message::header::{HeaderName, HeaderValue};
        b = b
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".into(),
            ));
    }
    use lettre::message::{Attachment, MultiPart, SinglePart};
    if files.is_empty() {
        return match &msg.body_html {
            Some(html) => b.multipart(MultiPart::alternative_plain_html(
                msg.body_text.clone(),
                html.clone(),
            )),
            None => b
                .header(ContentType::TEXT_PLAIN)
                .body(msg.body_text.clone()),
        }
        .map_err(|e| e.to_string());
    }
    let mut mixed = match &msg.body_html {
        Some(html) => MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
            msg.body_text.clone(),
            html.clone(),
        )),
        None => MultiPart::mixed().singlepart(SinglePart::plain(msg.body_text.clone())),
    };
    for (name, ctype, bytes) in files {
        // The type was sniffed when the file was stored, so it parses; a file whose type
        // would not is refused rather than sent mislabelled.
        let ctype = ContentType::parse(&ctype).map_err(|e| format!("{name}: {e}"))?;
        // Base64 whatever the bytes: a file that happens to be text must arrive as it was
        // stored, not with its line endings made CRLF by a text encoding.
        let body = lettre::message::Body::new_with_encoding(
            bytes,
            lettre::message::header::ContentTransferEncoding::Base64,
        )
        .map_err(|_| format!("{name} could not be encoded"))?;
        mixed = mixed.singlepart(Attachment::new(name).body(body, ctype));
    }
    b.multipart(mixed).map_err(|e| e.to_string())
}

/// Messages the caller may see, newest first; `cursor` from the previous page.
pub async fn list(
    scope: &Scope,
    view: View,
    cursor: Option<String>,
    limit: i64,
) -> AppResult<(Vec<MessageView>, Option<String>)> {
    scope.require("message", "read")?;
    if let View::Client(id) = &view {
        let (org, access, id) = (scope.org_id.clone(), scope.access("client"), id.clone());
        scope
            .read(move |c| crate::domain::clients::service::get(c, &org, &access, &id).map(drop))
            .await?;
    }
    let before = match cursor {
        None => None,
        Some(s) => Some(
            crate::domain::interactions::parse_cursor(&s).ok_or_else(|| {
                AppError::invalid("cursor", "This cursor is not one we gave out.")
            })?,
        ),
    };
    let (org, user, oversee) = reader(scope);
    let rows = scope
        .read(move |c| {
            let r = Reader {
                org: &org,
                user: user.as_deref(),
                oversee,
            };
            let rows = mail::messages(c, &r, &view, before, limit + 1)?;
            let ids: Vec<String> = rows.iter().map(|m| m.id.clone()).collect();
            let mut clients = mail::clients_of(c, &ids)?;
            let mut files = mail::files_of(c, &ids)?;
            Ok(rows
                .into_iter()
                .map(|row| MessageView {
                    clients: clients.remove(&row.id).unwrap_or_default(),
                    files: files.remove(&row.id).unwrap_or_default(),
                    row,
                })
                .collect::<Vec<_>>())
        })
        .await?;
    let mut rows = rows;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|m| {
            format!(
                "{}|{}",
                m.row.occurred_at.and_utc().timestamp_micros(),
                m.row.id
            )
        })
    } else {
        None
    };
    Ok((rows, next))
}

/// A message and its thread (oldest first), as the caller may see them.
pub async fn get(scope: &Scope, id: String) -> AppResult<(MessageView, Vec<MessageView>)> {
    scope.require("message", "read")?;
    let (org, user, oversee) = reader(scope);
    scope
        .read(move |c| {
            let r = Reader {
                org: &org,
                user: user.as_deref(),
                oversee,
            };
            let row = mail::message(c, &r, &id)?;
            let mut thread =
                mail::messages(c, &r, &View::Thread(row.thread_id.clone()), None, 200)?;
            thread.reverse();
            let ids: Vec<String> = thread
                .iter()
                .map(|m| m.id.clone())
                .chain([row.id.clone()])
                .collect();
            let mut clients = mail::clients_of(c, &ids)?;
            let mut files = mail::files_of(c, &ids)?;
            let thread = thread
                .into_iter()
                .map(|row| MessageView {
                    clients: clients.get(&row.id).cloned().unwrap_or_default(),
                    files: files.get(&row.id).cloned().unwrap_or_default(),
                    row,
                })
                .collect();
            Ok((
                MessageView {
                    clients: clients.remove(&row.id).unwrap_or_default(),
                    files: files.remove(&row.id).unwrap_or_default(),
                    row,
                },
                thread,
            ))
        })
        .await
}

/// Sends a failed or uncertain message again (the user decided).
pub async fn resend(scope: &Scope, id: String) -> AppResult<MessageView> {
    scope.require("message", "send")?;
    let (msg, _) = get(scope, id.clone()).await?;
    let org = scope.org_id.clone();
    scope.read(move |c| mail::requeue(c, &org, &id)).await?;
    let (msg, _) = get(scope, msg.row.id).await?;
    Ok(msg)
}

/// Files a message (one from an unknown sender) on a client the caller may write to, or
/// on a new person made from its sender when `client_id` is `None`.
pub async fn file_on(
    scope: &Scope,
    id: String,
    client_id: Option<String>,
) -> AppResult<MessageView> {
    scope.require("message", "write")?;
    let (msg, _) = get(scope, id.clone()).await?;
    let client = match client_id {
        Some(cid) => {
            let (org, access) = (scope.org_id.clone(), scope.access("client"));
            scope
                .read(move |c| crate::domain::clients::service::get(c, &org, &access, &cid))
                .await?
                .id
        }
        None => {
            let address = msg.row.from_address.clone();
            let name = msg.row.from_name.trim().to_string();
            let (first, last) = match name.rsplit_once(' ') {
                Some((f, l)) => (f.to_string(), l.to_string()),
                None if !name.is_empty() => (name.clone(), String::new()),
                None => (
                    address.split('@').next().unwrap_or_default().to_string(),
                    String::new(),
                ),
            };
            let mut body = Map::new();
            body.insert("type".into(), json!("individual"));
            body.insert("firstName".into(), json!(first));
            if !last.is_empty() {
                body.insert("lastName".into(), json!(last));
            }
            body.insert("email".into(), json!(address));
            body.insert("source".into(), json!("email"));
            super::clients::create(scope, body).await?.row.id
        }
    };
    let ctx = scope.audit.clone();
    let row = msg.row.clone();
    scope
        .read(move |c| mail::file_on(c, &ctx, &row, &client))
        .await?;
    Ok(get(scope, id).await?.0)
}

// ---- Templates -------------------------------------------------------------------------

use crate::domain::sends::{self, Audience, NewSend, SendRow, Tally};
use crate::domain::templates::{self, TemplateRow};

pub async fn templates(scope: &Scope) -> AppResult<Vec<TemplateRow>> {
    scope.require("message", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| templates::list(c, &org)).await
}

/// The merge fields the organization's enabled plugins compute, as a template writes them:
/// (`client.plugins["<plugin>"].<key>`, label, plugin name).
pub async fn plugin_merge_fields(scope: &Scope) -> AppResult<Vec<(String, String, String)>> {
    scope.require("message", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let mut out = Vec::new();
            for install in crate::plugins::list(c, &org)?
                .into_iter()
                .filter(|i| i.enabled)
            {
                let Some(m) = install.manifest() else {
                    continue;
                };
                for f in &m.computed_fields {
                    let entity = if f.entity == "client" {
                        "client"
                    } else {
                        "deal"
                    };
                    out.push((
                        format!("{entity}.plugins[\"{}\"].{}", install.plugin_id, f.key),
                        f.label.clone(),
                        install.name.clone(),
                    ));
                }
            }
            Ok(out)
        })
        .await
}

/// A template with its versions (newest first): (version, subject, body, when).
#[allow(clippy::type_complexity)]
pub async fn template(
    scope: &Scope,
    id: String,
) -> AppResult<(
    TemplateRow,
    Vec<(i32, String, String, chrono::NaiveDateTime)>,
)> {
    scope.require("message", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            Ok((
                templates::get(c, &org, &id)?,
                templates::versions(c, &org, &id)?,
            ))
        })
        .await
}

/// Creates (`id` None) or edits a template; a changed text is a new version.
pub async fn save_template(
    scope: &Scope,
    id: Option<String>,
    kind: Option<String>,
    name: String,
    subject: String,
    body: String,
) -> AppResult<TemplateRow> {
    scope.require("message", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            templates::save(
                c,
                &ctx,
                id.as_deref(),
                kind.as_deref(),
                &name,
                &subject,
                &body,
            )
        })
        .await
}

pub async fn delete_template(scope: &Scope, id: String) -> AppResult<()> {
    scope.require("message", "write")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| templates::delete(c, &ctx, &id)).await
}

/// A text message written in Rapport for the rep to send from their own phone.
pub struct TextMessage {
    /// The timeline entry (an outbound `sms` interaction).
    pub interaction: crate::ops::interactions::InteractionView,
    /// The number it goes to, as stored on the client.
    pub to: String,
    pub text: String,
    /// SMS segments the text takes (what a carrier bills).
    pub segments: usize,
    /// `sms:` link that opens the phone's messaging app with the text filled in.
    pub uri: String,
}

impl TextMessage {
    pub fn to_json(&self) -> Value {
        json!({
            "interaction": self.interaction.to_json(), "to": self.to, "text": self.text,
            "segments": self.segments, "uri": self.uri,
        })
    }
}

/// An RFC 5724 `sms:` link: the number's digits (and a leading +), the body percent-encoded
/// (`%20`, not `+`, which phones would show as a plus).
pub fn sms_uri(phone: &str, text: &str) -> String {
    let number: String = phone
        .chars()
        .enumerate()
        .filter(|(i, ch)| ch.is_ascii_digit() || (*i == 0 && *ch == '+'))
        .map(|(_, ch)| ch)
        .collect();
    let mut body = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            body.push(char::from(b));
        } else {
            body.push_str(&format!("%{b:02X}"));
        }
    }
    format!("sms:{number}?body={body}")
}

/// Renders the text of a short message (a saved `sms` template or `body` as written) for a
/// client and logs it on the timeline as an outbound text; Rapport has no SMS gateway, so
/// the rep sends it from their phone through the returned `sms:` link. A client without a
/// phone number, or whose preferences refuse text messages, is refused with the reason.
pub async fn text(
    scope: &Scope,
    client_id: String,
    template_id: Option<String>,
    body: Option<String>,
) -> AppResult<TextMessage> {
    scope.require("message", "send")?;
    scope.require("interaction", "write")?;
    let (org, access) = (scope.org_id.clone(), scope.access("client"));
    let id = client_id.clone();
    let (phone, objection) = scope
        .read(move |c| {
            let row = crate::domain::clients::service::get(c, &org, &access, &id)?;
            let prefs = crate::domain::preferences::load(c, &org, &id)?;
            Ok((row.phone.unwrap_or_default(), prefs.objection("sms")))
        })
        .await?;
    if let Some(why) = objection {
        return Err(AppError::invalid(
            "clientId",
            &format!("{why} Rapport will not write a text message to this client."),
        ));
    }
    if phone.trim().is_empty() {
        return Err(AppError::invalid(
            "clientId",
            "This client has no phone number to text; add one to the profile first.",
        ));
    }
    let (source, subject) = match template_id.filter(|t| !t.is_empty()) {
        Some(t) => {
            let (t, _) = template(scope, t).await?;
            if t.kind != "sms" {
                return Err(AppError::invalid(
                    "templateId",
                    "That is an e-mail template; choose a text-message template.",
                ));
            }
            (t.body, t.name)
        }
        None => (body.unwrap_or_default(), "Text message".to_string()),
    };
    if source.trim().is_empty() {
        return Err(AppError::invalid(
            "body",
            "Write the message or choose a template.",
        ));
    }
    let (_, text) = preview(scope, String::new(), source, client_id.clone(), None)
        .await
        .map_err(|e| match e {
            AppError::Validation(m, errors) => AppError::Validation(
                m,
                errors
                    .into_iter()
                    .map(|e| crate::error::FieldError::new("body", e.message))
                    .collect(),
            ),
            other => other,
        })?;
    let text = text.trim().to_string();
    if text.chars().count() > templates::MAX_SMS {
        return Err(AppError::invalid(
            "body",
            &format!(
                "It comes to {} characters; a text message holds at most {}.",
                text.chars().count(),
                templates::MAX_SMS
            ),
        ));
    }
    let mut fields = Map::new();
    fields.insert("type".into(), json!("sms"));
    fields.insert("direction".into(), json!("outbound"));
    fields.insert("subject".into(), json!(subject));
    fields.insert("content".into(), json!(text));
    fields.insert("metadata".into(), json!({"to": phone}));
    let interaction = crate::ops::interactions::log(
        scope,
        crate::ops::interactions::Target::Client(client_id),
        fields,
    )
    .await?;
    Ok(TextMessage {
        interaction,
        segments: templates::sms_segments(&text),
        uri: sms_uri(&phone, &text),
        to: phone,
        text,
    })
}

/// Renders a template's text against a client the caller may see, as the message would
/// read (the unsubscribe link is a placeholder).
pub async fn preview(
    scope: &Scope,
    subject: String,
    body: String,
    client_id: String,
    deal: Option<String>,
) -> AppResult<(String, String)> {
    scope.require("message", "read")?;
    let (org, access, user) = (
        scope.org_id.clone(),
        scope.access("client"),
        scope.user_id.clone(),
    );
    let (deals, may_see_deals) = (
        scope.access("opportunity"),
        scope.can("opportunity", "read"),
    );
    // Written through the plugin runtime (nothing is changed): plugins add merge fields.
    scope
        .write(move |c, plugins| {
            let row = crate::domain::clients::service::get(c, &org, &access, &client_id)?;
            let mut client = templates::client_value(&row);
            client["plugins"] = templates::plugin_fields(&plugins.computed(
                &rapport_plugin_sdk::ComputeRequest::Client(crate::plugins::client_snapshot(&row)),
            ));
            let (name, email) = match &user {
                Some(u) => crate::domain::orgs::store::find_member(c, &org, u)?
                    .map(|m| (m.user.name, m.user.email))
                    .unwrap_or_default(),
                None => Default::default(),
            };
            let mut data =
                templates::data(client, &name, &email, "https://example.invalid/unsubscribe");
            if let Some(id) = deal {
                let deal = may_see_deals
                    .then(|| crate::domain::pipeline::service::get(c, &org, &deals, &id).ok())
                    .flatten()
                    .filter(|d| d.client_id == client_id)
                    .ok_or_else(|| {
                        AppError::invalid("opportunityId", "That deal is not this client's.")
                    })?;
                data["deal"] = templates::deal_value(c, &deal)?;
                data["deal"]["plugins"] = templates::plugin_fields(&plugins.computed(
                    &rapport_plugin_sdk::ComputeRequest::Opportunity(
                        crate::plugins::deal_snapshot(&deal),
                    ),
                ));
            }
            templates::render(&subject, &body, &data)
                .map_err(|e| AppError::Validation("The template does not render.".into(), e))
        })
        .await
}

// ---- Bulk sends ------------------------------------------------------------------------

fn only_assigned(scope: &Scope) -> Option<String> {
    (!scope.can("client", "oversee")).then(|| scope.user_id.clone().unwrap_or_default())
}

/// How many an audience reaches after preferences, and who is left out.
pub async fn preview_send(scope: &Scope, audience: Audience) -> AppResult<Tally> {
    scope.require("send", "create")?;
    let (org, only) = (scope.org_id.clone(), only_assigned(scope));
    scope
        .read(move |c| sends::preview(c, &org, only.as_deref(), &audience))
        .await
}

pub async fn create_send(scope: &Scope, input: NewSend) -> AppResult<(SendRow, Tally)> {
    scope.require("send", "create")?;
    let (ctx, only) = (scope.audit.clone(), only_assigned(scope));
    // why: an audience of 100,000 clients is written in one transaction; the request's
    // statement time limit is for reads that may run away, not for this bounded write.
    db::run_unbounded(&scope.pool, move |c| {
        sends::create(c, &ctx, only.as_deref(), input)
    })
    .await
}

pub async fn sends(scope: &Scope) -> AppResult<Vec<SendRow>> {
    scope.require("send", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| sends::list(c, &org)).await
}

pub async fn send_report(scope: &Scope, id: String) -> AppResult<Value> {
    scope.require("send", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| sends::report(c, &org, &id)).await
}

pub async fn send_recipients(
    scope: &Scope,
    id: String,
    state: Option<String>,
    after: Option<String>,
    limit: i64,
) -> AppResult<Vec<Value>> {
    scope.require("send", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| sends::recipients(c, &org, &id, state.as_deref(), after.as_deref(), limit))
        .await
}

/// `pause`, `resume` or `cancel`.
pub async fn act_send(scope: &Scope, id: String, action: &'static str) -> AppResult<SendRow> {
    scope.require("send", "create")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| sends::act(c, &ctx, &id, action)).await
}

/// The send's figures hour by hour.
pub async fn send_over_time(scope: &Scope, id: String) -> AppResult<Vec<Value>> {
    scope.require("send", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| sends::over_time(c, &org, &id)).await
}

/// Whether the organization tracks opens and clicks.
pub async fn tracking(scope: &Scope) -> AppResult<bool> {
    scope.require("message", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| sends::tracking(c, &org)).await
}

/// Switches open and click tracking (admins).
pub async fn set_tracking(scope: &Scope, on: bool) -> AppResult<()> {
    scope.require("message", "admin")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| sends::set_tracking(c, &ctx, on)).await
}

/// The addresses that bounced, newest first.
pub async fn bounces(scope: &Scope) -> AppResult<Vec<(String, String, chrono::NaiveDateTime)>> {
    scope.require("message", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| mail::bounces(c, &org, 200)).await
}

/// Forgets a bounce, so the address is written to again.
pub async fn clear_bounce(scope: &Scope, address: String) -> AppResult<()> {
    scope.require("message", "write")?;
    let ctx = scope.audit.clone();
    let cleared = scope
        .read(move |c| mail::clear_bounce(c, &ctx, &address))
        .await?;
    if cleared {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// The bulk worker's round: hands due recipients to the mail queue.
pub async fn hand_out(
    pool: &Pool,
    key: &Key,
    base: String,
    plugins: &crate::plugins::runtime::Runtime,
) -> AppResult<usize> {
    let (key, plugins) = (key.clone(), plugins.clone());
    db::run_unbounded(pool, move |c| {
        sends::hand_out(
            c,
            &sends::Links {
                base: &base,
                key: &key,
            },
            Some(&plugins),
        )
    })
    .await
}
