//! Applying [`MIGRATIONS`] to a SQLite file; the version lives in `PRAGMA user_version`.

use rusqlite::{Connection, TransactionBehavior};

use super::{corrupt, db};
use crate::error::StoreError;
use crate::schema::{APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION};

pub(super) fn user_version(connection: &Connection) -> Result<i64, StoreError> {
    connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db)
}

pub(super) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
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
        tx.execute_batch(migration.sqlite).map_err(db)?;
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
