//! Named limits for untrusted input (every one with its own [`LimitKind`]), and the per-message
//! work budget that enforces the cumulative ones.
//!
//! # Why these numbers
//!
//! The structural limits (`parts`, `mime_depth`, `signer_infos`, `certificates`, the byte
//! sizes) bound each piece of a message; alone they still let one message multiply work:
//! every signer of every nested layer hashed its whole layer and ran a public-key operation
//! with a key of the sender's choosing (issue #11: 85 parts signed with RSA-3072 keys whose
//! public exponent has 3,070 bits cost 4 to 8 s of CPU for 2 to 3 MB). The key maxima and the
//! per-message budget below close that. The defaults were chosen so that a message within all
//! limits costs at most 10x the CPU of an ordinary detached-signed message of the same size
//! from a sender not seen before (one RSA-2048 signer with its intermediate, chain validated):
//! see `BENCHMARKS.md`, "Amplification", and the `amplification` bench of this crate, which
//! grows the worst shapes we could build up to the limits and asserts that each is processed
//! in full (worst measured: 9.2x, seven P-384 signatures of an attacker's own key).
//!
//! - [`Limits::rsa_modulus_bits`] 8192: the largest modulus webpki accepts; OpenSSL alone
//!   accepts 16384 (and any exponent up to the modulus size at or below 3072 bits).
//! - [`Limits::rsa_exponent_bits`] 32: the exponent is at most 2^32 - 1 (every valid exponent
//!   is odd, so this is "at most 2^32"); e = 1 and even exponents are `weak-algorithm`. 65537
//!   has 17 bits. A verification costs one modular squaring per exponent bit and one
//!   multiplication per set bit: at 2^32 - 1, 3.6x 65537.
//! - [`Limits::signature_verifications`] 280: public-key work, in units of one RSA-2048
//!   verification with exponent 65537 (19 to 22 us with `openssl speed` here). Weights as
//!   measured: RSA `ceil((bits / 2048)^2 * m / 17)` with `m` the modular multiplications of
//!   the exponent (17 for 65537), so RSA-4096 weighs 4, RSA-8192 16, RSA-8192 with
//!   e = 2^32 - 1 59; P-256 4, Ed25519 7, P-521 30, P-384 40 (OpenSSL 3.0 has no fast P-384:
//!   0.84 ms per verification here). A signer's signature costs its key's weight. A chain
//!   validation, charged once per SignedData and signer certificate before OpenSSL runs it,
//!   costs three operations (the certificate below, a base and a delta CRL) at the weight of
//!   every other certificate the SignedData offers. The number is set by the largest chains
//!   of real PKIs: a P-384 signer under two P-384 intermediates (government and enterprise
//!   PKIs) costs 40 + 2 x 3 x 40 = 280, exactly the default (under one intermediate: 160; the
//!   old default of 128 refused both); an RSA-4096 signer under two RSA-4096 intermediates 28,
//!   an RSA-8192 signer under an RSA-4096 intermediate 28, an ordinary message (RSA-2048
//!   signer and intermediate) 4. What an attacker buys with 280: seven P-384 signatures of
//!   its own key in one 6 KB SignedData (the chain is untrusted, but the signatures are
//!   checked first), about 6 ms of CPU, measured at 9.0 to 9.2x a cold ordinary message of the
//!   same size (see `BENCHMARKS.md`). The
//!   trust anchors' keys are not charged (the operator's choice).
//! - [`Limits::certificates_per_message`] 64: certificates and CRLs parsed over all the
//!   SignedData of a message. Parsing a certificate not seen before (OpenSSL and x509-parser)
//!   costs as much as hashing 20 KB, and an attacker's certificates are always new; 64 is 32
//!   signed parts with signer and intermediate each.
//! - [`Limits::hashed_bytes`] 64 KiB plus [`Limits::hashed_bytes_factor`] 4 times the
//!   message: bytes hashed, the content once per SignedData and digest algorithm (signers
//!   sharing an algorithm share the digest) plus every signer's signed attributes. One
//!   signature layer hashes less than the message once; 4 passes allow two digest algorithms
//!   on each of two nested layers (triple wrapping), and stop 15 nested multipart/signed
//!   layers of a 200 KB invite after four. The allowance keeps tiny messages, whose fixed
//!   costs dominate, out of the factor's way (64 KiB of SHA-256: 0.1 ms).
//! - [`Limits::decoded_bytes`] 64 KiB plus [`Limits::decoded_bytes_factor`] 4 times the
//!   message: bytes that go through base64 / quoted-printable decoding, decryption or CRLF
//!   canonicalisation, charged with the input size before the work. Each nested base64 layer
//!   shrinks its content to 3/4, so nesting stays under 4x (the geometric sum); the budget is
//!   the backstop for what does not shrink (a part decoded twice, canonicalised content).
//!
//! The factors apply to the message as walked (after the CRLF canonicalisation of bare-LF
//! mail), so the budget grows with the message, as the cost of an ordinary message does. A
//! charge that does not fit ends the inspection: the whole message is `limit-exceeded`, and
//! nothing more of it is parsed, hashed or verified. The key maxima are checked on every
//! certificate of a SignedData before any signature or chain operation and fail that layer
//! (`limit-exceeded`), like the other per-SignedData limits.
//!
//! Order of the checks for one SignerInfo: structure, algorithm policy and key maxima (no
//! public-key work), then the digest and the signature (charged), then the chain (charged,
//! cached). Validating the chain first would spare the signature of an untrusted signer, but
//! the budget already bounds both, and the key-identifier retry of RFC 8551 §2.6 (several
//! certificates matching one sid) needs the signature to pick the certificate whose chain is
//! validated.

