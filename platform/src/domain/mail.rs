//! E-mail in the CRM: mailboxes (an organization's shared ones and each user's own), the
//! messages sent and received through them, and how a message is filed on the timelines of
//! the clients whose addresses it carries. Sending is durable: a message is queued in the
//! database, claimed by a worker for a lease, and marked sent (with its timeline entries) in
//! one transaction after the server accepted it. A claim whose worker died is never resent
//! blindly: it becomes `uncertain`, shown with the question to the user.

use std::collections::{BTreeSet, HashMap};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde_json::{json, Map, Value};

use crate::db::schema::{
    clients, interactions, mail_attachments, mail_bounces, mail_folders, mail_message_clients,
    mail_messages, mailboxes, send_recipients,
};
use crate::db::{new_id, now, DbConn};
use crate::domain::attachments::BlobStore;
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::service::Access;
use crate::domain::interactions::{InteractionRow, MAX_CONTENT};
use crate::error::{AppError, AppResult, FieldError};
use crate::integrations::mail::Security;
use crate::integrations::secret::Key;

/// Attempts before a message that keeps failing transiently is given up as failed.
pub const MAX_ATTEMPTS: i32 = 5;
/// How long a worker holds a claimed message before it counts as interrupted.
pub const SEND_LEASE: Duration = Duration::minutes(5);
/// Files a message carries at most, in either direction.
pub const MAX_ATTACHMENTS: usize = 20;
/// Bytes of files a received message keeps (the rest are named in its text, not kept).
pub const MAX_RECEIVED_FILES: usize = 25 * 1024 * 1024;
/// Bytes of files a message written in Rapport may carry (what most servers accept).
pub const MAX_SENT_FILES: i64 = 20 * 1024 * 1024;
/// The HTML kept of a received message (bytes); the text alternative is kept whole.
pub const MAX_HTML: usize = 256 * 1024;
/// Recipients per message (To, Cc and Bcc together).
pub const MAX_RECIPIENTS: usize = 50;
const MAX_SUBJECT: usize = 250;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = mailboxes)]
#[diesel(treat_none_as_null = true)]
pub struct MailboxRow {
    pub id: String,
    pub organization_id: String,
    pub user_id: Option<String>,
    pub name: String,
    pub address: String,
    pub username: String,
    pub secret: String,
    pub imap_host: String,
    pub imap_port: i32,
    pub imap_security: String,
    pub smtp_host: String,
    pub smtp_port: i32,
    pub smtp_security: String,
    pub sent_folder: String,
    pub sync_enabled: bool,
    pub last_sync_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl MailboxRow {
    pub fn imap(&self) -> crate::integrations::mail::Server {
        crate::integrations::mail::Server {
            host: self.imap_host.clone(),
            port: self.imap_port as u16,
            security: Security::parse(&self.imap_security).unwrap_or(Security::Tls),
        }
    }

    pub fn smtp(&self) -> crate::integrations::mail::Server {
        crate::integrations::mail::Server {
            host: self.smtp_host.clone(),
            port: self.smtp_port as u16,
            security: Security::parse(&self.smtp_security).unwrap_or(Security::Tls),
        }
    }

    pub fn login(&self, key: &Key) -> AppResult<crate::integrations::mail::Login> {
        Ok(crate::integrations::mail::Login {
            username: self.username.clone(),
            password: key.open(&self.secret)?,
        })
    }

    /// The API's view: everything but the password.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "address": self.address,
            "shared": self.user_id.is_none(), "userId": self.user_id,
            "username": self.username,
            "imap": {"host": self.imap_host, "port": self.imap_port, "security": self.imap_security},
            "smtp": {"host": self.smtp_host, "port": self.smtp_port, "security": self.smtp_security},
            "sentFolder": self.sent_folder, "syncEnabled": self.sync_enabled,
            "lastSyncAt": self.last_sync_at.map(rfc3339), "lastError": self.last_error,
            "createdAt": rfc3339(self.created_at), "updatedAt": rfc3339(self.updated_at),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mail_messages)]
pub struct MessageRow {
    pub id: String,
    pub organization_id: String,
    pub mailbox_id: Option<String>,
    pub user_id: Option<String>,
    pub direction: String,
    pub status: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub thread_id: String,
    pub from_address: String,
    pub from_name: String,
    pub to_addresses: String,
    pub cc_addresses: String,
    pub bcc_addresses: String,
    pub subject: String,
    pub body_text: String,
    pub matched: bool,
    pub error: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub occurred_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Bulk messages: the HTML alternative (tracked links, open pixel).
    pub body_html: Option<String>,
    /// Bulk messages: the one-click unsubscribe URL (RFC 8058).
    pub list_unsubscribe: Option<String>,
    /// The deal it was written from, if any.
    pub opportunity_id: Option<String>,
    /// The newest message of its thread (the one the conversation list shows).
    pub latest: bool,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

impl MessageRow {
    pub fn to(&self) -> Vec<String> {
        list(&self.to_addresses)
    }
    pub fn cc(&self) -> Vec<String> {
        list(&self.cc_addresses)
    }
    pub fn bcc(&self) -> Vec<String> {
        list(&self.bcc_addresses)
    }

    pub fn to_json(&self, clients: &[(String, String)]) -> Value {
        json!({
            "id": self.id, "mailboxId": self.mailbox_id, "userId": self.user_id,
            "direction": self.direction, "status": self.status,
            "messageId": self.message_id, "inReplyTo": self.in_reply_to, "threadId": self.thread_id,
            "from": {"address": self.from_address, "name": self.from_name},
            "to": self.to(), "cc": self.cc(), "bcc": self.bcc(),
            "subject": self.subject, "text": self.body_text,
            "matched": self.matched, "error": self.error, "attempts": self.attempts,
            "opportunityId": self.opportunity_id,
            "clients": clients.iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>(),
            "occurredAt": rfc3339(self.occurred_at), "createdAt": rfc3339(self.created_at),
        })
    }
}

fn whole_seconds(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    t.with_nanosecond(0).unwrap_or(t)
}

fn rfc3339(t: NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What a user may see: their own mailboxes, and the shared ones.
pub fn mailboxes_for(
    conn: &mut DbConn,
    org: &str,
    user: Option<&str>,
) -> AppResult<Vec<MailboxRow>> {
    let mut q = mailboxes::table
        .filter(mailboxes::organization_id.eq(org))
        .select(MailboxRow::as_select())
        .order((mailboxes::name.asc(), mailboxes::id.asc()))
        .into_boxed();
    if let Some(u) = user {
        q = q.filter(mailboxes::user_id.is_null().or(mailboxes::user_id.eq(u)));
    }
    Ok(q.load(conn)?)
}

/// A mailbox of the organization that `user` may use (theirs or shared), or 404.
pub fn mailbox(
    conn: &mut DbConn,
    org: &str,
    user: Option<&str>,
    id: &str,
) -> AppResult<MailboxRow> {
    mailboxes_for(conn, org, user)?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or(AppError::NotFound)
}

/// A mailbox's settings as typed (the API's JSON or the console's form, as strings).
#[derive(Debug, Default, Clone)]
pub struct MailboxInput {
    pub name: Option<String>,
    pub address: Option<String>,
    pub username: Option<String>,
    /// `None` keeps the stored password.
    pub password: Option<String>,
    pub imap_host: Option<String>,
    pub imap_port: Option<String>,
    pub imap_security: Option<String>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<String>,
    pub smtp_security: Option<String>,
    pub sent_folder: Option<String>,
    pub sync_enabled: Option<bool>,
}

impl MailboxInput {
    /// Reads the API's body (`imap`/`smtp` objects or flat fields).
    pub fn from_json(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        const KEYS: &[&str] = &[
            "name",
            "address",
            "username",
            "password",
            "imap",
            "smtp",
            "sentFolder",
            "syncEnabled",
            "shared",
        ];
        let mut errors: Vec<FieldError> = body
            .keys()
            .filter(|k| !KEYS.contains(&k.as_str()))
            .map(|k| FieldError::new(k, "Unknown field."))
            .collect();
        let text = |v: Option<&Value>| -> Option<String> {
            match v {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            }
        };
        let part = |k: &str, f: &str| body.get(k).and_then(|o| o.get(f));
        let sync_enabled = match body.get("syncEnabled") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                errors.push(FieldError::new("syncEnabled", "Use true or false."));
                None
            }
        };
        let input = Self {
            name: text(body.get("name")),
            address: text(body.get("address")),
            username: text(body.get("username")),
            password: text(body.get("password")),
            imap_host: text(part("imap", "host")),
            imap_port: text(part("imap", "port")),
            imap_security: text(part("imap", "security")),
            smtp_host: text(part("smtp", "host")),
            smtp_port: text(part("smtp", "port")),
            smtp_security: text(part("smtp", "security")),
            sent_folder: text(body.get("sentFolder")),
            sync_enabled,
        };
        if errors.is_empty() {
            Ok(input)
        } else {
            Err(errors)
        }
    }
}

