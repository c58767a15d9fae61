//! Console sessions: database rows keyed by the SHA-256 of a random cookie value,
//! so every instance sees them and a stolen database holds no usable cookie.
//! Sign-in is throttled per account and per address.

use actix_web::cookie::{time, Cookie, SameSite};
use chrono::Duration;

use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::domain::orgs::password::{dummy_hash, random_secret, sha256_hex, verify_password};
use crate::domain::orgs::{store, OrganizationRow, SessionRow, UserRow};
use crate::error::{AppError, AppResult};

pub const SESSION_COOKIE: &str = "rapport_session";
/// Sessions end a week after sign-in at the latest...
const ABSOLUTE_LIFETIME_DAYS: i64 = 7;
/// ...or after a day without use.
const IDLE_TIMEOUT_HOURS: i64 = 24;
/// Failed sign-ins counted over this window.
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;

pub fn session_cookie(token: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token.to_string())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::days(ABSOLUTE_LIFETIME_DAYS))
        .finish()
}

pub fn expired_cookie(name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build(name, "").path("/").http_only(true).finish();
    c.make_removal();
    c
}

/// A live session, touched at most once a minute; expired ones are deleted on sight.
pub fn load(conn: &mut DbConn, id: &str) -> AppResult<Option<SessionRow>> {
    let Some(s) = store::find_session(conn, id)? else {
        return Ok(None);
    };
    let at = now();
    if s.expires_at < at || s.last_seen_at < at - Duration::hours(IDLE_TIMEOUT_HOURS) {
        store::delete_session(conn, id)?;
        return Ok(None);
    }
    if at - s.last_seen_at > Duration::seconds(60) {
        store::touch_session(conn, id, at)?;
    }
    Ok(Some(s))
}

pub struct SignedIn {
    pub token: String,
    pub user: UserRow,
    pub org: OrganizationRow,
}

pub struct SignInAttempt<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
    /// The session cookie presented with the sign-in, if any: it is destroyed so
    /// a planted session id never becomes an authenticated one.
    pub previous_session: Option<String>,
    pub request_id: &'a str,
}

pub fn sign_in(conn: &mut DbConn, attempt: SignInAttempt<'_>) -> AppResult<SignedIn> {
    let email = attempt.email.trim().to_lowercase();
    let at = now();
    let since = at - Duration::minutes(THROTTLE_WINDOW_MINUTES);
    // why: the attempt is claimed (recorded as a failure) *before* it is counted and the
    // password checked, so parallel guesses each see the ones before them: the n-th
    // concurrent attempt counts n, and no more than the limit are ever evaluated. A
    // success removes the claim with the account's other failures.
    store::record_login_failure(conn, &new_id(), &email, attempt.ip, at)?;
    if store::failures_for_email_since(conn, &email, since)? > MAX_FAILURES_PER_ACCOUNT
        || store::failures_for_ip_since(conn, attempt.ip, since)? > MAX_FAILURES_PER_ADDRESS
    {
        // why: the refused attempt's claim stays: removing it would let the next parallel
        // guess count one fewer and slip through. Guessing on keeps the lock on.
        return Err(AppError::TooManyRequests(format!(
            "Too many failed sign-ins. Wait {THROTTLE_WINDOW_MINUTES} minutes and try again."
        )));
    }
    let user = store::find_user_by_email(conn, &email)?;
    let hash = user
        .as_ref()
        .map_or(dummy_hash(), |u| u.password_hash.as_str());
    let verified = verify_password(attempt.password, hash);
    let org = match (&user, verified) {
        (Some(u), true) => store::orgs_of_user(conn, &u.id)?
            .into_iter()
            .next()
            .map(|(o, _)| o),
        _ => None,
    };
    let (Some(user), Some(org)) = (user, org) else {
        return Err(AppError::Validation(
            "Incorrect e-mail or password, or the account is deactivated.".into(),
            vec![],
        ));
    };
    let token = random_secret();
    crate::db::transaction(conn, |c| {
        if let Some(prev) = &attempt.previous_session {
            store::delete_session(c, &sha256_hex(prev))?;
        }
        store::clear_login_failures(c, &email)?;
        store::insert_session(
            c,
            &SessionRow {
                id: sha256_hex(&token),
                organization_id: org.id.clone(),
                user_id: user.id.clone(),
                ip: attempt.ip.to_string(),
                user_agent: attempt.user_agent.chars().take(300).collect(),
                created_at: at,
                last_seen_at: at,
                expires_at: at + Duration::days(ABSOLUTE_LIFETIME_DAYS),
            },
        )?;
        let ctx = AuditContext {
            org_id: org.id.clone(),
            actor_user_id: Some(user.id.clone()),
            actor_label: user.email.clone(),
            ip: attempt.ip.to_string(),
            request_id: attempt.request_id.to_string(),
            import_batch: None,
        };
        audit::record(
            c,
            &ctx,
            "session.create",
            "session",
            None,
            serde_json::json!({}),
        )
    })?;
    Ok(SignedIn { token, user, org })
}
