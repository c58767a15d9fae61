//! The sales API: `/api/pipelines`, `/api/opportunities` (with `/move` and `/history`),
//! `/api/loss-reasons`, `/api/quotes` (with `/pdf`), `/api/contracts` and the analytics
//! under `/api/crm/analytics`. Deals follow `opportunity:*` with `oversee` for others'
//! deals; quotes follow their deal; contracts follow their client.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use std::collections::HashMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{etag, if_match_version, rfc3339, ListEnvelope};
use crate::domain::custom_fields::service::Mode;
use crate::domain::money::format_cents;
use crate::domain::pipeline::analytics::{Forecast, Performance};
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
#[openapi(paths(
    pipelines,
    create_pipeline,
    update_pipeline,
    add_stage,
    update_stage,
    retire_stage,
    loss_reasons,
    add_loss_reason,
    update_loss_reason,
    list,
    create,
    show,
    patch,
    replace,
    delete,
    move_deal,
    history,
    list_quotes,
    create_quote,
    show_quote,
    quote_status,
    quote_pdf_handler,
    list_contracts,
    create_contract,
    show_contract,
    update_contract,
    upload_document,
    download_document,
    renew_contract,
    analytics_pipeline,
    analytics_performance
))]
pub struct Doc;

/// A stage of a pipeline.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PipelineStage)]
pub struct Stage {
    id: String,
    name: String,
    /// Its place in the pipeline, from 0.
    position: i32,
    /// The win probability (0–100) a deal takes on entering it.
    probability: i32,
    /// `open`, `won` or `lost`.
    #[schema(example = "open")]
    kind: String,
    /// Retired stages stay for the deals' history but take no new deals.
    is_active: bool,
    /// A colour name (`blue`, `green`, …).
    #[schema(example = "blue")]
    color: String,
}

fn stage_json(s: &StageRow) -> Stage {
    Stage {
        id: s.id.clone(),
        name: s.name.clone(),
        position: s.position,
        probability: s.probability,
        kind: s.kind.clone(),
        is_active: s.is_active,
        color: s.color.clone(),
    }
}

/// A pipeline with its stages.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    id: String,
    name: String,
    /// Its place among the organization's pipelines.
    position: i32,
    /// Days without activity after which an open deal counts as rotting; null: never.
    rotting_days: Option<i32>,
    stages: Vec<Stage>,
}

fn pipeline_json(v: &PipelineView) -> Pipeline {
    Pipeline {
        id: v.pipeline.id.clone(),
        name: v.pipeline.name.clone(),
        position: v.pipeline.position,
        rotting_days: v.pipeline.rotting_days,
        stages: v.stages.iter().map(stage_json).collect(),
    }
}

/// A pipeline just created, with its stages.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewPipeline {
    id: String,
    name: String,
    /// Days without activity after which an open deal counts as rotting; null: never.
    rotting_days: Option<i32>,
    stages: Vec<Stage>,
}

/// A pipeline's settings after a change.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSettings {
    id: String,
    name: String,
    /// Days without activity after which an open deal counts as rotting; null: never.
    rotting_days: Option<i32>,
}

/// The organization's pipelines with their stages, by position; the default pipeline is made
/// on first use (`pipeline:read`).
#[utoipa::path(get, path = "/api/pipelines", tag = "Pipelines",
    responses((status = 200, description = "Every pipeline (one page, no cursor).", body = ListEnvelope<Pipeline>)))]
pub async fn pipelines(scope: ApiScope) -> AppResult<HttpResponse> {
    let views = pipelines::list(&scope).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: views.iter().map(pipeline_json).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

/// Creates a pipeline (`pipeline:write`) from the stages given or from a plugin's template
/// (`template`), not both.
#[utoipa::path(post, path = "/api/pipelines", tag = "Pipelines", request_body = PipelineInput,
    responses((status = 201, description = "Created.", body = NewPipeline)))]
pub async fn create_pipeline(
    scope: ApiScope,
    body: web::Json<PipelineInput>,
) -> AppResult<HttpResponse> {
    let view = pipelines::create(&scope, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(NewPipeline {
        id: view.pipeline.id.clone(),
        name: view.pipeline.name.clone(),
        rotting_days: view.pipeline.rotting_days,
        stages: view.stages.iter().map(stage_json).collect(),
    }))
}

