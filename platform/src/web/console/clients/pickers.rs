//! The company and relation pickers' type-ahead.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::*;
use crate::auth::ConsoleActor;
use crate::db::{self};
use crate::domain::clients::query::{self, Column, SortKey};
use crate::domain::clients::store;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::{client_access, query_pairs};

#[derive(Template)]
#[template(path = "partials/clients/lookup.html")]
struct Lookup {
    items: Vec<PersonView>,
    target: String,
}

/// Type-ahead for the company and relation pickers.
pub async fn lookup(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (q, kind, target) = (get("q"), get("kind"), get("target"));
    let org = actor.org_id().to_string();
    let items = db::run(&state.pool, move |c| {
        if q.trim().is_empty() {
            return Ok(Vec::new());
        }
        let rows = if kind == "company" {
            store::companies_matching(c, &org, q.trim(), 8)?
        } else {
            let params = query::ListParams {
                q: Some(q.trim().to_string()),
                limit: 8,
                sort: query::Sort {
                    key: SortKey::Column(Column::Name),
                    descending: false,
                },
                only_assigned_to: (!access.oversee).then(|| access.user_id.clone()),
                ..Default::default()
            };
            query::list(c, &org, &params)?
        };
        Ok(rows
            .into_iter()
            .filter(|r| access.sees(r) || kind == "company")
            .map(|r| PersonView {
                detail: if r.is_company() {
                    "company".into()
                } else {
                    r.email.unwrap_or_default()
                },
                id: r.id,
                name: r.display_name,
            })
            .collect())
    })
    .await?;
    let t = Lookup {
        items,
        target: if target.is_empty() {
            "employer".into()
        } else {
            target
        },
    };
    let body = t.render().map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}
