//! The audit log: who did what to which record, when and from where. Entries are
//! written in the same transaction as the change they describe.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::QueryResult;

use crate::db::schema::audit_log;
use crate::db::{new_id, now, DbConn};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: String,
    pub organization_id: String,
    pub actor_user_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub changes: String,
    pub ip: String,
    pub request_id: String,
    pub created_at: NaiveDateTime,
}

/// Who is acting, and from where; carried from the request into services.
#[derive(Debug, Clone)]
pub struct AuditContext {
    pub org_id: String,
    pub actor_user_id: Option<String>,
    pub actor_label: String,
    pub ip: String,
    pub request_id: String,
    /// Set while an import runs: its records are logged once, in the batch's change log
    /// (`import_changes`, with the prior state), instead of one audit entry per record.
    pub import_batch: Option<String>,
}

impl AuditContext {
    /// For changes made from the command line.
    pub fn cli(org_id: &str) -> Self {
        Self {
            org_id: org_id.to_string(),
            actor_user_id: None,
            actor_label: "cli".into(),
            ip: "local".into(),
            request_id: new_id(),
            import_batch: None,
        }
    }
}

pub fn record(
    conn: &mut DbConn,
    ctx: &AuditContext,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
    changes: serde_json::Value,
) -> QueryResult<()> {
    record_returning_id(conn, ctx, action, resource_type, resource_id, changes).map(drop)
}

/// As [`record`], answering the entry's id (for actions undone from their entry).
pub fn record_returning_id(
    conn: &mut DbConn,
    ctx: &AuditContext,
    action: &str,
    resource_type: &str,
    resource_id: Option<&str>,
    changes: serde_json::Value,
) -> QueryResult<String> {
    if ctx.import_batch.is_some() && !action.starts_with("import.") {
        return Ok(String::new());
    }
    let row = AuditRow {
        id: new_id(),
        organization_id: ctx.org_id.clone(),
        actor_user_id: ctx.actor_user_id.clone(),
        actor_label: ctx.actor_label.clone(),
        action: action.to_string(),
        resource_type: resource_type.to_string(),
        resource_id: resource_id.map(str::to_string),
        changes: changes.to_string(),
        ip: ctx.ip.clone(),
        request_id: ctx.request_id.clone(),
        created_at: now(),
    };
    diesel::insert_into(audit_log::table)
        .values(&row)
        .execute(conn)?;
    Ok(row.id)
}

/// Newest first; `before` is the id of the last entry of the previous page.
pub fn list(
    conn: &mut DbConn,
    org_id: &str,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut q = audit_log::table
        .filter(audit_log::organization_id.eq(org_id))
        .select(AuditRow::as_select())
        .order(audit_log::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        q = q.filter(audit_log::id.lt(before.to_string()));
    }
    q.load(conn)
}

/// The newest entries about one record.
pub fn list_for_resource(
    conn: &mut DbConn,
    org_id: &str,
    resource_type: &str,
    resource_id: &str,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    audit_log::table
        .filter(audit_log::organization_id.eq(org_id))
        .filter(audit_log::resource_type.eq(resource_type))
        .filter(audit_log::resource_id.eq(resource_id))
        .select(AuditRow::as_select())
        .order(audit_log::id.desc())
        .limit(limit)
        .load(conn)
}