fn host_ok(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// Applies `input` over `row` (a new one or the stored one), checking every field.
pub fn apply_input(row: &mut MailboxRow, input: MailboxInput, key: &Key) -> AppResult<()> {
    let mut errors = Vec::new();
    let mut set_text =
        |slot: &mut String, v: Option<String>, field: &str, max: usize, required: bool| {
            if let Some(v) = v {
                *slot = v.trim().to_string();
            }
            if required && slot.is_empty() {
                errors.push(FieldError::new(field, "Fill this in."));
            } else if slot.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("Use at most {max} characters."),
                ));
            }
        };
    set_text(&mut row.name, input.name, "name", 100, true);
    set_text(
        &mut row.address,
        input.address.map(|a| a.to_lowercase()),
        "address",
        254,
        true,
    );
    set_text(&mut row.username, input.username, "username", 254, false);
    set_text(&mut row.imap_host, input.imap_host, "imap.host", 253, true);
    set_text(&mut row.smtp_host, input.smtp_host, "smtp.host", 253, true);
    set_text(
        &mut row.sent_folder,
        input.sent_folder,
        "sentFolder",
        100,
        false,
    );
    if !row.address.is_empty() && !crate::domain::custom_fields::value::valid_email(&row.address) {
        errors.push(FieldError::new(
            "address",
            "Use an e-mail address like sales@example.com.",
        ));
    }
    for (field, host) in [("imap.host", &row.imap_host), ("smtp.host", &row.smtp_host)] {
        if !host.is_empty() && !host_ok(host) {
            errors.push(FieldError::new(
                field,
                "Use a host name like imap.example.com.",
            ));
        }
    }
    for (field, v, slot) in [
        ("imap.port", input.imap_port, &mut row.imap_port),
        ("smtp.port", input.smtp_port, &mut row.smtp_port),
    ] {
        if let Some(v) = v {
            match v.trim().parse::<i32>() {
                Ok(p) if (1..=65535).contains(&p) => *slot = p,
                _ => errors.push(FieldError::new(field, "Use a port from 1 to 65535.")),
            }
        }
    }
    for (field, v, slot) in [
        ("imap.security", input.imap_security, &mut row.imap_security),
        ("smtp.security", input.smtp_security, &mut row.smtp_security),
    ] {
        if let Some(v) = v {
            match Security::parse(v.trim()) {
                Some(_) => *slot = v.trim().to_string(),
                None => errors.push(FieldError::new(field, "Choose tls, starttls or none.")),
            }
        }
    }
    if let Some(b) = input.sync_enabled {
        row.sync_enabled = b;
    }
    match input.password {
        Some(p) if p.len() > 1000 => {
            errors.push(FieldError::new("password", "Use at most 1000 characters."))
        }
        Some(p) if !p.is_empty() => row.secret = key.seal(&p)?,
        _ if row.secret.is_empty() => errors.push(FieldError::new("password", "Fill this in.")),
        _ => {}
    }
    if row.sent_folder.is_empty() {
        row.sent_folder = "Sent".into();
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(
            "The mailbox could not be saved.".into(),
            errors,
        ))
    }
}

pub fn new_mailbox(org: &str, user: Option<&str>) -> MailboxRow {
    let at = now();
    MailboxRow {
        id: new_id(),
        organization_id: org.into(),
        user_id: user.map(str::to_string),
        name: String::new(),
        address: String::new(),
        username: String::new(),
        secret: String::new(),
        imap_host: String::new(),
        imap_port: 993,
        imap_security: "tls".into(),
        smtp_host: String::new(),
        smtp_port: 587,
        smtp_security: "starttls".into(),
        sent_folder: "Sent".into(),
        sync_enabled: true,
        last_sync_at: None,
        last_error: None,
        created_at: at,
        updated_at: at,
    }
}

pub fn save_mailbox(
    conn: &mut DbConn,
    ctx: &AuditContext,
    row: &MailboxRow,
    created: bool,
) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        if created {
            diesel::insert_into(mailboxes::table)
                .values(row)
                .execute(c)?;
        } else {
            let mut row = row.clone();
            row.updated_at = now();
            diesel::update(mailboxes::table.find(&row.id))
                .set(&row)
                .execute(c)?;
        }
        audit::record(
            c,
            ctx,
            if created {
                "mailbox.create"
            } else {
                "mailbox.update"
            },
            "mailbox",
            Some(&row.id),
            json!({"address": row.address, "shared": row.user_id.is_none()}),
        )?;
        Ok(())
    })
}

pub fn delete_mailbox(conn: &mut DbConn, ctx: &AuditContext, row: &MailboxRow) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        diesel::delete(mailboxes::table.find(&row.id)).execute(c)?;
        audit::record(
            c,
            ctx,
            "mailbox.delete",
            "mailbox",
            Some(&row.id),
            json!({"address": row.address}),
        )?;
        Ok(())
    })
}

