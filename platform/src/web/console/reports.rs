//! The console's reports: the standard reports, the custom report builder (CRMReports),
//! dashboards of tiles with one date range for all of them, and their e-mail schedules.
//! Charts are SVG drawn on the server (`web::charts`), so every page reads without
//! JavaScript; htmx only re-renders the builder and its preview as it is edited.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDate;

use super::{form_pairs, redirect_with_flash, render, render_with_status};
use crate::auth::ConsoleActor;
use crate::domain::reports::custom::{
    self, Aggregate, Condition, Definition, GroupBy, Kind, ENTITIES, FUNC_KEYS,
};
use crate::domain::reports::store::{ScheduleInput, Tile, KPIS};
use crate::domain::reports::{Bucket, Cell, ChartKind, ColKind, Report};
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::reports::{self as ops, DashboardForm, ReportForm, TileOut};
use crate::ops::Scope;
use crate::state::AppState;
use crate::web::charts;

/// The query's pairs; a malformed query reads as empty (the defaults apply).
fn qp(req: &HttpRequest) -> Vec<(String, String)> {
    crate::web::query_pairs(req).unwrap_or_default()
}

#[derive(Debug, Clone)]
pub struct Opt {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn opt(value: &str, label: &str, current: &str) -> Opt {
    Opt {
        value: value.into(),
        label: label.into(),
        selected: value == current,
    }
}

/// The period form's values, kept as typed.
#[derive(Debug, Clone, Default)]
pub struct Period {
    pub from: String,
    pub to: String,
    pub error: String,
}

impl Period {
    fn read(req: &HttpRequest) -> (Period, Option<NaiveDate>, Option<NaiveDate>) {
        let q = qp(req);
        let get = |k: &str| {
            q.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let (from, to) = (get("from"), get("to"));
        let parse = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let mut p = Period {
            from: from.clone(),
            to: to.clone(),
            error: String::new(),
        };
        let (f, t) = (parse(&from), parse(&to));
        if (!from.is_empty() && f.is_none()) || (!to.is_empty() && t.is_none()) {
            p.error = "Use dates like 2026-12-31; showing the last 90 days.".into();
            return (p, None, None);
        }
        if let (Some(a), Some(b)) = (f, t) {
            if a > b {
                p.error = "The start is after the end; showing the last 90 days instead.".into();
                return (p, None, None);
            }
        }
        (p, f, t)
    }

    fn fill(&mut self, r: &Report) {
        self.from = r.from.to_string();
        self.to = r.to.to_string();
    }

    pub fn query(&self) -> String {
        format!("from={}&to={}", self.from, self.to)
    }
}

/// A report's chart and table, rendered once for a page or a tile.
#[derive(Template)]
#[template(path = "partials/reports/body.html")]
pub struct Body<'a> {
    pub chart: String,
    pub columns: Vec<(&'a str, bool)>,
    pub rows: Vec<Vec<String>>,
    pub note: &'a str,
    pub compact: bool,
}

fn cell(c: &Cell, kind: ColKind, local: &crate::locale::Local) -> String {
    match (c, kind) {
        (Cell::Null, _) => "—".into(),
        (Cell::Int(n), _) => local.count(*n),
        (Cell::Dec(d), ColKind::Money) => local.number(*d, 2),
        (Cell::Dec(d), ColKind::Percent) => {
            format!("{}%", local.number(*d, d.normalize().scale().min(2)))
        }
        (c, _) => c.text(),
    }
}

pub fn body(r: &Report, compact: bool, local: &crate::locale::Local) -> AppResult<String> {
    let limit = if compact { 8 } else { usize::MAX };
    let b = Body {
        // An empty period says so once, under the table's place, not twice.
        chart: if r.table.rows.is_empty() {
            String::new()
        } else {
            charts::svg(r)
        },
        columns: r
            .table
            .columns
            .iter()
            .map(|c| (c.label.as_str(), c.kind != ColKind::Text))
            .collect(),
        rows: r
            .table
            .rows
            .iter()
            .take(limit)
            .map(|row| {
                row.iter()
                    .zip(&r.table.columns)
                    .map(|(c, col)| cell(c, col.kind, local))
                    .collect()
            })
            .collect(),
        note: &r.note,
        compact,
    };
    b.render()
        .map_err(|e| AppError::Internal(format!("template: {e}")))
}

pub struct SavedRow {
    pub id: String,
    pub name: String,
    pub entity: String,
    pub shared: String,
}

pub struct BoardRow {
    pub id: String,
    pub name: String,
    pub tiles: usize,
    pub shared: String,
}

fn shared_label(s: &Option<String>) -> String {
    match s.as_deref() {
        None => "Only you".into(),
        Some("everyone") => "Everyone".into(),
        Some(r) => crate::domain::orgs::model::Role::parse(r)
            .map(|r| format!("{}s", r.label()))
            .unwrap_or_else(|| r.to_string()),
    }
}

#[derive(Template)]
#[template(path = "partials/reports/index.html")]
pub struct IndexPage {
    pub standard: Vec<(&'static str, &'static str)>,
    pub saved: Vec<SavedRow>,
    pub boards: Vec<BoardRow>,
}

/// `GET /reports`
pub async fn index(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    scope.require("report", "read")?;
    let saved = ops::list(&scope)
        .await?
        .into_iter()
        .map(|r| SavedRow {
            entity: custom::entity(&r.definition.entity)
                .map(|e| e.label.to_string())
                .unwrap_or_default(),
            shared: shared_label(&r.shared_with),
            id: r.id,
            name: r.name,
        })
        .collect();
    let boards = ops::dashboards(&scope)
        .await?
        .into_iter()
        .map(|d| BoardRow {
            tiles: d.tiles.len(),
            shared: shared_label(&d.shared_with),
            id: d.id,
            name: d.name,
        })
        .collect();
    let page = IndexPage {
        standard: ops::standard_reports(&scope),
        saved,
        boards,
    };
    render(&req, &actor, "Reports", &page).await
}

#[derive(Template)]
#[template(path = "partials/reports/view.html")]
pub struct ViewPage {
    pub title: String,
    pub action: String,
    pub period: Period,
    pub body: String,
    pub export: String,
    pub pipelines: Vec<Opt>,
    pub edit: Option<String>,
    pub delete: Option<String>,
}

/// `GET /reports/standard/{type}`
pub async fn standard(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    kind: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let kind = kind.into_inner();
    let (mut period, from, to) = Period::read(&req);
    let pipeline = qp(&req)
        .into_iter()
        .find(|(k, _)| k == "pipeline")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty());
    let r = ops::standard(&scope, kind.clone(), from, to, pipeline.clone()).await?;
    period.fill(&r);
    let pipelines = if scope.can("opportunity", "read") {
        let filters = crate::ops::sales::filters(&scope).await.ok();
        let current = pipeline.clone().unwrap_or_default();
        let mut v = vec![opt("", "All pipelines", &current)];
        if let Some(f) = filters {
            v.extend(
                f.pipelines
                    .iter()
                    .map(|p| opt(&p.pipeline.id, &p.pipeline.name, &current)),
            );
        }
        v
    } else {
        vec![]
    };
    let page = ViewPage {
        title: r.title.clone(),
        action: format!("/reports/standard/{kind}"),
        body: body(&r, false, &scope.local)?,
        export: format!(
            "/reports/standard/{kind}/export?{}{}",
            period.query(),
            pipeline
                .map(|p| format!("&pipeline={p}"))
                .unwrap_or_default()
        ),
        period,
        pipelines,
        edit: None,
        delete: None,
    };
    render(&req, &actor, &page.title.clone(), &page).await
}

fn format_of(req: &HttpRequest) -> String {
    qp(req)
        .into_iter()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v)
        .filter(|v| v == "xlsx" || v == "json" || v == "pdf")
        .unwrap_or_else(|| "csv".into())
}

