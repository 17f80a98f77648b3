//! The SQLite backend: one file, WAL, every write one `BEGIN IMMEDIATE` transaction.
//!
//! Several processes may share one file (the CLI beside a running gate, several gates on
//! one machine). None of them may fail because of another's lock:
//! - a new store is built under a private name and linked into place, so no process ever
//!   sees a half-initialised file and creators never race on the schema
//!   ([`create`]);
//! - opening a store whose schema is current only reads (no journal-mode switch, no
//!   migration transaction);
//! - writers take the write lock before reading (`BEGIN IMMEDIATE`), so no read
//!   transaction ever has to upgrade;
//! - the busy answers SQLite gives without waiting on its busy handler (a WAL recovery in
//!   progress, a lock held by a connection closing the WAL, a journal-mode switch) are
//!   retried until [`StoreOptions::busy_timeout`] has passed ([`retry`]).
//!
//! Queries live in [`grants`] and [`events`], one function per query, so a change to a
//! table touches one place.

mod create;
mod events;
mod grants;
mod migrate;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::Limits;
use crate::address::LocalPartCase;
use crate::delegation::address;
use crate::error::{AddressField, StoreError};
use crate::schema::StoreInit;

use crate::retry::retry;

/// `PRAGMA synchronous` setting.
///
/// With WAL, `Normal` already keeps every committed transaction across a
/// process crash (SIGKILL): the commit has written the WAL frames to the
/// operating system before it returns, and the OS keeps them. Only an OS
/// crash or power loss can drop the last few commits (the file stays
/// consistent). `Full` also fsyncs the WAL on every commit, surviving
/// power loss at a large cost in commits per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// Durable across process crashes (default).
    #[default]
    Normal,
    /// Durable across power loss.
    Full,
}

/// How to open a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long to wait for another process's lock before
    /// [`StoreError::Busy`]. Default 5 s.
    pub busy_timeout: Duration,
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// Input bounds.
    pub limits: Limits,
    /// Local-part comparison; must stay the same for a database's life.
    pub local_part_case: LocalPartCase,
    /// Create the file if missing (default true).
    pub create: bool,
    /// Run `PRAGMA quick_check` on open (reads the whole file).
    pub check_integrity_on_open: bool,
    /// Page cache per connection (`PRAGMA cache_size`). Default 64 MiB:
    /// SQLite's 2 MiB default makes random lookups in a large file go to
    /// the operating system for most pages.
    pub cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::Normal,
            limits: Limits::default(),
            local_part_case: LocalPartCase::Insensitive,
            create: true,
            check_integrity_on_open: false,
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Delegation and event state in one SQLite file, safe for several
/// processes at once (WAL; every write is one `BEGIN IMMEDIATE`
/// transaction, retried while SQLite answers busy within the busy timeout).
pub struct SqliteStore {
    connection: Mutex<Connection>,
    limits: Limits,
    case: LocalPartCase,
    busy_timeout: Duration,
}

/// Maps a SQLite failure onto the typed error.
pub(crate) fn db(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt,
        Some(ErrorCode::DiskFull) => StoreError::Full,
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::PermissionDenied
            | ErrorCode::FileLockingProtocolFailed,
        ) => StoreError::Unavailable(Box::new(message_only(&error))),
        _ => StoreError::Backend(Box::new(message_only(&error))),
    }
}

/// SQLite's own message without its cause chain: rusqlite's error already shows the text of
/// the `ffi::Error` it wraps ("unable to open database file"), and chaining both would
/// print it twice, the second time as "Error code 14: Unable to open the database file".
fn message_only(error: &rusqlite::Error) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

/// A value in the file that this code never writes.
pub(crate) fn corrupt<T>(_: T) -> StoreError {
    StoreError::Corrupt
}

