//! Casbin RBAC with domains (the domain is the organization), our database
//! adapter over the shared pool, the default policy of each role, and the
//! revision check that makes a policy change on one instance reach all of them.
//!
//! Objects are resource kinds and actions are verbs, never URL paths.

use std::sync::Arc;

use async_trait::async_trait;
use casbin::{Adapter, CoreApi, DefaultModel, Enforcer, Filter, Model};
use diesel::prelude::*;
use tokio::sync::RwLock;

use crate::db::schema::{casbin_rules, policy_revision};
use crate::db::{self, new_id, DbConn, Pool};
use crate::domain::orgs::Role;
use crate::error::{AppError, AppResult};

const MODEL: &str = r#"
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
"#;

/// Resource kinds a policy can name. Later issues add their own here.
pub const RESOURCES: &[&str] = &[
    "client",
    "tag",
    "sensitive_field",
    "opportunity",
    "pipeline",
    "interaction",
    "message",
    "send",
    "segment",
    "report",
    "custom_field",
    "plugin",
    "webhook",
    "workflow",
    "user",
    "policy",
    "audit",
    "organization",
];

/// The rights the code checks, per resource, with what each row governs. The Permissions
/// page shows these cells and no other, and a grant is refused on any other pair: a right
/// nothing consults would only mislead the admin who ticks it. `RESOURCES` keeps the kinds
/// later areas (segments, webhooks, organization settings) will check; their rights join
/// this list with the code that checks them. `tests::the_enforced_rights_are_the_checked_ones`
/// reads the source and fails when the two drift apart.
pub const ENFORCED: &[(&str, &[&str], &str)] = &[
    (
        "client",
        &["read", "write", "delete", "export", "oversee", "admin"],
        "People and companies. Oversee reaches clients assigned to others; admin restores and purges the trash.",
    ),
    (
        "tag",
        &["read", "write", "delete", "admin"],
        "Tags. Write tags clients and creates a tag while tagging; admin adds, renames and recolours the organization's tags.",
    ),
    (
        "sensitive_field",
        &["read", "write"],
        "Custom fields marked sensitive.",
    ),
    (
        "opportunity",
        &["read", "write", "delete", "export", "oversee"],
        "Deals, quotes and contracts. Oversee reaches deals assigned to others.",
    ),
    (
        "pipeline",
        &["read", "write"],
        "Pipelines, stages and loss reasons.",
    ),
    (
        "interaction",
        &["read", "write", "delete", "export"],
        "Calls, meetings, e-mails, notes and tasks, on the clients one may see.",
    ),
    (
        "message",
        &["read", "write", "send", "admin"],
        "E-mail. Send writes to clients one may see; write connects one's own mailbox, files unmatched mail and edits templates; admin connects the organization's shared mailboxes and switches tracking.",
    ),
    (
        "send",
        &["read", "create"],
        "Bulk sends. Read sees them and their reports; create sends a template to a list of clients, and pauses, resumes or cancels it.",
    ),
    (
        "segment",
        &["read", "write", "delete", "export"],
        "Segments: read sees them, their members and their history; write builds and changes them; export downloads their members (with the client export right).",
    ),
    ("report", &["read", "write"], "Reports and dashboards. Read runs the forecast, performance, standard and custom reports and keeps private reports and dashboards; write shares them with a role or everyone and changes anyone's."),
    (
        "custom_field",
        &["read", "write", "delete"],
        "Custom field definitions.",
    ),
    ("plugin", &["read", "admin"], "Plugins: admin installs and configures them."),
    (
        "webhook",
        &["read", "admin"],
        "Webhooks: read sees the subscriptions and their delivery log; admin adds, changes, replays and removes them.",
    ),
    (
        "workflow",
        &["read", "admin"],
        "Workflows: read sees them and their runs and tries one on a record; admin builds, changes, switches and removes them.",
    ),
    ("user", &["read", "admin"], "Members: admin invites, changes roles and deactivates."),
    ("policy", &["read", "write"], "This page."),
    ("audit", &["read"], "The audit log."),
];

