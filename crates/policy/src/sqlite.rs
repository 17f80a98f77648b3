//! The SQLite backend: one file, WAL, migrations, BEGIN IMMEDIATE writes.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior,
    params,
};

use crate::Limits;
use crate::address::LocalPartCase;
use crate::delegation::{
    self, DelegationStore, Grant, GrantFilter, GrantId, GrantScope, HistoryAction, HistoryEntry,
    NewGrant, Revocation, ValidGrant, address, validate_grant, validate_revocation,
};
use crate::error::{AddressField, StoreError};
use crate::event::{
    self, EventRow, EventState, EventStateStore, EventUpdate, MessageDigest, Pending, ReplyRow,
    ReplyState, StateDecision, StateFinding, StateSource,
};
use crate::method::{Method, MethodSet, Side};
use crate::timestamp::Timestamp;

/// Newest schema version this build writes and understands
/// (kept in `PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// `PRAGMA application_id` marking our files ("IMIP").
const APPLICATION_ID: i64 = 0x494d_4950;

/// Migration `n` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE grants (
    id            INTEGER PRIMARY KEY,
    principal     TEXT NOT NULL,
    delegate      TEXT NOT NULL,
    methods       INTEGER,            -- NULL: every method; else a bit set
    side          TEXT CHECK (side IN ('organizer', 'attendee')),
    allowed       INTEGER NOT NULL CHECK (allowed BETWEEN 1 AND 255),
    not_before    INTEGER,
    until         INTEGER,
    note          TEXT,
    recorded_by   TEXT NOT NULL,
    recorded_at   INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoked_by    TEXT,
    revoke_reason TEXT,
    CHECK (until IS NULL OR not_before IS NULL OR until > not_before)
);
-- Covers the whole `is_allowed` predicate: lookups never touch the table.
CREATE INDEX grants_lookup
    ON grants (principal, delegate, allowed, not_before, until, revoked_at);
CREATE INDEX grants_by_delegate ON grants (delegate);
CREATE TABLE grant_history (
    seq      INTEGER PRIMARY KEY,
    grant_id INTEGER NOT NULL REFERENCES grants (id),
    action   TEXT NOT NULL CHECK (action IN ('granted', 'imported', 'revoked')),
    at       INTEGER NOT NULL,
    by       TEXT NOT NULL,
    detail   TEXT
);
CREATE INDEX grant_history_by_grant ON grant_history (grant_id);
CREATE TABLE events (
    scope       TEXT NOT NULL,
    uid         TEXT NOT NULL,
    rid         TEXT NOT NULL,         -- '' for the master component
    organizer   TEXT,
    sequence    INTEGER,
    dtstamp     INTEGER,
    method      TEXT,
    attendees   TEXT NOT NULL,         -- JSON array of addresses
    signed      INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (scope, uid, rid)
) WITHOUT ROWID;
CREATE TABLE replies (
    scope       TEXT NOT NULL,
    uid         TEXT NOT NULL,
    rid         TEXT NOT NULL,
    attendee    TEXT NOT NULL,
    sequence    INTEGER NOT NULL,
    dtstamp     INTEGER NOT NULL,
    signed      INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (scope, uid, rid, attendee)
) WITHOUT ROWID;
",
    r"
-- Version 2 (issue #15): the messages whose event state was recorded, per recipient scope,
-- keyed by the SHA-256 of the received bytes, so that the retry of a message whose delivery
-- failed after recording is accepted again instead of refused as its own replay.
CREATE TABLE recorded_messages (
    scope       TEXT NOT NULL,
    digest      BLOB NOT NULL CHECK (length(digest) = 32),
    outcome     TEXT NOT NULL CHECK (outcome IN ('recorded')),
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (scope, digest)
) WITHOUT ROWID;
",
];

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

/// What [`SqliteStore::init`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreInit {
    /// A new, empty store was created (or an empty file initialised).
    Created,
    /// An existing store was migrated from schema version `from`.
    Migrated {
        /// The schema version found.
        from: i64,
    },
    /// The store was already at [`SCHEMA_VERSION`]; nothing changed.
    Current,
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
/// transaction).
pub struct SqliteStore {
    connection: Mutex<Connection>,
    limits: Limits,
    case: LocalPartCase,
}