/// Renames a pipeline or changes its rotting days (`pipeline:write`); `"rottingDays": null`
/// turns rotting off.
#[utoipa::path(patch, path = "/api/pipelines/{id}", tag = "Pipelines", request_body = PipelinePatch,
    params(("id" = String, Path, description = "The pipeline's id.")),
    responses((status = 200, description = "Changed.", body = PipelineSettings)))]
pub async fn update_pipeline(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<PipelinePatch>,
) -> AppResult<HttpResponse> {
    let p = pipelines::update(&scope, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(PipelineSettings {
        id: p.id,
        name: p.name,
        rotting_days: p.rotting_days,
    }))
}

/// Adds an open stage at the end of a pipeline's open stages (`pipeline:write`).
#[utoipa::path(post, path = "/api/pipelines/{id}/stages", tag = "Pipelines", request_body = StageInput,
    params(("id" = String, Path, description = "The pipeline's id.")),
    responses((status = 201, description = "Added.", body = Stage)))]
pub async fn add_stage(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<StageInput>,
) -> AppResult<HttpResponse> {
    let s = pipelines::add_stage(&scope, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(stage_json(&s)))
}

/// Renames, recolours, reweighs or moves a stage (`pipeline:write`).
#[utoipa::path(patch, path = "/api/pipelines/{id}/stages/{stage}", tag = "Pipelines",
    request_body = StagePatch,
    params(
        ("id" = String, Path, description = "The pipeline's id."),
        ("stage" = String, Path, description = "The stage's id.")
    ),
    responses((status = 200, description = "Changed.", body = Stage)))]
pub async fn update_stage(
    scope: ApiScope,
    path: web::Path<(String, String)>,
    body: web::Json<StagePatch>,
) -> AppResult<HttpResponse> {
    let (pipeline, stage) = path.into_inner();
    let s = pipelines::update_stage(&scope, pipeline, stage, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(stage_json(&s)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = RetireStageInput)]
pub struct RetireInput {
    /// The active stage of the same pipeline that takes the stage's open deals (needed when
    /// it holds any).
    #[serde(default)]
    move_to: Option<String>,
}

/// What retiring a stage did.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageRetired {
    /// Always true.
    retired: bool,
    /// How many deals moved to `moveTo`.
    moved_deals: usize,
}

/// Retires a stage (`pipeline:write`): it keeps its history and takes no new deals; its open
/// deals move to `moveTo`. The body is optional.
#[utoipa::path(post, path = "/api/pipelines/{id}/stages/{stage}/retire", tag = "Pipelines",
    request_body(content = Option<RetireInput>, description = "Where the stage's deals go; may be left out."),
    params(
        ("id" = String, Path, description = "The pipeline's id."),
        ("stage" = String, Path, description = "The stage's id.")
    ),
    responses((status = 200, description = "Retired.", body = StageRetired)))]
pub async fn retire_stage(
    scope: ApiScope,
    path: web::Path<(String, String)>,
    body: Option<web::Json<RetireInput>>,
) -> AppResult<HttpResponse> {
    let (pipeline, stage) = path.into_inner();
    let move_to = body.and_then(|b| b.into_inner().move_to);
    let moved = pipelines::retire_stage(&scope, pipeline, stage, move_to).await?;
    Ok(HttpResponse::Ok().json(StageRetired {
        retired: true,
        moved_deals: moved,
    }))
}

/// A reason a deal was lost, offered when moving a deal to a lost stage.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LossReason {
    id: String,
    name: String,
    /// Inactive reasons are no longer offered.
    is_active: bool,
}

fn reason_json(r: &LossReasonRow) -> LossReason {
    LossReason {
        id: r.id.clone(),
        name: r.name.clone(),
        is_active: r.is_active,
    }
}

/// Lists the organization's loss reasons, active or not (`opportunity:read`).
#[utoipa::path(get, path = "/api/loss-reasons", tag = "Pipelines",
    responses((status = 200, description = "Every loss reason (one page, no cursor).", body = ListEnvelope<LossReason>)))]
