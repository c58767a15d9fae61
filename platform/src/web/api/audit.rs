//! `GET /api/audit-log`: the organization's audit entries, newest first (`audit:read`).

use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::Serialize;

use super::{rfc3339, ListEnvelope, ListQuery};
use crate::domain::audit::{AuditFilter, AuditRow};
use crate::error::{AppError, AppResult};
use crate::ops::audit as ops;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditDto {
    id: String,
    actor_user_id: Option<String>,
    actor: String,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    changes: serde_json::Value,
    ip: String,
    request_id: String,
    created_at: String,
}

impl From<AuditRow> for AuditDto {
    fn from(r: AuditRow) -> Self {
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
        }
    }
}

/// `GET /api/audit-log?filter[actor]=&filter[action]=&filter[resourceType]=&filter[resourceId]=&filter[from]=&filter[to]=`
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
    };
    let page = ops::page(&scope, filter, query.cursor.clone(), query.limit).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: page
            .entries
            .into_iter()
            .map(|e| {
                let mut v = serde_json::to_value(AuditDto::from(e.row)).unwrap_or_default();
                v["actionLabel"] = e.action_label.into();
                v["resourceName"] = e.resource_name.into();
                v
            })
            .collect(),
        next_cursor: page.next,
    }))
}
