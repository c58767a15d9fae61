//! Builds the actix application: middleware order, route tables and the extractor
//! configuration that turns bad input into problem+json.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, Error};

use crate::auth::csrf;
use crate::error::AppError;
use crate::state::AppState;
use crate::web::{self as http, api, assets, console};

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
