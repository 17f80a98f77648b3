//! The PostgreSQL backend: several gates on several machines share one database.
//!
//! Selected by a `postgresql://` or `postgres://` URL ([`StoreLocation`](crate::StoreLocation)).
//! The synchronous `postgres` client is used, so every call blocks: the gate calls the
//! store only from its blocking evaluation section, never on an async worker.
//!
//! - **Exactly once.** Every write is one `SERIALIZABLE` transaction: PostgreSQL
//!   guarantees that concurrent serializable transactions that commit give the result of
//!   some serial order, and aborts the others with `40001` (or `40P01` on a deadlock). An
//!   aborted transaction wrote nothing and is run again from its first read, within the
//!   busy timeout ([`crate::retry`]); two gates judging the same UID therefore decide as if
//!   one ran after the other. A unique violation (`23505`) on the event keys is the same
//!   race seen through an index, and retried the same way.
//! - **Down is "could not evaluate".** A refused, dropped or timed-out connection is
//!   [`StoreError::Unavailable`] (transient: the gate answers 451, `verify` exits 2), never
//!   an answer. The broken connection is dropped; the next call connects again, so the
//!   store comes back by itself when the server does. A call is retried on a fresh
//!   connection only when the old one was found closed before anything was sent; a
//!   connection lost after `COMMIT` was sent is never retried (the outcome is unknown, and
//!   a second decision would judge the message against its own record).
//! - **TLS.** `sslmode` from the URL; without one, `require` for every host but the
//!   loopback and a Unix socket (where it is `disable`). With TLS the server's certificate
//!   is always verified (system roots, or `sslrootcert=FILE` in the URL) and its name
//!   checked: `require` here means what libpq calls `verify-full`.
//! - **Passwords** never come from the library's caller in clear on a command line: the
//!   URL may carry one (the CLI refuses that on its command line), else `PGPASSWORD`, else
//!   the `PGPASSFILE` (default `~/.pgpass`) line matching host, port, database and user.

mod events;
mod grants;
mod migrate;
mod url;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ::postgres::error::SqlState;
use ::postgres::{Client, IsolationLevel, Transaction};

use crate::Limits;
use crate::address::LocalPartCase;
use crate::delegation::address;
use crate::error::{AddressField, StoreError};
use crate::retry::retry;
use crate::schema::StoreInit;

use self::url::Connector;
pub use self::url::PostgresUrlError;
pub(crate) use self::url::{redact, url_has_password};

/// Delegation and event state in a PostgreSQL database shared by several gates.
pub struct PostgresStore {
    connector: Connector,
    client: Mutex<Option<Client>>,
    limits: Limits,
    case: LocalPartCase,
    busy_timeout: Duration,
}

/// The synchronous client closes its connection by blocking on a runtime of its own, which
/// panics on a thread that is driving an async runtime. A store may well be dropped there
/// (the last reference to a gate's engine goes away as its runtime shuts down), so the
/// connection is closed on a thread of its own.
impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(client) = self.slot().take() {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.connector.describe())
            .finish_non_exhaustive()
    }
}

/// Maps a PostgreSQL client failure onto the typed error.
pub(crate) fn pg(error: ::postgres::Error) -> StoreError {
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection itself failed (refused, reset, closed, timed out,
        // TLS). Transient: the next call connects again.
        return StoreError::Unavailable(Box::new(error));
    };
    let class = &code.code()[..2.min(code.code().len())];
    match code {
        c if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
            || *c == SqlState::LOCK_NOT_AVAILABLE
            || *c == SqlState::QUERY_CANCELED =>
        {
            StoreError::Busy
        }
        c if *c == SqlState::DISK_FULL || *c == SqlState::INSUFFICIENT_RESOURCES => {
            StoreError::Full
        }
        c if *c == SqlState::READ_ONLY_SQL_TRANSACTION => StoreError::ReadOnly,
        c if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
            StoreError::Corrupt
        }
        // 08: connection exception; 57: operator intervention (shutdown, cannot connect
        // now); 53: insufficient resources (too many connections); 28: authorization;
        // 3D: no such database.
        _ if matches!(class, "08" | "57" | "53" | "28" | "3D") => {
            StoreError::Unavailable(Box::new(error))
        }
        _ => StoreError::Backend(Box::new(error)),
    }
}

