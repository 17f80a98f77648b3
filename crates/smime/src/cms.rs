//! CMS SignedData verification (RFC 5652 §5) with OpenSSL primitives.
//!
//! The structure is decoded by `rasn-cms` ([`decode`]) after the received bytes passed the
//! encoding rules `rasn` does not enforce ([`encoding`]: minimal lengths, strict OIDs, DER
//! signed attributes). The bytes a signature covers are the bytes received: the signed
//! attributes are verified over their received DER with the `[0] IMPLICIT` tag replaced by
//! `SET` (0x31), RFC 5652 §5.4. Certificates and CRLs are handed to OpenSSL in their received
//! encoding. The algorithms and keys are in [`algorithm`], one SignerInfo in [`signer`].
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod algorithm;
pub(crate) mod decode;
pub(crate) mod encoding;
mod signer;

use std::cell::RefCell;
use std::sync::Arc;

use openssl::x509::{X509, X509Crl};
use rasn::types::Any;
use time::OffsetDateTime;

pub use algorithm::DigestAlgorithm;
pub(crate) use algorithm::{Scheme, check_chain, key_weight, oid};
use decode::{SignerId, SignerInfo};
pub use signer::SID_CANDIDATES_MAX;

use crate::error::Failure;
use crate::limits::{Budget, LimitKind, Limits};
use crate::policy::AlgorithmPolicy;
use crate::trust::{EmailAddress, ParsedCertificate, TrustStore};

/// A signer whose signature verified and whose certificate chains to a trust anchor, for the
/// email-protection purpose, under the algorithm policy, at the evaluation time.
///
/// Only this crate can construct one (private fields): holding a `VerifiedSigner` is proof that
/// verification ran, like rustls' `HandshakeSignatureValid`.
#[derive(Debug, Clone)]
pub struct VerifiedSigner {
    emails: Vec<EmailAddress>,
    subject: String,
    issuer: String,
    serial_hex: String,
    signing_time: Option<OffsetDateTime>,
    digest: DigestAlgorithm,
    /// The signer certificate (`None` for an OpenPGP signer).
    certificate: Option<X509>,
    chain: Arc<[X509]>,
    revocation_warnings: Vec<String>,
    /// The OpenPGP proof, for a signer of a PGP/MIME layer (RFC 3156).
    openpgp: Option<imipsec_openpgp::VerifiedKey>,
}

impl VerifiedSigner {
    /// Email addresses of the signer certificate: every rfc822Name subjectAltName and every
    /// subject emailAddress attribute (RFC 8550 §3), deduplicated.
    pub fn emails(&self) -> &[EmailAddress] {
        &self.emails
    }
    /// Subject distinguished name (RFC 4514 style).
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// Issuer distinguished name (RFC 4514 style).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
    /// Certificate serial number, lowercase hex.
    pub fn serial_hex(&self) -> &str {
        &self.serial_hex
    }
    /// The signingTime signed attribute (RFC 5652 §11.3), if present. Claimed by the signer,
    /// not verified against the evaluation time.
    pub fn signing_time(&self) -> Option<OffsetDateTime> {
        self.signing_time
    }
    /// The digest algorithm of the SignerInfo.
    pub fn digest(&self) -> DigestAlgorithm {
        self.digest
    }
    /// The signer certificate; `None` for an OpenPGP signer ([`VerifiedSigner::openpgp`]).
    pub fn certificate(&self) -> Option<&X509> {
        self.certificate.as_ref()
    }
    /// The validated chain, signer first, trust anchor last; empty for an OpenPGP signer.
    pub fn chain(&self) -> &[X509] {
        &self.chain
    }
    /// The OpenPGP proof (certificate fingerprint, signing key, user IDs) when the signer
    /// signed a PGP/MIME layer (RFC 3156); `None` for S/MIME.
    pub fn openpgp(&self) -> Option<&imipsec_openpgp::VerifiedKey> {
        self.openpgp.as_ref()
    }

