//! Event state: organizer pinning, SEQUENCE/DTSTAMP replay protection and
//! signature downgrade detection.
//!
//! A signature proves who signed, not that the signer owns the event: a
//! signed CANCEL from Mallory naming Mallory as ORGANIZER of Alice's
//! meeting is internally consistent. Only remembering that the UID belongs
//! to Alice stops it, so the first accepted message for a UID pins its
//! organizer. Replays of older signed messages are stopped by the ordering
//! of RFC 5546 §2.1.5:
//!
//! > "the "SEQUENCE" property value ... [is] used to ... determine the
//! > most recent version ... If the "SEQUENCE" property values are the
//! > same, the one with the later "DTSTAMP" property value is the more
//! > recent."

use std::collections::HashMap;

use crate::Limits;
use crate::address::LocalPartCase;
use crate::delegation::address;
use crate::error::{AddressField, StoreError};
use crate::method::Method;
use crate::timestamp::Timestamp;

/// One iCalendar component (VEVENT/VTODO/...) of an iTIP message, as the
/// pipeline saw it after verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventUpdate {
    /// The UID (RFC 5545 §3.8.4.7), compared byte for byte.
    pub uid: String,
    /// RECURRENCE-ID as a canonical string (e.g. `20261201T100000Z`), or
    /// `None` for the master component.
    pub recurrence_id: Option<String>,
    /// The ORGANIZER the message names, if any.
    pub organizer: Option<String>,
    /// Whose message this is: the organizer (or the delegate signing for
    /// them) for organizer-side updates, the attendee for replies.
    pub actor: String,
    /// True when the actor speaks as the organizer: the update is then
    /// ordered against the event's last organizer update; otherwise
    /// against the actor's own last message (per attendee).
    pub actor_is_organizer: bool,
    /// SEQUENCE (0 when absent, RFC 5545 §3.8.7.4).
    pub sequence: i64,
    /// DTSTAMP, parsed with [`Timestamp::parse_icalendar_utc`].
    pub dtstamp: Timestamp,
    /// ATTENDEE addresses in the component.
    pub attendees: Vec<String>,
    /// Whether the message carried a verified signature.
    pub signed: bool,
    /// The iTIP method.
    pub method: Method,
}

/// Why a component was refused. Codes are stable (see [`Self::code`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateFinding {
    /// The UID is pinned to another organizer.
    OrganizerMismatch {
        /// The UID.
        uid: String,
        /// The RECURRENCE-ID, if any.
        recurrence_id: Option<String>,
        /// The organizer remembered for the UID.
        pinned: String,
        /// The organizer this message claims.
        claimed: String,
    },
    /// Not newer than what this actor already sent (RFC 5546 §2.1.5).
    StaleSequence {
        /// The UID.
        uid: String,
        /// The RECURRENCE-ID, if any.
        recurrence_id: Option<String>,
        /// Whose order was violated (organizer or attendee address).
        actor: String,
        /// SEQUENCE of this message.
        sequence: i64,
        /// DTSTAMP of this message.
        dtstamp: Timestamp,
        /// Last accepted SEQUENCE.
        last_sequence: i64,
        /// Last accepted DTSTAMP.
        last_dtstamp: Timestamp,
    },
    /// Unsigned, but this sender's messages for the event were signed
    /// before: a downgrade.
    Unsigned {
        /// The UID.
        uid: String,
        /// The RECURRENCE-ID, if any.
        recurrence_id: Option<String>,
        /// The sender.
        actor: String,
    },
}

impl StateFinding {
    /// Stable reason code: `organizer-mismatch`, `stale-sequence`,
    /// `unsigned`.
    pub const fn code(&self) -> &'static str {
        match self {
            StateFinding::OrganizerMismatch { .. } => "organizer-mismatch",
            StateFinding::StaleSequence { .. } => "stale-sequence",
            StateFinding::Unsigned { .. } => "unsigned",
        }
    }
}

/// Outcome of [`EventStateStore::decide_and_record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateDecision {
    /// Every component passed and all were recorded.
    Recorded,
    /// [`EventStateStore::decide_and_record_message`] only: this very message (same
    /// digest, same scope) was recorded before and the state is still what it wrote, so it
    /// is accepted again and nothing is written (the retry of a delivery that failed after
    /// recording).
    AlreadyRecorded,
    /// At least one component failed; nothing was recorded.
    Rejected(Vec<StateFinding>),
}

/// The SHA-256 digest of a message exactly as received: the key under which
/// [`EventStateStore::decide_and_record_message`] remembers that a message's event state
/// was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageDigest([u8; 32]);

