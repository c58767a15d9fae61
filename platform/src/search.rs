//! Search in the platform: what each record looks like to the index, the outbox every
//! change goes through, the indexer that drains it, and reindex.
//!
//! The database is the source of truth. A change writes a `search_outbox` row in its own
//! transaction (the stores do it, so no write path can forget); the indexer loads the
//! record as it is *now* and upserts or deletes it, so delivering a change twice or out of
//! order is harmless. While the index is down rows stay, retried with backoff; a restart
//! picks them up where they were.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
pub use rapport_search::{Document, Kind, Query, Results, SearchIndex};

use crate::config::{Config, SearchConfig};
use crate::db::schema::{clients, opportunities, pipeline_stages, search_outbox};
use crate::db::{now, DbConn, Pool};
use crate::domain::clients::{ClientRow, TagRow};
use crate::domain::outbox::{CLIENT, OPPORTUNITY, REINDEX};
use crate::domain::pipeline::OpportunityRow;
use crate::error::{AppError, AppResult};

pub type Index = Arc<dyn SearchIndex>;

/// Opens the configured backend.
pub async fn open(config: &Config) -> anyhow::Result<Index> {
    Ok(match &config.search {
        SearchConfig::Embedded => Arc::new(rapport_search::embedded::Embedded::open(
            &config.data_dir.join("search"),
        )?),
        SearchConfig::Memory => Arc::new(rapport_search::embedded::Embedded::in_memory()?),
        SearchConfig::Meilisearch { url, key, prefix } => {
            Arc::new(rapport_search::meili::Meili::connect(url, key.as_deref(), prefix).await?)
        }
    })
}

/// Queues a rebuild of every organization when the index held nothing as this process
/// opened it (a new data directory, a lost index, or one replaced because its layout
/// changed in an upgrade): the database is the source of truth, and until the indexer has
/// caught up searches find what it has reached. Returns the organizations queued.
pub fn rebuild_if_empty(conn: &mut DbConn, index: &Index) -> QueryResult<usize> {
    use crate::db::schema::organizations;
    if !index.started_empty() {
        return Ok(0);
    }
    let orgs: Vec<String> = organizations::table.select(organizations::id).load(conn)?;
    for org in &orgs {
        crate::domain::outbox::touch(conn, org, REINDEX, org)?;
    }
    Ok(orgs.len())
}

/// Drops queued whole-organization rebuilds (a rebuild is about to run anyway).
pub fn clear_reindex_requests(conn: &mut DbConn, org_id: &str) -> QueryResult<usize> {
    diesel::delete(
        search_outbox::table
            .filter(search_outbox::organization_id.eq(org_id))
            .filter(search_outbox::entity.eq(REINDEX)),
    )
    .execute(conn)
}

/// How far the index is behind: changes waiting and the age of the oldest.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lag {
    pub pending: i64,
    pub oldest_seconds: i64,
    pub last_error: Option<String>,
}

pub fn lag(conn: &mut DbConn, org_id: &str) -> QueryResult<Lag> {
    let mine = search_outbox::table.filter(search_outbox::organization_id.eq(org_id));
    let pending: i64 = mine.count().get_result(conn)?;
    if pending == 0 {
        return Ok(Lag::default());
    }
    let oldest: Option<NaiveDateTime> = mine
        .select(diesel::dsl::min(search_outbox::created_at))
        .first(conn)?;
    let last_error: Option<String> = mine
        .filter(search_outbox::last_error.is_not_null())
        .order(search_outbox::id.desc())
        .select(search_outbox::last_error)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten();
    Ok(Lag {
        pending,
        oldest_seconds: oldest.map_or(0, |o| (now() - o).num_seconds().max(0)),
        last_error,
    })
}