use std::cell::Cell;

/// Bounds on the work one message may cause. `Default` is meant for mail in the wild: generous
/// for real iMIP messages, small enough that no input can exhaust memory or time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of the received message in bytes (and of any decrypted content).
    pub message_bytes: usize,
    /// Maximum nesting depth of MIME entities, counted across decrypted and opaque-signed
    /// content (the root entity has depth 1).
    pub mime_depth: usize,
    /// Maximum number of MIME entities in the whole message, inner content included.
    pub parts: usize,
    /// Maximum number of certificates (and CRLs) in one SignedData.
    pub certificates: usize,
    /// Maximum number of SignerInfos in one SignedData.
    pub signer_infos: usize,
    /// Maximum size of one CMS structure in bytes (after transfer decoding).
    pub cms_bytes: usize,
    /// Largest RSA modulus, in bits, of any certificate in a SignedData (checked for every
    /// certificate before any signature operation; the trust anchors are checked when they
    /// end a validated chain).
    pub rsa_modulus_bits: u32,
    /// Largest RSA public exponent, in bits (32: at most 2^32 - 1), of any certificate in a
    /// SignedData.
    pub rsa_exponent_bits: u32,
    /// Public-key work per message, in units of one RSA-2048 verification with exponent 65537
    /// (weights in the module documentation), charged before each operation.
    pub signature_verifications: u64,
    /// Certificates and CRLs parsed per message, over all its SignedData (each parse of a
    /// certificate not seen before costs as much as hashing 20 KB).
    pub certificates_per_message: usize,
    /// Bytes hashed per message: this allowance plus [`Limits::hashed_bytes_factor`] times
    /// the message's size.
    pub hashed_bytes: usize,
    /// See [`Limits::hashed_bytes`].
    pub hashed_bytes_factor: usize,
    /// Bytes transfer-decoded (base64, quoted-printable), decrypted or canonicalised per
    /// message: this allowance plus [`Limits::decoded_bytes_factor`] times the message's size;
    /// charged before the work with the input size.
    pub decoded_bytes: usize,
    /// See [`Limits::decoded_bytes`].
    pub decoded_bytes_factor: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            message_bytes: 32 * 1024 * 1024,
            mime_depth: 16,
            parts: 256,
            certificates: 32,
            signer_infos: 8,
            cms_bytes: 16 * 1024 * 1024,
            rsa_modulus_bits: 8192,
            rsa_exponent_bits: 32,
            signature_verifications: 280,
            certificates_per_message: 64,
            hashed_bytes: 64 * 1024,
            hashed_bytes_factor: 4,
            decoded_bytes: 64 * 1024,
            decoded_bytes_factor: 4,
        }
    }
}

