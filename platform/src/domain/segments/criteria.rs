//! A segment's criteria: a JSON tree of AND/OR groups of conditions, validated with an
//! error per node (`conditions[1].op`), resolved against the organization (tags, custom
//! fields, stages, other segments) and compiled into one SQL condition on `clients`, so
//! counts, lists and exports are answered by the database, never by loading clients.
//!
//! ```json
//! {"match": "all", "conditions": [
//!   {"field": "country", "op": "eq", "value": "DE"},
//!   {"field": "interactions.last", "op": "olderThanDays", "value": 60},
//!   {"match": "any", "conditions": [
//!     {"field": "tags", "op": "has", "value": "VIP"},
//!     {"field": "deals.wonValue", "op": "gt", "value": "10000", "currency": "EUR"}]}]}
//! ```

use chrono::{Duration, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Timestamp};
use serde_json::{json, Map, Value};

use crate::db::schema::clients;
use crate::db::Backend;
use crate::domain::clients::query::Condition;
use crate::domain::custom_fields::value::{encode_operand, Op, Operand};
use crate::domain::custom_fields::FieldRow;
use crate::error::FieldError;

/// Deepest nesting of groups (the root is depth 1).
pub const MAX_DEPTH: usize = 4;
/// Most conditions in one tree, groups included.
pub const MAX_NODES: usize = 40;
/// Longest window in days (ten years).
pub const MAX_DAYS: i64 = 3650;
/// Longest value list (`in`).
pub const MAX_VALUES: usize = 100;
/// How deep segments may refer to segments.
pub const MAX_SEGMENT_CHAIN: usize = 3;

/// What kind of value a field holds, which decides its operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Choice,
    Owner,
    Tag,
    Time,
    Custom,
    Count,
    Last,
    Money,
    Stage,
    Engagement,
    Segment,
    Score,
}

impl Kind {
    pub fn ops(self) -> &'static [&'static str] {
        match self {
            Kind::Text => &[
                "eq",
                "neq",
                "contains",
                "startsWith",
                "in",
                "empty",
                "notEmpty",
            ],
            Kind::Choice => &["eq", "neq", "in"],
            Kind::Owner => &["eq", "neq", "in", "empty", "notEmpty"],
            Kind::Tag => &["has", "hasNot"],
            Kind::Time => &["before", "after", "withinDays", "olderThanDays"],
            Kind::Custom => &[
                "eq", "gt", "gte", "lt", "lte", "contains", "in", "empty", "notEmpty",
            ],
            Kind::Count | Kind::Money | Kind::Score => &["eq", "gt", "gte", "lt", "lte"],
            Kind::Last => &["withinDays", "olderThanDays", "never"],
            Kind::Stage => &["in"],
            Kind::Engagement => &["withinDays", "never"],
            Kind::Segment => &["in", "notIn"],
        }
    }
}

/// How an operator reads in the console.
pub fn op_label(op: &str) -> &'static str {
    match op {
        "eq" => "is",
        "neq" => "is not",
        "contains" => "contains",
        "startsWith" => "starts with",
        "in" => "is one of",
        "notIn" => "is not in",
        "empty" => "is empty",
        "notEmpty" => "is not empty",
        "has" => "has",
        "hasNot" => "does not have",
        "before" => "before",
        "after" => "after",
        "withinDays" => "within the last … days",
        "olderThanDays" => "more than … days ago",
        "never" => "never",
        "gt" => "more than",
        "gte" => "at least",
        "lt" => "less than",
        "lte" => "at most",
        _ => "?",
    }
}

/// Operators that take no value.
pub fn takes_no_value(op: &str) -> bool {
    matches!(op, "empty" | "notEmpty" | "never")
}

/// A field a condition can name: its API key, its label, the group it is listed under in
/// the builder, and its kind.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    pub key: String,
    pub label: String,
    pub group: &'static str,
    pub kind: Kind,
}

