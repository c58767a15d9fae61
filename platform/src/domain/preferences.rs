//! Communication preferences: per client and channel an opt-in or opt-out (with where it
//! came from and when), do-not-contact, a preferred channel and time window. Logging an
//! outbound contact that breaks them needs an explicit acknowledgement.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::db::schema::contact_preferences;
use crate::db::{now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::service::Access;
use crate::error::{AppError, AppResult, FieldError};

pub const CHANNELS: &[&str] = &["email", "phone", "sms", "post"];

/// One channel's consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    /// `opt_in` or `opt_out`.
    pub status: String,
    pub source: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preferences {
    pub channels: BTreeMap<String, Consent>,
    pub do_not_contact: bool,
    pub preferred_channel: Option<String>,
    pub preferred_window: Option<String>,
}

impl Preferences {
    pub fn to_json(&self) -> Value {
        let channels: serde_json::Map<String, Value> = CHANNELS
            .iter()
            .map(|c| {
                let v = match self.channels.get(*c) {
                    Some(consent) => json!(consent),
                    None => json!({"status": "unknown", "source": null, "updatedAt": null}),
                };
                (c.to_string(), v)
            })
            .collect();
        json!({
            "channels": channels, "doNotContact": self.do_not_contact,
            "preferredChannel": self.preferred_channel, "preferredWindow": self.preferred_window,
        })
    }

    /// Why an outbound contact on `channel` breaks these preferences, if it does.
    pub fn objection(&self, channel: &str) -> Option<String> {
        if self.do_not_contact {
            return Some("This client asked not to be contacted at all.".into());
        }
        let c = self.channels.get(channel)?;
        (c.status == "opt_out").then(|| {
            format!(
                "This client opted out of {} contact ({}, {}).",
                match channel {
                    "phone" => "phone",
                    "email" => "e-mail",
                    "sms" => "SMS",
                    _ => "postal",
                },
                if c.source.is_empty() {
                    "no source given"
                } else {
                    &c.source
                },
                c.updated_at.get(..10).unwrap_or(&c.updated_at)
            )
        })
    }
}

/// The channel an interaction kind uses (meetings and notes use none).
pub fn channel_of(kind: &str) -> Option<&'static str> {
    match kind {
        "call" => Some("phone"),
        "email" => Some("email"),
        "sms" => Some("sms"),
        _ => None,
    }
}

/// Preferences of many clients in one query (those without a row are absent).
pub fn load_many(
    conn: &mut DbConn,
    org_id: &str,
    client_ids: &[String],
) -> AppResult<std::collections::HashMap<String, Preferences>> {
    type Row = (String, String, bool, Option<String>, Option<String>);
    let mut out = std::collections::HashMap::new();
    for chunk in client_ids.chunks(1000) {
        let rows: Vec<Row> = contact_preferences::table
            .filter(contact_preferences::organization_id.eq(org_id))
            .filter(contact_preferences::client_id.eq_any(chunk))
            .select((
                contact_preferences::client_id,
                contact_preferences::channels,
                contact_preferences::do_not_contact,
                contact_preferences::preferred_channel,
                contact_preferences::preferred_window,
            ))
            .load(conn)?;
        for (id, channels, dnc, channel, window) in rows {
            out.insert(
                id,
                Preferences {
                    channels: serde_json::from_str(&channels).unwrap_or_default(),
                    do_not_contact: dnc,
                    preferred_channel: channel,
                    preferred_window: window,
                },
            );
        }
    }
    Ok(out)
}

pub fn load(conn: &mut DbConn, org_id: &str, client_id: &str) -> AppResult<Preferences> {
    Ok(load_many(conn, org_id, &[client_id.to_string()])?
        .remove(client_id)
        .unwrap_or_default())
}

