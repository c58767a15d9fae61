//! `/api/policies`: the organization's role × resource × action grants.
//! Reading needs `policy:read`, changing needs `policy:write` (admins by default).

use actix_web::{http::header, web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::ListEnvelope;
use crate::error::AppResult;
use crate::ops::policies as ops;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantDto {
    role: String,
    resource: String,
    action: String,
}

pub async fn list(scope: ApiScope) -> AppResult<HttpResponse> {
    let rows = ops::grants(&scope).await?;
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

/// `GET /api/policies/rights`: the rights Rapport checks, per resource — the only ones a
/// grant may name (the Permissions page's cells).
pub async fn rights(scope: ApiScope) -> AppResult<HttpResponse> {
    scope.require("policy", "read")?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "data": crate::domain::policy::ENFORCED
            .iter()
            .map(|(resource, actions, about)| serde_json::json!({
                "resource": resource, "actions": actions, "about": about,
            }))
            .collect::<Vec<_>>(),
    })))
}

pub async fn grant(scope: ApiScope, body: web::Json<GrantDto>) -> AppResult<HttpResponse> {
    let g = body.into_inner();
    let (role, resource, action) = (g.role.clone(), g.resource.clone(), g.action.clone());
    let added = ops::set_grant(&scope, role, resource, action, true).await?;
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
    scope: ApiScope,
    path: web::Path<(String, String, String)>,
) -> AppResult<HttpResponse> {
    let (role, resource, action) = path.into_inner();
    if ops::set_grant(&scope, role, resource, action, false).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(crate::error::AppError::NotFound)
    }
}