/// Maps a SQLite failure onto the typed error.
fn db(error: rusqlite::Error) -> StoreError {
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
fn corrupt<T>(_: T) -> StoreError {
    StoreError::Corrupt
}

impl SqliteStore {
    /// Opens (creating if allowed) the database at `path`, applies pending
    /// migrations and refuses files from a newer schema. Without
    /// [`StoreOptions::create`] a missing file is [`StoreError::FileNotFound`].
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        Self::open_connection(path, options)
            .and_then(|connection| Self::setup(connection, options, true))
    }

    fn open_connection(path: &Path, options: &StoreOptions) -> Result<Connection, StoreError> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if options.create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
            if let Some(parent) = path
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                && matches!(parent.try_exists(), Ok(false))
            {
                return Err(StoreError::Unavailable(Box::new(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("directory {} does not exist", parent.display()),
                ))));
            }
        } else if matches!(path.try_exists(), Ok(false)) {
            // Decided here rather than from SQLite's "unable to open database file",
            // which also stands for a permission or directory problem.
            return Err(StoreError::FileNotFound);
        }
        Connection::open_with_flags(path, flags).map_err(db)
    }

    /// Creates the store at `path` if missing, or migrates an existing one to
    /// [`SCHEMA_VERSION`] (`imipsec store init`). Says which of the two happened.
    pub fn init(path: &Path, options: &StoreOptions) -> Result<(Self, StoreInit), StoreError> {
        let existed = path.try_exists().unwrap_or(true);
        let options = StoreOptions {
            create: true,
            ..options.clone()
        };
        let connection = Self::open_connection(path, &options)?;
        let found = user_version(&connection)?;
        let store = Self::setup(connection, &options, true)?;
        let outcome = match (existed, found) {
            (false, _) => StoreInit::Created,
            (true, found) if found == SCHEMA_VERSION => StoreInit::Current,
            (true, 0) => StoreInit::Created,
            (true, from) => StoreInit::Migrated { from },
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
        connection.busy_timeout(options.busy_timeout).map_err(db)?;
        if file {
            // Reads the header: a garbage file fails here as Corrupt.
            let _mode: String = connection
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(db)?;
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
        migrate(&mut connection)?;
        let store = SqliteStore {
            connection: Mutex::new(connection),
            limits: options.limits.clone(),
            case: options.local_part_case,
        };
        if options.check_integrity_on_open {
            store.check("quick_check")?;
        }
        Ok(store)
    }

    /// Runs `PRAGMA integrity_check` (reads the whole file).
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        self.check("integrity_check")
    }

    fn check(&self, pragma: &str) -> Result<(), StoreError> {
        let connection = self.connection();
        let first: String = connection
            .pragma_query_value(None, pragma, |row| row.get(0))
            .map_err(db)?;
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
        self.connection()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(db)
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

fn user_version(connection: &Connection) -> Result<i64, StoreError> {
    connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db)
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let newer = |found| StoreError::NewerSchema {
        found,
        supported: SCHEMA_VERSION,
    };
    let found = user_version(connection)?;
    if found > SCHEMA_VERSION {
        return Err(newer(found));
    }
    if found == SCHEMA_VERSION {
        return check_application_id(connection);
    }
    // Another process may be migrating too: decide again under the lock.
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let found = user_version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(newer(found));
    }
    if found == 0 {
        let objects: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(db)?;
        if objects > 0 {
            return Err(StoreError::ForeignDatabase);
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(db)?;
    } else {
        check_application_id(&tx)?;
    }
    let start = usize::try_from(found).map_err(corrupt)?;
    for migration in MIGRATIONS.iter().skip(start) {
        tx.execute_batch(migration).map_err(db)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(db)?;
    tx.commit().map_err(db)
}

fn check_application_id(connection: &Connection) -> Result<(), StoreError> {
    let id: i64 = connection
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(db)?;
    if id == APPLICATION_ID {
        Ok(())
    } else {
        Err(StoreError::ForeignDatabase)
    }
}

const GRANT_COLUMNS: &str = "id, principal, delegate, methods, side, not_before, until, note, \
     recorded_by, recorded_at, revoked_at, revoked_by, revoke_reason";

/// Raw grant columns; converted outside rusqlite so bad values map to
/// [`StoreError::Corrupt`].
struct GrantRow {
    id: i64,
    principal: String,
    delegate: String,
    methods: Option<i64>,
    side: Option<String>,
    not_before: Option<i64>,
    until: Option<i64>,
    note: Option<String>,
    recorded_by: String,
    recorded_at: i64,
    revoked_at: Option<i64>,
    revoked_by: Option<String>,
    revoke_reason: Option<String>,
}

impl GrantRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(GrantRow {
            id: row.get(0)?,
            principal: row.get(1)?,
            delegate: row.get(2)?,
            methods: row.get(3)?,
            side: row.get(4)?,
            not_before: row.get(5)?,
            until: row.get(6)?,
            note: row.get(7)?,
            recorded_by: row.get(8)?,
            recorded_at: row.get(9)?,
            revoked_at: row.get(10)?,
            revoked_by: row.get(11)?,
            revoke_reason: row.get(12)?,
        })
    }

    fn into_grant(self) -> Result<Grant, StoreError> {
        let methods = self
            .methods
            .map(|bits| u8::try_from(bits).map(|b| MethodSet(b).methods()))
            .transpose()
            .map_err(corrupt)?;
        let side = self
            .side
            .map(|s| s.parse::<Side>())
            .transpose()
            .map_err(corrupt)?;
        let revocation = match (self.revoked_at, self.revoked_by) {
            (Some(at), Some(by)) => Some(Revocation {
                at: Timestamp::from_unix_seconds(at),
                by,
                reason: self.revoke_reason,
            }),
            (None, None) => None,
            _ => return Err(StoreError::Corrupt),
        };
        Ok(Grant {
            id: GrantId(self.id),
            principal: self.principal,
            delegate: self.delegate,
            scope: GrantScope { methods, side },
            not_before: self.not_before.map(Timestamp::from_unix_seconds),
            until: self.until.map(Timestamp::from_unix_seconds),
            note: self.note,
            recorded_by: self.recorded_by,
            recorded_at: Timestamp::from_unix_seconds(self.recorded_at),
            revocation,
        })
    }
}

