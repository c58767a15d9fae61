//! Deals (opportunities): the read model both surfaces show, and the commands on one deal,
//! with `opportunity:*` rights and the record rule (`oversee` for others' deals) applied
//! here once.

use serde_json::{json, Map, Value};

use super::Scope;
use crate::db::DbConn;
use crate::domain::clients::service::Access;
use crate::domain::custom_fields::{self, service::Mode, FieldRow};
use crate::domain::money::format_cents;
use crate::domain::pipeline::service::{self, WriteContext};
use crate::domain::pipeline::{store, OpportunityRow, StageRow};
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
fn currency_of(c: &mut DbConn, org: &str) -> AppResult<String> {
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
    scope.require("opportunity", "write")?;
    let access = scope.access("opportunity");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| {
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
            shown(c, &ctx.org_id, &access, ext, &id)
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
