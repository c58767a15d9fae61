//! SQLite's write side: one writer connection per database file, a fair queue in front of
//! it, and group commit.
//!
//! why one connection: SQLite writes one transaction at a time anyway, and in WAL mode a
//! connection empties its page cache whenever another connection has written. With writes
//! spread over sixteen pooled connections each began by re-reading the interior pages of
//! every index it touched (a third of a create's CPU at a million clients, in `perf`); on
//! the one connection that alone writes they stay cached between transactions.
//!
//! why group commit: while other writers wait their turn, a finished transaction is not
//! committed; the next writer runs in a savepoint of the same transaction, and the last of
//! the group commits for all. Each commit writes every page the transaction changed to the
//! log, and the creates of one group share most of them (the interior pages, the newest
//! leaf of every time-ordered index, the change log's and outbox's last pages). Nobody is
//! answered before the commit that holds their work: a writer whose group is still open
//! waits for its outcome, and a failed commit fails every member.
//!
//! why the first member runs without a savepoint: a savepoint makes SQLite copy every page
//! it changes to a sub-journal first, in case it is rolled back alone; the first member has
//! nobody's work to keep beside its own, so its failure rolls the whole transaction back.
//!
//! why long writers commit the group before they begin: a member is answered only when its
//! group commits, so joining an import chunk's group (tens of milliseconds) or a background
//! job's would make the requests before it wait for that too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::{Connection, SqliteConnection};
use parking_lot::{Condvar, FairMutex, Mutex};

use super::DbConn;

/// How much the writer's page cache may hold, in KiB: the pages it changes are copied there
/// even when reads go through the memory map.
pub(super) const WRITER_CACHE_KIB: u32 = 65_536;

/// At most this many transactions share one commit.
const GROUP_MAX: usize = 32;

/// The write side of one database file.
pub(super) struct Queue {
    /// Writers waiting for their turn: while any do, a finished transaction stays open.
    waiting: AtomicUsize,
    turn: FairMutex<Writer>,
}

struct Writer {
    /// The file as SQLite names it; empty for a temporary database.
    file: String,
    /// Whether a pool owns this writer; without one, transactions run on their caller's
    /// connection (they only queue here) and commit alone.
    dedicated: bool,
    conn: Option<DbConn>,
    group: Option<Group>,
}

struct Group {
    members: usize,
    outcome: Arc<Outcome>,
}

/// How a group ended: `None` while it is open.
#[derive(Default)]
struct Outcome {
    ended: Mutex<Option<Result<(), String>>>,
    done: Condvar,
}

impl Outcome {
    fn end(&self, result: Result<(), String>) {
        *self.ended.lock() = Some(result);
        self.done.notify_all();
    }
}

fn failure(message: String) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(message),
    )
}

fn depth(c: &mut DbConn) -> Option<std::num::NonZeroU32> {
    let DbConn::Sqlite(c) = c else { return None };
    <AnsiTransactionManager as TransactionManager<SqliteConnection>>::transaction_manager_status_mut(c)
        .transaction_depth()
        .ok()
        .flatten()
}

impl Writer {
    /// The writer connection, opened on first use and replaced if a transaction that failed
    /// or panicked half-way left it inside one (closing rolls that back); `None` when the
    /// caller's connection is to be used.
    fn connection(&mut self) -> Option<&mut DbConn> {
        if !self.dedicated || self.file.is_empty() {
            return None;
        }
        if self.group.is_none() && self.conn.as_mut().is_some_and(|c| depth(c).is_some()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let opened = super::open_sqlite(&self.file).and_then(|mut c| {
                c.batch_execute(&format!("PRAGMA cache_size = -{WRITER_CACHE_KIB}"))
                    .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(c)
            });
            match opened {
                Ok(c) => self.conn = Some(DbConn::Sqlite(c)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the SQLite writer connection");
                    return None;
                }
            }
        }
        self.conn.as_mut()
    }

    /// Commits the open group and tells its members; on failure the connection is dropped
    /// (closing rolls back whatever is left).
    fn commit(&mut self) -> diesel::QueryResult<()> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        let committed = match self.conn.as_mut() {
            Some(DbConn::Sqlite(c)) => <AnsiTransactionManager as TransactionManager<
                SqliteConnection,
            >>::commit_transaction(c),
            _ => Err(failure("the writer connection is gone".into())),
        };
        if committed.is_err() {
            self.conn = None;
        }
        group
            .outcome
            .end(committed.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        committed
    }

