//! The plugin host: bundles are checked (API version, imports, capabilities) and stored
//! per organization; hooks run in the sandbox of [`runtime`]; failures are counted and a
//! plugin that keeps failing is disabled for its organization, with an audit entry.
//!
//! Plugins add custom field types (a field of type `plugin:<plugin id>/<type key>` is
//! validated by the plugin's `validate` hook on every write, API and console alike),
//! pipeline templates, and stage rules (`opportunity_before_move`).
//!
//! Why this file is long: install, upgrade, enable, settings, health and the field-type and
//! event adapters are one life cycle with one audit trail; the sandbox (`runtime`), the
//! bundle format (`bundle`), signatures and host functions are modules of their own.

pub mod actions;
pub mod bundle;
pub mod events;
pub mod host;
pub mod runtime;
pub mod signature;
pub mod wasm;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rapport_plugin_sdk::{capabilities, hooks, Manifest, ValidateRequest, ValidateResponse};
use serde_json::json;

use crate::db::schema::{plugin_installs, plugin_storage};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::custom_fields::ExternalTypes;
use crate::error::{AppError, AppResult, FieldError};
use runtime::Runtime;

/// Consecutive failed calls after which a plugin is disabled for its organization.
pub const DISABLE_AFTER_FAILURES: i32 = 5;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = plugin_installs)]
pub struct InstallRow {
    pub id: String,
    pub organization_id: String,
    pub plugin_id: String,
    pub name: String,
    pub version: String,
    pub vendor: String,
    /// The manifest as JSON.
    pub manifest: String,
    pub wasm: Vec<u8>,
    pub wasm_sha256: String,
    /// JSON array of granted capabilities.
    pub granted: String,
    pub settings: String,
    pub enabled: bool,
    pub calls: i64,
    pub failures: i64,
    pub consecutive_failures: i32,
    pub last_error: Option<String>,
    pub disabled_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// JSON array of approved HTTP hosts (a subset of the manifest's `allowed_hosts`).
    pub approved_hosts: String,
    /// The public key (hex) whose signature the bundle carried, if any.
    pub signer_key: Option<String>,
}

impl InstallRow {
    pub fn manifest(&self) -> Option<Manifest> {
        serde_json::from_str(&self.manifest).ok()
    }

    pub fn granted_list(&self) -> Vec<String> {
        serde_json::from_str(&self.granted).unwrap_or_default()
    }

    pub fn approved_list(&self) -> Vec<String> {
        serde_json::from_str(&self.approved_hosts).unwrap_or_default()
    }

    /// The values the admin set, by key (secrets included: only the plugin sees them).
    pub fn settings_values(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.settings).unwrap_or_default()
    }

    /// Settings as the plugin sees them: the admin's values, else the declared defaults.
    pub fn effective_settings(&self, manifest: Option<&Manifest>) -> BTreeMap<String, String> {
        let mut values = self.settings_values();
        if let Some(m) = manifest {
            for decl in &m.settings {
                if let (false, Some(d)) = (values.contains_key(&decl.key), &decl.default) {
                    values.insert(decl.key.clone(), d.clone());
                }
            }
        }
        values
    }

    /// Required settings without a value: the plugin cannot do its work yet.
    pub fn missing_settings(&self) -> Vec<String> {
        let Some(m) = self.manifest() else {
            return Vec::new();
        };
        let values = self.effective_settings(Some(&m));
        m.settings
            .iter()
            .filter(|d| d.required && values.get(&d.key).is_none_or(|v| v.trim().is_empty()))
            .map(|d| d.label.clone())
            .collect()
    }

    fn runtime_key(&self) -> String {
        format!("{}:{}", self.id, self.wasm_sha256)
    }

    fn host_context(&self, manifest: Option<&Manifest>) -> runtime::HostContext {
        runtime::HostContext {
            plugin_id: self.plugin_id.clone(),
            org_id: self.organization_id.clone(),
            granted: self.granted_list(),
            approved_hosts: self.approved_list(),
            settings: self.effective_settings(manifest),
            may_write: false,
            triggers: manifest
                .map(|m| m.triggers.iter().map(|t| t.key.clone()).collect())
                .unwrap_or_default(),
            depth: 0,
            pool: None,
            deadline: None,
        }
    }
}

/// Host API versions this build runs: the same major and minor as its SDK.
pub fn supports(api_version: &str) -> bool {
    rapport_plugin_sdk::pack::supports(api_version)
}

