//! Segments for the API, the console and the worker: saving and checking criteria, the
//! live count and sample, the members as a client list, entries and exits, and the
//! worker's rounds that keep memberships.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Scope;
use crate::db::{self, DbConn, Pool};
use crate::domain::clients::service::Access;
use crate::domain::segments::{self, criteria, Catalog, Input, SegmentRow};
use crate::error::{AppError, AppResult};

/// A segment as the API and the console read it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Segment)]
pub struct SegmentView {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The criteria tree: `{"match": "all"|"any", "conditions": [condition or group, …]}`;
    /// a condition is `{"field", "op", "value"}` (see the console's segment builder or the
    /// API reference for fields and operators).
    #[schema(value_type = Object)]
    pub criteria: Value,
    /// The criteria in words.
    pub summary: String,
    /// Members at the last evaluation (the live count is `GET /api/segments/{id}/count`).
    pub member_count: i64,
    /// When the memberships were last evaluated in full; null while the first one runs.
    pub evaluated_at: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

fn ts(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn view(row: &SegmentRow, catalog: &Catalog) -> SegmentView {
    let tree = row.tree();
    SegmentView {
        id: row.id.clone(),
        name: row.name.clone(),
        description: row.description.clone(),
        summary: catalog.describe(&tree),
        criteria: tree,
        member_count: row.member_count,
        evaluated_at: row.evaluated_at.map(ts),
        version: row.version,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
    }
}

/// A segment's fields from the API's JSON or the builder's form.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SegmentInput)]
pub struct SegmentInput {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The criteria tree (see `Segment.criteria`).
    #[schema(value_type = Object)]
    pub criteria: Option<Value>,
}

impl From<SegmentInput> for Input {
    fn from(i: SegmentInput) -> Self {
        Input {
            name: i.name,
            description: i.description,
            criteria: i.criteria,
        }
    }
}

/// A client in a preview's sample.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SampleClient {
    pub id: String,
    pub name: String,
    pub status: String,
}

/// What criteria match right now: how many clients (within the reader's reach) and a few
/// of them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SegmentPreview)]
pub struct Preview {
    pub count: i64,
    pub sample: Vec<SampleClient>,
    /// The criteria in words.
    pub summary: String,
}

/// Refuses criteria on sensitive custom fields to a reader who may not see them: a count
/// would tell their values.
fn check_sensitive(catalog: &Catalog, tree: &Value, access: &Access) -> AppResult<()> {
    if access.read_sensitive {
        return Ok(());
    }
    fn keys(v: &Value, out: &mut Vec<String>) {
        if let Some(items) = v.get("conditions").and_then(Value::as_array) {
            items.iter().for_each(|i| keys(i, out));
        } else if let Some(f) = v["field"]
            .as_str()
            .and_then(|f| f.strip_prefix("customFields."))
        {
            out.push(f.to_string());
        }
    }
    let mut used = Vec::new();
    keys(tree, &mut used);
    if let Some(d) = catalog
        .defs
        .iter()
        .find(|d| d.sensitive && used.contains(&d.field_key))
    {
        return Err(AppError::Forbidden(format!(
            "Your role may not filter by the sensitive field {:?}.",
            d.label
        )));
    }
    Ok(())
}

fn reach(access: &Access) -> Option<String> {
    (!access.oversee).then(|| access.user_id.clone())
}

pub async fn list(scope: &Scope) -> AppResult<Vec<SegmentView>> {
    scope.require("segment", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let catalog = Catalog::load(c, &org)?;
            Ok(segments::list(c, &org)?
                .iter()
                .map(|r| view(r, &catalog))
                .collect())
        })
        .await
}

pub async fn get(scope: &Scope, id: String) -> AppResult<SegmentView> {
    scope.require("segment", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let row = segments::get(c, &org, &id)?;
            let catalog = Catalog::load(c, &org)?;
            Ok(view(&row, &catalog))
        })
        .await
}

pub async fn create(scope: &Scope, input: SegmentInput) -> AppResult<SegmentView> {
    scope.require("segment", "write")?;
    let ctx = scope.audit.clone();
    let access = scope.access("client");
    scope
        .read(move |c| {
            let catalog = Catalog::load(c, &ctx.org_id)?;
            if let Some(t) = &input.criteria {
                check_sensitive(&catalog, t, &access)?;
            }
            let row = segments::create(c, &ctx, &input.into())?;
            let catalog = Catalog::load(c, &ctx.org_id)?;
            Ok(view(&row, &catalog))
        })
        .await
}

pub async fn update(
    scope: &Scope,
    id: String,
    input: SegmentInput,
    expected: Option<i64>,
) -> AppResult<SegmentView> {
    scope.require("segment", "write")?;
    let ctx = scope.audit.clone();
    let access = scope.access("client");
    scope
        .read(move |c| {
            let catalog = Catalog::load(c, &ctx.org_id)?;
            if let Some(t) = &input.criteria {
                check_sensitive(&catalog, t, &access)?;
            }
            let row = segments::update(c, &ctx, &id, &input.into(), expected)?;
            let catalog = Catalog::load(c, &ctx.org_id)?;
            Ok(view(&row, &catalog))
        })
        .await
}

