//! Rules for clients: validation of every field, record-level access (a user without
//! the `oversee` right works only on the clients assigned to them), optimistic
//! concurrency, the trash, tags, relations, bulk actions — each change audited with
//! the fields it changed, in the same transaction.
//!
//! Why this file is long: every field's validation and the write paths that use it (create,
//! update, bulk, restore) change together; queries, keys, duplicates and the bulk writer
//! are modules of their own.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::model::*;
use super::store;
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::custom_fields::service::{apply_values, Mode};
use crate::domain::custom_fields::value::{phone_digits, valid_email, valid_url};
use crate::domain::custom_fields::{self, FieldRow};
use crate::domain::orgs;
use crate::error::{AppError, AppResult, FieldError};

pub use crate::domain::custom_fields::service::Mode as WriteMode;

/// What the acting user may do beyond their base rights, decided by policy.
#[derive(Debug, Clone)]
pub struct Access {
    pub user_id: String,
    /// May act on clients assigned to others (and on unassigned ones).
    pub oversee: bool,
    pub read_sensitive: bool,
    pub write_sensitive: bool,
    /// May add names to the organization's tag catalogue while tagging.
    pub create_tags: bool,
}

impl Access {
    pub fn sees(&self, c: &ClientRow) -> bool {
        self.oversee || c.assigned_to.as_deref() == Some(self.user_id.as_str())
    }
}

const READ_ONLY_KEYS: &[&str] = &[
    "id",
    "organizationId",
    "displayName",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "version",
    "createdBy",
];
const KEYS: &[&str] = &[
    "type",
    "firstName",
    "lastName",
    "companyName",
    "email",
    "phone",
    "address",
    "website",
    "industry",
    "source",
    "status",
    "assignedTo",
    "employerId",
    "tags",
    "customFields",
];
const ADDRESS_KEYS: &[&str] = &["street", "city", "region", "postalCode", "country"];

/// A field of the body: absent (`None`), cleared (`Some(None)`) or set.
fn text_field(
    body: &Map<String, Value>,
    key: &str,
    label: &str,
    max: usize,
    mode: Mode,
    errors: &mut Vec<FieldError>,
) -> Option<Option<String>> {
    match body.get(key) {
        // why: a new record starts from defaults, so an absent field keeps them.
        None if mode != Mode::Replace => None,
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.chars().count() > max {
                errors.push(FieldError::new(
                    key,
                    format!("{label}: use at most {max} characters."),
                ));
                None
            } else if s.is_empty() {
                Some(None)
            } else {
                Some(Some(s.to_string()))
            }
        }
        Some(_) => {
            errors.push(FieldError::new(key, format!("{label} must be text.")));
            None
        }
    }
}

fn set(target: &mut Option<String>, value: Option<Option<String>>) {
    if let Some(v) = value {
        *target = v;
    }
}

/// Everything a write needs besides the body.
pub struct WriteContext<'a> {
    pub ctx: &'a AuditContext,
    pub access: &'a Access,
    pub defs: &'a [FieldRow],
    /// Checks plugin field types.
    pub external: &'a dyn crate::domain::custom_fields::ExternalTypes,
}

/// What applying a body decided beyond the row's columns.
struct BodyOutcome {
    /// The new tag set, when the body named one.
    tags: Option<Vec<String>>,
    index: Vec<(String, Vec<custom_fields::value::Indexed>)>,
    custom_changed: Vec<String>,
}

