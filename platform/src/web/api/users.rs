//! `/api/users`: the organization's members. Reading needs `user:read`; adding,
//! changing and resetting need `user:admin`.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{etag, if_match_version, paginate, rfc3339, ListEnvelope, ListQuery};
use crate::auth::ApiActor;
use crate::db;
use crate::domain::orgs::{service, store, Member};
use crate::error::AppResult;
use crate::ops::users::{self as ops, NewMemberInput};
use crate::state::AppState;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    show,
    create,
    list_invitations,
    cancel_invitation,
    my_invitations,
    accept_invitation,
    decline_invitation,
    update,
    reset_password,
    change_password
))]
pub struct Doc;

/// A member of the organization.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = User)]
pub struct UserDto {
    /// The user's id (the same in every organization they belong to).
    id: String,
    email: String,
    name: String,
    /// `admin`, `manager`, `sales_rep`, `service_rep`, `marketer`, `read_only` or a custom role.
    role: String,
    is_active: bool,
    created_at: String,
    updated_at: String,
}

/// A member just added, with the one-time password when none was given.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    id: String,
    email: String,
    name: String,
    role: String,
    is_active: bool,
    created_at: String,
    updated_at: String,
    /// Generated when the body gave no password; shown this once (null when an
    /// `Idempotency-Key` replays the answer: it is not stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    temporary_password: Option<String>,
}

/// An open invitation to join an organization.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    id: String,
    /// Always `invited`.
    #[schema(value_type = String, example = "invited")]
    status: &'static str,
    organization_id: String,
    organization_name: String,
    user_id: String,
    email: String,
    role: String,
    created_at: String,
    expires_at: String,
}

/// Invitations (one page, no cursor).
#[derive(Serialize, ToSchema)]
pub struct InvitationList {
    data: Vec<Invitation>,
}

/// The organization the caller just joined.
#[derive(Serialize, ToSchema)]
pub struct JoinedOrganization {
    organization: OrganizationRef,
}

#[derive(Serialize, ToSchema)]
pub struct OrganizationRef {
    id: String,
    name: String,
    slug: String,
}

/// A member's new one-time password.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemporaryPassword {
    /// Shown this once (null when an `Idempotency-Key` replays the answer: it is not stored);
    /// the member chooses their own at the next sign-in.
    #[schema(nullable)]
    temporary_password: String,
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

/// Lists the organization's members (`user:read`).
#[utoipa::path(get, path = "/api/users", tag = "Users",
    params(
        ("limit" = Option<i64>, Query, description = "Members per page, 1 to 500 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`."),
        ("q" = Option<String>, Query, description = "Only members whose name or e-mail contains this."),
        ("filter[role]" = Option<String>, Query, description = "Only members with this role."),
        ("filter[isActive]" = Option<bool>, Query, description = "Only active (`true`) or deactivated (`false`) members."),
    ),
    responses((status = 200, description = "A page of members.", body = ListEnvelope<UserDto>)))]
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

/// Reads a member (`user:read`); the `ETag` serves `If-Match` on a change.
#[utoipa::path(get, path = "/api/users/{id}", tag = "Users",
    params(("id" = String, Path, description = "The user's id.")),
    responses((status = 200, description = "The member.", body = UserDto)))]
pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let member = ops::member(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(member.membership.version)))
        .json(UserDto::from(member)))
}

/// Adds a member to the organization (`user:admin`).
///
/// A new account joins at once; an e-mail that already has an account is invited instead
/// and joins when the person accepts.
#[utoipa::path(post, path = "/api/users", tag = "Users", request_body = NewMemberInput,
    responses(
        (status = 201, description = "A new account joined; `Location` names it.", body = NewUser),
        (status = 202, description = "The account exists: it was invited; `Location` names the invitation.", body = Invitation),
    ))]
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
    let u = UserDto::from(member);
    let created = NewUser {
        id: u.id,
        email: u.email,
        name: u.name,
        role: u.role,
        is_active: u.is_active,
        created_at: u.created_at,
        updated_at: u.updated_at,
        temporary_password: generated,
    };
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::ETAG, etag(version)))
        .insert_header((crate::web::idempotency::REDACT_HEADER, "temporaryPassword"))
        .json(created))
}