/// `GET /reports/standard/{type}/export?format=csv|xlsx|pdf`
pub async fn standard_export(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    kind: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (_, from, to) = Period::read(&req);
    let pipeline = qp(&req)
        .into_iter()
        .find(|(k, _)| k == "pipeline")
        .map(|(_, v)| v);
    let r = ops::standard(&scope, kind.into_inner(), from, to, pipeline).await?;
    crate::web::api::reports::answer(&r, &format_of(&req))
}

/// `GET /reports/{id}`
pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    let saved = ops::get(&scope, id.clone()).await?;
    let (mut period, from, to) = Period::read(&req);
    let r = ops::run(&scope, id.clone(), from, to).await?;
    period.fill(&r);
    let page = ViewPage {
        title: saved.name.clone(),
        action: format!("/reports/{id}"),
        body: body(&r, false, &scope.local)?,
        export: format!("/reports/{id}/export?{}", period.query()),
        period,
        pipelines: vec![],
        edit: saved.editable.then(|| format!("/reports/{id}/edit")),
        delete: saved.editable.then(|| format!("/reports/{id}/delete")),
    };
    render(&req, &actor, &saved.name, &page).await
}

/// `GET /reports/{id}/export?format=csv|xlsx|pdf`
pub async fn export(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (_, from, to) = Period::read(&req);
    let r = ops::run(&scope, id.into_inner(), from, to).await?;
    crate::web::api::reports::answer(&r, &format_of(&req))
}

/// `POST /reports/{id}/delete`
pub async fn delete(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    match ops::delete(&scope, id.clone()).await {
        Ok(()) => redirect_with_flash(&req, "/reports", "Report deleted."),
        Err(AppError::Conflict(m)) => {
            redirect_with_flash(&req, &format!("/reports/{}", id.into_inner()), &m)
        }
        Err(e) => Err(e),
    }
}

/// One filter row of the builder form.
#[derive(Debug, Clone, Default)]
pub struct FilterRow {
    pub field: String,
    pub op: String,
    pub value: String,
}

