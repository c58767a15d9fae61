//! The client list query: filters (columns, tags, custom fields, text), one sort key
//! plus the id as tie-breaker, and keyset paging with row-value comparisons, which
//! both backends answer from an index for the built-in sorts.

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamp};
use diesel::QueryResult;

use super::model::ClientRow;
use crate::db::schema::clients;
use crate::db::DbConn;
use crate::domain::custom_fields::value::{Op, Operand};
use crate::domain::custom_fields::{FieldRow, FieldType};
use crate::domain::orgs::store::escape_like;

type Backend = <DbConn as diesel::Connection>::Backend;

/// A built-in sortable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    Email,
    Phone,
    Status,
    Kind,
    CompanyName,
    Industry,
    Source,
    City,
    Country,
    CreatedAt,
    UpdatedAt,
}

impl Column {
    pub fn parse(api_name: &str) -> Option<Column> {
        Some(match api_name {
            "name" | "displayName" => Column::Name,
            "email" => Column::Email,
            "phone" => Column::Phone,
            "status" => Column::Status,
            "type" => Column::Kind,
            "companyName" => Column::CompanyName,
            "industry" => Column::Industry,
            "source" => Column::Source,
            "city" => Column::City,
            "country" => Column::Country,
            "createdAt" => Column::CreatedAt,
            "updatedAt" => Column::UpdatedAt,
            _ => return None,
        })
    }

    pub const API_NAMES: &'static str =
        "name, email, phone, status, type, companyName, industry, source, city, country, createdAt, updatedAt";

    fn sql(self) -> &'static str {
        match self {
            Column::Name => "clients.sort_name",
            Column::Email => "clients.email",
            Column::Phone => "clients.phone",
            Column::Status => "clients.status",
            Column::Kind => "clients.kind",
            Column::CompanyName => "lower(clients.company_name)",
            Column::Industry => "lower(clients.industry)",
            Column::Source => "lower(clients.source)",
            Column::City => "lower(clients.city)",
            Column::Country => "clients.country",
            Column::CreatedAt => "clients.created_at",
            Column::UpdatedAt => "clients.updated_at",
        }
    }

    fn nullable(self) -> bool {
        !matches!(
            self,
            Column::Name | Column::Status | Column::Kind | Column::CreatedAt | Column::UpdatedAt
        )
    }
}

/// A client score the list can be ordered by (from `client_scores`, computed nightly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    Engagement,
    ChurnRisk,
    LifetimeValue,
}

impl Score {
    pub const ALL: [Score; 3] = [Score::Engagement, Score::ChurnRisk, Score::LifetimeValue];

    /// `engagement`, `churnRisk`, `lifetimeValue` (also with the segments' `scores.` prefix).
    pub fn parse(api_name: &str) -> Option<Score> {
        Some(match api_name.strip_prefix("scores.").unwrap_or(api_name) {
            "engagement" => Score::Engagement,
            "churnRisk" => Score::ChurnRisk,
            "lifetimeValue" => Score::LifetimeValue,
            _ => return None,
        })
    }

    pub fn api_name(self) -> &'static str {
        match self {
            Score::Engagement => "engagement",
            Score::ChurnRisk => "churnRisk",
            Score::LifetimeValue => "lifetimeValue",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Score::Engagement => "engagement",
            Score::ChurnRisk => "churn_risk",
            Score::LifetimeValue => "lifetime_value_cents",
        }
    }

    /// The score of the client `id`, as the sort reads it.
    fn sql(self) -> String {
        format!(
            "(SELECT CAST(s.{} AS BIGINT) FROM client_scores s WHERE s.client_id = clients.id)",
            self.column()
        )
    }
}

#[derive(Debug, Clone)]
pub enum SortKey {
    Column(Column),
    Custom(Box<FieldRow>),
    /// Clients not scored yet come last either way.
    Score(Score),
}

#[derive(Debug, Clone)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            key: SortKey::Column(Column::CreatedAt),
            descending: true,
        }
    }
}

/// The sort value of the last row of a page, and its id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum CursorValue {
    Null,
    Text(String),
    Num(i64),
    Time(NaiveDateTime),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub value: CursorValue,
    pub id: String,
}

impl Cursor {
    /// Opaque to callers: hex of JSON, safe in a URL without escaping.
    pub fn encode(&self) -> String {
        serde_json::to_vec(self)
            .unwrap_or_default()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        if s.len() % 2 != 0 || s.len() > 4000 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect();
        serde_json::from_slice(&bytes?).ok()
    }
}

#[derive(Debug, Clone)]
pub struct CustomFilter {
    pub field: FieldRow,
    pub op: Op,
    pub operand: Operand,
}

#[derive(Debug, Clone, Copy)]
pub enum TimeBound {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub trash: bool,
    /// Set when the reader may see only the clients assigned to them.
    pub only_assigned_to: Option<String>,
    pub statuses: Vec<String>,
    pub kinds: Vec<String>,
    /// `Some(None)` means unassigned.
    pub assigned_to: Option<Option<String>>,
    pub industry: Option<String>,
    pub source: Option<String>,
    pub employer_id: Option<String>,
    pub tag_ids: Vec<String>,
    pub created: Vec<(TimeBound, NaiveDateTime)>,
    pub updated: Vec<(TimeBound, NaiveDateTime)>,
    pub custom: Vec<CustomFilter>,
    /// Only these clients (a workflow asking whether one client matches its conditions).
    pub only_ids: Option<Vec<String>>,
    /// Segment criteria (`filter[segment]=<id>`), each of which must hold.
    pub criteria: Vec<crate::domain::segments::criteria::Compiled>,
    pub q: Option<String>,
    pub sort: Sort,
    pub after: Option<Cursor>,
    pub limit: i64,
    /// `count=true`: the answer carries how many clients match (up to [`COUNT_CAP`]).
    pub count: bool,
    /// How the text filter is read; [`list`] decides it once and hands it down.
    pub text_plan: TextPlan,
}

/// How a list reads its text filter (`q`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TextPlan {
    /// Ask each part's index how many clients match, then list them by id or, when they
    /// are many, with the whole condition.
    #[default]
    Decide,
    /// They are many: the whole condition, walked along the sort's index.
    Dense,
    /// Only the `n`th part of the condition (see [`text_parts`]).
    Part(usize),
}

/// A boolean condition on the clients table, boxed so different shapes can be combined.
pub type Condition = Box<dyn BoxableExpression<clients::table, Backend, SqlType = Bool>>;

