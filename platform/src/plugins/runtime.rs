//! Running plugin code: each installed plugin in each organization has its own compiled
//! module (its own wasmtime engine, so a timeout, which bumps an engine's epoch, can only
//! hit calls of that plugin in that organization) and a small pool of warm instances.
//! Each call gets a fuel budget as the CPU limit, a memory cap, a wall-clock backstop and
//! an output size limit. An instance whose call failed is discarded (a trap can leave its
//! memory in any state); the next call takes a fresh one from the compiled module.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
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
    /// The organization's plugins spent their time budget: not run, not the plugin's fault.
    #[error("{0}")]
    Busy(String),
}

/// Wall time all plugin calls of one organization may take per minute, requests and event
/// hooks together (issue 14: a plugin staying just under its per-call limits halved every
/// other tenant's throughput). Past it, calls are refused until the minute moves on.
pub const ORG_BUDGET: Duration = Duration::from_secs(30);
const ORG_WINDOW: Duration = Duration::from_secs(60);

/// Wall time spent per organization in the last window.
#[derive(Default)]
struct OrgClock {
    spent: HashMap<String, VecDeque<(std::time::Instant, Duration)>>,
}

impl OrgClock {
    fn used(&mut self, org: &str) -> Duration {
        let Some(q) = self.spent.get_mut(org) else {
            return Duration::ZERO;
        };
        while q.front().is_some_and(|(at, _)| at.elapsed() > ORG_WINDOW) {
            q.pop_front();
        }
        q.iter().map(|(_, d)| *d).sum()
    }
}

pub use super::host::HostContext;

fn builder(wasm: &[u8], cache: Option<&Path>) -> extism::PluginBuilder<'static> {
    let manifest = extism::Manifest::new([extism::Wasm::data(wasm.to_vec())])
        .with_memory_max(MEMORY_PAGES)
        .with_timeout(WALL_CLOCK);
    let builder = extism::PluginBuilder::new(manifest)
        .with_wasi(false)
        .with_fuel_limit(FUEL_PER_CALL);
    let builder = match cache {
        Some(config) => builder.with_cache_config(config),
        None => builder.with_cache_disabled(),
    };
    super::host::register(builder)
}

/// Compiles the module (the slow part: ~1 s per MB of wasm, unless wasmtime's on-disk
/// cache, configured by `cache`, already holds it).
pub fn compile(wasm: &[u8], cache: Option<&Path>) -> Result<extism::CompiledPlugin, PluginError> {
    extism::CompiledPlugin::new(builder(wasm, cache)).map_err(|e| PluginError::Load(e.to_string()))
}

/// A fresh instance of a compiled module (well under a millisecond).
pub fn instantiate(compiled: &extism::CompiledPlugin) -> Result<extism::Plugin, PluginError> {
    extism::Plugin::new_from_compiled(compiled).map_err(|e| PluginError::Load(e.to_string()))
}

/// Compiles and instantiates in one go (install-time checks, benchmarks).
pub fn build(wasm: &[u8]) -> Result<extism::Plugin, PluginError> {
    instantiate(&compile(wasm, None)?)
}

/// Instances kept warm per install; more concurrent calls make extra instances that are
/// dropped afterwards.
pub const POOL_SIZE: usize = 4;

/// One install's compiled module and its idle instances. Every instance of a slot shares
/// the compiled module's engine, so a wall-clock timeout can only hit calls of the same
/// plugin in the same organization (and fuel, per store, stops runaway code first).
#[derive(Default)]
struct Slot {
    compiled: Mutex<Option<Arc<extism::CompiledPlugin>>>,
    idle: Mutex<Vec<extism::Plugin>>,
}

/// Call durations kept per install for its health figure.
const TIMINGS_KEPT: usize = 1024;

