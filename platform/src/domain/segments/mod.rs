//! Segments (`SegmentationService`): named, dynamic sets of clients defined by criteria.
//!
//! A segment is evaluated live wherever clients are listed (`filter[segment]=<id>`: the
//! client list, its exports, bulk-send audiences), so what a user sees always matches the
//! criteria. Membership is also *kept* (`segment_members`): a worker re-evaluates the
//! clients whose data changed within seconds (`segment_dirty`, filled by the audit hook)
//! and every segment in full periodically (dates move on without any write), and each
//! difference is recorded as an entry or exit event (`segment_events`) that workflows and
//! webhooks follow. The first evaluation of a new or changed definition is a baseline:
//! it fills the members without events, since nobody's data changed.

pub mod criteria;

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::db::schema::{
    pipeline_stages, segment_dirty, segment_events, segment_members, segment_sizes, segments,
};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::clients::query::{self, ListParams};
use crate::domain::custom_fields::FieldRow;
use crate::error::{AppError, AppResult, FieldError};
use criteria::Compiled;

/// Segments per organization.
pub const MAX_SEGMENTS: i64 = 200;
pub const MAX_NAME: usize = 120;
pub const MAX_DESCRIPTION: usize = 1000;
/// Clients compared per step of a full evaluation (one transaction each).
const PAGE: i64 = 5_000;
/// Changed clients taken per round of the incremental evaluation.
const DIRTY_BATCH: i64 = 500;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = segments)]
pub struct SegmentRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub description: String,
    pub criteria: String,
    pub version: i64,
    pub member_count: i64,
    pub evaluated_at: Option<NaiveDateTime>,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl SegmentRow {
    pub fn tree(&self) -> Value {
        serde_json::from_str(&self.criteria).unwrap_or_else(|_| criteria::everyone())
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = segment_members)]
struct MemberRow {
    segment_id: String,
    client_id: String,
    organization_id: String,
    entered_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = segment_events)]
pub struct EventRow {
    pub id: String,
    pub organization_id: String,
    pub segment_id: String,
    pub client_id: String,
    pub kind: String,
    pub at: NaiveDateTime,
}

/// What criteria may refer to in one organization, read once per check.
pub struct Catalog {
    pub defs: Vec<FieldRow>,
    pub currency: String,
    tags: HashMap<String, String>,
    pub tag_names: HashMap<String, String>,
    pub users: HashMap<String, String>,
    pub stages: HashMap<String, String>,
    pub segments: HashMap<String, (String, Value)>,
}

impl Catalog {
    pub fn load(c: &mut DbConn, org: &str) -> AppResult<Catalog> {
        let defs = crate::domain::custom_fields::store::list(c, org, "client", false)?;
        let currency = crate::domain::orgs::store::find_org(c, org)?
            .map(|o| o.default_currency)
            .unwrap_or_else(|| "EUR".into());
        let mut tags = HashMap::new();
        let mut tag_names = HashMap::new();
        for t in crate::domain::clients::store::list_tags(c, org)? {
            tags.insert(t.name.to_lowercase(), t.id.clone());
            tags.insert(t.id.clone(), t.id.clone());
            tag_names.insert(t.id, t.name);
        }
        let all = crate::domain::orgs::store::MemberFilter {
            limit: 10_000,
            ..Default::default()
        };
        let users = crate::domain::orgs::store::list_members(c, org, &all)?
            .into_iter()
            .map(|m| (m.user.id, m.user.name))
            .collect();
        let stages = pipeline_stages::table
            .inner_join(
                crate::db::schema::pipelines::table
                    .on(crate::db::schema::pipelines::id.eq(pipeline_stages::pipeline_id)),
            )
            .filter(crate::db::schema::pipelines::organization_id.eq(org))
            .select((
                pipeline_stages::id,
                crate::db::schema::pipelines::name,
                pipeline_stages::name,
            ))
            .load::<(String, String, String)>(c)?
            .into_iter()
            .map(|(id, p, s)| (id, format!("{p} / {s}")))
            .collect();
        let segments = segments::table
            .filter(segments::organization_id.eq(org))
            .select((segments::id, segments::name, segments::criteria))
            .load::<(String, String, String)>(c)?
            .into_iter()
            .map(|(id, name, tree)| {
                let tree = serde_json::from_str(&tree).unwrap_or_else(|_| criteria::everyone());
                (id, (name, tree))
            })
            .collect();
        Ok(Catalog {
            defs,
            currency,
            tags,
            tag_names,
            users,
            stages,
            segments,
        })
    }