fn time_conditions(column: Column, bounds: &[(TimeBound, NaiveDateTime)]) -> Vec<Condition> {
    bounds
        .iter()
        .map(|(bound, t)| -> Condition {
            let t = *t;
            match (column, bound) {
                (Column::CreatedAt, TimeBound::Gt) => Box::new(clients::created_at.gt(t)),
                (Column::CreatedAt, TimeBound::Gte) => Box::new(clients::created_at.ge(t)),
                (Column::CreatedAt, TimeBound::Lt) => Box::new(clients::created_at.lt(t)),
                (Column::CreatedAt, TimeBound::Lte) => Box::new(clients::created_at.le(t)),
                (_, TimeBound::Gt) => Box::new(clients::updated_at.gt(t)),
                (_, TimeBound::Gte) => Box::new(clients::updated_at.ge(t)),
                (_, TimeBound::Lt) => Box::new(clients::updated_at.lt(t)),
                (_, TimeBound::Lte) => Box::new(clients::updated_at.le(t)),
            }
        })
        .collect()
}

pub fn custom_condition(f: &CustomFilter) -> Condition {
    use crate::db::schema::custom_field_values as v;
    let fid = f.field.id.clone();
    macro_rules! exists_where {
        ($cond:expr) => {
            Box::new(diesel::dsl::exists(
                v::table
                    .filter(v::record_id.eq(clients::id))
                    .filter(v::field_id.eq(fid))
                    .filter($cond)
                    .select(v::id),
            ))
        };
    }
    match (&f.operand, f.op) {
        (Operand::Text(t), Op::Contains) => {
            exists_where!(v::text_value
                .like(format!("%{}%", escape_like(t)))
                .escape('\\'))
        }
        (Operand::Text(t), Op::Gt) => exists_where!(v::text_value.gt(t.clone())),
        (Operand::Text(t), Op::Gte) => exists_where!(v::text_value.ge(t.clone())),
        (Operand::Text(t), Op::Lt) => exists_where!(v::text_value.lt(t.clone())),
        (Operand::Text(t), Op::Lte) => exists_where!(v::text_value.le(t.clone())),
        (Operand::Text(t), _) => exists_where!(v::text_value.eq(t.clone())),
        (Operand::Num(n), Op::Gt) => exists_where!(v::num_value.gt(*n)),
        (Operand::Num(n), Op::Gte) => exists_where!(v::num_value.ge(*n)),
        (Operand::Num(n), Op::Lt) => exists_where!(v::num_value.lt(*n)),
        (Operand::Num(n), Op::Lte) => exists_where!(v::num_value.le(*n)),
        (Operand::Num(n), _) => exists_where!(v::num_value.eq(*n)),
        (Operand::TextList(items), _) => exists_where!(v::text_value.eq_any(items.clone())),
        (Operand::NumList(items), _) => exists_where!(v::num_value.eq_any(items.clone())),
    }
}

/// The SQL of the sort value, and whether it can be NULL.
fn sort_expr(key: &SortKey) -> (String, bool) {
    match key {
        SortKey::Column(c) => (c.sql().to_string(), c.nullable()),
        SortKey::Score(score) => (score.sql(), true),
        SortKey::Custom(f) => {
            let column = if f.kind().is_numeric() {
                "num_value"
            } else {
                "text_value"
            };
            // why: the field id is a server-side uuid, never user text, so it can be inlined.
            (
                format!(
                    "(SELECT {column} FROM custom_field_values s WHERE s.record_id = clients.id AND s.field_id = '{}')",
                    f.id.replace('\'', "")
                ),
                true,
            )
        }
    }
}

/// `$q` (a boxed select of `clients`) narrowed to the organization's clients the list's
/// filters, scope and text match. A macro because the list and its count select different
/// columns, and a boxed query's type names its selection.
macro_rules! filtered {
    ($conn:expr, $org_id:expr, $p:expr, $q:expr) => {{
        let conn: &mut DbConn = $conn;
        let org_id: &str = $org_id;
        let p: &ListParams = $p;
        let mut q = $q.filter(clients::organization_id.eq(org_id.to_string()));
        q = if p.trash {
            q.filter(clients::deleted_at.is_not_null())
        } else {
            q.filter(clients::deleted_at.is_null())
        };
        if let Some(ids) = &p.only_ids {
            q = q.filter(clients::id.eq_any(ids.clone()));
        }
        if let Some(me) = &p.only_assigned_to {
            q = q.filter(clients::assigned_to.eq(me.clone()));
        }
        // why: one value as `=` lets PostgreSQL read a composite index in sort order; `= ANY`
        // of a one-element array does not.
        match p.statuses.as_slice() {
            [] => {}
            [one] => q = q.filter(clients::status.eq(one.clone())),
            many => q = q.filter(clients::status.eq_any(many.to_vec())),
        }
        match p.kinds.as_slice() {
            [] => {}
            [one] => q = q.filter(clients::kind.eq(one.clone())),
            many => q = q.filter(clients::kind.eq_any(many.to_vec())),
        }
        match &p.assigned_to {
            Some(Some(user)) => q = q.filter(clients::assigned_to.eq(user.clone())),
            Some(None) => q = q.filter(clients::assigned_to.is_null()),
            None => {}
        }
        if let Some(i) = &p.industry {
            q = q.filter(
                sql::<Bool>("lower(clients.industry) = ").bind::<Text, _>(i.to_lowercase()),
            );
        }
        if let Some(s) = &p.source {
            q = q.filter(sql::<Bool>("lower(clients.source) = ").bind::<Text, _>(s.to_lowercase()));
        }
        if let Some(e) = &p.employer_id {
            q = q.filter(clients::employer_id.eq(e.clone()));
        }
        for tag in &p.tag_ids {
            use crate::db::schema::client_tags as ct;
            q = q.filter(diesel::dsl::exists(
                ct::table
                    .filter(ct::client_id.eq(clients::id))
                    .filter(ct::tag_id.eq(tag.clone()))
                    .select(ct::tag_id),
            ));
        }
        for cond in time_conditions(Column::CreatedAt, &p.created)
            .into_iter()
            .chain(time_conditions(Column::UpdatedAt, &p.updated))
        {
            q = q.filter(cond);
        }
        for f in &p.custom {
            q = q.filter(custom_condition(f));
        }
        for c in &p.criteria {
            q = q.filter(c.condition(crate::db::backend_of(conn)));
        }
        if let Some(text) = &p.q {
            q = match p.text_plan {
                TextPlan::Part(n) => {
                    match text_parts(conn, text).into_iter().nth(n) {
                        // why: a client an earlier part matches is that part's to list (the
                        // page of an OR is among the union of its disjoint parts' pages
                        // too), and leaving it out spares sorting it again: a common name's
                        // clients mostly have e-mails that start like it, and the e-mail
                        // part sorted all 45,000 of them by name at a million clients. By
                        // name only, where a part reads its own range (see `keyset`): in
                        // another order PostgreSQL walked the sort's index for a part now
                        // nearly empty, to its end (`q=marg&sort=city`: 2 → 390 ms).
                        // The e-mail part (second) says it with the shared prefix instead,
                        // which an index reads as a few ranges rather than every e-mail
                        // match less the names (see `email_only`).
                        Some(_)
                            if n == 1 && matches!(p.sort.key, SortKey::Column(Column::Name)) =>
                        {
                            q.filter(email_only(conn, text))
                        }
                        Some(part) if matches!(p.sort.key, SortKey::Column(Column::Name)) => {
                            text_parts_known(conn, text)
                                .into_iter()
                                .take(n)
                                .fold(q.filter(part), |q, e| q.filter(diesel::dsl::not(e)))
                        }
                        Some(part) => q.filter(part),
                        None => q,
                    }
                }
                TextPlan::Dense => q.filter(text_condition(conn, text)),
                TextPlan::Decide => {
                    let sparse = if p.trash {
                        None
                    } else {
                        text_matches(conn, org_id, text)?
                    };
                    match sparse {
                        Some(ids) => q.filter(clients::id.eq_any(ids)),
                        None => q.filter(text_condition(conn, text)),
                    }
                }
            };
        }

        q
    }};
}

