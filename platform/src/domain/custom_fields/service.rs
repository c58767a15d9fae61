//! Rules for defining fields and for applying custom values to a record.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::model::{FieldRow, FieldType, ENTITIES};
use super::store;
use super::value::{normalize, Indexed};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::error::{AppError, AppResult, FieldError};

/// What an admin submits to define or change a field. `None` keeps the current value.
#[derive(Debug, Default, Clone)]
pub struct FieldInput {
    pub entity: Option<String>,
    pub key: Option<String>,
    pub label: Option<String>,
    pub field_type: Option<String>,
    pub required: Option<bool>,
    pub options: Option<Vec<String>>,
    /// `Some(Value::Null)` clears the default.
    pub default_value: Option<Value>,
    pub help_text: Option<String>,
    pub display_group: Option<String>,
    pub position: Option<i32>,
    pub sensitive: Option<bool>,
    pub searchable: Option<bool>,
    pub currency: Option<String>,
    pub archived: Option<bool>,
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && key.len() <= 40
}

/// Applies `input` onto `row` and checks the result as a whole.
fn apply(row: &mut FieldRow, input: &FieldInput, errors: &mut Vec<FieldError>) {
    if let Some(l) = &input.label {
        row.label = l.trim().to_string();
    }
    if row.label.is_empty() || row.label.chars().count() > 80 {
        errors.push(FieldError::new(
            "label",
            "Give the field a label of 1 to 80 characters.",
        ));
    }
    if let Some(r) = input.required {
        row.required = r;
    }
    if let Some(h) = &input.help_text {
        row.help_text = h.trim().chars().take(300).collect();
    }
    if let Some(g) = &input.display_group {
        row.display_group = g.trim().chars().take(60).collect();
    }
    if let Some(p) = input.position {
        row.position = p;
    }
    if let Some(s) = input.sensitive {
        row.sensitive = s;
    }
    if let Some(s) = input.searchable {
        row.searchable = s;
    }
    if let Some(a) = input.archived {
        row.archived_at = match (a, row.archived_at) {
            (true, None) => Some(now()),
            (true, kept) => kept,
            (false, _) => None,
        };
    }
    let kind = row.kind();
    if let Some(options) = &input.options {
        let mut clean: Vec<String> = Vec::new();
        for o in options
            .iter()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
        {
            if o.chars().count() > 80 {
                errors.push(FieldError::new(
                    "options",
                    "Keep each choice under 80 characters.",
                ));
            } else if !clean.contains(&o) {
                clean.push(o);
            }
        }
        row.options = serde_json::to_string(&clean).unwrap_or_else(|_| "[]".into());
    }
    if kind.has_options() && row.option_list().is_empty() {
        errors.push(FieldError::new("options", "List at least one choice."));
    }
    if let Some(c) = &input.currency {
        let c = c.trim().to_uppercase();
        row.currency = if c.is_empty() { None } else { Some(c) };
    }
    if kind == FieldType::Money {
        match &row.currency {
            Some(c) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()) => {}
            _ => errors.push(FieldError::new(
                "currency",
                "Give the ISO currency code, e.g. EUR.",
            )),
        }
    } else {
        row.currency = None;
    }
    if let Some(d) = &input.default_value {
        row.default_value = match normalize(row, d) {
            Ok(Some(n)) => Some(n.json.to_string()),
            Ok(None) => None,
            Err(e) => {
                errors.push(FieldError::new("defaultValue", e));
                None
            }
        };
    }
}

