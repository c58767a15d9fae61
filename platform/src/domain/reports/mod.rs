//! Reports: the standard reports (sales by rep, stage and source, activity by rep, the
//! conversion funnel, deal velocity, lost reasons, forecast against actual, segment growth,
//! reps against the team median) and custom ones built from a definition. Every report is
//! one or two grouped SQL queries whose few result rows become a [`Table`]; nothing loads
//! the underlying records into Rust. A table is answered as JSON, CSV or XLSX and drawn as
//! an SVG chart by the console.

pub mod custom;
pub mod standard;
pub mod store;

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::db::{Backend, DbConn};
use crate::domain::pipeline::store as pipeline_store;
use crate::error::{AppError, AppResult};

/// What a column holds, which decides how it is written and charted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ReportColumnType)]
pub enum ColKind {
    Text,
    Count,
    Number,
    Money,
    Percent,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ReportColumn)]
pub struct Column {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: ColKind,
}

impl Column {
    pub fn new(key: &str, label: &str, kind: ColKind) -> Self {
        Column {
            key: key.into(),
            label: label.into(),
            kind,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Dec(Decimal),
    Null,
}

impl Cell {
    /// The cell as a CSV or table would show it.
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Dec(d) => d.normalize().to_string(),
            Cell::Null => String::new(),
        }
    }

    /// The cell as a number a chart can scale, when it is one.
    pub fn number(&self) -> Option<Decimal> {
        match self {
            Cell::Int(n) => Some(Decimal::from(*n)),
            Cell::Dec(d) => Some(*d),
            _ => None,
        }
    }

    fn json(&self) -> Value {
        match self {
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(n) => Value::from(*n),
            // why: amounts and rates are decimal strings in the whole API (no float rounding).
            Cell::Dec(d) => Value::String(d.normalize().to_string()),
            Cell::Null => Value::Null,
        }
    }
}

/// How a report is best drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ReportChartType)]
pub enum ChartKind {
    Bar,
    Line,
    Pie,
    Funnel,
    Table,
}

impl ChartKind {
    pub const ALL: [ChartKind; 5] = [
        ChartKind::Bar,
        ChartKind::Line,
        ChartKind::Pie,
        ChartKind::Funnel,
        ChartKind::Table,
    ];

    pub fn key(self) -> &'static str {
        match self {
            ChartKind::Bar => "bar",
            ChartKind::Line => "line",
            ChartKind::Pie => "pie",
            ChartKind::Funnel => "funnel",
            ChartKind::Table => "table",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ChartKind::Bar => "Bar chart",
            ChartKind::Line => "Line chart",
            ChartKind::Pie => "Pie chart",
            ChartKind::Funnel => "Funnel",
            ChartKind::Table => "Table only",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == s)
    }
}

/// Which columns a chart draws: the labels and one or more value series.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ReportChart)]
pub struct Chart {
    #[serde(rename = "type")]
    pub kind: ChartKind,
    /// The key of the column that names each bar, slice or point.
    pub label: String,
    /// The keys of the columns drawn.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn index(&self, key: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.key == key)
    }
}

/// A computed report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The standard report's name, or `custom`.
    pub kind: String,
    pub title: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub table: Table,
    pub chart: Chart,
    /// What the figures mean, in a sentence or two.
    pub note: String,
}

/// A report as the API answers it in JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportView {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    /// `YYYY-MM-DD`, inclusive.
    pub from: String,
    pub to: String,
    pub note: String,
    pub chart: Chart,
    pub columns: Vec<Column>,
    /// One object per row, keyed by the columns' keys; counts are numbers, amounts and
    /// rates decimal strings.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<Map<String, Value>>,
}

impl Report {
    pub fn view(&self) -> ReportView {
        ReportView {
            kind: self.kind.clone(),
            title: self.title.clone(),
            from: self.from.to_string(),
            to: self.to.to_string(),
            note: self.note.clone(),
            chart: self.chart.clone(),
            columns: self.table.columns.clone(),
            rows: self
                .table
                .rows
                .iter()
                .map(|r| {
                    self.table
                        .columns
                        .iter()
                        .zip(r)
                        .map(|(c, v)| (c.key.clone(), v.json()))
                        .collect()
                })
                .collect(),
        }
    }

