//! Rules for organizations, members and tokens. Every change is audited in the
//! same transaction, and role changes keep the Casbin role binding in step.

use serde_json::json;

use super::model::*;
use super::store;
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::orgs::password::{
    hash_password, random_secret, sha256_hex, validate_new_password,
};
use crate::domain::policy;
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
    crate::db::transaction(conn, |c| {
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

/// How long an invitation stays open.
pub const INVITATION_DAYS: i64 = 14;

/// What adding a person did.
pub enum Added {
    /// A new account and its membership, with the one-time password when none was given.
    Member(Member, Option<String>),
    /// The account already exists: it was invited, and joins when the person accepts.
    Invited(Invitation),
}

/// Adds a person from the command line (the operator of the installation): an existing
/// account joins at once.
pub fn add_member(
    conn: &mut DbConn,
    ctx: &AuditContext,
    new: NewMember<'_>,
) -> AppResult<(Member, Option<String>)> {
    match add(conn, ctx, new, false)? {
        Added::Member(m, generated) => Ok((m, generated)),
        Added::Invited(_) => Err(AppError::Internal("an operator add invited".into())),
    }
}

/// Adds a person as an organization's admin: a new account is created (with a one-time
/// password when none is given); an account that already exists is only *invited*. An
/// admin of one organization must never gain a hold on a person who works elsewhere.
pub fn add_or_invite(
    conn: &mut DbConn,
    ctx: &AuditContext,
    new: NewMember<'_>,
) -> AppResult<Added> {
    add(conn, ctx, new, true)
}

fn add(
    conn: &mut DbConn,
    ctx: &AuditContext,
    new: NewMember<'_>,
    invite_existing: bool,
) -> AppResult<Added> {
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
    let generated = (existing.is_none() && new.password.is_none())
        .then(crate::domain::orgs::password::random_password);
    let password_hash = match (&existing, new.password.or(generated.as_deref())) {
        (None, Some(p)) => Some(hash_password(p)?),
        _ => None,
    };
    crate::db::transaction(conn, |c| {
        let at = now();
        let (user, created) = match store::find_user_by_email(c, &email)? {
            Some(u) if invite_existing => {
                if store::find_member(c, &ctx.org_id, &u.id)?.is_some() {
                    return Err(AppError::Validation(
                        "The user could not be added.".into(),
                        vec![FieldError::new(
                            "email",
                            "This person is already a member of the organization.",
                        )],
                    ));
                }
                // A second invitation replaces the first (a new role, a fresh expiry).
                store::delete_invitation_of(c, &ctx.org_id, &u.id)?;
                let row = InvitationRow {
                    id: new_id(),
                    organization_id: ctx.org_id.clone(),
                    user_id: u.id.clone(),
                    role: role.as_str().into(),
                    invited_by: ctx.actor_user_id.clone(),
                    created_at: at,
                    expires_at: at + chrono::Duration::days(INVITATION_DAYS),
                };
                store::insert_invitation(c, &row)?;
                audit::record(
                    c,
                    ctx,
                    "user.invite",
                    "user",
                    Some(&u.id),
                    json!({"email": u.email, "role": role.as_str()}),
                )?;
                let organization_name = store::find_org(c, &ctx.org_id)?
                    .map(|o| o.name)
                    .unwrap_or_default();
                return Ok(Added::Invited(Invitation {
                    row,
                    organization_name,
                    email: u.email,
                }));
            }
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
                    time_zone: crate::locale::DEFAULT_TIME_ZONE.into(),
                    locale: crate::locale::DEFAULT_LOCALE.into(),
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
        Ok(Added::Member(
            Member { user, membership },
            generated.clone(),
        ))
    })
}

/// The person's open invitations.
pub fn my_invitations(conn: &mut DbConn, user_id: &str) -> AppResult<Vec<Invitation>> {
    Ok(store::invitations_of_user(conn, user_id, now())?)
}

/// The organization's open invitations (for its admins).
pub fn org_invitations(conn: &mut DbConn, org_id: &str) -> AppResult<Vec<Invitation>> {
    Ok(store::invitations_of_org(conn, org_id, now())?)
}

/// The person accepts: they become a member with the invited role. Only the invited account
/// can accept; anyone else's attempt is "not found".
pub fn accept_invitation(
    conn: &mut DbConn,
    user_id: &str,
    user_email: &str,
    invitation_id: &str,
) -> AppResult<OrganizationRow> {
    crate::db::transaction(conn, |c| {
        let inv = store::find_invitation(c, invitation_id)?
            .filter(|i| i.user_id == user_id && i.expires_at > now())
            .ok_or(AppError::NotFound)?;
        let role = Role::parse(&inv.role).ok_or(AppError::NotFound)?;
        store::delete_invitation(c, &inv.id)?;
        if store::find_member(c, &inv.organization_id, user_id)?.is_some() {
            return Err(AppError::Conflict(
                "You are already a member of this organization.".into(),
            ));
        }
        let at = now();
        store::insert_membership(
            c,
            &MembershipRow {
                id: new_id(),
                organization_id: inv.organization_id.clone(),
                user_id: user_id.to_string(),
                role: role.as_str().into(),
                is_active: true,
                version: 1,
                created_at: at,
                updated_at: at,
            },
        )?;
        policy::store::bind_role(c, user_id, &inv.organization_id, Some(role))?;
        let ctx = AuditContext {
            actor_user_id: Some(user_id.to_string()),
            actor_label: user_email.to_string(),
            ..AuditContext::cli(&inv.organization_id)
        };
        audit::record(
            c,
            &ctx,
            "user.join",
            "user",
            Some(user_id),
            json!({"role": role.as_str(), "invitation": inv.id}),
        )?;
        store::find_org(c, &inv.organization_id)?.ok_or(AppError::NotFound)
    })
}

/// The person declines; the organization sees the invitation gone.
pub fn decline_invitation(conn: &mut DbConn, user_id: &str, invitation_id: &str) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        store::find_invitation(c, invitation_id)?
            .filter(|i| i.user_id == user_id)
            .ok_or(AppError::NotFound)?;
        store::delete_invitation(c, invitation_id)?;
        Ok(())
    })
}

