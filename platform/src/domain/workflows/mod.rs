//! Workflows: one trigger, conditions and ordered steps per workflow, per organization.
//!
//! Saving makes a new version; a run keeps the version it started with. Runs are written in
//! the transaction of the change that triggers them ([`fire`], called from the audit log as
//! webhook deliveries are), so the API call that fires one pays for an indexed read and a row,
//! never for the work; the worker ([`run`]) carries the steps out afterwards, each in its own
//! transaction together with the row that records it, so a restart resumes at the first step
//! without a row and never repeats one. A change a workflow makes may trigger workflows in
//! turn, up to [`MAX_DEPTH`] links; past that the run is recorded as stopped (loop protection).

pub mod run;

use std::cell::Cell;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::db::schema::{
    opportunities, workflow_runs, workflow_steps, workflow_versions, workflows,
};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::error::{AppError, AppResult, FieldError};

/// What may start a workflow: (type, how it reads).
pub const TRIGGERS: &[(&str, &str)] = &[
    ("client.created", "A client is created"),
    ("client.updated", "A client changes"),
    ("deal.created", "A deal is created"),
    ("deal.updated", "A deal changes"),
    ("deal.stage_changed", "A deal moves to a stage"),
    ("deal.won", "A deal is won"),
    ("deal.lost", "A deal is lost"),
    (
        "interaction.created",
        "A call, meeting, note or task is logged",
    ),
    ("mail.received", "An e-mail from a client arrives"),
    ("segment.entered", "A client enters a segment"),
    ("segment.left", "A client leaves a segment"),
    ("date", "A date on a record comes round"),
    ("schedule", "On a schedule"),
    ("webhook", "Another system calls the workflow's web address"),
    ("plugin", "A plugin raises its event"),
];

/// What a step may do: (type, how it reads).
pub const ACTIONS: &[(&str, &str)] = &[
    ("task", "Create a task"),
    ("note", "Add a note"),
    ("meeting", "Plan a meeting"),
    ("update", "Change a client field"),
    ("tag", "Add a tag"),
    ("untag", "Remove a tag"),
    ("assign", "Assign an owner"),
    ("move", "Move the deal to a stage"),
    ("email", "Send an e-mail from a template"),
    ("webhook", "Call a web address"),
    ("wait", "Wait"),
    ("branch", "Go on only if the client matches"),
    ("plugin", "Run a plugin's action"),
];

/// Dates a date trigger can follow: (object.field, how it reads).
pub const DATE_FIELDS: &[(&str, &str)] = &[
    ("contract.endDate", "A contract's end date"),
    ("deal.expectedClose", "A deal's expected close date"),
    ("deal.stageEnteredAt", "When a deal entered its stage"),
    ("client.createdAt", "When a client was created"),
];

/// Chained workflow changes allowed before a run is stopped as a loop.
pub const MAX_DEPTH: i32 = 3;
/// Steps in one workflow.
pub const MAX_STEPS: usize = 25;
/// Workflows per organization.
pub const MAX_WORKFLOWS: i64 = 200;
/// Condition groups, and the size of each.
const MAX_GROUPS: usize = 10;
const MAX_CONDITION: usize = 2_000;
/// Runs a date or schedule trigger starts in one pass (the next pass goes on).
pub const SCAN_LIMIT: i64 = 10_000;

pub fn trigger_label(t: &str) -> &'static str {
    TRIGGERS
        .iter()
        .find(|(k, _)| *k == t)
        .map(|(_, l)| *l)
        .unwrap_or("Unknown trigger")
}

pub fn action_label(t: &str) -> &'static str {
    ACTIONS
        .iter()
        .find(|(k, _)| *k == t)
        .map(|(_, l)| *l)
        .unwrap_or("Unknown step")
}

/// How a run's state reads.
pub fn status_label(s: &str) -> &'static str {
    match s {
        "pending" => "Queued",
        "running" => "Running",
        "waiting" => "Waiting",
        "done" => "Done",
        "failed" => "Failed",
        "skipped" => "Conditions not met",
        "stopped" => "Stopped (loop protection)",
        _ => "Unknown",
    }
}

/// The trigger. One flat shape: each type reads the fields it needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = WorkflowTrigger)]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: String,
    /// client.updated / deal.updated: only when this field changed (`status`,
    /// `customFields.<key>`, `tags`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `deal.stage_changed`: only into this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// interaction.created: only this kind (call, meeting, note, task, email, sms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interaction: Option<String>,
    /// segment.entered / segment.left: the segment's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// date: which date (see [`DATE_FIELDS`]) and how many days after it (negative: before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_days: Option<i64>,
    /// schedule: `hour`, `day` or `week`; at `HH:MM` UTC; on `weekday` (1 = Monday).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<u32>,
    /// plugin: the plugin's id and the key of the trigger it declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// One step. One flat shape: each type reads the fields it needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = WorkflowStep)]
