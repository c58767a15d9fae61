//! What the load benches share: a fresh database (a temp SQLite file, or a throw-away
//! schema when `BENCH_DATABASE_URL` names PostgreSQL), migrated, and an app configuration.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use rapport::config::Config;
use rapport::db::{self, DbTarget, Pool};

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// The bench's database target; dropping it removes the temp directory (the SQLite file and
/// blobs) and the PostgreSQL schema.
///
/// why: a bench at 1M clients leaves gigabytes behind, and leftovers from a few runs once
/// filled the disk under CI. `BENCH_KEEP=1` keeps them for a look afterwards.
pub struct Scratch {
    target: DbTarget,
    dir: PathBuf,
    schema: Option<(String, String)>,
}

impl std::ops::Deref for Scratch {
    type Target = DbTarget;
    fn deref(&self) -> &DbTarget {
        &self.target
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1") {
            eprintln!("kept {} (BENCH_KEEP=1)", self.dir.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((base, schema)) = &self.schema {
            if let Ok(mut admin) = diesel::PgConnection::establish(base) {
                let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// The PostgreSQL URL `base` with `schema` as the search path.
fn schema_url(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3D{schema}")
}

fn config_for(dir: &std::path::Path, target: &DbTarget, pool_size: u32) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        database: target.clone(),
        addr: "127.0.0.1:0".into(),
        log_json: false,
        trust_proxy: false,
        json_limit: 1 << 20,
        pool_size,
        search: rapport::config::SearchConfig::Memory,
        max_upload_bytes: rapport::domain::attachments::DEFAULT_MAX_BYTES,
        blob_store: Default::default(),
        system_mail: None,
    }
}

/// A fresh, migrated database for the bench `name`, its pool and its data directory.
/// Keep the first value alive until the bench ends: dropping it removes the database.
pub fn fresh(name: &str, pool_size: u32) -> (Scratch, Pool, Config) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("rapport-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut scratch_schema = None;
    let url = match std::env::var("BENCH_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            // BENCH_REUSE=<schema> measures again on a database a BENCH_KEEP=1 run left
            // (the seed of 1M clients takes minutes); it is neither emptied nor dropped.
            let reuse = std::env::var("BENCH_REUSE")
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            if !reuse.is_empty() {
                std::env::set_var("BENCH_KEEP", "1");
                return finish(dir, schema_url(&base, &reuse), None, pool_size);
            }
            let schema = format!("bench_{name}_{}", std::process::id());
            let mut admin = diesel::PgConnection::establish(&base).unwrap();
            admin
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
                ))
                .unwrap();
            let url = schema_url(&base, &schema);
            scratch_schema = Some((base, schema));
            url
        }
        // On SQLite BENCH_REUSE names the database file a BENCH_KEEP=1 run left.
        _ => match std::env::var("BENCH_REUSE") {
            Ok(file) if !file.trim().is_empty() => {
                std::env::set_var("BENCH_KEEP", "1");
                format!("sqlite://{}", file.trim())
            }
            _ => format!("sqlite://{}", dir.join(format!("{name}.db")).display()),
        },
    };
    finish(dir, url, scratch_schema, pool_size)
}

/// Connects to `url`, migrates, and wraps it in its scratch.
fn finish(
    dir: PathBuf,
    url: String,
    schema: Option<(String, String)>,
    pool_size: u32,
) -> (Scratch, Pool, Config) {
    let target = DbTarget::parse(&url).unwrap();
    let pool = db::connect(&target, pool_size).unwrap();
    db::migrate(&mut pool.get().unwrap()).unwrap();
    let config = config_for(&dir, &target, pool_size);
    let scratch = Scratch {
        target,
        dir,
        schema,
    };
    (scratch, pool, config)
}
