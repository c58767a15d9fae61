//! The create and edit form: new/edit pages, saving (create or update) and moving to the trash.

use crate::locale::Local;
use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Map, Value};

use super::{choices, parse_form, posted, status_choices, Choice};
use crate::auth::ConsoleActor;
use crate::domain::clients::service::{Access, WriteMode};
use crate::domain::clients::ClientRow;
use crate::domain::custom_fields::value::form_value;
use crate::domain::custom_fields::{FieldRow, FieldType};
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::clients as ops;
use crate::state::AppState;
use crate::web::console::{redirect_with_flash, render, render_with_status};
use crate::web::query_pairs;

pub struct FormField {
    pub key: String,
    pub label: String,
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<Choice>,
    pub required: bool,
    pub help: String,
    pub currency: String,
    pub error: Option<String>,
}

pub struct FormGroup {
    pub name: String,
    pub fields: Vec<FormField>,
}

#[derive(Template)]
#[template(path = "partials/clients/form.html")]
struct ClientForm {
    id: Option<String>,
    version: i64,
    heading: String,
    values: HashMap<String, String>,
    statuses: Vec<Choice>,
    owners: Vec<Choice>,
    tags: Vec<Choice>,
    groups: Vec<FormGroup>,
    errors: Vec<FieldError>,
    stale: bool,
    employer_name: String,
    general_error: Option<String>,
}

impl ClientForm {
    fn v(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }

    fn error(&self, key: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == key)
            .map(|e| e.message.as_str())
    }
}

fn row_values(row: &ClientRow) -> HashMap<String, String> {
    let mut v = HashMap::new();
    let mut put = |k: &str, val: &Option<String>| {
        v.insert(k.to_string(), val.clone().unwrap_or_default());
    };
    put("firstName", &row.first_name);
    put("lastName", &row.last_name);
    put("companyName", &row.company_name);
    put("email", &row.email);
    put("phone", &row.phone);
    put("address.street", &row.street);
    put("address.city", &row.city);
    put("address.region", &row.region);
    put("address.postalCode", &row.postal_code);
    put("address.country", &row.country);
    put("website", &row.website);
    put("industry", &row.industry);
    put("source", &row.source);
    put("assignedTo", &row.assigned_to);
    put("employerId", &row.employer_id);
    v.insert("type".into(), row.kind.clone());
    v.insert("status".into(), row.status.clone());
    v
}

struct FormState {
    values: HashMap<String, String>,
    custom: HashMap<String, Vec<String>>,
    tags: Vec<String>,
}

/// The form as it is shown: which client (none when new), the version it was read at,
/// what it holds, and why the last save was refused.
struct Draft {
    id: Option<String>,
    version: i64,
    state: FormState,
    errors: Vec<FieldError>,
    stale: bool,
}

impl Draft {
    fn fresh(id: Option<String>, version: i64, state: FormState) -> Self {
        Self {
            id,
            version,
            state,
            errors: Vec::new(),
            stale: false,
        }
    }
}

/// A custom field as a form input, with the values it holds and its error.
fn form_field(
    d: &FieldRow,
    values: Vec<String>,
    errors: &[FieldError],
    local: &Local,
) -> FormField {
    let kind = d.kind();
    FormField {
        key: d.field_key.clone(),
        label: d.label.clone(),
        kind: kind.as_str(),
        value: match (kind, values.first()) {
            // why: datetime-local inputs take "YYYY-MM-DDTHH:MM" on the person's clock: a
            // stored (UTC) value is turned to it; one typed and refused stays as typed.
            (FieldType::DateTime, Some(v)) => chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| local.input(t.naive_utc()))
                .unwrap_or_else(|_| v.chars().take(16).collect()),
            (_, v) => v.cloned().unwrap_or_default(),
        },
        options: choices(d.option_list().into_iter().map(|o| (o.clone(), o)), &values),
        required: d.required,
        help: d.help_text.clone(),
        currency: d.currency.clone().unwrap_or_default(),
        error: errors
            .iter()
            .find(|e| e.field == format!("customFields.{}", d.field_key))
            .map(|e| e.message.clone()),
    }
}

