//! The one error type of the crate.

use thiserror::Error;

use crate::delegation::GrantId;
use crate::timestamp::Timestamp;
use imipsec_types::{AddressError, DateTimeError, UnknownMethod, UnknownSide};

/// Which free-text field a [`StoreError::TextTooLong`] or
/// [`StoreError::InvalidText`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextField {
    /// A grant's note.
    Note,
    /// Who recorded, revoked or imported something.
    RecordedBy,
    /// A revocation reason.
    Reason,
    /// An event UID.
    Uid,
    /// An event RECURRENCE-ID.
    RecurrenceId,
}

/// Which address field a [`StoreError::InvalidAddress`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressField {
    /// The calendar user who delegates.
    Principal,
    /// The one who may sign for the principal.
    Delegate,
    /// The receiving calendar user that scopes event state.
    Scope,
    /// An ORGANIZER.
    Organizer,
    /// The sender of an update.
    Actor,
    /// An ATTENDEE.
    Attendee,
}

/// Everything that can go wrong in a store. Typed so the caller can map
/// each case: [`StoreError::is_transient`] errors deserve a temporary
/// failure (SMTP 4xx), the rest a permanent one or an operator's attention.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another writer held the lock beyond the busy timeout.
    #[error("store is busy: lock not obtained within the busy timeout")]
    Busy,
    /// The store cannot be reached or opened (missing directory,
    /// permissions, I/O failure).
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The file does not exist and the store was opened without
    /// [`StoreOptions::create`](crate::StoreOptions::create): commands that
    /// only read never create an empty store that silently grants nothing.
    #[error("store file does not exist")]
    FileNotFound,
    /// The file is not a database or is damaged.
    #[error("store is corrupt or not a database")]
    Corrupt,
    /// `integrity_check` reported a problem.
    #[error("integrity check failed: {first_problem}")]
    IntegrityCheckFailed {
        /// The first line the backend reported.
        first_problem: String,
    },
    /// The database was written by a newer version of this crate.
    #[error("schema version {found} is newer than the supported {supported}")]
    NewerSchema {
        /// Version in the file.
        found: i64,
        /// Newest version this build understands.
        supported: i64,
    },
    /// A valid database that belongs to another application.
    #[error("database belongs to another application")]
    ForeignDatabase,
    /// The disk is full; nothing was written.
    #[error("store is full")]
    Full,
    /// The database is read-only.
    #[error("store is read-only")]
    ReadOnly,
    /// Any other backend failure.
    #[error("store backend failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// An address failed validation.
    #[error("invalid {field:?} address: {reason}")]
    InvalidAddress {
        /// Which field.
        field: AddressField,
        /// Why.
        reason: AddressError,
    },
    /// `until` is not after `not_before`: the window would be empty.
    #[error("validity window is empty: until {until} is not after not_before {not_before}")]
    InvalidWindow {
        /// Start of the window.
        not_before: Timestamp,
        /// End of the window.
        until: Timestamp,
    },
    /// The scope allows no method at all (empty list, or a list that the
    /// side restriction empties).
    #[error("grant scope allows no method")]
    EmptyScope,
    /// Not one of the eight iTIP methods.
    #[error("unknown iTIP method {name:?}")]
    UnknownMethod {
        /// The name given (at most 32 characters of it).
        name: String,
    },
    /// Neither `organizer` nor `attendee`.
    #[error("unknown side {name:?}")]
    UnknownSide {
        /// The name given (at most 32 characters of it).
        name: String,
    },
    /// A timestamp could not be parsed.
    #[error("invalid timestamp at byte {offset}")]
    InvalidTimestamp {
        /// Byte offset of the first offending character.
        offset: usize,
    },
    /// A timestamp outside years 0000..=9999 cannot be exported.
    #[error("timestamp {seconds} is out of the exportable range")]
    TimestampOutOfRange {
        /// The raw value.
        seconds: i64,
    },
    /// A free-text field holds a control character.
    #[error("{field:?} has a control character at byte {offset}")]
    InvalidText {
        /// Which field.
        field: TextField,
        /// Byte offset.
        offset: usize,
    },
    /// A required free-text field is empty.
    #[error("{field:?} is empty")]
    EmptyText {
        /// Which field.
        field: TextField,
    },
    /// A free-text field exceeds [`Limits::text_bytes`](crate::Limits::text_bytes).
    #[error("{field:?} is {len} bytes, limit {max}")]
    TextTooLong {
        /// Which field.
        field: TextField,
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A UID exceeds [`Limits::uid_bytes`](crate::Limits::uid_bytes).
    #[error("UID is {len} bytes, limit {max}")]
    UidTooLong {
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A RECURRENCE-ID exceeds
    /// [`Limits::recurrence_id_bytes`](crate::Limits::recurrence_id_bytes).
    #[error("RECURRENCE-ID is {len} bytes, limit {max}")]
    RecurrenceIdTooLong {
        /// Length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More components than
    /// [`Limits::updates_per_message`](crate::Limits::updates_per_message).
    #[error("{count} components in one message, limit {max}")]
    TooManyUpdates {
        /// Components given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More attendees than
    /// [`Limits::attendees_per_update`](crate::Limits::attendees_per_update).
    #[error("{count} attendees in one component, limit {max}")]
    TooManyAttendees {
        /// Attendees given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Import text larger than [`Limits::import_bytes`](crate::Limits::import_bytes).
    #[error("import is {len} bytes, limit {max}")]
    ImportTooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More grants than [`Limits::import_grants`](crate::Limits::import_grants).
    #[error("import holds {count} grants, limit {max}")]
    TooManyImportGrants {
        /// Grants given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The import is not valid JSON of the export format.
    #[error("import is not valid delegation JSON: {0}")]
    ImportSyntax(#[source] serde_json::Error),
    /// The import names another format or version.
    #[error("import format {format:?} version {version} is not supported")]
    ImportFormat {
        /// `format` field found.
        format: String,
        /// `version` field found.
        version: u32,
    },
    /// One grant of an import is invalid; nothing was imported.
    #[error("import grant #{index}: {source}")]
    ImportEntry {
        /// Zero-based index in `grants`.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: Box<StoreError>,
    },
    /// No grant with this id.
    #[error("no grant {id}")]
    NotFound {
        /// The id asked for.
        id: GrantId,
    },
    /// The grant was already revoked; the first revocation stands.
    #[error("grant {id} was already revoked at {at}")]
    AlreadyRevoked {
        /// The grant.
        id: GrantId,
        /// When it was revoked.
        at: Timestamp,
    },
    /// A RECURRENCE-ID of `Some("")`: use `None` for the master component.
    #[error("empty RECURRENCE-ID (use None for the master component)")]
    EmptyRecurrenceId,
    /// An empty UID.
    #[error("empty UID")]
    EmptyUid,
}

impl StoreError {
    /// Whether retrying later may succeed (busy, unavailable, full): a mail
    /// gate should answer with a temporary failure.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Busy | StoreError::Unavailable(_) | StoreError::Full
        )
    }
}

impl From<UnknownMethod> for StoreError {
    fn from(error: UnknownMethod) -> Self {
        StoreError::UnknownMethod { name: error.name }
    }
}

impl From<UnknownSide> for StoreError {
    fn from(error: UnknownSide) -> Self {
        StoreError::UnknownSide { name: error.name }
    }
}

impl From<DateTimeError> for StoreError {
    fn from(error: DateTimeError) -> Self {
        match error {
            DateTimeError::OutOfRange { seconds } => StoreError::TimestampOutOfRange { seconds },
            DateTimeError::Invalid { offset } => StoreError::InvalidTimestamp { offset },
            _ => StoreError::InvalidTimestamp { offset: 0 },
        }
    }
}
