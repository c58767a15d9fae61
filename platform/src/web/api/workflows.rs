//! Workflows: `/api/workflows` (list, create; `…/catalogue` says what triggers and steps
//! exist), `/api/workflows/{id}` (read, change — a new definition is a new version —,
//! delete), `…/versions`, `…/runs`, `…/dry-run`, `…/rotate-url`, `/api/workflow-runs`
//! (by record) and `/api/workflow-runs/{id}` (a run step by step), and the incoming call
//! `POST /api/hooks/workflows/{secret}` (no token: the secret in the URL is the credential).

use actix_web::{http::header, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::ListEnvelope;
use crate::domain::workflows::{Definition, Step, Trigger, ACTIONS, DATE_FIELDS, TRIGGERS};
use crate::error::{AppError, AppResult};
use crate::ops::workflows as ops;
use crate::state::AppState;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    catalogue,
    list,
    create,
    show,
    update,
    delete,
    versions,
    runs,
    record_runs,
    run,
    dry_run,
    rotate_url,
    incoming
))]
pub struct Doc;

/// A workflow's new name, switch or definition. The trigger, conditions and steps make one
/// version and are sent together (the trigger at least); a change of them is a new version.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct WorkflowInput {
    name: Option<String>,
    /// Whether it runs.
    enabled: Option<bool>,
    trigger: Option<Trigger>,
    /// Groups in the client list's filter language (`filter[status]=customer&filter[tag]=vip`);
    /// a record matching any group matches; none: every record.
    conditions: Option<Vec<String>>,
    steps: Option<Vec<Step>>,
}

/// A workflow and its current version.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes `WorkflowRow::to_json` (built in the domain) for /api/openapi.json.
pub struct Workflow {
    id: String,
    name: String,
    enabled: bool,
    /// The current version's number.
    version: i32,
    trigger: Trigger,
    conditions: Vec<String>,
    steps: Vec<Step>,
    /// Whether an incoming call (`POST /api/hooks/workflows/{secret}`) can start it.
    has_incoming_url: bool,
    created_at: String,
    updated_at: String,
    /// The incoming call's address, present only in the answer that made it (shown once;
    /// null when an `Idempotency-Key` replays that answer: it is not stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    incoming_url: Option<String>,
}

/// One run of a workflow on a record.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes `RunRow::to_json` (built in the domain) for /api/openapi.json.
pub struct WorkflowRun {
    id: String,
    workflow_id: String,
    /// client, opportunity, interaction, contract, or `none` when the run has no record.
    record_type: String,
    record_id: Option<String>,
    client_id: Option<String>,
    /// pending, running, waiting, done, failed, skipped (conditions not met) or stopped
    /// (loop protection).
    status: String,
    /// The next step to carry out (0-based).
    step: i32,
    attempts: i32,
    /// How many workflow links led to it (loop protection).
    depth: i32,
    /// When a waiting run goes on.
    next_at: Option<String>,
    error: Option<String>,
    /// The event that started it.
    event: Value,
    created_at: String,
    finished_at: Option<String>,
}

/// A run step by step.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the run's JSON (built from `RunRow::to_json`) for /api/openapi.json.
pub struct WorkflowRunDetail {
    id: String,
    workflow_id: String,
    record_type: String,
    record_id: Option<String>,
    client_id: Option<String>,
    status: String,
    step: i32,
    attempts: i32,
    depth: i32,
    next_at: Option<String>,
    error: Option<String>,
    event: Value,
    created_at: String,
    finished_at: Option<String>,
    workflow: WorkflowName,
    /// Every step of the version the run started with.
    steps: Vec<RunStep>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkflowName {
    id: String,
    name: String,
}

/// A step of a run: what it is and what became of it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WorkflowRunStep)]
pub struct RunStep {
    position: usize,
    #[serde(rename = "type")]
    kind: String,
    definition: Step,
    /// The step's status, or `not run`.
    status: String,
    outcome: Option<String>,
    finished_at: Option<String>,
}

/// What triggers and steps exist, and the dates a date trigger can follow.
#[derive(Serialize, ToSchema)]
#[schema(as = WorkflowCatalogue)]
#[serde(rename_all = "camelCase")]
pub struct Catalogue {
    triggers: Vec<CatalogueEntry>,
    steps: Vec<CatalogueEntry>,
    dates: Vec<DateField>,
    /// Events the organization's enabled plugins raise (trigger type `plugin` with these
    /// `plugin` and `event`).
    plugin_triggers: Vec<PluginTriggerEntry>,
    /// Actions the organization's enabled plugins offer (step type `plugin` with these
    /// `plugin` and `action`, and `settings` by key).
    plugin_actions: Vec<PluginActionEntry>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginTriggerEntry {
    plugin: String,
    plugin_name: String,
    event: String,
    label: String,
    description: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginActionEntry {
    plugin: String,
    plugin_name: String,
    action: String,
    label: String,
    description: String,
    settings: Vec<PluginActionSetting>,
}

/// One field of a plugin action's settings form.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginActionSetting {
    key: String,
    label: String,
    /// text, url, number or boolean.
    kind: String,
    required: bool,
    #[schema(nullable)]
    default: Option<String>,
    description: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = WorkflowCatalogueEntry)]
pub struct CatalogueEntry {
    #[serde(rename = "type")]
    kind: &'static str,
    description: &'static str,
}

#[derive(Serialize, ToSchema)]
#[schema(as = WorkflowDateField)]
pub struct DateField {
    /// `object.field`, e.g. `contract.endDate`.
    field: &'static str,
    description: &'static str,
}

/// A saved version of a workflow.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowVersion {
    version: i32,
    definition: Definition,
    created_by: Option<String>,
    created_at: String,
}

