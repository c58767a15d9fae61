//! Saved reports, dashboards and report schedules. A report or dashboard is private to its
//! author unless shared with a role or with everyone; who may share and edit is decided in
//! `ops::reports` (the `report:write` right).

use chrono::{Datelike, Duration, NaiveDateTime, Timelike};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::custom::Definition;
use crate::db::schema::{dashboards, memberships, report_schedules, reports};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::error::{AppError, AppResult};

pub const MAX_REPORTS: i64 = 500;
pub const MAX_DASHBOARDS: i64 = 200;
pub const MAX_TILES: usize = 12;
pub const MAX_SCHEDULES: i64 = 5;
pub const MAX_RECIPIENTS: usize = 50;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = reports)]
pub struct ReportRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub description: String,
    pub definition: String,
    pub shared_with: Option<String>,
    pub created_by: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl ReportRow {
    pub fn definition(&self) -> AppResult<Definition> {
        serde_json::from_str(&self.definition)
            .map_err(|e| AppError::Internal(format!("stored report definition: {e}")))
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = dashboards)]
pub struct DashboardRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub tiles: String,
    pub shared_with: Option<String>,
    pub created_by: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl DashboardRow {
    pub fn tiles(&self) -> Vec<Tile> {
        serde_json::from_str(&self.tiles).unwrap_or_default()
    }
}

/// One tile of a dashboard: a saved report, a standard report or a key figure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = DashboardTile)]
pub struct Tile {
    /// `report` (a saved report's id), `standard` (a standard report's name) or `kpi`
    /// (`newClients`, `openPipeline`, `winRate`, `activities`, `atRisk`).
    pub kind: String,
    #[serde(rename = "ref")]
    pub reference: String,
    /// Spans two columns of the grid.
    #[serde(default)]
    pub wide: bool,
}

pub const KPIS: &[(&str, &str)] = &[
    ("newClients", "New clients"),
    ("openPipeline", "Open pipeline"),
    ("winRate", "Win rate"),
    ("activities", "Activities"),
    ("atRisk", "Clients at risk"),
];

/// Who is looking: their id, role and whether they may manage every report.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: String,
    pub role: String,
    pub manage: bool,
}

impl Viewer {
    pub fn sees(&self, created_by: &Option<String>, shared_with: &Option<String>) -> bool {
        self.manage
            || created_by.as_deref() == Some(self.user.as_str())
            || matches!(shared_with.as_deref(), Some("everyone"))
            || shared_with.as_deref() == Some(self.role.as_str())
    }

    pub fn edits(&self, created_by: &Option<String>) -> bool {
        self.manage || created_by.as_deref() == Some(self.user.as_str())
    }

    /// Refuses (403) a change to someone else's report or dashboard without `report:write`;
    /// `doing` completes the sentence ("changes a shared report").
    pub fn may_edit(&self, created_by: &Option<String>, doing: &str) -> AppResult<()> {
        if self.edits(created_by) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "Only its author or someone with the report write right {doing}."
            )))
        }
    }
}

pub fn role_of(c: &mut DbConn, org: &str, user: &str) -> AppResult<String> {
    Ok(memberships::table
        .filter(memberships::organization_id.eq(org))
        .filter(memberships::user_id.eq(user))
        .select(memberships::role)
        .first::<String>(c)
        .optional()?
        .unwrap_or_default())
}

/// `None`, a role name or `everyone`.
pub fn check_sharing(s: Option<&str>) -> AppResult<Option<String>> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None | Some("private") => Ok(None),
        Some("everyone") => Ok(Some("everyone".into())),
        Some(r) if crate::domain::orgs::model::Role::parse(r).is_some() => Ok(Some(r.into())),
        Some(_) => Err(AppError::invalid(
            "sharedWith",
            "Share with a role (admin, manager, sales_rep, service_rep, marketer, read_only), with everyone, or keep it private.",
        )),
    }
}

fn check_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::invalid("name", "Give it a name."));
    }
    if name.chars().count() > 120 {
        return Err(AppError::invalid(
            "name",
            "A name is at most 120 characters.",
        ));
    }
    Ok(name.to_string())
}

