//! Queries over organizations, users, memberships, sessions, tokens and sign-in failures.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::QueryResult;

use super::model::*;
use crate::db::schema::{
    api_tokens, invitations, login_failures, memberships, organizations, sessions, users,
};
use crate::db::{lower, DbConn};

pub fn insert_org(conn: &mut DbConn, row: &OrganizationRow) -> QueryResult<()> {
    diesel::insert_into(organizations::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find_org(conn: &mut DbConn, id: &str) -> QueryResult<Option<OrganizationRow>> {
    organizations::table
        .find(id)
        .select(OrganizationRow::as_select())
        .first(conn)
        .optional()
}

/// Accepts either the slug or the id, as the CLI's `--org` does.
pub fn find_org_by_ref(conn: &mut DbConn, reference: &str) -> QueryResult<Option<OrganizationRow>> {
    organizations::table
        .filter(
            organizations::slug
                .eq(reference)
                .or(organizations::id.eq(reference)),
        )
        .select(OrganizationRow::as_select())
        .first(conn)
        .optional()
}

pub fn slug_taken(conn: &mut DbConn, slug: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        organizations::table.filter(organizations::slug.eq(slug)),
    ))
    .get_result(conn)
}

pub fn insert_user(conn: &mut DbConn, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find_user_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn set_password(
    conn: &mut DbConn,
    user_id: &str,
    hash: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(at)))
        .execute(conn)
        .map(drop)
}

pub fn set_user_name(
    conn: &mut DbConn,
    user_id: &str,
    name: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set((users::name.eq(name), users::updated_at.eq(at)))
        .execute(conn)
        .map(drop)
}

pub fn set_user_preferences(
    conn: &mut DbConn,
    user_id: &str,
    time_zone: &str,
    locale: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::time_zone.eq(time_zone),
            users::locale.eq(locale),
            users::updated_at.eq(at),
        ))
        .execute(conn)
        .map(drop)
}

pub fn insert_membership(conn: &mut DbConn, row: &MembershipRow) -> QueryResult<()> {
    diesel::insert_into(memberships::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// A member of `org_id`; another organization's user is simply not found.
pub fn find_member(conn: &mut DbConn, org_id: &str, user_id: &str) -> QueryResult<Option<Member>> {
    memberships::table
        .inner_join(users::table)
        .filter(memberships::organization_id.eq(org_id))
        .filter(memberships::user_id.eq(user_id))
        .select((UserRow::as_select(), MembershipRow::as_select()))
        .first::<(UserRow, MembershipRow)>(conn)
        .optional()
        .map(|o| o.map(|(user, membership)| Member { user, membership }))
}

#[derive(Debug, Default, Clone)]
pub struct MemberFilter {
    pub role: Option<String>,
    pub is_active: Option<bool>,
    pub q: Option<String>,
    /// Membership id to continue after (ids are time-ordered, so the order is stable).
    pub after: Option<String>,
    pub limit: i64,
}

pub fn list_members(conn: &mut DbConn, org_id: &str, f: &MemberFilter) -> QueryResult<Vec<Member>> {
    let mut query = memberships::table
        .inner_join(users::table)
        .filter(memberships::organization_id.eq(org_id))
        .select((UserRow::as_select(), MembershipRow::as_select()))
        .order(memberships::id.asc())
        .limit(f.limit)
        .into_boxed();
    if let Some(role) = &f.role {
        query = query.filter(memberships::role.eq(role.clone()));
    }
    if let Some(active) = f.is_active {
        query = query.filter(memberships::is_active.eq(active));
    }
    if let Some(q) = &f.q {
        let pattern = format!("%{}%", escape_like(&q.to_lowercase()));
        query = query.filter(
            lower(users::email)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(users::name).like(pattern).escape('\\')),
        );
    }
    if let Some(after) = &f.after {
        query = query.filter(memberships::id.gt(after.clone()));
    }
    Ok(query
        .load::<(UserRow, MembershipRow)>(conn)?
        .into_iter()
        .map(|(user, membership)| Member { user, membership })
        .collect())
}

pub fn count_active_admins(conn: &mut DbConn, org_id: &str) -> QueryResult<i64> {
    memberships::table
        .filter(memberships::organization_id.eq(org_id))
        .filter(memberships::role.eq(Role::Admin.as_str()))
        .filter(memberships::is_active.eq(true))
        .count()
        .get_result(conn)
}

/// Compare-and-set on the membership's version; returns false when it was stale.
pub fn update_membership(
    conn: &mut DbConn,
    membership_id: &str,
    expected_version: i64,
    role: &str,
    is_active: bool,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        memberships::table
            .filter(memberships::id.eq(membership_id))
            .filter(memberships::version.eq(expected_version)),
    )
    .set((
        memberships::role.eq(role),
        memberships::is_active.eq(is_active),
        memberships::version.eq(expected_version + 1),
        memberships::updated_at.eq(at),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// The organizations a user may act in (active memberships), by name.
pub fn orgs_of_user(
    conn: &mut DbConn,
    user_id: &str,
) -> QueryResult<Vec<(OrganizationRow, String)>> {
    memberships::table
        .inner_join(organizations::table)
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::is_active.eq(true))
        .order(organizations::name.asc())
        .select((OrganizationRow::as_select(), memberships::role))
        .load(conn)
}

pub fn insert_session(conn: &mut DbConn, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find_session(conn: &mut DbConn, id: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()
}

pub fn touch_session(conn: &mut DbConn, id: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_seen_at.eq(at))
        .execute(conn)
        .map(drop)
}

pub fn set_session_org(conn: &mut DbConn, id: &str, org_id: &str) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::organization_id.eq(org_id))
        .execute(conn)
        .map(drop)
}

