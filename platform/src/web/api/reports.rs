//! Reports and dashboards: the standard reports (`/api/crm/reports/{type}`), custom reports
//! (`/api/reports`), dashboards of tiles (`/api/dashboards`) and their e-mail schedules.
//! Every report answers JSON, CSV or XLSX (`format=`), and counts only what the caller may
//! see (a rep's reports count the rep's own records).

use actix_web::{http::header, http::StatusCode, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{etag, if_match_version, ListEnvelope};
use crate::domain::reports::custom::Definition;
use crate::domain::reports::store::{ScheduleInput, Tile};
use crate::domain::reports::{Report, ReportView};
use crate::error::{AppError, AppResult};
use crate::ops::reports::{
    self as ops, DashboardForm, DashboardView, ReportForm, SavedReport, ScheduleView, TileOut,
};
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    standard_list,
    standard,
    preview,
    list,
    create,
    show,
    replace,
    delete,
    run,
    dashboards,
    create_dashboard,
    dashboard,
    replace_dashboard,
    delete_dashboard,
    dashboard_data,
    schedules,
    create_schedule,
    delete_schedule
))]
pub struct Doc;

fn day(k: &str, v: &Option<String>) -> AppResult<Option<NaiveDate>> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| AppError::invalid(k, "Use a date like 2026-12-31.")),
    }
}

#[derive(Deserialize)]
pub struct RunQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    pipeline: Option<String>,
}

impl RunQuery {
    fn period(&self) -> AppResult<(Option<NaiveDate>, Option<NaiveDate>)> {
        Ok((day("from", &self.from)?, day("to", &self.to)?))
    }

    fn format(&self) -> AppResult<&str> {
        match self.format.as_deref().unwrap_or("json") {
            f @ ("json" | "csv" | "xlsx" | "pdf") => Ok(f),
            _ => Err(AppError::invalid("format", "Use json, csv, xlsx or pdf.")),
        }
    }
}

/// A report in the format asked for; files are attachments named after the report and its
/// period.
pub fn answer(report: &Report, format: &str) -> AppResult<HttpResponse> {
    let name = format!(
        "{}-{}-{}",
        crate::domain::reports::file_stem(&report.title),
        report.from,
        report.to
    );
    let attach = |ext: &str| {
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.{ext}\""),
        )
    };
    Ok(match format {
        "csv" => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header(attach("csv"))
            .body(report.csv()?),
        "xlsx" => HttpResponse::Ok()
            .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            .insert_header(attach("xlsx"))
            .body(report.xlsx()?),
        "pdf" => HttpResponse::Ok()
            .content_type("application/pdf")
            .insert_header(attach("pdf"))
            .body(crate::domain::reports::pdf(
                &report.title,
                &format!("{} to {}", report.from, report.to),
                &[],
                std::slice::from_ref(report),
            )),
        _ => HttpResponse::Ok().json(report.view()),
    })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StandardReport {
    /// The name to ask for: `/api/crm/reports/{type}`.
    #[serde(rename = "type")]
    kind: String,
    title: String,
}

/// The standard reports the caller may run.
#[utoipa::path(get, path = "/api/crm/reports", tag = "Reports",
    responses((status = 200, description = "The standard reports.", body = ListEnvelope<StandardReport>)))]
pub async fn standard_list(scope: ApiScope) -> AppResult<HttpResponse> {
    scope.require("report", "read")?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: ops::standard_reports(&scope)
            .into_iter()
            .map(|(k, t)| StandardReport {
                kind: k.into(),
                title: t.into(),
            })
            .collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

/// A standard report for a period (default: the last 90 days): `sales-by-rep`,
/// `sales-by-stage`, `sales-by-source`, `activity-by-rep`, `conversion-funnel`,
/// `deal-velocity`, `lost-reasons`, `forecast-vs-actual`, `segment-growth`,
/// `rep-benchmark`. Amounts stay per currency.
#[utoipa::path(get, path = "/api/crm/reports/{type}", tag = "Reports",
    params(
        ("type" = String, Path, description = "The report's name."),
        ("from" = Option<String>, Query, description = "First day, `YYYY-MM-DD` (default: 89 days before `to`)."),
        ("to" = Option<String>, Query, description = "Last day, `YYYY-MM-DD` (default: today)."),
        ("pipeline" = Option<String>, Query, description = "Only this pipeline's deals (the funnel's default is the first pipeline)."),
        ("format" = Option<String>, Query, description = "json (default), csv, xlsx or pdf."),
    ),
    responses((status = 200, description = "The report.", content(
        (ReportView = "application/json"),
        (String = "text/csv"),
        (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (String = "application/pdf"),
    ))))]