pub struct Step {
    #[serde(rename = "type")]
    pub kind: String,
    /// task, meeting: the subject; note: the subject line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// note: the text; task: details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// task: due this many days after the step; meeting: planned this many days after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_days: Option<i64>,
    /// task, meeting: `owner` (the record's owner), `manager` (the organization's first
    /// active manager) or a user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// update: the client field (`status`, `source`, `industry`, `customFields.<key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// tag, untag: the tag's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// assign: `fixed` (user), `round_robin` or `least_loaded` (among `role`'s members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// move: the stage id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// email: the template and the shared mailbox it is sent from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    /// webhook: the address (checked as webhook subscriptions are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_private_host: Option<bool>,
    /// wait: minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<i64>,
    /// branch: the condition (the client list's filter language) and, when it does not
    /// hold, how many following steps to skip (none: the run ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub else_skip: Option<i64>,
    /// plugin: the plugin's id, the key of the action it declares, and the action's
    /// settings by key (its own form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<std::collections::BTreeMap<String, String>>,
}

/// A workflow's version: its trigger, its conditions (groups in the client list's filter
/// language, `filter[status]=customer&filter[tag]=vip`; a client matching any group matches;
/// none: every record) and its steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = WorkflowDefinition)]
pub struct Definition {
    pub trigger: Trigger,
    #[serde(default)]
    pub conditions: Vec<String>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = workflows)]
pub struct WorkflowRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub enabled: bool,
    pub version: i32,
    pub trigger_type: String,
    pub hook_hash: Option<String>,
    pub last_assignee: Option<String>,
    pub scanned_until: Option<NaiveDateTime>,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = workflow_versions)]
pub struct VersionRow {
    pub id: String,
    pub organization_id: String,
    pub workflow_id: String,
    pub version: i32,
    pub definition: String,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
}

impl VersionRow {
    pub fn definition(&self) -> Definition {
        serde_json::from_str(&self.definition).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = workflow_runs)]
pub struct RunRow {
    pub id: String,
    pub organization_id: String,
    pub workflow_id: String,
    pub version_id: String,
    pub record_type: String,
    pub record_id: Option<String>,
    pub client_id: Option<String>,
    pub event: String,
    pub depth: i32,
    pub dedupe_key: Option<String>,
    pub status: String,
    pub step: i32,
    pub attempts: i32,
    pub next_at: Option<NaiveDateTime>,
    pub lease_until: Option<NaiveDateTime>,
    pub error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = workflow_steps, treat_none_as_default_value = false)]
pub struct StepRow {
    pub id: String,
    pub organization_id: String,
    pub run_id: String,
    pub position: i32,
    pub kind: String,
    pub status: String,
    pub outcome: String,
    pub attempts: i32,
    pub finished_at: NaiveDateTime,
}

fn t(v: Option<NaiveDateTime>) -> Value {
    json!(v.map(|t| t.and_utc().to_rfc3339()))
}

impl WorkflowRow {
    pub fn to_json(&self, def: &Definition) -> Value {
        json!({
            "id": self.id, "name": self.name, "enabled": self.enabled, "version": self.version,
            "trigger": def.trigger, "conditions": def.conditions, "steps": def.steps,
            "hasIncomingUrl": self.hook_hash.is_some(),
            "createdAt": self.created_at.and_utc().to_rfc3339(),
            "updatedAt": self.updated_at.and_utc().to_rfc3339(),
        })
    }
}

impl RunRow {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "workflowId": self.workflow_id, "recordType": self.record_type,
            "recordId": self.record_id, "clientId": self.client_id, "status": self.status,
            "step": self.step, "attempts": self.attempts, "depth": self.depth,
            "nextAt": t(self.next_at), "error": self.error,
            "event": serde_json::from_str::<Value>(&self.event).unwrap_or(Value::Null),
            "createdAt": self.created_at.and_utc().to_rfc3339(),
            "finishedAt": t(self.finished_at),
        })
    }
}

impl StepRow {
    pub fn to_json(&self) -> Value {
        json!({
            "position": self.position, "type": self.kind, "status": self.status,
            "outcome": self.outcome, "attempts": self.attempts,
            "finishedAt": self.finished_at.and_utc().to_rfc3339(),
        })
    }
}

// Loop protection

thread_local! {
    /// How many workflow links led to the change being made on this thread: 0 for a
    /// person's change, n+1 inside a step of a run at depth n.
    static DEPTH: Cell<i32> = const { Cell::new(0) };
}

/// The depth the runs a change on this thread starts get.
pub fn current_depth() -> i32 {
    DEPTH.with(Cell::get)
}

/// Runs `f` as a step of a run at `depth`: the runs its changes fire start one deeper.
/// A thread-local because the change reaches [`fire`] through the audit log, many calls
/// below; the step's work runs synchronously on this thread, inside one transaction.
pub fn within_run<T>(depth: i32, f: impl FnOnce() -> T) -> T {
    struct Reset(i32);
    impl Drop for Reset {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(self.0));
        }
    }
    let _reset = Reset(DEPTH.with(|d| d.replace(depth + 1)));
    f()
}

// Firing

/// The workflow events an audited change makes: the webhook event types, by the same map.
pub fn events_of(action: &str, changes: &Value) -> Vec<&'static str> {
    crate::domain::webhooks::event_of(action, changes)
        .into_iter()
        .filter(|e| TRIGGERS.iter().any(|(k, _)| k == e))
        .collect()
}

