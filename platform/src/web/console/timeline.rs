//! The timeline on a client's profile: a quick-log form (a call, note, meeting or e-mail in a
//! few taps, phone-sized too) and the interactions, newest first, grouped by day, with more
//! loaded as the reader scrolls (htmx `revealed`) and a filter by type.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::app::AppState;
use crate::auth::ConsoleActor;
use crate::db::{self, DbConn};
use crate::domain::clients::service::Access;
use crate::domain::interactions::{self as service, InteractionRow};
use crate::error::{AppError, AppResult};
use crate::web::{client_access, query_pairs};

/// Interactions per page.
const PAGE: i64 = 20;

pub struct ItemView {
    pub id: String,
    pub kind: String,
    pub kind_label: &'static str,
    pub subject: String,
    pub content: String,
    pub time: String,
    pub author: String,
    pub status: String,
    pub details: String,
}

pub struct DayView {
    pub label: String,
    pub items: Vec<ItemView>,
}

/// The timeline card (form + first page), or just more items for infinite scroll.
#[derive(Template)]
#[template(path = "partials/clients/timeline.html")]
pub struct TimelineCard {
    pub client_id: String,
    pub days: Vec<DayView>,
    pub next: Option<String>,
    pub kind: String,
    pub can_write: bool,
    /// Only the items (a later page): no card, no form.
    pub more_only: bool,
    pub errors: Vec<String>,
    pub subject: String,
    pub content: String,
    pub form_kind: String,
    /// What the client asked for that an outbound call or e-mail would break.
    pub warnings: Vec<String>,
}

fn day_label(d: chrono::NaiveDate) -> String {
    let today = chrono::Utc::now().date_naive();
    if d == today {
        "Today".into()
    } else if Some(d) == today.pred_opt() {
        "Yesterday".into()
    } else if Some(d) == today.succ_opt() {
        "Tomorrow".into()
    } else {
        d.format("%a %-d %b %Y").to_string()
    }
}

fn authors(conn: &mut DbConn, org: &str) -> AppResult<HashMap<String, String>> {
    Ok(crate::domain::orgs::store::list_members(
        conn,
        org,
        &crate::domain::orgs::store::MemberFilter {
            limit: 1000,
            ..Default::default()
        },
    )?
    .into_iter()
    .map(|m| {
        let name = if m.user.name.is_empty() {
            m.user.email.clone()
        } else {
            m.user.name.clone()
        };
        (m.user.id, name)
    })
    .collect())
}

fn group(rows: &[InteractionRow], names: &HashMap<String, String>) -> Vec<DayView> {
    let mut days: Vec<DayView> = Vec::new();
    for r in rows {
        let label = day_label(r.occurred_at.date());
        let mut details = Vec::new();
        if let Some(d) = &r.direction {
            details.push(d.clone());
        }
        if let Some(o) = &r.outcome {
            details.push(o.replace('_', " "));
        }
        if let Some(m) = r.duration_minutes {
            details.push(format!("{m} min"));
        }
        let item = ItemView {
            id: r.id.clone(),
            kind: r.kind.clone(),
            kind_label: service::kind_label(&r.kind),
            subject: r.subject.clone(),
            content: r.content.clone(),
            time: r.occurred_at.format("%H:%M").to_string(),
            author: r
                .user_id
                .as_ref()
                .and_then(|u| names.get(u).cloned())
                .unwrap_or_default(),
            status: r.status.clone(),
            details: details.join(" · "),
        };
        match days.last_mut() {
            Some(d) if d.label == label => d.items.push(item),
            _ => days.push(DayView {
                label,
                items: vec![item],
            }),
        }
    }
    days
}

/// Which part of the timeline to show, and to whom.
#[derive(Default)]
pub struct View {
    pub kind: Option<String>,
    pub after: Option<(chrono::NaiveDateTime, String)>,
    pub can_write: bool,
    /// Only the items (a later page): no card, no form.
    pub more_only: bool,
}