/// Everything that can be checked before a bundle is stored (the SDK's checks, which the
/// vendors' packer runs too).
pub fn check(bundle: &bundle::Bundle) -> Result<(), Vec<FieldError>> {
    let problems = rapport_plugin_sdk::pack::check(bundle);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems
            .into_iter()
            .map(|p| FieldError::new(p.field, p.message))
            .collect())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn list(conn: &mut DbConn, org_id: &str) -> AppResult<Vec<InstallRow>> {
    Ok(plugin_installs::table
        .filter(plugin_installs::organization_id.eq(org_id))
        .order(plugin_installs::name.asc())
        .select(InstallRow::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConn, org_id: &str, id: &str) -> AppResult<InstallRow> {
    plugin_installs::table
        .filter(plugin_installs::organization_id.eq(org_id))
        .filter(
            plugin_installs::id
                .eq(id)
                .or(plugin_installs::plugin_id.eq(id)),
        )
        .select(InstallRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(AppError::NotFound)
}

/// Installs or upgrades a plugin in the organization. `grant` names the capabilities the
/// admin grants; each must be one the manifest requests. An upgrade keeps settings and
/// the grants the new version still requests. `compile` proves the module instantiates.
pub fn install(
    conn: &mut DbConn,
    ctx: &AuditContext,
    bytes: &[u8],
    grant: &[String],
) -> AppResult<InstallRow> {
    let b = bundle::unpack(bytes).map_err(|e| AppError::invalid("bundle", &e))?;
    check(&b).map_err(|e| AppError::Validation("The plugin cannot be installed.".into(), e))?;
    for g in grant {
        if !b.manifest.capabilities.contains(g) {
            return Err(AppError::invalid(
                "grant",
                &format!("The plugin does not request {g:?}; grant only what it asks for."),
            ));
        }
    }
    signature::admit(conn, &ctx.org_id, b.signer.as_deref())?;
    runtime::build(&b.wasm).map_err(|e| AppError::invalid("wasm", &e.to_string()))?;
    let manifest_json =
        serde_json::to_string(&b.manifest).map_err(|e| AppError::Internal(e.to_string()))?;
    let sha = sha256_hex(&b.wasm);
    crate::db::transaction(conn, |c| {
        let at = now();
        let existing = find(c, &ctx.org_id, &b.manifest.id).ok();
        let row = match &existing {
            Some(old) => {
                let kept: Vec<String> = old
                    .granted_list()
                    .into_iter()
                    .filter(|g| b.manifest.capabilities.contains(g))
                    .chain(grant.iter().cloned())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                // Hosts stay approved while the new version still declares them; granting
                // http now approves what it declares.
                let hosts: Vec<String> = if grant.iter().any(|g| g == capabilities::HTTP) {
                    b.manifest.allowed_hosts.clone()
                } else {
                    old.approved_list()
                        .into_iter()
                        .filter(|h| b.manifest.allowed_hosts.contains(h))
                        .collect()
                };
                let settings: BTreeMap<String, String> = old
                    .settings_values()
                    .into_iter()
                    .filter(|(k, _)| b.manifest.settings.iter().any(|d| &d.key == k))
                    .collect();
                InstallRow {
                    name: b.manifest.name.clone(),
                    version: b.manifest.version.clone(),
                    vendor: b.manifest.vendor.clone(),
                    manifest: manifest_json.clone(),
                    wasm: b.wasm.clone(),
                    wasm_sha256: sha.clone(),
                    granted: json!(kept).to_string(),
                    approved_hosts: json!(hosts).to_string(),
                    settings: json!(settings).to_string(),
                    signer_key: b.signer.clone(),
                    consecutive_failures: 0,
                    disabled_reason: None,
                    updated_at: at,
                    ..old.clone()
                }
            }
            None => InstallRow {
                id: new_id(),
                organization_id: ctx.org_id.clone(),
                plugin_id: b.manifest.id.clone(),
                name: b.manifest.name.clone(),
                version: b.manifest.version.clone(),
                vendor: b.manifest.vendor.clone(),
                manifest: manifest_json.clone(),
                wasm: b.wasm.clone(),
                wasm_sha256: sha.clone(),
                granted: json!(grant).to_string(),
                settings: "{}".into(),
                enabled: true,
                calls: 0,
                failures: 0,
                consecutive_failures: 0,
                last_error: None,
                disabled_reason: None,
                created_at: at,
                updated_at: at,
                approved_hosts: json!(if grant.iter().any(|g| g == capabilities::HTTP) {
                    b.manifest.allowed_hosts.clone()
                } else {
                    Vec::new()
                })
                .to_string(),
                signer_key: b.signer.clone(),
            },
        };
        diesel::delete(plugin_installs::table.filter(plugin_installs::id.eq(&row.id)))
            .execute(c)?;
        diesel::insert_into(plugin_installs::table)
            .values(&row)
            .execute(c)?;
        audit::record(
            c,
            ctx,
            if existing.is_some() {
                "plugin.upgrade"
            } else {
                "plugin.install"
            },
            "plugin",
            Some(&row.id),
            json!({"plugin": row.plugin_id, "version": [existing.as_ref().map(|e| e.version.clone()), row.version], "granted": row.granted_list(), "approvedHosts": row.approved_list(), "signer": row.signer_key, "sha256": sha}),
        )?;
        Ok(row)
    })
}

pub fn set_enabled(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    enabled: bool,
) -> AppResult<InstallRow> {
    crate::db::transaction(conn, |c| {
        let row = find(c, &ctx.org_id, id)?;
        diesel::update(plugin_installs::table.find(&row.id))
            .set((
                plugin_installs::enabled.eq(enabled),
                plugin_installs::consecutive_failures.eq(0),
                plugin_installs::disabled_reason.eq(None::<String>),
                plugin_installs::updated_at.eq(now()),
            ))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            if enabled {
                "plugin.enable"
            } else {
                "plugin.disable"
            },
            "plugin",
            Some(&row.id),
            json!({"plugin": row.plugin_id}),
        )?;
        find(c, &ctx.org_id, &row.id)
    })
}

/// What an admin changes on an installed plugin without reinstalling it.
#[derive(Debug, Default, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PluginChange)]
pub struct Configure {
    pub enabled: Option<bool>,
    /// Capabilities granted from now on (each requested by the plugin).
    pub granted: Option<Vec<String>>,
    /// HTTP hosts approved (each declared by the plugin).
    pub approved_hosts: Option<Vec<String>>,
    /// Setting values by key; a secret left empty keeps its saved value.
    pub settings: Option<BTreeMap<String, String>>,
}

/// What is wrong with `value` for a setting of this kind, if anything (an empty value is
/// for the caller to judge: it clears an optional setting).
pub fn setting_problem(
    decl: &rapport_plugin_sdk::SettingDecl,
    value: &str,
) -> Option<&'static str> {
    use rapport_plugin_sdk::setting_kinds;
    match decl.kind.as_str() {
        _ if value.is_empty() => None,
        setting_kinds::URL
            if !(value.starts_with("https://") || value.starts_with("http://"))
                || value.parse::<ureq::http::Uri>().is_err() =>
        {
            Some("Enter an address starting with https://.")
        }
        setting_kinds::NUMBER if value.parse::<f64>().is_err() => Some("Enter a number."),
        setting_kinds::BOOLEAN if value != "true" && value != "false" => Some("Use true or false."),
        _ if value.chars().count() > 2000 => Some("Use at most 2000 characters."),
        _ => None,
    }
}

/// Changes grants, approved hosts and settings; every change is audited (secret values
/// never are).
pub fn configure(
    conn: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    change: &Configure,
) -> AppResult<InstallRow> {
    crate::db::transaction(conn, |c| {
        let row = find(c, &ctx.org_id, id)?;
        let manifest = row
            .manifest()
            .ok_or_else(|| AppError::Internal("plugin manifest unreadable".into()))?;
        let mut errors = Vec::new();
        let granted = match &change.granted {
            Some(g) => {
                for cap in g.iter().filter(|cap| !manifest.capabilities.contains(cap)) {
                    errors.push(FieldError::new(
                        "granted",
                        format!(
                            "The plugin does not request {cap:?}; grant only what it asks for."
                        ),
                    ));
                }
                g.iter()
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect()
            }
            None => row.granted_list(),
        };
        let hosts = match &change.approved_hosts {
            Some(h) => {
                for host in h
                    .iter()
                    .filter(|host| !manifest.allowed_hosts.contains(host))
                {
                    errors.push(FieldError::new(
                        "approvedHosts",
                        format!("The plugin does not declare the host {host:?}."),
                    ));
                }
                h.iter()
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect()
            }
            None => row.approved_list(),
        };
        let mut settings = row.settings_values();
        let mut changed_keys = Vec::new();
        if let Some(given) = &change.settings {
            for (key, value) in given {
                let Some(decl) = manifest.settings.iter().find(|d| &d.key == key) else {
                    errors.push(FieldError::new(
                        format!("settings.{key}"),
                        "The plugin has no such setting.",
                    ));
                    continue;
                };
                let value = value.trim().to_string();
                if decl.is_secret() && value.is_empty() {
                    continue;
                }
                let problem = setting_problem(decl, &value);
                if let Some(p) = problem {
                    errors.push(FieldError::new(format!("settings.{key}"), p));
                    continue;
                }
                if settings.get(key) != Some(&value) {
                    changed_keys.push(key.clone());
                }
                if value.is_empty() {
                    settings.remove(key);
                } else {
                    settings.insert(key.clone(), value);
                }
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The plugin's configuration could not be saved.".into(),
                errors,
            ));
        }
        let enabled = change.enabled.unwrap_or(row.enabled);
        diesel::update(plugin_installs::table.find(&row.id))
            .set((
                plugin_installs::granted.eq(json!(granted).to_string()),
                plugin_installs::approved_hosts.eq(json!(hosts).to_string()),
                plugin_installs::settings.eq(json!(settings).to_string()),
                plugin_installs::enabled.eq(enabled),
                plugin_installs::updated_at.eq(now()),
            ))
            .execute(c)?;
        if enabled != row.enabled {
            diesel::update(plugin_installs::table.find(&row.id))
                .set((
                    plugin_installs::consecutive_failures.eq(0),
                    plugin_installs::disabled_reason.eq(None::<String>),
                ))
                .execute(c)?;
            audit::record(
                c,
                ctx,
                if enabled {
                    "plugin.enable"
                } else {
                    "plugin.disable"
                },
                "plugin",
                Some(&row.id),
                json!({"plugin": row.plugin_id}),
            )?;
        }
        if change.granted.is_some() || change.approved_hosts.is_some() || !changed_keys.is_empty() {
            audit::record(
                c,
                ctx,
                "plugin.configure",
                "plugin",
                Some(&row.id),
                json!({"plugin": row.plugin_id, "granted": [row.granted_list(), granted], "approvedHosts": [row.approved_list(), hosts], "settingsChanged": changed_keys}),
            )?;
        }
        find(c, &ctx.org_id, &row.id)
    })
}

