//! Persistence: backend selection from the URL scheme, the connection pool, the
//! embedded migrations of both backends, and the async façade handlers use.

pub mod limit;
pub mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDateTime, Timelike, Utc};
use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{AppError, AppResult};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// One connection type for both backends; every store is written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the data lives, decided once from the URL's scheme.
#[derive(Debug, Clone)]
pub struct DbTarget {
    pub backend: Backend,
    /// For PostgreSQL the libpq URL, for SQLite the file path.
    pub location: String,
}

impl DbTarget {
    /// Parses a `DATABASE_URL`. The scheme alone picks the backend: a URL we do not
    /// recognise is an error, never a silent fallback to another backend.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self {
                backend: Backend::Postgres,
                location: url.to_string(),
            });
        }
        let path = if let Some(rest) = url.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            rest
        } else if url.contains("://") {
            anyhow::bail!(
                "unsupported DATABASE_URL scheme in {url:?}: use postgres://… or sqlite://<path>"
            );
        } else {
            url
        };
        if path.is_empty() {
            anyhow::bail!("DATABASE_URL names no SQLite file");
        }
        Ok(Self {
            backend: Backend::Sqlite,
            location: path.to_string(),
        })
    }

    pub fn sqlite_file(path: &Path) -> Self {
        Self {
            backend: Backend::Sqlite,
            location: path.to_string_lossy().into_owned(),
        }
    }
}

/// Establishes exactly the backend the target names, with our SQLite pragmas.
pub struct ConnectionManager {
    target: DbTarget,
    /// SQLite: the database's writer, kept alive as long as the pool (see [`transaction`]).
    _writer: Option<std::sync::Arc<writer::Queue>>,
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match self.target.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.target.location)
                    .map_err(r2d2::Error::ConnectionError)?;
                // why: jit off: PostgreSQL compiles a plan it deems expensive (a segment
                // count over a million clients) before running it, and that compilation alone
                // took 200–300 ms of a 450 ms count; Rapport's queries are short and indexed,
                // the case JIT does not pay for.
                conn.batch_execute(&format!("{}; SET jit = off", pg_timeout(limit::budget())))
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Postgresql(conn))
            }
            Backend::Sqlite => Ok(DbConn::Sqlite(open_sqlite(&self.target.location)?)),
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

/// Opens a SQLite connection with our pragmas.
fn open_sqlite(location: &str) -> Result<SqliteConnection, r2d2::Error> {
    limit::install_sqlite_handler();
    let mut conn = SqliteConnection::establish(location).map_err(r2d2::Error::ConnectionError)?;
    // why: busy_timeout must come before journal_mode=WAL, or concurrent
    // pool start-up reports "database is locked".
    // why: temp_store = MEMORY keeps savepoint sub-journals off the disk (a
    // savepoint copies each page it touches there first).
    // why: mmap_size: a page read is a memory access instead of a read() into
    // the connection's own cache, which every write of another connection empties
    // (WAL); at a million clients that halved the CPU of a dense text filter and
    // took a quarter off a profile page. 2 GiB is SQLite's compiled-in ceiling.
    // wal_autocheckpoint: the server checkpoints in the background
    // ([`spawn_checkpointer`]); the writer's own checkpoint (with its fsync, under
    // the write lock) is the fallback once the log passes ~40 MB.
    conn.batch_execute(
        "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY; PRAGMA mmap_size = 2147418112; \
         PRAGMA wal_autocheckpoint = 10000;",
    )
    .map_err(r2d2::Error::QueryError)?;
    Ok(conn)
}

pub type Pool = r2d2::Pool<ConnectionManager>;