/// Loads a page of the timeline as a card (or only its items).
pub fn card(
    conn: &mut DbConn,
    org: &str,
    access: &Access,
    client_id: &str,
    view: View,
) -> AppResult<TimelineCard> {
    let View {
        kind,
        after,
        can_write,
        more_only,
    } = view;
    let rows = service::timeline(
        conn,
        org,
        access,
        client_id,
        kind.as_deref(),
        after,
        PAGE + 1,
    )?;
    let more = rows.len() as i64 > PAGE;
    let page: Vec<InteractionRow> = rows.into_iter().take(PAGE as usize).collect();
    let names = authors(conn, org)?;
    let prefs = crate::domain::preferences::load(conn, org, client_id)?;
    let warnings: Vec<String> = [("Calls", "phone"), ("E-mails", "email")]
        .into_iter()
        .filter_map(|(label, ch)| prefs.objection(ch).map(|why| format!("{label}: {why}")))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(TimelineCard {
        warnings,
        client_id: client_id.to_string(),
        next: if more {
            page.last().map(service::cursor_of)
        } else {
            None
        },
        days: group(&page, &names),
        kind: kind.unwrap_or_default(),
        can_write,
        more_only,
        errors: Vec::new(),
        subject: String::new(),
        content: String::new(),
        form_kind: "call".into(),
    })
}

fn html(status: StatusCode, card: &TimelineCard) -> AppResult<HttpResponse> {
    let body = card
        .render()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// `GET /clients/{id}/timeline?type=&cursor=`: the card filtered by type, or more items.
pub async fn page(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let can_write = actor.can("client", "write").await?;
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let kind = get("type").filter(|k| service::KINDS.contains(&k.as_str()));
    let after = get("cursor").and_then(|c| service::parse_cursor(&c));
    let more_only = after.is_some();
    let org = actor.org_id().to_string();
    let card = db::run(&state.pool, move |c| {
        let view = View {
            kind,
            after,
            can_write,
            more_only,
        };
        card(c, &org, &access, &id, view)
    })
    .await?;
    html(StatusCode::OK, &card)
}

fn writer() -> View {
    View {
        can_write: true,
        ..View::default()
    }
}

/// `POST /clients/{id}/interactions`: the quick log. Answers the refreshed card; a refused
/// entry comes back in the form with its errors (422).
pub async fn log(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))?;
    let mut fields = serde_json::Map::new();
    for (k, v) in &pairs {
        let key = match k.as_str() {
            "type" | "subject" | "content" | "direction" | "outcome" | "scheduledAt"
            | "durationMinutes" => k.clone(),
            // One date field: a task's due date, a call or meeting's planned time.
            "when" => {
                if !v.is_empty() {
                    fields.insert("when".into(), serde_json::Value::String(v.clone()));
                }
                continue;
            }
            "acknowledgeOptOut" => {
                fields.insert(k.clone(), serde_json::Value::Bool(v == "true"));
                continue;
            }
            _ => continue,
        };
        fields.insert(key, serde_json::Value::String(v.clone()));
    }
    if let Some(when) = fields.remove("when") {
        let key = if fields.get("type").and_then(|v| v.as_str()) == Some("task") {
            "dueAt"
        } else {
            "scheduledAt"
        };
        fields.insert(key.into(), when);
    }
    let form_kind = fields
        .get("type")
        .and_then(|v| v.as_str())
        .unwrap_or("call")
        .to_string();
    let subject = fields
        .get("subject")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let content = fields
        .get("content")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    let ctx = actor.audit();
    let org = actor.org_id().to_string();
    let (card, status) = db::run(&state.pool, move |c| {
        match service::create(c, &ctx, &access, &id, &fields) {
            Ok(_) => Ok((card(c, &org, &access, &id, writer())?, StatusCode::OK)),
            Err(AppError::Validation(_, errors)) => {
                let mut k = card(c, &org, &access, &id, writer())?;
                k.errors = errors.into_iter().map(|e| e.message).collect();
                k.subject = subject;
                k.content = content;
                k.form_kind = form_kind;
                Ok((k, StatusCode::UNPROCESSABLE_ENTITY))
            }
            Err(e) => Err(e),
        }
    })
    .await?;
    html(status, &card)
}
