//! Webhooks: an organization's subscriptions (a URL and the event types it wants) and the
//! deliveries owed to them. Events are written in the transaction of the change that makes
//! them (every audited change passes [`emit`]), so a delivery exists exactly when its change
//! committed; a worker sends them afterwards, signed as the Standard Webhooks specification
//! says (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<HMAC-SHA256>`), retried
//! with backoff for three days, in order per record. Targets that resolve to loopback,
//! private, link-local or metadata addresses are refused (at save time and again at send
//! time) unless the admin allowed that subscription's private host for development.

use std::net::{IpAddr, ToSocketAddrs};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::db::schema::{webhook_deliveries, webhook_subscriptions};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::error::{AppError, AppResult, FieldError};
use crate::integrations::secret::Key;

/// Event types a subscription may ask for (`*` is every one).
pub const EVENTS: &[(&str, &str)] = &[
    ("client.created", "A client was created"),
    (
        "client.updated",
        "A client changed (fields, status, owner, tags, preferences)",
    ),
    (
        "client.deleted",
        "A client was moved to the trash or purged",
    ),
    ("client.restored", "A client came back from the trash"),
    ("client.merged", "Duplicates were merged"),
    ("deal.created", "A deal was created"),
    ("deal.updated", "A deal changed"),
    ("deal.stage_changed", "A deal moved to another stage"),
    ("deal.won", "A deal was won"),
    ("deal.lost", "A deal was lost"),
    ("deal.deleted", "A deal was deleted"),
    (
        "interaction.created",
        "A call, meeting, note, e-mail or task was logged",
    ),
    ("interaction.updated", "An interaction changed"),
    ("interaction.deleted", "An interaction was deleted"),
    ("quote.created", "A quote was made"),
    (
        "quote.status_changed",
        "A quote was sent, accepted or declined",
    ),
    ("contract.created", "A contract was made"),
    ("contract.renewed", "A contract was renewed"),
    ("import.finished", "An import finished"),
    ("segment.entered", "A client entered a segment"),
    ("segment.left", "A client left a segment"),
];

/// How an event type reads to a person (the type itself is for integrators).
pub fn event_label(event: &str) -> &'static str {
    match event {
        "*" => "Every event",
        "webhook.test" => "Test event",
        e => EVENTS
            .iter()
            .find(|(k, _)| *k == e)
            .map(|(_, d)| *d)
            .unwrap_or("Other event"),
    }
}

/// A delivery's status as the subscription's page names it.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "pending" => "Waiting or retrying",
        "sending" => "Sending",
        "delivered" => "Delivered",
        "dead" => "Given up",
        _ => "Unknown",
    }
}

/// Subscriptions per organization.
pub const MAX_SUBSCRIPTIONS: i64 = 50;
/// How long a delivery is retried before it is given up.
pub const RETRY_FOR: Duration = Duration::days(3);
/// How long a worker holds a delivery it is sending.
const LEASE: Duration = Duration::minutes(2);
/// How long the previous secret still signs after a rotation.
pub const ROTATION_GRACE: Duration = Duration::hours(24);
/// Bytes of a receiver's answer kept with the delivery.
const EXCERPT: usize = 1000;

