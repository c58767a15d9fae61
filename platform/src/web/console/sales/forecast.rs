//! The forecast and performance pages, with their charts drawn server-side as SVG.

use crate::locale::Local;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::super::clients::Choice;
use super::super::render;
use super::{get, owner_choices, pipeline_choices};
use crate::auth::ConsoleActor;
use crate::domain::pipeline::analytics::{ForecastMonth, RepFigures, StageRate, StageTime};
use crate::error::AppResult;
use crate::ops::sales::{self, ForecastQuery, PerformanceQuery};
use crate::state::AppState;
use crate::web::query_pairs;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Scales `v` to `0..=span` pixels against `max`, in decimal arithmetic.
fn px(v: Decimal, max: Decimal, span: i64) -> i64 {
    use rust_decimal::prelude::ToPrimitive;
    if max <= Decimal::ZERO {
        return 0;
    }
    (v * Decimal::from(span) / max)
        .round()
        .to_i64()
        .unwrap_or(0)
        .clamp(0, span)
}

/// The forecast chart's frame: width, height, left margin, bottom margin, top margin.
const W: i64 = 720;
const H: i64 = 260;
const LEFT: i64 = 70;
const BOTTOM: i64 = 30;
const TOP: i64 = 20;

/// The opening tag and five horizontal grid lines labelled up to `max`.
fn forecast_grid(max: Decimal, local: &Local) -> String {
    let plot_h = H - BOTTOM - TOP;
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="Forecast by month"><title>Forecast by month</title>"#
    );
    for i in 0..=4 {
        let gy = H - BOTTOM - plot_h * i / 4;
        let label = local.number(max * Decimal::from(i) / Decimal::from(4), 0);
        s.push_str(&format!(r#"<line x1="{LEFT}" x2="{W}" y1="{gy}" y2="{gy}" class="grid"/><text x="{}" y="{}" class="axis" text-anchor="end">{label}</text>"#, LEFT - 6, gy + 4));
    }
    s
}

/// Weighted bars with best-case and commit lines and closed-won dots, per month.
fn forecast_svg(months: &[&ForecastMonth], local: &Local) -> String {
    let plot_h = H - BOTTOM - TOP;
    let max = months
        .iter()
        .flat_map(|m| [m.best_case, m.closed_won, m.weighted])
        .max()
        .unwrap_or_default();
    let slot = (W - LEFT - 10) / months.len().max(1) as i64;
    let y = |v| H - BOTTOM - px(v, max, plot_h);
    let mut s = forecast_grid(max, local);
    let (mut best, mut commit) = (String::new(), String::new());
    for (i, m) in months.iter().enumerate() {
        let x = LEFT + slot * i as i64 + slot / 2;
        let bw = (slot * 2 / 5).max(6);
        let by = y(m.weighted);
        s.push_str(&format!(
            r#"<rect x="{}" y="{by}" width="{bw}" height="{}" class="bar"><title>{}: weighted {}</title></rect><text x="{x}" y="{}" class="axis" text-anchor="middle">{}</text>"#,
            x - bw / 2,
            H - BOTTOM - by,
            esc(&m.month),
            local.number(m.weighted, 2),
            H - BOTTOM + 18,
            esc(&m.month)
        ));
        best.push_str(&format!("{x},{} ", y(m.best_case)));
        commit.push_str(&format!("{x},{} ", y(m.commit)));
        if m.closed_won > Decimal::ZERO {
            s.push_str(&format!(r#"<circle cx="{x}" cy="{}" r="5" class="won"><title>closed won {}</title></circle>"#, y(m.closed_won), local.number(m.closed_won, 2)));
        }
    }
    s.push_str(&format!(r#"<polyline points="{}" class="line-best"/><polyline points="{}" class="line-commit"/></svg>"#, best.trim(), commit.trim()));
    s
}

/// Horizontal bars of won value per rep.
fn performance_svg(reps: &[&RepFigures], local: &Local) -> String {
    let row = 28i64;
    let (w, left) = (720i64, 170i64);
    let h = row * reps.len().max(1) as i64 + 10;
    let max = reps.iter().map(|r| r.won_value).max().unwrap_or_default();
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="Won value per rep"><title>Won value per rep</title>"#
    );
    for (i, r) in reps.iter().enumerate() {
        let y = 5 + row * i as i64;
        let bw = px(r.won_value, max, w - left - 120);
        s.push_str(&format!(
            r#"<text x="{}" y="{}" class="axis" text-anchor="end">{}</text><rect x="{left}" y="{y}" width="{bw}" height="{}" class="bar"/><text x="{}" y="{}" class="axis">{} {}</text>"#,
            left - 8,
            y + 16,
            esc(&r.name),
            row - 8,
            left + bw + 6,
            y + 16,
            local.number(r.won_value, 2),
            esc(&r.currency)
        ));
    }
    s.push_str("</svg>");
    s
}

#[derive(Template)]
#[template(path = "partials/sales/forecast.html")]
struct ForecastPage {
    pipelines: Vec<Choice>,
    owners: Vec<Choice>,
    months: Vec<ForecastMonth>,
    stages: Vec<StageRate>,
    chart: String,
    currency: String,
    local: Local,
    own_only: bool,
}

pub async fn forecast(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = query_pairs(&req)?;
    let pipeline = get(&pairs, "pipeline").map(str::to_string);
    let q = ForecastQuery {
        pipeline: pipeline.clone(),
        owner: get(&pairs, "owner").map(str::to_string),
        from: None,
        months: get(&pairs, "months")
            .and_then(|m| m.parse().ok())
            .filter(|m| (1..=24).contains(m))
            .unwrap_or(6),
    };
    let f = sales::forecast(&scope, q).await?;
    let filters = sales::filters(&scope).await?;
    let currency = actor.org.default_currency.clone();
    let oversee = scope.access("opportunity").oversee;
    let chart: Vec<&ForecastMonth> = f.months.iter().filter(|m| m.currency == currency).collect();
    let page = ForecastPage {
        chart: forecast_svg(&chart, &scope.local),
        local: scope.local,
        pipelines: pipeline_choices(&filters.pipelines, pipeline.as_deref()),
        owners: owner_choices(filters.owners, oversee, get(&pairs, "owner").unwrap_or("")),
        months: f.months,
        stages: f.stages,
        currency,
        own_only: !oversee,
    };
    render(&req, &actor, "Forecast", &page).await
}

#[derive(Template)]
#[template(path = "partials/sales/performance.html")]
struct PerformancePage {
    /// Why the dates asked for were not used (shown beside them).
    date_error: String,
    from: String,
    to: String,
    reps: Vec<RepFigures>,
    stages: Vec<StageTime>,
    chart: String,
    pipelines: Vec<Choice>,
    local: Local,
}

pub async fn performance(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = query_pairs(&req)?;
    let date = |k: &str| get(&pairs, k).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let pipeline = get(&pairs, "pipeline").map(str::to_string);
    let query = |from, to| PerformanceQuery {
        pipeline: pipeline.clone(),
        // The page has no owner filter: a manager sees every rep.
        owner: None,
        from,
        to,
    };
    // Reversed dates: say so beside them and show the default period, not an error page.
    let (p, date_error) = match sales::performance(&scope, query(date("from"), date("to"))).await {
        Err(crate::error::AppError::Validation(_, errors)) => (
            sales::performance(&scope, query(None, None)).await?,
            errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        other => (other?, String::new()),
    };
    let filters = sales::filters(&scope).await?;
    let currency = &actor.org.default_currency;
    let chart: Vec<&RepFigures> = p
        .reps
        .iter()
        .filter(|r| !r.team && r.currency == *currency)
        .collect();
    let page = PerformancePage {
        date_error,
        chart: performance_svg(&chart, &scope.local),
        local: scope.local,
        from: p.from,
        to: p.to,
        reps: p.reps,
        stages: p.time_in_stage,
        pipelines: pipeline_choices(&filters.pipelines, pipeline.as_deref()),
    };
    render(&req, &actor, "Performance", &page).await
}