/// The built-in fields: (key, label, group, kind, SQL of the lower-cased column).
const BUILT_IN: &[(&str, &str, &str, Kind, &str)] = &[
    ("name", "Name", "Client", Kind::Text, "clients.sort_name"),
    (
        "email",
        "E-mail",
        "Client",
        Kind::Text,
        "lower(clients.email)",
    ),
    (
        "phone",
        "Phone",
        "Client",
        Kind::Text,
        "lower(clients.phone)",
    ),
    ("status", "Status", "Client", Kind::Choice, "clients.status"),
    ("type", "Type", "Client", Kind::Choice, "clients.kind"),
    (
        "companyName",
        "Company",
        "Client",
        Kind::Text,
        "lower(clients.company_name)",
    ),
    (
        "industry",
        "Industry",
        "Client",
        Kind::Text,
        "lower(clients.industry)",
    ),
    (
        "source",
        "Source",
        "Client",
        Kind::Text,
        "lower(clients.source)",
    ),
    (
        "website",
        "Website",
        "Client",
        Kind::Text,
        "lower(clients.website)",
    ),
    (
        "assignedTo",
        "Owner",
        "Client",
        Kind::Owner,
        "clients.assigned_to",
    ),
    ("tags", "Tags", "Client", Kind::Tag, ""),
    (
        "createdAt",
        "Created",
        "Client",
        Kind::Time,
        "clients.created_at",
    ),
    (
        "updatedAt",
        "Last changed",
        "Client",
        Kind::Time,
        "clients.updated_at",
    ),
    (
        "street",
        "Street",
        "Address",
        Kind::Text,
        "lower(clients.street)",
    ),
    ("city", "City", "Address", Kind::Text, "lower(clients.city)"),
    (
        "region",
        "Region",
        "Address",
        Kind::Text,
        "lower(clients.region)",
    ),
    (
        "postalCode",
        "Postal code",
        "Address",
        Kind::Text,
        "lower(clients.postal_code)",
    ),
    (
        "country",
        "Country",
        "Address",
        Kind::Text,
        "lower(clients.country)",
    ),
    (
        "interactions.count",
        "Number of interactions",
        "Activity",
        Kind::Count,
        "",
    ),
    (
        "interactions.last",
        "Last interaction",
        "Activity",
        Kind::Last,
        "",
    ),
    (
        "email.opened",
        "Opened a bulk e-mail",
        "Activity",
        Kind::Engagement,
        "opened_at",
    ),
    (
        "email.clicked",
        "Clicked in a bulk e-mail",
        "Activity",
        Kind::Engagement,
        "clicked_at",
    ),
    ("deals.count", "Number of deals", "Deals", Kind::Count, ""),
    (
        "deals.openValue",
        "Open deal value",
        "Deals",
        Kind::Money,
        "open",
    ),
    (
        "deals.wonValue",
        "Won deal value",
        "Deals",
        Kind::Money,
        "won",
    ),
    (
        "deals.stage",
        "Has an open deal in stage",
        "Deals",
        Kind::Stage,
        "",
    ),
    (
        "scores.engagement",
        "Engagement score",
        "Scores",
        Kind::Score,
        "engagement",
    ),
    (
        "scores.churnRisk",
        "Churn risk",
        "Scores",
        Kind::Score,
        "churn_risk",
    ),
    (
        "scores.lifetimeValue",
        "Lifetime value",
        "Scores",
        Kind::Score,
        "lifetime_value_cents",
    ),
    (
        "segment",
        "Member of segment",
        "Segments",
        Kind::Segment,
        "",
    ),
];

fn built_in(
    key: &str,
) -> Option<&'static (&'static str, &'static str, &'static str, Kind, &'static str)> {
    BUILT_IN.iter().find(|f| f.0 == key)
}

/// The kind of a field key (`customFields.<key>` is a custom field whatever its type).
pub fn kind_of(field: &str) -> Option<Kind> {
    if field.starts_with("customFields.") {
        return Some(Kind::Custom);
    }
    built_in(field).map(|f| f.3)
}

/// Every field a condition may name in this organization, in the builder's order.
pub fn fields(defs: &[FieldRow]) -> Vec<FieldInfo> {
    let mut out: Vec<FieldInfo> = BUILT_IN
        .iter()
        .map(|(key, label, group, kind, _)| FieldInfo {
            key: key.to_string(),
            label: label.to_string(),
            group,
            kind: *kind,
        })
        .collect();
    for d in defs.iter().filter(|d| d.is_active()) {
        out.push(FieldInfo {
            key: format!("customFields.{}", d.field_key),
            label: d.label.clone(),
            group: "Custom fields",
            kind: Kind::Custom,
        });
    }
    out
}

/// What the tree refers to, resolved by the caller (the store reads it once per check).
pub struct Context<'a> {
    pub defs: &'a [FieldRow],
    pub default_currency: String,
    /// Tag id by name (lower-case) or id.
    pub tag: &'a dyn Fn(&str) -> Option<String>,
    /// Whether a member of the organization has this id.
    pub user: &'a dyn Fn(&str) -> bool,
    /// Whether a stage of the organization has this id.
    pub stage: &'a dyn Fn(&str) -> bool,
    /// Another segment of the organization by id: its compiled criteria, or why not.
    pub segment: &'a dyn Fn(&str, usize) -> Result<Compiled, String>,
    /// How deep in a chain of segments this tree is (0 for the one being checked).
    pub chain: usize,
    pub now: NaiveDateTime,
}

