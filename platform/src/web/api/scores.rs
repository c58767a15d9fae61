//! Client scores: engagement, lifetime value and churn risk with their factors
//! (`client:read`, on the clients the caller may see), and the clients most at risk.

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::ListEnvelope;
use crate::error::AppResult;
use crate::ops::scores::{self as ops, AtRisk, ScoreView};
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    show,
    refresh,
    at_risk,
    prevent_churn,
    overview,
    churn_model,
    train_churn_model
))]
pub struct Doc;

/// A client's engagement score, lifetime value and churn risk, each with the factors that
/// produced it. Computed nightly; computed now when the client has none yet.
#[utoipa::path(get, path = "/api/clients/{id}/scores", tag = "Scores",
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "The scores.", body = ScoreView)))]
pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::of_client(&scope, id.into_inner()).await?))
}

/// Computes a client's scores now, from its data as it stands.
#[utoipa::path(post, path = "/api/clients/{id}/scores", tag = "Scores",
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "The new scores.", body = ScoreView)))]
pub async fn refresh(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::refresh(&scope, id.into_inner()).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtRiskQuery {
    min_risk: Option<i32>,
    limit: Option<i64>,
}

/// The clients most likely to leave that the caller may see (a rep: their own), highest
/// risk first, with the reason that weighs most. Inactive clients are left out.
#[utoipa::path(get, path = "/api/scores/at-risk", tag = "Scores",
    params(
        ("minRisk" = Option<i32>, Query, description = "Lowest churn risk listed, 0–100 (default 50)."),
        ("limit" = Option<i64>, Query, description = "How many, 1–200 (default 50)."),
    ),
    responses((status = 200, description = "Clients at risk.", body = ListEnvelope<AtRisk>)))]
pub async fn at_risk(scope: ApiScope, q: web::Query<AtRiskQuery>) -> AppResult<HttpResponse> {
    let data = ops::at_risk(&scope, q.min_risk.unwrap_or(50), q.limit.unwrap_or(50)).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// The task a prevent-churn action made.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedTask {
    task_id: String,
}

/// "Prevent churn": plans a high-priority check-in task on the client for its owner, due in
/// two days, with the churn risk's reasons (`interaction:write`).
#[utoipa::path(post, path = "/api/clients/{id}/prevent-churn", tag = "Scores",
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 201, description = "The task was planned; see `/api/interactions/{taskId}`.", body = PlannedTask)))]
pub async fn prevent_churn(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let task_id = ops::prevent_churn(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Created().json(PlannedTask { task_id }))
}

#[derive(Deserialize)]
pub struct OverviewQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The figures that matter at a glance, for a period (default: the last 30 days): clients
/// by status, new clients, the open pipeline per currency, the win rate of deals closed in
/// the period, activities, and clients at risk — within the caller's reach.
#[utoipa::path(get, path = "/api/crm/analytics/overview", tag = "Scores",
    params(
        ("from" = Option<String>, Query, description = "First day, `YYYY-MM-DD` (default: 29 days before `to`)."),
        ("to" = Option<String>, Query, description = "Last day, `YYYY-MM-DD` (default: today)."),
    ),
    responses((status = 200, description = "The overview.", body = crate::ops::overview::Overview)))]
pub async fn overview(scope: ApiScope, q: web::Query<OverviewQuery>) -> AppResult<HttpResponse> {
    let day = |k: &str, v: &Option<String>| -> AppResult<Option<chrono::NaiveDate>> {
        match v.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| crate::error::AppError::invalid(k, "Use a date like 2026-12-31.")),
        }
    };
    let (from, to) = (day("from", &q.from)?, day("to", &q.to)?);
    Ok(HttpResponse::Ok().json(crate::ops::overview::overview(&scope, from, to).await?))
}

/// The learned churn model's last evaluation: clients in the snapshot, how many went quiet,
/// the AUC on later held-out data, and whether the churn risk comes from it (else the
/// rules). 404 before the first training.
#[utoipa::path(get, path = "/api/scores/churn-model", tag = "Scores",
    responses((status = 200, description = "The evaluation.", body = crate::domain::churn::Evaluation)))]
pub async fn churn_model(scope: ApiScope) -> AppResult<HttpResponse> {
    match ops::churn_model(&scope).await? {
        Some(e) => Ok(HttpResponse::Ok().json(e)),
        None => Err(crate::error::AppError::NotFound),
    }
}

/// Trains the churn model on the organization's history now (weekly otherwise) and scores
/// every client again (`report:write`).
#[utoipa::path(post, path = "/api/scores/churn-model", tag = "Scores",
    responses((status = 200, description = "The new evaluation.", body = crate::domain::churn::Evaluation)))]
pub async fn train_churn_model(scope: ApiScope) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::train_churn_model(&scope).await?))
}