fn client_doc(c: &ClientRow, tags: &[TagRow], searchable: &[String]) -> Document {
    let custom = c.custom_map();
    let mut text: Vec<String> = [
        &c.first_name,
        &c.last_name,
        &c.company_name,
        &c.email,
        &c.city,
        &c.region,
        &c.country,
        &c.website,
        &c.industry,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    for key in searchable {
        match custom.get(key) {
            Some(serde_json::Value::String(s)) => text.push(s.clone()),
            Some(serde_json::Value::Array(items)) => {
                text.extend(items.iter().filter_map(|v| v.as_str().map(str::to_string)))
            }
            Some(v @ serde_json::Value::Number(_)) => text.push(v.to_string()),
            _ => {}
        }
    }
    let subtitle = [
        c.company_name.as_deref(),
        c.email.as_deref(),
        c.city.as_deref(),
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty() && *s != c.display_name)
    .collect::<Vec<_>>()
    .join(" · ");
    Document {
        id: c.id.clone(),
        org_id: c.organization_id.clone(),
        kind: Some(Kind::Client),
        title: c.display_name.clone(),
        subtitle,
        text,
        phones: c.phone.iter().cloned().collect(),
        tags: tags.iter().map(|t| t.name.clone()).collect(),
        status: Some(c.status.clone()),
        owner: c.assigned_to.clone(),
        industry: c.industry.clone(),
    }
}

fn deal_doc(d: &OpportunityRow, client: &str, stage: &str) -> Document {
    Document {
        id: d.id.clone(),
        org_id: d.organization_id.clone(),
        kind: Some(Kind::Opportunity),
        title: d.name.clone(),
        subtitle: [client, stage]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" · "),
        text: vec![client.to_string(), d.description.clone()],
        status: Some(d.status.clone()),
        owner: d.assigned_to.clone(),
        ..Document::default()
    }
}

/// Keys of the organization's searchable, non-sensitive client fields.
fn searchable_keys(conn: &mut DbConn, org_id: &str) -> AppResult<Vec<String>> {
    Ok(
        crate::domain::custom_fields::store::list(conn, org_id, "client", false)?
            .into_iter()
            .filter(|f| f.searchable && !f.sensitive && f.is_active())
            .map(|f| f.field_key)
            .collect(),
    )
}

/// The documents for these clients, and the ids that are gone (deleted or trashed).
fn client_docs(
    conn: &mut DbConn,
    org_id: &str,
    ids: &[String],
    keys: &[String],
) -> AppResult<(Vec<Document>, Vec<String>)> {
    let rows = crate::domain::clients::store::find_many(conn, org_id, ids)?;
    let live: Vec<&ClientRow> = rows.iter().filter(|c| c.deleted_at.is_none()).collect();
    let live_ids: Vec<String> = live.iter().map(|c| c.id.clone()).collect();
    let mut tags: HashMap<String, Vec<TagRow>> = HashMap::new();
    for (client, tag) in crate::domain::clients::store::tags_of(conn, &live_ids)? {
        tags.entry(client).or_default().push(tag);
    }
    let docs = live
        .iter()
        .map(|c| client_doc(c, tags.get(&c.id).map_or(&[][..], Vec::as_slice), keys))
        .collect();
    let alive: HashSet<&String> = live_ids.iter().collect();
    let gone = ids.iter().filter(|i| !alive.contains(i)).cloned().collect();
    Ok((docs, gone))
}

