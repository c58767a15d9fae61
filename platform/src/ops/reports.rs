//! Reports and dashboards, one set of operations for the API and the console: the standard
//! reports, custom reports (preview, save, share, run), dashboards of tiles with one period
//! for all of them, and dashboards e-mailed on a schedule.
//!
//! Rights: `report:read` runs reports and keeps private reports and dashboards of one's
//! own; `report:write` shares them with a role or everyone and edits anyone's. Every report
//! counts only what the caller may see: the entity's read right is required, and a caller
//! without `oversee` on it counts only their own records.

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use super::Scope;
use crate::db::now;
use crate::domain::reports::custom::{Asker, Definition};
use crate::domain::reports::store::{
    self, DashboardInput, DashboardRow, ReportInput, ReportRow, ScheduleInput, ScheduleRow, Tile,
    Viewer,
};
use crate::domain::reports::{self, check_period, standard, Reach, Report};
use crate::error::{AppError, AppResult};

fn iso(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The period asked for, or the last 90 days up to today.
pub fn period(from: Option<NaiveDate>, to: Option<NaiveDate>) -> AppResult<(NaiveDate, NaiveDate)> {
    let to = to.unwrap_or_else(|| now().date());
    let from = from.unwrap_or(to - Duration::days(89));
    check_period(from, to)?;
    Ok((from, to))
}

fn reach(scope: &Scope, from: NaiveDate, to: NaiveDate, pipeline: Option<String>) -> Reach {
    let own = |resource: &str| {
        let a = scope.access(resource);
        (!a.oversee).then_some(a.user_id)
    };
    Reach {
        org: scope.org_id.clone(),
        from,
        to,
        deals_of: own("opportunity"),
        activities_of: own("interaction"),
        clients_of: own("client"),
        deals: scope.can("opportunity", "read"),
        activities: scope.can("interaction", "read"),
        pipeline: pipeline.filter(|p| !p.is_empty()),
    }
}

/// The standard reports the caller may run: (name, title).
pub fn standard_reports(scope: &Scope) -> Vec<(&'static str, &'static str)> {
    if !scope.can("report", "read") {
        return Vec::new();
    }
    standard::KINDS
        .iter()
        .filter(|(_, _, needs)| match *needs {
            "deals" => scope.can("opportunity", "read"),
            "activities" => scope.can("interaction", "read"),
            "segments" => scope.can("segment", "read"),
            _ => true,
        })
        .map(|(k, t, _)| (*k, *t))
        .collect()
}

pub async fn standard(
    scope: &Scope,
    kind: String,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    pipeline: Option<String>,
) -> AppResult<Report> {
    scope.require("report", "read")?;
    if standard::title_of(&kind).is_none() {
        return Err(AppError::NotFound);
    }
    if kind == "segment-growth" {
        scope.require("segment", "read")?;
    }
    let (from, to) = period(from, to)?;
    let r = reach(scope, from, to, pipeline);
    scope.read(move |c| standard::run(c, &kind, &r)).await
}

async fn viewer(scope: &Scope) -> AppResult<Viewer> {
    let user = scope.user_id.clone().unwrap_or_default();
    let manage = scope.can("report", "write");
    let org = scope.org_id.clone();
    let u = user.clone();
    let role = scope.read(move |c| store::role_of(c, &org, &u)).await?;
    Ok(Viewer { user, role, manage })
}

/// Runs a definition (checked first) for the caller.
fn run_definition(
    c: &mut crate::db::DbConn,
    asker: &Asker,
    def: Definition,
    title: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<Report> {
    if let Some(seg) = &def.segment {
        // A segment of another organization (or a deleted one) is named as such, not run.
        crate::domain::segments::get(c, asker.org, seg)
            .map_err(|_| AppError::invalid("segment", "No such segment in this organization."))?;
    }
    def.check()?.run(c, asker, title, from, to)
}

/// The read right the entity needs, and whether the caller counts only their own records.
fn entity_reach(scope: &Scope, def: &Definition) -> AppResult<bool> {
    let entity = reports::custom::entity(&def.entity).ok_or_else(|| {
        AppError::invalid(
            "entity",
            "Choose what to report on: clients, deals or interactions.",
        )
    })?;
    scope.require(entity.resource, "read")?;
    if def.segment.is_some() {
        scope.require("segment", "read")?;
    }
    Ok(!scope.access(entity.resource).oversee)
}

/// A definition run without saving it (the builder's live preview).
pub async fn preview(
    scope: &Scope,
    def: Definition,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> AppResult<Report> {
    scope.require("report", "read")?;
    let own_only = entity_reach(scope, &def)?;
    let (from, to) = period(from, to)?;
    let org = scope.org_id.clone();
    let user = scope.user_id.clone().unwrap_or_default();
    scope
        .read(move |c| {
            let asker = Asker {
                org: &org,
                user: &user,
                own_only,
            };
            run_definition(c, &asker, def, "Preview", from, to)
        })
        .await
}

/// A saved report as the API answers it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavedReport {
    pub id: String,
    pub name: String,
    pub description: String,
    pub definition: Definition,
    /// `null` (private), a role name, or `everyone`.
    pub shared_with: Option<String>,
    pub created_by: Option<String>,
    /// Whether the caller may change or delete it.
    pub editable: bool,
    pub version: i64,
    pub updated_at: String,
}

fn saved(row: ReportRow, v: &Viewer) -> AppResult<SavedReport> {
    Ok(SavedReport {
        definition: row.definition()?,
        editable: v.edits(&row.created_by),
        id: row.id,
        name: row.name,
        description: row.description,
        shared_with: row.shared_with,
        created_by: row.created_by,
        version: row.version,
        updated_at: iso(row.updated_at),
    })
}

pub async fn list(scope: &Scope) -> AppResult<Vec<SavedReport>> {
    scope.require("report", "read")?;
    let v = viewer(scope).await?;
    let org = scope.org_id.clone();
    let scope_rights = scope.clone();
    scope
        .read(move |c| {
            store::list_reports(c, &org, &v)?
                .into_iter()
                .map(|r| saved(r, &v))
                .filter(|r| match r {
                    // Only what the reader could run: a deals report is not listed for a
                    // role that sees no deals.
                    Ok(r) => entity_reach(&scope_rights, &r.definition).is_ok(),
                    Err(_) => true,
                })
                .collect()
        })
        .await
}

pub async fn get(scope: &Scope, id: String) -> AppResult<SavedReport> {
    scope.require("report", "read")?;
    let v = viewer(scope).await?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| saved(store::get_report(c, &org, &id, &v)?, &v))
        .await
}

/// What a report is saved from.
pub struct ReportForm {
    pub name: String,
    pub description: String,
    pub definition: Definition,
    pub shared_with: Option<String>,
}

fn checked_input(scope: &Scope, f: ReportForm) -> AppResult<ReportInput> {
    let shared_with = store::check_sharing(f.shared_with.as_deref())?;
    if shared_with.is_some() {
        scope.require("report", "write")?;
    }
    entity_reach(scope, &f.definition)?;
    let definition = f.definition.check()?.def;
    Ok(ReportInput {
        name: f.name,
        description: f.description,
        definition,
        shared_with,
    })
}

pub async fn create(scope: &Scope, f: ReportForm) -> AppResult<SavedReport> {
    scope.require("report", "read")?;
    let input = checked_input(scope, f)?;
    let v = viewer(scope).await?;
    let ctx = scope.audit.clone();
    scope
        .write(move |c, _| saved(store::create_report(c, &ctx, input)?, &v))
        .await
}

pub async fn update(
    scope: &Scope,
    id: String,
    f: ReportForm,
    expected: Option<i64>,
) -> AppResult<SavedReport> {
    scope.require("report", "read")?;
    let input = checked_input(scope, f)?;
    let v = viewer(scope).await?;
    let ctx = scope.audit.clone();
    scope
        .write(move |c, _| {
            let old = store::get_report(c, &ctx.org_id, &id, &v)?;
            v.may_edit(&old.created_by, "changes a shared report")?;
            store::update_report(c, &ctx, &old, input, expected)?;
            saved(store::get_report(c, &ctx.org_id, &id, &v)?, &v)
        })
        .await
}

pub async fn delete(scope: &Scope, id: String) -> AppResult<()> {
    scope.require("report", "read")?;
    let v = viewer(scope).await?;
    let ctx = scope.audit.clone();
    scope
        .write(move |c, _| {
            let old = store::get_report(c, &ctx.org_id, &id, &v)?;
            v.may_edit(&old.created_by, "deletes a shared report")?;
            store::delete_report(c, &ctx, &old, &v)
        })
        .await
}

/// Runs a saved report over a period.
pub async fn run(
    scope: &Scope,
    id: String,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> AppResult<Report> {
    let r = get(scope, id).await?;
    let own_only = entity_reach(scope, &r.definition)?;
    let (from, to) = period(from, to)?;
    let org = scope.org_id.clone();
    let user = scope.user_id.clone().unwrap_or_default();
    scope
        .read(move |c| {
            let asker = Asker {
                org: &org,
                user: &user,
                own_only,
            };
            run_definition(c, &asker, r.definition, &r.name, from, to)
        })
        .await
}

/// A dashboard as the API answers it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardView {
    pub id: String,
    pub name: String,
    pub tiles: Vec<Tile>,
    pub shared_with: Option<String>,
    pub created_by: Option<String>,
    pub editable: bool,
    pub version: i64,
}

fn dashboard_view(d: DashboardRow, v: &Viewer) -> DashboardView {
    DashboardView {
        tiles: d.tiles(),
        editable: v.edits(&d.created_by),
        id: d.id,
        name: d.name,
        shared_with: d.shared_with,
        created_by: d.created_by,
        version: d.version,
    }
}

pub async fn dashboards(scope: &Scope) -> AppResult<Vec<DashboardView>> {
    scope.require("report", "read")?;
    let v = viewer(scope).await?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            Ok(store::list_dashboards(c, &org, &v)?
                .into_iter()
                .map(|d| dashboard_view(d, &v))
                .collect())
        })
        .await
}

