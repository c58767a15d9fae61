//! The server-rendered console. Each handler builds the fragment for its area;
//! [`render`] sends just that fragment to htmx and wraps it in the console layout
//! otherwise, so the page and the swap come from the same template and cannot drift.

mod account;
mod admin;
mod calendar;
mod clients;
mod dashboard;
mod developers;
mod duplicates;
mod files;
mod imports;
mod login;
mod mail;
mod notifications;
mod password_reset;
mod reports;
mod sales;
mod search;
mod segments;
mod tasks;
mod timeline;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::Cookie;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::{assets, is_htmx, wants_fragment};
use crate::auth::ConsoleActor;
use crate::error::{AppError, AppResult};

/// A stored enum value as people read it: `read_only` → "Read only", `draft` → "Draft".
/// Templates call it for values that have no label of their own.
pub fn label(value: &str) -> String {
    let words = match value {
        "opportunity" => "deal".to_string(),
        other => other.replace('_', " "),
    };
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(dashboard::show))
        .route("/login", web::get().to(login::form))
        .route("/login", web::post().to(login::submit))
        .route("/logout", web::post().to(login::logout))
        .route(
            "/password/forgot",
            web::get().to(password_reset::forgot_form),
        )
        .route(
            "/password/forgot",
            web::post().to(password_reset::forgot_submit),
        )
        .route(
            "/password/reset/{token}",
            web::get().to(password_reset::reset_form),
        )
        .route(
            "/password/reset/{token}",
            web::post().to(password_reset::reset_submit),
        )
        .route("/switch-org", web::post().to(login::switch_org))
        .route(
            "/invitations/{id}/accept",
            web::post().to(login::accept_invitation),
        )
        .route(
            "/invitations/{id}/decline",
            web::post().to(login::decline_invitation),
        )
        .route("/clients", web::get().to(clients::list))
        .route("/clients", web::post().to(clients::create))
        .route("/clients/new", web::get().to(clients::new_form))
        .route("/clients/lookup", web::get().to(clients::lookup))
        .route("/clients/trash", web::get().to(clients::trash))
        .route("/clients/duplicates", web::get().to(duplicates::groups))
        .route(
            "/clients/duplicates/scan",
            web::post().to(duplicates::request_scan),
        )
        .route("/clients/{id}/merge", web::get().to(duplicates::compare))
        .route("/clients/{id}/merge", web::post().to(duplicates::merge))
        .route("/merges/{id}", web::get().to(duplicates::merged))
        .route(
            "/{parent:clients|opportunities|interactions}/{id}/attachments/upload",
            web::put().to(files::upload),
        )
        .route("/attachments/{id}", web::get().to(files::content))
        .route("/attachments/{id}/delete", web::post().to(files::delete))
        .route("/merges/{id}/undo", web::post().to(duplicates::undo))
        .route("/clients/export.csv", web::get().to(export_clients))
        .route("/clients/export.json", web::get().to(export_clients))
        .route("/clients/export.xlsx", web::get().to(export_clients))
        .route("/exports", web::get().to(exports_page))
        .route(
            "/interactions/export.csv",
            web::get().to(export_interactions),
        )
        .route(
            "/interactions/export.json",
            web::get().to(export_interactions),
        )
        .route("/opportunities/export.csv", web::get().to(export_deals))
        .route("/opportunities/export.xlsx", web::get().to(export_deals))
        .route("/clients/bulk", web::post().to(clients::bulk))
        .route("/clients/views", web::post().to(clients::save_view))
        .route(
            "/clients/views/{id}/delete",
            web::post().to(clients::delete_view),
        )
        .route("/clients/{id}", web::get().to(clients::show))
        .route("/clients/{id}", web::post().to(clients::update))
        .route("/clients/{id}/edit", web::get().to(clients::edit_form))
        .route("/clients/{id}/delete", web::post().to(clients::delete))
        .route("/clients/{id}/restore", web::post().to(clients::restore))
        .route("/clients/{id}/purge", web::post().to(clients::purge))
        .route("/clients/{id}/interactions", web::post().to(timeline::log))
        .route(
            "/opportunities/{id}/timeline",
            web::get().to(timeline::deal_page),
        )
        .route(
            "/opportunities/{id}/interactions",
            web::post().to(timeline::log_deal),
        )
        .route("/interactions/{id}", web::get().to(timeline::item))
        .route("/interactions/{id}", web::post().to(timeline::save))
        .route("/interactions/{id}/edit", web::get().to(timeline::edit))
        .route("/interactions/{id}/done", web::post().to(timeline::done))
        .route(
            "/interactions/{id}/delete",
            web::post().to(timeline::remove),
        )
        .route("/calendar", web::get().to(calendar::page))
        .route("/imports", web::get().to(imports::list))
        .service(
            web::resource("/imports/upload")
                .app_data(web::PayloadConfig::new(
                    crate::domain::imports::read::MAX_FILE + 1024,
                ))
                .route(web::put().to(imports::upload)),
        )
        .route("/imports/{id}", web::get().to(imports::show))
        .route("/imports/{id}/mapping", web::post().to(imports::mapping))
        .route("/imports/{id}/run", web::post().to(imports::run))
        .route("/imports/{id}/revert", web::post().to(imports::revert))
        .service(
            web::resource("/calendar/import")
                .app_data(web::PayloadConfig::new(
                    crate::domain::appointments::MAX_ICS + 1024,
                ))
                .route(web::put().to(calendar::import)),
        )
        .route("/clients/{id}/timeline", web::get().to(timeline::page))
        .route(
            "/clients/{id}/preferences",
            web::post().to(clients::save_preferences),
        )
        .route("/clients/{id}/tags", web::post().to(clients::tag))
        .route("/clients/{id}/relations", web::post().to(clients::relate))
        .route(
            "/clients/{id}/relations/{rel}/delete",
            web::post().to(clients::unrelate),
        )
        .route("/pipeline", web::get().to(sales::board::show))
        .route(
            "/pipeline/column",
            web::get().to(sales::board::column_cards),
        )
        .route("/forecast", web::get().to(sales::forecast::forecast))
        .route(
            "/contracts",
            web::get().to(sales::contracts::contracts_list),
        )
        .route(
            "/contracts",
            web::post().to(sales::contracts::contract_create),
        )
        .route(
            "/contracts/new",
            web::get().to(sales::contracts::contract_new),
        )
        .route(
            "/contracts/{id}",
            web::get().to(sales::contracts::contract_show),
        )
        .route(
            "/contracts/{id}",
            web::post().to(sales::contracts::contract_update),
        )
        .route(
            "/contracts/{id}/document",
            web::get().to(sales::contracts::contract_document),
        )
        .service(
            web::resource("/contracts/{id}/document/upload")
                .app_data(web::PayloadConfig::new(
                    crate::domain::pipeline::contracts::MAX_DOCUMENT + 1024,
                ))
                .route(web::put().to(sales::contracts::contract_upload)),
        )
        .route(
            "/contracts/{id}/renew",
            web::post().to(sales::contracts::contract_renew),
        )
        .route("/performance", web::get().to(sales::forecast::performance))
        .route("/opportunities", web::post().to(sales::form::create))
        .route("/opportunities/new", web::get().to(sales::form::new_form))
        .route("/opportunities/{id}", web::get().to(sales::deal::show))
        .route("/opportunities/{id}", web::post().to(sales::form::update))
        .route(
            "/opportunities/{id}/edit",
            web::get().to(sales::form::edit_form),
        )
        .route(
            "/opportunities/{id}/delete",
            web::post().to(sales::deal::delete),
        )
        .route(
            "/opportunities/{id}/board-move",
            web::post().to(sales::board::move_deal),
        )
        .route(
            "/opportunities/{id}/quotes",
            web::post().to(sales::quotes::create_quote),
        )
        .route(
            "/quotes/{id}/status",
            web::post().to(sales::quotes::quote_status),
        )
        .route("/quotes/{id}/pdf", web::get().to(sales::quotes::quote_pdf))
        .route("/quotes", web::get().to(sales::quotes::list))
        .route("/clients/{id}/scores", web::post().to(clients::rescore))
        .route(
            "/clients/{id}/prevent-churn",
            web::post().to(clients::prevent_churn),
        )
        .route("/reports", web::get().to(reports::index))
        .route("/reports", web::post().to(reports::save))
        .route("/reports/new", web::get().to(reports::new))
        .route("/reports/compose", web::post().to(reports::compose))
        .route("/reports/standard/{type}", web::get().to(reports::standard))
        .route(
            "/reports/standard/{type}/export",
            web::get().to(reports::standard_export),
        )
        .route("/reports/{id}", web::get().to(reports::show))
        .route("/reports/{id}", web::post().to(reports::save))
        .route("/reports/{id}/edit", web::get().to(reports::edit))
        .route("/reports/{id}/export", web::get().to(reports::export))
        .route("/reports/{id}/delete", web::post().to(reports::delete))
        .route("/dashboards", web::post().to(reports::save_dashboard))
        .route("/dashboards/new", web::get().to(reports::new_dashboard))
        .route("/dashboards/{id}", web::get().to(reports::dashboard))
        .route("/dashboards/{id}", web::post().to(reports::save_dashboard))
        .route(
            "/dashboards/{id}/edit",
            web::get().to(reports::edit_dashboard),
        )
        .route(
            "/dashboards/{id}/delete",
            web::post().to(reports::delete_dashboard),
        )
        .route(
            "/dashboards/{id}/schedules",
            web::post().to(reports::schedule),
        )
        .route(
            "/dashboards/{id}/schedules/{schedule}/delete",
            web::post().to(reports::unschedule),
        )
        .route("/segments", web::get().to(segments::list))
        .route("/segments", web::post().to(segments::create))
        .route("/segments/new", web::get().to(segments::new))
        .route("/segments/compose", web::post().to(segments::compose))
        .route("/segments/preview", web::post().to(segments::preview))
        .route("/segments/{id}", web::get().to(segments::show))
        .route("/segments/{id}", web::post().to(segments::update))
        .route("/segments/{id}/delete", web::post().to(segments::delete))
        .route(
            "/segments/{id}/composition",
            web::get().to(segments::composition),
        )
        .route(
            "/segments/{id}/evaluate",
            web::post().to(segments::evaluate),
        )
        .route("/admin/users", web::get().to(admin::users::list))
        .route("/admin/users", web::post().to(admin::users::create))
        .route(
            "/admin/users/invitations/{id}/cancel",
            web::post().to(admin::users::cancel_invitation),
        )
        .route("/admin/users/{id}", web::post().to(admin::users::update))
        .route(
            "/admin/users/{id}/reset-password",
            web::post().to(admin::users::reset_password),
        )
        .route(
            "/admin/permissions",
            web::get().to(admin::permissions::show),
        )
        .route(
            "/admin/permissions",
            web::post().to(admin::permissions::toggle),
        )
        .route("/admin/audit", web::get().to(admin::audit::list))
        .route("/admin/custom-fields", web::get().to(admin::fields::list))
        .route("/admin/custom-fields", web::post().to(admin::fields::save))
        .route(
            "/admin/custom-fields/{id}",
            web::get().to(admin::fields::edit),
        )
        .route(
            "/admin/custom-fields/{id}/archive",
            web::post().to(admin::fields::archive),
        )
        .route(
            "/admin/custom-fields/{id}/restore",
            web::post().to(admin::fields::restore),
        )
        .route(
            "/admin/custom-fields/{id}/move/{dir}",
            web::post().to(admin::fields::move_field),
        )
        .route("/admin/workflows", web::get().to(admin::workflows::list))
        .route("/admin/workflows", web::post().to(admin::workflows::create))
        .route("/admin/workflows/new", web::get().to(admin::workflows::new))
        .route(
            "/admin/workflows/compose",
            web::post().to(admin::workflows::compose),
        )
        .route(
            "/admin/workflows/runs/{id}",
            web::get().to(admin::workflows::run),
        )
        .route(
            "/admin/workflows/{id}",
            web::get().to(admin::workflows::show),
        )
        .route(
            "/admin/workflows/{id}",
            web::post().to(admin::workflows::update),
        )
        .route(
            "/admin/workflows/{id}/{action}",
            web::post().to(admin::workflows::action),
        )
        .route("/admin/webhooks", web::get().to(admin::webhooks::list))
        .route("/admin/webhooks", web::post().to(admin::webhooks::create))
        .route("/admin/webhooks/{id}", web::get().to(admin::webhooks::show))
        .route(
            "/admin/webhooks/{id}/{action}",
            web::post().to(admin::webhooks::action),
        )
        .route("/admin/plugins", web::get().to(admin::plugins::list))
        .service(
            web::resource("/admin/plugins/upload")
                .app_data(web::PayloadConfig::new(crate::web::upload::MAX_BUNDLE))
                .route(web::put().to(admin::plugins::upload)),
        )
        .route("/u/{rid}/{tag}", web::get().to(mail::unsubscribe_page))
        .route("/u/{rid}/{tag}", web::post().to(mail::unsubscribe))
        .route("/t/o/{rid}/{tag}", web::get().to(mail::opened))
        .route("/t/c/{rid}/{tag}", web::get().to(mail::clicked))
        .route("/mail", web::get().to(mail::list))
        .route("/mail/messages/{id}", web::get().to(mail::show))
        .route("/mail/messages/{id}/reply", web::post().to(mail::reply))
        .route("/mail/messages/{id}/resend", web::post().to(mail::resend))
        .route(
            "/mail/messages/{id}/files/{file}",
            web::get().to(mail::message_file),
        )
        .route("/mail/messages/{id}/file", web::post().to(mail::file))
        .route("/mail/templates", web::get().to(mail::templates))
        .route("/mail/templates", web::post().to(mail::save_template))
        .route("/mail/templates/preview", web::post().to(mail::preview))
        .route("/mail/sends", web::get().to(mail::sends))
        .route("/mail/sends", web::post().to(mail::create_send))
        .route("/mail/sends/preview", web::post().to(mail::preview_send))
        .route("/mail/sends/{id}", web::get().to(mail::send_report))
        .route("/mail/sends/{id}/export", web::get().to(mail::export_send))
        .route("/mail/sends/{id}/{action}", web::post().to(mail::act_send))
        .route("/mail/mailboxes", web::get().to(mail::mailboxes))
        .route("/mail/tracking", web::post().to(mail::set_tracking))
        .route("/mail/bounces/clear", web::post().to(mail::clear_bounce))
        .route("/mail/mailboxes", web::post().to(mail::connect))
        .route("/mail/mailboxes/{id}/test", web::post().to(mail::test))
        .route("/mail/mailboxes/{id}/sync", web::post().to(mail::sync))
        .route("/mail/mailboxes/{id}/delete", web::post().to(mail::remove))
        .route("/clients/{id}/email", web::get().to(mail::compose))
        .route("/clients/{id}/email", web::post().to(mail::send))
        .route("/clients/{id}/text", web::get().to(mail::text_form))
        .route("/clients/{id}/text", web::post().to(mail::text_send))
        .route("/tasks", web::get().to(tasks::list))
        .route("/tasks", web::post().to(tasks::create))
        .route("/tasks/{id}/complete", web::post().to(tasks::complete))
        .route("/search", web::get().to(search::page))
        .route("/search/suggest", web::get().to(search::suggest))
        .route("/notifications", web::get().to(notifications::list))
        .route(
            "/notifications/read",
            web::post().to(notifications::read_all),
        )
        .route("/admin/plugins/keys", web::post().to(admin::plugins::keys))
        .route(
            "/admin/plugins/{id}/configure",
            web::post().to(admin::plugins::configure),
        )
        .route(
            "/admin/plugins/{id}/{action}",
            web::post().to(admin::plugins::action),
        )
        .route("/admin/pipelines", web::get().to(admin::pipelines::list))
        .route("/admin/pipelines", web::post().to(admin::pipelines::action))
        .route("/admin/tags", web::get().to(admin::tags::list))
        .route("/admin/tags", web::post().to(admin::tags::save))
        .route(
            "/admin/tags/{id}/delete",
            web::post().to(admin::tags::delete),
        )
        .route("/account/tokens", web::get().to(account::tokens))
        .route("/developers/api", web::get().to(developers::api))
        .route("/account/password", web::get().to(account::password))
        .route("/account/preferences", web::get().to(account::preferences))
        .route(
            "/account/preferences",
            web::post().to(account::save_preferences),
        )
        .route(
            "/account/password",
            web::post().to(account::change_password),
        )
        .route(
            "/account/calendar-feed",
            web::post().to(account::rotate_calendar),
        )
        .route("/account/tokens", web::post().to(account::create_token))
        .route(
            "/account/tokens/{id}/revoke",
            web::post().to(account::revoke_token),
        );
}

