//! Deals (opportunities): the read model both surfaces show, and the commands on one deal,
//! with `opportunity:*` rights and the record rule (`oversee` for others' deals) applied
//! here once.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate};
use serde_json::{json, Map, Value};

use super::sales::{client_name, client_names, members};
use super::Scope;
use crate::db::DbConn;
use crate::domain::clients::service::Access;
use crate::domain::custom_fields::value::display;
use crate::domain::custom_fields::{self, service::Mode, FieldRow};
use crate::domain::money::format_cents;
use crate::domain::pipeline::analytics::add_months;
use crate::domain::pipeline::service::{self, PipelineView, WriteContext};
use crate::domain::pipeline::{contracts, quotes, store};
use crate::domain::pipeline::{ContractRow, OpportunityRow, QuoteRow, StageMoveRow, StageRow};
use crate::error::{AppError, AppResult};
use crate::ops::clients::rfc3339;

/// A deal as people and integrations see it.
#[derive(Debug, Clone)]
pub struct DealView {
    pub row: OpportunityRow,
    pub stage: Option<StageRow>,
    /// Active custom fields' values, sensitive ones only for those allowed.
    pub custom: Map<String, Value>,
    /// Its contacts (client id, role), where a single deal is shown.
    pub contacts: Option<Vec<(String, String)>>,
    /// Plugin-computed fields (e.g. a commission), where a single deal is shown.
    pub computed: Option<Value>,
}

impl DealView {
    pub fn new(
        row: OpportunityRow,
        stage: Option<StageRow>,
        defs: &[FieldRow],
        access: &Access,
    ) -> Self {
        let stored: Map<String, Value> =
            serde_json::from_str(&row.custom_fields).unwrap_or_default();
        let custom = defs
            .iter()
            .filter(|d| d.is_active() && (!d.sensitive || access.read_sensitive))
            .filter_map(|d| {
                stored
                    .get(&d.field_key)
                    .map(|v| (d.field_key.clone(), v.clone()))
            })
            .collect();
        Self {
            row,
            stage,
            custom,
            contacts: None,
            computed: None,
        }
    }

    /// The API's JSON form.
    pub fn to_json(&self) -> Value {
        let o = &self.row;
        let weighted =
            rust_decimal::Decimal::new(o.value_cents * i64::from(o.probability), 4).round_dp(2);
        let mut v = json!({
            "id": o.id,
            "name": o.name,
            "description": o.description,
            "clientId": o.client_id,
            "pipeline": o.pipeline_id,
            "stage": o.stage_id,
            "stageName": self.stage.as_ref().map(|s| s.name.clone()),
            "value": format_cents(o.value_cents),
            "currency": o.currency,
            "probability": o.probability,
            "weightedValue": weighted.to_string(),
            "expectedCloseDate": o.expected_close.map(|d| d.to_string()),
            "actualCloseDate": o.actual_close.map(|d| d.to_string()),
            "status": o.status,
            "assignedTo": o.assigned_to,
            "source": o.source,
            "competitors": o.competitor_list(),
            "lossReason": o.loss_reason,
            "customFields": self.custom,
            "version": o.version,
            "stageEnteredAt": rfc3339(o.stage_entered_at),
            "createdAt": rfc3339(o.created_at),
            "updatedAt": rfc3339(o.updated_at),
        });
        if let Some(contacts) = &self.contacts {
            v["contacts"] = contacts
                .iter()
                .map(|(id, role)| json!({"clientId": id, "role": role}))
                .collect::<Vec<_>>()
                .into();
        }
        if let Some(computed) = &self.computed {
            v["computed"] = computed.clone();
        }
        v
    }
}

impl serde::Serialize for DealView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// One deal the caller may see, with its contacts and what plugins compute for it.
fn shown(
    c: &mut DbConn,
    org: &str,
    access: &Access,
    plugins: &crate::plugins::PluginFieldTypes,
    id: &str,
) -> AppResult<DealView> {
    let o = service::get(c, org, access, id)?;
    let stage = store::find_stage(c, org, &o.stage_id)?;
    let defs = custom_fields::store::list(c, org, "opportunity", false)?;
    let contacts = store::contacts_of(c, &o.id)?
        .into_iter()
        .map(|x| (x.client_id, x.role))
        .collect();
    let mut view = DealView::new(o, stage, &defs, access);
    view.contacts = Some(contacts);
    view.computed = Some(crate::plugins::computed_json(&plugins.computed(
        &rapport_plugin_sdk::ComputeRequest::Opportunity(crate::plugins::deal_snapshot(&view.row)),
    )));
    Ok(view)
}

