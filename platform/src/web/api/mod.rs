//! The JSON API under `/api`: camelCase bodies, the list envelope, problem+json
//! errors, ETags. One file per resource; handlers authorize, call a service, respond.

pub mod attachments;
mod audit;
pub mod clients;
mod custom_fields;
pub mod duplicates;
pub mod imports;
pub mod interactions;
mod mail;
pub mod me;
pub mod openapi;
mod password_resets;
pub mod plugins;
mod policies;
pub mod reports;
pub mod sales;
mod scores;
pub mod search;
mod segments;
mod tags;
pub mod tokens;
mod users;
mod webhooks;
mod workflows;

use std::collections::HashMap;

use actix_web::{http::header, web, HttpRequest};
use serde::Serialize;

use crate::error::{AppError, AppResult};

/// Every file's part of the OpenAPI description (see [`openapi`]).
fn docs() -> Vec<(&'static str, utoipa::openapi::OpenApi)> {
    use utoipa::OpenApi;
    vec![
        ("attachments", attachments::Doc::openapi()),
        ("audit", audit::Doc::openapi()),
        ("clients", clients::Doc::openapi()),
        ("custom_fields", custom_fields::Doc::openapi()),
        ("duplicates", duplicates::Doc::openapi()),
        ("imports", imports::Doc::openapi()),
        ("interactions", interactions::Doc::openapi()),
        ("mail", mail::Doc::openapi()),
        ("me", me::Doc::openapi()),
        ("password_resets", password_resets::Doc::openapi()),
        ("plugins", plugins::Doc::openapi()),
        ("policies", policies::Doc::openapi()),
        ("sales", sales::Doc::openapi()),
        ("search", search::Doc::openapi()),
        ("reports", reports::Doc::openapi()),
        ("scores", scores::Doc::openapi()),
        ("segments", segments::Doc::openapi()),
        ("tags", tags::Doc::openapi()),
        ("tokens", tokens::Doc::openapi()),
        ("users", users::Doc::openapi()),
        ("webhooks", webhooks::Doc::openapi()),
        ("workflows", workflows::Doc::openapi()),
        ("exports", crate::web::exports::Doc::openapi()),
    ]
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi::openapi_json))
        .route(
            "/password-resets",
            web::post().to(password_resets::request_reset),
        )
        .route(
            "/password-resets/confirm",
            web::post().to(password_resets::confirm_reset),
        )
        .route("/search", web::get().to(search::search))
        .route("/search/status", web::get().to(search::status))
        .route(
            "/clients/export",
            web::get().to(crate::web::exports::api_clients),
        )
        .route("/duplicates", web::get().to(duplicates::groups))
        .route("/duplicates/scan", web::post().to(duplicates::request_scan))
        .service(
            web::resource("/{parent:clients|opportunities|interactions}/{id}/attachments")
                .route(web::get().to(attachments::list))
                .route(web::post().to(attachments::upload)),
        )
        .route(
            "/attachments/{id}/content",
            web::get().to(attachments::content),
        )
        .route("/attachments/{id}", web::delete().to(attachments::delete))
        .route(
            "/clients/{id}/duplicates",
            web::get().to(duplicates::of_client),
        )
        .route("/clients/{id}/merge", web::post().to(duplicates::merge))
        .route("/merges/{id}/undo", web::post().to(duplicates::undo))
        .route(
            "/opportunities/export",
            web::get().to(crate::web::exports::api_deals),
        )
        .route(
            "/interactions/export",
            web::get().to(crate::web::exports::api_interactions),
        )
        .route("/me", web::get().to(me::show))
        .route("/me/preferences", web::put().to(me::set_preferences))
        .route("/dashboard", web::get().to(me::dashboard))
        .route("/me/notifications", web::get().to(me::notifications))
        .route("/me/calendar-feed", web::get().to(me::calendar_feed))
        .route(
            "/me/calendar-feed",
            web::post().to(me::rotate_calendar_feed),
        )
        .route(
            "/me/notifications/read",
            web::post().to(me::notifications_read),
        )
        .route("/me/invitations", web::get().to(users::my_invitations))
        .route("/me/password", web::post().to(users::change_password))
        .route(
            "/me/invitations/{id}/accept",
            web::post().to(users::accept_invitation),
        )
        .route(
            "/me/invitations/{id}/decline",
            web::post().to(users::decline_invitation),
        )
        .route("/invitations", web::get().to(users::list_invitations))
        .route(
            "/invitations/{id}",
            web::delete().to(users::cancel_invitation),
        )
        .route("/users", web::get().to(users::list))
        .route("/users", web::post().to(users::create))
        .route("/users/{id}", web::get().to(users::show))
        .route("/users/{id}", web::patch().to(users::update))
        .route(
            "/users/{id}/reset-password",
            web::post().to(users::reset_password),
        )
        .route("/policies", web::get().to(policies::list))
        .route("/policies/rights", web::get().to(policies::rights))
        .route("/policies", web::post().to(policies::grant))
        .route(
            "/policies/{role}/{resource}/{action}",
            web::delete().to(policies::revoke),
        )
        .route("/tokens", web::get().to(tokens::list))
        .route("/tokens", web::post().to(tokens::create))
        .route("/tokens/{id}", web::delete().to(tokens::revoke))
        .route("/audit-log", web::get().to(audit::list))
        .route("/clients", web::get().to(clients::list))
        .route("/clients", web::post().to(clients::create))
        .route("/clients/trash", web::get().to(clients::list_trash))
        .route("/clients/bulk", web::post().to(clients::bulk))
        .route("/clients/{id}", web::get().to(clients::show))
        .route("/clients/{id}", web::put().to(clients::replace))
        .route("/clients/{id}", web::patch().to(clients::patch))
        .route("/clients/{id}", web::delete().to(clients::delete))
        .route(
            "/clients/{id}/opportunities",
            web::get().to(clients::opportunities),
        )
        .route(
            "/clients/{id}/interactions",
            web::get().to(interactions::list),
        )
        .route(
            "/clients/{id}/interactions",
            web::post().to(interactions::create),
        )
        .route(
            "/clients/{id}/preferences",
            web::get().to(interactions::preferences),
        )
        .route(
            "/clients/{id}/preferences",
            web::put().to(interactions::set_preferences),
        )
        .route("/mailboxes", web::get().to(mail::list_mailboxes))
        .route("/mailboxes", web::post().to(mail::create_mailbox))
        .route("/mailboxes/{id}", web::get().to(mail::show_mailbox))
        .route("/mailboxes/{id}", web::patch().to(mail::update_mailbox))
        .route("/mailboxes/{id}", web::delete().to(mail::delete_mailbox))
        .route("/mailboxes/{id}/test", web::post().to(mail::test_mailbox))
        .route("/mailboxes/{id}/sync", web::post().to(mail::sync_mailbox))
        .route("/messages", web::get().to(mail::list_messages))
        .route("/messages", web::post().to(mail::send))
        .route("/messages/{id}", web::get().to(mail::show_message))
        .route("/messages/{id}/resend", web::post().to(mail::resend))
        .route(
            "/messages/{id}/attachments/{file}",
            web::get().to(mail::message_file),
        )
        .route("/messages/{id}/file", web::post().to(mail::file))
        .route("/templates", web::get().to(mail::list_templates))
        .route("/templates", web::post().to(mail::create_template))
        .route("/templates/preview", web::post().to(mail::preview_template))
        .route(
            "/clients/{id}/text-messages",
            web::post().to(mail::text_client),
        )
        .route("/templates/{id}", web::get().to(mail::show_template))
        .route("/templates/{id}", web::put().to(mail::update_template))
        .route("/templates/{id}", web::delete().to(mail::delete_template))
        .route("/sends", web::get().to(mail::list_sends))
        .route("/sends", web::post().to(mail::create_send))
        .route("/sends/preview", web::post().to(mail::preview_send))
        .route("/sends/{id}", web::get().to(mail::show_send))
        .route(
            "/sends/{id}/recipients",
            web::get().to(mail::send_recipients),
        )
        .route(
            "/sends/{id}/export",
            web::get().to(crate::web::exports::api_send_recipients),
        )
        .route("/workflows", web::get().to(workflows::list))
        .route("/workflows", web::post().to(workflows::create))
        .route("/workflows/catalogue", web::get().to(workflows::catalogue))
        .route("/workflows/{id}", web::get().to(workflows::show))
        .route("/workflows/{id}", web::patch().to(workflows::update))
        .route("/workflows/{id}", web::delete().to(workflows::delete))
        .route(
            "/workflows/{id}/versions",
            web::get().to(workflows::versions),
        )
        .route("/workflows/{id}/runs", web::get().to(workflows::runs))
        .route(
            "/workflows/{id}/dry-run",
            web::post().to(workflows::dry_run),
        )
        .route(
            "/workflows/{id}/rotate-url",
            web::post().to(workflows::rotate_url),
        )
        .route("/workflow-runs", web::get().to(workflows::record_runs))
        .route("/workflow-runs/{id}", web::get().to(workflows::run))
        .route(
            "/hooks/workflows/{secret}",
            web::post().to(workflows::incoming),
        )
        .route("/webhooks", web::get().to(webhooks::list))
        .route("/webhooks", web::post().to(webhooks::create))
        .route("/webhooks/events", web::get().to(webhooks::events))
        .route("/webhooks/{id}", web::get().to(webhooks::show))
        .route("/webhooks/{id}", web::patch().to(webhooks::update))
        .route("/webhooks/{id}", web::delete().to(webhooks::delete))
        .route(
            "/webhooks/{id}/rotate-secret",
            web::post().to(webhooks::rotate),
        )
        .route("/webhooks/{id}/test", web::post().to(webhooks::test))
        .route(
            "/webhooks/{id}/deliveries",
            web::get().to(webhooks::deliveries),
        )
        .route("/webhooks/{id}/replay", web::post().to(webhooks::replay))
        .route("/mail/settings", web::get().to(mail::settings))
        .route("/mail/settings", web::put().to(mail::update_settings))
        .route("/mail/bounces", web::get().to(mail::bounces))
        .route(
            "/mail/bounces/{address}",
            web::delete().to(mail::clear_bounce),
        )
        .route("/sends/{id}/pause", web::post().to(mail::pause_send))
        .route("/sends/{id}/resume", web::post().to(mail::resume_send))
        .route("/sends/{id}/cancel", web::post().to(mail::cancel_send))
        .route("/tasks", web::get().to(interactions::tasks))
        .route("/tasks", web::post().to(interactions::create_task))
        .route(
            "/tasks/{id}/complete",
            web::post().to(interactions::complete_task),
        )
        .route("/interactions/{id}", web::get().to(interactions::show))
        .route("/interactions/{id}", web::put().to(interactions::update))
        .route("/interactions/{id}", web::delete().to(interactions::delete))
        .route("/clients/{id}/restore", web::post().to(clients::restore))
        .route("/clients/{id}/purge", web::post().to(clients::purge))
        .route("/clients/{id}/tags", web::get().to(clients::client_tags))
        .route(
            "/clients/{id}/tags",
            web::post().to(clients::add_client_tag),
        )
        .route(
            "/clients/{id}/tags/{tag}",
            web::delete().to(clients::remove_client_tag),
        )
        .route("/clients/{id}/relations", web::get().to(clients::relations))
        .route("/clients/{id}/relations", web::post().to(clients::relate))
        .route(
            "/clients/{id}/relations/{rel}",
            web::delete().to(clients::unrelate),
        )
        .route("/pipelines", web::get().to(sales::pipelines))
        .route("/pipelines", web::post().to(sales::create_pipeline))
        .route("/pipelines/{id}", web::patch().to(sales::update_pipeline))
        .route("/pipelines/{id}/stages", web::post().to(sales::add_stage))
        .route(
            "/pipelines/{id}/stages/{stage}",
            web::patch().to(sales::update_stage),
        )
        .route(
            "/pipelines/{id}/stages/{stage}/retire",
            web::post().to(sales::retire_stage),
        )
        .route("/loss-reasons", web::get().to(sales::loss_reasons))
        .route("/loss-reasons", web::post().to(sales::add_loss_reason))
        .route(
            "/loss-reasons/{id}",
            web::patch().to(sales::update_loss_reason),
        )
        .route("/opportunities", web::get().to(sales::list))
        .route("/opportunities", web::post().to(sales::create))
        .route("/opportunities/{id}", web::get().to(sales::show))
        .route("/opportunities/{id}", web::patch().to(sales::patch))
        .route("/opportunities/{id}", web::put().to(sales::replace))
        .route("/opportunities/{id}", web::delete().to(sales::delete))
        .route("/opportunities/{id}/move", web::post().to(sales::move_deal))
        .route("/opportunities/{id}/history", web::get().to(sales::history))
        .route(
            "/opportunities/{id}/interactions",
            web::get().to(interactions::list_deal),
        )
        .route("/appointments", web::post().to(interactions::appointment))
        .service(
            web::resource("/imports")
                .app_data(web::PayloadConfig::new(
                    crate::domain::imports::read::MAX_FILE + 1024,
                ))
                .route(web::get().to(imports::list))
                .route(web::post().to(imports::upload)),
        )
        .route("/imports/{id}", web::get().to(imports::show))
        .route("/imports/{id}", web::patch().to(imports::configure))
        .route("/imports/{id}/run", web::post().to(imports::run))
        .route("/imports/{id}/revert", web::post().to(imports::revert))
        .route("/calendar", web::get().to(interactions::calendar))
        .service(
            web::resource("/calendar/import")
                .app_data(web::PayloadConfig::new(
                    crate::domain::appointments::MAX_ICS + 1024,
                ))
                .route(web::post().to(interactions::import_ics)),
        )
        .route("/quotes", web::get().to(sales::list_quotes))
        .route("/quotes", web::post().to(sales::create_quote))
        .route("/quotes/{id}", web::get().to(sales::show_quote))
        .route("/quotes/{id}/status", web::post().to(sales::quote_status))
        .route("/quotes/{id}/pdf", web::get().to(sales::quote_pdf_handler))
        .route("/contracts", web::get().to(sales::list_contracts))
        .route("/contracts", web::post().to(sales::create_contract))
        .route("/contracts/{id}", web::get().to(sales::show_contract))
        .route("/contracts/{id}", web::patch().to(sales::update_contract))
        .service(
            web::resource("/contracts/{id}/document")
                .app_data(web::PayloadConfig::new(
                    crate::domain::pipeline::contracts::MAX_DOCUMENT + 1024,
                ))
                .route(web::put().to(sales::upload_document))
                .route(web::get().to(sales::download_document)),
        )
        .route(
            "/contracts/{id}/renew",
            web::post().to(sales::renew_contract),
        )
        .route(
            "/crm/analytics/pipeline",
            web::get().to(sales::analytics_pipeline),
        )
        .route(
            "/crm/analytics/performance",
            web::get().to(sales::analytics_performance),
        )
        .service(
            web::resource("/plugins")
                .app_data(web::PayloadConfig::new(crate::web::upload::MAX_BUNDLE))
                .route(web::get().to(plugins::list))
                .route(web::post().to(plugins::install)),
        )
        .route(
            "/plugins/trusted-keys",
            web::get().to(plugins::trusted_keys),
        )
        .route("/plugins/trusted-keys", web::post().to(plugins::trust_key))
        .route(
            "/plugins/trusted-keys/{id}",
            web::delete().to(plugins::distrust_key),
        )
        .route("/plugins/policy", web::put().to(plugins::set_policy))
        .route("/plugins/{id}", web::patch().to(plugins::update))
        .route("/plugins/{id}", web::delete().to(plugins::uninstall))
        .route("/clients/{id}/scores", web::get().to(scores::show))
        .route("/clients/{id}/scores", web::post().to(scores::refresh))
        .route("/scores/at-risk", web::get().to(scores::at_risk))
        .route("/crm/analytics/overview", web::get().to(scores::overview))
        .route("/scores/churn-model", web::get().to(scores::churn_model))
        .route(
            "/scores/churn-model",
            web::post().to(scores::train_churn_model),
        )
        .route("/crm/reports", web::get().to(reports::standard_list))
        .route("/crm/reports/{type}", web::get().to(reports::standard))
        .route("/reports", web::get().to(reports::list))
        .route("/reports", web::post().to(reports::create))
        .route("/reports/preview", web::post().to(reports::preview))
        .route("/reports/{id}", web::get().to(reports::show))
        .route("/reports/{id}", web::put().to(reports::replace))
        .route("/reports/{id}", web::delete().to(reports::delete))
        .route("/reports/{id}/run", web::get().to(reports::run))
        .route("/dashboards", web::get().to(reports::dashboards))
        .route("/dashboards", web::post().to(reports::create_dashboard))
        .route("/dashboards/{id}", web::get().to(reports::dashboard))
        .route(
            "/dashboards/{id}",
            web::put().to(reports::replace_dashboard),
        )
        .route(
            "/dashboards/{id}",
            web::delete().to(reports::delete_dashboard),
        )
        .route(
            "/dashboards/{id}/data",
            web::get().to(reports::dashboard_data),
        )
        .route(
            "/dashboards/{id}/schedules",
            web::get().to(reports::schedules),
        )
        .route(
            "/dashboards/{id}/schedules",
            web::post().to(reports::create_schedule),
        )
        .route(
            "/dashboards/{id}/schedules/{schedule}",
            web::delete().to(reports::delete_schedule),
        )
        .route(
            "/clients/{id}/prevent-churn",
            web::post().to(scores::prevent_churn),
        )
        .route("/segments", web::get().to(segments::list))
        .route("/segments", web::post().to(segments::create))
        .route("/segments/preview", web::post().to(segments::preview))
        .route("/segments/{id}", web::get().to(segments::show))
        .route("/segments/{id}", web::put().to(segments::replace))
        .route("/segments/{id}", web::delete().to(segments::delete))
        .route("/segments/{id}/count", web::get().to(segments::count))
        .route("/segments/{id}/clients", web::get().to(segments::clients))
        .route("/segments/{id}/events", web::get().to(segments::events))
        .route("/segments/{id}/sizes", web::get().to(segments::sizes))
        .route(
            "/segments/{id}/composition",
            web::get().to(segments::composition),
        )
        .route(
            "/segments/{id}/evaluate",
            web::post().to(segments::evaluate),
        )
        .route("/tags", web::get().to(tags::list))
        .route("/tags", web::post().to(tags::create))
        .route("/tags/{id}", web::patch().to(tags::update))
        .route("/tags/{id}", web::delete().to(tags::delete))
        .route("/custom-fields", web::get().to(custom_fields::list))
        .route("/custom-fields", web::post().to(custom_fields::create))
        .route("/custom-fields/{id}", web::get().to(custom_fields::show))
        .route(
            "/custom-fields/{id}",
            web::patch().to(custom_fields::update),
        )
        .route(
            "/custom-fields/{id}",
            web::delete().to(custom_fields::archive),
        )
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(AppError::NotFound)
        }));
}

