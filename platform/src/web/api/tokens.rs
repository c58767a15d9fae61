//! `/api/tokens`: the caller's own API tokens in this organization.

use actix_web::{http::header, web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::{rfc3339, ListEnvelope};
use crate::auth::ApiActor;
use crate::db;
use crate::domain::orgs::{service, store, ApiTokenRow};
use crate::error::AppResult;
use crate::state::AppState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenDto {
    id: String,
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked_at: Option<String>,
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
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
}

pub async fn create(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<CreateToken>,
) -> AppResult<HttpResponse> {
    let ctx = actor.audit();
    let user = actor.user_id.clone();
    let (row, secret) = db::run(&state.pool, move |c| {
        service::create_token(c, &ctx, &user, &body.name)
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
