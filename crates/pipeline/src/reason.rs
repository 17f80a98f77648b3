//! Stable reason and warning codes.
//!
//! The codes are a public contract: scripts and mail gates match on the strings returned by
//! [`Reason::code`] and [`Warning::code`] (the same strings appear in the `--json` output), so
//! a code is never renamed or reused for another meaning.

use serde::{Serialize, Serializer};

/// Why a message is rejected.
///
/// The declaration order is the ranking: when several reasons are found, the verdict lists them
/// most specific first (like webpki's `rank()` of chain errors), so `reasons[0]` is the one a
/// human should read first. Failures of the envelope (size, MIME, decryption) come before
/// failures of the signature and certificate, which come before failures of the calendar
/// content, which come before failures against stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// A named limit (message size, MIME depth, parts, certificates, components, attendees)
    /// was exceeded; nothing past the limit was processed.
    LimitExceeded,
    /// The MIME structure could not be parsed strictly (RFC 2045/2046, RFC 1847).
    MalformedMime,
    /// An encrypted layer could not be decrypted with the configured identities (RFC 8551
    /// section 3.3, RFC 5083).
    DecryptionFailed,
    /// A CMS signature does not verify over the signed bytes (RFC 5652 section 5.6).
    BadSignature,
    /// A signer certificate (or one of its chain) is revoked by a configured CRL (RFC 5280
    /// section 6.3).
    CertificateRevoked,
    /// A signer certificate is outside its validity period at the evaluation time.
    CertificateExpired,
    /// A signer certificate is not valid for S/MIME signing (key usage or extended key usage,
    /// RFC 8550 section 4.4).
    CertificatePurpose,
    /// No chain from a signer certificate to a configured trust anchor.
    UntrustedCertificate,
    /// The signature or the chain uses an algorithm the algorithm policy rejects.
    WeakAlgorithm,
    /// The message carries no signature (RFC 6047 section 3 requires authentication), or an
    /// unsigned message tries to update an event that was last updated by signed mail.
    Unsigned,
    /// A `text/calendar` part lies outside every verified signed region.
    UnprotectedCalendar,
    /// The signed region holds no `text/calendar` part.
    NoCalendar,
    /// The calendar data is not valid iCalendar (RFC 5545).
    MalformedIcalendar,
    /// The calendar violates an iTIP restriction table (RFC 5546 section 3).
    RestrictionViolation,
    /// The MIME `method` parameter and the iCalendar METHOD disagree (RFC 6047 section 2.4).
    MethodMismatch,
    /// No verified signer is the ORGANIZER or ATTENDEE acting in the iTIP message.
    SignerNotCorrelated,
    /// The signer's role (organizer or attendee) may not perform this method (RFC 5546
    /// section 1.4).
    RoleNotAuthorized,
    /// The signer acts through SENT-BY and the delegation store holds no grant for it.
    SentByUnauthorized,
    /// A RECURRENCE-ID relative to a TZID, which the event state cannot key yet: keying its
    /// local text would let two zones collide (a false `stale-sequence`) and one instant
    /// written in UTC and in a zone split into two keys (a hole in replay protection). Given
    /// only when the event state is checked; UTC, DATE and floating values are keyed.
    UnsupportedRecurrenceId,
    /// The ORGANIZER differs from the one on record for the event (or between components).
    OrganizerMismatch,
    /// The SEQUENCE (or DTSTAMP) is older than the state on record (RFC 5546 section 2.1.5).
    StaleSequence,
}

impl Reason {
    /// Every reason, in rank order.
    pub const ALL: [Reason; 21] = [
        Reason::LimitExceeded,
        Reason::MalformedMime,
        Reason::DecryptionFailed,
        Reason::BadSignature,
        Reason::CertificateRevoked,
        Reason::CertificateExpired,
        Reason::CertificatePurpose,
        Reason::UntrustedCertificate,
        Reason::WeakAlgorithm,
        Reason::Unsigned,
        Reason::UnprotectedCalendar,
        Reason::NoCalendar,
        Reason::MalformedIcalendar,
        Reason::RestrictionViolation,
        Reason::MethodMismatch,
        Reason::SignerNotCorrelated,
        Reason::RoleNotAuthorized,
        Reason::SentByUnauthorized,
        Reason::UnsupportedRecurrenceId,
        Reason::OrganizerMismatch,
        Reason::StaleSequence,
    ];