/// What a run would do on the record, line by line; nothing is done.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDryRun {
    would_do: Vec<String>,
}

/// The new incoming-call address, shown once.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowIncomingUrl {
    /// Null when an `Idempotency-Key` replays the answer (it is not stored).
    #[schema(nullable)]
    incoming_url: String,
}

/// The run an incoming call started.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowRunStarted {
    run_id: String,
}

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid("body", "Send a JSON object.")),
    }
}

fn with_url(mut out: Value, secret: Option<String>) -> Value {
    if let Some(s) = secret {
        out["incomingUrl"] = json!(format!("/api/hooks/workflows/{s}"));
    }
    out
}

/// Lists the triggers, step types and dates a workflow can use (`workflow:read`).
#[utoipa::path(get, path = "/api/workflows/catalogue", tag = "Workflows",
    responses((status = 200, description = "The catalogue.", body = Catalogue)))]
pub async fn catalogue(scope: ApiScope) -> AppResult<HttpResponse> {
    scope.require("workflow", "read")?;
    let org = scope.org_id.clone();
    let (plugin_triggers, plugin_actions) = scope
        .read(move |c| {
            Ok((
                crate::plugins::actions::triggers(c, &org)?,
                crate::plugins::actions::actions(c, &org)?,
            ))
        })
        .await?;
    let pairs = |l: &[(&'static str, &'static str)]| -> Vec<CatalogueEntry> {
        l.iter()
            .map(|(k, d)| CatalogueEntry {
                kind: k,
                description: d,
            })
            .collect()
    };
    Ok(HttpResponse::Ok().json(Catalogue {
        triggers: pairs(TRIGGERS),
        steps: pairs(ACTIONS),
        dates: DATE_FIELDS
            .iter()
            .map(|(k, d)| DateField {
                field: k,
                description: d,
            })
            .collect(),
        plugin_triggers: plugin_triggers
            .into_iter()
            .map(|t| PluginTriggerEntry {
                plugin: t.plugin_id,
                plugin_name: t.plugin_name,
                event: t.decl.key,
                label: t.decl.label,
                description: t.decl.description,
            })
            .collect(),
        plugin_actions: plugin_actions
            .into_iter()
            .map(|a| PluginActionEntry {
                plugin: a.plugin_id,
                plugin_name: a.plugin_name,
                action: a.decl.key,
                label: a.decl.label,
                description: a.decl.description,
                settings: a
                    .decl
                    .settings
                    .into_iter()
                    .map(|d| PluginActionSetting {
                        key: d.key,
                        label: d.label,
                        kind: d.kind,
                        required: d.required,
                        default: d.default,
                        description: d.description,
                    })
                    .collect(),
            })
            .collect(),
    }))
}

/// Lists the organization's workflows with their current version (`workflow:read`).
///
/// One page, no cursor.
#[utoipa::path(get, path = "/api/workflows", tag = "Workflows",
    responses((status = 200, description = "The workflows.", body = ListEnvelope<Workflow>)))]
