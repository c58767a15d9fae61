//! What every request and worker of one process shares: the pool, the access policy,
//! the configuration, warm plugin instances, the search index and the file store. Built
//! once at start-up; only the entry layers (`web/`, `jobs`, `main`) hold it, and they hand
//! the operations below just the parts they need (`ops::Scope`), so nothing under the
//! web layer depends on it.

use actix_web::web;

use crate::config::Config;
use crate::db::Pool;
use crate::domain::policy::Authorizer;

pub struct AppState {
    pub pool: Pool,
    pub authz: Authorizer,
    pub config: Config,
    /// Warm plugin instances, shared by all workers of this process.
    pub plugins: crate::plugins::runtime::Runtime,
    /// The search index (embedded or Meilisearch), fed by the outbox.
    pub search: crate::search::Index,
    /// Where attachments' bytes live; built once so an S3 store reuses its connections.
    pub blobs: std::sync::Arc<dyn crate::domain::attachments::BlobStore>,
    /// Seals mailbox passwords at rest.
    pub secret: crate::integrations::secret::Key,
}

impl AppState {
    pub async fn new(pool: Pool, config: Config) -> anyhow::Result<web::Data<Self>> {
        let authz = Authorizer::new(pool.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot load the access policy: {e}"))?;
        let plugins = crate::plugins::runtime::Runtime::new(
            pool.clone(),
            Some(&config.data_dir.join("plugin-cache")),
        );
        let search = crate::search::open(&config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the search index: {e}"))?;
        let blobs = crate::domain::attachments::configured_store(&config)
            .map_err(|e| anyhow::anyhow!("cannot open the file store: {e}"))?;
        let secret = crate::integrations::secret::Key::load(&config.data_dir)
            .map_err(|e| anyhow::anyhow!("cannot load the secret key: {e}"))?;
        Ok(web::Data::new(Self {
            secret,
            blobs,
            pool,
            authz,
            config,
            plugins,
            search,
        }))
    }
}
