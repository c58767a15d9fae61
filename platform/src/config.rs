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
    /// Largest uploaded file, in bytes (`RAPPORT_MAX_UPLOAD_MB`, default 25).
    pub max_upload_bytes: usize,
    /// Where attachments' bytes live (`RAPPORT_BLOB_STORE`).
    pub blob_store: BlobConfig,
    /// The installation's own mail server (`RAPPORT_SMTP_HOST` and its settings), for mail
    /// that belongs to no organization: password reset links. None: such mail is not sent.
    pub system_mail: Option<SystemMail>,
}

/// How the installation sends its own mail. Never an organization's shared mailbox: what is
/// sent there is kept in its Sent folder, where every member who reads it would find the
/// link that resets someone else's password.
#[derive(Clone)]
pub struct SystemMail {
    /// `RAPPORT_SMTP_HOST`, `RAPPORT_SMTP_PORT` (default 587) and `RAPPORT_SMTP_SECURITY`
    /// (`tls`, `starttls` or `none`; default `starttls`).
    pub server: crate::integrations::mail::Server,
    /// `RAPPORT_SMTP_USERNAME` and `RAPPORT_SMTP_PASSWORD`; an empty user name submits
    /// without signing in (a relay on the same machine).
    pub login: crate::integrations::mail::Login,
    /// `RAPPORT_MAIL_FROM`, e.g. `Rapport <noreply@crm.example.com>`.
    pub from: String,
}

// why: by hand, so a logged configuration never shows the SMTP password.
impl std::fmt::Debug for SystemMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemMail")
            .field("server", &self.server)
            .field("username", &self.login.username)
            .field("password", &"<redacted>")
            .field("from", &self.from)
            .finish()
    }
}

impl SystemMail {
    fn from_env() -> anyhow::Result<Option<Self>> {
        use crate::integrations::mail::{Login, Security, Server};
        let Some(host) = env("RAPPORT_SMTP_HOST") else {
            return Ok(None);
        };
        let port = match env("RAPPORT_SMTP_PORT") {
            Some(v) => v.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                anyhow::anyhow!(
                    "RAPPORT_SMTP_PORT must be a port number from 1 to 65535, got {v:?}"
                )
            })?,
            None => 587,
        };
        let security = match env("RAPPORT_SMTP_SECURITY") {
            Some(v) => Security::parse(&v).ok_or_else(|| {
                anyhow::anyhow!(
                    "RAPPORT_SMTP_SECURITY must be one of {}, got {v:?}",
                    Security::ALL.join(", ")
                )
            })?,
            None => Security::StartTls,
        };
        let username = env("RAPPORT_SMTP_USERNAME").unwrap_or_default();
        let password = std::env::var("RAPPORT_SMTP_PASSWORD").unwrap_or_default();
        if !username.is_empty() && password.is_empty() {
            anyhow::bail!("RAPPORT_SMTP_USERNAME is set, so RAPPORT_SMTP_PASSWORD is needed too");
        }
        let from = env("RAPPORT_MAIL_FROM").ok_or_else(|| {
            anyhow::anyhow!(
                "RAPPORT_SMTP_HOST is set, so RAPPORT_MAIL_FROM is needed too: the address \
                 Rapport's own mail (password reset links) comes from, e.g. \
                 \"Rapport <noreply@crm.example.com>\""
            )
        })?;
        // why: the reset link is built from the public address; without it the link would
        // name the listening socket (`http://0.0.0.0:8080/…`), which nobody can open.
        if env("RAPPORT_PUBLIC_URL").is_none() {
            anyhow::bail!(
                "RAPPORT_SMTP_HOST is set, so RAPPORT_PUBLIC_URL is needed too: the address \
                 people open Rapport at (the password reset link points there), e.g. \
                 https://crm.example.com"
            );
        }
        if from.parse::<lettre::message::Mailbox>().is_err() {
            anyhow::bail!(
                "RAPPORT_MAIL_FROM must be an e-mail address, optionally with a name \
                 (\"Rapport <noreply@crm.example.com>\"), got {from:?}"
            );
        }
        Ok(Some(Self {
            server: Server {
                host,
                port,
                security,
            },
            login: Login { username, password },
            from,
        }))
    }
}