impl MessageDigest {
    /// The digest from its 32 bytes (computed by the caller: this crate does no crypto).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        MessageDigest(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Whether every finding says only "this state is exactly what this update wrote" (the
/// same SEQUENCE and DTSTAMP as recorded): then a message found among the recorded ones
/// is its own retry, not a replay behind a newer update.
pub(crate) fn only_own_record(findings: &[StateFinding]) -> bool {
    findings.iter().all(|finding| {
        matches!(
            finding,
            StateFinding::StaleSequence {
                sequence,
                dtstamp,
                last_sequence,
                last_dtstamp,
                ..
            } if sequence == last_sequence && dtstamp == last_dtstamp
        )
    })
}

/// What one attendee last sent for an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyState {
    /// The attendee (normalised).
    pub attendee: String,
    /// SEQUENCE of their last accepted message.
    pub sequence: i64,
    /// DTSTAMP of their last accepted message.
    pub dtstamp: Timestamp,
    /// Whether any of their accepted messages was signed.
    pub signed: bool,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

/// Remembered state of one (scope, UID, RECURRENCE-ID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventState {
    /// The receiving calendar user.
    pub scope: String,
    /// The UID.
    pub uid: String,
    /// The RECURRENCE-ID, `None` for the master.
    pub recurrence_id: Option<String>,
    /// The pinned organizer (`None` until a message named one).
    pub organizer: Option<String>,
    /// Last accepted organizer SEQUENCE (`None` if only replies were seen).
    pub sequence: Option<i64>,
    /// Last accepted organizer DTSTAMP.
    pub dtstamp: Option<Timestamp>,
    /// Method of the last accepted organizer update.
    pub method: Option<Method>,
    /// Attendees of the last accepted organizer update.
    pub attendees: Vec<String>,
    /// Whether an accepted organizer update was ever signed (sticky).
    pub signed: bool,
    /// When the row was last written.
    pub recorded_at: Timestamp,
    /// Per-attendee reply order.
    pub replies: Vec<ReplyState>,
}

/// The event state store. Implementations must not read the clock.
pub trait EventStateStore {
    /// The local-part rule every address is normalised with (fixed for the store's life).
    /// A caller that correlates addresses itself must use the same rule.
    fn local_part_case(&self) -> LocalPartCase;

    /// Read-only: what [`Self::decide_and_record`] would find now.
    /// Components are judged in order, each as if the earlier passing ones
    /// had been recorded.
    fn evaluate(
        &self,
        scope: &str,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError>;

    /// [`Self::evaluate`] for the message with digest `message`: when this scope recorded
    /// that very message through [`Self::decide_and_record_message`] and the state is still
    /// exactly what it wrote, there is no finding (its retry will be accepted again).
    fn evaluate_message(
        &self,
        scope: &str,
        message: &MessageDigest,
        updates: &[EventUpdate],
    ) -> Result<Vec<StateFinding>, StoreError>;

    /// Atomically re-checks and, if no component has a finding, records
    /// them all; otherwise records nothing.
    fn decide_and_record(
        &self,
        scope: &str,
        updates: &[EventUpdate],
        at: Timestamp,
    ) -> Result<StateDecision, StoreError>;

    /// [`Self::decide_and_record`], idempotent per message (issue #15: the LMTP gate records
    /// before it delivers). `message` is the digest of the received bytes. In one
    /// transaction: when this scope already recorded `message` and the state is still
    /// exactly what it wrote, answers [`StateDecision::AlreadyRecorded`] and writes
    /// nothing, so a retry after a crash or a failed delivery is accepted again, once;
    /// otherwise judges and records like [`Self::decide_and_record`] and remembers
    /// `message`. A different message with the same SEQUENCE is still stale, and so is this
    /// message once a newer update was recorded.
    fn decide_and_record_message(
        &self,
        scope: &str,
        message: &MessageDigest,
        updates: &[EventUpdate],
        at: Timestamp,
    ) -> Result<StateDecision, StoreError>;

    /// The remembered state of one component.
    fn event(
        &self,
        scope: &str,
        uid: &str,
        recurrence_id: Option<&str>,
    ) -> Result<Option<EventState>, StoreError>;
}

/// A stored event row (backend-neutral).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct EventRow {
    pub(crate) organizer: Option<String>,
    pub(crate) sequence: Option<i64>,
    pub(crate) dtstamp: Option<Timestamp>,
    pub(crate) method: Option<Method>,
    pub(crate) attendees: Vec<String>,
    pub(crate) signed: bool,
    pub(crate) recorded_at: Timestamp,
}