/// The most a list counts: past it the count reads "1,000+". An exact count walks every
/// matching index entry, a million of them for an unfiltered list at a million clients.
pub const COUNT_CAP: i64 = 1_000;

/// How many clients the list's filters match (sort, cursor and limit aside), up to
/// [`COUNT_CAP`]; `None` past it.
pub fn count_capped(conn: &mut DbConn, org_id: &str, p: &ListParams) -> QueryResult<Option<i64>> {
    let q = clients::table.select(clients::id).into_boxed::<Backend>();
    let ids: Vec<String> = filtered!(&mut *conn, org_id, p, q)
        .limit(COUNT_CAP + 1)
        .load(conn)?;
    let n = ids.len() as i64;
    Ok((n <= COUNT_CAP).then_some(n))
}

/// How many clients the filters match, exactly: a segment's size. It reads every match
/// (an index or a scan), so it is for the segment pages and the API's count, not lists.
pub fn count_exact(conn: &mut DbConn, org_id: &str, p: &ListParams) -> QueryResult<i64> {
    let q = clients::table.select(clients::id).into_boxed::<Backend>();
    filtered!(&mut *conn, org_id, p, q).count().get_result(conn)
}

/// How the matching clients divide by one column (`status`, `type`, `owner`, `country`,
/// `source`): (value, clients), largest first. One grouped count in the database.
pub fn composition(
    conn: &mut DbConn,
    org_id: &str,
    p: &ListParams,
    by: &str,
) -> QueryResult<Vec<(Option<String>, i64)>> {
    use diesel::dsl::count_star;
    macro_rules! grouped {
        ($col:expr) => {{
            let q = clients::table
                .group_by($col)
                .select(($col, count_star()))
                .into_boxed::<Backend>();
            filtered!(&mut *conn, org_id, p, q).load::<(Option<String>, i64)>(conn)?
        }};
    }
    macro_rules! grouped_required {
        ($col:expr) => {{
            let q = clients::table
                .group_by($col)
                .select(($col, count_star()))
                .into_boxed::<Backend>();
            filtered!(&mut *conn, org_id, p, q)
                .load::<(String, i64)>(conn)?
                .into_iter()
                .map(|(v, n)| (Some(v), n))
                .collect::<Vec<_>>()
        }};
    }
    let mut rows = match by {
        "status" => grouped_required!(clients::status),
        "type" => grouped_required!(clients::kind),
        "owner" => grouped!(clients::assigned_to),
        "country" => grouped!(clients::country),
        "source" => grouped!(clients::source),
        "engagement" | "churnRisk" | "lifetimeValue" => {
            let band = score_band(by);
            grouped!(diesel::dsl::sql::<
                diesel::sql_types::Nullable<diesel::sql_types::Text>,
            >(&band))
        }
        _ => vec![],
    };
    match SCORE_BANDS.iter().find(|b| b.0 == by) {
        // Bands read in their own order (low to high), "not scored" last.
        Some((_, _, labels)) => rows.sort_by_key(|r| {
            r.0.as_deref()
                .and_then(|l| labels.iter().position(|x| *x == l))
                .unwrap_or(usize::MAX)
        }),
        None => rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))),
    }
    Ok(rows)
}

/// The score bands a segment's composition shows: (by, score column, band labels). The
/// thresholds are the labels' lower bounds; lifetime value is in minor units.
pub const SCORE_BANDS: &[(&str, &str, &[&str])] = &[
    (
        "engagement",
        "engagement",
        &["0–24", "25–49", "50–74", "75–100"],
    ),
    (
        "churnRisk",
        "churn_risk",
        &["0–24", "25–49", "50–74", "75–100"],
    ),
    (
        "lifetimeValue",
        "lifetime_value_cents",
        &[
            "under 1,000",
            "1,000–9,999",
            "10,000–99,999",
            "100,000 and more",
        ],
    ),
];

/// A client's band of a score, as a correlated lookup on `client_scores` (its primary key):
/// NULL for a client not scored yet.
fn score_band(by: &str) -> String {
    let Some((_, column, labels)) = SCORE_BANDS.iter().find(|b| b.0 == by) else {
        return "NULL".into();
    };
    let bounds: [i64; 3] = if by == "lifetimeValue" {
        [100_000, 1_000_000, 10_000_000]
    } else {
        [25, 50, 75]
    };
    format!(
        "(SELECT CASE WHEN s.{column} < {} THEN '{}' WHEN s.{column} < {} THEN '{}' WHEN s.{column} < {} THEN '{}' ELSE '{}' END \
         FROM client_scores s WHERE s.client_id = clients.id)",
        bounds[0], labels[0], bounds[1], labels[1], bounds[2], labels[2], labels[3]
    )
}

