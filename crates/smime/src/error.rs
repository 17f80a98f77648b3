//! Typed errors and per-layer failures.
//!
//! Two levels, as in rustls: [`SmimeError`] is returned only when the message as a whole cannot
//! be inspected (malformed MIME structure, a limit exceeded); a [`Failure`] is the reason one
//! security layer did not verify or decrypt and is carried inside the
//! [`Inspection`](crate::Inspection). Every variant has a stable reason code (`code()`).

use crate::limits::LimitKind;

/// Run a pure-Rust parser dependency (`rasn`, `x509-parser`) on untrusted bytes so that a
/// panic inside it (a bug we cannot see: an index or an arithmetic overflow in its decoder) is
/// a failed parse, never a crash of the process (issue #11 item 1, "no panic reachable from
/// input", for the code we call but do not own). `None` when it panicked; callers turn that
/// into the same typed failure as a parse error (fail closed). The workspace keeps the default
/// `panic = "unwind"`, which this relies on; the panic message still reaches stderr.
pub(crate) fn contain_panic<T>(parse: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    std::panic::catch_unwind(parse).ok()
}

/// A whole-message failure: the MIME structure could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmimeError {
    /// The MIME structure is malformed (RFC 2045 / RFC 2046). `offset` is the byte offset into
    /// the buffer being walked (the received message, or the decrypted / opaque-signed content
    /// named by `layer` when that is `Some`).
    #[error("malformed MIME at byte {offset}: {kind}")]
    MalformedMime {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        kind: MimeErrorKind,
        /// `None` for the received message, else the index of the layer whose content is walked.
        layer: Option<usize>,
    },
    /// A named limit of [`Limits`](crate::Limits) was exceeded.
    #[error("limit exceeded: {0}")]
    LimitExceeded(LimitKind),
}

impl SmimeError {
    /// Stable reason code: `malformed-mime` or `limit-exceeded`.
    pub fn code(&self) -> &'static str {
        match self {
            SmimeError::MalformedMime { .. } => "malformed-mime",
            SmimeError::LimitExceeded(_) => "limit-exceeded",
        }
    }
}