impl SqliteStore {
    /// Opens (creating if allowed) the database at `path`, applies pending
    /// migrations and refuses files from a newer schema. Without
    /// [`StoreOptions::create`] a missing file is [`StoreError::FileNotFound`].
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        if options.create {
            create::create_if_missing(path, options)?;
        } else if matches!(path.try_exists(), Ok(false)) {
            // Decided here rather than from SQLite's "unable to open database file",
            // which also stands for a permission or directory problem.
            return Err(StoreError::FileNotFound);
        }
        let connection = open_existing(path)?;
        Self::setup(connection, options, true)
    }

    /// Creates the store at `path` if missing, or migrates an existing one to
    /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) (`imipsec store init`). Says which of the
    /// two happened.
    pub fn init(path: &Path, options: &StoreOptions) -> Result<(Self, StoreInit), StoreError> {
        let created = create::create_if_missing(path, options)?;
        let connection = open_existing(path)?;
        connection.busy_timeout(options.busy_timeout).map_err(db)?;
        let found = retry(options.busy_timeout, || migrate::user_version(&connection))?;
        let store = Self::setup(connection, options, true)?;
        let outcome = match found {
            _ if created => StoreInit::Created,
            0 => StoreInit::Created,
            found if found == crate::SCHEMA_VERSION => StoreInit::Current,
            from => StoreInit::Migrated { from },
        };
        Ok((store, outcome))
    }

    /// A private in-memory database (tests, dry runs).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::open_in_memory_with(&StoreOptions::default())
    }

    /// A private in-memory database with options.
    pub fn open_in_memory_with(options: &StoreOptions) -> Result<Self, StoreError> {
        let connection = Connection::open_in_memory().map_err(db)?;
        Self::setup(connection, options, false)
    }

    fn setup(
        mut connection: Connection,
        options: &StoreOptions,
        file: bool,
    ) -> Result<Self, StoreError> {
        let timeout = options.busy_timeout;
        connection.busy_timeout(timeout).map_err(db)?;
        if file {
            retry(timeout, || ensure_wal(&connection))?;
        }
        let synchronous = match options.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        connection
            .pragma_update(None, "synchronous", synchronous)
            .map_err(db)?;
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(db)?;
        // A negative cache_size counts KiB.
        let cache_kib = i64::try_from(options.cache_bytes / 1024).unwrap_or(i64::MAX);
        connection
            .pragma_update(None, "cache_size", -cache_kib)
            .map_err(db)?;
        connection.set_prepared_statement_cache_capacity(32);
        retry(timeout, || migrate::migrate(&mut connection))?;
        let store = SqliteStore {
            connection: Mutex::new(connection),
            limits: options.limits.clone(),
            case: options.local_part_case,
            busy_timeout: timeout,
        };
        if options.check_integrity_on_open {
            store.check("quick_check")?;
        }
        Ok(store)
    }

    /// Runs `work` in one write transaction (`BEGIN IMMEDIATE`: the write lock is taken
    /// before anything is read, so two processes never judge against the same old state
    /// and no read transaction has to upgrade), committed when `work` succeeds. The whole
    /// transaction is run again while SQLite answers busy, within the busy timeout.
    fn write<T>(
        &self,
        mut work: impl FnMut(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection();
        retry(self.busy_timeout, || {
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let value = work(&tx)?;
            tx.commit().map_err(db)?;
            Ok(value)
        })
    }

    /// Runs `work` in one read transaction (one consistent snapshot, no write lock),
    /// again while SQLite answers busy, within the busy timeout.
    fn read<T>(
        &self,
        mut work: impl FnMut(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection();
        retry(self.busy_timeout, || {
            let tx = connection.transaction().map_err(db)?;
            work(&tx)
        })
    }

    /// Runs one statement's worth of reading outside a transaction, again while SQLite
    /// answers busy.
    fn query<T>(
        &self,
        mut work: impl FnMut(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let connection = self.connection();
        retry(self.busy_timeout, || work(&connection))
    }

    /// Runs `PRAGMA integrity_check` (reads the whole file).
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        self.check("integrity_check")
    }

    fn check(&self, pragma: &str) -> Result<(), StoreError> {
        let first: String = self.query(|connection| {
            connection
                .pragma_query_value(None, pragma, |row| row.get(0))
                .map_err(db)
        })?;
        if first == "ok" {
            Ok(())
        } else {
            Err(StoreError::IntegrityCheckFailed {
                first_problem: first,
            })
        }
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.query(migrate::user_version)
    }

    /// A poisoned lock only means another thread panicked while holding
    /// it; any transaction it had open was rolled back on unwind, so the
    /// connection is still consistent and is reused.
    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn address(&self, text: &str, field: AddressField) -> Result<String, StoreError> {
        address(text, field, self.case, &self.limits)
    }
}

/// Opens an existing file read-write; never creates one (creation is [`create`]'s).
fn open_existing(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).map_err(db)
}

/// Puts the file in WAL mode unless it already is. Asking first means opening a store
/// that is already in WAL mode (every store this code created) takes no lock: the switch
/// needs an exclusive one, and SQLite answers busy at once when another connection reads.
/// Reading the mode reads the header: a garbage file fails here as Corrupt.
fn ensure_wal(connection: &Connection) -> Result<(), StoreError> {
    let mode: String = connection
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .map_err(db)?;
    if mode.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    let _mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db)?;
    Ok(())
}