/// An admin withdraws an invitation of their own organization.
pub fn cancel_invitation(
    conn: &mut DbConn,
    ctx: &AuditContext,
    invitation_id: &str,
) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        let inv = store::find_invitation(c, invitation_id)?
            .filter(|i| i.organization_id == ctx.org_id)
            .ok_or(AppError::NotFound)?;
        store::delete_invitation(c, &inv.id)?;
        audit::record(
            c,
            ctx,
            "user.invite_cancel",
            "user",
            Some(&inv.user_id),
            json!({"invitation": inv.id}),
        )?;
        Ok(())
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
    crate::db::transaction(conn, |c| {
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
                // why: the name belongs to the person, who may work for others too; only
                // an organization that is their only one may correct it.
                if store::belongs_elsewhere(c, user_id, &ctx.org_id)? {
                    return Err(AppError::Conflict(
                        "This person also belongs to another organization; only they can change their name.".into(),
                    ));
                }
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
            // why: the feed URL was issued for the rights of the old role.
            crate::domain::calendar::revoke_member_feeds(c, &ctx.org_id, user_id)?;
        }
        if !new_active && current.membership.is_active {
            // why: a deactivated member must lose console access now, not at session expiry;
            // only here, though: their sessions in other organizations are not ours to end.
            store::delete_user_sessions_in_org(c, user_id, &ctx.org_id)?;
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

/// Sets a new random password and returns it, to be shown to the admin once. Only for an
/// account that belongs to this organization alone: a person who works elsewhere too owns
/// their password, and another organization's admin must never be able to sign in as them.
pub fn reset_password(conn: &mut DbConn, ctx: &AuditContext, user_id: &str) -> AppResult<String> {
    store::find_member(conn, &ctx.org_id, user_id)?.ok_or(AppError::NotFound)?;
    if store::belongs_elsewhere(conn, user_id, &ctx.org_id)? {
        return Err(AppError::Conflict(
            "This person also belongs to another organization, so only they can change their password (under Password, once signed in).".into(),
        ));
    }
    let password = crate::domain::orgs::password::random_password();
    let hash = hash_password(&password)?;
    crate::db::transaction(conn, |c| {
        let member = store::find_member(c, &ctx.org_id, user_id)?.ok_or(AppError::NotFound)?;
        if store::belongs_elsewhere(c, user_id, &ctx.org_id)? {
            return Err(AppError::Conflict(
                "This person also belongs to another organization, so only they can change their password.".into(),
            ));
        }
        store::set_password(c, &member.user.id, &hash, now())?;
        store::delete_user_sessions(c, &member.user.id)?;
        crate::domain::calendar::revoke_member_feeds(c, &ctx.org_id, user_id)?;
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

/// The person changes their own password: the current one proves it is them. Their other
/// sessions (in every organization) end; the one they are using goes on.
pub fn change_own_password(
    conn: &mut DbConn,
    ctx: &AuditContext,
    current_session: Option<&str>,
    current: &str,
    new: &str,
) -> AppResult<()> {
    let user_id = ctx
        .actor_user_id
        .clone()
        .ok_or_else(|| AppError::Internal("no actor for a password change".into()))?;
    let user = store::find_user(conn, &user_id)?.ok_or(AppError::NotFound)?;
    let mut errors = Vec::new();
    if !crate::domain::orgs::password::verify_password(current, &user.password_hash) {
        errors.push(FieldError::new(
            "currentPassword",
            "This is not your current password.",
        ));
    }
    if let Some(m) = validate_new_password(new) {
        errors.push(FieldError::new("newPassword", m));
    }
    if !errors.is_empty() {
        return Err(AppError::Validation(
            "The password was not changed.".into(),
            errors,
        ));
    }
    let hash = hash_password(new)?;
    crate::db::transaction(conn, |c| {
        store::set_password(c, &user_id, &hash, now())?;
        store::delete_user_sessions_except(c, &user_id, current_session)?;
        audit::record(
            c,
            ctx,
            "user.change_password",
            "user",
            Some(&user_id),
            json!({}),
        )?;
        Ok(())
    })
}

/// The person's own time zone and locale (how the console shows them times and figures).
/// Both are checked against the zone database and the offered locales.
pub fn set_own_preferences(
    conn: &mut DbConn,
    ctx: &AuditContext,
    time_zone: &str,
    locale: &str,
) -> AppResult<crate::locale::Local> {
    let user_id = ctx
        .actor_user_id
        .clone()
        .ok_or_else(|| AppError::Internal("no actor for preferences".into()))?;
    let mut errors = Vec::new();
    let tz = crate::locale::time_zone(time_zone.trim());
    if tz.is_none() {
        errors.push(FieldError::new(
            "timeZone",
            "Choose a time zone from the list (such as Europe/Berlin).",
        ));
    }
    let loc = crate::locale::locale(locale.trim());
    if loc.is_none() {
        errors.push(FieldError::new("locale", "Choose a format from the list."));
    }
    let (Some(tz), Some(loc)) = (tz, loc) else {
        return Err(AppError::Validation(
            "The preferences were not saved.".into(),
            errors,
        ));
    };
    crate::db::transaction(conn, |c| {
        let before = store::find_user(c, &user_id)?.ok_or(AppError::NotFound)?;
        store::set_user_preferences(c, &user_id, tz.name(), loc.code, now())?;
        audit::record(
            c,
            ctx,
            "user.preferences",
            "user",
            Some(&user_id),
            json!({"timeZone": [before.time_zone, tz.name()], "locale": [before.locale, loc.code]}),
        )?;
        Ok(crate::locale::Local { tz, locale: loc })
    })
}

pub fn get_member(conn: &mut DbConn, org_id: &str, user_id: &str) -> AppResult<Member> {
    store::find_member(conn, org_id, user_id)?.ok_or(AppError::NotFound)
}

/// Issues a token for the user in the organization, with every right of the user and no
/// expiry. The secret is returned once.
pub fn create_token(
    conn: &mut DbConn,
    ctx: &AuditContext,
    user_id: &str,
    name: &str,
) -> AppResult<(ApiTokenRow, String)> {
    create_token_with(
        conn,
        ctx,
        user_id,
        name,
        super::scopes::TokenOptions::default(),
    )
}

/// Issues a token narrowed to `options.scopes`, expiring and limited as asked.
pub fn create_token_with(
    conn: &mut DbConn,
    ctx: &AuditContext,
    user_id: &str,
    name: &str,
    options: super::scopes::TokenOptions,
) -> AppResult<(ApiTokenRow, String)> {
    super::scopes::check(&options, now())?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(AppError::invalid(
            "name",
            "Name the token (1 to 80 characters).",
        ));
    }
    let secret = format!("rpt_{}", random_secret());
    crate::db::transaction(conn, |c| {
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
            scopes: serde_json::to_string(&options.scopes).unwrap_or_default(),
            expires_at: options.expires_at,
            rate_limit: options.rate_limit,
        };
        store::insert_token(c, &row)?;
        audit::record(
            c,
            ctx,
            "token.create",
            "token",
            Some(&row.id),
            json!({"name": row.name, "scopes": options.scopes, "expiresAt": options.expires_at.map(|t| t.and_utc().to_rfc3339())}),
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
    crate::db::transaction(conn, |c| {
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
    // why: a right nothing checks would be a promise the product does not keep; taking
    // one away stays possible, to clean up grants made before the list existed.
    if errors.is_empty() && allowed && !policy::is_enforced(resource, action) {
        errors.push(FieldError::new(
            "action",
            format!("Nothing in Rapport checks “{action}” on {resource} yet, so granting it would change nothing."),
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
    crate::db::transaction(conn, |c| {
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
