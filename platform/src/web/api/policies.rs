//! `/api/policies`: the organization's role × resource × action grants.
//! Reading needs `policy:read`, changing needs `policy:write` (admins by default).

use actix_web::{http::header, web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::ListEnvelope;
use crate::auth::ApiActor;
use crate::db;
use crate::domain::orgs::service;
use crate::domain::policy;
use crate::error::AppResult;
use crate::state::AppState;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantDto {
    role: String,
    resource: String,
    action: String,
}

pub async fn list(actor: ApiActor, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    actor.require("policy", "read").await?;
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| {
        Ok(policy::store::grants_of_org(c, &org)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows
            .into_iter()
            .map(|(role, resource, action)| GrantDto {
                role,
                resource,
                action,
            })
            .collect(),
        next_cursor: None,
    }))
}

pub async fn grant(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<GrantDto>,
) -> AppResult<HttpResponse> {
    actor.require("policy", "write").await?;
    let ctx = actor.audit();
    let g = body.into_inner();
    let (role, resource, action) = (g.role.clone(), g.resource.clone(), g.action.clone());
    let added = db::run(&state.pool, move |c| {
        service::set_grant(c, &ctx, &role, &resource, &action, true)
    })
    .await?;
    let mut res = if added {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(res
        .insert_header((
            header::LOCATION,
            format!("/api/policies/{}/{}/{}", g.role, g.resource, g.action),
        ))
        .json(g))
}

pub async fn revoke(
    actor: ApiActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> AppResult<HttpResponse> {
    actor.require("policy", "write").await?;
    let ctx = actor.audit();
    let (role, resource, action) = path.into_inner();
    let removed = db::run(&state.pool, move |c| {
        service::set_grant(c, &ctx, &role, &resource, &action, false)
    })
    .await?;
    if removed {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(crate::error::AppError::NotFound)
    }
}
