//! Bulk sends: a template to an audience (the client list's filters, a saved view or a
//! selection). Creating one writes a row per client — `waiting`, or `excluded` with the
//! reason (opted out, asked not to be contacted, no address, an address already written to)
//! — so the count a marketer previews is the count that goes. A worker hands waiting
//! recipients to the mail queue at the send's rate, each in the transaction that makes its
//! message: a restart neither skips nor repeats anyone, and the mail queue sends each at
//! most once. Every message carries a signed unsubscribe link (RFC 8058 one-click) and, in
//! its HTML part, signed open and click tracking.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::db::schema::{clients, mail_messages, send_recipients, sends};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::ClientRow;
use crate::domain::mail::MessageRow;
use crate::error::{AppError, AppResult, FieldError};
use crate::integrations::secret::Key;
use crate::plugins::runtime::Runtime;

/// Recipients per send.
pub const MAX_RECIPIENTS: usize = 200_000;
/// Recipients handed to the mail queue per send per worker round.
const HAND_OUT_BATCH: i64 = 200;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sends)]
pub struct SendRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub template_id: Option<String>,
    pub template_version: i32,
    pub subject: String,
    pub body: String,
    pub mailbox_id: Option<String>,
    pub created_by: Option<String>,
    pub audience: String,
    pub status: String,
    pub per_minute: i32,
    pub scheduled_at: NaiveDateTime,
    pub total: i32,
    pub excluded: i32,
    pub window_started_at: NaiveDateTime,
    pub window_count: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Who a send goes to.
#[derive(Debug, Clone)]
pub enum Audience {
    /// The client list's query string (`filter[status]=customer&filter[tags]=vip`).
    Query(String),
    /// Chosen clients.
    Clients(Vec<String>),
}

impl Audience {
    pub fn to_json(&self) -> Value {
        match self {
            Audience::Query(q) => json!({"query": q}),
            Audience::Clients(ids) => json!({"clientIds": ids}),
        }
    }
}

/// What an audience comes to once preferences are applied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    pub matched: usize,
    pub eligible: usize,
    pub opted_out: usize,
    pub do_not_contact: usize,
    pub no_address: usize,
    pub same_address: usize,
    pub bounced: usize,
}

impl Tally {
    pub fn to_json(&self) -> Value {
        json!({
            "matched": self.matched, "recipients": self.eligible,
            "excluded": {"optedOut": self.opted_out, "doNotContact": self.do_not_contact,
                         "noAddress": self.no_address, "sameAddress": self.same_address,
                         "bounced": self.bounced},
        })
    }
}

/// Walks the audience in pages of clients (id order), as the reader may see them.
fn walk(
    c: &mut DbConn,
    org: &str,
    only_assigned: Option<&str>,
    audience: &Audience,
    mut f: impl FnMut(&mut DbConn, Vec<(String, Option<String>)>) -> AppResult<()>,
) -> AppResult<usize> {
    let mut seen = 0usize;
    match audience {
        Audience::Clients(ids) => {
            for chunk in ids.chunks(1000) {
                let mut q = clients::table
                    .filter(clients::organization_id.eq(org))
                    .filter(clients::id.eq_any(chunk))
                    .filter(clients::deleted_at.is_null())
                    .select((clients::id, clients::email))
                    .into_boxed();
                if let Some(u) = only_assigned {
                    q = q.filter(clients::assigned_to.eq(u.to_string()));
                }
                let rows: Vec<(String, Option<String>)> = q.order(clients::id.asc()).load(c)?;
                seen += rows.len();
                f(c, rows)?;
            }
        }
        Audience::Query(query) => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| {
                AppError::invalid(
                    "audience.query",
                    "Use a client list query like filter[status]=customer.",
                )
            })?;
            if pairs
                .iter()
                .any(|(k, _)| matches!(k.as_str(), "sort" | "cursor" | "limit" | "count"))
            {
                return Err(AppError::invalid(
                    "audience.query",
                    "Filters only: the audience has no order, page or limit.",
                ));
            }
            let defs = crate::domain::custom_fields::store::list(c, org, "client", false)?;
            let mut params = crate::domain::clients::query::parse_params(c, org, &defs, &pairs)?;
            params.only_assigned_to = only_assigned.map(str::to_string);
            let mut after: Option<String> = None;
            loop {
                let rows = crate::domain::clients::query::audience_page(
                    c,
                    org,
                    &params,
                    after.as_deref(),
                    1000,
                )?;
                let Some(last) = rows.last() else { break };
                after = Some(last.0.clone());
                seen += rows.len();
                if seen > MAX_RECIPIENTS {
                    return Err(AppError::invalid(
                        "audience",
                        &format!(
                            "Send to at most {MAX_RECIPIENTS} clients at once; narrow the filters."
                        ),
                    ));
                }
                f(c, rows)?;
            }
        }
    }
    Ok(seen)
}