/// How often the server copies SQLite's write-ahead log into the database file.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Copies SQLite's write-ahead log into the database file every [`CHECKPOINT_EVERY`], on a
/// thread and a connection of its own, for as long as the process runs. why: left to
/// SQLite, the write that pushes the log past its threshold copies it, fsync included,
/// while holding the write lock, and every writer queued behind it waits: the slowest
/// creates at 16 connections. A passive checkpoint takes no lock that readers or writers
/// wait on. Nothing to do on PostgreSQL.
pub fn spawn_checkpointer(target: &DbTarget) -> anyhow::Result<()> {
    if target.backend != Backend::Sqlite {
        return Ok(());
    }
    let mut conn = SqliteConnection::establish(&target.location)?;
    conn.batch_execute("PRAGMA busy_timeout = 10000;")?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                tracing::warn!(error = %e, "the background checkpoint failed");
            }
        })?;
    Ok(())
}
pub type PooledConn = r2d2::PooledConnection<ConnectionManager>;

/// Builds the pool and fails fast (with the cause) when the database is unreachable.
pub fn connect(target: &DbTarget, max_size: u32) -> anyhow::Result<Pool> {
    connect_with_idle(target, max_size, 1)
}

/// A pool for a one-shot command: it keeps no idle connection, so it never opens one in
/// the background. why: r2d2 replaces a taken idle connection on its own thread; a
/// PostgreSQL TLS handshake still running there when the command returned crashed the
/// process in OpenSSL's exit-time cleanup (SIGSEGV after the work was done).
pub fn connect_for_command(target: &DbTarget, max_size: u32) -> anyhow::Result<Pool> {
    connect_with_idle(target, max_size, 0)
}

fn connect_with_idle(target: &DbTarget, max_size: u32, min_idle: u32) -> anyhow::Result<Pool> {
    if target.backend == Backend::Sqlite {
        if let Some(parent) = PathBuf::from(&target.location).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    anyhow::anyhow!("cannot create the data directory {}: {e}", parent.display())
                })?;
            }
        }
    }
    let manager = ConnectionManager {
        target: target.clone(),
        _writer: None,
    };
    // why: probe once ourselves so an unreachable database reports its real cause
    // instead of r2d2's generic "timed out waiting for connection".
    let mut probe = manager
        .connect()
        .map_err(|e| anyhow::anyhow!("cannot connect to the {:?} database: {e}", target.backend))?;
    drop(manager.is_valid(&mut probe));
    let writer = match &mut probe {
        DbConn::Sqlite(c) => Some(writer::queue(c, true)?),
        DbConn::Postgresql(_) => None,
    };
    drop(probe);
    r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(min_idle))
        .connection_timeout(Duration::from_secs(10))
        // why: a `SELECT 1` on every checkout was ~1% of a create's CPU; a SQLite file does
        // not drop its connections, a PostgreSQL server can (a restart, an idle timeout).
        .test_on_check_out(target.backend == Backend::Postgres)
        .build(ConnectionManager {
            target: target.clone(),
            _writer: writer,
        })
        .map_err(|e| anyhow::anyhow!("cannot open the connection pool: {e}"))
}

fn pg_timeout(budget: Duration) -> String {
    format!("SET statement_timeout = {}", budget.as_millis())
}

/// Applies every pending migration of the connection's backend.
pub fn migrate(conn: &mut DbConn) -> anyhow::Result<Vec<String>> {
    // why: building an index over a million rows may take longer than a request may.
    let _unbounded = limit::unbounded();
    if let DbConn::Postgresql(c) = conn {
        c.batch_execute("SET statement_timeout = 0")?;
    }
    let applied = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        DbConn::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
    }
    .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?
    .iter()
    .map(|v| v.to_string())
    .collect();
    let filled = crate::domain::clients::keys::backfill(conn)
        .map_err(|e| anyhow::anyhow!("filling the clients' lookup keys failed: {e}"))?;
    if filled > 0 {
        tracing::info!(
            clients = filled,
            "filled the lookup keys of existing clients"
        );
    }
    if let DbConn::Postgresql(c) = conn {
        c.batch_execute(&pg_timeout(limit::budget()))?;
    }
    Ok(applied)
}

