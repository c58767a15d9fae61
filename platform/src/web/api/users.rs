//! `/api/users`: the organization's members. Reading needs `user:read`; adding,
//! changing and resetting need `user:admin`.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{etag, if_match_version, paginate, rfc3339, ListQuery};
use crate::auth::ApiActor;
use crate::db;
use crate::domain::orgs::{service, store, Member};
use crate::error::AppResult;
use crate::ops::users::{self as ops, NewMemberInput};
use crate::state::AppState;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDto {
    id: String,
    email: String,
    name: String,
    role: String,
    is_active: bool,
    created_at: String,
    updated_at: String,
}

impl From<Member> for UserDto {
    fn from(m: Member) -> Self {
        Self {
            id: m.user.id,
            email: m.user.email,
            name: m.user.name,
            role: m.membership.role,
            is_active: m.membership.is_active,
            created_at: rfc3339(m.membership.created_at),
            updated_at: rfc3339(m.membership.updated_at.max(m.user.updated_at)),
        }
    }
}

pub async fn list(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    let query = ListQuery::parse(&req, &["role", "isActive"])?;
    let filter = store::MemberFilter {
        role: query.filters.get("role").cloned(),
        is_active: query.bool_filter("isActive")?,
        q: query.q.clone(),
        after: query.cursor.clone(),
        limit: query.limit + 1,
    };
    let (rows, _) = ops::members(&scope, filter).await?;
    Ok(HttpResponse::Ok().json(paginate(
        rows,
        query.limit,
        |m| m.membership.id.clone(),
        UserDto::from,
    )))
}

pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let member = ops::member(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(member.membership.version)))
        .json(UserDto::from(member)))
}

pub async fn create(scope: ApiScope, body: web::Json<NewMemberInput>) -> AppResult<HttpResponse> {
    let (member, generated) = match ops::add(&scope, body.into_inner()).await? {
        service::Added::Member(m, generated) => (m, generated),
        // An existing account joins only when the person accepts: 202, nothing changed yet.
        service::Added::Invited(inv) => {
            return Ok(HttpResponse::Accepted()
                .insert_header((header::LOCATION, format!("/api/invitations/{}", inv.row.id)))
                .json(invitation_json(&inv)))
        }
    };
    let location = format!("/api/users/{}", member.user.id);
    let version = member.membership.version;
    let mut json = serde_json::to_value(UserDto::from(member))
        .map_err(|e| crate::error::AppError::Internal(e.to_string()))?;
    if let Some(pw) = generated {
        json["temporaryPassword"] = pw.into();
    }
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::ETAG, etag(version)))
        .insert_header((crate::web::idempotency::REDACT_HEADER, "temporaryPassword"))
        .json(json))
}

pub fn invitation_json(inv: &crate::domain::orgs::Invitation) -> serde_json::Value {
    serde_json::json!({
        "id": inv.row.id,
        "status": "invited",
        "organizationId": inv.row.organization_id,
        "organizationName": inv.organization_name,
        "userId": inv.row.user_id,
        "email": inv.email,
        "role": inv.row.role,
        "createdAt": rfc3339(inv.row.created_at),
        "expiresAt": rfc3339(inv.row.expires_at),
    })
}

/// `GET /api/invitations`: the organization's open invitations (`user:admin`).
pub async fn list_invitations(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = ops::invitations(&scope).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "data": rows.iter().map(invitation_json).collect::<Vec<_>>()
    })))
}

/// `DELETE /api/invitations/{id}`: withdraws an open invitation of the organization.
pub async fn cancel_invitation(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::cancel_invitation(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/me/invitations`: organizations that invited the caller.
pub async fn my_invitations(
    actor: ApiActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let uid = actor.user_id.clone();
    let rows = db::run(&state.pool, move |c| service::my_invitations(c, &uid)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "data": rows.iter().map(invitation_json).collect::<Vec<_>>()
    })))
}

/// `POST /api/me/invitations/{id}/accept`: the caller joins that organization.
pub async fn accept_invitation(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let (uid, email) = (actor.user_id.clone(), actor.email.clone());
    let org = db::run(&state.pool, move |c| {
        service::accept_invitation(c, &uid, &email, &id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "organization": {"id": org.id, "name": org.name, "slug": org.slug}
    })))
}

/// `POST /api/me/invitations/{id}/decline`.
pub async fn decline_invitation(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let uid = actor.user_id.clone();
    db::run(&state.pool, move |c| {
        service::decline_invitation(c, &uid, &id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUser {
    name: Option<String>,
    role: Option<String>,
    is_active: Option<bool>,
}

pub async fn update(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<UpdateUser>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let body = body.into_inner();
    let changes = service::MemberChanges {
        name: body.name,
        role: body.role,
        is_active: body.is_active,
    };
    let member = ops::update(&scope, id.into_inner(), expected, changes).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(member.membership.version)))
        .json(UserDto::from(member)))
}

pub async fn reset_password(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (_, password) = ops::reset_password(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((crate::web::idempotency::REDACT_HEADER, "temporaryPassword"))
        .json(serde_json::json!({"temporaryPassword": password})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/me/password`: the caller changes their own password (every session of theirs
/// ends; tokens stay).
pub async fn change_password(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<PasswordChange>,
) -> AppResult<HttpResponse> {
    let ctx = actor.audit();
    let body = body.into_inner();
    db::run(&state.pool, move |c| {
        service::change_own_password(c, &ctx, None, &body.current_password, &body.new_password)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
