//! The company and relation pickers' type-ahead.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::{posted, PersonView};
use crate::auth::ConsoleActor;
use crate::error::{AppError, AppResult};
use crate::ops::clients as ops;
use crate::state::AppState;
use crate::web::query_pairs;

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
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = query_pairs(&req)?;
    let (q, kind, target) = (
        posted(&pairs, "q"),
        posted(&pairs, "kind"),
        posted(&pairs, "target"),
    );
    let found = ops::lookup(&scope, q, kind == "company").await?;
    let t = Lookup {
        items: found.into_iter().map(picked).collect(),
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

/// A match as the picker lists it: a company says so, a person shows their e-mail.
fn picked(r: crate::domain::clients::ClientRow) -> PersonView {
    let detail = if r.is_company() {
        "company".into()
    } else {
        r.email.clone().unwrap_or_default()
    };
    PersonView::of(r, detail)
}
