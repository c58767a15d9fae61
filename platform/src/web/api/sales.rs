//! The sales API: `/api/pipelines`, `/api/opportunities` (with `/move` and `/history`),
//! `/api/loss-reasons`, `/api/quotes` (with `/pdf`), `/api/contracts` and the analytics
//! under `/api/crm/analytics`. Deals follow `opportunity:*` with `oversee` for others'
//! deals; quotes follow their deal; contracts follow their client.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{etag, if_match_version, rfc3339, ListEnvelope};
use crate::domain::custom_fields::service::Mode;
use crate::domain::money::format_cents;
use crate::domain::pipeline::service::PipelineView;
use crate::domain::pipeline::store::parse_date;
use crate::domain::pipeline::{
    quotes, ContractRow, LossReasonRow, QuoteLineRow, QuoteRow, StageRow,
};
use crate::error::{AppError, AppResult};
use crate::ops;
use crate::ops::deals::{self, DealView};
use crate::ops::pipelines::{self, PipelineInput, PipelinePatch, StageInput, StagePatch};
use crate::ops::sales::{ForecastQuery, PerformanceQuery};
use crate::web::query_pairs;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

fn stage_json(s: &StageRow) -> Value {
    json!({"id": s.id, "name": s.name, "position": s.position, "probability": s.probability, "kind": s.kind, "isActive": s.is_active, "color": s.color})
}

fn pipeline_json(v: &PipelineView) -> Value {
    json!({
        "id": v.pipeline.id, "name": v.pipeline.name, "position": v.pipeline.position,
        "rottingDays": v.pipeline.rotting_days,
        "stages": v.stages.iter().map(stage_json).collect::<Vec<_>>(),
    })
}

pub async fn pipelines(scope: ApiScope) -> AppResult<HttpResponse> {
    let views = pipelines::list(&scope).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: views.iter().map(pipeline_json).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

pub async fn create_pipeline(
    scope: ApiScope,
    body: web::Json<PipelineInput>,
) -> AppResult<HttpResponse> {
    let view = pipelines::create(&scope, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(json!({
        "id": view.pipeline.id, "name": view.pipeline.name, "rottingDays": view.pipeline.rotting_days,
        "stages": view.stages.iter().map(stage_json).collect::<Vec<_>>(),
    })))
}

pub async fn update_pipeline(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<PipelinePatch>,
) -> AppResult<HttpResponse> {
    let p = pipelines::update(&scope, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({"id": p.id, "name": p.name, "rottingDays": p.rotting_days})))
}

pub async fn add_stage(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<StageInput>,
) -> AppResult<HttpResponse> {
    let s = pipelines::add_stage(&scope, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(stage_json(&s)))
}