    /// The signer of a verified OpenPGP signature, in the one signer type the pipeline
    /// correlates: the emails are the user-ID emails with a valid self-signature, each held
    /// to the same addr-spec rule as a certificate address (one that is not a plain addr-spec
    /// fails the signer, as for S/MIME). `subject` is the primary user ID, `issuer` says
    /// `openpgp`, `serial_hex` is the certificate fingerprint.
    pub(crate) fn from_openpgp(
        key: imipsec_openpgp::VerifiedKey,
        index: usize,
    ) -> Result<VerifiedSigner, Failure> {
        let mut emails: Vec<EmailAddress> = Vec::new();
        for address in key.emails() {
            let email = EmailAddress::parse(address).map_err(|_| Failure::CertificateAddress {
                signer: index,
                address: address.escape_debug().to_string(),
            })?;
            if !emails
                .iter()
                .any(|known| known.normalized() == email.normalized())
            {
                emails.push(email);
            }
        }
        let digest = match key.hash() {
            "sha1" => DigestAlgorithm::Sha1,
            "sha224" => DigestAlgorithm::Sha224,
            "sha256" => DigestAlgorithm::Sha256,
            "sha384" => DigestAlgorithm::Sha384,
            "sha512" => DigestAlgorithm::Sha512,
            "sha3-256" => DigestAlgorithm::Sha3_256,
            "sha3-512" => DigestAlgorithm::Sha3_512,
            other => {
                return Err(Failure::WeakAlgorithm {
                    algorithm: format!("{other} (not implemented for OpenPGP signers)"),
                });
            }
        };
        Ok(VerifiedSigner {
            emails,
            subject: key.user_id().to_owned(),
            issuer: "openpgp".to_owned(),
            serial_hex: key.fingerprint().to_ascii_lowercase(),
            signing_time: key.created(),
            digest,
            certificate: None,
            chain: Arc::from(Vec::new()),
            revocation_warnings: Vec::new(),
            openpgp: Some(key),
        })
    }
    /// Revocation checks that could not be done under revocation mode `if-available` (the
    /// source could not answer, or its answer was unusable): the signer was accepted anyway.
    pub fn revocation_warnings(&self) -> &[String] {
        &self.revocation_warnings
    }
}

/// What happened to one SignerInfo of a SignedData (for diagnostics; not a proof).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignerReport {
    /// Index of the SignerInfo in the SignedData.
    pub index: usize,
    /// Subject of the certificate matching the sid, when found.
    pub subject: Option<String>,
    /// Email addresses of that certificate.
    pub emails: Vec<EmailAddress>,
    /// `None` when this signer verified, else why not.
    pub failure: Option<Failure>,
}

/// Result of checking one SignedData.
#[derive(Debug)]
pub(crate) struct Checked {
    /// All signers verified (and there is at least one): the proofs.
    pub outcome: Result<Vec<VerifiedSigner>, Failure>,
    /// One report per SignerInfo.
    pub reports: Vec<SignerReport>,
    /// The encapsulated content (opaque signing), when present.
    pub econtent: Option<Vec<u8>>,
}

/// Inputs shared by all signers of one SignedData.
pub(crate) struct Context<'a> {
    pub trust: &'a TrustStore,
    pub at: OffsetDateTime,
    pub revocation: crate::trust::Revocation<'a>,
    pub policy: &'a AlgorithmPolicy,
    pub limits: &'a Limits,
    /// The message's remaining work budget (public-key operations, hashed bytes).
    pub budget: &'a Budget,
}

