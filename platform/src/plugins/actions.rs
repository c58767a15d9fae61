//! What plugins add to workflows: actions (a step the plugin carries out, with a settings
//! form per step) and triggers (events the plugin raises with `rapport_emit`). Only enabled
//! installs offer them; a workflow that names a plugin no longer installed fails that step
//! with the reason instead of skipping it silently.

use std::collections::BTreeMap;

use rapport_plugin_sdk::{ActionDecl, ActionRequest, ActionResponse, TriggerDecl};

use super::{InstallRow, Runtime};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};

/// An action an enabled plugin offers.
#[derive(Debug, Clone)]
pub struct OfferedAction {
    pub plugin_id: String,
    pub plugin_name: String,
    pub decl: ActionDecl,
}

/// A trigger an enabled plugin raises.
#[derive(Debug, Clone)]
pub struct OfferedTrigger {
    pub plugin_id: String,
    pub plugin_name: String,
    pub decl: TriggerDecl,
}

fn enabled(
    c: &mut DbConn,
    org: &str,
) -> AppResult<Vec<(InstallRow, rapport_plugin_sdk::Manifest)>> {
    Ok(super::list(c, org)?
        .into_iter()
        .filter(|i| i.enabled)
        .filter_map(|i| i.manifest().map(|m| (i, m)))
        .collect())
}

pub fn actions(c: &mut DbConn, org: &str) -> AppResult<Vec<OfferedAction>> {
    Ok(enabled(c, org)?
        .into_iter()
        .flat_map(|(i, m)| {
            m.actions.into_iter().map(move |decl| OfferedAction {
                plugin_id: i.plugin_id.clone(),
                plugin_name: i.name.clone(),
                decl,
            })
        })
        .collect())
}

pub fn triggers(c: &mut DbConn, org: &str) -> AppResult<Vec<OfferedTrigger>> {
    Ok(enabled(c, org)?
        .into_iter()
        .flat_map(|(i, m)| {
            m.triggers.into_iter().map(move |decl| OfferedTrigger {
                plugin_id: i.plugin_id.clone(),
                plugin_name: i.name.clone(),
                decl,
            })
        })
        .collect())
}

/// Problems with a plugin step, as (field under the step, message).
pub fn check_action(
    c: &mut DbConn,
    org: &str,
    plugin: &str,
    action: &str,
    settings: &BTreeMap<String, String>,
) -> AppResult<Vec<(String, String)>> {
    let offered = actions(c, org)?;
    let Some(a) = offered
        .iter()
        .find(|a| a.plugin_id == plugin && a.decl.key == action)
    else {
        return Ok(vec![(
            "action".into(),
            "Choose an action of an installed, enabled plugin.".into(),
        )]);
    };
    let mut problems = Vec::new();
    for key in settings.keys() {
        if !a.decl.settings.iter().any(|d| &d.key == key) {
            problems.push((
                format!("settings.{key}"),
                format!("{} has no setting {key:?}.", a.decl.label),
            ));
        }
    }
    for d in &a.decl.settings {
        let value = settings.get(&d.key).map(|v| v.trim()).unwrap_or_default();
        if value.is_empty() && d.required && d.default.is_none() {
            problems.push((
                format!("settings.{}", d.key),
                format!("Fill in {}.", d.label),
            ));
        } else if let Some(p) = super::setting_problem(d, value) {
            problems.push((format!("settings.{}", d.key), format!("{}: {p}", d.label)));
        }
    }
    Ok(problems)
}

/// Whether an enabled plugin of the organization declares this trigger.
pub fn has_trigger(c: &mut DbConn, org: &str, plugin: &str, trigger: &str) -> AppResult<bool> {
    Ok(triggers(c, org)?
        .iter()
        .any(|t| t.plugin_id == plugin && t.decl.key == trigger))
}