fn apply_body(
    conn: &mut DbConn,
    w: &WriteContext<'_>,
    row: &mut ClientRow,
    body: &Map<String, Value>,
    mode: Mode,
    errors: &mut Vec<FieldError>,
) -> AppResult<BodyOutcome> {
    for key in body.keys() {
        if !KEYS.contains(&key.as_str()) && !READ_ONLY_KEYS.contains(&key.as_str()) {
            errors.push(FieldError::new(key.clone(), "Unknown field."));
        }
    }
    match body.get("type") {
        Some(Value::String(k)) if KINDS.contains(&k.as_str()) => row.kind = k.clone(),
        Some(_) => errors.push(FieldError::new("type", "Use individual or company.")),
        None => {}
    }
    set(
        &mut row.first_name,
        text_field(body, "firstName", "First name", 100, mode, errors),
    );
    set(
        &mut row.last_name,
        text_field(body, "lastName", "Last name", 100, mode, errors),
    );
    set(
        &mut row.company_name,
        text_field(body, "companyName", "Company name", 200, mode, errors),
    );
    if let Some(email) = text_field(body, "email", "E-mail", 254, mode, errors) {
        match email {
            Some(e) if !valid_email(&e.to_lowercase()) => {
                errors.push(FieldError::new("email", "Enter a valid e-mail address."))
            }
            other => row.email = other.map(|e| e.to_lowercase()),
        }
    }
    if let Some(phone) = text_field(body, "phone", "Phone", 40, mode, errors) {
        match phone {
            Some(p) if phone_digits(&p).is_none() => errors.push(FieldError::new(
                "phone",
                "Enter a phone number (digits, spaces, + - ( ) .).",
            )),
            other => row.phone = other,
        }
    }
    match body.get("address") {
        None if mode != Mode::Replace => {}
        None | Some(Value::Null) => {
            row.street = None;
            row.city = None;
            row.region = None;
            row.postal_code = None;
            row.country = None;
        }
        Some(Value::Object(a)) => {
            for key in a.keys() {
                if !ADDRESS_KEYS.contains(&key.as_str()) {
                    errors.push(FieldError::new(
                        format!("address.{key}"),
                        "Unknown address part.",
                    ));
                }
            }
            let mut part = |key: &str, label: &str, max: usize, target: &mut Option<String>| {
                let mut errs = Vec::new();
                let v = text_field(a, key, label, max, mode, &mut errs);
                errors.extend(
                    errs.into_iter()
                        .map(|e| FieldError::new(format!("address.{}", e.field), e.message)),
                );
                set(target, v);
            };
            part("street", "Street", 200, &mut row.street);
            part("city", "City", 100, &mut row.city);
            part("region", "Region", 100, &mut row.region);
            part("postalCode", "Postal code", 20, &mut row.postal_code);
            let mut country = row.country.clone();
            part("country", "Country", 2, &mut country);
            match country.map(|c| c.to_uppercase()) {
                Some(c) if !valid_country(&c) => errors.push(FieldError::new(
                    "address.country",
                    "Use the two-letter ISO country code, e.g. DE.",
                )),
                other => row.country = other,
            }
        }
        Some(_) => errors.push(FieldError::new("address", "Send the address as an object.")),
    }
    if let Some(site) = text_field(body, "website", "Website", 300, mode, errors) {
        let site = site.map(|s| {
            if s.contains("://") {
                s
            } else {
                format!("https://{s}")
            }
        });
        match site {
            Some(s) if !valid_url(&s) => errors.push(FieldError::new(
                "website",
                "Enter a web address, e.g. https://acme.example.",
            )),
            other => row.website = other,
        }
    }
    set(
        &mut row.industry,
        text_field(body, "industry", "Industry", 100, mode, errors),
    );
    set(
        &mut row.source,
        text_field(body, "source", "Source", 100, mode, errors),
    );
    match body.get("status") {
        Some(Value::String(s)) if STATUSES.contains(&s.as_str()) => row.status = s.clone(),
        Some(_) => errors.push(FieldError::new(
            "status",
            format!("Choose one of: {}.", STATUSES.join(", ")),
        )),
        None => {}
    }
    if let Some(owner) = text_field(body, "assignedTo", "Owner", 64, mode, errors) {
        match &owner {
            Some(uid) => {
                let member = orgs::store::find_member(conn, &w.ctx.org_id, uid)?;
                if !member.is_some_and(|m| m.membership.is_active) {
                    errors.push(FieldError::new(
                        "assignedTo",
                        "Assign the client to an active member of the organization.",
                    ));
                } else if !w.access.oversee && uid != &w.access.user_id {
                    errors.push(FieldError::new(
                        "assignedTo",
                        "Your role may assign clients only to yourself.",
                    ));
                } else {
                    row.assigned_to = owner;
                }
            }
            None if !w.access.oversee => errors.push(FieldError::new(
                "assignedTo",
                "Your role may not leave a client unassigned.",
            )),
            None => row.assigned_to = None,
        }
    }
    if let Some(employer) = text_field(body, "employerId", "Company", 64, mode, errors) {
        match &employer {
            Some(id) => match store::find(conn, &w.ctx.org_id, id)? {
                Some(c) if c.is_company() && c.deleted_at.is_none() && c.id != row.id => {
                    row.employer_id = employer
                }
                Some(c) if c.id == row.id => errors.push(FieldError::new(
                    "employerId",
                    "A client cannot work for itself.",
                )),
                _ => errors.push(FieldError::new(
                    "employerId",
                    "Choose a company client of this organization.",
                )),
            },
            None => row.employer_id = None,
        }
    }
    if row.kind == "company" {
        if row.company_name.is_none() {
            errors.push(FieldError::new("companyName", "A company needs a name."));
        }
        if row.employer_id.is_some() {
            errors.push(FieldError::new(
                "employerId",
                "Only people belong to a company.",
            ));
        }
    } else if row.first_name.is_none() && row.last_name.is_none() {
        errors.push(FieldError::new(
            "lastName",
            "Give at least a first or a last name.",
        ));
    }

    let tags = match body.get("tags") {
        None if mode != Mode::Replace => None,
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let mut ids = Vec::new();
            for item in items {
                let Some(name) = item.as_str().map(str::trim).filter(|n| !n.is_empty()) else {
                    errors.push(FieldError::new("tags", "List tag names as text."));
                    continue;
                };
                match store::find_tag_by_name(conn, &w.ctx.org_id, name)? {
                    Some(t) => ids.push(t.id),
                    None if w.access.create_tags => match validate_tag(name, "gray") {
                        Ok(()) => {
                            let tag = TagRow {
                                id: new_id(),
                                organization_id: w.ctx.org_id.clone(),
                                name: name.to_string(),
                                color: "gray".into(),
                                created_at: now(),
                            };
                            // Two writers may name the same new tag at once (two requests,
                            // two workflow runs): the second finds the first's, committed.
                            match crate::db::transaction(conn, |c| store::insert_tag(c, &tag)) {
                                Ok(()) => ids.push(tag.id),
                                Err(diesel::result::Error::DatabaseError(
                                    diesel::result::DatabaseErrorKind::UniqueViolation,
                                    _,
                                )) => match store::find_tag_by_name(conn, &w.ctx.org_id, name)? {
                                    Some(t) => ids.push(t.id),
                                    None => errors.push(FieldError::new(
                                        "tags",
                                        format!("The tag {name:?} could not be made; try again."),
                                    )),
                                },
                                Err(e) => return Err(e.into()),
                            }
                        }
                        Err(e) => errors.push(FieldError::new("tags", e)),
                    },
                    None => errors.push(FieldError::new(
                        "tags",
                        format!("There is no tag {name:?}; ask an admin to add it."),
                    )),
                }
            }
            ids.dedup();
            Some(ids)
        }
        Some(_) => {
            errors.push(FieldError::new("tags", "Send tags as a list of names."));
            None
        }
    };

    let incoming = match body.get("customFields") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            errors.push(FieldError::new(
                "customFields",
                "Send custom fields as an object.",
            ));
            Map::new()
        }
    };
    let existing = row.custom_map();
    let custom_mode = if body.contains_key("customFields") || mode != Mode::Replace {
        mode
    } else {
        Mode::Merge
    };
    let (index, changed) = match apply_values(
        w.defs,
        &existing,
        &incoming,
        custom_mode,
        w.access.write_sensitive,
        w.external,
    ) {
        Ok(applied) => {
            row.custom_fields = Value::Object(applied.json).to_string();
            (applied.index, applied.changed)
        }
        Err(errs) => {
            errors.extend(errs);
            (Vec::new(), Vec::new())
        }
    };
    Ok(BodyOutcome {
        tags,
        index,
        custom_changed: changed,
    })
}

