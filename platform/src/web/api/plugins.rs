//! `/api/plugins`: the organization's plugins (`plugin:read` to list, `plugin:admin` to
//! install, upgrade, enable, disable and uninstall). A bundle is uploaded as the raw
//! request body; `?grant=a,b` or `?grantAll=true` grants capabilities it requests.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{rfc3339, ListEnvelope};
use crate::auth::ApiActor;
use crate::db;
use crate::error::AppResult;
use crate::plugins::{self, InstallRow};
use crate::state::AppState;
use crate::web::query_pairs;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    install,
    update,
    trusted_keys,
    trust_key,
    distrust_key,
    set_policy,
    uninstall
))]
pub struct Doc;

/// An installed plugin.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plugin {
    /// The install's id (what `/api/plugins/{id}` takes).
    id: String,
    /// The plugin's own reverse-DNS id.
    plugin_id: String,
    name: String,
    version: String,
    vendor: String,
    /// Null when the stored manifest cannot be read.
    description: Option<String>,
    /// Capabilities the plugin asks for.
    requested: Vec<String>,
    /// Capabilities granted to it.
    granted: Vec<String>,
    /// Custom field types it provides.
    field_types: Vec<PluginFieldType>,
    /// unsigned, trusted or untrusted.
    #[schema(value_type = String, example = "trusted")]
    signature: &'static str,
    /// The public key (hex) whose signature the bundle carried.
    signer: Option<String>,
    /// HTTP hosts the plugin declares.
    allowed_hosts: Vec<String>,
    /// Declared hosts an admin approved.
    approved_hosts: Vec<String>,
    settings: Vec<PluginSetting>,
    /// Keys of required settings without a value.
    missing_settings: Vec<String>,
    enabled: bool,
    calls: i64,
    failures: i64,
    last_error: Option<String>,
    /// Why it was switched off (e.g. after repeated failures).
    disabled_reason: Option<String>,
    /// The SHA-256 of its WebAssembly module.
    sha256: String,
    created_at: String,
    updated_at: String,
    /// The 99th percentile of its recent call times in microseconds (lists only; null
    /// before any call).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    p99_micros: Option<Option<u64>>,
}

/// A custom field type a plugin provides.
#[derive(Serialize, ToSchema)]
pub struct PluginFieldType {
    /// `plugin:<plugin id>/<key>`, as a custom field's type.
    #[serde(rename = "type")]
    kind: String,
    label: String,
}

/// A setting the plugin declares, with its value (secret values show only whether set).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginSetting {
    key: String,
    label: String,
    /// The input kind (text, secret, …).
    kind: String,
    required: bool,
    description: String,
    default: Option<String>,
    /// Null when unset or secret.
    value: Option<String>,
    is_set: bool,
}

/// A vendor key whose signatures the organization trusts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustedKey {
    id: String,
    name: String,
    /// Ed25519 public key, hex.
    public_key: String,
    created_at: String,
}

/// The trusted vendor keys and whether signatures are required.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustedKeys {
    data: Vec<TrustedKey>,
    require_signature: bool,
}

/// Whether only bundles signed by a trusted key install.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginPolicy {
    require_signature: bool,
}

