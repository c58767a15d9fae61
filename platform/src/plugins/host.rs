//! Host functions: what a plugin may ask of Rapport. Each checks the capability the admin
//! granted on every call (grants change without a restart) and is scoped to the calling
//! plugin and organization; there is no way to name another organization's data.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use extism::{CurrentPlugin, UserData, Val};
use rapport_plugin_sdk::{capabilities, HttpRequest, HttpResponse};

use crate::db::schema::plugin_storage;
use crate::db::{now, DbConn, Pool};

/// Who is calling and what they may do; refreshed before every call.
#[derive(Clone, Default)]
pub struct HostContext {
    pub plugin_id: String,
    pub org_id: String,
    pub granted: Vec<String>,
    /// Hosts of the manifest's `allowed_hosts` the admin approved.
    pub approved_hosts: Vec<String>,
    /// The plugin's settings with defaults filled in.
    pub settings: BTreeMap<String, String>,
    /// Storage writes are allowed only in event hooks: hooks that check a change run
    /// inside its transaction, where a second writer would wait on SQLite's lock.
    pub may_write: bool,
    /// Triggers the manifest declares (`rapport_emit` raises only these).
    pub triggers: Vec<String>,
    /// The depth of the runs a raised trigger starts (loop protection): the depth of the
    /// change that raised the event hook, or one more than the run whose step called it.
    pub depth: i32,
    pub pool: Option<Pool>,
    /// When the call's wall-time budget ends. Wasm is stopped at the runtime's wall clock;
    /// time spent in host functions (an HTTP call) counts too: past it, every host call is
    /// refused, so a plugin cannot stretch its call by chaining slow host calls.
    pub deadline: Option<std::time::Instant>,
}

/// Marks a refusal in an error's text, so the runtime can tell it from a crash.
pub const DENIED_OPEN: &str = "⟪denied: ";
pub const DENIED_CLOSE: &str = "⟫";

fn denied(message: impl std::fmt::Display) -> extism::Error {
    extism::Error::msg(format!("{DENIED_OPEN}{message}{DENIED_CLOSE}"))
}

impl HostContext {
    fn require(&self, capability: &str) -> Result<(), extism::Error> {
        if self.granted.iter().any(|g| g == capability) {
            Ok(())
        } else {
            Err(denied(format!(
                "the {capability} capability is not granted to this plugin"
            )))
        }
    }

    fn conn(&self) -> Result<crate::db::PooledConn, extism::Error> {
        let pool = self
            .pool
            .as_ref()
            .ok_or_else(|| extism::Error::msg("no database for host functions here"))?;
        // why: a short wait; the caller already holds a connection, and a pool drained by
        // such callers must fail this call rather than hang every request.
        pool.get_timeout(Duration::from_secs(2))
            .map_err(|e| extism::Error::msg(format!("database busy: {e}")))
    }
}

/// The context the runtime passed with this call (`call_with_host_context`): per call, so
/// pooled instances of one compiled module never see each other's caller.
fn context(plugin: &mut CurrentPlugin) -> Result<HostContext, extism::Error> {
    let ctx = plugin.host_context::<HostContext>()?.clone();
    if ctx.deadline.is_some_and(|d| std::time::Instant::now() >= d) {
        return Err(denied("the call's time budget is spent"));
    }
    Ok(ctx)
}

fn string_arg(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    at: usize,
) -> Result<String, extism::Error> {
    let handle = inputs
        .get(at)
        .ok_or_else(|| extism::Error::msg("missing argument"))?;
    plugin.memory_get_val(handle)
}

fn json_out<T: serde::Serialize>(
    plugin: &mut CurrentPlugin,
    outputs: &mut [Val],
    value: &T,
) -> Result<(), extism::Error> {
    let text = serde_json::to_string(value)?;
    let handle = plugin.memory_new(&text)?;
    if let Some(out) = outputs.first_mut() {
        *out = plugin.memory_to_val(handle);
    }
    Ok(())
}

/// Longest log line a plugin may write, in characters.
const MAX_LOG_LINE: usize = 2000;
/// Storage limits per plugin and organization.
pub const MAX_KEY: usize = 200;
pub const MAX_VALUE: usize = 64 * 1024;
pub const MAX_KEYS: i64 = 1000;
/// HTTP limits.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_HTTP_BODY: u64 = 256 * 1024;