/// The event an audited change makes, if any: (event type, the record's kind).
pub fn event_of(action: &str, changes: &Value) -> Vec<&'static str> {
    let status_to = || {
        changes["status"]
            .as_array()
            .and_then(|a| a.get(1))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match action {
        "client.create" => vec!["client.created"],
        "client.update" | "client.status" | "client.assigned" | "client.tag" | "client.untag"
        | "client.preferences" | "client.relate" | "client.unrelate" => vec!["client.updated"],
        "client.delete" | "client.purge" => vec!["client.deleted"],
        "client.restore" => vec!["client.restored"],
        "client.merge" => vec!["client.merged"],
        "opportunity.create" => vec!["deal.created"],
        "opportunity.update" => vec!["deal.updated"],
        "opportunity.delete" => vec!["deal.deleted"],
        "opportunity.move" => match status_to().as_deref() {
            Some("won") => vec!["deal.stage_changed", "deal.won"],
            Some("lost") => vec!["deal.stage_changed", "deal.lost"],
            _ => vec!["deal.stage_changed"],
        },
        "interaction.create" => vec!["interaction.created"],
        "interaction.update" => vec!["interaction.updated"],
        "interaction.delete" => vec!["interaction.deleted"],
        "quote.create" => vec!["quote.created"],
        "quote.status" => vec!["quote.status_changed"],
        "contract.create" => vec!["contract.created"],
        "contract.renew" => vec!["contract.renewed"],
        "import.finish" => vec!["import.finished"],
        "segment.enter" => vec!["segment.entered"],
        "segment.leave" => vec!["segment.left"],
        _ => vec![],
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub organization_id: String,
    pub url: String,
    pub description: String,
    /// JSON array of event types, `["*"]` for all.
    pub events: String,
    /// Sealed `whsec_…`.
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<NaiveDateTime>,
    pub active: bool,
    pub allow_private: bool,
    pub disabled_reason: Option<String>,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl SubscriptionRow {
    pub fn event_list(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_default()
    }

    fn wants(&self, event: &str) -> bool {
        self.event_list().iter().any(|e| e == "*" || e == event)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "url": self.url, "description": self.description,
            "events": self.event_list(), "active": self.active,
            "allowPrivateHost": self.allow_private, "disabledReason": self.disabled_reason,
            "createdAt": self.created_at.and_utc().to_rfc3339(),
            "updatedAt": self.updated_at.and_utc().to_rfc3339(),
        })
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries, treat_none_as_default_value = false)]
pub struct DeliveryRow {
    /// The `webhook-id` header: the same on every attempt, so receivers can deduplicate.
    pub id: String,
    pub organization_id: String,
    pub subscription_id: String,
    pub event_type: String,
    /// Deliveries of one record go out in the order their changes committed.
    pub record_id: String,
    pub payload: String,
    /// pending (due at `next_attempt_at`), sending, delivered, dead
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub response_status: Option<i32>,
    pub response_excerpt: Option<String>,
    pub duration_ms: Option<i32>,
    pub error: Option<String>,
    pub created_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
}

impl DeliveryRow {
    pub fn to_json(&self) -> Value {
        let t = |v: Option<NaiveDateTime>| v.map(|t| t.and_utc().to_rfc3339());
        json!({
            "id": self.id, "subscriptionId": self.subscription_id, "type": self.event_type,
            "recordId": self.record_id, "status": self.status, "attempts": self.attempts,
            "nextAttemptAt": t(self.next_attempt_at), "responseStatus": self.response_status,
            "responseExcerpt": self.response_excerpt, "durationMs": self.duration_ms,
            "error": self.error, "createdAt": self.created_at.and_utc().to_rfc3339(),
            "deliveredAt": t(self.delivered_at),
            "payload": serde_json::from_str::<Value>(&self.payload).unwrap_or(Value::Null),
        })
    }
}

/// Writes the deliveries an audited change owes, in its transaction.
pub fn emit(
    c: &mut DbConn,
    org: &str,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
    changes: &Value,
) -> QueryResult<()> {
    let events = event_of(action, changes);
    if events.is_empty() {
        return Ok(());
    }
    let subs: Vec<SubscriptionRow> =
        crate::domain::memo::read(format!("webhook_subscriptions {org}"), || {
            webhook_subscriptions::table
                .filter(webhook_subscriptions::organization_id.eq(org))
                .filter(webhook_subscriptions::active.eq(true))
                .select(SubscriptionRow::as_select())
                .load(c)
        })?;
    if subs.is_empty() {
        return Ok(());
    }
    let at = now();
    for event in events {
        let data = json!({
            "object": match resource_type { "opportunity" => "deal", other => other },
            "id": resource_id, "changes": changes,
        });
        for s in subs.iter().filter(|s| s.wants(event)) {
            queue(c, s, event, resource_id.unwrap_or_default(), &data, at)?;
        }
    }
    Ok(())
}

