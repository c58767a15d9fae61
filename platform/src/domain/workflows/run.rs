//! Carrying a run out: claiming due runs, checking conditions, one step per transaction (the
//! step's effect and its `workflow_steps` row commit together), waits, branches, retries with
//! backoff, the run's line on the client's timeline, the dry run, and the scans that start
//! date and schedule runs.

use chrono::{Datelike, Duration, NaiveDateTime, NaiveTime, Timelike};
use diesel::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::domain::clients::service::Access;
use crate::error::AppError;

/// How long a worker holds a run it is carrying out.
const LEASE: Duration = Duration::minutes(5);
/// Attempts at a failing step before the run fails.
pub const MAX_ATTEMPTS: i32 = 5;

/// The backoff after the n-th failed attempt.
pub fn backoff(attempts: i32) -> Duration {
    match attempts {
        ..=1 => Duration::seconds(10),
        2 => Duration::minutes(1),
        3 => Duration::minutes(10),
        _ => Duration::hours(1),
    }
}

/// The system acting for a workflow: every right and record of the organization.
pub fn access() -> Access {
    Access {
        user_id: String::new(),
        oversee: true,
        read_sensitive: true,
        write_sensitive: true,
        create_tags: true,
    }
}

pub fn context(run: &RunRow, flow_name: &str) -> AuditContext {
    AuditContext {
        org_id: run.organization_id.clone(),
        actor_user_id: None,
        actor_label: format!("Workflow “{flow_name}”"),
        ip: "workflow".into(),
        request_id: run.id.clone(),
        import_batch: None,
    }
}

/// Claims up to `n` due runs (new ones, waits that ran out, retries), oldest first.
pub fn claim(c: &mut DbConn, n: i64) -> AppResult<Vec<RunRow>> {
    // One transaction for the whole batch: one commit instead of one per claimed run.
    crate::db::transaction(c, |c| claim_in(c, n))
}

fn claim_in(c: &mut DbConn, n: i64) -> AppResult<Vec<RunRow>> {
    let at = now();
    // A run whose worker died is due again; its finished steps have rows and are not redone.
    diesel::update(
        workflow_runs::table
            .filter(workflow_runs::status.eq("running"))
            .filter(workflow_runs::lease_until.lt(at)),
    )
    .set((
        workflow_runs::status.eq("pending"),
        workflow_runs::next_at.eq(Some(at)),
    ))
    .execute(c)?;
    let mut out = Vec::new();
    for status in ["pending", "waiting"] {
        let due: Vec<RunRow> = workflow_runs::table
            .filter(workflow_runs::status.eq(status))
            .filter(workflow_runs::next_at.le(at))
            .order(workflow_runs::next_at.asc())
            .limit(n - out.len() as i64)
            .select(RunRow::as_select())
            .load(c)?;
        if due.is_empty() {
            continue;
        }
        // One statement for the round's runs (was one per run). A run another worker
        // claimed since the read above no longer has `status` and is left out.
        let ids: Vec<&str> = due.iter().map(|r| r.id.as_str()).collect();
        let claim = diesel::update(
            workflow_runs::table
                .filter(workflow_runs::id.eq_any(&ids))
                .filter(workflow_runs::status.eq(status)),
        )
        .set((
            workflow_runs::status.eq("running"),
            workflow_runs::lease_until.eq(Some(at + LEASE)),
        ));
        let claimed: std::collections::HashSet<String> = match c {
            DbConn::Postgresql(pg) => claim
                .returning(workflow_runs::id)
                .get_results::<String>(pg)?
                .into_iter()
                .collect(),
            // SQLite: this transaction holds the write lock since its BEGIN IMMEDIATE, so
            // nothing changed since the read.
            DbConn::Sqlite(_) => {
                claim.execute(c)?;
                due.iter().map(|r| r.id.clone()).collect()
            }
        };
        out.extend(due.into_iter().filter(|r| claimed.contains(&r.id)));
        if out.len() as i64 >= n {
            break;
        }
    }
    Ok(out)
}

/// What the worker needs to carry a run out.
#[derive(Clone)]
pub struct Loaded {
    pub run: RunRow,
    pub flow: WorkflowRow,
    pub def: Definition,
}

pub fn load(c: &mut DbConn, run: RunRow) -> AppResult<Loaded> {
    let flow: WorkflowRow = workflows::table
        .find(&run.workflow_id)
        .select(WorkflowRow::as_select())
        .first(c)?;
    let def = version_of(c, &run.version_id)?.definition();
    Ok(Loaded { run, flow, def })
}

/// At a run's start: whether its client matches the conditions. A run that does not match
/// ends as `skipped` (kept, so "why did it not run?" has an answer).
pub fn check_conditions(c: &mut DbConn, l: &Loaded) -> AppResult<bool> {
    if l.run.step > 0 || l.def.conditions.iter().all(|g| g.trim().is_empty()) {
        return Ok(true);
    }
    let ok = match &l.run.client_id {
        Some(client) => matches(c, &l.run.organization_id, client, &l.def.conditions)?,
        None => false,
    };
    if !ok {
        finish(c, l, "skipped", None)?;
    }
    Ok(ok)
}

/// What a step came to.
pub enum Outcome {
    /// Done; go on at `next` (a branch may skip).
    Next { outcome: String, next: usize },
    /// Done; the run sleeps until `until` and then goes on with the next step.
    Wait {
        outcome: String,
        until: NaiveDateTime,
    },
    /// A branch whose condition did not hold and that skips nothing: the run ends here.
    End { outcome: String },
}

