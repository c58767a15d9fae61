//! Duplicates: likely twins of a client (same e-mail, same phone number whatever its
//! formatting, same name at the same company), groups of them across the organization, and
//! merging one into another — everything attached to the duplicate moves to the survivor,
//! the duplicate goes to the trash, and the audit entry holds what it takes to undo the merge
//! for 30 days.
//!
//! Why this file is long: the candidate keys, the organization-wide scan, merge and undo
//! must agree on what "the same client" means and on every table a merge moves; keeping
//! them in one place is what keeps an undo exact.

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

fn region(country: Option<&str>) -> Option<phonenumber::country::Id> {
    country.and_then(|c| c.trim().to_ascii_uppercase().parse().ok())
}

/// A phone number in E.164 form (`+49301234567`): read in the client's country (ISO code)
/// when written without a country code; `None` when it cannot be placed.
pub fn e164(phone: &str, country: Option<&str>) -> Option<String> {
    parsed(phone, country).e164
}

/// What phone numbers are compared by: the whole national significant number of their
/// E.164 form (every digit after the country code; the last nine dropped the first digit of
/// a US area code and grouped 212- with 312- numbers). A number that cannot be placed (no
/// country code, no country on the client) is read as international if that makes a valid
/// number (`1-212-555-0142`), else its digits without the trunk zeros. So `+49 30 1234567`,
/// `030 1234567` and `(030) 123-4567` compare equal whether or not the client's country is
/// known, and so do `+47 22 12 34 56` and `22 12 34 56`. The country code itself is not
/// compared, as a number written without one has none.
pub fn phone_key(phone: &str, country: Option<&str>) -> Option<String> {
    parsed(phone, country).key
}

/// One reading of a phone number: its comparison key and its E.164 form.
#[derive(Clone)]
struct Parsed {
    key: Option<String>,
    e164: Option<String>,
}

fn parse(phone: &str, country: Option<&str>) -> Parsed {
    let (digits, e164) = match phonenumber::parse(region(country), phone) {
        Ok(number) => (
            number.national().to_string(),
            Some(number.format().mode(phonenumber::Mode::E164).to_string()),
        ),
        Err(_) => {
            let raw: String = phone.chars().filter(char::is_ascii_digit).collect();
            let digits = match phonenumber::parse(None, format!("+{raw}")) {
                Ok(n) if phonenumber::is_valid(&n) => n.national().to_string(),
                _ => raw.trim_start_matches('0').to_string(),
            };
            (digits, None)
        }
    };
    Parsed {
        key: (digits.len() >= 7).then_some(digits),
        e164,
    }
}