fn names(row: &mut ClientRow) {
    row.display_name = if row.kind == "company" {
        row.company_name.clone().unwrap_or_default()
    } else {
        let full = [row.first_name.as_deref(), row.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if full.is_empty() {
            row.email.clone().unwrap_or_default()
        } else {
            full
        }
    };
    row.sort_name = row.display_name.to_lowercase();
}

/// Which columns differ, for the audit entry.
fn diff(before: &ClientRow, after: &ClientRow) -> BTreeMap<&'static str, Value> {
    let mut d = BTreeMap::new();
    macro_rules! cmp {
        ($($field:ident => $name:literal),*) => {
            $(if before.$field != after.$field {
                d.insert($name, json!([before.$field, after.$field]));
            })*
        };
    }
    cmp!(kind => "type", first_name => "firstName", last_name => "lastName", company_name => "companyName",
        email => "email", phone => "phone", street => "address.street", city => "address.city",
        region => "address.region", postal_code => "address.postalCode", country => "address.country",
        website => "website", industry => "industry", source => "source", status => "status",
        assigned_to => "assignedTo", employer_id => "employerId");
    d
}

fn changes_json(
    column_diff: BTreeMap<&'static str, Value>,
    custom_changed: &[String],
    defs: &[FieldRow],
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    tags_changed: bool,
) -> Value {
    let mut m: Map<String, Value> = column_diff
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    for key in custom_changed {
        let sensitive = defs.iter().any(|d| &d.field_key == key && d.sensitive);
        // why: sensitive values stay out of the audit log; the entry says only that they changed.
        let entry = if sensitive {
            json!("changed")
        } else {
            json!([
                before.get(key).cloned().unwrap_or(Value::Null),
                after.get(key).cloned().unwrap_or(Value::Null)
            ])
        };
        m.insert(format!("customFields.{key}"), entry);
    }
    if tags_changed {
        m.insert("tags".into(), json!("changed"));
    }
    Value::Object(m)
}