pub async fn list(scope: ApiScope) -> AppResult<HttpResponse> {
    let data = ops::list(&scope)
        .await?
        .iter()
        .map(|(w, d)| w.to_json(d))
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// Creates a workflow (`workflow:admin`).
///
/// A workflow started by an incoming call (trigger `webhook`) is answered with its
/// `incomingUrl`, shown this once.
#[utoipa::path(post, path = "/api/workflows", tag = "Workflows", request_body = WorkflowInput,
    responses((status = 201, description = "Created; `Location` names it.", body = Workflow)))]
pub async fn create(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let input = ops::input_from(&object(body)?)?;
    let (row, secret) = ops::create(&scope, input).await?;
    let (row, def) = ops::get(&scope, row.id).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/workflows/{}", row.id)))
        .insert_header((crate::web::idempotency::REDACT_HEADER, "incomingUrl"))
        .json(with_url(row.to_json(&def), secret)))
}

/// Reads a workflow and its current version (`workflow:read`).
#[utoipa::path(get, path = "/api/workflows/{id}", tag = "Workflows",
    params(("id" = String, Path, description = "The workflow's id.")),
    responses((status = 200, description = "The workflow.", body = Workflow)))]
pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (row, def) = ops::get(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(row.to_json(&def)))
}

/// Changes a workflow's name, switch or definition (`workflow:admin`).
///
/// A new definition is a new version; runs under way keep theirs. Switching the trigger to
/// an incoming call answers the new `incomingUrl`, shown this once.
#[utoipa::path(patch, path = "/api/workflows/{id}", tag = "Workflows", request_body = WorkflowInput,
    params(("id" = String, Path, description = "The workflow's id.")),
    responses((status = 200, description = "Changed.", body = Workflow)))]
pub async fn update(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let input = ops::input_from(&object(body)?)?;
    let (row, secret) = ops::update(&scope, id.into_inner(), input).await?;
    let (row, def) = ops::get(&scope, row.id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((crate::web::idempotency::REDACT_HEADER, "incomingUrl"))
        .json(with_url(row.to_json(&def), secret)))
}

/// Deletes a workflow (`workflow:admin`); it starts no more runs.
#[utoipa::path(delete, path = "/api/workflows/{id}", tag = "Workflows",
    params(("id" = String, Path, description = "The workflow's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lists a workflow's saved versions (`workflow:read`).
///
/// One page, no cursor.
#[utoipa::path(get, path = "/api/workflows/{id}/versions", tag = "Workflows",
    params(("id" = String, Path, description = "The workflow's id.")),
    responses((status = 200, description = "The versions.", body = ListEnvelope<WorkflowVersion>)))]
pub async fn versions(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let data = ops::versions(&scope, id.into_inner())
        .await?
        .iter()
        .map(|v| WorkflowVersion {
            version: v.version,
            definition: v.definition(),
            created_by: v.created_by.clone(),
            created_at: v.created_at.and_utc().to_rfc3339(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunsQuery {
    record_id: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

fn runs_page(runs: Vec<crate::domain::workflows::RunRow>, limit: i64) -> HttpResponse {
    let next = (runs.len() as i64 == limit)
        .then(|| runs.last().map(|r| r.id.clone()))
        .flatten();
    HttpResponse::Ok().json(ListEnvelope {
        data: runs.iter().map(|r| r.to_json()).collect(),
        next_cursor: next,
    })
}

/// Lists a workflow's runs, newest first (`workflow:read`), optionally on one record.
#[utoipa::path(get, path = "/api/workflows/{id}/runs", tag = "Workflows",
    params(
        ("id" = String, Path, description = "The workflow's id."),
        ("recordId" = Option<String>, Query, description = "Only the runs on this record."),
        ("limit" = Option<i64>, Query, description = "Runs per page, 1 to 200 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`."),
    ),
    responses((status = 200, description = "A page of runs.", body = ListEnvelope<WorkflowRun>)))]
pub async fn runs(
    scope: ApiScope,
    id: web::Path<String>,
    q: web::Query<RunsQuery>,
) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let runs = ops::runs(&scope, Some(id.into_inner()), q.record_id, q.cursor, limit).await?;
    Ok(runs_page(runs, limit))
}

/// Lists every workflow's runs on one record, newest first (`workflow:read`).
#[utoipa::path(get, path = "/api/workflow-runs", tag = "Workflows",
    params(
        ("recordId" = String, Query, description = "The record whose runs to list (required)."),
        ("limit" = Option<i64>, Query, description = "Runs per page, 1 to 200 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`."),
    ),
    responses((status = 200, description = "A page of runs.", body = ListEnvelope<WorkflowRun>)))]