/// The clients the filters match, in id order from `after`: (id, e-mail). Bulk sends walk
/// their audience with it, page by page.
pub fn audience_page(
    conn: &mut DbConn,
    org_id: &str,
    p: &ListParams,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<(String, Option<String>)>> {
    let q = clients::table
        .select((clients::id, clients::email))
        .into_boxed::<Backend>();
    let mut q = filtered!(&mut *conn, org_id, p, q);
    if let Some(a) = after {
        q = q.filter(clients::id.gt(a.to_string()));
    }
    q.order(clients::id.asc()).limit(limit).load(conn)
}

/// A page of clients: the filters, the sort, the cursor and the limit of `p`.
pub fn list(conn: &mut DbConn, org_id: &str, p: &ListParams) -> QueryResult<Vec<ClientRow>> {
    let Some(text) = p.q.as_deref() else {
        return page(conn, org_id, p);
    };
    if p.trash || p.text_plan != TextPlan::Decide {
        return page(conn, org_id, p);
    }
    let mut whole = p.clone();
    match text_matches(conn, org_id, text)? {
        Some(ids) => {
            whole.q = None;
            whole.only_ids = Some(match &p.only_ids {
                Some(only) => {
                    let only: std::collections::HashSet<&String> = only.iter().collect();
                    ids.into_iter().filter(|id| only.contains(id)).collect()
                }
                None => ids,
            });
        }
        // why: when and in what status a client is says nothing of its name, so a walk of
        // these indexes meets the many matches at their average density, soon (and the
        // newest-first index carries the text's columns on SQLite).
        None if matches!(
            p.sort.key,
            SortKey::Column(Column::CreatedAt | Column::UpdatedAt | Column::Status)
        ) =>
        {
            whole.text_plan = TextPlan::Dense
        }
        // why: the same holds for the other columns that say nothing of a name or an
        // e-mail, each with its own index now. On SQLite the parts' plan below read every
        // match of a common prefix and sorted them (`q=marg&sort=city`: 45,400 matches a
        // part, 400-600 ms at a million clients) where walking the city index met a page
        // of matches in 1-2 ms. PostgreSQL plans the parts well (1.8 ms there) and keeps them.
        None if crate::db::backend_of(conn) == crate::db::Backend::Sqlite
            && matches!(
                p.sort.key,
                SortKey::Column(
                    Column::Kind
                        | Column::City
                        | Column::Country
                        | Column::Industry
                        | Column::Source
                )
            ) =>
        {
            whole.text_plan = TextPlan::Dense
        }
        // why: other orders follow the name (name, e-mail, company, phone: a typed number's
        // part is a phone prefix) or have no index (custom fields, scores), and walking them
        // tests every row passed: a common e-mail prefix sits half a million names along
        // (1-2 s at a million clients). Each part alone is a range of its own index, walked
        // in the sort's order or its matches sorted, and the page of an OR is among the
        // union of its parts' pages.
        None => {
            let mut ids: Vec<String> = Vec::new();
            for n in 0..text_parts(conn, text).len() {
                let part = ListParams {
                    text_plan: TextPlan::Part(n),
                    ..p.clone()
                };
                ids.extend(page_ids(conn, org_id, &part)?);
            }
            ids.sort_unstable();
            ids.dedup();
            whole.q = None;
            whole.only_ids = Some(ids);
        }
    }
    page(conn, org_id, &whole)
}

/// The rows of `p`'s page as `$select` reads them (a boxed query's type names its
/// selection, so whole rows and bare ids each need their own): each range of [`ranges`]
/// tops up what the one before left short.
macro_rules! paged {
    ($conn:expr, $org_id:expr, $p:expr, $select:expr, $row:ty) => {{
        let conn: &mut DbConn = $conn;
        let p: &ListParams = $p;
        let mut rows: Vec<$row> = Vec::new();
        for range in ranges(p) {
            let need = p.limit - rows.len() as i64;
            if need <= 0 {
                break;
            }
            let q = clients::table.select($select).into_boxed::<Backend>();
            let mut q = filtered!(&mut *conn, $org_id, p, q);
            for cond in range.conds {
                q = q.filter(cond);
            }
            rows.extend(
                q.order(sql::<Text>(&range.order))
                    .limit(need)
                    .load::<$row>(conn)?,
            );
        }
        Ok(rows)
    }};
}

fn page(conn: &mut DbConn, org_id: &str, p: &ListParams) -> QueryResult<Vec<ClientRow>> {
    paged!(conn, org_id, p, ClientRow::as_select(), ClientRow)
}

/// [`page`]'s ids alone: what a part of the text filter contributes to the union that
/// [`list`] then pages in full.
fn page_ids(conn: &mut DbConn, org_id: &str, p: &ListParams) -> QueryResult<Vec<String>> {
    paged!(conn, org_id, p, clients::id, String)
}

/// One ordered read of a page: its conditions (the cursor's among them) and its ORDER BY.
struct Range {
    conds: Vec<Condition>,
    order: String,
}

/// The reads that make a page of `p`, in order, each topping up what the last left short.
fn ranges(p: &ListParams) -> Vec<Range> {
    if let SortKey::Column(column) = &p.sort.key {
        if column.nullable() {
            if let Some(ranges) = values_then_missing(p, *column) {
                return ranges;
            }
        }
    }
    let (after, order) = keyset(p);
    vec![Range {
        conds: after.into_iter().collect(),
        order,
    }]
}

/// A column that may be empty, read as two ranges: the clients with a value by `(value,
/// id)`, then those without by id (missing values come last in both directions). why: the
/// one-statement order `missing last, value, id` matches no index, so every such list read
/// and sorted every client (`sort=email` 357 ms of CPU on SQLite and 1.3 s on PostgreSQL at a
/// million); each range alone is a plain index order where the column has an index.
/// `None` for a cursor that cannot come from this sort.
fn values_then_missing(p: &ListParams, column: Column) -> Option<Vec<Range>> {
    let expr = column.sql();
    let dir = if p.sort.descending { "DESC" } else { "ASC" };
    let cmp = if p.sort.descending { "<" } else { ">" };
    let present = || -> Condition { Box::new(sql::<Bool>(&format!("{expr} IS NOT NULL"))) };
    let missing = || -> Condition { Box::new(sql::<Bool>(&format!("{expr} IS NULL"))) };
    let by_value = format!("{expr} {dir}, clients.id {dir}");
    let by_id = format!("clients.id {dir}");
    let Some(cursor) = &p.after else {
        return Some(vec![
            Range {
                conds: vec![present()],
                order: by_value,
            },
            Range {
                conds: vec![missing()],
                order: by_id,
            },
        ]);
    };
    match &cursor.value {
        CursorValue::Text(value) => {
            let after: Condition = Box::new(
                sql::<Bool>(&format!("({expr}, clients.id) {cmp} ("))
                    .bind::<Text, _>(value.clone())
                    .sql(", ")
                    .bind::<Text, _>(cursor.id.clone())
                    .sql(")"),
            );
            Some(vec![
                Range {
                    conds: vec![present(), after],
                    order: by_value,
                },
                Range {
                    conds: vec![missing()],
                    order: by_id,
                },
            ])
        }
        CursorValue::Null => {
            let after: Condition = Box::new(
                sql::<Bool>(&format!("clients.id {cmp} ")).bind::<Text, _>(cursor.id.clone()),
            );
            Some(vec![Range {
                conds: vec![missing(), after],
                order: by_id,
            }])
        }
        CursorValue::Num(_) | CursorValue::Time(_) => None,
    }
}

/// The cursor's condition (rows after it in the sort) and the ORDER BY of `p`'s sort.
fn keyset(p: &ListParams) -> (Option<Condition>, String) {
    let (mut expr, nullable) = sort_expr(&p.sort.key);
    // why: a part of the text filter other than the name's, sorted by name, must read its
    // own range and sort it; left to match the name index, the planner walks the names
    // and tests each (PostgreSQL: 670,000 rows passed for `marg` at a million clients).
    if matches!(p.text_plan, TextPlan::Part(n) if n > 0)
        && matches!(p.sort.key, SortKey::Column(Column::Name))
    {
        expr = format!("({expr} || '')");
    }
    let dir = if p.sort.descending { "DESC" } else { "ASC" };
    let cmp = if p.sort.descending { "<" } else { ">" };
    // why: missing values sort last in both directions, via a rank that flips with it.
    let rank = if p.sort.descending {
        format!("CASE WHEN {expr} IS NULL THEN 0 ELSE 1 END")
    } else {
        format!("CASE WHEN {expr} IS NULL THEN 1 ELSE 0 END")
    };
    let is_num = match &p.sort.key {
        SortKey::Custom(f) => f.kind().is_numeric(),
        SortKey::Score(_) => true,
        SortKey::Column(_) => false,
    };
    let mut after: Option<Condition> = None;
    if let Some(cursor) = &p.after {
        let cond = if nullable {
            let (rank_value, value) = match &cursor.value {
                CursorValue::Null => (if p.sort.descending { 0 } else { 1 }, None),
                v => (if p.sort.descending { 1 } else { 0 }, Some(v.clone())),
            };
            let head = sql::<Bool>(&format!("({rank}, COALESCE({expr}, "))
                .sql(if is_num { "0" } else { "''" })
                .sql("), clients.id) ")
                .sql(cmp)
                .sql(" (")
                .bind::<BigInt, _>(rank_value)
                .sql(", ");
            let id = cursor.id.clone();
            let cond: Condition = match value {
                Some(CursorValue::Num(n)) => Box::new(
                    head.bind::<BigInt, _>(n)
                        .sql(", ")
                        .bind::<Text, _>(id)
                        .sql(")"),
                ),
                Some(CursorValue::Text(t)) => Box::new(
                    head.bind::<Text, _>(t)
                        .sql(", ")
                        .bind::<Text, _>(id)
                        .sql(")"),
                ),
                _ if is_num => Box::new(
                    head.bind::<BigInt, _>(0)
                        .sql(", ")
                        .bind::<Text, _>(id)
                        .sql(")"),
                ),
                _ => Box::new(
                    head.bind::<Text, _>(String::new())
                        .sql(", ")
                        .bind::<Text, _>(id)
                        .sql(")"),
                ),
            };
            cond
        } else {
            let head = sql::<Bool>(&format!("({expr}, clients.id) {cmp} ("));
            let id = cursor.id.clone();
            let cond: Condition = match &cursor.value {
                CursorValue::Time(t) => Box::new(
                    head.bind::<Timestamp, _>(*t)
                        .sql(", ")
                        .bind::<Text, _>(id)
                        .sql(")"),
                ),
                CursorValue::Text(t) => Box::new(
                    head.bind::<Text, _>(t.clone())
                        .sql(", ")
                        .bind::<Text, _>(id)
                        .sql(")"),
                ),
                CursorValue::Num(n) => Box::new(
                    head.bind::<BigInt, _>(*n)
                        .sql(", ")
                        .bind::<Text, _>(id)
                        .sql(")"),
                ),
                CursorValue::Null => Box::new(
                    head.bind::<Nullable<Text>, _>(None::<String>)
                        .sql(", ")
                        .bind::<Text, _>(id)
                        .sql(")"),
                ),
            };
            cond
        };
        after = Some(cond);
    }
    let order = if nullable {
        format!(
            "{rank} {dir}, COALESCE({expr}, {}) {dir}, clients.id {dir}",
            if is_num { "0" } else { "''" }
        )
    } else {
        format!("{expr} {dir}, clients.id {dir}")
    };
    (after, order)
}

/// The text filter: names and e-mails starting with the text, or a phone number equal to
/// it. Each part is a range or an equality on an index, never a substring scan, so a text
/// that matches nothing costs what one that matches little does. Typo-tolerant search
/// across every field is `/api/search` and the console's search page.
fn text_condition(conn: &DbConn, text: &str) -> Condition {
    let parts = text_parts(conn, text).into_iter();
    parts
        .reduce(|any, part| Box::new(any.or(part)))
        .unwrap_or_else(|| starts_with(conn, "clients.sort_name", text))
}

/// The parts of the text filter, any of which matches: a name or an e-mail starting with
/// the text, a phone number equal to it or, typed in part, starting with it.
fn text_parts(conn: &DbConn, text: &str) -> Vec<Condition> {
    let mut parts: Vec<Condition> = vec![
        starts_with(conn, "clients.sort_name", text),
        starts_with(conn, "clients.email", text),
    ];
    if let Some(key) = super::duplicates::phone_key(text, None) {
        parts.push(Box::new(clients::phone_key.eq(key).assume_not_null()));
    }
    if let Some(range) = phone_prefix(text) {
        parts.push(range);
    }
    parts
}

/// [`text_parts`], each false (never unknown) where its column is empty, so that `NOT` of
/// one holds there. Only for that: the plain parts keep SQLite's plan of the whole
/// condition (with `IS NOT NULL` in every part, the newest-first prefix list went from 1.3
/// to 1.9 ms of CPU at a million clients).
fn text_parts_known(conn: &DbConn, text: &str) -> Vec<Condition> {
    let known = |column: &str| -> Condition {
        Box::new(sql::<Bool>(&format!("{column} IS NOT NULL")).and(starts_with(conn, column, text)))
    };
    let mut parts: Vec<Condition> = vec![known("clients.sort_name"), known("clients.email")];
    let phone = clients::phone_key.is_not_null();
    if let Some(key) = super::duplicates::phone_key(text, None) {
        parts.push(Box::new(
            phone.and(clients::phone_key.eq(key).assume_not_null()),
        ));
    }
    if let Some(range) = phone_prefix(text) {
        parts.push(Box::new(phone.and(range)));
    }
    parts
}

/// The clients whose e-mail starts with `text` and whose sort name does not: those whose
/// e-mail shares fewer leading characters with the name than `text` has ([`shared_prefix`],
/// capped at [`SHARED_CAP`]). One range of the e-mail per shorter length, in the index on
/// `(organization, shared prefix, email)`: `q=marg` sorted by name read all 45,400
/// e-mails that start so at a million clients (nearly all Margarets the name part lists)
/// to keep the few that are not.
fn email_only(conn: &DbConn, text: &str) -> Condition {
    let k = text.trim().to_lowercase().chars().count();
    // why: a computed length is at most the cap, so past it every length is "shorter": the
    // clients who share more are read by both parts and listed once.
    let shorter: Vec<String> = (0..k.min(SHARED_CAP + 1)).map(|n| n.to_string()).collect();
    Box::new(
        sql::<Bool>(&format!(
            "{} IN ({})",
            shared_prefix(conn),
            shorter.join(", ")
        ))
        .and(starts_with(conn, "clients.email", text)),
    )
}

/// The longest shared prefix of e-mail and name that [`shared_prefix`] counts.
const SHARED_CAP: usize = 16;

/// How many leading characters (up to [`SHARED_CAP`]) a client's e-mail shares with its
/// sort name, written exactly as the index `clients_org_email_lcp_idx` states it (migration
/// email_prefix_index): a database uses an index on an expression only for that same
/// expression. Each term is 1 when the first i characters agree; agreeing is monotone in
/// i, so the sum is the shared length. An expression index and not a generated column: a
/// stored column cost PostgreSQL's import a rebuilt row per client (a tenth of its time),
/// and the clients table is at the 32 columns the diesel schema carries.
fn shared_prefix(conn: &DbConn) -> &'static str {
    static SQLITE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static POSTGRES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let term = |i: usize| match conn {
        DbConn::Sqlite(_) => {
            format!("(substr(clients.email, 1, {i}) = substr(clients.sort_name, 1, {i}))")
        }
        DbConn::Postgresql(_) => {
            format!("(left(clients.email, {i}) = left(clients.sort_name, {i}))::int")
        }
    };
    let cell = match conn {
        DbConn::Sqlite(_) => &SQLITE,
        DbConn::Postgresql(_) => &POSTGRES,
    };
    cell.get_or_init(|| {
        let sum: Vec<String> = (1..=SHARED_CAP).map(term).collect();
        format!("coalesce({}, 0)", sum.join(" + "))
    })
}

