//! Workflows for the API and the console alike (reading needs `workflow:read`, the rest
//! `workflow:admin`), the incoming-call endpoint's work, and the worker's round that starts
//! date and schedule runs and carries due runs out.

use futures_util::StreamExt;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::{Handles, Scope};
use crate::db::{self, Pool};
use crate::domain::workflows::{
    self as wf, run, Definition, Input, RunRow, StepRow, VersionRow, WorkflowRow,
};
use crate::error::{AppError, AppResult};

/// Runs carried out per worker round.
const PER_ROUND: i64 = 200;
/// Runs carried out at the same time by one worker.
const AT_ONCE: usize = 8;
/// Batches of one organization side by side on PostgreSQL (see [`run_due`]).
const LANES: usize = 2;
/// How often date and schedule triggers are scanned.
const SCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// Largest body an incoming call may send.
pub const MAX_HOOK_BODY: usize = 64 * 1024;

/// A workflow's fields from the API's JSON.
pub fn input_from(body: &Map<String, Value>) -> AppResult<Input> {
    const KEYS: &[&str] = &["name", "enabled", "trigger", "conditions", "steps"];
    if let Some(k) = body.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(AppError::invalid(k, "Unknown field."));
    }
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(AppError::invalid("enabled", "Use true or false.")),
    };
    let definition = if body.contains_key("trigger")
        || body.contains_key("steps")
        || body.contains_key("conditions")
    {
        let mut d = Map::new();
        for k in ["trigger", "conditions", "steps"] {
            if let Some(v) = body.get(k) {
                d.insert(k.into(), v.clone());
            }
        }
        if !d.contains_key("trigger") {
            return Err(AppError::invalid(
                "trigger",
                "Send the trigger, conditions and steps together: they make one version.",
            ));
        }
        Some(
            serde_json::from_value::<Definition>(Value::Object(d)).map_err(|e| {
                AppError::invalid(
                    "definition",
                    &format!("The workflow is not in the expected shape: {e}."),
                )
            })?,
        )
    } else {
        None
    };
    Ok(Input {
        name: body.get("name").and_then(Value::as_str).map(str::to_string),
        enabled,
        definition,
    })
}

pub async fn list(scope: &Scope) -> AppResult<Vec<(WorkflowRow, Definition)>> {
    scope.require("workflow", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| wf::list(c, &org)).await
}

/// The list with each workflow's last run and failures in the last seven days.
pub async fn overview(
    scope: &Scope,
) -> AppResult<(
    Vec<(WorkflowRow, Definition)>,
    std::collections::HashMap<String, (Option<RunRow>, i64)>,
)> {
    scope.require("workflow", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| Ok((wf::list(c, &org)?, wf::summaries(c, &org)?)))
        .await
}

pub async fn get(scope: &Scope, id: String) -> AppResult<(WorkflowRow, Definition)> {
    scope.require("workflow", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| wf::get(c, &org, &id)).await
}

pub async fn versions(scope: &Scope, id: String) -> AppResult<Vec<VersionRow>> {
    scope.require("workflow", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| wf::versions(c, &org, &id)).await
}

pub async fn create(scope: &Scope, input: Input) -> AppResult<(WorkflowRow, Option<String>)> {
    scope.require("workflow", "admin")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| wf::create(c, &ctx, input)).await
}

pub async fn update(
    scope: &Scope,
    id: String,
    input: Input,
) -> AppResult<(WorkflowRow, Option<String>)> {
    scope.require("workflow", "admin")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| wf::update(c, &ctx, &id, input)).await
}

pub async fn delete(scope: &Scope, id: String) -> AppResult<()> {
    scope.require("workflow", "admin")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| wf::delete(c, &ctx, &id)).await
}

pub async fn rotate_hook(scope: &Scope, id: String) -> AppResult<String> {
    scope.require("workflow", "admin")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| wf::rotate_hook(c, &ctx, &id)).await
}

