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
use crate::auth::ApiActor;
use crate::db;
use crate::domain::clients::service::Access;
use crate::domain::custom_fields::service::Mode;
use crate::domain::money::format_cents;
use crate::domain::orgs;
use crate::domain::pipeline::analytics::{self, Scope};
use crate::domain::pipeline::service;
use crate::domain::pipeline::store::parse_date;
use crate::domain::pipeline::{
    contracts, quotes, store, ContractRow, QuoteLineRow, QuoteRow, StageRow,
};
use crate::error::{AppError, AppResult};
use crate::ops::deals::{self, DealView};
use crate::state::AppState;
use crate::web::scope::ApiScope;
use crate::web::{query_pairs, record_access};

fn stage_json(s: &StageRow) -> Value {
    json!({"id": s.id, "name": s.name, "position": s.position, "probability": s.probability, "kind": s.kind, "isActive": s.is_active, "color": s.color})
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

pub async fn list(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    let page = deals::list(&scope, query_pairs(&req)?).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: page.data,
        next_cursor: page.next_cursor,
    }))
}

fn respond(status: actix_web::http::StatusCode, view: &DealView) -> HttpResponse {
    let mut r = HttpResponse::build(status);
    r.insert_header((header::ETAG, etag(view.row.version)));
    if status == actix_web::http::StatusCode::CREATED {
        r.insert_header((
            header::LOCATION,
            format!("/api/opportunities/{}", view.row.id),
        ));
    }
    r.json(view)
}

pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let view = deals::get(&scope, id.into_inner()).await?;
    Ok(respond(actix_web::http::StatusCode::OK, &view))
}

fn object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid("body", "Send a JSON object.")),
    }
}

pub async fn create(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let view = deals::create(&scope, object(body)?).await?;
    Ok(respond(actix_web::http::StatusCode::CREATED, &view))
}

async fn write(
    scope: ApiScope,
    req: HttpRequest,
    id: String,
    body: web::Json<Value>,
    mode: Mode,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let view = deals::update(&scope, id, object(body)?, mode, expected).await?;
    Ok(respond(actix_web::http::StatusCode::OK, &view))
}

pub async fn patch(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(scope, req, id.into_inner(), body, Mode::Merge).await
}

pub async fn replace(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(scope, req, id.into_inner(), body, Mode::Replace).await
}

pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    deals::delete(&scope, id.into_inner()).await?;
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
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<MoveInput>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let expected = if_match_version(&req)?;
    let view = deals::move_to(&scope, id.into_inner(), b.stage, b.loss_reason, expected).await?;
    Ok(respond(actix_web::http::StatusCode::OK, &view))
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

pub async fn quote_pdf_handler(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let org = actor.org.clone();
    let (q, bytes) = db::run(&state.pool, move |c| {
        quotes::quote_pdf(c, &org, &access, &id)
    })
    .await?;
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

pub async fn renew_contract(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let view = deals::renew_contract(&scope, id.into_inner()).await?;
    Ok(respond(actix_web::http::StatusCode::CREATED, &view))
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