/// why: a create reads its phone number three times, on three threads (the duplicate
/// look-up on the pool, the stored key in the writer, the answer's E.164 form on the
/// server's thread), and a reading was ~2% of the create's CPU each time. The last readings
/// are kept process-wide, a slot per hash of the number, so the second and third are a look-up.
fn parsed(phone: &str, country: Option<&str>) -> Parsed {
    use std::hash::{Hash, Hasher};
    use std::sync::Mutex;
    type Slot = Mutex<Option<(String, Option<String>, Parsed)>>;
    const SLOTS: usize = 64;
    static RECENT: [Slot; SLOTS] = [const { Mutex::new(None) }; SLOTS];
    let mut h = std::hash::DefaultHasher::new();
    (phone, country).hash(&mut h);
    let slot = &RECENT[(h.finish() % SLOTS as u64) as usize];
    if let Ok(kept) = slot.lock() {
        if let Some((p, c, hit)) = kept.as_ref() {
            if p == phone && c.as_deref() == country {
                return hit.clone();
            }
        }
    }
    let fresh = parse(phone, country);
    if let Ok(mut kept) = slot.lock() {
        *kept = Some((
            phone.to_string(),
            country.map(str::to_string),
            fresh.clone(),
        ));
    }
    fresh
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
    let keys = super::keys::Keys::of(row);
    if let Some(key) = &keys.phone {
        let same: Vec<ClientRow> = base()
            .filter(clients::phone_key.eq(key.clone()))
            .limit(20)
            .select(ClientRow::as_select())
            .load(conn)?;
        push(same, "same phone number");
    }
    // why: a common name has many holders; the company check below keeps the suspicious ones.
    let same_name: Vec<ClientRow> = base()
        .filter(clients::kind.eq(row.kind.clone()))
        .filter(clients::name_key.eq(keys.name.clone()))
        .limit(200)
        .select(ClientRow::as_select())
        .load(conn)?;
    let key = keys.name;
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

/// id, kind, name, e-mail, phone, employer, company name, country.
type ScanRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Groups a scan found: (reason, client ids oldest first).
pub type FoundGroups = Vec<(&'static str, Vec<String>)>;

/// Clients read per page by the scan.
const SCAN_PAGE: i64 = 5_000;

fn hash_key(reason: u8, key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    reason.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

/// Scans every live client of the organization for groups sharing an e-mail, a phone number
/// (however written) or a name at the same company. Reads by keyset pages and keeps only a
/// 64-bit hash of each key and a 128-bit id per client, so a million clients fit in well
/// under 100 MB. Answers (reason, ids oldest first) and the number of clients read.
pub fn scan_all(conn: &mut DbConn, org_id: &str) -> AppResult<(FoundGroups, i64)> {
    const REASONS: [&str; 3] = ["same e-mail", "same phone number", "same name and company"];
    // Keys seen twice or more: their members, in the order met.
    let mut groups: std::collections::HashMap<u64, (u8, Vec<u128>)> = Default::default();
    let mut scanned = 0i64;
    // One pass per kind of key, so only one map of first sightings is alive at a time.
    for reason in 0u8..3 {
        // First id per key; ids are UUIDs, kept as numbers.
        let mut first: std::collections::HashMap<u64, u128> = Default::default();
        let mut after = String::new();
        scanned = 0;
        loop {
            let rows: Vec<ScanRow> = clients::table
                .filter(clients::organization_id.eq(org_id))
                .filter(clients::deleted_at.is_null())
                .filter(clients::id.gt(&after))
                .order(clients::id.asc())
                .limit(SCAN_PAGE)
                .select((
                    clients::id,
                    clients::kind,
                    clients::display_name,
                    clients::email,
                    clients::phone,
                    clients::employer_id,
                    clients::company_name,
                    clients::country,
                ))
                .load(conn)?;
            let Some(last) = rows.last() else { break };
            after = last.0.clone();
            scanned += rows.len() as i64;
            let full = rows.len() as i64 == SCAN_PAGE;
            for (id, kind, name, email, phone, employer, company, country) in rows {
                let key = match reason {
                    0 => email
                        .map(|e| e.trim().to_lowercase())
                        .filter(|e| !e.is_empty()),
                    1 => phone
                        .as_deref()
                        .and_then(|p| phone_key(p, country.as_deref())),
                    _ => {
                        let at = if kind == "company" {
                            String::new()
                        } else {
                            employer
                                .or(company.map(|c| name_key(&c)))
                                .unwrap_or_default()
                        };
                        (kind == "company" || !at.is_empty())
                            .then(|| format!("{kind}|{}|{at}", name_key(&name)))
                    }
                };
                let (Some(key), Ok(num)) = (key, uuid::Uuid::parse_str(&id).map(|u| u.as_u128()))
                else {
                    continue;
                };
                let h = hash_key(reason, &key);
                match first.entry(h) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(num);
                    }
                    std::collections::hash_map::Entry::Occupied(o) => {
                        groups
                            .entry(h)
                            .or_insert_with(|| (reason, vec![*o.get()]))
                            .1
                            .push(num);
                    }
                }
            }
            if !full {
                break;
            }
        }
    }
    // The same clients found by two reasons are one group (the first reason names it).
    let mut seen: std::collections::HashSet<Vec<u128>> = Default::default();
    let mut out: Vec<(u8, Vec<u128>)> = groups.into_values().collect();
    out.sort();
    Ok((
        out.into_iter()
            .filter_map(|(reason, ids)| {
                let mut key = ids.clone();
                key.sort();
                seen.insert(key).then(|| {
                    (
                        REASONS[reason as usize],
                        ids.into_iter()
                            .map(|n| uuid::Uuid::from_u128(n).to_string())
                            .collect(),
                    )
                })
            })
            .collect(),
        scanned,
    ))
}

/// Where the organization's scan stands.
#[derive(Debug, Clone, Default, Queryable)]
pub struct ScanState {
    pub requested_at: Option<chrono::NaiveDateTime>,
    pub started_at: Option<chrono::NaiveDateTime>,
    pub finished_at: Option<chrono::NaiveDateTime>,
    pub scanned_clients: i64,
    pub group_count: i32,
}

impl ScanState {
    pub fn running(&self) -> bool {
        self.started_at.is_some()
            && (self.finished_at.is_none() || self.started_at > self.finished_at)
    }

    /// Asked for and not yet begun.
    pub fn pending(&self) -> bool {
        self.requested_at.is_some()
            && !self.running()
            && (self.finished_at.is_none() || self.requested_at > self.finished_at)
    }
}

pub fn scan_state(conn: &mut DbConn, org_id: &str) -> AppResult<ScanState> {
    use crate::db::schema::duplicate_scans as s;
    Ok(s::table
        .filter(s::organization_id.eq(org_id))
        .select(SCAN_COLUMNS)
        .first::<ScanState>(conn)
        .optional()?
        .unwrap_or_default())
}

/// The columns of [`ScanState`], in its order.
const SCAN_COLUMNS: (
    crate::db::schema::duplicate_scans::requested_at,
    crate::db::schema::duplicate_scans::started_at,
    crate::db::schema::duplicate_scans::finished_at,
    crate::db::schema::duplicate_scans::scanned_clients,
    crate::db::schema::duplicate_scans::group_count,
) = (
    crate::db::schema::duplicate_scans::requested_at,
    crate::db::schema::duplicate_scans::started_at,
    crate::db::schema::duplicate_scans::finished_at,
    crate::db::schema::duplicate_scans::scanned_clients,
    crate::db::schema::duplicate_scans::group_count,
);

/// Asks the background worker for a scan (a second ask before it starts changes nothing).
pub fn request_scan(conn: &mut DbConn, org_id: &str) -> AppResult<ScanState> {
    use crate::db::schema::duplicate_scans as s;
    let at = now();
    let changed = diesel::update(s::table.filter(s::organization_id.eq(org_id)))
        .set(s::requested_at.eq(Some(at)))
        .execute(conn)?;
    if changed == 0 {
        // Two first requests at once: the loser's insert conflicts and the winner's stands.
        // In a savepoint, so the conflict does not spoil a PostgreSQL transaction around it.
        let _ = crate::db::transaction(conn, |c| {
            diesel::insert_into(s::table)
                .values((s::organization_id.eq(org_id), s::requested_at.eq(Some(at))))
                .execute(c)
        });
    }
    scan_state(conn, org_id)
}

/// Organizations whose scan is due: asked for since the last one, or a day old.
pub fn due_scans(conn: &mut DbConn) -> AppResult<Vec<String>> {
    use crate::db::schema::duplicate_scans as s;
    let rows: Vec<(String, ScanState)> = s::table
        .select((s::organization_id, SCAN_COLUMNS))
        .load(conn)?;
    let stale = now() - Duration::hours(24);
    let stuck = now() - Duration::hours(1);
    Ok(rows
        .into_iter()
        .filter(|(_, st)| {
            // A scan that started an hour ago and never finished died with its process.
            let dead = st.running() && st.started_at < Some(stuck);
            st.pending() || dead || (!st.running() && st.finished_at.is_some_and(|f| f < stale))
        })
        .map(|r| r.0)
        .collect())
}

/// Runs the organization's scan if no one else is running it, and stores what it found in
/// place of the last scan's groups. `Ok(false)` when another worker had it.
pub fn run_scan(conn: &mut DbConn, org_id: &str) -> AppResult<bool> {
    use crate::db::schema::{duplicate_groups as g, duplicate_scans as s};
    let before = scan_state(conn, org_id)?;
    let started = now();
    // Claimed only if the row is as read: a second worker's update matches nothing.
    let mine = s::table.filter(s::organization_id.eq(org_id));
    let claimed = match before.started_at {
        Some(t) => diesel::update(mine.filter(s::started_at.eq(t)))
            .set(s::started_at.eq(Some(started)))
            .execute(conn)?,
        None => diesel::update(mine.filter(s::started_at.is_null()))
            .set(s::started_at.eq(Some(started)))
            .execute(conn)?,
    };
    if claimed != 1 {
        return Ok(false);
    }
    let (found, scanned) = scan_all(conn, org_id)?;
    crate::db::transaction(conn, |c| {
        diesel::delete(g::table.filter(g::organization_id.eq(org_id))).execute(c)?;
        for (reason, ids) in &found {
            diesel::insert_into(g::table)
                .values((
                    g::id.eq(crate::db::new_id()),
                    g::organization_id.eq(org_id),
                    g::reason.eq(*reason),
                    g::client_ids.eq(serde_json::to_string(ids).unwrap_or_default()),
                    g::found_at.eq(started),
                ))
                .execute(c)?;
        }
        diesel::update(s::table.filter(s::organization_id.eq(org_id)))
            .set((
                s::finished_at.eq(Some(now().max(started))),
                s::scanned_clients.eq(scanned),
                s::group_count.eq(found.len() as i32),
            ))
            .execute(c)?;
        Ok(true)
    })
}

/// What the duplicates page shows: the stored groups as the actor sees them and the scan's
/// state. The first look at an organization never scanned asks for its first scan.
pub fn page(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    limit: usize,
) -> AppResult<(Vec<Group>, ScanState)> {
    let mut scan = scan_state(conn, org_id)?;
    if scan.requested_at.is_none() && scan.finished_at.is_none() {
        scan = request_scan(conn, org_id)?;
    }
    Ok((stored_groups(conn, org_id, access, limit)?, scan))
}

/// The stored groups as the actor sees them: clients still live and visible, groups of two
/// or more, the oldest client first; at most `limit` groups.
pub fn stored_groups(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    limit: usize,
) -> AppResult<Vec<Group>> {
    use crate::db::schema::duplicate_groups as g;
    let mut out = Vec::new();
    let mut after = String::new();
    while out.len() < limit {
        let page: Vec<(String, String, String)> = g::table
            .filter(g::organization_id.eq(org_id))
            .filter(g::id.gt(&after))
            .order(g::id.asc())
            .limit(500)
            .select((g::id, g::reason, g::client_ids))
            .load(conn)?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        let full = page.len() == 500;
        let ids: Vec<String> = page
            .iter()
            .flat_map(|(_, _, ids)| serde_json::from_str::<Vec<String>>(ids).unwrap_or_default())
            .collect();
        let mut q = clients::table
            .filter(clients::organization_id.eq(org_id))
            .filter(clients::deleted_at.is_null())
            .filter(clients::id.eq_any(&ids))
            .into_boxed();
        if !access.oversee {
            q = q.filter(clients::assigned_to.eq(access.user_id.clone()));
        }
        let names: std::collections::HashMap<String, String> = q
            .select((clients::id, clients::display_name))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect();
        for (_, reason, ids) in page {
            let members: Vec<(String, String)> = serde_json::from_str::<Vec<String>>(&ids)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|id| names.get(&id).map(|n| (id, n.clone())))
                .collect();
            if members.len() < 2 {
                continue;
            }
            let reason = match reason.as_str() {
                "same e-mail" => "same e-mail",
                "same phone number" => "same phone number",
                _ => "same name and company",
            };
            out.push(Group {
                reason,
                clients: members,
            });
            if out.len() >= limit {
                break;
            }
        }
        if !full {
            break;
        }
    }
    Ok(out)
}