/// Verify a DER/BER ContentInfo holding SignedData. `detached` is the content for a detached
/// signature (multipart/signed), `None` for opaque signing.
pub(crate) fn check_signed_data(
    der_bytes: &[u8],
    detached: Option<&[u8]>,
    context: &Context<'_>,
) -> Checked {
    let failed = |failure| Checked {
        outcome: Err(failure),
        reports: Vec::new(),
        econtent: None,
    };
    if der_bytes.len() > context.limits.cms_bytes {
        return failed(Failure::LimitExceeded(LimitKind::CmsBytes));
    }
    let (content_type, signed_data) = match decode::content_info(der_bytes) {
        Ok(parts) => parts,
        Err(failure) => return failed(failure),
    };
    if content_type != oid::SIGNED_DATA {
        return failed(Failure::UnexpectedContentType { oid: content_type });
    }
    let parsed = match parse_signed_data(&signed_data, context) {
        Ok(parsed) => parsed,
        Err(failure) => return failed(failure),
    };
    // Key maxima before any public-key operation, for every certificate the message offers:
    // OpenSSL's chain validation verifies certificates and CRLs with these keys too.
    let mut parsed = parsed;
    match offered_key_weight(&parsed.certificates, context) {
        Ok(weight) => parsed.chain_weight = weight,
        Err(failure) => return failed(failure),
    }
    let econtent = parsed.econtent.clone();
    // A certs-only SignedData (RFC 8551 §3.6) has neither signers nor content: say what it is.
    if parsed.signer_infos.is_empty() {
        return Checked {
            outcome: Err(Failure::NoSigners),
            reports: Vec::new(),
            econtent,
        };
    }
    // RFC 8551 §3.2: the content S/MIME signs is a MIME entity, content type id-data. Any
    // other (id-ct-TSTInfo, a receipt, an inner SignedData...) is not signed mail even when
    // its signature verifies: nothing is verified, and its content is never walked as MIME.
    // eContentType decides for both forms: the contentType attribute must equal it (§5.3).
    if parsed.econtent_type != oid::DATA {
        return failed(Failure::UnexpectedContentType {
            oid: parsed.econtent_type.clone(),
        });
    }
    // The same SignerInfo twice is one signature counted twice (and verified twice): a
    // second encoding of the SignedData that verifies, refused (found by `cms_structure`).
    // The class is the signature value, not the encoding: a copy that spells its
    // signatureAlgorithm another way (rsaEncryption / sha256WithRSAEncryption, RFC 5754 §3)
    // or carries other unsigned attributes is still the same signature (found again by
    // `cms_structure`).
    for (index, (received, signer_info)) in parsed.signer_infos.iter().enumerate() {
        if parsed
            .signer_infos
            .iter()
            .take(index)
            .any(|(earlier, earlier_info)| {
                earlier == received || earlier_info.signature == signer_info.signature
            })
        {
            return failed(Failure::MalformedCms { offset: 0 });
        }
    }
    if parsed.version != Some(expected_version(&parsed)) {
        return failed(Failure::MalformedCms { offset: 0 });
    }
    let content: &[u8] = match (detached, parsed.econtent.as_deref()) {
        (Some(_), Some(_)) => {
            return Checked {
                outcome: Err(Failure::ContentConfusion),
                reports: Vec::new(),
                econtent: None,
            };
        }
        (Some(content), None) | (None, Some(content)) => content,
        (None, None) => return failed(Failure::MissingContent),
    };
    let mut reports = Vec::new();
    let mut verified = Vec::new();
    let mut first_failure = None;
    for (index, (_, signer_info)) in parsed.signer_infos.iter().enumerate() {
        let mut report = SignerReport {
            index,
            subject: None,
            emails: Vec::new(),
            failure: None,
        };
        match signer::check_signer(index, signer_info, &parsed, content, context, &mut report) {
            Ok(signer) => verified.push(signer),
            Err(failure) => {
                if first_failure.is_none() {
                    first_failure = Some(failure.clone());
                }
                report.failure = Some(failure);
            }
        }
        reports.push(report);
    }
    Checked {
        outcome: match first_failure {
            Some(failure) => Err(failure),
            None => Ok(verified),
        },
        reports,
        econtent,
    }
}

/// A SignedData as this verifier uses it.
struct SignedDataParts {
    /// The version, when encoded as one octet.
    version: Option<u8>,
    digest_algorithms: Vec<DigestAlgorithm>,
    /// Tags of the CertificateChoices and RevocationInfoChoices (for the version rule).
    choice_tags: ChoiceTags,
    econtent_type: String,
    econtent: Option<Vec<u8>>,
    certificates: Vec<Arc<ParsedCertificate>>,
    /// The CRLs as received, and as OpenSSL parsed them.
    crl_ders: Vec<Any>,
    crls: Vec<X509Crl>,
    /// Each SignerInfo as received (to find duplicates) and decoded.
    signer_infos: Vec<(Any, SignerInfo)>,
    /// Budget charge of one chain validation with these certificates (see `limits`).
    chain_weight: u64,
    /// Digests of the content computed so far, one per algorithm: every signer hashing the
    /// whole content again multiplied the work by the number of signers (issue #11).
    content_digests: RefCell<Vec<(DigestAlgorithm, Vec<u8>)>>,
    /// Signer certificates (DER) whose chain validation this SignedData has paid for: signers
    /// sharing a certificate share the validation (the chain cache answers the others).
    chains_paid: RefCell<Vec<Arc<[u8]>>>,
}