pub fn record_sync(conn: &mut DbConn, id: &str, error: Option<String>) -> AppResult<()> {
    diesel::update(mailboxes::table.find(id))
        .set((
            mailboxes::last_sync_at.eq(Some(now())),
            mailboxes::last_error.eq(error.map(|e| e.chars().take(500).collect::<String>())),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn folder_state(
    conn: &mut DbConn,
    mailbox: &str,
    folder: &str,
) -> AppResult<Option<(i64, i64)>> {
    Ok(mail_folders::table
        .find((mailbox, folder))
        .select((mail_folders::uid_validity, mail_folders::last_uid))
        .first(conn)
        .optional()?)
}

fn set_folder_state(
    c: &mut DbConn,
    mailbox: &str,
    folder: &str,
    validity: i64,
    uid: i64,
) -> AppResult<()> {
    let n = diesel::update(mail_folders::table.find((mailbox, folder)))
        .set((
            mail_folders::uid_validity.eq(validity),
            mail_folders::last_uid.eq(uid),
        ))
        .execute(c)?;
    if n == 0 {
        diesel::insert_into(mail_folders::table)
            .values((
                mail_folders::mailbox_id.eq(mailbox),
                mail_folders::folder.eq(folder),
                mail_folders::uid_validity.eq(validity),
                mail_folders::last_uid.eq(uid),
            ))
            .execute(c)?;
    }
    Ok(())
}

/// Addresses as written in a form or JSON: a comma-separated string or an array.
pub fn parse_addresses(
    v: Option<&Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<String> {
    let raw: Vec<String> = match v {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) => s.split([',', ';']).map(str::to_string).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(_) => {
            errors.push(FieldError::new(
                field,
                "Send addresses as a list or a comma-separated string.",
            ));
            return vec![];
        }
    };
    let mut out = Vec::new();
    for a in raw {
        let a = a.trim().to_lowercase();
        if a.is_empty() {
            continue;
        }
        if !crate::domain::custom_fields::value::valid_email(&a) {
            errors.push(FieldError::new(
                field,
                format!("{a} is not an e-mail address."),
            ));
        } else if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// A message to send, as composed.
#[derive(Debug, Clone)]
pub struct Draft {
    pub mailbox_id: String,
    pub client_id: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub text: String,
    /// The message this answers (our row id).
    pub reply_to: Option<String>,
    /// The deal it is written from (checked by the caller: visible, the client's own).
    pub opportunity_id: Option<String>,
    /// Files on clients the sender sees, sent along (copied when queued).
    pub attachment_ids: Vec<String>,
}

/// Queues a message for sending after checking the rules: the sender may use the mailbox,
/// sees the client, and no addressed client objects to e-mail.
pub fn queue(
    conn: &mut DbConn,
    store: &dyn BlobStore,
    ctx: &AuditContext,
    access: &Access,
    draft: Draft,
) -> AppResult<MessageRow> {
    crate::db::transaction(conn, |c| {
        let org = ctx.org_id.clone();
        let user = ctx.actor_user_id.clone();
        let mailbox = mailbox(c, &org, user.as_deref(), &draft.mailbox_id).map_err(|_| {
            AppError::invalid("mailboxId", "Choose one of your mailboxes or a shared one.")
        })?;
        let mut errors = Vec::new();
        let subject: String = draft
            .subject
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        if subject.is_empty() {
            errors.push(FieldError::new("subject", "Give the message a subject."));
        } else if subject.chars().count() > MAX_SUBJECT {
            errors.push(FieldError::new(
                "subject",
                format!("Use at most {MAX_SUBJECT} characters."),
            ));
        }
        if draft.text.chars().count() > MAX_CONTENT {
            errors.push(FieldError::new(
                "text",
                format!("Use at most {MAX_CONTENT} characters."),
            ));
        }
        if draft.to.is_empty() {
            errors.push(FieldError::new("to", "Add at least one recipient."));
        }
        if draft.to.len() + draft.cc.len() + draft.bcc.len() > MAX_RECIPIENTS {
            errors.push(FieldError::new(
                "to",
                format!("Write to at most {MAX_RECIPIENTS} addresses at once."),
            ));
        }
        if let Some(id) = &draft.client_id {
            crate::domain::clients::service::get(c, &org, access, id)?;
        }
        let mut files = Vec::new();
        if draft.attachment_ids.len() > MAX_ATTACHMENTS {
            errors.push(FieldError::new(
                "attachmentIds",
                format!("Attach at most {MAX_ATTACHMENTS} files."),
            ));
        } else {
            for id in &draft.attachment_ids {
                match crate::domain::attachments::get(c, &org, access, id) {
                    Ok(f) if f.sensitive && !access.read_sensitive => errors.push(FieldError::new(
                        "attachmentIds",
                        format!("{} is marked sensitive; you may not send it.", f.file_name),
                    )),
                    Ok(f) => files.push(f),
                    Err(AppError::NotFound) => errors.push(FieldError::new(
                        "attachmentIds",
                        "One of the files does not exist (any more).",
                    )),
                    Err(e) => return Err(e),
                }
            }
            if files.iter().map(|f| f.size_bytes).sum::<i64>() > MAX_SENT_FILES {
                errors.push(FieldError::new(
                    "attachmentIds",
                    format!(
                        "Attach at most {} MB in all; share larger files another way.",
                        MAX_SENT_FILES / 1024 / 1024
                    ),
                ));
            }
        }
        let mut all: Vec<String> = draft
            .to
            .iter()
            .chain(&draft.cc)
            .chain(&draft.bcc)
            .cloned()
            .collect();
        all.dedup();
        // Every client written to, not only the one composed from, may have said no.
        for (client_id, name) in clients_by_address(c, &org, &all)?
            .into_iter()
            .chain(draft.client_id.clone().map(|id| (id, String::new())))
            .collect::<BTreeSet<_>>()
        {
            let prefs = crate::domain::preferences::load(c, &org, &client_id)?;
            if let Some(why) = prefs.objection("email") {
                let who = if name.is_empty() {
                    "This client".to_string()
                } else {
                    name
                };
                errors.push(FieldError::new("to", format!("{who}: {why}")));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The message was not sent.".into(),
                errors,
            ));
        }
        let (in_reply_to, thread) = match &draft.reply_to {
            Some(id) => {
                let parent: MessageRow = mail_messages::table
                    .filter(mail_messages::organization_id.eq(&org))
                    .filter(mail_messages::id.eq(id))
                    .select(MessageRow::as_select())
                    .first(c)
                    .optional()?
                    .ok_or_else(|| AppError::invalid("replyTo", "That message does not exist."))?;
                (Some(parent.message_id), Some(parent.thread_id))
            }
            None => (None, None),
        };
        // The sender's own name in From (not their sign-in address); none for the system.
        let from_name = match &user {
            Some(u) => crate::domain::orgs::store::find_member(c, &org, u)?
                .map(|m| m.user.name)
                .unwrap_or_default(),
            None => String::new(),
        };
        let domain = mailbox
            .address
            .rsplit('@')
            .next()
            .unwrap_or("rapport.invalid")
            .to_string();
        let message_id = format!("<{}@{}>", uuid::Uuid::now_v7().simple(), domain);
        let at = now();
        let row = MessageRow {
            id: new_id(),
            organization_id: org.clone(),
            mailbox_id: Some(mailbox.id.clone()),
            user_id: user,
            direction: "outbound".into(),
            status: "queued".into(),
            thread_id: thread.unwrap_or_else(|| message_id.clone()),
            message_id,
            in_reply_to,
            from_address: mailbox.address.clone(),
            from_name,
            to_addresses: draft.to.join(", "),
            cc_addresses: draft.cc.join(", "),
            bcc_addresses: draft.bcc.join(", "),
            subject,
            body_text: draft.text.replace("\r\n", "\n"),
            matched: false,
            error: None,
            attempts: 0,
            next_attempt_at: Some(at),
            occurred_at: at,
            created_at: at,
            updated_at: at,
            body_html: None,
            list_unsubscribe: None,
            opportunity_id: draft.opportunity_id.clone(),
            latest: draft.reply_to.is_none(),
        };
        diesel::insert_into(mail_messages::table)
            .values(&row)
            .execute(c)?;
        if !row.latest {
            mark_latest(c, &org, &row.thread_id)?;
        }
        for f in &files {
            let bytes = store
                .get(&f.storage_key)
                .map_err(|e| AppError::Internal(format!("reading {}: {e}", f.file_name)))?;
            keep_file(c, store, &row, &f.file_name, &bytes)?;
        }
        if let Some(client) = &draft.client_id {
            link(c, &row, client, None)?;
        }
        audit::record(
            c,
            ctx,
            "message.queue",
            "message",
            Some(&row.id),
            json!({"to": row.to(), "subject": row.subject}),
        )?;
        Ok(row)
    })
}

/// Files a queued message on a client (its timeline entry comes when it is sent).
pub fn link_client(c: &mut DbConn, msg: &MessageRow, client: &str) -> AppResult<()> {
    link(c, msg, client, None)
}

fn link(
    c: &mut DbConn,
    msg: &MessageRow,
    client: &str,
    interaction: Option<&str>,
) -> AppResult<()> {
    diesel::delete(
        mail_message_clients::table
            .filter(mail_message_clients::mail_message_id.eq(&msg.id))
            .filter(mail_message_clients::client_id.eq(client)),
    )
    .execute(c)?;
    insert_link(c, msg, client, interaction)
}

fn insert_link(
    c: &mut DbConn,
    msg: &MessageRow,
    client: &str,
    interaction: Option<&str>,
) -> AppResult<()> {
    diesel::insert_into(mail_message_clients::table)
        .values((
            mail_message_clients::mail_message_id.eq(&msg.id),
            mail_message_clients::client_id.eq(client),
            mail_message_clients::organization_id.eq(&msg.organization_id),
            mail_message_clients::interaction_id.eq(interaction),
        ))
        .execute(c)?;
    Ok(())
}

/// The address's variants a client may be known by: itself and, for plus-addressing
/// (`ann+crm@x.com`), the base address.
fn variants(address: &str) -> Vec<String> {
    let a = address.trim().to_lowercase();
    let mut out = vec![a.clone()];
    if let Some((local, domain)) = a.split_once('@') {
        if let Some((base, _)) = local.split_once('+') {
            out.push(format!("{base}@{domain}"));
        }
    }
    out
}

/// Live clients of the organization with one of these addresses: (id, display name).
pub fn clients_by_address(
    c: &mut DbConn,
    org: &str,
    addresses: &[String],
) -> AppResult<Vec<(String, String)>> {
    let keys: Vec<String> = addresses
        .iter()
        .flat_map(|a| variants(a))
        .take(4 * MAX_RECIPIENTS)
        .collect();
    if keys.is_empty() {
        return Ok(vec![]);
    }
    Ok(clients::table
        .filter(clients::organization_id.eq(org))
        .filter(clients::email.eq_any(&keys))
        .filter(clients::deleted_at.is_null())
        .select((clients::id, clients::display_name))
        // why: no ORDER BY: ordering by id made SQLite walk the organization's clients in id
        // order (O(n) per message, 25 messages/s at 100,000 clients) instead of looking the
        // addresses up in (organization, email).
        .limit(MAX_RECIPIENTS as i64)
        .load::<(String, String)>(c)
        .map(|mut rows| {
            rows.sort();
            rows
        })?)
}

/// Claims the next message due for sending (for [`SEND_LEASE`]), if any.
pub fn claim_due(c: &mut DbConn) -> AppResult<Option<MessageRow>> {
    let at = now();
    // A claim whose worker died is not resent: the server may have taken it already.
    diesel::update(
        mail_messages::table
            .filter(mail_messages::status.eq("sending"))
            .filter(mail_messages::next_attempt_at.lt(at)),
    )
    .set((
        mail_messages::status.eq("uncertain"),
        mail_messages::error.eq(Some(
            "Rapport stopped while sending this message, so it may or may not have left. \
             Check with the recipient, then send it again or leave it.",
        )),
        mail_messages::next_attempt_at.eq(None::<NaiveDateTime>),
    ))
    .execute(c)?;
    let due: Vec<String> = mail_messages::table
        .filter(mail_messages::status.eq("queued"))
        .filter(mail_messages::next_attempt_at.le(at))
        .order(mail_messages::next_attempt_at.asc())
        .select(mail_messages::id)
        .limit(5)
        .load(c)?;
    for id in due {
        let n = diesel::update(
            mail_messages::table
                .filter(mail_messages::id.eq(&id))
                .filter(mail_messages::status.eq("queued")),
        )
        .set((
            mail_messages::status.eq("sending"),
            mail_messages::next_attempt_at.eq(Some(at + SEND_LEASE)),
            mail_messages::attempts.eq(mail_messages::attempts + 1),
        ))
        .execute(c)?;
        if n == 1 {
            return Ok(Some(
                mail_messages::table
                    .find(&id)
                    .select(MessageRow::as_select())
                    .first(c)?,
            ));
        }
    }
    Ok(None)
}

pub fn find_mailbox(c: &mut DbConn, id: &str) -> AppResult<Option<MailboxRow>> {
    Ok(mailboxes::table
        .find(id)
        .select(MailboxRow::as_select())
        .first(c)
        .optional()?)
}

/// Refuses a claimed message before sending it when an addressed client objects now.
pub fn objection_now(c: &mut DbConn, msg: &MessageRow) -> AppResult<Option<String>> {
    let all: Vec<String> = msg
        .to()
        .into_iter()
        .chain(msg.cc())
        .chain(msg.bcc())
        .collect();
    let mut ids: BTreeSet<(String, String)> = clients_by_address(c, &msg.organization_id, &all)?
        .into_iter()
        .collect();
    let linked: Vec<(String, String)> = mail_message_clients::table
        .inner_join(clients::table.on(clients::id.eq(mail_message_clients::client_id)))
        .filter(mail_message_clients::mail_message_id.eq(&msg.id))
        .select((clients::id, clients::display_name))
        .load(c)?;
    ids.extend(linked);
    if let Some((address, why)) = bounced(c, &msg.organization_id, &all)?.into_iter().next() {
        return Ok(Some(format!(
            "{address} bounced before ({why}). Fix the client's address, or clear the bounce on the Mailboxes page once it works again."
        )));
    }
    for (id, name) in ids {
        let prefs = crate::domain::preferences::load(c, &msg.organization_id, &id)?;
        if let Some(why) = prefs.objection("email") {
            return Ok(Some(format!("{name}: {why}")));
        }
    }
    Ok(None)
}

/// The server accepted the message: mark it sent and file it on its clients' timelines.
pub fn mark_sent(c: &mut DbConn, msg: &MessageRow) -> AppResult<()> {
    crate::db::transaction(c, |c| {
        let n = diesel::update(
            mail_messages::table
                .filter(mail_messages::id.eq(&msg.id))
                .filter(mail_messages::status.eq("sending")),
        )
        .set((
            mail_messages::status.eq("sent"),
            mail_messages::error.eq(None::<String>),
            mail_messages::next_attempt_at.eq(None::<NaiveDateTime>),
            // Whole seconds, as the Date headers of replies are: a reply within the same
            // second then sorts after it by id (time-ordered) rather than before it.
            mail_messages::occurred_at.eq(whole_seconds(now())),
            mail_messages::updated_at.eq(now()),
        ))
        .execute(c)?;
        if n == 1 {
            // Its time is now its sending time: a reply written before a message that
            // waited to leave moves it to the top of its thread.
            if msg.in_reply_to.is_some() {
                mark_latest(c, &msg.organization_id, &msg.thread_id)?;
            }
            let addresses: Vec<String> = msg
                .to()
                .into_iter()
                .chain(msg.cc())
                .chain(msg.bcc())
                .collect();
            file(c, msg, &addresses)?;
        }
        Ok(())
    })
}

/// A failed attempt: retried with backoff unless permanent or out of attempts.
pub fn mark_failed(
    c: &mut DbConn,
    msg: &MessageRow,
    reply: &str,
    permanent: bool,
    refused: bool,
) -> AppResult<()> {
    let give_up = permanent || refused || msg.attempts >= MAX_ATTEMPTS;
    let status = if refused {
        "refused"
    } else if give_up {
        "failed"
    } else {
        "queued"
    };
    let next =
        (!give_up).then(|| now() + Duration::minutes(2_i64.pow(msg.attempts.clamp(0, 6) as u32)));
    diesel::update(
        mail_messages::table
            .filter(mail_messages::id.eq(&msg.id))
            .filter(mail_messages::status.eq("sending")),
    )
    .set((
        mail_messages::status.eq(status),
        mail_messages::error.eq(Some(reply.chars().take(1000).collect::<String>())),
        mail_messages::next_attempt_at.eq(next),
        mail_messages::updated_at.eq(now()),
    ))
    .execute(c)?;
    Ok(())
}

/// Puts a failed or uncertain message back in the queue (the user chose to send again).
pub fn requeue(c: &mut DbConn, org: &str, id: &str) -> AppResult<()> {
    let n = diesel::update(
        mail_messages::table
            .filter(mail_messages::organization_id.eq(org))
            .filter(mail_messages::id.eq(id))
            .filter(mail_messages::status.eq_any(["failed", "uncertain"])),
    )
    .set((
        mail_messages::status.eq("queued"),
        mail_messages::attempts.eq(0),
        mail_messages::next_attempt_at.eq(Some(now())),
    ))
    .execute(c)?;
    if n == 0 {
        return Err(AppError::Conflict(
            "Only a failed or uncertain message can be sent again.".into(),
        ));
    }
    Ok(())
}

/// Files `msg` on the timeline of every client with one of `addresses` (and the clients it
/// was already linked to), once each; marks it matched when any.
fn file(c: &mut DbConn, msg: &MessageRow, addresses: &[String]) -> AppResult<usize> {
    let mut targets: BTreeSet<String> = clients_by_address(c, &msg.organization_id, addresses)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let linked: Vec<(String, Option<String>)> = mail_message_clients::table
        .filter(mail_message_clients::mail_message_id.eq(&msg.id))
        .select((
            mail_message_clients::client_id,
            mail_message_clients::interaction_id,
        ))
        .load(c)?;
    let already: HashMap<String, Option<String>> = linked.into_iter().collect();
    targets.extend(already.keys().cloned());
    let mut filed = 0;
    for client in &targets {
        if let Some(Some(_)) = already.get(client) {
            continue;
        }
        file_one(c, msg, client, false)?;
        filed += 1;
    }
    if !targets.is_empty() {
        diesel::update(mail_messages::table.find(&msg.id))
            .set(mail_messages::matched.eq(true))
            .execute(c)?;
    }
    Ok(filed)
}

/// [`file`] for a message inserted a moment ago (no links yet) whose clients are known.
fn file_new(c: &mut DbConn, msg: &MessageRow, targets: &BTreeSet<String>) -> AppResult<usize> {
    for client in targets {
        file_one(c, msg, client, true)?;
    }
    Ok(targets.len())
}

/// Puts `msg` on one client's timeline: its interaction, the link to it, and the
/// `mail.received` trigger for an inbound message. A `fresh` message has no link to replace.
fn file_one(c: &mut DbConn, msg: &MessageRow, client: &str, fresh: bool) -> AppResult<()> {
    let row = interaction_of(msg, client);
    diesel::insert_into(interactions::table)
        .values(&row)
        .execute(c)?;
    if fresh {
        insert_link(c, msg, client, Some(&row.id))?;
    } else {
        link(c, msg, client, Some(&row.id))?;
    }
    if msg.direction == "inbound" {
        crate::domain::workflows::fire(
            c,
            &msg.organization_id,
            "mail.received",
            "interaction",
            &row.id,
            Some(client),
            &json!({"subject": msg.subject, "from": msg.from_address}),
        )?;
    }
    Ok(())
}

fn interaction_of(msg: &MessageRow, client: &str) -> InteractionRow {
    let at = now();
    InteractionRow {
        id: new_id(),
        organization_id: msg.organization_id.clone(),
        client_id: client.to_string(),
        opportunity_id: msg.opportunity_id.clone(),
        user_id: msg.user_id.clone(),
        kind: "email".into(),
        subject: msg.subject.chars().take(200).collect(),
        content: msg.body_text.chars().take(MAX_CONTENT).collect(),
        direction: Some(msg.direction.clone()),
        status: String::new(),
        scheduled_at: None,
        completed_at: None,
        occurred_at: msg.occurred_at,
        outcome: None,
        duration_minutes: None,
        metadata: json!({
            "mailMessageId": msg.id, "messageId": msg.message_id, "threadId": msg.thread_id,
            "from": msg.from_address, "to": msg.to(), "cc": msg.cc(),
        })
        .to_string(),
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
    }
}

/// A message's HTML made safe to show inside the console: an allow-list of tags and
/// attributes (no script, no style, no forms), links that open apart and tell nothing of
/// where they were followed from, and no images (a remote image is a read receipt the
/// sender did not ask for; a bulk message's own open pixel would count the rep's look).
pub fn safe_html(html: &str) -> (String, bool) {
    let had_images = html.to_ascii_lowercase().contains("<img");
    let clean = ammonia::Builder::default()
        .rm_tags(["img"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .set_tag_attribute_value("a", "target", "_blank")
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean(html)
        .to_string();
    (clean, had_images)
}

/// A file of a message: (id, name, type, size).
pub type FileLine = (String, String, String, i64);

/// The files of each message.
pub fn files_of(
    c: &mut DbConn,
    message_ids: &[String],
) -> AppResult<HashMap<String, Vec<FileLine>>> {
    let rows: Vec<(String, String, String, String, i64)> = mail_attachments::table
        .filter(mail_attachments::mail_message_id.eq_any(message_ids))
        .order(mail_attachments::created_at.asc())
        .select((
            mail_attachments::mail_message_id,
            mail_attachments::id,
            mail_attachments::file_name,
            mail_attachments::content_type,
            mail_attachments::size_bytes,
        ))
        .load(c)?;
    let mut out: HashMap<String, Vec<_>> = HashMap::new();
    for (m, id, name, ctype, size) in rows {
        out.entry(m).or_default().push((id, name, ctype, size));
    }
    Ok(out)
}

/// The files a queued message carries, with their bytes (an unreadable one fails the send:
/// a message must not leave without what the writer attached).
pub fn files_to_send(
    c: &mut DbConn,
    store: &dyn BlobStore,
    message: &str,
) -> Result<Vec<(String, String, Vec<u8>)>, String> {
    let rows: Vec<(String, String, String)> = mail_attachments::table
        .filter(mail_attachments::mail_message_id.eq(message))
        .order(mail_attachments::created_at.asc())
        .select((
            mail_attachments::file_name,
            mail_attachments::content_type,
            mail_attachments::storage_key,
        ))
        .load(c)
        .map_err(|e| e.to_string())?;
    rows.into_iter()
        .map(|(name, ctype, key)| {
            store
                .get(&key)
                .map(|bytes| (name.clone(), ctype, bytes))
                .map_err(|e| format!("{name} could not be read: {e}"))
        })
        .collect()
}

/// The files of the e-mails behind timeline entries: entry id → (download link, name).
pub fn files_on_interactions(
    c: &mut DbConn,
    ids: &[String],
) -> AppResult<HashMap<String, Vec<(String, String)>>> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows: Vec<(Option<String>, String, String, String)> = mail_message_clients::table
        .inner_join(
            mail_attachments::table
                .on(mail_attachments::mail_message_id.eq(mail_message_clients::mail_message_id)),
        )
        .filter(mail_message_clients::interaction_id.eq_any(ids))
        .order(mail_attachments::created_at.asc())
        .select((
            mail_message_clients::interaction_id,
            mail_attachments::mail_message_id,
            mail_attachments::id,
            mail_attachments::file_name,
        ))
        .load(c)?;
    for (entry, message, id, name) in rows {
        if let Some(entry) = entry {
            out.entry(entry)
                .or_default()
                .push((format!("/mail/messages/{message}/files/{id}"), name));
        }
    }
    Ok(out)
}

/// One file of a message the reader may see: its name, type and bytes.
pub fn file_of_message(
    c: &mut DbConn,
    store: &dyn BlobStore,
    r: &Reader,
    message: &str,
    id: &str,
) -> AppResult<(String, String, Vec<u8>)> {
    let m = self::message(c, r, message)?;
    let (name, ctype, key): (String, String, String) = mail_attachments::table
        .filter(mail_attachments::mail_message_id.eq(&m.id))
        .filter(mail_attachments::id.eq(id))
        .select((
            mail_attachments::file_name,
            mail_attachments::content_type,
            mail_attachments::storage_key,
        ))
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)?;
    let bytes = store
        .get(&key)
        .map_err(|e| AppError::Internal(format!("reading the file: {e}")))?;
    Ok((name, ctype, bytes))
}

/// Stores one file of `msg` (its own copy of the bytes).
fn keep_file(
    c: &mut DbConn,
    store: &dyn BlobStore,
    msg: &MessageRow,
    name: &str,
    bytes: &[u8],
) -> AppResult<()> {
    let key = new_id();
    store
        .put(&key, bytes)
        .map_err(|e| AppError::Internal(format!("storing a file: {e}")))?;
    diesel::insert_into(mail_attachments::table)
        .values((
            mail_attachments::id.eq(new_id()),
            mail_attachments::organization_id.eq(&msg.organization_id),
            mail_attachments::mail_message_id.eq(&msg.id),
            mail_attachments::file_name.eq(crate::domain::attachments::safe_name(name)),
            mail_attachments::content_type.eq(crate::domain::attachments::sniff(bytes)),
            mail_attachments::size_bytes.eq(bytes.len() as i64),
            mail_attachments::storage_key.eq(key),
            mail_attachments::created_at.eq(now()),
        ))
        .execute(c)?;
    Ok(())
}

/// Keeps a received message's attachments, up to [`MAX_ATTACHMENTS`] files and
/// [`MAX_RECEIVED_FILES`] bytes; the message's text names any it could not keep.
fn keep_received_files(
    c: &mut DbConn,
    store: &dyn BlobStore,
    msg: &MessageRow,
    parsed: &mail_parser::Message,
) -> AppResult<()> {
    use mail_parser::MimeHeaders;
    let (mut kept, mut total, mut left) = (0usize, 0usize, Vec::new());
    for part in parsed.attachments() {
        let bytes: &[u8] = match &part.body {
            mail_parser::PartType::Message(m) => m.raw_message(),
            _ => part.contents(),
        };
        let name = part.attachment_name().unwrap_or("attachment");
        if bytes.is_empty() {
            continue;
        }
        if kept >= MAX_ATTACHMENTS || total + bytes.len() > MAX_RECEIVED_FILES {
            left.push(format!("{name} ({} KB)", bytes.len().div_ceil(1024)));
            continue;
        }
        keep_file(c, store, msg, name, bytes)?;
        kept += 1;
        total += bytes.len();
    }
    if !left.is_empty() {
        let note = format!(
            "\n\n[Not kept by Rapport (a message keeps at most {MAX_ATTACHMENTS} files and {} MB): {}]",
            MAX_RECEIVED_FILES / 1024 / 1024,
            left.join(", ")
        );
        diesel::update(mail_messages::table.find(&msg.id))
            .set(mail_messages::body_text.eq(format!("{}{note}", msg.body_text)))
            .execute(c)?;
    }
    Ok(())
}

/// Marks the newest message of a thread as its `latest` (and no other).
fn mark_latest(c: &mut DbConn, org: &str, thread: &str) -> AppResult<()> {
    let newest: Option<String> = mail_messages::table
        .filter(mail_messages::organization_id.eq(org))
        .filter(mail_messages::thread_id.eq(thread))
        .order((mail_messages::occurred_at.desc(), mail_messages::id.desc()))
        .select(mail_messages::id)
        .first(c)
        .optional()?;
    let Some(newest) = newest else {
        return Ok(());
    };
    // One statement: the newest becomes the latest, whichever was before stops being it.
    diesel::update(
        mail_messages::table
            .filter(mail_messages::organization_id.eq(org))
            .filter(mail_messages::thread_id.eq(thread))
            .filter(
                mail_messages::latest
                    .eq(true)
                    .or(mail_messages::id.eq(&newest)),
            ),
    )
    .set(mail_messages::latest.eq(mail_messages::id.eq(newest.clone())))
    .execute(c)?;
    Ok(())
}

/// What a synced message came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Filed {
    /// New, on this many timelines (0: waits in Unmatched).
    New(usize),
    /// Its Message-ID was known already (sent by Rapport, or in another mailbox).
    Known,
    /// Not a message at all; skipped.
    Unreadable,
    /// A delivery failure report for a message Rapport sent: recorded on that message.
    Bounce,
}

/// What a delivery status notification (RFC 3464) says failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// The Message-ID of the message that could not be delivered.
    pub original: String,
    pub recipient: String,
    pub reason: String,
}

/// The failure a DSN reports, when `parsed` is one (`multipart/report;
/// report-type=delivery-status` with `Action: failed`) and names the original message.
pub fn bounce_of(parsed: &mail_parser::Message) -> Option<Dsn> {
    use mail_parser::{MimeHeaders, PartType};
    let ct = parsed.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        && ct
            .attribute("report-type")
            .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"));
    if !is_report {
        return None;
    }
    let (mut original, mut status) = (None, None);
    for part in parsed.parts.iter() {
        let Some(pct) = part.content_type() else {
            continue;
        };
        let sub = pct.subtype().unwrap_or_default().to_ascii_lowercase();
        match (&part.body, sub.as_str()) {
            (PartType::Message(m), _) => {
                original = original.or_else(|| m.message_id().map(angle));
            }
            (_, "delivery-status" | "global-delivery-status") => {
                status = Some(String::from_utf8_lossy(part.contents()).into_owned());
            }
            (_, "rfc822-headers" | "global-headers") => {
                original = original.or_else(|| {
                    mail_parser::MessageParser::default()
                        .parse_headers(part.contents())
                        .and_then(|h| h.message_id().map(angle))
                });
            }
            _ => {}
        }
    }
    // The per-recipient fields: the first recipient whose action is `failed`.
    let status = status?;
    let (mut recipient, mut failed, mut code, mut diagnostic) = (None, false, None, None);
    for block in status.replace("\r\n", "\n").split("\n\n") {
        let field = |name: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        if field("Action").is_some_and(|a| a.eq_ignore_ascii_case("failed")) {
            failed = true;
            recipient = field("Final-Recipient")
                .or_else(|| field("Original-Recipient"))
                .map(|r| {
                    r.rsplit(';')
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_lowercase()
                });
            code = field("Status");
            diagnostic = field("Diagnostic-Code").map(|d| {
                d.split_once(';')
                    .map_or(d.clone(), |(_, t)| t.trim().to_string())
            });
            break;
        }
    }
    if !failed {
        return None;
    }
    let reason: String = diagnostic
        .or(code)
        .unwrap_or_else(|| "The receiving server refused the message.".into())
        .chars()
        .filter(|c| !c.is_control())
        .take(500)
        .collect();
    Some(Dsn {
        original: original?,
        recipient: recipient.unwrap_or_default(),
        reason,
    })
}

/// Marks the message the DSN is about as bounced (its bulk recipient, its timeline entries)
/// and flags the address; false when the message is not one of the organization's own.
pub fn record_bounce(c: &mut DbConn, org: &str, dsn: &Dsn) -> AppResult<bool> {
    let found: Option<(String, String)> = mail_messages::table
        .filter(mail_messages::organization_id.eq(org))
        .filter(mail_messages::message_id.eq(&dsn.original))
        .filter(mail_messages::direction.eq("outbound"))
        .select((mail_messages::id, mail_messages::to_addresses))
        .first(c)
        .optional()?;
    let Some((id, to)) = found else {
        return Ok(false);
    };
    let at = now();
    let address = if dsn.recipient.is_empty() {
        to.split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_lowercase()
    } else {
        dsn.recipient.clone()
    };
    diesel::update(mail_messages::table.find(&id))
        .set((
            mail_messages::status.eq("bounced"),
            mail_messages::error.eq(Some(format!("{address}: {}", dsn.reason))),
            mail_messages::updated_at.eq(at),
        ))
        .execute(c)?;
    let rids: Vec<String> = send_recipients::table
        .filter(send_recipients::mail_message_id.eq(&id))
        .select(send_recipients::id)
        .load(c)?;
    for rid in &rids {
        diesel::update(
            send_recipients::table
                .find(rid)
                .filter(send_recipients::bounced_at.is_null()),
        )
        .set(send_recipients::bounced_at.eq(Some(at)))
        .execute(c)?;
    }
    let entries: Vec<Option<String>> = mail_message_clients::table
        .filter(mail_message_clients::mail_message_id.eq(&id))
        .select(mail_message_clients::interaction_id)
        .load(c)?;
    let entries: Vec<String> = entries.into_iter().flatten().collect();
    diesel::update(interactions::table.filter(interactions::id.eq_any(&entries)))
        .set(interactions::outcome.eq(Some("bounced")))
        .execute(c)?;
    if !address.is_empty() {
        diesel::delete(
            mail_bounces::table
                .filter(mail_bounces::organization_id.eq(org))
                .filter(mail_bounces::address.eq(&address)),
        )
        .execute(c)?;
        diesel::insert_into(mail_bounces::table)
            .values((
                mail_bounces::organization_id.eq(org),
                mail_bounces::address.eq(&address),
                mail_bounces::reason.eq(&dsn.reason),
                mail_bounces::bounced_at.eq(at),
            ))
            .execute(c)?;
    }
    Ok(true)
}

/// Which of `addresses` bounced before, with the receiving server's reason.
pub fn bounced(
    c: &mut DbConn,
    org: &str,
    addresses: &[String],
) -> AppResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in addresses.chunks(500) {
        let rows: Vec<(String, String)> = mail_bounces::table
            .filter(mail_bounces::organization_id.eq(org))
            .filter(mail_bounces::address.eq_any(chunk))
            .select((mail_bounces::address, mail_bounces::reason))
            .load(c)?;
        out.extend(rows);
    }
    Ok(out)
}

/// The organization's bounced addresses, newest first.
pub fn bounces(
    c: &mut DbConn,
    org: &str,
    limit: i64,
) -> AppResult<Vec<(String, String, NaiveDateTime)>> {
    Ok(mail_bounces::table
        .filter(mail_bounces::organization_id.eq(org))
        .order(mail_bounces::bounced_at.desc())
        .select((
            mail_bounces::address,
            mail_bounces::reason,
            mail_bounces::bounced_at,
        ))
        .limit(limit)
        .load(c)?)
}

/// Forgets that `address` bounced (it was fixed on the receiving side); true when it had.
pub fn clear_bounce(c: &mut DbConn, ctx: &AuditContext, address: &str) -> AppResult<bool> {
    let address = address.trim().to_lowercase();
    crate::db::transaction(c, |c| {
        let n = diesel::delete(
            mail_bounces::table
                .filter(mail_bounces::organization_id.eq(&ctx.org_id))
                .filter(mail_bounces::address.eq(&address)),
        )
        .execute(c)?;
        if n > 0 {
            audit::record(
                c,
                ctx,
                "mail.bounce_clear",
                "organization",
                Some(&ctx.org_id),
                json!({"address": address}),
            )?;
        }
        Ok(n > 0)
    })
}

fn angle(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{id}>")
}

/// Fresh planner statistics for the mail tables (PostgreSQL; SQLite's come hourly).
pub fn refresh_statistics(c: &mut DbConn) -> AppResult<()> {
    if let DbConn::Postgresql(_) = c {
        diesel::connection::SimpleConnection::batch_execute(
            c,
            "ANALYZE mail_messages, mail_message_clients, interactions",
        )?;
    }
    Ok(())
}

/// Files a run of fetched messages (oldest first) in one transaction, each as
/// [`file_raw`] does. why: one commit per message made SQLite sync the disk ten thousand
/// times for ten thousand messages (25 messages/s); the folder mark still moves with them.
pub fn file_batch(
    c: &mut DbConn,
    store: &dyn BlobStore,
    mailbox: &MailboxRow,
    folder: &str,
    uid_validity: i64,
    messages: &[(i64, Vec<u8>)],
    outgoing_folder: bool,
) -> AppResult<Vec<Filed>> {
    // why: every statement is a round trip on PostgreSQL; per message this path runs only
    // what the message needs (no savepoint of its own: an error rolls the whole batch back
    // anyway; the organization's mailboxes and the folder mark once per batch).
    crate::db::transaction(c, |c| {
        let own = own_addresses(c, &mailbox.organization_id)?;
        let filed = messages
            .iter()
            .map(|(uid, raw)| {
                file_parsed(
                    c,
                    store,
                    mailbox,
                    uid_validity,
                    *uid,
                    raw,
                    outgoing_folder,
                    &own,
                )
            })
            .collect::<AppResult<Vec<_>>>()?;
        if let Some((last, _)) = messages.last() {
            set_folder_state(c, &mailbox.id, folder, uid_validity, *last)?;
        }
        Ok(filed)
    })
}

/// The organization's own mailbox addresses (a message between them is nobody's client).
fn own_addresses(c: &mut DbConn, org: &str) -> AppResult<BTreeSet<String>> {
    Ok(mailboxes_for(c, org, None)?
        .into_iter()
        .map(|m| m.address)
        .collect())
}

/// Parses one raw message from `mailbox`'s `folder` and files it; moves the folder's mark
/// to `uid` in the same transaction, so a restart neither skips nor repeats it.
#[allow(clippy::too_many_arguments)]
pub fn file_raw(
    c: &mut DbConn,
    store: &dyn BlobStore,
    mailbox: &MailboxRow,
    folder: &str,
    uid_validity: i64,
    uid: i64,
    raw: &[u8],
    outgoing_folder: bool,
) -> AppResult<Filed> {
    crate::db::transaction(c, |c| {
        set_folder_state(c, &mailbox.id, folder, uid_validity, uid)?;
        let own = own_addresses(c, &mailbox.organization_id)?;
        file_parsed(
            c,
            store,
            mailbox,
            uid_validity,
            uid,
            raw,
            outgoing_folder,
            &own,
        )
    })
}

/// Files one raw message (the caller holds the transaction and moves the folder's mark).
#[allow(clippy::too_many_arguments)]
fn file_parsed(
    c: &mut DbConn,
    store: &dyn BlobStore,
    mailbox: &MailboxRow,
    uid_validity: i64,
    uid: i64,
    raw: &[u8],
    outgoing_folder: bool,
    own: &BTreeSet<String>,
) -> AppResult<Filed> {
    {
        let Some(parsed) = mail_parser::MessageParser::default().parse(raw) else {
            return Ok(Filed::Unreadable);
        };
        let org = &mailbox.organization_id;
        if let Some(dsn) = bounce_of(&parsed) {
            if record_bounce(c, org, &dsn)? {
                return Ok(Filed::Bounce);
            }
        }
        let message_id = parsed
            .message_id()
            .map(angle)
            .unwrap_or_else(|| format!("<{uid_validity}.{uid}.{}@rapport.invalid>", mailbox.id));
        let known: i64 = mail_messages::table
            .filter(mail_messages::organization_id.eq(org))
            .filter(mail_messages::message_id.eq(&message_id))
            .count()
            .get_result(c)?;
        if known > 0 {
            return Ok(Filed::Known);
        }
        let addrs = |a: Option<&mail_parser::Address>| -> Vec<String> {
            a.map(|a| {
                a.iter()
                    .filter_map(|x| x.address())
                    .map(|s| s.trim().to_lowercase())
                    .filter(|s| crate::domain::custom_fields::value::valid_email(s))
                    .take(MAX_RECIPIENTS)
                    .collect()
            })
            .unwrap_or_default()
        };
        let from = parsed.from().and_then(|a| a.first());
        let from_address = from
            .and_then(|f| f.address())
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default();
        let from_name: String = from
            .and_then(|f| f.name())
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let (to, cc, bcc) = (addrs(parsed.to()), addrs(parsed.cc()), addrs(parsed.bcc()));
        let in_reply_to = parsed.in_reply_to().as_text().map(angle);
        let mut refs: Vec<String> = parsed
            .references()
            .as_text_list()
            .map(|l| l.iter().map(|r| angle(r)).collect())
            .or_else(|| parsed.references().as_text().map(|r| vec![angle(r)]))
            .unwrap_or_default();
        refs.extend(in_reply_to.clone());
        refs.truncate(100);
        let thread: Option<String> = if refs.is_empty() {
            None
        } else {
            mail_messages::table
                .filter(mail_messages::organization_id.eq(org))
                .filter(mail_messages::message_id.eq_any(&refs))
                .select(mail_messages::thread_id)
                .first(c)
                .optional()?
        };
        let occurred_at = parsed
            .date()
            .and_then(|d| chrono::DateTime::from_timestamp(d.to_timestamp(), 0))
            .map(|d| d.naive_utc())
            .filter(|d| *d <= now() + Duration::days(1))
            .unwrap_or_else(now);
        let text: String = parsed
            .body_text(0)
            .map(|t| t.replace("\r\n", "\n"))
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
            .take(MAX_CONTENT)
            .collect();
        let html: Option<String> = parsed
            .html_body
            .first()
            .and_then(|&i| parsed.parts.get(i as usize))
            .and_then(|p| match &p.body {
                mail_parser::PartType::Html(h) => Some(h.as_ref()),
                _ => None,
            })
            .map(|h| {
                let mut end = h.len().min(MAX_HTML);
                while !h.is_char_boundary(end) {
                    end -= 1;
                }
                h[..end].to_string()
            });
        let outbound = outgoing_folder || own.contains(&from_address);
        let at = now();
        let row = MessageRow {
            id: new_id(),
            organization_id: org.clone(),
            mailbox_id: Some(mailbox.id.clone()),
            user_id: if outbound {
                mailbox.user_id.clone()
            } else {
                None
            },
            direction: if outbound { "outbound" } else { "inbound" }.into(),
            status: if outbound { "sent" } else { "received" }.into(),
            thread_id: thread
                .unwrap_or_else(|| in_reply_to.clone().unwrap_or_else(|| message_id.clone())),
            message_id,
            in_reply_to,
            from_address: from_address.clone(),
            from_name,
            to_addresses: to.join(", "),
            cc_addresses: cc.join(", "),
            bcc_addresses: bcc.join(", "),
            subject: parsed
                .subject()
                .unwrap_or("(no subject)")
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_SUBJECT)
                .collect(),
            body_text: text,
            matched: false,
            error: None,
            attempts: 0,
            next_attempt_at: None,
            occurred_at,
            created_at: at,
            updated_at: at,
            body_html: html,
            list_unsubscribe: None,
            opportunity_id: None,
            latest: false,
        };
        // The counterparties: whoever is not one of the organization's own mailboxes.
        let parties: Vec<String> = std::iter::once(from_address)
            .chain(to)
            .chain(cc)
            .chain(bcc)
            .filter(|a| !a.is_empty() && !own.contains(a))
            .collect();
        let targets: BTreeSet<String> = clients_by_address(c, org, &parties)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let mut row = row;
        row.matched = !targets.is_empty();
        diesel::insert_into(mail_messages::table)
            .values(&row)
            .execute(c)?;
        mark_latest(c, org, &row.thread_id)?;
        keep_received_files(c, store, &row, &parsed)?;
        Ok(Filed::New(file_new(c, &row, &targets)?))
    }
}

