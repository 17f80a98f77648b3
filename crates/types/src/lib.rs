#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod address;
mod datetime;
mod method;
mod recurrence;

pub use address::{AddrSpec, AddressError, LocalPartCase, normalize_address};
pub use datetime::{DateTime, DateTimeError, Timestamp};
pub use method::{Method, Role, Side, UnknownMethod, UnknownSide};
pub use recurrence::{RecurrenceKey, RecurrenceKeyError};
