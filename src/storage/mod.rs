//! Storage: one diesel code path for SQLite and PostgreSQL, a connection pool, embedded
//! migrations, and the bridge that keeps blocking database calls off actix's async workers.

pub mod client_directory;
pub mod clients;
pub mod codes;
pub mod columns;
pub mod events;
pub mod grants;
pub mod holdings;
pub mod login_failures;
pub mod pushed_requests;
pub mod schema;
pub mod scopes;
pub mod sessions;
pub mod signing_keys;
pub mod tokens;
pub mod used_jtis;
pub mod users;
pub mod webhooks;
pub mod writer;

use anyhow::Context;
use diesel::connection::{CacheSize, SimpleConnection};
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::time::Duration;

/// What storage can fail with. Storage never picks an API error code: a service decides what a
/// unique violation means (`client_exists`, `user_exists`, …), and `error.rs` maps the rest.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An insert met an existing row with the same unique key.
    #[error("a row with the same unique key exists")]
    UniqueViolation,
    /// A stored value does not parse: the database was edited by hand or by a newer version.
    /// `column` names the column, or the kind of value when a typed column failed to decode
    /// (`detail` then names the column).
    #[error("stored {column} is invalid: {detail}")]
    CorruptColumn { column: &'static str, detail: String },
    /// A value to be written does not fit its column. The domain's bounds should have refused
    /// it, so this is a bug, reported instead of storing something else.
    #[error("{value} does not fit {column}")]
    OutOfRange { column: &'static str, value: u64 },
    /// The database could not be reached (connection lost, pool exhausted).
    #[error("the database is unreachable: {0}")]
    Unreachable(String),
    #[error("database error: {0}")]
    Database(diesel::result::Error),
    /// The blocking task running the work was cancelled or panicked.
    #[error("the database work was interrupted: {0}")]
    Interrupted(String),
}

impl From<diesel::result::Error> for StorageError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::UniqueViolation,
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => Self::Unreachable(info.message().to_string()),
            Error::DeserializationError(cause) => match corrupt_column(cause.as_ref()) {
                Some(corrupt) => corrupt,
                None => Self::Database(Error::DeserializationError(cause)),
            },
            other => Self::Database(other),
        }
    }
}

/// The `CorruptColumn` behind a failed row decoding, when a typed column (`columns.rs`) refused
/// its stored value; diesel wraps that refusal in a `DeserializeFieldError` naming the column.
fn corrupt_column(cause: &(dyn std::error::Error + 'static)) -> Option<StorageError> {
    let mut column = None;
    let mut error = Some(cause);
    while let Some(current) = error {
        if let Some(field) = current.downcast_ref::<diesel::result::DeserializeFieldError>() {
            column = column.or(field.field_name.clone());
        }
        if let Some(invalid) = current.downcast_ref::<columns::InvalidStoredValue>() {
            let detail = match column {
                Some(column) => format!("{} (column {column})", invalid.detail),
                None => invalid.detail.clone(),
            };
            return Some(StorageError::CorruptColumn { column: invalid.kind, detail });
        }
        error = current.source();
    }
    None
}

impl From<diesel::r2d2::PoolError> for StorageError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Unreachable(error.to_string())
    }
}

/// A connection to either backend. SQLite is listed last because it accepts any string.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

pub type DbPool = Pool<ConnectionManager<DbConnection>>;
pub type PooledDb = PooledConnection<ConnectionManager<DbConnection>>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// An arbitrary constant naming our migration lock among PostgreSQL advisory locks.
const MIGRATION_LOCK_KEY: i64 = 0x0005_c09e_6a7e;

/// What diesel's connection manager expects: a plain path for SQLite, the URL for PostgreSQL.
fn connection_string(database_url: &str) -> String {
    match database_url.strip_prefix("sqlite://") {
        Some(path) => path.to_string(),
        None => database_url.to_string(),
    }
}

pub fn is_postgres(database_url: &str) -> bool {
    database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")
}

/// How each new pooled connection is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSetup {
    /// Whether diesel keeps named prepared statements on PostgreSQL connections. A pooler in
    /// transaction mode (pgbouncer before 1.21, or later without `max_prepared_statements`)
    /// hands each transaction to whichever server connection is free, where a statement
    /// prepared on another one does not exist, or one of the same name from another client
    /// does. Without the cache, diesel sends every query as an unnamed statement, parsed and
    /// executed in one round trip (PQsendQueryParams), which any pooler passes through.
    pub postgres_statement_cache: bool,
}