pub fn create(
    conn: &mut DbConn,
    w: &WriteContext<'_>,
    body: &Map<String, Value>,
) -> AppResult<ClientRow> {
    crate::db::transaction(conn, |c| create_within(c, w, body))
}

/// [`create`] for a caller that already holds a transaction and rolls all of it back on
/// any error (an import's chunk, or its per-row savepoint): no savepoint of its own, which
/// cost two round trips per imported row on PostgreSQL.
pub fn create_within(
    c: &mut DbConn,
    w: &WriteContext<'_>,
    body: &Map<String, Value>,
) -> AppResult<ClientRow> {
    {
        let at = now();
        let mut row = ClientRow {
            id: new_id(),
            organization_id: w.ctx.org_id.clone(),
            kind: "individual".into(),
            first_name: None,
            last_name: None,
            company_name: None,
            display_name: String::new(),
            sort_name: String::new(),
            email: None,
            phone: None,
            street: None,
            city: None,
            region: None,
            postal_code: None,
            country: None,
            website: None,
            industry: None,
            source: None,
            status: "lead".into(),
            assigned_to: Some(w.access.user_id.clone()),
            employer_id: None,
            custom_fields: "{}".into(),
            version: 1,
            created_by: Some(w.access.user_id.clone()),
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let mut errors = Vec::new();
        let BodyOutcome {
            tags,
            index,
            custom_changed,
        } = apply_body(c, w, &mut row, body, Mode::Create, &mut errors)?;
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The client could not be saved.".into(),
                errors,
            ));
        }
        names(&mut row);
        store::insert(c, &row)?;
        if let Some(tags) = &tags {
            store::set_tags(c, &w.ctx.org_id, &row.id, tags)?;
        }
        custom_fields::store::write_values(c, &w.ctx.org_id, &row.id, &index)?;
        let blank = ClientRow {
            kind: String::new(),
            status: String::new(),
            assigned_to: None,
            ..row.clone()
        };
        let mut changes = changes_json(
            diff(&blank, &row),
            &custom_changed,
            w.defs,
            &Map::new(),
            &row.custom_map(),
            tags.as_ref().is_some_and(|t| !t.is_empty()),
        );
        changes["displayName"] = json!(row.display_name);
        audit::record(c, w.ctx, "client.create", "client", Some(&row.id), changes)?;
        w.external.client_created(&row);
        Ok(row)
    }
}

