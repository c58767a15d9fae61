//! Stored answers to API requests sent with an `Idempotency-Key` (the middleware is
//! `web::idempotency`): claiming a key, storing the response, forgetting a claim.

use chrono::Duration;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::db::schema::idempotency_keys as ik;
use crate::db::{new_id, now, DbConn};
use crate::error::AppResult;

/// What a key's claim found.
pub enum Claim {
    /// This request owns the key; its response will be stored under this id.
    Fresh(String),
    /// The stored answer: status, body, headers (a JSON object).
    Replay(u16, String, String),
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// Claims `key` for a request with this fingerprint, for a user in an organization. Keys
/// older than a day are forgotten first; a claim that never got its answer within `lease`
/// was abandoned (the process died mid-request) and is taken over.
pub fn claim(
    c: &mut DbConn,
    org_id: &str,
    user_id: &str,
    key: &str,
    fingerprint: &str,
    lease: Duration,
) -> AppResult<Option<Claim>> {
    diesel::delete(ik::table.filter(ik::created_at.lt(now() - Duration::hours(24)))).execute(c)?;
    let id = new_id();
    let inserted = diesel::insert_into(ik::table)
        .values((
            ik::id.eq(&id),
            ik::organization_id.eq(org_id),
            ik::user_id.eq(user_id),
            ik::idem_key.eq(key),
            ik::request_hash.eq(fingerprint),
            ik::created_at.eq(now()),
        ))
        .execute(c);
    match inserted {
        Ok(_) => Ok(Some(Claim::Fresh(id))),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            let taken = diesel::update(
                ik::table
                    .filter(ik::organization_id.eq(org_id))
                    .filter(ik::user_id.eq(user_id))
                    .filter(ik::idem_key.eq(key))
                    .filter(ik::request_hash.eq(fingerprint))
                    .filter(ik::status_code.is_null())
                    .filter(ik::created_at.lt(now() - lease)),
            )
            .set((ik::id.eq(&id), ik::created_at.eq(now())))
            .execute(c)?;
            if taken == 1 {
                return Ok(Some(Claim::Fresh(id)));
            }
            let (hash, status, body, headers): (String, Option<i32>, String, String) = ik::table
                .filter(ik::organization_id.eq(org_id))
                .filter(ik::user_id.eq(user_id))
                .filter(ik::idem_key.eq(key))
                .select((
                    ik::request_hash,
                    ik::status_code,
                    ik::response_body,
                    ik::response_headers,
                ))
                .first(c)?;
            Ok(Some(match status {
                _ if hash != fingerprint => Claim::Mismatch,
                None => Claim::InProgress,
                Some(s) => Claim::Replay(u16::try_from(s).unwrap_or(500), body, headers),
            }))
        }
        Err(e) => Err(e.into()),
    }
}

/// Stores the answer of a claimed key.
pub fn answer(c: &mut DbConn, id: &str, status: u16, body: &str, headers: &str) -> QueryResult<()> {
    diesel::update(ik::table.find(id))
        .set((
            ik::status_code.eq(Some(i32::from(status))),
            ik::response_body.eq(body),
            ik::response_headers.eq(headers),
        ))
        .execute(c)
        .map(drop)
}

/// Drops a claim (its request failed on our side, or its answer could not be read).
pub fn forget(c: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::delete(ik::table.find(id)).execute(c).map(drop)
}
