//! The decision engine seen from the gate: a trait the verify-then-process pipeline
//! implements, so the protocol code here is independent of how a verdict is reached.

use time::OffsetDateTime;

/// The SMTP envelope of one transaction (RFC 5321 section 3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// `MAIL FROM` reverse path, without angle brackets (empty for the null sender).
    pub mail_from: String,
    /// `RCPT TO` forward paths, without angle brackets, in order.
    pub recipients: Vec<String>,
}

/// What the engine concluded about one message for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Verified: the signer may perform every iTIP method in the message.
    Accept,
    /// Calendar data that must not reach the calendar server as it is.
    Reject,
    /// After unwrapping (e.g. an opaque-signed or decryptable S/MIME message, or the
    /// encapsulated content of an opaque signature that did not verify) there is no
    /// calendar data: the gate passes the message with `x-imip=none`.
    NotCalendar,
    /// An encryption layer the engine holds no key for hides the content, and nothing
    /// outside it is calendar data: follows `on_undecryptable` (default: pass with
    /// `x-imip=none (not decrypted)`).
    NotDecrypted,
}

/// The RFC 7281 `smime` result the gate reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmimeResult {
    /// A valid signature by a trusted signer (RFC 7281 section 3.1 `pass`).
    Pass,
    /// A signature that does not verify (`fail`).
    Fail,
    /// No signature (`none`).
    None,
}

impl SmimeResult {
    /// The RFC 8601 result keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::None => "none",
        }
    }
}

/// The result of a message's OpenPGP signature layers (RFC 8601 extension method `x-pgp`; no
/// method is registered for OpenPGP): `pass` when one verified with a certificate the operator
/// vouches for, else `fail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPgpResult {
    /// `pass` or `fail` (the keywords of [`SmimeResult`]).
    pub result: SmimeResult,
    /// The verified signer's e-mail address (`body.pgp-identifier`): a user ID email with a
    /// valid self-signature.
    pub signer: Option<String>,
}

/// One stable reason code with a human detail, as produced by the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The typed reason (its stable, documented code is `code.code()`, e.g.
    /// `role-not-authorized`).
    pub code: imipsec_pipeline::Reason,
    /// Human explanation; never used for decisions.
    pub detail: String,
}

/// The iTIP facts of one calendar component the A-R header reports (RFC 5546 roles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItipSummary {
    /// iTIP `METHOD` (e.g. `REQUEST`, `CANCEL`, `REPLY`).
    pub method: String,
    /// Role of the signer for this method (`organizer` or `attendee`).
    pub role: String,
    /// The principal the signer acted for through a SENT-BY delegation, if any.
    pub delegation: Option<String>,
}

/// Whether the engine checked the event state (the organizer pinned to each UID, SEQUENCE
/// and DTSTAMP replay, RFC 5546 section 2.1.5) for a verdict. Reported in the
/// `Authentication-Results` header (`policy.event-state`) and the audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// The event-state store judged the message.
    Checked,
    /// It did not (no store, or the message was rejected before that step).
    NotChecked,
}

impl EventState {
    /// `checked` or `not-checked`.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Checked => "checked",
            Self::NotChecked => "not-checked",
        }
    }
}

/// The engine's verdict about one message for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateVerdict {
    /// The decision.
    pub outcome: Outcome,
    /// Why (empty for a plain accept).
    pub reasons: Vec<Reason>,
    /// The `smime` result.
    pub smime: SmimeResult,
    /// The verified signer's e-mail address (RFC 7281 `body.smime-identifier`).
    pub signer: Option<String>,
    /// The OpenPGP (PGP/MIME, RFC 3156) result, when the message has an OpenPGP signature
    /// layer: written as `x-pgp` beside `smime`.
    pub openpgp: Option<OpenPgpResult>,
    /// One entry per calendar component.
    pub itip: Vec<ItipSummary>,
    /// Whether the event state was checked for this verdict.
    pub event_state: EventState,
}

impl GateVerdict {
    /// The first reason code, or `rejected` when the engine gave none.
    pub fn primary_code(&self) -> &'static str {
        self.reasons
            .first()
            .map_or("rejected", |reason| reason.code.code())
    }
}

/// The engine could not reach a verdict. The gate answers with a temporary failure
/// (`451 4.7.x`): calendar mail is never passed unevaluated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecideError {
    /// The policy or event store is locked or busy.
    #[error("policy store busy")]
    StoreBusy,
    /// Any other failure inside the engine.
    #[error("decision engine failed: {0}")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Recording an accepted verdict's event state for one recipient: made by the engine that
/// judged the message, carrying what the judgement found (for the pipeline, its
/// `Accepted`), consumed once. Recording never verifies the message again.
pub trait Recording: Send + std::fmt::Debug {
    /// Store the event state.
    ///
    /// # Errors
    /// [`DecideError`] when the state could not be stored (the store failed, or the state
    /// moved since the judgement); the gate then tempfails.
    fn record(self: Box<Self>) -> Result<(), DecideError>;
}

/// The verdict for one recipient and, for an accept whose event state is to be recorded,
/// how to record it.
#[derive(Debug)]
pub struct Judged {
    /// The verdict.
    pub verdict: GateVerdict,
    /// `Some` for an accept with event state to record (see [`Recording`]).
    pub recording: Option<Box<dyn Recording>>,
}

impl From<GateVerdict> for Judged {
    fn from(verdict: GateVerdict) -> Self {
        Judged {
            verdict,
            recording: None,
        }
    }
}

/// A decision engine. The gate calls it from a blocking thread with the whole message.
///
/// Contract: `decide` has no side effects: the recipient-independent work (MIME, crypto,
/// iTIP) once per message, the judgement (correlation, delegations, event state) once per
/// recipient. An accept's [`Judged::recording`] is consumed only after the gate has
/// decided to pass the message on (LMTP: before delivering it). A panic is caught by the
/// gate and answered with a temporary failure for that message only; an engine must stay
/// usable for the next message after one (recover, never stay poisoned).
pub trait Decide: Send + Sync + 'static {
    /// Whether this engine checks the event state (pinned organizer, replay). A gate over
    /// an engine that does not refuses to start unless its configuration says
    /// `danger_no_event_state = true`.
    fn checks_event_state(&self) -> bool;

    /// Judge `message` (the full RFC 5322 message) for each of `recipients` at time `at`:
    /// one entry per recipient, in order; an error entry when no verdict could be reached
    /// for that recipient.
    fn decide(
        &self,
        message: &[u8],
        envelope: &Envelope,
        recipients: &[String],
        at: OffsetDateTime,
    ) -> Vec<Result<Judged, DecideError>>;
}