/// Sorts a page of the audience into recipients and exclusions.
fn sort_out(
    c: &mut DbConn,
    org: &str,
    rows: Vec<(String, Option<String>)>,
    addresses: &mut HashSet<String>,
    tally: &mut Tally,
) -> AppResult<Vec<(String, String, Option<&'static str>)>> {
    let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    let prefs = crate::domain::preferences::load_many(c, org, &ids)?;
    let emails: Vec<String> = rows
        .iter()
        .filter_map(|(_, e)| e.as_deref().map(|e| e.trim().to_lowercase()))
        .collect();
    let bounced = crate::domain::mail::bounced(c, org, &emails)?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, email) in rows {
        tally.matched += 1;
        let address = email.unwrap_or_default().trim().to_lowercase();
        let p = prefs.get(&id);
        let reason = if p.is_some_and(|p| p.do_not_contact) {
            tally.do_not_contact += 1;
            Some("Asked not to be contacted")
        } else if p
            .and_then(|p| p.channels.get("email"))
            .is_some_and(|ch| ch.status == "opt_out")
        {
            tally.opted_out += 1;
            Some("Opted out of e-mail")
        } else if address.is_empty() {
            tally.no_address += 1;
            Some("No e-mail address")
        } else if bounced.contains_key(&address) {
            tally.bounced += 1;
            Some("The address bounced before")
        } else if !addresses.insert(address.clone()) {
            tally.same_address += 1;
            Some("Another client with the same address gets it")
        } else {
            tally.eligible += 1;
            None
        };
        out.push((id, address, reason));
    }
    Ok(out)
}

#[derive(Insertable)]
#[diesel(table_name = send_recipients)]
struct Recipient {
    id: String,
    send_id: String,
    organization_id: String,
    client_id: String,
    address: String,
    status: &'static str,
    reason: Option<&'static str>,
}

/// Multi-row inserts, each backend's own (a multi-row insert compiles per connection type).
// why: 7 values a row; 500 rows stay under SQLite's 32,766 bound parameters.
fn insert_recipients(c: &mut DbConn, rows: &[Recipient]) -> AppResult<()> {
    for chunk in rows.chunks(500) {
        match c {
            DbConn::Sqlite(c) => diesel::insert_into(send_recipients::table)
                .values(chunk)
                .execute(c)?,
            DbConn::Postgresql(c) => diesel::insert_into(send_recipients::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    Ok(())
}

/// How many would receive it, and how many are left out and why.
pub fn preview(
    c: &mut DbConn,
    org: &str,
    only_assigned: Option<&str>,
    audience: &Audience,
) -> AppResult<Tally> {
    let mut tally = Tally::default();
    let mut addresses = HashSet::new();
    walk(c, org, only_assigned, audience, |c, rows| {
        sort_out(c, org, rows, &mut addresses, &mut tally).map(drop)
    })?;
    Ok(tally)
}

pub struct NewSend {
    pub name: String,
    pub template_id: String,
    pub mailbox_id: String,
    pub audience: Audience,
    pub per_minute: i32,
    pub scheduled_at: Option<NaiveDateTime>,
}

/// Creates the send with every recipient row; it starts at `scheduled_at` (now when unset).
pub fn create(
    c: &mut DbConn,
    ctx: &AuditContext,
    only_assigned: Option<&str>,
    input: NewSend,
) -> AppResult<(SendRow, Tally)> {
    crate::db::transaction(c, |c| {
        let org = ctx.org_id.clone();
        let mut errors = Vec::new();
        let name = input.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            errors.push(FieldError::new(
                "name",
                "Name the send (at most 100 characters).",
            ));
        }
        if !(1..=10_000).contains(&input.per_minute) {
            errors.push(FieldError::new(
                "perMinute",
                "Send from 1 to 10000 messages a minute.",
            ));
        }
        let template =
            crate::domain::templates::get(c, &org, &input.template_id).map_err(|_| {
                AppError::invalid("templateId", "Choose one of the organization's templates.")
            })?;
        if template.kind != "email" {
            return Err(AppError::invalid(
                "templateId",
                "That is a short-message template; a bulk send needs an e-mail one.",
            ));
        }
        let mailbox =
            crate::domain::mail::mailbox(c, &org, ctx.actor_user_id.as_deref(), &input.mailbox_id)
                .map_err(|_| {
                    AppError::invalid("mailboxId", "Choose one of your mailboxes or a shared one.")
                })?;
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The send was not created.".into(),
                errors,
            ));
        }
        let at = now();
        let row = SendRow {
            id: new_id(),
            organization_id: org.clone(),
            name,
            template_id: Some(template.id.clone()),
            template_version: template.version,
            subject: template.subject.clone(),
            body: template.body.clone(),
            mailbox_id: Some(mailbox.id.clone()),
            created_by: ctx.actor_user_id.clone(),
            audience: input.audience.to_json().to_string(),
            status: "scheduled".into(),
            per_minute: input.per_minute,
            scheduled_at: input.scheduled_at.unwrap_or(at),
            total: 0,
            excluded: 0,
            window_started_at: at,
            window_count: 0,
            created_at: at,
            updated_at: at,
        };
        diesel::insert_into(sends::table).values(&row).execute(c)?;
        let mut tally = Tally::default();
        let mut addresses = HashSet::new();
        walk(c, &org, only_assigned, &input.audience, |c, rows| {
            let sorted = sort_out(c, &org, rows, &mut addresses, &mut tally)?;
            let values: Vec<Recipient> = sorted
                .into_iter()
                .map(|(client, address, reason)| Recipient {
                    id: new_id(),
                    send_id: row.id.clone(),
                    organization_id: org.clone(),
                    client_id: client,
                    address,
                    status: if reason.is_some() {
                        "excluded"
                    } else {
                        "waiting"
                    },
                    reason,
                })
                .collect();
            insert_recipients(c, &values)?;
            Ok(())
        })?;
        if tally.eligible == 0 {
            return Err(AppError::invalid(
                "audience",
                "Nobody in this audience can be written to.",
            ));
        }
        diesel::update(sends::table.find(&row.id))
            .set((
                sends::total.eq(tally.eligible as i32),
                sends::excluded.eq((tally.matched - tally.eligible) as i32),
            ))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "send.create",
            "send",
            Some(&row.id),
            json!({"name": row.name, "recipients": tally.eligible, "template": template.name}),
        )?;
        let row = SendRow {
            total: tally.eligible as i32,
            excluded: (tally.matched - tally.eligible) as i32,
            ..row
        };
        Ok((row, tally))
    })
}