pub fn backend_of(conn: &DbConn) -> Backend {
    match conn {
        DbConn::Sqlite(_) => Backend::Sqlite,
        DbConn::Postgresql(_) => Backend::Postgres,
    }
}

/// Runs blocking Diesel work on actix's blocking pool with a pooled connection, within
/// the request time limit.
pub async fn run<T, F>(pool: &Pool, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    on_blocking_pool(pool, move |conn| {
        let _deadline = limit::within(limit::budget());
        f(conn)
    })
    .await
}

/// [`run`] for a background job that reads a whole organization in one call (the
/// duplicate scan): no time limit on SQLite, and on PostgreSQL none for its statements.
pub async fn run_unbounded<T, F>(pool: &Pool, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    on_blocking_pool(pool, move |conn| {
        let _unbounded = limit::unbounded();
        if let DbConn::Postgresql(c) = &mut *conn {
            c.batch_execute("SET statement_timeout = 0")?;
        }
        let out = f(conn);
        if let DbConn::Postgresql(c) = &mut *conn {
            c.batch_execute(&pg_timeout(limit::budget()))?;
        }
        out
    })
    .await
}

async fn on_blocking_pool<T, F>(pool: &Pool, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConn) -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool
            .get()
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        f(&mut conn)
    })
    .await
    .map_err(|e| AppError::Internal(format!("blocking task failed: {e}")))?
}

/// Runs `f` in a transaction. On SQLite the outermost one starts with `BEGIN IMMEDIATE`:
/// it takes the write lock up front, so a second writer waits out `busy_timeout` instead
/// of failing at once with "database is locked" when its deferred read lock cannot be
/// upgraded (SQLite cannot wait there: it would deadlock). Nested calls are savepoints, as
/// with Diesel's own `transaction`, which every store uses through this function.
///
/// On SQLite the outermost transaction of a pooled database runs on the database's one
/// writer connection, not on `conn` (`f` gets the connection to use as its argument), and
/// may share its commit with the writers queued behind it ([`writer`]).
pub fn transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    outermost(conn, f, false)
}

fn in_transaction(c: &mut SqliteConnection) -> diesel::QueryResult<bool> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    Ok(
        <AnsiTransactionManager as TransactionManager<SqliteConnection>>::transaction_manager_status_mut(c)
            .transaction_depth()?
            .is_some(),
    )
}

/// [`transaction`] for a write that may take a while (an import chunk): on SQLite it does
/// not share a commit with the requests before it, which would wait for it (see `writer`).
pub fn long_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    outermost(conn, f, true)
}

/// A savepoint inside a transaction; otherwise, on SQLite, the writer's transaction, long
/// when asked or when no request deadline bounds this thread's work.
fn outermost<T, E, F>(conn: &mut DbConn, f: F, long: bool) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let DbConn::Sqlite(c) = conn else {
        return conn.transaction(f);
    };
    if in_transaction(c)? {
        return conn.transaction(f);
    }
    writer::transaction(conn, f, long || !limit::bounded())
}

/// A round trip to the database (the readiness probe).
pub fn ping(conn: &mut DbConn) -> diesel::QueryResult<()> {
    conn.batch_execute("SELECT 1")
}

/// Gives the query planner fresh statistics after a bulk load (seed, import). Issue 15:
/// nothing ran `ANALYZE`, and at 1M clients SQLite without statistics took 86 s for a
/// custom-field filter. On SQLite a full analysis (about 4 s at a million clients): an
/// approximate one (`analysis_limit`) samples a thousand rows of one organization,
/// concludes `organization_id` is nearly unique and misleads the planner on every index
/// that starts with it. On PostgreSQL only our growing tables, by unqualified name (so in
/// our schema): a bare `ANALYZE` would lock every table of the database, other schemas'
/// included, and deadlocked with their writers.
pub fn refresh_statistics(conn: &mut DbConn) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Sqlite(_) => conn.batch_execute("PRAGMA analysis_limit = 0; ANALYZE;"),
        DbConn::Postgresql(_) => analyze_our_tables(conn),
    }
}