pub async fn delete(scope: &Scope, id: String) -> AppResult<()> {
    scope.require("segment", "delete")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| segments::delete(c, &ctx, &id)).await
}

/// Clients in a preview's sample.
const SAMPLE: i64 = 5;

fn preview_in(
    c: &mut DbConn,
    org: &str,
    catalog: &Catalog,
    tree: &Value,
    this: Option<&str>,
    access: &Access,
) -> AppResult<Preview> {
    check_sensitive(catalog, tree, access)?;
    let compiled = catalog
        .compile(tree, this)
        .map_err(|e| AppError::Validation("The criteria are not valid.".into(), e))?;
    let mut p = segments::params(compiled, reach(access));
    let count = segments::count(c, org, &p)?;
    p.limit = SAMPLE;
    let sample = crate::domain::clients::query::list(c, org, &p)?
        .into_iter()
        .map(|r| SampleClient {
            id: r.id,
            name: r.display_name,
            status: r.status,
        })
        .collect();
    Ok(Preview {
        count,
        sample,
        summary: catalog.describe(tree),
    })
}

/// The live count and a sample for criteria being built (not saved).
pub async fn preview(scope: &Scope, tree: Value, this: Option<String>) -> AppResult<Preview> {
    scope.require("segment", "read")?;
    scope.require("client", "read")?;
    let org = scope.org_id.clone();
    let access = scope.access("client");
    scope
        .read(move |c| {
            let catalog = Catalog::load(c, &org)?;
            preview_in(c, &org, &catalog, &tree, this.as_deref(), &access)
        })
        .await
}

/// A saved segment's live count and sample.
pub async fn count(scope: &Scope, id: String) -> AppResult<Preview> {
    scope.require("segment", "read")?;
    scope.require("client", "read")?;
    let org = scope.org_id.clone();
    let access = scope.access("client");
    scope
        .read(move |c| {
            let row = segments::get(c, &org, &id)?;
            let catalog = Catalog::load(c, &org)?;
            // The saved criteria were checked when saved; a reader only sees the count.
            let all = Access {
                read_sensitive: true,
                ..access
            };
            preview_in(c, &org, &catalog, &row.tree(), Some(&row.id), &all)
        })
        .await
}

/// The segment's live members as a client list page (the list's paging, sort and other
/// filters apply on top).
pub async fn clients(
    scope: &Scope,
    id: String,
    mut pairs: Vec<(String, String)>,
) -> AppResult<super::clients::Page> {
    scope.require("segment", "read")?;
    let org = scope.org_id.clone();
    let check = id.clone();
    scope
        .read(move |c| segments::get(c, &org, &check).map(drop))
        .await?;
    pairs.retain(|(k, _)| k != "filter[segment]");
    pairs.push(("filter[segment]".into(), id));
    super::clients::list(scope, pairs, false).await
}

/// An entry or exit as the API and the console show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SegmentEvent)]
pub struct EventView {
    pub id: String,
    pub segment_id: String,
    pub segment_name: String,
    pub client_id: String,
    pub client_name: String,
    /// `entered` or `left`.
    pub kind: String,
    pub at: String,
}

/// Entries and exits newest first, of a segment or of a client, within the reader's reach.
pub async fn events(
    scope: &Scope,
    segment: Option<String>,
    client: Option<String>,
    before: Option<String>,
    limit: i64,
) -> AppResult<Vec<EventView>> {
    scope.require("segment", "read")?;
    let org = scope.org_id.clone();
    let access = scope.access("client");
    scope
        .read(move |c| {
            use crate::db::schema::{clients, segments as s};
            use diesel::prelude::*;
            if let Some(id) = &segment {
                segments::get(c, &org, id)?;
            }
            let rows = segments::events(
                c,
                &org,
                segment.as_deref(),
                client.as_deref(),
                before.as_deref(),
                limit.clamp(1, 200),
            )?;
            let ids: Vec<String> = rows.iter().map(|r| r.client_id.clone()).collect();
            let mut q = clients::table
                .filter(clients::organization_id.eq(&org))
                .filter(clients::id.eq_any(&ids))
                .select((clients::id, clients::display_name))
                .into_boxed();
            if !access.oversee {
                q = q.filter(clients::assigned_to.eq(access.user_id.clone()));
            }
            let names: std::collections::HashMap<String, String> =
                q.load::<(String, String)>(c)?.into_iter().collect();
            let seg_ids: Vec<String> = rows.iter().map(|r| r.segment_id.clone()).collect();
            let seg_names: std::collections::HashMap<String, String> = s::table
                .filter(s::id.eq_any(&seg_ids))
                .select((s::id, s::name))
                .load::<(String, String)>(c)?
                .into_iter()
                .collect();
            Ok(rows
                .into_iter()
                .filter_map(|r| {
                    Some(EventView {
                        client_name: names.get(&r.client_id)?.clone(),
                        segment_name: seg_names.get(&r.segment_id).cloned().unwrap_or_default(),
                        id: r.id,
                        segment_id: r.segment_id,
                        client_id: r.client_id,
                        kind: r.kind,
                        at: ts(r.at),
                    })
                })
                .collect())
        })
        .await
}

