//! `GET /api/search?q=&type=client|opportunity&filter[...]=&limit=&cursor=`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::ApiActor;
use crate::error::AppResult;
use crate::state::AppState;
use crate::web::query_pairs;
use crate::web::search::{run, Ask};

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

pub async fn search(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let ask = Ask::from_pairs(&query_pairs(&req)?, &actor.user_id)?;
    let r = run(&actor, &state, &ask).await?;
    let next = ask.offset + ask.limit;
    Ok(HttpResponse::Ok().json(json!({
        "data": r.hits.iter().map(|h| json!({
            "type": h.kind, "id": h.id, "title": h.title, "subtitle": h.subtitle,
            "highlights": h.highlights,
        })).collect::<Vec<_>>(),
        "facets": r.facets,
        "total": r.total,
        "nextCursor": (ask.kind.is_some() && next < r.total).then(|| next.to_string()),
    })))
}

/// `GET /api/search/status`: how far the index is behind the database.
pub async fn status(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let org = actor.org.id.clone();
    let lag = crate::db::run(&state.pool, move |c| Ok(crate::search::lag(c, &org)?)).await?;
    let stats = state.search.stats().await.ok();
    Ok(HttpResponse::Ok().json(json!({
        "pending": lag.pending, "oldestSeconds": lag.oldest_seconds, "lastError": lag.last_error,
        "backend": stats.as_ref().map(|s| s.backend), "documents": stats.map(|s| s.documents),
    })))
}