pub fn uninstall(conn: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<InstallRow> {
    crate::db::transaction(conn, |c| {
        let row = find(c, &ctx.org_id, id)?;
        diesel::delete(plugin_installs::table.find(&row.id)).execute(c)?;
        // why: what a plugin stored is the organization's data held for that plugin; it
        // goes with it (an upgrade keeps it).
        diesel::delete(
            plugin_storage::table
                .filter(plugin_storage::organization_id.eq(&ctx.org_id))
                .filter(plugin_storage::plugin_id.eq(&row.plugin_id)),
        )
        .execute(c)?;
        audit::record(
            c,
            ctx,
            "plugin.uninstall",
            "plugin",
            Some(&row.id),
            json!({"plugin": row.plugin_id, "version": row.version}),
        )?;
        Ok(row)
    })
}

/// A field type offered by an enabled plugin: (`plugin:<id>/<key>`, label, plugin name).
pub fn field_types(conn: &mut DbConn, org_id: &str) -> AppResult<Vec<(String, String, String)>> {
    Ok(list(conn, org_id)?
        .into_iter()
        .filter(|r| r.enabled)
        .filter_map(|r| {
            let m = r.manifest()?;
            Some(m.field_types.into_iter().map(move |t| {
                (
                    format!("plugin:{}/{}", m.id, t.key),
                    t.label,
                    r.name.clone(),
                )
            }))
        })
        .flatten()
        .collect())
}

/// A call's outcome to persist after the request's own transaction.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub install_id: String,
    pub error: Option<String>,
}