/// A phone number typed in part, in national form (`030 1234`, `555 12`): the clients
/// whose phone key starts with its digits (trunk zeros dropped, as keys store them). The
/// range's upper end is the prefix with its last digit raised, so it holds under any
/// collation (digit strings sort alike everywhere) and both backends read the phone-key
/// index. A `+` number is matched whole by [`super::duplicates::phone_key`] instead.
fn phone_prefix(text: &str) -> Option<Condition> {
    let text = text.trim();
    if text.starts_with('+')
        || !text
            .chars()
            .all(|c| c.is_ascii_digit() || " -().".contains(c))
    {
        return None;
    }
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let prefix = digits.trim_start_matches('0').to_string();
    if prefix.len() < 4 {
        return None;
    }
    // "5559" → "556": raise the last digit that is not a 9, drop the nines after it.
    let mut upper: Vec<u8> = prefix.clone().into_bytes();
    while upper.last() == Some(&b'9') {
        upper.pop();
    }
    let last = upper.pop()?;
    upper.push(last + 1);
    let upper = String::from_utf8(upper).ok()?;
    Some(Box::new(
        clients::phone_key
            .ge(prefix)
            .and(clients::phone_key.lt(upper))
            .assume_not_null(),
    ))
}

/// Longest text filter accepted, in characters (a name or an e-mail is shorter).
pub const MAX_TEXT: usize = 200;

