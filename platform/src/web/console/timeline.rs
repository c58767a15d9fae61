//! The timeline on a client's profile and on a deal: a quick-log form (a call, note, meeting
//! or e-mail in a few taps, phone-sized too) and the interactions and system events, newest
//! first, grouped by day, with more loaded as the reader scrolls (htmx `revealed`), filters by
//! type, author and date, and inline edit.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::domain::interactions::{self as service, Filter, InteractionRow, Scope};
use crate::error::{AppError, AppResult};
use crate::ops::interactions::{self as ops, Timeline, TimelineQuery};
use crate::state::AppState;
use crate::web::query_pairs;

/// Interactions per page.
const PAGE: i64 = 20;

pub struct ItemView {
    pub id: String,
    /// May be edited or completed here (not a system event; the reader may write).
    pub editable: bool,
    /// May be deleted (not a system event; the reader holds `interaction:delete`).
    pub deletable: bool,
    pub location: String,
    /// Other clients and colleagues taking part, by name.
    pub with: String,
    pub kind: String,
    pub kind_label: &'static str,
    pub subject: String,
    pub content: String,
    pub time: String,
    pub author: String,
    pub status: String,
    pub details: String,
    /// Files attached to it: (download link, name).
    pub files: Vec<(String, String)>,
    /// An e-mail's message page (to read it whole and answer it), when it is one.
    pub message: Option<String>,
}

pub struct DayView {
    pub label: String,
    pub items: Vec<ItemView>,
}

/// The timeline card (form + first page), or just more items for infinite scroll.
#[derive(Template)]
#[template(path = "partials/clients/timeline.html")]
pub struct TimelineCard {
    /// Where the card's URLs start: `/clients/{id}` or `/opportunities/{id}`.
    pub base: String,
    /// The filters as a query string, for the next page.
    pub filter_query: String,
    pub owner: String,
    pub from: String,
    pub to: String,
    pub owners: Vec<(String, String)>,
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
    pub focus: bool,
}

fn day_label(d: chrono::NaiveDate, local: &crate::locale::Local) -> String {
    let today = local.today();
    if d == today {
        "Today".into()
    } else if Some(d) == today.pred_opt() {
        "Yesterday".into()
    } else if Some(d) == today.succ_opt() {
        "Tomorrow".into()
    } else {
        local.day(d)
    }
}

pub fn item_view(
    r: &InteractionRow,
    t: &Timeline,
    can_write: bool,
    local: &crate::locale::Local,
) -> ItemView {
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
    if let Some(p) = &r.priority {
        details.push(format!("{p} priority"));
    }
    ItemView {
        id: r.id.clone(),
        editable: can_write && r.kind != service::EVENT,
        deletable: t.can_delete && r.kind != service::EVENT,
        location: r.location.clone().unwrap_or_default(),
        with: t.with(&r.id),
        kind: r.kind.clone(),
        kind_label: service::kind_label(&r.kind),
        subject: r.subject.clone(),
        content: r.content.clone(),
        time: local.time(r.occurred_at),
        author: r
            .user_id
            .as_ref()
            .and_then(|u| t.members.get(u).cloned())
            .unwrap_or_default(),
        status: r.status.clone(),
        details: details.join(" · "),
        files: t.files.get(&r.id).cloned().unwrap_or_default(),
        message: (r.kind == "email")
            .then(|| serde_json::from_str::<serde_json::Value>(&r.metadata).ok())
            .flatten()
            .and_then(|m| {
                m["mailMessageId"]
                    .as_str()
                    .map(|id| format!("/mail/messages/{id}"))
            }),
    }
}