impl SignedDataParts {
    /// The digest of `content` with `algorithm`, hashed (and paid for) once per SignedData.
    fn content_digest(
        &self,
        algorithm: DigestAlgorithm,
        content: &[u8],
        budget: &Budget,
    ) -> Result<Option<Vec<u8>>, Failure> {
        if let Some((_, digest)) = self
            .content_digests
            .borrow()
            .iter()
            .find(|(kept, _)| *kept == algorithm)
        {
            return Ok(Some(digest.clone()));
        }
        charge(budget.hash(content.len()))?;
        let Ok(digest) = algorithm.digest(content) else {
            return Ok(None);
        };
        self.content_digests
            .borrow_mut()
            .push((algorithm, digest.clone()));
        Ok(Some(digest))
    }

    /// The received CRLs, as the trust store takes them.
    fn crl_ders(&self) -> Vec<&[u8]> {
        self.crl_ders.iter().map(Any::as_bytes).collect()
    }
}

const SEQUENCE: u8 = 0x30;

fn parse_signed_data(signed_data: &Any, context: &Context<'_>) -> Result<SignedDataParts, Failure> {
    let (limits, trust) = (context.limits, context.trust);
    let decoded = decode::signed_data(signed_data)?;
    // RFC 5652 §5.1: version 1, 3, 4 or 5. Neither the version nor digestAlgorithms is covered
    // by any signature, so both are checked strictly: a modified byte there must not pass.
    if !matches!(decoded.version, Some(1 | 3 | 4 | 5)) {
        return Err(Failure::MalformedCms { offset: 0 });
    }
    let mut digest_algorithms = Vec::new();
    for algorithm in &decoded.digest_algorithms {
        digest_algorithms.push(algorithm::digest_algorithm(algorithm)?);
    }
    let mut certificates = Vec::new();
    let mut crls = Vec::new();
    let mut crl_ders = Vec::new();
    let mut choice_tags = ChoiceTags::default();
    let counted = decoded
        .certificates
        .len()
        .saturating_add(decoded.crls.len());
    if counted > limits.certificates {
        return Err(Failure::LimitExceeded(LimitKind::Certificates));
    }
    for cert in decoded.certificates {
        match cert.as_bytes().first() {
            Some(0xa1) => choice_tags.v1_attribute_certificate = true,
            Some(0xa2) => choice_tags.v2_attribute_certificate = true,
            Some(&SEQUENCE) => {}
            _ => choice_tags.other = true,
        }
        charge(context.budget.certificate())?;
        // Other CertificateChoices (attribute certificates...) carry no signer key.
        if cert.as_bytes().first() == Some(&SEQUENCE) {
            let parsed = trust
                .parse_certificate(cert.as_bytes())
                .map_err(|_| Failure::MalformedCms { offset: 0 })?;
            certificates.push(parsed);
        }
    }
    for crl in decoded.crls {
        charge(context.budget.certificate())?;
        if crl.as_bytes().first() == Some(&SEQUENCE) {
            let parsed = X509Crl::from_der(crl.as_bytes())
                .map_err(|_| Failure::MalformedCms { offset: 0 })?;
            crls.push(parsed);
            crl_ders.push(crl);
        } else {
            choice_tags.other = true;
        }
    }
    if decoded.signer_infos.len() > limits.signer_infos {
        return Err(Failure::LimitExceeded(LimitKind::SignerInfos));
    }
    let mut signer_infos = Vec::new();
    for received in decoded.signer_infos {
        let signer_info = decode::signer_info(&received)?;
        signer_infos.push((received, signer_info));
    }
    Ok(SignedDataParts {
        version: decoded.version,
        digest_algorithms,
        choice_tags,
        econtent_type: decoded.econtent_type,
        econtent: decoded.econtent,
        certificates,
        crl_ders,
        crls,
        signer_infos,
        chain_weight: 0,
        content_digests: RefCell::new(Vec::new()),
        chains_paid: RefCell::new(Vec::new()),
    })
}

