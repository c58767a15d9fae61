//! Rules for pipelines and opportunities: default pipeline, stage edits and retirement,
//! validation of deals, stage moves with history, won/lost rules, record-level access
//! (as for clients, with `opportunity:oversee`), optimistic concurrency and audit.
//!
//! Why this file is long: a stage move, a won/lost close, a retirement and a deal update
//! all go through the same validation, history and roll-up; quotes, contracts and the
//! forecast figures are their own modules beside it.

use chrono::NaiveDate;
use serde_json::{json, Map, Value};

use super::model::*;
use super::store;
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::service::Access;
use crate::domain::custom_fields::service::{apply_values, Mode};
use crate::domain::custom_fields::{self, FieldRow};
use crate::domain::money::{parse_cents, valid_currency};
use crate::domain::{clients, orgs};
use crate::error::{AppError, AppResult, FieldError};

/// Makes sure the organization has a pipeline and loss reasons; new orgs get the defaults.
pub fn ensure_defaults(conn: &mut DbConn, org_id: &str) -> AppResult<()> {
    if !store::list_pipelines(conn, org_id)?.is_empty() {
        return Ok(());
    }
    crate::db::transaction(conn, |c| {
        create_pipeline(
            c,
            &AuditContext::cli(org_id),
            "New business",
            // why: a deal untouched for a month is worth a look; the dashboard and the
            // board flag it. Admins change or clear it on the Pipelines page.
            Some(30),
            DEFAULT_STAGES,
        )?;
        if store::loss_reasons(c, org_id, false)?.is_empty() {
            for name in DEFAULT_LOSS_REASONS {
                store::insert_loss_reason(
                    c,
                    &LossReasonRow {
                        id: new_id(),
                        organization_id: org_id.into(),
                        name: (*name).into(),
                        is_active: true,
                        created_at: now(),
                    },
                )?;
            }
        }
        Ok(())
    })
}

#[derive(Debug, Clone)]
pub struct PipelineView {
    pub pipeline: PipelineRow,
    pub stages: Vec<StageRow>,
}

pub fn pipelines(conn: &mut DbConn, org_id: &str) -> AppResult<Vec<PipelineView>> {
    ensure_defaults(conn, org_id)?;
    let stages = store::stages_of_org(conn, org_id)?;
    Ok(store::list_pipelines(conn, org_id)?
        .into_iter()
        .map(|p| PipelineView {
            stages: stages
                .iter()
                .filter(|s| s.pipeline_id == p.id)
                .cloned()
                .collect(),
            pipeline: p,
        })
        .collect())
}

fn check_stage(
    name: &str,
    probability: i32,
    kind: &str,
    color: &str,
    errors: &mut Vec<FieldError>,
    prefix: &str,
) {
    if name.trim().is_empty() || name.chars().count() > 60 {
        errors.push(FieldError::new(
            format!("{prefix}name"),
            "Name the stage (1 to 60 characters).",
        ));
    }
    if !(0..=100).contains(&probability) {
        errors.push(FieldError::new(
            format!("{prefix}probability"),
            "Use a probability from 0 to 100.",
        ));
    }
    if !STAGE_KINDS.contains(&kind) {
        errors.push(FieldError::new(
            format!("{prefix}kind"),
            "Use open, won or lost.",
        ));
    }
    if !STAGE_COLORS.contains(&color) {
        errors.push(FieldError::new(
            format!("{prefix}color"),
            format!("Choose a colour: {}.", STAGE_COLORS.join(", ")),
        ));
    }
}

/// Creates a pipeline; it must have at least one open stage, one won and one lost.
pub fn create_pipeline(
    conn: &mut DbConn,
    ctx: &AuditContext,
    name: &str,
    rotting_days: Option<i32>,
    stages: &[(&str, i32, &str, &str)],
) -> AppResult<PipelineView> {
    let mut errors = Vec::new();
    if name.trim().is_empty() || name.chars().count() > 80 {
        errors.push(FieldError::new(
            "name",
            "Name the pipeline (1 to 80 characters).",
        ));
    }
    if rotting_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        errors.push(FieldError::new(
            "rottingDays",
            "Use 1 to 3650 days, or leave it empty.",
        ));
    }
    for (i, (n, p, k, c)) in stages.iter().enumerate() {
        check_stage(n, *p, k, c, &mut errors, &format!("stages[{i}]."));
    }
    for kind in STAGE_KINDS {
        if !stages.iter().any(|s| s.2 == *kind) {
            errors.push(FieldError::new(
                "stages",
                format!("A pipeline needs at least one {kind} stage."),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(
            "The pipeline could not be saved.".into(),
            errors,
        ));
    }
    crate::db::transaction(conn, |c| {
        let at = now();
        let position = i32::try_from(store::list_pipelines(c, &ctx.org_id)?.len()).unwrap_or(0);
        let pipeline = PipelineRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            name: name.trim().into(),
            position,
            rotting_days,
            archived_at: None,
            created_at: at,
            updated_at: at,
        };
        store::insert_pipeline(c, &pipeline)?;
        let mut rows = Vec::new();
        for (i, (n, p, k, color)) in stages.iter().enumerate() {
            let stage = StageRow {
                id: new_id(),
                organization_id: ctx.org_id.clone(),
                pipeline_id: pipeline.id.clone(),
                name: n.trim().into(),
                position: i32::try_from(i).unwrap_or(0),
                probability: *p,
                kind: (*k).into(),
                is_active: true,
                color: (*color).into(),
                created_at: at,
                updated_at: at,
            };
            store::insert_stage(c, &stage)?;
            rows.push(stage);
        }
        audit::record(
            c,
            ctx,
            "pipeline.create",
            "pipeline",
            Some(&pipeline.id),
            json!({"name": pipeline.name}),
        )?;
        Ok(PipelineView {
            pipeline,
            stages: rows,
        })
    })
}

