//! The Webhooks page: subscriptions (URL, events, state), a form to add one (its secret shown
//! once), and each one's page with its delivery log, a test event, replay, secret rotation,
//! switching it off and on, and removal. Reading needs `webhook:read`, the rest
//! `webhook:admin`; the service audits every change.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Map, Value};

use crate::auth::ConsoleActor;
use crate::domain::webhooks::{SubscriptionInput, EVENTS};
use crate::error::{AppError, AppResult};
use crate::ops::webhooks as ops;
use crate::state::AppState;
use crate::web::console::{form_pairs, redirect_with_flash, render_with_status};

pub struct Line {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: String,
    pub active: bool,
    pub disabled_reason: String,
}

#[derive(Default)]
pub struct Form {
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub allow_private: bool,
}

#[derive(Template)]
#[template(path = "partials/admin/webhooks.html")]
struct ListPage {
    lines: Vec<Line>,
    form: Form,
    events: Vec<(&'static str, &'static str)>,
    errors: Vec<String>,
    can_admin: bool,
    /// A subscription just made and its secret, shown this once.
    created: Option<(String, String)>,
}

fn line(s: &crate::domain::webhooks::SubscriptionRow) -> Line {
    Line {
        id: s.id.clone(),
        url: s.url.clone(),
        description: s.description.clone(),
        events: s
            .event_list()
            .iter()
            .map(|e| crate::domain::webhooks::event_label(e))
            .collect::<Vec<_>>()
            .join(", "),
        active: s.active,
        disabled_reason: s.disabled_reason.clone().unwrap_or_default(),
    }
}

async fn list_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    form: Form,
    errors: Vec<String>,
    created: Option<(String, String)>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let lines = ops::list(&scope).await?.iter().map(line).collect();
    let status = if errors.is_empty() {
        actix_web::http::StatusCode::OK
    } else {
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = ListPage {
        lines,
        form,
        events: EVENTS.to_vec(),
        errors,
        can_admin: scope.can("webhook", "admin"),
        created,
    };
    render_with_status(req, actor, "Webhooks", &page, status).await
}

/// `GET /admin/webhooks`
pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    list_page(&req, &actor, &state, Form::default(), vec![], None).await
}

/// `POST /admin/webhooks`: adds one and shows its secret once (no redirect: the secret is
/// never put in a cookie or a URL).
pub async fn create(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let form = Form {
        url: get("url"),
        description: get("description"),
        events: pairs
            .iter()
            .filter(|(k, _)| k == "events")
            .map(|(_, v)| v.clone())
            .collect(),
        allow_private: get("allowPrivateHost") == "1",
    };
    let input = SubscriptionInput {
        url: Some(form.url.clone()),
        description: Some(form.description.clone()),
        events: Some(form.events.clone()),
        active: Some(true),
        allow_private: Some(form.allow_private),
    };
    match ops::create(&scope, input).await {
        Ok((row, secret)) => {
            list_page(
                &req,
                &actor,
                &state,
                Form::default(),
                vec![],
                Some((row.url, secret)),
            )
            .await
        }
        Err(AppError::Validation(_, e)) => {
            let errors = e.into_iter().map(|e| e.message).collect();
            list_page(&req, &actor, &state, form, errors, None).await
        }
        Err(e) => Err(e),
    }
}

pub struct DeliveryLine {
    pub id: String,
    pub event: String,
    pub status: String,
    pub attempts: i32,
    pub response: String,
    pub when: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "partials/admin/webhook.html")]
struct ShowPage {
    s: Line,
    allow_private: bool,
    deliveries: Vec<DeliveryLine>,
    filter: String,
    can_admin: bool,
    secret: String,
}

async fn show_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    id: String,
    secret: String,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let s = ops::get(&scope, id.clone()).await?;
    let pairs = crate::web::query_pairs(req)?;
    let filter = pairs
        .iter()
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty());
    let deliveries = ops::deliveries(&scope, id, filter.clone(), None, None, 100)
        .await?
        .into_iter()
        .map(|d| DeliveryLine {
            response: match (d.response_status, &d.error) {
                (Some(code), _) if (200..300).contains(&code) => format!("{code}"),
                (_, Some(e)) => e.clone(),
                (Some(code), None) => format!("{code}"),
                (None, None) => String::new(),
            },
            when: scope.local.datetime(d.created_at),
            next: if d.status == "pending" && d.attempts > 0 {
                d.next_attempt_at
                    .map(|t| format!("retry {}", scope.local.time(t)))
                    .unwrap_or_default()
            } else {
                String::new()
            },
            id: d.id,
            event: crate::domain::webhooks::event_label(&d.event_type).to_string(),
            status: crate::domain::webhooks::status_label(&d.status).to_string(),
            attempts: d.attempts,
        })
        .collect();
    let page = ShowPage {
        allow_private: s.allow_private,
        s: line(&s),
        deliveries,
        filter: filter.unwrap_or_default(),
        can_admin: scope.can("webhook", "admin"),
        secret,
    };
    render_with_status(
        req,
        actor,
        "Webhook",
        &page,
        actix_web::http::StatusCode::OK,
    )
    .await
}

/// `GET /admin/webhooks/{id}[?status=dead]`
pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    show_page(&req, &actor, &state, id.into_inner(), String::new()).await
}

/// `POST /admin/webhooks/{id}/{action}`: test, rotate, enable, disable, delete, replay
/// (`delivery=` one delivery).
pub async fn action(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (id, action) = path.into_inner();
    let here = format!("/admin/webhooks/{id}");
    let toggle = |on: bool| {
        let mut m = Map::new();
        m.insert("active".into(), Value::Bool(on));
        m
    };
    match action.as_str() {
        "test" => {
            ops::send_test(&scope, id).await?;
            redirect_with_flash(&req, &here, "A test event is on its way.")
        }
        "rotate" => {
            let secret = ops::rotate(&scope, id.clone()).await?;
            show_page(&req, &actor, &state, id, secret).await
        }
        "enable" | "disable" => {
            let on = action == "enable";
            ops::update(&scope, id, ops::input_from(&toggle(on))?).await?;
            redirect_with_flash(
                &req,
                &here,
                if on {
                    "The webhook is on again."
                } else {
                    "The webhook is off: nothing is sent to it."
                },
            )
        }
        "delete" => {
            ops::delete(&scope, id).await?;
            redirect_with_flash(&req, "/admin/webhooks", "The webhook was removed.")
        }
        "replay" => {
            let pairs = form_pairs(&body)?;
            let one = pairs
                .into_iter()
                .find(|(k, _)| k == "delivery")
                .map(|(_, v)| v);
            let n = ops::replay(&scope, id, one, None).await?;
            redirect_with_flash(&req, &here, &format!("{n} delivery queued again."))
        }
        _ => Err(AppError::NotFound),
    }
}
