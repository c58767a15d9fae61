//! The audit log: who did what to which record, when and from where. Entries are
//! written in the same transaction as the change they describe.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::QueryResult;

use crate::db::schema::audit_log;
use crate::db::{new_id, now, DbConn};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log, treat_none_as_default_value = false)]
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
    let id = row.id.clone();
    if let Some(row) = crate::domain::later::audit(row) {
        diesel::insert_into(audit_log::table)
            .values(&row)
            .execute(conn)?;
    }
    // Webhook deliveries commit with the change that makes them (an outbox).
    crate::domain::webhooks::emit(
        conn,
        &ctx.org_id,
        action,
        resource_type,
        resource_id,
        &changes,
    )?;
    // So do the workflow runs it starts: the work happens after commit, in the worker.
    crate::domain::workflows::fire_audited(
        conn,
        &ctx.org_id,
        action,
        resource_type,
        resource_id,
        &changes,
    )?;
    // And the client's segment memberships are looked at again, by the segment worker.
    crate::domain::segments::mark_dirty(conn, &ctx.org_id, action, resource_type, resource_id)?;
    Ok(id)
}

/// What the audit log may be narrowed to. Each filter rides an index ending in `id`
/// (`audit_log_actor_idx`, `audit_log_type_idx`, `audit_log_resource_idx`), so a page is
/// read newest first without sorting; dates become id bounds (ids are UUIDv7, time first).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    /// Exact action (`client.update`); implies its record type.
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub from: Option<chrono::NaiveDate>,
    /// Inclusive.
    pub to: Option<chrono::NaiveDate>,
    /// Whose days `from` and `to` are (the reader's zone in the console, UTC in the API).
    pub local: crate::locale::Local,
}

/// The smallest UUIDv7 string made at `at` (UTC).
fn id_at(at: chrono::NaiveDateTime) -> String {
    let ms = at.and_utc().timestamp_millis().max(0);
    let hex = format!("{ms:012x}");
    format!("{}-{}-0000-0000-000000000000", &hex[..8], &hex[8..12])
}

