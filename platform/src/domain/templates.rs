//! Message templates: a subject and a body with merge fields (`{{ client.firstName }}`,
//! `{{ client.customFields.size }}`, `{{ sender.name }}`, `{{ unsubscribeUrl }}`, …), each edit
//! a new version. Rendered by minijinja: a template engine that reads no file and opens no
//! connection (no loader is set, so `include` and `import` find nothing), with a fuel limit
//! on loops and a cap on what it may write. Missing fields render empty; `default` fills them
//! (`{{ client.firstName | default("there") }}`).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::db::schema::{clients, message_template_versions, message_templates};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::error::{AppError, AppResult, FieldError};

const MAX_NAME: usize = 100;
const MAX_SUBJECT: usize = 250;
pub const MAX_BODY: usize = 50_000;
/// Instructions a render may spend (loops, filters) before it is stopped.
const FUEL: u64 = 100_000;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_templates)]
pub struct TemplateRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub subject: String,
    pub body: String,
    pub version: i32,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// `email` (subject and body) or `sms` (a short body, no subject).
    pub kind: String,
}

/// Characters a short message may have (ten concatenated segments).
pub const MAX_SMS: usize = 1600;

/// How many SMS segments a text takes: 160/153 characters in the GSM alphabet, 70/67 in
/// UCS-2 once any other character appears.
pub fn sms_segments(text: &str) -> usize {
    const GSM: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}[]~|€";
    let gsm = text.chars().all(|ch| GSM.contains(ch));
    let n = text.chars().count();
    let (one, many) = if gsm { (160, 153) } else { (70, 67) };
    if n <= one {
        1
    } else {
        n.div_ceil(many)
    }
}

impl TemplateRow {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "kind": self.kind, "subject": self.subject,
            "body": self.body, "version": self.version,
            "createdAt": self.created_at.and_utc().to_rfc3339(),
            "updatedAt": self.updated_at.and_utc().to_rfc3339(),
        })
    }
}

fn env() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(FUEL));
    // Plain text: nothing is escaped (the HTML part escapes the finished text itself).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

/// "Line 3: …" for an error at a known line.
fn explain(e: &minijinja::Error) -> String {
    let what = e
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string());
    match e.line() {
        Some(l) => format!("Line {l}: {what}."),
        None => format!("{what}."),
    }
}

/// Checks that both parts parse; names the line of the first mistake in each.
pub fn check(subject: &str, body: &str) -> Vec<FieldError> {
    let env = env();
    let mut errors = Vec::new();
    for (field, src) in [("subject", subject), ("body", body)] {
        if let Err(e) = env.template_from_str(src) {
            errors.push(FieldError::new(field, explain(&e)));
        }
    }
    errors
}

/// Renders subject and body against `data`.
pub fn render(
    subject: &str,
    body: &str,
    data: &Value,
) -> Result<(String, String), Vec<FieldError>> {
    let env = env();
    let ctx: minijinja::Value = minijinja::value::Serde(data).into();
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (field, src, max) in [("subject", subject, MAX_SUBJECT), ("body", body, MAX_BODY)] {
        match env.render_str(src, ctx.clone()) {
            Ok(s) if s.chars().count() > max => errors.push(FieldError::new(
                field,
                format!("It renders to more than {max} characters."),
            )),
            Ok(s) => out.push(s),
            Err(e) => errors.push(FieldError::new(field, explain(&e))),
        }
    }
    if errors.is_empty() {
        let body = out.pop().unwrap_or_default();
        let subject = out.pop().unwrap_or_default().replace(['\r', '\n'], " ");
        Ok((subject.trim().to_string(), body))
    } else {
        Err(errors)
    }
}

/// What a template sees of a client: its fields in the API's names, custom fields included.
pub fn client_data(c: &mut DbConn, org: &str, client_id: &str) -> AppResult<Value> {
    let row: crate::domain::clients::ClientRow = clients::table
        .filter(clients::organization_id.eq(org))
        .filter(clients::id.eq(client_id))
        .filter(clients::deleted_at.is_null())
        .select(crate::domain::clients::ClientRow::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)?;
    Ok(client_value(&row))
}

pub fn client_value(row: &crate::domain::clients::ClientRow) -> Value {
    let custom: Value = serde_json::from_str(&row.custom_fields).unwrap_or_else(|_| json!({}));
    json!({
        "id": row.id, "name": row.display_name,
        "firstName": row.first_name.clone().unwrap_or_default(),
        "lastName": row.last_name.clone().unwrap_or_default(),
        "company": row.company_name.clone().unwrap_or_default(),
        "email": row.email.clone().unwrap_or_default(),
        "phone": row.phone.clone().unwrap_or_default(),
        "city": row.city.clone().unwrap_or_default(),
        "country": row.country.clone().unwrap_or_default(),
        "status": row.status, "source": row.source.clone().unwrap_or_default(),
        "industry": row.industry.clone().unwrap_or_default(), "customFields": custom,
    })
}

