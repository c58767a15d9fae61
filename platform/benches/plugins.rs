//! Plugin hook overhead: builds the `healthcare` example for wasm32, then prints the
//! compile time per MB of wasm, the time to make a fresh instance from the compiled
//! module (what a failed call costs the next one), and p50/p99 of a `validate` call on a
//! warm instance.
//!
//!   cargo bench -p rapport-platform --bench plugins
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rapport::plugins::{bundle, runtime};

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/healthcare");
    let (path, _) = bundle::pack_dir(&dir, None, None).unwrap();
    let b = bundle::unpack(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let mb = b.wasm.len() as f64 / (1024.0 * 1024.0);

    let mut compiles = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        runtime::build(&b.wasm).unwrap();
        compiles.push(started.elapsed());
    }
    compiles.sort();
    println!(
        "compile: {:.0} KiB module, median {:.1} ms = {:.1} ms per MB",
        b.wasm.len() as f64 / 1024.0,
        compiles[2].as_secs_f64() * 1e3,
        compiles[2].as_secs_f64() * 1e3 / mb
    );

    // A restart with wasmtime's on-disk cache: the first compile fills it, later ones load.
    let cache_dir =
        std::env::temp_dir().join(format!("rapport-bench-cache-{}", std::process::id()));
    let config = runtime::write_cache_config(&cache_dir).unwrap();
    runtime::compile(&b.wasm, Some(&config)).unwrap();
    let mut cached = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        runtime::compile(&b.wasm, Some(&config)).unwrap();
        cached.push(started.elapsed());
    }
    cached.sort();
    let _ = std::fs::remove_dir_all(&cache_dir);
    println!(
        "compile after a restart (on-disk cache): median {:.1} ms",
        cached[2].as_secs_f64() * 1e3
    );

    let compiled = runtime::compile(&b.wasm, None).unwrap();
    let mut fresh = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        runtime::instantiate(&compiled).unwrap();
        fresh.push(started.elapsed());
    }
    fresh.sort();
    println!(
        "fresh instance from the compiled module: median {:.0} µs",
        fresh[100].as_secs_f64() * 1e6
    );

    let rt = runtime::Runtime::default();
    let ctx = runtime::HostContext::default();
    let input = serde_json::to_vec(&rapport_plugin_sdk::ValidateRequest::new(
        "npi",
        "1234567893",
    ))
    .unwrap();
    for _ in 0..200 {
        rt.call("bench", &b.wasm, &ctx, "validate", &input).unwrap();
    }
    let n = 20_000;
    let mut samples: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let out = rt.call("bench", &b.wasm, &ctx, "validate", &input).unwrap();
        samples.push(started.elapsed());
        assert!(!out.is_empty());
    }
    samples.sort();
    let p =
        |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6;
    println!(
        "validate hook, warm instance: n={n} p50={:.1} µs p99={:.1} µs (targets: 30 / 200 µs)",
        p(0.5),
        p(0.99)
    );
}