    /// Gives up the open group: its members' work is rolled back and they are told why.
    fn abandon(&mut self, why: &str) {
        self.conn = None;
        if let Some(group) = self.group.take() {
            group.outcome.end(Err(why.to_string()));
        }
    }
}

/// The outermost transaction on a SQLite connection: see the module's comment. `long`: the
/// caller may write for a while (a batch, a background job), so the open group is
/// committed first and its members are not kept waiting for this one.
pub(super) fn transaction<T, E, F>(conn: &mut DbConn, f: F, long: bool) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let DbConn::Sqlite(c) = conn else {
        return conn.transaction(f);
    };
    // why: SQLite's busy handler polls, so under a stream of writers one of them can lose
    // every retry until its timeout ("database is locked"). Writers of this process queue
    // first-come first-served on a fair lock per database file instead; SQLite's own lock
    // is then contended only by other processes (the command line).
    let queue = queue(c, false)?;
    queue.waiting.fetch_add(1, Ordering::SeqCst);
    let turn = queue.turn.try_lock_for(Duration::from_secs(30));
    queue.waiting.fetch_sub(1, Ordering::SeqCst);
    let Some(mut writer) = turn else {
        return alone(conn, f);
    };
    if long && writer.group.is_some() {
        // A failed commit has told its members; this writer starts afresh either way.
        let _ = writer.commit();
    }
    if writer.connection().is_none() {
        return alone(conn, f);
    }
    let first = writer.group.is_none();
    let outcome = match &mut writer.group {
        Some(group) => {
            group.members += 1;
            group.outcome.clone()
        }
        None => {
            let Some(DbConn::Sqlite(c)) = writer.conn.as_mut() else {
                return alone(conn, f);
            };
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
            let outcome = Arc::new(Outcome::default());
            writer.group = Some(Group {
                members: 1,
                outcome: outcome.clone(),
            });
            outcome
        }
    };
    let Some(c) = writer.conn.as_mut() else {
        return Err(failure("the writer connection is gone".into()).into());
    };
    // A later member runs in a savepoint of the group's transaction: its failure undoes its
    // own work only.
    let run = std::panic::AssertUnwindSafe(|| if first { f(c) } else { c.transaction(f) });
    let result = match std::panic::catch_unwind(run) {
        Ok(result) => result,
        Err(panic) => {
            writer.abandon("another write of the same commit failed; nothing was saved");
            drop(writer);
            std::panic::resume_unwind(panic);
        }
    };
    if first && result.is_err() {
        let rolled_back = match writer.conn.as_mut() {
            Some(DbConn::Sqlite(c)) => <AnsiTransactionManager as TransactionManager<
                SqliteConnection,
            >>::rollback_transaction(c),
            _ => Ok(()),
        };
        match rolled_back {
            Ok(()) => {
                if let Some(group) = writer.group.take() {
                    group.outcome.end(Err("the write failed".into()));
                }
            }
            // Closing the connection rolls back whatever SQLite left open.
            Err(_) => writer.abandon("the write failed"),
        }
        return result;
    }
    let Some(c) = writer.conn.as_mut() else {
        return Err(failure("the writer connection is gone".into()).into());
    };
    // why: SQLite rolls the whole transaction back on some errors (an interrupted
    // statement, a full disk), and a `BEGIN` succeeds only outside one. The group's work
    // is then gone, and its members must hear so.
    if c.batch_execute("BEGIN").is_ok() {
        let _ = c.batch_execute("ROLLBACK");
        writer.abandon("another write of the same commit failed; nothing was saved");
        return match result {
            Ok(_) => Err(failure("the write was rolled back; nothing was saved".into()).into()),
            Err(e) => Err(e),
        };
    }
    let members = writer.group.as_ref().map_or(0, |g| g.members);
    if queue.waiting.load(Ordering::SeqCst) == 0 || members >= GROUP_MAX {
        let committed = writer.commit();
        drop(writer);
        return match (committed, result) {
            (Err(e), Ok(_)) => Err(e.into()),
            (_, result) => result,
        };
    }
    drop(writer);
    let value = result?;
    match wait(&queue, &outcome) {
        Ok(()) => Ok(value),
        Err(message) => Err(failure(message).into()),
    }
}

