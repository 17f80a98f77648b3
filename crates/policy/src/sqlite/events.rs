//! The event-state tables (`events`, `replies`, `recorded_messages`): one function per query.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{SqliteStore, db};
use crate::LocalPartCase;
use crate::error::{AddressField, StoreError};
use crate::event::{
    self, EventRow, EventState, EventStateStore, EventUpdate, MessageDigest, Pending, ReplyRow,
    ReplyState, StateDecision, StateFinding, StateSource,
};
use crate::method::Method;
use crate::rows::event_row_from;
use crate::timestamp::Timestamp;

/// Reads event state for one scope through a connection or transaction.
struct SqlSource<'a> {
    connection: &'a Connection,
    scope: &'a str,
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
    fn local_part_case(&self) -> LocalPartCase {
        self.case
    }

    fn evaluate(
        &self,
        scope: &str,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError> {
        let (scope, updates) = event::validate(scope, updates, self.case, &self.limits)?;
        // A read transaction: one consistent snapshot, no write lock.
        self.read(|tx| {
            let mut source = SqlSource {
                connection: tx,
                scope: &scope,
            };
            // The evaluation time only stamps rows that are never written here.
            let (findings, _) =
                event::assess(&mut source, &updates, Timestamp::from_unix_seconds(0))?;
            Ok(findings)
        })
    }

    fn decide_and_record(
        &self,
        scope: &str,
        updates: &[EventUpdate],
        at: Timestamp,
    ) -> Result<StateDecision, StoreError> {
        let (scope, updates) = event::validate(scope, updates, self.case, &self.limits)?;
        // BEGIN IMMEDIATE takes the write lock before reading, so two
        // processes cannot both judge against the same old state.
        self.write(|tx| {
            let mut source = SqlSource {
                connection: tx,
                scope: &scope,
            };
            let (findings, pending) = event::assess(&mut source, &updates, at)?;
            if !findings.is_empty() {
                // Nothing is written: the commit of an empty transaction records nothing.
                return Ok(StateDecision::Rejected(findings));
            }
            write_pending(tx, &scope, &pending)?;
            Ok(StateDecision::Recorded)
        })
    }

    fn evaluate_message(
        &self,
        scope: &str,
        message: &MessageDigest,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError> {
        let (scope, updates) = event::validate(scope, updates, self.case, &self.limits)?;
        self.read(|tx| {
            let seen = recorded_message(tx, &scope, message)?;
            let mut source = SqlSource {
                connection: tx,
                scope: &scope,
            };
            let (findings, _) =
                event::assess(&mut source, &updates, Timestamp::from_unix_seconds(0))?;
            if seen && event::only_own_record(&findings) {
                return Ok(Vec::new());
            }
            Ok(findings)
        })
    }

    fn decide_and_record_message(
        &self,
        scope: &str,
        message: &MessageDigest,
        updates: &[EventUpdate],
        at: Timestamp,
    ) -> Result<StateDecision, StoreError> {
        let (scope, updates) = event::validate(scope, updates, self.case, &self.limits)?;
        self.write(|tx| {
            let seen = recorded_message(tx, &scope, message)?;
            let mut source = SqlSource {
                connection: tx,
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
            write_pending(tx, &scope, &pending)?;
            // Cached like every other per-message statement: parsing it again for each
            // recorded message showed in the gate's profile (issue 17).
            tx.prepare_cached(
                "INSERT OR IGNORE INTO recorded_messages (scope, digest, outcome, recorded_at) \
                 VALUES (?1, ?2, 'recorded', ?3)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    scope,
                    message.as_bytes().as_slice(),
                    at.unix_seconds()
                ])
            })
            .map_err(db)?;
            Ok(StateDecision::Recorded)
        })
    }

    fn event(
        &self,
        scope: &str,
        uid: &str,
        recurrence_id: Option<&str>,
    ) -> Result<Option<EventState>, StoreError> {
        let scope = self.address(scope, AddressField::Scope)?;
        let rid = recurrence_id.unwrap_or("");
        let found = self.read(|tx| {
            let mut source = SqlSource {
                connection: tx,
                scope: &scope,
            };
            let Some(row) = source.event_row(uid, rid)? else {
                return Ok(None);
            };
            Ok(Some((row, replies_of(tx, &scope, uid, rid)?)))
        })?;
        let Some((row, replies)) = found else {
            return Ok(None);
        };
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

/// Every attendee's recorded reply to one component, by attendee.
fn replies_of(
    tx: &Transaction<'_>,
    scope: &str,
    uid: &str,
    rid: &str,
) -> Result<Vec<ReplyState>, StoreError> {
    tx.prepare_cached(
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
    .map_err(db)
}
