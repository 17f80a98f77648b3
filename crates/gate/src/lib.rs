#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod authres;
mod config;
mod decide;
mod evaluate;
mod io;
mod lmtp;
pub mod logging;
pub mod metrics;
mod milter;
pub mod mime;
mod server;

pub use config::{
    GateConfig, LimitExceeded, Limits, LmtpConfig, MilterConfig, OversizeAction, RejectAction,
};
pub use decide::{
    Decide, DecideError, Envelope, GateVerdict, ItipSummary, Outcome, Reason, SmimeResult,
};
pub use evaluate::Clock;
pub use io::IdleTimeout;
pub use server::{Bound, Gate, ServeError, shutdown_signal};