    /// CSV with the columns' labels as the header; text that a spreadsheet would run as a
    /// formula is neutralised.
    pub fn csv(&self) -> AppResult<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let fail = |e: csv::Error| AppError::Internal(format!("writing the CSV: {e}"));
        w.write_record(self.table.columns.iter().map(|c| c.label.as_str()))
            .map_err(fail)?;
        for row in &self.table.rows {
            w.write_record(row.iter().map(|c| match c {
                Cell::Text(s) => crate::web::exports::neutralise(s),
                other => other.text(),
            }))
            .map_err(fail)?;
        }
        w.into_inner()
            .map_err(|e| AppError::Internal(format!("writing the CSV: {e}")))
    }

    /// An XLSX workbook of one sheet; counts and amounts are numbers a spreadsheet sums.
    pub fn xlsx(&self) -> AppResult<Vec<u8>> {
        use rust_decimal::prelude::ToPrimitive;
        use rust_xlsxwriter::{Format, Workbook};
        let fail = |e: rust_xlsxwriter::XlsxError| {
            AppError::Internal(format!("writing the workbook: {e}"))
        };
        let mut book = Workbook::new();
        let bold = Format::new().set_bold();
        let ws = book.add_worksheet();
        let name: String = self
            .title
            .chars()
            .filter(|c| !"[]:*?/\\".contains(*c))
            .take(31)
            .collect();
        ws.set_name(if name.trim().is_empty() {
            "Report"
        } else {
            name.as_str()
        })
        .map_err(fail)?;
        for (i, c) in self.table.columns.iter().enumerate() {
            ws.write_string_with_format(0, i as u16, &c.label, &bold)
                .map_err(fail)?;
            ws.set_column_width(i as u16, 16).map_err(fail)?;
        }
        for (r, row) in self.table.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (i, cell) in row.iter().enumerate() {
                let col = i as u16;
                match cell {
                    Cell::Text(s) => {
                        ws.write_string(r, col, s).map_err(fail)?;
                    }
                    Cell::Int(n) => {
                        ws.write_number(r, col, *n as f64).map_err(fail)?;
                    }
                    Cell::Dec(d) => {
                        ws.write_number(r, col, d.to_f64().unwrap_or_default())
                            .map_err(fail)?;
                    }
                    Cell::Null => {}
                }
            }
        }
        book.save_to_buffer().map_err(fail)
    }
}

/// The period a report covers and whose records it may count.
#[derive(Debug, Clone)]
pub struct Reach {
    pub org: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// `Some(user)` when the caller sees only their own deals; `None` for all.
    pub deals_of: Option<String>,
    pub activities_of: Option<String>,
    pub clients_of: Option<String>,
    /// Whether the caller may see deals, activities (interactions) at all.
    pub deals: bool,
    pub activities: bool,
    pub pipeline: Option<String>,
}

/// The longest period a report covers.
pub const MAX_DAYS: i64 = 3660;

/// Checks a period: the start not after the end, at most ten years.
pub fn check_period(from: NaiveDate, to: NaiveDate) -> AppResult<()> {
    if from > to {
        return Err(AppError::invalid(
            "from",
            "The period starts after it ends: put the earlier date in from.",
        ));
    }
    if (to - from).num_days() > MAX_DAYS {
        return Err(AppError::invalid("from", "Ask for at most ten years."));
    }
    Ok(())
}

/// A SQL string literal. Every value a report puts into its SQL is either one of these
/// (quotes doubled, NUL refused upstream) or a number or date parsed and re-printed, so
/// nothing typed reaches the SQL text as written.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\0', "").replace('\'', "''"))
}

pub fn day_lit(d: NaiveDate) -> String {
    format!("'{}'", d.format("%Y-%m-%d"))
}

/// The first instant after `d`, as a timestamp literal (periods are inclusive of their last day).
pub fn after_lit(d: NaiveDate) -> String {
    format!(
        "'{} 00:00:00'",
        (d + chrono::Duration::days(1)).format("%Y-%m-%d")
    )
}

pub fn start_lit(d: NaiveDate) -> String {
    format!("'{} 00:00:00'", d.format("%Y-%m-%d"))
}

