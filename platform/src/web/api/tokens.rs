//! `/api/tokens`: the caller's own API tokens in this organization.

use actix_web::{http::header, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{rfc3339, ListEnvelope};
use crate::auth::ApiActor;
use crate::db;
use crate::domain::orgs::{service, store, ApiTokenRow};
use crate::error::AppResult;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, revoke))]
pub struct Doc;

/// An API token of the caller (never its secret).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiToken)]
pub struct TokenDto {
    id: String,
    name: String,
    /// The secret's first characters, to recognise it.
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    /// `resource:action` rights it is narrowed to; `*`: every right of its user.
    scopes: Vec<String>,
    expires_at: Option<String>,
    /// Requests per minute.
    rate_limit: i32,
}

/// A token just made, with its secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewApiToken {
    id: String,
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    scopes: Vec<String>,
    expires_at: Option<String>,
    rate_limit: i32,
    /// The secret to send as `Authorization: Bearer …`; shown this once (null when an
    /// `Idempotency-Key` replays the answer: it is not stored).
    #[schema(nullable)]
    token: String,
}

impl From<ApiTokenRow> for TokenDto {
    fn from(t: ApiTokenRow) -> Self {
        Self {
            id: t.id,
            name: t.name,
            prefix: t.token_prefix,
            created_at: rfc3339(t.created_at),
            last_used_at: t.last_used_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
            scopes: crate::domain::orgs::scopes::parse(&t.scopes),
            expires_at: t.expires_at.map(rfc3339),
            rate_limit: t.rate_limit,
        }
    }
}

/// Lists the caller's own API tokens in this organization, revoked ones included.
///
/// One page, no cursor.
#[utoipa::path(get, path = "/api/tokens", tag = "API tokens",
    responses((status = 200, description = "The caller's tokens.", body = ListEnvelope<TokenDto>)))]
pub async fn list(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let (org, user) = (actor.org_id().to_string(), actor.user_id.clone());
    let rows = db::run(&state.pool, move |c| {
        Ok(store::list_tokens(c, &org, &user)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.into_iter().map(TokenDto::from).collect(),
        next_cursor: None,
    }))
}

/// A new token's name and limits.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = NewApiTokenInput)]
pub struct CreateToken {
    name: String,
    /// Default `["*"]`: every right of the user.
    scopes: Option<Vec<String>>,
    /// RFC 3339; or `expiresInDays`.
    expires_at: Option<String>,
    /// 1 to 3,650 days from now.
    expires_in_days: Option<i64>,
    /// Requests per minute.
    rate_limit: Option<i32>,
}

/// A token's options from the API's body or the console's form.
pub fn options(
    scopes: Option<Vec<String>>,
    expires_at: Option<&str>,
    expires_in_days: Option<i64>,
    rate_limit: Option<i32>,
) -> AppResult<crate::domain::orgs::scopes::TokenOptions> {
    use crate::domain::orgs::scopes::{TokenOptions, DEFAULT_RATE};
    let expires_at = match (expires_at.filter(|s| !s.is_empty()), expires_in_days) {
        (Some(t), _) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    crate::error::AppError::invalid(
                        "expiresAt",
                        "Give a time like 2027-01-31T00:00:00Z.",
                    )
                })?
                .naive_utc(),
        ),
        (None, Some(d)) if (1..=3650).contains(&d) => {
            Some(crate::db::now() + chrono::Duration::days(d))
        }
        (None, Some(_)) => {
            return Err(crate::error::AppError::invalid(
                "expiresInDays",
                "Use 1 to 3,650 days.",
            ))
        }
        (None, None) => None,
    };
    Ok(TokenOptions {
        scopes: scopes.unwrap_or_else(|| vec!["*".into()]),
        expires_at,
        rate_limit: rate_limit.unwrap_or(DEFAULT_RATE),
    })
}

/// Makes an API token for the caller (only a token with scope `*` may make tokens).
#[utoipa::path(post, path = "/api/tokens", tag = "API tokens", request_body = CreateToken,
    responses((status = 201, description = "Made; `Location` names it; the secret is shown this once.", body = NewApiToken)))]
pub async fn create(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<CreateToken>,
) -> AppResult<HttpResponse> {
    if !actor.full_token() {
        return Err(crate::error::AppError::Forbidden(
            "Only a token with every right of its user (scope \"*\") may make tokens.".into(),
        ));
    }
    let ctx = actor.audit();
    let user = actor.user_id.clone();
    let body = body.into_inner();
    let opts = options(
        body.scopes,
        body.expires_at.as_deref(),
        body.expires_in_days,
        body.rate_limit,
    )?;
    let (row, secret) = db::run(&state.pool, move |c| {
        service::create_token_with(c, &ctx, &user, &body.name, opts)
    })
    .await?;
    let t = TokenDto::from(row);
    let location = format!("/api/tokens/{}", t.id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((crate::web::idempotency::REDACT_HEADER, "token"))
        .json(NewApiToken {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
            scopes: t.scopes,
            expires_at: t.expires_at,
            rate_limit: t.rate_limit,
            token: secret,
        }))
}

/// Revokes one of the caller's tokens; it stops working at once.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "API tokens",
    params(("id" = String, Path, description = "The token's id.")),
    responses((status = 204, description = "Revoked.")))]
pub async fn revoke(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let ctx = actor.audit();
    let user = actor.user_id.clone();
    db::run(&state.pool, move |c| {
        service::revoke_token(c, &ctx, &user, &id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