pub async fn dashboard(scope: &Scope, id: String) -> AppResult<DashboardView> {
    scope.require("report", "read")?;
    let v = viewer(scope).await?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| Ok(dashboard_view(store::get_dashboard(c, &org, &id, &v)?, &v)))
        .await
}

pub struct DashboardForm {
    pub name: String,
    pub tiles: Vec<Tile>,
    pub shared_with: Option<String>,
}

pub async fn save_dashboard(
    scope: &Scope,
    id: Option<String>,
    f: DashboardForm,
    expected: Option<i64>,
) -> AppResult<DashboardView> {
    scope.require("report", "read")?;
    let shared_with = store::check_sharing(f.shared_with.as_deref())?;
    if shared_with.is_some() {
        scope.require("report", "write")?;
    }
    let v = viewer(scope).await?;
    let ctx = scope.audit.clone();
    scope
        .write(move |c, _| {
            store::check_tiles(c, &ctx.org_id, &v, &f.tiles)?;
            let input = DashboardInput {
                name: f.name,
                tiles: f.tiles,
                shared_with,
            };
            let id = match id {
                None => store::create_dashboard(c, &ctx, input)?.id,
                Some(id) => {
                    let old = store::get_dashboard(c, &ctx.org_id, &id, &v)?;
                    v.may_edit(&old.created_by, "changes a shared dashboard")?;
                    store::update_dashboard(c, &ctx, &old, input, expected)?;
                    id
                }
            };
            Ok(dashboard_view(
                store::get_dashboard(c, &ctx.org_id, &id, &v)?,
                &v,
            ))
        })
        .await
}