/// A live client the acting user may see; anything else is "not found".
pub fn get(conn: &mut DbConn, org_id: &str, access: &Access, id: &str) -> AppResult<ClientRow> {
    store::find(conn, org_id, id)?
        .filter(|c| c.deleted_at.is_none() && access.sees(c))
        .ok_or(AppError::NotFound)
}

fn stale() -> AppError {
    AppError::Stale(
        "This client was changed by someone else since you opened it; reload to see their changes."
            .into(),
    )
}

pub fn update(
    conn: &mut DbConn,
    w: &WriteContext<'_>,
    id: &str,
    body: &Map<String, Value>,
    mode: Mode,
    expected: Option<i64>,
) -> AppResult<ClientRow> {
    let conditional = expected.is_some() || body.contains_key("version");
    crate::domain::last_writer_wins(conditional, || {
        update_once(conn, w, id, body, mode, expected)
    })
}

fn update_once(
    conn: &mut DbConn,
    w: &WriteContext<'_>,
    id: &str,
    body: &Map<String, Value>,
    mode: Mode,
    expected: Option<i64>,
) -> AppResult<ClientRow> {
    crate::db::transaction(conn, |c| {
        crate::db::lock_row(c, "clients", id)?;
        let current = get(c, &w.ctx.org_id, w.access, id)?;
        let expected = expected.or_else(|| body.get("version").and_then(Value::as_i64));
        if expected.is_some_and(|v| v != current.version) {
            return Err(stale());
        }
        let mut row = current.clone();
        let mut errors = Vec::new();
        let BodyOutcome {
            tags,
            index,
            custom_changed,
        } = apply_body(c, w, &mut row, body, mode, &mut errors)?;
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The client could not be saved.".into(),
                errors,
            ));
        }
        names(&mut row);
        let columns = diff(&current, &row);
        let old_tags: Vec<String> = store::tags_of(c, std::slice::from_ref(&current.id))?
            .into_iter()
            .map(|(_, t)| t.id)
            .collect();
        let tags_changed = tags.as_ref().is_some_and(|t| {
            let mut a = t.clone();
            let mut b = old_tags.clone();
            a.sort();
            b.sort();
            a != b
        });
        if columns.is_empty() && custom_changed.is_empty() && !tags_changed {
            return Ok(current);
        }
        row.updated_at = now();
        if !store::replace(c, &row, current.version)? {
            return Err(stale());
        }
        if current.status != row.status {
            crate::domain::interactions::record_event(
                c,
                w.ctx,
                &row.id,
                None,
                &format!("Status changed from {} to {}", current.status, row.status),
                json!({"event": "client.status", "from": current.status, "to": row.status}),
            )?;
        }
        if current.assigned_to != row.assigned_to {
            let name = match &row.assigned_to {
                Some(u) => crate::domain::orgs::store::find_member(c, &w.ctx.org_id, u)?
                    .map(|m| {
                        if m.user.name.is_empty() {
                            m.user.email
                        } else {
                            m.user.name
                        }
                    })
                    .unwrap_or_default(),
                None => "nobody".into(),
            };
            crate::domain::interactions::record_event(
                c,
                w.ctx,
                &row.id,
                None,
                &format!("Assigned to {name}"),
                json!({"event": "client.assigned", "from": current.assigned_to, "to": row.assigned_to}),
            )?;
        }
        w.external.client_updated(&row);
        if tags_changed {
            if let Some(tags) = &tags {
                store::set_tags(c, &w.ctx.org_id, &row.id, tags)?;
            }
        }
        custom_fields::store::write_values(c, &w.ctx.org_id, &row.id, &index)?;
        audit::record(
            c,
            w.ctx,
            "client.update",
            "client",
            Some(&row.id),
            changes_json(
                columns,
                &custom_changed,
                w.defs,
                &current.custom_map(),
                &row.custom_map(),
                tags_changed,
            ),
        )?;
        get(c, &w.ctx.org_id, w.access, id)
    })
}

