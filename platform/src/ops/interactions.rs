//! Interactions (calls, meetings, e-mails, notes, tasks) and what hangs off them: the
//! timeline of a client or a deal, logging and editing, tasks, the calendar, contact
//! preferences and appointments from other systems. The rights are decided here once:
//! reading needs `client:read` and `interaction:read`, changing needs `interaction:write`,
//! a deal's timeline also `opportunity:read`; every record through the client's record
//! rule. A client's contact preferences are the client's own data (`ops::clients`).

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Map, Value};

use super::Scope;
use crate::db::DbConn;
use crate::domain::appointments::{self, IcsReport, Upserted};
use crate::domain::clients::service::Access;
use crate::domain::interactions::{self as service, Filter, InteractionRow, Participant};
use crate::domain::preferences::{self, Preferences};
use crate::error::{AppError, AppResult};

pub use service::Scope as Target;

/// An interaction with who took part in it.
#[derive(Debug, Clone)]
pub struct InteractionView {
    pub row: InteractionRow,
    pub participants: Vec<Participant>,
}

impl InteractionView {
    pub fn to_json(&self) -> Value {
        service::to_json_with(&self.row, &self.participants)
    }

    fn load(c: &mut DbConn, row: InteractionRow) -> AppResult<Self> {
        let participants = service::participants_of(c, std::slice::from_ref(&row.id))?
            .remove(&row.id)
            .unwrap_or_default();
        Ok(Self { row, participants })
    }
}

/// A page of a timeline and what a reader needs to show it: names of the authors and of
/// the other clients taking part, the files on each entry, and what the client asked for
/// that an outbound call or e-mail would break.
#[derive(Debug, Default)]
pub struct Timeline {
    pub rows: Vec<InteractionRow>,
    pub participants: HashMap<String, Vec<Participant>>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
    /// Members of the organization by id (name, or e-mail when they have none).
    pub members: HashMap<String, String>,
    /// Names of the clients among the participants.
    pub client_names: HashMap<String, String>,
    /// Files on each entry: (download link, name).
    pub files: HashMap<String, Vec<(String, String)>>,
    /// The client whose timeline it is (a deal's client for a deal).
    pub client_id: String,
    pub warnings: Vec<String>,
    /// Whether the caller may delete entries (`interaction:delete`).
    pub can_delete: bool,
}

