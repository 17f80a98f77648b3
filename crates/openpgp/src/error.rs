//! Typed failures of the OpenPGP layer. Every variant has a stable reason code
//! ([`Failure::code`]) from the same vocabulary as the S/MIME layer, so that an OpenPGP layer
//! fails with the codes an operator already knows.

use crate::limits::LimitKind;

/// Run rPGP on untrusted bytes so that a panic inside it (a bug we cannot see) is a failed
/// parse, never a crash (the workspace keeps `panic = "unwind"`). `None` when it panicked.
pub(crate) fn contain_panic<T>(work: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    std::panic::catch_unwind(work).ok()
}

/// Why an OpenPGP signature or encryption layer was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// No certificate the operator vouches for holds the key that made a signature (the
    /// OpenPGP analogue of a signer without a chain to a trust anchor). Code
    /// `untrusted-certificate`.
    #[error("untrusted certificate: no operator OpenPGP certificate holds signing key {key_id}")]
    UnknownSigner {
        /// The issuer key ID or fingerprint the signature names (hex), or `<none>`.
        key_id: String,
    },
    /// The certificate has no user ID with a valid self-signature at the evaluation time: it
    /// names nobody the correlation could use. Code `untrusted-certificate`.
    #[error("untrusted certificate {fingerprint}: no user ID with a valid self-signature")]
    NoValidUserId {
        /// The certificate's fingerprint (hex).
        fingerprint: String,
    },
    /// A user ID email with a valid self-signature is not a plain addr-spec (rejected whole,
    /// as the S/MIME layer rejects such a certificate address). Code `untrusted-certificate`.
    #[error(
        "untrusted certificate {fingerprint}: user ID address {address:?} is not a plain addr-spec"
    )]
    CertificateAddress {
        /// The certificate's fingerprint (hex).
        fingerprint: String,
        /// The address as found (escaped when shown).
        address: String,
    },
    /// The signature value (or the hash prefix) does not verify with the key. Code
    /// `bad-signature`.
    #[error("bad OpenPGP signature by key {key_id}")]
    BadSignature {
        /// The signing key's ID (hex).
        key_id: String,
    },
    /// The `micalg` parameter of multipart/signed differs from the hash algorithm of the
    /// signature (RFC 3156 §5: "MUST" name it). Code `bad-signature`.
    #[error(
        "micalg {declared:?} does not name the signature's hash algorithm {actual:?} (RFC 3156 §5)"
    )]
    MicalgMismatch {
        /// The parameter as given (lowercased), empty when absent.
        declared: String,
        /// `pgp-` and the hash algorithm of the signature.
        actual: String,
    },
    /// The signature is not a signature over a document (binary 0x00 or text 0x01), or it
    /// was made before the key existed, or it lies in the future of the evaluation time, or
    /// it expired. Code `bad-signature`.
    #[error("OpenPGP signature not usable: {reason}")]
    UnusableSignature {
        /// What is wrong.
        reason: &'static str,
    },
    /// The certificate (or the signing subkey) is expired or not yet valid at the evaluation
    /// time. Code `certificate-expired`.
    #[error("OpenPGP key {fingerprint} expired or not yet valid (not yet valid: {not_yet_valid})")]
    CertificateExpired {
        /// The expired key's fingerprint (hex).
        fingerprint: String,
        /// `true` when the key is not yet valid rather than expired.
        not_yet_valid: bool,
    },
    /// A revocation signature issued by the certificate's primary key covers the certificate or
    /// the signing subkey. Code `certificate-revoked`.
    #[error("OpenPGP key {fingerprint} is revoked")]
    CertificateRevoked {
        /// The revoked key's fingerprint (hex).
        fingerprint: String,
    },
    /// The key that signed is not bound as a signing key (no valid subkey binding signature with
    /// the sign flag and a valid primary key binding back-signature, or a primary key without
    /// the sign flag). Code `certificate-purpose`.
    #[error("OpenPGP key {fingerprint} is not a valid signing key of its certificate")]
    NotSigningKey {
        /// The key's fingerprint (hex).
        fingerprint: String,
    },
    /// An algorithm or key size the policy rejects (MD5, SHA-1, RIPEMD-160, RSA below the
    /// minimum, DSA, ElGamal). Code `weak-algorithm`.
    #[error("weak algorithm: {algorithm}")]
    WeakAlgorithm {
        /// The rejected algorithm, e.g. `sha1`, `rsa-1024`.
        algorithm: String,
    },
    /// The OpenPGP data (armor, packets) does not parse, or is not the kind of message the
    /// layer needs. Code `malformed-openpgp` (a failed signature, like `malformed-cms`).
    #[error("malformed OpenPGP data: {detail}")]
    Malformed {
        /// What is wrong.
        detail: String,
    },
    /// The encrypted OpenPGP message (armor, packets) does not parse, or is not an encrypted
    /// message. Code `decryption-failed`.
    #[error("malformed encrypted OpenPGP message: {detail}")]
    MalformedEncrypted {
        /// What is wrong.
        detail: String,
    },
    /// The RFC 3156 structure is wrong: the second part of a PGP/MIME multipart/signed is not
    /// `application/pgp-signature`, or the control part of multipart/encrypted is not
    /// `application/pgp-encrypted` with `Version: 1`. Code `malformed-openpgp`.
    #[error("not an RFC 3156 structure: {detail}")]
    Structure {
        /// What is wrong.
        detail: &'static str,
    },
    /// A named limit was exceeded before the work. Code `limit-exceeded`.
    #[error("limit exceeded: {0}")]
    LimitExceeded(LimitKind),
    /// None of the given OpenPGP identities holds a key for a recipient of the message. Code
    /// `decryption-failed`.
    #[error("no OpenPGP decryption key for any recipient")]
    NoDecryptionKey,
    /// Decryption failed: wrong key, a failed MDC or AEAD check (no plaintext is released:
    /// EFAIL), a message without integrity protection (Symmetrically Encrypted Data, tag 9), or
    /// a decrypted message that is not one literal message. One uniform failure. Code
    /// `decryption-failed`.
    #[error("OpenPGP decryption failed")]
    DecryptionFailed,
}

