//! One typed configuration, read from the environment (and the CLI's flags).

use std::path::PathBuf;

use crate::db::DbTarget;

#[derive(Debug, Clone)]
pub struct Config {
    /// Everything a single-machine install keeps on disk (`RAPPORT_DATA_DIR`, default `./data`).
    pub data_dir: PathBuf,
    pub database: DbTarget,
    /// Listen address (`RAPPORT_ADDR`, default 127.0.0.1:8080).
    pub addr: String,
    /// `RAPPORT_LOG_FORMAT=json` switches logs to JSON lines.
    pub log_json: bool,
    /// `RAPPORT_TRUST_PROXY=true`: take the client address from X-Forwarded-For.
    pub trust_proxy: bool,
    /// Largest JSON request body accepted, in bytes (`RAPPORT_JSON_LIMIT`, default 1 MiB).
    pub json_limit: usize,
    pub pool_size: u32,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let data_dir = PathBuf::from(env("RAPPORT_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database = match env("DATABASE_URL") {
            Some(url) => DbTarget::parse(&url)?,
            None => DbTarget::sqlite_file(&data_dir.join("rapport.db")),
        };
        let json_limit = match env("RAPPORT_JSON_LIMIT") {
            Some(v) => v.parse().map_err(|_| {
                anyhow::anyhow!("RAPPORT_JSON_LIMIT must be a number of bytes, got {v:?}")
            })?,
            None => 1024 * 1024,
        };
        Ok(Self {
            data_dir,
            database,
            addr: env("RAPPORT_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into()),
            log_json: env("RAPPORT_LOG_FORMAT").is_some_and(|v| v.eq_ignore_ascii_case("json")),
            trust_proxy: env("RAPPORT_TRUST_PROXY").is_some_and(|v| v == "true" || v == "1"),
            json_limit,
            pool_size: 16,
        })
    }
}