#[derive(Debug, Clone, Default)]
pub struct AggRow {
    pub func: String,
    pub field: String,
}

/// The builder's state as its form holds it.
#[derive(Debug, Clone)]
pub struct Draft {
    pub name: String,
    pub description: String,
    pub shared: String,
    pub entity: String,
    pub segment: String,
    pub date_field: String,
    pub group: String,
    pub bucket: String,
    pub any: bool,
    pub filters: Vec<FilterRow>,
    pub aggs: Vec<AggRow>,
    pub columns: Vec<String>,
    pub chart: String,
}

impl Draft {
    fn blank(entity: &str) -> Draft {
        Draft {
            name: String::new(),
            description: String::new(),
            shared: String::new(),
            entity: entity.into(),
            segment: String::new(),
            date_field: String::new(),
            group: "status".into(),
            bucket: String::new(),
            any: false,
            filters: vec![],
            aggs: vec![AggRow {
                func: "count".into(),
                field: String::new(),
            }],
            columns: vec![],
            chart: "bar".into(),
        }
    }

    fn read(pairs: &[(String, String)]) -> Draft {
        let get = |k: &str| super::form_value(pairs, k);
        let mut d = Draft::blank(&get("entity"));
        d.name = get("name");
        d.description = get("description");
        d.shared = get("shared");
        d.segment = get("segment");
        d.date_field = get("date_field");
        d.group = get("group");
        d.bucket = get("bucket");
        d.any = get("match") == "any";
        d.chart = get("chart");
        d.columns = pairs
            .iter()
            .filter(|(k, _)| k == "col")
            .map(|(_, v)| v.clone())
            .take(custom::MAX_COLUMNS)
            .collect();
        d.filters = (0..custom::MAX_FILTERS)
            .filter_map(|i| {
                let field = get(&format!("f.{i}.field"));
                let present = pairs.iter().any(|(k, _)| k == &format!("f.{i}.field"));
                present.then(|| FilterRow {
                    field,
                    op: get(&format!("f.{i}.op")),
                    value: get(&format!("f.{i}.value")),
                })
            })
            .collect();
        d.aggs = (0..custom::MAX_AGGREGATES)
            .filter_map(|i| {
                let present = pairs.iter().any(|(k, _)| k == &format!("a.{i}.fn"));
                present.then(|| AggRow {
                    func: get(&format!("a.{i}.fn")),
                    field: get(&format!("a.{i}.field")),
                })
            })
            .collect();
        d
    }

    fn from_definition(def: &Definition) -> Draft {
        let mut d = Draft::blank(&def.entity);
        d.segment = def.segment.clone().unwrap_or_default();
        d.date_field = def.date_field.clone().unwrap_or_default();
        d.group = def
            .group_by
            .as_ref()
            .map(|g| g.field.clone())
            .unwrap_or_default();
        d.bucket = def
            .group_by
            .as_ref()
            .and_then(|g| g.bucket)
            .map(|b| b.key().to_string())
            .unwrap_or_default();
        d.any = def.match_ == "any";
        d.filters = def
            .filters
            .iter()
            .map(|c| FilterRow {
                field: c.field.clone(),
                op: c.op.clone(),
                value: match &c.value {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Array(a) => a
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    serde_json::Value::Null => String::new(),
                    v => v.to_string(),
                },
            })
            .collect();
        d.aggs = def
            .aggregates
            .iter()
            .map(|a| AggRow {
                func: a.func.clone(),
                field: a.field.clone().unwrap_or_default(),
            })
            .collect();
        if d.aggs.is_empty() && def.group_by.is_some() {
            d.aggs.push(AggRow {
                func: "count".into(),
                field: String::new(),
            });
        }
        d.columns = def.columns.clone();
        d.chart = def.chart.key().into();
        d
    }

    /// The definition the form describes; a value list (`a, b`) becomes several values.
    fn definition(&self) -> Definition {
        let entity = custom::entity(&self.entity);
        Definition {
            entity: self.entity.clone(),
            match_: if self.any { "any" } else { "all" }.into(),
            filters: self
                .filters
                .iter()
                .filter(|f| !f.field.is_empty())
                .map(|f| {
                    let kind = entity.and_then(|e| e.field(&f.field)).map(|x| x.kind);
                    let listy = matches!(
                        kind,
                        Some(
                            Kind::Choice(_)
                                | Kind::Text
                                | Kind::User
                                | Kind::Stage
                                | Kind::Pipeline
                                | Kind::Client
                        )
                    ) && matches!(f.op.as_str(), "is" | "isNot");
                    let value = if f.value.is_empty() {
                        serde_json::Value::Null
                    } else if listy && f.value.contains(',') {
                        serde_json::Value::Array(
                            f.value
                                .split(',')
                                .map(|s| serde_json::Value::String(s.trim().to_string()))
                                .collect(),
                        )
                    } else {
                        serde_json::Value::String(f.value.clone())
                    };
                    Condition {
                        field: f.field.clone(),
                        op: f.op.clone(),
                        value,
                    }
                })
                .collect(),
            segment: Some(self.segment.clone())
                .filter(|s| !s.is_empty() && self.entity == "clients"),
            date_field: Some(self.date_field.clone()).filter(|s| !s.is_empty()),
            group_by: (!self.group.is_empty()).then(|| GroupBy {
                field: self.group.clone(),
                bucket: Bucket::parse(&self.bucket),
            }),
            aggregates: if self.group.is_empty() {
                vec![]
            } else {
                self.aggs
                    .iter()
                    .filter(|a| !a.func.is_empty())
                    .map(|a| Aggregate {
                        func: a.func.clone(),
                        field: Some(a.field.clone()).filter(|s| !s.is_empty() && a.func != "count"),
                    })
                    .collect()
            },
            columns: if self.group.is_empty() {
                self.columns.clone()
            } else {
                vec![]
            },
            chart: ChartKind::parse(&self.chart).unwrap_or(ChartKind::Bar),
            limit: None,
        }
    }