/// Which kinds of CertificateChoices / RevocationInfoChoices a SignedData holds.
#[derive(Default)]
struct ChoiceTags {
    v1_attribute_certificate: bool,
    v2_attribute_certificate: bool,
    /// `other` certificate or revocation information.
    other: bool,
}

/// RFC 5652 §5.1: the SignedData version is a function of what it holds (5 with `other`
/// certificates or CRLs, 4 with v2 attribute certificates, 3 with v1 attribute certificates, a
/// version 3 SignerInfo or an eContentType other than id-data, else 1). The field is covered
/// by no signature: a value other than the computed one is `malformed-cms`, so that changing
/// it is noticed (found by the `cms_structure` fuzz target: version 1 rewritten to 3 or 4
/// verified) and no two encodings of one SignedData both verify.
fn expected_version(parsed: &SignedDataParts) -> u8 {
    let tags = &parsed.choice_tags;
    // A SignerInfo is version 3 exactly when its sid is a subjectKeyIdentifier (§5.3, checked
    // per signer).
    let any_v3_signer = parsed
        .signer_infos
        .iter()
        .any(|(_, signer_info)| matches!(signer_info.sid, SignerId::KeyId(_)));
    if tags.other {
        5
    } else if tags.v2_attribute_certificate {
        4
    } else if tags.v1_attribute_certificate || any_v3_signer || parsed.econtent_type != oid::DATA {
        3
    } else {
        1
    }
}

fn charge(result: Result<(), LimitKind>) -> Result<(), Failure> {
    result.map_err(Failure::LimitExceeded)
}

/// The key maxima of [`Limits`] on every certificate key a SignedData offers, and three
/// operations per certificate at its key's weight: a chain validation is charged this minus
/// the signer's own share. In a chain each issuer's key verifies the certificate below it and
/// at most a base and a delta CRL for it (OpenSSL's `check_revocation`, `internal_verify`).
/// A key OpenSSL cannot decode is skipped: it cannot verify anything. The trust anchors' keys
/// (the operator's choice) are not charged.
fn offered_key_weight(
    certificates: &[Arc<ParsedCertificate>],
    context: &Context<'_>,
) -> Result<u64, Failure> {
    let mut total = 0u64;
    for parsed in certificates {
        if let Ok(key) = parsed.certificate.public_key() {
            total = total.saturating_add(key_weight(&key, context.limits)?.saturating_mul(3));
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use openssl::hash::MessageDigest;

    use super::*;

    #[test]
    fn garbage_is_malformed_not_panic() {
        let trust_anchor = {
            let key =
                openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
            let mut name = openssl::x509::X509NameBuilder::new().unwrap();
            name.append_entry_by_text("CN", "t").unwrap();
            let name = name.build();
            let mut builder = X509::builder().unwrap();
            builder.set_subject_name(&name).unwrap();
            builder.set_issuer_name(&name).unwrap();
            builder.set_pubkey(&key).unwrap();
            builder.sign(&key, MessageDigest::sha256()).unwrap();
            builder.build()
        };
        let trust = TrustStore::new(vec![trust_anchor], vec![]).unwrap();
        let policy = AlgorithmPolicy::default();
        let limits = Limits::default();
        let context = Context {
            trust: &trust,
            at: OffsetDateTime::UNIX_EPOCH,
            revocation: crate::trust::Revocation {
                mode: crate::RevocationMode::default(),
                source: None,
            },
            policy: &policy,
            limits: &limits,
            budget: &Budget::new(&limits, 1 << 20),
        };
        for input in [
            &b""[..],
            b"\x30",
            b"\x30\x80\x06\x01",
            b"\x30\x03\x06\x01\x2a",
            b"\x30\x81\x03\x06\x01\x2a",
        ] {
            let checked = check_signed_data(input, Some(b"x"), &context);
            assert!(matches!(checked.outcome, Err(Failure::MalformedCms { .. })));
        }
    }
}