/// Runs of one workflow, or of every workflow on one record, newest first.
pub async fn runs(
    scope: &Scope,
    workflow: Option<String>,
    record: Option<String>,
    before: Option<String>,
    limit: i64,
) -> AppResult<Vec<RunRow>> {
    scope.require("workflow", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            if let Some(w) = &workflow {
                wf::get(c, &org, w)?;
            }
            wf::runs(
                c,
                &org,
                workflow.as_deref(),
                record.as_deref(),
                before.as_deref(),
                limit.clamp(1, 200),
            )
        })
        .await
}

pub async fn run_detail(
    scope: &Scope,
    id: String,
) -> AppResult<(RunRow, Vec<StepRow>, WorkflowRow, Definition)> {
    scope.require("workflow", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let (run, steps) = wf::run_detail(c, &org, &id)?;
            let flow: WorkflowRow = {
                use crate::db::schema::workflows;
                use diesel::prelude::*;
                workflows::table
                    .find(&run.workflow_id)
                    .select(WorkflowRow::as_select())
                    .first(c)?
            };
            let def = wf::version_of(c, &run.version_id)?.definition();
            Ok((run, steps, flow, def))
        })
        .await
}

/// "Test on this record": what the current version would do, without doing it.
pub async fn dry_run(
    scope: &Scope,
    id: String,
    record_type: String,
    record_id: String,
) -> AppResult<Vec<String>> {
    scope.require("workflow", "read")?;
    let org = scope.org_id.clone();
    let record_type = match record_type.as_str() {
        "client" => "client",
        "deal" | "opportunity" => "opportunity",
        "interaction" => "interaction",
        "contract" => "contract",
        _ => {
            return Err(AppError::invalid(
                "recordType",
                "Choose client, deal, interaction or contract.",
            ))
        }
    };
    scope
        .read(move |c| {
            let (flow, def) = wf::get(c, &org, &id)?;
            run::dry_run(c, &org, &flow, &def, record_type, &record_id)
        })
        .await
}

/// An incoming call to a workflow's secret URL: a run with the call's body as its event,
/// about the client the body names (`clientId`, or `email` of an existing client) if any.
pub async fn incoming(pool: &Pool, secret: String, body: Value) -> AppResult<String> {
    db::run(pool, move |c| {
        crate::db::transaction(c, |c| {
            let (flow, version) = wf::by_hook(c, &secret)?;
            if !flow.enabled {
                return Err(AppError::Conflict("This workflow is switched off.".into()));
            }
            let org = flow.organization_id.clone();
            let client = match (
                body.get("clientId").and_then(Value::as_str),
                body.get("email").and_then(Value::as_str),
            ) {
                (Some(id), _) => Some(
                    crate::domain::clients::service::get(c, &org, &run::access(), id)
                        .map_err(|_| AppError::invalid("clientId", "There is no such client."))?
                        .id,
                ),
                (None, Some(email)) => crate::domain::mail::clients_by_address(
                    c,
                    &org,
                    &[email.trim().to_lowercase()],
                )?
                .into_iter()
                .next()
                .map(|(id, _)| id),
                _ => None,
            };
            let event = json!({"type": "webhook", "body": body});
            let row = wf::insert_run(
                c,
                &flow,
                &version,
                if client.is_some() { "client" } else { "none" },
                client.as_deref(),
                client.as_deref(),
                event,
                0,
                None,
            )?
            .ok_or_else(|| AppError::Internal("the run was not started".into()))?;
            Ok(row.id)
        })
    })
    .await
}

static LAST_SCAN: Mutex<Option<Instant>> = Mutex::new(None);

