//! Sign-in, sign-out and the organization switcher.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{flash_cookie, redirect, redirect_with_flash};
use crate::auth::session::{self, expired_cookie, SignInAttempt, SESSION_COOKIE};
use crate::auth::{client_ip, csrf, request_id, ConsoleActor};
use crate::db;
use crate::domain::orgs::password::sha256_hex;
use crate::domain::orgs::{service, store};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::assets;

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage<'a> {
    title: &'a str,
    csrf: &'a str,
    htmx_path: &'a str,
    htmx_sri: &'a str,
    css_path: &'a str,
    js_path: &'a str,
    email: &'a str,
    next: &'a str,
    error: Option<&'a str>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only same-site paths, so a crafted link cannot send a user elsewhere after sign-in.
/// Where to go after sign-in: a path on this site, or `/`. Browsers drop tabs and newlines
/// from URLs and read `\\` as `/`, so `/\t/evil.example` would leave the site; any control
/// character, whitespace or backslash refuses the value, and what remains must parse as a
/// path on our own origin.
pub fn safe_next(next: Option<&str>) -> &str {
    let Some(n) = next else { return "/" };
    let clean = n.starts_with('/')
        && n.len() <= 2048
        && !n
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        && !n.starts_with("//");
    let same_origin = clean
        && url::Url::parse("https://rapport.invalid/")
            .and_then(|base| base.join(n))
            .is_ok_and(|u| u.host_str() == Some("rapport.invalid") && u.scheme() == "https");
    if same_origin {
        n
    } else {
        "/"
    }
}

fn login_page(
    req: &HttpRequest,
    email: &str,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let csrf = csrf::token_of(req).unwrap_or_default();
    let notice = super::read_flash(req);
    let page = LoginPage {
        title: "Sign in",
        csrf: &csrf,
        htmx_path: assets::HTMX_PATH,
        htmx_sri: assets::HTMX_SRI,
        css_path: &assets::CSS_PATH,
        js_path: &assets::JS_PATH,
        email,
        next,
        error,
        notice: notice.clone().filter(|n| !n.is_empty()),
    };
    let body = page
        .render()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut res = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body);
    if notice.is_some() {
        let mut gone = actix_web::cookie::Cookie::build(super::FLASH_COOKIE, "")
            .path("/")
            .finish();
        gone.make_removal();
        res.add_cookie(&gone)
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    Ok(res)
}

pub async fn form(
    req: HttpRequest,
    query: web::Query<NextQuery>,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    if let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) {
        let id = sha256_hex(&token);
        if db::run(&state.pool, move |c| session::load(c, &id))
            .await?
            .is_some()
        {
            return Ok(redirect(&req, safe_next(query.next.as_deref())));
        }
    }
    login_page(
        &req,
        "",
        safe_next(query.next.as_deref()),
        None,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref()).to_string();
    let ip = client_ip(&req, state.config.trust_proxy);
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let previous = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
    let rid = request_id(&req);
    let (email, password) = (form.email.clone(), form.password.clone());
    let result = db::run(&state.pool, move |c| {
        session::sign_in(
            c,
            SignInAttempt {
                email: &email,
                password: &password,
                ip: &ip,
                user_agent: &user_agent,
                previous_session: previous,
                request_id: &rid,
            },
        )
    })
    .await;
    match result {
        Ok(signed_in) => {
            tracing::info!(user = %signed_in.user.id, org = %signed_in.org.id, "signed in");
            let secure = crate::web::request_is_https(&req);
            // why: the CSRF middleware sets the rotated token's cookie on the way out.
            csrf::rotate(&req);
            let mut res = redirect(&req, &next);
            res.add_cookie(&session::session_cookie(&signed_in.token, secure))
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok(res)
        }
        Err(AppError::Validation(message, _)) => login_page(
            &req,
            &form.email,
            &next,
            Some(&message),
            StatusCode::UNAUTHORIZED,
        ),
        Err(AppError::TooManyRequests(message)) => login_page(
            &req,
            &form.email,
            &next,
            Some(&message),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(other) => Err(other),
    }
}

pub async fn logout(req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    if let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()) {
        let id = sha256_hex(&token);
        db::run(&state.pool, move |c| Ok(store::delete_session(c, &id)?)).await?;
    }
    let mut res = redirect(&req, "/login");
    res.add_cookie(&expired_cookie(SESSION_COOKIE))
        .and_then(|_| res.add_cookie(&flash_cookie("You have signed out.")))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(res)
}

#[derive(Deserialize)]
pub struct SwitchForm {
    organization_id: String,
}

pub async fn switch_org(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    form: web::Form<SwitchForm>,
) -> AppResult<HttpResponse> {
    let (sid, uid) = (actor.session_id.clone(), actor.user_id.clone());
    let org = db::run(&state.pool, move |c| {
        service::switch_org(c, &sid, &uid, &form.organization_id)
    })
    .await?;
    redirect_with_flash(&req, "/", &format!("You are now working in {}.", org.name))
}

/// `POST /invitations/{id}/accept`: joins the organization and switches to it.
pub async fn accept_invitation(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let (sid, uid, email) = (
        actor.session_id.clone(),
        actor.user_id.clone(),
        actor.email.clone(),
    );
    let org = db::run(&state.pool, move |c| {
        let org = service::accept_invitation(c, &uid, &email, &id)?;
        service::switch_org(c, &sid, &uid, &org.id)
    })
    .await?;
    redirect_with_flash(
        &req,
        "/",
        &format!("You joined {} and are now working there.", org.name),
    )
}

/// `POST /invitations/{id}/decline`.
pub async fn decline_invitation(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let uid = actor.user_id.clone();
    db::run(&state.pool, move |c| {
        service::decline_invitation(c, &uid, &id)
    })
    .await?;
    redirect_with_flash(&req, "/", "The invitation was declined.")
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/clients?page=2")), "/clients?page=2");
        for hostile in [
            "//evil.example/",
            "/\t/evil.example/",
            "/\n/evil.example/",
            "/\\evil.example",
            "/ /evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/\r\nSet-Cookie: x=1",
        ] {
            assert_eq!(
                safe_next(Some(hostile)),
                "/",
                "{hostile:?} must not be followed"
            );
        }
    }
}