/// Everything a step may reach beyond the connection.
pub struct Reach<'a> {
    pub ext: &'a crate::plugins::PluginFieldTypes,
    pub blobs: &'a dyn crate::domain::attachments::BlobStore,
}

/// Carries out step `position` of the run in the caller's transaction (webhook calls are
/// the worker's: they leave the database) and records it; a step that already has a row is
/// not done again.
pub fn step(c: &mut DbConn, reach: &Reach<'_>, l: &Loaded, position: usize) -> AppResult<()> {
    let done: i64 = workflow_steps::table
        .filter(workflow_steps::run_id.eq(&l.run.id))
        .filter(workflow_steps::position.eq(position as i32))
        .count()
        .get_result(c)?;
    if done > 0 {
        return skip_recorded(c, l, position);
    }
    step_unrecorded(c, reach, l, position).map(drop)
}

/// As [`step`] without looking for the step's row first, for a batch that rolls back as a
/// whole: if another worker recorded the step meanwhile, the row this one inserts breaks
/// the `(run_id, position)` key, the batch rolls back, and its runs go through [`step`].
/// Answers the position the run goes on at, or `None` once it waits or has ended.
pub fn step_unrecorded(
    c: &mut DbConn,
    reach: &Reach<'_>,
    l: &Loaded,
    position: usize,
) -> AppResult<Option<usize>> {
    let s = &l.def.steps[position];
    let ctx = context(&l.run, &l.flow.name);
    let outcome = within_run(l.run.depth, || act(c, reach, l, &ctx, s, position))?;
    record(c, l, position, outcome)
}

/// A step found already recorded (a run resumed by another worker): the run moves past it.
pub fn skip_recorded(c: &mut DbConn, l: &Loaded, position: usize) -> AppResult<()> {
    diesel::update(workflow_runs::table.find(&l.run.id))
        .set(workflow_runs::step.eq(position as i32 + 1))
        .execute(c)?;
    Ok(())
}

/// Records a finished step (`outcome`) and moves the run on, in the step's transaction.
/// Answers the position the run goes on at, or `None` once it waits or has ended.
pub fn record(
    c: &mut DbConn,
    l: &Loaded,
    position: usize,
    outcome: Outcome,
) -> AppResult<Option<usize>> {
    let s = &l.def.steps[position];
    let text = match &outcome {
        Outcome::Next { outcome, .. }
        | Outcome::Wait { outcome, .. }
        | Outcome::End { outcome } => outcome.clone(),
    };
    let row = StepRow {
        id: new_id(),
        organization_id: l.run.organization_id.clone(),
        run_id: l.run.id.clone(),
        position: position as i32,
        kind: s.kind.clone(),
        status: "done".into(),
        outcome: text.chars().take(1000).collect(),
        attempts: l.run.attempts + 1,
        finished_at: now(),
    };
    // In a batch the row goes in at its end; the run's key on it still stops a step
    // recorded twice (the batch then rolls back).
    if let Some(row) = crate::domain::later::step(row) {
        diesel::insert_into(workflow_steps::table)
            .values(&row)
            .execute(c)?;
    }
    let at = now();
    match outcome {
        Outcome::Next { next, .. } if next < l.def.steps.len() => {
            diesel::update(workflow_runs::table.find(&l.run.id))
                .set((
                    workflow_runs::step.eq(next as i32),
                    workflow_runs::attempts.eq(0),
                    workflow_runs::error.eq(None::<String>),
                    workflow_runs::updated_at.eq(at),
                ))
                .execute(c)?;
            Ok(Some(next))
        }
        Outcome::Wait { until, .. } if position + 1 < l.def.steps.len() => {
            diesel::update(workflow_runs::table.find(&l.run.id))
                .set((
                    workflow_runs::step.eq(position as i32 + 1),
                    workflow_runs::status.eq("waiting"),
                    workflow_runs::next_at.eq(Some(until)),
                    workflow_runs::lease_until.eq(None::<NaiveDateTime>),
                    workflow_runs::attempts.eq(0),
                    workflow_runs::updated_at.eq(at),
                ))
                .execute(c)?;
            Ok(None)
        }
        _ => {
            ended(c, l, "done", None, Some(l.def.steps.len() as i32))?;
            Ok(None)
        }
    }
}

/// Whether an error is worth another attempt (the database or a server was unavailable)
/// or says the step cannot be done as written (invalid, gone, refused).
pub fn retryable(e: &AppError) -> bool {
    !matches!(
        e,
        AppError::Validation(..)
            | AppError::NotFound
            | AppError::Forbidden(_)
            | AppError::Conflict(_)
            | AppError::Stale(_)
    )
}

