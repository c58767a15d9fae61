//! The deal form: new, edit, and a posted form shown again with its errors.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{json, Map, Value};

use super::super::clients::{Choice, FormField};
use super::super::{redirect_with_flash, render_with_status};
use super::deal::ContactView;
use super::{get, parse_form};
use crate::auth::ConsoleActor;
use crate::domain::custom_fields::service::Mode;
use crate::domain::custom_fields::value::form_value;
use crate::domain::custom_fields::{FieldRow, FieldType};
use crate::domain::money::format_cents;
use crate::domain::pipeline::service::PipelineView;
use crate::domain::pipeline::OpportunityRow;
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::deals::{self, FormChoices};
use crate::ops::Scope;
use crate::state::AppState;
use crate::web::query_pairs;

#[derive(Template)]
#[template(path = "partials/sales/deal_form.html")]
struct DealForm {
    id: Option<String>,
    version: i64,
    values: HashMap<String, String>,
    pipelines: Vec<Choice>,
    stages: Vec<Choice>,
    owners: Vec<Choice>,
    fields: Vec<FormField>,
    errors: Vec<FieldError>,
    stale: bool,
    client_name: String,
    contacts: Vec<ContactView>,
}

impl DealForm {
    fn v(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }

    fn error(&self, key: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == key || e.field.starts_with(&format!("{key}[")))
            .map(|e| e.message.as_str())
    }
}

/// What a deal form shows: the deal's id and version (none for a new one), the values as
/// typed, custom values by key, contacts (client id, role), and why it was refused.
#[derive(Default)]
struct Filled {
    id: Option<String>,
    version: i64,
    values: HashMap<String, String>,
    custom: HashMap<String, Vec<String>>,
    contacts: Vec<(String, String)>,
    errors: Vec<FieldError>,
    stale: bool,
}

impl Filled {
    /// The clients the form names, whose names it shows.
    fn client_ids(&self) -> Vec<String> {
        let client = self.values.get("clientId").filter(|x| !x.is_empty());
        client
            .into_iter()
            .chain(self.contacts.iter().map(|x| &x.0))
            .cloned()
            .collect()
    }
}

/// The custom fields the caller may fill, with the values and errors of `f`.
fn custom_fields(defs: &[FieldRow], f: &Filled, write_sensitive: bool) -> Vec<FormField> {
    defs.iter()
        .filter(|d| d.is_active() && (!d.sensitive || write_sensitive))
        .map(|d| {
            let vals = f.custom.get(&d.field_key).cloned().unwrap_or_default();
            FormField {
                key: d.field_key.clone(),
                label: d.label.clone(),
                kind: d.kind().as_str(),
                value: vals.first().cloned().unwrap_or_default(),
                options: d
                    .option_list()
                    .into_iter()
                    .map(|o| Choice {
                        selected: vals.contains(&o),
                        value: o.clone(),
                        label: o,
                    })
                    .collect(),
                required: d.required,
                help: d.help_text.clone(),
                currency: d.currency.clone().unwrap_or_default(),
                error: f
                    .errors
                    .iter()
                    .find(|e| e.field == format!("customFields.{}", d.field_key))
                    .map(|e| e.message.clone()),
            }
        })
        .collect()
}

/// The chosen pipeline's active stages, with their probabilities.
fn stage_choices(pipeline: &PipelineView, selected: &str) -> Vec<Choice> {
    pipeline
        .stages
        .iter()
        .filter(|s| s.is_active)
        .map(|s| Choice {
            value: s.id.clone(),
            label: format!("{} ({}%)", s.name, s.probability),
            selected: s.id == selected,
        })
        .collect()
}

fn deal_form(ch: FormChoices, scope: &Scope, f: Filled) -> AppResult<DealForm> {
    let pipeline = f
        .values
        .get("pipeline")
        .and_then(|p| ch.pipelines.iter().find(|v| &v.pipeline.id == p))
        .or(ch.pipelines.first())
        .ok_or(AppError::NotFound)?;
    let value = |k: &str| f.values.get(k).cloned().unwrap_or_default();
    let (stage_sel, owner_sel) = (value("stage"), value("assignedTo"));
    let name_of = |id: &str| ch.clients.get(id).cloned().unwrap_or_default();
    Ok(DealForm {
        pipelines: super::pipeline_choices(&ch.pipelines, Some(&pipeline.pipeline.id)),
        stages: stage_choices(pipeline, &stage_sel),
        owners: ch
            .owners
            .iter()
            .map(|(v, l)| Choice {
                selected: *v == owner_sel,
                value: v.clone(),
                label: l.clone(),
            })
            .collect(),
        fields: custom_fields(&ch.defs, &f, scope.access("opportunity").write_sensitive),
        client_name: f
            .values
            .get("clientId")
            .map(|c| name_of(c))
            .unwrap_or_default(),
        contacts: f
            .contacts
            .into_iter()
            .map(|(id, role)| ContactView {
                name: name_of(&id),
                id,
                role,
            })
            .collect(),
        id: f.id,
        version: f.version,
        values: f.values,
        errors: f.errors,
        stale: f.stale,
    })
}

/// Renders the deal form for `f`, with the choices the caller has.
async fn show_form(
    req: &HttpRequest,
    actor: &ConsoleActor,
    scope: &Scope,
    title: &str,
    f: Filled,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let choices = deals::form_choices(scope, f.client_ids()).await?;
    let form = deal_form(choices, scope, f)?;
    render_with_status(req, actor, title, &form, status).await
}