impl Timeline {
    /// Who else took part in an entry, by name.
    pub fn with(&self, id: &str) -> String {
        self.participants
            .get(id)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| match p {
                        Participant::Client(c) => self.client_names.get(c).cloned(),
                        Participant::User(u) => self.members.get(u).cloned(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }
}

/// Which page of a timeline.
#[derive(Debug, Clone, Default)]
pub struct TimelineQuery {
    pub filter: Filter,
    pub after: Option<(NaiveDateTime, String)>,
    pub limit: i64,
}

fn require_read(scope: &Scope, target: &Target) -> AppResult<()> {
    scope.require("client", "read")?;
    scope.require("interaction", "read")?;
    // why: a deal's timeline holds the deal's notes: it needs the right to read deals.
    if let Target::Deal(_) = target {
        scope.require("opportunity", "read")?;
    }
    Ok(())
}

pub async fn timeline(scope: &Scope, target: Target, query: TimelineQuery) -> AppResult<Timeline> {
    require_read(scope, &target)?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    let mut t = scope
        .read(move |c| load_timeline(c, &org, &access, &target, &query))
        .await?;
    t.can_delete = scope.can("interaction", "delete");
    Ok(t)
}

/// The timeline as [`timeline`] reads it, inside a caller's connection; the caller has
/// checked the rights.
pub fn load_timeline(
    c: &mut DbConn,
    org: &str,
    access: &Access,
    target: &Target,
    query: &TimelineQuery,
) -> AppResult<Timeline> {
    let limit = query.limit.max(1);
    let mut rows = service::timeline(
        c,
        org,
        access,
        target,
        &query.filter,
        query.after.clone(),
        limit + 1,
    )?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let client_id = match target {
        Target::Client(id) => id.clone(),
        Target::Deal(id) => crate::domain::pipeline::service::get(c, org, access, id)?.client_id,
    };
    let next = more.then(|| rows.last().map(service::cursor_of)).flatten();
    let mut t = decorate(c, org, rows)?;
    t.next = next;
    t.warnings = warnings(&preferences::load(c, org, &client_id)?);
    t.client_id = client_id;
    Ok(t)
}

/// Entries with the names and files a reader sees beside them.
fn decorate(c: &mut DbConn, org: &str, rows: Vec<InteractionRow>) -> AppResult<Timeline> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let participants = service::participants_of(c, &ids)?;
    let client_ids: Vec<String> = participants
        .values()
        .flatten()
        .filter_map(|p| match p {
            Participant::Client(id) => Some(id.clone()),
            Participant::User(_) => None,
        })
        .collect();
    let client_names = crate::domain::clients::store::find_many(c, org, &client_ids)?
        .into_iter()
        .map(|c| (c.id, c.display_name))
        .collect();
    // Links, not ids: an e-mail's files are the message's, downloaded through it.
    let mut files: std::collections::HashMap<String, Vec<(String, String)>> =
        crate::domain::attachments::on_interactions(c, org, &ids)?
            .into_iter()
            .map(|(k, v)| {
                let v = v
                    .into_iter()
                    .map(|(id, name)| (format!("/attachments/{id}"), name))
                    .collect();
                (k, v)
            })
            .collect();
    for (k, v) in crate::domain::mail::files_on_interactions(c, &ids)? {
        files.entry(k).or_default().extend(v);
    }
    Ok(Timeline {
        files,
        members: members(c, org)?,
        client_names,
        participants,
        rows,
        ..Timeline::default()
    })
}

/// One entry as a timeline shows it (after it was changed).
pub async fn entry(scope: &Scope, row: InteractionRow) -> AppResult<Timeline> {
    let org = scope.org_id.clone();
    let mut t = scope.read(move |c| decorate(c, &org, vec![row])).await?;
    t.can_delete = scope.can("interaction", "delete");
    Ok(t)
}

/// What the client asked for that an outbound call or e-mail would break, one line per
/// channel ("Calls: …").
fn warnings(prefs: &Preferences) -> Vec<String> {
    [("Calls", "phone"), ("E-mails", "email")]
        .into_iter()
        .filter_map(|(label, ch)| prefs.objection(ch).map(|why| format!("{label}: {why}")))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The organization's members by id: their name, or their e-mail when they gave none.
pub fn members(c: &mut DbConn, org: &str) -> AppResult<HashMap<String, String>> {
    let filter = crate::domain::orgs::store::MemberFilter {
        limit: 1000,
        ..Default::default()
    };
    Ok(crate::domain::orgs::store::list_members(c, org, &filter)?
        .into_iter()
        .map(|m| {
            let name = if m.user.name.is_empty() {
                m.user.email
            } else {
                m.user.name
            };
            (m.user.id, name)
        })
        .collect())
}

/// The organization's members' names by id (authors and owners shown beside entries).
pub async fn member_names(scope: &Scope) -> AppResult<HashMap<String, String>> {
    let org = scope.org_id.clone();
    scope.read(move |c| members(c, &org)).await
}

pub async fn get(scope: &Scope, id: String) -> AppResult<InteractionView> {
    scope.require("client", "read")?;
    scope.require("interaction", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let r = service::get(c, &org, &access, &id)?;
            InteractionView::load(c, r)
        })
        .await
}

/// Logs an interaction on a client, or on a deal (then on the deal's client).
pub async fn log(
    scope: &Scope,
    target: Target,
    mut fields: Map<String, Value>,
) -> AppResult<InteractionView> {
    scope.require("interaction", "write")?;
    if let Target::Deal(_) = target {
        scope.require("opportunity", "read")?;
    }
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let client_id = match &target {
                Target::Client(id) => id.clone(),
                Target::Deal(id) => {
                    fields.insert("opportunityId".into(), Value::String(id.clone()));
                    crate::domain::pipeline::service::get(c, &ctx.org_id, &access, id)?.client_id
                }
            };
            let r = service::create(c, &ctx, &access, &client_id, &fields)?;
            InteractionView::load(c, r)
        })
        .await
}

/// Changes the fields sent; `expected` guards against a concurrent edit.
pub async fn update(
    scope: &Scope,
    id: String,
    fields: Map<String, Value>,
    expected: Option<i64>,
) -> AppResult<InteractionView> {
    scope.require("interaction", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let r = service::update(c, &ctx, &access, &id, &fields, expected)?;
            InteractionView::load(c, r)
        })
        .await
}

/// A planned call, meeting or task happened.
pub async fn mark_done(scope: &Scope, id: String) -> AppResult<InteractionView> {
    let mut body = Map::new();
    body.insert("status".into(), Value::String("completed".into()));
    update(scope, id, body, None).await
}

pub async fn delete(scope: &Scope, id: String) -> AppResult<()> {
    // why: the timeline is the record of what was said; a role may log and correct
    // entries without being allowed to remove them.
    scope.require("interaction", "delete")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| service::delete(c, &ctx, &access, &id))
        .await
}