/// A page of deals and the cursor of the next one.
pub struct Page {
    pub data: Vec<DealView>,
    pub next_cursor: Option<String>,
}

/// Deals the caller may see, filtered by the query (`filter[...]`, `limit`, `cursor`).
pub async fn list(scope: &Scope, pairs: Vec<(String, String)>) -> AppResult<Page> {
    scope.require("opportunity", "read")?;
    let access = scope.access("opportunity");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let mut f = store::parse_list_filter(c, &org, &pairs, &access.user_id)?;
            if !access.oversee {
                f.only_assigned_to = Some(access.user_id.clone());
            }
            let limit = f.limit;
            f.limit = limit + 1;
            let mut rows = store::list_opportunities(c, &org, &f)?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            let stages = store::stages_of_org(c, &org)?;
            let defs = custom_fields::store::list(c, &org, "opportunity", false)?;
            let next_cursor = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
            let data = rows
                .into_iter()
                .map(|o| {
                    let stage = stages.iter().find(|s| s.id == o.stage_id).cloned();
                    DealView::new(o, stage, &defs, &access)
                })
                .collect();
            Ok(Page { data, next_cursor })
        })
        .await
}

pub async fn get(scope: &Scope, id: String) -> AppResult<DealView> {
    scope.require("opportunity", "read")?;
    let access = scope.access("opportunity");
    let org = scope.org_id.clone();
    scope
        .write(move |c, plugins| shown(c, &org, &access, plugins, &id))
        .await
}

/// Runs a deal write with what the service needs: the deal custom fields, the
/// organization's currency, the plugins' field types and stage rules.
fn writing<T>(
    c: &mut DbConn,
    ctx: &crate::domain::audit::AuditContext,
    access: &Access,
    ext: &crate::plugins::PluginFieldTypes,
    f: impl FnOnce(&mut DbConn, &WriteContext<'_>) -> AppResult<T>,
) -> AppResult<T> {
    let defs = custom_fields::store::list(c, &ctx.org_id, "opportunity", false)?;
    let currency = currency_of(c, &ctx.org_id)?;
    let w = WriteContext {
        external: ext,
        rules: ext,
        ctx,
        access,
        defs: &defs,
        default_currency: &currency,
    };
    f(c, &w)
}

/// The organization's currency, for a deal given without one.
pub(super) fn currency_of(c: &mut DbConn, org: &str) -> AppResult<String> {
    Ok(crate::domain::orgs::store::find_org(c, org)?
        .ok_or(AppError::NotFound)?
        .default_currency)
}

pub async fn create(scope: &Scope, body: Map<String, Value>) -> AppResult<DealView> {
    scope.require("opportunity", "write")?;
    let access = scope.access("opportunity");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| {
            let o = writing(c, &ctx, &access, ext, |c, w| service::create(c, w, &body))?;
            shown(c, &ctx.org_id, &access, ext, &o.id)
        })
        .await
}

/// Changes a deal: `Merge` keeps fields the body leaves out, `Replace` clears them.
pub async fn update(
    scope: &Scope,
    id: String,
    body: Map<String, Value>,
    mode: Mode,
    expected: Option<i64>,
) -> AppResult<DealView> {
    scope.require("opportunity", "write")?;
    let access = scope.access("opportunity");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| {
            writing(c, &ctx, &access, ext, |c, w| {
                service::update(c, w, &id, &body, mode, expected)
            })?;
            shown(c, &ctx.org_id, &access, ext, &id)
        })
        .await
}

/// Moves a deal to a stage (won and lost stages close it; lost may take a reason).
pub async fn move_to(
    scope: &Scope,
    id: String,
    stage: String,
    loss_reason: Option<String>,
    expected: Option<i64>,
) -> AppResult<DealView> {
    Ok(moved(scope, id, stage, loss_reason, expected).await?.deal)
}

/// A deal after a move, and where it came from (for the board's account of the move).
pub struct Moved {
    pub deal: DealView,
    pub from_stage: String,
    pub from_probability: i32,
}