/// Validates plugin field types for one organization during a write.
pub struct PluginFieldTypes {
    runtime: Runtime,
    /// Shared with the event worker without copying the modules.
    installs: Arc<Vec<InstallRow>>,
    /// Hooks each install exports, by install id: manifests are parsed once per write,
    /// not once per hook lookup.
    hooks: Arc<std::collections::HashMap<String, Vec<String>>>,
    /// Each install's caller context (grants, hosts, settings), built with the hooks so no
    /// call parses the manifest or the grants again.
    contexts: Arc<std::collections::HashMap<String, runtime::HostContext>>,
    records: Arc<Mutex<Vec<CallRecord>>>,
    /// Event hooks to call once the write commits: (hook, JSON input).
    events: Mutex<Vec<(&'static str, Vec<u8>)>>,
    /// Whether `deliver` put events in the outbox, so `wake` has something to say.
    queued: std::sync::atomic::AtomicBool,
}

impl PluginFieldTypes {
    pub fn load(conn: &mut DbConn, runtime: &Runtime, org_id: &str) -> AppResult<Self> {
        let installs: Vec<InstallRow> = list(conn, org_id)?
            .into_iter()
            .filter(|r| r.enabled)
            .collect();
        let mut hooks = std::collections::HashMap::new();
        let mut contexts = std::collections::HashMap::new();
        for i in &installs {
            let manifest = i.manifest();
            contexts.insert(i.id.clone(), i.host_context(manifest.as_ref()));
            hooks.insert(i.id.clone(), manifest.map(|m| m.hooks).unwrap_or_default());
        }
        Ok(Self {
            runtime: runtime.clone(),
            installs: Arc::new(installs),
            hooks: Arc::new(hooks),
            contexts: Arc::new(contexts),
            records: Arc::default(),
            events: Mutex::default(),
            queued: Default::default(),
        })
    }