/// Starts the runs an audited change owes, in its transaction: one indexed read of the
/// organization's enabled workflows for the event, and a row per workflow it starts.
pub fn fire_audited(
    c: &mut DbConn,
    org: &str,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
    changes: &Value,
) -> QueryResult<()> {
    let events = events_of(action, changes);
    let Some(record) = resource_id else {
        return Ok(());
    };
    for event in events {
        fire(c, org, event, resource_type, record, None, changes)?;
    }
    Ok(())
}

/// Starts the runs `event` on a record owes (enabled workflows of the organization with
/// that trigger whose trigger options fit). `client` is the record's client when the
/// caller knows it.
pub fn fire(
    c: &mut DbConn,
    org: &str,
    event: &str,
    record_type: &str,
    record_id: &str,
    client: Option<&str>,
    changes: &Value,
) -> QueryResult<usize> {
    let flows: Vec<(WorkflowRow, VersionRow)> =
        crate::domain::memo::read(format!("workflows {org} {event}"), || {
            workflows::table
                .inner_join(
                    workflow_versions::table.on(workflow_versions::workflow_id
                        .eq(workflows::id)
                        .and(workflow_versions::version.eq(workflows::version))),
                )
                .filter(workflows::organization_id.eq(org))
                .filter(workflows::trigger_type.eq(event))
                .filter(workflows::enabled.eq(true))
                .filter(workflows::deleted_at.is_null())
                .select((WorkflowRow::as_select(), VersionRow::as_select()))
                .load(c)
        })?;
    if flows.is_empty() {
        return Ok(0);
    }
    let mut client = client.map(str::to_string);
    if client.is_none() {
        client = client_of(c, org, record_type, record_id)?;
    }
    let depth = DEPTH.with(Cell::get);
    let mut started = 0;
    for (flow, version) in flows {
        if !fits(&version.definition().trigger, changes) {
            continue;
        }
        let event = json!({"type": event, "changes": changes});
        insert_run(
            c,
            &flow,
            &version,
            record_type,
            Some(record_id),
            client.as_deref(),
            event,
            depth,
            None,
        )?;
        started += 1;
    }
    Ok(started)
}

/// Whether the trigger's options (a field, a stage, a kind) fit the change.
fn fits(trigger: &Trigger, changes: &Value) -> bool {
    if let Some(field) = trigger.field.as_deref().filter(|f| !f.is_empty()) {
        let key = field.strip_prefix("customFields.").unwrap_or(field);
        let changed = |m: &Value| m.as_object().is_some_and(|o| o.contains_key(key));
        if !(changed(changes) || changed(&changes["customFields"]) || changes.get(field).is_some())
        {
            return false;
        }
    }
    if let Some(stage) = trigger.stage.as_deref().filter(|s| !s.is_empty()) {
        let to = changes["stage"]
            .as_array()
            .and_then(|a| a.get(1))
            .and_then(Value::as_str);
        if to != Some(stage) {
            return false;
        }
    }
    if let Some(segment) = trigger.segment.as_deref().filter(|s| !s.is_empty()) {
        if changes["segment"]["id"].as_str() != Some(segment) {
            return false;
        }
    }
    if let Some(kind) = trigger.interaction.as_deref().filter(|s| !s.is_empty()) {
        if changes["type"].as_str() != Some(kind) {
            return false;
        }
    }
    if trigger.kind == "plugin"
        && (changes["plugin"].as_str() != trigger.plugin.as_deref()
            || changes["trigger"].as_str() != trigger.event.as_deref())
    {
        return false;
    }
    true
}

/// The names of the workflows a segment starts (its entry or exit is their trigger).
pub fn using_segment(c: &mut DbConn, org: &str, segment: &str) -> QueryResult<Vec<String>> {
    let flows: Vec<(WorkflowRow, VersionRow)> = workflows::table
        .inner_join(
            workflow_versions::table.on(workflow_versions::workflow_id
                .eq(workflows::id)
                .and(workflow_versions::version.eq(workflows::version))),
        )
        .filter(workflows::organization_id.eq(org))
        .filter(workflows::trigger_type.eq_any(["segment.entered", "segment.left"]))
        .filter(workflows::deleted_at.is_null())
        .select((WorkflowRow::as_select(), VersionRow::as_select()))
        .load(c)?;
    Ok(flows
        .into_iter()
        .filter(|(_, v)| v.definition().trigger.segment.as_deref() == Some(segment))
        .map(|(w, _)| w.name)
        .collect())
}

