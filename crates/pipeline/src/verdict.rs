//! The verdict: a typed accept or reject with every reason found, never a bool.
//!
//! `Verdict` serialises to exactly the object `imipsec verify --json` prints; every field is
//! documented in the crate README.

use serde::Serialize;

use imipsec_policy::{EventUpdate, MessageDigest, Timestamp};

use crate::reason::{Finding, Reason, Warning};

/// Accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Every check passed: the calendar data may be processed.
    Accept,
    /// At least one reason was found: the calendar data must not be processed.
    Reject,
}

/// The body every verdict carries: what was found, layer by layer and component by
/// component. Private: read through [`Verdict`]'s accessors.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) reasons: Vec<Finding<Reason>>,
    pub(crate) warnings: Vec<Finding<Warning>>,
    pub(crate) layers: Vec<LayerReport>,
    pub(crate) itip: Vec<ItipReport>,
    pub(crate) event_state: EventState,
}

/// The proof that one message was accepted for one recipient: every check passed (no
/// reason), and it carries the event-state updates an accept must record. Only the
/// pipeline builds one ([`Pipeline::judge`](crate::Pipeline::judge)); recording
/// ([`Pipeline::record`](crate::Pipeline::record)) consumes it without verifying again.
///
/// ```compile_fail
/// // Outside the pipeline an accept cannot be made up: the fields are private and there is
/// // no public constructor.
/// let accepted = imipsec_pipeline::Accepted { updates: Vec::new() };
/// ```
///
/// ```compile_fail
/// // Nor can a verdict be built from hand-picked findings.
/// let verdict = imipsec_pipeline::Verdict::from_findings(vec![], vec![], vec![], vec![]);
/// ```
#[derive(Debug)]
pub struct Accepted {
    report: Report,
    /// The event-state updates (one per authorised component) to record on delivery.
    updates: Vec<EventUpdate>,
    /// The recipient the state is scoped to; `None` when judged without one.
    scope: Option<StateScope>,
    /// The evaluation time, in the store's terms.
    at: Timestamp,
    /// The calendar parts this accept covers, as body byte ranges of the received message.
    calendar_ranges: Vec<std::ops::Range<usize>>,
    /// Whether the updates were recorded.
    recorded: bool,
}

impl Accepted {
    /// The event-state updates this accept records: one per authorised component.
    pub fn updates(&self) -> &[EventUpdate] {
        &self.updates
    }

    /// The recipient address the event state of this accept is scoped to.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_ref().map(|scope| scope.recipient.as_str())
    }

    /// Whether the event-state store judged this message ([`EventState::Checked`]).
    pub fn event_state(&self) -> EventState {
        self.report.event_state
    }

    /// The calendar parts this accept covers, as body byte ranges of the received message
    /// (before transfer decoding; parts inside decrypted or opaque-signed content have
    /// none). They are the only calendar data the accept covers: a gate compares them with
    /// what the calendar server's parser finds (issue #11, the accept direction).
    pub fn calendar_ranges(&self) -> &[std::ops::Range<usize>] {
        &self.calendar_ranges
    }

    /// Whether the updates were recorded in the event-state store.
    pub fn is_recorded(&self) -> bool {
        self.recorded
    }

    pub(crate) fn at(&self) -> Timestamp {
        self.at
    }

    /// The SHA-256 digest of the received message this accept is about; `None` when it was
    /// judged without a recipient (nothing can be recorded for it then).
    pub fn digest(&self) -> Option<MessageDigest> {
        self.scope.as_ref().map(|scope| scope.digest)
    }

    /// The recipient and the message digest a record of this accept is keyed by.
    pub(crate) fn state_scope(&self) -> Option<&StateScope> {
        self.scope.as_ref()
    }

    pub(crate) fn mark_recorded(&mut self) {
        self.recorded = true;
    }

    /// The accept turned into a reject by `findings` (the state moved between judging
    /// and recording).
    pub(crate) fn into_rejected(self, findings: Vec<Finding<Reason>>) -> Verdict {
        let mut report = self.report;
        report.reasons = findings;
        Verdict::build(
            report,
            self.updates,
            self.scope,
            self.at,
            self.calendar_ranges,
        )
    }
}

