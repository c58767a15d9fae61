//! The signed-in user's own API tokens in the current organization.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{render, render_with_status};
use crate::auth::ConsoleActor;
use crate::db;
use crate::domain::orgs::{service, store};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub struct TokenView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
    /// What the token may do, in words.
    pub scopes: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "partials/account/tokens.html")]
struct TokensPanel {
    csrf: String,
    org_name: String,
    tokens: Vec<TokenView>,
    secret: Option<String>,
    error: Option<String>,
    name: String,
    /// The scopes to choose from, and those ticked.
    choices: Vec<(&'static str, &'static str)>,
    ticked: Vec<String>,
    expires_in: String,
    /// The private calendar feed URL (made on first view).
    calendar_url: String,
}

async fn panel(
    req: &HttpRequest,
    state: &AppState,
    actor: &ConsoleActor,
) -> AppResult<TokensPanel> {
    let (org, user) = (actor.org_id().to_string(), actor.user_id.clone());
    let (rows, feed) = db::run(&state.pool, move |c| {
        Ok((
            store::list_tokens(c, &org, &user)?,
            crate::domain::calendar::token(c, &org, &user)?,
        ))
    })
    .await?;
    let fmt = |t: chrono::NaiveDateTime| actor.local.datetime(t);
    Ok(TokensPanel {
        csrf: actor.csrf.clone(),
        org_name: actor.org.name.clone(),
        tokens: rows
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                prefix: t.token_prefix,
                created: fmt(t.created_at),
                last_used: t.last_used_at.map_or_else(|| "never".to_string(), fmt),
                revoked: t.revoked_at.is_some(),
                scopes: crate::domain::orgs::scopes::parse(&t.scopes)
                    .iter()
                    .map(|s| {
                        crate::domain::orgs::scopes::SCOPES
                            .iter()
                            .find(|(k, _)| k == s)
                            .map(|(_, d)| *d)
                            .unwrap_or("Unknown")
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                expires: t.expires_at.map_or_else(|| "never".to_string(), fmt),
            })
            .collect(),
        secret: None,
        error: None,
        name: String::new(),
        choices: crate::domain::orgs::scopes::SCOPES.to_vec(),
        ticked: vec!["*".into()],
        expires_in: String::new(),
        calendar_url: crate::web::calendar_feed_url(req, &feed),
    })
}

/// `POST /account/calendar-feed`: a new feed URL; the old one stops working.
pub async fn rotate_calendar(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (org, user) = (actor.org_id().to_string(), actor.user_id.clone());
    db::run(&state.pool, move |c| {
        crate::domain::calendar::rotate(c, &org, &user).map(drop)
    })
    .await?;
    super::redirect_with_flash(
        &req,
        "/account/tokens",
        "Your calendar feed has a new address; update your calendar app.",
    )
}

pub async fn tokens(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let p = panel(&req, &state, &actor).await?;
    render(&req, &actor, "API tokens", &p).await
}