/// Moves a client to the trash; returns it as it was.
pub fn trash(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    id: &str,
    expected: Option<i64>,
    external: &dyn custom_fields::ExternalTypes,
) -> AppResult<ClientRow> {
    crate::db::transaction(conn, |c| {
        let current = get(c, &ctx.org_id, access, id)?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(stale());
        }
        let row = ClientRow {
            deleted_at: Some(now()),
            updated_at: now(),
            ..current.clone()
        };
        if !store::replace(c, &row, current.version)? {
            return Err(stale());
        }
        audit::record(
            c,
            ctx,
            "client.delete",
            "client",
            Some(id),
            json!({"displayName": current.display_name}),
        )?;
        external.client_deleted(&current);
        Ok(current)
    })
}

fn trashed(conn: &mut DbConn, org_id: &str, id: &str) -> AppResult<ClientRow> {
    store::find(conn, org_id, id)?
        .filter(|c| c.deleted_at.is_some())
        .ok_or(AppError::NotFound)
}

pub fn restore(conn: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<ClientRow> {
    crate::db::transaction(conn, |c| {
        let current = trashed(c, &ctx.org_id, id)?;
        let row = ClientRow {
            deleted_at: None,
            updated_at: now(),
            ..current.clone()
        };
        if !store::replace(c, &row, current.version)? {
            return Err(stale());
        }
        audit::record(
            c,
            ctx,
            "client.restore",
            "client",
            Some(id),
            json!({"displayName": current.display_name}),
        )?;
        store::find(c, &ctx.org_id, id)?.ok_or(AppError::NotFound)
    })
}

/// Deletes a trashed client for good, with its tags, relations and custom values.
pub fn purge(conn: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        let current = trashed(c, &ctx.org_id, id)?;
        custom_fields::store::delete_record_values(c, id)?;
        store::delete(c, &ctx.org_id, id)?;
        audit::record(
            c,
            ctx,
            "client.purge",
            "client",
            Some(id),
            json!({"displayName": current.display_name}),
        )?;
        Ok(())
    })
}

// Tags

fn validate_tag(name: &str, color: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 40 {
        return Err("Give the tag a name of 1 to 40 characters.".into());
    }
    if !TAG_COLORS.contains(&color) {
        return Err(format!("Choose a colour: {}.", TAG_COLORS.join(", ")));
    }
    Ok(())
}

