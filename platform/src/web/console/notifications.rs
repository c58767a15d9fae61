//! `/notifications`: what happened that the signed-in person must know about.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::db;
use crate::domain::notifications::{self, NotificationRow};
use crate::error::AppResult;
use crate::state::AppState;
use crate::web::console::{redirect_with_flash, render};

#[derive(Template)]
#[template(path = "partials/notifications.html")]
struct NotificationsPage {
    items: Vec<NotificationRow>,
    unread: usize,
    local: crate::locale::Local,
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (org, user) = (actor.org.id.clone(), actor.user_id.clone());
    let items = db::run(&state.pool, move |c| {
        Ok(notifications::recent(c, &org, &user, 100)?)
    })
    .await?;
    let unread = items.iter().filter(|n| n.read_at.is_none()).count();
    render(
        &req,
        &actor,
        "Notifications",
        &NotificationsPage {
            items,
            unread,
            local: actor.local,
        },
    )
    .await
}

pub async fn read_all(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let (org, user) = (actor.org.id.clone(), actor.user_id.clone());
    db::run(&state.pool, move |c| {
        Ok(notifications::mark_all_read(c, &org, &user)?)
    })
    .await?;
    redirect_with_flash(&req, "/notifications", "All notifications are marked read.")
}