pub fn log(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    _outputs: &mut [Val],
    _data: UserData<()>,
) -> Result<(), extism::Error> {
    let ctx = context(plugin)?;
    ctx.require(capabilities::LOG)?;
    // why: a newline would let a plugin forge log lines that look like ours.
    let message: String = string_arg(plugin, inputs, 0)?
        .chars()
        .take(MAX_LOG_LINE)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    tracing::info!(plugin = %ctx.plugin_id, org = %ctx.org_id, "plugin says: {message}");
    Ok(())
}

pub fn setting(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    outputs: &mut [Val],
    _data: UserData<()>,
) -> Result<(), extism::Error> {
    let ctx = context(plugin)?;
    let key = string_arg(plugin, inputs, 0)?;
    json_out(plugin, outputs, &ctx.settings.get(&key))
}

pub fn storage_get(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    outputs: &mut [Val],
    _data: UserData<()>,
) -> Result<(), extism::Error> {
    let ctx = context(plugin)?;
    ctx.require(capabilities::STORAGE)?;
    let key = string_arg(plugin, inputs, 0)?;
    let mut conn = ctx.conn()?;
    let value = storage_read(&mut conn, &ctx.org_id, &ctx.plugin_id, &key)?;
    json_out(plugin, outputs, &value)
}

pub fn storage_set(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    _outputs: &mut [Val],
    _data: UserData<()>,
) -> Result<(), extism::Error> {
    let ctx = context(plugin)?;
    ctx.require(capabilities::STORAGE)?;
    let key = string_arg(plugin, inputs, 0)?;
    let value = string_arg(plugin, inputs, 1)?;
    if !ctx.may_write {
        return Err(denied(
            "storage is read-only while a change is being checked; write from an event hook",
        ));
    }
    let mut conn = ctx.conn()?;
    storage_write(&mut conn, &ctx.org_id, &ctx.plugin_id, &key, Some(&value))
}

pub fn storage_delete(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    _outputs: &mut [Val],
    _data: UserData<()>,
) -> Result<(), extism::Error> {
    let ctx = context(plugin)?;
    ctx.require(capabilities::STORAGE)?;
    let key = string_arg(plugin, inputs, 0)?;
    if !ctx.may_write {
        return Err(denied(
            "storage is read-only while a change is being checked; write from an event hook",
        ));
    }
    let mut conn = ctx.conn()?;
    storage_write(&mut conn, &ctx.org_id, &ctx.plugin_id, &key, None)
}

pub fn storage_read(
    conn: &mut DbConn,
    org_id: &str,
    plugin_id: &str,
    key: &str,
) -> Result<Option<String>, extism::Error> {
    Ok(plugin_storage::table
        .filter(plugin_storage::organization_id.eq(org_id))
        .filter(plugin_storage::plugin_id.eq(plugin_id))
        .filter(plugin_storage::key.eq(key))
        .select(plugin_storage::value)
        .first(conn)
        .optional()?)
}

/// Sets (or with `None` removes) a key, within the limits.
pub fn storage_write(
    conn: &mut DbConn,
    org_id: &str,
    plugin_id: &str,
    key: &str,
    value: Option<&str>,
) -> Result<(), extism::Error> {
    if key.is_empty() || key.chars().count() > MAX_KEY {
        return Err(denied(format!(
            "a storage key has 1 to {MAX_KEY} characters"
        )));
    }
    if value.is_some_and(|v| v.len() > MAX_VALUE) {
        return Err(denied(format!(
            "a stored value is at most {MAX_VALUE} bytes"
        )));
    }
    crate::db::transaction(conn, |c| {
        let mine = plugin_storage::table
            .filter(plugin_storage::organization_id.eq(org_id))
            .filter(plugin_storage::plugin_id.eq(plugin_id));
        let existed = diesel::delete(mine.filter(plugin_storage::key.eq(key))).execute(c)? > 0;
        let Some(value) = value else {
            return Ok(());
        };
        if !existed && mine.count().get_result::<i64>(c)? >= MAX_KEYS {
            return Err(denied(format!(
                "the plugin already stores {MAX_KEYS} keys in this organization"
            )));
        }
        diesel::insert_into(plugin_storage::table)
            .values((
                plugin_storage::organization_id.eq(org_id),
                plugin_storage::plugin_id.eq(plugin_id),
                plugin_storage::key.eq(key),
                plugin_storage::value.eq(value),
                plugin_storage::updated_at.eq(now()),
            ))
            .execute(c)?;
        Ok(())
    })
}