/// The worker's round: starts date and schedule runs (every half minute), then carries out
/// the runs that are due. Answers how many runs it took.
pub async fn run_due(h: &Handles) -> AppResult<usize> {
    let scan_now = {
        let mut last = LAST_SCAN.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= SCAN_EVERY);
        if due {
            *last = Some(Instant::now());
        }
        due
    };
    if scan_now {
        if let Err(e) = db::run(&h.pool, |c| run::scan(c, crate::db::now())).await {
            tracing::warn!(error = %e, "workflow date and schedule scan");
        }
    }
    let (due, backend) = db::run(&h.pool, |c| {
        Ok((run::claim(c, PER_ROUND)?, crate::db::backend_of(c)))
    })
    .await?;
    let n = due.len();
    // The steps that stay in the database go first, several runs to a transaction: the
    // commit, not the work, is what a step costs (SQLite's one writer writes each commit's
    // pages to its log). SQLite has one writer: one batch at a time. PostgreSQL takes two
    // side by side, on different clients: while one waits on the server the other prepares
    // its statements (a batch alone keeps one of two cores busy).
    let lanes = match backend {
        crate::db::Backend::Sqlite => 1,
        crate::db::Backend::Postgres => LANES,
    };
    let mut rest: Vec<RunRow> = Vec::new();
    for runs in by_organization(due) {
        let done =
            futures_util::future::join_all(split(runs, lanes).into_iter().map(|runs| async move {
                let again = runs.clone();
                match carry_together(h, runs).await {
                    Ok(left) => left,
                    // One run's failure rolled the batch back: each is carried on its own,
                    // which records the failure on the run it belongs to.
                    Err(e) => {
                        tracing::debug!(error = %e, "workflow batch; carrying its runs one by one");
                        again
                    }
                }
            }))
            .await;
        rest.extend(done.into_iter().flatten());
    }
    // Runs on different records are carried at once (their reads and calls overlap while
    // the database orders the writes); runs on the same client one after the other, so two
    // workflows changing one client do not trip over each other's version.
    futures_util::stream::iter(by_client(rest))
        .for_each_concurrent(AT_ONCE, |group| async move {
            for r in group {
                let id = r.id.clone();
                if let Err(e) = carry(h, r).await {
                    tracing::warn!(run = %id, error = %e, "workflow run");
                }
            }
        })
        .await;
    Ok(n)
}

/// Runs grouped by their client (in claim order within a group); runs without one alone.
fn by_client(runs: Vec<RunRow>) -> Vec<Vec<RunRow>> {
    let mut groups: Vec<Vec<RunRow>> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    for r in runs {
        match r.client_id.as_ref().and_then(|k| index.get(k).copied()) {
            Some(i) => groups[i].push(r),
            None => {
                if let Some(k) = r.client_id.clone() {
                    index.insert(k, groups.len());
                }
                groups.push(vec![r]);
            }
        }
    }
    groups
}

/// A batch cut into up to `lanes` batches of about the same size, a client's runs all in
/// one (in claim order), so batches side by side never change the same client.
fn split(runs: Vec<RunRow>, lanes: usize) -> Vec<Vec<RunRow>> {
    let per = runs.len().div_ceil(lanes.max(1)).max(1);
    let mut out: Vec<Vec<RunRow>> = vec![Vec::new()];
    for group in by_client(runs) {
        if out.last().is_some_and(|b| b.len() >= per) {
            out.push(Vec::new());
        }
        if let Some(b) = out.last_mut() {
            b.extend(group);
        }
    }
    out.retain(|b| !b.is_empty());
    out
}

/// One batch per organization, a client's runs together and in claim order.
fn by_organization(runs: Vec<RunRow>) -> Vec<Vec<RunRow>> {
    let mut orgs: Vec<(String, Vec<RunRow>)> = Vec::new();
    for group in by_client(runs) {
        let org = group[0].organization_id.clone();
        match orgs.iter_mut().find(|(o, _)| *o == org) {
            Some((_, batch)) => batch.extend(group),
            None => orgs.push((org, group)),
        }
    }
    orgs.into_iter().map(|(_, batch)| batch).collect()
}

/// Whether a step's work leaves the database (and so runs outside a transaction).
fn leaves_database(l: &run::Loaded, position: usize) -> bool {
    l.def
        .steps
        .get(position)
        .is_some_and(|s| s.kind == "webhook" || s.kind == "plugin")
}

