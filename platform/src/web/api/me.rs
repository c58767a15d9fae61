//! `GET /api/me`: who the token acts as, where, and what it may do.

use actix_web::HttpResponse;
use serde_json::json;

use crate::auth::ApiActor;
use crate::error::AppResult;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

pub async fn show(actor: ApiActor) -> AppResult<HttpResponse> {
    let permissions: Vec<String> = actor
        .permissions()
        .await?
        .into_iter()
        .map(|(r, a)| format!("{r}:{a}"))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "user": {"id": actor.user_id, "email": actor.email, "name": actor.name},
        "organization": {"id": actor.org.id, "slug": actor.org.slug, "name": actor.org.name},
        "role": actor.role.as_str(),
        "permissions": permissions,
    })))
}

/// `GET /api/dashboard`: the caller's dashboard figures, as the console's first page shows
/// them (blocks the role may not see are `null`).
pub async fn dashboard(scope: crate::web::scope::ApiScope) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(crate::ops::dashboard::show(&scope).await?))
}

/// `GET /api/me/notifications`: the newest 100, unread first in weight (`unread` counts).
pub async fn notifications(
    actor: ApiActor,
    state: actix_web::web::Data<crate::state::AppState>,
) -> AppResult<HttpResponse> {
    let (org, user) = (actor.org.id.clone(), actor.user_id.clone());
    let (items, unread) = crate::db::run(&state.pool, move |c| {
        Ok((
            crate::domain::notifications::recent(c, &org, &user, 100)?,
            crate::domain::notifications::unread_count(c, &org, &user)?,
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "data": items.iter().map(|n| json!({
            "id": n.id, "kind": n.kind, "title": n.title, "body": n.body, "link": n.link,
            "read": n.read_at.is_some(), "createdAt": super::rfc3339(n.created_at),
        })).collect::<Vec<_>>(),
        "unread": unread,
    })))
}

/// `POST /api/me/notifications/read`: marks them all read.
pub async fn notifications_read(
    actor: ApiActor,
    state: actix_web::web::Data<crate::state::AppState>,
) -> AppResult<HttpResponse> {
    let (org, user) = (actor.org.id.clone(), actor.user_id.clone());
    let marked = crate::db::run(&state.pool, move |c| {
        Ok(crate::domain::notifications::mark_all_read(c, &org, &user)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"marked": marked})))
}

/// `GET /api/me/calendar-feed` → `{"url"}`: the private iCalendar URL of the caller's
/// scheduled calls and meetings (made on first use).
pub async fn calendar_feed(
    actor: ApiActor,
    state: actix_web::web::Data<crate::state::AppState>,
    req: actix_web::HttpRequest,
) -> AppResult<HttpResponse> {
    let (org, user) = (actor.org.id.clone(), actor.user_id.clone());
    let token = crate::db::run(&state.pool, move |c| {
        crate::domain::calendar::token(c, &org, &user)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((crate::web::idempotency::REDACT_HEADER, "url"))
        .json(json!({"url": crate::web::calendar_feed_url(&req, &token)})))
}

/// `POST /api/me/calendar-feed`: a new URL; the old one stops working.
pub async fn rotate_calendar_feed(
    actor: ApiActor,
    state: actix_web::web::Data<crate::state::AppState>,
    req: actix_web::HttpRequest,
) -> AppResult<HttpResponse> {
    let (org, user) = (actor.org.id.clone(), actor.user_id.clone());
    let ctx = actor.audit();
    let token = crate::db::run(&state.pool, move |c| {
        let t = crate::domain::calendar::rotate(c, &org, &user)?;
        crate::domain::audit::record(
            c,
            &ctx,
            "calendar_feed.rotate",
            "user",
            Some(&user),
            json!({}),
        )?;
        Ok(t)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((crate::web::idempotency::REDACT_HEADER, "url"))
        .json(json!({"url": crate::web::calendar_feed_url(&req, &token)})))
}

/// `GET /calendar/{token}.ics`: the feed itself; the token is the only credential.
pub async fn calendar_ics(
    state: actix_web::web::Data<crate::state::AppState>,
    token: actix_web::web::Path<String>,
) -> AppResult<HttpResponse> {
    let body = crate::db::run(&state.pool, move |c| {
        let (org, user) =
            crate::domain::calendar::owner(c, &token)?.ok_or(crate::error::AppError::NotFound)?;
        crate::domain::calendar::feed(c, &org, &user)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .insert_header(("cache-control", "private, max-age=300"))
        .body(body))
}