/// Who an accept's event state belongs to: the recipient (the state scope) and the SHA-256
/// of the received message (the key of an idempotent record). They travel together: a
/// verdict judged without a recipient has neither, and needs neither.
#[derive(Debug, Clone)]
pub(crate) struct StateScope {
    pub(crate) recipient: String,
    pub(crate) digest: MessageDigest,
}

/// A rejected message: at least one reason (most specific first). Only the pipeline
/// builds one.
#[derive(Debug, Clone)]
pub struct Rejected {
    report: Report,
}

/// The outcome of evaluating one message for one recipient: a typed accept or reject.
/// [`Verdict::is_accept`] follows from the variant, and an [`Accepted`] has no reasons by
/// construction, so an accept cannot drift from its reasons.
///
/// ```compile_fail
/// // An accept cannot be built outside the pipeline: `Accepted` has private fields.
/// fn forge(accepted: imipsec_pipeline::Accepted) -> imipsec_pipeline::Verdict {
///     imipsec_pipeline::Verdict::Accept(accepted)
/// }
/// let forged = forge(imipsec_pipeline::Accepted { recorded: true });
/// ```
#[derive(Debug)]
pub enum Verdict {
    /// Every check passed: the calendar data may be processed.
    Accept(Accepted),
    /// At least one reason was found: the calendar data must not be processed.
    Reject(Rejected),
}

/// The JSON form of a verdict: exactly the object `imipsec verify --json` prints.
#[derive(Serialize)]
struct VerdictJson<'a> {
    verdict: Decision,
    reasons: &'a [Finding<Reason>],
    warnings: &'a [Finding<Warning>],
    layers: &'a [LayerReport],
    itip: &'a [ItipReport],
    event_state: EventState,
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let report = self.report();
        VerdictJson {
            verdict: self.decision(),
            reasons: &report.reasons,
            warnings: &report.warnings,
            layers: &report.layers,
            itip: &report.itip,
            event_state: report.event_state,
        }
        .serialize(serializer)
    }
}

/// Whether the event state (RFC 5546 section 2.1.5 ordering, the organizer pinned to each
/// UID) was checked for a verdict.
///
/// An accept that says [`EventState::NotChecked`] is weaker than it looks: a validly signed
/// CANCEL or REQUEST for another organizer's UID, or a replayed old update, passes the
/// checks that do not need state. A gate runs that way only with `danger_no_event_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventState {
    /// The event-state store judged the message's updates, and its findings are among the
    /// reasons.
    Checked,
    /// No event-state store judged the message: none was configured, no recipient scope was
    /// given, or the message was rejected before that step.
    NotChecked,
}

impl EventState {
    /// The stable string (`checked` or `not-checked`), as in the JSON and the
    /// `Authentication-Results` header of the gate.
    pub fn code(self) -> &'static str {
        match self {
            EventState::Checked => "checked",
            EventState::NotChecked => "not-checked",
        }
    }
}

impl std::fmt::Display for EventState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl Verdict {
    /// Build a verdict from what was found: the variant follows from the reasons, and the
    /// reasons are ranked (stable sort, so equal codes keep the order they were found in).
    pub(crate) fn from_findings(
        reasons: Vec<Finding<Reason>>,
        warnings: Vec<Finding<Warning>>,
        layers: Vec<LayerReport>,
        itip: Vec<ItipReport>,
    ) -> Verdict {
        let report = Report {
            reasons,
            warnings,
            layers,
            itip,
            event_state: EventState::NotChecked,
        };
        Verdict::build(
            report,
            Vec::new(),
            None,
            Timestamp::from_unix_seconds(0),
            Vec::new(),
        )
    }

    /// The one place a verdict is made: accept exactly when no reason was found.
    pub(crate) fn build(
        mut report: Report,
        updates: Vec<EventUpdate>,
        scope: Option<StateScope>,
        at: Timestamp,
        calendar_ranges: Vec<std::ops::Range<usize>>,
    ) -> Verdict {
        report.reasons.sort_by_key(|finding| finding.code);
        report.reasons.dedup();
        if report.reasons.is_empty() {
            Verdict::Accept(Accepted {
                report,
                updates,
                scope,
                at,
                calendar_ranges,
                recorded: false,
            })
        } else {
            Verdict::Reject(Rejected { report })
        }
    }

