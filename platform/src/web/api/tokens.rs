//! `/api/tokens`: the caller's own API tokens in this organization.

use actix_web::{http::header, web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{rfc3339, ListEnvelope};
use crate::auth::ApiActor;
use crate::db;
use crate::domain::orgs::{service, store, ApiTokenRow};
use crate::error::AppResult;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenDto {
    id: String,
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
    scopes: Vec<String>,
    expires_at: Option<String>,
    rate_limit: i32,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateToken {
    name: String,
    /// Default `["*"]`: every right of the user.
    scopes: Option<Vec<String>>,
    /// RFC 3339; or `expiresInDays`.
    expires_at: Option<String>,
    expires_in_days: Option<i64>,
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
    let mut json = serde_json::to_value(TokenDto::from(row))
        .map_err(|e| crate::error::AppError::Internal(e.to_string()))?;
    json["token"] = secret.into();
    let location = format!("/api/tokens/{}", json["id"].as_str().unwrap_or_default());
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((crate::web::idempotency::REDACT_HEADER, "token"))
        .json(json))
}

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
