//! Time limits on database work, so one slow query answers 503 for its own request while
//! the pool keeps serving the others: sixteen requests each stuck for minutes on a
//! query once held every pooled connection.
//!
//! PostgreSQL enforces `statement_timeout`, set on every pooled connection. SQLite has no
//! such setting; its progress handler, installed on every connection through
//! `sqlite3_auto_extension` (Diesel 2.3 exposes no raw handle), interrupts a statement
//! once the deadline of the database call running on that thread has passed. The deadline
//! lives in a thread-local because a pooled connection is used by one blocking thread at
//! a time, the one `db::run` gives it to.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The budget of one database call from a request, in milliseconds.
static BUDGET_MS: AtomicU64 = AtomicU64::new(10_000);

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Sets the budget of every later request's database call (`RAPPORT_STATEMENT_TIMEOUT`).
pub fn set_budget(budget: Duration) {
    BUDGET_MS.store(budget.as_millis().max(1) as u64, Ordering::Relaxed);
}

pub fn budget() -> Duration {
    Duration::from_millis(BUDGET_MS.load(Ordering::Relaxed))
}

/// Restores the thread's previous deadline when dropped.
pub struct Deadline(Option<Instant>);

impl Drop for Deadline {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.0));
    }
}

/// Work on this thread's database connection must end within `budget` (SQLite), until
/// the returned guard is dropped.
pub fn within(budget: Duration) -> Deadline {
    let previous = DEADLINE.with(|d| d.replace(Some(Instant::now() + budget)));
    Deadline(previous)
}

/// Lifts the deadline on this thread (background jobs that read a whole organization).
pub fn unbounded() -> Deadline {
    Deadline(DEADLINE.with(|d| d.replace(None)))
}

/// Whether work on this thread has a deadline: a request's has, a background job's or the
/// command line's has not.
pub fn bounded() -> bool {
    DEADLINE.with(|d| d.get().is_some())
}

/// How many SQLite virtual-machine steps run between two looks at the clock: about a
/// millisecond of work, so the look costs nothing measurable.
const STEPS: std::os::raw::c_int = 20_000;

unsafe extern "C" fn progress(_: *mut std::os::raw::c_void) -> std::os::raw::c_int {
    let late = DEADLINE.with(|d| d.get().is_some_and(|at| Instant::now() >= at));
    std::os::raw::c_int::from(late)
}

unsafe extern "C" fn on_open(
    db: *mut libsqlite3_sys::sqlite3,
    _err: *mut *mut std::os::raw::c_char,
    _api: *const libsqlite3_sys::sqlite3_api_routines,
) -> std::os::raw::c_int {
    // SAFETY: SQLite calls this with the connection it is opening, valid for the call.
    unsafe {
        libsqlite3_sys::sqlite3_progress_handler(db, STEPS, Some(progress), std::ptr::null_mut())
    };
    // why: the query planner stability guarantee. Without it SQLite 3.50 plans with the
    // values bound to `LIMIT ?` (every Diesel `.first()` and `.limit(n)`), `LIKE ?` and,
    // with STAT4, to a parameter compared with a sampled index, and marks the statement
    // stale whenever such a parameter is bound again — and Diesel binds every parameter on
    // every run. So its statement cache saved nothing on those: each run compiled the
    // statement again, a quarter of a create's CPU at a million clients and every poll of
    // the background queues. The plans are made without the values instead; STAT4 still
    // informs them. Test: `cached_statements_are_not_compiled_again`.
    // SAFETY: as above; the option takes an int and an optional out-pointer.
    unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::os::raw::c_int,
            std::ptr::null_mut::<std::os::raw::c_int>(),
        )
    };
    libsqlite3_sys::SQLITE_OK
}

/// Installs the progress handler on every SQLite connection opened from now on.
pub fn install_sqlite_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `on_open` has the signature SQLite calls entry points with and only
        // registers a handler on the connection it is given.
        unsafe { libsqlite3_sys::sqlite3_auto_extension(Some(on_open)) };
    });
}

/// Whether a database error is the time limit stopping a statement.
pub fn is_timeout(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => {
            let m = info.message();
            m == "interrupted" || m.contains("statement timeout")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use libsqlite3_sys as ffi;
    use std::ffi::CString;

    /// Runs `sql` three times, with `first` and then `second` (twice) bound to its parameter, and
    /// returns how often SQLite compiled the statement again, as Diesel's statement cache
    /// would run it (same prepared statement, parameters bound anew each time).
    fn recompiles(sql: &str, first: i64, second: i64) -> i32 {
        super::install_sqlite_handler();
        let path = CString::new(":memory:").unwrap();
        let sql = CString::new(sql).unwrap();
        // SAFETY: plain use of the C API on a connection and statement this function owns
        // and closes; every pointer passed is valid for the call.
        unsafe {
            let mut db = std::ptr::null_mut();
            assert_eq!(ffi::sqlite3_open(path.as_ptr(), &mut db), ffi::SQLITE_OK);
            let create =
                CString::new("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1), (2), (3);")
                    .unwrap();
            assert_eq!(
                ffi::sqlite3_exec(
                    db,
                    create.as_ptr(),
                    None,
                    std::ptr::null_mut(),
                    std::ptr::null_mut()
                ),
                ffi::SQLITE_OK
            );
            let mut stmt = std::ptr::null_mut();
            assert_eq!(
                ffi::sqlite3_prepare_v3(
                    db,
                    sql.as_ptr(),
                    -1,
                    ffi::SQLITE_PREPARE_PERSISTENT,
                    &mut stmt,
                    std::ptr::null_mut()
                ),
                ffi::SQLITE_OK
            );
            for value in [first, second, second] {
                ffi::sqlite3_bind_int64(stmt, 1, value);
                while ffi::sqlite3_step(stmt) == ffi::SQLITE_ROW {}
                ffi::sqlite3_reset(stmt);
            }
            let n = ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_REPREPARE, 0);
            ffi::sqlite3_finalize(stmt);
            ffi::sqlite3_close(db);
            n
        }
    }

    #[test]
    fn cached_statements_are_not_compiled_again() {
        // `LIMIT ?` is what Diesel's `.first()` and every paged read end with.
        assert_eq!(recompiles("SELECT a FROM t ORDER BY a LIMIT ?", 1, 2), 0);
        // `LIKE ?` is the list's and the segments' text filter.
        assert_eq!(recompiles("SELECT a FROM t WHERE a LIKE ?", 1, 2), 0);
    }
}