/// A value in the database that this code never writes.
pub(crate) fn corrupt<T>(_: T) -> StoreError {
    StoreError::Corrupt
}

/// What became of a transaction whose COMMIT was not answered.
enum Outcome {
    /// It committed; the connection that asked.
    Committed(Box<Client>),
    /// It did not commit.
    Aborted,
    /// The server could not be asked within the busy timeout.
    Unknown,
}

/// How a transaction reads and writes.
#[derive(Clone, Copy)]
enum Mode {
    /// `SERIALIZABLE`, read-write.
    Write,
    /// `REPEATABLE READ READ ONLY`: one snapshot.
    Read,
}

impl PostgresStore {
    /// Connects to the database the URL names, applies pending migrations when
    /// `options.create` (else a database without our schema is
    /// [`StoreError::FileNotFound`]: "not initialised") and refuses a newer schema.
    pub fn open(url: &str, options: &crate::StoreOptions) -> Result<Self, StoreError> {
        Self::open_inner(url, options, options.create).map(|(store, _)| store)
    }

    /// Creates or migrates the schema (`imipsec store init`); says what it did.
    pub fn init(url: &str, options: &crate::StoreOptions) -> Result<(Self, StoreInit), StoreError> {
        Self::open_inner(url, options, true)
    }

    fn open_inner(
        url: &str,
        options: &crate::StoreOptions,
        create: bool,
    ) -> Result<(Self, StoreInit), StoreError> {
        let connector = Connector::from_url(url, options.busy_timeout)
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let store = PostgresStore {
            connector,
            client: Mutex::new(None),
            limits: options.limits.clone(),
            case: options.local_part_case,
            busy_timeout: options.busy_timeout,
        };
        let outcome = store
            .with_client(|client| retry(store.busy_timeout, || migrate::migrate(client, create)))?;
        Ok((store, outcome))
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.with_client(|client| migrate::version(client).map(|found| found.unwrap_or(0)))
    }