/// What is wrong with a malformed MIME entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MimeErrorKind {
    /// No header section could be parsed.
    #[error("no header section (RFC 5322 §2.1: header fields, an empty line, the body)")]
    NoHeaders,
    /// A header field appears more than once where RFC 2045 allows one (Content-Type,
    /// Content-Transfer-Encoding): which one counts is ambiguous, so the entity is rejected.
    #[error(
        "duplicate {0} header field (RFC 2045 §5, §6: one per entity; readers differ on which counts)"
    )]
    DuplicateHeader(&'static str),
    /// The Content-Type field does not parse as type/subtype.
    #[error("Content-Type does not parse as type/subtype (RFC 2045 §5.1)")]
    BadContentType,
    /// A multipart entity has no usable boundary parameter (RFC 2046 §5.1.1).
    #[error("Content-Type multipart without a valid boundary parameter (RFC 2046 §5.1.1)")]
    MissingBoundary,
    /// The first boundary delimiter of a multipart body was not found.
    #[error(
        "multipart body without a delimiter line for its Content-Type boundary (RFC 2046 §5.1.1)"
    )]
    NoDelimiter,
    /// The close delimiter (`--boundary--`) of a multipart body was not found.
    #[error(
        "multipart body without the close delimiter --boundary-- of its Content-Type boundary (RFC 2046 §5.1.1)"
    )]
    NoCloseDelimiter,
    /// multipart/signed must have exactly two body parts (RFC 1847 §2.1).
    #[error("Content-Type multipart/signed without exactly two body parts (RFC 1847 §2.1)")]
    SignedPartCount,
    /// A base64 body contains a character outside the alphabet, or bad padding.
    #[error("Content-Transfer-Encoding base64: invalid base64 (RFC 2045 §6.8)")]
    BadBase64,
    /// An unknown Content-Transfer-Encoding (RFC 2045 §6) on a part we must decode.
    #[error(
        "unknown Content-Transfer-Encoding (RFC 2045 §6.1: 7bit, 8bit, binary, quoted-printable, base64)"
    )]
    UnknownTransferEncoding,
    /// A message exceeds the 4 GiB offset range.
    #[error("message too large for offsets (a 4 GiB bound of this reader, not an RFC rule)")]
    TooLarge,
    /// A bare LF or bare CR in a message that uses CRLF, or a CR in a message stored with
    /// bare LF line endings: parsers split such lines differently (a header section ended by
    /// CRLF then LF is a body to one reader and headers to another).
    #[error(
        "mixed line endings, a bare LF or bare CR among CRLF (RFC 5322 §2.3, RFC 2045 §2.10: lines end in CRLF)"
    )]
    MixedLineEndings,
    /// `--boundary` occurs in a multipart body other than as a whole delimiter line: mail-parser
    /// splits on it anywhere, mid-line included (RFC 2046 §5.1.1 forbids it in the body).
    #[error("the Content-Type boundary occurs outside a delimiter line (RFC 2046 §5.1.1)")]
    StrayBoundary,
    /// A header section line that is neither a header field nor a continuation line
    /// (white space only, no colon), or a header section not ended by an empty line.
    #[error(
        "malformed header section: a line that is neither a header field nor a continuation, or no empty line ends it (RFC 5322 §2.2, §3.5)"
    )]
    BadHeaderSection,
    /// A Content-Type or Content-Disposition parameter given twice (RFC 6838 §4.3: an
    /// error; readers take the first, the last, or refuse).
    #[error(
        "Content-Type or Content-Disposition parameter {0} given twice (RFC 2045 §5.1, RFC 6838 §4.3)"
    )]
    DuplicateParameter(&'static str),
    /// A Content-Type parameter that readers split or decode differently: RFC 2231 sections
    /// or charsets (`name*`, `name*0`: mail-parser appends `name*1` to a plain `name`), a
    /// backslash or comment outside quotes (mail-parser skips them inside an unquoted value),
    /// or an RFC 2047 encoded word in boundary, charset, method, component, protocol or
    /// smime-type (mail-parser decodes it, RFC 2045 readers do not).
    #[error(
        "Content-Type parameter that readers split or decode differently (RFC 2231 sections or charsets, RFC 2047 encoded words, RFC 2045 §5.1 quoting)"
    )]
    ExtendedParameter,
    /// Quoted-printable that is not canonical (RFC 2045 §6.7): `=` not followed by two hex
    /// digits or by the line break of a soft line break, or white space at the end of a line
    /// (transport padding that some decoders delete and others keep).
    #[error("Content-Transfer-Encoding quoted-printable: not canonical (RFC 2045 §6.7)")]
    BadQuotedPrintable,
    /// A multipart or message entity with a transfer encoding other than 7bit, 8bit or binary
    /// (RFC 2045 §6.4, RFC 2046 §5.2.1): readers either decode it or ignore the header.
    #[error(
        "Content-Transfer-Encoding other than 7bit, 8bit or binary on a multipart or message entity (RFC 2045 §6.4, RFC 2046 §5.2.1)"
    )]
    EncodedComposite,
    /// This crate's transfer decoding and mail-parser's disagree on a body.
    #[error(
        "Content-Transfer-Encoding: this reader's decoding and mail-parser's differ (RFC 2045 §6)"
    )]
    DecoderDisagreement,
}