/// Whether the code checks `action` on `resource` (see [`ENFORCED`]).
pub fn is_enforced(resource: &str, action: &str) -> bool {
    ENFORCED
        .iter()
        .any(|(r, actions, _)| *r == resource && actions.contains(&action))
}

/// Verbs a policy can grant.
/// `oversee` extends the other verbs to records assigned to someone else.
pub const ACTIONS: &[&str] = &[
    "read", "write", "delete", "export", "oversee", "admin", "send", "create",
];

/// What each role may do in a new organization.
pub fn default_grants(role: Role) -> Vec<(&'static str, &'static str)> {
    let all = |resources: &[&'static str], actions: &[&'static str]| {
        resources
            .iter()
            .flat_map(|r| actions.iter().map(move |a| (*r, *a)))
            .collect::<Vec<_>>()
    };
    match role {
        Role::Admin => all(RESOURCES, ACTIONS),
        Role::Manager => {
            let mut g = all(
                &["client", "opportunity", "interaction", "segment", "report"],
                &["read", "write", "delete", "export", "oversee"],
            );
            g.extend(all(&["custom_field", "tag"], &["read", "write", "delete"]));
            g.push(("tag", "admin"));
            g.extend(all(&["message"], &["read", "write", "send"]));
            g.extend(all(&["send"], &["read", "create"]));
            g.extend(all(&["sensitive_field"], &["read", "write"]));
            g.extend(all(
                &[
                    "pipeline",
                    "user",
                    "organization",
                    "webhook",
                    "workflow",
                    "plugin",
                ],
                &["read"],
            ));
            g
        }
        Role::SalesRep => {
            let mut g = all(
                &["client", "opportunity", "interaction"],
                &["read", "write"],
            );
            // Reps remove what they logged by mistake, on the clients they may see.
            g.push(("interaction", "delete"));
            g.extend(all(&["message"], &["read", "write", "send"]));
            g.extend(all(&["tag"], &["read", "write"]));
            g.extend(all(
                &[
                    "pipeline",
                    "segment",
                    "report",
                    "custom_field",
                    "user",
                    "organization",
                ],
                &["read"],
            ));
            g
        }
        Role::ServiceRep => {
            let mut g = all(&["client", "interaction"], &["read", "write", "oversee"]);
            g.push(("interaction", "delete"));
            g.extend(all(&["message"], &["read", "write", "send"]));
            g.extend(all(&["tag"], &["read", "write"]));
            g.extend(all(&["opportunity"], &["read", "oversee"]));
            g.extend(all(
                &["pipeline", "custom_field", "user", "organization"],
                &["read"],
            ));
            g
        }
        Role::Marketer => {
            let mut g = all(&["segment"], &["read", "write", "delete", "export"]);
            // Marketing brings in and qualifies leads across the whole base: it creates
            // and edits clients, tags them (and makes tags while tagging), logs notes and
            // completes the tasks it is given; it deletes nothing and sees no deals.
            g.extend(all(
                &["client", "interaction"],
                &["read", "write", "oversee"],
            ));
            g.extend(all(&["tag"], &["read", "write"]));
            g.extend(all(&["message"], &["read", "write", "send"]));
            g.extend(all(&["send"], &["read", "create"]));
            g.extend(all(
                &["report", "custom_field", "user", "organization"],
                &["read"],
            ));
            g.push(("client", "export"));
            g
        }
        Role::ReadOnly => {
            let mut g = all(
                &[
                    "client",
                    "opportunity",
                    "pipeline",
                    "interaction",
                    "message",
                    "send",
                    "segment",
                    "report",
                    "organization",
                    "tag",
                    "custom_field",
                ],
                &["read"],
            );
            g.extend(all(&["client", "opportunity", "interaction"], &["oversee"]));
            g
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = casbin_rules)]
pub struct CasbinRuleRow {
    pub id: String,
    pub ptype: String,
    pub v0: String,
    pub v1: String,
    pub v2: String,
    pub v3: String,
    pub v4: String,
    pub v5: String,
}

impl CasbinRuleRow {
    fn new(ptype: &str, rule: &[String]) -> Self {
        let v = |i: usize| rule.get(i).cloned().unwrap_or_default();
        Self {
            id: new_id(),
            ptype: ptype.to_string(),
            v0: v(0),
            v1: v(1),
            v2: v(2),
            v3: v(3),
            v4: v(4),
            v5: v(5),
        }
    }

    fn rule_values(&self) -> Vec<String> {
        let mut v = vec![
            self.v0.clone(),
            self.v1.clone(),
            self.v2.clone(),
            self.v3.clone(),
            self.v4.clone(),
            self.v5.clone(),
        ];
        while v.last().is_some_and(|s| s.is_empty()) {
            v.pop();
        }
        v
    }
}

/// Rule-table queries, shared by the adapter and the services that edit policy
/// inside their own transactions.
pub mod store {
    use super::*;
    use diesel::QueryResult;

    pub fn all(conn: &mut DbConn) -> QueryResult<Vec<CasbinRuleRow>> {
        casbin_rules::table
            .select(CasbinRuleRow::as_select())
            .order(casbin_rules::id.asc())
            .load(conn)
    }

    pub fn insert(conn: &mut DbConn, ptype: &str, rule: &[String]) -> QueryResult<bool> {
        if exists(conn, ptype, rule)? {
            return Ok(false);
        }
        diesel::insert_into(casbin_rules::table)
            .values(CasbinRuleRow::new(ptype, rule))
            .execute(conn)?;
        Ok(true)
    }

    pub fn exists(conn: &mut DbConn, ptype: &str, rule: &[String]) -> QueryResult<bool> {
        let r = CasbinRuleRow::new(ptype, rule);
        diesel::select(diesel::dsl::exists(
            casbin_rules::table
                .filter(casbin_rules::ptype.eq(r.ptype))
                .filter(casbin_rules::v0.eq(r.v0))
                .filter(casbin_rules::v1.eq(r.v1))
                .filter(casbin_rules::v2.eq(r.v2))
                .filter(casbin_rules::v3.eq(r.v3))
                .filter(casbin_rules::v4.eq(r.v4))
                .filter(casbin_rules::v5.eq(r.v5)),
        ))
        .get_result(conn)
    }

    pub fn delete(conn: &mut DbConn, ptype: &str, rule: &[String]) -> QueryResult<bool> {
        let r = CasbinRuleRow::new(ptype, rule);
        let n = diesel::delete(
            casbin_rules::table
                .filter(casbin_rules::ptype.eq(r.ptype))
                .filter(casbin_rules::v0.eq(r.v0))
                .filter(casbin_rules::v1.eq(r.v1))
                .filter(casbin_rules::v2.eq(r.v2))
                .filter(casbin_rules::v3.eq(r.v3))
                .filter(casbin_rules::v4.eq(r.v4))
                .filter(casbin_rules::v5.eq(r.v5)),
        )
        .execute(conn)?;
        Ok(n > 0)
    }

    /// Deletes rules whose fields from `index` on equal `values` (empty matches any).
    pub fn delete_filtered(
        conn: &mut DbConn,
        ptype: &str,
        index: usize,
        values: &[String],
    ) -> QueryResult<bool> {
        let mut q = diesel::delete(casbin_rules::table)
            .filter(casbin_rules::ptype.eq(ptype.to_string()))
            .into_boxed();
        for (offset, value) in values.iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            let value = value.clone();
            q = match index + offset {
                0 => q.filter(casbin_rules::v0.eq(value)),
                1 => q.filter(casbin_rules::v1.eq(value)),
                2 => q.filter(casbin_rules::v2.eq(value)),
                3 => q.filter(casbin_rules::v3.eq(value)),
                4 => q.filter(casbin_rules::v4.eq(value)),
                _ => q.filter(casbin_rules::v5.eq(value)),
            };
        }
        Ok(q.execute(conn)? > 0)
    }

    /// Grants of one organization as (role, resource, action).
    pub fn grants_of_org(
        conn: &mut DbConn,
        org_id: &str,
    ) -> QueryResult<Vec<(String, String, String)>> {
        casbin_rules::table
            .filter(casbin_rules::ptype.eq("p"))
            .filter(casbin_rules::v1.eq(org_id))
            .order((
                casbin_rules::v0.asc(),
                casbin_rules::v2.asc(),
                casbin_rules::v3.asc(),
            ))
            .select((casbin_rules::v0, casbin_rules::v2, casbin_rules::v3))
            .load(conn)
    }

    pub fn revision(conn: &mut DbConn) -> QueryResult<i64> {
        policy_revision::table
            .find(1)
            .select(policy_revision::revision)
            .first(conn)
    }

    /// Call in the transaction that changed rules: every instance reloads on its next check.
    pub fn bump_revision(conn: &mut DbConn) -> QueryResult<()> {
        diesel::update(policy_revision::table.find(1))
            .set(policy_revision::revision.eq(policy_revision::revision + 1))
            .execute(conn)
            .map(drop)
    }

    /// Seeds the default policy of a new organization.
    pub fn seed_org(conn: &mut DbConn, org_id: &str) -> QueryResult<()> {
        for role in Role::ALL {
            for (resource, action) in default_grants(role) {
                insert(
                    conn,
                    "p",
                    &[
                        role.as_str().into(),
                        org_id.into(),
                        resource.into(),
                        action.into(),
                    ],
                )?;
            }
        }
        bump_revision(conn)
    }

    /// Keeps the user's role binding in the organization equal to their membership.
    pub fn bind_role(
        conn: &mut DbConn,
        user_id: &str,
        org_id: &str,
        role: Option<Role>,
    ) -> QueryResult<()> {
        delete_filtered(
            conn,
            "g",
            0,
            &[user_id.into(), String::new(), org_id.into()],
        )?;
        if let Some(role) = role {
            insert(
                conn,
                "g",
                &[user_id.into(), role.as_str().into(), org_id.into()],
            )?;
        }
        bump_revision(conn)
    }
}