impl Default for ConnectionSetup {
    fn default() -> Self {
        Self { postgres_statement_cache: true }
    }
}

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for ConnectionSetup {
    /// Runs on every new connection before the pool hands it out, so before its first health
    /// check: on SQLite, WAL so readers never block the writer, a busy timeout instead of
    /// immediate "database is locked", and enforced foreign keys; on PostgreSQL, the
    /// statement cache setting.
    fn on_acquire(&self, connection: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        match connection {
            DbConnection::Sqlite(sqlite) => sqlite
                .batch_execute(
                    // The busy timeout first: switching to WAL takes a lock that the pool's
                    // other new connections may hold at that very moment.
                    // The page cache per connection is 512 KiB instead of 2 MiB: the file's pages
                    // stay in the OS cache anyway, and a dozen connections each filling 2 MiB
                    // made most of the server's memory (issue 11). Automatic checkpoints only
                    // past 20,000 pages (80 MiB), as a safety net: at the default 1,000 they
                    // ran inside a commit every second or so, and their fsync stalled the group
                    // writer and every request behind it. The server checkpoints on its own
                    // thread instead (`Database::checkpoint`); the log file is cut back to
                    // 64 MiB when it restarts.
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -512; \
                     PRAGMA wal_autocheckpoint = 20000; PRAGMA journal_size_limit = 67108864;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?,
            DbConnection::Postgresql(pg) => {
                if !self.postgres_statement_cache {
                    pg.set_prepared_statement_cache_size(CacheSize::Disabled);
                }
            }
        }
        Ok(())
    }
}

pub fn build_pool(database_url: &str, max_size: u32, setup: ConnectionSetup) -> anyhow::Result<DbPool> {
    let manager = ConnectionManager::<DbConnection>::new(connection_string(database_url));
    Pool::builder()
        .max_size(max_size)
        // A health query on every checkout costs a round trip per request. SQLite connections
        // are to a local file and never go stale; PostgreSQL ones can (a server restart).
        .test_on_check_out(is_postgres(database_url))
        .connection_timeout(Duration::from_secs(5))
        .connection_customizer(Box::new(setup))
        .build(manager)
        .with_context(|| format!("cannot open the database at {}", redact(database_url)))
}

/// The URL without a password, for messages and logs.
pub fn redact(database_url: &str) -> String {
    match (database_url.find("://"), database_url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &database_url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &database_url[..scheme_end + 3], user, &database_url[at..]),
                None => database_url.to_string(),
            }
        }
        _ => database_url.to_string(),
    }
}

/// Runs pending migrations; returns how many ran.
pub fn run_migrations(connection: &mut DbConnection) -> anyhow::Result<usize> {
    match connection {
        DbConnection::Postgresql(pg) => run_postgres_migrations(pg, POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(sqlite) => sqlite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|versions| versions.len())
            .map_err(|error| anyhow::anyhow!("migration failed: {error}")),
    }
}

/// Runs the pending migrations of `source` on PostgreSQL, where several instances may start at
/// once: in one transaction that first takes a transaction-scoped advisory lock, so the others
/// wait for it and then find nothing pending. The commit or rollback releases the lock on the
/// very server connection that took it, which holds behind a pooler in transaction mode too
/// (there a session-level lock and its unlock may land on different server connections, and
/// the lock stays behind on one that other clients get). diesel runs each migration in its own
/// transaction, here a savepoint: a failing migration rolls back the ones before it as well,
/// so the next start retries from where the database was. A migration that cannot run inside
/// a transaction (`CREATE INDEX CONCURRENTLY`) would need another scheme.
pub fn run_postgres_migrations(
    pg: &mut diesel::PgConnection,
    source: impl MigrationSource<diesel::pg::Pg>,
) -> anyhow::Result<usize> {
    pg.transaction(|pg| {
        pg.batch_execute(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))?;
        pg.run_pending_migrations(source)
            .map(|versions| versions.len())
            .map_err(|error| anyhow::anyhow!("migration failed: {error}"))
    })
}

/// Of `PRAGMA wal_checkpoint`'s answer, the frames in the log.
#[derive(diesel::QueryableByName)]
struct CheckpointResult {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

/// 16 MiB of 4 KiB pages: the smaller the log when it is cut, the shorter the writer waits.
const LOG_FRAMES_BEFORE_TRUNCATE: i32 = 4_096;

/// The pool's connections at one moment (r2d2's `State`), for the metrics scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open, idle or handed out.
    pub open: u32,
    pub idle: u32,
    /// How many the pool may open.
    pub max: u32,
}

