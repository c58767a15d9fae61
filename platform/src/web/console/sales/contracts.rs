//! Contracts: the list, the form (new, show, save), the signed document, renewals.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Duration;
use serde_json::{Map, Value};

use super::super::clients::Choice;
use super::super::{redirect_with_flash, render, render_with_status};
use super::{get, parse_form};
use crate::auth::ConsoleActor;
use crate::domain::money::format_cents;
use crate::domain::pipeline::ContractRow;
use crate::error::{AppError, AppResult, FieldError};
use crate::locale::Local;
use crate::ops::{contracts, deals};
use crate::state::AppState;
use crate::web::query_pairs;

pub struct ContractLine {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub client: String,
    pub period: String,
    pub value: String,
    pub status: String,
    pub due: bool,
    pub notice_by: String,
    pub has_renewal: bool,
}

#[derive(Template)]
#[template(path = "partials/sales/contracts.html")]
struct ContractsPage {
    rows: Vec<ContractLine>,
    can_write: bool,
}

fn contract_lines(rows: contracts::Named, local: &Local) -> Vec<ContractLine> {
    let today = local.today();
    rows.into_iter()
        .map(|(r, client)| ContractLine {
            due: r.status == "active" && r.end_date <= today + Duration::days(90),
            notice_by: local.date(r.end_date - Duration::days(i64::from(r.notice_days))),
            client,
            period: format!("{} → {}", local.date(r.start_date), local.date(r.end_date)),
            value: local.cents(r.value_cents, &r.currency),
            has_renewal: r.renewal_opportunity_id.is_some(),
            id: r.id,
            name: r.name,
            client_id: r.client_id,
            status: r.status,
        })
        .collect()
}

pub async fn contracts_list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let rows = contract_lines(contracts::list_named(&scope).await?, &scope.local);
    let can_write = scope.can("client", "write");
    render(
        &req,
        &actor,
        "Contracts",
        &ContractsPage { rows, can_write },
    )
    .await
}

#[derive(Template)]
#[template(path = "partials/sales/contract_form.html")]
struct ContractForm {
    id: Option<String>,
    version: i64,
    values: HashMap<String, String>,
    client_name: String,
    errors: Vec<FieldError>,
    statuses: Vec<Choice>,
    document_name: String,
    renewal_id: String,
    can_renew: bool,
    /// Without `client:write` the contract is shown, not offered for editing.
    can_write: bool,
}

impl ContractForm {
    fn v(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }

    fn error(&self, key: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == key)
            .map(|e| e.message.as_str())
    }

    /// A form for `values`, naming its client; the rest as for a new contract.
    fn new(values: HashMap<String, String>, client_name: String) -> Self {
        let status = values
            .get("status")
            .cloned()
            .unwrap_or_else(|| "active".into());
        Self {
            statuses: crate::domain::pipeline::CONTRACT_STATUSES
                .iter()
                .map(|s| Choice {
                    value: s.to_string(),
                    label: crate::web::console::label(s),
                    selected: **s == *status,
                })
                .collect(),
            id: None,
            version: 0,
            values,
            client_name,
            errors: Vec::new(),
            document_name: String::new(),
            renewal_id: String::new(),
            can_renew: false,
            can_write: true,
        }
    }
}

pub async fn contract_new(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = query_pairs(&req)?;
    let today = scope.local.today();
    let mut values = HashMap::from([
        ("currency".to_string(), actor.org.default_currency.clone()),
        ("startDate".into(), today.to_string()),
        ("endDate".into(), (today + Duration::days(365)).to_string()),
        ("noticeDays".into(), "30".into()),
        ("status".into(), "active".into()),
    ]);
    for k in ["clientId", "opportunityId"] {
        if let Some(v) = get(&pairs, k) {
            values.insert(k.into(), v.into());
        }
    }
    let client = values.get("clientId").cloned();
    let name = contracts::client_of_form(&scope, client).await?;
    render(
        &req,
        &actor,
        "New contract",
        &ContractForm {
            can_write: scope.can("client", "write"),
            ..ContractForm::new(values, name)
        },
    )
    .await
}

