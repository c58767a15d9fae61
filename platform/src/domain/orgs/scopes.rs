//! What an API token may do: scopes narrow the rights of the user it belongs to (a token
//! never exceeds its user, whatever its scopes say), an optional expiry, and a rate limit.

use chrono::NaiveDateTime;

use crate::error::{AppError, FieldError};

/// The scopes a token may carry: (scope, what it allows).
pub const SCOPES: &[(&str, &str)] = &[
    ("*", "Everything its user may do"),
    ("read", "Read everything its user may read"),
    ("clients:read", "Read clients, tags and custom fields"),
    (
        "clients:write",
        "Create, change, tag, export and delete clients",
    ),
    (
        "deals:read",
        "Read deals, pipelines, quotes, contracts and reports",
    ),
    (
        "deals:write",
        "Create, move, change and delete deals, quotes and contracts",
    ),
    (
        "interactions:read",
        "Read calls, meetings, notes, e-mails and tasks",
    ),
    (
        "interactions:write",
        "Log and change calls, meetings, notes and tasks",
    ),
    ("mail:read", "Read e-mail, templates and bulk sends"),
    (
        "mail:send",
        "Write e-mail, edit templates and run bulk sends",
    ),
    (
        "webhooks:manage",
        "Manage webhook subscriptions and replay deliveries",
    ),
    ("workflows:manage", "Build, change and switch workflows"),
    (
        "admin",
        "Members, roles, permissions, the audit log, plugins and custom fields",
    ),
];

/// Requests per minute a token gets unless it says otherwise, and the most it may ask for.
pub const DEFAULT_RATE: i32 = 600;
pub const MAX_RATE: i32 = 10_000;

/// The area a policy resource belongs to, as scopes name it.
fn area(resource: &str) -> &'static str {
    match resource {
        "client" | "tag" | "sensitive_field" | "segment" => "clients",
        "opportunity" | "pipeline" | "report" => "deals",
        "interaction" => "interactions",
        "message" | "send" => "mail",
        "webhook" => "webhooks",
        "workflow" => "workflows",
        _ => "admin",
    }
}

/// Whether a token with `scopes` may use the user's right `action` on `resource`.
pub fn allows(scopes: &[String], resource: &str, action: &str) -> bool {
    let area = area(resource);
    scopes.iter().any(|s| match s.as_str() {
        "*" => true,
        "read" => action == "read",
        "admin" => area == "admin",
        "webhooks:manage" => area == "webhooks",
        "workflows:manage" => area == "workflows",
        "mail:send" => area == "mail",
        // Custom field definitions are read wherever clients are.
        "clients:read" => action == "read" && (area == "clients" || resource == "custom_field"),
        s => match s.split_once(':') {
            Some((a, "read")) => a == area && action == "read",
            Some((a, "write")) => a == area,
            _ => false,
        },
    })
}

/// A token's options as asked for, checked.
#[derive(Debug, Clone)]
pub struct TokenOptions {
    pub scopes: Vec<String>,
    pub expires_at: Option<NaiveDateTime>,
    pub rate_limit: i32,
}

impl Default for TokenOptions {
    fn default() -> Self {
        Self {
            scopes: vec!["*".into()],
            expires_at: None,
            rate_limit: DEFAULT_RATE,
        }
    }
}

pub fn check(o: &TokenOptions, at: NaiveDateTime) -> Result<(), AppError> {
    let mut errors = Vec::new();
    if o.scopes.is_empty() {
        errors.push(FieldError::new(
            "scopes",
            "Give the token at least one scope.",
        ));
    }
    for s in &o.scopes {
        if !SCOPES.iter().any(|(k, _)| k == s) {
            errors.push(FieldError::new("scopes", format!("{s:?} is not a scope.")));
        }
    }
    if o.expires_at.is_some_and(|e| e <= at) {
        errors.push(FieldError::new("expiresAt", "Choose a time in the future."));
    }
    if !(1..=MAX_RATE).contains(&o.rate_limit) {
        errors.push(FieldError::new(
            "rateLimit",
            format!("Allow 1 to {MAX_RATE} requests a minute."),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(
            "The token was not made.".into(),
            errors,
        ))
    }
}

pub fn parse(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_else(|_| vec!["*".into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn scopes_narrow_rights_by_area_and_action() {
        assert!(allows(&s(&["*"]), "policy", "write"));
        assert!(allows(&s(&["read"]), "opportunity", "read"));
        assert!(!allows(&s(&["read"]), "opportunity", "write"));
        assert!(allows(&s(&["clients:write"]), "client", "delete"));
        assert!(allows(&s(&["clients:write"]), "tag", "write"));
        assert!(!allows(&s(&["clients:write"]), "opportunity", "read"));
        assert!(allows(&s(&["clients:read"]), "custom_field", "read"));
        assert!(!allows(&s(&["clients:read"]), "client", "write"));
        assert!(allows(
            &s(&["deals:read", "webhooks:manage"]),
            "webhook",
            "admin"
        ));
        assert!(!allows(&s(&["deals:write"]), "workflow", "read"));
        assert!(allows(&s(&["admin"]), "user", "admin"));
        assert!(!allows(&s(&["admin"]), "client", "read"));
    }
}
