//! `GET /api/audit-log`: the organization's audit entries, newest first (`audit:read`).

use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::{rfc3339, ListEnvelope, ListQuery};
use crate::domain::audit::{AuditFilter, AuditRow};
use crate::error::{AppError, AppResult};
use crate::ops::audit as ops;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(list))]
pub struct Doc;

/// An entry of the audit log.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AuditEntry)]
pub struct AuditDto {
    id: String,
    /// Null for the system or a deleted user.
    actor_user_id: Option<String>,
    /// Who acted, as people read it.
    actor: String,
    /// `resource.verb`, e.g. `client.update`.
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    /// What changed; its keys depend on the action.
    changes: serde_json::Value,
    ip: String,
    request_id: String,
    created_at: String,
    /// The action in words.
    action_label: String,
    /// The record's name when it still exists and has one.
    resource_name: Option<String>,
}

impl AuditDto {
    fn new(r: AuditRow, action_label: String, resource_name: Option<String>) -> Self {
        Self {
            id: r.id,
            actor_user_id: r.actor_user_id,
            actor: r.actor_label,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            changes: serde_json::from_str(&r.changes).unwrap_or(serde_json::Value::Null),
            ip: r.ip,
            request_id: r.request_id,
            created_at: rfc3339(r.created_at),
            action_label,
            resource_name,
        }
    }
}

/// Lists the organization's audit entries, newest first (`audit:read`).
#[utoipa::path(get, path = "/api/audit-log", tag = "Audit log",
    params(
        ("limit" = Option<i64>, Query, description = "Entries per page, 1 to 500 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`."),
        ("filter[actor]" = Option<String>, Query, description = "Only entries by this user id."),
        ("filter[action]" = Option<String>, Query, description = "Only this action (`client.update`)."),
        ("filter[resourceType]" = Option<String>, Query, description = "Only entries on this kind of record (`client`)."),
        ("filter[resourceId]" = Option<String>, Query, description = "Only entries on this record."),
        ("filter[from]" = Option<String>, Query, description = "From this day on (`2026-01-31`)."),
        ("filter[to]" = Option<String>, Query, description = "Up to this day, inclusive (`2026-12-31`)."),
    ),
    responses((status = 200, description = "A page of entries.", body = ListEnvelope<AuditDto>)))]
pub async fn list(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    let query = ListQuery::parse(
        &req,
        &[
            "actor",
            "action",
            "resourceType",
            "resourceId",
            "from",
            "to",
        ],
    )?;
    let f = |k: &str| query.filters.get(k).cloned().filter(|v| !v.is_empty());
    let day = |k: &str| -> AppResult<Option<NaiveDate>> {
        f(k).map(|d| {
            NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| {
                AppError::invalid(&format!("filter[{k}]"), "Use a date like 2026-12-31.")
            })
        })
        .transpose()
    };
    let filter = AuditFilter {
        actor: f("actor"),
        action: f("action"),
        resource_type: f("resourceType"),
        resource_id: f("resourceId"),
        from: day("from")?,
        to: day("to")?,
        local: Default::default(),
    };
    let page = ops::page(&scope, filter, query.cursor.clone(), query.limit).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: page
            .entries
            .into_iter()
            .map(|e| AuditDto::new(e.row, e.action_label, e.resource_name))
            .collect(),
        next_cursor: page.next,
    }))
}
