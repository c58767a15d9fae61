//! Custom reports: an entity (clients, deals, interactions), filters over its fields, a
//! group-by (dates in day/week/month/quarter/year buckets) with aggregates (count, sum,
//! average, minimum, maximum), or a plain list of chosen columns, and a chart type. The
//! definition compiles to one SQL query; every value in it is parsed and re-printed or a
//! quoted literal (see [`super::lit`]).

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{day_lit, lit, Bucket, Cell, Chart, ChartKind, ColKind, Column, Names, Report, Table};
use crate::db::{backend_of, now, Backend, DbConn};
use crate::error::{AppError, AppResult, FieldError};

pub const MAX_FILTERS: usize = 10;
pub const MAX_AGGREGATES: usize = 4;
pub const MAX_COLUMNS: usize = 12;
pub const MAX_ROWS: i64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Choice(&'static [&'static str]),
    User,
    Stage,
    Pipeline,
    Client,
    Date,
    Number,
    Money,
}

impl Kind {
    pub fn ops(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Text => &[
                ("is", "is"),
                ("isNot", "is not"),
                ("contains", "contains"),
                ("empty", "is empty"),
                ("notEmpty", "is not empty"),
            ],
            Kind::Choice(_) | Kind::User | Kind::Stage | Kind::Pipeline | Kind::Client => &[
                ("is", "is"),
                ("isNot", "is not"),
                ("empty", "is empty"),
                ("notEmpty", "is not empty"),
            ],
            Kind::Date => &[
                ("after", "on or after"),
                ("before", "on or before"),
                ("withinDays", "within the last … days"),
                ("olderThanDays", "more than … days ago"),
                ("empty", "is empty"),
                ("notEmpty", "is not empty"),
            ],
            Kind::Number | Kind::Money => &[
                ("gte", "at least"),
                ("lte", "at most"),
                ("gt", "more than"),
                ("lt", "less than"),
                ("eq", "equal to"),
                ("empty", "is empty"),
                ("notEmpty", "is not empty"),
            ],
        }
    }

    pub fn numeric(self) -> bool {
        matches!(self, Kind::Number | Kind::Money)
    }
}

pub struct Field {
    pub key: &'static str,
    pub label: &'static str,
    /// The SQL expression over the entity's alias `t` (and `s` for client scores).
    pub sql: &'static str,
    pub kind: Kind,
}

const fn f(key: &'static str, label: &'static str, sql: &'static str, kind: Kind) -> Field {
    Field {
        key,
        label,
        sql,
        kind,
    }
}

const DEAL_STATUS: &[&str] = &["open", "won", "lost"];
const CLIENT_STATUS: &[&str] = &["lead", "prospect", "customer", "inactive"];
const CLIENT_TYPE: &[&str] = &["person", "company"];
const ACT_KIND: &[&str] = &["call", "meeting", "email", "sms", "note", "task"];
const ACT_DIRECTION: &[&str] = &["inbound", "outbound"];
const ACT_STATUS: &[&str] = &["planned", "completed", "cancelled"];

pub struct Entity {
    pub key: &'static str,
    pub label: &'static str,
    /// The FROM clause.
    from: &'static str,
    /// Joined after `from` when a report names a field over the alias `s` (the scores).
    join: &'static str,
    /// Whether the table has `deleted_at` (deleted records are left out).
    deleted: bool,
    /// A condition every record meets (the timeline's system events are not activities).
    base: &'static str,
    /// The column naming the record's owner (a rep sees only their own).
    owner: &'static str,
    /// The currency of the entity's amounts.
    currency: &'static str,
    /// What `count` counts: rows, or the counts kept in a summary table.
    count: &'static str,
    pub default_date: &'static str,
    pub fields: &'static [Field],
    /// The resource whose read right the report needs.
    pub resource: &'static str,
}

