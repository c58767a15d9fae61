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
    clients, interactions, mail_folders, mail_message_clients, mail_messages, mailboxes,
};
use crate::db::{new_id, now, DbConn};
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
}

/// Queues a message for sending after checking the rules: the sender may use the mailbox,
/// sees the client, and no addressed client objects to e-mail.
pub fn queue(
    conn: &mut DbConn,
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
        };
        diesel::insert_into(mail_messages::table)
            .values(&row)
            .execute(c)?;
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
        let row = interaction_of(msg, client);
        diesel::insert_into(interactions::table)
            .values(&row)
            .execute(c)?;
        link(c, msg, client, Some(&row.id))?;
        filed += 1;
    }
    if !targets.is_empty() {
        diesel::update(mail_messages::table.find(&msg.id))
            .set(mail_messages::matched.eq(true))
            .execute(c)?;
    }
    Ok(filed)
}

fn interaction_of(msg: &MessageRow, client: &str) -> InteractionRow {
    let at = now();
    InteractionRow {
        id: new_id(),
        organization_id: msg.organization_id.clone(),
        client_id: client.to_string(),
        opportunity_id: None,
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

/// What a synced message came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Filed {
    /// New, on this many timelines (0: waits in Unmatched).
    New(usize),
    /// Its Message-ID was known already (sent by Rapport, or in another mailbox).
    Known,
    /// Not a message at all; skipped.
    Unreadable,
}

fn angle(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{id}>")
}

/// Files a run of fetched messages (oldest first) in one transaction, each as
/// [`file_raw`] does. why: one commit per message made SQLite sync the disk ten thousand
/// times for ten thousand messages (25 messages/s); the folder mark still moves with them.
pub fn file_batch(
    c: &mut DbConn,
    mailbox: &MailboxRow,
    folder: &str,
    uid_validity: i64,
    messages: &[(i64, Vec<u8>)],
    outgoing_folder: bool,
) -> AppResult<Vec<Filed>> {
    crate::db::transaction(c, |c| {
        messages
            .iter()
            .map(|(uid, raw)| {
                file_raw(c, mailbox, folder, uid_validity, *uid, raw, outgoing_folder)
            })
            .collect()
    })
}

/// Parses one raw message from `mailbox`'s `folder` and files it; moves the folder's mark
/// to `uid` in the same transaction, so a restart neither skips nor repeats it.
#[allow(clippy::too_many_arguments)]
pub fn file_raw(
    c: &mut DbConn,
    mailbox: &MailboxRow,
    folder: &str,
    uid_validity: i64,
    uid: i64,
    raw: &[u8],
    outgoing_folder: bool,
) -> AppResult<Filed> {
    crate::db::transaction(c, |c| {
        set_folder_state(c, &mailbox.id, folder, uid_validity, uid)?;
        let Some(parsed) = mail_parser::MessageParser::default().parse(raw) else {
            return Ok(Filed::Unreadable);
        };
        let org = &mailbox.organization_id;
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
        let own = mailboxes_for(c, org, None)?
            .into_iter()
            .map(|m| m.address)
            .collect::<BTreeSet<_>>();
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
            body_html: None,
            list_unsubscribe: None,
        };
        diesel::insert_into(mail_messages::table)
            .values(&row)
            .execute(c)?;
        // The counterparties: whoever is not one of the organization's own mailboxes.
        let parties: Vec<String> = std::iter::once(from_address)
            .chain(to)
            .chain(cc)
            .chain(bcc)
            .filter(|a| !a.is_empty() && !own.contains(a))
            .collect();
        Ok(Filed::New(file(c, &row, &parties)?))
    })
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
    if let (Some(user), false) = (r.user, r.oversee) {
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
    All,
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
}
