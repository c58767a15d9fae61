//! The Plugins page: installed plugins with version, vendor, signature status, granted
//! capabilities and health; upload (install or upgrade), enable/disable, uninstall.
//! Everything here needs `plugin:admin`; each action is audited by the service.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::app::AppState;
use crate::auth::ConsoleActor;
use crate::db;
use crate::error::AppResult;
use crate::plugins::{self, InstallRow};
use crate::web::console::{redirect_with_flash, render};

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
        }
    }
}

#[derive(Template)]
#[template(path = "partials/admin/plugins.html")]
struct PluginsPage {
    plugins: Vec<PluginView>,
    api_version: &'static str,
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| plugins::list(c, &org)).await?;
    let page = PluginsPage {
        plugins: rows
            .iter()
            .map(|r| {
                let mut v = PluginView::from(r);
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
    render(&req, &actor, "Plugins", &page).await
}

/// The bundle arrives as the raw body (sent by the page's script), grants in the query.
pub async fn upload(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let grants = crate::web::api::plugins_grants(&crate::web::query_pairs(&req)?, &body)?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| {
        plugins::install(c, &ctx, &body, &grants)
    })
    .await?;
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