pub fn list(c: &mut DbConn, org: &str) -> AppResult<Vec<SendRow>> {
    Ok(sends::table
        .filter(sends::organization_id.eq(org))
        .select(SendRow::as_select())
        .order(sends::created_at.desc())
        .limit(200)
        .load(c)?)
}

pub fn get(c: &mut DbConn, org: &str, id: &str) -> AppResult<SendRow> {
    sends::table
        .filter(sends::organization_id.eq(org))
        .filter(sends::id.eq(id))
        .select(SendRow::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// Pause, resume or cancel.
pub fn act(c: &mut DbConn, ctx: &AuditContext, id: &str, action: &str) -> AppResult<SendRow> {
    crate::db::transaction(c, |c| {
        let row = get(c, &ctx.org_id, id)?;
        let next = match (action, row.status.as_str()) {
            ("pause", "scheduled" | "running") => "paused",
            ("resume", "paused") => "running",
            ("cancel", "scheduled" | "running" | "paused") => "cancelled",
            _ => {
                return Err(AppError::Conflict(format!(
                    "A {} send cannot be {}d.",
                    row.status,
                    action.trim_end_matches('e')
                )))
            }
        };
        diesel::update(sends::table.find(&row.id))
            .set((sends::status.eq(next), sends::updated_at.eq(now())))
            .execute(c)?;
        if next == "cancelled" {
            diesel::update(
                send_recipients::table
                    .filter(send_recipients::send_id.eq(&row.id))
                    .filter(send_recipients::status.eq("waiting")),
            )
            .set(send_recipients::status.eq("cancelled"))
            .execute(c)?;
        }
        audit::record(
            c,
            ctx,
            &format!("send.{action}"),
            "send",
            Some(&row.id),
            json!({}),
        )?;
        get(c, &ctx.org_id, id)
    })
}

/// The send's figures: recipients by state, and opens, clicks, bounces, unsubscribes, each
/// counted in SQL; with `over_time`, the same hour by hour.
pub fn report(c: &mut DbConn, org: &str, id: &str) -> AppResult<Value> {
    let row = get(c, org, id)?;
    #[derive(QueryableByName)]
    struct StateCount {
        #[diesel(sql_type = diesel::sql_types::Text)]
        recipient: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        message: Option<String>,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let states: Vec<(String, Option<String>, i64)> = diesel::sql_query(
        "SELECT r.status AS recipient, m.status AS message, COUNT(*) AS n \
         FROM send_recipients r LEFT JOIN mail_messages m ON m.id = r.mail_message_id \
         WHERE r.send_id = $1 GROUP BY r.status, m.status",
    )
    .bind::<diesel::sql_types::Text, _>(&row.id)
    .load::<StateCount>(c)?
    .into_iter()
    .map(|s| (s.recipient, s.message, s.n))
    .collect();
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for (r, m, n) in &states {
        let key = match (r.as_str(), m.as_deref()) {
            ("handed", Some("sent")) => "delivered",
            ("handed", Some("bounced")) => "bounced",
            ("handed", Some("failed" | "refused")) => "failed",
            ("handed", Some("uncertain")) => "uncertain",
            ("handed", _) => "sending",
            (other, _) => match other {
                "waiting" => "waiting",
                "excluded" => "excluded",
                "cancelled" => "cancelled",
                _ => "failed",
            },
        };
        *counts.entry(key).or_default() += n;
    }
    let mut count_of = |col: &str| -> AppResult<i64> {
        let q = send_recipients::table
            .filter(send_recipients::send_id.eq(&row.id))
            .into_boxed();
        let q = match col {
            "opened" => q.filter(send_recipients::opened_at.is_not_null()),
            "clicked" => q.filter(send_recipients::clicked_at.is_not_null()),
            "bounced" => q.filter(send_recipients::bounced_at.is_not_null()),
            _ => q.filter(send_recipients::unsubscribed_at.is_not_null()),
        };
        Ok(q.count().get_result(c)?)
    };
    let (opened, clicked, unsubscribed, bounced) = (
        count_of("opened")?,
        count_of("clicked")?,
        count_of("unsubscribed")?,
        count_of("bounced")?,
    );
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    Ok(json!({
        "id": row.id, "name": row.name, "status": row.status, "templateId": row.template_id,
        "templateVersion": row.template_version, "mailboxId": row.mailbox_id,
        "audience": serde_json::from_str::<Value>(&row.audience).unwrap_or(Value::Null),
        "perMinute": row.per_minute, "scheduledAt": row.scheduled_at.and_utc().to_rfc3339(),
        "recipients": row.total, "excluded": row.excluded,
        "waiting": n("waiting"), "sending": n("sending"),
        // A message that bounced was delivered to the sending server first.
        "delivered": n("delivered") + n("bounced"),
        "failed": n("failed"), "uncertain": n("uncertain"), "cancelled": n("cancelled"),
        "opened": opened, "clicked": clicked, "unsubscribed": unsubscribed, "bounced": bounced,
        "createdAt": row.created_at.and_utc().to_rfc3339(),
    }))
}

/// Hour buckets kept in a report's timeline (three weeks).
const MAX_HOURS: usize = 504;

#[derive(QueryableByName)]
struct HourCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    hour: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Delivered, opened, clicked and bounced per hour (UTC), oldest first, grouped in SQL.
pub fn over_time(c: &mut DbConn, org: &str, id: &str) -> AppResult<Vec<Value>> {
    let row = get(c, org, id)?;
    let pg = matches!(c, DbConn::Postgresql(_));
    let hour = |col: &str| {
        if pg {
            format!("to_char(date_trunc('hour', {col}), 'YYYY-MM-DD HH24:00')")
        } else {
            format!("strftime('%Y-%m-%d %H:00', {col})")
        }
    };
    let queries = [
        (
            "delivered",
            format!(
                "SELECT {} AS hour, COUNT(*) AS n FROM send_recipients r \
                 JOIN mail_messages m ON m.id = r.mail_message_id \
                 WHERE r.send_id = $1 AND m.status IN ('sent', 'bounced') GROUP BY 1",
                hour("m.updated_at")
            ),
        ),
        (
            "opened",
            format!(
                "SELECT {} AS hour, COUNT(*) AS n FROM send_recipients r \
                 WHERE r.send_id = $1 AND r.opened_at IS NOT NULL GROUP BY 1",
                hour("r.opened_at")
            ),
        ),
        (
            "clicked",
            format!(
                "SELECT {} AS hour, COUNT(*) AS n FROM send_recipients r \
                 WHERE r.send_id = $1 AND r.clicked_at IS NOT NULL GROUP BY 1",
                hour("r.clicked_at")
            ),
        ),
        (
            "bounced",
            format!(
                "SELECT {} AS hour, COUNT(*) AS n FROM send_recipients r \
                 WHERE r.send_id = $1 AND r.bounced_at IS NOT NULL GROUP BY 1",
                hour("r.bounced_at")
            ),
        ),
    ];
    let mut hours: std::collections::BTreeMap<String, [i64; 4]> = Default::default();
    for (i, (_, sql)) in queries.iter().enumerate() {
        let rows: Vec<HourCount> = diesel::sql_query(sql.as_str())
            .bind::<diesel::sql_types::Text, _>(&row.id)
            .load(c)?;
        for r in rows {
            hours.entry(r.hour).or_default()[i] += r.n;
        }
    }
    let skip = hours.len().saturating_sub(MAX_HOURS);
    Ok(hours
        .into_iter()
        .skip(skip)
        .map(|(h, n)| {
            json!({"hour": h, "delivered": n[0], "opened": n[1], "clicked": n[2], "bounced": n[3]})
        })
        .collect())
}

/// One page of a send's recipients with their state; `state` narrows to one of the report's
/// figures (delivered, failed, excluded, opened, clicked, unsubscribed, waiting).
pub fn recipients(
    c: &mut DbConn,
    org: &str,
    id: &str,
    state: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<Vec<Value>> {
    let row = get(c, org, id)?;
    let mut q = send_recipients::table
        .inner_join(clients::table.on(clients::id.eq(send_recipients::client_id)))
        .left_join(
            mail_messages::table.on(mail_messages::id
                .nullable()
                .eq(send_recipients::mail_message_id)),
        )
        .filter(send_recipients::send_id.eq(&row.id))
        .select((
            send_recipients::id,
            clients::id,
            clients::display_name,
            send_recipients::address,
            send_recipients::status,
            send_recipients::reason,
            mail_messages::status.nullable(),
            mail_messages::error.nullable(),
            send_recipients::opened_at,
            send_recipients::clicked_at,
            send_recipients::unsubscribed_at,
            send_recipients::bounced_at,
        ))
        .order(send_recipients::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(send_recipients::id.gt(a.to_string()));
    }
    q = match state {
        None => q,
        Some("delivered") => q.filter(mail_messages::status.eq_any(["sent", "bounced"])),
        Some("failed") => q.filter(mail_messages::status.eq_any(["failed", "refused"])),
        Some("opened") => q.filter(send_recipients::opened_at.is_not_null()),
        Some("clicked") => q.filter(send_recipients::clicked_at.is_not_null()),
        Some("unsubscribed") => q.filter(send_recipients::unsubscribed_at.is_not_null()),
        Some("bounced") => q.filter(send_recipients::bounced_at.is_not_null()),
        Some("uncertain") => q.filter(mail_messages::status.eq("uncertain")),
        Some(s @ ("excluded" | "waiting" | "cancelled")) => {
            q.filter(send_recipients::status.eq(s.to_string()))
        }
        Some(_) => return Err(AppError::invalid(
            "state",
            "Use delivered, failed, excluded, opened, clicked, bounced, unsubscribed, uncertain, waiting or cancelled.",
        )),
    };
    type R = (
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
    );
    let rows: Vec<R> = q.load(c)?;
    let t = |v: Option<NaiveDateTime>| v.map(|t| t.and_utc().to_rfc3339());
    Ok(rows
        .into_iter()
        .map(
            |(rid, cid, name, address, status, reason, mstatus, error, o, cl, u, b)| {
                json!({"id": rid, "clientId": cid, "client": name, "address": address,
                   "state": match (status.as_str(), mstatus.as_deref()) {
                       ("handed", Some("sent")) => "delivered",
                       ("handed", Some(s)) => s,
                       (s, _) => s,
                   }.to_string(),
                   "reason": reason.or(error), "openedAt": t(o), "clickedAt": t(cl),
                   "unsubscribedAt": t(u), "bouncedAt": t(b)})
            },
        )
        .collect())
}

/// Links in a bulk message: where they point and the tags that make them trustworthy.
pub struct Links<'a> {
    pub base: &'a str,
    pub key: &'a Key,
}

impl Links<'_> {
    pub fn unsubscribe(&self, rid: &str) -> String {
        format!("{}/u/{rid}/{}", self.base, self.key.tag("unsubscribe", rid))
    }
    pub fn open(&self, rid: &str) -> String {
        format!("{}/t/o/{rid}/{}", self.base, self.key.tag("open", rid))
    }
    pub fn click(&self, rid: &str, url: &str) -> String {
        let tag = self.key.tag("click", &format!("{rid}|{url}"));
        let q = serde_urlencoded::to_string([("u", url)]).unwrap_or_default();
        format!("{}/t/c/{rid}/{tag}?{q}", self.base)
    }
}

/// Escapes text for HTML (the bulk message's HTML part, the unsubscribe page).
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTML part: the text, escaped, with its web links through the click tracker and the
/// open pixel at the end (plain links and no pixel when the organization tracks nothing).
fn html_of(text: &str, rid: &str, links: &Links, track: bool) -> String {
    let mut out = String::from(
        "<!doctype html><html><body><div style=\"font-family:sans-serif;white-space:pre-wrap\">",
    );
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("<br>");
        }
        for (j, word) in line.split(' ').enumerate() {
            if j > 0 {
                out.push(' ');
            }
            let trimmed = word.trim_end_matches(['.', ',', ')', ';', '!', '?']);
            if (trimmed.starts_with("https://") || trimmed.starts_with("http://"))
                && trimmed.len() > 8
            {
                let rest = &word[trimmed.len()..];
                let href = if track {
                    links.click(rid, trimmed)
                } else {
                    trimmed.to_string()
                };
                out.push_str(&format!(
                    "<a href=\"{}\">{}</a>{}",
                    escape(&href),
                    escape(trimmed),
                    escape(rest)
                ));
            } else {
                out.push_str(&escape(word));
            }
        }
    }
    out.push_str("</div>");
    if track {
        out.push_str(&format!(
            "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\">",
            escape(&links.open(rid))
        ));
    }
    out.push_str("</body></html>");
    out
}

