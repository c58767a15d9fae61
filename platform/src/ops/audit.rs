//! The audit log as people read it (`audit:read`): entries newest first, narrowed by who,
//! what kind of record, which action and which days, with actions in words and records by
//! name (a client's or a deal's name, a member's) instead of their ids.

use std::collections::HashMap;

use serde::Serialize;

use super::Scope;
use crate::db::DbConn;
use crate::domain::audit::{self, AuditFilter, AuditRow};
use crate::error::AppResult;

/// An entry and what a person reads for it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(skip)]
    pub row: AuditRow,
    pub action_label: String,
    /// The record's name when it still exists and has one.
    pub resource_name: Option<String>,
    /// Where the record is shown in the console.
    pub resource_link: Option<String>,
}

pub struct Page {
    pub entries: Vec<Entry>,
    pub next: Option<String>,
}

/// Record kinds a person may filter by, with their names.
pub const RECORD_KINDS: &[(&str, &str)] = &[
    ("client", "Clients"),
    ("opportunity", "Deals"),
    ("interaction", "Timeline entries"),
    ("quote", "Quotes"),
    ("contract", "Contracts"),
    ("attachment", "Files"),
    ("import", "Imports"),
    ("tag", "Tags"),
    ("custom_field", "Custom fields"),
    ("pipeline", "Pipelines"),
    ("stage", "Stages"),
    ("user", "Users"),
    ("policy", "Permissions"),
    ("token", "API tokens"),
    ("plugin", "Plugins"),
    ("session", "Sign-ins"),
];

/// Names of the page's clients, deals and members, one query per kind.
fn names(c: &mut DbConn, org: &str, rows: &[AuditRow]) -> AppResult<HashMap<String, String>> {
    let ids = |kind: &str| -> Vec<String> {
        let mut v: Vec<String> = rows
            .iter()
            .filter(|r| r.resource_type == kind)
            .filter_map(|r| r.resource_id.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let mut out: HashMap<String, String> =
        crate::domain::clients::store::find_many(c, org, &ids("client"))?
            .into_iter()
            .map(|r| (r.id, r.display_name))
            .collect();
    out.extend(crate::domain::pipeline::store::names_of(
        c,
        org,
        &ids("opportunity"),
    )?);
    if rows.iter().any(|r| r.resource_type == "user") {
        out.extend(super::interactions::members(c, org)?);
    }
    Ok(out)
}

/// A page of the log, newest first.
pub async fn page(
    scope: &Scope,
    filter: AuditFilter,
    before: Option<String>,
    limit: i64,
) -> AppResult<Page> {
    scope.require("audit", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let mut rows = audit::list_filtered(c, &org, &filter, before.as_deref(), limit + 1)?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            let next = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
            let names = names(c, &org, &rows)?;
            let entries = rows
                .into_iter()
                .map(|row| {
                    let name = row
                        .resource_id
                        .as_ref()
                        .and_then(|id| names.get(id).cloned());
                    let link = match (row.resource_type.as_str(), &row.resource_id, &name) {
                        ("client", Some(id), Some(_)) => Some(format!("/clients/{id}")),
                        ("opportunity", Some(id), Some(_)) => Some(format!("/opportunities/{id}")),
                        _ => None,
                    };
                    Entry {
                        action_label: audit::action_label(&row.action),
                        resource_name: name,
                        resource_link: link,
                        row,
                    }
                })
                .collect();
            Ok(Page { entries, next })
        })
        .await
}

/// The organization's members (id, name) for the "who" filter.
pub async fn people(scope: &Scope) -> AppResult<Vec<(String, String)>> {
    scope.require("audit", "read")?;
    let org = scope.org_id.clone();
    let mut v: Vec<(String, String)> = scope
        .read(move |c| super::interactions::members(c, &org))
        .await?
        .into_iter()
        .collect();
    v.sort_by_key(|a| a.1.to_lowercase());
    Ok(v)
}