    fn has_hook(&self, install: &InstallRow, hook: &str) -> bool {
        self.hooks
            .get(&install.id)
            .is_some_and(|hooks| hooks.iter().any(|h| h == hook))
    }

    /// Calls a hook that answers JSON of type `T`, inside a change (storage read-only); an
    /// answer that is not a `T` is the plugin's failure.
    fn ask<T: serde::de::DeserializeOwned>(
        &self,
        install: &InstallRow,
        hook: &str,
        input: &[u8],
    ) -> Result<T, runtime::PluginError> {
        self.runtime
            .call(
                &install.runtime_key(),
                &install.wasm,
                &self.context(install),
                hook,
                input,
            )
            .and_then(|out| {
                serde_json::from_slice::<T>(&out)
                    .map_err(|e| runtime::PluginError::Garbage(e.to_string()))
            })
    }

    /// The caller context for hooks that check a change (storage read-only).
    fn context(&self, install: &InstallRow) -> runtime::HostContext {
        self.contexts.get(&install.id).cloned().unwrap_or_default()
    }

    fn record<T>(&self, install: &InstallRow, outcome: &Result<T, runtime::PluginError>) {
        // A call refused for the organization's budget never ran: not the plugin's failure.
        if matches!(outcome, Err(runtime::PluginError::Busy(_))) {
            return;
        }
        if let Ok(mut r) = self.records.lock() {
            r.push(CallRecord {
                install_id: install.id.clone(),
                error: outcome.as_ref().err().map(ToString::to_string),
            });
        }
    }

    /// Queues the change's event hooks in the durable outbox; call inside the change's
    /// transaction, so an event exists exactly when its change does. The dispatcher runs
    /// them after the response (see `events`). Without an outbox (install checks, benches)
    /// they run here, in order, and their outcomes wait in `records`.
    pub fn deliver(&self, conn: &mut DbConn) -> AppResult<()> {
        let events = match self.events.lock() {
            Ok(mut e) => std::mem::take(&mut *e),
            Err(_) => return Ok(()),
        };
        if events.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::new();
        for (hook, input) in events {
            for install in self.installs.iter().filter(|i| self.has_hook(i, hook)) {
                rows.push((install.id.clone(), hook, input.clone()));
            }
        }
        if self.runtime.has_outbox() {
            let org = self
                .installs
                .first()
                .map(|i| i.organization_id.clone())
                .unwrap_or_default();
            events::enqueue(conn, &org, &rows)?;
            if !rows.is_empty() {
                self.queued
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(());
        }
        for (install_id, hook, input) in rows {
            let Some(install) = self.installs.iter().find(|i| i.id == install_id) else {
                continue;
            };
            let mut ctx = self.context(install);
            ctx.may_write = true;
            let outcome =
                self.runtime
                    .call(&install.runtime_key(), &install.wasm, &ctx, hook, &input);
            if let Err(e) = &outcome {
                tracing::warn!(plugin = %install.plugin_id, hook, error = %e, "event hook failed");
            }
            self.record(install, &outcome);
        }
        Ok(())
    }

    /// Tells the event dispatcher to look at the outbox (after the change committed), if
    /// this change put events there. why: woken after every write, the dispatcher read the
    /// outbox for nothing after each one (3% of the CPU of a stream of creates).
    pub fn wake(&self) {
        if self
            .queued
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.runtime.wake();
        }
    }