/// Whether the organization tracks opens and clicks of its bulk sends.
pub fn tracking(c: &mut DbConn, org: &str) -> AppResult<bool> {
    use crate::db::schema::organizations;
    Ok(organizations::table
        .find(org)
        .select(organizations::mail_tracking)
        .first::<bool>(c)
        .optional()?
        .unwrap_or(false))
}

/// Switches open and click tracking for the organization's bulk sends (admins).
pub fn set_tracking(c: &mut DbConn, ctx: &AuditContext, on: bool) -> AppResult<()> {
    use crate::db::schema::organizations;
    crate::db::transaction(c, |c| {
        diesel::update(organizations::table.find(&ctx.org_id))
            .set(organizations::mail_tracking.eq(on))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "mail.tracking",
            "organization",
            Some(&ctx.org_id),
            json!({"tracking": on}),
        )?;
        Ok(())
    })
}

/// Starts what is due and hands waiting recipients of running sends to the mail queue, at
/// each send's rate. Returns how many messages were queued.
///
/// A template that names plugin merge fields (`client.plugins…`) has them computed before
/// the round's transaction, so the plugins' WebAssembly runs while no write is held.
pub fn hand_out(c: &mut DbConn, links: &Links, plugins: Option<&Runtime>) -> AppResult<usize> {
    let at = now();
    diesel::update(
        sends::table
            .filter(sends::status.eq("scheduled"))
            .filter(sends::scheduled_at.le(at)),
    )
    .set(sends::status.eq("running"))
    .execute(c)?;
    let running: Vec<SendRow> = sends::table
        .filter(sends::status.eq("running"))
        .select(SendRow::as_select())
        .load(c)?;
    let mut queued = 0;
    for send in running {
        // A send whose minute is used up has nothing to render this round, so its plugins
        // are not run for it.
        let budget = window(&send, at).2;
        let computed = match plugins {
            Some(runtime) if uses_plugins(&send) && budget > 0 => {
                plugin_values(c, runtime, &send, budget)?
            }
            _ => HashMap::new(),
        };
        queued += crate::db::transaction(c, |c| hand_out_one(c, &send, links, at, &computed))?;
    }
    Ok(queued)
}