fn queue(
    c: &mut DbConn,
    s: &SubscriptionRow,
    event: &str,
    record: &str,
    data: &Value,
    at: NaiveDateTime,
) -> QueryResult<DeliveryRow> {
    let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let payload = json!({
        "type": event,
        "timestamp": at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    });
    let row = DeliveryRow {
        id,
        organization_id: s.organization_id.clone(),
        subscription_id: s.id.clone(),
        event_type: event.to_string(),
        record_id: record.to_string(),
        payload: payload.to_string(),
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: Some(at),
        response_status: None,
        response_excerpt: None,
        duration_ms: None,
        error: None,
        created_at: at,
        delivered_at: None,
    };
    if let Some(row) = crate::domain::later::delivery(row.clone()) {
        diesel::insert_into(webhook_deliveries::table)
            .values(&row)
            .execute(c)?;
    }
    Ok(row)
}

/// Whether an address is one a webhook must not reach (this machine, the private network,
/// link-local and cloud metadata, multicast, unspecified).
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                // Carrier-grade NAT (100.64.0.0/10) and the IETF protocol block.
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| forbidden(IpAddr::V4(v4)))
        }
    }
}

/// Cloud metadata endpoints: never reachable, whatever the subscription allows.
fn metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..2] == [169, 254],
        IpAddr::V6(v6) => v6.segments()[0] == 0xfd00 && v6.segments()[7] == 0x0254,
    }
}

/// Checks a target URL and resolves it: the addresses it may be sent to, or why not.
pub fn resolve(url: &str, allow_private: bool) -> Result<(url::Url, Vec<IpAddr>), String> {
    let parsed = url::Url::parse(url)
        .map_err(|_| "Give a full URL, like https://example.com/hook.".to_string())?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err("Use an http or https URL.".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "Put no user name or password in the URL; the signature authenticates us.".into(),
        );
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| "The URL has no host.".to_string())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let ips: Vec<IpAddr> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("{host} does not resolve: {e}"))?
        .map(|a| a.ip())
        .collect();
    if ips.is_empty() {
        return Err(format!("{host} does not resolve."));
    }
    if let Some(ip) = ips.iter().find(|ip| metadata(**ip)) {
        return Err(format!(
            "{host} resolves to {ip}, a link-local (metadata) address."
        ));
    }
    if !allow_private {
        if let Some(ip) = ips.iter().find(|ip| forbidden(**ip)) {
            return Err(format!(
                "{host} resolves to {ip}, an address on this machine or a private network. \
                 Allow the private host explicitly (for development) to use it."
            ));
        }
    }
    Ok((parsed, ips))
}

/// What a subscription is made of.
pub struct SubscriptionInput {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
    pub allow_private: Option<bool>,
}

fn new_secret() -> String {
    let mut bytes = [0u8; 24];
    openssl::rand::rand_bytes(&mut bytes).unwrap_or_default();
    format!("whsec_{}", openssl::base64::encode_block(&bytes))
}

fn check(
    input: &SubscriptionInput,
    current: Option<&SubscriptionRow>,
) -> Result<(String, String, Vec<String>, bool), Vec<FieldError>> {
    let mut errors = Vec::new();
    let url = input
        .url
        .clone()
        .or_else(|| current.map(|c| c.url.clone()))
        .unwrap_or_default()
        .trim()
        .to_string();
    let allow = input
        .allow_private
        .or(current.map(|c| c.allow_private))
        .unwrap_or(false);
    if url.is_empty() {
        errors.push(FieldError::new("url", "Give the URL to deliver to."));
    } else if url.len() > 2000 {
        errors.push(FieldError::new("url", "Use at most 2000 characters."));
    } else if let Err(why) = resolve(&url, allow) {
        errors.push(FieldError::new("url", why));
    }
    let description: String = input
        .description
        .clone()
        .or_else(|| current.map(|c| c.description.clone()))
        .unwrap_or_default()
        .trim()
        .chars()
        .take(200)
        .collect();
    let events = input
        .events
        .clone()
        .or_else(|| current.map(|c| c.event_list()))
        .unwrap_or_default();
    if events.is_empty() {
        errors.push(FieldError::new(
            "events",
            "Choose at least one event (or * for every one).",
        ));
    }
    for e in &events {
        if e != "*" && !EVENTS.iter().any(|(k, _)| k == e) {
            errors.push(FieldError::new(
                "events",
                format!("{e} is not an event type."),
            ));
        }
    }
    if errors.is_empty() {
        Ok((url, description, events, allow))
    } else {
        Err(errors)
    }
}