/// Carries one organization's runs in one transaction as far as their steps stay in the
/// database. Returns the runs whose next step leaves it, for [`carry`]. Any error rolls the
/// whole batch back (nothing of it happened) and is returned.
async fn carry_together(h: &Handles, runs: Vec<RunRow>) -> AppResult<Vec<RunRow>> {
    let Some(org) = runs.first().map(|r| r.organization_id.clone()) else {
        return Ok(Vec::new());
    };
    let blobs = h.blobs.clone();
    super::with_plugins(&h.pool, &h.plugins, org, move |c, ext| {
        // Each run's line on the timeline, the notes, tasks and meetings its steps add, and
        // the audit entries, deliveries and step rows they make go in with the others' at
        // the batch's end.
        crate::domain::later::together(c, |c| {
            crate::domain::memo::within(|| {
                let reach = run::Reach {
                    ext,
                    blobs: blobs.as_ref(),
                };
                let mut rest = Vec::new();
                // A batch holds many runs of few workflow versions: each version is read and parsed
                // once per batch.
                let mut versions: std::collections::HashMap<String, (wf::WorkflowRow, Definition)> =
                    Default::default();
                for r in runs {
                    let mut l = match versions.get(&r.version_id) {
                        Some((flow, def)) if flow.id == r.workflow_id => run::Loaded {
                            run: r,
                            flow: flow.clone(),
                            def: def.clone(),
                        },
                        _ => {
                            let l = run::load(c, r)?;
                            versions
                                .insert(l.run.version_id.clone(), (l.flow.clone(), l.def.clone()));
                            l
                        }
                    };
                    if leaves_database(&l, l.run.step as usize) {
                        rest.push(l.run);
                        continue;
                    }
                    if !run::check_conditions(c, &l)? {
                        continue;
                    }
                    for _ in 0..(l.def.steps.len() * 2 + 2) {
                        let position = l.run.step as usize;
                        if position >= l.def.steps.len() {
                            run::finish(c, &l, "done", None)?;
                            break;
                        }
                        if leaves_database(&l, position) {
                            rest.push(l.run.clone());
                            break;
                        }
                        // The run was claimed in this round: a step another worker recorded
                        // meanwhile breaks the step's key and rolls the batch back.
                        let kept = crate::domain::interactions::kept();
                        match run::step_unrecorded(c, &reach, &l, position)? {
                            Some(next) => {
                                // The run's next step sees what this one added.
                                if crate::domain::interactions::kept() > kept {
                                    crate::domain::interactions::write_kept(c)?;
                                }
                                l.run.step = next as i32;
                                l.run.attempts = 0;
                                l.run.error = None;
                            }
                            None => break,
                        }
                    }
                }
                Ok(rest)
            })
        })
    })
    .await
}

/// Carries one claimed run out, step by step, until it waits, ends or fails.
pub async fn carry(h: &Handles, r: RunRow) -> AppResult<()> {
    let pool = &h.pool;
    let loaded = db::run(pool, move |c| run::load(c, r)).await?;
    let l = std::sync::Arc::new(loaded);
    let go = {
        let l = l.clone();
        db::run(pool, move |c| run::check_conditions(c, &l)).await?
    };
    if !go {
        return Ok(());
    }
    let mut l = l;
    // A step either records itself and moves the run on or fails it; the bound only guards
    // against a run that would not move.
    for _ in 0..(l.def.steps.len() * 2 + 2) {
        let position = l.run.step as usize;
        if position >= l.def.steps.len() {
            let l2 = l.clone();
            return db::run(pool, move |c| run::finish(c, &l2, "done", None)).await;
        }
        let result = if l.def.steps[position].kind == "webhook" {
            webhook_step(h, l.clone(), position).await
        } else if l.def.steps[position].kind == "plugin" {
            plugin_step(h, l.clone(), position).await
        } else {
            let l2 = l.clone();
            let blobs = h.blobs.clone();
            super::with_plugins(
                pool,
                &h.plugins,
                l.run.organization_id.clone(),
                move |c, ext| {
                    let reach = run::Reach {
                        ext,
                        blobs: blobs.as_ref(),
                    };
                    run::step(c, &reach, &l2, position)
                },
            )
            .await
        };
        if let Err(e) = result {
            let l2 = l.clone();
            return db::run(pool, move |c| run::failed(c, &l2, position, &e)).await;
        }
        let id = l.run.id.clone();
        let now: RunRow = db::run(pool, move |c| {
            use crate::db::schema::workflow_runs;
            use diesel::prelude::*;
            Ok(workflow_runs::table
                .find(&id)
                .select(RunRow::as_select())
                .first(c)?)
        })
        .await?;
        if now.status != "running" {
            return Ok(());
        }
        let mut next = (*l).clone();
        next.run = now;
        l = std::sync::Arc::new(next);
    }
    Err(AppError::Internal(format!(
        "workflow run {} did not move on",
        l.run.id
    )))
}