    fn apply(&mut self, op: &str) {
        let mut parts = op.split(':');
        let (verb, n) = (
            parts.next().unwrap_or(""),
            parts.next().and_then(|n| n.parse::<usize>().ok()),
        );
        match (verb, n) {
            ("add_filter", _) if self.filters.len() < custom::MAX_FILTERS => {
                self.filters.push(FilterRow::default())
            }
            ("remove_filter", Some(i)) if i < self.filters.len() => {
                self.filters.remove(i);
            }
            ("add_agg", _) if self.aggs.len() < custom::MAX_AGGREGATES => self.aggs.push(AggRow {
                func: "sum".into(),
                field: String::new(),
            }),
            ("remove_agg", Some(i)) if i < self.aggs.len() && self.aggs.len() > 1 => {
                self.aggs.remove(i);
            }
            ("entity", _) => {
                // A new entity keeps the name and sharing; its fields differ, so the rest starts over.
                let (name, description, shared) = (
                    self.name.clone(),
                    self.description.clone(),
                    self.shared.clone(),
                );
                *self = Draft::blank(&self.entity);
                self.name = name;
                self.description = description;
                self.shared = shared;
            }
            _ => {}
        }
    }
}

pub struct FilterView {
    pub fields: Vec<Opt>,
    pub ops: Vec<Opt>,
    pub value: String,
    pub error: String,
    pub needs_value: bool,
    pub hint: String,
}

pub struct AggView {
    pub funcs: Vec<Opt>,
    pub fields: Vec<Opt>,
    pub error: String,
    pub counts: bool,
}

#[derive(Template)]
#[template(path = "partials/reports/builder.html")]
pub struct BuilderPage {
    pub id: String,
    pub version: i64,
    pub name: String,
    pub description: String,
    pub shared: Vec<Opt>,
    pub can_share: bool,
    pub entities: Vec<Opt>,
    pub segments: Vec<Opt>,
    pub clients: bool,
    pub date_fields: Vec<Opt>,
    /// The period is "all time": the preview's heading says so rather than "last 90 days".
    pub all_time: bool,
    pub groups: Vec<Opt>,
    pub grouped: bool,
    pub buckets: Vec<Opt>,
    pub date_group: bool,
    pub any: bool,
    pub filters: Vec<FilterView>,
    pub aggs: Vec<AggView>,
    pub columns: Vec<Opt>,
    pub charts: Vec<Opt>,
    pub errors: Vec<String>,
    pub preview: String,
}

fn sharing(current: &str) -> Vec<Opt> {
    let mut v = vec![
        opt("", "Only me", current),
        opt("everyone", "Everyone in the organization", current),
    ];
    v.extend(
        crate::domain::orgs::model::Role::ALL
            .iter()
            .map(|r| opt(r.as_str(), &format!("{}s", r.label()), current)),
    );
    v
}

/// Error paths in the builder's words (`filters[1].op` → "Filter 2: …").
fn words(e: &FieldError) -> String {
    let (what, rest) = match e.field.split_once('[') {
        Some((what, rest)) => (what, rest),
        None => (e.field.as_str(), ""),
    };
    let n = rest
        .split(']')
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| n + 1);
    match (what, n) {
        ("filters", Some(n)) => format!("Filter {n}: {}", e.message),
        ("aggregates", Some(n)) => format!("Figure {n}: {}", e.message),
        ("columns", _) => format!("Columns: {}", e.message),
        ("groupBy.field" | "groupBy.bucket", _) => format!("Group by: {}", e.message),
        ("dateField", _) => format!("Period: {}", e.message),
        ("name", _) => format!("Name: {}", e.message),
        ("sharedWith", _) => format!("Shared with: {}", e.message),
        _ => e.message.clone(),
    }
}