/// Defines a field. `plugin_types` lists the `plugin:<id>/<key>` types enabled plugins offer.
pub fn define(
    conn: &mut DbConn,
    ctx: &AuditContext,
    default_currency: &str,
    plugin_types: &[String],
    input: FieldInput,
) -> AppResult<FieldRow> {
    let mut errors = Vec::new();
    let entity = input.entity.clone().unwrap_or_else(|| "client".into());
    if !ENTITIES.contains(&entity.as_str()) {
        errors.push(FieldError::new(
            "entity",
            format!("Custom fields exist for: {}.", ENTITIES.join(", ")),
        ));
    }
    let key = input.key.clone().unwrap_or_default().trim().to_string();
    if !valid_key(&key) {
        errors.push(FieldError::new(
            "key",
            "Use a camelCase key: a lowercase letter, then letters and digits (at most 40), e.g. renewalDate.",
        ));
    }
    let kind = input.field_type.as_deref().and_then(FieldType::parse);
    let requested_type = input.field_type.clone().unwrap_or_default();
    if kind == Some(FieldType::Plugin) && !plugin_types.contains(&requested_type) {
        errors.push(FieldError::new(
            "type",
            "No enabled plugin of this organization provides this field type.",
        ));
    }
    if kind.is_none() {
        errors.push(FieldError::new(
            "type",
            format!(
                "Choose one of: {}.",
                FieldType::ALL.map(FieldType::as_str).join(", ")
            ),
        ));
    }
    let at = now();
    let mut row = FieldRow {
        id: new_id(),
        organization_id: ctx.org_id.clone(),
        entity: entity.clone(),
        field_key: key.clone(),
        label: String::new(),
        field_type: if kind == Some(FieldType::Plugin) {
            requested_type.clone()
        } else {
            kind.unwrap_or(FieldType::Text).as_str().into()
        },
        required: false,
        options: "[]".into(),
        default_value: None,
        help_text: String::new(),
        display_group: String::new(),
        position: 0,
        sensitive: false,
        searchable: false,
        currency: (kind == Some(FieldType::Money)).then(|| default_currency.to_string()),
        archived_at: None,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    apply(&mut row, &input, &mut errors);
    crate::db::transaction(conn, |c| {
        if valid_key(&key) && store::key_taken(c, &ctx.org_id, &entity, &key)? {
            errors.push(FieldError::new(
                "key",
                "Another field already uses this key.",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The field could not be saved.".into(),
                errors,
            ));
        }
        if input.position.is_none() {
            row.position = store::next_position(c, &ctx.org_id, &entity)?;
        }
        store::insert(c, &row)?;
        audit::record(
            c,
            ctx,
            "custom_field.create",
            "custom_field",
            Some(&row.id),
            json!({"key": row.field_key, "type": row.field_type, "label": row.label}),
        )?;
        Ok(row)
    })
}

pub fn update(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    expected: Option<i64>,
    input: FieldInput,
) -> AppResult<FieldRow> {
    crate::db::transaction(conn, |c| {
        let current = store::find(c, &ctx.org_id, id)?.ok_or(AppError::NotFound)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(AppError::Stale(
                "This field was changed by someone else; reload and try again.".into(),
            ));
        }
        let mut errors = Vec::new();
        if input.key.as_ref().is_some_and(|k| *k != current.field_key) {
            errors.push(FieldError::new(
                "key",
                "The key cannot change once values may use it.",
            ));
        }
        if input
            .field_type
            .as_ref()
            .is_some_and(|t| *t != current.field_type)
        {
            errors.push(FieldError::new(
                "type",
                "The type cannot change once values may use it; add a new field.",
            ));
        }
        let mut row = current.clone();
        apply(&mut row, &input, &mut errors);
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The field could not be saved.".into(),
                errors,
            ));
        }
        row.updated_at = now();
        if !store::replace(c, &row, current.version)? {
            return Err(AppError::Stale(
                "This field was changed by someone else; reload and try again.".into(),
            ));
        }
        let found_by_search = |f: &FieldRow| f.searchable && !f.sensitive && f.is_active();
        if row.entity == "client" && found_by_search(&current) != found_by_search(&row) {
            // Every client's document changes: the indexer rebuilds the organization's.
            crate::domain::outbox::touch(
                c,
                &ctx.org_id,
                crate::domain::outbox::REINDEX,
                &ctx.org_id,
            )?;
        }
        let action = match (current.archived_at.is_some(), row.archived_at.is_some()) {
            (false, true) => "custom_field.archive",
            (true, false) => "custom_field.restore",
            _ => "custom_field.update",
        };
        audit::record(
            c,
            ctx,
            action,
            "custom_field",
            Some(&row.id),
            json!({"key": row.field_key, "label": row.label}),
        )?;
        store::find(c, &ctx.org_id, id)?.ok_or(AppError::NotFound)
    })
}