pub async fn delete_dashboard(scope: &Scope, id: String) -> AppResult<()> {
    scope.require("report", "read")?;
    let v = viewer(scope).await?;
    let ctx = scope.audit.clone();
    scope
        .write(move |c, _| {
            let old = store::get_dashboard(c, &ctx.org_id, &id, &v)?;
            v.may_edit(&old.created_by, "deletes a shared dashboard")?;
            store::delete_dashboard(c, &ctx, &old)
        })
        .await
}

/// A dashboard tile's content for a period.
#[derive(Debug, Clone)]
pub enum TileOut {
    Report(Box<Report>),
    Figure {
        label: String,
        value: String,
        detail: String,
    },
    /// The tile cannot be shown to this viewer (no right, or the report is gone).
    Unavailable(String),
}

pub async fn tile(scope: &Scope, t: &Tile, from: NaiveDate, to: NaiveDate) -> TileOut {
    let out = match t.kind.as_str() {
        "report" => run(scope, t.reference.clone(), Some(from), Some(to))
            .await
            .map(|r| TileOut::Report(Box::new(r))),
        "standard" => standard(scope, t.reference.clone(), Some(from), Some(to), None)
            .await
            .map(|r| TileOut::Report(Box::new(r))),
        _ => kpi(scope, &t.reference, from, to).await,
    };
    out.unwrap_or_else(|e| {
        TileOut::Unavailable(match e {
            AppError::Forbidden(_) => "Your role may not see this.".into(),
            AppError::NotFound => "This report was deleted or is no longer shared with you.".into(),
            other => other.to_string(),
        })
    })
}