/// The pool plus the blocking bridge. Cloning is cheap.
#[derive(Clone)]
pub struct Database {
    pool: DbPool,
    /// The SQLite file, when it is one: the token paths read it on their own thread.
    sqlite_path: Option<std::sync::Arc<str>>,
    /// Started at the first write, so CLI commands start no writer thread.
    writer: std::sync::Arc<std::sync::OnceLock<writer::GroupWriter>>,
}

impl Database {
    pub fn new(pool: DbPool, database_url: &str) -> Self {
        let sqlite_path = (!is_postgres(database_url)).then(|| connection_string(database_url).into());
        Self { pool, sqlite_path, writer: Default::default() }
    }

    /// A pool whose connections are set up the default way.
    pub fn connect(database_url: &str, pool_size: u32) -> anyhow::Result<Self> {
        Self::connect_with(database_url, pool_size, ConnectionSetup::default())
    }

    pub fn connect_with(database_url: &str, pool_size: u32, setup: ConnectionSetup) -> anyhow::Result<Self> {
        Ok(Self::new(build_pool(database_url, pool_size, setup)?, database_url))
    }

    /// Runs `work` in a transaction and returns its answer once committed: on SQLite through
    /// the group commit (see `writer`), on PostgreSQL in a transaction of its own.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StorageError> + Send + 'static,
    {
        if self.sqlite_path.is_none() {
            // PostgreSQL takes concurrent writers well: each request commits its own
            // transaction from the blocking pool, rather than queue behind one writer thread
            // whose every statement is a network round trip.
            return self.run(move |connection| connection.transaction(work)).await;
        }
        let writer = match self.writer.get() {
            Some(writer) => writer,
            None => {
                let started = writer::GroupWriter::start(self.pool.clone())
                    .map_err(|error| StorageError::Interrupted(format!("cannot start the group writer: {error}")))?;
                // Two first writes may both start one; the loser's thread ends with its handle.
                self.writer.get_or_init(|| started)
            }
        };
        writer.write(work).await
    }

    /// Runs read-only `work`. On SQLite it runs right here, on the calling thread, with that
    /// thread's own read-only connection: a WAL reader never waits for the writer, and a
    /// lookup by key takes microseconds, less than handing the work to another thread and back.
    /// On PostgreSQL (a network round trip) it goes to the blocking pool like [`Database::run`].
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        match &self.sqlite_path {
            Some(path) => with_reader(path, work),
            None => self.run(work).await,
        }
    }

    /// A connection for synchronous code (CLI commands, startup).
    pub fn get(&self) -> anyhow::Result<PooledDb> {
        self.pool.get().context("no database connection available")
    }

    /// Runs `work` with a pooled connection on actix's blocking thread pool, never on an
    /// async worker: both `pool.get()` and every diesel call block.
    /// The caller's error type (the services' `AppError`) says what a pool or thread failure
    /// means to it, so storage does not depend on the HTTP error mapping.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
    {
        let pool = self.pool.clone();
        let ran = actix_web::web::block(move || {
            let mut connection = pool.get().map_err(StorageError::from)?;
            work(&mut connection)
        })
        .await;
        match ran {
            Ok(answer) => answer,
            Err(blocking) => Err(StorageError::Interrupted(blocking.to_string()).into()),
        }
    }

    /// Copies what the SQLite write-ahead log holds back into the database file, without
    /// waiting for readers or writers (a PASSIVE checkpoint); nothing on PostgreSQL. The server
    /// calls it every 200 ms, off the request paths. Durability does not depend on it: a
    /// committed transaction is in the log.
    pub async fn checkpoint(&self) -> Result<(), StorageError> {
        if self.sqlite_path.is_none() {
            return Ok(());
        }
        self.run(|connection| {
            let DbConnection::Sqlite(sqlite) = connection else { return Ok(()) };
            let passive: CheckpointResult = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(sqlite)?;
            // Under constant reads the log never restarts from its beginning (a reader always
            // holds a mark in it), so it would grow without end: past 16 MiB of frames, a
            // TRUNCATE checkpoint waits for the readers of the moment (microseconds) and
            // empties it. PASSIVE has already copied nearly everything by then.
            if passive.log > LOG_FRAMES_BEFORE_TRUNCATE {
                // TRUNCATE holds SQLite's write lock while it works. Taken through the gate,
                // the group writer queues on the mutex and resumes the moment it is done;
                // without it, the writer met a busy lock and slept in SQLite's busy handler
                // (1, 2, 5, 10 … ms), which was most of the 100 ms p99 of issuance.
                let _gate = SqliteWriteGate::enter();
                sqlite.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")?;
            }
            Ok(())
        })
        .await
    }

    /// How many pooled connections are open and idle now. Takes the pool's lock for a moment;
    /// the token paths never call it.
    pub fn pool_usage(&self) -> PoolUsage {
        let state = self.pool.state();
        PoolUsage { open: state.connections, idle: state.idle_connections, max: self.pool.max_size() }
    }

    /// Readiness: a trivial query answers.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.run(|connection| {
            connection.batch_execute("SELECT 1")?;
            Ok(())
        })
        .await
    }
}

