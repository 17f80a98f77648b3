#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod compose;
mod content_line;
mod delegation;
mod pipeline;
mod reason;
mod settings;
pub mod signer;
mod verdict;
mod verified;

pub use content_line::{ContentLineError, canonical_calendar, check_line_breaks};
pub use delegation::StoreDelegationPolicy;
pub use pipeline::{EvaluateError, Evaluation, Pipeline, Prepared, Stores};
pub use reason::{Finding, Reason, Warning};
pub use settings::{Limits, Settings};
pub use verdict::{
    Accepted, Decision, EventState, ItipReport, LayerKind, LayerReport, LayerStatus, Rejected,
    SignerReport, Verdict,
};
pub use verified::{Authentication, VerifiedCalendar, VerifiedMessage};

/// The iTIP layer, re-exported.
pub use imipsec_itip as itip;
/// The policy store, re-exported.
pub use imipsec_policy as policy;
/// The S/MIME layer, re-exported so callers (the `imipsec` binary) build trust stores and
/// identities with the exact version the pipeline uses.
pub use imipsec_smime as smime;