pub fn update_pipeline(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    name: Option<&str>,
    rotting_days: Option<Option<i32>>,
) -> AppResult<PipelineRow> {
    crate::db::transaction(conn, |c| {
        let mut p = store::find_pipeline(c, &ctx.org_id, id)?.ok_or(AppError::NotFound)?;
        let before = p.clone();
        if let Some(n) = name {
            if n.trim().is_empty() || n.chars().count() > 80 {
                return Err(AppError::invalid(
                    "name",
                    "Name the pipeline (1 to 80 characters).",
                ));
            }
            p.name = n.trim().into();
        }
        if let Some(r) = rotting_days {
            if r.is_some_and(|d| !(1..=3650).contains(&d)) {
                return Err(AppError::invalid(
                    "rottingDays",
                    "Use 1 to 3650 days, or leave it empty.",
                ));
            }
            p.rotting_days = r;
        }
        p.updated_at = now();
        store::update_pipeline(c, &p)?;
        audit::record(
            c,
            ctx,
            "pipeline.update",
            "pipeline",
            Some(id),
            json!({"name": [before.name, p.name], "rottingDays": [before.rotting_days, p.rotting_days]}),
        )?;
        Ok(p)
    })
}

/// Adds a stage before the closing (won/lost) stages unless a position is given.
pub fn add_stage(
    conn: &mut DbConn,
    ctx: &AuditContext,
    pipeline_id: &str,
    name: &str,
    probability: i32,
    color: &str,
) -> AppResult<StageRow> {
    let mut errors = Vec::new();
    check_stage(name, probability, "open", color, &mut errors, "");
    if !errors.is_empty() {
        return Err(AppError::Validation(
            "The stage could not be saved.".into(),
            errors,
        ));
    }
    crate::db::transaction(conn, |c| {
        store::find_pipeline(c, &ctx.org_id, pipeline_id)?.ok_or(AppError::NotFound)?;
        let mut stages = store::stages_of(c, pipeline_id)?;
        let insert_at = stages
            .iter()
            .position(|s| s.kind != "open")
            .unwrap_or(stages.len());
        let at = now();
        let stage = StageRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            pipeline_id: pipeline_id.into(),
            name: name.trim().into(),
            position: 0,
            probability,
            kind: "open".into(),
            is_active: true,
            color: color.into(),
            created_at: at,
            updated_at: at,
        };
        store::insert_stage(c, &stage)?;
        stages.insert(insert_at, stage.clone());
        for (i, s) in stages.iter_mut().enumerate() {
            s.position = i32::try_from(i).unwrap_or(0);
            s.updated_at = at;
            store::update_stage(c, s)?;
        }
        audit::record(
            c,
            ctx,
            "stage.create",
            "pipeline",
            Some(pipeline_id),
            json!({"stage": stage.name, "probability": probability}),
        )?;
        Ok(stages
            .into_iter()
            .find(|s| s.id == stage.id)
            .unwrap_or(stage))
    })
}