fn uses_plugins(send: &SendRow) -> bool {
    send.subject.contains("plugins") || send.body.contains("plugins")
}

/// The plugin merge fields of the clients next in line, by client id. The round reads the
/// same first waiting recipients again inside its transaction, so each is found here; one
/// that is not (a recipient added since) renders its plugin fields empty.
fn plugin_values(
    c: &mut DbConn,
    runtime: &Runtime,
    send: &SendRow,
    budget: i64,
) -> AppResult<HashMap<String, Value>> {
    let ids: Vec<String> = send_recipients::table
        .filter(send_recipients::send_id.eq(&send.id))
        .filter(send_recipients::status.eq("waiting"))
        .select(send_recipients::client_id)
        .order(send_recipients::id.asc())
        .limit(budget)
        .load(c)?;
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<ClientRow> = clients::table
        .filter(clients::id.eq_any(&ids))
        .filter(clients::organization_id.eq(&send.organization_id))
        .filter(clients::deleted_at.is_null())
        .select(ClientRow::as_select())
        .load(c)?;
    let ext = crate::plugins::PluginFieldTypes::load(c, runtime, &send.organization_id)?;
    let out = rows
        .iter()
        .map(|row| {
            let values = ext.computed(&rapport_plugin_sdk::ComputeRequest::Client(
                crate::plugins::client_snapshot(row),
            ));
            (
                row.id.clone(),
                crate::domain::templates::plugin_fields(&values),
            )
        })
        .collect();
    crate::plugins::settle(c, &send.organization_id, &ext.records())?;
    Ok(out)
}