impl Failure {
    /// Stable reason code (kebab-case), the same vocabulary as the S/MIME layer.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::UnknownSigner { .. }
            | Failure::NoValidUserId { .. }
            | Failure::CertificateAddress { .. } => "untrusted-certificate",
            Failure::BadSignature { .. }
            | Failure::MicalgMismatch { .. }
            | Failure::UnusableSignature { .. } => "bad-signature",
            Failure::CertificateExpired { .. } => "certificate-expired",
            Failure::CertificateRevoked { .. } => "certificate-revoked",
            Failure::NotSigningKey { .. } => "certificate-purpose",
            Failure::WeakAlgorithm { .. } => "weak-algorithm",
            Failure::Malformed { .. } | Failure::Structure { .. } => "malformed-openpgp",
            Failure::LimitExceeded(_) => "limit-exceeded",
            Failure::NoDecryptionKey
            | Failure::DecryptionFailed
            | Failure::MalformedEncrypted { .. } => "decryption-failed",
        }
    }
}

/// Why operator certificates or an identity could not be loaded (configuration errors: the
/// caller cannot evaluate anything without them).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A file is larger than [`crate::KEY_FILE_BYTES_MAX`], or a directory holds more files
    /// than [`crate::KEY_DIRECTORY_FILES_MAX`], or the certificates more than
    /// [`crate::CERTIFICATES_MAX`].
    #[error("{path}: {what} exceeds its limit")]
    TooLarge {
        /// The path.
        path: String,
        /// Which limit.
        what: &'static str,
    },
    /// The file holds no OpenPGP key, or one that does not parse.
    #[error("{path}: not an OpenPGP {expected}: {detail}")]
    Parse {
        /// The path.
        path: String,
        /// What was expected (`certificate`, `secret key`).
        expected: &'static str,
        /// rPGP's message.
        detail: String,
    },
    /// The secret key is protected and the password does not unlock it.
    #[error("{path}: wrong password for the OpenPGP secret key")]
    Password {
        /// The path.
        path: String,
    },
}
