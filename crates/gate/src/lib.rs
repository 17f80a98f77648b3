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
pub mod pipeline_engine;
pub mod reload;
mod server;

pub use config::{
    ConfigError, GateConfig, LimitExceeded, Limits, LmtpConfig, MilterConfig, OversizeAction,
    RejectAction, UndecryptableAction,
};
pub use decide::{
    Decide, DecideError, Envelope, EventState, GateVerdict, ItipSummary, Judged, OpenPgpResult,
    Outcome, Reason, Recording, SmimeResult,
};
pub use evaluate::Clock;
pub use io::IdleTimeout;
pub use pipeline_engine::PipelineEngine;
pub use reload::{CrlStatus, Load, Loaded, ReloadError, Reloader};
pub use server::{Bound, Gate, ServeError, run_until_signal, shutdown_signal};