/// Whether the step already has its row (a run resumed after a crash).
async fn recorded(pool: &crate::db::Pool, l: &run::Loaded, position: usize) -> AppResult<bool> {
    let (id, p) = (l.run.id.clone(), position as i32);
    db::run(pool, move |c| {
        use crate::db::schema::workflow_steps;
        use diesel::prelude::*;
        Ok(workflow_steps::table
            .filter(workflow_steps::run_id.eq(&id))
            .filter(workflow_steps::position.eq(p))
            .count()
            .get_result::<i64>(c)?
            > 0)
    })
    .await
}

/// The key that is the same on every attempt of a run's step (`webhook-id`, a plugin's
/// `attemptKey`), for the other side to act once.
fn attempt_key(l: &run::Loaded, position: usize) -> String {
    format!("wfs_{}_{}", l.run.id.replace('-', ""), position + 1)
}

/// A step whose work leaves the database (a web call, a plugin that may call out): `work`
/// runs on the blocking pool outside any transaction and the step is recorded after it
/// succeeds. A crash between the two does the work again, with the same [`attempt_key`].
async fn outside_step<F>(
    pool: &Pool,
    l: std::sync::Arc<run::Loaded>,
    position: usize,
    work: F,
) -> AppResult<()>
where
    F: FnOnce() -> AppResult<String> + Send + 'static,
{
    if recorded(pool, &l, position).await? {
        return db::run(pool, move |c| run::skip_recorded(c, &l, position)).await;
    }
    let outcome = actix_web::web::block(work)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??;
    db::run(pool, move |c| {
        crate::db::transaction(c, |c| {
            run::record(
                c,
                &l,
                position,
                run::Outcome::Next {
                    outcome,
                    next: position + 1,
                },
            )
            .map(drop)
        })
    })
    .await
}

/// A plugin action (the plugin may call out over HTTP). Plugins that must act once keep the
/// request's `attemptKey` in their storage.
async fn plugin_step(
    h: &Handles,
    l: std::sync::Arc<run::Loaded>,
    position: usize,
) -> AppResult<()> {
    let s = &l.def.steps[position];
    let call = crate::plugins::actions::ActionCall {
        org: l.run.organization_id.clone(),
        plugin: s.plugin.clone().unwrap_or_default(),
        action: s.action.clone().unwrap_or_default(),
        settings: s.settings.clone().unwrap_or_default(),
        client: l.run.client_id.clone(),
        deal: (l.run.record_type == "opportunity")
            .then(|| l.run.record_id.clone())
            .flatten(),
        depth: l.run.depth,
        attempt_key: attempt_key(&l, position),
    };
    let (p, runtime) = (h.pool.clone(), h.plugins.clone());
    outside_step(&h.pool, l, position, move || {
        crate::plugins::actions::run_action(&p, &runtime, &call)
    })
    .await
}

/// A webhook step; the receiver can tell a repeated call by the `webhook-id` header, the
/// same on every attempt of the step.
async fn webhook_step(
    h: &Handles,
    l: std::sync::Arc<run::Loaded>,
    position: usize,
) -> AppResult<()> {
    let s = l.def.steps[position].clone();
    let body = run::webhook_body(&l, position).to_string();
    let id = attempt_key(&l, position);
    outside_step(&h.pool, l, position, move || {
        let outcome = super::webhooks::send(
            s.url.as_deref().unwrap_or_default(),
            s.allow_private_host.unwrap_or(false),
            body,
            vec![
                ("webhook-id", id),
                (
                    "webhook-timestamp",
                    chrono::Utc::now().timestamp().to_string(),
                ),
            ],
        );
        if let Some(e) = outcome.error {
            // A refused address will not get better; anything else may.
            return Err(if outcome.status.is_none() && e.contains("resolves to") {
                AppError::invalid("url", &e)
            } else {
                AppError::Unavailable(format!("The call failed: {e}"))
            });
        }
        Ok(format!(
            "Called; the receiver answered HTTP {}",
            outcome.status.unwrap_or_default()
        ))
    })
    .await
}