/// [`move_to`], answering also the stage and probability the deal left.
pub async fn moved(
    scope: &Scope,
    id: String,
    stage: String,
    loss_reason: Option<String>,
    expected: Option<i64>,
) -> AppResult<Moved> {
    scope.require("opportunity", "write")?;
    let access = scope.access("opportunity");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| {
            let before = service::get(c, &ctx.org_id, &access, &id)?;
            service::move_to(
                c,
                &ctx,
                &access,
                &id,
                &stage,
                loss_reason.as_deref(),
                expected,
                ext,
            )?;
            let from_stage = store::find_stage(c, &ctx.org_id, &before.stage_id)?
                .map(|s| s.name)
                .unwrap_or_default();
            Ok(Moved {
                deal: shown(c, &ctx.org_id, &access, ext, &id)?,
                from_stage,
                from_probability: before.probability,
            })
        })
        .await
}

pub async fn delete(scope: &Scope, id: String) -> AppResult<()> {
    scope.require("opportunity", "delete")?;
    let access = scope.access("opportunity");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| service::delete(c, &ctx, &access, &id))
        .await
}

/// A stage move with its stages' names.
pub struct Move {
    pub row: StageMoveRow,
    pub from_name: Option<String>,
    pub to_name: Option<String>,
}

/// A deal's stage moves, oldest first.
pub async fn history(scope: &Scope, id: String) -> AppResult<Vec<Move>> {
    scope.require("opportunity", "read")?;
    let access = scope.access("opportunity");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let o = service::get(c, &org, &access, &id)?;
            let stages = store::stages_of_org(c, &org)?;
            let name = |sid: &str| stages.iter().find(|s| s.id == sid).map(|s| s.name.clone());
            Ok(store::history_of(c, &org, &o.id)?
                .into_iter()
                .map(|row| Move {
                    from_name: row.from_stage_id.as_deref().and_then(name),
                    to_name: name(&row.to_stage_id),
                    row,
                })
                .collect())
        })
        .await
}

/// Renews a contract: a renewal deal for it, answered as a view.
pub async fn renew_contract(scope: &Scope, contract_id: String) -> AppResult<DealView> {
    scope.require("opportunity", "write")?;
    let access = scope.access("opportunity");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| {
            let deal = writing(c, &ctx, &access, ext, |c, w| {
                crate::domain::pipeline::contracts::renew(c, w, &contract_id)
            })?;
            shown(c, &ctx.org_id, &access, ext, &deal.id)
        })
        .await
}

/// What the board shows: which pipeline and owner, and deals closing in which month
/// (`YYYY-MM`).
#[derive(Default)]
pub struct BoardQuery {
    pub pipeline: Option<String>,
    pub owner: Option<String>,
    pub month: Option<String>,
}

/// One stage's column: its totals per currency over every deal, and the first cards.
pub struct Column {
    pub stage: StageRow,
    pub totals: Vec<store::StageTotal>,
    pub deals: Vec<OpportunityRow>,
}

/// A pipeline's board as the caller may see it.
pub struct Board {
    pub pipelines: Vec<PipelineView>,
    pub pipeline: PipelineView,
    pub columns: Vec<Column>,
    /// Client names of the cards.
    pub clients: HashMap<String, String>,
    /// Active members (id, name): the cards' owners and the owner filter.
    pub members: Vec<(String, String)>,
    pub loss_reasons: Vec<String>,
}

/// Cards drawn per column; the rest are counted and load a page at a time. why: each card
/// carries its move menu, and 50 per column made the board page 9 ms of server CPU.
pub const CARDS_PER_COLUMN: i64 = 25;

/// The first and last day of a month given as `YYYY-MM`.
fn month_bounds(month: &str) -> Option<(NaiveDate, NaiveDate)> {
    let start = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    Some((start, add_months(start, 1) - Duration::days(1)))
}

/// The board of the chosen pipeline (the first when none or an unknown one is asked for).
pub async fn board(scope: &Scope, q: BoardQuery) -> AppResult<Board> {
    scope.require("opportunity", "read")?;
    let owner = super::sales::owner_of(scope, q.owner);
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let pipelines = service::pipelines(c, &org)?;
            let pipeline = q
                .pipeline
                .and_then(|p| pipelines.iter().find(|v| v.pipeline.id == p))
                .or(pipelines.first())
                .cloned()
                .ok_or(AppError::NotFound)?;
            let bounds = q.month.as_deref().and_then(month_bounds);
            let columns = columns(c, &org, &pipeline, owner.as_deref(), bounds)?;
            // One lookup of every card's client name, not one per column.
            let ids = columns
                .iter()
                .flat_map(|col| col.deals.iter().map(|d| d.client_id.clone()))
                .collect();
            Ok(Board {
                clients: client_names(c, &org, ids)?,
                members: members(c, &org)?,
                loss_reasons: loss_reasons(c, &org)?,
                pipelines,
                pipeline,
                columns,
            })
        })
        .await
}

