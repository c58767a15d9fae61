//! Running plugin code: one Extism instance per installed plugin and organization (so a
//! timeout, which bumps its engine's epoch, can only hit its own calls), with a fuel
//! budget per call as the CPU limit, a memory cap, a wall-clock backstop and an output
//! size limit. An instance that failed is discarded and a fresh one is made from the
//! cached compiled module on the next call (a trap can leave memory in any state).
//! The compiled module's engine is shared only by the successive instances of one slot,
//! and a slot runs one call at a time, so a timeout cannot hit another call.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Instructions one call may execute (a validate hook needs a few thousand).
pub const FUEL_PER_CALL: u64 = 200_000_000;
/// 64 KiB pages: 16 MiB of linear memory at most.
pub const MEMORY_PAGES: u32 = 256;
/// Backstop only: fuel stops runaway code first.
pub const WALL_CLOCK: Duration = Duration::from_secs(3);
/// Largest answer a hook may give.
pub const MAX_OUTPUT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("the plugin could not be loaded: {0}")]
    Load(String),
    #[error("the plugin failed: {0}")]
    Call(String),
    #[error("the plugin's answer is larger than {MAX_OUTPUT} bytes")]
    TooLarge,
    #[error("the plugin's answer is not what the hook promises: {0}")]
    Garbage(String),
    #[error("{0}")]
    Denied(String),
}

/// Who is calling, for host functions: they check grants and tag what they do.
#[derive(Debug, Clone, Default)]
pub struct HostContext {
    pub plugin_id: String,
    pub org_id: String,
    pub granted: Vec<String>,
}

impl HostContext {
    fn require(&self, capability: &str) -> Result<(), extism::Error> {
        if self.granted.iter().any(|g| g == capability) {
            Ok(())
        } else {
            Err(extism::Error::msg(format!(
                "the {capability} {NOT_GRANTED}"
            )))
        }
    }
}

/// How a host function's refusal reads; the runtime recognises it in the call's error.
const NOT_GRANTED: &str = "capability is not granted to this plugin";

/// Longest log line a plugin may write, in characters.
const MAX_LOG_LINE: usize = 2000;

fn host_log(
    plugin: &mut extism::CurrentPlugin,
    inputs: &[extism::Val],
    _outputs: &mut [extism::Val],
    ctx: extism::UserData<HostContext>,
) -> Result<(), extism::Error> {
    let ctx = ctx.get()?;
    let ctx = ctx
        .lock()
        .map_err(|_| extism::Error::msg("host context poisoned"))?;
    ctx.require(rapport_plugin_sdk::capabilities::LOG)?;
    let Some(handle) = inputs.first() else {
        return Err(extism::Error::msg("rapport_log takes a message"));
    };
    let message: String = plugin.memory_get_val(handle)?;
    let message: String = message.chars().take(MAX_LOG_LINE).collect();
    tracing::info!(plugin = %ctx.plugin_id, org = %ctx.org_id, "plugin says: {message}");
    Ok(())
}

fn builder(wasm: &[u8], ctx: &HostContext) -> extism::PluginBuilder<'static> {
    let manifest = extism::Manifest::new([extism::Wasm::data(wasm.to_vec())])
        .with_memory_max(MEMORY_PAGES)
        .with_timeout(WALL_CLOCK);
    extism::PluginBuilder::new(manifest)
        .with_wasi(false)
        .with_fuel_limit(FUEL_PER_CALL)
        .with_cache_disabled()
        .with_function(
            rapport_plugin_sdk::host_functions::LOG,
            [extism::PTR],
            [],
            extism::UserData::new(ctx.clone()),
            host_log,
        )
}

/// Compiles the module (the slow part: ~1 s per MB of wasm).
pub fn compile(wasm: &[u8], ctx: &HostContext) -> Result<extism::CompiledPlugin, PluginError> {
    extism::CompiledPlugin::new(builder(wasm, ctx)).map_err(|e| PluginError::Load(e.to_string()))
}

