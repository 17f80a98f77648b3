//! The delegation tables (`grants`, `grant_history`) on PostgreSQL: one function per
//! query, each the counterpart of the same-named one in `sqlite/grants.rs`.

use ::postgres::{GenericClient, Row, Transaction};

use super::{PostgresStore, pg};
use crate::delegation::{
    self, DelegationStore, Grant, GrantFilter, GrantId, HistoryAction, HistoryEntry, NewGrant,
    Revocation, ValidGrant, validate_grant, validate_revocation,
};
use crate::error::{AddressField, StoreError};
use crate::method::{Method, MethodBits, MethodSet, Side};
use crate::rows::{GRANT_COLUMNS, GrantRow};
use crate::timestamp::Timestamp;

/// Reads one row of [`GRANT_COLUMNS`].
fn grant_row(row: &Row) -> Result<GrantRow, ::postgres::Error> {
    Ok(GrantRow {
        id: row.try_get(0)?,
        principal: row.try_get(1)?,
        delegate: row.try_get(2)?,
        methods: row.try_get(3)?,
        side: row.try_get(4)?,
        not_before: row.try_get(5)?,
        until: row.try_get(6)?,
        note: row.try_get(7)?,
        recorded_by: row.try_get(8)?,
        recorded_at: row.try_get(9)?,
        revoked_at: row.try_get(10)?,
        revoked_by: row.try_get(11)?,
        revoke_reason: row.try_get(12)?,
    })
}

/// Inserts a validated grant and its history line inside `tx`.
fn insert_grant(
    tx: &mut Transaction<'_>,
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
    let id: i64 = tx
        .query_one(
            "INSERT INTO grants (principal, delegate, methods, side, allowed, not_before, \
             until, note, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &g.principal,
                &g.delegate,
                &methods,
                &g.scope.side.map(Side::as_str),
                &i64::from(valid.allowed.0),
                &g.not_before.map(Timestamp::unix_seconds),
                &g.until.map(Timestamp::unix_seconds),
                &g.note,
                &g.recorded_by,
                &g.recorded_at.unix_seconds(),
            ],
        )
        .and_then(|row| row.try_get(0))
        .map_err(pg)?;
    let id = GrantId(id);
    add_history(tx, id, action, at, by, g.note.as_deref())?;
    Ok(id)
}

fn add_history(
    tx: &mut Transaction<'_>,
    id: GrantId,
    action: HistoryAction,
    at: Timestamp,
    by: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO grant_history (grant_id, action, at, by, detail) \
         VALUES ($1, $2, $3, $4, $5)",
        &[&id.0, &action.as_str(), &at.unix_seconds(), &by, &detail],
    )
    .map_err(pg)?;
    Ok(())
}

/// Marks one unrevoked grant revoked inside `tx`.
fn revoke_in(
    tx: &mut Transaction<'_>,
    id: GrantId,
    revocation: &Revocation,
) -> Result<(), StoreError> {
    let changed = tx
        .execute(
            "UPDATE grants SET revoked_at = $2, revoked_by = $3, revoke_reason = $4 \
             WHERE id = $1 AND revoked_at IS NULL",
            &[
                &id.0,
                &revocation.at.unix_seconds(),
                &revocation.by,
                &revocation.reason,
            ],
        )
        .map_err(pg)?;
    if changed == 0 {
        let existing = tx
            .query_opt("SELECT revoked_at FROM grants WHERE id = $1", &[&id.0])
            .map_err(pg)?;
        return Err(match existing {
            None => StoreError::NotFound { id },
            Some(row) => StoreError::AlreadyRevoked {
                id,
                at: Timestamp::from_unix_seconds(
                    row.try_get::<_, Option<i64>>(0)
                        .map_err(pg)?
                        .unwrap_or_default(),
                ),
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

/// Whether an unrevoked grant covers `method` at `at` (the rule of
/// `Grant::is_valid_at`).
fn allowed(
    client: &mut impl GenericClient,
    principal: &str,
    delegate: &str,
    method: Method,
    at: Timestamp,
) -> Result<bool, StoreError> {
    client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM grants WHERE principal = $1 AND delegate = $2 \
             AND (allowed & $3) != 0 \
             AND (not_before IS NULL OR not_before <= $4) \
             AND (until IS NULL OR $4 < until) \
             AND (revoked_at IS NULL OR $4 < revoked_at))",
            &[
                &principal,
                &delegate,
                &i64::from(method.bits()),
                &at.unix_seconds(),
            ],
        )
        .and_then(|row| row.try_get(0))
        .map_err(pg)
}

/// The unrevoked grants from `principal` to `delegate`, oldest first.
fn unrevoked_ids(
    tx: &mut Transaction<'_>,
    principal: &str,
    delegate: &str,
) -> Result<Vec<GrantId>, StoreError> {
    tx.query(
        "SELECT id FROM grants WHERE principal = $1 AND delegate = $2 \
         AND revoked_at IS NULL ORDER BY id",
        &[&principal, &delegate],
    )
    .map_err(pg)?
    .iter()
    .map(|row| row.try_get(0).map(GrantId).map_err(pg))
    .collect()
}

fn grant_rows(
    client: &mut impl GenericClient,
    principal: Option<&str>,
    delegate: Option<&str>,
) -> Result<Vec<GrantRow>, StoreError> {
    let condition = match (principal, delegate) {
        (Some(_), Some(_)) => "WHERE principal = $1 AND delegate = $2",
        (Some(_), None) => "WHERE principal = $1 AND $2::text IS NULL",
        (None, Some(_)) => "WHERE delegate = $2 AND $1::text IS NULL",
        (None, None) => "WHERE $1::text IS NULL AND $2::text IS NULL",
    };
    client
        .query(
            &format!("SELECT {GRANT_COLUMNS} FROM grants {condition} ORDER BY id"),
            &[&principal, &delegate],
        )
        .map_err(pg)?
        .iter()
        .map(|row| grant_row(row).map_err(pg))
        .collect()
}

fn history_rows(
    client: &mut impl GenericClient,
    principal: Option<&str>,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let condition = if principal.is_some() {
        "g.principal = $1"
    } else {
        "$1::text IS NULL"
    };
    let rows = client
        .query(
            &format!(
                "SELECT h.seq, h.grant_id, h.action, h.at, h.by, g.principal, g.delegate, \
                 h.detail FROM grant_history h JOIN grants g ON g.id = h.grant_id \
                 WHERE {condition} ORDER BY h.seq"
            ),
            &[&principal],
        )
        .map_err(pg)?;
    rows.iter()
        .map(|row| {
            let action: String = row.try_get(2).map_err(pg)?;
            Ok(HistoryEntry {
                sequence: row.try_get(0).map_err(pg)?,
                grant_id: GrantId(row.try_get(1).map_err(pg)?),
                action: HistoryAction::parse(&action).ok_or(StoreError::Corrupt)?,
                at: Timestamp::from_unix_seconds(row.try_get(3).map_err(pg)?),
                by: row.try_get(4).map_err(pg)?,
                principal: row.try_get(5).map_err(pg)?,
                delegate: row.try_get(6).map_err(pg)?,
                detail: row.try_get(7).map_err(pg)?,
            })
        })
        .collect()
}

impl DelegationStore for PostgresStore {
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
        self.statement(|client| allowed(client, &principal, &delegate, method, at))
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
        let rows = self.read(|tx| grant_rows(tx, principal.as_deref(), delegate.as_deref()))?;
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
        self.read(|tx| history_rows(tx, principal.as_deref()))
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
