//! The console's search: the header box (htmx, as you type: `/search/suggest`) and the
//! results page (`/search`, with type and facet filters).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use rapport_search::{Hit, Kind};

use crate::auth::ConsoleActor;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::console::{html_fragment, render};
use crate::web::query_pairs;
use crate::web::search::{run, Ask};

pub struct HitView {
    pub href: String,
    /// HTML: escaped text with `<mark>` around matched words.
    pub title: String,
    pub subtitle: String,
}

fn view(h: &Hit) -> HitView {
    let href = match h.kind {
        Kind::Client => format!("/clients/{}", h.id),
        Kind::Opportunity => format!("/opportunities/{}", h.id),
    };
    HitView {
        href,
        title: h.highlights.get("title").cloned().unwrap_or_default(),
        subtitle: h.highlights.get("subtitle").cloned().unwrap_or_default(),
    }
}

fn split(hits: &[Hit]) -> (Vec<HitView>, Vec<HitView>) {
    (
        hits.iter()
            .filter(|h| h.kind == Kind::Client)
            .map(view)
            .collect(),
        hits.iter()
            .filter(|h| h.kind == Kind::Opportunity)
            .map(view)
            .collect(),
    )
}

/// "Search is catching up (42 changes)" when the index lags by more than a few seconds.
async fn lag_notice(state: &AppState, org: String) -> AppResult<String> {
    let lag = crate::db::run(&state.pool, move |c| Ok(crate::search::lag(c, &org)?)).await?;
    Ok(if lag.pending > 0 && lag.oldest_seconds >= 5 {
        format!(
            "Search is catching up: {} recent change{} not searchable yet.",
            lag.pending,
            if lag.pending == 1 { " is" } else { "s are" }
        )
    } else {
        String::new()
    })
}

#[derive(Template)]
#[template(path = "partials/search/suggest.html")]
struct Suggest {
    q: String,
    clients: Vec<HitView>,
    deals: Vec<HitView>,
    lag: String,
    down: Option<String>,
}

pub async fn suggest(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let mut ask = Ask::from_pairs(&query_pairs(&req)?, &actor.user_id)?;
    if ask.text.is_empty() {
        return Ok(html_fragment(String::new()));
    }
    ask.limit = 5;
    ask.facets = false;
    let (r, down) = answer(&actor, &state, &ask).await?;
    let (clients, deals) = split(&r.hits);
    let lag = lag_notice(&state, actor.org.id.clone()).await?;
    let page = Suggest {
        q: ask.text,
        clients,
        deals,
        lag,
        down,
    };
    Ok(html_fragment(
        page.render()
            .map_err(|e| AppError::Internal(e.to_string()))?,
    ))
}

/// The results, or none and what to tell the user when search is down (the page still
/// renders, with the message in place of results).
async fn answer(
    actor: &ConsoleActor,
    state: &AppState,
    ask: &Ask,
) -> AppResult<(rapport_search::Results, Option<String>)> {
    match run(actor, state, ask).await {
        Ok(r) => Ok((r, None)),
        Err(AppError::SearchUnavailable(e)) => {
            tracing::warn!(error = %e, "search is unavailable");
            Ok((
                Default::default(),
                Some(crate::error::SEARCH_DOWN.to_string()),
            ))
        }
        Err(e) => Err(e),
    }
}

pub struct FacetLink {
    pub label: String,
    pub count: u64,
    pub href: String,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "partials/search/page.html")]
struct Page {
    q: String,
    kind: String,
    clients: Vec<HitView>,
    deals: Vec<HitView>,
    total: usize,
    facets: Vec<(String, Vec<FacetLink>)>,
    lag: String,
    error: Option<String>,
    down: Option<String>,
}

pub async fn page(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let pairs = query_pairs(&req)?;
    let (ask, error) = match Ask::from_pairs(&pairs, &actor.user_id) {
        Ok(a) => (a, None),
        Err(AppError::Validation(_, errors)) => (
            Ask {
                limit: 20,
                ..Ask::default()
            },
            errors.first().map(|e| e.message.clone()),
        ),
        Err(e) => return Err(e),
    };
    let mut ask = ask;
    ask.limit = 50;
    // The page shows the counts beside the results.
    ask.facets = true;
    let (r, down) =
        if error.is_none() && (!ask.text.is_empty() || ask.status.is_some() || ask.tag.is_some()) {
            answer(&actor, &state, &ask).await?
        } else {
            Default::default()
        };
    let (clients, deals) = split(&r.hits);
    let base: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k == "q" || k == "type")
        .cloned()
        .collect();
    let link = |extra: Option<(&str, &str)>| {
        let mut p = base.clone();
        if let Some((k, v)) = extra {
            p.push((k.to_string(), v.to_string()));
        }
        format!(
            "/search?{}",
            serde_urlencoded::to_string(&p).unwrap_or_default()
        )
    };
    let facets = ["status", "tag", "industry"]
        .iter()
        .filter_map(|name| {
            let counts = r.facets.get(*name)?;
            if counts.is_empty() {
                return None;
            }
            let key = format!("filter[{name}]");
            let current = pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone());
            Some((
                match *name {
                    "status" => "Status",
                    "tag" => "Tag",
                    _ => "Industry",
                }
                .to_string(),
                counts
                    .iter()
                    .map(|(value, count)| FacetLink {
                        label: value.clone(),
                        count: *count,
                        href: link(Some((&key, value))),
                        active: current.as_deref() == Some(value.as_str()),
                    })
                    .collect(),
            ))
        })
        .collect();
    let lag = lag_notice(&state, actor.org.id.clone()).await?;
    let page = Page {
        q: ask.text.clone(),
        kind: ask.kind.map(|k| k.as_str().to_string()).unwrap_or_default(),
        clients,
        deals,
        total: r.total,
        facets,
        lag,
        error,
        down,
    };
    render(&req, &actor, "Search", &page).await
}