/// A fresh instance of a compiled module (well under a millisecond).
pub fn instantiate(compiled: &extism::CompiledPlugin) -> Result<extism::Plugin, PluginError> {
    extism::Plugin::new_from_compiled(compiled).map_err(|e| PluginError::Load(e.to_string()))
}

/// Compiles and instantiates in one go (install-time checks, benchmarks).
pub fn build(wasm: &[u8]) -> Result<extism::Plugin, PluginError> {
    instantiate(&compile(wasm, &HostContext::default())?)
}

#[derive(Default)]
struct Warm {
    compiled: Option<extism::CompiledPlugin>,
    instance: Option<extism::Plugin>,
}

type Slot = Arc<Mutex<Warm>>;

/// Call durations kept per install for its health figure.
const TIMINGS_KEPT: usize = 1024;

/// Warm instances, keyed by install id and wasm hash (an upgrade gets a fresh one).
#[derive(Default, Clone)]
pub struct Runtime {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
    /// Recent call durations (µs) per install id, for this process only: health is a
    /// hint for the admin, not worth a write per call.
    timings: Arc<Mutex<HashMap<String, VecDeque<u64>>>>,
}

impl Runtime {
    fn slot(&self, key: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key.to_string()).or_default().clone()
    }

    /// Calls `hook` of the plugin with JSON `input`; returns the plugin's raw answer.
    pub fn call(
        &self,
        key: &str,
        wasm: &[u8],
        ctx: &HostContext,
        hook: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, PluginError> {
        let started = std::time::Instant::now();
        let result = self.call_in_slot(key, wasm, ctx, hook, input);
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let install_id = key.split(':').next().unwrap_or(key).to_string();
        let mut timings = self.timings.lock().unwrap_or_else(|p| p.into_inner());
        let kept = timings.entry(install_id).or_default();
        if kept.len() == TIMINGS_KEPT {
            kept.pop_front();
        }
        kept.push_back(micros);
        result
    }

    /// The 99th percentile of the install's recent call times in this process, in µs.
    pub fn p99_micros(&self, install_id: &str) -> Option<u64> {
        let timings = self.timings.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<u64> = timings.get(install_id)?.iter().copied().collect();
        all.sort_unstable();
        let at = (all.len().saturating_sub(1) * 99) / 100;
        all.get(at).copied()
    }

    fn call_in_slot(
        &self,
        key: &str,
        wasm: &[u8],
        ctx: &HostContext,
        hook: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, PluginError> {
        let slot = self.slot(key);
        let mut warm = slot.lock().unwrap_or_else(|p| p.into_inner());
        if warm.compiled.is_none() {
            warm.compiled = Some(compile(wasm, ctx)?);
        }
        if warm.instance.is_none() {
            let Some(compiled) = warm.compiled.as_ref() else {
                return Err(PluginError::Load("no compiled module".into()));
            };
            warm.instance = Some(instantiate(compiled)?);
        }
        let Some(plugin) = warm.instance.as_mut() else {
            return Err(PluginError::Load("no instance".into()));
        };
        let result = plugin.call::<&[u8], &[u8]>(hook, input).map(<[u8]>::to_vec);
        match result {
            Ok(out) if out.len() > MAX_OUTPUT => {
                warm.instance = None;
                Err(PluginError::TooLarge)
            }
            Ok(out) => Ok(out),
            Err(e) => {
                // why: after a trap, fuel exhaustion or timeout the instance's memory is suspect.
                warm.instance = None;
                let text = format!("{e:#}");
                match text.find(NOT_GRANTED) {
                    Some(at) => {
                        // "the <capability> capability is not granted…", as the host wrote it.
                        let start = text[..at].rfind("the ").unwrap_or(at);
                        Err(PluginError::Denied(format!(
                            "{}{NOT_GRANTED}",
                            &text[start..at]
                        )))
                    }
                    None => Err(PluginError::Call(text)),
                }
            }
        }
    }

    /// Forgets an install's instances (uninstall, upgrade, disable).
    pub fn forget(&self, install_id: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|k, _| !k.starts_with(install_id));
        drop(slots);
        let mut timings = self.timings.lock().unwrap_or_else(|p| p.into_inner());
        timings.remove(install_id);
    }
}
