//! The Plugins page: installed plugins with version, vendor, signature status, granted
//! capabilities and health; upload (install or upgrade), enable/disable, uninstall.
//! Everything here needs `plugin:admin`; each action is audited by the service.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::db;
use crate::error::{AppError, AppResult, FieldError};
use crate::plugins::{self, signature::TrustedKey, InstallRow};
use crate::state::AppState;
use crate::web::console::{as_toast, redirect_with_flash, render_with_status};

/// A capability or host with whether it is granted/approved (the form's checkboxes).
pub struct Choice {
    pub value: String,
    pub checked: bool,
}

/// A setting as the form shows it (a secret's value is never sent back to the browser).
pub struct SettingView {
    pub key: String,
    pub label: String,
    pub kind: String,
    pub value: String,
    pub is_set: bool,
    pub required: bool,
    pub description: String,
}

pub struct PluginView {
    pub id: String,
    pub name: String,
    pub plugin_id: String,
    pub version: String,
    pub vendor: String,
    pub description: String,
    pub requested: String,
    pub granted: String,
    pub field_types: String,
    /// Pipeline templates and stage rules, in words.
    pub provides: String,
    pub enabled: bool,
    pub calls: i64,
    /// "p99 31 µs" over this server's recent calls, or empty.
    pub p99: String,
    pub failures: i64,
    pub last_error: String,
    pub disabled_reason: String,
    pub signature: String,
    pub signature_kind: &'static str,
    pub capabilities: Vec<Choice>,
    pub hosts: Vec<Choice>,
    pub settings: Vec<SettingView>,
    pub missing: String,
    /// Messages from a configuration that was refused (the form stays open).
    pub errors: Vec<String>,
}

impl PluginView {
    /// A refused configuration's message as the admin reads the form: a setting by the
    /// label its plugin gave it, never by its key.
    fn in_words(&self, e: &FieldError) -> String {
        let setting = e.field.strip_prefix("settings.").and_then(|key| {
            self.settings
                .iter()
                .find(|s| s.key == key && !s.label.is_empty())
        });
        match setting {
            Some(s) => format!("{}: {}", s.label, e.message),
            None => e.message.clone(),
        }
    }

    fn new(r: &InstallRow, trusted: &[TrustedKey]) -> Self {
        let mut v = Self::from(r);
        let (text, kind) = plugins::signature::status(r.signer_key.as_deref(), trusted);
        v.signature = text;
        v.signature_kind = kind;
        v
    }
}