fn unique(what: &'static str) -> impl Fn(diesel::result::Error) -> AppError {
    move |e| match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => AppError::invalid("name", &format!("Another {what} has this name.")),
        e => e.into(),
    }
}

pub fn list_reports(c: &mut DbConn, org: &str, v: &Viewer) -> AppResult<Vec<ReportRow>> {
    Ok(reports::table
        .filter(reports::organization_id.eq(org))
        .order(reports::name.asc())
        .limit(MAX_REPORTS)
        .select(ReportRow::as_select())
        .load(c)?
        .into_iter()
        .filter(|r| v.sees(&r.created_by, &r.shared_with))
        .collect())
}

pub fn get_report(c: &mut DbConn, org: &str, id: &str, v: &Viewer) -> AppResult<ReportRow> {
    let row = reports::table
        .filter(reports::organization_id.eq(org))
        .filter(reports::id.eq(id))
        .select(ReportRow::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)?;
    // why: another user's private report answers 404, as if it did not exist.
    if !v.sees(&row.created_by, &row.shared_with) {
        return Err(AppError::NotFound);
    }
    Ok(row)
}

pub struct ReportInput {
    pub name: String,
    pub description: String,
    pub definition: Definition,
    pub shared_with: Option<String>,
}

pub fn create_report(
    c: &mut DbConn,
    ctx: &AuditContext,
    input: ReportInput,
) -> AppResult<ReportRow> {
    let org = ctx.org_id.as_str();
    let n: i64 = reports::table
        .filter(reports::organization_id.eq(org))
        .count()
        .get_result(c)?;
    if n >= MAX_REPORTS {
        return Err(AppError::Conflict(format!(
            "An organization keeps at most {MAX_REPORTS} reports; delete one first."
        )));
    }
    let at = now();
    let row = ReportRow {
        id: new_id(),
        organization_id: org.into(),
        name: check_name(&input.name)?,
        description: input.description.chars().take(1000).collect(),
        definition: serde_json::to_string(&input.definition)
            .map_err(|e| AppError::Internal(e.to_string()))?,
        shared_with: input.shared_with,
        created_by: ctx.actor_user_id.clone(),
        version: 1,
        created_at: at,
        updated_at: at,
    };
    crate::db::transaction(c, |c| {
        diesel::insert_into(reports::table)
            .values(&row)
            .execute(c)
            .map_err(unique("report"))?;
        audit::record(
            c,
            ctx,
            "report.create",
            "report",
            Some(&row.id),
            json!({"name": row.name, "sharedWith": row.shared_with}),
        )?;
        Ok(row)
    })
}

pub fn update_report(
    c: &mut DbConn,
    ctx: &AuditContext,
    old: &ReportRow,
    input: ReportInput,
    expected: Option<i64>,
) -> AppResult<()> {
    if expected.is_some_and(|v| v != old.version) {
        return Err(AppError::PreconditionFailed(
            "Someone changed this report since you opened it; reload it and apply your change again.".into(),
        ));
    }
    let name = check_name(&input.name)?;
    let definition =
        serde_json::to_string(&input.definition).map_err(|e| AppError::Internal(e.to_string()))?;
    crate::db::transaction(c, |c| {
        let n = diesel::update(
            reports::table
                .filter(reports::id.eq(&old.id))
                .filter(reports::version.eq(old.version)),
        )
        .set((
            reports::name.eq(&name),
            reports::description.eq(input.description.chars().take(1000).collect::<String>()),
            reports::definition.eq(&definition),
            reports::shared_with.eq(&input.shared_with),
            reports::version.eq(old.version + 1),
            reports::updated_at.eq(now()),
        ))
        .execute(c)
        .map_err(unique("report"))?;
        if n == 0 {
            return Err(AppError::PreconditionFailed(
                "Someone changed this report at the same time; reload it and apply your change again.".into(),
            ));
        }
        audit::record(
            c,
            ctx,
            "report.update",
            "report",
            Some(&old.id),
            json!({"name": name, "sharedWith": input.shared_with}),
        )?;
        Ok(())
    })
}