/// `{"data": [...], "nextCursor": "…"|null}`
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListEnvelope<T: Serialize> {
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Paging and filters parsed from the query string, following the API conventions.
pub struct ListQuery {
    pub limit: i64,
    pub cursor: Option<String>,
    pub q: Option<String>,
    /// `filter[field]=value` equality filters by field name.
    pub filters: HashMap<String, String>,
}

impl ListQuery {
    pub fn parse(req: &HttpRequest, allowed_filters: &[&str]) -> AppResult<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
            .map_err(|e| AppError::BadRequest(format!("The query string is malformed: {e}")))?;
        let mut out = ListQuery {
            limit: 50,
            cursor: None,
            q: None,
            filters: HashMap::new(),
        };
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => {
                    out.limit = value
                        .parse::<i64>()
                        .ok()
                        .filter(|l| (1..=500).contains(l))
                        .ok_or_else(|| {
                            AppError::invalid("limit", "Use a whole number from 1 to 500.")
                        })?;
                }
                "cursor" => out.cursor = Some(value).filter(|v| !v.is_empty()),
                "q" => out.q = Some(value.trim().to_string()).filter(|v| !v.is_empty()),
                k if k.starts_with("filter[") && k.ends_with(']') => {
                    let field = &k[7..k.len() - 1];
                    if !allowed_filters.contains(&field) {
                        return Err(AppError::invalid(
                            k,
                            &format!(
                                "Unknown filter; filterable fields: {}.",
                                allowed_filters.join(", ")
                            ),
                        ));
                    }
                    out.filters.insert(field.to_string(), value);
                }
                other => {
                    return Err(AppError::invalid(other, "Unknown query parameter."));
                }
            }
        }
        Ok(out)
    }

    pub fn bool_filter(&self, field: &str) -> AppResult<Option<bool>> {
        self.filters
            .get(field)
            .map(|v| match v.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(AppError::invalid(
                    &format!("filter[{field}]"),
                    "Use true or false.",
                )),
            })
            .transpose()
    }
}