pub const FLASH_COOKIE: &str = "rapport_flash";

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub active: bool,
}

pub struct OrgChoice {
    pub id: String,
    pub name: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "layouts/console.html")]
struct ConsolePage<'a> {
    title: &'a str,
    csrf: &'a str,
    htmx_path: &'a str,
    htmx_sri: &'a str,
    css_path: &'a str,
    js_path: &'a str,
    user_name: &'a str,
    user_email: &'a str,
    role_label: &'a str,
    org_name: &'a str,
    orgs: Vec<OrgChoice>,
    nav: Vec<NavItem>,
    flash: Option<String>,
    /// Unread notifications, shown as a badge in the header.
    unread: i64,
    content: String,
}

#[derive(Template)]
#[template(path = "partials/toast.html")]
pub struct Toast<'a> {
    pub kind: &'a str,
    pub message: &'a str,
    /// Out-of-band when it rides along with another fragment.
    pub oob: bool,
}

/// `/clients/export.csv|xlsx|json?<the list's query>`: the list as the reader filtered it.
async fn export_clients(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<crate::state::AppState>,
) -> AppResult<HttpResponse> {
    crate::web::exports::clients(&actor, &state, &req).await
}

async fn export_interactions(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<crate::state::AppState>,
) -> AppResult<HttpResponse> {
    crate::web::exports::interactions(&actor, &state, &req).await
}

