//! One SignerInfo (RFC 5652 §5.3 to §5.6, RFC 8551 §2.6): the signed attributes, the
//! candidate certificates for its sid, the signature, the chain.
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::sync::Arc;

use rasn::types::Any;
use time::OffsetDateTime;

use super::algorithm::{self, Scheme, check_chain, check_key, key_weight, oid, verify_signature};
use super::decode::{self, SignerId, SignerInfo};
use super::{Context, SignedDataParts, SignerReport, VerifiedSigner, charge};
use crate::error::{BadSignatureReason, Failure};
use crate::limits::LimitKind;
use crate::trust::ParsedCertificate;

fn matches_sid(cert: &ParsedCertificate, sid: &SignerId) -> bool {
    match sid {
        // Compare the INTEGER contents octets as encoded: two's complement, so a negative
        // serial (RFC 5280 §4.1.2.2 tolerates them in the wild) matches only itself.
        SignerId::IssuerSerial { issuer, serial } => {
            cert.issuer_der.as_slice() == issuer.as_slice()
                && cert.raw_serial.as_deref() == Some(serial.as_slice())
        }
        SignerId::KeyId(key_id) => cert
            .certificate
            .subject_key_id()
            .is_some_and(|ski| ski.as_slice() == key_id.as_slice()),
    }
}

struct SignedAttributes {
    content_type: Option<String>,
    message_digest: Option<Vec<u8>>,
    signing_time: Option<OffsetDateTime>,
}

/// The attributes RFC 5652 §11 defines, each at most once with exactly one value.
fn read_signed_attributes(
    attributes: &[(String, Vec<Any>)],
    signer: usize,
) -> Result<SignedAttributes, Failure> {
    let bad = |reason| Failure::BadSignature { signer, reason };
    let malformed = Failure::MalformedCms { offset: 0 };
    let mut content_types = Vec::new();
    let mut digests = Vec::new();
    let mut signing_time = None;
    for (attribute_type, values) in attributes {
        match attribute_type.as_str() {
            oid::CONTENT_TYPE => {
                let [value] = values.as_slice() else {
                    return Err(bad(BadSignatureReason::ContentTypeAttribute));
                };
                content_types.push(decode::object_identifier(value).ok_or(malformed.clone())?);
            }
            oid::MESSAGE_DIGEST => {
                let [value] = values.as_slice() else {
                    return Err(bad(BadSignatureReason::MessageDigestAttribute));
                };
                digests.push(decode::octet_string(value).ok_or(malformed.clone())?);
            }
            oid::SIGNING_TIME => {
                let [value] = values.as_slice() else {
                    return Err(bad(BadSignatureReason::SigningTimeAttribute));
                };
                if signing_time.is_some() {
                    return Err(bad(BadSignatureReason::SigningTimeAttribute));
                }
                signing_time = Some(
                    parse_time(value.as_bytes())
                        .ok_or(bad(BadSignatureReason::SigningTimeAttribute))?,
                );
            }
            _ => {}
        }
    }
    if content_types.len() > 1 {
        return Err(bad(BadSignatureReason::ContentTypeAttribute));
    }
    if digests.len() > 1 {
        return Err(bad(BadSignatureReason::MessageDigestAttribute));
    }
    Ok(SignedAttributes {
        content_type: content_types.pop(),
        message_digest: digests.pop(),
        signing_time,
    })
}

/// RFC 5652 §11: contentType, messageDigest and signingTime MUST be signed attributes. One
/// found among the unsigned attributes is rejected (as OpenSSL's CMS_verify does) rather than
/// silently ignored.
fn check_unsigned_attributes(types: &[String], signer: usize) -> Result<(), Failure> {
    for attribute_type in types {
        let reason = match attribute_type.as_str() {
            oid::CONTENT_TYPE => BadSignatureReason::ContentTypeAttribute,
            oid::MESSAGE_DIGEST => BadSignatureReason::MessageDigestAttribute,
            oid::SIGNING_TIME => BadSignatureReason::SigningTimeAttribute,
            _ => continue,
        };
        return Err(Failure::BadSignature { signer, reason });
    }
    Ok(())
}