    pub fn records(&self) -> Vec<CallRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl PluginFieldTypes {
    fn queue_client(&self, hook: &'static str, client: &crate::domain::clients::ClientRow) {
        if !self.installs.iter().any(|i| self.has_hook(i, hook)) {
            return;
        }
        let Ok(input) = serde_json::to_vec(&client_snapshot(client)) else {
            return;
        };
        if let Ok(mut events) = self.events.lock() {
            events.push((hook, input));
        }
    }

    /// How a stored value of a plugin field type reads for people: the plugin's `format`
    /// hook when it has one and it answers, else the value itself (the documented fallback).
    pub fn format(&self, field_type: &str, value: &str) -> String {
        let Some((plugin_id, key)) = field_type
            .strip_prefix("plugin:")
            .and_then(|t| t.split_once('/'))
        else {
            return value.to_string();
        };
        let Some(install) = self
            .installs
            .iter()
            .find(|i| i.plugin_id == plugin_id && self.has_hook(i, hooks::FORMAT))
        else {
            return value.to_string();
        };
        let Ok(input) = serde_json::to_vec(&rapport_plugin_sdk::FormatRequest::new(key, value))
        else {
            return value.to_string();
        };
        let outcome =
            self.ask::<rapport_plugin_sdk::FormatResponse>(install, hooks::FORMAT, &input);
        self.record(install, &outcome);
        match outcome {
            Ok(r) => r.display,
            Err(e) => {
                tracing::warn!(plugin = %install.plugin_id, error = %e, "format hook failed; showing the stored value");
                value.to_string()
            }
        }
    }
}

/// A plugin-computed value for a record.
#[derive(Debug, Clone)]
pub struct ComputedValue {
    /// `<plugin id>/<key>`.
    pub reference: String,
    pub label: String,
    pub plugin: String,
    /// `None` when the plugin could not answer.
    pub value: Option<String>,
}

impl PluginFieldTypes {
    /// The computed fields of the enabled plugins for a client or a deal; a plugin that fails
    /// leaves its values unavailable (and counts the failure).
    pub fn computed(&self, request: &rapport_plugin_sdk::ComputeRequest) -> Vec<ComputedValue> {
        use rapport_plugin_sdk::ComputeRequest;
        let entity = match request {
            ComputeRequest::Client(_) => "client",
            _ => "opportunity",
        };
        let Ok(input) = serde_json::to_vec(request) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for install in self
            .installs
            .iter()
            .filter(|i| self.has_hook(i, hooks::COMPUTE))
        {
            let Some(m) = install.manifest() else {
                continue;
            };
            let fields: Vec<_> = m
                .computed_fields
                .iter()
                .filter(|f| f.entity == entity)
                .collect();
            if fields.is_empty() {
                continue;
            }
            let outcome =
                self.ask::<rapport_plugin_sdk::ComputeResponse>(install, hooks::COMPUTE, &input);
            self.record(install, &outcome);
            if let Err(e) = &outcome {
                tracing::warn!(plugin = %install.plugin_id, error = %e, "compute hook failed");
            }
            let values = outcome.map(|r| r.values).ok();
            for f in fields {
                out.push(ComputedValue {
                    reference: format!("{}/{}", install.plugin_id, f.key),
                    label: f.label.clone(),
                    plugin: install.name.clone(),
                    value: values
                        .as_ref()
                        .map(|v| v.get(&f.key).cloned().unwrap_or_default()),
                });
            }
        }
        out
    }
}

/// The API's `computed` object: `{"<plugin>/<key>": value or null}`.
pub fn computed_json(values: &[ComputedValue]) -> serde_json::Value {
    serde_json::Value::Object(
        values
            .iter()
            .map(|v| (v.reference.clone(), json!(v.value)))
            .collect(),
    )
}

/// A client as hooks and host functions see it.
pub fn client_snapshot(
    client: &crate::domain::clients::ClientRow,
) -> rapport_plugin_sdk::ClientSnapshot {
    let mut snapshot = rapport_plugin_sdk::ClientSnapshot::new(
        &client.id,
        &client.kind,
        &client.display_name,
        client.email.as_deref(),
    );
    snapshot.custom_fields = client.custom_map();
    snapshot
}

/// A deal as hooks and host functions see it.
pub fn deal_snapshot(
    deal: &crate::domain::pipeline::OpportunityRow,
) -> rapport_plugin_sdk::DealSnapshot {
    let mut snapshot = rapport_plugin_sdk::DealSnapshot::new(
        &deal.id,
        &deal.name,
        crate::domain::money::format_cents(deal.value_cents),
        &deal.currency,
    );
    snapshot.client_id = Some(deal.client_id.clone());
    snapshot.custom_fields = serde_json::from_str(&deal.custom_fields).unwrap_or_default();
    snapshot
}

impl ExternalTypes for PluginFieldTypes {
    fn client_created(&self, client: &crate::domain::clients::ClientRow) {
        self.queue_client(hooks::CLIENT_AFTER_CREATE, client);
    }

    fn client_updated(&self, client: &crate::domain::clients::ClientRow) {
        self.queue_client(hooks::CLIENT_AFTER_UPDATE, client);
    }

    fn client_deleted(&self, client: &crate::domain::clients::ClientRow) {
        self.queue_client(hooks::CLIENT_AFTER_DELETE, client);
    }