/// A step failed: retried after a backoff while attempts remain and the error is passing,
/// otherwise the run fails with the step's row saying why.
pub fn failed(c: &mut DbConn, l: &Loaded, position: usize, e: &AppError) -> AppResult<()> {
    let attempts = l.run.attempts + 1;
    let msg = match e.field_errors() {
        [] => e.to_string(),
        errs => errs
            .iter()
            .map(|f| f.message.clone())
            .collect::<Vec<_>>()
            .join(" "),
    };
    if retryable(e) && attempts < MAX_ATTEMPTS {
        diesel::update(workflow_runs::table.find(&l.run.id))
            .set((
                workflow_runs::status.eq("pending"),
                workflow_runs::attempts.eq(attempts),
                workflow_runs::next_at.eq(Some(now() + backoff(attempts))),
                workflow_runs::lease_until.eq(None::<NaiveDateTime>),
                workflow_runs::error.eq(Some(format!("Step {}: {msg}", position + 1))),
                workflow_runs::updated_at.eq(now()),
            ))
            .execute(c)?;
        return Ok(());
    }
    let recorded: i64 = workflow_steps::table
        .filter(workflow_steps::run_id.eq(&l.run.id))
        .filter(workflow_steps::position.eq(position as i32))
        .count()
        .get_result(c)?;
    if recorded == 0 {
        diesel::insert_into(workflow_steps::table)
            .values(&StepRow {
                id: new_id(),
                organization_id: l.run.organization_id.clone(),
                run_id: l.run.id.clone(),
                position: position as i32,
                kind: l.def.steps[position].kind.clone(),
                status: "failed".into(),
                outcome: msg.chars().take(1000).collect(),
                attempts,
                finished_at: now(),
            })
            .execute(c)?;
    }
    let l = Loaded {
        run: RunRow {
            attempts,
            ..l.run.clone()
        },
        flow: l.flow.clone(),
        def: l.def.clone(),
    };
    finish(
        c,
        &l,
        "failed",
        Some(format!("Step {}: {msg}", position + 1)),
    )
}

/// Ends a run, and says so on its client's timeline (not for runs whose conditions did not
/// hold: those are in the workflow's history only).
pub fn finish(c: &mut DbConn, l: &Loaded, status: &str, error: Option<String>) -> AppResult<()> {
    ended(c, l, status, error, None)
}

/// [`finish`], moving the run to `step` in the same statement when given.
fn ended(
    c: &mut DbConn,
    l: &Loaded,
    status: &str,
    error: Option<String>,
    step: Option<i32>,
) -> AppResult<()> {
    let at = now();
    // In a batch, the runs that end well end together at its end.
    let held = status == "done" && error.is_none();
    if !held || crate::domain::later::done(&l.run.id, step).is_some() {
        diesel::update(workflow_runs::table.find(&l.run.id))
            .set((
                step.map(|n| workflow_runs::step.eq(n)),
                workflow_runs::status.eq(status),
                workflow_runs::error.eq(&error),
                workflow_runs::finished_at.eq(Some(at)),
                workflow_runs::lease_until.eq(None::<NaiveDateTime>),
                workflow_runs::next_at.eq(None::<NaiveDateTime>),
                workflow_runs::updated_at.eq(at),
            ))
            .execute(c)?;
    }
    if status == "skipped" {
        return Ok(());
    }
    let Some(client) = &l.run.client_id else {
        return Ok(());
    };
    // A batch ends several runs on one client (no step moves a client to the trash): it
    // looks once.
    let alive: i64 = crate::domain::memo::read(format!("client alive {client}"), || {
        crate::db::schema::clients::table
            .filter(crate::db::schema::clients::id.eq(client))
            .filter(crate::db::schema::clients::deleted_at.is_null())
            .count()
            .get_result(c)
    })?;
    if alive == 0 {
        return Ok(());
    }
    let subject = match &error {
        None => format!("Workflow “{}” ran", l.flow.name),
        Some(e) => format!("Workflow “{}” failed: {e}", l.flow.name),
    };
    let deal = (l.run.record_type == "opportunity")
        .then(|| l.run.record_id.clone())
        .flatten();
    crate::domain::interactions::record_event(
        c,
        &context(&l.run, &l.flow.name),
        client,
        deal.as_deref(),
        &subject,
        json!({"event": "workflow.run", "workflowId": l.flow.id, "runId": l.run.id, "status": status}),
    )
}

/// "today", "in 1 day", "in 3 days".
fn in_days(d: i64) -> String {
    match d {
        0 => "today".into(),
        1 => "in 1 day".into(),
        n => format!("in {n} days"),
    }
}

fn owner_of(c: &mut DbConn, l: &Loaded) -> AppResult<Option<String>> {
    use crate::db::schema::clients;
    if l.run.record_type == "opportunity" {
        if let Some(id) = &l.run.record_id {
            let owner: Option<Option<String>> = opportunities::table
                .find(id)
                .select(opportunities::assigned_to)
                .first(c)
                .optional()?;
            if let Some(Some(o)) = owner {
                return Ok(Some(o));
            }
        }
    }
    let Some(client) = &l.run.client_id else {
        return Ok(None);
    };
    Ok(clients::table
        .find(client)
        .select(clients::assigned_to)
        .first::<Option<String>>(c)
        .optional()?
        .flatten())
}

fn first_manager(c: &mut DbConn, org: &str) -> AppResult<Option<String>> {
    use crate::db::schema::memberships;
    Ok(memberships::table
        .filter(memberships::organization_id.eq(org))
        .filter(memberships::role.eq_any(["manager", "admin"]))
        .filter(memberships::is_active.eq(true))
        // Managers before admins, then the longest-standing.
        .order((memberships::role.desc(), memberships::id.asc()))
        .select(memberships::user_id)
        .first(c)
        .optional()?)
}

fn person(c: &mut DbConn, l: &Loaded, who: Option<&str>) -> AppResult<Option<String>> {
    match who.map(str::trim).filter(|w| !w.is_empty()) {
        None | Some("owner") => owner_of(c, l),
        Some("manager") => first_manager(c, &l.run.organization_id),
        Some(u) => Ok(Some(u.to_string())),
    }
}