/// Warm instances, keyed by install id and wasm hash (an upgrade gets a fresh one).
#[derive(Default, Clone)]
pub struct Runtime {
    slots: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
    /// Recent call durations (µs) per install id, for this process only: health is a
    /// hint for the admin, not worth a write per call.
    timings: Arc<Mutex<HashMap<String, VecDeque<u64>>>>,
    /// Database for host functions (storage, records); absent in install checks and benches.
    pool: Option<crate::db::Pool>,
    /// wasmtime's cache configuration file, when compiled code is cached on disk.
    cache_config: Option<PathBuf>,
    /// Wakes the event dispatcher (`plugins::events`) when a change queued events; absent
    /// in install checks and benches, where event hooks run in place.
    wake: Option<std::sync::mpsc::Sender<()>>,
    /// Events handed to this process's workers and not yet done.
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    org_clock: Arc<Mutex<OrgClock>>,
    /// The per-organization budget in ms; 0 means [`ORG_BUDGET`].
    org_budget_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Runtime {
    /// A runtime whose host functions use `pool`, caching compiled code under `cache_dir`
    /// (so a restart does not recompile every plugin).
    pub fn new(pool: crate::db::Pool, cache_dir: Option<&Path>) -> Self {
        let cache_config = cache_dir.and_then(|dir| match write_cache_config(dir) {
            Ok(path) => Some(path),
            Err(e) => {
                tracing::warn!(error = %e, "plugin compile cache disabled");
                None
            }
        });
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let base = Self {
            pool: Some(pool.clone()),
            cache_config,
            ..Self::default()
        };
        // why: the workers' runtime has no `wake`, so the dispatcher stops once every
        // runtime the app holds is dropped (each test app starts its own).
        super::events::spawn(pool, base.clone(), rx, base.in_flight.clone());
        Self {
            wake: Some(tx),
            ..base
        }
    }

    /// A runtime whose wake-ups go to `tx` (tests of who wakes the dispatcher).
    #[cfg(test)]
    pub(crate) fn waking(tx: std::sync::mpsc::Sender<()>) -> Self {
        Self {
            wake: Some(tx),
            ..Self::default()
        }
    }

    /// The database host functions and the event worker use.
    pub fn pool(&self) -> Option<&crate::db::Pool> {
        self.pool.as_ref()
    }

    /// Whether event hooks go through the durable outbox (a database and a dispatcher).
    pub fn has_outbox(&self) -> bool {
        self.wake.is_some() && self.pool.is_some()
    }

    /// Sets the per-organization time budget (tests; operators keep the default).
    pub fn set_org_budget(&self, budget: Duration) {
        self.org_budget_ms.store(
            u64::try_from(budget.as_millis()).unwrap_or(u64::MAX).max(1),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Whether the organization's plugins spent their time for this minute.
    pub fn over_budget(&self, org: &str) -> bool {
        let budget = match self
            .org_budget_ms
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => ORG_BUDGET,
            ms => Duration::from_millis(ms),
        };
        self.org_clock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .used(org)
            >= budget
    }

    /// Tells the dispatcher that events were queued.
    pub fn wake(&self) {
        if let Some(tx) = &self.wake {
            let _ = tx.send(());
        }
    }

    /// Waits until the outbox is empty and no delivery is running (tests, graceful
    /// shutdown); false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let until = std::time::Instant::now() + timeout;
        loop {
            let waiting = match (&self.pool, self.wake.is_some()) {
                (Some(pool), true) => pool
                    .get()
                    .ok()
                    .and_then(|mut c| super::events::waiting(&mut c).ok())
                    .unwrap_or(1),
                _ => 0,
            };
            if waiting == 0 && self.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return true;
            }
            if std::time::Instant::now() > until {
                return false;
            }
            self.wake();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn slot(&self, key: &str) -> Arc<Slot> {
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
        if !ctx.org_id.is_empty() && self.over_budget(&ctx.org_id) {
            return Err(PluginError::Busy(
                "this organization's plugins used their time for this minute; try again shortly"
                    .into(),
            ));
        }
        let started = std::time::Instant::now();
        let result = self.call_in_slot(key, wasm, ctx, hook, input);
        let took = started.elapsed();
        if !ctx.org_id.is_empty() {
            self.org_clock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .spent
                .entry(ctx.org_id.clone())
                .or_default()
                .push_back((std::time::Instant::now(), took));
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
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
        let compiled = {
            let mut compiled = slot.compiled.lock().unwrap_or_else(|p| p.into_inner());
            match compiled.as_ref() {
                Some(c) => c.clone(),
                None => {
                    let c = Arc::new(compile(wasm, self.cache_config.as_deref())?);
                    *compiled = Some(c.clone());
                    c
                }
            }
        };
        let idle = slot.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut plugin = match idle {
            Some(p) => p,
            None => instantiate(&compiled)?,
        };
        let mut ctx = ctx.clone();
        ctx.pool = self.pool.clone();
        ctx.deadline = Some(std::time::Instant::now() + WALL_CLOCK);
        let result = plugin
            .call_with_host_context::<&[u8], &[u8], HostContext>(hook, input, ctx)
            .map(<[u8]>::to_vec);
        let outcome = match result {
            Ok(out) if out.len() > MAX_OUTPUT => Err(PluginError::TooLarge),
            Ok(out) => Ok(out),
            Err(e) => Err(classify(&format!("{e:#}"))),
        };
        // why: after a trap, fuel exhaustion or timeout the instance's memory is suspect,
        // so only instances whose call succeeded go back to the pool.
        if outcome.is_ok() {
            let mut idle = slot.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < POOL_SIZE {
                idle.push(plugin);
            }
        }
        outcome
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

/// Turns a failed call's error text into what the user and the admin see: a host
/// function's refusal reads as the host wrote it, anything else is a plugin failure.
fn classify(text: &str) -> PluginError {
    use super::host::{DENIED_CLOSE, DENIED_OPEN};
    match text.find(DENIED_OPEN) {
        Some(at) => {
            let rest = &text[at + DENIED_OPEN.len()..];
            let end = rest.find(DENIED_CLOSE).unwrap_or(rest.len());
            PluginError::Denied(rest[..end].to_string())
        }
        None => PluginError::Call(summary(text)),
    }
}

/// One line an admin can read: the trap's reason rather than wasmtime's backtrace.
fn summary(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines
        .iter()
        .find(|l| l.contains("trap:") || l.contains("fuel") || l.contains("timeout"))
        .or(lines.first())
        .copied()
        .unwrap_or_default();
    // "0: 0x2989 - <unknown>!<wasm function 43>: wasm trap: …" → "wasm trap: …"
    let line = line.find("wasm trap:").map_or(line, |at| &line[at..]);
    line.chars().take(300).collect()
}

/// Writes wasmtime's cache configuration for `dir` and returns its path. The compiled
/// code goes in `dir/compiled`: wasmtime's cleanup owns that directory and deletes files
/// it does not know, so the configuration file must live beside it, not in it.
pub fn write_cache_config(dir: &Path) -> std::io::Result<PathBuf> {
    let compiled = dir.join("compiled");
    std::fs::create_dir_all(&compiled)?;
    let config = dir.join("wasmtime-cache.toml");
    let text = format!(
        "[cache]\ndirectory = {}\n",
        toml_string(&compiled.display().to_string())
    );
    std::fs::write(&config, text)?;
    Ok(config)
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_trap_reads_as_its_reason() {
        let text = "error while executing at wasm backtrace:\n    0:   0x2989 - <unknown>!<wasm function 43>: wasm trap: wasm `unreachable` instruction executed";
        assert_eq!(
            super::summary(text),
            "wasm trap: wasm `unreachable` instruction executed"
        );
        assert_eq!(
            super::summary("plugin ran out of fuel"),
            "plugin ran out of fuel"
        );
        assert!(matches!(
            super::classify("x ⟪denied: the http capability is not granted to this plugin⟫ y"),
            super::PluginError::Denied(m) if m == "the http capability is not granted to this plugin"
        ));
    }
}