/// Takes one more row than the page to learn whether another page follows.
pub fn paginate<T, U: Serialize>(
    mut rows: Vec<T>,
    limit: i64,
    cursor_of: impl Fn(&T) -> String,
    dto: impl Fn(T) -> U,
) -> ListEnvelope<U> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(&cursor_of)
    } else {
        None
    };
    ListEnvelope {
        data: rows.into_iter().map(dto).collect(),
        next_cursor,
    }
}

pub fn etag(version: i64) -> String {
    format!("\"v{version}\"")
}

/// The version an `If-Match` header demands: None when absent or `*`.
/// RFC 9110: a write whose `If-Match` no longer holds answers 412 Precondition Failed.
/// Services report a lost compare-and-set as `Stale` (409 when the version came in the
/// body); here the header decides, once for every route.
pub async fn precondition(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::ResponseError;
    let conditional = req.headers().contains_key(header::IF_MATCH);
    let res = next.call(req).await?.map_into_boxed_body();
    if !conditional {
        return Ok(res);
    }
    let stale = match res
        .response()
        .error()
        .and_then(|e| e.as_error::<AppError>())
    {
        Some(AppError::Stale(message)) => message.clone(),
        _ => return Ok(res),
    };
    let (req, _) = res.into_parts();
    Ok(actix_web::dev::ServiceResponse::new(
        req,
        AppError::PreconditionFailed(stale).error_response(),
    ))
}

pub fn if_match_version(req: &HttpRequest) -> AppResult<Option<i64>> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AppError::BadRequest("If-Match is not valid text.".into()))?
        .trim();
    if value == "*" {
        return Ok(None);
    }
    value
        .trim_start_matches("W/")
        .trim_matches('"')
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            AppError::PreconditionFailed("If-Match does not hold an ETag this API issued.".into())
        })
}

pub fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