fn name_of(c: &mut DbConn, org: &str, user: &str) -> AppResult<String> {
    Ok(crate::domain::orgs::store::find_member(c, org, user)?
        .map(|m| {
            if m.user.name.is_empty() {
                m.user.email
            } else {
                m.user.name
            }
        })
        .unwrap_or_else(|| "someone who left".into()))
}

fn need_client(l: &Loaded) -> AppResult<String> {
    l.run.client_id.clone().ok_or_else(|| {
        AppError::invalid("record", "This step needs a client, and the run has none.")
    })
}

fn need_deal(l: &Loaded) -> AppResult<String> {
    match (l.run.record_type.as_str(), &l.run.record_id) {
        ("opportunity", Some(id)) => Ok(id.clone()),
        _ => Err(AppError::invalid(
            "record",
            "This step needs a deal, and the run is not about one.",
        )),
    }
}

fn deal_of(l: &Loaded) -> Option<String> {
    (l.run.record_type == "opportunity")
        .then(|| l.run.record_id.clone())
        .flatten()
}

/// Text with the record's merge fields (`{{ client.name }}`) filled in, by the templates'
/// sandboxed engine; a text that does not render is kept as written.
fn merged(c: &mut DbConn, l: &Loaded, text: &str) -> AppResult<String> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    let client = match &l.run.client_id {
        Some(id) => crate::domain::templates::client_data(c, &l.run.organization_id, id)
            .unwrap_or(Value::Null),
        None => Value::Null,
    };
    let data = json!({"client": client, "event": serde_json::from_str::<Value>(&l.run.event).unwrap_or(Value::Null)});
    Ok(crate::domain::templates::render("", text, &data)
        .map(|(_, body)| body)
        .unwrap_or_else(|_| text.to_string()))
}

