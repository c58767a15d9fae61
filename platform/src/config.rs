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
    pub search: SearchConfig,
}

/// Where search lives (`RAPPORT_SEARCH`).
#[derive(Debug, Clone)]
pub enum SearchConfig {
    /// The embedded index under the data directory (the default).
    Embedded,
    /// `RAPPORT_SEARCH=meilisearch` with `MEILI_URL`, `MEILI_MASTER_KEY` and optionally
    /// `RAPPORT_SEARCH_PREFIX` (index names start with it; default `rapport_`).
    Meilisearch {
        url: String,
        key: Option<String>,
        prefix: String,
    },
    /// An index in memory, for tests.
    Memory,
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
        let search = match env("RAPPORT_SEARCH").as_deref() {
            None | Some("embedded") => SearchConfig::Embedded,
            Some("meilisearch") => SearchConfig::Meilisearch {
                url: env("MEILI_URL")
                    .ok_or_else(|| anyhow::anyhow!("RAPPORT_SEARCH=meilisearch needs MEILI_URL"))?,
                key: env("MEILI_MASTER_KEY"),
                prefix: env("RAPPORT_SEARCH_PREFIX").unwrap_or_else(|| "rapport_".into()),
            },
            Some(other) => {
                anyhow::bail!("RAPPORT_SEARCH must be embedded or meilisearch, got {other:?}")
            }
        };
        Ok(Self {
            search,
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