pub async fn loss_reasons(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = pipelines::loss_reasons(&scope).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(reason_json).collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LossReasonInput {
    /// The reason's name (creating); unique per organization.
    name: Option<String>,
    /// Offers (true) or retires (false) the reason (changing).
    is_active: Option<bool>,
}

/// Adds a loss reason (`pipeline:write`); only `name` is read.
#[utoipa::path(post, path = "/api/loss-reasons", tag = "Pipelines", request_body = LossReasonInput,
    responses((status = 201, description = "Added.", body = LossReason)))]
pub async fn add_loss_reason(
    scope: ApiScope,
    body: web::Json<LossReasonInput>,
) -> AppResult<HttpResponse> {
    let name = body.into_inner().name.unwrap_or_default();
    let r = pipelines::add_loss_reason(&scope, name).await?;
    Ok(HttpResponse::Created().json(reason_json(&r)))
}

/// Offers or retires a loss reason (`pipeline:write`); only `isActive` is read.
#[utoipa::path(patch, path = "/api/loss-reasons/{id}", tag = "Pipelines", request_body = LossReasonInput,
    params(("id" = String, Path, description = "The loss reason's id.")),
    responses((status = 204, description = "Changed.")))]
pub async fn update_loss_reason(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<LossReasonInput>,
) -> AppResult<HttpResponse> {
    let active = body.into_inner().is_active;
    pipelines::set_loss_reason_active(&scope, id.into_inner(), active).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A deal (opportunity).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; DealView::to_json builds it.
#[serde(rename_all = "camelCase")]
pub struct Deal {
    id: String,
    name: String,
    description: String,
    client_id: String,
    /// The pipeline's id.
    pipeline: String,
    /// The stage's id.
    stage: String,
    /// The stage's name (null if the stage is gone).
    stage_name: Option<String>,
    /// A decimal string, e.g. `"1234.50"`.
    #[schema(example = "1234.50")]
    value: String,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    currency: String,
    /// Win probability in percent (0–100): the stage's unless set by hand.
    probability: i32,
    /// `value × probability`, a decimal string.
    #[schema(example = "617.25")]
    weighted_value: String,
    #[schema(format = Date)]
    expected_close_date: Option<String>,
    #[schema(format = Date)]
    actual_close_date: Option<String>,
    /// `open`, `won`, `lost` or `cancelled`.
    #[schema(example = "open")]
    status: String,
    /// The owner's user id.
    assigned_to: Option<String>,
    source: Option<String>,
    /// Competitors' names.
    competitors: Vec<String>,
    loss_reason: Option<String>,
    /// Active custom fields' values by key (sensitive ones only for those allowed).
    custom_fields: HashMap<String, Value>,
    /// Goes up by one with every change; `ETag` is `"v<version>"`.
    version: i64,
    #[schema(format = DateTime)]
    stage_entered_at: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// Its contacts (people), when one deal is shown; absent in lists.
    contacts: Option<Vec<DealContact>>,
    /// Plugin-computed values by reference, when one deal is shown; absent in lists.
    computed: Option<HashMap<String, Value>>,
}

/// A person involved in a deal, and their role in it.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes part of the deal answer and body for /api/openapi.json.
#[serde(rename_all = "camelCase")]
pub struct DealContact {
    /// The person's client id.
    client_id: String,
    /// e.g. `Decision maker` (1–60 characters).
    role: String,
}

/// The fields a deal write accepts; the read-only ones a deal answers with (`id`,
/// `stageName`, `weightedValue`, …) are accepted and ignored, so a fetched deal can be sent
/// back. `PUT` replaces the custom fields, `PATCH` merges them.
#[derive(ToSchema)]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
#[schema(rename_all = "camelCase")]
pub struct DealInput {
    /// Required when creating (1–200 characters).
    name: Option<String>,
    description: Option<String>,
    /// The client it belongs to; required when creating.
    client_id: Option<String>,
    /// The pipeline's id; the first pipeline by default.
    pipeline: Option<String>,
    /// An active stage of the pipeline; its first open stage by default.
    stage: Option<String>,
    /// A decimal string (`"1234.50"`) or a number.
    #[schema(example = "1234.50")]
    value: Option<String>,
    /// ISO 4217 code; the organization's currency by default.
    currency: Option<String>,
    /// 0–100 to set by hand; null to follow the stage again.
    probability: Option<i32>,
    #[schema(format = Date)]
    expected_close_date: Option<String>,
    #[schema(format = Date)]
    actual_close_date: Option<String>,
    /// `cancelled`, or `open` to reopen a cancelled deal; won and lost follow the stage.
    status: Option<String>,
    /// An active member's user id (only oneself without `opportunity:oversee`).
    assigned_to: Option<String>,
    source: Option<String>,
    competitors: Option<Vec<String>>,
    loss_reason: Option<String>,
    /// Custom field values by key.
    custom_fields: Option<HashMap<String, Value>>,
    /// The deal's contacts (people); replaces the set.
    contacts: Option<Vec<DealContact>>,
    /// When changing: the version the change is based on (409 if it moved on), like
    /// `If-Match`.
    version: Option<i64>,
}

/// Lists the deals the caller may see (`opportunity:read`; others' deals need
/// `opportunity:oversee`), newest first, filtered and paged.
#[utoipa::path(get, path = "/api/opportunities", tag = "Deals",
    params(
        ("limit" = Option<i64>, Query, description = "Page size, 1–500 (50)."),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page."),
        ("filter[pipeline]" = Option<String>, Query, description = "A pipeline's id."),
        ("filter[stage]" = Option<String>, Query, description = "A stage's id."),
        ("filter[status]" = Option<String>, Query, description = "Statuses, comma-separated (`open,won`); also `filter[status][in]`."),
        ("filter[assignedTo]" = Option<String>, Query, description = "The owner's user id or `me`; also `filter[owner]`."),
        ("filter[clientId]" = Option<String>, Query, description = "The client's id; also `filter[client]`."),
        ("filter[expectedCloseDate][gte]" = Option<String>, Query, description = "Expected to close on or after (YYYY-MM-DD)."),
        ("filter[expectedCloseDate][lte]" = Option<String>, Query, description = "Expected to close on or before (YYYY-MM-DD)."),
        ("filter[value][gte]" = Option<String>, Query, description = "A value at least this (decimal)."),
        ("filter[value][lte]" = Option<String>, Query, description = "A value at most this (decimal)."),
        ("filter[customFields.<key>][<op>]" = Option<String>, Query, description = "A custom field's value; `op` is eq (default), gt, gte, lt, lte, contains or in.")
    ),
    responses((status = 200, description = "A page of deals (without contacts and computed values).", body = ListEnvelope<Deal>)))]
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