/// The custom fields the caller may write, under their display groups.
fn form_groups(
    defs: &[FieldRow],
    access: &Access,
    custom: &HashMap<String, Vec<String>>,
    errors: &[FieldError],
    local: &Local,
) -> Vec<FormGroup> {
    let mut groups: Vec<FormGroup> = Vec::new();
    for d in defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || access.write_sensitive))
    {
        let values = custom.get(&d.field_key).cloned().unwrap_or_default();
        let field = form_field(d, values, errors, local);
        let name = if d.display_group.is_empty() {
            "Details".to_string()
        } else {
            d.display_group.clone()
        };
        match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => g.fields.push(field),
            None => groups.push(FormGroup {
                name,
                fields: vec![field],
            }),
        }
    }
    groups
}

fn build_form(access: &Access, offered: ops::FormChoices, d: Draft, local: &Local) -> ClientForm {
    let values = &d.state.values;
    // why: an error on no field of the form would otherwise not be shown at all.
    let general_error = d
        .errors
        .iter()
        .find(|e| {
            !e.field.starts_with("customFields.")
                && !values.contains_key(&e.field)
                && e.field != "tags"
        })
        .map(|e| format!("{}: {}", e.field, e.message));
    let owner = values.get("assignedTo").cloned().unwrap_or_default();
    let status = values
        .get("status")
        .cloned()
        .unwrap_or_else(|| "lead".into());
    ClientForm {
        heading: if d.id.is_some() {
            "Edit client".into()
        } else {
            "New client".into()
        },
        id: d.id,
        version: d.version,
        statuses: status_choices(&[status]),
        owners: choices(offered.owners, &[owner]),
        tags: choices(
            offered
                .tags
                .iter()
                .map(|t| (t.name.clone(), t.name.clone())),
            &d.state.tags,
        ),
        groups: form_groups(&offered.fields, access, &d.state.custom, &d.errors, local),
        employer_name: offered.employer_name,
        values: d.state.values,
        errors: d.errors,
        stale: d.stale,
        general_error,
    }
}

pub async fn new_form(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let mut values: HashMap<String, String> = HashMap::from([
        ("type".to_string(), "individual".to_string()),
        ("status".to_string(), "lead".to_string()),
        ("assignedTo".to_string(), actor.user_id.clone()),
    ]);
    // Prefill from the query, e.g. "add a person to this company".
    for (k, v) in query_pairs(&req)? {
        if ["type", "employerId"].contains(&k.as_str()) {
            values.insert(k, v);
        }
    }
    let employer = values.get("employerId").cloned();
    let offered = ops::form_choices(&scope, employer, None).await?;
    let held = FormState {
        custom: defaults(&offered.fields),
        values,
        tags: Vec::new(),
    };
    let form = build_form(
        &scope.access("client"),
        offered,
        Draft::fresh(None, 0, held),
        &scope.local,
    );
    render(&req, &actor, "New client", &form).await
}

/// The custom fields' default values, as the form holds them.
fn defaults(defs: &[FieldRow]) -> HashMap<String, Vec<String>> {
    defs.iter()
        .filter_map(|d| {
            let default: Value = serde_json::from_str(d.default_value.as_deref()?).ok()?;
            Some((d.field_key.clone(), form_values(&default)))
        })
        .collect()
}

fn form_values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::Null => Vec::new(),
        other => vec![form_value(other)],
    }
}

pub async fn edit_form(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let ops::Editing { row, tags, choices } = ops::editing(&scope, id.into_inner()).await?;
    let held = FormState {
        values: row_values(&row),
        custom: row
            .custom_map()
            .iter()
            .map(|(k, v)| (k.clone(), form_values(v)))
            .collect(),
        tags: tags.into_iter().map(|t| t.name).collect(),
    };
    let draft = Draft::fresh(Some(row.id.clone()), row.version, held);
    let form = build_form(&scope.access("client"), choices, draft, &scope.local);
    render(&req, &actor, "Edit client", &form).await
}

