//! Duplicates: likely twins of a client (same e-mail, same phone number whatever its
//! formatting, same name at the same company), groups of them across the organization, and
//! merging one into another — everything attached to the duplicate moves to the survivor,
//! the duplicate goes to the trash, and the audit entry holds what it takes to undo the merge
//! for 30 days.

use std::collections::BTreeMap;

use chrono::Duration;
use diesel::prelude::*;
use serde_json::{json, Map, Value};

use super::service::{self, Access, WriteContext};
use super::{store, ClientRow};
use crate::db::schema::{
    attachments, audit_log, client_relations, client_tags, clients, contact_preferences, contracts,
    external_refs, interaction_participants, interactions, opportunities, opportunity_contacts,
};
use crate::db::{now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::error::{AppError, AppResult};

/// How long a merge can be undone.
pub const UNDO_DAYS: i64 = 30;

/// The last nine digits of a phone number: the same number written with or without its
/// country code, spaces or brackets compares equal.
pub fn phone_key(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 7).then(|| digits[digits.len().saturating_sub(9)..].to_string())
}

/// A name as compared: lower case, accents and punctuation dropped, single spaces.
pub fn name_key(name: &str) -> String {
    let folded: String = name
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' | 'ø' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            'ß' => 's',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A likely twin and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub reason: &'static str,
}

/// Clients the actor sees that are likely the same as `row`.
pub fn candidates(
    conn: &mut DbConn,
    access: &Access,
    row: &ClientRow,
) -> AppResult<Vec<Candidate>> {
    let mut out: Vec<Candidate> = Vec::new();
    let base = || {
        clients::table
            .filter(clients::organization_id.eq(row.organization_id.clone()))
            .filter(clients::deleted_at.is_null())
            .filter(clients::id.ne(row.id.clone()))
            .into_boxed()
    };
    let mut push = |rows: Vec<ClientRow>, reason: &'static str| {
        for c in rows {
            if access.sees(&c) && !out.iter().any(|o| o.id == c.id) {
                out.push(Candidate {
                    id: c.id,
                    name: c.display_name,
                    reason,
                });
            }
        }
    };
    if let Some(e) = &row.email {
        let same: Vec<ClientRow> = base()
            .filter(clients::email.eq(e.to_lowercase()))
            .limit(20)
            .select(ClientRow::as_select())
            .load(conn)?;
        push(same, "same e-mail");
    }
    if let Some(key) = row.phone.as_deref().and_then(phone_key) {
        let same: Vec<ClientRow> = base()
            .filter(clients::phone.like(format!("%{}%", &key[key.len().saturating_sub(4)..])))
            .limit(200)
            .select(ClientRow::as_select())
            .load(conn)?;
        push(
            same.into_iter()
                .filter(|c| c.phone.as_deref().and_then(phone_key).as_deref() == Some(&key))
                .collect(),
            "same phone number",
        );
    }
    let same_name: Vec<ClientRow> = base()
        .filter(clients::kind.eq(row.kind.clone()))
        .filter(clients::sort_name.eq(row.sort_name.clone()))
        .limit(50)
        .select(ClientRow::as_select())
        .load(conn)?;
    let key = name_key(&row.display_name);
    push(
        same_name
            .into_iter()
            .filter(|c| {
                // Two people of the same name are only suspicious at the same company.
                name_key(&c.display_name) == key
                    && (row.kind == "company"
                        || (row.employer_id.is_some() && c.employer_id == row.employer_id)
                        || (row.company_name.is_some()
                            && c.company_name.as_deref().map(name_key)
                                == row.company_name.as_deref().map(name_key)))
            })
            .collect(),
        if row.kind == "company" {
            "same company name"
        } else {
            "same name and company"
        },
    );
    Ok(out)
}

/// A group of likely duplicates found by the scan.
#[derive(Debug, Clone)]
pub struct Group {
    pub reason: &'static str,
    pub clients: Vec<(String, String)>,
}