/// What a template sees of a deal (`{{ deal.value }}`), for messages written from one.
pub fn deal_value(
    c: &mut DbConn,
    deal: &crate::domain::pipeline::model::OpportunityRow,
) -> AppResult<Value> {
    use crate::db::schema::pipeline_stages;
    let stage: String = pipeline_stages::table
        .find(&deal.stage_id)
        .select(pipeline_stages::name)
        .first(c)
        .optional()?
        .unwrap_or_default();
    let custom: Value = serde_json::from_str(&deal.custom_fields).unwrap_or_else(|_| json!({}));
    Ok(json!({
        "id": deal.id, "name": deal.name,
        "value": rust_decimal::Decimal::new(deal.value_cents, 2).to_string(),
        "currency": deal.currency, "stage": stage, "status": deal.status,
        "probability": deal.probability,
        "expectedClose": deal.expected_close.map(|d| d.to_string()).unwrap_or_default(),
        "customFields": custom,
    }))
}

/// Plugin-computed values as merge fields: `{{ client.plugins["<plugin>"]["<key>"] }}` (or
/// `client.plugins.<plugin>.<key>` where the names allow it); one a plugin could not
/// answer is empty.
pub fn plugin_fields(values: &[crate::plugins::ComputedValue]) -> Value {
    let mut out = serde_json::Map::new();
    for v in values {
        let Some((plugin, key)) = v.reference.split_once('/') else {
            continue;
        };
        let entry = out.entry(plugin.to_string()).or_insert_with(|| json!({}));
        entry[key] = json!(v.value.clone().unwrap_or_default());
    }
    Value::Object(out)
}

/// The merge data for a message from `sender` to a client.
pub fn data(client: Value, sender_name: &str, sender_email: &str, unsubscribe_url: &str) -> Value {
    json!({
        "client": client,
        "sender": {"name": sender_name, "email": sender_email,
                   "signature": format!("{sender_name}\n{sender_email}")},
        "unsubscribeUrl": unsubscribe_url,
    })
}

pub fn list(c: &mut DbConn, org: &str) -> AppResult<Vec<TemplateRow>> {
    Ok(message_templates::table
        .filter(message_templates::organization_id.eq(org))
        .select(TemplateRow::as_select())
        .order(message_templates::name.asc())
        .load(c)?)
}

pub fn get(c: &mut DbConn, org: &str, id: &str) -> AppResult<TemplateRow> {
    message_templates::table
        .filter(message_templates::organization_id.eq(org))
        .filter(message_templates::id.eq(id))
        .select(TemplateRow::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// A version as it was: (version, subject, body, when).
pub fn versions(
    c: &mut DbConn,
    org: &str,
    id: &str,
) -> AppResult<Vec<(i32, String, String, NaiveDateTime)>> {
    get(c, org, id)?;
    Ok(message_template_versions::table
        .filter(message_template_versions::template_id.eq(id))
        .select((
            message_template_versions::version,
            message_template_versions::subject,
            message_template_versions::body,
            message_template_versions::created_at,
        ))
        .order(message_template_versions::version.desc())
        .load(c)?)
}

/// Creates (`id` None) or edits a template; an edit that changes the text is a new version.
pub fn save(
    c: &mut DbConn,
    ctx: &AuditContext,
    id: Option<&str>,
    kind: Option<&str>,
    name: &str,
    subject: &str,
    body: &str,
) -> AppResult<TemplateRow> {
    crate::db::transaction(c, |c| {
        let (name, subject) = (name.trim(), subject.trim());
        let mut errors = Vec::new();
        let existing = match id {
            Some(id) => Some(get(c, &ctx.org_id, id)?),
            None => None,
        };
        let kind = match (kind, &existing) {
            (None, Some(t)) => t.kind.clone(),
            (None, None) | (Some("email"), _) => "email".to_string(),
            (Some("sms"), _) => "sms".to_string(),
            (Some(_), _) => {
                return Err(AppError::invalid("kind", "Use email or sms."));
            }
        };
        if existing.as_ref().is_some_and(|t| t.kind != kind) {
            return Err(AppError::invalid(
                "kind",
                "A template stays an e-mail or a short message; make a new one instead.",
            ));
        }
        let sms = kind == "sms";
        let subject = if sms { "" } else { subject };
        if name.is_empty() {
            errors.push(FieldError::new("name", "Name the template."));
        } else if name.chars().count() > MAX_NAME {
            errors.push(FieldError::new(
                "name",
                format!("Use at most {MAX_NAME} characters."),
            ));
        }
        if subject.is_empty() && !sms {
            errors.push(FieldError::new("subject", "Give it a subject."));
        } else if subject.chars().count() > MAX_SUBJECT {
            errors.push(FieldError::new(
                "subject",
                format!("Use at most {MAX_SUBJECT} characters."),
            ));
        }
        if body.chars().count() > MAX_BODY {
            errors.push(FieldError::new(
                "body",
                format!("Use at most {MAX_BODY} characters."),
            ));
        } else if sms && body.chars().count() > MAX_SMS {
            errors.push(FieldError::new(
                "body",
                format!("A short message has at most {MAX_SMS} characters."),
            ));
        } else if sms && body.trim().is_empty() {
            errors.push(FieldError::new("body", "Write the message."));
        }
        if errors.is_empty() {
            errors.extend(check(subject, body));
        }
        let clash: Option<String> = message_templates::table
            .filter(message_templates::organization_id.eq(&ctx.org_id))
            .filter(message_templates::name.eq(name))
            .select(message_templates::id)
            .first(c)
            .optional()?;
        if clash.is_some_and(|other| Some(other.as_str()) != id) {
            errors.push(FieldError::new("name", "Another template has this name."));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The template could not be saved.".into(),
                errors,
            ));
        }
        let at = now();
        let row = match id {
            None => {
                let row = TemplateRow {
                    id: new_id(),
                    organization_id: ctx.org_id.clone(),
                    name: name.into(),
                    subject: subject.into(),
                    body: body.into(),
                    version: 1,
                    created_by: ctx.actor_user_id.clone(),
                    created_at: at,
                    updated_at: at,
                    kind,
                };
                diesel::insert_into(message_templates::table)
                    .values(&row)
                    .execute(c)?;
                row
            }
            Some(_) => {
                let Some(mut row) = existing else {
                    return Err(AppError::NotFound);
                };
                let changed = row.subject != subject || row.body != body;
                row.name = name.into();
                if changed {
                    row.version += 1;
                    row.subject = subject.into();
                    row.body = body.into();
                }
                row.updated_at = at;
                diesel::update(message_templates::table.find(&row.id))
                    .set((
                        message_templates::name.eq(&row.name),
                        message_templates::subject.eq(&row.subject),
                        message_templates::body.eq(&row.body),
                        message_templates::version.eq(row.version),
                        message_templates::updated_at.eq(at),
                    ))
                    .execute(c)?;
                if !changed {
                    return Ok(row);
                }
                row
            }
        };
        diesel::insert_into(message_template_versions::table)
            .values((
                message_template_versions::template_id.eq(&row.id),
                message_template_versions::version.eq(row.version),
                message_template_versions::subject.eq(&row.subject),
                message_template_versions::body.eq(&row.body),
                message_template_versions::created_by.eq(&ctx.actor_user_id),
                message_template_versions::created_at.eq(at),
            ))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "template.save",
            "template",
            Some(&row.id),
            json!({"name": row.name, "version": row.version}),
        )?;
        Ok(row)
    })
}