impl From<&InstallRow> for PluginView {
    fn from(r: &InstallRow) -> Self {
        let m = r.manifest();
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            plugin_id: r.plugin_id.clone(),
            version: r.version.clone(),
            vendor: r.vendor.clone(),
            description: m
                .as_ref()
                .map(|m| m.description.clone())
                .unwrap_or_default(),
            requested: m
                .as_ref()
                .map(|m| m.capabilities.join(", "))
                .unwrap_or_default(),
            granted: r.granted_list().join(", "),
            field_types: m
                .as_ref()
                .map(|m| {
                    m.field_types
                        .iter()
                        .map(|t| t.label.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
            provides: m
                .as_ref()
                .map(|m| {
                    let mut out: Vec<String> = m
                        .pipeline_templates
                        .iter()
                        .map(|t| format!("{} pipeline template", t.name))
                        .collect();
                    if m.hooks
                        .iter()
                        .any(|h| h == rapport_plugin_sdk::hooks::OPPORTUNITY_BEFORE_MOVE)
                    {
                        out.push("stage rules for deals".into());
                    }
                    if m.hooks.iter().any(|h| {
                        h == rapport_plugin_sdk::hooks::OPPORTUNITY_AFTER_MOVE
                            || h == rapport_plugin_sdk::hooks::OPPORTUNITY_AFTER_WON
                    }) {
                        out.push("reacts to deal moves".into());
                    }
                    if m.hooks
                        .iter()
                        .any(|h| h == rapport_plugin_sdk::hooks::CLIENT_AFTER_CREATE)
                    {
                        out.push("reacts to new clients".into());
                    }
                    out.join(", ")
                })
                .unwrap_or_default(),
            enabled: r.enabled,
            calls: r.calls,
            p99: String::new(),
            failures: r.failures,
            last_error: r.last_error.clone().unwrap_or_default(),
            disabled_reason: r.disabled_reason.clone().unwrap_or_default(),
            signature: String::new(),
            signature_kind: "unsigned",
            capabilities: m
                .as_ref()
                .map(|m| {
                    let granted = r.granted_list();
                    m.capabilities
                        .iter()
                        .map(|c| Choice {
                            checked: granted.contains(c),
                            value: c.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            hosts: m
                .as_ref()
                .map(|m| {
                    let approved = r.approved_list();
                    m.allowed_hosts
                        .iter()
                        .map(|h| Choice {
                            checked: approved.contains(h),
                            value: h.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            settings: m
                .as_ref()
                .map(|m| {
                    let values = r.settings_values();
                    m.settings
                        .iter()
                        .map(|d| SettingView {
                            key: d.key.clone(),
                            label: d.label.clone(),
                            kind: if d.is_secret() {
                                "secret".into()
                            } else {
                                d.kind.clone()
                            },
                            value: if d.is_secret() {
                                String::new()
                            } else {
                                values
                                    .get(&d.key)
                                    .or(d.default.as_ref())
                                    .cloned()
                                    .unwrap_or_default()
                            },
                            is_set: values.contains_key(&d.key),
                            required: d.required,
                            description: d.description.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            missing: r.missing_settings().join(", "),
            errors: Vec::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "partials/admin/plugins.html")]
struct PluginsPage {
    plugins: Vec<PluginView>,
    api_version: &'static str,
    keys: Vec<TrustedKey>,
    require_signature: bool,
    key_error: Option<String>,
    key_name: String,
    key_value: String,
}

/// What a refused form brings back to the page.
#[derive(Default)]
struct Refused {
    plugin: Option<(String, Vec<FieldError>)>,
    key: Option<(String, String, String)>,
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    page(&req, &actor, &state, Refused::default()).await
}

async fn page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    refused: Refused,
) -> AppResult<HttpResponse> {
    let org = actor.org_id().to_string();
    let (rows, keys, require_signature) = db::run(&state.pool, move |c| {
        Ok((
            plugins::list(c, &org)?,
            plugins::signature::trusted_keys(c, &org)?,
            plugins::signature::signatures_required(c, &org)?,
        ))
    })
    .await?;
    let status = if refused.plugin.is_some() || refused.key.is_some() {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        actix_web::http::StatusCode::OK
    };
    let (key_error, key_name, key_value) = refused.key.unwrap_or_default();
    let page = PluginsPage {
        keys: keys.clone(),
        require_signature,
        key_error: (!key_error.is_empty()).then_some(key_error),
        key_name,
        key_value,
        plugins: rows
            .iter()
            .map(|r| {
                let mut v = PluginView::new(r, &keys);
                if let Some((id, errors)) = &refused.plugin {
                    if *id == r.id {
                        v.errors = errors.iter().map(|e| v.in_words(e)).collect();
                    }
                }
                if let Some(us) = state.plugins.p99_micros(&r.id) {
                    v.p99 = if us >= 1000 {
                        format!("p99 {:.1} ms", us as f64 / 1000.0)
                    } else {
                        format!("p99 {us} µs")
                    };
                }
                v
            })
            .collect(),
        api_version: rapport_plugin_sdk::API_VERSION,
    };
    render_with_status(req, actor, "Plugins", &page, status).await
}

use crate::web::console::form_pairs as form;

/// Saves grants, approved hosts and settings from the plugin's Configure form.
pub async fn configure(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let pairs = form(&body)?;
    let all = |k: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    // A checkbox sends "true" after its hidden "false": the last value wins.
    let mut settings = std::collections::BTreeMap::new();
    for (k, v) in &pairs {
        if let Some(key) = k.strip_prefix("setting.") {
            settings.insert(key.to_string(), v.clone());
        }
    }
    let change = plugins::Configure {
        enabled: None,
        granted: Some(all("granted")),
        approved_hosts: Some(all("host")),
        settings: Some(settings),
    };
    let ctx = actor.audit();
    let install = id.into_inner();
    let target = install.clone();
    let result = db::run(&state.pool, move |c| {
        plugins::configure(c, &ctx, &target, &change)
    })
    .await;
    match result {
        Ok(row) => {
            state.plugins.forget(&row.id);
            redirect_with_flash(
                &req,
                "/admin/plugins",
                &format!("{}'s configuration was saved.", row.name),
            )
        }
        Err(AppError::Validation(_, errors)) => {
            let refused = Refused {
                plugin: Some((install, errors)),
                key: None,
            };
            page(&req, &actor, &state, refused).await
        }
        Err(e) => Err(e),
    }
}

/// Adds a trusted vendor key, removes one, or switches "signatures required".
pub async fn keys(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let pairs = form(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (action, name, key, id) = (get("action"), get("name"), get("public_key"), get("id"));
    let required = get("required") == "true";
    let ctx = actor.audit();
    let (n, k) = (name.clone(), key.clone());
    let result = db::run(&state.pool, move |c| match action.as_str() {
        "add" => plugins::signature::add_trusted_key(c, &ctx, &n, &k)
            .map(|k| format!("The key of {} is trusted.", k.name)),
        "remove" => plugins::signature::remove_trusted_key(c, &ctx, &id)
            .map(|()| "The key is no longer trusted.".to_string()),
        "require" => plugins::signature::require_signatures(c, &ctx, required).map(|()| {
            if required {
                "Only plugins signed by a trusted key can be installed now.".to_string()
            } else {
                "Unsigned plugins can be installed again.".to_string()
            }
        }),
        _ => Err(AppError::NotFound),
    })
    .await;
    match result {
        Ok(message) => redirect_with_flash(&req, "/admin/plugins", &message),
        Err(AppError::Validation(_, errors)) => {
            let message = errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            let refused = Refused {
                plugin: None,
                key: Some((message, name, key)),
            };
            page(&req, &actor, &state, refused).await
        }
        Err(e) => Err(e),
    }
}

/// The bundle arrives as the raw body (sent by the page's script), grants in the query.
pub async fn upload(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let grants = crate::web::upload::plugin_grants(&crate::web::query_pairs(&req)?, &body)
        .map_err(as_toast)?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| {
        plugins::install(c, &ctx, &body, &grants)
    })
    .await
    .map_err(as_toast)?;
    state.plugins.forget(&row.id);
    redirect_with_flash(
        &req,
        "/admin/plugins",
        &format!("{} {} is installed.", row.name, row.version),
    )
}

pub async fn action(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let (id, what) = path.into_inner();
    let ctx = actor.audit();
    let (row, message) = db::run(&state.pool, move |c| {
        Ok(match what.as_str() {
            "enable" => (plugins::set_enabled(c, &ctx, &id, true)?, "is enabled"),
            "disable" => (plugins::set_enabled(c, &ctx, &id, false)?, "is disabled"),
            "uninstall" => (plugins::uninstall(c, &ctx, &id)?, "was uninstalled"),
            _ => return Err(crate::error::AppError::NotFound),
        })
    })
    .await?;
    state.plugins.forget(&row.id);
    redirect_with_flash(&req, "/admin/plugins", &format!("{} {message}.", row.name))
}