/// Where attachments' bytes live.
#[derive(Debug, Clone, Default)]
pub enum BlobConfig {
    /// `<data dir>/attachments` (the default).
    #[default]
    Local,
    /// `RAPPORT_BLOB_STORE=s3` with `RAPPORT_S3_ENDPOINT`, `RAPPORT_S3_BUCKET`,
    /// `RAPPORT_S3_ACCESS_KEY`, `RAPPORT_S3_SECRET_KEY`, optionally `RAPPORT_S3_REGION`
    /// (default `us-east-1`) and `RAPPORT_S3_PREFIX` (default `attachments/`).
    S3(S3Config),
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
        // why: a process-wide setting read by every pooled connection as it opens, so it
        // is applied here rather than carried in the config.
        if let Some(v) = env("RAPPORT_STATEMENT_TIMEOUT_MS") {
            match v.parse::<u64>() {
                Ok(ms) if (100..=600_000).contains(&ms) => {
                    crate::db::limit::set_budget(std::time::Duration::from_millis(ms))
                }
                _ => anyhow::bail!(
                    "RAPPORT_STATEMENT_TIMEOUT_MS must be milliseconds from 100 to 600000, got {v:?}"
                ),
            }
        }
        let json_limit = match env("RAPPORT_JSON_LIMIT") {
            Some(v) => v.parse().map_err(|_| {
                anyhow::anyhow!("RAPPORT_JSON_LIMIT must be a number of bytes, got {v:?}")
            })?,
            None => 1024 * 1024,
        };
        let max_upload_bytes = match env("RAPPORT_MAX_UPLOAD_MB") {
            Some(v) => match v.parse::<usize>() {
                Ok(mb) if (1..=4096).contains(&mb) => mb * 1024 * 1024,
                _ => anyhow::bail!(
                    "RAPPORT_MAX_UPLOAD_MB must be a whole number of megabytes from 1 to 4096, got {v:?}"
                ),
            },
            None => DEFAULT_MAX_BYTES,
        };
        let blob_store = match env("RAPPORT_BLOB_STORE").as_deref() {
            None | Some("local") => BlobConfig::Local,
            Some("s3") => {
                let need = |k: &str| {
                    env(k).ok_or_else(|| anyhow::anyhow!("RAPPORT_BLOB_STORE=s3 needs {k}"))
                };
                BlobConfig::S3(S3Config {
                    endpoint: need("RAPPORT_S3_ENDPOINT")?,
                    bucket: need("RAPPORT_S3_BUCKET")?,
                    region: env("RAPPORT_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                    access_key: need("RAPPORT_S3_ACCESS_KEY")?,
                    secret_key: need("RAPPORT_S3_SECRET_KEY")?,
                    prefix: env("RAPPORT_S3_PREFIX").unwrap_or_else(|| "attachments/".into()),
                })
            }
            Some(other) => anyhow::bail!("RAPPORT_BLOB_STORE must be local or s3, got {other:?}"),
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
            max_upload_bytes,
            blob_store,
            system_mail: SystemMail::from_env()?,
        })
    }
}

/// Largest attachment by default, in bytes (`RAPPORT_MAX_UPLOAD_MB` changes it).
pub const DEFAULT_MAX_BYTES: usize = 25 * 1024 * 1024;

/// `RAPPORT_BLOB_STORE=s3` and its settings.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `RAPPORT_S3_ENDPOINT`, e.g. `https://s3.eu-west-1.amazonaws.com` or `http://minio:9000`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// Keys start with this (`RAPPORT_S3_PREFIX`, default `attachments/`).
    pub prefix: String,
}

/// Where people reach this install from outside (`RAPPORT_PUBLIC_URL`, e.g.
/// `https://crm.example.com`; default `http://<listen address>`): the base of links that
/// leave in e-mail (unsubscribe, tracking).
pub fn public_url(config: &Config) -> String {
    env("RAPPORT_PUBLIC_URL")
        .unwrap_or_else(|| format!("http://{}", config.addr))
        .trim_end_matches('/')
        .to_string()
}