async fn kpi(scope: &Scope, which: &str, from: NaiveDate, to: NaiveDate) -> AppResult<TileOut> {
    let label = store::KPIS
        .iter()
        .find(|k| k.0 == which)
        .map(|k| k.1)
        .ok_or(AppError::NotFound)?;
    if which == "activities" {
        scope.require("interaction", "read")?;
    }
    let o = super::overview::overview(scope, Some(from), Some(to)).await?;
    let (value, detail) = match which {
        "newClients" => (
            o.new_clients.to_string(),
            "created in the period".to_string(),
        ),
        "activities" => (
            o.activities.to_string(),
            "calls, meetings, e-mails and notes done".into(),
        ),
        "atRisk" => (o.at_risk.to_string(), "churn risk 50 or more".into()),
        "winRate" => match o.win_rate {
            None => return Err(AppError::Forbidden(String::new())),
            Some(w) => (
                w.rate
                    .map(|r| format!("{:.0}%", r * 100.0))
                    .unwrap_or_else(|| "—".into()),
                format!("{} won, {} lost", w.won, w.lost),
            ),
        },
        _ => match o.open_pipeline {
            None => return Err(AppError::Forbidden(String::new())),
            Some(p) if p.is_empty() => ("0".into(), "no open deals".into()),
            Some(p) => (
                p.iter()
                    .map(|m| {
                        let amount = m.value.parse().unwrap_or_default();
                        scope.local.money(amount, &m.currency)
                    })
                    .collect::<Vec<_>>()
                    .join(" · "),
                format!("{} open deals", p.iter().map(|m| m.deals).sum::<i64>()),
            ),
        },
    };
    Ok(TileOut::Figure {
        label: label.into(),
        value,
        detail,
    })
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub id: String,
    pub cadence: String,
    pub day: i32,
    pub hour: i32,
    pub recipients: Vec<String>,
    pub next_run_at: String,
    pub last_run_at: Option<String>,
    pub last_error: Option<String>,
    /// The IANA zone `hour` is read in.
    pub time_zone: String,
}

fn schedule_view(s: ScheduleRow) -> ScheduleView {
    ScheduleView {
        recipients: s.recipients(),
        id: s.id,
        cadence: s.cadence,
        day: s.day,
        hour: s.hour,
        next_run_at: iso(s.next_run_at),
        last_run_at: s.last_run_at.map(iso),
        last_error: s.last_error,
        time_zone: s.time_zone,
    }
}

pub async fn schedules(scope: &Scope, dashboard: String) -> AppResult<Vec<ScheduleView>> {
    let d = self::dashboard(scope, dashboard).await?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            Ok(store::schedules_of(c, &org, &d.id)?
                .into_iter()
                .map(schedule_view)
                .collect())
        })
        .await
}

/// E-mails a dashboard on a schedule: who may change the dashboard may schedule it.
pub async fn schedule(
    scope: &Scope,
    dashboard: String,
    s: ScheduleInput,
) -> AppResult<ScheduleView> {
    scope.require("report", "read")?;
    let v = viewer(scope).await?;
    // why: e-mailing a dashboard to others shares it; sharing needs report:write. Without
    // it, one schedules it for oneself.
    if !v.manage && s.recipients.iter().any(|r| r != &v.user) {
        return Err(AppError::Forbidden(
            "Sending a dashboard to others shares it, which needs the report write right; schedule it for yourself.".into(),
        ));
    }
    let ctx = scope.audit.clone();
    scope
        .write(move |c, _| {
            let d = store::get_dashboard(c, &ctx.org_id, &dashboard, &v)?;
            v.may_edit(&d.created_by, "schedules a dashboard")?;
            Ok(schedule_view(store::create_schedule(c, &ctx, &d, s)?))
        })
        .await
}