fn deal_values(d: &OpportunityRow) -> HashMap<String, String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let probability = if d.probability_set {
        d.probability.to_string()
    } else {
        String::new()
    };
    HashMap::from([
        ("name".to_string(), d.name.clone()),
        ("clientId".into(), d.client_id.clone()),
        ("pipeline".into(), d.pipeline_id.clone()),
        ("stage".into(), d.stage_id.clone()),
        ("value".into(), format_cents(d.value_cents)),
        ("currency".into(), d.currency.clone()),
        ("probability".into(), probability),
        (
            "expectedCloseDate".into(),
            d.expected_close.map(|x| x.to_string()).unwrap_or_default(),
        ),
        ("assignedTo".into(), opt(&d.assigned_to)),
        ("source".into(), opt(&d.source)),
        ("competitors".into(), d.competitor_list().join(", ")),
        ("description".into(), d.description.clone()),
        ("lossReason".into(), opt(&d.loss_reason)),
    ])
}

/// A deal's stored custom values as the form's inputs hold them (a list per key).
fn custom_values(d: &OpportunityRow) -> HashMap<String, Vec<String>> {
    let stored: Map<String, Value> = serde_json::from_str(&d.custom_fields).unwrap_or_default();
    stored
        .iter()
        .map(|(k, v)| {
            let vals = match v {
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                other => vec![form_value(other)],
            };
            (k.clone(), vals)
        })
        .collect()
}

pub async fn new_form(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = query_pairs(&req)?;
    let mut values = HashMap::from([
        ("currency".to_string(), actor.org.default_currency.clone()),
        ("assignedTo".into(), actor.user_id.clone()),
    ]);
    for k in ["pipeline", "clientId", "stage"] {
        if let Some(v) = get(&pairs, k) {
            values.insert(k.into(), v.into());
        }
    }
    let f = Filled {
        values,
        ..Default::default()
    };
    show_form(&req, &actor, &scope, "New deal", f, StatusCode::OK).await
}

pub async fn edit_form(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (d, contacts) = deals::for_edit(&scope, id.into_inner()).await?;
    let f = Filled {
        values: deal_values(&d),
        custom: custom_values(&d),
        id: Some(d.id),
        version: d.version,
        contacts,
        ..Default::default()
    };
    show_form(&req, &actor, &scope, "Edit deal", f, StatusCode::OK).await
}

/// A form value as the API takes it: trimmed, `null` when blank.
fn text(v: &str) -> Value {
    if v.trim().is_empty() {
        Value::Null
    } else {
        Value::String(v.trim().to_string())
    }
}

/// A standard field of the form as the API's body holds it; `None` for other keys.
fn field_value(key: &str, v: &str) -> Option<Value> {
    Some(match key {
        "name" | "clientId" | "pipeline" | "stage" | "currency" | "expectedCloseDate"
        | "assignedTo" | "source" | "description" | "lossReason" => text(v),
        "value" => Value::String(v.trim().to_string()),
        "probability" => match v.trim() {
            "" => Value::Null,
            p => p
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(p.into())),
        },
        "competitors" => Value::from(
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>(),
        ),
        _ => return None,
    })
}

/// The contacts the form lists (client id, role), blank rows left out.
fn posted_contacts(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let all = |key: &str| {
        pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    all("contact_id")
        .into_iter()
        .zip(all("contact_role"))
        .filter(|(i, _)| !i.is_empty())
        .collect()
}

/// A posted deal form: the API-shaped body, and what to show again if it is refused.
fn form_body(pairs: &[(String, String)], defs: &[FieldRow]) -> (Map<String, Value>, Filled) {
    let mut body = Map::new();
    let mut f = Filled::default();
    for (k, v) in pairs {
        if let Some(value) = field_value(k, v) {
            body.insert(k.clone(), value);
            f.values.insert(k.clone(), v.clone());
        } else if let Some(key) = k.strip_prefix("cf.") {
            f.custom.entry(key.to_string()).or_default().push(v.clone());
        }
    }
    f.contacts = posted_contacts(pairs);
    let contacts: Vec<Value> = f
        .contacts
        .iter()
        .map(|(i, r)| json!({"clientId": i, "role": r}))
        .collect();
    body.insert("contacts".into(), Value::from(contacts));
    let mut cf = Map::new();
    for d in defs.iter().filter(|d| d.is_active()) {
        if let Some(vals) = f.custom.get(&d.field_key) {
            let value = if d.kind() == FieldType::MultiSelect {
                Value::from(vals.clone())
            } else {
                vals.first().map_or(Value::Null, |v| text(v))
            };
            cf.insert(d.field_key.clone(), value);
        }
    }
    body.insert("customFields".into(), Value::Object(cf));
    (body, f)
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
    let version: i64 = get(&pairs, "version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (body, mut f) = form_body(&pairs, &deals::fields(&scope).await?);
    let saved = match &id {
        None => deals::create(&scope, body).await,
        Some(i) => deals::update(&scope, i.clone(), body, Mode::Replace, Some(version)).await,
    };
    let status = match saved {
        Ok(d) => {
            let to = format!("/opportunities/{}", d.row.id);
            return redirect_with_flash(&req, &to, &format!("{} was saved.", d.row.name));
        }
        Err(AppError::Validation(_, errors)) => {
            f.errors = errors;
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(AppError::Stale(_)) => {
            f.stale = true;
            StatusCode::CONFLICT
        }
        Err(e) => return Err(e),
    };
    (f.id, f.version) = (id, version);
    show_form(&req, &actor, &scope, "Deal", f, status).await
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
