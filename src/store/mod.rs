//! PostgreSQL persistence: one module per table with the rows and the queries that use
//! them, as plain functions over `&mut PgConnection` so they compose inside one
//! transaction. Nothing here knows about HTTP.

pub(crate) mod audit;
pub(crate) mod authorization_codes;
pub(crate) mod browser_sessions;
pub(crate) mod clients;
pub(crate) mod consents;
pub mod denylist;
pub(crate) mod key_events;
pub(crate) mod redis_link;
pub(crate) mod refresh;
pub(crate) mod revocation_listener;
pub(crate) mod revocations;
pub(crate) mod rotation;
pub(crate) mod schema;
pub(crate) mod sessions;
pub(crate) mod signing_keys;
pub(crate) mod throttle;
pub(crate) mod users;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, PgConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL cannot be reached or the pool has no connection to give in time.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Query(#[from] DieselError),
    #[error("invalid stored data: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub(crate) fn is_foreign_key_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        )
    }

    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// An error type that database closures may return: it can carry a [`StoreError`] and
/// show it, so [`Db::run`] can tell a lost connection from an ordinary failure.
pub(crate) trait DbError: From<StoreError> + Send + 'static {
    fn store_error(&self) -> Option<&StoreError>;
}

impl DbError for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

/// A PostgreSQL connection that remembers when it has seen its server go away, so the
/// pool drops it instead of handing it out again. (diesel's own check only looks at
/// the transaction state, and testing every checkout would cost a round trip.)
pub(crate) struct PooledPg {
    conn: PgConnection,
    broken: bool,
}

pub(crate) struct PgManager {
    inner: r2d2::ConnectionManager<PgConnection>,
}

impl ManageConnection for PgManager {
    type Connection = PooledPg;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<PooledPg, r2d2::Error> {
        Ok(PooledPg {
            conn: self.inner.connect()?,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut PooledPg) -> Result<(), r2d2::Error> {
        self.inner.is_valid(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut PooledPg) -> bool {
        conn.broken || self.inner.has_broken(&mut conn.conn)
    }
}

pub(crate) type PgPool = r2d2::Pool<PgManager>;

/// The pool, and the one way the rest of the program talks to PostgreSQL: a closure
/// run on the blocking thread pool with a connection.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    /// Requests waiting for a connection right now.
    waiting: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Db {
    /// Builds the pool without connecting; connections are made on demand, so a
    /// PostgreSQL outage after start-up heals by itself.
    pub fn new(database_url: &str, max_size: u32, timeout: Duration) -> Self {
        let manager = PgManager {
            inner: r2d2::ConnectionManager::new(database_url),
        };
        let pool = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(0))
            .connection_timeout(timeout)
            .test_on_check_out(false)
            .error_handler(Box::new(LogPoolError))
            .build_unchecked(manager);
        Self {
            pool,
            waiting: Default::default(),
        }
    }

    pub(crate) async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: DbError,
    {
        use std::sync::atomic::Ordering;
        let pool = self.pool.clone();
        let waiting = std::sync::Arc::clone(&self.waiting);
        // The work runs on a blocking thread; it stays in the caller's span there, so
        // the spans and logs of a query sit under the operation that made it.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            waiting.fetch_add(1, Ordering::Relaxed);
            let pooled = pool.get();
            waiting.fetch_sub(1, Ordering::Relaxed);
            let mut pooled = pooled.map_err(|e| E::from(StoreError::Unavailable(e.to_string())))?;
            let result = f(&mut pooled.conn);
            if let Err(err) = &result {
                let suspicious = err
                    .store_error()
                    .is_some_and(|e| !is_ordinary_query_error(e));
                if suspicious && pooled.conn.batch_execute("SELECT 1").is_err() {
                    pooled.broken = true;
                    let reason = err.store_error().map(|e| e.to_string()).unwrap_or_default();
                    return Err(E::from(StoreError::Unavailable(reason)));
                }
            }
            result
        })
        .await
        .map_err(|e| {
            E::from(StoreError::Unavailable(format!(
                "database task failed: {e}"
            )))
        })?
    }

    /// Connections in use and idle, for metrics.
    pub(crate) fn state(&self) -> r2d2::State {
        self.pool.state()
    }

    pub(crate) fn max_size(&self) -> u32 {
        self.pool.max_size()
    }

    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// r2d2 reports failed connection attempts here; a database outage is a warning (the
/// requests it affects are answered 503), not a stream of errors.
#[derive(Debug)]
struct LogPoolError;

impl r2d2::HandleError<r2d2::Error> for LogPoolError {
    fn handle_error(&self, error: r2d2::Error) {
        tracing::warn!(%error, "cannot open a database connection");
    }
}

/// Errors that say something about the query, not about the connection.
fn is_ordinary_query_error(err: &StoreError) -> bool {
    match err {
        StoreError::Query(DieselError::NotFound) | StoreError::Corrupt(_) => true,
        StoreError::Query(DieselError::DatabaseError(kind, _)) => matches!(
            kind,
            DatabaseErrorKind::UniqueViolation
                | DatabaseErrorKind::ForeignKeyViolation
                | DatabaseErrorKind::CheckViolation
                | DatabaseErrorKind::NotNullViolation
                | DatabaseErrorKind::SerializationFailure
        ),
        _ => false,
    }
}

/// Creates the database named in `database_url` if it does not exist yet, connecting
/// to the server's `postgres` database to do so.
pub(crate) fn create_database_if_missing(database_url: &str) -> Result<(), StoreError> {
    let (name, admin_url) = database_and_admin_url(database_url)?;
    if PgConnection::establish(database_url).is_ok() {
        return Ok(());
    }
    let mut admin =
        PgConnection::establish(&admin_url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match admin.batch_execute(&format!("CREATE DATABASE {quoted}")) {
        Ok(()) => {
            tracing::info!(database = %name, "created the database");
            Ok(())
        }
        // Another instance created it first.
        Err(DieselError::DatabaseError(_, info)) if info.message().contains("already exists") => {
            Ok(())
        }
        Err(e) => Err(StoreError::Query(e)),
    }
}

/// The database `database_url` names, and the same URL naming the `postgres` database
/// instead. Read by hand: a URL with several hosts (`h1:5432,h2:5432`) is not one to
/// `url::Url`.
fn database_and_admin_url(database_url: &str) -> Result<(String, String), StoreError> {
    let unavailable = |why: &str| StoreError::Unavailable(format!("DATABASE_URL {why}"));
    let (scheme, rest) = database_url
        .split_once("://")
        .ok_or_else(|| unavailable("is not a URL"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let name = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| unavailable("names a database that is not UTF-8"))?
        .into_owned();
    if name.is_empty() {
        return Err(unavailable("names no database"));
    }
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    Ok((name, format!("{scheme}://{authority}/postgres{query}")))
}

/// Applies the migrations embedded in the binary. Safe to run from several instances
/// at once: an advisory lock makes them take turns.
pub(crate) fn run_migrations(conn: &mut PgConnection) -> Result<Vec<String>, StoreError> {
    // Any fixed number: the lock only serialises Tessera instances against each other.
    const MIGRATION_LOCK: i64 = 0x0074_6573_7365_7261;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(|v| v.to_string()).collect())
        .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")));
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
    applied
}

/// Creates the database if needed and applies migrations: what `serve` and every
/// CLI command do before anything else.
pub fn prepare_database(database_url: &str) -> Result<(), StoreError> {
    create_database_if_missing(database_url)?;
    let mut conn = PgConnection::establish(database_url)
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let applied = run_migrations(&mut conn)?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied database migrations");
    }
    Ok(())
}
