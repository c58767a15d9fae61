//! Webhook subscriptions and deliveries, for the API and the console alike, and the
//! worker's round that sends what is due.

use futures_util::StreamExt;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use super::Scope;
use crate::db::{self, Pool};
use crate::domain::webhooks::{
    self, DeliveryRow, Due, Outcome, SubscriptionInput, SubscriptionRow,
};
use crate::error::{AppError, AppResult};
use crate::integrations::secret::Key;

/// A receiver gets this long to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries sent per worker round.
const PER_ROUND: i64 = 100;
/// Deliveries posted at the same time by one worker.
const AT_ONCE: usize = 16;

/// A subscription's fields from the API's JSON or the console's form.
pub fn input_from(body: &Map<String, Value>) -> AppResult<SubscriptionInput> {
    const KEYS: &[&str] = &["url", "description", "events", "active", "allowPrivateHost"];
    if let Some(k) = body.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(AppError::invalid(k, "Unknown field."));
    }
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let flag = |k: &str| -> AppResult<Option<bool>> {
        match body.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(AppError::invalid(k, "Use true or false.")),
        }
    };
    let events = match body.get("events") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|e| {
                    e.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| AppError::invalid("events", "Give event types as text."))
                })
                .collect::<AppResult<Vec<_>>>()?,
        ),
        Some(_) => {
            return Err(AppError::invalid(
                "events",
                "Give a list of event types, like [\"client.created\"].",
            ))
        }
    };
    Ok(SubscriptionInput {
        url: text("url"),
        description: text("description"),
        events,
        active: flag("active")?,
        allow_private: flag("allowPrivateHost")?,
    })
}

pub async fn list(scope: &Scope) -> AppResult<Vec<SubscriptionRow>> {
    scope.require("webhook", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| webhooks::list(c, &org)).await
}

pub async fn get(scope: &Scope, id: String) -> AppResult<SubscriptionRow> {
    scope.require("webhook", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| webhooks::get(c, &org, &id)).await
}

/// Creates one; answers it with its secret (shown this once).
pub async fn create(
    scope: &Scope,
    input: SubscriptionInput,
) -> AppResult<(SubscriptionRow, String)> {
    scope.require("webhook", "admin")?;
    let (ctx, key) = (scope.audit.clone(), scope.secret.clone());
    // why: checking the URL resolves its host (a blocking lookup); it runs on the pool.
    scope
        .read(move |c| webhooks::create(c, &key, &ctx, input))
        .await
}

pub async fn update(
    scope: &Scope,
    id: String,
    input: SubscriptionInput,
) -> AppResult<SubscriptionRow> {
    scope.require("webhook", "admin")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| webhooks::update(c, &ctx, &id, input))
        .await
}

pub async fn delete(scope: &Scope, id: String) -> AppResult<()> {
    scope.require("webhook", "admin")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| webhooks::delete(c, &ctx, &id)).await
}

pub async fn rotate(scope: &Scope, id: String) -> AppResult<String> {
    scope.require("webhook", "admin")?;
    let (ctx, key) = (scope.audit.clone(), scope.secret.clone());
    scope
        .read(move |c| webhooks::rotate(c, &key, &ctx, &id))
        .await
}

pub async fn send_test(scope: &Scope, id: String) -> AppResult<DeliveryRow> {
    scope.require("webhook", "admin")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| webhooks::send_test(c, &ctx, &id)).await
}

pub async fn deliveries(
    scope: &Scope,
    id: String,
    status: Option<String>,
    event: Option<String>,
    before: Option<String>,
    limit: i64,
) -> AppResult<Vec<DeliveryRow>> {
    scope.require("webhook", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            webhooks::deliveries(
                c,
                &org,
                &id,
                status.as_deref(),
                event.as_deref(),
                before.as_deref(),
                limit,
            )
        })
        .await
}

pub async fn replay(
    scope: &Scope,
    id: String,
    one: Option<String>,
    range: Option<(NaiveDateTime, NaiveDateTime)>,
) -> AppResult<usize> {
    scope.require("webhook", "admin")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| webhooks::replay(c, &ctx, &id, one.as_deref(), range))
        .await
}