/// Creates a subscription; answers it and its secret (shown once).
pub fn create(
    c: &mut DbConn,
    key: &Key,
    ctx: &AuditContext,
    input: SubscriptionInput,
) -> AppResult<(SubscriptionRow, String)> {
    let (url, description, events, allow) = check(&input, None)
        .map_err(|e| AppError::Validation("The webhook was not saved.".into(), e))?;
    crate::db::transaction(c, |c| {
        let n: i64 = webhook_subscriptions::table
            .filter(webhook_subscriptions::organization_id.eq(&ctx.org_id))
            .count()
            .get_result(c)?;
        if n >= MAX_SUBSCRIPTIONS {
            return Err(AppError::invalid(
                "url",
                &format!("An organization has at most {MAX_SUBSCRIPTIONS} webhooks."),
            ));
        }
        let secret = new_secret();
        let at = now();
        let row = SubscriptionRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            url,
            description,
            events: json!(events).to_string(),
            secret: key.seal(&secret)?,
            previous_secret: None,
            previous_until: None,
            active: input.active.unwrap_or(true),
            allow_private: allow,
            disabled_reason: None,
            created_by: ctx.actor_user_id.clone(),
            created_at: at,
            updated_at: at,
        };
        diesel::insert_into(webhook_subscriptions::table)
            .values(&row)
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "webhook.create",
            "webhook",
            Some(&row.id),
            json!({"url": row.url, "events": events, "allowPrivateHost": allow}),
        )?;
        Ok((row, secret))
    })
}

pub fn list(c: &mut DbConn, org: &str) -> AppResult<Vec<SubscriptionRow>> {
    Ok(webhook_subscriptions::table
        .filter(webhook_subscriptions::organization_id.eq(org))
        .order(webhook_subscriptions::created_at.asc())
        .select(SubscriptionRow::as_select())
        .load(c)?)
}