/// Renames, recolours, re-weights or moves a stage (`position` is the new index).
pub fn update_stage(
    conn: &mut DbConn,
    ctx: &AuditContext,
    stage_id: &str,
    name: Option<&str>,
    probability: Option<i32>,
    color: Option<&str>,
    position: Option<usize>,
) -> AppResult<StageRow> {
    crate::db::transaction(conn, |c| {
        let current = store::find_stage(c, &ctx.org_id, stage_id)?.ok_or(AppError::NotFound)?;
        let mut s = current.clone();
        if let Some(n) = name {
            s.name = n.trim().into();
        }
        if let Some(p) = probability {
            s.probability = p;
        }
        if let Some(col) = color {
            s.color = col.into();
        }
        let mut errors = Vec::new();
        check_stage(&s.name, s.probability, &s.kind, &s.color, &mut errors, "");
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The stage could not be saved.".into(),
                errors,
            ));
        }
        s.updated_at = now();
        store::update_stage(c, &s)?;
        if let Some(pos) = position {
            let mut stages = store::stages_of(c, &s.pipeline_id)?;
            let from = stages.iter().position(|x| x.id == s.id).unwrap_or(0);
            let moved = stages.remove(from);
            stages.insert(pos.min(stages.len()), moved);
            for (i, x) in stages.iter_mut().enumerate() {
                x.position = i32::try_from(i).unwrap_or(0);
                store::update_stage(c, x)?;
            }
        }
        audit::record(
            c,
            ctx,
            "stage.update",
            "pipeline",
            Some(&s.pipeline_id),
            json!({"stage": s.id, "name": [current.name, s.name], "probability": [current.probability, s.probability], "color": [current.color, s.color]}),
        )?;
        store::find_stage(c, &ctx.org_id, stage_id)?.ok_or(AppError::NotFound)
    })
}

/// Retires a stage. Deals in it must go somewhere: `move_to` names an active stage of the
/// same pipeline, or the call is refused with the number of deals waiting.
pub fn retire_stage(
    conn: &mut DbConn,
    ctx: &AuditContext,
    stage_id: &str,
    move_to: Option<&str>,
) -> AppResult<usize> {
    crate::db::transaction(conn, |c| {
        let stage = store::find_stage(c, &ctx.org_id, stage_id)?.ok_or(AppError::NotFound)?;
        let stages = store::stages_of(c, &stage.pipeline_id)?;
        let remaining_of_kind = stages
            .iter()
            .filter(|s| s.is_active && s.kind == stage.kind && s.id != stage.id)
            .count();
        if remaining_of_kind == 0 {
            return Err(AppError::Conflict(format!(
                "A pipeline keeps at least one active {} stage.",
                stage.kind
            )));
        }
        let waiting = store::count_in_stage(c, stage_id)?;
        let mut moved = 0;
        if waiting > 0 {
            let Some(target_id) = move_to else {
                return Err(AppError::invalid(
                    "moveTo",
                    &format!(
                        "{waiting} deal(s) are in this stage; choose the stage to move them to."
                    ),
                ));
            };
            let target = stages
                .iter()
                .find(|s| s.id == target_id && s.is_active && s.id != stage.id)
                .ok_or_else(|| {
                    AppError::invalid(
                        "moveTo",
                        "Choose another active stage of the same pipeline.",
                    )
                })?
                .clone();
            let filter = store::OpportunityFilter {
                stage_id: Some(stage.id.clone()),
                limit: i64::MAX,
                ..Default::default()
            };
            for deal in store::list_opportunities(c, &ctx.org_id, &filter)? {
                apply_move(c, ctx, &deal, &target, None, None)?;
                moved += 1;
            }
        }
        let mut retired = stage.clone();
        retired.is_active = false;
        retired.updated_at = now();
        store::update_stage(c, &retired)?;
        audit::record(
            c,
            ctx,
            "stage.retire",
            "pipeline",
            Some(&stage.pipeline_id),
            json!({"stage": stage.name, "movedDeals": moved, "moveTo": move_to}),
        )?;
        Ok(moved)
    })
}

pub fn add_loss_reason(
    conn: &mut DbConn,
    ctx: &AuditContext,
    name: &str,
) -> AppResult<LossReasonRow> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(AppError::invalid(
            "name",
            "Name the reason (1 to 80 characters).",
        ));
    }
    crate::db::transaction(conn, |c| {
        if store::loss_reasons(c, &ctx.org_id, false)?
            .iter()
            .any(|r| r.name.eq_ignore_ascii_case(name))
        {
            return Err(AppError::invalid("name", "This reason exists."));
        }
        let row = LossReasonRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            name: name.into(),
            is_active: true,
            created_at: now(),
        };
        store::insert_loss_reason(c, &row)?;
        audit::record(
            c,
            ctx,
            "loss_reason.create",
            "pipeline",
            None,
            json!({"name": name}),
        )?;
        Ok(row)
    })
}

// ---------- opportunities ----------

/// Rules that may refuse a stage change (plugins' `opportunity_before_move`).
pub trait MoveRules {
    /// `Err(message)` refuses the move with that message.
    fn check(&self, deal: &OpportunityRow, from: &StageRow, to: &StageRow) -> Result<(), String>;

    /// The deal (as saved) moved; called inside the write's transaction, so implementations
    /// queue and act only once the write has committed.
    fn moved(&self, _deal: &OpportunityRow, _from: &StageRow, _to: &StageRow) {}
}

/// No rules: for admin-driven moves (retiring a stage) and the CLI.
pub struct NoRules;

impl MoveRules for NoRules {
    fn check(&self, _: &OpportunityRow, _: &StageRow, _: &StageRow) -> Result<(), String> {
        Ok(())
    }
}