/// Inserts a validated grant and its history line inside `tx`.
fn insert_grant(
    tx: &Transaction<'_>,
    valid: &ValidGrant,
    action: HistoryAction,
    by: &str,
    at: Timestamp,
) -> Result<GrantId, StoreError> {
    let g = &valid.grant;
    let methods = g
        .scope
        .methods
        .as_deref()
        .map(|m| i64::from(MethodSet::from_methods(m).0));
    tx.prepare_cached(
        "INSERT INTO grants (principal, delegate, methods, side, allowed, not_before, until, \
         note, recorded_by, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            g.principal,
            g.delegate,
            methods,
            g.scope.side.map(Side::as_str),
            i64::from(valid.allowed.0),
            g.not_before.map(Timestamp::unix_seconds),
            g.until.map(Timestamp::unix_seconds),
            g.note,
            g.recorded_by,
            g.recorded_at.unix_seconds(),
        ])
    })
    .map_err(db)?;
    let id = GrantId(tx.last_insert_rowid());
    add_history(tx, id, action, at, by, g.note.as_deref())?;
    Ok(id)
}

fn add_history(
    tx: &Transaction<'_>,
    id: GrantId,
    action: HistoryAction,
    at: Timestamp,
    by: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO grant_history (grant_id, action, at, by, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            id.0,
            action.as_str(),
            at.unix_seconds(),
            by,
            detail
        ])
    })
    .map_err(db)?;
    Ok(())
}

/// Marks one unrevoked grant revoked inside `tx`.
fn revoke_in(tx: &Transaction<'_>, id: GrantId, revocation: &Revocation) -> Result<(), StoreError> {
    let changed = tx
        .prepare_cached(
            "UPDATE grants SET revoked_at = ?2, revoked_by = ?3, revoke_reason = ?4 \
             WHERE id = ?1 AND revoked_at IS NULL",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                id.0,
                revocation.at.unix_seconds(),
                revocation.by,
                revocation.reason
            ])
        })
        .map_err(db)?;
    if changed == 0 {
        let existing: Option<Option<i64>> = tx
            .query_row(
                "SELECT revoked_at FROM grants WHERE id = ?1",
                [id.0],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)?;
        return Err(match existing {
            None => StoreError::NotFound { id },
            Some(at) => StoreError::AlreadyRevoked {
                id,
                at: Timestamp::from_unix_seconds(at.unwrap_or_default()),
            },
        });
    }
    add_history(
        tx,
        id,
        HistoryAction::Revoked,
        revocation.at,
        &revocation.by,
        revocation.reason.as_deref(),
    )
}