async fn builder(
    scope: &Scope,
    id: &str,
    version: i64,
    d: &Draft,
    errors: Vec<FieldError>,
) -> AppResult<BuilderPage> {
    // A form without an entity (or with an unknown one) starts on the first the role may
    // read; a known one the role may not read is refused.
    let entity = match custom::entity(&d.entity) {
        Some(e) if scope.can(e.resource, "read") => e,
        Some(_) => {
            return Err(AppError::Forbidden(
                "Your role may not report on this.".into(),
            ))
        }
        None => ENTITIES
            .iter()
            .find(|e| scope.can(e.resource, "read"))
            .ok_or_else(AppError::forbidden)?,
    };
    let d = &{
        let mut d = d.clone();
        if d.entity != entity.key {
            d = Draft {
                name: d.name,
                description: d.description,
                shared: d.shared,
                ..Draft::blank(entity.key)
            };
        }
        d
    };
    let entities: Vec<Opt> = ENTITIES
        .iter()
        .filter(|e| scope.can(e.resource, "read"))
        .map(|e| opt(e.key, e.label, &d.entity))
        .collect();
    let segments = if entity.key == "clients" && scope.can("segment", "read") {
        let mut v = vec![opt("", "All clients", &d.segment)];
        v.extend(
            crate::ops::segments::list(scope)
                .await
                .unwrap_or_default()
                .iter()
                .map(|s| opt(&s.id, &s.name, &d.segment)),
        );
        v
    } else {
        vec![]
    };
    let dates: Vec<&custom::Field> = entity
        .fields
        .iter()
        .filter(|f| f.kind == Kind::Date)
        .collect();
    let mut date_fields: Vec<Opt> = dates
        .iter()
        .map(|f| {
            let selected =
                f.key == d.date_field || (d.date_field.is_empty() && f.key == entity.default_date);
            Opt {
                value: f.key.into(),
                label: format!("{} in the period", f.label),
                selected,
            }
        })
        .collect();
    date_fields.push(opt("none", "All time (no period)", &d.date_field));
    let mut groups = vec![opt("", "— list the records —", &d.group)];
    groups.extend(
        entity
            .fields
            .iter()
            .filter(|f| !f.kind.numeric())
            .map(|f| opt(f.key, f.label, &d.group)),
    );
    let group_field = entity.field(&d.group);
    let date_group = group_field.is_some_and(|f| f.kind == Kind::Date);
    let bucket_now = if d.bucket.is_empty() {
        "month"
    } else {
        d.bucket.as_str()
    };
    let buckets = Bucket::ALL
        .iter()
        .map(|b| opt(b.key(), b.label(), bucket_now))
        .collect();
    let field_error = |path: &str| {
        errors
            .iter()
            .filter(|e| e.field.starts_with(path))
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let filters = d
        .filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let field = entity.field(&f.field);
            let mut fields = vec![opt("", "Choose a field…", &f.field)];
            fields.extend(entity.fields.iter().map(|x| opt(x.key, x.label, &f.field)));
            let ops: Vec<Opt> = field
                .map(|x| {
                    let current = if f.op.is_empty() {
                        x.kind.ops()[0].0
                    } else {
                        f.op.as_str()
                    };
                    x.kind
                        .ops()
                        .iter()
                        .map(|o| opt(o.0, o.1, current))
                        .collect()
                })
                .unwrap_or_default();
            let hint = match field.map(|x| x.kind) {
                Some(Kind::Choice(values)) => format!(
                    "One of: {} (comma-separated for several)",
                    values.join(", ")
                ),
                Some(Kind::User) => "A member's id, or me".into(),
                Some(Kind::Date) => "2026-12-31, or a number of days".into(),
                Some(Kind::Money) => "An amount, like 10000".into(),
                _ => String::new(),
            };
            FilterView {
                needs_value: !matches!(f.op.as_str(), "empty" | "notEmpty"),
                fields,
                ops,
                value: f.value.clone(),
                error: field_error(&format!("filters[{i}]")),
                hint,
            }
        })
        .collect();
    let numeric: Vec<&custom::Field> = entity.fields.iter().filter(|f| f.kind.numeric()).collect();
    let aggs = d
        .aggs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut fields = vec![opt("", "Choose a number…", &a.field)];
            fields.extend(numeric.iter().map(|f| opt(f.key, f.label, &a.field)));
            AggView {
                funcs: FUNC_KEYS.iter().map(|(k, l)| opt(k, l, &a.func)).collect(),
                fields,
                error: field_error(&format!("aggregates[{i}]")),
                counts: a.func == "count",
            }
        })
        .collect();
    let columns = entity
        .fields
        .iter()
        .map(|f| Opt {
            value: f.key.into(),
            label: f.label.into(),
            selected: d.columns.iter().any(|c| c == f.key),
        })
        .collect();
    let charts = ChartKind::ALL
        .iter()
        .map(|k| opt(k.key(), k.label(), &d.chart))
        .collect();
    let (preview, errors_shown) = if errors.is_empty() {
        match ops::preview(scope, d.definition(), None, None).await {
            Ok(r) => (body(&r, false, &scope.local)?, vec![]),
            Err(AppError::Validation(_, errs)) => (String::new(), errs),
            Err(AppError::Forbidden(m)) => (String::new(), vec![FieldError::new("", m)]),
            Err(e) => return Err(e),
        }
    } else {
        (String::new(), errors)
    };
    Ok(BuilderPage {
        id: id.into(),
        version,
        name: d.name.clone(),
        description: d.description.clone(),
        shared: sharing(&d.shared),
        can_share: scope.can("report", "write"),
        clients: entity.key == "clients",
        entities,
        segments,
        all_time: d.date_field == "none",
        date_fields,
        grouped: !d.group.is_empty(),
        groups,
        buckets,
        date_group,
        any: d.any,
        filters,
        aggs,
        columns,
        charts,
        errors: errors_shown.iter().map(words).collect(),
        preview,
    })
}

