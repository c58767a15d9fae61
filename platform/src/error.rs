//! One error type for the whole host.
//!
//! Policy: `anyhow` only in `main.rs`, bootstrap and tests; stores return
//! `QueryResult`; services and handlers return [`AppResult`]. An [`AppError`]
//! renders as RFC 9457 problem+json by default; the console's error middleware
//! (`web::console::render_errors`) turns it into a toast for htmx or a full page.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

pub type AppResult<T> = Result<T, AppError>;

/// One field's problem: `field` names it as the request did (`email`, `lines[1].unitPrice`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What people are told while the search index is down.
pub const SEARCH_DOWN: &str = "Search is unavailable right now. Everything else works: changes \
    are kept and become searchable when search is back. Try again shortly.";

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("the request was refused: the CSRF token is missing or does not match")]
    CsrfRejected,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Validation(String, Vec<FieldError>),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    /// A write based on an old version of the record.
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// Over an API token's rate limit: the message and the seconds until it may try again.
    #[error("{0}")]
    RateLimited(String, u64),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Something this installation has not set up (no system mail server, say); the
    /// message, shown as it is, says what to do instead.
    #[error("{0}")]
    NotConfigured(String),
    /// The search index does not answer; everything else still works.
    #[error("search unavailable: {0}")]
    SearchUnavailable(String),
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn forbidden() -> Self {
        Self::Forbidden("You do not have permission to do this.".into())
    }

    pub fn invalid(field: &str, message: &str) -> Self {
        Self::Validation(
            "The submitted data is not valid.".into(),
            vec![FieldError::new(field, message)],
        )
    }

    /// Stable problem `type` slug, title.
    pub fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::NotFound => ("not-found", "Not found"),
            Self::Unauthorized => ("unauthorized", "Authentication required"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::CsrfRejected => ("csrf", "Request refused"),
            Self::BadRequest(_) => ("bad-request", "Bad request"),
            Self::Validation(..) => ("validation", "Validation failed"),
            Self::UnsupportedMediaType(_) => ("unsupported-media-type", "Unsupported media type"),
            Self::PayloadTooLarge(_) => ("payload-too-large", "Payload too large"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::PreconditionFailed(_) => ("precondition-failed", "Precondition failed"),
            Self::Stale(_) => ("stale", "Changed by someone else"),
            Self::TooManyRequests(_) | Self::RateLimited(..) => {
                ("too-many-requests", "Too many requests")
            }
            Self::Unavailable(_) => ("unavailable", "Service unavailable"),
            Self::NotConfigured(_) => ("not-configured", "Not set up on this server"),
            Self::SearchUnavailable(_) => ("search-unavailable", "Search unavailable"),
            Self::Db(e) if crate::db::limit::is_timeout(e) => ("timeout", "Took too long"),
            Self::Db(_) | Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// What a user may be told; internal causes stay in the log.
    pub fn detail(&self) -> String {
        match self {
            Self::NotFound => "The requested resource does not exist.".into(),
            Self::Unauthorized => "Sign in or send a valid API token.".into(),
            Self::Db(e) if crate::db::limit::is_timeout(e) => {
                "The database took too long to answer, so this request was stopped; narrow it \
                 (fewer filters on custom fields, a longer search text) or try again."
                    .into()
            }
            Self::Db(_) | Self::Internal(_) => {
                "Something went wrong on our side; it has been logged.".into()
            }
            Self::Unavailable(_) => {
                "A service Rapport depends on is unavailable; try again shortly.".into()
            }
            Self::SearchUnavailable(_) => SEARCH_DOWN.into(),
            other => other.to_string(),
        }
    }

    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Self::Validation(_, errors) => errors,
            _ => &[],
        }
    }
}

/// An RFC 9457 problem: every API error has this shape (`application/problem+json`).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Problem<'a> {
    /// `/problems/{slug}`, stable per kind of error.
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    /// Present on validation failures (422): one entry per field.
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    #[schema(required = false)]
    errors: &'a [FieldError],
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::CsrfRejected => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(..) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict(_) | Self::Stale(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::TooManyRequests(_) | Self::RateLimited(..) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::SearchUnavailable(_) | Self::NotConfigured(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Db(e) if crate::db::limit::is_timeout(e) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Db(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let (slug, title) = self.kind();
        let body = Problem {
            kind: format!("/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: self.detail(),
            errors: self.field_errors(),
        };
        let mut res = HttpResponse::build(status);
        res.content_type("application/problem+json");
        if matches!(self, Self::Unauthorized) {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        if matches!(self, Self::SearchUnavailable(_)) {
            res.insert_header((header::RETRY_AFTER, "5"));
        }
        if let Self::RateLimited(_, secs) = self {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.body(serde_json::to_string(&body).unwrap_or_default())
    }
}

impl From<actix_web::error::JsonPayloadError> for AppError {
    fn from(err: actix_web::error::JsonPayloadError) -> Self {
        use actix_web::error::JsonPayloadError as E;
        match err {
            E::ContentType => Self::UnsupportedMediaType(
                "Send the request body as JSON with Content-Type: application/json.".into(),
            ),
            E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
                Self::PayloadTooLarge(format!("The request body exceeds the {limit}-byte limit."))
            }
            E::Deserialize(e) if e.is_data() => {
                let msg = e.to_string();
                let field = msg
                    .split('`')
                    .nth(1)
                    .filter(|_| {
                        msg.starts_with("unknown field") || msg.starts_with("missing field")
                    })
                    .unwrap_or("body")
                    .to_string();
                Self::Validation(
                    "The request body does not match the expected shape.".into(),
                    vec![FieldError::new(field, msg)],
                )
            }
            E::Deserialize(e) => {
                Self::BadRequest(format!("The request body is not valid JSON: {e}"))
            }
            other => Self::BadRequest(format!("The request body could not be read: {other}")),
        }
    }
}

impl From<r2d2_error::PoolError> for AppError {
    fn from(err: r2d2_error::PoolError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

mod r2d2_error {
    pub type PoolError = diesel::r2d2::PoolError;
}