fn immediate(connection: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)
}

impl DelegationStore for SqliteStore {
    fn grant(&self, grant: &NewGrant) -> Result<GrantId, StoreError> {
        let valid = validate_grant(grant, self.case, &self.limits)?;
        let mut connection = self.connection();
        let tx = immediate(&mut connection)?;
        let id = insert_grant(
            &tx,
            &valid,
            HistoryAction::Granted,
            &valid.grant.recorded_by,
            valid.grant.recorded_at,
        )?;
        tx.commit().map_err(db)?;
        Ok(id)
    }

    fn revoke(
        &self,
        id: GrantId,
        at: Timestamp,
        by: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let revocation = Revocation {
            at,
            by: by.to_owned(),
            reason: reason.map(str::to_owned),
        };
        validate_revocation(&revocation, &self.limits)?;
        let mut connection = self.connection();
        let tx = immediate(&mut connection)?;
        revoke_in(&tx, id, &revocation)?;
        tx.commit().map_err(db)
    }

    fn revoke_matching(
        &self,
        principal: &str,
        delegate: &str,
        at: Timestamp,
        by: &str,
    ) -> Result<usize, StoreError> {
        let principal = self.address(principal, AddressField::Principal)?;
        let delegate = self.address(delegate, AddressField::Delegate)?;
        let revocation = Revocation {
            at,
            by: by.to_owned(),
            reason: None,
        };
        validate_revocation(&revocation, &self.limits)?;
        let mut connection = self.connection();
        let tx = immediate(&mut connection)?;
        let ids = tx
            .prepare_cached(
                "SELECT id FROM grants WHERE principal = ?1 AND delegate = ?2 \
                 AND revoked_at IS NULL ORDER BY id",
            )
            .and_then(|mut statement| {
                statement
                    .query_map(params![principal, delegate], |row| row.get::<_, i64>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db)?;
        for id in &ids {
            revoke_in(&tx, GrantId(*id), &revocation)?;
        }
        tx.commit().map_err(db)?;
        Ok(ids.len())
    }

    fn is_allowed(
        &self,
        principal: &str,
        delegate: &str,
        method: Method,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let principal = self.address(principal, AddressField::Principal)?;
        let delegate = self.address(delegate, AddressField::Delegate)?;
        let connection = self.connection();
        // Same rule as `Grant::is_valid_at`: half-open window, revocation
        // effective from its time on.
        let mut statement = connection
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM grants WHERE principal = ?1 AND delegate = ?2 \
                 AND (allowed & ?3) != 0 \
                 AND (not_before IS NULL OR not_before <= ?4) \
                 AND (until IS NULL OR ?4 < until) \
                 AND (revoked_at IS NULL OR ?4 < revoked_at))",
            )
            .map_err(db)?;
        statement
            .query_row(
                params![
                    principal,
                    delegate,
                    i64::from(method.bit()),
                    at.unix_seconds()
                ],
                |row| row.get(0),
            )
            .map_err(db)
    }