    /// The stable code string.
    pub fn code(self) -> &'static str {
        match self {
            Reason::LimitExceeded => "limit-exceeded",
            Reason::MalformedMime => "malformed-mime",
            Reason::DecryptionFailed => "decryption-failed",
            Reason::BadSignature => "bad-signature",
            Reason::CertificateRevoked => "certificate-revoked",
            Reason::CertificateExpired => "certificate-expired",
            Reason::CertificatePurpose => "certificate-purpose",
            Reason::UntrustedCertificate => "untrusted-certificate",
            Reason::WeakAlgorithm => "weak-algorithm",
            Reason::Unsigned => "unsigned",
            Reason::UnprotectedCalendar => "unprotected-calendar",
            Reason::NoCalendar => "no-calendar",
            Reason::MalformedIcalendar => "malformed-icalendar",
            Reason::RestrictionViolation => "restriction-violation",
            Reason::MethodMismatch => "method-mismatch",
            Reason::SignerNotCorrelated => "signer-not-correlated",
            Reason::RoleNotAuthorized => "role-not-authorized",
            Reason::SentByUnauthorized => "sent-by-unauthorized",
            Reason::UnsupportedRecurrenceId => "unsupported-recurrence-id",
            Reason::OrganizerMismatch => "organizer-mismatch",
            Reason::StaleSequence => "stale-sequence",
        }
    }

    /// The reason with this code, if any. For reading codes from text (a report, a
    /// configuration); the layers' errors convert by `From`, never through their code string.
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|reason| reason.code() == code)
    }
}

/// A whole-message S/MIME failure (the MIME walk).
impl From<&imipsec_smime::SmimeError> for Reason {
    fn from(error: &imipsec_smime::SmimeError) -> Reason {
        use imipsec_smime::SmimeError;
        match error {
            SmimeError::LimitExceeded(_) => Reason::LimitExceeded,
            SmimeError::MalformedMime { .. } => Reason::MalformedMime,
            _ => Reason::MalformedMime,
        }
    }
}

/// Why one security layer did not verify, or was not decrypted.
impl From<&imipsec_smime::Failure> for Reason {
    fn from(failure: &imipsec_smime::Failure) -> Reason {
        use imipsec_smime::Failure;
        match failure {
            Failure::UntrustedCertificate { .. }
            | Failure::CertificateAddress { .. }
            | Failure::IssuerNotFound { .. }
            | Failure::RevocationMissing { .. }
            | Failure::StaleCrl { .. }
            // Never a verdict (the pipeline turns it into `RevocationUnavailable` first);
            // should it reach here it is the fail-closed untrusted-certificate.
            | Failure::RevocationUnavailable { .. }
            | Failure::RevocationUnknown { .. } => Reason::UntrustedCertificate,
            Failure::CertificateExpired { .. } => Reason::CertificateExpired,
            Failure::CertificateRevoked { .. } => Reason::CertificateRevoked,
            Failure::CertificatePurpose { .. } => Reason::CertificatePurpose,
            Failure::WeakAlgorithm { .. } | Failure::UnsupportedAlgorithm { .. } => {
                Reason::WeakAlgorithm
            }
            Failure::LimitExceeded(_) => Reason::LimitExceeded,
            Failure::MalformedContent { .. } => Reason::MalformedMime,
            Failure::DecryptionFailed | Failure::NotDecryptedNonRoot | Failure::NoDecryptionKey => {
                Reason::DecryptionFailed
            }
            // bad-signature, no-signers, econtent-confusion, missing-content,
            // signer-certificate-missing, malformed-cms, unexpected-content-type,
            // unsupported-protocol: the signature did not verify. A failure added later maps
            // by its code when that names a reason, else to bad-signature (never an accept).
            _ => Reason::from_code(failure.code()).unwrap_or(Reason::BadSignature),
        }
    }
}

/// A calendar the iTIP layer refused.
impl From<&imipsec_itip::ItipError> for Reason {
    fn from(error: &imipsec_itip::ItipError) -> Reason {
        use imipsec_itip::ItipError;
        match error {
            ItipError::Limit(_) => Reason::LimitExceeded,
            ItipError::MethodMismatch { .. } | ItipError::ComponentMismatch { .. } => {
                Reason::MethodMismatch
            }
            ItipError::MethodNotDefined { .. } | ItipError::Restriction(_) => {
                Reason::RestrictionViolation
            }
            ItipError::OrganizerMismatch { .. } => Reason::OrganizerMismatch,
            _ => Reason::MalformedIcalendar,
        }
    }
}

/// A component whose signer could not be correlated with the role it acts in.
/// `PolicyUnavailable` is no verdict (the caller turns it into an error first); should it
/// reach here it is the fail-closed `signer-not-correlated`.
impl From<&imipsec_itip::Failure> for Reason {
    fn from(failure: &imipsec_itip::Failure) -> Reason {
        use imipsec_itip::Failure;
        match failure {
            Failure::RoleNotAuthorized { .. } | Failure::InconsistentActor { .. } => {
                Reason::RoleNotAuthorized
            }
            Failure::SentByUnauthorized { .. } => Reason::SentByUnauthorized,
            Failure::NoComponents => Reason::MalformedIcalendar,
            _ => Reason::SignerNotCorrelated,
        }
    }
}