    /// Compiles `tree`; `this` is the segment it belongs to (a segment cannot include itself).
    pub fn compile(&self, tree: &Value, this: Option<&str>) -> Result<Compiled, Vec<FieldError>> {
        self.compile_at(tree, this, 0)
    }

    fn compile_at(
        &self,
        tree: &Value,
        this: Option<&str>,
        chain: usize,
    ) -> Result<Compiled, Vec<FieldError>> {
        let tag = |name: &str| self.tags.get(&name.to_lowercase()).cloned();
        let user = |id: &str| self.users.contains_key(id);
        let stage = |id: &str| self.stages.contains_key(id);
        let segment = |id: &str, depth: usize| -> Result<Compiled, String> {
            if Some(id) == this {
                return Err("A segment cannot include itself.".into());
            }
            let Some((name, inner)) = self.segments.get(id) else {
                return Err(format!("There is no segment {id:?}."));
            };
            if depth > criteria::MAX_SEGMENT_CHAIN {
                return Err(format!(
                    "Segments refer to each other more than {} deep (or in a circle).",
                    criteria::MAX_SEGMENT_CHAIN
                ));
            }
            self.compile_at(inner, this, depth).map_err(|e| {
                format!(
                    "Segment {name:?} cannot be evaluated: {}",
                    e.first().map(|f| f.message.as_str()).unwrap_or("")
                )
            })
        };
        let cx = criteria::Context {
            defs: &self.defs,
            default_currency: self.currency.clone(),
            tag: &tag,
            user: &user,
            stage: &stage,
            segment: &segment,
            chain,
            now: now(),
        };
        criteria::compile(tree, &cx)
    }

    /// A label for a field key, or for `field=value` (a tag's, a user's, a stage's or a
    /// segment's name).
    pub fn label(&self, key: &str) -> String {
        if let Some((field, value)) = key.split_once('=') {
            let found = match field {
                "tags" => self.tag_names.get(value).cloned().or_else(|| {
                    self.tags
                        .get(&value.to_lowercase())
                        .and_then(|id| self.tag_names.get(id))
                        .cloned()
                }),
                "assignedTo" => self.users.get(value).cloned(),
                "deals.stage" => self.stages.get(value).cloned(),
                "segment" => self.segments.get(value).map(|s| s.0.clone()),
                _ => None,
            };
            return found.unwrap_or_else(|| value.to_string());
        }
        criteria::fields(&self.defs)
            .into_iter()
            .find(|f| f.key == key)
            .map(|f| f.label)
            .unwrap_or_else(|| key.to_string())
    }

    pub fn describe(&self, tree: &Value) -> String {
        let s = criteria::describe(tree, &|k| self.label(k));
        if s.is_empty() {
            "Every client".into()
        } else {
            s
        }
    }
}

fn invalid(errors: Vec<FieldError>) -> AppError {
    AppError::Validation("The segment is not valid.".into(), errors)
}

/// A segment's compiled criteria, for `filter[segment]=<id>`.
pub fn compiled(c: &mut DbConn, org: &str, id: &str) -> AppResult<Option<Compiled>> {
    let Some(row) = find(c, org, id)? else {
        return Ok(None);
    };
    let catalog = Catalog::load(c, org)?;
    catalog
        .compile(&row.tree(), Some(&row.id))
        .map(Some)
        .map_err(|e| {
            AppError::Validation(
                format!(
                    "Segment {:?} cannot be evaluated any more: {}",
                    row.name,
                    e.first().map(|f| f.message.as_str()).unwrap_or("")
                ),
                e,
            )
        })
}