/// A tree resolved against the organization, ready to become SQL.
#[derive(Debug, Clone)]
pub enum Compiled {
    All(Vec<Compiled>),
    Any(Vec<Compiled>),
    Not(Box<Compiled>),
    /// Does not hold, where "unknown" (SQL NULL, as `country = 'de'` is for a client with
    /// no country) counts as not holding: a segment's non-members.
    NotTrue(Box<Compiled>),
    /// `expr op value` on a lower-cased text column (`op`: `=`, `LIKE`, `>=`…).
    Text {
        expr: &'static str,
        op: &'static str,
        value: String,
    },
    TextIn {
        expr: &'static str,
        values: Vec<String>,
    },
    /// The column holds something (not NULL, not empty).
    Present(&'static str),
    Tag(String),
    TimeAfter(&'static str, NaiveDateTime),
    TimeBefore(&'static str, NaiveDateTime),
    Custom(Box<crate::domain::clients::query::CustomFilter>),
    CustomPresent(String),
    /// A count of a client's interactions or deals compared with a number.
    Count {
        subquery: Subquery,
        cmp: &'static str,
        n: i64,
    },
    /// A client has an interaction (of a kind) since a time.
    InteractedSince {
        kind: Option<String>,
        since: Option<NaiveDateTime>,
    },
    DealSum {
        status: &'static str,
        currency: String,
        cmp: &'static str,
        cents: i64,
    },
    InStage(Vec<String>),
    /// A stored score (`client_scores`) compared with a number; unscored clients fail it.
    Score {
        column: &'static str,
        cmp: &'static str,
        n: i64,
    },
    Engaged {
        column: &'static str,
        since: Option<NaiveDateTime>,
    },
    Const(bool),
}

#[derive(Debug, Clone)]
pub enum Subquery {
    Interactions {
        kind: Option<String>,
        since: Option<NaiveDateTime>,
    },
    Deals {
        status: Option<String>,
    },
}

/// Interactions that count as contact: not open tasks, not the timeline's system events,
/// not what is only planned or was cancelled. The triggers of migration
/// `client_last_contact` keep `clients.last_contact_at` by the same rule.
const CONTACT: &str =
    "i.deleted_at IS NULL AND i.status = 'completed' AND i.kind NOT IN ('task', 'event')";

/// How much a condition costs per candidate client: `None` for a test of the client's own
/// row, else the rank of the probe (its table's rows per client, smallest first). Only
/// probes that are never NULL (counts, sums with COALESCE, EXISTS) are ranked, so chaining
/// them in a CASE cannot change a NULL into false under a NOT.
fn probe_rank(c: &Compiled) -> Option<u8> {
    match c {
        Compiled::Tag(id) if !literal_in_set(id) => Some(1),
        Compiled::CustomPresent(_) => Some(1),
        Compiled::InStage(_)
        | Compiled::DealSum { .. }
        | Compiled::Count {
            subquery: Subquery::Deals { .. },
            ..
        } => Some(2),
        Compiled::Engaged { .. } => Some(3),
        Compiled::InteractedSince { kind: Some(_), .. }
        | Compiled::Count {
            subquery: Subquery::Interactions { .. },
            ..
        } => Some(4),
        _ => None,
    }
}

/// Whether a tag id can be found in `clients.tag_set` with `LIKE '%,<id>,%'`: no separator
/// and no wildcard in it.
fn literal_in_set(id: &str) -> bool {
    !id.is_empty() && !id.contains([',', '%', '_', '\\'])
}

/// The conditions of a group split into tests of the client's row (in the order written)
/// and probes of other tables, cheapest first.
fn ordered(items: &[Compiled]) -> (Vec<&Compiled>, Vec<&Compiled>) {
    let (mut probes, plain): (Vec<&Compiled>, Vec<&Compiled>) =
        items.iter().partition(|c| probe_rank(c).is_some());
    probes.sort_by_key(|c| probe_rank(c));
    (plain, probes)
}

impl Compiled {
    /// The SQL condition on `clients`.
    pub fn condition(&self, backend: Backend) -> Condition {
        match self {
            Compiled::All(items) => {
                // Conditions on the client's own columns first (the database narrows the
                // candidates with them), then the probes of other tables, cheapest first,
                // each only for the candidates the previous ones let through. why the
                // CASE: PostgreSQL orders a filter's subqueries by its own cost estimate,
                // which rates a count over a client's interactions below a sum over its
                // deals, and ran the interactions probe for 40,000 candidates where the
                // deals probe would have left a handful (540 → 250 ms at 1M clients).
                let (plain, probes) = ordered(items);
                let chained = probes.into_iter().rev().fold(None, |inner, c| {
                    Some(match inner {
                        None => c.condition(backend),
                        Some(rest) => {
                            use diesel::IntoSql;
                            Box::new(
                                diesel::dsl::case_when(c.condition(backend), rest)
                                    .otherwise(false.into_sql::<Bool>()),
                            ) as Condition
                        }
                    })
                });
                plain
                    .into_iter()
                    .map(|c| c.condition(backend))
                    .chain(chained)
                    .reduce(|a, b| Box::new(a.and(b)))
                    .unwrap_or_else(|| Box::new(sql::<Bool>("1 = 1")))
            }
            // The same order in an OR: a client a column arm lets in is never probed.
            Compiled::Any(items) => {
                let (plain, probes) = ordered(items);
                plain
                    .into_iter()
                    .chain(probes)
                    .map(|c| c.condition(backend))
                    .reduce(|a, b| Box::new(a.or(b)))
                    .unwrap_or_else(|| Box::new(sql::<Bool>("1 = 0")))
            }
            Compiled::Not(inner) => Box::new(diesel::dsl::not(inner.condition(backend))),
            Compiled::NotTrue(inner) => {
                use diesel::IntoSql;
                Box::new(diesel::dsl::not(
                    diesel::dsl::case_when(inner.condition(backend), true.into_sql::<Bool>())
                        .otherwise(false.into_sql::<Bool>()),
                ))
            }
            Compiled::Text { expr, op, value } => {
                let collate = match (backend, *op) {
                    (Backend::Postgres, ">=" | "<") => " COLLATE \"C\"",
                    _ => "",
                };
                let escape = if *op == "LIKE" { " ESCAPE '\\'" } else { "" };
                Box::new(
                    sql::<Bool>(&format!("({expr}{collate} {op} "))
                        .bind::<Text, _>(value.clone())
                        .sql(&format!("{escape})")),
                )
            }
            Compiled::TextIn { expr, values } => {
                Box::new(sql::<Text>(expr).eq_any(values.clone()))
            }
            Compiled::Present(expr) => Box::new(sql::<Bool>(&format!(
                "({expr} IS NOT NULL AND {expr} <> '')"
            ))),
            // The client's own kept set of tags (migration client_tag_set), not a probe of
            // client_tags per candidate. An id that could not sit in the set literally (not
            // one of ours: ids are UUIDs) is probed as before.
            Compiled::Tag(id) if literal_in_set(id) => Box::new(
                sql::<Bool>("(clients.tag_set LIKE ")
                    .bind::<Text, _>(format!("%,{id},%"))
                    .sql(")"),
            ),
            Compiled::Tag(id) => {
                use crate::db::schema::client_tags as ct;
                Box::new(diesel::dsl::exists(
                    ct::table
                        .filter(ct::client_id.eq(clients::id))
                        .filter(ct::tag_id.eq(id.clone()))
                        .select(ct::tag_id),
                ))
            }
            Compiled::TimeAfter(expr, t) => {
                Box::new(sql::<Timestamp>(expr).ge(*t))
            }
            Compiled::TimeBefore(expr, t) => {
                Box::new(sql::<Timestamp>(expr).lt(*t))
            }
            Compiled::Custom(f) => crate::domain::clients::query::custom_condition(f),
            Compiled::CustomPresent(field_id) => {
                use crate::db::schema::custom_field_values as v;
                Box::new(diesel::dsl::exists(
                    v::table
                        .filter(v::record_id.eq(clients::id))
                        .filter(v::field_id.eq(field_id.clone()))
                        .select(v::id),
                ))
            }
            Compiled::Count { subquery, cmp, n } => {
                let head = match subquery {
                    Subquery::Interactions { .. } => format!(
                        "((SELECT count(*) FROM interactions i WHERE i.client_id = clients.id AND {CONTACT}"
                    ),
                    Subquery::Deals { .. } => "((SELECT count(*) FROM opportunities o WHERE o.client_id = clients.id AND o.deleted_at IS NULL".to_string(),
                };
                // why: each optional part binds a different type, so the literal is built
                // as the product of the parts present (kinds and statuses are checked
                // against fixed lists, so they are inlined, never user text).
                let mut text = head;
                let mut since_bind = None;
                match subquery {
                    Subquery::Interactions { kind, since } => {
                        if let Some(k) = kind {
                            text.push_str(&format!(" AND i.kind = '{}'", safe(k)));
                        }
                        if let Some(s) = since {
                            text.push_str(" AND i.occurred_at >= ");
                            since_bind = Some(*s);
                        }
                    }
                    Subquery::Deals { status } => {
                        if let Some(s) = status {
                            text.push_str(&format!(" AND o.status = '{}'", safe(s)));
                        }
                    }
                }
                match since_bind {
                    Some(s) => Box::new(
                        sql::<Bool>(&text)
                            .bind::<Timestamp, _>(s)
                            .sql(&format!(") {cmp} "))
                            .bind::<BigInt, _>(*n)
                            .sql(")"),
                    ),
                    None => Box::new(
                        sql::<Bool>(&format!("{text}) {cmp} "))
                            .bind::<BigInt, _>(*n)
                            .sql(")"),
                    ),
                }
            }
            // Any kind of contact: the client's own kept column (migration
            // client_last_contact), not a probe of its interactions per candidate. `IS NOT
            // NULL AND` keeps the negation ("no contact for N days") true for the never
            // contacted, where a bare comparison with NULL would drop them.
            Compiled::InteractedSince { kind: None, since } => match since {
                Some(s) => Box::new(
                    sql::<Bool>(
                        "(clients.last_contact_at IS NOT NULL AND clients.last_contact_at >= ",
                    )
                    .bind::<Timestamp, _>(*s)
                    .sql(")"),
                ),
                None => Box::new(sql::<Bool>("(clients.last_contact_at IS NOT NULL)")),
            },
            Compiled::InteractedSince { kind, since } => {
                let mut text = format!(
                    "EXISTS (SELECT 1 FROM interactions i WHERE i.client_id = clients.id AND {CONTACT}"
                );
                if let Some(k) = kind {
                    text.push_str(&format!(" AND i.kind = '{}'", safe(k)));
                }
                match since {
                    Some(s) => Box::new(
                        sql::<Bool>(&format!("{text} AND i.occurred_at >= "))
                            .bind::<Timestamp, _>(*s)
                            .sql(")"),
                    ),
                    None => Box::new(sql::<Bool>(&format!("{text})"))),
                }
            }
            Compiled::DealSum {
                status,
                currency,
                cmp,
                cents,
            } => Box::new(
                sql::<Bool>(&format!(
                    "((SELECT COALESCE(SUM(o.value_cents), 0) FROM opportunities o WHERE o.client_id = clients.id AND o.deleted_at IS NULL AND o.status = '{status}' AND o.currency = "
                ))
                .bind::<Text, _>(currency.clone())
                .sql(&format!(") {cmp} "))
                .bind::<BigInt, _>(*cents)
                .sql(")"),
            ),
            Compiled::InStage(ids) => {
                use crate::db::schema::opportunities as o;
                Box::new(diesel::dsl::exists(
                    o::table
                        .filter(o::client_id.eq(clients::id))
                        .filter(o::deleted_at.is_null())
                        .filter(o::status.eq("open"))
                        .filter(o::stage_id.eq_any(ids.clone()))
                        .select(o::id),
                ))
            }
            Compiled::Engaged { column, since } => {
                let text = format!(
                    "EXISTS (SELECT 1 FROM send_recipients r WHERE r.client_id = clients.id AND r.{column} IS NOT NULL"
                );
                match since {
                    Some(s) => Box::new(
                        sql::<Bool>(&format!("{text} AND r.{column} >= "))
                            .bind::<Timestamp, _>(*s)
                            .sql(")"),
                    ),
                    None => Box::new(sql::<Bool>(&format!("{text})"))),
                }
            }
            Compiled::Score { column, cmp, n } => Box::new(
                sql::<Bool>(&format!(
                    "((SELECT s.{column} FROM client_scores s WHERE s.client_id = clients.id) {cmp} "
                ))
                .bind::<BigInt, _>(*n)
                .sql(")"),
            ),
            Compiled::Const(true) => Box::new(sql::<Bool>("1 = 1")),
            Compiled::Const(false) => Box::new(sql::<Bool>("1 = 0")),
        }
    }
}

/// A value checked against a fixed list before it is inlined; anything else is dropped.
fn safe(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Checks a tree and resolves it; every problem is reported with the path of its node
/// (`criteria.conditions[1].value`).
pub fn compile(tree: &Value, cx: &Context) -> Result<Compiled, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut nodes = 0;
    let out = node(tree, "criteria", 1, cx, &mut errors, &mut nodes);
    if nodes > MAX_NODES {
        errors.push(FieldError::new(
            "criteria",
            format!("Use at most {MAX_NODES} conditions and groups."),
        ));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn node(
    v: &Value,
    path: &str,
    depth: usize,
    cx: &Context,
    errors: &mut Vec<FieldError>,
    nodes: &mut usize,
) -> Compiled {
    *nodes += 1;
    let Some(obj) = v.as_object() else {
        errors.push(FieldError::new(
            path,
            "Give a group ({\"match\": \"all\", \"conditions\": […]}) or a condition ({\"field\", \"op\", \"value\"}).",
        ));
        return Compiled::Const(false);
    };
    if obj.contains_key("match") || obj.contains_key("conditions") {
        return group(obj, path, depth, cx, errors, nodes);
    }
    if depth == 1 {
        errors.push(FieldError::new(
            path,
            "The criteria are a group: {\"match\": \"all\" or \"any\", \"conditions\": […]}.",
        ));
        return Compiled::Const(false);
    }
    condition(obj, path, cx, errors)
}

fn group(
    obj: &Map<String, Value>,
    path: &str,
    depth: usize,
    cx: &Context,
    errors: &mut Vec<FieldError>,
    nodes: &mut usize,
) -> Compiled {
    for k in obj.keys() {
        if k != "match" && k != "conditions" {
            errors.push(FieldError::new(
                format!("{path}.{k}"),
                "A group has only \"match\" and \"conditions\".",
            ));
        }
    }
    if depth > MAX_DEPTH {
        errors.push(FieldError::new(
            path,
            format!("Nest groups at most {MAX_DEPTH} deep."),
        ));
        return Compiled::Const(false);
    }
    let any = match obj.get("match").and_then(Value::as_str) {
        Some("all") => false,
        Some("any") => true,
        _ => {
            errors.push(FieldError::new(
                format!("{path}.match"),
                "Use \"all\" (every condition) or \"any\" (at least one).",
            ));
            false
        }
    };
    let Some(items) = obj.get("conditions").and_then(Value::as_array) else {
        errors.push(FieldError::new(
            format!("{path}.conditions"),
            "List the group's conditions.",
        ));
        return Compiled::Const(false);
    };
    if items.is_empty() {
        errors.push(FieldError::new(
            format!("{path}.conditions"),
            "A group needs at least one condition.",
        ));
    }
    if items.len() > MAX_NODES {
        errors.push(FieldError::new(
            format!("{path}.conditions"),
            format!("Use at most {MAX_NODES} conditions and groups."),
        ));
        return Compiled::Const(false);
    }
    let parts: Vec<Compiled> = items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            node(
                v,
                &format!("{path}.conditions[{i}]"),
                depth + 1,
                cx,
                errors,
                nodes,
            )
        })
        .collect();
    if any {
        Compiled::Any(parts)
    } else {
        Compiled::All(parts)
    }
}

/// The value as text (a string or a number), or the items of a list.
fn texts(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Some(Value::Number(n)) => vec![n.to_string()],
        Some(Value::Bool(b)) => vec![b.to_string()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect(),
        _ => vec![],
    }
}

fn one_text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    }
}

fn days(v: Option<&Value>) -> Result<i64, String> {
    let n = match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (1..=MAX_DAYS).contains(&n) => Ok(n),
        _ => Err(format!("Give a number of days from 1 to {MAX_DAYS}.")),
    }
}