/// Deletes a report; refused while a dashboard shows it (naming only the dashboards the
/// deleter may see).
pub fn delete_report(
    c: &mut DbConn,
    ctx: &AuditContext,
    row: &ReportRow,
    v: &Viewer,
) -> AppResult<()> {
    let using: Vec<DashboardRow> = dashboards::table
        .filter(dashboards::organization_id.eq(&row.organization_id))
        .select(DashboardRow::as_select())
        .load(c)?
        .into_iter()
        .filter(|d| {
            d.tiles()
                .iter()
                .any(|t| t.kind == "report" && t.reference == row.id)
        })
        .collect();
    if !using.is_empty() {
        let seen: Vec<String> = using
            .iter()
            .filter(|d| v.sees(&d.created_by, &d.shared_with))
            .map(|d| format!("{:?}", d.name))
            .collect();
        let unseen = using.len() - seen.len();
        let mut on = if seen.is_empty() {
            String::new()
        } else {
            format!("dashboard {}", seen.join(", "))
        };
        if unseen > 0 {
            if !on.is_empty() {
                on.push_str(" and ");
            }
            on.push_str(&format!(
                "{unseen} dashboard{} of someone else",
                if unseen == 1 { "" } else { "s" }
            ));
        }
        return Err(AppError::Conflict(format!(
            "Report {:?} is on {on}; take it off first.",
            row.name
        )));
    }
    crate::db::transaction(c, |c| {
        diesel::delete(reports::table.filter(reports::id.eq(&row.id))).execute(c)?;
        audit::record(
            c,
            ctx,
            "report.delete",
            "report",
            Some(&row.id),
            json!({"name": row.name}),
        )?;
        Ok(())
    })
}

pub fn list_dashboards(c: &mut DbConn, org: &str, v: &Viewer) -> AppResult<Vec<DashboardRow>> {
    Ok(dashboards::table
        .filter(dashboards::organization_id.eq(org))
        .order(dashboards::name.asc())
        .limit(MAX_DASHBOARDS)
        .select(DashboardRow::as_select())
        .load(c)?
        .into_iter()
        .filter(|d| v.sees(&d.created_by, &d.shared_with))
        .collect())
}

pub fn get_dashboard(c: &mut DbConn, org: &str, id: &str, v: &Viewer) -> AppResult<DashboardRow> {
    let row = dashboards::table
        .filter(dashboards::organization_id.eq(org))
        .filter(dashboards::id.eq(id))
        .select(DashboardRow::as_select())
        .first(c)
        .optional()?
        .ok_or(AppError::NotFound)?;
    if !v.sees(&row.created_by, &row.shared_with) {
        return Err(AppError::NotFound);
    }
    Ok(row)
}

pub struct DashboardInput {
    pub name: String,
    pub tiles: Vec<Tile>,
    pub shared_with: Option<String>,
}