    /// Runs `work` with a live connection, connecting first if there is none or the last
    /// one was found closed. Any failure that leaves the connection unusable drops it, so
    /// the next call connects again.
    fn with_client<T>(
        &self,
        work: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.slot();
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = None;
            *slot = Some(self.connector.connect()?);
        }
        let Some(client) = slot.as_mut() else {
            return Err(StoreError::Unavailable("no connection".into()));
        };
        let result = work(client);
        if client.is_closed() || matches!(result, Err(StoreError::Unavailable(_))) {
            *slot = None;
        }
        result
    }

    /// Runs `work` in one transaction, committed when `work` succeeds, run again while
    /// PostgreSQL reports a serialization failure or deadlock, within the busy timeout.
    /// When the kept connection turns out to be dead at `BEGIN` (the server restarted
    /// since the last call), the transaction is run once more on a fresh connection:
    /// nothing was sent yet, so this cannot decide anything twice.
    fn transaction<T>(
        &self,
        mode: Mode,
        mut work: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.slot();
        let mut fresh = false;
        let started = Instant::now();
        loop {
            if slot.as_ref().is_none_or(Client::is_closed) {
                *slot = None;
                *slot = Some(self.connector.connect()?);
                fresh = true;
            }
            let Some(client) = slot.as_mut() else {
                return Err(StoreError::Unavailable("no connection".into()));
            };
            let mut stale = false;
            // A write whose COMMIT was sent but whose answer was lost (the connection
            // died, e.g. the server shutting down): its transaction ID and its value.
            let mut in_doubt: Option<(i64, T)> = None;
            let result = retry(self.busy_timeout, || {
                let builder = client.build_transaction();
                let builder = match mode {
                    Mode::Write => builder.isolation_level(IsolationLevel::Serializable),
                    Mode::Read => builder
                        .isolation_level(IsolationLevel::RepeatableRead)
                        .read_only(true),
                };
                let mut tx = builder.start().map_err(|error| {
                    // A dead connection answers BEGIN with an I/O error or with the
                    // server's last word ("terminating connection", 57P01).
                    let error = pg(error);
                    stale = matches!(error, StoreError::Unavailable(_));
                    error
                })?;
                let value = work(&mut tx)?;
                let xid = match mode {
                    Mode::Write => Some(
                        tx.query_one("SELECT txid_current()", &[])
                            .map_err(pg)?
                            .try_get::<_, i64>(0)
                            .map_err(pg)?,
                    ),
                    Mode::Read => None,
                };
                match tx.commit().map_err(pg) {
                    Ok(()) => Ok(value),
                    Err(error) => {
                        if let (Some(xid), StoreError::Unavailable(_)) = (xid, &error) {
                            in_doubt = Some((xid, value));
                        }
                        Err(error)
                    }
                }
            });
            if let Some((xid, value)) = in_doubt {
                *slot = None;
                match self.commit_outcome(xid, started) {
                    Outcome::Committed(client) => {
                        *slot = Some(*client);
                        return Ok(value);
                    }
                    // Nothing was written: judge again from the start.
                    Outcome::Aborted => continue,
                    Outcome::Unknown => {
                        return Err(StoreError::Unavailable(
                            "the outcome of a commit is unknown (connection lost)".into(),
                        ));
                    }
                }
            }
            if client.is_closed() || matches!(result, Err(StoreError::Unavailable(_))) {
                *slot = None;
                if stale && !fresh {
                    continue;
                }
            }
            return result;
        }
    }

    /// Runs one read-only statement without an explicit transaction: one round trip
    /// instead of three, and a single statement sees one snapshot anyway. A read is safe
    /// to run again, so a dead kept connection is replaced and the statement run once more.
    fn statement<T>(
        &self,
        mut work: impl FnMut(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.slot();
        let mut fresh = false;
        loop {
            if slot.as_ref().is_none_or(Client::is_closed) {
                *slot = None;
                *slot = Some(self.connector.connect()?);
                fresh = true;
            }
            let Some(client) = slot.as_mut() else {
                return Err(StoreError::Unavailable("no connection".into()));
            };
            let result = retry(self.busy_timeout, || work(client));
            if client.is_closed() || matches!(result, Err(StoreError::Unavailable(_))) {
                *slot = None;
                if !fresh {
                    continue;
                }
            }
            return result;
        }
    }

    /// What became of transaction `xid`, whose COMMIT was sent but not answered: asked
    /// of the server (`txid_status`, PostgreSQL 10+) on a new connection, waiting for it
    /// to come back until the busy timeout (counted from `started`) has passed. Without
    /// this, a commit that happened would be reported as a failure, the gate would answer
    /// 451, and the sender's retry would be rejected as a replay of itself.
    fn commit_outcome(&self, xid: i64, started: Instant) -> Outcome {
        loop {
            if let Ok(mut client) = self.connector.connect()
                && let Ok(row) = client.query_one("SELECT txid_status($1)", &[&xid])
            {
                match row
                    .try_get::<_, Option<String>>(0)
                    .ok()
                    .flatten()
                    .as_deref()
                {
                    Some("committed") => return Outcome::Committed(Box::new(client)),
                    Some("aborted") => return Outcome::Aborted,
                    // "in progress" or no longer known: not decided yet / cannot tell
                    _ => {}
                }
            }
            if started.elapsed() >= self.busy_timeout {
                return Outcome::Unknown;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn write<T>(
        &self,
        work: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(Mode::Write, work)
    }

    fn read<T>(
        &self,
        work: impl FnMut(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.transaction(Mode::Read, work)
    }

    /// A poisoned lock only means another thread panicked while holding it; the
    /// connection is dropped (its transaction, if any, is rolled back by the server).
    fn slot(&self) -> MutexGuard<'_, Option<Client>> {
        self.client.lock().unwrap_or_else(|poisoned| {
            let mut guard = PoisonError::into_inner(poisoned);
            *guard = None;
            guard
        })
    }

    fn address(&self, text: &str, field: AddressField) -> Result<String, StoreError> {
        address(text, field, self.case, &self.limits)
    }
}