/// Why one security layer did not verify, or was not decrypted. Stable codes via [`Failure::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// A cryptographic check failed: the signature value, the messageDigest attribute, the
    /// contentType attribute, or the structure of the signed attributes (RFC 5652 §5.3, §11).
    #[error("bad signature (signer {signer}): {reason}")]
    BadSignature {
        /// Index of the SignerInfo in the SignedData.
        signer: usize,
        /// Which check failed.
        reason: BadSignatureReason,
    },
    /// The signer certificate does not chain to a trust anchor.
    #[error("untrusted certificate (OpenSSL verify error {verify_error} at depth {depth})")]
    UntrustedCertificate {
        /// Raw OpenSSL `X509_V_ERR_*` code.
        verify_error: i32,
        /// Depth in the chain (0 = signer).
        depth: u32,
    },
    /// A certificate of the chain is expired or not yet valid at the evaluation time.
    #[error(
        "certificate expired or not yet valid at depth {depth} (not yet valid: {not_yet_valid})"
    )]
    CertificateExpired {
        /// Depth in the chain (0 = signer).
        depth: u32,
        /// `true` when the certificate is not yet valid rather than expired.
        not_yet_valid: bool,
    },
    /// A certificate of the chain is listed on a CRL issued by its issuer.
    #[error("certificate at depth {depth} is revoked")]
    CertificateRevoked {
        /// Depth in the chain (0 = signer).
        depth: u32,
    },
    /// Revocation could not be decided: the issuer's CRL is expired, not yet valid or its
    /// signature does not verify.
    #[error("revocation status unknown at depth {depth}")]
    RevocationUnknown {
        /// Depth in the chain (0 = signer).
        depth: u32,
    },
    /// No certificate for the issuer of the certificate at `depth` was found among the trust
    /// anchors, the configured intermediates and the certificates of the message (OpenSSL
    /// verify errors 2 and 20). Code `untrusted-certificate`.
    #[error(
        "untrusted certificate: no certificate of its issuer {issuer:?} (depth {depth}) was found among the anchors, intermediates and message certificates"
    )]
    IssuerNotFound {
        /// Depth of the certificate whose issuer is missing (0 = signer).
        depth: u32,
        /// The missing issuer's name (RFC 4514 style).
        issuer: String,
    },
    /// Under revocation mode `require`, a certificate of the chain had no usable revocation
    /// answer (no CRL from its issuer, no OCSP response). Code `untrusted-certificate`.
    #[error(
        "untrusted certificate: no revocation answer for {subject:?} (depth {depth}): {missing}"
    )]
    RevocationMissing {
        /// Depth in the chain (0 = signer).
        depth: u32,
        /// The certificate's subject (RFC 4514 style).
        subject: String,
        /// What was missing and what was tried.
        missing: String,
    },
    /// The CRL covering the certificate at `depth` is past its nextUpdate (or not yet valid),
    /// and no other answer was had. Code `revocation-unknown`.
    #[error(
        "revocation status unknown at depth {depth}: the CRL of {crl_issuer:?} is stale ({detail})"
    )]
    StaleCrl {
        /// Depth in the chain (0 = signer).
        depth: u32,
        /// The CRL's issuer (RFC 4514 style).
        crl_issuer: String,
        /// Its nextUpdate / thisUpdate against the evaluation time.
        detail: String,
    },
    /// Under revocation mode `require`, a certificate's status could not be had because the
    /// revocation source could not answer (responder down, nothing cached): the message cannot
    /// be evaluated. Never a verdict: callers tempfail (code `revocation-unavailable`).
    #[error("revocation status of {subject:?} (depth {depth}) unavailable: {detail}")]
    RevocationUnavailable {
        /// Depth in the chain (0 = signer).
        depth: u32,
        /// The certificate's subject (RFC 4514 style).
        subject: String,
        /// Why no answer could be had.
        detail: String,
    },
    /// The signer certificate names an email address (rfc822Name subjectAltName or subject
    /// emailAddress) that is not a plain RFC 5321 addr-spec, or names that cannot be read
    /// (see [`EmailAddress`](crate::EmailAddress)). Such an address is never rewritten into
    /// an identity (OpenSSL checked name constraints on its exact bytes), and the whole
    /// signer fails rather than losing only that address: the CA certified something this
    /// crate cannot read the way OpenSSL did. Code `untrusted-certificate`.
    #[error("signer {signer}: certificate address {address:?} is not a plain addr-spec")]
    CertificateAddress {
        /// Index of the SignerInfo.
        signer: usize,
        /// The address as found (escaped when shown), or a placeholder in angle brackets.
        address: String,
    },
    /// The certificate may not be used for S/MIME signing (extendedKeyUsage without
    /// emailProtection, keyUsage without digitalSignature / nonRepudiation; RFC 8550 §4.4).
    #[error("certificate not valid for email protection at depth {depth}")]
    CertificatePurpose {
        /// Depth in the chain (0 = signer).
        depth: u32,
    },
    /// An algorithm or key rejected by the [`AlgorithmPolicy`](crate::AlgorithmPolicy).
    #[error("weak algorithm: {algorithm}")]
    WeakAlgorithm {
        /// The rejected algorithm, e.g. `sha1`, `md5`, `rsa-1024`.
        algorithm: String,
    },
    /// An algorithm this crate does not implement (OID in dotted form).
    #[error("unsupported algorithm {oid}")]
    UnsupportedAlgorithm {
        /// Dotted OID.
        oid: String,
    },
    /// A SignedData without SignerInfos (certs-only): it proves nothing.
    #[error("SignedData without signers")]
    NoSigners,
    /// A detached signature (multipart/signed) whose SignedData also carries eContent
    /// (CVE-2018-18509: which content was signed is ambiguous).
    #[error("detached signature also carries encapsulated content")]
    ContentConfusion,
    /// An opaque SignedData without eContent and no detached content.
    #[error("SignedData without content")]
    MissingContent,
    /// No certificate in the SignedData matches the SignerInfo's sid.
    #[error("signer certificate {signer} not found")]
    SignerCertificateMissing {
        /// Index of the SignerInfo.
        signer: usize,
    },
    /// The CMS structure does not parse (BER/DER, RFC 5652).
    #[error("malformed CMS at byte {offset}")]
    MalformedCms {
        /// Byte offset into the DER.
        offset: usize,
    },
    /// The content of this layer (decrypted, or the eContent of an opaque signature) is not a
    /// well-formed MIME entity (RFC 8551 §3.1, RFC 2045). Only this layer fails: its content
    /// is not reported, the rest of the message is still walked. Code `malformed-mime`.
    #[error("malformed MIME content at byte {offset}: {kind}")]
    MalformedContent {
        /// Byte offset into the layer's content.
        offset: usize,
        /// What is wrong.
        kind: MimeErrorKind,
    },
    /// The CMS content type is not the one the layer requires: an
    /// application/pkcs7-signature part that is not SignedData, or a SignedData whose
    /// eContentType is not id-data (RFC 8551 §3.2: only id-data content is a MIME entity;
    /// e.g. id-ct-TSTInfo), whose content is then never walked.
    #[error("unexpected CMS content type {oid}")]
    UnexpectedContentType {
        /// Dotted OID.
        oid: String,
    },
    /// A limit on CMS input was exceeded.
    #[error("limit exceeded: {0}")]
    LimitExceeded(LimitKind),
    /// multipart/signed with a protocol other than application/(x-)pkcs7-signature, or
    /// multipart/encrypted (RFC 1847 §2.2, used by PGP/MIME), which this crate does not process.
    #[error("unsupported protocol {protocol}")]
    UnsupportedProtocol {
        /// The protocol parameter (lowercased), empty when absent.
        protocol: String,
    },
    /// Decryption with a matching key failed (bad padding, wrong key, GCM tag mismatch).
    #[error("decryption failed")]
    DecryptionFailed,
    /// An encrypted part that is not the root of the message is not decrypted (EFAIL direct
    /// exfiltration); see `danger_decrypt_non_root`.
    #[error("encrypted part is not the message root: not decrypted")]
    NotDecryptedNonRoot,
    /// None of the given identities is a recipient.
    #[error("no decryption key for any recipient")]
    NoDecryptionKey,
    /// A PGP/MIME layer (RFC 3156) failed in the OpenPGP layer; the code is the OpenPGP
    /// failure's, from the same vocabulary (`bad-signature`, `untrusted-certificate`,
    /// `certificate-expired`, `certificate-revoked`, `weak-algorithm`, `decryption-failed`, ...).
    #[error("OpenPGP: {0}")]
    OpenPgp(imipsec_openpgp::Failure),
}

