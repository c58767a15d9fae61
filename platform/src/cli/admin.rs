//! `rapport org create`, `user create`, `token create`: setting up an organization from
//! the command line.

use crate::config::Config;
use crate::domain::audit::AuditContext;
use crate::domain::orgs::{service, store};
use crate::error::AppError;

use super::{find_org, open, with_conn};

pub fn create_org(config: &Config, name: &str) -> anyhow::Result<()> {
    let pool = open(config)?;
    let org = with_conn(&pool, |c| service::create_org(c, name))?;
    println!("{}", org.slug);
    Ok(())
}

/// The account and its role in the organization, for `rapport user create`.
pub struct NewUser {
    pub org: String,
    pub email: String,
    pub password: String,
    pub role: String,
    pub name: String,
}

pub fn create_user(config: &Config, u: NewUser) -> anyhow::Result<()> {
    let pool = open(config)?;
    let org = find_org(&pool, &u.org)?;
    let ctx = AuditContext::cli(&org.id);
    let (member, _) = with_conn(&pool, |c| {
        service::add_member(
            c,
            &ctx,
            service::NewMember {
                email: &u.email,
                name: &u.name,
                password: Some(&u.password),
                role: &u.role,
            },
        )
    })?;
    println!(
        "{} is {} in {}",
        member.user.email, member.membership.role, org.slug
    );
    Ok(())
}

/// Creates an API token for a member; prints the secret alone on the last line.
pub fn create_token(config: &Config, org: &str, email: &str, name: &str) -> anyhow::Result<()> {
    let pool = open(config)?;
    let org = find_org(&pool, org)?;
    let ctx = AuditContext::cli(&org.id);
    let email = email.trim().to_lowercase();
    let (_, secret) = with_conn(&pool, |c| {
        let user = store::find_user_by_email(c, &email)?.ok_or_else(|| {
            AppError::invalid(
                "email",
                "No user with this e-mail is a member of the organization.",
            )
        })?;
        service::create_token(c, &ctx, &user.id, name).map_err(|e| match e {
            AppError::NotFound => AppError::invalid(
                "email",
                "This user is not an active member of the organization.",
            ),
            other => other,
        })
    })?;
    println!("{secret}");
    Ok(())
}