pub fn read_client(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    outputs: &mut [Val],
    _data: UserData<()>,
) -> Result<(), extism::Error> {
    let ctx = context(plugin)?;
    ctx.require(capabilities::READ_RECORDS)?;
    let id = string_arg(plugin, inputs, 0)?;
    let mut conn = ctx.conn()?;
    let row = crate::domain::clients::store::find(&mut conn, &ctx.org_id, &id)?
        .filter(|c| c.deleted_at.is_none());
    json_out(plugin, outputs, &row.as_ref().map(super::client_snapshot))
}

pub fn read_opportunity(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    outputs: &mut [Val],
    _data: UserData<()>,
) -> Result<(), extism::Error> {
    let ctx = context(plugin)?;
    ctx.require(capabilities::READ_RECORDS)?;
    let id = string_arg(plugin, inputs, 0)?;
    let mut conn = ctx.conn()?;
    let row = crate::domain::pipeline::store::find_opportunity(&mut conn, &ctx.org_id, &id)?
        .filter(|d| d.deleted_at.is_none());
    json_out(plugin, outputs, &row.as_ref().map(super::deal_snapshot))
}

/// Raises one of the plugin's declared triggers about a client or deal of the calling
/// organization: the enabled workflows that follow it get their runs, in one transaction.
pub fn emit(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    _outputs: &mut [Val],
    _data: UserData<()>,
) -> Result<(), extism::Error> {
    let ctx = context(plugin)?;
    if !ctx.may_write {
        return Err(denied(
            "triggers are raised from event hooks and actions, not while a change is checked",
        ));
    }
    let text = string_arg(plugin, inputs, 0)?;
    let req: rapport_plugin_sdk::EmitRequest = serde_json::from_str(&text)
        .map_err(|e| extism::Error::msg(format!("unreadable trigger request: {e}")))?;
    if !ctx.triggers.contains(&req.trigger) {
        return Err(denied(format!(
            "the plugin does not declare the trigger {:?}",
            req.trigger
        )));
    }
    let mut conn = ctx.conn()?;
    let (record_type, record_id, client) = match (&req.deal_id, &req.client_id) {
        (Some(deal), _) => {
            let row =
                crate::domain::pipeline::store::find_opportunity(&mut conn, &ctx.org_id, deal)?
                    .filter(|d| d.deleted_at.is_none())
                    .ok_or_else(|| extism::Error::msg("no such deal"))?;
            ("opportunity", row.id, Some(row.client_id))
        }
        (None, Some(client)) => {
            let row = crate::domain::clients::store::find(&mut conn, &ctx.org_id, client)?
                .filter(|c| c.deleted_at.is_none())
                .ok_or_else(|| extism::Error::msg("no such client"))?;
            ("client", row.id.clone(), Some(row.id))
        }
        (None, None) => return Err(extism::Error::msg("name the client or the deal")),
    };
    let changes = serde_json::json!({"plugin": ctx.plugin_id, "trigger": req.trigger});
    crate::domain::workflows::within_run(ctx.depth - 1, || {
        crate::db::transaction(&mut conn, |c| {
            crate::domain::workflows::fire(
                c,
                &ctx.org_id,
                "plugin",
                record_type,
                &record_id,
                client.as_deref(),
                &changes,
            )?;
            Ok::<(), crate::error::AppError>(())
        })
    })?;
    Ok(())
}