/// A date bucket of a date or timestamp expression, as text that sorts in time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = ReportDateBucket)]
pub enum Bucket {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Bucket {
    pub const ALL: [Bucket; 5] = [
        Bucket::Day,
        Bucket::Week,
        Bucket::Month,
        Bucket::Quarter,
        Bucket::Year,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
            Bucket::Quarter => "quarter",
            Bucket::Year => "year",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Bucket::Day => "by day",
            Bucket::Week => "by week (starting Monday)",
            Bucket::Month => "by month",
            Bucket::Quarter => "by quarter",
            Bucket::Year => "by year",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.key() == s)
    }

    /// `2026-11-30` (a week is named by its Monday), `2026-11`, `2026-Q4`, `2026`.
    pub fn sql(self, backend: Backend, expr: &str) -> String {
        match (backend, self) {
            (Backend::Sqlite, Bucket::Day) => format!("substr({expr}, 1, 10)"),
            (Backend::Sqlite, Bucket::Week) => {
                format!("date(substr({expr}, 1, 10), '-6 days', 'weekday 1')")
            }
            (Backend::Sqlite, Bucket::Month) => format!("substr({expr}, 1, 7)"),
            (Backend::Sqlite, Bucket::Quarter) => format!(
                "(substr({expr}, 1, 4) || '-Q' || ((CAST(substr({expr}, 6, 2) AS INTEGER) + 2) / 3))"
            ),
            (Backend::Sqlite, Bucket::Year) => format!("substr({expr}, 1, 4)"),
            (Backend::Postgres, Bucket::Day) => format!("to_char({expr}, 'YYYY-MM-DD')"),
            (Backend::Postgres, Bucket::Week) => {
                format!("to_char(date_trunc('week', {expr}), 'YYYY-MM-DD')")
            }
            (Backend::Postgres, Bucket::Month) => format!("to_char({expr}, 'YYYY-MM')"),
            (Backend::Postgres, Bucket::Quarter) => format!("to_char({expr}, 'YYYY-\"Q\"Q')"),
            (Backend::Postgres, Bucket::Year) => format!("to_char({expr}, 'YYYY')"),
        }
    }
}

/// Calendar days from the day of `start` (a timestamp) to `end` (a date), as a whole number.
pub fn days_between(backend: Backend, end: &str, start: &str) -> String {
    match backend {
        Backend::Sqlite => format!("(julianday({end}) - julianday(date({start})))"),
        Backend::Postgres => format!("(CAST({end} AS DATE) - CAST({start} AS DATE))"),
    }
}

/// A stage as reports need it: (pipeline id, name, position, kind).
pub type StageInfo = (String, String, i32, String);

/// Names for the ids a report groups by: people, stages, pipelines.
#[derive(Debug, Default)]
pub struct Names {
    pub users: HashMap<String, String>,
    /// Active members whose job is to sell (sales reps and managers).
    pub sellers: Vec<String>,
    /// stage id → (pipeline id, name, position, kind)
    pub stages: HashMap<String, StageInfo>,
    pub pipelines: HashMap<String, String>,
    /// Pipelines in use, in their order.
    pub pipeline_order: Vec<String>,
}

impl Names {
    pub fn load(c: &mut DbConn, org: &str) -> AppResult<Self> {
        use crate::db::schema::{memberships, users};
        let members: Vec<(String, String, String, bool)> = memberships::table
            .inner_join(users::table)
            .filter(memberships::organization_id.eq(org))
            .select((
                users::id,
                users::name,
                memberships::role,
                memberships::is_active,
            ))
            .load(c)?;
        let sellers = members
            .iter()
            .filter(|m| m.3 && matches!(m.2.as_str(), "sales_rep" | "manager"))
            .map(|m| m.0.clone())
            .collect();
        let users = members.into_iter().map(|m| (m.0, m.1)).collect();
        let stages = pipeline_store::stages_of_org(c, org)?
            .into_iter()
            .map(|s| (s.id, (s.pipeline_id, s.name, s.position, s.kind)))
            .collect();
        let all: Vec<(String, String, bool)> = {
            use crate::db::schema::pipelines;
            pipelines::table
                .filter(pipelines::organization_id.eq(org))
                .order((pipelines::position.asc(), pipelines::id.asc()))
                .select((
                    pipelines::id,
                    pipelines::name,
                    pipelines::archived_at.is_null(),
                ))
                .load(c)?
        };
        Ok(Names {
            users,
            sellers,
            stages,
            pipeline_order: all.iter().filter(|p| p.2).map(|p| p.0.clone()).collect(),
            pipelines: all.into_iter().map(|p| (p.0, p.1)).collect(),
        })
    }

