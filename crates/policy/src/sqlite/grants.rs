//! The delegation tables (`grants`, `grant_history`): one function per query.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{SqliteStore, db};
use crate::delegation::{
    self, DelegationStore, Grant, GrantFilter, GrantId, HistoryAction, HistoryEntry, NewGrant,
    Revocation, ValidGrant, validate_grant, validate_revocation,
};
use crate::error::{AddressField, StoreError};
use crate::method::{Method, MethodBits, MethodSet, Side};
use crate::rows::{GRANT_COLUMNS, GrantRow};
use crate::timestamp::Timestamp;

/// Reads one row of [`GRANT_COLUMNS`].
fn grant_row(row: &Row<'_>) -> rusqlite::Result<GrantRow> {
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

impl DelegationStore for SqliteStore {
    fn grant(&self, grant: &NewGrant) -> Result<GrantId, StoreError> {
        let valid = validate_grant(grant, self.case, &self.limits)?;
        self.write(|tx| {
            insert_grant(
                tx,
                &valid,
                HistoryAction::Granted,
                &valid.grant.recorded_by,
                valid.grant.recorded_at,
            )
        })
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
        self.write(|tx| revoke_in(tx, id, &revocation))
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
        self.write(|tx| {
            let ids = unrevoked_ids(tx, &principal, &delegate)?;
            for id in &ids {
                revoke_in(tx, *id, &revocation)?;
            }
            Ok(ids.len())
        })
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
        self.query(|connection| allowed(connection, &principal, &delegate, method, at))
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
        let rows = self.query(|connection| {
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
                .query_map(params![principal, delegate], grant_row)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(db)
        })?;
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
        let rows = self.query(|connection| history_rows(connection, principal.as_deref()))?;
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
        self.write(|tx| {
            for entry in &entries {
                let id = insert_grant(tx, &entry.valid, HistoryAction::Imported, by, at)?;
                if let Some(revocation) = &entry.revocation {
                    revoke_in(tx, id, revocation)?;
                }
            }
            Ok(entries.len())
        })
    }
}

/// Whether an unrevoked grant covers `method` at `at`. Same rule as
/// `Grant::is_valid_at`: half-open window, revocation effective from its time on.
fn allowed(
    connection: &Connection,
    principal: &str,
    delegate: &str,
    method: Method,
    at: Timestamp,
) -> Result<bool, StoreError> {
    connection
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM grants WHERE principal = ?1 AND delegate = ?2 \
             AND (allowed & ?3) != 0 \
             AND (not_before IS NULL OR not_before <= ?4) \
             AND (until IS NULL OR ?4 < until) \
             AND (revoked_at IS NULL OR ?4 < revoked_at))",
        )
        .and_then(|mut statement| {
            statement.query_row(
                params![
                    principal,
                    delegate,
                    i64::from(method.bits()),
                    at.unix_seconds()
                ],
                |row| row.get(0),
            )
        })
        .map_err(db)
}

/// The unrevoked grants from `principal` to `delegate`, oldest first.
fn unrevoked_ids(
    tx: &Transaction<'_>,
    principal: &str,
    delegate: &str,
) -> Result<Vec<GrantId>, StoreError> {
    tx.prepare_cached(
        "SELECT id FROM grants WHERE principal = ?1 AND delegate = ?2 \
         AND revoked_at IS NULL ORDER BY id",
    )
    .and_then(|mut statement| {
        statement
            .query_map(params![principal, delegate], |row| row.get::<_, i64>(0))?
            .map(|id| id.map(GrantId))
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(db)
}

/// One history line: sequence, grant, action, at, by, principal, delegate, detail.
type HistoryRow = (
    i64,
    i64,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
);

fn history_rows(
    connection: &Connection,
    principal: Option<&str>,
) -> Result<Vec<HistoryRow>, StoreError> {
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
    statement
        .query_map(params![principal], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db)
}