impl Failure {
    /// Stable reason code (kebab-case), documented in the crate README.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::BadSignature { .. } => "bad-signature",
            Failure::UntrustedCertificate { .. } => "untrusted-certificate",
            Failure::CertificateAddress { .. } => "untrusted-certificate",
            Failure::IssuerNotFound { .. } => "untrusted-certificate",
            Failure::RevocationMissing { .. } => "untrusted-certificate",
            Failure::StaleCrl { .. } => "revocation-unknown",
            Failure::RevocationUnavailable { .. } => "revocation-unavailable",
            Failure::CertificateExpired { .. } => "certificate-expired",
            Failure::CertificateRevoked { .. } => "certificate-revoked",
            Failure::RevocationUnknown { .. } => "revocation-unknown",
            Failure::CertificatePurpose { .. } => "certificate-purpose",
            Failure::WeakAlgorithm { .. } => "weak-algorithm",
            Failure::UnsupportedAlgorithm { .. } => "unsupported-algorithm",
            Failure::NoSigners => "no-signers",
            Failure::ContentConfusion => "econtent-confusion",
            Failure::MissingContent => "missing-content",
            Failure::SignerCertificateMissing { .. } => "signer-certificate-missing",
            Failure::MalformedCms { .. } => "malformed-cms",
            Failure::MalformedContent { .. } => "malformed-mime",
            Failure::UnexpectedContentType { .. } => "unexpected-content-type",
            Failure::LimitExceeded(_) => "limit-exceeded",
            Failure::UnsupportedProtocol { .. } => "unsupported-protocol",
            Failure::DecryptionFailed => "decryption-failed",
            Failure::NotDecryptedNonRoot => "not-decrypted-non-root",
            Failure::NoDecryptionKey => "no-decryption-key",
            Failure::OpenPgp(failure) => failure.code(),
        }
    }
}

