//! The command line's commands (`rapport serve`, `import`, `seed`, `plugin …`): what each
//! does, apart from parsing its arguments (`main.rs`). One-shot commands open their own
//! pool (migrating first) and act for an organization as the system.

pub mod admin;
pub mod data;
pub mod plugins;
pub mod serve;

use crate::config::Config;
use crate::db::{self, DbConn, Pool};
use crate::domain::orgs::{service, OrganizationRow};
use crate::error::AppError;

pub fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RAPPORT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

/// The pool of a one-shot command (see `db::connect_for_command`).
pub fn open(config: &Config) -> anyhow::Result<Pool> {
    open_pool(db::connect_for_command(&config.database, config.pool_size)?)
}

/// The pool of a server, which keeps a connection ready.
pub fn open_for_serving(config: &Config) -> anyhow::Result<Pool> {
    open_pool(db::connect(&config.database, config.pool_size)?)
}

fn open_pool(pool: Pool) -> anyhow::Result<Pool> {
    let mut conn = pool.get()?;
    let applied = db::migrate(&mut conn)?;
    // One line, not one per migration: a first run applies them all.
    if let (Some(first), Some(last)) = (applied.first(), applied.last()) {
        tracing::info!(count = applied.len(), %first, %last, "applied migrations");
    }
    for m in &applied {
        tracing::debug!(migration = %m, "applied migration");
    }
    Ok(pool)
}

/// Runs `f` on a connection; an error reads as one line for the terminal.
pub fn with_conn<T>(
    pool: &Pool,
    f: impl FnOnce(&mut DbConn) -> Result<T, AppError>,
) -> anyhow::Result<T> {
    let mut conn = pool.get()?;
    f(&mut conn).map_err(|e| match e {
        AppError::Validation(msg, fields) => {
            let detail: Vec<String> = fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect();
            anyhow::anyhow!("{msg} {}", detail.join("; "))
        }
        AppError::NotFound => anyhow::anyhow!("not found"),
        other => anyhow::anyhow!("{other}"),
    })
}

pub fn find_org(pool: &Pool, reference: &str) -> anyhow::Result<OrganizationRow> {
    with_conn(pool, |c| service::find_org(c, reference))
        .map_err(|_| anyhow::anyhow!("no organization with slug or id {reference:?}"))
}