pub fn invitation_json(inv: &crate::domain::orgs::Invitation) -> Invitation {
    Invitation {
        id: inv.row.id.clone(),
        status: "invited",
        organization_id: inv.row.organization_id.clone(),
        organization_name: inv.organization_name.clone(),
        user_id: inv.row.user_id.clone(),
        email: inv.email.clone(),
        role: inv.row.role.clone(),
        created_at: rfc3339(inv.row.created_at),
        expires_at: rfc3339(inv.row.expires_at),
    }
}

/// Lists the organization's open invitations (`user:admin`; one page, no cursor).
#[utoipa::path(get, path = "/api/invitations", tag = "Users",
    responses((status = 200, description = "The open invitations.", body = InvitationList)))]
pub async fn list_invitations(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = ops::invitations(&scope).await?;
    Ok(HttpResponse::Ok().json(InvitationList {
        data: rows.iter().map(invitation_json).collect(),
    }))
}

/// Withdraws an open invitation of the organization (`user:admin`).
#[utoipa::path(delete, path = "/api/invitations/{id}", tag = "Users",
    params(("id" = String, Path, description = "The invitation's id.")),
    responses((status = 204, description = "Withdrawn.")))]
pub async fn cancel_invitation(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::cancel_invitation(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lists the open invitations of other organizations to the caller (one page, no cursor).
#[utoipa::path(get, path = "/api/me/invitations", tag = "Users",
    responses((status = 200, description = "The caller's invitations.", body = InvitationList)))]
pub async fn my_invitations(
    actor: ApiActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let uid = actor.user_id.clone();
    let rows = db::run(&state.pool, move |c| service::my_invitations(c, &uid)).await?;
    Ok(HttpResponse::Ok().json(InvitationList {
        data: rows.iter().map(invitation_json).collect(),
    }))
}

/// Accepts an invitation: the caller joins that organization.
#[utoipa::path(post, path = "/api/me/invitations/{id}/accept", tag = "Users",
    params(("id" = String, Path, description = "The invitation's id.")),
    responses((status = 200, description = "Joined.", body = JoinedOrganization)))]
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
    Ok(HttpResponse::Ok().json(JoinedOrganization {
        organization: OrganizationRef {
            id: org.id,
            name: org.name,
            slug: org.slug,
        },
    }))
}

/// Declines an invitation addressed to the caller.
#[utoipa::path(post, path = "/api/me/invitations/{id}/decline", tag = "Users",
    params(("id" = String, Path, description = "The invitation's id.")),
    responses((status = 204, description = "Declined.")))]
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

/// What changes on a member; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateUser {
    name: Option<String>,
    role: Option<String>,
    is_active: Option<bool>,
}

/// Changes a member's name, role or whether they are active (`user:admin`); honours `If-Match`.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "Users", request_body = UpdateUser,
    params(("id" = String, Path, description = "The user's id.")),
    responses((status = 200, description = "Changed.", body = UserDto)))]
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

/// Gives a member a new one-time password (`user:admin`).
#[utoipa::path(post, path = "/api/users/{id}/reset-password", tag = "Users",
    params(("id" = String, Path, description = "The user's id.")),
    responses((status = 200, description = "The new password, shown once.", body = TemporaryPassword)))]
pub async fn reset_password(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (_, password) = ops::reset_password(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((crate::web::idempotency::REDACT_HEADER, "temporaryPassword"))
        .json(TemporaryPassword {
            temporary_password: password,
        }))
}

/// The caller's current password and the new one.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes the caller's own password; every session of theirs ends, tokens stay.
#[utoipa::path(post, path = "/api/me/password", tag = "Users", request_body = PasswordChange,
    responses((status = 204, description = "Changed.")))]
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