/// Waits for the member's group to end. why the polling: a writer counted as waiting
/// whose 30 s wait ran out is not going to take its turn; if the group is still open a
/// while later, its waiting members commit it themselves.
fn wait(queue: &Queue, outcome: &Arc<Outcome>) -> Result<(), String> {
    let mut ended = outcome.ended.lock();
    loop {
        if let Some(result) = ended.as_ref() {
            return result.clone();
        }
        let timed_out = outcome
            .done
            .wait_for(&mut ended, Duration::from_millis(500))
            .timed_out();
        if timed_out && ended.is_none() {
            drop(ended);
            if let Some(mut writer) = queue.turn.try_lock() {
                let ours = writer
                    .group
                    .as_ref()
                    .is_some_and(|g| Arc::ptr_eq(&g.outcome, outcome));
                if ours {
                    let _ = writer.commit();
                }
            }
            ended = outcome.ended.lock();
        }
    }
}

/// `BEGIN IMMEDIATE`, `f`, then commit, or roll back on error, on the caller's connection.
fn alone<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    type Manager = AnsiTransactionManager;
    let DbConn::Sqlite(c) = conn else {
        return conn.transaction(f);
    };
    Manager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
    let result = f(conn);
    let DbConn::Sqlite(c) = conn else {
        return result;
    };
    match result {
        Ok(value) => {
            <Manager as TransactionManager<SqliteConnection>>::commit_transaction(c)?;
            Ok(value)
        }
        Err(e) => {
            match <Manager as TransactionManager<SqliteConnection>>::rollback_transaction(c) {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
                Err(rollback) => Err(rollback.into()),
            }
        }
    }
}

diesel::table! {
    /// SQLite's list of a connection's databases (a table-valued pragma).
    pragma_database_list (name) {
        name -> Text,
        file -> Text,
    }
}

