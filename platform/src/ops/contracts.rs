//! Contracts: list, read, save, attach the signed document; they follow their client's
//! `client:*` rights and record rule. Renewing one opens a deal (`deals::renew_contract`).

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::sales::{client_name, client_names};
use super::Scope;
use crate::db::DbConn;
use crate::domain::pipeline::{contracts, ContractRow};
use crate::error::AppResult;

/// Which contracts to list.
#[derive(Default)]
pub struct Filter {
    pub client: Option<String>,
    pub ending_before: Option<NaiveDate>,
    pub status: Option<String>,
}

pub async fn list(scope: &Scope, f: Filter) -> AppResult<Vec<ContractRow>> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let (client, status) = (f.client.as_deref(), f.status.as_deref());
            contracts::list(c, &org, &access, client, f.ending_before, status)
        })
        .await
}

/// Contracts with their clients' names, as lists show them.
pub type Named = Vec<(ContractRow, String)>;

/// Names the clients of `rows`.
pub fn named(c: &mut DbConn, org: &str, rows: Vec<ContractRow>) -> AppResult<Named> {
    let names = client_names(c, org, rows.iter().map(|r| r.client_id.clone()).collect())?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let name = names.get(&r.client_id).cloned().unwrap_or_default();
            (r, name)
        })
        .collect())
}

/// Every contract the caller may see, with its client's name.
pub async fn list_named(scope: &Scope) -> AppResult<Named> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let rows = contracts::list(c, &org, &access, None, None, None)?;
            named(c, &org, rows)
        })
        .await
}

pub async fn get(scope: &Scope, id: String) -> AppResult<ContractRow> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| contracts::get(c, &org, &access, &id))
        .await
}

/// A contract and its client's name, as its form shows it.
pub async fn get_named(scope: &Scope, id: String) -> AppResult<(ContractRow, String)> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let k = contracts::get(c, &org, &access, &id)?;
            let name = client_name(c, &org, Some(&k.client_id))?;
            Ok((k, name))
        })
        .await
}

/// The name of the client a contract form names (empty for none).
pub async fn client_of_form(scope: &Scope, client: Option<String>) -> AppResult<String> {
    scope.require("client", "write")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| client_name(c, &org, client.as_deref()))
        .await
}

/// Creates (`id` is `None`) or changes a contract from the API's or the form's fields.
pub async fn save(
    scope: &Scope,
    id: Option<String>,
    body: Map<String, Value>,
) -> AppResult<ContractRow> {
    scope.require("client", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let currency = super::deals::currency_of(c, &ctx.org_id)?;
            contracts::save(c, &ctx, &access, id.as_deref(), &body, &currency)
        })
        .await
}

/// Attaches the signed document (replacing one before).
pub async fn attach(
    scope: &Scope,
    id: String,
    name: String,
    content_type: String,
    bytes: Vec<u8>,
) -> AppResult<()> {
    scope.require("client", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| contracts::attach(c, &ctx, &access, &id, &name, &content_type, bytes))
        .await
}