/// Which limit of [`Limits`] was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitKind {
    /// [`Limits::message_bytes`].
    #[error("message bytes")]
    MessageBytes,
    /// [`Limits::mime_depth`].
    #[error("MIME depth")]
    MimeDepth,
    /// [`Limits::parts`].
    #[error("MIME parts")]
    Parts,
    /// [`Limits::certificates`].
    #[error("certificates per SignedData")]
    Certificates,
    /// [`Limits::signer_infos`].
    #[error("signer infos per SignedData")]
    SignerInfos,
    /// [`Limits::cms_bytes`].
    #[error("CMS bytes")]
    CmsBytes,
    /// [`Limits::rsa_modulus_bits`].
    #[error("RSA modulus bits")]
    RsaModulusBits,
    /// [`Limits::rsa_exponent_bits`].
    #[error("RSA public exponent bits")]
    RsaExponentBits,
    /// [`Limits::signature_verifications`].
    #[error("signature verifications per message")]
    SignatureVerifications,
    /// [`Limits::certificates_per_message`].
    #[error("certificates per message")]
    MessageCertificates,
    /// [`Limits::hashed_bytes`] with [`Limits::hashed_bytes_factor`].
    #[error("bytes hashed per message")]
    HashedBytes,
    /// [`Limits::decoded_bytes`] with [`Limits::decoded_bytes_factor`].
    #[error("bytes decoded per message")]
    DecodedBytes,
}

/// What one message may still spend: the cumulative limits of [`Limits`], for the message
/// being inspected. Every charge is made before the work it pays for; a charge that does not
/// fit exhausts the budget: the inspection of the message ends there (`limit-exceeded` for the
/// whole message), so no further work is done for it.
#[derive(Debug)]
pub(crate) struct Budget {
    exhausted: Cell<Option<LimitKind>>,
    verifications: Cell<u64>,
    certificates: Cell<usize>,
    hashed: Cell<usize>,
    decoded: Cell<usize>,
}

impl Budget {
    /// The budget of a message of `message_len` bytes (as walked).
    pub(crate) fn new(limits: &Limits, message_len: usize) -> Self {
        Budget {
            exhausted: Cell::new(None),
            verifications: Cell::new(limits.signature_verifications),
            certificates: Cell::new(limits.certificates_per_message),
            hashed: Cell::new(
                limits
                    .hashed_bytes_factor
                    .saturating_mul(message_len)
                    .saturating_add(limits.hashed_bytes),
            ),
            decoded: Cell::new(
                limits
                    .decoded_bytes_factor
                    .saturating_mul(message_len)
                    .saturating_add(limits.decoded_bytes),
            ),
        }
    }

    /// The limit that ran out, if any: once set, every later charge fails too.
    pub(crate) fn exhausted(&self) -> Option<LimitKind> {
        self.exhausted.get()
    }

    /// Pay for public-key operations of total `weight`.
    pub(crate) fn verify(&self, weight: u64) -> Result<(), LimitKind> {
        self.take(
            &self.verifications,
            weight,
            LimitKind::SignatureVerifications,
        )
    }

    /// Pay for parsing one certificate or CRL.
    pub(crate) fn certificate(&self) -> Result<(), LimitKind> {
        self.take(&self.certificates, 1, LimitKind::MessageCertificates)
    }

    /// Pay for hashing `bytes`.
    pub(crate) fn hash(&self, bytes: usize) -> Result<(), LimitKind> {
        self.take(&self.hashed, bytes, LimitKind::HashedBytes)
    }

    /// Pay for decoding or decrypting `bytes` of input.
    pub(crate) fn decode(&self, bytes: usize) -> Result<(), LimitKind> {
        self.take(&self.decoded, bytes, LimitKind::DecodedBytes)
    }

    fn take<T>(&self, left: &Cell<T>, amount: T, kind: LimitKind) -> Result<(), LimitKind>
    where
        T: Copy + PartialOrd + std::ops::Sub<Output = T>,
    {
        if let Some(exhausted) = self.exhausted.get() {
            return Err(exhausted);
        }
        let available = left.get();
        if amount > available {
            self.exhausted.set(Some(kind));
            return Err(kind);
        }
        left.set(available - amount);
        Ok(())
    }
}
