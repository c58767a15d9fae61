//! The calendar: planned calls and meetings for a week or a month, mine or (for those who
//! oversee) the team's, and importing `.ics` invitations as meetings.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Datelike, Duration, NaiveDate};

use crate::auth::ConsoleActor;
use crate::db;
use crate::domain::interactions::calendar_users;
use crate::error::AppResult;
use crate::state::AppState;
use crate::web::console::{redirect_with_flash, render};
use crate::web::{client_access, query_pairs};

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
}

/// `GET /calendar?view=week|month&date=&scope=me|team`.
pub async fn page(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
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
    };
    let today = chrono::Utc::now().date_naive();
    let date = get("date")
        .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
        .unwrap_or(today);
    let month = get("view").as_deref() == Some("month");
    let can_team = access.oversee;
    let team = can_team && get("scope").as_deref() == Some("team");
    // Weeks start on Monday; a month shows the whole weeks it touches.
    let monday = |d: NaiveDate| d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
    let (first, days, prev, next, title) = if month {
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
                start.format("%-d %b"),
                (start + Duration::days(6)).format("%-d %b %Y")
            ),
        )
    };
    let org = actor.org_id().to_string();
    let (rows, names) = db::run(&state.pool, move |c| {
        let users = calendar_users(c, &org, &access, team)?;
        let rows = crate::domain::calendar::between(
            c,
            &org,
            &users,
            first.and_hms_opt(0, 0, 0).unwrap_or_default(),
            (first + Duration::days(days))
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default(),
            2000,
        )?;
        let names: HashMap<String, String> = crate::domain::orgs::store::list_members(
            c,
            &org,
            &crate::domain::orgs::store::MemberFilter {
                limit: 1000,
                ..Default::default()
            },
        )?
        .into_iter()
        .map(|m| {
            let n = if m.user.name.is_empty() {
                m.user.email
            } else {
                m.user.name
            };
            (m.user.id, n)
        })
        .collect();
        Ok((rows, names))
    })
    .await?;
    let mut by_day: HashMap<NaiveDate, Vec<CalEvent>> = HashMap::new();
    for (r, client, _) in rows {
        let Some(at) = r.scheduled_at else { continue };
        by_day.entry(at.date()).or_default().push(CalEvent {
            id: r.id.clone(),
            client_id: r.client_id.clone(),
            client,
            time: at.format("%H:%M").to_string(),
            subject: r.subject.clone(),
            kind: r.kind.clone(),
            cancelled: r.status == "cancelled",
            owner: if team {
                r.user_id
                    .as_ref()
                    .and_then(|u| names.get(u).cloned())
                    .unwrap_or_default()
            } else {
                String::new()
            },
        });
    }
    let mut weeks: Vec<Vec<CalDay>> = Vec::new();
    for i in 0..days {
        let d = first + Duration::days(i);
        if i % 7 == 0 {
            weeks.push(Vec::new());
        }
        if let Some(w) = weeks.last_mut() {
            w.push(CalDay {
                label: if month {
                    d.format("%-d").to_string()
                } else {
                    d.format("%a %-d %b").to_string()
                },
                iso: d.format("%Y-%m-%d").to_string(),
                today: d == today,
                outside: month && d.month() != date.month(),
                events: by_day.remove(&d).unwrap_or_default(),
            });
        }
    }
    let page = CalendarPage {
        view: if month { "month" } else { "week" }.into(),
        scope: if team { "team" } else { "me" }.into(),
        can_team,
        can_write,
        title,
        prev: prev.format("%Y-%m-%d").to_string(),
        next: next.format("%Y-%m-%d").to_string(),
        today: today.format("%Y-%m-%d").to_string(),
        anchor: date.format("%Y-%m-%d").to_string(),
        weeks,
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
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| {
        crate::error::AppError::BadRequest("The calendar file is not UTF-8 text.".into())
    })?;
    let ctx = actor.audit();
    let report = db::run(&state.pool, move |c| {
        crate::domain::appointments::import_ics(c, &ctx, &access, &text, None)
    })
    .await
    .map_err(crate::web::console::as_toast)?;
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
    redirect_with_flash(&req, "/calendar", &message)
}