pub const ENTITIES: &[Entity] = &[
    Entity {
        key: "deals",
        label: "Deals",
        from: "opportunities t",
        join: "",
        deleted: true,
        base: "",
        owner: "t.assigned_to",
        currency: "t.currency",
        count: "COUNT(*)",
        default_date: "createdAt",
        resource: "opportunity",
        fields: &[
            f("name", "Name", "t.name", Kind::Text),
            f("status", "Status", "t.status", Kind::Choice(DEAL_STATUS)),
            f("pipeline", "Pipeline", "t.pipeline_id", Kind::Pipeline),
            f("stage", "Stage", "t.stage_id", Kind::Stage),
            f("owner", "Owner", "t.assigned_to", Kind::User),
            f("client", "Client", "t.client_id", Kind::Client),
            f("source", "Source", "t.source", Kind::Text),
            f("currency", "Currency", "t.currency", Kind::Text),
            f("lossReason", "Loss reason", "t.loss_reason", Kind::Text),
            f("value", "Value", "t.value_cents", Kind::Money),
            f(
                "probability",
                "Probability (%)",
                "t.probability",
                Kind::Number,
            ),
            f("createdAt", "Created", "t.created_at", Kind::Date),
            f(
                "expectedClose",
                "Expected close",
                "t.expected_close",
                Kind::Date,
            ),
            f("actualClose", "Closed on", "t.actual_close", Kind::Date),
        ],
    },
    Entity {
        key: "clients",
        label: "Clients",
        from: "clients t",
        // why: joined once, and only where a report names a score, so a count by country
        // stays on the clients index. A lookup per row per named score instead cost 3.9 s
        // for the average engagement by country at 1M clients on PostgreSQL; the join is a
        // single hash join (1.05 s). A client has at most one score row (its key).
        join: "LEFT JOIN client_scores s ON s.client_id = t.id",
        deleted: true,
        base: "",
        owner: "t.assigned_to",
        currency: "s.currency",
        count: "COUNT(*)",
        default_date: "createdAt",
        resource: "client",
        fields: &[
            f("name", "Name", "t.display_name", Kind::Text),
            f("email", "E-mail", "t.email", Kind::Text),
            f("status", "Status", "t.status", Kind::Choice(CLIENT_STATUS)),
            f("type", "Type", "t.kind", Kind::Choice(CLIENT_TYPE)),
            f("owner", "Owner", "t.assigned_to", Kind::User),
            f("company", "Company", "t.company_name", Kind::Text),
            f("industry", "Industry", "t.industry", Kind::Text),
            f("source", "Source", "t.source", Kind::Text),
            f("city", "City", "t.city", Kind::Text),
            f("region", "Region", "t.region", Kind::Text),
            f("country", "Country", "t.country", Kind::Text),
            f(
                "engagement",
                "Engagement score",
                "s.engagement",
                Kind::Number,
            ),
            f("churnRisk", "Churn risk", "s.churn_risk", Kind::Number),
            f(
                "lifetimeValue",
                "Lifetime value",
                "s.lifetime_value_cents",
                Kind::Money,
            ),
            f("createdAt", "Created", "t.created_at", Kind::Date),
            f("updatedAt", "Last changed", "t.updated_at", Kind::Date),
        ],
    },
    Entity {
        key: "interactions",
        label: "Activities",
        // why: a rep sees the activities on the clients they own (the timeline's rule), not
        // only those they logged; looked up per row only for such a rep.
        from: "interactions t",
        join: "",
        deleted: true,
        base: "t.kind <> 'event'",
        owner: "(SELECT oc.assigned_to FROM clients oc WHERE oc.id = t.client_id)",
        currency: "''",
        count: "COUNT(*)",
        default_date: "occurredAt",
        resource: "interaction",
        fields: &[
            f("subject", "Subject", "t.subject", Kind::Text),
            f("kind", "Kind", "t.kind", Kind::Choice(ACT_KIND)),
            f(
                "direction",
                "Direction",
                "t.direction",
                Kind::Choice(ACT_DIRECTION),
            ),
            f("status", "Status", "t.status", Kind::Choice(ACT_STATUS)),
            f("owner", "Logged by", "t.user_id", Kind::User),
            f("client", "Client", "t.client_id", Kind::Client),
            f("outcome", "Outcome", "t.outcome", Kind::Text),
            f(
                "durationMinutes",
                "Duration (minutes)",
                "t.duration_minutes",
                Kind::Number,
            ),
            f("occurredAt", "Date", "t.occurred_at", Kind::Date),
        ],
    },
];

/// Activities as the daily counts hold them (`activity_daily`, kept by triggers): a count of
/// activities filtered and grouped only by kind, status, person and date reads a few rows
/// per day from it instead of every activity in the period (millions at 1M clients).
const ACTIVITY_DAILY: Entity = Entity {
    key: "interactions",
    label: "Activities",
    from: "activity_daily t",
    join: "",
    deleted: false,
    base: "t.kind <> 'event' AND t.n > 0",
    owner: "''",
    currency: "''",
    count: "SUM(t.n)",
    default_date: "occurredAt",
    resource: "interaction",
    fields: &[
        f("kind", "Kind", "t.kind", Kind::Choice(ACT_KIND)),
        f("status", "Status", "t.status", Kind::Choice(ACT_STATUS)),
        f("owner", "Logged by", "NULLIF(t.user_id, '')", Kind::User),
        f("occurredAt", "Date", "t.day", Kind::Date),
    ],
};

pub fn entity(key: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.key == key)
}

impl Entity {
    pub fn field(&self, key: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.key == key)
    }
}

