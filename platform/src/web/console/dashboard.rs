//! The dashboard: the first page after sign-in. Later areas add their cards here.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::render;
use crate::app::AppState;
use crate::auth::ConsoleActor;
use crate::db;
use crate::domain::orgs::store;
use crate::error::AppResult;

#[derive(Template)]
#[template(path = "partials/dashboard.html")]
struct Dashboard<'a> {
    name: &'a str,
    org_name: &'a str,
    role: &'a str,
    member_count: Option<i64>,
    manages_users: bool,
    permission_count: usize,
    org_count: usize,
}

pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let member_count = if actor.can("user", "read").await? {
        let org = actor.org_id().to_string();
        Some(
            db::run(&state.pool, move |c| {
                Ok(store::count_active_members(c, &org)?)
            })
            .await?,
        )
    } else {
        None
    };
    let fragment = Dashboard {
        name: &actor.name,
        org_name: &actor.org.name,
        role: actor.role.label(),
        member_count,
        manages_users: actor.can("user", "admin").await?,
        permission_count: actor.permissions().await?.len(),
        org_count: actor.orgs.len(),
    };
    render(&req, &actor, "Dashboard", &fragment).await
}
