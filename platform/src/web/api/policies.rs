//! `/api/policies`: the organization's role × resource × action grants.
//! Reading needs `policy:read`, changing needs `policy:write` (admins by default).

use actix_web::{http::header, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ListEnvelope;
use crate::error::AppResult;
use crate::ops::policies as ops;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, rights, grant, revoke))]
pub struct Doc;

/// One grant: the role may take the action on the resource.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PolicyGrant)]
pub struct GrantDto {
    /// A role (`admin`, `manager`, …).
    #[schema(example = "manager")]
    role: String,
    /// A resource listed by `/api/policies/rights`.
    #[schema(example = "client")]
    resource: String,
    /// One of the resource's actions.
    #[schema(example = "export")]
    action: String,
}

/// A resource and the actions Rapport checks on it.
#[derive(Serialize, ToSchema)]
pub struct Right {
    #[schema(example = "client")]
    resource: &'static str,
    /// The actions a grant may name for it.
    actions: &'static [&'static str],
    /// What the resource covers and what its actions mean.
    about: &'static str,
}

/// The rights Rapport checks (no cursor).
#[derive(Serialize, ToSchema)]
pub struct Rights {
    data: Vec<Right>,
}

/// Lists every grant of the organization (`policy:read`).
#[utoipa::path(get, path = "/api/policies", tag = "Permissions",
    responses((status = 200, description = "Every grant (one page, no cursor).", body = ListEnvelope<GrantDto>)))]
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

/// Lists the rights Rapport checks, per resource (`policy:read`): the only ones a grant may
/// name (the Permissions page's cells).
#[utoipa::path(get, path = "/api/policies/rights", tag = "Permissions",
    responses((status = 200, description = "The rights by resource.", body = Rights)))]
pub async fn rights(scope: ApiScope) -> AppResult<HttpResponse> {
    scope.require("policy", "read")?;
    Ok(HttpResponse::Ok().json(Rights {
        data: crate::domain::policy::ENFORCED
            .iter()
            .map(|&(resource, actions, about)| Right {
                resource,
                actions,
                about,
            })
            .collect(),
    }))
}

/// Grants a role a right (`policy:write`); answers 201 when it is new, 200 when it was
/// already granted.
#[utoipa::path(post, path = "/api/policies", tag = "Permissions", request_body = GrantDto,
    responses(
        (status = 201, description = "Granted; `Location` names the grant.", body = GrantDto),
        (status = 200, description = "Already granted.", body = GrantDto)
    ))]
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

/// Revokes a role's right (`policy:write`); the admin role's rights cannot be taken away.
#[utoipa::path(delete, path = "/api/policies/{role}/{resource}/{action}", tag = "Permissions",
    params(
        ("role" = String, Path, description = "The role."),
        ("resource" = String, Path, description = "The resource."),
        ("action" = String, Path, description = "The action.")
    ),
    responses((status = 204, description = "Revoked.")))]
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