pub fn get(c: &mut DbConn, org: &str, id: &str) -> AppResult<SubscriptionRow> {
    webhook_subscriptions::table
        .filter(webhook_subscriptions::organization_id.eq(org))
        .filter(webhook_subscriptions::id.eq(id))
        .select(SubscriptionRow::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// Changes a subscription; switching it on again clears why it was switched off.
pub fn update(
    c: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    input: SubscriptionInput,
) -> AppResult<SubscriptionRow> {
    crate::db::transaction(c, |c| {
        let current = get(c, &ctx.org_id, id)?;
        let (url, description, events, allow) = check(&input, Some(&current))
            .map_err(|e| AppError::Validation("The webhook was not saved.".into(), e))?;
        let active = input.active.unwrap_or(current.active);
        diesel::update(webhook_subscriptions::table.find(id))
            .set((
                webhook_subscriptions::url.eq(&url),
                webhook_subscriptions::description.eq(&description),
                webhook_subscriptions::events.eq(json!(events).to_string()),
                webhook_subscriptions::allow_private.eq(allow),
                webhook_subscriptions::active.eq(active),
                webhook_subscriptions::disabled_reason.eq(if active {
                    None
                } else {
                    current.disabled_reason.clone()
                }),
                webhook_subscriptions::updated_at.eq(now()),
            ))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "webhook.update",
            "webhook",
            Some(id),
            json!({"url": url, "events": events, "active": active, "allowPrivateHost": allow}),
        )?;
        get(c, &ctx.org_id, id)
    })
}

pub fn delete(c: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<()> {
    crate::db::transaction(c, |c| {
        let row = get(c, &ctx.org_id, id)?;
        diesel::delete(webhook_subscriptions::table.find(&row.id)).execute(c)?;
        audit::record(
            c,
            ctx,
            "webhook.delete",
            "webhook",
            Some(id),
            json!({"url": row.url}),
        )?;
        Ok(())
    })
}

/// A new secret; the previous one still signs for [`ROTATION_GRACE`] so receivers can
/// switch without losing a delivery. Answers the new secret (shown once).
pub fn rotate(c: &mut DbConn, key: &Key, ctx: &AuditContext, id: &str) -> AppResult<String> {
    crate::db::transaction(c, |c| {
        let row = get(c, &ctx.org_id, id)?;
        let secret = new_secret();
        diesel::update(webhook_subscriptions::table.find(&row.id))
            .set((
                webhook_subscriptions::secret.eq(key.seal(&secret)?),
                webhook_subscriptions::previous_secret.eq(Some(row.secret.clone())),
                webhook_subscriptions::previous_until.eq(Some(now() + ROTATION_GRACE)),
                webhook_subscriptions::updated_at.eq(now()),
            ))
            .execute(c)?;
        audit::record(c, ctx, "webhook.rotate", "webhook", Some(id), json!({}))?;
        Ok(secret)
    })
}

/// A test event, delivered like any other.
pub fn send_test(c: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<DeliveryRow> {
    let row = get(c, &ctx.org_id, id)?;
    let data = json!({"object": "webhook", "id": row.id, "message": "A test event from Rapport."});
    Ok(queue(c, &row, "webhook.test", &row.id, &data, now())?)
}

/// The subscription's deliveries, newest first, narrowed to a status and/or event type.
pub fn deliveries(
    c: &mut DbConn,
    org: &str,
    id: &str,
    status: Option<&str>,
    event: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> AppResult<Vec<DeliveryRow>> {
    get(c, org, id)?;
    let mut q = webhook_deliveries::table
        .filter(webhook_deliveries::subscription_id.eq(id))
        .select(DeliveryRow::as_select())
        .order(webhook_deliveries::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(s) = status {
        if !["pending", "sending", "delivered", "dead"].contains(&s) {
            return Err(AppError::invalid(
                "status",
                "Use pending, sending, delivered or dead.",
            ));
        }
        q = q.filter(webhook_deliveries::status.eq(s.to_string()));
    }
    if let Some(e) = event {
        q = q.filter(webhook_deliveries::event_type.eq(e.to_string()));
    }
    if let Some(b) = before {
        q = q.filter(webhook_deliveries::id.lt(b.to_string()));
    }
    Ok(q.load(c)?)
}

/// Sends one delivery again (as a new delivery with the same payload), or every delivery
/// of a subscription created in `[from, to]`. Answers how many were queued.
pub fn replay(
    c: &mut DbConn,
    ctx: &AuditContext,
    subscription: &str,
    one: Option<&str>,
    range: Option<(NaiveDateTime, NaiveDateTime)>,
) -> AppResult<usize> {
    crate::db::transaction(c, |c| {
        let sub = get(c, &ctx.org_id, subscription)?;
        let mut q = webhook_deliveries::table
            .filter(webhook_deliveries::subscription_id.eq(&sub.id))
            .select(DeliveryRow::as_select())
            .order(webhook_deliveries::id.asc())
            .limit(10_000)
            .into_boxed();
        match (one, range) {
            (Some(id), _) => q = q.filter(webhook_deliveries::id.eq(id.to_string())),
            (None, Some((from, to))) => {
                q = q
                    .filter(webhook_deliveries::created_at.ge(from))
                    .filter(webhook_deliveries::created_at.le(to))
            }
            (None, None) => {
                return Err(AppError::invalid(
                    "from",
                    "Name a delivery, or a time range to replay.",
                ))
            }
        }
        let old: Vec<DeliveryRow> = q.load(c)?;
        if one.is_some() && old.is_empty() {
            return Err(AppError::NotFound);
        }
        let at = now();
        for d in &old {
            let data: Value = serde_json::from_str::<Value>(&d.payload)
                .map(|p| p["data"].clone())
                .unwrap_or(Value::Null);
            queue(c, &sub, &d.event_type, &d.record_id, &data, at)?;
        }
        audit::record(
            c,
            ctx,
            "webhook.replay",
            "webhook",
            Some(&sub.id),
            json!({"deliveries": old.len()}),
        )?;
        Ok(old.len())
    })
}

/// What the sender needs for one delivery.
#[derive(Clone)]
pub struct Due {
    pub delivery: DeliveryRow,
    pub url: String,
    pub allow_private: bool,
    /// The secrets that sign it (the current one, and the previous within its grace).
    pub secrets: Vec<String>,
}

/// Claims up to `n` due deliveries, the oldest first and never one whose record has an
/// earlier delivery to the same subscription still owed (order per record).
pub fn claim(c: &mut DbConn, key: &Key, n: i64) -> AppResult<Vec<Due>> {
    // One transaction for the batch: one commit instead of one per claimed delivery.
    crate::db::transaction(c, |c| claim_in(c, key, n))
}

fn claim_in(c: &mut DbConn, key: &Key, n: i64) -> AppResult<Vec<Due>> {
    let at = now();
    // A claim whose worker died is simply due again: a receiver deduplicates by webhook-id.
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::status.eq("sending"))
            .filter(webhook_deliveries::next_attempt_at.lt(at)),
    )
    .set(webhook_deliveries::status.eq("pending"))
    .execute(c)?;
    let due: Vec<DeliveryRow> = webhook_deliveries::table
        .filter(webhook_deliveries::status.eq("pending"))
        .filter(webhook_deliveries::next_attempt_at.le(at))
        .order(webhook_deliveries::next_attempt_at.asc())
        .select(DeliveryRow::as_select())
        .limit(n * 4)
        .load(c)?;
    // Those read with no earlier delivery of their subscription and record still owed: one
    // read for the round (was one count per delivery), each looked for along
    // `webhook_deliveries_order`, so it costs the same whatever the table holds.
    let firsts: std::collections::HashSet<String> = if due.is_empty() {
        Default::default()
    } else {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
        }
        // Placeholders in the order they appear: SQLite numbers `$n` by first appearance.
        let list: Vec<String> = (1..=due.len()).map(|n| format!("${n}")).collect();
        let mut q = diesel::sql_query(format!(
            "SELECT d.id FROM webhook_deliveries d WHERE d.id IN ({}) AND NOT EXISTS \
             (SELECT 1 FROM webhook_deliveries e WHERE e.subscription_id = d.subscription_id \
             AND e.record_id = d.record_id AND e.id < d.id AND e.status IN ('pending', 'sending'))",
            list.join(", ")
        ))
        .into_boxed();
        for d in &due {
            q = q.bind::<diesel::sql_types::Text, _>(d.id.clone());
        }
        q.load::<Id>(c)?.into_iter().map(|r| r.id).collect()
    };
    let mut chosen: Vec<(DeliveryRow, String, bool, Vec<String>)> = Vec::new();
    let mut subs: std::collections::HashMap<String, Option<(SubscriptionRow, Vec<String>)>> =
        Default::default();
    for d in due {
        if chosen.len() as i64 >= n {
            break;
        }
        if !firsts.contains(&d.id) && d.event_type != "webhook.test" {
            continue;
        }
        // A round holds many deliveries of few subscriptions: each is read and its secrets
        // opened once per round.
        let sub = match subs.get(&d.subscription_id) {
            Some(s) => s.clone(),
            None => {
                let found = webhook_subscriptions::table
                    .find(&d.subscription_id)
                    .select(SubscriptionRow::as_select())
                    .first(c)
                    .optional()?;
                let opened = match found {
                    None => None,
                    Some(sub) => {
                        let mut secrets = vec![key.open(&sub.secret)?];
                        if let (Some(p), Some(until)) = (&sub.previous_secret, sub.previous_until) {
                            if until > at {
                                secrets.extend(key.open(p).ok());
                            }
                        }
                        Some((sub, secrets))
                    }
                };
                subs.insert(d.subscription_id.clone(), opened.clone());
                opened
            }
        };
        let Some((sub, secrets)) = sub else {
            continue;
        };
        if !sub.active && d.event_type != "webhook.test" {
            continue;
        }
        chosen.push((d, sub.url, sub.allow_private, secrets));
    }
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    // One statement for the round's deliveries (was one per delivery). One another worker
    // claimed since the read above is no longer pending and is left out.
    let ids: Vec<&str> = chosen.iter().map(|(d, ..)| d.id.as_str()).collect();
    let claim = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(&ids))
            .filter(webhook_deliveries::status.eq("pending")),
    )
    .set((
        webhook_deliveries::status.eq("sending"),
        webhook_deliveries::next_attempt_at.eq(Some(at + LEASE)),
        webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
    ));
    let claimed: std::collections::HashSet<String> = match c {
        DbConn::Postgresql(pg) => claim
            .returning(webhook_deliveries::id)
            .get_results::<String>(pg)?
            .into_iter()
            .collect(),
        // SQLite: this transaction holds the write lock since its BEGIN IMMEDIATE, so
        // nothing changed since the read.
        DbConn::Sqlite(_) => {
            claim.execute(c)?;
            ids.iter().map(|s| s.to_string()).collect()
        }
    };
    let out = chosen
        .into_iter()
        .filter(|(d, ..)| claimed.contains(&d.id))
        .map(|(d, url, allow_private, secrets)| Due {
            delivery: DeliveryRow {
                attempts: d.attempts + 1,
                ..d
            },
            url,
            allow_private,
            secrets,
        })
        .collect();
    Ok(out)
}