/// `GET /reports/new`
pub async fn new(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    scope.require("report", "read")?;
    let entity = ENTITIES
        .iter()
        .find(|e| scope.can(e.resource, "read"))
        .map_or("clients", |e| e.key);
    let page = builder(&scope, "", 0, &Draft::blank(entity), vec![]).await?;
    render(&req, &actor, "New report", &page).await
}

/// `GET /reports/{id}/edit`
pub async fn edit(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let saved = ops::get(&scope, id.into_inner()).await?;
    if !saved.editable {
        return Err(AppError::forbidden());
    }
    let mut d = Draft::from_definition(&saved.definition);
    d.name = saved.name.clone();
    d.description = saved.description.clone();
    d.shared = saved.shared_with.clone().unwrap_or_default();
    let page = builder(&scope, &saved.id, saved.version, &d, vec![]).await?;
    render(&req, &actor, &saved.name, &page).await
}

/// `POST /reports/compose`: the builder re-rendered with the form's change (add or remove
/// a filter or a figure, another entity) and a fresh preview.
pub async fn compose(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    scope.require("report", "read")?;
    let pairs = form_pairs(&body)?;
    let mut d = Draft::read(&pairs);
    let get = |k: &str| super::form_value(&pairs, k);
    d.apply(&get("op"));
    let page = builder(
        &scope,
        &get("id"),
        get("version").parse().unwrap_or(0),
        &d,
        vec![],
    )
    .await?;
    render(&req, &actor, "Report", &page).await
}

