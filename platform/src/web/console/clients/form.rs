//! The create and edit form: new/edit pages, saving (create or update) and moving to the trash.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Map, Value};

use super::super::{redirect_with_flash, render, render_with_status};
use super::*;
use crate::auth::ConsoleActor;
use crate::db::{self, DbConn};
use crate::domain::clients::service::{self, Access, WriteMode};
use crate::domain::clients::{status_label, store, ClientRow, STATUSES};
use crate::domain::custom_fields::value::form_value;
use crate::domain::custom_fields::{self, FieldRow, FieldType};
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::clients as ops;
use crate::state::AppState;
use crate::web::{client_access, query_pairs};

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

fn form_groups(
    defs: &[FieldRow],
    access: &Access,
    custom: &HashMap<String, Vec<String>>,
    errors: &[FieldError],
) -> Vec<FormGroup> {
    let mut groups: Vec<FormGroup> = Vec::new();
    for d in defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || access.write_sensitive))
    {
        let values = custom.get(&d.field_key).cloned().unwrap_or_default();
        let kind = d.kind();
        let field = FormField {
            key: d.field_key.clone(),
            label: d.label.clone(),
            kind: kind.as_str(),
            value: match (kind, values.first()) {
                // why: datetime-local inputs take "YYYY-MM-DDTHH:MM" without a zone.
                (FieldType::DateTime, Some(v)) => {
                    v.trim_end_matches('Z').chars().take(16).collect()
                }
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
        };
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

#[allow(clippy::too_many_arguments)]
fn build_form(
    c: &mut DbConn,
    org: &str,
    access: &Access,
    id: Option<String>,
    version: i64,
    state: FormState,
    errors: Vec<FieldError>,
    stale: bool,
) -> AppResult<ClientForm> {
    let defs = custom_fields::store::list(c, org, "client", false)?;
    let owners = owner_names(c, org)?
        .into_iter()
        .filter(|(uid, _)| access.oversee || *uid == access.user_id)
        .collect::<Vec<_>>();
    let owner = state.values.get("assignedTo").cloned().unwrap_or_default();
    let employer_name = match state.values.get("employerId").filter(|e| !e.is_empty()) {
        Some(e) => store::find(c, org, e)?
            .map(|e| e.display_name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let all_tags = store::list_tags(c, org)?;
    let general_error = errors
        .iter()
        .find(|e| {
            !e.field.starts_with("customFields.")
                && !state.values.contains_key(&e.field)
                && e.field != "tags"
        })
        .map(|e| format!("{}: {}", e.field, e.message));
    Ok(ClientForm {
        heading: if id.is_some() {
            "Edit client".into()
        } else {
            "New client".into()
        },
        id,
        version,
        statuses: choices(
            STATUSES
                .iter()
                .map(|s| (s.to_string(), status_label(s).to_string())),
            &[state
                .values
                .get("status")
                .cloned()
                .unwrap_or_else(|| "lead".into())],
        ),
        owners: choices(owners, &[owner]),
        tags: choices(
            all_tags.iter().map(|t| (t.name.clone(), t.name.clone())),
            &state.tags,
        ),
        groups: form_groups(&defs, access, &state.custom, &errors),
        employer_name,
        values: state.values,
        errors,
        stale,
        general_error,
    })
}

pub async fn new_form(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let me = actor.user_id.clone();
    let pairs = query_pairs(&req)?;
    let form = db::run(&state.pool, move |c| {
        let defs = custom_fields::store::list(c, &org, "client", false)?;
        let mut values: HashMap<String, String> = HashMap::from([
            ("type".to_string(), "individual".to_string()),
            ("status".to_string(), "lead".to_string()),
            ("assignedTo".to_string(), me),
        ]);
        // Prefill from the query, e.g. "add a person to this company".
        for (k, v) in pairs {
            if ["type", "employerId"].contains(&k.as_str()) {
                values.insert(k, v);
            }
        }
        let custom = defs
            .iter()
            .filter_map(|d| {
                let default: Value = serde_json::from_str(d.default_value.as_deref()?).ok()?;
                Some((d.field_key.clone(), form_values(&default)))
            })
            .collect();
        build_form(
            c,
            &org,
            &access,
            None,
            0,
            FormState {
                values,
                custom,
                tags: Vec::new(),
            },
            Vec::new(),
            false,
        )
    })
    .await?;
    render(&req, &actor, "New client", &form).await
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
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let id = id.into_inner();
    let form = db::run(&state.pool, move |c| {
        let row = service::get(c, &org, &access, &id)?;
        let tags = store::tags_of(c, std::slice::from_ref(&row.id))?
            .into_iter()
            .map(|(_, t)| t.name)
            .collect();
        let custom = row
            .custom_map()
            .iter()
            .map(|(k, v)| (k.clone(), form_values(v)))
            .collect();
        build_form(
            c,
            &org,
            &access,
            Some(row.id.clone()),
            row.version,
            FormState {
                values: row_values(&row),
                custom,
                tags,
            },
            Vec::new(),
            false,
        )
    })
    .await?;
    render(&req, &actor, "Edit client", &form).await
}

/// Reads the posted form into the API's JSON shape, so both go through one validation.
fn form_to_body(pairs: &[(String, String)], defs: &[FieldRow]) -> (Map<String, Value>, FormState) {
    let mut body = Map::new();
    let mut address = Map::new();
    let mut custom = Map::new();
    let mut state = FormState {
        values: HashMap::new(),
        custom: HashMap::new(),
        tags: Vec::new(),
    };
    let text = |v: &str| {
        if v.trim().is_empty() {
            Value::Null
        } else {
            Value::String(v.to_string())
        }
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
    for d in defs.iter().filter(|d| d.is_active()) {
        let Some(values) = state.custom.get(&d.field_key) else {
            if d.kind() == FieldType::MultiSelect
                && pairs
                    .iter()
                    .any(|(k, _)| k == &format!("cf_present.{}", d.field_key))
            {
                custom.insert(d.field_key.clone(), Value::Array(Vec::new()));
            }
            continue;
        };
        let value = if d.kind() == FieldType::MultiSelect {
            Value::from(
                values
                    .iter()
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        } else {
            values.first().map_or(Value::Null, |v| text(v))
        };
        custom.insert(d.field_key.clone(), value);
    }
    body.insert("customFields".into(), Value::Object(custom));
    (body, state)
}

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
    let org = scope.org_id.clone();
    let defs = db::run(&state.pool, move |c| {
        Ok(custom_fields::store::list(c, &org, "client", false)?)
    })
    .await?;
    let (body, form_state) = form_to_body(&pairs, &defs);
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
    let access = scope.access("client");
    let org = scope.org_id.clone();
    let form = db::run(&state.pool, move |c| {
        // A stale form comes back with the current version, so saving again overwrites.
        let current = match (&id, stale) {
            (Some(i), true) => store::find(c, &org, i)?.map_or(version, |r| r.version),
            _ => version,
        };
        build_form(c, &org, &access, id, current, form_state, errors, stale)
    })
    .await?;
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
