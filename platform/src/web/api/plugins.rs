//! `/api/plugins`: the organization's plugins (`plugin:read` to list, `plugin:admin` to
//! install, upgrade, enable, disable and uninstall). A bundle is uploaded as the raw
//! request body; `?grant=a,b` or `?grantAll=true` grants capabilities it requests.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{rfc3339, ListEnvelope};
use crate::auth::ApiActor;
use crate::db;
use crate::error::AppResult;
use crate::plugins::{self, InstallRow};
use crate::state::AppState;
use crate::web::query_pairs;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

/// The install as the API shows it; `trusted` are the organization's trusted keys (for
/// the signature status). Secret settings show only whether they are set.
pub fn install_json(r: &InstallRow, trusted: &[plugins::signature::TrustedKey]) -> Value {
    let m = r.manifest();
    let (_, signature) = plugins::signature::status(r.signer_key.as_deref(), trusted);
    let values = r.settings_values();
    let settings: Vec<Value> = m
        .as_ref()
        .map(|m| {
            m.settings
                .iter()
                .map(|d| {
                    let secret = d.is_secret();
                    json!({
                        "key": d.key, "label": d.label, "kind": d.kind, "required": d.required,
                        "description": d.description, "default": d.default,
                        "value": if secret { None } else { values.get(&d.key).cloned() },
                        "isSet": values.contains_key(&d.key),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": r.id, "pluginId": r.plugin_id, "name": r.name, "version": r.version, "vendor": r.vendor,
        "description": m.as_ref().map(|m| m.description.clone()),
        "requested": m.as_ref().map(|m| m.capabilities.clone()).unwrap_or_default(),
        "granted": r.granted_list(),
        "fieldTypes": m.as_ref().map(|m| m.field_types.iter().map(|t| json!({"type": format!("plugin:{}/{}", m.id, t.key), "label": t.label})).collect::<Vec<_>>()).unwrap_or_default(),
        "signature": signature, "signer": r.signer_key,
        "allowedHosts": m.as_ref().map(|m| m.allowed_hosts.clone()).unwrap_or_default(),
        "approvedHosts": r.approved_list(),
        "settings": settings, "missingSettings": r.missing_settings(),
        "enabled": r.enabled, "calls": r.calls, "failures": r.failures, "lastError": r.last_error,
        "disabledReason": r.disabled_reason, "sha256": r.wasm_sha256,
        "createdAt": rfc3339(r.created_at), "updatedAt": rfc3339(r.updated_at),
    })
}

pub async fn list(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("plugin", "read").await?;
    let org = actor.org_id().to_string();
    let (rows, trusted) = db::run(&state.pool, move |c| {
        Ok((
            plugins::list(c, &org)?,
            plugins::signature::trusted_keys(c, &org)?,
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows
            .iter()
            .map(|r| {
                let mut v = install_json(r, &trusted);
                v["p99Micros"] = json!(state.plugins.p99_micros(&r.id));
                v
            })
            .collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

pub async fn install(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let grants = crate::web::upload::plugin_grants(&query_pairs(&req)?, &body)?;
    let ctx = actor.audit();
    let (row, trusted) = db::run(&state.pool, move |c| {
        let row = plugins::install(c, &ctx, &body, &grants)?;
        Ok((row, plugins::signature::trusted_keys(c, &ctx.org_id)?))
    })
    .await?;
    state.plugins.forget(&row.id);
    Ok(HttpResponse::Created().json(install_json(&row, &trusted)))
}

/// `PATCH /api/plugins/{id}`: any of `enabled`, `granted`, `approvedHosts`, `settings`.
pub async fn update(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<plugins::Configure>,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let ctx = actor.audit();
    let change = body.into_inner();
    let (row, trusted) = db::run(&state.pool, move |c| {
        let row = plugins::configure(c, &ctx, &id, &change)?;
        Ok((row, plugins::signature::trusted_keys(c, &ctx.org_id)?))
    })
    .await?;
    state.plugins.forget(&row.id);
    Ok(HttpResponse::Ok().json(install_json(&row, &trusted)))
}

fn key_json(k: &plugins::signature::TrustedKey) -> Value {
    json!({"id": k.id, "name": k.name, "publicKey": k.public_key, "createdAt": rfc3339(k.created_at)})
}

/// `GET /api/plugins/trusted-keys`: vendor keys, and whether signatures are required.
pub async fn trusted_keys(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("plugin", "read").await?;
    let org = actor.org_id().to_string();
    let (keys, required) = db::run(&state.pool, move |c| {
        Ok((
            plugins::signature::trusted_keys(c, &org)?,
            plugins::signature::signatures_required(c, &org)?,
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "data": keys.iter().map(key_json).collect::<Vec<_>>(),
        "requireSignature": required,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewKey {
    name: String,
    public_key: String,
}

pub async fn trust_key(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<NewKey>,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let ctx = actor.audit();
    let NewKey { name, public_key } = body.into_inner();
    let key = db::run(&state.pool, move |c| {
        plugins::signature::add_trusted_key(c, &ctx, &name, &public_key)
    })
    .await?;
    Ok(HttpResponse::Created().json(key_json(&key)))
}

pub async fn distrust_key(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let ctx = actor.audit();
    db::run(&state.pool, move |c| {
        plugins::signature::remove_trusted_key(c, &ctx, &id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    require_signature: bool,
}

/// `PUT /api/plugins/policy {"requireSignature": true}`: only bundles signed by a trusted
/// key install from now on (installed plugins keep running).
pub async fn set_policy(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<Policy>,
) -> AppResult<HttpResponse> {
    actor.require("plugin", "admin").await?;
    let ctx = actor.audit();
    let required = body.into_inner().require_signature;
    db::run(&state.pool, move |c| {
        plugins::signature::require_signatures(c, &ctx, required)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"requireSignature": required})))
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
