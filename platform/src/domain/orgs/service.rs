//! Rules for organizations, members and tokens. Every change is audited in the
//! same transaction, and role changes keep the Casbin role binding in step.

use diesel::Connection;
use serde_json::json;

use super::model::*;
use super::store;
use crate::auth::password::{hash_password, random_secret, sha256_hex, validate_new_password};
use crate::auth::policy;
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::error::{AppError, AppResult, FieldError};

pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for ch in name.trim().to_lowercase().chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug
        .trim_end_matches('-')
        .chars()
        .take(48)
        .collect::<String>();
    if slug.is_empty() {
        "org".into()
    } else {
        slug
    }
}

/// Creates an organization with a unique slug and its default policy.
pub fn create_org(conn: &mut DbConn, name: &str) -> AppResult<OrganizationRow> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(AppError::invalid(
            "name",
            "Give the organization a name of 1 to 120 characters.",
        ));
    }
    conn.transaction(|c| {
        let base = slugify(name);
        let mut slug = base.clone();
        let mut n = 2;
        while store::slug_taken(c, &slug)? {
            slug = format!("{base}-{n}");
            n += 1;
        }
        let at = now();
        let org = OrganizationRow {
            id: new_id(),
            slug,
            name: name.to_string(),
            default_currency: "USD".into(),
            timezone: "UTC".into(),
            created_at: at,
            updated_at: at,
        };
        store::insert_org(c, &org)?;
        policy::store::seed_org(c, &org.id)?;
        crate::domain::pipeline::service::ensure_defaults(c, &org.id)?;
        audit::record(
            c,
            &AuditContext::cli(&org.id),
            "organization.create",
            "organization",
            Some(&org.id),
            json!({"name": org.name, "slug": org.slug}),
        )?;
        Ok(org)
    })
}

pub fn find_org(conn: &mut DbConn, reference: &str) -> AppResult<OrganizationRow> {
    store::find_org_by_ref(conn, reference)?.ok_or(AppError::NotFound)
}

pub struct NewMember<'a> {
    pub email: &'a str,
    pub name: &'a str,
    /// Needed only when the person has no account yet; an existing account keeps its password.
    pub password: Option<&'a str>,
    pub role: &'a str,
}

pub fn validate_email(email: &str) -> Option<&'static str> {
    let at = email.find('@');
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && at.is_some_and(|i| {
            i > 0
                && email[i + 1..].contains('.')
                && !email[i + 1..].starts_with('.')
                && !email.ends_with('.')
        });
    (!ok).then_some("Enter a valid e-mail address.")
}

/// Adds a person to the organization, creating their account if needed. When a new
/// account gets no password, a one-time password is generated and returned.
pub fn add_member(
    conn: &mut DbConn,
    ctx: &AuditContext,
    new: NewMember<'_>,
) -> AppResult<(Member, Option<String>)> {
    let email = new.email.trim().to_lowercase();
    let name = new.name.trim();
    let mut errors = Vec::new();
    if let Some(m) = validate_email(&email) {
        errors.push(FieldError::new("email", m));
    }
    if name.chars().count() > 120 {
        errors.push(FieldError::new("name", "Use at most 120 characters."));
    }
    let role = Role::parse(new.role);
    if role.is_none() {
        errors.push(FieldError::new(
            "role",
            format!("Choose one of: {}.", Role::ALL.map(Role::as_str).join(", ")),
        ));
    }
    if let Some(p) = new.password {
        if let Some(m) = validate_new_password(p) {
            errors.push(FieldError::new("password", m));
        }
    }
    let (Some(role), true) = (role, errors.is_empty()) else {
        return Err(AppError::Validation(
            "The user could not be added.".into(),
            errors,
        ));
    };
    let existing = store::find_user_by_email(conn, &email)?;
    let generated =
        (existing.is_none() && new.password.is_none()).then(crate::auth::password::random_password);
    let password_hash = match (&existing, new.password.or(generated.as_deref())) {
        (None, Some(p)) => Some(hash_password(p)?),
        _ => None,
    };
    conn.transaction(|c| {
        let at = now();
        let (user, created) = match store::find_user_by_email(c, &email)? {
            Some(u) => (u, false),
            None => {
                let Some(hash) = password_hash.clone() else {
                    return Err(AppError::Conflict(
                        "The account changed meanwhile; try again.".into(),
                    ));
                };
                let u = UserRow {
                    id: new_id(),
                    email: email.clone(),
                    name: if name.is_empty() {
                        email.clone()
                    } else {
                        name.to_string()
                    },
                    password_hash: hash,
                    created_at: at,
                    updated_at: at,
                };
                store::insert_user(c, &u)?;
                (u, true)
            }
        };
        if store::find_member(c, &ctx.org_id, &user.id)?.is_some() {
            return Err(AppError::Validation(
                "The user could not be added.".into(),
                vec![FieldError::new(
                    "email",
                    "This person is already a member of the organization.",
                )],
            ));
        }
        let membership = MembershipRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            user_id: user.id.clone(),
            role: role.as_str().into(),
            is_active: true,
            version: 1,
            created_at: at,
            updated_at: at,
        };
        store::insert_membership(c, &membership)?;
        policy::store::bind_role(c, &user.id, &ctx.org_id, Some(role))?;
        audit::record(
            c,
            ctx,
            "user.create",
            "user",
            Some(&user.id),
            json!({"email": user.email, "role": role.as_str(), "accountCreated": created}),
        )?;
        Ok((Member { user, membership }, generated.clone()))
    })
}

