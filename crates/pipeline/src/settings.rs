//! What a [`Pipeline`](crate::Pipeline) is configured with: trust, algorithm policy,
//! decryption identities, limits and the `danger_*` escape hatches (all off by default).

use imipsec_smime::keys::Identity;
use std::sync::Arc;

use imipsec_smime::{AlgorithmPolicy, RevocationMode, RevocationSource, TrustStore};

/// Named bounds on the work one message may cause. Each exceeded limit is the reason
/// `limit-exceeded`, with the limit named in the detail. Composed of the layers' own limits,
/// never a copy of one: the message size is the S/MIME layer's `message_bytes`
/// ([`Limits::message_bytes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The S/MIME layer's limits (MIME depth and parts, certificates, CMS size, decrypted
    /// content size).
    pub smime: imipsec_smime::Limits,
    /// The iTIP layer's limits (calendar size, components, properties, attendees, line
    /// length, nesting).
    pub itip: imipsec_itip::Limits,
}

impl Limits {
    /// Largest message accepted, in bytes, checked before anything is parsed: the S/MIME
    /// layer's `message_bytes` (which bounds decrypted content too).
    pub fn message_bytes(&self) -> usize {
        self.smime.message_bytes
    }
}

/// The configuration of a [`Pipeline`](crate::Pipeline).
pub struct Settings {
    /// Trust anchors and CRLs for signer certificates.
    pub trust: TrustStore,
    /// How a certificate without a usable revocation answer is treated (default
    /// `if-available`).
    pub revocation: RevocationMode,
    /// Where OCSP responses and CRLs are fetched from (`None`: only the given and embedded
    /// CRLs are used).
    pub revocation_source: Option<Arc<dyn RevocationSource>>,
    /// Which algorithms and key sizes are acceptable (default denies SHA-1, MD5, RSA < 2048).
    pub algorithms: AlgorithmPolicy,
    /// Identities whose keys decrypt encrypted messages (RFC 8551 section 3.3).
    pub identities: Vec<Identity>,
    /// OpenPGP certificates the operator vouches for and OpenPGP secret keys to decrypt with
    /// (PGP/MIME, RFC 3156). Empty by default: an OpenPGP signature is then
    /// `untrusted-certificate`.
    pub openpgp: imipsec_smime::openpgp::Keyring,
    /// Bounds on untrusted input.
    pub limits: Limits,
    /// How far CMS signingTime may be from the Date header (and ahead of the evaluation time)
    /// before the `signing-time-skew` warning.
    pub signing_time_tolerance: time::Duration,
    /// Turn the iTIP layer's tolerated defects (missing `charset`, bare LF, ...) and the
    /// deviations of its interoperability profile (warning `icalendar-deviation`: `_` in X-
    /// names, VALARM in a REPLY, REQUEST without SUMMARY, COUNTER without SEQUENCE) into
    /// rejects.
    pub strict_icalendar: bool,
    /// Compare the local part of addresses case-sensitively (default: case-insensitive, as
    /// the iMIP draft's own examples need).
    pub strict_local_part: bool,
    /// DANGER: evaluate unsigned messages instead of rejecting them as `unsigned`; the
    /// calendar is then treated as sent by the ORGANIZER/ATTENDEE it names. A downgrade (an
    /// unsigned update to an event that signed mail updated) is still rejected.
    pub danger_allow_unsigned: bool,
    /// DANGER: decrypt encrypted parts that are not the message root (EFAIL exposure).
    pub danger_decrypt_non_root: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("trust", &self.trust)
            .field("revocation", &self.revocation)
            .field("revocation_source", &self.revocation_source.is_some())
            .field("algorithms", &self.algorithms)
            .field("openpgp", &self.openpgp)
            .field("limits", &self.limits)
            .field("strict_icalendar", &self.strict_icalendar)
            .field("danger_allow_unsigned", &self.danger_allow_unsigned)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// The S/MIME walk's options at `at` from these settings: what [`crate::Pipeline`]
    /// verifies with, and what a caller that must look at a message's parts again (the gate,
    /// the audit) walks with, so that both see the same layers.
    pub fn inspect_options(&self, at: time::OffsetDateTime) -> imipsec_smime::InspectOptions<'_> {
        imipsec_smime::InspectOptions {
            trust: &self.trust,
            at,
            revocation: self.revocation,
            revocation_source: self.revocation_source.clone(),
            policy: &self.algorithms,
            identities: &self.identities,
            limits: &self.limits.smime,
            danger_decrypt_non_root: self.danger_decrypt_non_root,
            openpgp: Some(&self.openpgp),
        }
    }

    /// Secure defaults around `trust`: default algorithm policy and limits, no decryption
    /// identities, one hour signing-time tolerance, no `danger_*` switch on.
    pub fn new(trust: TrustStore) -> Settings {
        Settings {
            trust,
            revocation: RevocationMode::default(),
            revocation_source: None,
            algorithms: AlgorithmPolicy::default(),
            identities: Vec::new(),
            openpgp: imipsec_smime::openpgp::Keyring::default(),
            limits: Limits::default(),
            signing_time_tolerance: time::Duration::HOUR,
            strict_icalendar: false,
            strict_local_part: false,
            danger_allow_unsigned: false,
            danger_decrypt_non_root: false,
        }
    }
}