/// The install as the API shows it; `trusted` are the organization's trusted keys (for
/// the signature status). Secret settings show only whether they are set.
pub fn install_json(r: &InstallRow, trusted: &[plugins::signature::TrustedKey]) -> Plugin {
    let m = r.manifest();
    let (_, signature) = plugins::signature::status(r.signer_key.as_deref(), trusted);
    let values = r.settings_values();
    let settings: Vec<PluginSetting> = m
        .as_ref()
        .map(|m| {
            m.settings
                .iter()
                .map(|d| {
                    let secret = d.is_secret();
                    PluginSetting {
                        key: d.key.clone(),
                        label: d.label.clone(),
                        kind: d.kind.clone(),
                        required: d.required,
                        description: d.description.clone(),
                        default: d.default.clone(),
                        value: if secret {
                            None
                        } else {
                            values.get(&d.key).cloned()
                        },
                        is_set: values.contains_key(&d.key),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Plugin {
        id: r.id.clone(),
        plugin_id: r.plugin_id.clone(),
        name: r.name.clone(),
        version: r.version.clone(),
        vendor: r.vendor.clone(),
        description: m.as_ref().map(|m| m.description.clone()),
        requested: m
            .as_ref()
            .map(|m| m.capabilities.clone())
            .unwrap_or_default(),
        granted: r.granted_list(),
        field_types: m
            .as_ref()
            .map(|m| {
                m.field_types
                    .iter()
                    .map(|t| PluginFieldType {
                        kind: format!("plugin:{}/{}", m.id, t.key),
                        label: t.label.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        signature,
        signer: r.signer_key.clone(),
        allowed_hosts: m
            .as_ref()
            .map(|m| m.allowed_hosts.clone())
            .unwrap_or_default(),
        approved_hosts: r.approved_list(),
        settings,
        missing_settings: r.missing_settings(),
        enabled: r.enabled,
        calls: r.calls,
        failures: r.failures,
        last_error: r.last_error.clone(),
        disabled_reason: r.disabled_reason.clone(),
        sha256: r.wasm_sha256.clone(),
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        p99_micros: None,
    }
}

/// Lists the organization's installed plugins with their call statistics (`plugin:read`).
///
/// One page, no cursor.
#[utoipa::path(get, path = "/api/plugins", tag = "Plugins",
    responses((status = 200, description = "The installed plugins.", body = ListEnvelope<Plugin>)))]
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
            .map(|r| Plugin {
                p99_micros: Some(state.plugins.p99_micros(&r.id)),
                ..install_json(r, &trusted)
            })
            .collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

/// Installs or upgrades a plugin from its bundle, sent as the raw body (`plugin:admin`).
///
/// Capabilities the bundle requests are granted with `?grant=a,b` (repeatable) or all at once
/// with `?grantAll=true`; an organization that requires signatures installs only bundles
/// signed by a trusted key.
#[utoipa::path(post, path = "/api/plugins", tag = "Plugins",
    request_body(content = String, content_type = "application/octet-stream",
        description = "The bundle (`plugin.toml` and `plugin.wasm`, optionally signed), at most 20 MB."),
    params(
        ("grant" = Option<String>, Query, description = "Capabilities to grant, comma-separated; may repeat."),
        ("grantAll" = Option<bool>, Query, description = "`true`: grant every capability the bundle requests."),
    ),
    responses((status = 201, description = "Installed.", body = Plugin)))]
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

/// Changes an installed plugin's switch, grants, approved hosts or settings (`plugin:admin`).
#[utoipa::path(patch, path = "/api/plugins/{id}", tag = "Plugins", request_body = plugins::Configure,
    params(("id" = String, Path, description = "The install's id.")),
    responses((status = 200, description = "Changed.", body = Plugin)))]
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

fn key_json(k: &plugins::signature::TrustedKey) -> TrustedKey {
    TrustedKey {
        id: k.id.clone(),
        name: k.name.clone(),
        public_key: k.public_key.clone(),
        created_at: rfc3339(k.created_at),
    }
}

/// Lists the trusted vendor keys, and says whether signatures are required (`plugin:read`).
#[utoipa::path(get, path = "/api/plugins/trusted-keys", tag = "Plugins",
    responses((status = 200, description = "The keys and the policy.", body = TrustedKeys)))]
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
    Ok(HttpResponse::Ok().json(TrustedKeys {
        data: keys.iter().map(key_json).collect(),
        require_signature: required,
    }))
}

/// A vendor key to trust.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = NewTrustedKey)]
pub struct NewKey {
    name: String,
    /// Ed25519 public key, hex.
    public_key: String,
}

/// Trusts a vendor's signing key (`plugin:admin`).
#[utoipa::path(post, path = "/api/plugins/trusted-keys", tag = "Plugins", request_body = NewKey,
    responses((status = 201, description = "Trusted.", body = TrustedKey)))]
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

/// Stops trusting a vendor key (`plugin:admin`); installed plugins keep running.
#[utoipa::path(delete, path = "/api/plugins/trusted-keys/{id}", tag = "Plugins",
    params(("id" = String, Path, description = "The key's id.")),
    responses((status = 204, description = "Removed.")))]
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

/// Whether only bundles signed by a trusted key install.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PluginPolicyInput)]
pub struct Policy {
    require_signature: bool,
}

/// Sets whether only bundles signed by a trusted key install from now on (`plugin:admin`).
///
/// Installed plugins keep running.
#[utoipa::path(put, path = "/api/plugins/policy", tag = "Plugins", request_body = Policy,
    responses((status = 200, description = "Set.", body = PluginPolicy)))]
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
    Ok(HttpResponse::Ok().json(PluginPolicy {
        require_signature: required,
    }))
}

/// Uninstalls a plugin (`plugin:admin`).
#[utoipa::path(delete, path = "/api/plugins/{id}", tag = "Plugins",
    params(("id" = String, Path, description = "The install's id.")),
    responses((status = 204, description = "Uninstalled.")))]
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
