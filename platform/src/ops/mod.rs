//! Operations: what the API, the console and the workers do, written once.
//!
//! A handler parses its request into typed input, calls one operation with the caller's
//! [`Scope`], and renders what comes back (JSON, a page, a fragment). The operation checks
//! the caller's rights, applies the record rule (who may see which record), runs the
//! domain services in one transaction and answers with a read model (`ClientView`, …) that
//! both surfaces show. So a rule is decided in one place and the surfaces cannot drift.
//!
//! The scope is built by the web layer's extractors for a request (`web::scope`) and
//! directly by workers ([`Scope::system`]); nothing here knows about HTTP or the process
//! state (`crate::state`).

pub mod attachments;
pub mod audit;
pub mod clients;
pub mod contracts;
pub mod custom_fields;
pub mod dashboard;
pub mod deals;
pub mod duplicates;
pub mod imports;
pub mod interactions;
pub mod mail;
pub mod overview;
pub mod password_resets;
pub mod pipelines;
pub mod policies;
pub mod quotes;
pub mod reports;
pub mod sales;
pub mod scores;
pub mod segments;
pub mod tags;
pub mod users;
pub mod webhooks;
pub mod workflows;

use std::path::PathBuf;
use std::sync::Arc;

use crate::db::{self, DbConn, Pool};
use crate::domain::audit::AuditContext;
use crate::domain::clients::service::Access;
use crate::error::{AppError, AppResult};
use crate::plugins::runtime::Runtime;

/// Who acts, in which organization, with which rights and reach, and the handles the
/// operations need (the pool, the warm plugin instances).
#[derive(Clone)]
pub struct Scope {
    pub org_id: String,
    /// The acting user; `None` for the system (command line, workers).
    pub user_id: Option<String>,
    pub audit: AuditContext,
    rights: Rights,
    pub pool: Pool,
    pub plugins: Runtime,
    pub blobs: Blobs,
    /// Where staged import files live.
    pub data_dir: PathBuf,
    /// Seals and opens mailbox passwords.
    pub secret: crate::integrations::secret::Key,
    /// The caller is an API token whose scopes narrowed the user's rights (refusals say so).
    pub token_scoped: bool,
    /// How the console writes times and figures for the person; the default (UTC, en-GB)
    /// for API callers and the system, whose answers must not change with a preference.
    pub local: crate::locale::Local,
}

/// Where attachments' bytes live.
pub type Blobs = Arc<dyn crate::domain::attachments::BlobStore>;

/// What the operations reach beyond the database: the process's pool, warm plugin
/// instances, the attachment store and the data folder.
#[derive(Clone)]
pub struct Handles {
    pub pool: Pool,
    pub plugins: Runtime,
    pub blobs: Blobs,
    pub data_dir: PathBuf,
    pub secret: crate::integrations::secret::Key,
}

/// The organization's default currency (for money without one).
pub fn default_currency(c: &mut DbConn, org_id: &str) -> AppResult<String> {
    Ok(crate::domain::orgs::store::find_org(c, org_id)?
        .map(|o| o.default_currency)
        .unwrap_or_else(|| "USD".into()))
}

#[derive(Clone)]
enum Rights {
    /// The (resource, action) pairs policy grants the user here.
    Granted(crate::domain::policy::Granted),
    /// The system acting for an organization: every right, every record.
    All,
}

impl Scope {
    /// A user's scope, with the rights policy granted them in the organization.
    pub fn user(
        audit: AuditContext,
        user_id: &str,
        rights: crate::domain::policy::Granted,
        handles: Handles,
    ) -> Self {
        Self {
            org_id: audit.org_id.clone(),
            user_id: Some(user_id.to_string()),
            audit,
            rights: Rights::Granted(rights),
            pool: handles.pool,
            plugins: handles.plugins,
            blobs: handles.blobs,
            data_dir: handles.data_dir,
            secret: handles.secret,
            token_scoped: false,
            local: crate::locale::Local::default(),
        }
    }