    fn list(&self, filter: &GrantFilter, at: Option<Timestamp>) -> Result<Vec<Grant>, StoreError> {
        let principal = filter
            .principal
            .as_deref()
            .map(|p| self.address(p, AddressField::Principal))
            .transpose()?;
        let delegate = filter
            .delegate
            .as_deref()
            .map(|d| self.address(d, AddressField::Delegate))
            .transpose()?;
        let rows = {
            let connection = self.connection();
            // One statement per filter shape, so each can use its index
            // (`x IS NULL OR col = x` would defeat the planner).
            let condition = match (&principal, &delegate) {
                (Some(_), Some(_)) => "WHERE principal = ?1 AND delegate = ?2",
                (Some(_), None) => "WHERE principal = ?1 AND ?2 IS NULL",
                (None, Some(_)) => "WHERE delegate = ?2 AND ?1 IS NULL",
                (None, None) => "WHERE ?1 IS NULL AND ?2 IS NULL",
            };
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {GRANT_COLUMNS} FROM grants {condition} ORDER BY id"
                ))
                .map_err(db)?;
            statement
                .query_map(params![principal, delegate], GrantRow::read)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(db)?
        };
        let mut grants = Vec::with_capacity(rows.len());
        for row in rows {
            let grant = row.into_grant()?;
            let keep = match at {
                Some(at) => grant.is_valid_at(at),
                None => filter.include_revoked || grant.revocation.is_none(),
            };
            if keep {
                grants.push(grant);
            }
        }
        Ok(grants)
    }

    fn history(&self, principal: Option<&str>) -> Result<Vec<HistoryEntry>, StoreError> {
        let principal = principal
            .map(|p| self.address(p, AddressField::Principal))
            .transpose()?;
        let connection = self.connection();
        let condition = if principal.is_some() {
            "g.principal = ?1"
        } else {
            "?1 IS NULL"
        };
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT h.seq, h.grant_id, h.action, h.at, h.by, g.principal, g.delegate, \
                 h.detail FROM grant_history h JOIN grants g ON g.id = h.grant_id \
                 WHERE {condition} ORDER BY h.seq"
            ))
            .map_err(db)?;
        let rows = statement
            .query_map(params![principal], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, Option<String>>(7)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(db)?;
        rows.into_iter()
            .map(
                |(sequence, grant_id, action, at, by, principal, delegate, detail)| {
                    Ok(HistoryEntry {
                        sequence,
                        grant_id: GrantId(grant_id),
                        action: HistoryAction::parse(&action).ok_or(StoreError::Corrupt)?,
                        at: Timestamp::from_unix_seconds(at),
                        by,
                        principal,
                        delegate,
                        detail,
                    })
                },
            )
            .collect()
    }

    fn export_json(&self) -> Result<String, StoreError> {
        let grants = self.list(
            &GrantFilter {
                include_revoked: true,
                ..GrantFilter::default()
            },
            None,
        )?;
        delegation::to_json(&grants)
    }

    fn import_json(&self, json: &str, by: &str, at: Timestamp) -> Result<usize, StoreError> {
        // Everything is validated before the transaction starts, so a bad
        // entry never leaves half an import behind.
        let entries = delegation::parse_import(json, by, at, self.case, &self.limits)?;
        let mut connection = self.connection();
        let tx = immediate(&mut connection)?;
        for entry in &entries {
            let id = insert_grant(&tx, &entry.valid, HistoryAction::Imported, by, at)?;
            if let Some(revocation) = &entry.revocation {
                revoke_in(&tx, id, revocation)?;
            }
        }
        tx.commit().map_err(db)?;
        Ok(entries.len())
    }
}

/// Reads event state for one scope through a connection or transaction.
struct SqlSource<'a> {
    connection: &'a Connection,
    scope: &'a str,
}

fn event_row_from(
    organizer: Option<String>,
    sequence: Option<i64>,
    dtstamp: Option<i64>,
    method: Option<String>,
    attendees: String,
    signed: bool,
    recorded_at: i64,
) -> Result<EventRow, StoreError> {
    Ok(EventRow {
        organizer,
        sequence,
        dtstamp: dtstamp.map(Timestamp::from_unix_seconds),
        method: method
            .map(|m| m.parse::<Method>())
            .transpose()
            .map_err(corrupt)?,
        attendees: serde_json::from_str(&attendees).map_err(corrupt)?,
        signed,
        recorded_at: Timestamp::from_unix_seconds(recorded_at),
    })
}