    fn validate(&self, field_type: &str, value: &str) -> Result<String, String> {
        let Some((plugin_id, key)) = field_type
            .strip_prefix("plugin:")
            .and_then(|t| t.split_once('/'))
        else {
            return Err("This field's type is not a plugin type.".into());
        };
        let Some(install) = self.installs.iter().find(|i| i.plugin_id == plugin_id) else {
            return Err(format!("The plugin {plugin_id} that checks this field is not installed or is disabled; ask an admin."));
        };
        let input =
            serde_json::to_vec(&ValidateRequest::new(key, value)).map_err(|e| e.to_string())?;
        let outcome = self.ask::<ValidateResponse>(install, hooks::VALIDATE, &input);
        self.record(install, &outcome);
        match outcome {
            Ok(ValidateResponse::Valid { normalized }) => Ok(normalized),
            Ok(ValidateResponse::Invalid { message }) => Err(message),
            Err(runtime::PluginError::Denied(why)) => Err(format!(
                "The {} plugin could not check this value: {why}; ask an admin to grant it.",
                install.name
            )),
            Err(runtime::PluginError::Busy(why)) => Err(format!(
                "The {} plugin could not check this value: {why}.",
                install.name
            )),
            Err(e) => {
                tracing::warn!(plugin = %install.plugin_id, error = %e, "plugin call failed");
                Err(format!("The {} plugin could not check this value right now; try again or ask an admin.", install.name))
            }
        }
    }
}

/// Persists call counts and failures; disables a plugin that keeps failing, telling its
/// admins with a notification, the audit log and the Plugins page.
pub fn settle(conn: &mut DbConn, org_id: &str, records: &[CallRecord]) -> AppResult<()> {
    use plugin_installs::dsl as p;
    for r in records {
        let mine = plugin_installs::table
            .filter(p::id.eq(&r.install_id))
            .filter(p::organization_id.eq(org_id));
        // why: requests and the event worker settle concurrently; the counters move in SQL
        // (`calls = calls + 1`), never as read-then-write, so no call goes uncounted.
        let Some(e) = &r.error else {
            diesel::update(mine)
                .set((p::calls.eq(p::calls + 1), p::consecutive_failures.eq(0)))
                .execute(conn)?;
            continue;
        };
        let message: String = e.chars().take(500).collect();
        diesel::update(mine)
            .set((
                p::calls.eq(p::calls + 1),
                p::failures.eq(p::failures + 1),
                p::consecutive_failures.eq(p::consecutive_failures + 1),
                p::last_error.eq(Some(&message)),
            ))
            .execute(conn)?;
        let Ok(row) = find(conn, org_id, &r.install_id) else {
            continue;
        };
        if row.consecutive_failures < DISABLE_AFTER_FAILURES || !row.enabled {
            continue;
        }
        let streak = row.consecutive_failures;
        // Only the settle that flips `enabled` tells anyone.
        let flipped = diesel::update(mine.filter(p::enabled.eq(true)))
            .set((
                p::enabled.eq(false),
                p::disabled_reason.eq(Some(format!(
                    "Disabled after {streak} failed calls in a row: {message}"
                ))),
            ))
            .execute(conn)?;
        if flipped == 0 {
            continue;
        }
        tracing::error!(plugin = %row.plugin_id, org = %org_id, "plugin disabled after repeated failures");
        audit::record(
            conn,
            &AuditContext::cli(org_id),
            "plugin.auto_disable",
            "plugin",
            Some(&row.id),
            json!({"plugin": row.plugin_id, "error": e}),
        )?;
        crate::domain::notifications::notify_role(
            conn,
            org_id,
            crate::domain::orgs::Role::Admin,
            "plugin.auto_disable",
            &format!("The {} plugin was disabled", row.name),
            &format!(
                "It failed {streak} times in a row (last: {}). Its hooks are not called until an admin enables it again.",
                e.chars().take(200).collect::<String>()
            ),
            Some("/admin/plugins"),
        )?;
    }
    Ok(())
}

impl crate::domain::pipeline::service::MoveRules for PluginFieldTypes {
    /// Asks every enabled plugin with an `opportunity_before_move` hook; the first refusal
    /// wins. A plugin that fails is recorded and does not block the move: a broken rule
    /// must not stop the sales team.
    fn check(
        &self,
        deal: &crate::domain::pipeline::OpportunityRow,
        from: &crate::domain::pipeline::StageRow,
        to: &crate::domain::pipeline::StageRow,
    ) -> Result<(), String> {
        use rapport_plugin_sdk::MoveDecision;
        let input = move_input(deal, from, to)?;
        for install in self
            .installs
            .iter()
            .filter(|i| self.has_hook(i, hooks::OPPORTUNITY_BEFORE_MOVE))
        {
            let outcome = self.ask::<MoveDecision>(install, hooks::OPPORTUNITY_BEFORE_MOVE, &input);
            self.record(install, &outcome);
            match outcome {
                Ok(MoveDecision::Refuse { message }) => {
                    return Err(format!("{} ({} plugin)", message, install.name))
                }
                Ok(MoveDecision::Allow) => {}
                Err(e) => {
                    tracing::warn!(plugin = %install.plugin_id, error = %e, "stage rule failed; the move is allowed")
                }
            }
        }
        Ok(())
    }

