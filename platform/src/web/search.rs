//! Search for the API (`GET /api/search`) and the console (header box, `/search`): both
//! ask [`run`], which checks what the actor may read and narrows to the records they see.

use rapport_search::{Kind, Query, Results, SearchError};

use crate::auth::Actor;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// A search as people and integrators ask for it.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub text: String,
    pub kind: Option<Kind>,
    pub status: Option<String>,
    pub tag: Option<String>,
    pub owner: Option<String>,
    pub industry: Option<String>,
    pub limit: usize,
    pub offset: usize,
    pub facets: bool,
}

/// Longest query accepted, in characters.
pub const MAX_QUERY: usize = 200;

impl Ask {
    /// Reads `q`, `type`, `filter[status|tag|owner|industry]`, `limit`, `cursor` and
    /// `facets=true` (counts per status, tag, owner and industry: they cost the index a full
    /// pass over the matches, several times the search itself, so only when asked).
    pub fn from_pairs(pairs: &[(String, String)], user_id: &str) -> AppResult<Self> {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let text = get("q").unwrap_or_default();
        if text.chars().count() > MAX_QUERY {
            return Err(AppError::invalid(
                "q",
                &format!("Search for at most {MAX_QUERY} characters."),
            ));
        }
        let kind = match get("type") {
            None => None,
            Some(t) => Some(Kind::parse(&t).ok_or_else(|| {
                AppError::invalid("type", "Use type=client or type=opportunity.")
            })?),
        };
        let limit = match get("limit") {
            None => 20,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| AppError::invalid("limit", "Use a limit from 1 to 100."))?,
        };
        let offset = match get("cursor") {
            None => 0,
            Some(c) => c
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= 10_000)
                .ok_or_else(|| {
                    AppError::invalid("cursor", "Use the nextCursor of the previous page.")
                })?,
        };
        for (k, _) in pairs {
            if let Some(f) = k.strip_prefix("filter[").and_then(|f| f.strip_suffix(']')) {
                if !["status", "tag", "owner", "industry"].contains(&f) {
                    return Err(AppError::invalid(
                        k,
                        "Search filters are status, tag, owner and industry.",
                    ));
                }
            }
        }
        let owner = get("filter[owner]").map(|o| if o == "me" { user_id.to_string() } else { o });
        let facets = match get("facets").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(AppError::invalid(
                    "facets",
                    "Use facets=true or facets=false.",
                ))
            }
        };
        Ok(Self {
            text,
            kind,
            status: get("filter[status]"),
            tag: get("filter[tag]"),
            owner,
            industry: get("filter[industry]"),
            limit,
            offset,
            facets,
        })
    }
}

/// Runs the search over the kinds the actor may read (all of them when none is named),
/// each narrowed to the records the actor sees: a sales rep finds only their own.
pub async fn run(actor: &Actor, state: &AppState, ask: &Ask) -> AppResult<Results> {
    let kinds: Vec<Kind> = match ask.kind {
        Some(k) => {
            actor.require(resource(k), "read").await?;
            vec![k]
        }
        None => {
            let mut ks = Vec::new();
            for k in [Kind::Client, Kind::Opportunity] {
                if actor.can(resource(k), "read").await? {
                    ks.push(k);
                }
            }
            ks
        }
    };
    let mut queries = Vec::new();
    for kind in kinds {
        let access = super::record_access(actor, resource(kind)).await?;
        queries.push(Query {
            org_id: actor.org.id.clone(),
            text: ask.text.clone(),
            kind: Some(kind),
            owners: (!access.oversee).then(|| vec![actor.user_id.clone()]),
            status: ask.status.clone(),
            tag: ask.tag.clone(),
            owner: ask.owner.clone(),
            industry: ask.industry.clone(),
            limit: ask.limit,
            offset: ask.offset,
            // Facets describe clients (status, tags, owner, industry) unless deals were asked
            // for alone: a deal's "open" is not a client's status.
            facets: ask.facets && (ask.kind.is_some() || kind == Kind::Client),
        });
    }
    // Clients and deals at once: the answer waits for the slower, not for both in turn.
    let answers =
        futures_util::future::try_join_all(queries.iter().map(|q| state.search.search(q)))
            .await
            .map_err(search_failed)?;
    let mut out = Results::default();
    for r in answers {
        out.total += r.total;
        out.hits.extend(r.hits);
        for (name, counts) in r.facets {
            let into = out.facets.entry(name).or_default();
            for (k, v) in counts {
                *into.entry(k).or_default() += v;
            }
        }
    }
    Ok(out)
}

/// A search that could not run: the index down is a 503 the console and the API explain;
/// a query the backend refused is our bug.
fn search_failed(e: SearchError) -> AppError {
    match e {
        SearchError::Unavailable(m) => AppError::SearchUnavailable(m),
        SearchError::BadQuery(m) => AppError::BadRequest(m),
        SearchError::Backend(m) => AppError::Internal(format!("search: {m}")),
    }
}

fn resource(kind: Kind) -> &'static str {
    match kind {
        Kind::Client => "client",
        Kind::Opportunity => "opportunity",
    }
}