fn adapter_err(e: impl std::error::Error + Send + Sync + 'static) -> casbin::Error {
    casbin::error::AdapterError(Box::new(e)).into()
}

/// Casbin adapter over our own pool (the `diesel-adapter` crate fixes its backend
/// at compile time, so it cannot serve both).
pub struct DieselAdapter {
    pool: Pool,
}

impl DieselAdapter {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    async fn with_conn<T, F>(&self, f: F) -> casbin::Result<T>
    where
        F: FnOnce(&mut DbConn) -> QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        db::run(&self.pool, move |c| f(c).map_err(AppError::from))
            .await
            .map_err(adapter_err)
    }
}

#[async_trait]
impl Adapter for DieselAdapter {
    async fn load_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        let rows = self.with_conn(store::all).await?;
        for row in rows {
            let sec = if row.ptype.starts_with('g') { "g" } else { "p" };
            if let Some(ast) = m
                .get_mut_model()
                .get_mut(sec)
                .and_then(|t| t.get_mut(&row.ptype))
            {
                ast.get_mut_policy().insert(row.rule_values());
            }
        }
        Ok(())
    }

    async fn load_filtered_policy<'a>(
        &mut self,
        m: &mut dyn Model,
        _f: Filter<'a>,
    ) -> casbin::Result<()> {
        self.load_policy(m).await
    }

    async fn save_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        let mut rules: Vec<(String, Vec<String>)> = Vec::new();
        for sec in ["p", "g"] {
            if let Some(map) = m.get_model().get(sec) {
                for (ptype, ast) in map {
                    for rule in ast.get_policy() {
                        rules.push((ptype.clone(), rule.clone()));
                    }
                }
            }
        }
        self.with_conn(move |c| {
            crate::db::transaction(c, |c| {
                diesel::delete(casbin_rules::table).execute(c)?;
                for (ptype, rule) in &rules {
                    store::insert(c, ptype, rule)?;
                }
                store::bump_revision(c)
            })
        })
        .await
    }

    async fn clear_policy(&mut self) -> casbin::Result<()> {
        self.with_conn(|c| {
            crate::db::transaction(c, |c| {
                diesel::delete(casbin_rules::table).execute(c)?;
                store::bump_revision(c)
            })
        })
        .await
    }

    fn is_filtered(&self) -> bool {
        false
    }

    async fn add_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        let ptype = ptype.to_string();
        self.with_conn(move |c| {
            crate::db::transaction(c, |c| {
                let added = store::insert(c, &ptype, &rule)?;
                store::bump_revision(c)?;
                Ok(added)
            })
        })
        .await
    }

    async fn add_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        let ptype = ptype.to_string();
        self.with_conn(move |c| {
            crate::db::transaction(c, |c| {
                for rule in &rules {
                    store::insert(c, &ptype, rule)?;
                }
                store::bump_revision(c)?;
                Ok(true)
            })
        })
        .await
    }

    async fn remove_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        let ptype = ptype.to_string();
        self.with_conn(move |c| {
            crate::db::transaction(c, |c| {
                let removed = store::delete(c, &ptype, &rule)?;
                store::bump_revision(c)?;
                Ok(removed)
            })
        })
        .await
    }

    async fn remove_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        let ptype = ptype.to_string();
        self.with_conn(move |c| {
            crate::db::transaction(c, |c| {
                let mut any = false;
                for rule in &rules {
                    any |= store::delete(c, &ptype, rule)?;
                }
                store::bump_revision(c)?;
                Ok(any)
            })
        })
        .await
    }

    async fn remove_filtered_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        field_index: usize,
        field_values: Vec<String>,
    ) -> casbin::Result<bool> {
        let ptype = ptype.to_string();
        self.with_conn(move |c| {
            crate::db::transaction(c, |c| {
                let removed = store::delete_filtered(c, &ptype, field_index, &field_values)?;
                store::bump_revision(c)?;
                Ok(removed)
            })
        })
        .await
    }
}