/// `POST /account/tokens`: name, scopes (ticked boxes), expiry in days (empty: never).
pub async fn create_token(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let pairs = super::form_pairs(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let ticked: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "scopes")
        .map(|(_, v)| v.clone())
        .collect();
    let expires_in = get("expiresInDays");
    let form_name = get("name");
    let ctx = actor.audit();
    let user = actor.user_id.clone();
    let name = form_name.clone();
    let opts = crate::web::api::tokens::options(
        Some(if ticked.is_empty() {
            vec!["*".into()]
        } else {
            ticked.clone()
        }),
        None,
        expires_in.parse::<i64>().ok(),
        None,
    );
    let result = match opts {
        Ok(opts) => {
            db::run(&state.pool, move |c| {
                service::create_token_with(c, &ctx, &user, &name, opts)
            })
            .await
        }
        Err(e) => Err(e),
    };
    let mut p = panel(&req, &state, &actor).await?;
    match result {
        Ok((_, secret)) => {
            p.secret = Some(secret);
            render(&req, &actor, "API tokens", &p).await
        }
        Err(AppError::Validation(_, errors)) => {
            p.error = errors.first().map(|e| e.message.clone());
            p.name = form_name;
            p.ticked = ticked;
            p.expires_in = expires_in;
            render_with_status(
                &req,
                &actor,
                "API tokens",
                &p,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

pub async fn revoke_token(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let ctx = actor.audit();
    let user = actor.user_id.clone();
    db::run(&state.pool, move |c| {
        service::revoke_token(c, &ctx, &user, &id)
    })
    .await?;
    let p = panel(&req, &state, &actor).await?;
    render(&req, &actor, "API tokens", &p).await
}

#[derive(Template)]
#[template(path = "partials/account/password.html")]
struct PasswordPanel {
    csrf: String,
    done: bool,
    errors: Vec<crate::error::FieldError>,
}

impl PasswordPanel {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

/// `GET /account/password`.
pub async fn password(req: HttpRequest, actor: ConsoleActor) -> AppResult<HttpResponse> {
    let panel = PasswordPanel {
        csrf: actor.csrf.clone(),
        done: false,
        errors: Vec::new(),
    };
    render(&req, &actor, "Password", &panel).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
}

/// `POST /account/password`: changes the signed-in person's password; their other sessions
/// end, this one goes on. A wrong current password or a weak new one is shown inline (422).
pub async fn change_password(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> AppResult<HttpResponse> {
    let ctx = actor.audit();
    let sid = actor.session_id.clone();
    let form = form.into_inner();
    let result = db::run(&state.pool, move |c| {
        service::change_own_password(
            c,
            &ctx,
            Some(&sid),
            &form.current_password,
            &form.new_password,
        )
    })
    .await;
    let (done, errors, status) = match result {
        Ok(()) => (true, Vec::new(), StatusCode::OK),
        Err(AppError::Validation(_, errors)) => (false, errors, StatusCode::UNPROCESSABLE_ENTITY),
        Err(e) => return Err(e),
    };
    let panel = PasswordPanel {
        csrf: actor.csrf.clone(),
        done,
        errors,
    };
    render_with_status(&req, &actor, "Password", &panel, status).await
}

#[derive(Template)]
#[template(path = "partials/account/preferences.html")]
struct PreferencesPanel {
    csrf: String,
    done: bool,
    errors: Vec<crate::error::FieldError>,
    zones: Vec<&'static str>,
    time_zone: String,
    locales: &'static [crate::locale::Locale],
    locale: String,
    sample_now: String,
    sample_money: String,
    week_start: String,
}

impl PreferencesPanel {
    fn new(csrf: &str, local: &crate::locale::Local) -> Self {
        Self {
            csrf: csrf.to_string(),
            done: false,
            errors: Vec::new(),
            zones: crate::locale::zone_names().collect(),
            time_zone: local.zone_name().to_string(),
            locales: &crate::locale::LOCALES,
            locale: local.locale.code.to_string(),
            sample_now: local.datetime(chrono::Utc::now().naive_utc()),
            sample_money: local.money(rust_decimal::Decimal::new(123_456_789, 2), "EUR"),
            week_start: match local.week_start() {
                chrono::Weekday::Sun => "Sunday",
                _ => "Monday",
            }
            .to_string(),
        }
    }

    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

/// `GET /account/preferences`.
pub async fn preferences(req: HttpRequest, actor: ConsoleActor) -> AppResult<HttpResponse> {
    let panel = PreferencesPanel::new(&actor.csrf, &actor.local);
    render(&req, &actor, "Time zone and formats", &panel).await
}

#[derive(Deserialize)]
pub struct PreferencesForm {
    time_zone: String,
    locale: String,
}

/// `POST /account/preferences`: a zone or format not on the lists is shown inline (422)
/// and what was chosen stays selected.
pub async fn save_preferences(
    req: HttpRequest,
    mut actor: ConsoleActor,
    state: web::Data<AppState>,
    form: web::Form<PreferencesForm>,
) -> AppResult<HttpResponse> {
    let ctx = actor.audit();
    let form = form.into_inner();
    let (tz, loc) = (form.time_zone.clone(), form.locale.clone());
    let result = db::run(&state.pool, move |c| {
        service::set_own_preferences(c, &ctx, &tz, &loc)
    })
    .await;
    let (panel, status) = match result {
        Ok(local) => {
            // why: the page around the panel is rendered for this same request, so it
            // shows the new formats at once.
            actor.actor.local = local;
            let mut p = PreferencesPanel::new(&actor.csrf, &local);
            p.done = true;
            (p, StatusCode::OK)
        }
        Err(AppError::Validation(_, errors)) => {
            let mut p = PreferencesPanel::new(&actor.csrf, &actor.local);
            p.errors = errors;
            p.time_zone = form.time_zone;
            p.locale = form.locale;
            (p, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => return Err(e),
    };
    render_with_status(&req, &actor, "Time zone and formats", &panel, status).await
}
