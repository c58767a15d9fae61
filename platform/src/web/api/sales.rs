//! The sales API: `/api/pipelines`, `/api/opportunities` (with `/move` and `/history`),
//! `/api/loss-reasons`, `/api/quotes` (with `/pdf`), `/api/contracts` and the analytics
//! under `/api/crm/analytics`. Deals follow `opportunity:*` with `oversee` for others'
//! deals; quotes follow their deal; contracts follow their client.

use std::collections::BTreeMap;

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{etag, if_match_version, rfc3339, ListEnvelope};
use crate::app::AppState;
use crate::auth::ApiActor;
use crate::db::{self, DbConn};
use crate::domain::clients::service::Access;
use crate::domain::custom_fields;
use crate::domain::custom_fields::service::Mode;
use crate::domain::money::format_cents;
use crate::domain::orgs;
use crate::domain::pipeline::analytics::{self, Scope};
use crate::domain::pipeline::service::{self, WriteContext};
use crate::domain::pipeline::{
    contracts, quotes, store, ContractRow, OpportunityRow, QuoteLineRow, QuoteRow, StageRow,
};
use crate::error::{AppError, AppResult};
use crate::web::{query_pairs, record_access};

fn stage_json(s: &StageRow) -> Value {
    json!({"id": s.id, "name": s.name, "position": s.position, "probability": s.probability, "kind": s.kind, "isActive": s.is_active, "color": s.color})
}

pub fn opportunity_json(
    o: &OpportunityRow,
    stage: Option<&StageRow>,
    defs: &[custom_fields::FieldRow],
    access: &Access,
) -> Value {
    let stored: Map<String, Value> = serde_json::from_str(&o.custom_fields).unwrap_or_default();
    let custom: Map<String, Value> = defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || access.read_sensitive))
        .filter_map(|d| {
            stored
                .get(&d.field_key)
                .map(|v| (d.field_key.clone(), v.clone()))
        })
        .collect();
    let weighted =
        rust_decimal::Decimal::new(o.value_cents * i64::from(o.probability), 4).round_dp(2);
    json!({
        "id": o.id,
        "name": o.name,
        "description": o.description,
        "clientId": o.client_id,
        "pipeline": o.pipeline_id,
        "stage": o.stage_id,
        "stageName": stage.map(|s| s.name.clone()),
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
        "customFields": custom,
        "version": o.version,
        "stageEnteredAt": rfc3339(o.stage_entered_at),
        "createdAt": rfc3339(o.created_at),
        "updatedAt": rfc3339(o.updated_at),
    })
}