#[derive(Template)]
#[template(path = "partials/exports.html")]
struct ExportsPage {
    clients: bool,
    deals: bool,
    interactions: bool,
}

/// Every export the reader may take, in one place (each list also links its own).
async fn exports_page(req: HttpRequest, actor: ConsoleActor) -> AppResult<HttpResponse> {
    let page = ExportsPage {
        clients: actor.can("client", "read").await? && actor.can("client", "export").await?,
        deals: actor.can("opportunity", "read").await?
            && actor.can("opportunity", "export").await?,
        interactions: actor.can("client", "read").await?
            && actor.can("interaction", "read").await?
            && actor.can("interaction", "export").await?,
    };
    render(&req, &actor, "Exports", &page).await
}

async fn export_deals(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<crate::state::AppState>,
) -> AppResult<HttpResponse> {
    crate::web::exports::deals(&actor, &state, &req).await
}

/// A refused upload or action from a script-driven form: its field messages as one toast
/// (the form has no place to show them inline).
pub fn as_toast(e: AppError) -> AppError {
    match e {
        AppError::Validation(_, errs) => AppError::BadRequest(
            errs.iter()
                .map(|e| sentence(&e.message))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        other => other,
    }
}

/// A message standing on its own in a toast: capitalised and ended, since some come from
/// parsers that write them as clauses ("this file is not a Rapport plugin bundle").
fn sentence(message: &str) -> String {
    let message = message.trim();
    let mut chars = message.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.is_empty() && !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A field's error as people read it: the message, led by the field in words when the
/// message does not say what it is about. Never the request's key (`lines[1].unitPrice`
/// reads "Line 2, unit price: …", `rottingDays` "Rotting days: …").
pub fn field_error_in_words(e: &crate::error::FieldError) -> String {
    let mut parts = field_words(&e.field);
    let message = sentence(&e.message);
    let lower = message.to_lowercase();
    if parts
        .last()
        .is_some_and(|last| lower.contains(&last.to_lowercase()))
    {
        parts.pop();
    }
    if parts.is_empty() {
        return message;
    }
    format!("{}: {message}", label(&parts.join(", ")))
}

/// A request key's parts in words: `lines[1].unitPrice` → ["line 2", "unit price"]; the
/// wrappers of query filters (`filter[…][gte]`, `settings.…`) say nothing to people.
fn field_words(field: &str) -> Vec<String> {
    let words = |key: &str| {
        let mut out = String::new();
        for c in key.chars() {
            if c == '_' || c == '-' {
                out.push(' ');
            } else if c.is_uppercase() {
                out.push(' ');
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
        }
        out.trim().to_string()
    };
    let keys: Vec<&str> = field
        .split(['.', '[', ']'])
        .filter(|p| {
            !p.is_empty()
                && !matches!(
                    *p,
                    "filter" | "settings" | "gte" | "lte" | "gt" | "lt" | "eq" | "in"
                )
        })
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < keys.len() {
        match keys.get(i + 1).and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => {
                let many = keys[i];
                out.push(format!(
                    "{} {}",
                    words(many.strip_suffix('s').unwrap_or(many)),
                    n + 1
                ));
                i += 2;
            }
            None => {
                out.push(words(keys[i]));
                i += 1;
            }
        }
    }
    out
}

/// An HTML fragment for htmx (200).
/// A count with its digits grouped by thousands (`12,345`).
pub fn format_count(n: impl std::borrow::Borrow<i64>) -> String {
    let n = *n.borrow();
    let digits = n.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    if n < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

pub fn html_fragment(body: String) -> HttpResponse {
    html(StatusCode::OK, body)
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn render_template(t: &impl Template) -> AppResult<String> {
    t.render()
        .map_err(|e| AppError::Internal(format!("template: {e}")))
}

/// The fragment alone for htmx, the whole console page otherwise.
pub async fn render(
    req: &HttpRequest,
    actor: &ConsoleActor,
    title: &str,
    fragment: &impl Template,
) -> AppResult<HttpResponse> {
    render_with_status(req, actor, title, fragment, StatusCode::OK).await
}

pub async fn render_with_status(
    req: &HttpRequest,
    actor: &ConsoleActor,
    title: &str,
    fragment: &impl Template,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let content = render_template(fragment)?;
    if wants_fragment(req) {
        return Ok(html(status, content));
    }
    let path = req.path();
    let perms = actor.permissions().await?;
    let has = |r: &str, a: &str| perms.iter().any(|(pr, pa)| pr == r && pa == a);
    let query = req.query_string();
    let companies = path == "/clients"
        && (query.contains("type%5D=company") || query.contains("type]=company"));
    let mut nav = vec![NavItem {
        href: "/",
        label: "Dashboard",
        active: path == "/",
    }];
    if has("client", "read") {
        nav.push(NavItem {
            href: "/clients",
            label: "Clients",
            active: path.starts_with("/clients") && !companies,
        });
    }
    if has("client", "read") {
        nav.push(NavItem {
            href: "/clients?filter[type]=company",
            label: "Companies",
            active: companies,
        });
    }
    if has("client", "read") {
        nav.push(NavItem {
            href: "/tasks",
            label: "My tasks",
            active: path.starts_with("/tasks"),
        });
        nav.push(NavItem {
            href: "/calendar",
            label: "Calendar",
            active: path.starts_with("/calendar"),
        });
    }
    if has("message", "read") {
        nav.push(NavItem {
            href: "/mail",
            label: "E-mail",
            active: path.starts_with("/mail"),
        });
    }
    if has("client", "write") && has("client", "delete") {
        nav.push(NavItem {
            href: "/imports",
            label: "Import",
            active: path.starts_with("/imports"),
        });
    }
    if has("opportunity", "read") {
        nav.push(NavItem {
            href: "/pipeline",
            label: "Pipeline",
            active: path.starts_with("/pipeline") || path.starts_with("/opportunities"),
        });
    }
    if has("report", "read") && has("opportunity", "read") {
        nav.push(NavItem {
            href: "/forecast",
            label: "Forecast",
            active: path.starts_with("/forecast"),
        });
        nav.push(NavItem {
            href: "/performance",
            label: "Performance",
            active: path.starts_with("/performance"),
        });
    }
    if has("opportunity", "read") {
        nav.push(NavItem {
            href: "/quotes",
            label: "Quotes",
            active: path.starts_with("/quotes"),
        });
    }
    if has("segment", "read") && has("client", "read") {
        nav.push(NavItem {
            href: "/segments",
            label: "Segments",
            active: path.starts_with("/segments"),
        });
    }
    if has("report", "read") {
        nav.push(NavItem {
            href: "/reports",
            label: "Reports",
            active: path.starts_with("/reports") || path.starts_with("/dashboards"),
        });
    }
    if has("client", "read") {
        nav.push(NavItem {
            href: "/contracts",
            label: "Contracts",
            active: path.starts_with("/contracts"),
        });
    }
    if (has("client", "read") && has("client", "export"))
        || (has("opportunity", "read") && has("opportunity", "export"))
        || (has("interaction", "read") && has("interaction", "export"))
    {
        nav.push(NavItem {
            href: "/exports",
            label: "Exports",
            active: path.starts_with("/exports"),
        });
    }
    if has("pipeline", "write") {
        nav.push(NavItem {
            href: "/admin/pipelines",
            label: "Pipelines",
            active: path.starts_with("/admin/pipelines"),
        });
    }
    if has("plugin", "admin") {
        nav.push(NavItem {
            href: "/admin/plugins",
            label: "Plugins",
            active: path.starts_with("/admin/plugins"),
        });
    }
    if has("workflow", "read") {
        nav.push(NavItem {
            href: "/admin/workflows",
            label: "Workflows",
            active: path.starts_with("/admin/workflows"),
        });
    }
    if has("webhook", "read") {
        nav.push(NavItem {
            href: "/admin/webhooks",
            label: "Webhooks",
            active: path.starts_with("/admin/webhooks"),
        });
    }
    if has("custom_field", "write") {
        nav.push(NavItem {
            href: "/admin/custom-fields",
            label: "Custom fields",
            active: path.starts_with("/admin/custom-fields"),
        });
    }
    if has("tag", "admin") {
        nav.push(NavItem {
            href: "/admin/tags",
            label: "Tags",
            active: path.starts_with("/admin/tags"),
        });
    }
    if has("user", "admin") {
        nav.push(NavItem {
            href: "/admin/users",
            label: "Users",
            active: path.starts_with("/admin/users"),
        });
    }
    if has("policy", "read") {
        nav.push(NavItem {
            href: "/admin/permissions",
            label: "Permissions",
            active: path.starts_with("/admin/permissions"),
        });
    }
    if has("audit", "read") {
        nav.push(NavItem {
            href: "/admin/audit",
            label: "Audit log",
            active: path.starts_with("/admin/audit"),
        });
    }
    nav.push(NavItem {
        href: "/account/tokens",
        label: "API tokens",
        active: path.starts_with("/account/tokens"),
    });
    nav.push(NavItem {
        href: "/developers/api",
        label: "API reference",
        active: path.starts_with("/developers"),
    });
    nav.push(NavItem {
        href: "/account/password",
        label: "Password",
        active: path.starts_with("/account/password"),
    });
    nav.push(NavItem {
        href: "/account/preferences",
        label: "Time zone and formats",
        active: path.starts_with("/account/preferences"),
    });
    let flash = read_flash(req);
    let (org, user) = (actor.org.id.clone(), actor.user_id.clone());
    let pool = req
        .app_data::<web::Data<crate::state::AppState>>()
        .map(|s| s.pool.clone())
        .ok_or_else(|| AppError::Internal("no application state".into()))?;
    let unread = crate::db::run(&pool, move |c| {
        Ok(crate::domain::notifications::unread_count(c, &org, &user)?)
    })
    .await?;
    let page = ConsolePage {
        unread,
        title,
        csrf: &actor.csrf,
        htmx_path: assets::HTMX_PATH,
        htmx_sri: assets::HTMX_SRI,
        css_path: &assets::CSS_PATH,
        js_path: &assets::JS_PATH,
        user_name: &actor.name,
        user_email: &actor.email,
        role_label: actor.role.label(),
        org_name: &actor.org.name,
        orgs: actor
            .orgs
            .iter()
            .map(|(o, _)| OrgChoice {
                id: o.id.clone(),
                name: o.name.clone(),
                current: o.id == actor.org.id,
            })
            .collect(),
        nav,
        flash: flash.clone(),
        content,
    };
    let mut res = html(status, render_template(&page)?);
    if flash.is_some() {
        let mut gone = Cookie::build(FLASH_COOKIE, "").path("/").finish();
        gone.make_removal();
        res.add_cookie(&gone)
            .map_err(|e| AppError::Internal(e.to_string()))?;
    }
    Ok(res)
}

/// The message a redirect left for this page, if any.
pub fn read_flash(req: &HttpRequest) -> Option<String> {
    req.cookie(FLASH_COOKIE)
        .and_then(|c| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("m={}", c.value())).ok()
        })
        .and_then(|mut v| v.pop())
        .map(|(_, m)| m)
        .filter(|v| !v.is_empty())
}

/// A message for the next full page (after a redirect). Form-encoded: a cookie header must
/// stay ASCII, and messages quote names in any language.
pub fn flash_cookie(message: &str) -> Cookie<'static> {
    let encoded = serde_urlencoded::to_string([("m", message)]).unwrap_or_default();
    Cookie::build(
        FLASH_COOKIE,
        encoded.strip_prefix("m=").unwrap_or_default().to_string(),
    )
    .path("/")
    .http_only(true)
    .finish()
}

/// A redirect that shows `message` as a toast on the next page.
pub fn redirect_with_flash(req: &HttpRequest, to: &str, message: &str) -> AppResult<HttpResponse> {
    let mut res = redirect(req, to);
    res.add_cookie(&flash_cookie(message))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(res)
}

/// After a successful form post: htmx follows `HX-Redirect`, a browser a 303.
pub fn redirect(req: &HttpRequest, to: &str) -> HttpResponse {
    if is_htmx(req) {
        HttpResponse::Ok()
            .insert_header(("HX-Redirect", to.to_string()))
            .finish()
    } else {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, to.to_string()))
            .finish()
    }
}

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    csrf: &'a str,
    htmx_path: &'a str,
    htmx_sri: &'a str,
    css_path: &'a str,
    js_path: &'a str,
    status: u16,
    detail: &'a str,
}