pub fn delete_session(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.find(id))
        .execute(conn)
        .map(drop)
}

pub fn delete_user_sessions(conn: &mut DbConn, user_id: &str) -> QueryResult<()> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id)))
        .execute(conn)
        .map(drop)
}

pub fn find_user(conn: &mut DbConn, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::id.eq(id))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// Ends every session of the person but `keep` (the one changing the password).
pub fn delete_user_sessions_except(
    conn: &mut DbConn,
    user_id: &str,
    keep: Option<&str>,
) -> QueryResult<()> {
    diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::id.ne(keep.unwrap_or_default())),
    )
    .execute(conn)
    .map(drop)
}

/// Signs the person out of one organization only: their sessions there end, those in
/// other organizations they belong to go on.
pub fn delete_user_sessions_in_org(
    conn: &mut DbConn,
    user_id: &str,
    org_id: &str,
) -> QueryResult<()> {
    diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::organization_id.eq(org_id)),
    )
    .execute(conn)
    .map(drop)
}

/// Whether the account is also a member (active or not) of another organization, or
/// invited to one: then no single organization owns its password or profile.
pub fn belongs_elsewhere(conn: &mut DbConn, user_id: &str, org_id: &str) -> QueryResult<bool> {
    let memberships: i64 = memberships::table
        .filter(memberships::user_id.eq(user_id))
        .filter(memberships::organization_id.ne(org_id))
        .count()
        .get_result(conn)?;
    Ok(memberships > 0)
}

