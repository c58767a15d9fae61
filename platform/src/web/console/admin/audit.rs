//! The audit log page (`audit:read`): newest first, with "load more" paging.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::ConsoleActor;
use crate::db;
use crate::domain::audit::{self, AuditRow};
use crate::error::AppResult;
use crate::state::AppState;
use crate::web::console::render;

const PAGE: i64 = 50;

pub struct EntryView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub changes: String,
    pub ip: String,
}

impl From<AuditRow> for EntryView {
    fn from(r: AuditRow) -> Self {
        Self {
            at: r.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            actor: r.actor_label,
            action: r.action,
            resource: match r.resource_id {
                Some(id) => format!("{} {}", r.resource_type, id),
                None => r.resource_type,
            },
            changes: describe_changes(&r.changes),
            ip: r.ip,
        }
    }
}

#[derive(Template)]
#[template(path = "partials/admin/audit.html")]
struct AuditPanel {
    entries: Vec<EntryView>,
    next: Option<String>,
    /// Only the rows, appended below the previous page.
    rows_only: bool,
}

#[derive(Deserialize)]
pub struct Paging {
    before: Option<String>,
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    paging: web::Query<Paging>,
) -> AppResult<HttpResponse> {
    actor.require("audit", "read").await?;
    let org = actor.org_id().to_string();
    let before = paging.into_inner().before;
    let rows_only = before.is_some();
    let mut rows = db::run(&state.pool, move |c| {
        Ok(audit::list(c, &org, before.as_deref(), PAGE + 1)?)
    })
    .await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let next = if more {
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    let panel = AuditPanel {
        entries: rows.into_iter().map(EntryView::from).collect(),
        next,
        rows_only,
    };
    render(&req, &actor, "Audit log", &panel).await
}

/// `{"role": ["a", "b"], "name": "x"}` → `role: a → b; name: x`, for people to read.
pub fn describe_changes(json: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_string();
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    map.iter()
        .map(|(k, v)| match v.as_array().map(Vec::as_slice) {
            Some([from, to]) => format!("{k}: {} → {}", text(from), text(to)),
            _ => format!("{k}: {}", text(v)),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn changes_read_as_sentences() {
        assert_eq!(
            super::describe_changes(r#"{"role":["manager","marketer"],"name":"Ann"}"#),
            "name: Ann; role: manager → marketer"
        );
        assert_eq!(super::describe_changes("{}"), "");
    }
}
