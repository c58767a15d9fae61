//! `GET /api/search?q=&type=client|opportunity&filter[...]=&limit=&cursor=`.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::ApiActor;
use crate::error::AppResult;
use crate::state::AppState;
use crate::web::query_pairs;
use crate::web::search::{run, Ask};

#[derive(utoipa::OpenApi)]
#[openapi(paths(search, status))]
pub struct Doc;

/// A record that matches.
#[derive(Serialize, ToSchema)]
pub struct SearchHit {
    /// `client` or `opportunity`.
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    /// A client's display name, a deal's name.
    title: String,
    /// Company and e-mail, or the deal's client and stage.
    subtitle: String,
    /// Matched text by field: HTML-escaped, with `<mark>` around the matched words.
    highlights: BTreeMap<String, String>,
}

/// The matches, best first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchResults {
    data: Vec<SearchHit>,
    /// Facet (`status`, `tag`, `owner`, `industry`) → value → count; empty unless
    /// `facets=true`.
    facets: BTreeMap<String, BTreeMap<String, u64>>,
    /// Matches in all (may be an estimate). When the words as written fill the page, the
    /// matches as written: the misspelt ones rank after them and are looked for only past them.
    total: usize,
    /// Pass as `cursor` for the next page; only with `type`, null on the last page.
    next_cursor: Option<String>,
}

/// Searches the clients and deals the caller may read (`client:read`, `opportunity:read`;
/// a role without `oversee` finds only its own), by name, e-mail, phone, company, tags and
/// searchable custom fields.
#[utoipa::path(get, path = "/api/search", tag = "Search",
    params(
        ("q" = Option<String>, Query, description = "The words to find (at most 200 characters)."),
        ("type" = Option<String>, Query, description = "`client` or `opportunity`; paging needs it."),
        ("filter[status]" = Option<String>, Query, description = "The record's status."),
        ("filter[tag]" = Option<String>, Query, description = "A tag name."),
        ("filter[owner]" = Option<String>, Query, description = "The owner's id, or `me`."),
        ("filter[industry]" = Option<String>, Query, description = "The industry."),
        ("facets" = Option<bool>, Query, description = "`true` counts the matches per status, tag, owner and industry (slower)."),
        ("limit" = Option<i64>, Query, description = "Page size, 1–100 (default 20)."),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page."),
    ),
    responses((status = 200, description = "The matches.", body = SearchResults)))]
pub async fn search(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let ask = Ask::from_pairs(&query_pairs(&req)?, &actor.user_id)?;
    let r = run(&actor, &state, &ask).await?;
    let next = ask.offset + ask.limit;
    Ok(HttpResponse::Ok().json(SearchResults {
        data: r
            .hits
            .into_iter()
            .map(|h| SearchHit {
                kind: h.kind.as_str(),
                id: h.id,
                title: h.title,
                subtitle: h.subtitle,
                highlights: h.highlights,
            })
            .collect(),
        facets: r.facets,
        total: r.total,
        next_cursor: (ask.kind.is_some() && next < r.total).then(|| next.to_string()),
    }))
}

/// How far the search index is behind the database.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchStatus {
    /// Changes waiting to be indexed.
    pending: i64,
    /// The age of the oldest waiting change, in seconds (0 when none waits).
    oldest_seconds: i64,
    /// The last indexing error, if a change failed.
    last_error: Option<String>,
    /// The index in use; null when it does not answer.
    backend: Option<&'static str>,
    /// Documents in the index; null when it does not answer.
    documents: Option<u64>,
}

/// Tells how far the organization's search index is behind the database (`client:read`).
#[utoipa::path(get, path = "/api/search/status", tag = "Search",
    responses((status = 200, description = "The index's state.", body = SearchStatus)))]
pub async fn status(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let org = actor.org.id.clone();
    let lag = crate::db::run(&state.pool, move |c| Ok(crate::search::lag(c, &org)?)).await?;
    let stats = state.search.stats().await.ok();
    Ok(HttpResponse::Ok().json(SearchStatus {
        pending: lag.pending,
        oldest_seconds: lag.oldest_seconds,
        last_error: lag.last_error,
        backend: stats.as_ref().map(|s| s.backend),
        documents: stats.map(|s| s.documents),
    }))
}