/// A component the event state refused.
impl From<&imipsec_policy::StateFinding> for Reason {
    fn from(finding: &imipsec_policy::StateFinding) -> Reason {
        use imipsec_policy::StateFinding;
        match finding {
            StateFinding::OrganizerMismatch { .. } => Reason::OrganizerMismatch,
            StateFinding::Unsigned { .. } => Reason::Unsigned,
            _ => Reason::StaleSequence,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

/// Something worth telling that does not reject the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Warning {
    /// The From address is none of the signer's addresses. Calendar mail is forwarded and
    /// resent, so RFC 6047 section 3 binds the signer to the iCalendar data, not to From.
    FromMismatch,
    /// A protected header (RFC 9788 header protection) differs from the outer header.
    HeaderMismatch,
    /// The CMS signingTime differs from the Date header by more than the tolerance, or lies in
    /// the future relative to the evaluation time.
    SigningTimeSkew,
    /// An encrypted layer used a cipher without integrity (CBC in EnvelopedData rather than
    /// AuthEnvelopedData, RFC 5083); only a signature inside it authenticates the content.
    UnauthenticatedEncryption,
    /// The event state was not checked: no event-state store (or no recipient scope) was
    /// given, so neither the organizer pinned to each UID nor SEQUENCE/DTSTAMP replay was
    /// checked. A signed CANCEL of another organizer's event passes without state.
    EventStateUnchecked,
    /// The calendar deviates from RFC 5545/5546 in a way the interoperability profile
    /// tolerates (crates/itip/README.md): real clients write it, no decision reads it, and
    /// the parsers behind the gate read it alike. The detail names the property and the
    /// rule. `strict_icalendar` turns each into a reject.
    IcalendarDeviation,
    /// Under revocation mode `if-available`, a certificate's revocation status could not be
    /// checked: the revocation source could not answer or gave no usable answer (issue #13).
    /// The detail names the certificate and what was tried.
    RevocationUnchecked,
}

impl Warning {
    /// Every warning, in the order they are listed.
    pub const ALL: [Warning; 7] = [
        Warning::FromMismatch,
        Warning::HeaderMismatch,
        Warning::SigningTimeSkew,
        Warning::UnauthenticatedEncryption,
        Warning::EventStateUnchecked,
        Warning::IcalendarDeviation,
        Warning::RevocationUnchecked,
    ];

    /// The stable code string.
    pub fn code(self) -> &'static str {
        match self {
            Warning::FromMismatch => "from-mismatch",
            Warning::HeaderMismatch => "header-mismatch",
            Warning::SigningTimeSkew => "signing-time-skew",
            Warning::UnauthenticatedEncryption => "unauthenticated-encryption",
            Warning::EventStateUnchecked => "event-state-unchecked",
            Warning::IcalendarDeviation => "icalendar-deviation",
            Warning::RevocationUnchecked => "revocation-unchecked",
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

/// One reason or warning with a human-readable detail, as it appears in the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding<C> {
    /// The stable code.
    pub code: C,
    /// What was found, for humans (not stable; match on `code`).
    pub detail: String,
}

impl<C> Finding<C> {
    /// A finding with this code and detail.
    pub fn new(code: C, detail: impl Into<String>) -> Self {
        Finding {
            code,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            assert!(seen.insert(reason.code()), "duplicate {reason}");
            assert_eq!(Reason::from_code(reason.code()), Some(reason));
        }
        for warning in Warning::ALL {
            assert!(seen.insert(warning.code()), "duplicate {warning}");
        }
    }

    /// The typed conversions agree with the layers' documented code strings wherever a
    /// reason of that code exists (the strings stay a public contract of each layer).
    #[test]
    fn from_conversions_agree_with_the_layers_codes() {
        use imipsec_policy::{StateFinding, Timestamp};
        let findings = [
            StateFinding::OrganizerMismatch {
                uid: "u".into(),
                recurrence_id: None,
                pinned: "a@x".into(),
                claimed: "b@x".into(),
            },
            StateFinding::StaleSequence {
                uid: "u".into(),
                recurrence_id: None,
                actor: "a@x".into(),
                sequence: 0,
                dtstamp: Timestamp::from_unix_seconds(0),
                last_sequence: 0,
                last_dtstamp: Timestamp::from_unix_seconds(0),
            },
            StateFinding::Unsigned {
                uid: "u".into(),
                recurrence_id: None,
                actor: "a@x".into(),
            },
        ];
        for finding in &findings {
            assert_eq!(Reason::from(finding).code(), finding.code());
        }
        let failures = [
            imipsec_smime::Failure::NoSigners,
            imipsec_smime::Failure::DecryptionFailed,
            imipsec_smime::Failure::NoDecryptionKey,
            imipsec_smime::Failure::ContentConfusion,
        ];
        for failure in &failures {
            let reason = Reason::from(failure);
            if let Some(same) = Reason::from_code(failure.code()) {
                assert_eq!(reason, same, "{failure:?}");
            }
        }
        assert_eq!(
            Reason::from(&imipsec_smime::Failure::NoSigners),
            Reason::BadSignature
        );
        assert_eq!(
            Reason::from(&imipsec_itip::Failure::NoComponents),
            Reason::MalformedIcalendar
        );
    }

    #[test]
    fn all_is_in_rank_order() {
        let mut sorted = Reason::ALL;
        sorted.sort();
        assert_eq!(sorted, Reason::ALL);
    }
}
