//! A client's profile as the console shows it: the client, whom it is linked to, its
//! custom values grouped as their fields say, its history, consents and likely twins.

use serde_json::{Map, Value};

use super::{relations_in, Relation, Scope};
use crate::db::DbConn;
use crate::domain::audit::{self, AuditRow};
use crate::domain::clients::duplicates::{self, Candidate};
use crate::domain::clients::service::{self, Access};
use crate::domain::clients::{store, ClientRow, TagRow};
use crate::domain::custom_fields::value::display_local;
use crate::domain::custom_fields::{self, FieldRow};
use crate::domain::orgs;
use crate::domain::preferences::{self, Preferences};
use crate::error::AppResult;
use crate::plugins::{ComputedValue, PluginFieldTypes};

/// One custom value as it reads.
pub struct FieldLine {
    pub label: String,
    pub value: String,
    pub help: String,
}

/// Custom values under their fields' display group ("Details" when none is named).
pub struct FieldGroup {
    pub name: String,
    pub fields: Vec<FieldLine>,
}

/// Everything a client's profile shows, as the caller may see it.
pub struct ClientProfile {
    pub row: ClientRow,
    pub tags: Vec<TagRow>,
    /// Every tag of the organization (those it lacks may be added).
    pub all_tags: Vec<TagRow>,
    /// The assigned member's name ("" when unassigned or no longer a member).
    pub owner: String,
    /// Its employer, unless that is in the trash.
    pub employer: Option<ClientRow>,
    /// A company's people.
    pub people: Vec<ClientRow>,
    pub relations: Vec<Relation>,
    /// Custom values the caller may read, grouped.
    pub groups: Vec<FieldGroup>,
    /// What plugins compute for it.
    pub computed: Vec<ComputedValue>,
    /// The latest thirty entries of its history, newest first.
    pub history: Vec<AuditRow>,
    pub preferences: Preferences,
    /// Clients it may be the same as.
    pub twins: Vec<Candidate>,
}

/// A client's profile. Showing a sensitive value is audited, before the history is read,
/// so the history shows this view too.
pub async fn profile(scope: &Scope, id: String) -> AppResult<ClientProfile> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    let local = scope.local;
    scope
        .write(move |c, plugins| {
            let org = ctx.org_id.clone();
            let row = service::get(c, &org, &access, &id)?;
            let relations = relations_in(c, &org, &access, &row)?;
            let defs = custom_fields::store::list(c, &org, "client", false)?;
            let stored = row.custom_map();
            if access.read_sensitive
                && defs
                    .iter()
                    .any(|d| d.sensitive && stored.contains_key(&d.field_key))
            {
                let changes = serde_json::json!({});
                audit::record(
                    c,
                    &ctx,
                    "client.view_sensitive",
                    "client",
                    Some(&row.id),
                    changes,
                )?;
            }
            let (owner, employer, people) = linked(c, &org, &row)?;
            Ok(ClientProfile {
                tags: store::tags_of(c, std::slice::from_ref(&row.id))?
                    .into_iter()
                    .map(|(_, t)| t)
                    .collect(),
                all_tags: store::list_tags(c, &org)?,
                history: audit::list_for_resource(c, &org, "client", &row.id, 30)?,
                preferences: preferences::load(c, &org, &row.id)?,
                twins: duplicates::candidates(c, &access, &row)?,
                groups: group_fields(&defs, &stored, &access, plugins, &local),
                computed: plugins.computed(&rapport_plugin_sdk::ComputeRequest::Client(
                    crate::plugins::client_snapshot(&row),
                )),
                owner,
                employer,
                people,
                relations,
                row,
            })
        })
        .await
}

/// Whom a client is linked to: its owner's name, its employer (unless trashed), and a
/// company's people.
fn linked(
    c: &mut DbConn,
    org: &str,
    row: &ClientRow,
) -> AppResult<(String, Option<ClientRow>, Vec<ClientRow>)> {
    let owner = match &row.assigned_to {
        Some(u) => orgs::store::find_member(c, org, u)?
            .map(|m| m.user.name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let employer = match &row.employer_id {
        Some(e) => store::find(c, org, e)?.filter(|e| e.deleted_at.is_none()),
        None => None,
    };
    let people = if row.is_company() {
        store::people_of(c, org, &row.id)?
    } else {
        Vec::new()
    };
    Ok((owner, employer, people))
}

fn group_fields(
    defs: &[FieldRow],
    stored: &Map<String, Value>,
    access: &Access,
    plugins: &PluginFieldTypes,
    local: &crate::locale::Local,
) -> Vec<FieldGroup> {
    let mut groups: Vec<FieldGroup> = Vec::new();
    for d in defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || access.read_sensitive))
    {
        let value = stored
            .get(&d.field_key)
            .map(|v| match v.as_str() {
                // A plugin type reads as its plugin's `format` hook says (or as stored).
                Some(text) if d.field_type.starts_with("plugin:") => {
                    plugins.format(&d.field_type, text)
                }
                _ => display_local(d, v, local),
            })
            .unwrap_or_default();
        let name = if d.display_group.is_empty() {
            "Details".to_string()
        } else {
            d.display_group.clone()
        };
        let line = FieldLine {
            label: d.label.clone(),
            value,
            help: d.help_text.clone(),
        };
        match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => g.fields.push(line),
            None => groups.push(FieldGroup {
                name,
                fields: vec![line],
            }),
        }
    }
    groups
}
