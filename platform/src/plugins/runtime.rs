//! Running plugin code: one Extism instance per installed plugin and organization (so a
//! timeout, which bumps its engine's epoch, can only hit its own calls), with a fuel
//! budget per call as the CPU limit, a memory cap, a wall-clock backstop and an output
//! size limit. An instance that failed is discarded and rebuilt on the next call, since
//! a trap can leave its memory in any state.

use std::collections::HashMap;
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
}

pub fn build(wasm: &[u8]) -> Result<extism::Plugin, PluginError> {
    let manifest = extism::Manifest::new([extism::Wasm::data(wasm.to_vec())])
        .with_memory_max(MEMORY_PAGES)
        .with_timeout(WALL_CLOCK);
    extism::PluginBuilder::new(manifest)
        .with_wasi(false)
        .with_fuel_limit(FUEL_PER_CALL)
        .with_cache_disabled()
        .build()
        .map_err(|e| PluginError::Load(e.to_string()))
}

type Slot = Arc<Mutex<Option<extism::Plugin>>>;

/// Warm instances, keyed by install id and wasm hash (an upgrade gets a fresh one).
#[derive(Default, Clone)]
pub struct Runtime {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
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
        hook: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, PluginError> {
        let slot = self.slot(key);
        let mut guard = slot.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(build(wasm)?);
        }
        let Some(plugin) = guard.as_mut() else {
            return Err(PluginError::Load("no instance".into()));
        };
        let result = plugin.call::<&[u8], &[u8]>(hook, input).map(<[u8]>::to_vec);
        match result {
            Ok(out) if out.len() > MAX_OUTPUT => {
                *guard = None;
                Err(PluginError::TooLarge)
            }
            Ok(out) => Ok(out),
            Err(e) => {
                // why: after a trap, fuel exhaustion or timeout the instance's memory is suspect.
                *guard = None;
                Err(PluginError::Call(e.to_string()))
            }
        }
    }

    /// Forgets an install's instances (uninstall, upgrade, disable).
    pub fn forget(&self, install_id: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|k, _| !k.starts_with(install_id));
    }
}