/// UTCTime (RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY) or GeneralizedTime, `Z` form only, from
/// the value's DER encoding (a short-form length: these are 13 or 15 octets).
fn parse_time(value: &[u8]) -> Option<OffsetDateTime> {
    let [tag, length, content @ ..] = value else {
        return None;
    };
    if usize::from(*length) != content.len() {
        return None;
    }
    let text = std::str::from_utf8(content).ok()?;
    let text = text.strip_suffix('Z')?;
    let (year, rest) = match *tag {
        0x17 => {
            let yy: i32 = text.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(0..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| -> Option<u8> { rest.get(range)?.parse().ok() };
    let month = time::Month::try_from(field(0..2)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(2..4)?).ok()?;
    let clock = time::Time::from_hms(field(4..6)?, field(6..8)?, field(8..10)?).ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

pub(super) fn check_signer(
    index: usize,
    signer_info: &SignerInfo,
    parsed: &SignedDataParts,
    content: &[u8],
    context: &Context<'_>,
    report: &mut SignerReport,
) -> Result<VerifiedSigner, Failure> {
    let bad = |reason| Failure::BadSignature {
        signer: index,
        reason,
    };
    // RFC 5652 §5.3: version 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    let version_ok = match signer_info.sid {
        SignerId::IssuerSerial { .. } => signer_info.version == Some(1),
        SignerId::KeyId(_) => signer_info.version == Some(3),
    };
    if !version_ok {
        return Err(Failure::MalformedCms { offset: 0 });
    }
    let sid = &signer_info.sid;
    let digest = algorithm::digest_algorithm(&signer_info.digest_algorithm)?;
    if !parsed.digest_algorithms.contains(&digest) {
        return Err(Failure::MalformedCms { offset: 0 });
    }
    check_unsigned_attributes(&signer_info.unsigned_attribute_types, index)?;
    let signature = &signer_info.signature;

    // RFC 8551 §2.6: several certificates may match the sid (a shared subjectKeyIdentifier,
    // one issuer name and serial from two issuers); each is tried, and the identity is the one
    // of a certificate whose key verifies. The tries are bounded before any of them runs.
    let candidates: Vec<&Arc<ParsedCertificate>> = parsed
        .certificates
        .iter()
        .filter(|cert| matches_sid(cert, sid))
        .collect();
    let Some(first) = candidates.first() else {
        return Err(Failure::SignerCertificateMissing { signer: index });
    };
    if candidates.len() > SID_CANDIDATES_MAX {
        return Err(Failure::LimitExceeded(LimitKind::Certificates));
    }
    report.subject = Some(first.subject.clone());
    report.emails = first.emails.clone().unwrap_or_default();

    digest.check(context.policy)?;
    let scheme = algorithm::scheme(&signer_info.signature_algorithm, digest)?;
    match scheme {
        Scheme::Pkcs1(hash) | Scheme::Ecdsa(hash) => hash.check(context.policy)?,
        Scheme::Pss { hash, mgf1, .. } => {
            hash.check(context.policy)?;
            mgf1.check(context.policy)?;
        }
        Scheme::Ed25519 => {}
    }

    let mut signing_time = None;
    let signed_bytes: Vec<u8> = match &signer_info.signed_attributes {
        Some(received) => {
            // RFC 5652 §5.4: the signature covers the DER of the SET OF attributes, i.e. the
            // received bytes with the [0] IMPLICIT tag replaced by the SET tag; they must be
            // DER (a BER encoding is malformed-cms, issue #15).
            let attributes = decode::signed_attributes(received)?;
            let found = read_signed_attributes(&attributes.attributes, index)?;
            let content_type = found
                .content_type
                .ok_or(bad(BadSignatureReason::ContentTypeAttribute))?;
            if content_type != parsed.econtent_type {
                return Err(bad(BadSignatureReason::ContentTypeMismatch));
            }
            let claimed = found
                .message_digest
                .ok_or(bad(BadSignatureReason::MessageDigestAttribute))?;
            let actual = parsed
                .content_digest(digest, content, context.budget)?
                .ok_or(bad(BadSignatureReason::DigestMismatch))?;
            if !digests_equal(&claimed, &actual) {
                return Err(bad(BadSignatureReason::DigestMismatch));
            }
            signing_time = found.signing_time;
            attributes.covered
        }
        None => {
            // RFC 5652 §5.3: without signed attributes the content type must be id-data.
            if parsed.econtent_type != oid::DATA {
                return Err(bad(BadSignatureReason::ContentTypeAttribute));
            }
            content.to_vec()
        }
    };

    // The first failure of a candidate whose key verified is the most specific one; without
    // such a candidate, the first candidate's.
    let mut first_failure: Option<Failure> = None;
    let mut verified_failure: Option<Failure> = None;
    charge(context.budget.hash(signed_bytes.len()))?;
    for signer in candidates {
        let certificate = &signer.certificate;
        let key = match certificate.public_key() {
            Ok(key) => key,
            Err(_) => {
                first_failure.get_or_insert(bad(BadSignatureReason::KeyTypeMismatch));
                continue;
            }
        };
        if let Err(failure) = check_key(&key, context.policy) {
            first_failure.get_or_insert(failure);
            continue;
        }
        // The key maxima and the per-message budget end the whole SignerInfo (and a spent
        // budget the message): every candidate's verification is paid before it runs.
        let weight = key_weight(&key, context.limits)?;
        charge(context.budget.verify(weight))?;
        match verify_signature(signer, &key, scheme, &signed_bytes, signature) {
            Ok(true) => {}
            Ok(false) => {
                first_failure.get_or_insert(bad(BadSignatureReason::SignatureMismatch));
                continue;
            }
            Err(()) => {
                first_failure.get_or_insert(bad(BadSignatureReason::KeyTypeMismatch));
                continue;
            }
        }
        if !parsed.chains_paid.borrow().contains(&signer.der) {
            // The signer's own key verifies nothing in its chain: the other certificates' do.
            let chain_weight = parsed.chain_weight.saturating_sub(weight.saturating_mul(3));
            charge(context.budget.verify(chain_weight))?;
            parsed
                .chains_paid
                .borrow_mut()
                .push(Arc::clone(&signer.der));
        }
        // This certificate's key made the signature: it alone says who signed.
        report.subject = Some(signer.subject.clone());
        report.emails = signer.emails.clone().unwrap_or_default();
        let validated = signer
            .emails
            .clone()
            .map_err(|malformed| Failure::CertificateAddress {
                signer: index,
                address: malformed.text,
            })
            .and_then(|emails| {
                let chain = context.trust.validate(
                    signer,
                    &parsed.certificates,
                    &parsed.crls,
                    &parsed.crl_ders(),
                    context.at,
                    &context.revocation,
                )?;
                check_chain(&chain.chain, context.policy)?;
                Ok((emails, chain))
            });
        match validated {
            Ok((emails, chain)) => {
                return Ok(VerifiedSigner {
                    emails,
                    subject: signer.subject.clone(),
                    issuer: signer.issuer.clone(),
                    serial_hex: certificate
                        .serial_number()
                        .to_bn()
                        .ok()
                        .and_then(|bn| bn.to_hex_str().ok())
                        .map(|hex| hex.to_ascii_lowercase())
                        .unwrap_or_default(),
                    signing_time,
                    digest,
                    certificate: Some(certificate.clone()),
                    chain: chain.chain,
                    revocation_warnings: chain.revocation_warnings,
                    openpgp: None,
                });
            }
            Err(failure) => {
                verified_failure.get_or_insert(failure);
            }
        }
    }
    Err(verified_failure
        .or(first_failure)
        .unwrap_or(Failure::SignerCertificateMissing { signer: index }))
}

/// Certificates matching one SignerInfo's sid that are tried (RFC 8551 §2.6), at most: a
/// renewed certificate for the same key, or a reissue, gives two or three in honest mail.
/// More is refused as `limit-exceeded` (kind `certificates`) before any signature is checked,
/// so a SignedData costs at most this many verifications per SignerInfo.
pub const SID_CANDIDATES_MAX: usize = 4;

/// Whether a received digest equals the computed one, in constant time, without panicking:
/// `openssl::memcmp::eq` asserts that both slices have the same length, and a messageDigest
/// attribute of any length comes from the (unauthenticated) message. Issue #11 item 1: the
/// length was compared after the call, so a 31-byte SHA-256 messageDigest aborted the
/// process. The lengths are public (the algorithm says how long the digest is).
#[allow(clippy::disallowed_methods)] // the one caller: lengths compared first (clippy.toml)
fn digests_equal(received: &[u8], computed: &[u8]) -> bool {
    received.len() == computed.len() && openssl::memcmp::eq(received, computed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        let utc = [
            0x17, 0x0d, b'2', b'6', b'0', b'6', b'0', b'1', b'1', b'2', b'3', b'0', b'0', b'0',
            b'Z',
        ];
        let parsed = parse_time(&utc).unwrap();
        assert_eq!(parsed.year(), 2026);
        assert_eq!(parsed.hour(), 12);
        assert_eq!(parsed.minute(), 30);
    }
}
