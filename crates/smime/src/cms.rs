//! CMS SignedData verification (RFC 5652 §5) with OpenSSL primitives.
//!
//! The structure is read by the bounded reader in `der` so that the bytes a signature
//! covers are the bytes received: the signed attributes are verified over their original DER
//! with the `[0] IMPLICIT` tag replaced by `SET` (0x31), RFC 5652 §5.4. Certificates and CRLs
//! are handed to OpenSSL in their received encoding.
// Untrusted input reaches every function here: no indexing or slicing that can panic
// (get / split_at_checked / patterns instead), issue #11 item 1.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::cell::RefCell;
use std::sync::Arc;

use openssl::error::ErrorStack;
use openssl::hash::{MessageDigest, hash};
use openssl::md::{Md, MdRef};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::x509::{X509, X509Crl};
use time::OffsetDateTime;

use crate::der::{self, DerError, Tlv, tag};
use crate::error::{BadSignatureReason, Failure};
use crate::limits::{Budget, LimitKind, Limits};
use crate::policy::AlgorithmPolicy;
use crate::second_opinion;
use crate::trust::{EmailAddress, ParsedCertificate, TrustStore};

/// Object identifiers used here, dotted.
pub(crate) mod oid {
    pub const DATA: &str = "1.2.840.113549.1.7.1";
    pub const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    pub const ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
    pub const AUTH_ENVELOPED_DATA: &str = "1.2.840.113549.1.9.16.1.23";
    pub const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
    pub const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
    pub const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    pub const MD5_WITH_RSA: &str = "1.2.840.113549.1.1.4";
    pub const SHA1_WITH_RSA: &str = "1.2.840.113549.1.1.5";
    pub const RSASSA_PSS: &str = "1.2.840.113549.1.1.10";
    pub const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
    pub const SHA384_WITH_RSA: &str = "1.2.840.113549.1.1.12";
    pub const SHA512_WITH_RSA: &str = "1.2.840.113549.1.1.13";
    pub const SHA224_WITH_RSA: &str = "1.2.840.113549.1.1.14";
    pub const MGF1: &str = "1.2.840.113549.1.1.8";
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    pub const ECDSA_SHA1: &str = "1.2.840.10045.4.1";
    pub const ECDSA_SHA224: &str = "1.2.840.10045.4.3.1";
    pub const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
    pub const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
    pub const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
    pub const ED25519: &str = "1.3.101.112";
    pub const MD5: &str = "1.2.840.113549.2.5";
    pub const SHA1: &str = "1.3.14.3.2.26";
    pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    pub const SHA384: &str = "2.16.840.1.101.3.4.2.2";
    pub const SHA512: &str = "2.16.840.1.101.3.4.2.3";
    pub const SHA224: &str = "2.16.840.1.101.3.4.2.4";
}

/// A message digest algorithm (RFC 5754).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// MD5 (never accepted).
    Md5,
    /// SHA-1 (accepted only with `danger_allow_sha1`).
    Sha1,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlgorithm {
    fn from_oid(oid: &str) -> Option<Self> {
        Some(match oid {
            oid::MD5 => DigestAlgorithm::Md5,
            oid::SHA1 => DigestAlgorithm::Sha1,
            oid::SHA224 => DigestAlgorithm::Sha224,
            oid::SHA256 => DigestAlgorithm::Sha256,
            oid::SHA384 => DigestAlgorithm::Sha384,
            oid::SHA512 => DigestAlgorithm::Sha512,
            _ => return None,
        })
    }

    /// Lowercase name, as used in `weak-algorithm` failures.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "md5",
            DigestAlgorithm::Sha1 => "sha1",
            DigestAlgorithm::Sha224 => "sha224",
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    fn md(self) -> &'static MdRef {
        match self {
            DigestAlgorithm::Md5 => Md::md5(),
            DigestAlgorithm::Sha1 => Md::sha1(),
            DigestAlgorithm::Sha224 => Md::sha224(),
            DigestAlgorithm::Sha256 => Md::sha256(),
            DigestAlgorithm::Sha384 => Md::sha384(),
            DigestAlgorithm::Sha512 => Md::sha512(),
        }
    }

    fn message_digest(self) -> MessageDigest {
        match self {
            DigestAlgorithm::Md5 => MessageDigest::md5(),
            DigestAlgorithm::Sha1 => MessageDigest::sha1(),
            DigestAlgorithm::Sha224 => MessageDigest::sha224(),
            DigestAlgorithm::Sha256 => MessageDigest::sha256(),
            DigestAlgorithm::Sha384 => MessageDigest::sha384(),
            DigestAlgorithm::Sha512 => MessageDigest::sha512(),
        }
    }

    fn check(self, policy: &AlgorithmPolicy) -> Result<(), Failure> {
        let weak = match self {
            DigestAlgorithm::Md5 => true,
            DigestAlgorithm::Sha1 => !policy.danger_allow_sha1,
            _ => false,
        };
        if weak {
            Err(Failure::WeakAlgorithm {
                algorithm: self.name().to_string(),
            })
        } else {
            Ok(())
        }
    }
}

