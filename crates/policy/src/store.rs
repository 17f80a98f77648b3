//! One store, either engine: [`StoreLocation`] says which, [`Store`] is the opened one.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::delegation::{DelegationStore, Grant, GrantFilter, GrantId, HistoryEntry, NewGrant};
use crate::error::StoreError;
use crate::event::{EventState, EventStateStore, EventUpdate, StateDecision, StateFinding};
use crate::method::Method;
use crate::postgres::PostgresStore;
use crate::schema::StoreInit;
use crate::sqlite::{SqliteStore, StoreOptions};
use crate::timestamp::Timestamp;

/// Where a store lives: a SQLite file (any path) or a PostgreSQL database (a
/// `postgresql://` or `postgres://` URL, as libpq writes them).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl StoreLocation {
    /// Reads `--store`, `[store] url`/`path` or `IMIPSEC_STORE`: a URL with the
    /// `postgresql` or `postgres` scheme (case-insensitive) is PostgreSQL, anything else a
    /// SQLite path.
    pub fn parse(text: &str) -> Self {
        let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
        if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
            StoreLocation::Postgres(text.to_owned())
        } else {
            StoreLocation::Sqlite(PathBuf::from(text))
        }
    }

    /// A SQLite path.
    pub fn path(path: &Path) -> Self {
        StoreLocation::Sqlite(path.to_path_buf())
    }

    /// Whether this is a PostgreSQL URL carrying a password (which the command line
    /// refuses: it would show in `ps` and in shell histories).
    pub fn has_password(&self) -> bool {
        match self {
            StoreLocation::Sqlite(_) => false,
            StoreLocation::Postgres(url) => crate::postgres::url_has_password(url),
        }
    }
}

/// Shows a path, or a URL without its password.
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "{}", path.display()),
            StoreLocation::Postgres(url) => f.write_str(&crate::postgres::redact(url)),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreLocation({self})")
    }
}

/// An open store on either engine.
pub enum Store {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(Box<PostgresStore>),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::Sqlite(_) => f.write_str("Store::Sqlite"),
            Store::Postgres(store) => write!(f, "Store::{store:?}"),
        }
    }
}

impl Store {
    /// Opens the store at `location` (see [`SqliteStore::open`], [`PostgresStore::open`]).
    pub fn open(location: &StoreLocation, options: &StoreOptions) -> Result<Self, StoreError> {
        match location {
            StoreLocation::Sqlite(path) => SqliteStore::open(path, options).map(Store::Sqlite),
            StoreLocation::Postgres(url) => {
                PostgresStore::open(url, options).map(|s| Store::Postgres(Box::new(s)))
            }
        }
    }

    /// Creates or migrates the store at `location` (`imipsec store init`).
    pub fn init(
        location: &StoreLocation,
        options: &StoreOptions,
    ) -> Result<(Self, StoreInit), StoreError> {
        match location {
            StoreLocation::Sqlite(path) => {
                SqliteStore::init(path, options).map(|(s, i)| (Store::Sqlite(s), i))
            }
            StoreLocation::Postgres(url) => {
                PostgresStore::init(url, options).map(|(s, i)| (Store::Postgres(Box::new(s)), i))
            }
        }
    }

    /// The schema version of the store.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.schema_version(),
            Store::Postgres(s) => s.schema_version(),
        }
    }

    fn delegation(&self) -> &dyn DelegationStore {
        match self {
            Store::Sqlite(s) => s,
            Store::Postgres(s) => &**s,
        }
    }

    fn events(&self) -> &dyn EventStateStore {
        match self {
            Store::Sqlite(s) => s,
            Store::Postgres(s) => &**s,
        }
    }
}

impl DelegationStore for Store {
    fn grant(&self, grant: &NewGrant) -> Result<GrantId, StoreError> {
        self.delegation().grant(grant)
    }
    fn revoke(
        &self,
        id: GrantId,
        at: Timestamp,
        by: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.delegation().revoke(id, at, by, reason)
    }
    fn revoke_matching(
        &self,
        principal: &str,
        delegate: &str,
        at: Timestamp,
        by: &str,
    ) -> Result<usize, StoreError> {
        self.delegation()
            .revoke_matching(principal, delegate, at, by)
    }
    fn is_allowed(
        &self,
        principal: &str,
        delegate: &str,
        method: Method,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        self.delegation()
            .is_allowed(principal, delegate, method, at)
    }
    fn list(&self, filter: &GrantFilter, at: Option<Timestamp>) -> Result<Vec<Grant>, StoreError> {
        self.delegation().list(filter, at)
    }
    fn history(&self, principal: Option<&str>) -> Result<Vec<HistoryEntry>, StoreError> {
        self.delegation().history(principal)
    }
    fn export_json(&self) -> Result<String, StoreError> {
        self.delegation().export_json()
    }
    fn import_json(&self, json: &str, by: &str, at: Timestamp) -> Result<usize, StoreError> {
        self.delegation().import_json(json, by, at)
    }
}

impl EventStateStore for Store {
    fn local_part_case(&self) -> crate::LocalPartCase {
        self.events().local_part_case()
    }
    fn evaluate(
        &self,
        scope: &str,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError> {
        self.events().evaluate(scope, updates)
    }
    fn decide_and_record(
        &self,
        scope: &str,
        updates: &[EventUpdate],
        at: Timestamp,
    ) -> Result<StateDecision, StoreError> {
        self.events().decide_and_record(scope, updates, at)
    }
    fn evaluate_message(
        &self,
        scope: &str,
        message: &crate::MessageDigest,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError> {
        self.events().evaluate_message(scope, message, updates)
    }
    fn decide_and_record_message(
        &self,
        scope: &str,
        message: &crate::MessageDigest,
        updates: &[EventUpdate],
        at: Timestamp,
    ) -> Result<StateDecision, StoreError> {
        self.events()
            .decide_and_record_message(scope, message, updates, at)
    }
    fn event(
        &self,
        scope: &str,
        uid: &str,
        recurrence_id: Option<&str>,
    ) -> Result<Option<EventState>, StoreError> {
        self.events().event(scope, uid, recurrence_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_postgres_and_anything_else_is_a_path() {
        assert!(matches!(
            StoreLocation::parse("postgresql://gate@db:5432/imipsec"),
            StoreLocation::Postgres(_)
        ));
        assert!(matches!(
            StoreLocation::parse("Postgres://gate@db/imipsec"),
            StoreLocation::Postgres(_)
        ));
        assert!(matches!(
            StoreLocation::parse("/var/lib/imipsec/policy.db"),
            StoreLocation::Sqlite(_)
        ));
        assert!(matches!(
            StoreLocation::parse("postgresql.db"),
            StoreLocation::Sqlite(_)
        ));
    }

    #[test]
    fn a_password_never_shows() {
        let location = StoreLocation::parse("postgresql://gate:s3cret@db/imipsec");
        assert!(location.has_password());
        assert!(!location.to_string().contains("s3cret"), "{location}");
        assert!(!format!("{location:?}").contains("s3cret"));
    }
}