/// Which cryptographic check of a SignerInfo failed (RFC 5652 §5.4, §5.6, §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadSignatureReason {
    /// The signature value does not verify with the signer's public key.
    #[error("signature value does not verify")]
    SignatureMismatch,
    /// The messageDigest attribute differs from the digest of the content.
    #[error("messageDigest differs from the content digest")]
    DigestMismatch,
    /// Signed attributes without a contentType attribute, or with more than one (or one among
    /// the unsigned attributes).
    #[error("contentType attribute missing or repeated")]
    ContentTypeAttribute,
    /// The contentType attribute differs from eContentType.
    #[error("contentType attribute differs from eContentType")]
    ContentTypeMismatch,
    /// Signed attributes without a messageDigest attribute, or with more than one (or one among
    /// the unsigned attributes).
    #[error("messageDigest attribute missing or repeated")]
    MessageDigestAttribute,
    /// A signingTime attribute that is unsigned, repeated, multi-valued or not a valid
    /// UTCTime / GeneralizedTime (RFC 5652 §11.3).
    #[error("signingTime attribute unsigned, repeated or malformed")]
    SigningTimeAttribute,
    /// The signer's key type does not fit the signature algorithm.
    #[error("key type does not fit the signature algorithm")]
    KeyTypeMismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_parser_is_a_failed_parse() {
        assert_eq!(contain_panic(|| 7), Some(7));
        let bytes: &[u8] = &[1, 2];
        assert_eq!(contain_panic(|| bytes[usize::from(bytes[1]) + 5]), None);
    }

    /// Every MIME defect, as reported (issue #12: diagnostics people can act on), names the
    /// header field (or the line ends) it is about and the RFC rule it breaks.
    #[test]
    fn every_mime_error_names_the_header_and_the_rfc_rule() {
        use super::MimeErrorKind as K;
        // The match makes a new variant a compile error here until it is listed.
        fn listed(kind: K) -> K {
            match kind {
                K::NoHeaders
                | K::DuplicateHeader(_)
                | K::BadContentType
                | K::MissingBoundary
                | K::NoDelimiter
                | K::NoCloseDelimiter
                | K::SignedPartCount
                | K::BadBase64
                | K::UnknownTransferEncoding
                | K::TooLarge
                | K::MixedLineEndings
                | K::StrayBoundary
                | K::BadHeaderSection
                | K::DuplicateParameter(_)
                | K::ExtendedParameter
                | K::BadQuotedPrintable
                | K::EncodedComposite
                | K::DecoderDisagreement => kind,
            }
        }
        let all = [
            K::NoHeaders,
            K::DuplicateHeader("Content-Type"),
            K::BadContentType,
            K::MissingBoundary,
            K::NoDelimiter,
            K::NoCloseDelimiter,
            K::SignedPartCount,
            K::BadBase64,
            K::UnknownTransferEncoding,
            K::MixedLineEndings,
            K::StrayBoundary,
            K::BadHeaderSection,
            K::DuplicateParameter("boundary"),
            K::ExtendedParameter,
            K::BadQuotedPrintable,
            K::EncodedComposite,
            K::DecoderDisagreement,
        ];
        for kind in all.map(listed) {
            let text = kind.to_string();
            assert!(text.contains("RFC"), "{text}");
            assert!(
                ["Content-", "header", "line"]
                    .iter()
                    .any(|name| text.contains(name)),
                "{text}"
            );
        }
        // The bound of this reader is not an RFC rule and says so.
        assert!(K::TooLarge.to_string().contains("not an RFC rule"));
    }
}