/// A client involved in a deal, and their role in it (decision maker, champion, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub client_id: String,
    pub role: String,
}

pub struct WriteContext<'a> {
    pub ctx: &'a AuditContext,
    pub access: &'a Access,
    pub defs: &'a [FieldRow],
    pub default_currency: &'a str,
    /// Checks plugin field types.
    pub external: &'a dyn crate::domain::custom_fields::ExternalTypes,
    /// May refuse stage changes.
    pub rules: &'a dyn MoveRules,
}

pub fn get(
    conn: &mut DbConn,
    org_id: &str,
    access: &Access,
    id: &str,
) -> AppResult<OpportunityRow> {
    store::find_opportunity(conn, org_id, id)?
        .filter(|o| {
            o.deleted_at.is_none()
                && (access.oversee || o.assigned_to.as_deref() == Some(access.user_id.as_str()))
        })
        .ok_or(AppError::NotFound)
}

fn stale() -> AppError {
    AppError::Stale(
        "This deal was changed by someone else since you opened it; reload to see their changes."
            .into(),
    )
}

const KEYS: &[&str] = &[
    "name",
    "description",
    "clientId",
    "pipeline",
    "stage",
    "value",
    "currency",
    "probability",
    "expectedCloseDate",
    "actualCloseDate",
    "status",
    "assignedTo",
    "source",
    "competitors",
    "lossReason",
    "customFields",
    "contacts",
];
const READ_ONLY: &[&str] = &[
    "id",
    "version",
    "createdAt",
    "updatedAt",
    "stageName",
    "clientName",
    "weightedValue",
    "stageEnteredAt",
    "rotting",
];