    /// The system acting for an organization (imports, reminders, the command line).
    pub fn system(audit: AuditContext, handles: Handles) -> Self {
        Self {
            org_id: audit.org_id.clone(),
            user_id: None,
            audit,
            rights: Rights::All,
            pool: handles.pool,
            plugins: handles.plugins,
            blobs: handles.blobs,
            data_dir: handles.data_dir,
            secret: handles.secret,
            token_scoped: false,
            local: crate::locale::Local::default(),
        }
    }

    pub fn can(&self, resource: &str, action: &str) -> bool {
        match &self.rights {
            Rights::All => true,
            // why: a scan of ~70 pairs without allocating; a set keyed by owned strings
            // made two strings per question and cost more to build than it saved.
            Rights::Granted(set) => set.iter().any(|(r, a)| r == resource && a == action),
        }
    }

    /// Refuses with 403 unless the caller may `action` on `resource`.
    pub fn require(&self, resource: &str, action: &str) -> AppResult<()> {
        if self.can(resource, action) {
            Ok(())
        } else if self.token_scoped {
            Err(AppError::Forbidden(format!(
                "Your role or this API token's scopes do not allow it to {action} {}.",
                resource_label(resource)
            )))
        } else {
            Err(AppError::Forbidden(format!(
                "Your role may not {action} {}.",
                resource_label(resource)
            )))
        }
    }

    /// The record rule on `resource` (client, opportunity): without `oversee` a user
    /// reaches only the records assigned to them.
    pub fn access(&self, resource: &str) -> Access {
        Access {
            user_id: self.user_id.clone().unwrap_or_default(),
            oversee: self.can(resource, "oversee"),
            read_sensitive: self.can("sensitive_field", "read"),
            write_sensitive: self.can("sensitive_field", "write"),
            create_tags: self.can("tag", "write"),
        }
    }

    /// Runs blocking reads on the pool.
    pub async fn read<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        db::run(&self.pool, f).await
    }

    /// Runs a change in one transaction with the organization's plugins loaded (their
    /// field types validate values; their event hooks commit with the change and run
    /// after it), then records the plugin calls' health.
    pub async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConn, &crate::plugins::PluginFieldTypes) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        with_plugins(&self.pool, &self.plugins, self.org_id.clone(), f).await
    }
}

/// Runs a change in one transaction with the organization's enabled plugins loaded (their
/// field types validate values; their event hooks commit with the change and run after it),
/// then records the plugin calls' health.
pub async fn with_plugins<T, F>(
    pool: &Pool,
    plugins: &Runtime,
    org_id: String,
    f: F,
) -> AppResult<T>
where
    F: FnOnce(&mut DbConn, &crate::plugins::PluginFieldTypes) -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let runtime = plugins.clone();
    db::run(pool, move |c| {
        let ext = crate::plugins::PluginFieldTypes::load(c, &runtime, &org_id)?;
        // why: the change and its plugin events commit together: an event is never lost
        // to a restart, and never sent for a change that rolled back.
        let out = crate::db::transaction(c, |c| {
            let value = f(c, &ext)?;
            ext.deliver(c)?;
            Ok(value)
        });
        if out.is_ok() {
            ext.wake();
        }
        crate::plugins::settle(c, &org_id, &ext.records())?;
        out
    })
    .await
}

pub fn resource_label(resource: &str) -> String {
    match resource {
        "user" => "users".into(),
        "policy" => "permissions".into(),
        "audit" => "the audit log".into(),
        "opportunity" => "opportunities".into(),
        "custom_field" => "custom fields".into(),
        "send" => "bulk sends".into(),
        other => format!("{other}s"),
    }
}

/// A field the caller may leave out, clear (`null`) or set: what a partial update needs
/// to tell apart, and what a `Map<String, Value>` could not say in its type.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    /// The change as the domain services take it: `None` to leave, `Some(None)` to clear.
    pub fn into_change(self) -> Option<Option<T>> {
        match self {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(v) => Some(Some(v)),
        }
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Patch<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A present key reaches here; an absent one takes `Default` (with
        // `#[serde(default)]` on the field).
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Patch::Value(v),
            None => Patch::Null,
        })
    }
}