/// The signature header value for a body (Standard Webhooks, `v1`): one signature per
/// secret, space-separated.
pub fn signature(secrets: &[String], id: &str, timestamp: i64, body: &str) -> String {
    use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
    secrets
        .iter()
        .filter_map(|s| {
            let raw = openssl::base64::decode_block(s.trim_start_matches("whsec_")).ok()?;
            let k = PKey::hmac(&raw).ok()?;
            let mut signer = Signer::new(MessageDigest::sha256(), &k).ok()?;
            signer
                .update(format!("{id}.{timestamp}.{body}").as_bytes())
                .ok()?;
            Some(format!(
                "v1,{}",
                openssl::base64::encode_block(&signer.sign_to_vec().ok()?)
            ))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Backoff after the n-th failed attempt.
fn backoff(attempts: i32) -> Duration {
    const STEPS: &[i64] = &[5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600];
    Duration::seconds(STEPS[(attempts.max(1) as usize - 1).min(STEPS.len() - 1)])
}

/// What became of an attempt.
#[derive(Clone)]
pub struct Outcome {
    pub status: Option<i32>,
    pub excerpt: Option<String>,
    pub duration_ms: i32,
    pub error: Option<String>,
}

/// Records a round's attempts in one transaction. why: a commit per delivery was most of
/// the fan-out's time (the WAL written and synced 40,000 times for 40,000 deliveries); the
/// price is that a crash between the posts and this commit sends the round's deliveries
/// again, each with its `webhook-id` for the receiver to recognise.
pub fn record_all(c: &mut DbConn, done: &[(Due, Outcome)]) -> AppResult<()> {
    crate::db::transaction(c, |c| {
        let (delivered, other): (Vec<_>, Vec<_>) = done
            .iter()
            .partition(|(_, o)| o.status.is_some_and(|s| (200..300).contains(&s)));
        // The round's delivered ones, nearly all of them, in one statement per hundred (was
        // a statement and a savepoint's two per delivery).
        for part in delivered.chunks(100) {
            record_delivered(c, part)?;
        }
        for (due, outcome) in other {
            record_in(c, due, outcome.clone())?;
        }
        Ok(())
    })
}

fn record_delivered(c: &mut DbConn, part: &[&(Due, Outcome)]) -> QueryResult<()> {
    use diesel::sql_types::{Integer, Nullable, Text, Timestamp};
    // why numbered in the order they appear: SQLite takes `$n` as a name and numbers the
    // parameters by first appearance, PostgreSQL by `n`; Diesel binds by position.
    let rows: Vec<String> = (0..part.len())
        .map(|i| {
            let n = 1 + i * 4;
            format!("(${}, ${}, ${}, ${})", n, n + 1, n + 2, n + 3)
        })
        .collect();
    let mut q = diesel::sql_query(format!(
        "WITH v(id, code, excerpt, ms) AS (VALUES {}) \
         UPDATE webhook_deliveries SET status = 'delivered', next_attempt_at = NULL, \
         response_status = v.code, response_excerpt = v.excerpt, duration_ms = v.ms, \
         error = NULL, delivered_at = ${} FROM v WHERE webhook_deliveries.id = v.id",
        rows.join(", "),
        1 + part.len() * 4
    ))
    .into_boxed();
    for (due, outcome) in part {
        q = q
            .bind::<Text, _>(due.delivery.id.clone())
            .bind::<Nullable<Integer>, _>(outcome.status)
            .bind::<Nullable<Text>, _>(outcome.excerpt.as_deref().map(excerpt_of))
            .bind::<Integer, _>(outcome.duration_ms);
    }
    q.bind::<Timestamp, _>(now()).execute(c).map(drop)
}

/// What of a response body is kept: its first characters, control characters left out.
fn excerpt_of(body: &str) -> String {
    body.chars()
        .filter(|c| !c.is_control())
        .take(EXCERPT)
        .collect()
}

/// Records an attempt: delivered on a 2xx; otherwise retried with backoff until three days
/// have passed, then given up, and the subscription switched off with its admins told.
pub fn record(c: &mut DbConn, due: &Due, outcome: Outcome) -> AppResult<()> {
    crate::db::transaction(c, |c| record_in(c, due, outcome))
}

fn record_in(c: &mut DbConn, due: &Due, outcome: Outcome) -> AppResult<()> {
    let d = &due.delivery;
    let ok = outcome.status.is_some_and(|s| (200..300).contains(&s));
    let at = now();
    let excerpt = outcome.excerpt.as_deref().map(excerpt_of);
    let (status, next) = if ok {
        ("delivered", None)
    } else if at + backoff(d.attempts) > d.created_at + RETRY_FOR {
        ("dead", None)
    } else {
        ("pending", Some(at + backoff(d.attempts)))
    };
    diesel::update(webhook_deliveries::table.find(&d.id))
        .set((
            webhook_deliveries::status.eq(status),
            webhook_deliveries::next_attempt_at.eq(next),
            webhook_deliveries::response_status.eq(outcome.status),
            webhook_deliveries::response_excerpt.eq(excerpt),
            webhook_deliveries::duration_ms.eq(Some(outcome.duration_ms)),
            webhook_deliveries::error.eq(outcome.error.clone()),
            webhook_deliveries::delivered_at.eq(ok.then_some(at)),
        ))
        .execute(c)?;
    if status == "dead" && d.event_type != "webhook.test" {
        let why = format!(
            "Switched off after failing for three days ({}).",
            outcome
                .error
                .clone()
                .or(outcome.status.map(|s| format!("HTTP {s}")))
                .unwrap_or_default()
        );
        let n = diesel::update(
            webhook_subscriptions::table
                .find(&d.subscription_id)
                .filter(webhook_subscriptions::active.eq(true)),
        )
        .set((
            webhook_subscriptions::active.eq(false),
            webhook_subscriptions::disabled_reason.eq(Some(why.clone())),
            webhook_subscriptions::updated_at.eq(at),
        ))
        .execute(c)?;
        if n == 1 {
            crate::domain::notifications::notify_role(
                c,
                &d.organization_id,
                crate::domain::orgs::Role::Admin,
                "webhook.disabled",
                &format!("A webhook to {} was switched off", due.url),
                &why,
                Some(&format!("/admin/webhooks/{}", d.subscription_id)),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_metadata_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            assert!(!forbidden(ip.parse().unwrap()), "{ip}");
        }
        assert!(resolve("http://169.254.169.254/latest/meta-data", true).is_err());
        assert!(resolve("http://127.0.0.1:9/hook", false).is_err());
        assert!(resolve("http://127.0.0.1:9/hook", true).is_ok());
        assert!(resolve("ftp://example.com/", true).is_err());
        assert!(resolve("https://user:pw@127.0.0.1/", true).is_err());
    }

    #[test]
    fn deal_moves_to_won_or_lost_make_their_own_events() {
        let won = json!({"status": ["open", "won"]});
        assert_eq!(
            event_of("opportunity.move", &won),
            vec!["deal.stage_changed", "deal.won"]
        );
        assert_eq!(
            event_of("opportunity.move", &json!({})),
            vec!["deal.stage_changed"]
        );
        assert!(event_of("client.view_sensitive", &json!({})).is_empty());
    }

    #[test]
    fn backoff_grows_and_settles() {
        assert_eq!(backoff(1), Duration::seconds(5));
        assert_eq!(backoff(2), Duration::seconds(30));
        assert_eq!(backoff(40), Duration::hours(12));
    }
}