pub async fn record_runs(scope: ApiScope, q: web::Query<RunsQuery>) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let Some(record) = q.record_id else {
        return Err(AppError::invalid(
            "recordId",
            "Name the record whose runs to list.",
        ));
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let runs = ops::runs(&scope, None, Some(record), q.cursor, limit).await?;
    Ok(runs_page(runs, limit))
}

/// Reads a run step by step (`workflow:read`).
#[utoipa::path(get, path = "/api/workflow-runs/{id}", tag = "Workflows",
    params(("id" = String, Path, description = "The run's id.")),
    responses((status = 200, description = "The run and its steps.", body = WorkflowRunDetail)))]
pub async fn run(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (run, steps, flow, def) = ops::run_detail(&scope, id.into_inner()).await?;
    let mut out = run.to_json();
    out["workflow"] = json!(WorkflowName {
        id: flow.id,
        name: flow.name
    });
    out["steps"] = json!(def
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let done = steps.iter().find(|r| r.position as usize == i);
            RunStep {
                position: i,
                kind: s.kind.clone(),
                definition: s.clone(),
                status: done.map_or("not run", |d| d.status.as_str()).to_string(),
                outcome: done.map(|d| d.outcome.clone()),
                finished_at: done.map(|d| d.finished_at.and_utc().to_rfc3339()),
            }
        })
        .collect::<Vec<_>>());
    Ok(HttpResponse::Ok().json(out))
}

/// The record to try a workflow on.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = WorkflowDryRunInput)]
pub struct DryRun {
    /// client, deal (or opportunity), interaction or contract.
    record_type: String,
    record_id: String,
}

/// Says what the workflow would do on a record, changing nothing (`workflow:read`).
#[utoipa::path(post, path = "/api/workflows/{id}/dry-run", tag = "Workflows", request_body = DryRun,
    params(("id" = String, Path, description = "The workflow's id.")),
    responses((status = 200, description = "What a run would do.", body = WorkflowDryRun)))]
pub async fn dry_run(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<DryRun>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let lines = ops::dry_run(&scope, id.into_inner(), b.record_type, b.record_id).await?;
    Ok(HttpResponse::Ok().json(WorkflowDryRun { would_do: lines }))
}

/// Gives the workflow a new incoming-call address (`workflow:admin`); the old one stops working.
#[utoipa::path(post, path = "/api/workflows/{id}/rotate-url", tag = "Workflows",
    params(("id" = String, Path, description = "The workflow's id.")),
    responses((status = 200, description = "The new address, shown once.", body = WorkflowIncomingUrl)))]
pub async fn rotate_url(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let secret = ops::rotate_hook(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((crate::web::idempotency::REDACT_HEADER, "incomingUrl"))
        .json(WorkflowIncomingUrl {
            incoming_url: format!("/api/hooks/workflows/{secret}"),
        }))
}

/// Starts a run of the workflow whose incoming-call address this is (no token needed).
///
/// The secret in the address is the credential. The body (a JSON object, at most 64 KB;
/// empty counts as `{}`) becomes the run's event; a `clientId` or `email` in it names the
/// client the run is on. The run is queued: 202 with its id.
#[utoipa::path(post, path = "/api/hooks/workflows/{secret}", tag = "Workflows",
    security(()),
    request_body(content = Object, description = "Any JSON object; it becomes the run's event (`clientId` or `email` names the client)."),
    params(("secret" = String, Path, description = "The secret of the workflow's incoming-call address.")),
    responses((status = 202, description = "Queued.", body = WorkflowRunStarted)))]
pub async fn incoming(
    state: web::Data<AppState>,
    secret: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    if body.len() > ops::MAX_HOOK_BODY {
        return Err(AppError::PayloadTooLarge(format!(
            "Send at most {} KB.",
            ops::MAX_HOOK_BODY / 1024
        )));
    }
    let value: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| AppError::invalid("body", "Send a JSON object."))?
    };
    if !value.is_object() {
        return Err(AppError::invalid("body", "Send a JSON object."));
    }
    let id = ops::incoming(&state.pool, secret.into_inner(), value).await?;
    Ok(HttpResponse::Accepted().json(WorkflowRunStarted { run_id: id }))
}