/// What a run gives an action: its records, read at the step's start.
pub struct ActionCall {
    pub org: String,
    pub plugin: String,
    pub action: String,
    pub settings: BTreeMap<String, String>,
    pub client: Option<String>,
    pub deal: Option<String>,
    /// The run's depth: triggers the action raises start runs one deeper.
    pub depth: i32,
    /// The same on every attempt of the step.
    pub attempt_key: String,
}

/// Runs a plugin action. No connection is held while the plugin runs (it may call out);
/// the call is counted on the install like any other. `Ok` is the outcome line for the run's
/// history; the plugin's own failure is `Unavailable` (the step is retried with backoff).
pub fn run_action(
    pool: &crate::db::Pool,
    runtime: &Runtime,
    call: &ActionCall,
) -> AppResult<String> {
    let mut c = pool
        .get()
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    let install = match super::find(&mut c, &call.org, &call.plugin) {
        Ok(i) if i.enabled => i,
        Ok(_) => {
            return Err(AppError::invalid(
                "plugin",
                "The plugin is switched off; switch it on or change the step.",
            ))
        }
        Err(AppError::NotFound) => {
            return Err(AppError::invalid(
                "plugin",
                "The plugin is no longer installed; change the step.",
            ))
        }
        Err(e) => return Err(e),
    };
    let manifest = install
        .manifest()
        .ok_or_else(|| AppError::Internal("plugin manifest unreadable".into()))?;
    let decl = manifest
        .actions
        .iter()
        .find(|a| a.key == call.action)
        .ok_or_else(|| {
            AppError::invalid(
                "action",
                "The plugin no longer offers this action; change the step.",
            )
        })?;
    let mut req = ActionRequest::new(&call.action);
    req.attempt_key = call.attempt_key.clone();
    for d in &decl.settings {
        let given = call.settings.get(&d.key).filter(|v| !v.trim().is_empty());
        if let Some(v) = given.or(d.default.as_ref()) {
            req.settings.insert(d.key.clone(), v.clone());
        }
    }
    if let Some(id) = &call.client {
        req.client = crate::domain::clients::store::find(&mut c, &call.org, id)?
            .filter(|r| r.deleted_at.is_none())
            .as_ref()
            .map(super::client_snapshot);
    }
    if let Some(id) = &call.deal {
        req.deal = crate::domain::pipeline::store::find_opportunity(&mut c, &call.org, id)?
            .filter(|r| r.deleted_at.is_none())
            .as_ref()
            .map(super::deal_snapshot);
    }
    drop(c);
    let input = serde_json::to_vec(&req).map_err(|e| AppError::Internal(e.to_string()))?;
    let mut ctx = install.host_context(Some(&manifest));
    // An action is a change the admin asked for: it may write storage and raise triggers.
    ctx.may_write = true;
    ctx.depth = call.depth + 1;
    let outcome = runtime.call(
        &install.runtime_key(),
        &install.wasm,
        &ctx,
        rapport_plugin_sdk::hooks::RUN_ACTION,
        &input,
    );
    let answer = match outcome {
        Err(super::runtime::PluginError::Busy(e)) => return Err(AppError::Unavailable(e)),
        Err(e) => Err(e.to_string()),
        Ok(bytes) => match serde_json::from_slice::<ActionResponse>(&bytes) {
            Ok(a) if a.failed => Err(a.outcome),
            Ok(a) => Ok(a.outcome),
            Err(e) => Err(format!("the plugin's answer is not an action outcome: {e}")),
        },
    };
    let mut c = pool
        .get()
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    super::settle(
        &mut c,
        &call.org,
        &[super::CallRecord {
            install_id: install.id.clone(),
            error: answer.as_ref().err().cloned(),
        }],
    )?;
    match answer {
        Ok(outcome) if outcome.trim().is_empty() => Ok(format!("{} done", decl.label)),
        Ok(outcome) => Ok(outcome.chars().take(500).collect()),
        Err(e) => Err(AppError::Unavailable(format!(
            "{}: {}",
            install.name,
            e.chars().take(500).collect::<String>()
        ))),
    }
}