fn columns(
    c: &mut DbConn,
    org: &str,
    pipeline: &PipelineView,
    owner: Option<&str>,
    bounds: Option<(NaiveDate, NaiveDate)>,
) -> AppResult<Vec<Column>> {
    let id = &pipeline.pipeline.id;
    let totals = store::stage_totals(c, org, id, owner, bounds)?;
    let mut columns = Vec::new();
    for stage in pipeline.stages.iter().filter(|s| s.is_active) {
        let deals = store::board(c, org, id, owner, bounds, CARDS_PER_COLUMN, &stage.id, None)?;
        columns.push(Column {
            totals: totals
                .iter()
                .filter(|t| t.stage_id == stage.id)
                .cloned()
                .collect(),
            stage: stage.clone(),
            deals,
        });
    }
    Ok(columns)
}

/// The next cards of one board column, after what it shows already.
pub struct ColumnPage {
    pub pipeline: PipelineView,
    pub column: Column,
    /// Whether cards follow these.
    pub more: bool,
    /// Client names of the cards.
    pub clients: HashMap<String, String>,
    /// Active members (id, name): the cards' owners.
    pub members: Vec<(String, String)>,
}

/// Up to [`CARDS_PER_COLUMN`] cards of `stage` that follow the card `before`, under the
/// board's filters and its record rule (a rep sees only their own deals).
pub async fn column_page(
    scope: &Scope,
    q: BoardQuery,
    stage: String,
    before: String,
) -> AppResult<ColumnPage> {
    scope.require("opportunity", "read")?;
    let owner = super::sales::owner_of(scope, q.owner);
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let pipeline = service::pipelines(c, &org)?
                .into_iter()
                .find(|v| Some(&v.pipeline.id) == q.pipeline.as_ref())
                .ok_or(AppError::NotFound)?;
            let stage = pipeline
                .stages
                .iter()
                .find(|s| s.id == stage && s.is_active)
                .cloned()
                .ok_or(AppError::NotFound)?;
            let id = &pipeline.pipeline.id;
            let bounds = q.month.as_deref().and_then(month_bounds);
            let mut deals = store::board(
                c,
                &org,
                id,
                owner.as_deref(),
                bounds,
                CARDS_PER_COLUMN + 1,
                &stage.id,
                Some(&before),
            )?;
            let more = deals.len() as i64 > CARDS_PER_COLUMN;
            deals.truncate(CARDS_PER_COLUMN as usize);
            let totals = store::stage_totals(c, &org, id, owner.as_deref(), bounds)?
                .into_iter()
                .filter(|t| t.stage_id == stage.id)
                .collect();
            let ids = deals.iter().map(|d| d.client_id.clone()).collect();
            Ok(ColumnPage {
                clients: client_names(c, &org, ids)?,
                members: members(c, &org)?,
                column: Column {
                    stage,
                    totals,
                    deals,
                },
                more,
                pipeline,
            })
        })
        .await
}

/// The active loss reasons' names.
fn loss_reasons(c: &mut DbConn, org: &str) -> AppResult<Vec<String>> {
    Ok(store::loss_reasons(c, org, true)?
        .into_iter()
        .map(|r| r.name)
        .collect())
}

/// A deal's page: the deal and everything shown around it, as the caller may see it.
pub struct DealPage {
    pub deal: OpportunityRow,
    /// The stages of its pipeline.
    pub stages: Vec<StageRow>,
    /// Members' names by id (the owner, who moved it).
    pub members: HashMap<String, String>,
    pub client: String,
    /// Custom values the reader may see, then plugin-computed fields: (label, shown value).
    pub custom: Vec<(String, String)>,
    /// Contacts: (client id, name, role).
    pub contacts: Vec<(String, String, String)>,
    /// Its stage moves, newest first.
    pub history: Vec<StageMoveRow>,
    pub quotes: Vec<QuoteRow>,
    /// Its client's contracts that came from this deal, as the client's record rule allows.
    pub contracts: Vec<ContractRow>,
    pub loss_reasons: Vec<String>,
}