/// Applies `{"channels": {"phone": {"status": "opt_out", "source": "call"}}, "doNotContact",
/// "preferredChannel", "preferredWindow"}` (fields present only), audited.
pub fn update(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    client_id: &str,
    body: &serde_json::Map<String, Value>,
) -> AppResult<Preferences> {
    crate::db::transaction(conn, |c| {
        crate::domain::clients::service::get(c, &ctx.org_id, access, client_id)?;
        let before = load(c, &ctx.org_id, client_id)?;
        let mut p = before.clone();
        let mut errors = Vec::new();
        let at: NaiveDateTime = now();
        for k in body.keys() {
            if ![
                "channels",
                "doNotContact",
                "preferredChannel",
                "preferredWindow",
            ]
            .contains(&k.as_str())
            {
                errors.push(FieldError::new(k, "Unknown field."));
            }
        }
        if let Some(v) = body.get("channels") {
            match v.as_object() {
                None => errors.push(FieldError::new("channels", "Send an object by channel.")),
                Some(map) => {
                    for (channel, consent) in map {
                        if !CHANNELS.contains(&channel.as_str()) {
                            errors.push(FieldError::new(
                                format!("channels.{channel}"),
                                "Channels are email, phone, sms and post.",
                            ));
                            continue;
                        }
                        let status = consent
                            .get("status")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let source = consent
                            .get("source")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .trim()
                            .chars()
                            .take(100)
                            .collect::<String>();
                        match status {
                            "opt_in" | "opt_out" => {
                                let changed = p
                                    .channels
                                    .get(channel)
                                    .is_none_or(|c| c.status != status || c.source != source);
                                if changed {
                                    p.channels.insert(
                                        channel.clone(),
                                        Consent {
                                            status: status.into(),
                                            source,
                                            updated_at: at
                                                .and_utc()
                                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                                        },
                                    );
                                }
                            }
                            "unknown" => {
                                p.channels.remove(channel);
                            }
                            _ => errors.push(FieldError::new(
                                format!("channels.{channel}"),
                                "Use opt_in, opt_out or unknown.",
                            )),
                        }
                    }
                }
            }
        }
        if let Some(v) = body.get("doNotContact") {
            match v.as_bool() {
                Some(b) => p.do_not_contact = b,
                None => errors.push(FieldError::new("doNotContact", "Use true or false.")),
            }
        }
        if let Some(v) = body.get("preferredChannel") {
            match v.as_str().map(str::trim) {
                None | Some("") => p.preferred_channel = None,
                Some(ch) if CHANNELS.contains(&ch) => p.preferred_channel = Some(ch.into()),
                _ => errors.push(FieldError::new(
                    "preferredChannel",
                    "Choose email, phone, sms or post.",
                )),
            }
        }
        if let Some(v) = body.get("preferredWindow") {
            match v.as_str().map(str::trim) {
                None | Some("") => p.preferred_window = None,
                Some(w) if w.chars().count() <= 100 => p.preferred_window = Some(w.into()),
                _ => errors.push(FieldError::new(
                    "preferredWindow",
                    "Describe it in at most 100 characters, e.g. weekdays 9–12.",
                )),
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The preferences could not be saved.".into(),
                errors,
            ));
        }
        let channels =
            serde_json::to_string(&p.channels).map_err(|e| AppError::Internal(e.to_string()))?;
        diesel::delete(
            contact_preferences::table.filter(contact_preferences::client_id.eq(client_id)),
        )
        .execute(c)?;
        diesel::insert_into(contact_preferences::table)
            .values((
                contact_preferences::client_id.eq(client_id),
                contact_preferences::organization_id.eq(&ctx.org_id),
                contact_preferences::channels.eq(&channels),
                contact_preferences::do_not_contact.eq(p.do_not_contact),
                contact_preferences::preferred_channel.eq(&p.preferred_channel),
                contact_preferences::preferred_window.eq(&p.preferred_window),
                contact_preferences::updated_at.eq(at),
            ))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "client.preferences",
            "client",
            Some(client_id),
            json!({"before": before.to_json(), "after": p.to_json()}),
        )?;
        Ok(p)
    })
}