use diesel::QueryResult;

/// The (resource, action) pairs policy grants a user in an organization, in the order of
/// `RESOURCES` and `ACTIONS`. Shared, not copied: every request's scope holds them.
pub type Granted = Arc<Vec<(String, String)>>;

/// A user's permissions in an organization, as the console's navigation asks for them.
type PermissionCache = std::sync::Mutex<std::collections::HashMap<(String, String), Granted>>;

struct Loaded {
    enforcer: Enforcer,
    revision: i64,
    /// why: listing them takes one enforce per resource and action (~70, ~12 ms together),
    /// on every console page. Valid for this revision; emptied on reload.
    permissions: PermissionCache,
}

/// One enforcer per process, read-locked to enforce. Before a check the caller
/// passes the database's current policy revision; a newer one triggers a reload.
#[derive(Clone)]
pub struct Authorizer {
    inner: Arc<RwLock<Loaded>>,
}

impl Authorizer {
    pub async fn new(pool: Pool) -> AppResult<Self> {
        let revision = db::run(&pool, |c| Ok(store::revision(c)?)).await?;
        let model = DefaultModel::from_str(MODEL)
            .await
            .map_err(|e| AppError::Internal(format!("casbin model: {e}")))?;
        let enforcer = Enforcer::new(model, DieselAdapter::new(pool))
            .await
            .map_err(|e| AppError::Internal(format!("casbin enforcer: {e}")))?;
        Ok(Self {
            inner: Arc::new(RwLock::new(Loaded {
                enforcer,
                revision,
                permissions: Default::default(),
            })),
        })
    }