fn contract_values(k: &ContractRow) -> HashMap<String, String> {
    HashMap::from([
        ("name".to_string(), k.name.clone()),
        ("clientId".into(), k.client_id.clone()),
        (
            "opportunityId".into(),
            k.opportunity_id.clone().unwrap_or_default(),
        ),
        ("startDate".into(), k.start_date.to_string()),
        ("endDate".into(), k.end_date.to_string()),
        ("value".into(), format_cents(k.value_cents)),
        ("currency".into(), k.currency.clone()),
        ("renewalTerms".into(), k.renewal_terms.clone()),
        ("noticeDays".into(), k.notice_days.to_string()),
        ("status".into(), k.status.clone()),
    ])
}

pub async fn contract_show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (k, client) = contracts::get_named(&scope, id.into_inner()).await?;
    let form = ContractForm {
        id: Some(k.id.clone()),
        version: k.version,
        document_name: k.document_name.clone().unwrap_or_default(),
        renewal_id: k.renewal_opportunity_id.clone().unwrap_or_default(),
        can_renew: scope.can("opportunity", "write"),
        can_write: scope.can("client", "write"),
        ..ContractForm::new(contract_values(&k), client)
    };
    render(&req, &actor, "Contract", &form).await
}

/// A posted contract form: the API-shaped body, and the values to show again.
fn contract_body(pairs: &[(String, String)]) -> (Map<String, Value>, HashMap<String, String>) {
    let mut body = Map::new();
    let mut values = HashMap::new();
    for (k, v) in pairs {
        let value = match k.as_str() {
            "name" | "clientId" | "opportunityId" | "startDate" | "endDate" | "value"
            | "currency" | "renewalTerms" | "status" => Value::String(v.trim().to_string()),
            "noticeDays" => v
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(v.clone())),
            "version" => {
                let version = v.parse::<i64>().map(Value::from).unwrap_or(Value::Null);
                body.insert(k.clone(), version);
                continue;
            }
            _ => continue,
        };
        body.insert(k.clone(), value);
        values.insert(k.clone(), v.clone());
    }
    if body.get("opportunityId").and_then(Value::as_str) == Some("") {
        body.insert("opportunityId".into(), Value::Null);
    }
    (body, values)
}

async fn contract_save(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: Option<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (body, values) = contract_body(&parse_form(&body)?);
    let version = body.get("version").and_then(Value::as_i64).unwrap_or(0);
    let errors = match contracts::save(&scope, id.clone(), body).await {
        Ok(k) => {
            let to = format!("/contracts/{}", k.id);
            return redirect_with_flash(&req, &to, &format!("{} was saved.", k.name));
        }
        Err(AppError::Validation(_, errors)) => errors,
        Err(e) => return Err(e),
    };
    let client = values.get("clientId").cloned();
    let name = contracts::client_of_form(&scope, client).await?;
    let form = ContractForm {
        id,
        version,
        errors,
        ..ContractForm::new(values, name)
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    render_with_status(&req, &actor, "Contract", &form, status).await
}

pub async fn contract_create(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    contract_save(req, actor, state, None, body).await
}

pub async fn contract_update(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    contract_save(req, actor, state, Some(id.into_inner()), body).await
}

/// The signed document, sent by the page's script as the raw request body.
pub async fn contract_upload(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (name, ctype) = crate::web::upload::document_of(&req)?;
    let id = id.into_inner();
    contracts::attach(&scope, id.clone(), name, ctype, body.to_vec()).await?;
    redirect_with_flash(
        &req,
        &format!("/contracts/{id}"),
        "The signed document was attached.",
    )
}

pub async fn contract_document(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let k = contracts::get(&scope, id.into_inner()).await?;
    crate::web::upload::document_response(k)
}

pub async fn contract_renew(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let deal = deals::renew_contract(&scope, id.into_inner()).await?.row;
    redirect_with_flash(
        &req,
        &format!("/opportunities/{}", deal.id),
        &format!("The renewal deal {} was opened.", deal.name),
    )
}

/// Contracts whose end is near, for the dashboard.
/// The dashboard's contracts up for renewal, as the contract list shows them.
pub fn renewal_lines(rows: &[crate::ops::dashboard::Renewal], local: &Local) -> Vec<ContractLine> {
    rows.iter()
        .map(|r| ContractLine {
            due: true,
            notice_by: local.date(r.notice_by),
            client: r.client_name.clone(),
            period: format!("{} → {}", local.date(r.start_date), local.date(r.end_date)),
            value: local.cents(r.value_cents, &r.currency),
            has_renewal: r.renewal_opportunity_id.is_some(),
            id: r.id.clone(),
            name: r.name.clone(),
            client_id: r.client_id.clone(),
            status: r.status.clone(),
        })
        .collect()
}