/// A merge takes a custom field from the duplicate when asked for `customFields.<key>`.
pub const CUSTOM_PREFIX: &str = "customFields.";

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
    crate::db::transaction(conn, |c| {
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
        let custom_keys: Vec<&str> = w
            .defs
            .iter()
            .filter(|d| d.is_active() && (!d.sensitive || w.access.write_sensitive))
            .map(|d| d.field_key.as_str())
            .collect();
        for t in take {
            let custom_ok = t
                .strip_prefix(CUSTOM_PREFIX)
                .is_some_and(|k| custom_keys.contains(&k));
            if !MERGE_FIELDS.contains(&t.as_str()) && !custom_ok {
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
        // Custom fields: taken when asked, or when the survivor has no value and the
        // duplicate has one.
        let (mine, theirs) = (survivor.custom_map(), duplicate.custom_map());
        let mut custom = Map::new();
        for key in &custom_keys {
            let Some(value) = theirs.get(*key).filter(|v| !v.is_null()) else {
                continue;
            };
            let asked = take
                .iter()
                .any(|t| t.strip_prefix(CUSTOM_PREFIX) == Some(key));
            let empty = mine
                .get(*key)
                .is_none_or(|v| v.is_null() || v.as_str() == Some(""));
            if (asked || empty) && mine.get(*key) != Some(value) {
                custom.insert(key.to_string(), value.clone());
            }
        }
        if !custom.is_empty() {
            body.insert("customFields".into(), Value::Object(custom));
        }
        // The survivor's custom-field index as it was, for the undo.
        let survivor_index: Vec<(String, Option<String>, Option<i64>)> = {
            use crate::db::schema::custom_field_values as v;
            v::table
                .filter(v::record_id.eq(&survivor.id))
                .select((v::field_id, v::text_value, v::num_value))
                .load(c)?
        };
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
            crate::domain::outbox::touch(c, &org, "opportunity", d)?;
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
        crate::domain::outbox::touch_client(c, &org, &duplicate.id)?;
        let survivor = if body.is_empty() {
            crate::domain::outbox::touch_client(c, &org, &survivor.id)?;
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
                    "customIndex": survivor_index,
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
    crate::db::transaction(conn, |c| {
        let (changes, at, survivor_id): (String, chrono::NaiveDateTime, Option<String>) =
            audit_log::table
                .filter(audit_log::organization_id.eq(&ctx.org_id))
                .filter(audit_log::id.eq(audit_id))
                .filter(audit_log::action.eq("client.merge"))
                .select((
                    audit_log::changes,
                    audit_log::created_at,
                    audit_log::resource_id,
                ))
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
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
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
            .set((
                clients::version.eq(before.version),
                clients::updated_at.eq(before.updated_at),
            ))
            .execute(c)?;
        // The custom-field index as before the merge (entries older than custom-field merges
        // carry none and had nothing to restore).
        if let Ok(index) = serde_json::from_value::<Vec<(String, Option<String>, Option<i64>)>>(
            u["customIndex"].clone(),
        ) {
            use crate::db::schema::custom_field_values as v;
            diesel::delete(v::table.filter(v::record_id.eq(&before.id))).execute(c)?;
            for (field, text, num) in index {
                diesel::insert_into(v::table)
                    .values((
                        v::id.eq(crate::db::new_id()),
                        v::organization_id.eq(&ctx.org_id),
                        v::field_id.eq(field),
                        v::record_id.eq(&before.id),
                        v::text_value.eq(text),
                        v::num_value.eq(num),
                    ))
                    .execute(c)?;
            }
        }
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
            crate::domain::outbox::touch(c, &ctx.org_id, "opportunity", d)?;
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
            diesel::update(
                client_relations::table
                    .filter(client_relations::id.eq(r["id"].as_str().unwrap_or_default())),
            )
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
            diesel::update(
                contact_preferences::table.filter(contact_preferences::client_id.eq(&survivor_id)),
            )
            .set(contact_preferences::client_id.eq(&dup))
            .execute(c)?;
        }
        crate::domain::outbox::touch_client(c, &ctx.org_id, &survivor_id)?;
        crate::domain::outbox::touch_client(c, &ctx.org_id, &dup)?;
        audit::record(
            c,
            ctx,
            "client.merge_undo",
            "audit",
            Some(audit_id),
            json!({"survivor": survivor_id, "duplicate": dup}),
        )?;
        Ok(before)
    })
}

/// What a merge would move from the duplicate: its live interactions and deals.
pub fn moving_counts(conn: &mut DbConn, org_id: &str, client_id: &str) -> AppResult<(i64, i64)> {
    use crate::db::schema::{interactions, opportunities};
    let i: i64 = interactions::table
        .filter(interactions::organization_id.eq(org_id))
        .filter(interactions::client_id.eq(client_id))
        .filter(interactions::deleted_at.is_null())
        .count()
        .get_result(conn)?;
    let d: i64 = opportunities::table
        .filter(opportunities::organization_id.eq(org_id))
        .filter(opportunities::client_id.eq(client_id))
        .filter(opportunities::deleted_at.is_null())
        .count()
        .get_result(conn)?;
    Ok((i, d))
}

/// A merge as its audit entry recorded it: the survivor's id, the duplicate's id, and
/// whether it was undone since.
pub struct MergeRecord {
    pub survivor_id: String,
    pub duplicate_id: String,
    pub undone: bool,
}

/// The organization's merge recorded under `audit_id`, if there is one.
pub fn merge_record(
    conn: &mut DbConn,
    org_id: &str,
    audit_id: &str,
) -> AppResult<Option<MergeRecord>> {
    use crate::db::schema::audit_log;
    let Some((changes, survivor)) = audit_log::table
        .filter(audit_log::organization_id.eq(org_id))
        .filter(audit_log::id.eq(audit_id))
        .filter(audit_log::action.eq("client.merge"))
        .select((audit_log::changes, audit_log::resource_id))
        .first::<(String, Option<String>)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(&changes).unwrap_or_default();
    let undone: bool = diesel::select(diesel::dsl::exists(
        audit_log::table
            .filter(audit_log::organization_id.eq(org_id))
            .filter(audit_log::action.eq("client.merge_undo"))
            .filter(audit_log::resource_id.eq(audit_id)),
    ))
    .get_result(conn)?;
    Ok(Some(MergeRecord {
        survivor_id: survivor.unwrap_or_default(),
        duplicate_id: v["duplicate"].as_str().unwrap_or_default().to_string(),
        undone,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_compare_in_their_e164_form_however_written() {
        assert_eq!(
            e164("030 1234567", Some("de")).as_deref(),
            Some("+49301234567")
        );
        assert_eq!(
            e164("+49 (30) 123-4567", None).as_deref(),
            Some("+49301234567")
        );
        assert_eq!(
            e164("0049 30 1234567", Some("FR")).as_deref(),
            Some("+49301234567")
        );
        assert_eq!(
            e164("030 1234567", None),
            None,
            "no country code, no country"
        );
        let key = |p: &str, c: Option<&str>| phone_key(p, c).unwrap();
        // Germany, with and without the country code and the trunk 0, the country known or not.
        let berlin = key("+49 30 1234567", None);
        assert_eq!(key("030 1234567", Some("DE")), berlin);
        assert_eq!(key("(030) 123-4567", None), berlin);
        // An eight-digit Norwegian number: its country code is not mistaken for its digits.
        assert_eq!(key("+47 22 12 34 56", None), key("22 12 34 56", None));
        // North America, written every which way.
        let nyc = key("+1 (212) 555-0142", None);
        assert_eq!(key("212.555.0142", Some("US")), nyc);
        assert_eq!(key("1-212-555-0142", None), nyc);
        assert_ne!(key("+1 212 555 0143", None), nyc);
        // The whole area code counts: 212 and 312 are different cities.
        assert_ne!(key("+1 312 555 0142", None), nyc);
        assert_ne!(
            key("312-555-0142", Some("US")),
            key("212-555-0142", Some("US"))
        );
        assert_eq!(phone_key("12 34", None), None, "too short to mean anything");
    }
}