/// Reads the posted form into the API's JSON shape, so both go through one validation.
fn form_to_body(
    pairs: &[(String, String)],
    defs: &[FieldRow],
    local: &Local,
) -> (Map<String, Value>, FormState) {
    let mut body = Map::new();
    let mut address = Map::new();
    let mut state = FormState {
        values: HashMap::new(),
        custom: HashMap::new(),
        tags: Vec::new(),
    };
    for (k, v) in pairs {
        match k.as_str() {
            "type" | "firstName" | "lastName" | "companyName" | "email" | "phone" | "website"
            | "industry" | "source" | "status" | "assignedTo" | "employerId" => {
                body.insert(k.clone(), text(v));
                state.values.insert(k.clone(), v.clone());
            }
            a if a.starts_with("address.") => {
                address.insert(a["address.".len()..].to_string(), text(v));
                state.values.insert(k.clone(), v.clone());
            }
            "tags" => state.tags.push(v.clone()),
            cf if cf.starts_with("cf.") => {
                state
                    .custom
                    .entry(cf[3..].to_string())
                    .or_default()
                    .push(v.clone());
            }
            _ => {}
        }
    }
    body.insert("address".into(), Value::Object(address));
    body.insert("tags".into(), Value::from(state.tags.clone()));
    let custom = custom_body(pairs, defs, &state.custom, local);
    body.insert("customFields".into(), Value::Object(custom));
    (body, state)
}

/// A posted text: blank clears the field.
fn text(v: &str) -> Value {
    if v.trim().is_empty() {
        Value::Null
    } else {
        Value::String(v.to_string())
    }
}

/// The posted custom values of the active fields. A multi-select with nothing ticked
/// posts nothing; its `cf_present.<key>` marker says it was on the form, so it is cleared.
fn custom_body(
    pairs: &[(String, String)],
    defs: &[FieldRow],
    held: &HashMap<String, Vec<String>>,
    local: &Local,
) -> Map<String, Value> {
    let mut custom = Map::new();
    for d in defs.iter().filter(|d| d.is_active()) {
        let multi = d.kind() == FieldType::MultiSelect;
        let Some(values) = held.get(&d.field_key) else {
            let marker = format!("cf_present.{}", d.field_key);
            if multi && pairs.iter().any(|(k, _)| *k == marker) {
                custom.insert(d.field_key.clone(), Value::Array(Vec::new()));
            }
            continue;
        };
        let value = if multi {
            let ticked: Vec<String> = values.iter().filter(|v| !v.is_empty()).cloned().collect();
            Value::from(ticked)
        } else {
            values.first().map_or(Value::Null, |v| {
                // A date and time is typed on the person's clock; the API takes UTC.
                match local
                    .parse_input(v)
                    .filter(|_| d.kind() == FieldType::DateTime)
                {
                    Some(utc) => Value::String(
                        utc.and_utc()
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ),
                    None => text(v),
                }
            })
        };
        custom.insert(d.field_key.clone(), value);
    }
    custom
}

/// Creates (no `id`) or updates a client from the posted form; a refused form comes
/// back with what was typed and why (422), or as stale (409).
async fn save(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: Option<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let version: i64 = posted(&pairs, "version").parse().unwrap_or(0);
    let (body, form_state) = form_to_body(&pairs, &ops::fields(&scope).await?, &scope.local);
    let saved = match &id {
        None => ops::create(&scope, body).await,
        Some(i) => ops::update(&scope, i.clone(), body, WriteMode::Replace, Some(version)).await,
    };
    let (errors, stale, status) = match saved {
        Ok(v) => {
            let message = format!("{} was saved.", v.row.display_name);
            return redirect_with_flash(&req, &format!("/clients/{}", v.row.id), &message);
        }
        Err(AppError::Validation(_, errors)) => (errors, false, StatusCode::UNPROCESSABLE_ENTITY),
        Err(AppError::Stale(_)) => (Vec::new(), true, StatusCode::CONFLICT),
        Err(e) => return Err(e),
    };
    let employer = form_state.values.get("employerId").cloned();
    let current_of = id.clone().filter(|_| stale);
    let offered = ops::form_choices(&scope, employer, current_of).await?;
    // A stale form comes back with the current version, so saving again overwrites.
    let version = offered.current_version.unwrap_or(version);
    let draft = Draft {
        errors,
        stale,
        ..Draft::fresh(id, version, form_state)
    };
    let form = build_form(&scope.access("client"), offered, draft, &scope.local);
    render_with_status(&req, &actor, "Client", &form, status).await
}

pub async fn create(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    save(req, actor, state, None, body).await
}

pub async fn update(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    save(req, actor, state, Some(id.into_inner()), body).await
}

pub async fn delete(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let row = ops::trash(&scope, id.into_inner(), None).await?;
    let message = format!("{} was moved to the trash.", row.display_name);
    redirect_with_flash(&req, "/clients", &message)
}
