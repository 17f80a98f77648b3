//! Applying [`MIGRATIONS`] to a PostgreSQL schema; the version lives in the one-row table
//! `imipsec_schema`.
//!
//! Opening a database whose schema is current only reads that row. Creating or migrating
//! takes a transaction-scoped advisory lock first, so several gates starting at once on
//! an empty database migrate it once: the others wait, then find it current.

use ::postgres::{Client, GenericClient};

use super::pg;
use crate::error::StoreError;
use crate::schema::{APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, StoreInit};

const VERSION_TABLE: &str = "CREATE TABLE imipsec_schema (
    singleton   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    application BIGINT NOT NULL,
    version     BIGINT NOT NULL
)";

/// The version recorded, `None` when the schema has no `imipsec_schema` table; a table
/// naming another application is [`StoreError::ForeignDatabase`].
pub(super) fn version(client: &mut impl GenericClient) -> Result<Option<i64>, StoreError> {
    // Asked first rather than caught: an error would abort the caller's transaction.
    let exists: bool = client
        .query_one("SELECT to_regclass('imipsec_schema') IS NOT NULL", &[])
        .and_then(|row| row.try_get(0))
        .map_err(pg)?;
    if !exists {
        return Ok(None);
    }
    let Some(row) = client
        .query_opt("SELECT application, version FROM imipsec_schema", &[])
        .map_err(pg)?
    else {
        return Ok(Some(0));
    };
    let application: i64 = row.try_get(0).map_err(pg)?;
    if application != APPLICATION_ID {
        return Err(StoreError::ForeignDatabase);
    }
    row.try_get(1).map(Some).map_err(pg)
}

/// Brings the schema to [`SCHEMA_VERSION`] (when `create`), or says it is missing.
pub(super) fn migrate(client: &mut Client, create: bool) -> Result<StoreInit, StoreError> {
    let found = version(client)?;
    check_newer(found)?;
    if found == Some(SCHEMA_VERSION) {
        return Ok(StoreInit::Current);
    }
    if !create {
        return Err(if found.is_none() {
            // "store init" creates it; never an empty store that grants nothing.
            StoreError::FileNotFound
        } else {
            StoreError::Backend(
                format!(
                    "schema version {} is older than {SCHEMA_VERSION}: run `imipsec store init`",
                    found.unwrap_or(0)
                )
                .into(),
            )
        });
    }
    let mut tx = client.transaction().map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPLICATION_ID])
        .map_err(pg)?;
    // Decided again under the lock: another gate may have migrated meanwhile.
    let found = version(&mut tx)?;
    check_newer(found)?;
    let from = match found {
        Some(version) => version,
        None => {
            let foreign: i64 = tx
                .query_one(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                    &[],
                )
                .and_then(|row| row.try_get(0))
                .map_err(pg)?;
            if foreign > 0 {
                return Err(StoreError::ForeignDatabase);
            }
            tx.batch_execute(VERSION_TABLE).map_err(pg)?;
            tx.execute(
                "INSERT INTO imipsec_schema (application, version) VALUES ($1, 0)",
                &[&APPLICATION_ID],
            )
            .map_err(pg)?;
            0
        }
    };
    if from == SCHEMA_VERSION {
        return Ok(StoreInit::Current);
    }
    let start = usize::try_from(from).map_err(super::corrupt)?;
    for migration in MIGRATIONS.iter().skip(start) {
        tx.batch_execute(migration.postgres).map_err(pg)?;
    }
    tx.execute("UPDATE imipsec_schema SET version = $1", &[&SCHEMA_VERSION])
        .map_err(pg)?;
    tx.commit().map_err(pg)?;
    Ok(if from == 0 {
        StoreInit::Created
    } else {
        StoreInit::Migrated { from }
    })
}

fn check_newer(found: Option<i64>) -> Result<(), StoreError> {
    match found {
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        }),
        _ => Ok(()),
    }
}