fn text(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<Option<String>> {
    match body.get(key)? {
        Value::Null => Some(None),
        Value::String(s) if s.trim().is_empty() => Some(None),
        Value::String(s) if s.chars().count() <= max => Some(Some(s.trim().to_string())),
        Value::String(_) => {
            errors.push(FieldError::new(
                key,
                format!("Use at most {max} characters."),
            ));
            None
        }
        _ => {
            errors.push(FieldError::new(key, "Send text."));
            None
        }
    }
}

fn date(
    body: &Map<String, Value>,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Option<NaiveDate>> {
    match text(body, key, 20, errors)? {
        None => Some(None),
        Some(s) => match NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
            Ok(d) => Some(Some(d)),
            Err(_) => {
                errors.push(FieldError::new(key, "Use a date as YYYY-MM-DD."));
                None
            }
        },
    }
}

/// The outcome of a write: the new row and whether its stage changed.
struct Applied {
    custom_index: Vec<(String, Vec<crate::domain::custom_fields::value::Indexed>)>,
    custom_changed: Vec<String>,
    stage: StageRow,
    /// The new set of contacts, when the body named one.
    contacts: Option<Vec<Contact>>,
}

fn apply_body(
    conn: &mut DbConn,
    w: &WriteContext<'_>,
    row: &mut OpportunityRow,
    body: &Map<String, Value>,
    mode: Mode,
    errors: &mut Vec<FieldError>,
) -> AppResult<Option<Applied>> {
    for key in body.keys() {
        if !KEYS.contains(&key.as_str()) && !READ_ONLY.contains(&key.as_str()) {
            errors.push(FieldError::new(key.clone(), "Unknown field."));
        }
    }
    if let Some(n) = text(body, "name", 200, errors) {
        row.name = n.unwrap_or_default();
    }
    if row.name.is_empty() {
        errors.push(FieldError::new("name", "Name the deal."));
    }
    if let Some(d) = text(body, "description", 5000, errors) {
        row.description = d.unwrap_or_default();
    }
    if let Some(client) = text(body, "clientId", 64, errors) {
        match client
            .map(|id| {
                clients::service::get(
                    conn,
                    &w.ctx.org_id,
                    &Access {
                        oversee: true,
                        ..w.access.clone()
                    },
                    &id,
                )
            })
            .transpose()
        {
            Ok(Some(c)) => row.client_id = c.id,
            _ => errors.push(FieldError::new(
                "clientId",
                "Choose a client of this organization.",
            )),
        }
    }
    if row.client_id.is_empty() {
        errors.push(FieldError::new("clientId", "A deal belongs to a client."));
    }
    match body.get("value") {
        Some(Value::String(s)) => match parse_cents(s) {
            Ok(c) => row.value_cents = c,
            Err(e) => errors.push(FieldError::new("value", e)),
        },
        Some(Value::Number(n)) => match parse_cents(&n.to_string()) {
            Ok(c) => row.value_cents = c,
            Err(e) => errors.push(FieldError::new("value", e)),
        },
        Some(_) => errors.push(FieldError::new(
            "value",
            "Send the value as a decimal string, e.g. \"1234.50\".",
        )),
        None => {}
    }
    if let Some(c) = text(body, "currency", 3, errors) {
        let c = c
            .map(|c| c.to_uppercase())
            .unwrap_or_else(|| w.default_currency.to_string());
        if valid_currency(&c) {
            row.currency = c;
        } else {
            errors.push(FieldError::new(
                "currency",
                "Use an ISO currency code, e.g. EUR.",
            ));
        }
    }
    if let Some(d) = date(body, "expectedCloseDate", errors) {
        row.expected_close = d;
    }
    if let Some(d) = date(body, "actualCloseDate", errors) {
        row.actual_close = d;
    }
    if let Some(s) = text(body, "source", 100, errors) {
        row.source = s;
    }
    match body.get("competitors") {
        Some(Value::Array(items)) => {
            let names: Vec<String> = items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if names.len() != items.len() || names.iter().any(|n| n.chars().count() > 100) {
                errors.push(FieldError::new(
                    "competitors",
                    "List competitor names as text.",
                ));
            }
            row.competitors = Value::from(names).to_string();
        }
        Some(Value::Null) => row.competitors = "[]".into(),
        Some(_) => errors.push(FieldError::new("competitors", "Send a list of names.")),
        None => {}
    }
    if let Some(owner) = text(body, "assignedTo", 64, errors) {
        match &owner {
            Some(uid)
                if !orgs::store::find_member(conn, &w.ctx.org_id, uid)?
                    .is_some_and(|m| m.membership.is_active) =>
            {
                errors.push(FieldError::new(
                    "assignedTo",
                    "Assign the deal to an active member of the organization.",
                ))
            }
            Some(uid) if !w.access.oversee && uid != &w.access.user_id => errors.push(
                FieldError::new("assignedTo", "Your role may assign deals only to yourself."),
            ),
            None if !w.access.oversee => errors.push(FieldError::new(
                "assignedTo",
                "Your role may not leave a deal unassigned.",
            )),
            _ => row.assigned_to = owner,
        }
    }
    // Pipeline and stage.
    let pipelines = pipelines(conn, &w.ctx.org_id)?;
    if let Some(Some(p)) = text(body, "pipeline", 64, errors) {
        match pipelines.iter().find(|v| v.pipeline.id == p) {
            Some(v) => {
                if row.pipeline_id != v.pipeline.id {
                    row.pipeline_id = v.pipeline.id.clone();
                    row.stage_id.clear();
                }
            }
            None => errors.push(FieldError::new(
                "pipeline",
                "Choose a pipeline of this organization.",
            )),
        }
    }
    if row.pipeline_id.is_empty() {
        row.pipeline_id = pipelines
            .first()
            .map(|v| v.pipeline.id.clone())
            .unwrap_or_default();
    }
    let Some(view) = pipelines.iter().find(|v| v.pipeline.id == row.pipeline_id) else {
        errors.push(FieldError::new(
            "pipeline",
            "Choose a pipeline of this organization.",
        ));
        return Ok(None);
    };
    if let Some(Some(s)) = text(body, "stage", 64, errors) {
        match view.stages.iter().find(|x| x.id == s && x.is_active) {
            Some(stage) => row.stage_id = stage.id.clone(),
            None => errors.push(FieldError::new(
                "stage",
                "Choose an active stage of the deal's pipeline.",
            )),
        }
    }
    if row.stage_id.is_empty() {
        row.stage_id = view
            .stages
            .iter()
            .find(|s| s.is_active && s.kind == "open")
            .map(|s| s.id.clone())
            .unwrap_or_default();
    }
    let stage = view.stages.iter().find(|s| s.id == row.stage_id).cloned();
    let Some(stage) = stage else {
        errors.push(FieldError::new(
            "stage",
            "The deal's stage is not in its pipeline.",
        ));
        return Ok(None);
    };
    match body.get("probability") {
        Some(Value::Number(n)) => match n.as_i64().filter(|p| (0..=100).contains(p)) {
            Some(p) => {
                row.probability = i32::try_from(p).unwrap_or(0);
                row.probability_set = true;
            }
            None => errors.push(FieldError::new(
                "probability",
                "Use a whole number from 0 to 100.",
            )),
        },
        Some(Value::Null) => row.probability_set = false,
        Some(_) => errors.push(FieldError::new(
            "probability",
            "Use a whole number from 0 to 100.",
        )),
        None => {}
    }
    if !row.probability_set {
        row.probability = stage.probability;
    }
    if let Some(reason) = text(body, "lossReason", 80, errors) {
        row.loss_reason = reason;
    }
    if let Some(Some(status)) = text(body, "status", 20, errors) {
        if status == "cancelled" {
            row.status = status;
        } else if !OPPORTUNITY_STATUSES.contains(&status.as_str()) {
            errors.push(FieldError::new(
                "status",
                "Use open, won, lost or cancelled; or move the deal to a won or lost stage.",
            ));
        } else if status != stage.kind && !(status == "open" && row.status == "cancelled") {
            errors.push(FieldError::new(
                "status",
                format!(
                    "The deal's stage is {}; move it to a {status} stage instead.",
                    stage.name
                ),
            ));
        } else {
            row.status = status;
        }
    }
    settle_status(conn, &w.ctx.org_id, row, &stage, errors)?;
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
    let existing: Map<String, Value> = serde_json::from_str(&row.custom_fields).unwrap_or_default();
    let custom_mode = if body.contains_key("customFields") {
        mode
    } else {
        Mode::Merge
    };
    let (custom_index, custom_changed) = match apply_values(
        w.defs,
        &existing,
        &incoming,
        custom_mode,
        w.access.write_sensitive,
        w.external,
    ) {
        Ok(a) => {
            row.custom_fields = Value::Object(a.json).to_string();
            (a.index, a.changed)
        }
        Err(e) => {
            errors.extend(e);
            (Vec::new(), Vec::new())
        }
    };
    let contacts = match body.get("contacts") {
        None => None,
        Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => {
            let mut out: Vec<Contact> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let cid = item
                    .get("clientId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let role = item
                    .get("role")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .trim();
                if role.is_empty() || role.chars().count() > 60 {
                    errors.push(FieldError::new(
                        format!("contacts[{i}].role"),
                        "Give the contact's role (1 to 60 characters).",
                    ));
                }
                match clients::store::find(conn, &w.ctx.org_id, cid)? {
                    Some(c) if c.deleted_at.is_none() && !c.is_company() => {
                        if !out.iter().any(|x| x.client_id == c.id) {
                            out.push(Contact {
                                client_id: c.id,
                                role: role.to_string(),
                            });
                        }
                    }
                    _ => errors.push(FieldError::new(
                        format!("contacts[{i}].clientId"),
                        "Choose a person of this organization.",
                    )),
                }
            }
            Some(out)
        }
        Some(_) => {
            errors.push(FieldError::new(
                "contacts",
                "Send a list of {clientId, role}.",
            ));
            None
        }
    };
    Ok(Some(Applied {
        custom_index,
        custom_changed,
        stage,
        contacts,
    }))
}

/// Status follows the stage: won stages win (and date the close), lost stages need an
/// active loss reason, open stages reopen a closed deal.
fn settle_status(
    conn: &mut DbConn,
    org_id: &str,
    row: &mut OpportunityRow,
    stage: &StageRow,
    errors: &mut Vec<FieldError>,
) -> AppResult<()> {
    match stage.kind.as_str() {
        "won" => {
            row.status = "won".into();
            row.loss_reason = None;
            row.actual_close = row.actual_close.or(Some(now().date()));
        }
        "lost" => {
            row.status = "lost".into();
            row.actual_close = row.actual_close.or(Some(now().date()));
            let reasons = store::loss_reasons(conn, org_id, true)?;
            match &row.loss_reason {
                Some(r) if reasons.iter().any(|x| &x.name == r) => {}
                _ => errors.push(FieldError::new(
                    "lossReason",
                    format!(
                        "Say why the deal was lost: {}.",
                        reasons
                            .iter()
                            .map(|r| r.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
        _ => {
            if row.status != "cancelled" {
                row.status = "open".into();
            }
            if row.status == "open" {
                row.actual_close = None;
                row.loss_reason = None;
            }
        }
    }
    Ok(())
}

fn record_move(
    conn: &mut DbConn,
    ctx: &AuditContext,
    row: &OpportunityRow,
    from: Option<(&str, i32)>,
) -> AppResult<()> {
    store::insert_move(
        conn,
        &StageMoveRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            opportunity_id: row.id.clone(),
            from_stage_id: from.map(|f| f.0.to_string()),
            to_stage_id: row.stage_id.clone(),
            from_probability: from.map(|f| f.1),
            to_probability: row.probability,
            moved_by: ctx.actor_user_id.clone(),
            moved_at: now(),
        },
    )?;
    Ok(())
}

pub fn create(
    conn: &mut DbConn,
    w: &WriteContext<'_>,
    body: &Map<String, Value>,
) -> AppResult<OpportunityRow> {
    crate::db::transaction(conn, |c| {
        let at = now();
        let mut row = OpportunityRow {
            id: new_id(),
            organization_id: w.ctx.org_id.clone(),
            pipeline_id: String::new(),
            stage_id: String::new(),
            client_id: String::new(),
            name: String::new(),
            description: String::new(),
            value_cents: 0,
            currency: w.default_currency.to_string(),
            probability: 0,
            probability_set: false,
            expected_close: None,
            actual_close: None,
            status: "open".into(),
            assigned_to: Some(w.access.user_id.clone()),
            source: None,
            competitors: "[]".into(),
            loss_reason: None,
            custom_fields: "{}".into(),
            version: 1,
            stage_entered_at: at,
            created_by: Some(w.access.user_id.clone()),
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let mut errors = Vec::new();
        let applied = apply_body(c, w, &mut row, body, Mode::Create, &mut errors)?;
        let (Some(applied), true) = (applied, errors.is_empty()) else {
            return Err(AppError::Validation(
                "The deal could not be saved.".into(),
                errors,
            ));
        };
        store::insert_opportunity(c, &row)?;
        super::rollup::apply(c, None, Some(&row))?;
        custom_fields::store::write_values(c, &w.ctx.org_id, &row.id, &applied.custom_index)?;
        if let Some(contacts) = &applied.contacts {
            store::set_contacts(c, &w.ctx.org_id, &row.id, contacts)?;
        }
        record_move(c, w.ctx, &row, None)?;
        audit::record(
            c,
            w.ctx,
            "opportunity.create",
            "opportunity",
            Some(&row.id),
            json!({"name": row.name, "value": crate::domain::money::format_cents(row.value_cents), "currency": row.currency, "stage": applied.stage.name}),
        )?;
        Ok(row)
    })
}

fn diff(a: &OpportunityRow, b: &OpportunityRow) -> Map<String, Value> {
    let mut m = Map::new();
    macro_rules! cmp {
        ($($f:ident => $n:literal),*) => {$(if a.$f != b.$f { m.insert($n.into(), json!([a.$f, b.$f])); })*};
    }
    cmp!(name => "name", description => "description", client_id => "clientId", pipeline_id => "pipeline", stage_id => "stage",
        value_cents => "valueCents", currency => "currency", probability => "probability", expected_close => "expectedCloseDate",
        actual_close => "actualCloseDate", status => "status", assigned_to => "assignedTo", source => "source",
        competitors => "competitors", loss_reason => "lossReason");
    m
}

pub fn update(
    conn: &mut DbConn,
    w: &WriteContext<'_>,
    id: &str,
    body: &Map<String, Value>,
    mode: Mode,
    expected: Option<i64>,
) -> AppResult<OpportunityRow> {
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
) -> AppResult<OpportunityRow> {
    crate::db::transaction(conn, |c| {
        crate::db::lock_row(c, "opportunities", id)?;
        let current = get(c, &w.ctx.org_id, w.access, id)?;
        let expected = expected.or_else(|| body.get("version").and_then(Value::as_i64));
        if expected.is_some_and(|v| v != current.version) {
            return Err(stale());
        }
        let mut row = current.clone();
        let mut errors = Vec::new();
        let applied = apply_body(c, w, &mut row, body, mode, &mut errors)?;
        let (Some(applied), true) = (applied, errors.is_empty()) else {
            return Err(AppError::Validation(
                "The deal could not be saved.".into(),
                errors,
            ));
        };
        if row.stage_id != current.stage_id {
            // Rules see the deal as it will be (e.g. with the price just entered).
            consult(
                c,
                w.rules,
                &OpportunityRow {
                    stage_id: current.stage_id.clone(),
                    ..row.clone()
                },
                &applied.stage,
            )?;
        }
        let mut changes = diff(&current, &row);
        for k in &applied.custom_changed {
            changes.insert(format!("customFields.{k}"), json!("changed"));
        }
        if let Some(contacts) = &applied.contacts {
            if *contacts != store::contacts_of(c, &row.id)? {
                changes.insert(
                    "contacts".into(),
                    json!(contacts
                        .iter()
                        .map(|x| json!({"clientId": x.client_id, "role": x.role}))
                        .collect::<Vec<_>>()),
                );
            }
        }
        if changes.is_empty() {
            return Ok(current);
        }
        let at = now();
        if row.stage_id != current.stage_id {
            row.stage_entered_at = at;
        }
        row.updated_at = at;
        if !store::replace_opportunity(c, &row, current.version)? {
            return Err(stale());
        }
        super::rollup::apply(c, Some(&current), Some(&row))?;
        if row.status != current.status {
            super::analytics::forget_win_rates(&w.ctx.org_id);
        }
        if row.stage_id != current.stage_id {
            record_move(
                c,
                w.ctx,
                &row,
                Some((&current.stage_id, current.probability)),
            )?;
            announce(c, w.rules, &current.stage_id, &row, &applied.stage)?;
        }
        custom_fields::store::write_values(c, &w.ctx.org_id, &row.id, &applied.custom_index)?;
        audit::record(
            c,
            w.ctx,
            "opportunity.update",
            "opportunity",
            Some(id),
            Value::Object(changes),
        )?;
        get(c, &w.ctx.org_id, w.access, id)
    })
}

/// Moves a deal to `target`, resetting its probability to the stage's and recording history.
fn apply_move(
    conn: &mut DbConn,
    ctx: &AuditContext,
    current: &OpportunityRow,
    target: &StageRow,
    loss_reason: Option<&str>,
    expected: Option<i64>,
) -> AppResult<OpportunityRow> {
    if expected.is_some_and(|v| v != current.version) {
        return Err(stale());
    }
    if current.stage_id == target.id {
        return Ok(current.clone());
    }
    let mut row = current.clone();
    row.stage_id = target.id.clone();
    row.probability = target.probability;
    row.probability_set = false;
    if let Some(r) = loss_reason {
        row.loss_reason = Some(r.to_string());
    }
    if target.kind != "open" {
        row.actual_close = None;
    }
    let mut errors = Vec::new();
    settle_status(conn, &ctx.org_id, &mut row, target, &mut errors)?;
    if !errors.is_empty() {
        return Err(AppError::Validation(
            "The deal could not be moved.".into(),
            errors,
        ));
    }
    let at = now();
    row.stage_entered_at = at;
    row.updated_at = at;
    if !store::replace_opportunity(conn, &row, current.version)? {
        return Err(stale());
    }
    super::rollup::apply(conn, Some(current), Some(&row))?;
    if row.status != current.status {
        super::analytics::forget_win_rates(&ctx.org_id);
    }
    record_move(
        conn,
        ctx,
        &row,
        Some((&current.stage_id, current.probability)),
    )?;
    crate::domain::interactions::record_event(
        conn,
        ctx,
        &row.client_id,
        Some(&row.id),
        &format!("Deal “{}” moved to {}", row.name, target.name),
        json!({"event": "opportunity.move", "from": current.stage_id, "to": row.stage_id, "status": row.status}),
    )?;
    audit::record(
        conn,
        ctx,
        "opportunity.move",
        "opportunity",
        Some(&row.id),
        json!({"stage": [current.stage_id, row.stage_id], "probability": [current.probability, row.probability], "status": [current.status, row.status]}),
    )?;
    Ok(row)
}

/// Asks the rules about a move; a refusal is a validation error on `stage`.
fn consult(
    conn: &mut DbConn,
    rules: &dyn MoveRules,
    deal: &OpportunityRow,
    to: &StageRow,
) -> AppResult<()> {
    if deal.stage_id == to.id {
        return Ok(());
    }
    let Some(from) = store::find_stage(conn, &deal.organization_id, &deal.stage_id)? else {
        return Ok(());
    };
    rules.check(deal, &from, to).map_err(|message| {
        AppError::Validation(
            "The deal could not be moved.".into(),
            vec![FieldError::new("stage", message)],
        )
    })
}

/// Tells the rules a move happened (plugins' `opportunity_after_move`/`_after_won`).
fn announce(
    conn: &mut DbConn,
    rules: &dyn MoveRules,
    from_id: &str,
    deal: &OpportunityRow,
    to: &StageRow,
) -> AppResult<()> {
    if let Some(from) = store::find_stage(conn, &deal.organization_id, from_id)? {
        rules.moved(deal, &from, to);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn move_to(
    conn: &mut DbConn,
    ctx: &AuditContext,
    access: &Access,
    id: &str,
    stage_id: &str,
    loss_reason: Option<&str>,
    expected: Option<i64>,
    rules: &dyn MoveRules,
) -> AppResult<OpportunityRow> {
    crate::db::transaction(conn, |c| {
        let current = get(c, &ctx.org_id, access, id)?;
        let target = store::find_stage(c, &ctx.org_id, stage_id)?
            .filter(|s| s.pipeline_id == current.pipeline_id && s.is_active)
            .ok_or_else(|| {
                AppError::invalid("stage", "Choose an active stage of the deal's pipeline.")
            })?;
        if expected.is_some_and(|v| v != current.version) {
            return Err(stale());
        }
        consult(c, rules, &current, &target)?;
        let row = apply_move(c, ctx, &current, &target, loss_reason, expected)?;
        if row.stage_id != current.stage_id {
            announce(c, rules, &current.stage_id, &row, &target)?;
        }
        Ok(row)
    })
}

pub fn delete(conn: &mut DbConn, ctx: &AuditContext, access: &Access, id: &str) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        let current = get(c, &ctx.org_id, access, id)?;
        let row = OpportunityRow {
            deleted_at: Some(now()),
            updated_at: now(),
            ..current.clone()
        };
        if !store::replace_opportunity(c, &row, current.version)? {
            return Err(stale());
        }
        // The deleted row contributes nothing, so this removes the deal's totals.
        super::rollup::apply(c, Some(&current), Some(&row))?;
        super::analytics::forget_win_rates(&ctx.org_id);
        audit::record(
            c,
            ctx,
            "opportunity.delete",
            "opportunity",
            Some(id),
            json!({"name": current.name}),
        )?;
        Ok(())
    })
}