    /// A reject made outside the pipeline (a tool's own judgement, a test): allowed, since a
    /// reject grants nothing. `reason` makes the reasons non-empty, so this is always
    /// [`Verdict::Reject`]; an accept has no public constructor.
    pub fn rejected(
        reason: Finding<Reason>,
        more: Vec<Finding<Reason>>,
        layers: Vec<LayerReport>,
        itip: Vec<ItipReport>,
    ) -> Verdict {
        let mut reasons = vec![reason];
        reasons.extend(more);
        Verdict::from_findings(reasons, Vec::new(), layers, itip)
    }

    fn report(&self) -> &Report {
        match self {
            Verdict::Accept(accepted) => &accepted.report,
            Verdict::Reject(rejected) => &rejected.report,
        }
    }

    fn report_mut(&mut self) -> &mut Report {
        match self {
            Verdict::Accept(accepted) => &mut accepted.report,
            Verdict::Reject(rejected) => &mut rejected.report,
        }
    }

    /// Only the pipeline, after the store judged the message, marks a verdict checked.
    pub(crate) fn mark_event_state_checked(&mut self) {
        self.report_mut().event_state = EventState::Checked;
    }

    /// `accept` or `reject`, from the variant.
    pub fn decision(&self) -> Decision {
        match self {
            Verdict::Accept(_) => Decision::Accept,
            Verdict::Reject(_) => Decision::Reject,
        }
    }

    /// Whether the message is accepted.
    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept(_))
    }

    /// The accept, if this is one.
    pub fn accepted(&self) -> Option<&Accepted> {
        match self {
            Verdict::Accept(accepted) => Some(accepted),
            Verdict::Reject(_) => None,
        }
    }

    /// The accept, if this is one, by value (to record it).
    pub fn into_accepted(self) -> Option<Accepted> {
        match self {
            Verdict::Accept(accepted) => Some(accepted),
            Verdict::Reject(_) => None,
        }
    }

    /// Every reason found, most specific first (see [`Reason`] for the ranking); empty
    /// exactly for an accept.
    pub fn reasons(&self) -> &[Finding<Reason>] {
        &self.report().reasons
    }

    /// Warnings, in the order found.
    pub fn warnings(&self) -> &[Finding<Warning>] {
        &self.report().warnings
    }

    /// The encryption and signature layers, outermost first.
    pub fn layers(&self) -> &[LayerReport] {
        &self.report().layers
    }

    /// One entry per iTIP component that was evaluated.
    pub fn itip(&self) -> &[ItipReport] {
        &self.report().itip
    }

    /// Whether the event state was checked for this verdict (see [`EventState`]).
    pub fn event_state(&self) -> EventState {
        self.report().event_state
    }

    /// Whether the event state was recorded (only ever on accept, and only when asked).
    pub fn is_recorded(&self) -> bool {
        self.accepted().is_some_and(Accepted::is_recorded)
    }

    /// The calendar parts an accept covers (see [`Accepted::calendar_ranges`]); empty on
    /// reject.
    pub fn calendar_ranges(&self) -> &[std::ops::Range<usize>] {
        self.accepted().map_or(&[], Accepted::calendar_ranges)
    }

    /// The most specific reason, if rejected.
    pub fn primary_reason(&self) -> Option<Reason> {
        self.reasons().first().map(|finding| finding.code)
    }

    /// Whether `reason` is among the reasons.
    pub fn has_reason(&self, reason: Reason) -> bool {
        self.reasons().iter().any(|finding| finding.code == reason)
    }

    /// Whether `warning` is among the warnings.
    pub fn has_warning(&self, warning: Warning) -> bool {
        self.warnings()
            .iter()
            .any(|finding| finding.code == warning)
    }
}

/// The kind of a cryptographic layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LayerKind {
    /// An S/MIME signature layer (multipart/signed, or opaque SignedData).
    Signed,
    /// An S/MIME encryption layer (EnvelopedData or AuthEnvelopedData).
    Encrypted,
    /// An OpenPGP signature layer (`pgp-signed`): PGP/MIME multipart/signed (RFC 3156 §5),
    /// or the signatures inside a PGP/MIME encrypted message (§6.2, at the same path as its
    /// encryption layer).
    PgpSigned,
    /// An OpenPGP encryption layer (`pgp-encrypted`): PGP/MIME multipart/encrypted (RFC 3156
    /// §4).
    PgpEncrypted,
}