/// The organization's members whose account also belongs to another organization.
pub fn shared_accounts(
    conn: &mut DbConn,
    org_id: &str,
) -> QueryResult<std::collections::HashSet<String>> {
    let (mine, others) = diesel::alias!(memberships as mine, memberships as others);
    Ok(mine
        .inner_join(
            others.on(others
                .field(memberships::user_id)
                .eq(mine.field(memberships::user_id))),
        )
        .filter(mine.field(memberships::organization_id).eq(org_id))
        .filter(others.field(memberships::organization_id).ne(org_id))
        .select(mine.field(memberships::user_id))
        .distinct()
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

pub fn insert_invitation(conn: &mut DbConn, row: &InvitationRow) -> QueryResult<()> {
    diesel::insert_into(invitations::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// Invitations with their organization's name and the invited account's e-mail.
fn load_invitations(conn: &mut DbConn, rows: Vec<InvitationRow>) -> QueryResult<Vec<Invitation>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let organization_name = organizations::table
            .filter(organizations::id.eq(&row.organization_id))
            .select(organizations::name)
            .first::<String>(conn)?;
        let email = users::table
            .filter(users::id.eq(&row.user_id))
            .select(users::email)
            .first::<String>(conn)?;
        out.push(Invitation {
            row,
            organization_name,
            email,
        });
    }
    Ok(out)
}

/// The person's open invitations, newest first (at most 50: each is one organization).
pub fn invitations_of_user(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<Invitation>> {
    let rows = invitations::table
        .filter(invitations::user_id.eq(user_id))
        .filter(invitations::expires_at.gt(now))
        .order(invitations::id.desc())
        .limit(50)
        .select(InvitationRow::as_select())
        .load(conn)?;
    load_invitations(conn, rows)
}

/// The organization's open invitations, newest first.
pub fn invitations_of_org(
    conn: &mut DbConn,
    org_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<Invitation>> {
    let rows = invitations::table
        .filter(invitations::organization_id.eq(org_id))
        .filter(invitations::expires_at.gt(now))
        .order(invitations::id.desc())
        .limit(500)
        .select(InvitationRow::as_select())
        .load(conn)?;
    load_invitations(conn, rows)
}

pub fn find_invitation(conn: &mut DbConn, id: &str) -> QueryResult<Option<InvitationRow>> {
    invitations::table
        .filter(invitations::id.eq(id))
        .select(InvitationRow::as_select())
        .first(conn)
        .optional()
}

pub fn delete_invitation(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(invitations::table.filter(invitations::id.eq(id))).execute(conn)
}

pub fn delete_invitation_of(conn: &mut DbConn, org_id: &str, user_id: &str) -> QueryResult<usize> {
    diesel::delete(
        invitations::table
            .filter(invitations::organization_id.eq(org_id))
            .filter(invitations::user_id.eq(user_id)),
    )
    .execute(conn)
}

pub fn delete_expired_sessions(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(sessions::table.filter(sessions::expires_at.lt(now))).execute(conn)
}

pub fn insert_token(conn: &mut DbConn, row: &ApiTokenRow) -> QueryResult<()> {
    diesel::insert_into(api_tokens::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn find_live_token(conn: &mut DbConn, hash: &str) -> QueryResult<Option<ApiTokenRow>> {
    api_tokens::table
        .filter(api_tokens::token_hash.eq(hash))
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(crate::db::now())),
        )
        .select(ApiTokenRow::as_select())
        .first(conn)
        .optional()
}

pub fn touch_token(conn: &mut DbConn, id: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(api_tokens::table.find(id))
        .set(api_tokens::last_used_at.eq(Some(at)))
        .execute(conn)
        .map(drop)
}

pub fn list_tokens(
    conn: &mut DbConn,
    org_id: &str,
    user_id: &str,
) -> QueryResult<Vec<ApiTokenRow>> {
    api_tokens::table
        .filter(api_tokens::organization_id.eq(org_id))
        .filter(api_tokens::user_id.eq(user_id))
        .order(api_tokens::id.desc())
        .select(ApiTokenRow::as_select())
        .load(conn)
}

/// Revokes one of the user's own tokens in the organization; false if there is none.
pub fn revoke_token(
    conn: &mut DbConn,
    org_id: &str,
    user_id: &str,
    token_id: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(token_id))
            .filter(api_tokens::organization_id.eq(org_id))
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Some(at)))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn record_login_failure(
    conn: &mut DbConn,
    id: &str,
    email: &str,
    ip: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::id.eq(id),
            login_failures::email.eq(email),
            login_failures::ip.eq(ip),
            login_failures::created_at.eq(at),
        ))
        .execute(conn)
        .map(drop)
}

pub fn failures_for_email_since(
    conn: &mut DbConn,
    email: &str,
    since: NaiveDateTime,
) -> QueryResult<i64> {
    login_failures::table
        .filter(login_failures::email.eq(email))
        .filter(login_failures::created_at.gt(since))
        .count()
        .get_result(conn)
}

pub fn failures_for_ip_since(
    conn: &mut DbConn,
    ip: &str,
    since: NaiveDateTime,
) -> QueryResult<i64> {
    login_failures::table
        .filter(login_failures::ip.eq(ip))
        .filter(login_failures::created_at.gt(since))
        .count()
        .get_result(conn)
}

pub fn clear_login_failures(conn: &mut DbConn, email: &str) -> QueryResult<()> {
    diesel::delete(login_failures::table.filter(login_failures::email.eq(email)))
        .execute(conn)
        .map(drop)
}

pub fn prune_login_failures(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(login_failures::table.filter(login_failures::created_at.lt(before)))
        .execute(conn)
}

pub fn count_active_members(conn: &mut DbConn, org_id: &str) -> QueryResult<i64> {
    memberships::table
        .filter(memberships::organization_id.eq(org_id))
        .filter(memberships::is_active.eq(true))
        .count()
        .get_result(conn)
}

/// Makes user text match literally inside a LIKE pattern (escape character `\`).
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
