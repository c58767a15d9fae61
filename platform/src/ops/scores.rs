//! Client scores for the API, the console and the worker: one client's scores with their
//! factors (computed now on demand), the clients most at risk within the caller's reach,
//! and the nightly round.

use serde::Serialize;
use serde_json::Value;

use super::Scope;
use crate::db::{self, Pool};
use crate::domain::scores::{self, ScoreRow};
use crate::error::{AppError, AppResult};

/// A client's scores as the API and the console show them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ClientScores)]
pub struct ScoreView {
    pub client_id: String,
    /// 0–100: how engaged the client is (recency, frequency and kind of contact).
    pub engagement: i32,
    /// Realised plus expected value, a decimal string in `currency`.
    pub lifetime_value: String,
    /// What the client has bought (won deals).
    pub realised_value: String,
    pub currency: String,
    /// 0–100: how likely the client is to leave.
    pub churn_risk: i32,
    /// The factors behind each score: `engagement` and `churnRisk` as lists of
    /// `{factor, points}`, `lifetimeValue` as `{realised, expected, basis}`.
    #[schema(value_type = Object)]
    pub factors: Value,
    pub computed_at: String,
}

pub fn view(r: &ScoreRow) -> ScoreView {
    ScoreView {
        client_id: r.client_id.clone(),
        engagement: r.engagement,
        lifetime_value: crate::domain::money::format_cents(r.lifetime_value_cents),
        realised_value: crate::domain::money::format_cents(r.realised_cents),
        currency: r.currency.clone(),
        churn_risk: r.churn_risk,
        factors: r.factors(),
        computed_at: r
            .computed_at
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

/// A client at risk, for the rep's list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AtRisk {
    pub client_id: String,
    pub name: String,
    pub churn_risk: i32,
    /// The reason that weighs most.
    pub reason: String,
}

/// The client's stored scores (computed now when there are none yet).
pub async fn of_client(scope: &Scope, id: String) -> AppResult<ScoreView> {
    // The client must be one the caller sees (the record rule), or it is a 404.
    super::clients::get(scope, id.clone()).await?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let row = match scores::get(c, &org, &id)? {
                Some(r) => Some(r),
                None => scores::compute_client(c, &org, &id)?,
            };
            row.map(|r| view(&r)).ok_or(AppError::NotFound)
        })
        .await
}

/// Computes the client's scores now (after a change the nightly round has not seen).
pub async fn refresh(scope: &Scope, id: String) -> AppResult<ScoreView> {
    super::clients::get(scope, id.clone()).await?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            scores::compute_client(c, &org, &id)?
                .map(|r| view(&r))
                .ok_or(AppError::NotFound)
        })
        .await
}

/// The clients most at risk that the caller may see (a rep: their own), highest first.
pub async fn at_risk(scope: &Scope, min_risk: i32, limit: i64) -> AppResult<Vec<AtRisk>> {
    scope.require("client", "read")?;
    let org = scope.org_id.clone();
    let access = scope.access("client");
    scope
        .read(move |c| {
            let owner = (!access.oversee).then_some(access.user_id.as_str());
            Ok(
                scores::at_risk(c, &org, owner, min_risk.clamp(0, 100), limit.clamp(1, 200))?
                    .into_iter()
                    .map(|(client_id, name, churn_risk, reason)| AtRisk {
                        client_id,
                        name,
                        churn_risk,
                        reason,
                    })
                    .collect(),
            )
        })
        .await
}

/// How often every organization's scores are computed (`RAPPORT_SCORES_HOURS`, default 24).
pub fn every() -> chrono::Duration {
    let hours = std::env::var("RAPPORT_SCORES_HOURS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|h| (1..=168).contains(h))
        .unwrap_or(24);
    chrono::Duration::hours(hours)
}

/// The worker's round: organizations whose scores are due, one after the other.
pub async fn run_due(pool: &Pool) -> AppResult<usize> {
    let due = db::run(pool, |c| Ok(scores::due(c, every())?)).await?;
    let mut n = 0;
    for org in due {
        let o = org.clone();
        // The churn model learns again weekly, before the scores that use it.
        let trained = db::run_unbounded(pool, move |c| {
            let stale = crate::domain::churn::evaluation(c, &o)?
                .is_none_or(|(_, at)| at < db::now() - chrono::Duration::days(7));
            if stale {
                crate::domain::churn::train(c, &o)?;
            }
            Ok(())
        })
        .await;
        if let Err(e) = trained {
            tracing::warn!(org = %org, error = %e, "churn model training failed; the last model or the rules stay");
        }
        let o = org.clone();
        match db::run_unbounded(pool, move |c| scores::compute_org(c, &o)).await {
            Ok(clients) => {
                tracing::info!(org = %org, clients, "computed client scores");
                n += 1;
            }
            Err(e) => tracing::warn!(org = %org, error = %e, "client scores failed"),
        }
    }
    Ok(n)
}

/// "Prevent churn": a check-in task on the client for its owner (or the caller), due in
/// two days, naming the risk and its reasons.
pub async fn prevent_churn(scope: &Scope, id: String) -> AppResult<String> {
    let client = super::clients::get(scope, id.clone()).await?;
    let s = of_client(scope, id.clone()).await?;
    let reasons: Vec<String> = s.factors["churnRisk"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["factor"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut fields = serde_json::Map::new();
    fields.insert(
        "subject".into(),
        Value::String(format!(
            "Check in with {} (churn risk {})",
            client.row.display_name, s.churn_risk
        )),
    );
    fields.insert(
        "content".into(),
        Value::String(if reasons.is_empty() {
            "Planned from the client's churn risk.".into()
        } else {
            format!("Why: {}.", reasons.join("; "))
        }),
    );
    let due = chrono::Utc::now() + chrono::Duration::days(2);
    fields.insert(
        "dueAt".into(),
        Value::String(due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    fields.insert("priority".into(), Value::String("high".into()));
    if let Some(owner) = client.row.assigned_to.clone().or(scope.user_id.clone()) {
        fields.insert("assigneeId".into(), Value::String(owner));
    }
    let task = super::interactions::create_task(scope, id, fields).await?;
    Ok(task.row.id)
}

/// The churn model's last evaluation (`report:read`): whether the risk comes from it, and
/// how well it ranked later, held-out data.
pub async fn churn_model(scope: &Scope) -> AppResult<Option<crate::domain::churn::Evaluation>> {
    scope.require("report", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| Ok(crate::domain::churn::evaluation(c, &org)?.map(|(e, _)| e)))
        .await
}

/// Trains the churn model now and scores every client with the outcome (`report:write`).
pub async fn train_churn_model(scope: &Scope) -> AppResult<crate::domain::churn::Evaluation> {
    scope.require("report", "write")?;
    let org = scope.org_id.clone();
    db::run_unbounded(&scope.pool, move |c| {
        let ev = crate::domain::churn::train(c, &org)?;
        scores::compute_org(c, &org)?;
        Ok(ev)
    })
    .await
}