/// The size at each evaluated day, oldest first.
pub async fn sizes(scope: &Scope, id: String) -> AppResult<Vec<(chrono::NaiveDate, i64)>> {
    scope.require("segment", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            segments::get(c, &org, &id)?;
            Ok(segments::sizes(c, &id)?)
        })
        .await
}

/// Asks for a full evaluation now (after an import, or to see a date condition move).
pub async fn refresh(scope: &Scope, id: String) -> AppResult<(i64, i64)> {
    scope.require("segment", "write")?;
    let org = scope.org_id.clone();
    let pool = scope.pool.clone();
    let check = id.clone();
    scope
        .read(move |c| segments::get(c, &org, &check).map(drop))
        .await?;
    let org = scope.org_id.clone();
    db::run_unbounded(&pool, move |c| segments::evaluate(c, &org, &id)).await
}

/// Every field and operator the builder offers, for this organization.
pub async fn catalog(scope: &Scope) -> AppResult<Catalog> {
    scope.require("segment", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| Catalog::load(c, &org)).await
}

/// How often every segment is evaluated in full (`RAPPORT_SEGMENT_REFRESH_MINUTES`,
/// default 60): conditions on dates move with the clock, without any write.
pub fn refresh_every() -> chrono::Duration {
    let minutes = std::env::var("RAPPORT_SEGMENT_REFRESH_MINUTES")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|m| (1..=10_080).contains(m))
        .unwrap_or(60);
    chrono::Duration::minutes(minutes)
}

/// One worker round: changed clients first (seconds matter there), then due full
/// evaluations. Answers how much it did.
pub async fn run_due(pool: &Pool) -> AppResult<usize> {
    let mut done = db::run(pool, segments::drain_dirty).await?;
    let due = db::run(pool, |c| Ok(segments::due(c, refresh_every())?)).await?;
    for (org, id) in due {
        let (o, i) = (org.clone(), id.clone());
        match db::run_unbounded(pool, move |c| segments::evaluate(c, &o, &i)).await {
            Ok(_) => done += 1,
            Err(e) => tracing::warn!(segment = %id, error = %e, "segment evaluation failed"),
        }
    }
    Ok(done)
}

/// The criteria a builder form describes, for the console.
pub fn labels_for(catalog: &Catalog) -> Vec<criteria::FieldInfo> {
    criteria::fields(&catalog.defs)
}

/// One part of a segment's composition.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// The stored value (null: not filled in).
    pub value: Option<String>,
    /// How it reads (an owner's name, a status's label).
    pub label: String,
    pub clients: i64,
}

/// What a segment's members are now, by `status`, `type`, `owner`, `country` or `source`
/// (largest first), or by band of `engagement`, `churnRisk` or `lifetimeValue` (low to
/// high), within the caller's reach.
pub async fn composition(scope: &Scope, id: String, by: String) -> AppResult<Vec<Part>> {
    scope.require("segment", "read")?;
    scope.require("client", "read")?;
    if ![
        "status",
        "type",
        "owner",
        "country",
        "source",
        "engagement",
        "churnRisk",
        "lifetimeValue",
    ]
    .contains(&by.as_str())
    {
        return Err(AppError::invalid(
            "by",
            "Use status, type, owner, country, source, engagement, churnRisk or lifetimeValue.",
        ));
    }
    let org = scope.org_id.clone();
    let access = scope.access("client");
    scope
        .read(move |c| {
            let row = segments::get(c, &org, &id)?;
            let catalog = Catalog::load(c, &org)?;
            let compiled = catalog.compile(&row.tree(), Some(&row.id)).map_err(|e| {
                AppError::Validation("The segment cannot be evaluated any more.".into(), e)
            })?;
            let p = segments::params(compiled, reach(&access));
            Ok(
                crate::domain::clients::query::composition(c, &org, &p, &by)?
                    .into_iter()
                    .map(|(value, clients)| Part {
                        label: match (&value, by.as_str()) {
                            (None, "owner") => "Unassigned".into(),
                            (None, "engagement" | "churnRisk" | "lifetimeValue") => {
                                "Not scored yet".into()
                            }
                            (None, _) => "Not filled in".into(),
                            (Some(v), "owner") => catalog
                                .users
                                .get(v)
                                .cloned()
                                .unwrap_or_else(|| "Former member".into()),
                            (Some(v), "status" | "type") => {
                                let mut l = v.replace('_', " ");
                                if let Some(f) = l.get(..1).map(str::to_uppercase) {
                                    l.replace_range(..1, &f);
                                }
                                l
                            }
                            (Some(v), _) => v.clone(),
                        },
                        value,
                        clients,
                    })
                    .collect(),
            )
        })
        .await
}