pub fn delete(c: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<()> {
    crate::db::transaction(c, |c| {
        let row = get(c, &ctx.org_id, id)?;
        diesel::delete(message_templates::table.find(&row.id)).execute(c)?;
        audit::record(
            c,
            ctx,
            "template.delete",
            "template",
            Some(&row.id),
            json!({"name": row.name}),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_count_their_segments_by_alphabet() {
        assert_eq!(sms_segments("Hello, your order is ready."), 1);
        assert_eq!(sms_segments(&"a".repeat(160)), 1);
        assert_eq!(sms_segments(&"a".repeat(161)), 2);
        // One character outside the GSM alphabet makes it UCS-2: 70 a segment.
        assert_eq!(sms_segments(&format!("{}✓", "a".repeat(69))), 1);
        assert_eq!(sms_segments(&format!("{}✓", "a".repeat(70))), 2);
    }

    fn ann() -> Value {
        data(
            json!({"firstName": "Ann", "customFields": {"size": "XL"}}),
            "Rita Rep",
            "rita@x.test",
            "https://crm/u/1",
        )
    }

    #[test]
    fn merge_fields_defaults_and_custom_fields_render() {
        let (s, b) = render(
            "Hello {{ client.firstName }}",
            "Dear {{ client.lastName | default(\"customer\") }}, size {{ client.customFields.size }}.\n{{ sender.signature }}\n{{ unsubscribeUrl }}",
            &ann(),
        )
        .expect("renders");
        assert_eq!(s, "Hello Ann");
        assert_eq!(
            b,
            "Dear customer, size XL.\nRita Rep\nrita@x.test\nhttps://crm/u/1"
        );
    }

    #[test]
    fn a_template_that_does_not_parse_names_its_line() {
        let errors = check("Hi", "Line one\nLine two {{ client.firstName \nthree");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "body");
        assert!(
            errors[0].message.starts_with("Line 2:") || errors[0].message.starts_with("Line 3:"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn a_template_reads_no_file_and_cannot_run_forever() {
        let e = render("x", "{% include \"/etc/passwd\" %}", &ann()).expect_err("no loader");
        assert_eq!(e[0].field, "body");
        let e = render(
            "x",
            "{% for a in range(10000) %}{% for b in range(10000) %}.{% endfor %}{% endfor %}",
            &ann(),
        )
        .expect_err("out of fuel");
        assert_eq!(e[0].field, "body");
    }
}