pub async fn standard(
    scope: ApiScope,
    kind: web::Path<String>,
    q: web::Query<RunQuery>,
) -> AppResult<HttpResponse> {
    let format = q.format()?.to_string();
    let (from, to) = q.period()?;
    let r = ops::standard(&scope, kind.into_inner(), from, to, q.pipeline.clone()).await?;
    answer(&r, &format)
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ReportPreviewInput)]
pub struct PreviewInput {
    definition: Definition,
    /// First day, `YYYY-MM-DD`.
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

/// Runs a custom report definition without saving it. A wrong part is a 422 naming it
/// (`filters[1].op`, `aggregates[0].field`).
#[utoipa::path(post, path = "/api/reports/preview", tag = "Reports", request_body = PreviewInput,
    responses((status = 200, description = "The report.", body = ReportView)))]
pub async fn preview(scope: ApiScope, body: web::Json<PreviewInput>) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let r = ops::preview(
        &scope,
        b.definition,
        day("from", &b.from)?,
        day("to", &b.to)?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(r.view()))
}

/// A custom report to save.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = SavedReportInput)]
pub struct ReportInput {
    name: String,
    #[serde(default)]
    description: String,
    definition: Definition,
    /// `null`/`private`, a role name (`sales_rep`, …) or `everyone`; sharing needs
    /// `report:write`.
    #[serde(default)]
    shared_with: Option<String>,
}

impl From<ReportInput> for ReportForm {
    fn from(r: ReportInput) -> Self {
        ReportForm {
            name: r.name,
            description: r.description,
            definition: r.definition,
            shared_with: r.shared_with,
        }
    }
}

fn saved(status: StatusCode, v: &SavedReport) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::ETAG, etag(v.version)));
    if status == StatusCode::CREATED {
        res.insert_header((header::LOCATION, format!("/api/reports/{}", v.id)));
    }
    res.json(v)
}

/// The saved reports the caller may see: their own, those shared with their role or with
/// everyone (all of them with `report:write`).
#[utoipa::path(get, path = "/api/reports", tag = "Reports",
    responses((status = 200, description = "The reports.", body = ListEnvelope<SavedReport>)))]
pub async fn list(scope: ApiScope) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: ops::list(&scope).await?,
        next_cursor: None,
    }))
}

/// Saves a custom report (private unless shared).
#[utoipa::path(post, path = "/api/reports", tag = "Reports", request_body = ReportInput,
    responses((status = 201, description = "Saved; `Location` names it.", body = SavedReport)))]
pub async fn create(scope: ApiScope, body: web::Json<ReportInput>) -> AppResult<HttpResponse> {
    let v = ops::create(&scope, body.into_inner().into()).await?;
    Ok(saved(StatusCode::CREATED, &v))
}

/// A saved report; the `ETag` is its version.
#[utoipa::path(get, path = "/api/reports/{id}", tag = "Reports",
    params(("id" = String, Path, description = "The report's id.")),
    responses((status = 200, description = "The report.", body = SavedReport)))]
pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let v = ops::get(&scope, id.into_inner()).await?;
    Ok(saved(StatusCode::OK, &v))
}

/// Replaces a saved report; `If-Match` guards against a concurrent edit (412).
#[utoipa::path(put, path = "/api/reports/{id}", tag = "Reports", request_body = ReportInput,
    params(("id" = String, Path, description = "The report's id.")),
    responses((status = 200, description = "Saved.", body = SavedReport)))]
pub async fn replace(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<ReportInput>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let v = ops::update(&scope, id.into_inner(), body.into_inner().into(), expected).await?;
    Ok(saved(StatusCode::OK, &v))
}

