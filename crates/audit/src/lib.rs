//! The audit of stored mail behind `imipsec audit`: every message of mbox files, Maildir
//! folders and single `.eml` files (gzipped or not, [`mailbox`]) is evaluated by the
//! verify-then-process pipeline, in mailbox order with several workers ([`audit`]), classed
//! ([`classify`]: accept, reject, not-calendar, not-decrypted, error) and written to JSON
//! Lines, CSV and HTML reports with a summary ([`report`]).
//!
//! The library never reads the clock or the configuration: the evaluation time, the
//! pipeline, the store connections (one per worker, built by the caller's `make_worker`) and
//! the report sinks are arguments. The `imipsec` binary's `audit` command is the glue that
//! builds them from flags and configuration and commits the report files.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod evaluate;
pub mod mailbox;
pub mod report;

pub use evaluate::{
    Error, Inside, audit, classify, evaluate_message, evaluated, identity, look_inside,
};