    /// Reloads when the database holds a newer revision than this process has seen.
    pub async fn refresh(&self, db_revision: i64) -> AppResult<()> {
        if self.inner.read().await.revision >= db_revision {
            return Ok(());
        }
        let mut loaded = self.inner.write().await;
        if loaded.revision >= db_revision {
            return Ok(());
        }
        loaded
            .enforcer
            .load_policy()
            .await
            .map_err(|e| AppError::Internal(format!("policy reload failed: {e}")))?;
        loaded.revision = db_revision;
        if let Ok(mut cache) = loaded.permissions.lock() {
            cache.clear();
        }
        tracing::debug!(revision = db_revision, "policy reloaded");
        Ok(())
    }

    pub async fn allows(
        &self,
        user_id: &str,
        org_id: &str,
        resource: &str,
        action: &str,
    ) -> AppResult<bool> {
        self.inner
            .read()
            .await
            .enforcer
            .enforce((user_id, org_id, resource, action))
            .map_err(|e| AppError::Internal(format!("policy check failed: {e}")))
    }

    /// Every (resource, action) the user may perform in the organization.
    pub async fn permissions(&self, user_id: &str, org_id: &str) -> AppResult<Granted> {
        let loaded = self.inner.read().await;
        let key = (user_id.to_string(), org_id.to_string());
        if let Some(hit) = loaded
            .permissions
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
        {
            return Ok(hit);
        }
        let mut out = Vec::new();
        for resource in RESOURCES {
            for action in ACTIONS {
                if loaded
                    .enforcer
                    .enforce((user_id, org_id, *resource, *action))
                    .map_err(|e| AppError::Internal(format!("policy check failed: {e}")))?
                {
                    out.push((resource.to_string(), action.to_string()));
                }
            }
        }
        let out = Arc::new(out);
        if let Ok(mut cache) = loaded.permissions.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, out.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod enforced_tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `can("resource", "action")`, `require(…)` and `has(…)` in the source, plus
    /// `access("resource")` (the record rule asks for `oversee`).
    fn checked_in_source() -> BTreeSet<(String, String)> {
        let mut found = BTreeSet::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    // Code only: tests and comments may name rights without checking them.
                    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                    let code: String = code
                        .lines()
                        .filter(|l| !l.trim_start().starts_with("//"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    scan(&code, &mut found);
                }
            }
        }
        found
    }

