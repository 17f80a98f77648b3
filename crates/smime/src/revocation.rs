//! Revocation: how hard to fail when a certificate's status cannot be had
//! ([`RevocationMode`]), and where OCSP responses and CRLs come from beyond the CRLs given to
//! the [`TrustStore`](crate::TrustStore) or carried in the message ([`RevocationSource`]).
//!
//! This crate never does I/O for revocation: a [`RevocationSource`] (implemented outside,
//! e.g. an HTTP fetcher with an on-disk cache) hands back bytes, and every answer is validated
//! here (signature, issuer, certificate id, times) before it counts.

use std::fmt;
use std::str::FromStr;

use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509Ref};
use time::OffsetDateTime;

use crate::trust::unix_seconds;

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

/// URLs taken from one certificate extension (AIA OCSP, CRL distribution points), at most.
pub const URLS_PER_CERTIFICATE_MAX: usize = 4;

/// Longest URL taken from a certificate.
pub const URL_BYTES_MAX: usize = 2048;

/// Clock skew allowed between the responder and the evaluation time when checking an OCSP
/// response's thisUpdate and nextUpdate (RFC 6960 §4.2.2.1 leaves it to local policy; 5
/// minutes, as OpenSSL's `ocsp -validity_period` default).
pub const OCSP_TOLERANCE_SECONDS: i64 = 300;

/// How long an OCSP response without nextUpdate (RFC 6960 §2.4: "newer information is always
/// available") is used after its thisUpdate.
pub const OCSP_NO_NEXT_UPDATE_MAX_AGE_SECONDS: i64 = 3600;

/// Whether `url` is a plain `http:` URL (RFC 5280 §8: CRLs and OCSP responses are signed,
/// so they are fetched over http; other schemes such as ldap, https or file are not used).
fn is_http_url(url: &str) -> bool {
    url.len() <= URL_BYTES_MAX
        && url
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
        && url.bytes().all(|b| b.is_ascii_graphic())
}

/// The OCSP responder URLs (http only) of the certificate's authorityInfoAccess.
pub(crate) fn ocsp_urls(cert: &X509Ref) -> Vec<String> {
    let Ok(responders) = cert.ocsp_responders() else {
        return Vec::new();
    };
    responders
        .iter()
        .map(|url| url.to_string())
        .filter(|url| is_http_url(url))
        .take(URLS_PER_CERTIFICATE_MAX)
        .collect()
}

/// The http URLs of the certificate's CRL distribution points (fullName URIs).
pub(crate) fn crl_urls(cert: &X509Ref) -> Vec<String> {
    let Some(points) = cert.crl_distribution_points() else {
        return Vec::new();
    };
    points
        .iter()
        .filter_map(|point| point.distpoint())
        .filter_map(|name| name.fullname())
        .flat_map(|names| {
            names
                .iter()
                .filter_map(|name| name.uri())
                .map(str::to_owned)
        })
        .filter(|url| is_http_url(url))
        .take(URLS_PER_CERTIFICATE_MAX)
        .collect()
}

/// What an OCSP response says about the certificate asked for, once fully checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OcspVerdict {
    /// `good`, current until `next_update` (for the cache).
    Good { next_update: OffsetDateTime },
    /// `revoked`.
    Revoked,
    /// Nothing usable: why (unsuccessful status, bad signature or signer, another
    /// certificate, stale, `unknown`).
    Unusable(String),
}

/// The OCSP question for one certificate: its request and its CertID (RFC 6960 §4.1.1, SHA-1
/// as RFC 5019 §2.1.1 requires for interoperability).
pub(crate) struct OcspQuestion {
    der: Vec<u8>,
    id: OcspCertId,
}