pub async fn unschedule(scope: &Scope, dashboard: String, id: String) -> AppResult<()> {
    scope.require("report", "read")?;
    let v = viewer(scope).await?;
    let ctx = scope.audit.clone();
    scope
        .write(move |c, _| {
            let d = store::get_dashboard(c, &ctx.org_id, &dashboard, &v)?;
            v.may_edit(&d.created_by, "changes a dashboard's schedule")?;
            store::delete_schedule(c, &ctx, &d.id, &id)
        })
        .await
}

/// The members a schedule may be sent to: the organization's active members.
pub async fn recipients(scope: &Scope) -> AppResult<Vec<(String, String)>> {
    scope.require("report", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| super::sales::members(c, &org)).await
}

/// The period a scheduled e-mail covers: the day, week or 30 days before it is sent.
pub fn scheduled_period(cadence: &str, today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let to = today - Duration::days(1);
    let days = match cadence {
        "daily" => 1,
        "weekly" => 7,
        _ => 30,
    };
    (to - Duration::days(days - 1), to)
}

/// A dashboard as an e-mail for one recipient: the text (key figures, and the first rows
/// of each report) and each report as a CSV attachment.
pub async fn dashboard_mail(
    scope: &Scope,
    name: &str,
    tiles: &[Tile],
    from: NaiveDate,
    to: NaiveDate,
) -> AppResult<(String, Vec<(String, Vec<u8>)>)> {
    let mut text = format!("{name}\n{from} to {to}\n\n");
    let mut files = Vec::new();
    let mut figures = Vec::new();
    let mut shown = Vec::new();
    for t in tiles {
        match tile(scope, t, from, to).await {
            TileOut::Figure {
                label,
                value,
                detail,
            } => {
                text.push_str(&format!("{label}: {value} ({detail})\n"));
                figures.push((label, value, detail));
            }
            TileOut::Report(r) => {
                text.push_str(&format!("\n{}\n", r.title));
                for row in r.table.rows.iter().take(10) {
                    let line: Vec<String> = r
                        .table
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| format!("{}: {}", c.label, v.text()))
                        .collect();
                    text.push_str(&format!("  {}\n", line.join(" · ")));
                }
                if r.table.rows.len() > 10 {
                    text.push_str(&format!(
                        "  … and {} more rows in the attachment\n",
                        r.table.rows.len() - 10
                    ));
                }
                let stem = reports::file_stem(&r.title);
                files.push((format!("{stem}-{from}-{to}.csv"), r.csv()?));
                shown.push(*r);
            }
            TileOut::Unavailable(_) => {}
        }
    }
    // The whole dashboard as one PDF first, then each report's CSV.
    let stem = reports::file_stem(name);
    let pdf = reports::pdf(name, &format!("{from} to {to}"), &figures, &shown);
    files.insert(0, (format!("{stem}-{from}-{to}.pdf"), pdf));
    text.push_str(
        "\nThe PDF attached shows the whole dashboard; each CSV holds one report's rows.\n",
    );
    Ok((text, files))
}

/// Sends the dashboards whose schedule is due: each recipient's copy is computed with
/// that recipient's own rights, and leaves through the organization's first shared
/// mailbox. A schedule is moved to its next run before it is sent, so a crash never
/// sends it twice (it may skip one run instead); the outcome is kept on the schedule.
pub async fn send_due(
    authz: &crate::domain::policy::Authorizer,
    handles: super::Handles,
) -> AppResult<usize> {
    use crate::db::schema::{dashboards, mailboxes, users};
    use diesel::prelude::*;
    let pool = handles.pool.clone();
    let due = crate::db::run(&pool, |c| store::claim_due(c, 10)).await?;
    let n = due.len();
    for s in due {
        let s2 = s.clone();
        let found = crate::db::run(&pool, move |c| {
            let d: Option<DashboardRow> = dashboards::table
                .filter(dashboards::id.eq(&s2.dashboard_id))
                .select(DashboardRow::as_select())
                .first(c)
                .optional()?;
            let mailbox: Option<crate::domain::mail::MailboxRow> = mailboxes::table
                .filter(mailboxes::organization_id.eq(&s2.organization_id))
                .filter(mailboxes::user_id.is_null())
                .order(mailboxes::created_at.asc())
                .select(crate::domain::mail::MailboxRow::as_select())
                .first(c)
                .optional()?;
            let people: Vec<(String, String, String)> = users::table
                .filter(users::id.eq_any(s2.recipients()))
                .select((users::id, users::email, users::name))
                .load(c)?;
            Ok((d, mailbox, people))
        })
        .await?;
        let outcome = match found {
            (None, _, _) => Err("The dashboard was deleted.".to_string()),
            (_, None, _) => Err(
                "No shared mailbox to send from: connect one under E-mail → Mailboxes.".to_string(),
            ),
            (Some(d), Some(mb), people) => send_one(authz, &handles, &s, &d, &mb, people).await,
        };
        let id = s.id.clone();
        crate::db::run(&pool, move |c| store::record_outcome(c, &id, outcome.err())).await?;
    }
    Ok(n)
}