pub async fn page(scope: &Scope, id: String) -> AppResult<DealPage> {
    scope.require("opportunity", "read")?;
    let access = scope.access("opportunity");
    let client_access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .write(move |c, plugins| {
            let d = service::get(c, &org, &access, &id)?;
            let contacts = store::contacts_of(c, &d.id)?;
            let ids = contacts.iter().map(|x| x.client_id.clone()).collect();
            let names = client_names(c, &org, ids)?;
            let contracts =
                contracts::list(c, &org, &client_access, Some(&d.client_id), None, None)?
                    .into_iter()
                    .filter(|k| k.opportunity_id.as_deref() == Some(d.id.as_str()))
                    .collect();
            Ok(DealPage {
                stages: store::stages_of(c, &d.pipeline_id)?,
                members: members(c, &org)?.into_iter().collect(),
                client: client_name(c, &org, Some(&d.client_id))?,
                custom: shown_values(c, &org, &access, plugins, &d)?,
                contacts: contacts
                    .into_iter()
                    .map(|x| {
                        let name = names.get(&x.client_id).cloned().unwrap_or_default();
                        (x.client_id, name, x.role)
                    })
                    .collect(),
                history: store::history_of(c, &org, &d.id)?
                    .into_iter()
                    .rev()
                    .collect(),
                quotes: quotes::list_for(c, &org, &access, &d.id)?,
                contracts,
                loss_reasons: loss_reasons(c, &org)?,
                deal: d,
            })
        })
        .await
}

/// A deal's custom values as people read them (plugin field types format their own), then
/// what plugins compute for it.
fn shown_values(
    c: &mut DbConn,
    org: &str,
    access: &Access,
    plugins: &crate::plugins::PluginFieldTypes,
    d: &OpportunityRow,
) -> AppResult<Vec<(String, String)>> {
    let defs = custom_fields::store::list(c, org, "opportunity", false)?;
    let stored: Map<String, Value> = serde_json::from_str(&d.custom_fields).unwrap_or_default();
    let values = defs
        .iter()
        .filter(|f| f.is_active() && (!f.sensitive || access.read_sensitive))
        .map(|f| {
            let shown = stored.get(&f.field_key).map(|v| match v.as_str() {
                Some(text) if f.field_type.starts_with("plugin:") => {
                    plugins.format(&f.field_type, text)
                }
                _ => display(f, v),
            });
            (f.label.clone(), shown.unwrap_or_default())
        });
    let request = rapport_plugin_sdk::ComputeRequest::Opportunity(crate::plugins::deal_snapshot(d));
    let computed = plugins.computed(&request).into_iter().map(|v| {
        (
            format!("{} ({} plugin)", v.label, v.plugin),
            v.value.unwrap_or_else(|| "unavailable right now".into()),
        )
    });
    Ok(values.chain(computed).collect())
}

/// What a deal form offers: the pipelines, the deal custom fields, whom the caller may
/// assign a deal to, and the names of the clients the form names.
pub struct FormChoices {
    pub pipelines: Vec<PipelineView>,
    pub defs: Vec<FieldRow>,
    pub owners: Vec<(String, String)>,
    pub clients: HashMap<String, String>,
}

pub async fn form_choices(scope: &Scope, client_ids: Vec<String>) -> AppResult<FormChoices> {
    scope.require("opportunity", "write")?;
    let access = scope.access("opportunity");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            Ok(FormChoices {
                pipelines: service::pipelines(c, &org)?,
                defs: custom_fields::store::list(c, &org, "opportunity", false)?,
                owners: members(c, &org)?
                    .into_iter()
                    .filter(|(u, _)| access.oversee || *u == access.user_id)
                    .collect(),
                clients: client_names(c, &org, client_ids)?,
            })
        })
        .await
}

/// The deal custom fields (a posted form is read against them).
pub async fn fields(scope: &Scope) -> AppResult<Vec<FieldRow>> {
    scope.require("opportunity", "write")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| Ok(custom_fields::store::list(c, &org, "opportunity", false)?))
        .await
}

/// A deal to edit and its contacts (client id, role).
pub async fn for_edit(
    scope: &Scope,
    id: String,
) -> AppResult<(OpportunityRow, Vec<(String, String)>)> {
    scope.require("opportunity", "write")?;
    let access = scope.access("opportunity");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let d = service::get(c, &org, &access, &id)?;
            let contacts = store::contacts_of(c, &d.id)?
                .into_iter()
                .map(|x| (x.client_id, x.role))
                .collect();
            Ok((d, contacts))
        })
        .await
}