/// Entries newest first, narrowed by `f`, from before `before` (an entry id).
pub fn list_filtered(
    conn: &mut DbConn,
    org_id: &str,
    f: &AuditFilter,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut q = audit_log::table
        .filter(audit_log::organization_id.eq(org_id))
        .select(AuditRow::as_select())
        .order(audit_log::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = &f.actor {
        q = q.filter(audit_log::actor_user_id.eq(a.clone()));
    }
    let resource_type = f
        .resource_type
        .clone()
        .or_else(|| f.action.as_deref().map(|a| resource_type_of(a).to_string()));
    if let Some(t) = resource_type {
        q = q.filter(audit_log::resource_type.eq(t));
    }
    if let Some(a) = &f.action {
        q = q.filter(audit_log::action.eq(a.clone()));
    }
    if let Some(r) = &f.resource_id {
        q = q.filter(audit_log::resource_id.eq(r.clone()));
    }
    if let Some(d) = f.from {
        q = q.filter(audit_log::id.ge(id_at(f.local.days_utc(d, d).0)));
    }
    if let Some(d) = f.to {
        q = q.filter(audit_log::id.lt(id_at(f.local.days_utc(d, d).1)));
    }
    if let Some(before) = before {
        q = q.filter(audit_log::id.lt(before.to_string()));
    }
    q.load(conn)
}

/// Every action Rapport records, with the kind of record it is recorded against: mostly
/// the action's first word, but not always (a stage changes on its pipeline). The audit
/// log's "what happened" filter offers these: asking the log for its distinct actions
/// would read every entry of the organization, as no index leads with the action.
pub const ACTIONS: &[(&str, &str)] = &[
    ("attachment.delete", "attachment"),
    ("attachment.download", "attachment"),
    ("attachment.upload", "attachment"),
    ("calendar_feed.rotate", "user"),
    ("client.create", "client"),
    ("client.delete", "client"),
    ("client.export", "client"),
    ("client.merge", "client"),
    ("client.merge_undo", "audit"),
    ("client.preferences", "client"),
    ("client.purge", "client"),
    ("client.relate", "client"),
    ("client.restore", "client"),
    ("client.tag", "client"),
    ("client.unrelate", "client"),
    ("client.untag", "client"),
    ("client.update", "client"),
    ("client.view_sensitive", "client"),
    ("contract.create", "contract"),
    ("contract.document", "contract"),
    ("contract.renew", "contract"),
    ("contract.update", "contract"),
    ("custom_field.archive", "custom_field"),
    ("custom_field.create", "custom_field"),
    ("custom_field.reorder", "custom_field"),
    ("custom_field.restore", "custom_field"),
    ("custom_field.update", "custom_field"),
    ("dashboard.create", "dashboard"),
    ("dashboard.delete", "dashboard"),
    ("dashboard.schedule", "dashboard"),
    ("dashboard.unschedule", "dashboard"),
    ("dashboard.update", "dashboard"),
    ("import.finish", "import"),
    ("import.resume", "import"),
    ("import.revert", "import"),
    ("import.start", "import"),
    ("import.upload", "import"),
    ("interaction.create", "interaction"),
    ("interaction.delete", "interaction"),
    ("interaction.export", "interaction"),
    ("interaction.update", "interaction"),
    ("loss_reason.create", "pipeline"),
    ("mail.bounce_clear", "organization"),
    ("mail.tracking", "organization"),
    ("mailbox.create", "mailbox"),
    ("mailbox.delete", "mailbox"),
    ("mailbox.update", "mailbox"),
    ("message.file", "message"),
    ("message.queue", "message"),
    ("opportunity.create", "opportunity"),
    ("opportunity.delete", "opportunity"),
    ("opportunity.export", "opportunity"),
    ("opportunity.move", "opportunity"),
    ("opportunity.update", "opportunity"),
    ("organization.create", "organization"),
    ("pipeline.create", "pipeline"),
    ("pipeline.update", "pipeline"),
    ("plugin.auto_disable", "plugin"),
    ("plugin.configure", "plugin"),
    ("plugin.disable", "plugin"),
    ("plugin.enable", "plugin"),
    ("plugin.install", "plugin"),
    ("plugin.key.distrust", "plugin_key"),
    ("plugin.key.trust", "plugin_key"),
    ("plugin.signatures", "organization"),
    ("plugin.uninstall", "plugin"),
    ("plugin.upgrade", "plugin"),
    ("policy.grant", "policy"),
    ("policy.revoke", "policy"),
    ("quote.create", "quote"),
    ("quote.status", "quote"),
    ("report.create", "report"),
    ("report.delete", "report"),
    ("report.update", "report"),
    ("segment.create", "segment"),
    ("segment.delete", "segment"),
    ("segment.update", "segment"),
    ("send.cancel", "send"),
    ("send.create", "send"),
    ("send.export", "send"),
    ("send.pause", "send"),
    ("send.resume", "send"),
    ("session.create", "session"),
    ("stage.create", "pipeline"),
    ("stage.retire", "pipeline"),
    ("stage.update", "pipeline"),
    ("tag.create", "tag"),
    ("tag.delete", "tag"),
    ("tag.update", "tag"),
    ("template.delete", "template"),
    ("template.save", "template"),
    ("token.create", "token"),
    ("token.revoke", "token"),
    ("user.change_password", "user"),
    ("user.create", "user"),
    ("user.invite", "user"),
    ("user.invite_cancel", "user"),
    ("user.join", "user"),
    ("user.preferences", "user"),
    ("user.reset_password", "user"),
    ("user.reset_password_by_email", "user"),
    ("user.update", "user"),
    ("webhook.create", "webhook"),
    ("webhook.delete", "webhook"),
    ("webhook.replay", "webhook"),
    ("webhook.rotate", "webhook"),
    ("webhook.update", "webhook"),
    ("workflow.create", "workflow"),
    ("workflow.delete", "workflow"),
    ("workflow.rotate_url", "workflow"),
    ("workflow.update", "workflow"),
];

/// The kind of record `action` is recorded against: from [`ACTIONS`], else its first word.
pub fn resource_type_of(action: &str) -> &str {
    ACTIONS
        .iter()
        .find(|(a, _)| *a == action)
        .map_or_else(|| action.split('.').next().unwrap_or(action), |(_, t)| t)
}

/// "client.update" → "Client changed": an action in words, for people.
pub fn action_label(action: &str) -> String {
    match action {
        "session.create" => return "Signed in".into(),
        "organization.create" => return "Organization created".into(),
        "user.preferences" => return "Time zone and formats changed".into(),
        "mail.tracking" => return "E-mail tracking changed".into(),
        "mail.bounce_clear" => return "Bounce cleared".into(),
        "workflow.rotate_url" => return "Workflow link renewed".into(),
        _ => {}
    }
    let (kind, verb) = action.split_once('.').unwrap_or((action, ""));
    let kind = match kind {
        "opportunity" => "Deal".to_string(),
        "policy" => "Permission".to_string(),
        "calendar_feed" => "Calendar feed".to_string(),
        "loss_reason" => "Loss reason".to_string(),
        "custom_field" => "Custom field".to_string(),
        other => {
            let mut w = other.replace('_', " ");
            if let Some(first) = w.get(..1) {
                w = first.to_uppercase() + &w[1..];
            }
            w
        }
    };
    let verb = match verb {
        "create" => "created",
        "update" => "changed",
        "delete" => "deleted",
        "restore" => "restored",
        "purge" => "deleted for good",
        "merge" => "merged",
        "merge_undo" => "merge undone",
        "tag" => "tagged",
        "untag" => "untagged",
        "relate" => "related",
        "unrelate" => "relation removed",
        "move" => "moved",
        "export" => "exported",
        "upload" => "uploaded",
        "download" => "downloaded",
        "revert" => "reverted",
        "finish" => "finished",
        "renew" => "renewed",
        "retire" => "retired",
        "rotate" => "renewed",
        "revoke" => "revoked",
        "invite" => "invited",
        "invite_cancel" => "invitation cancelled",
        "join" => "joined",
        "reset_password" => "password reset",
        "change_password" => "password changed",
        "view_sensitive" => "sensitive fields viewed",
        "preferences" => "contact preferences changed",
        "status" => "status changed",
        "document" => "document attached",
        "reorder" => "reordered",
        "configure" => "configured",
        "uninstall" => "uninstalled",
        "upgrade" => "upgraded",
        "archive" => "archived",
        "schedule" => "scheduled",
        "unschedule" => "unscheduled",
        "start" => "started",
        "resume" => "resumed",
        "pause" => "paused",
        "cancel" => "cancelled",
        "save" => "saved",
        "replay" => "replayed",
        "file" => "filed",
        "queue" => "queued",
        "reset_password_by_email" => "password reset by e-mail",
        "install" => "installed",
        "enable" => "enabled",
        "disable" => "disabled",
        "auto_disable" => "disabled after failures",
        "signatures" => "signature rule changed",
        "key.trust" => "vendor key trusted",
        "key.distrust" => "vendor key removed",
        "grant" => "granted",
        "" => "",
        other => return format!("{kind}: {}", other.replace(['_', '.'], " ")),
    };
    format!("{kind} {verb}").trim_end().to_string()
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

#[cfg(test)]
mod filter_tests {
    use super::*;

    #[test]
    fn days_become_uuid_v7_bounds() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        let id = uuid::Uuid::now_v7().to_string();
        // Today's ids sort after today's bound and before tomorrow's.
        let today = chrono::Utc::now().date_naive();
        let (start, end) = crate::locale::Local::default().days_utc(today, today);
        assert!(id >= id_at(start) && id < id_at(end));
        assert_eq!(id_at(day.and_hms_opt(0, 0, 0).unwrap()).len(), 36);
    }

    #[test]
    fn actions_read_as_words() {
        assert_eq!(action_label("client.update"), "Client changed");
        assert_eq!(action_label("opportunity.move"), "Deal moved");
        assert_eq!(
            action_label("plugin.key.trust"),
            "Plugin vendor key trusted"
        );
        assert_eq!(action_label("user.reset_password"), "User password reset");
        assert_eq!(action_label("thing.frobnicate"), "Thing: frobnicate");
        assert_eq!(action_label("policy.revoke"), "Permission revoked");
    }

    #[test]
    fn every_known_action_reads_as_words() {
        for (action, _) in ACTIONS {
            let label = action_label(action);
            assert!(
                !label.contains(':') && !label.contains('_') && !label.contains('.'),
                "{action} → {label}"
            );
        }
        assert_eq!(resource_type_of("stage.update"), "pipeline");
        assert_eq!(resource_type_of("client.update"), "client");
        assert_eq!(resource_type_of("thing.frobnicate"), "thing");
    }
}