pub fn find(c: &mut DbConn, org: &str, id: &str) -> QueryResult<Option<SegmentRow>> {
    segments::table
        .filter(segments::organization_id.eq(org))
        .filter(segments::id.eq(id))
        .select(SegmentRow::as_select())
        .first(c)
        .optional()
}

pub fn get(c: &mut DbConn, org: &str, id: &str) -> AppResult<SegmentRow> {
    find(c, org, id)?.ok_or(AppError::NotFound)
}

pub fn list(c: &mut DbConn, org: &str) -> QueryResult<Vec<SegmentRow>> {
    segments::table
        .filter(segments::organization_id.eq(org))
        .select(SegmentRow::as_select())
        .order((segments::name.asc(), segments::id.asc()))
        .load(c)
}

/// The list parameters that narrow clients to a compiled segment, within a reader's reach.
pub fn params(compiled: Compiled, only_assigned_to: Option<String>) -> ListParams {
    ListParams {
        criteria: vec![compiled],
        only_assigned_to,
        limit: 50,
        ..Default::default()
    }
}

/// How many live clients match, exactly (one grouped SQL count).
pub fn count(c: &mut DbConn, org: &str, p: &ListParams) -> QueryResult<i64> {
    query::count_exact(c, org, p)
}

/// A segment as it is written.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub name: Option<String>,
    pub description: Option<String>,
    pub criteria: Option<Value>,
}

fn checked(
    c: &mut DbConn,
    org: &str,
    this: Option<&str>,
    input: &Input,
) -> AppResult<(String, String, Value)> {
    let mut errors = Vec::new();
    let name = input.name.as_deref().unwrap_or_default().trim().to_string();
    if name.is_empty() {
        errors.push(FieldError::new("name", "Give the segment a name."));
    } else if name.chars().count() > MAX_NAME {
        errors.push(FieldError::new(
            "name",
            format!("Use at most {MAX_NAME} characters."),
        ));
    } else {
        let taken: i64 = segments::table
            .filter(segments::organization_id.eq(org))
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("lower(name) = ")
                    .bind::<diesel::sql_types::Text, _>(name.to_lowercase()),
            )
            .filter(segments::id.ne(this.unwrap_or_default()))
            .count()
            .get_result(c)?;
        if taken > 0 {
            errors.push(FieldError::new("name", "Another segment has this name."));
        }
    }
    let description = input
        .description
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_string();
    if description.chars().count() > MAX_DESCRIPTION {
        errors.push(FieldError::new(
            "description",
            format!("Use at most {MAX_DESCRIPTION} characters."),
        ));
    }
    let tree = match &input.criteria {
        Some(t) => t.clone(),
        None => {
            errors.push(FieldError::new("criteria", "Give the criteria."));
            criteria::everyone()
        }
    };
    if tree.to_string().len() > 20_000 {
        errors.push(FieldError::new("criteria", "The criteria are too long."));
    } else if input.criteria.is_some() {
        let catalog = Catalog::load(c, org)?;
        if let Err(e) = catalog.compile(&tree, this) {
            errors.extend(e);
        }
    }
    if errors.is_empty() {
        Ok((name, description, tree))
    } else {
        Err(invalid(errors))
    }
}

fn unique_name(e: diesel::result::Error) -> AppError {
    match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => AppError::invalid("name", "Another segment has this name."),
        e => e.into(),
    }
}

