//! The calendar: planned calls and meetings for a week or a month, mine or (for those who
//! oversee) the team's, and importing `.ics` invitations as meetings.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Datelike, Duration, NaiveDate};

use crate::auth::ConsoleActor;
use crate::domain::interactions::InteractionRow;
use crate::error::AppResult;
use crate::locale::Local;
use crate::ops::interactions as ops;
use crate::state::AppState;
use crate::web::console::{redirect_with_flash, render};
use crate::web::query_pairs;

pub struct CalEvent {
    pub id: String,
    pub client_id: String,
    pub client: String,
    pub time: String,
    pub subject: String,
    pub kind: String,
    pub cancelled: bool,
    /// Whose it is, on the team view.
    pub owner: String,
}

pub struct CalDay {
    pub label: String,
    pub iso: String,
    pub today: bool,
    /// Outside the month shown (the grid's leading and trailing days).
    pub outside: bool,
    pub events: Vec<CalEvent>,
}

#[derive(Template)]
#[template(path = "partials/calendar.html")]
struct CalendarPage {
    view: String,
    scope: String,
    can_team: bool,
    can_write: bool,
    title: String,
    prev: String,
    next: String,
    today: String,
    /// The date the view was asked for, kept when switching view or scope.
    anchor: String,
    weeks: Vec<Vec<CalDay>>,
    /// The month grid's column heads, from the person's first day of the week.
    weekdays: Vec<String>,
}

/// The days a view shows: (first day, number of days, previous anchor, next anchor, title).
fn span(
    date: NaiveDate,
    month: bool,
    local: &Local,
) -> (NaiveDate, i64, NaiveDate, NaiveDate, String) {
    // Weeks start on the person's first day of the week; a month shows the whole weeks it
    // touches.
    let first_day = local.week_start();
    let monday = |d: NaiveDate| d - Duration::days(i64::from(d.weekday().days_since(first_day)));
    if month {
        let start = date.with_day(1).unwrap_or(date);
        let end = (start + Duration::days(32)).with_day(1).unwrap_or(start);
        let grid_start = monday(start);
        let weeks = ((end - grid_start).num_days() + 6) / 7;
        (
            grid_start,
            weeks * 7,
            (start - Duration::days(1)).with_day(1).unwrap_or(start),
            end,
            start.format("%B %Y").to_string(),
        )
    } else {
        let start = monday(date);
        (
            start,
            7,
            start - Duration::days(7),
            start + Duration::days(7),
            format!(
                "{} – {}",
                local.date(start),
                local.date(start + Duration::days(6))
            ),
        )
    }
}

/// The planned calls and meetings, and open tasks on their due day; the owner's name only
/// on the team view.
fn by_day(
    rows: Vec<(InteractionRow, String)>,
    names: Option<&HashMap<String, String>>,
    local: &Local,
) -> HashMap<NaiveDate, Vec<CalEvent>> {
    let mut out: HashMap<NaiveDate, Vec<CalEvent>> = HashMap::new();
    for (r, client) in rows {
        let Some(at) = r.scheduled_at.or(r.due_at) else {
            continue;
        };
        out.entry(local.wall(at).date())
            .or_default()
            .push(CalEvent {
                owner: names
                    .and_then(|n| r.user_id.as_ref().and_then(|u| n.get(u).cloned()))
                    .unwrap_or_default(),
                id: r.id,
                client_id: r.client_id,
                client,
                time: if r.kind == "task" {
                    format!("Due {}", local.time(at))
                } else {
                    local.time(at)
                },
                subject: r.subject,
                kind: r.kind,
                cancelled: r.status == "cancelled",
            });
    }
    out
}

/// The grid of `days` days from `first`, a row per week.
fn weeks(
    first: NaiveDate,
    days: i64,
    anchor: NaiveDate,
    month: bool,
    mut events: HashMap<NaiveDate, Vec<CalEvent>>,
    local: &Local,
) -> Vec<Vec<CalDay>> {
    let today = local.today();
    let all: Vec<CalDay> = (0..days)
        .map(|i| first + Duration::days(i))
        .map(|d| CalDay {
            label: if month {
                d.format("%-d").to_string()
            } else {
                local.day(d)
            },
            iso: d.format("%Y-%m-%d").to_string(),
            today: d == today,
            outside: month && d.month() != anchor.month(),
            events: events.remove(&d).unwrap_or_default(),
        })
        .collect();
    let mut out = Vec::new();
    let mut it = all.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(7).collect());
    }
    out
}

/// `GET /calendar?view=week|month&date=&scope=me|team`.
pub async fn page(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let local = scope.local;
    let today = local.today();
    let date = get("date")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(today);
    let month = get("view") == Some("month");
    let can_team = scope.access("client").oversee;
    let team = can_team && get("scope") == Some("team");
    let (first, days, prev, next, title) = span(date, month, &local);
    let rows = ops::calendar(&scope, first, first + Duration::days(days), team).await?;
    let names = if team {
        Some(ops::member_names(&scope).await?)
    } else {
        None
    };
    let page = CalendarPage {
        view: if month { "month" } else { "week" }.into(),
        scope: if team { "team" } else { "me" }.into(),
        can_team,
        can_write: scope.can("interaction", "write"),
        title,
        prev: prev.format("%Y-%m-%d").to_string(),
        next: next.format("%Y-%m-%d").to_string(),
        today: today.format("%Y-%m-%d").to_string(),
        anchor: date.format("%Y-%m-%d").to_string(),
        weekdays: (0..7)
            .map(|i| (first + Duration::days(i)).format("%a").to_string())
            .collect(),
        weeks: weeks(
            first,
            days,
            date,
            month,
            by_day(rows, names.as_ref(), &local),
            &local,
        ),
    };
    render(&req, &actor, "Calendar", &page).await
}

/// `PUT /calendar/import?name=` with the `.ics` file as the body (from the calendar page).
pub async fn import(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| {
        crate::error::AppError::BadRequest("The calendar file is not UTF-8 text.".into())
    })?;
    let report = ops::import_ics(&scope, text, None)
        .await
        .map_err(crate::web::console::as_toast)?;
    redirect_with_flash(&req, "/calendar", &report_message(&report))
}

/// What an import did, in one sentence for the flash.
fn report_message(report: &crate::domain::appointments::IcsReport) -> String {
    let mut message = format!(
        "Imported {} meeting{}, updated {}.",
        report.created,
        if report.created == 1 { "" } else { "s" },
        report.updated
    );
    if !report.skipped.is_empty() {
        let reasons: Vec<String> = report
            .skipped
            .iter()
            .take(3)
            .map(|(s, why)| format!("“{s}”: {why}"))
            .collect();
        message.push_str(&format!(
            " Left out {}: {}",
            report.skipped.len(),
            reasons.join(" ")
        ));
    }
    message
}