/// A stored reply row (backend-neutral).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReplyRow {
    pub(crate) sequence: i64,
    pub(crate) dtstamp: Timestamp,
    pub(crate) signed: bool,
    pub(crate) recorded_at: Timestamp,
}

/// Reads of the current state a backend provides to [`assess`]. The
/// recurrence id is `""` for the master component.
pub(crate) trait StateSource {
    fn event_row(&mut self, uid: &str, rid: &str) -> Result<Option<EventRow>, StoreError>;
    /// The organizer of any row for the UID (all rows of a UID agree).
    fn pinned_organizer(&mut self, uid: &str) -> Result<Option<String>, StoreError>;
    /// Whether any organizer update for the UID was signed.
    fn uid_signed(&mut self, uid: &str) -> Result<bool, StoreError>;
    fn reply_row(
        &mut self,
        uid: &str,
        rid: &str,
        attendee: &str,
    ) -> Result<Option<ReplyRow>, StoreError>;
}

/// Writes a backend performs after an accept.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) events: HashMap<(String, String), EventRow>,
    pub(crate) replies: HashMap<(String, String, String), ReplyRow>,
    pinned: HashMap<String, String>,
    signed: HashMap<String, bool>,
}

/// Validates and normalises a scope and the updates of one message.
pub(crate) fn validate(
    scope: &str,
    updates: &[EventUpdate],
    case: LocalPartCase,
    limits: &Limits,
) -> Result<(String, Vec<EventUpdate>), StoreError> {
    let scope = address(scope, AddressField::Scope, case, limits)?;
    if updates.len() > limits.updates_per_message {
        return Err(StoreError::TooManyUpdates {
            count: updates.len(),
            max: limits.updates_per_message,
        });
    }
    let updates = updates
        .iter()
        .map(|u| {
            if u.uid.is_empty() {
                return Err(StoreError::EmptyUid);
            }
            if u.uid.len() > limits.uid_bytes {
                return Err(StoreError::UidTooLong {
                    len: u.uid.len(),
                    max: limits.uid_bytes,
                });
            }
            if let Some(rid) = &u.recurrence_id {
                if rid.is_empty() {
                    return Err(StoreError::EmptyRecurrenceId);
                }
                if rid.len() > limits.recurrence_id_bytes {
                    return Err(StoreError::RecurrenceIdTooLong {
                        len: rid.len(),
                        max: limits.recurrence_id_bytes,
                    });
                }
            }
            if u.attendees.len() > limits.attendees_per_update {
                return Err(StoreError::TooManyAttendees {
                    count: u.attendees.len(),
                    max: limits.attendees_per_update,
                });
            }
            Ok(EventUpdate {
                uid: u.uid.clone(),
                recurrence_id: u.recurrence_id.clone(),
                organizer: u
                    .organizer
                    .as_deref()
                    .map(|o| address(o, AddressField::Organizer, case, limits))
                    .transpose()?,
                actor: address(&u.actor, AddressField::Actor, case, limits)?,
                actor_is_organizer: u.actor_is_organizer,
                sequence: u.sequence,
                dtstamp: u.dtstamp,
                attendees: u
                    .attendees
                    .iter()
                    .map(|a| address(a, AddressField::Attendee, case, limits))
                    .collect::<Result<_, _>>()?,
                signed: u.signed,
                method: u.method,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((scope, updates))
}

/// What a component may write (the table in the crate README). RFC 5546 §2.1.5 orders
/// revisions of the event and each attendee's responses; nothing else has a place in the
/// order: REFRESH "carries no SEQUENCE or event data" (§3.2.6), COUNTER is a proposal
/// (§3.2.7), DECLINECOUNTER answers one (§3.2.8), and a REQUEST forwarded by a delegating
/// attendee (§3.2.2.3) is a copy of the organizer's revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// PUBLISH, REQUEST, ADD, CANCEL from the organizer: ordered against the event's last
    /// revision; pins the organizer, writes the order, method, attendees and signed flag.
    Revision,
    /// REPLY from an attendee: ordered against that attendee's last reply; writes that order
    /// and signed flag, never the organizer pin.
    Response,
    /// REFRESH, COUNTER, DECLINECOUNTER, a delegator's REQUEST: reads the pin and the
    /// sender's signed flag, writes nothing.
    ReadOnly,
}

impl Effect {
    pub(crate) fn of(u: &EventUpdate) -> Effect {
        match (u.method, u.actor_is_organizer) {
            (Method::Publish | Method::Request | Method::Add | Method::Cancel, true) => {
                Effect::Revision
            }
            (Method::Reply, false) => Effect::Response,
            _ => Effect::ReadOnly,
        }
    }
}

/// RFC 5546 §2.1.5 order: not newer when SEQUENCE is lower, or equal with
/// a DTSTAMP that is not later.
fn is_stale(
    sequence: i64,
    dtstamp: Timestamp,
    last_sequence: i64,
    last_dtstamp: Timestamp,
) -> bool {
    sequence < last_sequence || (sequence == last_sequence && dtstamp <= last_dtstamp)
}

impl Pending {
    fn event_row(
        &self,
        source: &mut dyn StateSource,
        uid: &str,
        rid: &str,
    ) -> Result<Option<EventRow>, StoreError> {
        match self.events.get(&(uid.to_owned(), rid.to_owned())) {
            Some(row) => Ok(Some(row.clone())),
            None => source.event_row(uid, rid),
        }
    }

    fn pinned(
        &self,
        source: &mut dyn StateSource,
        uid: &str,
    ) -> Result<Option<String>, StoreError> {
        match self.pinned.get(uid) {
            Some(organizer) => Ok(Some(organizer.clone())),
            None => source.pinned_organizer(uid),
        }
    }

    fn uid_signed(&self, source: &mut dyn StateSource, uid: &str) -> Result<bool, StoreError> {
        if self.signed.get(uid).copied().unwrap_or(false) {
            return Ok(true);
        }
        source.uid_signed(uid)
    }

    fn reply_row(
        &self,
        source: &mut dyn StateSource,
        uid: &str,
        rid: &str,
        attendee: &str,
    ) -> Result<Option<ReplyRow>, StoreError> {
        match self
            .replies
            .get(&(uid.to_owned(), rid.to_owned(), attendee.to_owned()))
        {
            Some(row) => Ok(Some(row.clone())),
            None => source.reply_row(uid, rid, attendee),
        }
    }
}

/// Judges normalised updates in order against `source` plus the effect of
/// the earlier passing ones; returns the findings and the writes that
/// recording would perform.
pub(crate) fn assess(
    source: &mut dyn StateSource,
    updates: &[EventUpdate],
    at: Timestamp,
) -> Result<(Vec<StateFinding>, Pending), StoreError> {
    let mut pending = Pending::default();
    let mut findings = Vec::new();
    for u in updates {
        let rid = u.recurrence_id.as_deref().unwrap_or("");
        let claimed = u
            .organizer
            .clone()
            .or_else(|| u.actor_is_organizer.then(|| u.actor.clone()));
        let pinned = pending.pinned(source, &u.uid)?;
        let mut found = Vec::new();
        if let (Some(pinned), Some(claimed)) = (&pinned, &claimed)
            && pinned != claimed
        {
            found.push(StateFinding::OrganizerMismatch {
                uid: u.uid.clone(),
                recurrence_id: u.recurrence_id.clone(),
                pinned: pinned.clone(),
                claimed: claimed.clone(),
            });
        }
        let organizer = pinned.or(claimed);
        let row = pending.event_row(source, &u.uid, rid)?;
        let effect = Effect::of(u);
        if effect == Effect::Revision {
            if let Some(EventRow {
                sequence: Some(last_sequence),
                dtstamp: Some(last_dtstamp),
                ..
            }) = row
                && is_stale(u.sequence, u.dtstamp, last_sequence, last_dtstamp)
            {
                found.push(stale(u, last_sequence, last_dtstamp));
            }
            if !u.signed && pending.uid_signed(source, &u.uid)? {
                found.push(unsigned(u));
            }
            if found.is_empty() {
                let signed = u.signed || row.as_ref().is_some_and(|r| r.signed);
                let new_row = EventRow {
                    organizer: organizer.clone(),
                    sequence: Some(u.sequence),
                    dtstamp: Some(u.dtstamp),
                    method: Some(u.method),
                    attendees: u.attendees.clone(),
                    signed,
                    recorded_at: at,
                };
                pending
                    .events
                    .insert((u.uid.clone(), rid.to_owned()), new_row);
                if signed {
                    pending.signed.insert(u.uid.clone(), true);
                }
                // Only a revision, whose signer the correlation proved to be the ORGANIZER,
                // pins the organizer: every other method's ORGANIZER is an unproven claim.
                if let Some(organizer) = organizer {
                    pending.pinned.insert(u.uid.clone(), organizer);
                }
            }
        } else if u.actor_is_organizer {
            // DECLINECOUNTER: read-only, the pin and the downgrade flag.
            if !u.signed && pending.uid_signed(source, &u.uid)? {
                found.push(unsigned(u));
            }
        } else {
            let reply = pending.reply_row(source, &u.uid, rid, &u.actor)?;
            if effect == Effect::Response
                && let Some(last) = &reply
                && is_stale(u.sequence, u.dtstamp, last.sequence, last.dtstamp)
            {
                found.push(stale(u, last.sequence, last.dtstamp));
            }
            if !u.signed && reply.as_ref().is_some_and(|r| r.signed) {
                found.push(unsigned(u));
            }
            if found.is_empty() && effect == Effect::Response {
                pending.replies.insert(
                    (u.uid.clone(), rid.to_owned(), u.actor.clone()),
                    ReplyRow {
                        sequence: u.sequence,
                        dtstamp: u.dtstamp,
                        signed: u.signed || reply.is_some_and(|r| r.signed),
                        recorded_at: at,
                    },
                );
                // The reply is kept under the event's row, created empty (no organizer, no
                // organizer order) when the reply is the first message seen for it.
                if row.is_none() {
                    pending.events.insert(
                        (u.uid.clone(), rid.to_owned()),
                        EventRow {
                            organizer: None,
                            sequence: None,
                            dtstamp: None,
                            method: None,
                            attendees: Vec::new(),
                            signed: false,
                            recorded_at: at,
                        },
                    );
                }
            }
        }
        findings.extend(found);
    }
    Ok((findings, pending))
}

fn stale(u: &EventUpdate, last_sequence: i64, last_dtstamp: Timestamp) -> StateFinding {
    StateFinding::StaleSequence {
        uid: u.uid.clone(),
        recurrence_id: u.recurrence_id.clone(),
        actor: u.actor.clone(),
        sequence: u.sequence,
        dtstamp: u.dtstamp,
        last_sequence,
        last_dtstamp,
    }
}

fn unsigned(u: &EventUpdate) -> StateFinding {
    StateFinding::Unsigned {
        uid: u.uid.clone(),
        recurrence_id: u.recurrence_id.clone(),
        actor: u.actor.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend with no rows: the decision logic needs nothing SQL-shaped.
    struct Empty;

    impl StateSource for Empty {
        fn event_row(&mut self, _: &str, _: &str) -> Result<Option<EventRow>, StoreError> {
            Ok(None)
        }
        fn pinned_organizer(&mut self, _: &str) -> Result<Option<String>, StoreError> {
            Ok(None)
        }
        fn uid_signed(&mut self, _: &str) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn reply_row(&mut self, _: &str, _: &str, _: &str) -> Result<Option<ReplyRow>, StoreError> {
            Ok(None)
        }
    }

    fn update(organizer: &str, sequence: i64, signed: bool) -> EventUpdate {
        EventUpdate {
            uid: "u".into(),
            recurrence_id: None,
            organizer: Some(organizer.into()),
            actor: organizer.into(),
            actor_is_organizer: true,
            sequence,
            dtstamp: Timestamp::from_unix_seconds(10),
            attendees: Vec::new(),
            signed,
            method: Method::Request,
        }
    }

    #[test]
    fn stale_order_follows_rfc5546() {
        let t = Timestamp::from_unix_seconds;
        assert!(is_stale(1, t(100), 2, t(0)), "lower SEQUENCE");
        assert!(is_stale(2, t(99), 2, t(100)), "older DTSTAMP");
        assert!(is_stale(2, t(100), 2, t(100)), "same DTSTAMP");
        assert!(!is_stale(2, t(101), 2, t(100)), "newer DTSTAMP");
        assert!(!is_stale(3, t(0), 2, t(100)), "higher SEQUENCE");
    }

    #[test]
    fn later_components_see_earlier_ones() {
        let message = [
            update("alice@x", 0, true),
            update("mallory@x", 1, true),
            update("alice@x", 1, false),
            update("alice@x", 2, true),
        ];
        let (findings, pending) =
            assess(&mut Empty, &message, Timestamp::from_unix_seconds(5)).unwrap();
        let codes: Vec<_> = findings.iter().map(StateFinding::code).collect();
        assert_eq!(codes, vec!["organizer-mismatch", "unsigned"]);
        let row = &pending.events[&("u".to_owned(), String::new())];
        assert_eq!(
            (row.organizer.as_deref(), row.sequence),
            (Some("alice@x"), Some(2))
        );
        assert!(row.signed);
    }
}