pub struct MemberChanges {
    pub name: Option<String>,
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

/// Applies changes if `expected_version` (when given) still matches.
pub fn update_member(
    conn: &mut DbConn,
    ctx: &AuditContext,
    user_id: &str,
    expected_version: Option<i64>,
    changes: MemberChanges,
) -> AppResult<Member> {
    let mut errors = Vec::new();
    let role = match &changes.role {
        Some(r) => match Role::parse(r) {
            Some(role) => Some(role),
            None => {
                errors.push(FieldError::new("role", "Unknown role."));
                None
            }
        },
        None => None,
    };
    if let Some(n) = &changes.name {
        if n.trim().is_empty() || n.chars().count() > 120 {
            errors.push(FieldError::new(
                "name",
                "Give a name of 1 to 120 characters.",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(
            "The user could not be updated.".into(),
            errors,
        ));
    }
    conn.transaction(|c| {
        let current = store::find_member(c, &ctx.org_id, user_id)?.ok_or(AppError::NotFound)?;
        let version = current.membership.version;
        if expected_version.is_some_and(|v| v != version) {
            return Err(AppError::Stale(
                "This user was changed by someone else; reload and try again.".into(),
            ));
        }
        let new_role = role.map_or(current.membership.role.clone(), |r| r.as_str().to_string());
        let new_active = changes.is_active.unwrap_or(current.membership.is_active);
        let was_admin =
            current.membership.role == Role::Admin.as_str() && current.membership.is_active;
        let stays_admin = new_role == Role::Admin.as_str() && new_active;
        if was_admin && !stays_admin && store::count_active_admins(c, &ctx.org_id)? <= 1 {
            return Err(AppError::Conflict(
                "The organization must keep at least one active admin.".into(),
            ));
        }
        let at = now();
        let mut diff = serde_json::Map::new();
        if let Some(name) = changes.name.as_deref().map(str::trim) {
            if name != current.user.name {
                store::set_user_name(c, user_id, name, at)?;
                diff.insert("name".into(), json!([current.user.name, name]));
            }
        }
        if new_role != current.membership.role {
            diff.insert("role".into(), json!([current.membership.role, new_role]));
        }
        if new_active != current.membership.is_active {
            diff.insert(
                "isActive".into(),
                json!([current.membership.is_active, new_active]),
            );
        }
        if diff.is_empty() {
            return Ok(current);
        }
        if !store::update_membership(
            c,
            &current.membership.id,
            version,
            &new_role,
            new_active,
            at,
        )? {
            return Err(AppError::Stale(
                "This user was changed by someone else; reload and try again.".into(),
            ));
        }
        if new_role != current.membership.role || new_active != current.membership.is_active {
            let bound = if new_active {
                Role::parse(&new_role)
            } else {
                None
            };
            policy::store::bind_role(c, user_id, &ctx.org_id, bound)?;
        }
        if !new_active && current.membership.is_active {
            // why: a deactivated member must lose console access now, not at session expiry.
            store::delete_user_sessions(c, user_id)?;
        }
        audit::record(
            c,
            ctx,
            "user.update",
            "user",
            Some(user_id),
            serde_json::Value::Object(diff),
        )?;
        store::find_member(c, &ctx.org_id, user_id)?.ok_or(AppError::NotFound)
    })
}

/// Sets a new random password and returns it, to be shown to the admin once.
pub fn reset_password(conn: &mut DbConn, ctx: &AuditContext, user_id: &str) -> AppResult<String> {
    let password = crate::auth::password::random_password();
    let hash = hash_password(&password)?;
    conn.transaction(|c| {
        let member = store::find_member(c, &ctx.org_id, user_id)?.ok_or(AppError::NotFound)?;
        store::set_password(c, &member.user.id, &hash, now())?;
        store::delete_user_sessions(c, &member.user.id)?;
        audit::record(
            c,
            ctx,
            "user.reset_password",
            "user",
            Some(user_id),
            json!({}),
        )?;
        Ok(password)
    })
}

pub fn get_member(conn: &mut DbConn, org_id: &str, user_id: &str) -> AppResult<Member> {
    store::find_member(conn, org_id, user_id)?.ok_or(AppError::NotFound)
}

/// Issues a token for the user in the organization. The secret is returned once.
pub fn create_token(
    conn: &mut DbConn,
    ctx: &AuditContext,
    user_id: &str,
    name: &str,
) -> AppResult<(ApiTokenRow, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(AppError::invalid(
            "name",
            "Name the token (1 to 80 characters).",
        ));
    }
    let secret = format!("rpt_{}", random_secret());
    conn.transaction(|c| {
        store::find_member(c, &ctx.org_id, user_id)?
            .filter(|m| m.membership.is_active)
            .ok_or(AppError::NotFound)?;
        let row = ApiTokenRow {
            id: new_id(),
            organization_id: ctx.org_id.clone(),
            user_id: user_id.to_string(),
            name: name.to_string(),
            token_hash: sha256_hex(&secret),
            token_prefix: secret.chars().take(10).collect(),
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        store::insert_token(c, &row)?;
        audit::record(
            c,
            ctx,
            "token.create",
            "token",
            Some(&row.id),
            json!({"name": row.name}),
        )?;
        Ok((row, secret))
    })
}

pub fn revoke_token(
    conn: &mut DbConn,
    ctx: &AuditContext,
    user_id: &str,
    token_id: &str,
) -> AppResult<()> {
    conn.transaction(|c| {
        if !store::revoke_token(c, &ctx.org_id, user_id, token_id, now())? {
            return Err(AppError::NotFound);
        }
        audit::record(c, ctx, "token.revoke", "token", Some(token_id), json!({}))?;
        Ok(())
    })
}

/// Moves the session to another organization the user is an active member of.
pub fn switch_org(
    conn: &mut DbConn,
    session_id: &str,
    user_id: &str,
    org_id: &str,
) -> AppResult<OrganizationRow> {
    store::find_member(conn, org_id, user_id)?
        .filter(|m| m.membership.is_active)
        .ok_or(AppError::NotFound)?;
    let org = store::find_org(conn, org_id)?.ok_or(AppError::NotFound)?;
    store::set_session_org(conn, session_id, &org.id)?;
    Ok(org)
}

/// Grants or revokes one (role, resource, action) right in the organization.
pub fn set_grant(
    conn: &mut DbConn,
    ctx: &AuditContext,
    role: &str,
    resource: &str,
    action: &str,
    allowed: bool,
) -> AppResult<bool> {
    let mut errors = Vec::new();
    let parsed = Role::parse(role);
    if parsed.is_none() {
        errors.push(FieldError::new("role", "Unknown role."));
    }
    if !policy::RESOURCES.contains(&resource) {
        errors.push(FieldError::new(
            "resource",
            format!(
                "Unknown resource; one of: {}.",
                policy::RESOURCES.join(", ")
            ),
        ));
    }
    if !policy::ACTIONS.contains(&action) {
        errors.push(FieldError::new(
            "action",
            format!("Unknown action; one of: {}.", policy::ACTIONS.join(", ")),
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(
            "The permission could not be changed.".into(),
            errors,
        ));
    }
    if parsed == Some(Role::Admin) {
        return Err(AppError::Conflict(
            "The admin role always holds every right, so nobody can lock the organization out."
                .into(),
        ));
    }
    let rule = [
        role.to_string(),
        ctx.org_id.clone(),
        resource.to_string(),
        action.to_string(),
    ];
    conn.transaction(|c| {
        let changed = if allowed {
            policy::store::insert(c, "p", &rule)?
        } else {
            policy::store::delete(c, "p", &rule)?
        };
        if changed {
            policy::store::bump_revision(c)?;
            audit::record(
                c,
                ctx,
                if allowed {
                    "policy.grant"
                } else {
                    "policy.revoke"
                },
                "policy",
                Some(&format!("{role}:{resource}:{action}")),
                json!({"role": role, "resource": resource, "action": action, "allowed": allowed}),
            )?;
        }
        Ok(changed)
    })
}