pub async fn pipelines(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("pipeline", "read").await?;
    let org = actor.org_id().to_string();
    let views = db::run(&state.pool, move |c| service::pipelines(c, &org)).await?;
    let data: Vec<Value> = views
        .iter()
        .map(|v| {
            json!({
                "id": v.pipeline.id, "name": v.pipeline.name, "position": v.pipeline.position,
                "rottingDays": v.pipeline.rotting_days,
                "stages": v.stages.iter().map(stage_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageInput {
    name: String,
    probability: i32,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    color: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineInput {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rotting_days: Option<i32>,
    #[serde(default)]
    stages: Vec<StageInput>,
    /// `<plugin id>/<template key>`: the stages come from a plugin's template.
    #[serde(default)]
    template: Option<String>,
}

pub async fn create_pipeline(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<PipelineInput>,
) -> AppResult<HttpResponse> {
    actor.require("pipeline", "write").await?;
    let ctx = actor.audit();
    let b = body.into_inner();
    let view = db::run(&state.pool, move |c| {
        if let Some(t) = b.template.as_deref() {
            if !b.stages.is_empty() {
                return Err(AppError::invalid(
                    "stages",
                    "Give either a template or stages, not both.",
                ));
            }
            return crate::plugins::create_pipeline_from_template(
                c,
                &ctx,
                t,
                b.name.as_deref(),
                b.rotting_days,
            );
        }
        let stages: Vec<(&str, i32, &str, &str)> = b
            .stages
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.probability,
                    s.kind.as_deref().unwrap_or("open"),
                    s.color.as_deref().unwrap_or("blue"),
                )
            })
            .collect();
        service::create_pipeline(
            c,
            &ctx,
            b.name.as_deref().unwrap_or_default(),
            b.rotting_days,
            &stages,
        )
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "id": view.pipeline.id, "name": view.pipeline.name, "rottingDays": view.pipeline.rotting_days,
        "stages": view.stages.iter().map(stage_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelinePatch {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    rotting_days: Option<Option<i32>>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

pub async fn update_pipeline(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<PipelinePatch>,
) -> AppResult<HttpResponse> {
    actor.require("pipeline", "write").await?;
    let ctx = actor.audit();
    let b = body.into_inner();
    let p = db::run(&state.pool, move |c| {
        service::update_pipeline(c, &ctx, &id, b.name.as_deref(), b.rotting_days)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"id": p.id, "name": p.name, "rottingDays": p.rotting_days})))
}

pub async fn add_stage(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<StageInput>,
) -> AppResult<HttpResponse> {
    actor.require("pipeline", "write").await?;
    let ctx = actor.audit();
    let b = body.into_inner();
    let s = db::run(&state.pool, move |c| {
        service::add_stage(
            c,
            &ctx,
            &id,
            &b.name,
            b.probability,
            b.color.as_deref().unwrap_or("blue"),
        )
    })
    .await?;
    Ok(HttpResponse::Created().json(stage_json(&s)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StagePatch {
    name: Option<String>,
    probability: Option<i32>,
    color: Option<String>,
    position: Option<usize>,
}

pub async fn update_stage(
    actor: ApiActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<StagePatch>,
) -> AppResult<HttpResponse> {
    actor.require("pipeline", "write").await?;
    let ctx = actor.audit();
    let (pipeline, stage) = path.into_inner();
    let b = body.into_inner();
    let s = db::run(&state.pool, move |c| {
        let found = store::find_stage(c, &ctx.org_id, &stage)?
            .filter(|s| s.pipeline_id == pipeline)
            .ok_or(AppError::NotFound)?;
        service::update_stage(
            c,
            &ctx,
            &found.id,
            b.name.as_deref(),
            b.probability,
            b.color.as_deref(),
            b.position,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(stage_json(&s)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetireInput {
    #[serde(default)]
    move_to: Option<String>,
}

pub async fn retire_stage(
    actor: ApiActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Option<web::Json<RetireInput>>,
) -> AppResult<HttpResponse> {
    actor.require("pipeline", "write").await?;
    let ctx = actor.audit();
    let (pipeline, stage) = path.into_inner();
    let move_to = body.and_then(|b| b.into_inner().move_to);
    let moved = db::run(&state.pool, move |c| {
        let found = store::find_stage(c, &ctx.org_id, &stage)?
            .filter(|s| s.pipeline_id == pipeline)
            .ok_or(AppError::NotFound)?;
        service::retire_stage(c, &ctx, &found.id, move_to.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"retired": true, "movedDeals": moved})))
}

pub async fn loss_reasons(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| {
        service::ensure_defaults(c, &org)?;
        Ok(store::loss_reasons(c, &org, false)?)
    })
    .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|r| json!({"id": r.id, "name": r.name, "isActive": r.is_active}))
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LossReasonInput {
    name: Option<String>,
    is_active: Option<bool>,
}

pub async fn add_loss_reason(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<LossReasonInput>,
) -> AppResult<HttpResponse> {
    actor.require("pipeline", "write").await?;
    let ctx = actor.audit();
    let name = body.into_inner().name.unwrap_or_default();
    let r = db::run(&state.pool, move |c| {
        service::add_loss_reason(c, &ctx, &name)
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({"id": r.id, "name": r.name, "isActive": r.is_active})))
}

pub async fn update_loss_reason(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<LossReasonInput>,
) -> AppResult<HttpResponse> {
    actor.require("pipeline", "write").await?;
    let org = actor.org_id().to_string();
    let active = body
        .into_inner()
        .is_active
        .ok_or_else(|| AppError::invalid("isActive", "Say whether the reason is active."))?;
    let found = db::run(&state.pool, move |c| {
        Ok(store::set_loss_reason_active(c, &org, &id, active)?)
    })
    .await?;
    if !found {
        return Err(AppError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

fn parse_date(k: &str, v: &str) -> AppResult<NaiveDate> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
        .map_err(|_| AppError::invalid(k, "Use a date as YYYY-MM-DD."))
}

/// Parses `/api/opportunities` filters (API conventions) into the store's filter.
pub fn parse_filter(
    c: &mut DbConn,
    org: &str,
    pairs: &[(String, String)],
    user_id: &str,
) -> AppResult<store::OpportunityFilter> {
    use crate::domain::custom_fields::value::{encode_operand, Op};
    let defs = custom_fields::store::list(c, org, "opportunity", false)?;
    let mut f = store::OpportunityFilter {
        limit: 50,
        ..Default::default()
    };
    for (k, v) in pairs {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match k.as_str() {
            "limit" => f.limit = v.parse().ok().filter(|l| (1..=500).contains(l)).ok_or_else(|| AppError::invalid("limit", "Use a whole number from 1 to 500."))?,
            "cursor" => f.before = Some(v.to_string()),
            "filter[pipeline]" => f.pipeline_id = Some(v.into()),
            "filter[stage]" => f.stage_id = Some(v.into()),
            "filter[status]" | "filter[status][in]" => f.statuses = v.split(',').map(str::to_string).collect(),
            "filter[assignedTo]" | "filter[owner]" => f.assigned_to = Some(if v == "me" { user_id.to_string() } else { v.into() }),
            "filter[clientId]" | "filter[client]" => f.client_id = Some(v.into()),
            "filter[expectedCloseDate][gte]" => f.close_from = Some(parse_date(k, v)?),
            "filter[expectedCloseDate][lte]" => f.close_to = Some(parse_date(k, v)?),
            "filter[value][gte]" => f.value_min = Some(crate::domain::money::parse_cents(v).map_err(|e| AppError::invalid(k, &e))?),
            "filter[value][lte]" => f.value_max = Some(crate::domain::money::parse_cents(v).map_err(|e| AppError::invalid(k, &e))?),
            custom if custom.starts_with("filter[customFields.") => {
                let inner = &custom["filter[customFields.".len()..];
                let (key, op) = match inner.split_once("][") {
                    Some((key, rest)) => (key, rest.trim_end_matches(']')),
                    None => (inner.trim_end_matches(']'), ""),
                };
                let def = defs.iter().find(|d| d.field_key == key).ok_or_else(|| AppError::invalid(k, "There is no such custom field."))?;
                let op = Op::parse(op).ok_or_else(|| AppError::invalid(k, "Use one of eq, gt, gte, lt, lte, contains, in."))?;
                let operand = encode_operand(def, op, v).map_err(|e| AppError::invalid(k, &e))?;
                f.custom.push(crate::domain::clients::query::CustomFilter { field: def.clone(), op, operand });
            }
            other => return Err(AppError::invalid(other, "Unknown query parameter; filters: pipeline, stage, status, assignedTo, clientId, expectedCloseDate[gte|lte], value[gte|lte], customFields.<key>.")),
        }
    }
    Ok(f)
}

pub async fn list(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let pairs = query_pairs(&req)?;
    let org = actor.org_id().to_string();
    let body = db::run(&state.pool, move |c| {
        let mut f = parse_filter(c, &org, &pairs, &access.user_id)?;
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
        let next_cursor = if more {
            rows.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok(ListEnvelope {
            data: rows
                .iter()
                .map(|o| {
                    opportunity_json(
                        o,
                        stages.iter().find(|s| s.id == o.stage_id),
                        &defs,
                        &access,
                    )
                })
                .collect::<Vec<_>>(),
            next_cursor,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

fn shown(
    c: &mut DbConn,
    org: &str,
    access: &Access,
    id: &str,
) -> AppResult<(OpportunityRow, Value)> {
    let o = service::get(c, org, access, id)?;
    let stage = store::find_stage(c, org, &o.stage_id)?;
    let defs = custom_fields::store::list(c, org, "opportunity", false)?;
    let mut json = opportunity_json(&o, stage.as_ref(), &defs, access);
    json["contacts"] = store::contacts_of(c, &o.id)?
        .into_iter()
        .map(|x| json!({"clientId": x.client_id, "role": x.role}))
        .collect::<Vec<_>>()
        .into();
    Ok((o, json))
}

fn respond(status: actix_web::http::StatusCode, o: &OpportunityRow, json: Value) -> HttpResponse {
    let mut r = HttpResponse::build(status);
    r.insert_header((header::ETAG, etag(o.version)));
    if status == actix_web::http::StatusCode::CREATED {
        r.insert_header((header::LOCATION, format!("/api/opportunities/{}", o.id)));
    }
    r.json(json)
}

pub async fn show(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let org = actor.org_id().to_string();
    let (o, json) = crate::web::run_with_plugins(&state, org.clone(), move |c, plugins| {
        let (o, mut json) = shown(c, &org, &access, &id)?;
        json["computed"] = crate::plugins::computed_json(&plugins.computed(
            &rapport_plugin_sdk::ComputeRequest::Opportunity(crate::plugins::deal_snapshot(&o)),
        ));
        Ok((o, json))
    })
    .await?;
    Ok(respond(actix_web::http::StatusCode::OK, &o, json))
}

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid("body", "Send a JSON object.")),
    }
}

pub async fn create(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let ctx = actor.audit();
    let currency = actor.org.default_currency.clone();
    let body = object(body)?;
    let (o, json) =
        crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
            let defs = custom_fields::store::list(c, &ctx.org_id, "opportunity", false)?;
            let o = service::create(
                c,
                &WriteContext {
                    external: ext,
                    rules: ext,
                    ctx: &ctx,
                    access: &access,
                    defs: &defs,
                    default_currency: &currency,
                },
                &body,
            )?;
            shown(c, &ctx.org_id, &access, &o.id)
        })
        .await?;
    Ok(respond(actix_web::http::StatusCode::CREATED, &o, json))
}

async fn write(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: String,
    body: web::Json<Value>,
    mode: Mode,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let expected = if_match_version(&req)?;
    let ctx = actor.audit();
    let currency = actor.org.default_currency.clone();
    let body = object(body)?;
    let (o, json) =
        crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
            let defs = custom_fields::store::list(c, &ctx.org_id, "opportunity", false)?;
            service::update(
                c,
                &WriteContext {
                    external: ext,
                    rules: ext,
                    ctx: &ctx,
                    access: &access,
                    defs: &defs,
                    default_currency: &currency,
                },
                &id,
                &body,
                mode,
                expected,
            )?;
            shown(c, &ctx.org_id, &access, &id)
        })
        .await?;
    Ok(respond(actix_web::http::StatusCode::OK, &o, json))
}

pub async fn patch(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(actor, state, req, id.into_inner(), body, Mode::Merge).await
}

pub async fn replace(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(actor, state, req, id.into_inner(), body, Mode::Replace).await
}

pub async fn delete(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "delete").await?;
    let access = record_access(&actor, "opportunity").await?;
    let ctx = actor.audit();
    db::run(&state.pool, move |c| service::delete(c, &ctx, &access, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MoveInput {
    stage: String,
    #[serde(default)]
    loss_reason: Option<String>,
}

pub async fn move_deal(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<MoveInput>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let expected = if_match_version(&req)?;
    let ctx = actor.audit();
    let b = body.into_inner();
    let (o, json) =
        crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
            service::move_to(
                c,
                &ctx,
                &access,
                &id,
                &b.stage,
                b.loss_reason.as_deref(),
                expected,
                ext,
            )?;
            shown(c, &ctx.org_id, &access, &id)
        })
        .await?;
    Ok(respond(actix_web::http::StatusCode::OK, &o, json))
}

pub async fn history(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let org = actor.org_id().to_string();
    let data = db::run(&state.pool, move |c| {
        let o = service::get(c, &org, &access, &id)?;
        let stages = store::stages_of_org(c, &org)?;
        let name = |sid: &str| stages.iter().find(|s| s.id == sid).map(|s| s.name.clone());
        Ok(store::history_of(c, &org, &o.id)?
            .into_iter()
            .map(|h| {
                json!({
                    "fromStage": h.from_stage_id, "fromStageName": h.from_stage_id.as_deref().and_then(name),
                    "toStage": h.to_stage_id, "toStageName": name(&h.to_stage_id),
                    "fromProbability": h.from_probability, "toProbability": h.to_probability,
                    "movedBy": h.moved_by, "movedAt": rfc3339(h.moved_at),
                })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

// ---------- quotes ----------

fn quote_json(q: &QuoteRow, lines: &[QuoteLineRow]) -> Value {
    json!({
        "id": q.id, "number": q.number, "reference": format!("Q-{:05}", q.number), "opportunityId": q.opportunity_id,
        "status": q.status, "currency": q.currency, "validUntil": q.valid_until.map(|d| d.to_string()), "terms": q.terms,
        "subtotal": format_cents(q.subtotal_cents), "discount": format_cents(q.discount_cents),
        "tax": format_cents(q.tax_cents), "total": format_cents(q.total_cents),
        "lines": lines.iter().map(|l| json!({
            "name": l.name, "quantity": l.quantity, "unitPrice": format_cents(l.unit_price_cents),
            "discount": l.discount_percent, "taxRate": l.tax_rate, "total": format_cents(l.total_cents),
        })).collect::<Vec<_>>(),
        "version": q.version, "createdAt": rfc3339(q.created_at), "updatedAt": rfc3339(q.updated_at),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuoteBody {
    opportunity_id: String,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    valid_until: Option<String>,
    #[serde(default)]
    terms: Option<String>,
    lines: Vec<quotes::LineInput>,
}

pub async fn create_quote(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<QuoteBody>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let ctx = actor.audit();
    let b = body.into_inner();
    let valid_until = b
        .valid_until
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|v| parse_date("validUntil", v))
        .transpose()?;
    let (q, lines) = db::run(&state.pool, move |c| {
        let q = quotes::create(
            c,
            &ctx,
            &access,
            quotes::QuoteInput {
                opportunity_id: b.opportunity_id,
                currency: b.currency,
                valid_until,
                terms: b.terms.unwrap_or_default(),
                lines: b.lines,
            },
        )?;
        quotes::find(c, &ctx.org_id, &access, &q.id)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/quotes/{}", q.id)))
        .json(quote_json(&q, &lines)))
}

#[derive(Deserialize)]
pub struct QuoteQuery {
    #[serde(rename = "filter[opportunityId]")]
    opportunity_id: Option<String>,
}

pub async fn list_quotes(
    actor: ApiActor,
    state: web::Data<AppState>,
    query: web::Query<QuoteQuery>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let org = actor.org_id().to_string();
    let opp = query.into_inner().opportunity_id.ok_or_else(|| {
        AppError::invalid(
            "filter[opportunityId]",
            "Name the deal whose quotes to list.",
        )
    })?;
    let rows = db::run(&state.pool, move |c| {
        quotes::list_for(c, &org, &access, &opp)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(|q| quote_json(q, &[])).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

pub async fn show_quote(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let org = actor.org_id().to_string();
    let (q, lines) = db::run(&state.pool, move |c| quotes::find(c, &org, &access, &id)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(q.version)))
        .json(quote_json(&q, &lines)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuoteStatus {
    status: String,
    #[serde(default)]
    win_deal: bool,
}

pub async fn quote_status(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<QuoteStatus>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let ctx = actor.audit();
    let b = body.into_inner();
    let (q, lines) =
        crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
            quotes::set_status(c, &ctx, &access, &id, &b.status, b.win_deal, ext)?;
            quotes::find(c, &ctx.org_id, &access, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(quote_json(&q, &lines)))
}

/// Loads what the quote PDF shows and renders it.
pub fn quote_pdf(
    c: &mut DbConn,
    org: &orgs::OrganizationRow,
    access: &Access,
    id: &str,
) -> AppResult<(QuoteRow, Vec<u8>)> {
    let (q, lines) = quotes::find(c, &org.id, access, id)?;
    let deal = service::get(c, &org.id, access, &q.opportunity_id)?;
    let client = crate::domain::clients::store::find(c, &org.id, &deal.client_id)?
        .ok_or(AppError::NotFound)?;
    let bytes = quotes::pdf(&quotes::QuoteDocument {
        org_name: &org.name,
        client_name: &client.display_name,
        deal_name: &deal.name,
        quote: &q,
        lines: &lines,
    });
    Ok((q, bytes))
}

pub async fn quote_pdf_handler(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let org = actor.org.clone();
    let (q, bytes) = db::run(&state.pool, move |c| quote_pdf(c, &org, &access, &id)).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"quote-Q-{:05}.pdf\"", q.number),
        ))
        .body(bytes))
}

// ---------- contracts ----------

pub fn contract_json(c: &ContractRow) -> Value {
    json!({
        "id": c.id, "name": c.name, "clientId": c.client_id, "opportunityId": c.opportunity_id,
        "startDate": c.start_date.to_string(), "endDate": c.end_date.to_string(),
        "value": format_cents(c.value_cents), "currency": c.currency, "renewalTerms": c.renewal_terms,
        "noticeDays": c.notice_days, "status": c.status, "documentName": c.document_name,
        "renewalOpportunityId": c.renewal_opportunity_id,
        "version": c.version, "createdAt": rfc3339(c.created_at), "updatedAt": rfc3339(c.updated_at),
    })
}

#[derive(Deserialize)]
pub struct ContractQuery {
    #[serde(rename = "filter[clientId]")]
    client_id: Option<String>,
    #[serde(rename = "filter[endDate][lte]")]
    ending_before: Option<String>,
    #[serde(rename = "filter[status]")]
    status: Option<String>,
}

pub async fn list_contracts(
    actor: ApiActor,
    state: web::Data<AppState>,
    query: web::Query<ContractQuery>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = record_access(&actor, "client").await?;
    let org = actor.org_id().to_string();
    let q = query.into_inner();
    let ending = q
        .ending_before
        .as_deref()
        .map(|d| parse_date("filter[endDate][lte]", d))
        .transpose()?;
    let rows = db::run(&state.pool, move |c| {
        contracts::list(
            c,
            &org,
            &access,
            q.client_id.as_deref(),
            ending,
            q.status.as_deref(),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(contract_json).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

pub async fn save_contract(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: Option<web::Path<String>>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = record_access(&actor, "client").await?;
    let ctx = actor.audit();
    let currency = actor.org.default_currency.clone();
    let body = object(body)?;
    let id = id.map(web::Path::into_inner);
    let creating = id.is_none();
    let row = db::run(&state.pool, move |c| {
        contracts::save(c, &ctx, &access, id.as_deref(), &body, &currency)
    })
    .await?;
    let mut res = if creating {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res
        .insert_header((header::LOCATION, format!("/api/contracts/{}", row.id)))
        .json(contract_json(&row)))
}

pub async fn create_contract(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    save_contract(actor, state, None, body).await
}

pub async fn update_contract(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    save_contract(actor, state, Some(id), body).await
}

pub async fn show_contract(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = record_access(&actor, "client").await?;
    let org = actor.org_id().to_string();
    let row = db::run(&state.pool, move |c| contracts::get(c, &org, &access, &id)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(row.version)))
        .json(contract_json(&row)))
}

/// `PUT /api/contracts/:id/document` with the file as the raw body; `?name=` names it.
pub async fn upload_document(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = record_access(&actor, "client").await?;
    let ctx = actor.audit();
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let name = query_pairs(&req)?
        .into_iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "contract".into());
    let bytes = body.to_vec();
    db::run(&state.pool, move |c| {
        contracts::attach(c, &ctx, &access, &id, &name, &ctype, bytes)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn download_document(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = record_access(&actor, "client").await?;
    let org = actor.org_id().to_string();
    let row = db::run(&state.pool, move |c| contracts::get(c, &org, &access, &id)).await?;
    let bytes = row.document.ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(
            row.document_type
                .unwrap_or_else(|| "application/octet-stream".into()),
        )
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}\"",
                row.document_name.unwrap_or_else(|| "contract".into())
            ),
        ))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(bytes))
}

pub async fn renew_contract(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let ctx = actor.audit();
    let currency = actor.org.default_currency.clone();
    let (o, json) =
        crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
            let defs = custom_fields::store::list(c, &ctx.org_id, "opportunity", false)?;
            let deal = contracts::renew(
                c,
                &WriteContext {
                    external: ext,
                    rules: ext,
                    ctx: &ctx,
                    access: &access,
                    defs: &defs,
                    default_currency: &currency,
                },
                &id,
            )?;
            shown(c, &ctx.org_id, &access, &deal.id)
        })
        .await?;
    Ok(respond(actix_web::http::StatusCode::CREATED, &o, json))
}

// ---------- analytics ----------

fn scope_from(pairs: &[(String, String)], access: &Access) -> (Scope, Option<NaiveDate>, u32) {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let mut scope = Scope {
        pipeline_id: get("pipeline"),
        owner: get("owner"),
    };
    if !access.oversee {
        scope.owner = Some(access.user_id.clone());
    }
    let from = get("from").and_then(|f| {
        NaiveDate::parse_from_str(&format!("{f}-01"), "%Y-%m-%d")
            .ok()
            .or_else(|| NaiveDate::parse_from_str(&f, "%Y-%m-%d").ok())
    });
    let months = get("months")
        .and_then(|m| m.parse().ok())
        .filter(|m| (1..=24).contains(m))
        .unwrap_or(6);
    (scope, from, months)
}

pub async fn analytics_pipeline(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    actor.require("report", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let (scope, from, months) = scope_from(&query_pairs(&req)?, &access);
    let org = actor.org.clone();
    let f = db::run(&state.pool, move |c| {
        analytics::forecast(
            c,
            &org.id,
            &scope,
            from.unwrap_or_else(|| crate::db::now().date()),
            months,
            &org.default_currency,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(f))
}

pub async fn analytics_performance(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    actor.require("report", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let pairs = query_pairs(&req)?;
    let (scope, _, _) = scope_from(&pairs, &access);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let today = crate::db::now().date();
    let to = get("to")
        .map(|d| parse_date("to", &d))
        .transpose()?
        .unwrap_or(today);
    let from = get("from")
        .map(|d| parse_date("from", &d))
        .transpose()?
        .unwrap_or(to - chrono::Duration::days(90));
    if from > to {
        return Err(AppError::invalid(
            "from",
            "The period starts before it ends.",
        ));
    }
    let org = actor.org_id().to_string();
    let p = db::run(&state.pool, move |c| {
        let names: BTreeMap<String, String> = orgs::store::list_members(
            c,
            &org,
            &orgs::store::MemberFilter {
                limit: 10_000,
                ..Default::default()
            },
        )?
        .into_iter()
        .map(|m| (m.user.id, m.user.name))
        .collect();
        analytics::performance(c, &org, &scope, from, to, &names)
    })
    .await?;
    Ok(HttpResponse::Ok().json(p))
}