pub fn create(c: &mut DbConn, ctx: &AuditContext, input: &Input) -> AppResult<SegmentRow> {
    let org = ctx.org_id.as_str();
    let n: i64 = segments::table
        .filter(segments::organization_id.eq(org))
        .count()
        .get_result(c)?;
    if n >= MAX_SEGMENTS {
        return Err(AppError::Conflict(format!(
            "An organization has at most {MAX_SEGMENTS} segments; delete one first."
        )));
    }
    let (name, description, tree) = checked(c, org, None, input)?;
    let at = now();
    let row = SegmentRow {
        id: new_id(),
        organization_id: org.to_string(),
        name,
        description,
        criteria: tree.to_string(),
        version: 1,
        member_count: 0,
        evaluated_at: None,
        created_by: ctx.actor_user_id.clone(),
        created_at: at,
        updated_at: at,
    };
    crate::db::transaction(c, |c| {
        diesel::insert_into(segments::table)
            .values(&row)
            .execute(c)
            .map_err(unique_name)?;
        audit::record(
            c,
            ctx,
            "segment.create",
            "segment",
            Some(&row.id),
            json!({"name": row.name, "criteria": tree}),
        )?;
        Ok(row)
    })
}

/// Replaces a segment's name, description and criteria (`PUT`); `expected` is the version
/// the writer read (`If-Match`), refused with 412 when someone saved in between.
pub fn update(
    c: &mut DbConn,
    ctx: &AuditContext,
    id: &str,
    input: &Input,
    expected: Option<i64>,
) -> AppResult<SegmentRow> {
    let org = ctx.org_id.as_str();
    let old = get(c, org, id)?;
    if expected.is_some_and(|v| v != old.version) {
        return Err(AppError::PreconditionFailed(
            "Someone changed this segment since you opened it; reload it and apply your change again.".into(),
        ));
    }
    let (name, description, tree) = checked(c, org, Some(id), input)?;
    let changed_criteria = tree != old.tree();
    crate::db::transaction(c, |c| {
        let n = diesel::update(
            segments::table
                .filter(segments::id.eq(id))
                .filter(segments::version.eq(old.version)),
        )
        .set((
            segments::name.eq(&name),
            segments::description.eq(&description),
            segments::criteria.eq(tree.to_string()),
            segments::version.eq(old.version + 1),
            segments::updated_at.eq(now()),
        ))
        .execute(c)
        .map_err(unique_name)?;
        if n == 0 {
            return Err(AppError::PreconditionFailed(
                "Someone changed this segment at the same time; reload it and apply your change again.".into(),
            ));
        }
        if changed_criteria {
            // A new definition starts from a new baseline (no entry or exit events).
            diesel::update(segments::table.filter(segments::id.eq(id)))
                .set(segments::evaluated_at.eq(None::<NaiveDateTime>))
                .execute(c)?;
        }
        let mut changes = serde_json::Map::new();
        if name != old.name {
            changes.insert("name".into(), json!([old.name, name]));
        }
        if changed_criteria {
            changes.insert("criteria".into(), json!([old.tree(), tree]));
        }
        audit::record(
            c,
            ctx,
            "segment.update",
            "segment",
            Some(id),
            Value::Object(changes),
        )?;
        Ok(())
    })?;
    get(c, org, id)
}