/// Shows a deal with its contacts and plugin-computed values (`opportunity:read`); the
/// `ETag` answers its version.
#[utoipa::path(get, path = "/api/opportunities/{id}", tag = "Deals",
    params(("id" = String, Path, description = "The deal's id.")),
    responses((status = 200, description = "The deal.", body = Deal)))]
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

/// Creates a deal (`opportunity:write`); `Location` names it.
#[utoipa::path(post, path = "/api/opportunities", tag = "Deals", request_body = DealInput,
    responses((status = 201, description = "Created; `Location` names it.", body = Deal)))]
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

/// Changes the fields sent (`opportunity:write`); custom fields are merged. `If-Match`
/// makes it conditional.
#[utoipa::path(patch, path = "/api/opportunities/{id}", tag = "Deals", request_body = DealInput,
    params(
        ("id" = String, Path, description = "The deal's id."),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on.")
    ),
    responses((status = 200, description = "Changed.", body = Deal)))]
pub async fn patch(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(scope, req, id.into_inner(), body, Mode::Merge).await
}

/// Replaces a deal (`opportunity:write`): the custom fields sent replace the stored ones.
/// `If-Match` makes it conditional.
#[utoipa::path(put, path = "/api/opportunities/{id}", tag = "Deals", request_body = DealInput,
    params(
        ("id" = String, Path, description = "The deal's id."),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on.")
    ),
    responses((status = 200, description = "Replaced.", body = Deal)))]
pub async fn replace(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(scope, req, id.into_inner(), body, Mode::Replace).await
}