    pub fn user(&self, id: Option<&str>) -> String {
        match id {
            None | Some("") => "Unassigned".into(),
            Some(id) => self
                .users
                .get(id)
                .cloned()
                .unwrap_or_else(|| "Former member".into()),
        }
    }

    pub fn stage(&self, id: &str) -> String {
        self.stages
            .get(id)
            .map(|s| s.1.clone())
            .unwrap_or_else(|| "Removed stage".into())
    }

    pub fn pipeline(&self, id: &str) -> String {
        self.pipelines
            .get(id)
            .cloned()
            .unwrap_or_else(|| "Removed pipeline".into())
    }
}

/// A decimal amount as people read it: `117423.5` → `117,423.50`.
pub fn grouped(amount: &str) -> String {
    let d = amount.parse::<Decimal>().unwrap_or_default().round_dp(2);
    let text = format!("{d:.2}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{sign}{out}.{frac}")
}

/// cents → a decimal amount with two places.
pub fn money(cents: i64) -> Cell {
    Cell::Dec(Decimal::new(cents, 2))
}

/// `part / whole` in percent with one place, or empty when there is no whole.
pub fn percent(part: i64, whole: i64) -> Cell {
    if whole <= 0 {
        return Cell::Null;
    }
    Cell::Dec((Decimal::from(part) * Decimal::from(100) / Decimal::from(whole)).round_dp(1))
}

/// The median of some numbers (the mean of the middle two for an even count).
pub fn median(values: &mut [Decimal]) -> Option<Decimal> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / Decimal::from(2)
    })
}

