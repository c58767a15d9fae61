//! Business areas, one folder each: `model.rs` (Diesel structs), `store.rs`
//! (queries), `service.rs` (rules). Stores take a connection and return
//! `QueryResult`; services own validation, authorization-independent rules and audit.

pub mod appointments;
pub mod attachments;
pub mod audit;
pub mod blob_s3;
pub mod calendar;
pub mod churn;
pub mod clients;
pub mod custom_fields;
pub mod dashboard;
pub mod idempotency;
pub mod imports;
pub mod interactions;
pub mod later;
pub mod mail;
pub mod memo;
pub mod money;
pub mod notifications;
pub mod orgs;
pub mod outbox;
pub mod pipeline;
pub mod policy;
pub mod preferences;
pub mod reports;
pub mod scores;
pub mod segments;
pub mod sends;
pub mod templates;
pub mod webhooks;
pub mod workflows;

/// Runs a read-modify-write. A write that named no version asked for last-writer-wins: when
/// another transaction committed between its read and its compare-and-set (PostgreSQL runs
/// them side by side), it is applied again on top of theirs instead of failing as stale.
/// A conditional write (`If-Match`, a version in the body) reports `Stale` at once.
pub fn last_writer_wins<T>(
    conditional: bool,
    mut write: impl FnMut() -> crate::error::AppResult<T>,
) -> crate::error::AppResult<T> {
    let mut attempt = 0;
    loop {
        match write() {
            Err(crate::error::AppError::Stale(_)) if !conditional && attempt < 5 => attempt += 1,
            other => return other,
        }
    }
}