/// How a signature value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Pkcs1(DigestAlgorithm),
    Pss {
        hash: DigestAlgorithm,
        mgf1: DigestAlgorithm,
        salt: i32,
    },
    Ecdsa(DigestAlgorithm),
    Ed25519,
}

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
    certificate: X509,
    chain: Arc<[X509]>,
    revocation_warnings: Vec<String>,
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
    /// The signer certificate.
    pub fn certificate(&self) -> &X509 {
        &self.certificate
    }
    /// The validated chain, signer first, trust anchor last.
    pub fn chain(&self) -> &[X509] {
        &self.chain
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

fn malformed(error: DerError) -> Failure {
    Failure::MalformedCms {
        offset: error.offset,
    }
}

/// The content type OID of a ContentInfo (RFC 5652 §3), and its `[0] EXPLICIT` content.
pub(crate) fn content_info(der_bytes: &[u8]) -> Result<(String, Tlv<'_>), Failure> {
    let outer = der::read_all(der_bytes)
        .and_then(|tlv| tlv.expect(tag::SEQUENCE))
        .map_err(malformed)?;
    let mut children = outer.children();
    let content_type = next(&mut children, outer.offset).and_then(der::read_oid);
    let content_type = content_type.map_err(malformed)?;
    let explicit = next(&mut children, outer.offset)
        .and_then(|tlv| tlv.expect(0xa0))
        .map_err(malformed)?;
    let mut inner = explicit.children();
    let content = next(&mut inner, explicit.offset).map_err(malformed)?;
    Ok((content_type, content))
}

fn next<'a>(children: &mut der::Children<'a>, offset: usize) -> Result<Tlv<'a>, DerError> {
    children.next().unwrap_or(Err(DerError { offset }))
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
    let (content_type, signed_data) = match content_info(der_bytes) {
        Ok(parts) => parts,
        Err(failure) => return failed(failure),
    };
    if content_type != oid::SIGNED_DATA {
        return failed(Failure::UnexpectedContentType { oid: content_type });
    }
    let parsed = match parse_signed_data(signed_data, context) {
        Ok(parsed) => parsed,
        Err(failure) => return failed(failure),
    };
    // The typed second reading must agree before anything is decided on the first.
    let structure = second_opinion::Structure {
        version: parsed.version,
        digest_algorithms: parsed.digest_algorithm_oids.clone(),
        econtent_type: &parsed.econtent_type,
        econtent: parsed.econtent.as_deref(),
        certificates: parsed.certificate_choices,
        crls: parsed.crl_choices,
        signer_infos: &parsed.signer_infos,
    };
    if let Err(failure) = second_opinion::agree(der_bytes, &structure, context.limits.cms_bytes) {
        return failed(failure);
    }
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
    for (index, signer_info) in parsed.signer_infos.iter().enumerate() {
        if parsed
            .signer_infos
            .iter()
            .take(index)
            .any(|earlier| earlier.full == signer_info.full)
        {
            return failed(Failure::MalformedCms {
                offset: signer_info.offset,
            });
        }
    }
    if parsed.version != expected_version(&parsed) {
        return failed(Failure::MalformedCms {
            offset: signed_data.offset,
        });
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
    for (index, signer_info) in parsed.signer_infos.iter().enumerate() {
        let mut report = SignerReport {
            index,
            subject: None,
            emails: Vec::new(),
            failure: None,
        };
        match check_signer(index, *signer_info, &parsed, content, context, &mut report) {
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

struct SignedDataParts<'a> {
    version: u8,
    digest_algorithms: Vec<DigestAlgorithm>,
    digest_algorithm_oids: Vec<String>,
    certificate_choices: usize,
    crl_choices: usize,
    /// Tags of the CertificateChoices and RevocationInfoChoices (for the version rule).
    choice_tags: ChoiceTags,
    econtent_type: String,
    econtent: Option<Vec<u8>>,
    certificates: Vec<Arc<ParsedCertificate>>,
    crl_ders: Vec<&'a [u8]>,
    crls: Vec<X509Crl>,
    signer_infos: Vec<Tlv<'a>>,
    /// Budget charge of one chain validation with these certificates (see `limits`).
    chain_weight: u64,
    /// Digests of the content computed so far, one per algorithm: every signer hashing the
    /// whole content again multiplied the work by the number of signers (issue #11).
    content_digests: RefCell<Vec<(DigestAlgorithm, Vec<u8>)>>,
    /// Signer certificates (DER) whose chain validation this SignedData has paid for: signers
    /// sharing a certificate share the validation (the chain cache answers the others).
    chains_paid: RefCell<Vec<Arc<[u8]>>>,
}

impl SignedDataParts<'_> {
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
        let Ok(digest) = hash(algorithm.message_digest(), content) else {
            return Ok(None);
        };
        self.content_digests
            .borrow_mut()
            .push((algorithm, digest.to_vec()));
        Ok(Some(digest.to_vec()))
    }
}