/// Deletes a saved report; 409 while a dashboard shows it.
#[utoipa::path(delete, path = "/api/reports/{id}", tag = "Reports",
    params(("id" = String, Path, description = "The report's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Runs a saved report for a period (default: the last 90 days).
#[utoipa::path(get, path = "/api/reports/{id}/run", tag = "Reports",
    params(
        ("id" = String, Path, description = "The report's id."),
        ("from" = Option<String>, Query, description = "First day, `YYYY-MM-DD`."),
        ("to" = Option<String>, Query, description = "Last day, `YYYY-MM-DD`."),
        ("format" = Option<String>, Query, description = "json (default), csv, xlsx or pdf."),
    ),
    responses((status = 200, description = "The report.", content(
        (ReportView = "application/json"),
        (String = "text/csv"),
        (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (String = "application/pdf"),
    ))))]
pub async fn run(
    scope: ApiScope,
    id: web::Path<String>,
    q: web::Query<RunQuery>,
) -> AppResult<HttpResponse> {
    let format = q.format()?.to_string();
    let (from, to) = q.period()?;
    let r = ops::run(&scope, id.into_inner(), from, to).await?;
    answer(&r, &format)
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = DashboardInput)]
pub struct DashboardInput {
    name: String,
    /// At most 12, in order.
    tiles: Vec<Tile>,
    #[serde(default)]
    shared_with: Option<String>,
}

impl From<DashboardInput> for DashboardForm {
    fn from(d: DashboardInput) -> Self {
        DashboardForm {
            name: d.name,
            tiles: d.tiles,
            shared_with: d.shared_with,
        }
    }
}

fn board(status: StatusCode, v: &DashboardView) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::ETAG, etag(v.version)));
    if status == StatusCode::CREATED {
        res.insert_header((header::LOCATION, format!("/api/dashboards/{}", v.id)));
    }
    res.json(v)
}

/// The dashboards the caller may see.
#[utoipa::path(get, path = "/api/dashboards", tag = "Reports",
    responses((status = 200, description = "The dashboards.", body = ListEnvelope<DashboardView>)))]
pub async fn dashboards(scope: ApiScope) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: ops::dashboards(&scope).await?,
        next_cursor: None,
    }))
}

/// Saves a dashboard: tiles of saved reports (`{"kind":"report","ref":<id>}`), standard
/// reports (`{"kind":"standard","ref":"sales-by-rep"}`) and key figures
/// (`{"kind":"kpi","ref":"winRate"}`).
#[utoipa::path(post, path = "/api/dashboards", tag = "Reports", request_body = DashboardInput,
    responses((status = 201, description = "Saved.", body = DashboardView)))]
pub async fn create_dashboard(
    scope: ApiScope,
    body: web::Json<DashboardInput>,
) -> AppResult<HttpResponse> {
    let v = ops::save_dashboard(&scope, None, body.into_inner().into(), None).await?;
    Ok(board(StatusCode::CREATED, &v))
}

/// A dashboard: its tiles in order and who it is shared with; the `ETag` is its version.
#[utoipa::path(get, path = "/api/dashboards/{id}", tag = "Reports",
    params(("id" = String, Path, description = "The dashboard's id.")),
    responses((status = 200, description = "The dashboard.", body = DashboardView)))]
pub async fn dashboard(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let v = ops::dashboard(&scope, id.into_inner()).await?;
    Ok(board(StatusCode::OK, &v))
}

/// Replaces a dashboard's name, tiles and sharing; `If-Match` guards (412).
#[utoipa::path(put, path = "/api/dashboards/{id}", tag = "Reports", request_body = DashboardInput,
    params(("id" = String, Path, description = "The dashboard's id.")),
    responses((status = 200, description = "Saved.", body = DashboardView)))]
pub async fn replace_dashboard(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<DashboardInput>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let v = ops::save_dashboard(
        &scope,
        Some(id.into_inner()),
        body.into_inner().into(),
        expected,
    )
    .await?;
    Ok(board(StatusCode::OK, &v))
}

/// Deletes a dashboard and its e-mail schedules (its author, or `report:write`); the reports
/// on it stay.
#[utoipa::path(delete, path = "/api/dashboards/{id}", tag = "Reports",
    params(("id" = String, Path, description = "The dashboard's id.")),
    responses((status = 204, description = "Deleted, with its schedules.")))]
pub async fn delete_dashboard(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete_dashboard(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One tile's figures: a report, a key figure, or why the caller cannot see it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TileData {
    tile: Tile,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<ReportView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    figure: Option<Figure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = DashboardFigure)]