impl LayerKind {
    /// Whether this is a signature layer (S/MIME or OpenPGP).
    pub fn is_signature(self) -> bool {
        matches!(self, LayerKind::Signed | LayerKind::PgpSigned)
    }
}

/// What became of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerStatus {
    /// The signature verified and the signer certificate chains to a trust anchor.
    Verified,
    /// The signature or the signer certificate failed; see `failure`.
    SignatureFailed,
    /// The layer was decrypted.
    Decrypted,
    /// The layer could not be decrypted; see `failure`.
    NotDecrypted,
}

/// One encryption or signature layer, as reported in the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    /// `signed` or `encrypted` (S/MIME), `pgp-signed` or `pgp-encrypted` (OpenPGP).
    pub kind: LayerKind,
    /// The MIME part path of the layer (`""` for the whole message, `1.2` for the second part
    /// of the first part).
    pub path: String,
    /// What became of the layer.
    pub status: LayerStatus,
    /// The reason code of the failure, when the status is a failure.
    pub failure: Option<Reason>,
    /// For an encryption layer: whether the cipher authenticated the content (AES-GCM).
    pub authenticated: Option<bool>,
    /// For a signature layer: the signer certificates.
    pub signers: Vec<SignerReport>,
}

/// A signer certificate, as reported in the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct SignerReport {
    /// The e-mail addresses of the certificate (subjectAltName rfc822Name, else the subject
    /// emailAddress), lower-cased.
    pub emails: Vec<String>,
    /// The subject distinguished name (RFC 4514 string form).
    pub subject: String,
    /// The issuer distinguished name (RFC 4514 string form).
    pub issuer: String,
    /// The serial number, hexadecimal.
    pub serial: String,
    /// `valid` when the chain to a trust anchor verified, otherwise the reason code of the
    /// chain failure.
    pub chain: String,
}

/// One iTIP component, as reported in the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ItipReport {
    /// The iCalendar METHOD (RFC 5546 section 1.4).
    pub method: String,
    /// The component type (`VEVENT`, `VTODO`, `VJOURNAL`, `VFREEBUSY`).
    pub component: String,
    /// The UID.
    pub uid: Option<String>,
    /// The RECURRENCE-ID, as written in the calendar.
    pub recurrence_id: Option<String>,
    /// The SEQUENCE (0 when absent).
    pub sequence: Option<u32>,
    /// The calendar address that performs the method (the ORGANIZER, or the replying ATTENDEE).
    pub actor: Option<String>,
    /// The actor's role: `organizer` or `attendee`.
    pub role: Option<String>,
    /// The SENT-BY address when the signer acted on the actor's behalf.
    pub via: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_ranked_most_specific_first() {
        let verdict = Verdict::from_findings(
            vec![
                Finding::new(Reason::StaleSequence, "old"),
                Finding::new(Reason::SignerNotCorrelated, "who"),
                Finding::new(Reason::BadSignature, "sig"),
            ],
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        assert_eq!(verdict.decision(), Decision::Reject);
        let codes: Vec<_> = verdict.reasons().iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            [
                Reason::BadSignature,
                Reason::SignerNotCorrelated,
                Reason::StaleSequence
            ]
        );
        assert_eq!(verdict.primary_reason(), Some(Reason::BadSignature));
    }

    #[test]
    fn no_reasons_is_accept_and_serialises_every_field() {
        let verdict = Verdict::from_findings(
            Vec::new(),
            vec![Finding::new(Warning::FromMismatch, "forwarded")],
            Vec::new(),
            Vec::new(),
        );
        assert!(verdict.is_accept());
        let json = serde_json::to_value(&verdict).unwrap();
        assert_eq!(json["verdict"], "accept");
        assert_eq!(json["warnings"][0]["code"], "from-mismatch");
        assert_eq!(json["event_state"], "not-checked");
        let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "event_state",
                "itip",
                "layers",
                "reasons",
                "verdict",
                "warnings"
            ]
        );
    }
}