/// Deletes a deal (`opportunity:delete`).
#[utoipa::path(delete, path = "/api/opportunities/{id}", tag = "Deals",
    params(("id" = String, Path, description = "The deal's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    deals::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = DealMoveInput)]
pub struct MoveInput {
    /// The target stage's id (an active stage of the deal's pipeline).
    stage: String,
    /// Why the deal was lost, when moving it to a lost stage.
    #[serde(default)]
    loss_reason: Option<String>,
}

/// Moves a deal to another stage (`opportunity:write`); a won or lost stage closes it and
/// the plugins' stage rules apply. `If-Match` makes it conditional.
#[utoipa::path(post, path = "/api/opportunities/{id}/move", tag = "Deals", request_body = MoveInput,
    params(
        ("id" = String, Path, description = "The deal's id."),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the move is based on.")
    ),
    responses((status = 200, description = "Moved.", body = Deal)))]
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

/// One stage move of a deal.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DealMove {
    /// The stage left; null for the deal's first stage.
    from_stage: Option<String>,
    from_stage_name: Option<String>,
    to_stage: String,
    /// Null if the stage is gone.
    to_stage_name: Option<String>,
    from_probability: Option<i32>,
    to_probability: i32,
    /// The user who moved it; null for automations.
    moved_by: Option<String>,
    #[schema(format = DateTime)]
    moved_at: String,
}

/// A deal's stage moves, oldest first (`opportunity:read`).
#[utoipa::path(get, path = "/api/opportunities/{id}/history", tag = "Deals",
    params(("id" = String, Path, description = "The deal's id.")),
    responses((status = 200, description = "Every move (one page, no cursor).", body = ListEnvelope<DealMove>)))]
pub async fn history(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let moves = deals::history(&scope, id.into_inner()).await?;
    let data: Vec<DealMove> = moves
        .into_iter()
        .map(|m| {
            let h = m.row;
            DealMove {
                from_stage: h.from_stage_id,
                from_stage_name: m.from_name,
                to_stage: h.to_stage_id,
                to_stage_name: m.to_name,
                from_probability: h.from_probability,
                to_probability: h.to_probability,
                moved_by: h.moved_by,
                moved_at: rfc3339(h.moved_at),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

// ---------- quotes ----------

/// A line of a quote.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuoteLine {
    name: String,
    /// A decimal string, e.g. `"2.5"`.
    #[schema(example = "2.5")]
    quantity: String,
    /// A decimal string.
    #[schema(example = "100.00")]
    unit_price: String,
    /// Percent off, a decimal string.
    #[schema(example = "10")]
    discount: String,
    /// Tax percent, a decimal string.
    #[schema(example = "19")]
    tax_rate: String,
    /// The line's total after discount, a decimal string.
    total: String,
}

/// A quote on a deal, with exact decimal totals.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    id: String,
    /// Numbered per organization.
    number: i32,
    /// `Q-00042`.
    #[schema(example = "Q-00042")]
    reference: String,
    opportunity_id: String,
    /// `draft`, `sent`, `accepted`, `declined` or `expired`.
    #[schema(example = "draft")]
    status: String,
    /// ISO 4217 code.
    currency: String,
    #[schema(format = Date)]
    valid_until: Option<String>,
    terms: String,
    /// Decimal strings.
    subtotal: String,
    discount: String,
    tax: String,
    total: String,
    /// Its lines (empty in lists).
    lines: Vec<QuoteLine>,
    version: i64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

fn quote_json(q: &QuoteRow, lines: &[QuoteLineRow]) -> Quote {
    Quote {
        id: q.id.clone(),
        number: q.number,
        reference: format!("Q-{:05}", q.number),
        opportunity_id: q.opportunity_id.clone(),
        status: q.status.clone(),
        currency: q.currency.clone(),
        valid_until: q.valid_until.map(|d| d.to_string()),
        terms: q.terms.clone(),
        subtotal: format_cents(q.subtotal_cents),
        discount: format_cents(q.discount_cents),
        tax: format_cents(q.tax_cents),
        total: format_cents(q.total_cents),
        lines: lines
            .iter()
            .map(|l| QuoteLine {
                name: l.name.clone(),
                quantity: l.quantity.clone(),
                unit_price: format_cents(l.unit_price_cents),
                discount: l.discount_percent.clone(),
                tax_rate: l.tax_rate.clone(),
                total: format_cents(l.total_cents),
            })
            .collect(),
        version: q.version,
        created_at: rfc3339(q.created_at),
        updated_at: rfc3339(q.updated_at),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = QuoteInput)]
pub struct QuoteBody {
    /// The deal quoted.
    opportunity_id: String,
    /// ISO 4217 code; the deal's currency by default.
    #[serde(default)]
    currency: Option<String>,
    /// YYYY-MM-DD; blank or absent for none.
    #[serde(default)]
    #[schema(format = Date)]
    valid_until: Option<String>,
    #[serde(default)]
    terms: Option<String>,
    /// 1 to 200 lines.
    lines: Vec<quotes::LineInput>,
}

/// Creates a draft quote on a deal (`opportunity:write` on the deal); totals are computed.
#[utoipa::path(post, path = "/api/quotes", tag = "Quotes", request_body = QuoteBody,
    responses((status = 201, description = "Created; `Location` names it.", body = Quote)))]
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
#[serde(deny_unknown_fields)]
pub struct QuoteQuery {
    #[serde(rename = "filter[opportunityId]")]
    opportunity_id: Option<String>,
    #[serde(rename = "filter[status]")]
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// Lists quotes without their lines: a deal's (`filter[opportunityId]`, all of them), or the
/// organization's on deals the caller may see, newest number first, a page at a time
/// (`opportunity:read`; the deals' record rule applies).
#[utoipa::path(get, path = "/api/quotes", tag = "Quotes",
    params(
        ("filter[opportunityId]" = Option<String>, Query, description = "Only this deal's quotes (then one page, no cursor)."),
        ("filter[status]" = Option<String>, Query, description = "`draft`, `sent`, `accepted`, `declined` or `expired`."),
        ("limit" = Option<i64>, Query, description = "1–500, default 50 (organization-wide list)."),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page."),
    ),
    responses((status = 200, description = "The quotes (`lines` empty).", body = ListEnvelope<Quote>)))]