fn act(
    c: &mut DbConn,
    reach: &Reach<'_>,
    l: &Loaded,
    ctx: &AuditContext,
    s: &Step,
    position: usize,
) -> AppResult<Outcome> {
    let org = l.run.organization_id.clone();
    let access = access();
    let next = |outcome: String| Outcome::Next {
        outcome,
        next: position + 1,
    };
    let text = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or_default().to_string();
    match s.kind.as_str() {
        "task" | "meeting" | "note" => {
            let client = need_client(l)?;
            let mut body = Map::new();
            body.insert("type".into(), json!(s.kind));
            let days = s.in_days.unwrap_or(0);
            let when = (now() + Duration::days(days)).and_utc().to_rfc3339();
            body.insert("subject".into(), json!(merged(c, l, &text(&s.title))?));
            if s.body.is_some() {
                body.insert("content".into(), json!(merged(c, l, &text(&s.body))?));
            }
            // Only a task has someone it is for.
            let who = match s.kind.as_str() {
                "task" => person(c, l, s.assignee.as_deref())?,
                _ => None,
            };
            match s.kind.as_str() {
                "task" => {
                    body.insert("dueAt".into(), json!(when));
                    if let Some(w) = &who {
                        body.insert("assigneeId".into(), json!(w));
                    }
                }
                "meeting" => {
                    body.insert("scheduledAt".into(), json!(when));
                    body.insert("status".into(), json!("scheduled"));
                }
                _ => {}
            }
            if let Some(d) = deal_of(l) {
                body.insert("opportunityId".into(), json!(d));
            }
            let row = crate::domain::interactions::create(c, ctx, &access, &client, &body)?;
            let for_whom = match who.filter(|_| s.kind == "task") {
                Some(u) => format!(" for {}", name_of(c, &org, &u)?),
                None => String::new(),
            };
            Ok(next(match s.kind.as_str() {
                "task" => format!("Task “{}”{for_whom}, due {}", row.subject, in_days(days)),
                "meeting" => format!("Meeting “{}” planned {}", row.subject, in_days(days)),
                _ => "Note added".into(),
            }))
        }
        "update" => {
            let client = need_client(l)?;
            let field = text(&s.field);
            let raw = merged(c, l, &text(&s.value))?;
            let defs = crate::domain::custom_fields::store::list(c, &org, "client", false)?;
            let mut body = Map::new();
            if let Some(key) = field.strip_prefix("customFields.") {
                use crate::domain::custom_fields::FieldType;
                let kind = defs.iter().find(|d| d.field_key == key).map(|d| d.kind());
                let value = match kind {
                    _ if raw.is_empty() => Value::Null,
                    Some(FieldType::Integer | FieldType::Decimal | FieldType::Money) => raw
                        .parse::<f64>()
                        .map(|n| json!(n))
                        .unwrap_or_else(|_| json!(raw)),
                    Some(FieldType::Boolean) => json!(matches!(raw.as_str(), "true" | "yes" | "1")),
                    _ => json!(raw),
                };
                body.insert("customFields".into(), json!({ key: value }));
            } else {
                body.insert(field.clone(), json!(raw));
            }
            let w = crate::domain::clients::service::WriteContext {
                ctx,
                access: &access,
                defs: &defs,
                external: reach.ext,
            };
            crate::domain::clients::service::update(
                c,
                &w,
                &client,
                &body,
                crate::domain::custom_fields::service::Mode::Merge,
                None,
            )?;
            Ok(next(format!("{field} set to “{raw}”")))
        }
        "tag" | "untag" => {
            let client = need_client(l)?;
            let name = merged(c, l, &text(&s.tag))?;
            let add = s.kind == "tag";
            let tag = match crate::domain::clients::service::resolve_tag(c, &org, &name)? {
                Some(t) => t,
                // Another run may define the same new tag at this moment: then use theirs.
                None if add => {
                    match crate::domain::clients::service::define_tag(c, ctx, &name, "gray") {
                        Ok(t) => t,
                        Err(e) => crate::domain::clients::service::resolve_tag(c, &org, &name)?
                            .ok_or(e)?,
                    }
                }
                None => return Ok(next(format!("No tag “{name}” to remove"))),
            };
            let changed = crate::domain::clients::service::tag_client(
                c, ctx, &access, &client, &tag.id, add,
            )?;
            Ok(next(match (add, changed) {
                (true, true) => format!("Tagged “{}”", tag.name),
                (true, false) => format!("Already tagged “{}”", tag.name),
                (false, true) => format!("Tag “{}” removed", tag.name),
                (false, false) => format!("Had no tag “{}”", tag.name),
            }))
        }
        "assign" => {
            let user = choose_owner(c, l, s)?;
            let name = name_of(c, &org, &user)?;
            let mut body = Map::new();
            body.insert("assignedTo".into(), json!(user));
            if let Some(deal) = deal_of(l) {
                let defs =
                    crate::domain::custom_fields::store::list(c, &org, "opportunity", false)?;
                let currency = crate::ops::default_currency(c, &org)?;
                let w = crate::domain::pipeline::service::WriteContext {
                    ctx,
                    access: &access,
                    defs: &defs,
                    default_currency: &currency,
                    external: reach.ext,
                    rules: reach.ext,
                };
                crate::domain::pipeline::service::update(
                    c,
                    &w,
                    &deal,
                    &body,
                    crate::domain::custom_fields::service::Mode::Merge,
                    None,
                )?;
                Ok(next(format!("Deal assigned to {name}")))
            } else {
                let client = need_client(l)?;
                let defs = crate::domain::custom_fields::store::list(c, &org, "client", false)?;
                let w = crate::domain::clients::service::WriteContext {
                    ctx,
                    access: &access,
                    defs: &defs,
                    external: reach.ext,
                };
                crate::domain::clients::service::update(
                    c,
                    &w,
                    &client,
                    &body,
                    crate::domain::custom_fields::service::Mode::Merge,
                    None,
                )?;
                Ok(next(format!("Client assigned to {name}")))
            }
        }
        "move" => {
            let deal = need_deal(l)?;
            let stage = text(&s.stage);
            let row = crate::domain::pipeline::service::move_to(
                c, ctx, &access, &deal, &stage, None, None, reach.ext,
            )?;
            let name = crate::domain::pipeline::store::find_stage(c, &org, &row.stage_id)?
                .map(|s| s.name)
                .unwrap_or_default();
            Ok(next(format!("Deal moved to {name}")))
        }
        "email" => {
            let client = need_client(l)?;
            let template = crate::domain::templates::get(c, &org, &text(&s.template))?;
            let mailbox = crate::domain::mail::mailbox(c, &org, None, &text(&s.mailbox))?;
            let client_value = crate::domain::templates::client_data(c, &org, &client)?;
            let to = client_value["email"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if to.is_empty() {
                return Err(AppError::invalid("to", "The client has no e-mail address."));
            }
            let mut data =
                crate::domain::templates::data(client_value, &mailbox.name, &mailbox.address, "");
            if let Some(d) = deal_of(l) {
                if let Ok(deal) = crate::domain::pipeline::service::get(c, &org, &access, &d) {
                    data["deal"] = crate::domain::templates::deal_value(c, &deal)?;
                }
            }
            let (subject, body) =
                crate::domain::templates::render(&template.subject, &template.body, &data)
                    .map_err(|e| AppError::Validation("The template does not render.".into(), e))?;
            let msg = crate::domain::mail::queue(
                c,
                reach.blobs,
                ctx,
                &access,
                crate::domain::mail::Draft {
                    mailbox_id: mailbox.id.clone(),
                    client_id: Some(client),
                    to: vec![to.clone()],
                    cc: vec![],
                    bcc: vec![],
                    subject,
                    text: body,
                    reply_to: None,
                    opportunity_id: deal_of(l),
                    attachment_ids: vec![],
                },
            )?;
            Ok(next(format!("E-mail “{}” queued to {to}", msg.subject)))
        }
        "wait" => {
            let minutes = s.minutes.unwrap_or(1).clamp(1, 525_600);
            let until = now() + Duration::minutes(minutes);
            Ok(Outcome::Wait {
                outcome: format!("Waited until {}", until.format("%Y-%m-%d %H:%M UTC")),
                until,
            })
        }
        "branch" => {
            let holds = match &l.run.client_id {
                Some(client) => matches(c, &org, client, &[text(&s.condition)])?,
                None => false,
            };
            Ok(match (holds, s.else_skip) {
                (true, _) => next("The condition held".into()),
                (false, Some(k)) => Outcome::Next {
                    outcome: format!("The condition did not hold: {k} steps skipped"),
                    next: position + 1 + k as usize,
                },
                (false, None) => Outcome::End {
                    outcome: "The condition did not hold: the run ends here".into(),
                },
            })
        }
        "webhook" | "plugin" => Err(AppError::Internal(
            "webhook and plugin steps are carried out by the worker".into(),
        )),
        _ => Err(AppError::invalid("type", "Unknown step.")),
    }
}

/// The owner an assign step picks: a fixed person, the next member of the role after the
/// one this workflow assigned last (round robin), or the member with the fewest open deals
/// (deal records) or clients (client records).
fn choose_owner(c: &mut DbConn, l: &Loaded, s: &Step) -> AppResult<String> {
    use crate::db::schema::{clients, memberships};
    let org = &l.run.organization_id;
    let mode = s.mode.as_deref().unwrap_or("fixed");
    if mode == "fixed" {
        return s
            .user
            .clone()
            .ok_or_else(|| AppError::invalid("user", "Choose who becomes the owner."));
    }
    let mut q = memberships::table
        .filter(memberships::organization_id.eq(org))
        .filter(memberships::is_active.eq(true))
        .select(memberships::user_id)
        .order(memberships::user_id.asc())
        .into_boxed();
    if let Some(r) = s.role.as_deref().filter(|r| !r.is_empty()) {
        q = q.filter(memberships::role.eq(r.to_string()));
    }
    let members: Vec<String> = q.load(c)?;
    if members.is_empty() {
        return Err(AppError::invalid("role", "Nobody active has that role."));
    }
    if mode == "round_robin" {
        let last: Option<String> = workflows::table
            .find(&l.flow.id)
            .select(workflows::last_assignee)
            .first(c)?;
        let pick = last
            .and_then(|last| members.iter().find(|m| **m > last).cloned())
            .unwrap_or_else(|| members[0].clone());
        diesel::update(workflows::table.find(&l.flow.id))
            .set(workflows::last_assignee.eq(Some(&pick)))
            .execute(c)?;
        return Ok(pick);
    }
    let loads: Vec<(Option<String>, i64)> = if deal_of(l).is_some() {
        opportunities::table
            .filter(opportunities::organization_id.eq(org))
            .filter(opportunities::status.eq("open"))
            .filter(opportunities::deleted_at.is_null())
            .filter(opportunities::assigned_to.eq_any(&members))
            .group_by(opportunities::assigned_to)
            .select((opportunities::assigned_to, diesel::dsl::count_star()))
            .load(c)?
    } else {
        clients::table
            .filter(clients::organization_id.eq(org))
            .filter(clients::deleted_at.is_null())
            .filter(clients::assigned_to.eq_any(&members))
            .group_by(clients::assigned_to)
            .select((clients::assigned_to, diesel::dsl::count_star()))
            .load(c)?
    };
    let load = |m: &String| {
        loads
            .iter()
            .find(|(u, _)| u.as_ref() == Some(m))
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    Ok(members
        .iter()
        .min_by_key(|m| load(m))
        .cloned()
        .unwrap_or_default())
}

/// The body a webhook step posts.
pub fn webhook_body(l: &Loaded, position: usize) -> Value {
    json!({
        "type": "workflow.step",
        "workflow": {"id": l.flow.id, "name": l.flow.name, "version": l.flow.version},
        "run": {"id": l.run.id, "step": position + 1},
        "record": {"type": match l.run.record_type.as_str() { "opportunity" => "deal", o => o },
                   "id": l.run.record_id},
        "clientId": l.run.client_id,
        "event": serde_json::from_str::<Value>(&l.run.event).unwrap_or(Value::Null),
    })
}

// Dry run

/// What the workflow would do for a record, without doing it: whether the conditions hold
/// and, step by step, what each would do (branches evaluated now; waits read as waits).
pub fn dry_run(
    c: &mut DbConn,
    org: &str,
    flow: &WorkflowRow,
    def: &Definition,
    record_type: &str,
    record_id: &str,
) -> AppResult<Vec<String>> {
    let client = client_of(c, org, record_type, record_id)?.ok_or(AppError::NotFound)?;
    crate::domain::clients::service::get(c, org, &access(), &client)?;
    let l = Loaded {
        run: RunRow {
            id: String::new(),
            organization_id: org.to_string(),
            workflow_id: flow.id.clone(),
            version_id: String::new(),
            record_type: record_type.to_string(),
            record_id: Some(record_id.to_string()),
            client_id: Some(client.clone()),
            event: "{}".into(),
            depth: 0,
            dedupe_key: None,
            status: "pending".into(),
            step: 0,
            attempts: 0,
            next_at: None,
            lease_until: None,
            error: None,
            created_at: now(),
            updated_at: now(),
            finished_at: None,
        },
        flow: flow.clone(),
        def: def.clone(),
    };
    let mut out = Vec::new();
    if !matches(c, org, &client, &def.conditions)? {
        out.push("The conditions do not hold for this record: the workflow would not run.".into());
        return Ok(out);
    }
    out.push(if def.conditions.is_empty() {
        "No conditions: the workflow would run.".into()
    } else {
        "The conditions hold: the workflow would run.".into()
    });
    let mut i = 0;
    while i < def.steps.len() {
        let s = &def.steps[i];
        let n = i + 1;
        let t = |v: &Option<String>| v.clone().unwrap_or_default();
        let line = match s.kind.as_str() {
            "task" => {
                let who = match person(c, &l, s.assignee.as_deref())? {
                    Some(u) => name_of(c, org, &u)?,
                    None => "nobody".into(),
                };
                format!(
                    "create the task “{}” for {who}, due {}",
                    merged(c, &l, &t(&s.title))?,
                    in_days(s.in_days.unwrap_or(0))
                )
            }
            "meeting" => format!(
                "plan the meeting “{}” {}",
                merged(c, &l, &t(&s.title))?,
                in_days(s.in_days.unwrap_or(0))
            ),
            "note" => format!(
                "add the note “{}”",
                merged(c, &l, &t(&s.body))?
                    .chars()
                    .take(80)
                    .collect::<String>()
            ),
            "update" => format!("set {} to “{}”", t(&s.field), merged(c, &l, &t(&s.value))?),
            "tag" => format!("tag the client “{}”", t(&s.tag)),
            "untag" => format!("remove the tag “{}”", t(&s.tag)),
            "assign" => match s.mode.as_deref().unwrap_or("fixed") {
                "fixed" => format!("assign it to {}", name_of(c, org, &t(&s.user))?),
                "round_robin" => "assign it to the next member in turn".into(),
                _ => "assign it to the least loaded member".into(),
            },
            "move" => {
                if deal_of(&l).is_none() {
                    "fail: moving needs a deal, and this record is not one".into()
                } else {
                    let name = crate::domain::pipeline::store::find_stage(c, org, &t(&s.stage))?
                        .map(|s| s.name)
                        .unwrap_or_default();
                    format!("move the deal to {name}")
                }
            }
            "email" => {
                let email = crate::domain::templates::client_data(c, org, &client)?["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let prefs = crate::domain::preferences::load(c, org, &client)?;
                match (email.is_empty(), prefs.objection("email")) {
                    (true, _) => "fail: the client has no e-mail address".into(),
                    (false, Some(why)) => format!("not send the e-mail: {why}"),
                    (false, None) => format!("send the template's e-mail to {email}"),
                }
            }
            "webhook" => format!("call {}", t(&s.url)),
            "plugin" => format!(
                "run the action {} of the plugin {}",
                t(&s.action),
                t(&s.plugin)
            ),
            "wait" => format!("wait {} minutes", s.minutes.unwrap_or(0)),
            "branch" => {
                let holds = matches(c, org, &client, &[t(&s.condition)])?;
                match (holds, s.else_skip) {
                    (true, _) => "go on: the condition holds now".into(),
                    (false, Some(k)) => {
                        out.push(format!(
                            "Step {n} would skip {k} steps: the condition does not hold now."
                        ));
                        i += 1 + k as usize;
                        continue;
                    }
                    (false, None) => {
                        out.push(format!(
                            "Step {n} would end the run: the condition does not hold now."
                        ));
                        break;
                    }
                }
            }
            _ => "do nothing it knows".into(),
        };
        out.push(format!("Step {n} would {line}."));
        i += 1;
    }
    Ok(out)
}

// Date and schedule triggers

/// Starts the runs date and schedule triggers owe since their last scan. Each run has a
/// dedupe key (the record and the date, or the tick and the client), so a scan repeated
/// after a crash starts nothing twice.
pub fn scan(c: &mut DbConn, at: NaiveDateTime) -> AppResult<usize> {
    let flows: Vec<(WorkflowRow, VersionRow)> = workflows::table
        .inner_join(
            workflow_versions::table.on(workflow_versions::workflow_id
                .eq(workflows::id)
                .and(workflow_versions::version.eq(workflows::version))),
        )
        .filter(workflows::trigger_type.eq_any(["date", "schedule"]))
        .filter(workflows::enabled.eq(true))
        .filter(workflows::deleted_at.is_null())
        .select((WorkflowRow::as_select(), VersionRow::as_select()))
        .load(c)?;
    let mut started = 0;
    for (flow, version) in flows {
        let def = version.definition();
        let from = flow.scanned_until.unwrap_or(at);
        if from >= at {
            continue;
        }
        started += crate::db::transaction(c, |c| -> AppResult<usize> {
            let (n, until) = if flow.trigger_type == "date" {
                scan_dates(c, &flow, &version, &def.trigger, from, at)?
            } else {
                scan_schedule(c, &flow, &version, &def, from, at)?
            };
            diesel::update(workflows::table.find(&flow.id))
                .set(workflows::scanned_until.eq(Some(until)))
                .execute(c)?;
            Ok(n)
        })?;
    }
    Ok(started)
}

/// Records whose date, moved by the offset, fell in (from, to]. A date fires at midnight UTC
/// of its day (plus the offset in days).
fn scan_dates(
    c: &mut DbConn,
    flow: &WorkflowRow,
    version: &VersionRow,
    t: &Trigger,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<(usize, NaiveDateTime)> {
    use crate::db::schema::{clients, contracts};
    let offset = Duration::days(t.offset_days.unwrap_or(0));
    // date + offset in (from, to]  <=>  date in (from - offset, to - offset]
    let (lo, hi) = (from - offset, to - offset);
    let org = &flow.organization_id;
    let hits: Vec<(String, String, String, String)> = match t.date.as_deref() {
        Some("contract.endDate") => {
            // A date D fires at D 00:00, so D is in (lo, hi] when D > lo.date() (or D == lo's
            // day with lo at midnight exactly, which the strict bound leaves to the previous scan).
            let rows: Vec<(String, String, chrono::NaiveDate)> = contracts::table
                .filter(contracts::organization_id.eq(org))
                .filter(contracts::end_date.gt(lo.date()))
                .filter(contracts::end_date.le(hi.date()))
                .select((contracts::id, contracts::client_id, contracts::end_date))
                .limit(SCAN_LIMIT)
                .load(c)?;
            rows.into_iter()
                .map(|(id, cl, d)| ("contract".to_string(), id, cl, d.to_string()))
                .collect()
        }
        Some("deal.expectedClose") => {
            let rows: Vec<(String, String, Option<chrono::NaiveDate>)> = opportunities::table
                .filter(opportunities::organization_id.eq(org))
                .filter(opportunities::deleted_at.is_null())
                .filter(opportunities::status.eq("open"))
                .filter(opportunities::expected_close.gt(lo.date()))
                .filter(opportunities::expected_close.le(hi.date()))
                .select((
                    opportunities::id,
                    opportunities::client_id,
                    opportunities::expected_close,
                ))
                .limit(SCAN_LIMIT)
                .load(c)?;
            rows.into_iter()
                .map(|(id, cl, d)| {
                    (
                        "opportunity".to_string(),
                        id,
                        cl,
                        d.map(|d| d.to_string()).unwrap_or_default(),
                    )
                })
                .collect()
        }
        Some("deal.stageEnteredAt") => {
            let rows: Vec<(String, String, NaiveDateTime)> = opportunities::table
                .filter(opportunities::organization_id.eq(org))
                .filter(opportunities::deleted_at.is_null())
                .filter(opportunities::status.eq("open"))
                .filter(opportunities::stage_entered_at.gt(lo))
                .filter(opportunities::stage_entered_at.le(hi))
                .select((
                    opportunities::id,
                    opportunities::client_id,
                    opportunities::stage_entered_at,
                ))
                .limit(SCAN_LIMIT)
                .load(c)?;
            rows.into_iter()
                .map(|(id, cl, d)| ("opportunity".to_string(), id, cl, d.to_string()))
                .collect()
        }
        Some("client.createdAt") => {
            let rows: Vec<(String, NaiveDateTime)> = clients::table
                .filter(clients::organization_id.eq(org))
                .filter(clients::deleted_at.is_null())
                .filter(clients::created_at.gt(lo))
                .filter(clients::created_at.le(hi))
                .select((clients::id, clients::created_at))
                .limit(SCAN_LIMIT)
                .load(c)?;
            rows.into_iter()
                .map(|(id, d)| ("client".to_string(), id.clone(), id, d.to_string()))
                .collect()
        }
        _ => vec![],
    };
    let full = hits.len() as i64 >= SCAN_LIMIT;
    let mut n = 0;
    for (kind, id, client, date) in hits {
        let key = format!("{id}:{date}");
        let event =
            json!({"type": "date", "date": t.date, "value": date, "offsetDays": t.offset_days});
        if insert_run(
            c,
            flow,
            version,
            &kind,
            Some(&id),
            Some(&client),
            event,
            0,
            Some(key),
        )?
        .is_some()
        {
            n += 1;
        }
    }
    // A full page is looked at again next time (the dedupe key skips what started).
    Ok((n, if full { from } else { to }))
}

/// The schedule's ticks in (from, to]: every hour on the hour, every day at `at`, or every
/// week on `weekday` at `at` (UTC).
pub fn ticks(t: &Trigger, from: NaiveDateTime, to: NaiveDateTime) -> Vec<NaiveDateTime> {
    let at =
        t.at.as_deref()
            .and_then(|a| NaiveTime::parse_from_str(a, "%H:%M").ok())
            .unwrap_or(NaiveTime::MIN);
    let mut out = Vec::new();
    let mut day = from.date();
    while day <= to.date() && out.len() < 1000 {
        match t.every.as_deref() {
            Some("hour") => {
                for h in 0..24 {
                    let tick = day.and_hms_opt(h, at.minute(), 0).unwrap_or_default();
                    if tick > from && tick <= to {
                        out.push(tick);
                    }
                }
            }
            Some("week") => {
                let wd = t.weekday.unwrap_or(1);
                let tick = day.and_time(at);
                if day.weekday().number_from_monday() == wd && tick > from && tick <= to {
                    out.push(tick);
                }
            }
            _ => {
                let tick = day.and_time(at);
                if tick > from && tick <= to {
                    out.push(tick);
                }
            }
        }
        day = day.succ_opt().unwrap_or(day);
        if day == to.date() && out.len() >= 1000 {
            break;
        }
    }
    out
}

/// At each tick, a run for every client matching the conditions (at most [`SCAN_LIMIT`]
/// per tick; with no conditions, the organization's clients in id order up to it).
fn scan_schedule(
    c: &mut DbConn,
    flow: &WorkflowRow,
    version: &VersionRow,
    def: &Definition,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> AppResult<(usize, NaiveDateTime)> {
    let org = &flow.organization_id;
    let mut n = 0;
    // why: only the latest missed tick runs: a server down for a week does not send seven
    // Monday reminders at once.
    let Some(tick) = ticks(&def.trigger, from, to).pop() else {
        return Ok((0, to));
    };
    let groups: Vec<String> = if def.conditions.is_empty() {
        vec![String::new()]
    } else {
        def.conditions.clone()
    };
    let mut seen = std::collections::HashSet::new();
    for g in groups {
        let p = if g.is_empty() {
            crate::domain::clients::query::ListParams::default()
        } else {
            condition_params(c, org, &g)?
        };
        let mut after: Option<String> = None;
        while (seen.len() as i64) < SCAN_LIMIT {
            let page =
                crate::domain::clients::query::audience_page(c, org, &p, after.as_deref(), 500)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (id, _) in page {
                if !seen.insert(id.clone()) {
                    continue;
                }
                let key = format!("{}:{id}", tick.and_utc().timestamp());
                let event = json!({"type": "schedule", "at": tick.and_utc().to_rfc3339()});
                if insert_run(
                    c,
                    flow,
                    version,
                    "client",
                    Some(&id),
                    Some(&id),
                    event,
                    0,
                    Some(key),
                )?
                .is_some()
                {
                    n += 1;
                }
            }
        }
    }
    Ok((n, to))
}