pub fn define_tag(
    conn: &mut DbConn,
    ctx: &AuditContext,
    name: &str,
    color: &str,
) -> AppResult<TagRow> {
    let name = name.trim();
    validate_tag(name, color).map_err(|e| {
        AppError::Validation(
            "The tag could not be saved.".into(),
            vec![FieldError::new(
                if e.contains("colour") {
                    "color"
                } else {
                    "name"
                },
                e,
            )],
        )
    })?;
    crate::db::transaction(conn, |c| {
        if store::find_tag_by_name(c, &ctx.org_id, name)?.is_some() {
            return Err(AppError::invalid("name", "A tag with this name exists."));
        }
        let tag = TagRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            name: name.into(),
            color: color.into(),
            created_at: now(),
        };
        store::insert_tag(c, &tag).map_err(|e| match e {
            // Made by someone else since the look-up above.
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => AppError::invalid("name", "A tag with this name exists."),
            e => e.into(),
        })?;
        audit::record(
            c,
            ctx,
            "tag.create",
            "tag",
            Some(&tag.id),
            json!({"name": tag.name, "color": tag.color}),
        )?;
        Ok(tag)
    })
}

pub fn update_tag(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    name: Option<&str>,
    color: Option<&str>,
) -> AppResult<TagRow> {
    crate::db::transaction(conn, |c| {
        let tag = store::find_tag(c, &ctx.org_id, id)?.ok_or(AppError::NotFound)?;
        let name = name.map_or(tag.name.clone(), |n| n.trim().to_string());
        let color = color.map_or(tag.color.clone(), str::to_string);
        validate_tag(&name, &color).map_err(|e| {
            AppError::Validation(
                "The tag could not be saved.".into(),
                vec![FieldError::new(
                    if e.contains("colour") {
                        "color"
                    } else {
                        "name"
                    },
                    e,
                )],
            )
        })?;
        if let Some(other) = store::find_tag_by_name(c, &ctx.org_id, &name)? {
            if other.id != tag.id {
                return Err(AppError::invalid("name", "A tag with this name exists."));
            }
        }
        store::update_tag(c, &ctx.org_id, id, &name, &color)?;
        audit::record(
            c,
            ctx,
            "tag.update",
            "tag",
            Some(id),
            json!({"name": [tag.name, name], "color": [tag.color, color]}),
        )?;
        store::find_tag(c, &ctx.org_id, id)?.ok_or(AppError::NotFound)
    })
}

pub fn delete_tag(conn: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        let tag = store::find_tag(c, &ctx.org_id, id)?.ok_or(AppError::NotFound)?;
        store::delete_tag(c, &ctx.org_id, id)?;
        audit::record(
            c,
            ctx,
            "tag.delete",
            "tag",
            Some(id),
            json!({"name": tag.name}),
        )?;
        Ok(())
    })
}

/// Resolves a tag by id or name within the organization.
pub fn resolve_tag(conn: &mut DbConn, org_id: &str, reference: &str) -> AppResult<Option<TagRow>> {
    Ok(match store::find_tag(conn, org_id, reference)? {
        Some(t) => Some(t),
        None => store::find_tag_by_name(conn, org_id, reference)?,
    })
}

fn bump(conn: &mut DbConn, current: &ClientRow) -> AppResult<()> {
    let row = ClientRow {
        updated_at: now(),
        ..current.clone()
    };
    if !store::replace(conn, &row, current.version)? {
        return Err(stale());
    }
    Ok(())
}

pub fn tag_client(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    client_id: &str,
    tag_id: &str,
    add: bool,
) -> AppResult<bool> {
    crate::db::transaction(conn, |c| {
        let client = get(c, &ctx.org_id, access, client_id)?;
        let tag = store::find_tag(c, &ctx.org_id, tag_id)?.ok_or(AppError::NotFound)?;
        let changed = if add {
            store::add_tag_bumping(c, &client, &tag.id, now())?.ok_or_else(stale)?
        } else {
            let removed = store::remove_tag(c, &ctx.org_id, client_id, &tag.id)?;
            if removed {
                bump(c, &client)?;
            }
            removed
        };
        if changed {
            audit::record(
                c,
                ctx,
                if add { "client.tag" } else { "client.untag" },
                "client",
                Some(client_id),
                json!({"tag": tag.name}),
            )?;
        }
        Ok(changed)
    })
}