/// `open` → `Open`, `sales_rep` → `Sales rep`.
pub fn humanize(s: &str) -> String {
    let s = s.replace('_', " ");
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => s,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ReportCondition)]
pub struct Condition {
    pub field: String,
    pub op: String,
    /// A string, a number, or (for `is` / `isNot`) a list of strings; `"me"` names the
    /// caller for a person field.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ReportGroupBy)]
pub struct GroupBy {
    pub field: String,
    /// For a date field: `day`, `week`, `month` (default), `quarter`, `year`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Bucket>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ReportAggregate)]
pub struct Aggregate {
    /// `count`, `sum`, `avg`, `min` or `max`.
    #[serde(rename = "fn")]
    pub func: String,
    /// The number or amount field; none for `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// What a custom report computes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ReportDefinition)]
pub struct Definition {
    /// `clients`, `deals` or `interactions`.
    pub entity: String,
    /// `all` (default) or `any` of the filters.
    #[serde(default = "all", rename = "match")]
    pub match_: String,
    #[serde(default)]
    pub filters: Vec<Condition>,
    /// Clients only: members of this segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// The date field the report's period applies to (default: created, or the activity's
    /// date); `none` for all time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<GroupBy>,
    /// With a group-by; `count` when empty.
    #[serde(default)]
    pub aggregates: Vec<Aggregate>,
    /// Without a group-by: the fields listed, one row per record (newest first).
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default = "bar")]
    pub chart: ChartKind,
    /// How many rows at most (default 100, at most 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

fn all() -> String {
    "all".into()
}

fn bar() -> ChartKind {
    ChartKind::Bar
}

const FUNCS: &[(&str, &str)] = &[
    ("count", "Count"),
    ("sum", "Sum"),
    ("avg", "Average"),
    ("min", "Minimum"),
    ("max", "Maximum"),
];

pub fn func_label(f: &str) -> &'static str {
    FUNCS.iter().find(|x| x.0 == f).map_or("?", |x| x.1)
}

pub const FUNC_KEYS: &[(&str, &str)] = FUNCS;

/// A validated definition, ready to run.
pub struct Checked {
    pub def: Definition,
    entity: &'static Entity,
    date: Option<&'static Field>,
}

impl Definition {
    /// Checks every part, answering one error per wrong part with its path
    /// (`filters[1].op`, `aggregates[0].field`).
    pub fn check(self) -> AppResult<Checked> {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut err = |path: String, msg: String| errors.push(FieldError::new(&path, &msg));
        let Some(entity) = entity(&self.entity) else {
            return Err(AppError::invalid(
                "entity",
                "Choose what to report on: clients, deals or interactions.",
            ));
        };
        if !matches!(self.match_.as_str(), "all" | "any") {
            err("match".into(), "Use all or any.".into());
        }
        if self.filters.len() > MAX_FILTERS {
            err(
                "filters".into(),
                format!("At most {MAX_FILTERS} filters; narrow with a segment instead."),
            );
        }
        for (i, c) in self.filters.iter().enumerate() {
            match entity.field(&c.field) {
                None => err(
                    format!("filters[{i}].field"),
                    format!("{} have no field \"{}\".", entity.label, c.field),
                ),
                Some(field) => {
                    if !field.kind.ops().iter().any(|o| o.0 == c.op) {
                        err(
                            format!("filters[{i}].op"),
                            format!(
                                "\"{}\" cannot be compared with \"{}\"; use one of: {}.",
                                field.label,
                                c.op,
                                field
                                    .kind
                                    .ops()
                                    .iter()
                                    .map(|o| o.0)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                    } else if let Err(m) = condition_sql(field, c, "", Backend::Sqlite) {
                        err(format!("filters[{i}].value"), m);
                    }
                }
            }
        }
        if self.segment.is_some() && entity.key != "clients" {
            err(
                "segment".into(),
                "Only a clients report can be narrowed to a segment.".into(),
            );
        }
        let date = match self.date_field.as_deref() {
            Some("none") => None,
            None | Some("") => entity.field(entity.default_date),
            Some(k) => match entity.field(k) {
                Some(f) if f.kind == Kind::Date => Some(f),
                _ => {
                    err(
                        "dateField".into(),
                        format!("\"{k}\" is not a date field of {}.", entity.label),
                    );
                    None
                }
            },
        };
        if let Some(g) = &self.group_by {
            match entity.field(&g.field) {
                None => err(
                    "groupBy.field".into(),
                    format!("{} have no field \"{}\".", entity.label, g.field),
                ),
                Some(f) if f.kind.numeric() => err(
                    "groupBy.field".into(),
                    format!(
                        "Group by a field with few values; \"{}\" is a number — sum or average it instead.",
                        f.label
                    ),
                ),
                Some(f) if g.bucket.is_some() && f.kind != Kind::Date => err(
                    "groupBy.bucket".into(),
                    format!("\"{}\" is not a date; only dates are bucketed.", f.label),
                ),
                _ => {}
            }
            if self.aggregates.len() > MAX_AGGREGATES {
                err(
                    "aggregates".into(),
                    format!("At most {MAX_AGGREGATES} figures per report."),
                );
            }
            for (i, a) in self.aggregates.iter().enumerate() {
                if !FUNCS.iter().any(|x| x.0 == a.func) {
                    err(
                        format!("aggregates[{i}].fn"),
                        "Use count, sum, avg, min or max.".into(),
                    );
                    continue;
                }
                match (
                    a.func.as_str(),
                    a.field.as_deref().filter(|s| !s.is_empty()),
                ) {
                    ("count", _) => {}
                    (_, None) => err(
                        format!("aggregates[{i}].field"),
                        format!(
                            "Say which number to {}.",
                            func_label(&a.func).to_lowercase()
                        ),
                    ),
                    (_, Some(k)) => match entity.field(k) {
                        Some(f) if f.kind.numeric() => {}
                        Some(f) => err(
                            format!("aggregates[{i}].field"),
                            format!(
                                "\"{}\" is not a number; only numbers and amounts add up.",
                                f.label
                            ),
                        ),
                        None => err(
                            format!("aggregates[{i}].field"),
                            format!("{} have no field \"{k}\".", entity.label),
                        ),
                    },
                }
            }
        } else {
            if self.columns.is_empty() {
                err(
                    "columns".into(),
                    "Pick the columns to list, or group the records.".into(),
                );
            }
            if self.columns.len() > MAX_COLUMNS {
                err("columns".into(), format!("At most {MAX_COLUMNS} columns."));
            }
            for (i, k) in self.columns.iter().enumerate() {
                if entity.field(k).is_none() {
                    err(
                        format!("columns[{i}]"),
                        format!("{} have no field \"{k}\".", entity.label),
                    );
                }
            }
        }
        if let Some(n) = self.limit {
            if !(1..=MAX_ROWS).contains(&n) {
                err("limit".into(), format!("Ask for 1 to {MAX_ROWS} rows."));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(
                "The report definition is not valid.".into(),
                errors,
            ));
        }
        Ok(Checked {
            def: self,
            entity,
            date,
        })
    }
}

fn value_str(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn value_list(v: &serde_json::Value) -> Result<Vec<String>, String> {
    let list: Vec<String> = match v {
        serde_json::Value::Array(items) => items.iter().filter_map(value_str).collect(),
        other => value_str(other).into_iter().collect(),
    };
    let list: Vec<String> = list.into_iter().filter(|s| !s.is_empty()).collect();
    if list.is_empty() {
        return Err("Give a value to compare with.".into());
    }
    if list.len() > 100 {
        return Err("At most 100 values.".into());
    }
    if list.iter().any(|s| s.len() > 200) {
        return Err("A value is at most 200 characters.".into());
    }
    Ok(list)
}

fn days_value(v: &serde_json::Value) -> Result<i64, String> {
    value_str(v)
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| (0..=3650).contains(n))
        .ok_or_else(|| "Give a number of days from 0 to 3650.".into())
}

/// One filter as SQL over `t`/`s`; `me` is the caller (for `"me"` in a person field).
fn condition_sql(
    field: &Field,
    c: &Condition,
    me: &str,
    backend: Backend,
) -> Result<String, String> {
    let e = field.sql;
    let present = match field.kind {
        Kind::Number | Kind::Money | Kind::Date => format!("{e} IS NOT NULL"),
        _ => format!("({e} IS NOT NULL AND {e} <> '')"),
    };
    match c.op.as_str() {
        "empty" => return Ok(format!("NOT {present}")),
        "notEmpty" => return Ok(present),
        _ => {}
    }
    match field.kind {
        Kind::Text | Kind::Choice(_) | Kind::User | Kind::Stage | Kind::Pipeline | Kind::Client => {
            let values = value_list(&c.value)?;
            if let Kind::Choice(allowed) = field.kind {
                if let Some(bad) = values.iter().find(|v| !allowed.contains(&v.as_str())) {
                    return Err(format!(
                        "\"{bad}\" is not a {}; use one of: {}.",
                        field.label.to_lowercase(),
                        allowed.join(", ")
                    ));
                }
            }
            let values: Vec<String> = values
                .into_iter()
                .map(|v| {
                    if field.kind == Kind::User && v == "me" {
                        me.to_string()
                    } else {
                        v
                    }
                })
                .collect();
            match c.op.as_str() {
                "contains" => {
                    let needle = values[0]
                        .to_lowercase()
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_");
                    Ok(format!(
                        "lower({e}) LIKE {} ESCAPE '\\'",
                        lit(&format!("%{needle}%"))
                    ))
                }
                op => {
                    let list = values.iter().map(|v| lit(v)).collect::<Vec<_>>().join(", ");
                    if op == "isNot" {
                        Ok(format!("({e} IS NULL OR {e} NOT IN ({list}))"))
                    } else {
                        Ok(format!("{e} IN ({list})"))
                    }
                }
            }
        }
        Kind::Date => {
            let at = |d: i64| {
                let t = now() - chrono::Duration::days(d);
                format!("'{}'", t.format("%Y-%m-%d %H:%M:%S"))
            };
            let day = || {
                value_str(&c.value)
                    .and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
                    .ok_or_else(|| "Use a date like 2026-12-31.".to_string())
            };
            // Date columns compare with a day, timestamp columns with that day's first
            // instant or the next day's.
            let _ = backend;
            Ok(match c.op.as_str() {
                "after" => format!("{e} >= {}", day_lit(day()?)),
                "before" => format!("{e} < {}", day_lit(day()? + chrono::Duration::days(1))),
                "withinDays" => format!("{e} >= {}", at(days_value(&c.value)?)),
                _ => format!("{e} < {}", at(days_value(&c.value)?)),
            })
        }
        Kind::Number | Kind::Money => {
            let s = value_str(&c.value).ok_or("Give a number.")?;
            let d = Decimal::from_str(&s).map_err(|_| format!("\"{s}\" is not a number."))?;
            if d.abs() > Decimal::from(1_000_000_000_000i64) {
                return Err("That number is too large.".into());
            }
            let n = if field.kind == Kind::Money {
                (d * Decimal::from(100)).round().normalize().to_string()
            } else {
                d.normalize().to_string()
            };
            let op = match c.op.as_str() {
                "gte" => ">=",
                "lte" => "<=",
                "gt" => ">",
                "lt" => "<",
                _ => "=",
            };
            Ok(format!("{e} {op} {n}"))
        }
    }
}

/// Who asks, and what they may count.
pub struct Asker<'a> {
    pub org: &'a str,
    pub user: &'a str,
    /// Only the caller's own records of the entity.
    pub own_only: bool,
}

#[derive(QueryableByName)]
struct Grouped {
    #[diesel(sql_type = Nullable<Text>)]
    k: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    cur: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    v0: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    v1: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    v2: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    v3: Option<String>,
}

macro_rules! listed {
    ($($c:ident),*) => {
        #[derive(QueryableByName)]
        struct Listed { $( #[diesel(sql_type = Nullable<Text>)] $c: Option<String>, )* }
        impl Listed { fn cells(self) -> Vec<Option<String>> { vec![$(self.$c),*] } }
        const LISTED: &[&str] = &[$(stringify!($c)),*];
    };
}
listed!(c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12);

/// A number read back from the database as text (`1234`, `1234.5000`, `1.2e+15`).
fn number(s: &str) -> Option<Decimal> {
    Decimal::from_str(s)
        .ok()
        .or_else(|| Decimal::from_scientific(s).ok())
        .or_else(|| s.parse::<f64>().ok().and_then(Decimal::from_f64_retain))
}

impl Checked {
    pub fn entity(&self) -> &'static Entity {
        self.entity
    }

    /// The FROM clause, with the entity's join when a part of the report names a field
    /// over it.
    fn source_sql(&self) -> String {
        let (e, d) = (self.entity, &self.def);
        let named = d
            .filters
            .iter()
            .map(|c| c.field.as_str())
            .chain(d.group_by.iter().map(|g| g.field.as_str()))
            .chain(d.aggregates.iter().filter_map(|a| a.field.as_deref()))
            .chain(d.columns.iter().map(String::as_str))
            .chain(self.date.map(|f| f.key));
        let joined = !e.join.is_empty()
            && named
                .filter_map(|k| e.field(k))
                .any(|f| f.sql.starts_with("s."));
        if joined {
            format!("{} {}", e.from, e.join)
        } else {
            e.from.to_string()
        }
    }

    fn where_sql(&self, a: &Asker, from: NaiveDate, to: NaiveDate, backend: Backend) -> String {
        let e = self.entity;
        let mut w = vec![format!("t.organization_id = {}", lit(a.org))];
        if e.deleted {
            w.push("t.deleted_at IS NULL".into());
        }
        if !e.base.is_empty() {
            w.push(e.base.into());
        }
        if a.own_only {
            w.push(format!("{} = {}", e.owner, lit(a.user)));
        }
        if let Some(d) = self.date {
            // why: day literals, not midnight timestamps: on SQLite a DATE column's
            // '2026-01-01' sorts before '2026-01-01 00:00:00' and would lose the first day;
            // a timestamp's text sorts after its day, and PostgreSQL reads a day as midnight.
            w.push(format!("{} >= {}", d.sql, day_lit(from)));
            w.push(format!(
                "{} < {}",
                d.sql,
                day_lit(to + chrono::Duration::days(1))
            ));
        }
        if let Some(s) = &self.def.segment {
            w.push(format!(
                "t.id IN (SELECT m.client_id FROM segment_members m WHERE m.segment_id = {})",
                lit(s)
            ));
        }
        let conds: Vec<String> = self
            .def
            .filters
            .iter()
            .filter_map(|c| condition_sql(e.field(&c.field)?, c, a.user, backend).ok())
            .collect();
        if !conds.is_empty() {
            let joiner = if self.def.match_ == "any" {
                " OR "
            } else {
                " AND "
            };
            w.push(format!("({})", conds.join(joiner)));
        }
        w.join(" AND ")
    }

    /// The same report over the daily activity counts, when they can answer it: a count
    /// of activities by kind, status, person or date, for a reader who sees them all (a
    /// rep's reach follows the clients' owners, which the counts do not hold).
    fn over_daily_counts(&self, a: &Asker) -> Option<Checked> {
        let daily = &ACTIVITY_DAILY;
        let fits = self.entity.key == "interactions"
            && !a.own_only
            && self.def.segment.is_none()
            && self.date.is_none_or(|d| d.key == "occurredAt")
            && self
                .def
                .group_by
                .as_ref()
                .is_some_and(|g| daily.field(&g.field).is_some())
            && self
                .def
                .filters
                .iter()
                .all(|f| f.field != "occurredAt" && daily.field(&f.field).is_some())
            && self.def.aggregates.iter().all(|g| g.func == "count");
        fits.then(|| Checked {
            def: self.def.clone(),
            entity: daily,
            date: self.date.and_then(|d| daily.field(d.key)),
        })
    }

    /// Runs the report over the period (on its date field) for the asker.
    pub fn run(
        &self,
        c: &mut DbConn,
        a: &Asker,
        title: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> AppResult<Report> {
        if let Some(daily) = self.over_daily_counts(a) {
            return daily.run_as_is(c, a, title, from, to);
        }
        self.run_as_is(c, a, title, from, to)
    }

    fn run_as_is(
        &self,
        c: &mut DbConn,
        a: &Asker,
        title: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> AppResult<Report> {
        let backend = backend_of(c);
        let names = Names::load(c, a.org)?;
        let w = self.where_sql(a, from, to, backend);
        let limit = self.def.limit.unwrap_or(100).clamp(1, MAX_ROWS);
        let e = self.entity;
        let period = match self.date {
            Some(d) => format!("{} from {from} to {to}", d.label.to_lowercase()),
            None => "all time".into(),
        };
        let (table, chart) = match &self.def.group_by {
            Some(g) => self.grouped(c, g, &w, limit, backend, &names)?,
            None => self.listed(c, &w, limit, &names)?,
        };
        Ok(Report {
            kind: "custom".into(),
            title: title.into(),
            from,
            to,
            table,
            chart,
            note: format!("{} ({period}).", e.label),
        })
    }

    fn grouped(
        &self,
        c: &mut DbConn,
        g: &GroupBy,
        w: &str,
        limit: i64,
        backend: Backend,
        names: &Names,
    ) -> AppResult<(Table, Chart)> {
        let e = self.entity;
        let field = e.field(&g.field).ok_or(AppError::NotFound)?;
        let bucket = (field.kind == Kind::Date).then(|| g.bucket.unwrap_or(Bucket::Month));
        let key = match bucket {
            Some(b) => b.sql(backend, field.sql),
            None => format!("CAST({} AS TEXT)", field.sql),
        };
        let aggregates: Vec<Aggregate> = if self.def.aggregates.is_empty() {
            vec![Aggregate {
                func: "count".into(),
                field: None,
            }]
        } else {
            self.def.aggregates.clone()
        };
        let money = aggregates.iter().any(|a| {
            a.field
                .as_deref()
                .and_then(|k| e.field(k))
                .is_some_and(|f| f.kind == Kind::Money)
                && a.func != "count"
        });
        let mut values: Vec<String> = aggregates
            .iter()
            .map(|a| {
                let expr = a
                    .field
                    .as_deref()
                    .and_then(|k| e.field(k))
                    .map_or("1", |f| f.sql);
                match a.func.as_str() {
                    "count" => format!("CAST({} AS TEXT)", e.count),
                    "avg" => format!("CAST(AVG(CAST({expr} AS DOUBLE PRECISION)) AS TEXT)"),
                    func => format!("CAST({}({expr}) AS TEXT)", func.to_uppercase()),
                }
            })
            .collect();
        values.resize(4, "NULL".into());
        let cur = if money {
            e.currency.to_string()
        } else {
            "NULL".into()
        };
        let group = if money {
            format!("{key}, {cur}")
        } else {
            key.clone()
        };
        // Date buckets are read newest first so the limit keeps the recent ones, then put
        // back in time order.
        let order = if bucket.is_some() {
            "k DESC".to_string()
        } else {
            format!(
                "{} DESC, k ASC",
                aggregate_order(&aggregates[0], e, backend)
            )
        };
        let q = format!(
            "SELECT {key} AS k, CAST({cur} AS TEXT) AS cur, {v0} AS v0, {v1} AS v1, {v2} AS v2, {v3} AS v3 \
             FROM {from} WHERE {w} GROUP BY {group} ORDER BY {order} LIMIT {limit}",
            from = self.source_sql(),
            v0 = values[0],
            v1 = values[1],
            v2 = values[2],
            v3 = values[3],
        );
        let mut rows: Vec<Grouped> = diesel::sql_query(q).load(c)?;
        if bucket.is_some() {
            rows.reverse();
        }
        let clients = client_names(c, field, rows.iter().filter_map(|r| r.k.clone()))?;
        let mut columns = vec![Column::new(
            "group",
            &match bucket {
                Some(b) => format!("{} ({})", field.label, b.label()),
                None => field.label.to_string(),
            },
            ColKind::Text,
        )];
        if money {
            columns.push(Column::new("currency", "Currency", ColKind::Text));
        }
        let mut kinds = Vec::new();
        for (i, a) in aggregates.iter().enumerate() {
            let f = a.field.as_deref().and_then(|k| e.field(k));
            let kind = match (a.func.as_str(), f.map(|f| f.kind)) {
                ("count", _) => ColKind::Count,
                (_, Some(Kind::Money)) => ColKind::Money,
                _ => ColKind::Number,
            };
            kinds.push((kind, a.func.clone()));
            let label = match (a.func.as_str(), f) {
                ("count", _) => format!("Number of {}", e.label.to_lowercase()),
                (func, Some(f)) => format!("{} of {}", func_label(func), f.label.to_lowercase()),
                (func, None) => func_label(func).to_string(),
            };
            columns.push(Column::new(&format!("value{i}"), &label, kind));
        }
        let table_rows = rows
            .into_iter()
            .map(|r| {
                let label = label_of(field, r.k.as_deref(), names, &clients);
                let mut row = vec![Cell::Text(label)];
                if money {
                    row.push(Cell::Text(r.cur.clone().unwrap_or_default()));
                }
                for (i, v) in [r.v0, r.v1, r.v2, r.v3]
                    .into_iter()
                    .take(kinds.len())
                    .enumerate()
                {
                    let (kind, func) = &kinds[i];
                    row.push(match v.as_deref().and_then(number) {
                        None => Cell::Null,
                        Some(n) => match kind {
                            ColKind::Count => Cell::Int(n.trunc().try_into().unwrap_or(0)),
                            ColKind::Money => Cell::Dec((n / Decimal::from(100)).round_dp(2)),
                            _ if func == "avg" => Cell::Dec(n.round_dp(2)),
                            _ => Cell::Dec(n.round_dp(2).normalize()),
                        },
                    });
                }
                row
            })
            .collect();
        // why: figures of another kind (a count beside a sum of money) would be flattened
        // on the first one's axis; the chart draws those of the first figure's kind.
        let chart = Chart {
            kind: self.def.chart,
            label: "group".into(),
            values: kinds
                .iter()
                .enumerate()
                .filter(|(_, k)| k.0 == kinds[0].0)
                .map(|(i, _)| format!("value{i}"))
                .collect(),
        };
        Ok((
            Table {
                columns,
                rows: table_rows,
            },
            chart,
        ))
    }

    fn listed(
        &self,
        c: &mut DbConn,
        w: &str,
        limit: i64,
        names: &Names,
    ) -> AppResult<(Table, Chart)> {
        let e = self.entity;
        let fields: Vec<&Field> = self
            .def
            .columns
            .iter()
            .filter_map(|k| e.field(k))
            .take(MAX_COLUMNS)
            .collect();
        let money = fields.iter().any(|f| f.kind == Kind::Money)
            && !fields.iter().any(|f| f.key == "currency");
        let mut exprs: Vec<String> = fields
            .iter()
            .map(|f| format!("CAST({} AS TEXT)", f.sql))
            .collect();
        if money {
            exprs.push(format!("CAST({} AS TEXT)", e.currency));
        }
        let select = LISTED
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{} AS {name}", exprs.get(i).map_or("NULL", |s| s.as_str())))
            .collect::<Vec<_>>()
            .join(", ");
        let order = self
            .date
            .or_else(|| e.field(e.default_date))
            .map_or("t.id", |f| f.sql);
        let q = format!(
            "SELECT {select} FROM {from} WHERE {w} ORDER BY {order} DESC, t.id DESC LIMIT {limit}",
            from = self.source_sql()
        );
        let rows: Vec<Vec<Option<String>>> = diesel::sql_query(q)
            .load::<Listed>(c)?
            .into_iter()
            .map(Listed::cells)
            .collect();
        let mut client_ids: Vec<String> = Vec::new();
        for (i, f) in fields.iter().enumerate() {
            if f.kind == Kind::Client {
                client_ids.extend(rows.iter().filter_map(|r| r[i].clone()));
            }
        }
        let client_field = fields.iter().find(|f| f.kind == Kind::Client);
        let clients = match client_field {
            Some(f) => client_names(c, f, client_ids.into_iter())?,
            None => HashMap::new(),
        };
        let mut columns: Vec<Column> = fields
            .iter()
            .map(|f| {
                Column::new(
                    f.key,
                    f.label,
                    match f.kind {
                        Kind::Money => ColKind::Money,
                        Kind::Number => ColKind::Number,
                        _ => ColKind::Text,
                    },
                )
            })
            .collect();
        if money {
            columns.push(Column::new("currency", "Currency", ColKind::Text));
        }
        let table_rows = rows
            .into_iter()
            .map(|r| {
                let mut row: Vec<Cell> = fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| match (f.kind, r[i].as_deref()) {
                        (_, None) => Cell::Null,
                        (Kind::Money, Some(v)) => number(v).map_or(Cell::Null, |n| {
                            Cell::Dec((n / Decimal::from(100)).round_dp(2))
                        }),
                        (Kind::Number, Some(v)) => {
                            number(v).map_or(Cell::Null, |n| Cell::Dec(n.normalize()))
                        }
                        (Kind::Date, Some(v)) => Cell::Text(v.chars().take(16).collect()),
                        (_, Some(v)) => Cell::Text(label_of(f, Some(v), names, &clients)),
                    })
                    .collect();
                if money {
                    row.push(
                        r.get(fields.len())
                            .cloned()
                            .flatten()
                            .map_or(Cell::Null, Cell::Text),
                    );
                }
                row
            })
            .collect();
        let first = columns.first().map(|c| c.key.clone()).unwrap_or_default();
        let values: Vec<String> = columns
            .iter()
            .filter(|c| matches!(c.kind, ColKind::Money | ColKind::Number))
            .map(|c| c.key.clone())
            .take(1)
            .collect();
        let kind = if values.is_empty() {
            ChartKind::Table
        } else {
            self.def.chart
        };
        Ok((
            Table {
                columns,
                rows: table_rows,
            },
            Chart {
                kind,
                label: first,
                values,
            },
        ))
    }
}

/// The ORDER BY expression of a grouped report's first figure.
fn aggregate_order(a: &Aggregate, e: &Entity, _backend: Backend) -> String {
    let expr = a
        .field
        .as_deref()
        .and_then(|k| e.field(k))
        .map_or("1", |f| f.sql);
    match a.func.as_str() {
        "count" => e.count.into(),
        func => format!("{}({expr})", func.to_uppercase()),
    }
}

/// Display names of the clients a report shows, by id (one query for the page).
fn client_names(
    c: &mut DbConn,
    field: &Field,
    ids: impl Iterator<Item = String>,
) -> AppResult<HashMap<String, String>> {
    use crate::db::schema::clients;
    if field.kind != Kind::Client {
        return Ok(HashMap::new());
    }
    let ids: BTreeSet<String> = ids.collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(clients::table
        .filter(clients::id.eq_any(ids.into_iter().collect::<Vec<_>>()))
        .select((clients::id, clients::display_name))
        .load::<(String, String)>(c)?
        .into_iter()
        .collect())
}

fn label_of(
    field: &Field,
    v: Option<&str>,
    names: &Names,
    clients: &HashMap<String, String>,
) -> String {
    match (field.kind, v) {
        (Kind::User, v) => names.user(v),
        (_, None) | (_, Some("")) => "(empty)".into(),
        (Kind::Stage, Some(v)) => names.stage(v),
        (Kind::Pipeline, Some(v)) => names.pipeline(v),
        (Kind::Client, Some(v)) => clients
            .get(v)
            .cloned()
            .unwrap_or_else(|| "Deleted client".into()),
        (Kind::Choice(_), Some(v)) => humanize(v),
        (_, Some(v)) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(json: serde_json::Value) -> AppResult<Checked> {
        serde_json::from_value::<Definition>(json)
            .map_err(|e| AppError::BadRequest(e.to_string()))?
            .check()
    }

    fn paths(r: AppResult<Checked>) -> Vec<String> {
        match r {
            Err(AppError::Validation(_, errors)) => {
                errors.into_iter().map(|e| e.field.clone()).collect()
            }
            Err(e) => vec![format!("other: {e}")],
            Ok(_) => vec![],
        }
    }

    #[test]
    fn each_wrong_part_is_named() {
        let r = def(serde_json::json!({
            "entity": "deals",
            "filters": [
                {"field": "colour", "op": "is", "value": "red"},
                {"field": "value", "op": "contains", "value": "1"},
                {"field": "status", "op": "is", "value": "pending"},
                {"field": "createdAt", "op": "withinDays", "value": "lots"}
            ],
            "groupBy": {"field": "value"},
            "aggregates": [{"fn": "sum", "field": "name"}, {"fn": "median", "field": "value"}]
        }));
        assert_eq!(
            paths(r),
            vec![
                "filters[0].field",
                "filters[1].op",
                "filters[2].value",
                "filters[3].value",
                "groupBy.field",
                "aggregates[0].field",
                "aggregates[1].fn"
            ]
        );
    }

    #[test]
    fn a_quote_in_a_value_stays_inside_its_literal() {
        let e = entity("clients").unwrap();
        let c = Condition {
            field: "company".into(),
            op: "is".into(),
            value: serde_json::json!("x') OR 1=1 --"),
        };
        let sql = condition_sql(e.field("company").unwrap(), &c, "", Backend::Sqlite).unwrap();
        assert_eq!(sql, "t.company_name IN ('x'') OR 1=1 --')");
        let n = Condition {
            field: "value".into(),
            op: "gte".into(),
            value: serde_json::json!("1; DROP TABLE x"),
        };
        let deals = entity("deals").unwrap();
        assert!(condition_sql(deals.field("value").unwrap(), &n, "", Backend::Sqlite).is_err());
    }

    #[test]
    fn amounts_compare_in_cents() {
        let deals = entity("deals").unwrap();
        let n = Condition {
            field: "value".into(),
            op: "gte".into(),
            value: serde_json::json!("10000.5"),
        };
        assert_eq!(
            condition_sql(deals.field("value").unwrap(), &n, "", Backend::Sqlite).unwrap(),
            "t.value_cents >= 1000050"
        );
    }
}
