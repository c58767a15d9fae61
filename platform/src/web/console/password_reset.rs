//! "Forgot your password?": asking for a link by e-mail, and choosing a new password with
//! it. Nobody is signed in here; the pages look like the sign-in page.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::redirect_with_flash;
use crate::auth::{client_ip, csrf, request_id};
use crate::domain::orgs::reset::LINK_EXPIRED;
use crate::error::{AppError, AppResult};
use crate::ops::password_resets as ops;
use crate::state::AppState;
use crate::web::assets;

#[derive(Template)]
#[template(path = "pages/password/forgot.html")]
struct ForgotPasswordPage<'a> {
    title: &'a str,
    csrf: &'a str,
    htmx_path: &'a str,
    htmx_sri: &'a str,
    css_path: &'a str,
    js_path: &'a str,
    email: &'a str,
    /// The inline message next to the e-mail field.
    error: Option<&'a str>,
    /// Shown instead of the form: the request was taken, or cannot be.
    done: Option<&'a str>,
    unavailable: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "pages/password/reset.html")]
struct ResetPasswordPage<'a> {
    title: &'a str,
    csrf: &'a str,
    htmx_path: &'a str,
    htmx_sri: &'a str,
    css_path: &'a str,
    js_path: &'a str,
    token: &'a str,
    /// The link no longer works: the page says so instead of showing the form.
    expired: Option<&'a str>,
    error: Option<&'a str>,
}

fn page(status: StatusCode, body: Result<String, askama::Error>) -> AppResult<HttpResponse> {
    let body = body.map_err(|e| AppError::Internal(format!("template: {e}")))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        // why: the reset page's address holds the token; no cache may keep either page.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

fn forgot_page(
    req: &HttpRequest,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
    done: Option<&str>,
    unavailable: Option<&str>,
) -> AppResult<HttpResponse> {
    let csrf = csrf::token_of(req).unwrap_or_default();
    let p = ForgotPasswordPage {
        title: "Forgot your password?",
        csrf: &csrf,
        htmx_path: assets::HTMX_PATH,
        htmx_sri: assets::HTMX_SRI,
        css_path: &assets::CSS_PATH,
        js_path: &assets::JS_PATH,
        email,
        error,
        done,
        unavailable,
    };
    page(status, p.render())
}

fn reset_page(
    req: &HttpRequest,
    status: StatusCode,
    token: &str,
    expired: Option<&str>,
    error: Option<&str>,
) -> AppResult<HttpResponse> {
    let csrf = csrf::token_of(req).unwrap_or_default();
    let p = ResetPasswordPage {
        title: "Choose a new password",
        csrf: &csrf,
        htmx_path: assets::HTMX_PATH,
        htmx_sri: assets::HTMX_SRI,
        css_path: &assets::CSS_PATH,
        js_path: &assets::JS_PATH,
        token,
        expired,
        error,
    };
    page(status, p.render())
}

/// `GET /password/forgot`.
pub async fn forgot_form(req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let unavailable = state
        .config
        .system_mail
        .is_none()
        .then_some(ops::NO_SYSTEM_MAIL);
    forgot_page(&req, StatusCode::OK, "", None, None, unavailable)
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// `POST /password/forgot`: the same answer whether or not the address has an account.
pub async fn forgot_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<ForgotForm>,
) -> AppResult<HttpResponse> {
    let email = form.into_inner().email;
    let result = ops::request(
        &state.pool,
        state.config.system_mail.as_ref(),
        &crate::config::public_url(&state.config),
        email.clone(),
        client_ip(&req, state.config.trust_proxy),
    )
    .await;
    match result {
        Ok(()) => forgot_page(&req, StatusCode::OK, "", None, Some(ops::REQUESTED), None),
        // why: the page itself works and says what to do instead; a 5xx would read as the
        // server failing (the API answers 503 for programs, which branch on it).
        Err(AppError::NotConfigured(message)) => {
            forgot_page(&req, StatusCode::OK, &email, None, None, Some(&message))
        }
        Err(e @ AppError::Validation(..)) => {
            let message = e.field_errors().first().map(|f| f.message.clone());
            forgot_page(
                &req,
                StatusCode::UNPROCESSABLE_ENTITY,
                &email,
                message.as_deref(),
                None,
                None,
            )
        }
        Err(other) => Err(other),
    }
}

/// `GET /password/reset/{token}`: the form, or why the link no longer works.
pub async fn reset_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> AppResult<HttpResponse> {
    let token = token.into_inner();
    if ops::link_works(&state.pool, token.clone()).await? {
        reset_page(&req, StatusCode::OK, &token, None, None)
    } else {
        reset_page(&req, StatusCode::GONE, &token, Some(LINK_EXPIRED), None)
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
}

/// `POST /password/reset/{token}`: on success, to sign-in with the new password.
pub async fn reset_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<ResetForm>,
) -> AppResult<HttpResponse> {
    let token = token.into_inner();
    let result = ops::redeem(
        &state.pool,
        token.clone(),
        form.into_inner().password,
        client_ip(&req, state.config.trust_proxy),
        request_id(&req),
    )
    .await;
    match result {
        Ok(()) => redirect_with_flash(
            &req,
            "/login",
            "Your password was changed. Sign in with it.",
        ),
        Err(e @ AppError::Validation(..)) => {
            let field = |name: &str| {
                e.field_errors()
                    .iter()
                    .find(|f| f.field == name)
                    .map(|f| f.message.clone())
            };
            let (expired, error) = (field("token"), field("password"));
            reset_page(
                &req,
                StatusCode::UNPROCESSABLE_ENTITY,
                &token,
                expired.as_deref(),
                error.as_deref(),
            )
        }
        Err(other) => Err(other),
    }
}