/// Deletes a segment, its members and its history; refused while another segment or a
/// workflow refers to it.
pub fn delete(c: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<()> {
    let org = ctx.org_id.as_str();
    let row = get(c, org, id)?;
    let users: Vec<String> = list(c, org)?
        .into_iter()
        .filter(|s| {
            s.id != id
                && criteria::referenced_segments(&s.tree())
                    .iter()
                    .any(|r| r == id)
        })
        .map(|s| s.name)
        .collect();
    if !users.is_empty() {
        return Err(AppError::Conflict(format!(
            "Segment {:?} is used by segment {}; change that first.",
            row.name,
            users
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let flows = crate::domain::workflows::using_segment(c, org, id)?;
    if !flows.is_empty() {
        return Err(AppError::Conflict(format!(
            "Segment {:?} starts workflow {}; change that first.",
            row.name,
            flows
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    crate::db::transaction(c, |c| {
        diesel::delete(segment_events::table.filter(segment_events::segment_id.eq(id)))
            .execute(c)?;
        diesel::delete(segment_members::table.filter(segment_members::segment_id.eq(id)))
            .execute(c)?;
        diesel::delete(segment_sizes::table.filter(segment_sizes::segment_id.eq(id))).execute(c)?;
        diesel::delete(segments::table.filter(segments::id.eq(id))).execute(c)?;
        audit::record(
            c,
            ctx,
            "segment.delete",
            "segment",
            Some(id),
            json!({"name": row.name}),
        )?;
        Ok(())
    })
}

/// Entries and exits, newest first, of a segment or of a client.
pub fn events(
    c: &mut DbConn,
    org: &str,
    segment: Option<&str>,
    client: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    let mut q = segment_events::table
        .filter(segment_events::organization_id.eq(org))
        .select(EventRow::as_select())
        .into_boxed();
    if let Some(s) = segment {
        q = q.filter(segment_events::segment_id.eq(s.to_string()));
    }
    if let Some(cl) = client {
        q = q.filter(segment_events::client_id.eq(cl.to_string()));
    }
    if let Some(b) = before {
        q = q.filter(segment_events::id.lt(b.to_string()));
    }
    q.order(segment_events::id.desc()).limit(limit).load(c)
}

/// The size at the end of each day it was evaluated, oldest first (up to a year).
pub fn sizes(c: &mut DbConn, id: &str) -> QueryResult<Vec<(chrono::NaiveDate, i64)>> {
    let mut rows: Vec<(chrono::NaiveDate, i64)> = segment_sizes::table
        .filter(segment_sizes::segment_id.eq(id))
        .select((segment_sizes::day, segment_sizes::members))
        .order(segment_sizes::day.desc())
        .limit(366)
        .load(c)?;
    rows.reverse();
    Ok(rows)
}

/// Segments the client is a member of (at their last evaluation).
pub fn of_client(c: &mut DbConn, org: &str, client: &str) -> QueryResult<Vec<(String, String)>> {
    segment_members::table
        .inner_join(segments::table.on(segments::id.eq(segment_members::segment_id)))
        .filter(segment_members::client_id.eq(client))
        .filter(segments::organization_id.eq(org))
        .select((segments::id, segments::name))
        .order(segments::name.asc())
        .load(c)
}

// Keeping membership

/// Notes that a record's client may have changed segments: called in the transaction of
/// every audited change. One indexed read when the organization has no segments.
pub fn mark_dirty(
    c: &mut DbConn,
    org: &str,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
) -> QueryResult<()> {
    if action.starts_with("segment.") || action.starts_with("import.") {
        return Ok(());
    }
    let Some(id) = resource_id else {
        return Ok(());
    };
    if !matches!(
        resource_type,
        "client" | "opportunity" | "interaction" | "contract"
    ) {
        return Ok(());
    }
    let any: Option<String> = crate::domain::memo::read(format!("segments {org}"), || {
        segments::table
            .filter(segments::organization_id.eq(org))
            .select(segments::id)
            .first(c)
            .optional()
    })?;
    if any.is_none() {
        return Ok(());
    }
    let Some(client) = crate::domain::workflows::client_of(c, org, resource_type, id)? else {
        return Ok(());
    };
    diesel::insert_into(segment_dirty::table)
        .values((
            segment_dirty::id.eq(new_id()),
            segment_dirty::organization_id.eq(org),
            segment_dirty::client_id.eq(client),
        ))
        .execute(c)?;
    Ok(())
}

/// Applies one difference: members in, members out, with their events (unless `baseline`).
fn apply(
    c: &mut DbConn,
    seg: &SegmentRow,
    entered: &[String],
    left: &[String],
    baseline: bool,
) -> QueryResult<()> {
    let at = now();
    for chunk in entered.chunks(500) {
        let rows: Vec<MemberRow> = chunk
            .iter()
            .map(|client| MemberRow {
                segment_id: seg.id.clone(),
                client_id: client.clone(),
                organization_id: seg.organization_id.clone(),
                entered_at: at,
            })
            .collect();
        // why: MultiConnection compiles no multi-row insert; each backend's connection does.
        match c {
            DbConn::Sqlite(c) => diesel::insert_into(segment_members::table)
                .values(rows)
                .execute(c)?,
            DbConn::Postgresql(c) => diesel::insert_into(segment_members::table)
                .values(rows)
                .execute(c)?,
        };
    }
    for chunk in left.chunks(500) {
        diesel::delete(
            segment_members::table
                .filter(segment_members::segment_id.eq(&seg.id))
                .filter(segment_members::client_id.eq_any(chunk)),
        )
        .execute(c)?;
    }
    if baseline {
        return Ok(());
    }
    for (kind, ids) in [("entered", entered), ("left", left)] {
        for client in ids {
            diesel::insert_into(segment_events::table)
                .values((
                    segment_events::id.eq(new_id()),
                    segment_events::organization_id.eq(&seg.organization_id),
                    segment_events::segment_id.eq(&seg.id),
                    segment_events::client_id.eq(client),
                    segment_events::kind.eq(kind),
                    segment_events::at.eq(at),
                ))
                .execute(c)?;
            let changes = json!({"segment": {"id": seg.id, "name": seg.name}});
            let action = if kind == "entered" {
                "segment.enter"
            } else {
                "segment.leave"
            };
            crate::domain::webhooks::emit(
                c,
                &seg.organization_id,
                action,
                "client",
                Some(client),
                &changes,
            )?;
            crate::domain::workflows::fire(
                c,
                &seg.organization_id,
                &format!("segment.{kind}"),
                "client",
                client,
                Some(client),
                &changes,
            )?;
        }
    }
    Ok(())
}

fn adjust_count(c: &mut DbConn, id: &str, delta: i64) -> QueryResult<()> {
    if delta == 0 {
        return Ok(());
    }
    diesel::update(segments::table.filter(segments::id.eq(id)))
        .set(segments::member_count.eq(segments::member_count + delta))
        .execute(c)?;
    Ok(())
}

/// Re-evaluates the changed clients' memberships (a batch); answers how many it took.
pub fn drain_dirty(c: &mut DbConn) -> AppResult<usize> {
    crate::db::transaction(c, |c| {
        let rows: Vec<(String, String, String)> = segment_dirty::table
            .select((
                segment_dirty::id,
                segment_dirty::organization_id,
                segment_dirty::client_id,
            ))
            .order(segment_dirty::id.asc())
            .limit(DIRTY_BATCH)
            .load(c)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut by_org: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (_, org, client) in &rows {
            by_org
                .entry(org.clone())
                .or_default()
                .insert(client.clone());
        }
        for (org, clients) in by_org {
            let clients: Vec<String> = clients.into_iter().collect();
            let catalog = Catalog::load(c, &org)?;
            // Only baselined segments: a pending full evaluation covers the rest.
            let segs: Vec<SegmentRow> = list(c, &org)?
                .into_iter()
                .filter(|s| s.evaluated_at.is_some())
                .collect();
            for seg in segs {
                let Ok(compiled) = catalog.compile(&seg.tree(), Some(&seg.id)) else {
                    continue;
                };
                // why: holds the segment's row (PostgreSQL) until this round commits, and
                // waits for a full evaluation's page in progress, so the two never read
                // and write the same members across each other.
                diesel::update(segments::table.filter(segments::id.eq(&seg.id)))
                    .set(segments::member_count.eq(segments::member_count))
                    .execute(c)?;
                let mut p = params(compiled, None);
                p.only_ids = Some(clients.clone());
                let now_in: HashSet<String> =
                    query::audience_page(c, &org, &p, None, clients.len() as i64)?
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect();
                let was_in: HashSet<String> = segment_members::table
                    .filter(segment_members::segment_id.eq(&seg.id))
                    .filter(segment_members::client_id.eq_any(&clients))
                    .select(segment_members::client_id)
                    .load::<String>(c)?
                    .into_iter()
                    .collect();
                let entered: Vec<String> = now_in.difference(&was_in).cloned().collect();
                let left: Vec<String> = was_in.difference(&now_in).cloned().collect();
                apply(c, &seg, &entered, &left, false)?;
                adjust_count(c, &seg.id, entered.len() as i64 - left.len() as i64)?;
            }
        }
        let ids: Vec<String> = rows.into_iter().map(|(id, _, _)| id).collect();
        diesel::delete(segment_dirty::table.filter(segment_dirty::id.eq_any(&ids))).execute(c)?;
        Ok(ids.len())
    })
}

/// How long a full evaluation holds its segment without renewing (it renews every page).
const LEASE_SECONDS: i64 = 600;

/// Takes the evaluation lease on segment `id`: the time it runs to, which also names the
/// holder (renewing and releasing match on it), or `None` while another holds it.
fn take_lease(c: &mut DbConn, id: &str) -> QueryResult<Option<NaiveDateTime>> {
    let at = now();
    let until = at + chrono::Duration::seconds(LEASE_SECONDS);
    let n = diesel::update(segments::table)
        .filter(segments::id.eq(id))
        .filter(
            segments::lease_until
                .is_null()
                .or(segments::lease_until.lt(at)),
        )
        .set(segments::lease_until.eq(Some(until)))
        .execute(c)?;
    Ok((n == 1).then_some(until))
}

/// Moves the lease on; a holder that lost it (it ran out and another took it) stops.
/// In the page's transaction this also locks the segment's row, so a dirty-client round
/// on the same segment waits for the page to be written.
fn renew_lease(c: &mut DbConn, id: &str, held: &mut NaiveDateTime) -> AppResult<()> {
    let until = now() + chrono::Duration::seconds(LEASE_SECONDS);
    let n = diesel::update(segments::table)
        .filter(segments::id.eq(id))
        .filter(segments::lease_until.eq(Some(*held)))
        .set(segments::lease_until.eq(Some(until)))
        .execute(c)?;
    if n == 0 {
        return Err(AppError::Conflict(
            "This segment's evaluation ran out of time and another took it over.".into(),
        ));
    }
    *held = until;
    Ok(())
}

/// Segments due a full evaluation: never evaluated (new or changed), or not since `every`,
/// and not being evaluated elsewhere right now.
pub fn due(c: &mut DbConn, every: chrono::Duration) -> QueryResult<Vec<(String, String)>> {
    let at = now();
    segments::table
        .filter(
            segments::evaluated_at
                .is_null()
                .or(segments::evaluated_at.lt(at - every)),
        )
        .filter(
            segments::lease_until
                .is_null()
                .or(segments::lease_until.lt(at)),
        )
        .select((segments::organization_id, segments::id))
        .order(segments::evaluated_at.asc())
        .limit(20)
        .load(c)
}

/// Evaluates one segment in full, page by page in client-id order, comparing the
/// matches with the kept members; answers (entered, left).
///
/// why the lease: two instances (or the hourly job and "Evaluate now") walking the same
/// segment would both see a client as new and record its entry, and fire its workflows,
/// twice. The second one is refused with a conflict instead.
pub fn evaluate(c: &mut DbConn, org: &str, id: &str) -> AppResult<(i64, i64)> {
    if find(c, org, id)?.is_none() {
        return Ok((0, 0));
    }
    let Some(mut held) = take_lease(c, id)? else {
        return Err(AppError::Conflict(
            "This segment is being evaluated right now; its members and counts update when \
             that finishes."
                .into(),
        ));
    };
    // Read again under the lease: another worker may have just finished it.
    let result = match find(c, org, id)? {
        Some(seg) => evaluate_leased(c, org, seg, &mut held),
        None => Ok((0, 0)),
    };
    let released = diesel::update(segments::table.filter(segments::id.eq(id)))
        .filter(segments::lease_until.eq(Some(held)))
        .set(segments::lease_until.eq(None::<NaiveDateTime>))
        .execute(c);
    // The evaluation's own error matters more than a failed release (the lease runs out).
    match (result, released) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e.into()),
        (Ok(r), Ok(_)) => Ok(r),
    }
}

fn evaluate_leased(
    c: &mut DbConn,
    org: &str,
    seg: SegmentRow,
    held: &mut NaiveDateTime,
) -> AppResult<(i64, i64)> {
    let id = seg.id.as_str();
    let baseline = seg.evaluated_at.is_none();
    let version = seg.version;
    let catalog = Catalog::load(c, org)?;
    let compiled = match catalog.compile(&seg.tree(), Some(&seg.id)) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(segment = %seg.id, error = ?e, "segment cannot be evaluated");
            // Not retried every round: the next periodic evaluation tries again.
            diesel::update(segments::table.filter(segments::id.eq(id)))
                .set(segments::evaluated_at.eq(Some(now())))
                .execute(c)?;
            return Ok((0, 0));
        }
    };
    let p = params(compiled, None);
    let (mut entered_n, mut left_n) = (0i64, 0i64);
    let mut after: Option<String> = None;
    loop {
        // The page is read and written in one transaction that holds the segment's row, so
        // a dirty-client round cannot change these members between the read and the write.
        let (e, l, last) =
            crate::db::transaction(c, |c| -> AppResult<(i64, i64, Option<String>)> {
                renew_lease(c, id, held)?;
                let page: Vec<String> = query::audience_page(c, org, &p, after.as_deref(), PAGE)?
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                let last = (page.len() as i64 == PAGE)
                    .then(|| page.last().cloned())
                    .flatten();
                let mut q = segment_members::table
                    .filter(segment_members::segment_id.eq(&seg.id))
                    .select(segment_members::client_id)
                    .into_boxed();
                if let Some(a) = &after {
                    q = q.filter(segment_members::client_id.gt(a.clone()));
                }
                if let Some(l) = &last {
                    q = q.filter(segment_members::client_id.le(l.clone()));
                }
                let was_in: HashSet<String> = q.load::<String>(c)?.into_iter().collect();
                let now_in: HashSet<String> = page.iter().cloned().collect();
                let entered: Vec<String> = now_in.difference(&was_in).cloned().collect();
                let left: Vec<String> = was_in.difference(&now_in).cloned().collect();
                apply(c, &seg, &entered, &left, baseline)?;
                Ok((entered.len() as i64, left.len() as i64, last))
            })?;
        entered_n += e;
        left_n += l;
        match last {
            Some(l) => after = Some(l),
            None => break,
        }
    }
    crate::db::transaction(c, |c| -> AppResult<()> {
        let members: i64 = segment_members::table
            .filter(segment_members::segment_id.eq(id))
            .count()
            .get_result(c)?;
        // A save in between starts a new baseline; this one must not mark it done.
        diesel::update(
            segments::table
                .filter(segments::id.eq(id))
                .filter(segments::version.eq(version)),
        )
        .set((
            segments::member_count.eq(members),
            segments::evaluated_at.eq(Some(now())),
        ))
        .execute(c)?;
        let today = now().date();
        diesel::delete(
            segment_sizes::table
                .filter(segment_sizes::segment_id.eq(id))
                .filter(segment_sizes::day.eq(today)),
        )
        .execute(c)?;
        diesel::insert_into(segment_sizes::table)
            .values((
                segment_sizes::segment_id.eq(id),
                segment_sizes::day.eq(today),
                segment_sizes::members.eq(members),
            ))
            .execute(c)?;
        Ok(())
    })?;
    Ok((entered_n, left_n))
}