fn parse_signed_data<'a>(
    signed_data: Tlv<'a>,
    context: &Context<'_>,
) -> Result<SignedDataParts<'a>, Failure> {
    let (limits, trust) = (context.limits, context.trust);
    let signed_data = signed_data.expect(tag::SEQUENCE).map_err(malformed)?;
    let start = signed_data.offset;
    let mut children = signed_data.children().peekable();
    let mut take = |expected: u8| -> Result<Tlv<'a>, Failure> {
        match children.next() {
            Some(Ok(tlv)) => tlv.expect(expected).map_err(malformed),
            Some(Err(error)) => Err(malformed(error)),
            None => Err(Failure::MalformedCms { offset: start }),
        }
    };
    // RFC 5652 §5.1: version 1, 3, 4 or 5. Neither the version nor digestAlgorithms is covered
    // by any signature, so both are checked strictly: a modified byte there must not pass.
    let version = take(tag::INTEGER)?;
    if !matches!(version.content, [1] | [3] | [4] | [5]) {
        return Err(Failure::MalformedCms {
            offset: version.offset,
        });
    }
    let version = version.content.first().copied().unwrap_or_default();
    let mut digest_algorithms = Vec::new();
    let mut digest_algorithm_oids = Vec::new();
    for algorithm in take(tag::SET)?.children() {
        let algorithm = algorithm.map_err(malformed)?;
        let (oid, parameters) = algorithm_identifier(algorithm)?;
        digest_algorithm_oids.push(oid.clone());
        if parameters.is_some_and(|p| p.full != [0x05, 0x00]) {
            return Err(Failure::MalformedCms {
                offset: algorithm.offset,
            });
        }
        digest_algorithms
            .push(DigestAlgorithm::from_oid(&oid).ok_or(Failure::UnsupportedAlgorithm { oid })?);
    }
    let encap = take(tag::SEQUENCE)?;
    let mut encap_children = encap.children();
    let econtent_type = next(&mut encap_children, encap.offset)
        .and_then(der::read_oid)
        .map_err(malformed)?;
    let econtent = match encap_children.next() {
        None => None,
        Some(explicit) => {
            let explicit = explicit.and_then(|t| t.expect(0xa0)).map_err(malformed)?;
            let mut inner = explicit.children();
            let octets = next(&mut inner, explicit.offset).map_err(malformed)?;
            Some(octets.octets(limits.cms_bytes).map_err(malformed)?)
        }
    };
    let mut certificates = Vec::new();
    let mut crls = Vec::new();
    let mut crl_ders = Vec::new();
    let mut signer_infos = Vec::new();
    let mut counted = 0usize;
    let mut certificate_choices = 0usize;
    let mut crl_choices = 0usize;
    let mut choice_tags = ChoiceTags::default();
    for child in children {
        let child = child.map_err(malformed)?;
        match child.tag {
            0xa0 => {
                for cert in child.children() {
                    let cert = cert.map_err(malformed)?;
                    counted += 1;
                    certificate_choices += 1;
                    match cert.tag {
                        0xa1 => choice_tags.v1_attribute_certificate = true,
                        0xa2 => choice_tags.v2_attribute_certificate = true,
                        tag::SEQUENCE => {}
                        _ => choice_tags.other = true,
                    }
                    if counted > limits.certificates {
                        return Err(Failure::LimitExceeded(LimitKind::Certificates));
                    }
                    charge(context.budget.certificate())?;
                    // Other CertificateChoices (attribute certificates...) carry no signer key.
                    if cert.tag == tag::SEQUENCE {
                        let parsed = trust.parse_certificate(cert.full).map_err(|_| {
                            Failure::MalformedCms {
                                offset: cert.offset,
                            }
                        })?;
                        certificates.push(parsed);
                    }
                }
            }
            0xa1 => {
                for crl in child.children() {
                    let crl = crl.map_err(malformed)?;
                    counted += 1;
                    crl_choices += 1;
                    if crl.tag != tag::SEQUENCE {
                        choice_tags.other = true;
                    }
                    if counted > limits.certificates {
                        return Err(Failure::LimitExceeded(LimitKind::Certificates));
                    }
                    charge(context.budget.certificate())?;
                    if crl.tag == tag::SEQUENCE {
                        let parsed = X509Crl::from_der(crl.full)
                            .map_err(|_| Failure::MalformedCms { offset: crl.offset })?;
                        crls.push(parsed);
                        crl_ders.push(crl.full);
                    }
                }
            }
            tag::SET if signer_infos.is_empty() => {
                for signer_info in child.children() {
                    let signer_info = signer_info.map_err(malformed)?.expect(tag::SEQUENCE);
                    signer_infos.push(signer_info.map_err(malformed)?);
                    if signer_infos.len() > limits.signer_infos {
                        return Err(Failure::LimitExceeded(LimitKind::SignerInfos));
                    }
                }
                // The SignerInfos SET is the last element of SignedData.
                break;
            }
            _ => {
                return Err(Failure::MalformedCms {
                    offset: child.offset,
                });
            }
        }
    }
    Ok(SignedDataParts {
        version,
        digest_algorithms,
        digest_algorithm_oids,
        certificate_choices,
        crl_choices,
        choice_tags,
        econtent_type,
        econtent,
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
fn expected_version(parsed: &SignedDataParts<'_>) -> u8 {
    let tags = &parsed.choice_tags;
    // A SignerInfo is version 3 exactly when its sid is a subjectKeyIdentifier (§5.3, checked
    // per signer); its second element is the sid.
    let any_v3_signer = parsed.signer_infos.iter().any(|signer_info| {
        signer_info
            .children()
            .nth(1)
            .is_some_and(|sid| sid.is_ok_and(|sid| sid.tag != tag::SEQUENCE))
    });
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

enum SignerId<'a> {
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    KeyId(Vec<u8>),
}

fn matches_sid(cert: &ParsedCertificate, sid: &SignerId<'_>) -> bool {
    match sid {
        // Compare the INTEGER contents octets as encoded: two's complement, so a negative
        // serial (RFC 5280 §4.1.2.2 tolerates them in the wild) matches only itself.
        SignerId::IssuerSerial { issuer, serial } => {
            cert.issuer_der.as_slice() == *issuer && cert.raw_serial.as_deref() == Some(*serial)
        }
        SignerId::KeyId(key_id) => cert
            .certificate
            .subject_key_id()
            .is_some_and(|ski| ski.as_slice() == key_id.as_slice()),
    }
}

/// Returns the algorithm OID and its parameters element (if any).
fn algorithm_identifier(tlv: Tlv<'_>) -> Result<(String, Option<Tlv<'_>>), Failure> {
    let tlv = tlv.expect(tag::SEQUENCE).map_err(malformed)?;
    let mut children = tlv.children();
    let algorithm = next(&mut children, tlv.offset)
        .and_then(der::read_oid)
        .map_err(malformed)?;
    let parameters = children.next().transpose().map_err(malformed)?;
    Ok((algorithm, parameters))
}

fn digest_from_identifier(tlv: Tlv<'_>) -> Result<DigestAlgorithm, Failure> {
    let (algorithm, _) = algorithm_identifier(tlv)?;
    DigestAlgorithm::from_oid(&algorithm).ok_or(Failure::UnsupportedAlgorithm { oid: algorithm })
}

/// RSASSA-PSS-params (RFC 4055 §3.1), defaults SHA-1 / MGF1-SHA-1 / 20.
fn pss_parameters(parameters: Option<Tlv<'_>>) -> Result<Scheme, Failure> {
    let mut hash = DigestAlgorithm::Sha1;
    let mut mgf1 = DigestAlgorithm::Sha1;
    let mut salt = 20i32;
    if let Some(parameters) = parameters {
        let parameters = parameters.expect(tag::SEQUENCE).map_err(malformed)?;
        for field in parameters.children() {
            let field = field.map_err(malformed)?;
            let mut inner = field.children();
            let value = next(&mut inner, field.offset).map_err(malformed)?;
            match field.tag {
                0xa0 => hash = digest_from_identifier(value)?,
                0xa1 => {
                    let (mgf, mgf_parameters) = algorithm_identifier(value)?;
                    if mgf != oid::MGF1 {
                        return Err(Failure::UnsupportedAlgorithm { oid: mgf });
                    }
                    let mgf_hash = mgf_parameters.ok_or(Failure::MalformedCms {
                        offset: value.offset,
                    })?;
                    mgf1 = digest_from_identifier(mgf_hash)?;
                }
                0xa2 => {
                    let value = value.expect(tag::INTEGER).map_err(malformed)?;
                    if value.content.is_empty() || value.content.len() > 2 {
                        return Err(Failure::MalformedCms {
                            offset: value.offset,
                        });
                    }
                    salt = value
                        .content
                        .iter()
                        .fold(0i32, |acc, &b| (acc << 8) | i32::from(b));
                }
                0xa3 => {
                    // trailerField must be 1 (trailerFieldBC).
                    if value.content != [1] {
                        return Err(Failure::MalformedCms {
                            offset: value.offset,
                        });
                    }
                }
                _ => {
                    return Err(Failure::MalformedCms {
                        offset: field.offset,
                    });
                }
            }
        }
    }
    Ok(Scheme::Pss { hash, mgf1, salt })
}

fn scheme(
    algorithm: &str,
    parameters: Option<Tlv<'_>>,
    digest: DigestAlgorithm,
) -> Result<Scheme, Failure> {
    use DigestAlgorithm as D;
    // Only PSS has parameters; elsewhere they are absent or NULL (RFC 3370 §3.2, RFC 5758 §3.2).
    // The field is not covered by the signature, so anything else is rejected, not ignored.
    if algorithm != oid::RSASSA_PSS
        && let Some(parameters) = parameters
        && parameters.full != [0x05, 0x00]
    {
        return Err(Failure::MalformedCms {
            offset: parameters.offset,
        });
    }
    Ok(match algorithm {
        oid::RSA_ENCRYPTION => Scheme::Pkcs1(digest),
        oid::MD5_WITH_RSA => Scheme::Pkcs1(D::Md5),
        oid::SHA1_WITH_RSA => Scheme::Pkcs1(D::Sha1),
        oid::SHA224_WITH_RSA => Scheme::Pkcs1(D::Sha224),
        oid::SHA256_WITH_RSA => Scheme::Pkcs1(D::Sha256),
        oid::SHA384_WITH_RSA => Scheme::Pkcs1(D::Sha384),
        oid::SHA512_WITH_RSA => Scheme::Pkcs1(D::Sha512),
        oid::RSASSA_PSS => pss_parameters(parameters)?,
        oid::EC_PUBLIC_KEY => Scheme::Ecdsa(digest),
        oid::ECDSA_SHA1 => Scheme::Ecdsa(D::Sha1),
        oid::ECDSA_SHA224 => Scheme::Ecdsa(D::Sha224),
        oid::ECDSA_SHA256 => Scheme::Ecdsa(D::Sha256),
        oid::ECDSA_SHA384 => Scheme::Ecdsa(D::Sha384),
        oid::ECDSA_SHA512 => Scheme::Ecdsa(D::Sha512),
        oid::ED25519 => Scheme::Ed25519,
        other => {
            return Err(Failure::UnsupportedAlgorithm {
                oid: other.to_string(),
            });
        }
    })
}

/// Policy on a public key: RSA modulus size; EC keys below 256 bits.
pub(crate) fn check_key(key: &PKey<Public>, policy: &AlgorithmPolicy) -> Result<(), Failure> {
    let id = key.id();
    if (id == Id::RSA || id == Id::RSA_PSS) && key.bits() < policy.min_rsa_bits {
        return Err(Failure::WeakAlgorithm {
            algorithm: format!("rsa-{}", key.bits()),
        });
    }
    if id == Id::EC && key.bits() < 256 {
        return Err(Failure::WeakAlgorithm {
            algorithm: format!("ec-{}", key.bits()),
        });
    }
    Ok(())
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

/// The key maxima of [`Limits`] and the cost of one verification with `key`, in RSA-2048
/// verifications (measured with `openssl speed`, see `limits`). RSA: modulus and public
/// exponent within the limits, exponent odd and at least 3; EC: only the named curves P-256,
/// P-384 and P-521 (explicit curve parameters, other curves are refused); Ed25519; any other
/// key type (DSA, whose verification cost grows with its parameters) is unsupported.
pub(crate) fn key_weight(key: &PKey<Public>, limits: &Limits) -> Result<u64, Failure> {
    let id = key.id();
    if id == Id::RSA || id == Id::RSA_PSS {
        let bits = key.bits();
        if bits > limits.rsa_modulus_bits {
            return Err(Failure::LimitExceeded(LimitKind::RsaModulusBits));
        }
        let rsa = key.rsa().map_err(|_| Failure::UnsupportedAlgorithm {
            oid: oid::RSA_ENCRYPTION.to_string(),
        })?;
        let exponent = rsa.e();
        let exponent_bits = u32::try_from(exponent.num_bits()).unwrap_or(u32::MAX);
        if exponent_bits > limits.rsa_exponent_bits {
            return Err(Failure::LimitExceeded(LimitKind::RsaExponentBits));
        }
        // e = 1 makes every signature forgeable; an even e is no RSA key (RFC 8017 §3.1).
        if exponent_bits < 2 || !exponent.is_bit_set(0) {
            return Err(Failure::WeakAlgorithm {
                algorithm: format!(
                    "rsa-exponent-{}",
                    exponent
                        .to_dec_str()
                        .map(|e| e.to_string())
                        .unwrap_or_default()
                ),
            });
        }
        let ones: u32 = exponent.to_vec().iter().map(|byte| byte.count_ones()).sum();
        // Square-and-multiply: one squaring per bit after the first, one multiplication per
        // set bit after the first (17 for 65537).
        let multiplications = u64::from(exponent_bits - 1 + ones.saturating_sub(1)).max(1);
        let bits = u64::from(bits);
        let work = bits * bits * multiplications;
        let unit = 2048 * 2048 * 17;
        return Ok(work.div_ceil(unit).max(1));
    }
    if id == Id::EC {
        // RFC 5480 §2.1.1: only namedCurve; OpenSSL maps explicit parameters equal to a
        // named curve to its name, so the encoding is checked too.
        let curve = key.ec_key().ok().and_then(|ec| {
            let group = ec.group();
            let named = group.asn1_flag() == openssl::ec::Asn1Flag::NAMED_CURVE;
            group.curve_name().filter(|_| named)
        });
        return match curve {
            Some(Nid::X9_62_PRIME256V1) => Ok(4),
            Some(Nid::SECP384R1) => Ok(40),
            Some(Nid::SECP521R1) => Ok(30),
            _ if key.bits() < 256 => Err(Failure::WeakAlgorithm {
                algorithm: format!("ec-{}", key.bits()),
            }),
            Some(other) => Err(Failure::UnsupportedAlgorithm {
                oid: other.short_name().unwrap_or("unknown-curve").to_string(),
            }),
            None => Err(Failure::UnsupportedAlgorithm {
                oid: "explicit-curve-parameters".to_string(),
            }),
        };
    }
    if id == Id::ED25519 {
        return Ok(7);
    }
    Err(Failure::UnsupportedAlgorithm {
        oid: Nid::from_raw(id.as_raw())
            .short_name()
            .unwrap_or("unknown-key-type")
            .to_string(),
    })
}

/// Policy on the validated chain: keys of every certificate, signature algorithms of every
/// certificate below the anchor (the anchor's self-signature is not relied on).
pub(crate) fn check_chain(chain: &[X509], policy: &AlgorithmPolicy) -> Result<(), Failure> {
    let below_anchor = chain.len().saturating_sub(1);
    for (depth, cert) in chain.iter().enumerate() {
        if let Ok(key) = cert.public_key() {
            check_key(&key, policy)?;
        }
        if depth < below_anchor {
            let name = cert
                .signature_algorithm()
                .object()
                .nid()
                .short_name()
                .unwrap_or("")
                .to_ascii_lowercase();
            if name.contains("md5") {
                return Err(Failure::WeakAlgorithm {
                    algorithm: "md5".to_string(),
                });
            }
            if name.contains("sha1") && !policy.danger_allow_sha1 {
                return Err(Failure::WeakAlgorithm {
                    algorithm: "sha1".to_string(),
                });
            }
        }
    }
    Ok(())
}

struct SignedAttributes {
    content_type: Option<String>,
    message_digest: Option<Vec<u8>>,
    signing_time: Option<OffsetDateTime>,
}

fn parse_signed_attributes(
    attributes: Tlv<'_>,
    signer: usize,
) -> Result<SignedAttributes, Failure> {
    let bad = |reason| Failure::BadSignature { signer, reason };
    let mut content_types = Vec::new();
    let mut digests = Vec::new();
    let mut signing_time = None;
    for attribute in attributes.children() {
        let attribute = attribute
            .and_then(|a| a.expect(tag::SEQUENCE))
            .map_err(malformed)?;
        let mut parts = attribute.children();
        let attribute_type = next(&mut parts, attribute.offset)
            .and_then(der::read_oid)
            .map_err(malformed)?;
        let values = next(&mut parts, attribute.offset)
            .and_then(|v| v.expect(tag::SET))
            .map_err(malformed)?;
        let values: Vec<Tlv<'_>> = values
            .children()
            .collect::<Result<_, _>>()
            .map_err(malformed)?;
        match attribute_type.as_str() {
            oid::CONTENT_TYPE => {
                let [value] = values.as_slice() else {
                    return Err(bad(BadSignatureReason::ContentTypeAttribute));
                };
                content_types.push(der::read_oid(*value).map_err(malformed)?);
            }
            oid::MESSAGE_DIGEST => {
                let [value] = values.as_slice() else {
                    return Err(bad(BadSignatureReason::MessageDigestAttribute));
                };
                let value = value.expect(tag::OCTET_STRING).map_err(malformed)?;
                digests.push(value.content.to_vec());
            }
            oid::SIGNING_TIME => {
                let [value] = values.as_slice() else {
                    return Err(bad(BadSignatureReason::SigningTimeAttribute));
                };
                if signing_time.is_some() {
                    return Err(bad(BadSignatureReason::SigningTimeAttribute));
                }
                signing_time =
                    Some(parse_time(*value).ok_or(bad(BadSignatureReason::SigningTimeAttribute))?);
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
fn check_unsigned_attributes(attributes: Tlv<'_>, signer: usize) -> Result<(), Failure> {
    for attribute in attributes.children() {
        let attribute = attribute
            .and_then(|a| a.expect(tag::SEQUENCE))
            .map_err(malformed)?;
        let mut parts = attribute.children();
        let attribute_type = next(&mut parts, attribute.offset)
            .and_then(der::read_oid)
            .map_err(malformed)?;
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

/// UTCTime (RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY) or GeneralizedTime, `Z` form only.
fn parse_time(value: Tlv<'_>) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(value.content).ok()?;
    let text = text.strip_suffix('Z')?;
    let (year, rest) = match value.tag {
        tag::UTC_TIME => {
            let yy: i32 = text.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        tag::GENERALIZED_TIME => (text.get(0..4)?.parse().ok()?, text.get(4..)?),
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

fn check_signer(
    index: usize,
    signer_info: Tlv<'_>,
    parsed: &SignedDataParts<'_>,
    content: &[u8],
    context: &Context<'_>,
    report: &mut SignerReport,
) -> Result<VerifiedSigner, Failure> {
    let bad = |reason| Failure::BadSignature {
        signer: index,
        reason,
    };
    let mut fields = signer_info.children();
    let mut field = || next(&mut fields, signer_info.offset).map_err(malformed);
    let version = field()?.expect(tag::INTEGER).map_err(malformed)?;
    let sid_tlv = field()?;
    // RFC 5652 §5.3: version 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier.
    let version_ok = match sid_tlv.tag {
        tag::SEQUENCE => version.content == [1],
        _ => version.content == [3],
    };
    if !version_ok {
        return Err(Failure::MalformedCms {
            offset: version.offset,
        });
    }
    let sid = match sid_tlv.tag {
        tag::SEQUENCE => {
            let mut parts = sid_tlv.children();
            let issuer = next(&mut parts, sid_tlv.offset)
                .and_then(|t| t.expect(tag::SEQUENCE))
                .map_err(malformed)?;
            let serial = next(&mut parts, sid_tlv.offset)
                .and_then(|t| t.expect(tag::INTEGER))
                .map_err(malformed)?;
            SignerId::IssuerSerial {
                issuer: issuer.full,
                serial: serial.content,
            }
        }
        0x80 => SignerId::KeyId(sid_tlv.content.to_vec()),
        0xa0 => {
            let octets = sid_tlv.children().next().transpose().map_err(malformed)?;
            SignerId::KeyId(octets.map(|o| o.content.to_vec()).unwrap_or_default())
        }
        _ => {
            return Err(Failure::MalformedCms {
                offset: sid_tlv.offset,
            });
        }
    };
    let digest_field = field()?;
    let (_, digest_parameters) = algorithm_identifier(digest_field)?;
    if digest_parameters.is_some_and(|p| p.full != [0x05, 0x00]) {
        return Err(Failure::MalformedCms {
            offset: digest_field.offset,
        });
    }
    let digest = digest_from_identifier(digest_field)?;
    if !parsed.digest_algorithms.contains(&digest) {
        return Err(Failure::MalformedCms {
            offset: digest_field.offset,
        });
    }
    let mut next_field = field()?;
    let signed_attributes = if next_field.tag == 0xa0 {
        let attributes = next_field;
        next_field = field()?;
        Some(attributes)
    } else {
        None
    };
    let (signature_algorithm, signature_parameters) = algorithm_identifier(next_field)?;
    let signature = field()?
        .octets(context.limits.cms_bytes)
        .map_err(malformed)?;
    // Only unsignedAttrs [1] may follow (RFC 5652 §5.3).
    match (fields.next(), fields.next()) {
        (None, None) => {}
        (Some(Ok(unsigned)), None) if unsigned.tag == 0xa1 => {
            check_unsigned_attributes(unsigned, index)?;
        }
        (Some(Err(error)), _) | (_, Some(Err(error))) => return Err(malformed(error)),
        (Some(Ok(extra)), _) | (_, Some(Ok(extra))) => {
            return Err(Failure::MalformedCms {
                offset: extra.offset,
            });
        }
    }

    // RFC 8551 §2.6: several certificates may match the sid (a shared subjectKeyIdentifier,
    // one issuer name and serial from two issuers); each is tried, and the identity is the one
    // of a certificate whose key verifies. The tries are bounded before any of them runs.
    let candidates: Vec<&Arc<ParsedCertificate>> = parsed
        .certificates
        .iter()
        .filter(|cert| matches_sid(cert, &sid))
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
    let scheme = scheme(&signature_algorithm, signature_parameters, digest)?;
    match scheme {
        Scheme::Pkcs1(hash) | Scheme::Ecdsa(hash) => hash.check(context.policy)?,
        Scheme::Pss { hash, mgf1, .. } => {
            hash.check(context.policy)?;
            mgf1.check(context.policy)?;
        }
        Scheme::Ed25519 => {}
    }

    let mut signing_time = None;
    let signed_bytes: Vec<u8> = match signed_attributes {
        Some(attributes) => {
            if attributes.indefinite {
                return Err(bad(BadSignatureReason::AttributesNotDer));
            }
            let found = parse_signed_attributes(attributes, index)?;
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
            // RFC 5652 §5.4: the signature covers the DER of the SET OF attributes, i.e. the
            // received bytes with the [0] IMPLICIT tag replaced by the SET tag.
            let mut covered = attributes.full.to_vec();
            if let Some(first) = covered.first_mut() {
                *first = tag::SET;
            }
            covered
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
        match verify_signature(signer, &key, scheme, &signed_bytes, &signature) {
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
                    &parsed.crl_ders,
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
                    certificate: certificate.clone(),
                    chain: chain.chain,
                    revocation_warnings: chain.revocation_warnings,
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

/// `Err(())` when the key type does not fit the scheme.
fn verify_signature(
    signer: &ParsedCertificate,
    key: &PKey<Public>,
    scheme: Scheme,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, ()> {
    let id = key.id();
    let algorithm = match scheme {
        Scheme::Pkcs1(algorithm) if id == Id::RSA => algorithm,
        Scheme::Pss {
            hash: algorithm, ..
        } if id == Id::RSA || id == Id::RSA_PSS => algorithm,
        Scheme::Ecdsa(algorithm) if id == Id::EC => algorithm,
        Scheme::Ed25519 if id == Id::ED25519 => {
            let result = Verifier::new_without_digest(key)
                .and_then(|mut verifier| verifier.verify_oneshot(signature, data));
            return Ok(result.unwrap_or(false));
        }
        _ => return Err(()),
    };
    // RFC 5652 §5.6: the signature is over the digest of `data`; verifying the digest with
    // EVP_PKEY_verify is what EVP_DigestVerify does, minus the per-call algorithm fetch and
    // context set-up, which a context reused per signer key and scheme avoids.
    let Ok(digest) = hash(algorithm.message_digest(), data) else {
        return Ok(false);
    };
    let Some(mut context) = signer
        .take_verifier(scheme)
        .or_else(|| verify_context(key, scheme).ok())
    else {
        return Ok(false);
    };
    match context.verify(&digest, signature) {
        Ok(verified) => {
            signer.return_verifier(scheme, context);
            Ok(verified)
        }
        // An OpenSSL error while verifying (malformed signature encoding) is a failed
        // signature; the context is dropped rather than reused after an error.
        Err(_) => Ok(false),
    }
}

/// A verify context for `key` set up for `scheme` (never Ed25519, which has no prehash).
fn verify_context(key: &PKey<Public>, scheme: Scheme) -> Result<PkeyCtx<Public>, ErrorStack> {
    let mut context = PkeyCtx::new(key)?;
    context.verify_init()?;
    match scheme {
        Scheme::Pkcs1(hash) => {
            context.set_rsa_padding(Padding::PKCS1)?;
            context.set_signature_md(hash.md())?;
        }
        Scheme::Pss { hash, mgf1, salt } => {
            context.set_rsa_padding(Padding::PKCS1_PSS)?;
            context.set_signature_md(hash.md())?;
            context.set_rsa_mgf1_md(mgf1.md())?;
            context.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt))?;
        }
        Scheme::Ecdsa(hash) => context.set_signature_md(hash.md())?,
        Scheme::Ed25519 => {}
    }
    Ok(context)
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
        let tlv = der::read_all(&utc).unwrap();
        let parsed = parse_time(tlv).unwrap();
        assert_eq!(parsed.year(), 2026);
        assert_eq!(parsed.hour(), 12);
        assert_eq!(parsed.minute(), 30);
    }

    /// An RSA public key with a random odd modulus of exactly `bits` bits and exponent `e`
    /// (no private key: the maxima are checked on public keys alone).
    fn rsa_public(bits: i32, exponent: &openssl::bn::BigNumRef) -> PKey<Public> {
        use openssl::bn::{BigNum, MsbOption};
        let mut modulus = BigNum::new().unwrap();
        modulus.rand(bits, MsbOption::ONE, true).unwrap();
        let exponent = exponent.to_owned().unwrap();
        let rsa = openssl::rsa::Rsa::from_public_components(modulus, exponent).unwrap();
        PKey::from_rsa(rsa).unwrap()
    }

    fn number(text: &str) -> openssl::bn::BigNum {
        openssl::bn::BigNum::from_dec_str(text).unwrap()
    }

    /// Issue #11 item 7: the maxima are exact. RSA modulus 8192 bits accepted, 8193 refused;
    /// public exponent 2^32 - 1 accepted, 2^32 + 1 (the next odd one) refused; e = 1 and an
    /// even e are no RSA keys.
    #[test]
    fn rsa_key_maxima_are_exact() {
        let limits = Limits::default();
        let f4 = number("65537");
        assert_eq!(key_weight(&rsa_public(2048, &f4), &limits), Ok(1));
        assert_eq!(key_weight(&rsa_public(8192, &f4), &limits), Ok(16));
        assert_eq!(
            key_weight(&rsa_public(8193, &f4), &limits),
            Err(Failure::LimitExceeded(LimitKind::RsaModulusBits))
        );
        assert_eq!(
            key_weight(&rsa_public(2048, &number("4294967295")), &limits),
            Ok(4)
        );
        assert_eq!(
            key_weight(&rsa_public(8192, &number("4294967295")), &limits),
            Ok(59)
        );
        assert_eq!(
            key_weight(&rsa_public(2048, &number("4294967297")), &limits),
            Err(Failure::LimitExceeded(LimitKind::RsaExponentBits))
        );
        assert_eq!(key_weight(&rsa_public(2048, &number("3")), &limits), Ok(1));
        for weak in ["1", "65536"] {
            assert!(matches!(
                key_weight(&rsa_public(2048, &number(weak)), &limits),
                Err(Failure::WeakAlgorithm { .. })
            ));
        }
    }

    /// EC keys only on the named curves P-256, P-384, P-521; explicit parameters (even of
    /// P-256) and other curves are refused before any operation.
    #[test]
    fn ec_keys_only_on_named_curves() {
        use openssl::ec::{Asn1Flag, EcGroup, EcKey};
        let limits = Limits::default();
        let weight = |nid: Nid, explicit: bool| {
            let mut group = EcGroup::from_curve_name(nid).unwrap();
            if explicit {
                group.set_asn1_flag(Asn1Flag::EXPLICIT_CURVE);
            }
            let private = EcKey::generate(&group).unwrap();
            let public = EcKey::from_public_key(&group, private.public_key()).unwrap();
            let der = PKey::from_ec_key(public)
                .unwrap()
                .public_key_to_der()
                .unwrap();
            key_weight(&PKey::public_key_from_der(&der).unwrap(), &limits)
        };
        assert_eq!(weight(Nid::X9_62_PRIME256V1, false), Ok(4));
        assert_eq!(weight(Nid::SECP384R1, false), Ok(40));
        assert_eq!(weight(Nid::SECP521R1, false), Ok(30));
        assert!(matches!(
            weight(Nid::X9_62_PRIME256V1, true),
            Err(Failure::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            weight(Nid::SECP256K1, false),
            Err(Failure::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            weight(Nid::X9_62_PRIME192V1, false),
            Err(Failure::WeakAlgorithm { .. })
        ));
    }

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
        ] {
            let checked = check_signed_data(input, Some(b"x"), &context);
            assert!(matches!(checked.outcome, Err(Failure::MalformedCms { .. })));
        }
    }
}
