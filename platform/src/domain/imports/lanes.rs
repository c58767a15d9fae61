//! Two chunks at once on PostgreSQL. A chunk of a client file spends most of its time in
//! one PostgreSQL backend writing index entries, one core busy and the second idle (issue
//! 15: 10,700 rows/s against a bar of 15,000). When the next chunk cannot touch what the
//! current one writes, the two run side by side on two connections and commit in file
//! order: the second lane's transaction waits, before it moves the batch's progress on, for
//! the lock the first lane's transaction holds until it ends, and it moves the progress on
//! only from where the first one ended — so if the first rolls back, the second does too
//! and its chunk runs again alone. Rows still commit in file order, a restart still resumes
//! after the last committed chunk, and no row runs twice.
//!
//! What the second lane cannot see are the first lane's uncommitted records: a later row
//! that would match one of them (same e-mail, id in the old system or company domain) must
//! update it, not create a twin, so a pair of chunks sharing any such key runs one after
//! the other. Twins by phone or by name at a company, which the import does not match on,
//! are found by the duplicate scan every finished import asks for.
//!
//! SQLite has one writer: there the chunks always run one at a time.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;

use super::{cell, domain_of, get, mapped_rows, Cells, Kind, CHUNK};
use crate::db::DbConn;
use crate::error::AppResult;

/// Which part a chunk plays.
pub enum Lane<'a> {
    /// The only chunk running.
    Alone,
    /// The first of two: `started` is told once its transaction holds the lock the second
    /// waits on.
    First(&'a Started),
    /// The second of two: it starts at row `from`, byte `offset`, where the first ends.
    Second {
        from: usize,
        offset: i64,
        started: &'a Started,
    },
}

/// Tells the second lane that the first lane's transaction holds its lock, or has ended.
#[derive(Default)]
pub struct Started {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Started {
    pub fn set(&self) {
        *self.set.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Waits until told; a first lane that never says (it cannot: its drivers tell when it
    /// ends, however it ends) costs the second lane a minute and then its chunk.
    pub fn wait(&self) {
        let guard = self.set.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .cv
            .wait_timeout_while(guard, Duration::from_secs(60), |set| !*set);
    }
}

/// Tells the second lane when dropped: the first lane's driver holds one for as long as
/// the first lane runs, so an error or a panic there never leaves the second waiting.
pub struct TellOnDrop<'a>(pub &'a Started);

impl Drop for TellOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set();
    }
}

static SECOND_RUNS: AtomicUsize = AtomicUsize::new(0);

/// How many chunks this process ran in a second lane to the end: the tests' evidence
/// that the pairing happens at all (a pairing that always rolls back is only slow).
pub fn second_runs() -> usize {
    SECOND_RUNS.load(Ordering::Relaxed)
}

pub(super) fn count_second_run() {
    SECOND_RUNS.fetch_add(1, Ordering::Relaxed);
}

/// The advisory lock of the chunk of `batch` that ends at row `to`.
fn key(batch: &str, to: usize) -> i64 {
    // FNV-1a: stable across builds and processes, unlike the standard library's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in batch.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h ^ to as u64) as i64
}

/// The first lane's transaction takes its lock until it ends.
pub(super) fn hold(conn: &mut DbConn, batch: &str, to: usize) -> AppResult<()> {
    if let DbConn::Postgresql(_) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(key(batch, to))
            .execute(conn)?;
    }
    Ok(())
}

/// The second lane waits for the first lane's transaction (whose chunk ends at `from`) to
/// end. A wait that closes a cycle with the first lane (each waiting for a row the other
/// wrote) is broken by PostgreSQL's deadlock detector, since both waits are its own.
pub(super) fn follow(conn: &mut DbConn, batch: &str, from: usize) -> AppResult<()> {
    if let DbConn::Postgresql(_) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind::<BigInt, _>(key(batch, from))
            .execute(conn)?;
    }
    Ok(())
}

/// Where the chunk after the batch's next one starts (row, byte offset), when the two may
/// run at once: on PostgreSQL, in a client file, both full enough to be worth it, and no
/// matching key in common.
pub fn second_chunk(
    conn: &mut DbConn,
    data_dir: &std::path::Path,
    org: &str,
    batch: &str,
) -> AppResult<Option<(usize, i64)>> {
    if !matches!(conn, DbConn::Postgresql(_)) {
        return Ok(None);
    }
    let batch = get(conn, org, batch)?;
    if batch.kind() == Kind::Deals || !matches!(batch.status.as_str(), "queued" | "running") {
        return Ok(None);
    }
    let from = batch.processed_rows as usize;
    let (first, next) = mapped_rows(data_dir, &batch, batch.file_offset, CHUNK)?;
    if first.len() < CHUNK || from + first.len() >= batch.total_rows as usize {
        return Ok(None);
    }
    let (second, _) = mapped_rows(data_dir, &batch, next, CHUNK)?;
    if second.is_empty() {
        return Ok(None);
    }
    let keys = match_keys(&first);
    if second.iter().any(|cells| {
        row_keys(cells)
            .into_iter()
            .any(|k| keys.contains(k.as_str()))
    }) {
        return Ok(None);
    }
    Ok(Some((from + first.len(), next)))
}

/// What a row of a client file is matched by: its id in the old system, its e-mail, its
/// company's domain (prefixed, so an e-mail never equals a domain).
fn row_keys(cells: &Cells) -> Vec<String> {
    let mut keys = Vec::with_capacity(3);
    if let Some(x) = cell(cells, "externalId") {
        keys.push(format!("x:{x}"));
    }
    if let Some(e) = cell(cells, "email") {
        keys.push(format!("e:{}", e.to_lowercase()));
    }
    if let Some(d) = cell(cells, "domain")
        .map(domain_of)
        .filter(|d| !d.is_empty())
    {
        keys.push(format!("d:{d}"));
    }
    keys
}

fn match_keys(rows: &[Cells]) -> HashSet<String> {
    rows.iter().flat_map(row_keys).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Cells {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rows_sharing_an_email_id_or_domain_share_a_key() {
        let first = match_keys(&[
            row(&[("email", "Ada@Example.com")]),
            row(&[("externalId", "17")]),
            row(&[("domain", "https://www.acme.test/about")]),
        ]);
        let shares = |cells: Cells| row_keys(&cells).iter().any(|k| first.contains(k));
        assert!(shares(row(&[("email", "ada@example.COM")])));
        assert!(shares(row(&[("externalId", "17")])));
        assert!(shares(row(&[("domain", "acme.test")])));
        assert!(!shares(row(&[("email", "grace@example.com")])));
        // A contact's id and an e-mail that happen to spell the same are not one key.
        assert!(!shares(row(&[("email", "17")])));
        assert!(!shares(row(&[("firstName", "Ada")])));
    }
}