/// A dashboard or reports as a PDF: its name and period, the key figures, then each
/// report with its note, a bar chart of its first figure and its table (the first 40 rows
/// and 7 columns; the CSV beside it holds everything).
pub fn pdf(
    title: &str,
    period: &str,
    figures: &[(String, String, String)],
    reports: &[Report],
) -> Vec<u8> {
    use crate::pdf::{clip, Doc, LEFT, RIGHT};
    const ROWS: usize = 40;
    const COLS: usize = 7;
    const BARS: usize = 12;
    let mut d = Doc::new();
    d.sized(LEFT, title, true, 16.0);
    d.down(20.0);
    d.text(LEFT, period, false);
    d.down(28.0);
    for (label, value, detail) in figures {
        d.need(16.0);
        d.text(LEFT, label.as_str(), true);
        d.text(220.0, value.as_str(), true);
        d.text(360.0, clip(detail, 34), false);
        d.down(16.0);
    }
    for r in reports {
        d.need(80.0);
        // A single report is the document: its title is not said twice.
        if r.title != title || reports.len() > 1 || !figures.is_empty() {
            d.down(18.0);
            d.sized(LEFT, r.title.as_str(), true, 13.0);
            d.down(16.0);
        }
        d.paragraph(LEFT, &r.note, 100, 13.0);
        d.down(6.0);
        let t = &r.table;
        if t.rows.is_empty() {
            d.text(LEFT, "Nothing in this period.", false);
            d.down(14.0);
            continue;
        }
        // One currency per axis: a chart of amounts in several currencies is left out.
        let currencies: std::collections::BTreeSet<String> = t
            .index("currency")
            .map(|i| t.rows.iter().map(|row| row[i].text()).collect())
            .unwrap_or_default();
        let label = t.index(&r.chart.label);
        let value = r.chart.values.first().and_then(|k| t.index(k));
        if let (Some(li), Some(vi), true) = (
            label,
            value,
            r.chart.kind != ChartKind::Table && currencies.len() <= 1,
        ) {
            let bars: Vec<(String, Decimal)> = t
                .rows
                .iter()
                .take(BARS)
                .map(|row| (row[li].text(), row[vi].number().unwrap_or_default()))
                .collect();
            let max = bars
                .iter()
                .map(|b| b.1)
                .max()
                .unwrap_or_default()
                .max(Decimal::ONE);
            d.need(14.0 * bars.len() as f32 + 20.0);
            d.text(LEFT, t.columns[vi].label.as_str(), true);
            d.down(14.0);
            for (name, v) in bars {
                let share = (v / max).to_string().parse::<f32>().unwrap_or(0.0).max(0.0);
                d.text(LEFT, clip(&name, 26), false);
                d.bar(200.0, (260.0 * share).max(0.5), 9.0, 0.45);
                d.text(
                    200.0 + 260.0 * share + 6.0,
                    grouped_cell(&t.columns[vi], v),
                    false,
                );
                d.down(14.0);
            }
            d.down(8.0);
        }
        // The first column (what each row is) gets twice the room of the figures.
        let shown = t.columns.len().min(COLS);
        let unit = (RIGHT - LEFT) / (shown + 1) as f32;
        let x = |i: usize| LEFT + unit * if i == 0 { 0.0 } else { i as f32 + 1.0 };
        let chars = |i: usize| (((if i == 0 { 2.0 } else { 1.0 }) * unit / 5.4) as usize).max(4);
        d.need(30.0);
        // Headers in a smaller type, so "Win rate (%)" fits over its figures.
        for (i, c) in t.columns.iter().take(shown).enumerate() {
            d.sized(x(i), clip(&c.label, chars(i) + 2), true, 8.5);
        }
        d.down(15.0);
        for row in t.rows.iter().take(ROWS) {
            d.need(13.0);
            for (i, (c, cell)) in t.columns.iter().zip(row).take(shown).enumerate() {
                let text = match cell.number() {
                    Some(n) => grouped_cell(c, n),
                    None => cell.text(),
                };
                d.text(x(i), clip(&text, chars(i)), false);
            }
            d.down(13.0);
        }
        if t.rows.len() > ROWS || t.columns.len() > COLS {
            d.need(13.0);
            d.text(
                LEFT,
                format!(
                    "{} rows and {} columns in all: the CSV attached holds every one.",
                    t.rows.len(),
                    t.columns.len()
                ),
                false,
            );
            d.down(13.0);
        }
    }
    d.finish()
}

/// A number as the PDF shows it: amounts with two decimals, counts grouped.
fn grouped_cell(c: &Column, n: Decimal) -> String {
    match c.kind {
        ColKind::Money => grouped(&n.to_string()),
        ColKind::Number if n.fract().is_zero() => {
            crate::web::console::format_count(n.to_string().parse::<i64>().unwrap_or(0))
        }
        ColKind::Number => n.round_dp(2).normalize().to_string(),
        ColKind::Percent => format!("{}%", n.round_dp(1).normalize()),
        ColKind::Count | ColKind::Text => {
            crate::web::console::format_count(n.trunc().to_string().parse::<i64>().unwrap_or(0))
        }
    }
}

/// A name as a file name's stem: lower-case ASCII letters and digits joined by single
/// dashes (`Sales by rep` → `sales-by-rep`), `report` when nothing is left.
pub fn file_stem(name: &str) -> String {
    let stem = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if stem.is_empty() {
        "report".into()
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_cannot_close_their_quotes() {
        assert_eq!(lit("O'Brien"), "'O''Brien'");
        assert_eq!(
            lit("x'); DROP TABLE clients; --"),
            "'x''); DROP TABLE clients; --'"
        );
    }

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(grouped("117423.5"), "117,423.50");
        assert_eq!(grouped("-1000"), "-1,000.00");
        assert_eq!(grouped("999"), "999.00");
    }

    #[test]
    fn the_median_of_an_even_count_is_the_middle_mean() {
        let mut v = vec![
            Decimal::from(9),
            Decimal::from(1),
            Decimal::from(4),
            Decimal::from(6),
        ];
        assert_eq!(median(&mut v), Some(Decimal::from(5)));
        assert_eq!(median(&mut []), None);
    }
}