/// id, name, kind, e-mail, phone, employer, company name.
type ScanRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Scans the organization for groups of likely duplicates (by e-mail, phone, and name with
/// company), as far as the actor sees; at most `limit` groups.
pub fn scan(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    limit: usize,
) -> AppResult<Vec<Group>> {
    let mut q = clients::table
        .filter(clients::organization_id.eq(org_id))
        .filter(clients::deleted_at.is_null())
        .into_boxed();
    if !access.oversee {
        q = q.filter(clients::assigned_to.eq(access.user_id.clone()));
    }
    let rows: Vec<ScanRow> = q
        .order(clients::created_at.asc())
        .limit(500_000)
        .select((
            clients::id,
            clients::display_name,
            clients::kind,
            clients::email,
            clients::phone,
            clients::employer_id,
            clients::company_name,
        ))
        .load(conn)?;
    let mut by: BTreeMap<(&'static str, String), Vec<(String, String)>> = BTreeMap::new();
    for (id, name, kind, email, phone, employer, company) in rows {
        if let Some(e) = email {
            by.entry(("same e-mail", e.to_lowercase()))
                .or_default()
                .push((id.clone(), name.clone()));
        }
        if let Some(p) = phone.as_deref().and_then(phone_key) {
            by.entry(("same phone number", p))
                .or_default()
                .push((id.clone(), name.clone()));
        }
        let at = if kind == "company" {
            String::new()
        } else {
            employer
                .or(company.map(|c| name_key(&c)))
                .unwrap_or_default()
        };
        if kind == "company" || !at.is_empty() {
            by.entry((
                "same name and company",
                format!("{kind}|{}|{at}", name_key(&name)),
            ))
            .or_default()
            .push((id, name));
        }
    }
    let mut seen: std::collections::HashSet<Vec<String>> = Default::default();
    let mut out = Vec::new();
    for ((reason, _), members) in by {
        if members.len() < 2 {
            continue;
        }
        let mut ids: Vec<String> = members.iter().map(|m| m.0.clone()).collect();
        ids.sort();
        if !seen.insert(ids) {
            continue;
        }
        out.push(Group {
            reason,
            clients: members,
        });
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Core fields a merge may take from the duplicate instead of the survivor.
pub const MERGE_FIELDS: &[&str] = &[
    "firstName",
    "lastName",
    "companyName",
    "email",
    "phone",
    "website",
    "industry",
    "source",
    "status",
    "assignedTo",
    "address",
];

fn field_value(c: &ClientRow, field: &str) -> Value {
    match field {
        "firstName" => json!(c.first_name),
        "lastName" => json!(c.last_name),
        "companyName" => json!(c.company_name),
        "email" => json!(c.email),
        "phone" => json!(c.phone),
        "website" => json!(c.website),
        "industry" => json!(c.industry),
        "source" => json!(c.source),
        "status" => json!(c.status),
        "assignedTo" => json!(c.assigned_to),
        _ => json!({"street": c.street, "city": c.city, "region": c.region,
                    "postalCode": c.postal_code, "country": c.country}),
    }
}

/// Merges `duplicate` into `survivor`. `take` lists the fields whose value comes from the
/// duplicate; empty survivor fields are filled from the duplicate anyway. Answers the
/// survivor and the id of the audit entry that can undo it.
pub fn merge(
    conn: &mut DbConn,
    w: &WriteContext<'_>,
    survivor_id: &str,
    duplicate_id: &str,
    take: &[String],
) -> AppResult<(ClientRow, String)> {
    let org = w.ctx.org_id.clone();
    conn.transaction(|c| {
        if survivor_id == duplicate_id {
            return Err(AppError::invalid(
                "duplicateId",
                "A client cannot be merged into itself.",
            ));
        }
        let survivor = service::get(c, &org, w.access, survivor_id)?;
        let duplicate = service::get(c, &org, w.access, duplicate_id)
            .map_err(|_| AppError::invalid("duplicateId", "No such client that you can see."))?;
        if survivor.kind != duplicate.kind {
            return Err(AppError::invalid(
                "duplicateId",
                "A person and a company cannot be merged.",
            ));
        }
        for t in take {
            if !MERGE_FIELDS.contains(&t.as_str()) {
                return Err(AppError::invalid(
                    "fields",
                    &format!("{t} cannot be taken from the duplicate."),
                ));
            }
        }
        // The duplicate's e-mail would clash with nothing once it is in the trash, but the
        // survivor takes it only if asked or empty.
        let mut body = Map::new();
        for f in MERGE_FIELDS {
            let from_dup = field_value(&duplicate, f);
            let mine = field_value(&survivor, f);
            let empty = mine.is_null() || mine.as_str() == Some("");
            if take.iter().any(|t| t == f) || (empty && !from_dup.is_null()) {
                if f == &"address" && !take.iter().any(|t| t == "address") {
                    continue;
                }
                if from_dup != mine {
                    body.insert(f.to_string(), from_dup);
                }
            }
        }
        let survivor_before = survivor.clone();
        let survivor_tags: Vec<String> = store::tags_of(c, std::slice::from_ref(&survivor.id))?
            .into_iter()
            .map(|(_, t)| t.id)
            .collect();
        // Move everything attached to the duplicate, remembering each row for the undo.
        let moved_interactions: Vec<String> = interactions::table
            .filter(interactions::client_id.eq(&duplicate.id))
            .select(interactions::id)
            .load(c)?;
        diesel::update(interactions::table.filter(interactions::id.eq_any(&moved_interactions)))
            .set(interactions::client_id.eq(&survivor.id))
            .execute(c)?;
        let moved_participants: Vec<String> = interaction_participants::table
            .filter(interaction_participants::client_id.eq(&duplicate.id))
            .select(interaction_participants::id)
            .load(c)?;
        diesel::update(
            interaction_participants::table
                .filter(interaction_participants::id.eq_any(&moved_participants)),
        )
        .set(interaction_participants::client_id.eq(&survivor.id))
        .execute(c)?;
        let moved_deals: Vec<String> = opportunities::table
            .filter(opportunities::client_id.eq(&duplicate.id))
            .select(opportunities::id)
            .load(c)?;
        diesel::update(opportunities::table.filter(opportunities::id.eq_any(&moved_deals)))
            .set(opportunities::client_id.eq(&survivor.id))
            .execute(c)?;
        for d in &moved_deals {
            crate::search::touch(c, &org, "opportunity", d)?;
        }
        let moved_contracts: Vec<String> = contracts::table
            .filter(contracts::client_id.eq(&duplicate.id))
            .select(contracts::id)
            .load(c)?;
        diesel::update(contracts::table.filter(contracts::id.eq_any(&moved_contracts)))
            .set(contracts::client_id.eq(&survivor.id))
            .execute(c)?;
        let moved_files: Vec<String> = attachments::table
            .filter(attachments::client_id.eq(&duplicate.id))
            .select(attachments::id)
            .load(c)?;
        diesel::update(attachments::table.filter(attachments::id.eq_any(&moved_files)))
            .set(attachments::client_id.eq(&survivor.id))
            .execute(c)?;
        let moved_employees: Vec<String> = clients::table
            .filter(clients::employer_id.eq(&duplicate.id))
            .select(clients::id)
            .load(c)?;
        diesel::update(clients::table.filter(clients::id.eq_any(&moved_employees)))
            .set(clients::employer_id.eq(&survivor.id))
            .execute(c)?;
        // Relations: re-pointed unless the survivor already has the same one (or it would
        // point at itself); those are dropped and kept in the record.
        let relations: Vec<(String, String, String, String)> = client_relations::table
            .filter(
                client_relations::from_client_id
                    .eq(&duplicate.id)
                    .or(client_relations::to_client_id.eq(&duplicate.id)),
            )
            .select((
                client_relations::id,
                client_relations::from_client_id,
                client_relations::to_client_id,
                client_relations::label,
            ))
            .load(c)?;
        let mut moved_relations = Vec::new();
        let mut dropped_relations = Vec::new();
        for (id, from, to, label) in relations {
            let nf = if from == duplicate.id {
                survivor.id.clone()
            } else {
                from.clone()
            };
            let nt = if to == duplicate.id {
                survivor.id.clone()
            } else {
                to.clone()
            };
            if nf == nt || store::relation_exists(c, &nf, &nt, &label)? {
                dropped_relations.push(json!({"id": id, "from": from, "to": to, "label": label}));
                diesel::delete(client_relations::table.filter(client_relations::id.eq(&id)))
                    .execute(c)?;
            } else {
                diesel::update(client_relations::table.filter(client_relations::id.eq(&id)))
                    .set((
                        client_relations::from_client_id.eq(&nf),
                        client_relations::to_client_id.eq(&nt),
                    ))
                    .execute(c)?;
                moved_relations.push(json!({"id": id, "from": from, "to": to}));
            }
        }
        // Deal contacts: moved unless the survivor is already on that deal.
        let contacts: Vec<(String, String)> = opportunity_contacts::table
            .filter(opportunity_contacts::client_id.eq(&duplicate.id))
            .select((
                opportunity_contacts::opportunity_id,
                opportunity_contacts::role,
            ))
            .load(c)?;
        let mut moved_contacts = Vec::new();
        let mut dropped_contacts = Vec::new();
        for (deal, role) in contacts {
            let taken: bool = diesel::select(diesel::dsl::exists(
                opportunity_contacts::table
                    .filter(opportunity_contacts::opportunity_id.eq(&deal))
                    .filter(opportunity_contacts::client_id.eq(&survivor.id)),
            ))
            .get_result(c)?;
            let row = opportunity_contacts::table
                .filter(opportunity_contacts::opportunity_id.eq(&deal))
                .filter(opportunity_contacts::client_id.eq(&duplicate.id));
            if taken {
                diesel::delete(row).execute(c)?;
                dropped_contacts.push(json!({"deal": deal, "role": role}));
            } else {
                diesel::update(row)
                    .set(opportunity_contacts::client_id.eq(&survivor.id))
                    .execute(c)?;
                moved_contacts.push(deal);
            }
        }
        let moved_refs: Vec<(String, String, String)> = external_refs::table
            .filter(external_refs::record_id.eq(&duplicate.id))
            .select((
                external_refs::source,
                external_refs::entity,
                external_refs::external_id,
            ))
            .load(c)?;
        diesel::update(external_refs::table.filter(external_refs::record_id.eq(&duplicate.id)))
            .set(external_refs::record_id.eq(&survivor.id))
            .execute(c)?;
        // Tags: the survivor gets the duplicate's too.
        let dup_tags: Vec<String> = store::tags_of(c, std::slice::from_ref(&duplicate.id))?
            .into_iter()
            .map(|(_, t)| t.id)
            .collect();
        let added_tags: Vec<String> = dup_tags
            .into_iter()
            .filter(|t| !survivor_tags.contains(t))
            .collect();
        for t in &added_tags {
            diesel::insert_into(client_tags::table)
                .values((
                    client_tags::client_id.eq(&survivor.id),
                    client_tags::tag_id.eq(t),
                    client_tags::organization_id.eq(&org),
                ))
                .execute(c)?;
        }
        // Preferences: the survivor keeps its own; without any it takes the duplicate's.
        let survivor_has_prefs: bool = diesel::select(diesel::dsl::exists(
            contact_preferences::table.filter(contact_preferences::client_id.eq(&survivor.id)),
        ))
        .get_result(c)?;
        let moved_prefs = !survivor_has_prefs
            && diesel::update(
                contact_preferences::table.filter(contact_preferences::client_id.eq(&duplicate.id)),
            )
            .set(contact_preferences::client_id.eq(&survivor.id))
            .execute(c)?
                == 1;
        // The duplicate goes to the trash; then the survivor takes the chosen values.
        diesel::update(clients::table.filter(clients::id.eq(&duplicate.id)))
            .set(clients::deleted_at.eq(Some(now())))
            .execute(c)?;
        crate::search::touch_client(c, &org, &duplicate.id)?;
        let survivor = if body.is_empty() {
            crate::search::touch_client(c, &org, &survivor.id)?;
            survivor
        } else {
            service::update(
                c,
                w,
                &survivor.id,
                &body,
                super::service::WriteMode::Merge,
                None,
            )?
        };
        crate::domain::interactions::record_event(
            c,
            w.ctx,
            &survivor.id,
            None,
            &format!("Merged {} into this client", duplicate.display_name),
            json!({"event": "client.merge", "duplicate": duplicate.id}),
        )?;
        let audit_id = audit::record_returning_id(
            c,
            w.ctx,
            "client.merge",
            "client",
            Some(&survivor.id),
            json!({
                "duplicate": duplicate.id,
                "taken": body.keys().collect::<Vec<_>>(),
                "undo": {
                    "survivorBefore": serde_json::to_value(&survivor_before).unwrap_or_default(),
                    "survivorVersionAfter": survivor.version,
                    "interactions": moved_interactions,
                    "participants": moved_participants,
                    "deals": moved_deals,
                    "contracts": moved_contracts,
                    "attachments": moved_files,
                    "employees": moved_employees,
                    "relations": moved_relations,
                    "droppedRelations": dropped_relations,
                    "dealContacts": moved_contacts,
                    "droppedDealContacts": dropped_contacts,
                    "externalRefs": moved_refs,
                    "addedTags": added_tags,
                    "preferences": moved_prefs,
                }
            }),
        )?;
        Ok((survivor, audit_id))
    })
}

/// Undoes a merge from its audit entry (within 30 days, once, and only while the survivor
/// is as the merge left it).
pub fn undo(conn: &mut DbConn, ctx: &AuditContext, audit_id: &str) -> AppResult<ClientRow> {
    conn.transaction(|c| {
        let (changes, at, survivor_id): (String, chrono::NaiveDateTime, Option<String>) =
            audit_log::table
                .filter(audit_log::organization_id.eq(&ctx.org_id))
                .filter(audit_log::id.eq(audit_id))
                .filter(audit_log::action.eq("client.merge"))
                .select((audit_log::changes, audit_log::created_at, audit_log::resource_id))
                .first(c)
                .optional()?
                .ok_or(AppError::NotFound)?;
        if now() - at > Duration::days(UNDO_DAYS) {
            return Err(AppError::Conflict(format!(
                "Merges can be undone for {UNDO_DAYS} days; this one is older."
            )));
        }
        let done: bool = diesel::select(diesel::dsl::exists(
            audit_log::table
                .filter(audit_log::organization_id.eq(&ctx.org_id))
                .filter(audit_log::action.eq("client.merge_undo"))
                .filter(audit_log::resource_id.eq(audit_id)),
        ))
        .get_result(c)?;
        if done {
            return Err(AppError::Conflict("This merge was already undone.".into()));
        }
        let v: Value = serde_json::from_str(&changes).unwrap_or_default();
        let u = &v["undo"];
        let dup = v["duplicate"].as_str().unwrap_or_default().to_string();
        let survivor_id = survivor_id.unwrap_or_default();
        let list = |k: &str| -> Vec<String> {
            u[k].as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let before: ClientRow = serde_json::from_value(u["survivorBefore"].clone())
            .map_err(|e| AppError::Internal(format!("merge record: {e}")))?;
        let current = store::find(c, &ctx.org_id, &survivor_id)?.ok_or(AppError::NotFound)?;
        if Some(current.version) != u["survivorVersionAfter"].as_i64() {
            return Err(AppError::Conflict(
                "The surviving client was edited after the merge; undo those edits first or fix the records by hand.".into(),
            ));
        }
        store::replace(c, &before, current.version)?;
        diesel::update(clients::table.filter(clients::id.eq(&before.id)))
            .set((clients::version.eq(before.version), clients::updated_at.eq(before.updated_at)))
            .execute(c)?;
        diesel::update(clients::table.filter(clients::id.eq(&dup)))
            .set(clients::deleted_at.eq(None::<chrono::NaiveDateTime>))
            .execute(c)?;
        diesel::update(interactions::table.filter(interactions::id.eq_any(list("interactions"))))
            .set(interactions::client_id.eq(&dup))
            .execute(c)?;
        diesel::update(
            interaction_participants::table
                .filter(interaction_participants::id.eq_any(list("participants"))),
        )
        .set(interaction_participants::client_id.eq(&dup))
        .execute(c)?;
        let deals = list("deals");
        diesel::update(opportunities::table.filter(opportunities::id.eq_any(&deals)))
            .set(opportunities::client_id.eq(&dup))
            .execute(c)?;
        for d in &deals {
            crate::search::touch(c, &ctx.org_id, "opportunity", d)?;
        }
        diesel::update(contracts::table.filter(contracts::id.eq_any(list("contracts"))))
            .set(contracts::client_id.eq(&dup))
            .execute(c)?;
        diesel::update(attachments::table.filter(attachments::id.eq_any(list("attachments"))))
            .set(attachments::client_id.eq(&dup))
            .execute(c)?;
        diesel::update(clients::table.filter(clients::id.eq_any(list("employees"))))
            .set(clients::employer_id.eq(&dup))
            .execute(c)?;
        for r in u["relations"].as_array().into_iter().flatten() {
            diesel::update(client_relations::table.filter(client_relations::id.eq(r["id"].as_str().unwrap_or_default())))
                .set((
                    client_relations::from_client_id.eq(r["from"].as_str().unwrap_or_default()),
                    client_relations::to_client_id.eq(r["to"].as_str().unwrap_or_default()),
                ))
                .execute(c)?;
        }
        for r in u["droppedRelations"].as_array().into_iter().flatten() {
            diesel::insert_into(client_relations::table)
                .values((
                    client_relations::id.eq(r["id"].as_str().unwrap_or_default()),
                    client_relations::organization_id.eq(&ctx.org_id),
                    client_relations::from_client_id.eq(r["from"].as_str().unwrap_or_default()),
                    client_relations::to_client_id.eq(r["to"].as_str().unwrap_or_default()),
                    client_relations::label.eq(r["label"].as_str().unwrap_or_default()),
                    client_relations::created_at.eq(now()),
                ))
                .execute(c)?;
        }
        for deal in list("dealContacts") {
            diesel::update(
                opportunity_contacts::table
                    .filter(opportunity_contacts::opportunity_id.eq(&deal))
                    .filter(opportunity_contacts::client_id.eq(&survivor_id)),
            )
            .set(opportunity_contacts::client_id.eq(&dup))
            .execute(c)?;
        }
        for r in u["droppedDealContacts"].as_array().into_iter().flatten() {
            diesel::insert_into(opportunity_contacts::table)
                .values((
                    opportunity_contacts::opportunity_id.eq(r["deal"].as_str().unwrap_or_default()),
                    opportunity_contacts::client_id.eq(&dup),
                    opportunity_contacts::organization_id.eq(&ctx.org_id),
                    opportunity_contacts::role.eq(r["role"].as_str().unwrap_or_default()),
                ))
                .execute(c)?;
        }
        for r in u["externalRefs"].as_array().into_iter().flatten() {
            diesel::update(
                external_refs::table
                    .filter(external_refs::organization_id.eq(&ctx.org_id))
                    .filter(external_refs::source.eq(r[0].as_str().unwrap_or_default()))
                    .filter(external_refs::entity.eq(r[1].as_str().unwrap_or_default()))
                    .filter(external_refs::external_id.eq(r[2].as_str().unwrap_or_default())),
            )
            .set(external_refs::record_id.eq(&dup))
            .execute(c)?;
        }
        diesel::delete(
            client_tags::table
                .filter(client_tags::client_id.eq(&survivor_id))
                .filter(client_tags::tag_id.eq_any(list("addedTags"))),
        )
        .execute(c)?;
        if u["preferences"].as_bool() == Some(true) {
            diesel::update(contact_preferences::table.filter(contact_preferences::client_id.eq(&survivor_id)))
                .set(contact_preferences::client_id.eq(&dup))
                .execute(c)?;
        }
        crate::search::touch_client(c, &ctx.org_id, &survivor_id)?;
        crate::search::touch_client(c, &ctx.org_id, &dup)?;
        audit::record(c, ctx, "client.merge_undo", "audit", Some(audit_id), json!({"survivor": survivor_id, "duplicate": dup}))?;
        Ok(before)
    })
}