fn group(t: &Timeline, can_write: bool, local: &crate::locale::Local) -> Vec<DayView> {
    let mut days: Vec<DayView> = Vec::new();
    for r in &t.rows {
        let label = day_label(local.wall(r.occurred_at).date(), local);
        let item = item_view(r, t, can_write, local);
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
    pub filter: Filter,
    pub after: Option<(chrono::NaiveDateTime, String)>,
    pub can_write: bool,
    /// Only the items (a later page): no card, no form.
    pub more_only: bool,
    /// Put the cursor in the quick log's notes.
    pub focus: bool,
}

fn base_of(scope: &Scope) -> String {
    match scope {
        Scope::Client(id) => format!("/clients/{id}"),
        Scope::Deal(id) => format!("/opportunities/{id}"),
    }
}

fn query_of(view: &View) -> TimelineQuery {
    TimelineQuery {
        filter: view.filter.clone(),
        after: view.after.clone(),
        limit: PAGE,
    }
}

/// The first page of a timeline as the profile and the deal page show it: the rendered
/// card, or nothing for a reader who may not see interactions.
pub async fn card(scope: &crate::ops::Scope, target: Scope, view: View) -> AppResult<String> {
    if !scope.can("interaction", "read") {
        return Ok(String::new());
    }
    let t = ops::timeline(scope, target.clone(), query_of(&view)).await?;
    card_of(t, &target, view, &scope.local)
        .render()
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// A timeline page as the card shows it.
fn card_of(
    t: Timeline,
    scope: &Scope,
    view: View,
    view_local: &crate::locale::Local,
) -> TimelineCard {
    let View {
        filter,
        can_write,
        more_only,
        focus,
        ..
    } = view;
    let scope_local = view_local;
    let day = |t: Option<chrono::NaiveDateTime>, end: bool| {
        t.map(|t| {
            let d = scope_local.wall(t).date();
            if end { d.pred_opt().unwrap_or(d) } else { d }
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_default()
    };
    let (from, to) = (day(filter.from, false), day(filter.to, true));
    let owner = filter.owner.clone().unwrap_or_default();
    let kind = filter.kind.clone().unwrap_or_default();
    let filter_query = serde_urlencoded::to_string([
        ("type", kind.as_str()),
        ("owner", owner.as_str()),
        ("from", from.as_str()),
        ("to", to.as_str()),
    ])
    .unwrap_or_default();
    let days = group(&t, can_write, view_local);
    let mut owners: Vec<(String, String)> = t.members.into_iter().collect();
    owners.sort_by_key(|o| o.1.to_lowercase());
    TimelineCard {
        warnings: t.warnings,
        base: base_of(scope),
        filter_query,
        owner,
        from,
        to,
        owners,
        next: t.next,
        days,
        kind,
        can_write,
        more_only,
        focus,
        errors: Vec::new(),
        subject: String::new(),
        content: String::new(),
        form_kind: "call".into(),
    }
}

fn html(status: StatusCode, card: &TimelineCard) -> AppResult<HttpResponse> {
    let body = card
        .render()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// Reads the console's timeline filters (`type`, `owner`, `from`, `to`); a value that
/// makes no sense is ignored rather than refused, as in any filter form.
fn console_filter(pairs: &[(String, String)], local: &crate::locale::Local) -> Filter {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let day = |k: &str| get(k).and_then(|v| chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d").ok());
    Filter {
        kind: get("type").filter(|k| service::KINDS.contains(&k.as_str()) || k == service::EVENT),
        owner: get("owner"),
        // The person's days, as UTC bounds.
        from: day("from").map(|d| local.days_utc(d, d).0),
        to: day("to").map(|d| local.days_utc(d, d).1),
    }
}

async fn show_scope(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    target: Scope,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = query_pairs(&req)?;
    let after = pairs
        .iter()
        .find(|(k, _)| k == "cursor")
        .and_then(|(_, c)| service::parse_cursor(c));
    let view = View {
        filter: console_filter(&pairs, &scope.local),
        more_only: after.is_some(),
        after,
        can_write: scope.can("interaction", "write"),
        focus: false,
    };
    let t = ops::timeline(&scope, target.clone(), query_of(&view)).await?;
    html(StatusCode::OK, &card_of(t, &target, view, &scope.local))
}

/// `GET /clients/{id}/timeline?type=&owner=&from=&to=&cursor=`: the card filtered, or more
/// items.
pub async fn page(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    show_scope(req, actor, state, Scope::Client(id.into_inner())).await
}

/// `GET /opportunities/{id}/timeline`: the same for a deal.
pub async fn deal_page(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    show_scope(req, actor, state, Scope::Deal(id.into_inner())).await
}

fn writer() -> View {
    View {
        can_write: true,
        ..View::default()
    }
}

/// Turns the console form into interaction fields. `when` is a task's due date or a call
/// or meeting's planned time.
fn form_fields(
    body: &[u8],
    local: &crate::locale::Local,
) -> AppResult<serde_json::Map<String, serde_json::Value>> {
    use serde_json::Value;
    let pairs: Vec<(String, String)> = crate::web::console::form_pairs(body)?;
    let mut fields = serde_json::Map::new();
    let mut when = None;
    for (k, v) in pairs {
        match k.as_str() {
            "durationMinutes" | "location" if v.trim().is_empty() => {
                fields.insert(k, Value::Null);
            }
            "type" | "subject" | "content" | "direction" | "outcome" | "durationMinutes"
            | "location" | "status" => {
                fields.insert(k, Value::String(v));
            }
            "when" => when = Some(v),
            "acknowledgeOptOut" => {
                fields.insert(k, Value::Bool(v == "true"));
            }
            "version" => {
                if let Ok(n) = v.parse::<i64>() {
                    fields.insert(k, Value::from(n));
                }
            }
            _ => {}
        }
    }
    if let Some(when) = when {
        let key = if fields.get("type").and_then(Value::as_str) == Some("task") {
            "dueAt"
        } else {
            "scheduledAt"
        };
        // why: the form's time is the person's wall clock; the domain stores UTC. A value
        // that is not a time goes through as typed, so the domain's message names it.
        let v = if when.trim().is_empty() {
            Value::Null
        } else if let Some(utc) = local.parse_input(&when) {
            Value::String(
                utc.and_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
        } else {
            Value::String(when)
        };
        fields.insert(key.into(), v);
    }
    Ok(fields)
}

async fn log_scope(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    target: Scope,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let mut fields = form_fields(&body, &scope.local)?;
    // Empty quick-log fields mean "the default", not "unset".
    fields.retain(|_, v| !v.is_null());
    let typed = fields.clone();
    let (status, errors, logged) = match ops::log(&scope, target.clone(), fields).await {
        Ok(v) => (StatusCode::OK, Vec::new(), Some(logged_notice(&v.row.kind))),
        Err(AppError::Validation(_, errors)) => (StatusCode::UNPROCESSABLE_ENTITY, errors, None),
        Err(e) => return Err(e),
    };
    let t = ops::timeline(&scope, target.clone(), query_of(&writer())).await?;
    let mut card = card_of(t, &target, writer(), &scope.local);
    if !errors.is_empty() {
        let text = |k: &str| typed.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        card.errors = errors.into_iter().map(|e| e.message).collect();
        card.subject = text("subject").to_string();
        card.content = text("content").to_string();
        card.form_kind = Some(text("type"))
            .filter(|k| !k.is_empty())
            .unwrap_or("call")
            .into();
    }
    let Some(notice) = logged else {
        return html(status, &card);
    };
    // why: the form clears and the new entry may land out of sight (under its day, below
    // the fold); a toast riding along says it was kept.
    let toast = crate::web::console::Toast {
        kind: "ok",
        message: notice,
        oob: true,
    };
    let body = [card.render(), toast.render()]
        .into_iter()
        .collect::<Result<String, _>>()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// What the quick log says once an entry is kept.
fn logged_notice(kind: &str) -> &'static str {
    match kind {
        "call" => "Call logged.",
        "meeting" => "Meeting logged.",
        "email" => "E-mail logged.",
        "sms" => "Text message logged.",
        "note" => "Note added.",
        "task" => "Task added.",
        _ => "Logged.",
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
    log_scope(actor, state, Scope::Client(id.into_inner()), body).await
}

/// `POST /opportunities/{id}/interactions`: the quick log on a deal.
pub async fn log_deal(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    log_scope(actor, state, Scope::Deal(id.into_inner()), body).await
}

// ---------- inline edit ----------

#[derive(Template)]
#[template(path = "partials/clients/interaction_item.html")]
struct ItemFragment {
    i: ItemView,
}

#[derive(Template)]
#[template(path = "partials/clients/interaction_edit.html")]
struct EditFragment {
    id: String,
    kind: String,
    subject: String,
    content: String,
    direction: String,
    outcome: String,
    status: String,
    when: String,
    duration: String,
    location: String,
    version: i64,
    errors: Vec<String>,
}

fn edit_form(
    r: &InteractionRow,
    errors: Vec<String>,
    local: &crate::locale::Local,
) -> EditFragment {
    let when = if r.kind == "task" {
        r.due_at
    } else {
        r.scheduled_at.or(r.completed_at)
    };
    EditFragment {
        id: r.id.clone(),
        kind: r.kind.clone(),
        subject: r.subject.clone(),
        content: r.content.clone(),
        direction: r.direction.clone().unwrap_or_default(),
        outcome: r.outcome.clone().unwrap_or_default(),
        status: r.status.clone(),
        when: when.map(|t| local.input(t)).unwrap_or_default(),
        duration: r
            .duration_minutes
            .map(|d| d.to_string())
            .unwrap_or_default(),
        location: r.location.clone().unwrap_or_default(),
        version: r.version,
        errors,
    }
}

fn fragment(status: StatusCode, t: &impl Template) -> AppResult<HttpResponse> {
    let body = t.render().map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// One entry as the timeline shows it.
async fn item_of(
    scope: &crate::ops::Scope,
    row: InteractionRow,
    can_write: bool,
) -> AppResult<ItemFragment> {
    let t = ops::entry(scope, row).await?;
    let i = t
        .rows
        .first()
        .map(|r| item_view(r, &t, can_write, &scope.local))
        .ok_or(AppError::NotFound)?;
    Ok(ItemFragment { i })
}

/// `GET /interactions/{id}`: one timeline entry (after an edit is cancelled).
pub async fn item(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let v = ops::get(&scope, id.into_inner()).await?;
    let f = item_of(&scope, v.row, scope.can("interaction", "write")).await?;
    fragment(StatusCode::OK, &f)
}

/// `GET /interactions/{id}/edit`: the entry as a form, in place.
pub async fn edit(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let r = ops::editable(&scope, id.into_inner()).await?;
    fragment(StatusCode::OK, &edit_form(&r, Vec::new(), &scope.local))
}

/// `POST /interactions/{id}`: saves the inline edit; a refused or stale edit comes back as
/// the form with the reason, the typed values kept.
pub async fn save(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let fields = form_fields(&body, &scope.local)?;
    let typed = fields.clone();
    let (status, errors) = match ops::update(&scope, id.to_string(), fields, None).await {
        Ok(v) => return fragment(StatusCode::OK, &item_of(&scope, v.row, true).await?),
        Err(AppError::Validation(_, errs)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            errs.into_iter().map(|e| e.message).collect(),
        ),
        Err(e @ AppError::Stale(_)) => (StatusCode::CONFLICT, vec![e.to_string()]),
        Err(e) => return Err(e),
    };
    let current = ops::get(&scope, id.into_inner()).await?;
    let mut form = edit_form(&current.row, errors, &scope.local);
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        let text = |k: &str| typed.get(k).and_then(|v| v.as_str()).map(str::to_string);
        form.subject = text("subject").unwrap_or(form.subject);
        form.content = text("content").unwrap_or(form.content);
    }
    fragment(status, &form)
}

/// `POST /interactions/{id}/done`: a planned call, meeting or task happened.
pub async fn done(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let v = ops::mark_done(&scope, id.into_inner()).await?;
    fragment(StatusCode::OK, &item_of(&scope, v.row, true).await?)
}

/// `POST /interactions/{id}/delete`: removes the entry (htmx swaps it for nothing).
pub async fn remove(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(""))
}
