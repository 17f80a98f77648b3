#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod address;
mod datetime;
mod method;
mod recurrence;
mod timezone;

pub use address::{AddrSpec, AddressError, LocalPartCase, normalize_address};
pub use datetime::{DateTime, DateTimeError, Timestamp};
pub use method::{Method, Role, Side, UnknownMethod, UnknownSide};
pub use recurrence::{RecurrenceKey, RecurrenceKeyError};
pub use timezone::{
    MAX_OBSERVANCES, MAX_RDATES, MAX_RULE_YEARS, Observance, ObservanceKind, TimeZones,
    TimezoneError, VTimezone, ZoneValue, resolve_local_time,
};

/// Default bound on ATTENDEE properties in one component, shared by the iTIP parser's
/// `Limits::attendees` and the store's `Limits::attendees_per_update`, so that a message the
/// parser accepts is never refused by the store for its size alone (the two defaults were
/// once written twice and drifted, 1,000 against 5,000).
pub const DEFAULT_ATTENDEES_PER_COMPONENT: usize = 5_000;