/// Up to this many clients matching a text are listed by id; past it the matches are
/// dense, and walking the sort's index until a page is full is the cheaper plan.
const SPARSE_MATCHES: i64 = 2_000;

/// The live clients matching `text` when they are few (at most [`SPARSE_MATCHES`]); `None`
/// when there are more. why: both planners fail the combined condition one way or the
/// other — SQLite cannot use partial indexes inside an OR and walks the sort's index over
/// every row when nothing matches (2 s at a million clients), and any plan that fetches
/// every match sorts tens of thousands of rows for a common prefix. Asking each index
/// alone, with a bound, picks the right plan for both cases.
fn text_matches(conn: &mut DbConn, org_id: &str, text: &str) -> QueryResult<Option<Vec<String>>> {
    let mut ids: Vec<String> = Vec::new();
    for part in text_parts(conn, text) {
        let found: Vec<String> = clients::table
            .filter(clients::organization_id.eq(org_id.to_string()))
            .filter(clients::deleted_at.is_null())
            .filter(part)
            .select(clients::id)
            .limit(SPARSE_MATCHES + 1)
            .load(conn)?;
        ids.extend(found);
        if ids.len() as i64 > SPARSE_MATCHES {
            return Ok(None);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

/// `column` (a lower-case text column of `clients`) starts with `text`, as a range an
/// index answers: `LIKE 'text%'` is case-insensitive on SQLite and cannot use a plain index.
pub fn starts_with(conn: &DbConn, column: &str, text: &str) -> Condition {
    // why: prefix ranges compare bytes; PostgreSQL's default collation may be a language's
    // (en_US), where a range holds names without the prefix. Its indexes use "C" too.
    let collate = match crate::db::backend_of(conn) {
        crate::db::Backend::Postgres => " COLLATE \"C\"",
        crate::db::Backend::Sqlite => "",
    };
    let low = text.trim().to_lowercase();
    let high = format!("{low}\u{10FFFF}");
    Box::new(
        sql::<Bool>(&format!("({column}{collate} >= "))
            .bind::<Text, _>(low)
            .sql(&format!(" AND {column}{collate} < "))
            .bind::<Text, _>(high)
            .sql(")"),
    )
}

/// The cursor that continues after `row` in `sort`'s order; a score is read from its table.
pub fn cursor_for(conn: &mut DbConn, row: &ClientRow, sort: &Sort) -> QueryResult<Cursor> {
    let SortKey::Score(score) = &sort.key else {
        return Ok(cursor_after(row, sort));
    };
    let found: Option<Option<i64>> = clients::table
        .filter(clients::id.eq(&row.id))
        .select(sql::<diesel::sql_types::Nullable<BigInt>>(&score.sql()))
        .first(conn)
        .optional()?;
    Ok(Cursor {
        value: found.flatten().map_or(CursorValue::Null, CursorValue::Num),
        id: row.id.clone(),
    })
}

/// The cursor that continues after `row` in `sort`'s order (any sort but a score's).
pub fn cursor_after(row: &ClientRow, sort: &Sort) -> Cursor {
    let text =
        |v: Option<&String>| v.map_or(CursorValue::Null, |s| CursorValue::Text(s.to_lowercase()));
    let value = match &sort.key {
        SortKey::Column(c) => match c {
            Column::Name => CursorValue::Text(row.sort_name.clone()),
            Column::Email => row
                .email
                .clone()
                .map_or(CursorValue::Null, CursorValue::Text),
            Column::Phone => row
                .phone
                .clone()
                .map_or(CursorValue::Null, CursorValue::Text),
            Column::Status => CursorValue::Text(row.status.clone()),
            Column::Kind => CursorValue::Text(row.kind.clone()),
            Column::CompanyName => text(row.company_name.as_ref()),
            Column::Industry => text(row.industry.as_ref()),
            Column::Source => text(row.source.as_ref()),
            Column::City => text(row.city.as_ref()),
            Column::Country => row
                .country
                .clone()
                .map_or(CursorValue::Null, CursorValue::Text),
            Column::CreatedAt => CursorValue::Time(row.created_at),
            Column::UpdatedAt => CursorValue::Time(row.updated_at),
        },
        SortKey::Score(_) => CursorValue::Null,
        SortKey::Custom(f) => {
            let raw = row
                .custom_map()
                .get(&f.field_key)
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            match crate::domain::custom_fields::value::normalize(f, &raw) {
                Ok(Some(n)) => match n.index.into_iter().next() {
                    Some(i) if f.kind().is_numeric() => {
                        i.num.map_or(CursorValue::Null, CursorValue::Num)
                    }
                    Some(i) => i.text.map_or(CursorValue::Null, CursorValue::Text),
                    None => CursorValue::Null,
                },
                _ => CursorValue::Null,
            }
        }
    };
    Cursor {
        value,
        id: row.id.clone(),
    }
}

/// Multi-select values index several rows, so they cannot order a list.
pub fn sortable(field: &FieldRow) -> bool {
    field.kind() != FieldType::MultiSelect
}

/// Parses the list query string (the API's and the console's alike) into parameters,
/// resolving tags and custom fields of the organization. Unknown parameters, fields and
/// operators are refused with per-parameter errors rather than ignored.
pub fn parse_params(
    conn: &mut DbConn,
    org_id: &str,
    defs: &[FieldRow],
    pairs: &[(String, String)],
) -> crate::error::AppResult<ListParams> {
    use crate::domain::custom_fields::value::{encode_operand, parse_date, parse_datetime};
    use crate::error::{AppError, FieldError};

    let mut p = ListParams {
        limit: 50,
        ..Default::default()
    };
    let mut errors: Vec<FieldError> = Vec::new();
    let time = |raw: &str| -> Option<NaiveDateTime> {
        parse_date(raw)
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .or_else(|| parse_datetime(raw).ok().map(|d| d.naive_utc()))
    };
    let list = |raw: &str| -> Vec<String> {
        raw.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    for (key, value) in pairs {
        let value = value.trim();
        match key.as_str() {
            "limit" => match value.parse::<i64>() {
                Ok(l) if (1..=500).contains(&l) => p.limit = l,
                _ => errors.push(FieldError::new(
                    "limit",
                    "Use a whole number from 1 to 500.",
                )),
            },
            "count" => match value {
                "true" | "1" => p.count = true,
                "false" | "0" | "" => p.count = false,
                _ => errors.push(FieldError::new("count", "Use count=true or count=false.")),
            },
            "cursor" if value.is_empty() => {}
            "cursor" => match Cursor::decode(value) {
                Some(c) => p.after = Some(c),
                None => errors.push(FieldError::new(
                    "cursor",
                    "This cursor was not issued by this list; start again without it.",
                )),
            },
            "q" if value.chars().count() > MAX_TEXT => errors.push(FieldError::new(
                "q",
                format!("Filter by at most {MAX_TEXT} characters."),
            )),
            "q" => p.q = Some(value.to_string()).filter(|v| !v.is_empty()),
            "sort" if value.is_empty() => {}
            "sort" => {
                if value.contains(',') {
                    errors.push(FieldError::new(
                        "sort",
                        "Sort by one field at a time (the id breaks ties).",
                    ));
                    continue;
                }
                let (descending, name) = match value.strip_prefix('-') {
                    Some(n) => (true, n),
                    None => (false, value),
                };
                let key = if let Some(custom) = name.strip_prefix("customFields.") {
                    match defs.iter().find(|d| d.field_key == custom && d.is_active()) {
                        Some(d) if sortable(d) => Some(SortKey::Custom(Box::new(d.clone()))),
                        Some(_) => {
                            errors.push(FieldError::new(
                                "sort",
                                "A multiple-choice field cannot order a list.",
                            ));
                            continue;
                        }
                        None => None,
                    }
                } else {
                    Column::parse(name)
                        .map(SortKey::Column)
                        .or_else(|| Score::parse(name).map(SortKey::Score))
                };
                match key {
                    Some(key) => p.sort = Sort { key, descending },
                    None => errors.push(FieldError::new(
                        "sort",
                        format!(
                            "Unknown sort field; use one of {}, engagement, churnRisk, \
                             lifetimeValue or customFields.<key>.",
                            Column::API_NAMES
                        ),
                    )),
                }
            }
            k if k.starts_with("filter[") => {
                let inner = &k[7..];
                let (field, op) = match inner.split_once("][") {
                    Some((f, rest)) => (f, rest.trim_end_matches(']')),
                    None => (inner.trim_end_matches(']'), ""),
                };
                if value.is_empty() {
                    continue;
                }
                let in_list = op == "in" || op.is_empty();
                match field {
                    "status" if in_list => {
                        let items = list(value);
                        if let Some(bad) = items.iter().find(|s| !super::model::STATUSES.contains(&s.as_str())) {
                            errors.push(FieldError::new(k, format!("Unknown status {bad:?}.")));
                        }
                        p.statuses = items;
                    }
                    "type" if in_list => {
                        let items = list(value);
                        if let Some(bad) = items.iter().find(|s| !super::model::KINDS.contains(&s.as_str())) {
                            errors.push(FieldError::new(k, format!("Unknown type {bad:?}.")));
                        }
                        p.kinds = items;
                    }
                    "assignedTo" if op.is_empty() => {
                        p.assigned_to = Some(match value {
                            "none" => None,
                            other => Some(other.to_string()),
                        })
                    }
                    "industry" if op.is_empty() => p.industry = Some(value.to_string()),
                    "source" if op.is_empty() => p.source = Some(value.to_string()),
                    "company" if op.is_empty() => p.employer_id = Some(value.to_string()),
                    "segment" if op.is_empty() => {
                        match crate::domain::segments::compiled(conn, org_id, value) {
                            Ok(Some(c)) => p.criteria.push(c),
                            Ok(None) => errors.push(FieldError::new(k, "There is no such segment.")),
                            Err(AppError::Validation(m, _)) => errors.push(FieldError::new(k, m)),
                            Err(e) => return Err(e),
                        }
                    }
                    "tag" if op.is_empty() => {
                        for reference in list(value) {
                            match crate::domain::clients::service::resolve_tag(conn, org_id, &reference)? {
                                Some(t) => p.tag_ids.push(t.id),
                                None => errors.push(FieldError::new(k, format!("There is no tag {reference:?}."))),
                            }
                        }
                    }
                    "createdAt" | "updatedAt" => {
                        let bound = match op {
                            "gt" => TimeBound::Gt,
                            "gte" => TimeBound::Gte,
                            "lt" => TimeBound::Lt,
                            "lte" => TimeBound::Lte,
                            _ => {
                                errors.push(FieldError::new(k, "Use gt, gte, lt or lte with a date or date-time."));
                                continue;
                            }
                        };
                        match time(value) {
                            Some(t) if field == "createdAt" => p.created.push((bound, t)),
                            Some(t) => p.updated.push((bound, t)),
                            None => errors.push(FieldError::new(k, "Use a date (YYYY-MM-DD) or an RFC 3339 date-time.")),
                        }
                    }
                    custom if custom.starts_with("customFields.") => {
                        let key = &custom["customFields.".len()..];
                        let Some(def) = defs.iter().find(|d| d.field_key == key && d.is_active()) else {
                            errors.push(FieldError::new(k, "There is no such custom field."));
                            continue;
                        };
                        let Some(op) = crate::domain::custom_fields::value::Op::parse(op) else {
                            errors.push(FieldError::new(k, "Use one of eq, gt, gte, lt, lte, contains, in."));
                            continue;
                        };
                        match encode_operand(def, op, value) {
                            Ok(operand) => p.custom.push(CustomFilter { field: def.clone(), op, operand }),
                            Err(e) => errors.push(FieldError::new(k, e)),
                        }
                    }
                    _ => errors.push(FieldError::new(
                        k,
                        "Unknown filter; use status, type, tag, assignedTo, industry, source, company, segment, createdAt, updatedAt or customFields.<key>.",
                    )),
                }
            }
            // Console-only presentation parameters.
            "columns" | "view" | "cf_key" | "cf_op" | "cf_value" => {}
            other => errors.push(FieldError::new(other, "Unknown query parameter.")),
        }
    }
    if p.count && p.q.is_some() {
        // why: a text filter's count reads every match of a common prefix (tens of thousands
        // of rows at a million clients); the list pages through them instead.
        errors.push(FieldError::new(
            "count",
            "The count is not available with a text filter (q); page through the matches, or use /api/search for a total.",
        ));
    }
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(AppError::Validation(
            "The list query is not valid.".into(),
            errors,
        ))
    }
}

/// `filter[assignedTo]=me` means the signed-in user, in the API and the console alike.
pub fn resolve_me(pairs: &mut [(String, String)], user_id: &str) {
    for (k, v) in pairs.iter_mut() {
        if k == "filter[assignedTo]" && v == "me" {
            *v = user_id.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{connect, migrate, DbTarget};
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Step {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    /// The first of [`values_then_missing`]'s two ranges for every column the list sorts by
    /// (the clients that have a value, in the sort's order, one page).
    fn first_range(column: Column) -> String {
        let expr = column.sql();
        let present = if column.nullable() {
            format!("AND {expr} IS NOT NULL")
        } else {
            String::new()
        };
        format!(
            "SELECT clients.id FROM clients \
             WHERE clients.organization_id = 'o' AND clients.deleted_at IS NULL {present} \
             ORDER BY {expr} DESC, clients.id DESC LIMIT 51"
        )
    }

    /// The text filter's e-mail part sorted by name, one shared length of it: the index on
    /// the expression serves only a query that states the very same expression, so a
    /// change to [`shared_prefix`] or to the migration alone leaves the e-mail part reading
    /// every e-mail that starts with the text. (Equality and not the query's `IN`: on an
    /// empty table the planner prefers filtering a list to descending per value.)
    fn email_part(conn: &DbConn) -> String {
        format!(
            "SELECT clients.id FROM clients \
             WHERE clients.organization_id = 'o' AND clients.deleted_at IS NULL \
             AND {} = 2 AND clients.email > 'marg' AND clients.email < 'marh'",
            shared_prefix(conn)
        )
    }

    fn columns() -> impl Iterator<Item = (&'static str, Column)> {
        Column::API_NAMES
            .split(", ")
            .map(|name| (name, Column::parse(name).unwrap()))
    }

    /// Every column the list sorts by is read in its index's order from the clients that
    /// have a value: without an index (or with one on another expression than the sort's)
    /// the list read and sorted every client of the organization, a second of CPU at a
    /// million clients. SQLite here; PostgreSQL below when `TEST_DATABASE_URL` names one.
    #[test]
    fn every_column_sort_reads_an_index_in_order() {
        let dir = std::env::temp_dir().join(format!("rapport-sorts-{}", uuid::Uuid::new_v4()));
        let pool = connect(&DbTarget::sqlite_file(&dir.join("s.db")), 1).unwrap();
        let mut conn = pool.get().unwrap();
        migrate(&mut conn).unwrap();
        let plan_of = |conn: &mut DbConn, sql: String| -> Vec<String> {
            diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                .load::<Step>(conn)
                .unwrap()
                .into_iter()
                .map(|s| s.detail)
                .collect()
        };
        for (name, column) in columns() {
            let plan = plan_of(&mut conn, first_range(column));
            assert!(
                !plan.iter().any(|s| s.contains("TEMP B-TREE")) && plan.len() == 1,
                "sort={name}: {plan:?}"
            );
        }
        let sql = email_part(&conn);
        let plan = plan_of(&mut conn, sql);
        assert!(
            plan.len() == 1
                && plan[0].contains("clients_org_email_lcp_idx")
                && plan[0].contains("email>?"),
            "the e-mail part: {plan:?}"
        );
        drop(conn);
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[derive(diesel::QueryableByName)]
    struct PgStep {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }

    #[test]
    fn every_column_sort_reads_an_index_in_order_on_postgres() {
        use diesel::connection::SimpleConnection;
        let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
            return;
        };
        if !admin.starts_with("postgres") {
            return;
        }
        let schema = format!("sorts_{}", uuid::Uuid::new_v4().simple());
        let target = DbTarget::parse(&admin).unwrap();
        let pool = connect(&target, 1).unwrap();
        pool.get()
            .unwrap()
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-csearch_path%3D{schema}");
        let result = std::panic::catch_unwind(|| {
            let pool = connect(&DbTarget::parse(&url).unwrap(), 1).unwrap();
            let mut conn = pool.get().unwrap();
            migrate(&mut conn).unwrap();
            // why: on an empty table a scan and a sort cost nothing, so the planner must be
            // told to use an index where one gives the order; a Sort left means none does.
            conn.batch_execute("SET enable_sort = off; SET enable_seqscan = off")
                .unwrap();
            let plan_of = |conn: &mut DbConn, sql: String| -> Vec<String> {
                diesel::sql_query(format!("EXPLAIN {sql}"))
                    .load::<PgStep>(conn)
                    .unwrap()
                    .into_iter()
                    .map(|s| s.line)
                    .collect()
            };
            for (name, column) in columns() {
                let plan = plan_of(&mut conn, first_range(column));
                // An incremental sort (e-mail: by id within one address) reads in order.
                let sorts = |l: &String| {
                    let node = l.trim_start().trim_start_matches("->").trim_start();
                    node.starts_with("Sort  (")
                };
                assert!(!plan.iter().any(sorts), "sort={name}: {plan:?}");
            }
            let sql = email_part(&conn);
            let plan = plan_of(&mut conn, sql);
            assert!(
                plan.iter().any(|l| l.contains("clients_org_email_lcp_idx"))
                    && plan
                        .iter()
                        .any(|l| l.contains("Index Cond") && l.contains("COALESCE")),
                "the e-mail part: {plan:?}"
            );
        });
        pool.get()
            .unwrap()
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