    fn moved(
        &self,
        deal: &crate::domain::pipeline::OpportunityRow,
        from: &crate::domain::pipeline::StageRow,
        to: &crate::domain::pipeline::StageRow,
    ) {
        let wanted = |hook| self.installs.iter().any(|i| self.has_hook(i, hook));
        if !wanted(hooks::OPPORTUNITY_AFTER_MOVE) && !wanted(hooks::OPPORTUNITY_AFTER_WON) {
            return;
        }
        let Ok(input) = move_input(deal, from, to) else {
            return;
        };
        if let Ok(mut events) = self.events.lock() {
            events.push((hooks::OPPORTUNITY_AFTER_MOVE, input.clone()));
            if to.kind == "won" {
                events.push((hooks::OPPORTUNITY_AFTER_WON, input));
            }
        }
    }
}

/// The JSON a move's hooks get.
fn move_input(
    deal: &crate::domain::pipeline::OpportunityRow,
    from: &crate::domain::pipeline::StageRow,
    to: &crate::domain::pipeline::StageRow,
) -> Result<Vec<u8>, String> {
    use rapport_plugin_sdk::{MoveRequest, StageRef};
    let req = MoveRequest::new(
        deal_snapshot(deal),
        StageRef::new(&from.id, &from.name, &from.kind, from.probability),
        StageRef::new(&to.id, &to.name, &to.kind, to.probability),
    );
    serde_json::to_vec(&req).map_err(|e| e.to_string())
}

/// A pipeline template offered by one of the organization's enabled plugins.
pub struct TemplateOffer {
    /// `<plugin id>/<template key>`, what the API and the console form send.
    pub reference: String,
    /// "Listings (Real estate plugin)".
    pub label: String,
    pub template: rapport_plugin_sdk::PipelineTemplate,
}

pub fn pipeline_templates(conn: &mut DbConn, org_id: &str) -> AppResult<Vec<TemplateOffer>> {
    let mut out = Vec::new();
    for install in list(conn, org_id)?.into_iter().filter(|r| r.enabled) {
        let Some(m) = install.manifest() else {
            continue;
        };
        for t in m.pipeline_templates {
            out.push(TemplateOffer {
                reference: format!("{}/{}", install.plugin_id, t.key),
                label: format!("{} ({} plugin)", t.name, install.name),
                template: t,
            });
        }
    }
    Ok(out)
}

/// Creates a pipeline from a plugin's template; `name` overrides the template's name.
pub fn create_pipeline_from_template(
    conn: &mut DbConn,
    ctx: &AuditContext,
    reference: &str,
    name: Option<&str>,
    rotting_days: Option<i32>,
) -> AppResult<crate::domain::pipeline::service::PipelineView> {
    let offers = pipeline_templates(conn, &ctx.org_id)?;
    let Some(offer) = offers.iter().find(|o| o.reference == reference) else {
        return Err(AppError::invalid(
            "template",
            "Choose a pipeline template of an installed, enabled plugin.",
        ));
    };
    let stages: Vec<(&str, i32, &str, &str)> = offer
        .template
        .stages
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.probability,
                s.kind.as_str(),
                s.color.as_str(),
            )
        })
        .collect();
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(&offer.template.name);
    crate::domain::pipeline::service::create_pipeline(conn, ctx, name, rotting_days, &stages)
}

#[cfg(test)]
mod wake_tests {
    use super::*;

    fn types(runtime: Runtime) -> PluginFieldTypes {
        PluginFieldTypes {
            runtime,
            installs: Arc::default(),
            hooks: Arc::default(),
            contexts: Arc::default(),
            records: Arc::default(),
            events: Mutex::default(),
            queued: Default::default(),
        }
    }

    #[test]
    fn only_a_change_that_queued_events_wakes_the_dispatcher() {
        let (tx, rx) = std::sync::mpsc::channel();
        let quiet = types(Runtime::waking(tx.clone()));
        quiet.wake();
        assert!(rx.try_recv().is_err(), "nothing queued, nobody woken");
        let busy = types(Runtime::waking(tx));
        busy.queued
            .store(true, std::sync::atomic::Ordering::Relaxed);
        busy.wake();
        assert!(rx.try_recv().is_ok(), "queued events wake the dispatcher");
        busy.wake();
        assert!(rx.try_recv().is_err(), "once per change");
    }
}