/// The send's current minute: when it started, how many it has handed out, and how many it
/// may hand out now. The throttle counts in the send's own row (constant time however large
/// the send).
fn window(send: &SendRow, at: NaiveDateTime) -> (NaiveDateTime, i32, i64) {
    let (start, used) = if at - send.window_started_at >= Duration::minutes(1) {
        (at, 0)
    } else {
        (send.window_started_at, send.window_count)
    };
    let budget = i64::from(send.per_minute - used).clamp(0, HAND_OUT_BATCH);
    (start, used, budget)
}

fn hand_out_one(
    c: &mut DbConn,
    send: &SendRow,
    links: &Links,
    at: NaiveDateTime,
    computed: &HashMap<String, Value>,
) -> AppResult<usize> {
    let (window_start, used, budget) = window(send, at);
    if budget == 0 {
        return Ok(0);
    }
    let waiting: Vec<(String, String, String)> = send_recipients::table
        .filter(send_recipients::send_id.eq(&send.id))
        .filter(send_recipients::status.eq("waiting"))
        .select((
            send_recipients::id,
            send_recipients::client_id,
            send_recipients::address,
        ))
        .order(send_recipients::id.asc())
        .limit(budget)
        .load(c)?;
    if waiting.is_empty() {
        diesel::update(sends::table.find(&send.id))
            .set((sends::status.eq("done"), sends::updated_at.eq(at)))
            .execute(c)?;
        return Ok(0);
    }
    let mailbox = match send
        .mailbox_id
        .as_deref()
        .map(|id| crate::domain::mail::find_mailbox(c, id))
        .transpose()?
        .flatten()
    {
        Some(m) => m,
        None => {
            diesel::update(sends::table.find(&send.id))
                .set(sends::status.eq("paused"))
                .execute(c)?;
            return Ok(0);
        }
    };
    let sender_name = match &send.created_by {
        Some(u) => crate::domain::orgs::store::find_member(c, &send.organization_id, u)?
            .map(|m| m.user.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let ids: Vec<String> = waiting.iter().map(|(_, cid, _)| cid.clone()).collect();
    let rows: Vec<ClientRow> = clients::table
        .filter(clients::id.eq_any(&ids))
        .filter(clients::deleted_at.is_null())
        .select(ClientRow::as_select())
        .load(c)?;
    let by_id: HashMap<String, ClientRow> = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
    let prefs = crate::domain::preferences::load_many(c, &send.organization_id, &ids)?;
    let addresses: Vec<String> = waiting.iter().map(|(_, _, a)| a.clone()).collect();
    let bounced = crate::domain::mail::bounced(c, &send.organization_id, &addresses)?;
    let track = tracking(c, &send.organization_id)?;
    let domain = mailbox
        .address
        .rsplit('@')
        .next()
        .unwrap_or("rapport.invalid")
        .to_string();
    let mut queued = 0;
    for (rid, cid, address) in waiting {
        let p = prefs.get(&cid);
        let gone = !by_id.contains_key(&cid);
        let objects = p.is_some_and(|p| p.objection("email").is_some());
        let bounce = bounced.contains_key(&address);
        if gone || objects || bounce {
            diesel::update(send_recipients::table.find(&rid))
                .set((
                    send_recipients::status.eq("excluded"),
                    send_recipients::reason.eq(if gone {
                        "The client was deleted"
                    } else if objects {
                        "Opted out before it was sent"
                    } else {
                        "The address bounced before it was sent"
                    }),
                ))
                .execute(c)?;
            continue;
        }
        let unsubscribe = links.unsubscribe(&rid);
        let mut client = crate::domain::templates::client_value(&by_id[&cid]);
        client["plugins"] = computed.get(&cid).cloned().unwrap_or_else(|| json!({}));
        let data =
            crate::domain::templates::data(client, &sender_name, &mailbox.address, &unsubscribe);
        let (subject, mut text) =
            match crate::domain::templates::render(&send.subject, &send.body, &data) {
                Ok(r) => r,
                Err(e) => {
                    let why = e
                        .into_iter()
                        .map(|e| e.message)
                        .collect::<Vec<_>>()
                        .join(" ");
                    diesel::update(send_recipients::table.find(&rid))
                        .set((
                            send_recipients::status.eq("failed"),
                            send_recipients::reason.eq(why),
                        ))
                        .execute(c)?;
                    continue;
                }
            };
        if !text.contains(&unsubscribe) {
            text.push_str(&format!(
                "\n\n--\nTo stop receiving these e-mails: {unsubscribe}\n"
            ));
        }
        let message_id = format!("<{}@{}>", uuid::Uuid::now_v7().simple(), domain);
        let msg = MessageRow {
            id: new_id(),
            organization_id: send.organization_id.clone(),
            mailbox_id: Some(mailbox.id.clone()),
            user_id: send.created_by.clone(),
            direction: "outbound".into(),
            status: "queued".into(),
            thread_id: message_id.clone(),
            message_id,
            in_reply_to: None,
            from_address: mailbox.address.clone(),
            from_name: sender_name.clone(),
            to_addresses: address,
            cc_addresses: String::new(),
            bcc_addresses: String::new(),
            subject,
            body_html: Some(html_of(&text, &rid, links, track)),
            body_text: text,
            matched: false,
            error: None,
            attempts: 0,
            next_attempt_at: Some(at),
            occurred_at: at,
            created_at: at,
            updated_at: at,
            list_unsubscribe: Some(unsubscribe),
            opportunity_id: None,
            latest: true,
        };
        diesel::insert_into(mail_messages::table)
            .values(&msg)
            .execute(c)?;
        crate::domain::mail::link_client(c, &msg, &cid)?;
        diesel::update(send_recipients::table.find(&rid))
            .set((
                send_recipients::status.eq("handed"),
                send_recipients::mail_message_id.eq(&msg.id),
            ))
            .execute(c)?;
        queued += 1;
    }
    diesel::update(sends::table.find(&send.id))
        .set((
            sends::window_started_at.eq(window_start),
            sends::window_count.eq(used + queued as i32),
        ))
        .execute(c)?;
    Ok(queued)
}

/// The recipient behind a signed link, or 404 for a tag that does not match.
fn recipient(
    c: &mut DbConn,
    key: &Key,
    purpose: &str,
    rid: &str,
    signed: &str,
    tag: &str,
) -> AppResult<(String, String, String)> {
    if !key.verify(purpose, signed, tag) {
        return Err(AppError::NotFound);
    }
    send_recipients::table
        .find(rid)
        .select((
            send_recipients::organization_id,
            send_recipients::client_id,
            send_recipients::send_id,
        ))
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// The unsubscribe link: the client's e-mail preference becomes opt-out at once.
pub fn unsubscribe(c: &mut DbConn, key: &Key, rid: &str, tag: &str) -> AppResult<String> {
    crate::db::transaction(c, |c| {
        let (org, client, _) = recipient(c, key, "unsubscribe", rid, rid, tag)?;
        let ctx = AuditContext {
            org_id: org.clone(),
            actor_user_id: None,
            actor_label: "unsubscribe link".into(),
            ip: "unsubscribe".into(),
            request_id: rid.into(),
            import_batch: None,
        };
        let everyone = crate::domain::clients::service::Access {
            user_id: String::new(),
            oversee: true,
            read_sensitive: false,
            write_sensitive: false,
            create_tags: false,
        };
        let mut body = serde_json::Map::new();
        body.insert(
            "channels".into(),
            json!({"email": {"status": "opt_out", "source": "unsubscribe link"}}),
        );
        match crate::domain::preferences::update(c, &ctx, &everyone, &client, &body) {
            Ok(_) | Err(AppError::NotFound) => {}
            Err(e) => return Err(e),
        }
        diesel::update(
            send_recipients::table
                .find(rid)
                .filter(send_recipients::unsubscribed_at.is_null()),
        )
        .set(send_recipients::unsubscribed_at.eq(Some(now())))
        .execute(c)?;
        Ok(crate::domain::orgs::store::find_org(c, &org)?
            .map(|o| o.name)
            .unwrap_or_default())
    })
}

/// The open pixel was loaded.
pub fn opened(c: &mut DbConn, key: &Key, rid: &str, tag: &str) -> AppResult<()> {
    let (org, _, _) = recipient(c, key, "open", rid, rid, tag)?;
    if !tracking(c, &org)? {
        return Ok(());
    }
    diesel::update(
        send_recipients::table
            .find(rid)
            .filter(send_recipients::opened_at.is_null()),
    )
    .set(send_recipients::opened_at.eq(Some(now())))
    .execute(c)?;
    on_timeline(c, rid, "opened", &[])?;
    Ok(())
}

/// Shows what became of a bulk message on the client's timeline entry for it (its outcome:
/// opened, clicked, bounced), never downgrading a later state to an earlier one.
pub fn on_timeline(c: &mut DbConn, rid: &str, outcome: &str, over: &[&str]) -> AppResult<()> {
    use crate::db::schema::{interactions, mail_message_clients};
    let found: Option<(Option<String>, String)> = send_recipients::table
        .find(rid)
        .select((send_recipients::mail_message_id, send_recipients::client_id))
        .first(c)
        .optional()?;
    let Some((Some(message), client)) = found else {
        return Ok(());
    };
    let entry: Option<Option<String>> = mail_message_clients::table
        .filter(mail_message_clients::mail_message_id.eq(&message))
        .filter(mail_message_clients::client_id.eq(&client))
        .select(mail_message_clients::interaction_id)
        .first(c)
        .optional()?;
    if let Some(Some(id)) = entry {
        let over: Vec<String> = over.iter().map(|s| s.to_string()).collect();
        diesel::update(
            interactions::table.filter(interactions::id.eq(id)).filter(
                interactions::outcome
                    .is_null()
                    .or(interactions::outcome.eq_any(over)),
            ),
        )
        .set(interactions::outcome.eq(Some(outcome)))
        .execute(c)?;
    }
    Ok(())
}

/// A tracked link was followed; answers where it points. A click counts as an open too
/// (images are often blocked).
pub fn clicked(c: &mut DbConn, key: &Key, rid: &str, tag: &str, url: &str) -> AppResult<String> {
    let (org, _, _) = recipient(c, key, "click", rid, &format!("{rid}|{url}"), tag)?;
    // Links in messages already out keep working when tracking is switched off.
    if !tracking(c, &org)? {
        return Ok(url.to_string());
    }
    let at = Some(now());
    diesel::update(
        send_recipients::table
            .find(rid)
            .filter(send_recipients::clicked_at.is_null()),
    )
    .set(send_recipients::clicked_at.eq(at))
    .execute(c)?;
    diesel::update(
        send_recipients::table
            .find(rid)
            .filter(send_recipients::opened_at.is_null()),
    )
    .set(send_recipients::opened_at.eq(at))
    .execute(c)?;
    on_timeline(c, rid, "clicked", &["opened"])?;
    Ok(url.to_string())
}
