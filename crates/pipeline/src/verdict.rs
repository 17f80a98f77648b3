//! The verdict: a typed accept or reject with every reason found, never a bool.
//!
//! `Verdict` serialises to exactly the object `imipsec verify --json` prints; every field is
//! documented in the crate README.

use serde::Serialize;

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

/// The outcome of evaluating one message.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `accept` exactly when `reasons` is empty.
    pub verdict: Decision,
    /// Every reason found, most specific first (see [`Reason`] for the ranking).
    pub reasons: Vec<Finding<Reason>>,
    /// Warnings, in the order found.
    pub warnings: Vec<Finding<Warning>>,
    /// The encryption and signature layers, outermost first.
    pub layers: Vec<LayerReport>,
    /// One entry per iTIP component that was evaluated.
    pub itip: Vec<ItipReport>,
    /// Whether the event state was recorded (only ever on accept, and only when asked).
    #[serde(skip)]
    pub recorded: bool,
    /// The calendar parts this verdict evaluated, as body byte ranges of the received message
    /// (before transfer decoding; parts inside decrypted or opaque-signed content have none).
    /// On accept these are the only calendar data the verdict covers: a gate compares them
    /// with what the calendar server's parser finds (issue #11, the accept direction).
    #[serde(skip)]
    pub calendar_ranges: Vec<std::ops::Range<usize>>,
    /// Whether the event-state store judged this message (pinned organizer, SEQUENCE and
    /// DTSTAMP replay). Private: only the pipeline, which ran (or did not run) the check,
    /// sets it; read it with [`Verdict::event_state`].
    event_state: EventState,
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
    /// Build a verdict from what was found: the decision follows from the reasons, and the
    /// reasons are ranked (stable sort, so equal codes keep the order they were found in).
    pub fn from_findings(
        mut reasons: Vec<Finding<Reason>>,
        warnings: Vec<Finding<Warning>>,
        layers: Vec<LayerReport>,
        itip: Vec<ItipReport>,
    ) -> Verdict {
        reasons.sort_by_key(|finding| finding.code);
        reasons.dedup();
        let verdict = if reasons.is_empty() {
            Decision::Accept
        } else {
            Decision::Reject
        };
        Verdict {
            verdict,
            reasons,
            warnings,
            layers,
            itip,
            recorded: false,
            event_state: EventState::NotChecked,
            calendar_ranges: Vec::new(),
        }
    }

    /// Whether the event state was checked for this verdict (see [`EventState`]).
    pub fn event_state(&self) -> EventState {
        self.event_state
    }

    /// Only the pipeline, after the store judged the message, marks a verdict checked.
    pub(crate) fn mark_event_state_checked(&mut self) {
        self.event_state = EventState::Checked;
    }

    /// A verdict rejecting for one reason, with nothing else known.
    pub fn reject(reason: Reason, detail: impl Into<String>) -> Verdict {
        Verdict::from_findings(
            vec![Finding::new(reason, detail)],
            Vec::new(),
            Vec::new(),
            Vec::new(),
        )
    }

    /// Whether the message is accepted.
    pub fn is_accept(&self) -> bool {
        self.verdict == Decision::Accept
    }

    /// The most specific reason, if rejected.
    pub fn primary_reason(&self) -> Option<Reason> {
        self.reasons.first().map(|finding| finding.code)
    }

    /// Whether `reason` is among the reasons.
    pub fn has_reason(&self, reason: Reason) -> bool {
        self.reasons.iter().any(|finding| finding.code == reason)
    }

    /// Whether `warning` is among the warnings.
    pub fn has_warning(&self, warning: Warning) -> bool {
        self.warnings.iter().any(|finding| finding.code == warning)
    }
}

/// The kind of a cryptographic layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// A signature layer (multipart/signed, or opaque SignedData).
    Signed,
    /// An encryption layer (EnvelopedData or AuthEnvelopedData).
    Encrypted,
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
    /// `signed` or `encrypted`.
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
        assert_eq!(verdict.verdict, Decision::Reject);
        let codes: Vec<_> = verdict.reasons.iter().map(|f| f.code).collect();
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