pub async fn list_quotes(
    scope: ApiScope,
    query: web::Query<QuoteQuery>,
) -> AppResult<HttpResponse> {
    let q = query.into_inner();
    if let Some(opp) = q.opportunity_id {
        let rows = ops::quotes::list(&scope, opp).await?;
        return Ok(HttpResponse::Ok().json(ListEnvelope {
            data: rows
                .iter()
                .filter(|r| q.status.as_deref().is_none_or(|s| r.status == s))
                .map(|r| quote_json(r, &[]))
                .collect(),
            next_cursor: None,
        }));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::invalid(
            "limit",
            "Use a whole number from 1 to 500.",
        ));
    }
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<i32>().map_err(|_| {
            AppError::invalid("cursor", "Pass the nextCursor of the previous page.")
        })?),
        None => None,
    };
    let mut rows = ops::quotes::list_all(&scope, q.status, before, limit + 1).await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|l| l.quote.number.to_string())
    });
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(|l| quote_json(&l.quote, &[])).collect(),
        next_cursor: next_cursor.flatten(),
    }))
}

/// Shows a quote with its lines (`opportunity:read` on its deal); the `ETag` answers its
/// version.
#[utoipa::path(get, path = "/api/quotes/{id}", tag = "Quotes",
    params(("id" = String, Path, description = "The quote's id.")),
    responses((status = 200, description = "The quote.", body = Quote)))]
pub async fn show_quote(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (q, lines) = ops::quotes::get(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(q.version)))
        .json(quote_json(&q, &lines)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = QuoteStatusInput)]
pub struct QuoteStatus {
    /// `draft`, `sent`, `accepted`, `declined` or `expired` (draft → sent → accepted,
    /// declined, expired or back to draft; a draft may expire).
    #[schema(example = "sent")]
    status: String,
    /// With `accepted`: also move the deal to its pipeline's won stage.
    #[serde(default)]
    win_deal: bool,
}

/// Changes a quote's status (`opportunity:write` on its deal); accepting may win the deal.
#[utoipa::path(post, path = "/api/quotes/{id}/status", tag = "Quotes", request_body = QuoteStatus,
    params(("id" = String, Path, description = "The quote's id.")),
    responses((status = 200, description = "Changed.", body = Quote)))]
