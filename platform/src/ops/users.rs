//! The organization's members and invitations: reading needs `user:read`; adding,
//! changing, resetting passwords and withdrawing invitations need `user:admin`. An admin
//! acts inside their organization only: every call is bounded by the scope's organization.

use std::collections::HashSet;

use serde::Deserialize;

use super::Scope;
use crate::domain::orgs::service::{self, Added, MemberChanges};
use crate::domain::orgs::store::{self, MemberFilter};
use crate::domain::orgs::{Invitation, Member};
use crate::error::AppResult;

/// Someone to add: a new account, or an invitation when the e-mail already has one.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewMemberInput {
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub role: String,
    /// For a new account; left out, a one-time password is generated and returned once.
    pub password: Option<String>,
}

/// The members matching `filter`, and which of them also belong to another organization
/// (their account is theirs: only they change its password and name).
pub async fn members(
    scope: &Scope,
    filter: MemberFilter,
) -> AppResult<(Vec<Member>, HashSet<String>)> {
    scope.require("user", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            Ok((
                store::list_members(c, &org, &filter)?,
                store::shared_accounts(c, &org)?,
            ))
        })
        .await
}

/// Members who also belong to another organization.
pub async fn shared_accounts(scope: &Scope) -> AppResult<HashSet<String>> {
    scope.require("user", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| Ok(store::shared_accounts(c, &org)?))
        .await
}

pub async fn member(scope: &Scope, user_id: String) -> AppResult<Member> {
    scope.require("user", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| service::get_member(c, &org, &user_id))
        .await
}

pub async fn add(scope: &Scope, input: NewMemberInput) -> AppResult<Added> {
    scope.require("user", "admin")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            service::add_or_invite(
                c,
                &ctx,
                service::NewMember {
                    email: &input.email,
                    name: &input.name,
                    password: input.password.as_deref().filter(|p| !p.is_empty()),
                    role: &input.role,
                },
            )
        })
        .await
}

/// Changes a member's name, role or activity; `expected` guards against a concurrent edit.
pub async fn update(
    scope: &Scope,
    user_id: String,
    expected: Option<i64>,
    changes: MemberChanges,
) -> AppResult<Member> {
    scope.require("user", "admin")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| service::update_member(c, &ctx, &user_id, expected, changes))
        .await
}

/// Resets a member's password: their sessions end; the one-time password is answered once.
pub async fn reset_password(scope: &Scope, user_id: String) -> AppResult<(Member, String)> {
    scope.require("user", "admin")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let password = service::reset_password(c, &ctx, &user_id)?;
            Ok((service::get_member(c, &ctx.org_id, &user_id)?, password))
        })
        .await
}

/// The organization's open invitations.
pub async fn invitations(scope: &Scope) -> AppResult<Vec<Invitation>> {
    scope.require("user", "admin")?;
    let org = scope.org_id.clone();
    scope.read(move |c| service::org_invitations(c, &org)).await
}

pub async fn cancel_invitation(scope: &Scope, id: String) -> AppResult<()> {
    scope.require("user", "admin")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| service::cancel_invitation(c, &ctx, &id))
        .await
}