/// Turns an [`AppError`] from a console route into what a person should see: a
/// toast for htmx (retargeted, since the swap target expected content), a redirect
/// to sign-in when the session is gone, a full error page otherwise.
pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let path = req.path().to_string();
    if path.starts_with("/api") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let res = next.call(req).await?;
    let Some(err) = res
        .response()
        .error()
        .and_then(|e| e.as_error::<AppError>())
    else {
        return Ok(res.map_into_boxed_body());
    };
    let status = err.status_code();
    let unauthorized = matches!(err, AppError::Unauthorized);
    let (_, title) = err.kind();
    let mut detail = err.detail();
    for fe in err.field_errors() {
        detail.push(' ');
        detail.push_str(&field_error_in_words(fe));
    }
    let (req, _) = res.into_parts();
    let htmx = is_htmx(&req);
    let response = if unauthorized {
        if htmx {
            HttpResponse::Unauthorized()
                .insert_header(("HX-Redirect", "/login"))
                .finish()
        } else {
            let next_path = if req.method() == actix_web::http::Method::GET {
                path.as_str()
            } else {
                "/"
            };
            let to = format!("/login?next={}", url_escape(next_path));
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .finish()
        }
    } else if htmx {
        let toast = Toast {
            kind: "error",
            message: &detail,
            oob: false,
        };
        match render_template(&toast) {
            Ok(body) => HttpResponse::build(status)
                .content_type("text/html; charset=utf-8")
                .insert_header(("HX-Retarget", "#toasts"))
                .insert_header(("HX-Reswap", "beforeend"))
                .body(body),
            Err(e) => e.error_response(),
        }
    } else {
        let page = ErrorPage {
            title,
            csrf: "",
            htmx_path: assets::HTMX_PATH,
            htmx_sri: assets::HTMX_SRI,
            css_path: &assets::CSS_PATH,
            js_path: &assets::JS_PATH,
            status: status.as_u16(),
            detail: &detail,
        };
        match render_template(&page) {
            Ok(body) => html(status, body),
            Err(e) => e.error_response(),
        }
    };
    Ok(ServiceResponse::new(req, response))
}

fn url_escape(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|s| s.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// A posted `application/x-www-form-urlencoded` body as (name, value) pairs; an unreadable
/// body is a 400 with the reason.
/// A form field's value, trimmed; empty when the form has no such field.
pub fn form_value(pairs: &[(String, String)], k: &str) -> String {
    pairs
        .iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

pub fn form_pairs(body: &[u8]) -> AppResult<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))
}