/// Sets positions to follow the given order of field ids.
pub fn reorder(
    conn: &mut DbConn,
    ctx: &AuditContext,
    entity: &str,
    ids: &[String],
) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        let fields = store::list(c, &ctx.org_id, entity, true)?;
        for (pos, id) in ids.iter().enumerate() {
            let Some(f) = fields.iter().find(|f| &f.id == id) else {
                return Err(AppError::invalid(
                    "ids",
                    "Every id must be a field of this entity.",
                ));
            };
            let mut row = f.clone();
            row.position = i32::try_from(pos).unwrap_or(i32::MAX);
            row.updated_at = now();
            store::replace(c, &row, f.version)?;
        }
        audit::record(
            c,
            ctx,
            "custom_field.reorder",
            "custom_field",
            None,
            json!({"entity": entity, "order": ids}),
        )?;
        Ok(())
    })
}

/// How a write treats custom values the request does not mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new record: absent fields take their default.
    Create,
    /// PUT: absent visible fields are cleared.
    Replace,
    /// PATCH: absent fields keep their value; `null` clears.
    Merge,
}

/// The outcome of applying submitted values to a record's custom values.
pub struct Applied {
    pub json: Map<String, Value>,
    /// The fields whose index rows must be rewritten, with their new rows.
    pub index: Vec<(String, Vec<Indexed>)>,
    /// Keys whose value changed, for the audit entry.
    pub changed: Vec<String>,
}

/// Validates `incoming` against the active definitions. Fields the writer may not see
/// (sensitive, without the right) and archived fields keep their stored value.
pub fn apply_values(
    defs: &[FieldRow],
    existing: &Map<String, Value>,
    incoming: &Map<String, Value>,
    mode: Mode,
    may_touch_sensitive: bool,
    external: &dyn super::ExternalTypes,
) -> Result<Applied, Vec<FieldError>> {
    let mut errors = Vec::new();
    let by_key: HashMap<&str, &FieldRow> = defs.iter().map(|d| (d.field_key.as_str(), d)).collect();
    for key in incoming.keys() {
        match by_key.get(key.as_str()) {
            None => errors.push(FieldError::new(
                format!("customFields.{key}"),
                "There is no such custom field.",
            )),
            Some(d) if !d.is_active() => errors.push(FieldError::new(
                format!("customFields.{key}"),
                "This field is archived.",
            )),
            Some(d) if d.sensitive && !may_touch_sensitive => errors.push(FieldError::new(
                format!("customFields.{key}"),
                "Your role may not change this sensitive field.",
            )),
            _ => {}
        }
    }
    let mut json = existing.clone();
    let mut index = Vec::new();
    let mut changed = Vec::new();
    for def in defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || may_touch_sensitive))
    {
        let key = def.field_key.as_str();
        let field = format!("customFields.{key}");
        let submitted = match (incoming.get(key), mode) {
            (Some(v), _) => Some(v.clone()),
            (None, Mode::Create) => def
                .default_value
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            (None, Mode::Replace) => Some(Value::Null),
            (None, Mode::Merge) => None,
        };
        let Some(raw) = submitted else {
            if def.required && existing.get(key).is_none_or(Value::is_null) {
                errors.push(FieldError::new(
                    field,
                    format!("{} is required.", def.label),
                ));
            }
            continue;
        };
        let raw = match (def.kind(), &raw) {
            (FieldType::Plugin, Value::String(v)) if !v.trim().is_empty() => {
                match external.validate(&def.field_type, v.trim()) {
                    Ok(normalized) => Value::String(normalized),
                    Err(message) => {
                        errors.push(FieldError::new(field, message));
                        continue;
                    }
                }
            }
            _ => raw,
        };
        match normalize(def, &raw) {
            Err(e) => errors.push(FieldError::new(field, e)),
            Ok(None) if def.required => errors.push(FieldError::new(
                field,
                format!("{} is required.", def.label),
            )),
            Ok(normalized) => {
                let new_json = normalized.as_ref().map(|n| n.json.clone());
                let old_json = existing.get(key).cloned().filter(|v| !v.is_null());
                if new_json != old_json {
                    changed.push(key.to_string());
                }
                match &normalized {
                    Some(n) => json.insert(key.to_string(), n.json.clone()),
                    None => json.remove(key),
                };
                index.push((
                    def.id.clone(),
                    normalized.map(|n| n.index).unwrap_or_default(),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(Applied {
            json,
            index,
            changed,
        })
    } else {
        Err(errors)
    }
}