impl StateSource for SqlSource<'_> {
    fn event_row(&mut self, uid: &str, rid: &str) -> Result<Option<EventRow>, StoreError> {
        let raw = self
            .connection
            .prepare_cached(
                "SELECT organizer, sequence, dtstamp, method, attendees, signed, recorded_at \
                 FROM events WHERE scope = ?1 AND uid = ?2 AND rid = ?3",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![self.scope, uid, rid], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                            row.get(5)?,
                            row.get(6)?,
                        ))
                    })
                    .optional()
            })
            .map_err(db)?;
        raw.map(|(o, s, d, m, a, signed, r)| event_row_from(o, s, d, m, a, signed, r))
            .transpose()
    }

    fn pinned_organizer(&mut self, uid: &str) -> Result<Option<String>, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT organizer FROM events WHERE scope = ?1 AND uid = ?2 \
                 AND organizer IS NOT NULL LIMIT 1",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![self.scope, uid], |row| row.get(0))
                    .optional()
            })
            .map_err(db)
    }

    fn uid_signed(&mut self, uid: &str) -> Result<bool, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM events WHERE scope = ?1 AND uid = ?2 \
                 AND signed != 0)",
            )
            .and_then(|mut statement| {
                statement.query_row(params![self.scope, uid], |row| row.get(0))
            })
            .map_err(db)
    }

    fn reply_row(
        &mut self,
        uid: &str,
        rid: &str,
        attendee: &str,
    ) -> Result<Option<ReplyRow>, StoreError> {
        self.connection
            .prepare_cached(
                "SELECT sequence, dtstamp, signed, recorded_at FROM replies \
                 WHERE scope = ?1 AND uid = ?2 AND rid = ?3 AND attendee = ?4",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![self.scope, uid, rid, attendee], |row| {
                        Ok(ReplyRow {
                            sequence: row.get(0)?,
                            dtstamp: Timestamp::from_unix_seconds(row.get(1)?),
                            signed: row.get(2)?,
                            recorded_at: Timestamp::from_unix_seconds(row.get(3)?),
                        })
                    })
                    .optional()
            })
            .map_err(db)
    }
}

fn write_pending(tx: &Transaction<'_>, scope: &str, pending: &Pending) -> Result<(), StoreError> {
    let mut events = tx
        .prepare_cached(
            "INSERT INTO events (scope, uid, rid, organizer, sequence, dtstamp, method, \
             attendees, signed, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (scope, uid, rid) DO UPDATE SET organizer = excluded.organizer, \
             sequence = excluded.sequence, dtstamp = excluded.dtstamp, \
             method = excluded.method, attendees = excluded.attendees, \
             signed = excluded.signed, recorded_at = excluded.recorded_at",
        )
        .map_err(db)?;
    for ((uid, rid), row) in &pending.events {
        let attendees =
            serde_json::to_string(&row.attendees).map_err(|e| StoreError::Backend(Box::new(e)))?;
        events
            .execute(params![
                scope,
                uid,
                rid,
                row.organizer,
                row.sequence,
                row.dtstamp.map(Timestamp::unix_seconds),
                row.method.map(Method::as_str),
                attendees,
                row.signed,
                row.recorded_at.unix_seconds(),
            ])
            .map_err(db)?;
    }
    let mut replies = tx
        .prepare_cached(
            "INSERT INTO replies (scope, uid, rid, attendee, sequence, dtstamp, signed, \
             recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (scope, uid, rid, attendee) DO UPDATE SET \
             sequence = excluded.sequence, dtstamp = excluded.dtstamp, \
             signed = excluded.signed, recorded_at = excluded.recorded_at",
        )
        .map_err(db)?;
    for ((uid, rid, attendee), row) in &pending.replies {
        replies
            .execute(params![
                scope,
                uid,
                rid,
                attendee,
                row.sequence,
                row.dtstamp.unix_seconds(),
                row.signed,
                row.recorded_at.unix_seconds(),
            ])
            .map_err(db)?;
    }
    Ok(())
}

/// Whether `scope` recorded the message with digest `message`.
fn recorded_message(
    connection: &Connection,
    scope: &str,
    message: &MessageDigest,
) -> Result<bool, StoreError> {
    connection
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM recorded_messages WHERE scope = ?1 AND digest = ?2)",
        )
        .and_then(|mut statement| {
            statement.query_row(params![scope, message.as_bytes().as_slice()], |row| {
                row.get(0)
            })
        })
        .map_err(db)
}