impl OcspQuestion {
    pub(crate) fn new(cert: &X509Ref, issuer: &X509Ref) -> Result<Self, ErrorStack> {
        let mut request = OcspRequest::new()?;
        request.add_id(OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)?)?;
        Ok(OcspQuestion {
            der: request.to_der()?,
            id: OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)?,
        })
    }

    /// The DER OCSPRequest (no nonce: answers are cached and shared).
    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    /// Check `answer` fully: response status successful; the BasicOCSPResponse signed by the
    /// certificate's issuer or by a responder certificate with id-kp-OCSPSigning issued by it
    /// (RFC 6960 §4.2.2.2), whose path to an anchor is valid at `at`; a SingleResponse for
    /// exactly this CertID; thisUpdate not after `at` and nextUpdate not before it (each with
    /// [`OCSP_TOLERANCE_SECONDS`]); then good, revoked or unknown.
    pub(crate) fn check(
        &self,
        answer: &[u8],
        chain: &[X509],
        anchors: &[X509],
        at: i64,
    ) -> OcspVerdict {
        match self.check_inner(answer, chain, anchors, at) {
            Ok(verdict) => verdict,
            Err(_) => OcspVerdict::Unusable("the response could not be processed".to_owned()),
        }
    }

    fn check_inner(
        &self,
        answer: &[u8],
        chain: &[X509],
        anchors: &[X509],
        at: i64,
    ) -> Result<OcspVerdict, ErrorStack> {
        let unusable = |why: &str| Ok(OcspVerdict::Unusable(why.to_owned()));
        let Ok(response) = OcspResponse::from_der(answer) else {
            return unusable("not a DER OCSP response");
        };
        if response.status() != OcspResponseStatus::SUCCESSFUL {
            return unusable("response status is not successful");
        }
        let Ok(basic) = response.basic() else {
            return unusable("not a basic OCSP response");
        };
        let mut builder = X509StoreBuilder::new()?;
        for anchor in anchors {
            builder.add_cert(anchor.clone())?;
        }
        let mut param = X509VerifyParam::new()?;
        param.set_time(at);
        param.set_depth(16);
        builder.set_param(&param)?;
        let store = builder.build();
        let mut certs = Stack::new()?;
        for cert in chain {
            certs.push(cert.clone())?;
        }
        // OCSP_basic_verify: signature by a certificate found in the response or `certs`,
        // that certificate's path to an anchor at `at` (purpose OCSP helper), and that it is
        // the issuer of the CertIDs or carries id-kp-OCSPSigning and is issued by it.
        if basic.verify(&certs, &store, OcspFlag::empty()).is_err() {
            return unusable(
                "signature or signer not valid (not the issuer nor an OCSP responder it authorised)",
            );
        }
        let Some(status) = basic.find_status(&self.id) else {
            return unusable("no answer for this certificate (CertID)");
        };
        let Some(this_update) = unix_seconds(crate::ffi::generalized_as_time(status.this_update))
        else {
            return unusable("unreadable thisUpdate");
        };
        if this_update > at.saturating_add(OCSP_TOLERANCE_SECONDS) {
            return unusable("thisUpdate is in the future");
        }
        let next_update = match status.next_update() {
            Some(next) => {
                let Some(next) = unix_seconds(crate::ffi::generalized_as_time(next)) else {
                    return unusable("unreadable nextUpdate");
                };
                if next < at.saturating_sub(OCSP_TOLERANCE_SECONDS) {
                    return unusable("stale (nextUpdate is past)");
                }
                next
            }
            None => {
                let until = this_update.saturating_add(OCSP_NO_NEXT_UPDATE_MAX_AGE_SECONDS);
                if until < at {
                    return unusable("stale (no nextUpdate and thisUpdate too old)");
                }
                until
            }
        };
        Ok(match status.status {
            OcspCertStatus::GOOD => match OffsetDateTime::from_unix_timestamp(next_update) {
                Ok(next_update) => OcspVerdict::Good { next_update },
                Err(_) => OcspVerdict::Unusable("nextUpdate out of range".to_owned()),
            },
            OcspCertStatus::REVOKED => OcspVerdict::Revoked,
            _ => OcspVerdict::Unusable("status unknown".to_owned()),
        })
    }
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
