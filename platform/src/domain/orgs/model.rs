//! Rows and forms of the organization tables.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{api_tokens, invitations, memberships, organizations, sessions, users};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = organizations)]
pub struct OrganizationRow {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub default_currency: String,
    pub timezone: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// An IANA zone name (`crate::locale`).
    pub time_zone: String,
    /// A locale code of `crate::locale::LOCALES`.
    pub locale: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = memberships)]
pub struct MembershipRow {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub role: String,
    pub is_active: bool,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub name: String,
    pub token_hash: String,
    pub token_prefix: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    /// JSON list of scopes (`["*"]`: everything the user may do).
    pub scopes: String,
    pub expires_at: Option<NaiveDateTime>,
    /// Requests per minute.
    pub rate_limit: i32,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub ip: String,
    pub user_agent: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// An organization's offer to a person who already has an account: they join when they
/// accept it, and until then the organization cannot touch the account.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Insertable)]
#[diesel(table_name = invitations)]
pub struct InvitationRow {
    pub id: String,
    pub organization_id: String,
    pub user_id: String,
    pub role: String,
    pub invited_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// An invitation with the names people read: whose organization, which account.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub row: InvitationRow,
    pub organization_name: String,
    pub email: String,
}

/// A user as seen inside one organization: the person plus their membership there.
#[derive(Debug, Clone)]
pub struct Member {
    pub user: UserRow,
    pub membership: MembershipRow,
}

/// The roles every organization has. Stored as their snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Manager,
    SalesRep,
    ServiceRep,
    Marketer,
    ReadOnly,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Manager,
        Role::SalesRep,
        Role::ServiceRep,
        Role::Marketer,
        Role::ReadOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::SalesRep => "sales_rep",
            Role::ServiceRep => "service_rep",
            Role::Marketer => "marketer",
            Role::ReadOnly => "read_only",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Manager => "Manager",
            Role::SalesRep => "Sales rep",
            Role::ServiceRep => "Service rep",
            Role::Marketer => "Marketer",
            Role::ReadOnly => "Read only",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
