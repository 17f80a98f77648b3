//! Raw column values to typed values, shared by both backends: a value that this code
//! never writes is [`StoreError::Corrupt`] whichever engine returned it.

use crate::delegation::{Grant, GrantId, GrantScope, Revocation};
use crate::error::StoreError;
use crate::event::EventRow;
use crate::method::{Method, MethodSet, Side};
use crate::timestamp::Timestamp;

/// A value in the database that this code never writes.
fn corrupt<T>(_: T) -> StoreError {
    StoreError::Corrupt
}

/// The columns of `grants` every query reads, in [`GrantRow`] order.
pub(crate) const GRANT_COLUMNS: &str = "id, principal, delegate, methods, side, not_before, until, \
     note, recorded_by, recorded_at, revoked_at, revoked_by, revoke_reason";

/// Raw grant columns; converted outside the database client so bad values map to
/// [`StoreError::Corrupt`].
pub(crate) struct GrantRow {
    pub(crate) id: i64,
    pub(crate) principal: String,
    pub(crate) delegate: String,
    pub(crate) methods: Option<i64>,
    pub(crate) side: Option<String>,
    pub(crate) not_before: Option<i64>,
    pub(crate) until: Option<i64>,
    pub(crate) note: Option<String>,
    pub(crate) recorded_by: String,
    pub(crate) recorded_at: i64,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) revoked_by: Option<String>,
    pub(crate) revoke_reason: Option<String>,
}

impl GrantRow {
    pub(crate) fn into_grant(self) -> Result<Grant, StoreError> {
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

pub(crate) fn event_row_from(
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
