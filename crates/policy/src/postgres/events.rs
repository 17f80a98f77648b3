//! The event-state tables (`events`, `replies`, `recorded_messages`) on PostgreSQL: one function per query,
//! each the counterpart of the same-named one in `sqlite/events.rs`.

use ::postgres::Transaction;

use super::{PostgresStore, pg};
use crate::LocalPartCase;
use crate::error::{AddressField, StoreError};
use crate::event::{
    self, EventRow, EventState, EventStateStore, EventUpdate, MessageDigest, Pending, ReplyRow,
    ReplyState, StateDecision, StateFinding, StateSource,
};
use crate::method::Method;
use crate::rows::event_row_from;
use crate::timestamp::Timestamp;

/// Reads event state for one scope inside a transaction.
struct PgSource<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    scope: &'a str,
}

impl StateSource for PgSource<'_, '_> {
    fn event_row(&mut self, uid: &str, rid: &str) -> Result<Option<EventRow>, StoreError> {
        let row = self
            .tx
            .query_opt(
                "SELECT organizer, sequence, dtstamp, method, attendees, signed, recorded_at \
                 FROM events WHERE scope = $1 AND uid = $2 AND rid = $3",
                &[&self.scope, &uid, &rid],
            )
            .map_err(pg)?;
        row.map(|row| {
            event_row_from(
                row.try_get(0).map_err(pg)?,
                row.try_get(1).map_err(pg)?,
                row.try_get(2).map_err(pg)?,
                row.try_get(3).map_err(pg)?,
                row.try_get(4).map_err(pg)?,
                row.try_get(5).map_err(pg)?,
                row.try_get(6).map_err(pg)?,
            )
        })
        .transpose()
    }

    fn pinned_organizer(&mut self, uid: &str) -> Result<Option<String>, StoreError> {
        self.tx
            .query_opt(
                "SELECT organizer FROM events WHERE scope = $1 AND uid = $2 \
                 AND organizer IS NOT NULL LIMIT 1",
                &[&self.scope, &uid],
            )
            .map_err(pg)?
            .map(|row| row.try_get(0).map_err(pg))
            .transpose()
    }

    fn uid_signed(&mut self, uid: &str) -> Result<bool, StoreError> {
        self.tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM events WHERE scope = $1 AND uid = $2 \
                 AND signed)",
                &[&self.scope, &uid],
            )
            .and_then(|row| row.try_get(0))
            .map_err(pg)
    }

    fn reply_row(
        &mut self,
        uid: &str,
        rid: &str,
        attendee: &str,
    ) -> Result<Option<ReplyRow>, StoreError> {
        let row = self
            .tx
            .query_opt(
                "SELECT sequence, dtstamp, signed, recorded_at FROM replies \
                 WHERE scope = $1 AND uid = $2 AND rid = $3 AND attendee = $4",
                &[&self.scope, &uid, &rid, &attendee],
            )
            .map_err(pg)?;
        row.map(|row| {
            Ok(ReplyRow {
                sequence: row.try_get(0).map_err(pg)?,
                dtstamp: Timestamp::from_unix_seconds(row.try_get(1).map_err(pg)?),
                signed: row.try_get(2).map_err(pg)?,
                recorded_at: Timestamp::from_unix_seconds(row.try_get(3).map_err(pg)?),
            })
        })
        .transpose()
    }
}