    fn literal(s: &str) -> Option<(&str, &str)> {
        let s = s.trim_start().strip_prefix('"')?;
        let end = s.find('"')?;
        let word = &s[..end];
        (!word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .then(|| (word, &s[end + 1..]))
    }

    fn scan(text: &str, found: &mut BTreeSet<(String, String)>) {
        for call in ["can(", "require(", "has("] {
            for (i, _) in text.match_indices(call) {
                let before = text[..i].chars().last().unwrap_or(' ');
                if before.is_alphanumeric() || before == '_' {
                    continue;
                }
                let Some((resource, rest)) = literal(&text[i + call.len()..]) else {
                    continue;
                };
                let Some(rest) = rest.trim_start().strip_prefix(',') else {
                    continue;
                };
                if let Some((action, _)) = literal(rest) {
                    found.insert((resource.to_string(), action.to_string()));
                }
            }
        }
        for call in ["access(", "record_access(&actor, "] {
            for (i, _) in text.match_indices(call) {
                if let Some((resource, _)) = literal(&text[i + call.len()..]) {
                    found.insert((resource.to_string(), "oversee".to_string()));
                }
            }
        }
    }

    #[test]
    fn the_enforced_rights_are_the_checked_ones() {
        let in_code = checked_in_source();
        let listed: BTreeSet<(String, String)> = ENFORCED
            .iter()
            .flat_map(|(r, actions, _)| actions.iter().map(|a| (r.to_string(), a.to_string())))
            .collect();
        // Checks whose resource is computed (a file's parent, a search's kind): the
        // pairs they reach, written out.
        let computed: BTreeSet<(String, String)> =
            [("interaction", "read"), ("interaction", "write")]
                .iter()
                .map(|(r, a)| (r.to_string(), a.to_string()))
                .collect();
        let unlisted: Vec<_> = in_code.difference(&listed).collect();
        assert!(
            unlisted.is_empty(),
            "checked in the code but not shown on the Permissions page: {unlisted:?}"
        );
        let unchecked: Vec<_> = listed
            .difference(&in_code)
            .filter(|p| !computed.contains(*p))
            .collect();
        assert!(
            unchecked.is_empty(),
            "shown on the Permissions page but checked nowhere: {unchecked:?}"
        );
        for (r, actions, _) in ENFORCED {
            assert!(RESOURCES.contains(r), "{r}");
            assert!(actions.iter().all(|a| ACTIONS.contains(a)), "{r}");
        }
    }
}