fn deal_docs(
    conn: &mut DbConn,
    org_id: &str,
    ids: &[String],
) -> AppResult<(Vec<Document>, Vec<String>)> {
    let rows: Vec<OpportunityRow> = opportunities::table
        .filter(opportunities::organization_id.eq(org_id))
        .filter(opportunities::id.eq_any(ids))
        .filter(opportunities::deleted_at.is_null())
        .select(OpportunityRow::as_select())
        .load(conn)?;
    let client_ids: Vec<String> = rows.iter().map(|d| d.client_id.clone()).collect();
    let names: HashMap<String, String> = clients::table
        .filter(clients::organization_id.eq(org_id))
        .filter(clients::id.eq_any(&client_ids))
        .select((clients::id, clients::display_name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let stage_ids: Vec<String> = rows.iter().map(|d| d.stage_id.clone()).collect();
    let stages: HashMap<String, String> = pipeline_stages::table
        .filter(pipeline_stages::id.eq_any(&stage_ids))
        .select((pipeline_stages::id, pipeline_stages::name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    let docs: Vec<Document> = rows
        .iter()
        .map(|d| {
            deal_doc(
                d,
                names.get(&d.client_id).map_or("", String::as_str),
                stages.get(&d.stage_id).map_or("", String::as_str),
            )
        })
        .collect();
    let alive: HashSet<&String> = rows.iter().map(|d| &d.id).collect();
    let gone = ids.iter().filter(|i| !alive.contains(i)).cloned().collect();
    Ok((docs, gone))
}

/// Outbox rows taken per round.
pub const BATCH: i64 = 500;

/// One round of the indexer: takes due outbox rows, sends the records' current state to
/// the index, and removes the rows; on failure they wait (1 s, 2 s, 4 s … at most 5 min).
/// Returns how many rows it settled.
pub async fn drain(pool: &Pool, index: &Index) -> AppResult<usize> {
    type Row = (i64, String, String, String, i32);
    let rows: Vec<Row> = crate::db::run(pool, |c| {
        Ok(search_outbox::table
            .filter(search_outbox::next_attempt_at.le(now()))
            .order(search_outbox::id.asc())
            .limit(BATCH)
            .select((
                search_outbox::id,
                search_outbox::organization_id,
                search_outbox::entity,
                search_outbox::entity_id,
                search_outbox::attempts,
            ))
            .load::<Row>(c)?)
    })
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let row_ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let outcome = deliver(pool, index, &rows).await;
    let n = rows.len();
    match outcome {
        Ok(()) => {
            crate::db::run(pool, move |c| {
                diesel::delete(search_outbox::table.filter(search_outbox::id.eq_any(&row_ids)))
                    .execute(c)?;
                Ok(())
            })
            .await?;
            Ok(n)
        }
        Err(e) => {
            let message: String = e.to_string().chars().take(500).collect();
            tracing::warn!(error = %message, pending = n, "search index update failed; will retry");
            crate::db::run(pool, move |c| {
                for (id, _, _, _, attempts) in &rows {
                    let wait = 1i64 << (*attempts).clamp(0, 8);
                    diesel::update(search_outbox::table.find(id))
                        .set((
                            search_outbox::attempts.eq(attempts + 1),
                            search_outbox::next_attempt_at
                                .eq(now() + chrono::Duration::seconds(wait.min(300))),
                            search_outbox::last_error.eq(Some(&message)),
                        ))
                        .execute(c)?;
                }
                Ok(())
            })
            .await?;
            Err(e)
        }
    }
}

async fn deliver(
    pool: &Pool,
    index: &Index,
    rows: &[(i64, String, String, String, i32)],
) -> AppResult<()> {
    // Per organization: clients, deals, and whether the whole organization is asked for.
    let mut by_org: BTreeMap<String, (Vec<String>, Vec<String>, bool)> = BTreeMap::new();
    for (_, org, entity, id, _) in rows {
        let e = by_org.entry(org.clone()).or_default();
        match entity.as_str() {
            CLIENT if !e.0.contains(id) => e.0.push(id.clone()),
            OPPORTUNITY if !e.1.contains(id) => e.1.push(id.clone()),
            REINDEX => e.2 = true,
            _ => {}
        }
    }
    for (org, (client_ids, deal_ids, whole)) in by_org {
        if whole {
            reindex_org(pool, index, &org).await?;
            continue;
        }
        let o = org.clone();
        let (docs, gone) = crate::db::run(pool, move |c| {
            let keys = searchable_keys(c, &o)?;
            let (mut docs, mut gone) = client_docs(c, &o, &client_ids, &keys)?;
            let (d2, g2) = deal_docs(c, &o, &deal_ids)?;
            docs.extend(d2);
            gone.extend(g2);
            Ok((docs, gone))
        })
        .await?;
        if !docs.is_empty() {
            index.upsert(docs).await.map_err(search_error)?;
        }
        if !gone.is_empty() {
            index.delete(gone).await.map_err(search_error)?;
        }
    }
    Ok(())
}

fn search_error(e: rapport_search::SearchError) -> AppError {
    AppError::Unavailable(e.to_string())
}

/// Drains until nothing is due (tests, `search reindex`).
pub async fn drain_all(pool: &Pool, index: &Index) -> AppResult<usize> {
    let mut total = 0;
    loop {
        let n = drain(pool, index).await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

/// The background indexer: drains the outbox for as long as the process runs.
pub fn spawn_indexer(pool: Pool, index: Index) {
    actix_web::rt::spawn(async move {
        loop {
            let pause = match drain(&pool, &index).await {
                Ok(n) if n as i64 == BATCH => Duration::ZERO,
                Ok(_) => Duration::from_millis(250),
                Err(_) => Duration::from_secs(1),
            };
            if !pause.is_zero() {
                actix_web::rt::time::sleep(pause).await;
            }
        }
    });
}

/// Rows read per page during a reindex.
const PAGE: i64 = 2000;

/// Counts of a reindex.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reindexed {
    pub clients: usize,
    pub deals: usize,
    pub removed: usize,
}

/// Rebuilds an organization's documents from the database, in place: searches keep
/// answering meanwhile, and documents of records that no longer exist are removed at the end.
pub async fn reindex_org(pool: &Pool, index: &Index, org_id: &str) -> AppResult<Reindexed> {
    let (mut out, seen_clients, seen_deals) = fill_org(pool, index, org_id).await?;
    for (kind, seen) in [
        (Kind::Client, &seen_clients),
        (Kind::Opportunity, &seen_deals),
    ] {
        let strays: Vec<String> = index
            .ids(org_id, kind)
            .await
            .map_err(search_error)?
            .into_iter()
            .filter(|id| !seen.contains(id))
            .collect();
        out.removed += strays.len();
        if !strays.is_empty() {
            index.delete(strays).await.map_err(search_error)?;
        }
    }
    Ok(out)
}

/// Rebuilds every organization named. Where the backend can, into a fresh index swapped in
/// at the end, so searches answer from the complete old one until then (Meilisearch);
/// elsewhere in place. Records changed while it ran are queued again afterwards, so the
/// swapped-in index misses none of them.
pub async fn reindex_all(
    pool: &Pool,
    index: &Index,
    orgs: &[String],
) -> AppResult<Vec<(String, Reindexed)>> {
    let started = now();
    let mut out = Vec::new();
    let Some(next) = index.fresh().await.map_err(search_error)? else {
        for org in orgs {
            out.push((org.clone(), reindex_org(pool, index, org).await?));
        }
        return Ok(out);
    };
    for org in orgs {
        out.push((org.clone(), fill_org(pool, &next, org).await?.0));
    }
    index.promote().await.map_err(search_error)?;
    let names = orgs.to_vec();
    crate::db::run(pool, move |c| {
        Ok(requeue_changed_since(c, &names, started)?)
    })
    .await?;
    Ok(out)
}

/// Queues every client and deal of these organizations changed or trashed since `since`
/// for the indexer (per organization, so the `(organization, updated_at)` and trash
/// indexes answer it rather than a scan).
fn requeue_changed_since(
    conn: &mut DbConn,
    orgs: &[String],
    since: NaiveDateTime,
) -> QueryResult<usize> {
    let mut n = 0;
    for org in orgs {
        let mut changed: Vec<String> = clients::table
            .filter(clients::organization_id.eq(org))
            .filter(clients::deleted_at.is_null())
            .filter(clients::updated_at.ge(since))
            .select(clients::id)
            .load(conn)?;
        changed.extend(
            clients::table
                .filter(clients::organization_id.eq(org))
                .filter(clients::deleted_at.ge(since))
                .select(clients::id)
                .load::<String>(conn)?,
        );
        let deals: Vec<String> = opportunities::table
            .filter(opportunities::organization_id.eq(org))
            .filter(opportunities::updated_at.ge(since))
            .select(opportunities::id)
            .load(conn)?;
        for id in &changed {
            crate::domain::outbox::touch(conn, org, CLIENT, id)?;
        }
        for id in &deals {
            crate::domain::outbox::touch(conn, org, OPPORTUNITY, id)?;
        }
        n += changed.len() + deals.len();
    }
    Ok(n)
}

/// Writes an organization's documents from the database into `index`; returns the counts
/// and the ids written.
async fn fill_org(
    pool: &Pool,
    index: &Index,
    org_id: &str,
) -> AppResult<(Reindexed, HashSet<String>, HashSet<String>)> {
    let mut out = Reindexed::default();
    let mut seen_clients = HashSet::new();
    let mut after = String::new();
    loop {
        let (org, from) = (org_id.to_string(), after.clone());
        let (docs, last) = crate::db::run(pool, move |c| {
            let keys = searchable_keys(c, &org)?;
            let ids: Vec<String> = clients::table
                .filter(clients::organization_id.eq(&org))
                .filter(clients::deleted_at.is_null())
                .filter(clients::id.gt(&from))
                .order(clients::id.asc())
                .limit(PAGE)
                .select(clients::id)
                .load(c)?;
            let last = ids.last().cloned();
            let (docs, _) = client_docs(c, &org, &ids, &keys)?;
            Ok((docs, last))
        })
        .await?;
        let Some(last) = last else { break };
        out.clients += docs.len();
        seen_clients.extend(docs.iter().map(|d| d.id.clone()));
        index.upsert(docs).await.map_err(search_error)?;
        after = last;
    }
    let mut seen_deals = HashSet::new();
    let mut after = String::new();
    loop {
        let (org, from) = (org_id.to_string(), after.clone());
        let (docs, last) = crate::db::run(pool, move |c| {
            let ids: Vec<String> = opportunities::table
                .filter(opportunities::organization_id.eq(&org))
                .filter(opportunities::deleted_at.is_null())
                .filter(opportunities::id.gt(&from))
                .order(opportunities::id.asc())
                .limit(PAGE)
                .select(opportunities::id)
                .load(c)?;
            let last = ids.last().cloned();
            let (docs, _) = deal_docs(c, &org, &ids)?;
            Ok((docs, last))
        })
        .await?;
        let Some(last) = last else { break };
        out.deals += docs.len();
        seen_deals.extend(docs.iter().map(|d| d.id.clone()));
        index.upsert(docs).await.map_err(search_error)?;
        after = last;
    }
    Ok((out, seen_clients, seen_deals))
}