fn write_pending(
    tx: &mut Transaction<'_>,
    scope: &str,
    pending: &Pending,
) -> Result<(), StoreError> {
    let events = tx
        .prepare(
            "INSERT INTO events (scope, uid, rid, organizer, sequence, dtstamp, method, \
             attendees, signed, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (scope, uid, rid) DO UPDATE SET organizer = excluded.organizer, \
             sequence = excluded.sequence, dtstamp = excluded.dtstamp, \
             method = excluded.method, attendees = excluded.attendees, \
             signed = excluded.signed, recorded_at = excluded.recorded_at",
        )
        .map_err(pg)?;
    for ((uid, rid), row) in &pending.events {
        let attendees =
            serde_json::to_string(&row.attendees).map_err(|e| StoreError::Backend(Box::new(e)))?;
        tx.execute(
            &events,
            &[
                &scope,
                uid,
                rid,
                &row.organizer,
                &row.sequence,
                &row.dtstamp.map(Timestamp::unix_seconds),
                &row.method.map(Method::as_str),
                &attendees,
                &row.signed,
                &row.recorded_at.unix_seconds(),
            ],
        )
        .map_err(pg)?;
    }
    let replies = tx
        .prepare(
            "INSERT INTO replies (scope, uid, rid, attendee, sequence, dtstamp, signed, \
             recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (scope, uid, rid, attendee) DO UPDATE SET \
             sequence = excluded.sequence, dtstamp = excluded.dtstamp, \
             signed = excluded.signed, recorded_at = excluded.recorded_at",
        )
        .map_err(pg)?;
    for ((uid, rid, attendee), row) in &pending.replies {
        tx.execute(
            &replies,
            &[
                &scope,
                uid,
                rid,
                attendee,
                &row.sequence,
                &row.dtstamp.unix_seconds(),
                &row.signed,
                &row.recorded_at.unix_seconds(),
            ],
        )
        .map_err(pg)?;
    }
    Ok(())
}

/// Every attendee's recorded reply to one component, by attendee.
fn replies_of(
    tx: &mut Transaction<'_>,
    scope: &str,
    uid: &str,
    rid: &str,
) -> Result<Vec<ReplyState>, StoreError> {
    tx.query(
        "SELECT attendee, sequence, dtstamp, signed, recorded_at FROM replies \
         WHERE scope = $1 AND uid = $2 AND rid = $3 ORDER BY attendee",
        &[&scope, &uid, &rid],
    )
    .map_err(pg)?
    .iter()
    .map(|row| {
        Ok(ReplyState {
            attendee: row.try_get(0).map_err(pg)?,
            sequence: row.try_get(1).map_err(pg)?,
            dtstamp: Timestamp::from_unix_seconds(row.try_get(2).map_err(pg)?),
            signed: row.try_get(3).map_err(pg)?,
            recorded_at: Timestamp::from_unix_seconds(row.try_get(4).map_err(pg)?),
        })
    })
    .collect()
}

/// Whether `scope` recorded the message with digest `message`.
fn recorded_message(
    tx: &mut Transaction<'_>,
    scope: &str,
    message: &MessageDigest,
) -> Result<bool, StoreError> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM recorded_messages WHERE scope = $1 AND digest = $2)",
            &[&scope, &message.as_bytes().as_slice()],
        )
        .map_err(pg)?;
    row.try_get(0).map_err(pg)
}

impl EventStateStore for PostgresStore {
    fn local_part_case(&self) -> LocalPartCase {
        self.case
    }

    fn evaluate(
        &self,
        scope: &str,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError> {
        let (scope, updates) = event::validate(scope, updates, self.case, &self.limits)?;
        self.read(|tx| {
            let mut source = PgSource { tx, scope: &scope };
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
        // SERIALIZABLE: judged and recorded as if no other gate ran at the same time; a
        // conflicting gate's transaction aborts (40001) and is judged again.
        self.write(|tx| {
            let mut source = PgSource { tx, scope: &scope };
            let (findings, pending) = event::assess(&mut source, &updates, at)?;
            if !findings.is_empty() {
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
            let mut source = PgSource { tx, scope: &scope };
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
            let mut source = PgSource { tx, scope: &scope };
            let (findings, pending) = event::assess(&mut source, &updates, at)?;
            if seen && event::only_own_record(&findings) {
                // This message's own record, and nothing newer since: its retry.
                return Ok(StateDecision::AlreadyRecorded);
            }
            if !findings.is_empty() {
                return Ok(StateDecision::Rejected(findings));
            }
            write_pending(tx, &scope, &pending)?;
            tx.execute(
                "INSERT INTO recorded_messages (scope, digest, outcome, recorded_at) \
                 VALUES ($1, $2, 'recorded', $3) ON CONFLICT (scope, digest) DO NOTHING",
                &[&scope, &message.as_bytes().as_slice(), &at.unix_seconds()],
            )
            .map_err(pg)?;
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
            let mut source = PgSource { tx, scope: &scope };
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