// Relations

pub fn relate(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    from: &str,
    to: &str,
    label: &str,
) -> AppResult<RelationRow> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 60 {
        return Err(AppError::invalid(
            "label",
            "Describe the relation in 1 to 60 characters, e.g. partner.",
        ));
    }
    if from == to {
        return Err(AppError::invalid(
            "clientId",
            "A client cannot be related to itself.",
        ));
    }
    crate::db::transaction(conn, |c| {
        let a = get(c, &ctx.org_id, access, from)?;
        let b = store::find(c, &ctx.org_id, to)?
            .filter(|x| x.deleted_at.is_none())
            .ok_or_else(|| {
                AppError::invalid("clientId", "Choose a client of this organization.")
            })?;
        if store::relation_exists(c, from, to, label)? {
            return Err(AppError::invalid(
                "label",
                "These clients already have this relation.",
            ));
        }
        let row = RelationRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            from_client_id: a.id.clone(),
            to_client_id: b.id.clone(),
            label: label.to_string(),
            created_at: now(),
        };
        store::insert_relation(c, &row)?;
        audit::record(
            c,
            ctx,
            "client.relate",
            "client",
            Some(&a.id),
            json!({"to": b.id, "label": label}),
        )?;
        Ok(row)
    })
}

pub fn unrelate(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    client_id: &str,
    relation_id: &str,
) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        get(c, &ctx.org_id, access, client_id)?;
        let row = store::delete_relation(c, &ctx.org_id, client_id, relation_id)?
            .ok_or(AppError::NotFound)?;
        audit::record(
            c,
            ctx,
            "client.unrelate",
            "client",
            Some(client_id),
            json!({"to": row.to_client_id, "label": row.label}),
        )?;
        Ok(())
    })
}

// Bulk

#[derive(Debug, Clone)]
pub enum BulkAction {
    Assign(Option<String>),
    Tag(String),
    Untag(String),
    Delete,
}

/// Applies one action to many clients in one transaction: all or nothing.
pub fn bulk(
    conn: &mut DbConn,
    w: &WriteContext<'_>,
    ids: &[String],
    action: &BulkAction,
) -> AppResult<usize> {
    if ids.is_empty() || ids.len() > 500 {
        return Err(AppError::invalid("ids", "Select 1 to 500 clients."));
    }
    crate::db::transaction(conn, |c| {
        let mut done = 0;
        for id in ids {
            match action {
                BulkAction::Assign(owner) => {
                    let mut body = Map::new();
                    body.insert(
                        "assignedTo".into(),
                        owner.clone().map_or(Value::Null, Value::String),
                    );
                    update(c, w, id, &body, Mode::Merge, None)?;
                }
                BulkAction::Tag(tag) => {
                    tag_client(c, w.ctx, w.access, id, tag, true)?;
                }
                BulkAction::Untag(tag) => {
                    tag_client(c, w.ctx, w.access, id, tag, false)?;
                }
                BulkAction::Delete => drop(trash(c, w.ctx, w.access, id, None, w.external)?),
            }
            done += 1;
        }
        Ok(done)
    })
}

pub fn save_view(
    conn: &mut DbConn,
    ctx: &AuditContext,
    user_id: &str,
    name: &str,
    query: &str,
) -> AppResult<SavedViewRow> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(AppError::invalid(
            "name",
            "Name the view (1 to 60 characters).",
        ));
    }
    let row = SavedViewRow {
        id: new_id(),
        organization_id: ctx.org_id.clone(),
        user_id: user_id.to_string(),
        entity: "client".into(),
        name: name.to_string(),
        query: query.trim_start_matches('?').chars().take(2000).collect(),
        created_at: now(),
    };
    store::upsert_view(conn, &row)?;
    Ok(row)
}