/// Files an unmatched message on a client (one the user chose or just created).
pub fn file_on(
    c: &mut DbConn,
    ctx: &AuditContext,
    msg: &MessageRow,
    client: &str,
) -> AppResult<()> {
    crate::db::transaction(c, |c| {
        link(c, msg, client, None)?;
        file(c, msg, &[])?;
        audit::record(
            c,
            ctx,
            "message.file",
            "message",
            Some(&msg.id),
            json!({"clientId": client}),
        )?;
        Ok(())
    })
}

/// Which messages a user sees: their own mailboxes' always; the rest when they oversee
/// clients or the message is filed on a client assigned to them.
pub struct Reader<'a> {
    pub org: &'a str,
    pub user: Option<&'a str>,
    pub oversee: bool,
}

/// Messages newest first, one page; `view` is all, unmatched, outbox or a client id.
pub fn messages(
    c: &mut DbConn,
    r: &Reader,
    view: &View,
    before: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> AppResult<Vec<MessageRow>> {
    use diesel::dsl::exists;
    let mut q = mail_messages::table
        .filter(mail_messages::organization_id.eq(r.org))
        .select(MessageRow::as_select())
        .order((mail_messages::occurred_at.desc(), mail_messages::id.desc()))
        .limit(limit)
        .into_boxed();
    let mine = matches!(view, View::Mine);
    if let Some(user) = r.user.filter(|_| !r.oversee || mine) {
        let own = mailboxes::table
            .filter(mailboxes::user_id.eq(user.to_string()))
            .select(mailboxes::id.nullable());
        q = q.filter(
            mail_messages::mailbox_id
                .eq_any(own)
                .or(mail_messages::user_id.eq(user.to_string()))
                .or(exists(
                    mail_message_clients::table
                        .inner_join(
                            clients::table.on(clients::id.eq(mail_message_clients::client_id)),
                        )
                        .filter(mail_message_clients::mail_message_id.eq(mail_messages::id))
                        .filter(clients::assigned_to.eq(user.to_string())),
                )),
        );
    }
    match view {
        View::All => {}
        View::Conversations | View::Mine => q = q.filter(mail_messages::latest.eq(true)),
        View::Unanswered(days) => {
            q = q
                .filter(mail_messages::latest.eq(true))
                .filter(mail_messages::direction.eq("inbound"))
                .filter(mail_messages::occurred_at.lt(now() - Duration::days(*days)))
        }
        View::Unmatched => {
            q = q
                .filter(mail_messages::matched.eq(false))
                .filter(mail_messages::direction.eq("inbound"))
        }
        View::Outbox => {
            q = q.filter(mail_messages::status.eq_any([
                "queued",
                "sending",
                "failed",
                "uncertain",
                "refused",
                "bounced",
            ]))
        }
        View::Thread(t) => q = q.filter(mail_messages::thread_id.eq(t.clone())),
        View::Client(id) => {
            q = q.filter(exists(
                mail_message_clients::table
                    .filter(mail_message_clients::mail_message_id.eq(mail_messages::id))
                    .filter(mail_message_clients::client_id.eq(id.clone())),
            ))
        }
    }
    if let Some((at, id)) = before {
        q = q.filter(
            mail_messages::occurred_at
                .lt(at)
                .or(mail_messages::occurred_at
                    .eq(at)
                    .and(mail_messages::id.lt(id))),
        );
    }
    Ok(q.load(c)?)
}

#[derive(Debug, Clone)]
pub enum View {
    /// Every message.
    All,
    /// Each thread once, by its latest message.
    Conversations,
    /// Conversations of the reader's own mailboxes, own messages and own clients.
    Mine,
    /// Conversations whose latest message came in more than this many days ago.
    Unanswered(i64),
    Unmatched,
    Outbox,
    Thread(String),
    Client(String),
}

/// One message the reader may see, or 404.
pub fn message(c: &mut DbConn, r: &Reader, id: &str) -> AppResult<MessageRow> {
    let row: MessageRow = mail_messages::table
        .filter(mail_messages::organization_id.eq(r.org))
        .filter(mail_messages::id.eq(id))
        .select(MessageRow::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)?;
    let thread = messages(c, r, &View::Thread(row.thread_id.clone()), None, 500)?;
    if thread.iter().any(|m| m.id == row.id) {
        Ok(row)
    } else {
        Err(AppError::NotFound)
    }
}

/// The clients each message is filed on: message id → [(client id, name)].
pub fn clients_of(
    c: &mut DbConn,
    ids: &[String],
) -> AppResult<HashMap<String, Vec<(String, String)>>> {
    let rows: Vec<(String, String, String)> = mail_message_clients::table
        .inner_join(clients::table.on(clients::id.eq(mail_message_clients::client_id)))
        .filter(mail_message_clients::mail_message_id.eq_any(ids))
        .select((
            mail_message_clients::mail_message_id,
            clients::id,
            clients::display_name,
        ))
        .load(c)?;
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (m, id, name) in rows {
        out.entry(m).or_default().push((id, name));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_addresses_also_match_their_base() {
        assert_eq!(
            variants("Ann+CRM@Example.com"),
            vec!["ann+crm@example.com", "ann@example.com"]
        );
        assert_eq!(variants("bob@example.com"), vec!["bob@example.com"]);
    }

    #[test]
    fn message_ids_are_compared_in_angle_brackets() {
        assert_eq!(angle("abc@x"), "<abc@x>");
        assert_eq!(angle(" <abc@x> "), "<abc@x>");
    }

    /// A bounce as Postfix writes it: the failed recipient, the server's reason and the
    /// original message's Message-ID (from the returned headers).
    const POSTFIX_BOUNCE: &str = "From: MAILER-DAEMON@mail.example (Mail Delivery System)\r\n\
To: news@acme.example\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <20261204.bounce@mail.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B1\"\r\n\
\r\n\
--B1\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
I'm sorry to have to inform you that your message could not be delivered.\r\n\
\r\n\
--B1\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mail.example\r\n\
Arrival-Date: Fri,  4 Dec 2026 09:00:00 +0000 (UTC)\r\n\
\r\n\
Final-Recipient: rfc822; Gone@Client.example\r\n\
Original-Recipient: rfc822;gone@client.example\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <gone@client.example>: Recipient address rejected\r\n\
\r\n\
--B1\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: News <news@acme.example>\r\n\
To: gone@client.example\r\n\
Subject: December news\r\n\
Message-ID: <0193abc@acme.example>\r\n\
\r\n\
--B1--\r\n";

    #[test]
    fn a_delivery_failure_report_names_the_message_the_address_and_the_reason() {
        let parsed = mail_parser::MessageParser::default()
            .parse(POSTFIX_BOUNCE.as_bytes())
            .unwrap();
        assert_eq!(
            bounce_of(&parsed),
            Some(Dsn {
                original: "<0193abc@acme.example>".into(),
                recipient: "gone@client.example".into(),
                reason: "550 5.1.1 <gone@client.example>: Recipient address rejected".into(),
            })
        );
    }

    #[test]
    fn a_delay_warning_or_an_ordinary_message_is_not_a_bounce() {
        let delayed = POSTFIX_BOUNCE.replace("Action: failed", "Action: delayed");
        let parsed = mail_parser::MessageParser::default()
            .parse(delayed.as_bytes())
            .unwrap();
        assert_eq!(bounce_of(&parsed), None);
        let plain = "From: a@b.example\r\nTo: c@d.example\r\nSubject: Hi\r\n\r\nAction: failed\r\n";
        let parsed = mail_parser::MessageParser::default()
            .parse(plain.as_bytes())
            .unwrap();
        assert_eq!(bounce_of(&parsed), None);
    }
}