pub async fn update_stage(
    scope: ApiScope,
    path: web::Path<(String, String)>,
    body: web::Json<StagePatch>,
) -> AppResult<HttpResponse> {
    let (pipeline, stage) = path.into_inner();
    let s = pipelines::update_stage(&scope, pipeline, stage, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(stage_json(&s)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetireInput {
    #[serde(default)]
    move_to: Option<String>,
}

pub async fn retire_stage(
    scope: ApiScope,
    path: web::Path<(String, String)>,
    body: Option<web::Json<RetireInput>>,
) -> AppResult<HttpResponse> {
    let (pipeline, stage) = path.into_inner();
    let move_to = body.and_then(|b| b.into_inner().move_to);
    let moved = pipelines::retire_stage(&scope, pipeline, stage, move_to).await?;
    Ok(HttpResponse::Ok().json(json!({"retired": true, "movedDeals": moved})))
}

fn reason_json(r: &LossReasonRow) -> Value {
    json!({"id": r.id, "name": r.name, "isActive": r.is_active})
}

pub async fn loss_reasons(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = pipelines::loss_reasons(&scope).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(reason_json).collect::<Vec<_>>(),
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
    scope: ApiScope,
    body: web::Json<LossReasonInput>,
) -> AppResult<HttpResponse> {
    let name = body.into_inner().name.unwrap_or_default();
    let r = pipelines::add_loss_reason(&scope, name).await?;
    Ok(HttpResponse::Created().json(reason_json(&r)))
}

pub async fn update_loss_reason(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<LossReasonInput>,
) -> AppResult<HttpResponse> {
    let active = body.into_inner().is_active;
    pipelines::set_loss_reason_active(&scope, id.into_inner(), active).await?;
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

pub async fn history(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let moves = deals::history(&scope, id.into_inner()).await?;
    let data: Vec<Value> = moves
        .into_iter()
        .map(|m| {
            let h = m.row;
            json!({
                "fromStage": h.from_stage_id, "fromStageName": m.from_name,
                "toStage": h.to_stage_id, "toStageName": m.to_name,
                "fromProbability": h.from_probability, "toProbability": h.to_probability,
                "movedBy": h.moved_by, "movedAt": rfc3339(h.moved_at),
            })
        })
        .collect();
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

pub async fn create_quote(scope: ApiScope, body: web::Json<QuoteBody>) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let valid_until = b
        .valid_until
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|v| parse_date("validUntil", v))
        .transpose()?;
    let input = quotes::QuoteInput {
        opportunity_id: b.opportunity_id,
        currency: b.currency,
        valid_until,
        terms: b.terms.unwrap_or_default(),
        lines: b.lines,
    };
    let (q, lines) = ops::quotes::create(&scope, input).await?;
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
    scope: ApiScope,
    query: web::Query<QuoteQuery>,
) -> AppResult<HttpResponse> {
    let opp = query.into_inner().opportunity_id.ok_or_else(|| {
        AppError::invalid(
            "filter[opportunityId]",
            "Name the deal whose quotes to list.",
        )
    })?;
    let rows = ops::quotes::list(&scope, opp).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(|q| quote_json(q, &[])).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

pub async fn show_quote(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (q, lines) = ops::quotes::get(&scope, id.into_inner()).await?;
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
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<QuoteStatus>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let (q, lines) = ops::quotes::set_status(&scope, id.into_inner(), b.status, b.win_deal).await?;
    Ok(HttpResponse::Ok().json(quote_json(&q, &lines)))
}

/// A quote's PDF, shown in the browser.
pub async fn quote_pdf_handler(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (q, bytes) = ops::quotes::pdf(&scope, id.into_inner()).await?;
    Ok(crate::web::upload::pdf_response(&q, bytes))
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
    scope: ApiScope,
    query: web::Query<ContractQuery>,
) -> AppResult<HttpResponse> {
    let q = query.into_inner();
    let filter = ops::contracts::Filter {
        client: q.client_id,
        ending_before: q
            .ending_before
            .as_deref()
            .map(|d| parse_date("filter[endDate][lte]", d))
            .transpose()?,
        status: q.status,
    };
    let rows = ops::contracts::list(&scope, filter).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(contract_json).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

async fn save_contract(
    scope: ApiScope,
    id: Option<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    let creating = id.is_none();
    let row = ops::contracts::save(&scope, id, object(body)?).await?;
    let mut res = if creating {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res
        .insert_header((header::LOCATION, format!("/api/contracts/{}", row.id)))
        .json(contract_json(&row)))
}

pub async fn create_contract(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    save_contract(scope, None, body).await
}

pub async fn update_contract(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    save_contract(scope, Some(id.into_inner()), body).await
}

pub async fn show_contract(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let row = ops::contracts::get(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(row.version)))
        .json(contract_json(&row)))
}

/// `PUT /api/contracts/:id/document` with the file as the raw body; `?name=` names it.
pub async fn upload_document(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let (name, ctype) = crate::web::upload::document_of(&req)?;
    ops::contracts::attach(&scope, id.into_inner(), name, ctype, body.to_vec()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A contract's signed document as a download (404 when none is attached).
pub async fn download_document(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    crate::web::upload::document_response(ops::contracts::get(&scope, id.into_inner()).await?)
}

pub async fn renew_contract(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let view = deals::renew_contract(&scope, id.into_inner()).await?;
    Ok(respond(actix_web::http::StatusCode::CREATED, &view))
}

// ---------- analytics ----------

/// A query parameter, `None` when absent or blank.
fn param(pairs: &[(String, String)], k: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

pub async fn analytics_pipeline(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let q = ForecastQuery {
        pipeline: param(&pairs, "pipeline"),
        owner: param(&pairs, "owner"),
        // `from` is a month (`2026-01`) or a day in it.
        from: param(&pairs, "from").and_then(|f| {
            NaiveDate::parse_from_str(&format!("{f}-01"), "%Y-%m-%d")
                .ok()
                .or_else(|| NaiveDate::parse_from_str(&f, "%Y-%m-%d").ok())
        }),
        months: param(&pairs, "months")
            .and_then(|m| m.parse().ok())
            .filter(|m| (1..=24).contains(m))
            .unwrap_or(6),
    };
    Ok(HttpResponse::Ok().json(ops::sales::forecast(&scope, q).await?))
}

pub async fn analytics_performance(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    // A blank date is refused, as before: only an absent one takes the default.
    let date = |k: &str| {
        let given = pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v);
        given.map(|d| parse_date(k, d)).transpose()
    };
    let q = PerformanceQuery {
        pipeline: param(&pairs, "pipeline"),
        owner: param(&pairs, "owner"),
        from: date("from")?,
        to: date("to")?,
    };
    Ok(HttpResponse::Ok().json(ops::sales::performance(&scope, q).await?))
}