fn whole(v: Option<&Value>) -> Result<i64, String> {
    let n = match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (0..=1_000_000).contains(&n) => Ok(n),
        _ => Err("Give a whole number (0 or more).".into()),
    }
}

fn cmp_of(op: &str) -> &'static str {
    match op {
        "gt" => ">",
        "gte" => ">=",
        "lt" => "<",
        "lte" => "<=",
        _ => "=",
    }
}

fn condition(
    obj: &Map<String, Value>,
    path: &str,
    cx: &Context,
    errors: &mut Vec<FieldError>,
) -> Compiled {
    const KEYS: &[&str] = &["field", "op", "value", "days", "kind", "status", "currency"];
    for k in obj.keys() {
        if !KEYS.contains(&k.as_str()) {
            errors.push(FieldError::new(
                format!("{path}.{k}"),
                "Unknown key; a condition has field, op, value and, for some fields, days, kind, status or currency.",
            ));
        }
    }
    let field = obj.get("field").and_then(Value::as_str).unwrap_or_default();
    let op = obj.get("op").and_then(Value::as_str).unwrap_or_default();
    let value = obj.get("value");
    let mut fail = |key: &str, message: String| {
        errors.push(FieldError::new(
            if key.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{key}")
            },
            message,
        ));
        Compiled::Const(false)
    };
    let (kind, column, custom) = if let Some(key) = field.strip_prefix("customFields.") {
        match cx.defs.iter().find(|d| d.field_key == key && d.is_active()) {
            Some(d) => (Kind::Custom, "", Some(d)),
            None => return fail("field", format!("There is no custom field {key:?}.")),
        }
    } else {
        match built_in(field) {
            Some(f) => (f.3, f.4, None),
            None if field.is_empty() => return fail("field", "Name the field.".into()),
            None => {
                return fail(
                    "field",
                    format!(
                        "Unknown field {field:?}; use one of {} or customFields.<key>.",
                        BUILT_IN.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
                    ),
                )
            }
        }
    };
    if !kind.ops().contains(&op) {
        return fail(
            "op",
            format!(
                "{:?} does not apply to {field}; use {}.",
                op,
                kind.ops().join(", ")
            ),
        );
    }
    if !takes_no_value(op) && value.is_none_or(|v| texts(Some(v)).is_empty()) && kind != Kind::Last
    {
        return fail("value", "Give a value.".into());
    }
    let extra = |k: &str| obj.get(k).filter(|v| !v.is_null());
    for k in ["days", "kind", "status", "currency"] {
        let allowed = match k {
            "days" | "kind" => field == "interactions.count",
            "status" => field == "deals.count",
            _ => kind == Kind::Money,
        } || (k == "kind" && field == "interactions.last");
        if extra(k).is_some() && !allowed {
            return fail(k, format!("{k} does not apply to {field}."));
        }
    }
    let now = cx.now;
    let ago = |n: i64| now - Duration::days(n);
    match kind {
        Kind::Text => {
            let vals: Vec<String> = texts(value).iter().map(|s| s.to_lowercase()).collect();
            if vals.len() > MAX_VALUES {
                return fail("value", format!("List at most {MAX_VALUES} values."));
            }
            let first = vals.first().cloned().unwrap_or_default();
            let like = |pattern: String| Compiled::Text {
                expr: column,
                op: "LIKE",
                value: pattern,
            };
            match op {
                "eq" => Compiled::Text {
                    expr: column,
                    op: "=",
                    value: first,
                },
                "neq" => Compiled::Not(Box::new(Compiled::Text {
                    expr: column,
                    op: "=",
                    value: first,
                }))
                .or_missing(column),
                "contains" => like(format!(
                    "%{}%",
                    crate::domain::orgs::store::escape_like(&first)
                )),
                "startsWith" => Compiled::All(vec![
                    Compiled::Text {
                        expr: column,
                        op: ">=",
                        value: first.clone(),
                    },
                    Compiled::Text {
                        expr: column,
                        op: "<",
                        value: format!("{first}\u{10FFFF}"),
                    },
                ]),
                "in" => Compiled::TextIn {
                    expr: column,
                    values: vals,
                },
                "empty" => Compiled::Not(Box::new(Compiled::Present(column))),
                _ => Compiled::Present(column),
            }
        }
        Kind::Choice => {
            let allowed: &[&str] = if field == "status" {
                crate::domain::clients::model::STATUSES
            } else {
                crate::domain::clients::model::KINDS
            };
            let vals = texts(value);
            if let Some(bad) = vals.iter().find(|v| !allowed.contains(&v.as_str())) {
                return fail(
                    "value",
                    format!("Unknown {field} {bad:?}; use {}.", allowed.join(", ")),
                );
            }
            let one = Compiled::TextIn {
                expr: column,
                values: vals,
            };
            if op == "neq" {
                Compiled::Not(Box::new(one))
            } else {
                one
            }
        }
        Kind::Owner => {
            let vals = texts(value);
            if let Some(bad) = vals.iter().find(|v| !(cx.user)(v)) {
                return fail(
                    "value",
                    format!("{bad:?} is not a member of this organization."),
                );
            }
            match op {
                "empty" => Compiled::Not(Box::new(Compiled::Present(column))),
                "notEmpty" => Compiled::Present(column),
                "neq" => Compiled::Not(Box::new(Compiled::TextIn {
                    expr: column,
                    values: vals,
                }))
                .or_missing(column),
                _ => Compiled::TextIn {
                    expr: column,
                    values: vals,
                },
            }
        }
        Kind::Tag => {
            let name = one_text(value).unwrap_or_default();
            let Some(id) = (cx.tag)(&name) else {
                return fail("value", format!("There is no tag {name:?}."));
            };
            if op == "has" {
                Compiled::Tag(id)
            } else {
                Compiled::Not(Box::new(Compiled::Tag(id)))
            }
        }
        Kind::Time => match op {
            "before" | "after" => {
                let raw = one_text(value).unwrap_or_default();
                let Ok(d) = crate::domain::custom_fields::value::parse_date(&raw) else {
                    return fail("value", "Give a date (YYYY-MM-DD).".into());
                };
                let t = d.and_hms_opt(0, 0, 0).unwrap_or_default();
                if op == "before" {
                    Compiled::TimeBefore(column, t)
                } else {
                    Compiled::TimeAfter(column, t + Duration::days(1))
                }
            }
            _ => match days(value) {
                Ok(n) if op == "withinDays" => Compiled::TimeAfter(column, ago(n)),
                Ok(n) => Compiled::TimeBefore(column, ago(n)),
                Err(e) => fail("value", e),
            },
        },
        Kind::Custom => {
            let Some(def) = custom else {
                return fail("field", "Name the custom field.".into());
            };
            match op {
                "empty" => Compiled::Not(Box::new(Compiled::CustomPresent(def.id.clone()))),
                "notEmpty" => Compiled::CustomPresent(def.id.clone()),
                _ => {
                    let cop = Op::parse(op).unwrap_or(Op::Eq);
                    let raw = texts(value).join(",");
                    match encode_operand(def, cop, &raw) {
                        Ok(operand) => {
                            if let Operand::TextList(l) = &operand {
                                if l.len() > MAX_VALUES {
                                    return fail(
                                        "value",
                                        format!("List at most {MAX_VALUES} values."),
                                    );
                                }
                            }
                            Compiled::Custom(Box::new(
                                crate::domain::clients::query::CustomFilter {
                                    field: def.clone(),
                                    op: cop,
                                    operand,
                                },
                            ))
                        }
                        Err(e) => fail("value", e),
                    }
                }
            }
        }
        Kind::Count => {
            let n = match whole(value) {
                Ok(n) => n,
                Err(e) => return fail("value", e),
            };
            let subquery = if field == "interactions.count" {
                let since = match extra("days") {
                    None => None,
                    Some(d) => match days(Some(d)) {
                        Ok(d) => Some(ago(d)),
                        Err(e) => return fail("days", e),
                    },
                };
                let kind = match interaction_kind(extra("kind")) {
                    Ok(k) => k,
                    Err(e) => return fail("kind", e),
                };
                Subquery::Interactions { kind, since }
            } else {
                let status = match extra("status").and_then(Value::as_str) {
                    None => None,
                    Some(s @ ("open" | "won" | "lost")) => Some(s.to_string()),
                    Some(_) => return fail("status", "Use open, won or lost.".into()),
                };
                Subquery::Deals { status }
            };
            Compiled::Count {
                subquery,
                cmp: cmp_of(op),
                n,
            }
        }
        Kind::Last => {
            let kind = match interaction_kind(extra("kind")) {
                Ok(k) => k,
                Err(e) => return fail("kind", e),
            };
            match op {
                "never" => Compiled::Not(Box::new(Compiled::InteractedSince { kind, since: None })),
                _ => match days(value) {
                    Ok(n) => {
                        let recent = Compiled::InteractedSince {
                            kind,
                            since: Some(ago(n)),
                        };
                        if op == "withinDays" {
                            recent
                        } else {
                            // "No contact for 60 days" includes clients never contacted.
                            Compiled::Not(Box::new(recent))
                        }
                    }
                    Err(e) => fail("value", e),
                },
            }
        }
        Kind::Money => {
            let raw = one_text(value).unwrap_or_default();
            let cents = match crate::domain::money::parse_cents(&raw) {
                Ok(c) => c,
                Err(e) => return fail("value", e),
            };
            let currency = match extra("currency").and_then(Value::as_str) {
                None => cx.default_currency.clone(),
                Some(c) if crate::domain::money::valid_currency(&c.to_uppercase()) => {
                    c.to_uppercase()
                }
                Some(_) => return fail("currency", "Use an ISO currency code (EUR).".into()),
            };
            Compiled::DealSum {
                status: column,
                currency,
                cmp: cmp_of(op),
                cents,
            }
        }
        Kind::Stage => {
            let vals = texts(value);
            if let Some(bad) = vals.iter().find(|v| !(cx.stage)(v)) {
                return fail("value", format!("There is no stage {bad:?}."));
            }
            Compiled::InStage(vals)
        }
        Kind::Engagement => match op {
            "never" => Compiled::Not(Box::new(Compiled::Engaged {
                column,
                since: None,
            })),
            _ => match days(value) {
                Ok(n) => Compiled::Engaged {
                    column,
                    since: Some(ago(n)),
                },
                Err(e) => fail("value", e),
            },
        },
        Kind::Score => {
            let n = if field == "scores.lifetimeValue" {
                match crate::domain::money::parse_cents(&one_text(value).unwrap_or_default()) {
                    Ok(c) => c,
                    Err(e) => return fail("value", e),
                }
            } else {
                match whole(value) {
                    Ok(n) if n <= 100 => n,
                    _ => return fail("value", "Give a score from 0 to 100.".into()),
                }
            };
            Compiled::Score {
                column,
                cmp: cmp_of(op),
                n,
            }
        }
        Kind::Segment => {
            let id = one_text(value).unwrap_or_default();
            match (cx.segment)(&id, cx.chain + 1) {
                Ok(inner) if op == "in" => inner,
                Ok(inner) => Compiled::NotTrue(Box::new(inner)),
                Err(e) => fail("value", e),
            }
        }
    }
}