pub async fn quote_status(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<QuoteStatus>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    let (q, lines) = ops::quotes::set_status(&scope, id.into_inner(), b.status, b.win_deal).await?;
    Ok(HttpResponse::Ok().json(quote_json(&q, &lines)))
}

/// A quote's PDF, shown in the browser (`opportunity:read` on its deal).
#[utoipa::path(get, path = "/api/quotes/{id}/pdf", tag = "Quotes",
    params(("id" = String, Path, description = "The quote's id.")),
    responses((status = 200, description = "The PDF, inline as `quote-Q-00042.pdf`.", content_type = "application/pdf", body = String)))]
pub async fn quote_pdf_handler(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (q, bytes) = ops::quotes::pdf(&scope, id.into_inner()).await?;
    Ok(crate::web::upload::pdf_response(&q, bytes))
}

// ---------- contracts ----------

/// A contract with a client.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    id: String,
    name: String,
    client_id: String,
    /// The deal it came from.
    opportunity_id: Option<String>,
    #[schema(format = Date)]
    start_date: String,
    #[schema(format = Date)]
    end_date: String,
    /// A decimal string.
    #[schema(example = "24000.00")]
    value: String,
    /// ISO 4217 code.
    currency: String,
    renewal_terms: String,
    /// Days of notice before the end date.
    notice_days: i32,
    /// `draft`, `active`, `expired`, `terminated` or `renewed`.
    #[schema(example = "active")]
    status: String,
    /// The signed document's file name; null without one.
    document_name: Option<String>,
    /// The deal opened to renew it.
    renewal_opportunity_id: Option<String>,
    version: i64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

fn contract_json(c: &ContractRow) -> Contract {
    Contract {
        id: c.id.clone(),
        name: c.name.clone(),
        client_id: c.client_id.clone(),
        opportunity_id: c.opportunity_id.clone(),
        start_date: c.start_date.to_string(),
        end_date: c.end_date.to_string(),
        value: format_cents(c.value_cents),
        currency: c.currency.clone(),
        renewal_terms: c.renewal_terms.clone(),
        notice_days: c.notice_days,
        status: c.status.clone(),
        document_name: c.document_name.clone(),
        renewal_opportunity_id: c.renewal_opportunity_id.clone(),
        version: c.version,
        created_at: rfc3339(c.created_at),
        updated_at: rfc3339(c.updated_at),
    }
}

/// The fields a contract write accepts; the read-only ones a contract answers with (`id`,
/// `createdAt`, …) are accepted and ignored, so a fetched contract can be sent back.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct ContractInput {
    /// Required when creating (up to 200 characters).
    name: Option<String>,
    /// A client the caller can see; required when creating.
    client_id: Option<String>,
    /// A deal the caller can see; null or blank for none.
    opportunity_id: Option<String>,
    /// YYYY-MM-DD; today by default.
    #[schema(format = Date)]
    start_date: Option<String>,
    /// YYYY-MM-DD, not before the start; a year after today by default.
    #[schema(format = Date)]
    end_date: Option<String>,
    /// A decimal string (`"24000"`) or a number, 0 or more.
    value: Option<String>,
    /// ISO 4217 code; the organization's currency by default.
    currency: Option<String>,
    renewal_terms: Option<String>,
    /// 0–3650 (30 by default).
    notice_days: Option<i32>,
    /// `draft`, `active` (default), `expired`, `terminated` or `renewed`.
    status: Option<String>,
    /// When changing: the version the change is based on (409 if it moved on).
    version: Option<i64>,
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

/// Lists the contracts of clients the caller may see (`client:read`).
#[utoipa::path(get, path = "/api/contracts", tag = "Contracts",
    params(
        ("filter[clientId]" = Option<String>, Query, description = "A client's id."),
        ("filter[endDate][lte]" = Option<String>, Query, description = "Ending on or before (YYYY-MM-DD)."),
        ("filter[status]" = Option<String>, Query, description = "`draft`, `active`, `expired`, `terminated` or `renewed`.")
    ),
    responses((status = 200, description = "The contracts (one page, no cursor).", body = ListEnvelope<Contract>)))]
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
        data: rows.iter().map(contract_json).collect(),
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