pub struct Figure {
    label: String,
    value: String,
    detail: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardData {
    from: String,
    to: String,
    tiles: Vec<TileData>,
}

/// Every tile of a dashboard computed for one period (default: the last 90 days).
#[utoipa::path(get, path = "/api/dashboards/{id}/data", tag = "Reports",
    params(
        ("id" = String, Path, description = "The dashboard's id."),
        ("from" = Option<String>, Query, description = "First day, `YYYY-MM-DD`."),
        ("to" = Option<String>, Query, description = "Last day, `YYYY-MM-DD`."),
    ),
    responses((status = 200, description = "The tiles' figures.", body = DashboardData)))]
pub async fn dashboard_data(
    scope: ApiScope,
    id: web::Path<String>,
    q: web::Query<RunQuery>,
) -> AppResult<HttpResponse> {
    let d = ops::dashboard(&scope, id.into_inner()).await?;
    let (from, to) = q.period()?;
    let (from, to) = ops::period(from, to)?;
    let mut tiles = Vec::new();
    for t in d.tiles {
        let out = ops::tile(&scope, &t, from, to).await;
        let mut data = TileData {
            tile: t,
            report: None,
            figure: None,
            unavailable: None,
        };
        match out {
            TileOut::Report(r) => data.report = Some(r.view()),
            TileOut::Figure {
                label,
                value,
                detail,
            } => {
                data.figure = Some(Figure {
                    label,
                    value,
                    detail,
                })
            }
            TileOut::Unavailable(why) => data.unavailable = Some(why),
        }
        tiles.push(data);
    }
    Ok(HttpResponse::Ok().json(DashboardData {
        from: from.to_string(),
        to: to.to_string(),
        tiles,
    }))
}

/// A dashboard's e-mail schedules.
#[utoipa::path(get, path = "/api/dashboards/{id}/schedules", tag = "Reports",
    params(("id" = String, Path, description = "The dashboard's id.")),
    responses((status = 200, description = "The schedules.", body = ListEnvelope<ScheduleView>)))]
pub async fn schedules(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: ops::schedules(&scope, id.into_inner()).await?,
        next_cursor: None,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleBody {
    /// Member ids (active members of the organization), 1–50.
    recipients: Vec<String>,
    /// `daily`, `weekly` or `monthly`.
    cadence: String,
    /// Weekly: 1 (Monday) to 7; monthly: 1 to 28.
    #[serde(default = "one")]
    day: i32,
    /// Hour of the day, 0–23, on the clocks of `timeZone`; default 7.
    #[serde(default = "seven")]
    hour: i32,
    /// IANA time zone (`Europe/Berlin`); default `UTC`.
    #[serde(default = "utc")]
    time_zone: String,
}

fn utc() -> String {
    "UTC".into()
}

fn one() -> i32 {
    1
}

fn seven() -> i32 {
    7
}

/// E-mails the dashboard (each tile as a CSV attachment, figures in the message) on a
/// schedule, through the organization's shared mailbox; each recipient's copy counts
/// what that recipient may see.
#[utoipa::path(post, path = "/api/dashboards/{id}/schedules", tag = "Reports", request_body = ScheduleBody,
    params(("id" = String, Path, description = "The dashboard's id.")),
    responses((status = 201, description = "Scheduled.", body = ScheduleView)))]
pub async fn create_schedule(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<ScheduleBody>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let v = ops::schedule(
        &scope,
        id.into_inner(),
        ScheduleInput {
            recipients: b.recipients,
            cadence: b.cadence,
            day: b.day,
            hour: b.hour,
            time_zone: b.time_zone,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(v))
}

/// Stops e-mailing the dashboard on that schedule.
#[utoipa::path(delete, path = "/api/dashboards/{id}/schedules/{schedule}", tag = "Reports",
    params(
        ("id" = String, Path, description = "The dashboard's id."),
        ("schedule" = String, Path, description = "The schedule's id."),
    ),
    responses((status = 204, description = "No longer sent.")))]
pub async fn delete_schedule(
    scope: ApiScope,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, schedule) = path.into_inner();
    ops::unschedule(&scope, id, schedule).await?;
    Ok(HttpResponse::NoContent().finish())
}
