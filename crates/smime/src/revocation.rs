//! Revocation: how hard to fail when a certificate's status cannot be had
//! ([`RevocationMode`]), and where OCSP responses and CRLs come from beyond the CRLs given to
//! the [`TrustStore`](crate::TrustStore) or carried in the message ([`RevocationSource`]).
//!
//! This crate never does I/O for revocation: a [`RevocationSource`] (implemented outside,
//! e.g. an HTTP fetcher with an on-disk cache) hands back bytes, and every answer is validated
//! here (signature, issuer, certificate id, times) before it counts.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

/// How a certificate without a usable revocation answer is treated (RFC 8550 §2.1, §4.1;
/// RFC 5280 §6.3).
///
/// In every mode but `Off`, a certificate listed as revoked on a usable CRL or OCSP response
/// is `certificate-revoked`, and one whose issuer published CRLs of which none is usable for it
/// is `revocation-unknown`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RevocationMode {
    /// No revocation checking at all: CRLs are ignored, nothing is fetched.
    Off,
    /// Check where an answer is available: a certificate whose issuer published no CRL (given
    /// or in the message) and for which the [`RevocationSource`] had no answer is accepted,
    /// with a warning when the source could not answer.
    #[default]
    IfAvailable,
    /// Every certificate of the chain below the anchor needs a usable answer (a CRL or an OCSP
    /// response). Without one the signer is `untrusted-certificate`; when the source could not
    /// answer (responder down, nothing cached) the message cannot be evaluated.
    Require,
}

impl RevocationMode {
    /// The configuration spelling: `off`, `if-available`, `require`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationMode::Off => "off",
            RevocationMode::IfAvailable => "if-available",
            RevocationMode::Require => "require",
        }
    }
}

impl fmt::Display for RevocationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A revocation mode that is not `off`, `if-available` or `require`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown revocation mode {0:?} (expected off, if-available or require)")]
pub struct UnknownRevocationMode(pub String);

impl FromStr for RevocationMode {
    type Err = UnknownRevocationMode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "off" => Ok(RevocationMode::Off),
            "if-available" => Ok(RevocationMode::IfAvailable),
            "require" => Ok(RevocationMode::Require),
            other => Err(UnknownRevocationMode(other.to_owned())),
        }
    }
}

/// What a [`RevocationSource`] could get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The DER bytes of an OCSP response or CRL (not yet validated).
    Answer(Vec<u8>),
    /// Nothing could be had, and why (for the warning or the could-not-evaluate detail).
    Unavailable(String),
}

/// Where OCSP responses and CRLs come from beyond the CRLs passed in. Implemented outside
/// smime (I/O); smime validates every answer.
pub trait RevocationSource: Send + Sync {
    /// An OCSP response for the DER `request_der` (RFC 6960) from the responder at `url`.
    fn ocsp(&self, url: &str, request_der: &[u8], at: OffsetDateTime) -> Fetched;
    /// The CRL published at `url` (a CRL distribution point).
    fn crl(&self, url: &str, at: OffsetDateTime) -> Fetched;
    /// smime validated `answer` (returned by `ocsp`/`crl` for `url`; `request_der` is Some for
    /// OCSP) and it is current until `next_update`: a cache may keep it until then.
    /// Unvalidated answers are never confirmed.
    fn confirmed(
        &self,
        url: &str,
        request_der: Option<&[u8]>,
        answer: &[u8],
        next_update: OffsetDateTime,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_spellings_round_trip() {
        for mode in [
            RevocationMode::Off,
            RevocationMode::IfAvailable,
            RevocationMode::Require,
        ] {
            assert_eq!(mode.to_string().parse::<RevocationMode>(), Ok(mode));
        }
        assert_eq!(RevocationMode::default(), RevocationMode::IfAvailable);
        assert!("Require".parse::<RevocationMode>().is_err());
        assert!("check-available".parse::<RevocationMode>().is_err());
    }
}