static AGENT: std::sync::LazyLock<ureq::Agent> =
    std::sync::LazyLock::new(|| crate::integrations::outbound_agent(TIMEOUT));

/// One attempt: signed, posted by [`send`].
fn post(due: &Due) -> Outcome {
    let body = due.delivery.payload.clone();
    let ts = chrono::Utc::now().timestamp();
    let signature = webhooks::signature(&due.secrets, &due.delivery.id, ts, &body);
    send(
        &due.url,
        due.allow_private,
        body,
        vec![
            ("webhook-id", due.delivery.id.clone()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature),
        ],
    )
}

/// Posts JSON to a target checked again (its name may resolve elsewhere since it was
/// saved). Plain http goes to the very address that was checked, so a second lookup cannot
/// rebind it; https is held to the name's certificate. Workflow steps call it too.
pub fn send(
    url: &str,
    allow_private: bool,
    body: String,
    headers: Vec<(&'static str, String)>,
) -> Outcome {
    let started = Instant::now();
    let fail = |e: String| Outcome {
        status: None,
        excerpt: None,
        duration_ms: started.elapsed().as_millis() as i32,
        error: Some(e),
    };
    let (url, ips) = match webhooks::resolve(url, allow_private) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut target = url.clone();
    let host = url.host_str().unwrap_or_default().to_string();
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    if url.scheme() == "http" && target.set_ip_host(ips[0]).is_err() {
        return fail(format!("{host} could not be pinned to {}", ips[0]));
    }
    let mut builder = ureq::http::Request::builder()
        .method("POST")
        .uri(target.as_str())
        .header("content-type", "application/json")
        .header("user-agent", "Rapport-Webhooks/1");
    for (k, v) in headers {
        builder = builder.header(k, v);
    }
    if url.scheme() == "http" {
        builder = builder.header("host", host_header);
    }
    let request = match builder.body(body) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    match AGENT.run(request) {
        Ok(mut response) => {
            let status = i32::from(response.status().as_u16());
            let excerpt = response
                .body_mut()
                .with_config()
                .limit(4096)
                .read_to_string()
                .unwrap_or_default();
            Outcome {
                status: Some(status),
                excerpt: Some(excerpt),
                duration_ms: started.elapsed().as_millis() as i32,
                error: (!(200..300).contains(&status)).then(|| format!("HTTP {status}")),
            }
        }
        Err(e) => fail(e.to_string()),
    }
}

/// The worker's round: sends what is due; answers how many were tried.
pub async fn deliver_due(pool: &Pool, key: &Key) -> AppResult<usize> {
    let k = key.clone();
    let due = db::run(pool, move |c| webhooks::claim(c, &k, PER_ROUND)).await?;
    let n = due.len();
    // A claimed batch holds at most one delivery per subscription and record (the claim
    // passes over a delivery while an earlier one of its record waits), so posting them at
    // the same time keeps the order per record.
    let results: Vec<AppResult<(Due, webhooks::Outcome)>> = futures_util::stream::iter(due)
        .map(|d| async move {
            let outcome = actix_web::web::block({
                let d = Due {
                    delivery: d.delivery.clone(),
                    url: d.url.clone(),
                    allow_private: d.allow_private,
                    secrets: d.secrets.clone(),
                };
                move || post(&d)
            })
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
            Ok((d, outcome))
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let done = results.into_iter().collect::<AppResult<Vec<_>>>()?;
    let batch = std::sync::Arc::new(done);
    let all = batch.clone();
    if let Err(e) = db::run(pool, move |c| webhooks::record_all(c, &all)).await {
        // One delivery's record failing must not send the others again: each on its own.
        tracing::warn!(error = %e, "recording a round of webhook deliveries; one by one");
        for (d, outcome) in batch.iter() {
            let (d, outcome) = (d.clone(), outcome.clone());
            db::run(pool, move |c| webhooks::record(c, &d, outcome)).await?;
        }
    }
    Ok(n)
}