/// The client a record belongs to.
pub fn client_of(
    c: &mut DbConn,
    org: &str,
    record_type: &str,
    id: &str,
) -> QueryResult<Option<String>> {
    use crate::db::schema::{contracts, interactions};
    match record_type {
        "client" => Ok(Some(id.to_string())),
        "opportunity" => opportunities::table
            .filter(opportunities::organization_id.eq(org))
            .filter(opportunities::id.eq(id))
            .select(opportunities::client_id)
            .first(c)
            .optional(),
        "interaction" => interactions::table
            .filter(interactions::organization_id.eq(org))
            .filter(interactions::id.eq(id))
            .select(interactions::client_id)
            .first(c)
            .optional(),
        "contract" => contracts::table
            .filter(contracts::organization_id.eq(org))
            .filter(contracts::id.eq(id))
            .select(contracts::client_id)
            .first(c)
            .optional(),
        _ => Ok(None),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn insert_run(
    c: &mut DbConn,
    flow: &WorkflowRow,
    version: &VersionRow,
    record_type: &str,
    record_id: Option<&str>,
    client: Option<&str>,
    event: Value,
    depth: i32,
    dedupe_key: Option<String>,
) -> QueryResult<Option<RunRow>> {
    let at = now();
    let looping = depth > MAX_DEPTH;
    let row = RunRow {
        id: new_id(),
        organization_id: flow.organization_id.clone(),
        workflow_id: flow.id.clone(),
        version_id: version.id.clone(),
        record_type: record_type.to_string(),
        record_id: record_id.map(str::to_string),
        client_id: client.map(str::to_string),
        event: event.to_string(),
        depth,
        dedupe_key,
        status: if looping { "stopped" } else { "pending" }.into(),
        step: 0,
        attempts: 0,
        next_at: (!looping).then_some(at),
        lease_until: None,
        error: looping.then(|| {
            format!(
                "Not run: the change that triggered it came from a chain of {depth} workflow steps (at most {MAX_DEPTH})."
            )
        }),
        created_at: at,
        updated_at: at,
        finished_at: looping.then_some(at),
    };
    if let Some(k) = &row.dedupe_key {
        // why: Diesel's ON CONFLICT is not offered across both backends; the unique index on
        // (workflow_id, dedupe_key) still refuses a second scanner's duplicate.
        let exists: i64 = workflow_runs::table
            .filter(workflow_runs::workflow_id.eq(&row.workflow_id))
            .filter(workflow_runs::dedupe_key.eq(k))
            .count()
            .get_result(c)?;
        if exists > 0 {
            return Ok(None);
        }
    }
    diesel::insert_into(workflow_runs::table)
        .values(&row)
        .execute(c)?;
    Ok(Some(row))
}

// Saving

/// A workflow as it is written: its name, whether it runs, and its definition.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub definition: Option<Definition>,
}

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Checks a definition against the organization's data: a field error per problem, named
/// the API's way (`steps[2].title`) with a message that says which step.
pub fn validate(c: &mut DbConn, org: &str, def: &Definition) -> AppResult<Vec<FieldError>> {
    let mut errors = Vec::new();
    let tr = &def.trigger;
    if !TRIGGERS.iter().any(|(k, _)| *k == tr.kind) {
        errors.push(FieldError::new(
            "trigger.type",
            "Choose what starts the workflow.",
        ));
    }
    match tr.kind.as_str() {
        "deal.stage_changed" => match opt(&tr.stage) {
            Some(s) if crate::domain::pipeline::store::find_stage(c, org, s)?.is_none() => errors
                .push(FieldError::new(
                    "trigger.stage",
                    "Choose one of your pipelines' stages.",
                )),
            _ => {}
        },
        "segment.entered" | "segment.left" => match opt(&tr.segment) {
            Some(s) if crate::domain::segments::find(c, org, s)?.is_some() => {}
            _ => errors.push(FieldError::new(
                "trigger.segment",
                "Choose one of your segments.",
            )),
        },
        "plugin" => {
            let known = match (opt(&tr.plugin), opt(&tr.event)) {
                (Some(p), Some(e)) => crate::plugins::actions::has_trigger(c, org, p, e)?,
                _ => false,
            };
            if !known {
                errors.push(FieldError::new(
                    "trigger.event",
                    "Choose an event of an installed, enabled plugin.",
                ));
            }
        }
        "date" => {
            if !DATE_FIELDS.iter().any(|(k, _)| Some(*k) == opt(&tr.date)) {
                errors.push(FieldError::new(
                    "trigger.date",
                    "Choose which date to follow.",
                ));
            }
            if tr.offset_days.is_some_and(|d| d.abs() > 3_650) {
                errors.push(FieldError::new(
                    "trigger.offsetDays",
                    "Use at most 3,650 days before or after.",
                ));
            }
        }
        "schedule" => {
            if !matches!(opt(&tr.every), Some("hour" | "day" | "week")) {
                errors.push(FieldError::new(
                    "trigger.every",
                    "Choose hourly, daily or weekly.",
                ));
            }
            if opt(&tr.at).is_some_and(|a| chrono::NaiveTime::parse_from_str(a, "%H:%M").is_err()) {
                errors.push(FieldError::new(
                    "trigger.at",
                    "Give the time as HH:MM (UTC).",
                ));
            }
            if tr.weekday.is_some_and(|d| !(1..=7).contains(&d)) {
                errors.push(FieldError::new(
                    "trigger.weekday",
                    "Choose a day from Monday (1) to Sunday (7).",
                ));
            }
        }
        _ => {}
    }
    if def.conditions.len() > MAX_GROUPS {
        errors.push(FieldError::new(
            "conditions",
            format!("Use at most {MAX_GROUPS} groups of conditions."),
        ));
    }
    let made: Vec<String> = def
        .steps
        .iter()
        .filter(|s| s.kind == "tag")
        .filter_map(|s| s.tag.as_deref().map(|t| t.trim().to_lowercase()))
        .collect();
    let made_here = |t: &str| made.contains(&t.trim().to_lowercase());
    for (i, group) in def.conditions.iter().enumerate() {
        match condition_params(c, org, group) {
            Err(e) if only_missing_tags(&e, &made_here) => continue,
            Ok(_) => continue,
            Err(_) => {}
        }
        if let Err(e) = condition_params(c, org, group) {
            for fe in e.field_errors() {
                errors.push(FieldError::new(
                    format!("conditions[{i}]"),
                    format!("Condition group {}: {}", i + 1, fe.message),
                ));
            }
            if e.field_errors().is_empty() {
                errors.push(FieldError::new(format!("conditions[{i}]"), e.to_string()));
            }
        }
    }
    if def.steps.is_empty() {
        errors.push(FieldError::new("steps", "Add at least one step."));
    }
    if def.steps.len() > MAX_STEPS {
        errors.push(FieldError::new(
            "steps",
            format!("Use at most {MAX_STEPS} steps."),
        ));
    }
    for (i, s) in def.steps.iter().enumerate() {
        let n = i + 1;
        let mut err = |field: &str, msg: &str| {
            errors.push(FieldError::new(
                format!("steps[{i}].{field}"),
                format!("Step {n}: {msg}"),
            ))
        };
        let text_max =
            |v: &Option<String>, max: usize| v.as_ref().is_some_and(|t| t.chars().count() > max);
        match s.kind.as_str() {
            "task" | "meeting" => {
                if opt(&s.title).is_none() {
                    err("title", "Give it a title.");
                }
                if text_max(&s.title, 200) {
                    err("title", "Use at most 200 characters.");
                }
                if s.in_days.is_some_and(|d| !(0..=365).contains(&d)) {
                    err("inDays", "Use 0 to 365 days.");
                }
                check_user(c, org, opt(&s.assignee), &mut err)?;
            }
            "note" => {
                if opt(&s.body).is_none() {
                    err("body", "Write the note.");
                }
                if text_max(&s.body, 10_000) || text_max(&s.title, 200) {
                    err("body", "The note is too long.");
                }
            }
            "update" => match opt(&s.field) {
                None => err("field", "Choose the field to change."),
                Some(f) if !UPDATABLE.contains(&f) && !f.starts_with("customFields.") => err(
                    "field",
                    "Choose status, source, industry or one of your custom fields.",
                ),
                Some(f) if f.starts_with("customFields.") => {
                    let key = &f["customFields.".len()..];
                    let known = crate::domain::custom_fields::store::list(c, org, "client", false)?
                        .iter()
                        .any(|d| d.field_key == key);
                    if !known {
                        err("field", "There is no such custom field.");
                    }
                }
                _ => {}
            },
            "tag" | "untag" => {
                if opt(&s.tag).is_none() {
                    err("tag", "Name the tag.");
                }
                if text_max(&s.tag, 50) {
                    err("tag", "Use at most 50 characters.");
                }
            }
            "assign" => match opt(&s.mode).unwrap_or("fixed") {
                "fixed" => {
                    if opt(&s.user).is_none() {
                        err("user", "Choose who becomes the owner.");
                    }
                    check_user(c, org, opt(&s.user), &mut err)?;
                }
                "round_robin" | "least_loaded" => {
                    if let Some(r) = opt(&s.role) {
                        if crate::domain::orgs::Role::parse(r).is_none() {
                            err("role", "Choose one of the roles.");
                        }
                    }
                }
                _ => err(
                    "mode",
                    "Choose a fixed person, round robin or the least loaded.",
                ),
            },
            "move" => match opt(&s.stage) {
                None => err("stage", "Choose the stage."),
                Some(st) => {
                    if crate::domain::pipeline::store::find_stage(c, org, st)?.is_none() {
                        err("stage", "Choose one of your pipelines' stages.");
                    }
                }
            },
            "email" => {
                match opt(&s.template) {
                    None => err("template", "Choose the template."),
                    Some(t) => match crate::domain::templates::get(c, org, t) {
                        Ok(t) if t.kind != "email" => err(
                            "template",
                            "Choose an e-mail template, not a short message.",
                        ),
                        Ok(_) => {}
                        Err(_) => err("template", "There is no such template."),
                    },
                }
                match opt(&s.mailbox) {
                    None => err("mailbox", "Choose the shared mailbox it is sent from."),
                    Some(m) => {
                        if crate::domain::mail::mailbox(c, org, None, m).is_err() {
                            err(
                                "mailbox",
                                "Choose one of the organization's shared mailboxes.",
                            );
                        }
                    }
                }
            }
            "plugin" => {
                let empty = Default::default();
                for (field, msg) in crate::plugins::actions::check_action(
                    c,
                    org,
                    opt(&s.plugin).unwrap_or_default(),
                    opt(&s.action).unwrap_or_default(),
                    s.settings.as_ref().unwrap_or(&empty),
                )? {
                    err(&field, &msg);
                }
            }
            "webhook" => match opt(&s.url) {
                None => err("url", "Give the web address to call."),
                Some(u) => {
                    if let Err(e) =
                        crate::domain::webhooks::resolve(u, s.allow_private_host.unwrap_or(false))
                    {
                        err("url", &e);
                    }
                }
            },
            "wait" => match s.minutes {
                Some(m) if (1..=525_600).contains(&m) => {}
                _ => err("minutes", "Wait from 1 minute to 365 days."),
            },
            "branch" => {
                match opt(&s.condition) {
                    None => err("condition", "Give the condition."),
                    Some(q) => {
                        let checked = condition_params(c, org, q);
                        if let Err(e) = checked.as_ref().map(drop).or_else(|e| {
                            if only_missing_tags(e, &made_here) {
                                Ok(())
                            } else {
                                Err(e)
                            }
                        }) {
                            let msg = e
                                .field_errors()
                                .first()
                                .map(|f| f.message.clone())
                                .unwrap_or_else(|| e.to_string());
                            err("condition", &msg);
                        }
                    }
                }
                if let Some(k) = s.else_skip {
                    if k < 1 || i + k as usize >= def.steps.len() {
                        err(
                            "elseSkip",
                            "Skip at least one step, and no further than the last.",
                        );
                    }
                }
            }
            _ => err("type", "Choose what the step does."),
        }
    }
    Ok(errors)
}

/// Client fields an update step may change.
pub const UPDATABLE: &[&str] = &["status", "source", "industry"];

fn check_user(
    c: &mut DbConn,
    org: &str,
    user: Option<&str>,
    err: &mut impl FnMut(&str, &str),
) -> AppResult<()> {
    if let Some(u) = user.filter(|u| !matches!(*u, "owner" | "manager")) {
        let member = crate::domain::orgs::store::find_member(c, org, u)?;
        if !member.is_some_and(|m| m.membership.is_active) {
            err("assignee", "Choose an active member of the organization.");
        }
    }
    Ok(())
}

/// A condition group parsed as the client list parses its query string.
pub fn condition_params(
    c: &mut DbConn,
    org: &str,
    group: &str,
) -> AppResult<crate::domain::clients::query::ListParams> {
    if group.len() > MAX_CONDITION {
        return Err(AppError::invalid(
            "conditions",
            "The condition is too long.",
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(group.trim_start_matches('?'))
        .map_err(|_| {
            AppError::invalid("conditions", "Write conditions as filter[field]=value&…")
        })?;
    if let Some((k, _)) = pairs.iter().find(|(k, _)| !k.starts_with("filter[")) {
        return Err(AppError::invalid(
            "conditions",
            &format!("Only filters may be used in conditions, not {k:?}."),
        ));
    }
    let defs = crate::domain::custom_fields::store::list(c, org, "client", false)?;
    crate::domain::clients::query::parse_params(c, org, &defs, &pairs)
}

/// Whether every error of a condition is a tag that does not exist (yet): a workflow may
/// test for a tag one of its own steps creates, and nobody wears a tag that does not exist.
fn only_missing_tags(e: &AppError, allowed: &dyn Fn(&str) -> bool) -> bool {
    let errs = e.field_errors();
    !errs.is_empty()
        && errs.iter().all(|f| {
            f.message
                .strip_prefix("There is no tag \"")
                .and_then(|r| r.strip_suffix("\"."))
                .is_some_and(allowed)
        })
}

/// Whether the client matches any of the groups (no groups: it does).
pub fn matches(c: &mut DbConn, org: &str, client: &str, groups: &[String]) -> AppResult<bool> {
    if groups.iter().all(|g| g.trim().is_empty()) {
        return Ok(true);
    }
    for g in groups.iter().filter(|g| !g.trim().is_empty()) {
        let mut p = match condition_params(c, org, g) {
            Ok(p) => p,
            Err(e) if only_missing_tags(&e, &|_| true) => continue,
            Err(e) => return Err(e),
        };
        p.only_ids = Some(vec![client.to_string()]);
        if crate::domain::clients::query::count_capped(c, org, &p)? == Some(1) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn invalid(errors: Vec<FieldError>) -> AppError {
    AppError::Validation("The workflow could not be saved.".into(), errors)
}

fn clean_name(name: Option<&str>, errors: &mut Vec<FieldError>) -> String {
    let n = name.unwrap_or_default().trim().to_string();
    if n.is_empty() {
        errors.push(FieldError::new("name", "Give the workflow a name."));
    } else if n.chars().count() > 120 {
        errors.push(FieldError::new("name", "Use at most 120 characters."));
    }
    n
}

fn new_version(
    c: &mut DbConn,
    ctx: &AuditContext,
    flow: &WorkflowRow,
    def: &Definition,
) -> QueryResult<()> {
    diesel::insert_into(workflow_versions::table)
        .values(&VersionRow {
            id: new_id(),
            organization_id: flow.organization_id.clone(),
            workflow_id: flow.id.clone(),
            version: flow.version,
            definition: serde_json::to_string(def).unwrap_or_default(),
            created_by: ctx.actor_user_id.clone(),
            created_at: now(),
        })
        .execute(c)
        .map(drop)
}

/// Creates a workflow (version 1). Answers it with the secret of its incoming URL when its
/// trigger is an incoming call (shown this once).
pub fn create(
    c: &mut DbConn,
    ctx: &AuditContext,
    input: Input,
) -> AppResult<(WorkflowRow, Option<String>)> {
    crate::db::transaction(c, |c| {
        let mut errors = Vec::new();
        let name = clean_name(input.name.as_deref(), &mut errors);
        let Some(def) = input.definition else {
            errors.push(FieldError::new(
                "trigger",
                "Choose what starts the workflow.",
            ));
            return Err(invalid(errors));
        };
        errors.extend(validate(c, &ctx.org_id, &def)?);
        let count: i64 = workflows::table
            .filter(workflows::organization_id.eq(&ctx.org_id))
            .filter(workflows::deleted_at.is_null())
            .count()
            .get_result(c)?;
        if count >= MAX_WORKFLOWS {
            errors.push(FieldError::new(
                "name",
                format!("An organization has at most {MAX_WORKFLOWS} workflows."),
            ));
        }
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        let at = now();
        let (secret, hash) = hook_secret(&def);
        let row = WorkflowRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            name,
            enabled: input.enabled.unwrap_or(true),
            version: 1,
            trigger_type: def.trigger.kind.clone(),
            hook_hash: hash,
            last_assignee: None,
            scanned_until: Some(at),
            created_by: ctx.actor_user_id.clone(),
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        diesel::insert_into(workflows::table)
            .values(&row)
            .execute(c)?;
        new_version(c, ctx, &row, &def)?;
        audit::record(
            c,
            ctx,
            "workflow.create",
            "workflow",
            Some(&row.id),
            json!({"name": row.name, "trigger": row.trigger_type}),
        )?;
        Ok((row, secret))
    })
}

fn hook_secret(def: &Definition) -> (Option<String>, Option<String>) {
    if def.trigger.kind != "webhook" {
        return (None, None);
    }
    let secret = format!(
        "wfh_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let hash = hash_secret(&secret);
    (Some(secret), Some(hash))
}

pub fn hash_secret(secret: &str) -> String {
    let digest = openssl::sha::sha256(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn list(c: &mut DbConn, org: &str) -> AppResult<Vec<(WorkflowRow, Definition)>> {
    let rows: Vec<(WorkflowRow, VersionRow)> = workflows::table
        .inner_join(
            workflow_versions::table.on(workflow_versions::workflow_id
                .eq(workflows::id)
                .and(workflow_versions::version.eq(workflows::version))),
        )
        .filter(workflows::organization_id.eq(org))
        .filter(workflows::deleted_at.is_null())
        .order(workflows::name.asc())
        .select((WorkflowRow::as_select(), VersionRow::as_select()))
        .load(c)?;
    Ok(rows.into_iter().map(|(w, v)| (w, v.definition())).collect())
}

pub fn get(c: &mut DbConn, org: &str, id: &str) -> AppResult<(WorkflowRow, Definition)> {
    let (w, v): (WorkflowRow, VersionRow) = workflows::table
        .inner_join(
            workflow_versions::table.on(workflow_versions::workflow_id
                .eq(workflows::id)
                .and(workflow_versions::version.eq(workflows::version))),
        )
        .filter(workflows::organization_id.eq(org))
        .filter(workflows::id.eq(id))
        .filter(workflows::deleted_at.is_null())
        .select((WorkflowRow::as_select(), VersionRow::as_select()))
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)?;
    Ok((w, v.definition()))
}

pub fn versions(c: &mut DbConn, org: &str, id: &str) -> AppResult<Vec<VersionRow>> {
    get(c, org, id)?;
    Ok(workflow_versions::table
        .filter(workflow_versions::workflow_id.eq(id))
        .order(workflow_versions::version.desc())
        .limit(100)
        .select(VersionRow::as_select())
        .load(c)?)
}

/// Changes a workflow. A new definition makes a new version (runs already started keep
/// theirs); the name and the switch change in place. Answers a new incoming-URL secret when
/// the trigger became an incoming call.
pub fn update(
    c: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    input: Input,
) -> AppResult<(WorkflowRow, Option<String>)> {
    crate::db::transaction(c, |c| {
        crate::db::lock_row(c, "workflows", id)?;
        let (mut row, current) = get(c, &ctx.org_id, id)?;
        let mut errors = Vec::new();
        if input.name.is_some() {
            row.name = clean_name(input.name.as_deref(), &mut errors);
        }
        let mut secret = None;
        let mut changes = json!({});
        if let Some(def) = &input.definition {
            errors.extend(validate(c, &ctx.org_id, def)?);
            if errors.is_empty() && *def != current {
                row.version += 1;
                if def.trigger.kind != row.trigger_type {
                    row.scanned_until = Some(now());
                }
                row.trigger_type = def.trigger.kind.clone();
                if def.trigger.kind == "webhook" && row.hook_hash.is_none() {
                    let (s, h) = hook_secret(def);
                    secret = s;
                    row.hook_hash = h;
                } else if def.trigger.kind != "webhook" {
                    row.hook_hash = None;
                }
                new_version(c, ctx, &row, def)?;
                changes["version"] = json!(row.version);
            }
        }
        if !errors.is_empty() {
            return Err(invalid(errors));
        }
        if let Some(e) = input.enabled {
            if e != row.enabled {
                changes["enabled"] = json!(e);
                if e {
                    // why: a date or schedule trigger switched back on starts from now, not
                    // with every date that passed while it was off.
                    row.scanned_until = Some(now());
                }
            }
            row.enabled = e;
        }
        row.updated_at = now();
        diesel::update(workflows::table.find(&row.id))
            .set((
                workflows::name.eq(&row.name),
                workflows::enabled.eq(row.enabled),
                workflows::version.eq(row.version),
                workflows::trigger_type.eq(&row.trigger_type),
                workflows::hook_hash.eq(&row.hook_hash),
                workflows::scanned_until.eq(row.scanned_until),
                workflows::updated_at.eq(row.updated_at),
            ))
            .execute(c)?;
        changes["name"] = json!(row.name);
        audit::record(
            c,
            ctx,
            "workflow.update",
            "workflow",
            Some(&row.id),
            changes,
        )?;
        Ok((row, secret))
    })
}

/// A new secret for the workflow's incoming URL; the old one stops working at once.
pub fn rotate_hook(c: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<String> {
    crate::db::transaction(c, |c| {
        let (row, def) = get(c, &ctx.org_id, id)?;
        if def.trigger.kind != "webhook" {
            return Err(AppError::invalid(
                "trigger",
                "Only a workflow started by an incoming call has a web address.",
            ));
        }
        let (secret, hash) = hook_secret(&def);
        diesel::update(workflows::table.find(&row.id))
            .set(workflows::hook_hash.eq(hash))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "workflow.rotate_url",
            "workflow",
            Some(&row.id),
            json!({}),
        )?;
        Ok(secret.unwrap_or_default())
    })
}

pub fn delete(c: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<()> {
    crate::db::transaction(c, |c| {
        let (row, _) = get(c, &ctx.org_id, id)?;
        diesel::update(workflows::table.find(&row.id))
            .set((
                workflows::deleted_at.eq(Some(now())),
                workflows::enabled.eq(false),
                workflows::hook_hash.eq(None::<String>),
            ))
            .execute(c)?;
        // Runs not yet finished end here: their workflow is gone.
        diesel::update(
            workflow_runs::table
                .filter(workflow_runs::workflow_id.eq(&row.id))
                .filter(workflow_runs::status.eq_any(["pending", "waiting", "running"])),
        )
        .set((
            workflow_runs::status.eq("failed"),
            workflow_runs::error.eq(Some("The workflow was deleted.")),
            workflow_runs::finished_at.eq(Some(now())),
        ))
        .execute(c)?;
        audit::record(
            c,
            ctx,
            "workflow.delete",
            "workflow",
            Some(&row.id),
            json!({"name": row.name}),
        )?;
        Ok(())
    })
}

/// Runs of a workflow (or of every workflow on a record), newest first.
pub fn runs(
    c: &mut DbConn,
    org: &str,
    workflow: Option<&str>,
    record: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> AppResult<Vec<RunRow>> {
    let mut q = workflow_runs::table
        .filter(workflow_runs::organization_id.eq(org))
        .select(RunRow::as_select())
        .into_boxed();
    if let Some(w) = workflow {
        q = q.filter(workflow_runs::workflow_id.eq(w.to_string()));
    }
    if let Some(r) = record {
        q = q.filter(workflow_runs::record_id.eq(r.to_string()));
    }
    if let Some(b) = before {
        q = q.filter(workflow_runs::id.lt(b.to_string()));
    }
    Ok(q.order(workflow_runs::id.desc()).limit(limit).load(c)?)
}

pub fn run_detail(c: &mut DbConn, org: &str, id: &str) -> AppResult<(RunRow, Vec<StepRow>)> {
    let run: RunRow = workflow_runs::table
        .filter(workflow_runs::organization_id.eq(org))
        .filter(workflow_runs::id.eq(id))
        .select(RunRow::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)?;
    let steps = workflow_steps::table
        .filter(workflow_steps::run_id.eq(&run.id))
        .order(workflow_steps::position.asc())
        .select(StepRow::as_select())
        .load(c)?;
    Ok((run, steps))
}

pub fn version_of(c: &mut DbConn, id: &str) -> QueryResult<VersionRow> {
    workflow_versions::table
        .find(id)
        .select(VersionRow::as_select())
        .first(c)
}

/// Failures and the last run of each of the organization's workflows, for the list.
pub fn summaries(
    c: &mut DbConn,
    org: &str,
) -> AppResult<std::collections::HashMap<String, (Option<RunRow>, i64)>> {
    let mut out = std::collections::HashMap::new();
    let since = now() - Duration::days(7);
    for (w, _) in list(c, org)? {
        let last = runs(c, org, Some(&w.id), None, None, 1)?.pop();
        let failed: i64 = workflow_runs::table
            .filter(workflow_runs::workflow_id.eq(&w.id))
            .filter(workflow_runs::status.eq("failed"))
            .filter(workflow_runs::created_at.gt(since))
            .count()
            .get_result(c)?;
        out.insert(w.id, (last, failed));
    }
    Ok(out)
}

/// The workflow an incoming call's secret belongs to.
pub fn by_hook(c: &mut DbConn, secret: &str) -> AppResult<(WorkflowRow, VersionRow)> {
    workflows::table
        .inner_join(
            workflow_versions::table.on(workflow_versions::workflow_id
                .eq(workflows::id)
                .and(workflow_versions::version.eq(workflows::version))),
        )
        .filter(workflows::hook_hash.eq(hash_secret(secret)))
        .filter(workflows::deleted_at.is_null())
        .select((WorkflowRow::as_select(), VersionRow::as_select()))
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)
}