/// Creates a contract for a client (`client:write`).
#[utoipa::path(post, path = "/api/contracts", tag = "Contracts", request_body = ContractInput,
    responses((status = 201, description = "Created; `Location` names it.", body = Contract)))]
pub async fn create_contract(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    save_contract(scope, None, body).await
}

/// Changes the fields sent of a contract (`client:write`); a `version` in the body must
/// still hold.
#[utoipa::path(patch, path = "/api/contracts/{id}", tag = "Contracts", request_body = ContractInput,
    params(("id" = String, Path, description = "The contract's id.")),
    responses((status = 200, description = "Changed; `Location` names it.", body = Contract)))]
pub async fn update_contract(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    save_contract(scope, Some(id.into_inner()), body).await
}

/// Shows a contract (`client:read`); the `ETag` answers its version.
#[utoipa::path(get, path = "/api/contracts/{id}", tag = "Contracts",
    params(("id" = String, Path, description = "The contract's id.")),
    responses((status = 200, description = "The contract.", body = Contract)))]
pub async fn show_contract(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let row = ops::contracts::get(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(row.version)))
        .json(contract_json(&row)))
}

/// Attaches the signed document to a contract (`client:write`), replacing any: the file is
/// the raw body (up to 10 MiB), its `Content-Type` kept, `?name=` its file name.
#[utoipa::path(put, path = "/api/contracts/{id}/document", tag = "Contracts",
    request_body(description = "The file itself, in any type.", content(("application/pdf"), ("application/octet-stream"), ("*/*"))),
    params(
        ("id" = String, Path, description = "The contract's id."),
        ("name" = Option<String>, Query, description = "The file name (`contract` by default).")
    ),
    responses((status = 204, description = "Attached.")))]
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

/// Downloads a contract's signed document (`client:read`; 404 when none is attached).
///
/// Answers the document in the type it was uploaded with, as an attachment.
#[utoipa::path(get, path = "/api/contracts/{id}/document", tag = "Contracts",
    params(("id" = String, Path, description = "The contract's id.")),
    responses((status = 200, description = "The document, in the type it was uploaded with.",
        content(
            (String = "application/pdf"),
            (String = "image/png"),
            (String = "image/jpeg"),
            (String = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            (String = "application/msword"),
            (String = "text/plain"),
            (String = "application/octet-stream"),
            (String = "*/*")
        ))))]
pub async fn download_document(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    crate::web::upload::document_response(ops::contracts::get(&scope, id.into_inner()).await?)
}

/// Opens a renewal deal for a contract (`opportunity:write`), valued as the contract and
/// expected to close at its end.
#[utoipa::path(post, path = "/api/contracts/{id}/renew", tag = "Contracts",
    params(("id" = String, Path, description = "The contract's id.")),
    responses((status = 201, description = "The renewal deal; `Location` names it.", body = Deal)))]
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

/// The weighted forecast by month and currency, with the stages' historical win rates
/// (`report:read` and `opportunity:read`; without `opportunity:oversee` only one's own deals).
#[utoipa::path(get, path = "/api/crm/analytics/pipeline", tag = "Analytics",
    params(
        ("pipeline" = Option<String>, Query, description = "A pipeline's id; all by default."),
        ("owner" = Option<String>, Query, description = "An owner's user id or `me`; everyone's by default."),
        ("from" = Option<String>, Query, description = "The first month (`2026-01` or a day in it); this month by default."),
        ("months" = Option<u32>, Query, description = "How many months, 1–24 (6).")
    ),
    responses((status = 200, description = "The forecast.", body = Forecast)))]
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

/// Won and lost deals per rep and for the team, and the time deals spend in each stage
/// (`report:read` and `opportunity:read`; without `opportunity:oversee` only one's own deals).
#[utoipa::path(get, path = "/api/crm/analytics/performance", tag = "Analytics",
    params(
        ("pipeline" = Option<String>, Query, description = "A pipeline's id; all by default."),
        ("owner" = Option<String>, Query, description = "An owner's user id or `me`; everyone's by default."),
        ("from" = Option<String>, Query, description = "The first day (YYYY-MM-DD); 90 days before `to` by default."),
        ("to" = Option<String>, Query, description = "The last day (YYYY-MM-DD); today by default.")
    ),
    responses((status = 200, description = "The figures.", body = Performance)))]
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
