//! Duplicates: a client's likely twins, the groups the background scan found, the
//! side-by-side comparison, the merge and its undo. Merging needs `client:write` and
//! `client:delete`; every client shown passes the record rule.

use super::Scope;
use crate::domain::clients::duplicates::{self, Candidate, Group, ScanState, MERGE_FIELDS};
use crate::domain::clients::{service, ClientRow};
use crate::domain::custom_fields;
use crate::error::{AppError, AppResult};

/// Clients a client may be the same as.
pub async fn of_client(scope: &Scope, id: String) -> AppResult<Vec<Candidate>> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let row = service::get(c, &org, &access, &id)?;
            duplicates::candidates(c, &access, &row)
        })
        .await
}

/// The groups the last scan found (as far as the caller sees) and the scan's state.
pub async fn groups(scope: &Scope, limit: usize) -> AppResult<(Vec<Group>, ScanState)> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| duplicates::page(c, &org, &access, limit))
        .await
}

/// Asks for a fresh scan. It reads the whole organization: only those who may merge may.
pub async fn request_scan(scope: &Scope) -> AppResult<ScanState> {
    scope.require("client", "write")?;
    scope.require("client", "delete")?;
    let org = scope.org_id.clone();
    scope.read(move |c| duplicates::request_scan(c, &org)).await
}

/// One field where the two clients differ.
pub struct FieldChoice {
    pub key: String,
    pub label: String,
    pub mine: String,
    pub theirs: String,
}

/// Two clients side by side before a merge.
pub struct Comparison {
    pub survivor: ClientRow,
    pub duplicate: ClientRow,
    /// The fields where they differ (custom fields the caller may write included).
    pub fields: Vec<FieldChoice>,
    /// What moves to the survivor: ("interactions", n), ("deals", n).
    pub moving: Vec<(String, i64)>,
}

fn label(key: &str) -> &'static str {
    match key {
        "firstName" => "First name",
        "lastName" => "Last name",
        "companyName" => "Company name",
        "email" => "E-mail",
        "phone" => "Phone",
        "website" => "Website",
        "industry" => "Industry",
        "source" => "Source",
        "status" => "Status",
        "assignedTo" => "Owner",
        _ => "Address",
    }
}

fn shown(c: &ClientRow, key: &str) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    match key {
        "firstName" => o(&c.first_name),
        "lastName" => o(&c.last_name),
        "companyName" => o(&c.company_name),
        "email" => o(&c.email),
        "phone" => o(&c.phone),
        "website" => o(&c.website),
        "industry" => o(&c.industry),
        "source" => o(&c.source),
        "status" => c.status.clone(),
        "assignedTo" => o(&c.assigned_to),
        _ => [&c.street, &c.postal_code, &c.city, &c.country]
            .iter()
            .filter_map(|v| v.as_deref())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn text(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// The comparison the merge page shows (only for those who may merge).
pub async fn compare(scope: &Scope, survivor: String, duplicate: String) -> AppResult<Comparison> {
    scope.require("client", "write")?;
    scope.require("client", "delete")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let s = service::get(c, &org, &access, &survivor)?;
            let d = service::get(c, &org, &access, &duplicate)?;
            let owner = |c: &mut crate::db::DbConn, row: &ClientRow| {
                crate::domain::orgs::store::find_member(
                    c,
                    &org,
                    row.assigned_to.as_deref().unwrap_or_default(),
                )
                .map(|m| m.map(|m| m.user.email).unwrap_or_default())
            };
            let (s_owner, d_owner) = (owner(c, &s)?, owner(c, &d)?);
            let mut fields: Vec<FieldChoice> = MERGE_FIELDS
                .iter()
                .map(|k| {
                    let (mine, theirs) = if *k == "assignedTo" {
                        (s_owner.clone(), d_owner.clone())
                    } else {
                        (shown(&s, k), shown(&d, k))
                    };
                    FieldChoice {
                        key: k.to_string(),
                        label: label(k).to_string(),
                        mine,
                        theirs,
                    }
                })
                .filter(|f| f.mine != f.theirs)
                .collect();
            let (sm, dm) = (s.custom_map(), d.custom_map());
            for def in custom_fields::store::list(c, &org, "client", false)? {
                if !def.is_active() || (def.sensitive && !access.write_sensitive) {
                    continue;
                }
                let (mine, theirs) = (text(sm.get(&def.field_key)), text(dm.get(&def.field_key)));
                if mine != theirs {
                    fields.push(FieldChoice {
                        key: format!("{}{}", duplicates::CUSTOM_PREFIX, def.field_key),
                        label: def.label.clone(),
                        mine,
                        theirs,
                    });
                }
            }
            let (interactions, deals) = duplicates::moving_counts(c, &org, &d.id)?;
            Ok(Comparison {
                survivor: s,
                duplicate: d,
                fields,
                moving: vec![
                    ("interactions".to_string(), interactions),
                    ("deals".to_string(), deals),
                ],
            })
        })
        .await
}

/// Merges `duplicate` into `survivor`, taking `fields` from the duplicate; answers the
/// survivor and the id that undoes the merge.
pub async fn merge(
    scope: &Scope,
    survivor: String,
    duplicate: String,
    fields: Vec<String>,
) -> AppResult<(ClientRow, String)> {
    scope.require("client", "write")?;
    scope.require("client", "delete")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| {
            super::clients::writing(c, &ctx, &access, ext, |c, w| {
                duplicates::merge(c, w, &survivor, &duplicate, &fields)
            })
            .map(|(merged, _)| merged)
        })
        .await
}

/// Undoes a merge; answers the survivor.
pub async fn undo(scope: &Scope, undo_id: String) -> AppResult<ClientRow> {
    scope.require("client", "write")?;
    scope.require("client", "delete")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| duplicates::undo(c, &ctx, &undo_id))
        .await
}

/// What a merge did, as the caller may see it.
pub struct MergeSummary {
    pub undo_id: String,
    pub survivor_id: String,
    /// Empty when the caller may not see the client (or it is gone).
    pub survivor: String,
    pub duplicate: String,
    pub undone: bool,
}

/// A merge of this organization by its undo id; names only of clients the caller may see.
pub async fn merged(scope: &Scope, undo_id: String) -> AppResult<MergeSummary> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let m = duplicates::merge_record(c, &org, &undo_id)?.ok_or(AppError::NotFound)?;
            let name = |c: &mut crate::db::DbConn, id: &str| -> AppResult<String> {
                Ok(crate::domain::clients::store::find(c, &org, id)?
                    .filter(|r| access.sees(r))
                    .map(|r| r.display_name)
                    .unwrap_or_default())
            };
            Ok(MergeSummary {
                survivor: name(c, &m.survivor_id)?,
                duplicate: name(c, &m.duplicate_id)?,
                survivor_id: m.survivor_id,
                undo_id,
                undone: m.undone,
            })
        })
        .await
}