/// `ANALYZE` of every table of our schema, by name. why: naming a few missed `client_tags`,
/// which PostgreSQL then scanned whole for each page of the client list (55 ms at a
/// million clients) where autovacuum does not run; a bare `ANALYZE` locks other schemas.
fn analyze_our_tables(conn: &mut DbConn) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Table {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let tables: Vec<Table> = diesel::sql_query(
        "SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = current_schema()",
    )
    .load(conn)?;
    if tables.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = tables.into_iter().map(|t| t.name).collect();
    conn.batch_execute(&format!("ANALYZE {}", names.join(", ")))
}

/// Keeps the statistics current at start and once an hour: on SQLite `PRAGMA optimize`
/// analyses only the tables that changed much since their last analysis (so it costs
/// nothing most hours and never holds the write lock for a full pass without cause).
pub fn keep_statistics(conn: &mut DbConn) -> diesel::QueryResult<()> {
    match conn {
        DbConn::Sqlite(_) => conn.batch_execute("PRAGMA analysis_limit = 0; PRAGMA optimize;"),
        DbConn::Postgresql(_) => analyze_our_tables(conn),
    }
}

/// Inside a transaction, takes the row's write lock before it is read, so a concurrent
/// read-modify-write waits for ours instead of losing its compare-and-set. PostgreSQL only:
/// on SQLite the write transaction (`BEGIN IMMEDIATE`) already holds the database's lock.
/// `table` is one of our table names, never input.
pub fn lock_row(conn: &mut DbConn, table: &'static str, id: &str) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    if let DbConn::Postgresql(_) = conn {
        diesel::sql_query(format!("SELECT 1 FROM {table} WHERE id = $1 FOR UPDATE"))
            .bind::<diesel::sql_types::Text, _>(id)
            .execute(conn)?;
    }
    Ok(())
}

/// Now, truncated to microseconds so both backends store and return the same value.
pub fn now() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