thread_local! {
    /// Each thread's read-only SQLite connections, by file (tests run several servers, each on
    /// its own file, in one process).
    static READERS: std::cell::RefCell<std::collections::HashMap<std::sync::Arc<str>, DbConnection>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn with_reader<T, E, F>(path: &std::sync::Arc<str>, work: F) -> Result<T, E>
where
    E: From<StorageError>,
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
{
    READERS.with(|readers| {
        let mut readers = readers.borrow_mut();
        let connection = match readers.entry(std::sync::Arc::clone(path)) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(open_reader(path)?),
        };
        work(connection)
    })
}

/// A connection that can only read: a write through it fails instead of taking the lock on
/// an async worker.
fn open_reader(path: &str) -> Result<DbConnection, StorageError> {
    let mut connection = DbConnection::Sqlite(
        diesel::SqliteConnection::establish(path).map_err(|error| StorageError::Unreachable(error.to_string()))?,
    );
    connection.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA query_only = 1; PRAGMA cache_size = -512;")?;
    Ok(connection)
}

/// `work` as one unit, for a job of [`Database::write`] whose statements must land together (a
/// change and its audit event). The SQLite group writer runs its jobs in a shared transaction
/// without a savepoint each (issue 11), so here `work` gets one: a failure undoes the job's own
/// statements and no one else's. On PostgreSQL `Database::write` gives every job a transaction
/// of its own already, and a savepoint inside it would be two more round trips for nothing.
pub fn atomically<T, E, F>(connection: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match connection {
        DbConnection::Postgresql(_) => work(connection),
        DbConnection::Sqlite(_) => connection.transaction(work),
    }
}

/// A read-then-write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, taking the write
/// lock up front: deferred transactions that upgrade later fail with "database is locked"
/// under contention instead of waiting on the busy timeout.
pub fn write_transaction<T, E, F>(connection: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;

    let DbConnection::Sqlite(sqlite) = connection else {
        return connection.transaction(work);
    };
    let _gate = SqliteWriteGate::enter();
    // The enum's transaction manager delegates to the SQLite connection's own, so opening the
    // transaction on the inner connection is seen by every diesel call made through the enum.
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match work(connection) {
        Ok(value) => {
            Manager::commit_transaction(connection)?;
            Ok(value)
        }
        Err(error) => {
            Manager::rollback_transaction(connection)?;
            Err(error)
        }
    }
}

/// One SQLite writer at a time within this process. SQLite allows one writer anyway; letting
/// several connections race for its lock makes the losers sleep in SQLite's busy handler
/// (1, 2, 5, 10 … ms), which collapses throughput under load. Queuing on a mutex instead hands
/// the lock over at once. Other processes on the same file still meet the busy timeout.
/// Re-entrant per thread, so a write inside a write transaction does not deadlock.
pub struct SqliteWriteGate {
    guard: Option<std::sync::MutexGuard<'static, ()>>,
}

static SQLITE_WRITES: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    static HOLDS_SQLITE_GATE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl SqliteWriteGate {
    pub fn enter() -> Self {
        if HOLDS_SQLITE_GATE.with(|held| held.get()) {
            return Self { guard: None };
        }
        let guard = SQLITE_WRITES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        HOLDS_SQLITE_GATE.with(|held| held.set(true));
        Self { guard: Some(guard) }
    }

    /// The gate when `connection` is SQLite; nothing for PostgreSQL.
    pub fn for_connection(connection: &DbConnection) -> Option<Self> {
        matches!(connection, DbConnection::Sqlite(_)).then(Self::enter)
    }
}

impl Drop for SqliteWriteGate {
    fn drop(&mut self) {
        if self.guard.take().is_some() {
            HOLDS_SQLITE_GATE.with(|held| held.set(false));
        }
    }
}

pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(error, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}
