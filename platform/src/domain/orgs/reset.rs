//! "Forgot password": a one-time link by e-mail that lets a person choose a new password.
//! Every request is recorded (whether or not the address has an account) so the throttle
//! counts them alike; a link's token is random and only its SHA-256 is stored.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde_json::json;

use super::password::{hash_password, random_secret, sha256_hex, validate_new_password};
use super::service::validate_email;
use super::{store, UserRow};
use crate::db::schema::{memberships, password_resets};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::error::{AppError, AppResult, FieldError};

/// How long a link works.
pub const VALID_MINUTES: i64 = 60;
/// Requests for one address in [`WINDOW_MINUTES`]; more send nothing.
pub const MAX_PER_EMAIL: i64 = 3;
/// Requests from one client address in [`WINDOW_MINUTES`]; more send nothing.
pub const MAX_PER_IP: i64 = 10;
pub const WINDOW_MINUTES: i64 = 60;

/// What a person with a link that no longer works is told.
pub const LINK_EXPIRED: &str = "This link has expired or was already used. Ask for a new one.";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = password_resets)]
pub struct PasswordResetRow {
    pub id: String,
    /// None when the address has no account (the request is kept for the throttle).
    pub user_id: Option<String>,
    pub email: String,
    pub ip: String,
    /// SHA-256 of the link's token; None when no link was sent.
    pub token_hash: Option<String>,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// A link to send: whose account, and the token (known only to this answer and the mail).
pub struct Issued {
    pub user: UserRow,
    pub token: String,
}

/// The address as accounts store it (trimmed, lower case), or a field error on `email`.
pub fn checked_email(email: &str) -> AppResult<String> {
    let email = email.trim().to_lowercase();
    match validate_email(&email) {
        Some(m) => Err(AppError::invalid("email", m)),
        None => Ok(email),
    }
}

/// Records a request for `email` from `ip` and, when the address belongs to an account and
/// neither it nor the client address is over its hourly limit, issues a token valid for
/// [`VALID_MINUTES`]. `None` otherwise: the caller answers the same either way.
pub fn request(conn: &mut DbConn, email: &str, ip: &str) -> AppResult<Option<Issued>> {
    let email = checked_email(email)?;
    let at = now();
    let since = at - Duration::minutes(WINDOW_MINUTES);
    let user = store::find_user_by_email(conn, &email)?;
    // why: requests cost a row each; rows past any window and any link's life go, and an
    // address far over its limit is no longer recorded, so asking on cannot fill the table.
    diesel::delete(password_resets::table)
        .filter(password_resets::created_at.lt(at - Duration::days(1)))
        .execute(conn)?;
    let from_ip: i64 = password_resets::table
        .filter(password_resets::ip.eq(ip))
        .filter(password_resets::created_at.gt(since))
        .count()
        .get_result(conn)?;
    if from_ip > MAX_PER_IP * 5 {
        return Ok(None);
    }
    let id = new_id();
    // why: the request is recorded before it is counted (as failed sign-ins are), so
    // parallel requests each count the ones before them and no more than the limit get a
    // link. A refused request stays recorded: asking on keeps the limit on.
    diesel::insert_into(password_resets::table)
        .values(&PasswordResetRow {
            id: id.clone(),
            user_id: user.as_ref().map(|u| u.id.clone()),
            email: email.clone(),
            ip: ip.to_string(),
            token_hash: None,
            expires_at: at + Duration::minutes(VALID_MINUTES),
            used_at: None,
            created_at: at,
        })
        .execute(conn)?;
    let for_email: i64 = password_resets::table
        .filter(password_resets::email.eq(&email))
        .filter(password_resets::created_at.gt(since))
        .count()
        .get_result(conn)?;
    let for_ip: i64 = password_resets::table
        .filter(password_resets::ip.eq(ip))
        .filter(password_resets::created_at.gt(since))
        .count()
        .get_result(conn)?;
    let user = user.filter(|_| for_email <= MAX_PER_EMAIL && for_ip <= MAX_PER_IP);
    let token = random_secret();
    // why: the same statements run whether or not the address has an account, so the
    // answer's timing does not tell.
    diesel::update(password_resets::table.find(&id))
        .set(password_resets::token_hash.eq(user.as_ref().map(|_| sha256_hex(&token))))
        .execute(conn)?;
    Ok(user.map(|user| Issued { user, token }))
}

fn expired() -> AppError {
    AppError::Validation(
        "The password was not changed.".into(),
        vec![FieldError::new("token", LINK_EXPIRED)],
    )
}

/// The unused, unexpired request the token belongs to.
fn live(
    conn: &mut DbConn,
    token: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<PasswordResetRow>> {
    password_resets::table
        .filter(password_resets::token_hash.eq(sha256_hex(token.trim())))
        .filter(password_resets::used_at.is_null())
        .filter(password_resets::expires_at.gt(at))
        .select(PasswordResetRow::as_select())
        .first(conn)
        .optional()
}

/// Whether the link still works (the form is shown only then).
pub fn link_works(conn: &mut DbConn, token: &str) -> AppResult<bool> {
    Ok(live(conn, token, now())?.is_some())
}

/// Who redeems a link, for the audit log.
pub struct Redeemer<'a> {
    pub ip: &'a str,
    pub request_id: &'a str,
}

/// Sets the new password with the link's token. In one transaction: every outstanding link
/// of the account stops working, every session of the person ends (whoever may have had
/// their password is signed out), their failed sign-ins are forgotten (a person locked out
/// by guessing can sign in now), and each organization they belong to logs it.
pub fn redeem(
    conn: &mut DbConn,
    token: &str,
    new_password: &str,
    who: Redeemer<'_>,
) -> AppResult<UserRow> {
    let at = now();
    let Some(row) = live(conn, token, at)? else {
        return Err(expired());
    };
    if let Some(m) = validate_new_password(new_password) {
        return Err(AppError::Validation(
            "The password was not changed.".into(),
            vec![FieldError::new("password", m)],
        ));
    }
    let user_id = row.user_id.clone().ok_or_else(expired)?;
    let hash = hash_password(new_password)?;
    crate::db::transaction(conn, |c| {
        // why: the conditional update is what redeems: of two requests racing with one
        // link, one changes the row and the other finds nothing left to change.
        let claimed = diesel::update(
            password_resets::table
                .filter(password_resets::id.eq(&row.id))
                .filter(password_resets::used_at.is_null())
                .filter(password_resets::expires_at.gt(at)),
        )
        .set(password_resets::used_at.eq(Some(at)))
        .execute(c)?;
        if claimed != 1 {
            return Err(expired());
        }
        let user = store::find_user(c, &user_id)?.ok_or_else(expired)?;
        store::set_password(c, &user.id, &hash, at)?;
        diesel::update(
            password_resets::table
                .filter(password_resets::user_id.eq(&user.id))
                .filter(password_resets::used_at.is_null()),
        )
        .set(password_resets::used_at.eq(Some(at)))
        .execute(c)?;
        store::delete_user_sessions(c, &user.id)?;
        store::clear_login_failures(c, &user.email)?;
        let orgs: Vec<String> = memberships::table
            .filter(memberships::user_id.eq(&user.id))
            .select(memberships::organization_id)
            .load(c)?;
        for org_id in orgs {
            let ctx = AuditContext {
                org_id,
                actor_user_id: Some(user.id.clone()),
                actor_label: user.email.clone(),
                ip: who.ip.to_string(),
                request_id: who.request_id.to_string(),
                import_batch: None,
            };
            audit::record(
                c,
                &ctx,
                "user.reset_password_by_email",
                "user",
                Some(&user.id),
                json!({}),
            )?;
        }
        Ok(user)
    })
}
