//! `GET /api/me`: who the token acts as, where, and what it may do.

use actix_web::HttpResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::ApiActor;
use crate::error::AppResult;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    show,
    set_preferences,
    dashboard,
    notifications,
    notifications_read,
    calendar_feed,
    rotate_calendar_feed
))]
pub struct Doc;

/// Who the token acts as, where, and what it may do.
#[derive(Serialize, ToSchema)]
pub struct Me {
    user: MeUser,
    organization: MeOrganization,
    /// The caller's role in the organization.
    role: String,
    /// `resource:action` rights the token holds (the role's, narrowed to the token's scopes).
    permissions: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeUser {
    id: String,
    email: String,
    name: String,
    /// The IANA time zone the console shows this person's times in.
    time_zone: String,
    /// How the console writes dates, times and numbers for them (`en-GB`, `en-US`, `de-DE`,
    /// `fr-FR`, `es-ES`, `it-IT`, `nl-NL`, `pt-BR`, `iso`).
    locale: String,
}

/// The caller's own time zone and formats.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Preferences {
    /// An IANA zone name such as `Europe/Berlin`.
    time_zone: String,
    /// One of the locale codes `GET /api/me` lists under `user.locale`.
    locale: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeOrganization {
    id: String,
    slug: String,
    name: String,
}

/// The caller's newest notifications and how many are unread.
#[derive(Serialize, ToSchema)]
pub struct Notifications {
    /// The newest 100.
    data: Vec<Notification>,
    unread: i64,
}

/// Something that happened that the caller should know of.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    id: String,
    kind: String,
    title: String,
    body: String,
    /// Where in the console it is shown.
    link: Option<String>,
    read: bool,
    created_at: String,
}

/// How many notifications were marked read.
#[derive(Serialize, ToSchema)]
pub struct NotificationsMarked {
    marked: usize,
}

/// The private iCalendar URL of the caller's scheduled calls and meetings.
#[derive(Serialize, ToSchema)]
pub struct CalendarFeed {
    /// Anyone holding it reads the feed; keep it private (null when an `Idempotency-Key`
    /// replays the answer: it is not stored).
    #[schema(nullable)]
    url: String,
}

/// Says who the token acts as, in which organization, and with which rights.
#[utoipa::path(get, path = "/api/me", tag = "Me",
    responses((status = 200, description = "The caller.", body = Me)))]
pub async fn show(actor: ApiActor) -> AppResult<HttpResponse> {
    let permissions: Vec<String> = actor
        .permissions()
        .await?
        .iter()
        .map(|(r, a)| format!("{r}:{a}"))
        .collect();
    Ok(HttpResponse::Ok().json(Me {
        user: MeUser {
            id: actor.user_id.clone(),
            email: actor.email.clone(),
            name: actor.name.clone(),
            time_zone: actor.local.zone_name().to_string(),
            locale: actor.local.locale.code.to_string(),
        },
        organization: MeOrganization {
            id: actor.org.id.clone(),
            slug: actor.org.slug.clone(),
            name: actor.org.name.clone(),
        },
        role: actor.role.as_str().to_string(),
        permissions,
    }))
}

/// Sets the caller's own time zone and formats (how the console shows them times and
/// figures; the API itself always speaks UTC and plain decimals).
#[utoipa::path(put, path = "/api/me/preferences", tag = "Me", request_body = Preferences,
    responses((status = 200, description = "Saved.", body = Preferences)))]
pub async fn set_preferences(
    actor: ApiActor,
    state: actix_web::web::Data<crate::state::AppState>,
    body: actix_web::web::Json<Preferences>,
) -> AppResult<HttpResponse> {
    // why: a token narrowed to some records' rights (a read-only sync, say) acts on those
    // records; it has no business changing the person's own account.
    if !actor.full_token() {
        return Err(crate::error::AppError::Forbidden(
            "Only a token with every right of yours may change your time zone and formats.".into(),
        ));
    }
    let ctx = actor.audit();
    let body = body.into_inner();
    let local = crate::db::run(&state.pool, move |c| {
        crate::domain::orgs::service::set_own_preferences(c, &ctx, &body.time_zone, &body.locale)
    })
    .await?;
    Ok(HttpResponse::Ok().json(Preferences {
        time_zone: local.zone_name().to_string(),
        locale: local.locale.code.to_string(),
    }))
}

/// Reads the caller's dashboard figures, as the console's first page shows them.
///
/// Blocks the caller's rights do not cover are `null`: the deal lists need `opportunity:read`,
/// the caller's own deal sums `opportunity:write`, the team `opportunity:oversee` and
/// `report:read`, activities `interaction:write`, tasks `interaction:read`, new clients and
/// renewals `client:read` (every block but new clients also needs `client:read`).
#[utoipa::path(get, path = "/api/dashboard", tag = "Me",
    responses((status = 200, description = "The dashboard.", body = crate::ops::dashboard::Dashboard)))]
pub async fn dashboard(scope: crate::web::scope::ApiScope) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(crate::ops::dashboard::show(&scope).await?))
}

/// Lists the caller's newest 100 notifications, with the number unread.
#[utoipa::path(get, path = "/api/me/notifications", tag = "Me",
    responses((status = 200, description = "The notifications.", body = Notifications)))]
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
    Ok(HttpResponse::Ok().json(Notifications {
        data: items
            .into_iter()
            .map(|n| Notification {
                read: n.read_at.is_some(),
                created_at: super::rfc3339(n.created_at),
                id: n.id,
                kind: n.kind,
                title: n.title,
                body: n.body,
                link: n.link,
            })
            .collect(),
        unread,
    }))
}

/// Marks all the caller's notifications read.
#[utoipa::path(post, path = "/api/me/notifications/read", tag = "Me",
    responses((status = 200, description = "Marked.", body = NotificationsMarked)))]
pub async fn notifications_read(
    actor: ApiActor,
    state: actix_web::web::Data<crate::state::AppState>,
) -> AppResult<HttpResponse> {
    let (org, user) = (actor.org.id.clone(), actor.user_id.clone());
    let marked = crate::db::run(&state.pool, move |c| {
        Ok(crate::domain::notifications::mark_all_read(c, &org, &user)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(NotificationsMarked { marked }))
}

/// Gives the private iCalendar URL of the caller's scheduled calls and meetings.
///
/// The URL is made on first use.
#[utoipa::path(get, path = "/api/me/calendar-feed", tag = "Me",
    responses((status = 200, description = "The feed's URL.", body = CalendarFeed)))]
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
        .json(CalendarFeed {
            url: crate::web::calendar_feed_url(&req, &token),
        }))
}

/// Gives the caller's calendar feed a new URL; the old one stops working.
#[utoipa::path(post, path = "/api/me/calendar-feed", tag = "Me",
    responses((status = 200, description = "The new URL.", body = CalendarFeed)))]
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
        .json(CalendarFeed {
            url: crate::web::calendar_feed_url(&req, &token),
        }))
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
