//! `GET /api/audit-log`: the organization's audit entries, newest first (`audit:read`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::{paginate, rfc3339, ListQuery};
use crate::auth::ApiActor;
use crate::db;
use crate::domain::audit::{self, AuditRow};
use crate::error::AppResult;
use crate::state::AppState;

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

pub async fn list(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    actor.require("audit", "read").await?;
    let query = ListQuery::parse(&req, &[])?;
    let org = actor.org_id().to_string();
    let (cursor, limit) = (query.cursor.clone(), query.limit);
    let rows = db::run(&state.pool, move |c| {
        Ok(audit::list(c, &org, cursor.as_deref(), limit + 1)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(paginate(
        rows,
        query.limit,
        |r| r.id.clone(),
        AuditDto::from,
    )))
}
