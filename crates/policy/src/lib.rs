#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod address;
mod delegation;
mod error;
mod event;
mod method;
mod postgres;
mod retry;
mod rows;
mod schema;
mod sqlite;
mod store;
mod timestamp;

pub use address::{AddressError, LocalPartCase, normalize_address};
pub use delegation::{
    DelegationStore, Grant, GrantFilter, GrantId, GrantScope, HistoryAction, HistoryEntry,
    NewGrant, Revocation,
};
pub use error::{AddressField, StoreError, TextField};
pub use event::{
    EventState, EventStateStore, EventUpdate, MessageDigest, ReplyState, StateDecision,
    StateFinding,
};
pub use method::{Method, Side};
pub use postgres::{PostgresStore, PostgresUrlError};
pub use schema::{SCHEMA_VERSION, StoreInit};
pub use sqlite::{SqliteStore, StoreOptions, Synchronous};
pub use store::{Store, StoreLocation};
pub use timestamp::Timestamp;

/// Bounds on everything a caller or an import file can make the store hold.
/// Each limit has its own [`StoreError`] variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest address after `mailto:` ([`AddressError::TooLong`]).
    /// RFC 5321 §4.5.3.1 allows 64 + 1 + 255.
    pub address_bytes: usize,
    /// Longest UID ([`StoreError::UidTooLong`]).
    pub uid_bytes: usize,
    /// Longest RECURRENCE-ID ([`StoreError::RecurrenceIdTooLong`]).
    pub recurrence_id_bytes: usize,
    /// Longest note, reason or recorder ([`StoreError::TextTooLong`]).
    pub text_bytes: usize,
    /// Most components in one message ([`StoreError::TooManyUpdates`]).
    pub updates_per_message: usize,
    /// Most attendees in one component ([`StoreError::TooManyAttendees`]). The default is
    /// [`imipsec_types::DEFAULT_ATTENDEES_PER_COMPONENT`], the iTIP layer's default too, so
    /// that a message the parser accepts is not refused by the store for its size alone.
    pub attendees_per_update: usize,
    /// Largest import text ([`StoreError::ImportTooLarge`]).
    pub import_bytes: usize,
    /// Most grants in one import ([`StoreError::TooManyImportGrants`]).
    pub import_grants: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            address_bytes: 320,
            uid_bytes: 1024,
            recurrence_id_bytes: 64,
            text_bytes: 1024,
            updates_per_message: 100,
            attendees_per_update: imipsec_types::DEFAULT_ATTENDEES_PER_COMPONENT,
            import_bytes: 64 * 1024 * 1024,
            import_grants: 200_000,
        }
    }
}