/// The entry as it stands, for an edit form (system events cannot be edited).
pub async fn editable(scope: &Scope, id: String) -> AppResult<InteractionRow> {
    scope.require("interaction", "write")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    let r = scope
        .read(move |c| service::get(c, &org, &access, &id))
        .await?;
    if r.kind == service::EVENT {
        return Err(AppError::Conflict(
            "System events are a record of what happened; they cannot be edited.".into(),
        ));
    }
    Ok(r)
}

/// The participants of interactions the caller already holds (a task list, a calendar),
/// by interaction id.
pub async fn participants(
    scope: &Scope,
    rows: &[(InteractionRow, String)],
) -> AppResult<HashMap<String, Vec<Participant>>> {
    let ids: Vec<String> = rows.iter().map(|(r, _)| r.id.clone()).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    scope.read(move |c| service::participants_of(c, &ids)).await
}

// ---------- tasks ----------

/// The caller's open tasks with their client's name, soonest due first.
pub async fn my_tasks(scope: &Scope) -> AppResult<Vec<(InteractionRow, String)>> {
    scope.require("client", "read")?;
    scope.require("interaction", "read")?;
    let org = scope.org_id.clone();
    let user = scope.user_id.clone().unwrap_or_default();
    scope
        .read(move |c| service::open_tasks(c, &org, &user))
        .await
}

/// A task for a client (`fields` as for [`log`]; its type is task).
pub async fn create_task(
    scope: &Scope,
    client: String,
    mut fields: Map<String, Value>,
) -> AppResult<InteractionView> {
    fields.insert("type".into(), Value::String("task".into()));
    log(scope, Target::Client(client), fields).await
}

/// Marks a task done (only a task).
pub async fn complete_task(scope: &Scope, id: String) -> AppResult<InteractionView> {
    scope.require("interaction", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let r = service::complete_task(c, &ctx, &access, &id)?;
            InteractionView::load(c, r)
        })
        .await
}

// ---------- calendar ----------

/// Calls and meetings planned between two days, for the caller or (for those who oversee)
/// the whole team, with their client's name.
pub async fn calendar(
    scope: &Scope,
    from: NaiveDate,
    to: NaiveDate,
    team: bool,
) -> AppResult<Vec<(InteractionRow, String)>> {
    scope.require("client", "read")?;
    scope.require("interaction", "read")?;
    if to <= from || (to - from).num_days() > 62 {
        return Err(AppError::invalid(
            "to",
            "Ask for a range of 1 to 62 days after from.",
        ));
    }
    let access = scope.access("client");
    let org = scope.org_id.clone();
    // The caller's own days (UTC for the API), as UTC bounds.
    let local = scope.local;
    let rows = scope
        .read(move |c| {
            let users = service::calendar_users(c, &org, &access, team)?;
            let (from, to) = (local.days_utc(from, from).0, local.days_utc(to, to).0);
            let mut rows = crate::domain::calendar::between(c, &org, &users, from, to, 2000)?;
            rows.extend(crate::domain::calendar::tasks_between(
                c, &org, &users, from, to, 2000,
            )?);
            Ok(rows)
        })
        .await?;
    let mut rows: Vec<(InteractionRow, String)> =
        rows.into_iter().map(|(r, client, _)| (r, client)).collect();
    // Planned calls and meetings by their time, open tasks by when they fall due.
    rows.sort_by_key(|(r, _)| (r.scheduled_at.or(r.due_at), r.id.clone()));
    Ok(rows)
}

/// Imports the invitations of an iCalendar file as meetings, on `client` when given.
pub async fn import_ics(
    scope: &Scope,
    text: String,
    client: Option<String>,
) -> AppResult<IcsReport> {
    scope.require("interaction", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    // A time without a zone is the importer's wall clock (RFC 5545's floating time).
    let local = scope.local;
    scope
        .read(move |c| {
            if let Some(id) = &client {
                crate::domain::clients::service::get(c, &ctx.org_id, &access, id)?;
            }
            appointments::import_ics(c, &ctx, &access, &text, client.as_deref(), &local)
        })
        .await
}

/// A meeting from an external appointment system, created or (same external id) updated.
pub async fn appointment(
    scope: &Scope,
    body: Map<String, Value>,
) -> AppResult<(InteractionView, Upserted)> {
    scope.require("interaction", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let (r, how) = appointments::receive(c, &ctx, &access, &body)?;
            Ok((InteractionView::load(c, r)?, how))
        })
        .await
}