fn interaction_kind(v: Option<&Value>) -> Result<Option<String>, String> {
    const KINDS: &[&str] = &["call", "meeting", "email", "sms", "note"];
    match v.and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(k) if KINDS.contains(&k) => Ok(Some(k.to_string())),
        Some(_) => Err(format!("Use one of {}.", KINDS.join(", "))),
    }
}

impl Compiled {
    /// "is not X" also holds where the column is empty (SQL's NOT of NULL is NULL).
    fn or_missing(self, column: &'static str) -> Compiled {
        Compiled::Any(vec![
            self,
            Compiled::Not(Box::new(Compiled::Present(column))),
        ])
    }
}

/// The criteria in words, for lists and confirmations ("Country is DE and …").
pub fn describe(tree: &Value, labels: &dyn Fn(&str) -> String) -> String {
    fn go(v: &Value, labels: &dyn Fn(&str) -> String, top: bool) -> String {
        if let Some(items) = v.get("conditions").and_then(Value::as_array) {
            let joiner = if v["match"] == "any" { " or " } else { " and " };
            let parts: Vec<String> = items.iter().map(|i| go(i, labels, false)).collect();
            let s = parts.join(joiner);
            return if top || parts.len() < 2 {
                s
            } else {
                format!("({s})")
            };
        }
        let field = v["field"].as_str().unwrap_or_default();
        let op = v["op"].as_str().unwrap_or_default();
        let mut s = format!("{} {}", labels(field), op_label(op));
        if !takes_no_value(op) {
            let vals = texts(v.get("value"));
            if !vals.is_empty() {
                let shown = if field == "tags"
                    || field == "segment"
                    || field == "assignedTo"
                    || field == "deals.stage"
                {
                    vals.iter()
                        .map(|x| labels(&format!("{field}={x}")))
                        .collect::<Vec<_>>()
                } else {
                    vals
                };
                s = s.replace(" … ", &format!(" {} ", shown.join(", ")));
                if !op_label(op).contains('…') {
                    s.push(' ');
                    s.push_str(&shown.join(", "));
                }
            }
        }
        if let Some(d) = v.get("days").and_then(Value::as_i64) {
            s.push_str(&format!(" in the last {d} days"));
        }
        if let Some(k) = v.get("kind").and_then(Value::as_str) {
            s.push_str(&format!(" ({k})"));
        }
        if let Some(k) = v.get("status").and_then(Value::as_str) {
            s.push_str(&format!(" ({k})"));
        }
        if let Some(c) = v.get("currency").and_then(Value::as_str) {
            s.push_str(&format!(" {c}"));
        }
        s
    }
    go(tree, labels, true)
}

/// The segment ids a tree refers to (`segment` conditions), for cycle and delete checks.
pub fn referenced_segments(tree: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn go(v: &Value, out: &mut Vec<String>) {
        if let Some(items) = v.get("conditions").and_then(Value::as_array) {
            items.iter().for_each(|i| go(i, out));
        } else if v["field"] == "segment" {
            out.extend(texts(v.get("value")));
        }
    }
    go(tree, &mut out);
    out
}

/// An empty tree: every live client.
pub fn everyone() -> Value {
    json!({"match": "all", "conditions": []})
}