diesel::define_sql_function! {
    /// `lower(text)`, the same on both backends; case-insensitive matching uses it
    /// because LIKE is case-sensitive on PostgreSQL and not on SQLite.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Writes a slice of one table's `Insertable` rows in as few statements as the backend
/// allows: multi-row inserts of `$per` rows on SQLite (it binds at most 32,766 parameters a
/// statement, so `$per` × columns must stay under that), one binary `COPY` on PostgreSQL
/// (nothing to parse or plan). why a macro: Diesel's `MultiConnection` compiles no
/// multi-row insert, and the bounds a function over every table would need are longer than
/// the three lines it saves.
macro_rules! append_rows {
    ($conn:expr, $table:path, $rows:expr, $per:expr) => {{
        let rows = $rows;
        match $conn {
            $crate::db::DbConn::Sqlite(c) => {
                for part in rows.chunks($per) {
                    diesel::insert_into($table).values(part).execute(c)?;
                }
            }
            $crate::db::DbConn::Postgresql(c) => {
                if !rows.is_empty() {
                    diesel::copy_from($table).from_insertable(rows).execute(c)?;
                }
            }
        }
    }};
}
pub(crate) use append_rows;

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Mmap {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        mmap_size: i64,
    }

    #[derive(diesel::QueryableByName)]
    struct Autocheckpoint {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        wal_autocheckpoint: i64,
    }

    /// Pooled SQLite connections read through the memory map and leave the log to the
    /// background checkpointer, which copies committed pages into the database file
    /// without any writer doing it.
    #[test]
    fn sqlite_pages_are_mapped_and_checkpointed_in_the_background() {
        let dir = std::env::temp_dir().join(format!("rapport-ckpt-{}", uuid::Uuid::new_v4()));
        let file = dir.join("c.db");
        let target = DbTarget::sqlite_file(&file);
        let pool = connect(&target, 2).unwrap();
        let mut conn = pool.get().unwrap();
        let mapped = diesel::sql_query("PRAGMA mmap_size").get_result::<Mmap>(&mut *conn);
        assert!(mapped.unwrap().mmap_size > 0);
        let threshold =
            diesel::sql_query("PRAGMA wal_autocheckpoint").get_result::<Autocheckpoint>(&mut *conn);
        assert_eq!(threshold.unwrap().wal_autocheckpoint, 10_000);
        conn.batch_execute(
            "CREATE TABLE t (v TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO t SELECT hex(randomblob(500)) FROM n;",
        )
        .unwrap();
        // About 2 MB sits in the log, under the writers' own threshold (~40 MB).
        let size = || std::fs::metadata(&file).unwrap().len();
        assert!(size() < 1_000_000, "{}", size());
        spawn_checkpointer(&target).unwrap();
        let start = std::time::Instant::now();
        while size() < 1_000_000 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(size() >= 1_000_000, "not checkpointed: {} bytes", size());
        drop(conn);
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }

    #[derive(diesel::QueryableByName)]
    struct CacheSize {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        cache_size: i64,
    }

    fn count(conn: &mut DbConn) -> i64 {
        diesel::sql_query("SELECT count(*) AS n FROM t")
            .get_result::<Count>(conn)
            .unwrap()
            .n
    }

    /// Write transactions of a pooled SQLite database run on its one writer connection
    /// (its page cache is the large one), whichever pooled connection asks; what they
    /// commit is read at once from the others; sixteen threads writing at once all
    /// succeed; and a transaction that failed or panicked half-way leaves nothing behind
    /// and the next one works.
    #[test]
    fn sqlite_writes_share_one_writer_connection() {
        let dir = std::env::temp_dir().join(format!("rapport-writer-{}", uuid::Uuid::new_v4()));
        let pool = connect(&DbTarget::sqlite_file(&dir.join("w.db")), 4).unwrap();
        pool.get()
            .unwrap()
            .batch_execute("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        let cache = |conn: &mut DbConn| {
            diesel::sql_query("PRAGMA cache_size")
                .get_result::<CacheSize>(conn)
                .map(|c| c.cache_size)
        };
        let mut conn = pool.get().unwrap();
        let inside = transaction(&mut conn, |c| {
            diesel::sql_query("INSERT INTO t (v) VALUES (1)").execute(c)?;
            cache(c)
        })
        .unwrap();
        assert_eq!(inside, -i64::from(writer::WRITER_CACHE_KIB));
        assert_ne!(
            cache(&mut conn).unwrap(),
            inside,
            "the pooled connection wrote"
        );
        assert_eq!(count(&mut conn), 1);
        drop(conn);

        let threads: Vec<_> = (0..16)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    // Requests' writes, which may share a commit.
                    let _deadline = limit::within(Duration::from_secs(60));
                    for _ in 0..20 {
                        let mut conn = pool.get().unwrap();
                        transaction(&mut conn, |c| {
                            diesel::sql_query("INSERT INTO t (v) VALUES (2)").execute(c)
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut conn = pool.get().unwrap();
        assert_eq!(count(&mut conn), 321);

        let failed: Result<(), diesel::result::Error> = transaction(&mut conn, |c| {
            diesel::sql_query("INSERT INTO t (v) VALUES (3)").execute(c)?;
            diesel::sql_query("INSERT INTO t (v) VALUES (NULL)").execute(c)?;
            Ok(())
        });
        assert!(failed.is_err());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = transaction(&mut conn, |c| -> diesel::QueryResult<()> {
                diesel::sql_query("INSERT INTO t (v) VALUES (4)").execute(c)?;
                panic!("half-way");
            });
        }));
        assert!(panicked.is_err());
        transaction(&mut conn, |c| {
            diesel::sql_query("INSERT INTO t (v) VALUES (5)").execute(c)
        })
        .unwrap();
        assert_eq!(count(&mut conn), 322);
        drop(conn);
        drop(pool);
        let _ = std::fs::remove_dir_all(dir);
    }
}
