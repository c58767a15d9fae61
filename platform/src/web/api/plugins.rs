//! `/api/plugins`: the organization's plugins (`plugin:read` to list, `plugin:admin` to
//! install, upgrade, enable, disable and uninstall). A bundle is uploaded as the raw
//! request body; `?grant=a,b` or `?grantAll=true` grants capabilities it requests.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{rfc3339, ListEnvelope};
use crate::app::AppState;
use crate::auth::ApiActor;
use crate::db;
use crate::error::{AppError, AppResult};
use crate::plugins::{self, bundle, InstallRow};
use crate::web::query_pairs;

/// Largest bundle accepted.
pub const MAX_BUNDLE: usize = 20 * 1024 * 1024;

pub fn install_json(r: &InstallRow) -> Value {
    let m = r.manifest();
    json!({
        "id": r.id, "pluginId": r.plugin_id, "name": r.name, "version": r.version, "vendor": r.vendor,
        "description": m.as_ref().map(|m| m.description.clone()),
        "requested": m.as_ref().map(|m| m.capabilities.clone()).unwrap_or_default(),
        "granted": r.granted_list(),
        "fieldTypes": m.as_ref().map(|m| m.field_types.iter().map(|t| json!({"type": format!("plugin:{}/{}", m.id, t.key), "label": t.label})).collect::<Vec<_>>()).unwrap_or_default(),
        "signature": "unsigned",
        "enabled": r.enabled, "calls": r.calls, "failures": r.failures, "lastError": r.last_error,
        "disabledReason": r.disabled_reason, "sha256": r.wasm_sha256,
        "createdAt": rfc3339(r.created_at), "updatedAt": rfc3339(r.updated_at),
    })
}

pub async fn list(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("plugin", "read").await?;
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| plugins::list(c, &org)).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows
            .iter()
            .map(|r| {
                let mut v = install_json(r);
                v["p99Micros"] = json!(state.plugins.p99_micros(&r.id));
                v
            })
            .collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

/// The grants a request asks for, given the bundle it carries.
pub fn grants(pairs: &[(String, String)], body: &[u8]) -> AppResult<Vec<String>> {
    let all = pairs
        .iter()
        .any(|(k, v)| (k == "grantAll" || k == "grant_all") && (v == "true" || v == "1"));
    if all {
        return Ok(bundle::unpack(body)
            .map_err(|e| AppError::invalid("bundle", &e))?
            .manifest
            .capabilities);
    }
    Ok(pairs
        .iter()
        .filter(|(k, _)| k == "grant")
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect())
}

pub async fn install(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let grants = grants(&query_pairs(&req)?, &body)?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| {
        plugins::install(c, &ctx, &body, &grants)
    })
    .await?;
    state.plugins.forget(&row.id);
    Ok(HttpResponse::Created().json(install_json(&row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    enabled: bool,
}

pub async fn update(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Patch>,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let ctx = actor.audit();
    let enabled = body.into_inner().enabled;
    let row = db::run(&state.pool, move |c| {
        plugins::set_enabled(c, &ctx, &id, enabled)
    })
    .await?;
    state.plugins.forget(&row.id);
    Ok(HttpResponse::Ok().json(install_json(&row)))
}

pub async fn uninstall(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let ctx = actor.audit();
    let row = db::run(&state.pool, move |c| plugins::uninstall(c, &ctx, &id)).await?;
    state.plugins.forget(&row.id);
    Ok(HttpResponse::NoContent().finish())
}