/// Whether `url` points at one of `approved` (`host` matches the scheme's default port,
/// `host:port` that port).
pub fn host_approved(url: &str, approved: &[String]) -> Result<(), String> {
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| format!("{url:?} is not a valid address"))?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        Some("http") => 80,
        _ => return Err("only http and https addresses can be called".into()),
    };
    let host = uri
        .host()
        .ok_or("the address has no host")?
        .to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(default_port);
    let ok = approved.iter().any(|a| {
        let a = a.to_ascii_lowercase();
        match a.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => h == host && p.parse() == Ok(port),
            _ => a == host && port == default_port,
        }
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the host {host}:{port} is not approved for this plugin"
        ))
    }
}

pub fn http_request(
    plugin: &mut CurrentPlugin,
    inputs: &[Val],
    outputs: &mut [Val],
    _data: UserData<()>,
) -> Result<(), extism::Error> {
    let ctx = context(plugin)?;
    ctx.require(capabilities::HTTP)?;
    let req: HttpRequest = serde_json::from_str(&string_arg(plugin, inputs, 0)?)
        .map_err(|e| extism::Error::msg(format!("bad HTTP request from plugin: {e}")))?;
    host_approved(&req.url, &ctx.approved_hosts).map_err(denied)?;
    let response =
        send(&req).map_err(|e| extism::Error::msg(format!("HTTP request failed: {e}")))?;
    tracing::info!(plugin = %ctx.plugin_id, org = %ctx.org_id, url = %req.url, status = response.status, "plugin HTTP request");
    json_out(plugin, outputs, &response)
}

/// One HTTP agent for every plugin call: connections and TLS setup are reused.
static AGENT: std::sync::LazyLock<ureq::Agent> =
    std::sync::LazyLock::new(|| crate::integrations::outbound_agent(HTTP_TIMEOUT));

fn send(req: &HttpRequest) -> Result<HttpResponse, ureq::Error> {
    let agent = &*AGENT;
    let method = req.method.to_ascii_uppercase();
    let mut builder = ureq::http::Request::builder()
        .method(method.as_str())
        .uri(&req.url);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let request = builder
        .body(req.body.clone())
        .map_err(|e| ureq::Error::BadUri(e.to_string()))?;
    let mut response = agent.run(request)?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_HTTP_BODY)
        .read_to_string()
        .unwrap_or_default();
    Ok(HttpResponse::new(status, body))
}

/// Registers every host function on a builder.
pub fn register(builder: extism::PluginBuilder<'static>) -> extism::PluginBuilder<'static> {
    let data = UserData::new(());
    use extism::PTR;
    use rapport_plugin_sdk::host_functions as f;
    builder
        .with_function(f::LOG, [PTR], [], data.clone(), log)
        .with_function(f::SETTING, [PTR], [PTR], data.clone(), setting)
        .with_function(f::STORAGE_GET, [PTR], [PTR], data.clone(), storage_get)
        .with_function(f::STORAGE_SET, [PTR, PTR], [], data.clone(), storage_set)
        .with_function(f::STORAGE_DELETE, [PTR], [], data.clone(), storage_delete)
        .with_function(f::READ_CLIENT, [PTR], [PTR], data.clone(), read_client)
        .with_function(
            f::READ_OPPORTUNITY,
            [PTR],
            [PTR],
            data.clone(),
            read_opportunity,
        )
        .with_function(f::HTTP_REQUEST, [PTR], [PTR], data.clone(), http_request)
        .with_function(f::EMIT, [PTR], [], data.clone(), emit)
}

#[cfg(test)]
mod tests {
    use super::host_approved;

    #[test]
    fn only_approved_hosts_and_ports_pass() {
        let approved = vec!["hooks.slack.com".to_string(), "127.0.0.1:8080".to_string()];
        assert!(host_approved("https://hooks.slack.com/services/x", &approved).is_ok());
        assert!(host_approved("https://HOOKS.slack.com/x", &approved).is_ok());
        assert!(host_approved("http://127.0.0.1:8080/hook", &approved).is_ok());
        assert!(host_approved("https://hooks.slack.com:8443/x", &approved).is_err());
        assert!(host_approved("https://hooks.slack.com.evil.test/x", &approved).is_err());
        assert!(host_approved("http://127.0.0.1:9090/", &approved).is_err());
        assert!(host_approved("file:///etc/passwd", &approved).is_err());
        assert!(host_approved("https://user@evil.test/", &approved).is_err());
    }
}
