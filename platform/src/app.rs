//! Builds the actix application: shared state, middleware order, route tables and
//! the extractor configuration that turns bad input into problem+json.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, Error};

use crate::auth::{csrf, policy::Authorizer};
use crate::config::Config;
use crate::db::Pool;
use crate::error::AppError;
use crate::web::{self as http, api, assets, console};

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
        Ok(web::Data::new(Self {
            blobs,
            pool,
            authz,
            config,
            plugins,
            search,
        }))
    }
}

/// Forms posted by the console are small; anything larger is refused.
const FORM_LIMIT: usize = 64 * 1024;

pub fn build(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let json_limit = state.config.json_limit;
    App::new()
        .app_data(state)
        .app_data(
            web::JsonConfig::default()
                .limit(json_limit)
                .error_handler(|err, _| AppError::from(err).into()),
        )
        .app_data(
            web::FormConfig::default()
                .limit(FORM_LIMIT)
                .error_handler(|err, _| {
                    AppError::BadRequest(format!("The form could not be read: {err}")).into()
                }),
        )
        .app_data(web::PayloadConfig::default().limit(FORM_LIMIT.max(json_limit)))
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            AppError::BadRequest(format!("The query string is not valid: {err}")).into()
        }))
        .app_data(web::PathConfig::default().error_handler(|err, _| {
            AppError::BadRequest(format!("The path is not valid: {err}")).into()
        }))
        // Innermost first: CSRF sees the raw request; errors from it and the
        // handlers are rendered by context; the request context wraps it all.
        .wrap(from_fn(csrf::guard))
        .wrap(from_fn(crate::web::refuse_nul))
        .wrap(from_fn(console::render_errors))
        .wrap(from_fn(http::request_context))
        .route("/healthz", web::get().to(http::healthz))
        .route("/readyz", web::get().to(http::readyz))
        .route("/assets/{path:.*}", web::get().to(assets::serve))
        .route(
            "/calendar/{token}.ics",
            web::get().to(api::me::calendar_ics),
        )
        .service(
            web::scope("/api")
                .wrap(from_fn(crate::web::api::precondition))
                .wrap(from_fn(crate::web::idempotency::guard))
                .configure(api::routes),
        )
        .configure(console::routes)
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(AppError::NotFound)
        }))
}