impl EventStateStore for SqliteStore {
    fn evaluate(
        &self,
        scope: &str,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError> {
        let (scope, updates) = event::validate(scope, updates, self.case, &self.limits)?;
        let mut connection = self.connection();
        // A read transaction: one consistent snapshot, no write lock.
        let tx = connection.transaction().map_err(db)?;
        let mut source = SqlSource {
            connection: &tx,
            scope: &scope,
        };
        // The evaluation time only stamps rows that are never written here.
        let (findings, _) = event::assess(&mut source, &updates, Timestamp::from_unix_seconds(0))?;
        Ok(findings)
    }

    fn decide_and_record(
        &self,
        scope: &str,
        updates: &[EventUpdate],
        at: Timestamp,
    ) -> Result<StateDecision, StoreError> {
        let (scope, updates) = event::validate(scope, updates, self.case, &self.limits)?;
        let mut connection = self.connection();
        // BEGIN IMMEDIATE takes the write lock before reading, so two
        // processes cannot both judge against the same old state.
        let tx = immediate(&mut connection)?;
        let mut source = SqlSource {
            connection: &tx,
            scope: &scope,
        };
        let (findings, pending) = event::assess(&mut source, &updates, at)?;
        if !findings.is_empty() {
            // Dropping the transaction rolls back: nothing recorded.
            return Ok(StateDecision::Rejected(findings));
        }
        write_pending(&tx, &scope, &pending)?;
        tx.commit().map_err(db)?;
        Ok(StateDecision::Recorded)
    }

    fn evaluate_message(
        &self,
        scope: &str,
        message: &MessageDigest,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError> {
        let (scope, updates) = event::validate(scope, updates, self.case, &self.limits)?;
        let mut connection = self.connection();
        let tx = connection.transaction().map_err(db)?;
        let seen = recorded_message(&tx, &scope, message)?;
        let mut source = SqlSource {
            connection: &tx,
            scope: &scope,
        };
        let (findings, _) = event::assess(&mut source, &updates, Timestamp::from_unix_seconds(0))?;
        if seen && event::only_own_record(&findings) {
            return Ok(Vec::new());
        }
        Ok(findings)
    }

    fn decide_and_record_message(
        &self,
        scope: &str,
        message: &MessageDigest,
        updates: &[EventUpdate],
        at: Timestamp,
    ) -> Result<StateDecision, StoreError> {
        let (scope, updates) = event::validate(scope, updates, self.case, &self.limits)?;
        let mut connection = self.connection();
        let tx = immediate(&mut connection)?;
        let seen = recorded_message(&tx, &scope, message)?;
        let mut source = SqlSource {
            connection: &tx,
            scope: &scope,
        };
        let (findings, pending) = event::assess(&mut source, &updates, at)?;
        if seen && event::only_own_record(&findings) {
            // This message's own record, and nothing newer since: its retry.
            return Ok(StateDecision::AlreadyRecorded);
        }
        if !findings.is_empty() {
            return Ok(StateDecision::Rejected(findings));
        }
        write_pending(&tx, &scope, &pending)?;
        tx.execute(
            "INSERT OR IGNORE INTO recorded_messages (scope, digest, outcome, recorded_at) \
             VALUES (?1, ?2, 'recorded', ?3)",
            params![scope, message.as_bytes().as_slice(), at.unix_seconds()],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(StateDecision::Recorded)
    }

    fn event(
        &self,
        scope: &str,
        uid: &str,
        recurrence_id: Option<&str>,
    ) -> Result<Option<EventState>, StoreError> {
        let scope = self.address(scope, AddressField::Scope)?;
        let rid = recurrence_id.unwrap_or("");
        let mut connection = self.connection();
        let tx = connection.transaction().map_err(db)?;
        let mut source = SqlSource {
            connection: &tx,
            scope: &scope,
        };
        let Some(row) = source.event_row(uid, rid)? else {
            return Ok(None);
        };
        let replies = tx
            .prepare_cached(
                "SELECT attendee, sequence, dtstamp, signed, recorded_at FROM replies \
                 WHERE scope = ?1 AND uid = ?2 AND rid = ?3 ORDER BY attendee",
            )
            .and_then(|mut statement| {
                statement
                    .query_map(params![scope, uid, rid], |row| {
                        Ok(ReplyState {
                            attendee: row.get(0)?,
                            sequence: row.get(1)?,
                            dtstamp: Timestamp::from_unix_seconds(row.get(2)?),
                            signed: row.get(3)?,
                            recorded_at: Timestamp::from_unix_seconds(row.get(4)?),
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db)?;
        Ok(Some(EventState {
            scope,
            uid: uid.to_owned(),
            recurrence_id: recurrence_id.map(str::to_owned),
            organizer: row.organizer,
            sequence: row.sequence,
            dtstamp: row.dtstamp,
            method: row.method,
            attendees: row.attendees,
            signed: row.signed,
            recorded_at: row.recorded_at,
            replies,
        }))
    }
}