/// The write side of the connection's database file. `pooled`: a pool asks, and holds it
/// for as long as it lives (transactions then run on the writer's own connection).
pub(super) fn queue(c: &mut SqliteConnection, pooled: bool) -> diesel::QueryResult<Arc<Queue>> {
    use diesel::RunQueryDsl;
    static QUEUES: std::sync::LazyLock<Mutex<std::collections::HashMap<String, Weak<Queue>>>> =
        std::sync::LazyLock::new(Default::default);
    use diesel::{ExpressionMethods, QueryDsl};
    // why: the DSL, not `sql_query`: Diesel prepares raw SQL afresh on every call, and this
    // runs at the start of every transaction.
    let file: String = pragma_database_list::table
        .filter(pragma_database_list::name.eq("main"))
        .select(pragma_database_list::file)
        .get_result(c)?;
    let mut queues = QUEUES.lock();
    queues.retain(|_, q| q.strong_count() > 0);
    if let Some(live) = queues.get(&file).and_then(Weak::upgrade) {
        if pooled {
            live.turn.lock().dedicated = true;
        }
        return Ok(live);
    }
    let queue = Arc::new(Queue {
        waiting: AtomicUsize::new(0),
        turn: FairMutex::new(Writer {
            file: file.clone(),
            dedicated: pooled,
            conn: None,
            group: None,
        }),
    });
    queues.insert(file, Arc::downgrade(&queue));
    Ok(queue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{connect, DbTarget, Pool};
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        v: i64,
    }

    fn values(pool: &Pool) -> Vec<i64> {
        let mut conn = pool.get().unwrap();
        diesel::sql_query("SELECT v FROM t ORDER BY v")
            .load::<Row>(&mut *conn)
            .unwrap()
            .into_iter()
            .map(|r| r.v)
            .collect()
    }

    /// A request's time limit, under which writes may share a commit.
    fn request() -> crate::db::limit::Deadline {
        crate::db::limit::within(Duration::from_secs(60))
    }

    /// Runs two writers so that the second queues while the first is inside its
    /// transaction (so they share one commit, unless the second is `long`), and returns
    /// both results.
    fn grouped(
        pool: &Pool,
        long: bool,
        second: impl FnOnce(&mut DbConn) -> diesel::QueryResult<()> + Send + 'static,
    ) -> (diesel::QueryResult<()>, diesel::QueryResult<()>) {
        let mut conn = pool.get().unwrap();
        let DbConn::Sqlite(c) = &mut *conn else {
            unreachable!()
        };
        let queue = queue(c, false).unwrap();
        drop(conn);
        let (inside_tx, inside_rx) = std::sync::mpsc::channel();
        let first = {
            let pool = pool.clone();
            let queue = queue.clone();
            std::thread::spawn(move || {
                let _deadline = request();
                let mut conn = pool.get().unwrap();
                crate::db::transaction(&mut conn, |c| {
                    diesel::sql_query("INSERT INTO t (v) VALUES (1)").execute(c)?;
                    inside_tx.send(()).unwrap();
                    while queue.waiting.load(Ordering::SeqCst) == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Ok(())
                })
            })
        };
        inside_rx.recv().unwrap();
        let mut conn = pool.get().unwrap();
        let second = if long {
            crate::db::long_transaction(&mut conn, second)
        } else {
            let _deadline = request();
            crate::db::transaction(&mut conn, second)
        };
        (first.join().unwrap(), second)
    }

    fn database() -> (Pool, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("rapport-group-{}", uuid::Uuid::new_v4()));
        let pool = connect(&DbTarget::sqlite_file(&dir.join("g.db")), 4).unwrap();
        pool.get()
            .unwrap()
            .batch_execute("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        (pool, dir)
    }

    /// Two writers share a commit; the second one's failure undoes only its own work.
    #[test]
    fn a_failed_write_of_a_group_leaves_the_others_saved() {
        let (pool, dir) = database();
        let (first, second) = grouped(&pool, false, |c| {
            diesel::sql_query("INSERT INTO t (v) VALUES (2)").execute(c)?;
            diesel::sql_query("INSERT INTO t (v) VALUES (NULL)").execute(c)?;
            Ok(())
        });
        assert!(first.is_ok(), "{first:?}");
        assert!(second.is_err());
        assert_eq!(values(&pool), vec![1]);
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// An interrupted write makes SQLite roll the whole transaction back: the writer whose
    /// work was in it is told so, not answered as saved.
    #[test]
    fn a_write_rolled_back_with_its_group_is_not_reported_saved() {
        let (pool, dir) = database();
        let (first, second) = grouped(&pool, false, |c| {
            let _late = crate::db::limit::within(Duration::ZERO);
            diesel::sql_query(
                "INSERT INTO t (v) WITH RECURSIVE n(i) AS \
                 (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000) SELECT i FROM n",
            )
            .execute(c)?;
            Ok(())
        });
        assert!(second.is_err());
        assert!(first.is_err(), "reported saved, yet rolled back");
        assert_eq!(values(&pool), Vec::<i64>::new());
        // The next write starts afresh.
        let _deadline = request();
        let mut conn = pool.get().unwrap();
        crate::db::transaction(&mut conn, |c| {
            diesel::sql_query("INSERT INTO t (v) VALUES (3)").execute(c)
        })
        .unwrap();
        assert_eq!(values(&pool), vec![3]);
        drop(conn);
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A long write (an import chunk) queued behind a request's does not join its commit:
    /// the request's work is committed, and it is answered, before the long one begins.
    #[test]
    fn a_long_write_commits_the_group_before_it_begins() {
        let (pool, dir) = database();
        let reader = pool.clone();
        let (first, second) = grouped(&pool, true, move |c| {
            let committed = values(&reader);
            diesel::sql_query("INSERT INTO t (v) VALUES (2)").execute(c)?;
            assert_eq!(
                committed,
                vec![1],
                "the request before waits for this write"
            );
            Ok(())
        });
        assert!(first.is_ok(), "{first:?}");
        assert!(second.is_ok(), "{second:?}");
        assert_eq!(values(&pool), vec![1, 2]);
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The first writer of a group runs in the transaction itself, not in a savepoint; its
    /// failure rolls the transaction back and the next write starts afresh.
    #[test]
    fn a_failed_first_write_leaves_nothing_and_the_next_works() {
        let (pool, dir) = database();
        let _deadline = request();
        let mut conn = pool.get().unwrap();
        let failed = crate::db::transaction(&mut conn, |c| -> diesel::QueryResult<()> {
            let in_savepoint = c
                .batch_execute("RELEASE SAVEPOINT diesel_savepoint_1")
                .is_ok();
            assert!(
                !in_savepoint,
                "the first writer of a group ran in a savepoint"
            );
            diesel::sql_query("INSERT INTO t (v) VALUES (1)").execute(c)?;
            diesel::sql_query("INSERT INTO t (v) VALUES (NULL)").execute(c)?;
            Ok(())
        });
        assert!(failed.is_err());
        assert_eq!(values(&pool), Vec::<i64>::new());
        crate::db::transaction(&mut conn, |c| {
            diesel::sql_query("INSERT INTO t (v) VALUES (2)").execute(c)
        })
        .unwrap();
        assert_eq!(values(&pool), vec![2]);
        drop(conn);
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }
}