/// Checks the tiles: known kinds, reports that exist and the author may see, at most 12.
pub fn check_tiles(c: &mut DbConn, org: &str, v: &Viewer, tiles: &[Tile]) -> AppResult<()> {
    if tiles.len() > MAX_TILES {
        return Err(AppError::invalid(
            "tiles",
            &format!("A dashboard holds at most {MAX_TILES} tiles."),
        ));
    }
    let mut errors = Vec::new();
    for (i, t) in tiles.iter().enumerate() {
        let ok = match t.kind.as_str() {
            "report" => get_report(c, org, &t.reference, v).is_ok(),
            "standard" => super::standard::title_of(&t.reference).is_some(),
            "kpi" => KPIS.iter().any(|k| k.0 == t.reference),
            _ => false,
        };
        if !ok {
            errors.push(crate::error::FieldError::new(
                format!("tiles[{i}]"),
                match t.kind.as_str() {
                    "report" => "No such saved report (or it is not shared with you).",
                    "standard" => "No such standard report.",
                    "kpi" => "No such key figure; use newClients, openPipeline, winRate, activities or atRisk.",
                    _ => "A tile is a report, a standard report or a kpi.",
                },
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(
            "The dashboard is not valid.".into(),
            errors,
        ))
    }
}

pub fn create_dashboard(
    c: &mut DbConn,
    ctx: &AuditContext,
    input: DashboardInput,
) -> AppResult<DashboardRow> {
    let org = ctx.org_id.as_str();
    let n: i64 = dashboards::table
        .filter(dashboards::organization_id.eq(org))
        .count()
        .get_result(c)?;
    if n >= MAX_DASHBOARDS {
        return Err(AppError::Conflict(format!(
            "An organization keeps at most {MAX_DASHBOARDS} dashboards; delete one first."
        )));
    }
    let at = now();
    let row = DashboardRow {
        id: new_id(),
        organization_id: org.into(),
        name: check_name(&input.name)?,
        tiles: serde_json::to_string(&input.tiles)
            .map_err(|e| AppError::Internal(e.to_string()))?,
        shared_with: input.shared_with,
        created_by: ctx.actor_user_id.clone(),
        version: 1,
        created_at: at,
        updated_at: at,
    };
    crate::db::transaction(c, |c| {
        diesel::insert_into(dashboards::table)
            .values(&row)
            .execute(c)
            .map_err(unique("dashboard"))?;
        audit::record(
            c,
            ctx,
            "dashboard.create",
            "dashboard",
            Some(&row.id),
            json!({"name": row.name, "tiles": input.tiles}),
        )?;
        Ok(row)
    })
}

pub fn update_dashboard(
    c: &mut DbConn,
    ctx: &AuditContext,
    old: &DashboardRow,
    input: DashboardInput,
    expected: Option<i64>,
) -> AppResult<()> {
    if expected.is_some_and(|v| v != old.version) {
        return Err(AppError::PreconditionFailed(
            "Someone changed this dashboard since you opened it; reload it and apply your change again.".into(),
        ));
    }
    let name = check_name(&input.name)?;
    let tiles =
        serde_json::to_string(&input.tiles).map_err(|e| AppError::Internal(e.to_string()))?;
    crate::db::transaction(c, |c| {
        let n = diesel::update(
            dashboards::table
                .filter(dashboards::id.eq(&old.id))
                .filter(dashboards::version.eq(old.version)),
        )
        .set((
            dashboards::name.eq(&name),
            dashboards::tiles.eq(&tiles),
            dashboards::shared_with.eq(&input.shared_with),
            dashboards::version.eq(old.version + 1),
            dashboards::updated_at.eq(now()),
        ))
        .execute(c)
        .map_err(unique("dashboard"))?;
        if n == 0 {
            return Err(AppError::PreconditionFailed(
                "Someone changed this dashboard at the same time; reload it and apply your change again.".into(),
            ));
        }
        audit::record(
            c,
            ctx,
            "dashboard.update",
            "dashboard",
            Some(&old.id),
            json!({"name": name, "tiles": input.tiles}),
        )?;
        Ok(())
    })
}

pub fn delete_dashboard(c: &mut DbConn, ctx: &AuditContext, row: &DashboardRow) -> AppResult<()> {
    crate::db::transaction(c, |c| {
        diesel::delete(dashboards::table.filter(dashboards::id.eq(&row.id))).execute(c)?;
        audit::record(
            c,
            ctx,
            "dashboard.delete",
            "dashboard",
            Some(&row.id),
            json!({"name": row.name}),
        )?;
        Ok(())
    })
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = report_schedules)]
pub struct ScheduleRow {
    pub id: String,
    pub organization_id: String,
    pub dashboard_id: String,
    pub recipients: String,
    pub cadence: String,
    pub day: i32,
    pub hour: i32,
    pub next_run_at: NaiveDateTime,
    pub last_run_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    /// The IANA zone `hour` is read in.
    pub time_zone: String,
}

impl ScheduleRow {
    pub fn recipients(&self) -> Vec<String> {
        serde_json::from_str(&self.recipients).unwrap_or_default()
    }
}

/// The first run of a schedule strictly after `after` (UTC): daily at `hour`; weekly on
/// weekday `day` (1 = Monday) at `hour`; monthly on day `day` (1–28) at `hour` — the day and
/// the hour on the clocks of `time_zone`, answered in UTC.
pub fn next_run(
    cadence: &str,
    day: i32,
    hour: i32,
    time_zone: &str,
    after: NaiveDateTime,
) -> NaiveDateTime {
    let local = crate::locale::Local::of(time_zone, "");
    let at_hour = |d: chrono::NaiveDate| {
        local.to_utc(
            d.and_hms_opt(hour.clamp(0, 23) as u32, 0, 0)
                .unwrap_or_default(),
        )
    };
    let mut d = local.wall(after).date();
    for _ in 0..400 {
        let fits = match cadence {
            "weekly" => d.weekday().number_from_monday() as i32 == day.clamp(1, 7),
            "monthly" => d.day() as i32 == day.clamp(1, 28),
            _ => true,
        };
        if fits && at_hour(d) > after {
            return at_hour(d);
        }
        d += Duration::days(1);
    }
    after + Duration::days(1)
}

pub struct ScheduleInput {
    pub recipients: Vec<String>,
    pub cadence: String,
    pub day: i32,
    pub hour: i32,
    /// The IANA zone `hour` is read in.
    pub time_zone: String,
}

pub fn check_schedule(c: &mut DbConn, org: &str, s: &ScheduleInput) -> AppResult<()> {
    let mut errors = Vec::new();
    if crate::locale::time_zone(&s.time_zone).is_none() {
        errors.push(crate::error::FieldError::new(
            "timeZone",
            "Choose a time zone by its IANA name, such as Europe/Berlin or UTC.",
        ));
    }
    if !matches!(s.cadence.as_str(), "daily" | "weekly" | "monthly") {
        errors.push(crate::error::FieldError::new(
            "cadence",
            "Choose daily, weekly or monthly.",
        ));
    }
    if s.cadence == "weekly" && !(1..=7).contains(&s.day) {
        errors.push(crate::error::FieldError::new(
            "day",
            "Pick a weekday, 1 (Monday) to 7 (Sunday).",
        ));
    }
    if s.cadence == "monthly" && !(1..=28).contains(&s.day) {
        errors.push(crate::error::FieldError::new(
            "day",
            "Pick a day of the month from 1 to 28.",
        ));
    }
    if !(0..=23).contains(&s.hour) {
        errors.push(crate::error::FieldError::new(
            "hour",
            "Pick an hour from 0 to 23.",
        ));
    }
    if s.recipients.is_empty() || s.recipients.len() > MAX_RECIPIENTS {
        errors.push(crate::error::FieldError::new(
            "recipients",
            format!("Choose 1 to {MAX_RECIPIENTS} people to send it to."),
        ));
    } else {
        let members: Vec<String> = memberships::table
            .filter(memberships::organization_id.eq(org))
            .filter(memberships::is_active.eq(true))
            .filter(memberships::user_id.eq_any(&s.recipients))
            .select(memberships::user_id)
            .load(c)?;
        if s.recipients.iter().any(|r| !members.contains(r)) {
            errors.push(crate::error::FieldError::new(
                "recipients",
                "Send only to active members of this organization.",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(
            "The schedule is not valid.".into(),
            errors,
        ))
    }
}

pub fn schedules_of(c: &mut DbConn, org: &str, dashboard: &str) -> AppResult<Vec<ScheduleRow>> {
    Ok(report_schedules::table
        .filter(report_schedules::organization_id.eq(org))
        .filter(report_schedules::dashboard_id.eq(dashboard))
        .order(report_schedules::created_at.asc())
        .select(ScheduleRow::as_select())
        .load(c)?)
}

pub fn create_schedule(
    c: &mut DbConn,
    ctx: &AuditContext,
    dashboard: &DashboardRow,
    s: ScheduleInput,
) -> AppResult<ScheduleRow> {
    check_schedule(c, &ctx.org_id, &s)?;
    if schedules_of(c, &ctx.org_id, &dashboard.id)?.len() as i64 >= MAX_SCHEDULES {
        return Err(AppError::Conflict(format!(
            "A dashboard has at most {MAX_SCHEDULES} schedules."
        )));
    }
    let at = now();
    let recipients = s.recipients.len();
    let row = ScheduleRow {
        id: new_id(),
        organization_id: ctx.org_id.clone(),
        dashboard_id: dashboard.id.clone(),
        recipients: serde_json::to_string(&s.recipients).unwrap_or_else(|_| "[]".into()),
        next_run_at: next_run(&s.cadence, s.day, s.hour, &s.time_zone, at),
        cadence: s.cadence,
        day: s.day,
        hour: s.hour,
        last_run_at: None,
        last_error: None,
        created_by: ctx.actor_user_id.clone(),
        created_at: at,
        time_zone: s.time_zone,
    };
    crate::db::transaction(c, |c| {
        diesel::insert_into(report_schedules::table)
            .values(&row)
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "dashboard.schedule",
            "dashboard",
            Some(&dashboard.id),
            json!({"cadence": row.cadence, "day": row.day, "hour": row.hour, "recipients": recipients}),
        )?;
        Ok(row)
    })
}

pub fn delete_schedule(
    c: &mut DbConn,
    ctx: &AuditContext,
    dashboard: &str,
    id: &str,
) -> AppResult<()> {
    let n = diesel::delete(
        report_schedules::table
            .filter(report_schedules::organization_id.eq(&ctx.org_id))
            .filter(report_schedules::dashboard_id.eq(dashboard))
            .filter(report_schedules::id.eq(id)),
    )
    .execute(c)?;
    if n == 0 {
        return Err(AppError::NotFound);
    }
    audit::record(
        c,
        ctx,
        "dashboard.unschedule",
        "dashboard",
        Some(dashboard),
        json!({}),
    )?;
    Ok(())
}

/// Claims the schedules due now: each is moved to its next run in the same statement that
/// picks it, so two workers never send the same one twice.
pub fn claim_due(c: &mut DbConn, limit: i64) -> AppResult<Vec<ScheduleRow>> {
    let at = now();
    let due: Vec<ScheduleRow> = report_schedules::table
        .filter(report_schedules::next_run_at.le(at))
        .order(report_schedules::next_run_at.asc())
        .limit(limit)
        .select(ScheduleRow::as_select())
        .load(c)?;
    let mut claimed = Vec::new();
    for s in due {
        let next = next_run(
            &s.cadence,
            s.day,
            s.hour,
            &s.time_zone,
            at.with_nanosecond(0).unwrap_or(at),
        );
        let n = diesel::update(
            report_schedules::table
                .filter(report_schedules::id.eq(&s.id))
                .filter(report_schedules::next_run_at.eq(s.next_run_at)),
        )
        .set((
            report_schedules::next_run_at.eq(next),
            report_schedules::last_run_at.eq(Some(at)),
        ))
        .execute(c)?;
        if n == 1 {
            claimed.push(s);
        }
    }
    Ok(claimed)
}

pub fn record_outcome(c: &mut DbConn, id: &str, error: Option<String>) -> AppResult<()> {
    diesel::update(report_schedules::table.filter(report_schedules::id.eq(id)))
        .set(report_schedules::last_error.eq(error))
        .execute(c)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn weekly_runs_fall_on_the_weekday_after_now() {
        // 2026-12-04 is a Friday.
        assert_eq!(
            NaiveDate::from_ymd_opt(2026, 12, 4)
                .unwrap()
                .weekday()
                .number_from_monday(),
            5
        );
        assert_eq!(
            next_run("weekly", 1, 7, "UTC", at("2026-12-04 10:00")),
            at("2026-12-07 07:00")
        );
        assert_eq!(
            next_run("weekly", 5, 11, "UTC", at("2026-12-04 10:00")),
            at("2026-12-04 11:00")
        );
        assert_eq!(
            next_run("weekly", 5, 10, "UTC", at("2026-12-04 10:00")),
            at("2026-12-11 10:00")
        );
        assert_eq!(
            next_run("daily", 1, 7, "UTC", at("2026-12-04 10:00")),
            at("2026-12-05 07:00")
        );
        assert_eq!(
            next_run("monthly", 1, 7, "UTC", at("2026-12-04 10:00")),
            at("2027-01-01 07:00")
        );
        // 7 on New York's clocks: 12:00 UTC in winter, 11:00 in summer; 10:00 UTC on a
        // Friday is still 05:00 there, so Friday's run is the same day.
        assert_eq!(
            next_run("weekly", 1, 7, "America/New_York", at("2026-12-04 10:00")),
            at("2026-12-07 12:00")
        );
        assert_eq!(
            next_run("weekly", 5, 7, "America/New_York", at("2026-12-04 10:00")),
            at("2026-12-04 12:00")
        );
        assert_eq!(
            next_run("daily", 1, 7, "America/New_York", at("2026-07-01 10:00")),
            at("2026-07-01 11:00")
        );
    }
}