async fn send_one(
    authz: &crate::domain::policy::Authorizer,
    handles: &super::Handles,
    s: &ScheduleRow,
    d: &DashboardRow,
    mb: &crate::domain::mail::MailboxRow,
    people: Vec<(String, String, String)>,
) -> Result<(), String> {
    use lettre::message::{header::ContentType, Attachment, Mailbox, MultiPart, SinglePart};
    let (from, to) = scheduled_period(&s.cadence, now().date());
    let csv = ContentType::parse("text/csv").map_err(|e| e.to_string())?;
    let pdf = ContentType::parse("application/pdf").map_err(|e| e.to_string())?;
    let login = mb.login(&handles.secret).map_err(|e| e.to_string())?;
    let sender: lettre::Address = mb
        .address
        .parse()
        .map_err(|e| format!("the shared mailbox's address: {e}"))?;
    let mut failures = Vec::new();
    for (user, email, name) in people {
        let rights = match authz.permissions(&user, &s.organization_id).await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{email}: {e}"));
                continue;
            }
        };
        if !rights.iter().any(|(r, a)| r == "report" && a == "read") {
            failures.push(format!("{email} may no longer read reports"));
            continue;
        }
        // The dashboard must still be one the recipient may see (a private one goes to its
        // author only).
        let role = {
            let (org, u) = (s.organization_id.clone(), user.clone());
            crate::db::run(&handles.pool, move |c| store::role_of(c, &org, &u))
                .await
                .unwrap_or_default()
        };
        let viewer = Viewer {
            manage: rights.iter().any(|(r, a)| r == "report" && a == "write"),
            user: user.clone(),
            role,
        };
        if !viewer.sees(&d.created_by, &d.shared_with) {
            failures.push(format!("{email} may not see this dashboard"));
            continue;
        }
        let audit = crate::domain::audit::AuditContext {
            org_id: s.organization_id.clone(),
            actor_user_id: Some(user.clone()),
            actor_label: "scheduled report".into(),
            ip: String::new(),
            request_id: crate::db::new_id(),
            import_batch: None,
        };
        let scope = Scope::user(audit, &user, rights, handles.clone());
        let (text, files) = match dashboard_mail(&scope, &d.name, &d.tiles(), from, to).await {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{email}: {e}"));
                continue;
            }
        };
        let Ok(address) = email.parse::<lettre::Address>() else {
            failures.push(format!("{email} is not an address"));
            continue;
        };
        let mut mixed = MultiPart::mixed().singlepart(SinglePart::plain(text));
        for (file, bytes) in files {
            let kind = if file.ends_with(".pdf") {
                pdf.clone()
            } else {
                csv.clone()
            };
            mixed = mixed.singlepart(Attachment::new(file).body(bytes, kind));
        }
        let message = match lettre::Message::builder()
            .from(Mailbox::new(Some(mb.name.clone()), sender.clone()))
            .to(Mailbox::new(Some(name), address))
            .subject(format!("{} — {from} to {to}", d.name))
            .date_now()
            .multipart(mixed)
        {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{email}: {e}"));
                continue;
            }
        };
        let (server, login) = (mb.smtp(), login.clone());
        let sent = actix_web::web::block(move || {
            crate::integrations::mail::send(&server, &login, &message)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.reply));
        if let Err(e) = sent {
            failures.push(format!("{email}: {e}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