/// `POST /reports` (new) and `POST /reports/{id}` (save a change).
pub async fn save(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let d = Draft::read(&pairs);
    let get = |k: &str| super::form_value(&pairs, k);
    let id = req
        .match_info()
        .get("id")
        .map(str::to_string)
        .filter(|s| !s.is_empty());
    let version: i64 = get("version").parse().unwrap_or(0);
    let form = ReportForm {
        name: d.name.clone(),
        description: d.description.clone(),
        definition: d.definition(),
        shared_with: Some(d.shared.clone()).filter(|s| !s.is_empty()),
    };
    let result = match &id {
        None => ops::create(&scope, form).await,
        Some(id) => ops::update(&scope, id.clone(), form, Some(version)).await,
    };
    match result {
        Ok(r) => redirect_with_flash(&req, &format!("/reports/{}", r.id), "Report saved."),
        Err(AppError::Validation(_, errors)) => {
            let page = builder(&scope, id.as_deref().unwrap_or(""), version, &d, errors).await?;
            render_with_status(
                &req,
                &actor,
                "Report",
                &page,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(AppError::PreconditionFailed(m)) => {
            let page = builder(
                &scope,
                id.as_deref().unwrap_or(""),
                version,
                &d,
                vec![FieldError::new("", m)],
            )
            .await?;
            render_with_status(&req, &actor, "Report", &page, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e),
    }
}

pub struct TileView {
    pub title: String,
    pub href: String,
    pub wide: bool,
    pub figure: Option<(String, String)>,
    pub body: String,
    pub unavailable: String,
}

pub struct ScheduleRowView {
    pub id: String,
    pub summary: String,
    pub next: String,
    pub last_error: String,
}

#[derive(Template)]
#[template(path = "partials/reports/dashboard.html")]
pub struct DashboardPage {
    pub id: String,
    pub name: String,
    pub shared: String,
    pub period: Period,
    pub tiles: Vec<TileView>,
    pub editable: bool,
    pub schedules: Vec<ScheduleRowView>,
    pub members: Vec<Opt>,
    pub weekdays: Vec<Opt>,
    pub schedule_error: String,
    /// The zone the schedule form's hour is read in: the person's own.
    pub zone: &'static str,
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn schedule_summary(cadence: &str, day: i32, hour: i32, zone: &str, recipients: usize) -> String {
    let when = match cadence {
        "weekly" => format!(
            "Every {}",
            WEEKDAYS
                .get((day.clamp(1, 7) - 1) as usize)
                .unwrap_or(&"Monday")
        ),
        "monthly" => format!("On day {day} of every month"),
        _ => "Every day".into(),
    };
    format!(
        "{when} at {hour:02}:00 {zone} to {recipients} {}",
        if recipients == 1 { "person" } else { "people" }
    )
}

async fn tile_view(
    scope: &Scope,
    t: &Tile,
    from: NaiveDate,
    to: NaiveDate,
    q: &str,
) -> AppResult<TileView> {
    let (title, href) = match t.kind.as_str() {
        "standard" => (
            crate::domain::reports::standard::title_of(&t.reference)
                .unwrap_or("Report")
                .to_string(),
            format!("/reports/standard/{}?{q}", t.reference),
        ),
        "report" => (String::new(), format!("/reports/{}?{q}", t.reference)),
        _ => (
            KPIS.iter()
                .find(|k| k.0 == t.reference)
                .map_or("Figure", |k| k.1)
                .to_string(),
            String::new(),
        ),
    };
    let mut v = TileView {
        title,
        href,
        wide: t.wide,
        figure: None,
        body: String::new(),
        unavailable: String::new(),
    };
    match ops::tile(scope, t, from, to).await {
        TileOut::Report(r) => {
            v.title = r.title.clone();
            v.body = body(&r, true, &scope.local)?;
        }
        TileOut::Figure {
            label,
            value,
            detail,
        } => {
            v.title = label;
            v.figure = Some((value, detail));
        }
        TileOut::Unavailable(why) => {
            // No link to what the reader may not open.
            v.href.clear();
            v.unavailable = why;
        }
    }
    Ok(v)
}

async fn dashboard_page(
    scope: &Scope,
    req: &HttpRequest,
    id: String,
    schedule_error: String,
) -> AppResult<DashboardPage> {
    let d = ops::dashboard(scope, id).await?;
    let (mut period, from, to) = Period::read(req);
    let (from, to) = ops::period(from, to)?;
    period.from = from.to_string();
    period.to = to.to_string();
    let q = period.query();
    let mut tiles = Vec::new();
    for t in &d.tiles {
        tiles.push(tile_view(scope, t, from, to, &q).await?);
    }
    let (schedules, members) = if d.editable {
        let rows = ops::schedules(scope, d.id.clone()).await?;
        let members = ops::recipients(scope).await.unwrap_or_default();
        (
            rows.into_iter()
                .map(|s| ScheduleRowView {
                    summary: schedule_summary(
                        &s.cadence,
                        s.day,
                        s.hour,
                        &s.time_zone,
                        s.recipients.len(),
                    ),
                    next: scope.local.iso(&s.next_run_at),
                    last_error: s.last_error.unwrap_or_default(),
                    id: s.id,
                })
                .collect(),
            members
                .into_iter()
                .map(|(id, name)| Opt {
                    selected: Some(&id) == scope.user_id.as_ref(),
                    value: id,
                    label: name,
                })
                .collect(),
        )
    } else {
        (vec![], vec![])
    };
    Ok(DashboardPage {
        id: d.id,
        name: d.name,
        shared: shared_label(&d.shared_with),
        period,
        tiles,
        editable: d.editable,
        schedules,
        members,
        weekdays: WEEKDAYS
            .iter()
            .enumerate()
            .map(|(i, w)| opt(&(i + 1).to_string(), w, "1"))
            .collect(),
        schedule_error,
        zone: scope.local.zone_name(),
    })
}

/// `GET /dashboards/{id}`: every tile for one period.
pub async fn dashboard(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let page = dashboard_page(&scope, &req, id.into_inner(), String::new()).await?;
    render(&req, &actor, &page.name.clone(), &page).await
}

#[derive(Template)]
#[template(path = "partials/reports/dashboard_form.html")]
pub struct DashboardFormPage {
    pub id: String,
    pub version: i64,
    pub name: String,
    pub shared: Vec<Opt>,
    pub can_share: bool,
    /// (value `kind:ref`, label, checked, wide)
    pub choices: Vec<(String, String, bool, bool)>,
    pub errors: Vec<String>,
}

async fn dashboard_form(
    scope: &Scope,
    id: &str,
    version: i64,
    name: &str,
    shared: &str,
    tiles: &[Tile],
    errors: Vec<String>,
) -> AppResult<DashboardFormPage> {
    let picked = |kind: &str, r: &str| tiles.iter().find(|t| t.kind == kind && t.reference == r);
    let mut choices = Vec::new();
    for (k, l) in KPIS {
        let t = picked("kpi", k);
        choices.push((
            format!("kpi:{k}"),
            format!("Key figure: {l}"),
            t.is_some(),
            t.is_some_and(|t| t.wide),
        ));
    }
    for (k, l) in ops::standard_reports(scope) {
        let t = picked("standard", k);
        choices.push((
            format!("standard:{k}"),
            format!("Standard report: {l}"),
            t.is_some(),
            t.is_some_and(|t| t.wide),
        ));
    }
    for r in ops::list(scope).await? {
        let t = picked("report", &r.id);
        choices.push((
            format!("report:{}", r.id),
            format!("Saved report: {}", r.name),
            t.is_some(),
            t.is_some_and(|t| t.wide),
        ));
    }
    Ok(DashboardFormPage {
        id: id.into(),
        version,
        name: name.into(),
        shared: sharing(shared),
        can_share: scope.can("report", "write"),
        choices,
        errors,
    })
}

/// `GET /dashboards/new`
pub async fn new_dashboard(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    scope.require("report", "read")?;
    let page = dashboard_form(&scope, "", 0, "", "", &[], vec![]).await?;
    render(&req, &actor, "New dashboard", &page).await
}

/// `GET /dashboards/{id}/edit`
pub async fn edit_dashboard(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let d = ops::dashboard(&scope, id.into_inner()).await?;
    if !d.editable {
        return Err(AppError::forbidden());
    }
    let page = dashboard_form(
        &scope,
        &d.id,
        d.version,
        &d.name,
        d.shared_with.as_deref().unwrap_or(""),
        &d.tiles,
        vec![],
    )
    .await?;
    render(&req, &actor, &d.name, &page).await
}

/// `POST /dashboards` and `POST /dashboards/{id}`: tiles are the ticked boxes, in the
/// form's order; "wide" ones span two columns.
pub async fn save_dashboard(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let get = |k: &str| super::form_value(&pairs, k);
    let wide: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "wide")
        .map(|(_, v)| v.as_str())
        .collect();
    let tiles: Vec<Tile> = pairs
        .iter()
        .filter(|(k, _)| k == "tile")
        .filter_map(|(_, v)| {
            let (kind, r) = v.split_once(':')?;
            Some(Tile {
                kind: kind.into(),
                reference: r.into(),
                wide: wide.contains(&v.as_str()),
            })
        })
        .collect();
    let id = req
        .match_info()
        .get("id")
        .map(str::to_string)
        .filter(|s| !s.is_empty());
    let version: i64 = get("version").parse().unwrap_or(0);
    let form = DashboardForm {
        name: get("name"),
        tiles: tiles.clone(),
        shared_with: Some(get("shared")).filter(|s| !s.is_empty()),
    };
    let expected = id.as_ref().map(|_| version);
    match ops::save_dashboard(&scope, id.clone(), form, expected).await {
        Ok(d) => redirect_with_flash(&req, &format!("/dashboards/{}", d.id), "Dashboard saved."),
        Err(AppError::Validation(_, errors)) => {
            let page = dashboard_form(
                &scope,
                id.as_deref().unwrap_or(""),
                version,
                &get("name"),
                &get("shared"),
                &tiles,
                errors.iter().map(words).collect(),
            )
            .await?;
            render_with_status(
                &req,
                &actor,
                "Dashboard",
                &page,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(AppError::PreconditionFailed(m)) => {
            let page = dashboard_form(
                &scope,
                id.as_deref().unwrap_or(""),
                version,
                &get("name"),
                &get("shared"),
                &tiles,
                vec![m],
            )
            .await?;
            render_with_status(&req, &actor, "Dashboard", &page, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /dashboards/{id}/delete`
pub async fn delete_dashboard(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    ops::delete_dashboard(&scope, id.into_inner()).await?;
    redirect_with_flash(&req, "/reports", "Dashboard deleted.")
}

/// `POST /dashboards/{id}/schedules`
pub async fn schedule(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    let pairs = form_pairs(&body)?;
    let get = |k: &str| super::form_value(&pairs, k);
    let cadence = get("cadence");
    let input = ScheduleInput {
        recipients: pairs
            .iter()
            .filter(|(k, _)| k == "recipient")
            .map(|(_, v)| v.clone())
            .take(100)
            .collect(),
        day: if cadence == "monthly" {
            get("monthday").parse().unwrap_or(0)
        } else {
            get("weekday").parse().unwrap_or(1)
        },
        hour: get("hour").parse().unwrap_or(-1),
        // why: the hour typed is on the clocks of the person scheduling it.
        time_zone: scope.local.zone_name().to_string(),
        cadence,
    };
    match ops::schedule(&scope, id.clone(), input).await {
        Ok(_) => redirect_with_flash(&req, &format!("/dashboards/{id}"), "Schedule saved."),
        Err(AppError::Validation(_, errors)) => {
            let msg = errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join(" ");
            let page = dashboard_page(&scope, &req, id, msg).await?;
            render_with_status(
                &req,
                &actor,
                &page.name.clone(),
                &page,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(AppError::Conflict(m)) => {
            let page = dashboard_page(&scope, &req, id, m).await?;
            render_with_status(
                &req,
                &actor,
                &page.name.clone(),
                &page,
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// `POST /dashboards/{id}/schedules/{schedule}/delete`
pub async fn unschedule(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (id, schedule) = path.into_inner();
    ops::unschedule(&scope, id.clone(), schedule).await?;
    redirect_with_flash(&req, &format!("/dashboards/{id}"), "Schedule removed.")
}
